//! The durable event log on fjall: the only module that imports fjall, and within
//! it `codec.rs` is the only file that imports bincode (`tests.rs` checks both).
//!
//! Writes go through one dedicated writer thread (`writer.rs`) that gathers every
//! request waiting for it (`append.rs`) into one fjall write batch and one
//! `fdatasync` (group commit). Each append carries the monitor's state after its
//! events, written in the same atomic batch, so start-up reads one record per monitor
//! instead of replaying the whole log. A caller is answered only after the batch
//! holding its events is durable.
//!
//! Reads (states, history, listings, replay: `read.rs`) run on tokio's blocking pool.
//! After a failed write the store reopens itself, and quarantines each monitor whose
//! actor's state may disagree with the log until that actor is rebuilt from the store
//! (`quarantine.rs`).
//!
//! Opening checks the store against its high-water mark, a file beside fjall's
//! directory that says how far writes were durable, so that a truncated or lost
//! journal stops start-up instead of silently losing data (`open.rs`, `mark.rs`).
//!
//! Here: the [`EventStore`] handle (open, the write API, close) and the database it
//! shares with its writer. Beside it: the key layout (`layout.rs`), the byte format
//! (`codec.rs`), API keys (`api_keys.rs`), badges and status pages (`publications.rs`),
//! the reads behind uptime, incidents and charts (`timeline.rs`), history retention (`retention.rs`), a
//! stream's part of the copy cut and imported for the clustered mode's shared snapshots (`share.rs`) and the
//! priority of background work (`background.rs`).

pub mod api_keys;
mod append;
mod background;
pub mod codec;
mod installation;
pub mod layout;
pub mod mark;
mod open;
mod ping_key;
pub mod publications;
mod quarantine;
mod read;
pub mod replay;
pub mod retention;
pub mod share;
pub mod timeline;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, mpsc};
use std::time::Instant;

use fjall::{Database, Keyspace, KeyspaceCreateOptions};
use tokio::sync::oneshot;

use crate::domain::channel::ChannelEvent;
use crate::domain::event::{DeliveryOutcome, Heartbeat, Stamped};
use crate::domain::ids::{ChannelId, MonitorId, Timestamp};
use crate::domain::machine::Monitor;

pub use append::{
    ApiKeyChange, Append, Appended, FoldPosition, HeartbeatSink, PublicationChange,
    RecordedHeartbeat, SnapshotWrite, StagedAppend,
};
use append::{
    AppendReply, ChannelWrite, PendingAppend, PendingHeartbeat, Settlement, WriteRequest,
};
pub use open::{DataLoss, OpenError, OpenOptions};
use quarantine::Quarantine;
pub use quarantine::{QuarantineReports, Quarantined};
pub use read::RecordedEvent;
use writer::Writer;

/// Journal kept before memtables are flushed. fjall replays the journal after a crash
/// before the store opens, so this bounds crash recovery time: 512 MiB (fjall's default)
/// took 6.9 s to recover here, after 10.8M heartbeats.
const MAX_JOURNAL_BYTES: u64 = 64 * 1024 * 1024;

/// Memtable size of the keyspaces every heartbeat writes to (`events`, `monitors`).
/// fjall's default is 64 MiB; a memtable that small stays in the CPU caches, so the
/// skiplist insert (the writer thread's largest cost in profiles) is cheaper, and it
/// holds less memory.
const HOT_MEMTABLE_BYTES: u64 = 8 * 1024 * 1024;

fn hot_keyspace() -> KeyspaceCreateOptions {
    KeyspaceCreateOptions::default().max_memtable_size(HOT_MEMTABLE_BYTES)
}

#[derive(Clone, Debug, thiserror::Error)]
pub enum StoreError {
    /// The disk refused a write or a read (I/O error, disk full, read-only).
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// The writer has shut down.
    #[error("store is closed")]
    Closed,
    /// A stored record could not be decoded.
    #[error("corrupt record: {0}")]
    Corrupt(String),
    /// A heartbeat for a monitor whose deletion the log already holds: not written.
    #[error("no such monitor")]
    Deleted,
}

impl From<fjall::Error> for StoreError {
    fn from(error: fjall::Error) -> Self {
        Self::Unavailable(error.to_string())
    }
}

impl From<codec::CodecError> for StoreError {
    fn from(error: codec::CodecError) -> Self {
        Self::Corrupt(error.to_string())
    }
}

/// A cheap, cloneable handle on the store.
#[derive(Clone)]
pub struct EventStore {
    shared: Arc<Shared>,
    writer: mpsc::Sender<WriteRequest>,
}

struct Shared {
    /// fjall's directory.
    path: PathBuf,
    /// Its (device, inode) when opened.
    identity: (u64, u64),
    /// The open database; `None` while the writer reopens it after a failed write.
    /// fjall refuses every write after one failed (it "poisons" itself), so after a
    /// failed write the database is closed and reopened.
    handles: RwLock<Option<Arc<Handles>>>,
    /// False after a failed write until the store has been reopened and a write
    /// succeeded again.
    writable: AtomicBool,
    /// How many times the store has reopened itself since it was opened.
    recoveries: AtomicU64,
    /// Monitors whose actors' state may disagree with the log: the writer refuses
    /// their appends until they are rebuilt from the store.
    quarantine: std::sync::Mutex<Quarantine>,
    /// Where the writer hands the heartbeats of each durable batch.
    sink: RwLock<Option<Arc<dyn HeartbeatSink>>>,
    /// Decisions voided since the store was opened (`pushmon_decisions_voided_total`).
    voided: AtomicU64,
}

/// The database and its keyspaces.
struct Handles {
    db: Database,
    events: Keyspace,
    monitors: Keyspace,
    meta: Keyspace,
    outbox: Keyspace,
    channels: Keyspace,
    channel_events: Keyspace,
    api_keys: Keyspace,
    api_key_events: Keyspace,
    publications: Keyspace,
    publication_events: Keyspace,
}

impl Handles {
    fn open(path: &Path) -> Result<Self, fjall::Error> {
        let threads = background::fjall_threads();
        let db = Database::builder(path)
            .max_journaling_size(MAX_JOURNAL_BYTES)
            .worker_threads(threads)
            .open()?;
        background::lower_fjall_threads(threads);
        Ok(Self {
            events: db.keyspace(layout::EVENTS, hot_keyspace)?,
            monitors: db.keyspace(layout::MONITORS, hot_keyspace)?,
            meta: db.keyspace(layout::META, KeyspaceCreateOptions::default)?,
            outbox: db.keyspace(layout::OUTBOX, KeyspaceCreateOptions::default)?,
            channels: db.keyspace(layout::CHANNELS, KeyspaceCreateOptions::default)?,
            channel_events: db.keyspace(layout::CHANNEL_EVENTS, KeyspaceCreateOptions::default)?,
            api_keys: db.keyspace(layout::API_KEYS, KeyspaceCreateOptions::default)?,
            api_key_events: db.keyspace(layout::API_KEY_EVENTS, KeyspaceCreateOptions::default)?,
            publications: db.keyspace(layout::PUBLICATIONS, KeyspaceCreateOptions::default)?,
            publication_events: db
                .keyspace(layout::PUBLICATION_EVENTS, KeyspaceCreateOptions::default)?,
            db,
        })
    }

    fn keyspace(&self, keyspace: mark::Ks) -> &Keyspace {
        use mark::Ks;
        match keyspace {
            Ks::Meta => &self.meta,
            Ks::Events => &self.events,
            Ks::Monitors => &self.monitors,
            Ks::Outbox => &self.outbox,
            Ks::Channels => &self.channels,
            Ks::ChannelEvents => &self.channel_events,
            Ks::ApiKeys => &self.api_keys,
            Ks::ApiKeyEvents => &self.api_key_events,
            Ks::Publications => &self.publications,
            Ks::PublicationEvents => &self.publication_events,
        }
    }

    fn last_seq(&self) -> Result<u64, StoreError> {
        Ok(self
            .meta
            .get(layout::META_LAST_SEQ)?
            .and_then(|value| layout::decode_u64(&value))
            .unwrap_or(0))
    }

    /// The channels that exist, with which alerts each is told about.
    fn channel_ids(
        &self,
    ) -> Result<std::collections::HashMap<ChannelId, crate::domain::channel::SendOn>, StoreError>
    {
        let mut ids = std::collections::HashMap::new();
        for guard in self.channels.range(layout::FIRST_RECORD..) {
            let (key, value) = guard.into_inner()?;
            let id: [u8; 16] = key
                .as_ref()
                .try_into()
                .map_err(|_| StoreError::Corrupt("malformed channel key".to_owned()))?;
            let channel = codec::decode_channel(&value)?;
            ids.insert(ChannelId::from_bytes(id), channel.send_on);
        }
        Ok(ids)
    }

    /// Each keyspace's marker: the last batch that wrote to it, as recovered.
    fn markers(&self) -> Result<mark::Seqs, StoreError> {
        let mut seqs = mark::Seqs::default();
        for keyspace in mark::Ks::ALL {
            let seq = match keyspace {
                mark::Ks::Meta => self.last_seq()?,
                other => self
                    .keyspace(other)
                    .get(layout::MARKER)?
                    .and_then(|value| layout::decode_u64(&value))
                    .unwrap_or(0),
            };
            seqs.set(keyspace, seq);
        }
        Ok(seqs)
    }
}

/// Which file a path is (device, inode), to notice a directory replaced or deleted.
fn identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata(path)
        .ok()
        .map(|metadata| (metadata.dev(), metadata.ino()))
}

impl Shared {
    /// Fails if the store's directory was deleted or replaced since it was opened.
    fn check_directory(&self) -> Result<(), fjall::Error> {
        if identity(&self.path) == Some(self.identity) {
            Ok(())
        } else {
            Err(fjall::Error::Io(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{} was deleted or replaced", self.path.display()),
            )))
        }
    }

    /// The open database, or `Unavailable` while it is being reopened.
    fn handles(&self) -> Result<Arc<Handles>, StoreError> {
        self.handles
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
            .ok_or_else(|| {
                StoreError::Unavailable("storage is recovering from a failed write".to_owned())
            })
    }

    fn publish(&self, handles: Option<Arc<Handles>>) {
        *self
            .handles
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = handles;
    }
}

/// An opened store: the handle, its writer thread, and the writer's reports.
pub struct Opened {
    pub store: EventStore,
    /// The joinable writer thread; [`EventStore::close`] ends it.
    pub writer_thread: std::thread::JoinHandle<()>,
    /// Each monitor the writer quarantines, to be rebuilt from the store.
    pub quarantined: QuarantineReports,
    /// Acknowledged writes missing from the store; found only when inspecting (a
    /// server refuses to start instead, unless told to accept the loss).
    pub loss: Option<DataLoss>,
}

impl EventStore {
    /// Opens (or creates) the store in `dir` to serve from it, and starts its writer
    /// thread. Blocking.
    pub fn open(dir: &Path) -> Result<Opened, OpenError> {
        Self::open_with(dir, OpenOptions::default())
    }

    /// [`open`](Self::open) as `options` say. Blocking.
    pub fn open_with(dir: &Path, options: OpenOptions) -> Result<Opened, OpenError> {
        let checked = open::open_checked(dir, options)?;
        let path = dir.join("fjall");
        let handles = Arc::new(checked.handles);
        let identity = identity(&path)
            .ok_or_else(|| StoreError::Unavailable(format!("cannot read {}", path.display())))?;
        let keeper = if options.inspect {
            None
        } else {
            Some(mark::Keeper::start(dir.to_owned()).map_err(|error| {
                StoreError::Unavailable(format!("cannot start the mark's thread: {error}"))
            })?)
        };
        let (quarantine, quarantined) = Quarantine::new();
        let shared = Arc::new(Shared {
            path,
            identity,
            handles: RwLock::new(Some(Arc::clone(&handles))),
            writable: AtomicBool::new(true),
            recoveries: AtomicU64::new(0),
            quarantine: std::sync::Mutex::new(quarantine),
            sink: RwLock::new(None),
            voided: AtomicU64::new(0),
        });
        let (sender, receiver) = mpsc::channel();
        let channels = handles.channel_ids()?;
        let writer = Writer {
            channels,
            shared: Arc::clone(&shared),
            handles: Some(handles),
            next_seq: checked.recovered.max() + 1,
            durable: checked.recovered,
            keeper,
            data_dir: dir.to_owned(),
            failed: None,
            alive: None,
            last_heartbeat: std::collections::HashMap::new(),
            deleted: std::collections::HashSet::new(),
        };
        let writer_thread = std::thread::Builder::new()
            .name("pushmon-writer".to_owned())
            .spawn(move || writer.run(receiver))
            .map_err(|error| StoreError::Unavailable(format!("cannot start writer: {error}")))?;
        Ok(Opened {
            store: Self {
                shared,
                writer: sender,
            },
            writer_thread,
            quarantined,
            loss: checked.loss,
        })
    }

    /// Appends `events` of one monitor, with its state after them (`None`: deleted), and
    /// waits until they are durable. Returns the sequence number of the last event.
    pub async fn append(
        &self,
        monitor: MonitorId,
        events: Vec<Stamped>,
        state: Option<Monitor>,
    ) -> Result<u64, StoreError> {
        self.append_with(Append::new(monitor, events, state.into()))
            .await
            .map(|appended| appended.last_seq)
    }

    /// [`append`](Self::append) with the outbox changes that go with the events; the
    /// answer says which deliveries were written (those to channels that exist and
    /// want the alert when it is numbered).
    pub async fn append_with(&self, append: Append) -> Result<Appended, StoreError> {
        let (reply, answer) = oneshot::channel();
        let request = WriteRequest::Append(Box::new(PendingAppend::new(
            append,
            AppendReply::Applied(reply),
        )));
        self.writer.send(request).map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Writes the monitor's snapshot alone ([`Append::snapshot`]), without waiting:
    /// nothing depends on it but how long a read's tail is.
    pub fn write_snapshot(&self, state: Monitor) {
        let (reply, _ignored) = oneshot::channel();
        let request = WriteRequest::Append(Box::new(PendingAppend::new(
            Append::snapshot(state),
            AppendReply::Applied(reply),
        )));
        let _ = self.writer.send(request);
    }

    /// Appends a plain heartbeat of `monitor` received at `at` (a `HeartbeatReceived`
    /// event) and waits until it is durable; answers its sequence number. Its actor
    /// hears of it after the batch is durable ([`HeartbeatSink`]) and decides what it
    /// causes then. `StoreError::Deleted` if the log holds the monitor's deletion.
    pub async fn append_heartbeat(
        &self,
        monitor: MonitorId,
        at: Timestamp,
        heartbeat: Heartbeat,
    ) -> Result<u64, StoreError> {
        let (reply, answer) = oneshot::channel();
        let pending = PendingHeartbeat {
            monitor,
            at,
            heartbeat,
            reply,
            enqueued: Instant::now(),
            folded: false,
        };
        self.writer
            .send(WriteRequest::Heartbeats(vec![pending]))
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// [`append_heartbeat`](Self::append_heartbeat) for many heartbeats (a bulk
    /// push's), handed to the writer as one request (one batch, one `fdatasync`);
    /// answers each in order.
    pub async fn append_heartbeats(
        &self,
        heartbeats: Vec<(MonitorId, Timestamp, Heartbeat)>,
    ) -> Vec<Result<u64, StoreError>> {
        self.write_heartbeats(heartbeats, None).await.0
    }

    /// Writes heartbeats folded from a stream of the shard logs (clustered mode) with
    /// the stream's position `folded_to`, in one batch written without an fsync: the
    /// heartbeats' outcomes in order, and the position's.
    pub async fn append_folded(
        &self,
        heartbeats: Vec<(MonitorId, Timestamp, Heartbeat)>,
        folded_to: FoldPosition,
    ) -> (Vec<Result<u64, StoreError>>, Result<(), StoreError>) {
        self.write_heartbeats(heartbeats, Some(folded_to)).await
    }

    /// Plain heartbeats in one batch, never split: from the ingress (`folded_to`
    /// `None`), or folded from a stream with its position. Answers each in order, and
    /// the position (`Ok` without one).
    async fn write_heartbeats(
        &self,
        heartbeats: Vec<(MonitorId, Timestamp, Heartbeat)>,
        folded_to: Option<FoldPosition>,
    ) -> (Vec<Result<u64, StoreError>>, Result<(), StoreError>) {
        let mut answers = Vec::with_capacity(heartbeats.len());
        let enqueued = Instant::now();
        let pending = heartbeats
            .into_iter()
            .map(|(monitor, at, heartbeat)| {
                let (reply, answer) = oneshot::channel();
                answers.push(answer);
                PendingHeartbeat {
                    monitor,
                    at,
                    heartbeat,
                    reply,
                    enqueued,
                    folded: folded_to.is_some(),
                }
            })
            .collect();
        let (request, position) = match folded_to {
            Some(folded_to) => {
                let (reply, position) = oneshot::channel();
                (
                    WriteRequest::Folded(pending, folded_to, reply),
                    Some(position),
                )
            }
            None => (WriteRequest::Heartbeats(pending), None),
        };
        if self.writer.send(request).is_err() {
            return (
                answers.iter().map(|_| Err(StoreError::Closed)).collect(),
                Err(StoreError::Closed),
            );
        }
        let mut outcomes = Vec::with_capacity(answers.len());
        for answer in answers {
            outcomes.push(answer.await.map_err(|_| StoreError::Closed).and_then(|x| x));
        }
        let position = match position {
            Some(position) => position
                .await
                .map_err(|_| StoreError::Closed)
                .and_then(|written| written.map(|_| ())),
            None => Ok(()),
        };
        (outcomes, position)
    }

    /// The clustered mode's fold positions: per stream, the last sequence folded into
    /// this store (absent: none). Blocking.
    pub fn cluster_positions(&self) -> Result<std::collections::BTreeMap<u16, u64>, StoreError> {
        let handles = self.shared.handles()?;
        let mut positions = std::collections::BTreeMap::new();
        for guard in handles.meta.prefix(layout::META_CLUSTER_POSITION) {
            let (key, value) = guard.into_inner()?;
            if let (Some(stream), Some(sequence)) = (
                layout::parse_cluster_position_key(&key),
                layout::decode_u64(&value),
            ) {
                positions.insert(stream, sequence);
            }
        }
        Ok(positions)
    }

    /// Writes a snapshot of a stream's fold (`codec::encode_fold_snapshot`'s bytes)
    /// with the stream's position `folded_to` it is valid at, in one batch, without
    /// an fsync (the stream is the log of record).
    pub async fn write_fold_snapshot(
        &self,
        folded_to: FoldPosition,
        snapshot: Vec<u8>,
    ) -> Result<(), StoreError> {
        let (reply, written) = oneshot::channel();
        self.writer
            .send(WriteRequest::FoldSnapshot(folded_to, snapshot, reply))
            .map_err(|_| StoreError::Closed)?;
        written
            .await
            .map_err(|_| StoreError::Closed)
            .and_then(|written| written.map(|_| ()))
    }

    /// The clustered mode's fold snapshots: per stream, the stored bytes of the last
    /// one written (`codec::decode_fold_snapshot`). Blocking.
    pub fn cluster_snapshots(
        &self,
    ) -> Result<std::collections::BTreeMap<u16, Vec<u8>>, StoreError> {
        let handles = self.shared.handles()?;
        let mut snapshots = std::collections::BTreeMap::new();
        for guard in handles.meta.prefix(layout::META_CLUSTER_SNAPSHOT) {
            let (key, value) = guard.into_inner()?;
            if let Some(stream) = layout::parse_cluster_snapshot_key(&key) {
                snapshots.insert(stream, value.to_vec());
            }
        }
        Ok(snapshots)
    }

    /// Where the writer hands the heartbeats of each durable batch now.
    #[cfg(test)]
    pub(crate) fn heartbeat_sink(&self) -> Option<Arc<dyn HeartbeatSink>> {
        self.shared
            .sink
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Where the writer hands the heartbeats of each durable batch from now on.
    pub fn set_heartbeat_sink(&self, sink: Arc<dyn HeartbeatSink>) {
        *self
            .shared
            .sink
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(sink);
    }

    /// Writes several monitors' appends in one write batch (one commit, one
    /// `fdatasync`): all of them durable, or none. Answers each in order.
    pub async fn append_all(
        &self,
        appends: Vec<Append>,
    ) -> Result<Vec<Result<Appended, StoreError>>, StoreError> {
        let mut answers = Vec::with_capacity(appends.len());
        let pending = appends
            .into_iter()
            .map(|append| {
                let (reply, answer) = oneshot::channel();
                answers.push(answer);
                PendingAppend::new(append, AppendReply::Applied(reply))
            })
            .collect();
        self.writer
            .send(WriteRequest::Appends(pending))
            .map_err(|_| StoreError::Closed)?;
        let mut outcomes = Vec::with_capacity(answers.len());
        for answer in answers {
            outcomes.push(answer.await.map_err(|_| StoreError::Closed).and_then(|x| x));
        }
        Ok(outcomes)
    }

    /// Writes several monitors' appends in one write batch (one commit, one
    /// `fdatasync`), each answered on its own as a single append would be: bulk
    /// ingestion's one group commit. Returns false (and has answered every append) if
    /// the writer is gone.
    pub fn append_group(&self, appends: Vec<StagedAppend>) -> bool {
        if appends.is_empty() {
            return true;
        }
        let pending = appends.into_iter().map(|staged| staged.pending).collect();
        match self.writer.send(WriteRequest::Group(pending)) {
            Ok(()) => true,
            Err(mpsc::SendError(request)) => {
                if let WriteRequest::Group(appends) = request {
                    for append in appends {
                        append
                            .reply
                            .send(Err(StoreError::Closed), Vec::new(), false);
                    }
                }
                false
            }
        }
    }

    /// Records a channel's creation or deletion (and its current state) durably.
    pub async fn write_channel(
        &self,
        channel: ChannelId,
        at: Timestamp,
        event: ChannelEvent,
    ) -> Result<u64, StoreError> {
        self.write_folded_channel(channel, at, event, None).await
    }

    /// [`write_channel`](Self::write_channel) of a change folded from a shard log,
    /// with its stream's position in the same batch (`None`: not folded).
    pub async fn write_folded_channel(
        &self,
        channel: ChannelId,
        at: Timestamp,
        event: ChannelEvent,
        position: Option<FoldPosition>,
    ) -> Result<u64, StoreError> {
        let (reply, answer) = oneshot::channel();
        let request = WriteRequest::Channel(ChannelWrite {
            channel,
            at,
            event,
            position,
            reply,
        });
        self.send(request, answer).await
    }

    /// Records the `outcome` of a delivery whose monitor no longer exists (a
    /// `DeliveryRecorded` event in the deleted monitor's log, at `at`) and removes its
    /// outbox entry, in one batch: the outbox stays replayable from the log.
    pub async fn settle_orphan(
        &self,
        monitor: MonitorId,
        outcome: DeliveryOutcome,
        at: Timestamp,
    ) -> Result<u64, StoreError> {
        self.settle_folded_orphan(monitor, outcome, at, None).await
    }

    /// [`settle_orphan`](Self::settle_orphan) of an outcome folded from a shard log,
    /// with its stream's position in the same batch (`None`: not folded).
    pub async fn settle_folded_orphan(
        &self,
        monitor: MonitorId,
        outcome: DeliveryOutcome,
        at: Timestamp,
        position: Option<FoldPosition>,
    ) -> Result<u64, StoreError> {
        let (reply, answer) = oneshot::channel();
        let settlement = Settlement {
            monitor,
            outcome,
            at,
            position,
        };
        self.send(WriteRequest::Settle(settlement, reply), answer)
            .await
    }

    async fn send(
        &self,
        request: WriteRequest,
        answer: oneshot::Receiver<Result<u64, StoreError>>,
    ) -> Result<u64, StoreError> {
        self.writer.send(request).map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Records that the server is alive at `at` (the restart grace relies on it).
    /// Fire and forget: it rides along with the next batch.
    pub fn mark_alive(&self, at: Timestamp) {
        let _ = self.writer.send(WriteRequest::Alive(at));
    }

    /// Whether the last write succeeded.
    pub fn is_writable(&self) -> bool {
        self.shared.writable.load(Ordering::Relaxed)
    }

    /// How many decisions the writer voided since the store was opened: verdicts a
    /// heartbeat overtook (`Append::voidable`).
    pub fn decisions_voided(&self) -> u64 {
        self.shared.voided.load(Ordering::Relaxed)
    }

    /// How many times the store has reopened itself after a failed write.
    pub fn recoveries(&self) -> u64 {
        self.shared.recoveries.load(Ordering::Acquire)
    }

    /// Drains the writer, makes everything durable and stops the writer thread.
    pub async fn close(&self) {
        let (reply, done) = oneshot::channel();
        if self.writer.send(WriteRequest::Close(reply)).is_ok() {
            let _ = done.await;
        }
    }
}

#[cfg(test)]
mod tests;
