//! When the connection of one request is ready, so `timeouts.firstByteMs`
//! counts from then, exactly.
//!
//! The HTTP client makes connections inside its pool, out of the engine's
//! sight. [`MarkConnectLayer`], a layer on the client's connector, reports
//! each connection it makes to the [`ConnectWatch`] of the request that
//! asked for it: the request runs inside [`ConnectWatch::watch`], which sets
//! a task-local the connector reads when the pool calls it (the pool calls
//! it on the request's own task). A request served by a pooled connection
//! sees no connect at all; its first byte counts from the send.
//!
//! While a connect is under way no first-byte limit runs: the client's own
//! connect timeout ends a stalled one, reported as phase `connect`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use tower_layer::Layer;
use tower_service::Service;

/// The connect phase of one request, as the connector reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct ConnectState {
    /// Connects started for this request and not yet over.
    pub connecting: usize,
    /// When the last of them succeeded.
    pub ready_at: Option<Instant>,
}

/// One request's view of the connects made for it.
#[derive(Debug, Clone)]
pub(super) struct ConnectWatch {
    state: Arc<watch::Sender<ConnectState>>,
}

tokio::task_local! {
    /// The watch of the request running on this task.
    static CURRENT: ConnectWatch;
}

impl ConnectWatch {
    pub(super) fn new() -> Self {
        ConnectWatch {
            state: Arc::new(watch::Sender::new(ConnectState::default())),
        }
    }

    /// Runs `request` with the connects it makes reported to this watch.
    pub(super) async fn watch<F: Future>(&self, request: F) -> F::Output {
        CURRENT.scope(self.clone(), request).await
    }

    /// Follows the state as it changes.
    pub(super) fn subscribe(&self) -> watch::Receiver<ConnectState> {
        self.state.subscribe()
    }

    fn started(&self) {
        self.state.send_modify(|s| s.connecting += 1);
    }

    fn ended(&self, ready: bool) {
        self.state.send_modify(|s| {
            s.connecting = s.connecting.saturating_sub(1);
            if ready {
                s.ready_at = Some(Instant::now());
            }
        });
    }
}

/// The first-byte limit passed before the response head arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FirstByteElapsed;

/// Sends `request` and waits for its response head, at most `first_byte`
/// from when its connection is ready: the send for a pooled connection, the
/// end of the connect (TLS and proxy tunnel included) for a new one. While a
/// connect is under way no limit runs here: the client's connect timeout
/// ends a stalled one (an error of phase `connect`).
pub(super) async fn response_head(
    request: reqwest::RequestBuilder,
    first_byte: Duration,
) -> Result<Result<reqwest::Response, reqwest::Error>, FirstByteElapsed> {
    let watch = ConnectWatch::new();
    let mut connects = watch.subscribe();
    let sent = watch.watch(request.send());
    tokio::pin!(sent);
    let sent_at = Instant::now();
    loop {
        let state = *connects.borrow_and_update();
        let limit = (state.connecting == 0).then(|| state.ready_at.unwrap_or(sent_at) + first_byte);
        tokio::select! {
            biased;
            response = &mut sent => return Ok(response),
            _ = super::until(limit) => return Err(FirstByteElapsed),
            // A connect started or ended: the limit is computed again.
            Ok(()) = connects.changed() => {}
        }
    }
}

/// The connector layer that reports connects to the current request's watch.
#[derive(Debug, Clone, Copy, Default)]
pub struct MarkConnectLayer;

/// The connector wrapped by [`MarkConnectLayer`].
#[derive(Debug, Clone)]
pub struct MarkConnect<S> {
    inner: S,
}

impl<S> Layer<S> for MarkConnectLayer {
    type Service = MarkConnect<S>;

    fn layer(&self, inner: S) -> MarkConnect<S> {
        MarkConnect { inner }
    }
}

/// Ends the connect in the watch however the connect future ends (dropped
/// included).
struct Ending(Option<ConnectWatch>);

impl Drop for Ending {
    fn drop(&mut self) {
        if let Some(watch) = self.0.take() {
            watch.ended(false);
        }
    }
}

impl<S, R> Service<R> for MarkConnect<S>
where
    S: Service<R>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        let watch = CURRENT.try_with(ConnectWatch::clone).ok();
        if let Some(watch) = &watch {
            watch.started();
        }
        let mut ending = Ending(watch);
        let connecting = self.inner.call(request);
        Box::pin(async move {
            let result = connecting.await;
            if let Some(watch) = ending.0.take() {
                watch.ended(result.is_ok());
            }
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A connector that succeeds or fails at once.
    #[derive(Clone)]
    struct Immediate(bool);

    impl Service<()> for Immediate {
        type Response = ();
        type Error = ();
        type Future = std::future::Ready<Result<(), ()>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), ()>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _: ()) -> Self::Future {
            std::future::ready(if self.0 { Ok(()) } else { Err(()) })
        }
    }

    #[tokio::test]
    async fn connects_are_reported_to_the_request_that_made_them() {
        let watch = ConnectWatch::new();
        let rx = watch.subscribe();
        let mut ok = MarkConnectLayer.layer(Immediate(true));
        let mut failing = MarkConnectLayer.layer(Immediate(false));
        // Outside any request: nothing to report to, nothing breaks.
        ok.call(()).await.unwrap();
        assert_eq!(*rx.borrow(), ConnectState::default());
        watch.watch(failing.call(())).await.unwrap_err();
        assert_eq!(rx.borrow().connecting, 0);
        assert_eq!(rx.borrow().ready_at, None);
        let pending = CURRENT.sync_scope(watch.clone(), || ok.call(()));
        assert_eq!(rx.borrow().connecting, 1, "counted from the call");
        pending.await.unwrap();
        assert_eq!(rx.borrow().connecting, 0);
        assert!(rx.borrow().ready_at.is_some());
        // A connect dropped before it ended is over too.
        let dropped = CURRENT.sync_scope(watch.clone(), || ok.call(()));
        assert_eq!(rx.borrow().connecting, 1);
        drop(dropped);
        assert_eq!(rx.borrow().connecting, 0);
    }
}
