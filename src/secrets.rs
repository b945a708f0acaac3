//! Keeping the user's secrets out of logs and error data.
//!
//! [`Secrets`] holds the values configured for one completion (the token,
//! secret-looking header values, key-like URL query values). Text that leaves
//! the process and may echo them (error bodies, provider messages, samples)
//! goes through [`Secrets::scrub`]; a value that must be shown is [`mask`]ed.
//! A URL is shown through [`masked_url`], which masks key-like query values
//! however they are encoded (`%2F`, `+`) and the password.

use std::fmt;

use url::Url;
use url::form_urlencoded;

/// The secret values of one settings object.
#[derive(Clone, Default)]
pub struct Secrets {
    values: Vec<String>,
}

/// Shortest value treated as a secret: scrubbing shorter strings would mangle
/// ordinary text.
const MIN_SECRET_LEN: usize = 4;

impl Secrets {
    /// Adds a value to scrub.
    pub fn add(&mut self, value: &str) {
        let value = value.trim();
        if value.len() >= MIN_SECRET_LEN && !self.values.iter().any(|v| v == value) {
            self.values.push(value.to_owned());
            // Longest first, so a secret containing another is replaced whole.
            self.values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        }
    }

    /// Adds the value of every query parameter of `url` whose name looks
    /// like a credential, as the server reads it (`%XX` and `+` decoded) and
    /// as written in the URL, so text that echoes either form is scrubbed.
    pub fn add_query_keys(&mut self, url: &Url) {
        for (raw_name, raw_value) in url.query().into_iter().flat_map(query_pairs) {
            if is_secret_name(&decoded(raw_name)) {
                self.add(&decoded(raw_value));
                self.add(raw_value);
            }
        }
    }

    /// `text` with every secret replaced by its masked form.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for value in &self.values {
            if out.contains(value.as_str()) {
                out = out.replace(value.as_str(), &mask(value));
            }
        }
        out
    }

    /// At most `max_bytes` of `text`, scrubbed, safe to show. `was_cut` says
    /// `text` itself is the start of something longer. Secrets are replaced
    /// before cutting; where a cut leaves the beginning of a secret at the
    /// end, that beginning is removed too.
    pub fn excerpt(&self, text: &str, max_bytes: usize, was_cut: bool) -> String {
        // Only a secret that starts within `max_bytes` can show: scrubbing a
        // prefix that long plus the longest secret is enough, however big `text` is.
        let longest = self.values.first().map_or(0, String::len);
        let mut keep = text.len().min(max_bytes.saturating_add(longest));
        while !text.is_char_boundary(keep) {
            keep -= 1;
        }
        let mut cut = was_cut || keep < text.len();
        let mut out = self.scrub(&text[..keep]);
        if out.len() > max_bytes {
            let mut end = max_bytes;
            while !out.is_char_boundary(end) {
                end -= 1;
            }
            out.truncate(end);
            cut = true;
        }
        if cut {
            self.drop_partial_secret(&mut out);
        }
        out
    }

    /// Removes a secret's beginning (of at least four bytes) from the end of `text`.
    fn drop_partial_secret(&self, text: &mut String) {
        let longest = self
            .values
            .iter()
            .filter_map(|value| {
                (MIN_SECRET_LEN..value.len())
                    .rev()
                    .filter(|&k| value.is_char_boundary(k))
                    .find(|&k| text.ends_with(&value[..k]))
            })
            .max();
        if let Some(k) = longest {
            text.truncate(text.len() - k);
            text.push('…');
        }
    }
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secrets({} values)", self.values.len())
    }
}

/// A secret shown safely: `sk-…abcd` (a short prefix and the last four
/// characters) for long values, `…` alone for short ones.
pub fn mask(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    if chars.len() < 12 {
        return "…".to_owned();
    }
    let prefix: String = chars.iter().take(3).collect();
    let suffix: String = chars[chars.len() - 4..].iter().collect();
    format!("{prefix}…{suffix}")
}

/// `url` as it may be shown: the value of every query parameter whose name
/// looks like a credential masked whatever its encoding (the mask of the
/// decoded value, shown unencoded), the password masked, then any other
/// configured secret scrubbed.
pub fn masked_url(url: &Url, secrets: &Secrets) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.set_fragment(None);
    if shown.password().is_some() {
        let _ = shown.set_password(Some("…"));
    }
    let mut text = shown.to_string();
    if let Some(query) = url.query() {
        let pairs: Vec<String> = query_pairs(query)
            .map(|(raw_name, raw_value)| {
                if raw_value.is_empty() || !is_secret_name(&decoded(raw_name)) {
                    return format!("{raw_name}={raw_value}");
                }
                format!("{raw_name}={}", mask(&decoded(raw_value)))
            })
            .collect();
        text.push('?');
        text.push_str(&pairs.join("&"));
    }
    if let Some(fragment) = url.fragment() {
        text.push('#');
        text.push_str(fragment);
    }
    secrets.scrub(&text)
}

/// The `name=value` pairs of a query as written (a pair without `=` has an
/// empty value).
fn query_pairs(query: &str) -> impl Iterator<Item = (&str, &str)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
}

/// A query component as the server reads it (`%XX` and `+` decoded).
fn decoded(raw: &str) -> String {
    form_urlencoded::parse(format!("x={raw}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// A header's value as it may be shown: scrubbed of the configured secrets,
/// and masked whole when it carries a credential (`sensitive`, a
/// [`is_credential_header`] or [`is_secret_name`] name) in which no configured
/// secret was found (an encoded credential, a cookie).
pub fn masked_header(name: &str, value: &str, sensitive: bool, secrets: &Secrets) -> String {
    let scrubbed = secrets.scrub(value);
    let credential = sensitive || is_credential_header(name) || is_secret_name(name);
    if credential && scrubbed == value {
        mask(value)
    } else {
        scrubbed
    }
}

/// Headers that carry a credential whatever their value: masked in a
/// request and in a response alike.
pub fn is_credential_header(name: &str) -> bool {
    [
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
    ]
    .iter()
    .any(|h| name.eq_ignore_ascii_case(h))
}

/// True for a header or parameter name that usually carries a credential
/// (cookies included: a session cookie is as good as a key).
pub fn is_secret_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "key",
        "token",
        "secret",
        "auth",
        "password",
        "signature",
        "credential",
        "cookie",
    ]
    .iter()
    .any(|word| name.contains(word))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks() {
        assert_eq!(mask("sk-abcdefghijklmnop"), "sk-…mnop");
        assert_eq!(mask("short"), "…");
    }

    #[test]
    fn scrubs_every_occurrence_longest_first() {
        let mut s = Secrets::default();
        s.add("sk-1234567890abcdef");
        s.add("1234");
        s.add("ab");
        let out =
            s.scrub("Incorrect API key provided: sk-1234567890abcdef. Again sk-1234567890abcdef");
        assert!(!out.contains("sk-1234567890abcdef"));
        assert!(out.contains("sk-…cdef"));
        assert_eq!(s.scrub("ab"), "ab");
        assert!(format!("{s:?}").contains("values"));
    }

    #[test]
    fn excerpts_never_show_part_of_a_secret() {
        let mut s = Secrets::default();
        s.add("sk-TOKEN-secret-4f1d9a7c2b8e");
        let text = "key sk-TOKEN-secret-4f1d9a7c2b8e ".repeat(10);
        for max in 0..text.len() {
            let out = s.excerpt(&text, max, false);
            assert!(out.len() <= max + '…'.len_utf8(), "{max}: {out}");
            assert!(!out.contains("sk-TOKEN"), "{max}: {out}");
        }
        // Text already cut upstream, ending inside a secret.
        assert_eq!(s.excerpt("error: sk-TOKEN-sec", 100, true), "error: …");
        assert_eq!(
            s.excerpt("error: sk-TOKEN-sec", 100, false),
            "error: sk-TOKEN-sec"
        );
    }

    #[test]
    fn secret_names() {
        for n in [
            "Authorization",
            "x-api-key",
            "api-key",
            "X-Token",
            "client_secret",
            "key",
            "Cookie",
            "Set-Cookie",
            "Proxy-Authorization",
        ] {
            assert!(is_secret_name(n), "{n}");
        }
        assert!(!is_secret_name("Content-Type"));
    }

    #[test]
    fn urls_show_no_query_key_however_it_is_encoded() {
        let secrets = Secrets::default();
        for (query, hidden) in [
            ("key=ab%2Fcdefghijklmnop", "ab%2Fcdefghijklmnop"),
            ("key=ab%2fcdefghijklmnop", "ab%2fcdefghijklmnop"),
            ("api_key=pl+us+secret+value", "pl+us+secret+value"),
            ("x-api-key=pl%20us%20secret%20value", "secret"),
            ("%6Bey=encoded-name-secret-1", "encoded-name-secret"),
            ("token=short", "short"),
        ] {
            let url = Url::parse(&format!("http://h/v1?model=m&{query}&stream=1")).unwrap();
            let shown = masked_url(&url, &secrets);
            assert!(!shown.contains(hidden), "{query}: {shown}");
            // Known as secrets in both forms, for text that echoes the URL.
            let mut known = Secrets::default();
            known.add_query_keys(&url);
            let echoed = known.scrub(&format!("{} {}", url.as_str(), url.query().unwrap()));
            assert!(
                !echoed.contains(hidden) || hidden == "short",
                "{query}: {echoed}"
            );
            assert!(
                shown.contains("model=m") && shown.contains("stream=1"),
                "{shown}"
            );
            assert!(Url::parse(&shown).is_ok(), "{shown}");
        }
        let url = Url::parse("http://user:p%40ssword-1234@h/v1?q=1").unwrap();
        let shown = masked_url(&url, &secrets);
        assert!(
            !shown.contains("p%40ss") && shown.contains("q=1"),
            "{shown}"
        );
    }
}
