import DSITensor
import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A whole file mapped into memory, private and copy-on-write (writes never reach the
/// file), unmapped when the last reference goes. Pages are read from the page cache as
/// they are touched, so a search that reads a few rows of a large output head keeps only
/// those pages resident.
public final class MappedFile: @unchecked Sendable {
    public let base: UnsafeMutableRawPointer
    public let size: Int

    public init(path: String) throws(Safetensors.FormatError) {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw Safetensors.FormatError(path: path, message: "cannot open (\(String(cString: strerror(errno))))") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_size > 0 else {
            throw Safetensors.FormatError(path: path, message: "cannot read its size, or empty")
        }
        size = Int(st.st_size)
        guard let p = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0), p != MAP_FAILED else {
            throw Safetensors.FormatError(path: path, message: "cannot map (\(String(cString: strerror(errno))))")
        }
        base = p
    }

    deinit { munmap(base, size) }

    /// Drops the whole pages inside `bytes` from this process's resident set
    /// (`madvise(MADV_DONTNEED)`): for a part already copied out, so that reading a file
    /// of gigabytes through the mapping never holds more than the part being copied.
    /// Pages not written through the mapping are read again from the file if touched;
    /// pages that were written lose those writes (private mapping), so release only what
    /// was only read.
    public func release(_ bytes: Range<Int>) {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let lo = (max(0, bytes.lowerBound) + page - 1) / page * page
        let hi = min(size, bytes.upperBound) / page * page
        if hi > lo { _ = madvise(base + lo, hi - lo, Int32(MADV_DONTNEED)) }
    }

    /// The file's bytes as `Data` (no copy), valid only inside `body`: the mapping stays
    /// alive until it returns.
    public func withData<T>(_ body: (Data) throws -> T) rethrows -> T {
        try withExtendedLifetime(self) { try body(Data(bytesNoCopy: base, count: size, deallocator: .none)) }
    }
}

extension Seq2Seq {
    /// Uses the weights of a safetensors file in place: the file is mapped and, when its
    /// tensors lie in the arena's order with the arena's offsets (every file this
    /// swift-dsi writes for a model whose entries need no padding), the arena's values
    /// become a view of the mapping. Otherwise the tensors are copied in as
    /// `loadSafetensors` does. Returns whether the weights are mapped.
    @discardableResult
    public func mapSafetensors(path: String) throws -> Bool {
        let file = try MappedFile(path: path)
        return try file.withData { data in try map(file, data, path: path) }
    }

    private func map(_ file: MappedFile, _ data: Data, path: String) throws(Safetensors.FormatError) -> Bool {
        let (entries, _, start) = try Safetensors.header(data, path: path)
        let names = Set(params.entries.map(\.name))
        if let extra = entries.keys.first(where: { !names.contains($0) }) {
            throw Safetensors.FormatError(path: path, message: "tensor \"\(extra)\" is not one the model has")
        }
        var inPlace = params.isPacked && start % 16 == 0
        for e in params.entries {
            guard let f = entries[e.name] else { throw Safetensors.FormatError(path: path, message: "tensor \"\(e.name)\" is missing") }
            guard f.shape == e.shape else {
                throw Safetensors.FormatError(
                    path: path, message: "tensor \"\(e.name)\" has shape \(f.shape), the model expects \(e.shape)")
            }
            if f.range != (e.offset * 4)..<((e.offset + e.count) * 4) { inPlace = false }
        }
        let used = params.entries.last.map { $0.offset + $0.count } ?? 0
        guard inPlace, start + used * 4 <= file.size else {
            try loadSafetensors(data, path: path)
            return false
        }
        let floats = (file.base + start).bindMemory(to: Float.self, capacity: used)
        params.adopt(values: Tensor(viewing: floats, shape: [used], owner: file))
        return true
    }
}
