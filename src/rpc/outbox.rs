//! The frames waiting for stdout, and the back-pressure rule.
//!
//! Nothing that produces a frame ever waits for stdout: not the reader loop,
//! not a request's task. A client that stops reading (or reads slowly) must
//! not stall `$/cancelRequest`, the engine's timeouts, or the reading of
//! stdin. So [`Outbox::send`] and [`ChunkStream::chunk`] only queue, and the
//! queue is bounded by a rule instead of by blocking:
//!
//! - responses, errors and every other notification are always queued whole,
//!   never dropped or merged (their number is bounded by what the client
//!   sent);
//! - `llm/chunk` notifications are queued as frames while fewer than
//!   [`MERGE_ABOVE`] bytes wait; above that, the text of a stream's next
//!   pieces is appended to that stream's last frame still waiting, if it is
//!   one of merged text, else to a new one. Merged pieces of one kind become
//!   one `llm/chunk` when written; `seq` still counts 0, 1, 2, … per stream
//!   in the frames written, the texts still add up to the answer in order,
//!   and nothing is lost. While the client does not read, a stream costs the
//!   memory of its text, never that of a frame per piece.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use tokio::sync::Notify;

use super::frame::encode_into;
use crate::engine::ChunkKind;

/// Above this many bytes waiting, chunks are merged per stream.
pub const MERGE_ABOVE: usize = 1 << 20;

/// The queue of frames for the writer; cheap to clone, one per producer.
#[derive(Clone, Default)]
pub struct Outbox(Arc<Shared>);

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    /// Wakes the writer when something is queued or the outbox is closed.
    queued: Notify,
}

#[derive(Default)]
struct State {
    entries: VecDeque<Entry>,
    /// How many entries the writer has taken since the start: the position
    /// of `entries[0]`.
    taken: u64,
    /// Bytes waiting (frames, and the text of merged chunks).
    bytes: usize,
    /// No more frames are accepted: the writer is gone, or the server ended.
    closed: bool,
}

/// One thing to write.
pub enum Entry {
    Frame(Bytes),
    Merged(Merged),
}

/// Pieces of one stream merged while the queue was over [`MERGE_ABOVE`].
pub struct Merged {
    prefix: Bytes,
    first_seq: u64,
    /// One `llm/chunk` each: consecutive pieces of the same kind, joined.
    runs: Vec<(ChunkKind, String)>,
}

/// The `llm/chunk` notifications of one stream.
pub struct ChunkStream {
    outbox: Outbox,
    /// `{"jsonrpc":"2.0","method":"llm/chunk","params":{"streamId":<id>,"seq":`
    prefix: Bytes,
    /// The `seq` of the next frame: the number of frames this stream makes.
    seq: u64,
    /// Where this stream's merged entry is, while it may still be waiting.
    merging: Option<u64>,
}

impl Outbox {
    pub fn new() -> Self {
        Outbox::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.0.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a frame body (a response, an error, a notification). Never
    /// waits; dropped only when the outbox is closed.
    pub fn send(&self, frame: Bytes) {
        {
            let mut state = self.lock();
            if state.closed {
                return;
            }
            state.bytes += frame.len();
            state.entries.push_back(Entry::Frame(frame));
        }
        self.0.queued.notify_one();
    }

    /// A new stream of `llm/chunk` notifications; `prefix` is the frame up
    /// to its `seq` value.
    pub fn chunk_stream(&self, prefix: Vec<u8>) -> ChunkStream {
        ChunkStream {
            outbox: self.clone(),
            prefix: Bytes::from(prefix),
            seq: 0,
            merging: None,
        }
    }

    /// Accepts nothing more; the writer writes what is queued, then stops.
    pub fn close(&self) {
        self.lock().closed = true;
        self.0.queued.notify_one();
    }

    /// stdout is gone: drops what is queued and accepts nothing more.
    pub fn discard(&self) {
        let mut state = self.lock();
        state.closed = true;
        state.entries.clear();
        state.bytes = 0;
    }

    /// Waits for entries and moves up to `max` of them into `out`; false
    /// once the outbox is closed and empty.
    pub async fn take(&self, out: &mut Vec<Entry>, max: usize) -> bool {
        loop {
            {
                let mut state = self.lock();
                if !state.entries.is_empty() {
                    let n = state.entries.len().min(max);
                    let mut freed = 0;
                    for entry in state.entries.drain(..n) {
                        freed += entry.size();
                        out.push(entry);
                    }
                    state.bytes -= freed;
                    state.taken += n as u64;
                    return true;
                }
                if state.closed {
                    return false;
                }
            }
            // A notification sent since the lock was released is kept as a
            // permit: nothing queued meanwhile is missed.
            self.0.queued.notified().await;
        }
    }

    /// Bytes waiting now.
    #[cfg(test)]
    fn waiting(&self) -> usize {
        self.lock().bytes
    }
}

impl Entry {
    fn size(&self) -> usize {
        match self {
            Entry::Frame(frame) => frame.len(),
            Entry::Merged(merged) => merged.runs.iter().map(|(_, text)| text.len()).sum(),
        }
    }

    /// Appends the framed entry (header and body) to `dst`.
    pub fn encode_into(&self, dst: &mut Vec<u8>) {
        match self {
            Entry::Frame(frame) => encode_into(frame, dst),
            Entry::Merged(merged) => {
                for (seq, (kind, text)) in (merged.first_seq..).zip(&merged.runs) {
                    encode_into(&chunk_frame(&merged.prefix, seq, *kind, text), dst);
                }
            }
        }
    }
}

impl ChunkStream {
    /// Queues one piece of text. Never waits: over [`MERGE_ABOVE`] bytes
    /// waiting, the piece is merged into this stream's waiting text.
    pub fn chunk(&mut self, kind: ChunkKind, text: &str) {
        let mut state = self.outbox.lock();
        if state.closed {
            return;
        }
        if state.bytes < MERGE_ABOVE {
            let frame = chunk_frame(&self.prefix, self.seq, kind, text);
            self.seq += 1;
            self.merging = None;
            state.bytes += frame.len();
            state.entries.push_back(Entry::Frame(frame));
        } else {
            state.bytes += text.len();
            let taken = state.taken;
            let waiting = self
                .merging
                .filter(|at| *at >= taken)
                .and_then(|at| state.entries.get_mut((at - taken) as usize));
            match waiting {
                Some(Entry::Merged(merged)) => match merged.runs.last_mut() {
                    Some((last, joined)) if *last == kind => joined.push_str(text),
                    _ => {
                        merged.runs.push((kind, text.to_owned()));
                        self.seq += 1;
                    }
                },
                _ => {
                    self.merging = Some(taken + state.entries.len() as u64);
                    state.entries.push_back(Entry::Merged(Merged {
                        prefix: self.prefix.clone(),
                        first_seq: self.seq,
                        runs: vec![(kind, text.to_owned())],
                    }));
                    self.seq += 1;
                }
            }
        }
        drop(state);
        self.outbox.0.queued.notify_one();
    }

    /// How many `llm/chunk` notifications this stream makes, merged ones
    /// counted once.
    pub fn frames(&self) -> u64 {
        self.seq
    }

    #[cfg(test)]
    pub fn prefix(&self) -> &[u8] {
        &self.prefix
    }
}

/// The frame of one `llm/chunk`, after `prefix`.
///
/// Written by hand, as serde would write
/// `{"jsonrpc":"2.0","method":"llm/chunk","params":{"streamId","seq","text","kind"}}`:
/// each chunk is one buffer of the right size (the text escaped into it).
pub fn chunk_frame(prefix: &[u8], seq: u64, kind: ChunkKind, text: &str) -> Bytes {
    let kind = match kind {
        ChunkKind::Content => &br#","kind":"content"}}"#[..],
        ChunkKind::Reasoning => &br#","kind":"reasoning"}}"#[..],
    };
    let mut digits = itoa::Buffer::new();
    let digits = digits.format(seq).as_bytes();
    // Exactly the frame's size when the text needs no escapes (quotes,
    // backslashes and control characters are rare enough for a
    // reallocation), so the buffer becomes the `Bytes` without another one.
    const TEXT: &[u8] = br#","text":"#;
    let len = prefix.len() + digits.len() + TEXT.len() + text.len() + 2 + kind.len();
    let mut frame = Vec::with_capacity(len);
    frame.extend_from_slice(prefix);
    frame.extend_from_slice(digits);
    frame.extend_from_slice(TEXT);
    // Writing a string into a Vec cannot fail.
    serde_json::to_writer(&mut frame, text).expect("serialisable text");
    frame.extend_from_slice(kind);
    Bytes::from(frame)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(outbox: &Outbox) -> Vec<serde_json::Value> {
        let mut entries = Vec::new();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        outbox.close();
        while runtime.block_on(outbox.take(&mut entries, 7)) {}
        let mut bytes = Vec::new();
        for entry in &entries {
            entry.encode_into(&mut bytes);
        }
        let mut frames = Vec::new();
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            let header_end = rest.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
            let header = std::str::from_utf8(&rest[..header_end]).unwrap();
            let len: usize = header["Content-Length: ".len()..].parse().unwrap();
            let body = &rest[header_end + 4..header_end + 4 + len];
            frames.push(serde_json::from_slice(body).unwrap());
            rest = &rest[header_end + 4 + len..];
        }
        frames
    }

    #[test]
    fn over_the_limit_chunks_merge_per_stream_and_kind_in_order() {
        let outbox = Outbox::new();
        let mut a = outbox.chunk_stream(
            br#"{"jsonrpc":"2.0","method":"llm/chunk","params":{"streamId":"a","seq":"#.to_vec(),
        );
        let mut b = outbox.chunk_stream(
            br#"{"jsonrpc":"2.0","method":"llm/chunk","params":{"streamId":"b","seq":"#.to_vec(),
        );
        a.chunk(ChunkKind::Content, "a0 ");
        // Fill the queue past the limit with one big response.
        outbox.send(Bytes::from(format!(
            r#"{{"jsonrpc":"2.0","id":1,"result":"{}"}}"#,
            "x".repeat(MERGE_ABOVE)
        )));
        assert!(outbox.waiting() > MERGE_ABOVE);
        for i in 1..1000 {
            a.chunk(ChunkKind::Content, &format!("a{i} "));
            b.chunk(ChunkKind::Reasoning, &format!("b{i} "));
        }
        a.chunk(ChunkKind::Reasoning, "think");
        a.chunk(ChunkKind::Content, "end");
        outbox.send(Bytes::from_static(
            br#"{"jsonrpc":"2.0","id":"a","result":null}"#,
        ));
        assert_eq!((a.frames(), b.frames()), (4, 1));
        let frames = written(&outbox);
        let chunks = |id: &str| -> Vec<(u64, String, String)> {
            frames
                .iter()
                .filter(|f| f["params"]["streamId"] == id)
                .map(|f| {
                    let p = &f["params"];
                    (
                        p["seq"].as_u64().unwrap(),
                        p["kind"].as_str().unwrap().to_owned(),
                        p["text"].as_str().unwrap().to_owned(),
                    )
                })
                .collect()
        };
        let a_text: String = (1..1000).map(|i| format!("a{i} ")).collect();
        let b_text: String = (1..1000).map(|i| format!("b{i} ")).collect();
        assert_eq!(
            chunks("a"),
            vec![
                (0, "content".into(), "a0 ".into()),
                (1, "content".into(), a_text),
                (2, "reasoning".into(), "think".into()),
                (3, "content".into(), "end".into()),
            ]
        );
        assert_eq!(chunks("b"), vec![(0, "reasoning".into(), b_text)]);
        // The response of stream a comes after all its chunks.
        assert_eq!(frames.last().unwrap()["id"], "a");
        assert_eq!(outbox.waiting(), 0);
    }

    #[test]
    fn under_the_limit_every_piece_is_its_own_frame_and_a_closed_outbox_takes_nothing() {
        let outbox = Outbox::new();
        let mut a = outbox.chunk_stream(
            br#"{"jsonrpc":"2.0","method":"llm/chunk","params":{"streamId":1,"seq":"#.to_vec(),
        );
        for i in 0..100 {
            a.chunk(ChunkKind::Content, &i.to_string());
        }
        assert_eq!(a.frames(), 100);
        let frames = written(&outbox);
        assert_eq!(frames.len(), 100);
        assert!(
            frames
                .iter()
                .enumerate()
                .all(|(i, f)| f["params"]["seq"] == i
                    && f["params"]["text"].as_str() == Some(i.to_string().as_str()))
        );
        a.chunk(ChunkKind::Content, "late");
        outbox.send(Bytes::from_static(b"{}"));
        assert_eq!(outbox.waiting(), 0);
    }
}
