import DSIText
import Foundation
import Testing

let sampleTexts = [
    "The mitochondria is the powerhouse of the cell.",
    "Mitochondrial dysfunction drives cellular ageing; cells age.",
    "Powerhouse cells: the cell cycle and the CELL membrane.",
    "Ｆｕｌｌｗｉｄｔｈ text, ligatures ﬁ and Ⅻ numerals normalise (NFKC).",
    "Vitamin D3 and IL-6 in 2019 COVID-19 patients; β-cells.",
]

@Suite("BPE tokenizer")
struct TokenizerTests {
    @Test("normalises with NFKC and lower case; words are runs of letters and digits")
    func normalisation() {
        #expect(Tokenizer.normalize("Ｆｕｌｌ ﬁle Ⅻ ÉCOLE") == "full file xii école")
        #expect(Tokenizer.words("il-6 in covid-19, β-cells!").map(String.init) == ["il", "6", "in", "covid", "19", "β", "cells"])
        #expect(Tokenizer.words("  ").isEmpty)
    }

    @Test("encodes and decodes back to the normalised words")
    func roundTrip() {
        let tok = Tokenizer.train(texts: sampleTexts, vocabSize: 120, minCharacterCount: 1)
        for t in sampleTexts {
            let ids = tok.encode(t)
            #expect(!ids.contains(Tokenizer.unk))
            #expect(tok.decode(ids) == Tokenizer.words(Tokenizer.normalize(t)).joined(separator: " "))
        }
        // Frequent words become single tokens.
        #expect(tok.encode("the cell").count == 2)
        // Unseen characters fall back to [UNK], unseen words to pieces.
        #expect(tok.encode("ж").contains(Tokenizer.unk))
        #expect(tok.encode("cellular powerhouse").count >= 2)
    }

    @Test("a title and a text encoded apart and joined equal the two encoded together (words never span the space)")
    func joinedEncoding() {
        let tok = Tokenizer.train(texts: sampleTexts, vocabSize: 120, minCharacterCount: 1)
        let pairs = [
            ("The Quick Fox", "jumps over 12 lazy dogs."), ("", "only text"), ("only title", ""),
            ("Caf\u{E9}-\u{FB01}x", "\u{301}mark, end"),
            ("ends with digit 9", "9 starts with one"), ("Ⅻ ½", "x²"),
        ]
        for (title, text) in pairs {
            #expect(tok.encode(title + " " + text) == tok.encode(title) + tok.encode(text), "\(title) | \(text)")
        }
    }

    @Test("training is deterministic and respects the vocabulary size")
    func deterministic() throws {
        let a = Tokenizer.train(texts: sampleTexts, vocabSize: 100)
        let b = Tokenizer.train(texts: sampleTexts.reversed(), vocabSize: 100)
        #expect(a.vocab == b.vocab)
        #expect(try a.jsonData() == b.jsonData())
        #expect(a.count <= 100)
        #expect(Set(a.vocab).count == a.vocab.count)
        #expect(Array(a.vocab.prefix(5)) == Tokenizer.specials)
    }

    @Test("tokenizer.json reloads bit-identically")
    func saveLoad() throws {
        let tok = Tokenizer.train(texts: sampleTexts, vocabSize: 150, minCharacterCount: 1)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tok-\(UUID().uuidString).json").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try tok.save(to: path)
        let back = try Tokenizer.load(from: path)
        #expect(back.vocab == tok.vocab)
        #expect(try back.jsonData() == tok.jsonData())
        for t in sampleTexts { #expect(back.encode(t) == tok.encode(t)) }
    }

    @Test("a corrupt or foreign tokenizer file is refused with the reason")
    func refusesBadFiles() throws {
        let tok = Tokenizer.train(texts: sampleTexts, vocabSize: 100)
        var obj = try JSONSerialization.jsonObject(with: try tok.jsonData()) as! [String: Any]
        obj["version"] = 99
        var data = try JSONSerialization.data(withJSONObject: obj)
        #expect { _ = try Tokenizer.load(data: data) } throws: { "\($0)".contains("version 99") }
        obj["version"] = 1
        var vocab = obj["vocab"] as! [String]
        vocab[vocab.count - 1] = "zz-not-a-merge"
        obj["vocab"] = vocab
        data = try JSONSerialization.data(withJSONObject: obj)
        #expect { _ = try Tokenizer.load(data: data) } throws: { "\($0)".contains("does not produce token") }
        #expect { _ = try Tokenizer.load(data: Data("{}".utf8)) } throws: { "\($0)".contains("not a tokenizer file") }
    }
}
