import DSITensor

public struct StepResult: Sendable {
    public var loss: Float
    public var gradNorm: Float
    public var learningRate: Float
}

extension Seq2Seq {
    /// One optimisation step: zero the gradients, forward, backward, clip by global norm
    /// (`clipNorm`, none when nil), AdamW update at rate `lr`. A non-finite loss or
    /// gradient norm throws `ModelError.nonFinite` before anything is updated, so a
    /// diverged step never reaches the weights.
    @discardableResult
    public func trainStep(
        _ batch: Seq2SeqBatch, workspace: Workspace, optimizer: inout AdamW, lr: Float,
        clipNorm: Float? = 1, smoothing: Float = 0, rng: inout SeededRNG
    ) throws(ModelError) -> StepResult {
        params.zeroGrads()
        let loss = try forward(batch, workspace: workspace, smoothing: smoothing, training: true, rng: &rng)
        backward(workspace: workspace)
        let norm = params.gradNorm()
        guard loss.isFinite, norm.isFinite else { throw .nonFinite(loss: loss, gradNorm: norm) }
        var scale: Float = 1
        if let clipNorm, norm > clipNorm { scale = clipNorm / norm }
        optimizer.update(params, lr: lr, gradScale: scale)
        return StepResult(loss: loss, gradNorm: norm, learningRate: lr)
    }
}
