#!/usr/bin/env bash
# Builds the seed corpora in fuzz/seeds/<target>/ from the captured provider
# responses in tests/fixtures (or ../shared/fixtures when that is missing).
# Needs bash and jq. Re-running it rewrites seeds/ from scratch.
#
# Stream-target seeds start with the flags byte described in
# fuzz_targets/common/mod.rs: "\x00" + fixture = read whole, no cuts.
set -euo pipefail
cd "$(dirname "$0")"

FIXTURES=../tests/fixtures
[ -d "$FIXTURES" ] || FIXTURES=../../shared/fixtures
[ -d "$FIXTURES" ] || { echo "no fixtures folder found" >&2; exit 1; }
MAX=16384   # bytes of a fixture kept in a seed (keeps libFuzzer's -max_len reasonable)

rm -rf seeds
mkdir -p seeds/sse_decoder seeds/ndjson_reader seeds/frame_reader seeds/settings_parser

# A little-endian u16 as a printf format.
u16() { printf '\\x%02x\\x%02x' $(( $1 & 255 )) $(( ($1 >> 8) & 255 )); }
# The first $MAX bytes of a fixture.
body() { head -c "$MAX" "$1"; }
# An LSP frame around stdin.
frame() { local tmp; tmp=$(mktemp); cat > "$tmp"; printf 'Content-Length: %d\r\n\r\n' "$(stat -c %s "$tmp")"; cat "$tmp"; rm -f "$tmp"; }

bodies=()
for f in "$FIXTURES"/*.sse "$FIXTURES"/*.ndjson "$FIXTURES"/*.json; do
  case "$f" in *.meta.json|*/INDEX.json) continue ;; esac
  bodies+=("$f")
done

i=0
for f in "${bodies[@]}"; do
  name=$(basename "$f")
  len=$(body "$f" | wc -c)
  # Whole, default limits.
  { printf '\x00'; body "$f"; } > "seeds/sse_decoder/$name"
  { printf '\x00'; body "$f"; } > "seeds/ndjson_reader/$name"
  # Three cuts (after byte 1, in the middle, before the last two bytes), another
  # limit / JsonPath per seed.
  flags=$(( 3 | ((i % 4) << 3) | ((i % 8) << 5) ))
  cuts="$(u16 1)$(u16 $(( len / 2 )))$(u16 $(( len > 2 ? len - 2 : 0 )))"
  case "$f" in
    *.sse) { printf "$(printf '\\x%02x' "$flags")$cuts"; body "$f"; } > "seeds/sse_decoder/cut-$name" ;;
    *.ndjson) { printf "$(printf '\\x%02x' $(( 3 | ((i % 4) << 3) )))$cuts"; body "$f"; } > "seeds/ndjson_reader/cut-$name" ;;
  esac
  i=$((i + 1))
done

# Frames: each JSON fixture as one frame body (the larger ones are over the
# 4096-byte limit and exercise skipping), then a few hand-made streams.
for f in "$FIXTURES"/*.json; do
  case "$f" in *.meta.json|*/INDEX.json) continue ;; esac
  { printf '\x00'; body "$f" | frame; } > "seeds/frame_reader/$(basename "$f")"
done
big=$(ls -S "$FIXTURES"/*.sse | head -1)
{
  printf '\x00'
  printf '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}' | frame
  printf 'Content-Length: 52\r\nContent-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n{"jsonrpc":"2.0","method":"initialized","params":[]}'
  body "$big" | frame
  printf '\r\n{"jsonrpc":"2.0","id":2,"method":"shutdown"}' | frame
} > seeds/frame_reader/session-with-oversized-frame
{
  printf "\x03$(u16 5)$(u16 20)$(u16 23)"
  printf 'content-length:2\n\n{}CONTENT-LENGTH: 3\r\n\r\n[1]'
} > seeds/frame_reader/lf-and-case
printf '\x00Content-Lenght: 2\r\n\r\nContent-Length: x\r\n\r\nX-No-Colon\r\n\r\nContent-Length: 2\r\n\r\n{}' > seeds/frame_reader/bad-headers

# Settings: one object per fixture (its path, its format), plus the README's examples.
for m in "$FIXTURES"/*.meta.json; do
  jq -c '{customEngineServer: "http://127.0.0.1:8080/v1/chat/completions",
          customEngineToken: "sk-test-0123456789abcdef",
          customEngineResponseType: (.format | ascii_upcase),
          customEngineResponseFormat: .jsonpath,
          reasoningFormat: ((.alternatives // [])[0].jsonpath // null),
          customEngineRequestFormat: "{\"customFields\": {\"model\": \"m\", \"stream\": true}}"}' "$m" \
    > "seeds/settings_parser/$(basename "$m" .meta.json).json"
done
cat > seeds/settings_parser/readme-deepseek.json <<'JSON'
{"customEngineServer": "https://api.deepseek.com/v1/chat/completions", "customEngineToken": "sk-...", "customEngineResponseType": "SSE", "customEngineRequestFormat": "{\"customFields\": {\"model\": \"deepseek-chat\", \"stream\": true}}", "customEngineResponseFormat": "$.choices[0].delta.content"}
JSON
cat > seeds/settings_parser/readme-ollama.json <<'JSON'
{"customEngineServer": "http://localhost:11434/api/chat", "customEngineResponseType": "NDJSON", "customEngineResponseFormat": "$.message.content", "customEngineRequestFormat": {"customFields": {"model": "llama3.2"}}}
JSON
cat > seeds/settings_parser/everything.json <<'JSON'
{"customEngineServer": "https://user:pw@h.example/v1?key=abcdefgh", "customEngineToken": "tok-123456789012", "customEngineResponseType": "jsonl", "customEngineResponseFormat": "choices[0].message.content", "reasoningFormat": "$.choices[0].delta.reasoning_content", "customEngineRequestFormat": {"customFields": {"model": "m", "stream": 1, "messages": "no"}, "customHeaders": {"X-Api-Key": "hdr-secret-1", "X-Num": 3, "X-Bool": true}, "messageKeys": {"role": "speaker", "content": "message"}, "fields": {"query": "$content", "inputs": {"feature": "$content"}, "user": "u"}}, "timeouts": {"connectMs": 1000, "firstByteMs": 2000, "idleMs": 3000, "totalMs": 4000}, "retry": {"maxRetries": 3, "initialBackoffMs": 10, "maxBackoffMs": 100}, "maxEventBytes": 1024, "maxResponseBytes": 4096, "proxy": "socks5h://127.0.0.1:1080", "caCertificates": "/tmp/ca.pem", "aiEngine": "Custom", "language": "en"}
JSON
cat > seeds/settings_parser/every-problem.json <<'JSON'
{"customEngineSever": "ftp://x", "customEngineResponseType": "XML", "customEngineResponseFormat": "$.choices[0.delta", "customEngineRequestFormat": "{not json", "timeouts": {"idle": 5, "connectMs": -1}, "retry": {"maxRetries": 11}, "maxEventBytes": 0, "proxy": "ftp://p", "customEngineToken": 5}
JSON
cat > seeds/settings_parser/bad-request-format.json <<'JSON'
{"customEngineServer": "http://h/", "customEngineRequestFormat": {"model": "x", "customFields": [], "customHeaders": {"bad name": "x", "X-A": "a\nb", "X-O": {}}, "messageKeys": {"role": "", "name": "n"}}}
JSON
cat > seeds/settings_parser/custom-llms-entry.json <<'JSON'
{"name": "ii", "description": "entry form", "url": "https://api.example.com/v1/chat/completions", "auth": {"type": "Bearer", "token": "sk-ii-0123456789"}, "requestFormat": "{\"customFields\": {\"model\": \"m\", \"stream\": true}}", "responseFormat": "$.choices[0].delta.content", "modelType": "Default"}
JSON
cat > seeds/settings_parser/form-2.2.json <<'JSON'
{"name": "x", "url": "http://h/", "auth": {"type": "Bearer", "token": ""}, "customRequest": {"headers": {"X-A": "1"}, "body": {"model": "m", "temperature": 0.0}, "stream": false}, "maxTokens": 512, "responseFormat": "$.message.content", "responseType": "NDJSON"}
JSON
cat > seeds/settings_parser/preset-anthropic.json <<'JSON'
{"preset": "anthropic", "customEngineToken": "sk-ant-0123456789", "model": "claude-sonnet-4-20250514", "tokenHeader": "x-api-key", "systemField": "system"}
JSON
cat > seeds/settings_parser/preset-ollama.json <<'JSON'
{"preset": "ollama", "customEngineServer": "http://127.0.0.1:11434/api/chat"}
JSON

for t in seeds/*; do echo "$t: $(ls "$t" | wc -l) seeds"; done
