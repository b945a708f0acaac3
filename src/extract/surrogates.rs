//! UTF-16 surrogate pairs split across events.
//!
//! Servers that slice UTF-16 strings (Node-based ones) can send `"\ud83d"` in
//! one event and `"\udc4b"` in the next. serde_json refuses a lone surrogate
//! escape, so [`super::lenient::parse_lenient`] rewrites each lone one into a marker (the
//! noncharacter U+FDD0 followed by the four hex digits) and parses again;
//! [`Joiner`] then turns markers in the extracted text back into characters:
//! a high surrogate at the end of one piece joins a low surrogate at the start
//! of the next, and any other lone surrogate becomes U+FFFD.

/// Marks a lone surrogate in parsed text.
const MARKER: char = '\u{FDD0}';

/// Rewrites lone surrogate escapes into `\ufffd` (U+FFFD); `None` when there
/// is nothing to rewrite. For whole messages, where no later piece can
/// complete a pair (a prompt cut mid-emoji by JavaScript).
pub fn replace_lone_surrogates(data: &str) -> Option<String> {
    rewrite_lone_surrogates(data, |_| "\\ufffd".to_owned())
}

/// Rewrites each lone surrogate escape with `escape(unit)`; `None` when there
/// is nothing to rewrite.
pub(super) fn rewrite_lone_surrogates(
    data: &str,
    escape: impl Fn(u16) -> String,
) -> Option<String> {
    let bytes = data.as_bytes();
    let mut out = String::with_capacity(data.len() + 16);
    let mut changed = false;
    let mut i = 0;
    let mut copied = 0;
    while i + 1 < bytes.len() {
        if bytes[i] != b'\\' {
            i += 1;
            continue;
        }
        if bytes[i + 1] != b'u' {
            i += 2; // any other escape, `\\` included
            continue;
        }
        let Some(unit) = hex4(bytes, i + 2) else {
            i += 2;
            continue;
        };
        let is_high = (0xD800..0xDC00).contains(&unit);
        let is_low = (0xDC00..0xE000).contains(&unit);
        let paired_low = is_high
            && bytes.get(i + 6) == Some(&b'\\')
            && bytes.get(i + 7) == Some(&b'u')
            && hex4(bytes, i + 8).is_some_and(|next| (0xDC00..0xE000).contains(&next));
        if paired_low {
            i += 12;
        } else if is_high || is_low {
            out.push_str(&data[copied..i]);
            out.push_str(&escape(unit));
            i += 6;
            copied = i;
            changed = true;
        } else {
            i += 6;
        }
    }
    if !changed {
        return None;
    }
    out.push_str(&data[copied..]);
    Some(out)
}

fn hex4(bytes: &[u8], at: usize) -> Option<u16> {
    let digits = bytes.get(at..at + 4)?;
    u16::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()
}

/// Resolves markers in consecutive pieces of one channel.
#[derive(Debug, Default)]
pub struct Joiner {
    pending_high: Option<u16>,
}

impl Joiner {
    /// The piece with its markers resolved; a high surrogate at its end is
    /// held back for the next piece.
    pub fn join(&mut self, piece: &mut String) {
        if self.pending_high.is_none() && !piece.contains(MARKER) {
            return;
        }
        let chars: Vec<char> = piece.chars().collect();
        let mut out = String::with_capacity(piece.len());
        let mut i = 0;
        while i < chars.len() {
            let unit = (chars[i] == MARKER)
                .then(|| chars.get(i + 1..i + 5))
                .flatten()
                .and_then(|hex| u16::from_str_radix(&hex.iter().collect::<String>(), 16).ok());
            let Some(unit) = unit else {
                if let Some(_high) = self.pending_high.take() {
                    out.push(char::REPLACEMENT_CHARACTER);
                }
                out.push(chars[i]);
                i += 1;
                continue;
            };
            i += 5;
            match (self.pending_high.take(), unit) {
                (Some(high), low @ 0xDC00..=0xDFFF) => {
                    let code =
                        0x10000 + ((u32::from(high) - 0xD800) << 10) + (u32::from(low) - 0xDC00);
                    out.push(char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER));
                }
                (pending, high @ 0xD800..=0xDBFF) => {
                    if pending.is_some() {
                        out.push(char::REPLACEMENT_CHARACTER);
                    }
                    self.pending_high = Some(high);
                }
                (pending, _) => {
                    if pending.is_some() {
                        out.push(char::REPLACEMENT_CHARACTER);
                    }
                    out.push(char::REPLACEMENT_CHARACTER);
                }
            }
        }
        *piece = out;
    }

    /// At the end of the stream: a held-back high surrogate is U+FFFD.
    pub fn finish(&mut self) -> Option<char> {
        self.pending_high
            .take()
            .map(|_| char::REPLACEMENT_CHARACTER)
    }
}

#[cfg(test)]
mod tests {
    use super::super::lenient::parse_lenient;
    use super::*;
    use serde_json::Value;

    fn text(data: &str) -> String {
        parse_lenient(data).unwrap()["t"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    #[test]
    fn split_pair_is_rejoined() {
        let mut j = Joiner::default();
        let mut a = text(r#"{"t":"hi \ud83d"}"#);
        let mut b = text(r#"{"t":"\udc4b there"}"#);
        j.join(&mut a);
        j.join(&mut b);
        assert_eq!(format!("{a}{b}"), "hi 👋 there");
        assert_eq!(j.finish(), None);
    }

    #[test]
    fn lone_surrogates_become_replacement() {
        let mut j = Joiner::default();
        let mut a = text(r#"{"t":"a\udc4bb"}"#);
        j.join(&mut a);
        assert_eq!(a, "a\u{FFFD}b");
        let mut b = text(r#"{"t":"x\ud83d"}"#);
        j.join(&mut b);
        let mut c = text(r#"{"t":"y"}"#);
        j.join(&mut c);
        assert_eq!(format!("{b}{c}"), "x\u{FFFD}y");
        let mut d = text(r#"{"t":"\ud83d"}"#);
        j.join(&mut d);
        assert_eq!(j.finish(), Some('\u{FFFD}'));
    }

    #[test]
    fn lone_halves_can_be_replaced_outright() {
        let fixed = replace_lone_surrogates(r#"{"t":"cut \ud83d","u":"\ud83d\udc4b"}"#).unwrap();
        let v: Value = serde_json::from_str(&fixed).unwrap();
        assert_eq!(v["t"], "cut \u{FFFD}");
        assert_eq!(v["u"], "👋");
        assert_eq!(replace_lone_surrogates(r#"{"t":"\\ud83d"}"#), None);
    }

    #[test]
    fn valid_pairs_and_escaped_backslashes_are_untouched() {
        assert_eq!(text(r#"{"t":"\ud83d\udc4b"}"#), "👋");
        assert_eq!(text(r#"{"t":"\\ud83d"}"#), "\\ud83d");
        assert!(parse_lenient("not json").is_none());
    }
}
