import DSIModel

/// Model sizes: `small` is the reference configuration.
public enum Preset: String, Codable, Sendable, CaseIterable {
    case tiny, small, base

    public func modelConfig(sourceVocab: Int, sourceLength: Int, targetVocab: Int, targetLength: Int, dropout: Float) -> ModelConfig {
        let (d, h, f, l): (Int, Int, Int, Int) =
            switch self {
            case .tiny: (128, 4, 512, 2)
            case .small: (256, 4, 1024, 4)
            case .base: (512, 8, 2048, 6)
            }
        return ModelConfig(
            dModel: d, heads: h, ff: f, encoderLayers: l, decoderLayers: l, sourceVocab: sourceVocab,
            sourceLength: sourceLength, targetVocab: targetVocab, targetLength: targetLength, dropout: dropout)
    }

    public var learningRate: Float {
        switch self {
        case .tiny: 1e-3
        case .small: 5e-4
        case .base: 3e-4
        }
    }
}
