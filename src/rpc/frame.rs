//! LSP base-protocol framing: `Content-Length: N\r\n\r\n` + N bytes.
//!
//! A tokio-util codec. Header names are case-insensitive and headers other
//! than `Content-Length` (such as `Content-Type`) are accepted and ignored.
//! A frame larger than the limit is reported as [`Frame::Oversized`] and its
//! body is then skipped as it arrives, never buffered whole.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

/// What the reader produces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A complete message body.
    Message(Bytes),
    /// A frame over the size limit; its body is being skipped.
    Oversized { size: usize },
    /// A header block without a valid `Content-Length`.
    BadHeader { detail: String },
}

/// Reads and writes frames.
#[derive(Debug)]
pub struct FrameCodec {
    max_frame: usize,
    state: State,
}

#[derive(Debug, Clone, Copy)]
enum State {
    Header,
    Body(usize),
    Skip(usize),
}

/// Largest header block accepted.
const MAX_HEADER_BYTES: usize = 8 * 1024;
/// Default frame size limit.
pub const DEFAULT_MAX_FRAME: usize = 64 << 20;

impl FrameCodec {
    pub fn new(max_frame: usize) -> Self {
        FrameCodec {
            max_frame,
            state: State::Header,
        }
    }

    fn parse_header(block: &[u8]) -> Result<usize, String> {
        let text =
            std::str::from_utf8(block).map_err(|_| "the frame header is not ASCII".to_owned())?;
        let mut length = None;
        for line in text
            .split("\r\n")
            .flat_map(|l| l.split('\n'))
            .filter(|l| !l.trim().is_empty())
        {
            let Some((name, value)) = line.split_once(':') else {
                return Err(format!("malformed header line `{}`", line.trim()));
            };
            if name.trim().eq_ignore_ascii_case("content-length") {
                let value = value.trim();
                length = Some(
                    value
                        .parse::<usize>()
                        .map_err(|_| format!("invalid Content-Length `{value}`"))?,
                );
            }
        }
        length.ok_or_else(|| "the frame has no Content-Length header".to_owned())
    }
}

impl Default for FrameCodec {
    fn default() -> Self {
        FrameCodec::new(DEFAULT_MAX_FRAME)
    }
}

impl Decoder for FrameCodec {
    type Item = Frame;
    type Error = std::io::Error;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, std::io::Error> {
        loop {
            match self.state {
                State::Header => {
                    // Blank lines between frames are tolerated.
                    let blank = buf
                        .iter()
                        .take_while(|b| matches!(b, b'\r' | b'\n'))
                        .count();
                    buf.advance(blank);
                    let end = find(buf, b"\r\n\r\n")
                        .map(|i| (i, 4))
                        .or_else(|| find(buf, b"\n\n").map(|i| (i, 2)));
                    let Some((at, terminator)) = end else {
                        if buf.len() > MAX_HEADER_BYTES {
                            buf.clear();
                            return Ok(Some(Frame::BadHeader {
                                detail: "no end of frame header within 8 KiB".to_owned(),
                            }));
                        }
                        return Ok(None);
                    };
                    let block = buf.split_to(at);
                    buf.advance(terminator);
                    match Self::parse_header(&block) {
                        Err(detail) => return Ok(Some(Frame::BadHeader { detail })),
                        Ok(size) if size > self.max_frame => {
                            self.state = State::Skip(size);
                            return Ok(Some(Frame::Oversized { size }));
                        }
                        Ok(size) => self.state = State::Body(size),
                    }
                }
                State::Body(size) => {
                    if buf.len() < size {
                        buf.reserve(size - buf.len());
                        return Ok(None);
                    }
                    self.state = State::Header;
                    return Ok(Some(Frame::Message(buf.split_to(size).freeze())));
                }
                State::Skip(remaining) => {
                    let n = remaining.min(buf.len());
                    buf.advance(n);
                    if remaining == n {
                        self.state = State::Header;
                    } else {
                        self.state = State::Skip(remaining - n);
                        return Ok(None);
                    }
                }
            }
        }
    }
}

impl Encoder<Bytes> for FrameCodec {
    type Error = std::io::Error;

    fn encode(&mut self, body: Bytes, dst: &mut BytesMut) -> Result<(), std::io::Error> {
        let header = format!("Content-Length: {}\r\n\r\n", body.len());
        dst.reserve(header.len() + body.len());
        dst.put_slice(header.as_bytes());
        dst.put_slice(&body);
        Ok(())
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(input: &[u8], max: usize) -> Vec<Frame> {
        let mut codec = FrameCodec::new(max);
        let mut out = Vec::new();
        // Byte by byte: the worst split.
        let mut buf = BytesMut::new();
        for b in input {
            buf.put_u8(*b);
            while let Some(f) = codec.decode(&mut buf).unwrap() {
                out.push(f);
            }
        }
        out
    }

    #[test]
    fn reads_frames_with_extra_headers() {
        let input = b"Content-Length: 2\r\nContent-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n{}content-length:3\r\n\r\n[1]";
        assert_eq!(
            frames(input, 100),
            vec![
                Frame::Message(Bytes::from_static(b"{}")),
                Frame::Message(Bytes::from_static(b"[1]"))
            ]
        );
    }

    #[test]
    fn oversized_frame_is_skipped() {
        let input = b"Content-Length: 10\r\n\r\n0123456789Content-Length: 2\r\n\r\n{}";
        assert_eq!(
            frames(input, 5),
            vec![
                Frame::Oversized { size: 10 },
                Frame::Message(Bytes::from_static(b"{}"))
            ]
        );
    }

    #[test]
    fn bad_header_is_reported_and_reading_goes_on() {
        let input = b"Content-Lenght: 2\r\n\r\nContent-Length: 2\r\n\r\n{}";
        let out = frames(input, 100);
        assert!(matches!(out[0], Frame::BadHeader { .. }));
        assert_eq!(out[1], Frame::Message(Bytes::from_static(b"{}")));
    }

    #[test]
    fn encodes() {
        let mut dst = BytesMut::new();
        FrameCodec::default()
            .encode(Bytes::from_static(b"{}"), &mut dst)
            .unwrap();
        assert_eq!(&dst[..], b"Content-Length: 2\r\n\r\n{}");
    }
}
