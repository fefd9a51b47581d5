//! The clustered engine (slices 1 and 2 of docs/cluster.md's "Monitors on the shard
//! logs"): the shard logs are the log of record for plain heartbeats and creations.
//!
//! - [`Publisher`]: one task per shard takes every record queued for it, appends them
//!   in one go (`JetStreamLog::append_with_ids`: one wait on all their PubAcks, a group
//!   commit) and answers each caller; an append that fails answers every caller of
//!   its batch with the error (the push is answered 503).
//! - The fold: one task per shard reads its stream in order through a durable pull
//!   consumer of this pod (`fold-<pod>`, acknowledged once applied, so a restarted
//!   pod resumes where it stopped; a record applied but not acknowledged before a
//!   crash is applied again: its heartbeat counted twice in the local history) and
//!   applies each record to the local registry: heartbeats to the local store (one
//!   batch per chunk read), whose writer hands them to their monitors' inboxes as
//!   after any commit; config records to the registry (a creation spawns the actor).

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::{self, AckPolicy, DeliverPolicy};
use futures_util::StreamExt;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::Local;
use super::alerts::ClusterAlerts;
use crate::alert::Channels;
use crate::cluster::log::{JetStreamLog, ShardLog};
use crate::cluster::ownership::Ownership;
use crate::cluster::shard::{ShardId, shard_of};
use crate::domain::event::{Event, Stamped};
use crate::domain::fence::Sequence;
use crate::domain::fence::{CLUSTER_WIDE_SHARD, Folded, ShardFold, ShardRecord};
use crate::monitor::Registry;
use crate::monitor::registry::Replication;
use crate::prometheus;
use crate::store::codec;

/// At most this many records in one append (one PubAck wait).
const MAX_BATCH: usize = 2_000;

/// At most this many records applied per chunk read from a shard.
const MAX_CHUNK: usize = 2_000;

/// How often the pod looks for shards it newly decides for.
const DECIDING_LOOK: Duration = Duration::from_millis(250);

/// Before a failed fold opens its consumer again.
const FOLD_RETRY: Duration = Duration::from_secs(1);

type Pending = (ShardRecord, oneshot::Sender<Result<Sequence, String>>);

/// How long a change waits for this pod's fold to apply the record it published.
const READ_YOUR_WRITES: Duration = Duration::from_secs(10);

/// Publishes records to their monitor's shard, batching per shard.
struct Publisher {
    queues: Vec<mpsc::UnboundedSender<Pending>>,
    /// Per shard, the last sequence this pod's fold applied.
    applied: Vec<watch::Receiver<Sequence>>,
    shards: u16,
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
        let queued = self.queues[usize::from(shard.0)].send((record, reply));
        Box::pin(async move {
            queued.map_err(|_| "the shard's publisher stopped".to_owned())?;
            answer
                .await
                .map_err(|_| "the shard's publisher stopped".to_owned())?
        })
    }
}

impl crate::http::replicated::SettingReplication for Publisher {
    fn publish_setting(
        &self,
        change: crate::http::replicated::SettingChange,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'static>> {
        let record = setting_record(&change);
        let shard = ShardId(CLUSTER_WIDE_SHARD);
        let mut applied = self.applied[usize::from(shard.0)].clone();
        let published = record.map(|record| self.publish_to(shard, record));
        Box::pin(async move {
            let sequence = published?.await?;
            match tokio::time::timeout(READ_YOUR_WRITES, applied.wait_for(|at| *at >= sequence))
                .await
            {
                Ok(Ok(_)) => Ok(()),
                _ => Err("this pod's fold did not apply the change in time".to_owned()),
            }
        })
    }
}

/// The cluster-wide record of `change`.
fn setting_record(change: &crate::http::replicated::SettingChange) -> Result<ShardRecord, String> {
    use crate::http::replicated::SettingChange;
    use crate::store::{ApiKeyChange, PublicationChange};
    Ok(match change {
        SettingChange::ApiKey(key) => ShardRecord::ApiKey {
            key: match key {
                ApiKeyChange::Created(key) => *key.id.as_bytes(),
                ApiKeyChange::Revoked(id) => *id.as_bytes(),
            },
            event: crate::store::api_keys::encode_event(key).map_err(|error| error.to_string())?,
        },
        SettingChange::Publication(publication) => ShardRecord::Publication {
            publication: match publication {
                PublicationChange::Put(crate::domain::publication::Publication::Badge(badge)) => {
                    *badge.id.as_bytes()
                }
                PublicationChange::Put(crate::domain::publication::Publication::StatusPage(
                    page,
                )) => *page.id.as_bytes(),
                PublicationChange::Removed(id) => *id,
            },
            event: crate::store::publications::encode_event(publication)
                .map_err(|error| error.to_string())?,
        },
    })
}

/// A cluster-wide record folded: applied to this pod's API keys or publications. One
/// that does not decode is skipped, as any record.
async fn fold_setting(
    state: &crate::http::AppState,
    shard: ShardId,
    sequence: Sequence,
    record: ShardRecord,
) -> Result<(), String> {
    let applied = match record {
        ShardRecord::ApiKey { key, event } => {
            match crate::store::api_keys::decode_event(
                crate::domain::api_key::ApiKeyId::from_bytes(key),
                &event,
            ) {
                Ok(change) => state.api_keys.apply_replicated(change).await,
                Err(error) => {
                    tracing::error!(%shard, sequence, %error, "an API key record does not decode; skipped");
                    return Ok(());
                }
            }
        }
        ShardRecord::Publication { publication, event } => {
            match crate::store::publications::decode_event(publication, &event) {
                Ok(change) => state.publications.apply_replicated(change).await,
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
        let mut applied = self.applied[usize::from(shard_of(&monitor, self.shards).0)].clone();
        Box::pin(async move {
            tokio::time::timeout(READ_YOUR_WRITES, applied.wait_for(|at| *at >= sequence))
                .await
                .is_ok_and(|waited| waited.is_ok())
        })
    }
}

impl crate::alert::channels::ChannelReplication for Publisher {
    fn publish_change(
        &self,
        id: crate::domain::ids::ChannelId,
        at: crate::domain::ids::Timestamp,
        event: crate::domain::channel::ChannelEvent,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'static>> {
        let event = codec::encode_channel_event(&codec::StoredChannelEvent { at, event });
        let published =
            event.map(|event| self.publish(ShardRecord::Channel { channel: id, event }));
        let monitor = crate::domain::ids::MonitorId::from_bytes(*id.as_bytes());
        let applied = self.applied[usize::from(shard_of(&monitor, self.shards).0)].clone();
        Box::pin(async move {
            let sequence = published.map_err(|error| error.to_string())?.await?;
            let mut applied = applied;
            match tokio::time::timeout(READ_YOUR_WRITES, applied.wait_for(|at| *at >= sequence))
                .await
            {
                Ok(Ok(_)) => Ok(()),
                _ => Err("this pod's fold did not apply the channel in time".to_owned()),
            }
        })
    }
}

/// Starts a publisher and a fold per shard, hands the publisher to `registry`, and
/// returns once every fold has caught up with its shard's log as it was at its start.
pub(super) async fn start(
    log: &JetStreamLog,
    ownership: &Arc<Ownership>,
    registry: &Registry,
    channels: &Channels,
    local: Local,
) -> Vec<JoinHandle<()>> {
    let shards = log.settings().shards;
    let owner = Arc::clone(ownership);
    let alerts = Arc::new(ClusterAlerts::new(
        shards,
        Box::new(move |shard| owner.deciding_epoch(shard)),
        local.exit_after_sends,
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
    let mut queues = Vec::new();
    let mut caught_up = Vec::new();
    let mut applied_watches = Vec::new();
    for shard in ShardId::all(shards) {
        let (queue, pending) = mpsc::unbounded_channel();
        queues.push(queue);
        tasks.push(tokio::spawn(publish_batches(log.clone(), shard, pending)));
        let (done, watching) = watch::channel(false);
        caught_up.push(watching);
        let (applied, applied_watch) = watch::channel(0);
        applied_watches.push(applied_watch);
        tasks.push(tokio::spawn(fold_forever(
            log.clone(),
            shard,
            Folding {
                registry: registry.clone(),
                channels: channels.clone(),
                alerts: Arc::clone(&alerts),
                local: Arc::clone(&local),
            },
            done,
            applied,
        )));
    }
    let publisher = Arc::new(Publisher {
        queues,
        applied: applied_watches.clone(),
        shards,
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
    registry.set_replication(Arc::clone(&publisher) as Arc<dyn Replication>);
    local.state.settings.set_replication(
        Arc::clone(&publisher) as Arc<dyn crate::http::replicated::SettingReplication>
    );
    channels.set_replication(publisher);
    for mut watching in caught_up {
        let _ = watching.wait_for(|done| *done).await;
    }
    tracing::info!(shards, "every shard folded up to its log's end");
    tasks
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
    let mut looks = tokio::time::interval(DECIDING_LOOK);
    loop {
        looks.tick().await;
        let mut catching_up = Vec::new();
        for shard in ShardId::all(shards) {
            match ownership.deciding_epoch(shard) {
                None if alerts.folded_for(shard) != 0 => alerts.set_folded_for(shard, 0),
                Some(epoch) if alerts.folded_for(shard) != epoch => {
                    let applied = applied[usize::from(shard.0)].clone();
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

/// Waits until this pod's fold of `shard` has applied the shard's log up to its last
/// record as of now: the last sequence on any of the shard's subjects (written so
/// that it holds whether a stream holds one shard or several).
async fn catch_up(
    log: &JetStreamLog,
    shard: ShardId,
    mut applied: watch::Receiver<Sequence>,
) -> Result<(), String> {
    let stream = log
        .context()
        .get_stream_no_info(shard.stream_name())
        .await
        .map_err(|error| error.to_string())?;
    let subjects = [
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

async fn publish_batches(
    log: JetStreamLog,
    shard: ShardId,
    mut queue: mpsc::UnboundedReceiver<Pending>,
) {
    let mut received = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut received, MAX_BATCH).await > 0 {
        let (records, waiting) = combine_heartbeats(std::mem::take(&mut received));
        let records: Vec<_> = records
            .into_iter()
            .map(|record| (log.next_message_id(), record))
            .collect();
        metrics::counter!(prometheus::CLUSTER_APPENDS_TOTAL).increment(1);
        metrics::counter!(prometheus::CLUSTER_APPENDED_RECORDS_TOTAL)
            .increment(records.len() as u64);
        match log.append_with_ids(shard, &records).await {
            Ok(sequences) => {
                for (replies, (sequence, _)) in waiting.into_iter().zip(sequences) {
                    for reply in replies {
                        let _ = reply.send(Ok(sequence));
                    }
                }
            }
            Err(error) => {
                let error = error.to_string();
                for reply in waiting.into_iter().flatten() {
                    let _ = reply.send(Err(error.clone()));
                }
            }
        }
    }
}

/// At most this many bytes of heartbeat events in one `Heartbeats` record (NATS
/// refuses a message above its `max_payload`, 1 MiB by default).
const MAX_HEARTBEATS_BYTES: usize = 256 * 1024;

type Waiting = Vec<oneshot::Sender<Result<Sequence, String>>>;

/// The records to append for what was queued, in its order: each run of plain
/// heartbeats becomes one `Heartbeats` record (up to [`MAX_HEARTBEATS_BYTES`]), so
/// one message and one acknowledgement cover them; with, per record, the callers
/// waiting for its sequence.
fn combine_heartbeats(queued: Vec<Pending>) -> (Vec<ShardRecord>, Vec<Waiting>) {
    let mut combined = Combined::default();
    for (record, reply) in queued {
        match record {
            ShardRecord::Heartbeat { monitor, event } => {
                if combined.run_bytes + event.len() > MAX_HEARTBEATS_BYTES {
                    combined.close_run();
                }
                // The monitor id and the lengths' bytes, roughly.
                combined.run_bytes += event.len() + 20;
                combined.run.push((monitor, event));
                combined.run_waiting.push(reply);
            }
            other => {
                combined.close_run();
                combined.records.push(other);
                combined.waiting.push(vec![reply]);
            }
        }
    }
    combined.close_run();
    (combined.records, combined.waiting)
}

#[derive(Default)]
struct Combined {
    records: Vec<ShardRecord>,
    waiting: Vec<Waiting>,
    run: Vec<(crate::domain::ids::MonitorId, Vec<u8>)>,
    run_waiting: Waiting,
    run_bytes: usize,
}

impl Combined {
    fn close_run(&mut self) {
        if self.run.is_empty() {
            return;
        }
        self.records.push(ShardRecord::Heartbeats {
            heartbeats: std::mem::take(&mut self.run),
        });
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
    shard: ShardId,
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
            tracing::warn!(%shard, sequence, "a heartbeat record holds another event; skipped")
        }
        Err(error) => {
            tracing::error!(%shard, sequence, %error, "a heartbeat record does not decode; skipped")
        }
    }
}

/// What a shard's fold applies records to.
struct Folding {
    registry: Registry,
    channels: Channels,
    alerts: Arc<ClusterAlerts>,
    local: Arc<Local>,
}

async fn fold_forever(
    log: JetStreamLog,
    shard: ShardId,
    folding: Folding,
    caught_up: watch::Sender<bool>,
    applied: watch::Sender<Sequence>,
) {
    loop {
        if let Err(error) = fold(&log, shard, &folding, &caught_up, &applied).await {
            tracing::warn!(%shard, %error, "folding the shard failed; resuming from its last applied record");
        }
        tokio::time::sleep(FOLD_RETRY).await;
    }
}

/// This pod's durable consumer's name (a consumer name has no `.`).
fn consumer_name(pod: &str) -> String {
    format!("fold-{}", pod.replace(['.', '*', '>', ' '], "_"))
}

async fn fold(
    log: &JetStreamLog,
    shard: ShardId,
    folding: &Folding,
    caught_up: &watch::Sender<bool>,
    applied: &watch::Sender<Sequence>,
) -> Result<(), String> {
    let Folding {
        registry,
        channels,
        alerts,
        local,
    } = folding;
    let name = consumer_name(&log.settings().pod);
    let stream = log
        .context()
        .get_stream(shard.stream_name())
        .await
        .map_err(|error| error.to_string())?;
    let mut consumer: consumer::PullConsumer = stream
        .get_or_create_consumer(
            &name,
            consumer::pull::Config {
                durable_name: Some(name.clone()),
                ack_policy: AckPolicy::All,
                deliver_policy: DeliverPolicy::All,
                max_ack_pending: 100_000,
                ..Default::default()
            },
        )
        .await
        .map_err(|error| error.to_string())?;
    let info = consumer.info().await.map_err(|error| error.to_string())?;
    let (mut floor, mut num_pending, mut num_ack_pending) = (
        info.ack_floor.stream_sequence,
        info.num_pending,
        info.num_ack_pending,
    );
    if num_ack_pending > 0 {
        // Records delivered to an earlier run of this fold (a process SIGKILLed, a
        // fold that failed) and not acknowledged would be delivered again only after
        // the consumer's ack wait (30 s): until then this fold would miss them, and
        // judge on a stale basis. The consumer starts again after its ack floor.
        let start_sequence = floor + 1;
        stream
            .delete_consumer(&name)
            .await
            .map_err(|error| error.to_string())?;
        consumer = stream
            .create_consumer(consumer::pull::Config {
                durable_name: Some(name.clone()),
                ack_policy: AckPolicy::All,
                deliver_policy: DeliverPolicy::ByStartSequence { start_sequence },
                max_ack_pending: 100_000,
                ..Default::default()
            })
            .await
            .map_err(|error| error.to_string())?;
        let info = consumer.info().await.map_err(|error| error.to_string())?;
        (floor, num_pending, num_ack_pending) =
            (start_sequence - 1, info.num_pending, info.num_ack_pending);
    }
    let mut shard_fold = ShardFold::default();
    let mut next = 1;
    while next <= floor {
        let read = log
            .read(shard, next, MAX_CHUNK)
            .await
            .map_err(|error| error.to_string())?;
        let Some(last) = read.last() else { break };
        next = last.sequence + 1;
        for stored in read.iter().filter(|stored| stored.sequence <= floor) {
            let folded = shard_fold.apply(stored.sequence, &stored.record);
            refold_alerts(alerts, shard, stored.sequence, &stored.record, folded);
        }
    }
    // A monitor silent since this pod (re)started is judged on its last record in the
    // log, not on nothing (which the rule would void).
    for (monitor, basis) in shard_fold.bases() {
        registry.seed_basis(monitor, basis);
    }
    let lag = metrics::gauge!(prometheus::CLUSTER_SHARD_LAG_RECORDS, "shard" => shard.to_string());
    lag.set((num_pending + num_ack_pending as u64) as f64);
    if num_pending == 0 && num_ack_pending == 0 {
        caught_up.send_replace(true);
    }
    let mut chunks = consumer
        .stream()
        .max_messages_per_batch(MAX_CHUNK)
        .messages()
        .await
        .map_err(|error| error.to_string())?
        .ready_chunks(MAX_CHUNK);
    while let Some(chunk) = chunks.next().await {
        let mut heartbeats = Vec::new();
        let mut last = None;
        for message in chunk {
            let message = message.map_err(|error| error.to_string())?;
            let (sequence, pending) = {
                let info = message.info().map_err(|error| error.to_string())?;
                (info.stream_sequence, info.pending)
            };
            let decoded = codec::decode_shard_record(&message.payload);
            let folded = decoded
                .as_ref()
                .ok()
                .map(|record| shard_fold.apply(sequence, record));
            match decoded {
                Ok(ShardRecord::Heartbeats { heartbeats: batch }) => {
                    for (monitor, event) in batch {
                        take_heartbeat(&mut heartbeats, shard, sequence, monitor, &event);
                    }
                }
                Ok(ShardRecord::Heartbeat { monitor, event }) => {
                    take_heartbeat(&mut heartbeats, shard, sequence, monitor, &event);
                }
                Ok(ShardRecord::Config { monitor, event }) => {
                    // Heartbeats before it in the log are written before it.
                    registry
                        .apply_replicated_heartbeats(std::mem::take(&mut heartbeats))
                        .await
                        .map_err(|error| error.to_string())?;
                    match codec::decode_decided(&event) {
                        Ok(mut events)
                            if matches!(
                                events.first(),
                                Some(Stamped {
                                    event: Event::Created { .. },
                                    ..
                                })
                            ) =>
                        {
                            let Stamped {
                                at,
                                event: Event::Created { config, token },
                            } = events.remove(0)
                            else {
                                unreachable!("matched above")
                            };
                            registry
                                .apply_replicated_creation(monitor, sequence, at, *config, token)
                                .await
                                .map_err(|error| error.to_string())?;
                        }
                        Ok(events) => registry
                            .apply_replicated_decision(monitor, sequence, events)
                            .await
                            .map_err(|error| error.to_string())?,
                        Err(error) => {
                            tracing::error!(%shard, sequence, %error, "a config record does not decode; skipped")
                        }
                    }
                    applied.send_replace(sequence);
                }
                Ok(ShardRecord::Decision { monitor, event, .. }) => match folded {
                    Some(Folded::Effective) => {
                        registry
                            .apply_replicated_heartbeats(std::mem::take(&mut heartbeats))
                            .await
                            .map_err(|error| error.to_string())?;
                        match codec::decode_decided(&event) {
                            Ok(events) => {
                                alerts.note_decision(shard, sequence, monitor, &events);
                                registry
                                    .apply_replicated_decision(monitor, sequence, events)
                                    .await
                                    .map_err(|error| error.to_string())?
                            }
                            Err(error) => {
                                tracing::error!(%shard, sequence, %error, "a decision record does not decode; skipped")
                            }
                        }
                    }
                    Some(Folded::Void(why)) => {
                        tracing::debug!(%shard, sequence, %monitor, ?why, "a void decision");
                        metrics::counter!(prometheus::DECISIONS_VOIDED_TOTAL).increment(1);
                    }
                    _ => {}
                },
                Ok(ShardRecord::Channel { channel, event }) => {
                    match codec::decode_channel_event(&event) {
                        Ok(codec::StoredChannelEvent { at, event }) => channels
                            .apply_replicated(channel, at, event)
                            .await
                            .map_err(|error| error.to_string())?,
                        Err(error) => {
                            tracing::error!(%shard, sequence, %error, "a channel record does not decode; skipped")
                        }
                    }
                    applied.send_replace(sequence);
                }
                Ok(ShardRecord::Delivered {
                    monitor,
                    channel,
                    alert,
                    attempts,
                    error,
                }) => {
                    // The alert's record is written before its outcome.
                    registry
                        .apply_replicated_heartbeats(std::mem::take(&mut heartbeats))
                        .await
                        .map_err(|error| error.to_string())?;
                    alerts
                        .fold_delivered(
                            registry,
                            &local.store,
                            local.clock,
                            monitor,
                            channel,
                            alert,
                            attempts,
                            error,
                        )
                        .await?;
                    applied.send_replace(sequence);
                }
                Ok(ShardRecord::Signal { monitor, event }) => {
                    // Heartbeats before it in the log are applied before it.
                    registry
                        .apply_replicated_heartbeats(std::mem::take(&mut heartbeats))
                        .await
                        .map_err(|error| error.to_string())?;
                    fold_signal(registry, shard, sequence, monitor, &event).await?;
                    applied.send_replace(sequence);
                }
                Ok(record @ (ShardRecord::ApiKey { .. } | ShardRecord::Publication { .. })) => {
                    fold_setting(&local.state, shard, sequence, record).await?;
                    applied.send_replace(sequence);
                }
                // Ownership records are the ownership manager's.
                Ok(_) => {}
                Err(error) => {
                    tracing::error!(%shard, sequence, %error, "a shard record does not decode; skipped");
                }
            }
            last = Some((message, pending));
        }
        registry
            .apply_replicated_heartbeats(heartbeats)
            .await
            .map_err(|error| error.to_string())?;
        if let Some((message, pending)) = last {
            if let Ok(info) = message.info() {
                applied.send_replace(info.stream_sequence);
            }
            message.ack().await.map_err(|error| error.to_string())?;
            lag.set(pending as f64);
            if pending == 0 {
                caught_up.send_replace(true);
            }
        }
    }
    Err("the shard's consumer ended".to_owned())
}

/// What the alerts need from a record folded again (applied before the pod's restart):
/// the ids of effective decisions' alerts and the outcomes recorded.
/// A job's signal folded: the monitor's actor decides it at the time the taking pod
/// received it (`Registry::apply_replicated_signal`). One that does not decode is
/// skipped, as any record.
async fn fold_signal(
    registry: &Registry,
    shard: ShardId,
    sequence: Sequence,
    monitor: crate::domain::ids::MonitorId,
    event: &[u8],
) -> Result<(), String> {
    match codec::decode_signal(event) {
        Ok(codec::StoredSignal { at, signal }) => registry
            .apply_replicated_signal(monitor, sequence, at, signal)
            .await
            .map_err(|error| error.to_string()),
        Err(error) => {
            tracing::error!(%shard, sequence, %error, "a signal record does not decode; skipped");
            Ok(())
        }
    }
}

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
        ShardRecord::Delivered {
            channel,
            alert,
            attempts,
            error,
            ..
        } => alerts.note_delivered(alert.clone(), *channel, *attempts, error.clone()),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::MonitorId;

    fn queued(record: ShardRecord) -> (Pending, oneshot::Receiver<Result<Sequence, String>>) {
        let (reply, answer) = oneshot::channel();
        ((record, reply), answer)
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
            .map(|record| match record {
                ShardRecord::Heartbeats { heartbeats } => heartbeats.len(),
                other => panic!("not a heartbeats record: {other:?}"),
            })
            .collect();
        assert_eq!(sizes, vec![2, 2]);
        assert_eq!(waiting.iter().map(Vec::len).sum::<usize>(), 4);
    }
}
