// swift-tools-version:6.0
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
    ],
    targets: [
        // OpenBLAS (BLAS and LAPACK) through its C interface; only DSITensor imports it.
        .systemLibrary(
            name: "COpenBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),
        .target(name: "DSITensor", dependencies: ["COpenBLAS"]),
        // Start-up code of the executable: picks OpenBLAS's kernels for this CPU.
        .target(name: "DSIStartup", dependencies: ["COpenBLAS"]),
        .target(name: "DSIModel", dependencies: ["DSITensor"]),
        .target(name: "DSIText"),
        .target(name: "CSystem"),
        .target(
            name: "DSIIndex",
            dependencies: [
                "DSIModel", "DSIText", "DSITensor", "CSystem",
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .executableTarget(
            name: "dsi",
            dependencies: [
                "DSIModel", "DSITensor", "DSIStartup", "DSIIndex", "DSIText",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "DSITensorTests", dependencies: ["DSITensor"]),
        .testTarget(name: "DSIStartupTests", dependencies: ["DSIStartup"]),
        .testTarget(name: "DSIModelTests", dependencies: ["DSIModel", "DSITensor"]),
        .testTarget(name: "DSITextTests", dependencies: ["DSIText"]),
        .testTarget(name: "DSIIndexTests", dependencies: ["DSIIndex", "DSIText"], exclude: ["Fixtures"]),
    ],
    swiftLanguageModes: [.v5]
)
