//! A body of JSON documents: one (a JSON answer) or several one after another
//! (NDJSON, or documents separated by any whitespace), each handed out the
//! moment its closing bracket arrives.
//!
//! Used when a body turns out to be JSON whatever it was labelled or
//! configured as, so that a stream of documents still streams. It does not
//! parse: it tracks bracket depth outside strings (escapes included), which is
//! enough to find where each top-level object or array ends; the extractor
//! parses the document afterwards. Bytes are only ever split between
//! documents, so a multi-byte character split across reads is never damaged.

use bytes::{Buf, BytesMut};
use tokio_util::codec::Decoder;

use super::DecodeError;

/// Incremental splitter of top-level JSON objects and arrays; use it through
/// [`tokio_util::codec::Decoder`]. Text between documents that is not
/// whitespace (a JSON scalar, or something else entirely) ends the splitting:
/// everything from there to the end of the body is one last item.
#[derive(Debug, Default)]
pub struct JsonValues {
    /// Bytes of the current document already scanned.
    scanned: usize,
    depth: usize,
    in_string: bool,
    escaped: bool,
    /// Documents handed out so far.
    values: usize,
    /// Non-JSON text was met: the rest of the body is taken whole at its end.
    rest_whole: bool,
}

impl JsonValues {
    pub fn new() -> Self {
        JsonValues::default()
    }

    /// Documents handed out so far.
    pub fn values(&self) -> usize {
        self.values
    }

    fn take(&mut self, buf: &mut BytesMut, len: usize) -> String {
        let doc = buf.split_to(len);
        self.scanned = 0;
        self.values += 1;
        String::from_utf8_lossy(&doc).into_owned()
    }
}

impl Decoder for JsonValues {
    type Item = String;
    type Error = DecodeError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<String>, DecodeError> {
        if self.rest_whole {
            return Ok(None);
        }
        if self.scanned == 0 {
            // Between documents: skip whitespace, then expect `{` or `[`.
            let blank = buf.iter().take_while(|b| b.is_ascii_whitespace()).count();
            buf.advance(blank);
            match buf.first() {
                None => return Ok(None),
                Some(b'{' | b'[') => {}
                Some(_) => {
                    self.rest_whole = true;
                    return Ok(None);
                }
            }
        }
        for i in self.scanned..buf.len() {
            let byte = buf[i];
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else if byte == b'\\' {
                    self.escaped = true;
                } else if byte == b'"' {
                    self.in_string = false;
                }
                continue;
            }
            match byte {
                b'"' => self.in_string = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' => {
                    self.depth = self.depth.saturating_sub(1);
                    if self.depth == 0 {
                        return Ok(Some(self.take(buf, i + 1)));
                    }
                }
                _ => {}
            }
        }
        self.scanned = buf.len();
        Ok(None)
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<String>, DecodeError> {
        if let Some(doc) = self.decode(buf)? {
            return Ok(Some(doc));
        }
        if buf.iter().all(u8::is_ascii_whitespace) {
            buf.clear();
            return Ok(None);
        }
        // An unfinished document, or the non-JSON rest of the body.
        let len = buf.len();
        Ok(Some(self.take(buf, len)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(input: &str, cut: usize) -> (Vec<String>, usize) {
        let mut d = JsonValues::new();
        let mut buf = BytesMut::from(&input.as_bytes()[..cut]);
        let mut out = Vec::new();
        while let Some(v) = d.decode(&mut buf).unwrap() {
            out.push(v);
        }
        buf.extend_from_slice(&input.as_bytes()[cut..]);
        while let Some(v) = d.decode_eof(&mut buf).unwrap() {
            out.push(v);
        }
        (out, d.values())
    }

    #[test]
    fn one_pretty_printed_document() {
        let body = "{\n  \"a\": [1, {\"b\": \"}\"}],\n  \"c\": \"\\\"]\"\n}\n";
        for cut in 0..body.len() {
            assert_eq!(split(body, cut).0, vec![body.trim_end()], "cut {cut}");
        }
    }

    #[test]
    fn documents_one_after_another() {
        let body = "{\"n\":1}\n{\"n\":\"é{\"}\r\n [2]{\"n\":3}";
        for cut in 0..body.len() {
            let (docs, n) = split(body, cut);
            assert_eq!(
                docs,
                vec!["{\"n\":1}", "{\"n\":\"é{\"}", "[2]", "{\"n\":3}"],
                "cut {cut}"
            );
            assert_eq!(n, 4);
        }
    }

    #[test]
    fn an_unfinished_document_is_the_last_item() {
        assert_eq!(
            split("{\"a\":1}\n{\"a\":\"tru", 3).0,
            vec!["{\"a\":1}", "{\"a\":\"tru"]
        );
    }

    #[test]
    fn text_after_a_document_is_taken_whole() {
        assert_eq!(
            split("{\"a\":1}\ndata: x\n\n{\"b\":2}", 0).0,
            vec!["{\"a\":1}", "data: x\n\n{\"b\":2}"]
        );
    }
}
