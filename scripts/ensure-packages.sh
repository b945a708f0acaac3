# Sourced by the test scripts: install what a suite needs, once, from Debian's packages.
#   ensure_debs PKG...   installs the Debian packages that are not installed yet (as root, or through sudo)
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
