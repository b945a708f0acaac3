//! Code completion as a demanding user sees it, through the real binary against mock servers on
//! 127.0.0.1: closers the answer opened are kept while duplicated ones go, block closers that
//! only look like the line above stay, a chat model's prose never reaches the ghost text, fenced
//! and restating answers streamed in single-line mode, a doubled space, trailing line breaks,
//! blank answers, the single/multi-line decision, every streamed shape, and a cache that never
//! hands back typed text and survives auto-closed brackets.

mod common;

use common::*;
use serde_json::{Value, json};

fn answer(text: &str) -> MockResponse {
    MockResponse::json(200, completion_answer(text))
}

fn inline(sidecar: &mut Sidecar, params: Value) -> Reply {
    let id = sidecar.request("llm/inlineCompletion", params);
    sidecar.wait_response(&id, WAIT)
}

fn suggestion(reply: &Reply) -> Option<String> {
    let items = reply.result()["items"].as_array().expect("items").clone();
    assert!(items.len() <= 1, "{items:?}");
    items
        .first()
        .map(|i| i["insertText"].as_str().expect("insertText").to_owned())
}

/// (answer, prefix, suffix, expected suggestion), each against a Qwen FIM server.
fn assert_cleaned(cases: &[(&str, &str, &str, Option<&str>)]) {
    let mut sidecar = Sidecar::spawn();
    for (raw, prefix, suffix, expected) in cases {
        let mock = MockLlm::always(answer(raw));
        let reply = inline(
            &mut sidecar,
            json!({"prefix": prefix, "suffix": suffix,
                   "settings": {"customEngineServer": mock.url("/v1/completions"), "fim": {"template": "qwen"}}}),
        );
        assert_eq!(
            suggestion(&reply).as_deref(),
            *expected,
            "answer {raw:?} after {prefix:?} before {suffix:?}"
        );
        mock.single_request();
    }
}

/// A closing bracket the answer opened itself is part of the code, even when the suffix starts
/// with the same bracket; only closers the answer has no opener for repeat the suffix.
#[test]
fn closers_the_answer_needs_are_kept_and_duplicated_ones_trimmed() {
    assert_cleaned(&[
        // f(a(1)): the answer's `)` closes its own `a(`; the suffix's closes `f(`.
        ("a(1)", "x = f(", ")\n", Some("a(1)")),
        ("items[0]", "print(", ")\n", Some("items[0]")),
        ("{ a: 1 }", "call(", ");\n", Some("{ a: 1 }")),
        // The model wrote the suffix's closers again: they go.
        ("a, b)", "sum(", ")\n", Some("a, b")),
        ("a, b);", "sum(", ");\n", Some("a, b")),
        ("g(1))", "x = f(", ")\n", Some("g(1)")),
        ("1, 2]);", "run([", "]);\n", Some("1, 2")),
    ]);
}

/// A block closer at the start of an empty line closes an outer block; it is not the line
/// above said again just because that line holds the same word at another indentation.
#[test]
fn a_block_closer_is_not_taken_for_a_restated_line() {
    assert_cleaned(&[
        ("end\n", "def f\n  if x\n    y\n  end\n", "", Some("end")),
        (
            "done\necho ok",
            "for a in 1; do\n  for b in 2; do\n    echo\n  done\n",
            "",
            Some("done\necho ok"),
        ),
        // Lines said again up to the cursor are a restatement, indented or not.
        (
            "x = 1\n    y = 2",
            "def f():\n    x = 1\n    y = ",
            "\n",
            Some("2"),
        ),
        // The line said again with its own indentation is still a restatement.
        (
            "    return total\nprint(f())",
            "def f():\n    return total",
            "",
            Some("\nprint(f())"),
        ),
    ]);
}

/// `fim.mode: chat` against an OpenAI-style chat server whose model ignores the tags and
/// answers with prose around a fenced block (a reasoning model thinks first): only the code
/// is suggested, streamed or not.
#[test]
fn a_chat_answer_with_prose_around_a_fence_gives_only_the_code() {
    let answers = [
        "Sure! Here is the completion:\n\n```python\nreturn a + b\n```\n\nThis returns the sum.",
        "<think>The hole is the body.</think>\nHere you go:\n```py\nreturn a + b\n```",
        "```python\nreturn a + b\n```\nExplanation: adds them.",
        "`return a + b`",
    ];
    let mut sidecar = Sidecar::spawn();
    for text in answers {
        for streamed in [false, true] {
            let response = if streamed {
                MockResponse::sse(openai_sse(&[&text[..12], &text[12..]]))
            } else {
                MockResponse::json(200, openai_message(text))
            };
            let mock = MockLlm::always(response);
            let reply = inline(
                &mut sidecar,
                json!({"prefix": "def add(a, b):\n    ", "suffix": "\n", "language": "python",
                       "settings": {"customEngineServer": mock.url("/v1/chat/completions"),
                                    "customEngineRequestFormat": {"customFields": {"stream": streamed}},
                                    "fim": {"mode": "chat"}}}),
            );
            assert_eq!(
                suggestion(&reply).as_deref(),
                Some("return a + b"),
                "{text:?} streamed: {streamed}"
            );
        }
    }
}

/// In single-line mode a streamed answer that opens with a code fence is read past the fence's
/// line: the code inside is the suggestion.
#[test]
fn a_fenced_answer_streamed_in_single_line_mode_gives_its_code() {
    let event =
        |text: &str| sse_event(&json!({"choices": [{"index": 0, "text": text}]}).to_string());
    let mock = MockLlm::start(move |_| {
        MockResponse::sse(event("```python\n"))
            .chunked()
            .piece(event("sum(values)\n"))
            .piece(event("```\n"))
            .then_hang()
    });
    let mut sidecar = Sidecar::spawn();
    let reply = inline(
        &mut sidecar,
        json!({"prefix": "total = ", "suffix": "  # all of them\n",
               "settings": {"customEngineServer": mock.url("/v1/completions"), "fim": {"template": "qwen"},
                            "customEngineResponseFormat": "$.choices[0].text",
                            "customEngineRequestFormat": {"customFields": {"stream": true}}}}),
    );
    assert_eq!(suggestion(&reply).as_deref(), Some("sum(values)"));
    mock.wait_client_closed(0, WAIT);
}

/// A cached suggestion is only reused where its own prefix ends: at the start of a file or
/// after indentation, typing a character never brings back the whole suggestion again.
#[test]
fn the_cache_never_hands_back_text_already_typed() {
    let mock = MockLlm::start(|request| {
        let prompt = request.json()["prompt"].as_str().unwrap_or_default();
        if prompt.contains("    ") {
            answer("return 1")
        } else {
            answer("fn main() {}")
        }
    });
    let mut sidecar = Sidecar::spawn();
    let settings =
        json!({"customEngineServer": mock.url("/v1/completions"), "fim": {"template": "qwen"}});
    let ask = |sidecar: &mut Sidecar, prefix: &str, suffix: &str| {
        inline(
            sidecar,
            json!({"prefix": prefix, "suffix": suffix, "path": "/new.rs", "settings": settings}),
        )
    };
    let first = ask(&mut sidecar, "", "");
    assert_eq!(suggestion(&first).as_deref(), Some("fn main() {}"));
    let typed = ask(&mut sidecar, "f", "");
    assert_eq!(suggestion(&typed).as_deref(), Some("n main() {}"));
    assert_eq!(typed.result()["cached"], json!(true));
    assert_eq!(mock.requests().len(), 1);

    let indented = ask(&mut sidecar, "fn f() {\n    ", "\n}");
    assert_eq!(suggestion(&indented).as_deref(), Some("return 1"));
    // One more space is not the start of `return 1`: no cached answer for it.
    let spaced = ask(&mut sidecar, "fn f() {\n     ", "\n}");
    assert_eq!(spaced.result()["cached"], json!(false));
    assert_eq!(mock.requests().len(), 3);
}

/// A server that answers 200 with nothing (the model stopped at once) gives an empty list, not
/// an error; so does an answer of only stop tokens.
#[test]
fn a_blank_answer_is_an_empty_list() {
    for body in [
        completion_answer(""),
        completion_answer("<|endoftext|>"),
        json!({"choices": [{"index": 0, "text": null, "finish_reason": "stop"}]}).to_string(),
    ] {
        let mock = MockLlm::always(MockResponse::json(200, &body));
        let mut sidecar = Sidecar::spawn();
        let reply = inline(
            &mut sidecar,
            json!({"prefix": "x = ", "suffix": "\n",
                   "settings": {"customEngineServer": mock.url("/v1/completions"), "fim": {"template": "qwen"}}}),
        );
        assert_eq!(reply.result()["items"], json!([]), "{body}");
    }
}

/// Codestral's FIM endpoint (and Code Llama through llama.cpp) answers ` 1` after `x = `: the
/// space the line already ends with is not doubled. A space after code with none before the
/// cursor, or after indentation, stays.
#[test]
fn a_space_the_line_already_ends_with_is_not_doubled() {
    let cases = [
        (" 1", "x = ", Some("1")),
        (" 1", "x =", Some(" 1")),
        (" items.len()", "    return ", Some("items.len()")),
        (" x", "    ", Some(" x")),
    ];
    let mut sidecar = Sidecar::spawn();
    for (raw, prefix, expected) in cases {
        let mock = MockLlm::always(MockResponse::json(200, openai_message(raw)));
        let reply = inline(
            &mut sidecar,
            json!({"prefix": prefix, "suffix": "\n",
                   "settings": {"preset": "codestral-fim", "customEngineServer": mock.url("/v1/fim/completions"),
                                "customEngineToken": "k"}}),
        );
        assert_eq!(
            suggestion(&reply).as_deref(),
            expected,
            "{raw:?} after {prefix:?}"
        );
        let request = mock.single_request();
        assert_eq!(request.path, "/v1/fim/completions");
        assert_eq!(request.header("authorization"), Some("Bearer k"));
    }
}

/// Where the line has text after the cursor the suggestion is one line; at the end of a line
/// or on an empty one it may span lines; `fim.multiline` decides when set. Windows line ends
/// and text far wider than the budget (CJK, emoji) go through whole.
#[test]
fn single_or_multi_line_follows_the_cursor_and_the_setting() {
    let two_lines = "first()\nsecond()";
    // (prefix, suffix, fim.multiline, expected)
    let cases: &[(&str, &str, Option<bool>, &str)] = &[
        ("x = ", "  # note\n", None, "first()"),
        ("x = ", "\n", None, two_lines),
        ("", "", None, two_lines),
        ("x = ", "\r\nnext\r\n", None, two_lines),
        ("x = ", "  # note\r\n", None, "first()"),
        ("x = ", "  # note\n", Some(true), two_lines),
        ("x = ", "\n", Some(false), "first()"),
    ];
    let mut sidecar = Sidecar::spawn();
    for (prefix, suffix, multiline, expected) in cases {
        let mock = MockLlm::always(answer(two_lines));
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
            Some(*expected),
            "{prefix:?} {suffix:?} {multiline:?}"
        );
        mock.single_request();
    }
    // A budget smaller than one wide character never splits it.
    let mock = MockLlm::always(answer("完成"));
    let wide = "注释🙂".repeat(50);
    let reply = inline(
        &mut sidecar,
        json!({"prefix": format!("// {wide}"), "suffix": format!("{wide}\n"),
               "settings": {"customEngineServer": mock.url("/v1/completions"),
                            "fim": {"template": "qwen", "prefixChars": 5, "suffixChars": 2}}}),
    );
    assert_eq!(suggestion(&reply).as_deref(), Some("完成"));
    let prompt = mock.single_request().json()["prompt"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(prompt, "<|fim_prefix|>🙂<|fim_suffix|><|fim_middle|>");
}

/// Ollama streams NDJSON when the body does not say `stream: false` (its default): the lines
/// are read as they come and reading stops at the end of the line in single-line mode.
#[test]
fn an_ollama_ndjson_stream_is_read_line_by_line() {
    let line = |text: &str| {
        format!(
            "{}\n",
            json!({"model": "sc", "response": text, "done": false})
        )
    };
    let mock = MockLlm::start(move |_| {
        MockResponse::new(200)
            .content_type("application/x-ndjson")
            .chunked()
            .piece(line("sum("))
            .piece(line("a, b"))
            .piece(line(")\nmore()"))
            .then_hang()
    });
    let mut sidecar = Sidecar::spawn();
    let reply = inline(
        &mut sidecar,
        json!({"prefix": "total = ", "suffix": "  # all\n",
               "settings": {"customEngineServer": mock.url("/api/generate"), "model": "sc",
                            "fim": {"template": "starcoder"}}}),
    );
    assert_eq!(suggestion(&reply).as_deref(), Some("sum(a, b)"));
    mock.wait_client_closed(0, WAIT);
    assert_eq!(mock.single_request().json()["raw"], json!(true));
}

/// A multi-line answer that closes a block it opened itself keeps that closer; a closer at the
/// suffix's own indentation repeats the suffix and goes.
#[test]
fn a_nested_block_closer_is_not_taken_for_the_suffix() {
    assert_cleaned(&[
        (
            "\n    if x {\n        y();\n    }\n    z();\n}\n",
            "fn f() {",
            "\n}\n",
            Some("\n    if x {\n        y();\n    }\n    z();"),
        ),
        (
            "\n        a();\n    }\n    b();",
            "fn f() {\n    if x {",
            "\n    }\n}\n",
            Some("\n        a();"),
        ),
        (
            "\r\n        a();\r\n    }\r\n}\r\n",
            "fn f() {\r\n    if x {",
            "\r\n    }\r\n}\r\n",
            Some("\r\n        a();"),
        ),
    ]);
}

/// A multi-line answer's trailing line breaks are not inserted: they would push the code after
/// the cursor down by a blank line.
#[test]
fn trailing_line_breaks_are_not_suggested() {
    assert_cleaned(&[
        (
            "\n    return 1\n\n",
            "def f():",
            "\n\nclass X:\n",
            Some("\n    return 1"),
        ),
        ("x = 1\r\n", "", "", Some("x = 1")),
        ("\n  \n", "def f():", "\n", None),
    ]);
}

/// Typing along a suggestion in an editor that closes brackets: after `compute(` the editor has
/// put `)` after the cursor. The rest still comes from the cache, without that `)` again.
#[test]
fn typing_along_with_auto_closed_brackets_still_hits_the_cache() {
    let mock = MockLlm::always(answer("compute(a, \"b\")"));
    let mut sidecar = Sidecar::spawn();
    let settings =
        json!({"customEngineServer": mock.url("/v1/completions"), "fim": {"template": "qwen"}});
    let ask = |sidecar: &mut Sidecar, prefix: &str, suffix: &str| {
        inline(
            sidecar,
            json!({"prefix": prefix, "suffix": suffix, "path": "/auto.rs", "settings": settings}),
        )
    };
    let first = ask(&mut sidecar, "let x = ", ";\n");
    assert_eq!(suggestion(&first).as_deref(), Some("compute(a, \"b\")"));
    for (prefix, suffix, rest) in [
        ("let x = compute(", ");\n", "a, \"b\""),
        ("let x = compute(a, \"", "\");\n", "b"),
    ] {
        let reply = ask(&mut sidecar, prefix, suffix);
        assert_eq!(reply.result()["cached"], json!(true), "{prefix}|{suffix}");
        assert_eq!(
            suggestion(&reply).as_deref(),
            Some(rest),
            "{prefix}|{suffix}"
        );
    }
    assert_eq!(mock.requests().len(), 1);
}

/// Streamed answers of each completion shape, with no response path in the settings: OpenAI-style
/// `/v1/completions` events (`choices[0].text`), Mistral's FIM events (`choices[0].delta.content`)
/// and llama.cpp's `/completion` events (`content`).
#[test]
fn streamed_answers_of_each_shape_are_read_without_a_response_path() {
    let cases = [
        (
            "/v1/completions",
            json!({"choices": [{"index": 0, "text": "TEXT", "finish_reason": null}]}),
        ),
        (
            "/v1/fim/completions",
            json!({"choices": [{"index": 0, "delta": {"content": "TEXT"}, "finish_reason": null}]}),
        ),
        ("/completion", json!({"content": "TEXT", "stop": false})),
    ];
    let mut sidecar = Sidecar::spawn();
    for (path, event) in cases {
        let events: String = ["sum(", "values)", "<|endoftext|>"]
            .iter()
            .map(|t| sse_event(&event.to_string().replace("TEXT", t)))
            .collect();
        let mock = MockLlm::always(MockResponse::sse(events + &sse_event("[DONE]")));
        let reply = inline(
            &mut sidecar,
            json!({"prefix": "total = ", "suffix": "\n",
                   "settings": {"customEngineServer": mock.url(path), "fim": {"template": "qwen", "mode": "prompt"},
                                "customEngineRequestFormat": {"customFields": {"stream": true}}}}),
        );
        assert_eq!(suggestion(&reply).as_deref(), Some("sum(values)"), "{path}");
    }
}

/// A model that says the lines before the cursor again, streamed in single-line mode: reading
/// goes on past the restated lines, and the suggestion is what comes after them, as it is for
/// the same answer in one body.
#[test]
fn restated_lines_streamed_in_single_line_mode_are_read_past() {
    let chunks = ["total = add(\n", "    a,\n", "    b, c\n", "extra()"];
    let event =
        |text: &str| sse_event(&json!({"choices": [{"index": 0, "text": text}]}).to_string());
    let mock = MockLlm::start(move |request| {
        if request.json()["stream"] == json!(true) {
            let mut response = MockResponse::sse("").chunked();
            for chunk in chunks {
                response = response.piece(event(chunk));
            }
            response.then_hang()
        } else {
            answer(&chunks.concat())
        }
    });
    let mut sidecar = Sidecar::spawn();
    for stream in [false, true] {
        let reply = inline(
            &mut sidecar,
            json!({"prefix": "total = add(\n    a,\n    b", "suffix": ")\n",
                   "settings": {"customEngineServer": mock.url("/v1/completions"), "fim": {"template": "qwen"},
                                "customEngineRequestFormat": {"customFields": {"stream": stream}}}}),
        );
        assert_eq!(
            suggestion(&reply).as_deref(),
            Some(", c"),
            "stream: {stream}"
        );
    }
}
