//! The job rules of `machine` (`docs/states.md`, "Runs" to "Maintenance windows"),
//! given/when/then: runs and their ends, exit statuses, max and min runtimes,
//! thresholds, schedules (daylight saving time included), maintenance windows and
//! reminders, and their combinations; then proptests over any history of them.

use std::sync::Arc;

use proptest::prelude::*;

use super::*;
use crate::domain::alert::{AlertKind, AlertNotice, owed_deliveries};
use crate::domain::event::{Output, RunEnd, RunStart};
use crate::domain::schedule::CronSchedule;

/// 2023-11-14T22:13:20Z.
const T0: Timestamp = Timestamp::from_millis(1_700_000_000_000);

fn secs(seconds: i64) -> Timestamp {
    Timestamp::from_millis(T0.as_millis() + seconds * 1000)
}

fn utc(text: &str) -> Timestamp {
    Timestamp::parse_rfc3339(text).expect("an RFC 3339 time")
}

/// An interval monitor created at `at`, its configuration changed by `adjust`.
fn monitor_at(at: Timestamp, timeout: u32, adjust: impl FnOnce(&mut MonitorConfig)) -> Monitor {
    let mut config = MonitorConfig::new("job", timeout);
    config.channels = vec![ChannelId::from_bytes([4; 16])];
    adjust(&mut config);
    Monitor::created(
        MonitorId::from_bytes([1; 16]),
        at,
        config,
        PushToken::from_bytes([1; 16]),
    )
}

fn monitor(timeout: u32, adjust: impl FnOnce(&mut MonitorConfig)) -> Monitor {
    monitor_at(T0, timeout, adjust)
}

fn rid(n: u8) -> RunId {
    RunId::from_bytes([n; 16])
}

fn signal(kind: SignalKind, run: Option<u8>) -> Command {
    Command::Signal(Box::new(Signal {
        rid: run.map(rid),
        ..Signal::new(kind)
    }))
}

fn start(run: Option<u8>) -> Command {
    signal(SignalKind::Start, run)
}

fn success(run: Option<u8>) -> Command {
    signal(SignalKind::Success, run)
}

fn exit(status: u8, run: Option<u8>, output: &str) -> Command {
    Command::Signal(Box::new(Signal {
        rid: run.map(rid),
        output: Output::from_body(output.as_bytes(), 10_000),
        ..Signal::exit(status)
    }))
}

fn up() -> Command {
    Command::Heartbeat(Heartbeat {
        status: PushStatus::Up,
        msg: None,
        value: None,
        instance: None,
    })
}

fn down() -> Command {
    Command::Heartbeat(Heartbeat {
        status: PushStatus::Down,
        msg: None,
        value: None,
        instance: None,
    })
}

/// Decides, applies, and returns the events with their stamps.
fn when(monitor: &mut Monitor, command: Command, now: Timestamp) -> Vec<Stamped> {
    let events = decide(monitor, command, now);
    for stamped in &events {
        let seq = monitor.last_seq + 1;
        apply(monitor, seq, stamped.at, &stamped.event);
    }
    events
}

/// The events' kinds, as the API names them, and the reason or count of those that
/// have one: a compact picture of what happened.
fn kinds(events: &[Stamped]) -> Vec<String> {
    events
        .iter()
        .map(|stamped| {
            let kind = stamped.event.kind().unwrap_or("grace");
            match &stamped.event {
                Event::WentDown { reason } | Event::Reminder { reason } => {
                    format!("{kind}:{}", reason.as_str())
                }
                Event::FailureCounted { reason, count } => {
                    format!("{kind}:{}:{count}", reason.as_str())
                }
                Event::SuccessCounted { count } => format!("{kind}:{count}"),
                Event::HeartbeatReceived(heartbeat) => {
                    format!("{kind}:{}", heartbeat.status.as_str())
                }
                Event::RunEnded(end) => match end.outcome {
                    RunOutcome::Success => format!("{kind}:success"),
                    RunOutcome::Failure(reason) => format!("{kind}:{}", reason.as_str()),
                },
                Event::AlertSuppressed(Notice::Down(_)) | Event::AlertReleased(Notice::Down(_)) => {
                    format!("{kind}:down")
                }
                Event::AlertSuppressed(Notice::Up) | Event::AlertReleased(Notice::Up) => {
                    format!("{kind}:up")
                }
                _ => kind.to_owned(),
            }
        })
        .collect()
}

/// The alerts `events` owe (to the monitor's one channel), given the state before.
fn alerts(before: &Monitor, events: &[Stamped]) -> Vec<(AlertKind, AlertNotice, String)> {
    owed_deliveries(before, events, |_, _| true)
        .into_iter()
        .map(|(_, delivery)| {
            let alert = delivery.alert;
            (alert.kind, alert.notice, alert.reason)
        })
        .collect()
}

/// `when`, also returning the alerts owed.
fn when_alerting(
    monitor: &mut Monitor,
    command: Command,
    now: Timestamp,
) -> (Vec<String>, Vec<(AlertKind, AlertNotice, String)>) {
    let before = monitor.clone();
    let events = when(monitor, command, now);
    (kinds(&events), alerts(&before, &events))
}

#[test]
fn a_run_is_started_ended_and_measured() {
    let mut job = monitor(3600, |_| {});
    assert_eq!(
        kinds(&when(&mut job, start(Some(1)), secs(10))),
        ["run_started"]
    );
    assert_eq!(job.status, Status::Pending, "a start is no success");
    assert_eq!(job.last_heartbeat_at, None, "nor a heartbeat");
    assert_eq!(job.runs.len(), 1);
    let ended = when(&mut job, exit(0, Some(1), "42 rows"), secs(25));
    assert_eq!(kinds(&ended), ["heartbeat:up", "run_ended:success", "up"]);
    assert!(job.runs.is_empty());
    let last = job.last_run.as_deref().expect("a last run");
    assert_eq!(last.duration_ms(), Some(15_000));
    assert_eq!(last.exit_status, Some(0));
    assert_eq!(last.output_excerpt.as_deref(), Some("42 rows"));
    assert_eq!(job.last_success_at, Some(secs(25)));
    assert_eq!(job.next_due_at(), Some(secs(25 + 3600)));
}

#[test]
fn a_start_never_recovers_and_a_log_changes_nothing() {
    let mut job = monitor(60, |_| {});
    when(&mut job, down(), secs(1));
    assert_eq!(job.status, Status::Down);
    let before = job.clone();
    assert_eq!(
        kinds(&when(&mut job, start(None), secs(2))),
        ["run_started"]
    );
    assert_eq!(job.status, Status::Down);
    let logged = when(
        &mut job,
        Command::Signal(Box::new(Signal {
            output: Output::from_body(b"halfway", 100),
            ..Signal::new(SignalKind::Log)
        })),
        secs(3),
    );
    assert_eq!(kinds(&logged), ["log"]);
    assert_eq!(
        (job.status, job.last_heartbeat_at, job.clock_started_at),
        (
            before.status,
            before.last_heartbeat_at,
            before.clock_started_at
        )
    );
}

#[test]
fn an_exit_status_decides_success_or_failure_and_alerts_with_its_output() {
    // (exit status, events, alert reason)
    let table: [(u8, &[&str], Option<&str>); 3] = [
        (0, &["heartbeat:up", "run_ended:success", "up"], None),
        (
            1,
            &[
                "heartbeat:down",
                "run_ended:exit_status",
                "down:exit_status",
            ],
            Some("exit_status"),
        ),
        (
            255,
            &[
                "heartbeat:down",
                "run_ended:exit_status",
                "down:exit_status",
            ],
            Some("exit_status"),
        ),
    ];
    for (status, expected, reason) in table {
        let mut job = monitor(60, |_| {});
        let before = job.clone();
        let events = when(&mut job, exit(status, None, "disk full"), secs(5));
        assert_eq!(kinds(&events), expected, "exit {status}");
        let owed = owed_deliveries(&before, &events, |_, _| true);
        assert_eq!(owed.len(), usize::from(reason.is_some()), "exit {status}");
        if let Some((_, delivery)) = owed.first() {
            assert_eq!(Some(delivery.alert.reason.as_str()), reason);
            assert_eq!(delivery.alert.exit_status, Some(status));
            assert_eq!(delivery.alert.output.as_deref(), Some("disk full"));
        }
    }
}

#[test]
fn a_run_past_its_max_runtime_goes_down_once_stamped_at_its_limit() {
    let mut job = monitor(3600, |config| config.max_runtime_seconds = Some(60));
    when(&mut job, up(), secs(0));
    when(&mut job, start(Some(7)), secs(10));
    // The run holds the due deadline back no further than its limit; the limit
    // comes first.
    assert_eq!(job.next_deadline(), Some(secs(70)));
    assert!(when(&mut job, Command::CheckDeadline { hold: false }, secs(69)).is_empty());
    let events = when(&mut job, Command::CheckDeadline { hold: false }, secs(75));
    assert_eq!(kinds(&events), ["run_overran", "down:max_runtime"]);
    assert!(events.iter().all(|stamped| stamped.at == secs(70)));
    assert!(job.runs[0].overran);
    assert_eq!(job.next_deadline(), None, "down: nothing more to judge");
    // It recovers on a success; the overrun run is not judged again.
    when(&mut job, up(), secs(80));
    assert_eq!(job.status, Status::Up);
    assert!(when(&mut job, Command::CheckDeadline { hold: false }, secs(200)).is_empty());
    // Its late end still closes it.
    let ended = when(&mut job, success(Some(7)), secs(300));
    assert_eq!(kinds(&ended), ["heartbeat:up", "run_ended:success"]);
    assert!(job.runs.is_empty());
}

#[test]
fn a_job_at_work_is_not_late_until_its_max_runtime() {
    // Due every 60 s; this run takes 100 s, within its 120 s limit.
    let mut job = monitor(60, |config| config.max_runtime_seconds = Some(120));
    when(&mut job, up(), secs(0));
    when(&mut job, start(None), secs(50));
    assert_eq!(job.due_deadline(), Some(secs(170)));
    assert!(when(&mut job, Command::CheckDeadline { hold: false }, secs(65)).is_empty());
    let ended = when(&mut job, success(None), secs(150));
    assert_eq!(kinds(&ended), ["heartbeat:up", "run_ended:success"]);
    assert_eq!(job.status, Status::Up);
    // Without a max runtime a start changes no deadline.
    let mut plain = monitor(60, |_| {});
    when(&mut plain, up(), secs(0));
    when(&mut plain, start(None), secs(50));
    assert_eq!(plain.next_deadline(), Some(secs(60)));
}

#[test]
fn a_success_sooner_than_the_min_runtime_is_a_failure() {
    let mut job = monitor(3600, |config| config.min_runtime_seconds = Some(30));
    when(&mut job, up(), secs(0));
    when(&mut job, start(None), secs(10));
    let fast = when(&mut job, success(None), secs(15));
    assert_eq!(
        kinds(&fast),
        ["heartbeat:down", "run_ended:too_fast", "down:too_fast"]
    );
    assert_eq!(job.last_success_at, Some(secs(0)), "not a success");
    // Long enough: a success. Without a start there is no duration to judge.
    when(&mut job, start(None), secs(100));
    assert_eq!(
        kinds(&when(&mut job, success(None), secs(131))),
        ["heartbeat:up", "run_ended:success", "up"]
    );
    assert_eq!(
        kinds(&when(&mut job, success(None), secs(140))),
        ["heartbeat:up"]
    );
}

#[test]
fn run_ids_tell_concurrent_runs_apart() {
    let mut job = monitor(3600, |_| {});
    when(&mut job, start(Some(1)), secs(0));
    when(&mut job, start(Some(2)), secs(10));
    when(&mut job, start(None), secs(20));
    when(&mut job, start(None), secs(30));
    // Run 1 ends: measured from its own start.
    when(&mut job, success(Some(1)), secs(40));
    assert_eq!(
        job.last_run.as_deref().and_then(LastRun::duration_ms),
        Some(40_000)
    );
    // Without an id: the newest run started without one.
    when(&mut job, success(None), secs(45));
    assert_eq!(
        job.last_run.as_deref().and_then(LastRun::duration_ms),
        Some(15_000)
    );
    let open: Vec<(Option<RunId>, Timestamp)> = job
        .runs
        .iter()
        .map(|run| (run.rid, run.started_at))
        .collect();
    assert_eq!(open, [(Some(rid(2)), secs(10)), (None, secs(20))]);
    // An id no open run has: an end without a start (no duration).
    let unknown = when(&mut job, success(Some(9)), secs(50));
    let Some(Event::RunEnded(end)) = unknown.get(1).map(|stamped| &stamped.event) else {
        panic!("{unknown:?}");
    };
    assert_eq!(end.run, None);
    assert_eq!(job.last_run.as_deref().and_then(LastRun::duration_ms), None);
}

#[test]
fn at_most_sixteen_runs_stay_open_and_the_forgotten_one_is_recorded() {
    let mut job = monitor(3600, |_| {});
    for n in 0..MAX_OPEN_RUNS {
        when(&mut job, start(Some(n as u8)), secs(n as i64));
    }
    let events = when(&mut job, start(Some(99)), secs(100));
    let Some(Event::RunStarted(RunStart { dropped, .. })) = events.first().map(|s| &s.event) else {
        panic!("{events:?}");
    };
    assert_eq!(
        *dropped,
        Some(RunRef {
            rid: Some(rid(0)),
            started_at: secs(0)
        })
    );
    assert_eq!(job.runs.len(), MAX_OPEN_RUNS);
    assert_eq!(job.runs[0].rid, Some(rid(1)));
}

#[test]
fn thresholds_count_failures_and_successes_in_a_row() {
    let mut job = monitor(3600, |config| {
        config.failure_threshold = 3;
        config.recovery_threshold = 2;
    });
    when(&mut job, up(), secs(0));
    // (command, events, failures, successes, status) after each step.
    let table: Vec<(Command, Vec<&str>, u32, u32, Status)> = vec![
        (
            down(),
            vec!["heartbeat:down", "failure_counted:manual:1"],
            1,
            0,
            Status::Up,
        ),
        (
            exit(2, None, ""),
            vec![
                "heartbeat:down",
                "run_ended:exit_status",
                "failure_counted:exit_status:2",
            ],
            2,
            0,
            Status::Up,
        ),
        // A success in between starts the count again.
        (up(), vec!["heartbeat:up"], 0, 0, Status::Up),
        (
            down(),
            vec!["heartbeat:down", "failure_counted:manual:1"],
            1,
            0,
            Status::Up,
        ),
        (
            down(),
            vec!["heartbeat:down", "failure_counted:manual:2"],
            2,
            0,
            Status::Up,
        ),
        (
            down(),
            vec!["heartbeat:down", "down:manual"],
            0,
            0,
            Status::Down,
        ),
        // Down: failures are recorded, not counted.
        (down(), vec!["heartbeat:down"], 0, 0, Status::Down),
        (
            up(),
            vec!["heartbeat:up", "success_counted:1"],
            0,
            1,
            Status::Down,
        ),
        // A failure in between starts the count again.
        (down(), vec!["heartbeat:down"], 0, 0, Status::Down),
        (
            up(),
            vec!["heartbeat:up", "success_counted:1"],
            0,
            1,
            Status::Down,
        ),
        (up(), vec!["heartbeat:up", "up"], 0, 0, Status::Up),
    ];
    for (step, (command, expected, failures, successes, status)) in table.into_iter().enumerate() {
        let events = when(&mut job, command, secs(10 + step as i64));
        assert_eq!(kinds(&events), expected, "step {step}");
        assert_eq!(
            (
                job.consecutive_failures,
                job.consecutive_successes,
                job.status
            ),
            (failures, successes, status),
            "step {step}"
        );
    }
}

#[test]
fn a_missed_deadline_below_the_threshold_is_counted_and_the_clock_goes_on_from_it() {
    let mut job = monitor(60, |config| config.failure_threshold = 2);
    when(&mut job, up(), secs(0));
    let first = when(&mut job, Command::CheckDeadline { hold: false }, secs(61));
    assert_eq!(kinds(&first), ["failure_counted:timeout:1"]);
    assert_eq!(first[0].at, secs(60));
    assert_eq!(job.status, Status::Up);
    assert_eq!(job.next_deadline(), Some(secs(120)));
    let second = when(&mut job, Command::CheckDeadline { hold: false }, secs(121));
    assert_eq!(kinds(&second), ["down:timeout"]);
    assert_eq!(second[0].at, secs(120));
    // Both at once, after a long stop: counted, then down, each at its deadline.
    let mut late = monitor(60, |config| config.failure_threshold = 2);
    when(&mut late, up(), secs(0));
    let both = when(&mut late, Command::CheckDeadline { hold: false }, secs(500));
    assert_eq!(kinds(&both), ["failure_counted:timeout:1", "down:timeout"]);
    assert_eq!((both[0].at, both[1].at), (secs(60), secs(120)));
}

#[test]
fn interval_seconds_is_when_the_job_is_due_and_timeout_seconds_when_it_is_late() {
    let mut job = monitor(90, |config| config.interval_seconds = 60);
    when(&mut job, up(), secs(10));
    assert_eq!(job.next_due_at(), Some(secs(70)));
    assert_eq!(job.next_deadline(), Some(secs(100)));
    assert!(
        when(&mut job, Command::CheckDeadline { hold: false }, secs(80)).is_empty(),
        "due, not late"
    );
}

fn cron(expression: &str, timezone: &str, grace: u32) -> impl FnOnce(&mut MonitorConfig) {
    let schedule = CronSchedule {
        expression: expression.to_owned(),
        timezone: timezone.to_owned(),
        grace_seconds: grace,
    };
    move |config| {
        config.schedule = Some(schedule);
        config.timeout_seconds = 0;
        config.interval_seconds = 0;
    }
}

#[test]
fn a_cron_monitor_is_due_at_each_slot_and_down_after_its_grace() {
    let created = utc("2026-05-01T00:10:00Z");
    let mut job = monitor_at(created, 0, cron("30 2 * * *", "UTC", 600));
    assert_eq!(job.next_due_at(), Some(utc("2026-05-01T02:30:00Z")));
    assert_eq!(job.next_deadline(), Some(utc("2026-05-01T02:40:00Z")));
    // Reported within the grace: next due the day after.
    when(&mut job, up(), utc("2026-05-01T02:35:00Z"));
    assert_eq!(job.next_due_at(), Some(utc("2026-05-02T02:30:00Z")));
    let missed = when(
        &mut job,
        Command::CheckDeadline { hold: false },
        utc("2026-05-02T02:41:00Z"),
    );
    assert_eq!(kinds(&missed), ["down:schedule"]);
    assert_eq!(missed[0].at, utc("2026-05-02T02:40:00Z"));
}

/// America/New_York skips 02:00–03:00 on 2026-03-08 and repeats 01:00–02:00 on
/// 2026-11-01: a 02:30 job is due at 03:00 EDT the day of the gap; a 01:30 job is
/// due once on the day of the repeat, and not again an hour later.
#[test]
fn cron_deadlines_are_right_across_daylight_saving_time() {
    let zone = "America/New_York";
    // The skipped hour.
    let mut skipped = monitor_at(
        utc("2026-03-08T05:00:00Z"),
        0,
        cron("30 2 * * *", zone, 300),
    );
    assert_eq!(skipped.next_due_at(), Some(utc("2026-03-08T07:00:00Z")));
    assert_eq!(skipped.next_deadline(), Some(utc("2026-03-08T07:05:00Z")));
    assert!(
        when(
            &mut skipped,
            Command::CheckDeadline { hold: false },
            utc("2026-03-08T07:04:59Z")
        )
        .is_empty()
    );
    when(&mut skipped, up(), utc("2026-03-08T07:01:00Z"));
    assert_eq!(skipped.next_due_at(), Some(utc("2026-03-09T06:30:00Z")));
    // The repeated hour.
    let mut repeated = monitor_at(
        utc("2026-11-01T04:00:00Z"),
        0,
        cron("30 1 * * *", zone, 300),
    );
    assert_eq!(repeated.next_due_at(), Some(utc("2026-11-01T05:30:00Z")));
    when(&mut repeated, up(), utc("2026-11-01T05:31:00Z"));
    assert_eq!(repeated.next_due_at(), Some(utc("2026-11-02T06:30:00Z")));
    // The second 01:30 (06:30 UTC) is no slot: nothing is due, nothing goes down.
    assert!(
        when(
            &mut repeated,
            Command::CheckDeadline { hold: false },
            utc("2026-11-01T06:40:00Z")
        )
        .is_empty()
    );
    assert_eq!(repeated.status, Status::Up);
}

/// Sundays 02:00–04:00 UTC: 2023-11-19 is a Sunday.
fn weekly_window(config: &mut MonitorConfig) {
    config.maintenance = vec![crate::domain::schedule::MaintenanceWindow::Recurring {
        cron: "0 2 * * 0".to_owned(),
        timezone: "UTC".to_owned(),
        duration_seconds: 7200,
    }];
}

#[test]
fn maintenance_records_everything_alerts_nothing_and_releases_what_it_held_at_its_end() {
    let sunday = |time: &str| utc(&format!("2023-11-19T{time}Z"));
    let mut job = monitor_at(sunday("01:00:00"), 7200, weekly_window);
    when(&mut job, up(), sunday("01:00:00"));
    // Down before the window: alerted.
    let (events, owed) = when_alerting(&mut job, down(), sunday("01:31:00"));
    assert_eq!(events, ["heartbeat:down", "down:manual"]);
    assert_eq!(
        owed,
        [(AlertKind::Down, AlertNotice::Change, "manual".to_owned())]
    );
    // It recovers during the window: recorded, held back.
    let (events, owed) = when_alerting(&mut job, up(), sunday("02:10:00"));
    assert_eq!(events, ["heartbeat:up", "alert_suppressed:up", "up"]);
    assert!(owed.is_empty());
    // And goes down again during the window: held back too.
    let (events, owed) = when_alerting(&mut job, down(), sunday("02:20:00"));
    assert_eq!(
        events,
        ["heartbeat:down", "alert_suppressed:down", "down:manual"]
    );
    assert!(owed.is_empty());
    assert_eq!(
        job.maintenance_until(sunday("02:20:00")),
        Some(sunday("04:00:00"))
    );
    // Down, as the channels were told: nothing to release, nothing at the window's end.
    assert_eq!(job.release_due(), None);
    assert!(
        when(
            &mut job,
            Command::CheckDeadline { hold: false },
            sunday("04:00:01")
        )
        .is_empty()
    );
    // Next Sunday: down before the window, recovered during it: the channels last
    // heard "down", so the recovery is released at its end, once.
    let next = |time: &str| utc(&format!("2023-11-26T{time}Z"));
    let (events, _) = when_alerting(&mut job, up(), next("02:30:00"));
    assert_eq!(events, ["heartbeat:up", "alert_suppressed:up", "up"]);
    assert_eq!(job.next_wakeup(next("02:30:00")), Some(next("04:00:00")));
    assert!(
        when(
            &mut job,
            Command::CheckDeadline { hold: false },
            next("03:00:00")
        )
        .is_empty()
    );
    let (events, owed) = when_alerting(
        &mut job,
        Command::CheckDeadline { hold: false },
        next("04:00:00"),
    );
    assert_eq!(events, ["alert_released:up"]);
    assert_eq!(
        owed,
        [(
            AlertKind::Up,
            AlertNotice::AfterMaintenance,
            "heartbeat".to_owned()
        )]
    );
    assert!(
        when(
            &mut job,
            Command::CheckDeadline { hold: false },
            next("04:00:01")
        )
        .is_empty()
    );
}

#[test]
fn a_down_held_back_is_released_before_a_change_that_follows_the_window() {
    let sunday = |time: &str| utc(&format!("2023-11-19T{time}Z"));
    let mut job = monitor_at(sunday("02:00:00"), 60, weekly_window);
    when(&mut job, up(), sunday("02:00:00"));
    let (events, owed) = when_alerting(
        &mut job,
        Command::CheckDeadline { hold: false },
        sunday("02:01:00"),
    );
    assert_eq!(events, ["alert_suppressed:down", "down:timeout"]);
    assert!(owed.is_empty());
    // The job comes back right after the window, before the timer released the down:
    // the down is told first, then the recovery.
    let (events, owed) = when_alerting(&mut job, up(), sunday("04:00:00.500"));
    assert_eq!(events, ["alert_released:down", "heartbeat:up", "up"]);
    assert_eq!(
        owed,
        [
            (
                AlertKind::Down,
                AlertNotice::AfterMaintenance,
                "timeout".to_owned()
            ),
            (AlertKind::Up, AlertNotice::Change, "heartbeat".to_owned()),
        ]
    );
}

#[test]
fn reminders_repeat_while_down_and_wait_out_maintenance() {
    let sunday = |time: &str| utc(&format!("2023-11-19T{time}Z"));
    let mut job = monitor_at(sunday("00:00:00"), 60, |config| {
        weekly_window(config);
        config.realert_every_seconds = Some(3600);
    });
    when(&mut job, down(), sunday("00:30:00"));
    assert_eq!(
        job.next_wakeup(sunday("00:30:00")),
        Some(sunday("01:30:00"))
    );
    let (events, owed) = when_alerting(
        &mut job,
        Command::CheckDeadline { hold: false },
        sunday("01:30:00"),
    );
    assert_eq!(events, ["reminder:manual"]);
    assert_eq!(
        owed,
        [(AlertKind::Down, AlertNotice::Reminder, "manual".to_owned())]
    );
    // Due at 02:30, inside the window: the timer waits for its end, and a look
    // inside it sends nothing.
    assert_eq!(
        job.next_wakeup(sunday("01:30:00")),
        Some(sunday("04:00:00"))
    );
    assert!(
        when(
            &mut job,
            Command::CheckDeadline { hold: false },
            sunday("02:30:00")
        )
        .is_empty()
    );
    let (events, _) = when_alerting(
        &mut job,
        Command::CheckDeadline { hold: false },
        sunday("04:00:00"),
    );
    assert_eq!(events, ["reminder:manual"]);
    // Off by default; none once up.
    when(&mut job, up(), sunday("04:10:00"));
    assert_eq!(job.reminder_due_at(), None);
    let mut quiet = monitor(60, |_| {});
    when(&mut quiet, down(), secs(1));
    assert_eq!(quiet.next_wakeup(secs(1)), None);
}

/// Every rule at once: a cron monitor with a threshold of two, a max runtime and a
/// maintenance window. A run overruns (counted), the slot is missed in the window
/// (down, held back), the window ends (released), a success recovers it.
#[test]
fn threshold_maintenance_schedule_and_runs_together() {
    let sunday = |time: &str| utc(&format!("2023-11-19T{time}Z"));
    let mut job = monitor_at(sunday("00:00:00"), 0, |config| {
        cron("0 2 * * *", "UTC", 900)(config);
        weekly_window(config);
        config.failure_threshold = 2;
        config.max_runtime_seconds = Some(1200);
    });
    when(&mut job, start(Some(1)), sunday("01:50:00"));
    // The run's limit, 02:10, comes before the slot's deadline, 02:15.
    assert_eq!(job.next_deadline(), Some(sunday("02:10:00")));
    let (events, owed) = when_alerting(
        &mut job,
        Command::CheckDeadline { hold: false },
        sunday("02:10:00"),
    );
    assert_eq!(events, ["run_overran", "failure_counted:max_runtime:1"]);
    assert!(owed.is_empty());
    let (events, owed) = when_alerting(
        &mut job,
        Command::CheckDeadline { hold: false },
        sunday("02:15:00"),
    );
    assert_eq!(events, ["alert_suppressed:down", "down:schedule"]);
    assert!(owed.is_empty(), "in the window");
    let (events, owed) = when_alerting(
        &mut job,
        Command::CheckDeadline { hold: false },
        sunday("04:00:00"),
    );
    assert_eq!(events, ["alert_released:down"]);
    assert_eq!(
        owed,
        [(
            AlertKind::Down,
            AlertNotice::AfterMaintenance,
            "schedule".to_owned()
        )]
    );
    // The hung run ends at last, in success: a recovery.
    let (events, owed) = when_alerting(&mut job, success(Some(1)), sunday("04:05:00"));
    assert_eq!(events, ["heartbeat:up", "run_ended:success", "up"]);
    assert_eq!(
        owed,
        [(AlertKind::Up, AlertNotice::Change, "heartbeat".to_owned())]
    );
    assert_eq!(job.next_due_at(), Some(utc("2023-11-20T02:00:00Z")));
}

#[test]
fn a_run_deadline_that_fell_while_stopped_gets_the_restart_grace() {
    let mut job = monitor(3600, |config| config.max_runtime_seconds = Some(60));
    when(&mut job, up(), secs(0));
    when(&mut job, start(None), secs(10));
    // Alive until 30 s; the run's limit fell at 70 s; ready at 200 s.
    let judge = Command::JudgeAfterRestart {
        last_alive: Some(secs(30)),
        restart_grace_seconds: 60,
    };
    assert_eq!(kinds(&when(&mut job, judge.clone(), secs(200))), ["grace"]);
    assert_eq!(job.next_deadline(), Some(secs(260)));
    // The run ends within the grace: nothing overran.
    let ended = when(&mut job, success(None), secs(230));
    assert_eq!(kinds(&ended), ["heartbeat:up", "run_ended:success"]);
    assert_eq!(job.status, Status::Up);
    // Another restart grants no second grace for the same deadline.
    let mut again = monitor(3600, |config| config.max_runtime_seconds = Some(60));
    when(&mut again, start(None), secs(10));
    when(&mut again, judge.clone(), secs(200));
    let twice = Command::JudgeAfterRestart {
        last_alive: Some(secs(210)),
        restart_grace_seconds: 60,
    };
    let down = when(&mut again, twice, secs(400));
    assert_eq!(kinds(&down), ["run_overran", "down:max_runtime"]);
    assert_eq!(down[0].at, secs(260));
}

#[test]
fn checks_refuse_timings_that_cannot_go_together() {
    let interval = monitor(60, |_| {});
    let cron_job = monitor(0, cron("0 * * * *", "UTC", 60));
    let patch = |adjust: fn(&mut ConfigPatch)| {
        let mut patch = ConfigPatch::default();
        adjust(&mut patch);
        Command::Update(patch)
    };
    let table: [(&Monitor, Command, Result<(), &str>); 7] = [
        (
            &cron_job,
            patch(|p| p.timeout_seconds = Some(60)),
            Err("timeout_seconds"),
        ),
        (
            &cron_job,
            patch(|p| p.interval_seconds = Some(60)),
            Err("interval_seconds"),
        ),
        (
            &cron_job,
            patch(|p| p.schedule = Some(None)),
            Err("timeout_seconds"),
        ),
        (
            &cron_job,
            patch(|p| {
                p.schedule = Some(None);
                p.timeout_seconds = Some(600);
            }),
            Ok(()),
        ),
        (
            &interval,
            patch(|p| p.timezone = Some("UTC".to_owned())),
            Err("timezone"),
        ),
        (
            &interval,
            patch(|p| {
                p.max_runtime_seconds = Some(Some(10));
                p.min_runtime_seconds = Some(Some(10));
            }),
            Err("min_runtime_seconds"),
        ),
        (
            &interval,
            patch(|p| p.schedule = Some(Some("@daily".to_owned()))),
            Ok(()),
        ),
    ];
    for (monitor, command, expected) in table {
        let outcome = check(monitor, &command).map_err(|rejection| rejection.field());
        assert_eq!(outcome, expected, "{command:?}");
    }
    // Switching to a schedule keeps the timeout for a switch back, with the defaults.
    let switched = ConfigPatch {
        schedule: Some(Some("@daily".to_owned())),
        ..ConfigPatch::default()
    }
    .applied_to(&interval.config);
    let schedule = switched.schedule.expect("a schedule");
    assert_eq!(
        (schedule.timezone.as_str(), schedule.grace_seconds),
        ("UTC", 3600)
    );
    assert_eq!(switched.timeout_seconds, 60);
}

/// A command at a random time, for the proptests: pushes, signals with a few run
/// ids, deadline checks, configuration changes that switch every rule on and off,
/// pause, resume, restarts.
fn arb_command() -> impl Strategy<Value = Command> {
    let run = prop::option::of(0u8..3);
    prop_oneof![
        4 => any::<bool>().prop_map(|ok| if ok { up() } else { down() }),
        3 => run.clone().prop_map(start),
        3 => (run.clone(), prop::option::of(0u8..3)).prop_map(|(run, status)| match status {
            Some(status) => exit(status, run, "out"),
            None => success(run),
        }),
        1 => run.prop_map(|run| signal(SignalKind::Log, run)),
        5 => Just(Command::CheckDeadline { hold: false }),
        2 => (
            1u32..120,
            prop::option::of(1u32..200),
            prop::option::of(1u32..50),
            1u32..4,
            1u32..4,
            prop::option::of(60u32..600),
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(|(timeout, max, min, failures, recoveries, realert, window, scheduled)| {
                let min = match (min, max) {
                    (Some(min), Some(max)) if min >= max => None,
                    (min, _) => min,
                };
                Command::Update(ConfigPatch {
                    timeout_seconds: (!scheduled).then_some(timeout),
                    interval_seconds: (!scheduled).then_some(timeout),
                    schedule: Some(scheduled.then(|| "*/5 * * * *".to_owned())),
                    max_runtime_seconds: Some(max),
                    min_runtime_seconds: Some(min),
                    failure_threshold: Some(failures),
                    recovery_threshold: Some(recoveries),
                    realert_every_seconds: Some(realert),
                    maintenance: Some(if window {
                        vec![crate::domain::schedule::MaintenanceWindow::Recurring {
                            cron: "*/10 * * * *".to_owned(),
                            timezone: "UTC".to_owned(),
                            duration_seconds: 120,
                        }]
                    } else {
                        Vec::new()
                    }),
                    ..ConfigPatch::default()
                })
            }),
        1 => Just(Command::Pause),
        1 => Just(Command::Resume),
        1 => (0i64..10_000, 0u32..120).prop_map(|(alive, grace)| Command::JudgeAfterRestart {
            last_alive: Some(Timestamp::from_millis(T0.as_millis() + alive * 100)),
            restart_grace_seconds: grace,
        }),
    ]
}

/// What the channels were last told, from the alerts owed so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Told {
    Nothing,
    Down,
    Up,
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Over any history: the channels are told alternately down and up (a reminder
    /// only while they were told down), nothing while paused or inside a maintenance
    /// window, every change of state is an event naming the new state, at most
    /// [`MAX_OPEN_RUNS`] runs are open, and the log replays to the live state.
    #[test]
    fn job_rules_keep_their_invariants_over_any_history(
        steps in prop::collection::vec((0i64..400, arb_command()), 1..80),
    ) {
        let mut live = monitor(60, |_| {});
        let created = Event::Created {
            config: Box::new((*live.config).clone()),
            token: live.token.clone(),
        };
        let mut log = vec![(1u64, T0, created)];
        live.last_seq = 1;
        let mut now = T0;
        let mut told = Told::Nothing;
        for (advance, command) in steps {
            now = Timestamp::from_millis(now.as_millis() + advance * 1000);
            if command == Command::Resume && live.status == Status::Paused {
                // A resume starts afresh: the next `down` alerts again.
                told = Told::Nothing;
            }
            if let Command::Update(patch) = &command
                && check(&live, &Command::Update(patch.clone())).is_err()
            {
                continue;
            }
            let before = live.clone();
            let events = decide(&live, command, now);
            for (index, delivery) in owed_deliveries(&before, &events, |_, _| true) {
                let alert = &delivery.alert;
                let at = events[index].at;
                prop_assert!(before.status != Status::Paused, "alerted while paused");
                prop_assert!(
                    before.maintenance_until(at).is_none(),
                    "alerted inside a window at {:?}", at
                );
                told = match (told, alert.kind, alert.notice) {
                    (Told::Down, AlertKind::Down, AlertNotice::Reminder) => Told::Down,
                    (Told::Down, AlertKind::Down, _) => {
                        return Err(TestCaseError::fail(format!("down after down: {events:?}")));
                    }
                    (Told::Up | Told::Nothing, AlertKind::Up, _) => {
                        return Err(TestCaseError::fail(format!("up after up: {events:?}")));
                    }
                    (_, AlertKind::Down, AlertNotice::Reminder) => {
                        return Err(TestCaseError::fail(format!("reminder while up: {events:?}")));
                    }
                    (_, AlertKind::Down, _) => Told::Down,
                    (_, AlertKind::Up, _) => Told::Up,
                };
            }
            for stamped in &events {
                prop_assert!(stamped.at >= live.last_event_at, "back in time");
                let status_before = live.status;
                let seq = log.len() as u64 + 1;
                apply(&mut live, seq, stamped.at, &stamped.event);
                log.push((seq, stamped.at, stamped.event.clone()));
                if live.status != status_before {
                    let named = events.iter().rev().find_map(|s| match s.event {
                        Event::WentUp | Event::Recovered => Some(Status::Up),
                        Event::WentDown { .. } => Some(Status::Down),
                        Event::Paused => Some(Status::Paused),
                        Event::Resumed => Some(Status::Pending),
                        _ => None,
                    });
                    prop_assert_eq!(named, Some(live.status));
                }
            }
            prop_assert!(live.runs.len() <= MAX_OPEN_RUNS);
            prop_assert!(!live.suppress_next_alert, "a suppression left over");
            // The channels were told what the state says, but for what a window holds.
            prop_assert_eq!(live.alerted_down, told == Told::Down, "told {:?}: {:?}", told, live);
            if let Some(wakeup) = live.next_wakeup(now) {
                prop_assert!(live.status != Status::Paused || wakeup >= now);
            }
        }
        let replayed = replay(live.id, log.iter().map(|(seq, at, event)| (*seq, *at, event)));
        prop_assert_eq!(replayed.as_ref(), Some(&live));
    }
}

#[test]
fn a_run_end_records_its_output_and_the_state_its_excerpt() {
    let mut job = monitor(60, |_| {});
    let long = "x".repeat(5000) + "the end";
    let events = when(&mut job, exit(1, None, &long), secs(1));
    let Some(Event::RunEnded(RunEnd { output, .. })) = events.get(1).map(|s| &s.event) else {
        panic!("{events:?}");
    };
    assert_eq!(
        output.as_ref().map(|output| output.as_str().len()),
        Some(5007)
    );
    let excerpt = job
        .last_run
        .as_deref()
        .and_then(|run| run.output_excerpt.clone())
        .expect("an excerpt");
    assert!(excerpt.ends_with("the end") && excerpt.len() <= 1024);
    assert_eq!(Arc::strong_count(&job.config), 1);
}
