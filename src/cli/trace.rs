//! `complete --trace`: the exchange on stderr as it happens (request as sent,
//! response head, the first 16 KiB of the body), secrets masked, and a `curl`
//! command that repeats the request with the token read from
//! `$LLM_SIDECAR_TOKEN`, never written out; other credentials (a query key,
//! a cookie) are masked in the command as in the trace.

use std::io::Write;

use crate::engine::{TraceSink, TracedRequest, TracedResponse};
use crate::request::{self, Message};
use crate::secrets::{Secrets, masked_header, masked_url};
use crate::settings::Settings;

/// Prints each part of the exchange to stderr as it arrives.
pub(super) struct StderrTrace {
    secrets: Secrets,
    body: Vec<u8>,
}

/// The environment variable the `curl` command reads the token from.
const TOKEN_VARIABLE: &str = "LLM_SIDECAR_TOKEN";

fn err(text: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{text}");
}

impl StderrTrace {
    pub(super) fn new(settings: &Settings) -> Self {
        StderrTrace {
            secrets: settings.secrets.clone(),
            body: Vec::new(),
        }
    }
}

impl TraceSink for StderrTrace {
    fn request(&mut self, request: TracedRequest) {
        err(&format!("> {} {}", request.method, request.url));
        for (name, value) in &request.headers {
            err(&format!("> {name}: {}", value.as_str().unwrap_or_default()));
        }
        err(&format!("> {}", request.body));
    }

    fn response(&mut self, response: TracedResponse) {
        err(&format!("< HTTP {}", response.status));
        for (name, value) in &response.headers {
            err(&format!("< {name}: {}", value.as_str().unwrap_or_default()));
        }
    }

    fn body(&mut self, bytes: &[u8]) {
        self.body.extend_from_slice(bytes);
    }

    fn secrets(&mut self, secrets: &Secrets) {
        self.secrets = secrets.clone();
    }

    fn end(&mut self, cut: bool) {
        let body = std::mem::take(&mut self.body);
        let text = String::from_utf8_lossy(&body);
        let cut_note = if cut { ", cut" } else { "" };
        err(&format!("< body ({} bytes{cut_note}):", body.len()));
        err(&self.secrets.excerpt(&text, body.len().max(1), cut));
    }
}

/// A `curl` command that sends the same request; the token comes from
/// `$LLM_SIDECAR_TOKEN`, other secrets are masked.
pub(super) fn curl(settings: &Settings, messages: &[Message]) -> String {
    let mut parts = vec![format!(
        "curl -N -X POST {}",
        single_quoted(&masked_url(&settings.url, &settings.secrets))
    )];
    let token = settings
        .token
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty());
    for (name, header) in &request::headers(settings) {
        let value = String::from_utf8_lossy(header.as_bytes());
        let line = format!("{name}: {value}");
        let shown = match token {
            Some(token) if line.contains(token) => {
                let pieces: Vec<String> = line.split(token).map(double_quoted_inner).collect();
                format!("\"{}\"", pieces.join(&format!("${{{TOKEN_VARIABLE}}}")))
            }
            _ => {
                let sensitive = header.is_sensitive();
                let value = masked_header(name.as_str(), &value, sensitive, &settings.secrets);
                single_quoted(&format!("{name}: {value}"))
            }
        };
        parts.push(format!("-H {shown}"));
    }
    let body = request::body(&settings.body, messages);
    parts.push(format!(
        "--data-raw {}",
        single_quoted(&settings.secrets.scrub(&String::from_utf8_lossy(&body)))
    ));
    parts.join(" \\\n  ")
}

fn single_quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// `text` escaped for the inside of a double-quoted shell word.
fn double_quoted_inner(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '"' | '\\' | '$' | '`') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::Role;
    use serde_json::json;

    #[test]
    fn curl_reads_the_token_from_the_environment() {
        let settings = Settings::from_json(&json!({
            "customEngineServer": "http://h/v1/chat/completions",
            "customEngineToken": "sk-curl-secret-123456",
        }))
        .unwrap();
        let messages = [Message {
            role: Role::User,
            content: "it's".into(),
        }];
        let command = curl(&settings, &messages);
        assert!(!command.contains("sk-curl-secret-123456"), "{command}");
        assert!(
            command.contains("\"authorization: Bearer ${LLM_SIDECAR_TOKEN}\""),
            "{command}"
        );
        assert!(command.contains("it'\\''s"), "{command}");
    }
}
