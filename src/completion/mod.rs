//! Code completion (ghost text): the text around the cursor in, one cleaned
//! suggestion out, through the same engine as chat.
//!
//! [`Completer::complete`] is the entry point every front end uses
//! (`llm/inlineCompletion`, LSP `textDocument/inlineCompletion`, the CLI's
//! `complete --fim`). Its steps have their own files: [`fim`] (templates and
//! their stop tokens), [`request`] (context budget and body),
//! [`cleanup`] (the clean-up rules), [`cache`] (typing along a suggestion).
//! This file holds the types callers see and the per-document rule: a new
//! request for a document cancels the one running for it (which then
//! answers as cancelled) and waits until that one has let go of its
//! connection, so one document never has two requests at once. Nothing here
//! sleeps: debouncing is the editor's job.

pub mod cache;
pub mod cleanup;
pub mod fim;
pub mod request;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::engine::{ChunkKind, ChunkSink, Engine, Failure, FailureKind, TraceSink};
use crate::settings::Settings;
use crate::settings::fim::FimMode;

/// The position to complete, as text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InlineInput {
    /// The document's text before the cursor.
    pub prefix: String,
    /// The document's text after the cursor.
    pub suffix: String,
    /// The editor's language id (`rust`, `python`), for `$language` and the chat prompt.
    pub language: Option<String>,
    /// The document's path or URI, for `$path` and the chat prompt.
    pub path: Option<String>,
    /// Asked for explicitly (LSP `triggerKind: Invoked`): the cache is not read.
    pub invoked: bool,
}

/// One suggestion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InlineItem {
    /// The text to insert at the cursor.
    pub insert_text: String,
}

/// Where the time went, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InlineTimings {
    /// Until the server's response headers (0 when answered from the cache).
    pub first_byte_ms: u64,
    pub total_ms: u64,
}

/// The answer: no items when the model had nothing usable to say.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InlineAnswer {
    pub items: Vec<InlineItem>,
    pub timings: InlineTimings,
    /// True when answered from the cache, with no request.
    pub cached: bool,
}

/// Completions of one sidecar: the cache and the running request of each document.
#[derive(Debug, Default)]
pub struct Completer {
    cache: cache::Cache,
    documents: Mutex<HashMap<String, Arc<Slot>>>,
}

/// One document's running request.
#[derive(Debug, Default)]
struct Slot {
    /// Held while a request of this document is with the server.
    running: tokio::sync::Mutex<()>,
    /// The newest request: its number and how to cancel it.
    newest: Mutex<Option<(u64, CancellationToken)>>,
}

/// A place in the order of completion requests, for
/// [`Completer::complete_in_order`]: take it when the request arrives.
pub fn ticket() -> u64 {
    NEXT_TICKET.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// Numbers requests, so a request can tell whether it is still the newest.
static NEXT_TICKET: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// Watches a streamed answer and stops reading it once the rest could not be
/// used: at a stop string or leaked special token, and in single-line mode at
/// the end of the suggested line ([`cleanup::line_ended`]: past a fence's
/// opening line and restated lines). Nothing is streamed to the editor.
struct EarlyStop<'a> {
    text: String,
    /// The text before the cursor, which the answer may say again first.
    prefix: &'a str,
    single_line: bool,
    stops: &'a [String],
    stop: CancellationToken,
}

impl ChunkSink for EarlyStop<'_> {
    async fn chunk(&mut self, kind: ChunkKind, text: &str) {
        if kind != ChunkKind::Content || self.stop.is_cancelled() {
            return;
        }
        self.text.push_str(text);
        let line_ended = self.single_line && cleanup::line_ended(&self.text, self.prefix);
        let stopped = cleanup::cut_at_stops(&self.text, self.stops).len() < self.text.len();
        if line_ended || stopped {
            tracing::debug!(
                chars = self.text.len(),
                "the rest of the answer is not needed: reading stops"
            );
            self.stop.cancel();
        }
    }
}

impl Completer {
    pub fn new() -> Self {
        Completer::default()
    }

    /// Completes at the position `input` describes, for the document called
    /// `document` (its URI or path; requests without one share a slot).
    /// A later request for the same document cancels this one, which then
    /// fails with [`FailureKind::Cancelled`], as it does when `cancel` fires.
    pub async fn complete(
        &self,
        engine: &Engine,
        settings: &Settings,
        input: &InlineInput,
        document: &str,
        cancel: &CancellationToken,
        trace: Option<&mut dyn TraceSink>,
    ) -> Result<InlineAnswer, Failure> {
        self.complete_in_order(engine, settings, input, document, ticket(), cancel, trace)
            .await
    }

    /// [`Completer::complete`] with a place in the order of requests taken
    /// earlier ([`ticket`], when the request arrived): a request whose task
    /// starts after a newer one for the same document has registered is
    /// superseded at once instead of cancelling the newer one.
    #[allow(clippy::too_many_arguments)]
    pub async fn complete_in_order(
        &self,
        engine: &Engine,
        settings: &Settings,
        input: &InlineInput,
        document: &str,
        ticket: u64,
        cancel: &CancellationToken,
        trace: Option<&mut dyn TraceSink>,
    ) -> Result<InlineAnswer, Failure> {
        let started = Instant::now();
        let slot = self.slot(document);
        let mine = cancel.child_token();
        {
            let mut newest = slot.newest.lock().unwrap_or_else(|e| e.into_inner());
            if newest.as_ref().is_some_and(|(t, _)| *t > ticket) {
                mine.cancel();
            } else if let Some((_, older)) = newest.replace((ticket, mine.clone())) {
                tracing::debug!(
                    document,
                    "a newer completion request supersedes the running one"
                );
                older.cancel();
            }
        }
        // Let go of the slot however this ends, the future dropped included.
        let held = Held {
            completer: self,
            document,
            slot,
            ticket,
        };
        self.run(engine, settings, input, &held.slot, &mine, started, trace)
            .await
    }

    /// Cancels the request running for `document`, if any (the document was closed).
    pub fn cancel_document(&self, document: &str) {
        let slot = self
            .documents
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(document)
            .cloned();
        if let Some(slot) = slot
            && let Some((_, token)) = slot.newest.lock().unwrap_or_else(|e| e.into_inner()).take()
        {
            token.cancel();
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn run(
        &self,
        engine: &Engine,
        settings: &Settings,
        input: &InlineInput,
        slot: &Slot,
        mine: &CancellationToken,
        started: Instant,
        trace: Option<&mut dyn TraceSink>,
    ) -> Result<InlineAnswer, Failure> {
        let fim = &settings.fim;
        let ctx = request::context(
            fim,
            &input.prefix,
            &input.suffix,
            input.language.as_deref(),
            input.path.as_deref(),
        );
        let key = cache::fingerprint(settings);
        let answer = |items: Vec<InlineItem>, first_byte_ms, cached| InlineAnswer {
            items,
            timings: InlineTimings {
                first_byte_ms,
                total_ms: started.elapsed().as_millis() as u64,
            },
            cached,
        };
        if !input.invoked
            && let Some(rest) = self.cache.get(key, &input.prefix, &input.suffix)
        {
            // The suffix may have gained a closer the editor added: it is not repeated.
            let rest = if ctx.multiline {
                rest.as_str()
            } else {
                cleanup::single_line(&rest)
            };
            let rest = cleanup::trim_suffix_overlap(rest, &input.prefix, &input.suffix).to_owned();
            if !rest.trim().is_empty() {
                tracing::debug!(chars = rest.len(), "completion answered from the cache");
                return Ok(answer(vec![InlineItem { insert_text: rest }], 0, true));
            }
        }
        let cancelled = || {
            let mut failure = Failure::new(FailureKind::Cancelled);
            failure.total_ms = started.elapsed().as_millis() as u64;
            failure
        };
        // One request per document: wait for the superseded one to let go.
        let _running = tokio::select! {
            biased;
            _ = mine.cancelled() => return Err(cancelled()),
            guard = slot.running.lock() => guard,
        };
        if mine.is_cancelled() {
            return Err(cancelled());
        }
        let body = Bytes::from(request::body(settings, &ctx));
        let with_path;
        let settings = match request::default_path(settings) {
            Some(path) => {
                let mut copy = settings.clone();
                copy.content_path = Some(path);
                with_path = copy;
                &with_path
            }
            None => settings,
        };
        let chat = fim.mode == FimMode::Chat;
        let stops = request::stops(fim);
        let early = mine.child_token();
        let mut sink = EarlyStop {
            text: String::new(),
            prefix: &ctx.prefix,
            single_line: !ctx.multiline && !chat,
            stops: &stops,
            stop: early.clone(),
        };
        let result = engine
            .complete_body(settings, body, &mut sink, &early, trace)
            .await;
        let (raw, first_byte_ms) = match result {
            Ok(completion) => (completion.text, completion.timings.first_byte_ms),
            // Stopped by us, not by the client: what was read is the answer.
            Err(failure)
                if early.is_cancelled()
                    && !mine.is_cancelled()
                    && matches!(failure.kind, FailureKind::Cancelled) =>
            {
                (failure.partial_text, failure.first_byte_ms.unwrap_or(0))
            }
            Err(failure) => return Err(failure),
        };
        let text = cleanup::clean(&raw, &ctx, &stops, chat);
        tracing::debug!(
            raw_chars = raw.len(),
            kept_chars = text.as_ref().map_or(0, String::len),
            "completion cleaned"
        );
        let items = match text {
            Some(text) => {
                self.cache.put(key, &input.prefix, &input.suffix, &text);
                vec![InlineItem { insert_text: text }]
            }
            None => Vec::new(),
        };
        Ok(answer(items, first_byte_ms, false))
    }

    fn slot(&self, document: &str) -> Arc<Slot> {
        self.documents
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(document.to_owned())
            .or_default()
            .clone()
    }
}

/// One request's hold on its document's slot.
struct Held<'a> {
    completer: &'a Completer,
    document: &'a str,
    slot: Arc<Slot>,
    ticket: u64,
}

impl Drop for Held<'_> {
    /// Clears the slot's newest request if it is this one, and drops the slot
    /// when no request uses it any more.
    fn drop(&mut self) {
        {
            let mut newest = self.slot.newest.lock().unwrap_or_else(|e| e.into_inner());
            if newest.as_ref().is_some_and(|(t, _)| *t == self.ticket) {
                *newest = None;
            }
        }
        let mut documents = self
            .completer
            .documents
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        // Clones are only made under this lock: the map's and ours are the last two.
        if Arc::strong_count(&self.slot) == 2 {
            documents.remove(self.document);
        }
    }
}
