//! Diagnostics through the real binary: `llm/validateSettings` (every problem at once, secrets
//! masked in `normalized`), the pasted-JsonPath dialect end to end, `no_match` suggestions over
//! recorded OpenAI and Ollama streams, and `llm/testConnection` (its report, and that it sends
//! exactly what `llm/complete` sends except the messages).

mod common;

use common::fixtures::{self, Fixture};
use common::*;
use serde_json::{Value, json};

const TOKEN: &str = "sk-diag-token-4f1d9a7c2b8e6d5a";
const HEADER_SECRET: &str = "hdr-secret-9a8b7c6d5e4f";
const QUERY_SECRET: &str = "query-secret-1a2b3c4d5e";
const PROXY_PASSWORD: &str = "proxy-pass-7e6d5c4b3a";

fn fixture(name: &str) -> Fixture {
    fixtures::load_all()
        .into_iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("no fixture {name} in tests/fixtures"))
}

/// A mock that serves the fixture's body with its recorded status and Content-Type.
fn replaying(fixture: &Fixture) -> MockLlm {
    MockLlm::always(
        MockResponse::new(fixture.http_status)
            .content_type(&fixture.content_type)
            .piece(&fixture.body),
    )
}

/// Sends `method` with `params` and returns the reply.
fn call(sidecar: &mut Sidecar, method: &str, params: Value) -> Reply {
    let id = sidecar.request(method, params);
    sidecar.wait_response(&id, WAIT)
}

/// `llm/validateSettings` with `{settings}`; returns the result.
fn validate(sidecar: &mut Sidecar, settings: Value) -> Value {
    call(
        sidecar,
        "llm/validateSettings",
        json!({"settings": settings}),
    )
    .result()
    .clone()
}

/// `llm/testConnection` with `params`; returns the report (always a result).
fn test_connection(sidecar: &mut Sidecar, params: Value) -> Value {
    call(sidecar, "llm/testConnection", params).result().clone()
}

/// The paths of `suggestions`.
fn suggested_paths(suggestions: &Value) -> Vec<&str> {
    suggestions
        .as_array()
        .unwrap_or_else(|| panic!("suggestions must be an array: {suggestions}"))
        .iter()
        .map(|s| {
            s["path"]
                .as_str()
                .unwrap_or_else(|| panic!("a suggestion has a string path: {s}"))
        })
        .collect()
}

/// Asserts that no path in `suggestions` is one of `never` (identifiers, model names...).
fn assert_not_suggested(suggestions: &Value, never: &[&str]) {
    let paths = suggested_paths(suggestions);
    for path in never {
        assert!(
            !paths.contains(path),
            "{path} never changes and must not be suggested: {paths:?}"
        );
    }
}

/// Runs a streamed completion that must fail with `no_match`; returns `data`.
fn no_match(sidecar: &mut Sidecar, settings: Settings) -> Value {
    let reply = complete_streamed(sidecar, settings);
    let data = reply.expect_error(REQUEST_FAILED, "no_match").clone();
    assert!(
        reply.chunks(&json!("s")).is_empty(),
        "nothing matched, nothing streamed"
    );
    data
}

// ---------------------------------------------------------------------------------------------
// llm/validateSettings.

#[test]
fn validate_settings_ok_returns_the_normalized_settings_with_secrets_masked() {
    let mut sidecar = Sidecar::spawn();
    let settings = json!({
        "customEngineServer": format!("https://llm.example.com/v1/chat/completions?api_key={QUERY_SECRET}"),
        "customEngineToken": TOKEN,
        "customEngineResponseType": "sse",
        "customEngineResponseFormat": "choices[0].delta.content",
        "reasoningFormat": "$['choices'][0][\"delta\"].reasoning_content",
        "customEngineRequestFormat": "{\"customFields\": {\"model\": \"m-1\", \"stream\": true}, \"customHeaders\": {\"X-Api-Key\": \"hdr-secret-9a8b7c6d5e4f\", \"X-Trace\": \"visible\"}}"
    });
    let result = validate(&mut sidecar, settings);
    assert_eq!(result["ok"], json!(true), "{result}");
    assert_eq!(result["problems"], json!([]), "{result}");
    let normalized = &result["normalized"];

    let text = result.to_string();
    for secret in [TOKEN, HEADER_SECRET, QUERY_SECRET] {
        assert!(
            !text.contains(secret),
            "{secret} must not appear in clear: {text}"
        );
    }
    let token = normalized["customEngineToken"]
        .as_str()
        .unwrap_or_else(|| panic!("the token is shown masked, not dropped: {normalized}"));
    assert!(
        token.contains('…') || token.contains('*'),
        "masked: {token}"
    );

    assert_eq!(
        normalized["customEngineResponseType"],
        json!("SSE"),
        "canonical response type"
    );
    assert_eq!(
        normalized["customEngineResponseFormat"],
        json!("$.choices[0].delta.content"),
        "the path in RFC 9535 form"
    );
    let reasoning = normalized["reasoningFormat"].as_str().unwrap_or_default();
    assert!(
        reasoning.starts_with('$') && reasoning.contains("reasoning_content"),
        "reasoningFormat normalized: {normalized}"
    );
    let format = &normalized["customEngineRequestFormat"];
    assert_eq!(
        format["customFields"],
        json!({"model": "m-1", "stream": true}),
        "the request format as an object: {normalized}"
    );
    let headers = format["customHeaders"]
        .as_object()
        .unwrap_or_else(|| panic!("customHeaders: {normalized}"));
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("header {name} in {normalized}"))
    };
    assert_eq!(
        header("X-Trace"),
        json!("visible"),
        "ordinary headers are shown"
    );
    assert_ne!(header("X-Api-Key"), json!(HEADER_SECRET));
    let server = normalized["customEngineServer"]
        .as_str()
        .unwrap_or_default();
    assert!(
        server.starts_with("https://llm.example.com/v1/chat/completions"),
        "{normalized}"
    );
}

#[test]
fn validate_settings_masks_the_proxy_password() {
    let mut sidecar = Sidecar::spawn();
    let result = validate(
        &mut sidecar,
        json!({
            "customEngineServer": "https://llm.example.com/v1/chat/completions",
            "proxy": format!("http://alice:{PROXY_PASSWORD}@proxy.example.com:3128")
        }),
    );
    assert_eq!(result["ok"], json!(true), "{result}");
    let proxy = result["normalized"]["proxy"].as_str().unwrap_or_default();
    assert!(
        proxy.contains("proxy.example.com"),
        "the proxy is shown: {result}"
    );
    assert!(
        !result.to_string().contains(PROXY_PASSWORD),
        "the proxy's password is a secret and must be masked in `normalized`: {proxy}"
    );
}

#[test]
fn validate_settings_applies_presets_and_profiles() {
    let mut sidecar = Sidecar::spawn();
    let id = sidecar.request(
        "initialize",
        json!({"initializationOptions": {"profiles": {"work": {
            "preset": "deepseek", "customEngineToken": TOKEN,
            "customEngineRequestFormat": {"customFields": {"temperature": 0.2}}
        }}}}),
    );
    sidecar.wait_response(&id, WAIT).result();
    let reply = call(
        &mut sidecar,
        "llm/validateSettings",
        json!({"profile": "work", "settings": {"model": "deepseek-reasoner"}}),
    );
    let result = reply.result();
    assert_eq!(result["ok"], json!(true), "{result}");
    let normalized = &result["normalized"];
    assert!(
        normalized["customEngineServer"]
            .as_str()
            .is_some_and(|s| s.contains("deepseek.com")),
        "the preset's server: {normalized}"
    );
    assert_eq!(
        normalized["customEngineRequestFormat"]["customFields"],
        json!({"model": "deepseek-reasoner", "stream": true, "temperature": 0.2}),
        "preset < profile < inline, entry by entry: {normalized}"
    );
    assert!(!result.to_string().contains(TOKEN), "{result}");
}

#[test]
fn validate_settings_reports_every_problem_at_once_with_the_column_of_a_jsonpath_error() {
    let mut sidecar = Sidecar::spawn();
    let result = validate(
        &mut sidecar,
        json!({
            "customEngineServer": "localhost:8080/v1/chat/completions",
            "customEngineTokn": "sk-typo",
            "customEngineResponseType": "XML",
            "customEngineResponseFormat": "choices[0.delta.content",
            "reasoningFormat": "$.choices.length()",
            "customEngineRequestFormat": {"model": "deepseek-chat"},
            "timeouts": {"idle": 5}
        }),
    );
    assert_eq!(result["ok"], json!(false), "{result}");
    assert_eq!(result["normalized"], Value::Null, "{result}");
    let found = problems(&result);
    let fields: Vec<&str> = found.iter().map(|(f, _)| f.as_str()).collect();
    for field in [
        "customEngineServer",
        "customEngineTokn",
        "customEngineResponseType",
        "customEngineResponseFormat",
        "reasoningFormat",
        "customEngineRequestFormat.model",
        "timeouts.idle",
    ] {
        assert!(
            fields.contains(&field),
            "a problem under {field}: {found:?}"
        );
    }
    assert!(
        message_for(&found, "customEngineTokn").contains("customEngineToken"),
        "did you mean: {found:?}"
    );
    assert!(
        message_for(&found, "customEngineRequestFormat.model").contains("customFields"),
        "{found:?}"
    );
    // `choices[0.delta.content`: the `.` after `0` is the 10th character the user typed.
    assert!(
        message_for(&found, "customEngineResponseFormat").contains("column 10"),
        "the column in the text the user typed: {found:?}"
    );
    let reasoning = message_for(&found, "reasoningFormat");
    assert!(
        reasoning.contains("length(@") && reasoning.contains("column 10"),
        "the Jayway function is explained with its RFC 9535 form and column: {reasoning}"
    );
}

#[test]
fn validate_settings_without_settings_is_not_ok() {
    let mut sidecar = Sidecar::spawn();
    let result = call(&mut sidecar, "llm/validateSettings", json!({}))
        .result()
        .clone();
    assert_eq!(result["ok"], json!(false), "{result}");
    assert_eq!(result["normalized"], Value::Null);
    message_for(&problems(&result), "settings");
}

// ---------------------------------------------------------------------------------------------
// The pasted-JsonPath dialect, end to end.

/// An SSE stream of two interleaved choices: index 0 says "zero-a", "zero-b"; index 1 "one-a", "one-b".
fn interleaved_stream() -> String {
    let event = |index: u32, text: &str| {
        sse_event(
            &json!({"id": "c", "choices": [{"index": index, "delta": {"content": text}}]})
                .to_string(),
        )
    };
    [
        event(0, "zero-a "),
        event(1, "one-a "),
        event(0, "zero-b"),
        event(1, "one-b"),
        sse_event("[DONE]"),
    ]
    .concat()
}

#[test]
fn pasted_path_forms_are_accepted_end_to_end() {
    let mock = MockLlm::always(MockResponse::sse(interleaved_stream()));
    let mut sidecar = Sidecar::spawn();
    let cases = [
        ("choices[0].delta.content", "zero-a one-a zero-bone-b"),
        ("$.choices[?(@.index==0)].delta.content", "zero-a zero-b"),
        ("choices[?(@.index==1)].delta.content", "one-a one-b"),
        (
            "$.choices[?(@.index == 0)]['delta'][\"content\"]",
            "zero-a zero-b",
        ),
        (
            "$['choices'][?(@.index==1)][\"delta\"]['content']",
            "one-a one-b",
        ),
        (
            "  $.choices[?(@.index==0)].delta.content  ",
            "zero-a zero-b",
        ),
    ];
    let mut failures = Vec::new();
    for (path, expected) in cases {
        let reply = complete_streamed(
            &mut sidecar,
            Settings::sse(mock.url("/v1/chat/completions"), path),
        );
        match reply.response.get("result") {
            Some(result) if result["text"] == json!(expected) => {}
            _ => failures.push(format!(
                "{path:?}: expected {expected:?}, got {}",
                reply.response
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(mock.requests().len(), cases.len());

    // validateSettings shows them in RFC 9535 form.
    let result = validate(
        &mut sidecar,
        json!({"customEngineServer": mock.url("/v1"), "customEngineResponseFormat": "choices[?(@.index==0)].delta.content"}),
    );
    let normalized = result["normalized"]["customEngineResponseFormat"]
        .as_str()
        .unwrap_or_default();
    assert!(
        normalized.starts_with("$"),
        "the leading `$` is added: {result}"
    );
}

#[test]
fn jayway_only_constructs_are_refused_naming_the_rfc_9535_equivalent() {
    let mock = MockLlm::always(MockResponse::sse(openai_sse(&["never"])));
    let mut sidecar = Sidecar::spawn();
    let cases = [
        ("$.choices.length()", "length(@"),
        ("choices.length()", "length(@"),
        ("$.choices.first()", "[0]"),
        ("$.choices.last()", "[-1]"),
        ("$.choices[?(@.delta.content =~ /a.*/)]", "match("),
        ("$.choices[?(@.index in [0, 1])].delta.content", "||"),
    ];
    let mut failures = Vec::new();
    for (path, equivalent) in cases {
        let reply = complete_streamed(
            &mut sidecar,
            Settings::sse(mock.url("/v1/chat/completions"), path),
        );
        let error = &reply.response["error"];
        let found = if error["code"] == json!(INVALID_PARAMS) {
            problems(&error["data"])
        } else {
            Vec::new()
        };
        let message = found
            .iter()
            .find(|(f, _)| f == "customEngineResponseFormat")
            .map(|(_, m)| m.clone())
            .unwrap_or_default();
        if !(message.contains(equivalent) && message.contains("Jayway")) {
            failures.push(format!(
                "{path:?}: expected -32602 under customEngineResponseFormat naming `{equivalent}`, got {}",
                reply.response
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(mock.requests().is_empty(), "nothing is sent");
}

// ---------------------------------------------------------------------------------------------
// no_match suggestions.

/// The path AutoDev's own documentation shows, which matches nothing on an OpenAI stream.
const AUTODEV_DOC_PATH: &str = "$.choices[0].message.delta.content";

/// Fields of an OpenAI chunk that repeat in every event.
const OPENAI_CONSTANTS: &[&str] = &[
    "$.id",
    "$.object",
    "$.model",
    "$.system_fingerprint",
    "$.service_tier",
    "$.choices[0].delta.role",
    "$.choices[0].finish_reason",
];

#[test]
fn the_autodev_doc_path_on_an_openai_stream_suggests_delta_content_first() {
    let fixture = fixture("openai-chat-stream-basic-usage");
    let mock = replaying(&fixture);
    let mut sidecar = Sidecar::spawn();
    let data = no_match(
        &mut sidecar,
        Settings::sse(mock.url("/v1/chat/completions"), AUTODEV_DOC_PATH),
    );
    assert_eq!(data["path"], json!(AUTODEV_DOC_PATH), "{data}");
    assert!(data["events"].as_u64().is_some_and(|n| n >= 3), "{data}");
    let suggestions = &data["suggestions"];
    assert_eq!(
        suggestions[0],
        json!({"path": "$.choices[0].delta.content", "sampleText": fixture.expected_text}),
        "the closest path first, with the text it would have produced: {suggestions}"
    );
    assert_not_suggested(suggestions, OPENAI_CONSTANTS);

    // The suggestion works.
    let reply = complete_streamed(
        &mut sidecar,
        Settings::sse(
            mock.url("/v1/chat/completions"),
            "$.choices[0].delta.content",
        ),
    );
    assert_eq!(reply.result()["text"], json!(fixture.expected_text));
}

#[test]
fn suggestions_skip_ids_on_a_stream_with_an_obfuscation_field() {
    let fixture = fixture("openai-chat-stream-unicode-obfuscation");
    let mock = replaying(&fixture);
    let mut sidecar = Sidecar::spawn();
    let data = no_match(
        &mut sidecar,
        Settings::sse(mock.url("/v1/chat/completions"), AUTODEV_DOC_PATH),
    );
    let suggestions = &data["suggestions"];
    assert_eq!(
        suggestions[0],
        json!({"path": "$.choices[0].delta.content", "sampleText": "Olá!"}),
        "{suggestions}"
    );
    assert_not_suggested(suggestions, OPENAI_CONSTANTS);
}

#[test]
fn a_wrong_path_on_an_ollama_ndjson_stream_suggests_message_content() {
    let fixture = fixture("ollama-chat-stream");
    let mock = replaying(&fixture);
    let mut sidecar = Sidecar::spawn();
    for wrong in ["$.choices[0].delta.content", "$.message.text"] {
        let settings = Settings::new(mock.url("/api/chat"))
            .response_type("NDJSON")
            .path(wrong);
        let data = no_match(&mut sidecar, settings);
        assert_eq!(data["path"], json!(wrong));
        let suggestions = &data["suggestions"];
        assert_eq!(
            suggestions[0]["path"],
            json!("$.message.content"),
            "{wrong}: {suggestions}"
        );
        let sample = suggestions[0]["sampleText"].as_str().unwrap_or_default();
        assert!(
            sample.len() >= 100 && fixture.expected_text.starts_with(sample),
            "{wrong}: sampleText is the start of the text the path would have produced: {sample:?}"
        );
        assert_not_suggested(suggestions, &["$.model", "$.message.role", "$.done_reason"]);
    }
}

// ---------------------------------------------------------------------------------------------
// llm/testConnection.

/// Settings with every part of a request: token, headers, body fields, renamed message keys.
fn full_settings(url: String) -> Settings {
    Settings::sse(url, DELTA_PATH)
        .token(TOKEN)
        .request_format(json!({
            "customFields": {"model": "m-1", "stream": true, "temperature": 0.2, "stop": ["\n\n"]},
            "customHeaders": {"X-Org": "org-1", "X-Api-Key": HEADER_SECRET},
            "messageKeys": {"content": "text"}
        }))
}

/// The top-level body keys of a test request without the cap the test added (`report.maxTokens`).
fn without_test_cap(request: &RecordedRequest, report: &Value) -> Vec<String> {
    let added = (report["maxTokens"]["setBy"] == json!("test"))
        .then(|| report["maxTokens"]["field"].as_str())
        .flatten();
    request
        .top_level_keys()
        .into_iter()
        .filter(|k| Some(k.as_str()) != added)
        .collect()
}

/// `(lowercase name, value)` of every header but `Content-Length`, sorted.
fn comparable_headers(request: &RecordedRequest) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = request
        .headers
        .iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
        .filter(|(n, _)| n != "content-length")
        .collect();
    headers.sort();
    headers
}

#[test]
fn test_connection_reports_success() {
    let mock = MockLlm::always(MockResponse::sse(openai_sse(&["Hello", " there", "!"])));
    let mut sidecar = Sidecar::spawn();
    let report = test_connection(
        &mut sidecar,
        json!({"settings": Value::from(full_settings(mock.url("/v1/chat/completions")))}),
    );
    assert_eq!(report["ok"], json!(true), "{report}");
    assert_eq!(report["status"], json!(200), "{report}");
    assert_eq!(
        report["contentType"],
        json!("text/event-stream"),
        "{report}"
    );
    assert_eq!(report["detectedResponseType"], json!("sse"), "{report}");
    assert!(report["firstByteMs"].is_u64(), "{report}");
    assert_eq!(report["sampleText"], json!("Hello there!"), "{report}");
    assert_eq!(report["matched"], json!(true), "{report}");
    assert_eq!(report["suggestions"], json!([]), "{report}");
    assert!(report.get("error").is_none_or(Value::is_null), "{report}");

    // One completion, with a short default conversation.
    let request = mock.single_request();
    let messages = request.json()["messages"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(!messages.is_empty(), "{}", request.json());
    assert!(
        messages
            .iter()
            .all(|m| m["text"].as_str().is_some_and(|t| !t.is_empty())),
        "the default prompt uses the configured message keys: {}",
        request.json()
    );
}

#[test]
fn test_connection_reads_a_json_body_and_says_so() {
    let mock = MockLlm::always(MockResponse::json(200, openai_message("pong")));
    let mut sidecar = Sidecar::spawn();
    let settings = Settings::new(mock.url("/v1/chat/completions"))
        .response_type("JSON")
        .path(MESSAGE_PATH);
    let report = test_connection(&mut sidecar, json!({"settings": Value::from(settings)}));
    assert_eq!(report["ok"], json!(true), "{report}");
    assert_eq!(report["detectedResponseType"], json!("json"), "{report}");
    assert_eq!(report["contentType"], json!("application/json"), "{report}");
    assert_eq!(report["sampleText"], json!("pong"), "{report}");
    assert_eq!(report["finishReason"], json!("stop"), "{report}");
}

#[test]
fn a_failed_test_connection_still_reports_what_was_read_and_when() {
    let mock = MockLlm::always(MockResponse::sse(openai_sse(&["pong"])));
    let mut sidecar = Sidecar::spawn();
    let settings = Settings::sse(mock.url("/v1/chat/completions"), "$.choices[0].delta.text");
    let report = test_connection(&mut sidecar, json!({"settings": Value::from(settings)}));
    assert_eq!(report["ok"], json!(false), "{report}");
    assert_eq!(report["status"], json!(200), "{report}");
    assert_eq!(report["detectedResponseType"], json!("sse"), "{report}");
    assert!(report["firstByteMs"].is_u64(), "{report}");
    assert!(report["totalMs"].is_u64(), "{report}");
    // The same facts are in the error of a completion.
    let id = sidecar.request(
        "llm/complete",
        Settings::sse(mock.url("/v1/chat/completions"), "$.choices[0].delta.text")
            .params()
            .build(),
    );
    let reply = sidecar.wait_response(&id, WAIT);
    let data = reply.expect_error(REQUEST_FAILED, "no_match");
    assert_eq!(data["responseType"], json!("sse"), "{data}");
    assert!(data["timings"]["firstByteMs"].is_u64(), "{data}");
    assert!(data["timings"]["totalMs"].is_u64(), "{data}");
}

#[test]
fn test_connection_sends_what_llm_complete_sends_except_the_messages_and_the_cap() {
    let mock = MockLlm::always(MockResponse::sse(openai_sse(&["ok"])));
    let mut sidecar = Sidecar::spawn();
    let url = mock.url("/v1/chat/completions?api-version=2024-10-21");

    let reply = sidecar.complete(
        full_settings(url.clone())
            .params()
            .messages(user("hi"))
            .build(),
    );
    assert_eq!(reply.result()["text"], json!("ok"));
    let report = test_connection(
        &mut sidecar,
        json!({"settings": Value::from(full_settings(url.clone()))}),
    );
    assert_eq!(report["ok"], json!(true), "{report}");
    // With the same messages given, the bodies must be identical too.
    let report = test_connection(
        &mut sidecar,
        json!({"settings": Value::from(full_settings(url)), "messages": user("hi")}),
    );
    assert_eq!(report["ok"], json!(true), "{report}");
    assert_eq!(
        report["maxTokens"],
        json!({"field": "max_tokens", "value": report["maxTokens"]["value"], "setBy": "test"}),
        "{report}"
    );
    let cap = report["maxTokens"]["value"].clone();

    let requests = mock.wait_for_requests(3, WAIT);
    let (chat, probe, probe_same) = (&requests[0], &requests[1], &requests[2]);
    for (what, request) in [
        ("testConnection", probe),
        ("testConnection with messages", probe_same),
    ] {
        assert_eq!(request.method, chat.method, "{what}");
        assert_eq!(request.path, chat.path, "{what}: same URL");
        assert_eq!(
            comparable_headers(request),
            comparable_headers(chat),
            "{what}: same headers"
        );
        assert_eq!(
            without_test_cap(request, &report),
            chat.top_level_keys(),
            "{what}: same body keys in the same order, but the cap"
        );
        assert_eq!(request.json()["max_tokens"], cap, "{what}");
        let without_messages = |r: &RecordedRequest| {
            let mut body = r.json().clone();
            body.as_object_mut().unwrap().remove("messages");
            body.as_object_mut().unwrap().remove("max_tokens");
            body
        };
        assert_eq!(
            without_messages(request),
            without_messages(chat),
            "{what}: same body but the messages"
        );
        let keys = |r: &RecordedRequest| {
            r.json()["messages"][0]
                .as_object()
                .map(|m| m.keys().cloned().collect::<Vec<_>>())
        };
        assert_eq!(keys(request), keys(chat), "{what}: same message keys");
    }
    let mut probe_body = probe_same.json().clone();
    probe_body.as_object_mut().unwrap().remove("max_tokens");
    assert_eq!(
        serde_json::to_vec(&probe_body).unwrap(),
        chat.body,
        "with the same messages, the very same bytes but the cap"
    );
}

#[test]
fn test_connection_through_a_custom_llms_entry_matches_llm_complete() {
    let mock = MockLlm::always(MockResponse::sse(openai_sse(&["ok"])));
    let mut sidecar = Sidecar::spawn();
    let id = sidecar.request(
        "initialize",
        json!({"initializationOptions": {"customLlms": [{
            "name": "Team GPT", "description": "", "url": mock.url("/team/v1/chat/completions"),
            "auth": {"type": "Bearer", "token": TOKEN},
            "requestFormat": "{\"customFields\": {\"model\": \"gpt-team\", \"stream\": true}}",
            "responseFormat": DELTA_PATH, "modelType": "Plan"
        }]}}),
    );
    sidecar.wait_response(&id, WAIT).result();
    let reply = sidecar.complete(json!({"llm": "Team GPT", "messages": user("hi")}));
    assert_eq!(reply.result()["text"], json!("ok"));
    let report = test_connection(&mut sidecar, json!({"llm": "Team GPT"}));
    assert_eq!(report["ok"], json!(true), "{report}");
    assert_eq!(report["sampleText"], json!("ok"));
    let requests = mock.wait_for_requests(2, WAIT);
    assert_eq!(requests[1].path, "/team/v1/chat/completions");
    assert_eq!(
        comparable_headers(&requests[1]),
        comparable_headers(&requests[0])
    );
    assert_eq!(
        without_test_cap(&requests[1], &report),
        requests[0].top_level_keys(),
        "the same body keys, but the answer cap the report names"
    );
    assert!(!report.to_string().contains(TOKEN));
}

#[test]
fn test_connection_with_a_wrong_path_reports_no_match_and_suggestions() {
    let fixture = fixture("openai-chat-stream-basic-usage");
    let mock = replaying(&fixture);
    let mut sidecar = Sidecar::spawn();
    let settings = Settings::sse(mock.url("/v1/chat/completions"), AUTODEV_DOC_PATH);
    let report = test_connection(&mut sidecar, json!({"settings": Value::from(settings)}));
    assert_eq!(report["ok"], json!(false), "{report}");
    assert_eq!(report["matched"], json!(false), "{report}");
    assert_eq!(report["status"], json!(200), "{report}");
    assert_eq!(
        report["contentType"],
        json!(fixture.content_type),
        "{report}"
    );
    let error = &report["error"];
    assert_eq!(error["code"], json!(REQUEST_FAILED), "{report}");
    assert!(error["message"].is_string(), "{report}");
    assert_eq!(error["data"]["kind"], json!("no_match"), "{report}");
    assert_eq!(
        report["suggestions"][0],
        json!({"path": "$.choices[0].delta.content", "sampleText": fixture.expected_text}),
        "{report}"
    );
    assert_eq!(
        report["suggestions"], error["data"]["suggestions"],
        "the same suggestions as llm/complete's error"
    );
    assert_not_suggested(&report["suggestions"], OPENAI_CONSTANTS);
}

#[test]
fn test_connection_against_a_401_reports_the_status_and_the_provider_message() {
    let fixture = fixture("openai-http-401-invalid-api-key");
    let mock = replaying(&fixture);
    let mut sidecar = Sidecar::spawn();
    let settings = Settings::sse(mock.url("/v1/chat/completions"), DELTA_PATH).token(TOKEN);
    let report = test_connection(&mut sidecar, json!({"settings": Value::from(settings)}));
    assert_eq!(report["ok"], json!(false), "{report}");
    assert_eq!(report["status"], json!(401), "{report}");
    assert_eq!(report["matched"], json!(false), "{report}");
    let error = &report["error"];
    assert_eq!(error["code"], json!(REQUEST_FAILED), "{report}");
    assert_eq!(error["data"]["kind"], json!("http_status"), "{report}");
    assert_eq!(error["data"]["status"], json!(401), "{report}");
    let provider = error["data"]["providerMessage"]
        .as_str()
        .unwrap_or_default();
    assert!(!provider.is_empty(), "{report}");
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("401") && m.contains(provider)),
        "{report}"
    );
    assert_eq!(mock.requests().len(), 1, "a 401 is not retried");
    assert!(!report.to_string().contains(TOKEN), "{report}");
}

#[test]
fn test_connection_with_invalid_settings_reports_invalid_params_and_sends_nothing() {
    let mock = MockLlm::always(MockResponse::sse(openai_sse(&["never"])));
    let mut sidecar = Sidecar::spawn();
    let report = test_connection(
        &mut sidecar,
        json!({"settings": {
            "customEngineServer": mock.url("/v1/chat/completions"),
            "customEngineResponseFormat": "$.choices[0.delta",
            "customEngineResponseType": "XML"
        }}),
    );
    assert_eq!(report["ok"], json!(false), "{report}");
    assert_eq!(report["matched"], json!(false), "{report}");
    let error = &report["error"];
    assert_eq!(error["code"], json!(INVALID_PARAMS), "{report}");
    let found = problems(&error["data"]);
    message_for(&found, "customEngineResponseFormat");
    message_for(&found, "customEngineResponseType");
    assert!(mock.requests().is_empty(), "nothing is sent");

    // An unknown entry name is reported the same way.
    let report = test_connection(&mut sidecar, json!({"llm": "nope"}));
    assert_eq!(report["ok"], json!(false), "{report}");
    assert_eq!(report["error"]["code"], json!(INVALID_PARAMS), "{report}");
    message_for(&problems(&report["error"]["data"]), "llm");
}

#[test]
fn a_cancelled_test_connection_is_answered_as_cancelled() {
    let gate = Gate::new();
    let mock = MockLlm::always(
        MockResponse::sse("")
            .piece_after(Before::Gate(gate.clone()), sse_event(&openai_delta("late")))
            .then_hang(),
    );
    let mut sidecar = Sidecar::spawn();
    let settings = Settings::sse(mock.url("/v1/chat/completions"), DELTA_PATH);
    let id = sidecar.request(
        "llm/testConnection",
        json!({"settings": Value::from(settings)}),
    );
    mock.wait_for_requests(1, WAIT);
    sidecar.cancel(&id);
    let reply = sidecar.wait_response(&id, WAIT);
    reply.expect_error(CANCELLED, "cancelled");
    gate.open();
}
