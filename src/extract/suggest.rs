//! Suggestions for a JsonPath that matched nothing: paths that would have
//! produced text from the events the server actually sent.
//!
//! Candidates are string values whose content changes from event to event
//! (ids, object types and model names repeat and are not text); in a single
//! JSON body, where nothing can change, any non-empty string that is not an
//! identifier-like field. They are ranked by closeness to the configured
//! path: the same last key first, then the most shared segments, then the
//! most text.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::secrets::Secrets;

/// A path that would have produced text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Suggestion {
    pub path: String,
    /// The text it would have produced (the start of it).
    pub sample_text: String,
}

/// How many suggestions are returned.
const MAX_SUGGESTIONS: usize = 5;
/// How deep and how wide events are walked.
const MAX_DEPTH: usize = 12;
const MAX_LEAVES: usize = 400;
/// How much text a suggestion shows, in bytes.
const SAMPLE_TEXT_BYTES: usize = 240;
/// Field names that hold identifiers, not text (single-body case only).
const IDENTIFIER_KEYS: &[&str] = &[
    "id",
    "object",
    "model",
    "role",
    "type",
    "status",
    "finish_reason",
    "finishReason",
    "system_fingerprint",
    "created",
    "request_id",
    "service_tier",
    "done_reason",
    "stop_reason",
];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Name(String),
    Index(usize),
}

struct Candidate {
    segments: Vec<Segment>,
    values: Vec<String>,
}

/// Suggestions for `configured` (in normalized RFC 9535 form) over the parsed events.
/// Sample texts are shown without `secrets`.
pub fn suggest(events: &[Value], configured: &str, secrets: &Secrets) -> Vec<Suggestion> {
    let mut by_path: BTreeMap<String, Candidate> = BTreeMap::new();
    for event in events {
        let mut leaves = Vec::new();
        walk(event, &mut Vec::new(), &mut leaves);
        for (segments, text) in leaves {
            let path = render(&segments);
            by_path
                .entry(path)
                .or_insert_with(|| Candidate {
                    segments,
                    values: Vec::new(),
                })
                .values
                .push(text);
        }
    }
    let single = events.len() == 1;
    let target = parse_segments(configured);
    let mut ranked: Vec<(i64, usize, String, String)> = by_path
        .into_iter()
        .filter(|(_, c)| {
            let non_empty: Vec<&String> = c.values.iter().filter(|v| !v.is_empty()).collect();
            if single {
                let last_is_identifier = matches!(c.segments.last(), Some(Segment::Name(n)) if IDENTIFIER_KEYS.contains(&n.as_str()));
                !non_empty.is_empty() && !last_is_identifier
            } else {
                let mut distinct: Vec<&&String> = non_empty.iter().collect();
                distinct.sort();
                distinct.dedup();
                distinct.len() >= 2
            }
        })
        .map(|(path, c)| {
            let text: String = c.values.concat();
            (score(&c.segments, &target), text.chars().count(), path, secrets.excerpt(&text, SAMPLE_TEXT_BYTES, false))
        })
        .collect();
    ranked.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2)));
    ranked
        .into_iter()
        .take(MAX_SUGGESTIONS)
        .map(|(_, _, path, sample_text)| Suggestion { path, sample_text })
        .collect()
}

fn walk(value: &Value, at: &mut Vec<Segment>, out: &mut Vec<(Vec<Segment>, String)>) {
    if out.len() >= MAX_LEAVES || at.len() > MAX_DEPTH {
        return;
    }
    match value {
        Value::String(s) => out.push((at.clone(), s.clone())),
        Value::Object(map) => {
            for (key, child) in map {
                at.push(Segment::Name(key.clone()));
                walk(child, at, out);
                at.pop();
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate().take(16) {
                at.push(Segment::Index(i));
                walk(child, at, out);
                at.pop();
            }
        }
        _ => {}
    }
}

fn render(segments: &[Segment]) -> String {
    let mut path = String::from("$");
    for segment in segments {
        match segment {
            Segment::Index(i) => path.push_str(&format!("[{i}]")),
            Segment::Name(n) if is_identifier(n) => {
                path.push('.');
                path.push_str(n);
            }
            Segment::Name(n) => path.push_str(&format!(
                "['{}']",
                n.replace('\\', "\\\\").replace('\'', "\\'")
            )),
        }
    }
    path
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The names and indices of a path, read loosely (filters are skipped).
fn parse_segments(path: &str) -> Vec<Segment> {
    let mut segments = Vec::new();
    let mut name = String::new();
    let mut chars = path.trim_start_matches('$').chars().peekable();
    let flush = |name: &mut String, segments: &mut Vec<Segment>| {
        if !name.is_empty() {
            segments.push(Segment::Name(std::mem::take(name)));
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '.' => flush(&mut name, &mut segments),
            '[' => {
                flush(&mut name, &mut segments);
                let inner: String = chars.by_ref().take_while(|&c| c != ']').collect();
                let inner = inner.trim();
                if let Ok(i) = inner.parse::<usize>() {
                    segments.push(Segment::Index(i));
                } else if let Some(quoted) = inner
                    .strip_prefix(['\'', '"'])
                    .and_then(|s| s.strip_suffix(['\'', '"']))
                {
                    segments.push(Segment::Name(quoted.to_owned()));
                }
            }
            _ => name.push(c),
        }
    }
    flush(&mut name, &mut segments);
    segments
}

fn score(candidate: &[Segment], target: &[Segment]) -> i64 {
    let mut score = 0i64;
    if let (Some(Segment::Name(a)), Some(Segment::Name(b))) = (candidate.last(), target.last())
        && a == b
    {
        score += 100;
    }
    for segment in candidate {
        if target.contains(segment) {
            score += match segment {
                Segment::Name(_) => 10,
                Segment::Index(_) => 1,
            };
        }
    }
    score - (candidate.len() as i64 - target.len() as i64).abs()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn autodev_doc_path_suggests_delta_content_first() {
        let events: Vec<Value> = ["He", "llo", "!"]
            .iter()
            .enumerate()
            .map(|(i, t)| {
                json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "gpt",
                "obfuscation": format!("x{i}"), "choices": [{"index": 0, "delta": {"content": t}}]})
            })
            .collect();
        let s = suggest(
            &events,
            "$.choices[0].message.delta.content",
            &Secrets::default(),
        );
        assert_eq!(
            s[0],
            Suggestion {
                path: "$.choices[0].delta.content".into(),
                sample_text: "Hello!".into()
            }
        );
        assert!(s.iter().all(|s| s.path != "$.id" && s.path != "$.model"));
    }

    #[test]
    fn single_body_suggests_text_fields() {
        let events = vec![json!({"id": "x", "model": "m", "output": {"text": "the answer"}})];
        let s = suggest(&events, "$.choices[0].message.content", &Secrets::default());
        assert_eq!(
            s,
            vec![Suggestion {
                path: "$.output.text".into(),
                sample_text: "the answer".into()
            }]
        );
    }

    #[test]
    fn odd_names_are_quoted() {
        assert_eq!(
            render(&[Segment::Name("a b".into()), Segment::Index(2)]),
            "$['a b'][2]"
        );
        assert_eq!(
            parse_segments("$['a'].b[0]"),
            vec![
                Segment::Name("a".into()),
                Segment::Name("b".into()),
                Segment::Index(0)
            ]
        );
    }
}
