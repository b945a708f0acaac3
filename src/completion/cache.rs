//! Recent completions, so that typing the characters of a shown suggestion
//! gets the rest of it with no request. An entry is keyed by the settings
//! (a fingerprint), the end of the text before the cursor and the start of
//! the text after it; a lookup hits when the new prefix is an entry's prefix
//! followed by the first characters of its suggestion, and the suffix is the
//! entry's (closing brackets or quotes the editor added in front aside).

use std::collections::VecDeque;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;

use crate::settings::Settings;

/// Entries kept; the least recently used goes first.
const CAPACITY: usize = 256;
/// Bytes of the prefix (its end) and of the suffix (its start) in a key.
const PREFIX_TAIL: usize = 2048;
const SUFFIX_HEAD: usize = 512;
/// What editors insert after the cursor when the user types the opening one.
const AUTO_CLOSED: [char; 6] = [')', ']', '}', '"', '\'', '`'];

/// The cache of one sidecar.
#[derive(Debug, Default)]
pub struct Cache {
    entries: Mutex<VecDeque<Entry>>,
}

#[derive(Debug, Clone)]
struct Entry {
    settings: u64,
    prefix_tail: String,
    suffix_head: String,
    text: String,
}

/// What identifies the settings of a completion in the cache: everything
/// that changes the request or the clean-up.
pub fn fingerprint(settings: &Settings) -> u64 {
    let mut hasher = DefaultHasher::new();
    settings.url.as_str().hash(&mut hasher);
    settings.token.hash(&mut hasher);
    format!("{:?}", settings.body).hash(&mut hasher);
    format!("{:?}", settings.fim).hash(&mut hasher);
    format!(
        "{:?}",
        settings.content_path.as_ref().map(|p| &p.normalized)
    )
    .hash(&mut hasher);
    for (name, value) in &settings.custom_headers {
        name.as_str().hash(&mut hasher);
        value.as_bytes().hash(&mut hasher);
    }
    hasher.finish()
}

fn tail(text: &str, bytes: usize) -> &str {
    let mut start = text.len().saturating_sub(bytes);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

fn head(text: &str, bytes: usize) -> &str {
    let mut end = bytes.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

impl Cache {
    /// The rest of a cached suggestion for this position, if any.
    pub fn get(&self, settings: u64, prefix: &str, suffix: &str) -> Option<String> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let found = entries.iter().position(|e| {
            e.settings == settings && same_suffix(e, suffix) && typed(e, prefix).is_some()
        })?;
        let entry = entries.remove(found)?;
        let typed = typed(&entry, prefix)?;
        let rest = entry.text[typed..].to_owned();
        entries.push_front(entry);
        Some(rest)
    }

    /// Keeps a suggestion for this position.
    pub fn put(&self, settings: u64, prefix: &str, suffix: &str, text: &str) {
        let entry = Entry {
            settings,
            prefix_tail: tail(prefix, PREFIX_TAIL).to_owned(),
            suffix_head: head(suffix, SUFFIX_HEAD).to_owned(),
            text: text.to_owned(),
        };
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.retain(|e| {
            !(e.settings == entry.settings
                && e.prefix_tail == entry.prefix_tail
                && e.suffix_head == entry.suffix_head)
        });
        entries.push_front(entry);
        entries.truncate(CAPACITY);
    }
}

/// Whether `suffix` is the entry's, or the entry's after closing characters
/// the editor put after the cursor as the user typed along (`(` typed, `)`
/// added): typing `compute(` along `compute(a, b)` still hits.
fn same_suffix(entry: &Entry, suffix: &str) -> bool {
    let added = suffix.len() - suffix.trim_start_matches(AUTO_CLOSED).len();
    (0..=added).any(|n| head(&suffix[n..], SUFFIX_HEAD) == entry.suffix_head)
}

/// How much of the entry's suggestion `prefix` has typed already: `Some(n)`
/// when `prefix` is the entry's prefix followed by its first `n` bytes and
/// some of the suggestion is left. The prefixes' tails must be equal, not
/// merely end alike: after typing `f` at the start of a file, the entry of
/// the empty prefix is one typed character, never zero.
fn typed(entry: &Entry, prefix: &str) -> Option<usize> {
    entry.text.char_indices().map(|(i, _)| i).find(|&n| {
        let typed = &entry.text[..n];
        prefix.ends_with(typed)
            && tail(&prefix[..prefix.len() - typed.len()], PREFIX_TAIL) == entry.prefix_tail
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typing_along_a_suggestion_hits() {
        let cache = Cache::default();
        cache.put(1, "let x = ", ";\n", "compute(a, b)");
        assert_eq!(
            cache.get(1, "let x = ", ";\n").as_deref(),
            Some("compute(a, b)")
        );
        assert_eq!(
            cache.get(1, "let x = comp", ";\n").as_deref(),
            Some("ute(a, b)")
        );
        assert_eq!(
            cache.get(1, "let x = compute(a, b", ";\n").as_deref(),
            Some(")")
        );
        assert_eq!(
            cache.get(1, "let x = compute(a, b)", ";\n"),
            None,
            "all typed"
        );
        assert_eq!(
            cache.get(1, "let x = cop", ";\n"),
            None,
            "typed something else"
        );
        assert_eq!(cache.get(2, "let x = comp", ";\n"), None, "other settings");
        assert_eq!(cache.get(1, "let x = comp", "x;\n"), None, "other suffix");
        assert_eq!(
            cache.get(1, "let x = compute(", ");\n").as_deref(),
            Some("a, b)"),
            "a closer added by the editor"
        );
        assert_eq!(cache.get(1, "let y = comp", ";\n"), None, "other prefix");
        cache.put(1, "", "", "fn main() {}");
        assert_eq!(cache.get(1, "f", "").as_deref(), Some("n main() {}"));
        assert_eq!(cache.get(1, "x\n", ""), None, "a longer prefix");
    }

    #[test]
    fn the_least_recently_used_entry_goes_first() {
        let cache = Cache::default();
        for i in 0..=CAPACITY {
            cache.put(1, &format!("p{i} "), "", "x()");
        }
        assert_eq!(cache.get(1, "p0 ", ""), None);
        assert_eq!(cache.get(1, "p1 ", "").as_deref(), Some("x()"));
        assert_eq!(cache.entries.lock().unwrap().len(), CAPACITY);
    }

    #[test]
    fn long_prefixes_are_keyed_by_their_end() {
        let cache = Cache::default();
        let long = "x".repeat(5000) + "ab";
        cache.put(1, &long, "", "cd");
        let typed = long.clone() + "c";
        assert_eq!(cache.get(1, &typed, "").as_deref(), Some("d"));
    }
}
