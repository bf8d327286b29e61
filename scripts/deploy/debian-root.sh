#!/usr/bin/env bash
# Makes (once) a minimal Debian bookworm root file system with systemd, from the Debian
# mirror this machine's apt uses, and prints its path. Shared by the systemd check (booted
# with systemd-nspawn) and the container check (imported as the local base image).
# Cache: $DEPLOY_CACHE (default ~/.cache/qt-deploy); a finished root is marked by .complete.
set -euo pipefail
cache=${DEPLOY_CACHE:-$HOME/.cache/qt-deploy}
root=$cache/bookworm-root
mkdir -p "$cache"
exec 9>"$cache/bookworm-root.lock"
flock 9
if [ -f "$root/.complete" ]; then
  echo "$root"
  exit 0
fi
command -v debootstrap >/dev/null 2>&1 || {
  echo "debootstrap is missing (apt-get install debootstrap)" >&2
  exit 1
}
# The mirror apt itself uses (deb822 sources first, then the one-line form).
mirror=$(
  { grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}'
    grep -hE '^deb ' /etc/apt/sources.list 2>/dev/null | awk '{print $2}'; } |
    grep -v security | head -n 1
) || true
mirror=${mirror:-http://deb.debian.org/debian}
rm -rf "$root"
echo "debootstrap bookworm from $mirror into $root" >&2
debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,ca-certificates \
  bookworm "$root" "$mirror" >"$cache/debootstrap.log" 2>&1 || {
  tail -n 30 "$cache/debootstrap.log" >&2
  exit 1
}
touch "$root/.complete"
echo "$root"
