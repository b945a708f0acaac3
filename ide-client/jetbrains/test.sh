#!/usr/bin/env bash
# The JetBrains client's tests: builds the Java client core (client/) with Maven, offline, from Debian's own Maven
# repository, and runs its JUnit 5 suite against the real llm-sidecar binary and mock LLM servers on 127.0.0.1.
# Installs what it needs on first run (Debian packages); idempotent and quick once installed.
#   LLM_SIDECAR_BIN   the sidecar binary (default: ../../target/release/llm-sidecar from this folder)
# The plugin layer (plugin/) needs the IntelliJ Platform SDK, which cannot be fetched here: it is not built by this
# script (see plugin/README.md).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=../../scripts/ensure-packages.sh
source "$here/../../scripts/ensure-packages.sh"

ensure_debs openjdk-17-jdk-headless maven junit5 libgoogle-gson-java libsurefire-java \
  libmaven-compiler-plugin-java libmaven-resources-plugin-java libmaven-jar-plugin-java

require_sidecar jetbrains
bin=$LLM_SIDECAR_BIN
echo "jetbrains client core: testing against $bin ($("$bin" --version 2>/dev/null || echo 'version unknown'))"

cd "$here/client"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
status=0
# -o: offline; .mvn/maven.config lets the file:// repository of settings.xml through in offline mode.
mvn -B -o -ntp -s settings.xml test -Dllm.sidecar.bin="$bin" </dev/null >"$log" 2>&1 || status=$?

# Surefire's summary: one line per test class, then the totals (and the failures, if any)
grep -E '^\[(INFO|WARNING|ERROR)\] (Tests run:|Running |Results:|Failures:|Errors:|  [A-Za-z]+Test\.|BUILD)|^\[ERROR\] .*(FAIL|expected)' "$log" \
  | grep -v '^\[INFO\] Running ' || true
if [ $status -ne 0 ]; then
  echo "--- mvn failed (exit $status); last 80 lines of its output:" >&2
  tail -n 80 "$log" >&2
  if ls target/surefire-reports/*.txt >/dev/null 2>&1; then
    echo "--- failing test reports:" >&2
    grep -l -E 'FAILURE|ERROR' target/surefire-reports/*.txt 2>/dev/null | xargs -r cat >&2
  fi
fi
echo "jetbrains client core: mvn exit $status, ${SECONDS} s in all"
exit $status
