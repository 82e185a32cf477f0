#!/usr/bin/env bash
# Regenerates the Swift code for protos/ (see protos/README.md):
#   protos/ (containerd, cgroups)  -> Sources/VeilShimProtocol/*.pb.swift
#   protos/ttrpc, protos/google/rpc -> Sources/TTRPC/Generated/*.pb.swift
#   protos/cri (Kubernetes CRI subset)  -> Sources/VeilCRI/Generated/*.pb.swift
#   protos/criu (CRIU 3.17.1's images/)  -> Sources/VeilCRIUProtocol/*.pb.swift
# Installs protoc (Debian's protobuf-compiler) if missing and builds protoc-gen-swift from
# swift-protobuf at the version the package uses, cached under /var/cache/veil.
# The output is committed; builds and tests never run this.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VERSION=${SWIFT_PROTOBUF_VERSION:-1.39.0}
CACHE=${VEIL_PROTOC_CACHE:-/var/cache/veil}/protoc-gen-swift-$VERSION
PLUGIN=$CACHE/protoc-gen-swift
# A local mirror when there is one, else GitHub.
SOURCE=${SWIFT_PROTOBUF_GIT:-}
if [[ -z $SOURCE ]]; then
	if [[ -d /opt/swift-packages/apple/swift-protobuf.git ]]; then
		SOURCE=/opt/swift-packages/apple/swift-protobuf.git
	else
		SOURCE=https://github.com/apple/swift-protobuf.git
	fi
fi

if ! command -v protoc >/dev/null || [[ ! -f /usr/include/google/protobuf/descriptor.proto ]]; then
	echo "gen-protos: installing protobuf-compiler and libprotobuf-dev (the well-known .proto files)" >&2
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends protobuf-compiler libprotobuf-dev
fi
WKT_INCLUDE=/usr/include
[[ -f $WKT_INCLUDE/google/protobuf/any.proto ]] || { echo "gen-protos: google/protobuf/*.proto not found under $WKT_INCLUDE" >&2; exit 1; }

if [[ ! -x $PLUGIN ]] || [[ $("$PLUGIN" --version 2>/dev/null) != "protoc-gen-swift $VERSION" ]]; then
	echo "gen-protos: building protoc-gen-swift $VERSION from $SOURCE (a few minutes)" >&2
	work=$(mktemp -d)
	trap 'rm -rf "$work"' EXIT
	git clone -q "$SOURCE" "$work/swift-protobuf"
	git -C "$work/swift-protobuf" -c advice.detachedHead=false checkout -q "$VERSION"
	(cd "$work/swift-protobuf" && swift build -c release --product protoc-gen-swift)
	mkdir -p "$CACHE"
	install -m 0755 "$work/swift-protobuf/.build/release/protoc-gen-swift" "$PLUGIN.tmp"
	mv "$PLUGIN.tmp" "$PLUGIN"
fi
echo "gen-protos: $("$PLUGIN" --version), $(protoc --version)" >&2

cd "$ROOT/protos"
generate() { # OUTDIR PROTO...
	local out=$1; shift
	mkdir -p "$out"
	find "$out" -maxdepth 1 -name '*.pb.swift' -delete
	protoc -I "${INCLUDE:-.}" -I "$WKT_INCLUDE" \
		--plugin=protoc-gen-swift="$PLUGIN" \
		--swift_opt=Visibility=Public \
		--swift_opt=FileNaming=PathToUnderscores \
		--swift_out="$out" "$@"
}
mapfile -t shim < <(find containerd cgroups -name '*.proto' | sort)
generate "$ROOT/Sources/VeilShimProtocol" "${shim[@]}"
generate "$ROOT/Sources/TTRPC/Generated" ttrpc/request.proto google/rpc/status.proto
generate "$ROOT/Sources/VeilCRI/Generated" cri/api.proto
# CRIU's files import each other by bare name ("opts.proto"), so their directory is the include root.
(cd criu && INCLUDE=. generate "$ROOT/Sources/VeilCRIUProtocol" *.proto)
echo "gen-protos: wrote $(ls "$ROOT"/Sources/VeilShimProtocol/*.pb.swift | wc -l) files to Sources/VeilShimProtocol," \
	"$(ls "$ROOT"/Sources/TTRPC/Generated/*.pb.swift | wc -l) to Sources/TTRPC/Generated," \
	"$(ls "$ROOT"/Sources/VeilCRI/Generated/*.pb.swift | wc -l) to Sources/VeilCRI/Generated," \
	"$(ls "$ROOT"/Sources/VeilCRIUProtocol/*.pb.swift | wc -l) to Sources/VeilCRIUProtocol" >&2
