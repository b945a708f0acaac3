//! Soak (ignored by default): 10 000 sequential completions, then 256 concurrent ones, against a
//! local server; the sidecar's open file descriptors and resident memory afterwards must equal
//! those before within a small margin.
//!
//! Run it with `cargo test --release --test soak -- --ignored --nocapture`; it prints the numbers.
//!
//! "Before" is measured after a warm-up (the same workload in small) against another server, once
//! that server is gone, so that lazily built state (the HTTP client, the runtime's threads, the
//! allocator's arenas) is in place. "After" is measured the same way: the load server is stopped
//! first, so its idle kept-alive connections (which a pool legitimately holds for a while) are
//! closed by the server and must then be released by the sidecar.

mod common;

use std::time::{Duration, Instant};

use common::procfs::{fd_count, socket_count, spawn_tracked, thread_count, vm_rss_kib};
use common::*;
use serde_json::json;

const SEQUENTIAL: usize = 10_000;
const CONCURRENT: usize = 256;

/// Allowed growth of the descriptor count.
const FD_MARGIN: usize = 2;
/// Allowed growth of resident memory: 4 MiB plus 10 %.
const RSS_MARGIN_KIB: u64 = 4 * 1024;
const RSS_MARGIN_PERCENT: u64 = 10;

#[derive(Clone, Copy, Debug)]
struct Snapshot {
    fds: usize,
    sockets: usize,
    rss_kib: u64,
    threads: u64,
}

impl Snapshot {
    fn take(pid: u32) -> Snapshot {
        Snapshot {
            fds: fd_count(pid),
            sockets: socket_count(pid),
            rss_kib: vm_rss_kib(pid),
            threads: thread_count(pid),
        }
    }
}

impl std::fmt::Display for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "fds {} (sockets {}), VmRSS {} KiB ({:.1} MiB), threads {}",
            self.fds,
            self.sockets,
            self.rss_kib,
            self.rss_kib as f64 / 1024.0,
            self.threads
        )
    }
}

/// The load server: a short OpenAI stream, chunked, for `/<n>`.
fn load_server() -> MockLlm {
    MockLlm::start(|request| {
        let n = request.path.trim_start_matches('/');
        MockResponse::new(200)
            .content_type("text/event-stream")
            .chunked()
            .piece(sse_event(&openai_delta("answer ")))
            .piece(sse_event(&openai_delta(n)))
            .piece(sse_event("[DONE]"))
    })
}

fn params(server: &MockLlm, n: usize) -> serde_json::Value {
    Settings::sse(server.url(&format!("/{n}")), DELTA_PATH)
        .params()
        .stream_id(format!("s{n}"))
        .build()
}

fn sequential(sidecar: &mut Sidecar, server: &MockLlm, count: usize, report: bool) {
    for n in 0..count {
        let reply = sidecar.complete(params(server, n));
        assert_eq!(
            reply.result()["text"],
            json!(format!("answer {n}")),
            "completion {n}"
        );
        if report && (n + 1) % 2000 == 0 {
            println!("  {} sequential completions done", n + 1);
        }
    }
}

fn concurrent(sidecar: &mut Sidecar, server: &MockLlm, count: usize) {
    let ids: Vec<_> = (0..count)
        .map(|n| sidecar.request("llm/complete", params(server, n)))
        .collect();
    for (n, id) in ids.iter().enumerate() {
        let reply = sidecar.wait_response(id, WAIT);
        assert_eq!(
            reply.result()["text"],
            json!(format!("answer {n}")),
            "concurrent completion {n}"
        );
    }
}

/// Waits until the descriptor count stops changing (the sidecar noticed the closed connections),
/// at most 20 s, then takes a snapshot.
fn settled(pid: u32) -> Snapshot {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last = fd_count(pid);
    let mut stable_since = Instant::now();
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        let now = fd_count(pid);
        if now != last {
            last = now;
            stable_since = Instant::now();
        } else if stable_since.elapsed() >= Duration::from_secs(1) {
            break;
        }
    }
    Snapshot::take(pid)
}

#[test]
#[ignore = "soak test: cargo test --release --test soak -- --ignored --nocapture"]
fn soak_sequential_then_concurrent_completions_leak_no_descriptors_or_memory() {
    let (mut sidecar, pid) = spawn_tracked(Sidecar::builder());
    let started = Snapshot::take(pid);
    println!("sidecar pid {pid}");
    println!("at start:                      {started}");

    let warm = load_server();
    sequential(&mut sidecar, &warm, 500, false);
    concurrent(&mut sidecar, &warm, CONCURRENT);
    drop(warm);
    let before = settled(pid);
    println!("before (after warm-up):        {before}");

    let server = load_server();
    let clock = Instant::now();
    sequential(&mut sidecar, &server, SEQUENTIAL, true);
    let sequential_time = clock.elapsed();
    let sequential_connections = server.connections_accepted();
    let after_sequential = Snapshot::take(pid);
    let clock = Instant::now();
    concurrent(&mut sidecar, &server, CONCURRENT);
    let concurrent_time = clock.elapsed();
    let loaded = Snapshot::take(pid);
    println!(
        "{SEQUENTIAL} sequential:            {sequential_time:.2?} ({:.0} µs each), {sequential_connections} TCP connection(s)",
        sequential_time.as_micros() as f64 / SEQUENTIAL as f64
    );
    println!("  after them:                  {after_sequential}");
    println!(
        "{CONCURRENT} concurrent:               {concurrent_time:.2?}, {} connections in all",
        server.connections_accepted()
    );
    println!("  right after (pool still holds idle connections): {loaded}");
    drop(server);
    let after = settled(pid);
    println!("after (load server stopped):   {after}");

    assert_still_serving(&mut sidecar);
    assert_eq!(sidecar.finish().code(), Some(0));

    let rss_margin = RSS_MARGIN_KIB + before.rss_kib * RSS_MARGIN_PERCENT / 100;
    let mut failures = Vec::new();
    if after.fds > before.fds + FD_MARGIN {
        failures.push(format!(
            "file descriptors grew from {} to {} (margin {FD_MARGIN})",
            before.fds, after.fds
        ));
    }
    if after.rss_kib > before.rss_kib + rss_margin {
        failures.push(format!(
            "VmRSS grew from {} KiB to {} KiB (margin {rss_margin} KiB)",
            before.rss_kib, after.rss_kib
        ));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
