//! The stdio JSON-RPC server loop: read frames, dispatch, write in order.
//!
//! - One reader: frames from stdin, dispatched in arrival order. Lifecycle
//!   methods and `$/cancelRequest` are handled inline; every other request
//!   runs as its own task, with no cap on how many are in flight.
//! - One writer task fed by one queue ([`Outbox`]): every frame (chunk
//!   notifications and responses alike) goes through it, so a request's
//!   chunks, queued by its task before the task queues the response, are
//!   always on stdout first. Queuing never waits for stdout (see the outbox
//!   for the back-pressure rule): a client that stops reading does not stall
//!   the reading of stdin, `$/cancelRequest` or the engine's timeouts.
//! - At the end (EOF, `exit`, stdout gone) running requests are cancelled and
//!   get [`END_GRACE`] to answer; one that has not answered by then is
//!   answered `-32800` for it, so every request is still answered once.
//! - Cancel is ours: each running request has a `CancellationToken`; the
//!   handler sees it and answers with the text produced so far.
//! - Ids are typed ([`RequestId`]); an id still in flight cannot be reused
//!   (the new request is refused, the running one goes on, still
//!   cancellable), and every request is answered exactly once. A frame that
//!   is not JSON is answered to its id when the id can still be read.
//! - A panicking handler is caught and answered with an internal error; the
//!   process keeps serving.
//! - stdout gone (the editor crashed or closed the pipe) ends everything: the
//!   first failed write cancels every running request, closing its upstream
//!   connection so no more tokens are spent for nobody, and the process exits
//!   with [`Exit::OutputClosed`].

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use super::frame::{Frame, FrameCodec};
use super::message::{self, Incoming, RequestId, code, error, response};
use super::methods::{self, Methods};
use super::outbox::Outbox;

/// How the server loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// stdin closed.
    Eof,
    /// `exit` after `shutdown`.
    Clean,
    /// `exit` without `shutdown` (LSP: exit code 1).
    WithoutShutdown,
    /// Writing to stdout failed: nobody reads the answers any more.
    OutputClosed,
}

impl Exit {
    pub fn code(self) -> i32 {
        match self {
            Exit::Eof | Exit::Clean => 0,
            Exit::WithoutShutdown => 1,
            Exit::OutputClosed => 2,
        }
    }
}

/// The most frames gathered into one write.
const BATCH_FRAMES: usize = 1024;
/// The write buffer is kept between writes up to this size.
const KEEP_BATCH_BYTES: usize = 256 * 1024;
/// How long in-flight requests, then the writer, get to finish at the end.
const END_GRACE: Duration = Duration::from_secs(2);

/// Running requests by id.
type Inflight = Arc<Mutex<HashMap<RequestId, CancellationToken>>>;

/// Serves JSON-RPC on `input`/`output` until EOF or `exit`.
pub async fn serve<R, W>(input: R, output: W) -> Exit
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let out = Outbox::new();
    let output_gone = CancellationToken::new();
    let writer = tokio::spawn(write_frames(out.clone(), output, output_gone.clone()));
    let methods = Arc::new(Methods::new());
    let inflight: Inflight = Arc::default();
    let tasks = TaskTracker::new();
    let mut reader = FramedRead::new(input, FrameCodec::default());
    let mut shutdown = false;

    let exit = loop {
        let next = tokio::select! {
            biased;
            _ = output_gone.cancelled() => break Exit::OutputClosed,
            next = reader.next() => next,
        };
        let frame = match next {
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
                out.send(error(&Value::Null, code::INVALID_REQUEST, &message, None));
                continue;
            }
            Frame::BadHeader { detail } => {
                tracing::warn!(%detail, "bad frame header");
                out.send(error(
                    &Value::Null,
                    code::PARSE_ERROR,
                    &format!("bad frame header: {detail}"),
                    None,
                ));
                continue;
            }
        };
        let value = match message::parse(&body) {
            Ok(value) => value,
            Err(failure) => {
                tracing::warn!(detail = %failure.detail, "a frame is not valid JSON");
                let frame = error(&failure.id, code::PARSE_ERROR, &failure.detail, None);
                out.send(frame);
                continue;
            }
        };
        match Incoming::from_value(value) {
            Incoming::Request {
                id: request_id,
                method,
                params,
            } => {
                let id = request_id.to_value();
                if shutdown {
                    out.send(error(
                        &id,
                        code::INVALID_REQUEST,
                        "the server is shutting down",
                        None,
                    ));
                    continue;
                }
                match method.as_str() {
                    "initialize" => out.send(response(&id, &methods.initialize(&params))),
                    "shutdown" => {
                        shutdown = true;
                        out.send(response(&id, &Value::Null));
                    }
                    _ if methods::is_known(&method) => {
                        let in_use = inflight
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .contains_key(&request_id);
                        if in_use {
                            tracing::warn!(id = %request_id, "refusing a request whose id is still in flight");
                            let message = format!(
                                "request id {request_id} is already in use by a request that is still running; use a new id"
                            );
                            out.send(error(&id, code::INVALID_REQUEST, &message, None));
                            continue;
                        }
                        methods.arrived(&request_id, &method, &params);
                        spawn_request(
                            &tasks, &inflight, &methods, &out, request_id, method, params,
                        );
                    }
                    _ => {
                        let message = format!("unknown method `{method}`");
                        out.send(error(&id, code::METHOD_NOT_FOUND, &message, None));
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
                other => methods.notification(other, &params, &out).await,
            },
            Incoming::Response => {}
            Incoming::Invalid { id, reason } => {
                out.send(error(&id, code::INVALID_REQUEST, &reason, None));
            }
        }
    };

    // Whichever way it ended: running requests are cancelled (each answers
    // with its partial text), then everything queued is written out.
    for token in inflight.lock().unwrap_or_else(|e| e.into_inner()).values() {
        token.cancel();
    }
    tasks.close();
    if tokio::time::timeout(END_GRACE, tasks.wait()).await.is_err() {
        answer_unfinished(&inflight, &out);
    }
    out.close();
    drop(methods);
    if exit != Exit::OutputClosed {
        let _ = tokio::time::timeout(END_GRACE, writer).await;
    }
    exit
}

/// The only code that writes to the output. A failed write discards the
/// outbox (what is queued after that is dropped) and cancels `output_gone`.
///
/// Whatever is queued when the writer wakes (often every chunk of one read
/// from the server) goes out in one write; it never waits for more.
async fn write_frames<W: AsyncWrite + Unpin>(
    out: Outbox,
    mut output: W,
    output_gone: CancellationToken,
) {
    let mut entries = Vec::with_capacity(BATCH_FRAMES);
    let mut batch = Vec::new();
    while out.take(&mut entries, BATCH_FRAMES).await {
        batch.clear();
        for entry in entries.drain(..) {
            entry.encode_into(&mut batch);
        }
        let written = match output.write_all(&batch).await {
            Ok(()) => output.flush().await,
            Err(e) => Err(e),
        };
        if let Err(e) = written {
            tracing::error!(error = %e, "cannot write to stdout (the client closed it); cancelling every request and exiting");
            out.discard();
            output_gone.cancel();
            break;
        }
        if batch.capacity() > KEEP_BATCH_BYTES {
            // A huge response went out: do not keep its buffer.
            batch = Vec::new();
        }
    }
}

/// When the last running request has ended: gives the memory the allocator
/// keeps for reuse back to the system, so a burst of streams does not leave
/// the process larger than it was idle (glibc keeps freed memory otherwise).
fn release_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// At the end, requests still running after the grace period (a handler
/// that does not see its cancel, such as one stuck in a blocking call) are
/// answered for: `-32800`, once, and their own answer, if it ever comes, is
/// not sent.
fn answer_unfinished(inflight: &Inflight, out: &Outbox) {
    let unfinished: Vec<RequestId> = inflight
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .drain()
        .map(|(id, _)| id)
        .collect();
    for id in unfinished {
        tracing::warn!(%id, grace_ms = END_GRACE.as_millis() as u64, "a request did not stop in time; answering it as cancelled");
        let message = format!(
            "the request was cancelled because the server is exiting, and did not stop within {} s",
            END_GRACE.as_secs()
        );
        out.send(error(
            &id.to_value(),
            code::REQUEST_CANCELLED,
            &message,
            Some(&json!({"kind": "cancelled", "partialText": "", "unfinished": true})),
        ));
    }
}

fn cancel(inflight: &Inflight, params: &Value) {
    let Some(id) = params
        .get("id")
        .and_then(|id| RequestId::from_value(id).ok())
    else {
        tracing::debug!("$/cancelRequest without a usable id");
        return;
    };
    let map = inflight.lock().unwrap_or_else(|e| e.into_inner());
    match map.get(&id) {
        Some(token) => {
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
    out: &Outbox,
    key: RequestId,
    method: String,
    params: Value,
) {
    let token = CancellationToken::new();
    let id = key.to_value();
    inflight
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key.clone(), token.clone());
    let span = tracing::info_span!("request", id = %key, method = %method);
    let (inflight, methods, out) = (inflight.clone(), methods.clone(), out.clone());
    tasks.spawn(
        async move {
            let handled = AssertUnwindSafe(methods.request(&method, &id, params, &out, &token))
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
            // The id is free again once its answer is on its way. Not in the
            // map any more: the server ended and answered for it already.
            let (answer, idle) = {
                let mut map = inflight.lock().unwrap_or_else(|e| e.into_inner());
                (map.remove(&key).is_some(), map.is_empty())
            };
            if answer {
                out.send(frame);
            }
            if idle {
                release_memory();
            }
        }
        .instrument(span),
    );
}
