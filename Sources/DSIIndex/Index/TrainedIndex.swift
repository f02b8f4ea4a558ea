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

    public init(options: TrainingOptions, tokenizer: Tokenizer, docids: DocIDAssignment, titles: [String], model: Seq2Seq, optimizer: AdamW, step: Int, trainingSeconds: Double, corpusFingerprint: String,
                lsa: LSA? = nil, memory: ReplayMemory = ReplayMemory(), generations: [Generation]? = nil) {
        precondition(titles.count == docids.corpusIDs.count, "one title per document")
        precondition(lsa.map { $0.documentVectors.shape[0] == titles.count } ?? true, "one LSA vector per document")
        self.options = options; self.tokenizer = tokenizer; self.docids = docids; self.titles = titles
        self.lsa = lsa; self.memory = memory
        self.generations = generations ?? [Generation(generation: 0, firstDocument: 0, documents: titles.count, mode: "train", source: "")]
        self.vocabulary = options.vocabulary(docids); self.trie = DocIDTrie(vocabulary); self.model = model; self.optimizer = optimizer
        self.step = step; self.trainingSeconds = trainingSeconds; self.corpusFingerprint = corpusFingerprint
    }

    /// Source tokens of a query or view, cut to the model's source length.
    public func encode(_ text: String) -> [Int32] { Array(tokenizer.encode(text).prefix(model.config.sourceLength)) }

    /// Ranked documents (corpus positions) for each query text.
    public func search(_ queries: [String], beam: Int = 10, topK: Int = 10, batch: Int = 32, normalization: ConstrainedBeamSearch.Normalization = .all) throws -> [[ConstrainedBeamSearch.Hit]] {
        try search(tokens: queries.map(encode), beam: beam, topK: topK, batch: batch, normalization: normalization)
    }

    /// Ranked documents for already tokenized queries (cut to the model's source length;
    /// an empty one searches for the unknown token).
    public func search(tokens queries: [[Int32]], beam: Int = 10, topK: Int = 10, batch: Int = 32, normalization: ConstrainedBeamSearch.Normalization = .all) throws -> [[ConstrainedBeamSearch.Hit]] {
        let searcher = ConstrainedBeamSearch(model: model, trie: trie, beam: beam, topK: min(topK, beam), normalization: normalization)
        var out: [[ConstrainedBeamSearch.Hit]] = []
        var i = 0
        while i < queries.count {
            let chunk = queries[i..<min(queries.count, i + batch)].map { Array($0.prefix(model.config.sourceLength)) }
            out += try searcher.search(chunk.map { $0.isEmpty ? [Tokenizer.unk] : $0 })
            i += batch
        }
        return out
    }

    // MARK: - Checkpoint files

    struct ConfigFile: Codable {
        var model: ModelConfig
        var training: TrainingOptions
        var docidScheme: DocIDScheme
        var targetVocabulary: Int
    }

    struct StateFile: Codable {
        var step: Int
        var trainingSeconds: Double
    }

    /// Writes the checkpoint directory atomically (see `Checkpoint.write`).
    public func save(to directory: String, corpusDirectory: String, counts: [String: Int]) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        let config = ConfigFile(model: model.config, training: options, docidScheme: docids.scheme, targetVocabulary: model.config.targetVocab)
        var files: [String: Data] = [
            "config.json": try enc.encode(config),
            "model.safetensors": try model.safetensorsData(metadata: ["format": "swift-dsi", "step": String(step)]),
            "optimizer.safetensors": try model.optimizerData(optimizer),
            "tokenizer.json": try tokenizer.jsonData(),
            "docids.tsv": Data(docids.tsv().utf8),
            "titles.tsv": Data(("corpus-id\ttitle\n" + zip(docids.corpusIDs, titles).map { "\($0)\t\(Self.oneLine($1))\n" }.joined()).utf8),
            "state.json": try enc.encode(StateFile(step: step, trainingSeconds: trainingSeconds)),
            "replay.tsv": Data(memory.tsv().utf8),
        ]
        if let lsa { files["lsa.safetensors"] = try lsa.safetensorsData() }
        var c = counts
        c["documents"] = docids.corpusIDs.count
        c["steps"] = step
        c["parameters"] = model.params.parameterCount
        try Checkpoint.write(to: directory, files: files, corpusFingerprint: corpusFingerprint, corpusDirectory: corpusDirectory,
                             counts: c, configuration: ["preset": options.preset.rawValue, "docids": docids.scheme.rawValue,
                                                        "init": options.initMode.rawValue, "seed": String(options.seed)],
                             generations: generations)
    }

    static func oneLine(_ s: String) -> String {
        s.replacingOccurrences(of: "\t", with: " ").replacingOccurrences(of: "\n", with: " ").replacingOccurrences(of: "\r", with: " ")
    }

    /// Loads and verifies a checkpoint directory.
    public static func load(from directory: String) throws -> TrainedIndex {
        let (manifest, files) = try Checkpoint.read(from: directory)
        func need(_ name: String) throws -> Data {
            guard let d = files[name] else { throw Checkpoint.Error(path: directory + "/" + name, message: "missing from the checkpoint's manifest") }
            return d
        }
        let config: ConfigFile
        do { config = try JSONDecoder().decode(ConfigFile.self, from: try need("config.json")) } catch {
            throw Checkpoint.Error(path: directory + "/config.json", message: "unreadable (\(error))")
        }
        let tokenizer = try Tokenizer.load(data: try need("tokenizer.json"), path: directory + "/tokenizer.json")
        let docids = try DocIDAssignment.parse(tsv: String(decoding: try need("docids.tsv"), as: UTF8.self), scheme: config.docidScheme, path: directory + "/docids.tsv")
        let model = try Seq2Seq(config: config.model)
        try model.loadSafetensors(try need("model.safetensors"), path: directory + "/model.safetensors")
        let optimizer = try model.loadOptimizer(try need("optimizer.safetensors"), path: directory + "/optimizer.safetensors")
        let state = try JSONDecoder().decode(StateFile.self, from: try need("state.json"))
        let titleLines = String(decoding: try need("titles.tsv"), as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).dropFirst()
        let titles = titleLines.prefix(docids.corpusIDs.count).map { line -> String in
            guard let tab = line.firstIndex(of: "\t") else { return "" }
            return String(line[line.index(after: tab)...])
        }
        guard titles.count == docids.corpusIDs.count else {
            throw Checkpoint.Error(path: directory + "/titles.tsv", message: "\(titles.count) titles for \(docids.corpusIDs.count) documents")
        }
        guard tokenizer.count == config.model.sourceVocab, config.training.vocabulary(docids).size == config.model.targetVocab else {
            throw Checkpoint.Error(path: directory, message: "tokenizer, docids and model sizes disagree")
        }
        let lsa = try files["lsa.safetensors"].map { data throws -> LSA in
            let l = try LSA.load(data, path: directory + "/lsa.safetensors")
            guard l.documentVectors.shape[0] == docids.corpusIDs.count, l.idf.count == tokenizer.count else {
                throw Checkpoint.Error(path: directory + "/lsa.safetensors", message: "\(l.documentVectors.shape[0]) document vectors over \(l.idf.count) terms; the checkpoint has \(docids.corpusIDs.count) documents and \(tokenizer.count) tokens")
            }
            return l
        }
        // Checkpoints written before the replay memory existed load with an empty one.
        let memory = try files["replay.tsv"].map { data throws(InputError) in
            try ReplayMemory.parse(tsv: String(decoding: data, as: UTF8.self), path: directory + "/replay.tsv", documents: docids.corpusIDs.count, vocabulary: tokenizer.count)
        } ?? ReplayMemory()
        let generations = manifest.generations ?? []
        guard generations.reduce(0, { $0 + $1.documents }) == docids.corpusIDs.count || generations.isEmpty else {
            throw Checkpoint.Error(path: directory + "/manifest.json", message: "generations cover \(generations.reduce(0) { $0 + $1.documents }) documents, docids.tsv has \(docids.corpusIDs.count)")
        }
        return TrainedIndex(options: config.training, tokenizer: tokenizer, docids: docids, titles: titles, model: model, optimizer: optimizer,
                            step: state.step, trainingSeconds: state.trainingSeconds, corpusFingerprint: manifest.corpusFingerprint ?? "",
                            lsa: lsa, memory: memory, generations: generations.isEmpty ? nil : generations)
    }
}
