//! stdio as editors and service managers really wire it, and clients that do not read:
//! - one socket as both stdin and stdout (socat, inetd, systemd socket activation) keeps serving
//!   after the input has been idle;
//! - a client that stops reading stdout still cancels at once (the upstream connection closes), a
//!   client that writes all its requests before reading anything gets every answer, and a fast
//!   endless stream nobody reads costs the memory of its text, with no text lost (chunks merge);
//! - at the end of input, a request that does not stop in time is still answered, once.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::procfs::vm_rss_kib;
use common::raw_server::{RawServer, http_chunk, response_head};
use common::sidecar::{SCRUBBED_ENV, binary};
use common::*;
use serde_json::{Value, json};

/// One frame around `msg`.
fn frame(msg: &Value) -> Vec<u8> {
    let body = msg.to_string();
    [
        format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes(),
        body.into_bytes(),
    ]
    .concat()
}

fn request(id: impl Into<Value>, method: &str, params: Value) -> Vec<u8> {
    frame(&json!({"jsonrpc": "2.0", "id": id.into(), "method": method, "params": params}))
}

/// Reads LSP frames from any byte stream.
struct FrameReader<R> {
    input: R,
    buf: Vec<u8>,
}

impl<R: Read> FrameReader<R> {
    fn new(input: R) -> Self {
        FrameReader {
            input,
            buf: Vec::new(),
        }
    }

    /// The next message; `None` at the end of the stream.
    fn next(&mut self) -> Option<Value> {
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let header = std::str::from_utf8(&self.buf[..end]).expect("ASCII header");
                let len: usize = header
                    .strip_prefix("Content-Length: ")
                    .and_then(|n| n.parse().ok())
                    .unwrap_or_else(|| panic!("bad header {header:?}"));
                if self.buf.len() >= end + 4 + len {
                    let msg = serde_json::from_slice(&self.buf[end + 4..end + 4 + len])
                        .expect("a JSON body");
                    self.buf.drain(..end + 4 + len);
                    return Some(msg);
                }
            }
            let mut chunk = [0u8; 64 * 1024];
            match self.input.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Reads until the response to `id`; returns it and the messages before it.
    fn until_response(&mut self, id: &Value) -> (Value, Vec<Value>) {
        let mut before = Vec::new();
        while let Some(msg) = self.next() {
            if msg.get("method").is_none() && &msg["id"] == id {
                return (msg, before);
            }
            before.push(msg);
        }
        panic!("stdout ended before the response to {id}; got {before:?}");
    }
}

/// The sidecar with stdin and stdout as given and stderr discarded.
fn spawn_with(stdin: Stdio, stdout: Stdio) -> Child {
    let mut command = Command::new(binary());
    command.stdin(stdin).stdout(stdout).stderr(Stdio::null());
    for key in SCRUBBED_ENV {
        command.env_remove(key);
    }
    command.spawn().expect("spawn llm-sidecar")
}

/// The sidecar over pipes, its stdout handed to the test to read, or not.
fn spawn_piped() -> (Child, ChildStdin, ChildStdout) {
    let mut child = spawn_with(Stdio::piped(), Stdio::piped());
    let stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    (child, stdin, stdout)
}

fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "llm-sidecar did not exit");
        thread::sleep(Duration::from_millis(20));
    }
}

/// An OpenAI-style SSE server that streams one-character deltas as fast as the client takes them,
/// forever, until the client closes the connection.
fn endless_server() -> RawServer {
    RawServer::start(|mut conn| async move {
        if conn.read_request().await.is_none() {
            return;
        }
        let head = response_head(200, &[("Content-Type", "text/event-stream")], None);
        if !conn.write(&head).await {
            return;
        }
        let events: String = (0..200).map(|_| sse_event(&openai_delta("x"))).collect();
        let chunk = http_chunk(events.as_bytes());
        while conn.write(&chunk).await {}
    })
}

fn wait_bytes_written(server: &RawServer, bytes: u64) {
    let deadline = Instant::now() + WAIT * 3;
    while server.bytes_written() < bytes {
        assert!(
            Instant::now() < deadline,
            "the server wrote only {} bytes; the sidecar stopped reading the stream",
            server.bytes_written()
        );
        thread::sleep(Duration::from_millis(10));
    }
}

fn complete_params(url: String, stream_id: &str) -> Value {
    Settings::sse(url, DELTA_PATH)
        .params()
        .stream_id(stream_id)
        .build()
}

#[test]
fn one_socket_as_stdin_and_stdout_keeps_serving_after_idle_input() {
    let mock = MockLlm::always(MockResponse::sse(openai_sse(&["Hello", " there"])).chunked());
    let (mut ours, theirs) = UnixStream::pair().unwrap();
    let mut child = spawn_with(
        Stdio::from(OwnedFd::from(theirs.try_clone().unwrap())),
        Stdio::from(OwnedFd::from(theirs)),
    );
    let mut reader = FrameReader::new(ours.try_clone().unwrap());
    let params = complete_params(mock.url("/v1/chat/completions"), "s");
    ours.write_all(&request(1, "llm/complete", params.clone()))
        .unwrap();
    let (answer, chunks) = reader.until_response(&json!(1));
    assert_eq!(answer["result"]["text"], "Hello there", "{answer}");
    assert_eq!(chunks.len(), 2, "{chunks:?}");
    // Idle input: a blocking read must keep waiting, however long the client is quiet.
    thread::sleep(Duration::from_millis(2500));
    ours.write_all(&request(2, "llm/complete", params)).unwrap();
    let (answer, _) = reader.until_response(&json!(2));
    assert_eq!(answer["result"]["text"], "Hello there", "{answer}");
    ours.write_all(&request(3, "test/ping", json!({}))).unwrap();
    let (answer, _) = reader.until_response(&json!(3));
    assert_eq!(answer["error"]["code"], json!(METHOD_NOT_FOUND));
    ours.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(wait_exit(&mut child).code(), Some(0));
    assert!(reader.next().is_none(), "nothing after the last answer");
}

#[test]
fn a_client_that_does_not_read_stdout_still_cancels_at_once() {
    let server = endless_server();
    let (mut child, mut stdin, stdout) = spawn_piped();
    let params = complete_params(server.url("/v1/chat/completions"), "s");
    stdin
        .write_all(&request(1, "llm/complete", params))
        .unwrap();
    // Far more than stdout's pipe and the frames waiting for it hold: nobody reads them.
    wait_bytes_written(&server, 3 << 20);
    // The stream keeps flowing to 8 MiB, or it has stopped (a sidecar that waits for stdout).
    let mut last = (server.bytes_written(), Instant::now());
    while server.bytes_written() < 8 << 20 && last.1.elapsed() < Duration::from_secs(1) {
        thread::sleep(Duration::from_millis(50));
        if server.bytes_written() != last.0 {
            last = (server.bytes_written(), Instant::now());
        }
    }
    stdin
        .write_all(&frame(
            &json!({"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": 1}}),
        ))
        .unwrap();
    // The upstream is closed without anybody reading stdout.
    server.wait_closed_by_client(1, WAIT);
    // Then the answer is there when the client reads: every piece of text, in order, then -32800.
    let mut reader = FrameReader::new(stdout);
    let (answer, before) = reader.until_response(&json!(1));
    assert_eq!(answer["error"]["code"], json!(CANCELLED), "{answer}");
    let chunks = chunks_of(&before, &json!("s"));
    for (i, chunk) in chunks.iter().enumerate() {
        assert_eq!(chunk.seq, i as u64, "seq counts 0, 1, 2, …");
    }
    let text = joined(&chunks, "content");
    assert!(!text.is_empty());
    assert_eq!(text, partial_text(&answer["error"]["data"]), "no text lost");
    assert!(text.bytes().all(|b| b == b'x'));
    drop(stdin);
    assert_eq!(wait_exit(&mut child).code(), Some(0));
}

#[test]
fn a_client_that_does_not_read_stdout_still_gets_its_timeouts() {
    let server = endless_server();
    let (mut child, mut stdin, stdout) = spawn_piped();
    let params = Settings::sse(server.url("/v1/chat/completions"), DELTA_PATH)
        .set("timeouts", json!({"totalMs": 1500}))
        .params()
        .stream_id("s")
        .build();
    stdin
        .write_all(&request(1, "llm/complete", params))
        .unwrap();
    // The limit ends the request and closes the upstream, stdout unread all along.
    server.wait_closed_by_client(1, WAIT);
    let mut reader = FrameReader::new(stdout);
    let (answer, before) = reader.until_response(&json!(1));
    assert_eq!(answer["error"]["data"]["kind"], "timeout", "{answer}");
    let chunks = chunks_of(&before, &json!("s"));
    assert_eq!(
        joined(&chunks, "content"),
        partial_text(&answer["error"]["data"]),
        "no text lost"
    );
    drop(stdin);
    assert_eq!(wait_exit(&mut child).code(), Some(0));
}

#[test]
fn a_fast_endless_stream_nobody_reads_costs_the_memory_of_its_text() {
    let server = endless_server();
    let (mut child, mut stdin, stdout) = spawn_piped();
    let params = complete_params(server.url("/v1/chat/completions"), "s");
    stdin
        .write_all(&request(1, "llm/complete", params))
        .unwrap();
    // About 500 000 one-character pieces: one frame each would need well over 64 MiB.
    wait_bytes_written(&server, 32 << 20);
    let rss_mib = vm_rss_kib(child.id()) / 1024;
    assert!(
        rss_mib < 64,
        "the sidecar holds {rss_mib} MiB while nobody reads its stdout"
    );
    stdin
        .write_all(&frame(
            &json!({"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": 1}}),
        ))
        .unwrap();
    let mut reader = FrameReader::new(stdout);
    let (answer, before) = reader.until_response(&json!(1));
    let chunks = chunks_of(&before, &json!("s"));
    assert_eq!(
        joined(&chunks, "content"),
        partial_text(&answer["error"]["data"]),
        "no text lost"
    );
    drop(stdin);
    assert_eq!(wait_exit(&mut child).code(), Some(0));
}

#[test]
fn a_client_that_writes_all_its_requests_before_reading_gets_every_answer() {
    const COMPLETIONS: usize = 1000;
    const PINGS: usize = 3000;
    let words: Vec<String> = (0..20).map(|i| format!("w{i} ")).collect();
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let expected: String = words.concat();
    let mock = MockLlm::always(MockResponse::sse(openai_sse(&words)));
    let (mut child, mut stdin, stdout) = spawn_piped();
    let mut completions = Vec::new();
    for i in 0..COMPLETIONS {
        let params = complete_params(mock.url("/v1/chat/completions"), &format!("s{i}"));
        completions.extend(request(json!(format!("c{i}")), "llm/complete", params));
    }
    // Answered by the reader loop itself, after 20 000 chunks that nobody reads yet.
    let mut pings = Vec::new();
    for i in 0..PINGS {
        pings.extend(request(json!(format!("p{i}")), "test/ping", json!({})));
    }
    let (written, done) = mpsc::channel();
    let writer = thread::spawn(move || {
        stdin.write_all(&completions).unwrap();
        mock.wait_for_requests(COMPLETIONS, WAIT);
        stdin.write_all(&pings).unwrap();
        written.send(()).unwrap();
        (stdin, mock)
    });
    // Nothing is read until every request is written.
    done.recv_timeout(WAIT * 3)
        .expect("the sidecar stopped reading stdin while its stdout was not read");
    let (stdin, _mock) = writer.join().unwrap();
    let mut reader = FrameReader::new(stdout);
    let mut answers: HashMap<String, Value> = HashMap::new();
    let mut chunks: HashMap<String, Vec<Value>> = HashMap::new();
    while answers.len() < COMPLETIONS + PINGS {
        let msg = reader.next().expect("stdout ended before every answer");
        if msg["method"] == "llm/chunk" {
            let stream = msg["params"]["streamId"].as_str().unwrap().to_owned();
            chunks.entry(stream).or_default().push(msg);
            continue;
        }
        let id = msg["id"].as_str().expect("a string id").to_owned();
        assert!(
            answers.insert(id.clone(), msg).is_none(),
            "{id} answered twice"
        );
    }
    for i in 0..COMPLETIONS {
        let answer = &answers[&format!("c{i}")];
        assert_eq!(answer["result"]["text"], json!(expected), "{answer}");
        let stream = &chunks[&format!("s{i}")];
        let text: String = stream
            .iter()
            .map(|c| c["params"]["text"].as_str().unwrap())
            .collect();
        assert_eq!(text, expected);
        assert!(
            stream
                .iter()
                .enumerate()
                .all(|(n, c)| c["params"]["seq"] == json!(n))
        );
        assert_eq!(answer["result"]["chunks"], json!(stream.len()));
    }
    for i in 0..PINGS {
        assert_eq!(
            answers[&format!("p{i}")]["error"]["code"],
            json!(METHOD_NOT_FOUND)
        );
    }
    drop(stdin);
    assert_eq!(wait_exit(&mut child).code(), Some(0));
}

#[test]
fn at_the_end_of_input_a_request_that_does_not_stop_is_still_answered_once() {
    // A CA bundle that is a FIFO nobody writes to: reading it blocks the client build forever,
    // where the request's cancel cannot reach it.
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("ca.pem");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let server = endless_server();
    let mut sidecar = Sidecar::spawn();
    let stuck = sidecar.request(
        "llm/complete",
        Settings::sse(server.url("/v1/chat/completions"), DELTA_PATH)
            .set("caCertificates", fifo.to_str().unwrap())
            .params()
            .build(),
    );
    let endless = sidecar.request(
        "llm/complete",
        complete_params(server.url("/v1/chat/completions"), "e"),
    );
    sidecar.wait_chunk(&json!("e"), 0, WAIT);
    let status = sidecar.finish();
    assert_eq!(status.code(), Some(0));
    for id in [&stuck, &endless] {
        let answers: Vec<&Value> = sidecar
            .transcript()
            .iter()
            .filter(|m| m.get("method").is_none() && &m["id"] == id)
            .collect();
        assert_eq!(answers.len(), 1, "request {id} is answered exactly once");
        assert_eq!(
            answers[0]["error"]["code"],
            json!(CANCELLED),
            "{}",
            answers[0]
        );
        assert!(answers[0]["error"]["data"]["partialText"].is_string());
    }
    server.wait_closed_by_client(1, WAIT);
}
