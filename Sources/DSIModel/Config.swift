/// Shapes of the encoder-decoder. Vocabulary sizes and lengths are the maxima the model
/// was built for; batches may be shorter.
public struct ModelConfig: Codable, Equatable, Sendable {
    public var dModel: Int
    public var heads: Int
    public var ff: Int
    public var encoderLayers: Int
    public var decoderLayers: Int
    public var sourceVocab: Int
    public var sourceLength: Int
    public var targetVocab: Int
    public var targetLength: Int
    /// Dropout on every residual branch's output (training only).
    public var dropout: Float

    public init(
        dModel: Int = 256, heads: Int = 4, ff: Int = 1024, encoderLayers: Int = 4,
        decoderLayers: Int = 4, sourceVocab: Int = 8192, sourceLength: Int = 64,
        targetVocab: Int = 13, targetLength: Int = 9, dropout: Float = 0
    ) {
        self.dModel = dModel
        self.heads = heads
        self.ff = ff
        self.encoderLayers = encoderLayers
        self.decoderLayers = decoderLayers
        self.sourceVocab = sourceVocab
        self.sourceLength = sourceLength
        self.targetVocab = targetVocab
        self.targetLength = targetLength
        self.dropout = dropout
    }

    /// The reference configuration used for performance comparisons (and `--preset small`):
    /// d_model 256, 4 heads, ff 1024, 4 + 4 layers, source vocabulary 8192, source length
    /// 64, docid length 8 plus BOS (target length 9), decoder vocabulary 13.
    public static let reference = ModelConfig()

    /// Checks that the shapes make a model; the message says which field is wrong.
    public func validate() throws(ModelError) {
        func need(_ ok: Bool, _ field: String, _ what: String) throws(ModelError) {
            if !ok { throw .invalidConfig(field: field, expected: what) }
        }
        try need(dModel > 0, "dModel", "a positive width")
        try need(heads > 0 && dModel % heads == 0, "heads", "a positive divisor of dModel (\(dModel))")
        try need(ff > 0, "ff", "a positive feed-forward width")
        try need(encoderLayers >= 0 && decoderLayers >= 1, "layers", "≥ 0 encoder and ≥ 1 decoder layers")
        try need(sourceVocab > 0 && targetVocab > 0, "vocab", "positive vocabulary sizes")
        try need(sourceLength > 0 && targetLength > 0, "length", "positive source and target lengths")
        try need(dropout >= 0 && dropout < 1, "dropout", "a probability in [0, 1)")
    }

    /// Matmul FLOPs (2·m·n·k) of one forward pass over a (B, S) source and (B, T) target,
    /// counted exactly as `../shared/peers/torch_dsi.py` counts them; a training step is
    /// taken as 3× the forward pass (backward = input and weight gradients).
    public func forwardFLOPs(batch B: Int, sourceLength S: Int, targetLength T: Int) -> Double {
        let d = Double(dModel)
        let f = Double(ff)
        let Sd = Double(S)
        let Td = Double(T)
        let Bd = Double(B)
        let Ts = Bd * Sd
        let Tt = Bd * Td
        let enc = Double(encoderLayers) * (8 * Ts * d * d + 4 * Ts * d * f + 4 * Bd * Sd * Sd * d)
        let dec =
            Double(decoderLayers)
            * (8 * Tt * d * d + 4 * Bd * Td * Td * d
                + 4 * Tt * d * d + 4 * Ts * d * d + 4 * Bd * Td * Sd * d + 4 * Tt * d * f)
        let out = 2 * Tt * d * Double(targetVocab)
        return enc + dec + out
    }
}

public enum ModelError: Error, CustomStringConvertible, Equatable {
    case invalidConfig(field: String, expected: String)
    case invalidBatch(String)
    /// A training step's loss or gradient norm was NaN or infinite; no update was applied.
    case nonFinite(loss: Float, gradNorm: Float)

    public var description: String {
        switch self {
        case .invalidConfig(let field, let expected): "invalid model configuration: \(field): expected \(expected)"
        case .invalidBatch(let why): "invalid batch: \(why)"
        case .nonFinite(let loss, let norm): "non-finite training step (loss \(loss), gradient norm \(norm)); the update was not applied"
        }
    }
}
