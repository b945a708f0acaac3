//! Self-tests of `MockLlm` over raw TCP, so that a failing product test can trust the bytes its
//! mock sent. These tests do not start the sidecar.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;

use common::*;

fn connect(mock: &MockLlm) -> TcpStream {
    let address = mock.url("").trim_start_matches("http://").to_owned();
    let stream = TcpStream::connect(address).expect("connect to the mock");
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream
}

fn post(stream: &mut TcpStream, path: &str, body: &str) {
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Test: yes\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
}

fn read_exactly(stream: &mut TcpStream, len: usize) -> String {
    let mut buf = vec![0; len];
    stream.read_exact(&mut buf).expect("read the response");
    String::from_utf8(buf).unwrap()
}

#[test]
fn chunked_pieces_are_framed_one_chunk_each_on_a_kept_alive_connection() {
    let mock = MockLlm::start(|request| {
        MockResponse::sse(format!("path {}", request.path))
            .chunked()
            .piece("é")
            .piece("")
    });
    let mut stream = connect(&mock);
    let expected = |path: &str| {
        let first = format!("path {path}");
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n\
             {:x}\r\n{first}\r\n2\r\né\r\n0\r\n\r\n",
            first.len()
        )
    };
    post(&mut stream, "/a", "{\"n\":1}");
    assert_eq!(
        read_exactly(&mut stream, expected("/a").len()),
        expected("/a")
    );
    post(&mut stream, "/b?q=1", "not json");
    assert_eq!(
        read_exactly(&mut stream, expected("/b?q=1").len()),
        expected("/b?q=1")
    );

    let requests = mock.wait_for_requests(2, WAIT);
    assert_eq!(
        mock.connections_accepted(),
        1,
        "both requests on one connection"
    );
    assert_eq!(requests[0].method, "POST");
    assert_eq!(requests[0].path, "/a");
    assert_eq!(requests[0].header("x-test"), Some("yes"));
    assert_eq!(requests[0].json(), &serde_json::json!({"n": 1}));
    assert_eq!(requests[1].json, None);
    assert_eq!(requests[1].body, b"not json");
}

#[test]
fn content_length_responses_announce_the_body_length() {
    let mock = MockLlm::always(MockResponse::json(404, "{\"error\":\"x\"}").piece("\n"));
    let mut stream = connect(&mock);
    post(&mut stream, "/", "");
    let expected = "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n\
                    Content-Length: 14\r\n\r\n{\"error\":\"x\"}\n";
    assert_eq!(read_exactly(&mut stream, expected.len()), expected);
}

#[test]
fn then_close_ends_the_body_early_and_records_a_server_close() {
    let mock = MockLlm::always(MockResponse::sse("data: a\n\n").chunked().then_close());
    let mut stream = connect(&mock);
    post(&mut stream, "/", "");
    let mut received = String::new();
    stream.read_to_string(&mut received).expect("read to EOF");
    assert!(
        received.ends_with("9\r\ndata: a\n\n\r\n"),
        "no terminating chunk: {received:?}"
    );
    mock.wait_for_requests(1, WAIT);
    let connections = mock.connections();
    assert!(
        connections.iter().all(|c| !c.closed_by_client),
        "{connections:?}"
    );
}

#[test]
fn then_hang_waits_until_the_client_closes_and_records_when() {
    let mock = MockLlm::always(MockResponse::sse("data: a\n\n").chunked().then_hang());
    let mut stream = connect(&mock);
    post(&mut stream, "/", "");
    let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\
                Transfer-Encoding: chunked\r\n\r\n9\r\ndata: a\n\n\r\n";
    assert_eq!(read_exactly(&mut stream, head.len()), head);
    let dropped_at = std::time::Instant::now();
    drop(stream);
    let closed_at = mock.wait_client_closed(0, WAIT);
    assert!(
        closed_at >= dropped_at,
        "the close is recorded after it happened"
    );
}
