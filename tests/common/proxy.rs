//! A tiny HTTP proxy on 127.0.0.1 that records what it is asked.
//!
//! A plain-HTTP request in absolute form (`POST http://127.0.0.2:port/v1 HTTP/1.1`) is answered by
//! the proxy itself with an OpenAI SSE stream saying `via <name>`, so a test can tell which way a
//! request went. `CONNECT host:port` is tunnelled, to loopback addresses only.

use std::net::SocketAddr;

use tokio::net::TcpStream;

use super::raw_server::{RawServer, http_response};
use super::settings::openai_sse;

/// The text a completion gets when the proxy named `name` answered it.
pub fn proxied_text(name: &str) -> String {
    format!("via {name}")
}

/// Starts a proxy named `name`; its URL is `http://<addr>` ([`RawServer::url`] with `""`).
pub fn start_proxy(name: &'static str) -> RawServer {
    RawServer::start(move |mut conn| async move {
        while let Some(request) = conn.read_request().await {
            if request.method.eq_ignore_ascii_case("CONNECT") {
                let upstream = request
                    .target
                    .parse::<SocketAddr>()
                    .ok()
                    .filter(|addr| addr.ip().is_loopback());
                let Some(upstream) = upstream else {
                    conn.respond(403, &[], b"this test proxy tunnels to loopback only")
                        .await;
                    return;
                };
                let Ok(mut upstream) = TcpStream::connect(upstream).await else {
                    conn.respond(502, &[], b"upstream refused").await;
                    return;
                };
                if !conn
                    .write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .await
                {
                    return;
                }
                let _ = tokio::io::copy_bidirectional(conn.stream(), &mut upstream).await;
                return;
            }
            let body = openai_sse(&["via ", name]);
            let response = http_response(
                200,
                &[("Content-Type", "text/event-stream")],
                body.as_bytes(),
            );
            if !conn.write(&response).await {
                return;
            }
        }
    })
}
