//! The `llm-sidecar` command: serves JSON-RPC on stdio by default; `complete`
//! and `demo` are the command-line front ends over the same engine.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use llm_sidecar::{cli, demo, logging, rpc, settings};

/// A stdio JSON-RPC sidecar that streams completions from any LLM server,
/// configured like AutoDev's "Custom LLM Server" dialog.
///
/// With no command it serves JSON-RPC 2.0 (LSP framing) on stdin/stdout; see
/// protocol/README.md. Logs go to stderr (level from LLM_SIDECAR_LOG or RUST_LOG).
#[derive(Parser)]
#[command(name = "llm-sidecar", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve JSON-RPC on stdin/stdout (the default).
    Serve,
    /// Run one completion and print the text as it streams.
    Complete {
        /// A JSON file with the settings object (customEngineServer, ...).
        #[arg(long, value_name = "FILE")]
        settings: PathBuf,
        /// A system message sent before the prompt.
        #[arg(long, value_name = "TEXT")]
        system: Option<String>,
        /// The token, used when the settings file has none.
        #[arg(long, env = "LLM_SIDECAR_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// Print the exchange on stderr (request, response head, the first
        /// 16 KiB of the body; secrets masked) and a curl command repeating it.
        #[arg(long)]
        trace: bool,
        /// Code completion (fill in the middle) instead of chat: the text
        /// around the cursor comes from --prefix-file/--suffix-file or --at.
        #[arg(long, requires = "cursor")]
        fim: bool,
        /// With --fim: a file holding the text before the cursor.
        #[arg(long, value_name = "FILE", group = "cursor", requires = "fim")]
        prefix_file: Option<PathBuf>,
        /// With --fim: a file holding the text after the cursor.
        #[arg(long, value_name = "FILE", requires = "prefix_file")]
        suffix_file: Option<PathBuf>,
        /// With --fim: complete in FILE at LINE and COL (both from 1).
        #[arg(long, value_name = "FILE:LINE:COL", group = "cursor", requires = "fim")]
        at: Option<String>,
        /// With --fim: the language id (default: from the file's extension with --at).
        #[arg(long, requires = "fim")]
        language: Option<String>,
        /// The user's prompt (not with --fim).
        #[arg(required_unless_present = "fim", conflicts_with = "fim")]
        prompt: Option<String>,
    },
    /// Validate a settings file and explain every problem; with --connect,
    /// also send a test completion through the same path as chat.
    Check {
        /// A JSON file with the settings object.
        #[arg(long, value_name = "FILE")]
        settings: PathBuf,
        /// Also send a short test completion to the server.
        #[arg(long)]
        connect: bool,
        /// The token, used when the settings file has none.
        #[arg(long, env = "LLM_SIDECAR_TOKEN", hide_env_values = true)]
        token: Option<String>,
    },
    /// Find settings that work for a server from its address: reads its model
    /// lists, tries each API shape that fits, and prints the best verified
    /// settings as JSON (the v1 dialog fields) and one line per request.
    Detect {
        /// The server's address: a base, a versioned base or a full endpoint.
        url: String,
        /// The token (also from LLM_SIDECAR_TOKEN); never printed.
        #[arg(long, env = "LLM_SIDECAR_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// Print the whole result (every candidate and request) as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the JSON Schema of the settings object.
    Schema,
    /// Start an embedded demo LLM server and stream a completion through a
    /// sidecar process, exactly as an IDE would, then show a code completion as
    /// ghost text.
    Demo,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let log = logging::init();
    // One worker thread: a chunk is read, decoded, framed and written to stdout
    // by the thread that was woken by the socket, with no hand-over to another
    // worker (each one cost a futex wake-up and ~0.1 ms of added latency on an
    // idle machine). Blocking work (stdin, client builds) still runs on tokio's
    // blocking pool; one core decodes over 1 M chunks/s, far above any model.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            // Inside the runtime: a non-blocking stdout registers with its reactor.
            let exit =
                runtime.block_on(async { rpc::serve(tokio::io::stdin(), rpc::stdout()).await });
            tracing::debug!(?exit, "server loop ended");
            log.finish();
            // stdin is read on a blocking thread that cannot be interrupted:
            // leave without waiting for it.
            std::process::exit(exit.code());
        }
        Command::Complete {
            settings,
            system,
            token,
            trace,
            fim: true,
            prefix_file,
            suffix_file,
            at,
            language,
            ..
        } => {
            let cursor = match (prefix_file, at) {
                (Some(prefix), _) => Ok(cli::fim::Cursor::Files {
                    prefix,
                    suffix: suffix_file,
                }),
                (None, Some(at)) => cli::fim::Cursor::parse_at(&at),
                (None, None) => Err("--fim needs --prefix-file or --at".to_owned()),
            };
            if system.is_some() {
                tracing::warn!("--system is not used by --fim");
            }
            match cursor {
                Ok(cursor) => ExitCode::from(runtime.block_on(cli::fim::complete(
                    &settings,
                    token.as_deref(),
                    &cursor,
                    language.as_deref(),
                    trace,
                ))),
                Err(message) => {
                    eprintln!("error: {message}");
                    ExitCode::from(cli::exit::BAD_SETTINGS)
                }
            }
        }
        Command::Complete {
            settings,
            system,
            token,
            trace,
            prompt,
            ..
        } => ExitCode::from(runtime.block_on(cli::complete(
            &settings,
            token.as_deref(),
            system.as_deref(),
            prompt.as_deref().unwrap_or_default(),
            trace,
        ))),
        Command::Check {
            settings,
            connect,
            token,
        } => ExitCode::from(runtime.block_on(cli::check(&settings, token.as_deref(), connect))),
        Command::Detect { url, token, json } => {
            ExitCode::from(runtime.block_on(cli::detect(&url, token.as_deref(), json)))
        }
        Command::Schema => {
            print!("{}", settings::schema::settings_schema());
            ExitCode::SUCCESS
        }
        Command::Demo => ExitCode::from(runtime.block_on(demo::run())),
    };
    drop(runtime);
    log.finish();
    code
}
