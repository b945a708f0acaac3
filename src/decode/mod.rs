//! Bytes to events: the response body of an LLM server, read as SSE, NDJSON or
//! one JSON document.
//!
//! [`BodyDecoder`] is fed the body read by read and hands out [`Event`]s as
//! soon as they are complete. Which format is read is decided once, from the
//! configured type and the response's `Content-Type` ([`ResponseType::choose`]).
//! A JSON body is only complete at the end; if it turns out not to be JSON it
//! is sniffed again as SSE or NDJSON, because servers do mislabel bodies.

pub mod ndjson;
pub mod sse;

use bytes::BytesMut;
use serde::Serialize;
use serde::de::IgnoredAny;
use tokio_util::codec::Decoder;

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
    /// An SSE event (with its type), an NDJSON line, or the whole JSON body
    /// (both with type `message`).
    Data { event_type: String, data: String },
    /// Text outside the SSE grammar (see [`sse`]).
    Stray(String),
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

impl From<std::io::Error> for DecodeError {
    fn from(error: std::io::Error) -> Self {
        DecodeError::Io(error.to_string())
    }
}

/// How many leading body bytes are kept for error samples.
const HEAD_BYTES: usize = 1024;

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

    /// What to read: the server's announced type when it names one, else the
    /// configured one. Returns the choice and whether it overrode the setting.
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
    Sse(SseDecoder),
    Ndjson(NdjsonDecoder),
    Json,
}

impl BodyDecoder {
    /// A decoder for `response_type` with the given size limits.
    pub fn new(response_type: ResponseType, max_event_bytes: usize, max_body_bytes: usize) -> Self {
        let format = Self::format_for(response_type, max_event_bytes);
        BodyDecoder {
            format,
            buf: BytesMut::new(),
            max_event_bytes,
            max_body_bytes,
            total: 0,
            head: Vec::new(),
        }
    }

    fn format_for(response_type: ResponseType, max_event_bytes: usize) -> Format {
        match response_type {
            ResponseType::Sse => Format::Sse(SseDecoder::new(max_event_bytes)),
            ResponseType::Ndjson => Format::Ndjson(NdjsonDecoder::new(max_event_bytes)),
            ResponseType::Json => Format::Json,
        }
    }

    /// The format being read (after any sniffing of a JSON body).
    pub fn response_type(&self) -> ResponseType {
        match self.format {
            Format::Sse(_) => ResponseType::Sse,
            Format::Ndjson(_) => ResponseType::Ndjson,
            Format::Json => ResponseType::Json,
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
        self.drain(out, false)
    }

    /// Ends the body: whatever is pending is decoded and appended to `out`.
    pub fn finish(&mut self, out: &mut Vec<Event>) -> Result<(), DecodeError> {
        if let Format::Json = self.format {
            self.sniff_json_body();
        }
        self.drain(out, true)
    }

    fn drain(&mut self, out: &mut Vec<Event>, eof: bool) -> Result<(), DecodeError> {
        match &mut self.format {
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
            Format::Json => {
                if eof && !self.buf.is_empty() {
                    let body = self.buf.split();
                    out.push(message(String::from_utf8_lossy(&body).into_owned()));
                }
            }
        }
        Ok(())
    }

    /// A whole body read as JSON that is not one JSON document: if it is
    /// really SSE or NDJSON, switch to that format before decoding it.
    fn sniff_json_body(&mut self) {
        let body = &self.buf[..];
        if body.iter().all(u8::is_ascii_whitespace)
            || serde_json::from_slice::<IgnoredAny>(body).is_ok()
        {
            return;
        }
        let text = String::from_utf8_lossy(body);
        let looks_sse = text.lines().any(|line| {
            line.starts_with("data:") || line.starts_with("event:") || line.starts_with(": ")
        });
        let is_ndjson = || {
            let mut lines = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .peekable();
            lines.peek().is_some() && lines.all(|l| serde_json::from_str::<IgnoredAny>(l).is_ok())
        };
        if looks_sse {
            tracing::warn!("the body is not JSON but looks like SSE; reading it as SSE");
            self.format = Self::format_for(ResponseType::Sse, self.max_event_bytes);
        } else if is_ndjson() {
            tracing::warn!(
                "the body is not one JSON document but one per line; reading it as NDJSON"
            );
            self.format = Self::format_for(ResponseType::Ndjson, self.max_event_bytes);
        }
    }
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
        assert_eq!(events, vec![message("{\"a\":\n 1}\n".into())]);
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
    fn body_limit() {
        let mut d = BodyDecoder::new(ResponseType::Json, 10, 10);
        let mut out = Vec::new();
        assert_eq!(
            d.feed(b"01234567890", &mut out),
            Err(DecodeError::BodyTooLarge { limit: 10 })
        );
    }
}
