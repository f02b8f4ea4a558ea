import DSITensor
import DSIText

/// A document being added, tokenized into the views it is fitted and rehearsed on.
struct NewDocument {
    var document: Document
    var full: [Int32], title: [Int32], text: [Int32], terms: [Int32]
    var queries: [[Int32]]
    /// Random spans of the text (redrawn each replay epoch); the first is remembered.
    var spans: [[Int32]] = []

    /// Tokenizes `documents` with the index's tokenizer; key terms by the index's idf.
    static func tokenize(_ documents: [Document], queries: [(text: String, document: Int)], index: TrainedIndex) -> [NewDocument] {
        let tok = index.tokenizer
        let opts = index.options
        let idf = index.lsa?.idf ?? [Float](repeating: 1, count: tok.count)
        var news = documents.map { d in
            let full = tok.encode(d.title + " " + d.text)
            return NewDocument(
                document: d, full: full, title: tok.encode(d.title), text: tok.encode(d.text),
                terms: LSA.keyTerms(LSA.tfidfRow(full, idf: idf), opts.keyTerms), queries: [])
        }
        for q in queries where q.document >= 0 && q.document < news.count {
            let t = Array(tok.encode(q.text).prefix(opts.sourceLength))
            if !t.isEmpty { news[q.document].queries.append(t) }
        }
        return news
    }

    /// Draws `count` spans of `viewLength` tokens per document (none for short texts).
    static func drawSpans(_ news: inout [NewDocument], count: Int, viewLength L: Int, rng: inout SeededRNG) {
        for i in news.indices {
            let text = news[i].text
            news[i].spans =
                text.count > L
                ? (0..<count).map { _ in
                    let s = rng.int(below: text.count - L + 1)
                    return Array(text[s..<(s + L)])
                } : []
        }
    }

    /// Lead, title, key terms, spans and labelled queries (the non-empty ones).
    func views(viewLength L: Int) -> [[Int32]] {
        ([Array(full.prefix(L)), Array(title.prefix(L)), terms] + spans + queries).filter { !$0.isEmpty }
    }
}
