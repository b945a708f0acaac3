//! A small GET through the same client as completions (proxy, TLS roots,
//! same-origin-only redirects) under the same phase limits (connect, first
//! byte, idle between reads, total) and the caller's cancel: for model lists
//! (`llm/models`, `llm/detect`). The body is read up to a size limit; a
//! non-success status is data, not a failure, so the caller can report it.

use reqwest::Url;
use reqwest::header::{CONTENT_TYPE, HeaderMap};
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

use crate::settings::{Problem, Settings};

use super::connect::{FirstByteElapsed, response_head};
use super::failure::{Failure, FailureKind, TimeoutPhase};
use super::send::{first_byte_timeout, send_error};
use super::{Engine, total_timeout, until};

/// A GET response, read to its end or to the size limit.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
    /// The body was longer than the limit and was cut.
    pub cut: bool,
}

impl Engine {
    /// GETs `url` with `headers`, using `settings` for the client, the time
    /// limits and the secrets scrubbed from errors. At most `max_bytes` of
    /// the body are kept.
    pub async fn get(
        &self,
        settings: &Settings,
        url: Url,
        headers: HeaderMap,
        max_bytes: usize,
        cancel: &CancellationToken,
    ) -> Result<Fetched, Failure> {
        let started = tokio::time::Instant::now();
        let deadline = settings.timeouts.total.map(|t| started + t);
        let client = self
            .clients
            .get(&settings.network, settings.timeouts.connect)
            .await
            .map_err(|e| {
                Failure::new(FailureKind::InvalidSettings {
                    problems: vec![Problem::new(e.field(), e.to_string())],
                })
            })?;
        let request = client.get(url).headers(headers);
        let mut response = tokio::select! {
            biased;
            _ = cancel.cancelled() => return Err(Failure::new(FailureKind::Cancelled)),
            _ = until(deadline) => return Err(total_timeout(settings)),
            sent = response_head(request, settings.timeouts.first_byte) => match sent {
                Err(FirstByteElapsed) => return Err(first_byte_timeout(settings)),
                Ok(Err(e)) => return Err(send_error(e, settings).failure),
                Ok(Ok(response)) => response,
            },
        };
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut body = Vec::new();
        let mut cut = false;
        loop {
            let read = tokio::select! {
                biased;
                _ = cancel.cancelled() => return Err(Failure::new(FailureKind::Cancelled)),
                _ = until(deadline) => return Err(total_timeout(settings)),
                read = timeout(settings.timeouts.idle, response.chunk()) => read,
            };
            match read {
                Err(_) => {
                    return Err(Failure::new(FailureKind::Timeout {
                        phase: TimeoutPhase::Idle,
                        limit_ms: settings.timeouts.idle.as_millis() as u64,
                    }));
                }
                Ok(Err(e)) => {
                    return Err(Failure::new(FailureKind::Interrupted {
                        detail: settings.secrets.scrub(&super::send::describe(&e)),
                        response_started: true,
                    }));
                }
                Ok(Ok(None)) => break,
                Ok(Ok(Some(bytes))) => {
                    let room = max_bytes - body.len();
                    if bytes.len() > room {
                        body.extend_from_slice(&bytes[..room]);
                        cut = true;
                        break;
                    }
                    body.extend_from_slice(&bytes);
                }
            }
        }
        Ok(Fetched {
            status,
            content_type,
            body,
            cut,
        })
    }
}
