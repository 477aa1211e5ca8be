//! Turning client-chosen names into safe object keys and download file names.

/// The longest slug kept in an object key, in bytes.
const MAX_SLUG: usize = 100;

/// An ASCII slug of `name` that is safe as one object-key segment and as a file name: letters,
/// digits, `.`, `_` and `-`; runs of anything else become one `-`; no leading dots.
/// Returns `fallback` when nothing is left.
pub fn slug(name: &str, fallback: &str) -> String {
    let mut out = String::with_capacity(name.len().min(MAX_SLUG));
    for ch in name.chars() {
        let keep = ch.is_ascii_alphanumeric() || matches!(ch, '.' | '_' | '-');
        if keep {
            out.push(ch);
        } else if !out.ends_with('-') {
            out.push('-');
        }
        if out.len() >= MAX_SLUG {
            break;
        }
    }
    let trimmed = out.trim_matches(|c| c == '-' || c == '.');
    if trimmed.is_empty() {
        fallback.to_owned()
    } else {
        trimmed.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::slug;

    #[test]
    fn slug_keeps_safe_ascii_and_collapses_the_rest() {
        assert_eq!(slug("Users — pro plan", "x"), "Users-pro-plan");
        assert_eq!(slug("../../etc/passwd", "x"), "etc-passwd");
        assert_eq!(slug("a\0b\nc\"d", "x"), "a-b-c-d");
        assert_eq!(slug("日本語", "export"), "export");
        assert_eq!(slug("...", "export"), "export");
        assert!(slug(&"a".repeat(500), "x").len() <= 100);
    }
}
