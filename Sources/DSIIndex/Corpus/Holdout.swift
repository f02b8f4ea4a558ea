import Foundation

/// `dsi holdout`: splits a corpus for continual-indexing experiments. The documents whose
/// id hashes into `fraction` (`Corpus.isHeldOut`) go to `held-out.jsonl`, the rest to
/// `corpus.jsonl`; queries and qrels are copied (`dsi train` skips and counts qrels
/// naming held-out documents). Lines are copied as they are, in order.
public enum Holdout {
    public struct Report: Sendable, Codable, Equatable {
        public var documents: Int
        public var kept: Int
        public var heldOut: Int
        enum CodingKeys: String, CodingKey {
            case documents
            case kept
            case heldOut = "held_out"
        }
    }

    public struct Refusal: Error, CustomStringConvertible {
        public let description: String
    }

    /// Writes the split to `output` (which must not exist) through a temporary sibling
    /// renamed into place, so an interrupted run leaves nothing half-written.
    public static func split(corpus directory: String, fraction: Double, output: String) throws -> Report {
        guard fraction > 0, fraction < 1 else { throw Refusal(description: "--fraction must be in (0, 1), got \(fraction)") }
        let fm = FileManager.default
        guard !fm.fileExists(atPath: output) else { throw Refusal(description: "\(output) exists; choose a new directory") }
        let c = try Corpus(directory: directory)  // validates every line first
        let corpusPath = (directory as NSString).appendingPathComponent("corpus.jsonl")
        let tmp = output + ".tmp-\(UUID().uuidString)"
        try fm.createDirectory(atPath: tmp + "/qrels", withIntermediateDirectories: true)
        do {
            var kept = ""
            var out = ""
            var nKept = 0
            var nHeld = 0
            // The ids as Corpus read them (string or integer ids alike), line by line.
            try Corpus.readJSONL(corpusPath, required: true) { line, obj, text throws(InputError) in
                let id = try Corpus.string(obj, "id", corpusPath, line)
                if Corpus.isHeldOut(id, fraction: fraction) {
                    out += text + "\n"
                    nHeld += 1
                } else {
                    kept += text + "\n"
                    nKept += 1
                }
            }
            precondition(nKept + nHeld == c.documents.count, "holdout: \(nKept) + \(nHeld) lines for \(c.documents.count) documents")
            try kept.write(toFile: tmp + "/corpus.jsonl", atomically: false, encoding: .utf8)
            try out.write(toFile: tmp + "/held-out.jsonl", atomically: false, encoding: .utf8)
            let queries = (directory as NSString).appendingPathComponent("queries.jsonl")
            if fm.fileExists(atPath: queries) { try fm.copyItem(atPath: queries, toPath: tmp + "/queries.jsonl") }
            for split in c.splits { try fm.copyItem(atPath: directory + "/qrels/\(split).tsv", toPath: tmp + "/qrels/\(split).tsv") }
            try fm.moveItem(atPath: tmp, toPath: output)
            return Report(documents: c.documents.count, kept: nKept, heldOut: nHeld)
        } catch {
            try? fm.removeItem(atPath: tmp)
            throw error
        }
    }
}
