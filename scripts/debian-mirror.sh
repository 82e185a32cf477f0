#!/usr/bin/env bash
# Prints the Debian archive this machine's apt uses (for debootstrap): $MIRROR when set, else the
# first deb822 `URIs:` entry naming the Debian archive (not -security, not a third-party repository;
# a commented snapshot address above it does not answer here), else deb.debian.org.
set -euo pipefail
if [ -n "${MIRROR:-}" ]; then echo "$MIRROR"; exit 0; fi
for file in /etc/apt/sources.list.d/*.sources; do
    [ -e "$file" ] || continue
    while read -r uri; do
        case "$uri" in
            */debian | */debian/) echo "${uri%/}"; exit 0 ;;
        esac
    done < <(sed -n 's/^URIs:[[:space:]]*//p' "$file" | tr ' ' '\n')
done
echo http://deb.debian.org/debian
