import ArgumentParser
import DSIIndex
import Foundation

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Measure a checkpoint on a split of its corpus: Hits@1/10, MRR@10, nDCG@10, Recall@10, by seen and unseen documents.")

    @Option(help: "Checkpoint directory.") var checkpoint: String
    @Option(help: "Corpus directory (the one the checkpoint was trained on).") var corpus: String
    @Option(help: "Qrels split to evaluate.") var split: String = "test"
    @Option(help: "Beam size.") var beam: Int = 10
    @Option(help: "Results per query (≤ beam).") var topK: Int = 10
    @Option(name: .customLong("run"), help: "Write a TREC run file here.") var runFile: String?
    @Flag(help: "Instead of queries, use every document's title as a query for itself (self-retrieval).") var titles = false
    @Flag(help: "Print one JSON object.") var json = false
    @OptionGroup var compute: ComputeOptions

    func run() throws {
        try compute.apply()
        guard beam >= 1, topK >= 1, topK <= beam else { throw ValidationError("need 1 ≤ --top-k ≤ --beam") }
        let index = try TrainedIndex.load(from: checkpoint)
        let c = try Corpus(directory: corpus)
        guard let fp = SHA256Digest.hex(file: (corpus as NSString).appendingPathComponent("corpus.jsonl")), fp == index.corpusFingerprint else {
            throw ValidationError("\(checkpoint) was not trained on \(corpus)/corpus.jsonl (its fingerprint differs)")
        }
        var qrels: [String: [String: Int]] = [:]
        var texts: [String: String] = [:]
        if titles {
            for d in c.documents where !d.title.isEmpty {
                qrels["title:" + d.id] = [d.id: 1]
                texts["title:" + d.id] = d.title
            }
        } else {
            qrels = try c.qrels(split: split).judgements
            for q in qrels.keys { texts[q] = c.queries[q]!.text }
        }
        let ids = qrels.keys.sorted()
        let clock = ContinuousClock()
        let t0 = clock.now
        let hits = try index.search(ids.map { texts[$0]! }, beam: beam, topK: topK)
        let seconds = (clock.now - t0).seconds
        var ranked: [String: [String]] = [:], scored: [String: [(String, Float)]] = [:]
        for (q, h) in zip(ids, hits) {
            ranked[q] = h.map { index.docids.corpusIDs[$0.document] }
            scored[q] = h.map { (index.docids.corpusIDs[$0.document], $0.score) }
        }
        var result = Metrics.summarize(run: ranked, qrels: qrels).json
        result["ms_per_query"] = ids.isEmpty ? 0 : 1000 * seconds / Double(ids.count)
        // Seen documents: relevant to some train query.
        let seenDocs = Set(((try? c.qrels(split: "train"))?.judgements.values.flatMap { $0.keys }) ?? [])
        let seenQ = qrels.filter { $0.value.keys.contains(where: seenDocs.contains) }
        let unseenQ = qrels.filter { !$0.value.keys.contains(where: seenDocs.contains) }
        result["seen"] = Metrics.summarize(run: ranked, qrels: seenQ).json
        result["unseen"] = Metrics.summarize(run: ranked, qrels: unseenQ).json
        if let runFile { try Metrics.trecRun(scored, tag: "swift-dsi").write(toFile: runFile, atomically: true, encoding: .utf8) }
        if json {
            print(String(data: try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys]), encoding: .utf8)!)
        } else {
            let what = titles ? "titles as queries" : "split \(split)"
            print(String(format: "%@: %d queries, hits@1 %.3f, hits@10 %.3f, mrr@10 %.3f, ndcg@10 %.3f, recall@10 %.3f, %.1f ms/query",
                         what, ids.count, result["hits@1"] as! Double, result["hits@10"] as! Double, result["mrr@10"] as! Double,
                         result["ndcg@10"] as! Double, result["recall@10"] as! Double, result["ms_per_query"] as! Double))
            for (name, part) in [("seen", result["seen"]), ("unseen", result["unseen"])] {
                let p = part as! [String: Any]
                print(String(format: "  %@: %d queries, hits@10 %.3f, ndcg@10 %.3f", name, p["queries"] as! Int, p["hits@10"] as! Double, p["ndcg@10"] as! Double))
            }
        }
    }
}
