//! Test connection: one short completion through the same engine path as
//! `llm/complete`, reported for a settings dialog (`llm/testConnection`) or a
//! person (`llm-sidecar check --connect`).
//!
//! AutoDev's test button and its chat took different code paths, so the test
//! could pass while chat stayed silent; here only the prompt differs, and the
//! test is bounded so that a chatty model cannot keep it running: the answer
//! is capped with the body field of the server's shape (`max_tokens`,
//! `max_completion_tokens` for OpenAI and Azure, Ollama's
//! `options.num_predict`, Gemini's `generationConfig.maxOutputTokens`; a cap
//! the user set is kept), reading stops once the sample text is complete,
//! and the whole test has a time limit. The report states all three.

use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use crate::decode::ResponseType;
use crate::engine::{ChunkKind, ChunkSink, Engine, Failure, FailureKind, TraceSink};
use crate::extract::suggest::Suggestion;
use crate::request::{BodySpec, Message, Role};
use crate::settings::Settings;

/// The prompt sent when the caller gives none.
pub const TEST_PROMPT: &str = "Reply with one short sentence to confirm you can read this.";
/// How much of the answer is reported.
const SAMPLE_TEXT_CHARS: usize = 200;
/// The cap put on the test's answer: room for a sentence, and for a
/// reasoning model's first thoughts, without letting it write an essay.
pub const TEST_MAX_TOKENS: u64 = 256;
/// The longest a test may take, unless the user's own `timeouts.totalMs` is lower.
pub const TIME_LIMIT: Duration = Duration::from_secs(30);

/// Body fields that cap the length of an answer, dotted for nested ones.
const CAP_FIELDS: &[&str] = &[
    "max_tokens",
    "max_completion_tokens",
    "max_output_tokens",
    "max_new_tokens",
    "maxTokens",
    "n_predict",
    "num_predict",
    "options.num_predict",
    "generationConfig.maxOutputTokens",
    "generation_config.max_output_tokens",
    "parameters.max_new_tokens",
    "inferenceConfig.maxTokens",
];

/// What the test found.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub ok: bool,
    pub status: Option<u16>,
    pub content_type: Option<String>,
    pub detected_response_type: Option<ResponseType>,
    /// Until the response headers arrived; `None` when reading stopped early.
    pub first_byte_ms: Option<u64>,
    /// Until the first piece of text.
    pub first_chunk_ms: Option<u64>,
    pub total_ms: Option<u64>,
    pub sample_text: String,
    /// The response format selected text (or a valid empty answer).
    pub matched: bool,
    pub suggestions: Vec<Suggestion>,
    pub finish_reason: Option<String>,
    /// The cap on the answer's length; `None` when the request's shape has no
    /// known field for it (a `fields` template of another shape).
    pub max_tokens: Option<AnswerCap>,
    /// Reading stopped once the sample text was complete (the answer was longer).
    pub stopped_early: bool,
    /// The time limit of the whole test.
    pub time_limit_ms: u64,
}

/// The cap on the test's answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AnswerCap {
    /// The body field, dotted when nested (`options.num_predict`).
    pub field: String,
    pub value: Value,
    pub set_by: CapSource,
    /// The server refused the added field (HTTP 400/422 naming it), so the
    /// test was repeated without it and the answer was not capped.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub dropped: bool,
}

/// Who set the cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CapSource {
    /// This test added it.
    Test,
    /// The user's settings have it; it is kept as is.
    Settings,
}

/// Counts the answer's characters and stops the completion once the sample
/// text is complete.
struct SampleSink {
    content_chars: usize,
    stop: CancellationToken,
    started: Instant,
    first_chunk: Option<Duration>,
}

impl ChunkSink for SampleSink {
    async fn chunk(&mut self, kind: ChunkKind, text: &str) {
        self.first_chunk
            .get_or_insert_with(|| self.started.elapsed());
        if kind == ChunkKind::Content {
            self.content_chars += text.chars().count();
            // One character more than is shown, so the sample says it was cut.
            if self.content_chars > SAMPLE_TEXT_CHARS {
                self.stop.cancel();
            }
        }
    }
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
    run_traced(engine, settings, messages, cancel, None).await
}

/// [`run`] with the exchange shown to `trace`.
pub async fn run_traced(
    engine: &Engine,
    settings: &Settings,
    messages: &[Message],
    cancel: &CancellationToken,
    mut trace: Option<&mut dyn TraceSink>,
) -> (Report, Option<Failure>) {
    let mut bounded = settings.clone();
    let limit = settings
        .timeouts
        .total
        .map_or(TIME_LIMIT, |t| t.min(TIME_LIMIT));
    bounded.timeouts.total = Some(limit);
    let uncapped = bounded.clone();
    let mut cap = cap_answer(&mut bounded);
    let (mut report, mut failure) =
        attempt(engine, &bounded, messages, cancel, reborrow(&mut trace)).await;
    if let (Some(added), Some(refused)) = (&mut cap, &failure)
        && added.set_by == CapSource::Test
        && refuses_field(refused, &added.field)
    {
        tracing::info!(field = %added.field, "the server refused the test's answer cap; testing again without it");
        added.dropped = true;
        (report, failure) = attempt(engine, &uncapped, messages, cancel, trace).await;
    }
    report.max_tokens = cap;
    report.time_limit_ms = limit.as_millis() as u64;
    (report, failure)
}

/// The sink again, for one more attempt.
fn reborrow<'a>(trace: &'a mut Option<&mut dyn TraceSink>) -> Option<&'a mut dyn TraceSink> {
    match trace {
        Some(sink) => Some(&mut **sink),
        None => None,
    }
}

/// One test completion.
async fn attempt(
    engine: &Engine,
    settings: &Settings,
    messages: &[Message],
    cancel: &CancellationToken,
    trace: Option<&mut dyn TraceSink>,
) -> (Report, Option<Failure>) {
    let started = Instant::now();
    let stop = cancel.child_token();
    let mut sink = SampleSink {
        content_chars: 0,
        stop: stop.clone(),
        started,
        first_chunk: None,
    };
    let result = engine
        .complete_traced(settings, messages, &mut sink, &stop, trace)
        .await;
    let ms = |d: Duration| d.as_millis() as u64;
    let first_chunk_ms = sink.first_chunk.map(ms);
    let report = Report {
        ok: false,
        status: None,
        content_type: None,
        detected_response_type: None,
        first_byte_ms: None,
        first_chunk_ms,
        total_ms: None,
        sample_text: String::new(),
        matched: false,
        suggestions: Vec::new(),
        finish_reason: None,
        max_tokens: None,
        stopped_early: false,
        time_limit_ms: 0,
    };
    match result {
        Ok(done) => (
            Report {
                ok: true,
                status: Some(done.http.status),
                content_type: done.http.content_type,
                detected_response_type: Some(done.response_type),
                first_byte_ms: Some(done.timings.first_byte_ms),
                first_chunk_ms: done.timings.first_chunk_ms,
                total_ms: Some(done.timings.total_ms),
                sample_text: truncate_chars(&done.text, SAMPLE_TEXT_CHARS),
                matched: true,
                finish_reason: done.finish_reason,
                ..report
            },
            None,
        ),
        // Stopped by the sink, not by the caller: the sample is complete.
        Err(failure)
            if matches!(failure.kind, FailureKind::Cancelled)
                && stop.is_cancelled()
                && !cancel.is_cancelled() =>
        {
            (
                Report {
                    ok: true,
                    status: failure.http.as_ref().map(|h| h.status),
                    content_type: failure.http.as_ref().and_then(|h| h.content_type.clone()),
                    detected_response_type: failure.response_type,
                    first_byte_ms: failure.first_byte_ms,
                    total_ms: Some(ms(started.elapsed())),
                    sample_text: truncate_chars(&failure.partial_text, SAMPLE_TEXT_CHARS),
                    matched: true,
                    stopped_early: true,
                    ..report
                },
                None,
            )
        }
        Err(failure) => {
            let suggestions = match &failure.kind {
                FailureKind::NoMatch { suggestions, .. } => suggestions.clone(),
                _ => Vec::new(),
            };
            let report = Report {
                status: failure.http.as_ref().map(|h| h.status),
                content_type: failure.http.as_ref().and_then(|h| h.content_type.clone()),
                detected_response_type: failure.response_type,
                first_byte_ms: failure.first_byte_ms,
                total_ms: Some(failure.total_ms),
                sample_text: truncate_chars(&failure.partial_text, SAMPLE_TEXT_CHARS),
                suggestions,
                ..report
            };
            (report, Some(failure))
        }
    }
}

/// Caps the answer in `settings.body` with the field of the request's shape,
/// unless the body already has a cap; `None` when the shape is unknown.
fn cap_answer(settings: &mut Settings) -> Option<AnswerCap> {
    if let Some((field, value)) = CAP_FIELDS
        .iter()
        .find_map(|f| body_value(&settings.body, f).map(|v| (*f, v.clone())))
    {
        return Some(AnswerCap {
            field: field.to_owned(),
            value,
            set_by: CapSource::Settings,
            dropped: false,
        });
    }
    let field = cap_field(settings)?;
    insert_cap(&mut settings.body, field, TEST_MAX_TOKENS).then(|| AnswerCap {
        field: field.to_owned(),
        value: Value::from(TEST_MAX_TOKENS),
        set_by: CapSource::Test,
        dropped: false,
    })
}

/// The cap field of the request's shape.
pub(crate) fn cap_field(settings: &Settings) -> Option<&'static str> {
    let path = settings.url.path();
    let host = settings.url.host_str().unwrap_or_default();
    let body = &settings.body;
    let has = |key: &str| {
        body.custom_fields.contains_key(key)
            || body.template.as_ref().is_some_and(|t| t.contains_key(key))
    };
    if path.contains(":generateContent")
        || path.contains(":streamGenerateContent")
        || has("contents")
    {
        Some("generationConfig.maxOutputTokens")
    } else if path.ends_with("/api/chat")
        || path.ends_with("/api/generate")
        || settings.response_type == ResponseType::Ndjson
    {
        Some("options.num_predict")
    } else if body.template.is_some() {
        // A whole-body template of some other API: no field is known to be safe.
        None
    } else if host == "api.openai.com" || host.ends_with(".openai.azure.com") {
        // OpenAI's reasoning models refuse max_tokens.
        Some("max_completion_tokens")
    } else {
        // OpenAI-compatible servers and Anthropic's Messages API.
        Some("max_tokens")
    }
}

/// The value at dotted `field` of the body as it will be sent.
fn body_value<'a>(body: &'a BodySpec, field: &str) -> Option<&'a Value> {
    let mut segments = field.split('.');
    let first = segments.next()?;
    let mut value = body
        .custom_fields
        .get(first)
        .or_else(|| body.template.as_ref().and_then(|t| t.get(first)))?;
    for segment in segments {
        value = value.get(segment)?;
    }
    Some(value)
}

/// Sets dotted `field` to `value` where the body will carry it; false when a
/// value on the way is not an object.
pub(crate) fn insert_cap(body: &mut BodySpec, field: &str, value: u64) -> bool {
    let segments: Vec<&str> = field.split('.').collect();
    let in_template = !body.custom_fields.contains_key(segments[0])
        && body
            .template
            .as_ref()
            .is_some_and(|t| t.contains_key(segments[0]));
    let mut map: &mut Map<String, Value> = match (&mut body.template, in_template) {
        (Some(template), true) => template,
        _ => &mut body.custom_fields,
    };
    let (last, parents) = segments.split_last().expect("a field has a name");
    for segment in parents {
        let slot = map
            .entry(segment.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        let Value::Object(inner) = slot else {
            return false;
        };
        map = inner;
    }
    map.insert((*last).to_owned(), Value::from(value));
    true
}

/// True when `failure` is the server refusing the body field `field`.
fn refuses_field(failure: &Failure, field: &str) -> bool {
    let name = field.rsplit('.').next().unwrap_or(field);
    match &failure.kind {
        FailureKind::HttpStatus {
            status: 400 | 422,
            body,
            provider_message,
            ..
        } => {
            body.contains(name)
                || provider_message
                    .as_deref()
                    .is_some_and(|m| m.contains(name))
        }
        _ => false,
    }
}

/// The first `max` characters of `text`.
pub fn truncate_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}
