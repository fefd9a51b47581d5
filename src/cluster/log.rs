//! The shard logs over NATS JetStream ([`JetStreamLog`]): one replicated file stream
//! per group of shards (`--cluster-streams`, see `shard::stream_of`), each shard's
//! records on its own subjects, and heartbeats of any of the stream's shards combined
//! on the stream's heartbeats subject. This is the storage under the clustered
//! backend of the event log (`cluster/event_log.rs`): the engine's publisher
//! (`app/cluster/engine.rs`, the event log's `Replication`) appends through it, and
//! the folds read it.
//!
//! An append publishes a batch's records concurrently, each with its own
//! `Nats-Msg-Id` (so a retried publish is stored once within the stream's duplicate
//! window), and returns their stream sequences only once every PubAck has arrived:
//! with `sync_interval: always` on the servers, a PubAck means the record is fsynced
//! on a quorum of the stream's replicas. Any missing PubAck within the timeout fails
//! the whole append, and the caller must answer 503, never 200.
//!
//! Ownership records go through [`JetStreamLog::publish_fenced`], which publishes with
//! `Nats-Expected-Last-Subject-Sequence` on the shard's ownership subject: the server
//! refuses the record if any other ownership record landed since the one the
//! publisher saw, which is what fences two pods contending for a shard.
//!
//! There is no trait over this and the fjall store at this level: the two logs
//! differ below the event log (a shard's log has sequences per stream, fenced
//! ownership records and consumers; the store has its writer, snapshots and
//! replay), so the one abstraction over both is `cluster::event_log::EventLog`.

use std::future::IntoFuture;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_nats::jetstream::{self, consumer, context::PublishErrorKind, stream};
use bytes::Bytes;
use futures_util::StreamExt;

use super::shard::{ShardId, StreamId, shard_of, stream_of};
use crate::domain::fence::{Sequence, ShardRecord};
use crate::domain::ids::Timestamp;
use crate::store::codec;

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("cannot connect to NATS: {0}")]
    Connect(String),
    #[error("shard {shard}: cannot create or open its stream: {reason}")]
    Stream { shard: ShardId, reason: String },
    #[error("shard {shard}: a record was not acknowledged: {reason}")]
    NotAcknowledged { shard: ShardId, reason: String },
    #[error("shard {shard}: no acknowledgement within {timeout:?}")]
    TimedOut { shard: ShardId, timeout: Duration },
    #[error("stream {stream}: a record was not acknowledged: {reason}")]
    StreamNotAcknowledged { stream: StreamId, reason: String },
    #[error("stream {stream}: no acknowledgement within {timeout:?}")]
    StreamTimedOut { stream: StreamId, timeout: Duration },
    #[error("stream {stream}: cannot create, open or read it: {reason}")]
    StreamRead { stream: StreamId, reason: String },
    #[error("shard {shard}: cannot read: {reason}")]
    Read { shard: ShardId, reason: String },
    #[error("shard {shard}: record {sequence} does not decode: {reason}")]
    Corrupt {
        shard: ShardId,
        sequence: Sequence,
        reason: String,
    },
    #[error("cannot encode a record: {0}")]
    Encode(String),
}

/// A record read back from a shard's log, at its sequence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stored {
    pub sequence: Sequence,
    pub record: ShardRecord,
}

/// What a fenced publish found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fenced {
    /// The record landed at this sequence.
    Landed(Sequence),
    /// Another ownership record landed since the expected one: refused.
    Refused,
}

/// How the JetStream log is set up.
#[derive(Clone, Debug)]
pub struct JetStreamSettings {
    /// Server addresses (`nats://host:port`), any of the cluster's.
    pub servers: Vec<String>,
    /// This pod's name: the connection's name and the prefix of its message ids.
    pub pod: String,
    pub shards: u16,
    /// Streams the shards are spread over (1 to `shards`).
    pub streams: u16,
    /// Replicas of each stream: 3 in production, 1 allowed for tests.
    pub replicas: usize,
    /// How long an append waits for its PubAcks.
    pub ack_timeout: Duration,
}

/// How long the servers remember a message id (a retried publish within it is stored
/// once); JetStream's default, above the 2 minutes a retry may take.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// The shard logs over JetStream. Cheap to clone.
#[derive(Clone)]
pub struct JetStreamLog {
    inner: Arc<Inner>,
}

struct Inner {
    client: async_nats::Client,
    context: jetstream::Context,
    settings: JetStreamSettings,
    /// A fresh value per process, so a restarted pod's message ids never repeat ids
    /// still inside the duplicate window (a repeat would be dropped as a duplicate).
    incarnation: u64,
    counter: AtomicU64,
}

impl JetStreamLog {
    /// Connects to the servers (no stream is touched: see [`Self::ensure_streams`]).
    pub async fn connect(settings: JetStreamSettings) -> Result<Self, LogError> {
        let client = async_nats::ConnectOptions::new()
            .name(&settings.pod)
            .connection_timeout(Duration::from_secs(5))
            .connect(settings.servers.as_slice())
            .await
            .map_err(|error| LogError::Connect(error.to_string()))?;
        let context = jetstream::ContextBuilder::new()
            .timeout(settings.ack_timeout)
            .build(client.clone());
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                context,
                incarnation: rand::random(),
                counter: AtomicU64::new(0),
                settings,
            }),
        })
    }

    pub fn settings(&self) -> &JetStreamSettings {
        &self.inner.settings
    }

    pub(crate) fn context(&self) -> &jetstream::Context {
        &self.inner.context
    }

    /// The stream carrying `shard`.
    pub fn stream_of(&self, shard: ShardId) -> StreamId {
        stream_of(shard, self.inner.settings.streams)
    }

    /// The shard of `monitor`.
    pub fn shard_of(&self, monitor: &crate::domain::ids::MonitorId) -> ShardId {
        shard_of(monitor, self.inner.settings.shards)
    }

    /// Creates every stream that does not exist yet (an existing one is used as it
    /// is).
    pub async fn ensure_streams(&self) -> Result<(), LogError> {
        let JetStreamSettings {
            shards, streams, ..
        } = self.inner.settings;
        for stream_id in StreamId::all(streams) {
            self.inner
                .context
                .get_or_create_stream(stream::Config {
                    name: stream_id.name(),
                    subjects: stream_id.subjects(shards, streams),
                    num_replicas: self.inner.settings.replicas,
                    storage: stream::StorageType::File,
                    duplicate_window: DUPLICATE_WINDOW,
                    // Sequences are epochs and bases: nothing may be removed by hand.
                    deny_delete: true,
                    allow_direct: true,
                    ..Default::default()
                })
                .await
                .map_err(|error| LogError::StreamRead {
                    stream: stream_id,
                    reason: error.to_string(),
                })?;
        }
        Ok(())
    }

    /// A message id no other publish of this pod, this process or an earlier one,
    /// has used.
    pub fn next_message_id(&self) -> String {
        let counter = self.inner.counter.fetch_add(1, Ordering::Relaxed);
        format!(
            "{}-{:016x}-{counter}",
            self.inner.settings.pod, self.inner.incarnation
        )
    }

    /// Appends records with the given message ids: a retry with the same ids stores
    /// nothing twice. Each sequence comes with whether the servers had it already.
    pub async fn append_with_ids(
        &self,
        shard: ShardId,
        records: &[(String, ShardRecord)],
    ) -> Result<Vec<(Sequence, bool)>, LogError> {
        let with_subjects: Vec<(String, String, &ShardRecord)> = records
            .iter()
            .map(|(message_id, record)| {
                (message_id.clone(), self.subject_of(shard, record), record)
            })
            .collect();
        self.publish_all(&with_subjects)
            .await
            .map_err(|error| match error {
                Published::Failed(reason) => LogError::NotAcknowledged { shard, reason },
                Published::TimedOut(timeout) => LogError::TimedOut { shard, timeout },
                Published::Encode(error) => error,
            })
    }

    /// Appends records of several of `stream`'s shards in one go, each with its
    /// message id and the shard it is about (for a heartbeats record, whose items may
    /// be of any shard of the stream, the stream's heartbeats subject takes it):
    /// their sequences once every PubAck arrived, as [`Self::append_with_ids`].
    pub async fn append_to_stream(
        &self,
        stream: StreamId,
        records: &[(String, ShardId, ShardRecord)],
    ) -> Result<Vec<(Sequence, bool)>, LogError> {
        let with_subjects: Vec<(String, String, &ShardRecord)> = records
            .iter()
            .map(|(message_id, shard, record)| {
                (message_id.clone(), self.subject_of(*shard, record), record)
            })
            .collect();
        self.publish_all(&with_subjects)
            .await
            .map_err(|error| match error {
                Published::Failed(reason) => LogError::StreamNotAcknowledged { stream, reason },
                Published::TimedOut(timeout) => LogError::StreamTimedOut { stream, timeout },
                Published::Encode(error) => error,
            })
    }

    /// Sends every record of an append to `stream`, each with its message id and the
    /// shard it is about, without waiting for their PubAcks: [`InFlight::acknowledged`]
    /// waits for them. The records of appends sent one after another on this
    /// connection land in the stream in that order, so a publisher may send the next
    /// append while the previous one waits.
    pub async fn send_to_stream(
        &self,
        stream: StreamId,
        records: &[(String, ShardId, ShardRecord)],
    ) -> Result<InFlight, LogError> {
        let timeout = self.inner.settings.ack_timeout;
        let failed = |reason: String| LogError::StreamNotAcknowledged { stream, reason };
        let send = async {
            let mut acks = Vec::with_capacity(records.len());
            for (message_id, shard, record) in records {
                let message = jetstream::message::PublishMessage::build()
                    .payload(encode(record)?)
                    .message_id(message_id);
                let ack = self
                    .inner
                    .context
                    .send_publish(self.subject_of(*shard, record), message)
                    .await
                    .map_err(|error| failed(error.to_string()))?;
                acks.push(ack);
            }
            Ok(acks)
        };
        let acks = tokio::time::timeout(timeout, send)
            .await
            .map_err(|_elapsed| LogError::StreamTimedOut { stream, timeout })??;
        Ok(InFlight {
            stream,
            timeout,
            acks,
        })
    }

    /// Publishes every record concurrently, then waits once for all their PubAcks.
    async fn publish_all(
        &self,
        records: &[(String, String, &ShardRecord)],
    ) -> Result<Vec<(Sequence, bool)>, Published> {
        let timeout = self.inner.settings.ack_timeout;
        let publish_and_wait = async {
            let mut pending = Vec::with_capacity(records.len());
            for (message_id, subject, record) in records {
                let payload = encode(record).map_err(Published::Encode)?;
                let message = jetstream::message::PublishMessage::build()
                    .payload(payload)
                    .message_id(message_id);
                let ack = self
                    .inner
                    .context
                    .send_publish(subject.clone(), message)
                    .await
                    .map_err(|error| Published::Failed(error.to_string()))?;
                pending.push(ack.into_future());
            }
            let mut sequences = Vec::with_capacity(pending.len());
            for ack in futures_util::future::join_all(pending).await {
                let ack = ack.map_err(|error| Published::Failed(error.to_string()))?;
                sequences.push((ack.sequence, ack.duplicate));
            }
            Ok(sequences)
        };
        tokio::time::timeout(timeout, publish_and_wait)
            .await
            .map_err(|_elapsed| Published::TimedOut(timeout))?
    }

    /// The subject `record` about `shard` is published on.
    pub fn subject_of(&self, shard: ShardId, record: &ShardRecord) -> String {
        match record {
            ShardRecord::Heartbeat { .. } | ShardRecord::Signal { .. } => shard.heartbeat_subject(),
            ShardRecord::Heartbeats { .. } => self.stream_of(shard).heartbeats_subject(),
            ShardRecord::Decision { .. }
            | ShardRecord::Delivered { .. }
            | ShardRecord::DeliveredAt { .. } => shard.decision_subject(),
            ShardRecord::Config { .. }
            | ShardRecord::Channel { .. }
            | ShardRecord::ApiKey { .. }
            | ShardRecord::Publication { .. } => shard.config_subject(),
            ShardRecord::Takeover { .. }
            | ShardRecord::Renewal { .. }
            | ShardRecord::Release { .. } => shard.ownership_subject(),
        }
    }

    /// Publishes an ownership record if the last ownership record of `shard` is still
    /// at `expected` (0: there is none).
    pub async fn publish_fenced(
        &self,
        shard: ShardId,
        record: &ShardRecord,
        expected: Sequence,
    ) -> Result<Fenced, LogError> {
        let timeout = self.inner.settings.ack_timeout;
        let message = jetstream::message::PublishMessage::build()
            .payload(encode(record)?)
            .message_id(self.next_message_id())
            .expected_last_subject_sequence(expected);
        let publish = async {
            let ack = self
                .inner
                .context
                .send_publish(shard.ownership_subject(), message)
                .await?;
            ack.await
        };
        match tokio::time::timeout(timeout, publish).await {
            Err(_elapsed) => Err(LogError::TimedOut { shard, timeout }),
            Ok(Ok(ack)) => Ok(Fenced::Landed(ack.sequence)),
            Ok(Err(error)) if error.kind() == PublishErrorKind::WrongLastSequence => {
                Ok(Fenced::Refused)
            }
            Ok(Err(error)) => Err(LogError::NotAcknowledged {
                shard,
                reason: error.to_string(),
            }),
        }
    }

    /// The last ownership record of `shard`, read from the stream's leader; `None`
    /// when the shard never had one.
    pub async fn last_ownership(&self, shard: ShardId) -> Result<Option<Stored>, LogError> {
        Ok(self
            .last_ownership_at(shard)
            .await?
            .map(|(stored, _at)| stored))
    }

    /// [`Self::last_ownership`], with when the servers stored it (their clock).
    pub async fn last_ownership_at(
        &self,
        shard: ShardId,
    ) -> Result<Option<(Stored, Timestamp)>, LogError> {
        let read_error = |reason: String| LogError::Read { shard, reason };
        let stream = self
            .inner
            .context
            .get_stream_no_info(self.stream_of(shard).name())
            .await
            .map_err(|error| read_error(error.to_string()))?;
        let found = tokio::time::timeout(
            self.inner.settings.ack_timeout,
            stream.get_last_raw_message_by_subject(&shard.ownership_subject()),
        )
        .await
        .map_err(|_elapsed| read_error("timed out".to_owned()))?;
        match found {
            Ok(message) => {
                let at = Timestamp::from_millis(
                    i64::try_from(message.time.unix_timestamp_nanos() / 1_000_000).unwrap_or(0),
                );
                let stored = Stored {
                    sequence: message.sequence,
                    record: decode(shard, message.sequence, &message.payload)?,
                };
                Ok(Some((stored, at)))
            }
            Err(error) if error.kind() == stream::LastRawMessageErrorKind::NoMessageFound => {
                Ok(None)
            }
            Err(error) => Err(read_error(error.to_string())),
        }
    }

    /// The server leading `shard`'s stream (`None` for a stream of one replica outside
    /// a cluster).
    pub async fn stream_leader(&self, shard: ShardId) -> Result<Option<String>, LogError> {
        let read_error = |reason: String| LogError::Read { shard, reason };
        let mut stream = self
            .inner
            .context
            .get_stream(self.stream_of(shard).name())
            .await
            .map_err(|error| read_error(error.to_string()))?;
        let info = stream
            .info()
            .await
            .map_err(|error| read_error(error.to_string()))?;
        Ok(info
            .cluster
            .as_ref()
            .and_then(|cluster| cluster.leader.clone()))
    }

    /// Removes `stream`'s records as `plan` says (`share::purge_plan`: per subject
    /// filter, the records below a sequence); how many were removed.
    pub async fn purge_below(
        &self,
        stream: StreamId,
        plan: &[(String, Sequence)],
    ) -> Result<u64, LogError> {
        let failed = |reason: String| LogError::StreamRead { stream, reason };
        let nats_stream = self
            .inner
            .context
            .get_stream_no_info(stream.name())
            .await
            .map_err(|error| failed(error.to_string()))?;
        let mut purged = 0;
        for (subject, below) in plan {
            let response = tokio::time::timeout(
                self.inner.settings.ack_timeout,
                nats_stream
                    .purge()
                    .filter(subject.clone())
                    .sequence(*below)
                    .into_future(),
            )
            .await
            .map_err(|_elapsed| failed("the purge timed out".to_owned()))?
            .map_err(|error| failed(error.to_string()))?;
            purged += response.purged;
        }
        Ok(purged)
    }

    /// `stream`'s first and last sequences, its record count and size in bytes, as
    /// its leader answers now.
    pub async fn stream_state(&self, stream: StreamId) -> Result<StreamState, LogError> {
        let failed = |reason: String| LogError::StreamRead { stream, reason };
        let mut nats_stream = self
            .inner
            .context
            .get_stream(stream.name())
            .await
            .map_err(|error| failed(error.to_string()))?;
        let state = &nats_stream
            .info()
            .await
            .map_err(|error| failed(error.to_string()))?
            .state;
        Ok(StreamState {
            first: state.first_sequence,
            last: state.last_sequence,
            records: state.messages,
            bytes: state.bytes,
        })
    }

    /// Waits until every message this connection sent has reached a server.
    pub async fn flush(&self) -> Result<(), LogError> {
        self.inner
            .client
            .flush()
            .await
            .map_err(|error| LogError::Connect(error.to_string()))
    }
}

impl JetStreamLog {
    /// Appends `records` to `shard`'s log, each with a fresh message id: their
    /// sequences, in order, once every one is durable. An error means some may be
    /// stored and some not: never acknowledge.
    pub async fn append(
        &self,
        shard: ShardId,
        records: &[ShardRecord],
    ) -> Result<Vec<Sequence>, LogError> {
        let with_ids: Vec<(String, ShardRecord)> = records
            .iter()
            .map(|record| (self.next_message_id(), record.clone()))
            .collect();
        let appended = self.append_with_ids(shard, &with_ids).await?;
        Ok(appended.into_iter().map(|(sequence, _)| sequence).collect())
    }

    /// Up to `max` records of `shard` from sequence `from` on, in order (those
    /// appended before the call; fewer at the end of the log). A heartbeats record
    /// comes with only this shard's items (none: left out). Sequences are the
    /// stream's: those of a shard's records need not follow each other.
    pub async fn read(
        &self,
        shard: ShardId,
        from: Sequence,
        max: usize,
    ) -> Result<Vec<Stored>, LogError> {
        let read_error = |reason: String| LogError::Read { shard, reason };
        let timeout = self.inner.settings.ack_timeout;
        let stream_id = self.stream_of(shard);
        let shards = self.inner.settings.shards;
        let read = async {
            let mut stream = self
                .inner
                .context
                .get_stream(stream_id.name())
                .await
                .map_err(|error| read_error(error.to_string()))?;
            let last = stream
                .info()
                .await
                .map_err(|error| read_error(error.to_string()))?
                .state
                .last_sequence;
            let from = from.max(1);
            let mut found = Vec::new();
            if from > last || max == 0 {
                return Ok(found);
            }
            let reader = stream
                .create_consumer(consumer::pull::OrderedConfig {
                    deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                        start_sequence: from,
                    },
                    ..Default::default()
                })
                .await
                .map_err(|error| read_error(error.to_string()))?;
            // The other shards' records are read and left out here.
            let mut messages = reader
                .messages()
                .await
                .map_err(|error| read_error(error.to_string()))?;
            while let Some(message) = messages.next().await {
                let message = message.map_err(|error| read_error(error.to_string()))?;
                let info = message
                    .info()
                    .map_err(|error| read_error(error.to_string()))?;
                let (sequence, pending) = (info.stream_sequence, info.pending);
                let of_shard = ShardId::of_subject(message.subject.as_str());
                let record = match decode(shard, sequence, &message.payload)? {
                    _ if of_shard.is_some_and(|of_shard| of_shard != shard) => None,
                    ShardRecord::Heartbeats { heartbeats } => {
                        let heartbeats: Vec<_> = heartbeats
                            .into_iter()
                            .filter(|(monitor, _)| shard_of(monitor, shards) == shard)
                            .collect();
                        (!heartbeats.is_empty()).then_some(ShardRecord::Heartbeats { heartbeats })
                    }
                    other => Some(other),
                };
                if let Some(record) = record {
                    found.push(Stored { sequence, record });
                }
                if pending == 0 || sequence >= last || found.len() >= max {
                    break;
                }
            }
            Ok(found)
        };
        tokio::time::timeout(timeout, read)
            .await
            .map_err(|_elapsed| read_error("timed out".to_owned()))?
    }
}

/// A stream's extent (`JetStreamLog::stream_state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamState {
    pub first: Sequence,
    pub last: Sequence,
    pub records: u64,
    pub bytes: u64,
}

/// An append sent, whose PubAcks are awaited by [`Self::acknowledged`].
pub struct InFlight {
    stream: StreamId,
    timeout: Duration,
    acks: Vec<jetstream::context::PublishAckFuture>,
}

impl InFlight {
    /// The records' sequences (with whether the servers had them already), once
    /// every PubAck arrived; an error if any is missing after the timeout.
    pub async fn acknowledged(self) -> Result<Vec<(Sequence, bool)>, LogError> {
        let Self {
            stream,
            timeout,
            acks,
        } = self;
        let wait = async {
            let mut sequences = Vec::with_capacity(acks.len());
            for ack in
                futures_util::future::join_all(acks.into_iter().map(IntoFuture::into_future)).await
            {
                let ack = ack.map_err(|error| LogError::StreamNotAcknowledged {
                    stream,
                    reason: error.to_string(),
                })?;
                sequences.push((ack.sequence, ack.duplicate));
            }
            Ok(sequences)
        };
        tokio::time::timeout(timeout, wait)
            .await
            .map_err(|_elapsed| LogError::StreamTimedOut { stream, timeout })?
    }
}

/// How publishing a batch failed.
enum Published {
    Failed(String),
    TimedOut(Duration),
    Encode(LogError),
}

fn encode(record: &ShardRecord) -> Result<Bytes, LogError> {
    codec::encode_shard_record(record)
        .map(Bytes::from)
        .map_err(|error| LogError::Encode(error.to_string()))
}

fn decode(shard: ShardId, sequence: Sequence, payload: &[u8]) -> Result<ShardRecord, LogError> {
    codec::decode_shard_record(payload).map_err(|error| LogError::Corrupt {
        shard,
        sequence,
        reason: error.to_string(),
    })
}
