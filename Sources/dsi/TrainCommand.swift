import ArgumentParser
import DSIDistributed
import DSIIndex
import DSIModel
import DSITensor
import DSIText
import Foundation

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Index a corpus: train a DSI model that maps its documents' text to their docids.")

    @Option(help: "Corpus directory (BEIR layout: corpus.jsonl, queries.jsonl, qrels/train.tsv).") var corpus: String
    @Option(help: "Checkpoint directory to write (default: Checkpoints/<corpus name>).") var output: String?
    @Option(help: "Model size (small is the reference configuration).") var preset: Preset = .small
    @Option(help: "Docid scheme (default: atomic up to 100,000 documents, semantic above).") var docids: DocIDScheme?
    @Option(help: "Decoder tokens of semantic docids: nodes (one per k-means tree node and document) or digits.") var docidTokens:
        DocIDTokens = .nodes
    @Option(name: .customLong("init"), help: "Initialisation: lsa (from the corpus) or random.") var initMode: InitMode = .lsa
    @Option(help: "Train for this many steps (0: write the initialised, untrained model).") var steps: Int?
    @Option(help: "Train for this many epochs.") var epochs: Double?
    @Option(help: "Train for this many minutes of wall time.") var timeBudget: Double?
    @Option(help: "Random seed (data order, dropout, initialisation, docids).") var seed: UInt64 = 0
    @Option(help: "Batch size.") var batchSize: Int = 64
    @Option(help: "Peak learning rate (default: the preset's).") var lr: Float?
    @Option(help: "Encoder and decoder layers (default: the preset's).") var layers: Int?
    @Option(help: "Logit scale of the LSA-initialised output rows (logit = temperature x cosine).") var temperature: Float?
    @Option(help: "Times each labelled train query appears per epoch.") var queryRepeats: Int?
    @Option(help: "Random 32-token spans per document per epoch.") var spans: Int?
    @Option(help: "Random sentences per document per epoch (query-like views).") var sentences: Int?
    @Option(help: "Share of words dropped from each span and sentence view, 0...0.9 (query-like noise).") var viewWordDropout: Double?
    @Option(
        help:
            "Training objective: trie (softmax over the tokens the docid trie allows; cost set by the tree's fan-out) or full (over every token)."
    )
    var objective: OutputObjective = .trie
    @Option(help: "Nodes with more allowed tokens than this are trained with a sampled softmax (atomic docids).") var sampledCandidates:
        Int = 8192
    @Option(help: "Evaluate on dev and write the checkpoint every N steps.") var evalEvery: Int = 500
    @Flag(
        inversion: .prefixedNo,
        help:
            "At the end, choose the weight of --fusion bm25 on dev and record it in the checkpoint (a beam of 100 over at most 300 dev queries, and BM25 over the corpus)."
    )
    var calibrateFusion = true
    @Flag(help: "Continue the checkpoint at --output (same corpus and options) with its optimizer state.") var resume = false
    @Flag(help: "Print one JSON object (progress still goes to stderr).") var json = false
    @OptionGroup var compute: ComputeOptions

    func validate() throws {
        let budgets = [steps != nil, epochs != nil, timeBudget != nil].filter { $0 }.count
        guard budgets <= 1 else { throw ValidationError("give at most one of --steps, --epochs, --time-budget") }
        if let steps, steps < 0 { throw ValidationError("--steps must be 0 (write the initialised model untrained) or more") }
        if let epochs, !(epochs > 0) { throw ValidationError("--epochs must be positive") }
        if let timeBudget, !(timeBudget > 0) { throw ValidationError("--time-budget must be positive (minutes)") }
        if let layers, layers < 1 { throw ValidationError("--layers must be positive") }
        if let temperature, !(temperature > 0) { throw ValidationError("--temperature must be positive") }
        if let queryRepeats, queryRepeats < 0 { throw ValidationError("--query-repeats must be 0 or more") }
        if let spans, spans < 0 { throw ValidationError("--spans must be 0 or more") }
        if let sentences, sentences < 0 { throw ValidationError("--sentences must be 0 or more") }
        if let viewWordDropout, !(0...0.9).contains(viewWordDropout) {
            throw ValidationError("--view-word-dropout must be between 0 and 0.9, got \(viewWordDropout)")
        }
        guard sampledCandidates >= 2 else { throw ValidationError("--sampled-candidates must be at least 2") }
        guard batchSize >= 1, evalEvery >= 1 else { throw ValidationError("--batch-size and --eval-every must be positive") }
    }

    func run() throws {
        // Under `mpirun -np N`: data-parallel training over MPI (Sources/DSIDistributed).
        // A plain run never initializes MPI.
        let mpi = try MPICommunicator.initializeIfLaunched()
        guard let mpi else { return try train(collective: nil) }
        do {
            try train(collective: mpi)
            mpi.finalize()
        } catch {
            // One rank's error must stop them all (the others would wait in the next
            // collective call for ever): name the rank, then abort the launch.
            FileHandle.standardError.write(Data("error: rank \(mpi.rank) of \(mpi.size): \(error)\n".utf8))
            mpi.abort(code: 1)
        }
    }

    func train(collective: MPICommunicator?) throws {
        try compute.apply()
        let budget: TrainingBudget =
            if let steps { .steps(steps) } else if let timeBudget { .minutes(timeBudget) } else { .epochs(epochs ?? 20) }
        let out = output ?? TrainingRun.defaultOutput(corpus: corpus)
        let lead = (collective?.rank ?? 0) == 0
        // Progress comes from rank 0 alone.
        let log: (String) -> Void = lead ? { FileHandle.standardError.write(Data(($0 + "\n").utf8)) } : { _ in }
        if let collective, batchSize < collective.size {
            throw ValidationError(
                "--batch-size \(batchSize) cannot be shared by \(collective.size) ranks: give at least \(collective.size)")
        }
        log(
            "kernels: OpenBLAS \(BLAS.coreName)" + (ComputeOptions.kernelsChosenAtStartup ? " (chosen at start-up for this CPU)" : "")
                + ", \(Threads.count) thread" + (Threads.count == 1 ? "" : "s")
                + (BLAS.precision == .bfloat16 ? ", large products in bfloat16 (float32 accumulation)" : "")
                + (collective.map { " per rank, \($0.size) MPI ranks" } ?? ""))
        var options = TrainingOptions()
        options.preset = preset
        if let docids { options.docids = docids }
        options.initMode = initMode
        options.seed = seed
        options.batchSize = batchSize
        options.learningRate = lr
        options.docidTokens = docidTokens
        options.layers = layers
        options.objective = objective
        options.sampledCandidates = sampledCandidates
        if let temperature { options.lsaTemperature = temperature }
        if let queryRepeats { options.queryRepeats = queryRepeats }
        if let spans { options.spansPerDocument = spans }
        if let sentences { options.sentencesPerDocument = sentences }
        if let viewWordDropout { options.viewWordDropout = viewWordDropout }
        let (trainer, index) = try TrainingRun.prepare(
            corpus: corpus, options: options, automaticDocIDs: docids == nil, output: out, resume: resume, log: log)
        let report = try trainer.train(
            index, budget: budget, output: out, evalEvery: evalEvery, collective: collective, calibrateFusion: calibrateFusion)
        guard lead else { return }
        if json {
            try printJSON(report)
        } else {
            print(report.text)
            print("checkpoint: \(out)")
        }
    }
}

/// Commands that write a checkpoint run as one process: under `mpirun -np N` the N copies
/// would write the same files. Only `dsi train` is data-parallel.
func refuseUnderMPI(_ command: String) throws {
    if MPICommunicator.launched {
        throw ValidationError(
            "dsi \(command) does not run under mpirun (its processes would all write the same checkpoint); only dsi train is data-parallel")
    }
}
