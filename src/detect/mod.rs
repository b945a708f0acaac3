//! Detection (`llm/detect`, `llm-sidecar detect URL`): from the address the
//! user pasted (and a token) to settings proven to work.
//!
//! The model lists are read first (`…/v1/models`, `…/models`, Ollama's
//! `…/api/tags`) with [`Engine::get`]; then each API shape that fits what was
//! found ([`shapes`]) gets a short completion through [`Engine::complete`],
//! built from the very v1 settings the candidate will carry, so validation,
//! proxy, TLS, secrets and same-origin redirects apply as in chat. The text
//! path is the shape's documented one when it produces text; when it matches
//! nothing, the `no_match` suggestions (paths that would have produced text
//! from the real events) give the path, which is then verified by one more
//! completion. A shape whose streaming request is refused is tried once
//! without streaming. Every request counts against a small budget, each has
//! short time limits, answers are capped and asked to be deterministic
//! (temperature 0 where the API takes it), and nothing is retried by the
//! engine. A probe whose events were read and matched the path proves the
//! shape even when its text is blank (a small model may spend a few tokens on
//! whitespace); it is asked once more with a larger cap, for a sample text.
//! [`models`] is the model list alone (`llm/models`).

pub mod fim;
mod models;
mod options;
pub mod shapes;

pub use models::{NoModels, models};
pub use options::{MAX_REQUESTS, Options, default_timeouts, parse_options};

use reqwest::Url;
use serde::Serialize;
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use crate::decode::ResponseType;
use crate::engine::{ChunkKind, ChunkSink, Completion, Engine, Failure, FailureKind};
use crate::probe::{self, truncate_chars};
use crate::request::{self, Message, Role};
use crate::secrets::Secrets;

use shapes::{Bases, ModelList, Shape};

/// The result of a detection.
#[derive(Debug, Clone, Serialize)]
pub struct Detection {
    /// Settings verified by a completion that produced text, best first.
    pub candidates: Vec<Candidate>,
    /// Every request made, in order, with what came of it.
    pub tried: Vec<Tried>,
    /// Code completion: the FIM shapes the server answered, and verified
    /// completion settings ([`fim`]).
    pub fim: fim::FimDetection,
}

/// Settings that produced text.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Candidate {
    /// In the AutoDev v1 dialog form, ready to send back as `settings`.
    pub settings: Value,
    /// The built-in preset of this shape, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preset: Option<&'static str>,
    /// `openai-chat`, `anthropic-messages` or `ollama-chat`.
    pub api: &'static str,
    pub response_type: String,
    /// The server's models, as listed.
    pub models: Vec<String>,
    pub sample_text: String,
    pub first_byte_ms: u64,
}

/// One request made while detecting.
#[derive(Debug, Clone, Serialize)]
pub struct Tried {
    /// Method, URL (without its query) and, for a completion, the shape tried.
    pub request: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// What came of it, in words; secrets masked.
    pub outcome: String,
    /// It gave a model list, or proved a shape (text, or blank text at the path).
    pub accepted: bool,
}

/// The caller cancelled the detection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cancelled;

/// What one completion probe gave.
enum Probe {
    Text(Box<Completion>),
    /// The events were read and matched the path, but the text is blank.
    Blank(Box<Completion>),
    /// The path matched nothing; the best suggestion and the type read.
    NoMatch(Option<(String, String)>),
    /// The server refused the request as written (HTTP 400, 415, 422...).
    Refused,
    Failed,
}

/// Sees nothing: the completion's own result carries the text.
struct Discard;

impl ChunkSink for Discard {
    async fn chunk(&mut self, _: ChunkKind, _: &str) {}
}

/// Runs the probes of one detection.
struct Detector<'a> {
    engine: &'a Engine,
    cancel: &'a CancellationToken,
    options: &'a Options,
    bases: Bases,
    secrets: Secrets,
    tried: Vec<Tried>,
    requests: usize,
}

/// The cap on each probe's answer: enough for a few words of sample text.
const PROBE_MAX_TOKENS: u64 = 16;
/// The cap when a probe is asked again after a blank answer.
const BLANK_RETRY_MAX_TOKENS: u64 = 64;
/// How much of a model list is read.
pub(crate) const LIST_BYTES: usize = 1 << 20;
/// How much of a body an outcome quotes.
pub(crate) const QUOTE_BYTES: usize = 200;
/// How much of the answer a candidate shows.
const SAMPLE_CHARS: usize = 200;
const PROMPT: &str = "Say hello.";

/// Detects working settings for the server at `options.url` (see the module doc). `Err` only when cancelled.
pub async fn detect(
    engine: &Engine,
    options: &Options,
    cancel: &CancellationToken,
) -> Result<Detection, Cancelled> {
    let bases = Bases::new(&options.url);
    let secrets = options
        .probe_settings(Shape::OpenAi.settings(
            &options.url,
            None,
            true,
            "$.x",
            "SSE",
            options.access(),
        ))
        .map(|s| s.secrets)
        .unwrap_or_default();
    let mut d = Detector {
        engine,
        cancel,
        options,
        bases,
        secrets,
        tried: Vec::new(),
        requests: 0,
    };
    let host = options.url.host_str().unwrap_or_default();
    let list_shape = if d.bases.named == Some(Shape::Anthropic) || host.contains("anthropic") {
        Shape::Anthropic
    } else {
        Shape::OpenAi
    };
    let mut listed = d.list(d.bases.versioned_models(), list_shape).await?;
    // Anthropic takes the token in `x-api-key` and refuses a Bearer one.
    let refused = d
        .tried
        .last()
        .and_then(|t| t.status)
        .is_some_and(|s| s == 401 || s == 403);
    if listed.is_none() && refused && list_shape == Shape::OpenAi && options.token.is_some() {
        listed = d.list(d.bases.versioned_models(), Shape::Anthropic).await?;
    }
    if listed.is_none()
        && let Some(url) = d.bases.root_models()
    {
        listed = d.list(url, list_shape).await?;
    }
    let tags = d.list(d.bases.tags(), Shape::Ollama).await?;

    let mut order = Vec::new();
    order.extend(d.bases.named);
    if let Some(list) = &listed {
        order.push(if list.anthropic {
            Shape::Anthropic
        } else {
            Shape::OpenAi
        });
    }
    if tags.is_some() {
        order.extend([Shape::Ollama, Shape::OpenAi]);
    }
    if order.is_empty() {
        order = vec![Shape::OpenAi, Shape::Anthropic, Shape::Ollama];
    }
    let mut shapes: Vec<Shape> = Vec::new();
    for shape in order {
        if !shapes.contains(&shape) {
            shapes.push(shape);
        }
    }
    let mut candidates = Vec::new();
    for shape in shapes {
        let list = match shape {
            Shape::Ollama => tags.as_ref().or(listed.as_ref()),
            _ => listed.as_ref().or(tags.as_ref()),
        };
        if let Some(candidate) = d.shape(shape, list).await? {
            candidates.push((d.bases.named == Some(shape), candidate));
        }
    }
    // Streaming first, then the shape the URL names, then the order tried.
    candidates.sort_by_key(|(named, c)| (c.response_type == "JSON", !named));
    let fim = d.fim(listed.as_ref(), tags.as_ref()).await?;
    Ok(Detection {
        candidates: candidates.into_iter().map(|(_, c)| c).collect(),
        tried: d.tried,
        fim,
    })
}

impl Detector<'_> {
    /// True when another request is allowed; notes the limit once.
    fn budget(&mut self, what: &str) -> bool {
        if self.requests < self.options.max_requests {
            self.requests += 1;
            return true;
        }
        self.tried.push(Tried {
            request: what.to_owned(),
            status: None,
            outcome: format!(
                "not sent: the limit of {} requests was reached",
                self.options.max_requests
            ),
            accepted: false,
        });
        false
    }

    fn note(&mut self, request: String, status: Option<u16>, outcome: String, accepted: bool) {
        let outcome = self.secrets.scrub(&outcome);
        tracing::debug!(%request, ?status, %outcome, "detect");
        self.tried.push(Tried {
            request,
            status,
            outcome,
            accepted,
        });
    }

    fn quote(&self, body: &[u8], cut: bool) -> String {
        let text = String::from_utf8_lossy(body);
        let text = self.secrets.excerpt(text.trim(), QUOTE_BYTES, cut);
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    /// Reads one model list; `Err` only when cancelled.
    async fn list(&mut self, url: Url, shape: Shape) -> Result<Option<ModelList>, Cancelled> {
        let o = self.options;
        let v1 = shape.settings(
            &url,
            None,
            false,
            shape.text_path(false),
            "JSON",
            o.access(),
        );
        let Ok(settings) = o.probe_settings(v1) else {
            return Ok(None);
        };
        let mut request = format!("GET {}", settings.display_url());
        if shape == Shape::Anthropic {
            request.push_str(" (token in x-api-key)");
        }
        if !self.budget(&request) {
            return Ok(None);
        }
        let headers = request::headers(&settings);
        match self
            .engine
            .get(&settings, url, headers, LIST_BYTES, self.cancel)
            .await
        {
            Ok(got) if (200..300).contains(&got.status) => match ModelList::parse(&got.body) {
                Some(list) => {
                    let outcome = format!(
                        "{} model(s): {}",
                        list.ids.len(),
                        list.ids
                            .iter()
                            .take(5)
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                    self.note(request, Some(got.status), outcome, true);
                    Ok(Some(list))
                }
                None => {
                    let outcome = format!("not a model list: {}", self.quote(&got.body, got.cut));
                    self.note(request, Some(got.status), outcome, false);
                    Ok(None)
                }
            },
            Ok(got) => {
                let quoted = self.quote(&got.body, got.cut);
                let outcome = if quoted.is_empty() {
                    format!("HTTP {}", got.status)
                } else {
                    format!("HTTP {}: {quoted}", got.status)
                };
                self.note(request, Some(got.status), outcome, false);
                Ok(None)
            }
            Err(failure) => self.failed(request, failure).map(|()| None),
        }
    }

    /// Notes a failed request; `Err` when it failed because the caller cancelled.
    fn failed(&mut self, request: String, failure: Failure) -> Result<(), Cancelled> {
        if matches!(failure.kind, FailureKind::Cancelled) && self.cancel.is_cancelled() {
            return Err(Cancelled);
        }
        let status = failure.http.as_ref().map(|h| h.status);
        let mut outcome = failure.message();
        if let FailureKind::NoMatch { suggestions, .. } = &failure.kind
            && let Some(first) = suggestions.first()
        {
            outcome.push_str(&format!("; text found at {}", first.path));
        }
        self.note(request, status, outcome, false);
        Ok(())
    }

    /// Tries one shape: streamed, then (when streaming is refused) not;
    /// a path from the suggestions is verified by one more completion.
    async fn shape(
        &mut self,
        shape: Shape,
        list: Option<&ModelList>,
    ) -> Result<Option<Candidate>, Cancelled> {
        let url = self.bases.endpoint(shape);
        let model = list.and_then(ModelList::pick);
        for stream in [true, false] {
            let mut path = shape.text_path(stream).to_owned();
            let mut response_type = shape.response_type(stream).to_owned();
            let mut retried = false;
            let mut max_tokens = PROBE_MAX_TOKENS;
            // A blank answer that proved the shape, kept while a larger cap is tried.
            let mut blank: Option<(Map<String, Value>, String, Box<Completion>)> = None;
            loop {
                let o = self.options;
                let v1 = shape.settings(&url, model, stream, &path, &response_type, o.access());
                let probe = self
                    .complete(shape, v1.clone(), model, stream, max_tokens)
                    .await?;
                let proved = match probe {
                    Probe::Text(done) => Some((v1, response_type.clone(), done)),
                    Probe::Blank(done) if blank.is_none() => {
                        blank = Some((v1, response_type.clone(), done));
                        max_tokens = BLANK_RETRY_MAX_TOKENS;
                        continue;
                    }
                    Probe::Blank(done) => Some((v1, response_type.clone(), done)),
                    // The blank answer before this one proved the shape.
                    _ if blank.is_some() => blank.take(),
                    Probe::NoMatch(Some((found, read_as))) if !retried => {
                        retried = true;
                        path = found;
                        response_type = read_as;
                        continue;
                    }
                    Probe::Refused if stream => break,
                    _ => return Ok(None),
                };
                let Some((v1, asked_as, done)) = proved else {
                    return Ok(None);
                };
                let read_as = done.response_type.as_str().to_uppercase();
                let settings = if read_as == asked_as {
                    v1
                } else {
                    let access = self.options.access();
                    shape.settings(&url, model, stream, &path, &read_as, access)
                };
                return Ok(Some(Candidate {
                    settings: Value::Object(settings),
                    preset: shape.preset(),
                    api: shape.name(),
                    response_type: read_as,
                    models: list.map(|l| l.ids.clone()).unwrap_or_default(),
                    sample_text: truncate_chars(&done.text, SAMPLE_CHARS),
                    first_byte_ms: done.timings.first_byte_ms,
                }));
            }
        }
        Ok(None)
    }

    /// One bounded completion with the candidate settings `v1`.
    async fn complete(
        &mut self,
        shape: Shape,
        v1: Map<String, Value>,
        model: Option<&str>,
        stream: bool,
        max_tokens: u64,
    ) -> Result<Probe, Cancelled> {
        let path = v1
            .get("customEngineResponseFormat")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let mut settings = match self.options.probe_settings(v1) {
            Ok(settings) => settings,
            Err(problems) => {
                let list: Vec<String> = problems
                    .iter()
                    .map(|p| format!("{}: {}", p.field, p.message))
                    .collect();
                self.note(
                    format!("POST {} ({})", self.bases.endpoint(shape), shape.name()),
                    None,
                    format!("not sent: {}", list.join("; ")),
                    false,
                );
                return Ok(Probe::Failed);
            }
        };
        if let Some(field) = probe::cap_field(&settings) {
            probe::insert_cap(&mut settings.body, field, max_tokens);
        }
        if let Some(field) = shape.temperature_field(&settings.url) {
            probe::insert_cap(&mut settings.body, field, 0);
        }
        let mut request = format!(
            "POST {} ({}, {}",
            settings.display_url(),
            shape.name(),
            if stream { "streamed" } else { "not streamed" }
        );
        if let Some(model) = model {
            request.push_str(&format!(", model {model}"));
        }
        if max_tokens != PROBE_MAX_TOKENS {
            request.push_str(&format!(", up to {max_tokens} tokens"));
        }
        request.push(')');
        if !self.budget(&request) {
            return Ok(Probe::Failed);
        }
        let messages = [Message {
            role: Role::User,
            content: PROMPT.to_owned(),
        }];
        match self
            .engine
            .complete(&settings, &messages, &mut Discard, self.cancel)
            .await
        {
            Ok(done) if !done.text.trim().is_empty() => {
                let outcome = format!("text at {}: {:?}", path, truncate_chars(&done.text, 60));
                self.note(request, Some(done.http.status), outcome, true);
                Ok(Probe::Text(Box::new(done)))
            }
            Ok(done) => {
                // The engine answers only when the events matched the path
                // (an empty answer that matched nothing is `no_match`).
                let outcome = format!(
                    "answered {} with blank text at {} (finish reason: {}): the events match, so the shape works",
                    done.http.status,
                    path,
                    done.finish_reason.as_deref().unwrap_or("none")
                );
                self.note(request, Some(done.http.status), outcome, true);
                Ok(Probe::Blank(Box::new(done)))
            }
            Err(failure) => {
                let probe = match &failure.kind {
                    FailureKind::NoMatch { suggestions, .. } => {
                        let content_type = failure
                            .http
                            .as_ref()
                            .and_then(|h| h.content_type.as_deref());
                        let read_as = ResponseType::choose(settings.response_type, content_type).0;
                        Probe::NoMatch(
                            suggestions
                                .first()
                                .map(|s| (s.path.clone(), read_as.as_str().to_uppercase())),
                        )
                    }
                    FailureKind::HttpStatus {
                        status: 400 | 405 | 415 | 422 | 501,
                        ..
                    } => Probe::Refused,
                    _ => Probe::Failed,
                };
                self.failed(request, failure)?;
                Ok(probe)
            }
        }
    }
}
