# Part D of scripts/deploy/container-check.sh: sample/deploy/docker/compose.yaml, unchanged,
# under podman-compose (Debian 12: 1.0.3), as its header says. Sourced; uses container-lib.sh
# and the main script's $repo, $work, $IMAGE, $WAIT.
# shellcheck shell=bash

COMPOSE_PROJECT=qt-sample
compose_dir=
compose_certs_made=
compose_started=

pc() { podman-compose -p "$COMPOSE_PROJECT" -f "$compose_dir/compose.yaml" "$@"; }

# Containers, volumes, networks and pods carrying the project's label.
compose_leftovers() {
  local label=io.podman.compose.project=$COMPOSE_PROJECT
  {
    podman ps -a --filter "label=$label" --format 'container {{.Names}}'
    podman pod ls --filter "label=$label" --format 'pod {{.Name}}'
    podman volume ls --filter "label=$label" --format 'volume {{.Name}}'
    podman network ls --filter "label=$label" --format 'network {{.Name}}'
  } 2>/dev/null
}

compose_cleanup() {
  [ -n "$compose_dir" ] || return 0
  if [ -n "$compose_started" ]; then
    pc down -v -t 5 >/dev/null 2>&1
    local kind name
    compose_leftovers | while read -r kind name; do
      case "$kind" in
        container) podman rm -f "$name" ;;
        pod) podman pod rm -f "$name" ;;
        volume) podman volume rm -f "$name" ;;
        network) podman network rm -f "$name" ;;
      esac
    done >/dev/null 2>&1
  fi
  [ -z "$compose_certs_made" ] || rm -rf "$compose_dir/certs"
}

compose_running() { # N: exactly N containers of the project are running
  [ "$(podman ps --filter "label=io.podman.compose.project=$COMPOSE_PROJECT" \
    --filter status=running -q | wc -l)" = "$1" ]
}

compose_part() {
  # QT_COMPOSE_DIR: another directory with a compose.yaml (e.g. a changed copy), to see what
  # the checks make of it.
  compose_dir=$(cd "${QT_COMPOSE_DIR:-$repo/sample/deploy/docker}" && pwd)
  local gateway=http://127.0.0.1:8080 body out c s status
  local billing=${COMPOSE_PROJECT}_billing_1 gw=${COMPOSE_PROJECT}_gateway_1 inv=${COMPOSE_PROJECT}_inventory_1

  if [ -n "$(compose_leftovers)" ]; then
    not_ok "compose: project $COMPOSE_PROJECT already has containers, volumes or networks (a run outside this script?): $(compose_leftovers | tr '\n' ' ')"
    return 1
  fi
  port_free 8080 || { not_ok "compose: port 8080 is taken on this machine (compose.yaml publishes 127.0.0.1:8080)"; return 1; }
  # The certificates as the README makes them (git-ignored); a directory already there is
  # the user's: used, and left alone.
  if [ -d "$compose_dir/certs" ]; then
    note "compose: using the certificates already in $compose_dir/certs"
  else
    compose_certs_made=1
    "$repo/sample/deploy/tls/make-dev-certs.sh" "$compose_dir/certs" 10001 >/dev/null ||
      { not_ok "make-dev-certs.sh $compose_dir/certs 10001"; return 1; }
  fi

  compose_started=1
  # up builds only a missing image (podman-compose 1.0): the one built above is used.
  if ! pc up -d >"$work/compose-up.log" 2>&1; then
    not_ok "podman-compose up -d failed: $(grep -iE '^error|exit code: [1-9]' "$work/compose-up.log" | head -n 3 | tr '\n' ' ')"
    return 1
  fi
  # podman-compose 1.0 goes on (status 0) when a container fails to start: count them.
  if poll 30 compose_running 3; then
    ok "podman-compose up -d: billing, inventory and gateway are running"
  else
    not_ok "podman-compose up -d: not all three containers run: $(grep -E '^Error' "$work/compose-up.log" | head -n 3 | tr '\n' ' ')"
    return 1
  fi

  # A request that goes through inventory (local socket on the shared volume) and billing
  # (TCP, mutual TLS, service name `billing` in the project network's DNS).
  if poll "$WAIT" http GET "$gateway/products/widget"; then
    body=$(http GET "$gateway/products/widget")
    case "$body" in
      *'"inStock":'*'"unitPrice":'*) ok "GET /products/widget on 127.0.0.1:8080 answers through inventory and billing: $body" ;;
      *) not_ok "GET /products/widget: unexpected answer $body" ;;
    esac
  else
    not_ok "the gateway does not answer GET /products/widget within $WAIT s: $(podman logs --tail 3 "$gw" 2>&1 | tr '\n' ' ')"
  fi
  out=$(podman logs "$billing" 2>&1 | grep '"ready":"billing"' | tail -n 1)
  case "$out" in
    *'(mutual TLS)'*'"workers":['*,*']'*) ok "billing serves mutual TLS with two cluster workers: $out" ;;
    *) not_ok "billing's ready line: '$out' (expected mutual TLS and two workers)" ;;
  esac
  # A TLS client that trusts billing's CA but has no certificate of its own: billing ends
  # the connection before reading anything, and logs why.
  if out=$(podman exec "$gw" node -e '
    const s = require("tls").connect({ host: "billing", port: 4000, servername: "billing",
      ca: require("fs").readFileSync("/run/secrets/tls-ca") });
    s.on("secureConnect", () => s.write("\0\0\0\0"));
    s.on("data", () => { console.log("billing answered"); process.exit(1); });
    s.on("error", (e) => console.log(e.code || e.message));
    s.on("close", () => { console.log("closed by billing"); process.exit(0); });
    setTimeout(() => { console.log("still open after 5 s"); process.exit(1); }, 5000);' 2>&1) &&
    poll 5 sh -c "podman logs $billing 2>&1 | grep -q 'did not present any certificate'"; then
    ok "billing refuses a TLS client without a certificate (${out//$'\n'/ }; logged: the peer did not present any certificate)"
  else
    not_ok "a TLS client without a certificate: ${out//$'\n'/ }"
  fi

  # The compose healthchecks: podman runs them only through systemd timers (not PID 1
  # here), so run each once by hand, as a timer would.
  for c in "$billing" "$inv" "$gw"; do
    if poll 30 podman healthcheck run "$c"; then
      ok "podman healthcheck run $c: healthy ($(podman inspect -f '{{join .Config.Healthcheck.Test " "}}' "$c" | cut -c1-70)...)"
    else
      not_ok "podman healthcheck run $c: $(podman healthcheck run "$c" 2>&1 | tail -n 1)"
    fi
  done

  body=$(http GET "$gateway/billing/workers?calls=8" 2>&1) || body="failed: $body"
  out=$(printf '%s' "$body" | json 'new Set(j.answeredBy.map((a) => a.pid)).size' 2>/dev/null) || out=
  if [ "$out" = 2 ]; then
    ok "GET /billing/workers: both billing workers answer ($(printf '%s' "$body" | json 'j.answeredBy.map((a) => a.pid + ":" + a.calls).join(" ")') pid:calls)"
  else
    not_ok "GET /billing/workers: expected 2 pids: $body"
  fi
  body=$(http POST "$gateway/orders" '{"sku":"widget","quantity":2}' 2>&1) || body="failed: $body"
  out=$(printf '%s' "$body" | json 'j.order.id' 2>/dev/null) || out=
  if [ -n "$out" ] && poll 10 sh -c "curl -sf -m 5 $gateway/invoices | grep -q '\"$out\"'"; then
    ok "POST /orders (request to inventory, events to both) is invoiced by billing: order $out"
  else
    not_ok "POST /orders then GET /invoices: $body"
  fi

  # As run: the compose file's user, read-only root, no capabilities, init as PID 1.
  for s in billing inventory gateway; do
    c=${COMPOSE_PROJECT}_${s}_1
    out=$(podman exec "$c" sh -c 'echo "$(id -u) $(grep CapEff /proc/self/status | cut -f2) $(cat /proc/1/comm)"; touch /opt/qt-sample/x 2>&1 | grep -c Read-only' | tr '\n' ' ')
    if [ "$out" = "10001 0000000000000000 podman-init 1 " ]; then
      ok "compose $s: uid 10001, no capabilities, read-only root, init (podman-init) as PID 1"
    else
      not_ok "compose $s: uid, capabilities, PID 1, read-only root: $out"
    fi
  done
  out=$(podman inspect -f '{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}' "$inv")
  if [ "$out" = "${COMPOSE_PROJECT}_isolated " ] &&
    [ "$(podman network inspect -f '{{.Internal}}' "${COMPOSE_PROJECT}_isolated")" = true ]; then
    ok "inventory's one network is the internal ${COMPOSE_PROJECT}_isolated (no route out, no other member)"
  else
    not_ok "inventory's networks: '$out' (expected only the internal ${COMPOSE_PROJECT}_isolated)"
  fi

  # podman-compose 1.0 ignores stop_grace_period (its stop/down default to 10 s): stop with
  # the file's 20 s, and see each service drain and exit 0 on SIGTERM.
  pc stop -t 20 >"$work/compose-stop.log" 2>&1 || true
  out=
  for s in gateway inventory billing; do
    status=$(podman inspect -f '{{.State.Status}} {{.State.ExitCode}}' "${COMPOSE_PROJECT}_${s}_1" 2>&1)
    [ "$status" = "exited 0" ] || out="$out $s: $status;"
  done
  if [ -z "$out" ]; then ok "podman-compose stop -t 20: the three services exit 0 on SIGTERM"; else not_ok "podman-compose stop:$out"; fi

  pc down -v >"$work/compose-down.log" 2>&1 || not_ok "podman-compose down -v: $(tail -n 2 "$work/compose-down.log" | tr '\n' ' ')"
  out=$(compose_leftovers | grep -v '^network ' || true)
  if [ -z "$out" ]; then
    ok "podman-compose down -v leaves no container, pod or volume of project $COMPOSE_PROJECT"
  else
    not_ok "after podman-compose down -v: $(echo "$out" | tr '\n' ' ')"
  fi
  out=$(compose_leftovers | awk '$1 == "network" {print $2}')
  if [ -n "$out" ]; then
    # shellcheck disable=SC2086 # one name per word
    note "podman-compose 1.0 does not remove the project's networks on down: removing $(echo $out) by hand"
    # shellcheck disable=SC2086
    podman network rm $out >/dev/null 2>&1 || true
  fi
  if [ -z "$(compose_leftovers)" ]; then
    ok "nothing of project $COMPOSE_PROJECT remains (containers, pods, volumes, networks)"
  else
    not_ok "left over: $(compose_leftovers | tr '\n' ' ')"
  fi
  compose_started=
  [ -z "$compose_certs_made" ] || { rm -rf "$compose_dir/certs" && compose_certs_made=; }
  return 0
}
