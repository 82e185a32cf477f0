import CVeilSentinel
import Glibc
import VeilWarden

// veil-warden STATE_DIRECTORY [INIT_PID [INPUT_DIRECTORY]]: a sandbox's supervisor, started by `veil create`
// (see Warden). It reads what it needs as it starts (warden.conf, dmesg, warden.bpf, the fixed /proc views)
// from INPUT_DIRECTORY, by default the owning container's STATE_DIRECTORY, which `ps` shows as its argument.
// Given an INPUT_DIRECTORY (as veil create starts it), it waits for its first listener on the control socket.
let arguments = CommandLine.arguments
guard (2...4).contains(arguments.count) else {
    _ = "usage: veil-warden STATE_DIRECTORY [INIT_PID [INPUT_DIRECTORY]] (started by veil create)\n".withCString { write(2, $0, strlen($0)) }
    exit(2)
}
// The sentinel was forked before Swift started (CVeilSentinel); this arms the fatal-signal handlers.
let armed = veil_sentinel_arm()
if armed != 0 {
    _ = "veil-warden: starting the sentinel: \(String(cString: strerror(-armed)))\n".withCString { write(2, $0, strlen($0)) }
}
Warden.main(inputDirectory: arguments.count == 4 ? arguments[3] : arguments[1], initPid: arguments.count >= 3 ? Int32(arguments[2]) : nil,
            awaitingListener: arguments.count == 4,
            guardProcess: veil_sentinel_guard)
