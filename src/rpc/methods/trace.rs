//! `"trace": true` on `llm/complete` and `llm/testConnection`: the exchange
//! as `llm/trace` notifications, secrets masked. Frames wait in [`Pending`]
//! (the engine's trace calls are not async) and go out through the ordered
//! writer before the next `llm/chunk` and before the response.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use serde_json::{Value, json};

use super::super::message::notification;
use super::super::outbox::Outbox;
use crate::engine::{TraceSink, TracedRequest, TracedResponse};
use crate::secrets::Secrets;

/// Trace frames not yet written.
#[derive(Clone, Default)]
pub(super) struct Pending(Arc<Mutex<Vec<Bytes>>>);

/// Turns the exchange into `llm/trace` notifications.
pub(super) struct TraceNotifier {
    stream_id: Option<Value>,
    secrets: Secrets,
    attempt: u32,
    body: Vec<u8>,
    pending: Pending,
}

impl Pending {
    fn push(&self, frame: Bytes) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(frame);
    }

    /// Writes the waiting frames, in order.
    pub(super) fn flush(&self, out: &Outbox) {
        let frames = std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()));
        for frame in frames {
            out.send(frame);
        }
    }
}

impl TraceNotifier {
    pub(super) fn new(stream_id: Option<Value>, secrets: Secrets, pending: Pending) -> Self {
        TraceNotifier {
            stream_id,
            secrets,
            attempt: 0,
            body: Vec::new(),
            pending,
        }
    }

    fn send(&self, mut params: Value) {
        params["attempt"] = Value::from(self.attempt);
        if let Some(id) = &self.stream_id {
            params["streamId"] = id.clone();
        }
        self.pending.push(notification("llm/trace", &params));
    }
}

impl TraceSink for TraceNotifier {
    fn request(&mut self, request: TracedRequest) {
        self.attempt += 1;
        self.send(json!({"request": request}));
    }

    fn response(&mut self, response: TracedResponse) {
        self.send(json!({"response": response}));
    }

    fn body(&mut self, bytes: &[u8]) {
        self.body.extend_from_slice(bytes);
    }

    fn secrets(&mut self, secrets: &Secrets) {
        self.secrets = secrets.clone();
    }

    fn end(&mut self, cut: bool) {
        let body = std::mem::take(&mut self.body);
        let text = String::from_utf8_lossy(&body);
        let shown = self.secrets.excerpt(&text, text.len().max(1), cut);
        self.send(json!({"body": {"text": shown, "bytes": body.len(), "cut": cut}}));
    }
}
