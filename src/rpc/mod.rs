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
/// writes (the header ends in a newline), each on a thread of tokio's blocking
/// pool. When stdout is a pipe or a socket (as when an editor spawns the sidecar) it is
/// written in non-blocking mode straight from the writer task, with no thread
/// hand-over per write. Otherwise (a file, a terminal, or a pipe shared with
/// stderr, whose log writes must keep blocking) frames go to a duplicate of the
/// file descriptor through tokio's blocking pool, still one write per batch.
pub fn stdout() -> Box<dyn AsyncWrite + Send + Unpin> {
    let fd = match std::io::stdout().as_fd().try_clone_to_owned() {
        Ok(fd) => fd,
        Err(e) => {
            tracing::warn!(error = %e, "cannot duplicate stdout; writing through the buffered handle");
            return Box::new(tokio::io::stdout());
        }
    };
    match own_stream(&fd) {
        Some(Stream::Pipe) => match fd.try_clone() {
            Ok(dup) => match tokio::net::unix::pipe::Sender::from_owned_fd(dup) {
                Ok(pipe) => return Box::new(pipe),
                Err(e) => tracing::debug!(error = %e, "stdout cannot be written non-blocking"),
            },
            Err(e) => tracing::debug!(error = %e, "cannot duplicate stdout"),
        },
        // Node's child_process (VS Code) gives its children socket pairs, not pipes.
        Some(Stream::Socket) => {
            let socket = fd.try_clone().and_then(|dup| {
                let socket = std::os::unix::net::UnixStream::from(dup);
                socket.set_nonblocking(true)?;
                tokio::net::UnixStream::from_std(socket)
            });
            match socket {
                Ok(socket) => return Box::new(socket),
                Err(e) => tracing::debug!(error = %e, "stdout cannot be written non-blocking"),
            }
        }
        None => {}
    }
    Box::new(tokio::fs::File::from_std(std::fs::File::from(fd)))
}

enum Stream {
    Pipe,
    Socket,
}

/// What `fd` is when it is a pipe or a socket that stderr does not also write
/// to (setting `O_NONBLOCK` on it changes the open file, which a shared stderr
/// would see).
fn own_stream(fd: &std::os::fd::OwnedFd) -> Option<Stream> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let meta = |fd: std::os::fd::BorrowedFd<'_>| {
        fd.try_clone_to_owned()
            .ok()
            .and_then(|fd| std::fs::File::from(fd).metadata().ok())
    };
    let out = meta(fd.as_fd())?;
    let stream = if out.file_type().is_fifo() {
        Stream::Pipe
    } else if out.file_type().is_socket() {
        Stream::Socket
    } else {
        return None;
    };
    match meta(std::io::stderr().as_fd()) {
        Some(err) if (err.dev(), err.ino()) == (out.dev(), out.ino()) => None,
        _ => Some(stream),
    }
}
