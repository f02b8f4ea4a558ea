import DSIModel
import DSITensor
import Foundation
import Testing

@Suite("op-family profile", .serialized)
struct OpProfileTests {
    @Test("time is charged to the innermost family, calls from other threads are ignored, and the families add up to the wall time")
    func exclusiveNestedAndThreads() throws {
        let p = OpProfile.shared
        let clock = ContinuousClock()
        let t0 = clock.now
        p.start()
        p.enter(.products)
        Thread.sleep(forTimeInterval: 0.02)
        p.enter(.loss)
        Thread.sleep(forTimeInterval: 0.02)
        p.exit()
        p.exit()
        let worker = Thread {
            p.enter(.attention)
            Thread.sleep(forTimeInterval: 0.02)
            p.exit()
        }
        worker.start()
        Thread.sleep(forTimeInterval: 0.03)
        let f = p.stop()
        let wall = (clock.now - t0).seconds
        #expect(f[.products]! >= 0.019 && f[.loss]! >= 0.019 && f[.other]! >= 0.029, "\(f)")
        #expect(f[.attention]! == 0, "a worker thread's call was counted: \(f)")
        let sum = f.values.reduce(0, +)
        #expect(sum <= wall && sum > wall - 0.005, "families \(sum) s against \(wall) s of wall time")
        // Stopped: nothing more is recorded.
        p.enter(.activation)
        p.exit()
        #expect(p.stop()[.activation]! == 0)
    }

    @Test("dsi bench ops reports every family, summing to about the timed steps")
    func benchmarkFamilies() throws {
        var config = ModelConfig.reference
        config.encoderLayers = 1
        config.decoderLayers = 1
        let r = try OpsBenchmark.run(steps: 3, warmup: 1, batch: 4, sourceLength: 8, targetLength: 4, config: config)
        #expect(Set(r.trainOpMilliseconds.keys) == Set(OpFamily.allCases))
        #expect(["avx512f", "avx2", "baseline"].contains(r.elementwiseISA))
        for family in [OpFamily.products, .normalisation, .activation, .attention, .loss, .optimizer] {
            #expect(r.trainOpMilliseconds[family]! > 0, "\(family) took no time: \(r.trainOpMilliseconds)")
        }
        let perStep = r.trainOpMilliseconds.values.reduce(0, +) / 1000
        #expect(perStep <= 1 / r.stepsPerSecond * 1.01, "\(perStep) s in families against \(1 / r.stepsPerSecond) s per step")
    }
}
