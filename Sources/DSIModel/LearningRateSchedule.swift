#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The one learning-rate schedule: linear warm-up over the first `warmupFraction` of the
/// run to `peak` (from 1% of it), then cosine decay to `peak · floor` at the end. Written
/// in terms of progress (0...1) so that step budgets and wall-time budgets share it.
public struct LearningRateSchedule: Sendable, Equatable, Codable {
    public var peak: Float
    public var warmupFraction: Double
    public var floor: Double

    public init(peak: Float, warmupFraction: Double = 0.05, floor: Double = 0.1) {
        self.peak = peak
        self.warmupFraction = warmupFraction
        self.floor = floor
    }

    /// The rate at `progress` (the share of the run done; clamped to 0...1).
    public func rate(progress: Double) -> Float {
        let p = min(1, max(0, progress))
        let w = warmupFraction
        if p < w { return peak * Float(max(p / w, 0.01)) }
        let q = min(1, (p - w) / max(1e-9, 1 - w))
        return peak * Float(floor + (1 - floor) * 0.5 * (1 + cos(Double.pi * q)))
    }

    /// The rate of update number `step` (0-based) of `total`.
    public func rate(step: Int, of total: Int) -> Float {
        rate(progress: total > 0 ? Double(step) / Double(total) : 1)
    }
}
