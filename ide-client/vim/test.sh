#!/usr/bin/env bash
# The Vim client's tests, in the real Vim 9, from a fresh Debian 12 machine (as root, or with sudo):
# installs Debian's vim (and python3 for the mock LLM server) when missing, then runs test/run.vim in
# `vim -Nu NONE -i NONE -es` against the real llm-sidecar binary and the mock LLM server (../mock-llm) on 127.0.0.1.
# Uses $LLM_SIDECAR_BIN, else ../../target/release/llm-sidecar. Prints one line per test and
# "vim: N passed, N failed"; exits non-zero on a failure.
set -uo pipefail
cd "$(dirname "$0")"
HERE=$PWD
# shellcheck source=../../scripts/ensure-packages.sh
source "$HERE/../../scripts/ensure-packages.sh"
started=$SECONDS

fail_setup() { setup_failed vim "$*"; }

require_sidecar vim

ensure_debs vim || fail_setup "could not install vim"
command -v python3 >/dev/null || ensure_debs python3 || fail_setup "python3 is needed (the mock LLM server)"
VIM=/usr/bin/vim
"$VIM" --version | head -1
"$VIM" --version | grep -q '+channel' || fail_setup "$VIM has no +channel"

log=$(mktemp)
out=$(mktemp)
# UTF-8 whatever the locale: the answers hold CJK and emoji.
LC_ALL=C.UTF-8 VIM_TEST_LOG="$log" timeout 600 "$VIM" -Nu NONE -i NONE -es --cmd 'set encoding=utf-8' \
  -c 'source test/run.vim' </dev/null >"$out" 2>&1
rc=$?
cat "$log"
summary=$(grep -E '^vim: [0-9]+ passed, [0-9]+ failed$' "$log" | tail -1)
if [ -z "$summary" ]; then
  echo "--- vim printed no summary (exit $rc); its output:"
  cat "$out"
  echo "vim: 0 passed, 1 failed"
  rc=1
elif [ $rc -ne 0 ]; then
  cat "$out"
fi
rm -f "$log" "$out"
echo "--- vim: done ($((SECONDS - started)) s)"
[ -n "$summary" ] && echo "$summary"
exit $rc
