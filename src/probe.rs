//! Test connection: one short completion through the same engine path as
//! `llm/complete`, reported for a settings dialog (`llm/testConnection`) or a
//! person (`llm-sidecar check --connect`).
//!
//! AutoDev's test button and its chat took different code paths, so the test
//! could pass while chat stayed silent; here only the prompt differs.

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::decode::ResponseType;
use crate::engine::{ChunkKind, ChunkSink, Engine, Failure, FailureKind};
use crate::extract::suggest::Suggestion;
use crate::request::{Message, Role};
use crate::settings::Settings;

/// The prompt sent when the caller gives none.
pub const TEST_PROMPT: &str = "Reply with one short sentence to confirm you can read this.";
/// How much of the answer is reported.
const SAMPLE_TEXT_CHARS: usize = 200;

/// What the test found.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub ok: bool,
    pub status: Option<u16>,
    pub content_type: Option<String>,
    pub detected_response_type: Option<ResponseType>,
    pub first_byte_ms: Option<u64>,
    pub total_ms: Option<u64>,
    pub sample_text: String,
    /// The response format selected text (or a valid empty answer).
    pub matched: bool,
    pub suggestions: Vec<Suggestion>,
    pub finish_reason: Option<String>,
}

/// Keeps nothing: the engine gathers the text itself.
struct DiscardSink;

impl ChunkSink for DiscardSink {
    async fn chunk(&mut self, _kind: ChunkKind, _text: &str) {}
}

/// The default test conversation.
pub fn test_messages() -> Vec<Message> {
    vec![Message {
        role: Role::User,
        content: TEST_PROMPT.to_owned(),
    }]
}

/// Runs the test; the failure, if any, comes back beside the report.
pub async fn run(
    engine: &Engine,
    settings: &Settings,
    messages: &[Message],
    cancel: &CancellationToken,
) -> (Report, Option<Failure>) {
    match engine
        .complete(settings, messages, &mut DiscardSink, cancel)
        .await
    {
        Ok(done) => (
            Report {
                ok: true,
                status: Some(done.http.status),
                content_type: done.http.content_type,
                detected_response_type: Some(done.response_type),
                first_byte_ms: Some(done.timings.first_byte_ms),
                total_ms: Some(done.timings.total_ms),
                sample_text: truncate_chars(&done.text, SAMPLE_TEXT_CHARS),
                matched: true,
                suggestions: Vec::new(),
                finish_reason: done.finish_reason,
            },
            None,
        ),
        Err(failure) => {
            let suggestions = match &failure.kind {
                FailureKind::NoMatch { suggestions, .. } => suggestions.clone(),
                _ => Vec::new(),
            };
            let report = Report {
                ok: false,
                status: failure.http.as_ref().map(|h| h.status),
                content_type: failure.http.as_ref().and_then(|h| h.content_type.clone()),
                detected_response_type: None,
                first_byte_ms: None,
                total_ms: None,
                sample_text: truncate_chars(&failure.partial_text, SAMPLE_TEXT_CHARS),
                matched: false,
                suggestions,
                finish_reason: None,
            };
            (report, Some(failure))
        }
    }
}

/// The first `max` characters of `text`.
pub fn truncate_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}
