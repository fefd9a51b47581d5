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

/// The secret in a push URL: 128 bits of OS randomness, shown as 22 base64url chars
/// (native), or a token a monitor brought from another monitoring tool (imported:
/// a Healthchecks UUID, an Uptime Kuma or Tianji token), kept as its text so the
/// URLs already deployed keep working (`docs/push.md`, "The token").
///
/// `Debug` is redacted so a token can never reach a log line by accident.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PushToken(TokenRepr);

#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
enum TokenRepr {
    Native([u8; 16]),
    Imported(Box<str>),
}

/// A token's text classified without copying it: what lookups key on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenForm<'a> {
    Native([u8; 16]),
    Imported(&'a str),
}

/// Why a chosen token is refused; reads after "push_token ".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenError {
    Shape,
    Guessable,
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Shape => write!(
                f,
                "must be {} base64url characters (a native token, 128 bits), or {} to {} \
                 characters of A-Z a-z 0-9 - _ . ~ (a token brought from another tool)",
                PushToken::TEXT_LEN,
                PushToken::IMPORTED_MIN_LEN,
                PushToken::IMPORTED_MAX_LEN
            ),
            Self::Guessable => write!(
                f,
                "is too easy to guess: it must carry at least {} bits of randomness (a \
                 UUID, or 22 or more random letters and digits)",
                PushToken::MIN_CHOSEN_BITS
            ),
        }
    }
}

impl PushToken {
    pub const TEXT_LEN: usize = 22;
    pub const IMPORTED_MIN_LEN: usize = 16;
    pub const IMPORTED_MAX_LEN: usize = 128;
    /// The least estimated randomness a chosen token must carry.
    pub const MIN_CHOSEN_BITS: f64 = 64.0;

    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(TokenRepr::Native(bytes))
    }

    /// Classifies a URL's token without allocating: 22 base64url characters that
    /// decode to 16 bytes are native; 16 to 128 URL-safe characters are imported;
    /// anything else is no token.
    pub fn form_of(text: &str) -> Option<TokenForm<'_>> {
        if text.len() == Self::TEXT_LEN {
            let mut bytes = [0u8; 16];
            if let Ok(16) = URL_SAFE_NO_PAD.decode_slice(text, &mut bytes) {
                return Some(TokenForm::Native(bytes));
            }
        }
        let shaped = (Self::IMPORTED_MIN_LEN..=Self::IMPORTED_MAX_LEN).contains(&text.len())
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'));
        shaped.then_some(TokenForm::Imported(text))
    }

    /// Parses the URL form; `None` if it is not a token's shape.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match Self::form_of(text)? {
            TokenForm::Native(bytes) => Self(TokenRepr::Native(bytes)),
            TokenForm::Imported(text) => Self(TokenRepr::Imported(text.into())),
        })
    }

    /// A token someone chose (brought from another tool): a token's shape, and hard
    /// enough to guess ([`estimated_bits`] at least [`Self::MIN_CHOSEN_BITS`]).
    pub fn choose(text: &str) -> Result<Self, TokenError> {
        let token = Self::parse(text).ok_or(TokenError::Shape)?;
        if estimated_bits(text) < Self::MIN_CHOSEN_BITS {
            return Err(TokenError::Guessable);
        }
        Ok(token)
    }

    /// A token declared in a monitors file: a native token's shape is taken as it is,
    /// as it always was (it says 128 bits); any other must pass [`Self::choose`].
    pub fn declared(text: &str) -> Result<Self, TokenError> {
        match Self::form_of(text) {
            Some(TokenForm::Native(bytes)) => Ok(Self::from_bytes(bytes)),
            _ => Self::choose(text),
        }
    }

    pub fn form(&self) -> TokenForm<'_> {
        match &self.0 {
            TokenRepr::Native(bytes) => TokenForm::Native(*bytes),
            TokenRepr::Imported(text) => TokenForm::Imported(text),
        }
    }

    /// The URL form. Only the API that hands the token to its owner calls this.
    pub fn reveal(&self) -> String {
        match &self.0 {
            TokenRepr::Native(bytes) => URL_SAFE_NO_PAD.encode(bytes),
            TokenRepr::Imported(text) => text.to_string(),
        }
    }
}

/// A rough upper estimate of the randomness in `text`, in bits: its length times the
/// lesser of the bits per character of the character classes it uses (lower case,
/// upper case, digits, punctuation) and the Shannon entropy of its characters. A
/// repeated or short pattern scores low; a random UUID scores about 140.
pub fn estimated_bits(text: &str) -> f64 {
    let length = text.chars().count();
    if length == 0 {
        return 0.0;
    }
    let mut counts = std::collections::HashMap::new();
    for c in text.chars() {
        *counts.entry(c).or_insert(0usize) += 1;
    }
    let shannon: f64 = counts
        .values()
        .map(|count| {
            let p = *count as f64 / length as f64;
            -p * p.log2()
        })
        .sum();
    let mut pool = 0u32;
    if text.chars().any(|c| c.is_ascii_lowercase()) {
        pool += 26;
    }
    if text.chars().any(|c| c.is_ascii_uppercase()) {
        pool += 26;
    }
    if text.chars().any(|c| c.is_ascii_digit()) {
        pool += 10;
    }
    if text.chars().any(|c| !c.is_ascii_alphanumeric()) {
        pool += 4;
    }
    length as f64 * shannon.min(f64::from(pool.max(1)).log2())
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

    /// Parses RFC 3339 (any offset; precision below a millisecond is dropped).
    pub fn parse_rfc3339(text: &str) -> Option<Self> {
        let moment =
            time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
                .ok()?;
        i64::try_from(moment.unix_timestamp_nanos() / 1_000_000)
            .ok()
            .map(Self)
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
        assert_eq!(PushToken::parse(&text), Some(token.clone()));
        assert_eq!(PushToken::parse(""), None);
        // One character short of a native token: an imported token's shape, another
        // token.
        assert!(matches!(
            PushToken::parse(&text[1..])
                .map(|short| short.form() == TokenForm::Imported(&text[1..])),
            Some(true)
        ));
        assert_eq!(PushToken::parse("!!!!!!!!!!!!!!!!!!!!!!"), None);
        assert_eq!(format!("{token:?}"), "PushToken(<redacted>)");
        // Imported tokens keep their text.
        let uuid = "f47ac10b-58cc-4372-a567-0e02b2c3d479";
        let imported = PushToken::parse(uuid).expect("imported");
        assert_eq!(imported.reveal(), uuid);
        assert_eq!(imported.form(), TokenForm::Imported(uuid));
        assert_eq!(format!("{imported:?}"), "PushToken(<redacted>)");
        assert_eq!(PushToken::parse("short"), None);
        assert_eq!(PushToken::parse(&"a".repeat(129)), None);
        assert_eq!(PushToken::parse("has a space in it ok"), None);
    }

    #[test]
    fn chosen_tokens_must_be_hard_to_guess() {
        for taken in [
            "f47ac10b-58cc-4372-a567-0e02b2c3d479", // Healthchecks (a UUID)
            "Qm9tY2sPZ3RyaGxhZ3lFbXh1aWxvV3N6",     // Uptime Kuma: 32 letters and digits
            "Xb3kq9T0vYh2LwQm7RzA1g",               // a native token's text
            "clx8f2k0q0000v8rk3a9d6h2m",            // a cuid
        ] {
            assert!(
                PushToken::choose(taken).is_ok(),
                "{taken}: {}",
                estimated_bits(taken)
            );
        }
        for guessable in [
            "aaaaaaaaaaaaaaaaaaaaaaaa",
            "abababababababababababab",
            "password-password",
            "0000000000000000-0000",
        ] {
            assert_eq!(
                PushToken::choose(guessable),
                Err(TokenError::Guessable),
                "{guessable}: {}",
                estimated_bits(guessable)
            );
        }
        assert_eq!(PushToken::choose("short"), Err(TokenError::Shape));
        // Native when it has a native token's shape, so lookups agree with creation.
        let chosen = PushToken::choose("Xb3kq9T0vYh2LwQm7RzA1g").expect("chosen");
        assert!(matches!(chosen.form(), TokenForm::Native(_)));
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
    fn timestamps_parse_rfc3339_with_any_offset() {
        assert_eq!(
            Timestamp::parse_rfc3339("2026-11-18T11:06:40.123Z"),
            Some(Timestamp::from_millis(1_795_000_000_123))
        );
        assert_eq!(
            Timestamp::parse_rfc3339("2026-11-18T12:06:40.123+01:00"),
            Some(Timestamp::from_millis(1_795_000_000_123))
        );
        assert_eq!(Timestamp::parse_rfc3339("2026-11-18"), None);
        assert_eq!(Timestamp::parse_rfc3339("tomorrow"), None);
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
