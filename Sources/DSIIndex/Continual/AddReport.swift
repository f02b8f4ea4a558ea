import Foundation

/// What `dsi add` reports (`--json` prints it; keys are stable). Self-retrieval figures
/// that were not measured (`--sample 0`, or nothing to sample) are null.
public struct AddReport: Sendable, Codable, Equatable {
    public var added: Int
    /// Documents indexed after the add.
    public var documents: Int
    public var seconds: Double
    public var mode: AddMode
    public var generation: Int
    public var steps: Int
    public var fitSeconds: Double
    public var newSelfHits1: Double?
    public var newSelfHits10: Double?
    public var oldSelfHits10Before: Double?
    public var oldSelfHits10After: Double?
    public var sampledOld: Int
    public var sampledNew: Int
    /// Qrels rows of `--qrels` naming documents that are not being added.
    public var skippedQrels: Int = 0

    public var msPerDocument: Double { added == 0 ? 0 : 1000 * seconds / Double(added) }

    enum CodingKeys: String, CodingKey {
        case added, documents, seconds, mode, generation, steps
        case fitSeconds = "fit_seconds"
        case msPerDocument = "ms_per_document"
        case newSelfHits1 = "new_self_hits@1"
        case newSelfHits10 = "new_self_hits@10"
        case oldSelfHits10Before = "old_self_hits@10_before"
        case oldSelfHits10After = "old_self_hits@10_after"
        case sampledOld = "sampled_old"
        case sampledNew = "sampled_new"
        case skippedQrels = "skipped_qrels"
    }

    public init(added: Int, documents: Int, seconds: Double, mode: AddMode, generation: Int, steps: Int, fitSeconds: Double) {
        self.added = added
        self.documents = documents
        self.seconds = seconds
        self.mode = mode
        self.generation = generation
        self.steps = steps
        self.fitSeconds = fitSeconds
        sampledOld = 0
        sampledNew = 0
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        added = try c.decode(Int.self, forKey: .added)
        documents = try c.decode(Int.self, forKey: .documents)
        seconds = try c.decode(Double.self, forKey: .seconds)
        mode = try c.decode(AddMode.self, forKey: .mode)
        generation = try c.decode(Int.self, forKey: .generation)
        steps = try c.decode(Int.self, forKey: .steps)
        fitSeconds = try c.decode(Double.self, forKey: .fitSeconds)
        newSelfHits1 = try c.decodeIfPresent(Double.self, forKey: .newSelfHits1)
        newSelfHits10 = try c.decodeIfPresent(Double.self, forKey: .newSelfHits10)
        oldSelfHits10Before = try c.decodeIfPresent(Double.self, forKey: .oldSelfHits10Before)
        oldSelfHits10After = try c.decodeIfPresent(Double.self, forKey: .oldSelfHits10After)
        sampledOld = try c.decode(Int.self, forKey: .sampledOld)
        sampledNew = try c.decode(Int.self, forKey: .sampledNew)
        skippedQrels = try c.decodeIfPresent(Int.self, forKey: .skippedQrels) ?? 0
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(added, forKey: .added)
        try c.encode(documents, forKey: .documents)
        try c.encode(seconds, forKey: .seconds)
        try c.encode(mode, forKey: .mode)
        try c.encode(generation, forKey: .generation)
        try c.encode(steps, forKey: .steps)
        try c.encode(fitSeconds, forKey: .fitSeconds)
        try c.encode(msPerDocument, forKey: .msPerDocument)
        // null, not absent, when not measured
        try c.encode(newSelfHits1, forKey: .newSelfHits1)
        try c.encode(newSelfHits10, forKey: .newSelfHits10)
        try c.encode(oldSelfHits10Before, forKey: .oldSelfHits10Before)
        try c.encode(oldSelfHits10After, forKey: .oldSelfHits10After)
        try c.encode(sampledOld, forKey: .sampledOld)
        try c.encode(sampledNew, forKey: .sampledNew)
        try c.encode(skippedQrels, forKey: .skippedQrels)
    }

    /// The lines `dsi add` prints.
    public func text(checkpoint: String) -> String {
        func f(_ x: Double?) -> String { x.map { String(format: "%.3f", $0) } ?? "none" }
        var s = String(
            format: "added %d documents (generation %d, mode %@) in %.2f s, %.1f ms per document; %d documents indexed; checkpoint: %@",
            added, generation, mode.rawValue, seconds, msPerDocument, documents, checkpoint)
        if sampledOld + sampledNew > 0 {
            s +=
                "\nself-retrieval (title and a span as queries): new documents hits@1 \(f(newSelfHits1)), hits@10 \(f(newSelfHits10)) (\(sampledNew) sampled); old documents' titles hits@10 \(f(oldSelfHits10Before)) before, \(f(oldSelfHits10After)) after (\(sampledOld) sampled)"
        }
        return s
    }
}
