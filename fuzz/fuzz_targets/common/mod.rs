//! Shared by the stream-decoder targets: how an input chooses its read
//! boundaries, how a `Decoder` is driven the way `FramedRead` drives it, and
//! which known library issues a run tolerates.
//!
//! Input layout of `sse_decoder`, `ndjson_reader` and `frame_reader`:
//!
//! ```text
//! byte 0      flags: bits 0-2 = number of cuts (0-7), bits 3-7 = target options
//! 2 * cuts    little-endian u16 cut offsets, each taken modulo (body length + 1)
//! rest        the body
//! ```
//!
//! A seed made from a fixture is therefore `\x00` + the fixture (no cuts).

#![allow(dead_code)]

use std::fmt::Debug;
use std::sync::LazyLock;

use bytes::BytesMut;
use tokio_util::codec::Decoder;

/// The input, taken apart.
pub struct Input<'a> {
    pub flags: u8,
    /// Sorted cut offsets into `body` (may repeat, may be 0 or `body.len()`).
    pub cuts: Vec<usize>,
    pub body: &'a [u8],
}

impl<'a> Input<'a> {
    pub fn parse(data: &'a [u8]) -> Option<Input<'a>> {
        let (&flags, rest) = data.split_first()?;
        let n = usize::from(flags & 0x07).min(rest.len() / 2);
        let (cut_bytes, body) = rest.split_at(2 * n);
        let mut cuts: Vec<usize> = cut_bytes
            .chunks_exact(2)
            .map(|c| usize::from(u16::from_le_bytes([c[0], c[1]])) % (body.len() + 1))
            .collect();
        cuts.sort_unstable();
        Some(Input { flags, cuts, body })
    }

    /// Bits 3-7 of the flags byte.
    pub fn options(&self) -> u8 {
        self.flags >> 3
    }

    /// The ways of reading the body that must all give the same result:
    /// whole, at the chosen cuts (empty reads included), and, for bodies up
    /// to `bytewise_limit` bytes, one byte per read (the worst split).
    pub fn feedings(&self, bytewise_limit: usize) -> Vec<(&'static str, Vec<&'a [u8]>)> {
        let mut out = vec![("whole", vec![self.body])];
        let mut pieces = Vec::with_capacity(self.cuts.len() + 1);
        let mut last = 0;
        for &cut in self.cuts.iter().chain(std::iter::once(&self.body.len())) {
            pieces.push(&self.body[last..cut]);
            last = cut;
        }
        out.push(("cuts", pieces));
        if self.body.len() <= bytewise_limit {
            out.push(("bytewise", self.body.chunks(1).collect()));
        }
        out
    }
}

/// What one feeding produced.
#[derive(Debug)]
pub struct Run<T> {
    pub items: Vec<T>,
    /// The error that ended decoding, as text (decoding stops at the first error).
    pub error: Option<String>,
    /// The largest buffer left behind by a `decode` that asked for more bytes.
    pub max_pending: usize,
    /// The largest single read fed.
    pub max_piece: usize,
}

/// Drives `decoder` over `pieces` as `FramedRead` does: after each read,
/// `decode` until it returns `None`; at the end, `decode_eof` until `None`
/// (when `eof`). Stops at the first error. `item_limit` guards against a
/// decoder that yields forever without consuming input.
pub fn drive<D>(mut decoder: D, pieces: &[&[u8]], eof: bool, item_limit: usize) -> Run<D::Item>
where
    D: Decoder,
    D::Error: Debug,
{
    let mut buf = BytesMut::new();
    let mut run = Run {
        items: Vec::new(),
        error: None,
        max_pending: 0,
        max_piece: pieces.iter().map(|p| p.len()).max().unwrap_or(0),
    };
    for piece in pieces {
        buf.extend_from_slice(piece);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(item)) => {
                    run.items.push(item);
                    assert!(run.items.len() <= item_limit, "decoder yields more items than the input can hold");
                }
                Ok(None) => {
                    run.max_pending = run.max_pending.max(buf.len());
                    break;
                }
                Err(e) => {
                    run.error = Some(format!("{e:?}"));
                    return run;
                }
            }
        }
    }
    if eof {
        loop {
            match decoder.decode_eof(&mut buf) {
                Ok(Some(item)) => {
                    run.items.push(item);
                    assert!(run.items.len() <= item_limit, "decoder yields more items than the input can hold");
                }
                Ok(None) => break,
                Err(e) => {
                    run.error = Some(format!("{e:?}"));
                    break;
                }
            }
        }
    }
    run
}

/// A lower bound on the number of raw bytes `text` was decoded from with
/// `String::from_utf8_lossy`: each invalid sequence (at least one byte) became
/// a 3-byte U+FFFD. Size limits apply to raw bytes, so this is what they bound.
pub fn raw_len(text: &str) -> usize {
    text.len() - 2 * text.matches('\u{FFFD}').count()
}

/// Known library issues a run may be told to tolerate, so that a long run can
/// look for new ones. Set `FUZZ_TOLERATE` to a comma-separated list of these
/// names, or to `all`. By default nothing is tolerated.
pub mod known {
    /// Line / header size limits are only enforced on the unterminated tail
    /// of the buffer: a line (SSE, NDJSON) or header block (frames) longer
    /// than the limit is accepted when its terminator arrives in the same
    /// read, and refused when a read boundary falls inside it. Tolerating it:
    /// a run that ended in a size-limit error only has to produce a prefix of
    /// the items of the other runs, and item sizes may exceed the limit by
    /// one read.
    pub const LIMIT_ON_TAIL: &str = "limit-on-tail";
    /// SSE: a blank line ending in a bare CR at the very end of a read, after
    /// stray (non-SSE) lines, swallows the blank line the decoder puts back
    /// to dispatch the pending event, so the event merges with the next one.
    /// Tolerating it: split results are not compared when the body has both a
    /// CR and a line the SSE grammar does not know.
    pub const SSE_CR_STRAY: &str = "sse-cr-stray";
    /// Frames: the header end is searched as `\r\n\r\n` anywhere in the
    /// buffer before `\n\n`, so an LF-only header followed (in the same read)
    /// by a CRLF header is merged with it and its frame is lost. Tolerating
    /// it: split results are not compared when the body contains both.
    pub const FRAME_LF_CRLF: &str = "frame-lf-crlf";
}

static TOLERATED: LazyLock<Vec<String>> = LazyLock::new(|| {
    std::env::var("FUZZ_TOLERATE")
        .unwrap_or_default()
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
});

/// True when the known issue `name` is to be tolerated in this run.
pub fn tolerated(name: &str) -> bool {
    TOLERATED.iter().any(|t| t == name || t == "all")
}

/// The split-invariance check shared by the targets: every feeding gives the
/// same items and the same error. With `limit-on-tail` tolerated and a
/// size-limit error in play, the runs only have to agree on a common prefix.
pub fn assert_same<T: PartialEq + Debug>(runs: &[(&str, Run<T>)], is_limit_error: impl Fn(&str) -> bool) {
    let (name0, first) = &runs[0];
    for (name, run) in &runs[1..] {
        let limit_involved = [&first.error, &run.error]
            .iter()
            .any(|e| e.as_deref().is_some_and(&is_limit_error));
        if limit_involved && tolerated(known::LIMIT_ON_TAIL) {
            let n = first.items.len().min(run.items.len());
            assert_eq!(first.items[..n], run.items[..n], "{name0} and {name} differ before the limit error");
            // The run without the error (if one has none) must have at least
            // as many items as the one that stopped.
            if first.error.is_none() {
                assert!(first.items.len() >= run.items.len(), "{name0} stopped early without an error");
            }
            if run.error.is_none() {
                assert!(run.items.len() >= first.items.len(), "{name} stopped early without an error");
            }
            continue;
        }
        assert_eq!(first.items, run.items, "items differ between reading {name0} and {name}");
        assert_eq!(first.error, run.error, "errors differ between reading {name0} and {name}");
    }
}
