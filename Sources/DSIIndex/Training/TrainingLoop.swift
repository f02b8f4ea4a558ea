import DSIModel
import DSITensor

/// Training stopped because a step's loss or gradient norm was not finite. The step was
/// not applied; nothing was written after it.
public struct TrainingDiverged: Error, CustomStringConvertible {
    public let step: Int
    public let loss: Float
    public let gradNorm: Float
    /// The last checkpoint written by this run (step, path), which stays as it was.
    public var lastCheckpoint: (step: Int, path: String)?

    public var description: String {
        let kept =
            lastCheckpoint.map { "the last checkpoint (step \($0.step), \($0.path)) is unchanged" }
            ?? "no checkpoint was written by this run"
        return
            "training diverged at step \(step): loss \(loss), gradient norm \(gradNorm); stopped before applying it, \(kept). Lower the learning rate (--lr) and train again."
    }
}

/// The one training loop: `dsi train` (`Trainer.train`) and `dsi add`'s replay both run
/// it. Step s draws its dropout masks from (dropoutSeed, s), so a resumed run continues
/// exactly as an uninterrupted one would; the rate comes from the one
/// `LearningRateSchedule`; a non-finite step stops the run (`TrainingDiverged`).
///
/// With a `collective` (data-parallel training under `mpirun`), every rank runs this loop
/// on the same global batches: each trains on its share and the gradients are summed
/// (`Seq2Seq.trainStep(_:collective:...)`); rank 0's `done()` and `progress()` are
/// broadcast at each step, so a wall-clock budget ends every rank at the same step with
/// the same learning rates; every `checkEvery` steps the ranks compare checksums of
/// their weights and stop with `RanksDiverged` if they differ.
public final class TrainingLoop {
    public let model: Seq2Seq
    public let schedule: LearningRateSchedule
    public let labelSmoothing: Float
    public let dropoutSeed: UInt64
    public var clipNorm: Float = 1
    /// Candidate sets for the trie objective (nil: softmax over the whole vocabulary).
    public var candidates: TrieCandidates?
    /// The ranks of a data-parallel run (nil: this process alone).
    public var collective: Collective?
    /// Steps between weight checksum comparisons in a data-parallel run.
    public var checkEvery = 100
    /// Time and bytes spent exchanging gradients so far (data-parallel runs).
    public private(set) var exchange = ExchangeStats()
    /// Completed steps and the optimizer state after them.
    public private(set) var step: Int
    public private(set) var optimizer: AdamW
    let workspace = Workspace()

    public init(model: Seq2Seq, optimizer: AdamW, step: Int, schedule: LearningRateSchedule, labelSmoothing: Float, dropoutSeed: UInt64) {
        self.model = model
        self.optimizer = optimizer
        self.step = step
        self.schedule = schedule
        self.labelSmoothing = labelSmoothing
        self.dropoutSeed = dropoutSeed
    }

    /// Runs steps while `done()` is false: step `step` trains on `batch(step)` at the
    /// rate for `progress()`, then `step` advances and `after(result)` runs (where callers
    /// log, evaluate and write checkpoints).
    public func run(done: () -> Bool, progress: () -> Double, batch: (Int) -> Seq2SeqBatch, after: (StepResult) throws -> Void) throws {
        if let c = collective { try checkWeights(c) }
        while true {
            var state = [done() ? 1.0 : 0.0, progress()]
            if let c = collective { try state.withUnsafeMutableBufferPointer { try c.broadcast($0.baseAddress!, count: 2, root: 0) } }
            if state[0] != 0 { break }
            var b = batch(step)
            if let candidates { b.candidates = candidates.candidates(for: b, step: step) }
            var rng = SeededRNG(seed: dropoutSeed &+ UInt64(step) &* 0x9E37_79B9_7F4A_7C15)
            let lr = schedule.rate(progress: state[1])
            let result: StepResult
            do {
                if let c = collective {
                    result = try model.trainStep(
                        b, collective: c, workspace: workspace, optimizer: &optimizer, lr: lr, clipNorm: clipNorm,
                        smoothing: labelSmoothing,
                        rng: &rng, stats: &exchange)
                } else {
                    result = try model.trainStep(
                        b, workspace: workspace, optimizer: &optimizer, lr: lr, clipNorm: clipNorm, smoothing: labelSmoothing, rng: &rng)
                }
            } catch let ModelError.nonFinite(loss, gradNorm) {
                throw TrainingDiverged(step: step + 1, loss: loss, gradNorm: gradNorm)
            }
            step += 1
            if let c = collective, step % checkEvery == 0 { try checkWeights(c) }
            try after(result)
        }
        if let c = collective { try checkWeights(c) }
    }

    /// Compares a checksum of the weights across ranks; throws `RanksDiverged` if any differ.
    func checkWeights(_ c: Collective) throws {
        let (lo, hi) = try c.allreduceMinMax(model.params.valuesChecksum())
        if lo != hi { throw RanksDiverged(step: step, ranks: c.size) }
    }
}
