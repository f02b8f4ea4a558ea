/// Docids made of a document's own tokens (`DocIDScheme.terms`).
///
/// Every docid has exactly `length` symbols, so distinct docids are never prefixes of one
/// another. A symbol is a tokenizer token id (≥ 0), or a number n written as −(n + 1)
/// ("#n") where a document's tokens cannot make a free docid. A document whose key terms
/// (its highest TF-IDF tokens, strongest first) are r₁, r₂, … takes the first free of:
/// (r₁, r₂, r₃), then the other combinations of three of its first `window` terms in
/// order of their ranks (r₁ r₂ r₄, r₁ r₃ r₄, r₂ r₃ r₄, r₁ r₂ r₅, …), then (r₁, r₂, #n)
/// for the smallest free n. Documents are taken in corpus order, so the docids of a
/// corpus are a function of it, and a document added later (`dsi add`) is assigned the
/// same way against the docids that exist.
public struct TermDocIDs: Sendable {
    public static let length = 3
    /// Key terms considered for the combinations (at most `window` choose 3 of them).
    public static let window = 8

    public private(set) var taken: Set<[Int32]>

    public init(existing: [[Int32]] = []) { taken = Set(existing) }

    /// Number n as a symbol.
    public static func number(_ n: Int) -> Int32 { Int32(-(n + 1)) }

    /// The docid of a document with these key terms (strongest first), now taken.
    public mutating func assign(keyTerms: [Int32]) -> [Int32] {
        var terms: [Int32] = []
        for t in keyTerms where t >= 0 && !terms.contains(t) { terms.append(t) }
        let r = Array(terms.prefix(Self.window))
        let L = Self.length
        if r.count >= L {
            // Combinations of L ranks, ordered by their largest rank, then lexicographically.
            for last in (L - 1)..<r.count {
                for a in 0..<last {
                    for b in (a + 1)..<last {
                        let candidate = [r[a], r[b], r[last]]
                        if taken.insert(candidate).inserted { return candidate }
                    }
                }
            }
        }
        let prefix = Array(r.prefix(L - 1))
        var n = 0
        while true {
            var candidate = prefix + [Self.number(n)]
            candidate += [Int32](repeating: Self.number(0), count: L - candidate.count)
            if taken.insert(candidate).inserted { return candidate }
            n += 1
        }
    }
}
