# Sourced by the editor clients' test scripts: what every suite needs before it can run.
#   ensure_debs PKG...      installs the Debian packages that are not installed yet (as root, or through sudo)
#   setup_failed SUITE MSG  reports a suite that could not start as one failed test ("SUITE: 0 passed, 1 failed")
#                           and exits 1
#   require_sidecar SUITE   exports LLM_SIDECAR_BIN as an absolute path: $LLM_SIDECAR_BIN, else this repo's
#                           target/release/llm-sidecar; a missing binary fails the suite
# `apt-get update` runs at most once per test run (LLM_SIDECAR_APT_UPDATED marks it done).

ensure_debs() {
  local missing=()
  local pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=()
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1; then sudo=(sudo); else
      echo "missing Debian packages: ${missing[*]} (install them as root: apt-get install ${missing[*]})" >&2
      return 1
    fi
  fi
  if [ -z "${LLM_SIDECAR_APT_UPDATED:-}" ]; then
    "${sudo[@]}" apt-get update -qq
    export LLM_SIDECAR_APT_UPDATED=1
  fi
  echo "installing Debian packages: ${missing[*]}" >&2
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

setup_failed() {
  echo "$1: setup failed: $2" >&2
  echo "$1: 0 passed, 1 failed"
  exit 1
}

require_sidecar() {
  local repo bin
  repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  bin="${LLM_SIDECAR_BIN:-$repo/target/release/llm-sidecar}"
  [ -x "$bin" ] && bin="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"
  [ -x "$bin" ] || setup_failed "$1" "no llm-sidecar binary at $bin (build it with 'cargo build --release' or set LLM_SIDECAR_BIN)"
  export LLM_SIDECAR_BIN="$bin"
}
