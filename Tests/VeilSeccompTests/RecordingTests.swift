import FoundationEssentials
import Testing
import VeilSeccomp
import VeilSpec

/// Record mode's pure parts: naming recorded calls, the profile written from them, the record filter.
@Suite("seccomp recording")
struct RecordingTests {
    @Test("names by architecture: x86_64, i386, x32 (the kernel reports x32 as x86_64 with bit 30); unknown numbers are nil")
    func naming() {
        #expect(SeccompRecording.name(arch: 0xC000_003E, nr: 63)! == ("SCMP_ARCH_X86_64", "uname"))
        #expect(SeccompRecording.name(arch: 0x4000_0003, nr: 122)! == ("SCMP_ARCH_X86", "uname"))
        #expect(SeccompRecording.name(arch: 0xC000_003E, nr: 0x4000_0000 | 63)! == ("SCMP_ARCH_X32", "uname"))
        #expect(SeccompRecording.name(arch: 0xC000_003E, nr: 99_999) == nil)
        #expect(SeccompRecording.name(arch: 0xC000_00B7 /* aarch64 */, nr: 1) == nil)
    }

    @Test("the profile: ERRNO EPERM by default, x86_64 first, one ALLOW rule sorted and deduplicated with the runtime's needs")
    func profileShape() throws {
        let profile = SeccompRecording.profile(names: ["SCMP_ARCH_X86_64": ["write", "read", "openat"]], runtime: ["execve", "read"])
        #expect(profile.defaultAction == "SCMP_ACT_ERRNO")
        #expect(profile.defaultErrnoRet == 1)
        #expect(profile.architectures == ["SCMP_ARCH_X86_64"])
        #expect(profile.syscalls == [LinuxSyscall(names: ["execve", "openat", "read", "write"], action: "SCMP_ACT_ALLOW")])
        // It compiles, and what it lists is what it allows.
        _ = try SeccompProgram.compile(profile)
    }

    @Test("compat architectures are listed only when recorded, in a fixed order after x86_64; names are the union")
    func compatArchitectures() {
        let onlyX32 = SeccompRecording.profile(names: ["SCMP_ARCH_X32": ["read"], "SCMP_ARCH_X86_64": ["write"]], runtime: [])
        #expect(onlyX32.architectures == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X32"])
        let both = SeccompRecording.profile(names: ["SCMP_ARCH_X32": ["read"], "SCMP_ARCH_X86": ["socketcall", "read"], "SCMP_ARCH_X86_64": []],
                                            runtime: [])
        #expect(both.architectures == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
        #expect(both.syscalls?.first?.names == ["read", "socketcall"])
        let none = SeccompRecording.profile(names: [:], runtime: ["exit_group"])
        #expect(none.architectures == ["SCMP_ARCH_X86_64"])
        #expect(none.syscalls?.first?.names == ["exit_group"])
    }

    @Test("every recorded profile allows the calls the record filter lets through unseen")
    func runtimeNeeds() {
        let profile = SeccompRecording.profile(names: [:])
        let names = Set(profile.syscalls?.first?.names ?? [])
        #expect(names.isSuperset(of: SeccompRecording.unrecordedCalls))
        #expect(names.contains("seccomp") && names.contains("execve"))
    }

    @Test("the JSON keeps the runtime-spec's key order and omits empty fields")
    func encoding() throws {
        let text = String(decoding: try SeccompRecording.encode(SeccompRecording.profile(names: ["SCMP_ARCH_X86_64": ["read"]], runtime: [])),
                          as: UTF8.self)
        #expect(text == """
            {
              "defaultAction": "SCMP_ACT_ERRNO",
              "defaultErrnoRet": 1,
              "architectures": [
                "SCMP_ARCH_X86_64"
              ],
              "syscalls": [
                {
                  "names": [
                    "read"
                  ],
                  "action": "SCMP_ACT_ALLOW"
                }
              ]
            }

            """)
    }

    @Test("the record filter notifies (a listener) and compiles for x86_64 with its compat architectures")
    func filter() throws {
        let program = try SeccompRecording.filter()
        #expect(program.usesNotify)
        #expect(program.instructionCount > 10)
        #expect(SeccompRecording.anchorFilter.usesNotify && SeccompRecording.anchorFilter.instructionCount == 1)
    }
}
