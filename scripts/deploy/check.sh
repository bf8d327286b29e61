#!/usr/bin/env bash
# npm run deploy:check — runs the sample's deployment for real, from nothing, as root on
# Debian 12: the systemd units under systemd as PID 1 (systemd-nspawn), the image and
# compose.yaml under podman, the Kubernetes manifests under `podman kube play`, and the
# local-socket tests with a Windows node.exe under Wine (named pipes). Each part prints
# `ok - …` / `not ok - …` lines; this prints a summary and exits non-zero if any part failed.
#
# Usage: scripts/deploy/check.sh [systemd] [containers] [windows]   (default: all three)
# Big downloads and the Debian root are kept in $DEPLOY_CACHE (default ~/.cache/qt-deploy).
set -uo pipefail
cd "$(dirname "$0")/../.."
here=scripts/deploy

if [ "$(id -u)" != 0 ]; then
  echo "deploy:check needs root (systemd-nspawn, podman as root, apt-get for missing tools)" >&2
  exit 2
fi
parts=("$@")
[ ${#parts[@]} -gt 0 ] || parts=(systemd containers windows)

if [ ! -f dist/sample/gateway/main.js ] || [ ! -d node_modules ]; then
  echo "==> npm ci && npm run build (the deployment runs the built sample)"
  [ -d node_modules ] || npm ci --no-audit --no-fund || exit 1
  npm run build || exit 1
fi

declare -A result seconds
failed=0
for part in "${parts[@]}"; do
  case "$part" in
    systemd) script=$here/systemd-check.sh ;;
    containers) script=$here/container-check.sh ;;
    windows) script=$here/windows-check.sh ;;
    *) echo "unknown part '$part' (systemd, containers, windows)" >&2; exit 2 ;;
  esac
  echo
  echo "==> deploy:check $part ($script)"
  start=$(date +%s)
  if bash "$script"; then result[$part]=passed; else result[$part]=FAILED; failed=1; fi
  seconds[$part]=$(($(date +%s) - start))
done

echo
echo "deploy:check summary"
for part in "${parts[@]}"; do
  printf '  %-10s %s in %s s\n' "$part" "${result[$part]}" "${seconds[$part]}"
done
exit $failed
