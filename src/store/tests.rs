//! Store tests on a real fjall directory: write, close, reopen, compare. And the
//! layering this module's documentation promises: fjall and bincode stay inside it.

use super::retention::Retention;
use super::*;
use crate::domain::event::{Event, Heartbeat, HeartbeatText, MonitorConfig, PushStatus};
use crate::domain::ids::PushToken;
use crate::domain::machine::{Command, apply, decide};

fn config(name: &str) -> MonitorConfig {
    MonitorConfig::new(name, 30)
}

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_millis(1_800_000_000_000 + seconds * 1000)
}

/// Creates a monitor in the store and returns its state as an actor would hold it.
async fn create(store: &EventStore, name: &str, now: Timestamp) -> Monitor {
    let id = MonitorId::generate(now);
    let token = PushToken::from_bytes(*MonitorId::generate(now).as_bytes());
    let mut monitor = Monitor::created(id, now, config(name), token.clone());
    let created = Stamped {
        at: now,
        event: Event::Created {
            config: Box::new(config(name)),
            token: token.clone(),
        },
    };
    monitor.last_seq = store
        .append(id, vec![created], Some(monitor.clone()))
        .await
        .expect("append succeeds");
    monitor
}

/// Decides, persists, then applies: the actor's order.
async fn run(store: &EventStore, monitor: &mut Monitor, command: Command, now: Timestamp) {
    let events = decide(monitor, command, now);
    if events.is_empty() {
        return;
    }
    let mut next = monitor.clone();
    for stamped in &events {
        apply(&mut next, 0, stamped.at, &stamped.event);
    }
    let deleted = events.iter().any(|stamped| stamped.event == Event::Deleted);
    let snapshot = (!deleted).then(|| next.clone());
    next.last_seq = store
        .append(monitor.id, events, snapshot)
        .await
        .expect("append succeeds");
    *monitor = next;
}

fn beat(status: PushStatus, msg: &str) -> Command {
    Command::Heartbeat(Heartbeat {
        status,
        msg: Some(HeartbeatText::truncated(msg.to_owned())),
        value: Some(1.0),
        instance: None,
    })
}

/// Closes the store; every other handle must be gone so the directory lock is freed.
async fn close(opened: Opened, store: EventStore) {
    drop(store);
    opened.store.close().await;
    opened
        .writer_thread
        .join()
        .expect("writer thread exits cleanly");
}

#[tokio::test]
async fn states_and_history_survive_a_reopen_and_equal_a_full_replay() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opened = EventStore::open(dir.path()).expect("opens");
    let store = opened.store.clone();
    let mut a = create(&store, "a", at(0)).await;
    let mut b = create(&store, "b", at(0)).await;
    run(&store, &mut a, beat(PushStatus::Up, "one"), at(1)).await;
    run(
        &store,
        &mut a,
        Command::CheckDeadline { hold: false },
        at(40),
    )
    .await;
    run(&store, &mut a, beat(PushStatus::Up, "two"), at(41)).await;
    run(&store, &mut b, beat(PushStatus::Down, "broken"), at(2)).await;
    let mut gone = create(&store, "gone", at(3)).await;
    run(&store, &mut gone, Command::Delete, at(4)).await;
    store.mark_alive(at(42));
    close(opened, store).await;

    let reopened = EventStore::open(dir.path()).expect("reopens");
    let store = reopened.store.clone();
    let mut loaded = store.load_monitors().expect("loads");
    loaded.sort_by_key(|monitor| monitor.id);
    let mut expected = vec![a.clone(), b.clone()];
    expected.sort_by_key(|monitor| monitor.id);
    assert_eq!(loaded, expected, "snapshots hold exactly the live states");

    let replayed = store.replay_all().expect("replays");
    assert_eq!(
        replayed.values().cloned().collect::<Vec<_>>(),
        expected,
        "folding the whole log gives the same states as the snapshots"
    );
    assert_eq!(store.last_alive().expect("reads"), Some(at(42)));

    let history = store.history(a.id, 100, None).await.expect("reads");
    let kinds: Vec<_> = history.iter().filter_map(|e| e.event.kind()).collect();
    assert_eq!(
        kinds,
        ["up", "heartbeat", "down", "up", "heartbeat", "created"],
        "newest first"
    );
    assert!(history.windows(2).all(|pair| pair[0].seq > pair[1].seq));

    // Sequence numbers keep growing after a reopen.
    let mut c = create(&store, "c", at(50)).await;
    assert!(c.last_seq > a.last_seq);
    run(&store, &mut c, Command::Pause, at(51)).await;
    close(reopened, store).await;
}

#[tokio::test]
async fn history_pages_back_with_before_and_limit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opened = EventStore::open(dir.path()).expect("opens");
    let store = opened.store.clone();
    let mut monitor = create(&store, "paged", at(0)).await;
    for index in 0..25 {
        run(
            &store,
            &mut monitor,
            beat(PushStatus::Up, &format!("beat {index}")),
            at(index),
        )
        .await;
    }
    let first = store.history(monitor.id, 10, None).await.expect("reads");
    assert_eq!(first.len(), 10);
    let oldest_seen = first.last().map(|event| event.seq).expect("ten events");
    let second = store
        .history(monitor.id, 10, Some(oldest_seen))
        .await
        .expect("reads");
    assert_eq!(second.len(), 10);
    assert!(second.iter().all(|event| event.seq < oldest_seen));
    let rest = store
        .history(monitor.id, 1000, second.last().map(|event| event.seq))
        .await
        .expect("reads");
    // 25 heartbeats + the first one's `up` + created = 27 events: 10 + 10 + 7.
    assert_eq!(rest.len(), 7);
    assert_eq!(rest.last().and_then(|e| e.event.kind()), Some("created"));
    close(opened, store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_share_batches_and_all_become_durable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opened = EventStore::open(dir.path()).expect("opens");
    let store = opened.store.clone();
    let mut monitors = Vec::new();
    for index in 0..20 {
        monitors.push(create(&store, &format!("m{index}"), at(0)).await);
    }
    let mut tasks = Vec::new();
    for mut monitor in monitors {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for index in 0..50 {
                run(
                    &store,
                    &mut monitor,
                    beat(PushStatus::Up, &format!("{index}")),
                    at(index),
                )
                .await;
            }
            monitor
        }));
    }
    let mut finished = Vec::new();
    for task in tasks {
        finished.push(task.await.expect("task completes"));
    }
    close(opened, store).await;

    let reopened = EventStore::open(dir.path()).expect("reopens");
    let store = reopened.store.clone();
    let replayed = store.replay_all().expect("replays");
    for monitor in &finished {
        assert_eq!(replayed.get(&monitor.id), Some(monitor));
        let history = store.history(monitor.id, 1000, None).await.expect("reads");
        assert_eq!(
            history.len(),
            52,
            "50 heartbeats, the first one's `up` and the creation"
        );
    }
    close(reopened, store).await;
}

fn beat_with(status: PushStatus, msg: &str, value: Option<f64>) -> Command {
    Command::Heartbeat(Heartbeat {
        status,
        msg: Some(HeartbeatText::truncated(msg.to_owned())),
        value,
        instance: None,
    })
}

fn heartbeat_msgs(history: &[RecordedEvent]) -> Vec<String> {
    history
        .iter()
        .rev()
        .filter_map(|recorded| match &recorded.event {
            Event::HeartbeatReceived(heartbeat) => {
                heartbeat.msg.as_ref().map(|msg| msg.as_str().to_owned())
            }
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn retention_keeps_the_newest_heartbeats_and_what_the_state_depends_on() {
    let dir = tempfile::tempdir().expect("temp dir");
    let opened = EventStore::open(dir.path()).expect("opens");
    let store = opened.store.clone();
    let mut monitor = create(&store, "pruned", at(0)).await;
    // The first `up` takes it out of pending: the state remembers when.
    run(
        &store,
        &mut monitor,
        beat_with(PushStatus::Up, "first", None),
        at(1),
    )
    .await;
    run(
        &store,
        &mut monitor,
        beat_with(PushStatus::Up, "valued", Some(7.0)),
        at(2),
    )
    .await;
    for n in 0..10 {
        run(
            &store,
            &mut monitor,
            beat_with(PushStatus::Up, &format!("old {n}"), None),
            at(3 + n),
        )
        .await;
    }
    run(
        &store,
        &mut monitor,
        beat_with(PushStatus::Down, "manual down", None),
        at(20),
    )
    .await;
    run(&store, &mut monitor, Command::Pause, at(21)).await;
    run(&store, &mut monitor, Command::Resume, at(22)).await;
    // Out of pending again after the resume.
    run(
        &store,
        &mut monitor,
        beat_with(PushStatus::Up, "after resume", None),
        at(23),
    )
    .await;
    for n in 0..4 {
        run(
            &store,
            &mut monitor,
            beat_with(PushStatus::Down, &format!("new {n}"), None),
            at(24 + n),
        )
        .await;
    }
    let before = store
        .history(monitor.id, 1000, None)
        .await
        .expect("history");

    let retention = Retention {
        max_heartbeats: Some(3),
        max_age: None,
    };
    let deleted = store.prune(monitor.id, retention, at(100)).expect("prunes");
    let after = store
        .history(monitor.id, 1000, None)
        .await
        .expect("history");
    assert_eq!(
        heartbeat_msgs(&after),
        ["first", "valued", "after resume", "new 1", "new 2", "new 3"],
        "the newest 3, plus the ones the state depends on"
    );
    assert_eq!(deleted, heartbeat_msgs(&before).len() - 6);
    // Every other event is kept.
    let others = |history: &[RecordedEvent]| {
        history
            .iter()
            .filter(|recorded| !matches!(recorded.event, Event::HeartbeatReceived(_)))
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(others(&after), others(&before));
    // The pruned log still replays to the state: start-up and `pushmon check` agree.
    let replayed = store.replay_all().expect("replays");
    assert_eq!(replayed.get(&monitor.id), Some(&monitor));
    // A second prune has nothing left to do.
    assert_eq!(
        store.prune(monitor.id, retention, at(100)).expect("prunes"),
        0
    );

    // By age: everything older than 50 s at t=78 goes, but for the pinned ones.
    let by_age = Retention {
        max_heartbeats: None,
        max_age: Some(std::time::Duration::from_secs(50)),
    };
    let swept = store.sweep(by_age, at(78), || true).expect("sweeps");
    assert_eq!(swept.monitors, 1);
    let after_age = store
        .history(monitor.id, 1000, None)
        .await
        .expect("history");
    assert_eq!(
        heartbeat_msgs(&after_age),
        ["first", "valued", "after resume", "new 3"]
    );
    assert_eq!(
        store.replay_all().expect("replays").get(&monitor.id),
        Some(&monitor)
    );
    close(opened, store).await;
}

#[tokio::test]
async fn heartbeats_appended_without_a_snapshot_are_folded_back_in_by_every_reader() {
    let dir = tempfile::tempdir().expect("temp dir");
    let opened = EventStore::open(dir.path()).expect("opens");
    let store = opened.store.clone();
    let mut monitor = create(&store, "tail", at(0)).await;
    run(
        &store,
        &mut monitor,
        beat(PushStatus::Up, "snapshotted"),
        at(1),
    )
    .await;
    // Three plain heartbeats whose state is not written: only their events are.
    for n in 0..3 {
        let events = decide(
            &monitor,
            beat_with(PushStatus::Up, &format!("tail {n}"), Some(f64::from(n))),
            at(2 + i64::from(n)),
        );
        let mut next = monitor.clone();
        for stamped in &events {
            apply(&mut next, 0, stamped.at, &stamped.event);
        }
        let append = Append::new(monitor.id, events, SnapshotWrite::Keep);
        next.last_seq = store
            .append_with(append)
            .await
            .expect("append succeeds")
            .last_seq;
        monitor = next;
    }
    assert_eq!(store.load_monitors().expect("loads"), vec![monitor.clone()]);
    assert_eq!(
        store.monitor(monitor.id).await.expect("reads"),
        Some(monitor.clone())
    );
    assert_eq!(
        store.replay_all().expect("replays").get(&monitor.id),
        Some(&monitor)
    );
    close(opened, store).await;

    // And after a reopen, as start-up reads it.
    let opened = EventStore::open(dir.path()).expect("reopens");
    let store = opened.store.clone();
    assert_eq!(store.load_monitors().expect("loads"), vec![monitor.clone()]);
    close(opened, store).await;
}

fn plain(status: PushStatus, msg: &str) -> Heartbeat {
    Heartbeat {
        status,
        msg: Some(HeartbeatText::truncated(msg.to_owned())),
        value: None,
        instance: None,
    }
}

#[tokio::test]
async fn a_heartbeat_of_a_quarantined_monitor_is_refused_and_needs_no_rebuild() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut opened = EventStore::open(dir.path()).expect("opens");
    let store = opened.store.clone();
    let monitor = create(&store, "direct", at(0)).await;
    let push = |n: i64| {
        let store = store.clone();
        async move {
            store
                .append_heartbeat(monitor.id, at(n), plain(PushStatus::Up, &format!("p{n}")))
                .await
        }
    };
    let quarantined = |undispatched_from| Quarantined {
        monitor: monitor.id,
        undispatched_from,
    };

    // Accepted: durable, answered with its sequence number, nothing reported.
    let first = push(1).await.expect("durable");
    assert_eq!(first, monitor.last_seq + 1);
    assert!(opened.quarantined.try_recv().is_err());

    // Quarantined (as after a failed batch found durable) and reported once.
    store.shared.quarantine().report(monitor.id, Some(7));
    assert_eq!(opened.quarantined.try_recv(), Ok(quarantined(Some(7))));
    // Refused, and no further report: no actor applied it, so none is ahead of the
    // log.
    assert!(matches!(push(2).await, Err(StoreError::Unavailable(_))));
    store.start_rebuild(monitor.id).await.expect("barrier");
    assert!(push(3).await.is_err());
    assert!(opened.quarantined.try_recv().is_err());
    // The rebuild ends: heartbeats are accepted again.
    store.lift_quarantine(monitor.id);
    assert!(push(4).await.is_ok());
    assert!(opened.quarantined.try_recv().is_err());

    let msgs = heartbeat_msgs(&store.history(monitor.id, 100, None).await.expect("reads"));
    assert_eq!(msgs, ["p1", "p4"]);
    close(opened, store).await;
}

/// What the heartbeat sink of a test hears.
#[derive(Default)]
struct Heard(std::sync::Mutex<Vec<RecordedHeartbeat>>);

impl HeartbeatSink for Heard {
    fn recorded(&self, heartbeats: Vec<RecordedHeartbeat>) {
        self.0.lock().expect("lock").extend(heartbeats);
    }
}

/// A timeout verdict of `monitor` (as `CheckDeadline` decides it) with `basis`, and
/// the state it leaves.
fn verdict(monitor: &Monitor, basis: u64, now: Timestamp) -> (Append, Monitor) {
    let events = decide(monitor, Command::CheckDeadline { hold: false }, now);
    assert!(
        events
            .iter()
            .any(|stamped| matches!(stamped.event, Event::WentDown { .. })),
        "{events:?}"
    );
    let mut next = monitor.clone();
    for stamped in &events {
        apply(&mut next, 0, stamped.at, &stamped.event);
    }
    let mut append = Append::new(
        monitor.id,
        events,
        SnapshotWrite::Write(Box::new(next.clone())),
    );
    append.basis = Some(basis);
    append.voidable = true;
    (append, next)
}

fn downs(history: &[RecordedEvent]) -> usize {
    history
        .iter()
        .filter(|recorded| matches!(recorded.event, Event::WentDown { .. }))
        .count()
}

#[tokio::test]
async fn a_verdict_a_written_heartbeat_overtook_is_voided_and_one_on_the_current_basis_is_written()
{
    let dir = tempfile::tempdir().expect("temp dir");
    let opened = EventStore::open(dir.path()).expect("opens");
    let store = opened.store.clone();
    let heard = Arc::new(Heard::default());
    store.set_heartbeat_sink(Arc::clone(&heard) as Arc<dyn HeartbeatSink>);
    // Up, and silent past its timeout (60 s).
    let mut monitor = create(&store, "voided", at(0)).await;
    run(&store, &mut monitor, beat(PushStatus::Up, "up"), at(1)).await;
    let basis = monitor.last_seq;

    // A heartbeat written after the actor's basis (the actor has not seen it yet).
    let written = store
        .append_heartbeat(monitor.id, at(70), plain(PushStatus::Up, "late"))
        .await
        .expect("durable");
    assert!(written > basis);
    // Handed over once durable, before it was answered.
    assert_eq!(
        *heard.0.lock().expect("lock"),
        vec![RecordedHeartbeat {
            monitor: monitor.id,
            seq: written,
            at: at(70),
            heartbeat: plain(PushStatus::Up, "late"),
        }]
    );

    // The verdict decided on the older basis: voided, nothing written.
    let (append, _) = verdict(&monitor, basis, at(90));
    let appended = store.append_with(append).await.expect("answered");
    assert!(appended.voided);
    assert_eq!(
        appended.last_seq, written,
        "names the heartbeat that overtook it"
    );
    assert_eq!(store.decisions_voided(), 1);
    let history = store.history(monitor.id, 100, None).await.expect("reads");
    assert_eq!(downs(&history), 0, "{history:?}");

    // The actor applies that heartbeat; a verdict on the current basis stands.
    apply(
        &mut monitor,
        written,
        at(70),
        &Event::HeartbeatReceived(plain(PushStatus::Up, "late")),
    );
    let (append, mut next) = verdict(&monitor, written, at(140));
    let appended = store.append_with(append).await.expect("answered");
    assert!(!appended.voided);
    next.last_seq = appended.last_seq;
    assert_eq!(store.decisions_voided(), 1);
    let history = store.history(monitor.id, 100, None).await.expect("reads");
    assert_eq!(downs(&history), 1, "{history:?}");
    assert_eq!(
        store.monitor(monitor.id).await.expect("reads"),
        Some(next.clone())
    );
    close(opened, store).await;

    // After a reopen no heartbeat was written since: a verdict stands whatever its
    // basis (the actor rebuilt from the store holds every heartbeat before it).
    let opened = EventStore::open(dir.path()).expect("reopens");
    let store = opened.store.clone();
    let mut monitor = store
        .monitor(next.id)
        .await
        .expect("reads")
        .expect("exists");
    run(&store, &mut monitor, beat(PushStatus::Up, "back"), at(150)).await;
    let (append, _) = verdict(&monitor, 0, at(300));
    let appended = store.append_with(append).await.expect("answered");
    assert!(!appended.voided);
    assert_eq!(store.decisions_voided(), 0);
    // A heartbeat written since the reopen voids a verdict on an older basis.
    let basis = store
        .monitor(monitor.id)
        .await
        .expect("reads")
        .expect("exists");
    store
        .append_heartbeat(monitor.id, at(310), plain(PushStatus::Up, "again"))
        .await
        .expect("durable");
    let (append, _) = verdict(&monitor, basis.last_seq, at(400));
    assert!(store.append_with(append).await.expect("answered").voided);
    assert_eq!(store.decisions_voided(), 1);
    close(opened, store).await;
}

#[tokio::test]
async fn a_change_a_heartbeat_overtook_keeps_the_stored_snapshot_and_readers_fold_the_log() {
    let dir = tempfile::tempdir().expect("temp dir");
    let opened = EventStore::open(dir.path()).expect("opens");
    let store = opened.store.clone();
    let mut monitor = create(&store, "overtaken", at(0)).await;
    run(&store, &mut monitor, beat(PushStatus::Up, "up"), at(1)).await;
    let basis = monitor.last_seq;
    let written = store
        .append_heartbeat(monitor.id, at(2), plain(PushStatus::Down, "late"))
        .await
        .expect("durable");
    // A pause decided on the older basis: written (only verdicts are voidable), but
    // its snapshot, which misses the heartbeat, is not.
    let (mut append, _) = paused(&monitor, at(3));
    append.basis = Some(basis);
    let appended = store.append_with(append).await.expect("answered");
    assert!(!appended.voided);
    assert!(appended.last_seq > written);
    // The state is the log's, in its order: the heartbeat, then the pause.
    let expected = store.replay_all().expect("replays")[&monitor.id].clone();
    assert_eq!(expected.status, crate::domain::machine::Status::Paused);
    assert_eq!(expected.last_heartbeat_at, Some(at(2)));
    assert_eq!(
        store.monitor(monitor.id).await.expect("reads"),
        Some(expected.clone())
    );

    // A snapshot alone, as of its basis: readers fold only what follows it.
    let after = store
        .append_heartbeat(monitor.id, at(4), plain(PushStatus::Up, "after"))
        .await
        .expect("durable");
    store.write_snapshot(expected.clone());
    let expected = store.replay_all().expect("replays")[&monitor.id].clone();
    assert_eq!(expected.last_seq, after);
    // The snapshot is written with the next batch.
    store
        .append_heartbeat(monitor.id, at(5), plain(PushStatus::Up, "next"))
        .await
        .expect("durable");
    let expected = store.replay_all().expect("replays")[&monitor.id].clone();
    assert_eq!(
        store.monitor(monitor.id).await.expect("reads"),
        Some(expected.clone())
    );
    close(opened, store).await;
    let opened = EventStore::open(dir.path()).expect("reopens");
    let store = opened.store.clone();
    assert_eq!(store.load_monitors().expect("loads"), vec![expected]);
    close(opened, store).await;
}

#[tokio::test]
async fn heartbeats_at_the_end_of_the_log_are_handed_back_to_rebuild_their_actor() {
    let dir = tempfile::tempdir().expect("temp dir");
    let opened = EventStore::open(dir.path()).expect("opens");
    let store = opened.store.clone();
    let mut monitor = create(&store, "trailing", at(0)).await;
    run(&store, &mut monitor, beat(PushStatus::Up, "up"), at(1)).await;
    let decided = monitor.clone();
    let mut written = Vec::new();
    for (n, status) in [(2, PushStatus::Down), (3, PushStatus::Up)] {
        let seq = store
            .append_heartbeat(monitor.id, at(n), plain(status, &format!("p{n}")))
            .await
            .expect("durable");
        written.push(RecordedHeartbeat {
            monitor: monitor.id,
            seq,
            at: at(n),
            heartbeat: plain(status, &format!("p{n}")),
        });
    }
    // The state before them, and them, for the new actor to decide on.
    assert_eq!(
        store.load_monitors_to_rebuild().expect("loads"),
        vec![(decided.clone(), written.clone())]
    );
    assert_eq!(
        store.monitor_to_rebuild(monitor.id).await.expect("reads"),
        Some((decided.clone(), written))
    );
    // An event of the actor's after them: it had seen them, nothing is handed back.
    let (mut append, _) = paused(&decided, at(4));
    append.basis = Some(decided.last_seq);
    store.append_with(append).await.expect("written");
    let replayed = store.replay_all().expect("replays")[&monitor.id].clone();
    assert_eq!(
        store.load_monitors_to_rebuild().expect("loads"),
        vec![(replayed, Vec::new())]
    );
    close(opened, store).await;
}

#[tokio::test]
async fn an_alert_a_heartbeat_overtook_carries_what_a_replay_of_the_log_gives_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let opened = EventStore::open(dir.path()).expect("opens");
    let store = opened.store.clone();
    let channel = stored_channel(&store, at(0)).await;
    let mut monitor = create(&store, "realert", at(0)).await;
    run(&store, &mut monitor, with_channels(vec![channel]), at(0)).await;
    run(&store, &mut monitor, beat(PushStatus::Up, "up"), at(1)).await;
    // A `down` push, applied by its actor, which decides a `down` from it...
    let before_push = monitor.clone();
    let cause = plain(PushStatus::Down, "cause");
    let seq = store
        .append_heartbeat(monitor.id, at(2), cause.clone())
        .await
        .expect("durable");
    apply(
        &mut monitor,
        seq,
        at(2),
        &Event::HeartbeatReceived(cause.clone()),
    );
    let consequences: Vec<Stamped> = decide(&before_push, Command::Heartbeat(cause), at(2))
        .into_iter()
        .filter(|stamped| !matches!(stamped.event, Event::HeartbeatReceived(_)))
        .collect();
    assert!(matches!(consequences[0].event, Event::WentDown { .. }));
    // ...while another heartbeat is written before that decision.
    let mut late = plain(PushStatus::Up, "late");
    late.value = Some(5.0);
    store
        .append_heartbeat(monitor.id, at(3), late)
        .await
        .expect("durable");
    let owed = crate::domain::alert::owed_deliveries(&monitor, &consequences, |_, _| true);
    assert_eq!(
        owed[0].1.alert.msg.as_ref().map(|msg| msg.as_str()),
        Some("cause")
    );
    let mut next = monitor.clone();
    for stamped in &consequences {
        apply(&mut next, 0, stamped.at, &stamped.event);
    }
    let mut append = Append::new(
        monitor.id,
        consequences,
        SnapshotWrite::Write(Box::new(next)),
    );
    append.owed = owed;
    append.basis = Some(seq);
    append.before = Some(Box::new(monitor.clone()));
    let appended = store.append_with(append).await.expect("written");
    assert!(!appended.voided, "a consequence is never voided");
    // Made from the log's state at the `down`: the newest heartbeat is the late one.
    let alert = &appended.owed[0].1.alert;
    assert_eq!(alert.msg.as_ref().map(|msg| msg.as_str()), Some("late"));
    assert_eq!(alert.value, Some(5.0));
    let replayed = store.replay().expect("replays");
    assert_eq!(replayed, stored_state(&store));
    assert_eq!(replayed.outbox.len(), 1);
    close(opened, store).await;
}

#[tokio::test]
async fn a_heartbeat_after_its_monitors_deletion_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let opened = EventStore::open(dir.path()).expect("opens");
    let store = opened.store.clone();
    let mut monitor = create(&store, "deleted", at(0)).await;
    store
        .append_heartbeat(monitor.id, at(1), plain(PushStatus::Up, "before"))
        .await
        .expect("durable");
    monitor.last_seq += 1;
    run(&store, &mut monitor, Command::Delete, at(2)).await;
    assert!(matches!(
        store
            .append_heartbeat(monitor.id, at(3), plain(PushStatus::Up, "after"))
            .await,
        Err(StoreError::Deleted)
    ));
    let history = store.history(monitor.id, 100, None).await.expect("reads");
    assert_eq!(
        history[0].event,
        Event::Deleted,
        "nothing after it: {history:?}"
    );
    assert!(store.replay_all().expect("replays").is_empty());
    close(opened, store).await;
}

/// A pause of each monitor, as the bulk route prepares it (`actor::bulk`).
fn paused(monitor: &Monitor, now: Timestamp) -> (Append, Monitor) {
    let events = decide(monitor, Command::Pause, now);
    let mut next = monitor.clone();
    for stamped in &events {
        apply(&mut next, 0, stamped.at, &stamped.event);
    }
    (
        Append::new(
            monitor.id,
            events,
            SnapshotWrite::Write(Box::new(next.clone())),
        ),
        next,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_of_appends_is_one_batch_all_written_or_none() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opened = EventStore::open(dir.path()).expect("opens");
    let store = opened.store.clone();
    let mut monitors = Vec::new();
    for index in 0..30 {
        monitors.push(create(&store, &format!("m{index}"), at(0)).await);
    }
    let (bulk, busy) = monitors.split_at(20);
    // Other monitors append meanwhile, each on its own.
    let mut tasks = Vec::new();
    for monitor in busy {
        let (store, mut monitor) = (store.clone(), monitor.clone());
        tasks.push(tokio::spawn(async move {
            for index in 0..50 {
                run(
                    &store,
                    &mut monitor,
                    beat(PushStatus::Up, &format!("{index}")),
                    at(index),
                )
                .await;
            }
        }));
    }

    // One monitor of the bulk is being rebuilt: the whole bulk is refused, none of it
    // written.
    store.shared.quarantine().report(bulk[7].id, None);
    let appends = bulk
        .iter()
        .map(|monitor| paused(monitor, at(1)).0)
        .collect();
    let refused = store.append_all(appends).await.expect("queued");
    assert_eq!(refused.len(), 20);
    assert!(
        refused
            .iter()
            .all(|outcome| matches!(outcome, Err(StoreError::Unavailable(_))))
    );
    for monitor in bulk {
        let history = store.history(monitor.id, 10, None).await.expect("reads");
        assert_eq!(history.len(), 1, "only the creation: {history:?}");
    }
    store.start_rebuild(bulk[7].id).await.expect("barrier");
    store.lift_quarantine(bulk[7].id);

    // Accepted: every monitor's event, numbered one after the other (one request,
    // one batch: no other append between them), all durable.
    let (appends, states): (Vec<Append>, Vec<Monitor>) =
        bulk.iter().map(|monitor| paused(monitor, at(2))).unzip();
    let written = store.append_all(appends).await.expect("queued");
    let seqs: Vec<u64> = written
        .into_iter()
        .map(|outcome| outcome.expect("written").last_seq)
        .collect();
    for pair in seqs.windows(2) {
        assert_eq!(pair[1], pair[0] + 1, "{seqs:?}");
    }
    for task in tasks {
        task.await.expect("task completes");
    }
    close(opened, store).await;

    let reopened = EventStore::open(dir.path()).expect("reopens");
    let store = reopened.store.clone();
    let replayed = store.replay_all().expect("replays");
    for (monitor, (state, seq)) in bulk.iter().zip(states.into_iter().zip(seqs)) {
        let mut state = state;
        state.last_seq = seq;
        assert_eq!(replayed.get(&monitor.id), Some(&state));
        let history = store.history(monitor.id, 10, None).await.expect("reads");
        assert_eq!(history[0].seq, seq);
        assert_eq!(history[0].event, Event::Paused);
    }
    close(reopened, store).await;
}

/// A bulk push's group (`append_group`): one batch, its appends numbered one after the
/// other while other monitors append meanwhile, but each answered on its own: a
/// monitor being rebuilt has its append refused, the others are written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_of_appends_is_one_batch_answered_append_by_append() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opened = EventStore::open(dir.path()).expect("opens");
    let store = opened.store.clone();
    let mut monitors = Vec::new();
    for index in 0..30 {
        monitors.push(create(&store, &format!("m{index}"), at(0)).await);
    }
    let (group, busy) = monitors.split_at(20);
    let mut tasks = Vec::new();
    for monitor in busy {
        let (store, mut monitor) = (store.clone(), monitor.clone());
        tasks.push(tokio::spawn(async move {
            for index in 0..50 {
                run(
                    &store,
                    &mut monitor,
                    beat(PushStatus::Up, &format!("{index}")),
                    at(index),
                )
                .await;
            }
        }));
    }
    store.shared.quarantine().report(group[7].id, None);
    let mut staged = Vec::new();
    let mut answers = Vec::new();
    for monitor in group {
        let (append, answer) = StagedAppend::applied(paused(monitor, at(2)).0);
        staged.push(append);
        answers.push(answer);
    }
    assert!(store.append_group(staged));
    let mut seqs = Vec::new();
    for (index, answer) in answers.into_iter().enumerate() {
        let outcome = answer.await.expect("answered");
        if index == 7 {
            assert!(
                matches!(outcome, Err(StoreError::Unavailable(_))),
                "{outcome:?}"
            );
        } else {
            seqs.push(outcome.expect("written").last_seq);
        }
    }
    for pair in seqs.windows(2) {
        assert_eq!(pair[1], pair[0] + 1, "one batch: {seqs:?}");
    }
    for task in tasks {
        task.await.expect("task completes");
    }
    for (index, monitor) in group.iter().enumerate() {
        let history = store.history(monitor.id, 10, None).await.expect("reads");
        let paused = history
            .iter()
            .any(|recorded| recorded.event == Event::Paused);
        assert_eq!(paused, index != 7, "monitor {index}: {history:?}");
    }
    close(opened, store).await;
}

/// The promise of this module's documentation (and ARCHITECTURE.md's): no file outside
/// `src/store/` uses fjall, and no file but `src/store/codec.rs` uses bincode.
/// Comments and literals may name them.
#[test]
fn only_the_store_imports_fjall_and_only_its_codec_bincode() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut fjall_users = Vec::new();
    let mut bincode_users = Vec::new();
    for path in &files {
        let source = std::fs::read_to_string(path).expect("reads a source file");
        let code = code_only(&source);
        let name = path
            .strip_prefix(&src)
            .expect("under src")
            .to_string_lossy()
            .replace('\\', "/");
        if mentions(&code, "fjall") {
            fjall_users.push(name.clone());
        }
        if mentions(&code, "bincode") {
            bincode_users.push(name);
        }
    }
    // The scan sees what it looks for: these files do use them.
    assert!(
        fjall_users.contains(&"store/mod.rs".to_owned()),
        "{fjall_users:?}"
    );
    assert_eq!(
        bincode_users,
        ["store/codec.rs"],
        "only the codec uses bincode"
    );
    let outside: Vec<&String> = fjall_users
        .iter()
        .filter(|name| !name.starts_with("store/"))
        .collect();
    assert!(
        outside.is_empty(),
        "fjall used outside the store: {outside:?}"
    );
}

#[test]
fn code_only_drops_comments_and_literals() {
    let source = "use a; // fjall\n/* bincode /* nested */ fjall */ let s = \"fjall\";\n\
                  let r = r#\"bincode \"x\" \"#; let c = '\"'; let q = '\\''; let l: &'static str = b; fjall::X";
    let code = code_only(source);
    assert!(!mentions(&code, "bincode"), "{code}");
    assert!(code.contains("'static"), "{code}");
    assert!(code.trim_end().ends_with("fjall::X"), "{code}");
    assert!(!mentions(&code.replace("fjall::X", ""), "fjall"), "{code}");
}

fn rust_files(dir: &std::path::Path, found: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("reads a source directory") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            found.push(path);
        }
    }
    found.sort();
}

/// Whether `word` appears in `code` as a whole identifier.
fn mentions(code: &str, word: &str) -> bool {
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    code.match_indices(word).any(|(at, _)| {
        let before = code[..at].chars().next_back();
        let after = code[at + word.len()..].chars().next();
        !before.is_some_and(is_ident) && !after.is_some_and(is_ident)
    })
}

/// `source` with comments removed and the contents of string and character literals
/// blanked, so that only code remains.
fn code_only(source: &str) -> String {
    let chars: Vec<char> = source.chars().collect();
    let at = |index: usize| chars.get(index).copied();
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut code = String::with_capacity(source.len());
    let mut index = 0;
    while let Some(c) = at(index) {
        let next = at(index + 1);
        if c == '/' && next == Some('/') {
            while at(index).is_some_and(|c| c != '\n') {
                index += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while index < chars.len() {
                if at(index) == Some('/') && at(index + 1) == Some('*') {
                    depth += 1;
                    index += 2;
                } else if at(index) == Some('*') && at(index + 1) == Some('/') {
                    depth -= 1;
                    index += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    index += 1;
                }
            }
            code.push(' ');
        } else if c == 'r'
            && matches!(next, Some('"' | '#'))
            && !index
                .checked_sub(1)
                .and_then(at)
                .is_some_and(|before| is_ident(before) && before != 'b')
        {
            let mut hashes = 0;
            while at(index + 1 + hashes) == Some('#') {
                hashes += 1;
            }
            if at(index + 1 + hashes) != Some('"') {
                // A raw identifier (`r#type`), not a string.
                code.push(c);
                index += 1;
                continue;
            }
            index += hashes + 2;
            let closing: Vec<char> = std::iter::once('"')
                .chain(std::iter::repeat_n('#', hashes))
                .collect();
            while index < chars.len() && !chars[index..].starts_with(&closing) {
                index += 1;
            }
            index += closing.len();
            code.push_str("\"\"");
        } else if c == '"' {
            index += 1;
            while let Some(inside) = at(index) {
                index += if inside == '\\' { 2 } else { 1 };
                if inside == '"' {
                    break;
                }
            }
            code.push_str("\"\"");
        } else if c == '\'' && next == Some('\\') {
            index += 3;
            while at(index).is_some_and(|c| c != '\'') {
                index += 1;
            }
            index += 1;
            code.push_str("' '");
        } else if c == '\'' && at(index + 2) == Some('\'') {
            index += 3;
            code.push_str("' '");
        } else {
            code.push(c);
            index += 1;
        }
    }
    code
}

#[test]
fn a_due_rebuild_is_reported_again_only_for_earlier_undispatched_deliveries() {
    let (mut quarantine, mut reports) = super::quarantine::Quarantine::new();
    let monitor = MonitorId::generate(at(0));
    let report = |undispatched_from| Quarantined {
        monitor,
        undispatched_from,
    };
    quarantine.report(monitor, None);
    quarantine.report(monitor, Some(9));
    quarantine.report(monitor, Some(12));
    quarantine.report(monitor, Some(7));
    quarantine.report(monitor, None);
    assert!(quarantine.holds(monitor));
    let mut received = Vec::new();
    while let Ok(quarantined) = reports.try_recv() {
        received.push(quarantined);
    }
    assert_eq!(received, [report(None), report(Some(9)), report(Some(7))]);
}

/// The journal files of the store in `dir`, and where the data in the newest ends
/// (fjall makes the file a sparse 64 MiB; the rest is zeros).
fn newest_journal(dir: &std::path::Path) -> (std::path::PathBuf, u64) {
    let mut journals: Vec<(u64, std::path::PathBuf)> = std::fs::read_dir(dir.join("fjall"))
        .expect("fjall's directory")
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().to_string();
            let id = name.strip_suffix(".jnl")?.parse().ok()?;
            Some((id, entry.path()))
        })
        .collect();
    journals.sort();
    let (_, path) = journals.pop().expect("a journal");
    let bytes = std::fs::read(&path).expect("reads the journal");
    let end = bytes
        .iter()
        .rposition(|byte| *byte != 0)
        .map_or(0, |at| at + 1);
    (path, end as u64)
}

/// A store with `count` monitors, closed cleanly (its final mark written): its last
/// sequence number and its installation id.
async fn filled_store(
    dir: &std::path::Path,
    count: usize,
) -> (u64, crate::domain::alert::InstallationId) {
    let opened = EventStore::open(dir).expect("opens");
    let store = opened.store.clone();
    let installation = store.installation_id().expect("an id");
    let mut last = 0;
    for index in 0..count {
        last = create(&store, &format!("m{index}"), at(index as i64))
            .await
            .last_seq;
    }
    store.mark_alive(at(100));
    close(opened, store).await;
    (last, installation)
}

#[tokio::test]
async fn a_journal_cut_short_is_refused_and_accepting_the_loss_continues_above_the_mark() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (last, installation) = filled_store(dir.path(), 40).await;
    let mark = mark::read(dir.path()).expect("reads").expect("a mark");
    assert_eq!(mark.seqs.max(), last, "the final mark covers every write");
    assert_eq!(mark.acknowledged_before, Some(at(100)));

    let (journal, end) = newest_journal(dir.path());
    std::fs::OpenOptions::new()
        .write(true)
        .open(&journal)
        .and_then(|file| file.set_len(end / 2))
        .expect("truncates the journal");

    let refused = EventStore::open(dir.path()).err().expect("refused");
    let OpenError::DataLoss(loss) = &refused else {
        panic!("not a data loss: {refused}");
    };
    let (from, to) = loss.missing();
    assert!(
        from > 1 && from <= last && to == last,
        "{from}..{to} of {last}"
    );
    assert!(loss.behind.iter().any(|behind| behind.keyspace == "events"));
    let text = refused.to_string();
    for expected in [
        "acknowledged writes are missing",
        &format!("sequence numbers {from} to {last} are lost"),
        &journal.display().to_string(),
        "--accept-data-loss",
    ] {
        assert!(text.contains(expected), "{expected:?} not in: {text}");
    }
    // Refusing changed nothing: refused again, the same way.
    assert!(matches!(
        EventStore::open(dir.path()),
        Err(OpenError::DataLoss(again)) if again.missing() == (from, to)
    ));

    // Inspecting reports it and writes no mark.
    let inspected = EventStore::open_with(dir.path(), OpenOptions::inspect()).expect("opens");
    assert_eq!(
        inspected.loss.as_ref().map(DataLoss::missing),
        Some((from, to))
    );
    let inspector = inspected.store.clone();
    assert_eq!(
        inspector.load_monitors().expect("loads").len(),
        from as usize - 1
    );
    close(inspected, inspector).await;
    assert_eq!(mark::read(dir.path()).expect("reads"), Some(mark));

    // Accepted: what is left opens, and new sequence numbers start above the mark.
    let accept = OpenOptions {
        accept_data_loss: true,
        ..OpenOptions::default()
    };
    let opened = EventStore::open_with(dir.path(), accept).expect("opens with the loss accepted");
    let store = opened.store.clone();
    assert_eq!(
        store.load_monitors().expect("loads").len(),
        from as usize - 1
    );
    let created = create(&store, "after the loss", at(200)).await;
    assert_eq!(created.last_seq, last + 1, "never a sequence number twice");
    // Written before every event, the installation id is in what is left.
    assert_eq!(store.installation_id().expect("an id"), installation);
    close(opened, store).await;
    // And from then on it opens as any store does.
    let opened = EventStore::open(dir.path()).expect("reopens");
    let store = opened.store.clone();
    assert_eq!(store.load_monitors().expect("loads").len(), from as usize);
    close(opened, store).await;
}

#[tokio::test]
async fn a_deleted_journal_or_store_directory_is_refused_and_a_missing_store_is_not_created() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (last, installation) = filled_store(dir.path(), 5).await;
    let (journal, _) = newest_journal(dir.path());
    std::fs::remove_file(&journal).expect("removes the journal");
    let Err(OpenError::DataLoss(loss)) = EventStore::open(dir.path()) else {
        panic!("a store without its journal opened");
    };
    assert_eq!(loss.missing(), (1, last));

    std::fs::remove_dir_all(dir.path().join("fjall")).expect("removes the store");
    let Err(OpenError::DataLoss(loss)) = EventStore::open(dir.path()) else {
        panic!("a missing store was recreated");
    };
    assert!(loss.store_missing);
    assert!(loss.to_string().contains("is missing"), "{loss}");
    assert!(
        !dir.path().join("fjall").exists(),
        "refusing creates nothing"
    );
    assert!(matches!(
        EventStore::open_with(dir.path(), OpenOptions::inspect()),
        Err(OpenError::DataLoss(_))
    ));

    let accept = OpenOptions {
        accept_data_loss: true,
        ..OpenOptions::default()
    };
    let opened = EventStore::open_with(dir.path(), accept).expect("an empty store");
    let store = opened.store.clone();
    assert!(store.load_monitors().expect("loads").is_empty());
    assert_eq!(create(&store, "new", at(9)).await.last_seq, last + 1);
    // A new store, a new installation id: with the sequence numbers above the mark,
    // no alert id of the lost store comes again.
    assert_ne!(store.installation_id().expect("an id"), installation);
    close(opened, store).await;

    let empty = tempfile::tempdir().expect("temp dir");
    assert!(matches!(
        EventStore::open_with(&empty.path().join("none"), OpenOptions::inspect()),
        Err(OpenError::NoStore(_))
    ));
    assert!(!empty.path().join("none").exists());
}

#[tokio::test]
async fn reopening_after_a_clean_close_or_a_drop_without_close_is_never_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    for round in 0..5i64 {
        let opened = EventStore::open(dir.path()).expect("never refused");
        let store = opened.store.clone();
        let mut monitor = create(&store, "m", at(round * 10)).await;
        for n in 0..20 {
            run(
                &store,
                &mut monitor,
                beat(PushStatus::Up, "x"),
                at(round * 10 + n),
            )
            .await;
            if n % 7 == 0 {
                store.mark_alive(at(round * 10 + n));
            }
        }
        if round % 2 == 0 {
            close(opened, store).await;
        } else {
            // As a crash leaves it: the writer stops without a final mark.
            drop(store);
            drop(opened.store);
            opened.writer_thread.join().expect("writer ends");
        }
        let recovered = mark::read(dir.path()).expect("reads").expect("a mark");
        assert!(recovered.seqs.max() <= monitor.last_seq);
    }
}

/// A webhook channel, created in the store.
async fn stored_channel(store: &EventStore, now: Timestamp) -> crate::domain::ids::ChannelId {
    use crate::domain::channel::{Channel, ChannelEvent, ChannelKind};
    let id = crate::domain::ids::ChannelId::generate(now);
    let channel = Channel {
        id,
        name: "hook".to_owned(),
        kind: ChannelKind::Webhook {
            url: "http://127.0.0.1:1/".to_owned(),
            secret: None,
        },
        created_at: now,
        key: None,
        send_on: crate::domain::channel::SendOn::Both,
    };
    store
        .write_channel(id, now, ChannelEvent::Created(channel))
        .await
        .expect("channel written");
    id
}

/// A configuration change to these channels.
fn with_channels(channels: Vec<crate::domain::ids::ChannelId>) -> Command {
    Command::Update(crate::domain::machine::ConfigPatch {
        channels: Some(channels),
        ..Default::default()
    })
}

/// Decides, persists with the deliveries it owes (as an actor would, to each of the
/// monitor's channels that exists), then applies.
async fn run_owing(store: &EventStore, monitor: &mut Monitor, command: Command, now: Timestamp) {
    let events = decide(monitor, command, now);
    let mut next = monitor.clone();
    for stamped in &events {
        apply(&mut next, 0, stamped.at, &stamped.event);
    }
    let existing: Vec<_> = store
        .load_channels()
        .expect("channels")
        .into_iter()
        .map(|channel| channel.id)
        .collect();
    let owed = crate::domain::alert::owed_deliveries(&next, &events, |c, _| existing.contains(&c));
    let mut append = Append::new(monitor.id, events, Some(next.clone()).into());
    append.owed = owed;
    next.last_seq = store
        .append_with(append)
        .await
        .expect("append succeeds")
        .last_seq;
    *monitor = next;
}

#[tokio::test]
async fn a_deleted_monitors_history_goes_once_its_deletion_is_older_than_the_max_age() {
    let dir = tempfile::tempdir().expect("temp dir");
    let opened = EventStore::open(dir.path()).expect("opens");
    let store = opened.store.clone();
    let channel = stored_channel(&store, at(0)).await;
    let mut live = create(&store, "live", at(0)).await;
    let mut gone = create(&store, "gone", at(0)).await;
    let mut owing = create(&store, "owing", at(0)).await;
    run(&store, &mut owing, with_channels(vec![channel]), at(0)).await;
    for monitor in [&mut live, &mut gone, &mut owing] {
        for n in 0..5 {
            run(
                &store,
                monitor,
                beat(PushStatus::Up, &format!("b{n}")),
                at(1 + n),
            )
            .await;
        }
    }
    // `owing` goes down with an alert owed to a channel, then is deleted.
    run_owing(&store, &mut owing, beat(PushStatus::Down, "bad"), at(8)).await;
    let owed = store.load_outbox().expect("outbox");
    assert_eq!(owed.len(), 1);
    run(&store, &mut gone, Command::Delete, at(10)).await;
    run(&store, &mut owing, Command::Delete, at(10)).await;
    // A leftover: an outcome recorded for a monitor whose history is already gone.
    let stray = MonitorId::generate(at(11));
    store
        .append(
            stray,
            vec![Stamped {
                at: at(11),
                event: Event::Paused,
            }],
            None,
        )
        .await
        .expect("append");
    let history_len = |id| {
        let store = store.clone();
        async move { store.history(id, 1000, None).await.expect("reads").len() }
    };
    // Created, 5 heartbeats, the first one's `up`, deleted.
    assert_eq!(history_len(gone.id).await, 8);

    let retention = Retention {
        max_heartbeats: None,
        max_age: Some(std::time::Duration::from_secs(50)),
    };
    // 40 s after the deletion: too recent; only the leftover goes.
    let swept = store.sweep(retention, at(50), || true).expect("sweeps");
    assert_eq!(swept.removed_histories, 1, "{swept:?}");
    assert_eq!(history_len(stray).await, 0);
    assert_eq!(history_len(gone.id).await, 8);

    // Older than the max age: the deleted history goes whole, but not while the
    // outbox owes one of its alerts.
    let swept = store.sweep(retention, at(61), || true).expect("sweeps");
    assert_eq!(swept.removed_histories, 1, "{swept:?}");
    assert_eq!(history_len(gone.id).await, 0, "removed whole");
    assert!(history_len(owing.id).await > 0, "kept for the owed alert");
    assert_eq!(store.load_outbox().expect("outbox"), owed);
    let outcome = crate::domain::event::DeliveryOutcome {
        channel,
        alert_seq: owed[0].alert.alert_seq,
        attempts: 1,
        error: None,
    };
    store
        .settle_orphan(owing.id, outcome, at(61))
        .await
        .expect("settles");
    let swept = store.sweep(retention, at(62), || true).expect("sweeps");
    assert_eq!(swept.removed_histories, 1, "{swept:?}");
    assert_eq!(history_len(owing.id).await, 0);
    // The live monitor keeps its history and state.
    assert_eq!(
        store
            .replay_all()
            .expect("replays")
            .into_values()
            .collect::<Vec<_>>(),
        vec![live.clone()]
    );
    assert!(history_len(live.id).await >= 3);
    close(opened, store).await;
}

#[tokio::test]
async fn without_an_age_limit_a_deleted_monitor_keeps_all_but_its_oldest_heartbeats() {
    let dir = tempfile::tempdir().expect("temp dir");
    let opened = EventStore::open(dir.path()).expect("opens");
    let store = opened.store.clone();
    let mut gone = create(&store, "gone", at(0)).await;
    for n in 0..10 {
        run(
            &store,
            &mut gone,
            beat(PushStatus::Up, &format!("b{n}")),
            at(1 + n),
        )
        .await;
    }
    run(&store, &mut gone, Command::Delete, at(20)).await;
    let retention = Retention {
        max_heartbeats: Some(3),
        max_age: None,
    };
    let swept = store.sweep(retention, at(10_000), || true).expect("sweeps");
    assert_eq!(
        (swept.removed_histories, swept.deleted),
        (0, 6),
        "{swept:?}"
    );
    let history = store.history(gone.id, 1000, None).await.expect("reads");
    assert_eq!(heartbeat_msgs(&history), ["b0", "b7", "b8", "b9"]);
    close(opened, store).await;
}

#[tokio::test]
async fn retention_keeps_the_heartbeats_an_owed_alert_carries() {
    let dir = tempfile::tempdir().expect("temp dir");
    let opened = EventStore::open(dir.path()).expect("opens");
    let store = opened.store.clone();
    let channel = stored_channel(&store, at(0)).await;
    let mut monitor = create(&store, "m", at(0)).await;
    run(&store, &mut monitor, with_channels(vec![channel]), at(0)).await;
    run(
        &store,
        &mut monitor,
        beat_with(PushStatus::Up, "valued", Some(3.0)),
        at(1),
    )
    .await;
    run(
        &store,
        &mut monitor,
        beat_with(PushStatus::Up, "plain", None),
        at(2),
    )
    .await;
    run_owing(
        &store,
        &mut monitor,
        Command::CheckDeadline { hold: false },
        at(40),
    )
    .await;
    assert_eq!(monitor.status, crate::domain::machine::Status::Down);
    for n in 0..5 {
        run(
            &store,
            &mut monitor,
            beat_with(PushStatus::Down, &format!("d{n}"), None),
            at(41 + n),
        )
        .await;
    }
    let retention = Retention {
        max_heartbeats: Some(1),
        max_age: None,
    };
    store.sweep(retention, at(100), || true).expect("sweeps");
    let history = store.history(monitor.id, 1000, None).await.expect("reads");
    assert_eq!(heartbeat_msgs(&history), ["valued", "plain", "d4"]);
    close(opened, store).await;
}

/// What the server starts from, as the replay keys it.
fn stored_state(store: &EventStore) -> super::replay::Replayed {
    let replayed = store.replay().expect("replays");
    super::replay::Replayed {
        monitors: store
            .load_monitors()
            .expect("monitors")
            .into_iter()
            .map(|monitor| (monitor.id, monitor))
            .collect(),
        channels: store
            .load_channels()
            .expect("channels")
            .into_iter()
            .map(|channel| (channel.id, channel))
            .collect(),
        api_keys: store
            .load_api_keys()
            .expect("keys")
            .into_iter()
            .map(|key| (key.id, key))
            .collect(),
        publications: store
            .load_publications()
            .expect("publications")
            .into_iter()
            .map(|publication| (publication.record_id(), publication))
            .collect(),
        outbox: store
            .load_outbox()
            .expect("outbox")
            .into_iter()
            .filter(|delivery| delivery.alert.alert_seq >= replayed.outbox_from)
            .map(|delivery| ((delivery.alert.alert_seq, delivery.channel), delivery))
            .collect(),
        outbox_from: replayed.outbox_from,
        events: replayed.events,
    }
}

fn api_key(n: u8, now: Timestamp) -> crate::domain::api_key::ApiKey {
    crate::domain::api_key::ApiKey {
        id: crate::domain::api_key::ApiKeyId::generate(now),
        name: format!("key {n}"),
        scope: crate::domain::api_key::Scope::Read,
        created_at: now,
        digest: [n; 32],
    }
}

#[tokio::test]
async fn channels_keys_and_the_outbox_replay_from_the_logs_alone() {
    use crate::domain::channel::ChannelEvent;
    use crate::domain::event::DeliveryOutcome;
    let dir = tempfile::tempdir().expect("temp dir");
    let opened = EventStore::open(dir.path()).expect("opens");
    let store = opened.store.clone();
    let kept = stored_channel(&store, at(0)).await;
    let dropped = stored_channel(&store, at(0)).await;
    let mut renamed = store.load_channels().expect("channels")[0].clone();
    renamed.name = "renamed".to_owned();
    store
        .write_channel(renamed.id, at(1), ChannelEvent::Updated(renamed))
        .await
        .expect("update");
    let keep_key = api_key(1, at(1));
    let revoke_key = api_key(2, at(1));
    store.put_api_key(&keep_key).await.expect("put");
    store.put_api_key(&revoke_key).await.expect("put");
    store.remove_api_key(revoke_key.id).await.expect("revoke");
    store
        .remove_api_key(revoke_key.id)
        .await
        .expect("revoking again is nothing");

    let mut monitor = create(&store, "alerting", at(2)).await;
    run(
        &store,
        &mut monitor,
        with_channels(vec![kept, dropped]),
        at(0),
    )
    .await;
    run(
        &store,
        &mut monitor,
        beat_with(PushStatus::Up, "hi", Some(2.0)),
        at(3),
    )
    .await;
    // Down: owed to both channels.
    run_owing(&store, &mut monitor, beat(PushStatus::Down, "x"), at(4)).await;
    let down_seq = monitor.last_seq;
    // The actor records one outcome (its event settles the entry).
    let outcome = DeliveryOutcome {
        channel: kept,
        alert_seq: down_seq,
        attempts: 1,
        error: None,
    };
    let events = decide(&monitor, Command::RecordDelivery(outcome.clone()), at(5));
    let mut append = Append::new(monitor.id, events, Some(monitor.clone()).into());
    append.settled = Some((down_seq, kept));
    monitor.last_seq = store.append_with(append).await.expect("records").last_seq;
    // A channel deleted in the log before the next alert is owed nothing, even by an
    // actor that still thinks it exists.
    store
        .write_channel(dropped, at(6), ChannelEvent::Deleted)
        .await
        .expect("delete");
    let events = decide(&monitor, beat(PushStatus::Up, "back"), at(7));
    let mut next = monitor.clone();
    for stamped in &events {
        apply(&mut next, 0, stamped.at, &stamped.event);
    }
    let mut append = Append::new(monitor.id, events.clone(), Some(next.clone()).into());
    append.owed = crate::domain::alert::owed_deliveries(&next, &events, |_, _| true);
    assert_eq!(append.owed.len(), 2);
    next.last_seq = store.append_with(append).await.expect("append").last_seq;
    monitor = next;
    let up_seq = monitor.last_seq;
    let owed: Vec<_> = store
        .load_outbox()
        .expect("outbox")
        .into_iter()
        .filter(|delivery| delivery.alert.alert_seq == up_seq)
        .collect();
    assert_eq!(
        owed.iter()
            .map(|delivery| delivery.channel)
            .collect::<Vec<_>>(),
        [kept],
        "the up is owed to the channel that exists only"
    );
    // Deleted with its up still owed; the outcome is recorded in its log.
    run(&store, &mut monitor, Command::Delete, at(8)).await;
    store
        .settle_orphan(
            monitor.id,
            DeliveryOutcome {
                channel: kept,
                alert_seq: owed[0].alert.alert_seq,
                attempts: 2,
                error: Some("500".to_owned()),
            },
            at(9),
        )
        .await
        .expect("settles");
    // One more monitor with an alert still owed at the end.
    let mut other = create(&store, "other", at(10)).await;
    run(&store, &mut other, with_channels(vec![kept]), at(0)).await;
    run_owing(&store, &mut other, beat(PushStatus::Down, "y"), at(11)).await;
    close(opened, store).await;

    let opened = EventStore::open(dir.path()).expect("reopens");
    let store = opened.store.clone();
    let replayed = store.replay().expect("replays");
    assert_eq!(replayed, stored_state(&store));
    assert_eq!(replayed.channels.len(), 1);
    assert_eq!(replayed.channels[&kept].name, "renamed");
    assert_eq!(replayed.api_keys.keys().collect::<Vec<_>>(), [&keep_key.id]);
    // Owed: the first down to the deleted channel (never delivered), and other's down.
    assert_eq!(
        replayed.outbox.keys().collect::<Vec<_>>(),
        [&(down_seq, dropped), &(other.last_seq, kept)]
    );
    close(opened, store).await;
}

#[tokio::test]
async fn keys_recorded_before_keys_had_a_log_get_their_creation_event_on_first_open() {
    let dir = tempfile::tempdir().expect("temp dir");
    let old_key = api_key(3, at(0));
    {
        let opened = EventStore::open(dir.path()).expect("opens");
        let store = opened.store.clone();
        store.put_api_key(&old_key).await.expect("put");
        // As an older version left it: a record, no log, no `replayable_from`.
        let handles = store.shared.handles().expect("open");
        let mut batch = handles
            .db
            .batch()
            .durability(Some(fjall::PersistMode::SyncData));
        for guard in handles.api_key_events.range(layout::FIRST_RECORD..) {
            batch.remove(&handles.api_key_events, guard.key().expect("key"));
        }
        batch.remove(&handles.meta, layout::META_REPLAYABLE_FROM);
        batch.commit().expect("commit");
        drop(handles);
        assert!(store.replay().expect("replays").api_keys.is_empty());
        close(opened, store).await;
    }
    let opened = EventStore::open(dir.path()).expect("reopens");
    let store = opened.store.clone();
    let replayed = store.replay().expect("replays");
    assert_eq!(
        replayed.api_keys.into_values().collect::<Vec<_>>(),
        vec![old_key.clone()]
    );
    assert!(replayed.outbox_from > 1);
    // Only once: a second open adds nothing.
    let events = replayed.events;
    close(opened, store).await;
    let opened = EventStore::open(dir.path()).expect("reopens");
    let store = opened.store.clone();
    assert_eq!(store.replay().expect("replays").events, events);
    close(opened, store).await;
}

#[tokio::test]
async fn a_store_without_an_installation_id_gets_one_when_served_not_when_inspected() {
    let dir = tempfile::tempdir().expect("temp dir");
    // As a version before installation ids left it.
    let opened = EventStore::open(dir.path()).expect("opens");
    let store = opened.store.clone();
    create(&store, "m", at(0)).await;
    let handles = store.shared.handles().expect("handles");
    let mut batch = handles
        .db
        .batch()
        .durability(Some(fjall::PersistMode::SyncData));
    batch.remove(&handles.meta, layout::META_INSTALLATION_ID);
    batch.commit().expect("commit");
    drop(handles);
    close(opened, store).await;

    let inspected = EventStore::open_with(dir.path(), OpenOptions::inspect()).expect("inspects");
    let inspector = inspected.store.clone();
    assert!(
        inspector.installation_id().is_err(),
        "inspecting writes no id"
    );
    close(inspected, inspector).await;
    let opened = EventStore::open(dir.path()).expect("reopens, not refused by its mark");
    let store = opened.store.clone();
    assert!(store.installation_id().is_ok());
    close(opened, store).await;
}

fn job_signal(
    kind: crate::domain::signal::SignalKind,
    rid: Option<u8>,
    exit: Option<u8>,
) -> Command {
    use crate::domain::event::{Output, RunId};
    use crate::domain::signal::Signal;
    Command::Signal(Box::new(Signal {
        rid: rid.map(|n| RunId::from_bytes([n; 16])),
        exit_status: exit,
        output: Output::from_body(b"some output", 10_000),
        ..Signal::new(kind)
    }))
}

/// Retention prunes a job's run starts, run ends and logs like heartbeats, but keeps
/// the start of a run still open, the newest run end and the newest `down`
/// heartbeat: the pruned log replays to the state.
#[tokio::test]
async fn retention_keeps_the_run_events_the_state_depends_on() {
    use crate::domain::signal::SignalKind;
    let dir = tempfile::tempdir().expect("temp dir");
    let opened = EventStore::open(dir.path()).expect("opens");
    let store = opened.store.clone();
    let mut monitor = create(&store, "runs", at(0)).await;
    // A run that never ends.
    run(
        &store,
        &mut monitor,
        job_signal(SignalKind::Start, Some(1), None),
        at(1),
    )
    .await;
    for n in 0..6 {
        let t = 10 + 10 * n;
        run(
            &store,
            &mut monitor,
            job_signal(SignalKind::Start, None, None),
            at(t),
        )
        .await;
        run(
            &store,
            &mut monitor,
            job_signal(SignalKind::Log, None, None),
            at(t + 1),
        )
        .await;
        let exit = if n == 2 { 3 } else { 0 };
        run(
            &store,
            &mut monitor,
            job_signal(SignalKind::Success, None, Some(exit)),
            at(t + 2),
        )
        .await;
    }
    assert_eq!(monitor.runs.len(), 1);
    let retention = Retention {
        max_heartbeats: Some(2),
        max_age: None,
    };
    let deleted = store.prune(monitor.id, retention, at(100)).expect("prunes");
    assert!(deleted > 10, "{deleted}");
    let kept: Vec<(u64, &'static str)> = store
        .history(monitor.id, 1000, None)
        .await
        .expect("history")
        .into_iter()
        .rev()
        .filter(|recorded| recorded.event.is_ping())
        .map(|recorded| (recorded.seq, recorded.event.kind().unwrap_or("?")))
        .collect();
    let kinds: Vec<&str> = kept.iter().map(|(_, kind)| *kind).collect();
    // The open run's start, the `down` heartbeat of the failed run (counted
    // successes start after it), the first success (out of pending), and the newest
    // two pings (the last run's heartbeat and end, also the newest `up` and end).
    assert_eq!(
        kinds,
        [
            "run_started",
            "heartbeat",
            "heartbeat",
            "heartbeat",
            "run_ended"
        ],
        "{kept:?}"
    );
    let replayed = store.replay_all().expect("replays");
    assert_eq!(replayed.get(&monitor.id), Some(&monitor));
    close(opened, store).await;
}

/// A store written in format 2 (its events and snapshot as the format-2 code wrote
/// them: the fixtures, and heartbeats whose layout did not change): readers rebuild
/// the snapshot from the log, whose upcast cannot know the last success or why the
/// monitor is down; a served open writes it once in the current format; `inspect`
/// writes nothing.
#[tokio::test]
async fn a_format_2_snapshot_is_rebuilt_from_its_log() {
    use crate::domain::event::DownReason;
    let dir = tempfile::tempdir().expect("temp dir");
    let id = MonitorId::from_bytes([1; 16]);
    let beat_at = Timestamp::from_millis(1_764_106_200_000);
    {
        let opened = EventStore::open(dir.path()).expect("opens");
        let store = opened.store.clone();
        let handles = store.shared.handles().expect("open");
        let mut heartbeat = super::codec::encode_event(&super::codec::StoredEvent {
            at: beat_at,
            event: Event::HeartbeatReceived(Heartbeat {
                status: PushStatus::Up,
                msg: Some(HeartbeatText::truncated("ok".to_owned())),
                value: Some(2.5),
                instance: None,
            }),
        })
        .expect("encodes");
        // A version 2 heartbeat: today's, less the instance (its last byte, `None`).
        assert_eq!(heartbeat.pop(), Some(0));
        heartbeat[0] = 2;
        let mut batch = handles
            .db
            .batch()
            .durability(Some(fjall::PersistMode::SyncData));
        let created: &[u8] = include_bytes!("fixtures/v2_created.bin");
        let down: &[u8] = include_bytes!("fixtures/v2_went_down.bin");
        batch.insert(&handles.events, layout::event_key(id, 40), created);
        batch.insert(&handles.events, layout::event_key(id, 41), heartbeat);
        batch.insert(&handles.events, layout::event_key(id, 42), down);
        let snapshot: &[u8] = include_bytes!("fixtures/v2_monitor.bin");
        batch.insert(&handles.monitors, layout::monitor_key(id), snapshot);
        batch.commit().expect("commit");
        drop(handles);
        close(opened, store).await;
    }
    let raw_snapshot = |store: &EventStore| {
        store
            .shared
            .handles()
            .expect("open")
            .monitors
            .get(layout::monitor_key(id))
            .expect("reads")
            .expect("a snapshot")[0]
    };
    // Inspected: rebuilt for the reader, left as it is on disk.
    let opened = EventStore::open_with(dir.path(), super::OpenOptions::inspect()).expect("opens");
    let store = opened.store.clone();
    let loaded = store.load_monitors().expect("loads");
    assert_eq!(raw_snapshot(&store), 2);
    let replayed = store.replay_all().expect("replays");
    assert_eq!(loaded.first(), replayed.get(&id));
    let rebuilt = loaded.first().expect("a monitor");
    assert_eq!(rebuilt.status, crate::domain::machine::Status::Down);
    assert_eq!(rebuilt.last_down_reason, Some(DownReason::Manual));
    assert!(rebuilt.alerted_down);
    assert_eq!(rebuilt.last_success_at, Some(beat_at));
    assert_eq!(rebuilt.last_seq, 42);
    close(opened, store).await;
    // Served: written once in the current format, equal to the replay.
    let opened = EventStore::open(dir.path()).expect("opens");
    let store = opened.store.clone();
    assert_eq!(raw_snapshot(&store), super::codec::CURRENT_VERSION);
    assert!(
        !super::codec::snapshot_needs_its_log(&[3]) && !super::codec::snapshot_needs_its_log(&[4]),
        "versions 4 and 5 changed no state a log holds"
    );
    assert_eq!(
        store.load_monitors().expect("loads").first(),
        store.replay_all().expect("replays").get(&id)
    );
    close(opened, store).await;
}

/// A version 3 snapshot upcasts whole (version 4 changed channels only, version 5
/// added only labels and severity), so it is not rebuilt from its log: a served open rewrites it in the current format
/// from its upcast. To show which path is read, the log here holds only the monitor's
/// `created`, whose replay would be a `pending` monitor, while the snapshot says
/// `down`.
#[tokio::test]
async fn a_format_3_snapshot_is_upcast_not_rebuilt() {
    let dir = tempfile::tempdir().expect("temp dir");
    let id = MonitorId::from_bytes([1; 16]);
    {
        let opened = EventStore::open(dir.path()).expect("opens");
        let store = opened.store.clone();
        let handles = store.shared.handles().expect("open");
        let mut batch = handles
            .db
            .batch()
            .durability(Some(fjall::PersistMode::SyncData));
        let created: &[u8] = include_bytes!("fixtures/v3_created.bin");
        batch.insert(&handles.events, layout::event_key(id, 40), created);
        let snapshot: &[u8] = include_bytes!("fixtures/v3_monitor.bin");
        batch.insert(&handles.monitors, layout::monitor_key(id), snapshot);
        batch.commit().expect("commit");
        drop(handles);
        close(opened, store).await;
    }
    let upcast =
        super::codec::decode_monitor(include_bytes!("fixtures/v3_monitor.bin")).expect("decodes");
    let opened = EventStore::open(dir.path()).expect("opens");
    let store = opened.store.clone();
    let raw = store
        .shared
        .handles()
        .expect("open")
        .monitors
        .get(layout::monitor_key(id))
        .expect("reads")
        .expect("a snapshot");
    assert_eq!(raw[0], super::codec::CURRENT_VERSION);
    let loaded = store.load_monitors().expect("loads");
    assert_eq!(loaded.first(), Some(&upcast));
    assert_eq!(upcast.status, crate::domain::machine::Status::Down);
    close(opened, store).await;
}

/// A channel told about `send_on` alerts only, created or changed in the store.
async fn channel_sending_on(
    store: &EventStore,
    id: crate::domain::ids::ChannelId,
    send_on: crate::domain::channel::SendOn,
    now: Timestamp,
    created: bool,
) {
    use crate::domain::channel::{Channel, ChannelEvent, ChannelKind};
    let channel = Channel {
        id,
        name: format!("{send_on:?}"),
        kind: ChannelKind::Webhook {
            url: "http://127.0.0.1:1/".to_owned(),
            secret: None,
        },
        created_at: now,
        key: None,
        send_on,
    };
    let event = if created {
        ChannelEvent::Created(channel)
    } else {
        ChannelEvent::Updated(channel)
    };
    store
        .write_channel(id, now, event)
        .await
        .expect("channel written");
}

/// `send_on`: the writer owes a channel only the alerts it takes, with its setting
/// as the log orders it (a change applies to alerts after it), answers with what it
/// wrote, and the logs alone replay to the same outbox.
#[tokio::test]
async fn the_writer_owes_a_channel_only_the_alerts_its_send_on_takes() {
    use crate::domain::alert::AlertKind;
    use crate::domain::channel::SendOn;
    use crate::domain::ids::ChannelId;
    let dir = tempfile::tempdir().expect("temp dir");
    let opened = EventStore::open(dir.path()).expect("opens");
    let store = opened.store.clone();
    let both = ChannelId::generate(at(0));
    let down = ChannelId::generate(at(0));
    let up = ChannelId::generate(at(0));
    channel_sending_on(&store, both, SendOn::Both, at(0), true).await;
    channel_sending_on(&store, down, SendOn::Down, at(0), true).await;
    channel_sending_on(&store, up, SendOn::Up, at(0), true).await;
    let mut monitor = create(&store, "m", at(0)).await;
    run(
        &store,
        &mut monitor,
        with_channels(vec![both, down, up]),
        at(0),
    )
    .await;

    // Proposed to every channel, as the actor does; the writer keeps what is owed.
    let owed_by = |store: &EventStore, monitor: &Monitor, command: Command, now: Timestamp| {
        let events = decide(monitor, command, now);
        let mut next = monitor.clone();
        for stamped in &events {
            apply(&mut next, 0, stamped.at, &stamped.event);
        }
        let mut append = Append::new(monitor.id, events.clone(), Some(next.clone()).into());
        append.owed = crate::domain::alert::owed_deliveries(monitor, &events, |_, _| true);
        let store = store.clone();
        async move {
            let appended = store.append_with(append).await.expect("appends");
            next.last_seq = appended.last_seq;
            (next, appended.owed)
        }
    };
    let (next, written) = owed_by(&store, &monitor, beat(PushStatus::Down, "bad"), at(1)).await;
    monitor = next;
    let channels: Vec<ChannelId> = written.iter().map(|(_, d)| d.channel).collect();
    assert_eq!(channels, vec![both, down]);
    assert!(written.iter().all(|(_, d)| d.alert.kind == AlertKind::Down));
    assert!(
        written
            .iter()
            .all(|(_, d)| d.alert.alert_seq == monitor.last_seq)
    );

    // The up-only channel becomes down-only before the recovery: it is owed nothing.
    channel_sending_on(&store, up, SendOn::Down, at(2), false).await;
    let (next, written) = owed_by(&store, &monitor, beat(PushStatus::Up, "ok"), at(3)).await;
    monitor = next;
    let channels: Vec<ChannelId> = written.iter().map(|(_, d)| d.channel).collect();
    assert_eq!(channels, vec![both]);

    let outbox = store.load_outbox().expect("outbox");
    assert_eq!(outbox.len(), 3, "{outbox:?}");
    let replayed = store.replay().expect("replays");
    let stored: Vec<_> = outbox
        .iter()
        .map(|delivery| (delivery.alert.alert_seq, delivery.channel))
        .collect();
    let from_logs: Vec<_> = replayed.outbox.keys().copied().collect();
    assert_eq!(from_logs, stored);
    assert_eq!(replayed.channels[&up].send_on, SendOn::Down);
    drop(monitor);
    close(opened, store).await;

    // Reopened, the writer reads each channel's send_on back from its record.
    let opened = EventStore::open(dir.path()).expect("reopens");
    let store = opened.store.clone();
    let mut monitor = store.load_monitors().expect("loads").remove(0);
    let (next, written) = owed_by(&store, &monitor, beat(PushStatus::Down, "again"), at(5)).await;
    monitor = next;
    let channels: Vec<ChannelId> = written.iter().map(|(_, d)| d.channel).collect();
    assert_eq!(channels, vec![both, down, up]);
    drop(monitor);
    close(opened, store).await;
}

#[tokio::test]
async fn retention_keeps_the_newest_heartbeat_of_each_instance_a_fleet_keeps() {
    let dir = tempfile::tempdir().expect("temp dir");
    let opened = EventStore::open(dir.path()).expect("opens");
    let store = opened.store.clone();
    let mut monitor = create(&store, "fleet", at(0)).await;
    let fleet = crate::domain::machine::ConfigPatch {
        min_instances: Some(Some(1)),
        ..crate::domain::machine::ConfigPatch::default()
    };
    run(&store, &mut monitor, Command::Update(fleet), at(1)).await;
    let from = |instance: &str, msg: &str| {
        Command::Heartbeat(Heartbeat {
            instance: crate::domain::event::InstanceName::parse(instance),
            ..Heartbeat::new(
                PushStatus::Up,
                Some(HeartbeatText::truncated(msg.to_owned())),
                None,
            )
        })
    };
    run(&store, &mut monitor, from("b", "b once"), at(2)).await;
    run(&store, &mut monitor, from("c", "c once"), at(3)).await;
    for n in 0..6 {
        run(
            &store,
            &mut monitor,
            from("a", &format!("a {n}")),
            at(4 + n),
        )
        .await;
    }
    assert_eq!(monitor.instances.len(), 3);
    let retention = Retention {
        max_heartbeats: Some(2),
        max_age: None,
    };
    store.prune(monitor.id, retention, at(100)).expect("prunes");
    let after = store
        .history(monitor.id, 1000, None)
        .await
        .expect("history");
    assert_eq!(
        heartbeat_msgs(&after),
        ["b once", "c once", "a 4", "a 5"],
        "the newest 2, and each instance's newest"
    );
    let replayed = store.replay_all().expect("replays");
    assert_eq!(replayed.get(&monitor.id), Some(&monitor));
    close(opened, store).await;
}

/// The clustered mode's fold: heartbeats folded from a stream and the stream's
/// position are one batch, and both are there after a reopen (where a restarted pod
/// resumes its fold from).
#[tokio::test]
async fn folded_heartbeats_and_their_streams_position_are_written_together_and_survive_a_reopen() {
    let dir = tempfile::tempdir().expect("temp dir");
    let opened = EventStore::open(dir.path()).expect("opens");
    let store = opened.store.clone();
    let monitor = create(&store, "folded", at(0)).await;
    assert!(store.cluster_positions().expect("reads").is_empty());
    let (answers, position) = store
        .append_folded(
            vec![
                (monitor.id, at(1), plain(PushStatus::Up, "first")),
                (monitor.id, at(2), plain(PushStatus::Up, "second")),
            ],
            FoldPosition {
                stream: 3,
                sequence: 41,
            },
        )
        .await;
    assert!(answers.iter().all(Result::is_ok), "{answers:?}");
    position.expect("the position is written");
    // A chunk of ownership records only: the position alone.
    let (answers, position) = store
        .append_folded(
            Vec::new(),
            FoldPosition {
                stream: 0,
                sequence: 7,
            },
        )
        .await;
    assert!(answers.is_empty());
    position.expect("the position is written");
    let (_, position) = store
        .append_folded(
            Vec::new(),
            FoldPosition {
                stream: 3,
                sequence: 45,
            },
        )
        .await;
    position.expect("the position is written");
    let expected = std::collections::BTreeMap::from([(0, 7), (3, 45)]);
    assert_eq!(store.cluster_positions().expect("reads"), expected);
    // Golden bytes: the stored value is the sequence, big-endian.
    let raw = store
        .shared
        .handles()
        .expect("open")
        .meta
        .get(b"cluster_position/\x00\x03")
        .expect("reads")
        .expect("stored");
    assert_eq!(&raw[..], [0, 0, 0, 0, 0, 0, 0, 45]);
    let history = store.history(monitor.id, 10, None).await.expect("reads");
    assert_eq!(heartbeat_msgs(&history), ["first", "second"]);
    close(opened, store).await;

    let opened = EventStore::open(dir.path()).expect("reopens");
    let store = opened.store.clone();
    assert_eq!(store.cluster_positions().expect("reads"), expected);
    let history = store.history(monitor.id, 10, None).await.expect("reads");
    assert_eq!(heartbeat_msgs(&history), ["first", "second"]);
    close(opened, store).await;
}

/// The clustered mode's fold: a folded record's local write (a decision's events, a
/// channel change, an API key) and its stream's position are one batch. Cut the
/// journal anywhere (a crash at any point of the writes): the reopened store holds a
/// record's write exactly when its position covers it, so a restarted fold, which
/// applies only what follows the position, applies each record once. The way it
/// was before (the position stored after the record, in a batch of its own) leaves
/// cuts that hold a record without its position: applied again after a restart.
#[tokio::test]
async fn a_folded_records_write_and_its_streams_position_survive_any_crash_together() {
    let together = crash_anywhere(true).await;
    assert!(
        together.iter().all(|(_, consistent)| *consistent),
        "{together:?}"
    );
    let positions: std::collections::BTreeSet<u64> =
        together.iter().map(|(position, _)| *position).collect();
    // The cuts fell before, between and after the records.
    assert!(
        positions.contains(&0) && positions.contains(&120),
        "{positions:?}"
    );
    assert!(positions.len() > 6, "{positions:?}");
    let apart = crash_anywhere(false).await;
    assert!(
        apart.iter().any(|(_, consistent)| !consistent),
        "a position written after its record leaves a crash between them: {apart:?}"
    );
}

/// Writes 12 folded records of a stream (record k at sequence 10 k: a decision, a
/// channel's creation, an API key in turn), each with its position (`together`) or
/// followed by a write of the position alone, then cuts the journal at many places
/// and reopens each cut: per cut, the stored position and whether the records in
/// the store are exactly those it covers.
async fn crash_anywhere(together: bool) -> Vec<(u64, bool)> {
    use crate::domain::channel::{Channel, ChannelEvent, ChannelKind};
    const STREAM: u16 = 2;
    let dir = tempfile::tempdir().expect("temp dir");
    let opened = EventStore::open(dir.path()).expect("opens");
    let store = opened.store.clone();
    let monitor = create(&store, "folded", at(0)).await;
    let (_, setup_end) = newest_journal(dir.path());
    for k in 1..=12u64 {
        let position = FoldPosition {
            stream: STREAM,
            sequence: 10 * k,
        };
        let with = together.then_some(position);
        let now = at(k as i64);
        match k % 3 {
            1 => {
                let event = if k % 2 == 1 {
                    Event::Paused
                } else {
                    Event::Resumed
                };
                let mut append = Append::new(
                    monitor.id,
                    vec![Stamped { at: now, event }],
                    SnapshotWrite::Keep,
                );
                append.position = with;
                store.append_with(append).await.expect("decision written");
            }
            2 => {
                let id = crate::domain::ids::ChannelId::generate(now);
                let channel = Channel {
                    id,
                    name: format!("hook {k}"),
                    kind: ChannelKind::Webhook {
                        url: "http://127.0.0.1:1/".to_owned(),
                        secret: None,
                    },
                    created_at: now,
                    key: None,
                    send_on: crate::domain::channel::SendOn::Both,
                };
                store
                    .write_folded_channel(id, now, ChannelEvent::Created(channel), with)
                    .await
                    .expect("channel written");
            }
            _ => store
                .write_folded_api_key(ApiKeyChange::Created(api_key(k as u8, now)), with)
                .await
                .expect("key written"),
        }
        if !together {
            let (_, written) = store.append_folded(Vec::new(), position).await;
            written.expect("position written");
        }
    }
    assert_eq!(
        store.cluster_positions().expect("reads"),
        std::collections::BTreeMap::from([(STREAM, 120)])
    );
    // As a crash leaves it: the writer stops without a final mark.
    drop(store);
    drop(opened.store);
    opened.writer_thread.join().expect("writer ends");

    let (journal, end) = newest_journal(dir.path());
    assert!(end > setup_end, "the records are in the newest journal");
    let journal_name = journal.strip_prefix(dir.path()).expect("inside").to_owned();
    let step = usize::try_from((end - setup_end) / 40).unwrap_or(1).max(1);
    let mut outcomes = Vec::new();
    for cut in (setup_end..end).step_by(step).chain([end]) {
        let crashed = tempfile::tempdir().expect("temp dir");
        copy_dir(dir.path(), crashed.path());
        std::fs::OpenOptions::new()
            .write(true)
            .open(crashed.path().join(&journal_name))
            .and_then(|file| file.set_len(cut))
            .expect("cuts the journal");
        let opened = EventStore::open_with(crashed.path(), OpenOptions::inspect()).expect("opens");
        let store = opened.store.clone();
        let position = store
            .cluster_positions()
            .expect("reads")
            .get(&STREAM)
            .copied()
            .unwrap_or(0);
        let covered = |kind: u64| {
            (1..=12u64)
                .filter(|k| k % 3 == kind && 10 * k <= position)
                .count()
        };
        let history = store.history(monitor.id, 100, None).await.expect("reads");
        let decisions = history
            .iter()
            .filter(|recorded| matches!(recorded.event, Event::Paused | Event::Resumed))
            .count();
        let channels = store.load_channels().expect("reads").len();
        let keys = store.load_api_keys().expect("reads").len();
        outcomes.push((
            position,
            (decisions, channels, keys) == (covered(1), covered(2), covered(0)),
        ));
        close(opened, store).await;
    }
    outcomes
}

/// Copies a data directory (files and subdirectories) as it is on disk.
fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("creates");
    for entry in std::fs::read_dir(from).expect("reads") {
        let entry = entry.expect("an entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("a type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copies");
        }
    }
}

/// A heartbeat folded with a position and refused (its monitor held for a rebuild)
/// leaves the position where it was: the fold applies the batch again, and the
/// heartbeat is not lost behind a position that says it was written.
#[tokio::test]
async fn a_refused_folded_heartbeat_keeps_its_streams_position_back() {
    let dir = tempfile::tempdir().expect("temp dir");
    let opened = EventStore::open(dir.path()).expect("opens");
    let store = opened.store.clone();
    let held = create(&store, "held", at(0)).await;
    let free = create(&store, "free", at(0)).await;
    let position = |sequence| FoldPosition {
        stream: 1,
        sequence,
    };
    let (_, written) = store.append_folded(Vec::new(), position(5)).await;
    written.expect("position written");
    store.shared.quarantine().report(held.id, None);
    let (answers, written) = store
        .append_folded(
            vec![
                (free.id, at(1), plain(PushStatus::Up, "free")),
                (held.id, at(1), plain(PushStatus::Up, "held")),
            ],
            position(9),
        )
        .await;
    assert!(answers[0].is_ok() && answers[1].is_err(), "{answers:?}");
    assert!(
        written.is_err(),
        "the position is refused with the heartbeat"
    );
    assert_eq!(
        store.cluster_positions().expect("reads"),
        std::collections::BTreeMap::from([(1, 5)])
    );
    // Rebuilt: the fold's second try writes both, and the position.
    store.start_rebuild(held.id).await.expect("barrier");
    store.lift_quarantine(held.id);
    let (answers, written) = store
        .append_folded(
            vec![(held.id, at(1), plain(PushStatus::Up, "held"))],
            position(9),
        )
        .await;
    assert!(answers.iter().all(Result::is_ok), "{answers:?}");
    written.expect("position written");
    assert_eq!(
        store.cluster_positions().expect("reads"),
        std::collections::BTreeMap::from([(1, 9)])
    );
    close(opened, store).await;
}
