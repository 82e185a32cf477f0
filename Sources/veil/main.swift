import ArgumentParser
import Glibc
import VeilContainer

// `veil init` is the container's first process: keep its path free of anything but the init.
if CommandLine.arguments.count > 1 && CommandLine.arguments[1] == "init" {
    ContainerInit.main()
}

switch GlobalOptions.parse(Array(CommandLine.arguments.dropFirst())) {
case .failure(let error):
    writeError("veil: \(error)\n")
    exit(2)
case .success(let (options, rest)):
    Context.global = options
    if FastPath.run(rest) { exit(0) }
    Veil.main(rest)
}
