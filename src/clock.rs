//! The only place that reads wall-clock time.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::domain::ids::Timestamp;

/// Now, as the domain counts time. A clock before 1970 reads as the epoch.
#[allow(clippy::disallowed_methods)] // This is the one sanctioned reader of the clock.
pub fn now() -> Timestamp {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|since| i64::try_from(since.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    Timestamp::from_millis(millis)
}
