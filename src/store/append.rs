//! What callers hand the writer thread: one monitor's append (its events, what
//! becomes of its stored snapshot, the outbox entries that go with them), channel
//! writes, and the other requests on the writer's queue, each with whoever hears how
//! it ended.

use std::time::Instant;

use tokio::sync::oneshot;

use crate::domain::alert::Delivery;
use crate::domain::api_key::{ApiKey, ApiKeyId};
use crate::domain::channel::ChannelEvent;
use crate::domain::event::{DeliveryOutcome, Heartbeat, Stamped};
use crate::domain::ids::{ChannelId, MonitorId, Timestamp};
use crate::domain::machine::Monitor;
use crate::domain::ping_key::PingKey;
use crate::domain::publication::Publication;

use super::StoreError;

/// What an append does to the monitor's stored snapshot.
pub enum SnapshotWrite {
    /// Write this state (its `last_seq` is filled in by the writer). Boxed: a state is
    /// large, and most appends of plain heartbeats keep the snapshot.
    Write(Box<Monitor>),
    /// Leave the stored snapshot behind: a heartbeat that changes nothing but the
    /// `last_*` fields. Readers fold the events after the snapshot back in
    /// (`fold_tail`), so the snapshot plus its tail is the state.
    Keep,
    /// The monitor was deleted.
    Remove,
}

impl From<Option<Monitor>> for SnapshotWrite {
    /// `None`: the monitor was deleted.
    fn from(state: Option<Monitor>) -> Self {
        state.map_or(Self::Remove, |state| Self::Write(Box::new(state)))
    }
}

/// How far the clustered mode's fold has applied one stream of the shard logs: every
/// record of `stream` up to `sequence`. A write of a folded record carries it, and
/// the writer stores it in the same batch as the record's events
/// (`meta/cluster_position/<stream>`), so that after a crash the record and its
/// position are both in the store or neither is: a restarted fold applies only what
/// follows the position, each record once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FoldPosition {
    pub stream: u16,
    pub sequence: u64,
}

/// One monitor's events and everything that must be written atomically with them.
pub struct Append {
    pub monitor: MonitorId,
    pub events: Vec<Stamped>,
    pub state: SnapshotWrite,
    /// Deliveries owed, each for the event at the given index of `events`; the writer
    /// keeps those whose channel exists and wants the alert (`send_on`), fills in the
    /// alert's sequence number, and answers with what it kept ([`Appended`]).
    pub owed: Vec<(usize, Delivery)>,
    /// An outbox entry settled by these events (a recorded delivery outcome).
    pub settled: Option<(u64, ChannelId)>,
    /// The sequence number of the last event the actor had applied when it decided
    /// this (`None`: not an actor's decision). A heartbeat the writer wrote after it
    /// overtook the decision: the snapshot is then not written (the actor's state
    /// misses that heartbeat; readers fold the log after the stored snapshot), and a
    /// voidable decision is not written at all. An append without events writes only
    /// the snapshot, as of `basis` ([`Append::snapshot`]).
    pub basis: Option<u64>,
    /// A deadline verdict, which a heartbeat written after its basis voids
    /// ([`Appended::voided`]).
    pub voidable: bool,
    /// The state the events were decided on, when they owe deliveries: if heartbeats
    /// were written after the basis, the writer makes the alerts from this state with
    /// those heartbeats folded in, as a replay of the log makes them (their `msg`,
    /// `value`, missing instances).
    pub before: Option<Box<Monitor>>,
    /// A record folded from a shard log (clustered mode): its stream's position,
    /// written in the same batch ([`FoldPosition`]).
    pub position: Option<FoldPosition>,
}

impl Append {
    pub fn new(monitor: MonitorId, events: Vec<Stamped>, state: SnapshotWrite) -> Self {
        Self {
            monitor,
            events,
            state,
            owed: Vec::new(),
            settled: None,
            basis: None,
            voidable: false,
            before: None,
            position: None,
        }
    }

    /// Only the monitor's snapshot, `state` as of its `last_seq` (every event of the
    /// monitor up to it folded in, none after): written off the acknowledgement path
    /// so that readers fold only a short tail.
    pub fn snapshot(state: Monitor) -> Self {
        let basis = Some(state.last_seq);
        let mut append = Self::new(state.id, Vec::new(), SnapshotWrite::Write(Box::new(state)));
        append.basis = basis;
        append
    }
}

/// A plain heartbeat appended by the ingress: its monitor, when it arrived, and who
/// hears its sequence number once it is durable.
pub(super) struct PendingHeartbeat {
    pub(super) monitor: MonitorId,
    pub(super) at: Timestamp,
    pub(super) heartbeat: Heartbeat,
    pub(super) reply: oneshot::Sender<Result<u64, StoreError>>,
    pub(super) enqueued: Instant,
    /// Folded from a shard log (clustered mode): the log of record is NATS, so a
    /// batch of only these is not fsynced ([`WriteRequest::Folded`]).
    pub(super) folded: bool,
}

/// A plain heartbeat the writer made durable, handed to its monitor's actor after
/// the batch is durable ([`HeartbeatSink`]), in the log's order.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordedHeartbeat {
    pub monitor: MonitorId,
    pub seq: u64,
    pub at: Timestamp,
    pub heartbeat: Heartbeat,
}

/// Where the writer hands the heartbeats of each durable batch, in the log's order,
/// before it answers anyone in the batch (the monitors' actors, through the
/// Directory). Runs on the writer's thread: it must not block.
pub trait HeartbeatSink: Send + Sync {
    fn recorded(&self, heartbeats: Vec<RecordedHeartbeat>);
}

pub(super) struct PendingAppend {
    pub(super) append: Append,
    pub(super) reply: AppendReply,
    /// When it was handed to the writer (`pushmon_store_append_duration_seconds`).
    pub(super) enqueued: Instant,
    /// Set by the writer: a voidable decision overtaken by a heartbeat.
    pub(super) voided: bool,
}

impl PendingAppend {
    pub(super) fn new(append: Append, reply: AppendReply) -> Self {
        Self {
            append,
            reply,
            enqueued: Instant::now(),
            voided: false,
        }
    }
}

/// A durable append: its last event's sequence number, and the deliveries written
/// to the outbox with it, numbered (what the actor hands the dispatcher).
#[derive(Debug)]
pub struct Appended {
    pub last_seq: u64,
    pub owed: Vec<(usize, Delivery)>,
    /// A voidable decision that a heartbeat overtook: nothing was written, and
    /// `last_seq` is that heartbeat's sequence number (already on its way to the
    /// actor).
    pub voided: bool,
}

/// Who hears how an append ended.
pub(super) enum AppendReply {
    /// The actor, which applies the events once they are durable, with the sequence
    /// number of the last one.
    Applied(oneshot::Sender<Result<Appended, StoreError>>),
}

impl AppendReply {
    /// `owed`: the deliveries the writer kept (none if nothing was written).
    /// `voided`: a decision overtaken by a heartbeat, not written.
    pub(super) fn send(
        self,
        result: Result<u64, StoreError>,
        owed: Vec<(usize, Delivery)>,
        voided: bool,
    ) {
        match self {
            Self::Applied(reply) => {
                let _ = reply.send(result.map(|last_seq| Appended {
                    last_seq,
                    owed,
                    voided,
                }));
            }
        }
    }
}

pub(super) struct ChannelWrite {
    pub(super) channel: ChannelId,
    pub(super) at: Timestamp,
    pub(super) event: ChannelEvent,
    /// Folded from a shard log: its stream's position, in the same batch.
    pub(super) position: Option<FoldPosition>,
    pub(super) reply: oneshot::Sender<Result<u64, StoreError>>,
}

/// A change to the API keys, as the writer stores it (`api_keys.rs`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApiKeyChange {
    Created(ApiKey),
    Revoked(ApiKeyId),
}

/// A change to the badges and status pages, as the writer stores it
/// (`publications.rs`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PublicationChange {
    /// Created or changed: the whole record.
    Put(Publication),
    /// Removed: the record's id.
    Removed([u8; 16]),
}

/// The outcome of a delivery whose monitor was deleted: recorded in the deleted
/// monitor's log, its outbox entry removed in the same batch.
pub(super) struct Settlement {
    pub(super) monitor: MonitorId,
    pub(super) outcome: DeliveryOutcome,
    pub(super) at: Timestamp,
    /// Folded from a shard log: its stream's position, in the same batch.
    pub(super) position: Option<FoldPosition>,
}

/// One monitor's part of a group write ([`EventStore::append_group`]): its append,
/// and who hears how it ended, as for a single append.
///
/// [`EventStore::append_group`]: super::EventStore::append_group
pub struct StagedAppend {
    pub(super) pending: PendingAppend,
}

impl StagedAppend {
    /// An append its actor applies only once it is durable, as
    /// `EventStore::append_with` takes it; the receiver hears the outcome.
    pub fn applied(append: Append) -> (Self, oneshot::Receiver<Result<Appended, StoreError>>) {
        let (reply, answer) = oneshot::channel();
        (Self::new(append, AppendReply::Applied(reply)), answer)
    }

    fn new(append: Append, reply: AppendReply) -> Self {
        Self {
            pending: PendingAppend::new(append, reply),
        }
    }
}

/// A stream's cut to write (`share.rs`): its records, the stream's position and fold
/// snapshot.
pub(super) struct Import {
    pub(super) keyspaces: Vec<super::codec::KeyspaceRecords>,
    pub(super) position: FoldPosition,
    pub(super) fold_snapshot: Vec<u8>,
}

pub(super) enum WriteRequest {
    Append(Box<PendingAppend>),
    /// Plain heartbeats from the ingress (one push, or a bulk push's items), in one
    /// batch.
    Heartbeats(Vec<PendingHeartbeat>),
    /// Heartbeats folded from a stream of the shard logs (clustered mode) and how far
    /// that stream is folded with them, in one batch: the local copy and its
    /// position stay consistent. A batch of only these is written without an fsync
    /// (the stream is the log of record; a crash refolds what the disk lost from the
    /// position that survived). Answered per heartbeat, and for the position by the
    /// last reply.
    Folded(
        Vec<PendingHeartbeat>,
        FoldPosition,
        oneshot::Sender<Result<u64, StoreError>>,
    ),
    /// A snapshot of a stream's fold (clustered mode, `codec::StoredFoldSnapshot`)
    /// and the stream's position it is valid at, in one batch: a snapshot is never
    /// in the store without its position, so a restart never skips a record the
    /// snapshot counts as applied. Written without an fsync, as a folded batch.
    FoldSnapshot(
        FoldPosition,
        Vec<u8>,
        oneshot::Sender<Result<u64, StoreError>>,
    ),
    /// A stream's cut from another pod (clustered mode, `share.rs`) with the
    /// stream's position and fold snapshot, in one durable batch.
    Import(Box<Import>, oneshot::Sender<Result<u64, StoreError>>),
    /// Several monitors' appends written in one batch, all or none (a bulk change).
    Appends(Vec<PendingAppend>),
    /// Several monitors' appends written in one batch, each answered on its own: a
    /// monitor being rebuilt has its append refused, the others are written (bulk
    /// ingestion).
    Group(Vec<PendingAppend>),
    Channel(ChannelWrite),
    /// Settle an outbox entry whose monitor is gone.
    Settle(Settlement, oneshot::Sender<Result<u64, StoreError>>),
    /// An API key created or revoked: its record and its event (folded from the
    /// cluster-wide shard: with its stream's position).
    ApiKey(
        ApiKeyChange,
        Option<FoldPosition>,
        oneshot::Sender<Result<u64, StoreError>>,
    ),
    /// A badge or status page put or removed: its record and its event (folded: with
    /// its stream's position).
    Publication(
        PublicationChange,
        Option<FoldPosition>,
        oneshot::Sender<Result<u64, StoreError>>,
    ),
    /// A new ping key: its record and its log entry (`ping_key.rs`).
    PingKey(PingKey, oneshot::Sender<Result<u64, StoreError>>),
    /// The barrier before a monitor's actor is rebuilt from the store: answered once
    /// everything sent before it has been written (or refused).
    StartRebuild(MonitorId, oneshot::Sender<Result<u64, StoreError>>),
    Alive(Timestamp),
    Close(oneshot::Sender<()>),
}
