import DSITensor

/// A toy sequence task that shows the encoder-decoder learning end to end: copy or
/// reverse a string of 1…L random digits. Tokens: PAD 0, BOS 1, EOS 2, digit d → 3 + d.
public struct ToyTask: Sendable {
    public enum Kind: String, Sendable, CaseIterable { case copy, reverse }
    public static let pad: Int32 = 0, bos: Int32 = 1, eos: Int32 = 2, vocab = 13

    public var kind: Kind
    public var maxDigits: Int
    public var minDigits: Int

    public init(kind: Kind, maxDigits: Int = 8, minDigits: Int = 1) {
        precondition(1 <= minDigits && minDigits <= maxDigits)
        self.kind = kind
        self.maxDigits = maxDigits
        self.minDigits = minDigits
    }

    /// A small model sized for the task.
    public func modelConfig(dModel: Int = 64, heads: Int = 4, ff: Int = 128, layers: Int = 2) -> ModelConfig {
        ModelConfig(
            dModel: dModel, heads: heads, ff: ff, encoderLayers: layers, decoderLayers: layers,
            sourceVocab: Self.vocab, sourceLength: maxDigits, targetVocab: Self.vocab, targetLength: maxDigits + 1)
    }

    public func sample(_ rng: inout SeededRNG) -> (source: [Int32], target: [Int32]) {
        let n = minDigits + rng.int(below: maxDigits - minDigits + 1)
        let src = (0..<n).map { _ in Int32(3 + rng.int(below: 10)) }
        let body = kind == .copy ? src : Array(src.reversed())
        return (src, body + [Self.eos])
    }

    /// A padded batch of `size` fresh examples.
    public func batch(size B: Int, rng: inout SeededRNG) -> Seq2SeqBatch {
        let S = maxDigits
        let T = maxDigits + 1
        var source = [Int32](repeating: Self.pad, count: B * S)
        var mask = [Float](repeating: 0, count: B * S)
        var tin = [Int32](repeating: Self.pad, count: B * T)
        var tout = [Int32](repeating: Seq2Seq.ignoreIndex, count: B * T)
        for b in 0..<B {
            let (s, t) = sample(&rng)
            for (i, tok) in s.enumerated() {
                source[b * S + i] = tok
                mask[b * S + i] = 1
            }
            for (i, tok) in t.enumerated() {
                tout[b * T + i] = tok
                tin[b * T + i] = i == 0 ? Self.bos : t[i - 1]
            }
        }
        return Seq2SeqBatch(B: B, S: S, T: T, source: source, sourceMask: mask, targetIn: tin, targetOut: tout)
    }

    /// Exact-match accuracy of greedy decoding (through the KV cache) on `count` fresh
    /// examples drawn from `seed`.
    public func accuracy(of model: Seq2Seq, count: Int = 256, seed: UInt64 = 12345) throws(ModelError) -> Double {
        var rng = SeededRNG(seed: seed)
        let batch = batch(size: count, rng: &rng)
        let state = try model.beginDecoding(source: batch.source, sourceMask: batch.sourceMask, queries: count, sourceLength: batch.S)
        let out = model.greedyDecode(state, bos: Self.bos, steps: batch.T)
        var correct = 0
        for b in 0..<count {
            let want = (0..<batch.T).map { batch.targetOut[b * batch.T + $0] }.filter { $0 != Seq2Seq.ignoreIndex }
            let got = Array(out[b].prefix(want.count))
            if got == want { correct += 1 }
        }
        return Double(correct) / Double(count)
    }

    public struct Report: Sendable, Codable {
        public var task: String
        public var steps: Int
        public var seconds: Double
        public var finalLoss: Float
        public var accuracy: Double
        public var parameters: Int
    }

    /// Trains `model` on fresh batches for `steps` steps (warm-up then cosine decay).
    /// `progress` is called every `every` steps with (step, loss).
    public func train(
        _ model: Seq2Seq, steps: Int, batchSize: Int = 64, lr: Float = 3e-3, seed: UInt64 = 1,
        every: Int = 50, progress: ((Int, Float) -> Void)? = nil
    ) throws(ModelError) -> Report {
        var rng = SeededRNG(seed: seed)
        var opt = AdamW(weightDecay: 0.01)
        let schedule = LearningRateSchedule(peak: lr, warmupFraction: 0.05)
        let ws = Workspace()
        let clock = ContinuousClock()
        let start = clock.now
        var loss: Float = .nan
        for step in 0..<steps {
            let batch = batch(size: batchSize, rng: &rng)
            loss = try model.trainStep(batch, workspace: ws, optimizer: &opt, lr: schedule.rate(step: step, of: steps), rng: &rng).loss
            if let progress, (step + 1) % every == 0 || step + 1 == steps { progress(step + 1, loss) }
        }
        let seconds = (clock.now - start).seconds
        return Report(
            task: kind.rawValue, steps: steps, seconds: seconds, finalLoss: loss,
            accuracy: try accuracy(of: model), parameters: model.params.parameterCount)
    }
}

extension Duration {
    public var seconds: Double {
        let c = components
        return Double(c.seconds) + Double(c.attoseconds) * 1e-18
    }
}
