import Foundation

/// A byte-pair-encoding subword tokenizer (Sennrich et al. 2016) trained on the corpus.
///
/// Why BPE: training is deterministic and fast (incremental pair counts, seconds on
/// SciFact), every word is representable (merges fall back to characters), and frequent
/// domain terms ("apoptosis", "mrna") become single tokens, which keeps a 64-token window
/// informative and gives the LSA initialisation meaningful term vectors.
///
/// Normalisation: Unicode NFKC, then lower-casing. Words are maximal runs of letters and
/// digits; punctuation and spaces separate words and are not tokens (retrieval gains
/// nothing from them in a short window). Each word starts with the marker "▁" so that
/// word-initial pieces differ from inner ones.
public final class Tokenizer: @unchecked Sendable {
    public static let pad: Int32 = 0, unk: Int32 = 1, bos: Int32 = 2, eos: Int32 = 3, sep: Int32 = 4
    public static let specials = ["[PAD]", "[UNK]", "[BOS]", "[EOS]", "[SEP]"]
    public static let wordMarker = "▁"

    /// Token strings by id.
    public let vocab: [String]
    /// Merges in rank order: (left, right) ids; the result is id `firstMergeID + rank`.
    public let merges: [(Int32, Int32)]
    /// Id of the first merged token (after specials and the alphabet).
    public let firstMergeID: Int32
    /// Per token id: does it start a word (its string begins with `wordMarker`)?
    public let wordStart: [Bool]
    private let ids: [String: Int32]
    private let rank: [UInt64: Int32]
    private let cacheLock = NSLock()
    private var cache: [Substring: [Int32]] = [:]

    public var count: Int { vocab.count }

    init(vocab: [String], merges: [(Int32, Int32)], firstMergeID: Int32) {
        self.vocab = vocab
        self.merges = merges
        self.firstMergeID = firstMergeID
        wordStart = vocab.map { $0.hasPrefix(Self.wordMarker) }
        var ids: [String: Int32] = [:]
        for (i, t) in vocab.enumerated() where ids[t] == nil { ids[t] = Int32(i) }
        self.ids = ids
        var rank: [UInt64: Int32] = [:]
        for (r, m) in merges.enumerated() { rank[Self.key(m.0, m.1)] = Int32(r) }
        self.rank = rank
    }

    @inline(__always) static func key(_ a: Int32, _ b: Int32) -> UInt64 { UInt64(UInt32(a)) << 32 | UInt64(UInt32(b)) }

    public func id(of token: String) -> Int32? { ids[token] }

    // MARK: - Normalisation

    /// NFKC, then lower-case.
    public static func normalize(_ text: String) -> String {
        text.precomposedStringWithCompatibilityMapping.lowercased()
    }

    /// The words of an already normalised text: maximal runs of letters and digits.
    public static func words(_ normalized: String) -> [Substring] {
        var out: [Substring] = []
        var start: String.Index? = nil
        var i = normalized.startIndex
        while i < normalized.endIndex {
            let c = normalized[i]
            if c.isLetter || c.isNumber {
                if start == nil { start = i }
            } else if let s = start {
                out.append(normalized[s..<i])
                start = nil
            }
            i = normalized.index(after: i)
        }
        if let s = start { out.append(normalized[s...]) }
        return out
    }

    // MARK: - Encoding

    /// Token ids of `text` (no BOS/EOS; the caller adds what its task needs).
    public func encode(_ text: String) -> [Int32] {
        var out: [Int32] = []
        for w in Self.words(Self.normalize(text)) { out += encodeWord(w) }
        return out
    }

    /// Token ids of one normalised word, with its marker.
    public func encodeWord(_ word: Substring) -> [Int32] {
        cacheLock.lock()
        if let hit = cache[word] {
            cacheLock.unlock()
            return hit
        }
        cacheLock.unlock()
        var symbols: [Int32] = [ids[Self.wordMarker] ?? Self.unk]
        for ch in word { symbols.append(ids[String(ch)] ?? Self.unk) }
        // Repeatedly merge the adjacent pair with the lowest rank (the order learned).
        while symbols.count > 1 {
            var best = Int32.max
            var at = -1
            for j in 0..<(symbols.count - 1) {
                if let r = rank[Self.key(symbols[j], symbols[j + 1])], r < best {
                    best = r
                    at = j
                }
            }
            if at < 0 { break }
            symbols[at] = firstMergeID + best
            symbols.remove(at: at + 1)
        }
        cacheLock.lock()
        if cache.count < 1 << 20 { cache[word] = symbols }
        cacheLock.unlock()
        return symbols
    }

    /// Text of token ids: pieces joined, word markers as spaces, specials dropped.
    public func decode(_ tokens: [Int32]) -> String {
        var s = ""
        for t in tokens where t >= Int32(Self.specials.count) && Int(t) < vocab.count { s += vocab[Int(t)] }
        return s.replacingOccurrences(of: Self.wordMarker, with: " ").trimmingCharacters(in: .whitespaces)
    }

    // MARK: - Training

    /// Learns a vocabulary of at most `vocabSize` tokens from `texts`. Characters seen
    /// fewer than `minCharacterCount` times map to [UNK]; merging stops early when no
    /// pair occurs `minPairCount` times. Deterministic: the same texts give the same
    /// tokenizer (ties are broken by the pair's ids).
    public static func train(texts: some Sequence<String>, vocabSize: Int = 8192, minCharacterCount: Int = 2, minPairCount: Int = 2)
        -> Tokenizer
    {
        // Word frequencies.
        var freq: [String: Int] = [:]
        for t in texts {
            for w in words(normalize(t)) { freq[String(w), default: 0] += 1 }
        }
        // Alphabet: characters by total count, in a fixed (code point) order.
        var charCount: [String: Int] = [:]
        for (w, n) in freq { for ch in w { charCount[String(ch), default: 0] += n } }
        let alphabet = charCount.filter { $0.value >= minCharacterCount }.keys.sorted {
            $0.unicodeScalars.lexicographicallyPrecedes($1.unicodeScalars)
        }
        var vocab = specials + [wordMarker] + alphabet
        var ids: [String: Int32] = [:]
        for (i, t) in vocab.enumerated() { ids[t] = Int32(i) }
        let firstMergeID = Int32(vocab.count)

        // Words as symbol arrays, in a fixed order.
        let wordList = freq.keys.sorted { $0.unicodeScalars.lexicographicallyPrecedes($1.unicodeScalars) }
        var words: [[Int32]] = wordList.map { w in [ids[wordMarker]!] + w.map { ids[String($0)] ?? unk } }
        let counts = wordList.map { freq[$0]! }

        var pairCount: [UInt64: Int] = [:]
        var whereFound: [UInt64: [Int32]] = [:]
        for (wi, w) in words.enumerated() where w.count > 1 {
            for j in 0..<(w.count - 1) {
                let k = key(w[j], w[j + 1])
                pairCount[k, default: 0] += counts[wi]
                whereFound[k, default: []].append(Int32(wi))
            }
        }
        var heap = PairHeap()
        for (k, c) in pairCount { heap.push(c, k) }

        var merges: [(Int32, Int32)] = []
        var visited = [Int](repeating: -1, count: words.count)
        while vocab.count < vocabSize, let (c, k) = heap.pop() {
            guard pairCount[k] == c else { continue }  // stale entry
            if c < minPairCount { break }
            let a = Int32(truncatingIfNeeded: k >> 32)
            let b = Int32(truncatingIfNeeded: k & 0xFFFF_FFFF)
            guard a != unk, b != unk else {
                pairCount[k] = 0
                continue
            }
            let newID = Int32(vocab.count)
            vocab.append(vocab[Int(a)] + vocab[Int(b)])
            merges.append((a, b))
            var touched = Set<UInt64>()
            for wi32 in whereFound[k] ?? [] {
                let wi = Int(wi32)
                if visited[wi] == merges.count { continue }
                visited[wi] = merges.count
                let old = words[wi]
                guard old.count > 1 else { continue }
                let n = counts[wi]
                var merged: [Int32] = []
                merged.reserveCapacity(old.count)
                var j = 0
                var changed = false
                while j < old.count {
                    if j + 1 < old.count && old[j] == a && old[j + 1] == b {
                        merged.append(newID)
                        j += 2
                        changed = true
                    } else {
                        merged.append(old[j])
                        j += 1
                    }
                }
                if !changed { continue }
                for x in 0..<(old.count - 1) {
                    let pk = key(old[x], old[x + 1])
                    pairCount[pk, default: 0] -= n
                    touched.insert(pk)
                }
                for x in 0..<max(0, merged.count - 1) {
                    let pk = key(merged[x], merged[x + 1])
                    pairCount[pk, default: 0] += n
                    whereFound[pk, default: []].append(Int32(wi))
                    touched.insert(pk)
                }
                words[wi] = merged
            }
            whereFound[k] = nil
            for pk in touched {
                let pc = pairCount[pk] ?? 0
                if pc > 0 { heap.push(pc, pk) } else { pairCount[pk] = nil }
            }
        }
        return Tokenizer(vocab: vocab, merges: merges, firstMergeID: firstMergeID)
    }
}

/// A max-heap of (count, pair key): larger count first, then smaller key, so training
/// is deterministic.
struct PairHeap {
    private var items: [(Int, UInt64)] = []

    @inline(__always) private func above(_ x: (Int, UInt64), _ y: (Int, UInt64)) -> Bool {
        x.0 != y.0 ? x.0 > y.0 : x.1 < y.1
    }

    mutating func push(_ count: Int, _ key: UInt64) {
        items.append((count, key))
        var i = items.count - 1
        while i > 0 {
            let p = (i - 1) / 2
            if above(items[i], items[p]) {
                items.swapAt(i, p)
                i = p
            } else {
                break
            }
        }
    }

    mutating func pop() -> (Int, UInt64)? {
        guard let top = items.first else { return nil }
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1
                let r = l + 1
                var m = i
                if l < items.count && above(items[l], items[m]) { m = l }
                if r < items.count && above(items[r], items[m]) { m = r }
                if m == i { break }
                items.swapAt(i, m)
                i = m
            }
        }
        return top
    }
}
