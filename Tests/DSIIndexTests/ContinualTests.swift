import DSIIndex
import DSIModel
import DSITensor
import Foundation
import Testing

/// Documents not in `syntheticCorpus`, in its style.
func newDocuments(_ subjects: [String]) -> [Document] {
    subjects.enumerated().map { i, s in
        Document(
            id: "new\(i)", title: "All about the \(s)",
            text: "The \(s) is described here. Facts on \(s) and more \(s) details follow; the \(s) matters.")
    }
}

let newSubjects = ["zeppelin", "quokka", "tamarind", "obsidian", "kestrel", "mandolin"]

@Suite("continual indexing", .serialized)
struct ContinualTests {
    /// The synthetic corpus plus a glossary document that names the new subjects, so
    /// the tokenizer (trained on the old corpus) has tokens for their words, as it would
    /// in a real collection's vocabulary.
    func corpusWithGlossary() throws -> String {
        let dir = try syntheticCorpus(documents: 30)
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: dir + "/corpus.jsonl"))
        h.seekToEndOfFile()
        h.write(
            Data(
                "{\"id\": \"glossary\", \"title\": \"Glossary\", \"text\": \"\((0..<6).map { _ in newSubjects.joined(separator: " ") }.joined(separator: ", "))\"}\n"
                    .utf8))
        try h.close()
        return dir
    }

    func index(_ scheme: DocIDScheme, tokens: DocIDTokens = .nodes, steps: Int = 0) throws -> TrainedIndex {
        let c = try Corpus(directory: try corpusWithGlossary())
        var o = testOptions(scheme)
        o.docidTokens = tokens
        o.branching = 3
        o.leafSize = 5
        let t = try Trainer(corpus: c, options: o)
        let index = try t.makeIndex(corpusFingerprint: "f")
        if steps > 0 { _ = try t.train(index, budget: .steps(steps), output: tempPath("cont"), evalEvery: 10_000) }
        return index
    }

    @Test(
        "new docids are valid and unique, existing ones never change, and full leaves spill to new siblings",
        arguments: [("semantic", "nodes"), ("semantic", "digits"), ("atomic", "nodes"), ("naive", "nodes"), ("terms", "nodes")])
    func docids(scheme: String, tokens: String) throws {
        let old = try index(DocIDScheme(rawValue: scheme)!, tokens: DocIDTokens(rawValue: tokens)!)
        // 25 near-identical documents land in one leaf: more than it can hold (10 positions).
        let docs =
            newDocuments(newSubjects)
            + (0..<25).map {
                Document(
                    id: "same\($0)", title: "Comet facts \($0)",
                    text: "The comet is described here. Facts on comet and more comet details follow.")
            }
        var options = AddOptions()
        options.mode = .fast
        options.sample = 0
        if old.vocabulary.mode == .digits && old.vocabulary.scheme != .atomic {
            options.mode = .replay
            options.epochs = 0.01
        }
        let (grown, _) = try ContinualIndexer.add(old, documents: docs, source: "test", options: options)
        let D0 = old.docids.corpusIDs.count
        #expect(Array(grown.docids.docids.prefix(D0)) == old.docids.docids)
        #expect(Array(grown.vocabulary.tokens.prefix(D0)) == old.vocabulary.tokens)
        #expect(Set(grown.docids.docids).count == grown.docids.docids.count)
        #expect(grown.docids.corpusIDs == old.docids.corpusIDs + docs.map(\.id))
        for d in grown.docids.docids.indices {
            #expect(grown.trie.document(at: grown.trie.node(for: grown.vocabulary.tokens[d])!) == d)
        }
        if scheme == "semantic" {
            // Digit docids stay digits, of one length per leaf; no docid is a prefix of another.
            #expect(grown.docids.docids.allSatisfy { $0.allSatisfy { (0...9).contains($0) } })
            let texts = grown.docids.docids.indices.map { grown.docids.text($0) }.sorted()
            for (x, y) in zip(texts, texts.dropFirst()) { #expect(!y.hasPrefix(x), "\(x) is a prefix of \(y)") }
            let leaves = Dictionary(grouping: grown.docids.docids) { $0.dropLast(1) }
            #expect(leaves.values.allSatisfy { $0.count <= 10 })
        }
        // The model grew by exactly the new tokens; old rows are unchanged.
        #expect(grown.model.config.targetVocab == grown.vocabulary.size)
        if options.mode == .fast {
            let a = old.model.params.tensor("lm_head.weight")
            let b = grown.model.params.tensor("lm_head.weight")
            var same = true
            for i in 0..<a.count where a[i] != b[i] { same = false }
            #expect(same, "fast mode changed an old output row")
        }
    }

    /// The project's demo corpus and the documents its Quick start adds.
    static let demo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../Corpora/demo")
        .standardizedFileURL.path

    /// "atomic-few": atomic docids with a competitor budget (64) below the 311 old
    /// documents, so only each new document's 32 highest-scoring old siblings compete.
    @Test(
        "fast mode: every new document is the top answer for its own title, and old titles keep theirs",
        arguments: ["atomic", "nodes", "atomic-few"])
    func fastFindsNewDocuments(kind: String) throws {
        // The untrained, LSA-initialised model on the demo corpus: fast mode needs no training.
        let c = try Corpus(directory: Self.demo)
        let atomic = kind.hasPrefix("atomic")
        var o = testOptions(atomic ? .atomic : .semantic)
        o.vocabSize = 2000
        o.lsaDimensions = 64
        o.leafSize = 40
        o.branching = 8
        let old = try Trainer(corpus: c, options: o).makeIndex(corpusFingerprint: "f")
        let docs = try Corpus.readDocuments(Self.demo + "/added/documents.jsonl")
        var options = AddOptions()
        options.mode = .fast
        if kind == "atomic-few" { options.competitors = 64 }
        let before = try old.search(old.titles, beam: 10, topK: 1)
        let (grown, report) = try ContinualIndexer.add(old, documents: docs, source: "test", options: options)
        let hits = try grown.search(docs.map(\.title), beam: 10, topK: 10)
        let D0 = old.docids.corpusIDs.count
        if atomic {
            for (i, h) in hits.enumerated() { #expect(h.first?.document == D0 + i, "\(docs[i].title): \(h.prefix(3))") }
        } else {
            // Tree nodes: the title must first walk down to the leaf the document's full
            // text was routed to; untrained, most do.
            let found = hits.enumerated().filter { i, h in h.contains { $0.document == D0 + i } }.count
            #expect(found >= 4, "\(found) of \(docs.count) new titles find their document in the top 10")
        }
        // Old rows are untouched, so old titles keep their top answer, except where a new
        // document's probability mass shifts a beam (normalisation is over all tokens), or
        // where an old document was left out of the competitors (a few at most).
        let after = try grown.search(old.titles, beam: 10, topK: 1)
        let changed = zip(before, after).filter { $0.0.first?.document != $0.1.first?.document }.count
        #expect(
            changed <= (kind == "atomic" ? 0 : old.titles.count / 50),
            "old titles whose top answer changed: \(changed) of \(old.titles.count)")
        #expect(report.added == docs.count && report.steps == 0 && (report.newSelfHits10 ?? 0) >= (atomic ? 0.9 : 0.5))
    }

    @Test("fast adds keep the old titles' decoder states: a later add reads them and fits the rows a fresh load fits")
    func viewStateCache() throws {
        let c = try Corpus(directory: Self.demo)
        var o = testOptions(.atomic)
        o.vocabSize = 2000
        o.lsaDimensions = 64
        let old = try Trainer(corpus: c, options: o).makeIndex(corpusFingerprint: "f")
        let docs = try Corpus.readDocuments(Self.demo + "/added/documents.jsonl")
        let half = docs.count / 2
        var options = AddOptions()
        options.mode = .fast
        options.sample = 0
        let (first, _) = try ContinualIndexer.add(old, documents: Array(docs[..<half]), source: "test", options: options)
        // Fast mode hands the cache on; the first add filled it with its competitors' states.
        #expect(first.viewStates === old.viewStates && old.viewStates.count > 0 && old.viewStates.hits == 0)
        let (warm, _) = try ContinualIndexer.add(first, documents: Array(docs[half...]), source: "test", options: options)
        #expect(first.viewStates.hits > 0, "the second add read no cached state")
        // The same add from a fresh load of `first` (empty cache) fits the same rows.
        let path = tempPath("cache-ckpt")
        try first.save(to: path, corpusDirectory: Self.demo, counts: [:])
        let loaded = try TrainedIndex.load(from: path)
        #expect(loaded.viewStates.count == 0)
        let (cold, _) = try ContinualIndexer.add(loaded, documents: Array(docs[half...]), source: "test", options: options)
        #expect(loaded.viewStates.hits == 0 && loaded.viewStates.count > 0)
        let a = warm.model.params.values.toArray()
        let b = cold.model.params.values.toArray()
        #expect(a.count == b.count)
        let worst = zip(a, b).map { abs($0 - $1) / (1 + abs($1)) }.max() ?? 0
        #expect(worst < 1e-4, "parameters differ by \(worst)")
        // Replay changes the weights: the grown index starts a cache of its own.
        options.mode = .replay
        options.epochs = 0.01
        options.minimumSteps = 2
        let (replayed, _) = try ContinualIndexer.add(first, documents: Array(docs[half...]), source: "test", options: options)
        #expect(replayed.viewStates !== first.viewStates && replayed.viewStates.count == 0)
    }

    @Test("replay mode: new documents are found by their titles; old ones are not forgotten")
    func replayFindsNewDocuments() throws {
        let c = try Corpus(directory: Self.demo)
        var o = testOptions(.semantic)
        o.vocabSize = 2000
        o.lsaDimensions = 64
        o.leafSize = 40
        o.branching = 8
        let old = try Trainer(corpus: c, options: o).makeIndex(corpusFingerprint: "f")
        var options = AddOptions()
        options.mode = .replay
        options.epochs = 6
        options.batchSize = 16
        let docs = try Corpus.readDocuments(Self.demo + "/added/documents.jsonl")
        let (grown, report) = try ContinualIndexer.add(old, documents: docs, source: "test", options: options)
        let hits = try grown.search(docs.map(\.title), beam: 10, topK: 10)
        let D0 = old.docids.corpusIDs.count
        for (i, h) in hits.enumerated() { #expect(h.contains { $0.document == D0 + i }, "\(docs[i].title) not in the top 10") }
        #expect(report.steps > 0)
        let before = try #require(report.oldSelfHits10Before)
        let after = try #require(report.oldSelfHits10After)
        #expect(after >= before - 0.05, "old titles: \(before) → \(after)")
        #expect(grown.generations.count == 2 && grown.generations[1].firstDocument == D0 && grown.generations[1].documents == docs.count)
    }

    @Test(
        "dsi add: bad input is refused before anything changes; generations are recorded; an interrupted add leaves a loadable checkpoint",
        needsDSI)
    func cli() throws {
        let dir = try syntheticCorpus(documents: 30)
        let c = try Corpus(directory: dir)
        var o = testOptions()
        o.branching = 3
        o.leafSize = 5
        let t = try Trainer(corpus: c, options: o)
        let ckpt = tempPath("add-ckpt")
        _ = try t.train(
            try t.makeIndex(corpusFingerprint: SHA256Digest.hex(file: dir + "/corpus.jsonl")!), budget: .steps(2), output: ckpt,
            evalEvery: 100)
        let manifest = try Data(contentsOf: URL(fileURLWithPath: ckpt + "/manifest.json"))
        func jsonl(_ docs: [Document]) -> String {
            docs.map {
                String(
                    data: try! JSONSerialization.data(
                        withJSONObject: ["id": $0.id, "title": $0.title, "text": $0.text], options: [.sortedKeys]), encoding: .utf8)! + "\n"
            }.joined()
        }
        let good = jsonl(newDocuments(newSubjects))
        for (body, mentions) in [
            (good + "{\"id\": \"new0\", \"text\": \"again\"}\n", ":7: duplicate document id \"new0\""),
            (good + "{\"id\": \"doc3\", \"text\": \"old id\"}\n", ":7: field \"id\": document \"doc3\" is already indexed"),
            (good + "{\"id\": \"x\", \"text\": \n", ":7: malformed JSON"),
            (good + "{\"id\": \"y\"}\n", ":7: missing field \"text\""),
        ] {
            let f = tempPath("bad") + ".jsonl"
            try body.write(toFile: f, atomically: true, encoding: .utf8)
            let (status, _, err) = try runDSI(["add", "--checkpoint", ckpt, "--documents", f, "--threads", "1"])
            #expect(status != 0 && err.contains(f) && err.contains(mentions), "\(err)")
            #expect(try Data(contentsOf: URL(fileURLWithPath: ckpt + "/manifest.json")) == manifest, "a refused add changed the checkpoint")
        }
        let f = tempPath("good") + ".jsonl"
        try good.write(toFile: f, atomically: true, encoding: .utf8)
        // Interrupted at different moments: whatever is on disk loads, old or grown.
        for delay in [0.05, 0.3, 0.8] {
            let copy = tempPath("add-kill")
            try FileManager.default.copyItem(atPath: ckpt, toPath: copy)
            let p = Process()
            p.executableURL = URL(fileURLWithPath: dsiBinary()!)
            p.arguments = ["add", "--checkpoint", copy, "--documents", f, "--mode", "replay", "--epochs", "20", "--threads", "1"]
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            Thread.sleep(forTimeInterval: delay)
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            let loaded = try TrainedIndex.load(from: copy)
            #expect([30, 36].contains(loaded.docids.corpusIDs.count))
        }
        // A completed add: generations recorded, eval splits old and new.
        let grownPath = tempPath("grown")
        var (status, out, err) = try runDSI([
            "add", "--checkpoint", ckpt, "--documents", f, "--mode", "fast", "--output", grownPath, "--json", "--threads", "1",
        ])
        #expect(status == 0, "\(err)")
        let report = try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any] ?? [:]
        for key in [
            "added", "seconds", "ms_per_document", "mode", "new_self_hits@1", "new_self_hits@10", "old_self_hits@10_before",
            "old_self_hits@10_after",
        ] {
            #expect(report[key] != nil, "missing \(key)")
        }
        #expect(report["added"] as? Int == 6 && report["mode"] as? String == "fast")
        let grown = try TrainedIndex.load(from: grownPath)
        #expect(
            grown.generations.map(\.generation) == [0, 1] && grown.generations[1].firstDocument == 30 && grown.generations[1].mode == "fast"
        )
        // The grown corpus: the old one plus the new documents, with a qrel for each.
        let grownCorpus = tempPath("grown-corpus")
        try FileManager.default.copyItem(atPath: dir, toPath: grownCorpus)
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: grownCorpus + "/corpus.jsonl"))
        h.seekToEndOfFile()
        h.write(Data(good.utf8))
        try h.close()
        var queries = try String(contentsOfFile: grownCorpus + "/queries.jsonl", encoding: .utf8)
        var qrels = "query-id\tcorpus-id\tscore\nq0c\tdoc0\t1\n"
        for (i, s) in newSubjects.enumerated() {
            queries += "{\"id\": \"nq\(i)\", \"text\": \"\(s) facts\"}\n"
            qrels += "nq\(i)\tnew\(i)\t1\n"
        }
        try queries.write(toFile: grownCorpus + "/queries.jsonl", atomically: true, encoding: .utf8)
        try qrels.write(toFile: grownCorpus + "/qrels/test.tsv", atomically: true, encoding: .utf8)
        (status, out, err) = try runDSI(["eval", "--checkpoint", grownPath, "--corpus", grownCorpus, "--json", "--threads", "1"])
        #expect(status == 0, "\(err)")
        let ev = try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any] ?? [:]
        #expect((ev["old"] as? [String: Any])?["queries"] as? Int == 1 && (ev["new"] as? [String: Any])?["queries"] as? Int == 6, "\(out)")
        // The old corpus no longer matches the grown checkpoint.
        (status, _, err) = try runDSI(["eval", "--checkpoint", grownPath, "--corpus", dir, "--threads", "1"])
        #expect(status != 0 && err.contains("6 indexed documents missing"), "\(err)")
    }
}

@Suite("fast adds carry the optimizer file")
struct CarriedOptimizerTests {
    @Test("dsi add --mode fast links the moments file instead of rewriting it; loading pads the new rows' moments with zeros")
    func fastAddCarriesMoments() throws {
        let c = try Corpus(directory: try syntheticCorpus(documents: 30))
        let trainer = try Trainer(corpus: c, options: testOptions(.atomic))
        let ck = tempPath("carry-opt")
        _ = try trainer.train(trainer.makeIndex(corpusFingerprint: "f"), budget: .steps(6), output: ck, evalEvery: 100)
        let docsPath = tempPath("carry-opt-docs.jsonl")
        let docs = newDocuments(["zeppelin", "quokka"])
        try docs.map { "{\"id\": \"\($0.id)\", \"title\": \"\($0.title)\", \"text\": \"\($0.text)\"}" }.joined(separator: "\n")
            .write(toFile: docsPath, atomically: true, encoding: .utf8)
        var options = AddOptions()
        options.mode = .fast
        options.sample = 0
        // What the add computes from a whole load, in memory.
        let (expected, _) = try ContinualIndexer.add(
            try TrainedIndex.load(from: ck, for: .training), documents: docs, source: docsPath, options: options)
        let out = tempPath("carry-opt-out")
        _ = try ContinualIndexer.add(checkpoint: ck, documents: docsPath, output: out, options: options)
        // The moments file is the same file: linked, not rewritten (same inode).
        let inode = { (p: String) in try FileManager.default.attributesOfItem(atPath: p)[.systemFileNumber] as? Int }
        #expect(try inode(out + "/optimizer.safetensors") == inode(ck + "/optimizer.safetensors"))
        // Loaded whole, the grown checkpoint has the weights and the moments of the
        // in-memory add, new rows' moments zero; its manifest checks out.
        let grown = try TrainedIndex.load(from: out, for: .training)
        #expect(grown.model.params.values.toArray() == expected.model.params.values.toArray())
        #expect(grown.model.params.m.toArray() == expected.model.params.m.toArray())
        #expect(grown.model.params.v.toArray() == expected.model.params.v.toArray())
        #expect(grown.optimizer.step == expected.optimizer.step && grown.optimizer.step == 6)
        let head = try #require(grown.model.params.entry("lm_head.weight"))
        let D0 = trainer.corpus.documents.count
        let newRows = grown.vocabulary.tokens[D0...].flatMap { t in (0..<head.rowWidth).map { head.offset + Int(t[0]) * head.rowWidth + $0 }
        }
        #expect(newRows.count == 2 * head.rowWidth)
        #expect(newRows.allSatisfy { grown.model.params.m[$0] == 0 && grown.model.params.v[$0] == 0 })
        #expect(grown.model.params.m.toArray().contains { $0 != 0 }, "the old rows' moments were loaded")
        // A second fast add on the grown checkpoint, in place, links the file again; replay
        // mode then trains on the padded moments.
        let more = tempPath("carry-opt-more.jsonl")
        try "{\"id\": \"new9\", \"title\": \"All about the kestrel\", \"text\": \"The kestrel hovers.\"}".write(
            toFile: more, atomically: true, encoding: .utf8)
        _ = try ContinualIndexer.add(checkpoint: out, documents: more, output: out, options: options)
        #expect(try inode(out + "/optimizer.safetensors") == inode(ck + "/optimizer.safetensors"))
        let another = tempPath("carry-opt-replay.jsonl")
        try "{\"id\": \"new10\", \"title\": \"All about the mandolin\", \"text\": \"The mandolin plays.\"}".write(
            toFile: another, atomically: true, encoding: .utf8)
        var replay = AddOptions()
        replay.mode = .replay
        replay.sample = 0
        replay.minimumSteps = 3
        replay.epochs = 1
        _ = try ContinualIndexer.add(checkpoint: out, documents: another, output: out, options: replay)
        let after = try TrainedIndex.load(from: out, for: .training)
        #expect(after.optimizer.step > 6 && after.docids.corpusIDs.count == trainer.corpus.documents.count + 4)
        #expect(try inode(out + "/optimizer.safetensors") != inode(ck + "/optimizer.safetensors"))
    }
}

@Suite("search lanes and kept buffers")
struct SearchLaneTests {
    /// Same documents in the same order, and scores equal up to the rounding of products
    /// split differently across threads.
    func expectSame(_ a: [[ConstrainedBeamSearch.Hit]], _ b: [[ConstrainedBeamSearch.Hit]], _ what: String) {
        #expect(a.count == b.count, "\(what)")
        for (x, y) in zip(a, b) {
            #expect(x.map(\.document) == y.map(\.document), "\(what)")
            for (h, k) in zip(x, y) { #expect(abs(h.score - k.score) <= 1e-4 * max(1, abs(k.score)), "\(what): \(h.score) vs \(k.score)") }
        }
    }

    @Test(
        "a batch decoded in lanes, with buffers kept across batches and across an add that grows the model, answers as a fresh one-lane search",
        arguments: [DocIDScheme.semantic, .atomic, .ngrams])
    func lanes(scheme: DocIDScheme) throws {
        let c = try Corpus(directory: try syntheticCorpus(documents: 30))
        let trainer = try Trainer(corpus: c, options: testOptions(scheme))
        let index = try trainer.makeIndex(corpusFingerprint: "f")
        _ = try trainer.train(index, budget: .steps(4), output: tempPath("lanes"), evalEvery: 100)
        // 13 queries and an empty one: batches of 8 and 6, lanes of unequal sizes.
        let queries = index.titles.prefix(13).map(index.encode) + [[]]
        let reference = try index.search(tokens: queries, batch: 8, laneQueries: 1_000, threads: 1)
        let buffers = SearchBuffers()
        for threads in [1, 2, 3] {
            for laneQueries in [1, 2, 4] {
                let got = try index.search(tokens: queries, batch: 8, buffers: buffers, laneQueries: laneQueries, threads: threads)
                expectSame(got, reference, "threads \(threads), lanes of at least \(laneQueries)")
            }
        }
        // The same buffers, now for a model with more docids (fast add), and back.
        var options = AddOptions()
        options.mode = .fast
        options.sample = 0
        let (grown, _) = try ContinualIndexer.add(index, documents: newDocuments(["zeppelin", "quokka"]), source: "test", options: options)
        let more = queries + grown.titles.suffix(2).map(grown.encode)
        expectSame(
            try grown.search(tokens: more, batch: 8, buffers: buffers, laneQueries: 2, threads: 2),
            try grown.search(tokens: more, batch: 8, laneQueries: 1_000, threads: 1), "grown model")
        expectSame(try index.search(tokens: queries, batch: 8, buffers: buffers, laneQueries: 2, threads: 2), reference, "old model again")
    }
}
