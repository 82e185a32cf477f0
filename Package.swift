// swift-tools-version:6.0
import PackageDescription

// One module per concern; see README "Architecture".
let package = Package(
    name: "veil",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "veil", targets: ["veil"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        // Code that must run between clone and execve (async-signal-safe), and constants Glibc lacks.
        .target(name: "CVeilLinux"),
        // Typed wrappers over the Linux calls veil makes.
        .target(name: "VeilLinux", dependencies: ["CVeilLinux"]),
        // OCI runtime-spec types, decoding with JSON-path errors, runc's default spec.
        .target(name: "VeilSpec"),
        // libseccomp, found through pkg-config.
        .systemLibrary(name: "CSeccomp", pkgConfig: "libseccomp", providers: [.apt(["libseccomp-dev"])]),
        // OCI seccomp profiles compiled to BPF with libseccomp.
        .target(name: "VeilSeccomp", dependencies: ["CSeccomp", "VeilSpec", "VeilLinux"]),
        // cgroup v1 / v2 drivers behind one interface.
        .target(name: "VeilCgroups", dependencies: ["VeilLinux", "VeilSpec"]),
        // Container lifecycle: state store, create/start/kill/delete, init, rootfs, hooks, console.
        .target(name: "VeilContainer", dependencies: ["VeilLinux", "VeilSpec", "VeilCgroups", "VeilSeccomp", "CVeilLinux"]),
        // The runc-compatible command line.
        .executableTarget(name: "veil", dependencies: [
            "VeilContainer", "VeilSpec", "VeilLinux", "VeilSeccomp",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .testTarget(name: "VeilSpecTests", dependencies: ["VeilSpec"]),
        .testTarget(name: "VeilLinuxTests", dependencies: ["VeilLinux"]),
        .testTarget(name: "VeilCgroupsTests", dependencies: ["VeilCgroups"]),
        .testTarget(name: "VeilSeccompTests", dependencies: ["VeilSeccomp", "VeilSpec"]),
        .testTarget(name: "VeilContainerTests", dependencies: ["VeilContainer", "VeilSpec", "VeilLinux"]),
        // End-to-end: runs the built veil binary as root against real bundles and containerd.
        .testTarget(name: "VeilRuntimeTests", dependencies: ["VeilSpec"]),
    ]
)
