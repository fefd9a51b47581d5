//! The Healthchecks-compatible ping URLs (`docs/api.md`, "Ping URLs"): which monitor a
//! ping's path names (by push token, or by the installation's ping key and a slug),
//! and what its path, query and body say, as a [`Signal`]. Everything else a ping
//! goes through (rate limits, the lookup, the delivery to the actor, the answer) is
//! the push's, in `ingress`. As for a push, all of it is checked before the token or
//! slug is looked up.

use subtle::ConstantTimeEq as _;

use crate::domain::event::{InstanceName, MAX_INSTANCE_BYTES, Output, RunId};
use crate::domain::ping_key::PingKey;
use crate::domain::signal::{Signal, SignalKind};
use crate::domain::slug;

use super::error::ApiError;

/// The monitor a ping URL names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target<'a> {
    /// `/ping/{token}…`
    Token(&'a str),
    /// `/ping/{ping_key}/{slug}…`; `key_matches` says whether the key is this
    /// installation's (if not, no monitor is named).
    Slug { slug: &'a str, key_matches: bool },
}

/// What a ping URL's path segments (after `/ping/`) name and ask, with `ping_key` the
/// installation's. Two segments are a token and an action, or, when the first has a
/// ping key's shape and the second is no action, a ping key and a slug.
pub fn parse_path<'a>(
    segments: &'a [String],
    ping_key: &PingKey,
) -> (Target<'a>, Result<Action, ApiError>) {
    let key_matches = |text: &str| {
        PingKey::parse(text)
            .is_some_and(|given| bool::from(given.as_bytes().ct_eq(ping_key.as_bytes())))
    };
    let slug_target = |key: &str, slug: &'a str| -> Result<Target<'a>, ApiError> {
        if !slug::is_slug(slug) {
            return Err(ApiError::BadRequest(format!(
                "a slug is {}, not {:?}",
                slug::SLUG_RULE,
                shown(slug)
            )));
        }
        Ok(Target::Slug {
            slug,
            key_matches: key_matches(key),
        })
    };
    match segments {
        [token] => (Target::Token(token), Ok(Action::Success)),
        // A number is an exit status, a bad one too (a native token has a ping key's
        // shape: `/ping/{token}/256` is a 400, not the slug `256`).
        [first, second] => match Action::parse(second) {
            Err(_) if PingKey::parse(first).is_some() && !is_number(second) => {
                match slug_target(first, second) {
                    Ok(target) => (target, Ok(Action::Success)),
                    Err(error) => (Target::Token(first), Err(error)),
                }
            }
            action => (Target::Token(first), action),
        },
        [key, slug, action] => match slug_target(key, slug) {
            Ok(target) => (target, Action::parse(action)),
            Err(error) => (Target::Token(key), Err(error)),
        },
        // The router has no other ping route; a path that does not decode names none.
        _ => (Target::Token(""), Ok(Action::Success)),
    }
}

/// Whether a path segment is a whole number: what [`Action::parse`] reads as an exit
/// status.
fn is_number(segment: &str) -> bool {
    !segment.is_empty() && segment.bytes().all(|byte| byte.is_ascii_digit())
}

/// Whether a slug ping's query asks to create its monitor (`?create=1`).
pub fn wants_create(query: Option<&str>) -> bool {
    query.is_some_and(|query| {
        form_urlencoded::parse(query.as_bytes()).any(|(key, value)| key == "create" && value == "1")
    })
}

/// A monitor made by `?create=1` is due daily and goes down 25 hours after its last
/// success, as Healthchecks' default period of a day and grace of an hour.
pub const AUTO_CREATED_INTERVAL_SECONDS: u32 = 86_400;
pub const AUTO_CREATED_TIMEOUT_SECONDS: u32 = 90_000;

/// The answer header saying how many bytes of a ping's body are kept, as
/// Healthchecks sends it.
pub const BODY_LIMIT_HEADER: &str = "ping-body-limit";

/// What the last segment of a ping URL asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// `/ping/{token}`: a success.
    Success,
    Start,
    Fail,
    Log,
    /// `/ping/{token}/{0-255}`: a run's exit status.
    Exit(u8),
}

impl Action {
    /// `start`, `fail`, `log`, or an exit status from 0 to 255; anything else is a
    /// 400 that says what is accepted.
    pub fn parse(segment: &str) -> Result<Self, ApiError> {
        match segment {
            "start" => Ok(Self::Start),
            "fail" => Ok(Self::Fail),
            "log" => Ok(Self::Log),
            digits if is_number(digits) => digits.parse::<u8>().map(Self::Exit).map_err(|_| {
                ApiError::BadRequest(format!(
                    "an exit status is a whole number from 0 to 255, not {}",
                    shown(digits)
                ))
            }),
            other => Err(ApiError::BadRequest(format!(
                "a ping URL ends in start, fail, log or an exit status from 0 to 255, not {:?}",
                shown(other)
            ))),
        }
    }
}

/// The signal of a ping: its action, the `rid` and `instance` of its query (other parameters are
/// ignored, as Healthchecks does), its body as the run's output, cut to `limit` bytes.
pub fn signal(
    action: Action,
    query: Option<&str>,
    body: &[u8],
    limit: usize,
) -> Result<Signal, ApiError> {
    let mut signal = match action {
        Action::Success => Signal::new(SignalKind::Success),
        Action::Start => Signal::new(SignalKind::Start),
        Action::Fail => Signal::new(SignalKind::Fail),
        Action::Log => Signal::new(SignalKind::Log),
        Action::Exit(status) => Signal::exit(status),
    };
    if let Some(query) = query {
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            if key == "rid" {
                signal.rid = Some(RunId::parse(&value).ok_or_else(|| {
                    ApiError::BadRequest(format!("rid must be a UUID, not {:?}", shown(&value)))
                })?);
            }
            if key == "instance" {
                signal.instance = Some(InstanceName::parse(&value).ok_or_else(|| {
                    ApiError::BadRequest(format!(
                        "instance must be 1 to {MAX_INSTANCE_BYTES} letters, digits, '.', \
                         '_', ':' or '-', not {:?}",
                        shown(&value)
                    ))
                })?);
            }
        }
    }
    signal.output = Output::from_body(body, limit);
    Ok(signal)
}

/// At most a few characters of bad input, echoed back.
fn shown(text: &str) -> String {
    text.chars().take(32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    #[test]
    fn paths_name_a_token_or_a_key_and_a_slug() {
        let key = PingKey::from_bytes([3; 16]);
        let other = PingKey::from_bytes([4; 16]).reveal();
        let path = |segments: &[&str]| -> Vec<String> {
            segments
                .iter()
                .map(|segment| (*segment).to_owned())
                .collect()
        };
        let uuid = "5b2c9a1e-8f3d-4c6a-9e7b-2d1f0a3c4b5e";
        let cases = [
            (path(&[uuid]), Target::Token(uuid), Some(Action::Success)),
            (
                path(&[uuid, "7"]),
                Target::Token(uuid),
                Some(Action::Exit(7)),
            ),
            (path(&[uuid, "backup"]), Target::Token(uuid), None),
            (
                path(&[&key.reveal(), "backup"]),
                Target::Slug {
                    slug: "backup",
                    key_matches: true,
                },
                Some(Action::Success),
            ),
            (
                path(&[&key.reveal(), "backup", "fail"]),
                Target::Slug {
                    slug: "backup",
                    key_matches: true,
                },
                Some(Action::Fail),
            ),
            (
                path(&[&other, "backup", "3"]),
                Target::Slug {
                    slug: "backup",
                    key_matches: false,
                },
                Some(Action::Exit(3)),
            ),
            // A number after a key-shaped token is an exit status, even a bad one.
            (
                path(&[&key.reveal(), "256"]),
                Target::Token(&key.reveal()),
                None,
            ),
            // A key-shaped token with an action is a token URL.
            (
                path(&[&key.reveal(), "start"]),
                Target::Token(&key.reveal()),
                Some(Action::Start),
            ),
        ];
        for (segments, target, action) in &cases {
            let (found, asked) = parse_path(segments, &key);
            assert_eq!(found, *target, "{segments:?}");
            assert_eq!(asked.ok(), *action, "{segments:?}");
        }
        for bad in [
            path(&[&key.reveal(), "Backup"]),
            path(&[&key.reveal(), "backup", "256"]),
            path(&[&key.reveal(), "back_up", "start"]),
        ] {
            let (_, asked) = parse_path(&bad, &key);
            assert_eq!(
                asked.expect_err("a 400").status(),
                StatusCode::BAD_REQUEST,
                "{bad:?}"
            );
        }
        assert!(wants_create(Some("create=1")));
        assert!(wants_create(Some("rid=x&create=1")));
        assert!(!wants_create(Some("create=0")));
        assert!(!wants_create(None));
    }

    proptest::proptest! {
        /// Whatever the path and query, a ping is read or refused with a 400, never a
        /// panic; a slug target always holds a slug.
        #[test]
        fn any_path_is_read_or_refused(
            segments in proptest::collection::vec("[a-zA-Z0-9_%.~-]{0,30}|.{0,30}", 1..=3),
            query in proptest::option::of(".{0,60}"),
        ) {
            let key = PingKey::from_bytes([5; 16]);
            let (target, action) = parse_path(&segments, &key);
            if let Target::Slug { slug, .. } = target {
                proptest::prop_assert!(slug::is_slug(slug));
            }
            match action {
                Ok(action) => {
                    if let Err(error) = signal(action, query.as_deref(), b"", 10) {
                        proptest::prop_assert_eq!(error.status(), StatusCode::BAD_REQUEST);
                    }
                }
                Err(error) => proptest::prop_assert_eq!(error.status(), StatusCode::BAD_REQUEST),
            }
        }
    }

    #[test]
    fn the_last_segment_is_an_action_or_a_400() {
        assert_eq!(Action::parse("start").ok(), Some(Action::Start));
        assert_eq!(Action::parse("fail").ok(), Some(Action::Fail));
        assert_eq!(Action::parse("log").ok(), Some(Action::Log));
        assert_eq!(Action::parse("0").ok(), Some(Action::Exit(0)));
        assert_eq!(Action::parse("255").ok(), Some(Action::Exit(255)));
        assert_eq!(Action::parse("007").ok(), Some(Action::Exit(7)));
        for bad in [
            "256",
            "99999999999999999999",
            "-1",
            "+1",
            "1.5",
            "",
            "stop",
            "START",
        ] {
            let error = Action::parse(bad).expect_err(bad);
            assert_eq!(error.status(), StatusCode::BAD_REQUEST, "{bad}");
        }
    }

    #[test]
    fn a_ping_is_its_action_its_rid_and_its_body_cut_to_the_limit() {
        let rid = "3f2504e0-4f89-41d3-9a0c-0305e82c3301";
        let signal = signal(
            Action::Exit(3),
            Some(&format!("rid={rid}&msg=ignored")),
            b"line one\nline two",
            8,
        )
        .expect("valid");
        assert_eq!(signal.kind, SignalKind::Fail);
        assert_eq!(signal.exit_status, Some(3));
        assert_eq!(signal.rid, RunId::parse(rid));
        assert_eq!(signal.output.as_ref().map(Output::as_str), Some("line one"));
        assert_eq!(signal.msg, None);
        let plain = super::signal(Action::Success, None, b"", 10_000).expect("valid");
        assert_eq!(plain, Signal::new(SignalKind::Success));
        let error = super::signal(Action::Start, Some("rid=x"), b"", 10).expect_err("bad rid");
        assert_eq!(error.status(), StatusCode::BAD_REQUEST);
    }
}
