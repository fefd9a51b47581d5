//! What a name (of a monitor, a channel or an API key) may be: 1 to [`MAX_NAME_CHARS`]
//! characters, no control characters, and something visible: a name of only white
//! space, NULs or zero-width characters would show as nothing in every list.

/// The most characters a name may have.
pub const MAX_NAME_CHARS: usize = 200;

/// Why a name is refused; the message reads after the field's name ("name must …").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameError {
    Length,
    Control,
    Blank,
}

impl std::fmt::Display for NameError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Length => write!(formatter, "must be 1 to {MAX_NAME_CHARS} characters"),
            Self::Control => formatter.write_str(
                "must not contain control characters (U+0000 to U+001F, U+007F to U+009F)",
            ),
            Self::Blank => formatter
                .write_str("must have a visible character, not only white space or invisible ones"),
        }
    }
}

/// Checks a name as given (it is kept as given: nothing is trimmed).
pub fn check_name(name: &str) -> Result<(), NameError> {
    if !(1..=MAX_NAME_CHARS).contains(&name.chars().count()) {
        return Err(NameError::Length);
    }
    // C0, DEL and C1: tabs and line breaks too, which would break a one-line listing.
    if name.chars().any(char::is_control) {
        return Err(NameError::Control);
    }
    if name
        .chars()
        .all(|c| c.is_whitespace() || is_default_ignorable(c))
    {
        return Err(NameError::Blank);
    }
    Ok(())
}

/// Unicode's `Default_Ignorable_Code_Point` (DerivedCoreProperties.txt): characters
/// that render as nothing, such as U+200B ZERO WIDTH SPACE, U+FEFF, the bidi controls
/// and the variation selectors.
fn is_default_ignorable(c: char) -> bool {
    matches!(
        u32::from(c),
        0x00AD
            | 0x034F
            | 0x061C
            | 0x115F..=0x1160
            | 0x17B4..=0x17B5
            | 0x180B..=0x180F
            | 0x200B..=0x200F
            | 0x202A..=0x202E
            | 0x2060..=0x206F
            | 0x3164
            | 0xFE00..=0xFE0F
            | 0xFEFF
            | 0xFFA0
            | 0xFFF0..=0xFFF8
            | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A
            | 0xE0000..=0xE0FFF
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_for_length_controls_and_something_visible() {
        let long = "n".repeat(MAX_NAME_CHARS);
        let too_long = "n".repeat(MAX_NAME_CHARS + 1);
        let accepted = [
            "backup",
            "nightly backup",
            " padded ",
            "é",
            "备份",
            "🚀",
            long.as_str(),
            // Invisible characters beside visible ones are the user's business.
            "zero\u{200B}width",
            "family: 👨\u{200D}👩\u{200D}👧",
        ];
        for name in accepted {
            assert_eq!(check_name(name), Ok(()), "{name:?}");
        }
        let refused = [
            ("", NameError::Length),
            (too_long.as_str(), NameError::Length),
            ("\0", NameError::Control),
            ("a\0b", NameError::Control),
            ("line\nbreak", NameError::Control),
            ("tab\there", NameError::Control),
            ("del\u{7F}", NameError::Control),
            ("c1\u{85}", NameError::Control),
            ("c1\u{9B}", NameError::Control),
            ("   ", NameError::Blank),
            ("\u{200B}", NameError::Blank),
            ("\u{200B}\u{200C}\u{200D}\u{2060}\u{FEFF}", NameError::Blank),
            (" \u{00A0}\u{3000}\u{2003}", NameError::Blank),
            ("\u{202E}\u{2066}", NameError::Blank),
            ("\u{FE0F}\u{E0041}", NameError::Blank),
            ("\u{3164}\u{115F}", NameError::Blank),
        ];
        for (name, error) in refused {
            assert_eq!(check_name(name), Err(error), "{name:?}");
        }
    }
}
