//! Retries: connect failures and HTTP 429/500/502/503/504 are retried (up to `retry.maxRetries`),
//! other statuses are not, `Retry-After` is honoured, and `attempts` counts the HTTP requests.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use serde_json::json;

/// Settings with short backoffs so retried tests stay fast.
fn quick_retries(url: String, max_retries: u64) -> Settings {
    Settings::sse(url, DELTA_PATH).set(
        "retry",
        json!({"maxRetries": max_retries, "initialBackoffMs": 10, "maxBackoffMs": 50}),
    )
}

/// A mock that answers the first `failures` requests with `failure` and then streams "ok".
fn failing_then_ok(failures: usize, failure: MockResponse) -> MockLlm {
    let served = AtomicUsize::new(0);
    MockLlm::start(move |_| {
        if served.fetch_add(1, Ordering::SeqCst) < failures {
            failure.clone()
        } else {
            MockResponse::sse(openai_sse(&["ok"]))
        }
    })
}

fn error_body(status: u16) -> MockResponse {
    MockResponse::json(
        status,
        json!({"error": {"message": format!("status {status}")}}).to_string(),
    )
}

#[test]
fn retryable_statuses_are_retried_until_the_request_succeeds() {
    let mut sidecar = Sidecar::spawn();
    let mut failures = Vec::new();
    for status in [429, 500, 502, 503, 504] {
        let mock = failing_then_ok(2, error_body(status));
        let reply = complete_streamed(&mut sidecar, quick_retries(mock.url("/v1"), 2));
        let requests = mock.requests().len();
        let result = &reply.response["result"];
        if result["text"] != "ok" || result["timings"]["attempts"] != 3 || requests != 3 {
            failures.push(format!(
                "HTTP {status} twice, then 200: {requests} requests, response {}",
                reply.response
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn other_statuses_are_not_retried() {
    let mut sidecar = Sidecar::spawn();
    let mut failures = Vec::new();
    for status in [400, 401, 403, 404, 422] {
        let mock = failing_then_ok(1, error_body(status));
        let reply = complete_streamed(&mut sidecar, quick_retries(mock.url("/v1"), 2));
        let data = &reply.response["error"]["data"];
        let requests = mock.requests().len();
        if data["kind"] != "http_status" || data["attempts"] != 1 || requests != 1 {
            failures.push(format!(
                "HTTP {status}: {requests} requests, response {}",
                reply.response
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn retries_stop_after_max_retries() {
    let mock = MockLlm::always(error_body(503));
    let mut sidecar = Sidecar::spawn();
    let reply = complete_streamed(&mut sidecar, quick_retries(mock.url("/v1"), 2));
    let data = reply.expect_error(REQUEST_FAILED, "http_status");
    assert_eq!(data["status"], 503);
    assert_eq!(data["attempts"], 3, "one request and two retries");
    assert_eq!(mock.requests().len(), 3);

    let reply = complete_streamed(&mut sidecar, quick_retries(mock.url("/v1"), 0));
    assert_eq!(
        reply.expect_error(REQUEST_FAILED, "http_status")["attempts"],
        1
    );
    assert_eq!(mock.requests().len(), 4, "maxRetries 0: no retry");
}

#[test]
fn connect_failures_are_retried() {
    let port = unused_port();
    let mut sidecar = Sidecar::spawn();
    let url = format!("http://127.0.0.1:{port}/v1");
    let reply = complete_streamed(&mut sidecar, quick_retries(url, 2));
    assert_eq!(reply.expect_error(REQUEST_FAILED, "connect")["attempts"], 3);
}

#[test]
fn retry_after_is_honoured() {
    let mock = failing_then_ok(1, error_body(503).header("Retry-After", "1"));
    let mut sidecar = Sidecar::spawn();
    let reply = complete_streamed(&mut sidecar, quick_retries(mock.url("/v1"), 2));
    assert_eq!(reply.result()["text"], "ok");
    let requests = mock.requests();
    assert_eq!(requests.len(), 2);
    let waited = requests[1].received_at - requests[0].received_at;
    // The backoff alone would be at most 50 ms; Retry-After asks for 1 s.
    assert!(
        waited >= Duration::from_millis(950),
        "the retry came {waited:?} after a Retry-After: 1"
    );
}

/// A server that reads each whole POST on a fresh connection and closes it without answering.
fn reads_then_closes() -> common::raw_server::RawServer {
    common::raw_server::RawServer::start(|mut conn| async move {
        if conn.read_request().await.is_some() {
            conn.close().await;
        }
    })
}

#[test]
fn a_request_the_server_received_is_sent_again_only_within_max_retries() {
    let mut sidecar = Sidecar::spawn();
    for (max_retries, posts) in [(0u64, 1usize), (1, 2)] {
        let server = reads_then_closes();
        let reply = complete_streamed(&mut sidecar, quick_retries(server.url("/v1"), max_retries));
        let data = reply.expect_error(REQUEST_FAILED, "interrupted");
        assert_eq!(data["attempts"], posts, "maxRetries {max_retries}: {data}");
        // Any extra POST would have arrived before the answer.
        assert_eq!(
            server.requests().len(),
            posts,
            "maxRetries {max_retries}: the server got the prompt once per allowed attempt"
        );
    }
}
