import DSIText

/// The dev split of a corpus without labelled train queries (zero-label training).
///
/// With no labelled queries there is nothing to hold out, so the dev queries are made
/// from the documents themselves: of each document chosen by `DevSplit` (the FNV-1a hash
/// of its id, `devFraction` of them) that has at least three sentences, one sentence
/// other than the first (also chosen by the hash) becomes a dev query for that document,
/// and `dsi train` removes that sentence from every view it trains on (lead, spans,
/// sentences, key terms, the LSA behind the docids). So a dev query's words are never
/// trained to point at its document, as a real query's are not. What it does not measure:
/// real queries' wording (SciFact's claims paraphrase abstract sentences, so they are
/// close; long natural-language requests are not). The tokenizer is trained before the
/// split and sees the held-out sentences (it learns subwords, not documents).
///
/// `dsi eval --split dev` and `dsi bm25 --split dev` on such a corpus read the same
/// queries (ids `heldout:<document id>`); BM25 then indexes the documents without them.
public enum HeldOutSentences {
    public static let queryPrefix = "heldout:"

    /// True when the corpus has labelled train queries that `dsi train` can use (a train
    /// split naming at least one document of the corpus, for a query with text).
    public static func corpusHasLabels(_ corpus: Corpus) throws -> Bool {
        guard corpus.splits.contains("train") else { return false }
        let qrels = try corpus.qrels(split: "train")
        return qrels.judgements.contains { q, docs in
            corpus.queries[q] != nil && docs.keys.contains { corpus.position(of: $0) != nil }
        }
    }

    /// True when `split` of this corpus means the held-out sentences: `dev`, with neither
    /// a dev qrels file nor labelled train queries.
    public static func definesDev(_ corpus: Corpus, split: String) throws -> Bool {
        guard split == "dev", !corpus.splits.contains("dev") else { return false }
        return try !corpusHasLabels(corpus)
    }

    /// Per chosen document (position), the index of its held-out sentence among
    /// `Sentences.split(text)`.
    public static func choose(_ documents: [Document], fraction: Double) -> [Int: Int] {
        var out: [Int: Int] = [:]
        for (d, doc) in documents.enumerated() where DevSplit.contains(doc.id, fraction: fraction) {
            let n = Sentences.split(doc.text).count
            guard n >= 3 else { continue }
            out[d] = 1 + Int((DevSplit.hash(doc.id) >> 20) % UInt64(n - 1))
        }
        return out
    }

    /// The dev queries: (query id, sentence, document position), in document order.
    public static func queries(_ documents: [Document], fraction: Double) -> [(id: String, text: String, document: Int)] {
        choose(documents, fraction: fraction).sorted { $0.key < $1.key }.map { d, s in
            (queryPrefix + documents[d].id, String(Sentences.split(documents[d].text)[s]), d)
        }
    }

    /// Each document's text without its held-out sentence (the others unchanged).
    public static func texts(_ documents: [Document], fraction: Double) -> [String] {
        let held = choose(documents, fraction: fraction)
        return documents.enumerated().map { d, doc in
            guard let s = held[d] else { return doc.text }
            return Sentences.split(doc.text).enumerated().filter { $0.offset != s }.map { String($0.element) }.joined(separator: " ")
        }
    }
}
