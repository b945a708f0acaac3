//! NDJSON reader fed in random splits.
//!
//! Checks that reading the body whole, at the input's chosen cut points and
//! one byte at a time give exactly the same lines and the same error; that a
//! reader waiting for more bytes holds at most `max_line_bytes`; that no line
//! is longer than the limit, empty, or has surrounding whitespace; and that
//! `BodyDecoder` reads the body the same way as NDJSON, and as JSON (with its
//! sniffing of mislabelled bodies) without panicking.
//!
//! Input: see `common/mod.rs`. Option bits (flags >> 3): bits 0-1 choose
//! `max_line_bytes`.
#![no_main]

#[path = "common/mod.rs"]
mod common;

use common::{Input, Run, assert_same, drive, known, raw_len, tolerated};
use libfuzzer_sys::fuzz_target;
use llm_sidecar::decode::ndjson::NdjsonDecoder;
use llm_sidecar::decode::{BodyDecoder, Event, ResponseType};
use llm_sidecar::extract::Extractor;

const MAX_LINE_BYTES: [usize; 4] = [1 << 20, 4096, 256, 16];

fn feed_body(response_type: ResponseType, max: usize, input: &Input) -> (BodyDecoder, Vec<Event>, Option<String>) {
    let mut body = BodyDecoder::new(response_type, max, usize::MAX);
    let mut events = Vec::new();
    let mut last = 0;
    for &cut in input.cuts.iter().chain(std::iter::once(&input.body.len())) {
        if let Err(e) = body.feed(&input.body[last..cut], &mut events) {
            return (body, events, Some(format!("{e:?}")));
        }
        last = cut;
    }
    let error = body.finish(&mut events).err().map(|e| format!("{e:?}"));
    (body, events, error)
}

fuzz_target!(|data: &[u8]| {
    let Some(input) = Input::parse(data) else { return };
    let max = MAX_LINE_BYTES[usize::from(input.options() & 3)];
    let item_limit = input.body.len() + 1;

    let mut runs: Vec<(&str, Run<String>)> = Vec::new();
    for (name, pieces) in input.feedings(8 * 1024) {
        let run = drive(NdjsonDecoder::new(max), &pieces, true, item_limit);
        assert!(run.max_pending <= max, "{name}: {} bytes pending, limit {max}", run.max_pending);
        let slack = if tolerated(known::LIMIT_ON_TAIL) { run.max_piece } else { 0 };
        for line in &run.items {
            assert!(raw_len(line) <= max + slack, "{name}: line of {} bytes over the limit {max}", raw_len(line));
            assert!(!line.is_empty() && line.trim() == line, "{name}: line not trimmed: {line:?}");
            assert!(!line.contains('\n'), "{name}: line holds a LF: {line:?}");
        }
        runs.push((name, run));
    }
    assert_same(&runs, |e| e.contains("TooLarge"));

    // BodyDecoder as NDJSON: the same lines, as `message` events.
    let (_, cut_run) = &runs[1];
    let (body, events, error) = feed_body(ResponseType::Ndjson, max, &input);
    // A body that starts as SSE is read as SSE; otherwise the same lines, a last
    // line cut inside its JSON marked as truncated.
    let first = input.body.iter().copied().find(|b| !b.is_ascii_whitespace());
    if !matches!(first, Some(b'd' | b'e' | b'i' | b'r' | b':') | None) {
        let expected: Vec<Event> = cut_run
            .items
            .iter()
            .map(|l| Event::Data { event_type: "message".into(), data: l.clone() })
            .collect();
        let seen: Vec<Event> = events
            .into_iter()
            .map(|e| match e {
                Event::Truncated(data) => Event::Data { event_type: "message".into(), data: data.trim().to_owned() },
                other => other,
            })
            .collect();
        assert_eq!(seen, expected, "BodyDecoder and NdjsonDecoder disagree");
        assert_eq!(error, cut_run.error, "BodyDecoder and NdjsonDecoder fail differently");
        assert_eq!(body.response_type(), ResponseType::Ndjson);
    }

    // BodyDecoder as JSON: documents, or the body sniffed as SSE; extraction never panics.
    let (body, events, _) = feed_body(ResponseType::Json, max, &input);
    let mut extractor = Extractor::new(None, None);
    for event in &events {
        let _ = extractor.apply(event);
    }
    let _ = extractor.verdict(body.response_type());
});
