import Glibc
import TOMLKit
import VeilLinux

/// Where a container runtime keeps its data: persistent (images, snapshots) and volatile (sockets, state).
public struct RuntimeStorage: Equatable, Sendable {
    public var root: String
    public var state: String
}

/// containerd's config.toml: registers veil? and where its storage is.
public enum DoctorContainerd {
    public static let defaultRoot = "/var/lib/containerd"
    public static let defaultState = "/run/containerd"

    public struct Inspection: Equatable {
        public var check: DoctorCheck
        /// nil when containerd is not installed.
        public var storage: RuntimeStorage?
        /// The runtime names registered with veil's runtime type.
        public var veilRuntimes: [String] = []
    }

    static func inspect(configPath: String, installed: Bool) -> Inspection {
        let text: String?
        if FS.exists(configPath) {
            guard let read = DoctorFiles.read(configPath) else {
                return Inspection(check: DoctorCheck("containerd.config", .fail, "\(configPath) exists but cannot be read",
                                                     fix: "check the file's permissions (run veil doctor as root)"),
                                  storage: RuntimeStorage(root: defaultRoot, state: defaultState))
            }
            text = read
        } else {
            text = nil
        }
        return evaluate(configPath: configPath, text: text, installed: installed)
    }

    /// `text` is the config file's contents, nil when there is no file.
    public static func evaluate(configPath: String, text: String?, installed: Bool) -> Inspection {
        let name = "containerd.config"
        let install = "veil install --containerd" + (configPath == InstallOptions.defaultContainerdConfig ? "" : " --config \(configPath)")
        guard let text else {
            guard installed else {
                return Inspection(check: DoctorCheck(name, .pass, "containerd is not installed (no \(configPath), no containerd on PATH): nothing to check"), storage: nil)
            }
            return Inspection(check: DoctorCheck(name, .warn, "\(configPath) does not exist: containerd runs on its built-in defaults, which know only runc",
                                                 fix: install),
                              storage: RuntimeStorage(root: defaultRoot, state: defaultState))
        }
        let root: TOMLTable
        let version: Int
        do {
            root = try TOMLDoc.parse(text, file: configPath)
            version = try ContainerdConfig.version(of: root, file: configPath) ?? 2
        } catch {
            return Inspection(check: DoctorCheck(name, .fail, "\(error): containerd cannot load this file", fix: "correct \(configPath), then \(install)"),
                              storage: RuntimeStorage(root: defaultRoot, state: defaultState))
        }
        let storage = RuntimeStorage(root: root["root"]?.string ?? defaultRoot, state: root["state"]?.string ?? defaultState)
        let path = ContainerdConfig.runtimesPath(version: version)
        let dotted = TOMLDoc.dotted(path)
        let runtimes: TOMLTable?
        do { runtimes = try TOMLDoc.table(at: path, in: root, file: configPath) } catch {
            return Inspection(check: DoctorCheck(name, .fail, "\(error)", fix: "correct \(configPath), then \(install)"), storage: storage)
        }
        var veil: [String] = []
        var wrongType: [String] = []
        for key in (runtimes?.keys ?? []).sorted() {
            guard let table = runtimes?[key]?.table else { continue }
            let type = table["runtime_type"]?.string
            if type == ContainerdConfig.runtimeType {
                veil.append(key)
            } else if key == "veil" {
                wrongType.append("\(key) has runtime_type \(type.map { "\"\($0)\"" } ?? "unset")")
            }
        }
        let versionText = "config version \(version)" + (version == 1 ? " (containerd 1.x's old format)" : version == 2 ? " (containerd 1.6/1.7)" : " (containerd 2.x)")
        if !veil.isEmpty {
            let names = veil.map { "\"\($0)\"" }.joined(separator: ", ")
            return Inspection(check: DoctorCheck(name, .pass, "\(configPath): \(versionText); runtime \(names) has runtime_type \(ContainerdConfig.runtimeType) (RuntimeClass handler \(veil[0]))"),
                              storage: storage, veilRuntimes: veil)
        }
        let why = wrongType.isEmpty ? "no runtime under [\(dotted)] has runtime_type \(ContainerdConfig.runtimeType)" : wrongType.joined(separator: "; ") + ", not \(ContainerdConfig.runtimeType)"
        return Inspection(check: DoctorCheck(name, .warn, "\(configPath): \(versionText); \(why)", fix: wrongType.isEmpty ? install : "set runtime_type = \"\(ContainerdConfig.runtimeType)\" in [\(dotted).veil]"),
                          storage: storage)
    }
}

/// CRI-O: a drop-in whose runtime points at an existing veil; and where its storage is.
public enum DoctorCRIO {
    public static let defaultGraphroot = "/var/lib/containers/storage"
    public static let defaultRunroot = "/run/containers/storage"

    public struct Inspection: Equatable {
        public var check: DoctorCheck
        /// nil when CRI-O is not installed.
        public var storage: RuntimeStorage?
        /// Every runtime handler the files define.
        public var handlers: [Handler] = []
    }

    /// A CRI-O runtime handler as read from a config file.
    public struct Handler: Equatable {
        public var name: String
        public var file: String
        public var runtimePath: String?
    }

    static func inspect(options: DoctorOptions, installed: Bool) -> Inspection {
        guard installed else {
            return Inspection(check: DoctorCheck("crio.config", .pass, "CRI-O is not installed (no \(options.crioConfig), no \(options.crioDirectory), no crio on PATH): nothing to check"),
                              storage: nil)
        }
        // crio.conf first, then the drop-ins in name order: later files win, as in CRI-O.
        var files: [(path: String, text: String)] = []
        if let text = DoctorFiles.read(options.crioConfig) { files.append((options.crioConfig, text)) }
        for entry in FS.listDirectory(options.crioDirectory).sorted() where entry.hasSuffix(".conf") {
            let path = options.crioDirectory + "/" + entry
            if let text = DoctorFiles.read(path) { files.append((path, text)) }
        }
        let storageConf = DoctorFiles.read(options.containersStorageConfig)
        return evaluate(files: files, directory: options.crioDirectory, storageConf: storageConf, isExecutable: { access($0, X_OK) == 0 && !FS.isDirectory($0) })
    }

    /// `files` are crio.conf and its drop-ins in the order CRI-O reads them.
    public static func evaluate(files: [(path: String, text: String)], directory: String, storageConf: String?,
                                isExecutable: (String) -> Bool) -> Inspection {
        var handlers: [String: Handler] = [:]
        var graphroot: String?, runroot: String?
        var errors: [String] = []
        // [crio.runtime] drop_infra_ctr, merged as CRI-O merges (absent: its default, true).
        var dropInfra: (value: Bool, file: String)?
        // containers-storage's defaults come first; crio.conf's root/runroot override them.
        if let storageConf, let table = try? TOMLDoc.parse(storageConf, file: "storage.conf"), let storage = table["storage"]?.table {
            graphroot = storage["graphroot"]?.string
            runroot = storage["runroot"]?.string
        }
        for (path, text) in files {
            let root: TOMLTable
            do { root = try TOMLDoc.parse(text, file: path) } catch {
                errors.append("\(error)")
                continue
            }
            if let crio = root["crio"]?.table {
                if let r = crio["root"]?.string { graphroot = r }
                if let r = crio["runroot"]?.string { runroot = r }
                if let drop = crio["runtime"]?.table?[CRIODropIn.infraKey]?.bool { dropInfra = (drop, path) }
            }
            guard let runtimes = root["crio"]?.table?["runtime"]?.table?["runtimes"]?.table else { continue }
            for key in runtimes.keys {
                guard let table = runtimes[key]?.table else { continue }
                var handler = handlers[key] ?? Handler(name: key, file: path)
                handler.file = path
                if let p = table["runtime_path"]?.string { handler.runtimePath = p }
                handlers[key] = handler
            }
        }
        let storage = RuntimeStorage(root: graphroot ?? defaultGraphroot, state: runroot ?? defaultRunroot)
        var inspection = inspect(handlers: handlers, errors: errors, directory: directory, storage: storage, isExecutable: isExecutable)
        if inspection.check.status == .pass, handlers.values.contains(where: { $0.name == "veil" }), dropInfra?.value != false {
            let said = dropInfra.map { "\($0.file) sets \(CRIODropIn.infraKey) = true" } ?? "\(CRIODropIn.infraKey) is not set (CRI-O's default drops it)"
            inspection.check = DoctorCheck("crio.config", .fail,
                                           inspection.check.detail + "; but \(said): CRI-O then never creates a pod's infra container, which the sandbox level needs to hold the pod's namespaces (its containers are refused)",
                                           fix: "veil install --crio (its drop-in sets \(CRIODropIn.infraKey) = false), and no later drop-in setting it back")
        }
        inspection.handlers = handlers.values.sorted { $0.name < $1.name }
        return inspection
    }

    static func inspect(handlers: [String: Handler], errors: [String], directory: String, storage: RuntimeStorage,
                        isExecutable: (String) -> Bool) -> Inspection {
        let name = "crio.config"
        if !errors.isEmpty {
            return Inspection(check: DoctorCheck(name, .fail, errors.joined(separator: "; ") + ": CRI-O cannot load it", fix: "correct the file, then veil install --crio"),
                              storage: storage)
        }
        // Handlers whose binary is veil, by name or path.
        let veil = handlers.values.filter { $0.name == "veil" || ($0.runtimePath.map { ["veil", InstallOptions.nativeBinaryName].contains(Paths.base($0)) } ?? false) }
            .sorted { $0.name < $1.name }
        guard !veil.isEmpty else {
            return Inspection(check: DoctorCheck(name, .warn, "no CRI-O runtime handler runs veil (no drop-in \(directory)/\(CRIODropIn.fileName))",
                                                 fix: "veil install --crio" + (directory == "/etc/crio/crio.conf.d" ? "" : " --crio-dir \(directory)")),
                              storage: storage)
        }
        // Every handler's binary must be there (veil and the veil-native link): CRI-O refuses to start otherwise.
        for handler in veil {
            guard let runtimePath = handler.runtimePath else {
                return Inspection(check: DoctorCheck(name, .fail, "\(handler.file): handler \"\(handler.name)\" has no runtime_path (CRI-O would look for \"\(handler.name)\" on its PATH)",
                                                     fix: "veil install --crio (writes runtime_path)"),
                                  storage: storage)
            }
            guard isExecutable(runtimePath) else {
                return Inspection(check: DoctorCheck(name, .fail, "\(handler.file): handler \"\(handler.name)\" runs \(runtimePath), which is not an executable file: CRI-O refuses to start",
                                                     fix: "veil install --crio (puts veil and the veil-native link in place), or correct runtime_path"),
                                  storage: storage)
            }
        }
        let runs = veil.map { "handler \"\($0.name)\" runs \($0.runtimePath ?? "")" }.joined(separator: ", ")
        return Inspection(check: DoctorCheck(name, .pass, "\(veil[0].file): \(runs)"), storage: storage)
    }
}
