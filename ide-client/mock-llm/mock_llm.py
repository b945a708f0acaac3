#!/usr/bin/env python3
"""A small mock LLM server for the editor clients' test suites (Python 3 standard library only).

It listens on 127.0.0.1 on a random port and answers POSTs in the OpenAI chat-completions style. The first path
segment names the scenario, e.g. ``POST /hello/v1/chat/completions``; anything after it is ignored, so a test
configures a client with ``http://127.0.0.1:PORT/<scenario>/v1/chat/completions``.

    python3 mock_llm.py --state-dir DIR [--scenarios FILE.json]

On start it writes its port to DIR/port (atomically) and prints ``mock-llm listening on 127.0.0.1:PORT``.
Every request appends JSON lines to DIR/events.jsonl, so tests in any editor can read what happened:

    {"n": 1, "scenario": "hello", "event": "request", "body": {...}, "headers": {...}}
    {"n": 1, "scenario": "hello", "event": "done"}           the whole answer was sent
    {"n": 1, "scenario": "slow", "event": "disconnected"}    the client closed the connection before the end

A scenario (built-in below, or from --scenarios, which adds to and overrides them) is an object:

    status       HTTP status (default 200)
    body         with a non-2xx status: the JSON (or text) body sent as is
    chunks       the content pieces, one SSE event each ({"choices":[{"delta":{"content": piece}}]})
    reasoning    pieces sent first as {"choices":[{"delta":{"reasoning_content": piece}}]}
    raw_events   instead of chunks: the JSON objects to send as SSE events, as is
    delay_ms     wait between two events (default 0)
    hold_after   after this many events, keep the stream open (sending SSE comments) until the client disconnects
                 or hold_ms (default 60000) passes, then send the rest
    finish       send a last event with finish_reason "stop" (default true)
    style        "chat" (default): pieces go in choices[0].delta.content; "completions": in choices[0].text, as
                 OpenAI's /v1/completions and the fill-in-the-middle servers stream them (the fim* scenarios)

The server stops by itself after --max-seconds (default 900), so a test that forgets it cannot leave it running.
"""
import argparse
import json
import os
import select
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BUILTIN = {
    # Plain ASCII, three pieces.
    "hello": {"chunks": ["Hello", ", ", "world!"]},
    # CJK, emoji (outside the BMP, with a skin-tone modifier and a ZWJ sequence) and a newline, in small pieces.
    "unicode": {"chunks": ["你好", "，世界", "！\n", "Emoji: 👋🏽", " 👨‍👩‍👧", " — done ✓"], "delay_ms": 20},
    # Reasoning first, then the answer (DeepSeek's reasoning_content).
    "reasoning": {"reasoning": ["Let me think", " about it.\nStep two."], "chunks": ["The answer", " is 42."]},
    # Some text, then the stream stays open until the client goes away (cancel).
    "slow": {"chunks": ["partial ", "答案 ", "🚀", " NEVER-SENT-TAIL"], "hold_after": 3, "hold_ms": 60000},
    # Streams slowly, for two requests at once.
    "tortoise": {"chunks": ["slow ", "and ", "steady"], "delay_ms": 150},
    "hare": {"chunks": ["fast ", "one"], "delay_ms": 10},
    # An HTTP error with the provider's own message.
    "unauthorized": {"status": 401, "body": {"error": {"message": "Incorrect API key provided: sk-te****", "type": "invalid_request_error"}}},
    # The text is at a path other than the default one: a configured $.choices[0].delta.text matches nothing.
    "othershape": {"raw_events": [{"choices": [{"delta": {"content": "Alpha"}}]}, {"choices": [{"delta": {"content": "Beta"}}]}]},
    # Code completion (fill in the middle), answered as /v1/completions streams: choices[0].text.
    # Two lines, for ghost text over more than one line.
    "fim": {"style": "completions", "chunks": ["total = a + b", "\n    return total"]},
    # One line with CJK and emoji.
    "fimunicode": {"style": "completions", "chunks": ["print(\"你好 👋🏽\")"]},
    # Holds the answer until the client goes away (a newer request cancels this one).
    "fimslow": {"style": "completions", "chunks": ["never shown"], "hold_after": 0, "hold_ms": 60000},
    # A failing completion server, with its own message.
    "fimerror": {"status": 500, "body": {"error": {"message": "FIM backend exploded"}}},
}

LOCK = threading.Lock()
COUNTER = [0]


def log_event(state_dir, rec):
    with LOCK:
        with open(os.path.join(state_dir, "events.jsonl"), "a", encoding="utf-8") as f:
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")


def client_gone(sock):
    """True when the peer closed the connection (readable with nothing to read, or an error)."""
    try:
        r, _, _ = select.select([sock], [], [], 0)
        if not r:
            return False
        return sock.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mock-llm/1"

    def log_message(self, fmt, *args):  # quiet: the events file is the record
        pass

    def do_GET(self):
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.send_header("Connection", "close")
        self.end_headers()

    def do_POST(self):
        name = self.path.strip("/").split("/")[0].split("?")[0]
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw.decode("utf-8"))
        except ValueError:
            body = raw.decode("utf-8", "replace")
        with LOCK:
            COUNTER[0] += 1
            n = COUNTER[0]
        state_dir = self.server.state_dir
        headers = {k.lower(): v for k, v in self.headers.items() if k.lower() in ("authorization", "content-type", "api-key", "x-api-key")}
        log_event(state_dir, {"n": n, "scenario": name, "event": "request", "body": body, "headers": headers})
        sc = self.server.scenarios.get(name)
        if sc is None:
            self.send_json(404, {"error": {"message": f"mock-llm: no scenario named {name!r}"}})
            log_event(state_dir, {"n": n, "scenario": name, "event": "done"})
            return
        status = sc.get("status", 200)
        if status >= 300 or status < 200:
            b = sc.get("body", {"error": {"message": f"mock error {status}"}})
            self.send_json(status, b)
            log_event(state_dir, {"n": n, "scenario": name, "event": "done"})
            return
        events = []
        for piece in sc.get("reasoning", []):
            events.append({"id": "mock", "model": "mock", "choices": [{"index": 0, "delta": {"reasoning_content": piece, "content": None}}]})
        if "raw_events" in sc:
            events.extend(sc["raw_events"])
        completions = sc.get("style") == "completions"
        for piece in sc.get("chunks", []):
            choice = {"index": 0, "text": piece} if completions else {"index": 0, "delta": {"content": piece}}
            events.append({"id": "mock", "model": "mock", "choices": [choice]})
        if sc.get("finish", True) and "raw_events" not in sc:
            last = {"index": 0, "text": "", "finish_reason": "stop"} if completions else {"index": 0, "delta": {}, "finish_reason": "stop"}
            events.append({"id": "mock", "model": "mock", "choices": [last]})
        delay = sc.get("delay_ms", 0) / 1000.0
        hold_after = sc.get("hold_after")
        hold_ms = sc.get("hold_ms", 60000)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        try:
            for i, ev in enumerate(events):
                if hold_after is not None and i == hold_after:
                    deadline = time.monotonic() + hold_ms / 1000.0
                    while time.monotonic() < deadline:
                        if client_gone(self.connection):
                            raise ConnectionResetError("client closed the connection")
                        self.write_chunk(b": keep-alive\n\n")
                        time.sleep(0.05)
                elif i > 0 and delay:
                    time.sleep(delay)
                self.write_chunk(("data: " + json.dumps(ev, ensure_ascii=False) + "\n\n").encode("utf-8"))
            self.write_chunk(b"data: [DONE]\n\n")
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, OSError):
            log_event(state_dir, {"n": n, "scenario": name, "event": "disconnected"})
            return
        log_event(state_dir, {"n": n, "scenario": name, "event": "done"})

    def write_chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def send_json(self, status, obj):
        data = (obj if isinstance(obj, str) else json.dumps(obj, ensure_ascii=False)).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)
        self.close_connection = True


def main():
    ap = argparse.ArgumentParser(description="mock LLM server for the editor clients' tests")
    ap.add_argument("--state-dir", required=True)
    ap.add_argument("--scenarios", help="a JSON file of more scenarios {name: scenario}")
    ap.add_argument("--max-seconds", type=float, default=900)
    args = ap.parse_args()
    os.makedirs(args.state_dir, exist_ok=True)
    scenarios = dict(BUILTIN)
    if args.scenarios:
        with open(args.scenarios, encoding="utf-8") as f:
            scenarios.update(json.load(f))
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.state_dir = args.state_dir
    server.scenarios = scenarios
    port = server.server_address[1]
    tmp = os.path.join(args.state_dir, "port.tmp")
    with open(tmp, "w") as f:
        f.write(str(port))
    os.replace(tmp, os.path.join(args.state_dir, "port"))
    print(f"mock-llm listening on 127.0.0.1:{port}", flush=True)
    threading.Timer(args.max_seconds, lambda: os._exit(0)).start()
    try:
        server.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
