//! The Healthchecks-compatible ping URLs (`docs/api.md`, "Ping URLs"): what a ping's
//! path, query and body say, as a [`Signal`]. Everything else a ping goes through
//! (rate limits, the lookup, the delivery to the actor, the answer) is the push's, in
//! `ingress`. As for a push, all of it is checked before the token is looked at.

use crate::domain::event::{Output, RunId};
use crate::domain::signal::{Signal, SignalKind};

use super::error::ApiError;

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
            digits if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
                digits.parse::<u8>().map(Self::Exit).map_err(|_| {
                    ApiError::BadRequest(format!(
                        "an exit status is a whole number from 0 to 255, not {}",
                        shown(digits)
                    ))
                })
            }
            other => Err(ApiError::BadRequest(format!(
                "a ping URL ends in start, fail, log or an exit status from 0 to 255, not {:?}",
                shown(other)
            ))),
        }
    }
}

/// The signal of a ping: its action, the `rid` of its query (other parameters are
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
