import DSIIndex
import DSIModel
import DSITensor
import Testing

/// Rank 0 of a two-rank run whose peer is simulated: the sums and broadcasts return this
/// rank's own values (as if the peer's were zero or equal), and the peer's weight checksum
/// is whatever `peerChecksum(own, call)` says, so a test can make the ranks disagree at a
/// chosen check.
final class SimulatedPeer: Collective {
    let rank = 0
    let size = 2
    private(set) var checks = 0
    let peerChecksum: (_ own: UInt64, _ call: Int) -> UInt64

    init(peerChecksum: @escaping (_ own: UInt64, _ call: Int) -> UInt64) { self.peerChecksum = peerChecksum }

    func allreduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) throws {}
    func allreduceSum(_ buffer: UnsafeMutablePointer<Double>, count: Int) throws {}
    func allreduceMinMax(_ value: UInt64) throws -> (min: UInt64, max: UInt64) {
        let peer = peerChecksum(value, checks)
        checks += 1
        return (min(value, peer), max(value, peer))
    }
    func allgather(_ values: [Int32]) throws -> [[Int32]] { [values, []] }
    func broadcast(_ buffer: UnsafeMutablePointer<Double>, count: Int, root: Int) throws {}
}

@Suite("data-parallel divergence check")
struct RankDivergenceTests {
    func loop(_ collective: Collective, checkEvery: Int) throws -> TrainingLoop {
        let toy = ToyTask(kind: .copy, maxDigits: 3)
        let model = try Seq2Seq(config: toy.modelConfig(dModel: 16, heads: 2, ff: 24, layers: 1), seed: 1)
        let l = TrainingLoop(
            model: model, optimizer: AdamW(), step: 0, schedule: LearningRateSchedule(peak: 1e-3), labelSmoothing: 0, dropoutSeed: 5)
        l.collective = collective
        l.checkEvery = checkEvery
        return l
    }

    func run(_ l: TrainingLoop, steps: Int, after: @escaping (Int) -> Void = { _ in }) throws {
        let toy = ToyTask(kind: .copy, maxDigits: 3)
        try l.run(
            done: { l.step >= steps }, progress: { Double(l.step) / Double(steps) },
            batch: { s in
                var rng = SeededRNG(seed: UInt64(s))
                return toy.batch(size: 8, rng: &rng)
            }, after: { _ in after(l.step) })
    }

    @Test("ranks that agree train to the end, comparing checksums at the start, every K steps and at the end")
    func agreeingRanks() throws {
        let peer = SimulatedPeer { own, _ in own }
        let l = try loop(peer, checkEvery: 2)
        try run(l, steps: 5)
        #expect(l.step == 5)
        #expect(peer.checks == 1 + 2 + 1)  // start, after steps 2 and 4, end
    }

    @Test("a peer whose weights differ at start stops the run before any step")
    func divergedAtStart() throws {
        let l = try loop(SimulatedPeer { own, _ in own ^ 1 }, checkEvery: 2)
        var applied = 0
        #expect {
            try run(l, steps: 5) { _ in applied += 1 }
        } throws: { error in
            guard let e = error as? RanksDiverged else { return false }
            return e.step == 0 && e.ranks == 2 && e.description.contains("after step 0") && e.description.contains("--resume")
        }
        #expect(applied == 0)
        #expect(l.step == 0)
    }

    @Test("a peer that drifts between checks is caught at the next check, and no later step runs")
    func divergedMidway() throws {
        // Checks: call 0 at the start, call 1 after step 3, call 2 after step 6.
        let l = try loop(SimulatedPeer { own, call in call >= 2 ? own &+ 1 : own }, checkEvery: 3)
        var seen: [Int] = []
        #expect {
            try run(l, steps: 10) { seen.append($0) }
        } throws: { error in
            (error as? RanksDiverged)?.step == 6
        }
        #expect(l.step == 6)
        #expect(seen == [1, 2, 3, 4, 5])  // step 6 was computed, found diverged, and not reported as done
    }
}
