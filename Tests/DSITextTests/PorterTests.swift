import DSIText
import Testing

@Suite("Porter stemmer")
struct PorterTests {
    @Test("the examples of Porter's paper")
    func examples() {
        let cases = [
            "caresses": "caress", "ponies": "poni", "ties": "ti", "caress": "caress", "cats": "cat", "feed": "feed",
            "agreed": "agre", "plastered": "plaster", "bled": "bled", "motoring": "motor", "sing": "sing",
            "conflated": "conflat", "hopping": "hop", "tanned": "tan", "falling": "fall", "hissing": "hiss",
            "fizzed": "fizz", "failing": "fail", "filing": "file", "happy": "happi", "sky": "sky",
            "relational": "relat", "generalizations": "gener", "electrical": "electr", "adjustable": "adjust",
            "effective": "effect", "hopeful": "hope", "goodness": "good", "controll": "control", "roll": "roll",
        ]
        for (word, stem) in cases { #expect(PorterStemmer.stem(word) == stem, "\(word)") }
        #expect(PorterStemmer.stem("covid19") == "covid19" && PorterStemmer.stem("βcells") == "βcells")
    }
}
