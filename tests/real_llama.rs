//! The sidecar against a real llama.cpp `llama-server` (issue 18): code completion through
//! `/completion` with a FIM template, `/infill` refused with HTTP 501 by a model without
//! fill-in-the-middle tokens, `llm/testConnection` of completion settings, `llm/detect` on the
//! server's base URL, and one chat completion through `/v1/chat/completions`.
//!
//! Opt-in: every test is `#[ignore]` and needs `LLAMA_SERVER_URL` (the server's base URL on
//! 127.0.0.1). `scripts/real-llama.sh` builds `llama-server` from source, starts it with a small
//! model that has no FIM tokens (Gemma 3 270M) and runs these tests against the release binary
//! (`LLM_SIDECAR_BIN`). Each test prints what the sidecar answered on stderr, under `real-llama:`.
//! Without the variable a test says so and passes without doing anything.

mod common;

use common::*;
use serde_json::{Value, json};

/// The template of the Gemma family: the model answers whatever it makes of these tokens, which
/// is all a model without FIM training can do.
const TEMPLATE: &str = "codegemma";
const PREFIX: &str = "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n    if n < 2:\n        return ";
const SUFFIX: &str = "\n    return fibonacci(n - 1) + fibonacci(n - 2)\n";
const MAX_TOKENS: u64 = 24;
const INFILL_501: &str = "Infill is not supported by this model";

/// The llama.cpp server's base URL, or `None` (with a note) when the run is not configured.
fn server() -> Option<String> {
    match std::env::var("LLAMA_SERVER_URL") {
        Ok(url) if !url.trim().is_empty() => {
            let url = url.trim().trim_end_matches('/').to_owned();
            assert!(
                url.starts_with("http://127.0.0.1:") || url.starts_with("http://localhost:"),
                "LLAMA_SERVER_URL must be a loopback address, got {url}"
            );
            Some(url)
        }
        _ => {
            eprintln!(
                "real-llama: skipped: LLAMA_SERVER_URL is not set (run scripts/real-llama.sh, or start llama-server \
                 and set LLAMA_SERVER_URL=http://127.0.0.1:PORT)"
            );
            None
        }
    }
}

fn report(what: &str, value: &Value) {
    eprintln!(
        "real-llama: {what}: {}",
        serde_json::to_string_pretty(value).unwrap()
    );
}

/// The `/completion` settings a user writes for a model llama.cpp serves without FIM support:
/// the endpoint and the template, nothing else.
fn completion_settings(base: &str) -> Value {
    json!({
        "customEngineServer": format!("{base}/completion"),
        "fim": {"template": TEMPLATE, "maxTokens": MAX_TOKENS},
    })
}

/// The `llm/trace` params of a reply, by part (`request`, `response`, `body`).
fn trace_part<'a>(reply: &'a Reply, key: &str) -> Option<&'a Value> {
    reply
        .notifications
        .iter()
        .filter(|n| n["method"] == "llm/trace")
        .find_map(|n| n["params"].get(key))
}

fn inline(sidecar: &mut Sidecar, params: Value) -> Reply {
    schema::assert_matches_methods_schema("inlineCompletionParams", &params);
    let id = sidecar.request("llm/inlineCompletion", params);
    // Generous: a cold model on a busy 2-core machine.
    let reply = sidecar.wait_response(&id, WAIT * 6);
    if let Some(result) = reply.response.get("result") {
        schema::assert_matches_methods_schema("inlineCompletionResult", result);
    }
    reply
}

#[test]
#[ignore = "needs a llama.cpp server: scripts/real-llama.sh"]
fn completion_endpoint_with_a_fim_template() {
    let Some(base) = server() else { return };
    let mut sidecar = Sidecar::spawn();
    let params = json!({"prefix": PREFIX, "suffix": SUFFIX, "language": "python", "path": "fib.py",
                        "trace": true, "settings": completion_settings(&base)});
    let reply = inline(&mut sidecar, params.clone());
    report("inlineCompletion /completion result", reply.result());
    let result = reply.result();
    assert!(result["items"].is_array(), "{result}");
    assert_eq!(result["cached"], json!(false));
    assert!(result["timings"]["firstByteMs"].is_u64(), "{result}");
    assert!(result["timings"]["totalMs"].is_u64(), "{result}");

    // What llama.cpp was sent: the rendered template in `prompt`, the cap in `n_predict`, the
    // template's stop tokens in `stop`.
    let request = trace_part(&reply, "request").expect("a request trace");
    assert_eq!(request["url"], json!(format!("{base}/completion")));
    let body: Value = serde_json::from_str(request["body"].as_str().unwrap()).unwrap();
    report("request body llama.cpp received", &body);
    assert_eq!(
        body["prompt"],
        json!(format!(
            "<|fim_prefix|>{PREFIX}<|fim_suffix|>{SUFFIX}<|fim_middle|>"
        ))
    );
    assert_eq!(body["n_predict"], json!(MAX_TOKENS));
    let stops = body["stop"].as_array().expect("stop");
    for stop in ["<|file_separator|>", "<|fim_prefix|>", "<eos>"] {
        assert!(stops.contains(&json!(stop)), "{stop} not in {stops:?}");
    }
    assert!(body.get("max_tokens").is_none(), "{body}");

    // What it answered: one JSON document with `content`, and how many tokens it made.
    let response = trace_part(&reply, "response").expect("a response trace");
    assert_eq!(response["status"], json!(200), "{response}");
    let raw = trace_part(&reply, "body").expect("a body trace");
    let answer: Value = serde_json::from_str(raw["text"].as_str().unwrap()).expect("a JSON body");
    report(
        "llama.cpp's answer (content, tokens, timings)",
        &json!({"content": answer["content"], "tokens_predicted": answer["tokens_predicted"],
                "tokens_evaluated": answer["tokens_evaluated"], "stop_type": answer["stop_type"],
                "stopping_word": answer["stopping_word"], "timings": answer["timings"]}),
    );
    let content = answer["content"].as_str().expect("$.content");
    assert!(answer["tokens_predicted"].as_u64().unwrap() <= MAX_TOKENS);
    // The suggestion comes from that text (clean-up only cuts and trims it).
    if let Some(text) = result["items"][0]["insertText"].as_str() {
        let first = text.lines().next().unwrap_or_default().trim();
        assert!(content.contains(first), "{text:?} is not from {content:?}");
    }

    // The same request again is answered from the cache, without a request.
    let mut again = params;
    again["trace"] = json!(false);
    let cached = inline(&mut sidecar, again);
    report("the same request again", cached.result());
    assert_eq!(cached.result()["items"], result["items"]);
    if !result["items"].as_array().unwrap().is_empty() {
        assert_eq!(cached.result()["cached"], json!(true));
    }
}

#[test]
#[ignore = "needs a llama.cpp server: scripts/real-llama.sh"]
fn infill_preset_against_a_model_without_fim_tokens() {
    let Some(base) = server() else { return };
    let mut sidecar = Sidecar::spawn();
    let reply = inline(
        &mut sidecar,
        json!({"prefix": PREFIX, "suffix": SUFFIX, "trace": true,
               "settings": {"preset": "llama.cpp-infill", "customEngineServer": format!("{base}/infill")}}),
    );
    report("inlineCompletion /infill error", &reply.response["error"]);
    let data = reply.expect_error(REQUEST_FAILED, "http_status");
    assert_eq!(data["status"], json!(501));
    // llama.cpp adds which tokens are missing ("…: prefix token is missing. …").
    let provider = data["providerMessage"].as_str().unwrap();
    assert!(provider.starts_with(INFILL_501), "{provider}");
    let hint = data["hint"].as_str().expect("a hint");
    assert!(hint.contains("no fill-in-the-middle tokens"), "{hint}");
    assert!(hint.contains("/completion"), "{hint}");
    let message = reply.error()["message"].as_str().unwrap();
    assert!(message.contains("501"), "{message}");
    let body: Value = serde_json::from_str(
        trace_part(&reply, "request").unwrap()["body"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(body["input_prefix"], json!(PREFIX));
    assert_eq!(body["input_suffix"], json!(SUFFIX));
    assert!(body.get("prompt").is_none(), "{body}");
}

#[test]
#[ignore = "needs a llama.cpp server: scripts/real-llama.sh"]
fn test_connection_of_completion_settings() {
    let Some(base) = server() else { return };
    let mut sidecar = Sidecar::spawn();
    let id = sidecar.request(
        "llm/testConnection",
        json!({"settings": completion_settings(&base)}),
    );
    let good = sidecar.wait_response(&id, WAIT * 6);
    report("testConnection /completion", good.result());
    assert_eq!(good.result()["ok"], json!(true));
    assert_eq!(good.result()["kind"], json!("completion"));
    assert!(good.result()["totalMs"].is_u64());

    let id = sidecar.request(
        "llm/testConnection",
        json!({"settings": {"preset": "llama.cpp-infill", "customEngineServer": format!("{base}/infill")}}),
    );
    let bad = sidecar.wait_response(&id, WAIT * 6);
    report("testConnection /infill", bad.result());
    assert_eq!(bad.result()["ok"], json!(false));
    assert_eq!(bad.result()["kind"], json!("completion"));
    let data = &bad.result()["error"]["data"];
    assert_eq!(data["status"], json!(501));
    assert!(
        data["hint"]
            .as_str()
            .unwrap()
            .contains("no fill-in-the-middle tokens")
    );
}

#[test]
#[ignore = "needs a llama.cpp server: scripts/real-llama.sh"]
fn detect_on_the_base_url() {
    let Some(base) = server() else { return };
    let mut sidecar = Sidecar::spawn();
    let id = sidecar.request("llm/detect", json!({"url": base}));
    let reply = sidecar.wait_response(&id, WAIT * 9);
    let result = reply.result();
    report("detect", result);
    schema::assert_matches_methods_schema("detectResult", result);
    let first = &result["candidates"][0];
    assert_eq!(first["api"], json!("openai-chat"), "{result}");
    assert_eq!(
        first["settings"]["customEngineServer"],
        json!(format!("{base}/v1/chat/completions"))
    );
    let offered = result["fim"]["offered"].as_array().expect("fim.offered");
    assert!(!offered.contains(&json!("llama.cpp-infill")), "{offered:?}");
    let tried = result["tried"].as_array().unwrap();
    let infill = tried
        .iter()
        .find(|t| t["request"].as_str().unwrap().contains("/infill"))
        .expect("/infill was tried");
    assert_eq!(infill["status"], json!(501), "{infill}");
    assert_eq!(infill["accepted"], json!(false), "{infill}");
    let outcome = infill["outcome"].as_str().unwrap();
    assert!(outcome.contains("fill-in-the-middle"), "{outcome}");
}

#[test]
#[ignore = "needs a llama.cpp server: scripts/real-llama.sh"]
fn chat_through_v1_chat_completions() {
    let Some(base) = server() else { return };
    let mut sidecar = Sidecar::spawn();
    let mut params = json!({
        // A capped answer: this small model rarely ends one by itself.
        "settings": {"preset": "llama.cpp", "customEngineServer": format!("{base}/v1/chat/completions"),
                     "customEngineRequestFormat": {"customFields": {"model": "local-model", "stream": true, "max_tokens": 48}}},
        "messages": [{"role": "user", "content": "Name one primary colour. One word."}],
    });
    let params_again = params.clone();
    params["streamId"] = json!("s");
    let id = sidecar.request("llm/complete", params);
    let reply = sidecar.wait_response(&id, WAIT * 6);
    report("complete /v1/chat/completions", reply.result());
    let chunks = reply.checked_chunks(&json!("s"));
    assert!(!chunks.is_empty());
    assert_eq!(json!(joined(&chunks, "content")), reply.result()["text"]);
    assert!(!reply.result()["text"].as_str().unwrap().trim().is_empty());

    // A second chat right after: llama.cpp closes the kept-alive connection after a streamed
    // answer without saying so, so the request sent on it is answered by a closed connection;
    // the retry on a new connection must still give a result.
    let mut params = params_again;
    params["streamId"] = json!("s2");
    let id = sidecar.request("llm/complete", params);
    let second = sidecar.wait_response(&id, WAIT * 6);
    report(
        "a second chat on the same sidecar",
        &second.result()["timings"],
    );
    assert!(!second.checked_chunks(&json!("s2")).is_empty());
}

#[test]
#[ignore = "needs a llama.cpp server: scripts/real-llama.sh"]
fn openai_completions_preset_with_a_template() {
    let Some(base) = server() else { return };
    let mut sidecar = Sidecar::spawn();
    let reply = inline(
        &mut sidecar,
        json!({"prefix": PREFIX, "suffix": SUFFIX, "trace": true,
               "settings": {"preset": "openai-completions", "customEngineServer": format!("{base}/v1/completions"),
                            "fim": {"template": TEMPLATE, "maxTokens": MAX_TOKENS}}}),
    );
    report("inlineCompletion /v1/completions result", reply.result());
    assert!(reply.result()["items"].is_array());
    let request = trace_part(&reply, "request").expect("a request trace");
    let body: Value = serde_json::from_str(request["body"].as_str().unwrap()).unwrap();
    report("request body llama.cpp received", &body);
    assert_eq!(
        body["prompt"],
        json!(format!(
            "<|fim_prefix|>{PREFIX}<|fim_suffix|>{SUFFIX}<|fim_middle|>"
        ))
    );
    assert!(body.get("suffix").is_none(), "{body}");
    assert_eq!(body["max_tokens"], json!(MAX_TOKENS));
    assert_eq!(body["stop"].as_array().unwrap().len(), 4, "{body}");
    assert_eq!(
        trace_part(&reply, "response").unwrap()["status"],
        json!(200)
    );
}
