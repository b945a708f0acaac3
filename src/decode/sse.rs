//! Incremental Server-Sent Events decoder.
//!
//! Implements the WHATWG HTML "interpreting an event stream" algorithm
//! (<https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation>)
//! on raw bytes, so it is correct for any split of the body into reads:
//! lines are cut on bytes (CR, LF and CRLF, including a CRLF split across two
//! reads) and only whole lines are decoded as UTF-8, so a multi-byte character
//! split across reads is never damaged. Invalid UTF-8 becomes U+FFFD.
//!
//! Two additions, both needed for real LLM servers:
//! - **Dispatch at end of stream.** A last event that is not followed by a
//!   blank line is still dispatched when the body ends (browsers discard it;
//!   many LLM servers omit the final blank line). This is the one deliberate
//!   difference from the specification.
//! - **Stray lines.** Lines whose field name is not `data`, `event`, `id` or
//!   `retry` are ignored by the algorithm, as the spec says, but they are also
//!   collected and handed out as [`SseItem::Stray`] at the next blank line or
//!   at end of stream. Vertex AI appends a bare (unframed) JSON error object to
//!   an SSE body this way, and some servers answer a stream request with plain
//!   JSON; the engine decides what such text means.

use bytes::{Buf, BytesMut};
use tokio_util::codec::Decoder;

use super::DecodeError;

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The event type; `message` when the stream named none.
    pub event: String,
    /// The data buffer, `data` lines joined with `\n`.
    pub data: String,
}

/// What the decoder yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SseItem {
    /// A dispatched event.
    Event(SseEvent),
    /// Lines outside the SSE grammar, joined with `\n` (see the module docs).
    Stray(String),
}

/// Incremental SSE decoder; use it through [`tokio_util::codec::Decoder`].
#[derive(Debug)]
pub struct SseDecoder {
    /// Largest line, data buffer or stray block accepted, in bytes.
    max_event_bytes: usize,
    /// Bytes of the buffer already searched for a line end.
    scanned: usize,
    /// The first bytes have been checked for a byte order mark.
    bom_checked: bool,
    /// The previous line ended with CR: a LF at the start of the next read belongs to it.
    skip_lf: bool,
    /// A blank line handed out stray text first; its own dispatch step is still due.
    redispatch: bool,
    data: String,
    event_type: String,
    stray: String,
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

impl SseDecoder {
    /// A decoder that refuses lines and events larger than `max_event_bytes`.
    pub fn new(max_event_bytes: usize) -> Self {
        SseDecoder {
            max_event_bytes,
            scanned: 0,
            bom_checked: false,
            skip_lf: false,
            redispatch: false,
            data: String::new(),
            event_type: String::new(),
            stray: String::new(),
        }
    }

    /// Strips a leading BOM. Returns false while too few bytes have arrived to tell.
    fn check_bom(&mut self, buf: &mut BytesMut, eof: bool) -> bool {
        if self.bom_checked {
            return true;
        }
        let n = buf.len().min(BOM.len());
        if buf[..n] != BOM[..n] {
            self.bom_checked = true;
            return true;
        }
        if n == BOM.len() {
            buf.advance(BOM.len());
            self.bom_checked = true;
            return true;
        }
        // A prefix of the BOM: wait for more bytes, unless there are none.
        if eof {
            self.bom_checked = true;
        }
        eof
    }

    /// Takes the next complete line off the buffer, without its terminator.
    fn next_line(&mut self, buf: &mut BytesMut) -> Result<Option<BytesMut>, DecodeError> {
        if self.skip_lf && !buf.is_empty() {
            if buf[0] == b'\n' {
                buf.advance(1);
            }
            self.skip_lf = false;
        }
        let start = self.scanned.min(buf.len());
        match buf[start..].iter().position(|&b| b == b'\n' || b == b'\r') {
            Some(offset) => {
                let end = start + offset;
                if end > self.max_event_bytes {
                    return Err(DecodeError::TooLarge {
                        limit: self.max_event_bytes,
                    });
                }
                let line = buf.split_to(end);
                let terminator = buf[0];
                buf.advance(1);
                if terminator == b'\r' {
                    if buf.is_empty() {
                        self.skip_lf = true;
                    } else if buf[0] == b'\n' {
                        buf.advance(1);
                    }
                }
                self.scanned = 0;
                Ok(Some(line))
            }
            None => {
                self.scanned = buf.len();
                if buf.len() > self.max_event_bytes {
                    return Err(DecodeError::TooLarge {
                        limit: self.max_event_bytes,
                    });
                }
                Ok(None)
            }
        }
    }

    /// Processes one line; returns an item when the line dispatches one.
    fn process_line(&mut self, line: &[u8]) -> Result<Option<SseItem>, DecodeError> {
        if line.is_empty() {
            return Ok(self.dispatch());
        }
        if line[0] == b':' {
            return Ok(None);
        }
        let (name, value) = match line.iter().position(|&b| b == b':') {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        match name {
            b"data" => {
                if self.data.is_empty() {
                    // The usual event is one `data` line: one allocation of its size.
                    self.data.reserve_exact(value.len() + 1);
                }
                self.data.push_str(&String::from_utf8_lossy(value));
                self.data.push('\n');
                self.check_size(self.data.len())?;
            }
            b"event" => self.event_type = String::from_utf8_lossy(value).into_owned(),
            // The last event ID and the reconnection time only matter to a
            // client that reconnects; a completion is never resumed.
            b"id" | b"retry" => {}
            _ => {
                if !self.stray.is_empty() {
                    self.stray.push('\n');
                }
                self.stray.push_str(&String::from_utf8_lossy(line));
                self.check_size(self.stray.len())?;
            }
        }
        Ok(None)
    }

    fn check_size(&self, len: usize) -> Result<(), DecodeError> {
        if len > self.max_event_bytes {
            Err(DecodeError::TooLarge {
                limit: self.max_event_bytes,
            })
        } else {
            Ok(())
        }
    }

    /// The blank-line step of the algorithm; stray text goes out first.
    fn dispatch(&mut self) -> Option<SseItem> {
        if !self.stray.is_empty() {
            // Stray text came first, so it goes out first; the dispatch step
            // itself runs on the next call.
            self.redispatch = true;
            return Some(SseItem::Stray(std::mem::take(&mut self.stray)));
        }
        if self.data.is_empty() {
            self.event_type.clear();
            return None;
        }
        let mut data = std::mem::take(&mut self.data);
        data.pop(); // the trailing LF
        let event = match std::mem::take(&mut self.event_type) {
            t if t.is_empty() => "message".to_owned(),
            t => t,
        };
        Some(SseItem::Event(SseEvent { event, data }))
    }
}

impl Decoder for SseDecoder {
    type Item = SseItem;
    type Error = DecodeError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<SseItem>, DecodeError> {
        if std::mem::take(&mut self.redispatch)
            && let Some(item) = self.dispatch()
        {
            return Ok(Some(item));
        }
        if !self.check_bom(buf, false) {
            return Ok(None);
        }
        while let Some(line) = self.next_line(buf)? {
            if let Some(item) = self.process_line(&line)? {
                return Ok(Some(item));
            }
        }
        Ok(None)
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<SseItem>, DecodeError> {
        self.check_bom(buf, true);
        if let Some(item) = self.decode(buf)? {
            return Ok(Some(item));
        }
        if !buf.is_empty() {
            // The last line had no terminator: it is still a line.
            if buf.len() > self.max_event_bytes {
                return Err(DecodeError::TooLarge {
                    limit: self.max_event_bytes,
                });
            }
            let line = buf.split();
            self.scanned = 0;
            if let Some(item) = self.process_line(&line)? {
                return Ok(Some(item));
            }
        }
        // End of stream: dispatch what is pending (the documented difference).
        Ok(self.dispatch())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` in pieces of the given sizes and collects every item.
    fn decode_split(input: &[u8], cuts: &[usize]) -> Vec<SseItem> {
        let mut decoder = SseDecoder::new(1 << 20);
        let mut buf = BytesMut::new();
        let mut items = Vec::new();
        let mut last = 0;
        for &cut in cuts.iter().chain(std::iter::once(&input.len())) {
            buf.extend_from_slice(&input[last..cut]);
            last = cut;
            while let Some(item) = decoder.decode(&mut buf).unwrap() {
                items.push(item);
            }
        }
        while let Some(item) = decoder.decode_eof(&mut buf).unwrap() {
            items.push(item);
        }
        items
    }

    fn decode_all(input: &str) -> Vec<SseItem> {
        decode_split(input.as_bytes(), &[])
    }

    fn event(event: &str, data: &str) -> SseItem {
        SseItem::Event(SseEvent {
            event: event.into(),
            data: data.into(),
        })
    }

    #[test]
    fn basic_events_and_line_endings() {
        for sep in ["\n", "\r", "\r\n"] {
            let body = format!("data: a{sep}{sep}data:b{sep}{sep}");
            assert_eq!(
                decode_all(&body),
                vec![event("message", "a"), event("message", "b")],
                "separator {sep:?}"
            );
        }
    }

    #[test]
    fn multi_line_data_comment_and_fields() {
        let body = ": comment\nevent: delta\nid: 7\nretry: 300\ndata: one\ndata\ndata:  two\n\n";
        let items = decode_all(body);
        assert_eq!(
            items,
            vec![SseItem::Event(SseEvent {
                event: "delta".into(),
                data: "one\n\n two".into(),
            })]
        );
    }

    #[test]
    fn bom_is_stripped_once() {
        let body = b"\xEF\xBB\xBFdata: x\n\n";
        for cut in 0..body.len() {
            assert_eq!(decode_split(body, &[cut]), vec![event("message", "x")]);
        }
        // A second BOM is not special: it is part of the field name.
        let twice = b"\xEF\xBB\xBF\xEF\xBB\xBFdata: x\n\n";
        assert!(matches!(
            decode_split(twice, &[]).as_slice(),
            [SseItem::Stray(_)]
        ));
    }

    #[test]
    fn empty_data_buffer_does_not_dispatch() {
        assert_eq!(
            decode_all("event: ping\n\ndata: z\n\n"),
            vec![event("message", "z")]
        );
        assert_eq!(decode_all("data:\n\n"), vec![event("message", "")]);
    }

    #[test]
    fn unterminated_last_event_is_dispatched() {
        assert_eq!(
            decode_all("data: a\n\ndata: b"),
            vec![event("message", "a"), event("message", "b")]
        );
        assert_eq!(decode_all("data: b\n"), vec![event("message", "b")]);
    }

    #[test]
    fn every_split_gives_the_same_events() {
        let body = "\u{FEFF}data: Olá 😊\r\n\r\n: keep\r\nevent: x\r\ndata: 秋风\r\ndata: 2\r\n\r\ndata: end".as_bytes();
        let whole = decode_split(body, &[]);
        assert_eq!(whole.len(), 3);
        for a in 0..=body.len() {
            assert_eq!(decode_split(body, &[a]), whole, "cut at {a}");
            for b in a..=body.len() {
                assert_eq!(decode_split(body, &[a, b]), whole, "cuts at {a},{b}");
            }
        }
    }

    #[test]
    fn stray_json_tail_is_reported() {
        let body = "data: {\"t\":1}\n\n{\n  \"error\": {\"message\": \"x\"}\n}\n";
        let items = decode_all(body);
        assert_eq!(items[0], event("message", "{\"t\":1}"));
        assert_eq!(
            items[1],
            SseItem::Stray("{\n  \"error\": {\"message\": \"x\"}\n}".into())
        );
    }

    #[test]
    fn stray_text_then_event_in_one_block_keeps_both() {
        let items = decode_all("{\"a\":1}\ndata: b\n\n");
        assert_eq!(
            items,
            vec![SseItem::Stray("{\"a\":1}".into()), event("message", "b")]
        );
    }

    #[test]
    fn stray_text_before_a_cr_blank_line_keeps_events_apart() {
        // Found by fuzzing: the blank line ends in CR at a read boundary.
        let body = b"x\ndata: a\n\rdata: b\n\n";
        let whole = decode_split(body, &[]);
        assert_eq!(
            whole,
            vec![
                SseItem::Stray("x".into()),
                event("message", "a"),
                event("message", "b")
            ]
        );
        for cut in 0..=body.len() {
            assert_eq!(decode_split(body, &[cut]), whole, "cut {cut}");
        }
    }

    #[test]
    fn a_complete_line_over_the_limit_is_refused_however_it_arrives() {
        let body = b"data: 0123456789012345678901234\n\n";
        for cut in [0, 5, body.len()] {
            let mut decoder = SseDecoder::new(16);
            let mut buf = BytesMut::from(&body[..cut]);
            let first = decoder.decode(&mut buf);
            buf.extend_from_slice(&body[cut..]);
            let result = first.and_then(|_| decoder.decode(&mut buf));
            assert!(
                matches!(result, Err(DecodeError::TooLarge { .. })),
                "cut {cut}"
            );
        }
    }

    #[test]
    fn invalid_utf8_becomes_replacement() {
        let items = decode_split(b"data: a\xFFb\n\n", &[]);
        assert_eq!(items, vec![event("message", "a\u{FFFD}b")]);
    }

    #[test]
    fn oversized_line_is_refused_without_a_line_end() {
        let mut decoder = SseDecoder::new(16);
        let mut buf = BytesMut::from(&b"data: 0123456789012345678901234"[..]);
        assert!(matches!(
            decoder.decode(&mut buf),
            Err(DecodeError::TooLarge { limit: 16 })
        ));
    }

    #[test]
    fn oversized_event_across_lines_is_refused() {
        let mut decoder = SseDecoder::new(16);
        let mut buf = BytesMut::from(&b"data: 0123456789\ndata: 0123456789\n"[..]);
        assert!(matches!(
            decoder.decode(&mut buf),
            Err(DecodeError::TooLarge { .. })
        ));
    }
}
