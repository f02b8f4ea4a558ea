import DSITensor

/// Saved activations and gradient scratch of one training forward/backward, sized for the
/// largest batch seen so far and reused (shorter batches use a prefix of each buffer).
/// Shapes below use M = B·S (encoder rows), N = B·T (decoder rows).
public final class Workspace: @unchecked Sendable {
    final class EncoderActs {
        let ln1, att, res1, ln2, out: Tensor  // (M, C)
        let ln1Mean, ln1Rstd, ln2Mean, ln2Rstd: Tensor  // (M)
        let qkv: Tensor  // (M, 3C)
        let probs: Tensor  // (B, H, S, S)
        let fc1, gelu: Tensor  // (M, F)
        let mask1, mask2: Tensor?  // (M, C) dropout masks
        var norm1: NormActs { NormActs(out: ln1.data, mean: ln1Mean.data, rstd: ln1Rstd.data) }
        var norm2: NormActs { NormActs(out: ln2.data, mean: ln2Mean.data, rstd: ln2Rstd.data) }

        init(B: Int, S: Int, C: Int, H: Int, F: Int, dropout: Bool) {
            let M = B * S
            ln1 = Tensor(zeros: [M, C])
            att = Tensor(zeros: [M, C])
            res1 = Tensor(zeros: [M, C])
            ln2 = Tensor(zeros: [M, C])
            out = Tensor(zeros: [M, C])
            ln1Mean = Tensor(zeros: [M])
            ln1Rstd = Tensor(zeros: [M])
            ln2Mean = Tensor(zeros: [M])
            ln2Rstd = Tensor(zeros: [M])
            qkv = Tensor(zeros: [M, 3 * C])
            probs = Tensor(zeros: [B, H, S, S])
            fc1 = Tensor(zeros: [M, F])
            gelu = Tensor(zeros: [M, F])
            mask1 = dropout ? Tensor(zeros: [M, C]) : nil
            mask2 = dropout ? Tensor(zeros: [M, C]) : nil
        }
    }

    final class DecoderActs {
        let ln1, att, res1, ln2, crossQ, crossAtt, res2, ln3, out: Tensor  // (N, C)
        let ln1Mean, ln1Rstd, ln2Mean, ln2Rstd, ln3Mean, ln3Rstd: Tensor  // (N)
        let qkv: Tensor  // (N, 3C)
        let probs: Tensor  // (B, H, T, T)
        let crossKV: Tensor  // (M, 2C)
        let crossProbs: Tensor  // (B, H, T, S)
        let fc1, gelu: Tensor  // (N, F)
        let mask1, mask2, mask3: Tensor?  // (N, C)
        var norm1: NormActs { NormActs(out: ln1.data, mean: ln1Mean.data, rstd: ln1Rstd.data) }
        var norm2: NormActs { NormActs(out: ln2.data, mean: ln2Mean.data, rstd: ln2Rstd.data) }
        var norm3: NormActs { NormActs(out: ln3.data, mean: ln3Mean.data, rstd: ln3Rstd.data) }

        init(B: Int, S: Int, T: Int, C: Int, H: Int, F: Int, dropout: Bool) {
            let N = B * T
            let M = B * S
            func nc() -> Tensor { Tensor(zeros: [N, C]) }
            func n1() -> Tensor { Tensor(zeros: [N]) }
            ln1 = nc()
            att = nc()
            res1 = nc()
            ln2 = nc()
            crossQ = nc()
            crossAtt = nc()
            res2 = nc()
            ln3 = nc()
            out = nc()
            ln1Mean = n1()
            ln1Rstd = n1()
            ln2Mean = n1()
            ln2Rstd = n1()
            ln3Mean = n1()
            ln3Rstd = n1()
            qkv = Tensor(zeros: [N, 3 * C])
            probs = Tensor(zeros: [B, H, T, T])
            crossKV = Tensor(zeros: [M, 2 * C])
            crossProbs = Tensor(zeros: [B, H, T, S])
            fc1 = Tensor(zeros: [N, F])
            gelu = Tensor(zeros: [N, F])
            mask1 = dropout ? nc() : nil
            mask2 = dropout ? nc() : nil
            mask3 = dropout ? nc() : nil
        }
    }

    // Capacity.
    private(set) var capB = 0, capS = 0, capT = 0
    private var hasDropout = false
    // Current batch.
    private(set) var B = 0, S = 0, T = 0
    var counted = 0
    /// The last forward pass's summed loss over its `counted` positions.
    var lossSum: Double = 0
    var smoothing: Float = 0
    var dropoutUsed = false
    /// Whether the current batch is scored over candidate sets (else over all tokens).
    var candidates = false
    var candidateActs: [CandidateSetActs] = []

    var source = UnsafeMutableBufferPointer<Int32>.allocate(capacity: 0)
    var sourceMask = UnsafeMutableBufferPointer<Float>.allocate(capacity: 0)
    var targetIn = UnsafeMutableBufferPointer<Int32>.allocate(capacity: 0)
    var targetOut = UnsafeMutableBufferPointer<Int32>.allocate(capacity: 0)

    var enc: [EncoderActs] = []
    var dec: [DecoderActs] = []
    var encEmbed = Tensor(zeros: [0]), memory = Tensor(zeros: [0])  // (M, C)
    var encNormMean = Tensor(zeros: [0]), encNormRstd = Tensor(zeros: [0])  // (M)
    var decEmbed = Tensor(zeros: [0]), decNorm = Tensor(zeros: [0])  // (N, C)
    var decNormMean = Tensor(zeros: [0]), decNormRstd = Tensor(zeros: [0])  // (N)
    var logits = Tensor(zeros: [0]), probs = Tensor(zeros: [0]), dlogits = Tensor(zeros: [0])  // (N, V)
    var losses = Tensor(zeros: [0])  // (N)
    var encTop: Buf?, decTop: Buf?
    // Scratch shared by forward and backward, rows = max(M, N).
    var branch = Tensor(zeros: [0]), dbranch = Tensor(zeros: [0])  // (rows, C)
    var dres = Tensor(zeros: [0]), dln = Tensor(zeros: [0]), datt = Tensor(zeros: [0])  // (rows, C)
    var dqkv = Tensor(zeros: [0])  // (rows, 3C)
    var dff = Tensor(zeros: [0])  // (rows, F)
    var dq = Tensor(zeros: [0])  // (N, C)
    var dkv = Tensor(zeros: [0])  // (M, 2C)
    var dmem = Tensor(zeros: [0])  // (M, C)

    public init() {}

    deinit {
        source.deallocate()
        sourceMask.deallocate()
        targetIn.deallocate()
        targetOut.deallocate()
    }

    func prepare(for batch: Seq2SeqBatch, model: Seq2Seq) {
        let c = model.config
        let dropout = c.dropout > 0
        if batch.B > capB || batch.S > capS || batch.T > capT || dropout != hasDropout || enc.count != c.encoderLayers
            || dec.count != c.decoderLayers
        {
            allocate(B: max(batch.B, capB), S: max(batch.S, capS), T: max(batch.T, capT), config: c)
        }
        B = batch.B
        S = batch.S
        T = batch.T
        batch.source.withUnsafeBufferPointer { _ = source.update(fromContentsOf: $0) }
        batch.sourceMask.withUnsafeBufferPointer { _ = sourceMask.update(fromContentsOf: $0) }
        batch.targetIn.withUnsafeBufferPointer { _ = targetIn.update(fromContentsOf: $0) }
        batch.targetOut.withUnsafeBufferPointer { _ = targetOut.update(fromContentsOf: $0) }
        // The per-(b, h) attention blocks are laid out for the current S and T; buffers
        // are flat, so a smaller batch simply uses their prefix.
    }

    private func allocate(B: Int, S: Int, T: Int, config c: ModelConfig) {
        let C = c.dModel
        let H = c.heads
        let F = c.ff
        let M = B * S
        let N = B * T
        let rows = max(M, N)
        let dropout = c.dropout > 0
        capB = B
        capS = S
        capT = T
        hasDropout = dropout
        source.deallocate()
        sourceMask.deallocate()
        targetIn.deallocate()
        targetOut.deallocate()
        source = .allocate(capacity: M)
        sourceMask = .allocate(capacity: M)
        targetIn = .allocate(capacity: N)
        targetOut = .allocate(capacity: N)
        enc = (0..<c.encoderLayers).map { _ in EncoderActs(B: B, S: S, C: C, H: H, F: F, dropout: dropout) }
        dec = (0..<c.decoderLayers).map { _ in DecoderActs(B: B, S: S, T: T, C: C, H: H, F: F, dropout: dropout) }
        encEmbed = Tensor(zeros: [M, C])
        memory = Tensor(zeros: [M, C])
        encNormMean = Tensor(zeros: [M])
        encNormRstd = Tensor(zeros: [M])
        decEmbed = Tensor(zeros: [N, C])
        decNorm = Tensor(zeros: [N, C])
        decNormMean = Tensor(zeros: [N])
        decNormRstd = Tensor(zeros: [N])
        // (N, V) logits wait for a batch scored over the whole vocabulary.
        logits = Tensor(zeros: [0])
        probs = Tensor(zeros: [0])
        losses = Tensor(zeros: [N])
        branch = Tensor(zeros: [rows, C])
        // Gradient buffers wait for the first backward pass (inference never needs them).
        backwardFor = nil
        dlogits = Tensor(zeros: [0])
        dbranch = Tensor(zeros: [0])
        dres = Tensor(zeros: [0])
        dln = Tensor(zeros: [0])
        datt = Tensor(zeros: [0])
        dqkv = Tensor(zeros: [0])
        dff = Tensor(zeros: [0])
        dq = Tensor(zeros: [0])
        dkv = Tensor(zeros: [0])
        dmem = Tensor(zeros: [0])
    }

    /// The capacity (B, S, T) the gradient buffers were allocated for, if they were.
    private var backwardFor: (Int, Int, Int)?

    /// Allocates the gradient buffers for the current capacity (before a backward pass).
    func prepareBackward(config c: ModelConfig) {
        if let b = backwardFor, b == (capB, capS, capT) { return }
        let C = c.dModel
        let F = c.ff
        let M = capB * capS
        let N = capB * capT
        let rows = max(M, N)
        dbranch = Tensor(zeros: [rows, C])
        dres = Tensor(zeros: [rows, C])
        dln = Tensor(zeros: [rows, C])
        datt = Tensor(zeros: [rows, C])
        dqkv = Tensor(zeros: [rows, 3 * C])
        dff = Tensor(zeros: [rows, F])
        dq = Tensor(zeros: [N, C])
        dkv = Tensor(zeros: [M, 2 * C])
        dmem = Tensor(zeros: [M, C])
        backwardFor = (capB, capS, capT)
    }

    /// Allocates the (N, V) logits and probabilities (a batch scored over all tokens).
    func prepareLogits(config c: ModelConfig) {
        let n = capB * capT * c.targetVocab
        if logits.count != n {
            logits = Tensor(zeros: [capB * capT, c.targetVocab])
            probs = Tensor(zeros: [capB * capT, c.targetVocab])
        }
    }

    func prepareLogitGradients(config c: ModelConfig) {
        if dlogits.count != capB * capT * c.targetVocab { dlogits = Tensor(zeros: [capB * capT, c.targetVocab]) }
    }

    /// The last forward pass's final decoder states (after the last layer norm), (B·T, C).
    public var lastDecoderStates: UnsafeBufferPointer<Float> {
        UnsafeBufferPointer(start: decNorm.data, count: B * T * (decNorm.shape.last ?? 0))
    }

    /// Logits (B·T, V) of the last forward pass.
    public var lastLogits: UnsafeBufferPointer<Float> {
        UnsafeBufferPointer(start: logits.data, count: B * T * (logits.shape.last ?? 0))
    }
}
