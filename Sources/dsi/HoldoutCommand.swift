import ArgumentParser
import DSIIndex
import Foundation

struct HoldoutCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "holdout",
        abstract: "Split a corpus for continual-indexing experiments: hold out a share of the documents (by a hash of the id).",
        discussion: """
        Writes OUTPUT/corpus.jsonl without the held-out documents, copies queries.jsonl and \
        qrels/ (dsi train skips and counts qrels naming held-out documents), and writes the \
        held-out documents to OUTPUT/held-out.jsonl, ready for dsi add --documents.
        """)

    @Option(help: "Corpus directory (BEIR layout).") var corpus: String
    @Option(help: "Share of documents to hold out.") var fraction: Double = 0.1
    @Option(help: "Directory to write (must not exist).") var output: String
    @Flag(help: "Print one JSON object.") var json = false

    func run() throws {
        guard fraction > 0, fraction < 1 else { throw ValidationError("--fraction must be in (0, 1), got \(fraction)") }
        let fm = FileManager.default
        guard !fm.fileExists(atPath: output) else { throw ValidationError("\(output) exists; choose a new directory") }
        let c = try Corpus(directory: corpus)  // validates every line first
        let held = Set(c.documents.map(\.id).filter { Corpus.isHeldOut($0, fraction: fraction) })
        let tmp = output + ".tmp-\(UUID().uuidString)"
        try fm.createDirectory(atPath: tmp + "/qrels", withIntermediateDirectories: true)
        var kept = "", out = ""
        for (_, line) in LineReader(path: corpus + "/corpus.jsonl") {
            guard let line, !line.trimmingCharacters(in: .whitespaces).isEmpty,
                  let obj = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], let id = obj["id"] as? String else { continue }
            if held.contains(id) { out += line + "\n" } else { kept += line + "\n" }
        }
        try kept.write(toFile: tmp + "/corpus.jsonl", atomically: false, encoding: .utf8)
        try out.write(toFile: tmp + "/held-out.jsonl", atomically: false, encoding: .utf8)
        try fm.copyItem(atPath: corpus + "/queries.jsonl", toPath: tmp + "/queries.jsonl")
        for split in c.splits { try fm.copyItem(atPath: corpus + "/qrels/\(split).tsv", toPath: tmp + "/qrels/\(split).tsv") }
        try fm.moveItem(atPath: tmp, toPath: output)
        if json {
            print(String(data: try JSONSerialization.data(withJSONObject: ["documents": c.documents.count, "kept": c.documents.count - held.count, "held_out": held.count], options: [.sortedKeys]), encoding: .utf8)!)
        } else {
            print("\(c.documents.count - held.count) documents kept in \(output)/corpus.jsonl, \(held.count) held out in \(output)/held-out.jsonl")
        }
    }
}
