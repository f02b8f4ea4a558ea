import DSIIndex
import DSIModel
import DSITensor
import DSIText
import Foundation
import Testing

/// A corpus without labelled train queries (no qrels/train.tsv): `n` documents of five
/// sentences each, every sentence unique to its document, and one test query each.
func unlabelledCorpus(documents n: Int = 20) throws -> String {
    let animals = ["otter", "badger", "heron", "lynx", "marten", "plover", "stoat", "vole", "wren", "bison"]
    let verbs = ["hunts", "sleeps", "swims", "climbs", "sings"]
    var corpus = ""
    var queries = ""
    var test = "query-id\tcorpus-id\tscore\n"
    for i in 0..<n {
        let a = animals[i % animals.count] + "\(i)"
        let sentences = verbs.enumerated().map { j, v in "The \(a) \(v) near site \(i * 10 + j) every season." }
        corpus += "{\"id\": \"doc\(i)\", \"title\": \"On the \(a)\", \"text\": \"\(sentences.joined(separator: " "))\"}\n"
        queries += "{\"id\": \"t\(i)\", \"text\": \"where does the \(a) swim\"}\n"
        test += "t\(i)\tdoc\(i)\t1\n"
    }
    return try makeCorpus(corpus: corpus, queries: queries, qrels: ["test": test])
}

@Suite("sentences")
struct SentenceTests {
    @Test("splits at sentence ends, not at abbreviations, decimals or lower-case continuations")
    func split() {
        #expect(
            Sentences.split("The cat sat on the mat. Dogs bark at night loudly! Is it true that birds fly? Yes it is indeed so.").map(
                String.init) == [
                    "The cat sat on the mat.", "Dogs bark at night loudly!", "Is it true that birds fly?", "Yes it is indeed so.",
                ])
        #expect(
            Sentences.split("We used e.g. the method of Smith et al. in 2019 and saw a 1.5 fold change. Results were clear and strong.")
                .count == 2)
        // Quotes and brackets after the stop stay with the sentence; digits and brackets start one.
        #expect(
            Sentences.split("He said \"stop the work now.\" 12 cells died in total. (A note follows here too.)").map(String.init) == [
                "He said \"stop the work now.\"", "12 cells died in total.", "(A note follows here too.)",
            ])
    }

    @Test("a piece of fewer than four words joins the next one; a short last piece joins the one before")
    func shortPieces() {
        #expect(
            Sentences.split("BACKGROUND. Cells die often in culture. METHODS. We counted them all carefully. Done.").map(String.init) == [
                "BACKGROUND. Cells die often in culture.", "METHODS. We counted them all carefully. Done.",
            ])
        #expect(Sentences.split("Short one.").map(String.init) == ["Short one."])
        #expect(Sentences.split("").isEmpty && Sentences.split("  ...  ").isEmpty)
    }

    @Test("the sentences' tokens, joined, are the text's tokens")
    func tokensAgree() {
        let text =
            "Protein X binds Y (p < 0.05). In vivo, e.g. in mice, it fails! Über-expression? Yes: 3.5-fold.   Trailing words here without a stop"
        let tok = Tokenizer.train(texts: [text], vocabSize: 120)
        #expect(Sentences.split(text).flatMap { tok.encode(String($0)) } == tok.encode(text))
    }
}

@Suite("zero-label training")
struct ZeroLabelTests {
    func options() -> TrainingOptions {
        var o = testOptions()
        o.devFraction = 0.5
        o.sentencesPerDocument = 2
        return o
    }

    @Test("without train queries, dev is one held-out sentence per chosen document, never trained on", arguments: [0, 2])
    func heldOutDev(sentenceViews: Int) throws {
        let c = try Corpus(directory: try unlabelledCorpus())
        var lines: [String] = []
        var o = options()
        o.sentencesPerDocument = sentenceViews
        let t = try Trainer(corpus: c, options: o, log: { lines.append($0) })
        #expect(t.zeroLabel && t.trainPairs.isEmpty)
        let held = HeldOutSentences.queries(c.documents, fraction: 0.5)
        #expect(held.count >= 4 && held.count <= 16, "\(held.count) of 20 documents chosen at fraction 0.5")
        #expect(t.devQueries.count == held.count)
        #expect(lines.contains { $0.contains("zero-label training") && $0.contains("\(held.count) documents") })
        let examples = (0..<3).flatMap { t.examples(epoch: $0) }
        for q in held {
            #expect(t.devQueries.contains { $0.query == q.text && $0.relevant == [q.document] })
            #expect(!q.text.contains("hunts"), "the first sentence is never held out")
            // Its site number (a word of that sentence alone) is in no view of its document.
            let site = q.text.split(separator: " ").first { Int($0) != nil }!
            let siteTokens = t.tokenizer.encode(String(site))
            for e in examples where e.document == q.document {
                let s = e.source
                let found =
                    s.count >= siteTokens.count
                    && (0...(s.count - siteTokens.count)).contains { Array(s[$0..<($0 + siteTokens.count)]) == siteTokens }
                #expect(!found, "held-out sentence \"\(q.text)\" leaks into a view")
            }
        }
        // The held-out documents lost exactly one sentence: views of the others hold all five.
        #expect(
            HeldOutSentences.texts(c.documents, fraction: 0.5).enumerated().allSatisfy { d, text in
                Sentences.split(text).count == (held.contains { $0.document == d } ? 4 : 5)
            })
    }

    @Test("sentence views: each is one sentence of its document, drawn without repeats")
    func sentenceViews() throws {
        let c = try Corpus(directory: try unlabelledCorpus(documents: 6))
        var o = options()
        o.devFraction = 0
        o.spansPerDocument = 0
        let t = try Trainer(corpus: c, options: o)
        let sentences = c.documents.map { doc in Sentences.split(doc.text).map { Array(t.tokenizer.encode(String($0)).prefix(12)) } }
        let e = t.examples(epoch: 0)
        #expect(e.count == t.examplesPerEpoch)
        for d in c.documents.indices {
            let views = e.filter { $0.document == d }.map(\.source).filter { sentences[d].contains($0) }
            #expect(views.count == 2 && Set(views).count == 2, "document \(d): \(views.count) sentence views")
        }
    }

    @Test("view word dropout removes whole words (all their tokens), about the share asked, never every word")
    func wordDropout() throws {
        let c = try Corpus(directory: try unlabelledCorpus(documents: 6))
        var o = options()
        o.viewWordDropout = 0.3
        let t = try Trainer(corpus: c, options: o)
        let text = "the otter hunts near site 12345 every season while badgers sleep"
        let words = text.split(separator: " ").map { t.tokenizer.encode(String($0)) }
        let tokens = words.flatMap { $0 }
        var rng = SeededRNG(seed: 1)
        var kept = 0
        var total = 0
        for _ in 0..<200 {
            let out = t.dropWords(tokens, rng: &rng)
            #expect(!out.isEmpty)
            // The output is the input's words in order, each whole or absent.
            var i = 0
            for w in words where i + w.count <= out.count && Array(out[i..<(i + w.count)]) == w {
                i += w.count
                kept += 1
            }
            #expect(i == out.count, "a word was cut: \(out)")
            total += words.count
        }
        let share = 1 - Double(kept) / Double(total)
        #expect(share > 0.25 && share < 0.35, "dropped \(share) of the words")
        var same = SeededRNG(seed: 1)
        o.viewWordDropout = 0
        #expect(try Trainer(corpus: c, options: o).dropWords(tokens, rng: &same) == tokens)
    }

    @Test("zero-label training evaluates on the held-out sentences, and dsi eval/bm25 --split dev read the same queries")
    func trainAndEvaluate() throws {
        let dir = try unlabelledCorpus()
        let c = try Corpus(directory: dir)
        let t = try Trainer(corpus: c, options: options())
        let index = try t.makeIndex(corpusFingerprint: SHA256Digest.hex(file: dir + "/corpus.jsonl")!)
        let out = tempPath("zero-label")
        let report = try t.train(index, budget: .steps(3), output: out, evalEvery: 100)
        #expect(report.devQueries == t.devQueries.count && report.devQueries > 0)
        #expect(report.devHits10 != nil && report.devHits10!.isFinite)
        var eo = Evaluation.Options()
        eo.split = "dev"
        let trained = try TrainedIndex.load(from: out, for: .search)
        let r = try Evaluation.run(trained, corpus: c, checkpoint: out, options: eo)
        #expect(r.report.all.queries == t.devQueries.count)
        #expect(Set(r.run.keys) == Set(HeldOutSentences.queries(c.documents, fraction: 0.5).map(\.id)))
        // BM25 on dev (the default fraction) searches the documents without their held-out sentences.
        let bm25 = try BM25.evaluate(c, split: "dev", k1: 1.5, b: 0.75)
        #expect(bm25.report.all.queries == HeldOutSentences.queries(c.documents, fraction: 0.1).count)
        let texts = try Evaluation.searchableTexts(c, split: "dev", devFraction: 0.5)
        for q in HeldOutSentences.queries(c.documents, fraction: 0.5) {
            #expect(!texts[q.document].contains(q.text) && c.documents[q.document].text.contains(q.text))
        }
    }

    @Test("a corpus with labelled train queries keeps them as its dev split")
    func labelledKeepsQueries() throws {
        let c = try Corpus(directory: try syntheticCorpus())
        #expect(try HeldOutSentences.corpusHasLabels(c))
        let t = try Trainer(corpus: c, options: testOptions())
        #expect(!t.zeroLabel && !t.trainPairs.isEmpty)
    }
}

@Suite("fused ranking")
struct FusionTests {
    @Test("weighted reciprocal-rank fusion of two fixed runs equals the hand computation")
    func handComputed() {
        let model = [("a", -0.1), ("b", -1.0), ("c", -3.0)]
        let bm25 = [("c", 12.0), ("d", 9.0), ("a", 3.0)]
        let plain = Fusion(method: .rrf, weight: 0.5, k: 60).fuse(model: model, bm25: bm25, top: 10)
        // a: .5/61 + .5/63; c: .5/63 + .5/61 (tie: the model ranks a higher); b: .5/62; d: .5/62 (tie: b, the model's).
        #expect(plain.map(\.document) == ["a", "c", "b", "d"])
        #expect(abs(plain[0].score - (0.5 / 61 + 0.5 / 63)) < 1e-12 && abs(plain[2].score - 0.5 / 62) < 1e-12)
        let lexical = Fusion(method: .rrf, weight: 0.2, k: 60).fuse(model: model, bm25: bm25, top: 3)
        // c: .2/63 + .8/61 = .01629; a: .2/61 + .8/63 = .01598; d: .8/62 = .01290; b: .2/62.
        #expect(lexical.map(\.document) == ["c", "a", "d"])
        #expect(abs(lexical[2].score - 0.8 / 62) < 1e-12)
        #expect(Fusion(method: .rrf, weight: 1).fuse(model: model, bm25: bm25, top: 10).map(\.document).prefix(3) == ["a", "b", "c"])
    }

    @Test("score interpolation of two fixed runs equals the hand computation")
    func scoresHandComputed() {
        let model = [("a", -0.1), ("b", -1.0), ("c", -3.0)]
        let bm25 = [("c", 12.0), ("d", 9.0), ("a", 3.0)]
        let f = Fusion(method: .scores, weight: 0.5).fuse(model: model, bm25: bm25, top: 4)
        // a: .5·e^-0.1 + .5·3/12 = .5774; c: .5·e^-3 + .5 = .5249; d: .5·9/12 = .375; b: .5·e^-1 = .1839.
        #expect(f.map(\.document) == ["a", "c", "d", "b"])
        let want = [0.5 * exp(-0.1) + 0.125, 0.5 * exp(-3.0) + 0.5, 0.375, 0.5 * exp(-1.0)]
        #expect(zip(f.map(\.score), want).allSatisfy { abs($0 - $1) < 1e-12 })
        // A weight of 0.2: c .810, d .600, a .381, b .074 (BM25's order, then the model's).
        #expect(Fusion(method: .scores, weight: 0.2).fuse(model: model, bm25: bm25, top: 4).map(\.document) == ["c", "d", "a", "b"])
    }

    @Test("z-score fusion of two fixed runs equals the hand computation; absent documents take the run's floor")
    func zscoreHandComputed() {
        let model = [("a", -0.1), ("b", -1.0), ("c", -3.0)]
        let bm25 = [("c", 12.0), ("d", 9.0), ("a", 3.0)]
        // Model: mean −4.1/3, population sd √(4.406667/3) = 1.211978; z a 1.045124, b 0.302535,
        // c −1.347659 (d, absent, takes c's). BM25: mean 8, sd √14 = 3.741657; z c 1.069045,
        // d 0.267261, a −1.336306 (b, absent, takes a's).
        let zm = ["a": 1.266667 / 1.211978, "b": 0.366667 / 1.211978, "c": -1.633333 / 1.211978]
        let zb = ["c": 4 / 14.0.squareRoot(), "d": 1 / 14.0.squareRoot(), "a": -5 / 14.0.squareRoot()]
        for (w, order) in [(0.5, ["c", "a", "b", "d"]), (0.7, ["a", "b", "c", "d"]), (0.2, ["c", "d", "a", "b"])] {
            let f = Fusion(method: .zscore, weight: w).fuse(model: model, bm25: bm25, top: 4)
            #expect(f.map(\.document) == order, "weight \(w)")
            for (d, s) in f {
                let want = w * (zm[d] ?? zm["c"]!) + (1 - w) * (zb[d] ?? zb["a"]!)
                #expect(abs(s - want) < 1e-5, "weight \(w), \(d): \(s) against \(want)")
            }
        }
        // At weight 0.5: c −0.139307, a −0.145591 (close, but c first), b −0.516886, d −0.540199.
        let half = Fusion(method: .zscore, weight: 0.5).fuse(model: model, bm25: bm25, top: 2)
        #expect(abs(half[0].score + 0.139307) < 1e-5 && abs(half[1].score + 0.145591) < 1e-5)
        // One run empty: the other's order.
        #expect(Fusion().fuse(model: model, bm25: [], top: 3).map(\.document) == ["a", "b", "c"])
        #expect(Fusion().fuse(model: [(String, Double)](), bm25: bm25, top: 3).map(\.document) == ["c", "d", "a"])
    }
}

@Suite("fusion weight chosen on dev")
struct FusionCalibrationTests {
    /// Trains a tiny model for two steps, choosing the fusion weight at the end.
    func trained(documents: Int, devFraction: Double) throws -> (index: TrainedIndex, report: TrainReport, corpus: Corpus, out: String) {
        let dir = try syntheticCorpus(documents: documents)
        let c = try Corpus(directory: dir)
        var o = testOptions()
        o.devFraction = devFraction
        let t = try Trainer(corpus: c, options: o)
        let index = try t.makeIndex(corpusFingerprint: SHA256Digest.hex(file: dir + "/corpus.jsonl")!)
        let out = tempPath("calibrated")
        let report = try t.train(index, budget: .steps(2), output: out, evalEvery: 100, calibrateFusion: true)
        return (index, report, c, out)
    }

    @Test(
        "dsi train records the grid's best weight, which dsi eval --split dev --fusion bm25 reproduces at that weight; the checkpoint and dsi add keep it"
    )
    func chosenOnDev() throws {
        let (index, report, c, out) = try trained(documents: 30, devFraction: 0.5)
        let cal = try #require(index.fusionCalibration)
        #expect(report.fusionWeight == cal.weight && cal.method == .zscore && cal.step == index.step)
        #expect(cal.grid.map(\.weight) == FusionCalibration.weights && cal.queries >= FusionCalibration.minimumQueries)
        let best = cal.grid.map(\.ndcg10).max()!
        #expect(cal.ndcg10(at: cal.weight) == best)
        // A tie goes to the weight nearest the default (0.7 for a labelled corpus).
        let tied = cal.grid.filter { $0.ndcg10 == best }.map(\.weight)
        #expect(tied.allSatisfy { abs($0 - 0.7) >= abs(cal.weight - 0.7) })
        let loaded = try TrainedIndex.load(from: out, for: .search)
        #expect(loaded.fusionCalibration == cal)
        for w in [cal.weight, 0.1, 0.9] {
            var eo = Evaluation.Options()
            eo.split = "dev"
            eo.fusion = Fusion(method: .zscore, weight: w)
            let r = try Evaluation.run(loaded, corpus: c, checkpoint: out, options: eo)
            #expect(r.report.all.queries == cal.queries)
            #expect(abs(r.report.all.ndcg10 - cal.ndcg10(at: w)!) < 1e-12, "weight \(w)")
        }
        let whole = try TrainedIndex.load(from: out)
        var fast = AddOptions()
        fast.mode = .fast
        fast.sample = 0
        let (grown, _) = try ContinualIndexer.add(whole, documents: newDocuments(["lichen"]), source: "test", options: fast)
        #expect(grown.fusionCalibration == cal)
        // Training on changes the model: the weight chosen for the old one is dropped.
        let t = try Trainer(corpus: c, options: index.options)
        _ = try t.train(whole, budget: .steps(whole.step + 1), output: tempPath("trained-on"), evalEvery: 100)
        #expect(whole.fusionCalibration == nil)
    }

    @Test("with fewer dev queries than a weight is chosen on, none is recorded and the default stays")
    func tooFewQueries() throws {
        let (index, report, c, _) = try trained(documents: 24, devFraction: 0.1)
        let dev = try EvaluationReport.qrels(c, split: "dev", devFraction: 0.1).count
        #expect(dev < FusionCalibration.minimumQueries)
        #expect(index.fusionCalibration == nil && report.fusionWeight == nil)
        if case .failure(let skipped) = try FusionCalibration.choose(index: index, corpus: c) {
            #expect(skipped.reason.contains("\(dev) dev queries"))
        } else {
            Issue.record("a weight was chosen on \(dev) queries")
        }
    }
}
