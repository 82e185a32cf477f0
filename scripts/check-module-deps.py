#!/usr/bin/env python3
"""Package.swift's declared target dependencies must equal what each target's sources import.

Reads `swift package dump-package` (or a JSON file given as the only argument), collects every
`import Module` of the package's own targets from each target's sources, and prints each target
whose declared local dependencies differ from its imports. Exit status 1 when any differs."""
import json, os, re, subprocess, sys

def main():
    if len(sys.argv) > 1:
        package = json.load(open(sys.argv[1]))
    else:
        package = json.loads(subprocess.run(["swift", "package", "dump-package"], check=True,
                                            capture_output=True, text=True).stdout)
    targets = {t["name"]: t for t in package["targets"]}
    importer = re.compile(r"^\s*(?:@\w+\s+)*(?:(?:public|internal|package|private|fileprivate)\s+)?import\s+(?:(?:struct|enum|class|func|var|typealias|protocol)\s+)?(\w+)", re.M)
    failures = 0
    for name, target in sorted(targets.items()):
        if target["type"] == "system":
            continue
        default = "Tests" if target["type"] == "test" else "Sources"
        root = target.get("path") or os.path.join(default, name)
        imports = set()
        for directory, _, files in os.walk(root):
            for file in files:
                if file.endswith(".swift"):
                    imports |= set(importer.findall(open(os.path.join(directory, file), encoding="utf-8").read()))
        used = {module for module in imports if module in targets} - {name}
        declared = set()
        for dependency in target["dependencies"]:
            for kind in ("byName", "target"):
                if kind in dependency and dependency[kind][0] in targets:
                    declared.add(dependency[kind][0])
        # C targets' headers are included, not imported; a C target declares what it includes.
        if not any(f.endswith(".swift") for _, _, fs in os.walk(root) for f in fs):
            continue
        if used != declared:
            failures += 1
            missing = ", ".join(sorted(used - declared)) or "-"
            unused = ", ".join(sorted(declared - used)) or "-"
            print(f"{name}: imported but not declared: {missing}; declared but not imported: {unused}")
    if failures:
        print(f"{failures} target(s) whose Package.swift dependencies differ from their imports")
        return 1
    print(f"Package.swift: every target's dependencies equal its imports ({len(targets)} targets)")
    return 0

if __name__ == "__main__":
    sys.exit(main())
