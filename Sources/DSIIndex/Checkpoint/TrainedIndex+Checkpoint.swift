import DSIModel
import DSITensor
import DSIText
import Foundation

/// The checkpoint files of a `TrainedIndex`: config.json, model and optimizer state,
/// tokenizer, docids, titles, state, replay memory and LSA (see docs/ARCHITECTURE.md).
extension TrainedIndex {
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
        /// The dev evaluations of `dsi train` (absent in checkpoints written before they
        /// were recorded).
        var evaluations: [TrainingEvaluation]?
        /// The fusion weight chosen on dev at the end of `dsi train` (absent before it was).
        var fusion: FusionCalibration?
    }

    /// Writes the checkpoint directory atomically (see `Checkpoint.write`). Without
    /// `optimizerState` the AdamW moments are left out (a checkpoint to search, not to
    /// train on: a third of the size).
    public func save(to directory: String, corpusDirectory: String, counts: [String: Int], optimizerState: Bool = true) throws {
        if searchOnly {
            throw Checkpoint.Error(
                path: directory,
                message: "this index was loaded for search only (no optimizer state, replay memory or LSA); load it whole to save it")
        }
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        let config = ConfigFile(
            model: model.config, training: options, docidScheme: docids.scheme, targetVocabulary: model.config.targetVocab)
        let (model, memory, optimizer, step) = (self.model, self.memory, self.optimizer, self.step)
        var files: [String: Checkpoint.File] = [
            "config.json": .data(try enc.encode(config)),
            "model.safetensors": .stream { try model.writeSafetensors(to: $0, metadata: ["format": "swift-dsi", "step": String(step)]) },
            "tokenizer.json": .data(try tokenizer.jsonData()),
            "docids.tsv": .data(Data(docids.tsv().utf8)),
            "titles.tsv": .data(
                Data(("corpus-id\ttitle\n" + zip(docids.corpusIDs, titles).map { "\($0)\t\(Self.oneLine($1))\n" }.joined()).utf8)),
            "state.json": .data(
                try enc.encode(StateFile(step: step, trainingSeconds: trainingSeconds, evaluations: evaluations, fusion: fusionCalibration))
            ),
            "replay.tsv": .stream { try memory.write(to: $0) },
        ]
        if let lsa { files["lsa.safetensors"] = .stream { try lsa.writeSafetensors(to: $0) } }
        if let ngrams { files["ngrams.bin"] = .data(ngrams.serialized()) }
        // After a fast add: the files the old index was loaded from stay as they are
        // (linked), and the new generation's rows and views go to files of their own.
        let generation = generations.last?.generation ?? 0
        if let base = appendBase, base.weights.count < AppendBase.maxFiles, generation > 0 {
            let stamp = ["format": "swift-dsi", "step": String(step)]
            for f in base.weights + base.lsa + base.replay {
                files[f.name] = .carried(path: f.file.path, sha256: f.file.sha256, stamp: f.file.stamp)
            }
            files["model.safetensors"] = files[base.weights[0].name]
            if model.entryFloats != base.weightFloats {
                files[Self.generationFile("model.safetensors", generation)] = .stream {
                    try model.writeWeightDelta(to: $0, covered: base.weightFloats, metadata: stamp)
                }
            }
            if let lsa, !base.lsa.isEmpty {
                files["lsa.safetensors"] = files[base.lsa[0].name]
                if lsa.documentVectors.shape[0] > base.lsaRows {
                    files[Self.generationFile("lsa.safetensors", generation)] = .stream {
                        try lsa.writeDocumentRows(from: base.lsaRows, to: $0)
                    }
                }
            }
            if !base.replay.isEmpty {
                files["replay.tsv"] = files[base.replay[0].name]
                if memory.views.count > base.replayViews {
                    let added = ReplayMemory(views: Array(memory.views[base.replayViews...]))
                    files[Self.generationFile("replay.tsv", generation)] = .stream { try added.write(to: $0) }
                }
            }
        }
        // Files a `.resume` or `.add` load left on disk, unchanged: linked (or copied and
        // checked), not rewritten.
        for (name, file) in carried where optimizerState || name != "optimizer.safetensors" {
            files[name] = .carried(path: file.path, sha256: file.sha256, stamp: file.stamp)
        }
        if optimizerState && carried["optimizer.safetensors"] == nil {
            files["optimizer.safetensors"] = .stream { try model.writeOptimizer(optimizer, to: $0) }
        }
        var c = counts
        c["documents"] = docids.corpusIDs.count
        c["steps"] = step
        c["parameters"] = model.params.parameterCount
        try Checkpoint.write(
            to: directory, files: files, corpusFingerprint: corpusFingerprint, corpusDirectory: corpusDirectory,
            counts: c,
            configuration: [
                "preset": options.preset.rawValue, "docids": docids.scheme.rawValue,
                "init": options.initMode.rawValue, "seed": String(options.seed),
            ],
            generations: generations)
    }

    /// `s` with tabs and line ends as spaces (one field of a TSV row). Most titles have
    /// none and are returned as they are, without a search through Foundation.
    static func oneLine(_ s: String) -> String {
        guard s.utf8.contains(where: { $0 == 9 || $0 == 10 || $0 == 13 }) else { return s }
        return s.replacingOccurrences(of: "\t", with: " ").replacingOccurrences(of: "\n", with: " ")
            .replacingOccurrences(of: "\r", with: " ")
    }

    /// What resuming checks and builds its training data from, read before the weights
    /// (`TrainingRun.prepare`): the options, the corpus fingerprint and the tokenizer.
    public struct Header: Sendable {
        public let options: TrainingOptions
        public let corpusFingerprint: String
        public let tokenizer: Tokenizer
    }

    /// Reads and verifies only config.json and tokenizer.json (and the manifest).
    public static func header(from directory: String) throws -> Header {
        let (manifest, files) = try Checkpoint.read(from: directory, only: ["config.json", "tokenizer.json"])
        func path(_ name: String) -> String { (directory as NSString).appendingPathComponent(name) }
        func need(_ name: String) throws -> Data {
            guard let d = files[name] else { throw Checkpoint.Error(path: path(name), message: "missing from the checkpoint's manifest") }
            return d
        }
        let config = try decodeConfig(try need("config.json"), version: manifest.version, path: path("config.json"))
        let tokenizer = try Tokenizer.load(data: try need("tokenizer.json"), path: path("tokenizer.json"))
        return Header(options: config.training, corpusFingerprint: manifest.corpusFingerprint ?? "", tokenizer: tokenizer)
    }

    static func decodeConfig(_ data: Data, version: Int, path: String) throws -> ConfigFile {
        do {
            return try JSONDecoder().decode(ConfigFile.self, from: try CheckpointMigration.config(data, from: version))
        } catch let e as Checkpoint.Error {
            throw e
        } catch {
            throw Checkpoint.Error(path: path, message: "unreadable (\(error))")
        }
    }

    /// Loads and verifies a checkpoint directory: checksums (`Checkpoint.read`), the
    /// format version (older ones migrated), then the invariants the index relies on
    /// (`checkInvariants`); a checkpoint that breaks one is refused, naming the file.
    ///
    /// `.search` loads only what search needs: the weights (mapped from
    /// model.safetensors, checked once), the tokenizer, the docids and their trie, the
    /// titles. The optimizer moments, the replay memory and the LSA vectors are neither
    /// read nor hashed, and no gradient buffer is allocated. `.training` (`dsi add`)
    /// loads everything and needs optimizer.safetensors; `.resume` (`dsi train
    /// --resume`) too, except the LSA vectors and the replay memory, which it checks and
    /// leaves on disk for `save` to copy (`carried`).
    public static func load(from directory: String, for purpose: LoadPurpose = .training) throws -> TrainedIndex {
        let searchFiles: Set<String> = ["config.json", "tokenizer.json", "docids.tsv", "titles.tsv", "state.json"]
        let (manifest, files) = try Checkpoint.read(from: directory, only: searchFiles)
        func path(_ name: String) -> String { (directory as NSString).appendingPathComponent(name) }
        // The large files (weights, optimizer moments, LSA vectors, replay memory) are
        // checked by streaming them and then read through a mapping one at a time, so
        // loading never holds more than one of them besides what it builds from it.
        func mapped(_ name: String) throws -> MappedFile? {
            guard manifest.files[name] != nil else { return nil }
            try Checkpoint.verify(name, in: directory, manifest: manifest)
            return try MappedFile(path: path(name))
        }
        func needMapped(_ name: String) throws -> MappedFile {
            guard let m = try mapped(name) else {
                throw Checkpoint.Error(path: path(name), message: "missing from the checkpoint's manifest")
            }
            return m
        }
        func need(_ name: String) throws -> Data {
            guard let d = files[name] else { throw Checkpoint.Error(path: path(name), message: "missing from the checkpoint's manifest") }
            return d
        }
        let config = try decodeConfig(try need("config.json"), version: manifest.version, path: path("config.json"))
        let tokenizer = try Tokenizer.load(data: try need("tokenizer.json"), path: path("tokenizer.json"))
        let docids = try DocIDAssignment.parse(
            tsv: String(decoding: try need("docids.tsv"), as: UTF8.self), scheme: config.docidScheme, path: path("docids.tsv"))
        try checkDocIDs(docids, path: path("docids.tsv"))
        do { try config.model.validate() } catch { throw Checkpoint.Error(path: path("config.json"), message: "\(error)") }
        guard tokenizer.count == config.model.sourceVocab else {
            throw Checkpoint.Error(
                path: path("tokenizer.json"),
                message: "\(tokenizer.count) tokens; config.json's model has a source vocabulary of \(config.model.sourceVocab)")
        }
        // Checkpoints before format 4 wrote the weights back to back: searching or adding
        // to one maps its file in place into an arena of that layout.
        let legacyLayout = manifest.version < 4
        let model = try Seq2Seq(
            config: config.model,
            alignment: legacyLayout && (purpose == .search || purpose == .add) ? ParameterArena.legacyFloats : ParameterArena.pageFloats)
        let weightNames = generationChain(manifest, base: "model.safetensors")
        func weightFiles() throws -> [WeightFile] {
            guard !weightNames.isEmpty else {
                throw Checkpoint.Error(path: path("model.safetensors"), message: "missing from the checkpoint's manifest")
            }
            return try weightNames.map { name in
                try Checkpoint.verify(name, in: directory, manifest: manifest)
                return try WeightFile(path: path(name))
            }
        }
        let optimizer: AdamW
        // Files this load leaves on disk for `save` to carry over unchanged.
        var carried: [String: CarriedFile] = [:]
        func carry(_ name: String, sha256: String) throws {
            guard let file = CarriedFile(path: path(name), sha256: sha256) else {
                throw Checkpoint.Error(path: path(name), message: "cannot be read")
            }
            carried[name] = file
        }
        switch purpose {
        case .search, .add:
            if legacyLayout {
                try Checkpoint.verify("model.safetensors", in: directory, manifest: manifest)
                try model.mapSafetensors(path: path("model.safetensors"))
            } else {
                try model.useWeightFiles(try weightFiles(), map: true)
            }
            guard purpose == .add else {
                optimizer = AdamW(weightDecay: config.training.weightDecay)
                break
            }
            // `.add` leaves the moments on disk; the step and hyperparameters come from the header.
            guard let entry = manifest.files["optimizer.safetensors"] else {
                throw Checkpoint.Error(
                    path: path("optimizer.safetensors"),
                    message:
                        "this checkpoint has no optimizer state, which adding to it (dsi add) needs; search works without it (dsi query, dsi eval)"
                )
            }
            let opt = try MappedFile(path: path("optimizer.safetensors"))
            optimizer = try opt.withData { try Seq2Seq.optimizerHeader($0, path: path("optimizer.safetensors")) }
            try carry("optimizer.safetensors", sha256: entry.sha256)
        case .training, .resume:
            // Each tensor's pages of the mapping are dropped once copied: the file and the
            // copy are never both resident (at 1M documents, 2.5 GB of weights and 5 GB
            // of moments).
            try model.useWeightFiles(try weightFiles(), map: false)
            guard let opt = try mapped("optimizer.safetensors") else {
                throw Checkpoint.Error(
                    path: path("optimizer.safetensors"),
                    message:
                        "this checkpoint has no optimizer state, which training on it (--resume, dsi add) needs; search works without it (dsi query, dsi eval)"
                )
            }
            optimizer = try opt.withData { try model.loadOptimizer($0, path: path("optimizer.safetensors"), release: opt.release) }
        }
        let state: StateFile
        do { state = try JSONDecoder().decode(StateFile.self, from: try need("state.json")) } catch let e as Checkpoint.Error {
            throw e
        } catch {
            throw Checkpoint.Error(path: path("state.json"), message: "unreadable (\(error))")
        }
        let titles = try TSVReader.rows(
            String(decoding: try need("titles.tsv"), as: UTF8.self), path: path("titles.tsv"), header: ["corpus-id", "title"]
        ).map(\.fields[1])
        guard titles.count == docids.corpusIDs.count else {
            throw Checkpoint.Error(
                path: path("titles.tsv"),
                message: "\(titles.count) titles for the \(docids.corpusIDs.count) documents of docids.tsv (expected one per document)")
        }
        let vocabulary = config.training.vocabulary(docids, symbols: tokenizer.count)
        guard vocabulary.tokens.count == docids.corpusIDs.count, vocabulary.size == config.model.targetVocab else {
            throw Checkpoint.Error(
                path: path("config.json"),
                message:
                    "the docids of docids.tsv make a decoder vocabulary of \(vocabulary.size) tokens; the model has \(config.model.targetVocab)"
            )
        }
        guard vocabulary.maxLength + 1 <= config.model.targetLength else {
            throw Checkpoint.Error(
                path: path("config.json"),
                message:
                    "target length \(config.model.targetLength) is shorter than the longest docid (\(vocabulary.maxLength) tokens + EOS)")
        }
        // `.resume` leaves the LSA vectors and the replay memory on disk, checked.
        let lsaNames = generationChain(manifest, base: "lsa.safetensors")
        let replayNames = generationChain(manifest, base: "replay.tsv")
        if purpose == .resume {
            for name in lsaNames + replayNames {
                guard let entry = manifest.files[name] else { continue }
                try Checkpoint.verify(name, in: directory, manifest: manifest)
                try carry(name, sha256: entry.sha256)
            }
        }
        let inMemory = purpose == .training || purpose == .add  // the LSA vectors and the replay memory
        let lsa = try (!inMemory ? nil : mapped("lsa.safetensors")).map { file throws -> LSA in
            // A fast add maps the vectors (it reads them to place documents and appends).
            var l = try file.withData { try LSA.load($0, path: path("lsa.safetensors"), mapping: purpose == .add) }
            // Each generation file of a fast add holds its documents' rows.
            var rows: [Float] = []
            for name in lsaNames.dropFirst() {
                let f = try needMapped(name)
                rows += try f.withData { try LSA.loadDocumentRows($0, dimensions: l.dimensions, path: path(name)) }
            }
            if !rows.isEmpty { l = l.appending(documentRows: rows) }
            guard l.documentVectors.shape[0] == docids.corpusIDs.count, l.idf.count == tokenizer.count else {
                throw Checkpoint.Error(
                    path: path("lsa.safetensors"),
                    message:
                        "\(l.documentVectors.shape[0]) document vectors over \(l.idf.count) terms; the checkpoint has \(docids.corpusIDs.count) documents and \(tokenizer.count) tokens (expected one vector per document)"
                )
            }
            return l
        }
        // Checkpoints written before the replay memory existed load with an empty one.
        var memory = ReplayMemory()
        for name in inMemory ? replayNames : [] {
            let part = try needMapped(name).withData {
                try ReplayMemory.parse(data: $0, path: path(name), documents: docids.corpusIDs.count, vocabulary: tokenizer.count)
            }
            memory.views += part.views
        }
        let ngrams = try (docids.scheme != .ngrams ? nil : needMapped("ngrams.bin")).map { file throws -> NGramIndex in
            let n: NGramIndex
            do {
                n = try file.withData { try NGramIndex.parse($0, vocabulary: tokenizer.count, path: path("ngrams.bin")) }
            } catch let e as NGramIndex.FormatError {
                throw Checkpoint.Error(path: path("ngrams.bin"), message: e.description)
            }
            guard n.documentCount == docids.corpusIDs.count else {
                throw Checkpoint.Error(
                    path: path("ngrams.bin"),
                    message: "\(n.documentCount) documents; docids.tsv has \(docids.corpusIDs.count) (expected one per document)")
            }
            return n
        }
        let generations = manifest.generations ?? []
        guard generations.reduce(0, { $0 + $1.documents }) == docids.corpusIDs.count || generations.isEmpty else {
            throw Checkpoint.Error(
                path: path("manifest.json"),
                message:
                    "generations cover \(generations.reduce(0) { $0 + $1.documents }) documents, docids.tsv has \(docids.corpusIDs.count)")
        }
        // A fast add's save keeps these files and writes one more generation of each.
        var appendBase: AppendBase?
        if purpose == .add && model.weightFiles != nil {
            func named(_ names: [String]) throws -> [NamedFile] {
                try names.map { name in
                    guard let file = CarriedFile(path: path(name), sha256: manifest.files[name]!.sha256) else {
                        throw Checkpoint.Error(path: path(name), message: "cannot be read")
                    }
                    return NamedFile(name: name, file: file)
                }
            }
            appendBase = AppendBase(
                weights: try named(weightNames), weightFloats: model.entryFloats, lsa: try named(lsa == nil ? [] : lsaNames),
                lsaRows: lsa?.documentVectors.shape[0] ?? 0, replay: try named(replayNames), replayViews: memory.views.count)
        }
        let index = TrainedIndex(
            options: config.training, tokenizer: tokenizer, docids: docids, titles: titles, model: model, optimizer: optimizer,
            step: state.step, trainingSeconds: state.trainingSeconds, corpusFingerprint: manifest.corpusFingerprint ?? "",
            lsa: lsa, memory: memory, generations: generations.isEmpty ? nil : generations, vocabulary: vocabulary,
            searchOnly: purpose == .search, carried: carried, ngrams: ngrams, appendBase: appendBase)
        index.evaluations = state.evaluations ?? []
        index.fusionCalibration = state.fusion
        return index
    }

    /// `base` (for example "model.safetensors") and the generation files of fast adds
    /// after it ("model.g3.safetensors"), in generation order: the files that hold one
    /// kind of data between them. Empty when the manifest lacks `base`.
    static func generationChain(_ manifest: Checkpoint.Manifest, base: String) -> [String] {
        guard manifest.files[base] != nil else { return [] }
        return [base] + generationFiles(manifest.files.keys, base: base).map(\.name)
    }

    /// The names among `names` of the form "<stem>.g<N><ext>" for `base` "<stem><ext>",
    /// with N, in order of N.
    static func generationFiles(_ names: some Sequence<String>, base: String) -> [(generation: Int, name: String)] {
        let dot = base.firstIndex(of: ".") ?? base.endIndex
        let (stem, ext) = (String(base[..<dot]), String(base[dot...]))
        return names.compactMap { n -> (Int, String)? in
            guard n.hasPrefix(stem + ".g"), n.hasSuffix(ext), n.count > stem.count + 2 + ext.count else { return nil }
            return Int(n.dropFirst(stem.count + 2).dropLast(ext.count)).map { ($0, n) }
        }.sorted { $0.0 < $1.0 }
    }

    /// Generation file of `base` for generation `g`: "model.safetensors" → "model.g3.safetensors".
    static func generationFile(_ base: String, _ g: Int) -> String {
        let dot = base.firstIndex(of: ".") ?? base.endIndex
        return "\(base[..<dot]).g\(g)\(base[dot...])"
    }

    /// Docids are unique, prefix-free (no docid is the beginning of another, so every
    /// trie leaf is one document) and belong to unique corpus ids.
    static func checkDocIDs(_ a: DocIDAssignment, path: String) throws(Checkpoint.Error) {
        var line = [String: Int]()
        for (i, id) in a.corpusIDs.enumerated() {
            if let first = line[id] {
                throw Checkpoint.Error(path: path, message: "line \(i + 2): corpus id \"\(id)\" appears twice (first on line \(first + 2))")
            }
            line[id] = i
        }
        let order = DocIDTrie.lexicographicOrder(a.docids)
        for (x, y) in zip(order, order.dropFirst()) where a.docids[y].starts(with: a.docids[x]) {
            let what = a.docids[x] == a.docids[y] ? "the same docid" : "docids where one is a prefix of the other"
            throw Checkpoint.Error(
                path: path,
                message:
                    "lines \(min(x, y) + 2) and \(max(x, y) + 2): documents \"\(a.corpusIDs[x])\" and \"\(a.corpusIDs[y])\" have \(what) (\(a.text(x)), \(a.text(y))); docids must be unique and prefix-free"
            )
        }
    }
}
