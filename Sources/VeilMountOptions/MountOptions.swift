/// Linux mount(2) flag values (include/uapi/linux/mount.h). Defined here so this module
/// stays pure and free of libc imports; they are ABI constants.
public enum MountFlag {
    public static let rdonly: UInt = 0x1
    public static let nosuid: UInt = 0x2
    public static let nodev: UInt = 0x4
    public static let noexec: UInt = 0x8
    public static let synchronous: UInt = 0x10
    public static let remount: UInt = 0x20
    public static let mandlock: UInt = 0x40
    public static let dirsync: UInt = 0x80
    public static let nosymfollow: UInt = 0x100
    public static let noatime: UInt = 0x400
    public static let nodiratime: UInt = 0x800
    public static let bind: UInt = 0x1000
    public static let move: UInt = 0x2000
    public static let rec: UInt = 0x4000
    public static let silent: UInt = 0x8000
    public static let posixacl: UInt = 1 << 16
    public static let unbindable: UInt = 1 << 17
    public static let `private`: UInt = 1 << 18
    public static let slave: UInt = 1 << 19
    public static let shared: UInt = 1 << 20
    public static let relatime: UInt = 1 << 21
    public static let iversion: UInt = 1 << 23
    public static let strictatime: UInt = 1 << 24
    public static let lazytime: UInt = 1 << 25
}

/// mount_setattr(2) attribute bits (include/uapi/linux/mount.h), for the recursive options.
public enum MountAttribute {
    public static let rdonly: UInt64 = 0x1
    public static let nosuid: UInt64 = 0x2
    public static let nodev: UInt64 = 0x4
    public static let noexec: UInt64 = 0x8
    /// The atime mode field: relatime is 0 within it.
    public static let atimeMask: UInt64 = 0x70
    public static let noatime: UInt64 = 0x10
    public static let strictatime: UInt64 = 0x20
    public static let nodiratime: UInt64 = 0x80
    public static let nosymfollow: UInt64 = 0x0020_0000
}

/// What the recursive options ("rro", "rnosuid", ...) ask of mount_setattr(AT_RECURSIVE):
/// attribute bits to set and to clear on the mount and every mount under it.
public struct RecursiveAttributes: Sendable, Equatable {
    public var set: UInt64 = 0
    public var clear: UInt64 = 0
    public init() {}
}

/// A mount's `options` split the way runc splits them: mount(2) flags, propagation
/// changes (applied by separate mount calls), runtime extensions, and the remaining
/// filesystem-specific data.
public struct MountOptions: Sendable, Equatable {
    /// Flags to pass to mount(2).
    public var flags: UInt = 0
    /// Flags an option explicitly turned off ("rw", "suid", ...); a bind remount needs
    /// this to tell "not asked for" from "asked to clear".
    public var clearedFlags: UInt = 0
    /// Propagation changes in order, each one of MS_SHARED/SLAVE/PRIVATE/UNBINDABLE,
    /// possibly or-ed with MS_REC.
    public var propagation: [UInt] = []
    /// Unrecognised options, in order; join with "," for mount(2)'s data argument.
    public var data: [String] = []
    /// Options the runtime handles itself rather than the kernel (e.g. "tmpcopyup",
    /// "idmap", recursive attributes like "rro"); never passed to mount(2).
    public var extensions: Set<String> = []

    /// The recursive options, applied after the mount; nil when there is none.
    public var recursive: RecursiveAttributes?

    public init() {}

    public var isBind: Bool { flags & MountFlag.bind != 0 }
    public var isRecursiveBind: Bool { isBind && flags & MountFlag.rec != 0 }
    /// `data` joined as mount(2) expects.
    public var dataString: String { data.joined(separator: ",") }

    /// (clear?, flag) per option, as in runc's mount option table.
    private static let flagTable: [String: (clear: Bool, flag: UInt)] = [
        "acl": (false, MountFlag.posixacl),
        "async": (true, MountFlag.synchronous),
        "atime": (true, MountFlag.noatime),
        "bind": (false, MountFlag.bind),
        "defaults": (false, 0),
        "dev": (true, MountFlag.nodev),
        "diratime": (true, MountFlag.nodiratime),
        "dirsync": (false, MountFlag.dirsync),
        "exec": (true, MountFlag.noexec),
        "iversion": (false, MountFlag.iversion),
        "lazytime": (false, MountFlag.lazytime),
        "loud": (true, MountFlag.silent),
        "mand": (false, MountFlag.mandlock),
        "noacl": (true, MountFlag.posixacl),
        "noatime": (false, MountFlag.noatime),
        "nodev": (false, MountFlag.nodev),
        "nodiratime": (false, MountFlag.nodiratime),
        "noexec": (false, MountFlag.noexec),
        "noiversion": (true, MountFlag.iversion),
        "nolazytime": (true, MountFlag.lazytime),
        "nomand": (true, MountFlag.mandlock),
        "norelatime": (true, MountFlag.relatime),
        "nostrictatime": (true, MountFlag.strictatime),
        "nosuid": (false, MountFlag.nosuid),
        "nosymfollow": (false, MountFlag.nosymfollow),
        "rbind": (false, MountFlag.bind | MountFlag.rec),
        "relatime": (false, MountFlag.relatime),
        "remount": (false, MountFlag.remount),
        "ro": (false, MountFlag.rdonly),
        "rw": (true, MountFlag.rdonly),
        "silent": (false, MountFlag.silent),
        "strictatime": (false, MountFlag.strictatime),
        "suid": (true, MountFlag.nosuid),
        "symfollow": (true, MountFlag.nosymfollow),
        "sync": (false, MountFlag.synchronous),
    ]

    private static let propagationTable: [String: UInt] = [
        "private": MountFlag.private,
        "rprivate": MountFlag.private | MountFlag.rec,
        "shared": MountFlag.shared,
        "rshared": MountFlag.shared | MountFlag.rec,
        "slave": MountFlag.slave,
        "rslave": MountFlag.slave | MountFlag.rec,
        "unbindable": MountFlag.unbindable,
        "runbindable": MountFlag.unbindable | MountFlag.rec,
    ]

    /// Options runc consumes itself: tmpfs copy-up, ID-mapped mounts and
    /// mount_setattr(2) recursive attributes.
    private static let extensionNames: Set<String> = [
        "tmpcopyup", "idmap", "ridmap",
        "rro", "rrw", "rnosuid", "rsuid", "rnodev", "rdev", "rnoexec", "rexec",
        "rnodiratime", "rdiratime", "rrelatime", "rnorelatime", "rnoatime", "ratime",
        "rstrictatime", "rnostrictatime", "rnosymfollow", "rsymfollow",
    ]

    /// (clear?, attribute) per recursive option, as in runc's table; the atime options set a
    /// mode within MountAttribute.atimeMask (clearing the field first).
    private static let recursiveTable: [String: (clear: Bool, attribute: UInt64)] = [
        "rro": (false, MountAttribute.rdonly), "rrw": (true, MountAttribute.rdonly),
        "rnosuid": (false, MountAttribute.nosuid), "rsuid": (true, MountAttribute.nosuid),
        "rnodev": (false, MountAttribute.nodev), "rdev": (true, MountAttribute.nodev),
        "rnoexec": (false, MountAttribute.noexec), "rexec": (true, MountAttribute.noexec),
        "rnodiratime": (false, MountAttribute.nodiratime), "rdiratime": (true, MountAttribute.nodiratime),
        "rnosymfollow": (false, MountAttribute.nosymfollow), "rsymfollow": (true, MountAttribute.nosymfollow),
    ]
    private static let recursiveAtime: [String: UInt64] = [
        "rrelatime": 0, "rnoatime": MountAttribute.noatime, "rstrictatime": MountAttribute.strictatime,
    ]
    /// Turn an atime mode off: back to the kernel's default, relatime.
    private static let recursiveAtimeOff: Set<String> = ["ratime", "rnorelatime", "rnostrictatime"]

    private mutating func addRecursive(_ option: String) {
        var attributes = recursive ?? RecursiveAttributes()
        if let entry = Self.recursiveTable[option] {
            if entry.clear {
                attributes.set &= ~entry.attribute
                attributes.clear |= entry.attribute
            } else {
                attributes.set |= entry.attribute
                attributes.clear &= ~entry.attribute
            }
        } else if let mode = Self.recursiveAtime[option] {
            attributes.set = (attributes.set & ~MountAttribute.atimeMask) | mode
            attributes.clear |= MountAttribute.atimeMask
        } else if Self.recursiveAtimeOff.contains(option) {
            attributes.set &= ~MountAttribute.atimeMask
            attributes.clear |= MountAttribute.atimeMask
        } else {
            return
        }
        recursive = attributes
    }

    /// Classifies options left to right, so later options win ("ro,rw" is read-write).
    public static func parse(_ options: [String]) -> MountOptions {
        var result = MountOptions()
        for option in options {
            if let entry = flagTable[option] {
                if entry.clear {
                    result.flags &= ~entry.flag
                    result.clearedFlags |= entry.flag
                } else {
                    result.flags |= entry.flag
                    result.clearedFlags &= ~entry.flag
                }
            } else if let p = propagationTable[option] {
                result.propagation.append(p)
            } else if extensionNames.contains(option) || option.hasPrefix("idmap=") || option.hasPrefix("ridmap=") {
                result.extensions.insert(option)
                result.addRecursive(option)
            } else if !option.isEmpty {
                result.data.append(option)
            }
        }
        return result
    }

    /// Flags for a `linux.rootfsPropagation` value ("shared", "rslave", ...), or nil if unknown.
    public static func propagationFlags(_ name: String) -> UInt? {
        propagationTable[name]
    }
}
