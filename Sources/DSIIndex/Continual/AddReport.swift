import DSIModel
import DSITensor
import DSIText
import Foundation

/// What `dsi add --json` prints.
public struct AddReport: Sendable {
    public var added: Int
    public var seconds: Double
    public var mode: AddMode
    public var generation: Int
    public var steps: Int
    public var fitSeconds: Double
    public var newSelfHits1: Double
    public var newSelfHits10: Double
    public var oldSelfHits10Before: Double
    public var oldSelfHits10After: Double
    public var sampled: (old: Int, new: Int)

    public var msPerDocument: Double { added == 0 ? 0 : 1000 * seconds / Double(added) }

    public var json: [String: Any] {
        func num(_ x: Double) -> Any { x.isFinite ? x : NSNull() }
        return ["added": added, "seconds": seconds, "ms_per_document": msPerDocument, "mode": mode.rawValue,
                "generation": generation, "steps": steps, "fit_seconds": fitSeconds,
                "new_self_hits@1": num(newSelfHits1), "new_self_hits@10": num(newSelfHits10),
                "old_self_hits@10_before": num(oldSelfHits10Before), "old_self_hits@10_after": num(oldSelfHits10After),
                "sampled_old": sampled.old, "sampled_new": sampled.new]
    }
}
