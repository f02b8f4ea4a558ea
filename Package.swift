// swift-tools-version:6.0
import PackageDescription

let optimise: [SwiftSetting] = [.unsafeFlags(["-Ounchecked", "-wmo"], .when(configuration: .release))]

let package = Package(
    name: "swift-dsi",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "dsi", targets: ["dsi"]),
        .library(name: "DSIModel", targets: ["DSIModel"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0")
    ],
    targets: [
        // OpenBLAS through its C interface; only DSITensor imports it.
        .systemLibrary(
            name: "COpenBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),
        .target(name: "DSITensor", dependencies: ["COpenBLAS"], swiftSettings: optimise),
        // Start-up code of the executable: picks OpenBLAS's kernels before it loads.
        .target(name: "DSIStartup"),
        .target(name: "DSIModel", dependencies: ["DSITensor"], swiftSettings: optimise),
        .target(name: "DSIText", swiftSettings: optimise),
        .target(name: "CSystem"),
        .target(name: "DSIIndex", dependencies: ["DSIModel", "DSIText", "DSITensor", "CSystem"], swiftSettings: optimise),
        .executableTarget(
            name: "dsi",
            dependencies: [
                "DSIModel", "DSITensor", "DSIStartup", "DSIIndex", "DSIText",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: optimise
        ),
        .testTarget(name: "DSITensorTests", dependencies: ["DSITensor"]),
        .testTarget(name: "DSIModelTests", dependencies: ["DSIModel", "DSITensor"]),
        .testTarget(name: "DSITextTests", dependencies: ["DSIText"]),
        .testTarget(name: "DSIIndexTests", dependencies: ["DSIIndex", "DSIText"], exclude: ["Fixtures"]),
    ],
    swiftLanguageModes: [.v5]
)
