//! Size limits: `maxEventBytes` (one SSE event or NDJSON line, default 8 MiB) and
//! `maxResponseBytes` (the whole body, default 64 MiB) end a completion with `too_large`, and the
//! sidecar's memory stays bounded while a server sends a body of 1 GiB without a newline.
//!
//! Large bodies are generated lazily by the server, 64 KiB at a time, and stop when the client
//! goes away; the sidecar's peak resident memory (`VmHWM`) is read from `/proc`.

mod common;

use std::sync::Arc;

use common::procfs::{spawn_tracked, vm_hwm_kib};
use common::raw_server::{RawServer, http_chunk, response_head};
use common::*;
use serde_json::{Value, json};

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;
const DEFAULT_EVENT_LIMIT: u64 = 8 * MIB;
const DEFAULT_BODY_LIMIT: u64 = 64 * MIB;
const PIECE: usize = 64 * 1024;

/// A server that answers every request with `content_type` and a body of `total` bytes: `prefix`,
/// then `filler` repeated, written 64 KiB at a time as they are generated. With `chunked`, each
/// piece is one HTTP chunk; otherwise the length is announced. It stops writing as soon as the
/// client has gone.
fn generated_body(
    content_type: &'static str,
    prefix: Vec<u8>,
    filler: Vec<u8>,
    total: u64,
    chunked: bool,
) -> RawServer {
    let prefix = Arc::new(prefix);
    let filler = Arc::new(filler);
    RawServer::start(move |mut conn| {
        let (prefix, filler) = (Arc::clone(&prefix), Arc::clone(&filler));
        async move {
            if conn.read_request().await.is_none() {
                return;
            }
            let length = (!chunked).then_some(total);
            if !conn
                .write(&response_head(
                    200,
                    &[("Content-Type", content_type)],
                    length,
                ))
                .await
            {
                return;
            }
            // 64 KiB of filler, made once; the first piece starts with the prefix.
            let template: Vec<u8> = filler.iter().copied().cycle().take(PIECE).collect();
            let mut piece: Vec<u8> = prefix.to_vec();
            piece.extend_from_slice(&template[..PIECE - prefix.len()]);
            let mut sent = 0u64;
            while sent < total {
                piece.truncate(PIECE.min((total - sent) as usize));
                sent += piece.len() as u64;
                let bytes = if chunked { http_chunk(&piece) } else { piece };
                if !conn.write(&bytes).await {
                    return;
                }
                piece = template.clone();
            }
            if chunked {
                conn.write(b"0\r\n\r\n").await;
            }
            conn.wait_closed().await;
        }
    })
}

/// Runs a completion that must fail with `too_large`; checks `partialText` against the streamed
/// chunks and returns `data`.
fn too_large(sidecar: &mut Sidecar, settings: Settings) -> Value {
    let reply = complete_streamed(sidecar, settings);
    let data = reply.expect_error(REQUEST_FAILED, "too_large").clone();
    let streamed = joined(&reply.checked_chunks(&json!("s")), "content");
    assert_eq!(partial_text(&data), streamed, "partialText: {data}");
    data
}

/// A warmed-up sidecar (one completion done) with its pid and peak memory so far.
fn warm_sidecar() -> (Sidecar, u32, u64) {
    let (mut sidecar, pid) = spawn_tracked(Sidecar::builder());
    let mock = MockLlm::always(MockResponse::sse(openai_sse(&["warm"])));
    let reply = complete_streamed(&mut sidecar, Settings::sse(mock.url("/v1"), DELTA_PATH));
    assert_eq!(reply.result()["text"], "warm");
    let baseline = vm_hwm_kib(pid);
    (sidecar, pid, baseline)
}

/// Settings for a server URL.
type SettingsFor = Box<dyn Fn(String) -> Settings>;

#[test]
fn a_1_gib_body_without_a_newline_keeps_memory_bounded() {
    // The limit that applies, the server, and the settings.
    let limit = DEFAULT_EVENT_LIMIT;
    let cases: Vec<(&str, RawServer, SettingsFor, &str)> = vec![
        (
            "SSE data line, Content-Length",
            generated_body(
                "text/event-stream",
                b"data: ".to_vec(),
                b"a".to_vec(),
                GIB,
                false,
            ),
            Box::new(move |url| Settings::sse(url, DELTA_PATH).set("maxEventBytes", limit)),
            "event",
        ),
        (
            "NDJSON line, chunked",
            generated_body(
                "application/x-ndjson",
                b"{\"message\":{\"content\":\"".to_vec(),
                b"a".to_vec(),
                GIB,
                true,
            ),
            Box::new(move |url| {
                Settings::new(url)
                    .response_type("NDJSON")
                    .path("$.message.content")
                    .set("maxEventBytes", limit)
            }),
            "event",
        ),
        (
            "JSON body, chunked",
            generated_body(
                "application/json",
                b"{\"choices\":[{\"message\":{\"content\":\"".to_vec(),
                b"a".to_vec(),
                GIB,
                true,
            ),
            Box::new(move |url| {
                Settings::new(url)
                    .response_type("JSON")
                    .path(MESSAGE_PATH)
                    .set("maxEventBytes", limit)
                    .set("maxResponseBytes", limit)
            }),
            "event or body",
        ),
    ];
    let mut report = Vec::new();
    let mut failures = Vec::new();
    for (what, server, settings, expected_what) in cases {
        let (mut sidecar, pid, baseline) = warm_sidecar();
        let data = too_large(&mut sidecar, settings(server.url("/v1")).no_retries());
        assert_eq!(data["limit"], limit, "{what}: {data}");
        let what_matches = data["what"]
            .as_str()
            .is_some_and(|w| expected_what.split(" or ").any(|e| e == w));
        assert!(
            what_matches,
            "{what}: data.what must be {expected_what}: {data}"
        );
        // The sidecar drops the connection; the server stops generating.
        server.wait_closed_by_client(1, WAIT);
        assert_still_serving(&mut sidecar);
        let peak = vm_hwm_kib(pid);
        let grew = peak.saturating_sub(baseline) * KIB;
        let sent = server.bytes_written();
        report.push(format!(
            "{what}: VmHWM {baseline} KiB -> {peak} KiB (+{} MiB), server wrote {} MiB",
            grew / MIB,
            sent / MIB
        ));
        if grew > 3 * limit {
            failures.push(format!(
                "{what}: peak memory grew by {} MiB, more than 3 x the {} MiB limit",
                grew / MIB,
                limit / MIB
            ));
        }
        if sent >= GIB / 4 {
            failures.push(format!(
                "{what}: the server could write {} MiB before the sidecar stopped reading",
                sent / MIB
            ));
        }
    }
    println!("{}", report.join("\n"));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_default_event_limit_is_8_mib() {
    let mut sidecar = Sidecar::spawn();
    // Just under the limit: read, and streamed whole.
    let under = "u".repeat((DEFAULT_EVENT_LIMIT - 64 * KIB) as usize);
    let mock = MockLlm::always(MockResponse::sse(openai_sse(&[&under])));
    let reply = complete_streamed(&mut sidecar, Settings::sse(mock.url("/v1"), DELTA_PATH));
    assert_eq!(
        reply.result()["text"].as_str().map(str::len),
        Some(under.len()),
        "an event just under 8 MiB is read"
    );

    // Over it.
    let over = "o".repeat((DEFAULT_EVENT_LIMIT + 64 * KIB) as usize);
    let mock = MockLlm::always(
        MockResponse::sse(sse_event(&openai_delta("first")))
            .chunked()
            .piece(sse_event(&openai_delta(&over))),
    );
    let data = too_large(&mut sidecar, Settings::sse(mock.url("/v1"), DELTA_PATH));
    assert_eq!(data["limit"], DEFAULT_EVENT_LIMIT, "{data}");
    assert_eq!(data["what"], "event");
    assert_eq!(partial_text(&data), "first");
    assert_still_serving(&mut sidecar);
}

#[test]
fn the_default_body_limit_is_64_mib() {
    // 80 MiB of SSE comment lines: no event is large, the body is.
    let mut line = b": ".to_vec();
    line.extend(std::iter::repeat_n(b'c', 1021));
    line.push(b'\n');
    let server = generated_body(
        "text/event-stream",
        sse_event(&openai_delta("start")).into_bytes(),
        line,
        80 * MIB,
        true,
    );
    let mut sidecar = Sidecar::spawn();
    let data = too_large(&mut sidecar, Settings::sse(server.url("/v1"), DELTA_PATH));
    assert_eq!(data["limit"], DEFAULT_BODY_LIMIT, "{data}");
    assert_eq!(data["what"], "body", "{data}");
    assert_eq!(partial_text(&data), "start");
    server.wait_closed_by_client(1, WAIT);
    assert_still_serving(&mut sidecar);
}

#[test]
fn max_response_bytes_counts_the_whole_body_and_allows_a_body_of_exactly_the_limit() {
    let events: String = (0..50)
        .map(|i| sse_event(&openai_delta(&format!("{i} "))))
        .collect();
    let body = format!("{events}{}", sse_event("[DONE]"));
    let mut sidecar = Sidecar::spawn();
    let mut texts = Vec::new();
    for framing in ["Content-Length", "chunked"] {
        let mut response = MockResponse::new(200).content_type("text/event-stream");
        if framing == "chunked" {
            response = response.chunked();
        }
        // Small pieces, so the limit is crossed in the middle of the stream.
        for piece in body.as_bytes().chunks(100) {
            response = response.piece(piece);
        }
        let mock = MockLlm::always(response);
        let at_limit =
            Settings::sse(mock.url("/v1"), DELTA_PATH).set("maxResponseBytes", body.len());
        let reply = complete_streamed(&mut sidecar, at_limit);
        texts.push(reply.result()["text"].clone());

        let under =
            Settings::sse(mock.url("/v1"), DELTA_PATH).set("maxResponseBytes", body.len() - 1);
        let data = too_large(&mut sidecar, under.no_retries());
        assert_eq!(data["what"], "body", "{framing}: {data}");
        assert_eq!(data["limit"], body.len() - 1, "{framing}: {data}");
        let partial = partial_text(&data);
        let expected: String = (0..50).map(|i| format!("{i} ")).collect();
        // Where the limit is crossed depends on how the reads fall; the text before it is a prefix.
        assert!(
            expected.starts_with(partial),
            "{framing}: partialText {partial:?} must be a prefix of the text"
        );
    }
    let expected: String = (0..50).map(|i| format!("{i} ")).collect();
    assert_eq!(texts, [json!(expected), json!(expected)]);
}

#[test]
fn limits_apply_to_their_own_request_only() {
    let event = "e".repeat(5000);
    let mock = MockLlm::always(MockResponse::sse(openai_sse(&[&event])));
    let mut sidecar = Sidecar::spawn();
    let small = Settings::sse(mock.url("/v1"), DELTA_PATH).set("maxEventBytes", 1000);
    let id_small = sidecar.request("llm/complete", small.params().build());
    let id_default = sidecar.request(
        "llm/complete",
        Settings::sse(mock.url("/v1"), DELTA_PATH).params().build(),
    );
    sidecar
        .wait_response(&id_small, WAIT)
        .expect_error(REQUEST_FAILED, "too_large");
    let reply = sidecar.wait_response(&id_default, WAIT);
    assert_eq!(reply.result()["text"], json!(event));
}
