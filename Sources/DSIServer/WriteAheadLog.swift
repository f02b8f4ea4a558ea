import DSIIndex
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The service's write-ahead log (Elasticsearch's translog): every accepted batch of
/// documents is appended as one record and fsynced before the add is applied and
/// acknowledged, so an acknowledged document survives any crash. A record is
///
///     "DSIW" | sequence (UInt64 LE) | payload length (UInt32 LE) | CRC-32 of sequence and payload (UInt32 LE) | payload (JSON)
///
/// Reading stops at the first record that is incomplete or fails its checksum: when no
/// valid record follows it, it is a torn tail (the process died mid-write, so it was never
/// acknowledged) and is cut off with a warning; when a valid record follows, the log is
/// corrupt in the middle and opening it fails (acknowledged documents would be lost).
/// Consolidation rewrites the log with only the records a new checkpoint does not hold
/// (a temporary file renamed into place).
public final class WriteAheadLog: @unchecked Sendable {
    public struct Record: Codable, Sendable, Equatable {
        public var sequence: UInt64
        public var documents: [Document]

        public init(sequence: UInt64, documents: [Document]) {
            self.sequence = sequence
            self.documents = documents
        }
    }

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    static let magic: [UInt8] = Array("DSIW".utf8)
    static let headerSize = 20

    public let path: String
    private var fd: Int32
    /// Records in the log, oldest first (what `open` read, then every append). Read and
    /// changed by the service's one writer.
    public private(set) var records: [Record] {
        didSet { countLock.withLock { count = records.count } }
    }
    private let countLock = NSLock()
    private var count = 0
    /// How many records the log holds (safe to read from any thread).
    public var recordCount: Int { countLock.withLock { count } }
    /// Bytes of a torn tail cut off when the log was opened (0: none).
    public let droppedTailBytes: Int
    private var size: Int

    /// Opens (or creates) the log at `path`, reading and checking every record.
    public init(path: String) throws {
        self.path = path
        let existed = FileManager.default.fileExists(atPath: path)
        let bytes: [UInt8] = existed ? Array(try Data(contentsOf: URL(fileURLWithPath: path))) : []
        let (records, validBytes) = try Self.parse(bytes, path: path)
        self.records = records
        count = records.count
        droppedTailBytes = bytes.count - validBytes
        size = validBytes
        fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw Failure(description: "\(path): cannot be opened for writing (\(String(cString: strerror(errno))))") }
        if droppedTailBytes > 0 {
            guard ftruncate(fd, off_t(validBytes)) == 0, fsync(fd) == 0 else {
                throw Failure(description: "\(path): cannot cut off the torn last record (\(String(cString: strerror(errno))))")
            }
        }
        if !existed { try Self.syncParent(of: path) }
    }

    deinit { close(fd) }

    /// The sequence number the next record gets.
    public var nextSequence: UInt64 { (records.last?.sequence ?? 0) + 1 }

    /// Appends one record and fsyncs it. On failure the log is cut back to where it was,
    /// so a failed append leaves no record behind.
    @discardableResult
    public func append(_ documents: [Document]) throws -> Record {
        let record = Record(sequence: nextSequence, documents: documents)
        let bytes = try Self.encode(record)
        do {
            try writeAll(bytes, at: size)
            guard fsync(fd) == 0 else { throw Failure(description: "\(path): fsync failed (\(String(cString: strerror(errno))))") }
        } catch {
            _ = ftruncate(fd, off_t(size))
            _ = fsync(fd)
            throw error
        }
        size += bytes.count
        records.append(record)
        return record
    }

    /// Removes the last record (an add that was logged but could not be applied, so it
    /// was never acknowledged).
    public func removeLast(_ record: Record) throws {
        guard records.last == record else { throw Failure(description: "\(path): the record to remove is not the last one") }
        let bytes = try Self.encode(record)
        guard ftruncate(fd, off_t(size - bytes.count)) == 0, fsync(fd) == 0 else {
            throw Failure(description: "\(path): cannot remove the last record (\(String(cString: strerror(errno))))")
        }
        size -= bytes.count
        records.removeLast()
    }

    /// Keeps only the records after `sequence` (those a new checkpoint does not hold):
    /// writes them to a temporary file, fsyncs it, renames it over the log and fsyncs the
    /// directory, so a crash leaves either the old log or the new one.
    public func truncate(through sequence: UInt64) throws {
        let kept = records.filter { $0.sequence > sequence }
        var bytes: [UInt8] = []
        for r in kept { bytes += try Self.encode(r) }
        let tmp = path + ".tmp"
        let tfd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard tfd >= 0 else { throw Failure(description: "\(tmp): cannot be created (\(String(cString: strerror(errno))))") }
        var ok = bytes.withUnsafeBytes { raw in
            var off = 0
            while off < raw.count {
                let n = write(tfd, raw.baseAddress! + off, raw.count - off)
                if n <= 0 { return false }
                off += n
            }
            return true
        }
        ok = ok && fsync(tfd) == 0
        close(tfd)
        guard ok, rename(tmp, path) == 0 else {
            unlink(tmp)
            throw Failure(description: "\(path): cannot be rewritten (\(String(cString: strerror(errno))))")
        }
        try Self.syncParent(of: path)
        close(fd)
        fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { throw Failure(description: "\(path): cannot be reopened (\(String(cString: strerror(errno))))") }
        records = kept
        size = bytes.count
    }

    private func writeAll(_ bytes: [UInt8], at offset: Int) throws {
        try bytes.withUnsafeBytes { raw in
            var off = 0
            while off < raw.count {
                let n = pwrite(fd, raw.baseAddress! + off, raw.count - off, off_t(offset + off))
                if n < 0 { throw Failure(description: "\(path): write failed (\(String(cString: strerror(errno))))") }
                off += n
            }
        }
    }

    /// The bytes of one record as the log stores it.
    public static func bytes(of record: Record) throws -> [UInt8] { try encode(record) }

    static func encode(_ record: Record) throws -> [UInt8] {
        let payload = Array(try JSONEncoder().encode(record.documents))
        var seq = withUnsafeBytes(of: record.sequence.littleEndian) { Array($0) }
        var out = magic
        out += seq
        out += withUnsafeBytes(of: UInt32(payload.count).littleEndian) { Array($0) }
        seq += payload
        out += withUnsafeBytes(of: CRC32.checksum(seq).littleEndian) { Array($0) }
        out += payload
        return out
    }

    /// The valid records of `bytes` and how many bytes they take (see the type's comment).
    static func parse(_ bytes: [UInt8], path: String) throws -> ([Record], Int) {
        var records: [Record] = []
        var offset = 0
        while offset < bytes.count {
            if let (record, length) = decode(bytes, at: offset) {
                if let last = records.last, record.sequence <= last.sequence {
                    throw Failure(description: "\(path): record at byte \(offset) has sequence \(record.sequence) after \(last.sequence)")
                }
                records.append(record)
                offset += length
                continue
            }
            // Invalid here: a torn tail, unless a valid record starts further on.
            var probe = offset + 1
            while probe + headerSize <= bytes.count {
                if bytes[probe] == magic[0], decode(bytes, at: probe) != nil {
                    throw Failure(
                        description:
                            "\(path): the record at byte \(offset) is damaged and valid records follow it; the log is corrupt (not a torn last write), refusing to drop acknowledged documents"
                    )
                }
                probe += 1
            }
            break
        }
        return (records, offset)
    }

    static func decode(_ b: [UInt8], at o: Int) -> (Record, Int)? {
        guard o + headerSize <= b.count, Array(b[o..<o + 4]) == magic else { return nil }
        func le<T: FixedWidthInteger>(_ at: Int, _: T.Type) -> T {
            var v: T = 0
            for i in 0..<MemoryLayout<T>.size { v |= T(b[at + i]) << (8 * i) }
            return v
        }
        let seq = le(o + 4, UInt64.self)
        let length = Int(le(o + 12, UInt32.self))
        let crc = le(o + 16, UInt32.self)
        guard o + headerSize + length <= b.count else { return nil }
        let payload = b[(o + headerSize)..<(o + headerSize + length)]
        guard CRC32.checksum(Array(b[(o + 4)..<(o + 12)]) + payload) == crc else { return nil }
        guard let docs = try? JSONDecoder().decode([Document].self, from: Data(payload)) else { return nil }
        return (Record(sequence: seq, documents: docs), headerSize + length)
    }

    static func syncParent(of path: String) throws {
        let dir = (path as NSString).deletingLastPathComponent
        let dfd = open(dir.isEmpty ? "." : dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard dfd >= 0 else { throw Failure(description: "\(dir): cannot be opened to sync") }
        defer { close(dfd) }
        guard fsync(dfd) == 0 else { throw Failure(description: "\(dir): fsync failed") }
    }
}

/// CRC-32 (IEEE 802.3, the polynomial zlib and gzip use), table-driven.
enum CRC32 {
    static let table: [UInt32] = (0..<256).map { i in
        var c = UInt32(i)
        for _ in 0..<8 { c = (c & 1) != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    static func checksum<C: Collection>(_ bytes: C) -> UInt32 where C.Element == UInt8 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes { c = table[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        return c ^ 0xFFFF_FFFF
    }
}
