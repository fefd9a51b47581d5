//! A monitor's labels (key/value pairs checked as Kubernetes checks its labels) and
//! its severity, and the names they take in Prometheus and Alertmanager.
//!
//! `Labels` and `Severity` are stored inside `MonitorConfig` (format version 5):
//! never reorder the variants of `Severity`.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// The most labels one monitor may have.
pub const MAX_LABELS: usize = 32;

/// The most characters of a label's name (the part after any `prefix/`) and of a value.
pub const MAX_LABEL_NAME_CHARS: usize = 63;

/// The most characters of a key's prefix (a DNS subdomain).
pub const MAX_LABEL_PREFIX_CHARS: usize = 253;

/// How urgent a monitor's alerts are: Alertmanager's `severity` label, and the
/// webhook's `monitor.severity`. Stored: append only.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Severity {
    #[default]
    Critical,
    Warning,
    Info,
}

impl Severity {
    pub const ALL: [Self; 3] = [Self::Critical, Self::Warning, Self::Info];

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|severity| severity.as_str() == text)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Critical => "critical",
            Self::Warning => "warning",
            Self::Info => "info",
        }
    }
}

/// Why a label is refused; the message names the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LabelError {
    TooMany(usize),
    Key { key: String, why: &'static str },
    Value { key: String, why: &'static str },
}

impl fmt::Display for LabelError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooMany(count) => write!(formatter, "at most {MAX_LABELS} labels, not {count}"),
            Self::Key { key, why } => write!(formatter, "label key {key:?} {why}"),
            Self::Value { key, why } => write!(formatter, "the value of label {key:?} {why}"),
        }
    }
}

/// A monitor's labels, by key (sorted, so every rendering of them is in one order).
/// Every key and value was checked by [`Labels::new`] or [`Labels::insert`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Labels(BTreeMap<String, String>);

impl Labels {
    /// Checks every pair: a key of [`check_key`], a value of [`check_value`], at most
    /// [`MAX_LABELS`] of them.
    pub fn new(pairs: impl IntoIterator<Item = (String, String)>) -> Result<Self, LabelError> {
        let mut labels = Self::default();
        for (key, value) in pairs {
            labels.insert(key, value)?;
        }
        Ok(labels)
    }

    /// Adds or replaces one label, checked.
    pub fn insert(&mut self, key: String, value: String) -> Result<(), LabelError> {
        check_key(&key).map_err(|why| LabelError::Key {
            key: key.clone(),
            why,
        })?;
        check_value(&value).map_err(|why| LabelError::Value {
            key: key.clone(),
            why,
        })?;
        if !self.0.contains_key(&key) && self.0.len() >= MAX_LABELS {
            return Err(LabelError::TooMany(self.0.len() + 1));
        }
        self.0.insert(key, value);
        Ok(())
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_str()))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }
}

/// A key: an optional prefix (a DNS subdomain of at most [`MAX_LABEL_PREFIX_CHARS`]
/// characters) and `/`, then a name of 1 to [`MAX_LABEL_NAME_CHARS`] characters of
/// `[A-Za-z0-9]([-_.A-Za-z0-9]*[A-Za-z0-9])?`. The error reads after the key.
pub fn check_key(key: &str) -> Result<(), &'static str> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        if prefix.is_empty() || prefix.len() > MAX_LABEL_PREFIX_CHARS {
            return Err("must have a prefix of 1 to 253 characters before its '/'");
        }
        let dns_label = |part: &str| {
            (1..=63).contains(&part.len())
                && part
                    .bytes()
                    .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-')
                && !part.starts_with('-')
                && !part.ends_with('-')
        };
        if !prefix.split('.').all(dns_label) {
            return Err(
                "must have a prefix that is a DNS subdomain (lower-case letters, digits, '-' and '.')",
            );
        }
    }
    if name.is_empty() {
        return Err("must have a name (after any prefix/)");
    }
    if name.len() > MAX_LABEL_NAME_CHARS {
        return Err("must have a name of at most 63 characters");
    }
    if !is_label_text(name) {
        return Err(
            "must be letters, digits, '-', '_' and '.', starting and ending with a letter or digit",
        );
    }
    Ok(())
}

/// A value: empty, or 1 to [`MAX_LABEL_NAME_CHARS`] characters as a key's name.
pub fn check_value(value: &str) -> Result<(), &'static str> {
    if value.len() > MAX_LABEL_NAME_CHARS {
        return Err("must be at most 63 characters");
    }
    if !value.is_empty() && !is_label_text(value) {
        return Err(
            "must be empty or letters, digits, '-', '_' and '.', starting and ending with a letter or digit",
        );
    }
    Ok(())
}

/// `[A-Za-z0-9]([-_.A-Za-z0-9]*[A-Za-z0-9])?`, non-empty.
fn is_label_text(text: &str) -> bool {
    let bytes = text.as_bytes();
    let (Some(first), Some(last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    first.is_ascii_alphanumeric()
        && last.is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.'))
}

/// A label key as a Prometheus or Alertmanager label name: every character outside
/// `[A-Za-z0-9_]` becomes `_` (`app.kubernetes.io/team` → `app_kubernetes_io_team`).
/// A key cannot start with `_`, but may with a digit, which a label name cannot:
/// such a name gets a leading `_`.
pub fn sanitized_name(key: &str) -> String {
    let mut name = String::with_capacity(key.len() + 1);
    if key.starts_with(|c: char| c.is_ascii_digit()) {
        name.push('_');
    }
    name.extend(key.chars().map(|c| {
        if c.is_ascii_alphanumeric() || c == '_' {
            c
        } else {
            '_'
        }
    }));
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_values_are_checked_as_kubernetes_does() {
        for good in [
            "team",
            "a",
            "app.kubernetes.io/name",
            "example.com/x_y-z.1",
            "A1",
            &"k".repeat(63),
        ] {
            assert_eq!(check_key(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "-team",
            "team-",
            "te am",
            "/team",
            "Example.com/team",
            "example.com/",
            "a/b/c",
            "é",
            &"k".repeat(64),
        ] {
            assert!(check_key(bad).is_err(), "{bad:?}");
        }
        for good in ["", "payments", "v1.2_3-x"] {
            assert_eq!(check_value(good), Ok(()), "{good}");
        }
        for bad in ["-x", "x.", "a b", "a/b", &"v".repeat(64)] {
            assert!(check_value(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn errors_name_the_key_and_the_count_is_bounded() {
        let error = Labels::new([("bad key".to_owned(), "x".to_owned())])
            .expect_err("refused")
            .to_string();
        assert!(error.contains("\"bad key\""), "{error}");
        let error = Labels::new([("team".to_owned(), "a b".to_owned())])
            .expect_err("refused")
            .to_string();
        assert!(error.contains("\"team\""), "{error}");
        let many = (0..=MAX_LABELS).map(|index| (format!("k{index}"), String::new()));
        assert_eq!(Labels::new(many), Err(LabelError::TooMany(MAX_LABELS + 1)));
        let labels = Labels::new([
            ("b".to_owned(), "2".to_owned()),
            ("a".to_owned(), "1".to_owned()),
        ])
        .expect("valid");
        assert_eq!(labels.iter().collect::<Vec<_>>(), [("a", "1"), ("b", "2")]);
    }

    #[test]
    fn severities_parse_and_names_are_sanitized() {
        for severity in Severity::ALL {
            assert_eq!(Severity::parse(severity.as_str()), Some(severity));
        }
        assert_eq!(Severity::parse("fatal"), None);
        assert_eq!(Severity::default(), Severity::Critical);
        assert_eq!(
            sanitized_name("app.kubernetes.io/team"),
            "app_kubernetes_io_team"
        );
        assert_eq!(sanitized_name("team-name"), "team_name");
        assert_eq!(sanitized_name("1st"), "_1st");
    }
}
