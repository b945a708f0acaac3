#!/usr/bin/env bash
# Every test suite in one command: the Rust core (`cargo test`), then each editor client inside its real editor,
# against the release binary built here. Installs what the client suites need on first run (Debian, npm and PyPI
# packages), so it works on a fresh machine. Prints one summary line per suite and a closing tally.
#   scripts/test-all.sh              all suites (every ide-client/*/test.sh)
#   scripts/test-all.sh vscode vim   the Rust core is skipped; only the named clients
set -uo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

clients=()
for script in ide-client/*/test.sh; do [ -f "$script" ] && clients+=("$(basename "$(dirname "$script")")"); done
run_core=1
if [ $# -gt 0 ]; then clients=("$@"); run_core=0; fi

cargo build --release --locked || exit 1
export LLM_SIDECAR_BIN="$PWD/target/release/llm-sidecar"

passed=0 failed=0 results=()
run_suite() {
  local name=$1; shift
  echo "=== suite: $name"
  local start=$SECONDS
  if "$@"; then
    passed=$((passed + 1)); results+=("  ok    $name ($((SECONDS - start)) s)")
  else
    failed=$((failed + 1)); results+=("  FAIL  $name ($((SECONDS - start)) s)")
  fi
}

# The core suite runs against the debug binary Cargo builds for it (its panic hook exists only there).
[ $run_core = 1 ] && run_suite core env -u LLM_SIDECAR_BIN cargo test --locked
for client in ${clients[@]+"${clients[@]}"}; do
  if [ -f "ide-client/$client/test.sh" ]; then
    run_suite "$client" bash "ide-client/$client/test.sh"
  else
    echo "no test script for client '$client' (ide-client/$client/test.sh)" >&2
    failed=$((failed + 1)); results+=("  FAIL  $client (no test.sh)")
  fi
done

echo "=== summary"
printf '%s\n' "${results[@]}"
echo "suites: $passed passed, $failed failed"
[ $failed = 0 ]
