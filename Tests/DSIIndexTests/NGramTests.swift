import DSIIndex
import DSIModel
import DSITensor
import DSIText
import Foundation
import Testing

/// Random documents over a small alphabet (so n-grams repeat within and across them).
private func randomDocuments(_ n: Int, alphabet: Int32, seed: UInt64) -> [[Int32]] {
    var rng = SeededRNG(seed: seed)
    return (0..<n).map { _ in (0..<rng.int(below: 30)).map { _ in Int32(rng.int(below: Int(alphabet))) } }
}

/// Every (document, start) where `ngram` occurs, by scanning.
private func occurrences(_ ngram: [Int32], in docs: [[Int32]]) -> [(Int, Int)] {
    var out: [(Int, Int)] = []
    for (d, doc) in docs.enumerated() where doc.count >= ngram.count {
        for s in 0...(doc.count - ngram.count) where Array(doc[s..<(s + ngram.count)]) == ngram { out.append((d, s)) }
    }
    return out
}

@Suite("n-gram index and n-gram retrieval (--docids ngrams)")
struct NGramTests {
    @Test("the index finds exactly the documents and occurrences of an n-gram, and its continuations, as a scan does")
    func againstScan() {
        let docs = randomDocuments(40, alphabet: 5, seed: 3)
        let index = NGramIndex(documents: docs, depth: 4)
        #expect(index.documentCount == 40 && index.tokenCount == docs.map(\.count).reduce(0, +))
        var rng = SeededRNG(seed: 9)
        for _ in 0..<300 {
            let n = 1 + rng.int(below: 4)
            let ngram = (0..<n).map { _ in Int32(rng.int(below: 6)) }  // token 5 never occurs
            let scan = occurrences(ngram, in: docs)
            let r = index.range(of: ngram)
            #expect(r.count == scan.count, "count of \(ngram)")
            #expect(index.documents(r) == Array(Set(scan.map(\.0))).sorted(), "documents of \(ngram)")
            let found = r.map { i in
                let p = index.position(i)
                let d = index.document(at: p)
                return (d, p - index.starts[d])
            }
            #expect(Set(found.map { "\($0.0):\($0.1)" }) == Set(scan.map { "\($0.0):\($0.1)" }), "positions of \(ngram)")
            if n < 4 {
                // The continuations: the tokens that follow some occurrence, each with its range.
                var follow = Set<Int32>()
                for (d, s) in scan where s + n < docs[d].count { follow.insert(docs[d][s + n]) }
                let cont = index.continuations(r, length: n)
                #expect(cont.map(\.token) == follow.sorted(), "continuations of \(ngram)")
                for c in cont { #expect(c.range == index.range(of: ngram + [c.token])) }
            }
        }
        // Never across a document boundary.
        let two = NGramIndex(documents: [[1, 2], [3, 4]], depth: 3)
        #expect(two.count([2, 3]) == 0 && two.count([1, 2]) == 1 && two.count([4]) == 1)
        #expect(two.continuations(two.range(of: [2]), length: 1).isEmpty)
    }

    @Test("appending documents equals building the index at once, and the file round-trips")
    func appendAndFile() throws {
        let docs = randomDocuments(30, alphabet: 7, seed: 5)
        var grown = NGramIndex(documents: Array(docs.prefix(20)), depth: 3)
        grown.append(Array(docs.dropFirst(20)))
        let whole = NGramIndex(documents: docs, depth: 3)
        let back = try NGramIndex.parse(whole.serialized(), vocabulary: 7, path: "ngrams.bin")
        for ngram: [Int32] in [[0], [1, 2], [3, 3, 3], [6, 0], [2, 5, 1]] {
            #expect(grown.range(of: ngram) == whole.range(of: ngram) && back.range(of: ngram) == whole.range(of: ngram))
            #expect(grown.documents(grown.range(of: ngram)) == whole.documents(whole.range(of: ngram)))
        }
        #expect(back.serialized() == whole.serialized() && grown.serialized() == whole.serialized())
        do {
            _ = try NGramIndex.parse(whole.serialized(), vocabulary: 5, path: "x/ngrams.bin")
            Issue.record("a token beyond the vocabulary should be refused")
        } catch let e as NGramIndex.FormatError {
            #expect(e.description.hasPrefix("x/ngrams.bin: token"))
        }
        #expect(throws: NGramIndex.FormatError.self) { try NGramIndex.parse(whole.serialized().dropLast(2), vocabulary: 7, path: "p") }
    }

    @Test("documents are scored by SEAL's intersective aggregation, computed by hand")
    func handScored() throws {
        // Tokens 0 "a", 1 "b", 2 "c", 3 "d", 4 "e". Text positions: document 0 at 0-3,
        // document 1 at 5-8 ("c" 5, "d" 6, "a b" 7-8), document 2 at 10-14; 13 tokens.
        let docs: [[Int32]] = [[0, 1, 2, 0], [2, 3, 0, 1], [4, 4, 4, 4, 4]]
        let index = NGramIndex(documents: docs, depth: 3)
        let model = try Seq2Seq(
            config: ModelConfig(dModel: 8, heads: 2, ff: 16, encoderLayers: 1, decoderLayers: 1, sourceVocab: 8, targetVocab: 8), seed: 1)
        let search = NGramSearch(model: model, index: index, wordStart: [Bool](repeating: true, count: 5), beam: 4, topK: 3)
        func w(_ logp: Double, _ count: Int) -> Float {
            let snr = log((Double(count) + 5) / (13 + 5))
            let s = (logp + log(1 - exp(snr))) - (snr + log(1 - exp(logp)))
            return s > 0 ? Float(s * s) : 0
        }
        func key(_ t: [Int32], _ logp: Float) -> NGramSearch.Key { NGramSearch.Key(tokens: t, logp: logp) }
        #expect(abs(search.weight(logp: -0.5, count: 2) - w(-0.5, 2)) < 1e-4)
        // Each key counts once per document; "e" is so frequent that its weight is 0.
        let (wab, wc, wd) = (w(-0.3, 2), w(-0.6, 2), w(-1.0, 1))
        try #require(w(-3.0, 5) == 0 && wab > wc && wc > wd && wd > 0)
        let hits = search.rank([key([0, 1], -0.3), key([2], -0.6), key([3], -1.0), key([4], -3.0)])
        #expect(hits.map(\.document) == [1, 0])
        #expect(abs(hits[0].score - (wab + wc + wd)) < 1e-4 && abs(hits[1].score - (wab + wc)) < 1e-4)
        // A key sharing a token kind with a heavier key of the document counts
        // 1 − β + β × 1/2 = 0.6 of its weight ("c a" after "a b" in document 0).
        let wca = w(-1.0, 1)
        try #require(wca > 0 && wca < wab)
        let shared = search.rank([key([0, 1], -0.3), key([2, 0], -1.0)])
        #expect(shared.map(\.document) == [0, 1] && abs(shared[0].score - (wab + 0.6 * wca)) < 1e-4 && abs(shared[1].score - wab) < 1e-4)
        // An occurrence overlapping a heavier key's occurrence does not count: "b c"
        // (document 0, positions 1-2) is heavier than "a b", whose occurrence at 0-1 then
        // counts nothing for document 0; document 1's does.
        let wbc = w(-0.35, 1)
        try #require(wbc > wab)
        let overlap = search.rank([key([0, 1], -0.3), key([1, 2], -0.35)])
        #expect(overlap.map(\.document) == [0, 1] && abs(overlap[0].score - wbc) < 1e-4 && abs(overlap[1].score - wab) < 1e-4)
    }

    @Test("generated keys are corpus n-grams that start with a word, and training, saving, loading and adding work")
    func endToEnd() throws {
        let c = try Corpus(directory: try syntheticCorpus())
        var o = testOptions(.ngrams)
        o.sourceLength = 24
        let t = try Trainer(corpus: c, options: o)
        let index = try t.makeIndex(corpusFingerprint: "f")
        let ngrams = try #require(index.ngrams)
        #expect(
            index.model.config.targetVocab == index.tokenizer.count + 3 && index.model.config.targetLength == TrainingOptions.ngramLength)
        // Every document's own title finds it with the untrained, LSA-initialised model.
        let titles = try index.search(c.documents.map(\.title), beam: 5, topK: 3)
        let found = zip(titles, c.documents.indices).filter { $0.0.first?.document == $0.1 }.count
        #expect(Double(found) / Double(c.documents.count) >= 0.8, "untrained title hits@1 \(found)/\(c.documents.count)")
        let wordStart = index.tokenizer.vocab.map { $0.hasPrefix(Tokenizer.wordMarker) }
        let search = NGramSearch(model: index.model, index: ngrams, wordStart: wordStart, beam: 5)
        for keys in try search.generate([index.encode("what is a comet"), index.encode("cedar facts")]) {
            #expect(!keys.isEmpty)
            for k in keys {
                #expect(ngrams.count(k.tokens) > 0 && wordStart[Int(k.tokens[0])] && k.logp <= 0, "key \(k.tokens)")
            }
        }
        let out = tempPath("ngrams")
        let report = try t.train(index, budget: .steps(6), output: out, evalEvery: 100)
        #expect(report.steps == 6 && report.loss.map(\.isFinite) == true)
        let back = try TrainedIndex.load(from: out)
        let lean = try TrainedIndex.load(from: out, for: .search)
        let qs = ["what is a comet", "cedar facts", ""]
        #expect(try back.search(qs) == index.search(qs) && lean.search(qs) == index.search(qs))
        #expect(back.docids.scheme == .ngrams && back.ngrams?.serialized() == ngrams.serialized())
        // Score fusion takes n-gram scores relative to the query's best (not as log-probabilities).
        let fs = try FusedSearch(
            fusion: Fusion(method: .scores, weight: 1), index: back, corpusIDs: c.documents.map(\.id),
            texts: c.documents.map { $0.title + " " + $0.text })
        let modelHits = try back.search(["cedar facts"])
        let fused = fs.fuse(queries: ["cedar facts"], modelHits: modelHits, topK: 10)[0]
        #expect(abs((fused.first?.score ?? 0) - 1) < 1e-6 && fused.first?.document == modelHits[0].first?.document)
        for (f, h) in zip(fused, modelHits[0]) where h.score > 0 {
            #expect(abs(f.score - h.score / modelHits[0][0].score) < 1e-5)
        }
        // A new document is searchable by its own words at once; nothing is trained.
        let doc = Document(id: "new1", title: "Comet falcon glacier", text: "The comet falcon glacier route.")
        var add = AddOptions()
        add.sample = 0
        let (grown, r) = try ContinualIndexer.add(
            back, documents: [doc], queries: [("route of the comet falcon", 0)], source: "test", options: add)
        let D = c.documents.count
        #expect(r.steps == 0 && grown.docids.corpusIDs.last == "new1" && grown.ngrams?.documentCount == D + 1)
        #expect(grown.model === back.model)
        // Its labelled query is remembered (for a later retraining), like every other view.
        #expect(
            grown.memory.views.contains { $0.document == D && $0.kind == .query && $0.tokens == grown.encode("route of the comet falcon") })
        let phrase = grown.encode("comet falcon glacier")
        let only = NGramSearch(model: grown.model, index: grown.ngrams!, wordStart: wordStart).rank([.init(tokens: phrase, logp: -0.1)])
        #expect(only.map(\.document) == [D], "the new document alone holds the phrase")
        #expect(try grown.search(["comet falcon glacier route"])[0].contains { $0.document == D })
        let out2 = tempPath("ngrams-added")
        try grown.save(to: out2, corpusDirectory: c.directory, counts: [:])
        let reloaded = try TrainedIndex.load(from: out2, for: .search)
        #expect(try reloaded.search(["comet falcon glacier route"]) == grown.search(["comet falcon glacier route"]))
    }
}
