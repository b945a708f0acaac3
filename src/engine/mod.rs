//! One completion, end to end: [`Engine::complete`] is the single path every
//! front end uses (the RPC server, the CLI, test-connection).
//!
//! Text goes out through a [`ChunkSink`] the moment the bytes holding it have
//! been decoded; the caller decides what a chunk becomes (an `llm/chunk`
//! notification, a write to the terminal). Time is limited per phase
//! (connect, first byte, idle between reads, total), never by a whole-request
//! timeout, which would cut long generations.
//!
//! The jobs are split by file: [`failure`] (what can go wrong, as data and as
//! a sentence), [`retry`] (which attempts are repeated, and the waits),
//! [`connect`] (when a request's connection is ready, for the first-byte limit),
//! [`send`] (one request up to its response headers), [`read`] (one body
//! to its end) and [`keys`] (the key commands run before sending). This file
//! holds the attempt loop and the types a caller sees.

pub mod connect;
pub mod failure;
mod get;
pub mod keys;
mod read;
mod retry;
mod send;
pub mod trace;

pub use failure::{Failure, FailureKind, TimeoutPhase};
pub use get::Fetched;
pub use trace::{TRACE_BODY_BYTES, TraceSink, TracedRequest, TracedResponse};

use std::future::Future;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;
use tokio::time::{sleep, sleep_until};
use tokio_util::sync::CancellationToken;

use crate::client::Clients;
use crate::request::{self, Message};
use crate::settings::{Problem, Settings};

use self::retry::{AttemptError, Attempts, Decision};
use self::trace::Tracer;

/// Runs completions; holds what is shared between them (the HTTP clients).
#[derive(Debug, Default)]
pub struct Engine {
    clients: Clients,
    /// The outputs of key commands, cached for the process.
    keys: keys::KeyCommands,
}

/// Which channel a piece of text belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChunkKind {
    Content,
    Reasoning,
}

/// Where text goes as it is extracted.
pub trait ChunkSink: Send {
    /// Called once for every non-empty piece, in order.
    fn chunk(&mut self, kind: ChunkKind, text: &str) -> impl Future<Output = ()> + Send;
}

/// A finished completion.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Completion {
    pub text: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reasoning: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Value>,
    /// Non-empty pieces sent to the sink.
    pub chunks: u64,
    /// The format actually read.
    pub response_type: crate::decode::ResponseType,
    /// The HTTP status and Content-Type of the response.
    #[serde(flatten)]
    pub http: HttpInfo,
    pub timings: Timings,
    /// Things that went wrong without stopping the answer (several choices
    /// mixed by a positional path, events that could not be read).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// What the server's response said about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpInfo {
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
}

/// Where the time went, in milliseconds since the request started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Timings {
    /// Until the response headers arrived (of the last attempt).
    pub first_byte_ms: u64,
    /// Until the first piece of text, if there was one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_chunk_ms: Option<u64>,
    pub total_ms: u64,
    /// Attempts made (1 when nothing was retried).
    pub attempts: u32,
}

/// The text gathered so far and where it goes.
struct Output<'s, S> {
    sink: &'s mut S,
    text: String,
    reasoning: String,
    chunks: u64,
    first_chunk: Option<Instant>,
}

impl<S: ChunkSink> Output<'_, S> {
    async fn emit(&mut self, kind: ChunkKind, piece: &str) {
        if piece.is_empty() {
            return;
        }
        self.first_chunk.get_or_insert_with(Instant::now);
        match kind {
            ChunkKind::Content => self.text.push_str(piece),
            ChunkKind::Reasoning => self.reasoning.push_str(piece),
        }
        self.chunks += 1;
        self.sink.chunk(kind, piece).await;
    }
}

impl<S> Output<'_, S> {
    /// The failure as the caller sees it: with the text already sent.
    fn failed(&mut self, mut failure: Failure, attempts: u32, started: Instant) -> Failure {
        failure.partial_text = std::mem::take(&mut self.text);
        failure.partial_reasoning = std::mem::take(&mut self.reasoning);
        failure.attempts = attempts;
        failure.total_ms = started.elapsed().as_millis() as u64;
        failure
    }
}

impl Engine {
    pub fn new() -> Self {
        Engine::default()
    }

    /// Runs one completion. Text goes to `sink` as it arrives; `cancel` stops
    /// it at any point, closing the connection.
    pub async fn complete<S: ChunkSink>(
        &self,
        settings: &Settings,
        messages: &[Message],
        sink: &mut S,
        cancel: &CancellationToken,
    ) -> Result<Completion, Failure> {
        self.complete_traced(settings, messages, sink, cancel, None)
            .await
    }

    /// [`Engine::complete`] with the HTTP exchange of each attempt shown to
    /// `trace` (secrets masked); `None` keeps nothing.
    pub async fn complete_traced<S: ChunkSink>(
        &self,
        settings: &Settings,
        messages: &[Message],
        sink: &mut S,
        cancel: &CancellationToken,
        trace: Option<&mut dyn TraceSink>,
    ) -> Result<Completion, Failure> {
        let body = Bytes::from(request::body(&settings.body, messages));
        self.complete_body(settings, body, sink, cancel, trace)
            .await
    }

    /// [`Engine::complete_traced`] for a body built by the caller (code
    /// completion builds its own from the prefix and suffix): the same send,
    /// read, time limits, retries, cancellation, decoding and extraction.
    pub async fn complete_body<S: ChunkSink>(
        &self,
        original: &Settings,
        body: Bytes,
        sink: &mut S,
        cancel: &CancellationToken,
        trace: Option<&mut dyn TraceSink>,
    ) -> Result<Completion, Failure> {
        let mut tracer = trace.map(Tracer::new);
        let started = Instant::now();
        // Key commands run before anything is sent; their output is secret.
        let (mut current, mut used_keys) = match self.resolve_keys(original, cancel).await? {
            Some((resolved, outputs)) => (std::borrow::Cow::Owned(resolved), outputs),
            None => (std::borrow::Cow::Borrowed(original), Vec::new()),
        };
        let settings: &Settings = &current;
        let deadline = settings
            .timeouts
            .total
            .map(|t| tokio::time::Instant::from_std(started + t));
        let mut out = Output {
            sink,
            text: String::new(),
            reasoning: String::new(),
            chunks: 0,
            first_chunk: None,
        };
        let client = self
            .clients
            .get(&settings.network, settings.timeouts.connect)
            .await
            .map_err(|e| {
                Failure::new(FailureKind::InvalidSettings {
                    problems: vec![Problem::new(e.field(), e.to_string())],
                })
            })?;
        let mut headers = request::headers(settings);
        if let Some(tracer) = &mut tracer {
            tracer.secrets(&settings.secrets);
        }
        tracing::debug!(url = %settings.display_url(), bytes = body.len(), "sending completion request");

        let mut attempts = Attempts::default();
        let mut keys_refreshed = false;
        loop {
            let settings: &Settings = &current;
            attempts.made += 1;
            let attempt_started = Instant::now();
            if let Some(tracer) = &mut tracer {
                tracer.request(settings, &headers, &body);
            }
            let sent = send::send(
                &client,
                settings,
                &body,
                &headers,
                cancel,
                deadline,
                &mut tracer,
            );
            let error = match sent.await {
                Ok(response) => {
                    let first_byte = started.elapsed();
                    let http = HttpInfo {
                        status: response.status().as_u16(),
                        content_type: response
                            .headers()
                            .get(reqwest::header::CONTENT_TYPE)
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_owned),
                    };
                    let read =
                        read::read(response, settings, &mut out, cancel, deadline, &mut tracer);
                    let read = read.await;
                    if let Some(tracer) = &mut tracer {
                        tracer.end();
                    }
                    match read {
                        Ok(end) => {
                            let ms = |d: Duration| d.as_millis() as u64;
                            return Ok(Completion {
                                text: out.text,
                                reasoning: out.reasoning,
                                finish_reason: end.finish_reason,
                                usage: end.usage,
                                chunks: out.chunks,
                                response_type: end.response_type,
                                http,
                                timings: Timings {
                                    first_byte_ms: ms(first_byte),
                                    first_chunk_ms: out.first_chunk.map(|t| ms(t - started)),
                                    total_ms: ms(started.elapsed()),
                                    attempts: attempts.made,
                                },
                                warnings: end.warnings,
                            });
                        }
                        Err(mut error) => {
                            error.failure.http.get_or_insert(http);
                            error.failure.first_byte_ms = Some(first_byte.as_millis() as u64);
                            error
                        }
                    }
                }
                Err(error) => {
                    if let Some(tracer) = &mut tracer {
                        tracer.end();
                    }
                    error
                }
            };
            // A key the server refused, from a command: the command is run
            // again once, and the request sent once more only with a new key
            // (the refused request was not served).
            if !keys_refreshed && out.chunks == 0 && error.failure.refused_credentials() {
                keys_refreshed = true;
                match self.refreshed_keys(original, &used_keys, cancel).await {
                    Ok(Some((fresh, outputs))) => {
                        tracing::info!(
                            status = error.failure.http.as_ref().map_or(0, |h| h.status),
                            "the server refused the key; sending once more with the key command's new output"
                        );
                        current = std::borrow::Cow::Owned(fresh);
                        used_keys = outputs;
                        headers = request::headers(&current);
                        if let Some(tracer) = &mut tracer {
                            tracer.secrets(&current.secrets);
                        }
                        continue;
                    }
                    Ok(None) => {}
                    Err(failure) => return Err(out.failed(failure, attempts.made, started)),
                }
            }
            match attempts.after(&error, &settings.retry, out.chunks > 0) {
                Decision::GiveUp => {
                    return Err(out.failed(error.failure, attempts.made, started));
                }
                Decision::Again { wait } => {
                    tracing::warn!(
                        attempt = attempts.made,
                        kind = error.failure.kind_name(),
                        after_ms = attempt_started.elapsed().as_millis() as u64,
                        wait_ms = wait.as_millis() as u64,
                        "attempt failed before any text was sent; retrying"
                    );
                    tokio::select! {
                        biased;
                        _ = cancel.cancelled() => {
                            let cancelled = Failure::new(FailureKind::Cancelled);
                            return Err(out.failed(cancelled, attempts.made, started));
                        }
                        _ = until(deadline) => {
                            return Err(out.failed(total_timeout(settings), attempts.made, started));
                        }
                        _ = sleep(wait) => {}
                    }
                }
            }
        }
    }
}

/// Resolves at the deadline, or never.
async fn until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The total time limit expired.
fn total_timeout(settings: &Settings) -> Failure {
    Failure::new(FailureKind::Timeout {
        phase: TimeoutPhase::Total,
        limit_ms: settings.timeouts.total.map_or(0, |t| t.as_millis() as u64),
    })
}

impl From<AttemptError> for Failure {
    fn from(error: AttemptError) -> Self {
        error.failure
    }
}
