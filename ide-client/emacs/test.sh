#!/usr/bin/env bash
# The Emacs client's tests, in the real Emacs, from a fresh Debian 12 machine (as root, or with sudo):
# installs Debian's emacs-nox (Emacs 28) when missing, byte-compiles llm-sidecar*.el with warnings as errors, then runs
# the ERT suite (test/llm-sidecar-test.el) in batch mode against the real llm-sidecar binary and the mock LLM server
# (../mock-llm) on 127.0.0.1. Uses $LLM_SIDECAR_BIN, else ../../target/release/llm-sidecar.
# Prints ERT's lines and "emacs: N passed, N failed"; exits non-zero on a failure.
set -uo pipefail
cd "$(dirname "$0")"
HERE=$PWD
# shellcheck source=../../scripts/ensure-packages.sh
source "$HERE/../../scripts/ensure-packages.sh"
started=$SECONDS

fail_setup() { setup_failed emacs "$*"; }

require_sidecar emacs

ensure_debs emacs-nox || fail_setup "could not install emacs-nox"
command -v python3 >/dev/null || ensure_debs python3 || fail_setup "python3 is needed (the mock LLM server)"
emacs --version | head -1

passed=0 failed=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "--- emacs: byte-compile llm-sidecar*.el (warnings are errors)"
mkdir -p "$tmp/lisp"
cp llm-sidecar*.el "$tmp/lisp/"
if emacs -Q --batch -L "$tmp/lisp" --eval '(setq byte-compile-error-on-warn t)' -f batch-byte-compile "$tmp"/lisp/*.el; then
  echo "   passed  byte-compile"
  passed=$((passed + 1))
else
  echo "   FAILED  byte-compile"
  failed=$((failed + 1))
fi

echo "--- emacs: ERT ($((SECONDS - started)) s)"
log="$tmp/ert.log"
LC_ALL=C.UTF-8 timeout 600 emacs -Q --batch -L . -l ert -l test/llm-sidecar-test.el -f ert-run-tests-batch-and-exit \
  </dev/null >"$log" 2>&1
rc=$?
cat "$log"
summary=$(grep -E '^Ran [0-9]+ tests?, [0-9]+ results? as expected' "$log" | tail -1)
if [ -z "$summary" ]; then
  echo "ERT printed no summary (exit $rc)"
  failed=$((failed + 1))
else
  ok=$(echo "$summary" | sed -E 's/^Ran [0-9]+ tests?, ([0-9]+) results? as expected.*/\1/')
  bad=$(echo "$summary" | sed -nE 's/.*, ([0-9]+) unexpected.*/\1/p')
  bad=${bad:-0}
  [ $rc -ne 0 ] && [ "$bad" = 0 ] && bad=1
  passed=$((passed + ok)); failed=$((failed + bad))
fi
echo "--- emacs: done ($((SECONDS - started)) s)"
echo "emacs: $passed passed, $failed failed"
[ "$failed" = 0 ]
