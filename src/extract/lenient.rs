//! JSON as servers really write it.
//!
//! serde_json refuses two things some servers send: lone surrogate escapes
//! (see [`super::surrogates`]) and the non-finite numbers `NaN`, `Infinity`
//! and `-Infinity`, which Python's `json.dumps` writes by default (a
//! `logprob` of `-Infinity` is common). [`parse_lenient`] reads both the way
//! Python's `json.loads` does, except that a non-finite number, which a JSON
//! value cannot hold, is read as `null`. [`looks_like_json`] tells a document
//! that failed to parse from plain text, so it never becomes answer text.

use serde_json::Value;

use super::surrogates::rewrite_lone_surrogates;

/// Parses JSON, accepting lone surrogate escapes (as markers, see
/// [`super::surrogates`]) and `NaN`/`Infinity`/`-Infinity` (as `null`).
pub fn parse_lenient(data: &str) -> Option<Value> {
    if let Ok(value) = serde_json::from_str(data) {
        return Some(value);
    }
    let finite = replace_non_finite(data);
    let data = match &finite {
        Some(rewritten) => match serde_json::from_str(rewritten) {
            Ok(value) => return Some(value),
            Err(_) => rewritten.as_str(),
        },
        None => data,
    };
    if !(data.contains("\\u") || data.contains("\\U")) {
        return None;
    }
    let marked = rewrite_lone_surrogates(data, |unit| format!("\\ufdd0{unit:04x}"))?;
    serde_json::from_str(&marked).ok()
}

/// True when `data` starts as a JSON object or array does (`{"`, `{}`,
/// `[{`, `[[`, `["`, `[]`, whitespace allowed): such an event that cannot
/// be read is skipped, never taken as text. Plain text such as `[1] a note`
/// or `{curly}` does not qualify.
pub fn looks_like_json(data: &str) -> bool {
    let mut rest = data.trim_start().chars();
    let opening = rest.next();
    let next = rest.find(|c| !c.is_whitespace());
    match opening {
        Some('{') => matches!(next, Some('"' | '}')),
        Some('[') => matches!(next, Some('{' | '[' | '"' | ']')),
        _ => false,
    }
}

/// The tokens Python writes for non-finite floats.
const NON_FINITE: [&str; 3] = ["-Infinity", "Infinity", "NaN"];

/// `data` with each `NaN`, `Infinity` and `-Infinity` in a value position
/// (outside strings, after `:`, `,`, `[` or at the start) replaced by
/// `null`; `None` when there is none.
fn replace_non_finite(data: &str) -> Option<String> {
    if !(data.contains("NaN") || data.contains("Infinity")) {
        return None;
    }
    let bytes = data.as_bytes();
    let mut out = String::with_capacity(data.len());
    let mut copied = 0;
    let mut in_string = false;
    let mut escaped = false;
    // The last byte outside strings that is not whitespace.
    let mut previous: Option<u8> = None;
    let mut i = 0;
    while i < bytes.len() {
        let byte = bytes[i];
        if in_string {
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_string = false;
                previous = Some(b'"');
            }
            i += 1;
            continue;
        }
        if byte == b'"' {
            in_string = true;
            i += 1;
            continue;
        }
        let value_position = matches!(previous, None | Some(b':' | b',' | b'['));
        let token = NON_FINITE
            .iter()
            .find(|t| bytes[i..].starts_with(t.as_bytes()));
        if let Some(token) = token.filter(|_| value_position) {
            let end = i + token.len();
            let ends_there = bytes
                .get(end)
                .is_none_or(|b| !(b.is_ascii_alphanumeric() || *b == b'_'));
            if ends_there {
                out.push_str(&data[copied..i]);
                out.push_str("null");
                copied = end;
                i = end;
                previous = Some(b'l');
                continue;
            }
        }
        if !byte.is_ascii_whitespace() {
            previous = Some(byte);
        }
        i += 1;
    }
    if copied == 0 {
        return None;
    }
    out.push_str(&data[copied..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn non_finite_numbers_are_read_as_python_reads_them() {
        let v = parse_lenient(
            r#"{"choices":[{"delta":{"content":"Hi"}}],"logprob":-Infinity,"a":[NaN, Infinity],"b":NaN}"#,
        )
        .unwrap();
        assert_eq!(v["choices"][0]["delta"]["content"], "Hi");
        assert_eq!(v["logprob"], json!(null));
        assert_eq!(v["a"], json!([null, null]));
        assert_eq!(v["b"], json!(null));
        assert_eq!(parse_lenient("NaN"), Some(json!(null)));
        // In strings, and as parts of other words, they are left alone.
        let v = parse_lenient(r#"{"t":"NaN, -Infinity \" Infinity","n":1}"#).unwrap();
        assert_eq!(v["t"], "NaN, -Infinity \" Infinity");
        assert_eq!(parse_lenient(r#"{"a":NaNx}"#), None);
        assert_eq!(parse_lenient(r#"{"a":Infinityy}"#), None);
        assert_eq!(parse_lenient(r#"{"a":-NaN}"#), None);
        assert_eq!(parse_lenient(r#"{"a":1 NaN}"#), None);
        // Both repairs at once.
        let v = parse_lenient(r#"{"c":"\ud83d","x":NaN}"#).unwrap();
        assert_eq!(v["x"], json!(null));
        assert!(v["c"].as_str().unwrap().starts_with('\u{FDD0}'));
    }

    #[test]
    fn what_looks_like_json() {
        for yes in [r#"{"a":"#, " { \"x", "{}", "[{", "[ [1]", r#"["a"]"#, "[]"] {
            assert!(looks_like_json(yes), "{yes}");
        }
        for no in ["[1] a note", "{curly}", "hello", "", "[", "- [ ] task"] {
            assert!(!looks_like_json(no), "{no}");
        }
    }
}
