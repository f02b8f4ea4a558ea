import DSIModel
import DSITensor
import DSIText
import Foundation

/// A training example: source tokens → the document's docid, or (`ngrams`) → `target`,
/// decoder tokens without EOS.
public struct TrainingExample: Sendable, Equatable {
    public var source: [Int32]
    public var document: Int
    public var target: [Int32]?

    public init(source: [Int32], document: Int, target: [Int32]? = nil) {
        self.source = source
        self.document = document
        self.target = target
    }
}
