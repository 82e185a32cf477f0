import CVeilLinux
import Glibc
import Testing
import VeilSeccomp
import VeilSpec

@Suite(.serialized) struct InstallTests {
    @Test func mkdirGetsTheConfiguredErrno() throws {
        let profile = LinuxSeccomp(defaultAction: "SCMP_ACT_ALLOW", flags: [], syscalls: [
            LinuxSyscall(names: ["mkdir", "mkdirat"], action: "SCMP_ACT_ERRNO", errnoRet: 38),
        ])
        let program = try SeccompProgram.compile(profile)
        let dir = scratchDirectory()
        defer { rmdir(dir + "/x"); rmdir(dir) }
        let count = UInt16(program.instructionCount)
        let flags = program.filterFlags
        let status = (dir + "/x").withCString { path in
            program.filter.withUnsafeBytes { filter -> Int32? in
                guard let base = filter.baseAddress else { return nil }
                return inChild {
                    if SeccompLoader.installRaw(filter: base, count: count, flags: flags) < 0 { return installFailed }
                    return mkdir(path, 0o700) == 0 ? 0 : errno
                }
            }
        }
        #expect(status == ENOSYS)
        #expect(access(dir + "/x", F_OK) != 0)
        // Without the filter the same call works: the filter did it.
        #expect(mkdir(dir + "/x", 0o700) == 0)
    }

    /// What each raw system call returns in a child under `profile`'s filter: 0 or the errno.
    private func errnos(of numbers: [Int], under profile: LinuxSeccomp) throws -> [Int32?] {
        let program = try SeccompProgram.compile(profile)
        let count = UInt16(program.instructionCount)
        let flags = program.filterFlags
        return numbers.map { number in
            program.filter.withUnsafeBytes { filter -> Int32? in
                guard let base = filter.baseAddress else { return nil }
                return inChild {
                    if SeccompLoader.installRaw(filter: base, count: count, flags: flags) < 0 { return installFailed }
                    let result = veil_raw_syscall(number, 0, 0, 0, 0, 0, 0)
                    return result < 0 ? Int32(-result) : 0
                }
            }
        }
    }

    @Test func callsNewerThanTheProfileGetENOSYS() throws {
        // Newest named: openat2 (437). process_madvise (440) and 1000 are newer, acct (163) older.
        let refusing = LinuxSeccomp(defaultAction: "SCMP_ACT_ERRNO", syscalls: [
            LinuxSyscall(names: ["exit_group", "exit", "openat2"], action: "SCMP_ACT_ALLOW"),
        ])
        #expect(try errnos(of: [440, 1000, 163], under: refusing) == [ENOSYS, ENOSYS, EPERM])
        // The default's own errno stays for calls the profile could have named; kill defaults too.
        var custom = refusing
        custom.defaultErrnoRet = UInt(EACCES)
        #expect(try errnos(of: [440, 163], under: custom) == [ENOSYS, EACCES])
        // An allowing default lets newer calls through to the kernel (process_madvise(0, ...): EBADF).
        let allowing = LinuxSeccomp(defaultAction: "SCMP_ACT_ALLOW", syscalls: [
            LinuxSyscall(names: ["acct"], action: "SCMP_ACT_ERRNO"),
        ])
        #expect(try errnos(of: [440, 163], under: allowing) == [EBADF, EPERM])
    }

    @Test func argumentsAreAnded() throws {
        // mkdir fails only when mode == 0700 AND ... mode & 0o7 == 0 (both on index 1 would OR;
        // here index 1 and a comparison on index 0 that always holds: path pointer != 0).
        let profile = LinuxSeccomp(defaultAction: "SCMP_ACT_ALLOW", flags: ["SECCOMP_FILTER_FLAG_LOG"], syscalls: [
            LinuxSyscall(names: ["mkdir"], action: "SCMP_ACT_ERRNO", errnoRet: 38, args: [
                LinuxSeccompArg(index: 0, value: 0, op: "SCMP_CMP_NE"),
                LinuxSeccompArg(index: 1, value: 0o700, op: "SCMP_CMP_EQ"),
            ]),
        ])
        let program = try SeccompProgram.compile(profile)
        let dir = scratchDirectory()
        defer { rmdir(dir + "/a"); rmdir(dir + "/b"); rmdir(dir) }
        let count = UInt16(program.instructionCount)
        let flags = program.filterFlags
        #expect(flags == SeccompFilterFlag.log)
        let status = (dir + "/a").withCString { a in
            (dir + "/b").withCString { b in
                program.filter.withUnsafeBytes { filter -> Int32? in
                    guard let base = filter.baseAddress else { return nil }
                    return inChild {
                        if SeccompLoader.installRaw(filter: base, count: count, flags: flags) < 0 { return installFailed }
                        if mkdir(a, 0o700) == 0 { return 1 }       // must be refused
                        if errno != ENOSYS { return 2 }
                        if mkdir(b, 0o755) != 0 { return 3 }       // other mode: allowed
                        return 0
                    }
                }
            }
        }
        #expect(status == 0)
        #expect(access(dir + "/b", F_OK) == 0)
    }

    @Test func sameIndexArgumentsAreOred() throws {
        let profile = LinuxSeccomp(defaultAction: "SCMP_ACT_ALLOW", flags: [], syscalls: [
            LinuxSyscall(names: ["mkdir"], action: "SCMP_ACT_ERRNO", errnoRet: 38, args: [
                LinuxSeccompArg(index: 1, value: 0o700, op: "SCMP_CMP_EQ"),
                LinuxSeccompArg(index: 1, value: 0o750, op: "SCMP_CMP_EQ"),
            ]),
        ])
        let program = try SeccompProgram.compile(profile)
        let dir = scratchDirectory()
        defer { rmdir(dir + "/c"); rmdir(dir) }
        let count = UInt16(program.instructionCount)
        let flags = program.filterFlags
        let status = (dir + "/c").withCString { c in
            program.filter.withUnsafeBytes { filter -> Int32? in
                guard let base = filter.baseAddress else { return nil }
                return inChild {
                    if SeccompLoader.installRaw(filter: base, count: count, flags: flags) < 0 { return installFailed }
                    if mkdir(c, 0o700) == 0 || errno != ENOSYS { return 1 }
                    if mkdir(c, 0o750) == 0 || errno != ENOSYS { return 2 }
                    if mkdir(c, 0o755) != 0 { return 3 }
                    return 0
                }
            }
        }
        #expect(status == 0)
    }

    @Test func notifyReturnsAListener() throws {
        let profile = LinuxSeccomp(defaultAction: "SCMP_ACT_ALLOW",
                                   flags: ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV", "SECCOMP_FILTER_FLAG_TSYNC"],
                                   syscalls: [LinuxSyscall(names: ["mkdir"], action: "SCMP_ACT_NOTIFY")])
        let program = try SeccompProgram.compile(profile)
        #expect(program.usesNotify)
        #expect(program.filterFlags == SeccompFilterFlag.newListener | SeccompFilterFlag.waitKillableRecv
            | SeccompFilterFlag.tsync | SeccompFilterFlag.tsyncESRCH)
        var fds: [Int32] = [-1, -1]
        #expect(pipe(&fds) == 0)
        defer { close(fds[0]) }
        let writeEnd = fds[1]
        // SeccompLoader.install (with its WAIT_KILLABLE_RECV retry) in the child: it only reads the
        // program (no allocation on success); filterFlags' table is initialised above, before the fork.
        let status = inChild {
            var fd: Int32 = -1
            do {
                fd = try SeccompLoader.install(program) ?? -1
            } catch {
                return installFailed
            }
            _ = withUnsafeBytes(of: &fd) { write(writeEnd, $0.baseAddress, 4) }
            return 0
        }
        close(writeEnd)
        #expect(status == 0)
        var listener: Int32 = -1
        let n = withUnsafeMutableBytes(of: &listener) { read(fds[0], $0.baseAddress, 4) }
        #expect(n == 4)
        #expect(listener > 2)
    }

    @Test func malformedProgramIsRefused() {
        let program = SeccompProgram(filter: [1, 2, 3], flags: [], usesNotify: false)
        #expect(throws: (any Error).self) { _ = try SeccompLoader.install(program) }
    }
}
