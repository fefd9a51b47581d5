//! The clustered engine (slices 1 and 2 of docs/cluster.md's "Monitors on the shard
//! logs"): the shard logs are the log of record for plain heartbeats and creations.
//! Shards are spread over fewer JetStream streams (`--cluster-streams`), and the
//! publisher and the fold work per stream, not per shard.
//!
//! - [`Publisher`]: one task per stream takes every record queued for any of its
//!   shards, appends them in one go (`JetStreamLog::send_to_stream`: one wait on all
//!   their PubAcks, a group commit), the plain heartbeats of all its shards combined
//!   in one `Heartbeats` record, and answers each caller; an append that fails
//!   answers every caller of its batch with the error (the push is answered 503).
//!   Up to [`MAX_IN_FLIGHT`] appends of a stream wait for their PubAcks at once.
//! - The fold: one task per stream reads it in order through an ordered consumer and
//!   applies each record to the local registry: heartbeats to the local store (one
//!   batch per chunk read, written without an fsync, with the stream's position in
//!   the same batch), whose writer hands them to their monitors' inboxes as after any
//!   commit; every other record to the registry (a creation spawns the actor), the
//!   channels, the API keys and publications or the alerts (`apply_record`), its
//!   local write carrying the stream's position in the same batch. A restarted pod
//!   applies from its stored position on (what it stored before is folded again for
//!   the decisions' rule, not applied): each record once.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use std::collections::HashMap;

use async_nats::jetstream::consumer::{self, DeliverPolicy};
use futures_util::StreamExt;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::Local;
use super::alerts::{ClusterAlerts, FoldedOutcome};
use crate::alert::Channels;
use crate::cluster::log::JetStreamLog;
use crate::cluster::ownership::Ownership;
use crate::cluster::shard::{ShardId, StreamId, shard_of, stream_of};
use crate::domain::event::{Event, Stamped};
use crate::domain::fence::Sequence;
use crate::domain::fence::{CLUSTER_WIDE_SHARD, Folded, ShardFold, ShardRecord};
use crate::domain::ids::MonitorId;
use crate::monitor::Registry;
use crate::monitor::deciding::Outage;
use crate::monitor::registry::Replication;
use crate::prometheus;
use crate::store::{FoldPosition, codec};

/// At most this many records in one append (one PubAck wait).
const MAX_BATCH: usize = 2_000;

/// At most this many records applied per chunk read from a stream.
const MAX_CHUNK: usize = 2_000;

/// How often the pod looks for shards it newly decides for.
const DECIDING_LOOK: Duration = Duration::from_millis(250);

/// A takeover that follows the shard's last ownership record by more than this many
/// leases follows an outage: every live owner renews every lease/3 and a dead one is
/// replaced about a lease after its last renewal, so a gap this long means no pod
/// held the shard, or none could reach its stream: no push to it was acknowledged.
/// Its fallen deadlines get the restart grace (`monitor::deciding::Outage`).
const OUTAGE_LEASES: u32 = 3;

/// By default, a stream's fold writes a snapshot of itself after this many of the
/// stream's records (and at a clean shutdown); `PUSHMON_CLUSTER_SNAPSHOT_RECORDS`
/// overrides it (0: never write one).
const SNAPSHOT_EVERY_RECORDS: u64 = 10_000;

/// The environment variable overriding [`SNAPSHOT_EVERY_RECORDS`].
pub const SNAPSHOT_RECORDS_ENV: &str = "PUSHMON_CLUSTER_SNAPSHOT_RECORDS";

/// A fold that applied any record since its last snapshot writes one after this
/// long, at the end of its next chunk, even below the record count.
const SNAPSHOT_INTERVAL: Duration = Duration::from_secs(30);

/// How long a clean shutdown waits for the folds' last snapshots.
const SNAPSHOT_AT_SHUTDOWN: Duration = Duration::from_secs(5);

/// Asks a stream's fold to write a snapshot now and answers once written (or not).
pub(super) type SnapshotRequest = oneshot::Sender<()>;

/// Before a failed fold opens its consumer again.
const FOLD_RETRY: Duration = Duration::from_secs(1);

type Pending = (
    ShardId,
    ShardRecord,
    oneshot::Sender<Result<Sequence, String>>,
);

/// How long a change waits for this pod's fold to apply the record it published.
const READ_YOUR_WRITES: Duration = Duration::from_secs(10);

/// Publishes records to their monitor's shard, batching per stream.
struct Publisher {
    /// Per stream.
    queues: Vec<mpsc::UnboundedSender<Pending>>,
    /// Per stream, the last sequence this pod's fold applied.
    applied: Vec<watch::Receiver<Sequence>>,
    shards: u16,
    streams: u16,
}

impl Publisher {
    fn stream_of(&self, monitor: &crate::domain::ids::MonitorId) -> usize {
        usize::from(stream_of(shard_of(monitor, self.shards), self.streams).0)
    }
}

impl Publisher {
    /// Queues `record` on `shard`'s publisher; its sequence once acknowledged.
    fn publish_to(
        &self,
        shard: ShardId,
        record: ShardRecord,
    ) -> Pin<Box<dyn Future<Output = Result<Sequence, String>> + Send + 'static>> {
        let (reply, answer) = oneshot::channel();
        // Queued now, not when first polled: a caller's records keep its order.
        let stream = usize::from(stream_of(shard, self.streams).0);
        let queued = self.queues[stream].send((shard, record, reply));
        Box::pin(async move {
            queued.map_err(|_| "the shard's publisher stopped".to_owned())?;
            answer
                .await
                .map_err(|_| "the shard's publisher stopped".to_owned())?
        })
    }

    /// Publishes `record` to `shard` and waits until this pod's fold applied it
    /// (read your writes); `what` names it in the error.
    fn publish_and_apply(
        &self,
        shard: ShardId,
        record: ShardRecord,
        what: &'static str,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'static>> {
        let applied = self.applied[usize::from(stream_of(shard, self.streams).0)].clone();
        let published = self.publish_to(shard, record);
        Box::pin(async move {
            let sequence = published.await?;
            if wait_applied(applied, sequence).await {
                Ok(())
            } else {
                Err(format!("this pod's fold did not apply the {what} in time"))
            }
        })
    }
}

/// Waits until the fold has applied a stream up to `sequence`; false after
/// [`READ_YOUR_WRITES`] (or if the fold is gone).
async fn wait_applied(mut applied: watch::Receiver<Sequence>, sequence: Sequence) -> bool {
    tokio::time::timeout(READ_YOUR_WRITES, applied.wait_for(|at| *at >= sequence))
        .await
        .is_ok_and(|waited| waited.is_ok())
}

/// A cluster-wide record folded: applied to this pod's API keys or publications,
/// with the stream's position in the same local batch. One that does not decode is
/// skipped, as any record.
async fn fold_setting(
    state: &crate::http::AppState,
    shard: StreamId,
    folded_to: FoldPosition,
    record: ShardRecord,
) -> Result<(), String> {
    let sequence = folded_to.sequence;
    let applied = match record {
        ShardRecord::ApiKey { key, event } => {
            match crate::store::api_keys::decode_event(
                crate::domain::api_key::ApiKeyId::from_bytes(key),
                &event,
            ) {
                Ok(change) => state.api_keys.apply_replicated(change, folded_to).await,
                Err(error) => {
                    tracing::error!(%shard, sequence, %error, "an API key record does not decode; skipped");
                    return Ok(());
                }
            }
        }
        ShardRecord::Publication { publication, event } => {
            match crate::store::publications::decode_event(publication, &event) {
                Ok(change) => state.publications.apply_replicated(change, folded_to).await,
                Err(error) => {
                    tracing::error!(%shard, sequence, %error, "a publication record does not decode; skipped");
                    return Ok(());
                }
            }
        }
        _ => return Ok(()),
    };
    applied.map_err(|error| error.to_string())
}

impl Replication for Publisher {
    fn publish(
        &self,
        record: ShardRecord,
    ) -> Pin<Box<dyn Future<Output = Result<Sequence, String>> + Send + 'static>> {
        let monitor = match &record {
            ShardRecord::Heartbeat { monitor, .. }
            | ShardRecord::Decision { monitor, .. }
            | ShardRecord::Config { monitor, .. }
            | ShardRecord::Delivered { monitor, .. }
            | ShardRecord::DeliveredAt { monitor, .. }
            | ShardRecord::Signal { monitor, .. } => *monitor,
            ShardRecord::Channel { channel, .. } => {
                crate::domain::ids::MonitorId::from_bytes(*channel.as_bytes())
            }
            ShardRecord::ApiKey { .. } | ShardRecord::Publication { .. } => {
                return self.publish_to(ShardId(CLUSTER_WIDE_SHARD), record);
            }
            _ => return Box::pin(async { Err("not a monitor's record".to_owned()) }),
        };
        self.publish_to(shard_of(&monitor, self.shards), record)
    }

    fn applied(
        &self,
        monitor: crate::domain::ids::MonitorId,
        sequence: Sequence,
    ) -> Pin<Box<dyn Future<Output = bool> + Send + 'static>> {
        let applied = self.applied[self.stream_of(&monitor)].clone();
        Box::pin(wait_applied(applied, sequence))
    }

    fn publish_applied(
        &self,
        record: ShardRecord,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'static>> {
        let (shard, what) = match &record {
            // In the shard of the monitor id with the channel id's bytes (`publish`).
            ShardRecord::Channel { channel, .. } => (
                shard_of(
                    &crate::domain::ids::MonitorId::from_bytes(*channel.as_bytes()),
                    self.shards,
                ),
                "channel",
            ),
            ShardRecord::ApiKey { .. } | ShardRecord::Publication { .. } => {
                (ShardId(CLUSTER_WIDE_SHARD), "change")
            }
            _ => {
                return Box::pin(async { Err("not a channel's or a setting's record".to_owned()) });
            }
        };
        self.publish_and_apply(shard, record, what)
    }
}

/// Starts a publisher and a fold per stream, hands the publisher to `registry`, and
/// returns once every fold has caught up with its stream as it was at its start.
pub(super) async fn start(
    log: &JetStreamLog,
    ownership: &Arc<Ownership>,
    registry: &Registry,
    channels: &Channels,
    local: Local,
    shared: crate::cluster::share::SharedSnapshots,
) -> Engine {
    let share_settings = super::sharing::ShareSettings::from_env();
    let shards = log.settings().shards;
    let streams = log.settings().streams;
    let owner = Arc::clone(ownership);
    let alerts = Arc::new(ClusterAlerts::new(
        shards,
        streams,
        Box::new(move |shard| owner.deciding_epoch(shard)),
        local.exit_after_sends,
        local.clock,
    ));
    let gate = Arc::clone(&alerts);
    registry.set_deciding(Arc::new(move |monitor| {
        gate.deciding_epoch(shard_of(&monitor, shards))
    }));
    let catching_up = Arc::clone(&alerts);
    registry.set_catching_up(Arc::new(move || catching_up.catching_up()));
    local
        .notifier
        .set_cluster(Arc::clone(&alerts) as Arc<dyn crate::alert::ClusterDelivery>);
    registry.set_outcomes(Arc::clone(&alerts) as Arc<dyn crate::monitor::deciding::OutcomeSink>);
    let local = Arc::new(local);
    let mut tasks = Vec::new();
    let reading = registry.clone();
    let positions = match tokio::task::spawn_blocking(move || reading.cluster_positions()).await {
        Ok(Ok(positions)) => positions,
        Ok(Err(error)) => {
            tracing::error!(%error, "cannot read the local fold positions; applying every stream from its start");
            BTreeMap::new()
        }
        Err(error) => {
            tracing::error!(%error, "cannot read the local fold positions; applying every stream from its start");
            BTreeMap::new()
        }
    };
    let snapshot_every = match std::env::var(SNAPSHOT_RECORDS_ENV) {
        Ok(value) => match value.parse::<u64>() {
            Ok(records) => records,
            Err(_) => {
                tracing::warn!(%value, "{SNAPSHOT_RECORDS_ENV} is not a whole number; using {SNAPSHOT_EVERY_RECORDS}");
                SNAPSHOT_EVERY_RECORDS
            }
        },
        Err(_) => SNAPSHOT_EVERY_RECORDS,
    };
    metrics::counter!(prometheus::CLUSTER_REFOLDED_RECORDS_TOTAL).increment(0);
    metrics::counter!(prometheus::CLUSTER_SNAPSHOTS_TOTAL).increment(0);
    let mut snapshot_requests = Vec::new();
    let mut queues = Vec::new();
    let mut caught_up = Vec::new();
    let mut applied_watches = Vec::new();
    for stream in StreamId::all(streams) {
        let (queue, pending) = mpsc::unbounded_channel();
        queues.push(queue);
        tasks.push(tokio::spawn(publish_batches(log.clone(), stream, pending)));
        let (done, watching) = watch::channel(false);
        caught_up.push(watching);
        let position = positions.get(&stream.0).copied().unwrap_or(0);
        tracing::info!(%stream, position, "folding the stream; applying the records after the local position");
        // Moves once the fold's re-read reached the position (`fold`).
        let (applied, applied_watch) = watch::channel(0);
        applied_watches.push(applied_watch);
        let (requesting, requests) = mpsc::channel(4);
        snapshot_requests.push(requesting);
        tasks.push(tokio::spawn(fold_forever(
            log.clone(),
            stream,
            Folding {
                registry: registry.clone(),
                channels: channels.clone(),
                alerts: Arc::clone(&alerts),
                local: Arc::clone(&local),
                snapshot_every,
                shared: shared.clone(),
                share_settings,
            },
            position,
            done,
            applied,
            requests,
        )));
    }
    let publisher = Arc::new(Publisher {
        queues,
        applied: applied_watches.clone(),
        shards,
        streams,
    });
    // Before any delivery can be sent (`decide_on_takeovers`), its outcome's way out.
    alerts.set_publisher(Arc::clone(&publisher) as Arc<dyn Replication>);
    tasks.push(tokio::spawn(decide_on_takeovers(
        log.clone(),
        Arc::clone(ownership),
        registry.clone(),
        applied_watches,
        Arc::clone(&alerts),
        Arc::clone(&local),
    )));
    // The event log's writes (the registry's, the channels', the API keys' and the
    // publications') go through the publisher from now on.
    registry.set_replication(publisher);
    let catching = std::time::Instant::now();
    for mut watching in caught_up {
        let _ = watching.wait_for(|done| *done).await;
    }
    tracing::info!(
        shards,
        streams,
        caught_up_ms = catching.elapsed().as_millis() as u64,
        "every stream folded up to its log's end"
    );
    Engine {
        tasks,
        snapshot_requests,
    }
}

/// The engine's tasks, and the way to ask each stream's fold for a snapshot.
#[derive(Default)]
pub(super) struct Engine {
    tasks: Vec<JoinHandle<()>>,
    snapshot_requests: Vec<mpsc::Sender<SnapshotRequest>>,
}

impl Engine {
    /// A clean shutdown: has every stream's fold write a snapshot of itself (for at
    /// most [`SNAPSHOT_AT_SHUTDOWN`]), so that this pod restarts from there, then
    /// stops the tasks.
    pub(super) async fn stop(self) {
        let asked = self.snapshot_requests.iter().filter_map(|requests| {
            let (reply, written) = oneshot::channel();
            requests.try_send(reply).ok().map(|()| written)
        });
        let waited = tokio::time::timeout(
            SNAPSHOT_AT_SHUTDOWN,
            futures_util::future::join_all(asked.collect::<Vec<_>>()),
        )
        .await;
        if waited.is_err() {
            tracing::warn!(
                "not every stream's fold wrote its snapshot in time; those restart from their last one"
            );
        }
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Every [`DECIDING_LOOK`], for each shard this pod newly decides for (taken over, or
/// deciding again after a lapse in its renewals): folds it up to the shard's last
/// record as of now (until then the pod judges and sends nothing for it, and
/// `/readyz` is 503), then has its monitors re-arm their timers (a deadline that fell
/// meanwhile is judged at once) and sends the alerts still owed in it (`alerts.rs`).
async fn decide_on_takeovers(
    log: JetStreamLog,
    ownership: Arc<Ownership>,
    registry: Registry,
    applied: Vec<watch::Receiver<Sequence>>,
    alerts: Arc<ClusterAlerts>,
    local: Arc<Local>,
) {
    let shards = log.settings().shards;
    let outages: Arc<std::sync::Mutex<BTreeMap<ShardId, Outage>>> = Arc::default();
    let outage_of = {
        let outages = Arc::clone(&outages);
        move |monitor: MonitorId| {
            outages
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .get(&shard_of(&monitor, shards))
                .copied()
        }
    };
    registry.set_outages(Arc::new(outage_of));
    let outage_gap = ownership.lease() * OUTAGE_LEASES;
    let mut looks = tokio::time::interval(DECIDING_LOOK);
    loop {
        looks.tick().await;
        let mut catching_up = Vec::new();
        for shard in ShardId::all(shards) {
            match ownership.deciding_epoch(shard) {
                None if alerts.folded_for(shard) != 0 => {
                    alerts.set_folded_for(shard, 0);
                    outages
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .remove(&shard);
                }
                Some(epoch) if alerts.folded_for(shard) != epoch => {
                    let applied = applied[usize::from(log.stream_of(shard).0)].clone();
                    let log = &log;
                    catching_up
                        .push(async move { (shard, epoch, catch_up(log, shard, applied).await) });
                }
                _ => {}
            }
        }
        let mut newly = BTreeSet::new();
        let catching = std::time::Instant::now();
        for (shard, epoch, caught_up) in futures_util::future::join_all(catching_up).await {
            match caught_up {
                Ok(()) => {
                    // Known before the shard's monitors may judge (`set_folded_for`).
                    let now = local.clock.now();
                    let outage = ownership
                        .taken_over_after(shard)
                        .filter(|since| {
                            u128::from(since.millis_until(now)) > outage_gap.as_millis()
                        })
                        .map(|since| Outage {
                            since,
                            until: now,
                            grace_seconds: local.restart_grace_seconds,
                        });
                    let mut held = outages
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    match outage {
                        Some(outage) => {
                            tracing::info!(
                                %shard,
                                since = %outage.since.to_rfc3339(),
                                grace_seconds = outage.grace_seconds,
                                "taken over after an outage: its deadlines that fell meanwhile get the restart grace"
                            );
                            held.insert(shard, outage);
                        }
                        None => {
                            held.remove(&shard);
                        }
                    }
                    drop(held);
                    alerts.set_folded_for(shard, epoch);
                    newly.insert(shard);
                }
                Err(error) => {
                    tracing::warn!(%shard, %error, "the shard taken over is not folded up to its takeover yet")
                }
            }
        }
        if newly.is_empty() {
            continue;
        }
        tracing::info!(
            shards = ?newly,
            caught_up_ms = catching.elapsed().as_millis() as u64,
            "deciding for these shards now, folded up to their takeover"
        );
        registry.redecide(|monitor| newly.contains(&shard_of(&monitor, shards)));
        if let Err(error) = alerts
            .hand_over(
                &newly,
                &registry,
                &local.store,
                &local.dispatcher,
                local.clock,
            )
            .await
        {
            tracing::error!(%error, "cannot read the outbox to send the alerts owed in the shards taken over");
        }
    }
}

/// How long a takeover waits for the fold to reach the shard's last record.
const CATCH_UP: Duration = Duration::from_secs(10);

/// Waits until this pod's fold of `shard`'s stream (`applied`: its position, which
/// passes every record of the stream, any shard's) has applied the shard's log up
/// to its last record as of now: the last sequence on any of the shard's subjects
/// and on the stream's heartbeats subject, which carries the shard's plain
/// heartbeats among other shards' (its last record there may be another shard's:
/// waiting for it too is waiting a little longer, never too little).
async fn catch_up(
    log: &JetStreamLog,
    shard: ShardId,
    mut applied: watch::Receiver<Sequence>,
) -> Result<(), String> {
    let stream = log
        .context()
        .get_stream_no_info(log.stream_of(shard).name())
        .await
        .map_err(|error| error.to_string())?;
    let subjects = [
        log.stream_of(shard).heartbeats_subject(),
        shard.heartbeat_subject(),
        shard.decision_subject(),
        shard.config_subject(),
        shard.ownership_subject(),
    ];
    let read_last = async {
        let mut last = 0;
        for subject in &subjects {
            match stream.get_last_raw_message_by_subject(subject).await {
                Ok(message) => last = last.max(message.sequence),
                Err(error)
                    if error.kind()
                        == async_nats::jetstream::stream::LastRawMessageErrorKind::NoMessageFound => {}
                Err(error) => return Err(error.to_string()),
            }
        }
        Ok(last)
    };
    let last = tokio::time::timeout(CATCH_UP, read_last)
        .await
        .map_err(|_| format!("the shard's last record not read within {CATCH_UP:?}"))??;
    match tokio::time::timeout(CATCH_UP, applied.wait_for(|at| *at >= last)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(_)) => Err("the shard's fold stopped".to_owned()),
        Err(_) => Err(format!(
            "not folded up to sequence {last} within {CATCH_UP:?}"
        )),
    }
}

/// At most this many appends of one stream wait for their PubAcks at once. One: the
/// heartbeats queued while an append waits all go in the next, so appends grow with
/// the load (group commit), and the NATS servers, whose cost is per append, do less.
/// On one machine with two cores, 1 gave 1.14x the pushes of 2 through one pod (three
/// quiet runs each, 1 stream; 1.12x with 4 streams, one run; BENCHMARKS.md).
const MAX_IN_FLIGHT: usize = 1;

async fn publish_batches(
    log: JetStreamLog,
    stream: StreamId,
    mut queue: mpsc::UnboundedReceiver<Pending>,
) {
    let mut received = Vec::with_capacity(MAX_BATCH);
    let mut in_flight = futures_util::stream::FuturesUnordered::new();
    loop {
        tokio::select! {
            Some(()) = in_flight.next(), if !in_flight.is_empty() => continue,
            taken = queue.recv_many(&mut received, MAX_BATCH), if in_flight.len() < MAX_IN_FLIGHT => {
                if taken == 0 {
                    break;
                }
            }
        }
        let heartbeats = received
            .iter()
            .filter(|(_, record, _)| matches!(record, ShardRecord::Heartbeat { .. }))
            .count();
        let (records, waiting) = combine_heartbeats(std::mem::take(&mut received));
        let records: Vec<_> = records
            .into_iter()
            .map(|(shard, record)| (log.next_message_id(), shard, record))
            .collect();
        metrics::counter!(prometheus::CLUSTER_APPENDS_TOTAL).increment(1);
        metrics::counter!(prometheus::CLUSTER_APPENDED_RECORDS_TOTAL)
            .increment(records.len() as u64);
        metrics::counter!(prometheus::CLUSTER_APPENDED_HEARTBEATS_TOTAL)
            .increment(heartbeats as u64);
        let started = std::time::Instant::now();
        let sent = log.send_to_stream(stream, &records).await;
        in_flight.push(async move {
            match sent {
                Ok(sent) => match sent.acknowledged().await {
                    Ok(sequences) => {
                        metrics::histogram!(prometheus::CLUSTER_APPEND_DURATION_SECONDS)
                            .record(started.elapsed().as_secs_f64());
                        for (replies, (sequence, _)) in waiting.into_iter().zip(sequences) {
                            for reply in replies {
                                let _ = reply.send(Ok(sequence));
                            }
                        }
                    }
                    Err(error) => answer_failed(waiting, &error),
                },
                Err(error) => answer_failed(waiting, &error),
            }
        });
    }
    while in_flight.next().await.is_some() {}
}

/// Answers every caller of a failed append with its error (their pushes get 503).
fn answer_failed(waiting: Vec<Waiting>, error: &crate::cluster::log::LogError) {
    let error = error.to_string();
    for reply in waiting.into_iter().flatten() {
        let _ = reply.send(Err(error.clone()));
    }
}

/// At most this many bytes of heartbeat events in one `Heartbeats` record (NATS
/// refuses a message above its `max_payload`, 1 MiB by default).
const MAX_HEARTBEATS_BYTES: usize = 256 * 1024;

type Waiting = Vec<oneshot::Sender<Result<Sequence, String>>>;

/// The records to append for what was queued for a stream, in its order, each with
/// its shard: each run of plain heartbeats, of any of the stream's shards, becomes
/// one `Heartbeats` record (up to [`MAX_HEARTBEATS_BYTES`]; its shard is its first
/// item's, which names the stream), so one message and one acknowledgement cover
/// them; with, per record, the callers waiting for its sequence.
fn combine_heartbeats(queued: Vec<Pending>) -> (Vec<(ShardId, ShardRecord)>, Vec<Waiting>) {
    let mut combined = Combined::default();
    for (shard, record, reply) in queued {
        match record {
            ShardRecord::Heartbeat { monitor, event } => {
                if combined.run_bytes + event.len() > MAX_HEARTBEATS_BYTES {
                    combined.close_run();
                }
                // The monitor id and the lengths' bytes, roughly.
                combined.run_bytes += event.len() + 20;
                combined.run_shard.get_or_insert(shard);
                combined.run.push((monitor, event));
                combined.run_waiting.push(reply);
            }
            other => {
                combined.close_run();
                combined.records.push((shard, other));
                combined.waiting.push(vec![reply]);
            }
        }
    }
    combined.close_run();
    (combined.records, combined.waiting)
}

#[derive(Default)]
struct Combined {
    records: Vec<(ShardId, ShardRecord)>,
    waiting: Vec<Waiting>,
    run_shard: Option<ShardId>,
    run: Vec<(crate::domain::ids::MonitorId, Vec<u8>)>,
    run_waiting: Waiting,
    run_bytes: usize,
}

impl Combined {
    fn close_run(&mut self) {
        let Some(shard) = self.run_shard.take() else {
            return;
        };
        self.records.push((
            shard,
            ShardRecord::Heartbeats {
                heartbeats: std::mem::take(&mut self.run),
            },
        ));
        self.waiting.push(std::mem::take(&mut self.run_waiting));
        self.run_bytes = 0;
    }
}

/// A heartbeat read from a shard, waiting to be written with the others of its chunk.
type FoldedHeartbeat = (
    Sequence,
    crate::domain::ids::MonitorId,
    crate::domain::ids::Timestamp,
    crate::domain::event::Heartbeat,
);

/// Decodes a heartbeat record's event (alone or in a heartbeats record) into
/// `heartbeats`; one that is not a heartbeat or does not decode is logged and skipped.
fn take_heartbeat(
    heartbeats: &mut Vec<FoldedHeartbeat>,
    stream: StreamId,
    sequence: Sequence,
    monitor: crate::domain::ids::MonitorId,
    event: &[u8],
) {
    match codec::decode_event(event) {
        Ok(codec::StoredEvent {
            at,
            event: Event::HeartbeatReceived(heartbeat),
        }) => heartbeats.push((sequence, monitor, at, heartbeat)),
        Ok(_) => {
            tracing::warn!(%stream, sequence, "a heartbeat record holds another event; skipped")
        }
        Err(error) => {
            tracing::error!(%stream, sequence, %error, "a heartbeat record does not decode; skipped")
        }
    }
}

/// What a stream's fold applies records to.
struct Folding {
    registry: Registry,
    channels: Channels,
    alerts: Arc<ClusterAlerts>,
    local: Arc<Local>,
    /// A snapshot after this many records (0: none at all).
    snapshot_every: u64,
    /// Where the stream's shared snapshot goes, and when (`sharing.rs`).
    shared: crate::cluster::share::SharedSnapshots,
    share_settings: super::sharing::ShareSettings,
}

async fn fold_forever(
    log: JetStreamLog,
    stream: StreamId,
    folding: Folding,
    stored_position: Sequence,
    caught_up: watch::Sender<bool>,
    applied: watch::Sender<Sequence>,
    mut requests: mpsc::Receiver<SnapshotRequest>,
) {
    let mut position = stored_position;
    loop {
        let snapshot = load_snapshot(&folding, stream).await;
        let progress = Progress {
            caught_up: &caught_up,
            applied: &applied,
            requests: &mut requests,
        };
        if let Err(error) = fold(&log, stream, &folding, position, snapshot, progress).await {
            tracing::warn!(%stream, %error, "folding the stream failed; resuming after the position the local store holds");
        }
        tokio::time::sleep(FOLD_RETRY).await;
        // What the store holds, as after a restart: a record whose write failed is
        // applied again, one written with its position is not.
        let reading = folding.registry.clone();
        position = match tokio::task::spawn_blocking(move || reading.cluster_positions()).await {
            Ok(Ok(positions)) => positions.get(&stream.0).copied().unwrap_or(0),
            _ => position.max(*applied.borrow()),
        };
    }
}

/// Folds `stream` from its first record: those up to `position` (the local store's,
/// or what this process applied since) only into the rule of which decisions count
/// and into the alerts' ids and outcomes (`refold_alerts`); then seeds the monitors'
/// bases from that re-fold; every later record is applied too. `applied` and
/// `caught_up` move only once the re-fold reached the position.
async fn fold(
    log: &JetStreamLog,
    stream: StreamId,
    folding: &Folding,
    position: Sequence,
    snapshot: Option<codec::StoredFoldSnapshot>,
    progress: Progress<'_>,
) -> Result<(), String> {
    let Progress {
        caught_up,
        applied,
        requests,
    } = progress;
    let Folding {
        registry, alerts, ..
    } = folding;
    let shards = log.settings().shards;
    let mut nats_stream = log
        .context()
        .get_stream(stream.name())
        .await
        .map_err(|error| error.to_string())?;
    let last = nats_stream
        .info()
        .await
        .map_err(|error| error.to_string())?
        .state
        .last_sequence;
    if position > last {
        tracing::error!(%stream, position, last, "the local copy is ahead of the stream (was the NATS cluster replaced?); applying only records after the local position");
    }
    let lag =
        metrics::gauge!(prometheus::CLUSTER_STREAM_LAG_RECORDS, "stream" => stream.to_string());
    lag.set(last.saturating_sub(position) as f64);
    if last == 0 {
        caught_up.send_replace(true);
    }
    // The rule of which decisions count needs each shard's whole log: what was
    // applied before is folded again, not applied; from the stored snapshot's
    // position on, if there is one this fold can start from.
    let mut shard_folds: HashMap<ShardId, ShardFold> = HashMap::new();
    let from = match snapshot {
        Some(snapshot) if snapshot.position <= position && position <= last => {
            let from = snapshot.position;
            for (shard, fold) in snapshot.shards {
                shard_folds.insert(ShardId(shard), ShardFold::from_snapshot(fold));
            }
            alerts.seed(snapshot.alert_ids, snapshot.outcomes);
            from
        }
        Some(snapshot) => {
            tracing::warn!(%stream, snapshot = snapshot.position, position, last, "the stored snapshot does not fit the local position and the stream; folding the stream from its start");
            0
        }
        None => 0,
    };
    tracing::info!(%stream, from, position, last, "folding the stream again after the snapshot's position, up to the local position, then applying");
    let deliver_policy = if from == 0 {
        DeliverPolicy::All
    } else {
        DeliverPolicy::ByStartSequence {
            start_sequence: from + 1,
        }
    };
    let reader = nats_stream
        .create_consumer(consumer::pull::OrderedConfig {
            deliver_policy,
            ..Default::default()
        })
        .await
        .map_err(|error| error.to_string())?;
    let mut chunks = reader
        .messages()
        .await
        .map_err(|error| error.to_string())?
        .ready_chunks(MAX_CHUNK);
    let mut applied_to = position;
    let mut heartbeats = HeartbeatQueue {
        queued: Vec::new(),
        stored_to: position,
    };
    // Whether the re-fold reached the position and the bases were seeded from it.
    let mut seeded = false;
    if from > 0 && from >= last {
        // Nothing after the snapshot, which is at the local position: caught up.
        seed_bases(registry, &shard_folds);
        seeded = true;
        advance(applied, applied_to);
        lag.set(0.0);
        caught_up.send_replace(true);
    }
    let refolded = metrics::counter!(prometheus::CLUSTER_REFOLDED_RECORDS_TOTAL);
    let mut snapshots = Snapshots {
        at: from,
        written: std::time::Instant::now(),
    };
    let mut sharing =
        super::sharing::Sharing::new(folding.shared.clone(), folding.share_settings, from);
    // Sequences follow each other in a stream: a jump is records purged away.
    let mut expected = from + 1;
    loop {
        let chunk = tokio::select! {
            chunk = chunks.next() => match chunk {
                Some(chunk) => chunk,
                None => break,
            },
            Some(reply) = requests.recv() => {
                // Between chunks: every record up to `applied_to` written, with it.
                if seeded
                    && folding.snapshot_every > 0
                    && let Some((bytes, took)) =
                        snapshots.write(folding, stream, &shard_folds, applied_to).await
                {
                    tracing::info!(%stream, position = applied_to, bytes, took_us = took.as_micros() as u64, "wrote the fold's snapshot for the restart");
                }
                let _ = reply.send(());
                continue;
            }
        };
        let mut end_of_chunk = None;
        for message in chunk {
            let message = message.map_err(|error| error.to_string())?;
            let (sequence, pending) = {
                let info = message.info().map_err(|error| error.to_string())?;
                (info.stream_sequence, info.pending)
            };
            end_of_chunk = Some((sequence, pending));
            if sequence > expected {
                super::sharing::purged_past(stream, expected, sequence);
            }
            expected = sequence + 1;
            let decoded = codec::decode_shard_record(&message.payload);
            let shard = ShardId::of_subject(message.subject.as_str());
            let refolding = sequence <= applied_to;
            if !refolding && !seeded {
                seed_bases(registry, &shard_folds);
                seeded = true;
            }
            let folded = decoded
                .as_ref()
                .ok()
                .and_then(|record| fold_record(&mut shard_folds, shards, shard, sequence, record));
            if refolding {
                refolded.increment(1);
                if let (Some(shard), Ok(record), Some(folded)) = (shard, &decoded, folded) {
                    refold_alerts(alerts, shard, sequence, record, folded);
                }
                continue;
            }
            match decoded {
                Ok(ShardRecord::Heartbeats { heartbeats: batch }) => {
                    for (monitor, event) in batch {
                        heartbeats.take(stream, sequence, monitor, &event);
                    }
                }
                Ok(ShardRecord::Heartbeat { monitor, event }) => {
                    heartbeats.take(stream, sequence, monitor, &event);
                }
                Ok(ShardRecord::Decision { monitor, .. }) if folded != Some(Folded::Effective) => {
                    if let Some(Folded::Void(why)) = folded {
                        tracing::debug!(%stream, sequence, %monitor, ?why, "a void decision");
                        metrics::counter!(prometheus::DECISIONS_VOIDED_TOTAL).increment(1);
                    }
                }
                // Ownership records are the ownership manager's.
                Ok(
                    ShardRecord::Takeover { .. }
                    | ShardRecord::Renewal { .. }
                    | ShardRecord::Release { .. },
                ) => {}
                Ok(record) => {
                    // The heartbeats before it in the log are written before it.
                    heartbeats
                        .flush(registry, stream, applied_to, false)
                        .await?;
                    let folded_to = FoldPosition {
                        stream: stream.0,
                        sequence,
                    };
                    apply_record(folding, stream, shard, folded_to, record).await?;
                    advance(applied, sequence);
                }
                Err(error) => {
                    tracing::error!(%stream, sequence, %error, "a shard record does not decode; skipped");
                }
            }
            applied_to = sequence;
        }
        let Some((sequence, pending)) = end_of_chunk else {
            continue;
        };
        if !seeded && (sequence >= position.min(last) || pending == 0) {
            seed_bases(registry, &shard_folds);
            seeded = true;
        }
        if seeded {
            // The chunk's heartbeats and the position after it, in one local batch
            // (the position also if the chunk's last records wrote nothing).
            heartbeats.flush(registry, stream, applied_to, true).await?;
            advance(applied, applied_to);
            if snapshots.due(folding.snapshot_every, applied_to)
                && let Some((bytes, took)) = snapshots
                    .write(folding, stream, &shard_folds, applied_to)
                    .await
            {
                tracing::debug!(%stream, position = applied_to, bytes, took_us = took.as_micros() as u64, "wrote the fold's snapshot");
            }
            // Only the pod deciding for the stream's first shard shares its snapshot.
            if sharing.due(applied_to) && folding.alerts.deciding_epoch(ShardId(stream.0)).is_some()
            {
                match fold_snapshot_bytes(folding, stream, &shard_folds, applied_to).await {
                    Ok(bytes) => {
                        sharing
                            .share(log, &folding.local.store, stream, applied_to, bytes)
                            .await;
                    }
                    Err(error) => {
                        tracing::warn!(%stream, position = applied_to, %error, "cannot make the fold's snapshot to share");
                    }
                }
            }
        }
        lag.set(pending as f64);
        if pending == 0 || sequence >= last {
            caught_up.send_replace(true);
        }
    }
    Err("the stream's consumer ended".to_owned())
}

/// Moves what this process's fold applied of the stream forward (never back: a
/// fold resumed after a failure applies again what its store lost).
fn advance(applied: &watch::Sender<Sequence>, sequence: Sequence) {
    applied.send_if_modified(|at| {
        let moved = *at < sequence;
        if moved {
            *at = sequence;
        }
        moved
    });
}

/// What a fold reports and is asked while it runs.
struct Progress<'a> {
    /// Set once the fold reached the stream's end as of its start.
    caught_up: &'a watch::Sender<bool>,
    /// How far the fold applied the stream (`advance`).
    applied: &'a watch::Sender<Sequence>,
    /// Requests for a snapshot now (a clean shutdown).
    requests: &'a mut mpsc::Receiver<SnapshotRequest>,
}

/// The stream's fold snapshot stored in the local copy, if any and if it decodes.
async fn load_snapshot(folding: &Folding, stream: StreamId) -> Option<codec::StoredFoldSnapshot> {
    let store = folding.local.store.clone();
    let read = tokio::task::spawn_blocking(move || store.cluster_snapshots()).await;
    let bytes = match read {
        Ok(Ok(mut snapshots)) => snapshots.remove(&stream.0)?,
        Ok(Err(error)) => {
            tracing::error!(%stream, %error, "cannot read the stream's stored snapshot; folding the stream from its start");
            return None;
        }
        Err(error) => {
            tracing::error!(%stream, %error, "cannot read the stream's stored snapshot; folding the stream from its start");
            return None;
        }
    };
    match codec::decode_fold_snapshot(&bytes) {
        Ok(snapshot) => Some(snapshot),
        Err(error) => {
            tracing::error!(%stream, %error, "the stream's stored snapshot does not decode; folding the stream from its start");
            None
        }
    }
}

/// The encoded snapshot of a stream's fold at `applied_to` (every record up to it
/// applied and written): the rule's fold of each shard, and the alerts' memory.
async fn fold_snapshot_bytes(
    folding: &Folding,
    stream: StreamId,
    shard_folds: &HashMap<ShardId, ShardFold>,
    applied_to: Sequence,
) -> Result<Vec<u8>, String> {
    let owed = folding
        .alerts
        .owed_in_stream(&folding.local.store, stream.0)
        .await?;
    let (alert_ids, outcomes) = folding.alerts.snapshot(stream.0, &owed);
    let mut shards: Vec<_> = shard_folds
        .iter()
        .map(|(shard, fold)| (shard.0, fold.snapshot()))
        .collect();
    shards.sort_unstable_by_key(|(shard, _)| *shard);
    codec::encode_fold_snapshot(&codec::StoredFoldSnapshot {
        position: applied_to,
        shards,
        alert_ids,
        outcomes,
    })
    .map_err(|error| error.to_string())
}

/// When a fold last wrote (or started from) a snapshot.
struct Snapshots {
    /// Its position.
    at: Sequence,
    written: std::time::Instant,
}

impl Snapshots {
    /// Whether a snapshot is due at `applied_to`: `every` records since the last,
    /// or [`SNAPSHOT_INTERVAL`] and any record.
    fn due(&self, every: u64, applied_to: Sequence) -> bool {
        every > 0
            && applied_to > self.at
            && (applied_to - self.at >= every || self.written.elapsed() >= SNAPSHOT_INTERVAL)
    }

    /// Writes a snapshot of the fold at `applied_to` (every record up to it applied
    /// and written) with that position, in one batch: its size and how long that
    /// took. A failure is logged: the next restart starts from the previous snapshot.
    async fn write(
        &mut self,
        folding: &Folding,
        stream: StreamId,
        shard_folds: &HashMap<ShardId, ShardFold>,
        applied_to: Sequence,
    ) -> Option<(usize, Duration)> {
        let started = std::time::Instant::now();
        let written = async {
            let bytes = fold_snapshot_bytes(folding, stream, shard_folds, applied_to).await?;
            let size = bytes.len();
            folding
                .local
                .store
                .write_fold_snapshot(
                    FoldPosition {
                        stream: stream.0,
                        sequence: applied_to,
                    },
                    bytes,
                )
                .await
                .map_err(|error| error.to_string())?;
            Ok::<usize, String>(size)
        };
        match written.await {
            Ok(bytes) => {
                metrics::counter!(prometheus::CLUSTER_SNAPSHOTS_TOTAL).increment(1);
                self.at = applied_to;
                self.written = std::time::Instant::now();
                Some((bytes, started.elapsed()))
            }
            Err(error) => {
                tracing::warn!(%stream, position = applied_to, %error, "cannot write the fold's snapshot; a restart starts from the previous one");
                // Not again before the next interval.
                self.written = std::time::Instant::now();
                None
            }
        }
    }
}

/// The plain heartbeats the fold read and has not written yet, and the stream
/// position last written with heartbeats.
struct HeartbeatQueue {
    queued: Vec<FoldedHeartbeat>,
    stored_to: Sequence,
}

impl HeartbeatQueue {
    /// Decodes a heartbeat record's event (alone or in a heartbeats record) into the
    /// queue; one that is not a heartbeat or does not decode is logged and skipped.
    fn take(
        &mut self,
        stream: StreamId,
        sequence: Sequence,
        monitor: crate::domain::ids::MonitorId,
        event: &[u8],
    ) {
        take_heartbeat(&mut self.queued, stream, sequence, monitor, event);
    }

    /// Writes the queued heartbeats to the local store with the stream's position
    /// `folded_to` (every record up to it applied) in one batch: before a record
    /// that is not a plain heartbeat (whose own write then carries its position),
    /// and at the end of a chunk. Nothing if none is queued, unless `position_too`
    /// and the stored position is behind `folded_to`.
    async fn flush(
        &mut self,
        registry: &Registry,
        stream: StreamId,
        folded_to: Sequence,
        position_too: bool,
    ) -> Result<(), String> {
        if self.queued.is_empty() && !(position_too && folded_to > self.stored_to) {
            return Ok(());
        }
        registry
            .apply_replicated_heartbeats(
                std::mem::take(&mut self.queued),
                FoldPosition {
                    stream: stream.0,
                    sequence: folded_to,
                },
            )
            .await
            .map_err(|error| error.to_string())?;
        self.stored_to = folded_to;
        Ok(())
    }
}

/// Applies a record that is not a plain heartbeat (`shard`: the shard its subject
/// names) to this pod. Its local write carries the stream's position `folded_to` in
/// the same batch (`store::FoldPosition`), so that a restarted fold never applies
/// it again. A record that changes nothing here writes nothing; the fold stores the
/// position with its next batch, and applying such a record again after a crash
/// changes nothing either. One that does not decode is logged and skipped.
async fn apply_record(
    folding: &Folding,
    stream: StreamId,
    shard: Option<ShardId>,
    folded_to: FoldPosition,
    record: ShardRecord,
) -> Result<(), String> {
    let Folding {
        registry,
        channels,
        alerts,
        local,
        ..
    } = folding;
    let sequence = folded_to.sequence;
    match record {
        ShardRecord::Config { monitor, event } => {
            fold_config(registry, stream, folded_to, monitor, &event).await
        }
        ShardRecord::Decision { monitor, event, .. } => match codec::decode_decided(&event) {
            Ok(events) => {
                if let Some(shard) = shard {
                    alerts.note_decision(shard, sequence, monitor, &events);
                }
                registry
                    .apply_replicated_decision(monitor, folded_to, events)
                    .await
                    .map_err(|error| error.to_string())
            }
            Err(error) => {
                tracing::error!(%stream, sequence, %error, "a decision record does not decode; skipped");
                Ok(())
            }
        },
        ShardRecord::Channel { channel, event } => match codec::decode_channel_event(&event) {
            Ok(codec::StoredChannelEvent { at, event }) => channels
                .apply_replicated(channel, at, event, folded_to)
                .await
                .map_err(|error| error.to_string()),
            Err(error) => {
                tracing::error!(%stream, sequence, %error, "a channel record does not decode; skipped");
                Ok(())
            }
        },
        ShardRecord::Signal { monitor, event } => {
            fold_signal(registry, stream, folded_to, monitor, &event).await
        }
        record @ (ShardRecord::ApiKey { .. } | ShardRecord::Publication { .. }) => {
            fold_setting(&local.state, stream, folded_to, record).await
        }
        record => match FoldedOutcome::of(record) {
            Some(outcome) => {
                alerts
                    .fold_delivered(registry, &local.store, local.clock, folded_to, outcome)
                    .await
            }
            // Heartbeats and ownership records are not applied here (`fold`).
            None => Ok(()),
        },
    }
}

/// A config record folded: a creation has the registry create the monitor, any
/// other change has its actor adopt the events. One that does not decode is skipped.
async fn fold_config(
    registry: &Registry,
    stream: StreamId,
    folded_to: FoldPosition,
    monitor: crate::domain::ids::MonitorId,
    event: &[u8],
) -> Result<(), String> {
    let mut events = match codec::decode_decided(event) {
        Ok(events) => events,
        Err(error) => {
            let sequence = folded_to.sequence;
            tracing::error!(%stream, sequence, %error, "a config record does not decode; skipped");
            return Ok(());
        }
    };
    let creation = matches!(
        events.first(),
        Some(Stamped {
            event: Event::Created { .. },
            ..
        })
    );
    let applied = if creation
        && let Stamped {
            at,
            event: Event::Created { config, token },
        } = events.remove(0)
    {
        // The rest of a creation's record, if any, is not applied (as before).
        registry
            .apply_replicated_creation(monitor, folded_to, at, *config, token)
            .await
    } else {
        registry
            .apply_replicated_decision(monitor, folded_to, events)
            .await
    };
    applied.map_err(|error| error.to_string())
}

/// A monitor silent since this pod (re)started is judged on its last record in the
/// log as of the re-fold, not on nothing (which the rule would void).
fn seed_bases(registry: &Registry, shard_folds: &HashMap<ShardId, ShardFold>) {
    for shard_fold in shard_folds.values() {
        for (monitor, basis) in shard_fold.bases() {
            registry.seed_basis(monitor, basis);
        }
    }
}

/// Folds a record of a stream into the rule of its shard (`shard`: the shard its
/// subject names; none for a heartbeats record, whose items each count for their
/// monitor's shard); what the rule says of it.
fn fold_record(
    shard_folds: &mut HashMap<ShardId, ShardFold>,
    shards: u16,
    shard: Option<ShardId>,
    sequence: Sequence,
    record: &ShardRecord,
) -> Option<Folded> {
    match (record, shard) {
        (ShardRecord::Heartbeats { heartbeats }, _) => {
            for (monitor, _) in heartbeats {
                let item = ShardRecord::Heartbeat {
                    monitor: *monitor,
                    event: Vec::new(),
                };
                shard_folds
                    .entry(shard_of(monitor, shards))
                    .or_default()
                    .apply(sequence, &item);
            }
            Some(Folded::Applied)
        }
        (_, Some(shard)) => Some(
            shard_folds
                .entry(shard)
                .or_default()
                .apply(sequence, record),
        ),
        (_, None) => None,
    }
}

/// A job's signal folded: the monitor's actor decides it at the time the taking pod
/// received it (`Registry::apply_replicated_signal`). One that does not decode is
/// skipped, as any record.
async fn fold_signal(
    registry: &Registry,
    stream: StreamId,
    folded_to: FoldPosition,
    monitor: crate::domain::ids::MonitorId,
    event: &[u8],
) -> Result<(), String> {
    match codec::decode_signal(event) {
        Ok(codec::StoredSignal { at, signal }) => registry
            .apply_replicated_signal(monitor, folded_to, at, signal)
            .await
            .map_err(|error| error.to_string()),
        Err(error) => {
            let sequence = folded_to.sequence;
            tracing::error!(%stream, sequence, %error, "a signal record does not decode; skipped");
            Ok(())
        }
    }
}

/// What the alerts need from a record folded again (applied before the pod's restart):
/// the ids of effective decisions' alerts and the outcomes recorded.
fn refold_alerts(
    alerts: &ClusterAlerts,
    shard: ShardId,
    sequence: Sequence,
    record: &ShardRecord,
    folded: Folded,
) {
    match record {
        ShardRecord::Decision { monitor, event, .. } if folded == Folded::Effective => {
            if let Ok(events) = codec::decode_decided(event) {
                alerts.note_decision(shard, sequence, *monitor, &events);
            }
        }
        record => {
            if let Some(outcome) = FoldedOutcome::of(record.clone()) {
                alerts.note_delivered(&outcome);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::MonitorId;

    fn queued(record: ShardRecord) -> (Pending, oneshot::Receiver<Result<Sequence, String>>) {
        let (reply, answer) = oneshot::channel();
        let shard = match &record {
            ShardRecord::Heartbeat { monitor, .. } | ShardRecord::Config { monitor, .. } => {
                shard_of(monitor, 64)
            }
            _ => ShardId(0),
        };
        ((shard, record, reply), answer)
    }

    fn heartbeat(n: u8, bytes: usize) -> ShardRecord {
        ShardRecord::Heartbeat {
            monitor: MonitorId::from_bytes([n; 16]),
            event: vec![n; bytes],
        }
    }

    #[test]
    fn runs_of_heartbeats_become_one_record_each_in_the_queues_order() {
        let config = ShardRecord::Config {
            monitor: MonitorId::from_bytes([9; 16]),
            event: vec![1],
        };
        let (pending, _answers): (Vec<_>, Vec<_>) = [
            heartbeat(1, 3),
            heartbeat(2, 3),
            config.clone(),
            heartbeat(1, 3),
        ]
        .into_iter()
        .map(queued)
        .unzip();
        let (records, waiting) = combine_heartbeats(pending);
        let batch = |items: &[u8]| ShardRecord::Heartbeats {
            heartbeats: items
                .iter()
                .map(|n| (MonitorId::from_bytes([*n; 16]), vec![*n; 3]))
                .collect(),
        };
        let records: Vec<ShardRecord> = records.into_iter().map(|(_, record)| record).collect();
        assert_eq!(records, vec![batch(&[1, 2]), config, batch(&[1])]);
        let callers: Vec<usize> = waiting.iter().map(Vec::len).collect();
        assert_eq!(callers, vec![2, 1, 1]);
    }

    #[test]
    fn a_run_of_heartbeats_is_cut_before_it_passes_the_byte_limit() {
        let big = MAX_HEARTBEATS_BYTES / 3;
        let (pending, _answers): (Vec<_>, Vec<_>) =
            (1..=4).map(|n| queued(heartbeat(n, big))).unzip();
        let (records, waiting) = combine_heartbeats(pending);
        let sizes: Vec<usize> = records
            .iter()
            .map(|(_, record)| match record {
                ShardRecord::Heartbeats { heartbeats } => heartbeats.len(),
                other => panic!("not a heartbeats record: {other:?}"),
            })
            .collect();
        assert_eq!(sizes, vec![2, 2]);
        assert_eq!(waiting.iter().map(Vec::len).sum::<usize>(), 4);
    }
}
