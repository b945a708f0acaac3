//! Code completion through `llm/inlineCompletion`, through the real binary against mock servers
//! on 127.0.0.1: every FIM template and mode (the exact body the server received), every clean-up
//! rule, the cache (no request on a hit), supersede (the old request answers -32800 and its
//! connection closes), which settings a completion uses, and the errors.

mod common;

use common::*;
use serde_json::{Value, json};

/// A JSON answer of an OpenAI-style `/v1/completions` server with `text`.
fn completions_json(text: &str) -> MockResponse {
    MockResponse::json(
        200,
        json!({"id": "c", "object": "text_completion", "choices": [{"index": 0, "text": text, "finish_reason": "stop"}]})
            .to_string(),
    )
}

/// A mock that always answers `text` as `/v1/completions` JSON.
fn completions_mock(text: &str) -> MockLlm {
    MockLlm::always(completions_json(text))
}

/// Sends `llm/inlineCompletion` and waits for its answer.
fn inline(sidecar: &mut Sidecar, params: Value) -> Reply {
    let id = sidecar.request("llm/inlineCompletion", params);
    sidecar.wait_response(&id, WAIT)
}

/// The single suggestion's text, or `None` for an empty list.
fn suggestion(reply: &Reply) -> Option<String> {
    let items = reply.result()["items"].as_array().expect("items").clone();
    assert!(items.len() <= 1, "{items:?}");
    items
        .first()
        .map(|i| i["insertText"].as_str().expect("insertText").to_owned())
}

#[test]
fn qwen_prompt_mode_sends_the_rendered_prompt_and_cleans_the_answer() {
    let mock = completions_mock("a, b)<|endoftext|>ignored");
    let mut sidecar = Sidecar::spawn();
    let reply = inline(
        &mut sidecar,
        json!({
            "prefix": "def add(",
            "suffix": ")\n",
            "settings": {"customEngineServer": mock.url("/v1/completions"), "model": "qwen2.5-coder",
                         "fim": {"template": "qwen"}},
        }),
    );
    assert_eq!(suggestion(&reply).as_deref(), Some("a, b"));
    assert_eq!(reply.result()["cached"], json!(false));
    assert!(reply.result()["timings"]["totalMs"].is_u64());
    let request = mock.single_request();
    assert_eq!(request.path, "/v1/completions");
    assert_eq!(
        request.json(),
        &json!({
            "model": "qwen2.5-coder",
            "prompt": "<|fim_prefix|>def add(<|fim_suffix|>)\n<|fim_middle|>",
            "max_tokens": 128,
            "stop": ["<|endoftext|>", "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"],
        })
    );
}
