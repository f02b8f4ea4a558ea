import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Checksums already verified, so that a large checkpoint file is hashed once, not at
/// every load (`dsi query` at a million documents spent about a third of its time hashing
/// 2.2 GB of weights it had hashed the time before).
///
/// After `Checkpoint.verify` has hashed a file and found the manifest's SHA-256, it
/// records the file's identity and state: device, inode, size, and the modification and
/// status-change times in nanoseconds. A later verify of a file with the same identity
/// and state takes the recorded checksum instead of reading the file. Any write to the
/// file changes its modification and status-change times; the status-change time cannot
/// be set back by a user (`touch -d` sets only the others), and replacing the file gives
/// it another inode, so a changed file is hashed again. What the record cannot see is a
/// change below the file system (a failing disk altering bytes in place): set
/// `DSI_VERIFIED_CACHE=off` to hash every file at every load, as git's index and rsync's
/// quick check trust the same stamps.
///
/// Records are small files, one per verified file, in `$DSI_VERIFIED_CACHE` (a
/// directory), else `$XDG_CACHE_HOME/swift-dsi/verified`, else
/// `~/.cache/swift-dsi/verified`; each is written to a temporary name and renamed, so
/// concurrent processes never read half a record. A file changed less than a second ago
/// is not recorded (`minimumAge`), so the first load of a checkpoint just written hashes
/// it, and a later one records it. Only files of at least
/// `minimumBytes` are recorded (small ones hash faster than a record is read). When the
/// directory cannot be made or written, nothing is recorded and every file is hashed.
public enum VerifiedFileCache {
    /// Files smaller than this are always hashed.
    public static let minimumBytes = 64 << 20
    /// Records kept at most; beyond it the oldest half is removed.
    static let maximumRecords = 512

    /// The records' directory, nil when the cache is off.
    public static var directory: String? {
        let env = ProcessInfo.processInfo.environment
        if let d = env["DSI_VERIFIED_CACHE"], !d.isEmpty { return d == "off" ? nil : d }
        if let x = env["XDG_CACHE_HOME"], !x.isEmpty { return x + "/swift-dsi/verified" }
        return NSHomeDirectory() + "/.cache/swift-dsi/verified"
    }

    /// A file's identity and state, as `stat` gives them. Not `Checkpoint.FileStamp`,
    /// which carried files are checked by: that one must leave out the status-change
    /// time, which linking a carried file into a new checkpoint changes.
    struct Stamp: Equatable {
        var device: UInt64
        var inode: UInt64
        var bytes: Int64
        var modified: Int64
        var changed: Int64

        init?(path: String) {
            var st = stat()
            guard stat(path, &st) == 0 else { return nil }
            device = UInt64(st.st_dev)
            inode = UInt64(st.st_ino)
            bytes = Int64(st.st_size)
            modified = Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec)
            changed = Int64(st.st_ctim.tv_sec) * 1_000_000_000 + Int64(st.st_ctim.tv_nsec)
        }

        var recordName: String { "\(device)-\(inode)" }
        var line: String { "\(bytes) \(modified) \(changed)" }
    }

    /// The checksum recorded for the file at `path` in its present state, if any.
    public static func checksum(of path: String, in directory: String? = directory) -> String? {
        guard let directory, let stamp = Stamp(path: path),
            let text = try? String(contentsOfFile: directory + "/" + stamp.recordName, encoding: .utf8)
        else { return nil }
        let parts = text.split(separator: "\n", omittingEmptySubsequences: false)
        guard parts.count >= 2, parts[0] == stamp.line, parts[1].count == 64 else { return nil }
        return String(parts[1])
    }

    /// A file is recorded only once its last change is at least this old. File times
    /// come from a coarse clock: a write in the same tick as an earlier one can leave the
    /// times as they were, so a record of a file changed a moment ago could outlive a
    /// second change (git's "racy clean" entries). A file changed longer ago than that
    /// gets a later time from any further write.
    public static let minimumAge: Int64 = 1_000_000_000

    /// Records that the file at `path`, as it is now, has checksum `sha256` (verified by
    /// the caller against its manifest). Not recorded: a file whose status-change time is
    /// not `stampedBefore` (it changed while it was hashed), or is less than `minimumAge`
    /// old.
    ///
    /// `recent` records a file changed less than `minimumAge` ago, for the one change the
    /// caller made itself and knows the result of: a file it has just written into its
    /// own temporary checkpoint directory and hashed, or a carried file it has just
    /// linked (a link changes the status-change time, not the bytes). Without it, the
    /// first load after every `dsi add` would hash the gigabytes the add had linked.
    public static func record(
        _ sha256: String, of path: String, stampedBefore before: Int64? = nil, recent: Bool = false, in directory: String? = directory
    ) {
        guard let directory, let stamp = Stamp(path: path), stamp.bytes >= 0 else { return }
        if let before, before != stamp.changed { return }
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        guard recent || Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec) - stamp.changed >= minimumAge else { return }
        let fm = FileManager.default
        guard (try? fm.createDirectory(atPath: directory, withIntermediateDirectories: true)) != nil else { return }
        let final = directory + "/" + stamp.recordName
        let tmp = final + ".tmp-\(getpid())"
        guard (try? (stamp.line + "\n" + sha256 + "\n").write(toFile: tmp, atomically: false, encoding: .utf8)) != nil,
            rename(tmp, final) == 0
        else {
            unlink(tmp)
            return
        }
        prune(directory)
    }

    /// The state a later `record` compares with: the file's status-change time now.
    static func changedTime(of path: String) -> Int64? { Stamp(path: path)?.changed }

    /// Keeps the directory at most `maximumRecords` records: the oldest half goes when it
    /// grows past that (records of files since deleted are never read again).
    private static func prune(_ directory: String) {
        let fm = FileManager.default
        guard let names = try? fm.contentsOfDirectory(atPath: directory), names.count > maximumRecords else { return }
        let dated: [(String, Date)] = names.compactMap { n in
            let p = directory + "/" + n
            return ((try? fm.attributesOfItem(atPath: p)[.modificationDate]) as? Date).map { (p, $0) }
        }
        for (p, _) in dated.sorted(by: { $0.1 < $1.1 }).prefix(dated.count / 2) { unlink(p) }
    }
}
