import DSITensor

extension ContinualIndexer {
    /// Self-retrieval on samples, into `report`: new documents by their title and a span
    /// (Hits@1, Hits@10); old documents by their title, before and after (Hits@10).
    static func forgettingReport(
        _ report: inout AddReport, old: TrainedIndex, grown: TrainedIndex, news: [NewDocument], sample: Int, seed: UInt64
    ) throws {
        let D0 = old.docids.corpusIDs.count
        let opts = old.options
        var rng = SeededRNG(seed: seed &+ 0x5A)
        func hits(_ r: [[ConstrainedBeamSearch.Hit]], _ targets: [Int], _ k: Int) -> Double? {
            targets.isEmpty
                ? nil
                : Double(zip(r, targets).filter { pair in pair.0.prefix(k).contains { $0.document == pair.1 } }.count)
                    / Double(targets.count)
        }
        var oldDocs = (0..<D0).filter { !old.titles[$0].isEmpty }
        oldDocs.shuffle(using: &rng)
        oldDocs = Array(oldDocs.prefix(sample))
        let oldQueries = oldDocs.map { old.encode(old.titles[$0]) }
        report.oldSelfHits10Before = hits(try old.search(tokens: oldQueries), oldDocs, 10)
        report.oldSelfHits10After = hits(try grown.search(tokens: oldQueries), oldDocs, 10)
        var newDocs = Array(news.indices)
        newDocs.shuffle(using: &rng)
        newDocs = Array(newDocs.prefix(sample))
        var qs: [[Int32]] = []
        var targets: [Int] = []
        for i in newDocs {
            let n = news[i]
            if !n.title.isEmpty {
                qs.append(Array(n.title.prefix(opts.sourceLength)))
                targets.append(D0 + i)
            }
            if let s = n.spans.first ?? (n.text.isEmpty ? nil : Array(n.text.prefix(opts.viewLength))) {
                qs.append(s)
                targets.append(D0 + i)
            }
        }
        let r = try grown.search(tokens: qs)
        report.newSelfHits1 = hits(r, targets, 1)
        report.newSelfHits10 = hits(r, targets, 10)
        report.sampledOld = oldDocs.count
        report.sampledNew = newDocs.count
    }
}
