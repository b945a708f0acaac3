//! JSON-RPC (LSP base protocol) frame reader fed in random splits.
//!
//! Checks that reading the input whole, at the chosen cut points and one byte
//! at a time give exactly the same frames and the same end-of-stream result;
//! that the reader never holds more than `max(max_frame, 8 KiB header
//! limit + 4)` bytes while it waits for more (an oversized frame is skipped, not
//! buffered); that no message is over `max_frame` and every `Oversized` is;
//! and that every message read back re-encodes and decodes to itself.
//!
//! Input: see `common/mod.rs`. Option bits (flags >> 3): bits 0-1 choose
//! `max_frame` (4096, 64, 1, 0).
#![no_main]

#[path = "common/mod.rs"]
mod common;

use bytes::BytesMut;
use common::{Input, Run, assert_same, drive, known, tolerated};
use libfuzzer_sys::fuzz_target;
use llm_sidecar::rpc::frame::{Frame, FrameCodec};
use tokio_util::codec::{Decoder, Encoder};

const MAX_FRAME: [usize; 4] = [4096, 64, 1, 0];
/// The codec's header block limit (`MAX_HEADER_BYTES` in src/rpc/frame.rs).
const MAX_HEADER_BYTES: usize = 8 * 1024;
/// The codec searches the whole buffer for the header end on every read, so
/// one-byte reads cost O(n²); beyond this size the chosen cuts must do.
const BYTEWISE_LIMIT: usize = 1024;

/// The BadHeader the codec reports for a header block over its limit (the
/// wording differs between versions of src/rpc/frame.rs).
fn is_header_overflow(frame: &Frame) -> bool {
    matches!(frame, Frame::BadHeader { detail } if detail.contains("8 KiB") || detail.contains("longer than"))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fuzz_target!(|data: &[u8]| {
    let Some(input) = Input::parse(data) else { return };
    let max_frame = MAX_FRAME[usize::from(input.options() & 3)];
    let item_limit = input.body.len() + 1;

    let mut runs: Vec<(&str, Run<Frame>)> = Vec::new();
    for (name, pieces) in input.feedings(BYTEWISE_LIMIT) {
        let run = drive(FrameCodec::new(max_frame), &pieces, true, item_limit);
        // A partial header block (plus up to 4 bytes that may start its
        // blank line), or a partial body of at most `max_frame` bytes.
        let bound = max_frame.max(MAX_HEADER_BYTES + 4);
        assert!(run.max_pending <= bound, "{name}: {} bytes buffered, bound {bound}", run.max_pending);
        for frame in &run.items {
            match frame {
                Frame::Message(body) => assert!(body.len() <= max_frame, "{name}: message of {} bytes over {max_frame}", body.len()),
                Frame::Oversized { size } => assert!(*size > max_frame, "{name}: {size} reported oversized, limit {max_frame}"),
                Frame::BadHeader { detail } => assert!(!detail.is_empty(), "{name}: empty BadHeader detail"),
            }
        }
        runs.push((name, run));
    }

    let lf_and_crlf = contains(input.body, b"\n\n") && contains(input.body, b"\r\n\r\n");
    if !(tolerated(known::FRAME_LF_CRLF) && lf_and_crlf) {
        let overflow_at = runs.iter().filter_map(|(_, r)| r.items.iter().position(is_header_overflow)).min();
        match overflow_at {
            // The 8 KiB header limit is enforced only when no header end is
            // buffered yet, so where it strikes depends on the reads.
            Some(k) if tolerated(known::LIMIT_ON_TAIL) => {
                let (name0, first) = &runs[0];
                for (name, run) in &runs[1..] {
                    let n = k.min(first.items.len()).min(run.items.len());
                    assert_eq!(first.items[..n], run.items[..n], "frames differ between {name0} and {name} before the header overflow");
                }
            }
            _ => assert_same(&runs, |_| false),
        }
    }

    // Round trip: every message read encodes and decodes back to itself.
    let mut codec = FrameCodec::new(max_frame);
    for frame in &runs[0].1.items {
        if let Frame::Message(body) = frame {
            let mut wire = BytesMut::new();
            codec.encode(body.clone(), &mut wire).expect("encoding cannot fail");
            let mut reader = FrameCodec::new(max_frame);
            assert_eq!(reader.decode(&mut wire).expect("no I/O"), Some(frame.clone()), "round trip");
            assert!(wire.is_empty(), "round trip left bytes behind");
        }
    }
});
