//! Safe and truthful requests: settings that would corrupt the HTTP request or silently lose the
//! user's data are refused by `llm/validateSettings` and by every request, with the field and the
//! fix; what can be honoured (a deep `$content`, `auth.type: Basic`, a pasted `Bearer ` prefix) is.
//! Also the `warnings` of `llm/validateSettings`, the Jayway `[(@.length-1)]` index, the bounds of
//! every wait, and URLs with characters the URL parser would silently rewrite.

mod common;

use common::*;
use serde_json::{Value, json};

/// Sends `method` with `params` and returns the reply.
fn call(sidecar: &mut Sidecar, method: &str, params: Value) -> Reply {
    let id = sidecar.request(method, params);
    sidecar.wait_response(&id, WAIT)
}

/// `llm/validateSettings` with `{settings}`; returns the result.
fn validate(sidecar: &mut Sidecar, settings: impl Into<Value>) -> Value {
    call(
        sidecar,
        "llm/validateSettings",
        json!({"settings": settings.into()}),
    )
    .result()
    .clone()
}

/// The problems of a validation report that must not be ok.
fn refused(report: &Value) -> Vec<(String, String)> {
    assert_eq!(report["ok"], json!(false), "{report}");
    assert!(report["normalized"].is_null(), "{report}");
    problems(report)
}

/// `(field, message)` of every warning in a validation report.
fn warnings(report: &Value) -> Vec<(String, String)> {
    report["warnings"]
        .as_array()
        .unwrap_or_else(|| panic!("warnings must be an array: {report}"))
        .iter()
        .map(|w| {
            (
                w["field"].as_str().unwrap_or_default().to_owned(),
                w["message"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// Runs `llm/complete` with `settings`; it must be refused with `-32602` before anything is sent.
fn complete_refused(
    sidecar: &mut Sidecar,
    mock: &MockLlm,
    settings: Value,
) -> Vec<(String, String)> {
    let reply = sidecar.complete(Complete::new(settings).build());
    let found = problems(reply.expect_error(INVALID_PARAMS, "invalid_settings"));
    assert!(mock.requests().is_empty(), "nothing is sent");
    found
}

/// A mock that answers "ok", and settings for it.
fn ok_mock() -> MockLlm {
    MockLlm::always(MockResponse::sse(openai_sse(&["ok"])))
}

// ---------------------------------------------------------------------------------------------
// 1. Headers that break the request

#[test]
fn framing_and_hop_by_hop_custom_headers_are_refused_naming_the_header() {
    let mock = ok_mock();
    let mut sidecar = Sidecar::spawn();
    let names = [
        "Content-Length",
        "Transfer-Encoding",
        "Host",
        "Connection",
        "Keep-Alive",
        "Proxy-Connection",
        "TE",
        "Trailer",
        "Upgrade",
        "Expect",
        "Content-Encoding",
        "Accept-Encoding",
        "Proxy-Authorization",
    ];
    let headers: serde_json::Map<String, Value> =
        names.iter().map(|n| (n.to_string(), json!("x"))).collect();
    let settings = Settings::sse(mock.url("/v1/chat/completions"), DELTA_PATH)
        .request_format(json!({"customHeaders": headers, "customFields": {"model": "m"}}));

    let found = refused(&validate(&mut sidecar, settings.clone()));
    for name in names {
        let message = message_for(
            &found,
            &format!("customEngineRequestFormat.customHeaders.{name}"),
        );
        assert!(
            message.contains(name)
                || message
                    .to_ascii_lowercase()
                    .contains(&name.to_ascii_lowercase()),
            "the message names the header {name}: {message}"
        );
    }
    assert_eq!(
        found.len(),
        names.len(),
        "one problem per header: {found:?}"
    );

    // Every request refuses them too, whatever the case of the name, and sends nothing.
    let lower = Settings::sse(mock.url("/v1/chat/completions"), DELTA_PATH)
        .request_format(json!({"customHeaders": {"content-length": "3", "X-Fine": "1"}}));
    let found = complete_refused(&mut sidecar, &mock, lower.into());
    let message = message_for(
        &found,
        "customEngineRequestFormat.customHeaders.content-length",
    );
    assert!(message.contains("computes it from the body"), "{message}");
    assert_eq!(found.len(), 1, "X-Fine is fine: {found:?}");
}

#[test]
fn framing_headers_from_a_custom_request_form_are_refused_under_the_users_key() {
    let mock = ok_mock();
    let mut sidecar = Sidecar::spawn();
    let entry = json!({"name": "x", "url": mock.url("/v1"), "auth": {"type": "Bearer", "token": ""},
        "customRequest": {"headers": {"Host": "other.example"}, "body": {"model": "m"}, "stream": true}});
    let found = refused(&validate(&mut sidecar, entry));
    message_for(&found, "customRequest.headers.Host");
}

// ---------------------------------------------------------------------------------------------
// 3. Silent losses when the request is built

#[test]
fn message_keys_mapping_role_and_content_to_the_same_key_is_a_problem() {
    let mock = ok_mock();
    let mut sidecar = Sidecar::spawn();
    let settings = Settings::sse(mock.url("/v1"), DELTA_PATH)
        .request_format(json!({"messageKeys": {"role": "text", "content": "text"}}));
    let found = refused(&validate(&mut sidecar, settings.clone()));
    let message = message_for(&found, "customEngineRequestFormat.messageKeys");
    assert!(
        message.contains("text") && message.contains("role"),
        "{message}"
    );
    complete_refused(&mut sidecar, &mock, settings.into());
}

#[test]
fn system_field_naming_messages_or_a_custom_field_is_a_problem() {
    let mock = ok_mock();
    let mut sidecar = Sidecar::spawn();
    let messages = Settings::sse(mock.url("/v1"), DELTA_PATH).set("systemField", "messages");
    let found = refused(&validate(&mut sidecar, messages.clone()));
    let message = message_for(&found, "systemField");
    assert!(message.contains("messages"), "{message}");
    complete_refused(&mut sidecar, &mock, messages.into());

    let clash = Settings::sse(mock.url("/v1"), DELTA_PATH)
        .set("systemField", "system")
        .request_format(json!({"customFields": {"system": "fixed"}}));
    let found = refused(&validate(&mut sidecar, clash));
    message_for(&found, "systemField");
}

#[test]
fn content_placeholder_is_filled_in_at_any_depth_of_the_fields_template() {
    let mock = ok_mock();
    let mut sidecar = Sidecar::spawn();
    // Gemini's native body.
    let settings = Settings::sse(
        mock.url("/v1beta/models/g:streamGenerateContent?alt=sse"),
        DELTA_PATH,
    )
    .request_format(json!({"fields": {
        "contents": [{"role": "user", "parts": [{"text": "$content"}]}],
        "deep": {"a": {"b": {"c": ["$content", "not $content"]}}},
        "generationConfig": {"temperature": 0.1}
    }}));
    let reply = sidecar.complete(
        settings
            .params()
            .messages(json!([{"role": "user", "content": "first"}, {"role": "user", "content": "the question"}]))
            .build(),
    );
    assert_eq!(reply.result()["text"], json!("ok"));
    assert_eq!(
        mock.single_request().json(),
        &json!({
            "contents": [{"role": "user", "parts": [{"text": "the question"}]}],
            "deep": {"a": {"b": {"c": ["the question", "not $content"]}}},
            "generationConfig": {"temperature": 0.1}
        })
    );
}

#[test]
fn a_fields_template_without_content_is_a_problem() {
    let mock = ok_mock();
    let mut sidecar = Sidecar::spawn();
    let settings = Settings::sse(mock.url("/v1"), DELTA_PATH)
        .request_format(json!({"fields": {"query": "$Content", "user": "u"}}));
    let found = refused(&validate(&mut sidecar, settings.clone()));
    let message = message_for(&found, "customEngineRequestFormat.fields");
    assert!(message.contains("\"$content\""), "{message}");
    complete_refused(&mut sidecar, &mock, settings.into());
}

#[test]
fn custom_fields_messages_is_a_problem_saying_messages_is_built_from_the_conversation() {
    let mock = ok_mock();
    let mut sidecar = Sidecar::spawn();
    let settings = Settings::sse(mock.url("/v1"), DELTA_PATH).request_format(
        json!({"customFields": {"model": "m", "messages": [{"role": "user", "content": "x"}]}}),
    );
    let found = refused(&validate(&mut sidecar, settings.clone()));
    let message = message_for(&found, "customEngineRequestFormat.customFields.messages");
    assert!(message.contains("conversation"), "{message}");
    complete_refused(&mut sidecar, &mock, settings.into());
}

/// The Authorization header a `customLlms`-form entry with `auth` sends.
fn authorization_for(sidecar: &mut Sidecar, auth: Value) -> String {
    let mock = ok_mock();
    let entry = json!({"name": "x", "url": mock.url("/v1/chat/completions"), "auth": auth,
        "responseFormat": DELTA_PATH});
    let reply = sidecar.complete(Complete::new(entry).build());
    assert_eq!(reply.result()["text"], json!("ok"), "{auth}");
    mock.single_request()
        .header("Authorization")
        .unwrap_or("(none)")
        .to_owned()
}

#[test]
fn auth_type_basic_is_sent_as_basic() {
    let mut sidecar = Sidecar::spawn();
    // user:password is encoded for the user.
    assert_eq!(
        authorization_for(
            &mut sidecar,
            json!({"type": "Basic", "token": "alice:s3cret-pass"})
        ),
        "Basic YWxpY2U6czNjcmV0LXBhc3M="
    );
    // An already encoded value is sent as is.
    assert_eq!(
        authorization_for(
            &mut sidecar,
            json!({"type": "basic", "token": "YWxpY2U6czNjcmV0LXBhc3M="})
        ),
        "Basic YWxpY2U6czNjcmV0LXBhc3M="
    );
    // Bearer stays Bearer.
    assert_eq!(
        authorization_for(
            &mut sidecar,
            json!({"type": "Bearer", "token": "sk-bearer-123456"})
        ),
        "Bearer sk-bearer-123456"
    );
    // Neither user:password nor its base64 form: a problem, nothing sent.
    let mock = ok_mock();
    let entry = json!({"name": "x", "url": mock.url("/v1"), "auth": {"type": "Basic", "token": "sk-not-basic-123"}});
    let found = complete_refused(&mut sidecar, &mock, entry);
    let message = message_for(&found, "auth.token");
    assert!(message.contains("user:password"), "{message}");
    // An auth type that cannot be honoured is not silently sent as Bearer.
    let entry =
        json!({"name": "x", "url": mock.url("/v1"), "auth": {"type": "Digest", "token": "t"}});
    let found = complete_refused(&mut sidecar, &mock, entry);
    let message = message_for(&found, "auth.type");
    assert!(
        message.contains("Basic") && message.contains("tokenHeader"),
        "{message}"
    );
}

#[test]
fn a_pasted_bearer_prefix_and_invisible_characters_are_trimmed() {
    let mock = ok_mock();
    let mut sidecar = Sidecar::spawn();
    for token in [
        "Bearer sk-pasted-123456",
        "bearer  sk-pasted-123456",
        "\u{feff}sk-pasted-123456\n",
        "\u{200b}sk-pasted-123456\u{a0}",
        "Bearer sk-pasted-123456\u{200d}\r\n",
    ] {
        let before = mock.requests().len();
        let settings = Settings::sse(mock.url("/v1"), DELTA_PATH).token(token);
        let reply = sidecar.complete(settings.params().build());
        assert_eq!(reply.result()["text"], json!("ok"), "{token:?}");
        let requests = mock.wait_for_requests(before + 1, WAIT);
        assert_eq!(
            requests[before].header("Authorization"),
            Some("Bearer sk-pasted-123456"),
            "{token:?}"
        );
    }
    // The same for a token in another header.
    let settings = Settings::sse(mock.url("/v1"), DELTA_PATH)
        .token("Bearer key-in-header-1\n")
        .set("tokenHeader", "x-api-key");
    let reply = sidecar.complete(settings.params().build());
    assert_eq!(reply.result()["text"], json!("ok"));
    assert_eq!(
        mock.requests().last().unwrap().header("x-api-key"),
        Some("key-in-header-1")
    );
}

#[test]
fn invisible_characters_inside_a_token_are_refused_and_named() {
    let mock = ok_mock();
    let mut sidecar = Sidecar::spawn();
    for (token, name) in [
        ("sk-abc\u{200b}def-123456", "U+200B"),
        ("sk-abc\u{a0}def-123456", "U+00A0"),
        ("sk-abc\ndef-123456", "U+000A"),
    ] {
        let settings = Settings::sse(mock.url("/v1"), DELTA_PATH).token(token);
        let found = complete_refused(&mut sidecar, &mock, settings.into());
        let message = message_for(&found, "customEngineToken");
        assert!(
            message.contains(name) && message.contains("position 7"),
            "{token:?}: {message}"
        );
        assert!(
            !message.contains("sk-abc"),
            "the token is not quoted: {message}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 4. n > 1 with a positional path

#[test]
fn n_above_one_with_a_positional_path_warns_and_names_the_filter_form() {
    let mut sidecar = Sidecar::spawn();
    let url = "http://127.0.0.1:9/v1/chat/completions";
    let report = validate(
        &mut sidecar,
        Settings::sse(url, "$.choices[0].delta.content")
            .reasoning("$.choices[0].delta.reasoning_content")
            .request_format(json!({"customFields": {"model": "m", "n": 2, "stream": true}})),
    );
    assert_eq!(
        report["ok"],
        json!(true),
        "a warning, not a problem: {report}"
    );
    assert_eq!(report["problems"], json!([]), "{report}");
    let found = warnings(&report);
    let message = message_for(&found, "customEngineResponseFormat");
    assert!(
        message.contains("$.choices[?@.index==0].delta.content"),
        "{message}"
    );
    let message = message_for(&found, "reasoningFormat");
    assert!(
        message.contains("$.choices[?@.index==0].delta.reasoning_content"),
        "{message}"
    );

    // The default path is positional too.
    let report = validate(
        &mut sidecar,
        Settings::new(url).request_format(json!({"customFields": {"n": 3}})),
    );
    let found = warnings(&report);
    let message = message_for(&found, "customEngineResponseFormat");
    assert!(message.contains("[?@.index==0]"), "{message}");

    // The filter form, or n = 1, is not warned about.
    for settings in [
        Settings::sse(url, "$.choices[?@.index==0].delta.content")
            .request_format(json!({"customFields": {"n": 2}})),
        Settings::sse(url, DELTA_PATH).request_format(json!({"customFields": {"n": 1}})),
    ] {
        let report = validate(&mut sidecar, settings);
        assert_eq!(report["warnings"], json!([]), "{report}");
    }
}

// ---------------------------------------------------------------------------------------------
// 5. Jayway's script index

#[test]
fn jayway_script_index_is_refused_naming_the_rfc_9535_index() {
    let mut sidecar = Sidecar::spawn();
    for (path, instead, column) in [
        ("$.choices[(@.length-1)].delta.content", "[-1]", "column 10"),
        ("choices[(@.length - 2)].delta.content", "[-2]", "column 8"),
    ] {
        let report = validate(&mut sidecar, Settings::sse("http://127.0.0.1:9/v1", path));
        let found = refused(&report);
        let message = message_for(&found, "customEngineResponseFormat");
        assert!(
            message.contains(instead) && message.contains("Jayway"),
            "{path}: {message}"
        );
        assert!(message.contains(column), "{path}: {message}");
    }
}

// ---------------------------------------------------------------------------------------------
// 6. Bounds on waits, URLs the parser would rewrite, proxies

#[test]
fn waits_are_bounded_and_the_bound_is_in_the_message() {
    let mut sidecar = Sidecar::spawn();
    let url = "http://127.0.0.1:9/v1";
    let report = validate(
        &mut sidecar,
        Settings::new(url)
            .set(
                "retry",
                json!({"initialBackoffMs": 600_000, "maxBackoffMs": 3_600_000}),
            )
            .set(
                "timeouts",
                json!({"connectMs": 90_000_000u64, "firstByteMs": 18_446_744_073_709_551_615u64,
                       "idleMs": 86_400_001, "totalMs": 100_000_000}),
            ),
    );
    let found = refused(&report);
    for field in ["retry.initialBackoffMs", "retry.maxBackoffMs"] {
        let message = message_for(&found, field);
        assert!(message.contains("60000"), "{field}: {message}");
    }
    for field in [
        "timeouts.connectMs",
        "timeouts.firstByteMs",
        "timeouts.idleMs",
        "timeouts.totalMs",
    ] {
        let message = message_for(&found, field);
        assert!(message.contains("86400000"), "{field}: {message}");
    }

    let report = validate(
        &mut sidecar,
        Settings::new(url).set(
            "retry",
            json!({"initialBackoffMs": 5000, "maxBackoffMs": 1000}),
        ),
    );
    let found = refused(&report);
    let message = message_for(&found, "retry.initialBackoffMs");
    assert!(message.contains("maxBackoffMs"), "{message}");

    // Within the bounds: fine.
    let report = validate(
        &mut sidecar,
        Settings::new(url)
            .set(
                "retry",
                json!({"initialBackoffMs": 60_000, "maxBackoffMs": 60_000}),
            )
            .set("timeouts", json!({"idleMs": 86_400_000})),
    );
    assert_eq!(report["ok"], json!(true), "{report}");
}

#[test]
fn urls_with_characters_the_parser_would_rewrite_are_refused() {
    let mock = ok_mock();
    let mut sidecar = Sidecar::spawn();
    let good = mock.url("/v1/chat/completions");
    let (head, tail) = good.split_at(good.len() - "/completions".len());
    for (bad, what) in [
        (format!("{head}\t{tail}"), "tab"),
        (format!("{head}\n{tail}"), "line break"),
        (format!("{head} {tail}"), "space"),
        (format!("{head}\u{200b}{tail}"), "U+200B"),
        (format!("{head}\\{tail}"), "\\"),
    ] {
        let found = complete_refused(
            &mut sidecar,
            &mock,
            Settings::sse(bad.clone(), DELTA_PATH).into(),
        );
        let message = message_for(&found, "customEngineServer");
        assert!(message.contains(what), "{bad:?}: {message}");
    }
    // Surrounding whitespace (a pasted line end) is not inside the URL: trimmed.
    let reply = sidecar.complete(
        Settings::sse(format!(" {good}\n"), DELTA_PATH)
            .params()
            .build(),
    );
    assert_eq!(reply.result()["text"], json!("ok"));

    let report = validate(
        &mut sidecar,
        Settings::new(good.clone()).set("proxy", "http://127.0.0.1:3128\t/"),
    );
    let found = refused(&report);
    let message = message_for(&found, "proxy");
    assert!(message.contains("tab"), "{message}");
}

#[test]
fn socks5_proxies_validate_and_an_unsupported_scheme_lists_the_supported_ones() {
    let mut sidecar = Sidecar::spawn();
    let url = "http://127.0.0.1:9/v1";
    for proxy in [
        "socks5://127.0.0.1:1080",
        "socks5h://user:pw@127.0.0.1:1080",
    ] {
        let report = validate(&mut sidecar, Settings::new(url).set("proxy", proxy));
        assert_eq!(report["ok"], json!(true), "{proxy}: {report}");
    }
    let report = validate(
        &mut sidecar,
        Settings::new(url).set("proxy", "socks4://127.0.0.1:1080"),
    );
    let found = refused(&report);
    let message = message_for(&found, "proxy");
    for scheme in ["http://", "https://", "socks5://", "socks5h://"] {
        assert!(message.contains(scheme), "{message}");
    }
    assert!(message.contains("socks4"), "{message}");
}

#[test]
fn token_header_cannot_be_a_framing_or_hop_by_hop_header() {
    let mock = ok_mock();
    let mut sidecar = Sidecar::spawn();
    for name in ["Content-Length", "host", "Transfer-Encoding"] {
        let settings = Settings::sse(mock.url("/v1"), DELTA_PATH)
            .token("sk-123456")
            .set("tokenHeader", name);
        let found = complete_refused(&mut sidecar, &mock, settings.into());
        let message = message_for(&found, "tokenHeader");
        assert!(message.contains(name), "{message}");
    }
}
