//! Newline-delimited JSON reader (Ollama's native API and similar).
//!
//! Every non-empty line is one event; a CR before the LF is dropped; the last
//! line is an event even without a final newline. Lines are cut on bytes, so a
//! multi-byte UTF-8 character split across reads is never damaged.

use bytes::{Buf, BytesMut};
use tokio_util::codec::Decoder;

use super::DecodeError;

/// Incremental NDJSON line decoder; use it through [`tokio_util::codec::Decoder`].
#[derive(Debug)]
pub struct NdjsonDecoder {
    max_line_bytes: usize,
    scanned: usize,
}

impl NdjsonDecoder {
    /// A decoder that refuses lines longer than `max_line_bytes`.
    pub fn new(max_line_bytes: usize) -> Self {
        NdjsonDecoder {
            max_line_bytes,
            scanned: 0,
        }
    }

    fn line_text(line: &[u8]) -> Option<String> {
        let text = String::from_utf8_lossy(line);
        let trimmed = text.trim();
        (!trimmed.is_empty()).then(|| trimmed.to_owned())
    }
}

impl Decoder for NdjsonDecoder {
    type Item = String;
    type Error = DecodeError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<String>, DecodeError> {
        loop {
            let start = self.scanned.min(buf.len());
            let Some(offset) = buf[start..].iter().position(|&b| b == b'\n') else {
                self.scanned = buf.len();
                if buf.len() > self.max_line_bytes {
                    return Err(DecodeError::TooLarge {
                        limit: self.max_line_bytes,
                    });
                }
                return Ok(None);
            };
            if start + offset > self.max_line_bytes {
                return Err(DecodeError::TooLarge {
                    limit: self.max_line_bytes,
                });
            }
            let line = buf.split_to(start + offset);
            buf.advance(1);
            self.scanned = 0;
            if let Some(text) = Self::line_text(&line) {
                return Ok(Some(text));
            }
        }
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<String>, DecodeError> {
        if let Some(line) = self.decode(buf)? {
            return Ok(Some(line));
        }
        if buf.len() > self.max_line_bytes {
            return Err(DecodeError::TooLarge {
                limit: self.max_line_bytes,
            });
        }
        let rest = buf.split();
        self.scanned = 0;
        Ok(Self::line_text(&rest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8], cut: usize) -> Vec<String> {
        let mut d = NdjsonDecoder::new(1024);
        let mut buf = BytesMut::from(&input[..cut]);
        let mut out = Vec::new();
        while let Some(l) = d.decode(&mut buf).unwrap() {
            out.push(l);
        }
        buf.extend_from_slice(&input[cut..]);
        while let Some(l) = d.decode_eof(&mut buf).unwrap() {
            out.push(l);
        }
        out
    }

    #[test]
    fn splits_lines_at_any_offset() {
        let input = "{\"a\":\"é\"}\r\n\n  \n{\"b\":\"😊\"}".as_bytes();
        for cut in 0..=input.len() {
            assert_eq!(
                lines(input, cut),
                ["{\"a\":\"é\"}", "{\"b\":\"😊\"}"],
                "cut {cut}"
            );
        }
    }

    #[test]
    fn long_line_is_refused_however_it_arrives() {
        let mut d = NdjsonDecoder::new(4);
        let mut buf = BytesMut::from(&b"123456"[..]);
        assert!(d.decode(&mut buf).is_err());
        // Found by fuzzing: a complete long line in one read was let through.
        let mut d = NdjsonDecoder::new(4);
        let mut buf = BytesMut::from(&b"123456\n{}\n"[..]);
        assert!(d.decode(&mut buf).is_err());
        let mut d = NdjsonDecoder::new(4);
        let mut buf = BytesMut::from(&b"123456"[..]);
        assert!(d.decode_eof(&mut buf).is_err());
    }
}
