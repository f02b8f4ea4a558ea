import DSIIndex
import DSITensor
import Foundation
import Testing

/// The `dsi` executable next to the test bundle (swift test builds it), or nil.
func dsiBinary() -> String? {
    let dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    let candidates = [dir.appendingPathComponent("dsi").path, dir.deletingLastPathComponent().appendingPathComponent("dsi").path]
    return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
}

/// Tests that run the executable need it built beside the test bundle (`swift build`).
let needsDSI = ConditionTrait.enabled(
    if: dsiBinary() != nil, "the dsi executable is not built beside the test bundle (run swift build first)")

/// Runs dsi with `args`; returns (exit status, stdout, stderr).
func runDSI(_ args: [String], stdin: String? = nil) throws -> (Int32, String, String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: dsiBinary()!)
    p.arguments = args
    let out = Pipe()
    let err = Pipe()
    p.standardOutput = out
    p.standardError = err
    if let stdin {
        let inp = Pipe()
        p.standardInput = inp
        try p.run()
        inp.fileHandleForWriting.write(Data(stdin.utf8))
        try inp.fileHandleForWriting.close()
    } else {
        p.standardInput = FileHandle.nullDevice
        try p.run()
    }
    let o = out.fileHandleForReading.readDataToEndOfFile()
    let e = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
}

@Suite("command line", .serialized)
struct CLITests {
    /// A briefly trained checkpoint of the synthetic corpus.
    func trained() throws -> (checkpoint: String, corpus: String) {
        let dir = try syntheticCorpus()
        let c = try Corpus(directory: dir)
        let t = try Trainer(corpus: c, options: testOptions())
        let index = try t.makeIndex(corpusFingerprint: SHA256Digest.hex(file: dir + "/corpus.jsonl")!)
        let out = tempPath("cli-ckpt")
        _ = try t.train(index, budget: .steps(2), output: out, evalEvery: 100)
        return (out, dir)
    }

    @Test(
        "--precision bfloat16 trains with the bfloat16 kernel where the CPU has AVX512-BF16, and is refused clearly where not; the default picks it where the CPU has it",
        needsDSI)
    func precision() throws {
        let (status, out, err) = try runDSI([
            "bench", "ops", "--steps", "2", "--warmup", "1", "--threads", "1", "--precision", "bfloat16", "--json",
        ])
        if BLAS.bfloat16Available {
            #expect(status == 0, "\(err)")
            let o = try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any]
            #expect(o?["precision"] as? String == "bfloat16")
            let loss = (o?["loss_first_last"] as? [Double]) ?? []
            #expect(loss.count == 2 && loss.allSatisfy(\.isFinite))
        } else {
            #expect(status != 0 && err.contains("AVX512-BF16") && err.contains("--precision float32"), "\(err)")
        }
        let (bad, _, badErr) = try runDSI(["bench", "ops", "--precision", "float16"])
        #expect(bad != 0 && badErr.contains("float32") && badErr.contains("bfloat16"), "\(badErr)")
        // The default, auto: bfloat16 where the CPU has it, float32 elsewhere; float32 on request.
        for (flags, expected) in [([], BLAS.bfloat16Available ? "bfloat16" : "float32"), (["--precision", "float32"], "float32")] {
            let (s, o, e) = try runDSI(["bench", "ops", "--steps", "1", "--warmup", "0", "--threads", "1", "--json"] + flags)
            #expect(s == 0, "\(e)")
            let j = try JSONSerialization.jsonObject(with: Data(o.utf8)) as? [String: Any]
            #expect(j?["precision"] as? String == expected, "\(flags)")
        }
    }

    @Test("dsi query, eval and train fail clearly on bad input", needsDSI)
    func errors() throws {
        let (ckpt, corpus) = try trained()
        var (status, out, err) = try runDSI(["query", "--checkpoint", tempPath("missing"), "anything"])
        #expect(status != 0 && err.contains("no checkpoint here"), "\(err)")
        (status, _, err) = try runDSI(["query", "--checkpoint", ckpt, "  "])
        #expect(status != 0 && err.contains("query 1 is empty"), "\(err)")
        (status, out, err) = try runDSI(["query", "--checkpoint", ckpt, "--json", "--top-k", "3"], stdin: "what is a comet\ncedar facts\n")
        #expect(status == 0, "\(err)")
        let lines = out.split(separator: "\n")
        #expect(lines.count == 2)
        for l in lines {
            let obj = try JSONSerialization.jsonObject(with: Data(l.utf8)) as! [String: Any]
            #expect((obj["results"] as! [[String: Any]]).count == 3)
        }
        let other = try syntheticCorpus(documents: 10)
        (status, _, err) = try runDSI(["eval", "--checkpoint", ckpt, "--corpus", other])
        #expect(status != 0 && err.contains("fingerprint"), "\(err)")
        (status, out, err) = try runDSI(["eval", "--checkpoint", ckpt, "--corpus", corpus, "--json"])
        #expect(status == 0, "\(err)")
        let metrics = try JSONSerialization.jsonObject(with: Data(out.utf8)) as! [String: Any]
        for key in ["queries", "hits@1", "hits@10", "mrr@10", "ndcg@10", "recall@10", "ms_per_query", "seen", "unseen"] {
            #expect(metrics[key] != nil, "missing key \(key)")
        }
        (status, _, err) = try runDSI(["query", "--checkpoint", ckpt, "--fusion", "bm25", "comet"])
        #expect(status != 0 && err.contains("--fusion bm25 needs --corpus"), "\(err)")
        (status, _, err) = try runDSI(["eval", "--checkpoint", ckpt, "--corpus", corpus, "--fusion-weight", "0.3"])
        #expect(status != 0 && err.contains("need --fusion bm25"), "\(err)")
        (status, _, err) = try runDSI(["eval", "--checkpoint", ckpt, "--corpus", corpus, "--fusion", "bm25", "--fusion-weight", "2"])
        #expect(status != 0 && err.contains("--fusion-weight must be between 0 and 1"), "\(err)")
        // Fused with weight 0, the ranking is BM25's own (ties aside): on these queries, BM25's top hit.
        (status, out, err) = try runDSI([
            "query", "--checkpoint", ckpt, "--corpus", corpus, "--fusion", "bm25", "--fusion-weight", "0", "--json", "what is a comet",
        ])
        #expect(status == 0, "\(err)")
        let fused = try JSONSerialization.jsonObject(with: Data(out.utf8)) as! [String: Any]
        let c = try Corpus(directory: corpus)
        let lexicalTop = BM25(documents: c.documents.map { $0.title + " " + $0.text }).search("what is a comet", k: 1)[0].document
        #expect(((fused["results"] as! [[String: Any]])[0]["id"] as! String) == c.documents[lexicalTop].id)
        (status, out, err) = try runDSI(["eval", "--checkpoint", ckpt, "--corpus", corpus, "--fusion", "bm25", "--json"])
        #expect(status == 0, "\(err)")
        let fusedMetrics = try JSONSerialization.jsonObject(with: Data(out.utf8)) as! [String: Any]
        #expect(fusedMetrics["queries"] as? Int == metrics["queries"] as? Int)
        // The default weight follows the corpus: this one has labelled train queries.
        (status, out, err) = try runDSI(["eval", "--checkpoint", ckpt, "--corpus", corpus, "--fusion", "bm25"])
        #expect(status == 0 && out.contains("fused with BM25 (zscore, weight 0.7, the default)"), "\(out)\(err)")
        #expect(Fusion.defaultWeight(labelled: false) == 0.3 && Fusion.defaultWeight(method: .rrf, labelled: true) == 0.5)
        let bad = try makeCorpus(corpus: "{\"id\": \"a\", \"text\": \"ok\"}\n{\"id\": \"b\"}\n")
        (status, _, err) = try runDSI(["train", "--corpus", bad, "--output", tempPath("never"), "--steps", "1"])
        #expect(status != 0 && err.contains("corpus.jsonl:2") && err.contains("missing field \"text\""), "\(err)")
    }

    @Test(
        "dsi train chooses the fusion weight on dev and says so; dsi eval --fusion bm25 uses it unless --fusion-weight is given; --no-calibrate-fusion skips it",
        needsDSI)
    func fusionWeightChosenOnDev() throws {
        let corpus = try syntheticCorpus(documents: 100)
        let out = tempPath("cli-calibrated")
        var (status, stdout, err) = try runDSI([
            "train", "--corpus", corpus, "--output", out, "--preset", "tiny", "--steps", "2", "--threads", "1", "--json",
        ])
        #expect(status == 0, "\(err)")
        let report = try JSONSerialization.jsonObject(with: Data(stdout.utf8)) as! [String: Any]
        let weight = try #require(report["fusion_weight"] as? Double, "\(stdout)")
        #expect(FusionCalibration.weights.contains(weight))
        #expect(err.contains(String(format: "fusion with BM25: zscore weight %.1f chosen on", weight)), "\(err)")
        (status, stdout, err) = try runDSI(["eval", "--checkpoint", out, "--corpus", corpus, "--fusion", "bm25"])
        #expect(status == 0 && stdout.contains("(zscore, weight \(weight), chosen on dev by dsi train)"), "\(stdout)\(err)")
        (status, stdout, err) = try runDSI(["eval", "--checkpoint", out, "--corpus", corpus, "--fusion", "bm25", "--fusion-weight", "0.5"])
        #expect(status == 0 && stdout.contains("(zscore, weight 0.5)"), "\(stdout)\(err)")
        // The recorded weight is zscore's; another method keeps its own default.
        (status, stdout, err) = try runDSI(["eval", "--checkpoint", out, "--corpus", corpus, "--fusion", "bm25", "--fusion-method", "rrf"])
        #expect(status == 0 && stdout.contains("(rrf, weight 0.5, the default)"), "\(stdout)\(err)")
        let skipped = tempPath("cli-uncalibrated")
        (status, stdout, err) = try runDSI([
            "train", "--corpus", corpus, "--output", skipped, "--preset", "tiny", "--steps", "1", "--threads", "1", "--json",
            "--no-calibrate-fusion",
        ])
        #expect(status == 0, "\(err)")
        let plain = try JSONSerialization.jsonObject(with: Data(stdout.utf8)) as! [String: Any]
        #expect(plain["fusion_weight"] is NSNull && !err.contains("fusion with BM25"), "\(stdout)")
    }

    @Test(
        "dsi train without --docids gives a small corpus atomic docids and says so; --docids overrides; the size rule; term docids read as text",
        needsDSI)
    func automaticDocIDs() throws {
        #expect(DocIDScheme.automatic(documents: 1) == .atomic)
        #expect(DocIDScheme.automatic(documents: DocIDScheme.atomicLimit) == .atomic)
        #expect(DocIDScheme.automatic(documents: DocIDScheme.atomicLimit + 1) == .semantic)
        let corpus = try syntheticCorpus(documents: 12)
        let auto = tempPath("auto")
        var (status, _, err) = try runDSI(["train", "--corpus", corpus, "--output", auto, "--steps", "0", "--preset", "tiny"])
        #expect(status == 0, "\(err)")
        #expect(err.contains("docids: atomic (chosen for 12 documents"), "\(err)")
        #expect(try TrainedIndex.load(from: auto, for: .search).docids.scheme == .atomic)
        let chosen = tempPath("chosen")
        (status, _, err) = try runDSI(
            ["train", "--corpus", corpus, "--output", chosen, "--steps", "0", "--preset", "tiny", "--docids", "semantic"])
        #expect(status == 0, "\(err)")
        #expect(!err.contains("chosen for"), "\(err)")
        #expect(try TrainedIndex.load(from: chosen, for: .search).docids.scheme == .semantic)
        // Term docids: a query prints them as the tokens' text; JSON gives docids.tsv's form.
        let terms = tempPath("terms")
        (status, _, err) = try runDSI(
            ["train", "--corpus", corpus, "--output", terms, "--steps", "0", "--preset", "tiny", "--docids", "terms"])
        #expect(status == 0, "\(err)")
        let termIndex = try TrainedIndex.load(from: terms, for: .search)
        #expect(termIndex.docids.scheme == .terms && termIndex.docids.docids.allSatisfy { $0.count == TermDocIDs.length })
        var out = ""
        (status, out, err) = try runDSI(["query", "--checkpoint", terms, "--top-k", "1", "comet"])
        #expect(status == 0 && out.contains("·"), "\(out)\(err)")
        (status, out, err) = try runDSI(["query", "--checkpoint", terms, "--top-k", "1", "--json", "comet"])
        let hit = ((try JSONSerialization.jsonObject(with: Data(out.utf8)) as! [String: Any])["results"] as! [[String: Any]])[0]
        let position = termIndex.docids.corpusIDs.firstIndex(of: hit["id"] as! String)!
        #expect(hit["docid"] as? String == termIndex.docids.text(position))
        // Resuming without --docids continues the checkpoint's scheme, even where the size
        // rule would choose another (a semantic checkpoint of 12 documents).
        (status, _, err) = try runDSI(["train", "--corpus", corpus, "--output", auto, "--steps", "1", "--preset", "tiny", "--resume"])
        #expect(status == 0 && err.contains("docids: atomic (the checkpoint's)"), "\(err)")
        (status, _, err) = try runDSI(["train", "--corpus", corpus, "--output", chosen, "--steps", "1", "--preset", "tiny", "--resume"])
        #expect(status == 0 && err.contains("docids: semantic (the checkpoint's)"), "\(err)")
        #expect(try TrainedIndex.load(from: chosen, for: .search).docids.scheme == .semantic)
        // An explicit --docids that differs is still refused, naming the option.
        (status, _, err) = try runDSI(
            ["train", "--corpus", corpus, "--output", chosen, "--steps", "2", "--preset", "tiny", "--resume", "--docids", "atomic"])
        #expect(status != 0 && err.contains("docids: semantic in the checkpoint, atomic now"), "\(err)")
    }

    @Test("dsi train refuses an --output that is not a checkpoint before any work, and lists option values in --help", needsDSI)
    func outputAndHelp() throws {
        let corpus = try syntheticCorpus(documents: 10)
        let dir = tempPath("thesis-dir")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try "chapter 1".write(toFile: dir + "/thesis.txt", atomically: true, encoding: .utf8)
        var (status, _, err) = try runDSI(["train", "--corpus", corpus, "--output", dir, "--steps", "1"])
        #expect(status != 0 && err.contains(dir) && err.contains("not a swift-dsi checkpoint") && !err.contains("tokenizer:"), "\(err)")
        #expect(try String(contentsOfFile: dir + "/thesis.txt", encoding: .utf8) == "chapter 1")
        let file = tempPath("notes") + ".txt"
        try "notes".write(toFile: file, atomically: true, encoding: .utf8)
        (status, _, err) = try runDSI(["train", "--corpus", corpus, "--output", file, "--steps", "1"])
        #expect(status != 0 && err.contains("not a directory"), "\(err)")
        #expect(try String(contentsOfFile: file, encoding: .utf8) == "notes")
        (status, _, err) = try runDSI(["train", "--corpus", corpus, "--docids", "fancy"])
        #expect(status != 0 && err.contains("semantic") && err.contains("atomic") && err.contains("naive"), "\(err)")
        let (kstatus, kernels, kerr) = try runDSI(["kernels", "--json"])
        #expect(kstatus == 0, "\(kerr)")
        let k = try JSONSerialization.jsonObject(with: Data(kernels.utf8)) as! [String: Any]
        #expect(
            (k["blas_core"] as? String)?.isEmpty == false && ["base", "avx", "avx2", "avx512"].contains(k["cpu_tier"] as? String ?? ""))
        let (_, help, _) = try runDSI(["train", "--help"])
        #expect(help.contains("tiny") && help.contains("base") && help.contains("nodes") && help.contains("digits"), "\(help)")
    }
}
