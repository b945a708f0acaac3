//! The JsonPath dialect: RFC 9535 (serde_json_path), plus what users paste
//! from AutoDev, which uses Jayway JsonPath.
//!
//! Accepted as is or rewritten: a path without the leading `$`
//! (`choices[0].delta.content`), Jayway's parenthesised filters
//! `[?(@.index==0)]` and bracket names in either quote (both valid RFC 9535).
//! Jayway-only constructs (functions such as `.length()`, script indexes such
//! as `[(@.length-1)]`, the `=~`, `in`, `nin`, `size`, `empty`, `anyof`…
//! operators) are refused with an error that names the RFC 9535 way to say the
//! same thing.

use serde_json_path::JsonPath;

use super::{CompiledPath, PathError};

/// Jayway functions, which end a path, and what to write instead.
const FUNCTIONS: &[(&str, &str)] = &[
    (
        "length",
        "RFC 9535 has no path functions: select the array itself, or use `length(@.x)` inside a filter, e.g. `$[?length(@.choices) > 0]`",
    ),
    (
        "size",
        "RFC 9535 has no path functions: use `length(@.x)` inside a filter",
    ),
    ("first", "write `[0]` instead, e.g. `$.choices[0]`"),
    ("last", "write `[-1]` instead, e.g. `$.choices[-1]`"),
    ("index", "write the index in brackets instead, e.g. `[2]`"),
    (
        "keys",
        "RFC 9535 cannot select member names; `.*` selects the values",
    ),
    (
        "min",
        "RFC 9535 has no aggregate functions; select the values with `[*]`",
    ),
    (
        "max",
        "RFC 9535 has no aggregate functions; select the values with `[*]`",
    ),
    (
        "avg",
        "RFC 9535 has no aggregate functions; select the values with `[*]`",
    ),
    (
        "stddev",
        "RFC 9535 has no aggregate functions; select the values with `[*]`",
    ),
    (
        "sum",
        "RFC 9535 has no aggregate functions; select the values with `[*]`",
    ),
    (
        "concat",
        "RFC 9535 cannot build strings; several string matches are joined for you",
    ),
    (
        "append",
        "RFC 9535 cannot build arrays; select the values you need",
    ),
];

/// Jayway filter operators, and what to write instead.
const OPERATORS: &[(&str, &str)] = &[
    (
        "=~",
        "use `match(@.x, 'regex')` (whole string) or `search(@.x, 'regex')` (substring)",
    ),
    (" nin ", "write `@.x != 'a' && @.x != 'b'`"),
    (" in ", "write `@.x == 'a' || @.x == 'b'`"),
    (
        " subsetof ",
        "RFC 9535 has no set operators; compare members one by one",
    ),
    (
        " anyof ",
        "RFC 9535 has no set operators; compare members one by one",
    ),
    (
        " noneof ",
        "RFC 9535 has no set operators; compare members one by one",
    ),
    (" size ", "use `length(@.x) == n`"),
    (
        " empty ",
        "use `length(@.x) == 0` (or `> 0` for empty false)",
    ),
];

/// Compiles a path as users paste it.
pub fn compile(source: &str) -> Result<CompiledPath, PathError> {
    let trimmed = source.trim();
    let lead = source.len() - source.trim_start().len();
    let (normalized, shift) = if trimmed.starts_with('$') {
        (trimmed.to_owned(), 0usize)
    } else if trimmed.starts_with('[') {
        (format!("${trimmed}"), 1)
    } else {
        (format!("$.{trimmed}"), 2)
    };
    match JsonPath::parse(&normalized) {
        Ok(path) => Ok(CompiledPath {
            source: source.to_owned(),
            normalized,
            path,
        }),
        Err(e) => Err(jayway_hint(trimmed, lead).unwrap_or_else(|| PathError {
            column: e.position().saturating_sub(shift) + lead + 1,
            message: e.message().to_owned(),
        })),
    }
}

/// An error naming the Jayway-only construct in `path`, if it has one.
fn jayway_hint(path: &str, lead: usize) -> Option<PathError> {
    if let Some(error) = script_index(path, lead) {
        return Some(error);
    }
    if let Some(open) = path.strip_suffix(')').and_then(|p| p.rfind('(')) {
        let head = &path[..open];
        if let Some(dot) = head.rfind('.') {
            let name = &head[dot + 1..];
            if let Some((_, instead)) = FUNCTIONS.iter().find(|(f, _)| *f == name) {
                return Some(PathError {
                    column: lead + dot + 1,
                    message: format!(
                        "`.{name}()` is a Jayway JsonPath function, not RFC 9535: {instead}"
                    ),
                });
            }
        }
    }
    OPERATORS.iter().find_map(|(op, instead)| {
        path.find(op).map(|at| PathError {
            column: lead + at + 1 + usize::from(op.starts_with(' ')),
            message: format!(
                "`{}` is a Jayway JsonPath filter operator, not RFC 9535: {instead}",
                op.trim()
            ),
        })
    })
}

/// Jayway's script index `[(@.length-1)]`: RFC 9535 counts from the end
/// with a negative index, `[-1]`.
fn script_index(path: &str, lead: usize) -> Option<PathError> {
    let open = path.find("[(")?;
    let close = open + path[open..].find(")]")?;
    let script: String = path[open + 2..close]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let instead = match script
        .strip_prefix("@.length-")
        .and_then(|n| n.parse::<u64>().ok())
    {
        Some(n) if n > 0 => format!("write `[-{n}]` instead (RFC 9535 counts from the end with a negative index), e.g. `$.choices[-{n}]`"),
        _ => "RFC 9535 has no script expressions: use an index (`[-1]` is the last element) or a filter `[?...]`".to_owned(),
    };
    Some(PathError {
        column: lead + open + 1,
        message: format!(
            "`[{}]` is a Jayway JsonPath script index, not RFC 9535: {instead}",
            &path[open + 1..close + 1]
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pasted_forms_are_accepted() {
        for p in [
            "choices[0].delta.content",
            "$.choices[?(@.index==0)].delta.content",
            "$['choices'][0][\"delta\"].content",
            "[0].a",
            "  $.a ",
        ] {
            assert!(compile(p).is_ok(), "{p}");
        }
        assert_eq!(compile("choices[0]").unwrap().normalized, "$.choices[0]");
    }

    #[test]
    fn columns_are_in_the_users_text() {
        let e1 = compile("$.a[").unwrap_err();
        let e2 = compile("a[").unwrap_err();
        assert_eq!(e1.column, e2.column + 2, "{e1} / {e2}");
        assert_eq!(compile("$.choices[0.delta").unwrap_err().column, 12);
    }

    #[test]
    fn jayway_constructs_are_explained() {
        let e = compile("$.choices.length()").unwrap_err();
        assert!(e.message.contains("length(@.x)") && e.column == 10, "{e}");
        let e = compile("$.choices.first()").unwrap_err();
        assert!(e.message.contains("[0]"), "{e}");
        let e = compile("$.a[?(@.x =~ /ab/)]").unwrap_err();
        assert!(e.message.contains("match("), "{e}");
        let e = compile("$.choices[(@.length-1)].delta.content").unwrap_err();
        assert!(e.message.contains("`[-1]`") && e.column == 10, "{e}");
        let e = compile("$.a[?(@.x in ['a'])]").unwrap_err();
        assert!(e.message.contains("||") && e.column == 11, "{e}");
    }
}
