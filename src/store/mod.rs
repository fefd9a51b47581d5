//! The durable event log on fjall: the ONLY module that imports fjall (and, through
//! `codec`, bincode).
//!
//! Writes go through one dedicated writer thread that gathers every append waiting
//! for it into one fjall write batch and one `fdatasync` (group commit). Each append
//! carries the monitor's state after its events, written in the same atomic batch, so
//! start-up reads one record per monitor instead of replaying the whole log. A caller
//! is answered only after the batch holding its events is durable.
//!
//! Reads (history, listings, replay) run on tokio's blocking pool.

pub mod api_keys;
mod background;
pub mod codec;
pub mod keys;
pub mod retention;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, mpsc};
use std::time::{Duration, Instant};

use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use tokio::sync::oneshot;

use crate::domain::alert::Delivery;
use crate::domain::channel::{Channel, ChannelEvent};
use crate::domain::event::{Event, Stamped};
use crate::domain::ids::{ChannelId, MonitorId, Timestamp};
use crate::domain::machine::{self, Monitor};
use crate::metrics as names;
use codec::StoredEvent;

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

/// The most appends gathered into one batch; beyond this the rest wait for the next.
const MAX_APPENDS_PER_BATCH: usize = 4096;

/// How often a store that failed a write tries to reopen itself.
const RECOVERY_INTERVAL: Duration = Duration::from_millis(500);

/// How long recovery waits for readers to let go of the failed database.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(10);

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

/// An event as read back from the log.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordedEvent {
    pub seq: u64,
    pub at: Timestamp,
    pub event: Event,
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
    /// fjall refuses every write after one failed (it "poisons" itself), so a failed
    /// write is healed by closing and reopening the database.
    handles: RwLock<Option<Arc<Handles>>>,
    /// False after a failed write until the store has been reopened and a write
    /// succeeded again.
    writable: AtomicBool,
    /// How many times the store has healed itself since it was opened.
    recoveries: AtomicU64,
    /// Monitors whose failed batch turned out durable after all when the store was
    /// reopened: their actors must be rebuilt from the store. Until they are
    /// (`release`), the writer refuses their appends, so nothing is written from a
    /// state that missed those events.
    diverged: std::sync::Mutex<Diverged>,
}

#[derive(Default)]
struct Diverged {
    /// Not yet handed to the application, each with the first sequence number of
    /// the batch that was reported failed.
    new: std::collections::HashMap<MonitorId, u64>,
    /// Refused until released.
    quarantined: std::collections::HashSet<MonitorId>,
}

impl Diverged {
    /// Quarantines `monitor` and schedules its rebuild; `first_seq` is where its
    /// undelivered outbox entries may start (`u64::MAX`: none can).
    fn add(&mut self, monitor: MonitorId, first_seq: u64) {
        self.quarantined.insert(monitor);
        self.new
            .entry(monitor)
            .and_modify(|seq| *seq = (*seq).min(first_seq))
            .or_insert(first_seq);
    }
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
}

impl Handles {
    fn open(path: &Path) -> Result<Self, StoreError> {
        let threads = background::fjall_threads();
        let db = Database::builder(path)
            .max_journaling_size(MAX_JOURNAL_BYTES)
            .worker_threads(threads)
            .open()?;
        background::lower_fjall_threads(threads);
        Ok(Self {
            events: db.keyspace(keys::EVENTS, hot_keyspace)?,
            monitors: db.keyspace(keys::MONITORS, hot_keyspace)?,
            meta: db.keyspace(keys::META, KeyspaceCreateOptions::default)?,
            outbox: db.keyspace(keys::OUTBOX, KeyspaceCreateOptions::default)?,
            channels: db.keyspace(keys::CHANNELS, KeyspaceCreateOptions::default)?,
            channel_events: db.keyspace(keys::CHANNEL_EVENTS, KeyspaceCreateOptions::default)?,
            api_keys: db.keyspace(api_keys::API_KEYS, KeyspaceCreateOptions::default)?,
            db,
        })
    }

    fn last_seq(&self) -> Result<u64, StoreError> {
        Ok(self
            .meta
            .get(keys::META_LAST_SEQ)?
            .and_then(|value| keys::decode_u64(&value))
            .unwrap_or(0))
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

    fn diverged(&self) -> std::sync::MutexGuard<'_, Diverged> {
        self.diverged
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn publish(&self, handles: Option<Arc<Handles>>) {
        *self
            .handles
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = handles;
    }
}

/// What was found in the store when it was opened.
pub struct Opened {
    pub store: EventStore,
    /// The joinable writer thread; [`EventStore::close`] ends it.
    pub writer_thread: std::thread::JoinHandle<()>,
}

/// What an append does to the monitor's stored snapshot.
pub enum Snapshot {
    /// Write this state (its `last_seq` is filled in by the writer).
    Write(Monitor),
    /// Leave the stored snapshot behind: a heartbeat that changes nothing but the
    /// `last_*` fields. Readers fold the events after the snapshot back in
    /// (`fold_tail`), so the snapshot plus its tail is the state.
    Keep,
    /// The monitor was deleted.
    Remove,
}

impl From<Option<Monitor>> for Snapshot {
    /// `None`: the monitor was deleted.
    fn from(state: Option<Monitor>) -> Self {
        state.map_or(Self::Remove, Self::Write)
    }
}

/// One monitor's events and everything that must be written atomically with them.
pub struct Append {
    pub monitor: MonitorId,
    pub events: Vec<Stamped>,
    pub state: Snapshot,
    /// Deliveries owed, each for the event at the given index of `events`; the writer
    /// fills in the alert's sequence number.
    pub owed: Vec<(usize, Delivery)>,
    /// An outbox entry settled by these events (a recorded delivery outcome).
    pub settled: Option<(u64, ChannelId)>,
}

impl Append {
    pub fn new(monitor: MonitorId, events: Vec<Stamped>, state: Snapshot) -> Self {
        Self {
            monitor,
            events,
            state,
            owed: Vec::new(),
            settled: None,
        }
    }
}

struct PendingAppend {
    append: Append,
    reply: AppendReply,
    /// When it was handed to the writer (`pushmon_store_append_duration_seconds`).
    enqueued: Instant,
}

/// Who hears how an append ended.
enum AppendReply {
    /// The actor, which applies the events once they are durable, with the sequence
    /// number of the last one.
    Applied(oneshot::Sender<Result<u64, StoreError>>),
    /// The pusher itself: a pipelined plain heartbeat, which its actor applied when it
    /// sent it. If it is not written, the actor's state is ahead of the log, so the
    /// writer quarantines the monitor and has it rebuilt from the store.
    Pipelined(oneshot::Sender<Result<(), StoreError>>),
}

impl AppendReply {
    fn send(self, result: Result<u64, StoreError>) {
        match self {
            Self::Applied(reply) => {
                let _ = reply.send(result);
            }
            Self::Pipelined(reply) => {
                let _ = reply.send(result.map(|_| ()));
            }
        }
    }
}

struct ChannelWrite {
    channel: ChannelId,
    at: Timestamp,
    event: ChannelEvent,
    reply: oneshot::Sender<Result<u64, StoreError>>,
}

enum WriteRequest {
    Append(Box<PendingAppend>),
    Channel(ChannelWrite),
    /// Drop an outbox entry nobody can record an outcome for (its monitor is gone).
    Settle((u64, ChannelId), oneshot::Sender<Result<u64, StoreError>>),
    /// Answered once everything sent before it has been written (or refused).
    Barrier(oneshot::Sender<Result<u64, StoreError>>),
    Alive(Timestamp),
    Close(oneshot::Sender<()>),
}

impl EventStore {
    /// Opens (or creates) the store in `dir` and starts its writer thread. Blocking.
    pub fn open(dir: &Path) -> Result<Opened, StoreError> {
        std::fs::create_dir_all(dir).map_err(|error| {
            StoreError::Unavailable(format!("cannot create {}: {error}", dir.display()))
        })?;
        let path = dir.join("fjall");
        let handles = Arc::new(Handles::open(&path)?);
        let last_seq = handles.last_seq()?;
        let identity = identity(&path)
            .ok_or_else(|| StoreError::Unavailable(format!("cannot read {}", path.display())))?;
        let shared = Arc::new(Shared {
            path,
            identity,
            handles: RwLock::new(Some(Arc::clone(&handles))),
            writable: AtomicBool::new(true),
            recoveries: AtomicU64::new(0),
            diverged: std::sync::Mutex::new(Diverged::default()),
        });
        let (sender, receiver) = mpsc::channel();
        let writer = Writer {
            shared: Arc::clone(&shared),
            handles: Some(handles),
            next_seq: last_seq + 1,
            failed: None,
            resync: std::collections::HashSet::new(),
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
    }

    /// [`append`](Self::append) with the outbox changes that go with the events.
    pub async fn append_with(&self, append: Append) -> Result<u64, StoreError> {
        let (reply, answer) = oneshot::channel();
        let request = WriteRequest::Append(Box::new(PendingAppend {
            append,
            reply: AppendReply::Applied(reply),
            enqueued: Instant::now(),
        }));
        self.send(request, answer).await
    }

    /// Queues a plain heartbeat that its actor has already applied; `reply` hears when
    /// it is durable. The actor goes on with its next message meanwhile: this is what
    /// lets one monitor's actor keep up with many pushers. If the append is not
    /// written, the monitor is quarantined and rebuilt from the store
    /// ([`take_diverged`](Self::take_diverged)), so its state never stays ahead of
    /// the log. Returns false (and has answered `reply`) if the writer is gone.
    pub fn append_pipelined(
        &self,
        append: Append,
        reply: oneshot::Sender<Result<(), StoreError>>,
    ) -> bool {
        let request = WriteRequest::Append(Box::new(PendingAppend {
            append,
            reply: AppendReply::Pipelined(reply),
            enqueued: Instant::now(),
        }));
        match self.writer.send(request) {
            Ok(()) => true,
            Err(mpsc::SendError(request)) => {
                if let WriteRequest::Append(append) = request {
                    append.reply.send(Err(StoreError::Closed));
                }
                false
            }
        }
    }

    /// Waits until every write sent before this call has been written or refused:
    /// a monitor rebuilt from the store after this misses none of its old actor's
    /// pipelined heartbeats.
    pub async fn barrier(&self) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        self.send(WriteRequest::Barrier(reply), answer)
            .await
            .map(|_| ())
    }

    /// Records a channel's creation or deletion (and its current state) durably.
    pub async fn write_channel(
        &self,
        channel: ChannelId,
        at: Timestamp,
        event: ChannelEvent,
    ) -> Result<u64, StoreError> {
        let (reply, answer) = oneshot::channel();
        let request = WriteRequest::Channel(ChannelWrite {
            channel,
            at,
            event,
            reply,
        });
        self.send(request, answer).await
    }

    /// Removes an outbox entry whose monitor no longer exists.
    pub async fn settle_orphan(
        &self,
        alert_seq: u64,
        channel: ChannelId,
    ) -> Result<u64, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.send(WriteRequest::Settle((alert_seq, channel), reply), answer)
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

    /// Every delivery still owed, oldest alert first. Blocking.
    pub fn load_outbox(&self) -> Result<Vec<Delivery>, StoreError> {
        load_all(&self.shared.handles()?.outbox, codec::decode_delivery)
    }

    /// Every channel. Blocking.
    pub fn load_channels(&self) -> Result<Vec<Channel>, StoreError> {
        load_all(&self.shared.handles()?.channels, codec::decode_channel)
    }

    /// Records that the server is alive at `at` (SPEC 3's restart grace relies on it).
    /// Fire and forget: it rides along with the next batch.
    pub fn mark_alive(&self, at: Timestamp) {
        let _ = self.writer.send(WriteRequest::Alive(at));
    }

    /// Whether the last write succeeded.
    pub fn is_writable(&self) -> bool {
        self.shared.writable.load(Ordering::Relaxed)
    }

    /// How many times the store has reopened itself after a failed write.
    pub fn recoveries(&self) -> u64 {
        self.shared.recoveries.load(Ordering::Acquire)
    }

    /// Monitors whose actors must be rebuilt from the store: a write reported as
    /// failed (so their actors did not apply it) was found durable on reopening.
    /// Their appends are refused until [`release`](Self::release).
    /// Each comes with the first sequence number of the batch reported failed: its
    /// outbox entries from there on were never handed to the dispatcher.
    pub fn take_diverged(&self) -> std::collections::HashMap<MonitorId, u64> {
        std::mem::take(&mut self.shared.diverged().new)
    }

    /// Accepts appends for `monitor` again, once its actor was rebuilt from the store,
    /// unless it has diverged again since and awaits another rebuild.
    pub fn release(&self, monitor: MonitorId) {
        let mut diverged = self.shared.diverged();
        if !diverged.new.contains_key(&monitor) {
            diverged.quarantined.remove(&monitor);
        }
    }

    /// When the server was last recorded alive, if ever. Blocking.
    pub fn last_alive(&self) -> Result<Option<Timestamp>, StoreError> {
        Ok(self
            .shared
            .handles()?
            .meta
            .get(keys::META_LAST_ALIVE)?
            .and_then(|value| keys::decode_i64(&value))
            .map(Timestamp::from_millis))
    }

    /// Every monitor's current state: its snapshot with the few heartbeats appended
    /// since folded in (see [`Snapshot::Keep`]): O(monitors). Blocking.
    pub fn load_monitors(&self) -> Result<Vec<Monitor>, StoreError> {
        let handles = self.shared.handles()?;
        let mut all = Vec::with_capacity(handles.monitors.approximate_len());
        for guard in handles.monitors.iter() {
            let (_, value) = guard.into_inner()?;
            let snapshot = codec::decode_monitor(&value)?;
            all.push(fold_tail(&handles.events, snapshot)?);
        }
        Ok(all)
    }

    /// One monitor's current state.
    pub async fn monitor(&self, id: MonitorId) -> Result<Option<Monitor>, StoreError> {
        let shared = Arc::clone(&self.shared);
        blocking(move || {
            let handles = shared.handles()?;
            match handles.monitors.get(keys::monitor_key(id))? {
                Some(value) => Ok(Some(fold_tail(
                    &handles.events,
                    codec::decode_monitor(&value)?,
                )?)),
                None => Ok(None),
            }
        })
        .await
    }

    /// Every monitor's current state, in id (creation) order.
    pub async fn monitors(&self) -> Result<Vec<Monitor>, StoreError> {
        let store = self.clone();
        blocking(move || store.load_monitors()).await
    }

    /// Up to `limit` visible events of `monitor` with a sequence number below `before`,
    /// newest first. Internal bookkeeping events are skipped.
    pub async fn history(
        &self,
        monitor: MonitorId,
        limit: usize,
        before: Option<u64>,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let shared = Arc::clone(&self.shared);
        blocking(move || {
            let start = keys::event_key(monitor, 0);
            let end = keys::event_key(monitor, before.unwrap_or(u64::MAX));
            let mut found = Vec::with_capacity(limit.min(1024));
            for guard in shared.handles()?.events.range(start..end).rev() {
                if found.len() >= limit {
                    break;
                }
                let (key, value) = guard.into_inner()?;
                let Some((_, seq)) = keys::parse_event_key(&key) else {
                    return Err(StoreError::Corrupt("malformed event key".to_owned()));
                };
                let stored = codec::decode_event(&value)?;
                if stored.event.kind().is_some() {
                    found.push(RecordedEvent {
                        seq,
                        at: stored.at,
                        event: stored.event,
                    });
                }
            }
            Ok(found)
        })
        .await
    }

    /// Rebuilds every monitor by folding its whole history, ignoring the snapshots.
    /// Start-up never needs this; it exists to check that snapshots and log agree.
    /// Blocking.
    pub fn replay_all(&self) -> Result<BTreeMap<MonitorId, Monitor>, StoreError> {
        self.replay_all_counted().map(|(rebuilt, _)| rebuilt)
    }

    /// [`replay_all`](Self::replay_all), and how many events it folded.
    pub fn replay_all_counted(&self) -> Result<(BTreeMap<MonitorId, Monitor>, usize), StoreError> {
        let mut count = 0usize;
        let mut rebuilt = BTreeMap::new();
        let mut current: Option<(MonitorId, Vec<(u64, StoredEvent)>)> = None;
        let mut finish = |id: MonitorId, history: Vec<(u64, StoredEvent)>| {
            let folded = machine::replay(
                id,
                history
                    .iter()
                    .map(|(seq, stored)| (*seq, stored.at, &stored.event)),
            );
            if let Some(monitor) = folded {
                rebuilt.insert(id, monitor);
            }
        };
        for guard in self.shared.handles()?.events.iter() {
            let (key, value) = guard.into_inner()?;
            let Some((id, seq)) = keys::parse_event_key(&key) else {
                return Err(StoreError::Corrupt("malformed event key".to_owned()));
            };
            let stored = codec::decode_event(&value)?;
            count += 1;
            match &mut current {
                Some((current_id, history)) if *current_id == id => history.push((seq, stored)),
                _ => {
                    if let Some((done_id, history)) = current.take() {
                        finish(done_id, history);
                    }
                    current = Some((id, vec![(seq, stored)]));
                }
            }
        }
        if let Some((done_id, history)) = current.take() {
            finish(done_id, history);
        }
        Ok((rebuilt, count))
    }

    /// Drains the writer, makes everything durable and stops the writer thread.
    pub async fn close(&self) {
        let (reply, done) = oneshot::channel();
        if self.writer.send(WriteRequest::Close(reply)).is_ok() {
            let _ = done.await;
        }
    }
}

/// Applies to `snapshot` the monitor's events newer than it: the heartbeats appended
/// without a snapshot. Blocking.
fn fold_tail(events: &Keyspace, mut snapshot: Monitor) -> Result<Monitor, StoreError> {
    let start = keys::event_key(snapshot.id, snapshot.last_seq.saturating_add(1));
    let end = keys::event_key(snapshot.id, u64::MAX);
    for guard in events.range(start..=end) {
        let (key, value) = guard.into_inner()?;
        let Some((_, seq)) = keys::parse_event_key(&key) else {
            return Err(StoreError::Corrupt("malformed event key".to_owned()));
        };
        let stored = codec::decode_event(&value)?;
        machine::apply(&mut snapshot, seq, stored.at, &stored.event);
    }
    Ok(snapshot)
}

/// Decodes every value of `keyspace`, in key order. Blocking.
fn load_all<T>(
    keyspace: &Keyspace,
    decode: impl Fn(&[u8]) -> Result<T, codec::CodecError>,
) -> Result<Vec<T>, StoreError> {
    let mut all = Vec::with_capacity(keyspace.approximate_len());
    for guard in keyspace.iter() {
        let (_, value) = guard.into_inner()?;
        all.push(decode(&value)?);
    }
    Ok(all)
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| StoreError::Unavailable(format!("read task failed: {error}")))?
}

/// A write waiting for the next batch.
enum Pending {
    Append(Box<PendingAppend>),
    Channel(ChannelWrite),
    Settle((u64, ChannelId), oneshot::Sender<Result<u64, StoreError>>),
    Barrier(oneshot::Sender<Result<u64, StoreError>>),
}

/// The single writer: owns sequence numbering, group commit and self-healing.
struct Writer {
    shared: Arc<Shared>,
    /// The database writes go to; `None` after a failed write until reopened.
    handles: Option<Arc<Handles>>,
    next_seq: u64,
    /// The first sequence number and the monitors of the batch that failed, until
    /// the store is reopened.
    failed: Option<(u64, Vec<MonitorId>)>,
    /// Monitors with a pipelined heartbeat that was not written while the store was
    /// broken: quarantined now, rebuilt once it is reopened.
    resync: std::collections::HashSet<MonitorId>,
}

impl Writer {
    fn run(mut self, requests: mpsc::Receiver<WriteRequest>) {
        let mut pending: Vec<Pending> = Vec::with_capacity(256);
        let mut next_attempt = Instant::now();
        loop {
            let Some(handles) = self.handles.clone() else {
                // Broken: refuse writes at once (nothing is acknowledged) and try to
                // reopen every RECOVERY_INTERVAL until the fault clears.
                let now = Instant::now();
                if now >= next_attempt {
                    self.recover();
                    next_attempt = Instant::now() + RECOVERY_INTERVAL;
                    continue;
                }
                match requests.recv_timeout(next_attempt - now) {
                    Ok(WriteRequest::Close(reply)) => {
                        let _ = reply.send(());
                        return;
                    }
                    Ok(request) => self.refuse(request),
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    Err(mpsc::RecvTimeoutError::Disconnected) => return,
                }
                continue;
            };
            // Blocks for the first request, then takes whatever else is already
            // waiting: everything that queued up during the previous fsync shares
            // the next one.
            let Ok(first) = requests.recv() else { return };
            let mut alive = None;
            let mut close = None;
            let mut next = Some(first);
            while let Some(request) = next.take() {
                match request {
                    WriteRequest::Append(append) => pending.push(Pending::Append(append)),
                    WriteRequest::Channel(write) => pending.push(Pending::Channel(write)),
                    WriteRequest::Settle(key, reply) => pending.push(Pending::Settle(key, reply)),
                    WriteRequest::Barrier(reply) => pending.push(Pending::Barrier(reply)),
                    WriteRequest::Alive(at) => alive = Some(at),
                    WriteRequest::Close(reply) => {
                        close = Some(reply);
                        break;
                    }
                }
                if pending.len() < MAX_APPENDS_PER_BATCH {
                    next = requests.try_recv().ok();
                }
            }
            self.commit(&handles, &mut pending, alive);
            if self.handles.is_none() {
                next_attempt = Instant::now() + RECOVERY_INTERVAL;
            }
            if let Some(reply) = close {
                // Drain what raced in behind the close request, then sync everything.
                while let Ok(WriteRequest::Append(append)) = requests.try_recv() {
                    pending.push(Pending::Append(append));
                }
                if self.handles.is_some() {
                    self.commit(&handles, &mut pending, None);
                    if let Err(error) = handles.db.persist(PersistMode::SyncAll) {
                        tracing::error!(%error, "final persist of the store failed");
                    }
                }
                for request in pending.drain(..) {
                    request.reply(Err(StoreError::Closed));
                }
                let _ = reply.send(());
                return;
            }
        }
    }

    fn commit(&mut self, handles: &Handles, pending: &mut Vec<Pending>, alive: Option<Timestamp>) {
        if pending.is_empty() && alive.is_none() {
            return;
        }
        let started = Instant::now();
        let first_seq = self.next_seq;
        let mut results: Vec<Result<u64, StoreError>> = Vec::with_capacity(pending.len());
        let mut batch = handles.db.batch().durability(Some(PersistMode::SyncData));
        let mut event_count = 0usize;
        let shared = Arc::clone(&self.shared);
        let mut diverged = shared.diverged();
        for request in pending.iter_mut() {
            let staged = match request {
                Pending::Append(append)
                    if !diverged.quarantined.is_empty()
                        && diverged.quarantined.contains(&append.append.monitor) =>
                {
                    if matches!(append.reply, AppendReply::Pipelined(_)) {
                        // Its actor applied it: rebuild that actor (again).
                        diverged.add(append.append.monitor, u64::MAX);
                    }
                    Err(StoreError::Unavailable(
                        "monitor is being rebuilt from the store".to_owned(),
                    ))
                }
                Pending::Append(append) => {
                    self.stage(handles, &mut batch, &mut append.append, &mut event_count)
                }
                Pending::Channel(write) => self.stage_channel(handles, &mut batch, write),
                Pending::Settle((alert_seq, channel), _) => {
                    batch.remove(&handles.outbox, keys::outbox_key(*alert_seq, *channel));
                    Ok(0)
                }
                Pending::Barrier(_) => Ok(0),
            };
            results.push(staged);
        }
        drop(diverged);
        if self.next_seq != first_seq {
            batch.insert(
                &handles.meta,
                keys::META_LAST_SEQ,
                (self.next_seq - 1).to_be_bytes(),
            );
        }
        if let Some(at) = alive {
            batch.insert(
                &handles.meta,
                keys::META_LAST_ALIVE,
                at.as_millis().to_be_bytes(),
            );
        }
        // A data directory deleted under the server would take acknowledged writes
        // into unlinked files: check it is still the one opened.
        let outcome = match self.shared.check_directory() {
            Ok(()) => batch.commit(),
            Err(vanished) => Err(vanished),
        };
        let hot = names::hot();
        hot.commit_duration.record(started.elapsed().as_secs_f64());
        hot.batch_events.record(event_count as f64);
        if let Err(error) = outcome {
            tracing::error!(%error, "event log commit failed; nothing in the batch is acknowledged; reopening the store");
            metrics::counter!(names::STORE_WRITE_FAILURES_TOTAL).increment(1);
            let monitors = pending
                .iter()
                .filter_map(|request| match request {
                    Pending::Append(append) => Some(append.append.monitor),
                    _ => None,
                })
                .collect();
            self.failed = Some((first_seq, monitors));
            for request in pending.iter() {
                if let Pending::Append(append) = request {
                    self.resync_later(append);
                }
            }
            self.break_down();
            let failure = StoreError::from(error);
            for result in &mut results {
                if result.is_ok() {
                    *result = Err(failure.clone());
                }
            }
        }
        for (request, result) in pending.drain(..).zip(results) {
            if let Pending::Append(append) = &request {
                hot.append_duration
                    .record(append.enqueued.elapsed().as_secs_f64());
            }
            request.reply(result);
        }
    }

    /// A pipelined heartbeat of `append`'s monitor will not be written: its actor is
    /// ahead of the log. Quarantined now; rebuilt once the store is reopened.
    fn resync_later(&mut self, append: &PendingAppend) {
        if matches!(append.reply, AppendReply::Pipelined(_)) {
            let monitor = append.append.monitor;
            self.resync.insert(monitor);
            self.shared.diverged().quarantined.insert(monitor);
        }
    }

    /// Answers a write that arrives while the store is broken: nothing is written.
    fn refuse(&mut self, request: WriteRequest) {
        let refused = || {
            Err(StoreError::Unavailable(
                "storage is recovering from a failed write".to_owned(),
            ))
        };
        match request {
            WriteRequest::Append(append) => {
                self.resync_later(&append);
                append.reply.send(refused());
            }
            WriteRequest::Channel(write) => {
                let _ = write.reply.send(refused());
            }
            WriteRequest::Settle(_, reply) | WriteRequest::Barrier(reply) => {
                let _ = reply.send(refused());
            }
            WriteRequest::Alive(_) | WriteRequest::Close(_) => {}
        }
    }

    /// Stops writing after a failed write: fjall refuses every later write, so the
    /// database is withdrawn from readers and reopened by [`recover`](Self::recover).
    fn break_down(&mut self) {
        self.shared.writable.store(false, Ordering::Relaxed);
        self.shared.publish(None);
        self.handles = None;
    }

    /// One attempt to reopen the store after a failed write. Succeeds only when a
    /// durable write goes through again.
    fn recover(&mut self) {
        // Wait for readers to let go of the failed database so its lock is released.
        let Some(failed) = self
            .shared
            .handles
            .write()
            .ok()
            .and_then(|mut slot| slot.take())
        else {
            return self.reopen();
        };
        let deadline = Instant::now() + RELEASE_TIMEOUT;
        let mut failed = failed;
        loop {
            match Arc::try_unwrap(failed) {
                Ok(handles) => {
                    drop(handles);
                    break;
                }
                Err(still_shared) if Instant::now() < deadline => {
                    failed = still_shared;
                    #[allow(clippy::disallowed_methods)] // The writer's own thread.
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(still_shared) => {
                    tracing::error!("readers still hold the failed store; retrying");
                    self.shared.publish(None);
                    drop(still_shared);
                    return;
                }
            }
        }
        self.reopen();
    }

    fn reopen(&mut self) {
        if let Err(error) = self.shared.check_directory() {
            // Never create a new, empty store in its place: the monitors live there.
            tracing::error!(%error, "the store's directory is gone; restore it or restart pushmon");
            return;
        }
        let attempt = Handles::open(&self.shared.path).and_then(|handles| {
            let last_seq = handles.last_seq()?;
            // A probe: the fault has cleared only once a durable write succeeds.
            let mut probe = handles.db.batch().durability(Some(PersistMode::SyncData));
            probe.insert(
                &handles.meta,
                keys::META_LAST_ALIVE,
                crate::clock::now().as_millis().to_be_bytes(),
            );
            probe.commit()?;
            Ok((handles, last_seq))
        });
        match attempt {
            Ok((handles, last_seq)) => {
                let mut diverged = self.shared.diverged();
                if let Some((first_failed, monitors)) = self.failed.take()
                    && last_seq >= first_failed
                {
                    // The write failed after its bytes reached the journal (an fsync
                    // error): the log holds events the actors never applied.
                    tracing::warn!(
                        monitors = monitors.len(),
                        "a failed batch was found durable; rebuilding its monitors from the store"
                    );
                    for monitor in monitors {
                        diverged.add(monitor, first_failed);
                    }
                }
                if !self.resync.is_empty() {
                    tracing::warn!(
                        monitors = self.resync.len(),
                        "rebuilding monitors whose heartbeats were refused from the store"
                    );
                }
                for monitor in self.resync.drain() {
                    diverged.add(monitor, u64::MAX);
                }
                drop(diverged);
                // Sequence numbers only grow, even past events a failed batch burned.
                self.next_seq = self.next_seq.max(last_seq + 1);
                let handles = Arc::new(handles);
                self.handles = Some(Arc::clone(&handles));
                self.shared.publish(Some(handles));
                self.shared.recoveries.fetch_add(1, Ordering::AcqRel);
                metrics::counter!(names::STORE_RECOVERIES_TOTAL).increment(1);
                self.shared.writable.store(true, Ordering::Relaxed);
                tracing::info!("store reopened after a failed write; accepting writes again");
            }
            Err(error) => {
                tracing::warn!(%error, "store still cannot write; retrying");
            }
        }
    }

    fn stage_channel(
        &mut self,
        handles: &Handles,
        batch: &mut fjall::OwnedWriteBatch,
        write: &ChannelWrite,
    ) -> Result<u64, StoreError> {
        let stored = codec::StoredChannelEvent {
            at: write.at,
            event: write.event.clone(),
        };
        let value = codec::encode_channel_event(&stored)?;
        let key = keys::channel_key(write.channel);
        match &write.event {
            ChannelEvent::Created(channel) | ChannelEvent::Updated(channel) => {
                batch.insert(&handles.channels, key, codec::encode_channel(channel)?);
            }
            ChannelEvent::Deleted => batch.remove(&handles.channels, key),
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        batch.insert(
            &handles.channel_events,
            keys::channel_event_key(write.channel, seq),
            value,
        );
        Ok(seq)
    }

    /// Puts one append's events, state and outbox changes into the batch, numbering
    /// the events.
    fn stage(
        &mut self,
        handles: &Handles,
        batch: &mut fjall::OwnedWriteBatch,
        append: &mut Append,
        event_count: &mut usize,
    ) -> Result<u64, StoreError> {
        let first_seq = self.next_seq;
        let mut owed = Vec::with_capacity(append.owed.len());
        for (index, delivery) in &mut append.owed {
            delivery.alert.alert_seq = first_seq + *index as u64;
            owed.push((
                keys::outbox_key(delivery.alert.alert_seq, delivery.channel),
                codec::encode_delivery(delivery)?,
            ));
        }
        // Encode everything first so a record that cannot be encoded leaves no trace.
        let mut encoded = Vec::with_capacity(append.events.len());
        for stamped in append.events.drain(..) {
            let stored = StoredEvent {
                at: stamped.at,
                event: stamped.event,
            };
            encoded.push(codec::encode_event(&stored)?);
        }
        let last_seq = self.next_seq + encoded.len() as u64 - 1;
        let state = match &mut append.state {
            Snapshot::Write(state) => {
                state.last_seq = last_seq;
                Some(codec::encode_monitor(state)?)
            }
            Snapshot::Keep | Snapshot::Remove => None,
        };
        for value in encoded {
            batch.insert(
                &handles.events,
                keys::event_key(append.monitor, self.next_seq),
                value,
            );
            self.next_seq += 1;
            *event_count += 1;
        }
        let key = keys::monitor_key(append.monitor);
        match state {
            Some(value) => batch.insert(&handles.monitors, key, value),
            None if matches!(append.state, Snapshot::Remove) => {
                batch.remove(&handles.monitors, key);
            }
            None => {}
        }
        for (key, value) in owed {
            batch.insert(&handles.outbox, key, value);
        }
        if let Some((alert_seq, channel)) = append.settled {
            batch.remove(&handles.outbox, keys::outbox_key(alert_seq, channel));
        }
        Ok(last_seq)
    }
}

impl Pending {
    fn reply(self, result: Result<u64, StoreError>) {
        let reply = match self {
            Pending::Append(append) => return append.reply.send(result),
            Pending::Channel(write) => write.reply,
            Pending::Settle(_, reply) | Pending::Barrier(reply) => reply,
        };
        let _ = reply.send(result);
    }
}

#[cfg(test)]
mod tests;
