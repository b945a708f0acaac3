//! Diagnostics for code-completion settings: `llm/testConnection` and
//! `llm-sidecar check --connect` send a FIM request with a tiny prefix and
//! suffix; llama.cpp's `/infill` 501 (a model without FIM tokens) becomes a
//! message naming the cause.

mod common;

use std::process::{Command, Stdio};

use common::*;
use serde_json::{Value, json};

const TEST_PREFIX: &str = "def add(a, b):\n    return ";
const TEST_SUFFIX: &str = "\n\n\nprint(add(1, 2))\n";

/// llama.cpp's answer to `/infill` when the model's vocabulary has no FIM tokens.
const NO_INFILL: &str = r#"{"error":{"code":501,"message":"Infill is not supported by this model: prefix token is missing. suffix token is missing. middle token is missing. ","type":"not_supported_error"}}"#;

/// A server answering OpenAI-style completions with `a + b`, chat with `Hi`,
/// and `/infill` with llama.cpp's 501.
fn server() -> MockLlm {
    MockLlm::start(|request| match request.path.as_str() {
        "/infill" => MockResponse::json(501, NO_INFILL),
        "/v1/chat/completions" => MockResponse::json(200, openai_message("Hi")),
        _ => MockResponse::json(
            200,
            json!({"choices": [{"index": 0, "text": "a + b", "finish_reason": "stop"}]})
                .to_string(),
        ),
    })
}

fn test_connection(sidecar: &mut Sidecar, params: Value) -> Value {
    let id = sidecar.request("llm/testConnection", params);
    sidecar.wait_response(&id, WAIT).result().clone()
}

#[test]
fn test_connection_sends_a_fim_request_for_completion_settings() {
    let mock = server();
    let mut sidecar = Sidecar::spawn();
    let completions = json!({"customEngineServer": mock.url("/v1/completions"), "model": "coder"});
    // Recognised by the endpoint.
    let report = test_connection(&mut sidecar, json!({"settings": completions}));
    assert_eq!(report["ok"], json!(true), "{report}");
    assert_eq!(report["kind"], json!("completion"));
    assert_eq!(report["sampleText"], json!("a + b"));
    let body = mock.wait_for_requests(1, WAIT)[0].json().clone();
    assert_eq!(body["prompt"], json!(TEST_PREFIX), "{body}");
    assert_eq!(body["suffix"], json!(TEST_SUFFIX), "{body}");
    // `completion: false` keeps the chat test.
    let report = test_connection(
        &mut sidecar,
        json!({"settings": completions, "completion": false}),
    );
    assert!(report.get("kind").is_none(), "{report}");
    let body = mock.wait_for_requests(2, WAIT)[1].json().clone();
    assert!(body.get("messages").is_some(), "{body}");
    // Chat settings get the chat test.
    let chat = json!({"customEngineServer": mock.url("/v1/chat/completions"), "customEngineResponseType": "JSON"});
    let report = test_connection(&mut sidecar, json!({"settings": chat}));
    assert_eq!(report["sampleText"], json!("Hi"));
    assert!(report.get("kind").is_none(), "{report}");
}

#[test]
fn test_connection_tests_the_configured_completion_when_asked() {
    let mock = server();
    let mut sidecar = Sidecar::spawn();
    let id = sidecar.request(
        "initialize",
        json!({"initializationOptions": {"completion": {
            "customEngineServer": mock.url("/v1/completions"), "fim": {"template": "qwen", "mode": "prompt"}}}}),
    );
    sidecar.wait_response(&id, WAIT);
    let report = test_connection(&mut sidecar, json!({"completion": true}));
    assert_eq!(report["ok"], json!(true), "{report}");
    let body = mock.wait_for_requests(1, WAIT)[0].json().clone();
    assert_eq!(
        body["prompt"],
        json!(format!(
            "<|fim_prefix|>{TEST_PREFIX}<|fim_suffix|>{TEST_SUFFIX}<|fim_middle|>"
        )),
        "{body}"
    );
    // Without completion settings: the error says how to configure them.
    let mut bare = Sidecar::spawn();
    let report = test_connection(&mut bare, json!({"completion": true}));
    assert_eq!(report["ok"], json!(false));
    assert_eq!(
        report["error"]["data"]["kind"],
        json!("invalid_settings"),
        "{report}"
    );
}

#[test]
fn infill_without_fim_tokens_is_named_as_the_cause() {
    let mock = server();
    let mut sidecar = Sidecar::spawn();
    let infill = json!({"customEngineServer": mock.url("/infill"), "retry": {"maxRetries": 0}});
    let report = test_connection(&mut sidecar, json!({"settings": infill}));
    assert_eq!(report["ok"], json!(false), "{report}");
    let message = report["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("Infill is not supported by this model"),
        "{message}"
    );
    assert!(
        message.contains("has no fill-in-the-middle tokens, so /infill cannot work with it"),
        "{message}"
    );
    assert_eq!(report["error"]["data"]["status"], json!(501));
    // The same message for an editor's completion.
    let id = sidecar.request(
        "llm/inlineCompletion",
        json!({"prefix": "x = ", "suffix": "", "settings": infill}),
    );
    let reply = sidecar.wait_response(&id, WAIT);
    let error = reply.expect_code(REQUEST_FAILED);
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("no fill-in-the-middle tokens")
    );
}

fn check_connect(settings: Value) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("settings.json");
    std::fs::write(&path, settings.to_string()).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_llm-sidecar"));
    for key in common::sidecar::SCRUBBED_ENV {
        command.env_remove(key);
    }
    let output = command
        .args(["check", "--settings", path.to_str().unwrap(), "--connect"])
        .stdin(Stdio::null())
        .output()
        .expect("run llm-sidecar check");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code(), text)
}

#[test]
fn check_connect_tests_completion_settings_with_a_fim_request() {
    let mock = server();
    let (code, text) = check_connect(json!({"customEngineServer": mock.url("/v1/completions")}));
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("test code completion (fill in the middle"),
        "{text}"
    );
    assert!(
        text.contains("✓ the server completed") && text.contains("\"a + b\""),
        "{text}"
    );
    assert_eq!(
        mock.wait_for_requests(1, WAIT)[0].json()["suffix"],
        json!(TEST_SUFFIX)
    );
    let (code, text) = check_connect(
        json!({"customEngineServer": mock.url("/infill"), "retry": {"maxRetries": 0}}),
    );
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("no fill-in-the-middle tokens"), "{text}");
}

/// An OpenAI-compatible local server (as llama.cpp's): a model list, chat,
/// `/v1/completions` with `suffix`, and `/infill` refused for want of FIM tokens.
fn local_openai_server() -> MockLlm {
    MockLlm::start(
        |request| match (request.method.as_str(), request.path.as_str()) {
            ("GET", "/v1/models") => {
                MockResponse::json(200, r#"{"object":"list","data":[{"id":"coder-1.5b"}]}"#)
            }
            ("POST", "/v1/chat/completions") => MockResponse::sse(format!(
                "{}data: [DONE]\n\n",
                sse_event(&openai_delta("Hello"))
            )),
            ("POST", "/v1/completions") => MockResponse::json(
                200,
                json!({"choices": [{"index": 0, "text": "a + b", "finish_reason": "stop"}]})
                    .to_string(),
            ),
            ("POST", "/infill") => MockResponse::json(501, NO_INFILL),
            _ => MockResponse::json(404, r#"{"error":{"message":"not found"}}"#),
        },
    )
}

fn detect(sidecar: &mut Sidecar, url: &str) -> Value {
    let params = json!({"url": url, "maxRequests": 20});
    let id = sidecar.request("llm/detect", params);
    let result = sidecar.wait_response(&id, WAIT).result().clone();
    common::schema::assert_matches_methods_schema("detectResult", &result);
    result
}

#[test]
fn detect_reports_the_fim_shapes_and_a_verified_completion_candidate() {
    let mock = local_openai_server();
    let mut sidecar = Sidecar::spawn();
    let result = detect(&mut sidecar, &mock.url(""));
    assert_eq!(
        result["fim"]["offered"],
        json!(["openai-completions"]),
        "{result}"
    );
    let candidate = &result["fim"]["candidates"][0];
    assert_eq!(candidate["api"], json!("openai-completions"));
    assert_eq!(candidate["sampleText"], json!("a + b"));
    assert_eq!(
        candidate["settings"]["customEngineServer"],
        json!(mock.url("/v1/completions"))
    );
    let sent = mock
        .requests()
        .into_iter()
        .find(|r| r.path == "/v1/completions")
        .expect("a FIM request");
    assert_eq!(sent.json()["prompt"], json!(TEST_PREFIX));
    assert_eq!(sent.json()["suffix"], json!(TEST_SUFFIX));
    assert_eq!(sent.json()["model"], json!("coder-1.5b"));
    // /infill was tried and its 501 explained.
    let tried = result["tried"].as_array().unwrap();
    let infill = tried
        .iter()
        .find(|t| t["request"].as_str().unwrap().contains("/infill"))
        .unwrap_or_else(|| panic!("/infill not tried: {result}"));
    assert_eq!(infill["status"], json!(501));
    assert!(
        infill["outcome"]
            .as_str()
            .unwrap()
            .contains("no fill-in-the-middle tokens"),
        "{infill}"
    );
    // The candidate works as completion settings.
    let id = sidecar.request(
        "llm/inlineCompletion",
        json!({"prefix": "x = ", "suffix": "", "settings": candidate["settings"]}),
    );
    let reply = sidecar.wait_response(&id, WAIT);
    assert_eq!(reply.result()["items"][0]["insertText"], json!("a + b"));
}

#[test]
fn detect_tries_ollama_generate_with_suffix() {
    let mock = MockLlm::start(|request| {
        match request.path.as_str() {
        "/api/tags" => MockResponse::json(200, r#"{"models":[{"name":"qwen2.5-coder:1.5b"}]}"#),
        "/api/chat" => MockResponse::new(200)
            .content_type("application/x-ndjson")
            .piece("{\"message\":{\"role\":\"assistant\",\"content\":\"Hello\"},\"done\":false}\n{\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":true}\n"),
        "/api/generate" => MockResponse::json(200, r#"{"model":"qwen2.5-coder:1.5b","response":"a + b","done":true}"#),
        _ => MockResponse::json(404, r#"{"error":"not found"}"#),
    }
    });
    let mut sidecar = Sidecar::spawn();
    let result = detect(&mut sidecar, &mock.url(""));
    assert!(
        result["fim"]["offered"]
            .as_array()
            .unwrap()
            .contains(&json!("ollama-generate")),
        "{result}"
    );
    let sent = mock
        .requests()
        .into_iter()
        .find(|r| r.path == "/api/generate")
        .expect("a FIM request");
    assert_eq!(sent.json()["suffix"], json!(TEST_SUFFIX));
    assert_eq!(sent.json()["model"], json!("qwen2.5-coder:1.5b"));
}
