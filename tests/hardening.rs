//! The sidecar keeps its contract when the server mislabels its body, the editor never reads
//! stderr or closes stdout, ids are reused or odd, a body fails before any text, the model is
//! cancelled mid-reasoning, a connect stalls, or building an HTTP client blocks.

mod common;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::procfs::{socket_count, spawn_tracked};
use common::raw_server::{RawServer, response_head};
use common::sidecar::binary;
use common::*;
use serde_json::{Value, json};

const OPENAI_JSON: &str = r#"{"choices":[{"index":0,"message":{"role":"assistant","content":"whole answer"},"finish_reason":"stop"}]}"#;

/// Every pairing of configured type, announced type and real body, with no JsonPath set.
#[test]
fn a_mislabelled_body_without_a_path_is_read_as_what_it_is() {
    let sse = openai_sse(&["Hel", "lo"]);
    let mut sidecar = Sidecar::spawn();
    for configured in ["SSE", "JSON"] {
        for announced in [
            Some("application/json"),
            Some("text/plain"),
            Some("text/event-stream"),
            None,
        ] {
            for (body, expected) in [(sse.as_str(), "Hello"), (OPENAI_JSON, "whole answer")] {
                let mut response = MockResponse::new(200).piece(body);
                if let Some(announced) = announced {
                    response = response.content_type(announced);
                }
                let mock = MockLlm::always(response);
                let settings = Settings::new(mock.url("/v1/chat/completions"))
                    .response_type(configured)
                    .no_retries();
                let reply = complete_streamed(&mut sidecar, settings);
                let case =
                    format!("configured {configured}, announced {announced:?}, body {body:.20}");
                assert!(
                    reply.response.get("result").is_some(),
                    "{case}: {}",
                    reply.response
                );
                assert_eq!(reply.result()["text"], expected, "{case}");
                let read_as = if body == OPENAI_JSON { "json" } else { "sse" };
                assert_eq!(reply.result()["responseType"], read_as, "{case}");
            }
        }
    }
}

/// A stream sent as NDJSON under another label still streams: every line is a chunk before
/// the body ends.
#[test]
fn json_documents_under_any_label_stream_as_they_arrive() {
    let gate = Gate::new();
    let mock = MockLlm::always(
        MockResponse::new(200)
            .content_type("application/json")
            .piece("{\"message\":{\"content\":\"first \"},\"done\":false}\n")
            .piece_after(
                Before::Gate(gate.clone()),
                "{\"message\":{\"content\":\"second\"},\"done\":true}\n",
            ),
    );
    let mut sidecar = Sidecar::spawn();
    let params = Settings::new(mock.url("/api/chat"))
        .params()
        .stream_id("s")
        .build();
    let id = sidecar.request("llm/complete", params);
    let first = sidecar.wait_chunk(&json!("s"), 0, WAIT);
    assert_eq!(
        first.text, "first ",
        "the first line streams before the rest is sent"
    );
    gate.open();
    let reply = sidecar.wait_response(&id, WAIT);
    assert_eq!(reply.result()["text"], "first second");
    assert_eq!(reply.result()["responseType"], "ndjson");
}

#[test]
fn an_unread_stderr_never_stalls_serving() {
    let mock = MockLlm::always(MockResponse::sse(openai_sse(&["ok"])));
    let mut sidecar = Sidecar::builder()
        .env("LLM_SIDECAR_LOG", "debug")
        .stderr_unread()
        .spawn();
    let settings = Settings::sse(mock.url("/v1/chat/completions"), DELTA_PATH);
    const REQUESTS: usize = 1500;
    let ids: Vec<Value> = (0..REQUESTS)
        .map(|_| sidecar.request("llm/complete", settings.clone().params().build()))
        .collect();
    for id in &ids {
        let reply = sidecar.wait_response(id, Duration::from_secs(60));
        assert_eq!(reply.result()["text"], "ok", "request {id}");
    }
    // Reading stderr again: what was dropped is said, once it drains.
    let mut stderr = sidecar.take_stderr();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let id = sidecar.request("llm/complete", settings.params().build());
    sidecar.wait_response(&id, WAIT);
    sidecar.close_stdin();
    let text = reader.join().unwrap();
    assert!(
        text.contains("log lines were dropped while stderr was not being read"),
        "stderr says how many lines were dropped: {}",
        &text[text.len().saturating_sub(2000)..]
    );
}

#[test]
fn a_closed_stdout_cancels_the_upstream_and_ends_the_process() {
    let mock = MockLlm::always(
        MockResponse::sse("")
            .pieces_with_delay(
                (0..2000).map(|i| sse_event(&openai_delta(&format!("t{i} ")))),
                Duration::from_millis(20),
            )
            .then_hang(),
    );
    let mut child = Command::new(binary())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let params = Settings::sse(mock.url("/v1/chat/completions"), DELTA_PATH)
        .params()
        .stream_id("s")
        .build();
    let body =
        json!({"jsonrpc": "2.0", "id": 1, "method": "llm/complete", "params": params}).to_string();
    write!(stdin, "Content-Length: {}\r\n\r\n{body}", body.len()).unwrap();
    stdin.flush().unwrap();
    // Read until the stream is flowing, then go away as a crashed editor does.
    let mut stdout = child.stdout.take().unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("llm/chunk") {
        let n = stdout.read(&mut buf).unwrap();
        assert!(n > 0, "stdout ended before any chunk");
        seen.extend_from_slice(&buf[..n]);
    }
    drop(stdout);
    // stdin stays open: only the dead stdout can end the process.
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the sidecar kept running with stdout closed"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(2), "a dead stdout is a failure exit");
    mock.wait_client_closed(0, WAIT);
    drop(stdin);
}

#[test]
fn request_ids_are_typed_unique_while_in_flight_and_answered_once() {
    let gate = Gate::new();
    let mock = MockLlm::always(
        MockResponse::sse("")
            .piece(sse_event(&openai_delta("partial")))
            .piece_after(
                Before::Gate(gate.clone()),
                sse_event(&openai_delta(" rest")),
            )
            .then_hang(),
    );
    let mut sidecar = Sidecar::spawn();
    let params = Settings::sse(mock.url("/v1/chat/completions"), DELTA_PATH)
        .params()
        .stream_id("a")
        .build();
    sidecar.request_with_id(json!(1000), "llm/complete", params.clone());
    sidecar.wait_chunk(&json!("a"), 0, WAIT);
    // The same id again, while the first runs: refused, the first goes on.
    sidecar.request_with_id(json!(1000), "llm/complete", params);
    let index = sidecar.wait_for(WAIT, "the refusal of the reused id", |msg| {
        msg["id"] == json!(1000) && msg["error"]["code"] == json!(INVALID_REQUEST)
    });
    let refusal = sidecar.transcript()[index].clone();
    assert!(
        refusal["error"]["message"]
            .as_str()
            .unwrap()
            .contains("still running"),
        "{refusal}"
    );
    // `1.0` names the same request: the cancel reaches it.
    sidecar.send(&json!({"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": 1000.0}}));
    let index = sidecar.wait_for(WAIT, "the cancelled answer", |msg| {
        msg["id"] == json!(1000) && msg["error"]["code"] == json!(CANCELLED)
    });
    let cancelled = sidecar.transcript()[index].clone();
    assert_eq!(cancelled["error"]["data"]["partialText"], "partial");
    gate.open();
    assert_still_serving(&mut sidecar);
    let answers = sidecar
        .transcript()
        .iter()
        .filter(|m| m["id"] == json!(1000) && m.get("method").is_none())
        .count();
    assert_eq!(
        answers, 2,
        "one refusal and one answer for the running request"
    );

    // A version other than 2.0, and a batch, are refused.
    sidecar.send(&json!({"jsonrpc": "1.0", "id": "v", "method": "llm/presets"}));
    let reply = sidecar.wait_response(&json!("v"), WAIT);
    assert!(
        reply.expect_code(INVALID_REQUEST)["message"]
            .as_str()
            .unwrap()
            .contains("2.0")
    );
    let before = sidecar.transcript().len();
    sidecar.write_frame(br#"[{"jsonrpc":"2.0","id":9,"method":"llm/presets"}]"#);
    let index = sidecar.wait_for_from(before, WAIT, "the batch refusal", |msg| {
        msg["error"]["code"] == json!(INVALID_REQUEST)
    });
    assert!(
        sidecar.transcript()[index]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("batch")
    );
    assert_eq!(sidecar.finish().code(), Some(0));
}

#[test]
fn a_body_that_fails_before_any_text_is_retried() {
    // The first response breaks right after its head, the second stalls before its first
    // event; the third answers.
    let server = RawServer::start(|mut conn| async move {
        let Some(_) = conn.read_request().await else {
            return;
        };
        let head = response_head(200, &[("Content-Type", "text/event-stream")], None);
        match conn.index {
            0 => {
                conn.write(&head).await;
                conn.reset();
            }
            1 => {
                conn.write(&head).await;
                conn.wait_closed().await;
            }
            _ => {
                let body = openai_sse(&["at last"]);
                conn.respond(
                    200,
                    &[("Content-Type", "text/event-stream")],
                    body.as_bytes(),
                )
                .await;
            }
        }
    });
    let mut sidecar = Sidecar::spawn();
    let settings = Settings::sse(server.url("/v1/chat/completions"), DELTA_PATH)
        .set(
            "retry",
            json!({"maxRetries": 2, "initialBackoffMs": 10, "maxBackoffMs": 20}),
        )
        .set("timeouts", json!({"idleMs": 500}));
    let reply = complete_streamed(&mut sidecar, settings);
    assert_eq!(reply.result()["text"], "at last", "{}", reply.response);
    assert_eq!(reply.result()["timings"]["attempts"], 3);
    assert_eq!(server.requests().len(), 3);
}

#[test]
fn reasoning_survives_cancel_and_failure() {
    let reasoning = |text: &str| {
        sse_event(
            &json!({"choices": [{"index": 0, "delta": {"reasoning_content": text}}]}).to_string(),
        )
    };
    let gate = Gate::new();
    let mock = MockLlm::always(
        MockResponse::sse("")
            .piece(reasoning("Let me think"))
            .piece(reasoning(" harder"))
            .piece_after(Before::Gate(gate.clone()), "")
            .then_close(),
    );
    let mut sidecar = Sidecar::spawn();
    let settings = Settings::sse(mock.url("/v1/chat/completions"), DELTA_PATH)
        .reasoning("$.choices[0].delta.reasoning_content")
        .no_retries();
    let id = sidecar.request(
        "llm/complete",
        settings.clone().params().stream_id("r").build(),
    );
    sidecar.wait_chunk(&json!("r"), 1, WAIT);
    sidecar.cancel(&id);
    let reply = sidecar.wait_response(&id, WAIT);
    let data = reply.expect_code(CANCELLED)["data"].clone();
    assert_eq!(data["partialText"], "");
    assert_eq!(data["partialReasoning"], "Let me think harder");

    // The connection dies while the model is still reasoning.
    gate.open();
    let id = sidecar.request("llm/complete", settings.params().stream_id("f").build());
    let reply = sidecar.wait_response(&id, WAIT);
    let data = reply.expect_error(REQUEST_FAILED, "interrupted");
    assert_eq!(data["partialReasoning"], "Let me think harder", "{data}");
}

#[test]
fn a_stalled_connect_is_the_connect_phase() {
    // A listener whose accept queue is full: further connects get no answer.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (addr, _held) = runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = socket.listen(1).unwrap();
        let addr = listener.local_addr().unwrap();
        let mut held = Vec::new();
        for _ in 0..8 {
            let connect = tokio::net::TcpStream::connect(addr);
            match tokio::time::timeout(Duration::from_millis(200), connect).await {
                Ok(Ok(stream)) => held.push(stream),
                _ => break,
            }
        }
        (addr, (listener, held))
    });
    let mut sidecar = Sidecar::spawn();
    let settings = Settings::sse(format!("http://{addr}/v1/chat/completions"), DELTA_PATH)
        .no_retries()
        .set("timeouts", json!({"connectMs": 400, "firstByteMs": 100}));
    let id = sidecar.request("llm/complete", settings.params().build());
    let reply = sidecar.wait_response(&id, WAIT);
    let data = reply.expect_error(REQUEST_FAILED, "timeout");
    assert_eq!(data["phase"], "connect", "{data}");
    assert_eq!(data["limitMs"], 400, "{data}");
}

#[test]
fn building_a_client_never_blocks_other_requests() {
    // A caCertificates "file" that is a FIFO nobody writes: reading it blocks until it is opened
    // for writing.
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("ca.pem");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let mock = MockLlm::always(MockResponse::sse(openai_sse(&["free"])));
    let mut sidecar = Sidecar::spawn();
    let blocked = sidecar.request(
        "llm/complete",
        Settings::sse(mock.url("/v1/chat/completions"), DELTA_PATH)
            .set("caCertificates", fifo.to_str().unwrap())
            .params()
            .build(),
    );
    for _ in 0..4 {
        let reply = sidecar.complete(
            Settings::sse(mock.url("/v1/chat/completions"), DELTA_PATH)
                .params()
                .build(),
        );
        assert_eq!(reply.result()["text"], "free");
    }
    // Unblock the read: the first request ends with a clear settings error.
    drop(std::fs::OpenOptions::new().write(true).open(&fifo).unwrap());
    let reply = sidecar.wait_response(&blocked, WAIT);
    let problems = problems(&reply.expect_code(INVALID_PARAMS)["data"]);
    assert!(
        problems.iter().any(|(field, _)| field == "caCertificates"),
        "{problems:?}"
    );
}

#[test]
fn the_client_cache_is_bounded() {
    let mock = MockLlm::always(MockResponse::sse(openai_sse(&["ok"])));
    let (mut sidecar, pid) = spawn_tracked(Sidecar::builder());
    // Each connect timeout is its own client, with its own pool and kept-alive connection.
    for i in 0..40u64 {
        let settings = Settings::sse(mock.url("/v1/chat/completions"), DELTA_PATH)
            .set("timeouts", json!({"connectMs": 1000 + i}));
        let reply = sidecar.complete(settings.params().build());
        assert_eq!(reply.result()["text"], "ok");
    }
    let sockets = socket_count(pid);
    assert!(
        sockets <= 24,
        "{sockets} sockets held after 40 configurations: the client cache must be bounded"
    );
}

#[test]
fn a_stream_id_in_use_is_refused_and_free_again_once_its_stream_ends() {
    let gate = Gate::new();
    let mock = MockLlm::always(
        MockResponse::sse("")
            .piece(sse_event(&openai_delta("one")))
            .piece_after(Before::Gate(gate.clone()), "data: [DONE]\n\n"),
    );
    let mut sidecar = Sidecar::spawn();
    let params = Settings::sse(mock.url("/v1/chat/completions"), DELTA_PATH)
        .params()
        .stream_id("same")
        .build();
    let first = sidecar.request("llm/complete", params.clone());
    sidecar.wait_chunk(&json!("same"), 0, WAIT);
    let second = sidecar.request("llm/complete", params.clone());
    let reply = sidecar.wait_response(&second, WAIT);
    let problems = problems(&reply.expect_code(INVALID_PARAMS)["data"]);
    assert_eq!(problems[0].0, "streamId", "{problems:?}");
    gate.open();
    assert_eq!(sidecar.wait_response(&first, WAIT).result()["text"], "one");
    // The stream is over: its id can be used again.
    let third = sidecar.request("llm/complete", params);
    assert_eq!(sidecar.wait_response(&third, WAIT).result()["text"], "one");
}
