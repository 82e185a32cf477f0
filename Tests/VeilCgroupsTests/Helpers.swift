import FoundationEssentials
import Glibc
import Testing
@testable import VeilCgroups

struct TestFailure: Error, CustomStringConvertible {
    let description: String
}

func readFile(_ path: String) throws -> String {
    try SysFS.readTrimmed(path)
}

/// A scratch directory standing in for a cgroup2 directory: `files` name -> initial content.
func makeFakeCgroupDir(_ files: [String: String]) throws -> String {
    var template = Array("/tmp/veil-fake-cg-XXXXXX".utf8CString)
    guard let made = mkdtemp(&template) else { throw TestFailure(description: "mkdtemp: errno \(errno)") }
    let dir = String(cString: made)
    for (name, content) in files {
        let fd = open(dir + "/" + name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw TestFailure(description: "create \(name): errno \(errno)") }
        _ = content.withCString { Glibc.write(fd, $0, strlen($0)) }
        close(fd)
    }
    return dir
}

func removeFakeDir(_ dir: String) {
    precondition(dir.hasPrefix("/tmp/veil-fake-cg-"))
    if let names = try? SysFS.files(dir) {
        for n in names { unlink(dir + "/" + n) }
    }
    rmdir(dir)
}
