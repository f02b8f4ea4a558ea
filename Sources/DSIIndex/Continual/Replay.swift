import DSIModel
import DSITensor

extension ContinualIndexer {
    /// Replay mode (DSI++): fine-tunes the whole model with the one `TrainingLoop` on the
    /// new documents' views (spans redrawn each epoch, labelled queries twice) mixed with
    /// `replayRatio` times as many views and queries of old documents from the replay
    /// memory. Returns the steps taken.
    static func replay(
        model: Seq2Seq, optimizer: inout AdamW, vocabulary: TargetVocabulary, trie: DocIDTrie, news: inout [NewDocument], firstNew D0: Int,
        memory: ReplayMemory, trained opts: TrainingOptions, options: AddOptions, log: (String) -> Void
    ) throws -> Int {
        let L = opts.viewLength
        let newPerEpoch = news.reduce(0) { $0 + $1.views(viewLength: L).count + $1.queries.count }
        let oldPerEpoch = memory.views.isEmpty ? 0 : Int((Double(newPerEpoch) * options.replayRatio).rounded())
        let perEpoch = newPerEpoch + oldPerEpoch
        let total = max(options.minimumSteps, 1, Int((options.epochs * Double(perEpoch) / Double(options.batchSize)).rounded(.up)))
        let schedule = LearningRateSchedule(peak: options.learningRate ?? opts.effectiveLearningRate / 2, warmupFraction: 0.05)
        let loop = TrainingLoop(
            model: model, optimizer: optimizer, step: 0, schedule: schedule, labelSmoothing: opts.labelSmoothing,
            dropoutSeed: options.seed &+ 0xD1)
        if opts.objective == .trie {
            loop.candidates = TrieCandidates(trie: trie, maxCandidates: opts.sampledCandidates, seed: options.seed &+ 0xD1)
        }
        log("replay: \(total) steps (\(newPerEpoch) new and \(oldPerEpoch) replayed examples per epoch), peak lr \(schedule.peak)")
        var batches: [Seq2SeqBatch] = []
        var epoch = 0
        func batch(_ step: Int) -> Seq2SeqBatch {
            if batches.isEmpty {
                var rng = SeededRNG(seed: options.seed &+ 0xE0 &+ UInt64(epoch) &* 0x9E37_79B9_7F4A_7C15)
                if epoch > 0 { NewDocument.drawSpans(&news, count: options.spansPerDocument, viewLength: L, rng: &rng) }
                var ex: [TrainingExample] = []
                for (i, n) in news.enumerated() {
                    for v in n.views(viewLength: L) { ex.append(TrainingExample(source: v, document: D0 + i)) }
                    for q in n.queries { ex.append(TrainingExample(source: q, document: D0 + i)) }  // queries twice, as in training
                }
                for _ in 0..<oldPerEpoch {
                    let v = memory.views[rng.int(below: memory.views.count)]
                    ex.append(TrainingExample(source: v.tokens, document: v.document))
                }
                ex.shuffle(using: &rng)
                batches = stride(from: 0, to: ex.count, by: options.batchSize).map {
                    Trainer.makeBatch(Array(ex[$0..<min(ex.count, $0 + options.batchSize)]), vocabulary: vocabulary, config: model.config)
                }
                batches.reverse()
                epoch += 1
            }
            return batches.removeLast()
        }
        try loop.run(
            done: { loop.step >= total }, progress: { Double(loop.step) / Double(total) }, batch: batch,
            after: { r in
                if loop.step % 50 == 0 || loop.step == total {
                    log(String(format: "replay step %d/%d  loss %.4f", loop.step, total, r.loss))
                }
            })
        optimizer = loop.optimizer
        return loop.step
    }
}
