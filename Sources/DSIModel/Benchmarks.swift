import CDSIKernels
import DSITensor
import Foundation

/// `dsi bench ops`: the sgemm wrapper's speed on the shapes the model uses, and a full
/// training step (forward + backward + AdamW) of the reference configuration on random
/// data, the same measurement `../shared/peers/torch_dsi.py` makes.
public enum OpsBenchmark {
    public struct Result: Sendable, Encodable {
        public var threads: Int
        public var sgemm: [(shape: String, gflops: Double)]
        public var stepsPerSecond: Double
        public var stepSecondsMedian: Double
        public var gflopPerStep: Double
        public var trainGFLOPS: Double
        public var peakRSS: Double
        public var parameters: Int
        public var lossFirstLast: (Float, Float)
        public var batch: Int, sourceLength: Int, targetLength: Int
        public var blasCore: String
        /// Whether the executable's start-up chose the kernels (OPENBLAS_CORETYPE).
        public var blasCoreForced = false
        /// Medians of the step's phases: forward, backward, and clipping + AdamW.
        public var forwardSeconds: Double, backwardSeconds: Double, optimizerSeconds: Double
        /// The machine's FMA peak on `threads` threads, measured in the same run (set by
        /// the CLI, which knows the CPU: Sources/DSIStartup/peak.c), and its vector width.
        public var fmaPeakGFLOPS: Double? = nil
        public var fmaVectorFloats: Int? = nil
        /// The instruction set the element-wise C kernels run with (Sources/CDSIKernels).
        public var elementwiseISA = String(cString: dsi_kernels_isa())
        /// What the large products multiplied (`--precision`; the FMA peak is float32's).
        public var precision = BLAS.precision.rawValue
        /// Milliseconds per timed step in each `OpFamily` (exclusive; `OpProfile`).
        public var trainOpMilliseconds: [OpFamily: Double] = [:]

        enum CodingKeys: String, CodingKey {
            case threads, parameters, batch
            case sgemm = "sgemm_gflops"
            case stepsPerSecond = "train_steps_per_second"
            case stepSecondsMedian = "train_step_seconds_median"
            case gflopPerStep = "train_gflop_per_step"
            case trainGFLOPS = "train_gflops"
            case peakRSS = "peak_rss_mb"
            case sourceLength = "source_length"
            case targetLength = "target_length"
            case lossFirstLast = "loss_first_last"
            case forwardSeconds = "forward_seconds_median"
            case backwardSeconds = "backward_seconds_median"
            case optimizerSeconds =
                "optimizer_seconds_median"
            case blasCore = "blas_core"
            case blasCoreForced = "blas_core_forced"
            case fmaPeakGFLOPS = "fma_peak_gflops"
            case fmaVectorFloats = "fma_vector_floats"
            case peakFraction = "train_fraction_of_fma_peak"
            case trainOpMilliseconds = "train_op_ms_per_step"
            case elementwiseISA = "elementwise_isa"
            case precision
        }

        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(threads, forKey: .threads)
            try c.encode(parameters, forKey: .parameters)
            try c.encode(batch, forKey: .batch)
            try c.encode(Dictionary(uniqueKeysWithValues: sgemm.map { ($0.shape, $0.gflops) }), forKey: .sgemm)
            try c.encode(stepsPerSecond, forKey: .stepsPerSecond)
            try c.encode(stepSecondsMedian, forKey: .stepSecondsMedian)
            try c.encode(gflopPerStep, forKey: .gflopPerStep)
            try c.encode(trainGFLOPS, forKey: .trainGFLOPS)
            try c.encode(peakRSS, forKey: .peakRSS)
            try c.encode(sourceLength, forKey: .sourceLength)
            try c.encode(targetLength, forKey: .targetLength)
            try c.encode([lossFirstLast.0, lossFirstLast.1], forKey: .lossFirstLast)
            try c.encode(forwardSeconds, forKey: .forwardSeconds)
            try c.encode(backwardSeconds, forKey: .backwardSeconds)
            try c.encode(optimizerSeconds, forKey: .optimizerSeconds)
            try c.encode(fmaPeakGFLOPS, forKey: .fmaPeakGFLOPS)
            try c.encode(fmaVectorFloats, forKey: .fmaVectorFloats)
            try c.encode(fmaPeakGFLOPS.map { trainGFLOPS / $0 }, forKey: .peakFraction)
            try c.encode(blasCore, forKey: .blasCore)
            try c.encode(blasCoreForced, forKey: .blasCoreForced)
            try c.encode(elementwiseISA, forKey: .elementwiseISA)
            try c.encode(precision, forKey: .precision)
            try c.encode(
                Dictionary(uniqueKeysWithValues: trainOpMilliseconds.map { ($0.key.rawValue, $0.value) }), forKey: .trainOpMilliseconds)
        }

        public var text: String {
            var s =
                "threads \(threads), OpenBLAS core \(blasCore)\(blasCoreForced ? " (chosen at start-up for this CPU)" : ""), element-wise kernels \(elementwiseISA), products \(precision)\n"
            for (shape, g) in sgemm { s += "sgemm \(shape): \(fmt(g)) GFLOP/s\n" }
            s += "training step (B \(batch), S \(sourceLength), T \(targetLength), \(parameters) parameters): "
            s += "\(fmt(stepsPerSecond, 3)) steps/s, median \(fmt(stepSecondsMedian, 3)) s, "
            s += "\(fmt(gflopPerStep)) GFLOP/step, \(fmt(trainGFLOPS)) GFLOP/s\n"
            s +=
                "  phases (median s): forward \(fmt(forwardSeconds, 3)), backward \(fmt(backwardSeconds, 3)), clip + AdamW \(fmt(optimizerSeconds, 3))\n"
            if !trainOpMilliseconds.isEmpty {
                s +=
                    "  by op family (ms per step, exclusive): "
                    + OpFamily.allCases.map { "\($0.rawValue) \(fmt(trainOpMilliseconds[$0] ?? 0, 1))" }.joined(separator: ", ") + "\n"
            }
            if let peak = fmaPeakGFLOPS {
                s +=
                    "FMA peak (\(threads) threads, \(fmaVectorFloats ?? 0)-float vectors, 12 chains each): \(fmt(peak)) GFLOP/s; the training step reaches \(fmt(100 * trainGFLOPS / peak, 1))% of it\n"
            }
            s += "peak RSS \(fmt(peakRSS, 1)) MiB"
            return s
        }
    }

    static func fmt(_ x: Double, _ digits: Int = 2) -> String { String(format: "%.\(digits)f", x) }

    /// GFLOP/s of `C = A · Bᵀ` for (M, N, K), as the linear layers call it (split across
    /// `Threads.count` threads); the median of repeated timings over at least `minSeconds`.
    public static func sgemmGFLOPS(m: Int, n: Int, k: Int, minSeconds: Double = 0.3) -> Double {
        let a = Tensor(zeros: [m, k])
        let b = Tensor(zeros: [n, k])
        let c = Tensor(zeros: [m, n])
        var rng = SeededRNG(seed: 7)
        for i in 0..<a.count { a[i] = rng.normal() }
        for i in 0..<b.count { b[i] = rng.normal() }
        let flop = 2.0 * Double(m) * Double(n) * Double(k)
        // Enough calls per timing to last ~10 ms.
        let reps = max(1, Int(1e-2 * 50e9 / flop))
        func once() { BLAS.sgemm(transB: true, m: m, n: n, k: k, a: a.data, lda: k, b: b.data, ldb: k, c: c.data, ldc: n, parallel: true) }
        for _ in 0..<reps { once() }
        var rates: [Double] = []
        let clock = ContinuousClock()
        let begin = clock.now
        while (clock.now - begin).seconds < minSeconds || rates.count < 5 {
            let t0 = clock.now
            for _ in 0..<reps { once() }
            rates.append(flop * Double(reps) / (clock.now - t0).seconds / 1e9)
        }
        return median(rates)
    }

    public static func run(
        steps: Int, warmup: Int, batch B: Int, sourceLength S: Int, targetLength T: Int,
        config: ModelConfig = .reference
    ) throws -> Result {
        var sg: [(String, Double)] = []
        for (m, n, k) in [(2048, 256, 256), (2048, 1024, 256), (10, 256, 256)] {
            sg.append(("\(m)x\(n)x\(k)", sgemmGFLOPS(m: m, n: n, k: k)))
        }
        var cfg = config
        cfg.sourceLength = max(cfg.sourceLength, S)
        cfg.targetLength = max(cfg.targetLength, T)
        let model = try Seq2Seq(config: cfg, seed: 0)
        var rng = SeededRNG(seed: 0)
        // A few random batches, reused (data generation is not timed).
        let batches = (0..<4).map { _ in randomBatch(B: B, S: S, T: T, config: cfg, rng: &rng) }
        let ws = Workspace()
        var opt = AdamW()
        var losses: [Float] = []
        for i in 0..<warmup {
            losses.append(try model.trainStep(batches[i % 4], workspace: ws, optimizer: &opt, lr: 3e-4, rng: &rng).loss)
        }
        let clock = ContinuousClock()
        var times: [Double] = []
        var fwd: [Double] = []
        var bwd: [Double] = []
        var upd: [Double] = []
        let start = clock.now
        OpProfile.shared.start()
        for i in 0..<steps {
            // `trainStep`'s body, with the phases timed.
            let t0 = clock.now
            model.params.zeroGrads()
            losses.append(try model.forward(batches[i % 4], workspace: ws, training: true, rng: &rng))
            let t1 = clock.now
            model.backward(workspace: ws)
            let t2 = clock.now
            let norm = model.params.gradNorm()
            opt.update(model.params, lr: 3e-4, gradScale: norm > 1 ? 1 / norm : 1)
            let t3 = clock.now
            fwd.append((t1 - t0).seconds)
            bwd.append((t2 - t1).seconds)
            upd.append((t3 - t2).seconds)
            times.append((t3 - t0).seconds)
        }
        let total = (clock.now - start).seconds
        let families = OpProfile.shared.stop()
        let gflop = 3 * cfg.forwardFLOPs(batch: B, sourceLength: S, targetLength: T) / 1e9
        let med = median(times)
        return Result(
            threads: Threads.count, sgemm: sg, stepsPerSecond: Double(steps) / total, stepSecondsMedian: med,
            gflopPerStep: gflop, trainGFLOPS: gflop / med, peakRSS: ProcessMemory.peakRSSMiB,
            parameters: model.params.parameterCount, lossFirstLast: (losses.first ?? .nan, losses.last ?? .nan),
            batch: B, sourceLength: S, targetLength: T, blasCore: BLAS.coreName,
            forwardSeconds: median(fwd), backwardSeconds: median(bwd), optimizerSeconds: median(upd),
            trainOpMilliseconds: families.mapValues { $0 * 1000 / Double(max(1, steps)) })
    }

    /// Random sources over the whole vocabulary and random digit docids, as the PyTorch
    /// twin trains on.
    public static func randomBatch(B: Int, S: Int, T: Int, config c: ModelConfig, rng: inout SeededRNG) -> Seq2SeqBatch {
        let source = (0..<(B * S)).map { _ in Int32(3 + rng.int(below: c.sourceVocab - 3)) }
        var tin = [Int32](repeating: 0, count: B * T)
        var tout = tin
        for b in 0..<B {
            let digits = (0..<T).map { _ in Int32(3 + rng.int(below: min(10, c.targetVocab - 3))) }
            for t in 0..<T {
                tout[b * T + t] = t == T - 1 ? 2 : digits[t]
                tin[b * T + t] = t == 0 ? 1 : digits[t - 1]
            }
        }
        return Seq2SeqBatch(
            B: B, S: S, T: T, source: source, sourceMask: [Float](repeating: 1, count: B * S), targetIn: tin, targetOut: tout)
    }
}

func median(_ xs: [Double]) -> Double {
    let s = xs.sorted()
    if s.isEmpty { return .nan }
    return s.count % 2 == 1 ? s[s.count / 2] : 0.5 * (s[s.count / 2 - 1] + s[s.count / 2])
}
