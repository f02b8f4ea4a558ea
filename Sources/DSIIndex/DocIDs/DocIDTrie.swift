/// The prefix trie of all docids (as decoder tokens), with an end marker (EOS), after
/// GENRE's trie: `allowedNext(prefix)` gives the tokens that may follow; an unknown
/// prefix gives nothing. Nodes live in flat arrays (children as sorted (token, node)
/// pairs), so a trie of many docids stays compact.
public struct DocIDTrie: Sendable {
    private var children: [[(token: Int32, node: Int32)]] = [[]]
    /// Document index per node whose path is a complete docid (followed by EOS).
    private var terminal: [Int32] = [-1]

    public init() {}

    public init(_ v: TargetVocabulary) {
        for (i, t) in v.tokens.enumerated() { insert(t, document: i) }
    }

    public var nodeCount: Int { children.count }

    /// Heap bytes held: each node's child array (a 32-byte header plus 8 bytes per
    /// child, as Swift lays out arrays) and its terminal entry, plus the outer arrays.
    public var memoryBytes: Int {
        var bytes = children.capacity * 8 + terminal.capacity * 4
        for c in children where c.capacity > 0 { bytes += 32 + c.capacity * 8 }
        return bytes
    }

    /// Adds a docid (decoder tokens, without EOS) for `document`. Returns false when the
    /// docid is already present.
    @discardableResult
    public mutating func insert(_ tokens: some Collection<Int32>, document: Int) -> Bool {
        var node = 0
        for t in tokens {
            if let next = child(node, t) {
                node = next
            } else {
                let new = Int32(children.count)
                children.append([])
                terminal.append(-1)
                let pos = children[node].firstIndex { $0.token > t } ?? children[node].count
                children[node].insert((t, new), at: pos)
                node = Int(new)
            }
        }
        if terminal[node] >= 0 { return false }
        terminal[node] = Int32(document)
        return true
    }

    @inline(__always) func child(_ node: Int, _ t: Int32) -> Int? {
        for c in children[node] where c.token == t { return Int(c.node) }
        return nil
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

    public func allowed(at node: Int) -> [Int32] {
        (terminal[node] >= 0 ? [TargetVocabulary.eos] : []) + children[node].map(\.token)
    }

    /// The next node after `token` from `node` (nil for EOS or an unknown token).
    public func step(_ node: Int, _ token: Int32) -> Int? { child(node, token) }

    /// The document whose docid ends at `node`, if any.
    public func document(at node: Int) -> Int? { terminal[node] >= 0 ? Int(terminal[node]) : nil }
}
