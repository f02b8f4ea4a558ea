import DSIModel
import DSITensor
import DSIText

/// The examples and batches of an epoch, and the views `dsi add` rehearses.
extension Trainer {
    /// The views `dsi add` rehearses: per document its leading tokens, title, key terms
    /// and one span (drawn from the seed), and every labelled train query (not dev).
    public func replayMemory() -> ReplayMemory {
        var rng = SeededRNG(seed: options.seed &+ 0x4E_4D)
        let L = options.viewLength
        var memory = ReplayMemory()
        for d in corpus.documents.indices {
            let text = textTokens[d]
            let span =
                text.count > L
                ? {
                    let s = rng.int(below: text.count - L + 1)
                    return Array(text[s..<(s + L)])
                }() : nil
            memory.remember(document: d, full: fullTokens(d), title: titleTokens[d], terms: keyTermTokens[d], span: span, viewLength: L)
        }
        for (s, (_, d)) in zip(trainPairTokens, trainPairs) where !s.isEmpty {
            memory.views.append(.init(document: d, kind: .query, tokens: s))
        }
        return memory
    }

    // MARK: - Training data

    /// One example of an epoch by reference into the trainer's token lists: which view
    /// of which document (and where), not its tokens. An epoch at a million documents is
    /// six million examples; as references they take 32 bytes each, where their tokens
    /// and padded batches took gigabytes (`EpochBatches`).
    struct ExampleRef: Sendable, Equatable {
        enum Kind: UInt8, Sendable { case lead, title, span, keyTerms, sentence, query }
        var document: Int32
        var kind: Kind
        /// Span and sentence: where the view starts in the text; query: the pair's index.
        var start: Int32 = 0
        /// Span and sentence: where the view ends in the text.
        var end: Int32 = 0
        /// The seed of this view's word dropout (0: none drawn).
        var dropSeed: UInt64 = 0
        /// -1: the document's docid; -2: an empty target; otherwise (`ngrams`) where the
        /// n-gram starts in the document's whole token list.
        var target: Int32 = -1
        /// Source tokens (for bucketing batches by length).
        var length: Int32 = 0
    }

    /// The example `r` refers to, its tokens made now.
    func example(_ r: ExampleRef) -> TrainingExample {
        let d = Int(r.document)
        let L = options.viewLength
        let source: [Int32]
        switch r.kind {
        case .lead:
            let (title, text) = (titleTokens[d], textTokens[d])
            source = Array((title.prefix(L) + text.prefix(max(0, L - title.count))).prefix(L))
        case .title: source = Array(titleTokens[d].prefix(L))
        case .keyTerms: source = keyTermTokens[d]
        case .span, .sentence:
            let view = Array(textTokens[d][Int(r.start)..<Int(r.end)])
            if r.dropSeed == 0 {
                source = view
            } else {
                var rng = SeededRNG(seed: r.dropSeed)
                source = dropWords(view, rng: &rng)
            }
        case .query: source = trainPairTokens[Int(r.start)]
        }
        var target: [Int32]? = nil
        if r.target == -2 {
            target = []
        } else if r.target >= 0 {
            let full = fullTokens(d)
            let s = Int(r.target)
            target = full[s..<min(full.count, s + TrainingOptions.ngramLength)].map { $0 + TargetVocabulary.offset }
        }
        return TrainingExample(source: source, document: d, target: target)
    }

    /// The examples of one epoch, shuffled: per document its leading tokens, its title,
    /// `spansPerDocument` random spans, its key terms and `sentencesPerDocument` random
    /// sentences; each train query `queryRepeats` times.
    public func examples(epoch: Int) -> [TrainingExample] { exampleRefs(epoch: epoch).map(example) }

    /// `examples(epoch:)` as references, drawn in the same order from the same stream.
    func exampleRefs(epoch: Int) -> [ExampleRef] {
        var rng = SeededRNG(seed: options.seed &+ 0x5EED &+ UInt64(epoch) &* 0x9E37_79B9_7F4A_7C15)
        let L = options.viewLength
        let dropping = options.viewWordDropout > 0
        var out: [ExampleRef] = []
        out.reserveCapacity(examplesPerEpoch)
        func view(_ d: Int, _ kind: ExampleRef.Kind, _ lo: Int, _ hi: Int, rng: inout SeededRNG) -> ExampleRef {
            var r = ExampleRef(document: Int32(d), kind: kind, start: Int32(lo), end: Int32(hi))
            if dropping {
                r.dropSeed = rng.next() | 1
                var sub = SeededRNG(seed: r.dropSeed)
                r.length = Int32(dropWords(Array(textTokens[d][lo..<hi]), rng: &sub).count)
            } else {
                r.length = Int32(hi - lo)
            }
            return r
        }
        for d in corpus.documents.indices {
            let text = textTokens[d]
            let title = titleTokens[d]
            if !title.isEmpty || !text.isEmpty {
                out.append(ExampleRef(document: Int32(d), kind: .lead, length: Int32(min(L, title.count + text.count))))
            }
            if !title.isEmpty { out.append(ExampleRef(document: Int32(d), kind: .title, length: Int32(min(L, title.count)))) }
            for _ in 0..<options.spansPerDocument where text.count > L {
                let start = rng.int(below: text.count - L + 1)
                out.append(view(d, .span, start, start + L, rng: &rng))
            }
            if !keyTermTokens[d].isEmpty {
                out.append(ExampleRef(document: Int32(d), kind: .keyTerms, length: Int32(keyTermTokens[d].count)))
            }
            let starts = sentenceStarts[d]
            if options.sentencesPerDocument > 0 && !starts.isEmpty {
                var order = Array(starts.indices)
                for k in 0..<min(options.sentencesPerDocument, order.count) {
                    order.swapAt(k, k + rng.int(below: order.count - k))
                    let i = order[k]
                    let lo = Int(starts[i])
                    let hi = i + 1 < starts.count ? Int(starts[i + 1]) : text.count
                    out.append(view(d, .sentence, lo, min(hi, lo + L), rng: &rng))
                }
            }
        }
        for _ in 0..<options.queryRepeats {
            for (i, (s, (_, d))) in zip(trainPairTokens, trainPairs).enumerated() where !s.isEmpty {
                out.append(ExampleRef(document: Int32(d), kind: .query, start: Int32(i), length: Int32(s.count)))
            }
        }
        if options.docids == .ngrams {
            for i in out.indices { out[i].target = ngramTargetStart(Int(out[i].document), rng: &rng) }
        }
        out.shuffle(using: &rng)
        return out
    }

    /// Where an n-gram target for document `d` starts (`--docids ngrams`, after SEAL's
    /// unsupervised pairs): a random word start of its title and text; the target is
    /// `TrainingOptions.ngramLength` tokens from there (fewer at the end). -2 (an empty
    /// target) when the document has no word.
    func ngramTargetStart(_ d: Int, rng: inout SeededRNG) -> Int32 {
        let full = fullTokens(d)
        let starts = full.indices.filter { wordStart[Int(full[$0])] }
        guard !starts.isEmpty else { return -2 }
        return Int32(starts[rng.int(below: starts.count)])
    }

    /// `tokens` without a random `viewWordDropout` share of its words (a word: a token
    /// that starts one and the tokens that continue it); never all of them. Draws nothing
    /// when the option is 0.
    public func dropWords(_ tokens: [Int32], rng: inout SeededRNG) -> [Int32] {
        let p = options.viewWordDropout
        guard p > 0 else { return tokens }
        var out: [Int32] = []
        out.reserveCapacity(tokens.count)
        var keep = true
        for t in tokens {
            if wordStart[Int(t)] { keep = Double(rng.uniform()) >= p }
            if keep { out.append(t) }
        }
        return out.isEmpty ? tokens : out
    }

    /// An epoch's batches, made one at a time when asked for: shuffled examples,
    /// bucketed by length within windows of 32 batches (less padding), the batch order
    /// shuffled again. It holds the examples as references and the batch plan as index
    /// ranges, so an epoch costs tens of bytes per example, not its padded batches.
    public struct EpochBatches: Sendable, Equatable {
        let refs: [ExampleRef]
        /// Indices into `refs`, in batch order within each window.
        let order: [Int32]
        /// Each batch's first position in `order` and its size, in the epoch's batch order.
        let batchStart: [Int32]
        let batchSize: [Int32]

        public var count: Int { batchStart.count }

        /// The examples of batch `i`.
        func examples(_ i: Int) -> ArraySlice<Int32> {
            let s = Int(batchStart[i])
            return order[s..<(s + Int(batchSize[i]))]
        }
    }

    /// The batch plan of epoch `epoch` (see `EpochBatches`).
    public func epochBatches(_ epoch: Int) -> EpochBatches {
        var rng = SeededRNG(seed: options.seed &+ 0xBA7C &+ UInt64(epoch) &* 0x9E37_79B9_7F4A_7C15)
        let refs = exampleRefs(epoch: epoch)
        let B = options.batchSize
        let window = B * 32
        var order: [Int32] = []
        order.reserveCapacity(refs.count)
        var groups: [(Int32, Int32)] = []
        var i = 0
        while i < refs.count {
            let chunk = (i..<min(refs.count, i + window)).sorted { refs[$0].length < refs[$1].length }
            var j = 0
            while j < chunk.count {
                let n = min(B, chunk.count - j)
                groups.append((Int32(order.count), Int32(n)))
                order += chunk[j..<(j + n)].map(Int32.init)
                j += B
            }
            i += window
        }
        groups.shuffle(using: &rng)
        return EpochBatches(refs: refs, order: order, batchStart: groups.map(\.0), batchSize: groups.map(\.1))
    }

    /// The examples of batch `i` of an epoch's plan, their tokens made now.
    public func examples(inBatch i: Int, of plan: EpochBatches) -> [TrainingExample] {
        plan.examples(i).map { example(plan.refs[Int($0)]) }
    }

    /// Batch `i` of an epoch's plan, made now.
    public func batch(_ i: Int, of plan: EpochBatches, vocabulary: TargetVocabulary, config: ModelConfig) -> Seq2SeqBatch {
        Self.makeBatch(examples(inBatch: i, of: plan), vocabulary: vocabulary, config: config)
    }

    /// One batch of examples: sources padded to the longest, targets their docids' tokens + EOS.
    public static func makeBatch(_ ex: [TrainingExample], vocabulary: TargetVocabulary, config: ModelConfig) -> Seq2SeqBatch {
        let B = ex.count
        let S = max(1, min(config.sourceLength, ex.map(\.source.count).max() ?? 1))
        let T = config.targetLength
        var src = [Int32](repeating: Tokenizer.pad, count: B * S)
        var mask = [Float](repeating: 0, count: B * S)
        var tin = [Int32](repeating: TargetVocabulary.pad, count: B * T)
        var tout = [Int32](repeating: Seq2Seq.ignoreIndex, count: B * T)
        for (b, e) in ex.enumerated() {
            for (i, t) in e.source.prefix(S).enumerated() {
                src[b * S + i] = t
                mask[b * S + i] = 1
            }
            let target = e.target ?? vocabulary.target(e.document)
            for (i, t) in target.enumerated() where i < T {
                tout[b * T + i] = t
                tin[b * T + i] = i == 0 ? TargetVocabulary.bos : target[i - 1]
            }
        }
        return Seq2SeqBatch(B: B, S: S, T: T, source: src, sourceMask: mask, targetIn: tin, targetOut: tout)
    }
}
