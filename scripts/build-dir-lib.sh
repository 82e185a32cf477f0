# Sourced (bash) by the cache builders that debootstrap into a temporary directory beside their
# cache and rename it into place when complete: scripts/debian-rootfs.sh, tests/vm/systemd-image.sh.

# remove_build_dir DIR: unmounts what a build mounted below DIR (debootstrap's /proc and /sys in
# the target), deepest first, then deletes DIR, never crossing a mount.
remove_build_dir() {
    local dir=$1 point
    for point in $(awk -v d="$dir" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r); do
        umount -l "$point" || true
    done
    rm -rf --one-file-system "$dir"
}

# remove_stale_builds PREFIX: the leftovers of interrupted builds (paths PREFIX*); only for a
# caller holding the cache's lock, so that nobody is building them.
remove_stale_builds() {
    local stale
    for stale in "$1"*; do
        if [ -d "$stale" ]; then remove_build_dir "$stale"; else rm -f "$stale"; fi
    done
}
