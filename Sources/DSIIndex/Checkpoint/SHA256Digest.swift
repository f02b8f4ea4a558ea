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
        guard let h = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? h.close() }
        var hasher = SHA256()
        do {
            // nil or empty at the end of the file
            while let chunk = try h.read(upToCount: 1 << 20), !chunk.isEmpty { hasher.update(data: chunk) }
        } catch {
            return nil
        }
        return hex(hasher.finalize())
    }

    /// Copies the file at `path` to `out` in 1 MiB chunks and returns the digest of what
    /// was copied; nil when it cannot be read.
    public static func copy(file path: String, to out: FileHandle) throws -> String? {
        guard let h = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? h.close() }
        var hasher = SHA256()
        while let chunk = try h.read(upToCount: 1 << 20), !chunk.isEmpty {
            hasher.update(data: chunk)
            try out.write(contentsOf: chunk)
        }
        return hex(hasher.finalize())
    }

    static func hex(_ digest: SHA256.Digest) -> String {
        digest.map { String(format: "%02x", $0) }.joined()
    }
}
