//! Reading one success response to its end: bytes through the decoder and
//! the extractor to the sink as they arrive, under the idle and total time
//! limits and the caller's cancel, and the end of the body judged (an answer,
//! or why there is none).

use std::time::Duration;

use reqwest::Response;
use reqwest::header::CONTENT_TYPE;
use serde_json::Value;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

use crate::decode::{BodyDecoder, DecodeError, Event, ResponseType};
use crate::extract::{Extractor, Outcome, Verdict};
use crate::settings::Settings;

use super::failure::{Failure, FailureKind, TimeoutPhase};
use super::retry::AttemptError;
use super::send::{ERROR_BODY_BYTES, describe};
use super::trace::Tracer;
use super::{ChunkKind, ChunkSink, Output, total_timeout, until};

/// What a body that was read to its end says besides its text.
pub(super) struct BodyEnd {
    pub response_type: ResponseType,
    pub finish_reason: Option<String>,
    pub usage: Option<Value>,
    pub warnings: Vec<String>,
}

/// How much of the body is shown in a decode error's sample.
const SAMPLE_BYTES: usize = 1024;
/// How much is read and discarded after `[DONE]` so the connection can be reused.
const DRAIN_BYTES: usize = 64 * 1024;
const DRAIN_TIME: Duration = Duration::from_secs(2);
/// How long the answer may wait for that drain.
const DRAIN_WAIT: Duration = Duration::from_millis(100);

/// Reads a success response to its end. A failure before any text reached
/// the sink may be retried (see [`super::retry`]); it says what the body was
/// read as, when any of it was.
pub(super) async fn read<S: ChunkSink>(
    response: Response,
    settings: &Settings,
    out: &mut Output<'_, S>,
    cancel: &CancellationToken,
    deadline: Option<tokio::time::Instant>,
    tracer: &mut Option<Tracer<'_>>,
) -> Result<BodyEnd, AttemptError> {
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let (expected, overridden) = ResponseType::choose(settings.response_type, content_type);
    if overridden {
        tracing::warn!(
            configured = settings.response_type.as_str(),
            content_type = content_type.unwrap_or(""),
            "the server's Content-Type contradicts customEngineResponseType; expecting what the server announced"
        );
    }
    let limits = settings.limits;
    let mut decoder = BodyDecoder::new(expected, limits.max_event_bytes, limits.max_response_bytes);
    read_body(
        response,
        &mut decoder,
        settings,
        out,
        cancel,
        deadline,
        tracer,
    )
    .await
    .map_err(|mut error| {
        if decoder.bytes_read() > 0 {
            error.failure.response_type = Some(decoder.response_type());
        }
        error
    })
}

async fn read_body<S: ChunkSink>(
    mut response: Response,
    decoder: &mut BodyDecoder,
    settings: &Settings,
    out: &mut Output<'_, S>,
    cancel: &CancellationToken,
    deadline: Option<tokio::time::Instant>,
    tracer: &mut Option<Tracer<'_>>,
) -> Result<BodyEnd, AttemptError> {
    let mut extractor = Extractor::new(
        settings.content_path.as_ref(),
        settings.reasoning_path.as_ref(),
    )
    .with_secrets(&settings.secrets);
    let mut events: Vec<Event> = Vec::new();
    let idle = settings.timeouts.idle;
    let mut finished = false;
    while !finished {
        let read = tokio::select! {
            biased;
            _ = cancel.cancelled() => return Err(Failure::new(FailureKind::Cancelled).into()),
            _ = until(deadline) => return Err(total_timeout(settings).into()),
            read = timeout(idle, response.chunk()) => read,
        };
        let fed = match read {
            Err(_) => {
                return Err(AttemptError::retryable(Failure::new(
                    FailureKind::Timeout {
                        phase: TimeoutPhase::Idle,
                        limit_ms: idle.as_millis() as u64,
                    },
                )));
            }
            Ok(Err(e)) => {
                return Err(AttemptError::retryable(Failure::new(
                    FailureKind::Interrupted {
                        detail: settings.secrets.scrub(&describe(&e)),
                        response_started: true,
                    },
                )));
            }
            Ok(Ok(Some(bytes))) => {
                if let Some(tracer) = tracer {
                    tracer.body(&bytes);
                }
                decoder.feed(&bytes, &mut events)
            }
            Ok(Ok(None)) => {
                finished = true;
                decoder.finish(&mut events)
            }
        };
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
                    return finish(&mut extractor, decoder, settings, out).await;
                }
                Outcome::Error {
                    provider_message,
                    event,
                } => {
                    return Err(Failure::new(FailureKind::StreamError {
                        provider_message: settings.secrets.scrub(&provider_message),
                        event: settings.secrets.excerpt(&event, ERROR_BODY_BYTES, false),
                    })
                    .into());
                }
                Outcome::Truncated { event } => {
                    return Err(AttemptError::retryable(Failure::new(
                        FailureKind::Interrupted {
                            detail: format!(
                                "the body ended inside an event, before its JSON was complete: `{}`",
                                settings.secrets.excerpt(&event, SAMPLE_BYTES, false)
                            ),
                            response_started: true,
                        },
                    )));
                }
            }
        }
        // Events completed before a decode error still count.
        fed.map_err(|e| Failure::new(decode_failure(e)))?;
    }
    finish(&mut extractor, decoder, settings, out).await
}

/// The end of a body: the answer, or why there is none.
async fn finish<S: ChunkSink>(
    extractor: &mut Extractor,
    decoder: &BodyDecoder,
    settings: &Settings,
    out: &mut Output<'_, S>,
) -> Result<BodyEnd, AttemptError> {
    let held = extractor.flush();
    out.emit(ChunkKind::Reasoning, &held.reasoning).await;
    out.emit(ChunkKind::Content, &held.content).await;
    let response_type = decoder.response_type();
    if out.text.is_empty()
        && let Some(verdict) = extractor.verdict(response_type)
    {
        return Err(Failure::new(empty_answer(verdict, decoder, settings)).into());
    }
    let warnings = extractor.warnings(response_type);
    for warning in &warnings {
        tracing::warn!("{warning}");
    }
    Ok(BodyEnd {
        response_type,
        finish_reason: extractor.finish_reason().map(str::to_owned),
        usage: extractor.take_usage(),
        warnings,
    })
}

/// Why a body gave no text.
fn empty_answer(verdict: Verdict, decoder: &BodyDecoder, settings: &Settings) -> FailureKind {
    let head = || {
        let cut = decoder.bytes_read() > decoder.head().len();
        let head = String::from_utf8_lossy(decoder.head());
        settings.secrets.excerpt(&head, SAMPLE_BYTES, cut)
    };
    match verdict {
        Verdict::NoEvents => FailureKind::Decode {
            sample: head(),
            detail: if decoder.bytes_read() == 0 {
                "the response body was empty".to_owned()
            } else {
                format!(
                    "no {} events could be read from the body",
                    decoder.response_type().as_str().to_uppercase()
                )
            },
        },
        Verdict::NotJson { events, .. } => FailureKind::Decode {
            sample: head(),
            detail: format!(
                "none of the {events} events is JSON, so the response format (JsonPath) cannot apply; clear it to take the raw text, or check the server URL"
            ),
        },
        Verdict::NoMatch {
            path,
            events,
            non_text_events,
            sample,
            suggestions,
        } => FailureKind::NoMatch {
            path,
            non_text_events,
            events,
            sample,
            suggestions,
        },
    }
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
        DecodeError::Io(detail) => FailureKind::Interrupted {
            detail,
            response_started: true,
        },
    }
}
