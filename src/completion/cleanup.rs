//! What comes back, made fit for ghost text. Each rule is one function with
//! its own tests; [`clean`] runs them in order:
//!
//! 1. [`cut_at_stops`]: the template's stop tokens, the user's `fim.stop`,
//!    and any special token of a known FIM family leaking into the text;
//! 2. [`strip_think`]: a reasoning model's `<think>…</think>`;
//! 3. [`chat_answer`] (chat mode): the code between `<COMPLETION>` tags, or
//!    from the first fence on; then [`strip_inline_code`]: single backticks;
//! 4. [`strip_fence`]: a markdown code fence around the answer;
//! 5. [`trim_prefix_overlap`]: lines before the cursor said again;
//! 6. [`trim_doubled_space`]: a space the text before the cursor ends with,
//!    said again (SentencePiece models such as Codestral and Code Llama);
//! 7. [`single_line`]: single-line mode ends at the first line break;
//! 8. [`trim_suffix_overlap`]: text that repeats what already follows the
//!    cursor (a closing `)` or `}`), or a line equal to the next line;
//! 9. trailing blanks and line breaks go; a blank answer gives nothing.

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
    let text = if chat {
        strip_inline_code(chat_answer(text))
    } else {
        text
    };
    let text = strip_fence(text);
    let text = trim_prefix_overlap(text, &ctx.prefix);
    let text = trim_doubled_space(text, &ctx.prefix);
    let text = if ctx.multiline {
        text
    } else {
        single_line(text)
    };
    let text = trim_suffix_overlap(text, &ctx.prefix, &ctx.suffix);
    // Trailing blanks and line breaks would only push the suffix down.
    let text = text.trim_end();
    if text.is_empty() {
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
/// there (the closing one may have been a stop); else from the first code
/// fence on, so prose around a fenced block is dropped (see [`strip_fence`]);
/// else the answer, without the hole marker.
pub fn chat_answer(text: &str) -> &str {
    let Some(start) = text.find(ANSWER_OPEN) else {
        // No tags: a model that talks around a fenced block; the block is the code.
        return match fence_start(text) {
            Some(fence) => &text[fence..],
            None => text.trim_start_matches(HOLE),
        };
    };
    let rest = &text[start + ANSWER_OPEN.len()..];
    let rest = match rest.find(ANSWER_CLOSE) {
        Some(end) => &rest[..end],
        None => rest,
    };
    rest.strip_prefix('\n').unwrap_or(rest)
}

/// The inside of a one-line answer in single backticks (`` `a + b` ``), as
/// chat models write code in prose.
pub fn strip_inline_code(text: &str) -> &str {
    let trimmed = text.trim();
    match trimmed
        .strip_prefix('`')
        .and_then(|rest| rest.strip_suffix('`'))
    {
        Some(inner) if !inner.is_empty() && !inner.contains(['`', '\n']) => inner,
        _ => text,
    }
}

/// Where the first line that opens a markdown fence starts.
fn fence_start(text: &str) -> Option<usize> {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if line.trim_start().starts_with("```") {
            return Some(offset);
        }
        offset += line.len();
    }
    None
}

/// The inside of a markdown fence the answer starts with: up to the line
/// that closes it (whatever a chat model says after that is not code), or
/// to the end when the closing fence is missing.
pub fn strip_fence(text: &str) -> &str {
    let trimmed = text.trim_start();
    let Some(rest) = trimmed.strip_prefix("```") else {
        return text;
    };
    // The info string (language) ends the opening line.
    let Some(newline) = rest.find('\n') else {
        return "";
    };
    let body = &rest[newline + 1..];
    let mut offset = 0;
    for line in body.split_inclusive('\n') {
        if line.trim_start().starts_with("```") {
            return body[..offset].trim_end_matches(['\n', '\r']);
        }
        offset += line.len();
    }
    body
}

/// Without a start that restates the text before the cursor: the longest
/// start of the answer that the prefix ends with, when it begins at the
/// start of one of the prefix's lines (its indentation aside, unless the
/// repeat is of whole lines before an empty cursor line), so the model said
/// those lines again. A repeat that begins mid-line (`1);` after
/// `x.push(`) is the code going on, and stays.
pub fn trim_prefix_overlap<'a>(text: &'a str, prefix: &str) -> &'a str {
    let cursor_line_has_text = !prefix
        .rsplit('\n')
        .next()
        .unwrap_or_default()
        .trim()
        .is_empty();
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
        let indent = before.rsplit('\n').next().unwrap_or_default();
        // On an empty cursor line, an earlier line said again comes with its
        // own indentation: `end` after `  end` closes an outer block.
        let line_start = indent.chars().all(|c| c == ' ' || c == '\t')
            && (indent.is_empty() || !head.contains('\n') || cursor_line_has_text);
        let said = head.chars().filter(|c| !c.is_whitespace()).count();
        if line_start && said >= MIN_RESTATED {
            return &text[n..];
        }
    }
    text
}

/// Without a leading space when the cursor already follows one after code
/// on its line (`x = ` answered ` 1`): models whose tokens carry their
/// leading space (Codestral, Code Llama) start with one more. Indentation
/// (nothing but blanks before the cursor) and runs of spaces stay.
pub fn trim_doubled_space<'a>(text: &'a str, prefix: &str) -> &'a str {
    let line = prefix.rsplit('\n').next().unwrap_or_default();
    let after_code = line.ends_with(' ') && !line.trim().is_empty();
    match text.strip_prefix(' ') {
        Some(rest) if after_code && rest.starts_with(|c: char| !c.is_whitespace()) => rest,
        _ => text,
    }
}

/// Whether a single-line answer read so far holds its whole line: a line
/// break after what [`clean`] removes first (a `<think>` block, a fence's
/// opening line, lines before the cursor said again, which may still be
/// going on), so streaming can stop there.
pub fn line_ended(text: &str, prefix: &str) -> bool {
    let text = strip_think(text);
    let body = match text.trim_start().strip_prefix("```") {
        Some(rest) => match rest.find('\n') {
            Some(newline) => &rest[newline + 1..],
            None => return false,
        },
        None => text,
    };
    body.contains(['\n', '\r'])
        && !restating(body, prefix)
        && trim_prefix_overlap(body, prefix).contains(['\n', '\r'])
}

/// Whether `text` may be the start of the model saying the lines before the
/// cursor again: a line of `prefix` (indentation aside) goes on with all of
/// `text` and further.
fn restating(text: &str, prefix: &str) -> bool {
    let text = text.trim_start_matches([' ', '\t']);
    if text.trim().is_empty() {
        return false;
    }
    let mut start = 0;
    for line in prefix.split_inclusive('\n') {
        let from = &prefix[start..];
        let from = from.trim_start_matches([' ', '\t']);
        if from.len() > text.len() && from.starts_with(text) {
            return true;
        }
        start += line.len();
    }
    false
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
/// punctuation (a closing bracket, quote, `;`) or at least four characters,
/// and trimming it does not unbalance the brackets of the cursor's line;
/// and, for a multi-line answer, from the first line equal to the rest of
/// the cursor's line or else to the next non-blank line (indentation included).
pub fn trim_suffix_overlap<'a>(text: &'a str, prefix: &str, suffix: &str) -> &'a str {
    let mut text = text;
    // The next line is compared with its indentation: a `}` that closes a
    // block the answer opened is indented deeper than the suffix's `}`.
    let next_line = suffix
        .split('\n')
        .skip(1)
        .map(str::trim_end)
        .find(|l| !l.trim().is_empty());
    let rest_of_line = suffix.split('\n').next().unwrap_or_default().trim();
    let repeats = |line: &str| match next_line {
        _ if !rest_of_line.is_empty() => line.trim() == rest_of_line,
        Some(next) => line.trim_end() == next,
        None => false,
    };
    if text.contains('\n') {
        let mut offset = 0;
        for (i, line) in text.split_inclusive('\n').enumerate() {
            if i > 0 && repeats(line) {
                text = text[..offset].trim_end_matches(['\n', '\r']);
                break;
            }
            offset += line.len();
        }
    }
    let before = prefix.rsplit('\n').next().unwrap_or_default();
    let after = suffix.split('\n').next().unwrap_or_default();
    let suffix = suffix.trim_start_matches([' ', '\t']);
    for (start, _) in text.char_indices() {
        let tail = &text[start..];
        if tail.trim().is_empty() || !suffix.starts_with(tail) {
            continue;
        }
        let punctuation = tail.chars().all(|c| !c.is_alphanumeric() && c != '_');
        // A closer the answer opened itself (`a(1)` in `f(|)`) is not a repeat:
        // brackets are trimmed only when that leaves the line no less balanced.
        let kept = &text[..start];
        let balanced = !tail.contains(BRACKETS)
            || unbalanced(&[before, kept, after]) <= unbalanced(&[before, text, after]);
        if (punctuation || tail.chars().count() >= 4) && balanced {
            return kept.trim_end_matches([' ', '\t']);
        }
    }
    text
}

/// The brackets the suffix-overlap rule counts.
const BRACKETS: [char; 6] = ['(', ')', '[', ']', '{', '}'];

/// How many brackets of `parts`, read as one text, are left unmatched:
/// openers minus closers of each kind, in absolute value, summed.
fn unbalanced(parts: &[&str]) -> u64 {
    let mut depth = [0i64; 3];
    for c in parts.iter().flat_map(|p| p.chars()) {
        match c {
            '(' => depth[0] += 1,
            ')' => depth[0] -= 1,
            '[' => depth[1] += 1,
            ']' => depth[1] -= 1,
            '{' => depth[2] += 1,
            '}' => depth[2] -= 1,
            _ => {}
        }
    }
    depth.iter().map(|d| d.unsigned_abs()).sum()
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
        assert_eq!(strip_fence("```py\nx = 1\n```\nThis sets x."), "x = 1");
    }

    #[test]
    fn chat_answers_are_unwrapped() {
        assert_eq!(
            chat_answer("Sure:\n<COMPLETION>a + b</COMPLETION> done"),
            "a + b"
        );
        assert_eq!(chat_answer("<COMPLETION>\na + b"), "a + b");
        assert_eq!(chat_answer("a + b"), "a + b");
        assert_eq!(
            strip_fence(chat_answer("Here:\n```js\nf(1)\n```\nDone.")),
            "f(1)"
        );
        assert_eq!(strip_think("<think>hmm</think>\nx"), "x");
        assert_eq!(strip_inline_code(" `a + b`\n"), "a + b");
        assert_eq!(strip_inline_code("`a` + `b`"), "`a` + `b`");
        assert_eq!(strip_inline_code("```"), "```");
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
        assert_eq!(
            trim_prefix_overlap("x = 1\n    y = 2", "    x = 1\n    y = "),
            "2"
        );
        assert_eq!(trim_prefix_overlap("end\n", "  if x\n  end\n"), "end\n");
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
        assert_eq!(trim_suffix_overlap("a, b)", "sum(", ")"), "a, b");
        assert_eq!(
            trim_suffix_overlap("x = [1, 2]);", "f(", "]);\n"),
            "x = [1, 2"
        );
        assert_eq!(trim_suffix_overlap("while", "", "e"), "while");
        assert_eq!(
            trim_suffix_overlap("\n    return 1\n}\n", "fn f() {", "\n}\n"),
            "\n    return 1"
        );
        assert_eq!(trim_suffix_overlap("foo", "", ""), "foo");
        assert_eq!(
            trim_suffix_overlap(
                "\n    if x {\n        y();\n    }\n    z()\n}",
                "fn f() {",
                "\n}\n"
            ),
            "\n    if x {\n        y();\n    }\n    z()"
        );
    }

    #[test]
    fn a_doubled_space_is_trimmed_after_code_only() {
        assert_eq!(trim_doubled_space(" 1", "x = "), "1");
        assert_eq!(trim_doubled_space(" 1", "x ="), " 1");
        assert_eq!(trim_doubled_space(" x", "    "), " x");
        assert_eq!(trim_doubled_space("  # note", "x = 1 "), "  # note");
    }

    #[test]
    fn single_line_mode_and_blank_answers() {
        assert_eq!(single_line("a(1)\nb"), "a(1)");
        assert!(line_ended("a(1)\nb", ""));
        assert!(!line_ended("```python\n", ""));
        assert!(line_ended("```python\nsum(x)\n", ""));
        assert!(!line_ended("<think>a\nb", ""));
        let prefix = "x = add(\n    a,\n    b";
        assert!(!line_ended("x = add(\n", prefix));
        assert!(!line_ended("x = add(\n    a,\n", prefix));
        assert!(line_ended("x = add(\n    a,\n    b, c\n", prefix));
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
