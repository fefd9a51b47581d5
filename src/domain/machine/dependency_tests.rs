//! Dependencies (`docs/states.md`, "Dependencies"), given/when/then: a `down` while a
//! parent is down is held (`AlertHeld`), recorded and not sent; it is sent
//! (`AlertReleased`) once every parent has been up for the dependency grace and the
//! monitor is still down; a recovery meanwhile sends nothing at all.

use super::*;
use crate::domain::alert::{AlertKind, AlertNotice, owed_deliveries};

/// 2023-11-14T22:13:20Z.
const T0: Timestamp = Timestamp::from_millis(1_700_000_000_000);

fn parent_id() -> MonitorId {
    MonitorId::from_bytes([9; 16])
}

fn secs(seconds: i64) -> Timestamp {
    Timestamp::from_millis(T0.as_millis() + seconds * 1000)
}

/// A child of the parent with a 60 s timeout and a 30 s dependency grace.
fn child() -> Monitor {
    let mut config = MonitorConfig::new("child", 60);
    config.channels = vec![ChannelId::from_bytes([4; 16])];
    config.parents = vec![parent_id()];
    config.dependency_grace_seconds = Some(30);
    Monitor::created(
        MonitorId::from_bytes([1; 16]),
        T0,
        config,
        PushToken::from_bytes([1; 16]),
    )
}

fn parent(down: bool, since: Timestamp) -> Parents {
    Parents(vec![ParentState {
        id: parent_id(),
        down,
        since,
    }])
}

fn beat(status: PushStatus) -> Command {
    Command::Heartbeat(Heartbeat::new(status, None, None))
}

/// Decides (knowing `parents`) and applies `command` at `now`: the events' kinds
/// and the alerts they owe.
fn when(
    monitor: &mut Monitor,
    command: Command,
    now: Timestamp,
    parents: &Parents,
) -> (Vec<String>, Vec<(AlertKind, AlertNotice)>) {
    let before = monitor.clone();
    let events = decide_with(monitor, command, now, parents);
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
        .map(|stamped| match &stamped.event {
            Event::AlertHeld {
                notice: Notice::Down(_),
                ..
            } => "alert_held:down".to_owned(),
            Event::AlertHeld {
                notice: Notice::Up, ..
            } => "alert_held:up".to_owned(),
            Event::AlertReleased(Notice::Down(_)) => "alert_released:down".to_owned(),
            event => event.kind().unwrap_or("grace").to_owned(),
        })
        .collect();
    (kinds, owed)
}

#[test]
fn a_down_while_the_parent_is_down_is_held_and_sent_after_the_grace() {
    let mut job = child();
    let up = parent(false, T0);
    when(&mut job, beat(PushStatus::Up), secs(1), &up);
    let down = parent(true, secs(50));
    let (events, owed) = when(
        &mut job,
        Command::CheckDeadline { hold: false },
        secs(61),
        &down,
    );
    assert_eq!(events, ["alert_held:down", "down"]);
    assert!(owed.is_empty(), "held: nothing sent");
    assert_eq!(job.status, Status::Down);
    assert_eq!(
        job.held_alert,
        Some(HeldAlert {
            notice: Notice::Down(DownReason::Timeout),
            parent: parent_id(),
            since: secs(61)
        })
    );
    assert!(!job.alerted_down);
    // Nothing to wake for while the parent is down, and no reminder of a held down.
    assert_eq!(job.next_wakeup_with(secs(61), &down), None);
    assert_eq!(job.release_due(), None);
    // The parent recovers at 100 s: the release is due at 130 s.
    let recovered = parent(false, secs(100));
    assert_eq!(job.next_wakeup_with(secs(100), &recovered), Some(secs(130)));
    let (events, _) = when(
        &mut job,
        Command::CheckDeadline { hold: false },
        secs(129),
        &recovered,
    );
    assert!(events.is_empty(), "not before the grace");
    let (events, owed) = when(
        &mut job,
        Command::CheckDeadline { hold: false },
        secs(130),
        &recovered,
    );
    assert_eq!(events, ["alert_released:down"]);
    assert_eq!(owed, [(AlertKind::Down, AlertNotice::AfterDependency)]);
    assert_eq!(job.held_alert, None);
    assert!(job.alerted_down);
    // Its recovery is an ordinary one now.
    let (_, owed) = when(&mut job, beat(PushStatus::Up), secs(140), &recovered);
    assert_eq!(owed, [(AlertKind::Up, AlertNotice::Change)]);
}

#[test]
fn a_child_that_recovers_while_held_sends_nothing_at_all() {
    let mut job = child();
    let down = parent(true, T0);
    let (events, owed) = when(&mut job, beat(PushStatus::Down), secs(5), &down);
    assert_eq!(events, ["heartbeat", "alert_held:down", "down"]);
    assert!(owed.is_empty());
    let (events, owed) = when(&mut job, beat(PushStatus::Up), secs(10), &down);
    assert_eq!(events, ["heartbeat", "alert_held:up", "up"]);
    assert!(owed.is_empty(), "the channels never heard of the down");
    assert_eq!(job.held_alert, None, "nothing is owed any more");
    // The parent's recovery and grace release nothing.
    let recovered = parent(false, secs(20));
    assert_eq!(job.next_wakeup_with(secs(20), &recovered), Some(secs(70)));
    let (events, owed) = when(
        &mut job,
        Command::CheckDeadline { hold: false },
        secs(60),
        &recovered,
    );
    assert!(events.is_empty());
    assert!(owed.is_empty());
}

#[test]
fn a_parent_that_goes_down_again_within_the_grace_keeps_holding() {
    let mut job = child();
    when(&mut job, beat(PushStatus::Down), secs(5), &parent(true, T0));
    // Up at 10 s, down again at 20 s: at 40 s nothing is due.
    let again = parent(true, secs(20));
    assert_eq!(job.next_wakeup_with(secs(20), &again), None);
    let (events, _) = when(
        &mut job,
        Command::CheckDeadline { hold: false },
        secs(40),
        &again,
    );
    assert!(events.is_empty());
    // Up again at 50 s: due at 80 s.
    let (events, owed) = when(
        &mut job,
        Command::CheckDeadline { hold: false },
        secs(80),
        &parent(false, secs(50)),
    );
    assert_eq!(events, ["alert_released:down"]);
    assert_eq!(owed, [(AlertKind::Down, AlertNotice::AfterDependency)]);
}

#[test]
fn a_down_while_the_parents_are_up_alerts_at_once_and_a_missing_parent_holds_nothing() {
    let mut job = child();
    let (events, owed) = when(
        &mut job,
        beat(PushStatus::Down),
        secs(5),
        &parent(false, T0),
    );
    assert_eq!(events, ["heartbeat", "down"]);
    assert_eq!(owed, [(AlertKind::Down, AlertNotice::Change)]);
    // A held alert whose parent was deleted (missing from what is known): released
    // at the next look.
    let mut held = child();
    when(
        &mut held,
        beat(PushStatus::Down),
        secs(5),
        &parent(true, T0),
    );
    let (events, owed) = when(
        &mut held,
        Command::CheckDeadline { hold: false },
        secs(6),
        &Parents::default(),
    );
    assert_eq!(events, ["alert_released:down"]);
    assert_eq!(owed, [(AlertKind::Down, AlertNotice::AfterDependency)]);
}

#[test]
fn a_mute_holds_a_released_alert_for_good_and_a_pause_drops_the_hold() {
    let mut job = child();
    when(&mut job, beat(PushStatus::Down), secs(5), &parent(true, T0));
    when(
        &mut job,
        Command::Mute {
            until: None,
            until_recovery: false,
        },
        secs(6),
        &parent(true, T0),
    );
    let (events, owed) = when(
        &mut job,
        Command::CheckDeadline { hold: false },
        secs(100),
        &parent(false, secs(10)),
    );
    assert_eq!(events, ["alert_suppressed", "alert_released:down"]);
    assert!(owed.is_empty());
    let mut paused = child();
    when(
        &mut paused,
        beat(PushStatus::Down),
        secs(5),
        &parent(true, T0),
    );
    when(&mut paused, Command::Pause, secs(6), &parent(true, T0));
    assert_eq!(paused.held_alert, None);
}

#[test]
fn a_down_a_window_held_back_is_held_for_a_parent_down_at_the_windows_end() {
    let mut job = child();
    job.config = Arc::new(MonitorConfig {
        maintenance: vec![crate::domain::schedule::MaintenanceWindow::Once {
            start: secs(0),
            end: secs(100),
        }],
        ..(*job.config).clone()
    });
    let (events, _) = when(
        &mut job,
        beat(PushStatus::Down),
        secs(5),
        &parent(false, T0),
    );
    assert_eq!(events, ["heartbeat", "alert_suppressed", "down"]);
    let down = parent(true, secs(90));
    let (events, owed) = when(
        &mut job,
        Command::CheckDeadline { hold: false },
        secs(100),
        &down,
    );
    assert_eq!(events, ["alert_held:down"]);
    assert!(owed.is_empty());
    let (events, owed) = when(
        &mut job,
        Command::CheckDeadline { hold: false },
        secs(150),
        &parent(false, secs(110)),
    );
    assert_eq!(events, ["alert_released:down"]);
    assert_eq!(owed, [(AlertKind::Down, AlertNotice::AfterDependency)]);
}

#[test]
fn a_held_alert_replays_to_the_same_state() {
    let mut job = child();
    let mut history = vec![];
    for (command, at, parents) in [
        (beat(PushStatus::Up), secs(1), parent(false, T0)),
        (
            Command::CheckDeadline { hold: false },
            secs(61),
            parent(true, secs(50)),
        ),
        (beat(PushStatus::Up), secs(70), parent(true, secs(50))),
        (beat(PushStatus::Down), secs(80), parent(true, secs(50))),
        (
            Command::CheckDeadline { hold: false },
            secs(200),
            parent(false, secs(100)),
        ),
    ] {
        let events = decide_with(&job, command, at, &parents);
        for stamped in &events {
            let seq = job.last_seq + 1;
            apply(&mut job, seq, stamped.at, &stamped.event);
            history.push((seq, stamped.at, stamped.event.clone()));
        }
    }
    assert_eq!(job.held_alert, None);
    assert!(job.alerted_down);
    let created = Event::Created {
        config: Box::new((*job.config).clone()),
        token: job.token.clone(),
    };
    let replayed = replay(
        job.id,
        std::iter::once((1, T0, &created))
            .chain(history.iter().map(|(seq, at, event)| (*seq, *at, event))),
    );
    assert_eq!(
        replayed.map(|mut monitor| {
            monitor.last_seq = job.last_seq;
            monitor
        }),
        Some(job)
    );
}
