import DSIModel
import DSITensor
import Testing

/// A tiny model whose weights are large enough that every path matters.
func tinyModel(dropout: Float = 0, seed: UInt64 = 1, encoderLayers: Int = 2, decoderLayers: Int = 2) throws -> Seq2Seq {
    let config = ModelConfig(
        dModel: 8, heads: 2, ff: 12, encoderLayers: encoderLayers, decoderLayers: decoderLayers,
        sourceVocab: 11, sourceLength: 6, targetVocab: 7, targetLength: 5, dropout: dropout)
    let model = try Seq2Seq(config: config, seed: seed)
    var rng = SeededRNG(seed: seed &+ 100)
    for e in model.params.entries where e.shape.count >= 2 {
        let p = model.params.values.data + e.offset
        for i in 0..<e.count { p[i] = rng.normal() * 0.3 }
    }
    return model
}

/// Two padded sources, with ignored target positions.
func tinyBatch() -> Seq2SeqBatch {
    Seq2SeqBatch(
        B: 2, S: 5, T: 4,
        source: [3, 4, 5, 6, 7, 8, 9, 10, 0, 0],
        sourceMask: [1, 1, 1, 1, 1, 1, 1, 1, 0, 0],
        targetIn: [1, 3, 4, 5, 1, 6, 2, 0],
        targetOut: [3, 4, 5, 2, 6, 2, Seq2Seq.ignoreIndex, Seq2Seq.ignoreIndex])
}

/// Every parameter's gradient of the batch's loss (label smoothing 0.1, fixed dropout
/// masks) against centred finite differences.
func expectEveryParameterGradient(_ model: Seq2Seq, batch: Seq2SeqBatch, sourceLocation: SourceLocation = #_sourceLocation) {
    let ws = Workspace()
    func loss() -> Double {
        var rng = SeededRNG(seed: 77)  // the same dropout masks on every evaluation
        return Double(try! model.forward(batch, workspace: ws, smoothing: 0.1, training: true, rng: &rng))
    }
    model.params.zeroGrads()
    _ = loss()
    model.backward(workspace: ws)
    for e in model.params.entries {
        expectGradient(
            e.name, x: model.params.tensor(e.name), analytic: model.params.gradTensor(e.name),
            eps: 1e-2, rtol: 5e-2, atol: 5e-4, samples: 6, sourceLocation: sourceLocation, loss: loss)
    }
}

@Suite("encoder-decoder")
struct ModelTests {
    @Test("every parameter's gradient matches finite differences of the loss", arguments: [Float(0), 0.2])
    func wholeModelGradient(dropout: Float) throws {
        expectEveryParameterGradient(try tinyModel(dropout: dropout), batch: tinyBatch())
    }

    @Test("incremental decoding (KV cache) gives the full pass's logits")
    func incrementalEqualsFull() throws {
        let model = try tinyModel()
        let batch = tinyBatch()
        let ws = Workspace()
        var rng = SeededRNG(seed: 1)
        _ = try model.forward(batch, workspace: ws, training: false, rng: &rng)
        let full = Array(ws.lastLogits)
        let V = model.config.targetVocab
        let state = try model.beginDecoding(source: batch.source, sourceMask: batch.sourceMask, queries: 2, sourceLength: 5)
        for t in 0..<batch.T {
            let tokens = (0..<2).map { batch.targetIn[$0 * batch.T + t] }
            let step = model.decodeStep(state, tokens: tokens)
            for b in 0..<2 {
                for j in 0..<V {
                    let want = full[(b * batch.T + t) * V + j]
                    #expect(abs(step[b * V + j] - want) <= 1e-4 * (1 + abs(want)), "b \(b) t \(t) token \(j)")
                }
            }
        }
    }

    @Test("beams sharing a query's cross-attention and reordered caches match full decoding")
    func beamsAndReorder() throws {
        let model = try tinyModel(seed: 3)
        let base = tinyBatch()
        let V = model.config.targetVocab
        let T = 4
        let S = 5
        // Three rows per query after the first step; each row's own token sequence.
        let seqs: [[Int32]] = [[1, 3, 4, 5], [1, 5, 6, 3], [1, 4, 4, 4], [1, 6, 2, 3], [1, 2, 5, 6], [1, 3, 3, 6]]
        let rowQuery = [0, 0, 0, 1, 1, 1]
        // The reference: each row decoded alone, as a batch of 6 with duplicated sources.
        var source: [Int32] = []
        var mask: [Float] = []
        for q in rowQuery {
            source += base.source[(q * S)..<((q + 1) * S)]
            mask += base.sourceMask[(q * S)..<((q + 1) * S)]
        }
        let ref = Seq2SeqBatch(
            B: 6, S: S, T: T, source: source, sourceMask: mask, targetIn: seqs.flatMap { $0 },
            targetOut: [Int32](repeating: Seq2Seq.ignoreIndex, count: 6 * T))
        let ws = Workspace()
        var rng = SeededRNG(seed: 1)
        _ = try model.forward(ref, workspace: ws, training: false, rng: &rng)
        let full = Array(ws.lastLogits)

        let state = try model.beginDecoding(source: base.source, sourceMask: base.sourceMask, queries: 2, sourceLength: S, maxRows: 6)
        _ = model.decodeStep(state, tokens: [1, 1])  // BOS for each query
        state.reorder([0, 0, 0, 1, 1, 1])  // expand to 3 beams per query
        // Rows now hold the caches of BOS; after step 1, permute within each query's group
        // and feed tokens so that row i continues the sequence it now holds.
        var order = [0, 1, 2, 3, 4, 5]
        for t in 1..<T {
            if t == 2 {
                order = [2, 0, 1, 5, 3, 4]
                state.reorder(order)
            }
            let tokens = order.map { seqs[$0][t] }
            let logits = model.decodeStep(state, tokens: tokens)
            for (row, seq) in order.enumerated() {
                for j in 0..<V {
                    let want = full[(seq * T + t) * V + j]
                    #expect(abs(logits[row * V + j] - want) <= 1e-4 * (1 + abs(want)), "row \(row) (sequence \(seq)) t \(t)")
                }
            }
        }
    }

    @Test("a row may not move to another query's group")
    func reorderKeepsGroups() async throws {
        let model = try tinyModel()
        let b = tinyBatch()
        let state = try model.beginDecoding(source: b.source, sourceMask: b.sourceMask, queries: 2, sourceLength: 5, maxRows: 4)
        _ = model.decodeStep(state, tokens: [1, 1])
        state.reorder([0, 0, 1, 1])
        #expect(state.rows == 4 && state.group == 2)
        await #expect(processExitsWith: .failure) {
            let model = try! tinyModel()
            let b = tinyBatch()
            let state = try! model.beginDecoding(source: b.source, sourceMask: b.sourceMask, queries: 2, sourceLength: 5, maxRows: 4)
            _ = model.decodeStep(state, tokens: [1, 1])
            state.reorder([1, 0, 0, 1])
        }
    }

    @Test("bad configurations and batches are refused with the field named")
    func validation() throws {
        #expect(throws: ModelError.invalidConfig(field: "heads", expected: "a positive divisor of dModel (10)")) {
            _ = try Seq2Seq(config: ModelConfig(dModel: 10, heads: 4))
        }
        let model = try tinyModel()
        var bad = tinyBatch()
        bad.source[0] = 11
        var rng = SeededRNG(seed: 1)
        do {
            _ = try model.forward(bad, workspace: Workspace(), rng: &rng)
            Issue.record("an out-of-vocabulary token was accepted")
        } catch {
            #expect(error.description.contains("source token 11"))
        }
        var long = tinyBatch()
        long.T = 9
        #expect(throws: ModelError.self) { _ = try model.forward(long, workspace: Workspace(), rng: &rng) }
    }

    @Test("parameter layout: names, shapes and the reference model's size")
    func layout() throws {
        let model = try Seq2Seq(config: .reference)
        // 9.5M, as the PyTorch twin (which has the same layers with unfused Q, K, V).
        #expect(model.params.parameterCount == 9_496_333)
        #expect(model.params.entry("encoder.layers.3.self_attn.qkv.weight")?.shape == [768, 256])
        #expect(model.params.entry("decoder.layers.0.cross_attn.kv.weight")?.shape == [512, 256])
        #expect(model.params.entry("lm_head.weight")?.shape == [13, 256])
        #expect(model.params.entries.allSatisfy { $0.offset % 16 == 0 })
    }
}

@Suite("optimisation")
struct OptimisationTests {
    @Test("AdamW: one update by hand, decay on matrices only")
    func adamw() {
        let arena = ParameterArena([("w", [2, 2]), ("b", [2])])
        for i in 0..<4 { arena.tensor("w")[i] = Float(i + 1) }
        arena.tensor("b")[0] = 1
        arena.tensor("b")[1] = -1
        let g: [Float] = [0.5, -1, 2, 0]
        for i in 0..<4 { arena.gradTensor("w")[i] = g[i] }
        arena.gradTensor("b")[0] = 1
        arena.gradTensor("b")[1] = 1
        var opt = AdamW(beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.1)
        opt.update(arena, lr: 0.01)
        // Step 1: m̂ = g, v̂ = g², so the Adam part is lr·sign(g) (0 where g = 0).
        for i in 0..<4 {
            let p = Float(i + 1)
            let adam: Float = g[i] == 0 ? 0 : (g[i] > 0 ? 1 : -1)
            let want = p - 0.01 * (adam * abs(g[i]) / (abs(g[i]) + 1e-8) + 0.1 * p)
            #expect(abs(arena.tensor("w")[i] - want) < 1e-6)
        }
        #expect(abs(arena.tensor("b")[0] - (1 - 0.01)) < 1e-6)
        #expect(abs(arena.tensor("b")[1] - (-1 - 0.01)) < 1e-6)
        #expect(opt.step == 1)
    }

    @Test("gradient norm and clipping scale")
    func gradNorm() {
        let arena = ParameterArena([("a", [3]), ("b", [1])])
        arena.gradTensor("a")[0] = 3
        arena.gradTensor("a")[1] = 4
        arena.gradTensor("b")[0] = 12
        #expect(abs(arena.gradNorm() - 13) < 1e-6)
    }

    @Test("learning rate: linear warm-up from 1% of the peak, then cosine to the floor")
    func schedule() {
        let s = LearningRateSchedule(peak: 1, warmupFraction: 0.1, floor: 0.1)
        #expect(abs(s.rate(progress: 0) - 0.01) < 1e-6)
        #expect(abs(s.rate(progress: 0.05) - 0.5) < 1e-6)
        #expect(abs(s.rate(progress: 0.1) - 1) < 1e-6)
        #expect(abs(s.rate(progress: 0.55) - 0.55) < 1e-5)
        #expect(abs(s.rate(progress: 1) - 0.1) < 1e-6)
        #expect(abs(s.rate(progress: 5) - 0.1) < 1e-6)
        #expect(abs(s.rate(step: 55, of: 100) - 0.55) < 1e-5)
        let rates = (10...100).map { s.rate(progress: Double($0) / 100) }
        #expect(zip(rates, rates.dropFirst()).allSatisfy { $0 >= $1 })
    }

    @Test("AdamW's vector update is the arena update without weight decay")
    func adamVector() throws {
        let arena = ParameterArena([("bias", [3])])
        var vec: [Float] = [0.5, -1, 2]
        var m = [Float](repeating: 0, count: 3)
        var v = m
        for i in 0..<3 { arena.values[i] = vec[i] }
        var a = AdamW(weightDecay: 0.5)
        var b = AdamW(weightDecay: 0.5)
        for step in 0..<3 {
            let g: [Float] = [0.1 * Float(step + 1), -0.3, 0.05]
            for i in 0..<3 { arena.grads[i] = g[i] }
            a.update(arena, lr: 0.01)
            b.update(&vec, grads: g, m: &m, v: &v, lr: 0.01)
        }
        for i in 0..<3 { #expect(abs(arena.values[i] - vec[i]) < 1e-7) }
        #expect(a.step == 3 && b.step == 3)
    }

    @Test("the same seed gives bit-identical weights after N steps; another seed does not")
    func determinism() throws {
        func train(seed: UInt64) throws -> [Float] {
            let toy = ToyTask(kind: .reverse, maxDigits: 5)
            var config = toy.modelConfig(dModel: 16, heads: 2, ff: 32, layers: 1)
            config.dropout = 0.1
            let model = try Seq2Seq(config: config, seed: seed)
            var rng = SeededRNG(seed: seed)
            var opt = AdamW()
            let ws = Workspace()
            for _ in 0..<15 {
                try model.trainStep(toy.batch(size: 16, rng: &rng), workspace: ws, optimizer: &opt, lr: 1e-2, rng: &rng)
            }
            return model.params.values.toArray()
        }
        let a = try train(seed: 5)
        let b = try train(seed: 5)
        let c = try train(seed: 6)
        let same = a == b
        let different = a != c
        #expect(same, "two runs with seed 5 differ")
        #expect(different, "seeds 5 and 6 gave the same weights")
    }

    @Test("a tiny encoder-decoder learns to reverse digit strings")
    func toyTaskIsLearned() throws {
        let toy = ToyTask(kind: .reverse, maxDigits: 5)
        let model = try Seq2Seq(config: toy.modelConfig(dModel: 32, heads: 2, ff: 64, layers: 1), seed: 1)
        let before = try toy.accuracy(of: model)
        let report = try toy.train(model, steps: 300, batchSize: 32, lr: 5e-3, seed: 1)
        #expect(before < 0.05)
        #expect(report.accuracy >= 0.95, "accuracy \(report.accuracy) after \(report.steps) steps, loss \(report.finalLoss)")
    }
}
