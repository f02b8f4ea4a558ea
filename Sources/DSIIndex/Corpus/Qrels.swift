import Foundation

/// Relevance judgements of one split: query id → (document id → grade > 0).
public struct Qrels: Sendable, Equatable {
    public var judgements: [String: [String: Int]]
    /// Rows naming documents absent from the corpus (skipped, not an error: a corpus may
    /// be indexed in parts).
    public var skippedUnknownDocuments: Int
    /// Rows with score ≤ 0 (not relevant, so not kept).
    public var nonRelevantRows: Int

    public var queryIDs: [String] { judgements.keys.sorted() }
}
