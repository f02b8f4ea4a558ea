import DSIIndex
import DSIModel
import DSITensor
import Foundation
import Testing

@Suite("generation files: a fast add writes what it adds", .serialized)
struct GenerationFileTests {
    func jsonl(_ docs: [Document]) throws -> String {
        let p = tempPath("gen-docs") + ".jsonl"
        try docs.map { "{\"id\": \"\($0.id)\", \"title\": \"\($0.title)\", \"text\": \"\($0.text)\"}" }.joined(separator: "\n")
            .write(toFile: p, atomically: true, encoding: .utf8)
        return p
    }

    func inode(_ p: String) throws -> Int? { try FileManager.default.attributesOfItem(atPath: p)[.systemFileNumber] as? Int }

    func files(_ dir: String) throws -> Set<String> { Set(try FileManager.default.contentsOfDirectory(atPath: dir)) }

    /// The names of the entries whose floats differ between two models (empty: the same weights).
    func differing(_ a: Seq2Seq, _ b: Seq2Seq) -> [String] {
        a.params.entries.map(\.name).filter { n in
            b.params.entry(n) == nil || a.params.tensor(n).toArray() != b.params.tensor(n).toArray()
        }
    }

    @Test(
        "two fast adds keep the trained files (same inodes) and write one generation file of weights, LSA rows and views each; every load purpose reads the chain as the adds made it",
        arguments: [DocIDScheme.semantic, .atomic])
    func chain(scheme: DocIDScheme) throws {
        let c = try Corpus(directory: try syntheticCorpus(documents: 30))
        var o = testOptions(scheme)
        o.docidTokens = .nodes
        let trainer = try Trainer(corpus: c, options: o)
        let ck = tempPath("gen-ck")
        _ = try trainer.train(trainer.makeIndex(corpusFingerprint: "f"), budget: .steps(4), output: ck, evalEvery: 100)
        var options = AddOptions()
        options.mode = .fast
        options.sample = 0
        let first = newDocuments(["zeppelin", "quokka"])
        let second = [Document(id: "new9", title: "All about the kestrel", text: "The kestrel hovers over the meadow.")]
        let out1 = tempPath("gen-out1")
        let out2 = tempPath("gen-out2")
        _ = try ContinualIndexer.add(checkpoint: ck, documents: try jsonl(first), output: out1, options: options)
        _ = try ContinualIndexer.add(checkpoint: out1, documents: try jsonl(second), output: out2, options: options)
        // Each add in memory, from a whole load of the checkpoint it started from.
        let (expected1, _) = try ContinualIndexer.add(
            try TrainedIndex.load(from: ck, for: .training), documents: first, source: "a", options: options)
        #expect(differing(try TrainedIndex.load(from: out1, for: .training).model, expected1.model) == [])
        let (expected, _) = try ContinualIndexer.add(
            try TrainedIndex.load(from: out1, for: .training), documents: second, source: "b", options: options)
        let hasLSA = try files(ck).contains("lsa.safetensors")
        var want: Set<String> = ["model.g1.safetensors", "model.g2.safetensors", "replay.g1.tsv", "replay.g2.tsv"]
        if hasLSA { want.formUnion(["lsa.g1.safetensors", "lsa.g2.safetensors"]) }
        #expect(try files(out2).isSuperset(of: want))
        for name in ["model.safetensors", "replay.tsv", "optimizer.safetensors"] + (hasLSA ? ["lsa.safetensors"] : []) {
            #expect(try inode(out2 + "/" + name) == inode(ck + "/" + name), "\(name) is the trained file, linked")
        }
        #expect(try inode(out2 + "/model.g1.safetensors") == inode(out1 + "/model.g1.safetensors"))
        let size = { (p: String) in try FileManager.default.attributesOfItem(atPath: p)[.size] as? Int ?? 0 }
        #expect(try size(out2 + "/model.g2.safetensors") < size(ck + "/model.safetensors"))

        // Whole load: weights, LSA vectors and views are the in-memory adds' exactly.
        let whole = try TrainedIndex.load(from: out2, for: .training)
        #expect(differing(whole.model, expected.model) == [])
        #expect(whole.memory.views.count == expected.memory.views.count && whole.memory == expected.memory)
        #expect(whole.lsa?.documentVectors.toArray() == expected.lsa?.documentVectors.toArray())
        #expect(whole.docids.corpusIDs == expected.docids.corpusIDs)
        // A fast add's load maps the LSA vectors of the base file (page-aligned) and
        // copies the generation files' rows after them.
        let forAdd = try TrainedIndex.load(from: out2, for: .add)
        if hasLSA {
            #expect(forAdd.lsa?.mappedRows?.rows == 30)
            #expect(forAdd.lsa?.documentVectors.toArray() == expected.lsa?.documentVectors.toArray())
            let grown = try #require(forAdd.lsa).appending(
                documentRows: [Float](repeating: 0.5, count: try #require(forAdd.lsa).dimensions))
            #expect(grown.mappedRows?.rows == 30 && grown.documentVectors.shape[0] == 34)
            #expect(Array(grown.documentVectors.toArray().prefix(33 * grown.dimensions)) == expected.lsa?.documentVectors.toArray())
        }
        // Search load: the mapped chain has the same weights and answers the same.
        let search = try TrainedIndex.load(from: out2, for: .search)
        #expect(differing(search.model, expected.model) == [])
        let queries = ["All about the zeppelin", "All about the kestrel", "apple"]
        let a = try search.search(queries)
        let b = try expected.search(queries)
        #expect(a.map { $0.map(\.document) } == b.map { $0.map(\.document) })
        #expect(zip(a, b).allSatisfy { zip($0, $1).allSatisfy { $0.score == $1.score } })
        #expect(search.docids.corpusIDs[a[1][0].document] == "new9")
        // Resuming training carries the LSA and replay chain into its checkpoint and
        // writes the weights whole.
        let resumed = try TrainedIndex.load(from: out2, for: .resume)
        let out3 = tempPath("gen-out3")
        try resumed.save(to: out3, corpusDirectory: c.directory, counts: [:])
        #expect(try !files(out3).contains("model.g1.safetensors"))
        #expect(try files(out3).isSuperset(of: want.subtracting(["model.g1.safetensors", "model.g2.safetensors"])))
        let reloaded = try TrainedIndex.load(from: out3, for: .training)
        #expect(differing(reloaded.model, expected.model) == [])
        #expect(reloaded.memory == expected.memory)
        // The same grown index saved whole gives the same search.
        let out4 = tempPath("gen-out4")
        try expected.save(to: out4, corpusDirectory: c.directory, counts: [:])
        #expect(try !files(out4).contains("model.g2.safetensors"))
        #expect(try TrainedIndex.load(from: out4, for: .search).search(queries).map { $0.map(\.document) } == a.map { $0.map(\.document) })
    }

    @Test("after AppendBase.maxFiles weight files, the next fast add writes every file whole again")
    func compaction() throws {
        let c = try Corpus(directory: try syntheticCorpus(documents: 12))
        let trainer = try Trainer(corpus: c, options: testOptions(.atomic))
        var ck = tempPath("gen-compact")
        _ = try trainer.train(trainer.makeIndex(corpusFingerprint: "f"), budget: .steps(1), output: ck, evalEvery: 100)
        var options = AddOptions()
        options.mode = .fast
        options.sample = 0
        for i in 1...AppendBase.maxFiles {
            let out = tempPath("gen-compact-\(i)")
            let doc = Document(id: "extra\(i)", title: "Extra \(i)", text: "An extra document about the number \(i).")
            _ = try ContinualIndexer.add(checkpoint: ck, documents: try jsonl([doc]), output: out, options: options)
            let weightFiles = try files(out).filter { $0.hasPrefix("model.") }
            #expect(weightFiles.count == (i < AppendBase.maxFiles ? i + 1 : 1), "after add \(i): \(weightFiles.sorted())")
            ck = out
        }
        let whole = try TrainedIndex.load(from: ck, for: .training)
        let search = try TrainedIndex.load(from: ck, for: .search)
        #expect(whole.docids.corpusIDs.count == 12 + AppendBase.maxFiles && whole.memory.views.contains { $0.document == 27 })
        #expect(differing(search.model, whole.model) == [])
    }
}
