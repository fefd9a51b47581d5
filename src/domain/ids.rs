//! Identifiers: monitor and channel ids, push tokens, and the timestamp type.
//!
//! Each is parsed once at the boundary ("parse, don't validate") so the rest of the
//! code never handles a raw string id.

use std::fmt;
use std::sync::Mutex;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

/// Declares an id type: a UUID v7 (so ids sort by creation time) behind a newtype,
/// made from 16 bytes or parsed from its hyphenated form, and shown that way.
///
/// A fresh id takes its time from the caller (`generate(now)`): the domain never reads
/// the clock.
macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ::serde::Serialize, ::serde::Deserialize)]
        pub struct $name(::uuid::Uuid);

        impl $name {
            /// A fresh id made at `at`, ordered after every id made before it by this
            /// process (even one made at a later `at`).
            pub fn generate(at: $crate::domain::ids::Timestamp) -> Self {
                Self($crate::domain::ids::uuid_v7_at(at))
            }

            pub fn from_bytes(bytes: [u8; 16]) -> Self {
                Self(::uuid::Uuid::from_bytes(bytes))
            }

            pub fn as_bytes(&self) -> &[u8; 16] {
                self.0.as_bytes()
            }

            /// Parses the hyphenated form the API hands out; `None` for anything else.
            pub fn parse(text: &str) -> Option<Self> {
                ::uuid::Uuid::try_parse(text).ok().map(Self)
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }
    };
}
pub(crate) use uuid_id;

/// Keeps this process's v7 ids in order: a counter within one millisecond, and never
/// back in time, whatever the times they are made at.
static V7_CONTEXT: Mutex<uuid::ContextV7> = Mutex::new(uuid::ContextV7::new());

/// A UUID v7 for the time `at` (before the epoch reads as the epoch).
pub(crate) fn uuid_v7_at(at: Timestamp) -> uuid::Uuid {
    uuid_v7_in(&V7_CONTEXT, at)
}

fn uuid_v7_in(context: &Mutex<uuid::ContextV7>, at: Timestamp) -> uuid::Uuid {
    let millis = u64::try_from(at.as_millis()).unwrap_or(0);
    let subsec_nanos = u32::try_from(millis % 1000).unwrap_or(0) * 1_000_000;
    uuid::Uuid::new_v7(uuid::Timestamp::from_unix(
        context,
        millis / 1000,
        subsec_nanos,
    ))
}

uuid_id!(
    /// A monitor's id.
    MonitorId
);

uuid_id!(
    /// A notification channel's id.
    ChannelId
);

/// The secret in a push URL: 128 bits of OS randomness, shown as 22 base64url chars.
///
/// `Debug` is redacted so a token can never reach a log line by accident.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PushToken([u8; 16]);

impl PushToken {
    pub const TEXT_LEN: usize = 22;

    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    /// Parses the URL form; `None` if it is not exactly a token's shape.
    pub fn parse(text: &str) -> Option<Self> {
        if text.len() != Self::TEXT_LEN {
            return None;
        }
        let mut bytes = [0u8; 16];
        match URL_SAFE_NO_PAD.decode_slice(text, &mut bytes) {
            Ok(16) => Some(Self(bytes)),
            _ => None,
        }
    }

    /// The URL form. Only the API that hands the token to its owner calls this.
    pub fn reveal(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }
}

impl fmt::Debug for PushToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PushToken(<redacted>)")
    }
}

/// Milliseconds since the Unix epoch, UTC. The domain's only notion of time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Timestamp(i64);

impl Timestamp {
    pub const fn from_millis(millis: i64) -> Self {
        Self(millis)
    }

    pub const fn as_millis(self) -> i64 {
        self.0
    }

    pub fn plus_seconds(self, seconds: u32) -> Self {
        Self(self.0.saturating_add(i64::from(seconds) * 1000))
    }

    /// Milliseconds from `self` until `later`, zero if `later` is not later.
    pub fn millis_until(self, later: Timestamp) -> u64 {
        u64::try_from(later.0.saturating_sub(self.0)).unwrap_or(0)
    }

    /// RFC 3339 in UTC with millisecond precision, e.g. `2026-11-25T21:30:00.123Z`.
    pub fn to_rfc3339(self) -> String {
        let nanos = i128::from(self.0) * 1_000_000;
        match time::OffsetDateTime::from_unix_timestamp_nanos(nanos) {
            Ok(moment) => {
                let date = moment.date();
                let clock = moment.time();
                format!(
                    "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
                    date.year(),
                    u8::from(date.month()),
                    date.day(),
                    clock.hour(),
                    clock.minute(),
                    clock.second(),
                    clock.millisecond()
                )
            }
            // Out of the representable range: only a corrupt record can get here, and a
            // readable marker beats a panic on a read path.
            Err(_) => format!("invalid-timestamp({})", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_token_round_trips_and_rejects_wrong_shapes() {
        let token = PushToken::from_bytes([7; 16]);
        let text = token.reveal();
        assert_eq!(text.len(), PushToken::TEXT_LEN);
        assert_eq!(PushToken::parse(&text), Some(token));
        assert_eq!(PushToken::parse(""), None);
        assert_eq!(PushToken::parse(&text[1..]), None);
        assert_eq!(PushToken::parse("!!!!!!!!!!!!!!!!!!!!!!"), None);
        assert_eq!(format!("{token:?}"), "PushToken(<redacted>)");
    }

    #[test]
    fn timestamps_format_as_rfc3339_utc() {
        assert_eq!(
            Timestamp::from_millis(0).to_rfc3339(),
            "1970-01-01T00:00:00.000Z"
        );
        assert_eq!(
            Timestamp::from_millis(1_795_000_000_123).to_rfc3339(),
            "2026-11-18T11:06:40.123Z"
        );
    }

    #[test]
    fn monitor_ids_parse_their_display_form() {
        let id = MonitorId::generate(Timestamp::from_millis(1_795_000_000_123));
        assert_eq!(MonitorId::parse(&id.to_string()), Some(id));
        assert_eq!(MonitorId::parse("nope"), None);
    }

    #[test]
    fn ids_carry_the_time_they_are_made_at_and_keep_their_order() {
        // A context of its own: the process-wide one has seen other tests' times.
        let context = Mutex::new(uuid::ContextV7::new());
        let at = Timestamp::from_millis(1_795_000_000_123);
        let first = uuid_v7_in(&context, at);
        let (seconds, nanos) = first.get_timestamp().expect("v7").to_unix();
        assert_eq!((seconds, nanos), (1_795_000_000, 123_000_000));
        // The same millisecond, then an earlier one: still after the first.
        let second = uuid_v7_in(&context, at);
        let third = uuid_v7_in(&context, Timestamp::from_millis(1_000));
        assert!(first < second && second < third, "{first} {second} {third}");
        // Ids use the process-wide context the same way.
        let id = MonitorId::generate(Timestamp::from_millis(1_000));
        assert_eq!(id.0.get_version_num(), 7);
    }
}
