import DSIModel

/// How long to train: steps, epochs, or minutes of wall time.
public enum TrainingBudget: Sendable, Equatable, Codable {
    case steps(Int)
    case epochs(Double)
    case minutes(Double)
}
