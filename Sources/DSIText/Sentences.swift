/// Splits a text into sentences, for the self-supervised query views (`dsi train`'s
/// sentence views and the held-out sentences of a zero-label dev split).
///
/// A sentence ends at `.`, `!` or `?` (and any closing quotes or brackets after it)
/// followed by white space and then an upper-case letter, a digit or an opening bracket,
/// or at the end of the text. So "e.g. the", "et al. (2019)" with a lower-case word after,
/// and decimals ("1.5") do not split; "et al. Smith" does (rare, and harmless for views).
/// A piece of fewer than `minWords` words is joined to the next one (headings such as
/// "BACKGROUND." or list labels are not queries).
///
/// The pieces are substrings of `text` cut only inside runs of white space after
/// punctuation, so no word is ever cut and `Tokenizer.encode` of the pieces, joined,
/// equals `Tokenizer.encode(text)`.
public enum Sentences {
    public static func split(_ text: String, minWords: Int = 4) -> [Substring] {
        var raw: [Substring] = []
        let chars = Array(text.indices)
        var start = text.startIndex
        var i = 0
        while i < chars.count {
            let c = text[chars[i]]
            guard c == "." || c == "!" || c == "?" else {
                i += 1
                continue
            }
            var j = i + 1
            while j < chars.count, "\"')]”’".contains(text[chars[j]]) { j += 1 }
            var k = j
            while k < chars.count, text[chars[k]].isWhitespace { k += 1 }
            if k == chars.count {
                break
            }
            let next = text[chars[k]]
            if k > j, next.isUppercase || next.isNumber || next == "(" || next == "[" {
                raw.append(text[start..<chars[j]])
                start = chars[k]
                i = k
            } else {
                i = j
            }
        }
        if start < text.endIndex { raw.append(text[start...]) }
        // Join pieces that are too short to stand alone onto the next one (a short last
        // piece onto the one before).
        var out: [Substring] = []
        var from: String.Index? = nil
        for piece in raw {
            let joined = text[(from ?? piece.startIndex)..<piece.endIndex]
            if wordCount(joined) >= minWords {
                out.append(joined)
                from = nil
            } else {
                from = joined.startIndex
            }
        }
        if let from, let end = raw.last?.endIndex {
            let start = out.popLast()?.startIndex ?? from
            out.append(text[start..<end])
        }
        return out.filter { wordCount($0) > 0 }
    }

    static func wordCount(_ s: Substring) -> Int {
        var n = 0
        var inWord = false
        for c in s {
            let w = c.isLetter || c.isNumber
            if w && !inWord { n += 1 }
            inWord = w
        }
        return n
    }
}
