/// `dsi train`'s summary. JSON keys are stable (scripts read them); a figure that does
/// not exist (the loss of a run of 0 steps, dev hits without dev queries) is null.
public struct TrainReport: Sendable, Codable, Equatable {
    public var documents: Int
    public var examples: Int
    public var steps: Int
    public var seconds: Double
    public var tokensPerSecond: Double
    public var loss: Double?
    public var devHits1: Double?
    public var devHits10: Double?
    public var devQueries: Int
    public var skippedQrels: Int
    /// Data-parallel runs (`mpirun`): the ranks and what exchanging gradients cost rank 0
    /// per step (time in MPI calls, which includes waiting for slower ranks; bytes it
    /// contributed). Nil (null in JSON) for a single process.
    public var dataParallel: DataParallel?
    /// The z-score fusion weight chosen on dev at the end (`FusionCalibration`); nil (null)
    /// when none was chosen.
    public var fusionWeight: Double?

    public struct DataParallel: Sendable, Codable, Equatable {
        public var ranks: Int
        public var exchangeMsPerStep: Double
        public var exchangeMBPerStep: Double
        enum CodingKeys: String, CodingKey {
            case ranks
            case exchangeMsPerStep = "exchange_ms_per_step"
            case exchangeMBPerStep = "exchange_mb_per_step"
        }
    }

    public init(
        documents: Int, examples: Int, steps: Int, seconds: Double, tokensPerSecond: Double, loss: Double?, devHits1: Double?,
        devHits10: Double?, devQueries: Int, skippedQrels: Int
    ) {
        self.documents = documents
        self.examples = examples
        self.steps = steps
        self.seconds = seconds
        self.tokensPerSecond = tokensPerSecond
        self.loss = loss
        self.devHits1 = devHits1
        self.devHits10 = devHits10
        self.devQueries = devQueries
        self.skippedQrels = skippedQrels
    }

    enum CodingKeys: String, CodingKey {
        case documents, examples, steps, seconds, loss
        case tokensPerSecond = "tokens_per_second"
        case devHits1 = "dev_hits@1"
        case devHits10 = "dev_hits@10"
        case devQueries = "dev_queries"
        case skippedQrels = "skipped_qrels"
        case dataParallel = "data_parallel"
        case fusionWeight = "fusion_weight"
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(documents, forKey: .documents)
        try c.encode(examples, forKey: .examples)
        try c.encode(steps, forKey: .steps)
        try c.encode(seconds, forKey: .seconds)
        try c.encode(tokensPerSecond, forKey: .tokensPerSecond)
        try c.encode(loss, forKey: .loss)
        try c.encode(devHits1, forKey: .devHits1)
        try c.encode(devHits10, forKey: .devHits10)
        try c.encode(devQueries, forKey: .devQueries)
        try c.encode(skippedQrels, forKey: .skippedQrels)
        try c.encode(dataParallel, forKey: .dataParallel)
        try c.encode(fusionWeight, forKey: .fusionWeight)
    }

    /// The summary line `dsi train` prints.
    public var text: String {
        func f(_ x: Double?) -> String { x.map { String(format: "%.3f", $0) } ?? "none" }
        let lossText = loss.map { String(format: "%.4f", $0) } ?? "none (no steps)"
        let devText = devQueries > 0 ? "dev hits@1 \(f(devHits1)), hits@10 \(f(devHits10)) (\(devQueries) queries)" : "no dev queries"
        return
            "trained \(documents) documents (\(examples) examples per epoch) for \(steps) steps in \(String(format: "%.1f", seconds)) s; loss \(lossText); \(devText); \(skippedQrels) qrels skipped"
            + (dataParallel.map {
                String(
                    format: "; %d ranks, gradient exchange %.1f ms and %.1f MB per step", $0.ranks, $0.exchangeMsPerStep,
                    $0.exchangeMBPerStep)
            } ?? "")
            + (fusionWeight.map { String(format: "; fusion weight %.1f (chosen on dev)", $0) } ?? "")
    }
}
