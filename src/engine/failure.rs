//! The failure vocabulary of a completion: the kinds the protocol names
//! (`data.kind`), the data each carries, and the sentence a person reads.
//!
//! Every message says what happened in the user's terms and, where the user
//! can act, what to change; the server's own words are quoted where there
//! are some. Secrets are scrubbed before a value reaches a failure.

use reqwest::StatusCode;
use serde::Serialize;

use crate::decode::ResponseType;
use crate::extract::suggest::Suggestion;
use crate::settings::Problem;

use super::HttpInfo;

/// A completion that did not finish.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub kind: FailureKind,
    /// Answer text sent to the sink before the failure.
    pub partial_text: String,
    /// Reasoning text sent to the sink before the failure.
    pub partial_reasoning: String,
    pub attempts: u32,
    /// The response's status and type, when a response arrived.
    pub http: Option<HttpInfo>,
    /// The format the body was read as, when any of it was read.
    pub response_type: Option<ResponseType>,
    /// Until the response headers arrived (of the last attempt), when they did.
    pub first_byte_ms: Option<u64>,
    /// From the start of the completion to the failure.
    pub total_ms: u64,
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
        /// What the user can change, when the cause is known.
        #[serde(skip_serializing_if = "Option::is_none")]
        hint: Option<String>,
        /// The connection failed at the proxy, not at the LLM server.
        #[serde(skip_serializing_if = "Option::is_none")]
        proxy: Option<String>,
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
        /// What the user can change, when the cause is known.
        #[serde(skip_serializing_if = "Option::is_none")]
        hint: Option<String>,
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
        /// Whether any of the response had arrived.
        response_started: bool,
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

impl Failure {
    pub fn new(kind: FailureKind) -> Self {
        Failure {
            kind,
            partial_text: String::new(),
            partial_reasoning: String::new(),
            attempts: 1,
            http: None,
            response_type: None,
            first_byte_ms: None,
            total_ms: 0,
        }
    }

    /// The server refused the credentials: HTTP 401 or 403.
    pub fn refused_credentials(&self) -> bool {
        matches!(
            self.kind,
            FailureKind::HttpStatus {
                status: 401 | 403,
                ..
            }
        )
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
            FailureKind::Connect {
                url,
                detail,
                hint,
                proxy,
            } => {
                let mut text = match proxy {
                    Some(proxy) => format!(
                        "cannot reach the LLM server at {url} through the proxy {proxy} (the proxy failed, not the LLM server): {detail}"
                    ),
                    None => format!("cannot connect to the LLM server at {url}: {detail}"),
                };
                if let Some(hint) = hint {
                    text.push_str("; ");
                    text.push_str(hint);
                }
                text
            }
            FailureKind::Timeout { phase, limit_ms } => {
                let (what, setting) = match phase {
                    TimeoutPhase::Connect => ("connecting to the LLM server", "connectMs"),
                    TimeoutPhase::FirstByte => {
                        ("waiting for the LLM server to answer", "firstByteMs")
                    }
                    TimeoutPhase::Idle => (
                        "waiting for more of the response (the stream stalled)",
                        "idleMs",
                    ),
                    TimeoutPhase::Total => ("the whole completion", "totalMs"),
                };
                format!("timed out after {limit_ms} ms {what} (timeouts.{setting})")
            }
            FailureKind::HttpStatus {
                status,
                provider_message,
                location,
                hint,
                ..
            } => {
                let reason = StatusCode::from_u16(*status)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                    .unwrap_or("");
                let mut text = match (provider_message, location) {
                    (_, Some(location)) => format!(
                        "LLM server answered HTTP {status} {reason}, redirecting to {location}; it is not followed, so neither the prompt nor the key goes there: configure that URL instead if you trust it"
                    ),
                    (Some(message), None) => {
                        format!("LLM server answered HTTP {status}: {message}")
                    }
                    (None, None) => format!("LLM server answered HTTP {status} {reason}"),
                };
                if let Some(hint) = hint {
                    text.push_str("; ");
                    text.push_str(hint);
                }
                text
            }
            FailureKind::StreamError {
                provider_message, ..
            } => {
                format!("LLM server reported an error in the stream: {provider_message}")
            }
            FailureKind::NoMatch {
                path,
                events,
                non_text_events,
                suggestions,
                ..
            } => {
                let what = if *non_text_events == 0 {
                    "matched nothing in"
                } else {
                    "selected objects or numbers, never text, in"
                };
                let mut text = format!(
                    "the response format (JsonPath) `{path}` {what} the {events} events the server sent"
                );
                match suggestions.first() {
                    Some(best) => text.push_str(&format!(
                        "; the text is at `{}` (it would have produced \"{}\")",
                        best.path, best.sample_text
                    )),
                    None => text.push_str("; no path in them leads to text"),
                }
                text
            }
            FailureKind::Decode { detail, .. } => {
                format!("cannot read the LLM server's response: {detail}")
            }
            FailureKind::Interrupted {
                detail,
                response_started: true,
            } => {
                format!("the connection to the LLM server was lost mid-response: {detail}")
            }
            FailureKind::Interrupted { detail, .. } => {
                format!("the LLM server closed the connection before answering: {detail}")
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

fn is_zero(n: &usize) -> bool {
    *n == 0
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(
            f.message().contains("timeouts.firstByteMs"),
            "{}",
            f.message()
        );
    }

    #[test]
    fn interrupted_says_whether_the_answer_had_begun() {
        let before = Failure::new(FailureKind::Interrupted {
            detail: "connection reset".into(),
            response_started: false,
        });
        assert!(!before.message().contains("mid-response"));
        let during = Failure::new(FailureKind::Interrupted {
            detail: "connection reset".into(),
            response_started: true,
        });
        assert!(during.message().contains("mid-response"));
    }
}
