// swift-tools-version:6.1
import PackageDescription

// Release builds use the default `-O` (bounds checks and preconditions kept): the binary
// users run is the one the tests run (`.ci/run` tests debug and release). Measured on
// `dsi bench ops`: see docs/ARCHITECTURE.md, "Build settings".
let package = Package(
    name: "swift-dsi",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "dsi", targets: ["dsi"]),
        .library(name: "DSIModel", targets: ["DSIModel"]),
        .library(name: "DSIIndex", targets: ["DSIIndex"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        // The HTTP service (`dsi serve`, target DSIServer) only: Hummingbird 2 without its
        // optional traits (swift-configuration, full Foundation), swift-metrics with the
        // Prometheus backend.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: []),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        // OpenBLAS (BLAS and LAPACK) through its C interface; only DSITensor imports it.
        .systemLibrary(
            name: "COpenBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),
        .target(name: "DSITensor", dependencies: ["COpenBLAS", "CDSIKernels"]),
        // MPI (Open MPI) for data-parallel training under `mpirun`; only DSIDistributed
        // imports it.
        .systemLibrary(
            name: "CMPI",
            pkgConfig: "ompi-c",
            providers: [.apt(["libopenmpi-dev", "openmpi-bin"])]
        ),
        .target(name: "DSIDistributed", dependencies: ["CMPI", "DSIModel"]),
        // Start-up code of the executable: picks OpenBLAS's kernels for this CPU.
        // -O2 in every configuration: peak.c measures the FMA peak, which unoptimised code
        // (accumulators spilled to memory) would understate a hundredfold.
        .target(name: "DSIStartup", dependencies: ["COpenBLAS"], cSettings: [.unsafeFlags(["-O2"])]),
        // Element-wise kernels compiled once per instruction set (AVX-512, AVX2 + FMA,
        // baseline) and chosen by the CPU at load time; -O2 in every configuration so the
        // loops are vectorised in debug builds too.
        .target(name: "CDSIKernels", cSettings: [.unsafeFlags(["-O2"])]),
        .target(name: "DSIModel", dependencies: ["DSITensor", "CDSIKernels"]),
        .target(name: "DSIText"),
        .target(name: "CDSISystem"),
        .target(
            name: "DSIIndex",
            dependencies: [
                "DSIModel", "DSIText", "DSITensor", "CDSISystem",
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // `dsi serve`: the HTTP service. Only this target (and the executable) knows HTTP.
        .target(
            name: "DSIServer",
            dependencies: [
                "DSIIndex", "DSIModel", "DSITensor", "DSIText", "CDSISystem",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "dsi",
            dependencies: [
                "DSIModel", "DSITensor", "DSIStartup", "DSIIndex", "DSIText", "DSIServer", "DSIDistributed",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "DSITensorTests", dependencies: ["DSITensor"]),
        .testTarget(name: "DSIStartupTests", dependencies: ["DSIStartup"]),
        .testTarget(name: "DSIModelTests", dependencies: ["DSIModel", "DSITensor", "CDSIKernels"]),
        .testTarget(name: "DSITextTests", dependencies: ["DSIText"]),
        .testTarget(name: "DSIIndexTests", dependencies: ["DSIIndex", "DSIText"], exclude: ["Fixtures"]),
        .testTarget(
            name: "DSIServerTests",
            dependencies: [
                "DSIServer", "DSIIndex",
                .product(name: "Hummingbird", package: "hummingbird"),
            ]
        ),
    ],
    swiftLanguageModes: [.v5]
)
