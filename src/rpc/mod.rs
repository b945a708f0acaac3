//! JSON-RPC 2.0 over stdio: framing ([`frame`]), messages ([`message`]), the
//! server loop with its single ordered writer and cancellation ([`server`]),
//! and the methods ([`methods`]).
//!
//! Hand-written on purpose: the ready-made LSP frameworks write notifications
//! and responses through separate queues (a response can overtake its last
//! chunk), answer `$/cancelRequest` themselves without the partial text, cap
//! concurrent handlers, and log whole frames, secrets included.

pub mod frame;
pub mod message;
pub mod methods;
pub mod server;

pub use server::{Exit, serve};

use std::os::fd::AsFd;

use tokio::io::AsyncWrite;

/// The process's stdout for frames, unbuffered.
///
/// `tokio::io::stdout()` writes through the standard library's line-buffered
/// stdout, which sends a frame's `Content-Length` line and its body in two
/// writes (the header ends in a newline). Writing to a duplicate of the file
/// descriptor sends each flushed batch of frames in one write.
pub fn stdout() -> Box<dyn AsyncWrite + Send + Unpin> {
    match std::io::stdout().as_fd().try_clone_to_owned() {
        Ok(fd) => Box::new(tokio::fs::File::from_std(std::fs::File::from(fd))),
        Err(e) => {
            tracing::warn!(error = %e, "cannot duplicate stdout; writing through the buffered handle");
            Box::new(tokio::io::stdout())
        }
    }
}
