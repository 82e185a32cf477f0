import VeilCgroups
import VeilSpec
import VeilSystemd

/// What `--systemd-cgroup` adds to a container's life: the scope unit systemd keeps it in.
struct ScopePlan {
    let path: SystemdCgroupsPath
    /// The scope's directory components below a hierarchy's root.
    let components: [String]
    /// Resources, then org.systemd.property annotations (so those win, as with runc).
    let properties: [UnitProperty]
    /// linux.resources for the file writes after systemd's, rounded where systemd rounds.
    let files: CgroupResources
    let layout: CgroupLayout
}

/// A scope whose StartTransientUnit was sent; its job not yet waited for.
struct PendingScope {
    let scope: SystemdScope
    let job: String
}

extension Runtime {
    /// Checked with the rest of config.json, before anything exists: systemd is there, the
    /// cgroupsPath names a scope, the resources and annotations translate.
    func planScope(_ spec: Spec, id: String, level: IsolationLevel) throws(ContainerError) -> ScopePlan {
        guard SystemdBus.isSystemdRunning else {
            throw .unsupported("--systemd-cgroup needs systemd as PID 1 (/run/systemd/system is missing): use the cgroupfs driver (no --systemd-cgroup)")
        }
        let layout: CgroupLayout
        do { layout = try CgroupLayout.detect() } catch { throw .cgroup(context: "finding the cgroup hierarchies", error) }
        do throws(SystemdError) {
            let path = try SystemdCgroupsPath.parse(spec.linux?.cgroupsPath, containerID: id)
            let translated = try PropertyTranslator(unified: layout.isUnifiedOnly).translate(CgroupResources(spec: spec))
            // A tenant writes the annotations of its pod: at the sandbox level only the harmless ones count.
            let restricted = level == .sandbox && !allowSystemdProperties
            let annotations = try SystemdAnnotations.properties(spec.annotations ?? [:], restricted: restricted)
            return ScopePlan(path: path, components: try path.components, properties: translated.properties + annotations,
                             files: translated.files, layout: layout)
        } catch {
            throw .invalidConfig(file: "config.json", field: "", reason: "\(error)")
        }
    }

    /// The scope's cgroup value; on v1 the hierarchies systemd does not manage are made now.
    func makeScopeCgroup(_ plan: ScopePlan, cleanup: inout Cleanup) throws(ContainerError) -> Cgroup {
        let unit = SystemdScopeRef(unit: plan.path.unit, slice: plan.path.slice)
        do {
            let cgroup = try Cgroup.systemdScope(components: plan.components, unit: unit, layout: plan.layout)
            cleanup.cgroup = cgroup
            return cgroup
        } catch { throw .cgroup(context: "creating the container's cgroup", error) }
    }

    /// Asks systemd to start the scope around stage 1 (which waits for `finishScope` before it
    /// goes on), without waiting for the job: create prepares the sandbox meanwhile.
    func beginScope(_ plan: ScopePlan, id: String, cleanup: inout Cleanup, pid: Int32) throws(ContainerError) -> PendingScope {
        let scope: SystemdScope
        do { scope = SystemdScope(unit: plan.path.unit, slice: plan.path.slice, manager: try SystemdBus()) } catch {
            throw .failed(context: "creating the systemd scope of \"\(id)\"", cause: error)
        }
        do {
            let job = try scope.beginStart(scope.baseProperties(id: id, pid: pid) + plan.properties)
            cleanup.scope = scope
            return PendingScope(scope: scope, job: job)
        } catch {
            // A unit of that name that is running is someone else's: never stopped on our way out.
            if case .call(_, _, let name, _) = error, name == "org.freedesktop.systemd1.UnitExists" {} else { cleanup.scope = scope }
            throw .failed(context: "creating the systemd scope of \"\(id)\"", cause: error)
        }
    }

    /// Once systemd has moved stage 1 into the scope: the files systemd does not manage are
    /// written and, for a sandbox that starts its own warden, the warden's cgroup is made (its
    /// directory could not exist before the scope's).
    func finishScope(_ pending: PendingScope, _ plan: ScopePlan, id: String, cgroup: Cgroup, wardenCgroup: Bool) throws(ContainerError) {
        do { try pending.scope.finishStart(job: pending.job) } catch {
            throw .failed(context: "creating the systemd scope of \"\(id)\"", cause: error)
        }
        log.debug("create \(id): systemd started \(plan.path.unit) in \(plan.path.slice)")
        if case .unified(let hierarchy) = plan.layout { cgroup.enableControllersForScope(mountpoint: hierarchy.mountpoint) }
        if cgroup.isFrozenByAnyone() {
            throw .invalidConfig(file: "config.json", field: "linux.cgroupsPath", reason: "container's cgroup unexpectedly frozen (thaw it first)")
        }
        do {
            try cgroup.apply(plan.files)
            if wardenCgroup { _ = try cgroup.makeSupervisorCgroups() }
        } catch {
            throw .resources(error, file: "config.json", field: "linux.resources", context: "applying linux.resources")
        }
    }

    /// `update`: after the files (which check memory usage first), the unit's properties, so a
    /// daemon-reload keeps what `update` set.
    func updateScope(_ cgroup: Cgroup, id: String, resources: CgroupResources) throws(ContainerError) {
        guard let unit = cgroup.systemd else { return }
        do throws(SystemdError) {
            let properties = try PropertyTranslator(unified: cgroup.unifiedOnly).translate(resources).properties
            try SystemdScope(unit: unit.unit, slice: unit.slice, manager: try SystemdBus()).set(properties)
        } catch {
            throw .failed(context: "updating the systemd scope of \"\(id)\"", cause: error)
        }
    }

    /// `delete`: the unit stopped and forgotten before veil removes what it made.
    func stopScope(_ cgroup: Cgroup, id: String) {
        guard let unit = cgroup.systemd else { return }
        do { try SystemdScope(unit: unit.unit, slice: unit.slice, manager: try SystemdBus()).stop() } catch {
            log.warning("delete \(id): stopping \(unit.unit): \(error)")
        }
    }
}
