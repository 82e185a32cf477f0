import NIOCore
import SwiftProtobuf
