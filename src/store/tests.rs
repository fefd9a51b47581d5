//! Store tests on a real fjall directory: write, close, reopen, compare.

use std::collections::HashMap;

use super::retention::Retention;
use super::*;
use crate::domain::event::{Heartbeat, HeartbeatText, MonitorConfig, PushStatus};
use crate::domain::ids::PushToken;
use crate::domain::machine::{Command, apply, decide};

fn config(name: &str) -> MonitorConfig {
    MonitorConfig {
        name: name.to_owned(),
        timeout_seconds: 30,
        interval_seconds: 30,
        channels: vec![],
        key: None,
        tags: vec![],
    }
}

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_millis(1_800_000_000_000 + seconds * 1000)
}

/// Creates a monitor in the store and returns its state as an actor would hold it.
async fn create(store: &EventStore, name: &str, now: Timestamp) -> Monitor {
    let id = MonitorId::generate();
    let token = PushToken::from_bytes(*MonitorId::generate().as_bytes());
    let mut monitor = Monitor::created(id, now, config(name), token);
    let created = Stamped {
        at: now,
        event: Event::Created {
            config: config(name),
            token,
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
    run(&store, &mut a, Command::CheckDeadline, at(40)).await;
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
        ["up", "heartbeat", "down", "heartbeat", "created"],
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
    // 25 heartbeats + created = 26 events: 10 + 10 + 6.
    assert_eq!(rest.len(), 6);
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
        assert_eq!(history.len(), 51, "50 heartbeats and the creation");
    }
    close(reopened, store).await;
}

fn beat_with(status: PushStatus, msg: &str, value: Option<f64>) -> Command {
    Command::Heartbeat(Heartbeat {
        status,
        msg: Some(HeartbeatText::truncated(msg.to_owned())),
        value,
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
        let append = Append::new(monitor.id, events, Snapshot::Keep);
        next.last_seq = store.append_with(append).await.expect("append succeeds");
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

#[tokio::test]
async fn a_pipelined_heartbeat_the_writer_refuses_gets_its_monitor_rebuilt() {
    let dir = tempfile::tempdir().expect("temp dir");
    let opened = EventStore::open(dir.path()).expect("opens");
    let store = opened.store.clone();
    let monitor = create(&store, "pipelined", at(0)).await;
    let pipelined = |n: i64| {
        let events = decide(&monitor, beat(PushStatus::Up, &format!("p{n}")), at(n));
        Append::new(monitor.id, events, Snapshot::Keep)
    };

    // Accepted: durable before the barrier returns, and answered to the pusher.
    let (reply, answer) = oneshot::channel();
    assert!(store.append_pipelined(pipelined(1), reply));
    store.barrier().await.expect("barrier");
    assert!(answer.await.expect("answered").is_ok());
    assert!(store.take_diverged().is_empty());

    // Refused (the monitor is quarantined): the actor already applied it, so the
    // monitor is scheduled for a rebuild and stays quarantined until then.
    store.shared.diverged().add(monitor.id, 7);
    assert_eq!(store.take_diverged(), HashMap::from([(monitor.id, 7)]));
    let (reply, answer) = oneshot::channel();
    assert!(store.append_pipelined(pipelined(2), reply));
    assert!(matches!(
        answer.await.expect("answered"),
        Err(StoreError::Unavailable(_))
    ));
    // A release for the first rebuild does not lift the quarantine: another is due.
    store.release(monitor.id);
    let (reply, answer) = oneshot::channel();
    assert!(store.append_pipelined(pipelined(3), reply));
    assert!(answer.await.expect("answered").is_err());
    assert_eq!(
        store.take_diverged(),
        HashMap::from([(monitor.id, u64::MAX)])
    );
    store.release(monitor.id);
    let (reply, answer) = oneshot::channel();
    assert!(store.append_pipelined(pipelined(4), reply));
    assert!(answer.await.expect("answered").is_ok());

    let msgs = heartbeat_msgs(&store.history(monitor.id, 100, None).await.expect("reads"));
    assert_eq!(msgs, ["p1", "p4"]);
    close(opened, store).await;
}
