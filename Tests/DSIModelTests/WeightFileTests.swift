import DSIModel
import DSITensor
import Foundation
import Testing

@Suite("weight files: page-aligned tensors and generation slices")
struct WeightFileTests {
    func write(_ path: String, _ body: (FileHandle) throws -> Void) throws {
        FileManager.default.createFile(atPath: path, contents: nil)
        let h = FileHandle(forWritingAtPath: path)!
        try body(h)
        try h.close()
    }

    func path(_ name: String) -> String {
        (NSTemporaryDirectory() as NSString).appendingPathComponent("dsi-weights-\(name)-\(UUID().uuidString)")
    }

    /// A small model and the same model grown by `extra` target tokens, its new rows set.
    func models(extra: Int) throws -> (Seq2Seq, Seq2Seq) {
        let config = ModelConfig(
            dModel: 16, heads: 2, ff: 24, encoderLayers: 1, decoderLayers: 1, sourceVocab: 30, sourceLength: 8, targetVocab: 203,
            targetLength: 5)
        let old = try Seq2Seq(config: config, seed: 5)
        let grown = try old.grown(targetVocab: 203 + extra, targetLength: 7)
        var rng = SeededRNG(seed: 9)
        for name in ["decoder.embed_tokens.weight", "lm_head.weight", "lm_head.bias", "decoder.embed_positions.weight"] {
            let (o, g) = (old.params.entry(name)!, grown.params.entry(name)!)
            for i in o.count..<g.count { grown.params.values[g.offset + i] = rng.normal() }
        }
        return (old, grown)
    }

    func entries(_ m: Seq2Seq) -> [String: [Float]] {
        Dictionary(uniqueKeysWithValues: m.params.entries.map { ($0.name, m.params.tensor($0.name).toArray()) })
    }

    @Test("every tensor of a model file starts on a page, the padding is named zero bytes, and the file has no holes")
    func aligned() throws {
        let (m, _) = try models(extra: 0)
        let data = try m.safetensorsData()
        let n = data.prefix(8).withUnsafeBytes { Int(UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self))) }
        #expect((8 + n) % 4096 == 0 && data.count % 4096 == 0)
        let header = try #require(try JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + n))) as? [String: Any])
        var spans: [(Int, Int, String)] = []
        for (name, value) in header where name != "__metadata__" {
            let e = try #require(value as? [String: Any])
            let o = try #require(e["data_offsets"] as? [Int])
            spans.append((o[0], o[1], name))
            if name.hasPrefix(Safetensors.padPrefix) {
                #expect(e["dtype"] as? String == "U8")
                #expect(data[(8 + n + o[0])..<(8 + n + o[1])].allSatisfy { $0 == 0 })
            } else {
                #expect(o[0] % 4096 == 0, "\(name) starts at \(o[0])")
            }
        }
        spans.sort { $0.0 < $1.0 }
        #expect(spans.first?.0 == 0 && spans.last?.1 == data.count - 8 - n)
        for (a, b) in zip(spans, spans.dropFirst()) { #expect(a.1 == b.0, "hole between \(a.2) and \(b.2)") }
        // Each entry's offset in the file is its offset in the arena.
        for e in m.params.entries {
            let span = try #require(spans.first { $0.2 == e.name })
            #expect(span.0 == e.offset * 4)
        }
    }

    @Test(
        "a base file and a generation slice map into one arena equal to the grown model's, copied or mapped; gaps and missing floats are refused",
        arguments: [1, 300, 1024])
    func slices(extra: Int) throws {
        let (old, grown) = try models(extra: extra)
        let base = path("base")
        let delta = path("delta")
        try write(base) { try old.writeSafetensors(to: $0) }
        try write(delta) { try grown.writeWeightDelta(to: $0, covered: old.entryFloats) }
        let files = [try WeightFile(path: base), try WeightFile(path: delta)]
        // Only the grown entries are in the slice, each from the page of its first new float.
        let sliced = Set(files[1].extents.map(\.name))
        #expect(sliced == ["decoder.embed_tokens.weight", "lm_head.weight", "lm_head.bias", "decoder.embed_positions.weight"])
        for x in files[1].extents {
            let oldCount = old.params.entry(x.name)!.count
            #expect(x.from == oldCount / 1024 * 1024 && x.from + x.count == grown.params.entry(x.name)!.count)
        }
        let want = entries(grown)
        let mapped = try Seq2Seq(config: grown.config)
        #expect(try mapped.useWeightFiles(files, map: true), "page-aligned files map without a copy")
        #expect(entries(mapped) == want)
        #expect(mapped.weightFiles == files)
        let copied = try Seq2Seq(config: grown.config)
        #expect(try !copied.useWeightFiles(files, map: false))
        #expect(entries(copied) == want)
        // A model grown from the mapped one maps the same pages; its new rows are zero.
        let again = try mapped.grown(targetVocab: grown.config.targetVocab + 3, targetLength: 7)
        #expect(again.weightFiles == nil, "its new rows are its own: growing it again copies")
        let head = again.params.entry("lm_head.weight")!
        let gh = grown.params.entry("lm_head.weight")!
        #expect(again.params.tensor("lm_head.weight").toArray()[..<gh.count] == want["lm_head.weight"]![...])
        #expect(again.params.tensor("lm_head.weight").toArray()[gh.count..<head.count].allSatisfy { $0 == 0 })
        // Writing a new row of the grown model leaves the file and the first model as they were.
        again.params.values[head.offset + gh.count] = 42
        #expect(entries(mapped) == want)
        #expect(
            entries(
                try {
                    let m = try Seq2Seq(config: grown.config)
                    try m.useWeightFiles(files, map: true)
                    return m
                }()) == want)
        // The slice alone does not start at the entries' first floats; the base alone
        // lacks the grown rows.
        #expect(throws: Safetensors.FormatError.self) { try Seq2Seq(config: grown.config).useWeightFiles([files[1]], map: true) }
        do {
            try Seq2Seq(config: grown.config).useWeightFiles([files[0]], map: true)
            Issue.record("the base alone was accepted for the grown model")
        } catch {
            #expect("\(error)".contains("incomplete"), "\(error)")
        }
    }
}
