import FoundationEssentials
import Testing
import VeilSeccomp
import VeilSpec

private func compileError(_ profile: LinuxSeccomp) -> String? {
    do {
        _ = try SeccompProgram.compile(profile)
        return nil
    } catch {
        return error.description
    }
}

private func allow(_ names: [String], action: String = "SCMP_ACT_ALLOW", args: [LinuxSeccompArg]? = nil) -> LinuxSyscall {
    LinuxSyscall(names: names, action: action, args: args)
}

@Suite struct CompileErrorTests {
    @Test func unknownDefaultAction() {
        #expect(compileError(LinuxSeccomp(defaultAction: "SCMP_ACT_NOPE"))
            == #"config.json: linux.seccomp.defaultAction: unknown action "SCMP_ACT_NOPE""#)
    }

    @Test func unknownRuleActionNamesItsIndex() {
        let profile = LinuxSeccomp(defaultAction: "SCMP_ACT_ERRNO", syscalls: [
            allow(["read"]), allow(["write"]), allow(["close"]), allow(["mkdir"], action: "SCMP_ACT_FOO"),
        ])
        #expect(compileError(profile) == #"config.json: linux.seccomp.syscalls[3].action: unknown action "SCMP_ACT_FOO""#)
    }

    @Test func unknownOperator() {
        let profile = LinuxSeccomp(defaultAction: "SCMP_ACT_ALLOW", syscalls: [
            allow(["personality"], action: "SCMP_ACT_ERRNO", args: [
                LinuxSeccompArg(index: 0, value: 1, op: "SCMP_CMP_EQ"),
                LinuxSeccompArg(index: 1, value: 1, op: "SCMP_CMP_ALMOST"),
            ]),
        ])
        #expect(compileError(profile) == #"config.json: linux.seccomp.syscalls[0].args[1].op: unknown operator "SCMP_CMP_ALMOST""#)
    }

    @Test func argumentIndexOutOfRange() {
        let profile = LinuxSeccomp(defaultAction: "SCMP_ACT_ALLOW", syscalls: [
            allow(["personality"], action: "SCMP_ACT_ERRNO", args: [LinuxSeccompArg(index: 6, value: 1, op: "SCMP_CMP_EQ")]),
        ])
        #expect(compileError(profile)?.hasPrefix("config.json: linux.seccomp.syscalls[0].args[0].index: 6 is out of range") == true)
    }

    @Test func unknownArchitecture() {
        let profile = LinuxSeccomp(defaultAction: "SCMP_ACT_ALLOW", architectures: ["SCMP_ARCH_X86_64", "SCMP_ARCH_VAX"])
        #expect(compileError(profile) == #"config.json: linux.seccomp.architectures[1]: unknown architecture "SCMP_ARCH_VAX""#)
        let bare = LinuxSeccomp(defaultAction: "SCMP_ACT_ALLOW", architectures: ["x86_64"])
        #expect(compileError(bare) == #"config.json: linux.seccomp.architectures[0]: unknown architecture "x86_64""#)
    }

    @Test func unknownFlag() {
        let profile = LinuxSeccomp(defaultAction: "SCMP_ACT_ALLOW", flags: ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_BOGUS"])
        #expect(compileError(profile) == #"config.json: linux.seccomp.flags[1]: unknown flag "SECCOMP_FILTER_FLAG_BOGUS""#)
    }

    @Test func errnoRetOnlyForErrnoAndTrace() {
        let rule = LinuxSeccomp(defaultAction: "SCMP_ACT_ERRNO", syscalls: [LinuxSyscall(names: ["read"], action: "SCMP_ACT_ALLOW", errnoRet: 5)])
        #expect(compileError(rule)?.hasPrefix("config.json: linux.seccomp.syscalls[0].errnoRet: only SCMP_ACT_ERRNO and SCMP_ACT_TRACE") == true)
        let def = LinuxSeccomp(defaultAction: "SCMP_ACT_ALLOW", defaultErrnoRet: 5)
        #expect(compileError(def)?.hasPrefix("config.json: linux.seccomp.defaultErrnoRet: only") == true)
        let big = LinuxSeccomp(defaultAction: "SCMP_ACT_ERRNO", defaultErrnoRet: 70000)
        #expect(compileError(big)?.hasPrefix("config.json: linux.seccomp.defaultErrnoRet: 70000 is out of range") == true)
    }

    @Test func notifyRestrictions() {
        #expect(compileError(LinuxSeccomp(defaultAction: "SCMP_ACT_NOTIFY"))
            == "config.json: linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action")
        let write = LinuxSeccomp(defaultAction: "SCMP_ACT_ALLOW", syscalls: [allow(["read", "write"], action: "SCMP_ACT_NOTIFY")])
        #expect(compileError(write) == "config.json: linux.seccomp.syscalls[0].names[1]: SCMP_ACT_NOTIFY cannot be used for the write system call")
    }

    @Test func emptySyscallName() {
        let profile = LinuxSeccomp(defaultAction: "SCMP_ACT_ERRNO", syscalls: [allow(["read", ""])])
        #expect(compileError(profile) == "config.json: linux.seccomp.syscalls[0].names[1]: empty system call name")
    }

    @Test func customFieldPath() {
        do {
            _ = try SeccompProgram.compile(LinuxSeccomp(defaultAction: "X"), field: "process.seccomp")
            Issue.record("compiled")
        } catch {
            #expect(error.path == "process.seccomp.defaultAction")
        }
    }
}

@Suite struct CompileOutputTests {
    let base = LinuxSeccomp(defaultAction: "SCMP_ACT_ERRNO", flags: [], syscalls: [
        LinuxSyscall(names: ["read", "write", "exit_group"], action: "SCMP_ACT_ALLOW"),
    ])

    @Test func wellFormedAndDeterministic() throws {
        let a = try SeccompProgram.compile(base)
        let b = try SeccompProgram.compile(base)
        #expect(!a.filter.isEmpty)
        #expect(a.filter.count % 8 == 0)
        #expect(a.instructionCount == a.filter.count / 8)
        #expect(a == b)
        #expect(a.flags == [])
        #expect(!a.usesNotify)

        var more = base
        more.syscalls?.append(LinuxSyscall(names: ["mkdir"], action: "SCMP_ACT_ALLOW"))
        #expect(try SeccompProgram.compile(more).filter != a.filter)

        var errno = base
        errno.defaultErrnoRet = 38
        #expect(try SeccompProgram.compile(errno).filter != a.filter)
    }

    @Test func unknownSyscallNamesAreSkipped() throws {
        var profile = base
        profile.syscalls?.append(LinuxSyscall(names: ["no_such_syscall_veil", "another_one"], action: "SCMP_ACT_ALLOW"))
        profile.syscalls?.append(LinuxSyscall(names: ["mkdir", "not_a_syscall"], action: "SCMP_ACT_ALLOW"))
        var expected = base
        expected.syscalls?.append(LinuxSyscall(names: ["mkdir"], action: "SCMP_ACT_ALLOW"))
        #expect(try SeccompProgram.compile(profile).filter == SeccompProgram.compile(expected).filter)
    }

    @Test func rulesRepeatingTheDefaultAreSkipped() throws {
        var profile = base
        profile.syscalls?.append(LinuxSyscall(names: ["mkdir"], action: "SCMP_ACT_ERRNO"))  // EPERM = default
        #expect(try SeccompProgram.compile(profile).filter == SeccompProgram.compile(base).filter)
        // A different errno is a different action: kept.
        profile.syscalls?.append(LinuxSyscall(names: ["rmdir"], action: "SCMP_ACT_ERRNO", errnoRet: 38))
        #expect(try SeccompProgram.compile(profile).filter != SeccompProgram.compile(base).filter)
    }

    @Test func killIsKillThread() throws {
        let kill = LinuxSeccomp(defaultAction: "SCMP_ACT_KILL", flags: [], syscalls: base.syscalls)
        let thread = LinuxSeccomp(defaultAction: "SCMP_ACT_KILL_THREAD", flags: [], syscalls: base.syscalls)
        let process = LinuxSeccomp(defaultAction: "SCMP_ACT_KILL_PROCESS", flags: [], syscalls: base.syscalls)
        #expect(try SeccompProgram.compile(kill).filter == SeccompProgram.compile(thread).filter)
        #expect(try SeccompProgram.compile(kill).filter != SeccompProgram.compile(process).filter)
    }

    @Test func everyActionAndOperatorCompiles() throws {
        var syscalls: [LinuxSyscall] = []
        let names = ["mkdir", "rmdir", "chdir", "fchdir", "getpid", "getppid", "uname", "umask", "sync"]
        for (i, action) in SeccompFeatures.actions.enumerated() where action != "SCMP_ACT_ALLOW" {
            syscalls.append(LinuxSyscall(names: [names[i % names.count]], action: action))
        }
        for op in SeccompFeatures.operators {
            syscalls.append(LinuxSyscall(names: ["personality"], action: "SCMP_ACT_ERRNO",
                                         args: [LinuxSeccompArg(index: 0, value: 0xff, valueTwo: 7, op: op)]))
        }
        let program = try SeccompProgram.compile(LinuxSeccomp(defaultAction: "SCMP_ACT_ALLOW", syscalls: syscalls))
        #expect(program.usesNotify)
        #expect(program.filterFlags & SeccompFilterFlag.newListener != 0)
    }

    @Test func sameIndexArgsAreOredDifferentIndexesAnded() throws {
        // Same index twice: one rule per arg. Different indexes: one rule with both.
        let ored = LinuxSeccomp(defaultAction: "SCMP_ACT_ALLOW", syscalls: [
            LinuxSyscall(names: ["personality"], action: "SCMP_ACT_ERRNO", args: [
                LinuxSeccompArg(index: 0, value: 1, op: "SCMP_CMP_EQ"), LinuxSeccompArg(index: 0, value: 2, op: "SCMP_CMP_EQ"),
            ]),
        ])
        let split = LinuxSeccomp(defaultAction: "SCMP_ACT_ALLOW", syscalls: [
            LinuxSyscall(names: ["personality"], action: "SCMP_ACT_ERRNO", args: [LinuxSeccompArg(index: 0, value: 1, op: "SCMP_CMP_EQ")]),
            LinuxSyscall(names: ["personality"], action: "SCMP_ACT_ERRNO", args: [LinuxSeccompArg(index: 0, value: 2, op: "SCMP_CMP_EQ")]),
        ])
        #expect(try SeccompProgram.compile(ored).filter == SeccompProgram.compile(split).filter)
    }

    @Test func architecturesAndFlags() throws {
        var profile = base
        profile.architectures = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
        profile.flags = ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_LOG"]
        let program = try SeccompProgram.compile(profile)
        #expect(program.flags == ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"])
        #expect(program.filterFlags == SeccompFilterFlag.log | SeccompFilterFlag.specAllow)
        #expect(program.filter.count > (try SeccompProgram.compile(base).filter.count))

        // Absent flags: SPEC_ALLOW when the kernel has it, as runc.
        var absent = base
        absent.flags = nil
        let defaulted = try SeccompProgram.compile(absent)
        let expected = SeccompFeatures.supportedFlags.contains("SECCOMP_FILTER_FLAG_SPEC_ALLOW") ? ["SECCOMP_FILTER_FLAG_SPEC_ALLOW"] : []
        #expect(defaulted.flags == expected)
        // WAIT_KILLABLE_RECV is dropped without a listener.
        var wait = base
        wait.flags = ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]
        #expect(try SeccompProgram.compile(wait).filterFlags == 0)
    }

    @Test func programRoundTripsThroughCodable() throws {
        let program = try SeccompProgram.compile(base)
        let data = try JSONEncoder().encode(program)
        #expect(try JSONDecoder().decode(SeccompProgram.self, from: data) == program)
    }
}

@Suite struct FeaturesTests {
    @Test func lists() {
        #expect(SeccompFeatures.actions.contains("SCMP_ACT_NOTIFY"))
        #expect(SeccompFeatures.actions.count == 9)
        #expect(SeccompFeatures.actions == SeccompFeatures.actions.sorted())
        #expect(SeccompFeatures.availableActions.contains("SCMP_ACT_ERRNO"))
        #expect(SeccompFeatures.operators.count == 7)
        #expect(SeccompFeatures.archs.contains("SCMP_ARCH_X86_64"))
        #expect(SeccompFeatures.archs.contains("SCMP_ARCH_AARCH64"))
        #expect(SeccompFeatures.knownFlags.contains("SECCOMP_FILTER_FLAG_TSYNC"))
        #expect(Set(SeccompFeatures.supportedFlags).isSubset(of: SeccompFeatures.knownFlags))
        #expect(SeccompFeatures.supportedFlags.contains("SECCOMP_FILTER_FLAG_LOG"))
        #expect(SeccompFeatures.libseccompVersion.major == 2)
        #expect(SeccompFeatures.apiLevel >= 1)
    }
}
