/// Growing a model's decoder vocabulary (continual indexing adds docid tokens).
extension Seq2Seq {
    /// A copy of this model whose target vocabulary is `targetVocab` tokens and target
    /// length at least `targetLength`: every existing parameter and AdamW moment is
    /// copied (or, for weights mapped from page-aligned files, mapped again at the new
    /// offsets); the new rows of the target embedding, position table and output head
    /// are zero. Shrinking is refused.
    public func grown(targetVocab: Int, targetLength: Int) throws(ModelError) -> Seq2Seq {
        guard targetVocab >= config.targetVocab else {
            throw .invalidConfig(
                field: "targetVocab", expected: "at least the current \(config.targetVocab) when growing, got \(targetVocab)")
        }
        var c = config
        c.targetVocab = targetVocab
        c.targetLength = max(config.targetLength, targetLength)
        let new = try Seq2Seq(config: c)
        // Weights mapped from page-aligned files: the grown model maps the same pages at
        // its own offsets and leaves the new rows zero (nothing is copied; writing a new
        // row copies only its page).
        if let files = weightFiles, !params.holdsTrainingState {
            do {
                if try new.useWeightFiles(files, map: true, partial: true) {
                    // Its new rows are its own memory now: growing it again copies.
                    new.weightFiles = nil
                    return new
                }
            } catch {
                preconditionFailure("the weight files this model was mapped from no longer map: \(error)")
            }
        }
        for e in new.params.entries {
            guard let o = params.entry(e.name) else { continue }
            // Rows grow; the columns (and every 1-D shape but a bias over rows) stay.
            precondition(
                o.shape.count == e.shape.count && (e.shape.count == 1 || o.shape[1] == e.shape[1]), "\(e.name): \(o.shape) → \(e.shape)")
            let n = min(o.count, e.count)
            // Moments only where this model holds them: a model loaded without its
            // optimizer state (a fast add, whose moments stay on disk) grows none.
            let pairs =
                [(params.values, new.params.values)] + (params.holdsMoments ? [(params.m, new.params.m), (params.v, new.params.v)] : [])
            for (src, dst) in pairs {
                (dst.data + e.offset).update(from: src.data + o.offset, count: n)
            }
        }
        return new
    }
}
