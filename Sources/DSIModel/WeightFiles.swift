import DSITensor
import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// One file of a model's weights: a whole checkpoint's `model.safetensors`, or the file
/// of one generation of added documents that holds only the rows the add grew.
///
/// A model's weights are a list of such files in order; each holds some of each entry's
/// floats (its extents), and a later file's extent wins where two overlap. A whole file
/// holds every entry from its first float (with its shape then, which may have fewer rows
/// than the grown model's). A generation file holds flat slices: tensor `name` of shape
/// [n] is the entry's floats `from..<from + n`, with `from` in the metadata key
/// `sliceKey + name`. `writeWeightDelta` starts each slice at the page that holds the
/// first new float (repeating the old floats before it on that page), so every extent
/// starts on a page, in the file and in the arena, and the whole list maps into one
/// contiguous arena without a copy (`Seq2Seq.useWeightFiles`).
public struct WeightFile: Sendable, Equatable {
    public struct Extent: Sendable, Equatable {
        /// The model entry (parameter name).
        public let name: String
        /// The entry's rows in this file when it holds the entry whole (nil: a slice).
        public let shape: [Int]?
        /// The first float of the entry this extent holds, and how many.
        public let from: Int
        public let count: Int
        /// Where the floats start in the file (bytes).
        public let fileOffset: Int
    }

    public static let pageBytes = 4096
    /// The metadata key prefix that marks a slice and gives its first float.
    public static let sliceKey = "swift-dsi.from."

    public let path: String
    public let size: Int
    public let extents: [Extent]

    /// Reads the header of the safetensors file at `path`.
    public init(path: String) throws(Safetensors.FormatError) {
        let file = try MappedFile(path: path)
        self.path = path
        self.size = file.size
        let parsed = file.withData { d in Result { () throws(Safetensors.FormatError) in try Safetensors.header(d, path: path) } }
        let (entries, metadata, start) = try parsed.get()
        var extents: [Extent] = []
        for (name, e) in entries {
            if let from = metadata[Self.sliceKey + name] {
                guard let f = Int(from), f >= 0, e.shape.count == 1 else {
                    throw Safetensors.FormatError(
                        path: path, message: "tensor \"\(name)\": a slice needs one dimension and a first float \(from) of at least 0")
                }
                extents.append(Extent(name: name, shape: nil, from: f, count: e.shape[0], fileOffset: start + e.range.lowerBound))
            } else {
                extents.append(
                    Extent(name: name, shape: e.shape, from: 0, count: e.shape.reduce(1, *), fileOffset: start + e.range.lowerBound))
            }
        }
        self.extents = extents.sorted { $0.fileOffset < $1.fileOffset }
    }

    /// Whether every extent starts on a page of the file and of an arena laid out with
    /// `ParameterArena.pageFloats`, and its last page lies within the file.
    var pageAligned: Bool {
        extents.allSatisfy {
            $0.fileOffset % Self.pageBytes == 0 && ($0.from * 4) % Self.pageBytes == 0
                && $0.fileOffset + Self.roundUp($0.count * 4) <= size
        }
    }

    static func roundUp(_ bytes: Int) -> Int { (bytes + pageBytes - 1) / pageBytes * pageBytes }
}

/// An anonymous memory region into which files are mapped (`MAP_FIXED`), unmapped
/// whole when the last reference goes.
public final class MappedRegion: @unchecked Sendable {
    public let base: UnsafeMutableRawPointer
    public let size: Int

    public init(bytes: Int) throws(Safetensors.FormatError) {
        size = max(WeightFile.roundUp(bytes), WeightFile.pageBytes)
        guard let p = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0), p != MAP_FAILED
        else {
            throw Safetensors.FormatError(path: "(memory)", message: "cannot reserve \(size) bytes (\(String(cString: strerror(errno))))")
        }
        base = p
    }

    deinit { munmap(base, size) }

    /// Maps `bytes` of the file at `path`, from byte `fileOffset`, at `offset` in this
    /// region (private: writes stay in this process), rounded up to whole pages. False,
    /// with nothing mapped, when either offset is not on a page or the file ends before
    /// the last page.
    public func map(path: String, fileOffset: Int, bytes: Int, at offset: Int) -> Bool {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let length = (bytes + page - 1) / page * page
        guard fileOffset % page == 0, offset % page == 0, offset + length <= size else { return false }
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, fileOffset + length <= Int(st.st_size) else { return false }
        let p = mmap(base + offset, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, fd, off_t(fileOffset))
        return p == base + offset
    }
}

extension Seq2Seq {
    /// Fills the weights from `files` in order (a later extent wins where two overlap).
    ///
    /// With `map`, the arena becomes an anonymous region into which every page-aligned
    /// extent is mapped from its file (private: writes stay in this process), so nothing
    /// is copied and only the pages a search touches become resident; an extent that is
    /// not page-aligned is copied into the region instead. Without `map`, every extent is
    /// copied into the model's own arena.
    ///
    /// Every float of every entry must come from some file, except, with `partial`, the
    /// floats past the last extent of an entry (rows a grown model adds, left zero).
    /// Returns whether every extent was mapped (the model then keeps `files`, so a model
    /// grown from it maps them too).
    @discardableResult
    public func useWeightFiles(_ files: [WeightFile], map: Bool, partial: Bool = false) throws(Safetensors.FormatError) -> Bool {
        // Check each entry's coverage: from its first float, without gaps, to its end.
        var covered: [String: Int] = [:]
        for f in files {
            for x in f.extents {
                guard let e = params.entry(x.name) else {
                    throw Safetensors.FormatError(path: f.path, message: "tensor \"\(x.name)\" is not one the model has")
                }
                if let shape = x.shape {
                    guard shape.count == e.shape.count, !shape.isEmpty, shape[0] <= e.shape[0], shape.dropFirst() == e.shape.dropFirst()
                    else {
                        throw Safetensors.FormatError(
                            path: f.path, message: "tensor \"\(x.name)\" has shape \(shape), the model expects \(e.shape)")
                    }
                }
                let end = covered[x.name] ?? 0
                guard x.from <= end, x.from + x.count <= e.count else {
                    throw Safetensors.FormatError(
                        path: f.path,
                        message:
                            "tensor \"\(x.name)\": floats \(x.from)..<\(x.from + x.count) do not continue the \(end) of the files before it within the entry's \(e.count)"
                    )
                }
                covered[x.name] = max(end, x.from + x.count)
            }
        }
        for e in params.entries where (covered[e.name] ?? 0) < e.count && !(partial && covered[e.name] != nil) {
            throw Safetensors.FormatError(
                path: files.last?.path ?? "(no weight file)",
                message: "tensor \"\(e.name)\" is missing or incomplete (\(covered[e.name] ?? 0) of \(e.count) floats)")
        }
        guard map else {
            for f in files {
                let file = try MappedFile(path: f.path)
                for x in f.extents {
                    let e = params.entry(x.name)!
                    (params.values.data + e.offset + x.from).update(
                        from: (file.base + x.fileOffset).assumingMemoryBound(to: Float.self), count: x.count)
                    file.release(x.fileOffset..<(x.fileOffset + x.count * 4))
                }
            }
            weightFiles = nil
            return false
        }
        let region = try MappedRegion(bytes: params.count * 4)
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        var allMapped = page == WeightFile.pageBytes && params.alignment % ParameterArena.pageFloats == 0
        for f in files {
            let fd = open(f.path, O_RDONLY)
            guard fd >= 0 else {
                throw Safetensors.FormatError(path: f.path, message: "cannot open (\(String(cString: strerror(errno))))")
            }
            defer { close(fd) }
            var copySource: MappedFile?
            for x in f.extents {
                let e = params.entry(x.name)!
                let dst = region.base + (e.offset + x.from) * 4
                if allMapped && f.pageAligned {
                    let p = mmap(
                        dst, WeightFile.roundUp(x.count * 4), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, fd, off_t(x.fileOffset))
                    if p == dst { continue }
                }
                allMapped = false
                if copySource == nil { copySource = try MappedFile(path: f.path) }
                dst.copyMemory(from: copySource!.base + x.fileOffset, byteCount: x.count * 4)
            }
        }
        params.adopt(
            values: Tensor(viewing: region.base.bindMemory(to: Float.self, capacity: params.count), shape: [params.count], owner: region))
        weightFiles = allMapped ? files : nil
        return allMapped
    }

    /// Writes the generation file of a grown model: for each entry with more floats than
    /// `covered` (what the files it was loaded from hold; absent: none), its floats from
    /// the page holding the first new one to its end, as a slice (`WeightFile`). Returns
    /// false, writing nothing, when no entry grew. Only for a model whose old floats are
    /// those files' (a fast add changes no old weight).
    public func writeWeightDelta(to handle: FileHandle, covered: [String: Int], metadata: [String: String] = [:]) throws {
        let pageFloats = WeightFile.pageBytes / 4
        var slices: [(name: String, shape: [Int], data: UnsafePointer<Float>?)] = []
        var meta = metadata
        for e in params.entries {
            let old = covered[e.name] ?? 0
            guard e.count > old else { continue }
            let from = old / pageFloats * pageFloats
            slices.append((e.name, [e.count - from], UnsafePointer(params.values.data + e.offset + from)))
            meta[WeightFile.sliceKey + e.name] = String(from)
        }
        try Safetensors.write(slices, metadata: meta, to: handle, alignment: WeightFile.pageBytes)
    }

    /// Floats of each entry (name → count).
    public var entryFloats: [String: Int] {
        Dictionary(uniqueKeysWithValues: params.entries.map { ($0.name, $0.count) })
    }
}
