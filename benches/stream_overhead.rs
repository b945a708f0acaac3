//! What the sidecar adds to the delivery of streamed text, measured side by side in one run.
//!
//! A local OpenAI-style SSE server (raw tokio, HTTP/1.1 chunked, `TCP_NODELAY`, loopback only)
//! streams `data: {"choices":[{"index":0,"delta":{"content":"tok<seq>@<ns> "}}]}` events, each
//! stamped with the nanoseconds since one process-wide `Instant` taken just before the event is
//! written to the socket, then `data: [DONE]`. The query string of the URL picks the number of
//! events and the gap between them, so the sidecar needs nothing but the URL.
//!
//! Two clients read the same streams:
//! - **baseline**: in-process `reqwest`, the body through `SseDecoder`, each event through
//!   `serde_json`, the content taken out: the least any client must do;
//! - **sidecar**: the release binary spawned over pipes, `llm/complete` with a `streamId`,
//!   `llm/chunk` notifications read with `FrameCodec` and parsed with `serde_json`.
//!
//! A piece of text is "seen" when the client has parsed the message holding it. Latency of an
//! event = seen − stamped. Every stream's text is checked token by token (sequence numbers 0..N in
//! order, nothing missing, nothing extra, the sidecar's final `text` and `chunks` equal to what was
//! streamed); any mismatch makes the program exit with status 1. No time is asserted.
//!
//! Environment: `LLM_SIDECAR_BIN` runs another build of the binary; `STREAM_BENCH_RUNS` and
//! `STREAM_BENCH_CONC_RUNS` change the number of repetitions (defaults 5 and 3).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::pin::Pin;
use std::process::{ExitCode, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use llm_sidecar::decode::sse::{SseDecoder, SseItem};
use llm_sidecar::rpc::frame::{Frame, FrameCodec};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::oneshot;
use tokio::time::{MissedTickBehavior, interval_at, timeout};
use tokio_util::codec::{Encoder, FramedRead};

/// Single-stream paced run: events and gap (a fast model).
const PACED_EVENTS: u64 = 1000;
const PACED_GAP: Duration = Duration::from_millis(2);
/// The first stream of a fresh client: events (paced at `PACED_GAP`).
const COLD_EVENTS: u64 = 20;
/// Unpaced run: events sent as fast as the server can write them.
const UNPACED_EVENTS: u64 = 20_000;
/// Concurrency run: streams, events per stream, gap per stream.
const CONC_STREAMS: u64 = 256;
const CONC_EVENTS: u64 = 200;
const CONC_GAP: Duration = Duration::from_millis(20);
/// Any one stream (or batch of concurrent streams) taking longer than this is a failure.
const STREAM_LIMIT: Duration = Duration::from_secs(90);

/// The clock shared by the server (stamps) and both clients (receipt times).
static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

fn now_ns() -> u64 {
    EPOCH.elapsed().as_nanos() as u64
}

// ---------------------------------------------------------------------------------------------
// The SSE server
// ---------------------------------------------------------------------------------------------

async fn serve(listener: TcpListener) {
    loop {
        let Ok((socket, _)) = listener.accept().await else {
            continue;
        };
        let _ = socket.set_nodelay(true);
        tokio::spawn(connection(socket));
    }
}

/// Serves requests on one keep-alive connection until the client closes it.
async fn connection(mut socket: TcpStream) {
    let mut buf: Vec<u8> = Vec::with_capacity(8192);
    loop {
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            match socket.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let body_len = head
            .lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.trim().parse::<usize>().ok())
            .unwrap_or(0);
        while buf.len() < head_end + body_len {
            match socket.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
        buf.drain(..head_end + body_len);
        let target = head.split_whitespace().nth(1).unwrap_or("/");
        let (events, gap) = plan(target);
        if stream_events(&mut socket, events, gap).await.is_err() {
            return;
        }
    }
}

/// `?n=<events>&gap_us=<microseconds>` (gap 0: unpaced).
fn plan(target: &str) -> (u64, Option<Duration>) {
    let mut events = 10;
    let mut gap = None;
    let query = target.split_once('?').map_or("", |(_, q)| q);
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("n", v)) => events = v.parse().unwrap_or(events),
            Some(("gap_us", v)) => {
                gap = v
                    .parse()
                    .ok()
                    .filter(|us| *us > 0)
                    .map(Duration::from_micros)
            }
            _ => {}
        }
    }
    (events, gap)
}

async fn stream_events(
    socket: &mut TcpStream,
    events: u64,
    gap: Option<Duration>,
) -> std::io::Result<()> {
    socket
        .write_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\
              Transfer-Encoding: chunked\r\n\r\n",
        )
        .await?;
    // Event 0 goes out at once (a timer, even one already due, waits for the next 1 ms tick of
    // tokio's timer wheel); then one event per `gap`.
    let mut ticker = gap.map(|gap| {
        let mut ticker = interval_at(tokio::time::Instant::now() + gap, gap);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        ticker
    });
    let mut event = String::with_capacity(128);
    let mut wire: Vec<u8> = Vec::with_capacity(160);
    for seq in 0..events {
        if let Some(ticker) = ticker.as_mut().filter(|_| seq > 0) {
            ticker.tick().await;
        }
        event.clear();
        let stamp = now_ns();
        let _ = write!(
            event,
            "data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"tok{seq}@{stamp} \"}}}}]}}\n\n"
        );
        wire.clear();
        let _ = write!(wire, "{:x}\r\n{event}\r\n", event.len());
        socket.write_all(&wire).await?;
    }
    let done = "data: [DONE]\n\n";
    wire.clear();
    let _ = write!(wire, "{:x}\r\n{done}\r\n0\r\n\r\n", done.len());
    socket.write_all(&wire).await
}

fn url(port: u16, events: u64, gap: Option<Duration>) -> String {
    let gap_us = gap.map_or(0, |g| g.as_micros());
    format!("http://127.0.0.1:{port}/v1/chat/completions?n={events}&gap_us={gap_us}")
}

const REQUEST_BODY: &str =
    r#"{"model":"bench","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;

// ---------------------------------------------------------------------------------------------
// What a client saw of one stream, checked token by token
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Default)]
struct Tracker {
    expected: u64,
    next_seq: u64,
    /// Text not yet ending in a complete token.
    pending: String,
    text: String,
    /// Latency of each event, ns.
    latencies: Vec<u64>,
    /// When the client issued the request.
    started: u64,
    /// Stamp of event 0 (server side) and when it was seen.
    first_sent: Option<u64>,
    first_seen: Option<u64>,
    /// When the stream was complete (the response, or `[DONE]`).
    finished: u64,
    /// Messages (chunks or SSE events) that carried text.
    pieces: u64,
    error: Option<String>,
}

impl Tracker {
    fn new(expected: u64) -> Self {
        Tracker {
            expected,
            latencies: Vec::with_capacity(expected as usize),
            ..Tracker::default()
        }
    }

    fn fail(&mut self, why: String) {
        self.error.get_or_insert(why);
    }

    fn piece(&mut self, piece: &str, seen: u64) {
        self.pieces += 1;
        self.text.push_str(piece);
        self.pending.push_str(piece);
        while let Some(space) = self.pending.find(' ') {
            let token = self.pending[..space].to_owned();
            self.pending.drain(..=space);
            let parsed = token
                .strip_prefix("tok")
                .and_then(|t| t.split_once('@'))
                .and_then(|(seq, ns)| Some((seq.parse::<u64>().ok()?, ns.parse::<u64>().ok()?)));
            match parsed {
                Some((seq, stamp)) if seq == self.next_seq && seq < self.expected => {
                    if seq == 0 {
                        self.first_sent = Some(stamp);
                        self.first_seen = Some(seen);
                    }
                    self.latencies.push(seen.saturating_sub(stamp));
                    self.next_seq += 1;
                }
                _ => self.fail(format!(
                    "expected token {} of {}, got {token:?}",
                    self.next_seq, self.expected
                )),
            }
        }
    }

    /// The stream is over: everything must have arrived, nothing more.
    fn finish(mut self, at: u64) -> Result<Tracker, String> {
        self.finished = at;
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        if !self.pending.is_empty() {
            return Err(format!("trailing partial token {:?}", self.pending));
        }
        if self.next_seq != self.expected {
            return Err(format!(
                "incomplete: {} of {} tokens",
                self.next_seq, self.expected
            ));
        }
        Ok(self)
    }

    fn ttfc(&self) -> u64 {
        self.first_seen.unwrap_or(0).saturating_sub(self.started)
    }
}

// ---------------------------------------------------------------------------------------------
// Baseline: in-process reqwest
// ---------------------------------------------------------------------------------------------

fn baseline_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("reqwest client")
}

async fn baseline_stream(
    client: &reqwest::Client,
    url: &str,
    events: u64,
) -> Result<Tracker, String> {
    let mut tracker = Tracker::new(events);
    tracker.started = now_ns();
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .body(REQUEST_BODY)
        .send()
        .await
        .map_err(|e| format!("baseline request: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("baseline: HTTP {}", response.status()));
    }
    let mut body = response.bytes_stream();
    let mut decoder = SseDecoder::new(8 << 20);
    let mut buf = BytesMut::new();
    let mut done_at = None;
    while let Some(bytes) = body.next().await {
        let bytes = bytes.map_err(|e| format!("baseline body: {e}"))?;
        buf.extend_from_slice(&bytes);
        while let Some(item) = tokio_util::codec::Decoder::decode(&mut decoder, &mut buf)
            .map_err(|e| format!("baseline SSE: {e}"))?
        {
            let SseItem::Event(event) = item else {
                return Err(format!("baseline: stray SSE line {item:?}"));
            };
            if done_at.is_some() {
                return Err("baseline: event after [DONE]".to_owned());
            }
            if event.data == "[DONE]" {
                done_at = Some(now_ns());
                continue;
            }
            let value: Value =
                serde_json::from_str(&event.data).map_err(|e| format!("baseline JSON: {e}"))?;
            let text = value
                .pointer("/choices/0/delta/content")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("baseline: no content in {}", event.data))?;
            let seen = now_ns();
            tracker.piece(text, seen);
        }
    }
    let done_at = done_at.ok_or("baseline: the stream ended without [DONE]")?;
    tracker.finish(done_at)
}

// ---------------------------------------------------------------------------------------------
// Sidecar: the real binary over pipes
// ---------------------------------------------------------------------------------------------

fn binary() -> String {
    std::env::var("LLM_SIDECAR_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_llm-sidecar").to_owned())
}

/// Counts the reads of the sidecar's stdout, to see how frames are batched.
struct CountingReader {
    inner: ChildStdout,
    shared: Arc<Shared>,
}

impl AsyncRead for CountingReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.shared.reads.fetch_add(1, Ordering::Relaxed);
        }
        polled
    }
}

struct InFlight {
    tracker: Tracker,
    chunks: u64,
    done: Option<oneshot::Sender<Result<Tracker, String>>>,
}

#[derive(Default)]
struct Shared {
    inflight: Mutex<HashMap<u64, InFlight>>,
    reads: AtomicU64,
    frames: AtomicU64,
}

struct Sidecar {
    child: Child,
    pid: u32,
    stdin: tokio::sync::Mutex<Option<ChildStdin>>,
    shared: Arc<Shared>,
    next_id: AtomicU64,
    stderr: Arc<Mutex<String>>,
}

impl Sidecar {
    fn spawn() -> Sidecar {
        let mut command = Command::new(binary());
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for key in [
            "LLM_SIDECAR_LOG",
            "RUST_LOG",
            "HTTP_PROXY",
            "http_proxy",
            "HTTPS_PROXY",
            "https_proxy",
            "ALL_PROXY",
            "all_proxy",
            "NO_PROXY",
            "no_proxy",
        ] {
            command.env_remove(key);
        }
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {}: {e}", binary()));
        let pid = child.id().expect("child pid");
        let shared = Arc::new(Shared::default());
        let stdout = CountingReader {
            inner: child.stdout.take().expect("stdout"),
            shared: shared.clone(),
        };
        tokio::spawn(read_frames(stdout, shared.clone()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut child_stderr = child.stderr.take().expect("stderr");
        let log = stderr.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 8192];
            while let Ok(n) = child_stderr.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                let mut log = log.lock().unwrap();
                log.push_str(&String::from_utf8_lossy(&buf[..n]));
                if log.len() > 64 * 1024 {
                    let cut = log.len() - 16 * 1024;
                    let cut = (cut..log.len())
                        .find(|i| log.is_char_boundary(*i))
                        .unwrap_or(0);
                    log.drain(..cut);
                }
            }
        });
        Sidecar {
            stdin: tokio::sync::Mutex::new(child.stdin.take()),
            child,
            pid,
            shared,
            next_id: AtomicU64::new(1),
            stderr,
        }
    }

    async fn write(&self, message: &Value) -> Result<(), String> {
        let mut frame = BytesMut::new();
        FrameCodec::default()
            .encode(Bytes::from(message.to_string()), &mut frame)
            .map_err(|e| e.to_string())?;
        let mut stdin = self.stdin.lock().await;
        let stdin = stdin.as_mut().ok_or("stdin closed")?;
        stdin
            .write_all(&frame)
            .await
            .map_err(|e| format!("write to the sidecar: {e}"))
    }

    /// A request whose response is only checked for success (`initialize`).
    async fn call(&self, method: &str, params: Value) -> Result<Tracker, String> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        let mut tracker = Tracker::new(0);
        tracker.started = now_ns();
        self.shared.inflight.lock().unwrap().insert(
            id,
            InFlight {
                tracker,
                chunks: 0,
                done: Some(tx),
            },
        );
        self.write(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await?;
        match timeout(STREAM_LIMIT, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(format!(
                "the sidecar closed stdout; stderr:\n{}",
                self.stderr_tail()
            )),
            Err(_) => Err(format!("{method} timed out")),
        }
    }

    async fn complete(&self, url: &str, events: u64) -> Result<Tracker, String> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        let request = json!({"jsonrpc": "2.0", "id": id, "method": "llm/complete", "params": {
            "streamId": id,
            "settings": {
                "customEngineServer": url,
                "customEngineResponseType": "SSE",
                "customEngineRequestFormat": "{\"customFields\": {\"model\": \"bench\", \"stream\": true}}",
                "customEngineResponseFormat": "$.choices[0].delta.content"
            },
            "messages": [{"role": "user", "content": "hi"}]
        }});
        let mut tracker = Tracker::new(events);
        tracker.started = now_ns();
        self.shared.inflight.lock().unwrap().insert(
            id,
            InFlight {
                tracker,
                chunks: 0,
                done: Some(tx),
            },
        );
        self.write(&request).await?;
        match timeout(STREAM_LIMIT, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(format!(
                "the sidecar closed stdout; stderr:\n{}",
                self.stderr_tail()
            )),
            Err(_) => Err(format!("llm/complete {id} timed out")),
        }
    }

    fn stderr_tail(&self) -> String {
        let log = self.stderr.lock().unwrap();
        let start = log.len().saturating_sub(2000);
        let start = (start..log.len())
            .find(|i| log.is_char_boundary(*i))
            .unwrap_or(0);
        log[start..].to_owned()
    }

    /// (stdout reads, frames) so far.
    fn io_counts(&self) -> (u64, u64) {
        (
            self.shared.reads.load(Ordering::Relaxed),
            self.shared.frames.load(Ordering::Relaxed),
        )
    }

    async fn close(mut self) {
        self.stdin.lock().await.take();
        if timeout(Duration::from_secs(5), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}

/// The one reader of the sidecar's stdout: stamps, checks and routes every message.
async fn read_frames(stdout: CountingReader, shared: Arc<Shared>) {
    let mut frames = FramedRead::new(stdout, FrameCodec::default());
    while let Some(frame) = frames.next().await {
        let Ok(Frame::Message(body)) = frame else {
            eprintln!("bad frame from the sidecar: {frame:?}");
            break;
        };
        shared.frames.fetch_add(1, Ordering::Relaxed);
        let Ok(message) = serde_json::from_slice::<Value>(&body) else {
            eprintln!("a frame from the sidecar is not JSON");
            break;
        };
        let seen = now_ns();
        if message["method"] == "llm/chunk" {
            let params = &message["params"];
            let Some(id) = params["streamId"].as_u64() else {
                continue;
            };
            let mut inflight = shared.inflight.lock().unwrap();
            let Some(entry) = inflight.get_mut(&id) else {
                eprintln!("a chunk for an unknown stream {id}");
                continue;
            };
            if params["seq"].as_u64() != Some(entry.chunks) || params["kind"] != "content" {
                entry
                    .tracker
                    .fail(format!("chunk {} has seq/kind {params}", entry.chunks));
            }
            entry.chunks += 1;
            match params["text"].as_str() {
                Some(text) => entry.tracker.piece(text, seen),
                None => entry.tracker.fail(format!("chunk without text: {params}")),
            }
        } else if let Some(id) = message.get("id").and_then(Value::as_u64) {
            let Some(mut entry) = shared.inflight.lock().unwrap().remove(&id) else {
                continue;
            };
            let outcome = match (message.get("result"), message.get("error")) {
                (Some(_), None) if entry.tracker.expected == 0 => entry.tracker.finish(seen),
                (Some(result), None) => {
                    if result["text"].as_str() != Some(entry.tracker.text.as_str()) {
                        entry
                            .tracker
                            .fail("the response's text differs from the chunks".to_owned());
                    }
                    if result["chunks"].as_u64() != Some(entry.chunks) {
                        entry.tracker.fail(format!(
                            "the response counts {} chunks, {} were received",
                            result["chunks"], entry.chunks
                        ));
                    }
                    entry.tracker.finish(seen)
                }
                _ => Err(format!("request {id} failed: {message}")),
            };
            if let Some(done) = entry.done.take() {
                let _ = done.send(outcome);
            }
        }
    }
    // stdout closed: every waiter learns it through its dropped sender.
    shared.inflight.lock().unwrap().clear();
}

// ---------------------------------------------------------------------------------------------
// CPU time (Linux /proc; clock ticks of 10 ms)
// ---------------------------------------------------------------------------------------------

fn cpu_ms(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 of stat (utime, stime) are 12 and 13 after the command name.
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks * 10.0)
}

fn self_cpu_ms() -> f64 {
    cpu_ms("self").unwrap_or(f64::NAN)
}

// ---------------------------------------------------------------------------------------------
// Statistics
// ---------------------------------------------------------------------------------------------

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    if v.len() % 2 == 1 {
        v[v.len() / 2]
    } else {
        (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
    }
}

/// Per-run values of every metric, by (side, metric name).
#[derive(Default)]
struct Results {
    values: HashMap<(Side, &'static str), Vec<f64>>,
    errors: Vec<String>,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Side {
    Baseline,
    Sidecar,
}

impl Results {
    fn add(&mut self, side: Side, metric: &'static str, value: f64) {
        self.values.entry((side, metric)).or_default().push(value);
    }

    fn error(&mut self, what: &str, error: String) {
        eprintln!("FAILED: {what}: {error}");
        self.errors.push(format!("{what}: {error}"));
    }

    /// Latency percentiles of one run (µs).
    fn latencies(&mut self, side: Side, prefix: Prefix, mut all: Vec<u64>) {
        all.sort_unstable();
        let us = |ns: u64| ns as f64 / 1000.0;
        self.add(side, prefix.p50, us(percentile(&all, 50.0)));
        self.add(side, prefix.p90, us(percentile(&all, 90.0)));
        self.add(side, prefix.p99, us(percentile(&all, 99.0)));
        self.add(side, prefix.max, us(*all.last().unwrap_or(&0)));
    }

    fn get(&self, side: Side, metric: &str) -> Option<&Vec<f64>> {
        self.values
            .iter()
            .find(|((s, m), _)| *s == side && *m == metric)
            .map(|(_, v)| v)
    }
}

#[derive(Clone, Copy)]
struct Prefix {
    p50: &'static str,
    p90: &'static str,
    p99: &'static str,
    max: &'static str,
}

const PACED: Prefix = Prefix {
    p50: "paced p50",
    p90: "paced p90",
    p99: "paced p99",
    max: "paced max",
};
const CONC: Prefix = Prefix {
    p50: "conc p50",
    p90: "conc p90",
    p99: "conc p99",
    max: "conc max",
};

// ---------------------------------------------------------------------------------------------
// The runs
// ---------------------------------------------------------------------------------------------

async fn single_baseline(port: u16, results: &mut Results) {
    let side = Side::Baseline;
    let started = now_ns();
    let client = baseline_client();
    match baseline_stream(
        &client,
        &url(port, COLD_EVENTS, Some(PACED_GAP)),
        COLD_EVENTS,
    )
    .await
    {
        // A fresh client: its construction counts, as the sidecar's does.
        Ok(t) => results.add(
            side,
            "cold ttfc",
            t.first_seen.unwrap_or(0).saturating_sub(started) as f64 / 1e6,
        ),
        Err(e) => results.error("baseline cold stream", e),
    }
    match baseline_stream(
        &client,
        &url(port, PACED_EVENTS, Some(PACED_GAP)),
        PACED_EVENTS,
    )
    .await
    {
        Ok(t) => {
            results.add(side, "warm ttfc", t.ttfc() as f64 / 1e6);
            results.add(
                side,
                "ttfc request leg",
                t.first_sent.unwrap_or(0).saturating_sub(t.started) as f64 / 1e6,
            );
            results.add(
                side,
                "events per piece",
                t.latencies.len() as f64 / t.pieces as f64,
            );
            results.latencies(side, PACED, t.latencies);
        }
        Err(e) => results.error("baseline paced stream", e),
    }
    let cpu = self_cpu_ms();
    match baseline_stream(&client, &url(port, UNPACED_EVENTS, None), UNPACED_EVENTS).await {
        Ok(t) => {
            let cpu = self_cpu_ms() - cpu;
            let secs = (t.finished - t.started) as f64 / 1e9;
            results.add(side, "unpaced ev/s", UNPACED_EVENTS as f64 / secs);
            results.add(side, "unpaced cpu", cpu * 1000.0 / UNPACED_EVENTS as f64);
        }
        Err(e) => results.error("baseline unpaced stream", e),
    }
}

async fn single_sidecar(port: u16, results: &mut Results) {
    let side = Side::Sidecar;
    let spawned = now_ns();
    let sidecar = Sidecar::spawn();
    match sidecar
        .call("initialize", json!({"processId": null, "capabilities": {}}))
        .await
    {
        Ok(t) => results.add(side, "startup", (t.finished - spawned) as f64 / 1e6),
        Err(e) => results.error("sidecar initialize", e),
    }
    match sidecar
        .complete(&url(port, COLD_EVENTS, Some(PACED_GAP)), COLD_EVENTS)
        .await
    {
        Ok(t) => results.add(side, "cold ttfc", t.ttfc() as f64 / 1e6),
        Err(e) => results.error("sidecar cold stream", e),
    }
    let (reads, frames) = sidecar.io_counts();
    match sidecar
        .complete(&url(port, PACED_EVENTS, Some(PACED_GAP)), PACED_EVENTS)
        .await
    {
        Ok(t) => {
            let (r, f) = sidecar.io_counts();
            results.add(
                side,
                "paced frames/read",
                (f - frames) as f64 / (r - reads) as f64,
            );
            results.add(side, "warm ttfc", t.ttfc() as f64 / 1e6);
            results.add(
                side,
                "ttfc request leg",
                t.first_sent.unwrap_or(0).saturating_sub(t.started) as f64 / 1e6,
            );
            results.add(
                side,
                "events per piece",
                t.latencies.len() as f64 / t.pieces as f64,
            );
            results.latencies(side, PACED, t.latencies);
        }
        Err(e) => results.error("sidecar paced stream", e),
    }
    let (reads, frames) = sidecar.io_counts();
    let cpu = self_cpu_ms();
    let child_cpu = cpu_ms(&sidecar.pid.to_string()).unwrap_or(f64::NAN);
    match sidecar
        .complete(&url(port, UNPACED_EVENTS, None), UNPACED_EVENTS)
        .await
    {
        Ok(t) => {
            let child = cpu_ms(&sidecar.pid.to_string()).unwrap_or(f64::NAN) - child_cpu;
            let cpu = self_cpu_ms() - cpu;
            let (r, f) = sidecar.io_counts();
            let secs = (t.finished - t.started) as f64 / 1e9;
            results.add(side, "unpaced ev/s", UNPACED_EVENTS as f64 / secs);
            results.add(
                side,
                "unpaced cpu",
                (cpu + child) * 1000.0 / UNPACED_EVENTS as f64,
            );
            results.add(
                side,
                "unpaced sidecar cpu",
                child * 1000.0 / UNPACED_EVENTS as f64,
            );
            results.add(
                side,
                "unpaced frames/read",
                (f - frames) as f64 / (r - reads) as f64,
            );
        }
        Err(e) => results.error("sidecar unpaced stream", e),
    }
    sidecar.close().await;
}

/// Latencies, TTFCs and the span of a batch of concurrent streams.
fn summarize_concurrent(
    side: Side,
    outcomes: Vec<Result<Tracker, String>>,
    results: &mut Results,
) -> bool {
    let mut latencies = Vec::new();
    let mut ttfc = Vec::new();
    let mut request_legs = Vec::new();
    let (mut first_start, mut last_end) = (u64::MAX, 0);
    let mut ok = true;
    for outcome in outcomes {
        match outcome {
            Ok(t) => {
                ttfc.push(t.ttfc());
                request_legs.push(t.first_sent.unwrap_or(0).saturating_sub(t.started));
                first_start = first_start.min(t.started);
                last_end = last_end.max(t.finished);
                latencies.extend_from_slice(&t.latencies);
            }
            Err(e) => {
                results.error(&format!("{side:?} concurrent stream"), e);
                ok = false;
            }
        }
    }
    if !ok {
        return false;
    }
    ttfc.sort_unstable();
    results.add(side, "conc ttfc p50", percentile(&ttfc, 50.0) as f64 / 1e6);
    results.add(side, "conc ttfc p99", percentile(&ttfc, 99.0) as f64 / 1e6);
    request_legs.sort_unstable();
    results.add(
        side,
        "conc request leg p50",
        percentile(&request_legs, 50.0) as f64 / 1e6,
    );
    results.add(side, "conc wall", (last_end - first_start) as f64 / 1e9);
    results.latencies(side, CONC, latencies);
    true
}

async fn concurrent_baseline(
    client: &reqwest::Client,
    port: u16,
    events: u64,
    gap: Option<Duration>,
) -> Vec<Result<Tracker, String>> {
    let url = url(port, events, gap);
    let tasks: Vec<_> = (0..CONC_STREAMS)
        .map(|_| {
            let (client, url) = (client.clone(), url.clone());
            tokio::spawn(async move { baseline_stream(&client, &url, events).await })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap_or_else(|e| Err(e.to_string())));
    }
    outcomes
}

async fn concurrent_sidecar(
    sidecar: &Arc<Sidecar>,
    port: u16,
    events: u64,
    gap: Option<Duration>,
) -> Vec<Result<Tracker, String>> {
    let url = url(port, events, gap);
    let tasks: Vec<_> = (0..CONC_STREAMS)
        .map(|_| {
            let (sidecar, url) = (sidecar.clone(), url.clone());
            tokio::spawn(async move { sidecar.complete(&url, events).await })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap_or_else(|e| Err(e.to_string())));
    }
    outcomes
}

// ---------------------------------------------------------------------------------------------
// The report
// ---------------------------------------------------------------------------------------------

struct Row {
    label: &'static str,
    metric: &'static str,
    unit: &'static str,
    /// Lower is better (latency, time) or higher (throughput).
    lower_is_better: bool,
}

const fn row(label: &'static str, metric: &'static str, unit: &'static str) -> Row {
    Row {
        label,
        metric,
        unit,
        lower_is_better: true,
    }
}

fn fmt_value(v: f64) -> String {
    if !v.is_finite() {
        "-".to_owned()
    } else if v.abs() >= 1000.0 {
        format!("{v:.0}")
    } else if v.abs() >= 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn print_table(results: &Results) {
    let single = format!(
        "1 stream, {PACED_EVENTS} events, 1 every {} ms",
        PACED_GAP.as_millis()
    );
    let conc = format!(
        "{CONC_STREAMS} concurrent streams x {CONC_EVENTS} events, 1 every {} ms each",
        CONC_GAP.as_millis()
    );
    let sections: Vec<(String, Vec<Row>)> = vec![
        (
            single,
            vec![
                row("delivery latency p50", PACED.p50, "us"),
                row("delivery latency p90", PACED.p90, "us"),
                row("delivery latency p99", PACED.p99, "us"),
                row("delivery latency max", PACED.max, "us"),
                row("time to first chunk, warm", "warm ttfc", "ms"),
                row(
                    "  of which request reaching server",
                    "ttfc request leg",
                    "ms",
                ),
                row("events per text message", "events per piece", ""),
                row("stdout frames per read", "paced frames/read", ""),
            ],
        ),
        (
            "first stream of a fresh process / reqwest::Client (its build included)".to_owned(),
            vec![
                row("spawn -> initialize answered", "startup", "ms"),
                row("time to first chunk, cold", "cold ttfc", "ms"),
            ],
        ),
        (
            format!("1 stream, {UNPACED_EVENTS} events, unpaced"),
            vec![
                Row {
                    lower_is_better: false,
                    ..row("throughput", "unpaced ev/s", "ev/s")
                },
                row("CPU per event, all processes", "unpaced cpu", "us"),
                row(
                    "  of which the sidecar process",
                    "unpaced sidecar cpu",
                    "us",
                ),
                row("stdout frames per read", "unpaced frames/read", ""),
            ],
        ),
        (
            conc,
            vec![
                row("delivery latency p50", CONC.p50, "us"),
                row("delivery latency p90", CONC.p90, "us"),
                row("delivery latency p99", CONC.p99, "us"),
                row("delivery latency max", CONC.max, "us"),
                row("time to first chunk p50", "conc ttfc p50", "ms"),
                row("time to first chunk p99", "conc ttfc p99", "ms"),
                row(
                    "  request reaching server p50",
                    "conc request leg p50",
                    "ms",
                ),
                row("wall time, all streams", "conc wall", "s"),
                row("CPU per event, all processes", "conc cpu", "us"),
                row("  of which the sidecar process", "conc sidecar cpu", "us"),
                row("stdout frames per read", "conc frames/read", ""),
            ],
        ),
    ];
    println!();
    println!(
        "{:<58} {:>10} {:>10} {:>10} {:>7}   sidecar runs (min..max)",
        "median of runs", "baseline", "sidecar", "added", "ratio"
    );
    for (title, rows) in sections {
        println!("-- {title}");
        for r in rows {
            let b = results.get(Side::Baseline, r.metric);
            let s = results.get(Side::Sidecar, r.metric);
            let bm = b.map_or(f64::NAN, |v| median(v));
            let sm = s.map_or(f64::NAN, |v| median(v));
            let (added, ratio) = if bm.is_finite() && sm.is_finite() {
                let ratio = if r.lower_is_better { sm / bm } else { bm / sm };
                (fmt_value(sm - bm), format!("{ratio:.2}x"))
            } else {
                ("-".to_owned(), "-".to_owned())
            };
            let range = s.map_or("-".to_owned(), |v| {
                let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                format!("{}..{}", fmt_value(lo), fmt_value(hi))
            });
            let label = if r.unit.is_empty() {
                r.label.to_owned()
            } else {
                format!("{} ({})", r.label, r.unit)
            };
            println!(
                "{label:<58} {:>10} {:>10} {:>10} {:>7}   {range}",
                fmt_value(bm),
                fmt_value(sm),
                added,
                ratio
            );
        }
    }
    println!();
    println!(
        "ratio: sidecar/baseline for times, baseline/sidecar for throughput (above 1 = sidecar slower)"
    );
}

fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(default)
}

async fn run() -> ExitCode {
    LazyLock::force(&EPOCH);
    let runs = env_count("STREAM_BENCH_RUNS", 5);
    let conc_runs = env_count("STREAM_BENCH_CONC_RUNS", 3);
    // The server gets a thread and a runtime of its own, so that its pacing and writing do not
    // share worker threads with the baseline client.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    listener
        .set_nonblocking(true)
        .expect("non-blocking listener");
    let port = listener.local_addr().expect("local addr").port();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("server runtime");
        runtime.block_on(async move {
            serve(TcpListener::from_std(listener).expect("tokio listener")).await;
        });
    });

    let bin = binary();
    println!("stream_overhead: sidecar binary {bin}");
    if !std::path::Path::new(&bin).exists() {
        eprintln!("the sidecar binary does not exist; run `cargo bench --bench stream_overhead`");
        return ExitCode::FAILURE;
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "cpus: {}, load average at start: {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!("runs: {runs} single-stream, {conc_runs} concurrent; server on 127.0.0.1:{port}");
    let mut results = Results::default();
    let begun = Instant::now();

    for run in 0..runs {
        // Alternate which side goes first, so drift in machine load hits both.
        if run % 2 == 0 {
            single_baseline(port, &mut results).await;
            single_sidecar(port, &mut results).await;
        } else {
            single_sidecar(port, &mut results).await;
            single_baseline(port, &mut results).await;
        }
        print!(".");
        let _ = std::io::stdout().flush();
    }
    println!(
        " single-stream runs done ({:.0} s)",
        begun.elapsed().as_secs_f64()
    );

    let client = baseline_client();
    let sidecar = Arc::new(Sidecar::spawn());
    // Warm-up: open the connections of both pools.
    for outcome in concurrent_baseline(&client, port, 2, None).await {
        if let Err(e) = outcome {
            results.error("baseline warm-up", e);
        }
    }
    for outcome in concurrent_sidecar(&sidecar, port, 2, None).await {
        if let Err(e) = outcome {
            results.error("sidecar warm-up", e);
        }
    }
    let events = (CONC_STREAMS * CONC_EVENTS) as f64;
    for run in 0..conc_runs {
        for side in if run % 2 == 0 {
            [Side::Baseline, Side::Sidecar]
        } else {
            [Side::Sidecar, Side::Baseline]
        } {
            let cpu = self_cpu_ms();
            let child_cpu = cpu_ms(&sidecar.pid.to_string()).unwrap_or(f64::NAN);
            let (reads, frames) = sidecar.io_counts();
            let outcomes = match side {
                Side::Baseline => {
                    concurrent_baseline(&client, port, CONC_EVENTS, Some(CONC_GAP)).await
                }
                Side::Sidecar => {
                    concurrent_sidecar(&sidecar, port, CONC_EVENTS, Some(CONC_GAP)).await
                }
            };
            let cpu = self_cpu_ms() - cpu;
            let child = cpu_ms(&sidecar.pid.to_string()).unwrap_or(f64::NAN) - child_cpu;
            if summarize_concurrent(side, outcomes, &mut results) {
                if side == Side::Sidecar {
                    let (r, f) = sidecar.io_counts();
                    results.add(side, "conc cpu", (cpu + child) * 1000.0 / events);
                    results.add(side, "conc sidecar cpu", child * 1000.0 / events);
                    results.add(
                        side,
                        "conc frames/read",
                        (f - frames) as f64 / (r - reads) as f64,
                    );
                } else {
                    results.add(side, "conc cpu", cpu * 1000.0 / events);
                }
            }
        }
        print!(".");
        let _ = std::io::stdout().flush();
    }
    println!(
        " concurrent runs done ({:.0} s)",
        begun.elapsed().as_secs_f64()
    );
    if let Ok(sidecar) = Arc::try_unwrap(sidecar) {
        sidecar.close().await;
    }

    print_table(&results);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "total {:.0} s; load average at end: {}",
        begun.elapsed().as_secs_f64(),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    if results.errors.is_empty() {
        println!("all streams complete and correct");
        ExitCode::SUCCESS
    } else {
        eprintln!("{} stream(s) wrong or incomplete:", results.errors.len());
        for e in &results.errors {
            eprintln!("  {e}");
        }
        ExitCode::FAILURE
    }
}

fn main() -> ExitCode {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    // On a worker thread, not on the thread blocked in `block_on`: that thread would need a
    // cross-thread wake-up for every read of the baseline's socket.
    runtime
        .block_on(runtime.spawn(run()))
        .unwrap_or(ExitCode::FAILURE)
}
