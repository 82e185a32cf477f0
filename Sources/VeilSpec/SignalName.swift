/// Linux signal names and numbers (x86_64 / generic numbering), as accepted by `runc kill`.
public enum SignalName {
    /// glibc's SIGRTMIN: the kernel's 32 and 33 are reserved for the threading library.
    public static let rtMin: Int32 = 34
    public static let rtMax: Int32 = 64

    /// Standard signals, without the "SIG" prefix; the first name per number is canonical.
    private static let table: [(String, Int32)] = [
        ("HUP", 1), ("INT", 2), ("QUIT", 3), ("ILL", 4), ("TRAP", 5), ("ABRT", 6), ("IOT", 6),
        ("BUS", 7), ("FPE", 8), ("KILL", 9), ("USR1", 10), ("SEGV", 11), ("USR2", 12),
        ("PIPE", 13), ("ALRM", 14), ("TERM", 15), ("STKFLT", 16), ("CHLD", 17), ("CLD", 17),
        ("CONT", 18), ("STOP", 19), ("TSTP", 20), ("TTIN", 21), ("TTOU", 22), ("URG", 23),
        ("XCPU", 24), ("XFSZ", 25), ("VTALRM", 26), ("PROF", 27), ("WINCH", 28), ("IO", 29),
        ("POLL", 29), ("PWR", 30), ("SYS", 31), ("UNUSED", 31),
    ]

    /// Parses "9", "KILL", "SIGKILL", "sigterm", "RTMIN", "SIGRTMIN+3", "RTMAX-1".
    /// Numbers 0 (existence probe) through 64 are accepted; anything else is nil.
    public static func parse(_ s: String) -> Int32? {
        if let n = Int32(s) { return (0...rtMax).contains(n) ? n : nil }
        var name = s.uppercased()
        if name.hasPrefix("SIG") { name.removeFirst(3) }
        if let hit = table.first(where: { $0.0 == name }) { return hit.1 }
        return parseRealtime(name)
    }

    private static func parseRealtime(_ name: String) -> Int32? {
        let base: Int32
        let rest: Substring
        if name.hasPrefix("RTMIN") {
            base = rtMin
            rest = name.dropFirst(5)
        } else if name.hasPrefix("RTMAX") {
            base = rtMax
            rest = name.dropFirst(5)
        } else {
            return nil
        }
        if rest.isEmpty { return base }
        guard let sign = rest.first, sign == "+" || sign == "-",
            let offset = Int32(rest.dropFirst()), offset >= 0, !rest.dropFirst().hasPrefix("+")
        else { return nil }
        let n = sign == "+" ? base + offset : base - offset
        return (rtMin...rtMax).contains(n) ? n : nil
    }

    /// "SIGKILL" for 9; real-time signals as "SIGRTMIN", "SIGRTMIN+n", "SIGRTMAX".
    public static func name(_ n: Int32) -> String? {
        if let hit = table.first(where: { $0.1 == n }) { return "SIG" + hit.0 }
        if n == rtMax { return "SIGRTMAX" }
        if n == rtMin { return "SIGRTMIN" }
        if n > rtMin && n < rtMax { return "SIGRTMIN+\(n - rtMin)" }
        return nil
    }
}
