//! The process's stdout as the frame writer sees it: written without waiting
//! on a runtime thread, and without changing the mode of anything the process
//! inherited.
//!
//! `O_NONBLOCK` belongs to an open file description, which an inherited
//! descriptor shares with the parent and its other children, and with stdin
//! when one socket is both (socat, inetd, systemd socket activation): setting
//! it there would make their blocking reads fail with `EAGAIN`. So:
//!
//! - a pipe is opened again through `/proc/self/fd` (Linux), which gives the
//!   sidecar a description of its own, non-blocking;
//! - a socket (Node's `child_process`, as VS Code uses, gives socket pairs;
//!   socket activation gives one socket for both directions) keeps its mode,
//!   and each write asks not to wait (`MSG_DONTWAIT`), readiness coming from
//!   the runtime's reactor;
//! - anything else (a file, a terminal, a pipe without `/proc`) is written
//!   through a duplicate of the descriptor on tokio's blocking pool.
//!
//! Each is one write per batch of frames; `tokio::io::stdout()` is not used
//! because its line buffering splits a frame into two writes.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncWrite, Interest};

/// The writer for frames on stdout.
pub fn stdout() -> Box<dyn AsyncWrite + Send + Unpin> {
    let fd = match io::stdout().as_fd().try_clone_to_owned() {
        Ok(fd) => fd,
        Err(e) => {
            tracing::warn!(error = %e, "cannot duplicate stdout; writing through the buffered handle");
            return Box::new(tokio::io::stdout());
        }
    };
    match kind(&fd) {
        Some(Kind::Pipe) => {
            let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
            match tokio::net::unix::pipe::OpenOptions::new().open_sender(&path) {
                Ok(pipe) => return Box::new(pipe),
                Err(e) => {
                    tracing::debug!(error = %e, "cannot open stdout's pipe again; writing it on the blocking pool")
                }
            }
        }
        Some(Kind::Socket) => match fd.try_clone().and_then(SocketWriter::new) {
            Ok(socket) => return Box::new(socket),
            Err(e) => {
                tracing::debug!(error = %e, "stdout's socket cannot be polled; writing it on the blocking pool")
            }
        },
        None => {}
    }
    Box::new(tokio::fs::File::from_std(std::fs::File::from(fd)))
}

enum Kind {
    Pipe,
    Socket,
}

fn kind(fd: &OwnedFd) -> Option<Kind> {
    use std::os::unix::fs::FileTypeExt;
    let meta = std::fs::File::from(fd.try_clone().ok()?).metadata().ok()?;
    let file_type = meta.file_type();
    if file_type.is_fifo() {
        Some(Kind::Pipe)
    } else if file_type.is_socket() {
        Some(Kind::Socket)
    } else {
        None
    }
}

/// A socket written with `MSG_DONTWAIT`: never blocks, never changes the
/// socket's mode.
struct SocketWriter(AsyncFd<OwnedFd>);

impl SocketWriter {
    fn new(fd: OwnedFd) -> io::Result<SocketWriter> {
        // SAFETY: an `OwnedFd` is open and stays the same descriptor until
        // the `AsyncFd` that owns it is dropped.
        let registered = unsafe { AsyncFd::register_with_interest(fd, Interest::WRITABLE) };
        registered.map(SocketWriter).map_err(io::Error::from)
    }
}

/// One `send` that returns `WouldBlock` instead of waiting.
fn send_now(fd: &OwnedFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for `buf.len()` bytes and `fd` is an open socket
    // for the duration of the call.
    let n = unsafe {
        libc::send(
            fd.as_raw_fd(),
            buf.as_ptr().cast(),
            buf.len(),
            libc::MSG_DONTWAIT,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

impl AsyncWrite for SocketWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            let mut ready = ready!(self.0.poll_write_ready(cx))?;
            match ready.try_io(|fd| send_now(fd.get_ref(), buf)) {
                Ok(sent) => return Poll::Ready(sent),
                // Not writable after all: readiness was cleared; wait again.
                Err(_would_block) => continue,
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
