//! Bytes to events: the response body of an LLM server, read as SSE, NDJSON or
//! JSON.
//!
//! [`BodyDecoder`] is fed the body read by read and hands out [`Event`]s as
//! soon as they are complete. What is read is decided by the body itself,
//! because servers mislabel bodies (AutoDev's most reported failure): its
//! first bytes are looked at once, and a body that starts with `{` or `[` is
//! read as JSON documents ([`json_values`]: one answer, or a stream of them),
//! one that starts with an SSE field (`data:`, `event:`, `id:`, `retry:`, a
//! `:` comment) as SSE. Only a body that shows neither is read as the type
//! expected from the response's `Content-Type` and the settings
//! ([`ResponseType::choose`]). An explicit NDJSON type keeps its line reader.
//!
//! The end of the body is checked too: an event completed only by the end of
//! the body (no blank line, no newline) whose data is cut-off JSON is
//! [`Event::Truncated`], so an answer whose connection ended mid-event is
//! never taken for a finished one.

pub mod json_values;
pub mod ndjson;
pub mod sse;

use bytes::BytesMut;
use serde::Serialize;
use serde::de::IgnoredAny;
use tokio_util::codec::Decoder;

use self::json_values::JsonValues;
use self::ndjson::NdjsonDecoder;
use self::sse::{SseDecoder, SseItem};

/// The three body formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ResponseType {
    /// `text/event-stream`.
    Sse,
    /// One JSON document.
    Json,
    /// One JSON document a line.
    Ndjson,
}

/// One unit of the body, ready for extraction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// An SSE event (with its type), an NDJSON line, or a JSON document
    /// (both with type `message`).
    Data { event_type: String, data: String },
    /// Text outside the SSE grammar (see [`sse`]).
    Stray(String),
    /// The last event, cut off by the end of the body: it had no terminator
    /// and its data is JSON that stops before its end. Holds that data.
    Truncated(String),
}

/// Why the body could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// One line or event was larger than the limit.
    #[error("one event is larger than the limit of {limit} bytes")]
    TooLarge { limit: usize },
    /// The whole body was larger than the limit.
    #[error("the response body is larger than the limit of {limit} bytes")]
    BodyTooLarge { limit: usize },
    /// Reading failed (only when a decoder is driven by a reader).
    #[error("read error: {0}")]
    Io(String),
}

/// Incremental decoder for one response body.
#[derive(Debug)]
pub struct BodyDecoder {
    format: Format,
    buf: BytesMut,
    max_event_bytes: usize,
    max_body_bytes: usize,
    total: usize,
    head: Vec<u8>,
}

#[derive(Debug)]
enum Format {
    /// Nothing but whitespace yet; holds the type expected.
    Undecided(ResponseType),
    Sse(SseDecoder),
    Ndjson(NdjsonDecoder),
    /// JSON documents, one or several.
    Json(JsonValues),
    /// Neither JSON nor SSE, expected as JSON: the whole body is one event.
    Whole,
}

impl From<std::io::Error> for DecodeError {
    fn from(error: std::io::Error) -> Self {
        DecodeError::Io(error.to_string())
    }
}

/// How many leading body bytes are kept for error samples.
const HEAD_BYTES: usize = 1024;
/// How an SSE body can begin (after blank lines), besides a `:` comment.
const SSE_FIELDS: &[&[u8]] = &[b"data:", b"data ", b"event:", b"id:", b"retry:"];
const BOM: &[u8] = b"\xEF\xBB\xBF";

impl ResponseType {
    /// The lower-case name used in results and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            ResponseType::Sse => "sse",
            ResponseType::Json => "json",
            ResponseType::Ndjson => "ndjson",
        }
    }

    /// The type a `Content-Type` header value announces, if it announces one.
    pub fn from_content_type(content_type: &str) -> Option<ResponseType> {
        let essence = content_type.split(';').next()?.trim().to_ascii_lowercase();
        match essence.as_str() {
            "text/event-stream" => Some(ResponseType::Sse),
            "application/x-ndjson"
            | "application/ndjson"
            | "application/jsonl"
            | "application/x-jsonlines"
            | "application/jsonlines"
            | "application/json-seq" => Some(ResponseType::Ndjson),
            "application/json" | "text/json" => Some(ResponseType::Json),
            other if other.ends_with("+json") => Some(ResponseType::Json),
            _ => None,
        }
    }

    /// What to expect before the body shows what it is: the server's announced
    /// type when it names one, else the configured one. Returns the choice and
    /// whether it overrode the setting.
    ///
    /// A JSON document is also valid one-line NDJSON, so `application/json`
    /// does not override a configured NDJSON stream.
    pub fn choose(configured: ResponseType, content_type: Option<&str>) -> (ResponseType, bool) {
        match content_type.and_then(ResponseType::from_content_type) {
            Some(ResponseType::Json) if configured == ResponseType::Ndjson => (configured, false),
            Some(announced) => (announced, announced != configured),
            None => (configured, false),
        }
    }
}

impl BodyDecoder {
    /// A decoder for a body expected to be `expected`, with the given size limits.
    pub fn new(expected: ResponseType, max_event_bytes: usize, max_body_bytes: usize) -> Self {
        BodyDecoder {
            format: Format::Undecided(expected),
            buf: BytesMut::new(),
            max_event_bytes,
            max_body_bytes,
            total: 0,
            head: Vec::new(),
        }
    }

    /// The format being read: the expected one until the body shows what it is.
    pub fn response_type(&self) -> ResponseType {
        match &self.format {
            Format::Undecided(expected) => *expected,
            Format::Sse(_) => ResponseType::Sse,
            Format::Ndjson(_) => ResponseType::Ndjson,
            Format::Json(values) if values.values() > 1 => ResponseType::Ndjson,
            Format::Json(_) | Format::Whole => ResponseType::Json,
        }
    }

    /// The first bytes of the body, for error samples.
    pub fn head(&self) -> &[u8] {
        &self.head
    }

    /// Total body bytes fed so far.
    pub fn bytes_read(&self) -> usize {
        self.total
    }

    /// Feeds one read of the body; complete events are appended to `out`.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<Event>) -> Result<(), DecodeError> {
        self.total += bytes.len();
        if self.total > self.max_body_bytes {
            return Err(DecodeError::BodyTooLarge {
                limit: self.max_body_bytes,
            });
        }
        if self.head.len() < HEAD_BYTES {
            let take = (HEAD_BYTES - self.head.len()).min(bytes.len());
            self.head.extend_from_slice(&bytes[..take]);
        }
        self.buf.extend_from_slice(bytes);
        self.decide(false);
        self.drain(out, false)
    }

    /// Ends the body: whatever is pending is decoded and appended to `out`.
    pub fn finish(&mut self, out: &mut Vec<Event>) -> Result<(), DecodeError> {
        self.decide(true);
        self.drain(out, false)?;
        // What is left was completed only by the end of the body.
        let from = out.len();
        self.drain(out, true)?;
        for event in &mut out[from..] {
            if let Event::Data { data, .. } = event
                && is_cut_json(data)
            {
                *event = Event::Truncated(std::mem::take(data));
            }
        }
        Ok(())
    }

    /// Picks the format from the first bytes, once there are enough of them.
    fn decide(&mut self, eof: bool) {
        let Format::Undecided(expected) = self.format else {
            return;
        };
        let body = self.buf.strip_prefix(BOM).unwrap_or(&self.buf);
        let start = body.iter().position(|b| !b.is_ascii_whitespace());
        let shown = match start {
            None if !eof => return,
            None => expected,
            Some(i) => match sniff(&body[i..], eof) {
                Sniff::NeedMore => return,
                Sniff::Json if expected == ResponseType::Ndjson => ResponseType::Ndjson,
                Sniff::Json => ResponseType::Json,
                Sniff::Sse => ResponseType::Sse,
                Sniff::Neither if expected == ResponseType::Json => {
                    self.format = Format::Whole;
                    return;
                }
                Sniff::Neither => expected,
            },
        };
        if shown != expected {
            tracing::warn!(
                expected = expected.as_str(),
                reading = shown.as_str(),
                "the body is not what its Content-Type or customEngineResponseType says; reading what it is"
            );
        }
        self.format = match shown {
            ResponseType::Sse => Format::Sse(SseDecoder::new(self.max_event_bytes)),
            ResponseType::Ndjson => Format::Ndjson(NdjsonDecoder::new(self.max_event_bytes)),
            ResponseType::Json => Format::Json(JsonValues::new()),
        };
    }

    fn drain(&mut self, out: &mut Vec<Event>, eof: bool) -> Result<(), DecodeError> {
        match &mut self.format {
            Format::Undecided(_) => {}
            Format::Sse(decoder) => {
                while let Some(item) = next(decoder, &mut self.buf, eof)? {
                    out.push(match item {
                        SseItem::Event(e) => Event::Data {
                            event_type: e.event,
                            data: e.data,
                        },
                        SseItem::Stray(text) => Event::Stray(text),
                    });
                }
            }
            Format::Ndjson(decoder) => {
                while let Some(line) = next(decoder, &mut self.buf, eof)? {
                    out.push(message(line));
                }
            }
            Format::Json(decoder) => {
                while let Some(doc) = next(decoder, &mut self.buf, eof)? {
                    out.push(message(doc));
                }
            }
            Format::Whole => {
                if eof && !self.buf.is_empty() {
                    let body = self.buf.split();
                    out.push(message(String::from_utf8_lossy(&body).into_owned()));
                }
            }
        }
        Ok(())
    }
}

/// What the first bytes of a body say it is.
enum Sniff {
    Json,
    Sse,
    Neither,
    /// Too few bytes to tell.
    NeedMore,
}

/// `body` starts at its first non-blank byte.
fn sniff(body: &[u8], eof: bool) -> Sniff {
    match body[0] {
        b'{' | b'[' => return Sniff::Json,
        b':' => return Sniff::Sse,
        _ => {}
    }
    if SSE_FIELDS.iter().any(|field| body.starts_with(field)) {
        return Sniff::Sse;
    }
    let could_still_be = SSE_FIELDS
        .iter()
        .any(|field| body.len() < field.len() && field.starts_with(body));
    if could_still_be && !eof {
        Sniff::NeedMore
    } else {
        Sniff::Neither
    }
}

/// Data that begins as JSON and stops before its end.
fn is_cut_json(data: &str) -> bool {
    let data = data.trim();
    (data.starts_with('{') || data.starts_with('['))
        && serde_json::from_str::<IgnoredAny>(data).is_err_and(|e| e.is_eof())
}

fn next<D: Decoder<Error = DecodeError>>(
    decoder: &mut D,
    buf: &mut BytesMut,
    eof: bool,
) -> Result<Option<D::Item>, DecodeError> {
    if eof {
        decoder.decode_eof(buf)
    } else {
        decoder.decode(buf)
    }
}

fn message(data: String) -> Event {
    Event::Data {
        event_type: "message".to_owned(),
        data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(rt: ResponseType, body: &str) -> (ResponseType, Vec<Event>) {
        let mut d = BodyDecoder::new(rt, 1 << 20, 1 << 20);
        let mut out = Vec::new();
        d.feed(body.as_bytes(), &mut out).unwrap();
        d.finish(&mut out).unwrap();
        (d.response_type(), out)
    }

    #[test]
    fn content_type_names() {
        assert_eq!(
            ResponseType::from_content_type("text/event-stream; charset=utf-8"),
            Some(ResponseType::Sse)
        );
        assert_eq!(
            ResponseType::from_content_type("Application/JSON"),
            Some(ResponseType::Json)
        );
        assert_eq!(
            ResponseType::from_content_type("application/problem+json"),
            Some(ResponseType::Json)
        );
        assert_eq!(
            ResponseType::from_content_type("application/x-ndjson"),
            Some(ResponseType::Ndjson)
        );
        assert_eq!(ResponseType::from_content_type("text/plain"), None);
        assert_eq!(
            ResponseType::from_content_type("application/octet-stream"),
            None
        );
    }

    #[test]
    fn choose_prefers_what_the_server_announced() {
        use ResponseType::*;
        assert_eq!(
            ResponseType::choose(Sse, Some("application/json")),
            (Json, true)
        );
        assert_eq!(
            ResponseType::choose(Json, Some("text/event-stream")),
            (Sse, true)
        );
        assert_eq!(
            ResponseType::choose(Ndjson, Some("application/json")),
            (Ndjson, false)
        );
        assert_eq!(ResponseType::choose(Sse, Some("text/plain")), (Sse, false));
        assert_eq!(ResponseType::choose(Json, None), (Json, false));
    }

    #[test]
    fn json_body_is_one_event() {
        let (rt, events) = decode(ResponseType::Json, "{\"a\":\n 1}\n");
        assert_eq!(rt, ResponseType::Json);
        assert_eq!(events, vec![message("{\"a\":\n 1}".into())]);
    }

    #[test]
    fn mislabelled_json_body_is_sniffed() {
        let (rt, events) = decode(ResponseType::Json, "data: {\"a\":1}\n\ndata: [DONE]\n\n");
        assert_eq!(rt, ResponseType::Sse);
        assert_eq!(events.len(), 2);
        let (rt, events) = decode(ResponseType::Json, "{\"a\":1}\n{\"a\":2}\n");
        assert_eq!(rt, ResponseType::Ndjson);
        assert_eq!(events.len(), 2);
        let (rt, events) = decode(ResponseType::Json, "plain words");
        assert_eq!(rt, ResponseType::Json);
        assert_eq!(events, vec![message("plain words".into())]);
    }

    #[test]
    fn mislabelled_sse_body_is_sniffed() {
        let (rt, events) = decode(ResponseType::Sse, " {\"choices\": []}\n");
        assert_eq!(rt, ResponseType::Json);
        assert_eq!(events, vec![message("{\"choices\": []}".into())]);
        let (rt, events) = decode(ResponseType::Sse, "{\"a\":1}\n{\"a\":2}\n");
        assert_eq!(rt, ResponseType::Ndjson);
        assert_eq!(events.len(), 2);
        // A stream of JSON documents streams: each is out before the body ends.
        let mut d = BodyDecoder::new(ResponseType::Json, 1 << 20, 1 << 20);
        let mut out = Vec::new();
        d.feed(b"\n{\"a\":1}\n{\"a\"", &mut out).unwrap();
        assert_eq!(out, vec![message("{\"a\":1}".into())]);
    }

    #[test]
    fn the_format_waits_for_enough_bytes() {
        let mut d = BodyDecoder::new(ResponseType::Json, 1 << 20, 1 << 20);
        let mut out = Vec::new();
        d.feed(b"\r\nda", &mut out).unwrap();
        assert_eq!(d.response_type(), ResponseType::Json, "not decided yet");
        d.feed(b"ta: {\"a\":1}\n\n", &mut out).unwrap();
        assert_eq!(d.response_type(), ResponseType::Sse);
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn a_last_event_cut_inside_its_json_is_truncated() {
        let (_, events) = decode(ResponseType::Sse, "data: {\"a\":1}\n\ndata: {\"a\":");
        assert_eq!(events[1], Event::Truncated("{\"a\":".into()));
        // Complete, only without its blank line: dispatched as usual.
        let (_, events) = decode(ResponseType::Sse, "data: {\"a\":1}");
        assert!(matches!(events[0], Event::Data { .. }));
        let (_, events) = decode(ResponseType::Sse, "data: plain text");
        assert!(matches!(events[0], Event::Data { .. }));
        let (_, events) = decode(ResponseType::Ndjson, "{\"a\":1}\n{\"a\":[1,");
        assert_eq!(events[1], Event::Truncated("{\"a\":[1,".into()));
        let (_, events) = decode(ResponseType::Json, "{\"choices\": [{\"message\"");
        assert!(matches!(events[0], Event::Truncated(_)));
    }

    #[test]
    fn body_limit() {
        let mut d = BodyDecoder::new(ResponseType::Json, 10, 10);
        let mut out = Vec::new();
        assert_eq!(
            d.feed(b"01234567890", &mut out),
            Err(DecodeError::BodyTooLarge { limit: 10 })
        );
    }
}
