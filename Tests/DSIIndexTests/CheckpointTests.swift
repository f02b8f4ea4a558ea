import DSIIndex
import DSIModel
import Foundation
import Testing

/// Every path a test of this process writes lies under one directory, removed when the
/// process exits (a crashed run leaves it for inspection).
private let testRootPath = FileManager.default.temporaryDirectory.appendingPathComponent("dsi-tests-\(getpid())").path
let testRoot: String = {
    try? FileManager.default.createDirectory(atPath: testRootPath, withIntermediateDirectories: true)
    atexit { try? FileManager.default.removeItem(atPath: testRootPath) }
    return testRootPath
}()

func tempPath(_ name: String) -> String {
    (testRoot as NSString).appendingPathComponent("dsi-\(name)-\(UUID().uuidString)")
}

func smallModel(seed: UInt64 = 3) throws -> Seq2Seq {
    try Seq2Seq(
        config: ModelConfig(
            dModel: 16, heads: 2, ff: 24, encoderLayers: 1, decoderLayers: 1, sourceVocab: 30, sourceLength: 8, targetVocab: 13,
            targetLength: 5), seed: seed)
}

/// Whether `$DSI_PYTHON` (default python3) imports safetensors and numpy.
func pythonWithSafetensors() -> Bool {
    let probe = Process()
    probe.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    probe.arguments = [ProcessInfo.processInfo.environment["DSI_PYTHON"] ?? "python3", "-c", "import safetensors, numpy"]
    probe.standardError = FileHandle.nullDevice
    probe.standardOutput = FileHandle.nullDevice
    do {
        try probe.run()
        probe.waitUntilExit()
    } catch { return false }
    return probe.terminationReason == .exit && probe.terminationStatus == 0
}

@Suite("checksums, safetensors and checkpoints")
struct CheckpointTests {
    @Test("SHA-256 of the FIPS test vectors")
    func sha256() {
        #expect(SHA256Digest.hex(Data()) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256Digest.hex(Data("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(
            SHA256Digest.hex(Data("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        // A file is hashed in chunks: the same digest as hashing it whole.
        let million = Data(repeating: 0x61, count: 3_000_000)
        let path = tempPath("sha-file")
        #expect(FileManager.default.createFile(atPath: path, contents: million))
        #expect(SHA256Digest.hex(file: path) == SHA256Digest.hex(million))
        #expect(
            SHA256Digest.hex(Data(repeating: 0x61, count: 1_000_000)) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
        #expect(SHA256Digest.hex(file: tempPath("no-such-file")) == nil)
    }

    @Test("model and optimizer state round-trip through safetensors")
    func safetensorsRoundTrip() throws {
        let a = try smallModel(seed: 3)
        for i in 0..<a.params.count {
            a.params.m[i] = Float(i % 7) * 0.1
            a.params.v[i] = Float(i % 5) * 0.01
        }
        var opt = AdamW(weightDecay: 0.05)
        opt.step = 42
        let model = try a.safetensorsData(metadata: ["note": "test"])
        let state = try a.optimizerData(opt)
        let b = try smallModel(seed: 9)
        let differBefore = b.params.values.toArray() != a.params.values.toArray()
        #expect(differBefore)
        try b.loadSafetensors(model, path: "model.safetensors")
        let opt2 = try b.loadOptimizer(state, path: "optimizer.safetensors")
        for e in a.params.entries {
            #expect(a.params.tensor(e.name).toArray() == b.params.tensor(e.name).toArray(), "\(e.name)")
            #expect(
                Array(UnsafeBufferPointer(start: a.params.m.data + e.offset, count: e.count))
                    == Array(UnsafeBufferPointer(start: b.params.m.data + e.offset, count: e.count)))
        }
        #expect(opt2.step == 42 && opt2.weightDecay == 0.05)
        // A model of another shape is refused, naming the tensor.
        let other = try Seq2Seq(
            config: ModelConfig(
                dModel: 16, heads: 2, ff: 32, encoderLayers: 1, decoderLayers: 1, sourceVocab: 30, sourceLength: 8, targetVocab: 13,
                targetLength: 5))
        #expect { try other.loadSafetensors(model, path: "model.safetensors") } throws: {
            "\($0)".contains("ffn.fc1.weight\" has shape [24, 16], the model expects [32, 16]")
        }
        #expect { try b.loadSafetensors(model.prefix(100), path: "x") } throws: {
            "\($0)".contains("does not fit") || "\($0)".contains("JSON")
        }
    }

    @Test(
        "model.safetensors reads in Python's safetensors package with the same values",
        .enabled(
            if: pythonWithSafetensors(),
            "Python with the safetensors and numpy packages is not available (.ci/run installs them; set DSI_PYTHON)"))
    func pythonReads() throws {
        let python = ProcessInfo.processInfo.environment["DSI_PYTHON"] ?? "python3"
        let m = try smallModel()
        let file = tempPath("model") + ".safetensors"
        let expect = tempPath("expect") + ".json"
        try m.safetensorsData(metadata: ["format": "swift-dsi"]).write(to: URL(fileURLWithPath: file))
        var tensors: [String: Any] = [:]
        for e in m.params.entries {
            let v = m.params.tensor(e.name).toArray()
            tensors[e.name] = ["shape": e.shape, "sum": v.reduce(0.0) { $0 + Double($1) }, "first": Array(v.prefix(4)).map(Double.init)]
        }
        try JSONSerialization.data(withJSONObject: ["tensors": tensors, "metadata": ["format": "swift-dsi"]]).write(
            to: URL(fileURLWithPath: expect))
        let check = Process()
        check.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        check.arguments = [python, "scripts/check_safetensors.py", file, expect]
        let pipe = Pipe()
        check.standardOutput = pipe
        check.standardError = pipe
        try check.run()
        check.waitUntilExit()
        let out = String(data: pipe.fileHandleForReading.readDataToEndOfFile(), encoding: .utf8) ?? ""
        #expect(check.terminationStatus == 0, "\(out)")
    }

    @Test("a large file a checkpoint write hashes is recorded as verified; the record carries over a link only where there was one")
    func recordedAtWrite() throws {
        let cache = tempPath("write-cache")
        let big = VerifiedFileCache.minimumBytes
        let a = tempPath("write-a")
        try Checkpoint.write(
            to: a, files: ["big.bin": .stream { try $0.write(contentsOf: Data(repeating: 7, count: big)) }], corpusFingerprint: nil,
            corpusDirectory: nil, counts: [:], configuration: [:], verifiedCache: cache)
        let sha = try Checkpoint.read(from: a, only: []).0.files["big.bin"]!.sha256
        #expect(VerifiedFileCache.checksum(of: a + "/big.bin", in: cache) == sha)
        // Linked into another checkpoint: the link changes the status-change time; the record follows.
        let b = tempPath("write-b")
        let stamp = try #require(Checkpoint.FileStamp(path: a + "/big.bin"))
        try Checkpoint.write(
            to: b, files: ["big.bin": .carried(path: a + "/big.bin", sha256: sha, stamp: stamp)], corpusFingerprint: nil,
            corpusDirectory: nil, counts: [:], configuration: [:], verifiedCache: cache)
        #expect(VerifiedFileCache.checksum(of: b + "/big.bin", in: cache) == sha)
        #expect(try !Checkpoint.verify("big.bin", in: b, manifest: try Checkpoint.read(from: b, only: []).0, cache: cache), "not hashed")
        // A file written without a record (never verified) gets none by being linked.
        let c = tempPath("write-c")
        try Checkpoint.write(
            to: c, files: ["big.bin": .stream { try $0.write(contentsOf: Data(repeating: 9, count: big)) }], corpusFingerprint: nil,
            corpusDirectory: nil, counts: [:], configuration: [:], verifiedCache: nil)
        let shaC = try Checkpoint.read(from: c, only: []).0.files["big.bin"]!.sha256
        let d = tempPath("write-d")
        try Checkpoint.write(
            to: d,
            files: [
                "big.bin": .carried(path: c + "/big.bin", sha256: shaC, stamp: try #require(Checkpoint.FileStamp(path: c + "/big.bin")))
            ],
            corpusFingerprint: nil, corpusDirectory: nil, counts: [:], configuration: [:], verifiedCache: cache)
        #expect(VerifiedFileCache.checksum(of: d + "/big.bin", in: cache) == nil)
    }

    @Test("a verified file is not hashed again until it changes: a change of the same size, even with its old time set back, is caught")
    func verifiedCache() throws {
        let dir = tempPath("verified-ck")
        let cache = tempPath("verified-cache")
        var bytes = [UInt8](repeating: 0, count: 4096)
        for i in bytes.indices { bytes[i] = UInt8(truncatingIfNeeded: i &* 31 &+ 7) }
        try Checkpoint.write(
            to: dir, files: ["big.bin": Data(bytes)], corpusFingerprint: nil, corpusDirectory: nil, counts: [:], configuration: [:])
        let manifest = try Checkpoint.read(from: dir, only: []).0
        let file = dir + "/big.bin"
        func verify(_ cache: String? = cache) throws -> Bool {
            try Checkpoint.verify("big.bin", in: dir, manifest: manifest, cache: cache, cacheAbove: 0)
        }
        // Just written: hashed, and not recorded (it changed less than a second ago).
        #expect(try verify())
        #expect(VerifiedFileCache.checksum(of: file, in: cache) == nil)
        Thread.sleep(forTimeInterval: Double(VerifiedFileCache.minimumAge) / 1e9 + 0.1)
        #expect(try verify())  // hashed and recorded
        #expect(VerifiedFileCache.checksum(of: file, in: cache) == manifest.files["big.bin"]?.sha256)
        #expect(try verify() == false)  // taken from the record
        #expect(try verify(nil))  // no cache: always hashed
        // One byte changed in place, and the modification time set back to what it was:
        // the status-change time moved, so the file is hashed again and refused.
        var st = stat()
        #expect(stat(file, &st) == 0)
        let h = try #require(FileHandle(forWritingAtPath: file))
        try h.seek(toOffset: 100)
        try h.write(contentsOf: Data([bytes[100] &+ 1]))
        try h.close()
        var times = [st.st_atim, st.st_mtim]
        #expect(utimensat(AT_FDCWD, file, &times, 0) == 0)
        #expect(VerifiedFileCache.checksum(of: file, in: cache) == nil)
        #expect(throws: Checkpoint.Error.self) { try verify() }
        // Put back: hashed again and accepted.
        let back = try #require(FileHandle(forWritingAtPath: file))
        try back.seek(toOffset: 100)
        try back.write(contentsOf: Data([bytes[100]]))
        try back.close()
        #expect(try verify())
    }

    @Test("a checkpoint round-trips, and replacing one is atomic")
    func roundTrip() throws {
        let dir = tempPath("ckpt")
        try Checkpoint.write(
            to: dir, files: ["a.bin": Data([1, 2, 3]), "b.txt": Data("hello".utf8)], corpusFingerprint: "abc", corpusDirectory: "/c",
            counts: ["documents": 2], configuration: ["seed": "1"])
        let (m, files) = try Checkpoint.read(from: dir)
        #expect(files["a.bin"] == Data([1, 2, 3]) && files["b.txt"] == Data("hello".utf8))
        #expect(m.counts["documents"] == 2 && m.corpusFingerprint == "abc" && m.version == Checkpoint.version)
        // Overwrite in place: the new contents, and no temporary directories left behind.
        try Checkpoint.write(
            to: dir, files: ["a.bin": Data([9])], corpusFingerprint: nil, corpusDirectory: nil, counts: [:], configuration: [:])
        #expect(try Checkpoint.read(from: dir).1 == ["a.bin": Data([9])])
        let parent = (dir as NSString).deletingLastPathComponent
        let name = (dir as NSString).lastPathComponent
        #expect(try FileManager.default.contentsOfDirectory(atPath: parent).filter { $0.hasPrefix(".\(name).tmp") }.isEmpty)
    }

    @Test("the header (options, fingerprint, tokenizer) reads as the full load does, and a damaged config.json is named")
    func header() throws {
        let corpus = try syntheticCorpus()
        let trainer = try Trainer(corpus: try Corpus(directory: corpus), options: testOptions())
        let index = try trainer.makeIndex(corpusFingerprint: "fp-1")
        let dir = tempPath("header")
        try index.save(to: dir, corpusDirectory: corpus, counts: [:])
        let h = try TrainedIndex.header(from: dir)
        let full = try TrainedIndex.load(from: dir)
        #expect(h.options == full.options && h.options == index.options)
        #expect(h.corpusFingerprint == "fp-1" && full.corpusFingerprint == "fp-1")
        #expect(h.tokenizer.vocab == index.tokenizer.vocab)
        let config = (dir as NSString).appendingPathComponent("config.json")
        try Data("{\"broken\": true}".utf8).write(to: URL(fileURLWithPath: config))
        #expect {
            _ = try TrainedIndex.header(from: dir)
        } throws: { error in
            "\(error)".contains("config.json")
        }
    }

    @Test("a resume load leaves the LSA vectors and replay memory on disk and copies them, checked, into what it saves")
    func resumeCarriesFiles() throws {
        let corpus = try syntheticCorpus()
        var o = testOptions(.semantic)
        o.initMode = .lsa
        let trainer = try Trainer(corpus: try Corpus(directory: corpus), options: o)
        let index = try trainer.makeIndex(corpusFingerprint: "fp")
        let dir = tempPath("carry-src")
        try index.save(to: dir, corpusDirectory: corpus, counts: [:])
        let resumed = try TrainedIndex.load(from: dir, for: .resume)
        #expect(resumed.lsa == nil && resumed.memory.views.isEmpty)
        #expect(Set(resumed.carried.keys) == ["lsa.safetensors", "replay.tsv"])
        // Saved elsewhere: the two files are the source's bytes; the full load reads them.
        let out = tempPath("carry-out")
        try resumed.save(to: out, corpusDirectory: corpus, counts: [:])
        for name in ["lsa.safetensors", "replay.tsv"] {
            let a = try Data(contentsOf: URL(fileURLWithPath: dir + "/" + name))
            let b = try Data(contentsOf: URL(fileURLWithPath: out + "/" + name))
            #expect(a == b && !a.isEmpty, "\(name)")
        }
        let full = try TrainedIndex.load(from: out)
        #expect(full.lsa != nil && full.memory.views.count == index.memory.views.count)
        // Saved over its own directory (as --resume does), twice: still whole.
        try resumed.save(to: dir, corpusDirectory: corpus, counts: [:])
        try resumed.save(to: dir, corpusDirectory: corpus, counts: [:])
        #expect(try TrainedIndex.load(from: dir).memory.views.count == index.memory.views.count)
        // Adding documents needs what was left on disk.
        #expect(throws: ContinualIndexer.Failure.self) {
            _ = try ContinualIndexer.add(resumed, documents: newDocuments(["zebra"]), source: "t", options: AddOptions())
        }
        // A carried file that changed on disk is refused by name; nothing is written.
        try Data("changed".utf8).write(to: URL(fileURLWithPath: dir + "/replay.tsv"))
        let third = tempPath("carry-third")
        #expect {
            try resumed.save(to: third, corpusDirectory: corpus, counts: [:])
        } throws: { error in
            "\(error)".contains("replay.tsv") && "\(error)".contains("changed")
        }
        #expect(!FileManager.default.fileExists(atPath: third))
    }

    @Test("a mapped file's released pages read back from the file; a load that releases as it copies gets the same weights")
    func mappedRelease() throws {
        let path = tempPath("mapped")
        let bytes = Data((0..<(3 * 4096 + 100)).map { UInt8(truncatingIfNeeded: $0 &* 7) })
        try bytes.write(to: URL(fileURLWithPath: path))
        let file = try MappedFile(path: path)
        #expect(file.withData { Data($0) } == bytes)
        file.release(0..<file.size)
        file.release(10..<5000)  // partial pages: only whole ones are dropped
        #expect(file.withData { Data($0) } == bytes)
        // The weights of a model saved and loaded back, releasing pages as tensors are copied.
        let model = try smallModel(seed: 5)
        let st = tempPath("weights")
        try model.safetensorsData().write(to: URL(fileURLWithPath: st))
        let other = try smallModel(seed: 6)
        let m = try MappedFile(path: st)
        try m.withData { try other.loadSafetensors($0, path: st, release: m.release) }
        #expect(other.params.values.toArray() == model.params.values.toArray())
    }

    @Test("a failed write leaves the previous checkpoint intact and loadable")
    func failedWrite() throws {
        let dir = tempPath("ckpt")
        try Checkpoint.write(
            to: dir, files: ["a.bin": Data([1])], corpusFingerprint: nil, corpusDirectory: nil, counts: [:], configuration: [:])
        // Replacing it fails midway (a file name longer than the file system allows):
        // the error reaches the caller, the old checkpoint stays, nothing is left over.
        #expect(throws: (any Error).self) {
            try Checkpoint.write(
                to: dir, files: ["a.bin": Data([2]), String(repeating: "x", count: 300): Data([3])], corpusFingerprint: nil,
                corpusDirectory: nil, counts: [:], configuration: [:])
        }
        let parent = (dir as NSString).deletingLastPathComponent
        let name = (dir as NSString).lastPathComponent
        #expect(try FileManager.default.contentsOfDirectory(atPath: parent).filter { $0.hasPrefix(".\(name).tmp") }.isEmpty)
        #expect(try Checkpoint.read(from: dir).1 == ["a.bin": Data([1])])
    }

    @Test("corrupt, truncated, foreign and incomplete checkpoints are refused with what is wrong")
    func refusals() throws {
        func fresh() throws -> String {
            let dir = tempPath("ckpt")
            try Checkpoint.write(
                to: dir, files: ["model.safetensors": Data(repeating: 7, count: 100)], corpusFingerprint: nil, corpusDirectory: nil,
                counts: [:], configuration: [:])
            return dir
        }
        func expectRefusal(_ dir: String, _ words: String, sourceLocation: SourceLocation = #_sourceLocation) {
            do {
                _ = try Checkpoint.read(from: dir)
                Issue.record("accepted", sourceLocation: sourceLocation)
            } catch {
                #expect(error.description.contains(words), "\(error)", sourceLocation: sourceLocation)
            }
        }
        var dir = try fresh()
        var bytes = try Data(contentsOf: URL(fileURLWithPath: dir + "/model.safetensors"))
        bytes[50] ^= 1
        try bytes.write(to: URL(fileURLWithPath: dir + "/model.safetensors"))
        expectRefusal(dir, "checksum mismatch")

        dir = try fresh()
        try Data(repeating: 7, count: 60).write(to: URL(fileURLWithPath: dir + "/model.safetensors"))
        expectRefusal(dir, "truncated")

        dir = try fresh()
        try FileManager.default.removeItem(atPath: dir + "/model.safetensors")
        expectRefusal(dir, "missing")

        dir = try fresh()
        var manifest = try String(contentsOfFile: dir + "/manifest.json", encoding: .utf8)
        manifest = manifest.replacingOccurrences(of: "\"version\" : \(Checkpoint.version)", with: "\"version\" : 7")
        try manifest.write(toFile: dir + "/manifest.json", atomically: true, encoding: .utf8)
        expectRefusal(dir, "format version 7 was written by a newer swift-dsi")

        dir = try fresh()
        try FileManager.default.removeItem(atPath: dir + "/manifest.json")
        expectRefusal(dir, "manifest.json: missing")
        expectRefusal(tempPath("nothing"), "no checkpoint here")
    }
}

@Suite("streamed checkpoint files")
struct StreamedFileTests {
    func streamed(_ write: (FileHandle) throws -> Void) throws -> Data {
        let p = tempPath("stream")
        FileManager.default.createFile(atPath: p, contents: nil)
        let h = FileHandle(forWritingAtPath: p)!
        try write(h)
        try h.close()
        return try Data(contentsOf: URL(fileURLWithPath: p))
    }

    @Test("weights and optimizer state written as streams are the bytes of the in-memory encoding; unallocated moments are zeros")
    func sameBytes() throws {
        let model = try smallModel()
        #expect(
            try streamed { try model.writeSafetensors(to: $0, metadata: ["step": "3"]) } == model.safetensorsData(metadata: ["step": "3"]))
        var opt = AdamW()
        opt.step = 4
        #expect(!model.params.holdsMoments)
        let zeros = try streamed { try model.writeOptimizer(opt, to: $0) }
        #expect(!model.params.holdsMoments, "writing zero moments must not allocate them")
        #expect(zeros == (try model.optimizerData(opt)))  // allocates them, zero
        model.params.m[5] = 0.25
        #expect(try streamed { try model.writeOptimizer(opt, to: $0) } == model.optimizerData(opt))
        let back = try smallModel(seed: 9)
        #expect(try back.loadOptimizer(try model.optimizerData(opt), path: "x").step == 4 && back.params.m[5] == 0.25)
    }
}

@Suite("replay memory file")
struct ReplayFileTests {
    func written(_ m: ReplayMemory) throws -> Data {
        let path = tempPath("replay.tsv")
        FileManager.default.createFile(atPath: path, contents: nil)
        let h = try #require(FileHandle(forWritingAtPath: path))
        try m.write(to: h)
        try h.close()
        return try Data(contentsOf: URL(fileURLWithPath: path))
    }

    @Test("replay.tsv: what write makes reads back byte by byte; other shapes read as text; bad lines are named")
    func roundTrip() throws {
        var rng = SystemRandomNumberGenerator()
        let kinds = ReplayMemory.Kind.allCases
        var views: [ReplayMemory.View] = []
        for i in 0..<300 {
            let count = i % 7 == 0 ? 0 : Int.random(in: 1...40, using: &rng)
            let tokens: [Int32] = (0..<count).map { _ in Int32.random(in: 0..<100_000, using: &rng) }
            views.append(ReplayMemory.View(document: i / 3, kind: kinds[i % kinds.count], tokens: tokens))
        }
        let m = ReplayMemory(views: views)
        let data = try written(m)
        #expect(String(decoding: data, as: UTF8.self) == m.tsv())
        #expect(ReplayMemory.parseWellFormed(data, documents: 100, vocabulary: 100_000) == m)
        #expect(try ReplayMemory.parse(data: data, path: "r", documents: 100, vocabulary: 100_000) == m)
        #expect(ReplayMemory.parseWellFormed(data, documents: 99, vocabulary: 100_000) == nil)  // out of range: the text path names it
        // Text that write does not make (a blank line, doubled spaces, no final newline)
        // reads as text.
        let loose = "document\tkind\ttokens\n3\ttitle\t5  6\n\n4\tspan\t"
        let want = ReplayMemory(views: [.init(document: 3, kind: .title, tokens: [5, 6]), .init(document: 4, kind: .span, tokens: [])])
        #expect(ReplayMemory.parseWellFormed(Data(loose.utf8), documents: 10, vocabulary: 10) == nil)
        #expect(try ReplayMemory.parse(data: Data(loose.utf8), path: "r", documents: 10, vocabulary: 10) == want)
        #expect(try ReplayMemory.parse(tsv: loose, path: "r", documents: 10, vocabulary: 10) == want)
        // Bad lines are named by line and field, whichever way they are read.
        for (text, line, field) in [
            ("document\tkind\ttokens\n1\ttitle\t3\n12\ttitle\t3\n", 3, "document"),
            ("document\tkind\ttokens\n1\ttitle\t3\n2\tchapter\t3\n", 3, "kind"),
            ("document\tkind\ttokens\n1\ttitle\t3 99\n", 2, "tokens"),
        ] {
            #expect {
                _ = try ReplayMemory.parse(data: Data(text.utf8), path: "r.tsv", documents: 10, vocabulary: 10)
            } throws: { e in
                let e = e as! InputError
                return e.line == line && "\(e)".contains("field \"\(field)\"") && "\(e)".contains("r.tsv")
            }
        }
    }
}
