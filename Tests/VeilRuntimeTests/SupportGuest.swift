import Testing

/// The verdict of a qemu guest's run (tests/vm): its checks print "ok …", "not ok …: reason" and
/// "ok … # SKIP reason" lines and a final "VEIL-GUEST-RESULT: PASS|FAIL" line. One issue per failed
/// check, so the report names them even when the log is long; a PASS must rest on at least one ok.
func expectGuestPassed(_ result: CommandResult, label: String) {
    let lines = result.stdout.split(separator: "\n").map(String.init)
    for line in lines where line.hasPrefix("not ok ") {
        Issue.record("guest check failed (\(label)): \(line.dropFirst("not ok ".count))")
    }
    let marker = lines.last { $0.hasPrefix("VEIL-GUEST-RESULT: ") }
    let passed = marker?.hasPrefix("VEIL-GUEST-RESULT: PASS") == true
    #expect(passed && result.succeeded, "guest result (\(label)): \(marker ?? "none")\n\(result)")
    if passed {
        let checks = lines.filter { $0.hasPrefix("ok ") && !$0.contains(" # SKIP ") }.count
        #expect(checks > 0, "PASS without a single ok line (\(label))\n\(result)")
    }
}
