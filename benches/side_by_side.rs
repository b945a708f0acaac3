//! The sidecar side by side with what an extension author would write instead, in one run:
//! CPU per chunk, chunks/s, added latency, 256 concurrent streams, start-up and memory.
//!
//! One local OpenAI-style SSE server (loopback, raw tokio, its own thread) serves the same bytes
//! to every client:
//! - `/burst?n=N`: N events `data: {"choices":[{"index":0,"delta":{"content":"tok<i> "}}]}` and
//!   `data: [DONE]` in one body, written as fast as the socket takes them;
//! - `/paced?n=N&gap_us=G`: one event every G µs, each its own HTTP chunk, its text stamped with
//!   the nanoseconds since one process-wide `Instant` just before it is written.
//!
//! Clients:
//! - **sidecar**: the release binary over pipes, `llm/complete` with a `streamId`, as an IDE does;
//! - **floor**: the same decode + extract in-process (reqwest, the crate's `BodyDecoder` and
//!   `Extractor`), no JSON-RPC and no pipe; for CPU, this bench binary re-run as a child process;
//! - **node**: `benches/node/client.mjs` (`fetch` + `eventsource-parser` + `jsonpath-plus`),
//!   installed with `npm ci` by `benches/run.sh`; skipped when `node_modules` is missing;
//! - **curl**: `curl -s -o /dev/null`, the raw I/O floor.
//!
//! CPU is user+sys of the client's process: for one-shot processes (floor, node, curl) the
//! `wait4` rusage of an N-chunk run minus that of a 1-chunk run; for the sidecar the on-CPU time of
//! all its threads (`/proc/<pid>/task/*/schedstat`) around one completion, after a warm-up one.
//! Instructions per chunk come from `valgrind --tool=callgrind` (when installed): the sidecar's
//! total for 20 000 chunks minus that for 2 000, over 18 000.
//!
//! Nothing is asserted about times; the exit status is 1 only when a stream is wrong or short.
//! Environment: `LLM_SIDECAR_BIN` benchmarks another build; `SIDE_BY_SIDE_RUNS` (default 3).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitCode, Stdio};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use llm_sidecar::decode::{BodyDecoder, ResponseType};
use llm_sidecar::extract::{CompiledPath, Extractor, Outcome};
use llm_sidecar::rpc::frame::{Frame, FrameCodec};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::Decoder;

static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);
const PATH: &str = "$.choices[0].delta.content";
const CONC_STREAMS: usize = 256;
const CONC_EVENTS: u64 = 50;
const CONC_GAP_US: u64 = 20_000;

// ------------------------------------------------------------------------------------------
// The server
// ------------------------------------------------------------------------------------------

fn event(text: &str) -> String {
    format!("data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{text}\"}}}}]}}\n\n")
}

fn query(path: &str, key: &str) -> Option<u64> {
    let (_, q) = path.split_once('?')?;
    q.split('&')
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
}

async fn serve(listener: TcpListener) {
    let bodies: Arc<Mutex<HashMap<u64, Arc<Vec<u8>>>>> = Arc::default();
    loop {
        let Ok((socket, _)) = listener.accept().await else {
            continue;
        };
        let _ = socket.set_nodelay(true);
        let bodies = bodies.clone();
        tokio::spawn(async move {
            let _ = connection(socket, bodies).await;
        });
    }
}

async fn connection(
    mut socket: TcpStream,
    bodies: Arc<Mutex<HashMap<u64, Arc<Vec<u8>>>>>,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    loop {
        // One request: headers, then Content-Length bytes of body.
        let head_end = loop {
            if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            let mut chunk = [0u8; 8192];
            let n = socket.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let length = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse::<usize>().ok())?
            })
            .unwrap_or(0);
        while buf.len() < head_end + length {
            let mut chunk = [0u8; 8192];
            let n = socket.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        buf.drain(..head_end + length);
        let target = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
        let n = query(&target, "n").unwrap_or(1);
        if target.starts_with("/burst") {
            let body = bodies
                .lock()
                .unwrap()
                .entry(n)
                .or_insert_with(|| {
                    let mut body = String::new();
                    for i in 0..n {
                        body.push_str(&event(&format!("tok{i} ")));
                    }
                    body.push_str("data: [DONE]\n\n");
                    Arc::new(body.into_bytes())
                })
                .clone();
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            socket.write_all(head.as_bytes()).await?;
            socket.write_all(&body).await?;
        } else {
            let gap = Duration::from_micros(query(&target, "gap_us").unwrap_or(10_000));
            socket
                .write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n",
                )
                .await?;
            let start = tokio::time::Instant::now();
            for i in 0..n {
                tokio::time::sleep_until(start + gap * i as u32).await;
                let ns = EPOCH.elapsed().as_nanos();
                let e = event(&format!("tok{i}@{ns} "));
                let chunk = format!("{:x}\r\n{e}\r\n", e.len());
                socket.write_all(chunk.as_bytes()).await?;
            }
            let done = "data: [DONE]\n\n";
            let chunk = format!("{:x}\r\n{done}\r\n0\r\n\r\n", done.len());
            socket.write_all(chunk.as_bytes()).await?;
        }
    }
}

// ------------------------------------------------------------------------------------------
// Process measurements
// ------------------------------------------------------------------------------------------

/// Waits for `child`; returns its user+sys CPU in µs.
fn wait_cpu_us(child: &mut Child) -> f64 {
    let mut status = 0;
    // SAFETY: plain syscall on our own child's pid with valid pointers.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = child.id() as libc::pid_t;
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid, "wait4");
    let us = |t: libc::timeval| t.tv_sec as f64 * 1e6 + t.tv_usec as f64;
    us(usage.ru_utime) + us(usage.ru_stime)
}

/// On-CPU ns of every thread of `pid` so far.
fn threads_cpu_ns(pid: u32) -> f64 {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return f64::NAN;
    };
    dir.filter_map(|t| {
        let t = t.ok()?;
        let s = std::fs::read_to_string(t.path().join("schedstat")).ok()?;
        s.split_whitespace().next()?.parse::<f64>().ok()
    })
    .sum()
}

/// `VmRSS` or `VmHWM` of `pid`, in MiB.
fn status_mib(pid: u32, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix(field)?
                    .trim()
                    .strip_suffix("kB")?
                    .trim()
                    .parse::<f64>()
                    .ok()
            })
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

// ------------------------------------------------------------------------------------------
// The sidecar over pipes (blocking)
// ------------------------------------------------------------------------------------------

struct Sidecar {
    child: Child,
    stdin: ChildStdin,
    stdout: ChildStdout,
    buf: BytesMut,
    codec: FrameCodec,
}

fn binary() -> String {
    std::env::var("LLM_SIDECAR_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_llm-sidecar").to_owned())
}

impl Sidecar {
    fn spawn(prefix: &[&str], stderr: Stdio) -> Sidecar {
        let bin = binary();
        let (program, args): (&str, Vec<&str>) = match prefix.split_first() {
            Some((p, rest)) => (p, rest.iter().copied().chain([bin.as_str()]).collect()),
            None => (bin.as_str(), Vec::new()),
        };
        let mut child = Command::new(program)
            .args(args)
            .env_remove("LLM_SIDECAR_LOG")
            .env_remove("RUST_LOG")
            .env_remove("http_proxy")
            .env_remove("HTTP_PROXY")
            .env_remove("all_proxy")
            .env_remove("ALL_PROXY")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn the sidecar");
        Sidecar {
            stdin: child.stdin.take().unwrap(),
            stdout: child.stdout.take().unwrap(),
            child,
            buf: BytesMut::with_capacity(1 << 16),
            codec: FrameCodec::default(),
        }
    }

    fn send(&mut self, message: &Value) {
        let body = serde_json::to_vec(message).unwrap();
        let mut frame = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
        frame.extend_from_slice(&body);
        self.stdin.write_all(&frame).expect("write to the sidecar");
    }

    /// The next message and when it was parsed.
    fn next(&mut self) -> Option<(Value, Instant)> {
        loop {
            if let Some(Frame::Message(body)) = self.codec.decode(&mut self.buf).ok()? {
                let value = serde_json::from_slice(&body).ok()?;
                return Some((value, Instant::now()));
            }
            let mut chunk = [0u8; 1 << 16];
            let n = self.stdout.read(&mut chunk).ok()?;
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    fn initialize(&mut self) {
        self.send(&json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {}}));
        while let Some((m, _)) = self.next() {
            if m["id"] == 0 {
                return;
            }
        }
        panic!("no initialize answer");
    }

    fn request(&mut self, id: u64, url: &str) {
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": "llm/complete", "params": {
            "streamId": id.to_string(),
            "settings": {
                "customEngineServer": url,
                "customEngineResponseType": "SSE",
                "customEngineRequestFormat": "{\"customFields\": {\"model\": \"bench\", \"stream\": true}}",
                "customEngineResponseFormat": PATH,
            },
            "messages": [{"role": "user", "content": "hi"}],
        }}));
    }

    /// One completion; returns the chunks' texts with their receipt times.
    fn complete(&mut self, url: &str, id: u64) -> Result<Vec<(String, Instant)>, String> {
        self.request(id, url);
        let mut chunks = Vec::new();
        while let Some((m, seen)) = self.next() {
            if m["method"] == "llm/chunk" {
                chunks.push((m["params"]["text"].as_str().unwrap_or("").to_owned(), seen));
            } else if m["id"] == id {
                if m["result"]["chunks"].as_u64() != Some(chunks.len() as u64) {
                    return Err(format!("sidecar: {m}"));
                }
                return Ok(chunks);
            }
        }
        Err("the sidecar closed stdout".to_owned())
    }

    /// `shutdown`, `exit`; returns the process's total CPU (µs).
    fn finish(mut self) -> f64 {
        self.send(&json!({"jsonrpc": "2.0", "id": 999_999, "method": "shutdown"}));
        self.send(&json!({"jsonrpc": "2.0", "method": "exit"}));
        drop(self.stdin);
        let mut rest = Vec::new();
        let _ = self.stdout.read_to_end(&mut rest);
        wait_cpu_us(&mut self.child)
    }
}

// ------------------------------------------------------------------------------------------
// The in-process floor: the same decode + extract, no JSON-RPC, no pipe
// ------------------------------------------------------------------------------------------

async fn floor_stream(
    client: &reqwest::Client,
    url: &str,
) -> Result<(Vec<(String, Instant)>, Instant), String> {
    let issued = Instant::now();
    let mut response = client
        .post(url)
        .body(r#"{"model":"bench","stream":true,"messages":[{"role":"user","content":"hi"}]}"#)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let path = CompiledPath::compile(PATH).map_err(|e| e.to_string())?;
    let mut decoder = BodyDecoder::new(ResponseType::Sse, 1 << 20, usize::MAX);
    let mut extractor = Extractor::new(Some(&path), None);
    let mut events = Vec::new();
    let mut chunks = Vec::new();
    loop {
        let read = response.chunk().await.map_err(|e| e.to_string())?;
        match &read {
            Some(bytes) => decoder.feed(bytes, &mut events),
            None => decoder.finish(&mut events),
        }
        .map_err(|e| e.to_string())?;
        for e in events.drain(..) {
            match extractor.apply(&e) {
                Outcome::Text(p) if !p.content.is_empty() => {
                    chunks.push((p.content, Instant::now()));
                }
                Outcome::Text(_) => {}
                Outcome::Done => return Ok((chunks, issued)),
                other => return Err(format!("{other:?}")),
            }
        }
        if read.is_none() {
            return Ok((chunks, issued));
        }
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// The floor as a process of its own (`floor URL N`): prints `chunks ns`.
fn floor_main(url: &str) -> ExitCode {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    match runtime.block_on(async { floor_stream(&client(), url).await }) {
        Ok((chunks, issued)) => {
            let last = chunks.last().map_or(issued, |c| c.1);
            println!("{} {}", chunks.len(), (last - issued).as_nanos());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("floor: {e}");
            ExitCode::FAILURE
        }
    }
}

// ------------------------------------------------------------------------------------------
// Phases
// ------------------------------------------------------------------------------------------

struct Report {
    errors: Vec<String>,
}

impl Report {
    fn line(&mut self, s: String) {
        println!("{s}");
    }
}

/// One-shot process: its CPU (µs) and what it printed.
fn one_shot(program: &str, args: &[String]) -> Result<(f64, String), String> {
    let mut child = Command::new(program)
        .args(args)
        .env_remove("http_proxy")
        .env_remove("HTTP_PROXY")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("{program}: {e}"))?;
    let mut out = String::new();
    child.stdout.take().unwrap().read_to_string(&mut out).ok();
    let cpu = wait_cpu_us(&mut child);
    Ok((cpu, out.trim().to_owned()))
}

/// (chunks, wall ns) from what a client printed: `{"chunks","ns"}` (node),
/// `chunks ns` (floor), or curl's `time_total` in seconds.
fn printed(name: &str, out: &str, n: u64) -> (u64, f64) {
    if name == "curl" {
        return (n, out.parse::<f64>().map_or(f64::NAN, |s| s * 1e9));
    }
    if let Ok(v) = serde_json::from_str::<Value>(out) {
        return (
            v["chunks"].as_u64().unwrap_or(0),
            v["ns"].as_f64().unwrap_or(f64::NAN),
        );
    }
    let mut parts = out.split_whitespace();
    let chunks = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let ns = parts
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(f64::NAN);
    (chunks, ns)
}

/// The burst's pieces (`tok<i> `) in the chunks received, however they were merged.
fn pieces(chunks: &[(String, Instant)]) -> u64 {
    chunks
        .iter()
        .map(|(text, _)| text.matches("tok").count() as u64)
        .sum()
}

fn unpaced(report: &mut Report, port: u16, runs: usize, node: Option<&str>) {
    let me = std::env::current_exe().unwrap().display().to_string();
    for n in [20_000u64, 200_000] {
        let url = |n: u64| format!("http://127.0.0.1:{port}/burst?n={n}");
        let mut cpu: HashMap<&str, Vec<f64>> = HashMap::new();
        let mut rate: HashMap<&str, Vec<f64>> = HashMap::new();
        for _ in 0..runs {
            // The sidecar: on-CPU time of its threads around one warm completion.
            let mut s = Sidecar::spawn(&[], Stdio::null());
            s.initialize();
            let _ = s.complete(&url(1), 1);
            let before = threads_cpu_ns(s.child.id());
            let issued = Instant::now();
            match s.complete(&url(n), 2) {
                // A reader slower than the sidecar gets pieces merged (the
                // back-pressure rule): count the pieces, not the frames.
                Ok(chunks) if pieces(&chunks) == n => {
                    let after = threads_cpu_ns(s.child.id());
                    let wall = chunks.last().unwrap().1 - issued;
                    cpu.entry("sidecar")
                        .or_default()
                        .push((after - before) / 1e3 / n as f64);
                    rate.entry("sidecar")
                        .or_default()
                        .push(n as f64 / wall.as_secs_f64());
                }
                Ok(chunks) => report
                    .errors
                    .push(format!("sidecar: {} of {n} chunks", pieces(&chunks))),
                Err(e) => report.errors.push(e),
            }
            s.finish();
            // One-shot processes: an N-chunk run minus a 1-chunk run.
            let mut clients: Vec<(&str, String, Vec<String>)> = vec![
                ("floor", me.clone(), vec!["floor".into()]),
                (
                    "curl",
                    "curl".into(),
                    vec![
                        "-s".into(),
                        "-o".into(),
                        "/dev/null".into(),
                        "-w".into(),
                        "%{time_total}".into(),
                        "--noproxy".into(),
                        "*".into(),
                        "-d".into(),
                        "{}".into(),
                    ],
                ),
            ];
            if let Some(script) = node {
                clients.push(("node", "node".into(), vec![script.to_owned()]));
            }
            for (name, program, args) in clients {
                let run = |k: u64| {
                    let mut a = args.clone();
                    a.push(url(k));
                    if name == "node" {
                        a.push(k.to_string());
                    }
                    one_shot(&program, &a)
                };
                match (run(1), run(n)) {
                    (Ok((c1, _)), Ok((cn, out))) => {
                        let (chunks, ns) = printed(name, &out, n);
                        if chunks != n {
                            report
                                .errors
                                .push(format!("{name}: {chunks} of {n} chunks"));
                            continue;
                        }
                        cpu.entry(name).or_default().push((cn - c1) / n as f64);
                        rate.entry(name).or_default().push(n as f64 / (ns / 1e9));
                    }
                    (Err(e), _) | (_, Err(e)) => report.errors.push(e),
                }
            }
        }
        report.line(format!(
            "-- 1 stream, {n} chunks in one body, unpaced (median of {runs})"
        ));
        report.line(format!(
            "{:<10} {:>14} {:>15} {:>12} {:>22}",
            "client", "CPU us/chunk", "wall us/chunk", "chunks/s", "sidecar CPU / its CPU"
        ));
        let sidecar = median(cpu.get("sidecar").cloned().unwrap_or_default());
        for name in ["sidecar", "floor", "node", "curl"] {
            let Some(c) = cpu.get(name) else { continue };
            let c = median(c.clone());
            let r = median(rate.get(name).cloned().unwrap_or_default());
            let ratio = match name {
                "sidecar" => "-".to_owned(),
                // curl does no parsing: its CPU is within the noise of the subtraction.
                "curl" => "(I/O only)".to_owned(),
                _ => format!("{:.2}x", sidecar / c),
            };
            report.line(format!(
                "{name:<10} {c:>14.3} {:>15.3} {r:>12.0} {ratio:>22}",
                1e6 / r
            ));
        }
    }
}

/// Latency (µs) of every chunk: receipt − stamp.
fn latencies(chunks: &[(String, Instant)]) -> Vec<f64> {
    let mut v: Vec<f64> = chunks
        .iter()
        .filter_map(|(text, seen)| {
            let ns: u64 = text.split('@').nth(1)?.trim().parse().ok()?;
            let stamp = *EPOCH + Duration::from_nanos(ns);
            Some(seen.saturating_duration_since(stamp).as_secs_f64() * 1e6)
        })
        .collect();
    v.sort_by(f64::total_cmp);
    v
}

fn paced(report: &mut Report, port: u16, runtime: &tokio::runtime::Runtime) {
    for (rate, n) in [(100u64, 300u64), (1000, 2000)] {
        let url = format!(
            "http://127.0.0.1:{port}/paced?n={n}&gap_us={}",
            1_000_000 / rate
        );
        let mut s = Sidecar::spawn(&[], Stdio::null());
        s.initialize();
        let _ = s.complete(&format!("http://127.0.0.1:{port}/burst?n=1"), 1);
        let side = match s.complete(&url, 2) {
            Ok(c) if c.len() as u64 == n => latencies(&c),
            Ok(c) => {
                report
                    .errors
                    .push(format!("paced sidecar: {} of {n}", c.len()));
                Vec::new()
            }
            Err(e) => {
                report.errors.push(e);
                Vec::new()
            }
        };
        s.finish();
        let floor = runtime.block_on(async {
            let client = client();
            let _ = floor_stream(&client, &format!("http://127.0.0.1:{port}/burst?n=1")).await;
            floor_stream(&client, &url).await
        });
        let floor = match floor {
            Ok((c, _)) => latencies(&c),
            Err(e) => {
                report.errors.push(e);
                Vec::new()
            }
        };
        report.line(format!("-- added latency per chunk, server write -> chunk parsed, {rate} chunks/s, {n} chunks (us)"));
        report.line(format!(
            "{:<12} {:>9} {:>9} {:>9}",
            "client", "p50", "p99", "max"
        ));
        for (name, v) in [("sidecar", &side), ("in-process", &floor)] {
            report.line(format!(
                "{name:<12} {:>9.1} {:>9.1} {:>9.1}",
                percentile(v, 0.5),
                percentile(v, 0.99),
                percentile(v, 1.0)
            ));
        }
        report.line(format!(
            "{:<12} {:>9.1} {:>9.1} {:>9.1}",
            "added",
            percentile(&side, 0.5) - percentile(&floor, 0.5),
            percentile(&side, 0.99) - percentile(&floor, 0.99),
            percentile(&side, 1.0) - percentile(&floor, 1.0)
        ));
    }
}

fn concurrent(report: &mut Report, port: u16, runtime: &tokio::runtime::Runtime) {
    let url = format!("http://127.0.0.1:{port}/paced?n={CONC_EVENTS}&gap_us={CONC_GAP_US}");
    let mut s = Sidecar::spawn(&[], Stdio::null());
    s.initialize();
    let _ = s.complete(&format!("http://127.0.0.1:{port}/burst?n=1"), 1);
    std::thread::sleep(Duration::from_millis(300));
    let pid = s.child.id();
    let idle = status_mib(pid, "VmRSS:");
    let before = threads_cpu_ns(pid);
    let issued = Instant::now();
    for i in 0..CONC_STREAMS as u64 {
        s.request(100 + i, &url);
    }
    let mut first: HashMap<u64, Instant> = HashMap::new();
    let mut counts: HashMap<u64, u64> = HashMap::new();
    let mut done = 0;
    let mut peak = 0f64;
    while done < CONC_STREAMS {
        let Some((m, seen)) = s.next() else { break };
        if m["method"] == "llm/chunk" {
            let id: u64 = m["params"]["streamId"]
                .as_str()
                .unwrap_or("0")
                .parse()
                .unwrap_or(0);
            first.entry(id).or_insert(seen);
            *counts.entry(id).or_default() += 1;
            if counts[&id].is_multiple_of(10) {
                peak = peak.max(status_mib(pid, "VmRSS:"));
            }
        } else if m["id"].as_u64().is_some_and(|id| id >= 100) {
            done += 1;
        }
    }
    let cpu = threads_cpu_ns(pid) - before;
    let hwm = status_mib(pid, "VmHWM:");
    std::thread::sleep(Duration::from_millis(1000));
    let after = status_mib(pid, "VmRSS:");
    s.finish();
    let total: u64 = counts.values().sum();
    if total != CONC_STREAMS as u64 * CONC_EVENTS {
        report
            .errors
            .push(format!("concurrent sidecar: {total} chunks"));
    }
    let mut ttfc: Vec<f64> = first
        .values()
        .map(|t| (*t - issued).as_secs_f64() * 1e3)
        .collect();
    ttfc.sort_by(f64::total_cmp);
    let floor_ttfc = runtime.block_on(async {
        let client = client();
        let _ = floor_stream(&client, &format!("http://127.0.0.1:{port}/burst?n=1")).await;
        let tasks: Vec<_> = (0..CONC_STREAMS)
            .map(|_| {
                let (client, url) = (client.clone(), url.clone());
                tokio::spawn(async move {
                    let (chunks, issued) = floor_stream(&client, &url).await?;
                    Ok::<_, String>(
                        (chunks.first().ok_or("no chunk")?.1 - issued).as_secs_f64() * 1e3,
                    )
                })
            })
            .collect();
        let mut v = Vec::new();
        for t in tasks {
            if let Ok(Ok(ms)) = t.await {
                v.push(ms);
            }
        }
        v.sort_by(f64::total_cmp);
        v
    });
    report.line(format!(
        "-- {CONC_STREAMS} concurrent streams x {CONC_EVENTS} chunks, 1 every {} ms each, one sidecar",
        CONC_GAP_US / 1000
    ));
    report.line(format!(
        "sidecar CPU per chunk (us)             {:>9.2}",
        cpu / 1e3 / total.max(1) as f64
    ));
    report.line(format!(
        "time to first chunk p50 / p99 (ms)     sidecar {:.2} / {:.2}   in-process {:.2} / {:.2}   p99 ratio {:.2}x",
        percentile(&ttfc, 0.5),
        percentile(&ttfc, 0.99),
        percentile(&floor_ttfc, 0.5),
        percentile(&floor_ttfc, 0.99),
        percentile(&ttfc, 0.99) / percentile(&floor_ttfc, 0.99)
    ));
    report.line(format!(
        "RSS (MiB): idle before {idle:.1}, peak {:.1} (sampled {peak:.1}), 1 s after the end {after:.1} (+{:.1} over idle)",
        hwm,
        after - idle
    ));
}

fn startup(report: &mut Report, runs: usize) {
    let mut times = Vec::new();
    let mut rss = Vec::new();
    for _ in 0..runs.max(5) * 2 {
        let t = Instant::now();
        let mut s = Sidecar::spawn(&[], Stdio::null());
        s.initialize();
        times.push(t.elapsed().as_secs_f64() * 1e3);
        std::thread::sleep(Duration::from_millis(100));
        rss.push(status_mib(s.child.id(), "VmRSS:"));
        s.finish();
    }
    report.line(format!(
        "-- start-up: spawn -> initialize answered {:.2} ms (median of {}), idle RSS {:.1} MiB",
        median(times.clone()),
        times.len(),
        median(rss)
    ));
}

/// Instructions the sidecar executes per chunk, from callgrind.
fn instructions(report: &mut Report, port: u16) {
    if Command::new("valgrind").arg("--version").output().is_err() {
        report.line("-- callgrind: valgrind is not installed; skipped".to_owned());
        return;
    }
    let mut totals = Vec::new();
    for n in [2_000u64, 20_000] {
        let log = std::env::temp_dir().join(format!("side_by_side_callgrind_{n}.log"));
        let file = std::fs::File::create(&log).unwrap();
        let mut s = Sidecar::spawn(
            &[
                "valgrind",
                "--tool=callgrind",
                "--callgrind-out-file=/dev/null",
            ],
            Stdio::from(file),
        );
        s.initialize();
        if let Err(e) = s.complete(&format!("http://127.0.0.1:{port}/burst?n={n}"), 1) {
            report.errors.push(format!("callgrind: {e}"));
        }
        s.finish();
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let total = text
            .lines()
            .find_map(|l| l.split("Collected :").nth(1)?.trim().parse::<f64>().ok());
        totals.push(total.unwrap_or(f64::NAN));
    }
    report.line(format!(
        "-- callgrind: sidecar instructions per chunk {:.0} ((I(20000) - I(2000)) / 18000; totals {:.0} and {:.0})",
        (totals[1] - totals[0]) / 18_000.0,
        totals[0],
        totals[1]
    ));
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("floor") {
        return floor_main(&args[2]);
    }
    LazyLock::force(&EPOCH);
    let runs = std::env::var("SIDE_BY_SIDE_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    // A listen backlog for 256 simultaneous connects (the default 128 drops SYNs, whose
    // retransmission adds a whole second to some streams' first chunk).
    let (port_tx, port_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async move {
                let socket = tokio::net::TcpSocket::new_v4().unwrap();
                socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
                let listener = socket.listen(1024).unwrap();
                port_tx.send(listener.local_addr().unwrap().port()).unwrap();
                serve(listener).await
            });
    });
    let port = port_rx.recv().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let node = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/node/client.mjs");
    let node = std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/benches/node/node_modules"
    ))
    .exists()
    .then_some(node);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "side_by_side: sidecar {}; {} cpus; load {}",
        binary(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    if node.is_none() {
        println!(
            "(benches/node/node_modules is missing: run benches/run.sh, or npm ci in benches/node; node skipped)"
        );
    }
    let mut report = Report { errors: Vec::new() };
    let begun = Instant::now();
    unpaced(&mut report, port, runs, node);
    paced(&mut report, port, &runtime);
    concurrent(&mut report, port, &runtime);
    startup(&mut report, runs);
    instructions(&mut report, port);
    println!("total {:.0} s", begun.elapsed().as_secs_f64());
    if report.errors.is_empty() {
        println!("all streams complete and correct");
        ExitCode::SUCCESS
    } else {
        for e in &report.errors {
            eprintln!("error: {e}");
        }
        ExitCode::FAILURE
    }
}
