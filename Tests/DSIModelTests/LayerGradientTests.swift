import CDSIKernels
import DSIModel
import DSITensor
import Testing

@Suite("layer backward passes against finite differences")
struct LayerGradientTests {
    @Test("linear: input, weight and bias")
    func linear() {
        var rng = SeededRNG(seed: 1)
        let N = 5
        let IC = 6
        let OC = 4
        let x = randomTensor([N, IC], &rng)
        let w = randomTensor([OC, IC], &rng)
        let b = randomTensor([OC], &rng)
        let r = randomTensor([N, OC], &rng)
        let out = Tensor(zeros: [N, OC])
        let dx = Tensor(zeros: [N, IC])
        let dw = Tensor(zeros: [OC, IC])
        let db = Tensor(zeros: [OC])
        func loss() -> Double {
            linearForward(out: out.data, inp: x.data, weight: w.data, bias: b.data, N: N, IC: IC, OC: OC)
            return dot(out, r)
        }
        _ = loss()
        linearBackward(dinp: dx.data, dweight: dw.data, dbias: db.data, dout: r.data, inp: x.data, weight: w.data, N: N, IC: IC, OC: OC)
        expectGradient("dinp", x: x, analytic: dx, loss: loss)
        expectGradient("dweight", x: w, analytic: dw, loss: loss)
        expectGradient("dbias", x: b, analytic: db, loss: loss)
        // Accumulation: a second backward adds the same again; overwrite mode replaces.
        let before = dx.toArray()
        linearBackward(dinp: dx.data, dweight: dw.data, dbias: db.data, dout: r.data, inp: x.data, weight: w.data, N: N, IC: IC, OC: OC)
        for i in 0..<dx.count { #expect(abs(dx[i] - 2 * before[i]) <= 1e-5 * (1 + abs(before[i]))) }
        linearBackward(
            dinp: dx.data, dweight: dw.data, dbias: nil, dout: r.data, inp: x.data, weight: w.data, N: N, IC: IC, OC: OC, accumulate: false)
        for i in 0..<dx.count { #expect(abs(dx[i] - before[i]) <= 1e-5 * (1 + abs(before[i]))) }
    }

    @Test("layer norm: input, gain and bias")
    func layerNorm() {
        var rng = SeededRNG(seed: 2)
        let N = 4
        let C = 8
        let x = randomTensor([N, C], &rng, scale: 2)
        let w = randomTensor([C], &rng)
        let b = randomTensor([C], &rng)
        let r = randomTensor([N, C], &rng)
        let out = Tensor(zeros: [N, C])
        let mean = Tensor(zeros: [N])
        let rstd = Tensor(zeros: [N])
        let dx = Tensor(zeros: [N, C])
        let dw = Tensor(zeros: [C])
        let db = Tensor(zeros: [C])
        func loss() -> Double {
            layerNormForward(out: out.data, mean: mean.data, rstd: rstd.data, inp: x.data, weight: w.data, bias: b.data, N: N, C: C)
            return dot(out, r)
        }
        _ = loss()
        // Normalised rows have mean 0 and variance 1 before the affine part.
        for n in 0..<N {
            var m: Double = 0
            for c in 0..<C { m += Double(x[n * C + c]) }
            #expect(abs(m / Double(C) - Double(mean[n])) < 1e-5)
        }
        layerNormBackward(
            dinp: dx.data, dweight: dw.data, dbias: db.data, dout: r.data, inp: x.data, weight: w.data, mean: mean.data, rstd: rstd.data,
            N: N, C: C)
        expectGradient("dinp", x: x, analytic: dx, eps: 5e-3, loss: loss)
        expectGradient("dweight", x: w, analytic: dw, loss: loss)
        expectGradient("dbias", x: b, analytic: db, loss: loss)
    }

    @Test("GELU")
    func gelu() {
        var rng = SeededRNG(seed: 3)
        let n = 64
        let x = randomTensor([n], &rng, scale: 2)
        let r = randomTensor([n], &rng)
        let out = Tensor(zeros: [n])
        let dx = Tensor(zeros: [n])
        func loss() -> Double {
            geluForward(out: out.data, inp: x.data, n: n)
            return dot(out, r)
        }
        _ = loss()
        // Known values: gelu(0) = 0, gelu(x) ≈ x for large x, ≈ 0 for very negative x.
        let probe = Tensor([0, 6, -6], shape: [3])
        let probeOut = Tensor(zeros: [3])
        geluForward(out: probeOut.data, inp: probe.data, n: 3)
        #expect(probeOut[0] == 0 && abs(probeOut[1] - 6) < 1e-4 && abs(probeOut[2]) < 1e-4)
        geluBackward(dinp: dx.data, inp: x.data, dout: r.data, n: n)
        expectGradient("dinp", x: x, analytic: dx, eps: 1e-3, loss: loss)
    }

    @Test("GELU kernels against the exact formula in double precision: in place, with tails, accumulating or not")
    func geluKernels() {
        var rng = SeededRNG(seed: 5)
        // Lengths that leave a tail after any vector width, values across the clamp (±7.9 / k).
        for n in [1, 7, 8, 15, 16, 17, 33, 1000, 4099] {
            let x = (0..<n).map { _ in rng.normal() * 4 }
            let g = (0..<n).map { _ in rng.normal() }
            let k = (2 / Double.pi).squareRoot()
            func exact(_ v: Float) -> Double {
                let x = Double(v)
                return 0.5 * x * (1 + tanh(k * (x + 0.044715 * x * x * x)))
            }
            func exactDerivative(_ v: Float) -> Double {
                let x = Double(v)
                let t = tanh(k * (x + 0.044715 * x * x * x))
                return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * k * (1 + 3 * 0.044715 * x * x)
            }
            let out = Tensor(zeros: [n])
            let inp = Tensor(x, shape: [n])
            geluForward(out: out.data, inp: inp.data, n: n)
            var worst: Double = 0
            for i in 0..<n { worst = max(worst, abs(Double(out[i]) - exact(x[i])) / (1 + abs(exact(x[i])))) }
            #expect(worst < 2e-6, "forward, n \(n): relative error \(worst)")
            // In place (out == inp), as the model calls it.
            let same = Tensor(x, shape: [n])
            geluForward(out: same.data, inp: same.data, n: n)
            #expect((0..<n).allSatisfy { same[$0] == out[$0] }, "in place differs, n \(n)")
            // Backward, writing and accumulating; dinp == dout in place.
            let dinp = Tensor([Float](repeating: 0.5, count: n), shape: [n])
            let dout = Tensor(g, shape: [n])
            geluBackward(dinp: dinp.data, inp: inp.data, dout: dout.data, n: n, accumulate: true)
            let overwrite = Tensor(g, shape: [n])
            geluBackward(dinp: overwrite.data, inp: inp.data, dout: overwrite.data, n: n, accumulate: false)
            // The derivative's 1 − t² loses float precision as |t| → 1: an error δ in t moves it
            // by about (1 + |x|·du)·δ, du = k(1 + 3·0.044715·x²); δ ≤ 1e-6 covers float's tanh.
            worst = 0
            for i in 0..<n {
                let want = exactDerivative(x[i]) * Double(g[i])
                let xi = Double(x[i])
                let scale = (1 + abs(xi) * k * (1 + 3 * 0.044715 * xi * xi)) * (abs(Double(g[i])) + 1)
                worst = max(worst, abs(Double(dinp[i]) - 0.5 - want) / scale)
                worst = max(worst, abs(Double(overwrite[i]) - want) / scale)
            }
            #expect(worst < 1e-6, "backward, n \(n): error \(worst) of the bound's scale")
        }
    }

    @Test("token and position embeddings, with repeated tokens")
    func embedding() {
        var rng = SeededRNG(seed: 4)
        let V = 7
        let B = 2
        let T = 4
        let C = 5
        let tokens: [Int32] = [1, 3, 3, 6, 0, 1, 1, 2]
        let table = randomTensor([V, C], &rng)
        let pos = randomTensor([T, C], &rng)
        let r = randomTensor([B * T, C], &rng)
        let out = Tensor(zeros: [B * T, C])
        let dtable = Tensor(zeros: [V, C])
        let dpos = Tensor(zeros: [T, C])
        let scale: Float = 1.7
        func loss() -> Double {
            tokens.withUnsafeBufferPointer { tk in
                embeddingForward(
                    out: out.data, tokens: tk.baseAddress!, table: table.data, positions: pos.data, scale: scale, B: B, T: T, C: C)
            }
            return dot(out, r)
        }
        _ = loss()
        tokens.withUnsafeBufferPointer { tk in
            embeddingBackward(
                dtable: dtable.data, dpositions: dpos.data, dout: r.data, tokens: tk.baseAddress!, scale: scale, B: B, T: T, C: C)
        }
        expectGradient("dtable", x: table, analytic: dtable, loss: loss)
        expectGradient("dpositions", x: pos, analytic: dpos, loss: loss)
        // Rows of tokens that never occur get no gradient.
        for c in 0..<C { #expect(dtable[4 * C + c] == 0 && dtable[5 * C + c] == 0) }
    }

    @Test("bias + GELU in one pass equals the bias added, then GELU; in place too")
    func biasGelu() {
        var rng = SeededRNG(seed: 12)
        for (rows, cols) in [(1, 1), (3, 17), (5, 64), (7, 1024)] {
            let x = (0..<(rows * cols)).map { _ in rng.normal() * 3 }
            let b = (0..<cols).map { _ in rng.normal() }
            let hidden = Tensor(x, shape: [rows, cols])
            let act = Tensor(zeros: [rows, cols])
            let bias = Tensor(b, shape: [cols])
            biasGeluForward(hidden: hidden.data, activated: act.data, bias: bias.data, rows: rows, cols: cols)
            // Unfused: the bias added row by row, then the GELU kernel.
            let ref = Tensor((0..<(rows * cols)).map { x[$0] + b[$0 % cols] }, shape: [rows, cols])
            let refAct = Tensor(zeros: [rows, cols])
            geluForward(out: refAct.data, inp: ref.data, n: rows * cols)
            #expect((0..<(rows * cols)).allSatisfy { hidden[$0] == ref[$0] && act[$0] == refAct[$0] }, "\(rows)×\(cols)")
            let same = Tensor(x, shape: [rows, cols])
            biasGeluForward(hidden: same.data, activated: same.data, bias: bias.data, rows: rows, cols: cols)
            #expect((0..<(rows * cols)).allSatisfy { same[$0] == refAct[$0] }, "in place, \(rows)×\(cols)")
        }
    }

    @Test("softmax kernel against double precision: key masks, causal rows, tails, all-masked rows; its backward")
    func softmaxKernel() {
        var rng = SeededRNG(seed: 9)
        for cols in [1, 5, 16, 17, 40, 64, 100] {
            let rows = 7
            let ld = cols + 3  // a row stride wider than the row, as a scores block may have
            for causal in [false, true] {
                for masked in [false, true] {
                    let x = (0..<(rows * ld)).map { _ in rng.normal() * 6 }
                    let mask: [Float] = (0..<cols).map { j in masked && (j % 3 == 1 || j == cols - 1) && j > 0 ? 0 : 1 }
                    var p = x
                    p.withUnsafeMutableBufferPointer { pb in
                        mask.withUnsafeBufferPointer { mb in
                            dsi_softmax_rows(pb.baseAddress!, Int(rows), Int(cols), Int(ld), masked ? mb.baseAddress! : nil, causal ? 1 : 0)
                        }
                    }
                    for t in 0..<rows {
                        let visible = causal ? min(cols, t + 1) : cols
                        let keep = (0..<cols).map { $0 < visible && mask[$0] != 0 }
                        let mx = (0..<cols).filter { keep[$0] }.map { Double(x[t * ld + $0]) }.max()
                        let z = (0..<cols).map { keep[$0] ? exp(Double(x[t * ld + $0]) - mx!) : 0 }
                        let sum = z.reduce(0, +)
                        for j in 0..<cols {
                            let want = sum > 0 ? z[j] / sum : 0
                            let got = Double(p[t * ld + j])
                            #expect(
                                abs(got - want) <= 1e-6 * max(want, 1e-30) + 1e-7,
                                "cols \(cols) causal \(causal) mask \(masked): [\(t), \(j)] \(got) vs \(want)")
                            if !keep[j] { #expect(got == 0) }
                        }
                        // The stride's spare columns are not touched.
                        for j in cols..<ld { #expect(p[t * ld + j] == x[t * ld + j]) }
                    }
                }
            }
        }
        // A row whose keys are all padding attends to nothing (zeros, not NaN).
        var p: [Float] = [3, 1, 2, 5]
        let none: [Float] = [0, 0, 0, 0]
        dsi_softmax_rows(&p, 1, 4, 4, none, 0)
        #expect(p == [0, 0, 0, 0])
        // Backward: g = p (g − Σ p g) · scale, against double precision.
        let cols = 37
        let probs = (0..<(3 * cols)).map { _ in Float.random(in: 0...1, using: &rng) }
        let grad = (0..<(3 * cols)).map { _ in rng.normal() }
        var g = grad
        dsi_softmax_backward_rows(&g, probs, 3, Int(cols), 0.25)
        for t in 0..<3 {
            let dot = (0..<cols).reduce(0.0) { $0 + Double(probs[t * cols + $1]) * Double(grad[t * cols + $1]) }
            for j in 0..<cols {
                let want = Double(probs[t * cols + j]) * (Double(grad[t * cols + j]) - dot) * 0.25
                #expect(abs(Double(g[t * cols + j]) - want) < 1e-5 * (1 + abs(want)))
            }
        }
    }

    @Test("causal self-attention over a fused QKV matrix, with key padding")
    func selfAttention() {
        var rng = SeededRNG(seed: 5)
        let B = 2
        let T = 4
        let C = 8
        let H = 2
        let qkv = randomTensor([B * T, 3 * C], &rng)
        let r = randomTensor([B * T, C], &rng)
        let out = Tensor(zeros: [B * T, C])
        let probs = Tensor(zeros: [B, H, T, T])
        let dqkv = Tensor(zeros: [B * T, 3 * C])
        let mask: [Float] = [1, 1, 1, 1, 1, 1, 0, 0]  // second sequence: 2 padding keys
        let shape = AttentionShape(B: B, T: T, S: T, C: C, H: H, ldq: 3 * C, ldk: 3 * C, ldv: 3 * C, causal: true)
        func loss() -> Double {
            mask.withUnsafeBufferPointer { m in
                attentionForward(
                    out: out.data, probs: probs.data, q: qkv.data, k: qkv.data + C, v: qkv.data + 2 * C, keyMask: m.baseAddress!, shape)
            }
            return dot(out, r)
        }
        _ = loss()
        // Causality and padding: zero probability on future and padded keys, rows sum to 1.
        for b in 0..<B {
            for h in 0..<H {
                for t in 0..<T {
                    var sum: Float = 0
                    for s in 0..<T {
                        let p = probs[((b * H + h) * T + t) * T + s]
                        if s > t || mask[b * T + s] == 0 { #expect(p == 0) }
                        sum += p
                    }
                    #expect(abs(sum - 1) < 1e-5)
                }
            }
        }
        attentionBackward(
            dq: dqkv.data, dk: dqkv.data + C, dv: dqkv.data + 2 * C, dout: r.data, probs: probs.data, q: qkv.data, k: qkv.data + C,
            v: qkv.data + 2 * C, shape)
        expectGradient("dqkv", x: qkv, analytic: dqkv, samples: 192, loss: loss)
    }

    @Test("cross-attention over a padded memory with separate strides")
    func crossAttention() {
        var rng = SeededRNG(seed: 6)
        let B = 2
        let T = 3
        let S = 5
        let C = 8
        let H = 4
        let q = randomTensor([B * T, C], &rng)
        let kv = randomTensor([B * S, 2 * C], &rng)
        let r = randomTensor([B * T, C], &rng)
        let out = Tensor(zeros: [B * T, C])
        let probs = Tensor(zeros: [B, H, T, S])
        let dq = Tensor(zeros: [B * T, C])
        let dkv = Tensor(zeros: [B * S, 2 * C])
        let mask: [Float] = [1, 1, 1, 0, 0, 1, 1, 1, 1, 1]
        let shape = AttentionShape(B: B, T: T, S: S, C: C, H: H, ldq: C, ldk: 2 * C, ldv: 2 * C)
        func loss() -> Double {
            mask.withUnsafeBufferPointer { m in
                attentionForward(out: out.data, probs: probs.data, q: q.data, k: kv.data, v: kv.data + C, keyMask: m.baseAddress!, shape)
            }
            return dot(out, r)
        }
        _ = loss()
        attentionBackward(
            dq: dq.data, dk: dkv.data, dv: dkv.data + C, dout: r.data, probs: probs.data, q: q.data, k: kv.data, v: kv.data + C, shape)
        expectGradient("dq", x: q, analytic: dq, loss: loss)
        expectGradient("dkv", x: kv, analytic: dkv, samples: 160, loss: loss)
        // Padded memory rows get no gradient at all.
        for s in [3, 4] { for c in 0..<(2 * C) { #expect(dkv[s * 2 * C + c] == 0) } }
    }

    @Test("attention to an all-padding memory gives zeros, not NaN")
    func allPadding() {
        var rng = SeededRNG(seed: 7)
        let q = randomTensor([2, 4], &rng)
        let kv = randomTensor([3, 8], &rng)
        let out = Tensor(zeros: [2, 4])
        let probs = Tensor(zeros: [1, 2, 2, 3])
        let mask: [Float] = [0, 0, 0]
        mask.withUnsafeBufferPointer { m in
            attentionForward(
                out: out.data, probs: probs.data, q: q.data, k: kv.data, v: kv.data + 4, keyMask: m.baseAddress!,
                AttentionShape(B: 1, T: 2, S: 3, C: 4, H: 2, ldk: 8, ldv: 8))
        }
        #expect(out.toArray().allSatisfy { $0 == 0 })
    }

    @Test("softmax cross-entropy with label smoothing and an ignore index")
    func crossEntropy() {
        var rng = SeededRNG(seed: 8)
        let N = 6
        let V = 5
        let logits = randomTensor([N, V], &rng, scale: 2)
        let targets: [Int32] = [0, 4, -100, 2, 2, 1]
        let probs = Tensor(zeros: [N, V])
        let losses = Tensor(zeros: [N])
        let dlogits = Tensor(zeros: [N, V])
        let eps: Float = 0.1
        var counted = 0
        func loss() -> Double {
            counted = targets.withUnsafeBufferPointer { t in
                crossEntropyForward(
                    losses: losses.data, probs: probs.data, logits: logits.data, targets: t.baseAddress!, N: N, V: V, smoothing: eps,
                    ignoreIndex: -100)
            }
            return losses.toArray().reduce(0) { $0 + Double($1) } / Double(counted)
        }
        let value = loss()
        #expect(counted == 5)
        // The definition, in Double: −Σ_j q_j log softmax(z)_j with q = (1−ε)·onehot + ε/V.
        var want: Double = 0
        for n in 0..<N where targets[n] != -100 {
            let z = (0..<V).map { Double(logits[n * V + $0]) }
            let lse = log(z.map { exp($0) }.reduce(0, +))
            for j in 0..<V {
                let qj = (j == Int(targets[n]) ? 1 - Double(eps) : 0) + Double(eps) / Double(V)
                want -= qj * (z[j] - lse)
            }
        }
        want /= 5
        #expect(abs(value - want) < 1e-5)
        targets.withUnsafeBufferPointer { t in
            crossEntropyBackward(
                dlogits: dlogits.data, probs: probs.data, targets: t.baseAddress!, N: N, V: V, smoothing: eps, ignoreIndex: -100,
                dloss: 1 / Float(counted))
        }
        expectGradient("dlogits", x: logits, analytic: dlogits, eps: 1e-3, loss: loss)
        for j in 0..<V { #expect(dlogits[2 * V + j] == 0) }
    }

    @Test("dropout: mask values, keep rate, and backward through the same mask")
    func dropout() {
        let n = 20_000
        let p: Float = 0.25
        var rng = SeededRNG(seed: 9)
        let x = randomTensor([n], &rng)
        let r = randomTensor([n], &rng)
        let out = Tensor(zeros: [n])
        let mask = Tensor(zeros: [n])
        let dx = Tensor(zeros: [n])
        func loss() -> Double {
            // The same seed: the same mask on every evaluation.
            dropoutForward(out: out.data, mask: mask.data, inp: x.data, rows: n / 100, width: 100, p: p, seed: 10)
            return dot(out, r)
        }
        _ = loss()
        let dropped = mask.toArray().filter { $0 == 0 }.count
        #expect(mask.toArray().allSatisfy { $0 == 0 || abs($0 - 1 / (1 - p)) < 1e-6 })
        #expect(abs(Double(dropped) / Double(n) - Double(p)) < 0.02)
        dropoutBackward(dinp: dx.data, dout: r.data, mask: mask.data, n: n)
        expectGradient("dinp", x: x, analytic: dx, samples: 100, loss: loss)
    }

    @Test("residual add")
    func residual() {
        var rng = SeededRNG(seed: 11)
        let n = 10
        let a = randomTensor([n], &rng)
        let b = randomTensor([n], &rng)
        let r = randomTensor([n], &rng)
        let out = Tensor(zeros: [n])
        let da = Tensor(zeros: [n])
        let db = Tensor(zeros: [n])
        func loss() -> Double {
            residualForward(out: out.data, a: a.data, b: b.data, n: n)
            return dot(out, r)
        }
        _ = loss()
        residualBackward(da: da.data, db: db.data, dout: r.data, n: n)
        expectGradient("da", x: a, analytic: da, loss: loss)
        expectGradient("db", x: b, analytic: db, loss: loss)
    }
}

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
