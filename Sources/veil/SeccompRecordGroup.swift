import ArgumentParser

// Branch-local: the `seccomp` group until the registry helper's Sources/veil/Seccomp.swift is
// merged, which lists SeccompRecord.self among its subcommands (delete this file then).
struct SeccompRecordGroup: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "seccomp", abstract: "Seccomp profiles: record.",
                                                    subcommands: [SeccompRecord.self])
}
