import DSITensor

/// One training batch: B sources of length S (right-padded, with a mask) and B targets of
/// length T (teacher forcing: `targetIn` is BOS + target[..<T−1], `targetOut` the target,
/// `ignoreIndex` where nothing is to be predicted).
public struct Seq2SeqBatch: Sendable {
    public var B: Int, S: Int, T: Int
    /// (B, S) token ids.
    public var source: [Int32]
    /// (B, S) 1 for a real token, 0 for padding.
    public var sourceMask: [Float]
    /// (B, T) decoder inputs.
    public var targetIn: [Int32]
    /// (B, T) labels; `Seq2Seq.ignoreIndex` is not scored.
    public var targetOut: [Int32]
    /// What each position's softmax is taken over; nil: the whole decoder vocabulary.
    public var candidates: OutputCandidates? = nil
    /// The index of this batch's first example in the global batch it is a share of
    /// (data-parallel training; 0 otherwise). Dropout masks are drawn per global row, so a
    /// share drops exactly what the whole batch would at its rows.
    public var firstExample: Int = 0

    public init(B: Int, S: Int, T: Int, source: [Int32], sourceMask: [Float], targetIn: [Int32], targetOut: [Int32]) {
        self.B = B
        self.S = S
        self.T = T
        self.source = source
        self.sourceMask = sourceMask
        self.targetIn = targetIn
        self.targetOut = targetOut
    }
}

/// The pre-LN encoder-decoder transformer (Vaswani et al. 2017, with layer norm before
/// each sublayer as in GPT-2): token + learned position embeddings scaled by √d,
/// encoder layers of self-attention and a GELU feed-forward, decoder layers of causal
/// self-attention, cross-attention over the encoder memory and a feed-forward, final
/// layer norms, and a linear output head over the target vocabulary.
///
/// The model is the immutable part (configuration and parameters); activations live in a
/// `Workspace` (training) or a `DecodingState` (inference), so many decoders can share
/// one model.
public final class Seq2Seq: @unchecked Sendable {
    public static let ignoreIndex: Int32 = -100

    public let config: ModelConfig
    public let params: ParameterArena

    struct LN { let w: Int, b: Int }
    struct Lin { let w: Int, b: Int, IC: Int, OC: Int }
    struct EncoderLayer { let ln1: LN, qkv: Lin, proj: Lin, ln2: LN, fc1: Lin, fc2: Lin }
    struct DecoderLayer {
        let ln1: LN, qkv: Lin, proj: Lin, ln2: LN, crossQ: Lin, crossKV: Lin, crossProj: Lin,
            ln3: LN, fc1: Lin, fc2: Lin
    }

    let srcEmbed: Int, srcPos: Int, tgtEmbed: Int, tgtPos: Int
    let encoder: [EncoderLayer]
    let decoder: [DecoderLayer]
    let encNorm: LN, decNorm: LN
    let head: Lin
    let targetEmbedEntry: Int, headWeightEntry: Int, headBiasEntry: Int
    /// The files whose pages the weights are mapped from (`useWeightFiles(_:map:)`), each
    /// entry's floats page-aligned in its file: a model grown from this one maps the same
    /// pages (`grown`). Nil when the weights are the model's own memory.
    public internal(set) var weightFiles: [WeightFile]?

    /// (name, shape) of every parameter, in arena order. Names follow the usual
    /// PyTorch-style dotted paths so the safetensors file reads naturally.
    public static func parameterSpecs(_ c: ModelConfig) -> [(String, [Int])] {
        let C = c.dModel
        let F = c.ff
        var s: [(String, [Int])] = [
            ("encoder.embed_tokens.weight", [c.sourceVocab, C]),
            ("encoder.embed_positions.weight", [c.sourceLength, C]),
            ("decoder.embed_tokens.weight", [c.targetVocab, C]),
            ("decoder.embed_positions.weight", [c.targetLength, C]),
        ]
        func ln(_ p: String) { s += [("\(p).weight", [C]), ("\(p).bias", [C])] }
        func lin(_ p: String, _ i: Int, _ o: Int) { s += [("\(p).weight", [o, i]), ("\(p).bias", [o])] }
        for l in 0..<c.encoderLayers {
            let p = "encoder.layers.\(l)"
            ln("\(p).ln1")
            lin("\(p).self_attn.qkv", C, 3 * C)
            lin("\(p).self_attn.out", C, C)
            ln("\(p).ln2")
            lin("\(p).ffn.fc1", C, F)
            lin("\(p).ffn.fc2", F, C)
        }
        ln("encoder.ln_f")
        for l in 0..<c.decoderLayers {
            let p = "decoder.layers.\(l)"
            ln("\(p).ln1")
            lin("\(p).self_attn.qkv", C, 3 * C)
            lin("\(p).self_attn.out", C, C)
            ln("\(p).ln2")
            lin("\(p).cross_attn.q", C, C)
            lin("\(p).cross_attn.kv", C, 2 * C)
            lin("\(p).cross_attn.out", C, C)
            ln("\(p).ln3")
            lin("\(p).ffn.fc1", C, F)
            lin("\(p).ffn.fc2", F, C)
        }
        ln("decoder.ln_f")
        lin("lm_head", C, c.targetVocab)
        return s
    }

    /// A model with freshly initialised parameters (see `initialize(seed:)`).
    public convenience init(config: ModelConfig, seed: UInt64) throws(ModelError) {
        try self.init(config: config)
        initialize(seed: seed)
    }

    /// A model with zeroed parameters (to be filled by a loader or `initialize`), laid
    /// out with `alignment` (`ParameterArena.alignment`).
    public init(config: ModelConfig, alignment: Int = ParameterArena.pageFloats) throws(ModelError) {
        try config.validate()
        self.config = config
        let arena = ParameterArena(Self.parameterSpecs(config), alignment: alignment)
        self.params = arena
        func off(_ n: String) -> Int { arena.entry(n)!.offset }
        func ln(_ p: String) -> LN { LN(w: off("\(p).weight"), b: off("\(p).bias")) }
        func lin(_ p: String) -> Lin {
            let e = arena.entry("\(p).weight")!
            return Lin(w: e.offset, b: off("\(p).bias"), IC: e.shape[1], OC: e.shape[0])
        }
        srcEmbed = off("encoder.embed_tokens.weight")
        srcPos = off("encoder.embed_positions.weight")
        tgtEmbed = off("decoder.embed_tokens.weight")
        tgtPos = off("decoder.embed_positions.weight")
        encoder = (0..<config.encoderLayers).map { l in
            let p = "encoder.layers.\(l)"
            return EncoderLayer(
                ln1: ln("\(p).ln1"), qkv: lin("\(p).self_attn.qkv"), proj: lin("\(p).self_attn.out"),
                ln2: ln("\(p).ln2"), fc1: lin("\(p).ffn.fc1"), fc2: lin("\(p).ffn.fc2"))
        }
        decoder = (0..<config.decoderLayers).map { l in
            let p = "decoder.layers.\(l)"
            return DecoderLayer(
                ln1: ln("\(p).ln1"), qkv: lin("\(p).self_attn.qkv"), proj: lin("\(p).self_attn.out"),
                ln2: ln("\(p).ln2"), crossQ: lin("\(p).cross_attn.q"), crossKV: lin("\(p).cross_attn.kv"),
                crossProj: lin("\(p).cross_attn.out"), ln3: ln("\(p).ln3"), fc1: lin("\(p).ffn.fc1"),
                fc2: lin("\(p).ffn.fc2"))
        }
        encNorm = ln("encoder.ln_f")
        decNorm = ln("decoder.ln_f")
        head = lin("lm_head")
        func index(_ n: String) -> Int { arena.entries.firstIndex { $0.name == n }! }
        targetEmbedEntry = index("decoder.embed_tokens.weight")
        headWeightEntry = index("lm_head.weight")
        headBiasEntry = index("lm_head.bias")
        // The rows that grow with the number of documents are updated lazily when a step
        // scores candidate sets (their other rows get no gradient).
        arena.markRowSparse(["decoder.embed_tokens.weight", "lm_head.weight", "lm_head.bias"])
    }

    /// GPT-2 style initialisation: matrices N(0, 0.02), the output projections of residual
    /// branches N(0, 0.02/√(2·layers)), layer-norm gains 1, biases 0. Deterministic in `seed`.
    public func initialize(seed: UInt64) {
        var rng = SeededRNG(seed: seed)
        let layers = Float(max(1, config.encoderLayers + config.decoderLayers))
        let residualStd = 0.02 / (2 * layers).squareRoot()
        for e in params.entries {
            let p = params.values.data + e.offset
            if e.shape.count >= 2 {
                let isResidualOut = e.name.hasSuffix("attn.out.weight") || e.name.hasSuffix("ffn.fc2.weight")
                let std: Float = isResidualOut ? residualStd : 0.02
                for i in 0..<e.count { p[i] = rng.normal() * std }
            } else if e.name.contains(".ln") && e.name.hasSuffix(".weight") {
                p.update(repeating: 1, count: e.count)
            } else {
                p.update(repeating: 0, count: e.count)
            }
        }
    }

    @inline(__always) func w(_ offset: Int) -> Buf { params.values.data + offset }
    @inline(__always) func g(_ offset: Int) -> Buf { params.grads.data + offset }
    var embedScale: Float { Float(config.dModel).squareRoot() }
}

// MARK: - Training forward / backward

extension Seq2Seq {
    func checkBatch(_ b: Seq2SeqBatch) throws(ModelError) {
        let c = config
        guard b.B > 0, b.S > 0, b.T > 0 else { throw .invalidBatch("empty batch (B \(b.B), S \(b.S), T \(b.T))") }
        guard b.S <= c.sourceLength else { throw .invalidBatch("source length \(b.S) > model's \(c.sourceLength)") }
        guard b.T <= c.targetLength else { throw .invalidBatch("target length \(b.T) > model's \(c.targetLength)") }
        guard b.source.count == b.B * b.S, b.sourceMask.count == b.B * b.S,
            b.targetIn.count == b.B * b.T, b.targetOut.count == b.B * b.T
        else { throw .invalidBatch("array sizes do not match B \(b.B), S \(b.S), T \(b.T)") }
        if let bad = b.source.first(where: { $0 < 0 || Int($0) >= c.sourceVocab }) {
            throw .invalidBatch("source token \(bad) outside the vocabulary 0..<\(c.sourceVocab)")
        }
        if let bad = b.targetIn.first(where: { $0 < 0 || Int($0) >= c.targetVocab }) {
            throw .invalidBatch("target token \(bad) outside the vocabulary 0..<\(c.targetVocab)")
        }
        if let bad = b.targetOut.first(where: { $0 != Self.ignoreIndex && ($0 < 0 || Int($0) >= c.targetVocab) }) {
            throw .invalidBatch("label \(bad) outside the vocabulary 0..<\(c.targetVocab)")
        }
        if let cands = b.candidates { try checkCandidates(cands, b) }
    }

    /// Runs the encoder over `ws`'s current batch; leaves the memory in `ws.memory`.
    func encoderForward(
        _ ws: Workspace, source: UnsafePointer<Int32>, mask: UnsafePointer<Float>, B: Int, S: Int, training: Bool, firstExample: Int = 0,
        rng: inout SeededRNG
    ) {
        let C = config.dModel
        let H = config.heads
        let N = B * S
        let firstRow = firstExample * S
        let p = config.dropout
        let drop = training && p > 0
        embeddingForward(
            out: ws.encEmbed.data, tokens: source, table: w(srcEmbed), positions: w(srcPos), scale: embedScale, B: B, T: S, C: C)
        var x = ws.encEmbed.data
        let shape = AttentionShape(B: B, T: S, S: S, C: C, H: H, ldq: 3 * C, ldk: 3 * C, ldv: 3 * C)
        for (l, L) in encoder.enumerated() {
            let a = ws.enc[l]
            selfAttentionForward(
                branch: ws.branch.data, x: x, norm: L.ln1, qkvLin: L.qkv, proj: L.proj, ln: a.norm1, qkv: a.qkv.data, att: a.att.data,
                probs: a.probs.data, keyMask: mask, shape: shape, N: N)
            if drop {
                dropoutForward(
                    out: ws.branch.data, mask: a.mask1!.data, inp: ws.branch.data, rows: N, width: C, firstRow: firstRow, p: p,
                    seed: rng.next())
            }
            residualForward(out: a.res1.data, a: x, b: ws.branch.data, n: N * C)
            feedForwardForward(
                branch: ws.branch.data, x: a.res1.data, norm: L.ln2, fc1: L.fc1, fc2: L.fc2, ln: a.norm2, hidden: a.fc1.data,
                activated: a.gelu.data, N: N)
            if drop {
                dropoutForward(
                    out: ws.branch.data, mask: a.mask2!.data, inp: ws.branch.data, rows: N, width: C, firstRow: firstRow, p: p,
                    seed: rng.next())
            }
            residualForward(out: a.out.data, a: a.res1.data, b: ws.branch.data, n: N * C)
            x = a.out.data
        }
        ws.encTop = x
        layerNormForward(
            out: ws.memory.data, mean: ws.encNormMean.data, rstd: ws.encNormRstd.data, inp: x, weight: w(encNorm.w), bias: w(encNorm.b),
            N: N, C: C)
    }

    /// Forward pass over a batch; returns the mean loss over the labelled target positions.
    /// Activations are kept in `ws` for `backward`.
    @discardableResult
    public func forward(_ batch: Seq2SeqBatch, workspace ws: Workspace, smoothing: Float = 0, training: Bool = true, rng: inout SeededRNG)
        throws(ModelError) -> Float
    {
        try checkBatch(batch)
        ws.prepare(for: batch, model: self)
        let B = batch.B
        let S = batch.S
        let T = batch.T
        let C = config.dModel
        let H = config.heads
        let V = config.targetVocab
        let N = B * T
        let p = config.dropout
        let drop = training && p > 0
        let src = ws.source.baseAddress!
        let mask = ws.sourceMask.baseAddress!
        encoderForward(ws, source: src, mask: mask, B: B, S: S, training: training, firstExample: batch.firstExample, rng: &rng)
        let firstRow = batch.firstExample * T

        embeddingForward(
            out: ws.decEmbed.data, tokens: ws.targetIn.baseAddress!, table: w(tgtEmbed), positions: w(tgtPos), scale: embedScale, B: B,
            T: T, C: C)
        var y = ws.decEmbed.data
        let selfShape = AttentionShape(B: B, T: T, S: T, C: C, H: H, ldq: 3 * C, ldk: 3 * C, ldv: 3 * C, causal: true)
        let crossShape = AttentionShape(B: B, T: T, S: S, C: C, H: H, ldq: C, ldk: 2 * C, ldv: 2 * C)
        for (l, L) in decoder.enumerated() {
            let a = ws.dec[l]
            selfAttentionForward(
                branch: ws.branch.data, x: y, norm: L.ln1, qkvLin: L.qkv, proj: L.proj, ln: a.norm1, qkv: a.qkv.data, att: a.att.data,
                probs: a.probs.data, keyMask: nil, shape: selfShape, N: N)
            if drop {
                dropoutForward(
                    out: ws.branch.data, mask: a.mask1!.data, inp: ws.branch.data, rows: N, width: C, firstRow: firstRow, p: p,
                    seed: rng.next())
            }
            residualForward(out: a.res1.data, a: y, b: ws.branch.data, n: N * C)

            linearForward(
                out: a.crossKV.data, inp: ws.memory.data, weight: w(L.crossKV.w), bias: w(L.crossKV.b), N: B * S, IC: C, OC: 2 * C)
            crossAttentionForward(
                branch: ws.branch.data, x: a.res1.data, norm: L.ln2, qLin: L.crossQ, proj: L.crossProj, ln: a.norm2, q: a.crossQ.data,
                kv: a.crossKV.data, att: a.crossAtt.data, probs: a.crossProbs.data, keyMask: mask, shape: crossShape, N: N)
            if drop {
                dropoutForward(
                    out: ws.branch.data, mask: a.mask2!.data, inp: ws.branch.data, rows: N, width: C, firstRow: firstRow, p: p,
                    seed: rng.next())
            }
            residualForward(out: a.res2.data, a: a.res1.data, b: ws.branch.data, n: N * C)

            feedForwardForward(
                branch: ws.branch.data, x: a.res2.data, norm: L.ln3, fc1: L.fc1, fc2: L.fc2, ln: a.norm3, hidden: a.fc1.data,
                activated: a.gelu.data, N: N)
            if drop {
                dropoutForward(
                    out: ws.branch.data, mask: a.mask3!.data, inp: ws.branch.data, rows: N, width: C, firstRow: firstRow, p: p,
                    seed: rng.next())
            }
            residualForward(out: a.out.data, a: a.res2.data, b: ws.branch.data, n: N * C)
            y = a.out.data
        }
        ws.decTop = y
        layerNormForward(
            out: ws.decNorm.data, mean: ws.decNormMean.data, rstd: ws.decNormRstd.data, inp: y, weight: w(decNorm.w), bias: w(decNorm.b),
            N: N, C: C)
        ws.smoothing = smoothing
        ws.dropoutUsed = drop
        ws.candidates = batch.candidates != nil
        if let cands = batch.candidates {
            let (total, counted) = candidateHeadForward(ws, cands, smoothing: smoothing)
            ws.counted = counted
            ws.lossSum = total
            return counted == 0 ? 0 : Float(total / Double(counted))
        }
        ws.prepareLogits(config: config)
        linearForward(out: ws.logits.data, inp: ws.decNorm.data, weight: w(head.w), bias: w(head.b), N: N, IC: C, OC: V)
        let counted = crossEntropyForward(
            losses: ws.losses.data, probs: ws.probs.data, logits: ws.logits.data, targets: ws.targetOut.baseAddress!, N: N, V: V,
            smoothing: smoothing, ignoreIndex: Self.ignoreIndex)
        ws.counted = counted
        var total: Double = 0
        for i in 0..<N { total += Double(ws.losses[i]) }
        ws.lossSum = total
        return counted == 0 ? 0 : Float(total / Double(counted))
    }

    /// The final decoder states (after the last layer norm), (B·T, C), of a teacher-forced
    /// batch without dropout, and without the output head: what a caller that scores its
    /// own rows needs (`dsi add`'s row fit), at none of the head's B·T·V cost.
    public func decoderStates(_ batch: Seq2SeqBatch, workspace ws: Workspace) throws(ModelError) -> UnsafeBufferPointer<Float> {
        var b = batch
        b.candidates = OutputCandidates(sets: [], setOfPosition: [Int32](repeating: -1, count: b.B * b.T))
        var rng = SeededRNG(seed: 0)
        try forward(b, workspace: ws, training: false, rng: &rng)
        return ws.lastDecoderStates
    }

    /// Adds the gradient of the last `forward`'s mean loss to `params.grads`; with
    /// `denominator`, of its summed loss divided by `denominator` instead (a data-parallel
    /// share's part of the global batch's mean).
    public func backward(workspace ws: Workspace, denominator: Int? = nil) {
        let B = ws.B
        let S = ws.S
        let T = ws.T
        let C = config.dModel
        let H = config.heads
        let V = config.targetVocab
        let N = B * T
        let M = B * S
        let drop = ws.dropoutUsed
        guard ws.counted > 0 else { return }
        ws.prepareBackward(config: config)

        if ws.candidates {
            candidateHeadBackward(ws, dloss: 1 / Float(denominator ?? ws.counted))
        } else {
            ws.prepareLogitGradients(config: config)
            ws.dlogits.zero()
            crossEntropyBackward(
                dlogits: ws.dlogits.data, probs: ws.probs.data, targets: ws.targetOut.baseAddress!, N: N, V: V, smoothing: ws.smoothing,
                ignoreIndex: Self.ignoreIndex, dloss: 1 / Float(denominator ?? ws.counted))
            linearBackward(
                dinp: ws.dln.data, dweight: g(head.w), dbias: g(head.b), dout: ws.dlogits.data, inp: ws.decNorm.data, weight: w(head.w),
                N: N, IC: C, OC: V, accumulate: false)
            params.dirtyRows = nil  // every output row has a gradient now
        }
        let dres = ws.dres.data
        dres.update(repeating: 0, count: N * C)
        layerNormBackward(
            dinp: dres, dweight: g(decNorm.w), dbias: g(decNorm.b), dout: ws.dln.data, inp: ws.decTop!, weight: w(decNorm.w),
            mean: ws.decNormMean.data, rstd: ws.decNormRstd.data, N: N, C: C)

        ws.dmem.data.update(repeating: 0, count: M * C)
        let selfShape = AttentionShape(B: B, T: T, S: T, C: C, H: H, ldq: 3 * C, ldk: 3 * C, ldv: 3 * C, causal: true)
        let crossShape = AttentionShape(B: B, T: T, S: S, C: C, H: H, ldq: C, ldk: 2 * C, ldv: 2 * C)

        /// The gradient reaching a residual branch's output: through its dropout mask, if any.
        func branchGrad(_ mask: Tensor?, rows: Int) -> Buf {
            guard drop, let mask else { return dres }
            dropoutBackward(dinp: ws.dbranch.data, dout: dres, mask: mask.data, n: rows * C, accumulate: false)
            return ws.dbranch.data
        }

        for l in stride(from: decoder.count - 1, through: 0, by: -1) {
            let L = decoder[l]
            let a = ws.dec[l]
            let yIn = l == 0 ? ws.decEmbed.data : ws.dec[l - 1].out.data
            // feed-forward
            var dOut = branchGrad(a.mask3, rows: N)
            feedForwardBackward(
                dres: dres, dbranch: dOut, x: a.res2.data, norm: L.ln3, fc1: L.fc1, fc2: L.fc2, ln: a.norm3, hidden: a.fc1.data,
                activated: a.gelu.data, N: N, dff: ws.dff.data, dln: ws.dln.data)
            // cross-attention
            dOut = branchGrad(a.mask2, rows: N)
            linearBackward(
                dinp: ws.datt.data, dweight: g(L.crossProj.w), dbias: g(L.crossProj.b), dout: dOut, inp: a.crossAtt.data,
                weight: w(L.crossProj.w), N: N, IC: C, OC: C, accumulate: false)
            attentionBackward(
                dq: ws.dq.data, dk: ws.dkv.data, dv: ws.dkv.data + C, dout: ws.datt.data, probs: a.crossProbs.data, q: a.crossQ.data,
                k: a.crossKV.data, v: a.crossKV.data + C, crossShape, accumulate: false)
            linearBackward(
                dinp: ws.dmem.data, dweight: g(L.crossKV.w), dbias: g(L.crossKV.b), dout: ws.dkv.data, inp: ws.memory.data,
                weight: w(L.crossKV.w), N: M, IC: C, OC: 2 * C)
            normedLinearBackward(
                dres: dres, dout: ws.dq.data, x: a.res1.data, norm: L.ln2, lin: L.crossQ, ln: a.norm2, N: N, dln: ws.dln.data)
            // causal self-attention
            dOut = branchGrad(a.mask1, rows: N)
            selfAttentionBackward(
                dres: dres, dbranch: dOut, x: yIn, norm: L.ln1, qkvLin: L.qkv, proj: L.proj, ln: a.norm1, qkv: a.qkv.data, att: a.att.data,
                probs: a.probs.data, shape: selfShape, N: N, datt: ws.datt.data, dqkv: ws.dqkv.data, dln: ws.dln.data)
        }
        embeddingBackward(
            dtable: g(tgtEmbed), dpositions: g(tgtPos), dout: dres, tokens: ws.targetIn.baseAddress!, scale: embedScale, B: B, T: T, C: C)

        // Encoder: the memory's gradient (from every decoder layer's cross-attention) flows
        // back through the final norm and the layers.
        dres.update(repeating: 0, count: M * C)
        layerNormBackward(
            dinp: dres, dweight: g(encNorm.w), dbias: g(encNorm.b), dout: ws.dmem.data, inp: ws.encTop!, weight: w(encNorm.w),
            mean: ws.encNormMean.data, rstd: ws.encNormRstd.data, N: M, C: C)
        let encShape = AttentionShape(B: B, T: S, S: S, C: C, H: H, ldq: 3 * C, ldk: 3 * C, ldv: 3 * C)
        for l in stride(from: encoder.count - 1, through: 0, by: -1) {
            let L = encoder[l]
            let a = ws.enc[l]
            let xIn = l == 0 ? ws.encEmbed.data : ws.enc[l - 1].out.data
            var dOut = branchGrad(a.mask2, rows: M)
            feedForwardBackward(
                dres: dres, dbranch: dOut, x: a.res1.data, norm: L.ln2, fc1: L.fc1, fc2: L.fc2, ln: a.norm2, hidden: a.fc1.data,
                activated: a.gelu.data, N: M, dff: ws.dff.data, dln: ws.dln.data)
            dOut = branchGrad(a.mask1, rows: M)
            selfAttentionBackward(
                dres: dres, dbranch: dOut, x: xIn, norm: L.ln1, qkvLin: L.qkv, proj: L.proj, ln: a.norm1, qkv: a.qkv.data, att: a.att.data,
                probs: a.probs.data, shape: encShape, N: M, datt: ws.datt.data, dqkv: ws.dqkv.data, dln: ws.dln.data)
        }
        embeddingBackward(
            dtable: g(srcEmbed), dpositions: g(srcPos), dout: dres, tokens: ws.source.baseAddress!, scale: embedScale, B: B, T: S, C: C)
    }
}
