import DSIModel
import DSITensor
import Foundation
import Testing

/// Candidate sets for `tinyBatch()` (labels 3,4,5,2 / 6,2,-,-): position 0 of both rows
/// over {3, 5, 6}, the others over sets that hold their labels; one position unscored.
func tinyCandidates() -> OutputCandidates {
    OutputCandidates(sets: [[3, 5, 6], [2, 4, 6], [2, 5], [1, 2, 3, 4]], setOfPosition: [0, 1, 2, -1, 0, 3, -1, -1])
}

@Suite("candidate softmax, lazy AdamW")
struct CandidateTests {
    @Test("the loss over candidate sets is the softmax over those rows of the full logits")
    func lossMatchesFullLogits() throws {
        let model = try tinyModel()
        var batch = tinyBatch()
        let cands = tinyCandidates()
        let ws = Workspace()
        var rng = SeededRNG(seed: 1)
        _ = try model.forward(batch, workspace: ws, training: false, rng: &rng)
        let full = Array(ws.lastLogits)
        let V = model.config.targetVocab
        var want: Double = 0
        var n = 0
        let smoothing: Float = 0.1
        for (p, s) in cands.setOfPosition.enumerated() where s >= 0 {
            let set = cands.sets[Int(s)]
            let z = set.map { Double(full[p * V + Int($0)]) }
            let mx = z.max()!
            let lse = mx + log(z.reduce(0) { $0 + exp($1 - mx) })
            let gold = Double(full[p * V + Int(batch.targetOut[p])])
            let meanNLL = z.reduce(0) { $0 + (lse - $1) } / Double(z.count)
            want += (1 - Double(smoothing)) * (lse - gold) + Double(smoothing) * meanNLL
            n += 1
        }
        batch.candidates = cands
        var rng2 = SeededRNG(seed: 1)
        let got = try model.forward(batch, workspace: ws, smoothing: smoothing, training: false, rng: &rng2)
        #expect(abs(Double(got) - want / Double(n)) < 1e-5 * (1 + abs(want)))
    }

    @Test("decoderStates equals the final states of the full forward pass")
    func decoderStatesWithoutHead() throws {
        let model = try tinyModel()
        let batch = tinyBatch()
        let ws = Workspace()
        var rng = SeededRNG(seed: 1)
        _ = try model.forward(batch, workspace: ws, training: false, rng: &rng)
        let full = Array(ws.lastDecoderStates)
        let ws2 = Workspace()
        let states = Array(try model.decoderStates(batch, workspace: ws2))
        #expect(states.count == batch.B * batch.T * model.config.dModel)
        #expect(states == full)
    }

    @Test("a label outside its candidate set is refused")
    func labelOutsideSet() throws {
        let model = try tinyModel()
        var batch = tinyBatch()
        batch.candidates = OutputCandidates(sets: [[4, 5]], setOfPosition: [0, -1, -1, -1, -1, -1, -1, -1])
        var rng = SeededRNG(seed: 1)
        #expect(throws: ModelError.self) { try model.forward(batch, workspace: Workspace(), rng: &rng) }
    }

    @Test("every parameter's gradient of the candidate-set loss matches finite differences", arguments: [Float(0), 0.2])
    func gradient(dropout: Float) throws {
        var batch = tinyBatch()
        batch.candidates = tinyCandidates()
        expectEveryParameterGradient(try tinyModel(dropout: dropout), batch: batch)
    }

    @Test("decoder states times gathered or consecutive output rows equal the full step's logits")
    func headLogitsEqualFull() throws {
        let model = try tinyModel()
        let batch = tinyBatch()
        let V = model.config.targetVocab
        let C = model.config.dModel
        let full = try model.beginDecoding(source: batch.source, sourceMask: batch.sourceMask, queries: 2, sourceLength: 5)
        let part = try model.beginDecoding(source: batch.source, sourceMask: batch.sourceMask, queries: 2, sourceLength: 5)
        for t in 0..<3 {
            let tokens = (0..<2).map { batch.targetIn[$0 * batch.T + t] }
            let logits = Array(model.decodeStep(full, tokens: tokens))
            let states = model.decodeStates(part, tokens: tokens)
            let chosen: [Int32] = [6, 2, 4]
            var out = [Float](repeating: 0, count: 2 * 3)
            var scratch = [Float](repeating: 0, count: 3 * C)
            chosen.withUnsafeBufferPointer { tk in
                model.headLogits(states: states.baseAddress!, ld: C, rows: 2, tokens: tk, scratch: &scratch, out: &out)
            }
            var range = [Float](repeating: 0, count: 2 * 4)
            model.headLogits(states: states.baseAddress!, ld: C, rows: 2, first: 2, count: 4, out: &range)
            for r in 0..<2 {
                for (k, tok) in chosen.enumerated() { #expect(abs(out[r * 3 + k] - logits[r * V + Int(tok)]) < 1e-5) }
                for k in 0..<4 { #expect(abs(range[r * 4 + k] - logits[r * V + 2 + k]) < 1e-5) }
                // One row at a time (the matrix-vector path).
                var one = [Float](repeating: 0, count: 3)
                chosen.withUnsafeBufferPointer { tk in
                    model.headLogits(states: states.baseAddress! + r * C, ld: C, rows: 1, tokens: tk, scratch: &scratch, out: &one)
                }
                var oneRange = [Float](repeating: 0, count: 4)
                model.headLogits(states: states.baseAddress! + r * C, ld: C, rows: 1, first: 2, count: 4, out: &oneRange)
                for (k, tok) in chosen.enumerated() { #expect(abs(one[k] - logits[r * V + Int(tok)]) < 1e-5) }
                for k in 0..<4 { #expect(abs(oneRange[k] - logits[r * V + 2 + k]) < 1e-5) }
            }
        }
    }

    @Test("lazy AdamW: touched rows move as under the dense update, untouched rows keep weights and moments bit for bit")
    func lazyAdam() throws {
        let lazy = try tinyModel()
        let dense = try tinyModel()
        var batch = tinyBatch()
        batch.candidates = tinyCandidates()
        let before = lazy.params.values.toArray()
        var optL = AdamW(weightDecay: 0.1)
        var optD = AdamW(weightDecay: 0.1)
        let wsL = Workspace()
        let wsD = Workspace()
        for step in 0..<3 {
            var r1 = SeededRNG(seed: UInt64(step))
            try lazy.trainStep(batch, workspace: wsL, optimizer: &optL, lr: 1e-2, clipNorm: nil, smoothing: 0.1, rng: &r1)
            // The same step with the row-sparse entries updated densely.
            var r2 = SeededRNG(seed: UInt64(step))
            dense.params.zeroGrads()
            _ = try dense.forward(batch, workspace: wsD, smoothing: 0.1, training: true, rng: &r2)
            dense.backward(workspace: wsD)
            _ = dense.params.gradTensor("lm_head.weight")  // marks every row dirty: the dense rule
            optD.update(dense.params, lr: 1e-2)
        }
        let l = lazy.params.values.toArray()
        let d = dense.params.values.toArray()
        let V = lazy.config.targetVocab
        let C = lazy.config.dModel
        // Rows the candidate sets touch: 1...6; tokens fed to the decoder: 0...6 minus none.
        let headRows = Set(tinyCandidates().sets.joined().map(Int.init))
        let embedRows = Set(tinyBatch().targetIn.map(Int.init))
        for e in lazy.params.entries {
            let sparse = ["lm_head.weight", "lm_head.bias", "decoder.embed_tokens.weight"].contains(e.name)
            let rows = e.name.hasPrefix("lm_head") ? headRows : embedRows
            let w = e.count / e.shape[0]
            for i in 0..<e.count {
                let o = e.offset + i
                if !sparse || rows.contains(i / w) {
                    #expect(l[o] == d[o], "\(e.name)[\(i)] differs from the dense update")
                } else {
                    #expect(l[o] == before[o], "\(e.name)[\(i)] moved though no step touched its row")
                    #expect(lazy.params.m[o] == 0 && lazy.params.v[o] == 0)
                }
            }
        }
        // The dense rule moves untouched rows (weight decay), so the two differ there.
        let untouched = (0..<V).first { !headRows.contains($0) }!
        let e = lazy.params.entry("lm_head.weight")!
        #expect(d[e.offset + untouched * C] != before[e.offset + untouched * C])
    }
}

@Suite("released gradient pages")
struct ReleasedGradientTests {
    @Test("zeroing gradients gives large row-sparse entries' pages back: results unchanged, the resident gradient does not grow")
    func releasedPages() throws {
        let V = 1 << 17  // 4 MiB output head and target embedding at dModel 8
        func model() throws -> Seq2Seq {
            let config = ModelConfig(
                dModel: 8, heads: 2, ff: 12, encoderLayers: 1, decoderLayers: 1, sourceVocab: 11, sourceLength: 6, targetVocab: V,
                targetLength: 5, dropout: 0)
            return try Seq2Seq(config: config, seed: 3)
        }
        let releasing = try model()
        let keeping = try model()
        releasing.params.releaseBytes = 1 << 20
        keeping.params.releaseBytes = .max
        var optR = AdamW()
        var optK = AdamW()
        let (wsR, wsK) = (Workspace(), Workspace())
        for step in 0..<8 {
            // Each step's candidates: the labels and 64 rows spread over the whole vocabulary.
            let spread = (0..<64).map { Int32((step * 997 + $0 * 2039) % V) }
            let labels: [Int32] = [2, 3, 4, 5, 6]
            let set = Array(Set(labels + spread)).sorted()
            var batch = tinyBatch()
            batch.targetIn = batch.targetIn.map { $0 == 0 ? 0 : Int32((Int($0) * 40_503 + step * 8191) % V) }
            batch.candidates = OutputCandidates(sets: [set], setOfPosition: [0, 0, 0, 0, 0, 0, -1, -1])
            var r1 = SeededRNG(seed: UInt64(step))
            var r2 = SeededRNG(seed: UInt64(step))
            try releasing.trainStep(batch, workspace: wsR, optimizer: &optR, lr: 1e-2, clipNorm: 1, smoothing: 0.1, rng: &r1)
            try keeping.trainStep(batch, workspace: wsK, optimizer: &optK, lr: 1e-2, clipNorm: 1, smoothing: 0.1, rng: &r2)
            #expect(releasing.params.values.toArray() == keeping.params.values.toArray(), "step \(step)")
        }
        releasing.params.zeroGrads()
        keeping.params.zeroGrads()
        let r = try #require(releasing.params.grads.residentPages)
        let k = try #require(keeping.params.grads.residentPages)
        #expect(releasing.params.grads.toArray().allSatisfy { $0 == 0 })  // (reading maps the zero page: measured first)
        // What stays resident when released: the pages of the dense entries (each starts
        // on a page of its own) and of the 512 KiB bias.
        let small = releasing.params.entries.filter { $0.count * 4 < 1 << 20 }.reduce(0) { $0 + ($1.count * 4 + 4095) / 4096 } + 8
        #expect(r <= small, "\(r) pages resident after zeroing; at most \(small) expected")
        #expect(k >= r + 300, "without releasing, \(k) pages stay resident (\(r) with)")
    }
}
