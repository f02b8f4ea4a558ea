import Foundation

/// The n-grams of a tokenized corpus (`DocIDScheme.ngrams`, after SEAL's FM-index): a
/// suffix array over the documents' tokens, cut at document boundaries and sorted to
/// `depth` tokens.
///
/// Every document's tokens (title then text) are laid end to end with a separator
/// between documents; the suffix array lists every token position, ordered by the (at
/// most `depth`) tokens from there to the end of its document. The positions where an
/// n-gram of at most `depth` tokens occurs are then one contiguous range of it, found
/// by binary search; the tokens that may follow an n-gram (constrained decoding) are the
/// distinct next tokens within its range, in increasing order. Sorting is `depth` passes
/// of a stable counting sort (least significant token first): O(depth × (n + V)) for n
/// tokens and V token kinds, 1.3 million tokens (SciFact) in about a second.
public struct NGramIndex: Sendable {
    /// The longest n-gram the index can look up (the sort depth).
    public let depth: Int
    /// The documents' tokens end to end, `separator` between documents (and at the end).
    public private(set) var text: [Int32] = []
    /// Where each document starts in `text`, plus the end (documents + 1 entries).
    public private(set) var starts: [Int] = [0]
    /// Every position of `text` that is not a separator, sorted by the next `depth` tokens.
    private var suffixes: [Int32] = []
    /// Tokens to the end of the document from each position (0 at a separator).
    private var remaining: [Int32] = []

    public static let separator: Int32 = -1

    public init(documents: [[Int32]], depth: Int) {
        precondition(depth >= 1, "depth must be at least 1")
        self.depth = depth
        append(documents)
    }

    public var documentCount: Int { starts.count - 1 }

    /// Tokens in the index (without separators): the denominator of an n-gram's corpus
    /// probability.
    public var tokenCount: Int { suffixes.count }

    /// The tokens of document `d`.
    public func tokens(of d: Int) -> ArraySlice<Int32> { text[starts[d]..<(starts[d + 1] - 1)] }

    /// Adds documents at the end (their positions follow the existing ones) and sorts the
    /// suffix array again.
    public mutating func append(_ documents: [[Int32]]) {
        for doc in documents {
            precondition(!doc.contains { $0 < 0 }, "tokens must be non-negative")
            text += doc
            text.append(Self.separator)
            starts.append(text.count)
        }
        sort()
    }

    private mutating func sort() {
        let n = text.count
        remaining = [Int32](repeating: 0, count: n)
        var run: Int32 = 0
        for p in stride(from: n - 1, through: 0, by: -1) {
            run = text[p] == Self.separator ? 0 : run + 1
            remaining[p] = run
        }
        var order: [Int32] = []
        order.reserveCapacity(n)
        for p in 0..<n where text[p] != Self.separator { order.append(Int32(p)) }
        let kinds = Int(text.max() ?? 0) + 2  // key 0: past the document's end
        var count = [Int](repeating: 0, count: kinds + 1)
        var sorted = [Int32](repeating: 0, count: order.count)
        for k in stride(from: depth - 1, through: 0, by: -1) {
            for i in count.indices { count[i] = 0 }
            for p in order { count[key(Int(p), k) + 1] += 1 }
            for i in 1..<count.count { count[i] += count[i - 1] }
            for p in order {
                let c = key(Int(p), k)
                sorted[count[c]] = p
                count[c] += 1
            }
            swap(&order, &sorted)
        }
        suffixes = order
    }

    /// The sort key of the suffix at `p`, `k` tokens in: token + 1, or 0 past the end of
    /// its document.
    @inline(__always) private func key(_ p: Int, _ k: Int) -> Int {
        k < Int(remaining[p]) ? Int(text[p + k]) + 1 : 0
    }

    /// All suffixes: the range of the empty n-gram.
    public var all: Range<Int> { 0..<suffixes.count }

    /// The range of suffixes that start with `ngram` (empty when it does not occur; at
    /// most `depth` tokens).
    public func range(of ngram: some Collection<Int32>) -> Range<Int> {
        precondition(ngram.count <= depth, "n-grams of at most \(depth) tokens")
        var r = all
        for (k, t) in ngram.enumerated() {
            r = narrow(r, length: k, token: t)
            if r.isEmpty { break }
        }
        return r
    }

    /// The part of `r` (the range of an n-gram of `length` tokens) whose next token is
    /// `token`: the range of the n-gram extended by it.
    public func narrow(_ r: Range<Int>, length k: Int, token: Int32) -> Range<Int> {
        precondition(k < depth, "n-grams of at most \(depth) tokens")
        let want = Int(token) + 1
        let lo = lowerBound(r, k, want)
        let hi = lowerBound(lo..<r.upperBound, k, want + 1)
        return lo..<hi
    }

    /// First index in `r` whose key at `k` is at least `want` (keys are sorted within the
    /// range of an n-gram of `k` tokens).
    private func lowerBound(_ r: Range<Int>, _ k: Int, _ want: Int) -> Int {
        var lo = r.lowerBound
        var hi = r.upperBound
        while lo < hi {
            let mid = (lo + hi) / 2
            if key(Int(suffixes[mid]), k) < want { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    /// The tokens that follow the n-gram of `length` tokens whose range is `r`, with the
    /// range of each extension, in increasing token order (a token's range found by a
    /// binary search, so the cost is the number of distinct next tokens times log |r|).
    public func continuations(_ r: Range<Int>, length k: Int) -> [(token: Int32, range: Range<Int>)] {
        guard k < depth else { return [] }
        var out: [(token: Int32, range: Range<Int>)] = []
        var i = lowerBound(r, k, 1)  // skip suffixes that end here
        while i < r.upperBound {
            let c = key(Int(suffixes[i]), k)
            let end = lowerBound(i..<r.upperBound, k, c + 1)
            out.append((Int32(c - 1), i..<end))
            i = end
        }
        return out
    }

    /// Occurrences of an n-gram (the size of its range).
    public func count(_ ngram: some Collection<Int32>) -> Int { range(of: ngram).count }

    /// The text position of suffix `i` of a range.
    public func position(_ i: Int) -> Int { Int(suffixes[i]) }

    /// The document holding text position `p`.
    public func document(at p: Int) -> Int {
        var lo = 0
        var hi = starts.count - 1
        while hi - lo > 1 {
            let mid = (lo + hi) / 2
            if starts[mid] <= p { lo = mid } else { hi = mid }
        }
        return lo
    }

    /// The distinct documents with an occurrence in `r`, in increasing order.
    public func documents(_ r: Range<Int>) -> [Int] {
        Array(Set(r.map { document(at: position($0)) })).sorted()
    }

    // MARK: - Files

    /// `ngrams.bin`: "DSINGRM1", then little-endian UInt32 depth and document count, each
    /// document's token count (UInt32), then every token (Int32), documents in order.
    public func serialized() -> Data {
        var out = Data("DSINGRM1".utf8)
        func u32(_ v: Int) { withUnsafeBytes(of: UInt32(v).littleEndian) { out.append(contentsOf: $0) } }
        u32(depth)
        u32(documentCount)
        for d in 0..<documentCount { u32(starts[d + 1] - starts[d] - 1) }
        for d in 0..<documentCount { for t in tokens(of: d) { withUnsafeBytes(of: t.littleEndian) { out.append(contentsOf: $0) } } }
        return out
    }

    public struct FormatError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Reads `serialized()`; `vocabulary` bounds the tokens.
    public static func parse(_ data: Data, vocabulary: Int, path: String) throws -> NGramIndex {
        let bytes = [UInt8](data)
        var at = 8
        func fail(_ why: String) -> FormatError { FormatError(description: "\(path): \(why)") }
        func u32() throws -> Int {
            guard at + 4 <= bytes.count else { throw fail("truncated at byte \(at) (expected a 4-byte field)") }
            let v = Int(bytes[at]) | Int(bytes[at + 1]) << 8 | Int(bytes[at + 2]) << 16 | Int(bytes[at + 3]) << 24
            at += 4
            return v
        }
        guard bytes.count >= 8, String(decoding: bytes[0..<8], as: UTF8.self) == "DSINGRM1" else {
            throw fail("not an n-gram index (expected the header \"DSINGRM1\")")
        }
        let depth = try u32()
        let documents = try u32()
        guard depth >= 1 && depth <= 64 else { throw fail("depth \(depth) (expected 1 to 64)") }
        var lengths: [Int] = []
        for _ in 0..<documents { lengths.append(try u32()) }
        guard bytes.count - at == 4 * lengths.reduce(0, +) else {
            throw fail("\(bytes.count - at) bytes of tokens; the document lengths need \(4 * lengths.reduce(0, +))")
        }
        var docs: [[Int32]] = []
        docs.reserveCapacity(documents)
        for n in lengths {
            var doc = [Int32](repeating: 0, count: n)
            for i in 0..<n {
                let t = Int32(bitPattern: UInt32(try u32()))
                guard t >= 0 && Int(t) < vocabulary else {
                    throw fail("token \(t) at byte \(at - 4) (expected 0 to \(vocabulary - 1), the tokenizer's ids)")
                }
                doc[i] = t
            }
            docs.append(doc)
        }
        return NGramIndex(documents: docs, depth: depth)
    }
}
