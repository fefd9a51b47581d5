//! A monitor's slug: the name its slug ping URL (`/ping/{ping_key}/{slug}`,
//! `docs/api.md`, "Ping URLs") reaches it by, unique among monitors.

/// The most characters a slug has.
pub const MAX_SLUG_CHARS: usize = 100;

/// What a slug is, for error messages.
pub const SLUG_RULE: &str = "1 to 100 of a-z 0-9 and -";

/// Whether `text` is a slug: 1 to [`MAX_SLUG_CHARS`] lower-case letters, digits and
/// dashes, as Healthchecks makes them.
pub fn is_slug(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= MAX_SLUG_CHARS
        && text
            .bytes()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_lower_case_letters_digits_and_dashes() {
        for good in ["backup", "db-backup-2", "0", "-", &"a".repeat(100)] {
            assert!(is_slug(good), "{good}");
        }
        for bad in [
            "",
            "Backup",
            "db_backup",
            "db backup",
            "é",
            "a/b",
            &"a".repeat(101),
        ] {
            assert!(!is_slug(bad), "{bad}");
        }
    }
}
