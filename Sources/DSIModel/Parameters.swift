import DSITensor

/// All parameters in one allocation, with named views into it; gradients and the AdamW
/// moments are flat arrays of the same length beside it (after llm.c). Zeroing, clipping,
/// the update and saving are each one loop over flat memory.
///
/// Gradients and moments are allocated on first use, so an inference-only model holds
/// the weights alone (which may be a read-only mapping of the checkpoint's file).
///
/// Row-sparse entries (the decoder's token embedding and the output head, whose rows
/// grow with the number of documents) can be updated lazily: while `dirtyRows` is
/// known, only the listed rows of those entries may hold a non-zero gradient, and
/// zeroing, the gradient norm and AdamW visit only them (see `AdamW.update`).
public final class ParameterArena: @unchecked Sendable {
    public struct Entry: Sendable, Equatable {
        public let name: String
        public let shape: [Int]
        public let offset: Int
        public var count: Int { shape.reduce(1, *) }
        /// Weight decay applies to matrices (linear weights, embeddings), not to norms and biases.
        public var decays: Bool { shape.count >= 2 }
        /// Elements per row (first dimension).
        public var rowWidth: Int { shape.dropFirst().reduce(1, *) }
    }

    public let entries: [Entry]
    public let count: Int
    public private(set) var values: Tensor
    private var _grads: Tensor?
    private var _m: Tensor?
    private var _v: Tensor?
    private let index: [String: Int]
    /// Indices of the entries that may be updated row by row.
    public private(set) var rowSparse: [Int] = []
    /// For each row-sparse entry, the rows whose gradient may be non-zero (sorted,
    /// unique); nil when unknown (any row may be non-zero: a dense backward ran).
    public internal(set) var dirtyRows: [Int: [Int32]]? = [:]

    /// Floats per alignment step of the layout: `pageFloats` (4,096 bytes, the default,
    /// so that every entry starts on a memory page and can be mapped from a file on its
    /// own: `WeightFile`), or `legacyFloats` (64 bytes, the layout before checkpoint
    /// format 4, kept for mapping older files in place).
    public let alignment: Int
    public static let pageFloats = 1024
    public static let legacyFloats = 16

    /// Lays out `specs` (name, shape) in order, each entry at a multiple of `alignment` floats.
    public init(_ specs: [(String, [Int])], alignment: Int = ParameterArena.pageFloats) {
        self.alignment = alignment
        let layout = Self.layout(specs, alignment: alignment)
        self.entries = layout.entries
        self.count = layout.count
        self.values = Tensor(zeros: [layout.count])
        var index: [String: Int] = [:]
        for (i, e) in entries.enumerated() {
            precondition(index[e.name] == nil, "duplicate parameter name \(e.name)")
            index[e.name] = i
        }
        self.index = index
    }

    /// Offsets of `specs` laid out in order, each view starting at a multiple of
    /// `alignment` floats (and the arena's length one too).
    public static func layout(_ specs: [(String, [Int])], alignment: Int = pageFloats) -> (entries: [Entry], count: Int) {
        var entries: [Entry] = []
        var offset = 0
        for (name, shape) in specs {
            entries.append(Entry(name: name, shape: shape, offset: offset))
            offset += (shape.reduce(1, *) + alignment - 1) / alignment * alignment
        }
        return (entries, offset)
    }

    /// True when the entries follow each other with no padding between them, so the
    /// arena has the byte layout of a safetensors data section written in entry order.
    public var isPacked: Bool {
        var end = 0
        for e in entries {
            if e.offset != end { return false }
            end += e.count
        }
        return true
    }

    /// Replaces the storage of the values by `storage` (`count` floats, for example a
    /// mapping of a checkpoint file).
    public func adopt(values storage: Tensor) {
        let used = entries.last.map { $0.offset + $0.count } ?? 0
        precondition(storage.count >= used, "storage of \(storage.count) floats for parameters ending at \(used)")
        values = storage
    }

    public var grads: Tensor {
        if let g = _grads { return g }
        let g = Tensor(zeros: [count])
        _grads = g
        dirtyRows = [:]
        return g
    }

    /// AdamW first and second moments (allocated, zero, on first use).
    public var m: Tensor {
        if let t = _m { return t }
        let t = Tensor(zeros: [count])
        _m = t
        return t
    }

    public var v: Tensor {
        if let t = _v { return t }
        let t = Tensor(zeros: [count])
        _v = t
        return t
    }

    /// Whether the AdamW moments have been allocated (they are zero until then).
    public var holdsMoments: Bool { _m != nil }

    /// Whether gradients or moments have been allocated (an inference-only model has neither).
    public var holdsTrainingState: Bool { _grads != nil || _m != nil || _v != nil }

    /// Row-sparse entries of at least this many bytes hand their gradient pages back at
    /// each `zeroGrads` (smaller ones are written with zeros).
    public var releaseBytes = 16 << 20

    /// Marks entries `names` as row-sparse (updated lazily when rows are known).
    public func markRowSparse(_ names: [String]) {
        rowSparse = names.compactMap { index[$0] }.sorted()
    }

    /// Records that rows `rows` of the row-sparse entry `entry` may now hold gradient.
    func touch(entry: Int, rows: [Int32]) {
        guard var d = dirtyRows else { return }
        let old = d[entry] ?? []
        d[entry] = old.isEmpty ? rows : Array(Set(old).union(rows)).sorted()
        dirtyRows = d
    }

    /// Number of real parameters (without the alignment padding).
    public var parameterCount: Int { entries.reduce(0) { $0 + $1.count } }

    public func entry(_ name: String) -> Entry? { index[name].map { entries[$0] } }

    /// The parameter `name` as a tensor view (shares storage with the arena).
    public func tensor(_ name: String) -> Tensor {
        guard let e = entry(name) else { preconditionFailure("no parameter named \(name)") }
        return Tensor(viewing: values.data + e.offset, shape: e.shape, owner: values)
    }

    public func gradTensor(_ name: String) -> Tensor {
        guard let e = entry(name) else { preconditionFailure("no parameter named \(name)") }
        let g = grads
        dirtyRows = nil  // the caller may write anywhere
        return Tensor(viewing: g.data + e.offset, shape: e.shape, owner: g)
    }

    /// Zeroes every gradient: the dense entries whole, the row-sparse ones at their dirty
    /// rows (or whole when those are unknown).
    public func zeroGrads() {
        let g = grads
        guard let dirty = dirtyRows, !rowSparse.isEmpty else {
            g.zero()
            dirtyRows = [:]
            return
        }
        for span in denseSpans() { (g.data + span.lowerBound).update(repeating: 0, count: span.count) }
        // Large row-sparse entries (a docid per row) give their dirty rows' pages back
        // instead, so their gradient never grows resident as training reaches more of
        // their rows: at a million documents it would be 2 GB by the end of an epoch.
        // Every other element of those pages is zero by now or is a dirty row.
        for i in rowSparse {
            let e = entries[i]
            let w = e.rowWidth
            let rows = (dirty[i] ?? []).map { (e.offset + Int($0) * w)..<(e.offset + Int($0 + 1) * w) }
            if e.count * 4 >= releaseBytes {
                g.zeroReleasingPages(rows)
            } else {
                for r in rows { (g.data + r.lowerBound).update(repeating: 0, count: w) }
            }
        }
        dirtyRows = [:]
    }

    /// The arena's element ranges outside the row-sparse entries, in order.
    func denseSpans() -> [Range<Int>] {
        var spans: [Range<Int>] = []
        var start = 0
        for i in rowSparse {
            let e = entries[i]
            if e.offset > start { spans.append(start..<e.offset) }
            start = i + 1 < entries.count ? entries[i + 1].offset : count
        }
        if start < count { spans.append(start..<count) }
        return spans
    }

    /// Global L2 norm of the gradients (deterministic for any thread count).
    public func gradNorm() -> Float {
        OpProfile.shared.enter(.optimizer)
        defer { OpProfile.shared.exit() }
        let g = grads.data
        func sumSquares(_ span: Range<Int>) -> Double {
            deterministicSum(span.count) { r in
                var s: Double = 0
                for i in r {
                    let x = Double(g[span.lowerBound + i])
                    s += x * x
                }
                return s
            }
        }
        guard let dirty = dirtyRows, !rowSparse.isEmpty else { return Float(sumSquares(0..<count).squareRoot()) }
        var sq: Double = 0
        for span in denseSpans() { sq += sumSquares(span) }
        for i in rowSparse {
            let e = entries[i]
            let w = e.rowWidth
            for r in dirty[i] ?? [] {
                let row = g + e.offset + Int(r) * w
                for j in 0..<w { sq += Double(row[j]) * Double(row[j]) }
            }
        }
        return Float(sq.squareRoot())
    }
}
