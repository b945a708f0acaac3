//! Streaming a completion: `llm/chunk` notifications, the result object, the SSE / NDJSON / JSON
//! readers, bodies split at every byte, Content-Type mismatches, default paths and extraction.

mod common;

use common::*;
use serde_json::{Value, json};

/// `{"t": text}`: a one-field event read with the path `$.t`.
fn t(text: &str) -> String {
    json!({ "t": text }).to_string()
}

fn t_settings(url: String) -> Settings {
    Settings::sse(url, "$.t")
}

/// Text of an SSE body read with `$.t`.
fn sse_text(body: &str) -> String {
    text_of(MockResponse::sse(body), t_settings)
}

fn assert_warned_about_content_type(sidecar: &Sidecar) {
    assert!(
        sidecar.wait_stderr(WAIT, |text| text.lines().any(is_content_type_warning)),
        "expected a warning about the Content-Type on stderr, got:\n{}",
        sidecar.stderr_text()
    );
}

#[test]
fn chunks_are_numbered_in_order_and_all_arrive_before_the_response() {
    let usage = json!({"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8});
    let body = [
        sse_event(
            &json!({
                "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null}],
                "usage": null
            })
            .to_string(),
        ),
        sse_event(&openai_delta("Hel")),
        sse_event(&openai_delta("lo")),
        sse_event(&openai_delta(", world")),
        sse_event(
            &json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "usage": null})
                .to_string(),
        ),
        sse_event(&json!({"choices": [], "usage": usage}).to_string()),
        sse_event("[DONE]"),
    ]
    .concat();
    let mock = MockLlm::always(MockResponse::sse(body));
    let mut sidecar = Sidecar::spawn();
    let reply = complete_streamed(&mut sidecar, Settings::sse(mock.url("/v1"), DELTA_PATH));

    let chunks = reply.checked_chunks(&json!("s"));
    let texts: Vec<&str> = chunks.iter().map(|c| c.text.as_str()).collect();
    assert_eq!(texts, ["Hel", "lo", ", world"]);
    assert!(chunks.iter().all(|c| c.kind == "content"));

    let result = reply.result();
    assert_eq!(result["text"], "Hello, world");
    assert_eq!(result["chunks"], 3);
    assert_eq!(result["finishReason"], "stop");
    assert_eq!(result["usage"], usage, "the last usage object, as is");
    assert_eq!(result["responseType"], "sse");
    assert_eq!(result["status"], 200);
    assert_eq!(result["contentType"], "text/event-stream");
    assert_eq!(result.get("reasoning"), None, "no reasoning was extracted");
    let timings = &result["timings"];
    let [first_byte, first_chunk, total] =
        ["firstByteMs", "firstChunkMs", "totalMs"].map(|key| timings[key].as_u64());
    assert!(
        first_byte.is_some() && first_chunk.is_some() && total.is_some(),
        "timings: {timings}"
    );
    assert!(
        first_byte <= first_chunk && first_chunk <= total,
        "firstByteMs <= firstChunkMs <= totalMs: {timings}"
    );
    assert_eq!(timings["attempts"], 1);

    // No chunk of this stream may follow its response.
    assert_still_serving(&mut sidecar);
    assert_eq!(sidecar.collect_chunks(&json!("s")), chunks);
}

#[test]
fn chunks_are_sent_while_the_llm_server_is_still_generating() {
    let second_half = Gate::new();
    let mock = MockLlm::always(
        MockResponse::sse(sse_event(&openai_delta("first ")))
            .chunked()
            .piece_after(Before::Gate(second_half.clone()), openai_sse(&["second"])),
    );
    let mut sidecar = Sidecar::spawn();
    let params = Settings::sse(mock.url("/v1"), DELTA_PATH)
        .params()
        .stream_id("live")
        .build();
    let id = sidecar.request("llm/complete", params);

    // The second piece is only sent once chunk 0 has been seen here, so chunk 0 cannot have been
    // held back until the end of the body.
    let first = sidecar.wait_chunk(&json!("live"), 0, WAIT);
    assert_eq!(first.text, "first ");
    assert!(
        !sidecar
            .transcript()
            .iter()
            .any(|m| m.get("id") == Some(&id)),
        "no response before the body has ended"
    );
    second_half.open();

    let reply = sidecar.wait_response(&id, WAIT);
    assert_eq!(reply.result()["text"], "first second");
    let texts: Vec<String> = reply
        .checked_chunks(&json!("live"))
        .into_iter()
        .map(|c| c.text)
        .collect();
    assert_eq!(texts, ["first ", "second"]);
}

#[test]
fn no_chunks_are_sent_without_a_stream_id() {
    let mock = MockLlm::always(MockResponse::sse(openai_sse(&["a", "b", "c"])));
    let mut sidecar = Sidecar::spawn();
    let reply = sidecar.complete(Settings::sse(mock.url("/v1"), DELTA_PATH).params().build());
    let result = reply.result();
    assert_eq!(result["text"], "abc");
    assert_eq!(result["chunks"], 3, "chunks counts the pieces even unsent");
    assert_still_serving(&mut sidecar);
    let chunk_count = sidecar
        .transcript()
        .iter()
        .filter(|m| m["method"] == "llm/chunk")
        .count();
    assert_eq!(chunk_count, 0, "no llm/chunk without streamId");
}

#[test]
fn a_numeric_stream_id_is_echoed_as_a_number() {
    let mock = MockLlm::always(MockResponse::sse(openai_sse(&["x", "y"])));
    let mut sidecar = Sidecar::spawn();
    let params = Settings::sse(mock.url("/v1"), DELTA_PATH)
        .params()
        .stream_id(7)
        .build();
    let reply = sidecar.complete(params);
    assert_eq!(reply.checked_chunks(&json!(7)).len(), 2);
    assert!(reply.chunks(&json!("7")).is_empty());
}

#[test]
fn empty_and_null_pieces_send_nothing_and_are_not_counted() {
    let events = [
        json!({"choices": [{"delta": {"role": "assistant", "content": ""}}]}),
        json!({"choices": [{"delta": {"content": null}}]}),
        json!({"choices": [{"delta": {}}]}),
        json!({"choices": []}),
        json!({"choices": null}),
        json!({"choices": [{"delta": {"content": "A"}}]}),
        json!({"choices": [{"delta": {"content": ""}}]}),
        json!({"choices": [{"delta": {"content": "B"}}]}),
    ];
    let mut body: String = events.iter().map(|e| sse_event(&e.to_string())).collect();
    body.push_str(&sse_event("[DONE]"));
    let mock = MockLlm::always(MockResponse::sse(body));
    let mut sidecar = Sidecar::spawn();
    let reply = complete_streamed(&mut sidecar, Settings::sse(mock.url("/v1"), DELTA_PATH));
    let texts: Vec<String> = reply
        .checked_chunks(&json!("s"))
        .into_iter()
        .map(|c| c.text)
        .collect();
    assert_eq!(texts, ["A", "B"]);
    assert_eq!(reply.result()["chunks"], 2);
}

#[test]
fn finish_reason_and_usage_are_read_for_each_server_family() {
    let gemini_usage =
        json!({"promptTokenCount": 3, "candidatesTokenCount": 2, "totalTokenCount": 5});
    let gemini = [
        json!({
            "candidates": [{"content": {"parts": [{"text": "Hi"}], "role": "model"}}],
            "usageMetadata": {"promptTokenCount": 3}
        }),
        json!({
            "candidates": [{"content": {"parts": [{"text": "!"}], "role": "model"}, "finishReason": "STOP"}],
            "usageMetadata": gemini_usage
        }),
    ];
    let anthropic = [
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n",
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":5}}\n\n",
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
    ]
    .concat();
    let ollama = [
        json!({"model": "m", "message": {"role": "assistant", "content": "Hi"}, "done": false}),
        json!({"model": "m", "message": {"role": "assistant", "content": ""}, "done": true, "done_reason": "stop"}),
    ]
    .iter()
    .map(|e| format!("{e}\n"))
    .collect::<String>();

    struct Case {
        family: &'static str,
        response: MockResponse,
        /// Settings without customEngineServer.
        settings: Settings,
        text: &'static str,
        finish_reason: Value,
        usage: Value,
    }
    let cases = [
        Case {
            family: "gemini",
            response: MockResponse::sse(
                gemini
                    .iter()
                    .map(|e| format!("data: {e}\r\n\r\n"))
                    .collect::<String>(),
            ),
            settings: Settings::sse("", "$.candidates[0].content.parts[0].text"),
            text: "Hi!",
            finish_reason: json!("STOP"),
            usage: gemini_usage,
        },
        Case {
            family: "anthropic",
            response: MockResponse::sse(anthropic),
            settings: Settings::sse("", "$.delta.text"),
            text: "Hi",
            finish_reason: json!("end_turn"),
            usage: json!({"output_tokens": 5}),
        },
        Case {
            family: "ollama",
            response: MockResponse::new(200)
                .content_type("application/x-ndjson")
                .piece(ollama),
            settings: Settings::new("")
                .response_type("NDJSON")
                .path("$.message.content"),
            text: "Hi",
            finish_reason: json!("stop"),
            usage: Value::Null,
        },
    ];
    let mut failures = Vec::new();
    for case in cases {
        let mock = MockLlm::always(case.response);
        let mut sidecar = Sidecar::spawn();
        let settings = case.settings.set("customEngineServer", mock.url("/v1"));
        let reply = complete_streamed(&mut sidecar, settings);
        let result = reply.result();
        let usage = result.get("usage").cloned().unwrap_or(Value::Null);
        if result["text"] != case.text
            || result["finishReason"] != case.finish_reason
            || usage != case.usage
        {
            failures.push(format!(
                "{}: expected text {:?}, finishReason {} and usage {}, got {result}",
                case.family, case.text, case.finish_reason, case.usage
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn finish_reason_is_absent_when_the_server_sent_none() {
    let mock = MockLlm::always(MockResponse::sse(openai_sse(&["x"])));
    let mut sidecar = Sidecar::spawn();
    let reply = complete_streamed(&mut sidecar, Settings::sse(mock.url("/v1"), DELTA_PATH));
    let result = reply.result();
    assert!(
        result.get("finishReason").is_none_or(Value::is_null),
        "{result}"
    );
    assert!(result.get("usage").is_none_or(Value::is_null), "{result}");
}

#[test]
fn reasoning_is_streamed_with_its_own_kind_and_result_field() {
    let events = [
        json!({"choices": [{"delta": {"reasoning_content": "Think", "content": null}}]}),
        json!({"choices": [{"delta": {"reasoning_content": "ing.", "content": null}}]}),
        json!({"choices": [{"delta": {"reasoning_content": null, "content": "Answer"}}]}),
    ];
    let mut body: String = events.iter().map(|e| sse_event(&e.to_string())).collect();
    body.push_str(&sse_event("[DONE]"));
    let mock = MockLlm::always(MockResponse::sse(body));
    let mut sidecar = Sidecar::spawn();
    let settings = Settings::sse(mock.url("/v1"), DELTA_PATH)
        .reasoning("$.choices[0].delta.reasoning_content");
    let reply = complete_streamed(&mut sidecar, settings);
    let chunks = reply.checked_chunks(&json!("s"));
    let kinds: Vec<(&str, &str)> = chunks
        .iter()
        .map(|c| (c.kind.as_str(), c.text.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("reasoning", "Think"),
            ("reasoning", "ing."),
            ("content", "Answer")
        ],
        "seq counts across both kinds"
    );
    let result = reply.result();
    assert_eq!(result["text"], "Answer");
    assert_eq!(result["reasoning"], "Thinking.");
    assert_eq!(result["chunks"], 3);
}

#[test]
fn sse_leading_bom_is_skipped() {
    let body = format!("\u{FEFF}{}{}", sse_event(&t("A")), sse_event(&t("B")));
    assert_eq!(sse_text(&body), "AB");
}

#[test]
fn sse_lines_may_end_with_cr_lf_or_crlf() {
    let bodies = [
        ("LF", format!("data: {}\n\ndata: {}\n\n", t("A"), t("B"))),
        (
            "CRLF",
            format!("data: {}\r\n\r\ndata: {}\r\n\r\n", t("A"), t("B")),
        ),
        ("CR", format!("data: {}\r\rdata: {}\r\r", t("A"), t("B"))),
        (
            "mixed",
            format!("data: {}\r\n\ndata: {}\r\r\n", t("A"), t("B")),
        ),
    ];
    let mut failures = Vec::new();
    for (name, body) in bodies {
        let text = sse_text(&body);
        if text != "AB" {
            failures.push(format!("{name}: got {text:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn sse_comment_lines_are_ignored() {
    let body = format!(
        ": OPENROUTER PROCESSING\n\n: keep-alive\ndata: {}\n: inside an event\n\n:\n\ndata: {}\n\n",
        t("A"),
        t("B")
    );
    assert_eq!(sse_text(&body), "AB");
}

#[test]
fn sse_field_rules_apply_to_plain_text_data() {
    // Without customEngineResponseFormat, non-JSON data is the text itself, so these bodies show
    // exactly what the SSE reader made of each line.
    let cases = [
        (
            "a line without a colon is a field with an empty value",
            "data: a\ndata\ndata: b\n\n",
            "a\n\nb",
        ),
        (
            "one space after the colon is removed",
            "data:x\n\ndata: y\n\ndata:  z\n\n",
            "xy z",
        ),
        (
            "several data lines are joined with \\n",
            "data: line1\ndata: line2\n\n",
            "line1\nline2",
        ),
        (
            "plain text events are concatenated",
            "data: Hello\n\ndata:  world\n\n",
            "Hello world",
        ),
    ];
    let mut failures = Vec::new();
    for (rule, body, expected) in cases {
        let text = text_of(MockResponse::sse(body), |url| {
            Settings::new(url).response_type("SSE")
        });
        if text != expected {
            failures.push(format!(
                "{rule}: body {body:?} gave {text:?}, expected {expected:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn sse_json_data_may_span_several_data_lines_without_a_space() {
    let body = "data:{\"t\":\ndata: \"A\"}\n\ndata:{\"t\":\"B\"}\n\n";
    assert_eq!(sse_text(body), "AB");
}

#[test]
fn sse_event_id_retry_and_unknown_fields_are_accepted() {
    let body = format!(
        "event: message\nid: 1\nretry: 10000\ndata: {}\n\n\
         event: content_block_delta\nid\ndata: {}\n\n\
         unknown: x\ndata: {}\n\n",
        t("A"),
        t("B"),
        t("C")
    );
    assert_eq!(sse_text(&body), "ABC", "events of any type are read");
}

#[test]
fn sse_done_ends_the_stream_even_if_more_follows() {
    let body = format!(
        "{}{}{}",
        sse_event(&t("A")),
        sse_event("[DONE]"),
        sse_event(&t("B"))
    );
    assert_eq!(sse_text(&body), "A");
}

#[test]
fn sse_done_completes_the_request_while_the_connection_stays_open() {
    let response = MockResponse::sse(sse_event(&t("A")))
        .chunked()
        .piece(sse_event("[DONE]"))
        .then_hang();
    assert_eq!(text_of(response, t_settings), "A");
}

#[test]
fn sse_last_event_without_a_blank_line_is_still_dispatched() {
    let mut failures = Vec::new();
    for (name, ending) in [("no newline", ""), ("one LF", "\n"), ("one CRLF", "\r\n")] {
        let body = format!("{}data: {}{ending}", sse_event(&t("A")), t("B"));
        let text = sse_text(&body);
        if text != "AB" {
            failures.push(format!("{name}: got {text:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Serves `body` split in two at every byte offset (and once byte by byte) and checks that each
/// completion gives `expected`, with chunks adding up to it. Reports every failing offset.
fn assert_every_split_gives(
    body: &[u8],
    content_type: &str,
    settings: impl Fn(String) -> Settings,
    expected: &str,
) {
    let owned_body = body.to_vec();
    let content_type = content_type.to_owned();
    let mock = MockLlm::start(move |request| {
        let k: usize = request.path.rsplit('/').next().unwrap().parse().unwrap();
        let pieces: Vec<Vec<u8>> = if k == 0 {
            owned_body.iter().map(|b| vec![*b]).collect()
        } else {
            vec![owned_body[..k].to_vec(), owned_body[k..].to_vec()]
        };
        // The delay makes it likely that each piece reaches the sidecar in its own read.
        MockResponse::new(200)
            .content_type(&content_type)
            .chunked()
            .pieces_with_delay(pieces, std::time::Duration::from_millis(1))
    });
    let mut sidecar = Sidecar::spawn();
    let mut failures = Vec::new();
    for k in 0..body.len() {
        let reply = sidecar.complete(
            settings(mock.url(&format!("/split/{k}")))
                .params()
                .stream_id("s")
                .build(),
        );
        let what = if k == 0 {
            "byte by byte".to_owned()
        } else {
            format!("split at byte {k}")
        };
        match reply.response.get("result") {
            Some(result) if result["text"] == expected => {
                let chunks = reply.checked_chunks(&json!("s"));
                let streamed = joined(&chunks, "content");
                if streamed != expected {
                    failures.push(format!("{what}: chunks add up to {streamed:?}"));
                }
            }
            _ => failures.push(format!("{what}: {}", reply.response)),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} splits failed:\n{}",
        failures.len(),
        body.len(),
        failures.join("\n")
    );
}

#[test]
fn every_split_of_an_sse_body_gives_the_same_text() {
    let body = [
        ": comment with é\r\n".to_owned(),
        format!("data: {}\r\n\r\n", openai_delta("Olá é")),
        sse_event(&openai_delta("😊 ok")),
        format!("data: {}\r\r", openai_delta("秋风瑟瑟")),
        sse_event("[DONE]"),
    ]
    .concat();
    assert_every_split_gives(
        body.as_bytes(),
        "text/event-stream",
        |url| Settings::sse(url, DELTA_PATH),
        "Olá é😊 ok秋风瑟瑟",
    );
}

#[test]
fn every_split_of_a_plain_text_sse_body_gives_the_same_text() {
    let body = "data: é😊\n\ndata: 秋风\r\n\r\n";
    assert_every_split_gives(
        body.as_bytes(),
        "text/event-stream",
        |url| Settings::new(url).response_type("SSE"),
        "é😊秋风",
    );
}

#[test]
fn every_split_of_an_ndjson_body_gives_the_same_text() {
    let body = "{\"response\":\"é\"}\n{\"response\":\"😊\"}\r\n\n{\"response\":\"秋风\"}";
    assert_every_split_gives(
        body.as_bytes(),
        "application/x-ndjson",
        |url| {
            Settings::new(url)
                .response_type("NDJSON")
                .path("$.response")
        },
        "é😊秋风",
    );
}

#[test]
fn every_split_of_a_json_body_gives_the_same_text() {
    let body = pretty(&openai_message("é 😊 秋风"));
    assert_every_split_gives(
        body.as_bytes(),
        "application/json",
        |url| Settings::new(url).response_type("JSON").path(MESSAGE_PATH),
        "é 😊 秋风",
    );
}

#[test]
fn ndjson_every_non_empty_line_is_one_event() {
    let body = "{\"response\":\"A\"}\n\n{\"response\":\"B\"}\r\n{\"response\":\"C\"}";
    let mock = MockLlm::always(
        MockResponse::new(200)
            .content_type("application/x-ndjson")
            .piece(body),
    );
    let mut sidecar = Sidecar::spawn();
    let settings = Settings::new(mock.url("/api/generate"))
        .response_type("NDJSON")
        .path("$.response");
    let reply = complete_streamed(&mut sidecar, settings);
    let result = reply.result();
    assert_eq!(result["text"], "ABC");
    assert_eq!(result["chunks"], 3);
    assert_eq!(result["responseType"], "ndjson");
}

#[test]
fn json_body_is_one_event() {
    let body = pretty(&openai_message("Hi there"));
    let mock = MockLlm::always(MockResponse::json(200, body));
    let mut sidecar = Sidecar::spawn();
    let settings = Settings::new(mock.url("/v1"))
        .response_type("JSON")
        .path(MESSAGE_PATH);
    let reply = complete_streamed(&mut sidecar, settings);
    let result = reply.result();
    assert_eq!(result["text"], "Hi there");
    assert_eq!(result["chunks"], 1);
    assert_eq!(result["finishReason"], "stop");
    assert_eq!(result["responseType"], "json");
}

#[test]
fn sse_configured_but_json_content_type_is_read_as_json_with_a_warning() {
    let body = pretty(&openai_message("from json"));
    let mock = MockLlm::always(MockResponse::json(200, body));
    let mut sidecar = Sidecar::spawn();
    let reply = complete_streamed(&mut sidecar, Settings::sse(mock.url("/v1"), MESSAGE_PATH));
    assert_eq!(reply.result()["text"], "from json");
    assert_eq!(reply.result()["responseType"], "json");
    assert_warned_about_content_type(&sidecar);
}

#[test]
fn json_configured_but_event_stream_content_type_is_read_as_sse_with_a_warning() {
    let mock = MockLlm::always(MockResponse::sse(openai_sse(&["from ", "sse"])));
    let mut sidecar = Sidecar::spawn();
    let settings = Settings::new(mock.url("/v1"))
        .response_type("JSON")
        .path(DELTA_PATH);
    let reply = complete_streamed(&mut sidecar, settings);
    assert_eq!(reply.result()["text"], "from sse");
    assert_eq!(reply.result()["responseType"], "sse");
    assert_eq!(reply.result()["chunks"], 2);
    assert_warned_about_content_type(&sidecar);
}

#[test]
fn sse_configured_but_ndjson_content_type_is_read_as_ndjson_with_a_warning() {
    let body = "{\"response\":\"a\"}\n{\"response\":\"b\"}\n";
    let mock = MockLlm::always(
        MockResponse::new(200)
            .content_type("application/x-ndjson")
            .piece(body),
    );
    let mut sidecar = Sidecar::spawn();
    let reply = complete_streamed(
        &mut sidecar,
        Settings::sse(mock.url("/api/generate"), "$.response"),
    );
    assert_eq!(reply.result()["text"], "ab");
    assert_eq!(reply.result()["responseType"], "ndjson");
    assert_warned_about_content_type(&sidecar);
}

#[test]
fn default_path_reads_delta_content_from_streams_and_message_content_from_json() {
    let message_events: String = ["A", "B"]
        .iter()
        .map(|text| sse_event(&json!({"choices": [{"message": {"content": text}}]}).to_string()))
        .collect();
    let cases = [
        (
            "SSE, path absent",
            MockResponse::sse(openai_sse(&["de", "lta"])),
            Settings::new("").response_type("SSE"),
            "delta",
        ),
        (
            "SSE, path empty",
            MockResponse::sse(openai_sse(&["de", "lta"])),
            Settings::new("").response_type("SSE").path(""),
            "delta",
        ),
        (
            "no type, no path",
            MockResponse::sse(openai_sse(&["de", "lta"])),
            Settings::new(""),
            "delta",
        ),
        (
            "SSE, message.content fallback",
            MockResponse::sse(message_events),
            Settings::new("").response_type("SSE"),
            "AB",
        ),
        (
            "JSON, path absent",
            MockResponse::json(200, openai_message("whole")),
            Settings::new("").response_type("JSON"),
            "whole",
        ),
        (
            "JSON, path empty",
            MockResponse::json(200, openai_message("whole")),
            Settings::new("").response_type("JSON").path(""),
            "whole",
        ),
    ];
    let mut failures = Vec::new();
    for (name, response, settings, expected) in cases {
        let mock = MockLlm::always(response);
        let mut sidecar = Sidecar::spawn();
        let settings = settings.set("customEngineServer", mock.url("/v1"));
        let reply = sidecar.complete(settings.params().build());
        if reply.response["result"]["text"] != expected {
            failures.push(format!(
                "{name}: expected {expected:?}, got {}",
                reply.response
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn several_string_matches_in_one_event_are_joined() {
    let body = [
        sse_event(
            &json!({"choices": [{"delta": {"content": "a"}}, {"delta": {"content": "b"}}]})
                .to_string(),
        ),
        sse_event(&json!({"choices": [{"delta": {"content": "c"}}]}).to_string()),
        sse_event("[DONE]"),
    ]
    .concat();
    let text = text_of(MockResponse::sse(body), |url| {
        Settings::sse(url, "$.choices[*].delta.content")
    });
    assert_eq!(text, "abc");
}

#[test]
fn only_string_results_are_appended() {
    let values = [
        json!("a"),
        json!(5),
        json!({"x": "no"}),
        json!(null),
        json!(true),
        json!(["no"]),
        json!("b"),
    ];
    let body: String = values
        .iter()
        .map(|v| sse_event(&json!({ "t": v }).to_string()))
        .collect();
    assert_eq!(sse_text(&body), "ab");
}

#[test]
fn utf16_surrogate_halves_split_across_events_are_rejoined() {
    // JSON escapes as Node-based servers send them: one character split over two events.
    let body = "data: {\"t\":\"wave \\ud83d\"}\n\ndata: {\"t\":\"\\udc4b!\"}\n\n";
    let text = text_of(MockResponse::sse(body), t_settings);
    assert_eq!(text, "wave \u{1F44B}!");
}

#[test]
fn lone_surrogates_and_invalid_utf8_become_replacement_characters() {
    let mut body = b"data: {\"t\":\"a\\ud83db\"}\n\ndata: {\"t\":\"c".to_vec();
    body.push(0xff);
    body.extend_from_slice(b"d\"}\n\n");
    let text = text_of(MockResponse::sse(body), t_settings);
    assert_eq!(text, "a\u{FFFD}bc\u{FFFD}d");
}

#[test]
fn python_non_finite_numbers_are_read_and_unreadable_json_is_counted_not_answered() {
    // Python's json.dumps writes -Infinity and NaN; one event is JSON that cannot be read at all.
    let body = [
        r#"{"choices":[{"delta":{"content":"Hi"}}],"logprob":-Infinity}"#,
        r#"{"choices":[{"delta":{"content":" there"}}],"logprobs":[NaN,Infinity]}"#,
        r#"{"choices":[{"delta":{"content":" lost"}}],"logprob":-Inf}"#,
    ]
    .iter()
    .map(|e| sse_event(e))
    .collect::<String>()
        + &sse_event("[DONE]");
    let mock = MockLlm::always(MockResponse::sse(body));
    let mut sidecar = Sidecar::spawn();
    for path in [Some(DELTA_PATH), None] {
        let mut settings = Settings::sse(mock.url("/v1/chat/completions"), DELTA_PATH);
        if path.is_none() {
            settings = settings.remove("customEngineResponseFormat");
        }
        let reply = complete_streamed(&mut sidecar, settings);
        let result = reply.result();
        assert_eq!(result["text"], "Hi there", "{path:?}: {result}");
        let warnings = result["warnings"].as_array().expect("warnings");
        assert_eq!(warnings.len(), 1, "{path:?}: {result}");
        let warning = warnings[0].as_str().unwrap();
        assert!(
            warning.starts_with("1 event of the response could not be read as JSON")
                && warning.contains("-Inf}"),
            "{warning}"
        );
    }
}
