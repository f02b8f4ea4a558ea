import Crypto
import Foundation

/// SHA-256 (swift-crypto) as lowercase hex: checkpoint checksums and corpus fingerprints.
public enum SHA256Digest {
    public static func hex(_ data: some DataProtocol) -> String {
        hex(SHA256.hash(data: data))
    }

    /// The digest of a file, read in 1 MiB chunks (never the whole file at once); nil
    /// when it cannot be read.
    public static func hex(file path: String) -> String? {
        try? digest(file: path) { _ in }
    }

    /// Copies the file at `path` to `out` in 1 MiB chunks and returns the digest of what
    /// was copied; nil when it cannot be opened.
    public static func copy(file path: String, to out: FileHandle) throws -> String? {
        try digest(file: path) { try out.write(contentsOf: $0) }
    }

    /// The digest of a file read in 1 MiB chunks, each also given to `each`; nil when it
    /// cannot be opened.
    private static func digest(file path: String, each: (Data) throws -> Void) throws -> String? {
        guard let h = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? h.close() }
        var hasher = SHA256()
        // nil or empty at the end of the file
        while let chunk = try h.read(upToCount: 1 << 20), !chunk.isEmpty {
            hasher.update(data: chunk)
            try each(chunk)
        }
        return hex(hasher.finalize())
    }

    static func hex(_ digest: SHA256.Digest) -> String {
        digest.map { String(format: "%02x", $0) }.joined()
    }
}
