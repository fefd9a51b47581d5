//! Muting (`docs/states.md`, "Muting"), given/when/then: a muted monitor records
//! every change of state and alerts none, ever; a timed mute ends at its `until`, an
//! acknowledgement at the next recovery, any mute on an unmute.

use super::*;
use crate::domain::alert::{AlertKind, AlertNotice, owed_deliveries};

/// 2023-11-14T22:13:20Z.
const T0: Timestamp = Timestamp::from_millis(1_700_000_000_000);

fn secs(seconds: i64) -> Timestamp {
    Timestamp::from_millis(T0.as_millis() + seconds * 1000)
}

fn monitor(adjust: impl FnOnce(&mut MonitorConfig)) -> Monitor {
    let mut config = MonitorConfig::new("job", 60);
    config.channels = vec![ChannelId::from_bytes([4; 16])];
    adjust(&mut config);
    Monitor::created(
        MonitorId::from_bytes([1; 16]),
        T0,
        config,
        PushToken::from_bytes([1; 16]),
    )
}

fn beat(status: PushStatus) -> Command {
    Command::Heartbeat(Heartbeat {
        status,
        msg: None,
        value: None,
        instance: None,
    })
}

fn mute_until(at: Timestamp) -> Command {
    Command::Mute {
        until: Some(at),
        until_recovery: false,
    }
}

fn acknowledge() -> Command {
    Command::Mute {
        until: None,
        until_recovery: true,
    }
}

/// Decides and applies `command` at `now`: the events' kinds (with what a hold,
/// a mute's end or a change is about) and the alerts they owe.
fn when(
    monitor: &mut Monitor,
    command: Command,
    now: Timestamp,
) -> (Vec<String>, Vec<(AlertKind, AlertNotice)>) {
    let before = monitor.clone();
    let events = decide(monitor, command, now);
    for stamped in &events {
        let seq = monitor.last_seq + 1;
        apply(monitor, seq, stamped.at, &stamped.event);
    }
    let owed = owed_deliveries(&before, &events, |_, _| true)
        .into_iter()
        .map(|(_, delivery)| (delivery.alert.kind, delivery.alert.notice))
        .collect();
    let kinds = events
        .iter()
        .map(|stamped| {
            let kind = stamped.event.kind().unwrap_or("grace");
            match &stamped.event {
                Event::AlertMuted(Notice::Down(_)) => format!("{kind}:mute:down"),
                Event::AlertMuted(Notice::Up) => format!("{kind}:mute:up"),
                Event::AlertSuppressed(_) => format!("{kind}:maintenance"),
                Event::Unmuted { reason } => format!("{kind}:{}", reason.as_str()),
                Event::WentDown { reason } | Event::Reminder { reason } => {
                    format!("{kind}:{}", reason.as_str())
                }
                Event::HeartbeatReceived(heartbeat) => {
                    format!("{kind}:{}", heartbeat.status.as_str())
                }
                _ => kind.to_owned(),
            }
        })
        .collect();
    (kinds, owed)
}

#[test]
fn a_muted_down_is_recorded_and_owes_no_alert_nor_one_later() {
    let mut job = monitor(|_| {});
    when(&mut job, beat(PushStatus::Up), secs(1));
    let (events, _) = when(&mut job, mute_until(secs(3600)), secs(2));
    assert_eq!(events, ["muted"]);
    assert!(job.muted_at(secs(2)));
    // A push says down: still down in the state, held for good.
    let (events, owed) = when(&mut job, beat(PushStatus::Down), secs(10));
    assert_eq!(
        events,
        [
            "heartbeat:down",
            "alert_suppressed:mute:down",
            "down:manual"
        ]
    );
    assert!(owed.is_empty());
    assert_eq!(job.status, Status::Down);
    // A missed deadline while muted: the same.
    let mut late = monitor(|_| {});
    when(&mut late, beat(PushStatus::Up), secs(1));
    when(&mut late, mute_until(secs(3600)), secs(2));
    assert_eq!(late.next_wakeup(secs(2)), Some(secs(61)));
    let (events, owed) = when(&mut late, Command::CheckDeadline { hold: false }, secs(61));
    assert_eq!(events, ["alert_suppressed:mute:down", "down:timeout"]);
    assert!(owed.is_empty());
    // The mute ends at its `until`: the timer is set for it, records the end, and
    // does not send the down it held (the channels count as told).
    assert_eq!(late.next_wakeup(secs(61)), Some(secs(3600)));
    let (events, owed) = when(
        &mut late,
        Command::CheckDeadline { hold: false },
        secs(3600),
    );
    assert_eq!(events, ["unmuted:expired"]);
    assert!(owed.is_empty());
    assert_eq!(late.mute, None);
    assert_eq!(late.release_due(), None);
    // The next change alerts again.
    let (events, owed) = when(&mut late, beat(PushStatus::Up), secs(3700));
    assert_eq!(events, ["heartbeat:up", "up"]);
    assert_eq!(owed, [(AlertKind::Up, AlertNotice::Change)]);
}

#[test]
fn an_expired_mute_is_ended_before_a_change_even_if_the_timer_is_late() {
    let mut job = monitor(|_| {});
    when(&mut job, beat(PushStatus::Up), secs(1));
    when(&mut job, mute_until(secs(30)), secs(2));
    assert!(!job.muted_at(secs(30)));
    // A push at 40 s, before the timer looked: the mute's end is recorded (at its
    // `until`) first, so the down alerts.
    let (events, owed) = when(&mut job, beat(PushStatus::Down), secs(40));
    assert_eq!(events, ["unmuted:expired", "heartbeat:down", "down:manual"]);
    assert_eq!(owed, [(AlertKind::Down, AlertNotice::Change)]);
    // An `up` to an `up` monitor whose mute has expired takes the slow path too.
    let mut quiet = monitor(|_| {});
    when(&mut quiet, beat(PushStatus::Up), secs(1));
    when(&mut quiet, mute_until(secs(30)), secs(2));
    let (events, _) = when(&mut quiet, beat(PushStatus::Up), secs(31));
    assert_eq!(events, ["unmuted:expired", "heartbeat:up"]);
}

#[test]
fn an_acknowledgement_lasts_until_the_next_recovery_which_is_not_alerted() {
    let mut job = monitor(|_| {});
    when(&mut job, beat(PushStatus::Up), secs(1));
    let (_, owed) = when(&mut job, beat(PushStatus::Down), secs(5));
    assert_eq!(owed, [(AlertKind::Down, AlertNotice::Change)]);
    let (events, _) = when(&mut job, acknowledge(), secs(6));
    assert_eq!(events, ["muted"]);
    assert_eq!(job.next_wakeup(secs(6)), None, "no end of its own");
    let (events, owed) = when(&mut job, beat(PushStatus::Up), secs(20));
    assert_eq!(
        events,
        [
            "heartbeat:up",
            "alert_suppressed:mute:up",
            "up",
            "unmuted:recovered"
        ]
    );
    assert!(owed.is_empty());
    assert_eq!(job.status, Status::Up);
    assert_eq!(job.mute, None);
    // The next down alerts.
    let (_, owed) = when(&mut job, beat(PushStatus::Down), secs(30));
    assert_eq!(owed, [(AlertKind::Down, AlertNotice::Change)]);
}

#[test]
fn an_unmute_ends_any_mute_and_the_next_change_alerts() {
    let mut job = monitor(|_| {});
    when(&mut job, beat(PushStatus::Up), secs(1));
    when(&mut job, acknowledge(), secs(2));
    when(&mut job, beat(PushStatus::Down), secs(3));
    let (events, owed) = when(&mut job, Command::Unmute, secs(4));
    assert_eq!(events, ["unmuted:manual"]);
    assert!(owed.is_empty(), "what it held stays held");
    let (events, _) = when(&mut job, Command::Unmute, secs(5));
    assert!(events.is_empty(), "nothing to unmute");
    let (_, owed) = when(&mut job, beat(PushStatus::Up), secs(6));
    assert_eq!(owed, [(AlertKind::Up, AlertNotice::Change)]);
    // A mute replaces the one on.
    when(&mut job, mute_until(secs(100)), secs(7));
    when(&mut job, acknowledge(), secs(8));
    assert_eq!(
        job.mute,
        Some(Mute {
            since: secs(8),
            until: None,
            until_recovery: true
        })
    );
}

#[test]
fn reminders_wait_for_the_mute_and_count_from_its_end() {
    let mut job = monitor(|config| config.realert_every_seconds = Some(600));
    when(&mut job, beat(PushStatus::Down), secs(0));
    when(&mut job, mute_until(secs(3600)), secs(10));
    // No reminder at 600 s: the next look is the mute's end.
    assert_eq!(job.next_wakeup(secs(10)), Some(secs(3600)));
    let (events, owed) = when(&mut job, Command::CheckDeadline { hold: false }, secs(3600));
    assert_eq!(events, ["unmuted:expired"]);
    assert!(owed.is_empty());
    assert_eq!(job.next_wakeup(secs(3600)), Some(secs(4200)));
    let (events, owed) = when(&mut job, Command::CheckDeadline { hold: false }, secs(4200));
    assert_eq!(events, ["reminder:manual"]);
    assert_eq!(owed, [(AlertKind::Down, AlertNotice::Reminder)]);
}

#[test]
fn a_release_of_maintenance_falling_in_a_mute_is_held_for_good() {
    let mut job = monitor(|config| {
        config.maintenance = vec![crate::domain::schedule::MaintenanceWindow::Once {
            start: secs(0),
            end: secs(100),
        }];
    });
    when(&mut job, beat(PushStatus::Up), secs(1));
    let (events, _) = when(&mut job, beat(PushStatus::Down), secs(2));
    assert_eq!(
        events,
        [
            "heartbeat:down",
            "alert_suppressed:maintenance",
            "down:manual"
        ]
    );
    when(&mut job, acknowledge(), secs(50));
    let (events, owed) = when(&mut job, Command::CheckDeadline { hold: false }, secs(100));
    assert_eq!(events, ["alert_suppressed:mute:down", "alert_released"]);
    assert!(owed.is_empty());
    assert_eq!(job.release_due(), None);
    // Replay folds to the same state, and owes the same (nothing), event by event.
    let mut history = vec![];
    let mut replayed = monitor(|config| {
        config.maintenance = job.config.maintenance.clone();
    });
    for (command, at) in [
        (beat(PushStatus::Up), secs(1)),
        (beat(PushStatus::Down), secs(2)),
        (acknowledge(), secs(50)),
        (Command::CheckDeadline { hold: false }, secs(100)),
    ] {
        history.extend(decide(&replayed, command.clone(), at));
        when(&mut replayed, command, at);
    }
    let mut folded = monitor(|config| {
        config.maintenance = job.config.maintenance.clone();
    });
    for stamped in &history {
        let owed = owed_deliveries(&folded, std::slice::from_ref(stamped), |_, _| true);
        if matches!(stamped.event, Event::AlertReleased(_)) {
            assert!(owed.is_empty());
        }
        let seq = folded.last_seq + 1;
        apply(&mut folded, seq, stamped.at, &stamped.event);
    }
    assert_eq!(folded, replayed);
}
