#!/bin/sh
# The side-by-side benchmark in one command: installs the Node alternative
# (benches/node, from package-lock.json) and runs `cargo bench --bench side_by_side`.
# Needs node + npm and curl; valgrind (for instruction counts) is optional.
set -eu
cd "$(dirname "$0")/.."
(cd benches/node && npm ci --no-audit --no-fund --silent)
exec cargo bench --bench side_by_side "$@"
