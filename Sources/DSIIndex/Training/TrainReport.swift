import DSIModel
import DSITensor
import DSIText
import Foundation

/// `dsi train`'s summary (JSON keys are stable: scripts read them).
public struct TrainReport: Sendable {
    public var documents: Int
    public var examples: Int
    public var steps: Int
    public var seconds: Double
    public var tokensPerSecond: Double
    public var loss: Float
    public var devHits1: Double
    public var devHits10: Double
    public var devQueries: Int
    public var skippedQrels: Int

    /// The `--json` summary; a figure that does not exist (the loss of a run of 0 steps,
    /// dev hits without dev queries) is null.
    public var json: [String: Any] {
        func num(_ x: Double) -> Any { x.isFinite ? x : NSNull() }
        return ["documents": documents, "examples": examples, "steps": steps, "seconds": seconds,
                "tokens_per_second": tokensPerSecond, "loss": num(Double(loss)), "dev_hits@1": num(devHits1),
                "dev_hits@10": num(devHits10), "dev_queries": devQueries, "skipped_qrels": skippedQrels]
    }
}
