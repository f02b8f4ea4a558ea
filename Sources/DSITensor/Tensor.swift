#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A dense Float32 tensor: a shape and contiguous row-major storage.
///
/// Storage is 64-byte aligned (what sgemm kernels like). A tensor either owns its
/// storage or is a view into another allocation (a parameter arena), in which case it
/// keeps that allocation alive. Reference semantics on purpose: the numeric code passes
/// buffers around and writes into them, as in llm.c.
public final class Tensor: @unchecked Sendable {
    public let shape: [Int]
    public let count: Int
    public let data: UnsafeMutablePointer<Float>
    private let owner: AnyObject?
    private let owns: Bool
    /// Bytes of an anonymous mapping holding the storage (0: heap storage).
    private let mapped: Int

    /// A new zero-filled tensor. Large ones (1 MiB and up) are fresh anonymous pages
    /// from the kernel, zero already and not resident until written or read, so a
    /// buffer that is replaced or used in part costs no memory for the rest.
    public init(zeros shape: [Int]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        self.shape = shape
        self.count = shape.reduce(1, *)
        let bytes = max(1, count) * MemoryLayout<Float>.stride
        if bytes >= 1 << 20, let p = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), p != MAP_FAILED {
            self.data = p.bindMemory(to: Float.self, capacity: max(1, count))
            self.mapped = bytes
        } else {
            let raw = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
            self.data = raw.bindMemory(to: Float.self, capacity: max(1, count))
            data.update(repeating: 0, count: max(1, count))
            self.mapped = 0
        }
        self.owner = nil
        self.owns = true
    }

    /// A new tensor whose contents are unspecified until written (for buffers every
    /// element of which is written before it is read, such as KV caches).
    public init(uninitialized shape: [Int]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        self.shape = shape
        self.count = shape.reduce(1, *)
        let raw = UnsafeMutableRawPointer.allocate(
            byteCount: max(1, count) * MemoryLayout<Float>.stride, alignment: 64)
        self.data = raw.bindMemory(to: Float.self, capacity: max(1, count))
        self.owner = nil
        self.owns = true
        self.mapped = 0
    }

    /// A tensor holding `values`, which must have `shape.reduce(1, *)` elements.
    public convenience init(_ values: [Float], shape: [Int]) {
        self.init(zeros: shape)
        precondition(values.count == count, "\(values.count) values for shape \(shape)")
        values.withUnsafeBufferPointer { data.update(from: $0.baseAddress!, count: count) }
    }

    /// A view of `count` floats at `pointer`, kept valid by `owner`.
    public init(viewing pointer: UnsafeMutablePointer<Float>, shape: [Int], owner: AnyObject) {
        self.shape = shape
        self.count = shape.reduce(1, *)
        self.data = pointer
        self.owner = owner
        self.owns = false
        self.mapped = 0
    }

    deinit {
        if mapped > 0 {
            munmap(UnsafeMutableRawPointer(data), mapped)
        } else if owns {
            UnsafeMutableRawPointer(data).deallocate()
        }
    }

    public var buffer: UnsafeMutableBufferPointer<Float> {
        UnsafeMutableBufferPointer(start: data, count: count)
    }

    public subscript(i: Int) -> Float {
        get { data[i] }
        set { data[i] = newValue }
    }

    public func toArray() -> [Float] { Array(buffer) }

    public func zero() { data.update(repeating: 0, count: count) }

    /// Zeroes elements `ranges` (sorted, not overlapping). On mapped storage the pages
    /// that hold them are handed back to the kernel instead (`madvise(MADV_DONTNEED)`):
    /// they read as zero and take no memory until written again. Those pages' other
    /// elements become zero too, so use it only where they are zero or are to be.
    public func zeroReleasingPages(_ ranges: [Range<Int>]) {
        guard mapped > 0 else {
            for r in ranges { (data + r.lowerBound).update(repeating: 0, count: r.count) }
            return
        }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let base = UnsafeMutableRawPointer(data)
        var run: Range<Int>? = nil  // pages [lo, hi) still to release
        func flush() {
            if let r = run { _ = madvise(base + r.lowerBound * page, r.count * page, Int32(MADV_DONTNEED)) }
        }
        for r in ranges where !r.isEmpty {
            let lo = r.lowerBound * 4 / page
            let hi = (r.upperBound * 4 - 1) / page + 1
            if let cur = run, lo <= cur.upperBound {
                run = cur.lowerBound..<max(cur.upperBound, hi)
            } else {
                flush()
                run = lo..<hi
            }
        }
        flush()
    }

    /// Resident pages of mapped storage (`mincore(2)`); nil for heap storage.
    public var residentPages: Int? {
        guard mapped > 0 else { return nil }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        var vec = [UInt8](repeating: 0, count: (mapped + page - 1) / page)
        guard mincore(UnsafeMutableRawPointer(data), mapped, &vec) == 0 else { return nil }
        return vec.reduce(0) { $0 + Int($1 & 1) }
    }

    public func fill(_ value: Float) { data.update(repeating: value, count: count) }

    public func copy(from other: Tensor) {
        precondition(other.count == count, "copy of \(other.shape) into \(shape)")
        data.update(from: other.data, count: count)
    }
}

/// A growable scratch buffer: reused across calls, reallocated only when a larger size is
/// asked for. Contents are unspecified after `reserve`.
public final class Scratch: @unchecked Sendable {
    public private(set) var capacity = 0
    public private(set) var data: UnsafeMutablePointer<Float>

    public init() {
        data = UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 64)
            .bindMemory(to: Float.self, capacity: 16)
        capacity = 16
    }

    deinit { UnsafeMutableRawPointer(data).deallocate() }

    @discardableResult
    public func reserve(_ n: Int) -> UnsafeMutablePointer<Float> {
        if n > capacity {
            UnsafeMutableRawPointer(data).deallocate()
            data = UnsafeMutableRawPointer.allocate(byteCount: n * 4, alignment: 64)
                .bindMemory(to: Float.self, capacity: n)
            capacity = n
        }
        return data
    }
}
