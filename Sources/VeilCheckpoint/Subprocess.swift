import VeilLinux

/// The tools a checkpoint reading needs (tar), with their output captured.
enum Subprocess {
    static func run(_ argv: [String]) throws(CheckpointError) -> (status: Int32, output: String) {
        do { return try Spawner.capture(argv) } catch {
            throw .io(argv.first ?? "", operation: "running", errno: error.errno)
        }
    }

    /// Runs `argv` and fails with its output unless it exits 0.
    @discardableResult
    static func check(_ argv: [String]) throws(CheckpointError) -> String {
        let (status, output) = try run(argv)
        guard status == 0 else { throw .tool(argv.joined(separator: " "), status: status, output: output) }
        return output
    }
}
