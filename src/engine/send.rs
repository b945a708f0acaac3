//! Sending one attempt: the POST, the wait for the response headers, and a
//! non-success response or a transport error turned into its failure, with
//! the server's own message and, where the cause is known, what the user can
//! change (plain HTTP behind an https URL, an untrusted certificate, the
//! proxy rather than the server, a base URL without the endpoint path).

use bytes::Bytes;
use reqwest::header::{CONTENT_TYPE, HeaderMap, LOCATION, RETRY_AFTER};
use reqwest::{Response, Url};
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

use crate::decode::{BodyDecoder, Event, ResponseType};
use crate::extract::{parse_lenient, provider_message};
use crate::settings::{Proxy, Settings};

use super::connect::{FirstByteElapsed, response_head};
use super::failure::{Failure, FailureKind, TimeoutPhase};
use super::retry::{AttemptError, Retry, parse_retry_after};
use super::trace::Tracer;
use super::{HttpInfo, total_timeout, until};

/// How much of an error body is reported.
pub(super) const ERROR_BODY_BYTES: usize = 4096;
/// How much of an error body is read to find the provider's message.
const ERROR_BODY_READ_BYTES: usize = 64 * 1024;

/// One attempt: the response when its status is a success.
pub(super) async fn send(
    client: &reqwest::Client,
    settings: &Settings,
    body: &Bytes,
    headers: &HeaderMap,
    cancel: &CancellationToken,
    deadline: Option<tokio::time::Instant>,
    tracer: &mut Option<Tracer<'_>>,
) -> Result<Response, AttemptError> {
    let request = client
        .post(settings.url.clone())
        .headers(headers.clone())
        .body(body.clone());
    let first_byte = settings.timeouts.first_byte;
    let response = tokio::select! {
        biased;
        _ = cancel.cancelled() => return Err(Failure::new(FailureKind::Cancelled).into()),
        _ = until(deadline) => return Err(total_timeout(settings).into()),
        sent = response_head(request, first_byte) => match sent {
            Err(FirstByteElapsed) => return Err(first_byte_timeout(settings).into()),
            Ok(Err(e)) => return Err(send_error(e, settings)),
            Ok(Ok(response)) => response,
        },
    };
    if let Some(tracer) = tracer {
        tracer.response(response.status().as_u16(), response.headers(), settings);
    }
    if response.status().is_success() {
        return Ok(response);
    }
    Err(status_error(response, settings, cancel, tracer).await)
}

/// The first-byte limit passed.
pub(super) fn first_byte_timeout(settings: &Settings) -> Failure {
    Failure::new(FailureKind::Timeout {
        phase: TimeoutPhase::FirstByte,
        limit_ms: settings.timeouts.first_byte.as_millis() as u64,
    })
}

/// Turns a non-success response into its failure, reading a bounded part of the body.
async fn status_error(
    mut response: Response,
    settings: &Settings,
    cancel: &CancellationToken,
    tracer: &mut Option<Tracer<'_>>,
) -> AttemptError {
    let status = response.status();
    let headers = response.headers().clone();
    let header = |name| {
        headers
            .get(name)
            .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
            .map(str::to_owned)
    };
    let mut raw = Vec::new();
    let read = async {
        while raw.len() < ERROR_BODY_READ_BYTES {
            match response.chunk().await {
                Ok(Some(bytes)) => raw.extend_from_slice(&bytes),
                _ => break,
            }
        }
    };
    tokio::select! {
        biased;
        _ = cancel.cancelled() => return Failure::new(FailureKind::Cancelled).into(),
        _ = timeout(settings.timeouts.idle, read) => {}
    }
    if let Some(tracer) = tracer {
        tracer.body(&raw);
    }
    let text = String::from_utf8_lossy(&raw);
    let message = error_body_message(&raw).map(|m| settings.secrets.scrub(&m));
    let retry_after = header(RETRY_AFTER);
    let retryable = matches!(status.as_u16(), 429 | 500 | 502 | 503 | 504);
    let location = status.is_redirection().then(|| header(LOCATION)).flatten();
    let hint = match status.as_u16() {
        404 => missing_endpoint_hint(&settings.url),
        501 => no_infill_hint(&settings.url, message.as_deref()),
        _ => None,
    };
    let http = HttpInfo {
        status: status.as_u16(),
        content_type: header(CONTENT_TYPE),
    };
    AttemptError {
        retry_after: retry_after.as_deref().and_then(parse_retry_after),
        failure: Failure {
            http: Some(http),
            ..Failure::new(FailureKind::HttpStatus {
                status: status.as_u16(),
                body: settings.secrets.excerpt(
                    &text,
                    ERROR_BODY_BYTES,
                    raw.len() >= ERROR_BODY_READ_BYTES,
                ),
                provider_message: message,
                content_type: header(CONTENT_TYPE),
                retry_after,
                location: location.map(|l| settings.secrets.scrub(&l)),
                hint,
            })
        },
        retry: if retryable {
            Retry::WithBackoff
        } else {
            Retry::Never
        },
    }
}

/// The server's own words in an error body: a JSON error document, or the
/// first error event of an SSE or NDJSON body.
fn error_body_message(raw: &[u8]) -> Option<String> {
    let mut decoder = BodyDecoder::new(ResponseType::Json, raw.len().max(1), usize::MAX);
    let mut events = Vec::new();
    decoder.feed(raw, &mut events).ok()?;
    decoder.finish(&mut events).ok()?;
    events.iter().find_map(|event| match event {
        Event::Data { data, .. } | Event::Stray(data) => {
            parse_lenient(data.trim()).and_then(|v| provider_message(&v))
        }
        Event::Truncated(_) => None,
    })
}

/// For a 501 from llama.cpp's `/infill`: the loaded model has no
/// fill-in-the-middle tokens, which no setting of the request can change.
fn no_infill_hint(url: &Url, message: Option<&str>) -> Option<String> {
    let infill = url.path().trim_end_matches('/').ends_with("/infill")
        || message.is_some_and(|m| m.contains("Infill is not supported"));
    infill.then(|| {
        "the model the llama.cpp server has loaded has no fill-in-the-middle tokens, so /infill cannot work with it: \
         load a FIM-trained model (a Qwen2.5-Coder, StarCoder2, DeepSeek-Coder or CodeGemma base model), or send the \
         prompt to /completion with the fim.template of the model you run"
            .to_owned()
    })
}

/// For a 404 from a URL with no endpoint path (`http://host:8080`, `…/v1`):
/// the path such servers take.
fn missing_endpoint_hint(url: &Url) -> Option<String> {
    let path = url.path().trim_end_matches('/');
    if !(path.is_empty() || path.ends_with("/v1") || path == "/api") {
        return None;
    }
    let mut suggested = url.clone();
    suggested.set_query(None);
    let (endpoint, family) = if path == "/api" {
        ("/chat", "Ollama's native API")
    } else if path.ends_with("/v1") {
        ("/chat/completions", "OpenAI-compatible servers")
    } else {
        ("/v1/chat/completions", "OpenAI-compatible servers")
    };
    suggested.set_path(&format!("{path}{endpoint}"));
    Some(format!(
        "the URL names no endpoint: customEngineServer must be the full chat endpoint, e.g. {suggested} for {family}"
    ))
}

/// Classifies an error from sending the request.
pub(super) fn send_error(error: reqwest::Error, settings: &Settings) -> AttemptError {
    let detail = settings.secrets.scrub(&describe(&error));
    if error.is_connect() {
        if error.is_timeout() {
            return AttemptError::retryable(Failure::new(FailureKind::Timeout {
                phase: TimeoutPhase::Connect,
                limit_ms: settings.timeouts.connect.as_millis() as u64,
            }));
        }
        let hint = tls_hint(&detail, &settings.url);
        let failure = Failure::new(FailureKind::Connect {
            url: settings.display_url(),
            detail,
            proxy: proxy_in_use(settings),
            hint: hint.map(str::to_owned),
        });
        // A certificate or protocol mismatch fails the same way every time.
        return match hint {
            Some(_) => failure.into(),
            None => AttemptError::retryable(failure),
        };
    }
    if error.is_redirect() {
        return Failure::new(FailureKind::Connect {
            url: settings.display_url(),
            detail: format!("too many redirects: {detail}"),
            proxy: None,
            hint: None,
        })
        .into();
    }
    // The connection closed before any response, after the request may have
    // been read (hyper's pool re-sends one it never wrote by itself): a
    // retry, under the budget.
    AttemptError::retryable(Failure::new(FailureKind::Interrupted {
        detail,
        response_started: false,
    }))
}

/// What a TLS failure means for the user; such a failure is not retried.
fn tls_hint(detail: &str, url: &Url) -> Option<&'static str> {
    if url.scheme() != "https" {
        return None;
    }
    if detail.contains("InvalidContentType") || detail.contains("wrong version number") {
        return Some("the server speaks plain HTTP, not TLS: use http:// in customEngineServer");
    }
    if detail.contains("certificate") {
        return Some(
            "the server's TLS certificate is not trusted; if it is signed by your own or your company's CA, add that CA's PEM file with caCertificates",
        );
    }
    None
}

/// The proxy this request goes through, shown without credentials.
fn proxy_in_use(settings: &Settings) -> Option<String> {
    let url = &settings.url;
    let configured = match &settings.network.proxy {
        Proxy::Direct => return None,
        Proxy::Url(proxy) => Some(proxy.clone()),
        Proxy::FromEnvironment => {
            let names: &[&str] = if url.scheme() == "https" {
                &["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"]
            } else {
                &["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"]
            };
            names
                .iter()
                .find_map(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
        }
    }?;
    if no_proxy_matches(url.host_str().unwrap_or("")) {
        return None;
    }
    let shown = match Url::parse(&configured) {
        Ok(proxy) => crate::settings::display_url(&proxy),
        Err(_) => settings.secrets.scrub(&configured),
    };
    Some(shown)
}

/// `NO_PROXY` as curl reads it: `*`, or host names and domain suffixes.
fn no_proxy_matches(host: &str) -> bool {
    let list = std::env::var("NO_PROXY")
        .or_else(|_| std::env::var("no_proxy"))
        .unwrap_or_default();
    list.split(',').map(str::trim).any(|entry| {
        let entry = entry.trim_start_matches('.');
        !entry.is_empty()
            && (entry == "*"
                || host.eq_ignore_ascii_case(entry)
                || host
                    .to_ascii_lowercase()
                    .ends_with(&format!(".{}", entry.to_ascii_lowercase())))
    })
}

/// An error's message with its causes, without the URL (which may hold a key).
pub(super) fn describe(error: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut text = String::new();
    let mut source = error.source();
    while let Some(cause) = source {
        let part = cause.to_string();
        if !text.contains(&part) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&part);
        }
        source = cause.source();
    }
    if text.is_empty() {
        // reqwest's own message names the URL; say what kind of error it was instead.
        text = if error.is_body() {
            "error reading the response body".to_owned()
        } else if error.is_decode() {
            "error decoding the response body".to_owned()
        } else {
            "request failed".to_owned()
        };
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_hints() {
        let hint = |u: &str| missing_endpoint_hint(&Url::parse(u).unwrap());
        assert!(
            hint("http://h:8080")
                .unwrap()
                .contains("http://h:8080/v1/chat/completions")
        );
        assert!(
            hint("http://h/v1/")
                .unwrap()
                .contains("http://h/v1/chat/completions")
        );
        assert!(hint("http://h/api").unwrap().contains("http://h/api/chat"));
        assert_eq!(hint("http://h/v1/chat/completions"), None);
    }

    #[test]
    fn error_messages_from_json_and_sse_bodies() {
        assert_eq!(
            error_body_message(br#"{"error":{"message":"bad key"}}"#).as_deref(),
            Some("bad key")
        );
        assert_eq!(
            error_body_message(b"event: error\ndata: {\"error\":{\"message\":\"quota\"}}\n\n")
                .as_deref(),
            Some("quota")
        );
        assert_eq!(error_body_message(b"<html>nope</html>"), None);
        // Python's json.dumps writes NaN.
        assert_eq!(
            error_body_message(br#"{"error":{"message":"bad input"},"score":NaN}"#).as_deref(),
            Some("bad input")
        );
    }
}
