import DSIModel
import DSITensor
import DSIText
import Foundation

/// A training example: source tokens → the document's docid.
public struct TrainingExample: Sendable, Equatable {
    public var source: [Int32]
    public var document: Int

    public init(source: [Int32], document: Int) {
        self.source = source
        self.document = document
    }
}
