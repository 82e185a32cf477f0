// Checkpoint and restore (issue #16) where CRIU works: this host's kernel fails `criu check`, so
// tests/vm/run-checkpoint-guest.sh boots the systemd guest (Debian's cloud kernel, Debian's CRIU,
// the image cached by tests/vm/systemd-image.sh) and runs tests/vm/guest-checkpoint-tests.sh: CRIU
// alone on a process tree; veil checkpoint --export of a native container, restore --import in a
// fresh state root (the counter goes on), inspect, memparse, coredump read by gdb, dump of pstree
// and utsns; a pre-dump chain with --leave-running; a paused container checkpointed and still
// paused; restore's --empty-ns/--auto-dedup/--manage-cgroups-mode; a private containerd driving the
// veil shim through ctr c checkpoint --task and ctr c restore --live; a sandboxed container
// checkpointed and restored with its policy and a new warden, and the levels' mismatches refused. About a minute and a half on an idle 2-core machine. VEIL_SKIP_VM=1 leaves it out.

import Foundation
import Testing

@Suite("checkpoint and restore in a qemu guest")
struct CheckpointGuestTests {
    @Test("checkpoint, restore and the forensic commands pass in the guest",
          .enabled(if: ProcessInfo.processInfo.environment["VEIL_SKIP_VM"] != "1", "VEIL_SKIP_VM=1"))
    func guestChecks() throws {
        let veil = try requireVeil()
        let script = packageRoot + "/tests/vm/run-checkpoint-guest.sh"
        let result = try runCommand(script, ["--veil", veil, "--timeout", "600"], timeout: 1200)
        expectGuestPassed(result, label: "checkpoint guest")
    }
}
