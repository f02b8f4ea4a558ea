import DSIIndex
import Foundation
import Testing

@Suite("BM25")
struct BM25Tests {
    @Test("scores follow the formula, stop words are ignored and stems match")
    func formula() {
        let docs = ["The cat sat on the mat.", "Cats chase mice; a cat sleeps.", "Dogs bark at the mailman.", "Nothing here."]
        let bm = BM25(documents: docs, k1: 1.5, b: 0.75)
        let hits = bm.search("the cats", k: 10)
        #expect(hits.map(\.document) == [1, 0])
        // "cat" (stemmed from cats): df 2 of N 4; doc 1 has tf 2 and 5 terms (cat chase mice cat sleep);
        // lengths 5, 3, 3, 1 ("noth"), average 3.
        let idf = log(1 + (4 - 2 + 0.5) / (2 + 0.5))
        let norm = 1.5 * (1 - 0.75 + 0.75 * 5 / 3.0)
        let want = idf * 2 * 2.5 / (2 + norm)
        #expect(abs(Double(hits[0].score) - want) < 1e-5)
        #expect(bm.search("the of and").isEmpty)
        #expect(BM25.terms("The running dogs") == ["run", "dog"])
    }

    @Test("on SciFact test, nDCG@10 is within 0.02 of the bm25s reference (0.686)", needsCollection("scifact"))
    func scifact() throws {
        let dir = sharedCollection("scifact")
        let c = try Corpus(directory: dir)
        let qrels = try c.qrels(split: "test").judgements
        let bm = BM25(documents: c.documents.map { $0.title + " " + $0.text })
        var run: [String: [String]] = [:]
        for q in qrels.keys { run[q] = bm.search(c.queries[q]!.text, k: 10).map { c.documents[$0.document].id } }
        let s = Metrics.summarize(run: run, qrels: qrels)
        #expect(abs(s.ndcg10 - 0.686) <= 0.02, "nDCG@10 \(s.ndcg10)")
    }
}
