import Glibc

/// CLOCK_BOOTTIME: what a sandbox's uptime and boot time are measured on.
public enum BootClock {
    /// Nanoseconds since the host booted, suspend included.
    public static func now() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_BOOTTIME, &now)
        return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
    }
}
