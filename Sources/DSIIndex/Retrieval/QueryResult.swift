/// One query's ranked results as `dsi query --json` prints them and `dsi serve`'s
/// `/search` returns them (the same type, so the two cannot drift apart).
public struct QueryResult: Codable, Sendable, Equatable {
    public struct Row: Codable, Sendable, Equatable {
        public var rank: Int, id: String, docid: String, score: Double, title: String
    }
    public var query: String
    public var results: [Row]

    public init(query: String, hits: [ConstrainedBeamSearch.Hit], index: TrainedIndex) {
        self.query = query
        results = hits.enumerated().map { r, h in
            Row(
                rank: r + 1, id: index.docids.corpusIDs[h.document], docid: index.docids.text(h.document), score: Double(h.score),
                title: index.titles[h.document])
        }
    }
}
