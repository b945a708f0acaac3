//! `complete --fim`: one code completion from the command line, through the
//! same [`Completer`] as `llm/inlineCompletion`. The text around the cursor
//! comes from `--prefix-file`/`--suffix-file` or from a file and a position
//! (`--at FILE:LINE:COL`, 1-based, the column counted in characters). The
//! suggestion goes to stdout, nothing else; timings go to stderr.

use std::path::{Path, PathBuf};

use tokio_util::sync::CancellationToken;

use super::{exit, explain_failure, load_settings, note, say, trace};
use crate::completion::{Completer, InlineInput};
use crate::engine::{Engine, TraceSink};

/// Where the text around the cursor comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cursor {
    /// The text before and after the cursor, each in its own file.
    Files {
        prefix: PathBuf,
        suffix: Option<PathBuf>,
    },
    /// A file and a 1-based line and column in it.
    At {
        file: PathBuf,
        line: usize,
        column: usize,
    },
}

impl Cursor {
    /// Reads `FILE:LINE:COL` (the path may itself hold colons).
    pub fn parse_at(text: &str) -> Result<Cursor, String> {
        let mut parts = text.rsplitn(3, ':');
        let (Some(column), Some(line), Some(file)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(format!(
                "--at {text}: expected FILE:LINE:COL, e.g. src/main.rs:12:5"
            ));
        };
        let number = |what: &str, value: &str| match value.trim().parse::<usize>() {
            Ok(n) if n >= 1 => Ok(n),
            _ => Err(format!(
                "--at {text}: the {what} must be a number from 1, got `{value}`"
            )),
        };
        Ok(Cursor::At {
            file: PathBuf::from(file),
            line: number("line", line)?,
            column: number("column", column)?,
        })
    }

    /// The prefix, the suffix and the file the position is in.
    fn read(&self) -> Result<(String, String, Option<String>), String> {
        let read = |path: &Path| {
            std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))
        };
        match self {
            Cursor::Files { prefix, suffix } => {
                let suffix = match suffix {
                    Some(path) => read(path)?,
                    None => String::new(),
                };
                Ok((read(prefix)?, suffix, None))
            }
            Cursor::At { file, line, column } => {
                let text = read(file)?;
                let at = offset(&text, *line, *column)
                    .map_err(|e| format!("--at {}:{line}:{column}: {e}", file.display()))?;
                Ok((
                    text[..at].to_owned(),
                    text[at..].to_owned(),
                    Some(file.display().to_string()),
                ))
            }
        }
    }
}

/// The byte offset of a 1-based line and character column.
fn offset(text: &str, line: usize, column: usize) -> Result<usize, String> {
    let mut start = 0;
    for _ in 1..line {
        match text[start..].find('\n') {
            Some(nl) => start += nl + 1,
            None => {
                return Err(format!(
                    "the file has only {} lines",
                    text.lines().count().max(1)
                ));
            }
        }
    }
    let line_text = text[start..].split('\n').next().unwrap_or_default();
    let line_text = line_text.strip_suffix('\r').unwrap_or(line_text);
    let chars = line_text.chars().count();
    if column > chars + 1 {
        return Err(format!(
            "line {line} has {chars} characters, so the column can be at most {}",
            chars + 1
        ));
    }
    let within = line_text
        .char_indices()
        .nth(column - 1)
        .map_or(line_text.len(), |(i, _)| i);
    Ok(start + within)
}

/// The language id of a file name, from its extension.
fn language_of(path: &str) -> Option<String> {
    let ext = Path::new(path).extension()?.to_str()?.to_ascii_lowercase();
    let id = match ext.as_str() {
        "rs" => "rust",
        "py" => "python",
        "js" | "mjs" | "cjs" => "javascript",
        "ts" => "typescript",
        "go" => "go",
        "java" => "java",
        "kt" | "kts" => "kotlin",
        "c" | "h" => "c",
        "cc" | "cpp" | "hpp" | "cxx" => "cpp",
        "rb" => "ruby",
        "lua" => "lua",
        "sh" => "shellscript",
        other => other,
    };
    Some(id.to_owned())
}

/// Runs `complete --fim`; returns the process exit code.
pub async fn complete(
    settings_path: &Path,
    token: Option<&str>,
    cursor: &Cursor,
    language: Option<&str>,
    traced: bool,
) -> u8 {
    let settings = match load_settings(settings_path, token) {
        Ok(settings) => settings,
        Err(message) => {
            note(format!("error: {message}"));
            return exit::BAD_SETTINGS;
        }
    };
    let (prefix, suffix, path) = match cursor.read() {
        Ok(read) => read,
        Err(message) => {
            note(format!("error: {message}"));
            return exit::BAD_SETTINGS;
        }
    };
    let language = language
        .map(str::to_owned)
        .or_else(|| path.as_deref().and_then(language_of));
    let input = InlineInput {
        prefix,
        suffix,
        language,
        path,
        invoked: true,
    };
    let cancel = CancellationToken::new();
    let ctrl_c = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            ctrl_c.cancel();
        }
    });
    let mut tracer = traced.then(|| trace::StderrTrace::new(&settings));
    let trace_sink = tracer.as_mut().map(|t| t as &mut dyn TraceSink);
    let engine = Engine::new();
    let completer = Completer::new();
    let document = input.path.clone().unwrap_or_default();
    match completer
        .complete(&engine, &settings, &input, &document, &cancel, trace_sink)
        .await
    {
        Ok(answer) => {
            match answer.items.first() {
                Some(item) => say(&item.insert_text),
                None => note("(no suggestion: the answer was empty after clean-up)"),
            }
            note(format!(
                "[mode {}, first byte {} ms, total {} ms]",
                settings.fim.mode.as_str(),
                answer.timings.first_byte_ms,
                answer.timings.total_ms
            ));
            exit::OK
        }
        Err(failure) => {
            let mut lines = explain_failure(&failure).into_iter();
            if let Some(first) = lines.next() {
                note(format!("error ({}): {first}", failure.kind_name()));
            }
            lines.for_each(note);
            exit::FAILED
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_characters() {
        let text = "ab\nçd\n";
        assert_eq!(offset(text, 1, 1), Ok(0));
        assert_eq!(offset(text, 2, 2), Ok(5));
        assert_eq!(offset(text, 2, 3), Ok(6));
        assert!(offset(text, 2, 4).is_err());
        assert!(offset(text, 9, 1).is_err());
        assert_eq!(
            Cursor::parse_at("C:/x.rs:3:4"),
            Ok(Cursor::At {
                file: "C:/x.rs".into(),
                line: 3,
                column: 4
            })
        );
        assert!(Cursor::parse_at("x.rs:0:1").is_err());
        assert!(Cursor::parse_at("x.rs").is_err());
    }
}
