import Foundation

/// One dev evaluation of `dsi train` (recorded in the checkpoint's state.json).
public struct TrainingEvaluation: Codable, Sendable, Equatable {
    public var step: Int
    /// Training minutes so far (over every run of a resumed training).
    public var minutes: Double
    /// The last step's loss; nil before any step.
    public var loss: Double?
    /// Dev Hits@1 and Hits@10; nil without dev queries.
    public var devHits1: Double?
    public var devHits10: Double?

    public init(step: Int, minutes: Double, loss: Double?, devHits1: Double?, devHits10: Double?) {
        self.step = step
        self.minutes = minutes
        self.loss = loss
        self.devHits1 = devHits1
        self.devHits10 = devHits10
    }

    enum CodingKeys: String, CodingKey {
        case step, minutes, loss
        case devHits1 = "dev_hits@1"
        case devHits10 = "dev_hits@10"
    }
}

/// The learning curve as an SVG picture (no script, no external asset): training loss
/// (left axis) and dev Hits@1 and Hits@10 (right axis, 0-1) against training minutes.
/// `dsi report --svg` writes it; `dsi serve`'s page shows it.
public enum LearningCurve {
    public static func svg(_ evaluations: [TrainingEvaluation], width: Int = 640, height: Int = 300) -> String {
        let W = Double(width)
        let H = Double(height)
        let (left, right, top, bottom) = (52.0, 52.0, 28.0, 40.0)
        let pw = W - left - right
        let ph = H - top - bottom
        let maxX = max(evaluations.map(\.minutes).max() ?? 1, 1e-9)
        let losses = evaluations.compactMap(\.loss)
        let maxLoss = max(losses.max() ?? 1, 1e-9)
        func x(_ m: Double) -> Double { left + pw * m / maxX }
        func yLoss(_ l: Double) -> Double { top + ph * (1 - l / maxLoss) }
        func yHits(_ h: Double) -> Double { top + ph * (1 - h) }
        func f(_ v: Double) -> String { String(format: "%.1f", v) }
        func line(_ points: [(Double, Double)], _ color: String, dashed: Bool = false) -> String {
            guard !points.isEmpty else { return "" }
            let d = points.map { "\(f($0.0)),\(f($0.1))" }.joined(separator: " ")
            let dots = points.map { "<circle cx=\"\(f($0.0))\" cy=\"\(f($0.1))\" r=\"2.5\" fill=\"\(color)\"/>" }.joined()
            return
                "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\"\(dashed ? " stroke-dasharray=\"5 3\"" : "") points=\"\(d)\"/>\(dots)"
        }
        var s =
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width)\" height=\"\(height)\" viewBox=\"0 0 \(width) \(height)\" font-family=\"sans-serif\" font-size=\"11\">"
        s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>"
        s += "<rect x=\"\(f(left))\" y=\"\(f(top))\" width=\"\(f(pw))\" height=\"\(f(ph))\" fill=\"none\" stroke=\"#999\"/>"
        // Enough decimals that the five minute ticks (a quarter of the span apart) read differently.
        let decimals = max(0, min(4, Int((-log10(maxX / 4)).rounded(.up))))
        for i in 0...4 {
            let t = Double(i) / 4
            let yy = top + ph * (1 - t)
            s += "<line x1=\"\(f(left))\" x2=\"\(f(left + pw))\" y1=\"\(f(yy))\" y2=\"\(f(yy))\" stroke=\"#eee\"/>"
            s +=
                "<text x=\"\(f(left - 6))\" y=\"\(f(yy + 4))\" text-anchor=\"end\" fill=\"#b45309\">\(String(format: "%.2f", maxLoss * t))</text>"
            s += "<text x=\"\(f(left + pw + 6))\" y=\"\(f(yy + 4))\" fill=\"#1d4ed8\">\(String(format: "%.2f", t))</text>"
            let xm = maxX * t
            s += "<text x=\"\(f(x(xm)))\" y=\"\(f(top + ph + 15))\" text-anchor=\"middle\">\(String(format: "%.\(decimals)f", xm))</text>"
        }
        s += "<text x=\"\(f(left + pw / 2))\" y=\"\(f(H - 6))\" text-anchor=\"middle\">training minutes</text>"
        s += "<text x=\"\(f(left))\" y=\"\(f(top - 10))\" fill=\"#b45309\">loss</text>"
        s +=
            "<text x=\"\(f(left + pw))\" y=\"\(f(top - 10))\" text-anchor=\"end\" fill=\"#1d4ed8\">dev hits@10 (solid), hits@1 (dashed)</text>"
        s += line(evaluations.compactMap { e in e.loss.map { (x(e.minutes), yLoss($0)) } }, "#b45309")
        s += line(evaluations.compactMap { e in e.devHits10.map { (x(e.minutes), yHits($0)) } }, "#1d4ed8")
        s += line(evaluations.compactMap { e in e.devHits1.map { (x(e.minutes), yHits($0)) } }, "#1d4ed8", dashed: true)
        if evaluations.isEmpty {
            s +=
                "<text x=\"\(f(left + pw / 2))\" y=\"\(f(top + ph / 2))\" text-anchor=\"middle\" fill=\"#666\">no evaluations recorded</text>"
        }
        return s + "</svg>"
    }
}
