//! `Sidecar`: the real `llm-sidecar` binary as a child process, driven over LSP-framed JSON-RPC.
//!
//! A thread reads stdout and parses it strictly: every byte must belong to a well-formed
//! `Content-Length` frame holding a JSON-RPC 2.0 object. Anything else is a violation that fails the
//! test at the next read. Another thread drains stderr into a buffer the test can inspect.
//!
//! Every message received is appended to a transcript, so a test can wait for one response while
//! the notifications and responses of other requests keep arriving.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Environment variables removed from the child by default, so the host cannot change its behaviour
/// (log level, HTTP proxies for the loopback mock server).
pub const SCRUBBED_ENV: &[&str] = &[
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
];

/// The binary under test: `$LLM_SIDECAR_BIN` if set (to run the suite against another build),
/// else the one Cargo built for this package.
pub fn binary() -> String {
    std::env::var("LLM_SIDECAR_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_llm-sidecar").to_owned())
}

/// Spawns a [`Sidecar`] with environment overrides.
#[derive(Default)]
pub struct SidecarBuilder {
    env: Vec<(String, Option<String>)>,
    /// Leave the child's stderr pipe unread (see [`Sidecar::take_stderr`]).
    stderr_unread: bool,
}

impl SidecarBuilder {
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), Some(value.to_owned())));
        self
    }

    pub fn env_remove(mut self, key: &str) -> Self {
        self.env.push((key.to_owned(), None));
        self
    }

    /// Nobody reads the child's stderr (as many editors do) until [`Sidecar::take_stderr`].
    pub fn stderr_unread(mut self) -> Self {
        self.stderr_unread = true;
        self
    }

    pub fn spawn(self) -> Sidecar {
        let mut command = Command::new(binary());
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for key in SCRUBBED_ENV {
            command.env_remove(key);
        }
        for (key, value) in &self.env {
            match value {
                Some(value) => command.env(key, value),
                None => command.env_remove(key),
            };
        }
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", binary()));

        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().expect("child stdout");
        thread::spawn(move || read_frames(stdout, tx));

        let stderr = Arc::new(StderrBuffer::default());
        let stderr_sink = Arc::clone(&stderr);
        let pipe = child.stderr.take().expect("child stderr");
        let unread_stderr = if self.stderr_unread {
            stderr.close();
            Some(pipe)
        } else {
            let mut pipe = pipe;
            thread::spawn(move || {
                let mut buf = [0u8; 8192];
                while let Ok(n) = pipe.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    stderr_sink.append(&buf[..n]);
                }
                stderr_sink.close();
            });
            None
        };

        Sidecar {
            stdin: child.stdin.take(),
            child,
            stdout: rx,
            stdout_closed: false,
            transcript: Vec::new(),
            cursor: 0,
            next_id: 1,
            sent_at: HashMap::new(),
            stderr,
            unread_stderr,
        }
    }
}

/// One `llm/chunk` notification.
#[derive(Clone, Debug, PartialEq)]
pub struct Chunk {
    pub stream_id: Value,
    pub seq: u64,
    pub text: String,
    pub kind: String,
}

impl Chunk {
    /// Parses `msg` if it is an `llm/chunk` notification; panics if it is one but malformed.
    pub fn from_message(msg: &Value) -> Option<Chunk> {
        if msg.get("method").and_then(Value::as_str) != Some("llm/chunk") {
            return None;
        }
        let params = &msg["params"];
        let (Some(stream_id), Some(seq), Some(text), Some(kind)) = (
            params.get("streamId"),
            params["seq"].as_u64(),
            params["text"].as_str(),
            params["kind"].as_str(),
        ) else {
            panic!("malformed llm/chunk notification: {msg}");
        };
        Some(Chunk {
            stream_id: stream_id.clone(),
            seq,
            text: text.to_owned(),
            kind: kind.to_owned(),
        })
    }
}

/// A response together with every notification received between sending its request and
/// receiving it, in order.
#[derive(Clone, Debug)]
pub struct Reply {
    pub response: Value,
    pub notifications: Vec<Value>,
}

impl Reply {
    /// The `result`; panics (showing the error) if the request failed.
    pub fn result(&self) -> &Value {
        match self.response.get("result") {
            Some(result) if self.response.get("error").is_none() => result,
            _ => panic!("expected a result, got {}", self.response),
        }
    }

    /// The `error` object; panics if the request succeeded.
    pub fn error(&self) -> &Value {
        match self.response.get("error") {
            Some(error) if self.response.get("result").is_none() => error,
            _ => panic!("expected an error, got {}", self.response),
        }
    }

    /// Asserts the error has `code` and a string `message`, and returns the error object.
    pub fn expect_code(&self, code: i64) -> &Value {
        let error = self.error();
        assert_eq!(
            error["code"],
            json!(code),
            "error code in {}",
            self.response
        );
        assert!(
            error["message"].is_string(),
            "error.message must be a string: {}",
            self.response
        );
        error
    }

    /// Asserts the error has `code` and `data.kind == kind`, and returns `data`.
    pub fn expect_error(&self, code: i64, kind: &str) -> &Value {
        let error = self.expect_code(code);
        assert_eq!(
            error["data"]["kind"],
            json!(kind),
            "data.kind in {}",
            self.response
        );
        &error["data"]
    }

    /// The `llm/chunk` notifications of `stream_id` received before the response.
    pub fn chunks(&self, stream_id: &Value) -> Vec<Chunk> {
        chunks_of(&self.notifications, stream_id)
    }

    /// The chunks of `stream_id`, after checking the stream invariants (see
    /// [`Reply::stream_problems`]); panics if one is broken.
    pub fn checked_chunks(&self, stream_id: &Value) -> Vec<Chunk> {
        let problems = self.stream_problems(stream_id);
        assert!(
            problems.is_empty(),
            "stream {stream_id}: {}\nchunks: {:?}",
            problems.join("; "),
            self.chunks(stream_id)
        );
        self.chunks(stream_id)
    }

    /// What breaks the stream invariants of `stream_id`: `seq` counts 0, 1, 2, …, every text is
    /// non-empty, `kind` is `content` or `reasoning`, and a successful result's `chunks` equals
    /// the number of notifications.
    pub fn stream_problems(&self, stream_id: &Value) -> Vec<String> {
        let chunks = self.chunks(stream_id);
        let mut problems = Vec::new();
        for (i, chunk) in chunks.iter().enumerate() {
            if chunk.seq != i as u64 {
                problems.push(format!("chunk {i} has seq {}", chunk.seq));
            }
            if chunk.text.is_empty() {
                problems.push(format!("chunk {i} has an empty text"));
            }
            if chunk.kind != "content" && chunk.kind != "reasoning" {
                problems.push(format!("chunk {i} has kind {:?}", chunk.kind));
            }
        }
        if let Some(result) = self.response.get("result")
            && result["chunks"] != json!(chunks.len())
        {
            problems.push(format!(
                "result.chunks is {} but {} llm/chunk were sent",
                result["chunks"],
                chunks.len()
            ));
        }
        problems
    }
}

/// The `llm/chunk` notifications of `stream_id` among `messages`, in order.
pub fn chunks_of(messages: &[Value], stream_id: &Value) -> Vec<Chunk> {
    messages
        .iter()
        .filter_map(Chunk::from_message)
        .filter(|chunk| &chunk.stream_id == stream_id)
        .collect()
}

/// Concatenates the texts of `chunks` of the given kind.
pub fn joined(chunks: &[Chunk], kind: &str) -> String {
    chunks
        .iter()
        .filter(|c| c.kind == kind)
        .map(|c| c.text.as_str())
        .collect()
}

pub struct Sidecar {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Receiver<StdoutEvent>,
    stdout_closed: bool,
    transcript: Vec<Value>,
    cursor: usize,
    next_id: i64,
    /// Transcript length when each request id was last sent.
    sent_at: HashMap<String, usize>,
    stderr: Arc<StderrBuffer>,
    /// The stderr pipe nobody has read yet ([`SidecarBuilder::stderr_unread`]).
    unread_stderr: Option<std::process::ChildStderr>,
}

impl Sidecar {
    /// Spawns the binary with the default (scrubbed) environment.
    pub fn spawn() -> Sidecar {
        SidecarBuilder::default().spawn()
    }

    pub fn builder() -> SidecarBuilder {
        SidecarBuilder::default()
    }

    /// The stderr pipe of a sidecar spawned with [`SidecarBuilder::stderr_unread`].
    pub fn take_stderr(&mut self) -> std::process::ChildStderr {
        self.unread_stderr
            .take()
            .expect("spawned with stderr_unread")
    }

    /// The child process's id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a request with the next integer id and returns that id. `params: None` omits the key.
    pub fn request(&mut self, method: &str, params: impl Into<Option<Value>>) -> Value {
        let id = json!(self.next_id);
        self.next_id += 1;
        self.request_with_id(id.clone(), method, params);
        id
    }

    /// Sends a request with a chosen id (number or string).
    pub fn request_with_id(&mut self, id: Value, method: &str, params: impl Into<Option<Value>>) {
        let mut msg = json!({"jsonrpc": "2.0", "id": id, "method": method});
        if let Some(params) = params.into() {
            msg["params"] = params;
        }
        self.sent_at.insert(id.to_string(), self.transcript.len());
        self.send(&msg);
    }

    /// Sends a notification. `params: None` omits the key.
    pub fn notify(&mut self, method: &str, params: impl Into<Option<Value>>) {
        let mut msg = json!({"jsonrpc": "2.0", "method": method});
        if let Some(params) = params.into() {
            msg["params"] = params;
        }
        self.send(&msg);
    }

    /// Sends `$/cancelRequest` for `id`.
    pub fn cancel(&mut self, id: &Value) {
        self.notify("$/cancelRequest", json!({"id": id}));
    }

    /// Sends `llm/complete` and waits for its response.
    pub fn complete(&mut self, params: Value) -> Reply {
        let id = self.request("llm/complete", params);
        self.wait_response(&id, super::WAIT)
    }

    /// Writes `msg` as one frame.
    pub fn send(&mut self, msg: &Value) {
        self.write_frame(msg.to_string().as_bytes());
    }

    /// Writes `body` as one frame with a `Content-Length` header.
    pub fn write_frame(&mut self, body: &[u8]) {
        let mut frame = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
        frame.extend_from_slice(body);
        self.write_raw(&frame);
    }

    /// Writes bytes to stdin unchanged (for negative tests).
    pub fn write_raw(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin already closed");
        if let Err(err) = stdin.write_all(bytes).and_then(|()| stdin.flush()) {
            panic!(
                "writing to the sidecar's stdin failed: {err}\nstderr:\n{}",
                self.stderr_text()
            );
        }
    }

    /// Closes stdin (the server must then exit with code 0).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// The next message not yet returned by `next_message`, or `None` if none arrives in time
    /// (or stdout ended).
    pub fn next_message(&mut self, timeout: Duration) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        while self.cursor >= self.transcript.len() {
            if !self.pull(deadline) {
                return None;
            }
        }
        self.cursor += 1;
        Some(self.transcript[self.cursor - 1].clone())
    }

    /// Waits for the response with `id`; returns it with every notification received between
    /// sending the request and its response.
    pub fn wait_response(&mut self, id: &Value, timeout: Duration) -> Reply {
        let sent_at = self.sent_at.get(&id.to_string()).copied().unwrap_or(0);
        let index = self.wait_for_from(
            sent_at,
            timeout,
            &format!("the response to id {id}"),
            |msg| msg.get("method").is_none() && msg.get("id") == Some(id),
        );
        Reply {
            response: self.transcript[index].clone(),
            notifications: self.transcript[sent_at..index]
                .iter()
                .filter(|msg| msg.get("method").is_some())
                .cloned()
                .collect(),
        }
    }

    /// Waits until chunk `seq` of `stream_id` has been received and returns it.
    pub fn wait_chunk(&mut self, stream_id: &Value, seq: u64, timeout: Duration) -> Chunk {
        let what = format!("chunk {seq} of stream {stream_id}");
        let index = self.wait_for(timeout, &what, |msg| {
            Chunk::from_message(msg).is_some_and(|c| &c.stream_id == stream_id && c.seq == seq)
        });
        Chunk::from_message(&self.transcript[index]).unwrap()
    }

    /// Every chunk of `stream_id` received so far.
    pub fn collect_chunks(&self, stream_id: &Value) -> Vec<Chunk> {
        chunks_of(&self.transcript, stream_id)
    }

    /// Every message received so far, in order.
    pub fn transcript(&self) -> &[Value] {
        &self.transcript
    }

    /// Waits until a message matching `pred` is in the transcript (searching from the start) and
    /// returns its index. Panics after `timeout`, describing `what` was awaited.
    pub fn wait_for(
        &mut self,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> usize {
        self.wait_for_from(0, timeout, what, pred)
    }

    /// Like [`Sidecar::wait_for`], but only considers transcript entries from index `from` on.
    pub fn wait_for_from(
        &mut self,
        from: usize,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> usize {
        let deadline = Instant::now() + timeout;
        let mut searched = from.min(self.transcript.len());
        loop {
            if let Some(offset) = self.transcript[searched..].iter().position(&pred) {
                return searched + offset;
            }
            searched = self.transcript.len();
            if !self.pull(deadline) {
                let state = if self.stdout_closed {
                    "stdout closed"
                } else {
                    "timed out"
                };
                panic!("{state} waiting for {what}\n{}", self.diagnostics());
            }
        }
    }

    /// Asserts that nothing arrives on stdout for `quiet`: only for checking that a message was
    /// NOT sent, after a later request has already been answered (so this is not a timing bet).
    pub fn assert_no_new_messages(&mut self, quiet: Duration) {
        let before = self.transcript.len();
        let deadline = Instant::now() + quiet;
        while self.pull(deadline) {}
        assert_eq!(
            self.transcript.len(),
            before,
            "unexpected messages: {:?}",
            &self.transcript[before..]
        );
    }

    /// Waits for the child to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            if Instant::now() >= deadline {
                panic!("llm-sidecar did not exit\n{}", self.diagnostics());
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Reads stdout until it closes; panics on a violation or if it stays open past `timeout`.
    pub fn wait_stdout_closed(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.stdout_closed {
            if !self.pull(deadline) && !self.stdout_closed {
                panic!("stdout did not close\n{}", self.diagnostics());
            }
        }
    }

    /// Closes stdin, checks that stdout held only frames up to its end, and returns the exit status.
    pub fn finish(&mut self) -> ExitStatus {
        self.close_stdin();
        self.wait_stdout_closed(super::WAIT);
        self.wait_exit(super::WAIT)
    }

    /// Everything written to stderr so far (lossy UTF-8, ANSI colour codes removed).
    pub fn stderr_text(&self) -> String {
        self.stderr.text()
    }

    /// Waits until the stderr text satisfies `pred`; returns false after `timeout`.
    pub fn wait_stderr(&self, timeout: Duration, pred: impl Fn(&str) -> bool) -> bool {
        self.stderr.wait_until(timeout, |state| pred(&state.text()))
    }

    /// Everything the process wrote to stderr, once stderr has closed (call after it exited).
    pub fn full_stderr(&self) -> String {
        assert!(
            self.stderr.wait_until(super::WAIT, |state| state.closed),
            "stderr did not close"
        );
        self.stderr_text()
    }

    /// Receives one stdout event before `deadline`. Returns false on timeout or end of stdout.
    fn pull(&mut self, deadline: Instant) -> bool {
        if self.stdout_closed {
            return false;
        }
        let timeout = deadline.saturating_duration_since(Instant::now());
        match self.stdout.recv_timeout(timeout) {
            Ok(StdoutEvent::Message(msg)) => {
                self.transcript.push(msg);
                true
            }
            Ok(StdoutEvent::Violation(what)) => {
                self.stdout_closed = true;
                panic!(
                    "stdout carried something other than a well-formed frame: {what}\n{}",
                    self.diagnostics()
                );
            }
            Ok(StdoutEvent::Eof) | Err(RecvTimeoutError::Disconnected) => {
                self.stdout_closed = true;
                false
            }
            Err(RecvTimeoutError::Timeout) => false,
        }
    }

    fn diagnostics(&self) -> String {
        let tail: Vec<String> = self
            .transcript
            .iter()
            .rev()
            .take(10)
            .rev()
            .map(|msg| truncate(&msg.to_string(), 600))
            .collect();
        let stderr = self.stderr_text();
        let start = (stderr.len().saturating_sub(4000)..)
            .find(|&i| stderr.is_char_boundary(i))
            .unwrap_or(0);
        format!(
            "last messages ({} received):\n  {}\nstderr (tail):\n{}",
            self.transcript.len(),
            tail.join("\n  "),
            &stderr[start..]
        )
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

enum StdoutEvent {
    Message(Value),
    Violation(String),
    Eof,
}

/// Parses stdout frames until EOF. After a violation it keeps draining so the child never blocks.
fn read_frames(stdout: impl Read, tx: Sender<StdoutEvent>) {
    let mut reader = BufReader::new(stdout);
    let event = loop {
        match read_frame(&mut reader) {
            Ok(Some(msg)) => {
                if tx.send(StdoutEvent::Message(msg)).is_err() {
                    return;
                }
            }
            Ok(None) => break StdoutEvent::Eof,
            Err(violation) => break StdoutEvent::Violation(violation),
        }
    };
    let _ = tx.send(event);
    let _ = std::io::copy(&mut reader, &mut std::io::sink());
}

/// Reads one frame. `Ok(None)` is a clean end of stdout (between frames).
fn read_frame(reader: &mut impl BufRead) -> Result<Option<Value>, String> {
    let mut content_length = None;
    let mut header_count = 0;
    loop {
        let mut line = Vec::new();
        reader
            .read_until(b'\n', &mut line)
            .map_err(|e| format!("read error: {e}"))?;
        if line.is_empty() && header_count == 0 {
            return Ok(None);
        }
        let Some(line) = line.strip_suffix(b"\r\n") else {
            return Err(format!(
                "header line not ended by CRLF: {:?}",
                String::from_utf8_lossy(&line)
            ));
        };
        if line.is_empty() {
            break;
        }
        header_count += 1;
        let text = std::str::from_utf8(line)
            .ok()
            .filter(|t| t.is_ascii())
            .ok_or_else(|| format!("non-ASCII header line: {:?}", String::from_utf8_lossy(line)))?;
        let (name, value) = text
            .split_once(':')
            .ok_or_else(|| format!("header line without a colon: {text:?}"))?;
        if name.trim().eq_ignore_ascii_case("content-length") {
            let length = value
                .trim()
                .parse::<usize>()
                .map_err(|_| format!("bad Content-Length: {text:?}"))?;
            content_length = Some(length);
        }
    }
    let length = content_length.ok_or("frame without Content-Length")?;
    let mut body = vec![0; length];
    reader
        .read_exact(&mut body)
        .map_err(|e| format!("frame body cut short ({length} bytes announced): {e}"))?;
    let msg: Value = serde_json::from_slice(&body).map_err(|e| {
        format!(
            "frame body is not JSON ({e}): {:?}",
            String::from_utf8_lossy(&body)
        )
    })?;
    if msg.get("jsonrpc") != Some(&json!("2.0")) {
        return Err(format!("frame is not a JSON-RPC 2.0 message: {msg}"));
    }
    Ok(Some(msg))
}

/// stderr bytes collected so far, with a condition variable for waiters.
#[derive(Default)]
struct StderrBuffer {
    state: Mutex<StderrState>,
    changed: Condvar,
}

#[derive(Default)]
struct StderrState {
    bytes: Vec<u8>,
    /// stderr reached EOF: `bytes` is everything the process wrote.
    closed: bool,
}

impl StderrState {
    fn text(&self) -> String {
        strip_ansi(&String::from_utf8_lossy(&self.bytes))
    }
}

impl StderrBuffer {
    /// Locks the state; a test that panicked while holding it must not stop the drain thread.
    fn lock(&self) -> MutexGuard<'_, StderrState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn append(&self, data: &[u8]) {
        self.lock().bytes.extend_from_slice(data);
        self.changed.notify_all();
    }

    fn close(&self) {
        self.lock().closed = true;
        self.changed.notify_all();
    }

    fn text(&self) -> String {
        self.lock().text()
    }

    /// Waits until `done(state)`; returns false after `timeout`.
    fn wait_until(&self, timeout: Duration, done: impl Fn(&StderrState) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut state = self.lock();
        loop {
            if done(&state) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            state = match self.changed.wait_timeout(state, left) {
                Ok((state, _)) => state,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }
}

/// Removes ANSI escape sequences (`ESC [ … letter`) so log lines can be matched as plain text.
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
