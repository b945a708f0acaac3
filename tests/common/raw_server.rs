//! `RawServer`: a TCP server on a loopback address whose connections the test drives byte by byte,
//! for faults [`MockLlm`](super::MockLlm) cannot script: a server that accepts and never answers, a
//! reset (RST) after some chunks, a chunk cut short, a body generated lazily without end, TLS, a
//! proxy.
//!
//! Each accepted connection is handed to the test's async handler as a [`Conn`]. The server
//! records every connection, every request read through [`Conn::read_request`] (with its arrival
//! time), the bytes written, and the connections the client closed. Waits are blocking, for tests
//! on plain threads. Only loopback addresses are accepted.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// An HTTP/1.1 request as read from a connection.
#[derive(Clone, Debug)]
pub struct RawRequest {
    /// Position among all requests this server read (0-based).
    pub index: usize,
    /// Index of the connection that carried it.
    pub connection: usize,
    /// When its head and body had been read.
    pub at: Instant,
    pub method: String,
    /// The request target as sent (absolute-form through a proxy, authority-form for CONNECT).
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A latch the test opens from its thread to release a handler waiting in [`Latch::wait`].
#[derive(Clone)]
pub struct Latch(Arc<watch::Sender<bool>>);

impl Latch {
    pub fn new() -> Latch {
        Latch(Arc::new(watch::channel(false).0))
    }

    pub fn open(&self) {
        self.0.send_replace(true);
    }

    pub async fn wait(&self) {
        let mut rx = self.0.subscribe();
        let _ = rx.wait_for(|open| *open).await;
    }
}

impl Default for Latch {
    fn default() -> Self {
        Latch::new()
    }
}

#[derive(Default)]
struct Log {
    connections: usize,
    requests: Vec<RawRequest>,
    /// Connections on which the handler saw the client close (EOF, reset, failed write).
    closed_by_client: usize,
}

struct Shared {
    log: Mutex<Log>,
    changed: Condvar,
    bytes_written: AtomicU64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn update<T>(&self, f: impl FnOnce(&mut Log) -> T) -> T {
        let value = f(&mut self.lock());
        self.changed.notify_all();
        value
    }
}

pub struct RawServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl RawServer {
    /// Starts a server on `127.0.0.1` that runs `handler` for each accepted connection.
    pub fn start<F, Fut>(handler: F) -> RawServer
    where
        F: Fn(Conn) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        RawServer::start_on("127.0.0.1", handler)
    }

    /// Starts a server on the loopback address `ip` (for example `127.0.0.2`).
    pub fn start_on<F, Fut>(ip: &str, handler: F) -> RawServer
    where
        F: Fn(Conn) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let ip: IpAddr = ip.parse().expect("an IP address");
        assert!(ip.is_loopback(), "test servers listen on loopback only");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("raw server runtime");
        let std_listener = std::net::TcpListener::bind((ip, 0)).expect("bind raw server");
        std_listener.set_nonblocking(true).unwrap();
        let addr = std_listener.local_addr().unwrap();
        let listener = {
            let _guard = runtime.enter();
            TcpListener::from_std(std_listener).unwrap()
        };
        let shared = Arc::new(Shared {
            log: Mutex::new(Log::default()),
            changed: Condvar::new(),
            bytes_written: AtomicU64::new(0),
        });
        let accept_shared = Arc::clone(&shared);
        runtime.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let index = accept_shared.update(|log| {
                    log.connections += 1;
                    log.connections - 1
                });
                let conn = Conn {
                    index,
                    stream,
                    buf: Vec::new(),
                    shared: Arc::clone(&accept_shared),
                    closed_noted: false,
                };
                tokio::spawn(handler(conn));
            }
        });
        RawServer {
            addr,
            shared,
            runtime: Some(runtime),
        }
    }

    /// A server that answers every request on a kept-alive connection with `respond(request)`,
    /// which returns the whole response (head and body).
    pub fn http_on(
        ip: &str,
        respond: impl Fn(&RawRequest) -> Vec<u8> + Send + Sync + 'static,
    ) -> RawServer {
        let respond = Arc::new(respond);
        RawServer::start_on(ip, move |mut conn| {
            let respond = Arc::clone(&respond);
            async move {
                while let Some(request) = conn.read_request().await {
                    if !conn.write(&respond(&request)).await {
                        return;
                    }
                }
            }
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr><path>`
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn connections_accepted(&self) -> usize {
        self.shared.lock().connections
    }

    pub fn requests(&self) -> Vec<RawRequest> {
        self.shared.lock().requests.clone()
    }

    /// Total bytes written to clients through [`Conn::write`].
    pub fn bytes_written(&self) -> u64 {
        self.shared.bytes_written.load(Ordering::Relaxed)
    }

    /// Waits until at least `count` requests were read; returns all of them.
    pub fn wait_for_requests(&self, count: usize, timeout: Duration) -> Vec<RawRequest> {
        match self.wait_until(timeout, |log| log.requests.len() >= count) {
            Ok(log) => log.requests.clone(),
            Err(log) => panic!(
                "raw server read {} requests, expected {count}",
                log.requests.len()
            ),
        }
    }

    /// Waits until at least `count` connections were accepted.
    pub fn wait_for_connections(&self, count: usize, timeout: Duration) {
        if let Err(log) = self.wait_until(timeout, |log| log.connections >= count) {
            panic!(
                "raw server accepted {} connections, expected {count}",
                log.connections
            );
        }
    }

    /// Waits until handlers saw the client close at least `count` connections.
    pub fn wait_closed_by_client(&self, count: usize, timeout: Duration) {
        if let Err(log) = self.wait_until(timeout, |log| log.closed_by_client >= count) {
            panic!(
                "the client closed {} connections, expected {count}",
                log.closed_by_client
            );
        }
    }

    fn wait_until(
        &self,
        timeout: Duration,
        done: impl Fn(&Log) -> bool,
    ) -> Result<MutexGuard<'_, Log>, MutexGuard<'_, Log>> {
        super::wait_for_change(self.shared.lock(), &self.shared.changed, timeout, done)
    }
}

impl Drop for RawServer {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// One accepted connection, over TCP or (after [`Conn::upgrade`]) TLS.
pub struct Conn<S = TcpStream> {
    /// Index of this connection among those the server accepted.
    pub index: usize,
    stream: S,
    buf: Vec<u8>,
    shared: Arc<Shared>,
    closed_noted: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    /// Reads the next request (head and `Content-Length` body). `None` when the client closed the
    /// connection or sent something that is not HTTP/1.1.
    pub async fn read_request(&mut self) -> Option<RawRequest> {
        loop {
            match self.parse_buffered() {
                Ok(Some(request)) => return Some(request),
                Ok(None) => {}
                Err(()) => return None,
            }
            let mut chunk = [0u8; 16 * 1024];
            match self.stream.read(&mut chunk).await {
                Ok(0) | Err(_) => {
                    self.note_client_closed();
                    return None;
                }
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    fn parse_buffered(&mut self) -> Result<Option<RawRequest>, ()> {
        let mut header_storage = [httparse::EMPTY_HEADER; 64];
        let mut parsed = httparse::Request::new(&mut header_storage);
        let head_len = match parsed.parse(&self.buf) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(_) => return Err(()),
        };
        let headers: Vec<(String, String)> = parsed
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_owned(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .collect();
        let body_len = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .map_or(0, |(_, v)| v.trim().parse::<usize>().unwrap_or(0));
        if self.buf.len() < head_len + body_len {
            return Ok(None);
        }
        let method = parsed.method.unwrap_or_default().to_owned();
        let target = parsed.path.unwrap_or_default().to_owned();
        let body = self.buf[head_len..head_len + body_len].to_vec();
        self.buf.drain(..head_len + body_len);
        let connection = self.index;
        Ok(Some(self.shared.update(|log| {
            let request = RawRequest {
                index: log.requests.len(),
                connection,
                at: Instant::now(),
                method,
                target,
                headers,
                body,
            };
            log.requests.push(request.clone());
            request
        })))
    }

    /// Writes and flushes `bytes`; false (and the close recorded) when the client is gone.
    pub async fn write(&mut self, bytes: &[u8]) -> bool {
        let written = async {
            self.stream.write_all(bytes).await?;
            self.stream.flush().await
        }
        .await;
        match written {
            Ok(()) => {
                self.shared
                    .bytes_written
                    .fetch_add(bytes.len() as u64, Ordering::Relaxed);
                true
            }
            Err(_) => {
                self.note_client_closed();
                false
            }
        }
    }

    /// Writes a complete response with a `Content-Length` body.
    pub async fn respond(&mut self, status: u16, headers: &[(&str, &str)], body: &[u8]) -> bool {
        self.write(&http_response(status, headers, body)).await
    }

    /// Returns once the client has closed the connection (bytes it sends meanwhile are kept).
    pub async fn wait_closed(&mut self) {
        let mut chunk = [0u8; 4096];
        loop {
            match self.stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
        self.note_client_closed();
    }

    /// Closes the write side (FIN) and waits for the client to close its side.
    pub async fn close(&mut self) {
        let _ = self.stream.shutdown().await;
        self.wait_closed().await;
    }

    /// The underlying stream.
    pub fn stream(&mut self) -> &mut S {
        &mut self.stream
    }

    /// Wraps the stream (e.g. into TLS); what was buffered but not consumed is dropped.
    pub async fn upgrade<T, E, Fut>(self, wrap: impl FnOnce(S) -> Fut) -> Result<Conn<T>, E>
    where
        Fut: Future<Output = Result<T, E>>,
    {
        let stream = wrap(self.stream).await?;
        Ok(Conn {
            index: self.index,
            stream,
            buf: Vec::new(),
            shared: self.shared,
            closed_noted: self.closed_noted,
        })
    }

    fn note_client_closed(&mut self) {
        if !self.closed_noted {
            self.closed_noted = true;
            self.shared.update(|log| log.closed_by_client += 1);
        }
    }
}

impl Conn<TcpStream> {
    /// Aborts the connection with a TCP reset (RST) instead of an orderly close.
    pub fn reset(self) {
        // A zero linger does not block on drop: it makes the close send RST.
        #[allow(deprecated)]
        let _ = self.stream.set_linger(Some(Duration::ZERO));
        drop(self.stream);
    }
}

/// One HTTP/1.1 chunk of `chunked` transfer encoding holding `bytes`.
pub fn http_chunk(bytes: &[u8]) -> Vec<u8> {
    let mut chunk = format!("{:x}\r\n", bytes.len()).into_bytes();
    chunk.extend_from_slice(bytes);
    chunk.extend_from_slice(b"\r\n");
    chunk
}

/// A response head; `length: None` announces `Transfer-Encoding: chunked`.
pub fn response_head(status: u16, headers: &[(&str, &str)], length: Option<u64>) -> Vec<u8> {
    let mut head = format!("HTTP/1.1 {status} Status\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    match length {
        Some(length) => head.push_str(&format!("Content-Length: {length}\r\n")),
        None => head.push_str("Transfer-Encoding: chunked\r\n"),
    }
    head.push_str("\r\n");
    head.into_bytes()
}

/// A whole response with a `Content-Length` body.
pub fn http_response(status: u16, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut bytes = response_head(status, headers, Some(body.len() as u64));
    bytes.extend_from_slice(body);
    bytes
}
