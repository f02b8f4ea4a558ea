import DSIModel
import DSITensor
import Foundation

/// How documents get their identifiers.
public enum DocIDScheme: String, Codable, Sendable, CaseIterable {
    /// Digit strings from recursive k-means over LSA document vectors (DSI's semantic
    /// docids): documents with similar content share prefixes.
    case semantic
    /// One output token per document.
    case atomic
    /// The corpus id's digits, or a random unique number where ids are not all numeric.
    case naive
    /// A short sequence of the document's most distinctive tokens (its highest TF-IDF
    /// tokens, strongest first: keyword identifiers after ACID and SE-DSI, without a
    /// pretrained generator), `TermDocIDs.length` of them, made unique by construction
    /// (`TermDocIDs`), decoded over a trie of those tokens.
    case terms
    /// No docid to generate: the decoder generates n-grams that occur in the corpus
    /// (tokenizer tokens, constrained by an `NGramIndex`), and documents are ranked by the
    /// n-grams they contain (`NGramSearch`, after SEAL). A document is known by its
    /// position ("#i", as atomic docids), and a document added later is searchable as soon
    /// as its tokens are in the index.
    case ngrams
}
