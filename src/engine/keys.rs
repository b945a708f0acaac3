//! Running the commands of key sources (`customEngineTokenCommand`, a
//! `{"command": [...]}` header value) before a request is sent.
//!
//! A command runs without a shell, with no input (stdin is `/dev/null`) and
//! at most [`COMMAND_TIMEOUT`]; its standard output, trimmed, is the key. The
//! output is cached for the life of the process, per argv, so a keyring or a
//! password manager is asked once, not per request; concurrent requests wait
//! for the one run. After the server refuses the key (401 or 403) the command
//! is run again once ([`Engine::refreshed_keys`]): a rotated key is picked up
//! without a restart. Output is never logged; a failure is an
//! `invalid_settings` error that names the program and its exit status, with
//! the first line of what it wrote to stderr.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use crate::settings::{KeySource, Problem, Settings, SourcedKey};

use super::Engine;
use super::failure::{Failure, FailureKind};

/// Longest a key command may run.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);
/// Most output read from a key command; a key is far shorter.
const MAX_OUTPUT_BYTES: u64 = 64 * 1024;
/// Longest excerpt of the command's stderr shown in an error.
const MAX_STDERR_CHARS: usize = 300;

/// The outputs of the key commands run so far, per argv.
#[derive(Debug, Default)]
pub(super) struct KeyCommands {
    outputs: Mutex<HashMap<Vec<String>, Slot>>,
}

/// One argv's output, or nothing yet; the lock is held while it runs.
type Slot = Arc<tokio::sync::Mutex<Option<String>>>;

impl KeyCommands {
    fn slot(&self, argv: &[String]) -> Slot {
        let mut outputs = self.outputs.lock().unwrap_or_else(|e| e.into_inner());
        outputs.entry(argv.to_vec()).or_default().clone()
    }

    /// The command's output: cached, or run now.
    async fn output(
        &self,
        key: &SourcedKey,
        cancel: &CancellationToken,
    ) -> Result<String, Failure> {
        let KeySource::Command(argv) = &key.source else {
            unreachable!("only commands are run");
        };
        let slot = self.slot(argv);
        let mut cached = tokio::select! {
            biased;
            _ = cancel.cancelled() => return Err(Failure::new(FailureKind::Cancelled)),
            cached = slot.lock() => cached,
        };
        if let Some(output) = cached.as_ref() {
            return Ok(output.clone());
        }
        let output = tokio::select! {
            biased;
            _ = cancel.cancelled() => return Err(Failure::new(FailureKind::Cancelled)),
            output = run(argv) => output.map_err(|message| {
                Failure::new(FailureKind::InvalidSettings {
                    problems: vec![Problem::new(key.field.as_str(), message)],
                })
            })?,
        };
        *cached = Some(output.clone());
        Ok(output)
    }

    /// Drops the cached output of `argv` if it is still the `refused` one
    /// (another request may have run the command again already).
    async fn forget(&self, argv: &[String], refused: &str) {
        let slot = self.slot(argv);
        let mut cached = slot.lock().await;
        if cached.as_deref() == Some(refused) {
            *cached = None;
        }
    }
}

/// Runs `argv` once; its trimmed output, or why there is none (naming the
/// program, never the output).
async fn run(argv: &[String]) -> Result<String, String> {
    let program = &argv[0];
    tracing::debug!(%program, "running a key command");
    let mut child = Command::new(program)
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run `{program}`: {e}"))?;
    let mut stdout = child
        .stdout
        .take()
        .expect("piped stdout")
        .take(MAX_OUTPUT_BYTES);
    let mut stderr = child
        .stderr
        .take()
        .expect("piped stderr")
        .take(MAX_OUTPUT_BYTES);
    let finished = async {
        let mut out = Vec::new();
        let mut err = Vec::new();
        let (read_out, read_err, status) = tokio::join!(
            stdout.read_to_end(&mut out),
            stderr.read_to_end(&mut err),
            child.wait(),
        );
        let _ = (read_out, read_err);
        (status, out, err)
    };
    // On timeout the child is dropped, which kills it.
    let (status, out, err) = tokio::time::timeout(COMMAND_TIMEOUT, finished)
        .await
        .map_err(|_| {
            format!(
                "`{program}` did not finish within {} s; it gets no input, so a command that asks for a passphrase must get it from an agent",
                COMMAND_TIMEOUT.as_secs()
            )
        })?;
    let status = status.map_err(|e| format!("cannot wait for `{program}`: {e}"))?;
    if !status.success() {
        let first_line = String::from_utf8_lossy(&err)
            .lines()
            .map(str::trim)
            .find(|line| !line.is_empty())
            .map(|line| line.chars().take(MAX_STDERR_CHARS).collect::<String>());
        let said = first_line.map_or(String::new(), |line| format!(": {line}"));
        return Err(format!("`{program}` failed ({}){said}", exit(&status)));
    }
    let output = String::from_utf8(out)
        .map_err(|_| format!("the output of `{program}` is not UTF-8 text"))?;
    let output = output.trim();
    if output.is_empty() {
        return Err(format!(
            "`{program}` printed nothing on its standard output"
        ));
    }
    Ok(output.to_owned())
}

/// How the command ended, in words.
fn exit(status: &std::process::ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("exit status {code}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return format!("killed by signal {signal}");
        }
    }
    status.to_string()
}

/// The output each key command gave, per argv: what a request sent.
pub(super) type KeyOutputs = Vec<(Vec<String>, String)>;

impl Engine {
    /// `settings` with the output of its key commands in place (run now, or
    /// cached); `None` when it has no key command.
    pub async fn with_keys(
        &self,
        settings: &Settings,
        cancel: &CancellationToken,
    ) -> Result<Option<Settings>, Failure> {
        Ok(self
            .resolve_keys(settings, cancel)
            .await?
            .map(|(resolved, _)| resolved))
    }

    /// [`Engine::with_keys`], and the outputs used.
    pub(super) async fn resolve_keys(
        &self,
        settings: &Settings,
        cancel: &CancellationToken,
    ) -> Result<Option<(Settings, KeyOutputs)>, Failure> {
        let commands = settings.key_sources.commands();
        if commands.is_empty() {
            return Ok(None);
        }
        let mut outputs: KeyOutputs = Vec::new();
        for key in commands {
            let output = self.keys.output(key, cancel).await?;
            if let KeySource::Command(argv) = &key.source {
                outputs.push((argv.clone(), output));
            }
        }
        let find = |argv: &[String]| {
            outputs
                .iter()
                .find(|(a, _)| a.as_slice() == argv)
                .map(|(_, output)| output.as_str())
        };
        let resolved = settings.with_command_output(find).map_err(|problem| {
            Failure::new(FailureKind::InvalidSettings {
                problems: vec![problem],
            })
        })?;
        Ok(Some((resolved, outputs)))
    }

    /// After the server refused the keys `used` (the outputs of `settings`'
    /// key commands): runs the commands again, unless another request already
    /// did, and returns the new settings when any output changed; `None`
    /// when there is nothing new to try.
    pub(super) async fn refreshed_keys(
        &self,
        settings: &Settings,
        used: &KeyOutputs,
        cancel: &CancellationToken,
    ) -> Result<Option<(Settings, KeyOutputs)>, Failure> {
        for (argv, refused) in used {
            self.keys.forget(argv, refused).await;
        }
        let Some((fresh, outputs)) = self.resolve_keys(settings, cancel).await? else {
            return Ok(None);
        };
        let changed = outputs != *used;
        tracing::debug!(
            changed,
            "key commands run again after the server refused the key"
        );
        Ok(changed.then_some((fresh, outputs)))
    }
}
