import DSIModel
import DSITensor
import Testing

/// Centred finite differences against an analytic gradient.
///
/// Float32 forward passes make differences noisy, so the loss is accumulated in Double and
/// an element passes when |numeric − analytic| ≤ atol + rtol·max(|numeric|, |analytic|).
/// Up to `samples` elements are checked, spread evenly over the tensor.
func expectGradient(
    _ name: String, x: Tensor, analytic: Tensor, eps: Float = 1e-2, rtol: Double = 2e-2,
    atol: Double = 1e-3, samples: Int = 64, sourceLocation: SourceLocation = #_sourceLocation,
    loss: () -> Double
) {
    precondition(x.count == analytic.count)
    let step = max(1, x.count / samples)
    var worst = 0.0
    var failures = 0
    for i in stride(from: 0, to: x.count, by: step) {
        let saved = x[i]
        x[i] = saved + eps
        let up = loss()
        x[i] = saved - eps
        let down = loss()
        x[i] = saved
        let numeric = (up - down) / Double(2 * eps)
        let a = Double(analytic[i])
        let err = abs(numeric - a)
        let allowed = atol + rtol * max(abs(numeric), abs(a))
        worst = max(worst, err / allowed)
        if err > allowed {
            failures += 1
            if failures <= 3 {
                Issue.record("\(name)[\(i)]: analytic \(a), numeric \(numeric)", sourceLocation: sourceLocation)
            }
        }
    }
    #expect(
        failures == 0, "\(name): \(failures) elements outside tolerance (worst at \(worst)× the allowance)", sourceLocation: sourceLocation)
}

func randomTensor(_ shape: [Int], _ rng: inout SeededRNG, scale: Float = 1) -> Tensor {
    let t = Tensor(zeros: shape)
    for i in 0..<t.count { t[i] = rng.normal() * scale }
    return t
}

/// Σ out·r in Double: a scalar loss whose gradient with respect to `out` is `r`.
func dot(_ out: Tensor, _ r: Tensor, count: Int? = nil) -> Double {
    var s: Double = 0
    for i in 0..<(count ?? out.count) { s += Double(out[i]) * Double(r[i]) }
    return s
}
