//! What comes back, made fit for ghost text. Each rule is one function with
//! its own tests; [`clean`] runs them in order:
//!
//! 1. [`cut_at_stops`]: the template's stop tokens, the user's `fim.stop`,
//!    and any special token of a known FIM family leaking into the text;
//! 2. [`strip_think`]: a reasoning model's `<think>…</think>`;
//! 3. [`chat_answer`] (chat mode): the code between `<COMPLETION>` tags;
//! 4. [`strip_fence`]: a markdown code fence around the answer;
//! 5. [`trim_prefix_overlap`]: lines before the cursor said again;
//! 6. [`single_line`]: single-line mode ends at the first line break;
//! 7. [`trim_suffix_overlap`]: text that repeats what already follows the
//!    cursor (a closing `)` or `}`), or a line equal to the next line;
//! 8. blank or whitespace-only answers give nothing.

use super::fim::leaked_tokens;
use super::request::{ANSWER_CLOSE, ANSWER_OPEN, Context, HOLE};

/// A restatement of the text before the cursor is only trimmed when it
/// holds at least this many non-blank characters: after `t`, an answer
/// `traced()` is a continuation, not a repeat.
const MIN_RESTATED: usize = 3;

/// Runs every rule; `None` when nothing usable is left.
pub fn clean(raw: &str, ctx: &Context, stops: &[String], chat: bool) -> Option<String> {
    let text = cut_at_stops(raw, stops);
    let text = strip_think(text);
    let text = if chat { chat_answer(text) } else { text };
    let text = strip_fence(text);
    let text = trim_prefix_overlap(text, &ctx.prefix);
    let text = if ctx.multiline {
        text
    } else {
        single_line(text)
    };
    let text = trim_suffix_overlap(text, &ctx.suffix);
    let text = text.trim_end_matches([' ', '\t']);
    if text.trim().is_empty() {
        return None;
    }
    Some(text.to_owned())
}

/// The text before the first stop string or leaked special token.
pub fn cut_at_stops<'a>(text: &'a str, stops: &[String]) -> &'a str {
    let mut end = text.len();
    let leaked = leaked_tokens();
    for stop in stops
        .iter()
        .map(String::as_str)
        .chain(leaked.iter().copied())
    {
        if let Some(at) = text[..end].find(stop) {
            end = at;
        }
    }
    &text[..end]
}

/// Without a leading `<think>…</think>` block (an unclosed one leaves nothing).
pub fn strip_think(text: &str) -> &str {
    let trimmed = text.trim_start();
    let Some(rest) = trimmed.strip_prefix("<think>") else {
        return text;
    };
    match rest.find("</think>") {
        Some(end) => rest[end + "</think>".len()..].trim_start_matches(['\r', '\n']),
        None => "",
    }
}

/// The code of a chat answer: between `<COMPLETION>` tags when they are
/// there (the closing one may have been a stop), without the hole marker.
pub fn chat_answer(text: &str) -> &str {
    let Some(start) = text.find(ANSWER_OPEN) else {
        return text.trim_start_matches(HOLE);
    };
    let rest = &text[start + ANSWER_OPEN.len()..];
    let rest = match rest.find(ANSWER_CLOSE) {
        Some(end) => &rest[..end],
        None => rest,
    };
    rest.strip_prefix('\n').unwrap_or(rest)
}

/// The inside of a markdown fence around the whole answer (or of an opening
/// fence the answer starts with, when the closing one is missing).
pub fn strip_fence(text: &str) -> &str {
    let trimmed = text.trim();
    let Some(rest) = trimmed.strip_prefix("```") else {
        return text;
    };
    // The info string (language) ends the opening line.
    let Some(newline) = rest.find('\n') else {
        return "";
    };
    let body = &rest[newline + 1..];
    match body.rfind("```") {
        Some(end) if body[end + 3..].trim().is_empty() => {
            body[..end].trim_end_matches(['\n', '\r'])
        }
        _ => body,
    }
}

/// Without a start that restates the text before the cursor: the longest
/// start of the answer that the prefix ends with, when it begins at the
/// start of one of the prefix's lines (its indentation aside), so the model
/// said those lines again. A repeat that begins mid-line (`1);` after
/// `x.push(`) is the code going on, and stays.
pub fn trim_prefix_overlap<'a>(text: &'a str, prefix: &str) -> &'a str {
    // Longest first: the whole repeated tail goes.
    let mut lengths: Vec<usize> = text
        .char_indices()
        .map(|(i, _)| i)
        .skip(1)
        .chain([text.len()])
        .filter(|&n| n <= prefix.len())
        .collect();
    lengths.reverse();
    for n in lengths {
        let head = &text[..n];
        if !prefix.ends_with(head) {
            continue;
        }
        let before = &prefix[..prefix.len() - n];
        let line_start = before
            .rsplit('\n')
            .next()
            .unwrap_or_default()
            .chars()
            .all(|c| c == ' ' || c == '\t');
        let said = head.chars().filter(|c| !c.is_whitespace()).count();
        if line_start && said >= MIN_RESTATED {
            return &text[n..];
        }
    }
    text
}

/// Up to the first line break; an answer that starts with one is empty.
pub fn single_line(text: &str) -> &str {
    match text.find(['\n', '\r']) {
        Some(end) => &text[..end],
        None => text,
    }
}

/// Without an ending that repeats the start of the suffix: the longest end
/// of the answer that the suffix (after spaces) begins with, when it is
/// punctuation (a closing bracket, quote, `;`) or at least four characters;
/// and, for a multi-line answer, from the first line equal to the next
/// non-blank line after the cursor.
pub fn trim_suffix_overlap<'a>(text: &'a str, suffix: &str) -> &'a str {
    let mut text = text;
    let next_line = suffix
        .split('\n')
        .skip(1)
        .map(str::trim)
        .find(|l| !l.is_empty());
    let rest_of_line = suffix.split('\n').next().unwrap_or_default().trim();
    let repeated = if rest_of_line.is_empty() {
        next_line
    } else {
        Some(rest_of_line)
    };
    if text.contains('\n')
        && let Some(repeated) = repeated
    {
        let mut offset = 0;
        for (i, line) in text.split_inclusive('\n').enumerate() {
            if i > 0 && line.trim() == repeated {
                text = text[..offset].trim_end_matches(['\n', '\r']);
                break;
            }
            offset += line.len();
        }
    }
    let suffix = suffix.trim_start_matches([' ', '\t']);
    let ends: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
    for start in ends {
        let tail = &text[start..];
        if tail.trim().is_empty() || !suffix.starts_with(tail) {
            continue;
        }
        let punctuation = tail.chars().all(|c| !c.is_alphanumeric() && c != '_');
        if punctuation || tail.chars().count() >= 4 {
            return text[..start].trim_end_matches([' ', '\t']);
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(prefix: &str, suffix: &str, multiline: bool) -> Context {
        Context {
            prefix: prefix.into(),
            suffix: suffix.into(),
            language: None,
            path: None,
            multiline,
        }
    }

    #[test]
    fn stops_and_leaked_tokens_are_cut() {
        assert_eq!(cut_at_stops("x + 1<|endoftext|>junk", &[]), "x + 1");
        assert_eq!(cut_at_stops("a\n\nb", &["\n\n".into()]), "a");
        assert_eq!(
            cut_at_stops("ok<｜end▁of▁sentence｜><｜begin▁of▁sentence｜>", &[]),
            "ok"
        );
        assert_eq!(cut_at_stops("print()</fim_middle>", &[]), "print()");
        assert_eq!(cut_at_stops("plain", &[]), "plain");
    }

    #[test]
    fn fences_are_removed() {
        assert_eq!(strip_fence("```python\nreturn 1\n```"), "return 1");
        assert_eq!(strip_fence("```\na\nb\n```\n"), "a\nb");
        assert_eq!(strip_fence("```rust\nlet x = 1;"), "let x = 1;");
        assert_eq!(strip_fence("x = `a`"), "x = `a`");
    }

    #[test]
    fn chat_answers_are_unwrapped() {
        assert_eq!(
            chat_answer("Sure:\n<COMPLETION>a + b</COMPLETION> done"),
            "a + b"
        );
        assert_eq!(chat_answer("<COMPLETION>\na + b"), "a + b");
        assert_eq!(chat_answer("a + b"), "a + b");
        assert_eq!(strip_think("<think>hmm</think>\nx"), "x");
    }

    #[test]
    fn prefix_overlap_is_trimmed() {
        assert_eq!(
            trim_prefix_overlap("def add(a, b):", "    def add("),
            "a, b):"
        );
        assert_eq!(
            trim_prefix_overlap("return total\n", "x = 1\n    return total"),
            "\n"
        );
        assert_eq!(trim_prefix_overlap("(a)", "print("), "(a)");
        assert_eq!(
            trim_prefix_overlap("    let y = 2;", "fn f() {\n    let"),
            " y = 2;"
        );
        assert_eq!(trim_prefix_overlap("b", "a"), "b");
        assert_eq!(trim_prefix_overlap("traced()", "t"), "traced()");
        assert_eq!(
            trim_prefix_overlap("1);\n    x.push(2);", "x.push(1);\n    x.push("),
            "1);\n    x.push(2);"
        );
        assert_eq!(
            trim_prefix_overlap("let a = 1;\nlet b", "let a = 1;\n"),
            "let b"
        );
    }

    #[test]
    fn suffix_overlap_is_trimmed() {
        assert_eq!(trim_suffix_overlap("a, b)", ")"), "a, b");
        assert_eq!(trim_suffix_overlap("x = [1, 2]);", "]);\n"), "x = [1, 2");
        assert_eq!(trim_suffix_overlap("while", "e"), "while");
        assert_eq!(
            trim_suffix_overlap("\n    return 1\n}\n", "\n}\n"),
            "\n    return 1"
        );
        assert_eq!(trim_suffix_overlap("foo", ""), "foo");
    }

    #[test]
    fn single_line_mode_and_blank_answers() {
        assert_eq!(single_line("a(1)\nb"), "a(1)");
        let c = ctx("x = ", "\n", false);
        assert_eq!(clean("  \n\t", &c, &[], false), None);
        assert_eq!(clean("\nfoo", &c, &[], false), None);
        assert_eq!(clean("1\n", &c, &[], false).as_deref(), Some("1"));
        let c = ctx("fn f() {", "\n}", true);
        assert_eq!(
            clean("\n    1\n}", &c, &[], false).as_deref(),
            Some("\n    1")
        );
    }
}
