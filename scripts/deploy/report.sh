# The report lines of the deploy:check parts (TAP-like): `ok - …`, `not ok - …` (counted in
# $failed), `# …` notes, and die (a `not ok` that ends the part). Sourced, not run.
# shellcheck shell=bash

failed=0
ok() { echo "ok - $*"; }
not_ok() {
  echo "not ok - $*"
  failed=$((failed + 1))
}
note() { echo "# $*"; }
die() {
  not_ok "$*"
  exit 1
}
