import DSIIndex
import DSIModel
import Foundation
import Testing

let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures").path

/// A writable copy of a committed fixture.
func fixtureCopy(_ name: String) throws -> String {
    let dir = tempPath("fixture-" + name)
    try FileManager.default.copyItem(atPath: fixtures + "/" + name, toPath: dir)
    return dir
}

/// Rewrites a checkpoint file and its manifest entry (size and checksum), as a careful
/// hand edit would, so only the loader's own checks can catch what changed.
func edit(_ checkpoint: String, _ file: String, _ change: (String) -> String) throws {
    let path = checkpoint + "/" + file
    let data = Data(change(try String(contentsOfFile: path, encoding: .utf8)).utf8)
    try data.write(to: URL(fileURLWithPath: path))
    var manifest =
        try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: checkpoint + "/manifest.json"))) as! [String: Any]
    var files = manifest["files"] as! [String: Any]
    files[file] = ["bytes": data.count, "sha256": SHA256Digest.hex(data)]
    manifest["files"] = files
    try JSONSerialization.data(withJSONObject: manifest).write(to: URL(fileURLWithPath: checkpoint + "/manifest.json"))
}

func expectLoadRefused(_ dir: String, file: String, mentions words: String, sourceLocation: SourceLocation = #_sourceLocation) {
    do {
        _ = try TrainedIndex.load(from: dir)
        Issue.record("loaded", sourceLocation: sourceLocation)
    } catch {
        let text = "\(error)"
        #expect(text.contains(dir + "/" + file) && text.contains(words), "\(text)", sourceLocation: sourceLocation)
    }
}

@Suite("checkpoints stay readable")
struct CompatibilityTests {
    /// The answers the swift-dsi that wrote a fixture gave (`dsi query --json`, recorded
    /// with the release binary of commit e0e01d7), against the answers now.
    func expectSameAnswers(_ name: String, answers: String) throws {
        let index = try TrainedIndex.load(from: fixtures + "/" + name)
        let lines = try String(contentsOfFile: fixtures + "/" + answers, encoding: .utf8).split(separator: "\n")
        struct Answer: Decodable {
            struct Row: Decodable {
                var id: String
                var score: Double
            }
            var query: String
            var results: [Row]
        }
        let expected = try lines.map { try JSONDecoder().decode(Answer.self, from: Data($0.utf8)) }
        let hits = try index.search(expected.map(\.query), beam: 3, topK: 3)
        for (e, h) in zip(expected, hits) {
            #expect(h.map { index.docids.corpusIDs[$0.document] } == e.results.map(\.id), "\(e.query)")
            for (a, b) in zip(h, e.results) { #expect(abs(Double(a.score) - b.score) < 1e-3, "\(e.query): score \(a.score) vs \(b.score)") }
        }
    }

    @Test("a format-1 checkpoint (tree-node tokens) loads and gives the answers it gave when written")
    func formatOne() throws {
        let index = try TrainedIndex.load(from: fixtures + "/checkpoint-v1")
        #expect(index.options.docidTokens == .nodes && index.docids.corpusIDs.count == 12 && index.step == 300)
        // Trained over all tokens before the trie objective existed: it decodes that way.
        #expect(index.options.objective == .full && index.options.objective.searchNormalization == .all)
        let lean = try TrainedIndex.load(from: fixtures + "/checkpoint-v1", for: .search)
        #expect(try lean.search(["All about the apple"], beam: 3, topK: 3) == index.search(["All about the apple"], beam: 3, topK: 3))
        try expectSameAnswers("checkpoint-v1", answers: "checkpoint-v1-answers.jsonl")
    }

    @Test(
        "a fast add to a format-1 checkpoint writes the grown checkpoint whole in format 4 with the old weights; the next add writes generation files"
    )
    func fastAddConverts() throws {
        var options = AddOptions()
        options.mode = .fast
        options.sample = 0
        let docs = tempPath("v1-docs") + ".jsonl"
        try #"{"id": "added1", "title": "All about the zeppelin", "text": "The zeppelin floats over the river."}"#.write(
            toFile: docs, atomically: true, encoding: .utf8)
        let out = tempPath("v1-add")
        _ = try ContinualIndexer.add(checkpoint: fixtures + "/checkpoint-v1", documents: docs, output: out, options: options)
        let manifest = try Checkpoint.read(from: out, only: []).0
        #expect(manifest.version == Checkpoint.version && !manifest.files.keys.contains { $0.hasPrefix("model.g") })
        let old = try TrainedIndex.load(from: fixtures + "/checkpoint-v1")
        let grown = try TrainedIndex.load(from: out, for: .search)
        #expect(grown.docids.corpusIDs == old.docids.corpusIDs + ["added1"])
        for e in old.model.params.entries {
            let was = old.model.params.tensor(e.name).toArray()
            #expect(Array(grown.model.params.tensor(e.name).toArray().prefix(was.count)) == was, "\(e.name)")
        }
        try #"{"id": "added2", "title": "All about the quokka", "text": "The quokka smiles."}"#.write(
            toFile: docs, atomically: true, encoding: .utf8)
        let out2 = tempPath("v1-add2")
        _ = try ContinualIndexer.add(checkpoint: out, documents: docs, output: out2, options: options)
        let files = try Checkpoint.read(from: out2, only: []).0.files.keys
        #expect(files.contains("model.g2.safetensors") && files.contains("replay.g2.tsv"), "\(files.sorted())")
        #expect(try TrainedIndex.load(from: out2, for: .search).docids.corpusIDs.suffix(2) == ["added1", "added2"])
    }

    @Test("a checkpoint from before docidTokens existed loads with digit tokens and gives the same answers")
    func beforeDocIDTokens() throws {
        let config = try String(contentsOfFile: fixtures + "/checkpoint-v1-before-docid-tokens/config.json", encoding: .utf8)
        #expect(!config.contains("docidTokens"))
        let index = try TrainedIndex.load(from: fixtures + "/checkpoint-v1-before-docid-tokens")
        #expect(index.options.docidTokens == .digits && index.memory.views.isEmpty && index.lsa == nil)
        try expectSameAnswers("checkpoint-v1-before-docid-tokens", answers: "checkpoint-v1-before-docid-tokens-answers.jsonl")
    }

    @Test("options fields absent from config.json take their defaults")
    func newFieldsDefault() throws {
        let o = try JSONDecoder().decode(TrainingOptions.self, from: Data(#"{"preset": "tiny", "seed": 5}"#.utf8))
        var want = TrainingOptions()
        want.preset = .tiny
        want.seed = 5
        #expect(o == want)
    }

    @Test("a checkpoint written by a newer format is refused with what to do")
    func newerRefused() throws {
        let dir = try fixtureCopy("checkpoint-v1")
        try edit(dir, "manifest.json") { $0.replacingOccurrences(of: "\"version\" : 1", with: "\"version\" : 99") }
        do {
            _ = try TrainedIndex.load(from: dir)
            Issue.record("loaded")
        } catch {
            #expect(
                "\(error)".contains("version 99 was written by a newer swift-dsi") && "\(error)".contains("upgrade swift-dsi"), "\(error)")
        }
    }

    @Test("a checkpoint written now records the current format version and loads")
    func roundTrip() throws {
        let index = try TrainedIndex.load(from: fixtures + "/checkpoint-v1")
        let out = tempPath("resaved")
        try index.save(to: out, corpusDirectory: "", counts: [:])
        let manifest =
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/manifest.json"))) as! [String: Any]
        #expect(manifest["version"] as? Int == Checkpoint.version)
        #expect(try TrainedIndex.load(from: out).docids == index.docids)
    }
}

@Suite("loading checks the invariants it relies on")
struct InvariantTests {
    @Test("two documents with one docid are refused, naming docids.tsv")
    func duplicateDocID() throws {
        let dir = try fixtureCopy("checkpoint-v1")
        try edit(dir, "docids.tsv") { text in
            var lines = text.split(separator: "\n").map(String.init)
            let first = lines[1].split(separator: "\t")[1]
            lines[2] = lines[2].split(separator: "\t")[0] + "\t" + first
            return lines.joined(separator: "\n") + "\n"
        }
        expectLoadRefused(dir, file: "docids.tsv", mentions: "the same docid")
    }

    @Test("a docid that is a prefix of another is refused")
    func prefixDocID() throws {
        let dir = try fixtureCopy("checkpoint-v1-before-docid-tokens")
        try edit(dir, "docids.tsv") { text in
            var lines = text.split(separator: "\n").map(String.init)
            let first = lines[1].split(separator: "\t")[1]
            lines[2] = lines[2].split(separator: "\t")[0] + "\t" + first.dropLast()
            return lines.joined(separator: "\n") + "\n"
        }
        expectLoadRefused(dir, file: "docids.tsv", mentions: "prefix")
    }

    @Test("a corpus id twice, a missing title and a wrong-sized tokenizer are refused, naming the file")
    func otherInvariants() throws {
        var dir = try fixtureCopy("checkpoint-v1")
        try edit(dir, "docids.tsv") { $0.replacingOccurrences(of: "doc1\t", with: "doc0\t") }
        expectLoadRefused(dir, file: "docids.tsv", mentions: "appears twice")

        dir = try fixtureCopy("checkpoint-v1")
        try edit(dir, "titles.tsv") { text in text.split(separator: "\n").dropLast().joined(separator: "\n") + "\n" }
        expectLoadRefused(dir, file: "titles.tsv", mentions: "11 titles for the 12 documents")

        dir = try fixtureCopy("checkpoint-v1")
        try edit(dir, "config.json") { $0.replacingOccurrences(of: "\"sourceVocab\" : ", with: "\"sourceVocab\" : 1") }
        expectLoadRefused(dir, file: "tokenizer.json", mentions: "source vocabulary")
    }
}

@Suite("nothing of the user's is destroyed")
struct OutputSafetyTests {
    @Test("an existing file, or a directory that is not a checkpoint, is refused and left as it was")
    func refusals() throws {
        let file = tempPath("thesis") + ".txt"
        try "my thesis".write(toFile: file, atomically: true, encoding: .utf8)
        #expect(throws: Checkpoint.Error.self) { try Checkpoint.checkReplaceable(file) }
        let dir = tempPath("papers")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try "chapter 1".write(toFile: dir + "/thesis.txt", atomically: true, encoding: .utf8)
        do {
            try Checkpoint.checkReplaceable(dir)
            Issue.record("accepted a directory with other files")
        } catch {
            #expect("\(error)".contains(dir) && "\(error)".contains("not a swift-dsi checkpoint"), "\(error)")
        }
        // The training entry point refuses before any work, and writes nothing.
        let corpus = try syntheticCorpus()
        #expect(throws: Checkpoint.Error.self) {
            _ = try TrainingRun.prepare(corpus: corpus, options: testOptions(), output: dir, resume: false)
        }
        let t = try Trainer(corpus: try Corpus(directory: corpus), options: testOptions())
        #expect(throws: Checkpoint.Error.self) { _ = try t.train(try t.makeIndex(corpusFingerprint: "f"), budget: .steps(1), output: file) }
        #expect(try String(contentsOfFile: file, encoding: .utf8) == "my thesis")
        #expect(try String(contentsOfFile: dir + "/thesis.txt", encoding: .utf8) == "chapter 1")
    }

    @Test("an empty directory, a checkpoint, or nothing at the path is accepted")
    func accepted() throws {
        let empty = tempPath("empty")
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        try Checkpoint.checkReplaceable(empty)
        try Checkpoint.checkReplaceable(tempPath("nothing-here"))
        try Checkpoint.checkReplaceable(try fixtureCopy("checkpoint-v1"))
    }
}

@Suite("failures that cannot pass silently")
struct DivergenceTests {
    @Test("a non-finite step stops training naming the step; the last checkpoint stays as it was")
    func divergenceStops() throws {
        let corpus = try syntheticCorpus()
        let t = try Trainer(corpus: try Corpus(directory: corpus), options: testOptions())
        let index = try t.makeIndex(corpusFingerprint: "f")
        let out = tempPath("diverge")
        _ = try t.train(index, budget: .steps(2), output: out, evalEvery: 100)
        let before = try FileManager.default.contentsOfDirectory(atPath: out).sorted().map {
            try Data(contentsOf: URL(fileURLWithPath: out + "/" + $0))
        }
        // An output bias turned NaN makes the next loss NaN.
        let bias = index.model.params.tensor("lm_head.bias")
        for i in 0..<bias.count { bias[i] = .nan }
        do {
            _ = try t.train(index, budget: .steps(10), output: out, evalEvery: 100)
            Issue.record("training went on")
        } catch let e as TrainingDiverged {
            #expect(e.step == 3 && e.lastCheckpoint == nil && !e.loss.isFinite, "\(e)")
            #expect(e.description.contains("diverged at step 3"))
        }
        let after = try FileManager.default.contentsOfDirectory(atPath: out).sorted().map {
            try Data(contentsOf: URL(fileURLWithPath: out + "/" + $0))
        }
        #expect(before == after, "the checkpoint changed")
        #expect(try TrainedIndex.load(from: out).step == 2)
    }

    @Test("a run that diverges after writing a checkpoint names it in the error")
    func namesLastCheckpoint() throws {
        let t = try Trainer(corpus: try Corpus(directory: try syntheticCorpus()), options: testOptions())
        let index = try t.makeIndex(corpusFingerprint: "f")
        let out = tempPath("diverge-late")
        var opts = testOptions()
        opts.learningRate = 1e30  // the first update overflows the weights
        let wild = try Trainer(corpus: try Corpus(directory: try syntheticCorpus()), options: opts)
        do {
            _ = try wild.train(index, budget: .steps(20), output: out, evalEvery: 1)
            Issue.record("training went on")
        } catch let e as TrainingDiverged {
            #expect(e.lastCheckpoint?.path == out && e.lastCheckpoint!.step < e.step, "\(e)")
            #expect(try TrainedIndex.load(from: out).step == e.lastCheckpoint!.step)
        }
        _ = t
    }
}

@Suite("holdout")
struct HoldoutTests {
    @Test("every document lands in exactly one output, numeric ids included")
    func numericIDs() throws {
        var corpus = ""
        for i in 0..<40 {
            corpus += i % 2 == 0 ? "{\"id\": \(i), \"text\": \"doc \(i)\"}\n" : "{\"id\": \"s\(i)\", \"text\": \"doc \(i)\"}\n"
        }
        let dir = try makeCorpus(
            corpus: corpus, queries: "{\"id\": \"q\", \"text\": \"x\"}\n", qrels: ["test": "query-id\tcorpus-id\tscore\nq\t0\t1\n"])
        let out = tempPath("holdout")
        let r = try Holdout.split(corpus: dir, fraction: 0.3, output: out)
        let kept = try Corpus.readDocuments(out + "/corpus.jsonl").map(\.id)
        let held = try Corpus.readDocuments(out + "/held-out.jsonl").map(\.id)
        #expect(r.documents == 40 && r.kept == kept.count && r.heldOut == held.count && kept.count + held.count == 40)
        #expect(Set(kept + held) == Set((0..<40).map { $0 % 2 == 0 ? "\($0)" : "s\($0)" }))
        #expect(held.contains { Int($0) != nil } && kept.contains { Int($0) != nil }, "numeric ids on both sides")
        #expect(held.allSatisfy { Corpus.isHeldOut($0, fraction: 0.3) } && !kept.contains { Corpus.isHeldOut($0, fraction: 0.3) })
        #expect(FileManager.default.fileExists(atPath: out + "/qrels/test.tsv"))
        #expect(throws: Holdout.Refusal.self) { _ = try Holdout.split(corpus: dir, fraction: 0.3, output: out) }
    }
}

@Suite("reports")
struct ReportTests {
    @Test("an empty subset is null in JSON and none in text, not zeros")
    func emptySubsets() throws {
        let r = EvaluationReport(run: ["q": ["d1"]], qrels: ["q": ["d1": 1]], seenDocuments: ["d1"], seconds: 0.01)
        let json = try JSONSerialization.jsonObject(with: Data(try JSONOutput.string(r).utf8)) as! [String: Any]
        #expect(json["unseen"] is NSNull && (json["seen"] as? [String: Any])?["hits@1"] as? Double == 1 && json["hits@1"] as? Double == 1)
        #expect(json["old"] == nil)
        #expect(r.text(title: "t").contains("unseen: none"))
        #expect(try JSONDecoder().decode(EvaluationReport.self, from: Data(try JSONOutput.string(r).utf8)) == r)
        let train = TrainReport(
            documents: 1, examples: 2, steps: 0, seconds: 0, tokensPerSecond: 0, loss: nil, devHits1: nil, devHits10: nil, devQueries: 0,
            skippedQrels: 0)
        let tj = try JSONSerialization.jsonObject(with: Data(try JSONOutput.string(train).utf8)) as! [String: Any]
        #expect(tj["loss"] is NSNull && tj["dev_hits@10"] is NSNull)
        #expect(!train.text.contains("nan"))
    }
}
