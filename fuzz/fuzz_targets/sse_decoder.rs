//! SSE decoder fed in random splits.
//!
//! Checks that reading the body whole, at the input's chosen cut points and
//! one byte at a time give exactly the same items and the same error (the
//! decoder must be split-invariant); that nothing is buffered beyond
//! `max_event_bytes` while the decoder waits for more; that no item is larger
//! than `max_event_bytes`; that `BodyDecoder` (the engine's entry point) gives
//! the same events; and that the events go through an `Extractor` (default
//! paths and a configured path) without panicking.
//!
//! Input: see `common/mod.rs`. Option bits (flags >> 3): bits 0-1 choose
//! `max_event_bytes`, bits 2-4 choose the configured JsonPath.
#![no_main]

#[path = "common/mod.rs"]
mod common;

use common::{Input, Run, assert_same, drive, known, raw_len, tolerated};
use libfuzzer_sys::fuzz_target;
use llm_sidecar::decode::sse::{SseDecoder, SseItem};
use llm_sidecar::decode::{BodyDecoder, Event, ResponseType};
use llm_sidecar::extract::{CompiledPath, Extractor};

const MAX_EVENT_BYTES: [usize; 4] = [1 << 20, 4096, 256, 16];

/// Paths users configure (from the fixtures' metadata), and a few odd ones.
const PATHS: [&str; 8] = [
    "$.choices[0].delta.content",
    "$.candidates[0].content.parts[0].text",
    "$.delta.text",
    "choices[0].delta.reasoning_content",
    "$..text",
    "$.choices[?(@.index==0)].delta.content",
    "[0].message.content",
    "$.*",
];

fn item_size(item: &SseItem) -> usize {
    match item {
        SseItem::Event(e) => raw_len(&e.data).max(raw_len(&e.event)),
        SseItem::Stray(s) => raw_len(s),
    }
}

fn to_event(item: &SseItem) -> Event {
    match item {
        SseItem::Event(e) => Event::Data {
            event_type: e.event.clone(),
            data: e.data.clone(),
        },
        SseItem::Stray(s) => Event::Stray(s.clone()),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some(input) = Input::parse(data) else { return };
    let opts = input.options();
    let max = MAX_EVENT_BYTES[usize::from(opts & 3)];
    let path = PATHS[usize::from((opts >> 2) & 7)];
    let item_limit = 2 * input.body.len() + 4;

    let mut runs: Vec<(&str, Run<SseItem>)> = Vec::new();
    for (name, pieces) in input.feedings(8 * 1024) {
        let run = drive(SseDecoder::new(max), &pieces, true, item_limit);
        // Bounded memory: a decoder waiting for more bytes holds at most one
        // (partial) line, which is refused once it is over the limit.
        assert!(run.max_pending <= max.max(3), "{name}: {} bytes pending, limit {max}", run.max_pending);
        let slack = if tolerated(known::LIMIT_ON_TAIL) { run.max_piece + 1 } else { 0 };
        for item in &run.items {
            assert!(item_size(item) <= max + slack, "{name}: item of {} bytes over the limit {max}: {item:?}", item_size(item));
        }
        runs.push((name, run));
    }
    let has_stray = runs[0].1.items.iter().any(|i| matches!(i, SseItem::Stray(_)));
    if !(tolerated(known::SSE_CR_STRAY) && has_stray && input.body.contains(&b'\r')) {
        assert_same(&runs, |e| e.contains("TooLarge"));
    }

    // BodyDecoder over the same cuts gives the same events and error.
    let (_, cut_run) = &runs[1];
    let mut body = BodyDecoder::new(ResponseType::Sse, max, usize::MAX);
    let mut events = Vec::new();
    let mut error = None;
    let mut last = 0;
    for &cut in input.cuts.iter().chain(std::iter::once(&input.body.len())) {
        if let Err(e) = body.feed(&input.body[last..cut], &mut events) {
            error = Some(format!("{e:?}"));
            break;
        }
        last = cut;
    }
    if error.is_none() {
        if let Err(e) = body.finish(&mut events) {
            error = Some(format!("{e:?}"));
        }
    }
    // Unless the body starts as JSON (then it is read as JSON documents), the same
    // events, a last one cut inside its JSON marked as truncated.
    let unbommed = input.body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&input.body);
    let first = unbommed.iter().copied().find(|b| !b.is_ascii_whitespace());
    if !matches!(first, Some(b'{' | b'[')) {
        let expected: Vec<Event> = cut_run.items.iter().map(to_event).collect();
        // A truncated event is the last one, holding what the decoder would have dispatched.
        let mut seen = events.clone();
        if let (Some(Event::Truncated(data)), Some(Event::Data { event_type, .. })) = (seen.last(), expected.last()) {
            let restored = Event::Data { event_type: event_type.clone(), data: data.clone() };
            *seen.last_mut().unwrap() = restored;
        }
        assert_eq!(seen, expected, "BodyDecoder and SseDecoder disagree");
        assert_eq!(error, cut_run.error, "BodyDecoder and SseDecoder fail differently");
        assert_eq!(body.response_type(), ResponseType::Sse);
    }
    assert!(body.head().len() <= 1024 && body.bytes_read() <= input.body.len());

    // Extraction never panics, whatever the events hold.
    let configured = CompiledPath::compile(path).expect("the fuzz target's paths are valid");
    let reasoning = CompiledPath::compile("$.choices[0].delta.reasoning_content").expect("valid path");
    let mut extractors = [
        Extractor::new(None, None),
        Extractor::new(Some(&configured), Some(&reasoning)),
    ];
    for extractor in &mut extractors {
        for event in &events {
            let _ = extractor.apply(event);
        }
        let _ = extractor.verdict(ResponseType::Sse);
        let _ = extractor.finish_reason();
        let _ = extractor.take_usage();
        let _ = extractor.content_path(ResponseType::Json);
        let _ = extractor.mixed_choices(ResponseType::Sse);
    }
});
