import ArgumentParser
import Glibc
import VeilContainer

// Whoever started us may have blocked signals (a test runner, a shim); runc's Go runtime starts
// with none blocked, and so do we (`run` and `exec` block them again to forward them).
do {
    var none = sigset_t()
    sigemptyset(&none)
    pthread_sigmask(SIG_SETMASK, &none, nil)
}

// argv[1] from argv itself: building CommandLine.arguments runs the standard library's generic
// set-up for it (~0.1 ms), which the init, on every create's critical path, has no use for.
let firstArgument = CommandLine.argc > 1 ? CommandLine.unsafeArgv[1].map { String(cString: $0) } : nil
// `veil init` is the container's first process: keep its path free of anything but the init.
if firstArgument == "init" {
    ContainerInit.main()
}
// Record mode's recorder, started by create with the record filter's listener: no parser either.
if firstArgument == SeccompRecordMode.recorderCommand {
    SeccompRecordMode.recorderMain()
}


switch GlobalOptions.parse(Array(CommandLine.arguments.dropFirst())) {
case .failure(let error):
    writeError("veil: \(error)\n")
    exit(2)
case .success((var options, let rest)):
    options.apply(programName: CommandLine.arguments.first ?? "veil")
    Context.global = options
    Context.logger = Logger(file: options.logFile, format: options.logFormat, debug: options.debug)
    Context.logger.createFile()
    Context.logger.debug("veil \(rest.first ?? ""): \(isolationDescription(options))")
    if FastPath.run(rest) { exit(0) }
    if let (text, toStderr, status) = RuncStyleHelp.handle(rest) {
        if toStderr { Context.logger.error(String(text.dropFirst("veil: ".count).dropLast())) } else { writeOut(text) }
        exit(status)
    }
    if rest.first == "verify" { HelperCommand.exec("veil-verify", command: "verify", Array(rest.dropFirst())) }
    // Reading a checkpoint (protobuf, CRIU's image messages) lives in veil-checkpoint.
    if rest.first == "checkpoint", rest.count > 1, Checkpoint.readers.contains(rest[1]) {
        HelperCommand.exec("veil-checkpoint", command: "checkpoint", rest)
    }
    do {
        var command = try Veil.parseAsRoot(rest)
        try command.run()
    } catch {
        // Help and --version exit cleanly; usage errors also reach the --log file, where
        // containerd's shim looks for the reason a command failed.
        if Veil.exitCode(for: error) == .success { Veil.exit(withError: error) }
        Context.logger.error(Veil.message(for: error))
        exit(Veil.exitCode(for: error).rawValue)
    }
}
