//! Code completion through `llm/inlineCompletion`, through the real binary against mock servers
//! on 127.0.0.1: every FIM template and mode and each completion preset (the exact body the
//! server received), every clean-up rule, and the cache (a hit sends no request).
//! `tests/inline_lifecycle.rs` covers supersede/cancel, settings selection, errors, trace, CLI.

mod common;

use common::*;
use serde_json::{Value, json};

/// A JSON answer with `text` where every completion shape reads it.
fn answer(text: &str) -> MockResponse {
    MockResponse::json(200, completion_answer(text))
}

/// Sends `llm/inlineCompletion` and waits for its answer; params and result must match the
/// published schema.
fn inline(sidecar: &mut Sidecar, params: Value) -> Reply {
    schema::assert_matches_methods_schema("inlineCompletionParams", &params);
    let id = sidecar.request("llm/inlineCompletion", params);
    let reply = sidecar.wait_response(&id, WAIT);
    if let Some(result) = reply.response.get("result") {
        schema::assert_matches_methods_schema("inlineCompletionResult", result);
    }
    reply
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
    let mock = MockLlm::always(answer("a, b)<|endoftext|>ignored"));
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
    assert!(reply.result()["timings"]["firstByteMs"].is_u64());
    let request = mock.single_request();
    assert_eq!(request.path, "/v1/completions");
    // OpenAI's completions take at most four stop sequences.
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

/// Every template renders the model's exact tokens, in its order, with its own stop tokens
/// (llama.cpp's `/completion` takes them all).
#[test]
fn every_template_renders_its_model_tokens_and_stops() {
    let cases: &[(Value, &str, &[&str])] = &[
        (
            json!("starcoder"),
            "<fim_prefix>P1\nP2<fim_suffix>S1\nS2<fim_middle>",
            &[
                "<|endoftext|>",
                "<fim_prefix>",
                "<fim_suffix>",
                "<fim_middle>",
                "<fim_pad>",
                "<file_sep>",
                "<repo_name>",
                "<filename>",
            ],
        ),
        (
            json!("qwen"),
            "<|fim_prefix|>P1\nP2<|fim_suffix|>S1\nS2<|fim_middle|>",
            &[
                "<|endoftext|>",
                "<|fim_prefix|>",
                "<|fim_suffix|>",
                "<|fim_middle|>",
                "<|fim_pad|>",
                "<|repo_name|>",
                "<|file_sep|>",
                "<|im_start|>",
                "<|im_end|>",
            ],
        ),
        (
            json!("codellama"),
            "<PRE> P1\nP2 <SUF>S1\nS2 <MID>",
            &["<EOT>", "<PRE>", "<SUF>", "<MID>", "</s>"],
        ),
        (
            json!("deepseek"),
            "<\u{ff5c}fim\u{2581}begin\u{ff5c}>P1\nP2<\u{ff5c}fim\u{2581}hole\u{ff5c}>S1\nS2<\u{ff5c}fim\u{2581}end\u{ff5c}>",
            &[
                "<｜end▁of▁sentence｜>",
                "<｜begin▁of▁sentence｜>",
                "<｜fim▁begin｜>",
                "<｜fim▁hole｜>",
                "<｜fim▁end｜>",
                "<|EOT|>",
            ],
        ),
        (
            json!("codestral"),
            "[SUFFIX]S1\nS2[PREFIX]P1\nP2",
            &["</s>", "[PREFIX]", "[SUFFIX]", "[MIDDLE]"],
        ),
        (
            json!("codegemma"),
            "<|fim_prefix|>P1\nP2<|fim_suffix|>S1\nS2<|fim_middle|>",
            &[
                "<|file_separator|>",
                "<end_of_turn>",
                "<eos>",
                "<|fim_prefix|>",
                "<|fim_suffix|>",
                "<|fim_middle|>",
            ],
        ),
        (
            json!({"prefix": "<A>", "suffix": "<B>", "middle": "<C>", "stop": ["<END>"]}),
            "<A>P1\nP2<B>S1\nS2<C>",
            &["<END>", "<A>", "<B>", "<C>"],
        ),
    ];
    let mock = MockLlm::always(answer("X"));
    let mut sidecar = Sidecar::spawn();
    for (i, (template, prompt, stops)) in cases.iter().enumerate() {
        let reply = inline(
            &mut sidecar,
            json!({"prefix": "P1\nP2", "suffix": "S1\nS2",
                   "settings": {"customEngineServer": mock.url("/completion"), "fim": {"template": template}}}),
        );
        assert_eq!(suggestion(&reply).as_deref(), Some("X"), "{template}");
        let request = &mock.wait_for_requests(i + 1, WAIT)[i];
        assert_eq!(
            request.json(),
            &json!({"prompt": prompt, "n_predict": 128, "stop": stops}),
            "template {template}"
        );
    }
}

/// `separate` and `chat` modes, and each server shape's fields for the prefix, the suffix, the
/// token limit and the stop strings.
#[test]
fn each_mode_and_server_shape_gets_its_own_body() {
    let mock = MockLlm::start(|request| {
        if request.path.contains("chat") {
            answer("Here you go:\n<COMPLETION>```python\nx + 1\n```</COMPLETION>")
        } else {
            answer("x + 1")
        }
    });
    let mut sidecar = Sidecar::spawn();
    let cases = [
        // OpenAI-style legacy completions with `suffix`.
        (
            json!({"customEngineServer": mock.url("/v1/completions"), "model": "m"}),
            json!({"model": "m", "prompt": "y = ", "suffix": "\nprint(y)", "max_tokens": 128}),
        ),
        // llama.cpp /infill.
        (
            json!({"customEngineServer": mock.url("/infill"), "fim": {"maxTokens": 16, "stop": ["\n\n"]}}),
            json!({"input_prefix": "y = ", "input_suffix": "\nprint(y)", "n_predict": 16, "stop": ["\n\n"]}),
        ),
        // Ollama /api/generate with `suffix`.
        (
            json!({"customEngineServer": mock.url("/api/generate"), "model": "qwen2.5-coder", "customEngineRequestFormat": {"customFields": {"stream": false}}}),
            json!({"model": "qwen2.5-coder", "stream": false, "prompt": "y = ", "suffix": "\nprint(y)", "options": {"num_predict": 128}}),
        ),
        // Ollama /api/generate with a client-rendered prompt: raw.
        (
            json!({"customEngineServer": mock.url("/api/generate"), "model": "sc", "fim": {"template": "starcoder", "stop": "\n\n"}}),
            json!({"model": "sc", "prompt": "<fim_prefix>y = <fim_suffix>\nprint(y)<fim_middle>", "raw": true,
                   "options": {"num_predict": 128, "stop": ["\n\n", "<|endoftext|>", "<fim_prefix>", "<fim_suffix>", "<fim_middle>", "<fim_pad>", "<file_sep>", "<repo_name>", "<filename>"]}}),
        ),
        // A `fields` template with every placeholder at any depth.
        (
            json!({"customEngineServer": mock.url("/custom/complete"), "fim": {"template": "qwen"},
                   "customEngineRequestFormat": {"fields": {"input": {"before": "$prefix", "after": ["$suffix"], "prompt": "$fimPrompt"},
                                                            "meta": {"lang": "$language", "file": "$path"}, "keep": "$other"}}}),
            json!({"input": {"before": "y = ", "after": ["\nprint(y)"], "prompt": "<|fim_prefix|>y = <|fim_suffix|>\nprint(y)<|fim_middle|>"},
                   "meta": {"lang": "python", "file": "/src/a.py"}, "keep": "$other"}),
        ),
    ];
    for (i, (settings, body)) in cases.iter().enumerate() {
        let reply = inline(
            &mut sidecar,
            json!({"prefix": "y = ", "suffix": "\nprint(y)", "language": "python", "path": "/src/a.py", "settings": settings}),
        );
        assert_eq!(suggestion(&reply).as_deref(), Some("x + 1"), "{settings}");
        let request = &mock.wait_for_requests(i + 1, WAIT)[i];
        assert_eq!(request.json(), body, "{settings}");
    }

    // Chat: our instruction, the code with the hole, and the code taken out of the answer.
    let reply = inline(
        &mut sidecar,
        json!({"prefix": "y = ", "suffix": "\nprint(y)", "language": "python", "path": "/src/a.py",
               "settings": {"customEngineServer": mock.url("/v1/chat/completions"), "model": "gpt",
                            "customEngineResponseType": "JSON"}}),
    );
    assert_eq!(suggestion(&reply).as_deref(), Some("x + 1"));
    let requests = mock.wait_for_requests(cases.len() + 1, WAIT);
    let body = requests.last().unwrap().json();
    assert_eq!(body["model"], "gpt");
    assert_eq!(body["max_tokens"], 128);
    assert_eq!(body["stop"], json!(["</COMPLETION>"]));
    let messages = body["messages"].as_array().unwrap();
    assert_eq!(messages[0]["role"], "system");
    assert!(
        messages[0]["content"]
            .as_str()
            .unwrap()
            .contains("{{FILL_HERE}}")
    );
    assert_eq!(
        messages[1]["content"],
        "File: /src/a.py\nLanguage: python\n<CODE>\ny = {{FILL_HERE}}\nprint(y)\n</CODE>"
    );
}

/// Each completion preset: its endpoint, body and response path.
#[test]
fn completion_presets_send_their_server_shape() {
    let mock = MockLlm::always(answer("done()"));
    let mut sidecar = Sidecar::spawn();
    let cases = [
        (
            "ollama-fim",
            "/api/generate",
            json!({"model": "qwen2.5-coder:1.5b-base", "stream": false, "prompt": "a\n", "suffix": "", "options": {"num_predict": 128}}),
        ),
        (
            "llama.cpp-infill",
            "/infill",
            json!({"stream": false, "cache_prompt": true, "input_prefix": "a\n", "input_suffix": "", "n_predict": 128}),
        ),
        (
            "codestral-fim",
            "/v1/fim/completions",
            json!({"model": "codestral-latest", "stream": false, "prompt": "a\n", "suffix": "", "max_tokens": 128}),
        ),
        (
            "deepseek-fim",
            "/beta/completions",
            json!({"model": "deepseek-chat", "stream": false, "prompt": "a\n", "suffix": "", "max_tokens": 128}),
        ),
        (
            "openai-completions",
            "/v1/completions",
            json!({"model": "local-model", "stream": false, "prompt": "<|fim_prefix|>a\n<|fim_suffix|><|fim_middle|>", "max_tokens": 128,
                   "stop": ["<|endoftext|>", "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"]}),
        ),
    ];
    for (i, (preset, path, body)) in cases.iter().enumerate() {
        let reply = inline(
            &mut sidecar,
            json!({"prefix": "a\n", "suffix": "", "settings": {"preset": preset, "customEngineServer": mock.url(path)}}),
        );
        assert_eq!(suggestion(&reply).as_deref(), Some("done()"), "{preset}");
        let request = &mock.wait_for_requests(i + 1, WAIT)[i];
        assert_eq!(&request.path, path, "{preset}");
        assert_eq!(request.json(), body, "{preset}");
    }
}

/// Every clean-up rule, on what a server really sends back.
#[test]
fn each_clean_up_rule_applies_to_the_answer() {
    // (answer, prefix, suffix, multiline, expected suggestion)
    type Case<'a> = (&'a str, &'a str, &'a str, Option<bool>, Option<&'a str>);
    let cases: &[Case] = &[
        // Template stop token, and a special token of another family leaking.
        (
            "total += x<|endoftext|>more",
            "    ",
            "\n",
            None,
            Some("total += x"),
        ),
        (
            "total += x<|im_end|>\n<|im_start|>",
            "    ",
            "\n",
            None,
            Some("total += x"),
        ),
        ("print()</fim_middle>", "", "\n", None, Some("print()")),
        // A code fence around the answer.
        (
            "```python\nreturn a + b\n```",
            "def f(a, b):\n    ",
            "\n",
            None,
            Some("return a + b"),
        ),
        // Text that repeats the start of the suffix.
        ("a, b)", "sum(", ")\n", None, Some("a, b")),
        (
            "\n    return 1\n}\n",
            "fn f() {",
            "\n}\n",
            None,
            Some("\n    return 1"),
        ),
        // Blank answers.
        ("  \n\t ", "x = ", "\n", None, None),
        ("", "x = ", "\n", None, None),
        // Single-line mode: the cursor's line has text after it, or multiline is off.
        ("a, b\nextra()", "sum(", ")\n", None, Some("a, b")),
        ("first()\nsecond()", "", "\n", Some(false), Some("first()")),
        (
            "first()\nsecond()",
            "",
            "\n",
            None,
            Some("first()\nsecond()"),
        ),
        // Never repeat text before the cursor.
        ("def add(a, b):", "    def add(", "\n", None, Some("a, b):")),
        (
            "    return total\nprint(f())",
            "def f():\n    return total",
            "",
            None,
            Some("\nprint(f())"),
        ),
        // ... but a repeat that begins mid-line is the code going on.
        (
            "1);\n    x.push(2);",
            "x.push(1);\n    x.push(",
            "",
            None,
            Some("1);\n    x.push(2);"),
        ),
        (
            "    let y = 2;",
            "fn f() {\n    let",
            "\n}",
            None,
            Some(" y = 2;"),
        ),
    ];
    let mut sidecar = Sidecar::spawn();
    for (raw, prefix, suffix, multiline, expected) in cases {
        let mock = MockLlm::always(answer(raw));
        let mut fim = json!({"template": "qwen"});
        if let Some(multiline) = multiline {
            fim["multiline"] = json!(multiline);
        }
        let reply = inline(
            &mut sidecar,
            json!({"prefix": prefix, "suffix": suffix,
                   "settings": {"customEngineServer": mock.url("/v1/completions"), "fim": fim}}),
        );
        assert_eq!(
            suggestion(&reply).as_deref(),
            *expected,
            "answer {raw:?} after {prefix:?} before {suffix:?}"
        );
        assert_eq!(
            reply.result()["items"].as_array().unwrap().is_empty(),
            expected.is_none()
        );
        mock.single_request();
    }
}

/// Typing the characters of a shown suggestion gets the rest from the cache, with no request.
#[test]
fn typing_along_a_suggestion_is_answered_from_the_cache() {
    let mock = MockLlm::always(answer("compute(a, b)"));
    let mut sidecar = Sidecar::spawn();
    let settings =
        json!({"customEngineServer": mock.url("/v1/completions"), "fim": {"template": "qwen"}});
    let ask = |sidecar: &mut Sidecar, prefix: &str, invoked: bool| {
        inline(
            sidecar,
            json!({"prefix": prefix, "suffix": ";\n", "path": "/a.rs", "settings": settings, "invoked": invoked}),
        )
    };
    let first = ask(&mut sidecar, "let x = ", false);
    assert_eq!(suggestion(&first).as_deref(), Some("compute(a, b)"));
    assert_eq!(first.result()["cached"], json!(false));
    for (typed, rest) in [
        ("comp", "ute(a, b)"),
        ("compute(a, ", "b)"),
        ("", "compute(a, b)"),
    ] {
        let reply = ask(&mut sidecar, &format!("let x = {typed}"), false);
        assert_eq!(suggestion(&reply).as_deref(), Some(rest), "typed {typed:?}");
        assert_eq!(reply.result()["cached"], json!(true));
    }
    assert_eq!(mock.requests().len(), 1, "a cache hit sends no request");

    // Typing something else, or asking explicitly, goes to the server.
    let other = ask(&mut sidecar, "let x = cop", false);
    assert_eq!(other.result()["cached"], json!(false));
    let invoked = ask(&mut sidecar, "let x = comp", true);
    assert_eq!(invoked.result()["cached"], json!(false));
    assert_eq!(mock.requests().len(), 3);
}

/// A streamed answer is read only as far as it can be used: to the first line break in
/// single-line mode, to a stop token otherwise. The server may go on (here it never ends): the
/// suggestion comes at once and the connection is closed.
#[test]
fn a_streamed_answer_is_read_only_as_far_as_it_is_used() {
    let event =
        |text: &str| sse_event(&json!({"choices": [{"index": 0, "text": text}]}).to_string());
    let mock = MockLlm::start(move |request| {
        let first = if request.json()["prompt"].as_str().unwrap().contains("multi") {
            event("one()\ntwo()<|endoftext|>")
        } else {
            event("a, b")
        };
        MockResponse::sse(first)
            .chunked()
            .piece(event(")\nnext line"))
            .then_hang()
    });
    let mut sidecar = Sidecar::spawn();
    let settings = json!({"customEngineServer": mock.url("/v1/completions"), "fim": {"template": "qwen"},
                          "customEngineResponseFormat": "$.choices[0].text",
                          "customEngineRequestFormat": {"customFields": {"stream": true}}});
    // Single line: the cursor's line has `)` after it (which the answer then must not repeat).
    let reply = inline(
        &mut sidecar,
        json!({"prefix": "x = f(", "suffix": ")\n", "settings": settings}),
    );
    assert_eq!(suggestion(&reply).as_deref(), Some("a, b"));
    mock.wait_client_closed(0, WAIT);
    // Multi-line: reading stops at the template's end token.
    let reply = inline(
        &mut sidecar,
        json!({"prefix": "# multi\n", "suffix": "", "settings": settings}),
    );
    assert_eq!(suggestion(&reply).as_deref(), Some("one()\ntwo()"));
    mock.wait_client_closed(1, WAIT);
}
