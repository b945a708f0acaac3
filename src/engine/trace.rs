//! The optional observer of a completion's HTTP exchange (`"trace": true`,
//! `complete --trace`): the request as sent, the response status and
//! headers, and the first [`TRACE_BODY_BYTES`] of the raw body as received.
//!
//! Secrets are masked before anything reaches the sink: the URL through
//! [`masked_url`] (query keys however encoded), header values through
//! [`masked_header`] (cookies and authorization whole, in both directions). Without a sink nothing is kept:
//! the engine checks one `Option` per request, response and read.

use reqwest::header::HeaderMap;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::secrets::{Secrets, is_credential_header, masked_header, masked_url};
use crate::settings::Settings;

/// How much of each response body is traced.
pub const TRACE_BODY_BYTES: usize = 16 * 1024;

/// A request as sent, secrets masked.
#[derive(Debug, Clone, Serialize)]
pub struct TracedRequest {
    pub method: &'static str,
    pub url: String,
    pub headers: Map<String, Value>,
    pub body: String,
}

/// A response's head, secrets masked.
#[derive(Debug, Clone, Serialize)]
pub struct TracedResponse {
    pub status: u16,
    pub headers: Map<String, Value>,
}

/// Receives the exchange of each attempt, in order: `request`, then, when a
/// response arrived, `response`, `body` for each read until
/// [`TRACE_BODY_BYTES`], and `end`.
pub trait TraceSink: Send {
    fn request(&mut self, request: TracedRequest);
    fn response(&mut self, response: TracedResponse);
    /// Raw body bytes as received (at most [`TRACE_BODY_BYTES`] in all per attempt).
    fn body(&mut self, bytes: &[u8]);
    /// The response's body ended (or the attempt failed while reading it);
    /// `cut` when the body was longer than what was traced.
    fn end(&mut self, cut: bool);
    /// The secrets known now, to mask in what the sink shows itself (the
    /// body): called before the first request and whenever a key source
    /// gives a new key. All secrets of the sink's settings are in it.
    fn secrets(&mut self, _secrets: &Secrets) {}
}

/// A sink and how much body it may still get in this attempt.
pub(super) struct Tracer<'t> {
    sink: &'t mut dyn TraceSink,
    left: usize,
    cut: bool,
    /// A response arrived in this attempt.
    responded: bool,
}

impl<'t> Tracer<'t> {
    pub(super) fn new(sink: &'t mut dyn TraceSink) -> Self {
        Tracer {
            sink,
            left: TRACE_BODY_BYTES,
            cut: false,
            responded: false,
        }
    }

    pub(super) fn request(&mut self, settings: &Settings, headers: &HeaderMap, body: &[u8]) {
        self.left = TRACE_BODY_BYTES;
        self.cut = false;
        self.responded = false;
        self.sink.request(TracedRequest {
            method: "POST",
            url: masked_url(&settings.url, &settings.secrets),
            headers: masked(headers, settings, true),
            body: settings.secrets.scrub(&String::from_utf8_lossy(body)),
        });
    }

    pub(super) fn response(&mut self, status: u16, headers: &HeaderMap, settings: &Settings) {
        self.responded = true;
        self.sink.response(TracedResponse {
            status,
            headers: masked(headers, settings, false),
        });
    }

    pub(super) fn secrets(&mut self, secrets: &Secrets) {
        self.sink.secrets(secrets);
    }

    pub(super) fn body(&mut self, bytes: &[u8]) {
        if self.left == 0 {
            self.cut |= !bytes.is_empty();
            return;
        }
        let n = bytes.len().min(self.left);
        self.left -= n;
        self.cut |= n < bytes.len();
        self.sink.body(&bytes[..n]);
    }

    pub(super) fn end(&mut self) {
        if std::mem::take(&mut self.responded) {
            self.sink.end(self.cut);
        }
    }
}

/// Header values with secrets masked. In a request every credential-like
/// header is masked; in a response only the credential headers
/// (`Set-Cookie`), so rate-limit headers such as `x-ratelimit-remaining-tokens`
/// stay readable.
fn masked(headers: &HeaderMap, settings: &Settings, request: bool) -> Map<String, Value> {
    let mut out = Map::new();
    for (name, value) in headers {
        let text = String::from_utf8_lossy(value.as_bytes());
        let shown = if request || is_credential_header(name.as_str()) {
            masked_header(
                name.as_str(),
                &text,
                value.is_sensitive(),
                &settings.secrets,
            )
        } else {
            settings.secrets.scrub(&text)
        };
        out.insert(name.as_str().to_owned(), Value::from(shown));
    }
    out
}
