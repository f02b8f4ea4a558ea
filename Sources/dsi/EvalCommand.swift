import ArgumentParser
import DSIIndex
import Foundation

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Measure a checkpoint on a split of its corpus: Hits@1/10, MRR@10, nDCG@10, Recall@10, by seen and unseen documents.")

    @Option(help: "Checkpoint directory.") var checkpoint: String
    @Option(help: "Corpus directory (the one the checkpoint was trained on).") var corpus: String
    @Option(help: "Qrels split to evaluate (dev: the train queries dsi train holds out).") var split: String = "test"
    @Option(help: "Beam size.") var beam: Int = 10
    @Option(help: "Results per query (≤ beam).") var topK: Int = 10
    @Option(help: "Softmax at each step over all tokens (all) or only those the trie allows (allowed).") var normalization: String = "all"
    @Option(name: .customLong("run"), help: "Write a TREC run file here.") var runFile: String?
    @Option(help: "Split metrics into old and new by these documents (JSON lines with ids; default: the documents dsi add added).") var added: String?
    @Flag(help: "Instead of queries, use every document's title as a query for itself (self-retrieval).") var titles = false
    @Flag(help: "Print one JSON object.") var json = false
    @OptionGroup var compute: ComputeOptions

    func run() throws {
        try compute.apply()
        guard beam >= 1, topK >= 1, topK <= beam else { throw ValidationError("need 1 ≤ --top-k ≤ --beam") }
        guard let norm = ConstrainedBeamSearch.Normalization(rawValue: normalization) else { throw ValidationError("--normalization must be all or allowed; got '\(normalization)'") }
        let index = try TrainedIndex.load(from: checkpoint)
        let c = try Corpus(directory: corpus)
        if index.generations.count > 1 {
            // Grown by dsi add: the corpus must hold exactly the indexed documents.
            let ids = Set(c.documents.map(\.id)), indexed = Set(index.docids.corpusIDs)
            guard ids == indexed else {
                throw ValidationError("\(corpus)/corpus.jsonl does not hold the checkpoint's documents: \(indexed.subtracting(ids).count) indexed documents missing from it, \(ids.subtracting(indexed).count) of its documents not indexed")
            }
        } else {
            guard let fp = SHA256Digest.hex(file: (corpus as NSString).appendingPathComponent("corpus.jsonl")), fp == index.corpusFingerprint else {
                throw ValidationError("\(checkpoint) was not trained on \(corpus)/corpus.jsonl (its fingerprint differs)")
            }
        }
        var qrels: [String: [String: Int]] = [:]
        var texts: [String: String] = [:]
        if titles {
            for d in c.documents where !d.title.isEmpty {
                qrels["title:" + d.id] = [d.id: 1]
                texts["title:" + d.id] = d.title
            }
        } else {
            qrels = try EvaluationReport.qrels(c, split: split, devFraction: index.options.devFraction)
            for q in qrels.keys { texts[q] = c.queries[q]!.text }
        }
        let ids = qrels.keys.sorted()
        let clock = ContinuousClock()
        let t0 = clock.now
        let hits = try index.search(ids.map { texts[$0]! }, beam: beam, topK: topK, normalization: norm)
        let seconds = (clock.now - t0).seconds
        var ranked: [String: [String]] = [:], scored: [String: [(String, Float)]] = [:]
        for (q, h) in zip(ids, hits) {
            ranked[q] = h.map { index.docids.corpusIDs[$0.document] }
            scored[q] = h.map { (index.docids.corpusIDs[$0.document], $0.score) }
        }
        var result = EvaluationReport.make(run: ranked, qrels: qrels, seenDocuments: EvaluationReport.seenDocuments(c), seconds: seconds)
        if index.generations.count > 1 || added != nil {
            // Queries with a relevant document added by dsi add (or listed in --added) are
            // "new", the rest "old".
            let first = index.generations.filter { $0.generation > 0 }.map(\.firstDocument).min() ?? index.docids.corpusIDs.count
            let added = try self.added.map { Set(try Corpus.readDocuments($0).map(\.id)) } ?? Set(index.docids.corpusIDs[first...])
            result["old"] = Metrics.summarize(run: ranked, qrels: qrels.filter { !$0.value.keys.contains(where: added.contains) }).json
            result["new"] = Metrics.summarize(run: ranked, qrels: qrels.filter { $0.value.keys.contains(where: added.contains) }).json
        }
        if let runFile { try Metrics.trecRun(scored, tag: "swift-dsi").write(toFile: runFile, atomically: true, encoding: .utf8) }
        if json {
            print(String(data: try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys]), encoding: .utf8)!)
        } else {
            print(EvaluationReport.text(result, title: titles ? "titles as queries" : "split \(split)"))
        }
    }
}
