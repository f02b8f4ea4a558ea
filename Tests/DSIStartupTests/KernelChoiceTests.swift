import DSIStartup
import Testing

/// The start-up kernel choice as a pure function of the CPU's tier and OpenBLAS's answer.
@Suite("OpenBLAS kernel choice")
struct KernelChoiceTests {
    func choice(_ tier: dsi_simd_tier, _ core: String) -> String? {
        dsi_preferred_coretype(Int32(tier.rawValue), core).map { String(cString: $0) }
    }

    @Test("an AVX-512 CPU gets SkylakeX whatever lower kernels OpenBLAS chose, on any vendor")
    func avx512() {
        // Intel Sapphire Rapids under OpenBLAS 0.3.21: Prescott (SSE3); AMD Zen 4/5: Zen or Haswell.
        for core in ["Prescott", "Core2", "Nehalem", "SandyBridge", "Haswell", "Zen", "unknown", ""] {
            #expect(choice(DSI_TIER_AVX512, core) == "SkylakeX", "\(core)")
        }
        for core in ["SkylakeX", "skylakex", "Cooperlake", "SapphireRapids"] {
            #expect(choice(DSI_TIER_AVX512, core) == nil, "\(core) is already AVX-512")
        }
    }

    @Test("an AVX2 CPU gets Haswell only when OpenBLAS chose less; never AVX-512 kernels")
    func avx2() {
        #expect(choice(DSI_TIER_AVX2, "Prescott") == "Haswell")
        #expect(choice(DSI_TIER_AVX2, "SandyBridge") == "Haswell")
        #expect(choice(DSI_TIER_AVX2, "Excavator") == "Haswell")
        #expect(choice(DSI_TIER_AVX2, "Zen") == nil)
        #expect(choice(DSI_TIER_AVX2, "Haswell") == nil)
        // A higher choice than the CPU supports is OpenBLAS's business (or the user's).
        #expect(choice(DSI_TIER_AVX2, "SkylakeX") == nil)
    }

    @Test("older CPUs keep what OpenBLAS chose")
    func older() {
        #expect(choice(DSI_TIER_AVX, "Prescott") == nil)
        #expect(choice(DSI_TIER_BASE, "Prescott") == nil)
    }

    @Test("core names map to tiers case-insensitively")
    func tiers() {
        #expect(dsi_core_simd_tier("SKYLAKEX") == Int32(DSI_TIER_AVX512.rawValue))
        #expect(dsi_core_simd_tier("zen") == Int32(DSI_TIER_AVX2.rawValue))
        #expect(dsi_core_simd_tier("Bulldozer") == Int32(DSI_TIER_AVX.rawValue))
        #expect(dsi_core_simd_tier("Prescott") == Int32(DSI_TIER_BASE.rawValue))
        #expect(dsi_core_simd_tier(nil) == Int32(DSI_TIER_BASE.rawValue))
    }

    @Test("this machine's CPU tier is one OpenBLAS can run")
    func thisCPU() {
        let t = dsi_cpu_simd_tier()
        #expect(t >= Int32(DSI_TIER_BASE.rawValue) && t <= Int32(DSI_TIER_AVX512.rawValue))
    }
}

@Suite("FMA peak measurement")
struct FMAPeakTests {
    @Test("every vector width up to this CPU's runs its 12 chains and reports a finite positive rate")
    func runsOnEveryTier() {
        let top = dsi_cpu_simd_tier()
        for tier in [DSI_TIER_BASE, DSI_TIER_AVX2, DSI_TIER_AVX512] where Int32(tier.rawValue) <= top {
            let rate = dsi_fma_chains_gflops(Int32(tier.rawValue), 100_000)
            #expect(rate.isFinite && rate > 0, "tier \(tier.rawValue): \(rate)")
        }
    }
}
