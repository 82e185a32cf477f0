import Glibc
import VeilWarden

// veil-warden STATE_DIRECTORY: a sandbox's supervisor, started by `veil create` (see Warden).
guard CommandLine.arguments.count == 2 else {
    _ = "usage: veil-warden STATE_DIRECTORY (started by veil create)\n".withCString { write(2, $0, strlen($0)) }
    exit(2)
}
Warden.main(stateDirectory: CommandLine.arguments[1])
