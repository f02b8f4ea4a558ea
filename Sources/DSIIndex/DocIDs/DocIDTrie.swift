/// The prefix trie of all docids (as decoder tokens), with an end marker (EOS), after
/// GENRE's trie: `allowedNext(prefix)` gives the tokens that may follow; an unknown
/// prefix gives nothing.
///
/// Nodes are numbers; each node's children are two parallel arrays sorted by token
/// (tokens, child nodes), found by binary search. Building from a vocabulary sorts the
/// docids first and inserts them in that order, so every new child is appended at the
/// end of its parent's arrays: O(N log N) for N docids (inserting in corpus order into
/// sorted arrays was quadratic for atomic docids, whose root has N children). A later
/// `insert` (continual indexing) costs a binary search and one array insertion per token.
public struct DocIDTrie: Sendable {
    private var childTokens: [[Int32]] = [[]]
    private var childNodes: [[Int32]] = [[]]
    /// Document index per node whose path is a complete docid (followed by EOS).
    private var terminal: [Int32] = [-1]

    public init() {}

    public init(_ v: TargetVocabulary) {
        for i in Self.lexicographicOrder(v.tokens) { insert(v.tokens[i], document: i) }
    }

    /// The indices of `sequences` in lexicographic order of the sequences (a prefix
    /// before its extensions; equal ones by index). Sorted over one flat copy through
    /// pointers: comparing the arrays themselves retained and released two of them per
    /// comparison, the largest cost of loading a million docids.
    public static func lexicographicOrder(_ sequences: [[Int32]]) -> [Int] {
        var offsets = [Int](repeating: 0, count: sequences.count + 1)
        for (i, s) in sequences.enumerated() { offsets[i + 1] = offsets[i] + s.count }
        var flat: [Int32] = []
        flat.reserveCapacity(offsets[sequences.count])
        for s in sequences { flat.append(contentsOf: s) }
        var order = Array(sequences.indices)
        flat.withUnsafeBufferPointer { f in
            offsets.withUnsafeBufferPointer { o in
                order.sort { a, b in
                    let la = o[a + 1] - o[a]
                    let lb = o[b + 1] - o[b]
                    var i = 0
                    while i < min(la, lb) {
                        let x = f[o[a] + i]
                        let y = f[o[b] + i]
                        if x != y { return x < y }
                        i += 1
                    }
                    return la != lb ? la < lb : a < b
                }
            }
        }
        return order
    }

    public var nodeCount: Int { terminal.count }

    /// Heap bytes held: each non-empty child array (a 32-byte header plus 4 bytes per
    /// element, twice), the outer arrays (8 bytes per node each) and the terminal entries.
    public var memoryBytes: Int {
        var bytes = childTokens.capacity * 8 + childNodes.capacity * 8 + terminal.capacity * 4
        for c in childTokens where c.capacity > 0 { bytes += 32 + c.capacity * 4 }
        for c in childNodes where c.capacity > 0 { bytes += 32 + c.capacity * 4 }
        return bytes
    }

    /// Adds a docid (decoder tokens, without EOS) for `document`. Returns false when the
    /// docid is already present.
    @discardableResult
    public mutating func insert(_ tokens: some Collection<Int32>, document: Int) -> Bool {
        var node = 0
        for t in tokens {
            let (found, pos) = search(node, t)
            if found {
                node = Int(childNodes[node][pos])
            } else {
                let new = Int32(terminal.count)
                childTokens.append([])
                childNodes.append([])
                terminal.append(-1)
                if pos == childTokens[node].count {
                    childTokens[node].append(t)
                    childNodes[node].append(new)
                } else {
                    childTokens[node].insert(t, at: pos)
                    childNodes[node].insert(new, at: pos)
                }
                node = Int(new)
            }
        }
        if terminal[node] >= 0 { return false }
        terminal[node] = Int32(document)
        return true
    }

    /// Binary search of `t` among `node`'s children: (found, index or insertion point).
    @inline(__always) func search(_ node: Int, _ t: Int32) -> (Bool, Int) {
        let ts = childTokens[node]
        // Appending in sorted order is the common case when building.
        if let last = ts.last, last < t { return (false, ts.count) }
        var lo = 0
        var hi = ts.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if ts[mid] < t { lo = mid + 1 } else { hi = mid }
        }
        return (lo < ts.count && ts[lo] == t, lo)
    }

    @inline(__always) func child(_ node: Int, _ t: Int32) -> Int? {
        let (found, pos) = search(node, t)
        return found ? Int(childNodes[node][pos]) : nil
    }

    /// The node reached by `prefix`, or nil when no docid starts with it.
    public func node(for prefix: some Collection<Int32>) -> Int? {
        var n = 0
        for t in prefix {
            guard let next = child(n, t) else { return nil }
            n = next
        }
        return n
    }

    /// Tokens allowed after `prefix` (EOS where a docid ends there), in increasing order.
    public func allowedNext(_ prefix: some Collection<Int32>) -> [Int32] {
        guard let n = node(for: prefix) else { return [] }
        return allowed(at: n)
    }

    /// Tokens allowed at `node`, in increasing order (EOS first where a docid ends there).
    public func allowed(at node: Int) -> [Int32] {
        terminal[node] >= 0 ? [TargetVocabulary.eos] + childTokens[node] : childTokens[node]
    }

    /// The children's tokens of `node`, sorted (without EOS; no copy).
    public func childTokens(at node: Int) -> [Int32] { childTokens[node] }

    /// Whether a docid ends at `node` (EOS is allowed there).
    public func isTerminal(_ node: Int) -> Bool { terminal[node] >= 0 }

    /// The next node after `token` from `node` (nil for EOS or an unknown token).
    public func step(_ node: Int, _ token: Int32) -> Int? { child(node, token) }

    /// The document whose docid ends at `node`, if any.
    public func document(at node: Int) -> Int? { terminal[node] >= 0 ? Int(terminal[node]) : nil }
}
