//! The monitor state machine of `docs/states.md`, pure: no I/O, no clock, no runtime.
//!
//! `decide` turns a command into the events it causes (or a rejection), `apply` folds
//! an event into the state, and `next_deadline` says when the monitor must be judged
//! next. Live traffic and start-up replay both go through `apply`, so they cannot
//! disagree.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::event::{
    DeliveryOutcome, DownReason, Event, Heartbeat, HeartbeatText, MonitorConfig, PushStatus,
    Stamped,
};
use super::ids::{ChannelId, MonitorId, PushToken, Timestamp};

/// The state a monitor is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    Pending,
    Up,
    Down,
    Paused,
}

impl Status {
    pub const ALL: [Status; 4] = [Status::Pending, Status::Up, Status::Down, Status::Paused];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Up => "up",
            Self::Down => "down",
            Self::Paused => "paused",
        }
    }
}

/// A partial change of a monitor's configuration (`PATCH`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigPatch {
    pub name: Option<String>,
    pub timeout_seconds: Option<u32>,
    pub interval_seconds: Option<u32>,
    pub channels: Option<Vec<ChannelId>>,
    pub tags: Option<Vec<String>>,
    /// `Some(None)` clears the key (a monitor no longer declared in a file).
    pub key: Option<Option<String>>,
}

impl ConfigPatch {
    /// The configuration with this patch applied. While the interval equals the
    /// timeout (its default), a patch of the timeout alone moves the interval with it.
    pub fn applied_to(&self, config: &MonitorConfig) -> MonitorConfig {
        let interval_seconds = match (self.interval_seconds, self.timeout_seconds) {
            (Some(interval), _) => interval,
            (None, Some(timeout)) if config.interval_seconds == config.timeout_seconds => timeout,
            (None, _) => config.interval_seconds,
        };
        MonitorConfig {
            name: self.name.clone().unwrap_or_else(|| config.name.clone()),
            timeout_seconds: self.timeout_seconds.unwrap_or(config.timeout_seconds),
            interval_seconds,
            channels: self
                .channels
                .clone()
                .unwrap_or_else(|| config.channels.clone()),
            key: self.key.clone().unwrap_or_else(|| config.key.clone()),
            tags: self.tags.clone().unwrap_or_else(|| config.tags.clone()),
        }
    }
}

/// Why a command is refused: it would leave the monitor in a state it must not have.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// A job expected every `interval_seconds` would time out between two runs.
    IntervalAboveTimeout {
        interval_seconds: u32,
        timeout_seconds: u32,
    },
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::IntervalAboveTimeout {
                interval_seconds,
                timeout_seconds,
            } => write!(
                formatter,
                "interval_seconds ({interval_seconds}) must not be greater than \
                 timeout_seconds ({timeout_seconds})"
            ),
        }
    }
}

/// Whether a monitor may have `config`.
pub fn check_config(config: &MonitorConfig) -> Result<(), Rejection> {
    if config.interval_seconds > config.timeout_seconds {
        return Err(Rejection::IntervalAboveTimeout {
            interval_seconds: config.interval_seconds,
            timeout_seconds: config.timeout_seconds,
        });
    }
    Ok(())
}

/// Whether `command` may be decided on `monitor`. A change of the timeout or the
/// interval must leave a valid configuration; other changes are never refused, so a
/// monitor stored before this check (with an interval above its timeout) can still
/// be renamed.
pub fn check(monitor: &Monitor, command: &Command) -> Result<(), Rejection> {
    match command {
        Command::Update(patch)
            if patch.timeout_seconds.is_some() || patch.interval_seconds.is_some() =>
        {
            check_config(&patch.applied_to(&monitor.config))
        }
        _ => Ok(()),
    }
}

/// A restart grace granted for one particular deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grace {
    pub deadline: Timestamp,
    pub until: Timestamp,
}

/// Everything known about one monitor: the fold of its events.
///
/// This is also the snapshot the store keeps beside the log (stored format: add fields
/// only with a new codec version).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Monitor {
    pub id: MonitorId,
    /// Shared: a heartbeat copies the state, and the configuration rarely changes.
    pub config: Arc<MonitorConfig>,
    pub token: PushToken,
    pub status: Status,
    pub created_at: Timestamp,
    pub last_heartbeat_at: Option<Timestamp>,
    pub last_status_change_at: Option<Timestamp>,
    pub last_msg: Option<HeartbeatText>,
    pub last_value: Option<f64>,
    /// When the timeout clock last started: creation, resume, or the last `up` heartbeat.
    pub clock_started_at: Timestamp,
    pub grace: Option<Grace>,
    /// The time of the newest event applied; events of one monitor never go back in time.
    pub last_event_at: Timestamp,
    /// The sequence number of the newest event applied (0 before the log assigns one).
    pub last_seq: u64,
}

/// Something asked of a monitor.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    Heartbeat(Heartbeat),
    /// The deadline timer fired: go down if the deadline has passed.
    CheckDeadline,
    /// Change the fields that are `Some`; the others keep their values.
    Update(ConfigPatch),
    /// Take a deleted channel off the monitor's `channels`, if it lists it. Decided on
    /// the monitor's own state, so it cannot undo a change made meanwhile.
    ForgetChannel(ChannelId),
    RotateToken(PushToken),
    Pause,
    Resume,
    Delete,
    /// Record how an alert delivery ended.
    RecordDelivery(DeliveryOutcome),
    /// Judge a deadline that may have fallen while the server was stopped
    /// (`docs/states.md`, "After a restart of the server").
    JudgeAfterRestart {
        /// When the stored log last recorded the server alive; `None` if never.
        last_alive: Option<Timestamp>,
        restart_grace_seconds: u32,
    },
}

impl Monitor {
    /// The state right after `Created`.
    pub fn created(id: MonitorId, at: Timestamp, config: MonitorConfig, token: PushToken) -> Self {
        Self {
            id,
            config: Arc::new(config),
            token,
            status: Status::Pending,
            created_at: at,
            last_heartbeat_at: None,
            last_status_change_at: None,
            last_msg: None,
            last_value: None,
            clock_started_at: at,
            grace: None,
            last_event_at: at,
            last_seq: 0,
        }
    }

    /// The deadline the timeout clock sets, ignoring any restart grace.
    pub fn base_deadline(&self) -> Option<Timestamp> {
        match self.status {
            Status::Pending | Status::Up => Some(
                self.clock_started_at
                    .plus_seconds(self.config.timeout_seconds),
            ),
            Status::Down | Status::Paused => None,
        }
    }

    /// When the monitor goes down if nothing arrives: the timeout deadline, pushed back
    /// by a restart grace granted for that very deadline.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        let deadline = self.base_deadline()?;
        match self.grace {
            Some(grace) if grace.deadline == deadline => Some(deadline.max(grace.until)),
            _ => Some(deadline),
        }
    }
}

/// Decides what `command` causes, at `now`. Events come out stamped and in order; an
/// empty list means the command changes nothing (pausing a paused monitor, say).
pub fn decide(monitor: &Monitor, command: Command, now: Timestamp) -> Vec<Stamped> {
    // Events of one monitor never go back in time, even if the wall clock does.
    let now = now.max(monitor.last_event_at);
    let stamp = |event| Stamped { at: now, event };
    match command {
        Command::Heartbeat(heartbeat) => {
            let status = heartbeat.status;
            let mut events = vec![stamp(Event::HeartbeatReceived(heartbeat))];
            match (monitor.status, status) {
                (Status::Down, PushStatus::Up) => events.push(stamp(Event::Recovered)),
                (Status::Pending, PushStatus::Up) => events.push(stamp(Event::WentUp)),
                (Status::Pending | Status::Up, PushStatus::Down) => {
                    events.push(stamp(Event::WentDown {
                        reason: DownReason::Manual,
                    }))
                }
                _ => {}
            }
            events
        }
        Command::CheckDeadline => match monitor.next_deadline() {
            // A `down` is stamped at the deadline it was judged by, not when noticed.
            Some(deadline) if now >= deadline => vec![Stamped {
                at: deadline.max(monitor.last_event_at),
                event: Event::WentDown {
                    reason: DownReason::Timeout,
                },
            }],
            _ => vec![],
        },
        Command::Update(patch) => {
            let config = patch.applied_to(&monitor.config);
            if config == *monitor.config {
                vec![]
            } else {
                vec![stamp(Event::Updated { config })]
            }
        }
        Command::ForgetChannel(channel) if monitor.config.channels.contains(&channel) => {
            let mut config = (*monitor.config).clone();
            config.channels.retain(|listed| *listed != channel);
            vec![stamp(Event::Updated { config })]
        }
        Command::ForgetChannel(_) => vec![],
        Command::RotateToken(token) => vec![stamp(Event::TokenRotated { token })],
        Command::Pause if monitor.status == Status::Paused => vec![],
        Command::Pause => vec![stamp(Event::Paused)],
        Command::Resume if monitor.status == Status::Paused => vec![stamp(Event::Resumed)],
        Command::Resume => vec![],
        Command::Delete => vec![stamp(Event::Deleted)],
        Command::RecordDelivery(outcome) => vec![stamp(Event::DeliveryRecorded(outcome))],
        Command::JudgeAfterRestart {
            last_alive,
            restart_grace_seconds,
        } => judge_after_restart(monitor, last_alive, restart_grace_seconds, now),
    }
}

/// A deadline that fell while the server was stopped gets a grace of
/// `min(timeout, restart grace)` from now, once; one that fell before the stop (or
/// whose grace was already spent) is judged at once (`docs/states.md`, "After a
/// restart of the server").
fn judge_after_restart(
    monitor: &Monitor,
    last_alive: Option<Timestamp>,
    restart_grace_seconds: u32,
    now: Timestamp,
) -> Vec<Stamped> {
    let Some(deadline) = monitor.base_deadline() else {
        return vec![];
    };
    let fell_while_stopped = deadline <= now && last_alive.is_some_and(|alive| deadline > alive);
    let already_granted = monitor
        .grace
        .is_some_and(|grace| grace.deadline == deadline);
    if fell_while_stopped && !already_granted && restart_grace_seconds > 0 {
        let grace_seconds = restart_grace_seconds.min(monitor.config.timeout_seconds);
        return vec![Stamped {
            at: now,
            event: Event::GraceGranted {
                deadline,
                until: now.plus_seconds(grace_seconds),
            },
        }];
    }
    decide(monitor, Command::CheckDeadline, now)
}

/// Folds one event into the state. `Created` is handled by [`Monitor::created`];
/// `Deleted` leaves the state as it was (the caller drops the monitor).
pub fn apply(monitor: &mut Monitor, seq: u64, at: Timestamp, event: &Event) {
    monitor.last_seq = seq;
    monitor.last_event_at = monitor.last_event_at.max(at);
    match event {
        Event::Created { config, token } => {
            // Only reachable if a log repeats a creation: adopt it as the new config.
            monitor.config = Arc::new(config.clone());
            monitor.token = *token;
        }
        Event::Updated { config } => monitor.config = Arc::new(config.clone()),
        Event::TokenRotated { token } => monitor.token = *token,
        Event::Deleted | Event::DeliveryRecorded(_) => {}
        Event::HeartbeatReceived(heartbeat) => {
            monitor.last_heartbeat_at = Some(at);
            monitor.last_msg = heartbeat.msg.clone();
            if heartbeat.value.is_some() {
                monitor.last_value = heartbeat.value;
            }
            if heartbeat.status == PushStatus::Up {
                monitor.clock_started_at = at;
                monitor.grace = None;
                // A log written before `WentUp` existed has only this heartbeat to
                // take the monitor out of `pending`; in a newer one, the `WentUp`
                // that follows finds it `up` already.
                if monitor.status == Status::Pending {
                    set_status(monitor, Status::Up, at);
                }
            }
        }
        Event::WentDown { .. } => {
            monitor.grace = None;
            set_status(monitor, Status::Down, at);
        }
        Event::Recovered | Event::WentUp => set_status(monitor, Status::Up, at),
        Event::Paused => {
            monitor.grace = None;
            set_status(monitor, Status::Paused, at);
        }
        Event::Resumed => {
            monitor.clock_started_at = at;
            monitor.grace = None;
            set_status(monitor, Status::Pending, at);
        }
        Event::GraceGranted { deadline, until } => {
            monitor.grace = Some(Grace {
                deadline: *deadline,
                until: *until,
            });
        }
    }
}

fn set_status(monitor: &mut Monitor, status: Status, at: Timestamp) {
    if monitor.status != status {
        monitor.status = status;
        monitor.last_status_change_at = Some(at);
    }
}

/// Rebuilds a monitor from its whole history, as start-up replay does.
/// `None` if the history does not start with `Created` or ends with `Deleted`.
pub fn replay<'a>(
    id: MonitorId,
    history: impl IntoIterator<Item = (u64, Timestamp, &'a Event)>,
) -> Option<Monitor> {
    let mut monitor: Option<Monitor> = None;
    for (seq, at, event) in history {
        match (&mut monitor, event) {
            (None, Event::Created { config, token }) => {
                let mut created = Monitor::created(id, at, config.clone(), *token);
                created.last_seq = seq;
                monitor = Some(created);
            }
            (None, _) => return None,
            (Some(_), Event::Deleted) => return None,
            (Some(state), event) => apply(state, seq, at, event),
        }
    }
    monitor
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const T0: Timestamp = Timestamp::from_millis(1_700_000_000_000);

    fn config(timeout_seconds: u32) -> MonitorConfig {
        MonitorConfig {
            name: "backup".to_owned(),
            timeout_seconds,
            interval_seconds: timeout_seconds,
            channels: vec![],
            key: None,
            tags: vec![],
        }
    }

    fn new_monitor(timeout_seconds: u32) -> Monitor {
        Monitor::created(
            MonitorId::generate(T0),
            T0,
            config(timeout_seconds),
            PushToken::from_bytes([1; 16]),
        )
    }

    fn secs(seconds: i64) -> Timestamp {
        Timestamp::from_millis(T0.as_millis() + seconds * 1000)
    }

    fn beat(status: PushStatus) -> Command {
        Command::Heartbeat(Heartbeat {
            status,
            msg: None,
            value: None,
        })
    }

    /// given a monitor, when a command arrives at `now`: apply what it decided and
    /// return the event kinds.
    fn when(monitor: &mut Monitor, command: Command, now: Timestamp) -> Vec<Event> {
        let events = decide(monitor, command, now);
        for (index, stamped) in events.iter().enumerate() {
            let seq = monitor.last_seq + 1 + index as u64;
            apply(monitor, seq, stamped.at, &stamped.event);
        }
        events.into_iter().map(|stamped| stamped.event).collect()
    }

    #[test]
    fn pending_goes_up_on_first_heartbeat_with_an_event_but_no_alert() {
        let mut monitor = new_monitor(60);
        let events = when(&mut monitor, beat(PushStatus::Up), secs(5));
        assert!(matches!(
            events.as_slice(),
            [Event::HeartbeatReceived(_), Event::WentUp]
        ));
        assert!(events.iter().all(|event| !event.is_alert()));
        assert_eq!(monitor.status, Status::Up);
        assert_eq!(monitor.last_status_change_at, Some(secs(5)));
        assert_eq!(monitor.next_deadline(), Some(secs(65)));
        // Only the first one: later heartbeats change nothing.
        let again = when(&mut monitor, beat(PushStatus::Up), secs(6));
        assert!(matches!(again.as_slice(), [Event::HeartbeatReceived(_)]));
    }

    #[test]
    fn resumed_then_up_records_went_up_without_alert() {
        let mut monitor = new_monitor(60);
        when(&mut monitor, beat(PushStatus::Up), secs(1));
        when(&mut monitor, Command::Pause, secs(2));
        assert_eq!(
            when(&mut monitor, Command::Resume, secs(3)),
            vec![Event::Resumed]
        );
        assert_eq!(monitor.status, Status::Pending);
        let events = when(&mut monitor, beat(PushStatus::Up), secs(4));
        assert!(matches!(
            events.as_slice(),
            [Event::HeartbeatReceived(_), Event::WentUp]
        ));
        assert_eq!(monitor.status, Status::Up);
        assert_eq!(monitor.last_status_change_at, Some(secs(4)));
    }

    #[test]
    fn a_log_from_before_went_up_still_leaves_pending_on_its_heartbeat() {
        // Stores written before `WentUp` existed hold only the heartbeat.
        let mut monitor = new_monitor(60);
        let heartbeat = Event::HeartbeatReceived(Heartbeat {
            status: PushStatus::Up,
            msg: None,
            value: None,
        });
        apply(&mut monitor, 2, secs(5), &heartbeat);
        assert_eq!(monitor.status, Status::Up);
        assert_eq!(monitor.last_status_change_at, Some(secs(5)));
        // In a newer log the `WentUp` that follows changes nothing more.
        let before = monitor.clone();
        apply(&mut monitor, 3, secs(5), &Event::WentUp);
        assert_eq!(
            monitor,
            Monitor {
                last_seq: 3,
                ..before
            }
        );
    }

    /// The state an event of a change of state leads to.
    fn state_after(event: &Event) -> Option<Status> {
        match event {
            Event::WentUp | Event::Recovered => Some(Status::Up),
            Event::WentDown { .. } => Some(Status::Down),
            Event::Paused => Some(Status::Paused),
            Event::Resumed => Some(Status::Pending),
            _ => None,
        }
    }

    #[test]
    fn never_heard_monitor_goes_down_at_creation_plus_timeout() {
        let mut monitor = new_monitor(60);
        assert!(when(&mut monitor, Command::CheckDeadline, secs(59)).is_empty());
        let decided = decide(&monitor, Command::CheckDeadline, secs(61));
        assert_eq!(decided.len(), 1);
        assert_eq!(decided[0].at, secs(60), "down is stamped at the deadline");
        assert_eq!(
            decided[0].event,
            Event::WentDown {
                reason: DownReason::Timeout
            }
        );
    }

    #[test]
    fn timeout_then_recovery_alerts_once_each() {
        let mut monitor = new_monitor(10);
        when(&mut monitor, beat(PushStatus::Up), secs(1));
        let down = when(&mut monitor, Command::CheckDeadline, secs(11));
        assert_eq!(down.len(), 1);
        assert!(when(&mut monitor, Command::CheckDeadline, secs(30)).is_empty());
        let up = when(&mut monitor, beat(PushStatus::Up), secs(31));
        assert!(matches!(
            up.as_slice(),
            [Event::HeartbeatReceived(_), Event::Recovered]
        ));
        assert_eq!(monitor.status, Status::Up);
    }

    #[test]
    fn manual_down_alerts_once_and_repeated_down_is_only_recorded() {
        let mut monitor = new_monitor(10);
        let first = when(&mut monitor, beat(PushStatus::Down), secs(1));
        assert_eq!(
            first[1],
            Event::WentDown {
                reason: DownReason::Manual
            }
        );
        let second = when(&mut monitor, beat(PushStatus::Down), secs(2));
        assert!(matches!(second.as_slice(), [Event::HeartbeatReceived(_)]));
        assert_eq!(monitor.status, Status::Down);
    }

    #[test]
    fn paused_records_heartbeats_and_never_times_out() {
        let mut monitor = new_monitor(10);
        when(&mut monitor, Command::Pause, secs(1));
        assert_eq!(monitor.next_deadline(), None);
        assert!(when(&mut monitor, Command::CheckDeadline, secs(1000)).is_empty());
        let events = when(&mut monitor, beat(PushStatus::Down), secs(1001));
        assert!(matches!(events.as_slice(), [Event::HeartbeatReceived(_)]));
        assert_eq!(monitor.status, Status::Paused);
        assert_eq!(monitor.last_heartbeat_at, Some(secs(1001)));
        // Pausing twice records nothing.
        assert!(when(&mut monitor, Command::Pause, secs(1002)).is_empty());
        when(&mut monitor, Command::Resume, secs(1003));
        assert_eq!(monitor.status, Status::Pending);
        assert_eq!(monitor.next_deadline(), Some(secs(1013)));
    }

    #[test]
    fn shortening_the_timeout_stamps_down_no_earlier_than_the_update() {
        let mut monitor = new_monitor(100);
        let patch = ConfigPatch {
            timeout_seconds: Some(5),
            ..ConfigPatch::default()
        };
        when(&mut monitor, Command::Update(patch), secs(50));
        let decided = decide(&monitor, Command::CheckDeadline, secs(50));
        assert_eq!(decided[0].at, secs(50));
    }

    #[test]
    fn deadline_that_fell_while_stopped_gets_a_grace_once() {
        let mut monitor = new_monitor(30);
        when(&mut monitor, beat(PushStatus::Up), secs(0));
        // The server was last alive at 20 s; the deadline fell at 30 s; ready at 100 s.
        let judge = Command::JudgeAfterRestart {
            last_alive: Some(secs(20)),
            restart_grace_seconds: 60,
        };
        let granted = when(&mut monitor, judge.clone(), secs(100));
        assert!(matches!(granted.as_slice(), [Event::GraceGranted { .. }]));
        assert_eq!(monitor.status, Status::Up);
        // The grace is min(timeout, restart grace) = 30 s from the restart.
        assert_eq!(monitor.next_deadline(), Some(secs(130)));
        // A second restart after the grace ran out grants nothing more: down at once,
        // stamped at the end of the grace.
        let judge_again = Command::JudgeAfterRestart {
            last_alive: Some(secs(101)),
            restart_grace_seconds: 60,
        };
        let down = decide(&monitor, judge_again, secs(500));
        assert_eq!(down.len(), 1);
        assert_eq!(down[0].at, secs(130));
    }

    #[test]
    fn deadline_that_fell_before_the_stop_goes_down_at_once() {
        let mut monitor = new_monitor(30);
        let judge = Command::JudgeAfterRestart {
            last_alive: Some(secs(45)),
            restart_grace_seconds: 60,
        };
        let events = when(&mut monitor, judge, secs(100));
        assert_eq!(
            events,
            vec![Event::WentDown {
                reason: DownReason::Timeout
            }]
        );
        assert_eq!(monitor.last_status_change_at, Some(secs(30)));
    }

    #[test]
    fn zero_restart_grace_disables_the_grace() {
        let mut monitor = new_monitor(30);
        let judge = Command::JudgeAfterRestart {
            last_alive: Some(secs(10)),
            restart_grace_seconds: 0,
        };
        assert_eq!(when(&mut monitor, judge, secs(100)).len(), 1);
        assert_eq!(monitor.status, Status::Down);
    }

    #[test]
    fn future_deadline_is_left_to_the_timer_after_restart() {
        let mut monitor = new_monitor(300);
        let judge = Command::JudgeAfterRestart {
            last_alive: Some(secs(10)),
            restart_grace_seconds: 60,
        };
        assert!(when(&mut monitor, judge, secs(100)).is_empty());
    }

    #[test]
    fn replay_equals_live_folding_and_deleted_yields_none() {
        let mut monitor = new_monitor(10);
        let id = monitor.id;
        let created = Event::Created {
            config: (*monitor.config).clone(),
            token: monitor.token,
        };
        let mut log = vec![(1, T0, created)];
        for (offset, command) in [
            beat(PushStatus::Up),
            Command::CheckDeadline,
            beat(PushStatus::Up),
            Command::RotateToken(PushToken::from_bytes([9; 16])),
            Command::Pause,
        ]
        .into_iter()
        .enumerate()
        {
            let now = secs(offset as i64 * 20);
            for stamped in decide(&monitor, command, now) {
                let seq = log.len() as u64 + 1;
                apply(&mut monitor, seq, stamped.at, &stamped.event);
                log.push((seq, stamped.at, stamped.event));
            }
        }
        let replayed = replay(id, log.iter().map(|(seq, at, event)| (*seq, *at, event)));
        assert_eq!(replayed.as_ref(), Some(&monitor));
        log.push((99, secs(500), Event::Deleted));
        assert_eq!(
            replay(id, log.iter().map(|(seq, at, event)| (*seq, *at, event))),
            None
        );
    }

    fn arb_command() -> impl Strategy<Value = Command> {
        prop_oneof![
            4 => any::<bool>().prop_map(|up| beat(if up { PushStatus::Up } else { PushStatus::Down })),
            4 => Just(Command::CheckDeadline),
            1 => (1u32..120).prop_map(|timeout| Command::Update(ConfigPatch { timeout_seconds: Some(timeout), ..ConfigPatch::default() })),
            1 => Just(Command::Pause),
            1 => Just(Command::Resume),
            1 => any::<[u8; 16]>().prop_map(|bytes| Command::RotateToken(PushToken::from_bytes(bytes))),
            1 => (0i64..10_000, 0u32..120).prop_map(|(alive, grace)| Command::JudgeAfterRestart {
                last_alive: Some(Timestamp::from_millis(T0.as_millis() + alive * 100)),
                restart_grace_seconds: grace,
            }),
        ]
    }

    proptest! {
        /// Invariants over any sequence of commands at non-decreasing times.
        #[test]
        fn invariants_hold_for_any_history(
            timeout in 1u32..120,
            steps in proptest::collection::vec((0i64..5_000, arb_command()), 1..60),
        ) {
            let mut monitor = new_monitor(timeout);
            let mut now = T0;
            let mut last_alert: Option<Event> = None;
            for (advance_millis, command) in steps {
                now = Timestamp::from_millis(now.as_millis() + advance_millis * 10);
                let before = monitor.clone();
                if command == Command::Resume && before.status == Status::Paused {
                    // A resume starts afresh (pending), as in Healthchecks: the next
                    // alert may be a down again.
                    last_alert = None;
                }
                let events = decide(&monitor, command, now);
                let alerts: Vec<&Event> = events.iter().map(|s| &s.event).filter(|e| e.is_alert()).collect();
                // Never two alerts for one change of state.
                prop_assert!(alerts.len() <= 1);
                // Paused never alerts.
                if before.status == Status::Paused {
                    prop_assert!(alerts.is_empty());
                }
                for stamped in &events {
                    // Events of a monitor never go back in time.
                    prop_assert!(stamped.at >= monitor.last_event_at);
                    let seq = monitor.last_seq + 1;
                    let status_before = monitor.status;
                    apply(&mut monitor, seq, stamped.at, &stamped.event);
                    // Every change of state is an event of its own, naming the new
                    // state: the history alone tells when the monitor was up.
                    if monitor.status != status_before {
                        let recorded = events.iter().filter_map(|s| state_after(&s.event)).next_back();
                        prop_assert_eq!(recorded, Some(monitor.status));
                    }
                }
                if let Some(alert) = alerts.first() {
                    // Alerts alternate: a down is never followed by another down.
                    prop_assert_ne!(last_alert.as_ref().map(std::mem::discriminant), Some(std::mem::discriminant(*alert)));
                    last_alert = Some((*alert).clone());
                }
                // The deadline is always the clock start plus the timeout, or a grace.
                match monitor.status {
                    Status::Pending | Status::Up => {
                        let base = monitor.clock_started_at.plus_seconds(monitor.config.timeout_seconds);
                        let deadline = monitor.next_deadline().expect("running monitors have a deadline");
                        match monitor.grace {
                            Some(grace) if grace.deadline == base => prop_assert_eq!(deadline, base.max(grace.until)),
                            _ => prop_assert_eq!(deadline, base),
                        }
                    }
                    Status::Down | Status::Paused => prop_assert_eq!(monitor.next_deadline(), None),
                }
            }
        }

        /// A monitor that hears `up` heartbeats more often than its timeout never goes down.
        #[test]
        fn steady_heartbeats_never_time_out(timeout in 1u32..60, gaps in proptest::collection::vec(0u32..1000, 1..50)) {
            let mut monitor = new_monitor(timeout);
            let mut now = T0;
            for gap in gaps {
                // Each gap is a fraction of the timeout: strictly less than it.
                let millis = i64::from(timeout) * 1000 * i64::from(gap) / 1000;
                now = Timestamp::from_millis(now.as_millis() + millis);
                prop_assert!(when(&mut monitor, Command::CheckDeadline, now).is_empty());
                when(&mut monitor, beat(PushStatus::Up), now);
                prop_assert_eq!(monitor.status, Status::Up);
            }
        }
    }

    #[test]
    fn the_interval_follows_the_timeout_while_it_is_the_default_and_never_exceeds_it() {
        let update = |timeout: Option<u32>, interval: Option<u32>| {
            Command::Update(ConfigPatch {
                timeout_seconds: timeout,
                interval_seconds: interval,
                ..ConfigPatch::default()
            })
        };
        let with_interval = |interval: u32| {
            let mut monitor = new_monitor(60);
            Arc::make_mut(&mut monitor.config).interval_seconds = interval;
            monitor
        };
        let rejected = |interval_seconds, timeout_seconds| {
            Err(Rejection::IntervalAboveTimeout {
                interval_seconds,
                timeout_seconds,
            })
        };
        // (interval before, timeout 60 before, patch) → (timeout, interval) or refusal.
        type Outcome = Result<(u32, u32), Rejection>;
        let table: [(u32, Command, Outcome); 9] = [
            // The default (interval = timeout): the interval follows, down and up.
            (60, update(Some(30), None), Ok((30, 30))),
            (60, update(Some(90), None), Ok((90, 90))),
            // An interval of its own stays, as long as it fits.
            (30, update(Some(45), None), Ok((45, 30))),
            (30, update(Some(20), None), rejected(30, 20)),
            (30, update(None, Some(60)), Ok((60, 60))),
            (30, update(None, Some(61)), rejected(61, 60)),
            (60, update(Some(30), Some(40)), rejected(40, 30)),
            (60, update(Some(30), Some(10)), Ok((30, 10))),
            // Stored before the check: anything but the timings can still change.
            (
                600,
                Command::Update(ConfigPatch {
                    name: Some("renamed".to_owned()),
                    ..ConfigPatch::default()
                }),
                Ok((60, 600)),
            ),
        ];
        for (interval, command, expected) in table {
            let mut monitor = with_interval(interval);
            let outcome = check(&monitor, &command).map(|()| {
                when(&mut monitor, command.clone(), secs(1));
                (
                    monitor.config.timeout_seconds,
                    monitor.config.interval_seconds,
                )
            });
            assert_eq!(outcome, expected, "interval {interval}, {command:?}");
        }
        assert_eq!(check_config(&config(5)), Ok(()));
    }

    #[test]
    fn forgetting_a_channel_keeps_the_others_and_records_only_a_change() {
        let mut monitor = new_monitor(10);
        let [kept, gone, other] = [1, 2, 3].map(|n| ChannelId::generate(secs(n)));
        let patch = ConfigPatch {
            channels: Some(vec![kept, gone]),
            ..ConfigPatch::default()
        };
        when(&mut monitor, Command::Update(patch), secs(1));
        assert!(when(&mut monitor, Command::ForgetChannel(other), secs(2)).is_empty());
        let events = when(&mut monitor, Command::ForgetChannel(gone), secs(3));
        assert!(matches!(events.as_slice(), [Event::Updated { .. }]));
        assert_eq!(monitor.config.channels, vec![kept]);
        assert!(when(&mut monitor, Command::ForgetChannel(gone), secs(4)).is_empty());
    }

    #[test]
    fn a_patch_changes_only_the_fields_it_names() {
        let mut monitor = new_monitor(10);
        let channel = ChannelId::generate(T0);
        let patch = ConfigPatch {
            name: Some("renamed".to_owned()),
            channels: Some(vec![channel]),
            ..ConfigPatch::default()
        };
        let events = when(&mut monitor, Command::Update(patch.clone()), secs(1));
        assert_eq!(events.len(), 1);
        assert_eq!(monitor.config.name, "renamed");
        assert_eq!(monitor.config.channels, vec![channel]);
        assert_eq!(monitor.config.timeout_seconds, 10);
        // The same patch again changes nothing and records nothing.
        assert!(when(&mut monitor, Command::Update(patch), secs(2)).is_empty());
    }
}
