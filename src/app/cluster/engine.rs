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

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::{self, AckPolicy, DeliverPolicy};
use futures_util::StreamExt;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::alert::Channels;
use crate::cluster::log::{JetStreamLog, ShardLog};
use crate::cluster::ownership::Ownership;
use crate::cluster::shard::{ShardId, shard_of};
use crate::domain::event::{Event, Stamped};
use crate::domain::fence::Sequence;
use crate::domain::fence::{Folded, ShardFold, ShardRecord};
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

impl Replication for Publisher {
    fn publish(
        &self,
        record: ShardRecord,
    ) -> Pin<Box<dyn Future<Output = Result<Sequence, String>> + Send + 'static>> {
        let monitor = match &record {
            ShardRecord::Heartbeat { monitor, .. }
            | ShardRecord::Decision { monitor, .. }
            | ShardRecord::Config { monitor, .. } => *monitor,
            ShardRecord::Channel { channel, .. } => {
                crate::domain::ids::MonitorId::from_bytes(*channel.as_bytes())
            }
            _ => return Box::pin(async { Err("not a monitor's record".to_owned()) }),
        };
        let shard = shard_of(&monitor, self.shards);
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
    fn publish_created(
        &self,
        channel: crate::domain::channel::Channel,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'static>> {
        let id = channel.id;
        let event = codec::encode_channel_event(&codec::StoredChannelEvent {
            at: channel.created_at,
            event: crate::domain::channel::ChannelEvent::Created(channel),
        });
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
) -> Vec<JoinHandle<()>> {
    let shards = log.settings().shards;
    let gate = Arc::clone(ownership);
    registry.set_deciding(Arc::new(move |monitor| {
        gate.deciding_epoch(shard_of(&monitor, shards))
    }));
    let mut tasks = vec![tokio::spawn(redecide_on_takeovers(
        Arc::clone(ownership),
        registry.clone(),
        shards,
    ))];
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
            registry.clone(),
            channels.clone(),
            done,
            applied,
        )));
    }
    let publisher = Arc::new(Publisher {
        queues,
        applied: applied_watches,
        shards,
    });
    registry.set_replication(Arc::clone(&publisher) as Arc<dyn Replication>);
    channels.set_replication(publisher);
    for mut watching in caught_up {
        let _ = watching.wait_for(|done| *done).await;
    }
    tracing::info!(shards, "every shard folded up to its log's end");
    tasks
}

/// Every [`DECIDING_LOOK`], has the monitors of each shard this pod newly decides for
/// (taken over, or deciding again after a lapse in its renewals) re-arm their timers:
/// a deadline that fell meanwhile is judged at once.
async fn redecide_on_takeovers(ownership: Arc<Ownership>, registry: Registry, shards: u16) {
    let mut deciding: BTreeMap<ShardId, Sequence> = BTreeMap::new();
    let mut looks = tokio::time::interval(DECIDING_LOOK);
    loop {
        looks.tick().await;
        let now: BTreeMap<ShardId, Sequence> = ShardId::all(shards)
            .filter_map(|shard| Some((shard, ownership.deciding_epoch(shard)?)))
            .collect();
        let newly: BTreeSet<ShardId> = now
            .iter()
            .filter(|(shard, epoch)| deciding.get(shard) != Some(epoch))
            .map(|(shard, _)| *shard)
            .collect();
        if !newly.is_empty() {
            tracing::info!(shards = ?newly, "deciding for these shards now");
            registry.redecide(|monitor| newly.contains(&shard_of(&monitor, shards)));
        }
        deciding = now;
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

async fn fold_forever(
    log: JetStreamLog,
    shard: ShardId,
    registry: Registry,
    channels: Channels,
    caught_up: watch::Sender<bool>,
    applied: watch::Sender<Sequence>,
) {
    loop {
        if let Err(error) = fold(&log, shard, &registry, &channels, &caught_up, &applied).await {
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
    registry: &Registry,
    channels: &Channels,
    caught_up: &watch::Sender<bool>,
    applied: &watch::Sender<Sequence>,
) -> Result<(), String> {
    let name = consumer_name(&log.settings().pod);
    let stream = log
        .context()
        .get_stream(shard.stream_name())
        .await
        .map_err(|error| error.to_string())?;
    let config = |deliver_policy| consumer::pull::Config {
        durable_name: Some(name.clone()),
        ack_policy: AckPolicy::All,
        deliver_policy,
        max_ack_pending: 100_000,
        ..Default::default()
    };
    let mut consumer: consumer::PullConsumer = stream
        .get_or_create_consumer(&name, config(DeliverPolicy::All))
        .await
        .map_err(|error| error.to_string())?;
    let mut info = consumer.info().await.map_err(|error| error.to_string())?;
    let floor = info.ack_floor.stream_sequence;
    // Records delivered to this pod's previous fold (before a crash, or before the
    // fold failed) but never acknowledged come again only once their ack wait runs
    // out, and with `AckPolicy::All` the acknowledgement of a later record would cover
    // them unapplied: they would be missing from this pod's copy for good. So the
    // consumer starts again right after its acknowledged floor.
    if info.num_ack_pending > 0 {
        stream
            .delete_consumer(&name)
            .await
            .map_err(|error| error.to_string())?;
        consumer = stream
            .create_consumer(config(DeliverPolicy::ByStartSequence {
                start_sequence: floor + 1,
            }))
            .await
            .map_err(|error| error.to_string())?;
        info = consumer.info().await.map_err(|error| error.to_string())?;
    }
    // The rule of which decisions count needs the whole log: what this pod applied
    // before (up to its consumer's acknowledged floor) is folded again, not applied.
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
            shard_fold.apply(stored.sequence, &stored.record);
        }
    }
    let lag = metrics::gauge!(prometheus::CLUSTER_SHARD_LAG_RECORDS, "shard" => shard.to_string());
    lag.set((info.num_pending + info.num_ack_pending as u64) as f64);
    if info.num_pending == 0 && info.num_ack_pending == 0 {
        caught_up.send_replace(true);
    }
    // The next record to apply. The consumer has no subject filter, so it delivers
    // every sequence of the stream, in order: a record below it was delivered again
    // (applied already), one above it means records were delivered and lost on the
    // way (a NATS server died with them in flight). Those would never come again
    // before their ack wait, and the acknowledgement of a later record would cover
    // them (`AckPolicy::All`), so the fold stops there and starts again after the
    // last record it applied.
    let mut expected = floor + 1;
    let mut chunks = consumer
        .stream()
        .max_messages_per_batch(MAX_CHUNK)
        .messages()
        .await
        .map_err(|error| error.to_string())?
        .ready_chunks(MAX_CHUNK);
    while let Some(chunk) = chunks.next().await {
        let mut heartbeats = Vec::new();
        let mut last: Option<(async_nats::jetstream::Message, u64)> = None;
        for message in chunk {
            let message = message.map_err(|error| error.to_string())?;
            let (sequence, pending) = {
                let info = message.info().map_err(|error| error.to_string())?;
                (info.stream_sequence, info.pending)
            };
            if sequence < expected {
                continue;
            }
            if sequence > expected {
                registry
                    .apply_replicated_heartbeats(std::mem::take(&mut heartbeats))
                    .await
                    .map_err(|error| error.to_string())?;
                if let Some((applied_last, _)) = last.take() {
                    applied_last
                        .double_ack()
                        .await
                        .map_err(|error| error.to_string())?;
                }
                return Err(format!(
                    "records {expected} to {} did not reach this pod's fold",
                    sequence - 1
                ));
            }
            expected = sequence + 1;
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
                            Ok(events) => registry
                                .apply_replicated_decision(monitor, sequence, events)
                                .await
                                .map_err(|error| error.to_string())?,
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
                Ok(ShardRecord::Channel { event, .. }) => {
                    match codec::decode_channel_event(&event) {
                        Ok(codec::StoredChannelEvent {
                            event: crate::domain::channel::ChannelEvent::Created(channel),
                            ..
                        }) => channels
                            .apply_replicated(channel)
                            .await
                            .map_err(|error| error.to_string())?,
                        Ok(_) => {
                            tracing::warn!(%shard, sequence, "a channel record this version does not apply; skipped")
                        }
                        Err(error) => {
                            tracing::error!(%shard, sequence, %error, "a channel record does not decode; skipped")
                        }
                    }
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
