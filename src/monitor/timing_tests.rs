//! The monitor actors against deadlines, with tokio time paused: timeouts and where a
//! `down` is stamped, heartbeats against the deadline, pause and resume, the restart
//! grace, and the alert a timeout owes. Each test runs the real registry, actors and
//! store (in a temp directory) on a [`Clock::Tokio`] that starts at a fixed date.
//!
//! Time moves only when a test says so. Tokio auto-advances paused time to the next
//! timer whenever the runtime has nothing to run, and an actor waiting for the
//! store's writer thread (a plain thread, whose fsync tokio cannot see) leaves it
//! nothing to run: time would jump to the next deadline in the middle of a
//! heartbeat's write, and what a test saw would depend on how fast the disk was. So
//! every test holds a [`NoAutoAdvance`], a blocking task, which is tokio's documented
//! way to keep paused time still while waiting for I/O; time then moves only by
//! `tokio::time::advance`.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use tempfile::TempDir;
use tokio::sync::oneshot;

use crate::alert::dispatcher::DeliveryReports;
use crate::alert::{
    AddressPolicy, Channels, DigestPolicy, Dispatcher, Notifier, NotifierSettings, RetryPolicy,
};
use crate::clock::Clock;
use crate::domain::alert::{AlertKind, AlertNotice};
use crate::domain::channel::ChannelKind;
use crate::domain::event::{
    DownReason, Event, Heartbeat, HeartbeatText, MonitorConfig, PushStatus,
};
use crate::domain::ids::{ChannelId, Timestamp};
use crate::domain::machine::{Command, Grace, Monitor, Status};
use crate::domain::signal::{Signal, SignalKind};
use crate::store::EventStore;

use super::Registry;
use super::guard_state::GuardShared;
use super::messages::{BulkChange, BulkDecision, MonitorMsg};

/// 2026-11-18T11:06:40Z: the tests' clock starts here, whatever the wall clock says.
const START: Timestamp = Timestamp::from_millis(1_795_000_000_000);

/// How often a test lets every runnable task run after moving time: a timer that fell
/// due wakes ractor's `send_after` task, which sends the actor its tick.
const SETTLE_YIELDS: usize = 16;

fn at(seconds: u32) -> Timestamp {
    START.plus_seconds(seconds)
}

fn at_millis(millis: i64) -> Timestamp {
    Timestamp::from_millis(START.as_millis() + millis)
}

/// Keeps tokio from auto-advancing paused time while it lives: a blocking task that
/// waits for this guard to drop.
struct NoAutoAdvance {
    _release: mpsc::Sender<()>,
}

impl NoAutoAdvance {
    fn hold() -> Self {
        let (release, released) = mpsc::channel::<()>();
        tokio::task::spawn_blocking(move || {
            let _ = released.recv();
        });
        Self { _release: release }
    }
}

/// One running "server": store, channels, dispatcher, registry and actors, without
/// HTTP. Delivery outcomes are not recorded, so what a timeout owes stays in the
/// outbox and its report waits in `reports`.
struct Server {
    dir: PathBuf,
    clock: Clock,
    store: EventStore,
    writer: std::thread::JoinHandle<()>,
    channels: Channels,
    dispatcher: Dispatcher,
    dispatcher_task: ractor::concurrency::JoinHandle<()>,
    reports: DeliveryReports,
    registry: Registry,
    registry_task: ractor::concurrency::JoinHandle<()>,
}

/// How a server stops before a restart.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// Records that it was alive until the end, as a clean shutdown does.
    Clean,
    /// Records nothing more: the store's last alive time is the one from start-up, as
    /// after a crash before the next alive tick.
    Crash,
}

impl Server {
    /// Opens the store in `dir` and starts everything on `clock`. Timers are armed at
    /// once for monitors created from here on; stored ones wait for [`Self::restart`]'s
    /// judgement.
    async fn open(dir: PathBuf, clock: Clock) -> Self {
        Self::open_guarded(dir, clock, GuardShared::off()).await
    }

    /// As [`Self::open`], the monitors sharing `guard` (whose task the test runs).
    pub(super) async fn open_guarded(dir: PathBuf, clock: Clock, guard: Arc<GuardShared>) -> Self {
        let opened = EventStore::open(&dir).expect("store opens");
        let store = opened.store.clone();
        let stored = store.load_channels().expect("channels load");
        let channels = Channels::new(
            store.clone(),
            stored,
            clock,
            crate::cluster::event_log::Log::new(store.clone(), false),
        );
        // Port 1 on loopback refuses at once: a delivery fails on its one attempt.
        let notifier = Notifier::new(NotifierSettings {
            public_url: "http://127.0.0.1:1".to_owned(),
            timeout: Duration::from_secs(1),
            installation: store.installation_id().expect("installation id"),
            addresses: AddressPolicy::AllowAll,
        })
        .expect("notifier");
        let one_attempt = RetryPolicy {
            initial: Duration::from_millis(10),
            max: Duration::from_millis(10),
            max_attempts: 1,
        };
        let (dispatcher, dispatcher_task, reports) = Dispatcher::start(
            notifier,
            channels.clone(),
            one_attempt,
            DigestPolicy::default(),
        )
        .await
        .expect("dispatcher starts");
        let (registry, registry_task) = Registry::start(
            store.clone(),
            crate::cluster::event_log::Log::new(store.clone(), false),
            channels.clone(),
            dispatcher.clone(),
            clock,
            guard,
        )
        .await
        .expect("registry starts");
        Self {
            dir,
            clock,
            store,
            writer: opened.writer_thread,
            channels,
            dispatcher,
            dispatcher_task,
            reports,
            registry,
            registry_task,
        }
    }

    /// A new store in `dir`, as a first start (alive from now).
    async fn start(dir: &TempDir, clock: Clock) -> Self {
        let server = Self::open(dir.path().to_owned(), clock).await;
        server.store.mark_alive(clock.now());
        server
    }

    /// Stops as `stop` says, stays stopped for `stopped_for` of tokio time, then starts
    /// again as `app` does: every stored monitor's actor, then the restart judgement
    /// with `restart_grace_seconds`, then alive from now.
    async fn restart(self, stop: Stop, stopped_for: Duration, restart_grace_seconds: u32) -> Self {
        let (dir, clock) = (self.dir.clone(), self.clock);
        self.stop(stop).await;
        tokio::time::advance(stopped_for).await;
        let server = Self::open(dir, clock).await;
        let monitors = server
            .store
            .load_monitors_to_rebuild()
            .expect("monitors load");
        let last_alive = server.store.last_alive().expect("last alive reads");
        let ids: Vec<_> = monitors.iter().map(|(monitor, _)| monitor.id).collect();
        server.registry.rebuild(monitors).await.expect("rebuilt");
        server
            .registry
            .judge_after_restart(last_alive, restart_grace_seconds);
        server.store.mark_alive(clock.now());
        // Judged before time moves on: each answers after its judgement.
        for id in ids {
            server
                .registry
                .current_state(id)
                .await
                .expect("current state");
        }
        server
    }

    async fn stop(self, stop: Stop) {
        self.dispatcher.stop().await;
        let _ = self.dispatcher_task.await;
        self.registry.stop().await;
        let _ = self.registry_task.await;
        if stop == Stop::Clean {
            self.store.mark_alive(self.clock.now());
        }
        self.store.close().await;
        let writer = self.writer;
        tokio::task::spawn_blocking(move || writer.join())
            .await
            .expect("join task")
            .expect("writer thread ends cleanly");
    }

    async fn create(&self, timeout_seconds: u32, channels: Vec<ChannelId>) -> Monitor {
        let config = MonitorConfig {
            channels,
            ..MonitorConfig::new("job", timeout_seconds)
        };
        self.registry.create(config).await.expect("created")
    }

    /// A monitor of `timeout_seconds`, its configuration changed by `adjust`.
    async fn create_with(
        &self,
        timeout_seconds: u32,
        adjust: impl FnOnce(&mut MonitorConfig),
    ) -> Monitor {
        let mut config = MonitorConfig::new("job", timeout_seconds);
        adjust(&mut config);
        self.registry.create(config).await.expect("created")
    }

    /// A job's signal, answered once durable.
    async fn signal(&self, monitor: &Monitor, signal: Signal) {
        let handle = self
            .registry
            .directory()
            .by_token(&monitor.token)
            .expect("registered");
        self.registry
            .signal(&handle, signal)
            .await
            .expect("durable");
    }

    /// A webhook channel that refuses (nothing listens on port 1).
    async fn refusing_channel(&self) -> ChannelId {
        self.channels
            .create(
                "hook".to_owned(),
                ChannelKind::Webhook {
                    url: "http://127.0.0.1:1/hook".to_owned(),
                    secret: None,
                },
                crate::domain::channel::SendOn::Both,
                None,
            )
            .await
            .expect("channel created")
            .id
    }

    /// The deliveries owed, oldest first: what each alert owes, as its kind and why.
    async fn owed(&self) -> Vec<(AlertKind, AlertNotice, String, Timestamp)> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.load_outbox())
            .await
            .expect("outbox task")
            .expect("outbox reads")
            .into_iter()
            .map(|delivery| {
                let alert = delivery.alert;
                (alert.kind, alert.notice, alert.reason, alert.at)
            })
            .collect()
    }

    /// Pushes, and waits until the monitor's actor has applied the heartbeat and
    /// recorded what it causes.
    async fn push(&self, monitor: &Monitor, status: PushStatus, msg: &str) {
        self.push_durable(monitor, status, msg).await;
        // Behind the heartbeat in the actor's mailbox.
        self.state(monitor).await;
    }

    /// Pushes, and waits only until the heartbeat is durable (as the ingress does):
    /// its actor applies it later.
    async fn push_durable(&self, monitor: &Monitor, status: PushStatus, msg: &str) {
        let handle = self
            .registry
            .directory()
            .by_token(&monitor.token)
            .expect("registered");
        self.registry
            .heartbeat(&handle, heartbeat(status, msg))
            .await
            .expect("durable");
    }

    async fn execute(&self, monitor: &Monitor, command: Command) -> Monitor {
        self.registry
            .execute(monitor.id, command)
            .await
            .expect("executed")
    }

    /// The actor's state. Its mailbox is first in, first out, so this answers after
    /// every message sent to the actor before it has been handled.
    async fn state(&self, monitor: &Monitor) -> Monitor {
        self.registry
            .current_state(monitor.id)
            .await
            .expect("current state")
    }

    /// Moves time forward by `by`, then lets the ticks of timers that fell due reach
    /// their actors.
    async fn advance(&self, by: Duration) {
        tokio::time::advance(by).await;
        for _ in 0..SETTLE_YIELDS {
            tokio::task::yield_now().await;
        }
    }

    /// Moves time forward to `to`.
    async fn advance_to(&self, to: Timestamp) {
        let now = self.clock.now();
        assert!(now <= to, "time does not go back: {now:?} > {to:?}");
        self.advance(Duration::from_millis(now.millis_until(to)))
            .await;
    }

    /// The monitor's log as the API shows it, oldest first, once its actor has handled
    /// every message sent to it so far.
    async fn log(&self, monitor: &Monitor) -> Vec<(Timestamp, Event)> {
        self.state(monitor).await;
        let mut events = self
            .store
            .history(monitor.id, 1000, None)
            .await
            .expect("history reads");
        events.reverse();
        events
            .into_iter()
            .map(|recorded| (recorded.at, recorded.event))
            .collect()
    }

    /// The `down` events in the log, with their times.
    async fn downs(&self, monitor: &Monitor) -> Vec<(Timestamp, DownReason)> {
        self.log(monitor)
            .await
            .into_iter()
            .filter_map(|(at, event)| match event {
                Event::WentDown { reason } => Some((at, reason)),
                _ => None,
            })
            .collect()
    }

    /// Asserts that the actor's state is what a full replay of the log gives.
    async fn assert_state_matches_the_log(&self, monitor: &Monitor) {
        let live = self.state(monitor).await;
        let store = self.store.clone();
        let replayed = tokio::task::spawn_blocking(move || store.replay_all())
            .await
            .expect("replay task")
            .expect("replays")
            .remove(&monitor.id)
            .expect("in the log");
        // To its last sequence number: the actor applied every event of the log, in
        // its order, heartbeats with their own numbers.
        assert_eq!(live, replayed, "the actor's state is the log's");
    }
}

fn heartbeat(status: PushStatus, msg: &str) -> Heartbeat {
    Heartbeat {
        status,
        msg: Some(HeartbeatText::truncated(msg.to_owned())),
        value: None,
        instance: None,
    }
}

fn kinds(log: &[(Timestamp, Event)]) -> Vec<&'static str> {
    log.iter()
        .filter_map(|(_, event)| event.kind())
        .collect::<Vec<_>>()
}

#[tokio::test(start_paused = true)]
async fn a_monitor_goes_down_at_its_deadline_and_the_down_is_stamped_there() {
    let _still = NoAutoAdvance::hold();
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(&dir, Clock::tokio_from(START)).await;
    let monitor = server.create(60, vec![]).await;
    assert_eq!(monitor.created_at, START);

    server.advance_to(at_millis(59_999)).await;
    assert_eq!(server.state(&monitor).await.status, Status::Pending);

    // The actor is told late (time jumps 30 s past the deadline in one step): the
    // `down` is still stamped at the deadline, not when it was noticed.
    server.advance_to(at(90)).await;
    let down = server.state(&monitor).await;
    assert_eq!(down.status, Status::Down);
    assert_eq!(down.last_status_change_at, Some(at(60)));
    assert_eq!(
        server.downs(&monitor).await,
        vec![(at(60), DownReason::Timeout)]
    );
    assert_eq!(kinds(&server.log(&monitor).await), vec!["created", "down"]);
    server.assert_state_matches_the_log(&monitor).await;
    server.stop(Stop::Clean).await;
}

#[tokio::test(start_paused = true)]
async fn the_timer_fires_exactly_at_the_deadline() {
    let _still = NoAutoAdvance::hold();
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(&dir, Clock::tokio_from(START)).await;
    let monitor = server.create(60, vec![]).await;
    server.push(&monitor, PushStatus::Up, "first").await;

    server.advance_to(at_millis(59_999)).await;
    assert_eq!(server.state(&monitor).await.status, Status::Up);
    server.advance_to(at(60)).await;
    assert_eq!(server.state(&monitor).await.status, Status::Down);
    assert_eq!(
        server.downs(&monitor).await,
        vec![(at(60), DownReason::Timeout)]
    );
    server.stop(Stop::Clean).await;
}

#[tokio::test(start_paused = true)]
async fn a_heartbeat_just_before_the_deadline_pushes_it_back() {
    let _still = NoAutoAdvance::hold();
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(&dir, Clock::tokio_from(START)).await;
    let monitor = server.create(60, vec![]).await;
    server.push(&monitor, PushStatus::Up, "first").await;

    server.advance_to(at_millis(59_999)).await;
    server.push(&monitor, PushStatus::Up, "just in time").await;
    // The timer armed for the old deadline fires, finds it moved, and re-arms.
    server.advance_to(at(60)).await;
    assert_eq!(server.state(&monitor).await.status, Status::Up);
    server.advance_to(at_millis(119_998)).await;
    let still_up = server.state(&monitor).await;
    assert_eq!(still_up.status, Status::Up);
    assert_eq!(
        still_up.last_msg.as_ref().map(HeartbeatText::as_str),
        Some("just in time")
    );

    server.advance_to(at_millis(119_999)).await;
    assert_eq!(server.state(&monitor).await.status, Status::Down);
    assert_eq!(
        server.downs(&monitor).await,
        vec![(at_millis(119_999), DownReason::Timeout)],
        "one down, at the deadline the last heartbeat set"
    );
    server.assert_state_matches_the_log(&monitor).await;
    server.stop(Stop::Clean).await;
}

#[tokio::test(start_paused = true)]
async fn a_monitor_down_by_a_heartbeat_gets_no_timeout_down() {
    let _still = NoAutoAdvance::hold();
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(&dir, Clock::tokio_from(START)).await;
    let monitor = server.create(60, vec![]).await;
    server.push(&monitor, PushStatus::Up, "first").await;
    server.advance_to(at(10)).await;
    server.push(&monitor, PushStatus::Down, "broke").await;

    // Far past the deadline the `up` heartbeat set: already down, so no second down.
    server.advance_to(at(600)).await;
    assert_eq!(server.state(&monitor).await.status, Status::Down);
    assert_eq!(
        server.downs(&monitor).await,
        vec![(at(10), DownReason::Manual)]
    );
    server.stop(Stop::Clean).await;
}

#[tokio::test(start_paused = true)]
async fn a_paused_monitor_never_times_out_and_resume_restarts_the_clock() {
    let _still = NoAutoAdvance::hold();
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(&dir, Clock::tokio_from(START)).await;
    let monitor = server.create(60, vec![]).await;
    server.push(&monitor, PushStatus::Up, "first").await;

    server.advance_to(at(10)).await;
    let paused = server.execute(&monitor, Command::Pause).await;
    assert_eq!(paused.status, Status::Paused);
    // The timer armed for the deadline at 60 s fires while paused, and finds none.
    server.advance_to(at(600)).await;
    server.push(&monitor, PushStatus::Up, "while paused").await;
    server.advance_to(at(1200)).await;
    assert_eq!(server.state(&monitor).await.status, Status::Paused);
    assert!(server.downs(&monitor).await.is_empty());

    let resumed = server.execute(&monitor, Command::Resume).await;
    assert_eq!(resumed.status, Status::Pending);
    assert_eq!(
        resumed.clock_started_at,
        at(1200),
        "resume restarts the clock"
    );
    server.advance_to(at_millis(1_259_999)).await;
    assert_eq!(server.state(&monitor).await.status, Status::Pending);
    server.advance_to(at(1260)).await;
    assert_eq!(server.state(&monitor).await.status, Status::Down);
    assert_eq!(
        server.downs(&monitor).await,
        vec![(at(1260), DownReason::Timeout)]
    );
    assert_eq!(
        kinds(&server.log(&monitor).await),
        vec![
            "created",
            "heartbeat",
            "up",
            "paused",
            "heartbeat",
            "resumed",
            "down"
        ]
    );
    server.assert_state_matches_the_log(&monitor).await;
    server.stop(Stop::Clean).await;
}

/// What a heartbeat and the deadline's tick in the same instant may leave behind. The
/// actor takes its messages one at a time, so a race between the two is one of two
/// orders, and a test below forces each: heartbeat first (no down) or tick first (one
/// down, then one recovery by that heartbeat). Either way the state is the log's and
/// the outbox owes exactly the alerts the log holds. Returns whether it timed out.
async fn assert_one_outcome(server: &Server, monitor: &Monitor, channel: ChannelId) -> bool {
    let log = server.log(monitor).await;
    let downs = server.downs(monitor).await;
    let recoveries = log
        .iter()
        .filter(|(_, event)| matches!(event, Event::Recovered))
        .count();
    let state = server.state(monitor).await;
    assert_eq!(state.status, Status::Up, "{log:#?}");
    let timed_out = match downs.as_slice() {
        [] => {
            assert_eq!(recoveries, 0, "{log:#?}");
            false
        }
        [(down_at, DownReason::Timeout)] => {
            assert_eq!(*down_at, at(60), "{log:#?}");
            assert_eq!(recoveries, 1, "{log:#?}");
            true
        }
        other => panic!("more than one outcome: {other:?}\n{log:#?}"),
    };
    let store = server.store.clone();
    let owed = tokio::task::spawn_blocking(move || store.load_outbox())
        .await
        .expect("outbox task")
        .expect("outbox reads");
    assert!(owed.iter().all(|delivery| delivery.channel == channel));
    assert_eq!(
        owed.len(),
        downs.len() + recoveries,
        "one delivery per alert: {owed:#?}"
    );
    server.assert_state_matches_the_log(monitor).await;
    timed_out
}

async fn server_with_a_monitor_due_at_60_s(dir: &TempDir) -> (Server, Monitor, ChannelId) {
    let server = Server::start(dir, Clock::tokio_from(START)).await;
    let channel = server
        .channels
        .create(
            "hook".to_owned(),
            ChannelKind::Webhook {
                url: "http://127.0.0.1:1/hook".to_owned(),
                secret: None,
            },
            crate::domain::channel::SendOn::Both,
            None,
        )
        .await
        .expect("channel created");
    let monitor = server.create(60, vec![channel.id]).await;
    server.push(&monitor, PushStatus::Up, "first").await;
    server.advance_to(at_millis(59_999)).await;
    (server, monitor, channel.id)
}

/// A heartbeat sink that holds the writer, once, after a batch of heartbeats is
/// durable and before its heartbeats reach their inboxes: a test decides what
/// happens meanwhile, then lets it go on.
struct HeldSink {
    inner: Arc<dyn crate::store::HeartbeatSink>,
    hold: std::sync::Mutex<Option<(mpsc::Sender<()>, mpsc::Receiver<()>)>>,
}

impl crate::store::HeartbeatSink for HeldSink {
    fn recorded(&self, heartbeats: Vec<crate::store::RecordedHeartbeat>) {
        let hold = self
            .hold
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some((durable, go_on)) = hold {
            let _ = durable.send(());
            let _ = go_on.recv();
        }
        self.inner.recorded(heartbeats);
    }
}

#[tokio::test(start_paused = true)]
async fn a_heartbeat_written_while_the_timeout_verdict_is_in_flight_voids_it() {
    let _still = NoAutoAdvance::hold();
    let dir = tempfile::tempdir().expect("temp dir");
    let (server, monitor, channel) = server_with_a_monitor_due_at_60_s(&dir).await;
    // The writer is held once a heartbeat is durable, before it reaches the inbox:
    // the actor cannot apply it before the deadline falls and it judges.
    let (durable, heard) = mpsc::channel();
    let (go_on, held) = mpsc::channel();
    let sink = server.store.heartbeat_sink().expect("a sink is set");
    server.store.set_heartbeat_sink(Arc::new(HeldSink {
        inner: sink,
        hold: std::sync::Mutex::new(Some((durable, held))),
    }));
    let handle = server
        .registry
        .directory()
        .by_token(&monitor.token)
        .expect("registered");
    let registry = server.registry.clone();
    let push = tokio::spawn(async move {
        registry
            .heartbeat(
                &handle,
                heartbeat(PushStatus::Up, "just before the deadline"),
            )
            .await
    });
    tokio::task::spawn_blocking(move || heard.recv())
        .await
        .expect("waits")
        .expect("the heartbeat is durable");
    // The tick's verdict is decided on a state without the heartbeat, and waits
    // behind the held writer.
    server.advance_to(at(60)).await;
    assert_eq!(server.store.decisions_voided(), 0);
    go_on.send(()).expect("the writer waits");
    push.await.expect("push task").expect("durable");
    // Voided, and the heartbeat applied instead. No down, no alert owed.
    let last = server.state(&monitor).await;
    assert_eq!(server.store.decisions_voided(), 1);
    assert_eq!(last.status, Status::Up);
    assert_eq!(last.last_heartbeat_at, Some(at_millis(59_999)));
    assert_eq!(
        kinds(&server.log(&monitor).await),
        vec!["created", "heartbeat", "up", "heartbeat"]
    );
    assert!(!assert_one_outcome(&server, &monitor, channel).await);
    // The next deadline is judged from that heartbeat.
    server.advance_to(at_millis(119_998)).await;
    assert_eq!(server.state(&monitor).await.status, Status::Up);
    server.advance_to(at(120)).await;
    assert_eq!(server.state(&monitor).await.status, Status::Down);
    assert_eq!(
        server.downs(&monitor).await,
        vec![(at_millis(119_999), DownReason::Timeout)]
    );
    server.assert_state_matches_the_log(&monitor).await;
    server.stop(Stop::Clean).await;
}

#[tokio::test(start_paused = true)]
async fn a_heartbeat_waiting_in_the_inbox_when_the_deadline_falls_is_applied_before_it_is_judged() {
    let _still = NoAutoAdvance::hold();
    let dir = tempfile::tempdir().expect("temp dir");
    let (server, monitor, channel) = server_with_a_monitor_due_at_60_s(&dir).await;
    // The actor is held (a bulk change waiting for its outcome) while the deadline
    // falls, so the tick waits in its mailbox, and while a heartbeat is written: the
    // ingress needs no actor, and the heartbeat waits in the inbox.
    let handle = server
        .registry
        .directory()
        .by_token(&monitor.token)
        .expect("registered");
    let (reply, prepared) = oneshot::channel();
    handle
        .actor
        .cast(MonitorMsg::Bulk(
            Box::new(BulkChange::Command(Box::new(Command::Pause))),
            reply,
        ))
        .expect("actor runs");
    let prepared = prepared.await.expect("answered").expect("prepared");
    server.advance_to(at(60)).await;
    server
        .push_durable(&monitor, PushStatus::Up, "at the deadline")
        .await;
    let _ = prepared
        .decision
        .expect("a decision awaited")
        .send(BulkDecision::Abandoned);
    // The heartbeat is applied before the tick is judged: no verdict at all.
    let last = server.state(&monitor).await;
    assert_eq!(server.store.decisions_voided(), 0);
    assert_eq!(last.status, Status::Up);
    assert_eq!(last.last_heartbeat_at, Some(at(60)));
    assert_eq!(
        kinds(&server.log(&monitor).await),
        vec!["created", "heartbeat", "up", "heartbeat"]
    );
    assert!(!assert_one_outcome(&server, &monitor, channel).await);
    server.advance_to(at(120)).await;
    assert_eq!(
        server.downs(&monitor).await,
        vec![(at(120), DownReason::Timeout)]
    );
    server.assert_state_matches_the_log(&monitor).await;
    server.stop(Stop::Clean).await;
}

#[tokio::test(start_paused = true)]
async fn up_pushes_to_a_quiet_monitor_wait_in_its_inbox_until_its_actor_next_runs_and_move_its_deadline()
 {
    let _still = NoAutoAdvance::hold();
    let dir = tempfile::tempdir().expect("temp dir");
    let (server, monitor, _channel) = server_with_a_monitor_due_at_60_s(&dir).await;
    let inbox = server.registry.directory().inbox(monitor.id);
    // Up, owing nothing: its actor is not woken for them.
    for _ in 1..super::directory::QUIET_BACKLOG {
        server
            .push_durable(&monitor, PushStatus::Up, "still fine")
            .await;
    }
    server.advance(Duration::ZERO).await;
    assert!(!inbox.is_empty(), "the actor was woken for a quiet push");
    assert_eq!(inbox.len(), 1, "quiet pushes wait merged into one");
    // The old deadline falls: the tick applies them first, and judges nothing late.
    server.advance_to(at(60)).await;
    assert!(inbox.is_empty());
    let state = server.state(&monitor).await;
    assert_eq!(state.status, Status::Up);
    assert_eq!(state.last_heartbeat_at, Some(at_millis(59_999)));
    assert_eq!(server.store.decisions_voided(), 0);
    // One more than the backlog wakes the actor.
    for _ in 0..super::directory::QUIET_BACKLOG {
        server
            .push_durable(&monitor, PushStatus::Up, "still fine")
            .await;
    }
    server.advance(Duration::ZERO).await;
    assert!(inbox.is_empty(), "a full backlog wakes the actor");
    // A down push wakes it at once, and is decided on.
    server
        .push_durable(&monitor, PushStatus::Down, "broken")
        .await;
    server.advance(Duration::ZERO).await;
    assert!(inbox.is_empty());
    assert_eq!(
        server.downs(&monitor).await,
        vec![(at(60), DownReason::Manual)]
    );
    server.advance_to(at(90)).await;
    server.assert_state_matches_the_log(&monitor).await;
    server.stop(Stop::Clean).await;
}

#[tokio::test(start_paused = true)]
async fn a_down_push_its_actor_never_decided_on_is_decided_after_a_restart() {
    let _still = NoAutoAdvance::hold();
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(&dir, Clock::tokio_from(START)).await;
    let monitor = server.create(60, vec![]).await;
    server.push(&monitor, PushStatus::Up, "first").await;
    // Durable and acknowledged, but its actor is gone before it decided anything (as
    // after a SIGKILL right after the 200).
    server.registry.stop().await;
    let now = server.clock.now();
    server
        .store
        .append_heartbeat(monitor.id, now, heartbeat(PushStatus::Down, "broken"))
        .await
        .expect("durable");
    let server = server
        .restart(Stop::Crash, Duration::from_secs(5), 60)
        .await;
    let state = server.state(&monitor).await;
    assert_eq!(state.status, Status::Down);
    assert_eq!(
        server.downs(&monitor).await,
        vec![(now, DownReason::Manual)]
    );
    server.assert_state_matches_the_log(&monitor).await;
    // Decided once: another restart finds nothing left to decide.
    let server = server
        .restart(Stop::Clean, Duration::from_secs(1), 60)
        .await;
    assert_eq!(
        server.downs(&monitor).await,
        vec![(now, DownReason::Manual)]
    );
    server.assert_state_matches_the_log(&monitor).await;
    server.stop(Stop::Clean).await;
}

#[tokio::test(start_paused = true)]
async fn a_heartbeat_behind_the_tick_at_the_deadline_recovers_the_monitor_once() {
    let _still = NoAutoAdvance::hold();
    let dir = tempfile::tempdir().expect("temp dir");
    let (server, monitor, channel) = server_with_a_monitor_due_at_60_s(&dir).await;
    server.advance_to(at(60)).await;
    assert_eq!(server.state(&monitor).await.status, Status::Down);
    // The same instant: the clock has not moved.
    server
        .push(&monitor, PushStatus::Up, "at the deadline")
        .await;
    assert!(assert_one_outcome(&server, &monitor, channel).await);
    server.stop(Stop::Clean).await;
}

#[tokio::test(start_paused = true)]
async fn a_timeout_owes_its_alert_in_the_outbox_and_hands_it_to_the_dispatcher() {
    let _still = NoAutoAdvance::hold();
    let dir = tempfile::tempdir().expect("temp dir");
    let (mut server, monitor, channel) = server_with_a_monitor_due_at_60_s(&dir).await;
    server.advance_to(at(60)).await;
    assert_eq!(server.state(&monitor).await.status, Status::Down);

    let log = server
        .store
        .history(monitor.id, 10, None)
        .await
        .expect("history reads");
    let down = log
        .iter()
        .find(|recorded| matches!(recorded.event, Event::WentDown { .. }))
        .expect("a down");
    let store = server.store.clone();
    let owed = tokio::task::spawn_blocking(move || store.load_outbox())
        .await
        .expect("outbox task")
        .expect("outbox reads");
    assert_eq!(owed.len(), 1, "{owed:#?}");
    let delivery = &owed[0];
    assert_eq!(delivery.channel, channel);
    assert_eq!(
        delivery.alert.alert_seq, down.seq,
        "keyed by the down's seq"
    );
    assert_eq!(delivery.alert.kind, crate::domain::alert::AlertKind::Down);
    assert_eq!(delivery.alert.reason, "timeout");
    assert_eq!(delivery.alert.at, at(60));
    assert_eq!(delivery.alert.monitor_id, monitor.id);

    // The dispatcher was handed the same delivery (its one attempt fails: nothing
    // listens on port 1), and the entry stays owed until the outcome is recorded.
    let report = server.reports.recv().await.expect("a report");
    assert_eq!(&report.delivery, delivery);
    assert!(report.outcome.error.is_some());
    server
        .registry
        .record_delivery(monitor.id, report.outcome.clone())
        .await
        .expect("recorded");
    let store = server.store.clone();
    let owed = tokio::task::spawn_blocking(move || store.load_outbox())
        .await
        .expect("outbox task")
        .expect("outbox reads");
    assert!(
        owed.is_empty(),
        "settled with the recorded outcome: {owed:#?}"
    );
    assert_eq!(
        kinds(&server.log(&monitor).await),
        vec!["created", "heartbeat", "up", "down", "delivery"]
    );
    server.stop(Stop::Clean).await;
}

#[tokio::test(start_paused = true)]
async fn a_deadline_that_fell_while_stopped_gets_the_grace_once_and_no_more() {
    let _still = NoAutoAdvance::hold();
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(&dir, Clock::tokio_from(START)).await;
    let monitor = server.create(60, vec![]).await;
    server.push(&monitor, PushStatus::Up, "first").await;

    // Stopped from 0 s to 90 s: the deadline at 60 s fell while stopped, and gets
    // min(timeout 60 s, grace 30 s) from the restart.
    let server = server
        .restart(Stop::Clean, Duration::from_secs(90), 30)
        .await;
    let restarted = server.state(&monitor).await;
    assert_eq!(restarted.status, Status::Up);
    assert_eq!(
        restarted.grace,
        Some(Grace {
            deadline: at(60),
            until: at(120)
        })
    );

    // Stopped again inside the grace, from 100 s to 110 s: no second grace, so the
    // grace still ends at 120 s.
    server.advance_to(at(100)).await;
    let server = server
        .restart(Stop::Crash, Duration::from_secs(10), 30)
        .await;
    assert_eq!(
        server.state(&monitor).await.grace.map(|g| g.until),
        Some(at(120))
    );
    server.advance_to(at_millis(119_999)).await;
    assert_eq!(server.state(&monitor).await.status, Status::Up);
    server.advance_to(at(120)).await;
    assert_eq!(server.state(&monitor).await.status, Status::Down);
    assert_eq!(
        server.downs(&monitor).await,
        vec![(at(120), DownReason::Timeout)]
    );
    server.assert_state_matches_the_log(&monitor).await;
    server.stop(Stop::Clean).await;
}

#[tokio::test(start_paused = true)]
async fn a_restart_after_the_grace_ran_out_judges_the_deadline_at_once() {
    let _still = NoAutoAdvance::hold();
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(&dir, Clock::tokio_from(START)).await;
    let monitor = server.create(60, vec![]).await;
    server.push(&monitor, PushStatus::Up, "first").await;
    let server = server
        .restart(Stop::Clean, Duration::from_secs(90), 30)
        .await;
    // Stopped from 100 s to 200 s, past the grace's end at 120 s: down at once,
    // stamped when the grace ran out.
    server.advance_to(at(100)).await;
    let server = server
        .restart(Stop::Clean, Duration::from_secs(100), 30)
        .await;
    assert_eq!(server.state(&monitor).await.status, Status::Down);
    assert_eq!(
        server.downs(&monitor).await,
        vec![(at(120), DownReason::Timeout)]
    );
    server.stop(Stop::Clean).await;
}

#[tokio::test(start_paused = true)]
async fn a_heartbeat_in_the_restart_grace_keeps_a_monitor_up() {
    let _still = NoAutoAdvance::hold();
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(&dir, Clock::tokio_from(START)).await;
    let rescued = server.create(60, vec![]).await;
    let abandoned = server.create(60, vec![]).await;
    server.push(&rescued, PushStatus::Up, "first").await;
    server.push(&abandoned, PushStatus::Up, "first").await;
    let server = server
        .restart(Stop::Clean, Duration::from_secs(90), 10)
        .await;
    server.advance_to(at(95)).await;
    server.push(&rescued, PushStatus::Up, "made it").await;

    server.advance_to(at(100)).await;
    assert_eq!(server.state(&abandoned).await.status, Status::Down);
    assert_eq!(
        server.downs(&abandoned).await,
        vec![(at(100), DownReason::Timeout)]
    );
    let rescued_state = server.state(&rescued).await;
    assert_eq!(rescued_state.status, Status::Up);
    assert_eq!(rescued_state.grace, None, "an up heartbeat ends the grace");
    // Its next deadline is the heartbeat's: 95 s + 60 s.
    server.advance_to(at_millis(154_999)).await;
    assert_eq!(server.state(&rescued).await.status, Status::Up);
    server.advance_to(at(155)).await;
    assert_eq!(
        server.downs(&rescued).await,
        vec![(at(155), DownReason::Timeout)]
    );
    server.stop(Stop::Clean).await;
}

#[tokio::test(start_paused = true)]
async fn restart_grace_zero_judges_a_missed_deadline_at_once() {
    let _still = NoAutoAdvance::hold();
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(&dir, Clock::tokio_from(START)).await;
    let monitor = server.create(60, vec![]).await;
    server.push(&monitor, PushStatus::Up, "first").await;
    let server = server
        .restart(Stop::Clean, Duration::from_secs(90), 0)
        .await;
    assert_eq!(server.state(&monitor).await.status, Status::Down);
    assert_eq!(
        server.downs(&monitor).await,
        vec![(at(60), DownReason::Timeout)],
        "stamped at the deadline that fell while stopped"
    );
    server.stop(Stop::Clean).await;
}

#[tokio::test(start_paused = true)]
async fn every_rebuilt_monitor_gets_the_grace() {
    // Regression: a rebuilt actor armed its timer for the missed deadline before the
    // restart judgement reached it, so the timer could fire first and deny the grace.
    const MONITORS: usize = 40;
    let _still = NoAutoAdvance::hold();
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(&dir, Clock::tokio_from(START)).await;
    let mut monitors = Vec::new();
    for _ in 0..MONITORS {
        let monitor = server.create(60, vec![]).await;
        server.push(&monitor, PushStatus::Up, "first").await;
        monitors.push(monitor);
    }
    let server = server
        .restart(Stop::Clean, Duration::from_secs(90), 30)
        .await;
    server.advance(Duration::ZERO).await;
    for monitor in &monitors {
        let state = server.state(monitor).await;
        assert_eq!(state.status, Status::Up, "{} went down at once", monitor.id);
        assert!(server.downs(monitor).await.is_empty());
    }
    server.advance_to(at(120)).await;
    for monitor in &monitors {
        assert_eq!(
            server.downs(monitor).await,
            vec![(at(120), DownReason::Timeout)]
        );
    }
    server.stop(Stop::Clean).await;
}

#[tokio::test(start_paused = true)]
async fn a_down_monitor_stays_down_with_one_down_across_restarts() {
    let _still = NoAutoAdvance::hold();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut server = Server::start(&dir, Clock::tokio_from(START)).await;
    let timed_out = server.create(60, vec![]).await;
    let manual = server.create(60, vec![]).await;
    server.push(&manual, PushStatus::Down, "broke").await;
    server.advance_to(at(60)).await;
    assert_eq!(server.state(&timed_out).await.status, Status::Down);

    for restart in 1..=2u32 {
        server = server
            .restart(Stop::Clean, Duration::from_secs(100), 30)
            .await;
        // Past any grace and timeout: room for a wrong second down.
        server.advance(Duration::from_secs(600)).await;
        for (monitor, reason, down_at) in [
            (&timed_out, DownReason::Timeout, at(60)),
            (&manual, DownReason::Manual, START),
        ] {
            assert_eq!(
                server.state(monitor).await.status,
                Status::Down,
                "after restart {restart}"
            );
            assert_eq!(
                server.downs(monitor).await,
                vec![(down_at, reason)],
                "after restart {restart}"
            );
        }
    }
    server.stop(Stop::Clean).await;
}

fn started(rid: u8) -> Signal {
    Signal {
        rid: Some(crate::domain::event::RunId::from_bytes([rid; 16])),
        ..Signal::new(SignalKind::Start)
    }
}

/// A run past its max runtime: the timer fires at its limit, once.
#[tokio::test(start_paused = true)]
async fn a_run_past_its_max_runtime_is_judged_by_the_timer_at_its_limit() {
    let _still = NoAutoAdvance::hold();
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(&dir, Clock::tokio_from(START)).await;
    let monitor = server
        .create_with(3600, |config| config.max_runtime_seconds = Some(60))
        .await;
    server.push(&monitor, PushStatus::Up, "first").await;
    server.advance_to(at(10)).await;
    server.signal(&monitor, started(1)).await;
    server.advance_to(at_millis(69_999)).await;
    assert_eq!(server.state(&monitor).await.status, Status::Up);
    server.advance_to(at(70)).await;
    let state = server.state(&monitor).await;
    assert_eq!(state.status, Status::Down);
    assert!(state.runs[0].overran);
    assert_eq!(
        server.downs(&monitor).await,
        vec![(at(70), DownReason::MaxRuntime)]
    );
    // Long after: judged once.
    server.advance_to(at(3000)).await;
    assert_eq!(
        kinds(&server.log(&monitor).await),
        vec![
            "created",
            "heartbeat",
            "up",
            "run_started",
            "run_overran",
            "down"
        ]
    );
    server.assert_state_matches_the_log(&monitor).await;
    server.stop(Stop::Clean).await;
}

/// A cron monitor, every 5 minutes with a minute of grace, created at 11:06:40: due
/// at 11:10, down at 11:11 with reason `schedule`; a success at 11:14 recovers it
/// and it is due at 11:15.
#[tokio::test(start_paused = true)]
async fn a_cron_monitor_goes_down_a_grace_after_its_missed_slot() {
    let _still = NoAutoAdvance::hold();
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(&dir, Clock::tokio_from(START)).await;
    let monitor = server
        .create_with(0, |config| {
            config.schedule = Some(crate::domain::schedule::CronSchedule {
                expression: "*/5 * * * *".to_owned(),
                timezone: "Europe/Paris".to_owned(),
                grace_seconds: 60,
            });
        })
        .await;
    let slot = Timestamp::parse_rfc3339("2026-11-18T11:10:00Z").expect("time");
    assert_eq!(monitor.next_due_at(), Some(slot));
    server.advance_to(slot.plus_seconds(59)).await;
    assert_eq!(server.state(&monitor).await.status, Status::Pending);
    server.advance_to(slot.plus_seconds(60)).await;
    assert_eq!(
        server.downs(&monitor).await,
        vec![(slot.plus_seconds(60), DownReason::Schedule)]
    );
    server.advance_to(slot.plus_seconds(240)).await;
    server.push(&monitor, PushStatus::Up, "ran").await;
    let state = server.state(&monitor).await;
    assert_eq!(state.status, Status::Up);
    assert_eq!(state.next_due_at(), Some(slot.plus_seconds(300)));
    server.assert_state_matches_the_log(&monitor).await;
    server.stop(Stop::Clean).await;
}

/// A timed mute: a timeout inside it is recorded and owes nothing, the timer wakes at
/// its `until` and records its end there (no release), and the next change alerts.
#[tokio::test(start_paused = true)]
async fn a_timed_mute_ends_by_itself_at_its_until_and_what_it_held_stays_held() {
    let _still = NoAutoAdvance::hold();
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(&dir, Clock::tokio_from(START)).await;
    let channel = server.refusing_channel().await;
    let monitor = server
        .create_with(60, |config| config.channels = vec![channel])
        .await;
    let muted = server
        .execute(
            &monitor,
            Command::Mute {
                until: Some(at(300)),
                until_recovery: false,
            },
        )
        .await;
    assert!(muted.muted_at(at(0)));
    server.advance_to(at(60)).await;
    assert_eq!(server.state(&monitor).await.status, Status::Down);
    assert!(server.owed().await.is_empty(), "held by the mute");
    server.advance_to(at_millis(299_999)).await;
    assert!(server.state(&monitor).await.mute.is_some());
    server.advance_to(at(300)).await;
    let state = server.state(&monitor).await;
    assert_eq!(state.mute, None, "ended by the timer at its until");
    assert_eq!(state.status, Status::Down);
    let log = server.log(&monitor).await;
    assert_eq!(
        kinds(&log),
        vec!["created", "muted", "alert_suppressed", "down", "unmuted"]
    );
    assert_eq!(log.last().map(|(stamp, _)| *stamp), Some(at(300)));
    server.advance_to(at(1000)).await;
    server.state(&monitor).await;
    assert!(server.owed().await.is_empty(), "never released");
    server.push(&monitor, PushStatus::Up, "back").await;
    server.state(&monitor).await;
    let owed = server.owed().await;
    assert_eq!(owed.len(), 1);
    assert_eq!(owed[0].0, AlertKind::Up);
    server.assert_state_matches_the_log(&monitor).await;
    server.stop(Stop::Clean).await;
}

/// A timeout inside a maintenance window is recorded and owes nothing; at the
/// window's end the timer wakes and the held-back `down` is owed, once.
#[tokio::test(start_paused = true)]
async fn a_maintenance_window_holds_an_alert_back_until_its_end() {
    let _still = NoAutoAdvance::hold();
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(&dir, Clock::tokio_from(START)).await;
    let channel = server.refusing_channel().await;
    let monitor = server
        .create_with(60, |config| {
            config.channels = vec![channel];
            config.maintenance = vec![crate::domain::schedule::MaintenanceWindow::Once {
                start: at(30),
                end: at(200),
            }];
        })
        .await;
    server.advance_to(at(60)).await;
    assert_eq!(server.state(&monitor).await.status, Status::Down);
    assert!(server.owed().await.is_empty(), "held back in the window");
    server.advance_to(at_millis(199_999)).await;
    server.state(&monitor).await;
    assert!(server.owed().await.is_empty());
    server.advance_to(at(200)).await;
    server.state(&monitor).await;
    assert_eq!(
        server.owed().await,
        vec![(
            AlertKind::Down,
            AlertNotice::AfterMaintenance,
            "timeout".to_owned(),
            at(200)
        )]
    );
    server.advance_to(at(1000)).await;
    server.state(&monitor).await;
    assert_eq!(server.owed().await.len(), 1, "released once");
    assert_eq!(
        kinds(&server.log(&monitor).await),
        vec!["created", "alert_suppressed", "down", "alert_released"]
    );
    server.assert_state_matches_the_log(&monitor).await;
    server.stop(Stop::Clean).await;
}

/// While down, a reminder every `realert_every_seconds`, each owing an alert.
#[tokio::test(start_paused = true)]
async fn reminders_come_every_period_while_down() {
    let _still = NoAutoAdvance::hold();
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(&dir, Clock::tokio_from(START)).await;
    let channel = server.refusing_channel().await;
    let monitor = server
        .create_with(3600, |config| {
            config.channels = vec![channel];
            config.realert_every_seconds = Some(600);
        })
        .await;
    server.advance_to(at(10)).await;
    server.push(&monitor, PushStatus::Down, "broke").await;
    server.advance_to(at(609)).await;
    assert_eq!(server.owed().await.len(), 1);
    server.advance_to(at(610)).await;
    server.state(&monitor).await;
    server.advance_to(at(1210)).await;
    // The reminder is in the outbox once the actor has handled its tick.
    server.state(&monitor).await;
    let owed = server.owed().await;
    let reminders: Vec<Timestamp> = owed
        .iter()
        .filter(|(_, notice, _, _)| *notice == AlertNotice::Reminder)
        .map(|(_, _, _, at)| *at)
        .collect();
    assert_eq!(reminders, vec![at(610), at(1210)]);
    // Up: no more.
    server.push(&monitor, PushStatus::Up, "fixed").await;
    server.advance_to(at(4000)).await;
    server.state(&monitor).await;
    assert_eq!(
        server.owed().await.len(),
        owed.len() + 1,
        "only the recovery: {:?}",
        server.owed().await
    );
    server.assert_state_matches_the_log(&monitor).await;
    server.stop(Stop::Clean).await;
}

/// A restart in the middle of a run and of a maintenance window: the run is still
/// open, the window still holds the alert back, and its end releases it once.
#[tokio::test(start_paused = true)]
async fn a_restart_inside_a_run_and_a_window_forgets_nothing_and_alerts_once() {
    let _still = NoAutoAdvance::hold();
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(&dir, Clock::tokio_from(START)).await;
    let channel = server.refusing_channel().await;
    let monitor = server
        .create_with(3600, |config| {
            config.channels = vec![channel];
            config.max_runtime_seconds = Some(100);
            config.maintenance = vec![crate::domain::schedule::MaintenanceWindow::Once {
                start: at(50),
                end: at(500),
            }];
        })
        .await;
    server.signal(&monitor, started(3)).await;
    server.advance_to(at(20)).await;
    let server = server
        .restart(Stop::Crash, Duration::from_secs(10), 30)
        .await;
    assert_eq!(
        server.state(&monitor).await.runs.len(),
        1,
        "the run is open"
    );
    // Its limit, 100 s, falls inside the window: down, held back.
    server.advance_to(at(100)).await;
    assert_eq!(server.state(&monitor).await.status, Status::Down);
    assert!(server.owed().await.is_empty());
    let server = server
        .restart(Stop::Crash, Duration::from_secs(100), 30)
        .await;
    assert!(
        server.owed().await.is_empty(),
        "still held back after a restart"
    );
    server.advance_to(at(500)).await;
    server.state(&monitor).await;
    assert_eq!(
        server.owed().await,
        vec![(
            AlertKind::Down,
            AlertNotice::AfterMaintenance,
            "max_runtime".to_owned(),
            at(500)
        )]
    );
    let server = server
        .restart(Stop::Clean, Duration::from_secs(60), 30)
        .await;
    server.advance(Duration::from_secs(600)).await;
    server.state(&monitor).await;
    assert_eq!(
        server.owed().await.len(),
        1,
        "released once, restarts or not"
    );
    server.assert_state_matches_the_log(&monitor).await;
    server.stop(Stop::Clean).await;
}

/// A heartbeat from fleet instance `instance`, answered once durable.
async fn push_from(server: &Server, monitor: &Monitor, instance: &str) {
    let handle = server
        .registry
        .directory()
        .by_token(&monitor.token)
        .expect("registered");
    let heartbeat = Heartbeat {
        instance: crate::domain::event::InstanceName::parse(instance),
        ..heartbeat(PushStatus::Up, instance)
    };
    server
        .registry
        .heartbeat(&handle, heartbeat)
        .await
        .expect("durable");
}

#[tokio::test(start_paused = true)]
async fn a_fleet_goes_down_when_its_quorum_runs_out_and_forgets_silent_instances() {
    let _still = NoAutoAdvance::hold();
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(&dir, Clock::tokio_from(START)).await;
    let channel = server.refusing_channel().await;
    let fleet = server
        .create_with(60, |config| {
            config.channels = vec![channel];
            config.min_instances = Some(2);
            config.instance_retention_seconds = Some(120);
        })
        .await;
    push_from(&server, &fleet, "a").await;
    server.advance_to(at(10)).await;
    push_from(&server, &fleet, "b").await;
    assert_eq!(server.state(&fleet).await.status, Status::Up);
    server.advance_to(at(20)).await;
    push_from(&server, &fleet, "c").await;
    server.advance_to(at(50)).await;
    push_from(&server, &fleet, "a").await;
    server.advance_to(at(55)).await;
    push_from(&server, &fleet, "b").await;
    // c times out at 80 s: a and b still make two.
    server.advance_to(at(100)).await;
    assert_eq!(server.state(&fleet).await.status, Status::Up);
    // a times out at 110 s: down, stamped there.
    server.advance_to(at_millis(109_999)).await;
    assert_eq!(server.state(&fleet).await.status, Status::Up);
    server.advance_to(at(110)).await;
    assert_eq!(
        server.downs(&fleet).await,
        vec![(at(110), DownReason::Instances)]
    );
    let store = server.store.clone();
    let outbox = tokio::task::spawn_blocking(move || store.load_outbox())
        .await
        .expect("outbox task")
        .expect("outbox reads");
    assert_eq!(outbox.len(), 1);
    assert_eq!(&*outbox[0].alert.missing_instances, ["a", "c"]);
    // c, silent since 20 s, is forgotten at 140 s; a and b at 170 s and 175 s.
    server.advance_to(at(140)).await;
    let forgotten: Vec<(Timestamp, String)> = server
        .log(&fleet)
        .await
        .into_iter()
        .filter_map(|(at, event)| match event {
            Event::InstanceForgotten { instance } => Some((at, instance.to_string())),
            _ => None,
        })
        .collect();
    assert_eq!(forgotten, vec![(at(140), "c".to_owned())]);
    server.advance_to(at(175)).await;
    assert!(server.state(&fleet).await.instances.is_empty());
    server.assert_state_matches_the_log(&fleet).await;
    server.stop(Stop::Clean).await;
}

#[tokio::test(start_paused = true)]
async fn a_held_down_is_released_after_the_parents_grace_even_across_a_restart() {
    let _still = NoAutoAdvance::hold();
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(&dir, Clock::tokio_from(START)).await;
    let channel = server.refusing_channel().await;
    let parent = server.create(30, vec![channel]).await;
    let child = server
        .create_with(60, |config| {
            config.channels = vec![channel];
            config.parents = vec![parent.id];
            config.dependency_grace_seconds = Some(20);
        })
        .await;
    server.push(&parent, PushStatus::Up, "ok").await;
    server.push(&child, PushStatus::Up, "ok").await;
    server.advance_to(at(30)).await;
    assert_eq!(server.state(&parent).await.status, Status::Down);
    server.advance_to(at(60)).await;
    let held = server.state(&child).await;
    assert_eq!(held.status, Status::Down);
    assert!(held.held_alert.is_some());
    let downs =
        |owed: Vec<(AlertKind, AlertNotice, String, Timestamp)>| -> Vec<(AlertNotice, Timestamp)> {
            owed.into_iter()
                .filter(|(kind, ..)| *kind == AlertKind::Down)
                .map(|(_, notice, _, at)| (notice, at))
                .collect()
        };
    assert_eq!(
        downs(server.owed().await),
        vec![(AlertNotice::Change, at(30))]
    );
    // A crash, 10 s stopped: the hold is still there, the parent still down.
    let server = server
        .restart(Stop::Crash, Duration::from_secs(10), 0)
        .await;
    assert!(server.state(&child).await.held_alert.is_some());
    server.advance_to(at(100)).await;
    server.push(&parent, PushStatus::Up, "back").await;
    // Released 20 s after the parent's recovery, not before.
    server.advance_to(at_millis(119_999)).await;
    assert!(server.state(&child).await.held_alert.is_some());
    server.advance_to(at(120)).await;
    let released = server.state(&child).await;
    assert_eq!(released.held_alert, None);
    assert!(released.alerted_down);
    assert_eq!(
        downs(server.owed().await),
        vec![
            (AlertNotice::Change, at(30)),
            (AlertNotice::AfterDependency, at(120))
        ]
    );
    server.assert_state_matches_the_log(&child).await;
    server.stop(Stop::Clean).await;
}

mod guard;
