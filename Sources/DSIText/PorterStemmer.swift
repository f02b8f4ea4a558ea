/// The Porter stemming algorithm (M. F. Porter, 1980, "An algorithm for suffix
/// stripping"), on lower-case ASCII words; other words are returned unchanged.
public enum PorterStemmer {
    public static func stem(_ word: String) -> String {
        guard word.count > 2, word.allSatisfy({ $0.isASCII && $0.isLetter }) else { return word }
        var w = Array(word.utf8)
        step1a(&w)
        step1b(&w)
        step1c(&w)
        step2(&w)
        step3(&w)
        step4(&w)
        step5(&w)
        return String(decoding: w, as: UTF8.self)
    }

    private static func isConsonant(_ w: [UInt8], _ i: Int) -> Bool {
        switch w[i] {
        case UInt8(ascii: "a"), UInt8(ascii: "e"), UInt8(ascii: "i"), UInt8(ascii: "o"), UInt8(ascii: "u"): return false
        case UInt8(ascii: "y"): return i == 0 ? true : !isConsonant(w, i - 1)
        default: return true
        }
    }

    /// m: the number of VC sequences in w[0..<end].
    private static func measure(_ w: [UInt8], _ end: Int) -> Int {
        var m = 0
        var i = 0
        while i < end && isConsonant(w, i) { i += 1 }
        while i < end {
            while i < end && !isConsonant(w, i) { i += 1 }
            if i >= end { break }
            while i < end && isConsonant(w, i) { i += 1 }
            m += 1
        }
        return m
    }

    private static func hasVowel(_ w: [UInt8], _ end: Int) -> Bool { (0..<end).contains { !isConsonant(w, $0) } }

    private static func endsDoubleConsonant(_ w: [UInt8], _ end: Int) -> Bool {
        end >= 2 && w[end - 1] == w[end - 2] && isConsonant(w, end - 1)
    }

    /// *o: the stem ends cvc, the last c not w, x or y.
    private static func cvc(_ w: [UInt8], _ end: Int) -> Bool {
        guard end >= 3, isConsonant(w, end - 1), !isConsonant(w, end - 2), isConsonant(w, end - 3) else { return false }
        let c = w[end - 1]
        return c != UInt8(ascii: "w") && c != UInt8(ascii: "x") && c != UInt8(ascii: "y")
    }

    private static func ends(_ w: [UInt8], _ s: String) -> Bool {
        let s = Array(s.utf8)
        return w.count >= s.count && Array(w[(w.count - s.count)...]) == s
    }

    /// Replaces suffix `s` by `r` when the remaining stem has measure > `m`.
    @discardableResult
    private static func replace(_ w: inout [UInt8], _ s: String, _ r: String, ifMeasureAbove m: Int) -> Bool {
        guard ends(w, s) else { return false }
        let stemEnd = w.count - s.utf8.count
        if measure(w, stemEnd) > m { w = Array(w[..<stemEnd]) + Array(r.utf8) }
        return true
    }

    private static func step1a(_ w: inout [UInt8]) {
        if ends(w, "sses") {
            w.removeLast(2)
        } else if ends(w, "ies") {
            w.removeLast(2)
        } else if ends(w, "ss") {
        } else if ends(w, "s") {
            w.removeLast()
        }
    }

    private static func step1b(_ w: inout [UInt8]) {
        if ends(w, "eed") {
            if measure(w, w.count - 3) > 0 { w.removeLast() }
            return
        }
        var stripped = false
        if ends(w, "ed"), hasVowel(w, w.count - 2) {
            w.removeLast(2)
            stripped = true
        } else if ends(w, "ing"), hasVowel(w, w.count - 3) {
            w.removeLast(3)
            stripped = true
        }
        guard stripped else { return }
        if ends(w, "at") || ends(w, "bl") || ends(w, "iz") {
            w.append(UInt8(ascii: "e"))
        } else if endsDoubleConsonant(w, w.count), !(ends(w, "l") || ends(w, "s") || ends(w, "z")) {
            w.removeLast()
        } else if measure(w, w.count) == 1 && cvc(w, w.count) {
            w.append(UInt8(ascii: "e"))
        }
    }

    private static func step1c(_ w: inout [UInt8]) {
        if ends(w, "y"), hasVowel(w, w.count - 1) { w[w.count - 1] = UInt8(ascii: "i") }
    }

    private static let step2Rules: [(String, String)] = [
        ("ational", "ate"), ("tional", "tion"), ("enci", "ence"), ("anci", "ance"), ("izer", "ize"), ("abli", "able"),
        ("alli", "al"), ("entli", "ent"), ("eli", "e"), ("ousli", "ous"), ("ization", "ize"), ("ation", "ate"),
        ("ator", "ate"), ("alism", "al"), ("iveness", "ive"), ("fulness", "ful"), ("ousness", "ous"), ("aliti", "al"),
        ("iviti", "ive"), ("biliti", "ble"),
    ]
    private static let step3Rules: [(String, String)] = [
        ("icate", "ic"), ("ative", ""), ("alize", "al"), ("iciti", "ic"), ("ical", "ic"), ("ful", ""), ("ness", ""),
    ]
    private static let step4Suffixes = [
        "al", "ance", "ence", "er", "ic", "able", "ible", "ant", "ement", "ment", "ent", "ion", "ou", "ism", "ate",
        "iti", "ous", "ive", "ize",
    ]

    private static func step2(_ w: inout [UInt8]) {
        for (s, r) in step2Rules where ends(w, s) {
            replace(&w, s, r, ifMeasureAbove: 0)
            return
        }
    }

    private static func step3(_ w: inout [UInt8]) {
        for (s, r) in step3Rules where ends(w, s) {
            replace(&w, s, r, ifMeasureAbove: 0)
            return
        }
    }

    private static func step4(_ w: inout [UInt8]) {
        // Longest matching suffix first ("ement" before "ment" before "ent").
        for s in step4Suffixes.sorted(by: { $0.count > $1.count }) where ends(w, s) {
            let stemEnd = w.count - s.utf8.count
            if s == "ion" {
                guard stemEnd > 0, w[stemEnd - 1] == UInt8(ascii: "s") || w[stemEnd - 1] == UInt8(ascii: "t") else { return }
            }
            if measure(w, stemEnd) > 1 { w.removeLast(s.utf8.count) }
            return
        }
    }

    private static func step5(_ w: inout [UInt8]) {
        if ends(w, "e") {
            let m = measure(w, w.count - 1)
            if m > 1 || (m == 1 && !cvc(w, w.count - 1)) { w.removeLast() }
        }
        if measure(w, w.count) > 1 && endsDoubleConsonant(w, w.count) && ends(w, "l") { w.removeLast() }
    }
}
