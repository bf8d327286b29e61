# Part E of scripts/deploy/container-check.sh: the manifests of sample/deploy/k8s under
# `podman kube play` (podman 4.3, Debian 12). No cluster can run here; podman plays Pods and
# Deployments (and ignores Services and the PodDisruptionBudget). Each manifest is played from
# a copy made by kube-run-copy.mjs, which prints what it changes and why (Secret volumes,
# billing's published port, hostAliases standing in for the headless Service's DNS).
# Sourced; uses container-lib.sh and the main script's $repo, $here, $work, $IMAGE, $WAIT.
# shellcheck shell=bash

KUBE_NET=podman-default-kube-network
kube_dir=
kube_net_made=

# Pods and containers named as podman 4.3 names a Deployment's: <deployment>-pod-<i>[-<ctr>].
kube_leftovers() {
  {
    podman pod ls --format 'pod {{.Name}}' | grep -E ' (billing|gateway)-pod-[0-9]+$'
    podman ps -a --format 'container {{.Names}}' | grep -E ' (billing|gateway)-pod-[0-9]+-'
    podman volume ls --format 'volume {{.Name}}' | grep -E ' (qt-sample-tls|inventory-socket)$'
    podman secret ls --format 'secret {{.Name}}' | grep -E ' qt-sample-tls$'
  } 2>/dev/null || true
}

kube_cleanup() {
  [ -n "$kube_dir" ] || return 0
  local f kind name
  for f in gateway billing; do
    [ -f "$kube_dir/$f.yaml" ] && podman kube down "$kube_dir/$f.yaml" >/dev/null 2>&1
  done
  kube_leftovers | while read -r kind name; do
    case "$kind" in
      pod) podman pod rm -f "$name" ;;
      container) podman rm -f "$name" ;;
      volume) podman volume rm -f "$name" ;;
      secret) podman secret rm "$name" ;;
    esac
  done >/dev/null 2>&1
  [ -z "$kube_net_made" ] || podman network rm -f "$KUBE_NET" >/dev/null 2>&1
  kube_dir=
}

pod_ip() { # POD
  podman inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' \
    "$(podman pod inspect -f '{{.InfraContainerID}}' "$1")"
}

all_billing_pods_answer() { # GATEWAY_IP REPLICAS: one call of /billing/workers reaches all
  local body
  body=$(http GET "http://$1:8080/billing/workers?calls=30" 2>&1) ||
    { echo "failed: $body" >"$work/workers.json" && return 1; }
  printf '%s' "$body" >"$work/workers.json"
  [ "$(printf '%s' "$body" | json 'j.answeredBy.length' 2>/dev/null)" = "$2" ]
}

ready_logged() { # CONTAINER SERVICE
  podman logs "$1" 2>&1 | grep -q "\"ready\":\"$2\""
}

# The security context as the container runs: uid, capabilities, no_new_privs, seccomp,
# read-only root, memory and CPU limits.
kube_security() { # CONTAINER MEMORY_BYTES
  local c=$1 out limits
  out=$(podman exec "$c" sh -c 'echo "$(id -u):$(id -g)"; grep -E "^(CapEff|NoNewPrivs|Seccomp):" /proc/self/status | cut -f2; touch /opt/qt-sample/x 2>&1 | grep -c Read-only' | tr '\n' ' ')
  limits=$(podman inspect -f '{{.HostConfig.Memory}} {{.HostConfig.CpuQuota}}/{{.HostConfig.CpuPeriod}}' "$c")
  if [ "$out" = "10001:10001 0000000000000000 1 2 1 " ] && [ "$limits" = "$2 50000/100000" ]; then
    ok "securityContext of $c as run: uid/gid 10001, no capabilities, no_new_privs, seccomp filter, read-only root; limits $(($2 / 1048576))Mi, 500m CPU"
  else
    not_ok "securityContext/limits of $c: '$out' '$limits' (expected uid 10001:10001, CapEff 0, NoNewPrivs 1, Seccomp 2, read-only; $2 50000/100000)"
  fi
}

kube_part() {
  local src out body ips gip i c hosts replicas
  # QT_K8S_DIR: another directory of the same manifests (e.g. a changed copy).
  src=$(cd "${QT_K8S_DIR:-$repo/sample/deploy/k8s}" && pwd)
  kube_dir=$work/k8s
  mkdir -p "$kube_dir"
  if [ -n "$(kube_leftovers)" ]; then
    not_ok "kube: Pods of an earlier run are there: $(kube_leftovers | tr '\n' ' ')"
    return 1
  fi
  port_free 8080 || { not_ok "kube: port 8080 is taken on this machine (podman 4.3 publishes the gateway's containerPort)"; return 1; }
  podman network exists "$KUBE_NET" 2>/dev/null || kube_net_made=1

  # The Secret qt-sample-tls: its keys as files (make-dev-certs.sh). The run copy mounts
  # them the way a kubelet would (see kube-run-copy.mjs: podman 4.3's secret volumes hold
  # the data still base64-encoded).
  "$repo/sample/deploy/tls/make-dev-certs.sh" "$work/k8s-secret" >/dev/null ||
    { not_ok "make-dev-certs.sh for the Secret qt-sample-tls"; return 1; }
  node "$here/kube-run-copy.mjs" "$src/billing.yaml" "$kube_dir/billing.yaml" \
    --secret-dir "$work/k8s-secret" --volume-dir "$kube_dir/volumes" ||
    { not_ok "kube-run-copy.mjs billing.yaml"; return 1; }

  if ! podman kube play "$kube_dir/billing.yaml" >"$work/kube-billing.log" 2>&1; then
    not_ok "podman kube play billing.yaml: $(grep -v 'systemd connection' "$work/kube-billing.log" | tail -n 3 | tr '\n' ' ')"
    return 1
  fi
  replicas=$(grep -E '^  replicas:' "$src/billing.yaml" | awk '{print $2}')
  out=$(podman pod ls --format '{{.Name}} {{.Status}}' | grep -E '^billing-pod-[0-9]+ Running$' | sort | awk '{print $1}' | tr '\n' ' ')
  if [ "$(echo "$out" | wc -w)" = "$replicas" ]; then
    ok "podman kube play billing.yaml: the Deployment's $replicas replicas run as $replicas Pods ($out); its Services and PodDisruptionBudget are skipped"
  else
    not_ok "podman kube play billing.yaml: expected $replicas running Pods billing-pod-N, got: $out"
  fi
  ips=
  for ((i = 0; i < replicas; i++)); do
    if poll "$WAIT" ready_logged "billing-pod-$i-billing" billing; then
      ips="$ips${ips:+,}$(pod_ip "billing-pod-$i")"
    else
      not_ok "billing-pod-$i is not ready after $WAIT s: $(podman logs --tail 2 "billing-pod-$i-billing" 2>&1 | tr '\n' ' ')"
    fi
  done
  out=$(for ((i = 0; i < replicas; i++)); do
    podman logs "billing-pod-$i-billing" 2>&1 | grep '"ready":"billing"' | tail -n 1
  done)
  if [ "$(grep -c '(mutual TLS)' <<<"$out")" = "$replicas" ]; then
    ok "the $replicas billing Pods serve mutual TLS with the certificates mounted at /run/tls"
  else
    not_ok "billing Pods' ready lines: ${out//$'\n'/ } (expected mutual TLS in each)"
  fi
  # billing's probes are tcpSocket on port 4000: done from the host, as a kubelet would.
  out=
  for ip in ${ips//,/ }; do tcp_open "$ip" 4000 || out="$out $ip"; done
  if [ -n "$ips" ] && [ -z "$out" ]; then
    ok "billing's tcpSocket probe, from the host as a kubelet does it: port 4000 open on each Pod ($ips)"
  else
    not_ok "billing's tcpSocket probe: port 4000 closed on:$out (Pods: $ips)"
  fi

  node "$here/kube-run-copy.mjs" "$src/gateway.yaml" "$kube_dir/gateway.yaml" \
    --secret-dir "$work/k8s-secret" --volume-dir "$kube_dir/volumes" \
    --host-alias "billing-headless=$ips" || { not_ok "kube-run-copy.mjs gateway.yaml"; return 1; }
  if ! podman kube play "$kube_dir/gateway.yaml" >"$work/kube-gateway.log" 2>&1; then
    not_ok "podman kube play gateway.yaml: $(grep -v 'systemd connection' "$work/kube-gateway.log" | tail -n 3 | tr '\n' ' ')"
    return 1
  fi
  gip=$(pod_ip gateway-pod-0)
  # The readiness probe: httpGet /health on port http (8080), from the host to the Pod IP.
  if poll "$WAIT" http GET "http://$gip:8080/health"; then
    body=$(http GET "http://$gip:8080/health")
    ok "podman kube play gateway.yaml: the gateway's readiness probe (GET /health on $gip:8080, as a kubelet does) answers 200: $(printf '%s' "$body" | json 'Object.keys(j.info).map((k) => k + " " + j.info[k].status).join(", ")')"
  else
    not_ok "GET http://$gip:8080/health within $WAIT s: $(curl -s -m 5 "http://$gip:8080/health"; podman logs --tail 3 gateway-pod-0-gateway 2>&1 | tr '\n' ' ')"
  fi
  # Liveness probes as podman 4.3 sets them up (its healthcheck; run by hand, no systemd).
  if podman healthcheck run gateway-pod-0-inventory >/dev/null 2>&1; then
    ok "inventory's exec liveness probe (test -S on the socket) passes: podman healthcheck run gateway-pod-0-inventory"
  else
    not_ok "podman healthcheck run gateway-pod-0-inventory: $(podman healthcheck run gateway-pod-0-inventory 2>&1 | tail -n 1)"
  fi
  note "podman 4.3 turns tcpSocket/httpGet liveness probes into nc/curl commands run in the container (not in the image; a named port becomes 0): billing-pod-0/billing has [$(podman inspect -f '{{join .Config.Healthcheck.Test " "}}' billing-pod-0-billing 2>/dev/null)]; not run (the checks above do what a kubelet does). Readiness probes and terminationGracePeriodSeconds are ignored by podman 4.3."

  for c in billing-pod-0-billing gateway-pod-0-gateway gateway-pod-0-inventory; do
    case "$c" in *-gateway) kube_security "$c" $((320 * 1048576)) ;; *) kube_security "$c" $((256 * 1048576)) ;; esac
  done

  body=$(http GET "http://127.0.0.1:8080/products/widget" 2>&1) || body="failed: $body"
  case "$body" in
    *'"inStock":'*'"unitPrice":'*) ok "GET /products/widget from the host (127.0.0.1:8080: podman 4.3 publishes containerPort 8080) goes through inventory and billing: $body" ;;
    *) not_ok "GET 127.0.0.1:8080/products/widget: $body" ;;
  esac
  # Each billing Pod gets a connection of its own; the first calls after the gateway is
  # ready may all go to the Pod whose connection came up first, so ask until all answer.
  local since
  since=$(date +%s)
  if poll 20 all_billing_pods_answer "$gip" "$replicas"; then
    ok "the gateway balances over the $replicas billing Pods through billing-headless (least-pending), all answering $(($(date +%s) - since)) s after the checks above: $(json 'j.answeredBy.map((a) => a.host + " " + a.calls).join(", ")' <"$work/workers.json") calls"
  else
    not_ok "GET /billing/workers?calls=30: expected the $replicas billing Pods within 20 s, got: $(cat "$work/workers.json")"
  fi

  # The scale-out's drain: a billing Pod stopped (SIGTERM) while the gateway is under load.
  out=$(node "$here/drain-under-load.mjs" "http://$gip:8080/products/widget" 4 100 -- \
    podman pod stop -t 20 billing-pod-0 2>&1) || out="failed: $out"
  if [ "$(printf '%s' "$out" | json 'j.failed === 0 && j.ok > 100 && j.command === 0' 2>/dev/null)" = true ] &&
    [ "$(podman inspect -f '{{.State.ExitCode}}' billing-pod-0-billing)" = 0 ]; then
    ok "billing-pod-0 stopped under load (podman pod stop: SIGTERM, drain, exit 0): $(printf '%s' "$out" | json '`${j.ok} requests, ${j.failed} failed, ${j.ms} ms`')"
  else
    not_ok "billing-pod-0 stopped under load: $out; exit code $(podman inspect -f '{{.State.ExitCode}}' billing-pod-0-billing 2>&1)"
  fi
  body=$(http GET "http://$gip:8080/billing/workers?calls=12" 2>&1) || body="failed: $body"
  hosts=$(printf '%s' "$body" | json 'j.answeredBy.map((a) => a.host).sort().join(" ")' 2>/dev/null) || hosts=
  if [ -n "$hosts" ] && [[ " $hosts " != *" billing-pod-0 "* ]]; then
    ok "after the stop the other Pods answer: $hosts"
  else
    not_ok "after stopping billing-pod-0: $body"
  fi

  if podman kube down "$kube_dir/gateway.yaml" >"$work/kube-down.log" 2>&1 &&
    podman kube down "$kube_dir/billing.yaml" >>"$work/kube-down.log" 2>&1; then
    out=$(kube_leftovers)
    if [ -z "$out" ]; then
      ok "podman kube down gateway.yaml, billing.yaml: no Pod, container, volume or secret of the sample remains"
    else
      not_ok "after podman kube down: $(echo "$out" | tr '\n' ' ')"
    fi
  else
    not_ok "podman kube down: $(grep -v 'systemd connection' "$work/kube-down.log" | tail -n 3 | tr '\n' ' ')"
  fi
  if [ -n "$kube_net_made" ]; then
    note "podman kube play made the network $KUBE_NET and kube down keeps it: removed by hand"
    podman network rm -f "$KUBE_NET" >/dev/null 2>&1 || not_ok "podman network rm $KUBE_NET"
    kube_net_made=
  fi
  return 0
}
