//! The native push URL's job parameters (`docs/push.md`, "Runs"): `kind`, `exit` and
//! `rid` turn a push into a job's signal. Checked before the token is looked at, as
//! every push parameter is: a bad one is a `400` whatever the token.

use crate::domain::event::{Heartbeat, PushStatus, RunId};
use crate::domain::signal::{Signal, SignalKind};

use super::error::ApiError;

/// The signal a push with `heartbeat`'s fields and these parameters makes, or the
/// heartbeat back when none of them is given (the push path stays a heartbeat's).
/// `status` is the `status` parameter as given, if it was: it must not say another
/// thing than `kind` or `exit`.
pub fn signal(
    heartbeat: Heartbeat,
    status: Option<&str>,
    rid: Option<String>,
    kind: Option<String>,
    exit: Option<String>,
) -> Result<Result<Signal, Heartbeat>, ApiError> {
    if rid.is_none() && kind.is_none() && exit.is_none() {
        return Ok(Err(heartbeat));
    }
    let kind = match kind.as_deref() {
        None => None,
        Some(text) => Some(SignalKind::parse(text).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "kind must be start, success, fail or log, not {:?}",
                shown(text)
            ))
        })?),
    };
    let exit_status = match exit.as_deref() {
        None => None,
        Some(text) => Some(text.trim().parse::<u8>().map_err(|_| {
            ApiError::BadRequest(format!(
                "exit must be a whole number from 0 to 255, not {:?}",
                shown(text)
            ))
        })?),
    };
    let rid = match rid.as_deref() {
        None => None,
        Some(text) => Some(RunId::parse(text).ok_or_else(|| {
            ApiError::BadRequest(format!("rid must be a UUID, not {:?}", shown(text)))
        })?),
    };
    let said = heartbeat.status;
    let mut signal = Signal::from_heartbeat(heartbeat);
    signal.rid = rid;
    signal.exit_status = exit_status;
    let contradiction = |what: String| Err(ApiError::BadRequest(what));
    if let Some(kind) = kind {
        let contradicts = match (status.is_some(), said) {
            (false, _) => false,
            (true, PushStatus::Up) => kind == SignalKind::Fail,
            (true, PushStatus::Down) => kind != SignalKind::Fail,
        };
        if contradicts {
            return contradiction(format!(
                "status={} contradicts kind={}",
                said.as_str(),
                kind.as_str()
            ));
        }
        signal.kind = kind;
    }
    if let Some(exit) = exit_status {
        if matches!(signal.kind, SignalKind::Start | SignalKind::Log) {
            return contradiction(format!(
                "exit goes with a run's end, not with kind={}",
                signal.kind.as_str()
            ));
        }
        if exit == 0 && signal.kind == SignalKind::Fail {
            let by = if kind.is_some() {
                "kind=fail"
            } else {
                "status=down"
            };
            return contradiction(format!("{by} contradicts exit=0"));
        }
        if exit != 0 && status.is_some() && said == PushStatus::Up {
            return contradiction(format!("status=up contradicts exit={exit}"));
        }
        // The exit status decides how the run went.
        signal.kind = if exit == 0 {
            SignalKind::Success
        } else {
            SignalKind::Fail
        };
    }
    Ok(Ok(signal))
}

/// At most a few characters of bad input, echoed back.
fn shown(text: &str) -> String {
    text.chars().take(32).collect()
}
