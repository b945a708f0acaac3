//! `llm/testConnection` is bounded: it caps the answer with the body field of the server's shape
//! (never overriding the user's own), stops reading once it has its sample text, and has an
//! overall time limit; its report says all three.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

/// `llm/testConnection` with `params`; returns the report.
fn test_connection(sidecar: &mut Sidecar, params: Value) -> Value {
    let id = sidecar.request("llm/testConnection", params);
    sidecar.wait_response(&id, WAIT).result().clone()
}

fn with_settings(settings: impl Into<Value>) -> Value {
    json!({"settings": settings.into()})
}

/// The body the test sent, after a successful test.
fn probe_body(settings: Settings, mock: &MockLlm, sidecar: &mut Sidecar) -> (Value, Value) {
    let report = test_connection(sidecar, with_settings(settings));
    assert_eq!(report["ok"], json!(true), "{report}");
    let requests = mock.requests();
    (report, requests.last().expect("one request").json().clone())
}

#[test]
fn the_answer_is_capped_with_the_field_of_each_server_shape() {
    let mock = MockLlm::always(MockResponse::sse(openai_sse(&["ok"])));
    let mut sidecar = Sidecar::spawn();

    // OpenAI-style chat completions: max_tokens.
    let (report, body) = probe_body(
        Settings::sse(mock.url("/v1/chat/completions"), DELTA_PATH)
            .request_format(json!({"customFields": {"model": "m", "stream": true}})),
        &mock,
        &mut sidecar,
    );
    let cap = report["maxTokens"]["value"].as_u64().expect("a cap");
    assert!(cap > 0 && cap <= 1024, "{report}");
    assert_eq!(
        report["maxTokens"],
        json!({"field": "max_tokens", "value": cap, "setBy": "test"})
    );
    assert_eq!(body["max_tokens"], json!(cap), "{body}");
    assert_eq!(body["model"], json!("m"), "{body}");

    // The llama.cpp preset has no max_tokens: the test adds it.
    let (report, body) = probe_body(
        Settings::new(mock.url("/v1/chat/completions")).set("preset", "llama.cpp"),
        &mock,
        &mut sidecar,
    );
    assert_eq!(report["maxTokens"]["setBy"], json!("test"), "{report}");
    assert_eq!(body["max_tokens"], json!(cap), "{body}");

    // Ollama's native API: options.num_predict, merged into the user's options.
    let (report, body) = probe_body(
        Settings::new(mock.url("/api/chat"))
            .set("preset", "ollama")
            .response_type("SSE")
            .path(DELTA_PATH)
            .request_format(json!({"customFields": {"options": {"temperature": 0.2}}})),
        &mock,
        &mut sidecar,
    );
    assert_eq!(
        report["maxTokens"]["field"],
        json!("options.num_predict"),
        "{report}"
    );
    assert_eq!(
        body["options"],
        json!({"temperature": 0.2, "num_predict": cap}),
        "{body}"
    );

    // Gemini's native API (a fields template): generationConfig.maxOutputTokens.
    let (report, body) = probe_body(
        Settings::sse(
            mock.url("/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"),
            DELTA_PATH,
        )
        .request_format(json!({"fields": {
            "contents": [{"role": "user", "parts": [{"text": "$content"}]}],
            "generationConfig": {"temperature": 0.1}
        }})),
        &mock,
        &mut sidecar,
    );
    assert_eq!(
        report["maxTokens"]["field"],
        json!("generationConfig.maxOutputTokens"),
        "{report}"
    );
    assert_eq!(
        body["generationConfig"],
        json!({"temperature": 0.1, "maxOutputTokens": cap}),
        "{body}"
    );
}

#[test]
fn a_cap_the_user_set_is_never_overridden() {
    let mock = MockLlm::always(MockResponse::sse(openai_sse(&["ok"])));
    let mut sidecar = Sidecar::spawn();
    let (report, body) = probe_body(
        Settings::sse(mock.url("/v1/chat/completions"), DELTA_PATH)
            .request_format(json!({"customFields": {"model": "m", "max_tokens": 5000}})),
        &mock,
        &mut sidecar,
    );
    assert_eq!(
        report["maxTokens"],
        json!({"field": "max_tokens", "value": 5000, "setBy": "settings"})
    );
    assert_eq!(body["max_tokens"], json!(5000));

    // Anthropic's preset sets max_tokens itself.
    let (report, body) = probe_body(
        Settings::new(mock.url("/v1/messages"))
            .set("preset", "anthropic")
            .path(DELTA_PATH)
            .token("sk-ant-123456"),
        &mock,
        &mut sidecar,
    );
    assert_eq!(report["maxTokens"]["setBy"], json!("settings"), "{report}");
    assert_eq!(body["max_tokens"], json!(4096), "{body}");
    assert!(body.get("max_completion_tokens").is_none(), "{body}");
}

#[test]
fn reading_stops_once_the_sample_text_is_complete() {
    // A chatty model: many words, and the stream never ends.
    let mock = MockLlm::always(chatty_stream(400, Duration::from_millis(1)));
    let mut sidecar = Sidecar::spawn();
    let started = Instant::now();
    let report = test_connection(
        &mut sidecar,
        with_settings(Settings::sse(mock.url("/v1/chat/completions"), DELTA_PATH)),
    );
    assert!(started.elapsed() < Duration::from_secs(10), "{report}");
    assert_eq!(report["ok"], json!(true), "{report}");
    assert_eq!(report["matched"], json!(true), "{report}");
    assert_eq!(report["stoppedEarly"], json!(true), "{report}");
    assert_eq!(report["status"], json!(200), "{report}");
    assert_eq!(report["detectedResponseType"], json!("sse"), "{report}");
    let sample = report["sampleText"].as_str().unwrap();
    assert!(sample.starts_with("word0 word1 "), "{report}");
    assert!(report.get("error").is_none_or(Value::is_null), "{report}");
    mock.wait_client_closed(0, WAIT);
}

#[test]
fn the_test_has_an_overall_time_limit_stated_in_its_report() {
    let mock = MockLlm::always(MockResponse::sse(openai_sse(&["short"])));
    let mut sidecar = Sidecar::spawn();
    let report = test_connection(
        &mut sidecar,
        with_settings(Settings::sse(mock.url("/v1/chat/completions"), DELTA_PATH)),
    );
    assert_eq!(report["timeLimitMs"], json!(30_000), "{report}");
    assert_eq!(report["stoppedEarly"], json!(false), "{report}");

    // The user's own lower total wins, and a stalled stream fails on it.
    let stalled = MockLlm::always(
        MockResponse::new(200)
            .content_type("text/event-stream")
            .chunked()
            .piece(sse_event(&openai_delta("slow")))
            .then_hang(),
    );
    let report = test_connection(
        &mut sidecar,
        with_settings(
            Settings::sse(stalled.url("/v1/chat/completions"), DELTA_PATH)
                .set("timeouts", json!({"totalMs": 400})),
        ),
    );
    assert_eq!(report["ok"], json!(false), "{report}");
    assert_eq!(report["timeLimitMs"], json!(400), "{report}");
    assert_eq!(
        report["error"]["data"]["kind"],
        json!("timeout"),
        "{report}"
    );
    assert_eq!(report["error"]["data"]["phase"], json!("total"), "{report}");
    assert_eq!(report["sampleText"], json!("slow"), "{report}");
}

#[test]
fn a_server_that_refuses_the_added_cap_is_tested_again_without_it() {
    let mock = MockLlm::start(|request| {
        if request.json().get("max_tokens").is_some() {
            MockResponse::json(
                400,
                r#"{"error": {"message": "Unsupported parameter: 'max_tokens'"}}"#,
            )
        } else {
            MockResponse::sse(openai_sse(&["fine"]))
        }
    });
    let mut sidecar = Sidecar::spawn();
    let report = test_connection(
        &mut sidecar,
        with_settings(Settings::sse(mock.url("/v1/chat/completions"), DELTA_PATH)),
    );
    assert_eq!(report["ok"], json!(true), "{report}");
    assert_eq!(report["sampleText"], json!("fine"), "{report}");
    assert_eq!(report["maxTokens"]["dropped"], json!(true), "{report}");
    let requests = mock.requests();
    assert_eq!(requests.len(), 2);
    assert!(requests[1].json().get("max_tokens").is_none());
}
