// The systemd cgroup driver (issue #15) under a real systemd. This machine's PID 1 is not systemd, so
// tests/vm/run-systemd-guest.sh boots Debian 12 under qemu (software emulation) with systemd 252 as
// PID 1 on cgroup v2: a cached root image (tests/vm/systemd-image.sh) and a payload disk holding this
// veil build, veil-warden, the containerd shim, busybox bundles and tests/vm/guest-systemd-tests.sh.
// The guest runs the same checks for each runtime of a list (runc --systemd-cgroup first, the
// reference; then veil at the native and the sandbox level) and reports "ok N - NAME",
// "not ok N - NAME: reason" and "ok N - NAME # SKIP reason" lines and a final
// "VEIL-GUEST-RESULT: PASS|FAIL" line, which the script prints.
//
// VEIL_GUEST_RUNTIMES picks the runtimes (default "runc veil-native veil-sandbox"; "runc" alone
// proves the rig). The image is cached under /var/cache/veil/vm: the first run builds it with
// debootstrap (1-3 minutes), a cached run takes ~2.5 minutes on an idle 2-core machine.
// VEIL_SKIP_VM=1 leaves it out.

import Foundation
import Testing

@Suite("systemd cgroup driver in a qemu guest")
struct SystemdGuestTests {
    /// The guest's own limit; building the image (debootstrap) and the payload comes on top.
    /// Idle, the guest needs ~2.5 minutes; busy host cores emulating the guest's can double that.
    static let guestTimeout = 600
    static let commandTimeout: TimeInterval = 1200
    static let defaultRuntimes = "runc veil-native veil-sandbox"

    @Test("the systemd cgroup driver checks pass under systemd (runc as the reference, then veil)",
          .enabled(if: ProcessInfo.processInfo.environment["VEIL_SKIP_VM"] != "1", "VEIL_SKIP_VM=1"))
    func guestChecks() throws {
        let veil = try requireVeil()
        let runtimes = ProcessInfo.processInfo.environment["VEIL_GUEST_RUNTIMES"].flatMap { $0.isEmpty ? nil : $0 }
            ?? Self.defaultRuntimes
        let script = packageRoot + "/tests/vm/run-systemd-guest.sh"
        let result = try runCommand(script, ["--veil", veil, "--timeout", String(Self.guestTimeout), "--runtimes", runtimes],
                                    timeout: Self.commandTimeout)
        expectGuestPassed(result, label: "systemd guest, \(runtimes)")
    }
}
