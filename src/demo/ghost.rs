//! The demo's third part: code completion as a user sees it. A function with
//! the cursor in its body goes to `llm/inlineCompletion` with Qwen FIM settings;
//! the cleaned suggestion is shown as ghost text in the code (dimmed on a
//! terminal), with what the clean-up took off the model's answer, then the user
//! types along it and the rest comes from the cache without a request.

use std::io::IsTerminal;

use serde_json::{Value, json};

use super::Ide;
use super::server::FimLog;

/// The file being edited, split at the cursor.
const PATH: &str = "src/stats.rs";
const PREFIX: &str =
    "fn mean(xs: &[f64]) -> f64 {\n    if xs.is_empty() {\n        return 0.0;\n    }\n    ";
const SUFFIX: &str = "\n}\n";
/// Where the cursor is drawn in the code.
const CURSOR: &str = "│";
const DIM: &str = "\x1b[2m";
const UNDIM: &str = "\x1b[22m";

/// Asks for a completion, shows it as ghost text, then types along it.
pub async fn show(ide: &mut Ide, url: &str, log: &FimLog) -> Result<(), String> {
    let settings = json!({
        "customEngineServer": url,
        "customEngineRequestFormat": {"customFields": {"model": "qwen2.5-coder-1.5b"}},
        "customEngineResponseFormat": "$.choices[0].text",
        "fim": {"template": "qwen"},
    });
    println!(
        "\n→ llm/inlineCompletion in {PATH}, the cursor in a function body, settings {settings}"
    );
    let params = |typed: &str| {
        json!({"prefix": format!("{PREFIX}{typed}"), "suffix": SUFFIX, "language": "rust",
               "path": PATH, "settings": settings})
    };
    let first = result(ide.call("llm/inlineCompletion", params("")).await?)?;
    let ghost = insert_text(&first);
    let sent = log.lock().expect("the log").last().cloned();
    let Some(sent) = sent else {
        return Err("the demo server saw no completion request".into());
    };
    let stops = sent.body["stop"].as_array().cloned().unwrap_or_default();
    println!(
        "  the server got POST {} with prompt {} (max_tokens {}, {} stop strings)",
        super::server::FIM_PATH,
        sent.body["prompt"],
        sent.body["max_tokens"],
        stops.len()
    );
    println!("  and answered {}", json!(sent.answer));
    println!("← ghost text, cached: {}", first["cached"]);
    let style = Style::for_stdout();
    for line in style.render(PREFIX, &ghost, SUFFIX).lines() {
        println!("    {line}");
    }
    println!(
        "  clean-up removed {}; first byte {} ms, total {} ms",
        removed(&sent.answer, &ghost, &stops),
        first["timings"]["firstByteMs"],
        first["timings"]["totalMs"]
    );

    let typed = typed_along(&ghost);
    println!(
        "\n→ the user types {} along the ghost text: llm/inlineCompletion with the prefix grown by it",
        json!(typed)
    );
    let second = result(ide.call("llm/inlineCompletion", params(typed)).await?)?;
    let seen = log.lock().expect("the log").len();
    println!(
        "← the rest {}, cached: {}, first byte {} ms, total {} ms; the demo server got {seen} completion request{} in all",
        json!(insert_text(&second)),
        second["cached"],
        second["timings"]["firstByteMs"],
        second["timings"]["totalMs"],
        if seen == 1 { "" } else { "s" }
    );
    Ok(())
}

/// How ghost text is set apart from the code around it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    /// Dimmed, as editors draw ghost text.
    Dim,
    /// No escape codes, for a pipe or a file.
    Plain,
}

impl Style {
    fn for_stdout() -> Style {
        if std::io::stdout().is_terminal() {
            Style::Dim
        } else {
            Style::Plain
        }
    }

    /// The code with the cursor and the ghost text after it.
    fn render(self, prefix: &str, ghost: &str, suffix: &str) -> String {
        match self {
            Style::Dim => format!("{prefix}{CURSOR}{DIM}{ghost}{UNDIM}{suffix}"),
            Style::Plain => format!("{prefix}{CURSOR}{ghost}{suffix}"),
        }
    }
}

/// The result of a response, or its error in words.
fn result(reply: Value) -> Result<Value, String> {
    match reply.get("result") {
        Some(result) => Ok(result.clone()),
        None => Err(format!("llm/inlineCompletion failed: {}", reply["error"])),
    }
}

fn insert_text(result: &Value) -> String {
    result["items"][0]["insertText"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// What the clean-up took off the end of the model's answer, and why.
fn removed(answer: &str, ghost: &str, stops: &[Value]) -> String {
    let Some(cut) = answer.strip_prefix(ghost) else {
        return format!("{} down to {}", json!(answer), json!(ghost));
    };
    let mut parts = vec![json!(cut).to_string()];
    let repeated = cut.split("<|").next().unwrap_or_default().trim();
    if !repeated.is_empty() && SUFFIX.trim_start().starts_with(repeated) {
        parts.push(format!("the {repeated:?} already after the cursor"));
    }
    let tokens = cut
        .match_indices("<|")
        .filter_map(|(at, _)| cut[at..].find("|>").map(|end| &cut[at..at + end + 2]));
    for token in tokens {
        let why = if stops.iter().any(|s| s == token) {
            "a stop string the server did not honour"
        } else {
            "a special token the server was not told to stop at"
        };
        parts.push(format!("{token}, {why}"));
    }
    match parts.split_first() {
        Some((text, [])) => text.clone(),
        Some((text, why)) => format!("{text} ({})", why.join("; ")),
        None => String::new(),
    }
}

/// What a user types before looking again: the suggestion up to its first
/// punctuation (`let sum` of `let sum: f64 = …`), or all of it.
fn typed_along(ghost: &str) -> &str {
    let end = ghost
        .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ' '))
        .unwrap_or(ghost.len());
    ghost[..end].trim_end()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_terminal_sees_only_the_ghost_text_dimmed() {
        let dim = Style::Dim.render("a(", "x\ny", ")");
        assert_eq!(dim, "a(│\x1b[2mx\ny\x1b[22m)");
        assert_eq!(Style::Plain.render("a(", "x\ny", ")"), "a(│x\ny)");
    }

    #[test]
    fn the_removed_text_is_explained_from_what_was_cut() {
        let stops = [json!("<|endoftext|>")];
        assert_eq!(
            removed("body\n}<|file_sep|>", "body", &stops),
            r#""\n}<|file_sep|>" (the "}" already after the cursor; <|file_sep|>, a special token the server was not told to stop at)"#
        );
        assert_eq!(
            removed("body<|endoftext|>", "body", &stops),
            r#""<|endoftext|>" (<|endoftext|>, a stop string the server did not honour)"#
        );
        assert_eq!(
            removed("  body", "body", &stops),
            r#""  body" down to "body""#
        );
        assert_eq!(typed_along("let sum: f64"), "let sum");
        assert_eq!(typed_along("total"), "total");
    }
}
