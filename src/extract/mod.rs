//! JsonPath to text: what each decoded event contributes to the answer.
//!
//! An [`Extractor`] is made for one completion. Without a configured path it
//! tries one chain of the common servers' text paths on every event, whatever
//! format the body turned out to be, so a mislabelled body needs no setting.
//! Each event's JSON is parsed once; the content path, the reasoning path, the
//! stream-error check, `finish_reason` and `usage` all read that one value.
//! It also keeps what is needed to explain an empty answer afterwards
//! ([`Extractor::verdict`]): how many events there were, whether any was JSON,
//! whether the path ever selected a node, the first events as samples, and
//! paths that would have matched ([`suggest`]).
//!
//! Submodules: [`paths`] (compiled paths and the default chain), [`dialect`]
//! (compiling the paths users paste), [`errors`] (the server's own words),
//! [`suggest`], [`lenient`] (JSON with `NaN` or lone surrogates),
//! [`surrogates`] (surrogate pairs split across events).
//!
//! An event that starts as JSON but cannot be read even leniently is never
//! text: it is skipped and counted, and [`Extractor::warnings`] says so.

pub mod dialect;
mod errors;
mod fast;
mod lenient;
mod paths;
pub mod suggest;
pub mod surrogates;

pub use errors::provider_message;
pub use lenient::parse_lenient;
pub use paths::{CompiledPath, DEFAULT_JSON_PATH, DEFAULT_STREAM_PATH, PathError};

use serde_json::Value;

use std::sync::Arc;

use self::errors::top_level_error;
use self::fast::{Found, Plan};
use self::lenient::looks_like_json;
use self::paths::{DEFAULT_PATHS, Selected, collect_strings};
use self::suggest::Suggestion;
use self::surrogates::Joiner;
use crate::decode::{Event, ResponseType};
use crate::secrets::Secrets;

/// Text taken from one event.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Pieces {
    pub content: String,
    pub reasoning: String,
}

/// What one event means for the completion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Text (either piece may be empty).
    Text(Pieces),
    /// `[DONE]`: the stream is over.
    Done,
    /// The server reported an error inside the stream.
    Error {
        provider_message: String,
        event: String,
    },
    /// The body ended inside this event (see [`Event::Truncated`]).
    Truncated { event: String },
}

/// Why a completion produced no answer at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing could be read as events.
    NoEvents,
    /// A path was set and no event was JSON.
    NotJson { events: usize, sample: Vec<String> },
    /// The path selected no node in any event.
    /// The path selected no string and no null in any event (nothing at
    /// all, or only objects, arrays, numbers or booleans).
    NoMatch {
        path: String,
        events: usize,
        /// Events in which it selected only non-text values.
        non_text_events: usize,
        sample: Vec<String>,
        suggestions: Vec<Suggestion>,
    },
}

/// Applies the configured paths to events, one completion at a time.
#[derive(Debug)]
pub struct Extractor {
    content: ContentPath,
    reasoning: Option<CompiledPath>,
    events: usize,
    json_events: usize,
    /// The path selected a string or a null in some event.
    matched: bool,
    /// Events where the path selected only objects, arrays, numbers or booleans.
    non_text_events: usize,
    sample: Vec<String>,
    finish_reason: Option<String>,
    usage: Option<Value>,
    /// Parsed events kept while nothing matched, for suggestions.
    kept: Vec<Value>,
    kept_bytes: usize,
    /// Kept out of samples and suggestions.
    secrets: Secrets,
    content_joiner: Joiner,
    reasoning_joiner: Joiner,
    /// The content path reads `choices[0]` by position.
    positional: bool,
    /// The first `choices[0].index` seen, and a different one seen after it.
    choice_index: Option<u64>,
    other_choice_index: Option<u64>,
    /// How the common event is read without a `Value` ([`fast`]); `None`
    /// when a configured path is not simple.
    fast: Option<Arc<Plan>>,
    /// Events that started as JSON and could not be read, and the first.
    unreadable: usize,
    first_unreadable: Option<String>,
}

#[derive(Debug)]
enum ContentPath {
    Configured(CompiledPath),
    /// No path configured: the first of [`DEFAULT_PATHS`] that selects
    /// something in an event; raw text for non-JSON data.
    Default,
}

/// How many events are kept as samples for errors.
const SAMPLE_EVENTS: usize = 3;
/// How much of each sample event is kept, in bytes.
const SAMPLE_BYTES: usize = 1024;
/// How much of the first unreadable event a warning quotes, in bytes.
const UNREADABLE_QUOTE_BYTES: usize = 200;
/// How many parsed events, and how many bytes of them, are kept for suggestions.
const KEPT_EVENTS: usize = 64;
const KEPT_BYTES: usize = 512 * 1024;

impl Extractor {
    /// An extractor with these paths (`None`: the defaults; no reasoning).
    pub fn new(content: Option<&CompiledPath>, reasoning: Option<&CompiledPath>) -> Self {
        let fast = fast::plan_for(content, reasoning);
        let positional = content.is_none_or(|p| p.normalized.contains("choices[0]"));
        let content = match content {
            Some(path) => ContentPath::Configured(path.clone()),
            None => ContentPath::Default,
        };
        Extractor {
            positional,
            choice_index: None,
            other_choice_index: None,
            content,
            reasoning: reasoning.cloned(),
            events: 0,
            json_events: 0,
            matched: false,
            non_text_events: 0,
            sample: Vec::new(),
            finish_reason: None,
            usage: None,
            kept: Vec::new(),
            kept_bytes: 0,
            content_joiner: Joiner::default(),
            reasoning_joiner: Joiner::default(),
            secrets: Secrets::default(),
            fast,
            unreadable: 0,
            first_unreadable: None,
        }
    }

    /// The same extractor without the fast path, to compare the two.
    #[cfg(test)]
    fn without_fast_path(mut self) -> Self {
        self.fast = None;
        self
    }

    /// Keeps `secrets` out of the samples and suggestions this extractor reports.
    pub fn with_secrets(mut self, secrets: &Secrets) -> Self {
        self.secrets = secrets.clone();
        self
    }

    /// Text held back at the end of the stream (half of a surrogate pair).
    pub fn flush(&mut self) -> Pieces {
        Pieces {
            content: self
                .content_joiner
                .finish()
                .map(String::from)
                .unwrap_or_default(),
            reasoning: self
                .reasoning_joiner
                .finish()
                .map(String::from)
                .unwrap_or_default(),
        }
    }

    /// The content path in effect for a body read as `response_type`, as text.
    pub fn content_path(&self, response_type: ResponseType) -> &str {
        match &self.content {
            ContentPath::Configured(p) => &p.source,
            ContentPath::Default if response_type == ResponseType::Json => DEFAULT_JSON_PATH,
            ContentPath::Default => DEFAULT_STREAM_PATH,
        }
    }

    /// A warning when the server streamed several choices into the
    /// `choices[0]` a positional path reads, mixing their texts.
    pub fn mixed_choices(&self, response_type: ResponseType) -> Option<String> {
        let (first, other) = (self.choice_index?, self.other_choice_index?);
        let path = self.content_path(response_type);
        let filtered = path.replacen("choices[0]", "choices[?@.index==0]", 1);
        Some(format!(
            "the server sent more than one choice (index {first} and {other}) in choices[0], so the path `{path}` mixed their texts; to keep one answer use `{filtered}`, or drop `n` from customFields"
        ))
    }

    /// What went wrong without stopping the answer: several choices mixed
    /// by a positional path, events that could not be read.
    pub fn warnings(&self, response_type: ResponseType) -> Vec<String> {
        let mut warnings: Vec<String> = self.mixed_choices(response_type).into_iter().collect();
        if let Some(first) = &self.first_unreadable {
            let n = self.unreadable;
            let (events, were) = if n == 1 {
                ("event", "was")
            } else {
                ("events", "were")
            };
            warnings.push(format!(
                "{n} {events} of the response could not be read as JSON and {were} skipped; the first: `{first}`"
            ));
        }
        warnings
    }

    /// The last finish reason the server sent.
    pub fn finish_reason(&self) -> Option<&str> {
        self.finish_reason.as_deref()
    }

    /// Takes the last usage object the server sent.
    pub fn take_usage(&mut self) -> Option<Value> {
        self.usage.take()
    }

    /// What one decoded event contributes.
    pub fn apply(&mut self, event: &Event) -> Outcome {
        match event {
            Event::Data { event_type, data } => self.data_event(event_type, data),
            Event::Stray(text) => self.stray(text),
            Event::Truncated(data) => Outcome::Truncated {
                event: data.clone(),
            },
        }
    }

    fn data_event(&mut self, event_type: &str, data: &str) -> Outcome {
        if data.trim() == "[DONE]" {
            return Outcome::Done;
        }
        let is_error = event_type.eq_ignore_ascii_case("error");
        if !is_error && let Some(outcome) = self.fast_event(data) {
            return outcome;
        }
        let parsed = parse_lenient(data);
        if is_error {
            let provider_message = parsed
                .as_ref()
                .and_then(provider_message)
                .unwrap_or_else(|| data.trim().to_owned());
            return Outcome::Error {
                provider_message,
                event: data.to_owned(),
            };
        }
        self.count(data, parsed.is_some());
        match parsed {
            Some(value) => self.json_event(&value, data),
            None if looks_like_json(data) => self.unreadable(data),
            None => self.text_event(data),
        }
    }

    /// An event that starts as JSON and cannot be read: skipped and counted.
    fn unreadable(&mut self, data: &str) -> Outcome {
        self.unreadable += 1;
        if self.first_unreadable.is_none() {
            let quote = self
                .secrets
                .excerpt(data.trim(), UNREADABLE_QUOTE_BYTES, false);
            self.first_unreadable = Some(quote);
        }
        tracing::debug!(
            bytes = data.len(),
            "skipping an event that is not valid JSON"
        );
        Outcome::Text(Pieces::default())
    }

    /// [`Self::json_event`] for an event [`fast`] can read without a `Value`,
    /// with the very same effects; `None` (and nothing changed) otherwise.
    fn fast_event(&mut self, data: &str) -> Option<Outcome> {
        let scanned = self.fast.as_ref()?.scan(data)?;
        let (selected, content) = match scanned.content {
            Found::Str(text) => (Selected::Text, text),
            Found::Null => (Selected::Text, "".into()),
            Found::Absent => (Selected::Nothing, "".into()),
            _ => (Selected::NonText, "".into()),
        };
        if !self.matched && selected != Selected::Text {
            // The event would be kept, as a `Value`, for suggestions.
            return None;
        }
        self.count(data, true);
        match selected {
            Selected::Text => self.matched = true,
            Selected::NonText => self.non_text_events += 1,
            Selected::Nothing => {}
        }
        let mut pieces = Pieces {
            content: content.into_owned(),
            reasoning: String::new(),
        };
        if let Found::Str(text) = scanned.reasoning {
            pieces.reasoning = text.into_owned();
        }
        self.content_joiner.join(&mut pieces.content);
        self.reasoning_joiner.join(&mut pieces.reasoning);
        if let Some(reason) = scanned
            .finish_reason
            .filter(|r| !r.is_empty() && *r != "null")
        {
            self.finish_reason = Some(reason.into_owned());
        }
        if self.positional {
            self.note_index(scanned.choice_index);
        }
        self.kept = Vec::new();
        Some(Outcome::Text(pieces))
    }

    /// Lines outside the SSE grammar: a bare JSON error is a stream error, any
    /// other bare JSON document is treated as an event, other text is ignored.
    fn stray(&mut self, text: &str) -> Outcome {
        let Some(value) = parse_lenient(text) else {
            if looks_like_json(text) {
                return self.unreadable(text);
            }
            tracing::debug!(bytes = text.len(), "ignoring lines outside the SSE format");
            return Outcome::Text(Pieces::default());
        };
        self.count(text, true);
        self.json_event(&value, text)
    }

    fn count(&mut self, data: &str, is_json: bool) {
        self.events += 1;
        if is_json {
            self.json_events += 1;
        }
        if self.sample.len() < SAMPLE_EVENTS {
            self.sample
                .push(self.secrets.excerpt(data, SAMPLE_BYTES, false));
        }
    }

    fn json_event(&mut self, value: &Value, data: &str) -> Outcome {
        if let Some(error) = top_level_error(value) {
            return Outcome::Error {
                provider_message: provider_message(value).unwrap_or_else(|| error.to_string()),
                event: data.to_owned(),
            };
        }
        let mut pieces = Pieces::default();
        let selected = match &self.content {
            ContentPath::Configured(path) => {
                collect_strings(&path.path, value, &mut pieces.content)
            }
            ContentPath::Default => DEFAULT_PATHS
                .iter()
                .map(|path| collect_strings(path, value, &mut pieces.content))
                .find(|selected| *selected != Selected::Nothing)
                .unwrap_or(Selected::Nothing),
        };
        match selected {
            Selected::Text => self.matched = true,
            Selected::NonText => self.non_text_events += 1,
            Selected::Nothing => {}
        }
        if let Some(reasoning) = &self.reasoning {
            collect_strings(&reasoning.path, value, &mut pieces.reasoning);
        }
        self.content_joiner.join(&mut pieces.content);
        self.reasoning_joiner.join(&mut pieces.reasoning);
        self.note_metadata(value);
        if self.positional {
            self.note_choice_index(value);
        }
        if self.matched {
            self.kept = Vec::new();
        } else if self.kept.len() < KEPT_EVENTS && self.kept_bytes + data.len() <= KEPT_BYTES {
            self.kept_bytes += data.len();
            self.kept.push(value.clone());
        }
        Outcome::Text(pieces)
    }

    /// Non-JSON data: the text itself when no path was configured.
    fn text_event(&mut self, data: &str) -> Outcome {
        match self.content {
            ContentPath::Configured(_) => Outcome::Text(Pieces::default()),
            ContentPath::Default => {
                self.matched = true;
                Outcome::Text(Pieces {
                    content: data.to_owned(),
                    reasoning: String::new(),
                })
            }
        }
    }

    fn note_choice_index(&mut self, value: &Value) {
        self.note_index(value.pointer("/choices/0/index").and_then(Value::as_u64));
    }

    fn note_index(&mut self, index: Option<u64>) {
        let Some(index) = index else {
            return;
        };
        match self.choice_index {
            None => self.choice_index = Some(index),
            Some(first) if first != index && self.other_choice_index.is_none() => {
                self.other_choice_index = Some(index);
            }
            Some(_) => {}
        }
    }

    fn note_metadata(&mut self, value: &Value) {
        let finish = value
            .pointer("/choices/0/finish_reason")
            .or_else(|| value.pointer("/candidates/0/finishReason"))
            .or_else(|| value.pointer("/delta/stop_reason"))
            .or_else(|| value.get("done_reason"))
            .and_then(Value::as_str);
        if let Some(reason) = finish.filter(|r| !r.is_empty() && *r != "null") {
            self.finish_reason = Some(reason.to_owned());
        }
        if let Some(usage) = value
            .get("usage")
            .or_else(|| value.get("usageMetadata"))
            .filter(|u| u.is_object())
        {
            self.usage = Some(usage.clone());
        }
    }

    /// Explains an answer that has no text, or `None` when the answer is a
    /// legitimate empty one (the path selected only nulls or empty strings).
    /// `response_type` is the format the body was read as.
    pub fn verdict(&self, response_type: ResponseType) -> Option<Verdict> {
        if self.events == 0 {
            return Some(Verdict::NoEvents);
        }
        if self.json_events == 0 && matches!(self.content, ContentPath::Configured(_)) {
            return Some(Verdict::NotJson {
                events: self.events,
                sample: self.sample.clone(),
            });
        }
        if !self.matched {
            let normalized = match &self.content {
                ContentPath::Configured(p) => p.normalized.as_str(),
                ContentPath::Default => self.content_path(response_type),
            };
            return Some(Verdict::NoMatch {
                path: self.content_path(response_type).to_owned(),
                events: self.events,
                non_text_events: self.non_text_events,
                sample: self.sample.clone(),
                suggestions: suggest::suggest(&self.kept, normalized, &self.secrets),
            });
        }
        None
    }
}

#[cfg(test)]
mod tests;
