import Foundation
import VeilShim

// containerd's runtime v2 shim for veil (runtime type io.containerd.veil.v1); see VeilShim.ShimMain.
exit(await ShimMain.main(CommandLine.arguments))
