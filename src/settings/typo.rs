//! "Did you mean": the known key closest to a mistyped one.

/// The known key within a small edit distance of `key`, ignoring case.
pub(super) fn closest<'a>(key: &str, known: &[&'a str]) -> Option<&'a str> {
    let key = key.to_ascii_lowercase();
    known
        .iter()
        .map(|k| (strsim::levenshtein(&key, &k.to_ascii_lowercase()), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 8))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

#[cfg(test)]
mod tests {
    use super::closest;

    #[test]
    fn near_keys_are_found_and_far_ones_not() {
        let known = ["customEngineServer", "customEngineToken", "proxy"];
        assert_eq!(
            closest("customEngineSever", &known),
            Some("customEngineServer")
        );
        assert_eq!(
            closest("CUSTOMENGINETOKEN", &known),
            Some("customEngineToken")
        );
        assert_eq!(closest("proxi", &known), Some("proxy"));
        assert_eq!(closest("temperature", &known), None);
    }
}
