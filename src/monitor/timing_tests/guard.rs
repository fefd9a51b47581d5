//! The guard against false alarm storms with paused time: the real registry, actors,
//! store and guard task (`monitor/guard.rs`), heartbeats pushed second by second.
//! Normal → collapse → held → arrivals back → released (those that report are up
//! without an alert) or confirmed (those still silent after the grace go down and
//! alert then); a small fleet never trips it; a job's own `down` is never held; a
//! restart releases what was held with the restart grace.

use super::*;
use crate::config::GuardConfig;
use crate::domain::alert::Delivery;
use crate::domain::guard::{GuardSettings, GuardState};
use crate::monitor::guard::{self, GUARD_MONITOR_NAME};

/// A 10 s window (a tick a second), tripping below 10% of the prediction when it is
/// at least 5 arrivals a window, 5 s of grace after a release, resolutions sent.
fn guard_config() -> GuardConfig {
    GuardConfig {
        enabled: true,
        settings: GuardSettings {
            window_millis: 10_000,
            min_ratio: 0.1,
            min_expected: 5.0,
        },
        release_grace_seconds: 5,
        channels: None,
        // Resolutions on, so the release shows in what is owed (off, the default, is
        // `tests/it/guard.rs`'s).
        send_resolved: true,
    }
}

/// A server whose monitors share a guard, and the guard's task.
async fn guarded(
    dir: &TempDir,
    config: GuardConfig,
) -> (Server, Arc<GuardShared>, tokio::task::JoinHandle<()>) {
    let clock = Clock::tokio_from(START);
    let shared = GuardShared::new(&config, clock.now());
    let server = Server::open_guarded(dir.path().to_owned(), clock, Arc::clone(&shared)).await;
    server.store.mark_alive(clock.now());
    let task = guard::run(
        server.registry.clone(),
        server.channels.clone(),
        Arc::clone(&shared),
        config,
        clock,
        None,
    );
    (server, shared, task)
}

impl Server {
    /// `count` monitors expected every second, down after `timeout_seconds`, alerting
    /// `channel`.
    async fn fleet(&self, count: usize, timeout_seconds: u32, channel: ChannelId) -> Vec<Monitor> {
        let mut monitors = Vec::new();
        for _ in 0..count {
            monitors.push(
                self.create_with(timeout_seconds, |config| {
                    config.interval_seconds = 1;
                    config.channels = vec![channel];
                })
                .await,
            );
        }
        monitors
    }

    /// For `seconds` seconds: each of `reporting` pushes `up`, then a second passes.
    async fn beat_for(&self, reporting: &[Monitor], seconds: u32) {
        for _ in 0..seconds {
            for monitor in reporting {
                self.push(monitor, PushStatus::Up, "ok").await;
            }
            self.advance(Duration::from_secs(1)).await;
            self.settle().await;
        }
    }

    /// Lets the guard's task and the actors finish what they are doing (writes wait
    /// for the store's thread, which paused time does not see).
    async fn settle(&self) {
        for _ in 0..20 {
            tokio::task::spawn_blocking(|| ())
                .await
                .expect("blocking task");
            for _ in 0..SETTLE_YIELDS {
                tokio::task::yield_now().await;
            }
        }
    }

    /// What the outbox owes, oldest first: (monitor name, kind, reason), once it
    /// holds at least `count` (or after 20 s of real time: a test then fails on what
    /// it sees). The guard's task writes its alert while paused time stands still.
    async fn owed_at_least(&self, count: usize) -> Vec<(String, AlertKind, String)> {
        let started = std::time::Instant::now();
        while started.elapsed() < Duration::from_secs(20) {
            let owed = self.owed_by_name().await;
            if owed.len() >= count {
                return owed;
            }
            self.settle().await;
        }
        self.owed_by_name().await
    }

    /// What the outbox owes, oldest first: (monitor name, kind, reason).
    async fn owed_by_name(&self) -> Vec<(String, AlertKind, String)> {
        let store = self.store.clone();
        let owed: Vec<Delivery> = tokio::task::spawn_blocking(move || store.load_outbox())
            .await
            .expect("outbox task")
            .expect("outbox reads");
        owed.into_iter()
            .map(|delivery| {
                (
                    delivery.alert.monitor_name,
                    delivery.alert.kind,
                    delivery.alert.reason,
                )
            })
            .collect()
    }

    async fn statuses(&self, monitors: &[Monitor]) -> Vec<Status> {
        let mut statuses = Vec::new();
        for monitor in monitors {
            statuses.push(self.state(monitor).await.status);
        }
        statuses
    }
}

fn guard_alert(kind: AlertKind) -> (String, AlertKind, String) {
    let reason = match kind {
        AlertKind::Down => "manual",
        AlertKind::Up => "heartbeat",
    };
    (GUARD_MONITOR_NAME.to_owned(), kind, reason.to_owned())
}

#[tokio::test(start_paused = true)]
async fn a_collapse_holds_missed_deadlines_and_the_release_clears_those_that_report() {
    let _still = NoAutoAdvance::hold();
    let dir = tempfile::tempdir().expect("temp dir");
    let (server, shared, task) = guarded(&dir, guard_config()).await;
    let channel = server.refusing_channel().await;
    let monitors = server.fleet(10, 20, channel).await;

    // Normal: ten monitors a second, as predicted.
    server.beat_for(&monitors, 15).await;
    let view = shared.view();
    assert_eq!(view.state, Some(GuardState::Normal));
    assert!(
        (view.rates.expected_per_second - 10.0).abs() < 1e-6,
        "{view:?}"
    );
    assert!(view.rates.observed_per_second > 9.0, "{view:?}");

    // Collapse: nothing arrives. The last full second leaves the window after ten.
    let cut = server.clock.now();
    server.beat_for(&[], 9).await;
    assert_eq!(shared.view().state, Some(GuardState::Normal));
    server.beat_for(&[], 1).await;
    assert_eq!(shared.view().state, Some(GuardState::Tripped));
    assert!(shared.holding());
    assert_eq!(
        server.owed_at_least(1).await,
        vec![guard_alert(AlertKind::Down)],
        "one alert, about pushmon itself"
    );

    // Held: every deadline (20 s after the last heartbeat) falls while tripped.
    server.advance_to(cut.plus_seconds(21)).await;
    server.settle().await;
    assert_eq!(server.statuses(&monitors).await, vec![Status::Unknown; 10]);
    let log = server.log(&monitors[0]).await;
    let held: Vec<_> = log
        .iter()
        .filter_map(|(at, event)| match event {
            Event::VerdictHeld { reason, deadline } => Some((*at, *reason, *deadline)),
            _ => None,
        })
        .collect();
    let deadline = server
        .log(&monitors[0])
        .await
        .iter()
        .rev()
        .find_map(|(at, event)| matches!(event, Event::HeartbeatReceived(_)).then_some(*at))
        .expect("a heartbeat")
        .plus_seconds(20);
    assert_eq!(
        held,
        vec![(deadline, DownReason::Timeout, deadline)],
        "stamped at the deadline"
    );
    assert_eq!(shared.view().held, 10);
    assert_eq!(shared.view().held_total, 10);
    assert_eq!(
        server.owed_by_name().await.len(),
        1,
        "nothing held is alerted"
    );

    // Arrivals back for half the fleet: up at once without an alert; the guard
    // releases once they make 20% of the prediction (4 s of 5 a second).
    let (reporting, silent) = monitors.split_at(5);
    server.beat_for(reporting, 1).await;
    assert_eq!(
        server.statuses(&monitors).await,
        [vec![Status::Up; 5], vec![Status::Unknown; 5]].concat()
    );
    server.beat_for(reporting, 3).await;
    assert_eq!(shared.view().state, Some(GuardState::Normal));
    let released = shared.view().since;
    assert_eq!(
        server.owed_at_least(2).await,
        vec![guard_alert(AlertKind::Down), guard_alert(AlertKind::Up)],
        "the release is told; no monitor alerted"
    );

    // Still silent a grace (5 s) after the release: down, alerted now, stamped then.
    server.beat_for(reporting, 4).await;
    assert_eq!(server.statuses(silent).await, vec![Status::Unknown; 5]);
    server.beat_for(reporting, 2).await;
    assert_eq!(server.statuses(silent).await, vec![Status::Down; 5]);
    assert_eq!(server.statuses(reporting).await, vec![Status::Up; 5]);
    for monitor in silent {
        assert_eq!(
            server.downs(monitor).await,
            vec![(released.plus_seconds(5), DownReason::Timeout)]
        );
        server.assert_state_matches_the_log(monitor).await;
    }
    for monitor in reporting {
        assert_eq!(
            kinds(&server.log(monitor).await)
                .into_iter()
                .filter(|kind| *kind != "heartbeat")
                .collect::<Vec<_>>(),
            vec!["created", "up", "unknown", "up"]
        );
        server.assert_state_matches_the_log(monitor).await;
    }
    let owed = server.owed_by_name().await;
    assert_eq!(owed.len(), 2 + 5, "{owed:?}");
    assert!(
        owed[2..].iter().all(|(name, kind, reason)| name == "job"
            && *kind == AlertKind::Down
            && reason == "timeout"),
        "{owed:?}"
    );
    task.abort();
    server.stop(Stop::Clean).await;
}

#[tokio::test(start_paused = true)]
async fn a_small_fleet_losing_one_monitor_never_trips_the_guard() {
    let _still = NoAutoAdvance::hold();
    let dir = tempfile::tempdir().expect("temp dir");
    let (server, shared, task) = guarded(&dir, guard_config()).await;
    let channel = server.refusing_channel().await;
    let monitors = server.fleet(3, 3, channel).await;
    server.beat_for(&monitors, 12).await;
    assert_eq!(shared.view().state, Some(GuardState::Normal));
    // One of three dies: two thirds of the prediction still arrive.
    server.beat_for(&monitors[1..], 20).await;
    assert_eq!(shared.view().state, Some(GuardState::Normal));
    assert_eq!(
        server.statuses(&monitors).await,
        vec![Status::Down, Status::Up, Status::Up]
    );
    assert_eq!(
        server.owed_by_name().await,
        vec![("job".to_owned(), AlertKind::Down, "timeout".to_owned())]
    );
    // All three die: 3 a second predict 30 a window, enough to judge; it trips.
    // With a prediction below `min_expected` it would not judge at all.
    task.abort();
    server.stop(Stop::Clean).await;

    let dir = tempfile::tempdir().expect("temp dir");
    let config = GuardConfig {
        settings: GuardSettings {
            min_expected: 31.0,
            ..guard_config().settings
        },
        ..guard_config()
    };
    let (server, shared, task) = guarded(&dir, config).await;
    let channel = server.refusing_channel().await;
    let monitors = server.fleet(3, 3, channel).await;
    server.beat_for(&monitors, 12).await;
    server.beat_for(&[], 20).await;
    assert_eq!(shared.view().state, Some(GuardState::Normal));
    assert_eq!(server.statuses(&monitors).await, vec![Status::Down; 3]);
    assert_eq!(server.owed_by_name().await.len(), 3);
    task.abort();
    server.stop(Stop::Clean).await;
}

#[tokio::test(start_paused = true)]
async fn a_jobs_own_down_paused_muted_and_maintained_monitors_behave_as_before() {
    let _still = NoAutoAdvance::hold();
    let dir = tempfile::tempdir().expect("temp dir");
    let (server, shared, task) = guarded(&dir, guard_config()).await;
    let channel = server.refusing_channel().await;
    let monitors = server.fleet(10, 20, channel).await;
    server.beat_for(&monitors, 12).await;
    let paused = server.execute(&monitors[8], Command::Pause).await;
    let muted = server
        .execute(
            &monitors[9],
            Command::Mute {
                until: None,
                until_recovery: false,
            },
        )
        .await;
    let window = crate::domain::schedule::MaintenanceWindow::Once {
        start: server.clock.now(),
        end: server.clock.now().plus_seconds(3600),
    };
    let maintained = server
        .execute(
            &monitors[7],
            Command::Update(crate::domain::machine::ConfigPatch {
                maintenance: Some(vec![window]),
                ..Default::default()
            }),
        )
        .await;
    server.beat_for(&monitors[..8], 3).await;
    server.beat_for(&[], 10).await;
    assert_eq!(shared.view().state, Some(GuardState::Tripped));
    assert_eq!(
        server.owed_at_least(1).await,
        vec![guard_alert(AlertKind::Down)]
    );
    // A job that says it failed is believed, tripped or not.
    server
        .push(&monitors[0], PushStatus::Down, "disk full")
        .await;
    assert_eq!(server.state(&monitors[0]).await.status, Status::Down);
    server.advance(Duration::from_secs(10)).await;
    server.settle().await;
    assert_eq!(server.state(&paused).await.status, Status::Paused);
    assert_eq!(server.state(&muted).await.status, Status::Unknown);
    assert_eq!(server.state(&maintained).await.status, Status::Unknown);
    assert_eq!(
        server.owed_at_least(2).await,
        vec![
            guard_alert(AlertKind::Down),
            ("job".to_owned(), AlertKind::Down, "manual".to_owned())
        ]
    );
    // Released with the muted and the maintained ones still silent: down, the mute
    // holds its alert for good and the window holds the other back.
    server.beat_for(&monitors[1..7], 5).await;
    assert_eq!(shared.view().state, Some(GuardState::Normal));
    server.beat_for(&monitors[1..7], 6).await;
    assert_eq!(server.state(&muted).await.status, Status::Down);
    assert_eq!(server.state(&maintained).await.status, Status::Down);
    assert_eq!(
        kinds(&server.log(&maintained).await)
            .into_iter()
            .filter(|kind| *kind != "heartbeat")
            .collect::<Vec<_>>(),
        vec![
            "created",
            "up",
            "updated",
            "unknown",
            "alert_suppressed",
            "down"
        ]
    );
    assert_eq!(server.state(&paused).await.status, Status::Paused);
    let owed = server.owed_at_least(3).await;
    assert_eq!(
        owed.len(),
        3,
        "the guard's down and up, the job's down: {owed:?}"
    );
    task.abort();
    server.stop(Stop::Clean).await;
}

#[tokio::test(start_paused = true)]
async fn held_monitors_replay_as_unknown_and_a_restart_releases_them_with_its_grace() {
    let _still = NoAutoAdvance::hold();
    let dir = tempfile::tempdir().expect("temp dir");
    let (server, shared, task) = guarded(&dir, guard_config()).await;
    let channel = server.refusing_channel().await;
    let monitors = server.fleet(10, 12, channel).await;
    server.beat_for(&monitors, 12).await;
    server.beat_for(&[], 13).await;
    assert_eq!(shared.view().state, Some(GuardState::Tripped));
    assert_eq!(server.statuses(&monitors).await, vec![Status::Unknown; 10]);
    task.abort();

    // The restart judges what was held as a deadline that fell while stopped: the
    // restart grace (here 10 s) from ready, once.
    let server = server
        .restart(Stop::Crash, Duration::from_secs(30), 10)
        .await;
    let ready = server.clock.now();
    assert_eq!(server.statuses(&monitors).await, vec![Status::Unknown; 10]);
    for monitor in &monitors {
        server.assert_state_matches_the_log(monitor).await;
    }
    server.advance(Duration::from_secs(5)).await;
    server.push(&monitors[0], PushStatus::Up, "back").await;
    server.advance_to(ready.plus_seconds(10)).await;
    server.settle().await;
    let statuses = server.statuses(&monitors).await;
    assert_eq!(statuses[0], Status::Up);
    assert_eq!(&statuses[1..], &[Status::Down; 9]);
    assert_eq!(
        server.downs(&monitors[1]).await,
        vec![(ready.plus_seconds(10), DownReason::Timeout)]
    );
    let owed = server.owed_by_name().await;
    assert_eq!(
        owed.iter().filter(|(name, ..)| name == "job").count(),
        9,
        "the silent ones alert, the one that reported does not: {owed:?}"
    );
    server.stop(Stop::Clean).await;
}
