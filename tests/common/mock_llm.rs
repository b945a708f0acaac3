//! `MockLlm`: a scripted HTTP/1.1 server on 127.0.0.1, written on tokio `TcpListener` + `httparse`
//! so that every byte of every response is under the test's control.
//!
//! A responder closure picks a [`MockResponse`] for each request. A response body is a list of byte
//! pieces, each optionally preceded by a delay or a [`Gate`] the test opens, sent with
//! `Content-Length` or as one HTTP chunk per piece. After the last piece the response can complete,
//! hang until the client goes away, or have its socket closed mid-body.
//!
//! The server records every request and connection (including when the client closed it), and
//! exposes blocking waits for tests that run on plain threads.

use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A request as received, headers in wire order.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    /// Position among all requests this server received (0-based).
    pub index: usize,
    /// Index of the connection that carried it.
    pub connection: usize,
    pub method: String,
    /// The request target as sent, query string included.
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The body parsed as JSON, if it is JSON.
    pub json: Option<Value>,
    /// When the whole request had been read.
    pub received_at: Instant,
}

impl RecordedRequest {
    /// Every value of the header `name` (case-insensitive), in wire order.
    pub fn header_values(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The single value of header `name`; `None` if absent, panics if repeated.
    pub fn header(&self, name: &str) -> Option<&str> {
        let values = self.header_values(name);
        assert!(
            values.len() <= 1,
            "header {name} sent {} times: {values:?}",
            values.len()
        );
        values.first().copied()
    }

    /// The keys of the top-level JSON object of the body, in wire order, duplicates included.
    pub fn top_level_keys(&self) -> Vec<String> {
        let mut de = serde_json::Deserializer::from_slice(&self.body);
        serde::Deserializer::deserialize_map(&mut de, KeysInOrder).unwrap_or_else(|e| {
            panic!(
                "request body is not a JSON object ({e}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The body as JSON; panics if it is not JSON.
    pub fn json(&self) -> &Value {
        self.json.as_ref().unwrap_or_else(|| {
            panic!(
                "request body is not JSON: {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// Collects the keys of a JSON object without building its values.
struct KeysInOrder;

impl<'de> serde::de::Visitor<'de> for KeysInOrder {
    type Value = Vec<String>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Vec<String>, A::Error> {
        let mut keys = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            map.next_value::<serde::de::IgnoredAny>()?;
            keys.push(key);
        }
        Ok(keys)
    }
}

/// What the server knows about one accepted connection.
#[derive(Clone, Debug)]
pub struct ConnectionRecord {
    pub opened_at: Instant,
    /// When the connection ended; `closed_by_client` tells who ended it.
    pub closed_at: Option<Instant>,
    pub closed_by_client: bool,
    pub requests: Vec<usize>,
}

/// A latch the test opens to release gated response pieces. Cloning shares the latch.
#[derive(Clone)]
pub struct Gate(Arc<watch::Sender<bool>>);

impl Gate {
    pub fn new() -> Gate {
        Gate(Arc::new(watch::channel(false).0))
    }

    pub fn open(&self) {
        self.0.send_replace(true);
    }

    async fn wait(&self) {
        let mut rx = self.0.subscribe();
        let _ = rx.wait_for(|open| *open).await;
    }
}

impl Default for Gate {
    fn default() -> Self {
        Gate::new()
    }
}

/// What happens before a piece is written.
#[derive(Clone)]
pub enum Before {
    Nothing,
    Delay(Duration),
    Gate(Gate),
}

#[derive(Clone)]
pub struct Piece {
    pub before: Before,
    pub bytes: Vec<u8>,
}

/// How the body length is announced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// `Content-Length` (for an unfinished ending it announces 1024 bytes more than are sent).
    ContentLength,
    /// `Transfer-Encoding: chunked`, one chunk per non-empty piece.
    Chunked,
}

/// What happens after the last piece.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// The body is finished properly; the connection stays open for the next request.
    Complete,
    /// Nothing more is sent; the server waits until the client closes the connection.
    Hang,
    /// The server closes the socket without finishing the body.
    Close,
}

/// A scripted response.
#[derive(Clone)]
pub struct MockResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub pieces: Vec<Piece>,
    pub framing: Framing,
    pub ending: Ending,
}

impl MockResponse {
    /// A response with no headers and an empty body.
    pub fn new(status: u16) -> MockResponse {
        MockResponse {
            status,
            headers: Vec::new(),
            pieces: Vec::new(),
            framing: Framing::ContentLength,
            ending: Ending::Complete,
        }
    }

    /// 200 `text/event-stream` with `body` as one piece.
    pub fn sse(body: impl AsRef<[u8]>) -> MockResponse {
        MockResponse::new(200)
            .content_type("text/event-stream")
            .piece(body)
    }

    /// `status` `application/json` with `body` as one piece.
    pub fn json(status: u16, body: impl AsRef<[u8]>) -> MockResponse {
        MockResponse::new(status)
            .content_type("application/json")
            .piece(body)
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn content_type(self, value: &str) -> Self {
        self.header("Content-Type", value)
    }

    /// Appends a piece sent right after the previous one.
    pub fn piece(self, bytes: impl AsRef<[u8]>) -> Self {
        self.piece_after(Before::Nothing, bytes)
    }

    /// Appends a piece sent once `before` is satisfied.
    pub fn piece_after(mut self, before: Before, bytes: impl AsRef<[u8]>) -> Self {
        self.pieces.push(Piece {
            before,
            bytes: bytes.as_ref().to_vec(),
        });
        self
    }

    /// Appends several pieces, with `delay` before each one but the first.
    pub fn pieces_with_delay<B: AsRef<[u8]>>(
        mut self,
        pieces: impl IntoIterator<Item = B>,
        delay: Duration,
    ) -> Self {
        for (i, bytes) in pieces.into_iter().enumerate() {
            let before = if i == 0 {
                Before::Nothing
            } else {
                Before::Delay(delay)
            };
            self = self.piece_after(before, bytes);
        }
        self
    }

    pub fn chunked(mut self) -> Self {
        self.framing = Framing::Chunked;
        self
    }

    /// After the pieces, send nothing more and wait for the client to close.
    pub fn then_hang(mut self) -> Self {
        self.ending = Ending::Hang;
        self
    }

    /// After the pieces, close the socket without finishing the body.
    pub fn then_close(mut self) -> Self {
        self.ending = Ending::Close;
        self
    }
}

type Responder = dyn Fn(&RecordedRequest) -> MockResponse + Send + Sync;

pub struct MockLlm {
    addr: SocketAddr,
    shared: Arc<Shared>,
    runtime: Option<tokio::runtime::Runtime>,
}

struct Shared {
    log: Mutex<Log>,
    changed: Condvar,
    responder: Box<Responder>,
}

#[derive(Default)]
struct Log {
    requests: Vec<RecordedRequest>,
    connections: Vec<ConnectionRecord>,
}

impl MockLlm {
    /// Starts a server whose `responder` scripts the response to each request.
    pub fn start(
        responder: impl Fn(&RecordedRequest) -> MockResponse + Send + Sync + 'static,
    ) -> MockLlm {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("mock runtime");
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind mock");
        std_listener.set_nonblocking(true).unwrap();
        let addr = std_listener.local_addr().unwrap();
        let listener = {
            let _guard = runtime.enter();
            TcpListener::from_std(std_listener).unwrap()
        };
        let shared = Arc::new(Shared {
            log: Mutex::new(Log::default()),
            changed: Condvar::new(),
            responder: Box::new(responder),
        });
        runtime.spawn(accept_loop(listener, Arc::clone(&shared)));
        MockLlm {
            addr,
            shared,
            runtime: Some(runtime),
        }
    }

    /// Starts a server that gives every request the same response.
    pub fn always(response: MockResponse) -> MockLlm {
        MockLlm::start(move |_| response.clone())
    }

    /// `http://127.0.0.1:<port><path>`
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.log().requests.clone()
    }

    pub fn connections(&self) -> Vec<ConnectionRecord> {
        self.log().connections.clone()
    }

    pub fn connections_accepted(&self) -> usize {
        self.log().connections.len()
    }

    /// Waits until at least `count` requests have arrived and returns all of them.
    pub fn wait_for_requests(&self, count: usize, timeout: Duration) -> Vec<RecordedRequest> {
        let received = match self.wait_until(timeout, |log| log.requests.len() >= count) {
            Ok(log) => return log.requests.clone(),
            Err(log) => log.requests.len(),
        };
        panic!("mock received {received} requests, expected {count}");
    }

    /// Waits for exactly one request and returns it.
    pub fn single_request(&self) -> RecordedRequest {
        let requests = self.wait_for_requests(1, super::WAIT);
        assert_eq!(requests.len(), 1, "expected exactly one request");
        requests.into_iter().next().unwrap()
    }

    /// Waits until the client has closed the connection that carried request `index`, and returns
    /// when the server noticed it.
    pub fn wait_client_closed(&self, index: usize, timeout: Duration) -> Instant {
        let closed = |log: &Log| {
            let connection = log.requests.get(index)?.connection;
            let record = &log.connections[connection];
            record.closed_at.filter(|_| record.closed_by_client)
        };
        if let Ok(log) = self.wait_until(timeout, |log| closed(log).is_some()) {
            return closed(&log).unwrap();
        }
        panic!("the client did not close the connection of request {index}");
    }

    fn log(&self) -> MutexGuard<'_, Log> {
        self.shared.lock()
    }

    /// Waits until `done(log)`; `Err` carries the log after the timeout.
    fn wait_until(
        &self,
        timeout: Duration,
        done: impl Fn(&Log) -> bool,
    ) -> Result<MutexGuard<'_, Log>, MutexGuard<'_, Log>> {
        super::wait_for_change(self.log(), &self.shared.changed, timeout, done)
    }
}

impl Drop for MockLlm {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Shared {
    /// Locks the log; a test that panicked while holding it must not take the server down.
    fn lock(&self) -> MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn update<T>(&self, f: impl FnOnce(&mut Log) -> T) -> T {
        let value = f(&mut self.lock());
        self.changed.notify_all();
        value
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let id = shared.update(|log| {
            log.connections.push(ConnectionRecord {
                opened_at: Instant::now(),
                closed_at: None,
                closed_by_client: false,
                requests: Vec::new(),
            });
            log.connections.len() - 1
        });
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let mut conn = Connection {
                stream,
                buf: Vec::new(),
            };
            let closed_by_client = serve(&mut conn, id, &shared).await;
            shared.update(|log| {
                let record = &mut log.connections[id];
                record.closed_at = Some(Instant::now());
                record.closed_by_client = closed_by_client;
            });
        });
    }
}

/// Why a connection ended.
enum End {
    /// The client closed it (or it broke).
    Client,
    /// The script closed it.
    Server,
}

/// Serves requests on one connection until it ends; returns true if the client ended it.
async fn serve(conn: &mut Connection, id: usize, shared: &Shared) -> bool {
    loop {
        let request = match conn.read_request().await {
            Ok(Some(request)) => request,
            Ok(None) => return true,
            Err(problem) => {
                let body = format!("MockLlm could not read the request: {problem}");
                let _ = conn.write(&response_head(400, &[], Some(body.len()))).await;
                let _ = conn.write(body.as_bytes()).await;
                return false;
            }
        };
        let recorded = shared.update(|log| {
            let index = log.requests.len();
            log.connections[id].requests.push(index);
            let recorded = RecordedRequest {
                index,
                connection: id,
                json: serde_json::from_slice(&request.body).ok(),
                method: request.method,
                path: request.path,
                headers: request.headers,
                body: request.body,
                received_at: Instant::now(),
            };
            log.requests.push(recorded.clone());
            recorded
        });
        let response = (shared.responder)(&recorded);
        match send_response(conn, &response).await {
            Ok(()) => {}
            Err(End::Client) => return true,
            Err(End::Server) => return false,
        }
    }
}

async fn send_response(conn: &mut Connection, response: &MockResponse) -> Result<(), End> {
    let sent: usize = response.pieces.iter().map(|p| p.bytes.len()).sum();
    let length = match (response.framing, response.ending) {
        (Framing::Chunked, _) => None,
        (Framing::ContentLength, Ending::Complete) => Some(sent),
        (Framing::ContentLength, _) => Some(sent + 1024),
    };
    conn.write(&response_head(response.status, &response.headers, length))
        .await?;
    for piece in &response.pieces {
        match &piece.before {
            Before::Nothing => {}
            Before::Delay(delay) => conn.unless_closed(tokio::time::sleep(*delay)).await?,
            Before::Gate(gate) => conn.unless_closed(gate.wait()).await?,
        }
        match response.framing {
            Framing::ContentLength => conn.write(&piece.bytes).await?,
            Framing::Chunked if piece.bytes.is_empty() => {}
            Framing::Chunked => {
                let mut chunk = format!("{:x}\r\n", piece.bytes.len()).into_bytes();
                chunk.extend_from_slice(&piece.bytes);
                chunk.extend_from_slice(b"\r\n");
                conn.write(&chunk).await?;
            }
        }
    }
    match response.ending {
        Ending::Complete if response.framing == Framing::Chunked => conn.write(b"0\r\n\r\n").await,
        Ending::Complete => Ok(()),
        Ending::Hang => {
            conn.wait_closed().await;
            Err(End::Client)
        }
        Ending::Close => {
            let _ = conn.stream.shutdown().await;
            Err(End::Server)
        }
    }
}

fn response_head(status: u16, headers: &[(String, String)], length: Option<usize>) -> Vec<u8> {
    let mut head = format!("HTTP/1.1 {status} {}\r\n", reason_phrase(status));
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

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

struct ParsedRequest {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// A socket plus the bytes read from it but not yet consumed.
struct Connection {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Connection {
    /// Reads the next request. `Ok(None)` means the client closed the connection between requests.
    async fn read_request(&mut self) -> Result<Option<ParsedRequest>, String> {
        loop {
            if let Some(request) = self.parse_buffered()? {
                return Ok(Some(request));
            }
            let mut chunk = [0u8; 16 * 1024];
            match self.stream.read(&mut chunk).await {
                Ok(0) | Err(_) if self.buf.is_empty() => return Ok(None),
                Ok(0) => return Err("connection closed inside a request".into()),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) => return Err(format!("read error: {e}")),
            }
        }
    }

    /// Takes one complete request off the buffer, if there is one.
    fn parse_buffered(&mut self) -> Result<Option<ParsedRequest>, String> {
        let mut header_storage = [httparse::EMPTY_HEADER; 64];
        let mut parsed = httparse::Request::new(&mut header_storage);
        let head_len = match parsed.parse(&self.buf) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(e) => return Err(format!("bad request head: {e}")),
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
        let header = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.trim())
        };
        if header("transfer-encoding").is_some() {
            return Err("chunked request bodies are not supported".into());
        }
        let body_len = match header("content-length") {
            Some(value) => value
                .parse::<usize>()
                .map_err(|_| format!("bad Content-Length {value:?}"))?,
            None => 0,
        };
        if self.buf.len() < head_len + body_len {
            return Ok(None);
        }
        let request = ParsedRequest {
            method: parsed.method.unwrap_or_default().to_owned(),
            path: parsed.path.unwrap_or_default().to_owned(),
            body: self.buf[head_len..head_len + body_len].to_vec(),
            headers,
        };
        self.buf.drain(..head_len + body_len);
        Ok(Some(request))
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), End> {
        let result = async {
            self.stream.write_all(bytes).await?;
            self.stream.flush().await
        };
        result.await.map_err(|_| End::Client)
    }

    /// Runs `wait`, unless the client closes the connection first.
    async fn unless_closed(&mut self, wait: impl Future<Output = ()>) -> Result<(), End> {
        tokio::select! {
            () = wait => Ok(()),
            () = self.wait_closed() => Err(End::Client),
        }
    }

    /// Returns once the client has closed the connection; bytes it sends meanwhile are kept.
    async fn wait_closed(&mut self) {
        let mut chunk = [0u8; 4096];
        loop {
            match self.stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }
}
