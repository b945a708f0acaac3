//! `-32803` RequestFailed: one test per `data.kind`, with `partialText`, the extra data fields, no
//! error text in chunks, and the server still serving afterwards.

mod common;

use common::*;
use serde_json::{Value, json};

/// Runs a streamed completion that must fail with `-32803` of `kind`; checks that `partialText`
/// is a string, that no chunk carries error text, and that the server keeps serving. Returns
/// `data` and the content streamed before the failure.
fn failure(sidecar: &mut Sidecar, settings: Settings, kind: &str) -> (Value, String) {
    let reply = complete_streamed(sidecar, settings);
    let data = reply.expect_error(REQUEST_FAILED, kind).clone();
    assert!(
        data["attempts"].as_u64().is_some_and(|n| n >= 1),
        "data.attempts: {data}"
    );
    let streamed = joined(&reply.checked_chunks(&json!("s")), "content");
    assert_eq!(
        partial_text(&data),
        streamed,
        "partialText is the text streamed before the failure"
    );
    if let Some(message) = data["providerMessage"].as_str() {
        assert!(
            !streamed.contains(message),
            "error text must never be sent as a chunk: {streamed:?}"
        );
    }
    assert_still_serving(sidecar);
    (data, streamed)
}

/// `data.event` / `data.sample` may be JSON or its text: returns it as JSON when possible.
fn as_json(value: &Value) -> Value {
    value
        .as_str()
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or_else(|| value.clone())
}

#[test]
fn connect_error_names_the_url_without_its_query() {
    let port = unused_port();
    let mut sidecar = Sidecar::spawn();
    let url = format!("http://127.0.0.1:{port}/v1/chat/completions?key=query-secret");
    let settings = Settings::sse(url, DELTA_PATH).no_retries();
    let (data, _) = failure(&mut sidecar, settings, "connect");
    assert_eq!(
        data["url"],
        json!(format!("http://127.0.0.1:{port}/v1/chat/completions"))
    );
    assert!(data["detail"].is_string(), "detail: {data}");
    assert_eq!(partial_text(&data), "");
    assert_eq!(data["attempts"], 1, "retries were turned off");
}

#[test]
fn http_status_error_reports_status_body_and_provider_message() {
    let cases = [
        (
            401,
            json!({"error": {
                "message": "Incorrect API key provided",
                "type": "invalid_request_error",
                "code": "invalid_api_key"
            }}),
            "Incorrect API key provided",
        ),
        (
            404,
            json!({"error": "model 'llama9' not found"}),
            "model 'llama9' not found",
        ),
        (
            400,
            json!({"object": "error", "message": "Invalid model: x", "type": "invalid_model"}),
            "Invalid model: x",
        ),
        (401, json!({"detail": "Invalid API Key"}), "Invalid API Key"),
    ];
    let bodies: Vec<(u16, String)> = cases
        .iter()
        .map(|(status, body, _)| (*status, serde_json::to_string_pretty(body).unwrap()))
        .collect();
    let served = bodies.clone();
    let mock = MockLlm::start(move |request| {
        let case: usize = request.path.trim_start_matches("/case/").parse().unwrap();
        let (status, body) = &served[case];
        MockResponse::json(*status, body)
    });
    let mut sidecar = Sidecar::spawn();
    let mut failures = Vec::new();
    for (i, (status, _, provider_message)) in cases.iter().enumerate() {
        let settings = Settings::sse(mock.url(&format!("/case/{i}")), DELTA_PATH).no_retries();
        let reply = complete_streamed(&mut sidecar, settings);
        let error = &reply.response["error"];
        let data = &error["data"];
        let message = error["message"].as_str().unwrap_or_default();
        let ok = error["code"] == json!(REQUEST_FAILED)
            && data["kind"] == "http_status"
            && data["status"] == json!(status)
            && data["body"] == json!(bodies[i].1)
            && data["providerMessage"] == json!(provider_message)
            && data["contentType"] == "application/json"
            && data["partialText"] == ""
            && message.contains(&status.to_string())
            && message.contains(provider_message);
        if !ok {
            failures.push(format!(
                "HTTP {status} with {}:\n  expected status, body, providerMessage {provider_message:?}, \
                 contentType and a message quoting both\n  got {}",
                bodies[i].1, reply.response
            ));
        }
        assert!(
            reply.chunks(&json!("s")).is_empty(),
            "no chunks for an HTTP error"
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_still_serving(&mut sidecar);
}

#[test]
fn http_status_body_is_cut_to_its_first_4_kib() {
    let body = "x".repeat(10_000);
    let mock = MockLlm::always(
        MockResponse::new(502)
            .content_type("text/plain")
            .piece(&body),
    );
    let mut sidecar = Sidecar::spawn();
    let settings = Settings::sse(mock.url("/v1"), DELTA_PATH).no_retries();
    let (data, _) = failure(&mut sidecar, settings, "http_status");
    assert_eq!(data["status"], 502);
    let sent = data["body"].as_str().expect("data.body is a string");
    assert!(
        body.starts_with(sent) && (4092..=4096).contains(&sent.len()),
        "data.body must be the first 4 KiB, got {} bytes",
        sent.len()
    );
    assert_eq!(data["contentType"], "text/plain");
}

#[test]
fn http_status_reports_retry_after() {
    let mock = MockLlm::always(
        MockResponse::json(429, r#"{"error":{"message":"Rate limit reached"}}"#)
            .header("Retry-After", "7"),
    );
    let mut sidecar = Sidecar::spawn();
    let settings = Settings::sse(mock.url("/v1"), DELTA_PATH).no_retries();
    let (data, _) = failure(&mut sidecar, settings, "http_status");
    assert_eq!(data["status"], 429);
    assert_eq!(data["providerMessage"], "Rate limit reached");
    assert!(
        data["retryAfter"] == json!(7) || data["retryAfter"] == json!("7"),
        "retryAfter: {data}"
    );
}

#[test]
fn stream_error_from_an_sse_error_event() {
    let error_event =
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}});
    let body = format!(
        "{}{}event: error\ndata: {error_event}\n\n",
        sse_event(&openai_delta("Par")),
        sse_event(&openai_delta("tial"))
    );
    let mock = MockLlm::always(MockResponse::sse(body));
    let mut sidecar = Sidecar::spawn();
    let (data, streamed) = failure(
        &mut sidecar,
        Settings::sse(mock.url("/v1"), DELTA_PATH),
        "stream_error",
    );
    assert_eq!(streamed, "Partial");
    assert_eq!(data["providerMessage"], "Overloaded");
    assert_eq!(as_json(&data["event"]), error_event);
}

#[test]
fn stream_error_from_an_event_with_a_top_level_error() {
    let cases = [
        (
            json!({"error": {"message": "Upstream exploded", "code": "server_error"}}),
            "Upstream exploded",
        ),
        (
            json!({"error": "an error was encountered while running the model"}),
            "an error was encountered while running the model",
        ),
    ];
    let mut sidecar = Sidecar::spawn();
    for (error_event, provider_message) in cases {
        let body = format!(
            "{}{}{}",
            sse_event(&openai_delta("Hi")),
            sse_event(&error_event.to_string()),
            sse_event(&openai_delta(" never"))
        );
        let mock = MockLlm::always(MockResponse::sse(body));
        let (data, streamed) = failure(
            &mut sidecar,
            Settings::sse(mock.url("/v1"), DELTA_PATH),
            "stream_error",
        );
        assert_eq!(streamed, "Hi");
        assert_eq!(data["providerMessage"], provider_message);
        assert_eq!(as_json(&data["event"]), error_event);
    }
}

#[test]
fn a_null_top_level_error_is_not_a_stream_error() {
    let body = [
        sse_event(&json!({"error": null, "choices": [{"delta": {"content": "fine"}}]}).to_string()),
        sse_event("[DONE]"),
    ]
    .concat();
    let text = text_of(MockResponse::sse(body), |url| {
        Settings::sse(url, DELTA_PATH)
    });
    assert_eq!(text, "fine");
}

#[test]
fn stream_error_from_bare_json_appended_to_an_sse_body() {
    // As Vertex AI does (fixture gemini-vertex-stream-error-mid-stream).
    let part = |text: &str| {
        json!({"candidates": [{"content": {"role": "model", "parts": [{"text": text}]}}]})
            .to_string()
    };
    let bare_error = concat!(
        "{\n",
        "  \"error\": {\n",
        "    \"code\": 499,\n",
        "    \"message\": \"The operation was cancelled.\",\n",
        "    \"status\": \"CANCELLED\"\n",
        "  }\n",
        "}\n"
    );
    let body = format!(
        "data: {}\r\n\r\ndata: {}\r\n\r\n{bare_error}",
        part("First "),
        part("Second ")
    );
    let mock = MockLlm::always(MockResponse::sse(body));
    let mut sidecar = Sidecar::spawn();
    let settings = Settings::sse(mock.url("/v1"), "$.candidates[0].content.parts[0].text");
    let (data, streamed) = failure(&mut sidecar, settings, "stream_error");
    assert_eq!(streamed, "First Second ");
    assert_eq!(data["providerMessage"], "The operation was cancelled.");
}

#[test]
fn no_match_reports_the_path_the_event_count_and_a_sample() {
    let body = [
        sse_event(r#"{"id":"evt-one","choices":[{"delta":{"content":"a"}}]}"#),
        sse_event(r#"{"id":"evt-two","choices":[{"delta":{"content":"b"}}]}"#),
        sse_event(r#"{"id":"evt-three","choices":[{"delta":{"content":"c"}}]}"#),
    ]
    .concat();
    let mock = MockLlm::always(MockResponse::sse(body));
    let mut sidecar = Sidecar::spawn();
    let (data, _) = failure(
        &mut sidecar,
        Settings::sse(mock.url("/v1"), "$.choices[0].delta.text"),
        "no_match",
    );
    assert_eq!(data["path"], "$.choices[0].delta.text");
    assert_eq!(data["events"], 3);
    assert!(
        data["sample"].to_string().contains("evt-one"),
        "the sample holds the first events' data: {data}"
    );
    assert_eq!(partial_text(&data), "");
}

#[test]
fn a_path_that_selects_only_objects_is_no_match_with_the_text_path_suggested() {
    let body = [
        sse_event(r#"{"id":"x","choices":[{"delta":{"content":"Hel"}}]}"#),
        sse_event(r#"{"id":"x","choices":[{"delta":{"content":"lo"}}]}"#),
        sse_event("[DONE]"),
    ]
    .concat();
    let mock = MockLlm::always(MockResponse::sse(body));
    let mut sidecar = Sidecar::spawn();
    let (data, _) = failure(
        &mut sidecar,
        Settings::sse(mock.url("/v1"), "$.choices[0].delta"),
        "no_match",
    );
    assert_eq!(data["nonTextEvents"], 2, "{data}");
    assert_eq!(data["suggestions"][0]["path"], "$.choices[0].delta.content");
    assert_eq!(data["suggestions"][0]["sampleText"], "Hello");
}

#[test]
fn a_path_that_selects_only_null_or_empty_strings_is_a_valid_empty_answer() {
    let body = [
        sse_event(&json!({"choices": [{"delta": {"content": null}}]}).to_string()),
        sse_event(&json!({"choices": [{"delta": {"content": ""}}]}).to_string()),
        sse_event("[DONE]"),
    ]
    .concat();
    let mock = MockLlm::always(MockResponse::sse(body));
    let mut sidecar = Sidecar::spawn();
    let reply = complete_streamed(&mut sidecar, Settings::sse(mock.url("/v1"), DELTA_PATH));
    assert_eq!(reply.result()["text"], "");
    assert_eq!(reply.result()["chunks"], 0);
}

#[test]
fn decode_error_when_no_event_can_be_read() {
    let cases = [
        (
            "SSE configured, HTML body",
            MockResponse::new(200)
                .content_type("text/html")
                .piece("<html><body>Bad Gateway page</body></html>"),
            "SSE",
        ),
        (
            "JSON configured, broken JSON",
            MockResponse::json(200, "{\"choices\": [Bad Gateway page"),
            "JSON",
        ),
    ];
    let mut sidecar = Sidecar::spawn();
    for (name, response, response_type) in cases {
        let mock = MockLlm::always(response);
        let settings = Settings::sse(mock.url("/v1"), MESSAGE_PATH).response_type(response_type);
        let (data, _) = failure(&mut sidecar, settings, "decode");
        assert!(
            data["sample"].to_string().contains("Bad Gateway page"),
            "{name}: sample holds the first bytes: {data}"
        );
        assert!(data["detail"].is_string(), "{name}: detail: {data}");
    }
}

#[test]
fn decode_error_when_every_event_is_non_json_and_a_path_is_set() {
    let mock = MockLlm::always(MockResponse::sse("data: hello\n\ndata: world\n\n"));
    let mut sidecar = Sidecar::spawn();
    let (data, _) = failure(
        &mut sidecar,
        Settings::sse(mock.url("/v1"), DELTA_PATH),
        "decode",
    );
    assert!(data["sample"].to_string().contains("hello"), "{data}");
}

#[test]
fn interrupted_when_the_connection_closes_mid_body() {
    let pieces = [
        sse_event(&openai_delta("Hel")),
        sse_event(&openai_delta("lo")),
    ];
    let mut sidecar = Sidecar::spawn();
    for (framing, response) in [
        (
            "chunked",
            MockResponse::sse(&pieces[0])
                .piece(&pieces[1])
                .chunked()
                .then_close(),
        ),
        (
            "Content-Length",
            MockResponse::sse(&pieces[0]).piece(&pieces[1]).then_close(),
        ),
    ] {
        let mock = MockLlm::always(response);
        let settings = Settings::sse(mock.url("/v1"), DELTA_PATH).no_retries();
        let (data, streamed) = failure(&mut sidecar, settings, "interrupted");
        assert_eq!(streamed, "Hello", "{framing}");
        assert!(data["detail"].is_string(), "{framing}: detail: {data}");
    }
}

#[test]
fn timeout_when_the_stream_goes_idle_or_runs_too_long() {
    let mut sidecar = Sidecar::spawn();

    let idle = MockLlm::always(
        MockResponse::sse(sse_event(&openai_delta("so far")))
            .chunked()
            .then_hang(),
    );
    let settings = Settings::sse(idle.url("/v1"), DELTA_PATH)
        .no_retries()
        .set("timeouts", json!({"idleMs": 300}));
    let (data, streamed) = failure(&mut sidecar, settings, "timeout");
    assert_eq!(streamed, "so far");
    assert_eq!(data["phase"], "idle");
    assert_eq!(data["limitMs"], 300);

    let endless: Vec<String> = (0..200)
        .map(|i| sse_event(&openai_delta(&format!("{i} "))))
        .collect();
    let slow = MockLlm::always(
        MockResponse::new(200)
            .content_type("text/event-stream")
            .chunked()
            .pieces_with_delay(endless, std::time::Duration::from_millis(50)),
    );
    let settings = Settings::sse(slow.url("/v1"), DELTA_PATH)
        .no_retries()
        .set("timeouts", json!({"totalMs": 500}));
    let (data, _) = failure(&mut sidecar, settings, "timeout");
    assert_eq!(data["phase"], "total");
    assert_eq!(data["limitMs"], 500);
}

#[test]
fn too_large_when_an_event_or_the_body_is_over_its_limit() {
    let mut sidecar = Sidecar::spawn();

    // The big event is only sent once the first chunk has been seen.
    let first_seen = Gate::new();
    let big_event = MockLlm::always(
        MockResponse::sse(sse_event(&openai_delta("ok")))
            .chunked()
            .piece_after(
                Before::Gate(first_seen.clone()),
                sse_event(&openai_delta(&"y".repeat(5000))),
            ),
    );
    let settings = Settings::sse(big_event.url("/v1"), DELTA_PATH).set("maxEventBytes", 1000);
    let id = sidecar.request("llm/complete", settings.params().stream_id("s").build());
    sidecar.wait_chunk(&json!("s"), 0, WAIT);
    first_seen.open();
    let reply = sidecar.wait_response(&id, WAIT);
    let data = reply.expect_error(REQUEST_FAILED, "too_large");
    assert_eq!(partial_text(data), "ok");
    assert_eq!(data["what"], "event");
    assert_eq!(data["limit"], 1000);

    let many_events: String = (0..100).map(|_| sse_event(&openai_delta("zzzz"))).collect();
    let big_body = MockLlm::always(MockResponse::sse(many_events));
    let settings = Settings::sse(big_body.url("/v1"), DELTA_PATH).set("maxResponseBytes", 2000);
    let (data, _) = failure(&mut sidecar, settings, "too_large");
    assert_eq!(data["what"], "body");
    assert_eq!(data["limit"], 2000);
}

#[test]
fn events_read_together_with_an_oversized_event_still_count() {
    // Both events in one piece: the first is complete and must be streamed before the failure.
    let body = format!(
        "{}{}",
        sse_event(&openai_delta("ok")),
        sse_event(&openai_delta(&"y".repeat(5000)))
    );
    let mock = MockLlm::always(MockResponse::sse(body));
    let mut sidecar = Sidecar::spawn();
    let settings = Settings::sse(mock.url("/v1"), DELTA_PATH).set("maxEventBytes", 1000);
    let (_, streamed) = failure(&mut sidecar, settings, "too_large");
    assert_eq!(
        streamed, "ok",
        "partialText holds the event before the oversized one"
    );
}

#[test]
fn configured_secrets_are_removed_from_error_data_and_logs() {
    const TOKEN: &str = "sk-test-SECRET-0123456789";
    const HEADER_SECRET: &str = "hdr-SECRET-9876543210";
    let message = format!("Incorrect API key provided: {TOKEN} / {HEADER_SECRET}");
    let body = json!({"error": {"message": message}}).to_string();
    let mock = MockLlm::always(MockResponse::json(401, body));
    let mut sidecar = Sidecar::builder().env("LLM_SIDECAR_LOG", "trace").spawn();
    let settings = Settings::sse(mock.url("/v1"), DELTA_PATH)
        .no_retries()
        .token(TOKEN)
        .request_format(json!({"customHeaders": {"X-Api-Key": HEADER_SECRET}}));
    let reply = complete_streamed(&mut sidecar, settings);
    let data = reply.expect_error(REQUEST_FAILED, "http_status");
    let request = mock.single_request();
    assert_eq!(
        request.header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert_eq!(request.header("x-api-key"), Some(HEADER_SECRET));

    assert_eq!(sidecar.finish().code(), Some(0));
    let reply_text = reply.response.to_string();
    let stderr = sidecar.full_stderr();
    for secret in [TOKEN, HEADER_SECRET] {
        assert!(
            !reply_text.contains(secret),
            "secret in the error: {reply_text}"
        );
        assert!(
            !stderr.contains(secret),
            "secret in the logs (LLM_SIDECAR_LOG=trace)"
        );
    }
    assert!(
        data["providerMessage"]
            .as_str()
            .is_some_and(|m| m.starts_with("Incorrect API key provided")),
        "{data}"
    );
}
