import DSIModel

public enum InitMode: String, Codable, Sendable, CaseIterable { case lsa, random }

extension DocIDScheme {
    /// Collections up to this size get atomic docids when no scheme is asked for.
    public static let atomicLimit = 100_000

    /// The docids `dsi train` gives a collection of `documents` when `--docids` is not
    /// given: atomic docids (one output token per document) up to `atomicLimit`, which
    /// won on every dev split measured (SciFact with and without labels, Cranfield, the
    /// demo; README "Zero-label training and fused ranking"); above it semantic docids,
    /// whose cost per query does not grow with N, where an atomic query scans every
    /// document's output row (README "Scale").
    public static func automatic(documents: Int) -> DocIDScheme { documents <= atomicLimit ? .atomic : .semantic }
}

/// Everything that decides what `dsi train` computes (saved in config.json; `--resume`
/// requires the same values, except the budget).
public struct TrainingOptions: Codable, Sendable, Equatable {
    public var preset: Preset = .small
    /// The scheme of a config.json that names none; `dsi train` without `--docids` takes
    /// `automaticDocIDs(documents:)`.
    public var docids: DocIDScheme = .semantic
    /// How semantic docids become decoder tokens (tree nodes, or shared digits).
    public var docidTokens: DocIDTokens = .nodes
    /// Encoder and decoder layers (default: the preset's).
    public var layers: Int? = nil
    public var initMode: InitMode = .lsa
    public var seed: UInt64 = 0
    public var batchSize = 64
    public var learningRate: Float? = nil
    public var warmupFraction: Float = 0.05
    public var labelSmoothing: Float = 0.1
    public var dropout: Float = 0.1
    public var weightDecay: Float = 0.01
    /// Source tokens per example (the DSI paper found 32 best for indexing views).
    public var sourceLength = 64
    public var viewLength = 32
    /// Random spans per document per epoch (besides the leading tokens, title and key terms).
    public var spansPerDocument = 3
    /// Sentences per document per epoch (`Sentences.split`, drawn without replacement,
    /// each cut to `viewLength` tokens): query-like views (a claim or question is about
    /// one sentence's worth of a document).
    public var sentencesPerDocument = 0
    /// Share of words dropped (all their tokens) from each span and sentence view, drawn
    /// per epoch: noise that makes document views look more like short queries.
    public var viewWordDropout: Double = 0
    /// Times each labelled train query appears per epoch.
    public var queryRepeats = 2
    public var keyTerms = 24
    /// Share of train queries held out as the dev split (by a hash of the query id).
    public var devFraction: Double = 0.1
    public var vocabSize = 8192
    public var lsaDimensions = 256
    public var branching = 10
    public var leafSize = 100
    /// Output-row scale of the LSA initialisation (logit temperature).
    public var lsaTemperature: Float = 8
    /// What each docid position's softmax is taken over in training (and so how beam
    /// search normalises). Checkpoints written before this option existed were trained
    /// with `full`; `CheckpointMigration` writes that in.
    public var objective: OutputObjective = .trie
    /// Nodes with more allowed tokens than this are scored by a sampled softmax in
    /// training (atomic docids at the root).
    public var sampledCandidates = 8192

    public init() {}

    enum CodingKeys: String, CodingKey {
        case preset, docids, docidTokens, layers, initMode, seed, batchSize, learningRate, warmupFraction, labelSmoothing, dropout,
            weightDecay, sourceLength, viewLength, spansPerDocument, sentencesPerDocument, viewWordDropout, queryRepeats, keyTerms,
            devFraction, vocabSize,
            lsaDimensions,
            branching, leafSize, lsaTemperature, objective, sampledCandidates
    }

    /// Decodes config.json's options; a field a checkpoint does not have (written before
    /// the field existed) takes its default here. Where an old checkpoint's meaning
    /// differs from today's default, `CheckpointMigration` writes the old meaning in
    /// before this runs (format version 1 without `docidTokens`: digit tokens).
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        preset = try c.decodeIfPresent(Preset.self, forKey: .preset) ?? preset
        docids = try c.decodeIfPresent(DocIDScheme.self, forKey: .docids) ?? docids
        docidTokens = try c.decodeIfPresent(DocIDTokens.self, forKey: .docidTokens) ?? docidTokens
        layers = try c.decodeIfPresent(Int.self, forKey: .layers) ?? layers
        initMode = try c.decodeIfPresent(InitMode.self, forKey: .initMode) ?? initMode
        seed = try c.decodeIfPresent(UInt64.self, forKey: .seed) ?? seed
        batchSize = try c.decodeIfPresent(Int.self, forKey: .batchSize) ?? batchSize
        learningRate = try c.decodeIfPresent(Float.self, forKey: .learningRate) ?? learningRate
        warmupFraction = try c.decodeIfPresent(Float.self, forKey: .warmupFraction) ?? warmupFraction
        labelSmoothing = try c.decodeIfPresent(Float.self, forKey: .labelSmoothing) ?? labelSmoothing
        dropout = try c.decodeIfPresent(Float.self, forKey: .dropout) ?? dropout
        weightDecay = try c.decodeIfPresent(Float.self, forKey: .weightDecay) ?? weightDecay
        sourceLength = try c.decodeIfPresent(Int.self, forKey: .sourceLength) ?? sourceLength
        viewLength = try c.decodeIfPresent(Int.self, forKey: .viewLength) ?? viewLength
        spansPerDocument = try c.decodeIfPresent(Int.self, forKey: .spansPerDocument) ?? spansPerDocument
        sentencesPerDocument = try c.decodeIfPresent(Int.self, forKey: .sentencesPerDocument) ?? 0
        viewWordDropout = try c.decodeIfPresent(Double.self, forKey: .viewWordDropout) ?? 0
        queryRepeats = try c.decodeIfPresent(Int.self, forKey: .queryRepeats) ?? queryRepeats
        keyTerms = try c.decodeIfPresent(Int.self, forKey: .keyTerms) ?? keyTerms
        devFraction = try c.decodeIfPresent(Double.self, forKey: .devFraction) ?? devFraction
        vocabSize = try c.decodeIfPresent(Int.self, forKey: .vocabSize) ?? vocabSize
        lsaDimensions = try c.decodeIfPresent(Int.self, forKey: .lsaDimensions) ?? lsaDimensions
        branching = try c.decodeIfPresent(Int.self, forKey: .branching) ?? branching
        leafSize = try c.decodeIfPresent(Int.self, forKey: .leafSize) ?? leafSize
        lsaTemperature = try c.decodeIfPresent(Float.self, forKey: .lsaTemperature) ?? lsaTemperature
        objective = try c.decodeIfPresent(OutputObjective.self, forKey: .objective) ?? objective
        sampledCandidates = try c.decodeIfPresent(Int.self, forKey: .sampledCandidates) ?? sampledCandidates
    }

    public var effectiveLearningRate: Float { learningRate ?? preset.learningRate }

    /// Digits of a document's position within its k-means leaf.
    public var leafDigits: Int { String(max(0, leafSize - 1)).count }

    /// The decoder vocabulary these options give a docid assignment (`symbols`: the
    /// tokenizer's size, which `ngrams` decodes over).
    public func vocabulary(_ a: DocIDAssignment, symbols: Int) -> TargetVocabulary {
        TargetVocabulary(a, mode: docidTokens, leafDigits: leafDigits, symbols: symbols)
    }

    /// The longest n-gram `--docids ngrams` generates (tokens), as SEAL's 10.
    public static let ngramLength = 10

    /// The training objective: `full` for n-grams (any token may follow; the corpus, not
    /// a docid trie, constrains decoding), `objective` otherwise.
    public var effectiveObjective: OutputObjective { docids == .ngrams ? .full : objective }
}
