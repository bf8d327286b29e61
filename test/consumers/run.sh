#!/usr/bin/env bash
# Consumer projects: the packed package (npm pack) installed from its tarball into small
# projects shaped like `nest new`'s output, in a temporary directory, each checked with its
# template's own commands and settings (no Jest transform or TypeScript option added):
#
#   nest11-nodenext  nest11/: Nest 11, CommonJS, @nestjs/schematics 11.1's template
#                    (module nodenext, Jest 30 + ts-jest), `--strict`
#   nest11-commonjs  nest11/ with nest11/classic/ over it: @nestjs/schematics 11.0's template
#                    (module commonjs, i.e. node10 resolution; Jest 29 + ts-jest), not strict
#   nest12-esm       nest12-esm/: Nest 12, ESM, @nestjs/schematics 12's ts-esm template
#                    (module nodenext, Vitest 4), `--strict`
#
# Each is a hybrid app (connectMicroservice with two ServerQt, TCP and local) whose e2e test
# calls it with ClientQt: a request, a stream, an RpcException, an event with
# `@Ctx() ctx: QtContext`, and classes from 'nestjs-qt-transport/qtnetwork'. For each:
# `tsc --noEmit`, `npm test`, `npm run test:e2e`, `npm run build` and the built app started in
# plain Node, and both entry points loaded by `require` and `import` in plain Node, giving the
# same objects. On Node 22 and 24 (npm's `node` package) too: the e2e test, the app and the
# loading check. Then the type-check again under `module: node16` and `moduleResolution:
# bundler`, and with the oldest TypeScript the README names (TS_FLOOR). The three projects
# are checked in parallel, each into its own log, printed in order at the end.
#
# Usage: test/consumers/run.sh (from anywhere). Needs the registry; caches nothing.
# KEEP_CONSUMERS=1 keeps the temporary projects.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
# The oldest TypeScript a project may have (README, "Installing in a project").
TS_FLOOR=5.0

work=$(mktemp -d)
# KEEP_CONSUMERS=1 keeps the projects (and says where) to look into a failure.
if [ -n "${KEEP_CONSUMERS:-}" ]; then
  trap 'echo "projects kept in $work"' EXIT
else
  trap 'rm -rf "$work"' EXIT
fi
began=$SECONDS
step() { printf -- '\n--> %s (%ss)\n' "$*" "$((SECONDS - began))"; }

step "pack"
(cd "$repo" && npm pack --silent --pack-destination "$work" >/dev/null)
tarball=$(ls "$work"/nestjs-qt-transport-*.tgz)

# <name> <source dir> [overlay dir]: a copy of the project with the tarball installed.
setup() {
  local dir="$work/$1"
  mkdir -p "$dir"
  cp -R "$2/." "$dir/"
  rm -rf "$dir/classic"
  if [ -n "${3:-}" ]; then cp -R "$3/." "$dir/"; fi
  (cd "$dir" && npm install --no-audit --no-fund --loglevel=error "$tarball") >"$dir.install.log" 2>&1
}

step "install the projects, TypeScript $TS_FLOOR, Node 22 and Node 24 (in parallel)"
projects=(nest11-nodenext nest11-commonjs nest12-esm)
tools=(ts-floor node22 node24)
tool() { npm install --prefix "$work/$1" --no-audit --no-fund --loglevel=error "$2" >"$work/$1.install.log" 2>&1; }
setup nest11-nodenext "$here/nest11" &
pids=($!)
setup nest11-commonjs "$here/nest11" "$here/nest11/classic" &
pids+=($!)
setup nest12-esm "$here/nest12-esm" &
pids+=($!)
tool ts-floor "typescript@$TS_FLOOR" &
pids+=($!)
tool node22 node@22 &
pids+=($!)
tool node24 node@24 &
pids+=($!)
names=("${projects[@]}" "${tools[@]}")
for i in "${!names[@]}"; do
  if ! wait "${pids[$i]}"; then
    echo "npm install failed in ${names[$i]}:" >&2
    cat "$work/${names[$i]}.install.log" >&2
    exit 1
  fi
done
tsc_floor="$work/ts-floor/node_modules/typescript/bin/tsc"

# Both entry points, through require and import, in plain Node: the same objects.
same_objects='
  import { createRequire } from "node:module";
  const require = createRequire(process.cwd() + "/");
  let names = 0;
  for (const entry of ["nestjs-qt-transport", "nestjs-qt-transport/qtnetwork"]) {
    const required = require(entry);
    const imported = await import(entry);
    for (const name of Object.keys(required).filter((n) => n !== "__esModule")) {
      if (imported[name] !== required[name]) throw new Error(`${entry}: ${name} differs`);
      names++;
    }
  }
  const main = await import("nestjs-qt-transport");
  const qt = await import("nestjs-qt-transport/qtnetwork");
  if (main.QTcpSocket !== qt.QTcpSocket) throw new Error("QTcpSocket differs between entries");
  console.log(`Node ${process.version}: ${names} names, the same objects through require and import`);
'

# Every check of one project, in order; runs in the project's directory.
check() {
  local p=$1 t0=$SECONDS
  say() { printf -- '-- %s: %s (%ss)\n' "$p" "$*" "$((SECONDS - t0))"; }
  say "tsc --noEmit, TypeScript $(npx tsc -v | cut -d' ' -f2)"
  npx tsc --noEmit -p tsconfig.json
  say "npm test"
  npm test --silent
  say "npm run test:e2e"
  npm run test:e2e --silent
  say "npm run build, the app in plain Node"
  npm run build --silent
  node "$here/start-app.mjs" .
  node --input-type=module -e "$same_objects"
  for v in 22 24; do
    say "Node $v: npm run test:e2e, the app, require and import"
    PATH="$work/node$v/node_modules/.bin:$PATH" npm run test:e2e --silent
    PATH="$work/node$v/node_modules/.bin:$PATH" node "$here/start-app.mjs" .
    PATH="$work/node$v/node_modules/.bin:$PATH" node --input-type=module -e "$same_objects"
  done
  if [ "$p" != nest11-commonjs ]; then
    say "tsc --noEmit with module node16, and with moduleResolution bundler"
    npx tsc --noEmit -p tsconfig.json --incremental false --module node16 --moduleResolution node16
    npx tsc --noEmit -p tsconfig.json --incremental false --module preserve --moduleResolution bundler
  fi
  # TypeScript before 5.5 has no target ES2023, which the newer templates set: the check
  # with the oldest TypeScript lowers it to ES2022 (the package needs nothing of it).
  say "tsc --noEmit, TypeScript $(node "$tsc_floor" -v | cut -d' ' -f2)"
  sed 's/"ES2023"/"ES2022"/' tsconfig.json >tsconfig.floor.json
  node "$tsc_floor" --noEmit -p tsconfig.floor.json --incremental false
  say "passed"
}

step "check the three projects (in parallel; each one's output follows)"
pids=()
for p in "${projects[@]}"; do
  (cd "$work/$p" && set -e && check "$p") >"$work/$p.log" 2>&1 &
  pids+=($!)
done
failed=()
for i in "${!projects[@]}"; do wait "${pids[$i]}" || failed+=("${projects[$i]}"); done
for p in "${projects[@]}"; do
  printf '\n==== %s\n' "$p"
  cat "$work/$p.log"
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "consumer projects failed: ${failed[*]} (its output is above)" >&2
  exit 1
fi
step "consumer projects passed"
