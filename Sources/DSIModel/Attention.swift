import CDSIKernels
import DSITensor

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The geometry of one multi-head attention call: B groups, each with T query rows and
/// S key/value rows of width C = H · dh. Rows are addressed with strides, so a head's
/// (T, dh) block is read in place from a fused QKV matrix or from a KV cache.
public struct AttentionShape: Sendable {
    public var B: Int, T: Int, S: Int, C: Int, H: Int
    /// Row strides (leading dimensions) of q, k, v.
    public var ldq: Int, ldk: Int, ldv: Int
    /// Strides between consecutive groups b in q, k, v (default: T·ldq, S·ldk, S·ldv).
    public var qBatch: Int, kBatch: Int, vBatch: Int
    /// Query t sees keys s ≤ t only.
    public var causal: Bool

    public init(
        B: Int, T: Int, S: Int, C: Int, H: Int, ldq: Int? = nil, ldk: Int? = nil,
        ldv: Int? = nil, qBatch: Int? = nil, kBatch: Int? = nil, vBatch: Int? = nil,
        causal: Bool = false
    ) {
        precondition(C % H == 0, "width \(C) is not divisible by \(H) heads")
        self.B = B
        self.T = T
        self.S = S
        self.C = C
        self.H = H
        self.ldq = ldq ?? C
        self.ldk = ldk ?? C
        self.ldv = ldv ?? C
        self.qBatch = qBatch ?? T * (ldq ?? C)
        self.kBatch = kBatch ?? S * (ldk ?? C)
        self.vBatch = vBatch ?? S * (ldv ?? C)
        self.causal = causal
    }

    public var headDim: Int { C / H }
    public var scale: Float { 1 / Float(headDim).squareRoot() }
}

/// Scaled dot-product attention over H heads.
///
/// - out (B, T, C): contiguous, head h in columns h·dh ..< (h+1)·dh.
/// - probs (B, H, T, S): the softmax, saved for backward.
/// - q, k, v: strided as `shape` says.
/// - keyMask (B, S) or nil: 1 where a key may be attended to, 0 for padding.
/// Each (b, h) pair is independent; they run in parallel.
public func attentionForward(
    out: Buf, probs: Buf, q: Buf, k: Buf, v: Buf, keyMask: UnsafePointer<Float>?,
    _ s: AttentionShape
) {
    OpProfile.shared.enter(.attention)
    defer { OpProfile.shared.exit() }
    let dh = s.headDim
    let T = s.T
    let S = s.S
    let H = s.H
    let scale = s.scale
    parallelFor(s.B * H) { pairs in
        for pair in pairs {
            let b = pair / H
            let h = pair % H
            let qb = q + b * s.qBatch + h * dh
            let kb = k + b * s.kBatch + h * dh
            let vb = v + b * s.vBatch + h * dh
            let P = probs + pair * T * S
            // P (T, S) = scale · Q (T, dh) · Kᵀ
            BLAS.sgemm(
                transB: true, m: T, n: S, k: dh, alpha: scale, a: qb, lda: s.ldq, b: kb, ldb: s.ldk,
                c: P, ldc: S)
            // Scale, key mask, causal mask and softmax: one vectorised pass (CDSIKernels).
            dsi_softmax_rows(P, T, S, S, keyMask.map { $0 + b * S }, s.causal ? 1 : 0)
            // out (T, dh) = P (T, S) · V (S, dh)
            BLAS.sgemm(m: T, n: dh, k: S, a: P, lda: S, b: vb, ldb: s.ldv, c: out + b * T * s.C + h * dh, ldc: s.C)
        }
    }
}

/// Backward of `attentionForward`. dq, dk, dv are strided like q, k, v ((+)= into them);
/// dout (B, T, C) contiguous. With `accumulate: false` the gradients are overwritten,
/// which is right when every (b, h) block of dq, dk, dv belongs to this call alone.
public func attentionBackward(
    dq: Buf, dk: Buf, dv: Buf, dout: Buf, probs: Buf, q: Buf, k: Buf, v: Buf,
    _ s: AttentionShape, accumulate: Bool = true
) {
    OpProfile.shared.enter(.attention)
    defer { OpProfile.shared.exit() }
    let dh = s.headDim
    let T = s.T
    let S = s.S
    let H = s.H
    let scale = s.scale
    let beta: Float = accumulate ? 1 : 0
    parallelFor(s.B * H) { pairs in
        let dPStore = Tensor(zeros: [T, S])  // per worker: dP (T, S)
        let dp = dPStore.data
        for pair in pairs {
            let b = pair / H
            let h = pair % H
            let qo = b * s.qBatch + h * dh
            let ko = b * s.kBatch + h * dh
            let vo = b * s.vBatch + h * dh
            let P = probs + pair * T * S
            let dO = dout + b * T * s.C + h * dh
            // dP (T, S) = dO (T, dh) · Vᵀ
            BLAS.sgemm(transB: true, m: T, n: S, k: dh, a: dO, lda: s.C, b: v + vo, ldb: s.ldv, c: dp, ldc: S)
            // dV (S, dh) (+)= Pᵀ · dO
            BLAS.sgemm(transA: true, m: S, n: dh, k: T, a: P, lda: S, b: dO, ldb: s.C, beta: beta, c: dv + vo, ldc: s.ldv)
            // dS = P ⊙ (dP − Σ_j dP·P), times the score scale
            dsi_softmax_backward_rows(dp, P, T, S, scale)
            // dQ (T, dh) (+)= dS · K;  dK (S, dh) (+)= dSᵀ · Q
            BLAS.sgemm(m: T, n: dh, k: S, a: dp, lda: S, b: k + ko, ldb: s.ldk, beta: beta, c: dq + qo, ldc: s.ldq)
            BLAS.sgemm(transA: true, m: S, n: dh, k: T, a: dp, lda: S, b: q + qo, ldb: s.ldq, beta: beta, c: dk + ko, ldc: s.ldk)
        }
        withExtendedLifetime(dPStore) {}
    }
}
