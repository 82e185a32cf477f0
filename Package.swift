// swift-tools-version:6.0
import PackageDescription

// One module per concern; see README "Architecture".

/// How veil and the tools it waits for are linked (see the veil target's comment).
let fastExec: [LinkerSetting] = [.unsafeFlags(["-Xclang-linker", "-no-pie", "-Xlinker", "--no-export-dynamic",
                                               "-Xclang-linker", "-L" + Context.packageDirectory + "/scripts/static-libs"])]
let package = Package(
    name: "veil",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "veil", targets: ["veil"]),
        .executable(name: "containerd-shim-veil-v1", targets: ["containerd-shim-veil-v1"]),
        .executable(name: "veil-warden", targets: ["veil-warden"]),
        .executable(name: "veil-verify", targets: ["veil-verify"]),
        .executable(name: "veil-checkpoint", targets: ["veil-checkpoint"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/grpc/grpc-swift-2", from: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport", from: "2.9.2"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf", from: "2.4.1"),
    ],
    targets: [
        // Code that must run between clone and execve (async-signal-safe), and constants Glibc lacks.
        .target(name: "CVeilLinux"),
        // Typed wrappers over the Linux calls veil makes.
        .target(name: "VeilLinux", dependencies: ["CVeilLinux"]),
        // mount(2) flags and runc's mount option table (no imports): the spec's and the shim's.
        .target(name: "VeilMountOptions"),
        // OCI runtime-spec types, decoding with JSON-path errors, runc's default spec.
        .target(name: "VeilSpec", dependencies: ["VeilMountOptions"]),
        // libseccomp, found through pkg-config.
        .systemLibrary(name: "CSeccomp", pkgConfig: "libseccomp", providers: [.apt(["libseccomp-dev"])]),
        // OCI seccomp profiles compiled to BPF with libseccomp.
        .target(name: "VeilSeccomp", dependencies: ["CSeccomp", "CVeilLinux", "VeilSpec", "VeilLinux"]),
        // What veil writes and the shim reads (state record, events/stats, ps, log lines): Codable, no Foundation.
        .target(name: "VeilExchange"),
        // cgroup v1 / v2 drivers behind one interface.
        .target(name: "VeilCgroups", dependencies: ["VeilLinux", "CVeilLinux", "VeilExchange"]),
        // sd-bus (libsystemd), dlopen'ed on first use: only the systemd cgroup driver needs it.
        .target(name: "CVeilSystemd", linkerSettings: [.linkedLibrary("dl")]),
        // The systemd cgroup driver: cgroupsPath and slices, resources as unit properties, the
        // org.systemd.property annotations, scopes over D-Bus.
        .target(name: "VeilSystemd", dependencies: ["VeilCgroups", "CVeilSystemd"]),
        // The sandbox level, whole: policy, uid ranges, spec transform, kernel identity, id-mapped
        // rootfs, /proc views and their FUSE bridge, device nodes, and the warden's launch.
        .target(name: "VeilSandbox", dependencies: ["VeilLinux", "VeilSpec", "VeilSeccomp", "VeilCgroups", "VeilWarden", "CVeilLinux"]),
        // The warden's notification loop: no Foundation, so its process stays small.
        .target(name: "VeilWarden", dependencies: ["VeilLinux", "CVeilLinux"]),
        // The warden's sentinel, forked by a constructor before Swift starts: only veil-warden links it.
        .target(name: "CVeilSentinel", dependencies: ["CVeilLinux"]),
        .executableTarget(name: "veil-warden", dependencies: ["VeilWarden", "CVeilSentinel"],
                          // Fully static (position-dependent, no dynamic loader, no exported symbols): no
                          // start-up relocation of Swift's metadata or of shared libraries, fewer pages
                          // touched, a smaller resident warden, its exec 1 ms shorter.
                          linkerSettings: [.unsafeFlags(["-static-executable", "-Xlinker", "--no-export-dynamic"])]),
        // Container lifecycle: state store, create/start/kill/delete, init, rootfs, hooks, console.
        .target(name: "VeilContainer", dependencies: ["VeilLinux", "VeilSpec", "VeilExchange", "VeilCgroups", "VeilSystemd", "VeilSeccomp", "VeilSandbox", "VeilWarden", "VeilRegistry", "CVeilLinux"]),
        // `veil install` / `uninstall`: containerd, CRI-O, Docker and Kubernetes registration.
        .target(name: "VeilInstall", dependencies: ["VeilLinux", "CVeilLinux", "VeilSpec", "VeilCgroups", .product(name: "TOMLKit", package: "TOMLKit")]),
        // Seccomp profiles as OCI artifacts: references, registries.conf, auth.json, an HTTP/1.1 + TLS
        // client on SwiftNIO, pull/push/cache of profile artifacts and image annotations.
        .target(name: "VeilRegistry", dependencies: [
            "VeilSpec", "VeilSeccomp", "VeilLinux", .product(name: "TOMLKit", package: "TOMLKit"),
            .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"), .product(name: "NIOSSL", package: "swift-nio-ssl"),
        ]),
        // containerd's shim v2 protobuf messages (generated by `make protos`, committed).
        .target(name: "VeilShimProtocol", dependencies: [.product(name: "SwiftProtobuf", package: "swift-protobuf")]),
        // ttrpc (containerd's RPC framing) over SwiftNIO unix sockets.
        .target(name: "TTRPC", dependencies: [
            .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        ]),
        // containerd-shim-veil-v1: containerd's task service (shim v2 over ttrpc) driving veil.
        .target(name: "VeilShim", dependencies: [
            "TTRPC", "VeilShimProtocol", "VeilExchange", "VeilMountOptions", "VeilLinux", "CVeilLinux",
            .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            .product(name: "TOMLKit", package: "TOMLKit"),
        ]),
        // Linked as veil: containerd execs the shim twice per pod (`start`, then the long-lived
        // shim), on the path every pod's start waits on.
        .executableTarget(name: "containerd-shim-veil-v1", dependencies: ["VeilShim"], linkerSettings: fastExec),
        // Kubernetes CRI (runtime.v1) messages, a small gRPC client over containerd's unix socket,
        // and `veil verify`'s end-to-end checks of a throw-away pod.
        .target(name: "VeilCRI", dependencies: [
            "VeilLinux", "VeilSpec",
            .product(name: "GRPCCore", package: "grpc-swift-2"),
            .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
            .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
            .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        ]),
        // CRIU's image messages (protos/criu, generated by `make protos`, committed).
        .target(name: "VeilCRIUProtocol", dependencies: [.product(name: "SwiftProtobuf", package: "swift-protobuf")]),
        // Checkpoints: CRIU's image files, the checkpoint archive (kubelet/CRI-O/podman layout),
        // forensic reading of it (process tree, files, sockets, mounts, memory, ELF cores).
        .target(name: "VeilCheckpoint", dependencies: [
            "VeilCRIUProtocol", "VeilContainer", "VeilLinux", .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        ]),
        // `veil checkpoint inspect|memparse|dump|coredump`, exec'd by veil: protobuf and CRIU's ~200
        // message types stay out of the veil binary (each adds conformance records its start-up scans).
        // Linked as veil: a sandbox's restore waits for its run (sandbox-images).
        .executableTarget(name: "veil-checkpoint", dependencies: [
            "VeilCheckpoint", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], linkerSettings: fastExec),
        // The runc-compatible command line.
        .executableTarget(name: "veil", dependencies: [
            "VeilContainer", "VeilSpec", "VeilExchange", "VeilLinux", "VeilSeccomp", "VeilSandbox",
            "VeilInstall", "VeilRegistry",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ],
        // Position-dependent, as the warden: a container's life execs veil four to six times
        // (create, its init, start, kill, delete, state), and a PIE of this size has ~100k
        // relative relocations to apply and their pages to copy at every exec (~0.5 ms each).
        // No exported dynamic symbols either (Swift exports all of an executable's by default):
        // the runtime's start-up calls dladdr() on itself, a linear scan of the dynamic symbol
        // table, 22,582 entries here (~0.2 ms per exec); backtraces read the full symbol table.
        // libstdc++ (the Swift runtime's and TOMLKit's C++) linked in statically: loading and
        // relocating libstdc++.so was most of the dynamic loader's 7 % of veil's CPU time per
        // container (perf), 0.4 ms per exec. swiftc passes `-lstdc++` itself, so a directory
        // holding only a link to Debian's libstdc++.a (libstdc++-12-dev) is searched before gcc's.
        linkerSettings: fastExec),
        // `veil verify`, exec'd by veil: gRPC stays out of the veil binary (start-up of the hot commands).
        .executableTarget(name: "veil-verify", dependencies: [
            "VeilCRI", "VeilSpec", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        // One CRI call per run for the CRI end-to-end tests (not a product: tests only).
        .executableTarget(name: "veil-cri-driver", dependencies: ["VeilCRI"], path: "Tests/CRIDriver"),
        .testTarget(name: "VeilSpecTests", dependencies: ["VeilSpec"]),
        .testTarget(name: "VeilLinuxTests", dependencies: ["VeilLinux", "CVeilLinux"]),
        .testTarget(name: "VeilSystemdTests", dependencies: ["VeilSystemd", "VeilCgroups"]),
        .testTarget(name: "VeilCgroupsTests", dependencies: ["VeilCgroups", "VeilLinux", "VeilExchange"]),
        .testTarget(name: "VeilInstallTests", dependencies: ["VeilInstall", "VeilCgroups", "VeilLinux"]),
        .testTarget(name: "TTRPCTests", dependencies: ["TTRPC", "VeilShimProtocol", "VeilLinux"]),
        .testTarget(name: "VeilSeccompTests", dependencies: ["VeilSeccomp", "VeilSpec", "VeilLinux", "CVeilLinux"]),
        .testTarget(name: "VeilSandboxTests", dependencies: ["VeilSandbox", "VeilSeccomp", "VeilSpec", "VeilLinux", "VeilWarden", "CVeilLinux"]),
        .testTarget(name: "VeilContainerTests", dependencies: ["VeilContainer", "VeilCgroups", "VeilSpec", "VeilLinux", "VeilExchange", "CVeilLinux"]),
        // The shim's runtime options and stats conversion, the warden's answers: no root, no containerd.
        .testTarget(name: "VeilShimTests", dependencies: ["VeilShim", "VeilShimProtocol", "VeilExchange", "VeilSpec", "TTRPC",
                                                          .product(name: "SwiftProtobuf", package: "swift-protobuf")]),
        .testTarget(name: "VeilWardenTests", dependencies: ["VeilWarden", "VeilLinux", "CVeilLinux"]),
        .testTarget(name: "VeilCRITests", dependencies: ["VeilCRI", "VeilSpec"]),
        .testTarget(name: "VeilCheckpointTests", dependencies: ["VeilCheckpoint", "VeilCRIUProtocol", "VeilContainer", "VeilSpec",
                                                                .product(name: "SwiftProtobuf", package: "swift-protobuf")],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "VeilRegistryTests", dependencies: [
            "VeilRegistry", "VeilSpec", "VeilLinux",
            .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"), .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
        ]),
        // The targets above are hermetic unit tests (`make unit-test`: no root, no daemons). The two
        // below need the machine: module APIs against the real kernel as root (cgroups, BPF) ...
        .testTarget(name: "VeilMachineTests", dependencies: ["VeilCgroups", "VeilInstall"]),
        // ... and end-to-end: the built veil binary as root against real bundles, and every test that
        // starts containerd, through one harness (ContainerdRig); VeilCRI as a CRI client to inspect
        // what `veil verify` left behind, TTRPC to speak to containerd as a shim does.
        .testTarget(name: "VeilRuntimeTests", dependencies: ["VeilCRI", "TTRPC", "VeilShimProtocol"]),
    ]
)

// Our modules reach concrete generic types (KeyedDecodingContainer<Spec.CodingKeys>, [Mount], ...)
// through their metadata accessors, with the conformances the compiler already knows, instead of
// by mangled name: the runtime would demangle each on first use and look its conformances up by
// scanning every conformance record of the binary (7,570 in veil, ~50 µs a scan); decoding a
// config.json and the init's plan took 42 such scans per `run`, 2 ms on its critical path.
for target in package.targets where target.type != .system && !target.name.hasPrefix("C") {
    target.swiftSettings = (target.swiftSettings ?? []) + [
        .unsafeFlags(["-Xfrontend", "-disable-concrete-type-metadata-mangled-name-accessors"]),
    ]
}

// The modules of the veil binary see only the members of modules they import. Otherwise
// full Foundation's String extensions (range(of:), contains, replacingOccurrences), visible
// through TOMLKit's `import struct Foundation.Data`, win overload resolution and link
// Foundation, CoreFoundation and ICU into veil: 1,900 more conformance records for the runtime
// to scan and CoreFoundation's start-up, at every exec of veil (create, the init, start, delete).
for target in package.targets where ["veil", "VeilContainer", "VeilInstall", "VeilRegistry"].contains(target.name) {
    target.swiftSettings = (target.swiftSettings ?? []) + [.enableUpcomingFeature("MemberImportVisibility")]
}
