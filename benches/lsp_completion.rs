//! What the sidecar adds to one LSP inline completion, and what open documents cost in memory.
//!
//! - **Latency**: the release binary over pipes, initialised with completion settings for a local
//!   `/v1/completions` server that answers at once (loopback, a blocking thread per connection,
//!   the same JSON body every time). A 10 000-line document (CJK and emoji on every line) is
//!   opened and edited 1 000 times (`didChange`, one small incremental edit each), then
//!   `textDocument/inlineCompletion` is sent 2 000 times at random lines (`triggerKind: 1`, so
//!   the completion cache is not read and every request reaches the server), one at a time.
//!   Added latency per completion = the round trip seen by the bench (request written → response
//!   parsed) minus the server's own time (request read → answer written, measured by the
//!   server). Also shown: an HTTP-only floor (the bench itself POSTs the same kind of body to the
//!   same server over a kept-alive connection), and the time to apply the 1 000 edits.
//! - **Memory**: a second sidecar, RSS when idle (after `initialize` and one request) and after
//!   50 documents of 1 MB each are opened (after one more request, so the allocator has trimmed
//!   what the parsing of the frames left).
//!
//! Nothing is asserted about times; the exit status is 1 only when a request fails.
//! `LLM_SIDECAR_BIN` benchmarks another build.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use llm_sidecar::rpc::frame::{Frame, FrameCodec};
use serde_json::{Value, json};
use tokio_util::codec::Decoder;

const LINES: usize = 10_000;
const EDITS: usize = 1_000;
const WARM_UP: usize = 100;
const COMPLETIONS: usize = 2_000;
const DOCUMENTS: usize = 50;
const DOCUMENT_BYTES: usize = 1_000_000;

// ------------------------------------------------------------------------------------------
// The server: answers every POST at once and records how long it held each request.
// ------------------------------------------------------------------------------------------

const ANSWER: &str = r#"{"id":"c","object":"text_completion","choices":[{"index":0,"text":"compute(1)","finish_reason":"stop"}]}"#;

/// Server time per request, in µs, in arrival order.
type Held = Arc<Mutex<Vec<f64>>>;

fn serve(listener: TcpListener, held: Held) {
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let held = held.clone();
        std::thread::spawn(move || {
            let _ = connection(stream, &held);
        });
    }
}

fn connection(stream: TcpStream, held: &Held) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{ANSWER}",
        ANSWER.len()
    );
    let mut line = String::new();
    loop {
        let mut length = 0;
        loop {
            line.clear();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            if line == "\r\n" {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        let read = Instant::now();
        writer.write_all(response.as_bytes())?;
        held.lock()
            .unwrap()
            .push(read.elapsed().as_secs_f64() * 1e6);
    }
}

/// The HTTP-only floor: one POST of `body` over a kept-alive connection; µs.
fn post_once(stream: &mut BufReader<TcpStream>, body: &[u8]) -> f64 {
    let start = Instant::now();
    let head = format!(
        "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let socket = stream.get_mut();
    socket.write_all(head.as_bytes()).unwrap();
    socket.write_all(body).unwrap();
    let mut length = 0;
    let mut line = String::new();
    loop {
        line.clear();
        stream.read_line(&mut line).unwrap();
        if line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap();
        }
    }
    let mut answer = vec![0; length];
    stream.read_exact(&mut answer).unwrap();
    let _: Value = serde_json::from_slice(&answer).unwrap();
    start.elapsed().as_secs_f64() * 1e6
}

// ------------------------------------------------------------------------------------------
// The sidecar over pipes
// ------------------------------------------------------------------------------------------

struct Sidecar {
    child: Child,
    stdin: ChildStdin,
    stdout: ChildStdout,
    buf: BytesMut,
    codec: FrameCodec,
    next_id: u64,
}

impl Sidecar {
    fn spawn() -> Sidecar {
        let bin = std::env::var("LLM_SIDECAR_BIN")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_llm-sidecar").to_owned());
        let mut child = Command::new(bin)
            .env_remove("LLM_SIDECAR_LOG")
            .env_remove("RUST_LOG")
            .env_remove("http_proxy")
            .env_remove("HTTP_PROXY")
            .env_remove("all_proxy")
            .env_remove("ALL_PROXY")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the sidecar");
        Sidecar {
            stdin: child.stdin.take().unwrap(),
            stdout: child.stdout.take().unwrap(),
            child,
            buf: BytesMut::with_capacity(1 << 16),
            codec: FrameCodec::default(),
            next_id: 1,
        }
    }

    fn send(&mut self, message: &Value) {
        let body = serde_json::to_vec(message).unwrap();
        let mut frame = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
        frame.extend_from_slice(&body);
        self.stdin.write_all(&frame).expect("write to the sidecar");
    }

    fn notify(&mut self, method: &str, params: Value) {
        self.send(&json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    /// Sends a request and waits for its response.
    fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        loop {
            let message = self.next().expect("the sidecar closed stdout");
            if message["id"] == id {
                return message;
            }
        }
    }

    fn next(&mut self) -> Option<Value> {
        loop {
            if let Some(Frame::Message(body)) = self.codec.decode(&mut self.buf).ok()? {
                return serde_json::from_slice(&body).ok();
            }
            let mut chunk = [0u8; 1 << 16];
            let n = self.stdout.read(&mut chunk).ok()?;
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// On-CPU µs of every thread of the sidecar so far.
    fn cpu_us(&self) -> f64 {
        let Ok(dir) = std::fs::read_dir(format!("/proc/{}/task", self.child.id())) else {
            return f64::NAN;
        };
        dir.filter_map(|t| {
            let s = std::fs::read_to_string(t.ok()?.path().join("schedstat")).ok()?;
            s.split_whitespace().next()?.parse::<f64>().ok()
        })
        .sum::<f64>()
            / 1e3
    }

    fn rss_mib(&self, field: &str) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| {
                l.strip_prefix(field)?
                    .trim()
                    .strip_suffix("kB")?
                    .trim()
                    .parse::<f64>()
                    .ok()
            })
            .map_or(f64::NAN, |kb| kb / 1024.0)
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn summary(name: &str, mut values: Vec<f64>) {
    values.sort_by(f64::total_cmp);
    println!(
        "  {name:<46} p50 {:>7.0} µs   p99 {:>7.0} µs   max {:>7.0} µs",
        percentile(&values, 0.5),
        percentile(&values, 0.99),
        percentile(&values, 1.0)
    );
}

fn document() -> String {
    (0..LINES)
        .map(|i| format!("    let value_{i} = compute({i}, \"中文 😀\");\n"))
        .collect()
}

// ------------------------------------------------------------------------------------------
// The runs
// ------------------------------------------------------------------------------------------

fn latency(url: &str, held: &Held, address: std::net::SocketAddr) -> Result<(), String> {
    let mut sidecar = Sidecar::spawn();
    let init = sidecar.call(
        "initialize",
        json!({"capabilities": {}, "initializationOptions": {"completion": {
            "customEngineServer": url,
            "customEngineResponseType": "JSON",
            "customEngineRequestFormat": {"customFields": {"model": "bench"}},
            "fim": {"mode": "separate"},
        }}}),
    );
    if init.get("result").is_none() {
        return Err(format!("initialize: {init}"));
    }
    let uri = "file:///bench/big.rs";
    let text = document();
    sidecar.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": uri, "languageId": "rust", "version": 0, "text": text}}),
    );
    let mut rng = fastrand::Rng::with_seed(18);
    let started = Instant::now();
    for version in 1..=EDITS {
        let line = rng.u32(0..LINES as u32);
        let change = if rng.bool() {
            json!({"range": {"start": {"line": line, "character": 4}, "end": {"line": line, "character": 4}}, "text": "x"})
        } else {
            json!({"range": {"start": {"line": line, "character": 4}, "end": {"line": line, "character": 5}}, "text": ""})
        };
        sidecar.notify(
            "textDocument/didChange",
            json!({"textDocument": {"uri": uri, "version": version}, "contentChanges": [change]}),
        );
    }
    // Notifications are applied in order: once a later request is answered, all are.
    sidecar.call("llm/presets", json!({}));
    let edits_ms = started.elapsed().as_secs_f64() * 1e3;

    let mut round_trips = Vec::new();
    let mut added = Vec::new();
    let mut server = Vec::new();
    let mut cpu_before = f64::NAN;
    for i in 0..WARM_UP + COMPLETIONS {
        if i == WARM_UP {
            cpu_before = sidecar.cpu_us();
        }
        let line = rng.u32(0..LINES as u32);
        let params = json!({
            "textDocument": {"uri": uri},
            "position": {"line": line, "character": 4},
            "context": {"triggerKind": 1},
        });
        let before = held.lock().unwrap().len();
        let start = Instant::now();
        let answer = sidecar.call("textDocument/inlineCompletion", params);
        let round_trip = start.elapsed().as_secs_f64() * 1e6;
        if answer["result"]["items"][0]["insertText"] != "compute(1)" {
            return Err(format!("inline completion {i}: {answer}"));
        }
        let held_us = held.lock().unwrap()[before..].iter().sum::<f64>();
        if i >= WARM_UP {
            round_trips.push(round_trip);
            server.push(held_us);
            added.push(round_trip - held_us);
        }
    }

    let cpu_per_completion = (sidecar.cpu_us() - cpu_before) / COMPLETIONS as f64;

    // The HTTP-only floor, with a body of the size the sidecar sent.
    let mut stream = BufReader::new(TcpStream::connect(address).unwrap());
    stream.get_ref().set_nodelay(true).unwrap();
    let prefix: String = document().lines().take(100).collect::<Vec<_>>().join("\n");
    let body = serde_json::to_vec(
        &json!({"model": "bench", "prompt": prefix, "suffix": "x", "max_tokens": 128}),
    )
    .unwrap();
    let floor: Vec<f64> = (0..WARM_UP + COMPLETIONS)
        .map(|_| post_once(&mut stream, &body))
        .skip(WARM_UP)
        .collect();

    println!(
        "inline completion on a {LINES}-line document ({} KiB) after {EDITS} incremental edits, {COMPLETIONS} requests:",
        text.len() / 1024
    );
    summary("round trip (bench → sidecar → server → bench)", round_trips);
    summary("server's own time", server);
    summary("added by the sidecar (round trip − server)", added);
    summary("HTTP-only floor (bench → server, same body)", floor);
    println!("  the sidecar's CPU (all threads) per completion: {cpu_per_completion:.0} µs");
    println!(
        "  {EDITS} didChange applied in {edits_ms:.1} ms (written, then a request answered after them)"
    );
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "  load average during the run: {} ({} cores)",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    Ok(())
}

fn memory() -> Result<(), String> {
    let mut sidecar = Sidecar::spawn();
    sidecar.call("initialize", json!({"capabilities": {}}));
    sidecar.call("llm/presets", json!({}));
    std::thread::sleep(Duration::from_millis(200));
    let idle = sidecar.rss_mib("VmRSS:");
    let line = "fn item() { let s = \"中文 😀\"; }\n";
    let text: String = line.repeat(DOCUMENT_BYTES / line.len());
    for i in 0..DOCUMENTS {
        sidecar.notify(
            "textDocument/didOpen",
            json!({"textDocument": {"uri": format!("file:///bench/doc{i}.rs"), "languageId": "rust", "version": 0, "text": text}}),
        );
    }
    let answer = sidecar.call("llm/presets", json!({}));
    if answer.get("result").is_none() {
        return Err(format!("llm/presets: {answer}"));
    }
    std::thread::sleep(Duration::from_millis(200));
    let open = sidecar.rss_mib("VmRSS:");
    let peak = sidecar.rss_mib("VmHWM:");
    println!(
        "memory: {DOCUMENTS} open documents of {} KB each ({:.1} MiB of text):",
        text.len() / 1000,
        (DOCUMENTS * text.len()) as f64 / (1024.0 * 1024.0)
    );
    println!(
        "  RSS idle {idle:.1} MiB, with the documents open {open:.1} MiB: {:+.1} MiB above idle (peak {peak:.1} MiB)",
        open - idle
    );
    for i in 0..DOCUMENTS {
        sidecar.notify(
            "textDocument/didClose",
            json!({"textDocument": {"uri": format!("file:///bench/doc{i}.rs")}}),
        );
    }
    sidecar.call("llm/presets", json!({}));
    std::thread::sleep(Duration::from_millis(200));
    println!(
        "  after didClose of all of them: {:.1} MiB ({:+.1} MiB above idle)",
        sidecar.rss_mib("VmRSS:"),
        sidecar.rss_mib("VmRSS:") - idle
    );
    Ok(())
}

fn main() -> ExitCode {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the server");
    let address = listener.local_addr().unwrap();
    let held: Held = Arc::default();
    let serving = held.clone();
    std::thread::spawn(move || serve(listener, serving));
    let url = format!("http://{address}/v1/completions");
    let mut ok = true;
    for result in [latency(&url, &held, address), memory()] {
        if let Err(e) = result {
            eprintln!("FAILED: {e}");
            ok = false;
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
