import ArgumentParser
import FoundationEssentials
import Glibc
import VeilSandbox
import VeilSpec

struct SandboxCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sandbox", abstract: "Inspect the sandbox isolation level.", subcommands: [SandboxPolicyCommand.self])
}

struct SandboxPolicyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "policy",
        abstract: "Print every system call a sandboxed workload can make and what happens to it.",
        discussion: """
            direct: goes to the host kernel (with its argument filter, when one is shown); \
            emulated: answered by the warden, never reaching the host kernel; \
            refused: fails with the errno shown. Anything not listed fails with ENOSYS.
            """)
    @Option(help: "Output format: table, json, or oci (the policy as an OCI linux.seccomp profile, emulated calls allowed, for another runtime).") var format: String = "table"

    func validate() throws {
        guard ["table", "json", "oci"].contains(format) else { throw ValidationError("--format must be table, json or oci, not \(format)") }
    }

    func run() throws {
        switch format {
        case "json": writeOut(Self.json())
        case "oci": writeOut(Self.oci())
        default: writeOut(Self.table())
        }
    }

    /// The same filter for a runtime without a warden: what veil emulates is allowed instead.
    static func oci() -> String {
        var profile = SandboxPolicy.profile
        profile.flags = nil  // runc 1.1 refuses flags; absent, it sets SPEC_ALLOW as veil does
        profile.syscalls = profile.syscalls?.map { call in
            var call = call
            if call.action == "SCMP_ACT_NOTIFY" { call.action = "SCMP_ACT_ALLOW" }
            return call
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        guard let data = try? encoder.encode(profile) else { return "{}\n" }
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    static func describe(_ treatment: SyscallTreatment) -> (String, String) {
        switch treatment {
        case .direct: return ("direct", "")
        case .emulated: return ("emulated", "")
        case .observed: return ("observed", "")
        case .refused(let code): return ("refused", errnoName(code))
        }
    }

    static func filter(_ entry: PolicyEntry) -> String {
        entry.args.map { arg in
            let op = arg.op.hasPrefix("SCMP_CMP_") ? String(arg.op.dropFirst("SCMP_CMP_".count)) : arg.op
            switch op {
            case "MASKED_EQ":
                let (mask, value) = (arg.value, arg.valueTwo ?? 0)
                // A mask of all high bits is a range of values: print it as one.
                let low = ~mask
                if low != 0 && low & (low &+ 1) == 0 { return "arg\(arg.index) in \(value)-\(value | low)" }
                if mask == 0xffff_ffff { return "(u32)arg\(arg.index) == 0x\(String(value, radix: 16))" }
                return "arg\(arg.index) & 0x\(String(mask, radix: 16)) == 0x\(String(value, radix: 16))"
            case "EQ": return "arg\(arg.index) == \(arg.value)"
            case "NE": return "arg\(arg.index) != \(arg.value)"
            case "LT": return "arg\(arg.index) < 0x\(String(arg.value, radix: 16))"
            case "GT": return "arg\(arg.index) > 0x\(String(arg.value, radix: 16))"
            default: return "arg\(arg.index) \(op) \(arg.value)"
            }
        }.joined(separator: " && ")
    }

    static func table() -> String {
        var lines = ["SYSCALL                  TREATMENT  ERRNO            FILTER / NOTE"]
        for entry in SandboxPolicy.entries {
            let (kind, code) = describe(entry.treatment)
            let detail = [filter(entry), entry.note].filter { !$0.isEmpty }.joined(separator: "  # ")
            lines.append(pad(entry.name, 25) + pad(kind, 11) + pad(code, 17) + detail)
        }
        lines.append(pad("(anything else)", 25) + pad("refused", 11) + pad(errnoName(SandboxPolicy.defaultErrno), 17) + "deny by default")
        let summary = SandboxPolicy.summary
        lines.append("")
        lines.append("\(summary.direct) system calls reach the host kernel directly, \(summary.filtered) of them only through an argument filter, \(summary.observed) after the warden has seen them")
        lines.append("\(summary.emulated) are emulated by the warden")
        lines.append("\(summary.refused) are refused whatever their arguments; any other call fails with \(errnoName(SandboxPolicy.defaultErrno))")
        return lines.joined(separator: "\n") + "\n"
    }

    static func json() -> String {
        let rows = SandboxPolicy.entries.map { entry -> String in
            let (kind, code) = describe(entry.treatment)
            var fields = ["\"syscall\":\(quoted(entry.name))", "\"treatment\":\(quoted(kind))"]
            if !code.isEmpty { fields.append("\"errno\":\(quoted(code))") }
            if !entry.args.isEmpty { fields.append("\"filter\":\(quoted(filter(entry)))") }
            if !entry.note.isEmpty { fields.append("\"note\":\(quoted(entry.note))") }
            return "{" + fields.joined(separator: ",") + "}"
        }
        let summary = SandboxPolicy.summary
        let counts = "\"summary\":{\"direct\":\(summary.direct),\"filtered\":\(summary.filtered),\"observed\":\(summary.observed),\"emulated\":\(summary.emulated),\"refused\":\(summary.refused)}"
        return "{\"defaultErrno\":\(quoted(errnoName(SandboxPolicy.defaultErrno))),\(counts),\"syscalls\":[\n" + rows.joined(separator: ",\n") + "\n]}\n"
    }

    static func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text + " " : text + String(repeating: " ", count: width - text.count)
    }

    static func errnoName(_ code: Int32) -> String {
        let names: [Int32: String] = [EPERM: "EPERM", EACCES: "EACCES", ENOSYS: "ENOSYS", ENODEV: "ENODEV", EOPNOTSUPP: "EOPNOTSUPP",
                                      EPROTONOSUPPORT: "EPROTONOSUPPORT", EAFNOSUPPORT: "EAFNOSUPPORT", EINVAL: "EINVAL",
                                      ESOCKTNOSUPPORT: "ESOCKTNOSUPPORT", ENOPROTOOPT: "ENOPROTOOPT"]
        return names[code] ?? "errno \(code)"
    }
}
