import DSIModel
import DSITensor
import Testing

@Suite("data-parallel shares")
struct DataParallelShareTests {
    /// The gradient of the global batch's mean loss, from the whole batch at once.
    func wholeGradient(_ model: Seq2Seq, _ batch: Seq2SeqBatch, seed: UInt64) throws -> ([Float], Double, Int) {
        let ws = Workspace()
        var rng = SeededRNG(seed: seed)
        model.params.zeroGrads()
        let loss = try model.forward(batch, workspace: ws, smoothing: 0.1, training: true, rng: &rng)
        model.backward(workspace: ws)
        return (model.params.grads.toArray(), Double(loss), batch.labelledPositions)
    }

    @Test(
        "each rank's share, its loss divided by the global batch's labelled positions, sums to the whole batch's gradient (dropout on)",
        arguments: [2, 3, 7])
    func sharesSumToWhole(ranks: Int) throws {
        let toy = ToyTask(kind: .reverse, maxDigits: 3)
        var drng = SeededRNG(seed: 4)
        let batch = toy.batch(size: 6, rng: &drng)
        var config = toy.modelConfig(dModel: 16, heads: 2, ff: 24, layers: 1)
        config.dropout = 0.3
        let big = try Seq2Seq(config: config, seed: 3)
        let (whole, loss, counted) = try wholeGradient(big, batch, seed: 9)
        var sum = [Float](repeating: 0, count: whole.count)
        var lossSum: Double = 0
        var rows = 0
        for r in 0..<ranks {
            let share = batch.share(rank: r, of: ranks)
            #expect(share.firstExample == r * batch.B / ranks)
            rows += share.B
            guard share.B > 0 else { continue }
            let ws = Workspace()
            var rng = SeededRNG(seed: 9)  // every rank draws the step's generator alike
            big.params.zeroGrads()
            let mean = try big.forward(share, workspace: ws, smoothing: 0.1, training: true, rng: &rng)
            lossSum += Double(mean) * Double(share.labelledPositions)
            big.backward(workspace: ws, denominator: counted)
            for (i, g) in big.params.grads.toArray().enumerated() { sum[i] += g }
        }
        #expect(rows == batch.B)
        #expect(abs(lossSum / Double(counted) - loss) < 1e-5 * max(1, abs(loss)))
        let scale = whole.map(abs).max()!
        let diff = zip(whole, sum).map { abs($0 - $1) }.max()!
        #expect(scale > 0)
        #expect(diff <= 1e-5 * scale, "largest difference \(diff) against gradients up to \(scale)")
    }

    @Test("a dropout mask depends on the row's global index, not on the rows that share the call")
    func dropoutByRow() {
        let width = 16
        let rows = 8
        let x = Tensor(zeros: [rows, width])
        for i in 0..<rows * width { x.data[i] = 1 }
        let whole = Tensor(zeros: [rows, width])
        let wholeMask = Tensor(zeros: [rows, width])
        dropoutForward(out: whole.data, mask: wholeMask.data, inp: x.data, rows: rows, width: width, p: 0.5, seed: 77)
        let part = Tensor(zeros: [3, width])
        let partMask = Tensor(zeros: [3, width])
        dropoutForward(out: part.data, mask: partMask.data, inp: x.data, rows: 3, width: width, firstRow: 5, p: 0.5, seed: 77)
        #expect(Array(wholeMask.toArray()[5 * width..<8 * width]) == partMask.toArray())
        let other = Tensor(zeros: [3, width])
        dropoutForward(out: part.data, mask: other.data, inp: x.data, rows: 3, width: width, firstRow: 5, p: 0.5, seed: 78)
        #expect(other.toArray() != partMask.toArray())
    }
}
