//! Code completion over standard LSP: document sync (`textDocument/didOpen`,
//! `didChange`, `didClose`) into [`Documents`], position-encoding
//! negotiation at `initialize`, and `textDocument/inlineCompletion`.
//!
//! Ordering: notifications are applied in the reader loop in arrival order,
//! while requests run as tasks. An inline completion therefore takes its
//! view of the document in [`Lsp::arrived`], called by the reader loop when
//! the request arrives (before any later `didChange` is applied): the rope is
//! cloned (cheap, shared nodes) and the cursor resolved. The task then cuts
//! the prefix and suffix from that snapshot and runs the completion.
//!
//! Superseding: the arrival of a completion for a document cancels the one
//! still running for it (answered `-32800`, its HTTP connection closed).
//! Decided at arrival, in order, so a newer request never loses to an older
//! one whose task happened to start later.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::completion::{self, InlineInput};
use crate::engine::{Failure, FailureKind};

use crate::documents::{Around, Bounds, Change, Documents, Encoding, Position, Range, Text};
use crate::rpc::message::{RequestId, code, response};
use crate::settings::Selection;

use super::{RpcError, failure_error, invalid_params as invalid_params_all};

pub const INLINE_COMPLETION: &str = "textDocument/inlineCompletion";

/// The LSP side of the server's state.
#[derive(Debug, Default)]
pub struct Lsp {
    documents: Mutex<Documents>,
    /// Negotiated at `initialize`; UTF-16 until then.
    encoding: Mutex<Encoding>,
    /// What each inline completion saw when it arrived, by request id, until
    /// its task takes it.
    arrivals: Mutex<HashMap<RequestId, Arrival>>,
    /// The running inline completion of each document: (arrival number,
    /// token cancelled when a newer one arrives or the document closes).
    running: Mutex<HashMap<String, (u64, CancellationToken)>>,
    /// Arrivals counted, to order them.
    arrivals_seen: AtomicU64,
}

/// An inline completion as of its arrival.
#[derive(Debug)]
pub struct Arrival {
    /// The document and cursor, or why the request cannot be served.
    pub view: Result<View, RpcError>,
    /// Cancelled when a newer completion for the same document arrives.
    pub superseded: CancellationToken,
    number: u64,
    /// The request's place in the completer's order (see
    /// [`crate::completion::Completer::complete_in_order`]).
    ticket: u64,
}

/// A document snapshot and a cursor in it.
#[derive(Debug, Clone)]
pub struct View {
    pub uri: String,
    pub language: String,
    pub text: Text,
    /// Where the completion goes (char index).
    pub cursor: usize,
    /// The char index where the returned item's range starts: the cursor, or
    /// the start of `selectedCompletionInfo.range`.
    pub replace_from: usize,
    /// Text the item must start with (`selectedCompletionInfo.text`).
    pub selected: String,
    /// `context.triggerKind` 1: the user asked.
    pub invoked: bool,
    pub encoding: Encoding,
}

impl View {
    /// The prefix and suffix, bounded; with a selected completion applied
    /// to the prefix.
    pub fn around(&self, bounds: Bounds) -> Around {
        let mut around = Around::at(&self.text, self.cursor, bounds);
        if !self.selected.is_empty() {
            let replaced = self.cursor - self.replace_from;
            let keep = around.prefix.chars().count().saturating_sub(replaced);
            let cut = around
                .prefix
                .char_indices()
                .nth(keep)
                .map_or(around.prefix.len(), |(i, _)| i);
            around.prefix.truncate(cut);
            around.prefix.push_str(&self.selected);
        }
        around
    }

    /// The item for `completion` (the text the model put at the cursor).
    pub fn item(&self, completion: &str) -> Value {
        let start = self.text.position(self.replace_from, self.encoding);
        let end = self.text.position(self.cursor, self.encoding);
        let insert = format!("{}{completion}", self.selected);
        json!({
            "insertText": insert,
            "range": {"start": position_json(start), "end": position_json(end)},
        })
    }

    /// The path for the model: the file path of a `file:` URI, else the URI.
    pub fn path(&self) -> String {
        url::Url::parse(&self.uri)
            .ok()
            .filter(|url| url.scheme() == "file")
            .and_then(|url| url.to_file_path().ok())
            .map(|path| path.display().to_string())
            .unwrap_or_else(|| self.uri.clone())
    }
}

fn position_json(position: Position) -> Value {
    json!({"line": position.line, "character": position.character})
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DocumentId {
    uri: String,
    /// Copilot sends it on inlineCompletion (ignored there).
    version: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OpenedDocument {
    uri: String,
    #[serde(default)]
    language_id: String,
    #[serde(default)]
    version: i64,
    text: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DidOpen {
    text_document: OpenedDocument,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DidChange {
    text_document: DocumentId,
    content_changes: Vec<Change>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DidClose {
    text_document: DocumentId,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InlineParams {
    text_document: DocumentId,
    position: Position,
    #[serde(default)]
    context: InlineContext,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct InlineContext {
    #[serde(default)]
    trigger_kind: Option<u8>,
    #[serde(default)]
    selected_completion_info: Option<SelectedCompletion>,
}

#[derive(Deserialize)]
struct SelectedCompletion {
    range: Range,
    text: String,
}

impl Lsp {
    /// Reads `capabilities.general.positionEncodings` from the `initialize`
    /// params and returns the server capabilities to add.
    pub fn initialize(&self, params: &Value) -> Value {
        let offered = params
            .pointer("/capabilities/general/positionEncodings")
            .and_then(Value::as_array)
            .map(|list| list.iter().filter_map(Value::as_str).collect::<Vec<_>>())
            .unwrap_or_default();
        let encoding = Encoding::negotiate(offered);
        *self.encoding.lock().unwrap_or_else(|e| e.into_inner()) = encoding;
        tracing::debug!(encoding = encoding.as_str(), "position encoding negotiated");
        json!({
            "positionEncoding": encoding.as_str(),
            "textDocumentSync": {"openClose": true, "change": 2},
            "inlineCompletionProvider": true,
        })
    }

    fn encoding(&self) -> Encoding {
        *self.encoding.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn documents(&self) -> std::sync::MutexGuard<'_, Documents> {
        self.documents.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A document notification; true when `method` is one. Problems are
    /// logged: a notification has nobody to answer.
    pub fn notification(&self, method: &str, params: &Value) -> bool {
        let outcome = match method {
            "textDocument/didOpen" => parse::<DidOpen>(params).and_then(|p| {
                let d = p.text_document;
                let opened = self
                    .documents()
                    .open(&d.uri, &d.language_id, d.version, &d.text);
                tracing::debug!(uri = %d.uri, version = d.version, bytes = d.text.len(), "didOpen");
                opened.map_err(|e| e.to_string())
            }),
            "textDocument/didChange" => parse::<DidChange>(params).and_then(|p| {
                let uri = &p.text_document.uri;
                self.documents()
                    .change(
                        uri,
                        p.text_document.version,
                        &p.content_changes,
                        self.encoding(),
                    )
                    .map_err(|e| e.to_string())
            }),
            "textDocument/didClose" => parse::<DidClose>(params).and_then(|p| {
                let uri = &p.text_document.uri;
                if let Some((_, token)) = self.running_slots().remove(uri) {
                    token.cancel();
                }
                self.documents().close(uri).map_err(|e| e.to_string())
            }),
            "textDocument/didSave" | "textDocument/willSave" => Ok(()),
            _ => return false,
        };
        if let Err(problem) = outcome {
            tracing::warn!(%method, %problem, "ignoring a document notification (the stored text is unchanged)");
        }
        true
    }

    fn running_slots(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, (u64, CancellationToken)>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Called by the reader loop when request `id` arrives, before any later
    /// notification is applied: an inline completion takes its snapshot and
    /// supersedes the running one for its document.
    pub fn arrived(&self, id: &RequestId, method: &str, params: &Value) {
        if method != INLINE_COMPLETION {
            return;
        }
        let number = self.arrivals_seen.fetch_add(1, Ordering::Relaxed) + 1;
        let view = self.view(params);
        let superseded = CancellationToken::new();
        if let Ok(view) = &view {
            let previous = self
                .running_slots()
                .insert(view.uri.clone(), (number, superseded.clone()));
            if let Some((_, older)) = previous {
                older.cancel();
            }
        }
        let arrival = Arrival {
            view,
            superseded,
            number,
            ticket: completion::ticket(),
        };
        self.arrivals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.clone(), arrival);
    }

    /// The arrival of request `id` (taken now if the reader loop did not).
    pub fn take_arrival(&self, id: &Value, params: &Value) -> Arrival {
        let key = RequestId::from_value(id).ok();
        let taken = key.and_then(|key| {
            self.arrivals
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&key)
        });
        taken.unwrap_or_else(|| Arrival {
            view: self.view(params),
            superseded: CancellationToken::new(),
            number: 0,
            ticket: completion::ticket(),
        })
    }

    /// The request is answered: its document has no running completion
    /// unless a newer one took the slot.
    pub fn finished(&self, arrival: &Arrival) {
        let Ok(view) = &arrival.view else {
            return;
        };
        let mut running = self.running_slots();
        if running
            .get(&view.uri)
            .is_some_and(|(n, _)| *n == arrival.number)
        {
            running.remove(&view.uri);
        }
    }

    fn view(&self, params: &Value) -> Result<View, RpcError> {
        let params: InlineParams = serde_json::from_value(params.clone())
            .map_err(|e| invalid_params("params", e.to_string()))?;
        let uri = params.text_document.uri;
        // Copilot's `textDocument.version` and `formattingOptions` are accepted
        // and not used: the snapshot is the text as of this request.
        let _ = params.text_document.version;
        let encoding = self.encoding();
        let documents = self.documents();
        let document = documents
            .get(&uri)
            .map_err(|e| invalid_params("textDocument.uri", e.to_string()))?;
        let text = document.text.clone();
        let language = document.language.clone();
        drop(documents);
        let cursor = text
            .char_index(params.position, encoding)
            .map_err(|e| invalid_params("position", e.to_string()))?;
        let (replace_from, selected) = match params.context.selected_completion_info {
            None => (cursor, String::new()),
            Some(info) => {
                let chars = text.char_range(info.range, encoding).map_err(|e| {
                    invalid_params("context.selectedCompletionInfo.range", e.to_string())
                })?;
                if chars.end != cursor {
                    return Err(invalid_params(
                        "context.selectedCompletionInfo.range",
                        "must end at `position`".to_owned(),
                    ));
                }
                (chars.start, info.text)
            }
        };
        Ok(View {
            uri,
            language,
            text,
            cursor,
            replace_from,
            selected,
            invoked: params.context.trigger_kind == Some(1),
            encoding,
        })
    }
}

fn parse<T: serde::de::DeserializeOwned>(params: &Value) -> Result<T, String> {
    T::deserialize(params).map_err(|e| format!("bad params: {e}"))
}

/// `-32602` for a problem with the request (not the settings).
fn invalid_params(field: &str, message: String) -> RpcError {
    RpcError {
        code: code::INVALID_PARAMS,
        message: format!("invalid params: {field}: {message}"),
        data: json!({"kind": "invalid_params", "problems": [{"field": field, "message": message}]}),
    }
}

impl super::Methods {
    /// `textDocument/inlineCompletion`: the completion at the position the
    /// request saw when it arrived, as `{items: [{insertText, range}]}`.
    pub(super) async fn lsp_inline_completion(
        &self,
        id: &Value,
        params: Value,
        cancel: &CancellationToken,
    ) -> Bytes {
        let arrival = self.lsp.take_arrival(id, &params);
        let answer = self.answer_inline(&arrival, cancel).await;
        self.lsp.finished(&arrival);
        match answer {
            Ok(items) => response(id, &json!({"items": items})),
            Err(e) => e.frame(id),
        }
    }

    async fn answer_inline(
        &self,
        arrival: &Arrival,
        cancel: &CancellationToken,
    ) -> Result<Vec<Value>, RpcError> {
        let view = arrival.view.as_ref().map_err(RpcError::clone)?;
        let settings = {
            let catalog = self.catalog.read().unwrap_or_else(|e| e.into_inner());
            catalog.resolve_completion(Selection::default())
        }
        .map_err(|problems| invalid_params_all(&problems))?;
        let fim = &settings.fim;
        let bounds = Bounds {
            lines_before: fim.prefix_lines.unwrap_or(usize::MAX),
            lines_after: fim.suffix_lines.unwrap_or(usize::MAX),
            // Characters here, bytes there: never fewer than the budget needs.
            chars_before: fim.prefix_chars,
            chars_after: fim.suffix_chars,
        };
        let around = view.around(bounds);
        let input = InlineInput {
            prefix: around.prefix,
            suffix: around.suffix,
            language: Some(view.language.clone()).filter(|l| !l.is_empty()),
            path: Some(view.path()),
            invoked: view.invoked,
        };
        // Cancelled by `$/cancelRequest`, or by a newer request for the
        // document (decided at arrival).
        let token = cancel.child_token();
        let result = if arrival.superseded.is_cancelled() {
            // A newer request for the document arrived before this one
            // started: it is not sent at all.
            Err(Failure::new(FailureKind::Cancelled))
        } else {
            let completion = self.completer.complete_in_order(
                &self.engine,
                &settings,
                &input,
                &view.uri,
                arrival.ticket,
                &token,
                None,
            );
            tokio::pin!(completion);
            tokio::select! {
                biased;
                result = &mut completion => result,
                () = arrival.superseded.cancelled() => {
                    token.cancel();
                    completion.await
                }
            }
        };
        match result {
            Ok(answer) => Ok(answer
                .items
                .iter()
                .map(|item| view.item(&item.insert_text))
                .collect()),
            Err(failure) => {
                let mut error = failure_error(&failure);
                if arrival.superseded.is_cancelled() && !cancel.is_cancelled() {
                    error.message = format!(
                        "superseded by a newer textDocument/inlineCompletion for {}",
                        view.uri
                    );
                    error.data["reason"] = json!("superseded");
                }
                Err(error)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::completion::Completer;
    use crate::engine::Engine;
    use crate::settings::Settings;

    /// Two requests for one document whose tasks start in the wrong order:
    /// the older one, arriving second at the completer, must not cancel the
    /// newer one (it is superseded itself).
    #[tokio::test]
    async fn an_older_request_that_starts_late_does_not_cancel_the_newer_one() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        // A server that takes connections and never answers.
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        let settings = Settings::from_json(&json!({
            "customEngineServer": format!("http://{address}/v1/completions"),
            "retry": {"maxRetries": 0},
        }))
        .unwrap();
        let (completer, engine) = (Completer::new(), Engine::default());
        let input = InlineInput {
            prefix: "x = ".into(),
            ..InlineInput::default()
        };
        let cancel = CancellationToken::new();
        let older = completion::ticket();
        let newer = completion::ticket();
        let newest =
            completer.complete_in_order(&engine, &settings, &input, "doc", newer, &cancel, None);
        tokio::pin!(newest);
        // The first poll registers the newer request with the completer.
        assert!(futures::poll!(&mut newest).is_pending());
        let late =
            completer.complete_in_order(&engine, &settings, &input, "doc", older, &cancel, None);
        tokio::pin!(late);
        // Both run until the late one ends; the newer one must not end first.
        let late = tokio::select! {
            biased;
            late = &mut late => late,
            newest = &mut newest => panic!("the newer request ended: {newest:?}"),
        };
        assert!(
            matches!(&late, Err(f) if matches!(f.kind, FailureKind::Cancelled)),
            "{late:?}"
        );
        assert!(
            futures::poll!(&mut newest).is_pending(),
            "the newer request must still be running"
        );
    }
}
