//! One completion, end to end: send the request, read the body, time out,
//! retry, cancel.
//!
//! [`Engine::complete`] is the single path every front end uses (the RPC
//! server, the CLI, test-connection). Text goes out through a [`ChunkSink`]
//! the moment the bytes holding it have been decoded; the caller decides what
//! a chunk becomes (an `llm/chunk` notification, a write to the terminal).
//!
//! Failures are data ([`Failure`]): each carries the kind the protocol names,
//! the text produced before it, and how many attempts were made. Time is
//! limited per phase (connect, first byte, idle between reads, total), never
//! by a whole-request timeout, which would cut long generations. A failed
//! attempt is repeated only while no text has reached the caller.

use std::future::Future;
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::header::{CONTENT_TYPE, HeaderMap, LOCATION, RETRY_AFTER};
use reqwest::{Response, StatusCode};
use serde::Serialize;
use serde_json::Value;
use tokio::time::{sleep, sleep_until, timeout};
use tokio_util::sync::CancellationToken;

use crate::client::Clients;
use crate::decode::{BodyDecoder, DecodeError, Event, ResponseType};
use crate::extract::suggest::Suggestion;
use crate::extract::{Extractor, Outcome, Verdict, provider_message};
use crate::request::{self, Message};
use crate::settings::{Problem, Settings};

/// Runs completions; holds what is shared between them (the HTTP clients).
#[derive(Debug, Default)]
pub struct Engine {
    clients: Clients,
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
    pub response_type: ResponseType,
    /// The HTTP status and Content-Type of the response.
    #[serde(flatten)]
    pub http: HttpInfo,
    pub timings: Timings,
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

/// A completion that did not finish.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub kind: FailureKind,
    /// Text sent to the sink before the failure.
    pub partial_text: String,
    pub attempts: u32,
    /// The response's status and type, when a response arrived.
    pub http: Option<HttpInfo>,
}

/// The failure kinds of the protocol (`data.kind`), with their fields.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(
    tag = "kind",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
pub enum FailureKind {
    Connect {
        url: String,
        detail: String,
    },
    Timeout {
        phase: TimeoutPhase,
        limit_ms: u64,
    },
    HttpStatus {
        status: u16,
        body: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        provider_message: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        content_type: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        retry_after: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        location: Option<String>,
    },
    StreamError {
        provider_message: String,
        event: String,
    },
    NoMatch {
        path: String,
        events: usize,
        /// Events in which the path selected only objects, arrays, numbers or booleans.
        #[serde(skip_serializing_if = "is_zero")]
        non_text_events: usize,
        sample: Vec<String>,
        /// Paths that would have produced text, closest first.
        suggestions: Vec<Suggestion>,
    },
    Decode {
        sample: String,
        detail: String,
    },
    Interrupted {
        detail: String,
    },
    TooLarge {
        limit: usize,
        what: &'static str,
    },
    Cancelled,
    /// Settings that validated but could not be used (an unreadable CA file).
    InvalidSettings {
        problems: Vec<Problem>,
    },
}

/// Which time limit expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum TimeoutPhase {
    Connect,
    FirstByte,
    Idle,
    Total,
}

/// How much of an error body is reported.
const ERROR_BODY_BYTES: usize = 4096;
/// How much of the body is shown in a decode error's sample.
const SAMPLE_BYTES: usize = 1024;
/// How much of an error body is read to find the provider's message.
const ERROR_BODY_READ_BYTES: usize = 64 * 1024;
/// How much is read and discarded after `[DONE]` so the connection can be reused.
const DRAIN_BYTES: usize = 64 * 1024;
const DRAIN_TIME: Duration = Duration::from_secs(2);
/// How long the answer may wait for that drain.
const DRAIN_WAIT: Duration = Duration::from_millis(100);
/// Longest wait a `Retry-After` header can impose.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

impl Failure {
    fn new(kind: FailureKind) -> Self {
        Failure {
            kind,
            partial_text: String::new(),
            attempts: 1,
            http: None,
        }
    }

    /// The protocol's name for the kind.
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            FailureKind::Connect { .. } => "connect",
            FailureKind::Timeout { .. } => "timeout",
            FailureKind::HttpStatus { .. } => "http_status",
            FailureKind::StreamError { .. } => "stream_error",
            FailureKind::NoMatch { .. } => "no_match",
            FailureKind::Decode { .. } => "decode",
            FailureKind::Interrupted { .. } => "interrupted",
            FailureKind::TooLarge { .. } => "too_large",
            FailureKind::Cancelled => "cancelled",
            FailureKind::InvalidSettings { .. } => "invalid_settings",
        }
    }

    /// A sentence for a person, quoting the server's own words where there are some.
    pub fn message(&self) -> String {
        match &self.kind {
            FailureKind::Connect { url, detail } => {
                format!("cannot connect to the LLM server at {url}: {detail}")
            }
            FailureKind::Timeout { phase, limit_ms } => {
                let what = match phase {
                    TimeoutPhase::Connect => "connecting to the LLM server",
                    TimeoutPhase::FirstByte => "waiting for the LLM server to answer",
                    TimeoutPhase::Idle => "waiting for more of the response (the stream stalled)",
                    TimeoutPhase::Total => "the whole completion",
                };
                format!("timed out after {limit_ms} ms {what}")
            }
            FailureKind::HttpStatus {
                status,
                provider_message,
                location,
                ..
            } => {
                let reason = StatusCode::from_u16(*status)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                    .unwrap_or("");
                match (provider_message, location) {
                    (_, Some(location)) => format!(
                        "LLM server answered HTTP {status} {reason}, redirecting to {location}; a POST is not re-sent there because the prompt would be lost: configure that URL instead"
                    ),
                    (Some(message), None) => {
                        format!("LLM server answered HTTP {status}: {message}")
                    }
                    (None, None) => format!("LLM server answered HTTP {status} {reason}"),
                }
            }
            FailureKind::StreamError {
                provider_message, ..
            } => {
                format!("LLM server reported an error in the stream: {provider_message}")
            }
            FailureKind::NoMatch {
                path,
                events,
                non_text_events: 0,
                ..
            } => format!(
                "the response format (JsonPath) `{path}` matched nothing in any of the {events} events the server sent; see data.sample for what they look like"
            ),
            FailureKind::NoMatch { path, events, .. } => format!(
                "the response format (JsonPath) `{path}` selected objects or numbers, never text, in the {events} events the server sent; point it at a string (see data.suggestions)"
            ),
            FailureKind::Decode { detail, .. } => {
                format!("cannot read the LLM server's response: {detail}")
            }
            FailureKind::Interrupted { detail } => {
                format!("the connection to the LLM server was lost mid-response: {detail}")
            }
            FailureKind::TooLarge { limit, what } => match *what {
                "event" => format!(
                    "one event of the response is larger than maxEventBytes ({limit} bytes)"
                ),
                _ => format!("the response is larger than maxResponseBytes ({limit} bytes)"),
            },
            FailureKind::Cancelled => "the request was cancelled".to_owned(),
            FailureKind::InvalidSettings { problems } => problems
                .iter()
                .map(|p| format!("{}: {}", p.field, p.message))
                .collect::<Vec<_>>()
                .join("; "),
        }
    }
}

/// One failed attempt, and whether another may be made.
struct AttemptError {
    failure: Failure,
    retryable: bool,
    retry_after: Option<Duration>,
}

impl From<Failure> for AttemptError {
    fn from(failure: Failure) -> Self {
        AttemptError {
            failure,
            retryable: false,
            retry_after: None,
        }
    }
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
    fn sent_anything(&self) -> bool {
        self.chunks > 0
    }

    fn fail(&self, kind: FailureKind) -> Failure {
        Failure {
            kind,
            partial_text: self.text.clone(),
            attempts: 1,
            http: None,
        }
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
        let started = Instant::now();
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
            .map_err(|e| {
                Failure::new(FailureKind::InvalidSettings {
                    problems: vec![Problem::new(e.field(), e.to_string())],
                })
            })?;
        let body = Bytes::from(request::body(&settings.body, messages));
        let headers = request::headers(settings);
        tracing::debug!(url = %settings.display_url(), bytes = body.len(), "sending completion request");

        let mut attempts = 0;
        let (response, first_byte) = loop {
            attempts += 1;
            let attempt = self
                .send(&client, settings, &body, &headers, cancel, deadline)
                .await;
            match attempt {
                Ok(response) => break (response, started.elapsed()),
                Err(error)
                    if error.retryable
                        && attempts <= settings.retry.max_retries
                        && !out.sent_anything() =>
                {
                    let wait = backoff(settings, attempts, error.retry_after);
                    tracing::warn!(
                        attempt = attempts,
                        kind = error.failure.kind_name(),
                        wait_ms = wait.as_millis() as u64,
                        "attempt failed; retrying"
                    );
                    let wait = sleep(wait);
                    tokio::select! {
                        biased;
                        _ = cancel.cancelled() => return Err(with_attempts(out.fail(FailureKind::Cancelled), attempts)),
                        _ = until(deadline) => return Err(with_attempts(total_timeout(settings, &out), attempts)),
                        _ = wait => {}
                    }
                }
                Err(error) => return Err(with_attempts(error.failure, attempts)),
            }
        };

        let http = HttpInfo {
            status: response.status().as_u16(),
            content_type: response
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        };
        let result = self
            .read(response, settings, &mut out, cancel, deadline)
            .await;
        let result = result.map_err(|mut f| {
            f.http = Some(http.clone());
            with_attempts(f, attempts)
        })?;
        let (response_type, finish_reason, usage) = result;
        let ms = |d: Duration| d.as_millis() as u64;
        Ok(Completion {
            text: out.text,
            reasoning: out.reasoning,
            finish_reason,
            usage,
            chunks: out.chunks,
            response_type,
            http,
            timings: Timings {
                first_byte_ms: ms(first_byte),
                first_chunk_ms: out.first_chunk.map(|t| ms(t - started)),
                total_ms: ms(started.elapsed()),
                attempts,
            },
        })
    }

    /// One attempt: the response when its status is a success.
    async fn send(
        &self,
        client: &reqwest::Client,
        settings: &Settings,
        body: &Bytes,
        headers: &HeaderMap,
        cancel: &CancellationToken,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<Response, AttemptError> {
        let request = client
            .post(settings.url.clone())
            .headers(headers.clone())
            .body(body.clone())
            .send();
        let first_byte = settings.timeouts.first_byte;
        let response = tokio::select! {
            biased;
            _ = cancel.cancelled() => return Err(Failure::new(FailureKind::Cancelled).into()),
            _ = until(deadline) => return Err(total_timeout_attempt(settings)),
            sent = timeout(first_byte, request) => match sent {
                Err(_) => {
                    return Err(Failure::new(FailureKind::Timeout {
                        phase: TimeoutPhase::FirstByte,
                        limit_ms: first_byte.as_millis() as u64,
                    })
                    .into())
                }
                Ok(Err(e)) => return Err(send_error(e, settings)),
                Ok(Ok(response)) => response,
            },
        };
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        Err(self.status_error(response, settings, cancel).await)
    }

    /// Turns a non-success response into its failure, reading a bounded part of the body.
    async fn status_error(
        &self,
        mut response: Response,
        settings: &Settings,
        cancel: &CancellationToken,
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
        let text = String::from_utf8_lossy(&raw);
        let message = serde_json::from_str::<Value>(text.trim())
            .ok()
            .and_then(|v| provider_message(&v))
            .map(|m| settings.secrets.scrub(&m));
        let retry_after = header(RETRY_AFTER);
        let retryable = matches!(status.as_u16(), 429 | 500 | 502 | 503 | 504);
        let location = status.is_redirection().then(|| header(LOCATION)).flatten();
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
                })
            },
            retryable,
        }
    }

    /// Reads a success response to its end.
    async fn read<S: ChunkSink>(
        &self,
        mut response: Response,
        settings: &Settings,
        out: &mut Output<'_, S>,
        cancel: &CancellationToken,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<(ResponseType, Option<String>, Option<Value>), Failure> {
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let (response_type, overridden) =
            ResponseType::choose(settings.response_type, content_type.as_deref());
        if overridden {
            tracing::warn!(
                configured = settings.response_type.as_str(),
                content_type = content_type.as_deref().unwrap_or(""),
                reading = response_type.as_str(),
                "the server's Content-Type contradicts customEngineResponseType; reading what the server sent"
            );
        }
        let limits = settings.limits;
        let mut decoder = BodyDecoder::new(
            response_type,
            limits.max_event_bytes,
            limits.max_response_bytes,
        );
        let mut extractor: Option<Extractor> = None;
        let mut events: Vec<Event> = Vec::new();
        let idle = settings.timeouts.idle;
        let mut finished = false;
        while !finished {
            let read = tokio::select! {
                biased;
                _ = cancel.cancelled() => return Err(out.fail(FailureKind::Cancelled)),
                _ = until(deadline) => return Err(total_timeout(settings, out)),
                read = timeout(idle, response.chunk()) => read,
            };
            let fed = match read {
                Err(_) => {
                    return Err(out.fail(FailureKind::Timeout {
                        phase: TimeoutPhase::Idle,
                        limit_ms: idle.as_millis() as u64,
                    }));
                }
                Ok(Err(e)) => {
                    return Err(out.fail(FailureKind::Interrupted {
                        detail: settings.secrets.scrub(&describe(&e)),
                    }));
                }
                Ok(Ok(Some(bytes))) => decoder.feed(&bytes, &mut events),
                Ok(Ok(None)) => {
                    finished = true;
                    decoder.finish(&mut events)
                }
            };
            let extractor = extractor.get_or_insert_with(|| {
                Extractor::new(
                    settings.content_path.as_ref(),
                    settings.reasoning_path.as_ref(),
                    decoder.response_type(),
                )
                .with_secrets(&settings.secrets)
            });
            for event in events.drain(..) {
                match extractor.apply(&event) {
                    Outcome::Text(pieces) => {
                        out.emit(ChunkKind::Reasoning, &pieces.reasoning).await;
                        out.emit(ChunkKind::Content, &pieces.content).await;
                    }
                    Outcome::Done => {
                        if !finished {
                            drain(response).await;
                        }
                        let held = extractor.flush();
                        out.emit(ChunkKind::Reasoning, &held.reasoning).await;
                        out.emit(ChunkKind::Content, &held.content).await;
                        return finish(extractor, &decoder, settings, out);
                    }
                    Outcome::Error {
                        provider_message,
                        event,
                    } => {
                        return Err(out.fail(FailureKind::StreamError {
                            provider_message: settings.secrets.scrub(&provider_message),
                            event: settings.secrets.excerpt(&event, ERROR_BODY_BYTES, false),
                        }));
                    }
                }
            }
            // Events completed before a decode error still count.
            fed.map_err(|e| out.fail(decode_failure(e)))?;
        }
        let extractor = extractor.as_mut().expect("the loop ran at least once");
        let held = extractor.flush();
        out.emit(ChunkKind::Reasoning, &held.reasoning).await;
        out.emit(ChunkKind::Content, &held.content).await;
        finish(extractor, &decoder, settings, out)
    }
}

/// The end of a body: the answer, or why there is none.
// A failure is built once per completion, at its end: its size does not matter.
#[allow(clippy::result_large_err)]
fn finish<S>(
    extractor: &mut Extractor,
    decoder: &BodyDecoder,
    settings: &Settings,
    out: &Output<'_, S>,
) -> Result<(ResponseType, Option<String>, Option<Value>), Failure> {
    let response_type = decoder.response_type();
    if out.text.is_empty() {
        let head = || {
            let cut = decoder.bytes_read() > decoder.head().len();
            let head = String::from_utf8_lossy(decoder.head());
            settings.secrets.excerpt(&head, SAMPLE_BYTES, cut)
        };
        match extractor.verdict() {
            None => {}
            Some(Verdict::NoEvents) => {
                let detail = if decoder.bytes_read() == 0 {
                    "the response body was empty".to_owned()
                } else {
                    format!(
                        "no {} events could be read from the body",
                        response_type.as_str().to_uppercase()
                    )
                };
                return Err(out.fail(FailureKind::Decode {
                    sample: head(),
                    detail,
                }));
            }
            Some(Verdict::NotJson { events, .. }) => {
                return Err(out.fail(FailureKind::Decode {
                    sample: head(),
                    detail: format!(
                        "none of the {events} events is JSON, so the response format (JsonPath) cannot apply; clear it to take the raw text, or check the server URL"
                    ),
                }));
            }
            Some(Verdict::NoMatch {
                path,
                events,
                non_text_events,
                sample,
                suggestions,
            }) => {
                return Err(out.fail(FailureKind::NoMatch {
                    path,
                    non_text_events,
                    events,
                    sample,
                    suggestions,
                }));
            }
        }
    }
    let finish_reason = extractor.finish_reason().map(str::to_owned);
    let usage = extractor.take_usage();
    Ok((response_type, finish_reason, usage))
}

/// After `[DONE]`, reads and discards a bounded rest of the body so the
/// connection returns to the pool instead of being closed. The usual case (the
/// body ends right after `[DONE]`) is done before the answer goes out, so the
/// next request finds the connection free; a slow tail is left to a task.
async fn drain(mut response: Response) {
    let mut drained = 0;
    if timeout(DRAIN_WAIT, read_rest(&mut response, &mut drained))
        .await
        .is_err()
    {
        tokio::spawn(async move {
            let _ = timeout(DRAIN_TIME, read_rest(&mut response, &mut drained)).await;
        });
    }
}

async fn read_rest(response: &mut Response, drained: &mut usize) {
    while *drained < DRAIN_BYTES {
        match response.chunk().await {
            Ok(Some(bytes)) => *drained += bytes.len(),
            _ => break,
        }
    }
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

fn with_attempts(mut failure: Failure, attempts: u32) -> Failure {
    failure.attempts = attempts;
    failure
}

/// Resolves at the deadline, or never.
async fn until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn total_limit_ms(settings: &Settings) -> u64 {
    settings.timeouts.total.map_or(0, |t| t.as_millis() as u64)
}

fn total_timeout<S>(settings: &Settings, out: &Output<'_, S>) -> Failure {
    out.fail(FailureKind::Timeout {
        phase: TimeoutPhase::Total,
        limit_ms: total_limit_ms(settings),
    })
}

fn total_timeout_attempt(settings: &Settings) -> AttemptError {
    Failure::new(FailureKind::Timeout {
        phase: TimeoutPhase::Total,
        limit_ms: total_limit_ms(settings),
    })
    .into()
}

fn decode_failure(error: DecodeError) -> FailureKind {
    match error {
        DecodeError::TooLarge { limit } => FailureKind::TooLarge {
            limit,
            what: "event",
        },
        DecodeError::BodyTooLarge { limit } => FailureKind::TooLarge {
            limit,
            what: "body",
        },
        DecodeError::Io(detail) => FailureKind::Interrupted { detail },
    }
}

/// Classifies an error from sending the request.
fn send_error(error: reqwest::Error, settings: &Settings) -> AttemptError {
    let detail = settings.secrets.scrub(&describe(&error));
    if error.is_connect() {
        let kind = if error.is_timeout() {
            FailureKind::Timeout {
                phase: TimeoutPhase::Connect,
                limit_ms: settings.timeouts.connect.as_millis() as u64,
            }
        } else {
            FailureKind::Connect {
                url: settings.display_url(),
                detail,
            }
        };
        return AttemptError {
            failure: Failure::new(kind),
            retryable: true,
            retry_after: None,
        };
    }
    if error.is_redirect() {
        return Failure::new(FailureKind::Connect {
            url: settings.display_url(),
            detail: format!("too many redirects: {detail}"),
        })
        .into();
    }
    // The connection was made but broke before a response arrived.
    AttemptError {
        failure: Failure::new(FailureKind::Interrupted { detail }),
        retryable: false,
        retry_after: None,
    }
}

/// An error's message with its causes, without the URL (which may hold a key).
fn describe(error: &reqwest::Error) -> String {
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

/// The wait before attempt `attempt + 1`: the server's `Retry-After` when it
/// gave one (capped), else exponential backoff with jitter.
fn backoff(settings: &Settings, attempt: u32, retry_after: Option<Duration>) -> Duration {
    if let Some(wait) = retry_after {
        return wait.min(MAX_RETRY_AFTER);
    }
    let policy = settings.retry;
    let exp = policy
        .initial_backoff
        .saturating_mul(1u32 << (attempt - 1).min(16))
        .min(policy.max_backoff);
    // Full jitter in [exp/2, exp].
    let jitter = random_unit();
    exp / 2 + exp.mul_f64(jitter / 2.0)
}

/// A random number in [0, 1), from the standard library's hasher seed.
fn random_unit() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(Instant::now().elapsed().as_nanos() as u64);
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// `Retry-After`: delay seconds or an HTTP date.
fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<f64>() {
        return (seconds.is_finite() && seconds >= 0.0)
            .then(|| Duration::from_secs_f64(seconds.min(3600.0)));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after("0.5"), Some(Duration::from_millis(500)));
        let past = httpdate::fmt_http_date(std::time::SystemTime::now() - Duration::from_secs(5));
        assert_eq!(parse_retry_after(&past), Some(Duration::ZERO));
        let future =
            httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(30));
        let d = parse_retry_after(&future).unwrap();
        assert!(
            d > Duration::from_secs(25) && d <= Duration::from_secs(30),
            "{d:?}"
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn backoff_grows_with_jitter_and_honours_retry_after() {
        let settings =
            Settings::from_json(&serde_json::json!({"customEngineServer": "http://h/"})).unwrap();
        for attempt in 1..5 {
            let d = backoff(&settings, attempt, None);
            let exp =
                (Duration::from_millis(500) * (1 << (attempt - 1))).min(Duration::from_secs(8));
            assert!(d >= exp / 2 && d <= exp, "{attempt}: {d:?}");
        }
        assert_eq!(
            backoff(&settings, 1, Some(Duration::from_secs(600))),
            MAX_RETRY_AFTER
        );
    }

    #[test]
    fn failure_data_shape() {
        let f = Failure::new(FailureKind::Timeout {
            phase: TimeoutPhase::FirstByte,
            limit_ms: 5,
        });
        let v = serde_json::to_value(&f.kind).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"kind": "timeout", "phase": "firstByte", "limitMs": 5})
        );
        assert_eq!(f.kind_name(), "timeout");
    }
}
