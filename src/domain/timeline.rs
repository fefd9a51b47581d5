//! What a monitor's history says over time: its changes of state (`transition_of`),
//! the time it spent in each state over a window (`uptime`), its outages
//! (`incidents`), and the marks of a recent-heartbeats strip (`beat_of`).
//!
//! Pure functions over events: the store reads the events (`store::timeline`), the
//! API and the dashboard show the results. Every change of state is an event of its
//! own and retention never deletes one, so these are exact over any window.

use super::event::{DownReason, Event, PushStatus, RunEnd};
use super::ids::Timestamp;
use super::machine::Status;

/// One change of state: the monitor is in `to` from `at` on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transition {
    /// The sequence number of the event that made it.
    pub seq: u64,
    pub at: Timestamp,
    pub to: Status,
    /// Why, when it went down.
    pub reason: Option<DownReason>,
}

/// The state `event` puts a monitor in, if it is a change of state. `Created` starts
/// a monitor in `pending`. Events that are not changes of state (heartbeats,
/// deliveries, configuration, bookkeeping) give `None`.
pub fn transition_of(event: &Event) -> Option<(Status, Option<DownReason>)> {
    match event {
        Event::Created { .. } | Event::Resumed => Some((Status::Pending, None)),
        Event::WentUp | Event::Recovered => Some((Status::Up, None)),
        Event::WentDown { reason } => Some((Status::Down, Some(*reason))),
        Event::Paused => Some((Status::Paused, None)),
        Event::VerdictHeld { .. } => Some((Status::Unknown, None)),
        // Everything else leaves the state as it is. A log written before `WentUp`
        // existed moves `pending` → `up` with a heartbeat alone; such a monitor counts
        // as `pending` until its next change, which only makes uptime more modest.
        _ => None,
    }
}

/// A span of time: `from` inclusive, `to` exclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub from: Timestamp,
    pub to: Timestamp,
}

impl Window {
    /// The `seconds` before `now`.
    pub fn last(seconds: u32, now: Timestamp) -> Self {
        Self {
            from: Timestamp::from_millis(
                now.as_millis()
                    .saturating_sub(i64::from(seconds).saturating_mul(1000)),
            ),
            to: now,
        }
    }
}

/// Milliseconds a monitor spent in each state within a window. Time before it existed
/// is in none of them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Uptime {
    pub up_ms: u64,
    pub down_ms: u64,
    pub pending_ms: u64,
    pub paused_ms: u64,
}

impl Uptime {
    /// The share of the time it was judged (`up` or `down`) that it was up, from 0 to
    /// 1; `None` if it was never judged in the window (only `pending`, `paused` or not
    /// yet created). Waiting for a first heartbeat and a pause are neither.
    pub fn ratio(&self) -> Option<f64> {
        let judged = self.up_ms + self.down_ms;
        (judged > 0).then(|| self.up_ms as f64 / judged as f64)
    }

    fn add(&mut self, status: Status, ms: u64) {
        match status {
            Status::Up => self.up_ms += ms,
            Status::Down => self.down_ms += ms,
            // Unknown: a verdict the guard held, not judged either way.
            Status::Pending | Status::Unknown => self.pending_ms += ms,
            Status::Paused => self.paused_ms += ms,
        }
    }
}

/// The time spent in each state within `window`, given the monitor's transitions in
/// order (oldest first). Transitions before the window only set the state it starts
/// in; without one before it, the monitor did not exist until its first transition
/// (its creation). `None` as `end` means the monitor still exists at `window.to`; a
/// deleted monitor's time stops at its deletion.
pub fn uptime(transitions: &[Transition], window: Window, end: Option<Timestamp>) -> Uptime {
    let mut spent = Uptime::default();
    let stop = end.map_or(window.to, |end| end.min(window.to));
    let mut current: Option<(Status, Timestamp)> = None;
    for transition in transitions {
        if let Some((status, since)) = current {
            spent.add(status, overlap(since, transition.at, window.from, stop));
        }
        current = Some((transition.to, transition.at));
    }
    if let Some((status, since)) = current {
        spent.add(status, overlap(since, stop, window.from, stop));
    }
    spent
}

/// Milliseconds of `[start, end)` within `[from, to)`.
fn overlap(start: Timestamp, end: Timestamp, from: Timestamp, to: Timestamp) -> u64 {
    start.max(from).millis_until(end.min(to))
}

/// One outage: from a `down` to the next change of state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Incident {
    /// The sequence number of the `down` event (the API's paging cursor).
    pub seq: u64,
    pub started_at: Timestamp,
    pub reason: Option<DownReason>,
    /// When it ended, and the state it ended in (`up`, or `paused`); `None` while it
    /// lasts.
    pub ended: Option<(Timestamp, Status)>,
}

impl Incident {
    /// How long it lasted, or has lasted by `now`.
    pub fn duration_ms(&self, now: Timestamp) -> u64 {
        let end = self.ended.map_or(now, |(at, _)| at);
        self.started_at.millis_until(end)
    }
}

/// The incidents among `transitions` (oldest first), newest first. A `down` that
/// follows another (a down heartbeat to a monitor already down is no transition, but
/// a log may hold two) continues the same incident.
pub fn incidents(transitions: &[Transition]) -> Vec<Incident> {
    let mut found: Vec<Incident> = Vec::new();
    let mut open: Option<Incident> = None;
    for transition in transitions {
        match (transition.to, open.as_mut()) {
            (Status::Down, Some(_)) => {}
            (Status::Down, None) => {
                open = Some(Incident {
                    seq: transition.seq,
                    started_at: transition.at,
                    reason: transition.reason,
                    ended: None,
                });
            }
            (to, Some(incident)) => {
                incident.ended = Some((transition.at, to));
                found.extend(open.take());
            }
            (_, None) => {}
        }
    }
    found.extend(open);
    found.reverse();
    found
}

/// A mark of the recent-heartbeats strip: a heartbeat and what it reported, or a
/// change of state that no heartbeat reported (a missed deadline, a pause).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Beat {
    Up,
    Down,
    /// Went down because nothing came in time: no heartbeat before the deadline, no
    /// success for a scheduled time, or a run that never finished.
    Missed,
    Paused,
}

/// The strip's mark for `event`, if it makes one.
pub fn beat_of(event: &Event) -> Option<Beat> {
    match event {
        Event::HeartbeatReceived(heartbeat) => Some(match heartbeat.status {
            PushStatus::Up => Beat::Up,
            PushStatus::Down => Beat::Down,
        }),
        Event::WentDown {
            reason: DownReason::Timeout | DownReason::Schedule | DownReason::MaxRuntime,
        } => Some(Beat::Missed),
        Event::Paused => Some(Beat::Paused),
        _ => None,
    }
}

/// How long a run took, in seconds, when `event` ends a run whose start was reported
/// (`at` is the event's time), for charts.
pub fn run_seconds_of(event: &Event, at: Timestamp) -> Option<f64> {
    match event {
        Event::RunEnded(RunEnd { run: Some(run), .. }) => {
            Some(run.started_at.millis_until(at) as f64 / 1000.0)
        }
        _ => None,
    }
}

/// The number a heartbeat reported (a push's `value`), for charts.
pub fn value_of(event: &Event) -> Option<f64> {
    match event {
        Event::HeartbeatReceived(heartbeat) => heartbeat.value,
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::event::{Heartbeat, MonitorConfig, RunOutcome, RunRef};
    use crate::domain::ids::PushToken;

    const MINUTE: i64 = 60_000;

    fn at(minutes: i64) -> Timestamp {
        Timestamp::from_millis(1_800_000_000_000 + minutes * MINUTE)
    }

    fn to(minutes: i64, status: Status) -> Transition {
        Transition {
            seq: minutes as u64,
            at: at(minutes),
            to: status,
            reason: (status == Status::Down).then_some(DownReason::Timeout),
        }
    }

    fn window(from: i64, until: i64) -> Window {
        Window {
            from: at(from),
            to: at(until),
        }
    }

    fn minutes(uptime: Uptime) -> (u64, u64, u64, u64) {
        let m = MINUTE as u64;
        (
            uptime.up_ms / m,
            uptime.down_ms / m,
            uptime.pending_ms / m,
            uptime.paused_ms / m,
        )
    }

    use Status::{Down, Paused, Pending, Up};

    /// Transitions, window, deletion minute → (up, down, pending, paused) minutes, ratio.
    type Case<'a> = (
        &'a [Transition],
        Window,
        Option<i64>,
        (u64, u64, u64, u64),
        Option<f64>,
    );

    #[test]
    fn time_in_each_state_over_a_window() {
        let cases: &[Case] = &[
            // Created before the window, up throughout.
            (
                &[to(0, Pending), to(1, Up)],
                window(10, 70),
                None,
                (60, 0, 0, 0),
                Some(1.0),
            ),
            // Created inside the window: the time before creation counts nowhere.
            (
                &[to(30, Pending), to(40, Up)],
                window(0, 100),
                None,
                (60, 0, 10, 0),
                Some(1.0),
            ),
            // One outage of 15 minutes in an hour.
            (
                &[to(0, Pending), to(1, Up), to(20, Down), to(35, Up)],
                window(0, 60),
                None,
                (44, 15, 1, 0),
                Some(44.0 / 59.0),
            ),
            // Down since before the window.
            (
                &[to(0, Pending), to(5, Down)],
                window(60, 120),
                None,
                (0, 60, 0, 0),
                Some(0.0),
            ),
            // Paused time is neither up nor down.
            (
                &[to(0, Up), to(10, Paused), to(50, Pending), to(51, Up)],
                window(0, 60),
                None,
                (19, 0, 1, 40),
                Some(1.0),
            ),
            // Only pending: never judged.
            (&[to(0, Pending)], window(0, 60), None, (0, 0, 60, 0), None),
            // Deleted at minute 30: nothing after it.
            (
                &[to(0, Up)],
                window(0, 60),
                Some(30),
                (30, 0, 0, 0),
                Some(1.0),
            ),
            // Transitions after the window end do not count.
            (
                &[to(0, Up), to(90, Down)],
                window(0, 60),
                None,
                (60, 0, 0, 0),
                Some(1.0),
            ),
            // No transitions at all: a monitor that did not exist.
            (&[], window(0, 60), None, (0, 0, 0, 0), None),
        ];
        for (index, (transitions, window, end, expected, ratio)) in cases.iter().enumerate() {
            let spent = uptime(transitions, *window, end.map(at));
            assert_eq!(minutes(spent), *expected, "case {index}");
            match (spent.ratio(), ratio) {
                (Some(got), Some(want)) => assert!((got - want).abs() < 1e-9, "case {index}"),
                (got, want) => assert_eq!(got, *want, "case {index}"),
            }
        }
    }

    #[test]
    fn incidents_run_from_down_to_the_next_change_newest_first() {
        let transitions = [
            to(0, Pending),
            to(1, Up),
            to(10, Down),
            to(12, Up),
            to(20, Down),
            to(21, Down), // a second down in the log: the same incident
            to(30, Paused),
            to(40, Pending),
            to(41, Up),
            to(50, Down),
        ];
        let found = incidents(&transitions);
        let shape: Vec<(i64, Option<(i64, Status)>)> = found
            .iter()
            .map(|incident| {
                (
                    (incident.started_at.as_millis() - at(0).as_millis()) / MINUTE,
                    incident.ended.map(|(end, status)| {
                        ((end.as_millis() - at(0).as_millis()) / MINUTE, status)
                    }),
                )
            })
            .collect();
        assert_eq!(
            shape,
            [(50, None), (20, Some((30, Paused))), (10, Some((12, Up)))]
        );
        assert_eq!(found[2].seq, 10);
        assert_eq!(found[1].duration_ms(at(100)), 10 * MINUTE as u64);
        assert_eq!(found[0].duration_ms(at(55)), 5 * MINUTE as u64);
        assert!(incidents(&[to(0, Pending), to(1, Up)]).is_empty());
    }

    #[test]
    fn which_events_are_transitions_beats_and_values() {
        let config = Box::new(MonitorConfig::new("n", 60));
        let up = Event::HeartbeatReceived(Heartbeat {
            status: PushStatus::Up,
            msg: None,
            value: Some(4.5),
            instance: None,
        });
        let down = Event::HeartbeatReceived(Heartbeat {
            status: PushStatus::Down,
            msg: None,
            value: None,
            instance: None,
        });
        let cases = [
            (
                Event::Created {
                    config,
                    token: PushToken::from_bytes([0; 16]),
                },
                Some(Pending),
                None,
                None,
            ),
            (up, None, Some(Beat::Up), Some(4.5)),
            (down, None, Some(Beat::Down), None),
            (Event::WentUp, Some(Up), None, None),
            (Event::Recovered, Some(Up), None, None),
            (
                Event::WentDown {
                    reason: DownReason::Timeout,
                },
                Some(Down),
                Some(Beat::Missed),
                None,
            ),
            (
                Event::WentDown {
                    reason: DownReason::Manual,
                },
                Some(Down),
                None,
                None,
            ),
            (
                Event::WentDown {
                    reason: DownReason::Schedule,
                },
                Some(Down),
                Some(Beat::Missed),
                None,
            ),
            (
                Event::RunEnded(RunEnd {
                    rid: None,
                    run: None,
                    exit_status: Some(0),
                    outcome: RunOutcome::Success,
                    output: None,
                }),
                None,
                // The heartbeat recorded with a run's end makes its mark.
                None,
                None,
            ),
            (
                Event::RunEnded(RunEnd {
                    rid: None,
                    run: None,
                    exit_status: Some(3),
                    outcome: RunOutcome::Failure(DownReason::ExitStatus),
                    output: None,
                }),
                None,
                None,
                None,
            ),
            (Event::Paused, Some(Paused), Some(Beat::Paused), None),
            (Event::Resumed, Some(Pending), None, None),
            (Event::Deleted, None, None, None),
        ];
        for (event, status, beat, value) in cases {
            assert_eq!(transition_of(&event).map(|(s, _)| s), status, "{event:?}");
            assert_eq!(beat_of(&event), beat, "{event:?}");
            assert_eq!(value_of(&event), value, "{event:?}");
        }
    }

    #[test]
    fn a_run_takes_from_its_reported_start_to_its_end() {
        let started_at = Timestamp::from_millis(1_000_000);
        let ended = |run| {
            Event::RunEnded(RunEnd {
                rid: None,
                run,
                exit_status: None,
                outcome: RunOutcome::Success,
                output: None,
            })
        };
        let at = Timestamp::from_millis(1_002_500);
        assert_eq!(
            run_seconds_of(
                &ended(Some(RunRef {
                    rid: None,
                    started_at
                })),
                at
            ),
            Some(2.5)
        );
        // A success without a start has no duration.
        assert_eq!(run_seconds_of(&ended(None), at), None);
        assert_eq!(run_seconds_of(&Event::WentUp, at), None);
    }
}
