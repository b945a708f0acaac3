//! `-32602` for bad settings and bad params: every problem at once, with the field as the user
//! typed it, and the server keeps serving afterwards.

mod common;

use common::*;
use serde_json::{Value, json};

/// The number after "column " in `message`.
fn column(message: &str) -> Option<usize> {
    let rest = &message[message.find("column ")? + "column ".len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Asserts `message` names the 1-based column of a JsonPath error at 0-based byte `position`.
fn assert_names_column(message: &str, position: usize) {
    assert_eq!(
        column(message),
        Some(position + 1),
        "expected `column {}` in {message:?}",
        position + 1
    );
}

fn invalid(sidecar: &mut Sidecar, settings: Value, messages: Value) -> Reply {
    let params = Complete::new(settings).messages(messages).build();
    let reply = sidecar.complete(params);
    reply.expect_code(INVALID_PARAMS);
    reply
}

#[test]
fn every_settings_problem_is_reported_at_once() {
    let mut sidecar = Sidecar::spawn();
    let settings = json!({
        "customEngineServer": "not a url",
        "customEngineRequestFormat": "{\"customFields\": ",
        "customEngineResponseFormat": "$.choices[0",
        "customEngineResponseType": "XML"
    });
    let reply = invalid(&mut sidecar, settings, user("hi"));
    let data = reply.expect_error(INVALID_PARAMS, "invalid_settings");
    let problems = problems(data);
    for field in [
        "customEngineServer",
        "customEngineRequestFormat",
        "customEngineResponseFormat",
        "customEngineResponseType",
    ] {
        message_for(&problems, field);
    }
    assert_names_column(message_for(&problems, "customEngineResponseFormat"), 11);
    assert_still_serving(&mut sidecar);
}

#[test]
fn a_jsonpath_syntax_error_names_its_column() {
    let mock = MockLlm::always(MockResponse::sse(openai_sse(&["unused"])));
    let mut sidecar = Sidecar::spawn();
    let url = mock.url("/v1");
    let cases = [
        ("customEngineResponseFormat", "$.choices[0].delta.]", 19),
        (
            "customEngineResponseFormat",
            "$.choices[0].delta.content]",
            26,
        ),
        (
            "reasoningFormat",
            "$.choices[0].delta.reasoning_content[",
            36,
        ),
    ];
    for (field, path, position) in cases {
        let settings = Settings::sse(url.clone(), DELTA_PATH).set(field, path);
        let reply = invalid(&mut sidecar, settings.into(), user("hi"));
        let problems = problems(reply.expect_error(INVALID_PARAMS, "invalid_settings"));
        assert_names_column(message_for(&problems, field), position);
    }
    assert!(
        mock.requests().is_empty(),
        "no HTTP request for bad settings"
    );
    assert_still_serving(&mut sidecar);
}

#[test]
fn each_bad_setting_is_reported_under_its_own_field() {
    let mock = MockLlm::always(MockResponse::sse(openai_sse(&["unused"])));
    let mut sidecar = Sidecar::spawn();
    let good = || Settings::sse(mock.url("/v1"), DELTA_PATH);
    let cases: Vec<(&str, Value)> = vec![
        (
            "customEngineServer",
            good().remove("customEngineServer").into(),
        ),
        (
            "customEngineServer",
            good()
                .set("customEngineServer", "ftp://127.0.0.1/v1")
                .into(),
        ),
        (
            "customEngineServer",
            good().set("customEngineServer", "127.0.0.1:8080/v1").into(),
        ),
        (
            "customEngineServer",
            good().set("customEngineServer", 42).into(),
        ),
        (
            "customEngineResponseType",
            good().response_type("XML").into(),
        ),
        (
            "customEngineRequestFormat",
            good().request_format(json!("{not json")).into(),
        ),
        (
            "customEngineRequestFormat",
            good().request_format(json!(42)).into(),
        ),
        (
            "customEngineRequestFormat.customHeaders.X-Api-Key",
            good()
                .request_format(json!({"customHeaders": {"X-Api-Key": {"nested": true}}}))
                .into(),
        ),
        ("customEngineResponseFormat", good().path("$$").into()),
    ];
    let mut failures = Vec::new();
    for (field, settings) in cases {
        let reply = sidecar.complete(Complete::new(settings.clone()).build());
        let error = &reply.response["error"];
        let ok = error["code"] == json!(INVALID_PARAMS)
            && error["data"]["kind"] == json!("invalid_settings")
            && error["data"]["problems"]
                .as_array()
                .is_some_and(|ps| ps.iter().any(|p| p["field"] == json!(field)));
        if !ok {
            failures.push(format!(
                "settings {settings}\n  expected a problem for {field}\n  got {}",
                reply.response
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        mock.requests().is_empty(),
        "no HTTP request for bad settings"
    );
    assert_still_serving(&mut sidecar);
}

#[test]
fn response_type_is_case_insensitive() {
    let mock = MockLlm::always(MockResponse::sse(openai_sse(&["Hi"])));
    let mut sidecar = Sidecar::spawn();
    for response_type in ["SSE", "sse", "Sse"] {
        let settings = Settings::sse(mock.url("/v1"), DELTA_PATH).response_type(response_type);
        let reply = complete_streamed(&mut sidecar, settings);
        assert_eq!(
            reply.result()["text"],
            "Hi",
            "customEngineResponseType {response_type}"
        );
    }
}

#[test]
fn bad_messages_are_invalid_params() {
    let mock = MockLlm::always(MockResponse::sse(openai_sse(&["unused"])));
    let mut sidecar = Sidecar::spawn();
    let settings: Value = Settings::sse(mock.url("/v1"), DELTA_PATH).into();

    let empty = invalid(&mut sidecar, settings.clone(), json!([]));
    empty.expect_error(INVALID_PARAMS, "invalid_params");

    let bad_role = invalid(
        &mut sidecar,
        settings.clone(),
        json!([{"role": "user", "content": "a"}, {"role": "robot", "content": "b"}]),
    );
    let data = bad_role.expect_error(INVALID_PARAMS, "invalid_params");
    message_for(&problems(data), "messages[1].role");

    let missing = sidecar.complete(json!({"settings": settings}));
    missing.expect_error(INVALID_PARAMS, "invalid_params");

    let no_settings = sidecar.complete(json!({"messages": user("hi")}));
    no_settings.expect_code(INVALID_PARAMS);

    assert!(mock.requests().is_empty(), "no HTTP request for bad params");
    assert_still_serving(&mut sidecar);
}

#[test]
fn settings_and_message_problems_together_are_invalid_settings() {
    let mut sidecar = Sidecar::spawn();
    let reply = invalid(
        &mut sidecar,
        json!({"customEngineServer": "nope"}),
        json!([{"role": "user", "content": "a"}, {"role": "robot", "content": "b"}]),
    );
    let problems = problems(reply.expect_error(INVALID_PARAMS, "invalid_settings"));
    message_for(&problems, "customEngineServer");
    message_for(&problems, "messages[1].role");
    assert_still_serving(&mut sidecar);
}

#[test]
fn the_server_keeps_serving_after_invalid_settings() {
    let mock = MockLlm::always(MockResponse::sse(openai_sse(&["still ", "here"])));
    let mut sidecar = Sidecar::spawn();
    for _ in 0..3 {
        invalid(
            &mut sidecar,
            json!({"customEngineServer": "bad"}),
            user("hi"),
        );
    }
    let reply = complete_streamed(&mut sidecar, Settings::sse(mock.url("/v1"), DELTA_PATH));
    assert_eq!(reply.result()["text"], "still here");
    assert_eq!(sidecar.finish().code(), Some(0));
}
