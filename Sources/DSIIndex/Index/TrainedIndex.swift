import DSIModel
import DSITensor
import DSIText
import Foundation

/// A trained DSI: tokenizer, docids and their trie, the encoder-decoder and its
/// optimizer state: everything a checkpoint directory holds.
public final class TrainedIndex: @unchecked Sendable {
    public let options: TrainingOptions
    public let tokenizer: Tokenizer
    public let docids: DocIDAssignment
    public let vocabulary: TargetVocabulary
    public let trie: DocIDTrie
    public let model: Seq2Seq
    public var optimizer: AdamW
    /// Completed training steps and the wall time they took.
    public var step: Int
    public var trainingSeconds: Double
    public let corpusFingerprint: String
    /// Document titles in corpus order (for showing results without the corpus).
    public let titles: [String]
    /// The LSA projection and document vectors (semantic docids or `--init lsa`), for
    /// placing documents added later.
    public let lsa: LSA?
    /// Views of the indexed documents, rehearsed when documents are added.
    public let memory: ReplayMemory
    /// Which documents arrived when (generation 0: `dsi train`).
    public let generations: [Generation]
    /// `dsi train`'s dev evaluations, oldest first (the learning curve; kept by `dsi add`).
    public var evaluations: [TrainingEvaluation] = []
    /// The z-score fusion weight `dsi train` chose on the dev split (`FusionCalibration`;
    /// nil for checkpoints trained without it, or before it existed). Kept by `dsi add`.
    public var fusionCalibration: FusionCalibration?
    /// Loaded with `LoadPurpose.search`: no optimizer state, replay memory or LSA; cannot be saved.
    public let searchOnly: Bool
    /// Old documents' view states for fast adds (not saved; shared by the indexes that
    /// fast adds grow from this one, whose weights they share).
    public let viewStates: ViewStateCache
    /// Files left on disk by a `.resume` load (name → where it is): `lsa` is nil and
    /// `memory` empty in such an index, which refuses to add documents.
    public let carried: [String: CarriedFile]
    /// The corpus's n-grams (`--docids ngrams` only): what decoding is constrained by and
    /// documents are found through.
    public let ngrams: NGramIndex?
    /// The files of the checkpoint a `.add` load came from that hold this index's old
    /// weights, LSA vectors and replay memory, unchanged: `save` keeps them and writes
    /// only one more generation's file of each (`AppendBase`). Nil: `save` writes every
    /// file whole.
    public let appendBase: AppendBase?

    public init(
        options: TrainingOptions, tokenizer: Tokenizer, docids: DocIDAssignment, titles: [String], model: Seq2Seq, optimizer: AdamW,
        step: Int, trainingSeconds: Double, corpusFingerprint: String,
        lsa: LSA? = nil, memory: ReplayMemory = ReplayMemory(), generations: [Generation]? = nil, vocabulary: TargetVocabulary? = nil,
        searchOnly: Bool = false, trie: DocIDTrie? = nil, viewStates: ViewStateCache? = nil, carried: [String: CarriedFile] = [:],
        ngrams: NGramIndex? = nil, appendBase: AppendBase? = nil
    ) {
        self.appendBase = appendBase
        precondition((docids.scheme == .ngrams) == (ngrams != nil), "an n-gram index exactly with ngrams docids")
        precondition(ngrams.map { $0.documentCount == titles.count } ?? true, "one n-gram index document per document")
        self.ngrams = ngrams
        self.searchOnly = searchOnly
        self.carried = carried
        self.viewStates = viewStates ?? ViewStateCache()
        precondition(titles.count == docids.corpusIDs.count, "one title per document")
        precondition(lsa.map { $0.documentVectors.shape[0] == titles.count } ?? true, "one LSA vector per document")
        self.options = options
        self.tokenizer = tokenizer
        self.docids = docids
        self.titles = titles
        self.lsa = lsa
        self.memory = memory
        self.generations = generations ?? [Generation(generation: 0, firstDocument: 0, documents: titles.count, mode: "train", source: "")]
        // `vocabulary`, when given, must be `options.vocabulary(docids, symbols:)` (the loader has built it already).
        self.vocabulary = vocabulary ?? options.vocabulary(docids, symbols: tokenizer.count)
        // `trie`, when given, must hold `self.vocabulary`'s docids (`dsi add` grows the old one).
        self.trie = trie ?? DocIDTrie(self.vocabulary)
        self.model = model
        self.optimizer = optimizer
        self.step = step
        self.trainingSeconds = trainingSeconds
        self.corpusFingerprint = corpusFingerprint
    }

    /// Source tokens of a query or view, cut to the model's source length.
    public func encode(_ text: String) -> [Int32] { Array(tokenizer.encode(text).prefix(model.config.sourceLength)) }

    /// Ranked documents (corpus positions) for each query text. The softmax of each step
    /// is normalised as the model was trained (`OutputObjective.searchNormalization`)
    /// unless `normalization` says otherwise.
    public func search(
        _ queries: [String], beam: Int = 10, topK: Int = 10, batch: Int = 32, normalization: ConstrainedBeamSearch.Normalization? = nil
    ) throws -> [[ConstrainedBeamSearch.Hit]] {
        try search(tokens: queries.map(encode), beam: beam, topK: topK, batch: batch, normalization: normalization)
    }

    /// Ranked documents for already tokenized queries (cut to the model's source length;
    /// an empty one searches for the unknown token). With n-gram docids, `NGramSearch`
    /// ranks the documents (`normalization` does not apply). A thread that searches
    /// repeatedly passes its own `buffers` to every call (see `SearchBuffers`).
    ///
    /// Queries are decoded `batch` at a time. With more than one compute thread
    /// (`threads`, default `Threads.current`), a batch of at least `2 · laneQueries` queries is cut into
    /// lanes, one per thread, each decoded on one thread: a decode step's products are a
    /// few rows per query, too small to split well across threads, while lanes share
    /// nothing. Fewer queries are decoded as one, each product split across the threads.
    public func search(
        tokens queries: [[Int32]], beam: Int = 10, topK: Int = 10, batch: Int = 32,
        normalization: ConstrainedBeamSearch.Normalization? = nil, buffers: SearchBuffers = SearchBuffers(),
        laneQueries: Int = SearchBuffers.laneQueries, threads: Int? = nil
    ) throws -> [[ConstrainedBeamSearch.Hit]] {
        func searcher(_ buffers: SearchBuffers) -> ([[Int32]]) throws -> [[ConstrainedBeamSearch.Hit]] {
            if let ngrams {
                return NGramSearch(
                    model: model, index: ngrams, wordStart: tokenizer.wordStart, beam: beam, topK: topK, buffers: buffers
                ).search
            }
            return ConstrainedBeamSearch(
                model: model, trie: trie, beam: beam, topK: min(topK, beam),
                normalization: normalization ?? options.objective.searchNormalization, buffers: buffers
            ).search
        }
        let threads = threads ?? Threads.current
        let laneCount = threads < 2 ? 1 : max(1, min(threads, min(batch, queries.count) / max(1, laneQueries)))
        let lanes = (0..<laneCount).map { searcher(buffers.lane($0)) }
        var out: [[ConstrainedBeamSearch.Hit]] = []
        var i = 0
        while i < queries.count {
            let chunk = queries[i..<min(queries.count, i + batch)].map {
                let q = Array($0.prefix(model.config.sourceLength))
                return q.isEmpty ? [Tokenizer.unk] : q
            }
            i += batch
            let n = min(laneCount, chunk.count / max(1, laneQueries))
            if n <= 1 {
                out += try lanes[0](chunk)
                continue
            }
            var parts = [Result<[[ConstrainedBeamSearch.Hit]], any Error>?](repeating: nil, count: n)
            parts.withUnsafeMutableBufferPointer { p in
                parallelFor(n, threads: n) { r in
                    let cap = Threads.currentThreadLimit
                    Threads.limitCurrentThread(to: 1)
                    defer { Threads.limitCurrentThread(to: cap) }
                    for l in r {
                        let lo = chunk.count * l / n
                        let hi = chunk.count * (l + 1) / n
                        p[l] = Result { try lanes[l](Array(chunk[lo..<hi])) }
                    }
                }
            }
            for part in parts { out += try part!.get() }
        }
        return out
    }
}

/// A checkpoint file by its name in the checkpoint, left on disk by a load.
public struct NamedFile: Sendable, Equatable {
    public let name: String
    public let file: CarriedFile
}

/// What an index loaded for a fast add (`LoadPurpose.add`) holds in files it did not
/// change, so that saving the grown index writes what the add made and no more
/// (docs/ARCHITECTURE.md, "Generation files"): the weight files the model was mapped
/// from and the floats of each entry they hold; the LSA files and their document rows;
/// the replay files and their views. Valid only while the index's first `weightFloats`,
/// `lsaRows` and `replayViews` are those of the files: a fast add keeps every old weight
/// and appends the rest; replay mode and consolidation rewrite everything.
public struct AppendBase: Sendable, Equatable {
    public let weights: [NamedFile]
    public let weightFloats: [String: Int]
    public let lsa: [NamedFile]
    public let lsaRows: Int
    public let replay: [NamedFile]
    public let replayViews: Int
    /// Beyond this many weight files, a save writes everything whole again (one file of
    /// each kind), so that loading never maps or reads a long chain of small files.
    public static let maxFiles = 16
}

/// What a checkpoint is loaded for (`TrainedIndex.load`).
public enum LoadPurpose: Sendable {
    /// Answering queries: weights (mapped), tokenizer, docids, trie, titles.
    case search
    /// Training on (`dsi add`): everything, including the optimizer state.
    case training
    /// Resuming training (`dsi train --resume`): as `.training`, but the LSA vectors and
    /// the replay memory, which training does not read, stay on disk: they are checked
    /// and carried unchanged into every checkpoint the index writes (`carried`).
    case resume
    /// Adding documents in fast mode (`dsi add --mode fast`, n-gram adds): as `.training`,
    /// but the weights are mapped (the add grows a copy) and the optimizer moments stay
    /// on disk, neither read nor hashed: fast mode does not change them, so the grown
    /// checkpoint carries the same file (a hard link), and the new rows' moments are the
    /// zeros that loading gives rows a moment file lacks. Replay mode needs `.training`.
    case add
}

/// A checkpoint file an index loaded for `.resume` or `.add` did not read: where it is
/// and its checksum, to carry it into the checkpoints the index writes.
public struct CarriedFile: Sendable, Equatable {
    public let path: String
    public let sha256: String
    /// The file as it was when the checkpoint was loaded.
    public let stamp: Checkpoint.FileStamp

    /// The file at `path` now, with the checksum its manifest gives; nil when it cannot be read.
    public init?(path: String, sha256: String) {
        guard let stamp = Checkpoint.FileStamp(path: path) else { return nil }
        self.path = path
        self.sha256 = sha256
        self.stamp = stamp
    }
}

extension TrainedIndex {
    /// Whether documents can be added in fast mode (`dsi add --mode fast`, `dsi serve`):
    /// every document has an output token of its own to fit, or (n-gram retrieval) adding
    /// a document is indexing its tokens.
    public var addsFast: Bool { vocabulary.hasDocumentTokens || ngrams != nil }

    /// The docid as a person reads it: term docids as their tokens' text joined by "·"
    /// (numbers as "#n"); other schemes as `DocIDAssignment.text`.
    public func readableDocID(_ d: Int) -> String {
        guard docids.scheme == .terms else { return docids.text(d) }
        return docids.docids[d].map { $0 >= 0 ? tokenizer.decode([$0]) : "#\(-Int($0) - 1)" }.joined(separator: "·")
    }
}
