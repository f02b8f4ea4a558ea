import Foundation

/// The one way `--json` output is printed: a Codable report, keys sorted, one line.
public enum JSONOutput {
    public static func string(_ value: some Encodable) throws -> String {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        enc.nonConformingFloatEncodingStrategy = .throw
        return String(decoding: try enc.encode(value), as: UTF8.self)
    }
}
