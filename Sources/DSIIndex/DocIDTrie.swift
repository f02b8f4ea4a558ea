/// How a docid becomes decoder tokens.
public enum DocIDTokens: String, Codable, Sendable, CaseIterable {
    /// Semantic docids: every node of the k-means tree is its own token, and so is every
    /// document (its last token), so decoding walks down the tree and each output row can
    /// start from a centroid (LSA initialisation). Other schemes use their symbols.
    case nodes
    /// One token per docid symbol: the digits 0–9 shared by all positions (DSI's
    /// semantic docids as published).
    case digits
}

/// The decoder's vocabulary: PAD, BOS, EOS, then the docid tokens. With `digits` (and
/// `naive` docids) digit d is token 3 + d; `atomic` document i is token 3 + i; with
/// `nodes` (semantic docids) tokens are numbered in order of first appearance over the
/// documents in corpus order: a document's cluster prefixes (the docid without its last
/// `leafDigits` digits, one token per prefix) and then the document itself. Documents
/// appended later keep every existing token's number.
public struct TargetVocabulary: Sendable {
    public static let pad: Int32 = 0, bos: Int32 = 1, eos: Int32 = 2, offset: Int32 = 3

    public let mode: DocIDTokens
    public let leafDigits: Int
    /// Decoder tokens of each document's docid (without BOS and EOS), in corpus order.
    public private(set) var tokens: [[Int32]] = []
    /// Tree-node tokens by cluster path (`nodes` mode).
    private var prefixToken: [[Int32]: Int32] = [:]
    public let scheme: DocIDScheme
    private var next: Int32

    /// - Parameter leafDigits: the digits of a position within a k-means leaf (semantic docids).
    public init(_ a: DocIDAssignment, mode: DocIDTokens = .digits, leafDigits: Int = 2) {
        self.scheme = a.scheme
        self.mode = a.scheme == .semantic ? mode : .digits
        self.leafDigits = leafDigits
        next = Self.offset + (a.scheme == .atomic ? 0 : (self.mode == .digits ? 10 : 0))
        tokens.reserveCapacity(a.docids.count)
        for d in a.docids { append(d) }
    }

    /// Adds the next document's docid (continual indexing); returns its tokens.
    @discardableResult
    public mutating func append(_ docid: [Int32]) -> [Int32] {
        let t: [Int32]
        switch (scheme, mode) {
        case (.atomic, _):
            t = [next]; next += 1
        case (.semantic, .nodes):
            let path = Array(docid.prefix(max(0, docid.count - leafDigits)))
            var out: [Int32] = []
            for depth in stride(from: 1, through: path.count, by: 1) {
                let p = Array(path.prefix(depth))
                if let tok = prefixToken[p] { out.append(tok) } else { prefixToken[p] = next; out.append(next); next += 1 }
            }
            out.append(next); next += 1
            t = out
        default:
            t = docid.map { $0 + Self.offset }
        }
        tokens.append(t)
        return t
    }

    /// Decoder vocabulary size (including PAD, BOS, EOS).
    public var size: Int { Int(next) }

    /// The longest docid, in decoder tokens (without EOS).
    public var maxLength: Int { tokens.map(\.count).max() ?? 0 }

    /// Decoder tokens of document `d` (without BOS, with EOS).
    public func target(_ d: Int) -> [Int32] { tokens[d] + [Self.eos] }

    /// For every docid token (index: token − offset), the documents whose docid contains
    /// it: a tree node's documents, or the document itself.
    public func members() -> [[Int]] {
        var m = [[Int]](repeating: [], count: size - Int(Self.offset))
        for (d, ts) in tokens.enumerated() { for t in ts { m[Int(t - Self.offset)].append(d) } }
        return m
    }
}

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
