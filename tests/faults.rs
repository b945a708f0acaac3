//! Network faults injected on real sockets on 127.0.0.1: each one must end in the exact `-32803`
//! kind with the right `partialText`, and the process must stay healthy (a normal completion right
//! after it succeeds).
//!
//! Faults: connection refused, a listener that never accepts, a reset after some chunks, chunked
//! encoding cut short, a server that accepts and never answers, a stall mid-stream, every recorded
//! HTTP error body, 429 with `Retry-After` then success, TLS spoken to a plain-HTTP port, every
//! kind of redirect, an oversized line, invalid UTF-8, and a surrogate pair split across events.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use common::fixtures::{self, Fixture};
use common::raw_server::{Latch, RawServer, http_chunk, response_head};
use common::*;
use serde_json::{Value, json};

/// An order-of-magnitude bound: a fault with a sub-second limit must not wait for a default
/// (10 s connect, 60 s first byte / idle) or hang.
const PROMPT: Duration = Duration::from_secs(20);

/// The text of the health check after every fault.
const HEALTHY_TEXT: &str = "still serving";

/// A sidecar plus a well-behaved server used to prove the sidecar is healthy after a fault.
struct Bench {
    sidecar: Sidecar,
    good: MockLlm,
}

impl Bench {
    fn new() -> Bench {
        Bench {
            sidecar: Sidecar::spawn(),
            good: MockLlm::always(MockResponse::sse(openai_sse(&["still ", "serving"])).chunked()),
        }
    }

    /// Runs a streamed completion that must fail with `-32803` of `kind`. Checks that
    /// `partialText` is exactly the content streamed before the failure, that `attempts` is
    /// reported, and that a normal completion succeeds afterwards. Returns `data`.
    fn fail(&mut self, settings: Settings, kind: &str) -> Value {
        let reply = complete_streamed(&mut self.sidecar, settings);
        let data = reply.expect_error(REQUEST_FAILED, kind).clone();
        let streamed = joined(&reply.checked_chunks(&json!("s")), "content");
        assert_eq!(
            partial_text(&data),
            streamed,
            "partialText must be the text streamed before the failure: {data}"
        );
        assert!(
            data["attempts"].as_u64().is_some_and(|n| n >= 1),
            "data.attempts: {data}"
        );
        self.assert_healthy();
        data
    }

    /// A normal completion succeeds.
    fn assert_healthy(&mut self) {
        let settings = Settings::sse(self.good.url("/healthy"), DELTA_PATH);
        let reply = complete_streamed(&mut self.sidecar, settings);
        assert_eq!(
            reply.result()["text"],
            HEALTHY_TEXT,
            "the completion after a fault must succeed"
        );
    }
}

/// Settings with retries on but fast.
fn quick_retries(settings: Settings) -> Settings {
    settings.set(
        "retry",
        json!({"maxRetries": 2, "initialBackoffMs": 10, "maxBackoffMs": 40}),
    )
}

fn sse_head_chunked() -> Vec<u8> {
    response_head(200, &[("Content-Type", "text/event-stream")], None)
}

fn assert_prompt(started: Instant, what: &str) {
    let elapsed = started.elapsed();
    assert!(
        elapsed < PROMPT,
        "{what} took {elapsed:?}: the configured sub-second limit was not applied"
    );
}

#[test]
fn connection_refused_is_a_connect_error_after_the_retries() {
    let mut bench = Bench::new();
    let port = unused_port();
    let url = format!("http://127.0.0.1:{port}/v1/chat/completions");
    let data = bench.fail(
        quick_retries(Settings::sse(url.clone(), DELTA_PATH)),
        "connect",
    );
    assert_eq!(data["url"], json!(url));
    assert!(data["detail"].is_string(), "detail: {data}");
    assert_eq!(data["attempts"], 3, "connect failures are retried: {data}");
}

#[test]
fn a_listener_that_never_accepts_is_a_connect_timeout() {
    // A listen backlog of 1 that nobody accepts from: once it is full the kernel drops further
    // SYNs, so a connect neither succeeds nor is refused.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let listener = {
        let _guard = runtime.enter();
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        socket.listen(1).unwrap()
    };
    let addr = listener.local_addr().unwrap();
    let mut fillers = Vec::new();
    let full = (0..64).any(|_| {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
            Ok(stream) => {
                fillers.push(stream);
                false
            }
            Err(_) => true,
        }
    });
    assert!(full, "could not fill the listen backlog");

    let mut bench = Bench::new();
    let settings = Settings::sse(format!("http://{addr}/v1"), DELTA_PATH)
        .no_retries()
        .set("timeouts", json!({"connectMs": 300}));
    let started = Instant::now();
    let data = bench.fail(settings, "timeout");
    assert_prompt(started, "a connect timeout of 300 ms");
    assert_eq!(data["phase"], "connect", "{data}");
    assert_eq!(data["limitMs"], 300, "{data}");
    drop(listener);
}

#[test]
fn a_reset_after_some_chunks_is_interrupted_and_never_retried() {
    let reset = Latch::new();
    let server = {
        let reset = reset.clone();
        RawServer::start(move |mut conn| {
            let reset = reset.clone();
            async move {
                if conn.read_request().await.is_none() {
                    return;
                }
                let mut bytes = sse_head_chunked();
                for text in ["Hel", "lo ", "wor"] {
                    bytes.extend(http_chunk(sse_event(&openai_delta(text)).as_bytes()));
                }
                conn.write(&bytes).await;
                reset.wait().await;
                conn.reset();
            }
        })
    };
    let mut bench = Bench::new();
    let settings = quick_retries(Settings::sse(server.url("/v1"), DELTA_PATH));
    let id = bench
        .sidecar
        .request("llm/complete", settings.params().stream_id("s").build());
    // The reset comes once the three chunks have reached the client.
    bench.sidecar.wait_chunk(&json!("s"), 2, WAIT);
    reset.open();
    let reply = bench.sidecar.wait_response(&id, WAIT);
    let data = reply.expect_error(REQUEST_FAILED, "interrupted");
    assert_eq!(partial_text(data), "Hello wor");
    assert!(data["detail"].is_string(), "detail: {data}");
    assert_eq!(
        data["attempts"], 1,
        "a request is never re-sent once text was streamed"
    );
    assert_eq!(server.requests().len(), 1, "exactly one HTTP request");
    bench.assert_healthy();
}

#[test]
fn a_reset_right_after_the_response_head_is_retried_then_interrupted_with_no_text() {
    let server = RawServer::start(|mut conn| async move {
        if conn.read_request().await.is_none() {
            return;
        }
        conn.write(&sse_head_chunked()).await;
        conn.reset();
    });
    let mut bench = Bench::new();
    let data = bench.fail(
        quick_retries(Settings::sse(server.url("/v1"), DELTA_PATH)),
        "interrupted",
    );
    assert_eq!(partial_text(&data), "");
    assert_eq!(
        data["attempts"], 3,
        "a 200 response broken before any text is retried like a failed connect: {data}"
    );
    assert_eq!(server.requests().len(), 3);
}

#[test]
fn truncated_chunked_encoding_is_interrupted_with_the_complete_events_only() {
    let first = sse_event(&openai_delta("kept"));
    let lost = sse_event(&openai_delta("lost in the cut"));
    let cases: [(&str, Vec<u8>); 3] = [
        (
            // A chunk announcing more bytes than arrive before the server closes.
            "a chunk cut short",
            [
                http_chunk(first.as_bytes()),
                format!("{:x}\r\n", lost.len() + 100).into_bytes(),
                lost.as_bytes()[..lost.len() / 2].to_vec(),
            ]
            .concat(),
        ),
        (
            // Whole chunks, then the connection closes without the final `0` chunk.
            "no last chunk",
            http_chunk(first.as_bytes()),
        ),
        (
            // The close comes in the middle of a chunk-size line.
            "a cut chunk-size line",
            [http_chunk(first.as_bytes()), b"1".to_vec()].concat(),
        ),
    ];
    let mut bench = Bench::new();
    for (what, body) in cases {
        let server = RawServer::start(move |mut conn| {
            let body = body.clone();
            async move {
                if conn.read_request().await.is_none() {
                    return;
                }
                conn.write(&[sse_head_chunked(), body].concat()).await;
                conn.close().await;
            }
        });
        let reply = complete_streamed(
            &mut bench.sidecar,
            quick_retries(Settings::sse(server.url("/v1"), DELTA_PATH)),
        );
        let data = reply.expect_error(REQUEST_FAILED, "interrupted");
        assert_eq!(partial_text(data), "kept", "{what}: {data}");
        assert_eq!(
            joined(&reply.checked_chunks(&json!("s")), "content"),
            "kept",
            "{what}"
        );
        assert_eq!(server.requests().len(), 1, "{what}: not retried");
        bench.assert_healthy();
    }
}

#[test]
fn a_server_that_accepts_and_never_answers_times_out_at_the_first_byte() {
    // It does not even read the request.
    let server = RawServer::start(|mut conn| async move { conn.wait_closed().await });
    let mut bench = Bench::new();
    let settings = quick_retries(Settings::sse(server.url("/v1"), DELTA_PATH))
        .set("timeouts", json!({"firstByteMs": 300}));
    let started = Instant::now();
    let data = bench.fail(settings, "timeout");
    assert_prompt(started, "a first-byte timeout of 300 ms");
    assert_eq!(data["phase"], "firstByte", "{data}");
    assert_eq!(data["limitMs"], 300, "{data}");
    assert_eq!(partial_text(&data), "");
    assert_eq!(
        data["attempts"], 1,
        "only connect failures and some statuses are retried: {data}"
    );
    assert_eq!(server.connections_accepted(), 1, "no second attempt");
    server.wait_closed_by_client(1, WAIT);
}

/// How long the slow server of the first-byte tests waits before it answers.
const SLOW_ANSWER: Duration = Duration::from_secs(5);

#[test]
fn first_byte_ms_is_kept_exactly_on_a_new_and_on_a_pooled_connection() {
    // Answers a prompt with "slow" in it after 5 s, any other at once; `answered` counts the
    // slow answers written.
    let answered = Arc::new(AtomicUsize::new(0));
    let written = answered.clone();
    let server = RawServer::start(move |mut conn| {
        let written = written.clone();
        async move {
            let answer = common::raw_server::http_response(
                200,
                &[("Content-Type", "text/event-stream")],
                openai_sse(&["late"]).as_bytes(),
            );
            while let Some(request) = conn.read_request().await {
                let slow = String::from_utf8_lossy(&request.body).contains("slow");
                if slow {
                    tokio::time::sleep(SLOW_ANSWER).await;
                }
                if !conn.write(&answer).await {
                    return;
                }
                if slow {
                    written.fetch_add(1, Ordering::SeqCst);
                }
            }
        }
    });
    let mut sidecar = Sidecar::spawn();
    // The default connectMs (10 s) must not stretch the 400 ms first-byte limit.
    let settings = Settings::sse(server.url("/v1/chat/completions"), DELTA_PATH)
        .no_retries()
        .set("timeouts", json!({"firstByteMs": 400}));
    let fast = sidecar.complete(settings.clone().params().messages(user("fast")).build());
    assert_eq!(fast.result()["text"], "late", "{}", fast.response);
    for connection in ["pooled", "new"] {
        let reply = sidecar.complete(settings.clone().params().messages(user("slow")).build());
        let data = reply.expect_error(REQUEST_FAILED, "timeout").clone();
        assert_eq!(
            answered.load(Ordering::SeqCst),
            0,
            "{connection} connection: the error came before the server answered"
        );
        assert_eq!(data["phase"], "firstByte", "{connection}: {data}");
        assert_eq!(data["limitMs"], 400, "{connection}: {data}");
    }
    assert_eq!(
        server.connections_accepted(),
        2,
        "the first slow request reused the pooled connection, the second made a new one"
    );
}

#[test]
fn a_stream_that_stalls_mid_body_times_out_idle_or_total() {
    let mut bench = Bench::new();
    let cases = [
        (json!({"idleMs": 300}), "idle", 300),
        (json!({"totalMs": 700, "idleMs": 60000}), "total", 700),
    ];
    for (timeouts, phase, limit) in cases {
        let mock = MockLlm::always(
            MockResponse::sse(sse_event(&openai_delta("so ")))
                .chunked()
                .piece(sse_event(&openai_delta("far")))
                .then_hang(),
        );
        let settings =
            quick_retries(Settings::sse(mock.url("/v1"), DELTA_PATH)).set("timeouts", timeouts);
        let started = Instant::now();
        let data = bench.fail(settings, "timeout");
        assert_prompt(started, &format!("a {phase} timeout of {limit} ms"));
        assert_eq!(data["phase"], phase, "{data}");
        assert_eq!(data["limitMs"], limit, "{data}");
        assert_eq!(partial_text(&data), "so far");
        assert_eq!(data["attempts"], 1, "{data}");
        mock.wait_client_closed(0, WAIT);
        assert_eq!(mock.requests().len(), 1);
    }
}

#[test]
fn phase_limits_do_not_cut_a_slow_but_healthy_stream() {
    // Headers at once, the first event 600 ms later, then 12 events 100 ms apart: about 1.8 s in
    // all, far over the first-byte limit, while no single silence reaches the idle limit.
    let texts: Vec<String> = (0..12).map(|i| format!("{i} ")).collect();
    let mut response = MockResponse::new(200)
        .content_type("text/event-stream")
        .chunked()
        .piece_after(
            Before::Delay(Duration::from_millis(600)),
            sse_event(&openai_delta("start ")),
        );
    for text in &texts {
        response = response.piece_after(
            Before::Delay(Duration::from_millis(100)),
            sse_event(&openai_delta(text)),
        );
    }
    let mock = MockLlm::always(response.piece(sse_event("[DONE]")));
    let mut bench = Bench::new();
    let settings = Settings::sse(mock.url("/v1"), DELTA_PATH)
        .no_retries()
        .set("timeouts", json!({"firstByteMs": 300, "idleMs": 2000}));
    let reply = complete_streamed(&mut bench.sidecar, settings);
    assert_eq!(
        reply.result()["text"],
        json!(format!("start {}", texts.concat())),
        "firstByteMs limits the wait for the response head only"
    );
}

/// The HTTP error fixtures (`*-http-*.json`).
fn http_error_fixtures() -> Vec<Fixture> {
    let found: Vec<Fixture> = fixtures::load_all()
        .into_iter()
        .filter(|f| f.name.contains("-http-") && f.format == "json")
        .collect();
    assert!(found.len() >= 15, "expected the HTTP error fixtures");
    found
}

#[test]
fn every_recorded_http_error_body_fails_with_its_status_and_provider_message() {
    let cases = http_error_fixtures();
    let served = cases.clone();
    let mock = MockLlm::start(move |request| {
        let name = request.path.trim_start_matches('/');
        let fixture = served
            .iter()
            .find(|f| f.name == name)
            .expect("a fixture name");
        MockResponse::new(fixture.http_status)
            .content_type(&fixture.content_type)
            .piece(&fixture.body)
    });
    let mut bench = Bench::new();
    let mut failures = Vec::new();
    let mut requests_before = 0;
    for fixture in &cases {
        assert!(
            fixture.http_status >= 400,
            "{}: http_status {}",
            fixture.name,
            fixture.http_status
        );
        let settings = quick_retries(Settings::sse(
            mock.url(&format!("/{}", fixture.name)),
            DELTA_PATH,
        ));
        let reply = complete_streamed(&mut bench.sidecar, settings);
        let requests = mock.requests().len() - requests_before;
        requests_before += requests;
        let retried = matches!(fixture.http_status, 429 | 500 | 502 | 503 | 504);
        let attempts = if retried { 3 } else { 1 };
        let error = &reply.response["error"];
        let data = &error["data"];
        let mut wrong = Vec::new();
        if error["code"] != json!(REQUEST_FAILED) || data["kind"] != "http_status" {
            wrong.push("code/kind".to_owned());
        }
        if data["status"] != json!(fixture.http_status) {
            wrong.push(format!("status (expected {})", fixture.http_status));
        }
        if data["partialText"] != "" {
            wrong.push("partialText".to_owned());
        }
        if data["attempts"] != json!(attempts) || requests != attempts {
            wrong.push(format!(
                "attempts (expected {attempts}, {requests} requests made)"
            ));
        }
        if let Some(message) = &fixture.expected_error_message {
            if data["providerMessage"] != json!(message) {
                wrong.push(format!("providerMessage (expected {message:?})"));
            }
            let text = error["message"].as_str().unwrap_or_default();
            if !text.contains(message.as_str()) {
                wrong.push("error.message does not quote the provider message".to_owned());
            }
        }
        if !reply.chunks(&json!("s")).is_empty() {
            wrong.push("chunks were sent".to_owned());
        }
        if !wrong.is_empty() {
            failures.push(format!(
                "{} (HTTP {}): wrong {}\n  got {}",
                fixture.name,
                fixture.http_status,
                wrong.join(", "),
                reply.response
            ));
        }
        bench.assert_healthy();
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A mock that answers the first request with `first` and every later one with a stream of "ok";
/// it records when each request arrived.
fn first_then_ok(
    first: impl Fn() -> MockResponse + Send + Sync + 'static,
) -> (MockLlm, Arc<Mutex<Vec<Instant>>>) {
    let arrivals = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&arrivals);
    let served = AtomicUsize::new(0);
    let mock = MockLlm::start(move |_| {
        seen.lock().unwrap().push(Instant::now());
        if served.fetch_add(1, Ordering::SeqCst) == 0 {
            first()
        } else {
            MockResponse::sse(openai_sse(&["o", "k"]))
        }
    });
    (mock, arrivals)
}

fn rate_limited(retry_after: String) -> MockResponse {
    MockResponse::json(
        429,
        json!({"error": {"message": "Rate limit reached", "type": "requests"}}).to_string(),
    )
    .header("Retry-After", &retry_after)
}

#[test]
fn http_429_with_retry_after_seconds_then_success() {
    let (mock, arrivals) = first_then_ok(|| rate_limited("1".into()));
    let mut bench = Bench::new();
    let reply = complete_streamed(
        &mut bench.sidecar,
        quick_retries(Settings::sse(mock.url("/v1"), DELTA_PATH)),
    );
    assert_eq!(reply.result()["text"], "ok");
    let arrivals = arrivals.lock().unwrap().clone();
    assert_eq!(arrivals.len(), 2, "one 429, one retry");
    let waited = arrivals[1] - arrivals[0];
    assert!(
        waited >= Duration::from_millis(900),
        "the retry came {waited:?} after `Retry-After: 1` (the backoff alone is at most 40 ms)"
    );
    bench.assert_healthy();
}

#[test]
fn http_429_with_retry_after_as_an_http_date_then_success() {
    // An HTTP date has whole seconds: 3 s ahead is at least 2 s ahead once formatted.
    let (mock, arrivals) = first_then_ok(|| {
        rate_limited(httpdate::fmt_http_date(
            SystemTime::now() + Duration::from_secs(3),
        ))
    });
    let mut bench = Bench::new();
    let reply = complete_streamed(
        &mut bench.sidecar,
        quick_retries(Settings::sse(mock.url("/v1"), DELTA_PATH)),
    );
    assert_eq!(reply.result()["text"], "ok");
    let arrivals = arrivals.lock().unwrap().clone();
    assert_eq!(arrivals.len(), 2);
    let waited = arrivals[1] - arrivals[0];
    assert!(
        waited >= Duration::from_millis(1500),
        "the retry came {waited:?} after a Retry-After date at least 2 s ahead"
    );
}

#[test]
fn cancel_interrupts_the_wait_for_a_retry() {
    let (mock, _) = first_then_ok(|| rate_limited("30".into()));
    let mut bench = Bench::new();
    let settings = quick_retries(Settings::sse(mock.url("/v1"), DELTA_PATH));
    let id = bench
        .sidecar
        .request("llm/complete", settings.params().stream_id("s").build());
    mock.wait_for_requests(1, WAIT);
    // Give the sidecar a moment to read the 429 and start waiting; the cancel must be answered
    // promptly wherever it lands.
    bench
        .sidecar
        .wait_stderr(Duration::from_secs(2), |text| text.contains("retry"));
    let started = Instant::now();
    bench.sidecar.cancel(&id);
    let reply = bench.sidecar.wait_response(&id, WAIT);
    let data = reply.expect_error(CANCELLED, "cancelled");
    assert_eq!(partial_text(data), "");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "the cancel waited for Retry-After: 30"
    );
    assert_eq!(mock.requests().len(), 1, "no retry after the cancel");
    bench.assert_healthy();
}

#[test]
fn tls_to_a_plain_http_port_is_a_connect_error() {
    let plain = MockLlm::always(MockResponse::sse(openai_sse(&["plain"])));
    let url = plain.url("/v1").replacen("http://", "https://", 1);
    let mut bench = Bench::new();
    let data = bench.fail(
        Settings::sse(url.clone(), DELTA_PATH).no_retries(),
        "connect",
    );
    assert_eq!(data["url"], json!(url));
    assert!(data["detail"].is_string(), "detail: {data}");
    assert!(
        plain.requests().iter().all(|r| r.method != "POST"),
        "no plain-text request was made"
    );
}

#[test]
fn redirects_307_and_308_within_the_origin_repeat_the_post_with_its_body() {
    let server = MockLlm::start(|request| {
        if request.path.starts_with("/v2/chat") {
            return MockResponse::sse(openai_sse(&["moved ", "here"]));
        }
        let status: u16 = request.path.trim_start_matches('/').parse().unwrap();
        // A path on the same server: the POST must follow with its body.
        let location = if status == 307 {
            "/v2/chat"
        } else {
            "/v2/chat?from=308"
        };
        MockResponse::new(status)
            .header("Location", location)
            .content_type("text/plain")
            .piece(format!("moved to {location}"))
    });
    let mut bench = Bench::new();
    for status in [307u16, 308] {
        let before = server.requests().len();
        let settings = Settings::sse(server.url(&format!("/{status}")), DELTA_PATH)
            .no_retries()
            .request_format(json!({"customFields": {"model": "m", "stream": true}}));
        let params = settings
            .params()
            .stream_id("s")
            .messages(user(&format!("prompt {status}")))
            .build();
        let reply = bench.sidecar.complete(params);
        assert_eq!(reply.result()["text"], "moved here", "HTTP {status}");
        let requests = server.requests();
        let (original, repeated) = (&requests[before], &requests[before + 1]);
        assert!(repeated.path.starts_with("/v2/chat"), "HTTP {status}");
        assert_eq!(repeated.method, "POST", "HTTP {status}: still a POST");
        assert_eq!(
            repeated.body, original.body,
            "HTTP {status}: the same body is sent again"
        );
        assert_eq!(
            repeated.json()["messages"][0]["content"],
            format!("prompt {status}")
        );
        assert_eq!(
            repeated.header("content-type"),
            Some("application/json"),
            "HTTP {status}"
        );
        bench.assert_healthy();
    }
    assert_eq!(server.requests().last().unwrap().path, "/v2/chat?from=308");
}

#[test]
fn redirects_301_302_and_303_are_reported_with_their_location() {
    let redirector = MockLlm::start(|request| {
        let status: u16 = request.path.trim_start_matches('/').parse().unwrap();
        MockResponse::new(status)
            .header("Location", "http://127.0.0.1:9/v1/new-endpoint")
            .content_type("text/html")
            .piece("<html>Moved</html>")
    });
    let mut bench = Bench::new();
    for status in [301u16, 302, 303] {
        let before = redirector.requests().len();
        let settings = quick_retries(Settings::sse(
            redirector.url(&format!("/{status}")),
            DELTA_PATH,
        ));
        let data = bench.fail(settings, "http_status");
        assert_eq!(data["status"], status, "{data}");
        assert_eq!(
            data["location"], "http://127.0.0.1:9/v1/new-endpoint",
            "{data}"
        );
        assert_eq!(partial_text(&data), "");
        assert_eq!(data["attempts"], 1, "a redirect is not retried: {data}");
        assert_eq!(
            redirector.requests().len() - before,
            1,
            "HTTP {status} is not followed"
        );
    }
}

#[test]
fn an_oversized_line_is_too_large_after_the_text_before_it() {
    let mut bench = Bench::new();
    let big = "x".repeat(4000);
    let sse = MockLlm::always(
        MockResponse::sse(sse_event(&openai_delta("before ")))
            .chunked()
            .piece(sse_event(&openai_delta(&big)))
            .piece(sse_event(&openai_delta("after"))),
    );
    let ndjson_line = |text: &str| format!("{}\n", json!({"message": {"content": text}}));
    let ndjson = MockLlm::always(
        MockResponse::new(200)
            .content_type("application/x-ndjson")
            .chunked()
            .piece(ndjson_line("before "))
            .piece(ndjson_line(&big))
            .piece(ndjson_line("after")),
    );
    let mut failures = Vec::new();
    for (what, settings) in [
        ("an SSE event", Settings::sse(sse.url("/v1"), DELTA_PATH)),
        (
            "an NDJSON line",
            Settings::new(ndjson.url("/api/chat"))
                .response_type("NDJSON")
                .path("$.message.content"),
        ),
    ] {
        // The oversized event arrives whole, in one read: the limit applies all the same.
        let settings = settings.set("maxEventBytes", 1000);
        let reply = complete_streamed(&mut bench.sidecar, settings);
        let data = &reply.response["error"]["data"];
        let streamed = joined(&reply.checked_chunks(&json!("s")), "content");
        if reply.response["error"]["code"] != json!(REQUEST_FAILED)
            || data["kind"] != "too_large"
            || data["what"] != "event"
            || data["limit"] != 1000
            || data["partialText"] != "before "
            || streamed != "before "
        {
            failures.push(format!(
                "{what} of 4 KiB with maxEventBytes 1000: expected too_large (event, limit 1000) \
                 after \"before \", got {}",
                truncated(&reply.response.to_string(), 400)
            ));
        }
        bench.assert_healthy();
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn truncated(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[test]
fn invalid_utf8_becomes_replacement_characters() {
    let event = |content: &[u8]| {
        [
            b"data: {\"choices\":[{\"delta\":{\"content\":\"".as_slice(),
            content,
            b"\"}}]}\n\n",
        ]
        .concat()
    };
    let body = [
        event(b"a\xffb"),
        // A three-byte sequence cut after two bytes, then a whole one.
        event(b" c\xe2\x82"),
        event(b" \xe2\x82\xac"),
        // A byte that can never start a sequence and an overlong encoding.
        event(b" \xc0\xafd"),
        b"data: [DONE]\n\n".to_vec(),
    ]
    .concat();
    let mock = MockLlm::always(MockResponse::sse(&body).chunked());
    let mut bench = Bench::new();
    let reply = complete_streamed(
        &mut bench.sidecar,
        Settings::sse(mock.url("/v1"), DELTA_PATH),
    );
    assert_eq!(
        reply.result()["text"],
        "a\u{FFFD}b c\u{FFFD} \u{20AC} \u{FFFD}\u{FFFD}d"
    );
    bench.assert_healthy();

    // Plain-text SSE (no JSON): the raw data is the text.
    let plain = MockLlm::always(
        MockResponse::sse(b"data: caf\xc3\n\ndata: \xa9 ok\n\n".as_slice()).chunked(),
    );
    let reply = complete_streamed(&mut bench.sidecar, Settings::new(plain.url("/v1")));
    assert_eq!(reply.result()["text"], "caf\u{FFFD}\u{FFFD} ok");

    // NDJSON and an HTTP error body.
    let ndjson = MockLlm::always(
        MockResponse::new(200)
            .content_type("application/x-ndjson")
            .piece(b"{\"message\":{\"content\":\"n\xffo\"}}\n".as_slice()),
    );
    let settings = Settings::new(ndjson.url("/api/chat"))
        .response_type("NDJSON")
        .path("$.message.content");
    let reply = complete_streamed(&mut bench.sidecar, settings);
    assert_eq!(reply.result()["text"], "n\u{FFFD}o");

    let error = MockLlm::always(
        MockResponse::new(400)
            .content_type("text/plain")
            .piece(b"bad \xff request".as_slice()),
    );
    let data = bench.fail(
        Settings::sse(error.url("/v1"), DELTA_PATH).no_retries(),
        "http_status",
    );
    assert_eq!(data["body"], "bad \u{FFFD} request");
}

#[test]
fn a_surrogate_pair_split_across_events_is_rejoined() {
    // The escapes are sent as JSON text, as a Node server slicing UTF-16 would send them.
    let escaped = |content: &str| {
        format!("data: {{\"choices\":[{{\"delta\":{{\"content\":\"{content}\"}}}}]}}\n\n")
    };
    let cases = [
        // High surrogate at the end of one event, low at the start of the next.
        (
            vec![escaped("Hi \\ud83d"), escaped("\\udc4b!")],
            "Hi \u{1F44B}!",
        ),
        // The pair split alone, with nothing else in either event.
        (vec![escaped("\\ud83d"), escaped("\\ude00")], "\u{1F600}"),
        // A lone high surrogate followed by ordinary text.
        (vec![escaped("x\\ud83d"), escaped("y")], "x\u{FFFD}y"),
        // A lone low surrogate.
        (vec![escaped("\\udc4b z")], "\u{FFFD} z"),
        // A high surrogate in the last event.
        (vec![escaped("end\\ud83d")], "end\u{FFFD}"),
        // A whole pair inside one event is just the character.
        (vec![escaped("\\ud83d\\udc4b")], "\u{1F44B}"),
    ];
    let mut bench = Bench::new();
    let mut failures = Vec::new();
    for (events, expected) in cases {
        // Each event in its own HTTP chunk, and the stream ends with [DONE].
        let mut response = MockResponse::new(200)
            .content_type("text/event-stream")
            .chunked();
        for event in &events {
            response = response.piece(event);
        }
        response = response.piece(sse_event("[DONE]"));
        let mock = MockLlm::always(response);
        let reply = complete_streamed(
            &mut bench.sidecar,
            Settings::sse(mock.url("/v1"), DELTA_PATH),
        );
        let text = &reply.result()["text"];
        if text != expected {
            failures.push(format!("{events:?}: expected {expected:?}, got {text}"));
        }
        let chunks = reply.checked_chunks(&json!("s"));
        if chunks.iter().any(|c| c.text.contains('\u{FDD0}')) {
            failures.push(format!("{events:?}: an internal marker leaked: {chunks:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    bench.assert_healthy();
}
