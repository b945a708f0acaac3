//! Shared harness for the `llm-sidecar` integration tests.
//!
//! - [`Sidecar`]: the real binary, driven over LSP-framed JSON-RPC on stdin/stdout.
//! - [`MockLlm`]: a scripted HTTP/1.1 LLM server on 127.0.0.1.
//! - [`Settings`] / [`Complete`]: `llm/complete` params; body helpers such as [`openai_sse`].
//! - [`fixtures`]: the recorded provider responses in `tests/fixtures`.
//!
//! Tests wait on events (messages, requests, closed connections), never on sleeps. [`WAIT`] is only
//! a guard against a hung test.

// Each test file uses a different part of the harness.
#![allow(dead_code, unused_imports)]

pub mod fixtures;
pub mod mock_llm;
pub mod procfs;
pub mod proxy;
pub mod raw_server;
pub mod schema;
pub mod settings;
pub mod sidecar;
pub mod tls;

use std::time::Duration;

pub use mock_llm::{Before, Ending, Framing, Gate, MockLlm, MockResponse, RecordedRequest};
use serde_json::{Value, json};
pub use settings::{
    Complete, DELTA_PATH, MESSAGE_PATH, Settings, completion_answer, openai_delta, openai_message,
    openai_sse, pretty, sse_event, user,
};
pub use sidecar::{Chunk, Reply, Sidecar, chunks_of, joined};

/// Upper bound for any single wait. Only reached when a test is about to fail.
pub const WAIT: Duration = Duration::from_secs(20);

/// Error codes of the protocol.
pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const INVALID_PARAMS: i64 = -32602;
pub const CANCELLED: i64 = -32800;
pub const REQUEST_FAILED: i64 = -32803;

/// Asserts the server still answers: an unknown method must get `-32601`.
pub fn assert_still_serving(sidecar: &mut Sidecar) {
    let id = sidecar.request("test/ping", json!({}));
    sidecar
        .wait_response(&id, WAIT)
        .expect_code(METHOD_NOT_FOUND);
}

/// Runs one `llm/complete` with `streamId` "s" and returns the reply after checking the stream
/// invariants (see [`Reply::checked_chunks`]) and that the content chunks add up to `result.text`.
pub fn complete_streamed(sidecar: &mut Sidecar, settings: Settings) -> Reply {
    complete_checked(sidecar, settings.params().build())
}

/// [`complete_streamed`] for any params (their `streamId` is set to "s").
pub fn complete_checked(sidecar: &mut Sidecar, mut params: Value) -> Reply {
    params["streamId"] = json!("s");
    let reply = sidecar.complete(params);
    let chunks = reply.checked_chunks(&json!("s"));
    if let Some(result) = reply.response.get("result") {
        assert_eq!(
            json!(joined(&chunks, "content")),
            result["text"],
            "content chunks must add up to result.text"
        );
    }
    reply
}

/// The text of a successful completion served by a mock that always sends `response`.
pub fn text_of(response: MockResponse, settings: impl FnOnce(String) -> Settings) -> String {
    let mock = MockLlm::always(response);
    let mut sidecar = Sidecar::spawn();
    let reply = complete_streamed(&mut sidecar, settings(mock.url("/v1/chat/completions")));
    reply.result()["text"]
        .as_str()
        .expect("result.text is a string")
        .to_owned()
}

/// A chatty model that never ends: `words` SSE deltas (`word0 `, `word1 `, …), `delay` apart, then
/// the stream hangs open.
pub fn chatty_stream(words: usize, delay: Duration) -> MockResponse {
    let events: Vec<String> = (0..words)
        .map(|i| sse_event(&openai_delta(&format!("word{i} "))))
        .collect();
    MockResponse::new(200)
        .content_type("text/event-stream")
        .chunked()
        .pieces_with_delay(events, delay)
        .then_hang()
}

/// A loopback port that refuses every connection for the rest of the test process.
///
/// A socket is bound to it and never listens, so a connect gets a reset (connection refused), and the port stays
/// taken: a port released at once could be handed to another test's server running in parallel, which would then
/// answer. The socket is left open on purpose (one descriptor per call, freed when the test process exits).
pub fn unused_port() -> u16 {
    use std::os::fd::FromRawFd;
    // SAFETY: plain socket calls on a descriptor this function owns; every result is checked.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        let mut addr: libc::sockaddr_in = std::mem::zeroed();
        addr.sin_family = libc::AF_INET as libc::sa_family_t;
        addr.sin_addr.s_addr = u32::from(std::net::Ipv4Addr::LOCALHOST).to_be();
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        let bound = libc::bind(fd, (&raw const addr).cast(), len);
        assert_eq!(bound, 0, "bind: {}", std::io::Error::last_os_error());
        let mut len = len;
        let named = libc::getsockname(fd, (&raw mut addr).cast(), &mut len);
        assert_eq!(named, 0, "getsockname: {}", std::io::Error::last_os_error());
        std::mem::forget(std::os::fd::OwnedFd::from_raw_fd(fd));
        u16::from_be(addr.sin_port)
    }
}

/// `data.partialText` of a `-32803`/`-32800` error.
pub fn partial_text(data: &Value) -> &str {
    data["partialText"]
        .as_str()
        .unwrap_or_else(|| panic!("data.partialText must be a string: {data}"))
}

/// A stderr line that warns about a Content-Type contradicting `customEngineResponseType`.
pub fn is_content_type_warning(line: &str) -> bool {
    let line = line.to_ascii_lowercase();
    line.contains("warn")
        && [
            "content-type",
            "content type",
            "application/json",
            "text/event-stream",
            "ndjson",
        ]
        .iter()
        .any(|word| line.contains(word))
}

/// `(field, message)` of every problem in `holder.problems` (error data or a validation report).
pub fn problems(holder: &Value) -> Vec<(String, String)> {
    holder["problems"]
        .as_array()
        .unwrap_or_else(|| panic!("problems must be an array: {holder}"))
        .iter()
        .map(|p| match (p["field"].as_str(), p["message"].as_str()) {
            (Some(field), Some(message)) => (field.to_owned(), message.to_owned()),
            _ => panic!("a problem needs a string field and message: {p}"),
        })
        .collect()
}

/// The message of the problem under `field`; panics if there is none.
pub fn message_for<'a>(problems: &'a [(String, String)], field: &str) -> &'a str {
    problems
        .iter()
        .find(|(f, _)| f == field)
        .map(|(_, m)| m.as_str())
        .unwrap_or_else(|| panic!("no problem under `{field}`: {problems:?}"))
}

/// Waits on `changed` until `done` holds for the guarded value; `Err` carries the guard when
/// `timeout` passed first.
pub fn wait_for_change<'a, T>(
    mut guard: std::sync::MutexGuard<'a, T>,
    changed: &std::sync::Condvar,
    timeout: Duration,
    done: impl Fn(&T) -> bool,
) -> Result<std::sync::MutexGuard<'a, T>, std::sync::MutexGuard<'a, T>> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if done(&guard) {
            return Ok(guard);
        }
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Err(guard);
        }
        guard = match changed.wait_timeout(guard, left) {
            Ok((guard, _)) => guard,
            Err(poisoned) => poisoned.into_inner().0,
        };
    }
}
