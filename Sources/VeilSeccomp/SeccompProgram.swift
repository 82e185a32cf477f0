import CSeccomp
import CVeilLinux
import Glibc
import VeilSpec

/// A seccomp profile compiled to classic BPF, ready for `SeccompLoader.install` (typically in
/// `veil init`, just before execve). Codable so it can travel in the init plan.
public struct SeccompProgram: Sendable, Codable, Equatable {
    /// The `struct sock_filter` array, 8 bytes per instruction, in the host's byte order.
    public let filter: [UInt8]
    /// The validated flag names (`SECCOMP_FILTER_FLAG_*`), applied by the loader.
    public let flags: [String]
    /// Some rule uses SCMP_ACT_NOTIFY: the loader asks for a listener fd.
    public let usesNotify: Bool

    public init(filter: [UInt8], flags: [String], usesNotify: Bool) {
        self.filter = filter
        self.flags = flags
        self.usesNotify = usesNotify
    }

    /// Number of BPF instructions.
    public var instructionCount: Int { filter.count / 8 }

    /// The flags argument of seccomp(SECCOMP_SET_MODE_FILTER): the profile's flags, plus
    /// NEW_LISTENER (and TSYNC_ESRCH with TSYNC, which the kernel requires alongside it) for
    /// notify. WAIT_KILLABLE_RECV only means something with a listener, so it is dropped otherwise.
    public var filterFlags: UInt32 {
        var bits: UInt32 = 0
        for name in flags { bits |= SeccompFilterFlag.bit(named: name) ?? 0 }
        if usesNotify {
            bits |= SeccompFilterFlag.newListener
            if bits & SeccompFilterFlag.tsync != 0 { bits |= SeccompFilterFlag.tsyncESRCH }
        } else {
            bits &= ~SeccompFilterFlag.waitKillableRecv
        }
        return bits
    }

    /// runc treats a profile with no default action and no syscalls as "no seccomp".
    public static func isEnabled(_ profile: LinuxSeccomp) -> Bool {
        !(profile.defaultAction.isEmpty && (profile.syscalls ?? []).isEmpty)
    }

    /// The kernel refuses longer programs (BPF_MAXINSNS).
    public static let maxInstructions = 4096

    /// Compiles an OCI seccomp profile with libseccomp and exports the BPF (nothing is installed).
    ///
    /// As runc: syscall names this libseccomp does not know are skipped (a profile written for a
    /// newer kernel still loads); rules whose action equals the default action are skipped;
    /// ERRNO and TRACE default to EPERM; a rule whose args use one index several times becomes one
    /// rule per arg (any matches: OR), otherwise one rule with all args (all must match: AND);
    /// `flags` absent means SECCOMP_FILTER_FLAG_SPEC_ALLOW when the kernel supports it; when the
    /// default action refuses calls, a system call newer than every one the profile names (per
    /// architecture) fails with ENOSYS instead, so that libc falls back as it does on an older
    /// kernel (see `NewerSyscallStub`).
    /// `field` is the JSON path of the profile, used in errors.
    public static func compile(_ profile: LinuxSeccomp, field: String = "linux.seccomp") throws(SeccompError) -> SeccompProgram {
        func fail(_ path: String, _ reason: String) -> SeccompError {
            SeccompError(path: path.isEmpty ? field : "\(field).\(path)", reason: reason)
        }

        // Default action.
        guard let defaultName = ActionName(rawValue: profile.defaultAction) else {
            throw fail("defaultAction", "unknown action \(quoted(profile.defaultAction))")
        }
        if defaultName == .notify {
            throw fail("defaultAction", "SCMP_ACT_NOTIFY cannot be the default action")
        }
        if let ret = profile.defaultErrnoRet {
            guard defaultName.takesErrno else {
                throw fail("defaultErrnoRet", "only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take an errno, not \(defaultName.rawValue)")
            }
            guard ret <= 0xffff else { throw fail("defaultErrnoRet", "\(ret) is out of range (at most 65535)") }
        }
        let defaultAction = defaultName.value(errnoRet: profile.defaultErrnoRet.map { UInt32($0) })

        // Architectures.
        var arches: [UInt32] = []
        for (i, name) in (profile.architectures ?? []).enumerated() {
            guard let token = resolveArchitecture(name) else {
                throw fail("architectures[\(i)]", "unknown architecture \(quoted(name))")
            }
            arches.append(token)
        }

        // Flags.
        var flags: [String] = []
        if let given = profile.flags {
            for (i, name) in given.enumerated() {
                guard SeccompFilterFlag.bit(named: name) != nil else {
                    throw fail("flags[\(i)]", "unknown flag \(quoted(name))")
                }
                if !flags.contains(name) { flags.append(name) }
            }
        } else if veil_seccomp_flags_supported(SeccompFilterFlag.specAllow) == 0 {
            flags = ["SECCOMP_FILTER_FLAG_SPEC_ALLOW"]
        }

        // Validate every rule before building anything, so errors come in document order.
        struct Rule { var index: Int; var names: [String]; var action: UInt32; var args: [scmp_arg_cmp] ; var split: Bool }
        var rules: [Rule] = []
        var usesNotify = false
        for (i, call) in (profile.syscalls ?? []).enumerated() {
            let at = "syscalls[\(i)]"
            guard let name = ActionName(rawValue: call.action) else {
                throw fail("\(at).action", "unknown action \(quoted(call.action))")
            }
            if let ret = call.errnoRet {
                guard name.takesErrno else {
                    throw fail("\(at).errnoRet", "only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take an errno, not \(name.rawValue)")
                }
                guard ret <= 0xffff else { throw fail("\(at).errnoRet", "\(ret) is out of range (at most 65535)") }
            }
            for (j, syscall) in call.names.enumerated() where syscall.isEmpty {
                throw fail("\(at).names[\(j)]", "empty system call name")
            }
            if name == .notify {
                // runc: the init reports the listener fd with write(2) after installing the filter,
                // so a notified write would hang the container's start.
                if let j = call.names.firstIndex(of: "write") {
                    throw fail("\(at).names[\(j)]", "SCMP_ACT_NOTIFY cannot be used for the write system call")
                }
            }
            var comparisons: [scmp_arg_cmp] = []
            var perIndex = [Int](repeating: 0, count: 6)
            for (j, arg) in (call.args ?? []).enumerated() {
                guard arg.index < 6 else {
                    throw fail("\(at).args[\(j)].index", "\(arg.index) is out of range (system calls have 6 arguments, 0-5)")
                }
                guard let op = OperatorName(rawValue: arg.op) else {
                    throw fail("\(at).args[\(j)].op", "unknown operator \(quoted(arg.op))")
                }
                perIndex[Int(arg.index)] += 1
                comparisons.append(scmp_arg_cmp(arg: UInt32(arg.index), op: op.value, datum_a: arg.value, datum_b: arg.valueTwo ?? 0))
            }
            let action = name.value(errnoRet: call.errnoRet.map { UInt32($0) })
            if action == defaultAction { continue }  // libseccomp refuses rules that repeat the default
            if name == .notify { usesNotify = true }
            rules.append(Rule(index: i, names: call.names, action: action, args: comparisons, split: perIndex.contains { $0 > 1 }))
        }

        // Build the filter.
        guard let ctx = seccomp_init(defaultAction) else {
            throw fail("defaultAction", "libseccomp refused \(profile.defaultAction) (is it supported by this kernel?)")
        }
        defer { seccomp_release(ctx) }
        // The runtime sets no_new_privs itself (process.noNewPrivileges) and loads the filter itself.
        _ = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0)
        _ = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 0)
        // As runc: a binary tree of syscalls for long profiles (libseccomp <= 2.5.4 misbehaves
        // with it when there are no rules).
        if (profile.syscalls ?? []).count > 32 {
            _ = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2)
        }
        for (i, token) in arches.enumerated() {
            let rc = seccomp_arch_add(ctx, token)
            if rc < 0 && rc != -EEXIST {
                throw fail("architectures[\(i)]", "cannot add \(profile.architectures?[i] ?? "") to the filter: \(errnoText(-rc))")
            }
        }
        for rule in rules {
            for (j, syscallName) in rule.names.enumerated() {
                let number = seccomp_syscall_resolve_name(syscallName)
                if number == __NR_SCMP_ERROR { continue }  // unknown to this libseccomp: skip, as runc does
                let groups: [[scmp_arg_cmp]] = rule.split ? rule.args.map { [$0] } : [rule.args]
                for group in groups {
                    let rc = group.withUnsafeBufferPointer { buffer in
                        seccomp_rule_add_array(ctx, rule.action, number, UInt32(buffer.count), buffer.baseAddress)
                    }
                    if rc < 0 {
                        throw fail("syscalls[\(rule.index)].names[\(j)]", "cannot add a rule for \(quoted(syscallName)): \(errnoText(-rc))")
                    }
                }
            }
        }

        var filter = try export(ctx, field: field)
        if defaultName.failsUnknownCalls && !(defaultName == .errno && profile.defaultErrnoRet == UInt(ENOSYS)) {
            var filterArches = arches
            filterArches.append(seccomp_arch_native())
            filter = NewerSyscallStub.instructions(newest: NewerSyscallStub.newest(of: profile, arches: filterArches)) + filter
        }
        guard filter.count / 8 <= maxInstructions else {
            throw fail("", "the filter has \(filter.count / 8) instructions, more than the kernel's limit of \(maxInstructions)")
        }
        return SeccompProgram(filter: filter, flags: flags, usesNotify: usesNotify)
    }

    /// seccomp_export_bpf writes to an fd: a memfd, read back.
    static func export(_ ctx: scmp_filter_ctx, field: String) throws(SeccompError) -> [UInt8] {
        func fail(_ what: String, _ code: Int32) -> SeccompError {
            SeccompError(path: field, reason: "cannot export the filter: \(what): \(errnoText(code))")
        }
        let fd = veil_memfd_create("veil-seccomp", 1 /* MFD_CLOEXEC */)
        if fd < 0 { throw fail("memfd_create", -fd) }
        defer { close(fd) }
        let rc = seccomp_export_bpf(ctx, fd)
        if rc < 0 { throw fail("seccomp_export_bpf", -rc) }
        if lseek(fd, 0, SEEK_SET) < 0 { throw fail("lseek", errno) }
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16384)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw fail("read", errno)
            }
            if n == 0 { break }
            out.append(contentsOf: buffer[0..<n])
        }
        guard !out.isEmpty, out.count % 8 == 0 else {
            throw SeccompError(path: field, reason: "libseccomp exported \(out.count) bytes, not whole BPF instructions")
        }
        return out
    }
}

func errnoText(_ code: Int32) -> String {
    guard let p = strerror(code) else { return "errno \(code)" }
    return String(cString: p)
}
