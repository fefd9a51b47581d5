//! What pushmon shows the public, by choice: badges (a monitor's or a tag's status as
//! an image or shields.io JSON, at a URL with a key of its own) and status pages (a
//! read-only page of chosen monitors). Neither ever names a push token: a badge's key
//! is its own random secret, so publishing a badge reveals nothing that can push.
//!
//! Pure data and its rules (what a slug may be); records are stored by
//! `store::publications`, served by `http::publications` and `web`.

use super::ids::{MonitorId, Timestamp};

super::ids::uuid_id!(
    /// A badge's id: names it in the API (`DELETE /api/badges/{id}`).
    BadgeId
);

super::ids::uuid_id!(
    /// A status page's id.
    StatusPageId
);

/// Whose status a badge or a status page shows.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Target {
    Monitor(MonitorId),
    /// Every monitor with this tag.
    Tag(String),
}

/// A badge: `/badge/<key>.svg` and `/badge/<key>.json`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Badge {
    pub id: BadgeId,
    /// The URL's secret: 22 URL-safe base64 characters (128 random bits).
    pub key: String,
    pub target: Target,
    /// The badge's left-hand text; `None`: the monitor's name, or the tag.
    pub label: Option<String>,
    pub created_at: Timestamp,
}

/// A public status page: `/status/<slug>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusPage {
    pub id: StatusPageId,
    pub slug: String,
    pub title: String,
    /// The monitors it shows: by id, or every monitor with a tag.
    pub targets: Vec<Target>,
    pub created_at: Timestamp,
}

/// A badge or a status page, as one log holds them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Publication {
    Badge(Badge),
    StatusPage(StatusPage),
}

impl Publication {
    /// The id its record is kept under.
    pub fn record_id(&self) -> [u8; 16] {
        match self {
            Self::Badge(badge) => *badge.id.as_bytes(),
            Self::StatusPage(page) => *page.id.as_bytes(),
        }
    }
}

/// The most characters of a slug.
pub const MAX_SLUG_CHARS: usize = 64;

/// What [`check_slug`] says of a slug it refuses.
pub const SLUG_RULE: &str = "slug must be 1 to 64 of a-z, 0-9 and -, not starting or ending with -";

/// A slug is 1 to 64 of `a-z`, `0-9` and `-`, neither starting nor ending with `-`.
pub fn check_slug(slug: &str) -> Result<(), &'static str> {
    let valid = (1..=MAX_SLUG_CHARS).contains(&slug.len())
        && slug
            .bytes()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-')
        && !slug.starts_with('-')
        && !slug.ends_with('-');
    if valid { Ok(()) } else { Err(SLUG_RULE) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        for good in ["status", "a", "prod-2", &"x".repeat(64)] {
            assert_eq!(check_slug(good), Ok(()), "{good}");
        }
        for bad in ["", "-a", "a-", "A", "a b", "a/b", "é", &"x".repeat(65)] {
            assert!(check_slug(bad).is_err(), "{bad}");
        }
    }
}
