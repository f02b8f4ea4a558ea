import DSITensor
import Foundation

/// A synthetic collection for `dsi bench scale`, generated deterministically from a seed:
/// each document belongs to one of `topics` topics and has 50-300 words, each word drawn
/// from a Zipf distribution (exponent 1) over a 50,000-word vocabulary, half the time
/// through its topic's own permutation of the ranks, so the collection has the topical
/// structure LSA and k-means find in real text. Words are pronounceable pseudo-words.
/// Writes `corpus.jsonl` (BEIR layout, no queries) and `queries.txt` (one query per line:
/// eight words of a document, for timing searches).
public enum SyntheticCorpus {
    public static let vocabulary = 50_000

    public static func write(documents n: Int, to directory: String, seed: UInt64 = 1, topics: Int = 200, queries: Int = 200) throws {
        let fm = FileManager.default
        try fm.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let words = (0..<vocabulary).map(word)
        // Zipf(1) over ranks 1...V by inverse CDF on the harmonic numbers.
        var cdf = [Double](repeating: 0, count: vocabulary)
        var acc = 0.0
        for r in 0..<vocabulary {
            acc += 1 / Double(r + 1)
            cdf[r] = acc
        }
        func zipf(_ rng: inout SeededRNG) -> Int {
            let u = Double(rng.next() >> 11) / 9_007_199_254_740_992 * acc
            var lo = 0
            var hi = vocabulary - 1
            while lo < hi {
                let mid = (lo + hi) / 2
                if cdf[mid] < u { lo = mid + 1 } else { hi = mid }
            }
            return lo
        }
        var rng = SeededRNG(seed: seed)
        let path = (directory as NSString).appendingPathComponent("corpus.jsonl")
        _ = fm.createFile(atPath: path, contents: nil)
        guard let out = FileHandle(forWritingAtPath: path) else {
            throw InputError(file: path, line: 0, "cannot be written")
        }
        defer { try? out.close() }
        var queryLines: [String] = []
        let queryEvery = max(1, n / queries)
        var buffer = ""
        for d in 0..<n {
            let topic = rng.int(below: topics)
            let length = 50 + rng.int(below: 251)
            var text: [String] = []
            text.reserveCapacity(length)
            for _ in 0..<length {
                let r = zipf(&rng)
                let w = Double(rng.next() >> 11) / 9_007_199_254_740_992 < 0.5 ? r : (r &* 7919 &+ topic &* 104_729 &+ 13) % vocabulary
                text.append(words[w])
            }
            let title = text.prefix(6).joined(separator: " ")
            buffer += "{\"id\":\"s\(d)\",\"title\":\"\(title)\",\"text\":\"\(text.joined(separator: " "))\"}\n"
            if d % queryEvery == 0 && queryLines.count < queries {
                let start = rng.int(below: text.count - 8)
                queryLines.append(text[start..<(start + 8)].joined(separator: " "))
            }
            if buffer.utf8.count > 1 << 22 {
                out.write(Data(buffer.utf8))
                buffer = ""
            }
        }
        out.write(Data(buffer.utf8))
        try (queryLines.joined(separator: "\n") + "\n").write(
            toFile: (directory as NSString).appendingPathComponent("queries.txt"), atomically: true, encoding: .utf8)
    }

    /// The pseudo-word of rank `i`: consonant-vowel syllables spelling i in base 100.
    static func word(_ i: Int) -> String {
        let consonants = Array("bcdfghjklmnprstvwxyz")
        let vowels = Array("aeiou")
        var n = i
        var s = ""
        repeat {
            let k = n % 100
            s.append(consonants[k / 5])
            s.append(vowels[k % 5])
            n /= 100
        } while n > 0
        return s
    }
}
