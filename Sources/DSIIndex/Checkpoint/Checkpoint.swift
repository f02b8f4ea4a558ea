import CDSISystem
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A checkpoint directory: `manifest.json` (format, version, file checksums, corpus
/// fingerprint, counts, configuration) beside the files it lists. Written to a temporary
/// sibling directory and renamed into place, so a crash never leaves a half-written
/// checkpoint where a good one was; loading verifies every checksum.
public enum Checkpoint {
    public static let format = "swift-dsi-checkpoint"
    /// The format version this swift-dsi writes. History (see `CheckpointMigration`):
    /// 1: the first format (its config.json may lack `docidTokens`, which then means
    /// digit tokens); 2: the loader checks the index's invariants, and every options field
    /// decodes with a default; 3: `objective` (the trie objective is the default since
    /// then; a version 1-2 config without it was trained over all tokens: `full`), and
    /// `optimizer.safetensors` is optional (needed only to train on: `--resume`, `dsi add`);
    /// 4: every tensor of model.safetensors starts on a 4,096-byte page (zero padding
    /// tensors between them), and a fast add writes generation files ("model.g<N>.safetensors",
    /// "lsa.g<N>.safetensors", "replay.g<N>.tsv") beside the files it keeps.
    public static let version = 4
    /// The versions this swift-dsi reads (older ones through `CheckpointMigration`).
    public static let readableVersions = 1...version

    public struct FileEntry: Codable, Equatable, Sendable {
        public var sha256: String
        public var bytes: Int
    }

    public struct Manifest: Codable, Sendable {
        public var format: String
        public var version: Int
        public var created: String
        public var files: [String: FileEntry]
        /// SHA-256 of the corpus's `corpus.jsonl` the checkpoint was built from.
        public var corpusFingerprint: String?
        public var corpusDirectory: String?
        public var counts: [String: Int]
        /// Free-form description of how it was made (command options).
        public var configuration: [String: String]
        /// Which documents arrived in which `dsi train` / `dsi add` (absent in checkpoints without any).
        public var generations: [Generation]?
    }

    public struct Error: Swift.Error, CustomStringConvertible {
        public let path: String
        public let message: String
        public var description: String { "\(path): \(message)" }
    }

    /// Writes `files` and a manifest for them to `directory` atomically: everything goes
    /// to a temporary sibling first, which then replaces `directory` in one rename.
    /// Refuses (throws) when `directory` holds anything but a swift-dsi checkpoint or
    /// nothing: a command that writes a checkpoint replaces only those. Call it before any
    /// work starts; `write` calls it again.
    public static func checkReplaceable(_ directory: String) throws(Checkpoint.Error) {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: directory, isDirectory: &isDir) else { return }
        guard isDir.boolValue else {
            throw Error(
                path: directory,
                message:
                    "exists and is not a directory; a checkpoint is written only to a new or empty directory or over a swift-dsi checkpoint: choose another --output"
            )
        }
        let contents = (try? fm.contentsOfDirectory(atPath: directory)) ?? []
        if contents.isEmpty { return }
        let mpath = (directory as NSString).appendingPathComponent("manifest.json")
        struct Header: Decodable { var format: String }
        guard let data = fm.contents(atPath: mpath), let header = try? JSONDecoder().decode(Header.self, from: data),
            header.format == format
        else {
            throw Error(
                path: directory,
                message:
                    "is a directory with \(contents.count) entries that is not a swift-dsi checkpoint (no manifest.json of format \"\(format)\"); nothing was changed: choose a new or empty directory for --output"
            )
        }
    }

    /// A file of a checkpoint: bytes in memory, or a function that writes them to a file
    /// (large files: the weights, optimizer moments, replay memory and LSA vectors are
    /// streamed, never held whole in memory; their checksum is taken by reading the
    /// written file back).
    public enum File {
        case data(Data)
        case stream((FileHandle) throws -> Void)
        /// An unchanged file of an earlier checkpoint, with its checksum from that
        /// checkpoint's manifest and its stamp when it was loaded: hard-linked into place
        /// and not read (checkpoint files are never changed in place, so the two names
        /// share immutable bytes), or copied and checked against the checksum when a link
        /// cannot be made (another file system). A file whose stamp changed since is
        /// refused.
        case carried(path: String, sha256: String, stamp: FileStamp)
    }

    /// What `stat(2)` says of a file: enough to see that it was rewritten.
    public struct FileStamp: Sendable, Equatable {
        public let bytes: Int
        public let inode: UInt64
        public let modifiedNanoseconds: Int64

        public init?(path: String) {
            var st = stat()
            guard stat(path, &st) == 0 else { return nil }
            bytes = Int(st.st_size)
            inode = UInt64(st.st_ino)
            modifiedNanoseconds = Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec)
        }
    }

    public static func write(
        to directory: String, files: [String: Data], corpusFingerprint: String?, corpusDirectory: String?, counts: [String: Int],
        configuration: [String: String], generations: [Generation]? = nil
    ) throws {
        try write(
            to: directory, files: files.mapValues { File.data($0) }, corpusFingerprint: corpusFingerprint, corpusDirectory: corpusDirectory,
            counts: counts, configuration: configuration, generations: generations)
    }

    /// Large files it hashes (`.stream`) or links with a valid record (`.carried`) are
    /// recorded in `verifiedCache` (`VerifiedFileCache`), so the next load does not hash them.
    public static func write(
        to directory: String, files: [String: File], corpusFingerprint: String?, corpusDirectory: String?, counts: [String: Int],
        configuration: [String: String], generations: [Generation]? = nil, verifiedCache: String? = VerifiedFileCache.directory
    ) throws {
        try checkReplaceable(directory)
        let url = URL(fileURLWithPath: directory).standardizedFileURL
        let parent = url.deletingLastPathComponent()
        let fm = FileManager.default
        try fm.createDirectory(at: parent, withIntermediateDirectories: true)
        let tmp = parent.appendingPathComponent(".\(url.lastPathComponent).tmp-\(UUID().uuidString)")
        try fm.createDirectory(at: tmp, withIntermediateDirectories: false)
        do {
            var entries: [String: FileEntry] = [:]
            for (name, file) in files {
                precondition(!name.contains("/") && name != "manifest.json", "bad checkpoint file name \(name)")
                let url = tmp.appendingPathComponent(name)
                switch file {
                case .data(let data):
                    try data.write(to: url)
                    entries[name] = FileEntry(sha256: SHA256Digest.hex(data), bytes: data.count)
                case .stream(let write):
                    let h = try create(url.path)
                    do {
                        try write(h)
                        try h.close()
                    } catch {
                        try? h.close()
                        throw error
                    }
                    let before = VerifiedFileCache.changedTime(of: url.path)
                    guard let sha = SHA256Digest.hex(file: url.path), let size = try fm.attributesOfItem(atPath: url.path)[.size] as? Int
                    else { throw Error(path: url.path, message: "cannot be read back") }
                    entries[name] = FileEntry(sha256: sha, bytes: size)
                    // Hashed just now, in this process's own directory: the next load need not.
                    if size >= VerifiedFileCache.minimumBytes, let before {
                        VerifiedFileCache.record(sha, of: url.path, stampedBefore: before, recent: true, in: verifiedCache)
                    }
                case .carried(let source, let sha256, let stamp):
                    guard FileStamp(path: source) == stamp else {
                        throw Error(path: source, message: "changed on disk after the checkpoint was loaded (size, inode or time differ)")
                    }
                    // A record that the file was verified in its present state carries
                    // over the link, which changes its status-change time, not its bytes
                    // (a file left unread, like the moments of a fast add, has none).
                    let verified =
                        stamp.bytes >= VerifiedFileCache.minimumBytes && VerifiedFileCache.checksum(of: source, in: verifiedCache) == sha256
                    if link(source, url.path) == 0 {
                        if verified && FileStamp(path: url.path) == stamp {
                            VerifiedFileCache.record(sha256, of: url.path, recent: true, in: verifiedCache)
                        }
                    } else {
                        let h = try create(url.path)
                        let copied = try SHA256Digest.copy(file: source, to: h)
                        try h.close()
                        guard let copied else {
                            throw Error(path: source, message: "cannot be read (it was left on disk when the checkpoint was loaded)")
                        }
                        guard copied == sha256 else {
                            throw Error(
                                path: source, message: "checksum mismatch: the file changed on disk after the checkpoint was loaded")
                        }
                    }
                    guard let size = try fm.attributesOfItem(atPath: url.path)[.size] as? Int else {
                        throw Error(path: url.path, message: "cannot be read back")
                    }
                    entries[name] = FileEntry(sha256: sha256, bytes: size)
                }
            }
            let manifest = Manifest(
                format: format, version: version, created: ISO8601DateFormatter().string(from: Date()),
                files: entries, corpusFingerprint: corpusFingerprint, corpusDirectory: corpusDirectory,
                counts: counts, configuration: configuration, generations: generations)
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            try enc.encode(manifest).write(to: tmp.appendingPathComponent("manifest.json"))
            try syncDirectory(tmp.path)
            try replace(directory: url.path, with: tmp.path)
        } catch {
            try? fm.removeItem(at: tmp)
            throw error
        }
    }

    /// A new, empty file at `path`, open for writing.
    static func create(_ path: String) throws -> FileHandle {
        guard FileManager.default.createFile(atPath: path, contents: nil), let h = FileHandle(forWritingAtPath: path) else {
            throw Error(path: path, message: "cannot be created")
        }
        return h
    }

    /// Moves `tmp` to `directory`, replacing any existing directory without a moment
    /// when neither is there (Linux renameat2 with RENAME_EXCHANGE; elsewhere two renames).
    static func replace(directory: String, with tmp: String) throws {
        let fm = FileManager.default
        if !fm.fileExists(atPath: directory) {
            try fm.moveItem(atPath: tmp, toPath: directory)
            return
        }
        if dsi_rename_exchange(tmp, directory) == 0 {
            try fm.removeItem(atPath: tmp)  // now holds the previous checkpoint
            return
        }
        let old = tmp + ".old"
        try fm.moveItem(atPath: directory, toPath: old)
        try fm.moveItem(atPath: tmp, toPath: directory)
        try? fm.removeItem(atPath: old)
    }

    static func syncDirectory(_ path: String) throws {
        #if os(Linux)
            let files = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
            for f in files {
                let fd = open(path + "/" + f, O_RDONLY)
                if fd >= 0 {
                    fsync(fd)
                    close(fd)
                }
            }
        #endif
    }

    /// Reads and verifies a checkpoint: the manifest's format and version, and every
    /// listed file's size and SHA-256. Returns the manifest and the files' contents;
    /// with `only`, just those of the listed files that are named there.
    public static func read(from directory: String, only: Set<String>? = nil) throws(Checkpoint.Error) -> (Manifest, [String: Data]) {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: directory, isDirectory: &isDir), isDir.boolValue else {
            throw Error(path: directory, message: "no checkpoint here (expected a directory written by `dsi train`)")
        }
        let mpath = (directory as NSString).appendingPathComponent("manifest.json")
        guard let mdata = fm.contents(atPath: mpath) else {
            throw Error(path: mpath, message: "missing: not a checkpoint, or an interrupted write (look for a .tmp- sibling and retrain)")
        }
        let manifest: Manifest
        do {
            manifest = try JSONDecoder().decode(Manifest.self, from: mdata)
        } catch {
            throw Error(path: mpath, message: "unreadable manifest (\(error))")
        }
        guard manifest.format == format else { throw Error(path: mpath, message: "format \"\(manifest.format)\", expected \"\(format)\"") }
        guard manifest.version <= version else {
            throw Error(
                path: mpath,
                message:
                    "checkpoint format version \(manifest.version) was written by a newer swift-dsi; this one reads versions \(readableVersions.lowerBound)-\(version): upgrade swift-dsi to use it"
            )
        }
        guard readableVersions.contains(manifest.version) else {
            throw Error(
                path: mpath,
                message:
                    "checkpoint format version \(manifest.version) is not one this swift-dsi reads (\(readableVersions.lowerBound)-\(version))"
            )
        }
        var files: [String: Data] = [:]
        for (name, entry) in manifest.files.sorted(by: { $0.key < $1.key }) where only?.contains(name) ?? true {
            let p = (directory as NSString).appendingPathComponent(name)
            guard let data = fm.contents(atPath: p) else { throw Error(path: p, message: "listed in manifest.json but missing") }
            guard data.count == entry.bytes else {
                throw Error(
                    path: p, message: "\(data.count) bytes, manifest.json says \(entry.bytes): the file is truncated or was changed")
            }
            guard SHA256Digest.hex(data) == entry.sha256 else {
                throw Error(path: p, message: "checksum mismatch: the file is corrupt or was changed after the checkpoint was written")
            }
            files[name] = data
        }
        return (manifest, files)
    }

    /// Verifies one listed file's size and SHA-256 by reading it in chunks (for a file
    /// that is then mapped rather than read whole). A file of at least `cacheAbove` bytes
    /// whose checksum was verified before and which has not changed since is not read
    /// again (`VerifiedFileCache`; `cache` nil: always read). Returns whether it was read.
    @discardableResult
    public static func verify(
        _ name: String, in directory: String, manifest: Manifest, cache: String? = VerifiedFileCache.directory,
        cacheAbove: Int = VerifiedFileCache.minimumBytes
    ) throws(Checkpoint.Error) -> Bool {
        let p = (directory as NSString).appendingPathComponent(name)
        guard let entry = manifest.files[name] else { throw Error(path: p, message: "missing from the checkpoint's manifest") }
        let size = (try? FileManager.default.attributesOfItem(atPath: p)[.size] as? Int) ?? nil
        guard let size else { throw Error(path: p, message: "listed in manifest.json but missing") }
        guard size == entry.bytes else {
            throw Error(path: p, message: "\(size) bytes, manifest.json says \(entry.bytes): the file is truncated or was changed")
        }
        let cache = size >= cacheAbove ? cache : nil
        if let cache, VerifiedFileCache.checksum(of: p, in: cache) == entry.sha256 { return false }
        let before = cache == nil ? nil : VerifiedFileCache.changedTime(of: p)
        guard SHA256Digest.hex(file: p) == entry.sha256 else {
            throw Error(path: p, message: "checksum mismatch: the file is corrupt or was changed after the checkpoint was written")
        }
        if let cache, let before { VerifiedFileCache.record(entry.sha256, of: p, stampedBefore: before, in: cache) }
        return true
    }
}
