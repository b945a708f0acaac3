//! Transport and lifecycle: LSP framing, `initialize` / `initialized` / `shutdown` / `exit`, end of
//! stdin, request ids, and the JSON-RPC errors that do not involve an LLM server.

mod common;

use common::*;
use serde_json::{Value, json};

fn assert_server_info(result: &Value) {
    let name = result["serverInfo"]["name"].as_str();
    assert!(
        name.is_some_and(|n| !n.is_empty()),
        "serverInfo.name: {result}"
    );
    assert!(
        result["serverInfo"]["version"].is_string(),
        "serverInfo.version: {result}"
    );
    assert!(result["capabilities"].is_object(), "capabilities: {result}");
}

/// A frame with the given header lines (each without its CRLF) and a correct Content-Length value
/// substituted for `{len}`.
fn frame_with_headers(headers: &[&str], body: &str) -> Vec<u8> {
    let mut frame = String::new();
    for header in headers {
        frame.push_str(&header.replace("{len}", &body.len().to_string()));
        frame.push_str("\r\n");
    }
    frame.push_str("\r\n");
    frame.push_str(body);
    frame.into_bytes()
}

#[test]
fn initialize_without_initialization_options() {
    let mut sidecar = Sidecar::spawn();
    for params in [json!({}), json!({"processId": null, "capabilities": {}})] {
        let id = sidecar.request("initialize", params);
        assert_server_info(sidecar.wait_response(&id, WAIT).result());
    }
    assert_eq!(sidecar.finish().code(), Some(0));
}

#[test]
fn initialize_with_initialization_options() {
    let mut sidecar = Sidecar::spawn();
    let id = sidecar.request(
        "initialize",
        json!({
            "processId": 1234,
            "clientInfo": {"name": "test-client", "version": "1.0"},
            "capabilities": {},
            "initializationOptions": {"anything": ["goes", 1, null]}
        }),
    );
    assert_server_info(sidecar.wait_response(&id, WAIT).result());
    assert_eq!(sidecar.finish().code(), Some(0));
}

#[test]
fn initialized_accepts_absent_empty_object_and_empty_array_params() {
    let mut sidecar = Sidecar::spawn();
    let id = sidecar.request("initialize", json!({}));
    sidecar.wait_response(&id, WAIT).result();
    let answered = sidecar.next_message(WAIT).expect("initialize response");
    assert_eq!(answered["id"], id);

    sidecar.notify("initialized", None);
    sidecar.notify("initialized", json!({}));
    sidecar.notify("initialized", json!([]));
    // Notifications are never answered: the next message must be the answer to this request.
    let ping = sidecar.request("test/ping", None);
    let next = sidecar.next_message(WAIT).expect("a message");
    assert_eq!(
        next["id"], ping,
        "expected only the ping's answer, got {next}"
    );
    assert_eq!(next["error"]["code"], json!(METHOD_NOT_FOUND));
    assert_eq!(sidecar.finish().code(), Some(0));
}

#[test]
fn shutdown_then_exit_exits_with_code_0_and_later_requests_are_invalid() {
    for params in [None, Some(Value::Null)] {
        let mut sidecar = Sidecar::spawn();
        let id = sidecar.request("shutdown", params.clone());
        let reply = sidecar.wait_response(&id, WAIT);
        assert_eq!(
            reply.result(),
            &Value::Null,
            "shutdown result (params {params:?})"
        );

        let later = sidecar.request("initialize", json!({}));
        sidecar
            .wait_response(&later, WAIT)
            .expect_code(INVALID_REQUEST);

        sidecar.notify("exit", None);
        assert_eq!(
            sidecar.wait_exit(WAIT).code(),
            Some(0),
            "exit after shutdown"
        );
        sidecar.wait_stdout_closed(WAIT);
    }
}

#[test]
fn shutdown_and_exit_sent_together_still_get_the_shutdown_answer() {
    let mut sidecar = Sidecar::spawn();
    let id = sidecar.request("shutdown", None);
    sidecar.notify("exit", None);
    let reply = sidecar.wait_response(&id, WAIT);
    assert_eq!(reply.result(), &Value::Null);
    assert_eq!(sidecar.wait_exit(WAIT).code(), Some(0));
}

#[test]
fn exit_without_shutdown_exits_with_code_1() {
    let mut sidecar = Sidecar::spawn();
    assert_still_serving(&mut sidecar);
    sidecar.notify("exit", None);
    assert_eq!(sidecar.wait_exit(WAIT).code(), Some(1));
    sidecar.wait_stdout_closed(WAIT);
}

#[test]
fn end_of_stdin_exits_with_code_0() {
    let mut sidecar = Sidecar::spawn();
    assert_eq!(
        sidecar.finish().code(),
        Some(0),
        "exit code on EOF before any request"
    );

    let mut sidecar = Sidecar::spawn();
    let id = sidecar.request("initialize", json!({}));
    sidecar.wait_response(&id, WAIT).result();
    assert_eq!(
        sidecar.finish().code(),
        Some(0),
        "exit code on EOF after initialize"
    );
}

#[test]
fn header_names_are_case_insensitive_and_extra_headers_are_ignored() {
    let mut sidecar = Sidecar::spawn();
    let header_sets: [&[&str]; 5] = [
        &[
            "Content-Type: application/vscode-jsonrpc; charset=utf-8",
            "Content-Length: {len}",
        ],
        &[
            "Content-Length: {len}",
            "Content-Type: application/vscode-jsonrpc; charset=utf-8",
        ],
        &["content-length: {len}"],
        &["CONTENT-LENGTH: {len}"],
        &["Content-Length:{len}"],
    ];
    for (i, headers) in header_sets.iter().enumerate() {
        let id = json!(format!("headers-{i}"));
        let body = json!({"jsonrpc": "2.0", "id": id, "method": "test/ping"}).to_string();
        sidecar.write_raw(&frame_with_headers(headers, &body));
        let reply = sidecar.wait_response(&id, WAIT);
        reply.expect_code(METHOD_NOT_FOUND);
    }
    assert_eq!(sidecar.finish().code(), Some(0));
}

#[test]
fn frames_split_across_writes_and_batched_in_one_write_are_read() {
    let mut sidecar = Sidecar::spawn();
    let one = frame_with_headers(
        &["Content-Length: {len}"],
        &json!({"jsonrpc": "2.0", "id": 1, "method": "test/ping"}).to_string(),
    );
    let two = frame_with_headers(
        &["Content-Length: {len}"],
        &json!({"jsonrpc": "2.0", "id": 2, "method": "test/ping"}).to_string(),
    );
    for piece in one.chunks(7) {
        sidecar.write_raw(piece);
    }
    let first = sidecar
        .next_message(WAIT)
        .expect("answer to the split frame");
    assert_eq!(first["id"], json!(1));

    sidecar.write_raw(&[two, one].concat());
    let mut ids: Vec<i64> = (0..2)
        .map(|_| {
            let msg = sidecar
                .next_message(WAIT)
                .expect("answer to a batched frame");
            assert_eq!(msg["error"]["code"], json!(METHOD_NOT_FOUND), "{msg}");
            msg["id"].as_i64().expect("integer id")
        })
        .collect();
    ids.sort();
    assert_eq!(ids, [1, 2], "both frames of one write are answered");
    assert_eq!(sidecar.finish().code(), Some(0));
}

#[test]
fn malformed_json_gets_parse_error_and_the_server_keeps_serving() {
    let mut sidecar = Sidecar::spawn();
    for (body, id) in [
        // The id can still be read: the error is answered to it.
        (
            b"{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": ".as_slice(),
            json!(1),
        ),
        (b"not json at all", Value::Null),
        (&[0xff, 0xfe, 0x7b, 0x7d], Value::Null),
    ] {
        let before = sidecar.transcript().len();
        sidecar.write_frame(body);
        let index = sidecar.wait_for_from(before, WAIT, "the -32700 answer", |msg| {
            msg["error"]["code"] == json!(PARSE_ERROR)
        });
        assert_eq!(
            sidecar.transcript()[index]["id"],
            id,
            "a parse error is answered with the id when it can be read, else null"
        );
        assert_still_serving(&mut sidecar);
    }
    assert_eq!(sidecar.finish().code(), Some(0));
}

#[test]
fn unknown_method_gets_method_not_found() {
    let mut sidecar = Sidecar::spawn();
    let id = sidecar.request("llm/doesNotExist", json!({}));
    let reply = sidecar.wait_response(&id, WAIT);
    reply.expect_code(METHOD_NOT_FOUND);
    assert_eq!(reply.response["id"], id);
    assert_eq!(sidecar.finish().code(), Some(0));
}

#[test]
fn request_ids_are_echoed_with_their_type() {
    let mut sidecar = Sidecar::spawn();
    let ids = [
        json!("abc"),
        json!("42"),
        json!(""),
        json!(42),
        json!(0),
        json!(-7),
        json!(9007199254740993_i64),
    ];
    for id in &ids {
        // One success path and one error path for every id.
        sidecar.request_with_id(id.clone(), "initialize", json!({}));
        let reply = sidecar.wait_response(id, WAIT);
        reply.result();
        sidecar.request_with_id(id.clone(), "test/ping", json!({}));
        let index = sidecar.wait_for(WAIT, &format!("ping answer for {id}"), |m| {
            m["id"] == *id && m.get("error").is_some()
        });
        let answer = &sidecar.transcript()[index];
        assert_eq!(&answer["id"], id, "id echoed unchanged (type included)");
    }
    assert_eq!(sidecar.finish().code(), Some(0));
}

#[test]
fn a_message_that_is_not_a_request_gets_invalid_request() {
    let mut sidecar = Sidecar::spawn();
    for body in [
        json!({"jsonrpc": "2.0", "id": 91}),
        json!({"jsonrpc": "2.0", "id": 92, "method": 5}),
    ] {
        let id = body["id"].clone();
        sidecar.send(&body);
        sidecar
            .wait_response(&id, WAIT)
            .expect_code(INVALID_REQUEST);
    }
    assert_still_serving(&mut sidecar);
    assert_eq!(sidecar.finish().code(), Some(0));
}

#[test]
fn an_oversized_frame_is_skipped_with_invalid_request() {
    const LIMIT: usize = 64 * 1024 * 1024;
    let mut sidecar = Sidecar::spawn();
    sidecar.write_raw(format!("Content-Length: {}\r\n\r\n", LIMIT + 1).as_bytes());
    let filler = vec![b' '; 1024 * 1024];
    for _ in 0..64 {
        sidecar.write_raw(&filler);
    }
    sidecar.write_raw(b" ");
    sidecar.wait_for(WAIT, "the -32600 answer to the oversized frame", |msg| {
        msg["error"]["code"] == json!(INVALID_REQUEST)
    });
    assert_still_serving(&mut sidecar);
    assert_eq!(sidecar.finish().code(), Some(0));
}

#[test]
fn llm_complete_works_before_initialize_and_stdout_carries_only_frames() {
    let mock = MockLlm::always(MockResponse::sse(openai_sse(&["Hel", "lo"])));
    let mut sidecar = Sidecar::spawn();
    let reply = complete_streamed(&mut sidecar, Settings::sse(mock.url("/v1"), DELTA_PATH));
    assert_eq!(reply.result()["text"], "Hello");
    sidecar.write_frame(b"{oops");
    assert_still_serving(&mut sidecar);
    // `finish` reads stdout to its end: any byte outside a frame fails the test.
    assert_eq!(sidecar.finish().code(), Some(0));
    let chunks = sidecar.collect_chunks(&json!("s")).len();
    assert_eq!(
        sidecar.transcript().len(),
        chunks + 3,
        "chunks, the llm/complete answer, the parse error and the ping answer: {:?}",
        sidecar.transcript()
    );
}

#[test]
fn log_level_comes_from_llm_sidecar_log_then_rust_log_and_defaults_to_info() {
    // A Content-Type mismatch logs a warning: shown at `info` and `warn`, hidden at `error`.
    let mock = MockLlm::always(MockResponse::json(200, openai_message("x")));
    let cases = [
        (None, None, true),
        (Some("error"), None, false),
        (None, Some("error"), false),
        (Some("warn"), Some("error"), true),
        (Some("error"), Some("info"), false),
    ];
    let mut failures = Vec::new();
    for (sidecar_log, rust_log, expect_warning) in cases {
        let mut builder = Sidecar::builder();
        if let Some(level) = sidecar_log {
            builder = builder.env("LLM_SIDECAR_LOG", level);
        }
        if let Some(level) = rust_log {
            builder = builder.env("RUST_LOG", level);
        }
        let mut sidecar = builder.spawn();
        let settings = Settings::sse(mock.url("/v1"), MESSAGE_PATH);
        assert_eq!(
            sidecar.complete(settings.params().build()).result()["text"],
            "x"
        );
        assert_eq!(sidecar.finish().code(), Some(0));
        let warned = sidecar.full_stderr().lines().any(is_content_type_warning);
        if warned != expect_warning {
            failures.push(format!(
                "LLM_SIDECAR_LOG={sidecar_log:?} RUST_LOG={rust_log:?}: warning logged: {warned}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
