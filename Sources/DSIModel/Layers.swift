import CDSIKernels
import DSITensor

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

// Layers as pairs of free functions, `xxxForward` and `xxxBackward` (after llm.c).
// Arguments: outputs, saved activations, inputs, weights, then sizes.
// Backward functions add into their gradient outputs (`+=`) unless `accumulate` is false,
// in which case they overwrite (saves zeroing a scratch buffer first).
// Weights are stored (out, in) and used through sgemm's transpose flag.

public typealias Buf = UnsafeMutablePointer<Float>

// MARK: - Embedding

/// out (B, T, C) = table[tokens[b, t]] * scale + positions[t]
/// tokens (B, T); table (V, C); positions (≥T, C) or nil.
public func embeddingForward(
    out: Buf, tokens: UnsafePointer<Int32>, table: Buf, positions: Buf?, scale: Float,
    B: Int, T: Int, C: Int
) {
    parallelFor(B * T, grain: 64) { rows in
        for n in rows {
            let o = out + n * C
            let e = table + Int(tokens[n]) * C
            if let positions {
                let p = positions + (n % T) * C
                for c in 0..<C { o[c] = e[c] * scale + p[c] }
            } else {
                for c in 0..<C { o[c] = e[c] * scale }
            }
        }
    }
}

/// dtable[tokens[b, t]] += dout[b, t] * scale; dpositions[t] += Σ_b dout[b, t].
public func embeddingBackward(
    dtable: Buf, dpositions: Buf?, dout: Buf, tokens: UnsafePointer<Int32>, scale: Float,
    B: Int, T: Int, C: Int
) {
    // Scatter-add in a fixed order: deterministic, and cheap next to the matmuls.
    for n in 0..<(B * T) {
        let d = dtable + Int(tokens[n]) * C
        let g = dout + n * C
        for c in 0..<C { d[c] += g[c] * scale }
    }
    if let dpositions {
        parallelFor(T) { ts in
            for t in ts {
                let d = dpositions + t * C
                for b in 0..<B {
                    let g = dout + (b * T + t) * C
                    for c in 0..<C { d[c] += g[c] }
                }
            }
        }
    }
}

// MARK: - Linear

/// out (N, OC) = inp (N, IC) · weightᵀ + bias; weight (OC, IC), bias (OC) or nil.
public func linearForward(out: Buf, inp: Buf, weight: Buf, bias: Buf?, N: Int, IC: Int, OC: Int) {
    OpProfile.shared.enter(.products)
    defer { OpProfile.shared.exit() }
    if let bias {
        parallelFor(N, grain: 256) { rows in
            for n in rows { (out + n * OC).update(from: bias, count: OC) }
        }
    }
    BLAS.sgemm(
        transA: false, transB: true, m: N, n: OC, k: IC,
        a: inp, lda: IC, b: weight, ldb: IC, beta: bias == nil ? 0 : 1, c: out, ldc: OC, parallel: true)
}

/// dinp (N, IC) (+)= dout · weight; dweight (OC, IC) += doutᵀ · inp; dbias (OC) += Σ_n dout.
public func linearBackward(
    dinp: Buf?, dweight: Buf, dbias: Buf?, dout: Buf, inp: Buf, weight: Buf,
    N: Int, IC: Int, OC: Int, accumulate: Bool = true
) {
    OpProfile.shared.enter(.products)
    defer { OpProfile.shared.exit() }
    if let dinp {
        BLAS.sgemm(
            m: N, n: IC, k: OC, a: dout, lda: OC, b: weight, ldb: IC,
            beta: accumulate ? 1 : 0, c: dinp, ldc: IC, parallel: true)
    }
    BLAS.sgemm(
        transA: true, transB: false, m: OC, n: IC, k: N,
        a: dout, lda: OC, b: inp, ldb: IC, beta: 1, c: dweight, ldc: IC, parallel: true)
    if let dbias {
        // The column sum as a (1, N) · (N, OC) product: BLAS-fast and repeatable.
        BLAS.sgemm(m: 1, n: OC, k: N, a: Ones.pointer(N), lda: N, b: dout, ldb: OC, beta: 1, c: dbias, ldc: OC, parallel: true)
    }
}

/// A shared vector of ones (for column sums through sgemm).
enum Ones {
    private static let scratch = Scratch()
    nonisolated(unsafe) private static var filled = 0

    static func pointer(_ n: Int) -> Buf {
        if n > filled {
            let p = scratch.reserve(n)
            p.update(repeating: 1, count: n)
            filled = n
        }
        return scratch.data
    }
}

// MARK: - Layer norm

/// out (N, C) = (inp − mean) · rstd · weight + bias; saves mean (N) and rstd (N).
public func layerNormForward(
    out: Buf, mean: Buf, rstd: Buf, inp: Buf, weight: Buf, bias: Buf, N: Int, C: Int,
    eps: Float = 1e-5
) {
    OpProfile.shared.enter(.normalisation)
    defer { OpProfile.shared.exit() }
    parallelFor(N, grain: 64) { rows in
        let o = rows.lowerBound
        dsi_layernorm_forward(out + o * C, mean + o, rstd + o, inp + o * C, weight, bias, rows.count, C, eps)
    }
}

/// dinp (N, C) += ∂L/∂inp; dweight (C) += Σ_n dout·x̂; dbias (C) += Σ_n dout.
public func layerNormBackward(
    dinp: Buf, dweight: Buf, dbias: Buf, dout: Buf, inp: Buf, weight: Buf, mean: Buf, rstd: Buf,
    N: Int, C: Int
) {
    OpProfile.shared.enter(.normalisation)
    defer { OpProfile.shared.exit() }
    // Per-block partial sums for dweight/dbias, added in block order: the same bits
    // for any thread count.
    let blocks = min(N, 32)
    let partial = Tensor(zeros: [blocks, 2 * C])
    let pp = partial.data
    parallelFor(blocks) { bs in
        for blk in bs {
            let lo = N * blk / blocks
            let hi = N * (blk + 1) / blocks
            let dw = pp + blk * 2 * C
            dsi_layernorm_backward(
                dinp + lo * C, dw, dw + C, dout + lo * C, inp + lo * C, weight, mean + lo, rstd + lo, hi - lo, C)
        }
    }
    for blk in 0..<blocks {
        let dw = pp + blk * 2 * C
        let db = dw + C
        for c in 0..<C {
            dweight[c] += dw[c]
            dbias[c] += db[c]
        }
    }
}

// MARK: - GELU (tanh approximation, as in GPT-2)

// The kernels are C (Sources/CDSIKernels): compiled per instruction set and chosen by the
// CPU, where Swift's baseline x86-64 build would run them on SSE2 without FMA. Their tanh
// is the clamped rational minimax approximation Eigen uses for float (glibc's scalar tanhf
// cost a quarter of a training step).

/// out (n) = 0.5 x (1 + tanh(√(2/π)(x + 0.044715 x³))); out may be inp.
public func geluForward(out: Buf, inp: Buf, n: Int) {
    OpProfile.shared.enter(.activation)
    defer { OpProfile.shared.exit() }
    parallelFor(n, grain: 16384) { r in dsi_gelu_forward(out + r.lowerBound, inp + r.lowerBound, r.count) }
}

/// hidden (rows, cols) += bias (broadcast over rows), then activated = GELU(hidden): the
/// bias of the feed-forward block's first product and its activation in one memory pass
/// (`dsi_bias_gelu_forward`). `activated` may be `hidden`.
public func biasGeluForward(hidden: Buf, activated: Buf, bias: UnsafePointer<Float>, rows: Int, cols: Int) {
    OpProfile.shared.enter(.activation)
    defer { OpProfile.shared.exit() }
    parallelFor(rows, grain: max(1, 16384 / max(1, cols))) { r in
        dsi_bias_gelu_forward(hidden + r.lowerBound * cols, activated + r.lowerBound * cols, bias, r.count, cols)
    }
}

/// dinp (n) (+)= gelu′(inp) · dout; dinp may be dout.
public func geluBackward(dinp: Buf, inp: Buf, dout: Buf, n: Int, accumulate: Bool = true) {
    OpProfile.shared.enter(.activation)
    defer { OpProfile.shared.exit() }
    parallelFor(n, grain: 16384) { r in
        dsi_gelu_backward(dinp + r.lowerBound, inp + r.lowerBound, dout + r.lowerBound, r.count, accumulate ? 1 : 0)
    }
}

// MARK: - Residual

/// out (n) = a + b
public func residualForward(out: Buf, a: Buf, b: Buf, n: Int) {
    parallelFor(n, grain: 65536) { r in
        for i in r { out[i] = a[i] + b[i] }
    }
}

/// da += dout; db += dout
public func residualBackward(da: Buf, db: Buf, dout: Buf, n: Int) {
    parallelFor(n, grain: 65536) { r in
        for i in r {
            da[i] += dout[i]
            db[i] += dout[i]
        }
    }
}

// MARK: - Dropout (inverted)

/// out (rows, width) = inp · mask, mask ∈ {0, 1/(1−p)} (saved for backward). Row r's
/// mask is drawn from its own generator, seeded by (`seed`, `firstRow` + r): a row's mask
/// depends on its global index, not on which rows share the call, so data-parallel
/// shares of a batch (`Seq2SeqBatch.firstExample`) drop exactly what the whole batch would.
public func dropoutForward(out: Buf, mask: Buf, inp: Buf, rows: Int, width: Int, firstRow: Int = 0, p: Float, seed: UInt64) {
    let keep = 1 / (1 - p)
    parallelFor(rows, grain: max(1, 16384 / max(1, width))) { r in
        for row in r {
            var rng = SeededRNG(seed: seed ^ (UInt64(firstRow + row) &* 0xD1B5_4A32_D192_ED03))
            let o = row * width
            for j in 0..<width {
                let m: Float = rng.uniform() < p ? 0 : keep
                mask[o + j] = m
                out[o + j] = inp[o + j] * m
            }
        }
    }
}

/// dinp (n) (+)= dout · mask
public func dropoutBackward(dinp: Buf, dout: Buf, mask: Buf, n: Int, accumulate: Bool = true) {
    parallelFor(n, grain: 65536) { r in
        for i in r {
            if accumulate { dinp[i] += dout[i] * mask[i] } else { dinp[i] = dout[i] * mask[i] }
        }
    }
}

// MARK: - Softmax cross-entropy with label smoothing and an ignore index

/// probs (N, V) = softmax(logits); losses (N) = −Σ_j q_j log p_j with
/// q = (1−ε)·onehot(target) + ε/V (0 where target == ignoreIndex).
/// Returns the number of rows that count (targets ≠ ignoreIndex).
@discardableResult
public func crossEntropyForward(
    losses: Buf, probs: Buf, logits: Buf, targets: UnsafePointer<Int32>, N: Int, V: Int,
    smoothing: Float, ignoreIndex: Int32
) -> Int {
    OpProfile.shared.enter(.loss)
    defer { OpProfile.shared.exit() }
    parallelFor(N, grain: 16) { rows in
        for n in rows {
            let z = logits + n * V
            let p = probs + n * V
            var mx = -Float.infinity
            for j in 0..<V { mx = max(mx, z[j]) }
            var sum: Float = 0
            for j in 0..<V {
                let e = expf(z[j] - mx)
                p[j] = e
                sum += e
            }
            let inv = 1 / sum
            for j in 0..<V { p[j] *= inv }
            let y = targets[n]
            if y == ignoreIndex {
                losses[n] = 0
                continue
            }
            let logSum = logf(sum) + mx
            // log p_j = z_j − logSum
            let nll = logSum - z[Int(y)]
            var meanNLL: Float = 0
            if smoothing > 0 {
                for j in 0..<V { meanNLL += logSum - z[j] }
                meanNLL /= Float(V)
            }
            losses[n] = (1 - smoothing) * nll + smoothing * meanNLL
        }
    }
    var count = 0
    for n in 0..<N where targets[n] != ignoreIndex { count += 1 }
    return count
}

/// dlogits (N, V) += (probs − q) · dloss for rows that count; ignored rows get nothing.
/// For a mean loss over `count` rows pass dloss = 1/count.
public func crossEntropyBackward(
    dlogits: Buf, probs: Buf, targets: UnsafePointer<Int32>, N: Int, V: Int,
    smoothing: Float, ignoreIndex: Int32, dloss: Float
) {
    OpProfile.shared.enter(.loss)
    defer { OpProfile.shared.exit() }
    let uniform = smoothing / Float(V)
    parallelFor(N, grain: 16) { rows in
        for n in rows {
            let y = targets[n]
            if y == ignoreIndex { continue }
            let p = probs + n * V
            let d = dlogits + n * V
            for j in 0..<V { d[j] += (p[j] - uniform) * dloss }
            d[Int(y)] -= (1 - smoothing) * dloss
        }
    }
}
