import DSIIndex
import Foundation
import Testing

@Suite("retrieval metrics")
struct MetricsTests {
    @Test("hits, MRR, nDCG with graded relevance, and recall, by hand")
    func byHand() {
        let rel = ["d1": 2, "d2": 1, "d0": 0]
        let ranked = ["d3", "d1", "d2", "d0"]
        #expect(Metrics.hits(ranked, rel, at: 1) == 0 && Metrics.hits(ranked, rel, at: 2) == 1)
        #expect(Metrics.reciprocalRank(ranked, rel, at: 10) == 0.5)
        #expect(Metrics.reciprocalRank(ranked, rel, at: 1) == 0)
        // DCG = 2/log2(3) + 1/log2(4); ideal = 2/log2(2) + 1/log2(3).
        let want = (2 / log2(3.0) + 0.5) / (2 + 1 / log2(3.0))
        #expect(abs(Metrics.ndcg(ranked, rel, at: 10) - want) < 1e-12)
        #expect(Metrics.recall(ranked, rel, at: 2) == 0.5 && Metrics.recall(ranked, rel, at: 10) == 1)
        // A query missing from the run counts as zero.
        let s = Metrics.summarize(run: ["q1": ranked], qrels: ["q1": rel, "q2": ["d9": 1]])
        #expect(s.queries == 2 && s.hits10 == 0.5 && s.mrr10 == 0.25 && abs(s.ndcg10 - want / 2) < 1e-12 && s.recall10 == 0.5)
    }

    @Test("TREC run lines: qid Q0 docid rank score tag")
    func trecRun() {
        let text = Metrics.trecRun(["q2": [("b", -0.5)], "q1": [("a", -0.25), ("c", -1)]], tag: "t")
        #expect(text == "q1 Q0 a 1 -0.25 t\nq1 Q0 c 2 -1.0 t\nq2 Q0 b 1 -0.5 t\n")
    }
}

@Suite("metrics against ranx")
struct RanxFixtureTests {
    @Test("Hits@1/10, MRR@10, nDCG@10 and Recall@10 equal ranx's on the same run to 1e-6", needsCollection("scifact"))
    func ranx() throws {
        let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
        let dir = sharedCollection("scifact")
        let qrelsPath = dir + "/qrels/test.tsv"
        // The run: `dsi bm25 --corpus ../shared/corpora/scifact --split test --run FILE`, top 10;
        // the expected values: scripts/metrics_fixture.py (ranx) on the same run.
        var run: [String: [String]] = [:]
        for line in try String(contentsOf: fixtures.appendingPathComponent("scifact-test-bm25.run"), encoding: .utf8).split(separator: "\n")
        {
            let f = line.split(separator: " ")
            run[String(f[0]), default: []].append(String(f[2]))
        }
        var qrels: [String: [String: Int]] = [:]
        for (i, line) in try String(contentsOfFile: qrelsPath, encoding: .utf8).split(separator: "\n").enumerated() where i > 0 {
            let f = line.split(separator: "\t")
            if let s = Int(f[2]), s > 0 { qrels[String(f[0]), default: [:]][String(f[1])] = s }
        }
        let want =
            try JSONSerialization.jsonObject(with: Data(contentsOf: fixtures.appendingPathComponent("scifact-test-bm25.json")))
            as! [String: Double]
        let got = Metrics.summarize(run: run, qrels: qrels)
        #expect(got.queries == 300)
        #expect(abs(got.hits1 - want["hit_rate@1"]!) < 1e-6)
        #expect(abs(got.hits10 - want["hit_rate@10"]!) < 1e-6)
        #expect(abs(got.mrr10 - want["mrr@10"]!) < 1e-6)
        #expect(abs(got.ndcg10 - want["ndcg@10"]!) < 1e-6)
        #expect(abs(got.recall10 - want["recall@10"]!) < 1e-6)
    }
}
