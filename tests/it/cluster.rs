//! The clustered backend's foundation against real NATS servers (`nats.rs`): the shard
//! log's appends, acknowledgements, dedup and reads; ownership contended by several
//! managers, failover after a kill, a paused owner fenced and its decisions void in
//! the fold, an explicit release; and a 3-server cluster that keeps appending with one
//! server SIGKILLed. The library is driven directly; no pushmon server runs here.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use pushmon::cluster::log::{Fenced, JetStreamLog, JetStreamSettings, Stored};
use pushmon::cluster::ownership::Ownership;
use pushmon::cluster::shard::{ShardId, StreamId, preferred_pod};
use pushmon::domain::fence::{Folded, ShardFold, ShardRecord, Void};
use pushmon::domain::ids::{MonitorId, Timestamp};
use tokio::time::Instant;

use crate::nats::{Nats, free_port};
use crate::support::ServerProcess;

pub(crate) async fn log_for(nats: &Nats, pod: &str, shards: u16, replicas: usize) -> JetStreamLog {
    log_with_timeout(nats, pod, shards, replicas, Duration::from_secs(5)).await
}

async fn log_with_timeout(
    nats: &Nats,
    pod: &str,
    shards: u16,
    replicas: usize,
    ack_timeout: Duration,
) -> JetStreamLog {
    let log = JetStreamLog::connect(JetStreamSettings {
        servers: nats.urls(),
        pod: pod.to_owned(),
        shards,
        // Two shards or more share a stream, as `serve_args` has them.
        streams: shards.min(2),
        replicas,
        ack_timeout,
    })
    .await
    .unwrap();
    log.ensure_streams().await.unwrap();
    log
}

fn heartbeat(monitor: MonitorId) -> ShardRecord {
    ShardRecord::Heartbeat {
        monitor,
        event: vec![1, 2, 3],
    }
}

fn decision(monitor: MonitorId, epoch: u64, basis: u64) -> ShardRecord {
    ShardRecord::Decision {
        monitor,
        epoch,
        basis,
        event: vec![4],
    }
}

pub(crate) async fn whole_log(log: &JetStreamLog, shard: ShardId) -> Vec<Stored> {
    log.read(shard, 1, usize::MAX).await.unwrap()
}

pub(crate) fn fold(records: &[Stored]) -> (ShardFold, Vec<(Stored, Folded)>) {
    let mut fold = ShardFold::default();
    let results = records
        .iter()
        .map(|stored| (stored.clone(), fold.apply(stored.sequence, &stored.record)))
        .collect();
    (fold, results)
}

/// Polls `condition` every 20 ms until it holds; how long that took, or a panic after
/// `limit`.
async fn until(limit: Duration, what: &str, mut condition: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !condition() {
        assert!(start.elapsed() < limit, "not within {limit:?}: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    start.elapsed()
}

#[tokio::test]
async fn appends_are_acknowledged_in_order_and_read_back_from_any_sequence() {
    let nats = Nats::single().await;
    let log = log_for(&nats, "pod-a", 2, 1).await;
    let monitor = MonitorId::from_bytes([1; 16]);
    let records: Vec<ShardRecord> = (0..50).map(|_| heartbeat(monitor)).collect();
    let sequences = log.append(ShardId(1), &records).await.unwrap();
    assert_eq!(sequences, (1..=50).collect::<Vec<u64>>());
    let more = log
        .append(ShardId(1), &[decision(monitor, 0, 50)])
        .await
        .unwrap();
    assert_eq!(more, vec![51]);

    let read = whole_log(&log, ShardId(1)).await;
    assert_eq!(read.len(), 51);
    assert!(
        read.iter()
            .zip(1..)
            .all(|(stored, sequence)| stored.sequence == sequence)
    );
    assert_eq!(read[50].record, decision(monitor, 0, 50));
    let tail = log.read(ShardId(1), 40, 5).await.unwrap();
    assert_eq!(
        tail.iter()
            .map(|stored| stored.sequence)
            .collect::<Vec<_>>(),
        vec![40, 41, 42, 43, 44]
    );
    assert!(log.read(ShardId(1), 52, 10).await.unwrap().is_empty());
    // The other shard's stream is its own log.
    assert!(whole_log(&log, ShardId(0)).await.is_empty());
    assert_eq!(
        log.append(ShardId(0), &[heartbeat(monitor)]).await.unwrap(),
        vec![1]
    );
}

/// A monitor id whose shard among `shards` is `shard`.
fn monitor_in(shard: ShardId, shards: u16) -> MonitorId {
    (0u32..)
        .map(|n| {
            let mut bytes = [7u8; 16];
            bytes[..4].copy_from_slice(&n.to_be_bytes());
            MonitorId::from_bytes(bytes)
        })
        .find(|monitor| pushmon::cluster::shard::shard_of(monitor, shards) == shard)
        .unwrap()
}

/// Fewer streams than shards: shards 0 and 2 of 4 share stream 0 of 2. One append
/// carries heartbeats of both in one record, acknowledged once at one sequence; read
/// back from NATS per shard, each shard sees that record with only its own heartbeat,
/// and the other stream has nothing. Ownership stays per shard: a takeover fenced on
/// shard 0's subject does not fence shard 2's, in the same stream.
#[tokio::test]
async fn heartbeats_of_two_shards_in_one_stream_are_acknowledged_by_one_append() {
    let nats = Nats::single().await;
    let log = log_for(&nats, "pod-a", 4, 1).await;
    assert_eq!(log.settings().streams, 2);
    let (in_0, in_2) = (monitor_in(ShardId(0), 4), monitor_in(ShardId(2), 4));
    assert_eq!(log.stream_of(ShardId(0)), log.stream_of(ShardId(2)));
    assert_ne!(log.stream_of(ShardId(0)), log.stream_of(ShardId(1)));
    let combined = ShardRecord::Heartbeats {
        heartbeats: vec![(in_0, vec![1]), (in_2, vec![2])],
    };
    let appended = log
        .append_to_stream(
            StreamId(0),
            &[(log.next_message_id(), ShardId(0), combined.clone())],
        )
        .await
        .unwrap();
    assert_eq!(
        appended,
        vec![(1, false)],
        "one record, one acknowledgement"
    );
    let only = |monitor: MonitorId, event: u8| {
        vec![Stored {
            sequence: 1,
            record: ShardRecord::Heartbeats {
                heartbeats: vec![(monitor, vec![event])],
            },
        }]
    };
    assert_eq!(whole_log(&log, ShardId(0)).await, only(in_0, 1));
    assert_eq!(whole_log(&log, ShardId(2)).await, only(in_2, 2));
    assert!(whole_log(&log, ShardId(1)).await.is_empty());
    assert!(whole_log(&log, ShardId(3)).await.is_empty());

    // Fencing is per shard subject, though the stream is shared.
    let takeover = ShardRecord::Takeover {
        pod: "pod-a".to_owned(),
        lease_millis: 5_000,
    };
    assert_eq!(
        log.publish_fenced(ShardId(0), &takeover, 0).await.unwrap(),
        Fenced::Landed(2)
    );
    assert_eq!(
        log.publish_fenced(ShardId(2), &takeover, 0).await.unwrap(),
        Fenced::Landed(3)
    );
    assert_eq!(
        log.publish_fenced(ShardId(0), &takeover, 0).await.unwrap(),
        Fenced::Refused
    );
    assert_eq!(
        log.last_ownership(ShardId(2))
            .await
            .unwrap()
            .map(|stored| stored.sequence),
        Some(3)
    );
    // The epoch of shard 2 (3) is a sequence of the stream, comparable with every
    // record of shard 2's monitors: all of them are in this stream.
    let (mut fold_2, _) = fold(&whole_log(&log, ShardId(2)).await);
    assert_eq!(fold_2.epoch(), Some(3));
    assert_eq!(fold_2.last_heartbeat(&in_2), 1);
    assert_eq!(fold_2.apply(4, &decision(in_2, 3, 1)), Folded::Effective);
}

#[tokio::test]
async fn a_republished_message_id_is_stored_once_and_an_append_without_acks_fails() {
    let nats = Nats::single().await;
    let log = log_for(&nats, "pod-a", 1, 1).await;
    let monitor = MonitorId::from_bytes([2; 16]);
    let id = log.next_message_id();
    let first = log
        .append_with_ids(ShardId(0), &[(id.clone(), heartbeat(monitor))])
        .await
        .unwrap();
    // A retry of the same batch after a lost acknowledgement.
    let again = log
        .append_with_ids(
            ShardId(0),
            &[
                (id, heartbeat(monitor)),
                (log.next_message_id(), heartbeat(monitor)),
            ],
        )
        .await
        .unwrap();
    assert_eq!(first, vec![(1, false)]);
    assert_eq!(again, vec![(1, true), (2, false)]);
    assert_eq!(whole_log(&log, ShardId(0)).await.len(), 2);
    assert_ne!(log.next_message_id(), log.next_message_id());

    // A shard whose stream does not exist acknowledges nothing: an error, not sequences.
    let outside = log.append(ShardId(5), &[heartbeat(monitor)]).await;
    assert!(outside.is_err(), "{outside:?}");
}

#[tokio::test]
async fn contending_managers_own_each_shard_once_rebalance_and_never_renew_a_stale_epoch() {
    let nats = Nats::single().await;
    let shards = 8;
    let lease = Duration::from_secs(2);
    let pods = ["pod-a", "pod-b", "pod-c"];
    let mut managers = Vec::new();
    let mut logs = Vec::new();
    for pod in pods {
        let log = log_for(&nats, pod, shards, 1).await;
        managers.push(Ownership::start(log.clone(), lease).await.unwrap());
        logs.push(log);
    }
    let owners = |managers: &[Ownership]| {
        let mut owners: BTreeMap<ShardId, Vec<String>> = BTreeMap::new();
        for manager in managers {
            for shard in manager.owned().keys() {
                owners
                    .entry(*shard)
                    .or_default()
                    .push(manager.pod().to_owned());
            }
        }
        owners
    };
    until(Duration::from_secs(10), "every shard owned", || {
        owners(&managers).len() == usize::from(shards)
    })
    .await;
    // Once the pods have seen one another for two leases, each shard sits with the pod
    // rendezvous hashing prefers, and no shard ever has two owners on the way.
    let settled = until(
        Duration::from_secs(15),
        "each shard with its preferred pod",
        || {
            let owners = owners(&managers);
            assert!(
                owners.values().all(|pods| pods.len() == 1),
                "two owners: {owners:?}"
            );
            owners.len() == usize::from(shards)
                && owners.iter().all(|(shard, pods)| {
                    Some(pods[0].as_str()) == preferred_pod(*shard, pods_iter(&pods_of(&managers)))
                })
        },
    )
    .await;
    eprintln!("three managers settled on the preferred assignment after {settled:?}");
    // Renewals keep every owner deciding without a gap, for two leases.
    let watched = Instant::now();
    while watched.elapsed() < lease * 2 {
        for manager in &managers {
            for shard in manager.owned().keys() {
                assert!(
                    manager.deciding_epoch(*shard).is_some(),
                    "{} stopped deciding shard {shard} while renewing",
                    manager.pod()
                );
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }

    // In every shard's log: epochs (takeovers' sequences) increase, and every renewal
    // and release that landed names the epoch current at its place.
    for shard in ShardId::all(shards) {
        let records = whole_log(&logs[0], shard).await;
        let mut fold = ShardFold::default();
        let mut epochs = Vec::new();
        for stored in &records {
            match &stored.record {
                ShardRecord::Renewal { epoch, pod } | ShardRecord::Release { epoch, pod } => {
                    assert_eq!(fold.epoch(), Some(*epoch), "shard {shard}: {stored:?}");
                    assert_eq!(
                        fold.owner().map(|owner| owner.pod.as_str()),
                        Some(pod.as_str())
                    );
                }
                ShardRecord::Takeover { .. } => epochs.push(stored.sequence),
                _ => {}
            }
            fold.apply(stored.sequence, &stored.record);
        }
        assert!(epochs.windows(2).all(|pair| pair[0] < pair[1]));
        let owner = &owners(&managers)[&shard][0];
        assert_eq!(fold.owner().map(|owner| &owner.pod), Some(owner));
    }
    for manager in &managers {
        manager.halt().await;
    }
}

fn pods_of(managers: &[Ownership]) -> Vec<String> {
    managers
        .iter()
        .map(|manager| manager.pod().to_owned())
        .collect()
}

fn pods_iter(pods: &[String]) -> impl Iterator<Item = &str> {
    pods.iter().map(String::as_str)
}

#[tokio::test]
async fn a_killed_owners_shards_are_taken_over_within_the_lease_and_a_margin() {
    let nats = Nats::single().await;
    let lease = Duration::from_secs(2);
    let shards = 4;
    let log_a = log_for(&nats, "pod-a", shards, 1).await;
    let owner = Ownership::start(log_a, lease).await.unwrap();
    until(Duration::from_secs(5), "pod-a owns every shard", || {
        owner.owned().len() == usize::from(shards)
    })
    .await;
    let log_b = log_for(&nats, "pod-b", shards, 1).await;
    let standby = Ownership::start(log_b.clone(), lease).await.unwrap();
    let epochs_before = owner.owned();
    tokio::time::sleep(lease / 2).await;
    // The owner dies: no renewal, no release, its connection gone.
    drop(owner);
    let took = until(
        lease * 2 + Duration::from_secs(1),
        "pod-b owns every shard",
        || standby.owned().len() == usize::from(shards),
    )
    .await;
    eprintln!("failover after a kill, lease {lease:?}: every shard taken over in {took:?}");
    assert!(
        took >= lease / 2,
        "taken over before the lease ran out: {took:?}"
    );
    for (shard, epoch) in standby.owned() {
        assert!(epoch > epochs_before[&shard]);
        assert!(standby.deciding_epoch(shard).is_some());
    }
    assert_eq!(standby.failovers(), u64::from(shards));
    standby.halt().await;
}

#[tokio::test]
async fn a_paused_owner_stops_deciding_is_fenced_and_its_decisions_are_void() {
    let nats = Nats::single().await;
    let lease = Duration::from_secs(2);
    let shard = ShardId(0);
    let log_a = log_for(&nats, "pod-a", 1, 1).await;
    let zombie = Ownership::start(log_a.clone(), lease).await.unwrap();
    until(Duration::from_secs(5), "pod-a owns the shard", || {
        zombie.deciding_epoch(shard).is_some()
    })
    .await;
    let old_epoch = zombie.deciding_epoch(shard).unwrap();
    let monitor = MonitorId::from_bytes([3; 16]);
    let first = log_a.append(shard, &[heartbeat(monitor)]).await.unwrap()[0];
    // A decision while it owns the shard counts.
    log_a
        .append(shard, &[decision(monitor, old_epoch, first)])
        .await
        .unwrap();
    let second = log_a.append(shard, &[heartbeat(monitor)]).await.unwrap()[0];

    let log_b = log_for(&nats, "pod-b", 1, 1).await;
    let standby = Ownership::start(log_b.clone(), lease).await.unwrap();
    // pod-a pauses (as SIGSTOP would): it renews nothing and stops deciding on its own
    // within half a lease of its last acknowledged renewal.
    zombie.halt().await;
    let paused_at = Instant::now();
    until(lease, "the paused owner stops deciding", || {
        zombie.deciding_epoch(shard).is_none()
    })
    .await;
    until(
        lease * 2 + Duration::from_secs(1),
        "pod-b takes over",
        || standby.deciding_epoch(shard).is_some(),
    )
    .await;
    let new_epoch = standby.deciding_epoch(shard).unwrap();
    assert!(new_epoch > old_epoch);
    assert!(paused_at.elapsed() >= lease / 2);

    // The zombie wakes with its old view: its renewal is refused, and the decision it
    // had in flight is void; the new owner's decision on the same heartbeat counts.
    let refused = log_a
        .publish_fenced(
            shard,
            &ShardRecord::Renewal {
                pod: "pod-a".to_owned(),
                epoch: old_epoch,
            },
            old_epoch,
        )
        .await
        .unwrap();
    assert_eq!(refused, Fenced::Refused);
    let zombie_decision = log_a
        .append(shard, &[decision(monitor, old_epoch, second)])
        .await
        .unwrap()[0];
    let owner_decision = log_b
        .append(shard, &[decision(monitor, new_epoch, second)])
        .await
        .unwrap()[0];
    let owner_again = log_b
        .append(shard, &[decision(monitor, new_epoch, second)])
        .await
        .unwrap()[0];
    let (fold, results) = fold(&whole_log(&log_b, shard).await);
    let outcome = |sequence: u64| {
        results
            .iter()
            .find(|(stored, _)| stored.sequence == sequence)
            .map(|(_, folded)| *folded)
            .unwrap()
    };
    assert_eq!(outcome(first + 1), Folded::Effective);
    assert_eq!(outcome(zombie_decision), Folded::Void(Void::StaleEpoch));
    assert_eq!(outcome(owner_decision), Folded::Effective);
    // A repeat on the same basis: the effective decision before it is its monitor's
    // last record now, so the repeat is overtaken by it.
    assert_eq!(outcome(owner_again), Folded::Void(Void::Overtaken));
    assert_eq!(fold.epoch(), Some(new_epoch));
    assert_eq!(standby.failovers(), 1);
    standby.halt().await;
}

#[tokio::test]
async fn a_released_shard_is_taken_over_at_once_not_by_timeout() {
    let nats = Nats::single().await;
    // A long lease: a handover by timeout could not pass this test.
    let lease = Duration::from_secs(6);
    let shards = 2;
    let log_a = log_for(&nats, "pod-a", shards, 1).await;
    let leaving = Ownership::start(log_a, lease).await.unwrap();
    until(Duration::from_secs(5), "pod-a owns every shard", || {
        leaving.owned().len() == usize::from(shards)
    })
    .await;
    let log_b = log_for(&nats, "pod-b", shards, 1).await;
    let next = Ownership::start(log_b.clone(), lease).await.unwrap();
    let mut changes = next.watch();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        next.owned().is_empty(),
        "a live owner's shards are not taken"
    );
    let released_at = Instant::now();
    assert!(leaving.shutdown().await.is_empty(), "every release landed");
    until(lease / 2, "pod-b owns every shard", || {
        next.owned().len() == usize::from(shards)
    })
    .await;
    let handover = released_at.elapsed();
    eprintln!("explicit release: handed over in {handover:?} (lease {lease:?})");
    assert!(changes.has_changed().unwrap());
    assert_eq!(changes.borrow_and_update().len(), usize::from(shards));
    assert_eq!(next.failovers(), 0, "a release is not a failover");
    for shard in ShardId::all(shards) {
        let records = whole_log(&log_b, shard).await;
        let kinds: Vec<&str> = records
            .iter()
            .filter(|stored| !matches!(stored.record, ShardRecord::Renewal { .. }))
            .map(|stored| match &stored.record {
                ShardRecord::Takeover { pod, .. } => pod.as_str(),
                ShardRecord::Release { .. } => "release",
                _ => "other",
            })
            .collect();
        assert_eq!(kinds, ["pod-a", "release", "pod-b"], "shard {shard}");
    }
    next.halt().await;
}

#[tokio::test]
async fn a_three_server_cluster_keeps_appending_with_one_server_sigkilled() {
    let mut nats = Nats::cluster().await;
    // A short timeout: an append whose server died is given up on (and retried) soon.
    let log = log_with_timeout(&nats, "pod-a", 2, 3, Duration::from_secs(2)).await;
    let monitor = MonitorId::from_bytes([4; 16]);
    let mut acknowledged = BTreeSet::new();
    for batch in [1usize, 100, 1000] {
        let records: Vec<ShardRecord> = (0..batch).map(|_| heartbeat(monitor)).collect();
        let started = Instant::now();
        let sequences = log.append(ShardId(0), &records).await.unwrap();
        eprintln!(
            "R3 on 3 servers: a batch of {batch} acknowledged in {:?}",
            started.elapsed()
        );
        assert_eq!(sequences.len(), batch);
        acknowledged.extend(sequences);
    }
    let leader = log
        .stream_leader(ShardId(0))
        .await
        .unwrap()
        .expect("the stream has a leader");
    // The stream's leader dies: the two others elect one and appends go on.
    nats.kill(&leader).await;
    let killed_at = Instant::now();
    let mut first_after = None;
    let mut batches_after = 0;
    let mut last_error = None;
    while batches_after < 10 {
        let records: Vec<ShardRecord> = (0..100).map(|_| heartbeat(monitor)).collect();
        match log.append(ShardId(0), &records).await {
            Ok(sequences) => {
                first_after.get_or_insert(killed_at.elapsed());
                batches_after += 1;
                acknowledged.extend(sequences);
            }
            Err(error) => {
                assert!(
                    killed_at.elapsed() < Duration::from_secs(20),
                    "no append acknowledged 20 s after the kill: {error}"
                );
                last_error = Some(error.to_string());
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    eprintln!("while the cluster recovered: {last_error:?}");
    let first_after = first_after.expect("appends resume");
    eprintln!("leader {leader} SIGKILLed: appends acknowledged again after {first_after:?}");
    let mut read = log.read(ShardId(0), 1, usize::MAX).await;
    for _ in 0..20 {
        if read.is_ok() {
            break;
        }
        eprintln!("reading after the kill: {read:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
        read = log.read(ShardId(0), 1, usize::MAX).await;
    }
    let read: BTreeSet<u64> = read.unwrap().iter().map(|stored| stored.sequence).collect();
    assert!(
        acknowledged.is_subset(&read),
        "{} acknowledged records missing after the kill",
        acknowledged.difference(&read).count()
    );
}

#[tokio::test]
async fn serve_is_not_ready_until_it_joins_then_owns_its_shards_and_releases_them_on_sigterm() {
    let port = free_port();
    let url = format!("nats://127.0.0.1:{port}");
    let data_dir = tempfile::tempdir().unwrap();
    let mut server = ServerProcess::start_unready(
        data_dir.path(),
        &[
            "--cluster-nats",
            &url,
            "--pod-name",
            "serve-a",
            "--cluster-shards",
            "4",
            "--cluster-streams",
            "2",
            "--cluster-replicas",
            "1",
            "--cluster-lease",
            "2s",
        ],
    )
    .await;
    let readyz = || async {
        reqwest::get(server.url("/readyz"))
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    // No NATS yet: started, but not ready.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(readyz().await, 503);
    let nats = Nats::single_on(port).await;
    server.wait_until_ready().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let metrics = loop {
        let metrics = server.metrics().await;
        if metrics.contains("pushmon_cluster_shards_owned 4") {
            break metrics;
        }
        assert!(Instant::now() < deadline, "shards not owned:\n{metrics}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for shard in 0..4 {
        let line = metrics
            .lines()
            .find(|line| {
                line.starts_with(&format!("pushmon_cluster_shard_epoch{{shard=\"{shard}\"}}"))
            })
            .unwrap_or_else(|| panic!("no epoch for shard {shard}:\n{metrics}"));
        let epoch: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        assert!(epoch >= 1.0, "{line}");
    }
    assert!(
        metrics.contains("pushmon_cluster_failovers_total 0"),
        "{metrics}"
    );

    let (status, log) = server.sigterm().await;
    assert_eq!(status.code(), Some(0), "{log}");
    let reader = log_for(&nats, "reader", 4, 1).await;
    for shard in ShardId::all(4) {
        let last = reader
            .last_ownership(shard)
            .await
            .unwrap()
            .expect("an owner was recorded");
        assert!(
            matches!(&last.record, ShardRecord::Release { pod, .. } if pod == "serve-a"),
            "shard {shard}: {last:?}"
        );
    }
}

/// A metric's value in `/metrics` text (`None` when absent).
pub(crate) fn metric(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// The `serve` arguments of a small test cluster's pod (4 shards over 2 streams, 1
/// replica, a 2 s lease), shared with the claims tests.
pub(crate) fn serve_args<'a>(url: &'a str, pod: &'a str) -> Vec<&'a str> {
    vec![
        "--cluster-nats",
        url,
        "--pod-name",
        pod,
        "--cluster-shards",
        "4",
        "--cluster-streams",
        "2",
        "--cluster-replicas",
        "1",
        "--cluster-lease",
        "2",
    ]
}

async fn until_metric(
    server: &ServerProcess,
    series: &str,
    value: f64,
    limit: Duration,
) -> Duration {
    let start = Instant::now();
    loop {
        let metrics = server.metrics().await;
        if metric(&metrics, series) == Some(value) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "{series} is not {value} after {limit:?}:\n{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_sigkilled_pods_shards_are_taken_over_by_the_other_pod() {
    let nats = Nats::single().await;
    let url = nats.urls()[0].clone();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let pod_a = ServerProcess::start(dir_a.path(), &serve_args(&url, "pod-a")).await;
    until_metric(
        &pod_a,
        "pushmon_cluster_shards_owned",
        4.0,
        Duration::from_secs(5),
    )
    .await;
    let pod_b = ServerProcess::start(dir_b.path(), &serve_args(&url, "pod-b")).await;
    // pod-b is live but pod-a owns every shard: nothing moves within the first lease.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        metric(&pod_b.metrics().await, "pushmon_cluster_shards_owned"),
        Some(0.0)
    );
    pod_a.sigkill().await;
    let took = until_metric(
        &pod_b,
        "pushmon_cluster_shards_owned",
        4.0,
        Duration::from_secs(6),
    )
    .await;
    eprintln!("pod-a SIGKILLed, lease 2 s: pod-b owns every shard after {took:?}");
    until_metric(
        &pod_b,
        "pushmon_cluster_failovers_total",
        4.0,
        Duration::from_secs(2),
    )
    .await;
    let (status, log) = pod_b.sigterm().await;
    assert_eq!(status.code(), Some(0), "{log}");
}

/// Measurements, not a check: run with
/// `cargo test --test it cluster::measure -- --ignored --nocapture`.
#[tokio::test]
#[ignore = "a measurement (about a minute)"]
async fn measure_failover_times_and_acknowledgement_latency() {
    let nats = Nats::single().await;
    let lease = Duration::from_secs(2);
    let mut kill_to_owned = Vec::new();
    for round in 0..10u16 {
        let shard_count = 1;
        let log_a = log_for(&nats, &format!("a{round}"), shard_count, 1).await;
        // A fresh shard each round: the rounds' pods differ, the streams are shared.
        let owner = Ownership::start(log_a, lease).await.unwrap();
        until(
            Duration::from_secs(10),
            "the first pod owns the shard",
            || !owner.owned().is_empty(),
        )
        .await;
        let log_b = log_for(&nats, &format!("b{round}"), shard_count, 1).await;
        let standby = Ownership::start(log_b, lease).await.unwrap();
        tokio::time::sleep(lease).await;
        drop(owner);
        let took = until(lease * 3, "the standby takes over", || {
            standby.deciding_epoch(ShardId(0)).is_some()
        })
        .await;
        kill_to_owned.push(took);
        standby.shutdown().await;
    }
    kill_to_owned.sort();
    eprintln!("lease {lease:?}, kill to the standby deciding, 10 rounds: {kill_to_owned:?}");

    let mut nats = Nats::cluster().await;
    let log = log_for(&nats, "bench", 1, 3).await;
    let monitor = MonitorId::from_bytes([9; 16]);
    for batch in [1usize, 10, 100, 1000] {
        let mut times = Vec::new();
        for _ in 0..20 {
            let records: Vec<ShardRecord> = (0..batch).map(|_| heartbeat(monitor)).collect();
            let started = Instant::now();
            log.append(ShardId(0), &records).await.unwrap();
            times.push(started.elapsed());
        }
        times.sort();
        eprintln!(
            "R3, 3 servers, batch of {batch}: median {:?}, max {:?} over 20",
            times[10], times[19]
        );
    }
    nats.kill("n1").await;
}

/// A measurement, not a check: what a NATS server's SIGKILL does to shard ownership
/// with the default lease (run with `--ignored --nocapture`).
#[tokio::test]
#[ignore = "a measurement (about 40 s)"]
async fn measure_ownership_through_a_nats_server_kill() {
    let mut nats = Nats::cluster().await;
    let lease = Duration::from_secs(10);
    let shards = 6;
    let log_a = log_for(&nats, "pod-a", shards, 3).await;
    let log_b = log_for(&nats, "pod-b", shards, 3).await;
    let a = Ownership::start(log_a.clone(), lease).await.unwrap();
    let b = Ownership::start(log_b, lease).await.unwrap();
    until(Duration::from_secs(15), "every shard owned", || {
        a.owned().len() + b.owned().len() == usize::from(shards)
    })
    .await;
    let mut leaders = BTreeMap::new();
    for shard in ShardId::all(shards) {
        let leader = log_a
            .stream_leader(shard)
            .await
            .unwrap()
            .unwrap_or_default();
        *leaders.entry(leader).or_insert(0) += 1;
    }
    let (victim, led) = leaders.iter().max_by_key(|(_, count)| **count).unwrap();
    let victim = victim.clone();
    eprintln!("stream leaders: {leaders:?}; killing {victim}, which leads {led}");
    let before: BTreeMap<ShardId, u64> = a.owned().into_iter().chain(b.owned()).collect();
    nats.kill(&victim).await;
    let killed = Instant::now();
    let mut not_deciding: BTreeMap<ShardId, Duration> = BTreeMap::new();
    let mut sampled = Instant::now();
    while killed.elapsed() < lease * 3 {
        let since_last = sampled.elapsed();
        sampled = Instant::now();
        for shard in ShardId::all(shards) {
            let deciding = [&a, &b]
                .iter()
                .filter(|manager| manager.deciding_epoch(shard).is_some())
                .count();
            assert!(deciding <= 1, "two pods decide for shard {shard}");
            if deciding == 0 {
                *not_deciding.entry(shard).or_default() += since_last;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let after: BTreeMap<ShardId, u64> = a.owned().into_iter().chain(b.owned()).collect();
    eprintln!(
        "lease {lease:?}, after 3 leases: no pod deciding for {not_deciding:?}; failovers {}; epochs before {before:?}, after {after:?}",
        a.failovers() + b.failovers()
    );
    a.halt().await;
    b.halt().await;
}

#[tokio::test]
async fn cluster_release_hands_a_running_pods_shards_over_at_once_and_it_takes_none_back() {
    let nats = Nats::single().await;
    let url = nats.urls()[0].clone();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut args_a = serve_args(&url, "pod-a");
    // A long lease: a handover by timeout could not pass this test.
    let last = args_a.len() - 1;
    args_a[last] = "8";
    let pod_a = ServerProcess::start(dir_a.path(), &args_a).await;
    until_metric(
        &pod_a,
        "pushmon_cluster_shards_owned",
        4.0,
        Duration::from_secs(5),
    )
    .await;
    let mut args_b = serve_args(&url, "pod-b");
    args_b[last] = "8";
    let pod_b = ServerProcess::start(dir_b.path(), &args_b).await;

    let started = Instant::now();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_pushmon"))
        .args([
            "cluster",
            "release",
            "--cluster-shards",
            "4",
            "--cluster-streams",
            "2",
            "--cluster-lease",
            "8",
        ])
        .env("PUSHMON_CLUSTER_NATS", &url)
        .env("PUSHMON_POD_NAME", "pod-a")
        .output()
        .await
        .unwrap();
    let released = started.elapsed();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "pod pod-a: released (4 shards owned when asked)"
    );
    let took = until_metric(
        &pod_b,
        "pushmon_cluster_shards_owned",
        4.0,
        Duration::from_secs(4),
    )
    .await;
    eprintln!(
        "cluster release returned after {released:?}; pod-b owned every shard {took:?} later (lease 8 s)"
    );
    assert!(released < Duration::from_secs(4), "{released:?}");
    // pod-a serves on but takes nothing back.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        metric(&pod_a.metrics().await, "pushmon_cluster_shards_owned"),
        Some(0.0)
    );
    assert_eq!(
        metric(&pod_b.metrics().await, "pushmon_cluster_failovers_total"),
        Some(0.0)
    );

    // Without servers there is nothing to release: a usage error.
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_pushmon"))
        .args(["cluster", "release", "--pod-name", "pod-a"])
        .env_remove("PUSHMON_CLUSTER_NATS")
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("invalid cluster NATS servers: none given"),
        "{output:?}"
    );
    for pod in [pod_a, pod_b] {
        let (status, log) = pod.sigterm().await;
        assert_eq!(status.code(), Some(0), "{log}");
    }
}

/// The shard records of `monitor` in a 4-shard cluster's logs, read back from NATS.
async fn records_of(log: &JetStreamLog, monitor: MonitorId) -> Vec<ShardRecord> {
    let shard = pushmon::cluster::shard::shard_of(&monitor, 4);
    whole_log(log, shard)
        .await
        .into_iter()
        .map(|stored| stored.record)
        .filter(|record| names(record, monitor))
        .collect()
}

/// Whether `record` is a heartbeat or a change of `monitor` (a heartbeats record:
/// one that holds one of its heartbeats).
fn names(record: &ShardRecord, monitor: MonitorId) -> bool {
    match record {
        ShardRecord::Heartbeat { monitor: of, .. } | ShardRecord::Config { monitor: of, .. } => {
            *of == monitor
        }
        ShardRecord::Heartbeats { heartbeats } => heartbeats.iter().any(|(of, _)| *of == monitor),
        _ => false,
    }
}

/// Whether `record` holds a heartbeat of `monitor`.
fn holds_heartbeat_of(record: &ShardRecord, monitor: MonitorId) -> bool {
    !matches!(record, ShardRecord::Config { .. }) && names(record, monitor)
}

/// Polls pod `server` until monitor `id` matches `condition`.
pub(crate) async fn until_monitor(
    server: &ServerProcess,
    id: &str,
    what: &str,
    condition: impl Fn(&crate::support::Monitor) -> bool,
) -> crate::support::Monitor {
    let start = Instant::now();
    loop {
        let response = server
            .api(reqwest::Method::GET, &format!("/api/monitors/{id}"))
            .send()
            .await
            .unwrap();
        if response.status() == reqwest::StatusCode::OK {
            let monitor: crate::support::Monitor = response.json().await.unwrap();
            if condition(&monitor) {
                return monitor;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "monitor {id}: not {what} within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Slices 1 and 2 of the clustered engine with two real `pushmon serve` processes: a
/// monitor created on pod B exists on pod A with the same token; a push to pod A is
/// answered 200 only once its heartbeat record is in the shard's log (read back from
/// NATS right after the 200) and is seen on pod B; a bulk push the same; with NATS
/// gone, a push is answered 503, never 200; both pods end with the same state.
#[tokio::test]
async fn pushes_and_creations_on_any_pod_go_through_the_shard_logs_and_reach_every_pod() {
    let mut nats = Nats::single().await;
    let url = nats.urls()[0].clone();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let pod_a = ServerProcess::start(dir_a.path(), &serve_args(&url, "pod-a")).await;
    let pod_b = ServerProcess::start(dir_b.path(), &serve_args(&url, "pod-b")).await;
    let reader = log_for(&nats, "reader", 4, 1).await;

    let created = pod_b.create_monitor("made-on-b", 600).await;
    let id = MonitorId::parse(&created.id).unwrap();
    assert!(matches!(
        records_of(&reader, id).await.as_slice(),
        [ShardRecord::Config { .. }]
    ));
    let on_a = until_monitor(&pod_a, &created.id, "created", |_| true).await;
    assert_eq!(on_a.push_token, created.push_token);
    assert_eq!(on_a.name, "made-on-b");

    // Acknowledged only after the PubAck: the record is in the log at the 200.
    pod_a
        .push_ok(&created.push_token, &[("msg", "from-a")])
        .await;
    let records = records_of(&reader, id).await;
    assert_eq!(records.len(), 2, "{records:?}");
    // The pod's publisher puts the pushes queued for a shard in one record.
    assert!(holds_heartbeat_of(&records[1], id), "{records:?}");
    let on_b = until_monitor(&pod_b, &created.id, "pushed through pod a", |monitor| {
        monitor.last_msg.as_deref() == Some("from-a")
    })
    .await;
    assert_eq!(on_b.status, crate::support::Status::Up);

    // A bulk push to pod B reaches pod A.
    let bulk = crate::ingest::push_batch(
        &pod_b,
        &serde_json::json!([
            {"token": created.push_token, "msg": "bulk-1"},
            {"token": created.push_token, "msg": "bulk-2"},
        ]),
    )
    .await;
    let bulk = crate::support::expect_json(bulk, reqwest::StatusCode::OK).await;
    assert_eq!(bulk["accepted"], 2, "{bulk}");
    // Both items are in the log at the 200 (in one record when queued together).
    let heartbeats: usize = records_of(&reader, id)
        .await
        .iter()
        .map(|record| match record {
            ShardRecord::Heartbeats { heartbeats } => {
                heartbeats.iter().filter(|(of, _)| *of == id).count()
            }
            ShardRecord::Heartbeat { .. } => 1,
            _ => 0,
        })
        .sum();
    assert_eq!(heartbeats, 3);
    until_monitor(
        &pod_a,
        &created.id,
        "bulk-pushed through pod b",
        |monitor| monitor.last_msg.as_deref() == Some("bulk-2"),
    )
    .await;

    // Both pods hold the same history of the monitor.
    let kinds = |events: Vec<crate::support::Event>| -> Vec<(String, Option<String>)> {
        events
            .into_iter()
            .map(|event| (event.kind, event.msg))
            .collect()
    };
    let history_a = kinds(pod_a.all_events(&created.id).await);
    assert_eq!(history_a, kinds(pod_b.all_events(&created.id).await));
    // Newest first: what each pod's actor decided on the first heartbeat (`up`) is
    // the same on both.
    assert_eq!(
        history_a
            .iter()
            .map(|(kind, _)| kind.as_str())
            .collect::<Vec<_>>(),
        ["heartbeat", "heartbeat", "up", "heartbeat", "created"]
    );
    let (a, b) = (
        pod_a.get_monitor(&created.id).await,
        pod_b.get_monitor(&created.id).await,
    );
    assert_eq!(
        (a.status, a.last_heartbeat_at, a.last_msg),
        (b.status, b.last_heartbeat_at, b.last_msg)
    );

    // Changes go through the log too: paused on pod A, renamed on pod B, deleted on
    // pod A; each answered once the taking pod's fold applied it, and seen on the other.
    let paused = pod_a.pause(&created.id).await;
    assert_eq!(paused.status, crate::support::Status::Paused);
    until_monitor(&pod_b, &created.id, "paused", |monitor| {
        monitor.status == crate::support::Status::Paused
    })
    .await;
    let renamed = pod_b
        .patch_monitor(&created.id, &serde_json::json!({"name": "renamed-on-b"}))
        .await;
    let renamed = crate::support::expect_json(renamed, reqwest::StatusCode::OK).await;
    assert_eq!(renamed["name"], "renamed-on-b");
    until_monitor(&pod_a, &created.id, "renamed", |monitor| {
        monitor.name == "renamed-on-b"
    })
    .await;
    let records = records_of(&reader, id).await;
    assert_eq!(
        records
            .iter()
            .filter(|record| matches!(record, ShardRecord::Config { .. }))
            .count(),
        3,
        "{records:?}"
    );
    let deleted = pod_a.delete_monitor(&created.id).await;
    assert!(deleted.status().is_success(), "{:?}", deleted.text().await);
    let start = Instant::now();
    while pod_b
        .api(
            reqwest::Method::GET,
            &format!("/api/monitors/{}", created.id),
        )
        .send()
        .await
        .unwrap()
        .status()
        != reqwest::StatusCode::NOT_FOUND
    {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "not deleted on pod b"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let fresh = pod_a.create_monitor("after", 600).await;
    until_monitor(&pod_b, &fresh.id, "created", |_| true).await;

    // No PubAck, no 200.
    let name = nats.names()[0].clone();
    nats.kill(&name).await;
    let response = pod_a.push(&fresh.push_token, &[("msg", "lost")]).await;
    assert_eq!(response.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);
    pod_a.sigkill().await;
    pod_b.sigkill().await;
}

/// The pod owning `shard` now, from the pods' epoch gauges.
async fn owner_of(pods: [(&str, &ServerProcess); 2], shard: ShardId) -> Option<String> {
    let series = format!("pushmon_cluster_shard_epoch{{shard=\"{shard}\"}}");
    for (name, pod) in pods {
        if metric(&pod.metrics().await, &series).is_some_and(|epoch| epoch > 0.0) {
            return Some(name.to_owned());
        }
    }
    None
}

/// Slice 3: only the shard's owner decides a deadline, and every pod adopts the
/// decision once its fold reads it back effective: the shard's log holds exactly one
/// decision about a silent monitor, under the owner's epoch, on its heartbeat, and
/// both pods' copies go `down` with the same event, and a real receiver gets one
/// `down` alert (through a webhook channel created on pod B); when the owner of a silent
/// monitor's shard is SIGKILLed before its deadline, the other pod takes the shard
/// over, decides it and alerts once; a monitor pushed through both pods, then the
/// survivor, never goes down (nor alerts) across the kill.
#[tokio::test]
async fn only_the_owner_decides_deadlines_and_a_new_owner_decides_after_a_sigkill() {
    let nats = Nats::single().await;
    let url = nats.urls()[0].clone();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let pod_a = ServerProcess::start(dir_a.path(), &serve_args(&url, "pod-a")).await;
    let pod_b = ServerProcess::start(dir_b.path(), &serve_args(&url, "pod-b")).await;
    let reader = log_for(&nats, "reader", 4, 1).await;
    // Until ownership follows the preference (a shard moves after two leases).
    let start = Instant::now();
    loop {
        let mut settled = true;
        for shard in ShardId::all(4) {
            let preferred = preferred_pod(shard, ["pod-a", "pod-b"]).unwrap();
            let owner = owner_of([("pod-a", &pod_a), ("pod-b", &pod_b)], shard).await;
            settled &= owner.as_deref() == Some(preferred);
        }
        if settled {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "ownership did not settle"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let shard_of = |id: &str| pushmon::cluster::shard::shard_of(&MonitorId::parse(id).unwrap(), 4);
    let pods = |name: &str| if name == "pod-a" { &pod_a } else { &pod_b };

    // A webhook channel, created on pod B, exists on both pods.
    let receiver = crate::receiver::Receiver::start().await;
    let channel = webhook_channel(&pod_b, receiver.url("/hook")).await;
    let start = Instant::now();
    while pod_a
        .api(reqwest::Method::GET, &format!("/api/channels/{channel}"))
        .send()
        .await
        .unwrap()
        .status()
        != reqwest::StatusCode::OK
    {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the channel is not on pod a"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let with_hook = |name: &str, timeout: u64| serde_json::json!({"name": name, "timeout_seconds": timeout, "channels": [channel]});
    // Down alerts received for monitor `id`.
    let downs_for = |id: &str| -> Vec<String> {
        receiver
            .delivered()
            .iter()
            .map(|received| received.json())
            .filter(|alert| alert["event"] == "down" && alert["monitor"]["id"] == id)
            .map(|alert| alert.to_string())
            .collect()
    };

    // A silent monitor: decided once, by its owner, adopted by both pods; alerted once.
    let silent = pod_a.create_monitor_from(&with_hook("silent", 2)).await;
    let shard = shard_of(&silent.id);
    let owner = preferred_pod(shard, ["pod-a", "pod-b"]).unwrap();
    let standby = if owner == "pod-a" { "pod-b" } else { "pod-a" };
    until_monitor(pods(standby), &silent.id, "created", |_| true).await;
    pods(standby).push_ok(&silent.push_token, &[]).await;
    for pod in [owner, standby] {
        until_monitor(pods(pod), &silent.id, "down", |monitor| {
            monitor.status == crate::support::Status::Down
        })
        .await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (shard_log, folded) = fold(&whole_log(&reader, shard).await);
    let id = MonitorId::parse(&silent.id).unwrap();
    let decisions: Vec<_> = folded
        .iter()
        .filter(|(stored, _)| {
            matches!(&stored.record, ShardRecord::Decision { monitor, .. } if *monitor == id)
        })
        .collect();
    let effective: Vec<_> = decisions
        .iter()
        .filter(|(_, result)| *result == Folded::Effective)
        .collect();
    assert_eq!(effective.len(), 1, "{decisions:?}");
    let ShardRecord::Decision { epoch, basis, .. } = &effective[0].0.record else {
        unreachable!()
    };
    assert_eq!(Some(*epoch), shard_log.epoch());
    let pushed_at = folded
        .iter()
        .filter(|(stored, _)| holds_heartbeat_of(&stored.record, id))
        .map(|(stored, _)| stored.sequence)
        .max();
    assert_eq!(Some(*basis), pushed_at, "based on the push");
    assert_eq!(shard_log.last_heartbeat(&id), effective[0].0.sequence);
    assert_eq!(
        shard_log.owner().map(|owner| owner.pod.as_str()),
        Some(owner),
        "the decision's epoch is the owner's"
    );
    let downs = |events: Vec<crate::support::Event>| -> Vec<String> {
        events
            .into_iter()
            .filter(|event| event.kind == "down")
            .map(|event| event.at)
            .collect()
    };
    let owner_downs = downs(pods(owner).history(&silent.id).await);
    assert_eq!(owner_downs.len(), 1);
    assert_eq!(owner_downs, downs(pods(standby).history(&silent.id).await));
    assert_eq!(downs_for(&silent.id).len(), 1, "{:?}", receiver.delivered());

    // Reminders: each repeated verdict is based on the effective one before it, so
    // each counts (and alerts) once.
    let mut reminded_body = with_hook("reminded", 1);
    reminded_body["realert_every_seconds"] = serde_json::json!(1);
    let reminded = pod_b.create_monitor_from(&reminded_body).await;
    // Pod A knows its token once its fold has the creation.
    until_monitor(&pod_a, &reminded.id, "created", |_| true).await;
    pod_a.push_ok(&reminded.push_token, &[]).await;
    let start = Instant::now();
    while downs_for(&reminded.id).len() < 3 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "fewer than a down and two reminders: {:?}",
            receiver.delivered()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    pod_b.pause(&reminded.id).await;
    let reminder_ids: BTreeSet<String> = receiver
        .delivered()
        .iter()
        .filter(|received| received.json()["monitor"]["id"] == reminded.id.as_str())
        .map(|received| {
            received.headers["x-pushmon-alert-id"]
                .to_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert!(reminder_ids.len() >= 3, "{reminder_ids:?}");

    // A monitor silent from now on, whose owner dies before its deadline, and one
    // that keeps pushing (both pods, then the survivor) in a shard the victim owns.
    let orphan = pod_a.create_monitor_from(&with_hook("orphan", 4)).await;
    let victim = preferred_pod(shard_of(&orphan.id), ["pod-a", "pod-b"]).unwrap();
    let survivor = if victim == "pod-a" { "pod-b" } else { "pod-a" };
    let mut pushed = pod_a.create_monitor("pushed", 3).await;
    while preferred_pod(shard_of(&pushed.id), ["pod-a", "pod-b"]) != Some(victim) {
        pushed = pod_a.create_monitor("pushed", 3).await;
    }
    until_monitor(pods(survivor), &pushed.id, "created", |_| true).await;
    until_monitor(pods(survivor), &orphan.id, "created", |_| true).await;
    pods(survivor).push_ok(&orphan.push_token, &[]).await;
    for round in 0..4 {
        let via = if round % 2 == 0 { victim } else { survivor };
        pods(via).push_ok(&pushed.push_token, &[]).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let (victim_pod, survivor_pod) = if victim == "pod-a" {
        (pod_a, pod_b)
    } else {
        (pod_b, pod_a)
    };
    victim_pod.sigkill().await;
    let killed = Instant::now();
    loop {
        survivor_pod.push_ok(&pushed.push_token, &[]).await;
        let orphan_now = survivor_pod.get_monitor(&orphan.id).await;
        if orphan_now.status == crate::support::Status::Down {
            break;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(12),
            "the new owner did not decide within 12 s: {orphan_now:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    eprintln!(
        "owner SIGKILLed: the new owner decided after {:?}",
        killed.elapsed()
    );
    // The monitor pushed throughout stayed up on the new owner, which now decides.
    tokio::time::sleep(Duration::from_millis(500)).await;
    survivor_pod.push_ok(&pushed.push_token, &[]).await;
    let history = survivor_pod.history(&pushed.id).await;
    assert!(
        !history.iter().any(|event| event.kind == "down"),
        "{history:?}"
    );
    assert_eq!(
        survivor_pod.get_monitor(&pushed.id).await.status,
        crate::support::Status::Up
    );
    // Exactly once each, and nothing for the monitor that kept pushing.
    assert_eq!(downs_for(&orphan.id).len(), 1, "{:?}", receiver.delivered());
    assert_eq!(downs_for(&silent.id).len(), 1, "{:?}", receiver.delivered());
    assert!(downs_for(&pushed.id).is_empty());
    survivor_pod.sigkill().await;
}

/// A measurement, not a check: `pushmon serve` with the default lease (5 s) SIGKILLed
/// while another pod runs; how long until the other pod owns (and decides for) every
/// shard, over 3 runs. Run with
/// `cargo test --test it cluster::measure_failover_with_the_default_lease -- --ignored --nocapture`.
#[tokio::test]
#[ignore = "a measurement (about 40 s)"]
async fn measure_failover_with_the_default_lease() {
    // PUSHMON_FAILOVER_RUNS=20 for the figure in BENCHMARKS.md.
    let runs: u32 = std::env::var("PUSHMON_FAILOVER_RUNS")
        .ok()
        .and_then(|runs| runs.parse().ok())
        .unwrap_or(3);
    for run in 0..runs {
        let nats = Nats::single().await;
        let url = nats.urls()[0].clone();
        let args = |pod: &'static str| {
            vec![
                "--cluster-nats",
                url.as_str(),
                "--pod-name",
                pod,
                "--cluster-shards",
                "4",
                "--cluster-streams",
                "2",
                "--cluster-replicas",
                "1",
            ]
        };
        let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let pod_a = ServerProcess::start(dir_a.path(), &args("pod-a")).await;
        until_metric(
            &pod_a,
            "pushmon_cluster_shards_owned",
            4.0,
            Duration::from_secs(10),
        )
        .await;
        let pod_b = ServerProcess::start(dir_b.path(), &args("pod-b")).await;
        tokio::time::sleep(Duration::from_millis(1000)).await;
        pod_a.sigkill().await;
        let took = until_metric(
            &pod_b,
            "pushmon_cluster_shards_owned",
            4.0,
            Duration::from_secs(15),
        )
        .await;
        eprintln!(
            "run {run}: default lease, pod-a SIGKILLed: pod-b owns every shard after {took:?}"
        );
        pod_b.sigkill().await;
    }
}

/// The positions pod `server` logged its folds resume from, per stream.
fn resumed_positions(server: &ServerProcess) -> BTreeMap<u16, u64> {
    // `stream=0` in human logs, `"stream":0` in JSON ones.
    let number_after = |line: &str, field: &str| -> Option<u64> {
        let (at, prefix) = [format!(" {field}="), format!("\"{field}\":")]
            .into_iter()
            .find_map(|prefix| Some((line.find(&prefix)?, prefix)))?;
        let rest = line[at + prefix.len()..].trim_start_matches('"');
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    };
    server
        .log()
        .lines()
        .filter(|line| line.contains("applying the records after the local position"))
        .filter_map(|line| {
            Some((
                u16::try_from(number_after(line, "stream")?).ok()?,
                number_after(line, "position")?,
            ))
        })
        .collect()
}

/// A pod SIGKILLed and restarted on its store resumes each stream's fold from the
/// position it stored with its local copy, not from sequence 1: heartbeats taken by
/// the other pod before the kill and while it was down, and pushed to it after, are
/// each in its history exactly once, as in the other pod's.
#[tokio::test]
async fn a_sigkilled_pod_resumes_from_its_local_position_and_loses_or_doubles_no_heartbeat() {
    let nats = Nats::single().await;
    let url = nats.urls()[0].clone();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let pod_a = ServerProcess::start(dir_a.path(), &serve_args(&url, "pod-a")).await;
    let pod_b = ServerProcess::start(dir_b.path(), &serve_args(&url, "pod-b")).await;
    assert_eq!(
        resumed_positions(&pod_a),
        BTreeMap::from([(0, 0), (1, 0)]),
        "a new pod folds from the start: {}",
        pod_a.log()
    );
    let mut monitors = Vec::new();
    for n in 0..4 {
        monitors.push(pod_b.create_monitor(&format!("m{n}"), 600).await);
    }
    async fn push_all(
        pod: &crate::support::Api,
        monitors: &[crate::support::Monitor],
        label: &str,
        count: usize,
    ) {
        for n in 0..count {
            for monitor in monitors {
                let msg = format!("{label}-{n}");
                pod.push_ok(&monitor.push_token, &[("msg", &msg)]).await;
            }
        }
    }
    push_all(&pod_b, &monitors, "before", 10).await;
    for monitor in &monitors {
        until_monitor(&pod_a, &monitor.id, "folded before the kill", |seen| {
            seen.last_msg.as_deref() == Some("before-9")
        })
        .await;
    }
    pod_a.sigkill().await;
    push_all(&pod_b, &monitors, "while-down", 10).await;

    let pod_a = ServerProcess::start(dir_a.path(), &serve_args(&url, "pod-a")).await;
    let resumed = resumed_positions(&pod_a);
    assert_eq!(resumed.len(), 2, "{}", pod_a.log());
    assert!(
        resumed.values().all(|position| *position > 0),
        "every stream resumes after its local position, not from 1: {resumed:?}"
    );
    push_all(&pod_a, &monitors, "after", 5).await;
    let expected: Vec<String> = ["before", "while-down", "after"]
        .iter()
        .flat_map(|label| {
            let count = if *label == "after" { 5 } else { 10 };
            (0..count).map(move |n| format!("{label}-{n}"))
        })
        .collect();
    for monitor in &monitors {
        until_monitor(&pod_a, &monitor.id, "pushed after the restart", |seen| {
            seen.last_msg.as_deref() == Some("after-4")
        })
        .await;
        until_monitor(&pod_b, &monitor.id, "pushed after the restart", |seen| {
            seen.last_msg.as_deref() == Some("after-4")
        })
        .await;
        let heartbeats = |events: Vec<crate::support::Event>| -> Vec<String> {
            let mut msgs: Vec<String> = events
                .into_iter()
                .filter(|event| event.kind == "heartbeat")
                .filter_map(|event| event.msg)
                .collect();
            msgs.reverse();
            msgs
        };
        let on_a = heartbeats(pod_a.all_events(&monitor.id).await);
        assert_eq!(on_a, expected, "monitor {}: pod A's history", monitor.name);
        assert_eq!(on_a, heartbeats(pod_b.all_events(&monitor.id).await));
    }
}

/// The records the streams of a 2-stream cluster hold (their last sequences).
pub(crate) async fn records_in_streams(nats: &Nats) -> u64 {
    let client = async_nats::connect(nats.urls()).await.unwrap();
    let jetstream = async_nats::jetstream::new(client);
    let mut records = 0;
    for stream in StreamId::all(2) {
        let mut stream = jetstream.get_stream(stream.name()).await.unwrap();
        records += stream.info().await.unwrap().state.last_sequence;
    }
    records
}

/// The heartbeats' messages in monitor `id`'s history on `server`, oldest first.
pub(crate) async fn heartbeat_msgs(server: &ServerProcess, id: &str) -> Vec<String> {
    let mut msgs: Vec<String> = server
        .all_events(id)
        .await
        .into_iter()
        .filter(|event| event.kind == "heartbeat")
        .filter_map(|event| event.msg)
        .collect();
    msgs.reverse();
    msgs
}

/// The value of counter `series` on `server` (0 if absent).
pub(crate) async fn counter(server: &ServerProcess, series: &str) -> f64 {
    metric(&server.metrics().await, series).unwrap_or(0.0)
}

/// Snapshots of the fold (docs/cluster.md, "Restarts"), with two real pods; pod A
/// writes one every 20 records of a stream (`PUSHMON_CLUSTER_SNAPSHOT_RECORDS`):
/// - SIGKILLed after snapshots and restarted, it folds again only the records after
///   its snapshot (`pushmon_cluster_refolded_records_total` well below the records
///   in the streams), ends with the same histories as pod B, and a monitor silent
///   across the restart, whose shard it owns again, goes down once: its verdict,
///   based on the basis its snapshot seeded, is effective, under its own epoch;
/// - stopped cleanly, it writes a snapshot at its position and after a restart
///   folds again (nearly) nothing, and again has pod B's histories.
#[tokio::test]
async fn a_restarted_pod_folds_from_its_snapshot_not_from_the_first_record_and_judges_alike() {
    let nats = Nats::single().await;
    let url = nats.urls()[0].clone();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let env = [("PUSHMON_CLUSTER_SNAPSHOT_RECORDS", "20")];
    let args_a = serve_args(&url, "pod-a");
    let start_a = || ServerProcess::start_with_env(dir_a.path(), &args_a, &env);
    let pod_a = start_a().await;
    let pod_b = ServerProcess::start(dir_b.path(), &serve_args(&url, "pod-b")).await;
    until_ownership_settles(&pod_a, &pod_b).await;
    let mut monitors = Vec::new();
    for n in 0..4 {
        monitors.push(pod_b.create_monitor(&format!("m{n}"), 600).await);
    }
    // A monitor in a shard pod A prefers, silent from before the kill on.
    let silent = loop {
        let created = pod_b.create_monitor("silent", 12).await;
        let shard = pushmon::cluster::shard::shard_of(&MonitorId::parse(&created.id).unwrap(), 4);
        if preferred_pod(shard, ["pod-a", "pod-b"]) == Some("pod-a") {
            break created;
        }
        pod_b
            .api(
                reqwest::Method::DELETE,
                &format!("/api/monitors/{}", created.id),
            )
            .send()
            .await
            .unwrap();
    };
    let push_round = |pod: &ServerProcess, label: String| {
        let pod: crate::support::Api = (**pod).clone();
        let monitors = monitors.clone();
        async move {
            for monitor in &monitors {
                pod.push_ok(&monitor.push_token, &[("msg", &label)]).await;
            }
        }
    };
    let mut expected = Vec::new();
    for n in 0..15 {
        push_round(&pod_b, format!("before-{n}")).await;
        expected.push(format!("before-{n}"));
    }
    pod_b.push_ok(&silent.push_token, &[]).await;
    until_monitor(&pod_a, &silent.id, "pushed", |seen| {
        seen.last_heartbeat_at.is_some()
    })
    .await;
    for monitor in &monitors {
        until_monitor(&pod_a, &monitor.id, "folded before the kill", |seen| {
            seen.last_msg.as_deref() == Some("before-14")
        })
        .await;
    }
    assert!(
        counter(&pod_a, "pushmon_cluster_snapshots_total").await >= 2.0,
        "pod A wrote snapshots: {}",
        pod_a.metrics().await
    );
    pod_a.sigkill().await;
    for n in 0..3 {
        push_round(&pod_b, format!("while-down-{n}")).await;
        expected.push(format!("while-down-{n}"));
    }
    let records = records_in_streams(&nats).await;
    let pod_a = start_a().await;
    let refolded = counter(&pod_a, "pushmon_cluster_refolded_records_total").await;
    eprintln!("after a SIGKILL: {refolded} records folded again of {records}");
    assert!(
        refolded < records as f64 / 2.0,
        "the restart folded again {refolded} of {records} records: not from its snapshot\n{}",
        pod_a.log()
    );
    assert!(
        pod_a.log().lines().any(|line| line
            .contains("folding the stream again after the snapshot")
            && !line.contains("from=0")),
        "{}",
        pod_a.log()
    );
    // Judged as before: the silent monitor goes down once, on both pods, by one
    // effective decision made under pod A's epoch (its snapshot seeded the basis).
    for pod in [&pod_a, &pod_b] {
        until_monitor_within(pod, &silent.id, Duration::from_secs(30)).await;
    }
    let reader = log_for(&nats, "reader", 4, 1).await;
    let id = MonitorId::parse(&silent.id).unwrap();
    let shard = pushmon::cluster::shard::shard_of(&id, 4);
    let mut owner = None;
    let mut effective = Vec::new();
    for (stored, result) in fold(&whole_log(&reader, shard).await).1 {
        match &stored.record {
            ShardRecord::Takeover { pod, .. } => owner = Some((stored.sequence, pod.clone())),
            ShardRecord::Decision { monitor, epoch, .. }
                if *monitor == id && result == Folded::Effective =>
            {
                effective.push((*epoch, owner.clone()));
            }
            _ => {}
        }
    }
    assert_eq!(effective.len(), 1, "{effective:?}");
    let (epoch, by) = effective[0].clone();
    assert_eq!(
        by,
        Some((epoch, "pod-a".to_owned())),
        "decided by the restarted pod A under its epoch"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    for pod in [&pod_a, &pod_b] {
        let downs = pod
            .history(&silent.id)
            .await
            .into_iter()
            .filter(|event| event.kind == "down")
            .count();
        assert_eq!(downs, 1);
    }
    // The same histories on both pods.
    push_round(&pod_a, "after-kill".to_owned()).await;
    expected.push("after-kill".to_owned());
    for monitor in &monitors {
        until_monitor(&pod_b, &monitor.id, "pushed after the restart", |seen| {
            seen.last_msg.as_deref() == Some("after-kill")
        })
        .await;
        let on_a = heartbeat_msgs(&pod_a, &monitor.id).await;
        assert_eq!(on_a, expected, "monitor {}: pod A's history", monitor.name);
        assert_eq!(on_a, heartbeat_msgs(&pod_b, &monitor.id).await);
    }

    // A clean stop: a snapshot at the position, nothing (or the few records folded
    // between the snapshot and the stop) folded again after the restart.
    let snapshots = counter(&pod_a, "pushmon_cluster_snapshots_total").await;
    let (_, log) = pod_a.sigterm().await;
    assert!(
        log.contains("released every owned shard"),
        "a clean stop: {log}"
    );
    push_round(&pod_b, "while-stopped".to_owned()).await;
    expected.push("while-stopped".to_owned());
    let records = records_in_streams(&nats).await;
    let pod_a = start_a().await;
    let refolded = counter(&pod_a, "pushmon_cluster_refolded_records_total").await;
    eprintln!(
        "after a clean stop ({snapshots} snapshots before it): {refolded} records folded again of {records}"
    );
    assert!(
        refolded <= 5.0,
        "a clean stop writes a snapshot at the position: {refolded} of {records} folded again\n{}",
        pod_a.log()
    );
    push_round(&pod_a, "after-stop".to_owned()).await;
    expected.push("after-stop".to_owned());
    for monitor in &monitors {
        until_monitor(&pod_b, &monitor.id, "pushed after the restart", |seen| {
            seen.last_msg.as_deref() == Some("after-stop")
        })
        .await;
        let on_a = heartbeat_msgs(&pod_a, &monitor.id).await;
        assert_eq!(on_a, expected, "monitor {}: pod A's history", monitor.name);
        assert_eq!(on_a, heartbeat_msgs(&pod_b, &monitor.id).await);
    }
    pod_a.sigkill().await;
    pod_b.sigkill().await;
}

/// The number logged as `field` on the last line of `log` holding `message`.
pub(crate) fn logged_number(log: &str, message: &str, field: &str) -> Option<u64> {
    let line = log.lines().rev().find(|line| line.contains(message))?;
    let (at, prefix) = [format!(" {field}="), format!("\"{field}\":")]
        .into_iter()
        .find_map(|prefix| Some((line.find(&prefix)?, prefix)))?;
    let digits: String = line[at + prefix.len()..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// Restart catch-up of a pod with a long log (`RECORDS` heartbeat records of
/// `MONITORS` monitors appended straight to the streams), without a snapshot (a
/// restart folds every record again) and with one written at a clean stop.
#[tokio::test]
#[ignore = "a measurement (about two minutes)"]
async fn measure_restart_catch_up_with_and_without_a_snapshot() {
    const MONITORS: usize = 100;
    const RECORDS: usize = 200_000;
    let nats = Nats::single().await;
    let url = nats.urls()[0].clone();
    let dir = tempfile::tempdir().unwrap();
    let args = serve_args(&url, "pod-a");
    let no_snapshots = [("PUSHMON_CLUSTER_SNAPSHOT_RECORDS", "0")];
    let pod = ServerProcess::start_with_env(dir.path(), &args, &no_snapshots).await;
    let mut monitors = Vec::new();
    for n in 0..MONITORS {
        monitors.push(pod.create_monitor(&format!("m{n}"), 3_600).await);
    }
    let loader = log_for(&nats, "loader", 4, 1).await;
    let ids: Vec<MonitorId> = monitors
        .iter()
        .map(|monitor| MonitorId::parse(&monitor.id).unwrap())
        .collect();
    let loading = Instant::now();
    append_heartbeat_records(&loader, &ids, RECORDS).await;
    let records = records_in_streams(&nats).await;
    eprintln!(
        "{records} records in the streams, appended in {:?}",
        loading.elapsed()
    );
    let folding = Instant::now();
    for (n, monitor) in monitors.iter().enumerate() {
        let last = format!("hb-{}", RECORDS - MONITORS + n);
        let start = Instant::now();
        loop {
            if pod.get_monitor(&monitor.id).await.last_msg.as_deref() == Some(last.as_str()) {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(300), "not folded");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    eprintln!("the running pod folded them in {:?}", folding.elapsed());
    pod.sigterm().await;

    // Restarted without a snapshot (none written): every record folded again.
    let restarting = Instant::now();
    let pod = ServerProcess::start_with_env(dir.path(), &args, &no_snapshots).await;
    let before = restarting.elapsed();
    let refolded_before = counter(&pod, "pushmon_cluster_refolded_records_total").await;
    let caught_up_before = logged_number(&pod.log(), "every stream folded up to", "caught_up_ms");
    // Once more with snapshots on, so that the clean stop writes one.
    pod.sigterm().await;
    let pod = ServerProcess::start(dir.path(), &args).await;
    let (_, log) = pod.sigterm().await;
    let snapshot_bytes = logged_number(&log, "for the restart", "bytes");
    let snapshot_us = logged_number(&log, "for the restart", "took_us");

    let restarting = Instant::now();
    let pod = ServerProcess::start(dir.path(), &args).await;
    let after = restarting.elapsed();
    let refolded_after = counter(&pod, "pushmon_cluster_refolded_records_total").await;
    let caught_up_after = logged_number(&pod.log(), "every stream folded up to", "caught_up_ms");
    eprintln!(
        "{records} records, {MONITORS} monitors: restart to ready without a snapshot {before:?} \
         (folds caught up in {caught_up_before:?} ms, {refolded_before} records folded again); \
         with a snapshot {after:?} (caught up in {caught_up_after:?} ms, {refolded_after} folded again); \
         a snapshot at the stop: {snapshot_bytes:?} bytes, {snapshot_us:?} us (the last stream's)"
    );
    assert!(refolded_before >= records as f64 - 100.0);
    assert!(refolded_after < 100.0);
    pod.sigkill().await;
}

/// The `delivery` events of monitor `id` on pod `server`, oldest first.
async fn deliveries_on(server: &ServerProcess, id: &str) -> Vec<serde_json::Value> {
    let response = server
        .api(
            reqwest::Method::GET,
            &format!("/api/monitors/{id}/events?limit=1000"),
        )
        .send()
        .await
        .unwrap();
    let body = crate::support::expect_json(response, reqwest::StatusCode::OK).await;
    let mut found: Vec<serde_json::Value> = body["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| event["kind"] == "delivery")
        .cloned()
        .collect();
    found.reverse();
    found
}

/// Whether pod `server` still answers (an aborted process, not yet reaped, is
/// still there for `kill -0`).
async fn answers(server: &ServerProcess) -> bool {
    server
        .api(reqwest::Method::GET, "/healthz")
        .send()
        .await
        .is_ok()
}

/// Until every shard of a 2-pod, 4-shard cluster is owned by its preferred pod.
async fn until_ownership_settles(pod_a: &ServerProcess, pod_b: &ServerProcess) {
    let start = Instant::now();
    loop {
        let mut settled = true;
        for shard in ShardId::all(4) {
            let preferred = preferred_pod(shard, ["pod-a", "pod-b"]).unwrap();
            let owner = owner_of([("pod-a", pod_a), ("pod-b", pod_b)], shard).await;
            settled &= owner.as_deref() == Some(preferred);
        }
        if settled {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "ownership did not settle"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Issue 21's alerts in the clustered mode, with two real pods, a real receiver and
/// the fault hook `PUSHMON_FAULT_EXIT_AFTER_SEND` on pod A:
/// - an alert's id is its effective decision's stream and sequence, the same in the
///   receiver's `X-Pushmon-Alert-Id` and in both pods' delivery outcome (recorded in
///   the shard as a `DeliveredAt` record and folded into both pods' histories at the
///   time the sender recorded it);
/// - pod A aborts right after delivering a second alert, before recording it: pod B
///   takes the shard over and sends exactly that alert again, with the same id, and
///   nothing else (the first alert, whose outcome is in the shard, is not re-sent);
/// - pod A started again has each `down` and `delivery` once, at the same times as
///   pod B (a folded record is written with its stream position, never twice);
/// - no decision in the log was made by a pod that did not own the shard (every
///   decision's epoch is a takeover, none is void for a stale epoch).
#[tokio::test]
async fn alert_ids_and_outcomes_come_from_the_shard_log_and_a_new_owner_resends_only_what_was_not_recorded()
 {
    let nats = Nats::single().await;
    let url = nats.urls()[0].clone();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let pod_a = ServerProcess::start_with_env(
        dir_a.path(),
        &serve_args(&url, "pod-a"),
        &[("PUSHMON_FAULT_EXIT_AFTER_SEND", "2")],
    )
    .await;
    let pod_b = ServerProcess::start(dir_b.path(), &serve_args(&url, "pod-b")).await;
    let reader = log_for(&nats, "reader", 4, 1).await;
    until_ownership_settles(&pod_a, &pod_b).await;
    let shard_of = |id: &str| pushmon::cluster::shard::shard_of(&MonitorId::parse(id).unwrap(), 4);

    let receiver = crate::receiver::Receiver::start().await;
    let channel = webhook_channel(&pod_b, receiver.url("/hook")).await;
    let start = Instant::now();
    while pod_a
        .api(reqwest::Method::GET, &format!("/api/channels/{channel}"))
        .send()
        .await
        .unwrap()
        .status()
        != reqwest::StatusCode::OK
    {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no channel on pod a:\n{}",
            pod_a.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // (alert id, event) of every delivery received for monitor `id`.
    let received_for = |id: &str| -> Vec<(String, String)> {
        receiver
            .delivered()
            .iter()
            .filter(|received| received.json()["monitor"]["id"] == id)
            .map(|received| {
                (
                    received.headers["x-pushmon-alert-id"]
                        .to_str()
                        .unwrap()
                        .to_owned(),
                    received.json()["event"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    // A monitor of a shard pod A owns, pushed once, then alerting the receiver when
    // silent for 2 s (those of other shards, made on the way, alert no one).
    let create_on_a = async |name: &str| {
        loop {
            let monitor = pod_b.create_monitor(name, 3600).await;
            if preferred_pod(shard_of(&monitor.id), ["pod-a", "pod-b"]) == Some("pod-a") {
                until_monitor(&pod_a, &monitor.id, "created", |_| true).await;
                pod_b.push_ok(&monitor.push_token, &[]).await;
                let patched = pod_b
                    .patch_monitor(
                        &monitor.id,
                        &serde_json::json!({"timeout_seconds": 2, "channels": [channel]}),
                    )
                    .await;
                assert_eq!(patched.status(), reqwest::StatusCode::OK);
                return monitor;
            }
        }
    };

    // The first alert: delivered by pod A, its outcome recorded in the shard.
    let first = create_on_a("first").await;
    let start = Instant::now();
    while received_for(&first.id).is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no alert for the first monitor"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let first_id = received_for(&first.id)[0].0.clone();
    let monitor = MonitorId::parse(&first.id).unwrap();
    let shard = shard_of(&first.id);
    let (_, folded) = fold(&whole_log(&reader, shard).await);
    let decided: Vec<u64> = folded
        .iter()
        .filter(|(stored, result)| {
            *result == Folded::Effective
                && matches!(&stored.record, ShardRecord::Decision { monitor: of, .. } if *of == monitor)
        })
        .map(|(stored, _)| stored.sequence)
        .collect();
    assert_eq!(decided.len(), 1, "{folded:?}");
    assert_eq!(
        first_id,
        // 4 shards in 2 streams (`serve_args`): shard s is in PUSHMON_G<s mod 2>.
        format!("PUSHMON_G{}:{}", shard.0 % 2, decided[0]),
        "named by the decision's stream and sequence"
    );
    // Its outcome reaches the shard, and both pods' histories, at the time the
    // sender recorded it (not each pod's own time of folding it).
    let mut stamped = Vec::new();
    for pod in [&pod_a, &pod_b] {
        let start = Instant::now();
        while deliveries_on(pod, &first.id).await.is_empty() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "no recorded outcome"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let recorded = deliveries_on(pod, &first.id).await;
        assert_eq!(recorded.len(), 1, "{recorded:?}");
        assert_eq!(recorded[0]["result"], "success", "{recorded:?}");
        stamped.push(recorded[0]["at"].clone());
    }
    assert_eq!(stamped[0], stamped[1], "both pods stamp the delivery alike");
    let outcomes: Vec<(String, i64)> = whole_log(&reader, shard)
        .await
        .into_iter()
        .filter_map(|stored| match stored.record {
            ShardRecord::DeliveredAt {
                monitor: of,
                alert,
                error: None,
                at,
                ..
            } if of == monitor => Some((alert, at.as_millis())),
            _ => None,
        })
        .collect();
    assert_eq!(
        outcomes.iter().map(|(alert, _)| alert).collect::<Vec<_>>(),
        vec![&first_id]
    );
    let recorded_at = pushmon::domain::ids::Timestamp::from_millis(outcomes[0].1);
    assert_eq!(
        stamped[0],
        serde_json::json!(recorded_at.to_rfc3339()),
        "the delivery's time is the one in its record"
    );

    // The second alert: pod A delivers it and aborts before recording it.
    let second = create_on_a("second").await;
    let start = Instant::now();
    while answers(&pod_a).await {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "pod a did not abort after its second delivery: {:?}\n{}",
            receiver
                .delivered()
                .iter()
                .map(|received| received.json())
                .collect::<Vec<_>>(),
            pod_a.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let sent = received_for(&second.id);
    assert_eq!(sent.len(), 1, "{sent:?}");
    // Pod B takes over and sends that alert again, with the same id.
    let start = Instant::now();
    let aborted = Instant::now();
    while received_for(&second.id).len() < 2 {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "the new owner did not send the unrecorded alert again: {:?}",
            receiver.delivered()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "owner aborted after a send (lease 2 s): the new owner sent it again {:?} after the abort was seen",
        aborted.elapsed()
    );
    // ... and nothing else, then or later.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let again = received_for(&second.id);
    assert_eq!(again.len(), 2, "{again:?}");
    assert_eq!(again[0], again[1], "the same alert, the same id");
    assert_eq!(
        received_for(&first.id).len(),
        1,
        "{:?}",
        receiver.delivered()
    );
    let recorded = deliveries_on(&pod_b, &second.id).await;
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    assert_eq!(recorded[0]["result"], "success");
    assert_eq!(deliveries_on(&pod_b, &first.id).await.len(), 1);

    // Pod A started again, without the hook: its fold applies only what follows the
    // positions its store holds (each written with its record), so each `down` and
    // each `delivery` is once in its history, at the same time as on pod B.
    drop(pod_a);
    let pod_a = ServerProcess::start(dir_a.path(), &serve_args(&url, "pod-a")).await;
    let downs_and_deliveries = async |pod: &ServerProcess, id: &str| -> Vec<(String, String)> {
        let response = pod
            .api(
                reqwest::Method::GET,
                &format!("/api/monitors/{id}/events?limit=1000"),
            )
            .send()
            .await
            .unwrap();
        let body = crate::support::expect_json(response, reqwest::StatusCode::OK).await;
        let mut found: Vec<(String, String)> = body["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|event| event["kind"] == "down" || event["kind"] == "delivery")
            .map(|event| (event["kind"].to_string(), event["at"].to_string()))
            .collect();
        found.sort();
        found
    };
    for id in [&first.id, &second.id] {
        let on_b = downs_and_deliveries(&pod_b, id).await;
        assert_eq!(on_b.len(), 2, "one down, one delivery: {on_b:?}");
        let start = Instant::now();
        loop {
            let on_a = downs_and_deliveries(&pod_a, id).await;
            if on_a == on_b {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "pod a, started again, has {on_a:?}, pod b {on_b:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    // No decision by a pod that did not own the shard.
    for shard in ShardId::all(4) {
        let log = whole_log(&reader, shard).await;
        let takeovers: BTreeSet<u64> = log
            .iter()
            .filter(|stored| matches!(stored.record, ShardRecord::Takeover { .. }))
            .map(|stored| stored.sequence)
            .collect();
        for (stored, result) in fold(&log).1 {
            if let ShardRecord::Decision { epoch, .. } = stored.record {
                assert!(takeovers.contains(&epoch), "shard {shard}: {stored:?}");
                assert_ne!(
                    result,
                    Folded::Void(Void::StaleEpoch),
                    "shard {shard}: {stored:?}"
                );
            }
        }
    }
    drop(pod_a);
    pod_b.sigkill().await;
}

/// Issue 21: a monitor silent since its pod restarted goes down once its deadline
/// passes. Its basis is its last record in the shard as folded (here the push before
/// the restart), so the restarted owner's verdict is effective; the restart itself
/// judges nothing locally (one `down`, one effective decision).
#[tokio::test]
async fn a_monitor_silent_across_a_pod_restart_goes_down_once() {
    let nats = Nats::single().await;
    let url = nats.urls()[0].clone();
    let dir = tempfile::tempdir().unwrap();
    let pod = pod_owning_every_shard(dir.path(), &serve_args(&url, "pod-a")).await;
    let monitor = pod.create_monitor("silent", 6).await;
    pod.push_ok(&monitor.push_token, &[]).await;
    pod.sigkill().await;
    let pod = ServerProcess::start(dir.path(), &serve_args(&url, "pod-a")).await;
    let down = until_monitor_within(&pod, &monitor.id, Duration::from_secs(20)).await;
    assert_eq!(down.status, crate::support::Status::Down);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let history = pod.history(&monitor.id).await;
    let downs: Vec<_> = history
        .iter()
        .filter(|event| event.kind == "down")
        .collect();
    assert_eq!(downs.len(), 1, "{history:?}");
    let reader = log_for(&nats, "reader", 4, 1).await;
    let id = MonitorId::parse(&monitor.id).unwrap();
    let shard = pushmon::cluster::shard::shard_of(&id, 4);
    let folded = fold(&whole_log(&reader, shard).await).1;
    let effective = folded
        .iter()
        .filter(|(stored, result)| {
            *result == Folded::Effective
                && matches!(&stored.record, ShardRecord::Decision { monitor, .. } if *monitor == id)
        })
        .count();
    assert_eq!(effective, 1, "{folded:?}\n{history:?}\n{}", pod.log());
    pod.sigkill().await;
}

/// A shard taken over after an outage (its only pod killed for longer than three
/// leases: no push could be acknowledged meanwhile) gives each deadline that fell
/// during the outage the restart grace, as a single node's restart does: a monitor
/// pushed within the grace stays up, a silent one goes down when the grace ends, not
/// at the takeover.
#[tokio::test]
async fn deadlines_that_fell_during_an_outage_get_the_restart_grace() {
    let nats = Nats::single().await;
    let url = nats.urls()[0].clone();
    let dir = tempfile::tempdir().unwrap();
    let mut args = serve_args(&url, "pod-a");
    args.extend(["--restart-grace", "30"]);
    let pod = pod_owning_every_shard(dir.path(), &args).await;
    // The grace is min(timeout, restart grace): 4 s for the silent monitor, 10 s
    // for the one pushed again after the takeover (whose timeout then is 10 s).
    let pushed = pod.create_monitor("pushed", 10).await;
    let silent = pod.create_monitor("silent", 4).await;
    pod.push_ok(&pushed.push_token, &[]).await;
    pod.push_ok(&silent.push_token, &[]).await;
    pod.sigkill().await;
    // Both deadlines fall while no pod runs; the outage outlasts three leases (6 s).
    tokio::time::sleep(Duration::from_secs(12)).await;
    let pod = ServerProcess::start(dir.path(), &args).await;
    let start = Instant::now();
    let marker = "taken over after an outage";
    let taken_over_at = loop {
        let log = pod.log();
        if let Some(line) = log.lines().find(|line| line.contains(marker)) {
            let stamp = line.split_whitespace().next().unwrap();
            break Timestamp::parse_rfc3339(stamp)
                .unwrap_or_else(|| panic!("no time at the start of {line:?}"));
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no shard taken over after an outage within 20 s:\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    pod.push_ok(&pushed.push_token, &[]).await;
    let down = until_monitor_within(&pod, &silent.id, Duration::from_secs(20)).await;
    assert_eq!(down.status, crate::support::Status::Down);
    let history = pod.history(&silent.id).await;
    let downs: Vec<_> = history
        .iter()
        .filter(|event| event.kind == "down")
        .collect();
    assert_eq!(downs.len(), 1, "{history:?}");
    let down_at = Timestamp::parse_rfc3339(&downs[0].at).unwrap();
    // Without the grace, judged at the takeover and stamped at the deadline, which
    // fell during the outage; with it, stamped when the grace ends, 4 s after.
    assert!(
        taken_over_at.millis_until(down_at) >= 3_500,
        "down at {} though taken over at {} with a grace of 4 s:\n{}",
        downs[0].at,
        taken_over_at.to_rfc3339(),
        pod.log()
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let kept = pod.get_monitor(&pushed.id).await;
    assert_eq!(kept.status, crate::support::Status::Up, "{kept:?}");
    let history = pod.history(&pushed.id).await;
    assert!(
        history.iter().all(|event| event.kind != "down"),
        "{history:?}"
    );
    pod.sigkill().await;
}

/// A digest sent by a pod names each alert by its id from the shard log, as a single
/// alert is, and the digest by an id made from them.
#[tokio::test]
async fn a_digest_carries_the_shard_logs_alert_ids() {
    let nats = Nats::single().await;
    let url = nats.urls()[0].clone();
    let dir = tempfile::tempdir().unwrap();
    let mut args = serve_args(&url, "pod-a");
    args.extend([
        "--digest-window",
        "2",
        "--digest-webhooks",
        "--digest-threshold",
        "3",
    ]);
    let pod = pod_owning_every_shard(dir.path(), &args).await;
    let receiver = crate::receiver::Receiver::start().await;
    let channel = webhook_channel(&pod, receiver.url("/hook")).await;
    let mut monitors = Vec::new();
    for name in ["a", "b", "c"] {
        let monitor = pod
            .create_monitor_from(&serde_json::json!({"name": name, "timeout_seconds": 60,
                "channels": [channel]}))
            .await;
        pod.push_ok(&monitor.push_token, &[("status", "down")])
            .await;
        monitors.push(monitor);
    }
    let start = Instant::now();
    let digest = loop {
        if let Some(received) = receiver.delivered().into_iter().next() {
            break received;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no digest within 20 s:\n{}",
            pod.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let body = digest.json();
    assert_eq!(body["event"], "digest", "{body}");
    let id = body["id"].as_str().unwrap();
    assert!(id.starts_with("PUSHMON:digest-"), "{id}");
    assert_eq!(digest.headers["x-pushmon-alert-id"].to_str().unwrap(), id);
    let alerts = body["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 3, "{body}");
    for alert in alerts {
        let alert_id = alert["alert_id"].as_str().unwrap();
        assert!(alert_id.starts_with("PUSHMON_G"), "{alert_id} in {body}");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.delivered().len(), 1, "one digest, nothing else");
    pod.sigkill().await;
}

/// Appends `records` plain heartbeat records straight to the streams through
/// `loader` (message `hb-<n>`, monitor `n` modulo the list), 1,000 to an append: a
/// long log for the measurements.
pub(crate) async fn append_heartbeat_records(
    loader: &JetStreamLog,
    monitors: &[MonitorId],
    records: usize,
) {
    let mut per_stream: BTreeMap<u16, Vec<(String, ShardId, ShardRecord)>> = BTreeMap::new();
    for n in 0..records {
        let monitor = monitors[n % monitors.len()];
        let event = pushmon::store::codec::encode_event(&pushmon::store::codec::StoredEvent {
            at: pushmon::clock::Clock::system().now(),
            event: pushmon::domain::event::Event::HeartbeatReceived(
                pushmon::domain::event::Heartbeat::new(
                    pushmon::domain::event::PushStatus::Up,
                    Some(pushmon::domain::event::HeartbeatText::truncated(format!(
                        "hb-{n}"
                    ))),
                    None,
                ),
            ),
        })
        .unwrap();
        let shard = pushmon::cluster::shard::shard_of(&monitor, 4);
        let stream = loader.stream_of(shard);
        let batch = per_stream.entry(stream.0).or_default();
        batch.push((
            loader.next_message_id(),
            shard,
            ShardRecord::Heartbeat { monitor, event },
        ));
        if batch.len() == 1_000 {
            loader.append_to_stream(stream, batch).await.unwrap();
            batch.clear();
        }
    }
    for (stream, batch) in per_stream {
        if !batch.is_empty() {
            loader
                .append_to_stream(StreamId(stream), &batch)
                .await
                .unwrap();
        }
    }
}

/// Creates a webhook channel to `url` on `server`; its id.
pub(crate) async fn webhook_channel(server: &ServerProcess, url: impl std::fmt::Display) -> String {
    let created = server
        .api(reqwest::Method::POST, "/api/channels")
        .json(&serde_json::json!({"kind": "webhook", "name": "hook", "url": url.to_string()}))
        .send()
        .await
        .unwrap();
    let created = crate::support::expect_json(created, reqwest::StatusCode::CREATED).await;
    created["id"].as_str().unwrap().to_owned()
}

/// Starts a pod and waits until it owns all of `serve_args`' 4 shards.
async fn pod_owning_every_shard(data_dir: &std::path::Path, args: &[&str]) -> ServerProcess {
    let pod = ServerProcess::start(data_dir, args).await;
    until_metric(
        &pod,
        "pushmon_cluster_shards_owned",
        4.0,
        Duration::from_secs(10),
    )
    .await;
    pod
}

/// Polls until monitor `id` is down on `server`, for at most `limit`.
pub(crate) async fn until_monitor_within(
    server: &ServerProcess,
    id: &str,
    limit: Duration,
) -> crate::support::Monitor {
    let start = Instant::now();
    loop {
        let monitor = server.get_monitor(id).await;
        if monitor.status == crate::support::Status::Down {
            return monitor;
        }
        assert!(
            start.elapsed() < limit,
            "monitor {id} not down within {limit:?}: {monitor:?}\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The whole history of monitor `id` on `server`, as the API answers it, without the
/// events' `seq`: a pod's own numbering in its store.
pub(crate) async fn history_json(server: &ServerProcess, id: &str) -> serde_json::Value {
    let response = server.events_response(id, Some(1000), None).await;
    let mut events =
        crate::support::expect_json(response, reqwest::StatusCode::OK).await["events"].take();
    for event in events.as_array_mut().unwrap() {
        event.as_object_mut().unwrap().remove("seq");
    }
    events
}

/// Job signals (stage 2, slice 1) go through the shard log as signal records, and
/// every pod's actor decides each at its place in the log: a run started on pod A
/// and finished on pod B is one run (its end names its start); a ping URL's `fail` on
/// pod A and an exit status on pod B bring the same `down` on both; each is answered
/// once the taking pod applied it (read your writes); both pods end with the same
/// history, event for event.
#[tokio::test]
async fn job_signals_on_any_pod_go_through_the_shard_logs_and_every_pod_decides_them_alike() {
    let nats = Nats::single().await;
    let url = nats.urls()[0].clone();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let pod_a = ServerProcess::start(dir_a.path(), &serve_args(&url, "pod-a")).await;
    let pod_b = ServerProcess::start(dir_b.path(), &serve_args(&url, "pod-b")).await;
    let reader = log_for(&nats, "reader", 4, 1).await;

    let created = pod_a.create_monitor("job", 600).await;
    let id = MonitorId::parse(&created.id).unwrap();
    until_monitor(&pod_b, &created.id, "created", |_| true).await;
    let token = created.push_token.clone();
    let rid = "6a1f0c1e-3b7d-4c1e-9a55-0d1f2e3c4b5a";

    // Started on pod A: in the log as a signal record at the 200, applied on pod A.
    pod_a
        .push_ok(&token, &[("kind", "start"), ("rid", rid)])
        .await;
    let signals = |records: &[ShardRecord]| {
        records
            .iter()
            .filter(
                |record| matches!(record, ShardRecord::Signal { monitor, .. } if *monitor == id),
            )
            .count()
    };
    let shard = pushmon::cluster::shard::shard_of(&id, 4);
    let in_log: Vec<ShardRecord> = whole_log(&reader, shard)
        .await
        .into_iter()
        .map(|stored| stored.record)
        .collect();
    assert_eq!(signals(&in_log), 1, "{in_log:?}");
    assert_eq!(
        pod_a.monitor_value(&created.id).await["open_runs"],
        1,
        "read your writes on pod a"
    );

    // Finished on pod B, whatever its copy had folded when it took the push: decided
    // after the start on every pod, it ends that run.
    pod_b
        .push_ok(&token, &[("exit", "0"), ("rid", rid), ("msg", "done")])
        .await;
    let on_b = pod_b.monitor_value(&created.id).await;
    assert_eq!(on_b["open_runs"], 0, "read your writes on pod b: {on_b}");
    assert_eq!(on_b["status"], "up", "{on_b}");
    let ended = |history: &serde_json::Value| -> Vec<serde_json::Value> {
        history
            .as_array()
            .unwrap()
            .iter()
            .filter(|event| event["kind"] == "run_ended")
            .cloned()
            .collect()
    };
    let history_b = history_json(&pod_b, &created.id).await;
    let runs = ended(&history_b);
    assert_eq!(runs.len(), 1, "{history_b}");
    assert_eq!(runs[0]["rid"], rid, "{history_b}");
    assert!(
        runs[0]["started_at"].is_string(),
        "the end names the start made on pod a: {history_b}"
    );
    assert_eq!(runs[0]["outcome"], "success", "{history_b}");

    // A ping URL's `fail` on pod A: down (manual) on both pods.
    let failed = reqwest::Client::new()
        .post(pod_a.url(&format!("/ping/{token}/fail")))
        .body("it broke")
        .send()
        .await
        .unwrap();
    assert_eq!(failed.status(), reqwest::StatusCode::OK);
    until_monitor(
        &pod_b,
        &created.id,
        "down through pod a's ping",
        |monitor| monitor.status == crate::support::Status::Down,
    )
    .await;
    // A start and an exit status on pod B: still down, a second run that failed.
    pod_b.push_ok(&token, &[("kind", "start")]).await;
    pod_b.push_ok(&token, &[("exit", "3")]).await;
    assert_eq!(in_log_signals(&reader, shard, id).await, 5);

    // Both pods hold the same history, event for event, and the same state.
    let history_b = history_json(&pod_b, &created.id).await;
    let start = Instant::now();
    loop {
        let history_a = history_json(&pod_a, &created.id).await;
        if history_a == history_b {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the pods' histories differ:\n{history_a}\n{history_b}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let kinds: Vec<&str> = history_b
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "run_ended",
            "heartbeat",
            "run_started",
            "down",
            "run_ended",
            "heartbeat",
            "up",
            "run_ended",
            "heartbeat",
            "run_started",
            "created"
        ],
        "{history_b}"
    );
    let fields = |monitor: serde_json::Value| {
        (
            monitor["status"].clone(),
            monitor["open_runs"].clone(),
            monitor["last_heartbeat_at"].clone(),
            monitor["last_msg"].clone(),
        )
    };
    assert_eq!(
        fields(pod_a.monitor_value(&created.id).await),
        fields(pod_b.monitor_value(&created.id).await)
    );
    pod_a.sigkill().await;
    pod_b.sigkill().await;
}

/// How many signal records of `monitor` the shard's log holds.
async fn in_log_signals(log: &JetStreamLog, shard: ShardId, monitor: MonitorId) -> usize {
    whole_log(log, shard)
        .await
        .into_iter()
        .filter(|stored| matches!(&stored.record, ShardRecord::Signal { monitor: of, .. } if *of == monitor))
        .count()
}

/// `POST /api/monitors/bulk` on `server`, answered `200`.
async fn bulk_on(
    server: &ServerProcess,
    query: &str,
    body: serde_json::Value,
) -> serde_json::Value {
    let response = server
        .api(
            reqwest::Method::POST,
            &format!("/api/monitors/bulk?{query}"),
        )
        .json(&body)
        .send()
        .await
        .unwrap();
    crate::support::expect_json(response, reqwest::StatusCode::OK).await
}

/// Waits until monitor `id`'s whole answer on both pods is the same (but for its push
/// URL, which names the pod), and returns it.
async fn same_on_both(pod_a: &ServerProcess, pod_b: &ServerProcess, id: &str) -> serde_json::Value {
    let start = Instant::now();
    loop {
        let (mut a, mut b) = (pod_a.monitor_value(id).await, pod_b.monitor_value(id).await);
        // The push URL names the pod's own address.
        for value in [&mut a, &mut b] {
            value.as_object_mut().unwrap().remove("push_url");
        }
        if a == b {
            return a;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "monitor {id} differs between the pods:\n{a}\n{b}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Bulk changes (stage 2, slice 2) go through the shard logs as one config record per
/// monitor: channels added on pod A and a pause on pod B are seen, answered and
/// recorded alike on both pods (the same monitors, histories event for event); a
/// bulk delete on pod A takes the monitors off both; a dry run publishes nothing.
#[tokio::test]
async fn bulk_changes_on_any_pod_go_through_the_shard_logs_and_reach_every_pod() {
    let nats = Nats::single().await;
    let url = nats.urls()[0].clone();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let pod_a = ServerProcess::start(dir_a.path(), &serve_args(&url, "pod-a")).await;
    let pod_b = ServerProcess::start(dir_b.path(), &serve_args(&url, "pod-b")).await;
    let reader = log_for(&nats, "reader", 4, 1).await;

    let mut ids = Vec::new();
    for i in 0..4 {
        let team = if i % 2 == 0 { "payments" } else { "search" };
        let created = pod_b
            .create_monitor_from(&serde_json::json!({
                "name": format!("job-{i}"), "timeout_seconds": 3600, "labels": {"team": team},
            }))
            .await;
        until_monitor(&pod_a, &created.id, "created", |_| true).await;
        ids.push((created.id, i % 2 == 0));
    }
    let channel = webhook_channel(&pod_a, "http://127.0.0.1:9/hook").await;
    let configs = async |reader: &JetStreamLog| {
        let mut count = 0;
        for shard in 0..4 {
            count += whole_log(reader, ShardId(shard))
                .await
                .iter()
                .filter(|stored| matches!(stored.record, ShardRecord::Config { .. }))
                .count();
        }
        count
    };
    let before = configs(&reader).await;

    let dry = bulk_on(
        &pod_a,
        "selector=team%3Dpayments",
        serde_json::json!({"action": "pause", "dry_run": true}),
    )
    .await;
    assert_eq!(dry["changed"], 2, "{dry}");
    assert_eq!(
        configs(&reader).await,
        before,
        "a dry run publishes nothing"
    );

    let added = bulk_on(
        &pod_a,
        "selector=team%3Dpayments",
        serde_json::json!({"action": "add_channels", "channels": [channel]}),
    )
    .await;
    assert_eq!(added["changed"], 2, "{added}");
    // Answered once applied on the taking pod; one config record per monitor.
    assert_eq!(configs(&reader).await, before + 2);
    for (id, payments) in &ids {
        let on_a = pod_a.monitor_value(id).await;
        let expected = if *payments {
            serde_json::json!([channel])
        } else {
            serde_json::json!([])
        };
        assert_eq!(on_a["channels"], expected, "{on_a}");
    }
    let paused = bulk_on(
        &pod_b,
        "selector=team%3Dsearch",
        serde_json::json!({"action": "pause"}),
    )
    .await;
    assert_eq!(paused["changed"], 2, "{paused}");
    for (id, payments) in &ids {
        let on_b = pod_b.monitor_value(id).await;
        assert_eq!(on_b["status"] == "paused", !*payments, "{on_b}");
        same_on_both(&pod_a, &pod_b, id).await;
        assert_eq!(
            history_json(&pod_a, id).await,
            history_json(&pod_b, id).await
        );
    }

    let deleted = bulk_on(
        &pod_a,
        "status=paused",
        serde_json::json!({"action": "delete"}),
    )
    .await;
    assert_eq!(deleted["changed"], 2, "{deleted}");
    for (id, payments) in &ids {
        let path = format!("/api/monitors/{id}");
        let expected = if *payments {
            reqwest::StatusCode::OK
        } else {
            reqwest::StatusCode::NOT_FOUND
        };
        let start = Instant::now();
        loop {
            let (a, b) = (
                pod_a
                    .api(reqwest::Method::GET, &path)
                    .send()
                    .await
                    .unwrap()
                    .status(),
                pod_b
                    .api(reqwest::Method::GET, &path)
                    .send()
                    .await
                    .unwrap()
                    .status(),
            );
            assert_eq!(a, expected, "read your writes on pod a");
            if b == expected {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "{id}: {b} on pod b"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    pod_a.sigkill().await;
    pod_b.sigkill().await;
}

/// `GET /api/channels/{id}` on `server`: its status and body.
async fn channel_on(server: &ServerProcess, id: &str) -> (reqwest::StatusCode, serde_json::Value) {
    let response = server
        .api(reqwest::Method::GET, &format!("/api/channels/{id}"))
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or_default())
}

/// Channel changes (stage 2, slice 3): an update on pod B and a deletion on pod A go
/// through the shard log as channel records, are answered once applied on the taking
/// pod, and are seen identically on the other; the deletion's sweep takes the channel
/// off a monitor on both pods.
#[tokio::test]
async fn channel_updates_and_deletions_on_any_pod_reach_every_pod() {
    let nats = Nats::single().await;
    let url = nats.urls()[0].clone();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let pod_a = ServerProcess::start(dir_a.path(), &serve_args(&url, "pod-a")).await;
    let pod_b = ServerProcess::start(dir_b.path(), &serve_args(&url, "pod-b")).await;

    let created = pod_a
        .api(reqwest::Method::POST, "/api/channels")
        .json(&serde_json::json!({"kind": "webhook", "name": "hook", "url": "http://127.0.0.1:9/hook"}))
        .send()
        .await
        .unwrap();
    let created = crate::support::expect_json(created, reqwest::StatusCode::CREATED).await;
    let channel = created["id"].as_str().unwrap().to_owned();
    let start = Instant::now();
    while channel_on(&pod_b, &channel).await.0 != reqwest::StatusCode::OK {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "not created on pod b"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let monitor = pod_a
        .create_monitor_from(
            &serde_json::json!({"name": "m", "timeout_seconds": 3600, "channels": [channel]}),
        )
        .await;
    until_monitor(&pod_b, &monitor.id, "created", |_| true).await;

    let updated = pod_b
        .api(reqwest::Method::PATCH, &format!("/api/channels/{channel}"))
        .json(&serde_json::json!({"name": "renamed-on-b"}))
        .send()
        .await
        .unwrap();
    let updated = crate::support::expect_json(updated, reqwest::StatusCode::OK).await;
    assert_eq!(updated["name"], "renamed-on-b", "{updated}");
    assert_eq!(
        channel_on(&pod_b, &channel).await.1,
        updated,
        "read your writes"
    );
    let start = Instant::now();
    while channel_on(&pod_a, &channel).await.1 != updated {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "not renamed on pod a"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let deleted = pod_a
        .api(reqwest::Method::DELETE, &format!("/api/channels/{channel}"))
        .send()
        .await
        .unwrap();
    assert!(deleted.status().is_success(), "{:?}", deleted.text().await);
    assert_eq!(
        channel_on(&pod_a, &channel).await.0,
        reqwest::StatusCode::NOT_FOUND
    );
    let start = Instant::now();
    while channel_on(&pod_b, &channel).await.0 != reqwest::StatusCode::NOT_FOUND {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "not deleted on pod b"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        pod_a.monitor_value(&monitor.id).await["channels"],
        serde_json::json!([])
    );
    let swept = same_on_both(&pod_a, &pod_b, &monitor.id).await;
    assert_eq!(swept["channels"], serde_json::json!([]), "{swept}");
    assert_eq!(
        history_json(&pod_a, &monitor.id).await,
        history_json(&pod_b, &monitor.id).await
    );
    pod_a.sigkill().await;
    pod_b.sigkill().await;
}

/// Waits until `GET path` on `server` (admin token) answers `status`; the body then.
async fn until_answers(
    server: &ServerProcess,
    path: &str,
    status: reqwest::StatusCode,
) -> serde_json::Value {
    let start = Instant::now();
    loop {
        let response = server.api(reqwest::Method::GET, path).send().await.unwrap();
        if response.status() == status {
            return response.json().await.unwrap_or_default();
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{path}: not {status} within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// API keys, badges and status pages (stage 2, slice 3) are cluster-wide records in
/// one shard's log, folded by every pod: a key created on pod A authenticates on pod
/// B and, revoked on pod B, no longer on pod A; a badge and a status page created on
/// pod B are served by pod A, the page's change and removal on pod A reach pod B;
/// a status page slug taken on pod A is refused on pod B once folded there.
#[tokio::test]
async fn api_keys_and_publications_on_any_pod_reach_every_pod() {
    let nats = Nats::single().await;
    let url = nats.urls()[0].clone();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let pod_a = ServerProcess::start(dir_a.path(), &serve_args(&url, "pod-a")).await;
    let pod_b = ServerProcess::start(dir_b.path(), &serve_args(&url, "pod-b")).await;
    let reader = log_for(&nats, "reader", 4, 1).await;
    let monitor = pod_a.create_monitor("m", 3600).await;
    until_monitor(&pod_b, &monitor.id, "created", |_| true).await;

    // An API key.
    let created = pod_a
        .api(reqwest::Method::POST, "/api/keys")
        .json(&serde_json::json!({"name": "ci", "scope": "read"}))
        .send()
        .await
        .unwrap();
    let created = crate::support::expect_json(created, reqwest::StatusCode::CREATED).await;
    let (key_id, secret) = (
        created["id"].as_str().unwrap().to_owned(),
        created["key"].as_str().unwrap().to_owned(),
    );
    let in_log = whole_log(&reader, ShardId(0)).await;
    assert!(
        in_log
            .iter()
            .any(|stored| matches!(stored.record, ShardRecord::ApiKey { .. })),
        "in the cluster-wide shard's log at the 201"
    );
    let with_key = |server: &ServerProcess| {
        reqwest::Client::new()
            .get(server.url("/api/monitors"))
            .bearer_auth(&secret)
            .send()
    };
    assert_eq!(
        with_key(&pod_a).await.unwrap().status(),
        reqwest::StatusCode::OK
    );
    let start = Instant::now();
    while with_key(&pod_b).await.unwrap().status() != reqwest::StatusCode::OK {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the key does not work on pod b"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let keys_a = until_answers(&pod_a, "/api/keys", reqwest::StatusCode::OK).await;
    assert_eq!(
        keys_a,
        until_answers(&pod_b, "/api/keys", reqwest::StatusCode::OK).await
    );
    let revoked = pod_b
        .api(reqwest::Method::DELETE, &format!("/api/keys/{key_id}"))
        .send()
        .await
        .unwrap();
    assert!(revoked.status().is_success(), "{:?}", revoked.text().await);
    assert_eq!(
        with_key(&pod_b).await.unwrap().status(),
        reqwest::StatusCode::UNAUTHORIZED,
        "read your writes"
    );
    let start = Instant::now();
    while with_key(&pod_a).await.unwrap().status() != reqwest::StatusCode::UNAUTHORIZED {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "still valid on pod a"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A badge and a status page.
    let badge = pod_b
        .api(reqwest::Method::POST, "/api/badges")
        .json(&serde_json::json!({"monitor": monitor.id}))
        .send()
        .await
        .unwrap();
    let badge = crate::support::expect_json(badge, reqwest::StatusCode::CREATED).await;
    let badge_id = badge["id"].as_str().unwrap().to_owned();
    let on_a = until_answers(
        &pod_a,
        &format!("/api/badges/{badge_id}"),
        reqwest::StatusCode::OK,
    )
    .await;
    let on_b = until_answers(
        &pod_b,
        &format!("/api/badges/{badge_id}"),
        reqwest::StatusCode::OK,
    )
    .await;
    // Its URLs name each pod's own address; the rest is the same.
    assert_eq!(on_a["id"], on_b["id"]);
    assert_eq!(on_a["key"], on_b["key"]);
    let page = pod_b
        .api(reqwest::Method::POST, "/api/status-pages")
        .json(&serde_json::json!({"slug": "main", "title": "Made on B", "monitors": [monitor.id]}))
        .send()
        .await
        .unwrap();
    let page = crate::support::expect_json(page, reqwest::StatusCode::CREATED).await;
    let page_id = page["id"].as_str().unwrap().to_owned();
    let path = format!("/api/status-pages/{page_id}");
    let on_a = until_answers(&pod_a, &path, reqwest::StatusCode::OK).await;
    assert_eq!(on_a["title"], "Made on B", "{on_a}");
    let public = reqwest::Client::new()
        .get(pod_a.url("/status/main"))
        .send()
        .await
        .unwrap();
    assert_eq!(public.status(), reqwest::StatusCode::OK);
    // The slug is taken on every pod once folded.
    let again = pod_a
        .api(reqwest::Method::POST, "/api/status-pages")
        .json(&serde_json::json!({"slug": "main", "title": "Again"}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), reqwest::StatusCode::UNPROCESSABLE_ENTITY);
    let changed = pod_a
        .api(reqwest::Method::PATCH, &path)
        .json(&serde_json::json!({"title": "Changed on A"}))
        .send()
        .await
        .unwrap();
    crate::support::expect_json(changed, reqwest::StatusCode::OK).await;
    let start = Instant::now();
    while until_answers(&pod_b, &path, reqwest::StatusCode::OK).await["title"] != "Changed on A" {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "not changed on pod b"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let removed = pod_a
        .api(reqwest::Method::DELETE, &path)
        .send()
        .await
        .unwrap();
    assert!(removed.status().is_success());
    until_answers(&pod_b, &path, reqwest::StatusCode::NOT_FOUND).await;
    let removed = pod_a
        .api(reqwest::Method::DELETE, &format!("/api/badges/{badge_id}"))
        .send()
        .await
        .unwrap();
    assert!(removed.status().is_success());
    until_answers(
        &pod_b,
        &format!("/api/badges/{badge_id}"),
        reqwest::StatusCode::NOT_FOUND,
    )
    .await;
    pod_a.sigkill().await;
    pod_b.sigkill().await;
}
