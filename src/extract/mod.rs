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
//! [`suggest`], [`surrogates`] (surrogate pairs split across events).

pub mod dialect;
mod errors;
mod fast;
mod paths;
pub mod suggest;
pub mod surrogates;

pub use errors::provider_message;
pub use paths::{CompiledPath, DEFAULT_JSON_PATH, DEFAULT_STREAM_PATH, PathError};

use serde_json::Value;

use std::sync::Arc;

use self::errors::top_level_error;
use self::fast::{Found, Plan};
use self::paths::{DEFAULT_PATHS, Selected, collect_strings};
use self::suggest::Suggestion;
use self::surrogates::{Joiner, parse_lenient};
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
            None => self.text_event(data),
        }
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
mod tests {
    use super::*;

    fn data(d: &str) -> Event {
        Event::Data {
            event_type: "message".into(),
            data: d.into(),
        }
    }

    fn text(outcome: Outcome) -> String {
        match outcome {
            Outcome::Text(p) => p.content,
            other => panic!("expected text, got {other:?}"),
        }
    }

    #[test]
    fn strings_append_nulls_do_not() {
        let path = CompiledPath::compile("$.choices[0].delta.content").unwrap();
        let mut x = Extractor::new(Some(&path), None);
        assert_eq!(
            text(x.apply(&data(r#"{"choices":[{"delta":{"content":null}}]}"#))),
            ""
        );
        assert_eq!(
            text(x.apply(&data(r#"{"choices":[{"delta":{"content":"Hi"}}]}"#))),
            "Hi"
        );
        assert_eq!(text(x.apply(&data(r#"{"choices":[]}"#))), "");
        assert_eq!(x.apply(&data(" [DONE] ")), Outcome::Done);
        assert_eq!(x.verdict(ResponseType::Sse), None);
    }

    #[test]
    fn several_matches_are_joined() {
        let path = CompiledPath::compile("$.parts[*].text").unwrap();
        let mut x = Extractor::new(Some(&path), None);
        assert_eq!(
            text(x.apply(&data(r#"{"parts":[{"text":"a"},{"x":1},{"text":"b"}]}"#))),
            "ab"
        );
    }

    #[test]
    fn only_nulls_is_a_valid_empty_answer_but_nothing_is_no_match() {
        let path = CompiledPath::compile("$.a").unwrap();
        let mut x = Extractor::new(Some(&path), None);
        x.apply(&data(r#"{"a":null}"#));
        assert_eq!(x.verdict(ResponseType::Sse), None);
        let mut y = Extractor::new(Some(&path), None);
        y.apply(&data(r#"{"b":"x"}"#));
        assert!(matches!(
            y.verdict(ResponseType::Sse),
            Some(Verdict::NoMatch { events: 1, .. })
        ));
    }

    #[test]
    fn a_path_that_selects_only_objects_is_no_match() {
        let path = CompiledPath::compile("$.choices[0].delta").unwrap();
        let mut x = Extractor::new(Some(&path), None);
        x.apply(&data(r#"{"choices":[{"delta":{"content":"a"}}]}"#));
        x.apply(&data(r#"{"choices":[{"delta":{"content":"b"}}]}"#));
        match x.verdict(ResponseType::Sse) {
            Some(Verdict::NoMatch {
                non_text_events: 2,
                suggestions,
                ..
            }) => {
                assert_eq!(suggestions[0].path, "$.choices[0].delta.content");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn errors_in_stream() {
        let mut x = Extractor::new(None, None);
        let err = x.apply(&Event::Data {
            event_type: "error".into(),
            data: r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#
                .into(),
        });
        assert!(
            matches!(err, Outcome::Error { provider_message, .. } if provider_message == "Overloaded")
        );
        let err = x.apply(&data(r#"{"error":"model not found"}"#));
        assert!(
            matches!(err, Outcome::Error { provider_message, .. } if provider_message == "model not found")
        );
        let ok = x.apply(&data(
            r#"{"error":null,"choices":[{"delta":{"content":"x"}}]}"#,
        ));
        assert_eq!(text(ok), "x");
        let stray = x.apply(&Event::Stray(
            "{\n \"error\": {\"code\": 499, \"message\": \"cancelled\"}\n}".into(),
        ));
        assert!(
            matches!(stray, Outcome::Error { provider_message, .. } if provider_message == "cancelled")
        );
    }

    #[test]
    fn default_paths_and_raw_text() {
        let mut x = Extractor::new(None, None);
        assert_eq!(text(x.apply(&data("plain words"))), "plain words");
        assert_eq!(
            text(x.apply(&data(r#"{"choices":[{"message":{"content":"m"}}]}"#))),
            "m"
        );
        let mut j = Extractor::new(None, None);
        assert_eq!(j.content_path(ResponseType::Json), DEFAULT_JSON_PATH);
        assert_eq!(
            text(j.apply(&data(r#"{"choices":[{"message":{"content":"full"}}]}"#))),
            "full"
        );
    }

    #[test]
    fn default_chain_covers_common_servers() {
        let mut x = Extractor::new(None, None);
        assert_eq!(
            text(x.apply(&data(
                r#"{"message":{"role":"assistant","content":"olla"},"done":false}"#
            ))),
            "olla"
        );
        assert_eq!(
            text(x.apply(&data(r#"{"response":"gen","done":false}"#))),
            "gen"
        );
        assert_eq!(
            text(x.apply(&data(
                r#"{"type":"content_block_delta","delta":{"type":"text_delta","text":"claude"}}"#
            ))),
            "claude"
        );
        assert_eq!(text(x.apply(&data(r#"{"type":"content_block_delta","delta":{"type":"thinking_delta","thinking":"hmm"}}"#))), "");
        let gemini = r#"{"candidates":[{"content":{"parts":[{"text":"thought","thought":true},{"text":"answer"}]}}]}"#;
        assert_eq!(text(x.apply(&data(gemini))), "answer");
        // A usage-only chunk selects nothing anywhere in the chain.
        assert_eq!(
            text(x.apply(&data(r#"{"choices":[],"usage":{"total_tokens":1}}"#))),
            ""
        );
        let mut j = Extractor::new(None, None);
        let claude = r#"{"content":[{"type":"thinking","thinking":"x"},{"type":"text","text":"full answer"}]}"#;
        assert_eq!(text(j.apply(&data(claude))), "full answer");
    }

    #[test]
    fn verdicts() {
        let x = Extractor::new(None, None);
        assert_eq!(x.verdict(ResponseType::Sse), Some(Verdict::NoEvents));
        let path = CompiledPath::compile("$.a").unwrap();
        let mut y = Extractor::new(Some(&path), None);
        y.apply(&data("not json"));
        assert!(matches!(
            y.verdict(ResponseType::Sse),
            Some(Verdict::NotJson { events: 1, .. })
        ));
    }

    #[test]
    fn finish_reason_and_usage() {
        let mut x = Extractor::new(None, None);
        x.apply(&data(
            r#"{"choices":[{"delta":{},"finish_reason":"stop"}]}"#,
        ));
        x.apply(&data(r#"{"choices":[],"usage":{"total_tokens":3}}"#));
        assert_eq!(x.finish_reason(), Some("stop"));
        assert_eq!(x.take_usage(), Some(serde_json::json!({"total_tokens":3})));
    }

    /// Runs `events` through the extractor with and without the fast path;
    /// everything it reports must be the same.
    fn same_with_and_without_fast_path(
        content: Option<&CompiledPath>,
        reasoning: Option<&CompiledPath>,
        events: &[Event],
        response_type: ResponseType,
        what: &str,
    ) {
        let mut fast = Extractor::new(content, reasoning);
        let mut slow = Extractor::new(content, reasoning).without_fast_path();
        for (i, event) in events.iter().enumerate() {
            assert_eq!(
                fast.apply(event),
                slow.apply(event),
                "{what}: event {i}: {event:?}"
            );
        }
        assert_eq!(fast.flush(), slow.flush(), "{what}: flush");
        assert_eq!(
            fast.finish_reason(),
            slow.finish_reason(),
            "{what}: finish_reason"
        );
        assert_eq!(fast.take_usage(), slow.take_usage(), "{what}: usage");
        assert_eq!(
            fast.verdict(response_type),
            slow.verdict(response_type),
            "{what}: verdict"
        );
        assert_eq!(
            fast.mixed_choices(response_type),
            slow.mixed_choices(response_type),
            "{what}: mixed choices"
        );
    }

    fn path_sets() -> Vec<(Option<CompiledPath>, Option<CompiledPath>)> {
        let c = |p: &str| Some(CompiledPath::compile(p).unwrap());
        vec![
            (None, None),
            (c("$.choices[0].delta.content"), None),
            (c("$.choices[0].message.content"), None),
            (c("$['choices'][0]['delta']"), None),
            (c("$.choices[1].delta.content"), None),
            (c("$.delta.text"), None),
            (c("$.response"), None),
            (c("$.message.content"), None),
            (None, c("$.choices[0].delta.reasoning_content")),
            (
                c("$.choices[0].delta.content"),
                c("$.choices[0].delta.reasoning"),
            ),
            (c("$.choices[*].delta.content"), None),
            (c("$.choices[-1].delta.content"), None),
        ]
    }

    #[test]
    fn the_fast_path_changes_nothing_on_tricky_events() {
        let docs = [
            r#"{"choices":[{"index":0,"delta":{"content":"a"},"finish_reason":null}]}"#,
            r#"{"choices":[{"index":1,"delta":{"content":"b"}}]}"#,
            r#"{"choices":[{"index":-1,"delta":{"content":"c"}}]}"#,
            r#"{"choices":[{"index":1.0,"delta":{"content":"c"}}]}"#,
            r#"{"choices":[{"delta":{"content":"x","content":"y"}}],"choices":[{"delta":{"content":"z"}}]}"#,
            r#"{"choices":[{"delta":{"content":"x"}}],"choices":{"0":{"delta":{"content":"y"},"finish_reason":"obj"}}}"#,
            r#"{"choices":[{"delta":{"content":null}}]}"#,
            r#"{"choices":[{"delta":{"content":7}}]}"#,
            r#"{"choices":[{"delta":{"content":["a"]}}]}"#,
            r#"{"choices":[{"delta":{"content":"esc \" \n \u00e9 \ud83d\udc4b"}}]}"#,
            r#"{"choices":[{"delta":{"content":"lone \ud83d"}}]}"#,
            r#"{"choices":[{"delta":{"content":"\udc4b end"}}]}"#,
            r#"{"x":"\ud800","choices":[{"delta":{"content":"other field lone"}}]}"#,
            "{\"choices\":[{\"delta\":{\"content\":\"marker \u{FDD0}d83d here\"}}]}",
            r#"{"choices":[{"delta":{"content":"n"}}],"big":1e400}"#,
            r#"{"choices":[{"delta":{"content":"n"}}],"neg":-0.0,"u":18446744073709551615,"i":-9223372036854775808}"#,
            r#"{"choices":[{"delta":{"content":"trailing"}}]}   "#,
            r#"{"choices":[{"delta":{"content":"garbage"}}]} x"#,
            r#"{"error":null,"choices":[{"delta":{"content":"e0"}}]}"#,
            r#"{"error":false,"choices":[{"delta":{"content":"e1"}}]}"#,
            r#"{"error":"","choices":[{"delta":{"content":"e2"}}]}"#,
            r#"{"error":{},"choices":[{"delta":{"content":"e3"}}]}"#,
            r#"{"error":0,"choices":[{"delta":{"content":"e4"}}]}"#,
            r#"{"error":{"message":"boom"},"choices":[{"delta":{"content":"e5"}}]}"#,
            r#"{"usage":null,"choices":[{"delta":{"content":"u0"}}]}"#,
            r#"{"usage":5,"usageMetadata":{"t":1},"choices":[{"delta":{"content":"u1"}}]}"#,
            r#"{"usageMetadata":{"t":2},"choices":[]}"#,
            r#"{"choices":[],"usage":{"total_tokens":3}}"#,
            r#"{"choices":[{"delta":{},"finish_reason":"stop"}]}"#,
            r#"{"choices":[{"delta":{},"finish_reason":"null"}]}"#,
            r#"{"choices":[{"delta":{},"finish_reason":""}],"done_reason":"x"}"#,
            r#"{"candidates":[{"finishReason":"STOP","content":{"parts":[{"text":"g"}]}}]}"#,
            r#"{"delta":{"stop_reason":"end_turn","text":"t"}}"#,
            r#"{"message":{"content":"olla"},"done_reason":"stop","done":true}"#,
            r#"{"response":"gen"}"#,
            r#"{"content":[{"type":"text","text":"full"}]}"#,
            r#"{"choices":[{"message":{"content":"m"}}]}"#,
            r#"{"choices":[{"delta":{"reasoning_content":"think","content":""}}]}"#,
            r#"{"choices":[{"delta":{"reasoning":"r","content":"c"}}]}"#,
            r#"{"$serde_json::private::RawValue":"{\"choices\":[]}"}"#,
            r#"["choices"]"#,
            r#"[{"error":"in array"}]"#,
            r#""just a string""#,
            "42",
            "null",
            "plain text",
            r#"{"choices":[{"delta":{"content":"a"}}"#,
            r#"{"choices":[{"delta":{"content":"after"}}]}"#,
        ];
        let message = |d: &str| data(d);
        let error_typed = |d: &str| Event::Data {
            event_type: "error".into(),
            data: d.into(),
        };
        // Each document alone, then all of them in order, in both orders.
        for (content, reasoning) in path_sets() {
            let what = format!(
                "{:?} / {:?}",
                content.as_ref().map(|p| &p.source),
                reasoning.as_ref().map(|p| &p.source)
            );
            for d in docs {
                same_with_and_without_fast_path(
                    content.as_ref(),
                    reasoning.as_ref(),
                    &[
                        message(d),
                        message(r#"{"choices":[{"delta":{"content":"z"}}]}"#),
                    ],
                    ResponseType::Sse,
                    &format!("{what}: {d}"),
                );
            }
            let mut all: Vec<Event> = docs.iter().map(|d| message(d)).collect();
            all.push(error_typed(r#"{"error":{"message":"typed"}}"#));
            same_with_and_without_fast_path(
                content.as_ref(),
                reasoning.as_ref(),
                &all,
                ResponseType::Sse,
                &what,
            );
            all.reverse();
            same_with_and_without_fast_path(
                content.as_ref(),
                reasoning.as_ref(),
                &all,
                ResponseType::Json,
                &what,
            );
        }
    }

    #[test]
    fn the_fast_path_changes_nothing_on_the_captured_provider_responses() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
        let mut bodies = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let response_type = if name.ends_with(".sse") {
                ResponseType::Sse
            } else if name.ends_with(".ndjson") {
                ResponseType::Ndjson
            } else if name.ends_with(".json")
                && !name.ends_with(".meta.json")
                && name != "INDEX.json"
            {
                ResponseType::Json
            } else {
                continue;
            };
            let body = std::fs::read(&path).unwrap();
            let mut decoder = crate::decode::BodyDecoder::new(response_type, 1 << 24, 1 << 26);
            let mut events = Vec::new();
            let _ = decoder.feed(&body, &mut events);
            let _ = decoder.finish(&mut events);
            let meta = path.with_extension("meta.json");
            let configured = std::fs::read_to_string(meta)
                .ok()
                .and_then(|m| serde_json::from_str::<Value>(&m).ok())
                .and_then(|m| m["jsonpath"].as_str().map(str::to_owned))
                .and_then(|p| CompiledPath::compile(&p).ok());
            let mut sets = path_sets();
            sets.push((configured, None));
            for (content, reasoning) in &sets {
                same_with_and_without_fast_path(
                    content.as_ref(),
                    reasoning.as_ref(),
                    &events,
                    decoder.response_type(),
                    &format!("{name} with {:?}", content.as_ref().map(|p| &p.source)),
                );
            }
            bodies += 1;
        }
        assert!(bodies >= 50, "{bodies} bodies");
    }
}
