//! `llm/detect`, `llm/models` and `llm-sidecar detect` through the real binary, against mock servers
//! on 127.0.0.1 that speak each API shape: OpenAI-style SSE, Anthropic-style SSE, Ollama-style NDJSON,
//! a server that refuses `stream: true`, one that needs a model from its list, one whose `/v1/models`
//! is 404, one with its text at an unusual path. Each is detected with working settings, and the
//! candidate settings then complete through `llm/complete`. Also: the request budget, cancel, a
//! redirect to another host, and that the token appears in no `tried` entry and no log line.

mod common;

use std::process::{Command, Stdio};

use common::raw_server::{http_chunk, response_head};
use common::schema::assert_matches_methods_schema;
use common::*;
use serde_json::{Value, json};

const TOKEN: &str = "sk-detect-secret-0123456789";

/// Runs `llm/detect`; its params and result must match the published schema.
fn detect(sidecar: &mut Sidecar, params: Value) -> Value {
    assert_matches_methods_schema("detectParams", &params);
    let id = sidecar.request("llm/detect", params);
    let result = sidecar.wait_response(&id, WAIT).result().clone();
    assert_matches_methods_schema("detectResult", &result);
    result
}

/// Completes "hi" with `settings` and returns the text.
fn complete_with(sidecar: &mut Sidecar, settings: &Value) -> String {
    let id = sidecar.request(
        "llm/complete",
        json!({"settings": settings, "messages": user("hi")}),
    );
    let reply = sidecar.wait_response(&id, WAIT);
    reply.result()["text"].as_str().unwrap().to_owned()
}

fn not_found() -> MockResponse {
    MockResponse::json(404, r#"{"error":{"message":"not found"}}"#)
}

fn is_post(r: &RecordedRequest, path: &str) -> bool {
    r.method == "POST" && r.path == path
}

fn stream_requested(r: &RecordedRequest) -> bool {
    r.json.as_ref().and_then(|j| j.get("stream")) == Some(&json!(true))
}

/// The `customFields` of a candidate's (string) request format.
fn custom_fields(candidate: &Value) -> Value {
    let format = candidate["settings"]["customEngineRequestFormat"]
        .as_str()
        .expect("the request format is a JSON string, as AutoDev stores it");
    serde_json::from_str::<Value>(format).unwrap()["customFields"].clone()
}

fn tried_text(result: &Value) -> String {
    result["tried"].to_string()
}

/// An OpenAI-compatible server that needs the token and lists one model.
fn openai_server() -> MockLlm {
    MockLlm::start(|r| {
        if r.header("authorization") != Some(&format!("Bearer {TOKEN}")) {
            return MockResponse::json(401, r#"{"error":{"message":"bad key"}}"#);
        }
        match (r.method.as_str(), r.path.as_str()) {
            ("GET", "/v1/models") => MockResponse::json(
                200,
                r#"{"object":"list","data":[{"id":"gpt-mock","object":"model"}]}"#,
            ),
            ("POST", "/v1/chat/completions") if stream_requested(r) => {
                MockResponse::sse(openai_sse(&["Hel", "lo"]))
            }
            _ => not_found(),
        }
    })
}

#[test]
fn an_openai_server_is_detected_from_its_base_url_and_the_settings_complete() {
    let mock = openai_server();
    let mut sidecar = Sidecar::builder().env("LLM_SIDECAR_LOG", "debug").spawn();
    let result = detect(&mut sidecar, json!({"url": mock.url(""), "token": TOKEN}));
    let best = &result["candidates"][0];
    assert_eq!(best["api"], "openai-chat", "{result:#}");
    assert_eq!(best["responseType"], "SSE");
    assert_eq!(best["models"], json!(["gpt-mock"]));
    assert_eq!(best["sampleText"], "Hello");
    let settings = &best["settings"];
    assert_eq!(
        settings["customEngineServer"],
        mock.url("/v1/chat/completions")
    );
    assert_eq!(settings["customEngineResponseFormat"], DELTA_PATH);
    assert_eq!(settings["customEngineResponseType"], "SSE");
    assert_eq!(
        custom_fields(best),
        json!({"model": "gpt-mock", "stream": true})
    );
    // The probe itself was capped and named the listed model.
    let probe = mock
        .requests()
        .into_iter()
        .find(|r| is_post(r, "/v1/chat/completions"))
        .expect("a completion probe");
    assert_eq!(probe.json()["model"], "gpt-mock");
    assert_eq!(probe.json()["max_tokens"], 16);
    // Secrets: not in `tried`, not in the logs; the candidate carries it back to send as settings.
    assert!(!tried_text(&result).contains(TOKEN), "{result:#}");
    assert_eq!(settings["customEngineToken"], TOKEN);
    assert_eq!(complete_with(&mut sidecar, settings), "Hello");
    sidecar.finish();
    assert!(!sidecar.full_stderr().contains(TOKEN));
}

fn anthropic_sse() -> String {
    [
        r#"{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-mock","content":[],"usage":{"input_tokens":3,"output_tokens":1}}}"#,
        r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}"#,
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" there"}}"#,
        r#"{"type":"content_block_stop","index":0}"#,
        r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":2}}"#,
        r#"{"type":"message_stop"}"#,
    ]
    .iter()
    .map(|data| {
        let kind: Value = serde_json::from_str(data).unwrap();
        format!("event: {}\ndata: {data}\n\n", kind["type"].as_str().unwrap())
    })
    .collect()
}

fn anthropic_server() -> MockLlm {
    MockLlm::start(|r| {
        if r.header("x-api-key") != Some(TOKEN) || r.header("authorization").is_some() {
            return MockResponse::json(
                401,
                r#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#,
            );
        }
        match (r.method.as_str(), r.path.as_str()) {
            ("GET", "/v1/models") => MockResponse::json(
                200,
                r#"{"data":[{"type":"model","id":"claude-mock","display_name":"Claude Mock"}],"has_more":false}"#,
            ),
            ("POST", "/v1/messages")
                if r.header("anthropic-version").is_some()
                    && r.json()["max_tokens"].is_u64()
                    && stream_requested(r) =>
            {
                MockResponse::sse(anthropic_sse())
            }
            _ => not_found(),
        }
    })
}

#[test]
fn an_anthropic_server_is_detected_from_its_messages_url_or_its_base() {
    let mock = anthropic_server();
    let mut sidecar = Sidecar::spawn();
    for url in [mock.url("/v1/messages"), mock.url("")] {
        let result = detect(&mut sidecar, json!({"url": url, "token": TOKEN}));
        let best = &result["candidates"][0];
        assert_eq!(best["api"], "anthropic-messages", "{url}: {result:#}");
        assert_eq!(best["preset"], "anthropic");
        assert_eq!(
            best["settings"]["customEngineServer"],
            mock.url("/v1/messages")
        );
        assert_eq!(
            best["settings"]["customEngineResponseFormat"],
            "$.delta.text"
        );
        assert_eq!(best["settings"]["tokenHeader"], "x-api-key");
        assert_eq!(custom_fields(best)["model"], "claude-mock");
        assert_eq!(best["sampleText"], "Hi there");
        assert!(!tried_text(&result).contains(TOKEN), "{result:#}");
        assert_eq!(complete_with(&mut sidecar, &best["settings"]), "Hi there");
    }
}

fn ollama_line(text: &str, done: bool) -> String {
    format!(
        "{}\n",
        json!({"model": "llama-mock:latest", "message": {"role": "assistant", "content": text}, "done": done})
    )
}

#[test]
fn an_ollama_server_is_detected_with_its_native_ndjson_api_first() {
    let mock = MockLlm::start(|r| match (r.method.as_str(), r.path.as_str()) {
        ("GET", "/api/tags") => MockResponse::json(
            200,
            r#"{"models":[{"name":"llama-mock:latest","model":"llama-mock:latest","size":1}]}"#,
        ),
        ("POST", "/api/chat") if r.json()["model"] == "llama-mock:latest" => MockResponse::new(200)
            .content_type("application/x-ndjson")
            .piece(ollama_line("Hey", false))
            .piece(ollama_line(" you", false))
            .piece(ollama_line("", true)),
        ("POST", "/api/chat") => MockResponse::json(404, r#"{"error":"model not found"}"#),
        ("POST", "/v1/chat/completions") if r.json()["model"] == "llama-mock:latest" => {
            MockResponse::sse(openai_sse(&["Hey", " you"]))
        }
        _ => not_found(),
    });
    let mut sidecar = Sidecar::spawn();
    let result = detect(&mut sidecar, json!({"url": mock.url("/")}));
    let candidates = result["candidates"].as_array().unwrap();
    assert_eq!(candidates.len(), 2, "{result:#}");
    let best = &candidates[0];
    assert_eq!(best["api"], "ollama-chat");
    assert_eq!(best["preset"], "ollama");
    assert_eq!(best["responseType"], "NDJSON");
    assert_eq!(
        best["settings"]["customEngineServer"],
        mock.url("/api/chat")
    );
    assert_eq!(
        best["settings"]["customEngineResponseFormat"],
        "$.message.content"
    );
    assert_eq!(candidates[1]["api"], "openai-chat");
    let probe = mock
        .requests()
        .into_iter()
        .find(|r| is_post(r, "/api/chat"))
        .unwrap();
    assert_eq!(probe.json()["options"]["num_predict"], 16);
    assert_eq!(complete_with(&mut sidecar, &best["settings"]), "Hey you");
}

#[test]
fn a_server_that_refuses_streaming_gets_non_streamed_json_settings() {
    let mock = MockLlm::start(|r| match (r.method.as_str(), r.path.as_str()) {
        ("GET", "/v1/models") => MockResponse::json(200, r#"{"data":[{"id":"plain"}]}"#),
        ("POST", "/v1/chat/completions") if stream_requested(r) => MockResponse::json(
            400,
            r#"{"error":{"message":"stream is not supported by this server"}}"#,
        ),
        ("POST", "/v1/chat/completions") => MockResponse::json(200, openai_message("Fine.")),
        _ => not_found(),
    });
    let mut sidecar = Sidecar::spawn();
    let result = detect(
        &mut sidecar,
        json!({"url": mock.url("/v1/chat/completions")}),
    );
    let best = &result["candidates"][0];
    assert_eq!(best["responseType"], "JSON", "{result:#}");
    assert_eq!(best["settings"]["customEngineResponseFormat"], MESSAGE_PATH);
    assert_eq!(custom_fields(best)["stream"], false);
    let refused = result["tried"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["status"] == 400)
        .expect("the refused streaming probe is listed");
    assert!(
        refused["outcome"]
            .as_str()
            .unwrap()
            .contains("stream is not supported"),
        "{refused}"
    );
    assert_eq!(complete_with(&mut sidecar, &best["settings"]), "Fine.");
}

#[test]
fn a_server_that_needs_a_model_from_its_list_gets_that_model() {
    let mock = MockLlm::start(|r| match (r.method.as_str(), r.path.as_str()) {
        ("GET", "/v1/models") => MockResponse::json(
            200,
            r#"{"data":[{"id":"text-embedding-small"},{"id":"only-this-model"},{"id":"other"}]}"#,
        ),
        ("POST", "/v1/chat/completions") if r.json()["model"] == "only-this-model" => {
            MockResponse::sse(openai_sse(&["Yes", "."]))
        }
        ("POST", "/v1/chat/completions") => {
            MockResponse::json(404, r#"{"error":{"message":"The model does not exist"}}"#)
        }
        _ => not_found(),
    });
    let mut sidecar = Sidecar::spawn();
    let result = detect(&mut sidecar, json!({"url": mock.url("/v1")}));
    let best = &result["candidates"][0];
    assert_eq!(
        custom_fields(best)["model"],
        "only-this-model",
        "{result:#}"
    );
    assert_eq!(
        best["models"],
        json!(["text-embedding-small", "only-this-model", "other"])
    );
    assert_eq!(complete_with(&mut sidecar, &best["settings"]), "Yes.");
}

#[test]
fn a_server_without_a_model_list_is_detected_by_trying_each_shape_within_the_budget() {
    let mock = MockLlm::start(|r| {
        if is_post(r, "/v1/chat/completions") {
            MockResponse::sse(openai_sse(&["No", " list"]))
        } else {
            not_found()
        }
    });
    let mut sidecar = Sidecar::spawn();
    let result = detect(&mut sidecar, json!({"url": mock.url("")}));
    let candidates = result["candidates"].as_array().unwrap();
    assert_eq!(candidates.len(), 1, "{result:#}");
    assert_eq!(candidates[0]["api"], "openai-chat");
    assert_eq!(custom_fields(&candidates[0]), json!({"stream": true}));
    let tried = result["tried"].as_array().unwrap();
    assert_eq!(
        tried[0]["request"],
        format!("GET {}", mock.url("/v1/models"))
    );
    assert_eq!(tried[0]["status"], 404);
    // Every request is listed, and there were no more than the default budget.
    let sent = mock.requests().len();
    assert_eq!(tried.len(), sent);
    assert!(sent <= 10, "{sent} requests");
    assert!(
        tried
            .iter()
            .any(|t| t["request"].as_str().unwrap().contains("/v1/messages"))
    );
    assert!(
        tried
            .iter()
            .any(|t| t["request"].as_str().unwrap().contains("/api/chat"))
    );
    assert_eq!(
        complete_with(&mut sidecar, &candidates[0]["settings"]),
        "No list"
    );
}

#[test]
fn the_text_path_is_found_from_the_events_when_the_shape_puts_it_elsewhere() {
    let mock = MockLlm::start(|r| {
        if is_post(r, "/v1/chat/completions") {
            let events: String = ["Odd", " path"]
                .iter()
                .map(|t| sse_event(&json!({"id": "x", "output": {"text": t}}).to_string()))
                .collect();
            MockResponse::sse(events + &sse_event("[DONE]"))
        } else {
            not_found()
        }
    });
    let mut sidecar = Sidecar::spawn();
    let result = detect(
        &mut sidecar,
        json!({"url": mock.url("/v1/chat/completions")}),
    );
    let best = &result["candidates"][0];
    assert_eq!(
        best["settings"]["customEngineResponseFormat"], "$.output.text",
        "{result:#}"
    );
    assert_eq!(best["sampleText"], "Odd path");
    assert!(
        tried_text(&result).contains("no_match") || tried_text(&result).contains("matched nothing"),
        "{result:#}"
    );
    assert_eq!(complete_with(&mut sidecar, &best["settings"]), "Odd path");
}

#[test]
fn max_requests_bounds_the_detection_and_nothing_found_is_a_result() {
    let mock = MockLlm::always(not_found());
    let mut sidecar = Sidecar::spawn();
    let result = detect(&mut sidecar, json!({"url": mock.url(""), "maxRequests": 2}));
    assert_eq!(result["candidates"], json!([]));
    assert_eq!(mock.requests().len(), 2);
    let tried = result["tried"].as_array().unwrap();
    assert!(
        tried.iter().any(|t| t["outcome"]
            .as_str()
            .unwrap()
            .contains("limit of 2 requests")),
        "{result:#}"
    );
}

#[test]
fn a_redirect_to_another_host_is_not_followed_and_the_token_stays_home() {
    let other = MockLlm::always(MockResponse::json(200, r#"{"data":[{"id":"stolen"}]}"#));
    let target = other.url("/v1/models");
    let mock = MockLlm::start(move |r| match r.path.as_str() {
        "/v1/models" => MockResponse::new(307).header("Location", &target),
        _ => not_found(),
    });
    let mut sidecar = Sidecar::spawn();
    let result = detect(&mut sidecar, json!({"url": mock.url(""), "token": TOKEN}));
    assert_eq!(other.requests().len(), 0, "{result:#}");
    assert_eq!(result["tried"][0]["status"], 307);
    assert!(!tried_text(&result).contains(TOKEN));
}

#[test]
fn cancel_ends_a_detection() {
    let mock = MockLlm::always(MockResponse::new(200).then_hang());
    let mut sidecar = Sidecar::spawn();
    let id = sidecar.request("llm/detect", json!({"url": mock.url("")}));
    mock.wait_for_requests(1, WAIT);
    sidecar.cancel(&id);
    sidecar.wait_response(&id, WAIT).expect_code(CANCELLED);
    assert_eq!(mock.requests().len(), 1);
}

#[test]
fn detect_params_are_checked() {
    let mut sidecar = Sidecar::spawn();
    let id = sidecar.request("llm/detect", json!({"token": 5, "maxRequests": 0}));
    let error = sidecar
        .wait_response(&id, WAIT)
        .expect_code(INVALID_PARAMS)
        .clone();
    let fields: Vec<(String, String)> = problems(&error["data"]);
    let names: Vec<&str> = fields.iter().map(|(f, _)| f.as_str()).collect();
    assert!(
        names.contains(&"url") && names.contains(&"token") && names.contains(&"maxRequests"),
        "{error:#}"
    );
}

#[test]
fn models_lists_the_servers_models_for_settings() {
    let openai = openai_server();
    let ollama = MockLlm::start(|r| match r.path.as_str() {
        "/api/tags" => {
            MockResponse::json(200, r#"{"models":[{"name":"a:latest"},{"name":"b:7b"}]}"#)
        }
        _ => not_found(),
    });
    let none = MockLlm::always(not_found());
    let mut sidecar = Sidecar::spawn();
    let ask = |sidecar: &mut Sidecar, settings: Value| {
        let id = sidecar.request("llm/models", json!({"settings": settings}));
        sidecar.wait_response(&id, WAIT)
    };
    let reply = ask(
        &mut sidecar,
        json!({"customEngineServer": openai.url("/v1/chat/completions"), "customEngineToken": TOKEN}),
    );
    assert_eq!(reply.result()["models"], json!(["gpt-mock"]));
    assert_matches_methods_schema("modelsResult", reply.result());
    let reply = ask(
        &mut sidecar,
        json!({"customEngineServer": ollama.url("/api/chat")}),
    );
    assert_eq!(reply.result()["models"], json!(["a:latest", "b:7b"]));
    assert_eq!(ollama.requests()[0].path, "/api/tags");
    let reply = ask(
        &mut sidecar,
        json!({"customEngineServer": none.url("/v1/chat/completions")}),
    );
    let error = reply.expect_code(REQUEST_FAILED);
    assert_eq!(error["data"]["kind"], "no_model_list", "{error:#}");
}

#[test]
fn the_detect_command_prints_the_best_settings_without_the_token() {
    let mock = openai_server();
    let output = Command::new(env!("CARGO_BIN_EXE_llm-sidecar"))
        .args(["detect", &mock.url("")])
        .env("LLM_SIDECAR_TOKEN", TOKEN)
        .stdin(Stdio::null())
        .output()
        .expect("run llm-sidecar detect");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    let settings: Value = serde_json::from_str(&stdout).expect("stdout is the settings JSON");
    assert_eq!(
        settings["customEngineServer"],
        mock.url("/v1/chat/completions")
    );
    assert_eq!(settings["customEngineResponseFormat"], DELTA_PATH);
    assert!(settings.get("customEngineToken").is_none());
    assert!(
        stderr.contains("GET ") && stderr.contains("/v1/models"),
        "{stderr}"
    );
    assert!(!stdout.contains(TOKEN) && !stderr.contains(TOKEN));
}

#[test]
fn a_server_that_ignores_stream_true_gets_the_json_it_really_sends() {
    let mock = MockLlm::start(|r| match (r.method.as_str(), r.path.as_str()) {
        ("POST", "/v1/chat/completions") => MockResponse::json(200, openai_message("Plain answer")),
        _ => not_found(),
    });
    let mut sidecar = Sidecar::spawn();
    let result = detect(
        &mut sidecar,
        json!({"url": mock.url("/v1/chat/completions")}),
    );
    let best = &result["candidates"][0];
    assert_eq!(best["responseType"], "JSON", "{result:#}");
    assert_eq!(best["settings"]["customEngineResponseType"], "JSON");
    assert_eq!(best["settings"]["customEngineResponseFormat"], MESSAGE_PATH);
    assert_eq!(best["sampleText"], "Plain answer");
    assert_eq!(
        complete_with(&mut sidecar, &best["settings"]),
        "Plain answer"
    );
}

#[test]
fn each_probe_is_sent_once_even_when_the_server_closes_without_answering() {
    // GETs get a 404; every POST is read whole, then the connection is closed unanswered.
    let server = common::raw_server::RawServer::start(|mut conn| async move {
        while let Some(request) = conn.read_request().await {
            if request.method == "POST" {
                conn.close().await;
                return;
            }
            let body = br#"{"error":{"message":"not found"}}"#;
            let head = [("Content-Type", "application/json")];
            if !conn.respond(404, &head, body).await {
                return;
            }
        }
    });
    let mut sidecar = Sidecar::spawn();
    let result = detect(&mut sidecar, json!({"url": server.url("")}));
    assert_eq!(result["candidates"], json!([]), "{result:#}");
    let probes = post_probes(&result);
    let posts = server
        .requests()
        .iter()
        .filter(|r| r.method == "POST")
        .count();
    assert!(probes > 0, "{result:#}");
    assert_eq!(
        posts, probes,
        "POSTs the server read vs probes listed: {result:#}"
    );
}

#[test]
fn a_probe_after_a_streamed_answer_is_not_sent_on_the_connection_the_server_dropped() {
    // As llama.cpp's server does: the connection stays open after a streamed (chunked) answer, but
    // the next request sent on it is read and the connection closed unanswered. Ollama's list and
    // `/api/chat` answer, so an `ollama-chat` probe follows the streamed `openai-chat` one.
    let server = common::raw_server::RawServer::start(|mut conn| async move {
        let json = [("Content-Type", "application/json")];
        while let Some(request) = conn.read_request().await {
            let path = request.target.as_str();
            let answered = if path == "/v1/models" {
                conn.respond(200, &json, br#"{"object":"list","data":[{"id":"m"}]}"#)
                    .await
            } else if path == "/api/tags" {
                conn.respond(200, &json, br#"{"models":[{"name":"m"}]}"#)
                    .await
            } else if path == "/v1/chat/completions" {
                let sse = openai_sse(&["Hi", " there"]);
                let head = response_head(200, &[("Content-Type", "text/event-stream")], None);
                let sent = conn.write(&head).await
                    && conn.write(&http_chunk(sse.as_bytes())).await
                    && conn.write(b"0\r\n\r\n").await;
                if sent && conn.read_request().await.is_some() {
                    // The kept-alive connection is gone: the request on it is not answered.
                    conn.close().await;
                }
                return;
            } else if path == "/api/chat" {
                let ndjson = concat!(
                    r#"{"model":"m","message":{"role":"assistant","content":"Hello"},"done":false}"#,
                    "\n",
                    r#"{"model":"m","message":{"role":"assistant","content":""},"done":true}"#,
                    "\n"
                );
                conn.respond(
                    200,
                    &[("Content-Type", "application/x-ndjson")],
                    ndjson.as_bytes(),
                )
                .await
            } else {
                conn.respond(404, &json, br#"{"error":{"message":"not found"}}"#)
                    .await
            };
            if !answered {
                return;
            }
        }
    });
    let mut sidecar = Sidecar::spawn();
    let result = detect(&mut sidecar, json!({"url": server.url("")}));
    let apis: Vec<&Value> = result["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["api"])
        .collect();
    assert!(apis.contains(&&json!("openai-chat")), "{result:#}");
    assert!(apis.contains(&&json!("ollama-chat")), "{result:#}");
    // Each probe was still sent once.
    let probes = post_probes(&result);
    let posts = server
        .requests()
        .iter()
        .filter(|r| r.method == "POST")
        .count();
    assert_eq!(posts, probes, "{result:#}");
}

/// OpenAI-style SSE whose only text is whitespace, cut at the token cap.
fn blank_sse() -> String {
    let events = [
        json!({"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}),
        json!({"choices":[{"index":0,"delta":{"content":"\n\n "}}]}),
        json!({"choices":[{"index":0,"delta":{},"finish_reason":"length"}]}),
    ];
    events
        .iter()
        .map(|e| sse_event(&e.to_string()))
        .collect::<String>()
        + &sse_event("[DONE]")
}

#[test]
fn a_blank_first_answer_proves_the_shape_and_is_asked_again_deterministically_with_more_tokens() {
    // A small model that spends its first 16 tokens on whitespace: blank text at the right path.
    let mock = MockLlm::start(|r| {
        if !is_post(r, "/v1/chat/completions") {
            return not_found();
        }
        let max_tokens = r.json.as_ref().and_then(|j| j["max_tokens"].as_u64());
        if max_tokens.is_some_and(|n| n <= 16) {
            MockResponse::sse(blank_sse())
        } else {
            MockResponse::sse(openai_sse(&["Hello", "!"]))
        }
    });
    let mut sidecar = Sidecar::spawn();
    let result = detect(
        &mut sidecar,
        json!({"url": mock.url("/v1/chat/completions")}),
    );
    let best = &result["candidates"][0];
    assert_eq!(best["api"], "openai-chat", "{result:#}");
    assert_eq!(best["sampleText"], "Hello!", "{result:#}");
    let posts: Vec<Value> = mock
        .requests()
        .iter()
        .filter(|r| is_post(r, "/v1/chat/completions"))
        .map(|r| r.json.clone().unwrap())
        .collect();
    assert_eq!(posts.len(), 2, "asked once more: {result:#}");
    assert_eq!(posts[0]["max_tokens"], 16);
    assert!(posts[1]["max_tokens"].as_u64().unwrap() > 16);
    for post in &posts {
        assert_eq!(
            post["temperature"], 0,
            "a deterministic answer is asked for: {post}"
        );
    }
    // The settings handed back carry no probe-only field.
    assert!(custom_fields(best).get("temperature").is_none(), "{best}");
    assert_eq!(complete_with(&mut sidecar, &best["settings"]), "Hello!");
}

#[test]
fn a_server_that_only_answers_blank_text_is_still_detected() {
    let mock = MockLlm::start(|r| {
        if is_post(r, "/api/chat") {
            MockResponse::new(200)
                .content_type("application/x-ndjson")
                .piece(ollama_line("  ", false) + &ollama_line("", true))
        } else {
            not_found()
        }
    });
    let mut sidecar = Sidecar::spawn();
    let result = detect(&mut sidecar, json!({"url": mock.url("/api/chat")}));
    let best = &result["candidates"][0];
    assert_eq!(best["api"], "ollama-chat", "{result:#}");
    assert_eq!(best["responseType"], "NDJSON", "{result:#}");
    let posts: Vec<Value> = mock
        .requests()
        .iter()
        .filter(|r| is_post(r, "/api/chat"))
        .map(|r| r.json.clone().unwrap())
        .collect();
    assert_eq!(posts.len(), 2, "one more try with a larger cap: {result:#}");
    assert_eq!(posts[0]["options"]["temperature"], 0, "{:?}", posts[0]);
    assert!(
        tried_text(&result).contains("blank text"),
        "the blank answers are explained: {result:#}"
    );
}

#[test]
fn a_model_list_that_comes_late_times_out_at_the_first_byte_limit() {
    // Each GET is read and answered only after 5 s; `answered` counts the answers written.
    let answered = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let written = answered.clone();
    let server = common::raw_server::RawServer::start(move |mut conn| {
        let written = written.clone();
        async move {
            while conn.read_request().await.is_some() {
                tokio::time::sleep(std::time::Duration::from_secs(5)).await;
                let body = br#"{"data":[{"id":"late"}]}"#;
                if !conn
                    .respond(200, &[("Content-Type", "application/json")], body)
                    .await
                {
                    return;
                }
                written.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        }
    });
    let mut sidecar = Sidecar::spawn();
    let settings = json!({
        "customEngineServer": server.url("/v1/chat/completions"),
        "timeouts": {"firstByteMs": 400},
    });
    let id = sidecar.request("llm/models", json!({"settings": settings}));
    let reply = sidecar.wait_response(&id, WAIT);
    assert_eq!(
        answered.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "the sidecar must give up before the server answers: {}",
        reply.response
    );
    let first = &reply.error()["data"]["tried"][0];
    assert!(
        first["outcome"]
            .as_str()
            .is_some_and(|o| o.contains("(timeouts.firstByteMs)")),
        "{}",
        reply.response
    );
}

/// How many POST probes `llm/detect` lists in its `tried` entries.
fn post_probes(result: &Value) -> usize {
    result["tried"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["request"].as_str().unwrap().starts_with("POST"))
        .count()
}
