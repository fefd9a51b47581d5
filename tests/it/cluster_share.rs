//! Shared snapshots and the purge of the streams below them (docs/cluster.md, "Shared
//! snapshots and purging"), with real NATS and real pods: a new pod restores from the
//! streams' shared snapshots instead of folding them from their first record, holds
//! what the other pods hold, and judges once it takes a shard over; the streams are
//! purged below earlier uploads while ownership still fences; a pod left behind by a
//! purge refuses to start, naming the remedy.

use std::time::Duration;

use pushmon::cluster::shard::{ShardId, StreamId, preferred_pod, shard_of};
use pushmon::domain::fence::ShardRecord;
use pushmon::domain::ids::MonitorId;
use tokio::time::Instant;

use crate::cluster::{
    counter, heartbeat_msgs, log_for, records_in_streams, serve_args, until_monitor,
    until_monitor_within, whole_log,
};
use crate::nats::Nats;
use crate::support::ServerProcess;

/// Pods that share a snapshot after every 20 records of a stream (or each second
/// with any record: the ownership renewals are records) and may purge below an
/// upload a second old.
const SHARE_OFTEN: [(&str, &str); 3] = [
    ("PUSHMON_CLUSTER_SHARED_SNAPSHOT_RECORDS", "20"),
    ("PUSHMON_CLUSTER_SHARED_SNAPSHOT_SECONDS", "1"),
    ("PUSHMON_CLUSTER_PURGE_AGE_SECONDS", "1"),
];

/// Each stream's first sequence, as the server answers now.
async fn first_sequences(nats: &Nats) -> Vec<u64> {
    let log = log_for(nats, "inspector", 4, 1).await;
    let mut firsts = Vec::new();
    for stream in StreamId::all(2) {
        firsts.push(log.stream_state(stream).await.unwrap().first);
    }
    firsts
}

/// Until every stream was purged past `beyond` (its first sequence above it).
async fn until_purged_past(nats: &Nats, beyond: &[u64], pods: &[&ServerProcess]) -> Vec<u64> {
    let start = Instant::now();
    loop {
        let firsts = first_sequences(nats).await;
        if firsts
            .iter()
            .zip(beyond)
            .all(|(first, beyond)| first > beyond)
        {
            return firsts;
        }
        if start.elapsed() > Duration::from_secs(40) {
            let logs: Vec<String> = pods.iter().map(|pod| pod.log()).collect();
            panic!(
                "the streams' first sequences {firsts:?} not past {beyond:?}\n{}",
                logs.join("\n----\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A monitor's whole history on `server` without the numbers local to a pod's store
/// (an event's `seq`, a delivery's `alert_seq`).
async fn history_without_local_numbers(server: &ServerProcess, id: &str) -> serde_json::Value {
    let mut events = crate::cluster::history_json(server, id).await;
    for event in events.as_array_mut().unwrap() {
        event.as_object_mut().unwrap().remove("alert_seq");
    }
    events
}

async fn json_of(server: &ServerProcess, path: &str) -> serde_json::Value {
    let response = server.api(reqwest::Method::GET, path).send().await.unwrap();
    crate::support::expect_json(response, reqwest::StatusCode::OK).await
}

/// A new pod, with an empty data directory, joins two pods whose streams were shared
/// and purged: it restores both streams from their shared snapshots (not from the
/// first record, which the streams no longer hold), re-folds only the records after
/// them, and then holds what the other pods hold (monitors, states, histories,
/// channels, API keys); the shard it prefers is taken over after the purge (ownership
/// still fences), and a monitor of that shard silent across the join goes down once,
/// by one effective decision under the new pod's epoch, alike on every pod.
#[tokio::test]
async fn a_new_pod_restores_from_the_shared_snapshots_holds_the_same_state_and_judges_after_a_takeover()
 {
    let nats = Nats::single().await;
    let url = nats.urls()[0].clone();
    let dirs = [(); 3].map(|()| tempfile::tempdir().unwrap());
    let pod_a =
        ServerProcess::start_with_env(dirs[0].path(), &serve_args(&url, "pod-a"), &SHARE_OFTEN)
            .await;
    let pod_b =
        ServerProcess::start_with_env(dirs[1].path(), &serve_args(&url, "pod-b"), &SHARE_OFTEN)
            .await;
    let receiver = crate::receiver::Receiver::start().await;
    let channel = crate::cluster::webhook_channel(&pod_b, receiver.url("/hook")).await;
    let key = pod_a
        .api(reqwest::Method::POST, "/api/keys")
        .json(&serde_json::json!({"name": "ci", "scope": "read"}))
        .send()
        .await
        .unwrap();
    let key = crate::support::expect_json(key, reqwest::StatusCode::CREATED).await;
    let mut monitors = Vec::new();
    for n in 0..4 {
        monitors.push(pod_b.create_monitor(&format!("m{n}"), 600).await);
    }
    // A monitor of a shard the new pod will prefer, alerting on the channel (the new
    // pod's name is one that 4 shards' rendezvous hashing gives a shard to).
    let new_pod = ["pod-c", "pod-d", "pod-e", "pod-f", "pod-g"]
        .into_iter()
        .find(|name| {
            ShardId::all(4)
                .any(|shard| preferred_pod(shard, ["pod-a", "pod-b", name]) == Some(*name))
        })
        .unwrap();
    let three = ["pod-a", "pod-b", new_pod];
    let silent = loop {
        let created = pod_a
            .create_monitor_from(&serde_json::json!({
                "name": "silent", "timeout_seconds": 15, "channels": [channel],
            }))
            .await;
        let shard = shard_of(&MonitorId::parse(&created.id).unwrap(), 4);
        if preferred_pod(shard, three) == Some(new_pod) {
            break created;
        }
        pod_a.delete_monitor(&created.id).await;
    };
    for n in 0..40 {
        for (index, monitor) in monitors.iter().enumerate() {
            let pod = if index % 2 == 0 { &pod_a } else { &pod_b };
            pod.push_ok(&monitor.push_token, &[("msg", &format!("r{n}"))])
                .await;
        }
    }
    let records_before = records_in_streams(&nats).await;
    // Purged past the first records of both streams (what a new pod folding from the
    // start would need).
    let firsts = until_purged_past(&nats, &[1, 1], &[&pod_a, &pod_b]).await;
    let shared = counter(&pod_a, "pushmon_cluster_shared_snapshots_total").await
        + counter(&pod_b, "pushmon_cluster_shared_snapshots_total").await;
    let purged = counter(&pod_a, "pushmon_cluster_purged_records_total").await
        + counter(&pod_b, "pushmon_cluster_purged_records_total").await;
    eprintln!("{shared} uploads, {purged} records purged; first sequences {firsts:?}");
    assert!(
        shared >= 4.0 && purged > 0.0,
        "{shared} uploads, {purged} purged"
    );
    pod_a.push_ok(&silent.push_token, &[]).await;

    let pod_c =
        ServerProcess::start_with_env(dirs[2].path(), &serve_args(&url, new_pod), &SHARE_OFTEN)
            .await;
    let records = records_in_streams(&nats).await;
    let restores = counter(&pod_c, "pushmon_cluster_snapshot_restores_total").await;
    let refolded = counter(&pod_c, "pushmon_cluster_refolded_records_total").await;
    eprintln!(
        "new pod: {restores} streams restored, {refolded} records folded again of {records} ({records_before} before the purge wait)"
    );
    assert_eq!(restores, 2.0, "{}", pod_c.log());
    assert!(
        refolded < records as f64 / 4.0,
        "the new pod folded again {refolded} of {records} records"
    );
    // The same state as the others.
    until_monitor(&pod_c, &silent.id, "pushed", |seen| {
        seen.last_heartbeat_at.is_some()
    })
    .await;
    for monitor in &monitors {
        let on_a = heartbeat_msgs(&pod_a, &monitor.id).await;
        assert_eq!(on_a.len(), 40, "monitor {}", monitor.name);
        assert_eq!(heartbeat_msgs(&pod_c, &monitor.id).await, on_a);
        assert_eq!(
            history_without_local_numbers(&pod_c, &monitor.id).await,
            history_without_local_numbers(&pod_a, &monitor.id).await
        );
    }
    let listing = |pod| async move {
        let mut monitors = json_of(pod, "/api/monitors").await["monitors"].take();
        for monitor in monitors.as_array_mut().unwrap() {
            // Each pod's own address.
            monitor.as_object_mut().unwrap().remove("push_url");
        }
        monitors
    };
    assert_eq!(listing(&pod_c).await, listing(&pod_a).await);
    assert_eq!(
        json_of(&pod_c, "/api/channels").await,
        json_of(&pod_b, "/api/channels").await
    );
    assert_eq!(
        json_of(&pod_c, "/api/keys").await,
        json_of(&pod_a, "/api/keys").await
    );
    // The key works on the new pod.
    let secret = key["key"].as_str().unwrap();
    let with_key = reqwest::Client::new()
        .get(pod_c.url("/api/monitors"))
        .bearer_auth(secret)
        .send()
        .await
        .unwrap();
    assert_eq!(with_key.status(), reqwest::StatusCode::OK);

    // The silent monitor's shard goes to pod C (a takeover after the purge) and pod C
    // decides its deadline: one effective down, under pod C's epoch, on every pod.
    for pod in [&pod_a, &pod_b, &pod_c] {
        until_monitor_within(pod, &silent.id, Duration::from_secs(40)).await;
    }
    // The log's early records are purged (the takeover too, once a later renewal
    // and snapshot cover it), so the test cannot fold it whole: every decision about
    // the monitor is under the new pod's epoch for the shard, as its metric says.
    let reader = log_for(&nats, "reader", 4, 1).await;
    let id = MonitorId::parse(&silent.id).unwrap();
    let shard = shard_of(&id, 4);
    let epoch = counter(
        &pod_c,
        &format!("pushmon_cluster_shard_epoch{{shard=\"{shard}\"}}"),
    )
    .await;
    let epochs: Vec<u64> = whole_log(&reader, shard)
        .await
        .iter()
        .filter_map(|stored| match &stored.record {
            ShardRecord::Decision { monitor, epoch, .. } if *monitor == id => Some(*epoch),
            _ => None,
        })
        .collect();
    assert!(epoch > 0.0, "the new pod owns the silent monitor's shard");
    assert!(!epochs.is_empty(), "no decision about the silent monitor");
    assert!(
        epochs.iter().all(|decided| *decided as f64 == epoch),
        "decisions under {epochs:?}, the new pod's epoch {epoch}"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let on_c = history_without_local_numbers(&pod_c, &silent.id).await;
    let downs = on_c
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| event["kind"] == "down")
        .count();
    assert_eq!(downs, 1, "{on_c}");
    for pod in [&pod_a, &pod_b] {
        let until = Instant::now();
        while history_without_local_numbers(pod, &silent.id).await != on_c {
            assert!(
                until.elapsed() < Duration::from_secs(10),
                "{} != {on_c}",
                history_without_local_numbers(pod, &silent.id).await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // Pod C sent the down alert.
    let until = Instant::now();
    while receiver.received().is_empty() {
        assert!(until.elapsed() < Duration::from_secs(10), "no alert");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Purging with a pod left behind: pod A stops cleanly; pod B alone shares and purges
/// past pod A's position; pod A started again refuses (it exits with code 75, names
/// the remedy and leaves its marker), never folding across the gap; started once more
/// as it is, it empties its data directory, restores from the shared snapshot, takes
/// its shards back (fenced takeovers after the purge) and holds pod B's histories.
#[tokio::test]
async fn a_pod_left_behind_by_a_purge_exits_and_restores_when_started_again() {
    let nats = Nats::single().await;
    let url = nats.urls()[0].clone();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let args_a = serve_args(&url, "pod-a");
    let pod_a = ServerProcess::start_with_env(dir_a.path(), &args_a, &SHARE_OFTEN).await;
    let pod_b =
        ServerProcess::start_with_env(dir_b.path(), &serve_args(&url, "pod-b"), &SHARE_OFTEN).await;
    let monitor = pod_a.create_monitor("m", 600).await;
    for n in 0..10 {
        pod_a
            .push_ok(&monitor.push_token, &[("msg", &format!("a{n}"))])
            .await;
    }
    until_monitor(&pod_b, &monitor.id, "pushed", |seen| {
        seen.last_msg.as_deref() == Some("a9")
    })
    .await;
    let (_, log) = pod_a.sigterm().await;
    assert!(log.contains("released every owned shard"), "{log}");
    let log_b = log_for(&nats, "inspector", 4, 1).await;
    let mut lasts = Vec::new();
    for stream in StreamId::all(2) {
        lasts.push(log_b.stream_state(stream).await.unwrap().last);
    }
    for n in 0..30 {
        pod_b
            .push_ok(&monitor.push_token, &[("msg", &format!("b{n}"))])
            .await;
    }
    let firsts = until_purged_past(&nats, &lasts, &[&pod_b]).await;
    eprintln!("pod A stopped at {lasts:?}; the streams now start at {firsts:?}");

    let pod_a = ServerProcess::start_unready(dir_a.path(), &args_a).await;
    let (status, log) = pod_a.exited(Duration::from_secs(30)).await;
    assert_eq!(status.code(), Some(75), "{log}");
    assert!(
        log.contains("delete its data directory"),
        "the refusal names the remedy: {log}"
    );

    // Started again as it is (as Kubernetes restarts it), pod A empties its data
    // directory by itself, restores and catches up.
    assert!(
        dir_a
            .path()
            .join(pushmon::app::cluster::RESET_MARKER)
            .exists(),
        "the refusal leaves its marker"
    );
    let pod_a = ServerProcess::start_with_env(dir_a.path(), &args_a, &SHARE_OFTEN).await;
    assert!(
        pod_a.log().contains("emptying the data directory"),
        "{}",
        pod_a.log()
    );
    assert!(
        !dir_a
            .path()
            .join(pushmon::app::cluster::RESET_MARKER)
            .exists()
    );
    assert_eq!(
        counter(&pod_a, "pushmon_cluster_snapshot_restores_total").await,
        2.0
    );
    let start = Instant::now();
    while counter(&pod_a, "pushmon_cluster_shards_owned").await < 1.0 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "pod A takes no shard back: {}",
            pod_a.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    pod_b.push_ok(&monitor.push_token, &[("msg", "last")]).await;
    until_monitor(&pod_a, &monitor.id, "pushed after", |seen| {
        seen.last_msg.as_deref() == Some("last")
    })
    .await;
    let on_b = heartbeat_msgs(&pod_b, &monitor.id).await;
    assert_eq!(on_b.len(), 41);
    assert_eq!(heartbeat_msgs(&pod_a, &monitor.id).await, on_b);
}

/// New-pod catch-up with a long log (`RECORDS` heartbeat records of `MONITORS`
/// monitors appended straight to the streams): a new pod with an empty data
/// directory, from process start to `/readyz` 200, folding every stream from its
/// first record (no shared snapshot yet), then restoring from the shared snapshots;
/// and the streams' size before and after the purge below them.
#[tokio::test]
#[ignore = "a measurement (a few minutes)"]
async fn measure_new_pod_catch_up_with_and_without_a_shared_snapshot() {
    const MONITORS: usize = 100;
    const RECORDS: usize = 200_000;
    let nats = Nats::single().await;
    let url = nats.urls()[0].clone();
    let dirs = [(); 3].map(|()| tempfile::tempdir().unwrap());
    let args_a = serve_args(&url, "pod-a");
    let no_sharing = [("PUSHMON_CLUSTER_SHARED_SNAPSHOT_RECORDS", "0")];
    let pod_a = ServerProcess::start_with_env(dirs[0].path(), &args_a, &no_sharing).await;
    let mut monitors = Vec::new();
    for n in 0..MONITORS {
        monitors.push(pod_a.create_monitor(&format!("m{n}"), 3_600).await);
    }
    let loader = log_for(&nats, "loader", 4, 1).await;
    let ids: Vec<MonitorId> = monitors
        .iter()
        .map(|monitor| MonitorId::parse(&monitor.id).unwrap())
        .collect();
    crate::cluster::append_heartbeat_records(&loader, &ids, RECORDS).await;
    let last = format!("hb-{}", RECORDS - 1);
    let monitor = &monitors[(RECORDS - 1) % MONITORS];
    let start = Instant::now();
    while pod_a.get_monitor(&monitor.id).await.last_msg.as_deref() != Some(last.as_str()) {
        assert!(start.elapsed() < Duration::from_secs(300), "not folded");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let sizes = |log: pushmon::cluster::log::JetStreamLog| async move {
        let mut sizes = Vec::new();
        for stream in StreamId::all(2) {
            let state = log.stream_state(stream).await.unwrap();
            sizes.push((state.first, state.last, state.records, state.bytes));
        }
        sizes
    };
    let before_purge = sizes(log_for(&nats, "inspector", 4, 1).await).await;

    // A new pod without a shared snapshot: every record folded.
    let starting = Instant::now();
    let pod_b =
        ServerProcess::start_with_env(dirs[1].path(), &serve_args(&url, "pod-b"), &no_sharing)
            .await;
    let without = starting.elapsed();
    let refolded_without = counter(&pod_b, "pushmon_cluster_refolded_records_total").await;
    let caught_up_without =
        crate::cluster::logged_number(&pod_b.log(), "every stream folded up to", "caught_up_ms");
    pod_b.sigterm().await;

    // Pod A shares (every 2 s with any record) and purges below an upload 2 s old.
    pod_a.sigterm().await;
    let sharing = [
        ("PUSHMON_CLUSTER_SHARED_SNAPSHOT_RECORDS", "100000000"),
        ("PUSHMON_CLUSTER_SHARED_SNAPSHOT_SECONDS", "2"),
        ("PUSHMON_CLUSTER_PURGE_AGE_SECONDS", "2"),
    ];
    let pod_a = ServerProcess::start_with_env(dirs[0].path(), &args_a, &sharing).await;
    let start = Instant::now();
    while counter(&pod_a, "pushmon_cluster_purged_records_total").await < RECORDS as f64 / 2.0 {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "not purged: {}",
            pod_a.log()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let after_purge = sizes(log_for(&nats, "inspector", 4, 1).await).await;
    let log_a = pod_a.log();
    let cut_bytes = crate::cluster::logged_number(&log_a, "uploaded the stream's shared", "bytes");
    let cut_ms = crate::cluster::logged_number(&log_a, "cut the stream's state", "cut_ms");
    let upload_ms =
        crate::cluster::logged_number(&log_a, "uploaded the stream's shared", "upload_ms");

    // A new pod restoring from the shared snapshots: pod A stopped first, so that no
    // purge (2 s old uploads here) overtakes the restore (seconds in a debug build).
    pod_a.sigterm().await;
    let starting = Instant::now();
    let pod_c = ServerProcess::start(dirs[2].path(), &serve_args(&url, "pod-c")).await;
    let with = starting.elapsed();
    let refolded_with = counter(&pod_c, "pushmon_cluster_refolded_records_total").await;
    let restores = counter(&pod_c, "pushmon_cluster_snapshot_restores_total").await;
    let restore_ms = crate::cluster::logged_number(
        &pod_c.log(),
        "restored the stream's state from its shared snapshot",
        "took_ms",
    );
    let caught_up_with =
        crate::cluster::logged_number(&pod_c.log(), "every stream folded up to", "caught_up_ms");
    assert_eq!(
        pod_c.get_monitor(&monitor.id).await.last_msg.as_deref(),
        Some(last.as_str())
    );
    eprintln!(
        "{RECORDS} records, {MONITORS} monitors. New pod, start to ready: without a shared snapshot \
         {without:?} (folds caught up in {caught_up_without:?} ms, {refolded_without} records folded); \
         with one {with:?} ({restores} streams restored, the last in {restore_ms:?} ms; folds caught up \
         in {caught_up_with:?} ms, {refolded_with} records folded). A stream's cut: {cut_bytes:?} bytes, \
         made in {cut_ms:?} ms, uploaded in {upload_ms:?} ms (the last one). Streams (first, last, \
         records, bytes) before the purge {before_purge:?}, after {after_purge:?}"
    );
    assert!(refolded_with < 1_000.0);
}
