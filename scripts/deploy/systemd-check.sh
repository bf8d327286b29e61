#!/usr/bin/env bash
# Runs the sample's systemd units, unchanged, under a real systemd as PID 1: a throw-away
# copy of the cached Debian root (scripts/deploy/debian-root.sh) booted with
# systemd-nspawn, this machine's node bind-mounted read-only at /usr/bin/node and the
# built program at /opt/qt-sample. The units are installed with the commands of
# sample/deploy/systemd/README.md, then the script proves: socket activation (the sockets
# listen, the services start on the first connection), the gateway answering through both,
# the sandbox as the running services see it, the live `systemd-analyze security` scores,
# no SIGSYS at start, a `systemctl stop billing.service` under load that fails no request,
# and crashes restarted by Restart=.
#
# Needs root, a built checkout (npm ci && npm run build) and Node 20.19+. Prints one
# `ok - ...` / `not ok - ...` line per check and exits non-zero if any failed.
# Cache: $DEPLOY_CACHE (default ~/.cache/qt-deploy) for the Debian root.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
# QT_SYSTEMD_UNITS: another directory of the same files (README.md included), e.g. a
# changed copy, to see what the checks make of it.
units_dir=$(cd "${QT_SYSTEMD_UNITS:-$repo/sample/deploy/systemd}" && pwd)
BOOT_TIMEOUT=${BOOT_TIMEOUT:-120}   # seconds until systemd in the container is up
WAIT_TIMEOUT=${WAIT_TIMEOUT:-30}    # seconds for a service to start or restart
# The live exposure each service must not exceed (README: "What the tests check").
EXPOSURE_MAX=1.5
NODE_MIN=20.19

started=$(date +%s)
# shellcheck source=report.sh
. "$repo/scripts/deploy/report.sh"
elapsed() { echo $(($(date +%s) - started)); }

[ "$(id -u)" = 0 ] || die "run as root (systemd-nspawn and nsenter need it)"

# ------------------------------------------------------------------ tools and inputs
need=()
command -v systemd-nspawn >/dev/null 2>&1 || need+=(systemd-container)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
command -v nsenter >/dev/null 2>&1 || need+=(util-linux)
command -v ss >/dev/null 2>&1 || need+=(iproute2)
command -v pgrep >/dev/null 2>&1 || need+=(procps)
if [ ${#need[@]} -gt 0 ]; then
  note "installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
node_bin=$(readlink -f "$(command -v node || true)")
[ -x "$node_bin" ] || die "node is not on PATH (Node $NODE_MIN+ is needed)"
for s in inventory billing gateway; do
  [ -f "$repo/dist/sample/$s/main.js" ] ||
    die "$repo/dist/sample/$s/main.js is missing: run npm ci && npm run build first"
done
[ -d "$repo/node_modules/@nestjs/core" ] || die "$repo/node_modules is missing: run npm ci first"

version_at_least() { # VERSION MIN (both x.y[.z])
  awk -v v="$1" -v m="$2" 'BEGIN { split(v, a, "."); split(m, b, ".");
    exit !((a[1] > b[1]) || (a[1] == b[1] && a[2] >= b[2])) }'
}

# ------------------------------------------------------------------ the machine
debian_root=$("$repo/scripts/deploy/debian-root.sh")
work=$(mktemp -d "${TMPDIR:-/tmp}/qt-systemd-check.XXXXXX")
machine=qt-systemd-$$
nspawn_pid=
leader=

inside() { # runs a command in the booted system (all of PID 1's namespaces)
  nsenter -t "$leader" -a env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin SYSTEMD_COLORS=0 \
    SYSTEMD_PAGER=cat LANG=C.UTF-8 "$@"
}
in_net() { nsenter -t "$leader" -n "$@"; } # this machine's programs, the container's network

print_journals() {
  [ -n "$leader" ] && kill -0 "$leader" 2>/dev/null || return 0
  echo "# --- journals of the units (the run failed) ---"
  inside journalctl --no-pager -o short-precise -u inventory.socket -u billing.socket \
    -u inventory.service -u billing.service -u gateway.service 2>&1 | tail -n 150 | sed 's/^/#   /'
  inside systemctl --no-pager --failed 2>&1 | sed 's/^/#   /'
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ "$failed" -gt 0 ] || [ "$rc" -ne 0 ]; then
    print_journals || true
    [ -f "$work/console.log" ] && { echo "# --- console (last lines) ---"; tail -n 20 "$work/console.log" | sed 's/^/#   /'; }
  fi
  if [ -n "$nspawn_pid" ] && kill -0 "$nspawn_pid" 2>/dev/null; then
    # SIGTERM: nspawn asks the container's systemd to power off, then exits.
    kill -TERM "$nspawn_pid" 2>/dev/null || true
    local deadline=$((SECONDS + 30))
    while kill -0 "$nspawn_pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
    if kill -0 "$nspawn_pid" 2>/dev/null; then
      echo "# the container did not power off in 30 s: killing it"
      [ -n "$leader" ] && kill -KILL "$leader" 2>/dev/null || true
      kill -KILL "$nspawn_pid" 2>/dev/null || true
    fi
    wait "$nspawn_pid" 2>/dev/null || true
  fi
  rm -rf --one-file-system "$work"
  echo "# systemd-check: $failed failed$([ "$rc" -eq 0 ] || echo ", stopped with exit code $rc"), $(elapsed) s"
  [ "$failed" -eq 0 ] && [ "$rc" -eq 0 ] || exit 1
}
trap cleanup EXIT
trap 'exit 130' INT TERM

t=$(date +%s%N)
cp -a "$debian_root" "$work/root"
t=$((($(date +%s%N) - t) / 100000000))
note "copied the Debian root in $((t / 10)).$((t % 10)) s"

# The program as the README installs it, bind-mounted read-only instead of copied; the
# checkout's unit files where the README's commands expect them (a checkout at /root/src).
systemd-nspawn --boot --register=no --keep-unit --console=read-only --private-network \
  -D "$work/root" -M "$machine" \
  --bind-ro="$node_bin:/usr/bin/node" \
  --bind-ro="$repo/dist:/opt/qt-sample/dist" \
  --bind-ro="$repo/node_modules:/opt/qt-sample/node_modules" \
  --bind-ro="$repo/package.json:/opt/qt-sample/package.json" \
  --bind-ro="$units_dir:/root/src/sample/deploy/systemd" \
  >"$work/console.log" 2>&1 &
nspawn_pid=$!

t=$(date +%s)
deadline=$((SECONDS + BOOT_TIMEOUT))
while [ -z "$leader" ]; do
  kill -0 "$nspawn_pid" 2>/dev/null || die "systemd-nspawn exited: $(tail -n 5 "$work/console.log" | tr '\n' ' ')"
  [ $SECONDS -lt $deadline ] || die "no container process after $BOOT_TIMEOUT s"
  # The container's PID 1: nspawn's child once it has become systemd.
  for p in $(pgrep -P "$nspawn_pid" || true); do
    [ "$(cat "/proc/$p/comm" 2>/dev/null)" = systemd ] && leader=$p
  done
  [ -n "$leader" ] || sleep 0.1
done
state=
while :; do
  left=$((deadline - SECONDS))
  [ $left -gt 0 ] || break
  state=$(timeout "$left" nsenter -t "$leader" -a env -i PATH=/usr/bin:/bin \
    systemctl is-system-running --wait 2>/dev/null || true)
  case $state in running | degraded | maintenance | stopping) break ;; esac
  sleep 0.2 # systemd's control socket is not there yet
done
if [ "$state" = running ]; then
  ok "systemd boots as PID 1 in the container (is-system-running: running, $(($(date +%s) - t)) s)"
else
  die "systemd did not reach running in $BOOT_TIMEOUT s (state: ${state:-none}; failed: $(inside systemctl --failed --plain --no-legend 2>&1 | tr '\n' ' '))"
fi

v=$(inside /usr/bin/node -p 'process.versions.node' 2>&1 || true)
if version_at_least "$v" "$NODE_MIN"; then
  ok "/usr/bin/node in the container is Node $v (>= $NODE_MIN)"
else
  die "/usr/bin/node in the container: '$v' (Node $NODE_MIN+ needed)"
fi

# ------------------------------------------------------------------ install, as the README says
# The README's install block minus the program copy (bind mounts here) and the demo lines.
install_cmds=$(awk '/^```sh$/ { on = 1; next } /^```$/ { on = 0 } on' "$units_dir/README.md" |
  grep -E '^(install |systemd-sysusers|systemctl (daemon-reload|enable))' || true)
if [ "$(grep -c 'systemctl enable' <<<"$install_cmds")" != 1 ]; then
  die "no install commands found in sample/deploy/systemd/README.md"
fi
if out=$(inside sh -euc "cd /root/src; $install_cmds" 2>&1); then
  ok "the README's install commands run as written ($(grep -c . <<<"$install_cmds") commands: sysusers, units, enable --now)"
else
  die "the README's install commands: $(tail -n 3 <<<"$out" | tr '\n' ' ')"
fi
diffs=
for f in "$units_dir"/*.socket "$units_dir"/*.service; do
  inside cmp -s "/root/src/sample/deploy/systemd/$(basename "$f")" "/etc/systemd/system/$(basename "$f")" ||
    diffs+=" $(basename "$f")"
done
[ -z "$diffs" ] && ok "the installed unit files are the repository's, byte for byte" ||
  not_ok "installed unit files differ from the repository's:$diffs"
docs=$(inside systemctl show -P Documentation inventory.service billing.service gateway.service | tr ' ' '\n' | sed -n 's|^file://||p' | sort -u)
missing_docs=
for d in $docs; do inside test -f "$d" || missing_docs+=" $d"; done
[ -z "$missing_docs" ] && ok "the units' Documentation= file is installed ($docs)" ||
  not_ok "Documentation= names a file the README's install does not put there:$missing_docs"

pw=$(inside getent passwd qt-sample || true)
uid=$(cut -d: -f3 <<<"$pw")
gid=$(cut -d: -f4 <<<"$pw")
[ -n "$uid" ] && ok "systemd-sysusers created the system user qt-sample (uid $uid, gid $gid)" ||
  die "no user qt-sample after systemd-sysusers"

# ------------------------------------------------------------------ socket activation
wait_for() { # DESCRIPTION SECONDS COMMAND...: polls until COMMAND succeeds
  local what=$1 limit=$2
  shift 2
  local until=$((SECONDS + limit))
  while ! "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $until ]; then
      echo "timed out after $limit s waiting for $what"
      return 1
    fi
    sleep 0.2
  done
}
listening() { in_net ss -Hltn "sport = :$1" | grep -F "127.0.0.1:$1" >/dev/null; }
active_is() { [ "$(inside systemctl is-active "$1" || true)" = "$2" ]; }
main_pid() { inside systemctl show -P MainPID "$1"; }

# http.mjs: GET/POST against the gateway, and a burst that runs a command in its middle.
cat >"$work/http.mjs" <<'EOF'
import { spawn } from 'node:child_process';
const [mode, url, ...rest] = process.argv.slice(2);
async function request(method, body) {
  const r = await fetch(url, {
    method, signal: AbortSignal.timeout(20000),
    ...(body ? { body, headers: { 'content-type': 'application/json' } } : {}),
  });
  return { status: r.status, text: await r.text() };
}
if (mode === 'get' || mode === 'post') {
  const r = await request(mode.toUpperCase(), rest[0]).catch((e) => ({ status: 0, text: String(e?.cause ?? e) }));
  console.log(r.text);
  if (r.status < 200 || r.status > 299) { console.error(`HTTP ${r.status}`); process.exit(1); }
} else if (mode === 'burst') {
  // burst URL CONCURRENCY COMMAND...: CONCURRENCY loops of GETs; once 50 have answered
  // (load flowing), COMMAND runs; the loops go on until 1.5 s after it has returned.
  const [concurrency, ...command] = rest;
  const results = [];
  let commandAt = 0, commandDone = 0, commandCode = null, commandOutput = '', done = false;
  const startCommand = () => {
    commandAt = Date.now();
    const child = spawn(command[0], command.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', (d) => (commandOutput += d));
    child.stderr.on('data', (d) => (commandOutput += d));
    child.on('exit', (code) => {
      commandDone = Date.now(); commandCode = code;
      setTimeout(() => (done = true), 1500);
    });
  };
  const hardStop = setTimeout(() => (done = true), 60000);
  async function loop() {
    while (!done) {
      const s = Date.now();
      let status = 0, pid = null, error = null;
      try {
        const r = await request('GET');
        status = r.status;
        if (status === 200) pid = JSON.parse(r.text).answeredBy?.[0]?.pid ?? null;
        else error = r.text.slice(0, 200);
      } catch (e) { error = String(e?.cause ?? e); }
      results.push({ s, e: Date.now(), status, pid, error });
      if (!commandAt && results.length >= 50) startCommand();
    }
  }
  await Promise.all(Array.from({ length: Number(concurrency) }, loop));
  clearTimeout(hardStop);
  const pids = {};
  for (const r of results) if (r.pid) pids[r.pid] = (pids[r.pid] ?? 0) + 1;
  const failures = results.filter((r) => r.status !== 200);
  console.log(JSON.stringify({
    total: results.length, failed: failures.length, failures: failures.slice(0, 3).map((r) => r.error ?? r.status),
    inFlightAtCommand: results.filter((r) => r.s < commandAt && r.e > commandAt).length,
    duringCommand: results.filter((r) => r.s >= commandAt && r.s <= commandDone).length,
    pids, commandMs: commandDone - commandAt, commandCode, commandOutput: commandOutput.trim(),
    slowestMs: Math.max(0, ...results.map((r) => r.e - r.s)),
  }));
}
EOF
http() { in_net "$node_bin" "$work/http.mjs" "$@"; }
gateway=http://127.0.0.1:8080

if out=$(wait_for "gateway.service to listen on 127.0.0.1:8080" "$WAIT_TIMEOUT" listening 8080); then
  ok "gateway.service (enabled, started by enable --now) listens on 127.0.0.1:8080"
else
  die "$out (gateway.service: $(inside systemctl show -P SubState gateway.service), last exit: $(inside systemctl show -P ExecMainStatus gateway.service))"
fi
sock=$(inside stat -c '%F %a %U' /run/qt-sample/inventory.sock 2>&1 || true)
[ "$sock" = "socket 600 qt-sample" ] &&
  ok "inventory.socket made /run/qt-sample/inventory.sock: a socket, mode 0600, owner qt-sample" ||
  not_ok "/run/qt-sample/inventory.sock: '$sock', expected 'socket 600 qt-sample'"
listening 4000 && ok "billing.socket listens on 127.0.0.1:4000" ||
  not_ok "nothing listens on 127.0.0.1:4000: $(in_net ss -Hltn | tr '\n' ' ')"
before=$(inside systemctl is-active inventory.service billing.service | tr '\n' ' ' || true)
[ "$before" = "inactive inactive " ] &&
  ok "inventory.service and billing.service are not running before the first connection" ||
  not_ok "before any connection inventory.service/billing.service are: $before (expected inactive inactive)"

if body=$(http get "$gateway/products/widget" 2>&1) &&
  [[ $body =~ \"inStock\":[0-9]+ ]] && [[ $body =~ \"unitPrice\":[0-9.]+ ]]; then
  ok "the first gateway request (GET /products/widget) is answered from inventory and billing: $body"
else
  not_ok "GET /products/widget: $body"
fi
after=$(inside systemctl is-active inventory.service billing.service | tr '\n' ' ' || true)
[ "$after" = "active active " ] &&
  ok "that first connection started inventory.service and billing.service (socket activation)" ||
  not_ok "after the first request inventory.service/billing.service are: $after"
ready=$(inside journalctl --no-pager -o cat -u inventory.service -u billing.service | grep '^{"ready"' | sort -u | tr '\n' ' ' || true)
[[ $ready == *'{"ready":"billing","address":"127.0.0.1:4000"}'* ]] &&
  [[ $ready == *'{"ready":"inventory","address":"/run/qt-sample/inventory.sock"}'* ]] &&
  ok "each serves on the socket systemd passed (ready lines: $ready)" ||
  not_ok "ready lines of the activated services: '$ready'"
if order=$(http post "$gateway/orders" '{"sku":"widget","quantity":2}' 2>&1) &&
  id=$(sed -n 's/.*"id":"\([0-9a-f]*\)".*/\1/p' <<<"$order") && [ -n "$id" ] &&
  invoices=$(http get "$gateway/invoices" 2>&1) && [[ $invoices == *"\"$id\""* ]]; then
  ok "POST /orders reserves in inventory, is priced by billing, and its invoice is listed (order $id)"
else
  not_ok "POST /orders then GET /invoices: ${order:-} ${invoices:-}"
fi

# ------------------------------------------------------------------ hardening, as running
# Control: outside the services' sandboxes, root in the container writes /usr and /etc.
probe=qt-check-$$
if inside touch "/usr/$probe" "/etc/$probe" && inside rm -f "/usr/$probe" "/etc/$probe"; then
  ok "control: root outside the services' sandboxes can write /usr and /etc of the container"
else
  not_ok "control: root in the container cannot write /usr or /etc (the probes below would prove nothing)"
fi
for s in inventory billing gateway; do
  pid=$(main_pid "$s.service")
  st=$(inside grep -E '^(Uid|Gid|NoNewPrivs|CapEff|Seccomp):' "/proc/$pid/status" 2>&1 | tr -s '\t ' ' ' | tr '\n' ';' || true)
  if [ "$st" = "Uid: $uid $uid $uid $uid;Gid: $gid $gid $gid $gid;CapEff: 0000000000000000;NoNewPrivs: 1;Seccomp: 2;" ]; then
    ok "$s.service (pid $pid) runs as qt-sample ($uid) with no capabilities, no_new_privs and a seccomp filter"
  else
    not_ok "$s.service (pid $pid) /proc status: $st"
  fi
  # In the running service's own mount namespace: root gets EROFS on /usr and /etc (the
  # mounts are read-only, whatever the permissions), the service user too; /tmp is its own.
  errors=
  for dir in /usr /etc /opt/qt-sample /var/lib; do
    if out=$(inside nsenter -t "$pid" -m touch "$dir/$probe" 2>&1); then
      errors+=" root could write $dir;"
      inside nsenter -t "$pid" -m rm -f "$dir/$probe" || true
    elif [[ $out != *"Read-only file system"* ]]; then
      errors+=" $dir: $out;"
    fi
    if inside nsenter -t "$pid" -m -S "$uid" -G "$gid" touch "$dir/$probe" 2>/dev/null; then
      errors+=" qt-sample could write $dir;"
    fi
  done
  if ! inside nsenter -t "$pid" -m -S "$uid" -G "$gid" touch "/tmp/$probe" 2>/dev/null; then
    errors+=" qt-sample could not write its /tmp (the probe itself is broken?);"
  elif inside test -e "/tmp/$probe"; then
    errors+=" its /tmp is the system's /tmp (PrivateTmp);"
  fi
  [ -z "$errors" ] &&
    ok "$s.service's mount namespace: /usr, /etc, /opt/qt-sample, /var/lib read-only (EROFS even for root), its /tmp private" ||
    not_ok "$s.service sandbox:$errors"
done

exposure() { sed -n 's/.*Overall exposure level for .*: \([0-9.]*\).*/\1/p'; }
scores=
for s in inventory billing gateway; do
  live=$(inside systemd-analyze security --no-pager "$s.service" 2>&1 | exposure || true)
  offline=$(inside systemd-analyze security --offline=yes --no-pager "/etc/systemd/system/$s.service" 2>&1 | exposure || true)
  scores+=" $s $live (offline $offline);"
  if [ -n "$live" ] && awk -v l="$live" -v o="$offline" -v m="$EXPOSURE_MAX" 'BEGIN { exit !(l <= m && (o == "" || l <= o)) }'; then
    ok "systemd-analyze security $s.service in the booted system: $live (<= $EXPOSURE_MAX, <= offline $offline)"
  else
    not_ok "systemd-analyze security $s.service: live '$live', offline '$offline' (must be <= $EXPOSURE_MAX and <= offline)"
  fi
done
note "exposure:$scores"

# ------------------------------------------------------------------ no SIGSYS (Node 20 and @system-service)
sigsys_lines() { inside journalctl --no-pager -o cat "$@" | grep -E 'SIGSYS|status=31/SYS|Bad system call|Operation not permitted' || true; }
bad=$(sigsys_lines -u inventory.service -u billing.service -u gateway.service)
[ -z "$bad" ] && ok "no SIGSYS or 'Operation not permitted' in the three services' journals" ||
  not_ok "the services' journals: $(head -n 3 <<<"$bad" | tr '\n' ' ')"
# The same filter without SystemCallErrorNumber=EPERM kills this node at start (the
# pitfall the units avoid), and the journal search above finds it.
probe_out=$(inside systemd-run --wait --unit=qt-sigsys-probe -p User=qt-sample \
  -p SystemCallFilter=@system-service /usr/bin/node -e 'console.log(1)' 2>&1 || true)
probe_journal=$(sigsys_lines -u qt-sigsys-probe.service)
inside systemctl reset-failed qt-sigsys-probe.service >/dev/null 2>&1 || true
with_eperm=$(inside systemd-run --wait --quiet --pipe --unit=qt-sigsys-probe2 -p User=qt-sample \
  -p SystemCallFilter=@system-service -p SystemCallErrorNumber=EPERM /usr/bin/node -e 'console.log("alive")' 2>&1 || true)
if [[ $probe_out == *"code=killed/status=SYS"* ]] && [ -n "$probe_journal" ] && [ "$with_eperm" = alive ]; then
  ok "control: node under SystemCallFilter=@system-service dies with SIGSYS without SystemCallErrorNumber=EPERM (seen in its journal) and runs with it"
else
  not_ok "SIGSYS control: without EPERM: '$(grep -i terminated <<<"$probe_out")', journal '$probe_journal'; with EPERM: '$with_eperm'"
fi

# ------------------------------------------------------------------ stop drains
old_billing=$(main_pid billing.service)
result=$(http burst "$gateway/billing/workers?calls=1" 16 \
  nsenter -t "$leader" -a env -i PATH=/usr/bin:/bin systemctl stop billing.service 2>&1 || true)
note "burst: $result"
field() { sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p" <<<"$result"; }
if [ "$(field failed)" = 0 ] && [ "$(field commandCode)" = 0 ] && [ "${result:0:1}" = "{" ]; then
  ok "systemctl stop billing.service ($(field commandMs) ms) during $(field total) gateway requests over 16 connections: none failed"
else
  not_ok "stop during a burst: $result"
fi
in_flight=$(field inFlightAtCommand)
new_pids=$(sed -n 's/.*"pids":{\([^}]*\)}.*/\1/p' <<<"$result")
if [ "${in_flight:-0}" -gt 0 ] && [[ $new_pids == *"\"$old_billing\":"* ]] && [ "$(tr ',' '\n' <<<"$new_pids" | grep -c .)" -ge 2 ]; then
  ok "requests were in flight when the stop began ($in_flight); answered by the stopped billing (pid $old_billing) and then by the one the socket started again ($new_pids)"
else
  not_ok "the burst did not span the stop: in flight $in_flight, answered by {$new_pids}, old pid $old_billing"
fi
active_is billing.socket active && ok "billing.socket stays active across the stop" ||
  not_ok "billing.socket is $(inside systemctl is-active billing.socket || true) after the stop"
# The gateway's clients connect again as soon as a connection ends, so while the gateway
# runs, a stopped service is started again at once (README: "systemctl stop").
old_inventory=$(main_pid inventory.service)
inside systemctl stop inventory.service 2>/dev/null || true
new_inventory() {
  local p
  p=$(main_pid inventory.service)
  [ "$p" != 0 ] && [ "$p" != "$old_inventory" ] && active_is inventory.service active
}
if out=$(wait_for "inventory.service to start again" "$WAIT_TIMEOUT" new_inventory); then
  ok "systemctl stop inventory.service with the gateway running: the gateway reconnects, so inventory.socket starts it again at once, no request needed (pid $old_inventory -> $(main_pid inventory.service))"
else
  not_ok "after systemctl stop inventory.service: $out"
fi
# Stop billing and the gateway in one command: gateway.service is ordered after billing.service,
# so the gateway stops first and cannot start billing again by reconnecting (a CI run saw
# that happen before the ordering was added). Billing stays down, its socket listens, and
# the next connection (a bare TCP connect) starts it.
cursor=$(inside journalctl --no-pager -n 0 --show-cursor | sed -n 's/^-- cursor: //p')
inside systemctl stop gateway.service billing.service 2>/dev/null || true
stop_order=$(inside journalctl --no-pager -o cat --after-cursor="$cursor" -u gateway.service -u billing.service |
  grep -oE '^(Stopped|Stopping) (gateway|billing)\.service' | tr '\n' ',' || true)
if [[ $stop_order == *"Stopped gateway.service"*"Stopping billing.service"* ]]; then
  ok "systemctl stop gateway.service billing.service stops the gateway before billing ($stop_order)"
else
  not_ok "systemctl stop gateway.service billing.service: journal order $stop_order (the gateway must be stopped before billing begins to stop)"
fi
if active_is billing.service inactive && active_is gateway.service inactive && listening 4000; then
  in_net "$node_bin" -e 'const s = require("net").connect(4000, "127.0.0.1", () => s.end()); s.on("error", (e) => { console.error(String(e)); process.exit(1); })' || true
  if out=$(wait_for "billing.service to start" "$WAIT_TIMEOUT" active_is billing.service active); then
    ok "with billing.service stopped (and no gateway), billing.socket listens and one TCP connection starts billing.service again (pid $(main_pid billing.service))"
  else
    not_ok "a connection to billing.socket after a stop: $out"
  fi
else
  not_ok "after systemctl stop gateway.service billing.service: billing $(inside systemctl is-active billing.service || true), gateway $(inside systemctl is-active gateway.service || true), port 4000 listening: $(listening 4000 && echo yes || echo no)"
fi
inside systemctl start gateway.service || true
if wait_for "gateway.service to listen" "$WAIT_TIMEOUT" listening 8080 >/dev/null && http get "$gateway/products/widget" >/dev/null 2>&1; then
  ok "gateway.service started again answers through both services"
else
  not_ok "gateway.service after systemctl start: $(inside systemctl is-active gateway.service || true)"
fi

# ------------------------------------------------------------------ crashes restart
for s in billing inventory gateway; do
  pid=$(main_pid "$s.service")
  restarts=$(inside systemctl show -P NRestarts "$s.service")
  inside sh -c "kill -SEGV $pid"
  restarted() {
    local p
    p=$(main_pid "$1.service")
    [ "$p" != 0 ] && [ "$p" != "$2" ] && active_is "$1.service" active
  }
  if out=$(wait_for "$s.service to restart" "$WAIT_TIMEOUT" restarted "$s" "$pid"); then
    now=$(main_pid "$s.service")
    n=$(inside systemctl show -P NRestarts "$s.service")
    [ "$s" = gateway ] && wait_for "the gateway to listen again" "$WAIT_TIMEOUT" listening 8080 >/dev/null || true
    if [ "$n" -gt "$restarts" ] && body=$(http get "$gateway/products/widget" 2>&1); then
      ok "$s.service killed with SIGSEGV (pid $pid) is restarted by Restart=on-failure (pid $now, NRestarts $n) and the gateway answers again"
    else
      not_ok "$s.service after SIGSEGV: NRestarts $restarts -> $n, gateway: ${body:-no answer}"
    fi
  else
    not_ok "$s.service after SIGSEGV to pid $pid: $out ($(inside systemctl is-active "$s.service" || true))"
  fi
done
crash=$(inside journalctl --no-pager -o cat -u billing.service | grep -c 'status=11/SEGV' || true)
[ "$crash" -ge 1 ] && ok "the journal records the crash (status=11/SEGV) and the restart" ||
  not_ok "no SEGV exit in billing.service's journal"

