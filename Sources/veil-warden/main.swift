import CVeilSentinel
import Glibc
import VeilWarden

// veil-warden STATE_DIRECTORY [INIT_PID]: a sandbox's supervisor, started by `veil create` (see Warden).
let arguments = CommandLine.arguments
guard arguments.count == 2 || arguments.count == 3 else {
    _ = "usage: veil-warden STATE_DIRECTORY [INIT_PID] (started by veil create)\n".withCString { write(2, $0, strlen($0)) }
    exit(2)
}
// The sentinel was forked before Swift started (CVeilSentinel); this arms the fatal-signal handlers.
let armed = veil_sentinel_arm()
if armed != 0 {
    _ = "veil-warden: starting the sentinel: \(String(cString: strerror(-armed)))\n".withCString { write(2, $0, strlen($0)) }
}
Warden.main(stateDirectory: arguments[1], initPid: arguments.count == 3 ? Int32(arguments[2]) : nil,
            guardProcess: veil_sentinel_guard)
