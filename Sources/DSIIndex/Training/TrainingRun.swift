import Foundation

/// `dsi train` from a corpus directory: where the checkpoint goes, whether it may be
/// replaced, and the resume policy.
public enum TrainingRun {
    public struct Refusal: Error, CustomStringConvertible {
        public let description: String
    }

    /// The checkpoint directory for a corpus when `--output` is not given.
    public static func defaultOutput(corpus: String) -> String {
        "Checkpoints/" + URL(fileURLWithPath: corpus).standardizedFileURL.lastPathComponent
    }

    /// A trainer and the index it trains. Before any work, `output` must be replaceable
    /// (`Checkpoint.checkReplaceable`). Resuming continues the checkpoint at `output`: it
    /// must come from the same corpus.jsonl (by fingerprint) and the same options; its
    /// tokenizer, docids and LSA are reused, not rebuilt. With `automaticDocIDs` the
    /// scheme is `DocIDScheme.automatic` for the corpus's size (and said so in the log).
    public static func prepare(
        corpus directory: String, options: TrainingOptions, automaticDocIDs: Bool = false, output: String, resume: Bool,
        log: @escaping (String) -> Void = { _ in }
    ) throws -> (Trainer, TrainedIndex) {
        try Checkpoint.checkReplaceable(output)
        let corpus = try Corpus(directory: directory)
        var options = options
        if automaticDocIDs && !resume {
            options.docids = .automatic(documents: corpus.documents.count)
            log(
                "docids: \(options.docids.rawValue) (chosen for \(corpus.documents.count) documents: atomic up to \(DocIDScheme.atomicLimit), semantic above; --docids to choose)"
            )
        }
        guard let fingerprint = SHA256Digest.hex(file: (directory as NSString).appendingPathComponent("corpus.jsonl")) else {
            throw InputError(file: (directory as NSString).appendingPathComponent("corpus.jsonl"), line: 0, "cannot be read")
        }
        guard resume else {
            let trainer = try Trainer(corpus: corpus, options: options, log: log)
            return (trainer, try trainer.makeIndex(corpusFingerprint: fingerprint))
        }
        // The checks and the training data first, the weights and optimizer state last:
        // the trainer's temporaries are freed before the largest files are read, so the
        // two do not add up in the peak resident set.
        let header = try TrainedIndex.header(from: output)
        if automaticDocIDs {
            // Resuming without --docids continues the checkpoint's scheme, whatever the
            // size rule would choose now.
            options.docids = header.options.docids
            log("docids: \(options.docids.rawValue) (the checkpoint's)")
        }
        guard header.corpusFingerprint == fingerprint else {
            throw Refusal(description: "\(output) was trained on another corpus.jsonl (fingerprint differs); train afresh without --resume")
        }
        guard header.options == options else {
            throw Refusal(
                description:
                    "\(output) was trained with other options (\(differences(header.options, options).joined(separator: ", "))); pass the same ones to --resume"
            )
        }
        let trainer = try Trainer(corpus: corpus, options: options, tokenizer: header.tokenizer, fitLSA: false, log: log)
        let index = try TrainedIndex.load(from: output, for: .resume)
        guard index.corpusFingerprint == fingerprint && index.options == options && index.tokenizer.vocab == header.tokenizer.vocab else {
            throw Refusal(description: "\(output) changed while it was being loaded; try again")
        }
        log("resuming \(output) at step \(index.step)")
        return (trainer, index)
    }

    /// "name: checkpoint's value, not given value" for every option that differs.
    static func differences(_ a: TrainingOptions, _ b: TrainingOptions) -> [String] {
        let enc = JSONEncoder()
        guard let ja = try? JSONSerialization.jsonObject(with: enc.encode(a)) as? [String: Any],
            let jb = try? JSONSerialization.jsonObject(with: enc.encode(b)) as? [String: Any]
        else { return [] }
        return Set(ja.keys).union(jb.keys).sorted().compactMap { k in
            let x = ja[k].map { "\($0)" } ?? "default"
            let y = jb[k].map { "\($0)" } ?? "default"
            return x == y ? nil : "\(k): \(x) in the checkpoint, \(y) now"
        }
    }
}
