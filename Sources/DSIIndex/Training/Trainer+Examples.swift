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

    /// The examples of one epoch, shuffled: per document its leading tokens, its title,
    /// `spansPerDocument` random spans, its key terms and `sentencesPerDocument` random
    /// sentences; each train query `queryRepeats` times.
    public func examples(epoch: Int) -> [TrainingExample] {
        var rng = SeededRNG(seed: options.seed &+ 0x5EED &+ UInt64(epoch) &* 0x9E37_79B9_7F4A_7C15)
        let L = options.viewLength
        var out: [TrainingExample] = []
        for d in corpus.documents.indices {
            let text = textTokens[d]
            let title = titleTokens[d]
            if !title.isEmpty || !text.isEmpty {
                out.append(TrainingExample(source: Array((title.prefix(L) + text.prefix(max(0, L - title.count))).prefix(L)), document: d))
            }
            if !titleTokens[d].isEmpty { out.append(TrainingExample(source: Array(titleTokens[d].prefix(L)), document: d)) }
            for _ in 0..<options.spansPerDocument where text.count > L {
                let start = rng.int(below: text.count - L + 1)
                out.append(TrainingExample(source: dropWords(Array(text[start..<(start + L)]), rng: &rng), document: d))
            }
            if !keyTermTokens[d].isEmpty { out.append(TrainingExample(source: keyTermTokens[d], document: d)) }
            let starts = sentenceStarts[d]
            if options.sentencesPerDocument > 0 && !starts.isEmpty {
                var order = Array(starts.indices)
                for k in 0..<min(options.sentencesPerDocument, order.count) {
                    order.swapAt(k, k + rng.int(below: order.count - k))
                    let i = order[k]
                    let lo = Int(starts[i])
                    let hi = i + 1 < starts.count ? Int(starts[i + 1]) : text.count
                    out.append(TrainingExample(source: dropWords(Array(text[lo..<min(hi, lo + L)]), rng: &rng), document: d))
                }
            }
        }
        for _ in 0..<options.queryRepeats {
            for (s, (_, d)) in zip(trainPairTokens, trainPairs) where !s.isEmpty {
                out.append(TrainingExample(source: s, document: d))
            }
        }
        if options.docids == .ngrams {
            for i in out.indices { out[i].target = ngramTarget(out[i].document, rng: &rng) }
        }
        out.shuffle(using: &rng)
        return out
    }

    /// An n-gram target for document `d` (`--docids ngrams`, after SEAL's unsupervised
    /// pairs): `TrainingOptions.ngramLength` tokens of its title and text from a random
    /// word start (fewer at the end), as decoder tokens.
    func ngramTarget(_ d: Int, rng: inout SeededRNG) -> [Int32] {
        let full = fullTokens(d)
        let starts = full.indices.filter { wordStart[Int(full[$0])] }
        guard !starts.isEmpty else { return [] }
        let s = starts[rng.int(below: starts.count)]
        return full[s..<min(full.count, s + TrainingOptions.ngramLength)].map { $0 + TargetVocabulary.offset }
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

    /// An epoch's batches: shuffled examples, bucketed by length within windows of 32
    /// batches (less padding), the batch order shuffled again.
    func batches(epoch: Int, vocabulary: TargetVocabulary, config: ModelConfig) -> [Seq2SeqBatch] {
        var rng = SeededRNG(seed: options.seed &+ 0xBA7C &+ UInt64(epoch) &* 0x9E37_79B9_7F4A_7C15)
        let ex = examples(epoch: epoch)
        let B = options.batchSize
        let window = B * 32
        var groups: [[TrainingExample]] = []
        var i = 0
        while i < ex.count {
            let chunk = ex[i..<min(ex.count, i + window)].sorted { $0.source.count < $1.source.count }
            var j = 0
            while j < chunk.count {
                groups.append(Array(chunk[j..<min(chunk.count, j + B)]))
                j += B
            }
            i += window
        }
        groups.shuffle(using: &rng)
        return groups.map { Self.makeBatch($0, vocabulary: vocabulary, config: config) }
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
