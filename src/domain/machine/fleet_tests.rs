//! Fleet monitors (`docs/states.md`, "Fleets"), given/when/then: up while at least
//! `min_instances` instances reported a success within the timeout, down (reason
//! `instances`) when fewer do, judged at the time the quorum runs out; instances
//! silent past the retention forgotten; at most `MAX_INSTANCES` kept.

use super::*;
use crate::domain::alert::{AlertKind, AlertNotice, owed_deliveries};

/// 2023-11-14T22:13:20Z.
const T0: Timestamp = Timestamp::from_millis(1_700_000_000_000);

fn secs(seconds: i64) -> Timestamp {
    Timestamp::from_millis(T0.as_millis() + seconds * 1000)
}

/// A fleet of `min_instances` with a 60 s timeout and a 600 s retention.
fn fleet(min_instances: u32) -> Monitor {
    let mut config = MonitorConfig::new("workers", 60);
    config.channels = vec![ChannelId::from_bytes([4; 16])];
    config.min_instances = Some(min_instances);
    config.instance_retention_seconds = Some(600);
    Monitor::created(
        MonitorId::from_bytes([1; 16]),
        T0,
        config,
        PushToken::from_bytes([1; 16]),
    )
}

fn from(instance: &str, status: PushStatus) -> Command {
    Command::Heartbeat(Heartbeat {
        instance: InstanceName::parse(instance),
        ..Heartbeat::new(status, None, None)
    })
}

/// Decides and applies `command` at `now`: the events' kinds and the alerts they
/// owe, with the instances each names as missing.
fn when(
    monitor: &mut Monitor,
    command: Command,
    now: Timestamp,
) -> (Vec<String>, Vec<(AlertKind, Vec<String>)>) {
    let before = monitor.clone();
    let events = decide(monitor, command, now);
    for stamped in &events {
        let seq = monitor.last_seq + 1;
        apply(monitor, seq, stamped.at, &stamped.event);
    }
    let owed = owed_deliveries(&before, &events, |_, _| true)
        .into_iter()
        .map(|(_, delivery)| {
            assert_eq!(delivery.alert.notice, AlertNotice::Change);
            (
                delivery.alert.kind,
                delivery.alert.missing_instances.to_vec(),
            )
        })
        .collect();
    let kinds = events
        .iter()
        .map(|stamped| match &stamped.event {
            Event::WentDown { reason } => format!("down:{}", reason.as_str()),
            Event::InstanceForgotten { instance } => format!("forgotten:{instance}"),
            Event::HeartbeatReceived(heartbeat) => format!(
                "heartbeat:{}:{}",
                heartbeat.status.as_str(),
                heartbeat
                    .instance
                    .as_ref()
                    .map_or("-", |name| name.as_str())
            ),
            event => event.kind().unwrap_or("grace").to_owned(),
        })
        .collect();
    (kinds, owed)
}

fn names(monitor: &Monitor) -> Vec<&str> {
    monitor
        .instances
        .iter()
        .map(|instance| instance.name.as_str())
        .collect()
}

#[test]
fn a_fleet_goes_up_with_its_quorum_and_down_when_the_quorum_runs_out() {
    let mut workers = fleet(2);
    // One instance is not a quorum: still pending.
    let (events, _) = when(&mut workers, from("a", PushStatus::Up), secs(1));
    assert_eq!(events, ["heartbeat:up:a"]);
    assert_eq!(workers.status, Status::Pending);
    let (events, owed) = when(&mut workers, from("b", PushStatus::Up), secs(2));
    assert_eq!(events, ["heartbeat:up:b", "up"]);
    assert!(owed.is_empty(), "pending to up alerts nothing");
    when(&mut workers, from("c", PushStatus::Up), secs(3));
    assert_eq!(names(&workers), ["a", "b", "c"]);
    // a and b keep reporting, c stops: two of three is enough.
    when(&mut workers, from("a", PushStatus::Up), secs(40));
    when(&mut workers, from("b", PushStatus::Up), secs(41));
    // The quorum lasts until the second latest expiry: a's (40 + 60).
    assert_eq!(workers.next_deadline(), Some(secs(100)));
    let (events, _) = when(
        &mut workers,
        Command::CheckDeadline { hold: false },
        secs(63),
    );
    assert!(events.is_empty(), "c timed out at 63 s, two still report");
    assert_eq!(workers.status, Status::Up);
    assert_eq!(
        workers.missing_instances(secs(63)),
        [&workers.instances[2].name]
    );
    // Then a stops too: down at 100 s (a's expiry), naming a and c.
    let (events, owed) = when(
        &mut workers,
        Command::CheckDeadline { hold: false },
        secs(100),
    );
    assert_eq!(events, ["down:instances"]);
    assert_eq!(
        owed,
        [(AlertKind::Down, vec!["a".to_owned(), "c".to_owned()])]
    );
    assert_eq!(workers.last_status_change_at, Some(secs(100)));
    // c comes back while b still reports: recovered; the alert names the missing a.
    let (events, owed) = when(&mut workers, from("c", PushStatus::Up), secs(100));
    assert_eq!(events, ["heartbeat:up:c", "up"]);
    assert_eq!(owed, [(AlertKind::Up, vec!["a".to_owned()])]);
}

#[test]
fn an_instance_reporting_a_failure_stops_counting_at_once() {
    let mut workers = fleet(2);
    when(&mut workers, from("a", PushStatus::Up), secs(1));
    when(&mut workers, from("b", PushStatus::Up), secs(2));
    let (events, owed) = when(&mut workers, from("b", PushStatus::Down), secs(5));
    assert_eq!(events, ["heartbeat:down:b", "down:instances"]);
    assert_eq!(owed, [(AlertKind::Down, vec!["b".to_owned()])]);
    let (events, _) = when(&mut workers, from("b", PushStatus::Up), secs(6));
    assert_eq!(events, ["heartbeat:up:b", "up"]);
    // A failure that leaves the quorum whole changes nothing.
    when(&mut workers, from("c", PushStatus::Up), secs(7));
    let (events, _) = when(&mut workers, from("c", PushStatus::Down), secs(8));
    assert_eq!(events, ["heartbeat:down:c"]);
    assert_eq!(workers.status, Status::Up);
}

#[test]
fn a_fleet_that_never_reaches_its_quorum_goes_down_at_its_timeout() {
    let mut workers = fleet(3);
    when(&mut workers, from("a", PushStatus::Up), secs(10));
    when(&mut workers, from("b", PushStatus::Up), secs(50));
    // Heartbeats do not move a fleet's clock: down 60 s after its creation.
    assert_eq!(workers.next_deadline(), Some(secs(60)));
    let (events, owed) = when(
        &mut workers,
        Command::CheckDeadline { hold: false },
        secs(60),
    );
    assert_eq!(events, ["down:instances"]);
    assert_eq!(
        owed,
        [(AlertKind::Down, vec![])],
        "a and b report; none known is missing"
    );
}

#[test]
fn a_heartbeat_without_an_instance_counts_as_the_default_instance() {
    let mut workers = fleet(1);
    let (events, _) = when(
        &mut workers,
        Command::Heartbeat(Heartbeat::new(PushStatus::Up, None, None)),
        secs(1),
    );
    assert_eq!(events, ["heartbeat:up:-", "up"]);
    assert_eq!(names(&workers), [DEFAULT_INSTANCE]);
    // An ordinary monitor keeps no instances, whatever its heartbeats name.
    let mut plain = fleet(1);
    plain.config = Arc::new(MonitorConfig::new("plain", 60));
    when(&mut plain, from("a", PushStatus::Up), secs(1));
    assert!(plain.instances.is_empty());
    assert_eq!(plain.status, Status::Up);
}

#[test]
fn instances_silent_past_the_retention_are_forgotten_at_their_time() {
    let mut workers = fleet(1);
    when(&mut workers, from("a", PushStatus::Up), secs(1));
    when(&mut workers, from("b", PushStatus::Up), secs(100));
    when(&mut workers, from("b", PushStatus::Up), secs(150));
    // a: last seen at 1 s, retention 600 s.
    assert_eq!(workers.next_wakeup(secs(150)), Some(secs(210)));
    when(
        &mut workers,
        Command::CheckDeadline { hold: false },
        secs(210),
    );
    assert_eq!(workers.status, Status::Down);
    assert_eq!(workers.next_wakeup(secs(210)), Some(secs(601)));
    let (events, owed) = when(
        &mut workers,
        Command::CheckDeadline { hold: false },
        secs(601),
    );
    assert_eq!(events, ["forgotten:a"]);
    assert!(owed.is_empty());
    assert_eq!(names(&workers), ["b"]);
    let (events, _) = when(
        &mut workers,
        Command::CheckDeadline { hold: false },
        secs(760),
    );
    assert_eq!(events, ["forgotten:b"]);
    assert!(workers.instances.is_empty());
    assert_eq!(workers.next_wakeup(secs(760)), None);
    // A forgotten instance that reports again is new again.
    let (events, _) = when(&mut workers, from("a", PushStatus::Up), secs(800));
    assert_eq!(events, ["heartbeat:up:a", "up"]);
}

#[test]
fn a_full_fleet_forgets_the_instance_silent_the_longest_for_a_new_one() {
    let mut workers = fleet(1);
    workers.config = Arc::new(MonitorConfig {
        instance_retention_seconds: Some(86_400),
        timeout_seconds: 86_400,
        interval_seconds: 86_400,
        ..(*workers.config).clone()
    });
    for n in 0..MAX_INSTANCES {
        when(
            &mut workers,
            from(&format!("i{n}"), PushStatus::Up),
            secs(n as i64),
        );
    }
    assert_eq!(workers.instances.len(), MAX_INSTANCES);
    // i0 reports again: nothing forgotten; i1 is now the oldest.
    let (events, _) = when(&mut workers, from("i0", PushStatus::Up), secs(5000));
    assert_eq!(events, ["heartbeat:up:i0"]);
    let (events, _) = when(&mut workers, from("new", PushStatus::Up), secs(5001));
    assert_eq!(events, ["forgotten:i1", "heartbeat:up:new"]);
    assert_eq!(workers.instances.len(), MAX_INSTANCES);
    assert!(!names(&workers).contains(&"i1"));
}

#[test]
fn a_fleet_refuses_settings_that_have_no_meaning_for_it() {
    let mut config = MonitorConfig::new("workers", 60);
    config.min_instances = Some(2);
    assert_eq!(check_config(&config), Ok(()));
    for (field, change) in [
        (
            "failure_threshold",
            &(|c: &mut MonitorConfig| c.failure_threshold = 2) as &dyn Fn(&mut MonitorConfig),
        ),
        ("recovery_threshold", &|c: &mut MonitorConfig| {
            c.recovery_threshold = 2
        }),
        ("max_runtime_seconds", &|c: &mut MonitorConfig| {
            c.max_runtime_seconds = Some(10)
        }),
        ("min_runtime_seconds", &|c: &mut MonitorConfig| {
            c.min_runtime_seconds = Some(10)
        }),
    ] {
        let mut refused = config.clone();
        change(&mut refused);
        assert_eq!(
            check_config(&refused),
            Err(Rejection::NotForFleet { field })
        );
    }
    config.instance_retention_seconds = Some(59);
    assert_eq!(
        check_config(&config),
        Err(Rejection::RetentionBelowTimeout {
            instance_retention_seconds: 59,
            timeout_seconds: 60
        })
    );
    // A change too: a threshold on an existing fleet.
    let workers = fleet(2);
    let patch = ConfigPatch {
        failure_threshold: Some(3),
        ..ConfigPatch::default()
    };
    assert_eq!(
        check(&workers, &Command::Update(patch)),
        Err(Rejection::NotForFleet {
            field: "failure_threshold"
        })
    );
}

#[test]
fn a_fleet_made_an_ordinary_monitor_forgets_its_instances_and_a_resume_starts_afresh() {
    let mut workers = fleet(2);
    when(&mut workers, from("a", PushStatus::Up), secs(1));
    when(&mut workers, from("b", PushStatus::Up), secs(2));
    when(&mut workers, Command::Pause, secs(3));
    // Resumed long after both instances timed out: a fresh timeout from the resume.
    when(&mut workers, Command::Resume, secs(500));
    assert_eq!(workers.status, Status::Pending);
    assert_eq!(workers.next_deadline(), Some(secs(560)));
    let patch = ConfigPatch {
        min_instances: Some(None),
        ..ConfigPatch::default()
    };
    when(&mut workers, Command::Update(patch), secs(501));
    assert!(workers.instances.is_empty());
}

proptest::proptest! {
    /// Any history of heartbeats from a few instances and ticks: the fleet is `up`
    /// exactly when its quorum held at its last change, replay folds to the live
    /// state, and instances stay sorted, unique and bounded.
    #[test]
    fn fleet_state_replays_and_follows_its_quorum(
        steps in proptest::collection::vec((0u8..4, 0u8..5, 1i64..50), 1..60)
    ) {
        let mut workers = fleet(2);
        workers.last_seq = 1;
        let mut history: Vec<(u64, Timestamp, Event)> = vec![];
        let mut now = secs(0);
        let mut seq = 1;
        for (kind, instance, gap) in steps {
            now = Timestamp::from_millis(now.as_millis() + gap * 1000);
            let command = match kind {
                0 => Command::CheckDeadline { hold: false },
                1 => from(&format!("i{instance}"), PushStatus::Down),
                _ => from(&format!("i{instance}"), PushStatus::Up),
            };
            for stamped in decide(&workers, command, now) {
                seq += 1;
                apply(&mut workers, seq, stamped.at, &stamped.event);
                history.push((seq, stamped.at, stamped.event));
            }
            let reporting = workers.instances_reporting(now) >= 2;
            match workers.status {
                // Up without a quorum only until the timer judges its deadline.
                Status::Up => proptest::prop_assert!(
                    reporting || workers.next_deadline().is_some_and(|at| at <= now)
                ),
                Status::Pending | Status::Down => proptest::prop_assert!(!reporting),
                _ => {}
            }
            proptest::prop_assert!(workers.instances.windows(2).all(|pair| pair[0].name < pair[1].name));
        }
        let created = Event::Created {
            config: Box::new((*workers.config).clone()),
            token: workers.token.clone(),
        };
        let replayed = replay(
            workers.id,
            std::iter::once((1, T0, &created))
                .chain(history.iter().map(|(seq, at, event)| (*seq, *at, event))),
        );
        proptest::prop_assert_eq!(replayed, Some(workers));
    }
}
