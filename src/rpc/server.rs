//! The stdio JSON-RPC server loop: read frames, dispatch, write in order.
//!
//! - One reader: frames from stdin, dispatched in arrival order. Lifecycle
//!   methods and `$/cancelRequest` are handled inline; every other request
//!   runs as its own task, with no cap on how many are in flight.
//! - One writer task fed by one channel: every frame (chunk notifications and
//!   responses alike) goes through it, so a request's chunks, sent by its task
//!   before the task sends the response, are always on stdout first.
//! - Cancel is ours: each running request has a `CancellationToken`; the
//!   handler sees it and answers with the text produced so far.
//! - A panicking handler is caught and answered with an internal error; the
//!   process keeps serving.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::{FutureExt, SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio_util::codec::{FramedRead, FramedWrite};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use super::frame::{Frame, FrameCodec};
use super::message::{Incoming, code, error, response};
use super::methods::{self, Methods};

/// How the server loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// stdin closed.
    Eof,
    /// `exit` after `shutdown`.
    Clean,
    /// `exit` without `shutdown` (LSP: exit code 1).
    WithoutShutdown,
}

impl Exit {
    pub fn code(self) -> i32 {
        match self {
            Exit::Eof | Exit::Clean => 0,
            Exit::WithoutShutdown => 1,
        }
    }
}

/// Frames waiting for the writer; a full queue slows producers down instead
/// of growing without bound when the client stops reading.
const WRITE_QUEUE: usize = 4096;
/// How long in-flight requests, then the writer, get to finish at the end.
const END_GRACE: Duration = Duration::from_secs(2);

/// Running requests by id; the number tells registrations of a reused id apart.
type Inflight = Arc<Mutex<HashMap<String, (u64, CancellationToken)>>>;

static REGISTRATION: AtomicU64 = AtomicU64::new(0);

/// Serves JSON-RPC on `input`/`output` until EOF or `exit`.
pub async fn serve<R, W>(input: R, output: W) -> Exit
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (tx, rx) = mpsc::channel::<Bytes>(WRITE_QUEUE);
    let writer = tokio::spawn(write_frames(rx, output));
    let methods = Arc::new(Methods::new());
    let inflight: Inflight = Arc::default();
    let tasks = TaskTracker::new();
    let mut reader = FramedRead::new(input, FrameCodec::default());
    let mut shutdown = false;

    let exit = loop {
        let frame = match reader.next().await {
            None => break Exit::Eof,
            Some(Err(e)) => {
                tracing::error!(error = %e, "cannot read stdin; stopping");
                break Exit::Eof;
            }
            Some(Ok(frame)) => frame,
        };
        let body = match frame {
            Frame::Message(body) => body,
            Frame::Oversized { size } => {
                tracing::warn!(size, "refusing an oversized frame");
                let message = format!(
                    "the frame is {size} bytes; the limit is {} bytes",
                    super::frame::DEFAULT_MAX_FRAME
                );
                send(
                    &tx,
                    error(&Value::Null, code::INVALID_REQUEST, &message, None),
                )
                .await;
                continue;
            }
            Frame::BadHeader { detail } => {
                tracing::warn!(%detail, "bad frame header");
                send(
                    &tx,
                    error(
                        &Value::Null,
                        code::PARSE_ERROR,
                        &format!("bad frame header: {detail}"),
                        None,
                    ),
                )
                .await;
                continue;
            }
        };
        let value = match serde_json::from_slice::<Value>(&body) {
            Ok(value) => value,
            Err(e) => {
                tracing::warn!(error = %e, "a frame is not valid JSON");
                send(
                    &tx,
                    error(
                        &Value::Null,
                        code::PARSE_ERROR,
                        &format!("parse error: {e}"),
                        None,
                    ),
                )
                .await;
                continue;
            }
        };
        match Incoming::from_value(value) {
            Incoming::Request { id, method, params } => {
                if shutdown {
                    send(
                        &tx,
                        error(
                            &id,
                            code::INVALID_REQUEST,
                            "the server is shutting down",
                            None,
                        ),
                    )
                    .await;
                    continue;
                }
                match method.as_str() {
                    "initialize" => send(&tx, response(&id, &methods.initialize(&params))).await,
                    "shutdown" => {
                        shutdown = true;
                        send(&tx, response(&id, &Value::Null)).await;
                    }
                    _ if methods::is_known(&method) => {
                        spawn_request(&tasks, &inflight, &methods, &tx, id, method, params);
                    }
                    _ => {
                        let message = format!("unknown method `{method}`");
                        send(&tx, error(&id, code::METHOD_NOT_FOUND, &message, None)).await;
                    }
                }
            }
            Incoming::Notification { method, params } => match method.as_str() {
                "exit" => {
                    break if shutdown {
                        Exit::Clean
                    } else {
                        Exit::WithoutShutdown
                    };
                }
                "$/cancelRequest" => cancel(&inflight, &params),
                "initialized" | "$/setTrace" | "$/logTrace" => {}
                other => methods.notification(other, &params, &tx).await,
            },
            Incoming::Response => {}
            Incoming::Invalid { id, reason } => {
                send(&tx, error(&id, code::INVALID_REQUEST, &reason, None)).await;
            }
        }
    };

    // Whichever way it ended: running requests are cancelled (each answers
    // with its partial text), then everything queued is written out.
    for (_, token) in inflight.lock().unwrap_or_else(|e| e.into_inner()).values() {
        token.cancel();
    }
    tasks.close();
    let _ = tokio::time::timeout(END_GRACE, tasks.wait()).await;
    drop(tx);
    drop(methods);
    let _ = tokio::time::timeout(END_GRACE, writer).await;
    exit
}

/// The only code that writes to the output.
async fn write_frames<W: AsyncWrite + Unpin>(mut rx: mpsc::Receiver<Bytes>, output: W) {
    let mut sink = FramedWrite::new(output, FrameCodec::default());
    while let Some(frame) = rx.recv().await {
        if sink.feed(frame).await.is_err() {
            break;
        }
        // Batch whatever is already queued into one flush.
        while let Ok(frame) = rx.try_recv() {
            if sink.feed(frame).await.is_err() {
                return;
            }
        }
        if sink.flush().await.is_err() {
            tracing::warn!("stdout is closed; dropping further output");
            break;
        }
    }
    // Keep draining so producers never block on a dead writer.
    while rx.recv().await.is_some() {}
}

async fn send(tx: &mpsc::Sender<Bytes>, frame: Bytes) {
    // The writer only stops when stdout is gone; then there is nobody to tell.
    let _ = tx.send(frame).await;
}

fn id_key(id: &Value) -> String {
    id.to_string()
}

fn cancel(inflight: &Inflight, params: &Value) {
    let Some(id) = params.get("id") else {
        tracing::debug!("$/cancelRequest without an id");
        return;
    };
    let map = inflight.lock().unwrap_or_else(|e| e.into_inner());
    match map.get(&id_key(id)) {
        Some((_, token)) => {
            tracing::debug!(%id, "cancelling");
            token.cancel();
        }
        None => tracing::debug!(%id, "$/cancelRequest for a request that is not running"),
    }
}

/// Runs one request in its own task, with a cancel token and a panic guard.
fn spawn_request(
    tasks: &TaskTracker,
    inflight: &Inflight,
    methods: &Arc<Methods>,
    tx: &mpsc::Sender<Bytes>,
    id: Value,
    method: String,
    params: Value,
) {
    let token = CancellationToken::new();
    let key = id_key(&id);
    let registration = REGISTRATION.fetch_add(1, Ordering::Relaxed);
    inflight
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key.clone(), (registration, token.clone()));
    let span = tracing::info_span!("request", id = %key, method = %method);
    let (inflight, methods, tx) = (inflight.clone(), methods.clone(), tx.clone());
    tasks.spawn(
        async move {
            let handled = AssertUnwindSafe(methods.request(&method, &id, params, &tx, &token))
                .catch_unwind()
                .await;
            let frame = handled.unwrap_or_else(|panic| {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                tracing::error!(panic = %what, "a handler panicked");
                error(
                    &id,
                    code::INTERNAL_ERROR,
                    &format!("internal error while handling {method}; the sidecar keeps running (see its log)"),
                    Some(&json!({"kind": "internal"})),
                )
            });
            {
                let mut map = inflight.lock().unwrap_or_else(|e| e.into_inner());
                // Only remove our own token (a later request may reuse the id).
                if map.get(&key).is_some_and(|(r, _)| *r == registration) {
                    map.remove(&key);
                }
            }
            send(&tx, frame).await;
        }
        .instrument(span),
    );
}
