#!/usr/bin/env bash
# kernel.sh: prints the directory holding Debian's cloud kernel for the qemu guests, fetching it first
# when it is not cached. Both guests boot it: run-guest.sh (busybox initramfs) and run-systemd-guest.sh
# (a Debian image with systemd, which also needs the kernel's modules).
#
# Cached under $VEIL_VM_CACHE (default /var/cache/veil/vm), outside the clone:
#   kernel-PACKAGE-VERSION/vmlinuz            the kernel linux-image-cloud-amd64 depends on
#   kernel-PACKAGE-VERSION/config             its build configuration (the guests check options in it)
#   kernel-PACKAGE-VERSION/release            its release string, `uname -r` in the guest
#   kernel-PACKAGE-VERSION/lib/modules/REL/   its modules as the package ships them (no depmod output:
#                                             the image builder runs depmod where they are installed)
# The package is extracted with dpkg -x, never installed on the host. A directory is built next to its
# final name and renamed into place, so a half-done download never looks cached; callers sharing the
# cache take turns on $VEIL_VM_CACHE/.lock (so call this BEFORE taking that lock yourself).
# Without package lists (offline) the newest cached kernel is used. Exit status 3 when none can be had.
# As root (apt-get).
set -euo pipefail

cache=${VEIL_VM_CACHE:-/var/cache/veil/vm}
say() { echo "kernel.sh: $*" >&2; }
die() { say "$*"; exit 3; }

# A cached directory is usable only with every part; older caches lack lib/modules and release.
complete() {
    local release
    [ -f "$1/vmlinuz" ] && [ -f "$1/config" ] && [ -f "$1/release" ] || return 1
    release=$(cat "$1/release")
    [ -n "$release" ] && [ -d "$1/lib/modules/$release/kernel" ]
}

# The exact image package behind the metapackage, e.g. linux-image-6.1.0-57-cloud-amd64.
image_package() {
    apt-cache depends linux-image-cloud-amd64 2> /dev/null |
        awk '$1 == "Depends:" && $2 ~ /^linux-image-/ { print $2; exit }' || true
}

mkdir -p "$cache"
exec 9> "$cache/.lock"
flock 9

package=$(image_package)
if [ -z "$package" ]; then
    apt-get update -qq || true
    package=$(image_package)
fi

if [ -z "$package" ]; then
    # No package lists (offline): the newest kernel fetched before will do, a complete one if any;
    # one cached before modules were kept still boots the busybox guest (the image builder checks).
    kernel_dir=
    bare=
    for candidate in $(ls -d "$cache"/kernel-*/ 2> /dev/null | sort -V); do
        candidate=${candidate%/}
        if complete "$candidate"; then kernel_dir=$candidate; fi
        if [ -f "$candidate/vmlinuz" ] && [ -f "$candidate/config" ]; then bare=$candidate; fi
    done
    kernel_dir=${kernel_dir:-$bare}
    [ -n "$kernel_dir" ] || die "apt-cache cannot resolve linux-image-cloud-amd64 and no kernel is cached"
    say "apt-cache cannot resolve linux-image-cloud-amd64; using the cached $kernel_dir"
    echo "$kernel_dir"
    exit 0
fi

version=$(apt-cache show --no-all-versions "$package" 2> /dev/null | awk '$1 == "Version:" { print $2; exit }')
[ -n "$version" ] || die "apt-cache knows no version of $package"
kernel_dir=$cache/kernel-$package-$version
if complete "$kernel_dir"; then
    echo "$kernel_dir"
    exit 0
fi

work=$(mktemp -d "$cache/.kernel.XXXXXX")
trap 'rm -rf "$work"' EXIT
say "downloading $package $version"
mkdir "$work/deb"
(cd "$work/deb" && apt-get download -qq -o APT::Sandbox::User=root "$package") || die "apt-get download $package failed"
dpkg -x "$work/deb/"*.deb "$work/x"
# The package installs /lib/modules/REL (bookworm's packages predate the /usr merge of their paths).
release=$(ls "$work/x/lib/modules" 2> /dev/null | head -1)
[ -n "$release" ] && [ -f "$work/x/boot/vmlinuz-$release" ] || die "$package has no /boot/vmlinuz-REL and /lib/modules/REL"
new=$work/kernel
mkdir -p "$new/lib/modules"
cp "$work/x/boot/vmlinuz-$release" "$new/vmlinuz"
cp "$work/x/boot/config-$release" "$new/config"
mv "$work/x/lib/modules/$release" "$new/lib/modules/$release"
echo "$release" > "$new/release"
# Replace an incomplete directory of the same version (one cached before modules were kept).
rm -rf "$kernel_dir"
mv "$new" "$kernel_dir"
say "cached $(du -sh "$kernel_dir" | cut -f1) in $kernel_dir"
echo "$kernel_dir"
