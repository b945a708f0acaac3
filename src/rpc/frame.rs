//! LSP base-protocol framing: `Content-Length: N\r\n\r\n` + N bytes.
//!
//! A tokio-util codec. Header names are case-insensitive and headers other
//! than `Content-Length` (such as `Content-Type`) are accepted and ignored.
//! A frame larger than the limit is reported as [`Frame::Oversized`] and its
//! body is then skipped as it arrives, never buffered whole. After a header
//! that cannot be read ([`Frame::BadHeader`]) the length of what follows is
//! unknown: the reader skips to the next `Content-Length:` and goes on from
//! there, so one bad frame costs one error, not the rest of the stream.

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
    /// Skipping the body of an oversized frame.
    Skip(usize),
    /// Skipping the rest of an oversized header block.
    SkipHeader,
    /// After a bad header: skipping to the next `Content-Length:`.
    Resync,
}

/// Largest header block accepted.
const MAX_HEADER_BYTES: usize = 8 * 1024;
/// Where the next frame starts after a bad header (compared ignoring case).
const RESYNC_AT: &[u8] = b"content-length:";
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
                    let Some((at, end)) = header_end(buf) else {
                        if buf.len() >= MAX_HEADER_BYTES + 4 {
                            // Too long whatever comes next: skip to its end,
                            // then to the next frame.
                            self.state = State::SkipHeader;
                            return Ok(Some(oversized_header()));
                        }
                        return Ok(None);
                    };
                    if at > MAX_HEADER_BYTES {
                        buf.advance(end);
                        self.state = State::Resync;
                        return Ok(Some(oversized_header()));
                    }
                    let block = buf.split_to(at);
                    buf.advance(end - at);
                    match Self::parse_header(&block) {
                        Err(detail) => {
                            // A body may follow, of a length nobody knows.
                            self.state = State::Resync;
                            return Ok(Some(Frame::BadHeader { detail }));
                        }
                        Ok(size) if size > self.max_frame => {
                            self.state = State::Skip(size);
                            return Ok(Some(Frame::Oversized { size }));
                        }
                        Ok(size) => self.state = State::Body(size),
                    }
                }
                State::SkipHeader => match header_end(buf) {
                    Some((_, end)) => {
                        buf.advance(end);
                        self.state = State::Resync;
                    }
                    None => {
                        // Keep what could be the start of the blank line.
                        let keep = buf.len().min(3);
                        buf.advance(buf.len() - keep);
                        return Ok(None);
                    }
                },
                State::Resync => match find_ignoring_case(buf, RESYNC_AT) {
                    Some(at) => {
                        buf.advance(at);
                        self.state = State::Header;
                    }
                    None => {
                        // Keep what could be the start of the next header.
                        let keep = buf.len().min(RESYNC_AT.len() - 1);
                        buf.advance(buf.len() - keep);
                        return Ok(None);
                    }
                },
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
        dst.reserve(HEADER_MAX + body.len());
        let mut header = [0; HEADER_MAX];
        let n = write_header(body.len(), &mut header);
        dst.put_slice(&header[..n]);
        dst.put_slice(&body);
        Ok(())
    }
}

/// The longest `Content-Length: N\r\n\r\n` (N up to 20 digits).
const HEADER_MAX: usize = 16 + 20 + 4;

/// Writes the header of a `len`-byte body into `out`; returns its length.
/// No formatting machinery and no allocation: it runs once per chunk.
fn write_header(len: usize, out: &mut [u8; HEADER_MAX]) -> usize {
    const NAME: &[u8] = b"Content-Length: ";
    out[..NAME.len()].copy_from_slice(NAME);
    let mut digits = itoa::Buffer::new();
    let digits = digits.format(len).as_bytes();
    let end = NAME.len() + digits.len();
    out[NAME.len()..end].copy_from_slice(digits);
    out[end..end + 4].copy_from_slice(b"\r\n\r\n");
    end + 4
}

/// Appends one whole frame (header and body) to `dst`: how the writer
/// gathers the frames queued at one moment into a single write.
pub fn encode_into(body: &[u8], dst: &mut Vec<u8>) {
    let mut header = [0; HEADER_MAX];
    let n = write_header(body.len(), &mut header);
    dst.reserve(n + body.len());
    dst.extend_from_slice(&header[..n]);
    dst.extend_from_slice(body);
}

/// Where the header block ends: the first blank line (LF LF or LF CR LF).
/// Returns the block's length and where the body starts.
fn header_end(buf: &[u8]) -> Option<(usize, usize)> {
    let mut from = 0;
    while let Some(offset) = buf[from..].iter().position(|&b| b == b'\n') {
        let lf = from + offset;
        match (buf.get(lf + 1), buf.get(lf + 2)) {
            (Some(b'\n'), _) => return Some((lf, lf + 2)),
            (Some(b'\r'), Some(b'\n')) => return Some((lf, lf + 3)),
            (Some(b'\r'), None) | (None, _) => return None,
            _ => from = lf + 1,
        }
    }
    None
}

/// Where `needle` (lower-case ASCII) first occurs in `haystack`, ignoring case.
fn find_ignoring_case(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window.eq_ignore_ascii_case(needle))
}

fn oversized_header() -> Frame {
    Frame::BadHeader {
        detail: format!("the frame header is longer than {MAX_HEADER_BYTES} bytes"),
    }
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
    fn after_a_bad_header_reading_resumes_at_the_next_content_length() {
        // The bad frame's body (with a colon and a blank line in it) is
        // skipped, whatever follows it directly.
        let input = b"Content-Length: x\r\n\r\n{\"a\": \"b\n\n\"}Content-Length: 2\r\n\r\n{}\
            CONTENT-LENGTH: 3\r\n\r\n[1]";
        let out = frames_both_ways(input, 100);
        assert!(matches!(out[0], Frame::BadHeader { .. }), "{:?}", out[0]);
        assert_eq!(
            out[1..],
            [
                Frame::Message(Bytes::from_static(b"{}")),
                Frame::Message(Bytes::from_static(b"[1]"))
            ]
        );
        // An oversized header's body is skipped the same way.
        let mut input = b"X-Long: ".to_vec();
        input.extend(std::iter::repeat_n(b'a', MAX_HEADER_BYTES + 10));
        input.extend_from_slice(b"\r\nContent-Length: 5\r\n\r\nhello\nContent-Length: 2\r\n\r\n{}");
        let out = frames_both_ways(&input, 100);
        assert!(matches!(out[0], Frame::BadHeader { .. }), "{:?}", out[0]);
        assert_eq!(out[1..], [Frame::Message(Bytes::from_static(b"{}"))]);
    }

    /// Decodes `input` whole and byte by byte; both must agree.
    fn frames_both_ways(input: &[u8], max: usize) -> Vec<Frame> {
        let mut codec = FrameCodec::new(max);
        let mut buf = BytesMut::from(input);
        let mut whole = Vec::new();
        while let Some(f) = codec.decode(&mut buf).unwrap() {
            whole.push(f);
        }
        assert_eq!(whole, frames(input, max), "whole and byte-by-byte differ");
        whole
    }

    #[test]
    fn the_first_blank_line_ends_the_header_whatever_its_line_ends() {
        // Found by fuzzing: a LF-only header followed by a CRLF frame.
        let input = b"content-length: 2\n\n{}Content-Length: 3\r\n\r\n[1]";
        assert_eq!(
            frames_both_ways(input, 100),
            vec![
                Frame::Message(Bytes::from_static(b"{}")),
                Frame::Message(Bytes::from_static(b"[1]"))
            ]
        );
    }

    #[test]
    fn an_oversized_header_is_skipped_the_same_way_whole_or_split() {
        let mut input = b"X-Long: ".to_vec();
        input.extend(std::iter::repeat_n(b'a', MAX_HEADER_BYTES + 10));
        input.extend_from_slice(b"\r\n\r\nContent-Length: 2\r\n\r\n{}");
        let out = frames_both_ways(&input, 100);
        assert!(matches!(out[0], Frame::BadHeader { .. }), "{:?}", out[0]);
        assert_eq!(out[1..], [Frame::Message(Bytes::from_static(b"{}"))]);
        // A header just under the limit is fine.
        let mut input = b"X-Long: ".to_vec();
        input.extend(std::iter::repeat_n(b'a', MAX_HEADER_BYTES - 40));
        input.extend_from_slice(b"\r\nContent-Length: 2\r\n\r\n{}");
        assert_eq!(
            frames_both_ways(&input, 100),
            vec![Frame::Message(Bytes::from_static(b"{}"))]
        );
    }

    #[test]
    fn encodes() {
        let mut dst = BytesMut::new();
        FrameCodec::default()
            .encode(Bytes::from_static(b"{}"), &mut dst)
            .unwrap();
        assert_eq!(&dst[..], b"Content-Length: 2\r\n\r\n{}");
        let mut out = Vec::new();
        for len in [0, 9, 10, 115, 1_000_000] {
            out.clear();
            encode_into(&vec![b'x'; len], &mut out);
            let header = format!("Content-Length: {len}\r\n\r\n");
            assert_eq!(&out[..header.len()], header.as_bytes());
            assert_eq!(out.len(), header.len() + len);
        }
    }
}
