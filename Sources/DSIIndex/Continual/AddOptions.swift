import DSIModel
import DSITensor
import DSIText
import Foundation

/// How `dsi add` updates the model.
public enum AddMode: String, Codable, Sendable, CaseIterable {
    /// Fit each new document's output row, then fine-tune the whole model on the new
    /// documents' views mixed with replayed views and queries of old documents.
    case replay
    /// Fit only each new document's output row (and bias) against its views; every
    /// other parameter, and so every old document's logit, stays as it was.
    case fast
}

public struct AddOptions: Sendable {
    public var mode: AddMode = .replay
    /// Replay: passes over the new documents' views.
    public var epochs: Double = 4
    /// Replay: at least this many steps, so adding a handful of documents still
    /// rehearses them enough (6 demo documents: 4 epochs are 8 steps).
    public var minimumSteps = 30
    /// Replay: old examples (replayed views and train queries) per new example.
    public var replayRatio: Double = 1
    /// Replay: peak learning rate (default: half the preset's).
    public var learningRate: Float? = nil
    /// Random spans per new document (besides its lead, title and key terms).
    public var spansPerDocument = 3
    /// Row fit: at most this many gradient steps per document, and the logit margin a
    /// document's own views must have over the old documents they compete with.
    public var fitSteps = 200
    public var margin: Float = 1
    /// Row fit: at a trie node with more old documents than this (atomic docids: the root),
    /// only the old documents that score highest on a new document's views compete with it,
    /// max(32, competitors / new documents) each (`RowFit`), so an add's cost does not grow
    /// with the index; at smaller nodes all of them.
    /// 512: one document added to SciFact with atomic docids (4,669 at the root) took 6.8 s
    /// at 4,096, almost all of it encoding competitors' titles.
    public var competitors = 512
    /// Documents sampled (old and new) for the forgetting report; 0 skips it.
    public var sample = 200
    public var batchSize = 64
    public var seed: UInt64 = 0
    public init() {}
}
