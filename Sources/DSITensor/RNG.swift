/// A small, fast, seedable generator (xoshiro256**, seeded through SplitMix64), so a seed
/// gives the same stream on every platform. Not for cryptography.
public struct SeededRNG: RandomNumberGenerator, Sendable {
    private var s0: UInt64, s1: UInt64, s2: UInt64, s3: UInt64
    private var spareNormal: Float?

    public init(seed: UInt64) {
        var sm = seed
        func splitmix(_ x: inout UInt64) -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s0 = splitmix(&sm)
        s1 = splitmix(&sm)
        s2 = splitmix(&sm)
        s3 = splitmix(&sm)
        spareNormal = nil
    }

    @inline(__always)
    public mutating func next() -> UInt64 {
        let result = ((s1 &* 5) << 7 | (s1 &* 5) >> 57) &* 9
        let t = s1 << 17
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = (s3 << 45) | (s3 >> 19)
        return result
    }

    /// Uniform in [0, 1) with 24 bits of precision.
    @inline(__always)
    public mutating func uniform() -> Float {
        Float(next() >> 40) * (1.0 / 16_777_216.0)
    }

    /// Standard normal (Box–Muller; the second value is kept for the next call).
    public mutating func normal() -> Float {
        if let z = spareNormal {
            spareNormal = nil
            return z
        }
        var u1 = uniform()
        while u1 <= 1e-7 { u1 = uniform() }
        let u2 = uniform()
        let r = (-2 * logf(u1)).squareRoot()
        let theta = 2 * Float.pi * u2
        spareNormal = r * sinf(theta)
        return r * cosf(theta)
    }

    /// Uniform integer in `0..<n`.
    @inline(__always)
    public mutating func int(below n: Int) -> Int {
        Int(next(upperBound: UInt64(n)))
    }

    /// A derived generator for an independent stream (for example, one per data worker).
    public func fork(_ stream: UInt64) -> SeededRNG {
        var copy = self
        return SeededRNG(seed: copy.next() ^ (stream &* 0x9E37_79B9_7F4A_7C15))
    }
}

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
