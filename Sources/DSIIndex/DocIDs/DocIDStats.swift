import DSIText

/// What `dsi docids` reports.
public struct DocIDStats: Sendable, Encodable {
    public var documents: Int
    public var scheme: DocIDScheme
    public var seconds = 0.0
    public var maxLength = 0, minLength = 0, distinct = 0
    public var tokenizerSeconds: Double?, lsaSeconds: Double?, kmeansSeconds: Double?
    public var lsaTopSingularValues: [Double]?

    enum CodingKeys: String, CodingKey {
        case documents, scheme, seconds, distinct
        case maxLength = "max_length"
        case minLength = "min_length"
        case tokenizerSeconds = "tokenizer_seconds"
        case lsaSeconds = "lsa_seconds"
        case kmeansSeconds = "kmeans_seconds"
        case lsaTopSingularValues = "lsa_top_singular_values"
    }
}

extension DocIDAssigner {
    /// `dsi docids`: the docids `options` give a corpus (semantic ones through a tokenizer
    /// and LSA fitted here, as `dsi train` does), with timings and length statistics.
    public static func assign(_ corpus: Corpus, options: TrainingOptions) -> (DocIDAssignment, DocIDStats) {
        let clock = ContinuousClock()
        let t0 = clock.now
        var stats = DocIDStats(documents: corpus.documents.count, scheme: options.docids)
        let ids = corpus.documents.map(\.id)
        let assignment: DocIDAssignment
        switch options.docids {
        case .atomic: assignment = atomic(ids)
        case .ngrams: assignment = ngrams(ids)
        case .naive: assignment = naive(ids, seed: options.seed)
        case .terms:
            let texts = corpus.documents.map { $0.title + " " + $0.text }
            let tok = Tokenizer.train(texts: texts, vocabSize: options.vocabSize)
            stats.tokenizerSeconds = (clock.now - t0).seconds
            let (rows, _) = LSA.tfidf(texts.map { tok.encode($0) }, vocabulary: tok.count)
            assignment = terms(ids, keyTerms: rows.map { LSA.keyTerms($0, options.keyTerms) })
        case .semantic:
            let texts = corpus.documents.map { $0.title + " " + $0.text }
            let tok = Tokenizer.train(texts: texts, vocabSize: options.vocabSize)
            let t1 = clock.now
            let lsa = LSA.fit(
                documents: texts.map { tok.encode($0) }, vocabulary: tok.count, dimensions: options.lsaDimensions, seed: options.seed)
            let t2 = clock.now
            assignment = semantic(
                ids, vectors: lsa.documentVectors, branching: options.branching, leafSize: options.leafSize, seed: options.seed)
            stats.tokenizerSeconds = (t1 - t0).seconds
            stats.lsaSeconds = (t2 - t1).seconds
            stats.kmeansSeconds = (clock.now - t2).seconds
            stats.lsaTopSingularValues = Array(lsa.singularValues.prefix(5)).map(Double.init)
        }
        let lengths = assignment.docids.map(\.count)
        stats.seconds = (clock.now - t0).seconds
        stats.maxLength = lengths.max() ?? 0
        stats.minLength = lengths.min() ?? 0
        stats.distinct = Set(assignment.docids).count
        return (assignment, stats)
    }
}
