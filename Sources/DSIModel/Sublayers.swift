// The pre-LN sublayers of the encoder and decoder layers, each written once and used by
// the training forward pass, the backward pass and incremental decoding.

/// A layer norm's saved output (N, C) and statistics (N).
struct NormActs {
    let out: Buf
    let mean: Buf
    let rstd: Buf
}

extension Seq2Seq {
    /// out (N, OC) = LN(x) · Wᵀ + b: how every sublayer begins (self-attention's QKV,
    /// cross-attention's query, the feed-forward's first linear).
    func normedLinearForward(out: Buf, x: Buf, norm: LN, lin: Lin, ln: NormActs, N: Int, addBias: Bool = true) {
        let C = config.dModel
        layerNormForward(out: ln.out, mean: ln.mean, rstd: ln.rstd, inp: x, weight: w(norm.w), bias: w(norm.b), N: N, C: C)
        linearForward(out: out, inp: ln.out, weight: w(lin.w), bias: addBias ? w(lin.b) : nil, N: N, IC: C, OC: lin.OC)
    }

    /// The gradient of `normedLinearForward`: adds ∂/∂x to `dres` and the parameters'
    /// gradients to the arena; `dln` (N, C) is scratch.
    func normedLinearBackward(dres: Buf, dout: Buf, x: Buf, norm: LN, lin: Lin, ln: NormActs, N: Int, dln: Buf) {
        let C = config.dModel
        linearBackward(
            dinp: dln, dweight: g(lin.w), dbias: g(lin.b), dout: dout, inp: ln.out, weight: w(lin.w), N: N, IC: C, OC: lin.OC,
            accumulate: false)
        layerNormBackward(
            dinp: dres, dweight: g(norm.w), dbias: g(norm.b), dout: dln, inp: x, weight: w(norm.w), mean: ln.mean, rstd: ln.rstd, N: N,
            C: C)
    }

    /// The feed-forward sublayer's branch (N, C) = fc2(GELU(fc1(LN(x)))). `hidden` keeps
    /// fc1's output and `activated` GELU's (N, F); at inference they may be one buffer.
    func feedForwardForward(branch: Buf, x: Buf, norm: LN, fc1: Lin, fc2: Lin, ln: NormActs, hidden: Buf, activated: Buf, N: Int) {
        // fc1's bias is added by the activation's pass (one pass over (N, F), not two).
        normedLinearForward(out: hidden, x: x, norm: norm, lin: fc1, ln: ln, N: N, addBias: false)
        biasGeluForward(hidden: hidden, activated: activated, bias: w(fc1.b), rows: N, cols: config.ff)
        linearForward(out: branch, inp: activated, weight: w(fc2.w), bias: w(fc2.b), N: N, IC: config.ff, OC: config.dModel)
    }

    /// The gradient of `feedForwardForward` given the branch's gradient `dbranch`: adds
    /// ∂/∂x to `dres`; `dff` (N, F) and `dln` (N, C) are scratch.
    func feedForwardBackward(
        dres: Buf, dbranch: Buf, x: Buf, norm: LN, fc1: Lin, fc2: Lin, ln: NormActs, hidden: Buf, activated: Buf, N: Int, dff: Buf,
        dln: Buf
    ) {
        let F = config.ff
        linearBackward(
            dinp: dff, dweight: g(fc2.w), dbias: g(fc2.b), dout: dbranch, inp: activated, weight: w(fc2.w), N: N, IC: F,
            OC: config.dModel, accumulate: false)
        geluBackward(dinp: dff, inp: hidden, dout: dff, n: N * F, accumulate: false)
        normedLinearBackward(dres: dres, dout: dff, x: x, norm: norm, lin: fc1, ln: ln, N: N, dln: dln)
    }

    /// The self-attention sublayer's branch (N, C) over a whole sequence (training):
    /// proj(attention(QKV(LN(x)))) with the fused (N, 3C) `qkv`, attention output `att`
    /// (N, C) and `probs` kept for backward.
    func selfAttentionForward(
        branch: Buf, x: Buf, norm: LN, qkvLin: Lin, proj: Lin, ln: NormActs, qkv: Buf, att: Buf, probs: Buf, keyMask: UnsafePointer<Float>?,
        shape: AttentionShape, N: Int
    ) {
        let C = config.dModel
        normedLinearForward(out: qkv, x: x, norm: norm, lin: qkvLin, ln: ln, N: N)
        attentionForward(out: att, probs: probs, q: qkv, k: qkv + C, v: qkv + 2 * C, keyMask: keyMask, shape)
        linearForward(out: branch, inp: att, weight: w(proj.w), bias: w(proj.b), N: N, IC: C, OC: C)
    }

    /// The gradient of `selfAttentionForward` given the branch's gradient: adds ∂/∂x to
    /// `dres`; `datt` (N, C), `dqkv` (N, 3C) and `dln` (N, C) are scratch.
    func selfAttentionBackward(
        dres: Buf, dbranch: Buf, x: Buf, norm: LN, qkvLin: Lin, proj: Lin, ln: NormActs, qkv: Buf, att: Buf, probs: Buf,
        shape: AttentionShape, N: Int, datt: Buf, dqkv: Buf, dln: Buf
    ) {
        let C = config.dModel
        linearBackward(
            dinp: datt, dweight: g(proj.w), dbias: g(proj.b), dout: dbranch, inp: att, weight: w(proj.w), N: N, IC: C, OC: C,
            accumulate: false)
        attentionBackward(
            dq: dqkv, dk: dqkv + C, dv: dqkv + 2 * C, dout: datt, probs: probs, q: qkv, k: qkv + C, v: qkv + 2 * C, shape,
            accumulate: false)
        normedLinearBackward(dres: dres, dout: dqkv, x: x, norm: norm, lin: qkvLin, ln: ln, N: N, dln: dln)
    }

    /// The cross-attention sublayer's branch (N, C): proj(attention(Q(LN(x)), memory's
    /// K/V)), with the memory's fused (rows, 2C) keys and values `kv` already computed
    /// (once per batch in training, once per query when decoding).
    func crossAttentionForward(
        branch: Buf, x: Buf, norm: LN, qLin: Lin, proj: Lin, ln: NormActs, q: Buf, kv: Buf, att: Buf, probs: Buf,
        keyMask: UnsafePointer<Float>, shape: AttentionShape, N: Int
    ) {
        let C = config.dModel
        normedLinearForward(out: q, x: x, norm: norm, lin: qLin, ln: ln, N: N)
        attentionForward(out: att, probs: probs, q: q, k: kv, v: kv + C, keyMask: keyMask, shape)
        linearForward(out: branch, inp: att, weight: w(proj.w), bias: w(proj.b), N: N, IC: C, OC: C)
    }
}
