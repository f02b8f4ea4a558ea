import Foundation

public struct TokenizerFileError: Error, CustomStringConvertible {
    public let path: String
    public let message: String
    public var description: String { "\(path): \(message)" }
}

/// `tokenizer.json`: the vocabulary in id order and the merges in rank order.
struct TokenizerFile: Codable {
    var format: String
    var version: Int
    var normalization: String
    var specials: [String]
    var firstMergeID: Int
    var vocab: [String]
    var merges: [[Int32]]
}

extension Tokenizer {
    public static let fileFormat = "swift-dsi-bpe"
    public static let fileVersion = 1

    /// The tokenizer as JSON (sorted keys: the same tokenizer gives the same bytes).
    public func jsonData() throws -> Data {
        let file = TokenizerFile(
            format: Self.fileFormat, version: Self.fileVersion,
            normalization: "NFKC, lowercase; words are maximal runs of letters and digits, each prefixed with \(Self.wordMarker)",
            specials: Self.specials, firstMergeID: Int(firstMergeID), vocab: vocab,
            merges: merges.map { [$0.0, $0.1] })
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        return try enc.encode(file)
    }

    public func save(to path: String) throws {
        try jsonData().write(to: URL(fileURLWithPath: path), options: .atomic)
    }

    /// Loads and validates a `tokenizer.json`.
    public static func load(from path: String) throws(TokenizerFileError) -> Tokenizer {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TokenizerFileError(path: path, message: "cannot read the file")
        }
        return try load(data: data, path: path)
    }

    public static func load(data: Data, path: String = "tokenizer.json") throws(TokenizerFileError) -> Tokenizer {
        let file: TokenizerFile
        do {
            file = try JSONDecoder().decode(TokenizerFile.self, from: data)
        } catch {
            throw TokenizerFileError(path: path, message: "not a tokenizer file (\(error))")
        }
        func fail(_ m: String) -> TokenizerFileError { TokenizerFileError(path: path, message: m) }
        guard file.format == fileFormat else { throw fail("format \"\(file.format)\", expected \"\(fileFormat)\"") }
        guard file.version == fileVersion else {
            throw fail("version \(file.version), this build reads version \(fileVersion): retrain or use a matching swift-dsi")
        }
        guard file.specials == specials, Array(file.vocab.prefix(specials.count)) == specials else {
            throw fail("special tokens differ from \(specials)")
        }
        guard file.firstMergeID + file.merges.count == file.vocab.count, file.firstMergeID > specials.count else {
            throw fail("vocabulary (\(file.vocab.count)) does not match the merges (\(file.merges.count) from id \(file.firstMergeID))")
        }
        var merges: [(Int32, Int32)] = []
        for (r, m) in file.merges.enumerated() {
            let result = file.firstMergeID + r
            guard m.count == 2, m.allSatisfy({ $0 >= 0 && Int($0) < result }),
                file.vocab[Int(m[0])] + file.vocab[Int(m[1])] == file.vocab[result]
            else { throw fail("merge \(r) does not produce token \(result)") }
            merges.append((m[0], m[1]))
        }
        return Tokenizer(vocab: file.vocab, merges: merges, firstMergeID: Int32(file.firstMergeID))
    }
}
