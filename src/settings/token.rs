//! The token as the user pasted it, made safe to send: invisible characters
//! and line ends around it are trimmed, a pasted `Bearer ` (or `Basic `)
//! scheme is removed, and one inside it is refused with its position, never
//! sent raw. With `auth.type: "Basic"` a `user:password` is base64-encoded;
//! an already encoded value is sent as is.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value};

use super::validate::optional_string;
use super::*;

/// How the token goes in `Authorization`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AuthScheme {
    /// `Authorization: Bearer <token>` (AutoDev's only scheme).
    #[default]
    Bearer,
    /// `Authorization: Basic <base64 of user:password>`.
    Basic,
}

impl AuthScheme {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthScheme::Bearer => "Bearer",
            AuthScheme::Basic => "Basic",
        }
    }
}

/// `authType` (a `customLlms` entry's `auth.type`).
pub(super) fn parse_auth_type(map: &Map<String, Value>, problems: &mut Vec<Problem>) -> AuthScheme {
    let Some(text) = optional_string(map, AUTH_TYPE, problems) else {
        return AuthScheme::Bearer;
    };
    match text.trim().to_ascii_lowercase().as_str() {
        "" | "bearer" => AuthScheme::Bearer,
        "basic" => AuthScheme::Basic,
        other => {
            problems.push(Problem::new(
                AUTH_TYPE,
                format!(
                    "`{other}` cannot be sent: use \"Bearer\" (Authorization: Bearer <token>) or \"Basic\" (Authorization: Basic <user:password, base64>); to send the token as is in another header, set tokenHeader (e.g. \"x-api-key\")"
                ),
            ));
            AuthScheme::Bearer
        }
    }
}

/// `customEngineToken`, cleaned up as described in the module comment;
/// `None` when empty.
pub(super) fn parse_token(
    map: &Map<String, Value>,
    scheme: AuthScheme,
    problems: &mut Vec<Problem>,
) -> Option<String> {
    let raw = optional_string(map, TOKEN, problems)?;
    clean(&raw, scheme, TOKEN).unwrap_or_else(|problem| {
        problems.push(problem);
        None
    })
}

/// A token as typed or read from a key source (`field` names where it came
/// from), cleaned up as described in the module comment; `None` when empty.
pub(super) fn clean(raw: &str, scheme: AuthScheme, field: &str) -> Result<Option<String>, Problem> {
    let mut token = trim_invisible(raw);
    for pasted in ["Bearer", "Basic"] {
        if token.len() > pasted.len()
            && token.is_char_boundary(pasted.len())
            && token[..pasted.len()].eq_ignore_ascii_case(pasted)
            && token[pasted.len()..].starts_with(|c: char| c.is_whitespace())
        {
            token = trim_invisible(&token[pasted.len()..]);
            break;
        }
    }
    if token.is_empty() {
        return Ok(None);
    }
    if scheme == AuthScheme::Basic && token.contains(':') {
        // user:password: spaces and non-ASCII letters are fine in a password.
        if let Some((at, c)) = first_bad(token, |c| !c.is_control() && !is_invisible(c)) {
            return Err(bad_character(field, at, c));
        }
        return Ok(Some(STANDARD.encode(token)));
    }
    if let Some((at, c)) = first_bad(token, |c| c.is_ascii_graphic()) {
        return Err(bad_character(field, at, c));
    }
    if scheme == AuthScheme::Basic && !is_encoded_credentials(token) {
        return Err(Problem::new(
            field,
            "with auth type Basic, give `user:password` (it is base64-encoded for you) or its base64 form",
        ));
    }
    Ok(Some(token.to_owned()))
}

/// Zero-width characters, the BOM and the like: invisible when pasted.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{200b}'..='\u{200f}' | '\u{2060}'..='\u{2064}' | '\u{feff}' | '\u{00ad}' | '\u{180e}'
    )
}

fn trim_invisible(text: &str) -> &str {
    text.trim_matches(|c: char| c.is_whitespace() || c.is_control() || is_invisible(c))
}

/// The 1-based position and the first character that fails `allowed`.
fn first_bad(text: &str, allowed: impl Fn(char) -> bool) -> Option<(usize, char)> {
    text.chars()
        .enumerate()
        .find(|(_, c)| !allowed(*c))
        .map(|(i, c)| (i + 1, c))
}

/// A problem naming the character (never quoting the token).
fn bad_character(field: &str, position: usize, c: char) -> Problem {
    let name = match c {
        ' ' => "a space",
        '\t' => "a tab",
        '\n' => "a line break",
        '\r' => "a carriage return",
        '\u{a0}' => "a non-breaking space",
        '\u{200b}' => "a zero-width space",
        '\u{200c}' | '\u{200d}' => "a zero-width joiner",
        '\u{2060}' => "a word joiner",
        '\u{feff}' => "a byte order mark",
        c if c.is_control() || c.is_whitespace() || is_invisible(c) => "an invisible character",
        _ => "a non-ASCII character",
    };
    let why = if field == TOKEN {
        "it was probably pasted with the key: copy the key again"
    } else {
        "check what the key source gives"
    };
    Problem::new(
        field,
        format!(
            "contains {name} (U+{:04X}) at position {position}, which an HTTP header cannot carry; {why}",
            c as u32
        ),
    )
}

/// True for base64 that decodes to `user:password`.
fn is_encoded_credentials(token: &str) -> bool {
    STANDARD
        .decode(token)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .is_some_and(|text| text.contains(':'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn token(value: &str, scheme: AuthScheme) -> Result<Option<String>, Vec<Problem>> {
        let map = json!({TOKEN: value});
        let mut problems = Vec::new();
        let token = parse_token(map.as_object().unwrap(), scheme, &mut problems);
        if problems.is_empty() {
            Ok(token)
        } else {
            Err(problems)
        }
    }

    #[test]
    fn pasted_forms_are_cleaned() {
        let bearer = AuthScheme::Bearer;
        for pasted in [
            "sk-1",
            " sk-1\n",
            "Bearer sk-1",
            "BEARER\tsk-1",
            "\u{feff}sk-1\u{200b}",
        ] {
            assert_eq!(
                token(pasted, bearer).unwrap().as_deref(),
                Some("sk-1"),
                "{pasted:?}"
            );
        }
        assert_eq!(token(" \u{200b} ", bearer).unwrap(), None);
        assert_eq!(token("Bearer", bearer).unwrap().as_deref(), Some("Bearer"));
        let e = token("sk\u{200b}1", bearer).unwrap_err();
        assert!(e[0].message.contains("U+200B") && e[0].message.contains("position 3"));
    }

    #[test]
    fn basic_credentials() {
        let basic = AuthScheme::Basic;
        assert_eq!(token("u:p w", basic).unwrap().as_deref(), Some("dTpwIHc="));
        assert_eq!(token("Basic dTpw", basic).unwrap().as_deref(), Some("dTpw"));
        assert!(token("sk-123", basic).is_err());
    }
}
