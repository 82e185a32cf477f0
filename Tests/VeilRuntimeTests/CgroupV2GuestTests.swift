// cgroup v2 on a real unified-only kernel. This machine mounts cgroups hybrid (v1 controllers), so
// tests/vm/run-guest.sh boots Debian's cloud kernel under qemu (software emulation) with an
// initramfs holding this veil binary, busybox bundles and tests/vm/guest-tests.sh; the guest mounts
// only cgroup2 and reports "ok NAME" / "not ok NAME: reason" lines and a final
// "VEIL-GUEST-RESULT: PASS|FAIL" line over its serial console, which the script prints.
//
// The kernel and the initramfs are cached under /var/cache/veil/vm; a cached run takes ~25 s, the
// first one adds the kernel download (and qemu's installation). VEIL_SKIP_VM=1 leaves it out.

import Foundation
import Testing

@Suite("cgroup v2 in a qemu guest")
struct CgroupV2GuestTests {
    /// The guest's own limit; run-guest.sh's preparation (apt, download, initramfs) comes on top.
    /// Idle, the guest needs ~25 s; two busy host cores emulating two guest ones can make that minutes.
    static let guestTimeout = 420
    static let commandTimeout: TimeInterval = 900

    @Test("veil's cgroup v2 checks pass on a cgroup2-only kernel",
          .enabled(if: ProcessInfo.processInfo.environment["VEIL_SKIP_VM"] != "1", "VEIL_SKIP_VM=1"))
    func guestChecks() throws {
        let veil = try requireVeil()
        let script = packageRoot + "/tests/vm/run-guest.sh"
        let result = try runCommand(script, ["--veil", veil, "--timeout", String(Self.guestTimeout)],
                                    timeout: Self.commandTimeout)
        expectGuestPassed(result, label: "cgroup v2 guest")
    }
}
