//! Code completion's lifecycle through the real binary, against mock servers on 127.0.0.1: a
//! newer request for a document supersedes the running one (answered -32800, its connection
//! closed), `$/cancelRequest`, documents that run side by side; which settings a completion
//! uses (`customLlms` `Completion`/`Default`, the configured `completion`); errors with guidance
//! and the server's own words; `trace`; and the CLI's `complete --fim`. Also: a burst of requests
//! for one document, a cancel that leaves the document usable, and settings problems (a model
//! name as template, a custom template's stops, a broken configured `completion`).

mod common;

use std::process::Command;

use common::*;
use serde_json::{Value, json};

fn answer(text: &str) -> MockResponse {
    MockResponse::json(200, completion_answer(text))
}

/// Response headers, then nothing until `gate` opens (never, if it is not opened).
fn held(gate: &Gate, text: &str) -> MockResponse {
    MockResponse::new(200)
        .content_type("application/json")
        .piece_after(Before::Gate(gate.clone()), completion_answer(text))
}

/// Sends `llm/inlineCompletion` and waits for its answer.
fn inline(sidecar: &mut Sidecar, params: Value) -> Reply {
    let id = sidecar.request("llm/inlineCompletion", params);
    sidecar.wait_response(&id, WAIT)
}

fn suggestion(reply: &Reply) -> Option<String> {
    reply.result()["items"]
        .as_array()
        .expect("items")
        .first()
        .map(|i| i["insertText"].as_str().expect("insertText").to_owned())
}

fn fim_settings(mock: &MockLlm) -> Value {
    json!({"customEngineServer": mock.url("/v1/completions"), "fim": {"template": "qwen"}, "retry": {"maxRetries": 0}})
}

/// The prompt the mock received in request `index`.
fn prompt_of(request: &RecordedRequest) -> String {
    request.json()["prompt"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn initialized(options: Value) -> Sidecar {
    let mut sidecar = Sidecar::spawn();
    let id = sidecar.request(
        "initialize",
        json!({"processId": null, "capabilities": {}, "initializationOptions": options}),
    );
    let result = sidecar.wait_response(&id, WAIT).result().clone();
    assert_eq!(result["configuration"]["problems"], json!([]), "{result}");
    sidecar.notify("initialized", json!({}));
    sidecar
}

#[test]
fn a_newer_request_for_a_document_supersedes_the_running_one() {
    let never = Gate::new();
    let mock = MockLlm::start(move |request| {
        if prompt_of(request).contains("slow") {
            held(&never, "never")
        } else {
            answer("fast()")
        }
    });
    let mut sidecar = Sidecar::spawn();
    let settings = fim_settings(&mock);
    let first = sidecar.request(
        "llm/inlineCompletion",
        json!({"prefix": "slow", "suffix": "", "path": "/doc.rs", "settings": settings}),
    );
    mock.wait_for_requests(1, WAIT);
    let second = sidecar.request(
        "llm/inlineCompletion",
        json!({"prefix": "quick", "suffix": "", "path": "/doc.rs", "settings": settings}),
    );
    let superseded = sidecar.wait_response(&first, WAIT);
    let data = superseded.expect_error(CANCELLED, "cancelled");
    assert_eq!(data["reason"], "superseded");
    mock.wait_client_closed(0, WAIT);
    let reply = sidecar.wait_response(&second, WAIT);
    assert_eq!(suggestion(&reply).as_deref(), Some("fast()"));
    let requests = mock.requests();
    assert_eq!(requests.len(), 2);
    assert!(prompt_of(&requests[1]).contains("quick"));
    assert_still_serving(&mut sidecar);
}

#[test]
fn different_documents_run_side_by_side_and_cancel_request_works() {
    let gate = Gate::new();
    let mock = MockLlm::start({
        let gate = gate.clone();
        move |_| held(&gate, "x")
    });
    let mut sidecar = Sidecar::spawn();
    let settings = fim_settings(&mock);
    let a = sidecar.request(
        "llm/inlineCompletion",
        json!({"prefix": "a", "suffix": "", "path": "/a.rs", "settings": settings}),
    );
    let b = sidecar.request(
        "llm/inlineCompletion",
        json!({"prefix": "b", "suffix": "", "path": "/b.rs", "settings": settings}),
    );
    let c = sidecar.request(
        "llm/inlineCompletion",
        json!({"prefix": "c", "suffix": "", "path": "/c.rs", "settings": settings}),
    );
    // All three are with the server at once: one request per document, not one in all.
    mock.wait_for_requests(3, WAIT);
    sidecar.cancel(&c);
    let reply = sidecar.wait_response(&c, WAIT);
    let data = reply.expect_error(CANCELLED, "cancelled");
    assert!(
        data.get("reason").is_none(),
        "cancelled, not superseded: {data}"
    );
    let c_index = mock
        .requests()
        .iter()
        .position(|r| prompt_of(r).contains(">c<"))
        .unwrap();
    mock.wait_client_closed(c_index, WAIT);
    gate.open();
    for id in [a, b] {
        let reply = sidecar.wait_response(&id, WAIT);
        assert_eq!(suggestion(&reply).as_deref(), Some("x"));
    }
}

#[test]
fn custom_llms_completion_and_default_entries_are_used_without_a_selection() {
    let chat = MockLlm::always(MockResponse::sse(openai_sse(&["chat answer"])));
    let coder = MockLlm::always(answer("coded()"));
    let mut sidecar = initialized(json!({"customLlms": [
        {"name": "Planner", "url": chat.url("/plan/chat/completions"), "auth": {"type": "Bearer", "token": ""},
         "requestFormat": "", "responseFormat": "", "modelType": "Plan"},
        {"name": "Chat", "url": chat.url("/v1/chat/completions"), "auth": {"type": "Bearer", "token": ""},
         "requestFormat": "{\"customFields\": {\"model\": \"big\", \"stream\": true}}", "responseFormat": "", "modelType": "Default"},
        {"name": "Coder", "url": coder.url("/v1/completions"), "auth": {"type": "Bearer", "token": ""},
         "requestFormat": "{\"customFields\": {\"model\": \"small\"}}", "responseFormat": "$.choices[0].text",
         "modelType": "Completion", "fim": {"template": "starcoder", "maxTokens": 40}}
    ]}));
    let id = sidecar.request(
        "llm/inlineCompletion",
        json!({"prefix": "x = ", "suffix": ""}),
    );
    let reply = sidecar.wait_response(&id, WAIT);
    assert_eq!(suggestion(&reply).as_deref(), Some("coded()"));
    let request = coder.single_request();
    assert_eq!(request.json()["model"], "small");
    assert_eq!(request.json()["max_tokens"], 40);
    assert_eq!(
        request.json()["prompt"],
        "<fim_prefix>x = <fim_suffix><fim_middle>"
    );

    // Chat without a selection: the Default entry.
    let reply = sidecar.complete(json!({"messages": user("hi")}));
    assert_eq!(reply.result()["text"], "chat answer");
    let request = chat.single_request();
    assert_eq!(request.path, "/v1/chat/completions");
    assert_eq!(request.json()["model"], "big");

    // A request's own selection wins: a chat entry fills a hole in chat mode.
    let id = sidecar.request(
        "llm/inlineCompletion",
        json!({"prefix": "x = ", "suffix": "", "llm": "Planner"}),
    );
    sidecar.wait_response(&id, WAIT).result();
    let requests = chat.wait_for_requests(2, WAIT);
    assert_eq!(requests[1].path, "/plan/chat/completions");
    assert!(
        requests[1].json()["messages"][1]["content"]
            .as_str()
            .unwrap()
            .contains("x = {{FILL_HERE}}")
    );
}

#[test]
fn the_configured_completion_settings_are_used_in_each_form() {
    let mock = MockLlm::always(answer("ok()"));
    // A settings object (here a preset) in initializationOptions.completion.
    let mut sidecar = initialized(json!({
        "completion": {"preset": "llama.cpp-infill", "customEngineServer": mock.url("/infill")},
        "profiles": {"local": {"customEngineServer": mock.url("/profile/v1/completions"), "fim": {"template": "codellama"}}},
    }));
    let ask = |sidecar: &mut Sidecar, prefix: &str| {
        let id = sidecar.request(
            "llm/inlineCompletion",
            json!({"prefix": prefix, "suffix": ""}),
        );
        sidecar.wait_response(&id, WAIT)
    };
    assert_eq!(suggestion(&ask(&mut sidecar, "a")).as_deref(), Some("ok()"));
    assert_eq!(mock.wait_for_requests(1, WAIT)[0].path, "/infill");

    // {"profile": name} by workspace/didChangeConfiguration.
    sidecar.notify(
        "workspace/didChangeConfiguration",
        json!({"settings": {"completion": {"profile": "local"}}}),
    );
    assert_eq!(suggestion(&ask(&mut sidecar, "b")).as_deref(), Some("ok()"));
    let request = &mock.wait_for_requests(2, WAIT)[1];
    assert_eq!(request.path, "/profile/v1/completions");
    assert_eq!(request.json()["prompt"], "<PRE> b <SUF> <MID>");

    // {"llm": name}, with a customLlms entry that is not typed Completion.
    sidecar.notify(
        "workspace/didChangeConfiguration",
        json!({"settings": {"customLlms": [{"name": "Local", "url": mock.url("/llm/api/generate"),
            "auth": {"type": "Bearer", "token": ""}, "requestFormat": "", "responseFormat": ""}],
            "completion": {"llm": "Local"}}}),
    );
    assert_eq!(suggestion(&ask(&mut sidecar, "c")).as_deref(), Some("ok()"));
    assert_eq!(mock.wait_for_requests(3, WAIT)[2].path, "/llm/api/generate");
}

#[test]
fn without_completion_settings_the_error_says_how_to_configure_them() {
    let mut sidecar = Sidecar::spawn();
    let id = sidecar.request("llm/inlineCompletion", json!({"prefix": "x", "suffix": ""}));
    let reply = sidecar.wait_response(&id, WAIT);
    let data = reply.expect_error(INVALID_PARAMS, "invalid_settings");
    let message = reply.error()["message"].as_str().unwrap();
    for hint in [
        "modelType",
        "Completion",
        "completion",
        "initializationOptions",
    ] {
        assert!(message.contains(hint), "{hint} in {message}");
    }
    assert_eq!(data["problems"][0]["field"], "settings");

    // Bad input: every problem at once, each named.
    let id = sidecar.request(
        "llm/inlineCompletion",
        json!({"suffix": 3, "settings": {"customEngineServer": "http://127.0.0.1:9/v1/completions", "fim": {"mode": "prompt"}}}),
    );
    let reply = sidecar.wait_response(&id, WAIT);
    let data = reply.expect_error(INVALID_PARAMS, "invalid_params");
    let fields: Vec<&str> = data["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["prefix", "suffix"]);
    let id = sidecar.request(
        "llm/inlineCompletion",
        json!({"prefix": "", "settings": {"customEngineServer": "http://127.0.0.1:9/v1/completions", "fim": {"mode": "prompt"}}}),
    );
    let reply = sidecar.wait_response(&id, WAIT);
    let data = reply.expect_error(INVALID_PARAMS, "invalid_settings");
    assert_eq!(data["problems"][0]["field"], "fim.template");
    assert_still_serving(&mut sidecar);
}

#[test]
fn server_errors_come_back_structured_with_the_servers_words() {
    let mock = MockLlm::always(MockResponse::json(
        501,
        json!({"error": {"code": 501, "message": "Infill is not supported by this model: prefix token is missing.", "type": "not_supported_error"}}).to_string(),
    ));
    let mut sidecar = Sidecar::spawn();
    let id = sidecar.request(
        "llm/inlineCompletion",
        json!({"prefix": "x", "suffix": "", "settings": {"preset": "llama.cpp-infill", "customEngineServer": mock.url("/infill"), "retry": {"maxRetries": 0}}}),
    );
    let reply = sidecar.wait_response(&id, WAIT);
    let data = reply.expect_error(REQUEST_FAILED, "http_status");
    assert_eq!(data["status"], 501);
    let message = reply.error()["message"].as_str().unwrap();
    assert!(
        message.contains("Infill is not supported by this model"),
        "{message}"
    );
}

#[test]
fn trace_shows_the_completion_exchange() {
    let mock = MockLlm::always(answer("traced()"));
    let mut sidecar = Sidecar::spawn();
    let id = sidecar.request(
        "llm/inlineCompletion",
        json!({"prefix": "t", "suffix": "", "trace": true, "streamId": "fim-1",
               "settings": {"customEngineServer": mock.url("/v1/completions"), "customEngineToken": "sk-secret-trace-123456", "fim": {"template": "qwen"}}}),
    );
    let reply = sidecar.wait_response(&id, WAIT);
    assert_eq!(suggestion(&reply).as_deref(), Some("traced()"));
    let traces: Vec<&Value> = reply
        .notifications
        .iter()
        .filter(|n| n["method"] == "llm/trace")
        .collect();
    assert!(traces.len() >= 3, "{traces:?}");
    assert!(traces.iter().all(|t| t["params"]["streamId"] == "fim-1"));
    let request = &traces[0]["params"]["request"];
    assert!(
        request["body"].to_string().contains("<|fim_prefix|>t"),
        "{request}"
    );
    let all = serde_json::to_string(&traces).unwrap();
    assert!(!all.contains("sk-secret-trace-123456"), "the token leaked");
    assert!(all.contains("traced()"));
}

#[test]
fn cli_complete_fim_prints_the_suggestion() {
    let mock = MockLlm::always(answer("b + c\n}\nmore"));
    let dir = std::env::temp_dir().join(format!("llm-sidecar-fim-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let settings = dir.join("s.json");
    std::fs::write(
        &settings,
        json!({"customEngineServer": mock.url("/v1/completions"), "fim": {"template": "qwen"}})
            .to_string(),
    )
    .unwrap();
    let prefix = dir.join("prefix.txt");
    let suffix = dir.join("suffix.txt");
    std::fs::write(&prefix, "fn f() {\n    a + ").unwrap();
    std::fs::write(&suffix, "\n}\n").unwrap();
    let source = dir.join("code.rs");
    std::fs::write(&source, "fn f() {\n    a + \n}\n").unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_llm-sidecar"))
            .args(args)
            .env_remove("LLM_SIDECAR_TOKEN")
            .output()
            .expect("run llm-sidecar");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let s = settings.to_str().unwrap();
    let (code, stdout, stderr) = run(&[
        "complete",
        "--fim",
        "--settings",
        s,
        "--prefix-file",
        prefix.to_str().unwrap(),
        "--suffix-file",
        suffix.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, "b + c\n");
    let at = format!("{}:2:9", source.display());
    let (code, stdout, stderr) = run(&["complete", "--fim", "--settings", s, "--at", &at]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, "b + c\n");
    let requests = mock.wait_for_requests(2, WAIT);
    for request in &requests {
        assert_eq!(
            request.json()["prompt"],
            "<|fim_prefix|>fn f() {\n    a + <|fim_suffix|>\n}\n<|fim_middle|>"
        );
    }
    let (code, _, stderr) = run(&[
        "complete",
        "--fim",
        "--settings",
        s,
        "--at",
        &format!("{}:9:1", source.display()),
    ]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("lines"), "{stderr}");
    std::fs::remove_dir_all(&dir).ok();
}

/// Fifty requests typed in a burst for one document: every superseded one is answered -32800
/// once, the last one gets the suggestion, and the server sees far fewer than fifty requests.
#[test]
fn a_burst_of_requests_for_one_document_ends_with_the_last_answered() {
    let mock = MockLlm::always(answer("done()"));
    let mut sidecar = Sidecar::spawn();
    let settings =
        json!({"customEngineServer": mock.url("/v1/completions"), "fim": {"template": "qwen"}});
    let ids: Vec<Value> = (0..50)
        .map(|i| {
            sidecar.request(
                "llm/inlineCompletion",
                json!({"prefix": format!("let v{i} = "), "suffix": "\n", "path": "/burst.rs", "settings": settings}),
            )
        })
        .collect();
    let mut answered = 0;
    for (i, id) in ids.iter().enumerate() {
        let reply = sidecar.wait_response(id, WAIT);
        if i == ids.len() - 1 {
            assert_eq!(suggestion(&reply).as_deref(), Some("done()"));
        } else if reply.response.get("error").is_some() {
            reply.expect_code(CANCELLED);
        } else {
            answered += 1;
        }
    }
    // Each id answered exactly once.
    for id in &ids {
        let count = sidecar
            .transcript()
            .iter()
            .filter(|m| m.get("id") == Some(id) && m.get("method").is_none())
            .count();
        assert_eq!(count, 1, "{id}");
    }
    let requests = mock.requests().len();
    assert!(
        requests <= answered + 10,
        "{requests} requests for 50 keystrokes"
    );
    eprintln!("burst: {requests} HTTP requests, {answered} earlier requests answered in time");
}

/// A cancelled request leaves neither its document's slot nor the cache behind: the next
/// request for the same document goes to the server and is answered.
#[test]
fn cancelling_leaves_the_document_usable() {
    let gate = Gate::new();
    let mock = MockLlm::start({
        let gate = gate.clone();
        move |request| {
            if request.json()["prompt"].as_str().unwrap().contains("slow") {
                MockResponse::new(200)
                    .content_type("application/json")
                    .piece_after(Before::Gate(gate.clone()), completion_answer("late()"))
            } else {
                answer("now()")
            }
        }
    });
    let mut sidecar = Sidecar::spawn();
    let settings =
        json!({"customEngineServer": mock.url("/v1/completions"), "fim": {"template": "qwen"}});
    let first = sidecar.request(
        "llm/inlineCompletion",
        json!({"prefix": "slow ", "suffix": "", "path": "/c.rs", "settings": settings}),
    );
    mock.wait_for_requests(1, WAIT);
    sidecar.cancel(&first);
    sidecar.wait_response(&first, WAIT).expect_code(CANCELLED);
    mock.wait_client_closed(0, WAIT);
    gate.open();
    // The same position again: not a cached answer, a fresh request.
    let again = inline(
        &mut sidecar,
        json!({"prefix": "slow ", "suffix": "", "path": "/c.rs", "settings": settings}),
    );
    assert_eq!(again.result()["cached"], json!(false));
    assert_eq!(suggestion(&again).as_deref(), Some("late()"));
    let next = inline(
        &mut sidecar,
        json!({"prefix": "fast ", "suffix": "", "path": "/c.rs", "settings": settings}),
    );
    assert_eq!(suggestion(&next).as_deref(), Some("now()"));
    assert_eq!(mock.requests().len(), 3);
}

/// Errors keep the server's own words: a 4xx with its message, a 5xx, and a body that is not
/// what its content type says; the sidecar keeps serving.
#[test]
fn server_failures_are_errors_with_the_servers_words() {
    let cases = [
        (
            MockResponse::json(
                400,
                json!({"error": {"message": "prompt is too long for model qwen", "type": "invalid_request_error"}}).to_string(),
            ),
            "prompt is too long for model qwen",
        ),
        (
            MockResponse::json(503, json!({"error": "model is loading"}).to_string()),
            "model is loading",
        ),
    ];
    let mut sidecar = Sidecar::spawn();
    for (response, words) in cases {
        let mock = MockLlm::always(response);
        let reply = inline(
            &mut sidecar,
            json!({"prefix": "x = ", "suffix": "\n",
                   "settings": {"customEngineServer": mock.url("/v1/completions"), "fim": {"template": "qwen"},
                                "retry": {"maxRetries": 0}}}),
        );
        let message = reply.error()["message"].as_str().unwrap().to_owned();
        assert!(message.contains(words), "{message}");
    }
    // Labelled as an event stream, sent as one JSON body.
    let mock = MockLlm::always(
        MockResponse::new(200)
            .content_type("text/event-stream")
            .piece(completion_answer("mislabelled()")),
    );
    let reply = inline(
        &mut sidecar,
        json!({"prefix": "x = ", "suffix": "\n",
               "settings": {"customEngineServer": mock.url("/v1/completions"), "fim": {"template": "qwen"}}}),
    );
    assert_eq!(suggestion(&reply).as_deref(), Some("mislabelled()"));
    assert_still_serving(&mut sidecar);
}

/// A model's name given as `fim.template` (what users write first) is a settings problem that
/// names the template of the model's family; a typo gets the nearest name.
#[test]
fn a_model_name_as_template_names_the_right_template() {
    let mut sidecar = Sidecar::spawn();
    for (given, hint) in [
        ("qwen2.5-coder:1.5b-base", "use `qwen`"),
        ("deepseek-coder-v2", "use `deepseek`"),
        ("codeqwen1.5", "use `starcoder`"),
        ("starcode", "did you mean `starcoder`?"),
    ] {
        let reply = inline(
            &mut sidecar,
            json!({"prefix": "x", "settings": {"customEngineServer": "http://127.0.0.1:9/v1/completions",
                                                "fim": {"template": given}}}),
        );
        let data = reply.expect_error(INVALID_PARAMS, "invalid_settings");
        let message = data["problems"][0]["message"].as_str().unwrap();
        assert_eq!(data["problems"][0]["field"], "fim.template");
        assert!(message.contains(hint), "{given}: {message}");
    }
}

/// A broken configured `completion` is reported under `completion.…` when a request uses it,
/// so nobody looks for an `llm` in a request that has none.
#[test]
fn a_broken_configured_completion_is_named_as_such() {
    let mut sidecar = Sidecar::spawn();
    let id = sidecar.request(
        "initialize",
        json!({"processId": null, "capabilities": {}, "initializationOptions": {
            "customLlms": [{"name": "Local", "url": "http://127.0.0.1:9/v1/completions",
                            "auth": {"type": "Bearer", "token": ""}, "requestFormat": "", "responseFormat": ""}],
            "completion": {"llm": "Locl"}}}),
    );
    let result = sidecar.wait_response(&id, WAIT).result().clone();
    assert_eq!(
        result["configuration"]["problems"][0]["field"],
        "completion.llm"
    );
    sidecar.notify("initialized", json!({}));
    let reply = inline(&mut sidecar, json!({"prefix": "x"}));
    let data = reply.expect_error(INVALID_PARAMS, "invalid_settings");
    assert_eq!(data["problems"][0]["field"], "completion.llm", "{data}");
    let message = data["problems"][0]["message"].as_str().unwrap();
    assert!(message.contains("Local"), "{message}");
}

/// A custom template's `stop` is checked like `fim.stop`: an empty stop string (which would
/// blank every answer) or a non-string is a settings problem, not a silent empty list.
#[test]
fn a_custom_templates_stop_list_is_checked() {
    let mock = MockLlm::always(answer("x + 1"));
    let mut sidecar = Sidecar::spawn();
    for stop in [json!([""]), json!(["<END>", 5]), json!("")] {
        let reply = inline(
            &mut sidecar,
            json!({"prefix": "y = ", "suffix": "\n",
                   "settings": {"customEngineServer": mock.url("/v1/completions"),
                                "fim": {"template": {"prefix": "<A>", "suffix": "<B>", "middle": "<C>", "stop": stop}}}}),
        );
        let data = reply.expect_error(INVALID_PARAMS, "invalid_settings");
        assert_eq!(data["problems"][0]["field"], "fim.template.stop", "{stop}");
    }
    assert!(mock.requests().is_empty());
    // A valid one is sent and ends the answer.
    let mock = MockLlm::always(answer("x + 1<END>junk"));
    let reply = inline(
        &mut sidecar,
        json!({"prefix": "y = ", "suffix": "\n",
               "settings": {"customEngineServer": mock.url("/v1/completions"),
                            "fim": {"template": {"prefix": "<A>", "suffix": "<B>", "middle": "<C>", "stop": ["<END>"]}}}}),
    );
    assert_eq!(suggestion(&reply).as_deref(), Some("x + 1"));
    assert_eq!(
        mock.single_request().json()["stop"],
        json!(["<END>", "<A>", "<B>", "<C>"])
    );
}
