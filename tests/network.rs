//! The production network path: pooled keep-alive connections (counted at the server), the body
//! after `[DONE]` drained so the connection is reused, `HTTP_PROXY` / `HTTPS_PROXY` / `NO_PROXY`
//! and the `proxy` setting, TLS verification with `caCertificates` (a slow handshake counted as
//! connect, not first byte), and gzip / brotli bodies.
//!
//! Everything stays on loopback: proxied requests name servers on 127.0.0.2, which the test proxy
//! on 127.0.0.1 answers itself (plain HTTP) or tunnels to (CONNECT).

mod common;

use std::io::Write;

use common::proxy::{proxied_text, start_proxy};
use common::raw_server::{RawServer, http_response};
use common::tls::{TestPki, https_server, https_url};
use common::*;
use serde_json::json;

/// The text a completion gets from a server started by [`direct_server`].
const DIRECT_TEXT: &str = "direct answer";

/// A plain-HTTP server on `ip` that streams [`DIRECT_TEXT`].
fn direct_server(ip: &str) -> RawServer {
    RawServer::http_on(ip, |_| {
        http_response(
            200,
            &[("Content-Type", "text/event-stream")],
            openai_sse(&["direct ", "answer"]).as_bytes(),
        )
    })
}

/// An HTTPS server on `ip` that streams "secure answer".
fn secure_server(ip: &str, pki: &TestPki) -> RawServer {
    https_server(ip, pki, |_| {
        http_response(
            200,
            &[("Content-Type", "text/event-stream")],
            openai_sse(&["secure ", "answer"]).as_bytes(),
        )
    })
}

fn text(reply: &Reply) -> String {
    reply.result()["text"]
        .as_str()
        .expect("result.text")
        .to_owned()
}

// ---------------------------------------------------------------------------------------------
// Keep-alive and pooling

#[test]
fn ten_sequential_completions_open_one_connection() {
    let mut failures = Vec::new();
    for (framing, response) in [
        (
            "Content-Length",
            MockResponse::sse(openai_sse(&["one ", "connection"])),
        ),
        (
            "chunked",
            MockResponse::new(200)
                .content_type("text/event-stream")
                .chunked()
                .piece(sse_event(&openai_delta("one ")))
                .piece(sse_event(&openai_delta("connection")))
                .piece(sse_event("[DONE]")),
        ),
    ] {
        let mock = MockLlm::always(response);
        let mut sidecar = Sidecar::spawn();
        for _ in 0..10 {
            let reply = complete_streamed(&mut sidecar, Settings::sse(mock.url("/v1"), DELTA_PATH));
            assert_eq!(text(&reply), "one connection");
        }
        assert_eq!(mock.requests().len(), 10);
        if mock.connections_accepted() != 1 {
            failures.push(format!(
                "{framing}: 10 sequential completions opened {} connections",
                mock.connections_accepted()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_body_after_done_is_drained_so_the_connection_is_reused() {
    // After `[DONE]` the server still sends 20 KiB (more events, comments) before ending the body.
    let tail: String = (0..200)
        .map(|i| {
            format!(
                ": padding {i} {}\n{}",
                "p".repeat(40),
                sse_event(&openai_delta("ignored"))
            )
        })
        .collect();
    let mock = MockLlm::always(
        MockResponse::new(200)
            .content_type("text/event-stream")
            .chunked()
            .piece(sse_event(&openai_delta("before done")))
            .piece(sse_event("[DONE]"))
            .piece(&tail),
    );
    let mut sidecar = Sidecar::spawn();
    for _ in 0..10 {
        let reply = complete_streamed(&mut sidecar, Settings::sse(mock.url("/v1"), DELTA_PATH));
        assert_eq!(text(&reply), "before done", "nothing after [DONE] is text");
        // The rest is drained before the answer goes out, so the next request, sent at once,
        // finds the connection free.
    }
    assert_eq!(
        mock.connections_accepted(),
        1,
        "the rest of each body must be read so the connection goes back to the pool"
    );
}

#[test]
fn a_body_that_never_ends_after_done_does_not_hold_the_answer() {
    let mock = MockLlm::always(
        MockResponse::sse(sse_event(&openai_delta("answer")))
            .chunked()
            .piece(sse_event("[DONE]"))
            .piece(": the server keeps the body open\n")
            .then_hang(),
    );
    let mut sidecar = Sidecar::spawn();
    let reply = complete_streamed(&mut sidecar, Settings::sse(mock.url("/v1"), DELTA_PATH));
    assert_eq!(text(&reply), "answer", "the answer is complete at [DONE]");
    // The drain is bounded: the connection is given up, not kept waiting for ever.
    mock.wait_client_closed(0, WAIT);
    let reply = complete_streamed(&mut sidecar, Settings::sse(mock.url("/v1"), DELTA_PATH));
    assert_eq!(text(&reply), "answer");
}

#[test]
fn completions_with_different_settings_share_the_pooled_connection() {
    let mock = MockLlm::start(|request| {
        if request.path.starts_with("/ndjson") {
            MockResponse::new(200)
                .content_type("application/x-ndjson")
                .piece("{\"message\":{\"content\":\"n\"}}\n")
        } else {
            MockResponse::sse(openai_sse(&["s"]))
        }
    });
    let mut sidecar = Sidecar::spawn();
    let variants = [
        Settings::sse(mock.url("/a"), DELTA_PATH),
        Settings::sse(mock.url("/b?x=1"), DELTA_PATH).token("sk-one-token-0000"),
        Settings::sse(mock.url("/c"), DELTA_PATH).token("sk-other-token-1111"),
        Settings::new(mock.url("/ndjson"))
            .response_type("NDJSON")
            .path("$.message.content"),
        Settings::sse(mock.url("/d"), DELTA_PATH).request_format(
            json!({"customHeaders": {"X-Custom": "1"}, "customFields": {"model": "m"}}),
        ),
        Settings::sse(mock.url("/e"), DELTA_PATH).set(
            "timeouts",
            json!({"idleMs": 30000, "firstByteMs": 30000, "totalMs": 120000}),
        ),
    ];
    for settings in variants {
        complete_streamed(&mut sidecar, settings).result();
    }
    assert_eq!(
        mock.connections_accepted(),
        1,
        "settings that connect the same way share one pooled client"
    );
}

// ---------------------------------------------------------------------------------------------
// Proxies

/// A sidecar whose environment sets `vars`.
fn sidecar_with_env(vars: &[(&str, String)]) -> Sidecar {
    let mut builder = Sidecar::builder();
    for (key, value) in vars {
        builder = builder.env(key, value);
    }
    builder.spawn()
}

#[test]
fn http_proxy_from_the_environment_is_used() {
    let proxy = start_proxy("env-proxy");
    let direct = direct_server("127.0.0.2");
    let target = direct.url("/v1/chat/completions");
    let mut sidecar = sidecar_with_env(&[("HTTP_PROXY", proxy.url(""))]);
    let reply = complete_streamed(&mut sidecar, Settings::sse(target.clone(), DELTA_PATH));
    assert_eq!(text(&reply), proxied_text("env-proxy"));
    let requests = proxy.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].method, "POST");
    assert_eq!(
        requests[0].target, target,
        "a proxied request names the absolute URL"
    );
    assert!(
        !requests[0].body.is_empty(),
        "the body goes through the proxy"
    );
    assert_eq!(direct.connections_accepted(), 0, "nothing went direct");
}

#[test]
fn no_proxy_bypasses_the_proxy() {
    let proxy = start_proxy("env-proxy");
    let direct = direct_server("127.0.0.2");
    let mut sidecar = sidecar_with_env(&[
        ("HTTP_PROXY", proxy.url("")),
        ("NO_PROXY", "localhost,127.0.0.2".to_owned()),
    ]);
    let reply = complete_streamed(&mut sidecar, Settings::sse(direct.url("/v1"), DELTA_PATH));
    assert_eq!(text(&reply), DIRECT_TEXT);
    assert_eq!(proxy.connections_accepted(), 0);
    assert_eq!(direct.requests().len(), 1);
}

#[test]
fn the_proxy_setting_overrides_the_environment() {
    let env_proxy = start_proxy("env-proxy");
    let settings_proxy = start_proxy("settings-proxy");
    let direct = direct_server("127.0.0.2");
    let mut sidecar = sidecar_with_env(&[("HTTP_PROXY", env_proxy.url(""))]);
    let settings =
        Settings::sse(direct.url("/v1"), DELTA_PATH).set("proxy", settings_proxy.url(""));
    let reply = complete_streamed(&mut sidecar, settings);
    assert_eq!(text(&reply), proxied_text("settings-proxy"));
    assert_eq!(settings_proxy.requests().len(), 1);
    assert_eq!(env_proxy.connections_accepted(), 0);
    assert_eq!(direct.connections_accepted(), 0);

    // The next request without the setting goes through the environment's proxy again.
    let reply = complete_streamed(&mut sidecar, Settings::sse(direct.url("/v1"), DELTA_PATH));
    assert_eq!(text(&reply), proxied_text("env-proxy"));
}

#[test]
fn proxy_none_connects_directly_despite_the_environment() {
    let proxy = start_proxy("env-proxy");
    let direct = direct_server("127.0.0.2");
    let mut sidecar = sidecar_with_env(&[
        ("HTTP_PROXY", proxy.url("")),
        ("HTTPS_PROXY", proxy.url("")),
    ]);
    let settings = Settings::sse(direct.url("/v1"), DELTA_PATH).set("proxy", "none");
    let reply = complete_streamed(&mut sidecar, settings);
    assert_eq!(text(&reply), DIRECT_TEXT);
    assert_eq!(proxy.connections_accepted(), 0);
    assert_eq!(direct.requests().len(), 1);
}

#[test]
fn https_proxy_tunnels_tls_with_connect() {
    let pki = TestPki::with_ca();
    let secure = secure_server("127.0.0.2", &pki);
    let proxy = start_proxy("env-proxy");
    let mut sidecar = sidecar_with_env(&[("HTTPS_PROXY", proxy.url(""))]);
    let settings =
        Settings::sse(https_url(&secure, "/v1"), DELTA_PATH).set("caCertificates", pki.ca_path());
    let reply = complete_streamed(&mut sidecar, settings);
    assert_eq!(text(&reply), "secure answer");
    let requests = proxy.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].method, "CONNECT");
    assert_eq!(requests[0].target, secure.addr().to_string());
    let inner = secure.requests();
    assert_eq!(inner.len(), 1, "the POST went through the tunnel");
    assert_eq!(inner[0].method, "POST");
    assert_eq!(inner[0].target, "/v1");
}

// ---------------------------------------------------------------------------------------------
// TLS

#[test]
fn ca_certificates_adds_a_local_ca_to_the_trusted_roots() {
    let mut failures = Vec::new();
    for (what, pki) in [
        ("a certificate issued by a local CA", TestPki::with_ca()),
        ("a self-signed certificate", TestPki::self_signed()),
    ] {
        let secure = secure_server("127.0.0.1", &pki);
        let mut sidecar = Sidecar::spawn();
        let settings = Settings::sse(https_url(&secure, "/v1"), DELTA_PATH)
            .set("caCertificates", pki.ca_path());
        let reply = complete_streamed(&mut sidecar, settings);
        match reply.response.get("result") {
            Some(result) if result["text"] == "secure answer" => {}
            _ => failures.push(format!("{what}: {}", reply.response)),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn tls_verification_is_on_by_default() {
    let pki = TestPki::with_ca();
    let secure = secure_server("127.0.0.1", &pki);
    let url = https_url(&secure, "/v1");
    let mut sidecar = Sidecar::spawn();

    let reply = complete_streamed(
        &mut sidecar,
        Settings::sse(url.clone(), DELTA_PATH).no_retries(),
    );
    let data = reply.expect_error(REQUEST_FAILED, "connect");
    assert_eq!(partial_text(data), "");
    assert_eq!(data["url"], json!(url));
    assert!(data["detail"].is_string(), "{data}");
    assert!(
        secure.requests().is_empty(),
        "no request over an unverified connection"
    );

    // With the CA the same server is trusted; a pooled connection of that configuration must not
    // be handed to a request without it.
    let trusted = Settings::sse(url.clone(), DELTA_PATH).set("caCertificates", pki.ca_path());
    assert_eq!(
        text(&complete_streamed(&mut sidecar, trusted)),
        "secure answer"
    );
    let reply = complete_streamed(&mut sidecar, Settings::sse(url, DELTA_PATH).no_retries());
    reply.expect_error(REQUEST_FAILED, "connect");
    assert_eq!(secure.requests().len(), 1);
}

#[test]
fn an_unusable_ca_certificates_file_is_a_settings_problem() {
    let secure = direct_server("127.0.0.1");
    let not_pem = {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(b"this is not a PEM bundle\n").unwrap();
        file
    };
    let mut sidecar = Sidecar::spawn();
    for (what, path) in [
        (
            "a missing file",
            "/nonexistent/llm-sidecar/ca.pem".to_owned(),
        ),
        (
            "a file without certificates",
            not_pem.path().to_str().unwrap().to_owned(),
        ),
    ] {
        let settings = Settings::sse(secure.url("/v1"), DELTA_PATH).set("caCertificates", path);
        let reply = complete_streamed(&mut sidecar, settings);
        let data = reply.expect_error(INVALID_PARAMS, "invalid_settings");
        let fields: Vec<&str> = data["problems"]
            .as_array()
            .unwrap_or_else(|| panic!("{what}: problems: {data}"))
            .iter()
            .filter_map(|p| p["field"].as_str())
            .collect();
        assert_eq!(fields, ["caCertificates"], "{what}: {data}");
    }
    assert_still_serving(&mut sidecar);
}

// ---------------------------------------------------------------------------------------------
// Compressed bodies

#[derive(Clone, Copy, Debug)]
enum Codec {
    Gzip,
    Brotli,
}

impl Codec {
    fn name(self) -> &'static str {
        match self {
            Codec::Gzip => "gzip",
            Codec::Brotli => "br",
        }
    }

    /// Compresses `parts` as one stream, flushed after each part: piece `i` decodes to part `i`
    /// without any later piece. The last piece also ends the stream.
    fn compress(self, parts: &[String]) -> Vec<Vec<u8>> {
        let mut pieces = Vec::new();
        match self {
            Codec::Gzip => {
                let mut encoder =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                for part in parts {
                    encoder.write_all(part.as_bytes()).unwrap();
                    encoder.flush().unwrap();
                    pieces.push(std::mem::take(encoder.get_mut()));
                }
                let trailer = encoder.finish().unwrap();
                pieces.last_mut().unwrap().extend(trailer);
            }
            Codec::Brotli => {
                let mut encoder = brotli::CompressorWriter::new(Vec::new(), 4096, 5, 22);
                for part in parts {
                    encoder.write_all(part.as_bytes()).unwrap();
                    encoder.flush().unwrap();
                    pieces.push(std::mem::take(encoder.get_mut()));
                }
                let trailer = encoder.into_inner();
                pieces.last_mut().unwrap().extend(trailer);
            }
        }
        pieces
    }
}

#[test]
fn gzip_and_brotli_bodies_are_decoded() {
    let events: Vec<String> = ["Zip", "ped ", "stream ", "é✓"]
        .iter()
        .map(|t| sse_event(&openai_delta(t)))
        .chain([sse_event("[DONE]")])
        .collect();
    let mut sidecar = Sidecar::spawn();
    for codec in [Codec::Gzip, Codec::Brotli] {
        let compressed: Vec<u8> = codec.compress(&events).concat();
        // Whole, and cut into pieces at every 7th byte (one HTTP chunk each).
        let whole = MockResponse::sse(&compressed).header("Content-Encoding", codec.name());
        let mut split = MockResponse::new(200)
            .content_type("text/event-stream")
            .header("Content-Encoding", codec.name())
            .chunked();
        for piece in compressed.chunks(7) {
            split = split.piece(piece);
        }
        for (delivery, response) in [("whole", whole), ("split", split)] {
            let mock = MockLlm::always(response);
            let reply = complete_streamed(&mut sidecar, Settings::sse(mock.url("/v1"), DELTA_PATH));
            assert_eq!(text(&reply), "Zipped stream é✓", "{codec:?}, {delivery}");
            let request = mock.single_request();
            let accepted = request
                .header("accept-encoding")
                .unwrap_or_default()
                .to_owned();
            assert!(
                accepted.contains(codec.name()),
                "{codec:?}: Accept-Encoding {accepted:?}"
            );
        }
    }
}

#[test]
fn a_compressed_stream_is_decoded_as_it_arrives() {
    let mut sidecar = Sidecar::spawn();
    for codec in [Codec::Gzip, Codec::Brotli] {
        let parts = [
            sse_event(&openai_delta("first")),
            format!(
                "{}{}",
                sse_event(&openai_delta(" second")),
                sse_event("[DONE]")
            ),
        ];
        let pieces = codec.compress(&parts);
        let gate = Gate::new();
        let mock = MockLlm::always(
            MockResponse::new(200)
                .content_type("text/event-stream")
                .header("Content-Encoding", codec.name())
                .chunked()
                .piece(&pieces[0])
                .piece_after(Before::Gate(gate.clone()), &pieces[1]),
        );
        let settings = Settings::sse(mock.url("/v1"), DELTA_PATH);
        let id = sidecar.request("llm/complete", settings.params().stream_id("s").build());
        // The first chunk must come out before the rest of the compressed stream is sent.
        let chunk = sidecar.wait_chunk(&json!("s"), 0, WAIT);
        assert_eq!(chunk.text, "first", "{codec:?}");
        gate.open();
        let reply = sidecar.wait_response(&id, WAIT);
        assert_eq!(text(&reply), "first second", "{codec:?}");
    }
}

#[test]
fn a_compressed_error_body_is_decoded() {
    let body = json!({"error": {"message": "Incorrect API key provided"}}).to_string();
    let mut sidecar = Sidecar::spawn();
    for codec in [Codec::Gzip, Codec::Brotli] {
        let compressed = codec.compress(std::slice::from_ref(&body)).concat();
        let mock = MockLlm::always(
            MockResponse::json(401, &compressed).header("Content-Encoding", codec.name()),
        );
        let reply = complete_streamed(
            &mut sidecar,
            Settings::sse(mock.url("/v1"), DELTA_PATH).no_retries(),
        );
        let data = reply.expect_error(REQUEST_FAILED, "http_status");
        assert_eq!(
            data["providerMessage"], "Incorrect API key provided",
            "{codec:?}"
        );
        assert_eq!(data["body"], json!(body), "{codec:?}");
    }
}

#[test]
fn a_slow_tls_handshake_belongs_to_the_connect_phase_not_to_first_byte_ms() {
    // The handshake starts 1.5 s after the TCP accept; the answer comes at once after it. The
    // connection is ready only after the handshake, so a 400 ms first-byte limit is not reached.
    let pki = TestPki::with_ca();
    let acceptor = pki.acceptor();
    let server = RawServer::start_on("127.0.0.1", move |conn| {
        let acceptor = acceptor.clone();
        async move {
            tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
            let Ok(mut conn) = conn.upgrade(|tcp| acceptor.accept(tcp)).await else {
                return;
            };
            while conn.read_request().await.is_some() {
                let body = openai_sse(&["after ", "handshake"]);
                let head = [("Content-Type", "text/event-stream")];
                if !conn
                    .write(&http_response(200, &head, body.as_bytes()))
                    .await
                {
                    return;
                }
            }
        }
    });
    let mut sidecar = Sidecar::spawn();
    let settings = Settings::sse(https_url(&server, "/v1"), DELTA_PATH)
        .set("caCertificates", pki.ca_path())
        .no_retries()
        .set("timeouts", json!({"connectMs": 20000, "firstByteMs": 400}));
    let reply = sidecar.complete(settings.params().build());
    assert_eq!(
        reply.result()["text"],
        "after handshake",
        "{}",
        reply.response
    );
}
