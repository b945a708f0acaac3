//! Bad JSON-RPC input never stops the server: malformed frames and bodies get a parse error (or
//! invalid request) and the next frame is served; unknown methods get `-32601`; an oversized frame
//! is refused before it has been read, without buffering it; a panicking handler becomes `-32603`
//! and the process keeps serving, completions in flight included.

mod common;

use std::time::Duration;

use common::procfs::{spawn_tracked, vm_hwm_kib};
use common::*;
use serde_json::{Value, json};

const MIB: usize = 1024 * 1024;
const INTERNAL_ERROR: i64 = -32603;

/// Waits for the next error with `code` received after transcript position `from`.
fn wait_error_from(sidecar: &mut Sidecar, from: usize, code: i64, what: &str) -> Value {
    let index = sidecar.wait_for_from(from, WAIT, what, |msg| {
        msg.get("method").is_none() && msg["error"]["code"] == json!(code)
    });
    sidecar.transcript()[index].clone()
}

/// A frame with a correct `Content-Length` around `body`.
fn frame(body: &[u8]) -> Vec<u8> {
    [
        format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes(),
        body.to_vec(),
    ]
    .concat()
}

#[test]
fn malformed_frame_headers_get_a_parse_error_and_the_next_frame_is_served() {
    let cases: [(&str, Vec<u8>); 7] = [
        (
            "a Content-Length that is not a number",
            b"Content-Length: abc\r\n\r\n".to_vec(),
        ),
        (
            "a negative Content-Length",
            b"Content-Length: -5\r\n\r\n".to_vec(),
        ),
        (
            "a Content-Length that overflows",
            b"Content-Length: 99999999999999999999999999\r\n\r\n".to_vec(),
        ),
        (
            "no Content-Length",
            b"Content-Type: application/vscode-jsonrpc\r\n\r\n".to_vec(),
        ),
        (
            "a header line without a colon",
            b"this is not a header\r\n\r\n".to_vec(),
        ),
        (
            "a non-ASCII header",
            b"Content-L\xc3\xa9ngth: 5\r\n\r\n".to_vec(),
        ),
        ("10 KiB without the end of a header", vec![b'h'; 10 * 1024]),
    ];
    let mut sidecar = Sidecar::spawn();
    for (what, bytes) in cases {
        let before = sidecar.transcript().len();
        sidecar.write_raw(&bytes);
        let answer = wait_error_from(&mut sidecar, before, PARSE_ERROR, what);
        assert_eq!(answer["id"], Value::Null, "{what}: {answer}");
        // Whatever is left of the bad header is ended by a blank line; the next frame is read.
        sidecar.write_raw(b"\r\n\r\n");
        assert_still_serving(&mut sidecar);
    }
    assert_eq!(sidecar.finish().code(), Some(0));
}

#[test]
fn bodies_that_are_not_json_rpc_requests_are_answered_and_the_server_keeps_serving() {
    let nested = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let cases: Vec<(&str, Vec<u8>, i64)> = vec![
        ("an empty body", Vec::new(), PARSE_ERROR),
        (
            "truncated JSON without an id",
            b"{\"jsonrpc\": \"2.0\", \"method\"".to_vec(),
            PARSE_ERROR,
        ),
        ("100 000 nested arrays", nested.into_bytes(), PARSE_ERROR),
        ("a number", b"42".to_vec(), INVALID_REQUEST),
        ("a string", b"\"llm/complete\"".to_vec(), INVALID_REQUEST),
        ("null", b"null".to_vec(), INVALID_REQUEST),
        ("an empty object", b"{}".to_vec(), INVALID_REQUEST),
        ("an empty batch", b"[]".to_vec(), INVALID_REQUEST),
        (
            "a batch",
            br#"[{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}]"#.to_vec(),
            INVALID_REQUEST,
        ),
    ];
    let mut sidecar = Sidecar::spawn();
    for (what, body, code) in cases {
        let before = sidecar.transcript().len();
        sidecar.write_frame(&body);
        let answer = wait_error_from(&mut sidecar, before, code, what);
        assert_eq!(answer["id"], Value::Null, "{what}: {answer}");
        assert!(answer["error"]["message"].is_string(), "{what}: {answer}");
        assert_still_serving(&mut sidecar);
    }
    assert_eq!(sidecar.finish().code(), Some(0));
}

#[test]
fn broken_frames_whose_id_can_be_read_are_answered_to_it() {
    let cases: [(&str, &[u8], i64); 4] = [
        (
            "truncated JSON",
            b"{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\"",
            PARSE_ERROR,
        ),
        (
            "trailing garbage",
            b"{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"x\"} extra",
            PARSE_ERROR,
        ),
        (
            "an id inside params does not count",
            b"{\"jsonrpc\":\"2.0\",\"params\":{\"id\":9},\"id\":\"top\",\"method\":",
            PARSE_ERROR,
        ),
        // Invalid UTF-8 is read as U+FFFD, like a lone surrogate: here it spoils the method name.
        (
            "invalid UTF-8",
            b"{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"\xff\"}",
            METHOD_NOT_FOUND,
        ),
    ];
    let mut sidecar = Sidecar::spawn();
    for (what, body, code) in cases {
        let before = sidecar.transcript().len();
        sidecar.write_frame(body);
        let answer = wait_error_from(&mut sidecar, before, code, what);
        let expected = match what {
            "truncated JSON" => json!(1),
            "trailing garbage" => json!(2),
            "invalid UTF-8" => json!(4),
            _ => json!("top"),
        };
        assert_eq!(answer["id"], expected, "{what}: {answer}");
        assert_still_serving(&mut sidecar);
    }
    assert_eq!(sidecar.finish().code(), Some(0));
}

#[test]
fn requests_with_an_invalid_id_or_method_get_invalid_request() {
    let mut sidecar = Sidecar::spawn();
    for body in [
        json!({"jsonrpc": "2.0", "id": {"a": 1}, "method": "initialize"}),
        json!({"jsonrpc": "2.0", "id": [1], "method": "initialize"}),
        json!({"jsonrpc": "2.0", "id": true, "method": "initialize"}),
        json!({"jsonrpc": "2.0", "id": 7, "method": ["initialize"]}),
        json!({"jsonrpc": "2.0", "id": 8, "params": {}}),
    ] {
        let before = sidecar.transcript().len();
        sidecar.send(&body);
        let answer = wait_error_from(&mut sidecar, before, INVALID_REQUEST, &body.to_string());
        assert!(
            answer["id"].is_null() || answer["id"] == body["id"],
            "{body}: {answer}"
        );
    }
    assert_still_serving(&mut sidecar);
    assert_eq!(sidecar.finish().code(), Some(0));
}

#[test]
fn unknown_methods_get_method_not_found_and_unknown_notifications_nothing() {
    let mut sidecar = Sidecar::spawn();
    for method in [
        "llm/unknown",
        "",
        "llm/",
        "$/unknownRequest",
        "textDocument/completion",
    ] {
        let id = sidecar.request(method, json!({}));
        let reply = sidecar.wait_response(&id, WAIT);
        reply.expect_code(METHOD_NOT_FOUND);
        assert_eq!(reply.response["id"], id, "{method:?}");
    }
    // Notifications and client responses are never answered.
    sidecar.notify("llm/unknownNotification", json!({"x": 1}));
    sidecar.notify("$/progress", json!({"token": 1, "value": {}}));
    sidecar.send(&json!({"jsonrpc": "2.0", "id": 99, "result": null}));
    sidecar.send(&json!({"jsonrpc": "2.0", "id": 98, "error": {"code": 1, "message": "no"}}));
    let before = sidecar.transcript().len();
    assert_still_serving(&mut sidecar);
    assert_eq!(
        sidecar.transcript().len(),
        before + 1,
        "only the ping was answered: {:?}",
        &sidecar.transcript()[before..]
    );
    sidecar.assert_no_new_messages(Duration::from_millis(300));
    assert_eq!(sidecar.finish().code(), Some(0));
}

#[test]
fn an_oversized_frame_is_refused_before_it_is_read_and_never_buffered() {
    const CLAIMED: usize = 100 * MIB;
    let (mut sidecar, pid) = spawn_tracked(Sidecar::builder());
    let id = sidecar.request("initialize", json!({}));
    sidecar.wait_response(&id, WAIT).result();
    let baseline = vm_hwm_kib(pid);

    let before = sidecar.transcript().len();
    sidecar.write_raw(format!("Content-Length: {CLAIMED}\r\n\r\n").as_bytes());
    let piece = vec![b' '; MIB];
    sidecar.write_raw(&piece);
    // Refused on its header: the answer comes while 99 MiB of the body are still unsent.
    let answer = wait_error_from(&mut sidecar, before, INVALID_REQUEST, "the -32600 answer");
    assert_eq!(answer["id"], Value::Null, "{answer}");
    for _ in 1..CLAIMED / MIB {
        sidecar.write_raw(&piece);
    }
    assert_still_serving(&mut sidecar);

    let peak = vm_hwm_kib(pid);
    let grew = (peak.saturating_sub(baseline) as usize) * 1024;
    println!("VmHWM {baseline} KiB -> {peak} KiB while skipping a {CLAIMED}-byte frame");
    assert!(
        grew < 16 * MIB,
        "skipping a 100 MiB frame raised peak memory by {} MiB",
        grew / MIB
    );
    assert_eq!(sidecar.finish().code(), Some(0));
}

#[test]
fn a_frame_of_exactly_64_mib_is_read() {
    const LIMIT: usize = 64 * MIB;
    let mut sidecar = Sidecar::spawn();
    let head = br#"{"jsonrpc":"2.0","id":"big","method":"llm/noSuchMethod","params":{"pad":""#;
    let tail = br#""}}"#;
    let mut body = Vec::with_capacity(LIMIT);
    body.extend_from_slice(head);
    body.resize(LIMIT - tail.len(), b'p');
    body.extend_from_slice(tail);
    assert_eq!(body.len(), LIMIT);
    sidecar.write_frame(&body);
    drop(body);
    let reply = sidecar.wait_response(&json!("big"), WAIT);
    reply.expect_code(METHOD_NOT_FOUND);
    assert_still_serving(&mut sidecar);
}

#[test]
fn hundreds_of_pipelined_frames_in_one_write_are_all_answered() {
    let mut sidecar = Sidecar::spawn();
    let mut bytes = Vec::new();
    for i in 0..300 {
        bytes.extend(frame(
            json!({"jsonrpc": "2.0", "id": i, "method": "test/ping"})
                .to_string()
                .as_bytes(),
        ));
        if i % 50 == 0 {
            bytes.extend(frame(b"{broken"));
        }
    }
    sidecar.write_raw(&bytes);
    for i in 0..300 {
        sidecar
            .wait_response(&json!(i), WAIT)
            .expect_code(METHOD_NOT_FOUND);
    }
    let parse_errors = sidecar
        .transcript()
        .iter()
        .filter(|m| m["error"]["code"] == json!(PARSE_ERROR))
        .count();
    assert_eq!(parse_errors, 6);
    assert_eq!(sidecar.finish().code(), Some(0));
}

#[test]
fn a_bad_frame_header_costs_one_error_and_the_frames_after_it_are_served() {
    let mut sidecar = Sidecar::spawn();
    // Bad headers whose body follows, each of a different shape; the body holds a colon and a blank
    // line, the good frame comes right after it with no line break in between.
    let body = json!({"jsonrpc": "2.0", "id": "lost", "method": "test/ping", "params": {"text": "a: b\r\n\r\nc"}});
    let body = body.to_string();
    let bad_headers = [
        "Content-Length: x\r\n\r\n".to_owned(),
        format!("Content-Length: {}x\r\n\r\n", body.len()),
        format!("Content-Lenght: {}\r\n\r\n", body.len()),
        format!("Content-Length {}\r\n\r\n", body.len()),
    ];
    for (n, header) in bad_headers.iter().enumerate() {
        let before = sidecar.transcript().len();
        let mut bytes = [header.as_bytes(), body.as_bytes()].concat();
        for i in 0..3 {
            let id = format!("after-{n}-{i}");
            bytes.extend(frame(
                json!({"jsonrpc": "2.0", "id": id, "method": "test/ping"})
                    .to_string()
                    .as_bytes(),
            ));
        }
        sidecar.write_raw(&bytes);
        for i in 0..3 {
            sidecar
                .wait_response(&json!(format!("after-{n}-{i}")), WAIT)
                .expect_code(METHOD_NOT_FOUND);
        }
        let answers = &sidecar.transcript()[before..];
        let parse_errors: Vec<&Value> = answers
            .iter()
            .filter(|m| m["error"]["code"] == json!(PARSE_ERROR))
            .collect();
        assert_eq!(
            parse_errors.len(),
            1,
            "{header:?}: one error for the bad frame: {answers:?}"
        );
        assert_eq!(parse_errors[0]["id"], Value::Null, "{header:?}");
        assert_eq!(
            answers.len(),
            4,
            "{header:?}: nothing else is answered: {answers:?}"
        );
        assert!(
            !answers.iter().any(|m| m["id"] == json!("lost")),
            "the bad frame's body is not read as a request: {answers:?}"
        );
    }
    assert_still_serving(&mut sidecar);
    assert_eq!(sidecar.finish().code(), Some(0));
}

#[test]
fn a_frame_cut_short_by_the_end_of_input_ends_the_process_cleanly() {
    let mut sidecar = Sidecar::spawn();
    sidecar.write_raw(b"Content-Length: 100\r\n\r\n{\"jsonrpc\": \"2.0\"");
    let status = sidecar.finish();
    assert_eq!(status.code(), Some(0));
    let stderr = sidecar.full_stderr();
    assert!(!stderr.contains("panicked"), "stderr:\n{stderr}");
}

/// A mock whose response streams "held " and then waits for `gate` before " done".
fn held_mock(gate: &Gate) -> MockLlm {
    let gate = gate.clone();
    MockLlm::start(move |_| {
        MockResponse::sse(sse_event(&openai_delta("held ")))
            .chunked()
            .piece_after(Before::Gate(gate.clone()), openai_sse(&["done"]))
    })
}

#[test]
fn bad_input_does_not_disturb_a_completion_in_flight() {
    let gate = Gate::new();
    let mock = held_mock(&gate);
    let mut sidecar = Sidecar::spawn();
    let params = Settings::sse(mock.url("/v1"), DELTA_PATH)
        .params()
        .stream_id("held")
        .build();
    let id = sidecar.request("llm/complete", params);
    sidecar.wait_chunk(&json!("held"), 0, WAIT);

    let before = sidecar.transcript().len();
    sidecar.write_frame(b"not json");
    sidecar.write_raw(b"Content-Length: nope\r\n\r\n");
    sidecar.write_frame(b"[]");
    sidecar.write_raw(format!("Content-Length: {}\r\n\r\n", 65 * MIB).as_bytes());
    let filler = vec![b' '; MIB];
    for _ in 0..65 {
        sidecar.write_raw(&filler);
    }
    assert_still_serving(&mut sidecar);
    let codes: Vec<i64> = sidecar.transcript()[before..]
        .iter()
        .filter_map(|m| m["error"]["code"].as_i64())
        .collect();
    assert_eq!(
        codes,
        [
            PARSE_ERROR,
            PARSE_ERROR,
            INVALID_REQUEST,
            INVALID_REQUEST,
            METHOD_NOT_FOUND
        ],
        "one answer per bad frame, then the ping"
    );

    gate.open();
    let reply = sidecar.wait_response(&id, WAIT);
    assert_eq!(reply.result()["text"], "held done");
    assert_eq!(sidecar.finish().code(), Some(0));
}

#[test]
fn a_panic_in_a_handler_becomes_an_internal_error_and_the_process_keeps_serving() {
    let gate = Gate::new();
    let mock = held_mock(&gate);
    let mut sidecar = Sidecar::builder()
        .env("LLM_SIDECAR_TEST_HOOKS", "1")
        .spawn();
    let params = Settings::sse(mock.url("/v1"), DELTA_PATH)
        .params()
        .stream_id("held")
        .build();
    let held = sidecar.request("llm/complete", params);
    sidecar.wait_chunk(&json!("held"), 0, WAIT);

    for _ in 0..20 {
        let id = sidecar.request("llm-sidecar/test/panic", json!({}));
        let reply = sidecar.wait_response(&id, WAIT);
        reply.expect_code(INTERNAL_ERROR);
        assert_eq!(reply.response["id"], id);
    }
    assert_still_serving(&mut sidecar);

    // The completion that was running when the handlers panicked is unaffected.
    gate.open();
    let reply = sidecar.wait_response(&held, WAIT);
    assert_eq!(reply.result()["text"], "held done");

    // And new completions work.
    let ok = MockLlm::always(MockResponse::sse(openai_sse(&["after ", "panics"])));
    let reply = complete_streamed(&mut sidecar, Settings::sse(ok.url("/v1"), DELTA_PATH));
    assert_eq!(reply.result()["text"], "after panics");
    assert_eq!(sidecar.finish().code(), Some(0));
}

#[test]
fn the_panic_hook_is_off_without_its_environment_variable() {
    let mut sidecar = Sidecar::spawn();
    let id = sidecar.request("llm-sidecar/test/panic", json!({}));
    sidecar
        .wait_response(&id, WAIT)
        .expect_code(METHOD_NOT_FOUND);
    assert_eq!(sidecar.finish().code(), Some(0));
}
