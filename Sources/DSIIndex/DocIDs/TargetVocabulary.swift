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
/// `naive` docids) digit d is token 3 + d; `atomic` document i is token 3 + i; `terms`
/// symbols (tokenizer tokens and numbers) are numbered in order of first appearance over
/// the documents in corpus order; `ngrams`: tokenizer token t is token 3 + t (`symbols`
/// of them), and documents have no tokens (their targets are spans of their text); with
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
    /// Tree-node tokens (`nodes` mode) by (parent node's token, or `rootKey` at the top;
    /// the path's next digit) packed in one integer: no array is built or hashed per
    /// prefix (a million docids have three million prefixes).
    private var childToken: [UInt64: Int32] = [:]
    private static let rootKey: UInt32 = .max
    /// Decoder tokens of `terms` docid symbols.
    private var symbolToken: [Int32: Int32] = [:]
    public let scheme: DocIDScheme
    private var next: Int32

    /// - Parameters:
    ///   - leafDigits: the digits of a position within a k-means leaf (semantic docids).
    ///   - symbols: the tokenizer's size (`ngrams`: the decoder generates its tokens).
    public init(_ a: DocIDAssignment, mode: DocIDTokens = .digits, leafDigits: Int = 2, symbols: Int = 0) {
        self.scheme = a.scheme
        self.mode = a.scheme == .semantic ? mode : .digits
        self.leafDigits = leafDigits
        next =
            Self.offset
            + (a.scheme == .ngrams
                ? Int32(symbols) : (a.scheme == .atomic || a.scheme == .terms ? 0 : (self.mode == .digits ? 10 : 0)))
        tokens.reserveCapacity(a.docids.count)
        for d in a.docids { append(d) }
    }

    /// Adds the next document's docid (continual indexing); returns its tokens.
    @discardableResult
    public mutating func append(_ docid: [Int32]) -> [Int32] {
        let t: [Int32]
        switch (scheme, mode) {
        case (.atomic, _):
            t = [next]
            next += 1
        case (.ngrams, _):
            t = []
        case (.terms, _):
            t = docid.map { s in
                if let tok = symbolToken[s] { return tok }
                symbolToken[s] = next
                next += 1
                return next - 1
            }
        case (.semantic, .nodes):
            var out: [Int32] = []
            var parent = Self.rootKey
            for digit in docid.prefix(max(0, docid.count - leafDigits)) {
                let key = UInt64(parent) << 32 | UInt64(UInt32(bitPattern: digit))
                let tok: Int32
                if let known = childToken[key] {
                    tok = known
                } else {
                    tok = next
                    childToken[key] = next
                    next += 1
                }
                out.append(tok)
                parent = UInt32(bitPattern: tok)
            }
            out.append(next)
            next += 1
            t = out
        default:
            t = docid.map { $0 + Self.offset }
        }
        tokens.append(t)
        return t
    }

    /// Whether every document has a decoder token of its own (atomic docids, or tree
    /// nodes), so a new document's output row can be fitted alone (`dsi add --mode fast`).
    public var hasDocumentTokens: Bool { scheme == .atomic || mode == .nodes }

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
