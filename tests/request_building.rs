//! The HTTP request sent to the LLM server, as AutoDev builds it: body, `customFields`,
//! `messageKeys`, `fields` + `$content`, `stream`, and headers (token, `customHeaders`).

mod common;

use common::*;
use serde_json::{Value, json};

const PATH: &str = "/v1/chat/completions?api-version=2024-02-01";

/// One sidecar and a mock that answers "ok" to everything; `capture` returns what the mock got.
struct Capture {
    mock: MockLlm,
    sidecar: Sidecar,
}

impl Capture {
    fn new() -> Capture {
        Capture {
            mock: MockLlm::always(MockResponse::sse(openai_sse(&["ok"]))),
            sidecar: Sidecar::spawn(),
        }
    }

    /// Runs a completion with `settings` (built for the mock's URL) and `messages`.
    fn capture(
        &mut self,
        settings: impl FnOnce(Settings) -> Settings,
        messages: Value,
    ) -> RecordedRequest {
        let before = self.mock.requests().len();
        let base = Settings::sse(self.mock.url(PATH), DELTA_PATH).no_retries();
        let params = settings(base).params().messages(messages).build();
        let reply = self.sidecar.complete(params);
        assert_eq!(reply.result()["text"], "ok");
        let requests = self.mock.wait_for_requests(before + 1, WAIT);
        assert_eq!(
            requests.len(),
            before + 1,
            "one HTTP request per completion"
        );
        requests.into_iter().last().unwrap()
    }

    /// Captures with only `customEngineRequestFormat` set.
    fn with_format(&mut self, format: Value, messages: Value) -> RecordedRequest {
        self.capture(|s| s.request_format(format), messages)
    }
}

fn conversation() -> Value {
    json!([
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Olá 😊 — line one\nline two"},
        {"role": "assistant", "content": "秋风"},
        {"role": "user", "content": "last question"}
    ])
}

#[test]
fn default_request_is_a_post_of_the_messages_only() {
    let mut capture = Capture::new();
    let request = capture.capture(|s| s, conversation());
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, PATH, "the URL is used as written");
    assert_eq!(request.json(), &json!({"messages": conversation()}));
    assert_eq!(request.header("Content-Type"), Some("application/json"));
    assert_eq!(
        request.header("Authorization"),
        None,
        "no token, no Authorization"
    );
}

#[test]
fn custom_fields_of_every_json_type_are_added_at_the_top_level() {
    let fields = json!({
        "model": "deepseek-chat",
        "temperature": 0.5,
        "max_tokens": 100,
        "top_p": 1,
        "stream": true,
        "echo": false,
        "stop": null,
        "tags": ["a", 1, {"b": [true]}],
        "metadata": {"user": {"id": 7, "names": []}},
        "empty": ""
    });
    let mut capture = Capture::new();
    let request = capture.with_format(json!({"customFields": fields}), user("hi"));
    let body = request.json();
    for (key, value) in fields.as_object().unwrap() {
        assert_eq!(
            body.get(key),
            Some(value),
            "customFields.{key} at the top level of {body}"
        );
    }
    assert_eq!(body["messages"], user("hi"));
    assert_eq!(
        body.as_object().unwrap().len(),
        fields.as_object().unwrap().len() + 1,
        "nothing else is added: {body}"
    );
}

#[test]
fn messages_is_written_last_and_cannot_be_set_in_custom_fields() {
    let mut capture = Capture::new();
    let request = capture.with_format(
        json!({"customFields": {"zeta": 1, "alpha": "a"}}),
        user("the real message"),
    );
    assert_eq!(request.json()["messages"], user("the real message"));
    let keys = request.top_level_keys();
    assert_eq!(
        keys,
        ["zeta", "alpha", "messages"],
        "messages is the last key"
    );

    // customFields.messages would be dropped: it is refused instead, and nothing is sent.
    let settings = Settings::sse(capture.mock.url(PATH), DELTA_PATH).request_format(json!({
        "customFields": {"messages": [{"role": "user", "content": "injected"}]}
    }));
    let before = capture.mock.requests().len();
    let reply = capture.sidecar.complete(settings.params().build());
    let found = problems(reply.expect_error(INVALID_PARAMS, "invalid_settings"));
    message_for(&found, "customEngineRequestFormat.customFields.messages");
    assert_eq!(capture.mock.requests().len(), before);
}

#[test]
fn message_keys_rename_the_keys_inside_each_message() {
    let mut capture = Capture::new();
    let messages = json!([
        {"role": "system", "content": "S"},
        {"role": "user", "content": "U"},
        {"role": "assistant", "content": "A"}
    ]);

    let both = capture.with_format(
        json!({"messageKeys": {"role": "speaker", "content": "text"}}),
        messages.clone(),
    );
    assert_eq!(
        both.json()["messages"],
        json!([
            {"speaker": "system", "text": "S"},
            {"speaker": "user", "text": "U"},
            {"speaker": "assistant", "text": "A"}
        ]),
        "role values stay system/user/assistant"
    );

    let content_only = capture.with_format(
        json!({"messageKeys": {"content": "message"}}),
        messages.clone(),
    );
    assert_eq!(
        content_only.json()["messages"],
        json!([
            {"role": "system", "message": "S"},
            {"role": "user", "message": "U"},
            {"role": "assistant", "message": "A"}
        ])
    );
}

#[test]
fn stream_is_sent_only_when_custom_fields_has_it_with_the_value_as_given() {
    let mut capture = Capture::new();
    let without = capture.with_format(json!({"customFields": {"model": "m"}}), user("hi"));
    assert_eq!(
        without.json().get("stream"),
        None,
        "no stream key unless customFields has it"
    );
    let no_format = capture.capture(|s| s, user("hi"));
    assert_eq!(no_format.json().get("stream"), None);

    for value in [json!(true), json!(false), json!(1), json!("true")] {
        let request = capture.with_format(json!({"customFields": {"stream": value}}), user("hi"));
        let sent = request.json().get("stream");
        assert_eq!(sent, Some(&value), "stream sent as given");
        assert_eq!(
            sent.map(Value::is_u64),
            Some(value.is_u64()),
            "1 stays an integer"
        );
    }
}

#[test]
fn authorization_bearer_is_sent_only_for_a_non_empty_token() {
    let mut capture = Capture::new();
    let with_token = capture.capture(|s| s.token("sk-test-123"), user("hi"));
    assert_eq!(
        with_token.header_values("authorization"),
        ["Bearer sk-test-123"]
    );

    let absent = capture.capture(|s| s.remove("customEngineToken"), user("hi"));
    assert_eq!(absent.header_values("authorization"), Vec::<&str>::new());

    let empty = capture.capture(|s| s.token(""), user("hi"));
    assert_eq!(
        empty.header_values("authorization"),
        Vec::<&str>::new(),
        "an empty token means no Authorization header"
    );
}

#[test]
fn custom_headers_replace_same_name_headers_case_insensitively() {
    let mut capture = Capture::new();
    let request = capture.capture(
        |s| {
            s.token("sk-secret")
                .request_format(json!({"customHeaders": {
                    "authorization": "Basic dXNlcjpwYXNz",
                    "X-Api-Key": "key-1",
                    "CONTENT-TYPE": "application/vnd.test+json"
                }}))
        },
        user("hi"),
    );
    assert_eq!(
        request.header_values("Authorization"),
        ["Basic dXNlcjpwYXNz"],
        "customHeaders replaces the Bearer header"
    );
    assert_eq!(request.header_values("x-api-key"), ["key-1"]);
    assert_eq!(
        request.header_values("content-type"),
        ["application/vnd.test+json"]
    );

    let without_token = capture.with_format(
        json!({"customHeaders": {"Authorization": "Bearer from-header"}}),
        user("hi"),
    );
    assert_eq!(
        without_token.header_values("authorization"),
        ["Bearer from-header"]
    );
}

#[test]
fn content_type_is_application_json() {
    let mut capture = Capture::new();
    for request in [
        capture.capture(|s| s, user("hi")),
        capture.capture(|s| s.token("sk-1"), user("hi")),
        capture.with_format(json!({"customFields": {"model": "m"}}), user("hi")),
    ] {
        assert_eq!(
            request.header_values("content-type"),
            ["application/json"],
            "exactly one Content-Type, without charset"
        );
    }
}

#[test]
fn request_format_may_be_a_json_string_or_an_object() {
    let format = json!({
        "customFields": {"model": "glm-4", "stream": true, "temperature": 0.0},
        "customHeaders": {"X-Trace": "abc"},
        "messageKeys": {"role": "r", "content": "c"}
    });
    let mut capture = Capture::new();
    let as_object = capture.with_format(format.clone(), user("hi"));
    let as_string = capture.with_format(json!(format.to_string()), user("hi"));
    let as_pretty_string = capture.with_format(
        json!(serde_json::to_string_pretty(&format).unwrap()),
        user("hi"),
    );

    let expected = json!({
        "model": "glm-4",
        "stream": true,
        "temperature": 0.0,
        "messages": [{"r": "user", "c": "hi"}]
    });
    for request in [&as_object, &as_string, &as_pretty_string] {
        assert_eq!(request.json(), &expected);
        assert_eq!(request.header_values("x-trace"), ["abc"]);
    }
}

#[test]
fn fields_template_replaces_the_body_and_fills_in_the_last_message() {
    let format = json!({"fields": {
        "query": "$content",
        "inputs": {"feature": "$content", "other": "$content and more", "n": 1},
        "deep": {"a": {"b": "$content"}},
        "response_mode": "streaming",
        "user": "phodal"
    }});
    let messages = json!([
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "middle"},
        {"role": "user", "content": "the last one"}
    ]);
    let expected = json!({
        "query": "the last one",
        "inputs": {"feature": "the last one", "other": "$content and more", "n": 1},
        "deep": {"a": {"b": "the last one"}},
        "response_mode": "streaming",
        "user": "phodal"
    });

    let mut capture = Capture::new();
    let as_object = capture.with_format(format.clone(), messages.clone());
    assert_eq!(
        as_object.json(),
        &expected,
        "values exactly $content are filled in at any depth; no messages key"
    );
    let as_string = capture.with_format(json!(format.to_string()), messages);
    assert_eq!(as_string.json(), &expected);
}
