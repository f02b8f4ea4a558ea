import DSIModel
import DSITensor
import DSIText
import Foundation

/// A batch of documents that arrived together: generation 0 is `dsi train`, each
/// `dsi add` appends one. Documents are stored in arrival order, so a generation is a
/// range of document positions (rows of docids.tsv).
public struct Generation: Codable, Sendable, Equatable {
    public var generation: Int
    public var firstDocument: Int
    public var documents: Int
    /// "train", or the `dsi add` mode.
    public var mode: String
    public var source: String
    public var created: String

    public init(
        generation: Int, firstDocument: Int, documents: Int, mode: String, source: String,
        created: String = ISO8601DateFormatter().string(from: Date())
    ) {
        self.generation = generation
        self.firstDocument = firstDocument
        self.documents = documents
        self.mode = mode
        self.source = source
        self.created = created
    }

    enum CodingKeys: String, CodingKey {
        case generation, documents, mode, source, created
        case firstDocument = "first_document"
    }
}
