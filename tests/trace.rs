//! `"trace": true` on `llm/complete` and `llm/testConnection`, and `llm-sidecar complete --trace`:
//! the request as sent, the response head and the first 16 KiB of the raw body, secrets masked;
//! nothing extra without `trace`.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::schema::assert_matches_methods_schema;
use common::*;
use serde_json::{Value, json};

const TOKEN: &str = "sk-trace-secret-0123456789";

/// The `llm/trace` params of a reply; each must match the published schema.
fn traces(reply: &Reply) -> Vec<Value> {
    let traces: Vec<Value> = reply
        .notifications
        .iter()
        .filter(|n| n["method"] == "llm/trace")
        .map(|n| n["params"].clone())
        .collect();
    for trace in &traces {
        assert_matches_methods_schema("traceParams", trace);
    }
    traces
}

fn part<'a>(traces: &'a [Value], key: &str) -> &'a Value {
    &traces
        .iter()
        .find(|t| t.get(key).is_some())
        .unwrap_or_else(|| panic!("no trace with {key}: {traces:#?}"))[key]
}

fn settings(mock: &MockLlm) -> Value {
    json!({
        "customEngineServer": mock.url("/v1/chat/completions"),
        "customEngineToken": TOKEN,
        "customEngineResponseFormat": DELTA_PATH,
        "customEngineRequestFormat": {"customFields": {"model": "m", "stream": true}},
        "retry": {"maxRetries": 0},
    })
}

#[test]
fn a_traced_completion_shows_the_request_the_response_head_and_the_raw_body() {
    let body = openai_sse(&["Hel", "lo"]);
    let mock = MockLlm::always(MockResponse::sse(&body).header("X-Request-Id", "req-42"));
    let mut sidecar = Sidecar::spawn();
    let reply = sidecar.complete(json!({
        "streamId": "s", "trace": true, "settings": settings(&mock), "messages": user("trace me"),
    }));
    assert_eq!(reply.result()["text"], "Hello");
    let traces = traces(&reply);
    assert!(
        traces
            .iter()
            .all(|t| t["streamId"] == "s" && t["attempt"] == 1),
        "{traces:#?}"
    );
    let request = part(&traces, "request");
    assert_eq!(request["method"], "POST");
    assert_eq!(request["url"], mock.url("/v1/chat/completions"));
    let auth = request["headers"]["authorization"].as_str().unwrap();
    assert!(
        auth.starts_with("Bearer ") && !auth.contains(TOKEN),
        "{auth}"
    );
    assert!(request["body"].as_str().unwrap().contains("trace me"));
    let response = part(&traces, "response");
    assert_eq!(response["status"], 200);
    assert_eq!(response["headers"]["x-request-id"], "req-42");
    let raw = part(&traces, "body");
    assert_eq!(raw["text"], body.as_str());
    assert_eq!(raw["bytes"], body.len());
    assert_eq!(raw["cut"], false);
    assert!(!json!(traces).to_string().contains(TOKEN));
    // The request trace precedes the first chunk.
    let order: Vec<&str> = reply
        .notifications
        .iter()
        .map(|n| n["method"].as_str().unwrap())
        .collect();
    assert_eq!(order.first(), Some(&"llm/trace"), "{order:?}");
}

#[test]
fn without_trace_nothing_extra_is_sent() {
    let mock = MockLlm::always(MockResponse::sse(openai_sse(&["a"])));
    let mut sidecar = Sidecar::spawn();
    let reply = sidecar
        .complete(json!({"streamId": "s", "settings": settings(&mock), "messages": user("x")}));
    reply.result();
    assert!(traces(&reply).is_empty());
    assert!(
        reply
            .notifications
            .iter()
            .all(|n| n["method"] == "llm/chunk")
    );
}

#[test]
fn an_error_body_is_traced_with_the_token_masked_and_long_bodies_are_cut_at_16_kib() {
    let echo = format!(r#"{{"error":{{"message":"key {TOKEN} is invalid"}}}}"#);
    let mock = MockLlm::always(MockResponse::json(401, echo));
    let mut sidecar = Sidecar::spawn();
    let reply = sidecar
        .complete(json!({"trace": true, "settings": settings(&mock), "messages": user("x")}));
    reply.expect_code(REQUEST_FAILED);
    let first = traces(&reply);
    assert_eq!(part(&first, "response")["status"], 401);
    let text = part(&first, "body")["text"].as_str().unwrap().to_owned();
    assert!(
        text.contains("is invalid") && !text.contains(TOKEN),
        "{text}"
    );

    let long = format!(
        "{}{}",
        sse_event(&openai_delta(&"x".repeat(20_000))),
        sse_event("[DONE]")
    );
    let mock = MockLlm::always(MockResponse::sse(long));
    let reply = sidecar
        .complete(json!({"trace": true, "settings": settings(&mock), "messages": user("x")}));
    reply.result();
    let raw = part(&traces(&reply), "body").clone();
    assert_eq!(raw["bytes"], 16 * 1024);
    assert_eq!(raw["cut"], true);
}

#[test]
fn test_connection_can_be_traced() {
    let mock = MockLlm::always(MockResponse::sse(openai_sse(&["ok"])));
    let mut sidecar = Sidecar::spawn();
    let id = sidecar.request(
        "llm/testConnection",
        json!({"trace": true, "settings": settings(&mock)}),
    );
    let reply = sidecar.wait_response(&id, WAIT);
    assert_eq!(reply.result()["ok"], true);
    let traces = traces(&reply);
    assert_eq!(part(&traces, "response")["status"], 200);
    assert!(
        part(&traces, "request")["body"]
            .as_str()
            .unwrap()
            .contains("max_tokens")
    );
}

#[test]
fn complete_trace_prints_the_exchange_and_a_curl_command_without_the_token() {
    let mock = MockLlm::always(MockResponse::sse(openai_sse(&["ok"])));
    let mut file = tempfile::NamedTempFile::new().unwrap();
    let mut s = settings(&mock);
    s.as_object_mut().unwrap().remove("customEngineToken");
    write!(file, "{s}").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_llm-sidecar"))
        .args(["complete", "--trace", "--settings"])
        .arg(file.path())
        .arg("hi")
        .env("LLM_SIDECAR_TOKEN", TOKEN)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert_eq!(stdout.trim_end(), "ok");
    assert!(
        stderr.contains("> POST ") && stderr.contains("< HTTP 200"),
        "{stderr}"
    );
    assert!(stderr.contains("data: [DONE]"), "{stderr}");
    assert!(stderr.contains("curl -N -X POST"), "{stderr}");
    assert!(stderr.contains("Bearer ${LLM_SIDECAR_TOKEN}"), "{stderr}");
    assert!(!stderr.contains(TOKEN) && !stdout.contains(TOKEN));
    assert_eq!(
        mock.single_request().header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
}

#[test]
fn a_connect_failure_is_traced_as_the_request_alone() {
    let mut sidecar = Sidecar::spawn();
    let url = format!("http://127.0.0.1:{}/v1/chat/completions", unused_port());
    let reply = sidecar.complete(json!({
        "trace": true,
        "settings": {"customEngineServer": url, "retry": {"maxRetries": 0}},
        "messages": user("x"),
    }));
    reply.expect_code(REQUEST_FAILED);
    let traces = traces(&reply);
    assert_eq!(traces.len(), 1, "{traces:#?}");
    assert_eq!(traces[0]["request"]["url"], url.as_str());
}

/// Query keys written percent-encoded or with `+`, and cookies: none may show in a trace.
const QUERY: &str = "model=m&key=ab%2Fquery-secret-4321&api_key=plus+query+secret+8765";
const HIDDEN: [&str; 7] = [
    "ab%2Fquery-secret",
    "ab/query-secret",
    "plus+query+secret",
    "plus query secret",
    "cookie-secret-1234",
    "server-cookie-secret",
    "query-secret",
];

fn settings_with_query_keys_and_cookies(mock: &MockLlm) -> Value {
    let mut s = settings(mock);
    s["customEngineServer"] = json!(mock.url(&format!("/v1/chat/completions?{QUERY}")));
    s["customEngineRequestFormat"]["customHeaders"] = json!({
        "Cookie": "session=cookie-secret-1234abcd",
    });
    s
}

fn cookie_server() -> MockLlm {
    MockLlm::always(MockResponse::sse(openai_sse(&["ok"])).header(
        "Set-Cookie",
        "sid=server-cookie-secret-99; Path=/; HttpOnly",
    ))
}

fn assert_hidden(text: &str) {
    for secret in HIDDEN {
        assert!(!text.contains(secret), "{secret} shows in: {text}");
    }
}

#[test]
fn encoded_query_keys_and_cookies_are_masked_in_the_trace() {
    let mock = cookie_server();
    let mut sidecar = Sidecar::spawn();
    let reply = sidecar.complete(json!({
        "trace": true,
        "settings": settings_with_query_keys_and_cookies(&mock),
        "messages": user("x"),
    }));
    assert_eq!(reply.result()["text"], "ok");
    let traces = traces(&reply);
    assert_hidden(&json!(traces).to_string());
    let url = part(&traces, "request")["url"].as_str().unwrap();
    assert!(url.contains("model=m") && url.contains("key="), "{url}");
    let headers = &part(&traces, "request")["headers"];
    assert!(headers["cookie"].is_string(), "{headers}");
    assert!(part(&traces, "response")["headers"]["set-cookie"].is_string());
    // The server got them as configured.
    let request = mock.single_request();
    assert!(request.path.ends_with(QUERY), "{}", request.path);
    assert_eq!(
        request.header("cookie"),
        Some("session=cookie-secret-1234abcd")
    );
}

#[test]
fn encoded_query_keys_and_cookies_are_masked_in_complete_trace_and_its_curl_command() {
    let mock = cookie_server();
    let mut file = tempfile::NamedTempFile::new().unwrap();
    write!(file, "{}", settings_with_query_keys_and_cookies(&mock)).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_llm-sidecar"))
        .args(["complete", "--trace", "--settings"])
        .arg(file.path())
        .arg("hi")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("curl -N -X POST"), "{stderr}");
    assert!(stderr.contains("set-cookie"), "{stderr}");
    assert_hidden(&stderr);
}
