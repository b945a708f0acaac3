//! `llm-sidecar demo`: the whole product on a fresh machine, with no setup.
//!
//! Starts a small OpenAI-style streaming server on 127.0.0.1, spawns this same
//! binary as a sidecar over stdio exactly as an IDE would, and prints what an
//! IDE would see: chunks as they arrive, the final result, a deliberately
//! wrong setting answered with a structured error, then a code completion shown
//! as ghost text and answered again from the cache ([`ghost`]). The embedded
//! server is [`server`].

mod ghost;
mod server;

use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::process::{ChildStdin, ChildStdout, Command};
use tokio_util::codec::{FramedRead, FramedWrite};

use crate::cli::preview;
use crate::rpc::frame::{Frame, FrameCodec};

/// How much of an event or a suggested text the demo shows.
const PREVIEW_CHARS: usize = 60;

/// Runs the demo; returns the process exit code.
pub async fn run() -> u8 {
    match demo().await {
        Ok(()) => 0,
        Err(message) => {
            eprintln!("demo failed: {message}");
            1
        }
    }
}

async fn demo() -> Result<(), String> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    let url = format!("http://{address}/v1/chat/completions");
    let fim_url = format!("http://{address}{}", server::FIM_PATH);
    let fim_log = server::FimLog::default();
    tokio::spawn(server::serve(listener, fim_log.clone()));
    println!("demo LLM server listening at {url}");

    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let mut child = Command::new(exe)
        .env("LLM_SIDECAR_LOG", "error")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start the sidecar: {e}"))?;
    let stdin = child.stdin.take().ok_or("no stdin")?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut ide = Ide::new(stdin, stdout);
    println!(
        "sidecar started (pid {}), speaking JSON-RPC over its stdin/stdout\n",
        child.id().unwrap_or(0)
    );

    let init = ide
        .call("initialize", json!({"processId": null, "capabilities": {}}))
        .await?;
    println!(
        "→ initialize: {} {}",
        init["result"]["serverInfo"]["name"].as_str().unwrap_or("?"),
        init["result"]["serverInfo"]["version"]
            .as_str()
            .unwrap_or("?")
    );
    ide.notify("initialized", json!({})).await?;

    let settings = json!({
        "customEngineServer": url,
        "customEngineToken": "sk-demo-not-a-real-key",
        "customEngineResponseType": "SSE",
        "customEngineRequestFormat": "{\"customFields\": {\"model\": \"demo-model\", \"stream\": true}}",
        "customEngineResponseFormat": "$.choices[0].delta.content",
    });
    println!(
        "→ llm/complete (streamId \"demo\") with the AutoDev dialog settings:\n{}\n",
        pretty(&settings)
    );
    let started = Instant::now();
    let mut first_chunk = None;
    let params = json!({
        "streamId": "demo",
        "settings": settings,
        "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "Say hello to the IDE."}
        ]
    });
    let reply = ide
        .call_streaming("llm/complete", params, |text| {
            first_chunk.get_or_insert_with(|| started.elapsed());
            print!("{text}");
            let _ = std::io::stdout().flush();
        })
        .await?;
    println!("\n");
    let result = &reply["result"];
    println!(
        "← result: {} chunks, finishReason {}, usage {}, first byte {} ms, first chunk {} ms, total {} ms",
        result["chunks"],
        result["finishReason"],
        result["usage"],
        result["timings"]["firstByteMs"],
        first_chunk.map_or(0, |d| d.as_millis()),
        result["timings"]["totalMs"],
    );

    let wrong = json!({
        "customEngineServer": url,
        "customEngineRequestFormat": {"customFields": {"model": "demo-model", "stream": true}},
        "customEngineResponseFormat": "$.choices[0].message.delta.content",
    });
    println!(
        "\n→ llm/complete with the JsonPath from AutoDev's own docs, which is wrong for streams:"
    );
    let reply = ide
        .call(
            "llm/complete",
            json!({"settings": wrong, "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await?;
    let err = &reply["error"];
    let data = &err["data"];
    let kind = data["kind"].as_str().unwrap_or("?");
    let said = match kind {
        "no_match" => format!(
            "the JsonPath `{}` matched nothing in the {} events the server sent",
            data["path"].as_str().unwrap_or("?"),
            data["events"]
        ),
        _ => err["message"].as_str().unwrap_or("?").to_owned(),
    };
    println!("← error {} ({kind}): {said}", err["code"]);
    if let Some(first) = data["sample"].get(0).and_then(Value::as_str) {
        println!("  the first event was: {}", preview(first, PREVIEW_CHARS));
    }
    if let Some(fix) = data["suggestions"].get(0) {
        println!(
            "  suggested fix: {} (would have given \"{}\")",
            fix["path"].as_str().unwrap_or("?"),
            preview(fix["sampleText"].as_str().unwrap_or(""), PREVIEW_CHARS)
        );
    }

    ghost::show(&mut ide, &fim_url, &fim_log).await?;

    ide.call("shutdown", Value::Null).await?;
    ide.notify("exit", Value::Null).await?;
    let status = tokio::time::timeout(Duration::from_secs(5), child.wait())
        .await
        .map_err(|_| "the sidecar did not exit")?
        .map_err(|e| e.to_string())?;
    println!("\nsidecar exited with {status}");
    Ok(())
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

/// The IDE side of the conversation: a minimal JSON-RPC client.
struct Ide {
    writer: FramedWrite<ChildStdin, FrameCodec>,
    reader: FramedRead<ChildStdout, FrameCodec>,
    next_id: u64,
}

impl Ide {
    fn new(stdin: ChildStdin, stdout: ChildStdout) -> Self {
        Ide {
            writer: FramedWrite::new(stdin, FrameCodec::default()),
            reader: FramedRead::new(stdout, FrameCodec::default()),
            next_id: 1,
        }
    }

    async fn write(&mut self, message: Value) -> Result<(), String> {
        let bytes = Bytes::from(serde_json::to_vec(&message).map_err(|e| e.to_string())?);
        self.writer
            .send(bytes)
            .await
            .map_err(|e| format!("cannot write to the sidecar: {e}"))
    }

    async fn notify(&mut self, method: &str, params: Value) -> Result<(), String> {
        self.write(json!({"jsonrpc": "2.0", "method": method, "params": params}))
            .await
    }

    async fn call(&mut self, method: &str, params: Value) -> Result<Value, String> {
        self.call_streaming(method, params, |_| {}).await
    }

    /// Sends a request; `on_chunk` sees every `llm/chunk` text until the response.
    async fn call_streaming(
        &mut self,
        method: &str,
        params: Value,
        mut on_chunk: impl FnMut(&str),
    ) -> Result<Value, String> {
        let id = self.next_id;
        self.next_id += 1;
        self.write(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await?;
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(30), self.reader.next())
                .await
                .map_err(|_| "no answer from the sidecar within 30 s")?
                .ok_or("the sidecar closed its stdout")?
                .map_err(|e| e.to_string())?;
            let Frame::Message(body) = frame else {
                return Err("the sidecar wrote a malformed frame".into());
            };
            let message: Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
            if message["method"] == "llm/chunk" {
                on_chunk(message["params"]["text"].as_str().unwrap_or(""));
            } else if message["id"] == json!(id) {
                return Ok(message);
            }
        }
    }
}
