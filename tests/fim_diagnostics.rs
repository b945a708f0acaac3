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
        "/v1/chat/completions" => MockResponse::json(200, openai_message("Hi").to_string()),
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
