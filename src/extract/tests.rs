//! Unit tests of the extractor.

use super::*;

fn data(d: &str) -> Event {
    Event::Data {
        event_type: "message".into(),
        data: d.into(),
    }
}

fn text(outcome: Outcome) -> String {
    match outcome {
        Outcome::Text(p) => p.content,
        other => panic!("expected text, got {other:?}"),
    }
}

#[test]
fn strings_append_nulls_do_not() {
    let path = CompiledPath::compile("$.choices[0].delta.content").unwrap();
    let mut x = Extractor::new(Some(&path), None);
    assert_eq!(
        text(x.apply(&data(r#"{"choices":[{"delta":{"content":null}}]}"#))),
        ""
    );
    assert_eq!(
        text(x.apply(&data(r#"{"choices":[{"delta":{"content":"Hi"}}]}"#))),
        "Hi"
    );
    assert_eq!(text(x.apply(&data(r#"{"choices":[]}"#))), "");
    assert_eq!(x.apply(&data(" [DONE] ")), Outcome::Done);
    assert_eq!(x.verdict(ResponseType::Sse), None);
}

#[test]
fn several_matches_are_joined() {
    let path = CompiledPath::compile("$.parts[*].text").unwrap();
    let mut x = Extractor::new(Some(&path), None);
    assert_eq!(
        text(x.apply(&data(r#"{"parts":[{"text":"a"},{"x":1},{"text":"b"}]}"#))),
        "ab"
    );
}

#[test]
fn only_nulls_is_a_valid_empty_answer_but_nothing_is_no_match() {
    let path = CompiledPath::compile("$.a").unwrap();
    let mut x = Extractor::new(Some(&path), None);
    x.apply(&data(r#"{"a":null}"#));
    assert_eq!(x.verdict(ResponseType::Sse), None);
    let mut y = Extractor::new(Some(&path), None);
    y.apply(&data(r#"{"b":"x"}"#));
    assert!(matches!(
        y.verdict(ResponseType::Sse),
        Some(Verdict::NoMatch { events: 1, .. })
    ));
}

#[test]
fn a_path_that_selects_only_objects_is_no_match() {
    let path = CompiledPath::compile("$.choices[0].delta").unwrap();
    let mut x = Extractor::new(Some(&path), None);
    x.apply(&data(r#"{"choices":[{"delta":{"content":"a"}}]}"#));
    x.apply(&data(r#"{"choices":[{"delta":{"content":"b"}}]}"#));
    match x.verdict(ResponseType::Sse) {
        Some(Verdict::NoMatch {
            non_text_events: 2,
            suggestions,
            ..
        }) => {
            assert_eq!(suggestions[0].path, "$.choices[0].delta.content");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn errors_in_stream() {
    let mut x = Extractor::new(None, None);
    let err = x.apply(&Event::Data {
        event_type: "error".into(),
        data: r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#
            .into(),
    });
    assert!(
        matches!(err, Outcome::Error { provider_message, .. } if provider_message == "Overloaded")
    );
    let err = x.apply(&data(r#"{"error":"model not found"}"#));
    assert!(
        matches!(err, Outcome::Error { provider_message, .. } if provider_message == "model not found")
    );
    let ok = x.apply(&data(
        r#"{"error":null,"choices":[{"delta":{"content":"x"}}]}"#,
    ));
    assert_eq!(text(ok), "x");
    let stray = x.apply(&Event::Stray(
        "{\n \"error\": {\"code\": 499, \"message\": \"cancelled\"}\n}".into(),
    ));
    assert!(
        matches!(stray, Outcome::Error { provider_message, .. } if provider_message == "cancelled")
    );
}

#[test]
fn default_paths_and_raw_text() {
    let mut x = Extractor::new(None, None);
    assert_eq!(text(x.apply(&data("plain words"))), "plain words");
    assert_eq!(
        text(x.apply(&data(r#"{"choices":[{"message":{"content":"m"}}]}"#))),
        "m"
    );
    let mut j = Extractor::new(None, None);
    assert_eq!(j.content_path(ResponseType::Json), DEFAULT_JSON_PATH);
    assert_eq!(
        text(j.apply(&data(r#"{"choices":[{"message":{"content":"full"}}]}"#))),
        "full"
    );
}

#[test]
fn default_chain_covers_common_servers() {
    let mut x = Extractor::new(None, None);
    assert_eq!(
        text(x.apply(&data(
            r#"{"message":{"role":"assistant","content":"olla"},"done":false}"#
        ))),
        "olla"
    );
    assert_eq!(
        text(x.apply(&data(r#"{"response":"gen","done":false}"#))),
        "gen"
    );
    assert_eq!(
        text(x.apply(&data(
            r#"{"type":"content_block_delta","delta":{"type":"text_delta","text":"claude"}}"#
        ))),
        "claude"
    );
    assert_eq!(
        text(x.apply(&data(
            r#"{"type":"content_block_delta","delta":{"type":"thinking_delta","thinking":"hmm"}}"#
        ))),
        ""
    );
    let gemini = r#"{"candidates":[{"content":{"parts":[{"text":"thought","thought":true},{"text":"answer"}]}}]}"#;
    assert_eq!(text(x.apply(&data(gemini))), "answer");
    // A usage-only chunk selects nothing anywhere in the chain.
    assert_eq!(
        text(x.apply(&data(r#"{"choices":[],"usage":{"total_tokens":1}}"#))),
        ""
    );
    let mut j = Extractor::new(None, None);
    let claude =
        r#"{"content":[{"type":"thinking","thinking":"x"},{"type":"text","text":"full answer"}]}"#;
    assert_eq!(text(j.apply(&data(claude))), "full answer");
}

#[test]
fn verdicts() {
    let x = Extractor::new(None, None);
    assert_eq!(x.verdict(ResponseType::Sse), Some(Verdict::NoEvents));
    let path = CompiledPath::compile("$.a").unwrap();
    let mut y = Extractor::new(Some(&path), None);
    y.apply(&data("not json"));
    assert!(matches!(
        y.verdict(ResponseType::Sse),
        Some(Verdict::NotJson { events: 1, .. })
    ));
}

#[test]
fn finish_reason_and_usage() {
    let mut x = Extractor::new(None, None);
    x.apply(&data(
        r#"{"choices":[{"delta":{},"finish_reason":"stop"}]}"#,
    ));
    x.apply(&data(r#"{"choices":[],"usage":{"total_tokens":3}}"#));
    assert_eq!(x.finish_reason(), Some("stop"));
    assert_eq!(x.take_usage(), Some(serde_json::json!({"total_tokens":3})));
}

/// Runs `events` through the extractor with and without the fast path;
/// everything it reports must be the same.
fn same_with_and_without_fast_path(
    content: Option<&CompiledPath>,
    reasoning: Option<&CompiledPath>,
    events: &[Event],
    response_type: ResponseType,
    what: &str,
) {
    let mut fast = Extractor::new(content, reasoning);
    let mut slow = Extractor::new(content, reasoning).without_fast_path();
    for (i, event) in events.iter().enumerate() {
        assert_eq!(
            fast.apply(event),
            slow.apply(event),
            "{what}: event {i}: {event:?}"
        );
    }
    assert_eq!(fast.flush(), slow.flush(), "{what}: flush");
    assert_eq!(
        fast.finish_reason(),
        slow.finish_reason(),
        "{what}: finish_reason"
    );
    assert_eq!(fast.take_usage(), slow.take_usage(), "{what}: usage");
    assert_eq!(
        fast.verdict(response_type),
        slow.verdict(response_type),
        "{what}: verdict"
    );
    assert_eq!(
        fast.warnings(response_type),
        slow.warnings(response_type),
        "{what}: warnings"
    );
}

fn path_sets() -> Vec<(Option<CompiledPath>, Option<CompiledPath>)> {
    let c = |p: &str| Some(CompiledPath::compile(p).unwrap());
    vec![
        (None, None),
        (c("$.choices[0].delta.content"), None),
        (c("$.choices[0].message.content"), None),
        (c("$['choices'][0]['delta']"), None),
        (c("$.choices[1].delta.content"), None),
        (c("$.delta.text"), None),
        (c("$.response"), None),
        (c("$.message.content"), None),
        (None, c("$.choices[0].delta.reasoning_content")),
        (
            c("$.choices[0].delta.content"),
            c("$.choices[0].delta.reasoning"),
        ),
        (c("$.choices[*].delta.content"), None),
        (c("$.choices[-1].delta.content"), None),
    ]
}

#[test]
fn the_fast_path_changes_nothing_on_tricky_events() {
    let docs = [
        r#"{"choices":[{"index":0,"delta":{"content":"a"},"finish_reason":null}]}"#,
        r#"{"choices":[{"index":1,"delta":{"content":"b"}}]}"#,
        r#"{"choices":[{"index":-1,"delta":{"content":"c"}}]}"#,
        r#"{"choices":[{"index":1.0,"delta":{"content":"c"}}]}"#,
        r#"{"choices":[{"delta":{"content":"x","content":"y"}}],"choices":[{"delta":{"content":"z"}}]}"#,
        r#"{"choices":[{"delta":{"content":"x"}}],"choices":{"0":{"delta":{"content":"y"},"finish_reason":"obj"}}}"#,
        r#"{"choices":[{"delta":{"content":null}}]}"#,
        r#"{"choices":[{"delta":{"content":7}}]}"#,
        r#"{"choices":[{"delta":{"content":["a"]}}]}"#,
        r#"{"choices":[{"delta":{"content":"esc \" \n \u00e9 \ud83d\udc4b"}}]}"#,
        r#"{"choices":[{"delta":{"content":"lone \ud83d"}}]}"#,
        r#"{"choices":[{"delta":{"content":"\udc4b end"}}]}"#,
        r#"{"x":"\ud800","choices":[{"delta":{"content":"other field lone"}}]}"#,
        "{\"choices\":[{\"delta\":{\"content\":\"marker \u{FDD0}d83d here\"}}]}",
        r#"{"choices":[{"delta":{"content":"n"}}],"big":1e400}"#,
        r#"{"choices":[{"delta":{"content":"n"}}],"neg":-0.0,"u":18446744073709551615,"i":-9223372036854775808}"#,
        r#"{"choices":[{"delta":{"content":"trailing"}}]}   "#,
        r#"{"choices":[{"delta":{"content":"garbage"}}]} x"#,
        r#"{"error":null,"choices":[{"delta":{"content":"e0"}}]}"#,
        r#"{"error":false,"choices":[{"delta":{"content":"e1"}}]}"#,
        r#"{"error":"","choices":[{"delta":{"content":"e2"}}]}"#,
        r#"{"error":{},"choices":[{"delta":{"content":"e3"}}]}"#,
        r#"{"error":0,"choices":[{"delta":{"content":"e4"}}]}"#,
        r#"{"error":{"message":"boom"},"choices":[{"delta":{"content":"e5"}}]}"#,
        r#"{"usage":null,"choices":[{"delta":{"content":"u0"}}]}"#,
        r#"{"usage":5,"usageMetadata":{"t":1},"choices":[{"delta":{"content":"u1"}}]}"#,
        r#"{"usageMetadata":{"t":2},"choices":[]}"#,
        r#"{"choices":[],"usage":{"total_tokens":3}}"#,
        r#"{"choices":[{"delta":{},"finish_reason":"stop"}]}"#,
        r#"{"choices":[{"delta":{},"finish_reason":"null"}]}"#,
        r#"{"choices":[{"delta":{},"finish_reason":""}],"done_reason":"x"}"#,
        r#"{"candidates":[{"finishReason":"STOP","content":{"parts":[{"text":"g"}]}}]}"#,
        r#"{"delta":{"stop_reason":"end_turn","text":"t"}}"#,
        r#"{"message":{"content":"olla"},"done_reason":"stop","done":true}"#,
        r#"{"response":"gen"}"#,
        r#"{"content":[{"type":"text","text":"full"}]}"#,
        r#"{"choices":[{"message":{"content":"m"}}]}"#,
        r#"{"choices":[{"delta":{"reasoning_content":"think","content":""}}]}"#,
        r#"{"choices":[{"delta":{"reasoning":"r","content":"c"}}]}"#,
        r#"{"$serde_json::private::RawValue":"{\"choices\":[]}"}"#,
        r#"["choices"]"#,
        r#"[{"error":"in array"}]"#,
        r#""just a string""#,
        "42",
        "null",
        "plain text",
        r#"{"choices":[{"delta":{"content":"a"}}"#,
        r#"{"choices":[{"delta":{"content":"after"}}]}"#,
        r#"{"choices":[{"delta":{"content":"Hi"}}],"logprob":-Infinity}"#,
        r#"{"choices":[{"index":0,"delta":{"content":"nan"},"logprobs":{"x":[NaN,Infinity]}}]}"#,
        r#"{"choices":[{"delta":{"content":NaN}}]}"#,
        r#"{"choices":[{"delta":{"content":"fin"},"finish_reason":"stop"}],"usage":{"t":Infinity}}"#,
        r#"{"choices":[{"delta":{"content":"NaN in text"}}],"p":-Infinity}"#,
        r#"{"choices":[{"delta":{"content":"bad"}}],"x":Infinite}"#,
        r#"[{"choices":NaN]"#,
        "[1] a footnote",
    ];
    let message = |d: &str| data(d);
    let error_typed = |d: &str| Event::Data {
        event_type: "error".into(),
        data: d.into(),
    };
    // Each document alone, then all of them in order, in both orders.
    for (content, reasoning) in path_sets() {
        let what = format!(
            "{:?} / {:?}",
            content.as_ref().map(|p| &p.source),
            reasoning.as_ref().map(|p| &p.source)
        );
        for d in docs {
            same_with_and_without_fast_path(
                content.as_ref(),
                reasoning.as_ref(),
                &[
                    message(d),
                    message(r#"{"choices":[{"delta":{"content":"z"}}]}"#),
                ],
                ResponseType::Sse,
                &format!("{what}: {d}"),
            );
        }
        let mut all: Vec<Event> = docs.iter().map(|d| message(d)).collect();
        all.push(error_typed(r#"{"error":{"message":"typed"}}"#));
        same_with_and_without_fast_path(
            content.as_ref(),
            reasoning.as_ref(),
            &all,
            ResponseType::Sse,
            &what,
        );
        all.reverse();
        same_with_and_without_fast_path(
            content.as_ref(),
            reasoning.as_ref(),
            &all,
            ResponseType::Json,
            &what,
        );
    }
}

#[test]
fn the_fast_path_changes_nothing_on_the_captured_provider_responses() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    let mut bodies = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let response_type = if name.ends_with(".sse") {
            ResponseType::Sse
        } else if name.ends_with(".ndjson") {
            ResponseType::Ndjson
        } else if name.ends_with(".json") && !name.ends_with(".meta.json") && name != "INDEX.json" {
            ResponseType::Json
        } else {
            continue;
        };
        let body = std::fs::read(&path).unwrap();
        let mut decoder = crate::decode::BodyDecoder::new(response_type, 1 << 24, 1 << 26);
        let mut events = Vec::new();
        let _ = decoder.feed(&body, &mut events);
        let _ = decoder.finish(&mut events);
        let meta = path.with_extension("meta.json");
        let configured = std::fs::read_to_string(meta)
            .ok()
            .and_then(|m| serde_json::from_str::<Value>(&m).ok())
            .and_then(|m| m["jsonpath"].as_str().map(str::to_owned))
            .and_then(|p| CompiledPath::compile(&p).ok());
        let mut sets = path_sets();
        sets.push((configured, None));
        for (content, reasoning) in &sets {
            same_with_and_without_fast_path(
                content.as_ref(),
                reasoning.as_ref(),
                &events,
                decoder.response_type(),
                &format!("{name} with {:?}", content.as_ref().map(|p| &p.source)),
            );
        }
        bodies += 1;
    }
    assert!(bodies >= 50, "{bodies} bodies");
}

#[test]
fn non_finite_numbers_are_read_and_json_that_cannot_be_read_is_never_text() {
    let c = |p: &str| CompiledPath::compile(p).unwrap();
    let delta = c("$.choices[0].delta.content");
    for content in [None, Some(&delta)] {
        for fast in [true, false] {
            let mut x = Extractor::new(content, None);
            if !fast {
                x = x.without_fast_path();
            }
            let what = format!("{content:?}, fast {fast}");
            let events = [
                r#"{"choices":[{"delta":{"content":"Hi"}}],"logprob":-Infinity}"#,
                r#"{"choices":[{"delta":{"content":" there"}}],"logprob":NaN}"#,
                r#"{"choices":[{"delta":{"content":"lost"}}],"x":Infinite}"#,
                r#"{"choices":[{"delta":{"content":"cut"#,
            ];
            let mut text = String::new();
            for event in events {
                match x.apply(&data(event)) {
                    Outcome::Text(p) => text.push_str(&p.content),
                    other => panic!("{what}: {other:?}"),
                }
            }
            assert_eq!(text, "Hi there", "{what}");
            let warnings = x.warnings(ResponseType::Sse);
            assert_eq!(warnings.len(), 1, "{what}: {warnings:?}");
            assert!(
                warnings[0].starts_with("2 events of the response could not be read as JSON")
                    && warnings[0].contains("Infinite"),
                "{what}: {warnings:?}"
            );
        }
    }
    // Plain text is still the answer when no path is configured.
    let mut x = Extractor::new(None, None);
    assert_eq!(
        x.apply(&data("[1] a footnote")),
        Outcome::Text(Pieces {
            content: "[1] a footnote".into(),
            reasoning: String::new()
        })
    );
    assert!(x.warnings(ResponseType::Sse).is_empty());
}
