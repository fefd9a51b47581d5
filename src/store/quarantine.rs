//! The protocol after a failed write, and the quarantine of monitors.
//!
//! fjall refuses every write after one failed, so the writer withdraws the database
//! from readers (`Writer::break_down`), answers every write with `Unavailable`
//! meanwhile (`Writer::refuse`), and reopens it every `RECOVERY_INTERVAL` (the
//! writer's loop, `writer.rs`) until a durable probe succeeds (`Writer::recover`).
//!
//! A monitor is quarantined while its actor's state may disagree with the log: a
//! batch reported as failed (so its actor did not apply it, nor heard of its
//! heartbeats) turned out durable when the store was reopened. The
//! writer refuses a quarantined monitor's appends, so nothing is written from such a
//! state, and reports the monitor ([`Quarantined`]) on the channel that
//! [`EventStore::open`] hands out, once the store is writable. The monitor side
//! rebuilds its actor from the store: it stops the old actor, passes
//! [`EventStore::start_rebuild`] (a barrier: everything the old actor sent has been
//! written or refused), reads the state, and calls [`EventStore::lift_quarantine`],
//! which lifts the quarantine unless another rebuild became due meanwhile.
//! ARCHITECTURE.md, "Storage faults", tells the whole story.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use fjall::PersistMode;
use tokio::sync::{mpsc, oneshot};

use crate::domain::ids::MonitorId;
use crate::prometheus;

use super::append::WriteRequest;
use super::mark::Ks;
use super::writer::Writer;
use super::{EventStore, Handles, Shared, StoreError, layout};

/// How long recovery waits for readers to let go of the failed database.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(10);

/// A monitor the writer quarantined: its actor must be rebuilt from the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quarantined {
    pub monitor: MonitorId,
    /// Its outbox entries from this sequence number on were never handed to the
    /// dispatcher: they belong to a batch reported as failed that turned out durable.
    /// `None`: it owes no such delivery.
    pub undispatched_from: Option<u64>,
}

/// The receiving end of the writer's [`Quarantined`] reports.
pub type QuarantineReports = mpsc::UnboundedReceiver<Quarantined>;

/// The quarantined monitors, shared by the writer and the rebuilds.
pub(super) struct Quarantine {
    monitors: HashMap<MonitorId, Rebuild>,
    reports: mpsc::UnboundedSender<Quarantined>,
}

/// Where a quarantined monitor's rebuild stands.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Rebuild {
    /// Reported, and not started since.
    Due { undispatched_from: Option<u64> },
    /// None due: the last one reported has started, or the store is still broken
    /// (the writer reports the monitor once it is reopened).
    NoneDue,
}

impl Quarantine {
    /// An empty quarantine, and the receiving end of its reports.
    pub(super) fn new() -> (Self, QuarantineReports) {
        let (reports, receiver) = mpsc::unbounded_channel();
        let quarantine = Self {
            monitors: HashMap::new(),
            reports,
        };
        (quarantine, receiver)
    }

    /// Whether `monitor`'s appends are refused.
    pub(super) fn holds(&self, monitor: MonitorId) -> bool {
        !self.monitors.is_empty() && self.monitors.contains_key(&monitor)
    }

    /// Quarantines `monitor` and reports it for a rebuild, unless a rebuild reported
    /// earlier, not started yet, covers it already.
    pub(super) fn report(&mut self, monitor: MonitorId, undispatched_from: Option<u64>) {
        let rebuild = self.monitors.entry(monitor).or_insert(Rebuild::NoneDue);
        let undispatched_from = match *rebuild {
            Rebuild::Due {
                undispatched_from: reported,
            } => {
                let earliest = earliest(reported, undispatched_from);
                if earliest == reported {
                    return;
                }
                earliest
            }
            Rebuild::NoneDue => undispatched_from,
        };
        *rebuild = Rebuild::Due { undispatched_from };
        // Only a store that nobody rebuilds monitors for has dropped the receiver
        // (`pushmon check`, benchmarks).
        let _ = self.reports.send(Quarantined {
            monitor,
            undispatched_from,
        });
    }

    /// `monitor`'s rebuild passed its barrier: whatever its old actor sent is written
    /// or refused. Another rebuild is due only if one of its appends is refused again.
    pub(super) fn rebuild_started(&mut self, monitor: MonitorId) {
        if let Some(rebuild) = self.monitors.get_mut(&monitor) {
            *rebuild = Rebuild::NoneDue;
        }
    }

    fn lift(&mut self, monitor: MonitorId) {
        if self.monitors.get(&monitor) == Some(&Rebuild::NoneDue) {
            self.monitors.remove(&monitor);
        }
    }
}

/// The earlier of two optional sequence numbers; `None` is later than any.
fn earliest(one: Option<u64>, other: Option<u64>) -> Option<u64> {
    match (one, other) {
        (Some(one), Some(other)) => Some(one.min(other)),
        (one, other) => one.or(other),
    }
}

impl Shared {
    pub(super) fn quarantine(&self) -> std::sync::MutexGuard<'_, Quarantine> {
        self.quarantine
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl EventStore {
    /// The barrier before `monitor`'s actor is rebuilt from the store; call it once
    /// the old actor has stopped. Waits until every write sent before it has been
    /// written or refused, so the rebuilt actor reads a log that holds every heartbeat
    /// its predecessor sent. From here on, another rebuild is due only if one of
    /// `monitor`'s appends is refused again.
    pub async fn start_rebuild(&self, monitor: MonitorId) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        self.send(WriteRequest::StartRebuild(monitor, reply), answer)
            .await
            .map(|_| ())
    }

    /// Accepts `monitor`'s appends again, once its actor was rebuilt from the store
    /// after [`start_rebuild`](Self::start_rebuild), unless another rebuild of it
    /// became due since.
    pub fn lift_quarantine(&self, monitor: MonitorId) {
        self.shared.quarantine().lift(monitor);
    }
}

impl Writer {
    /// Answers a write that arrives while the store is broken: nothing is written.
    pub(super) fn refuse(&mut self, request: WriteRequest) {
        let refused = || {
            Err(StoreError::Unavailable(
                "storage is recovering from a failed write".to_owned(),
            ))
        };
        match request {
            WriteRequest::Append(append) => append.reply.send(refused(), Vec::new(), false),
            WriteRequest::Appends(appends) | WriteRequest::Group(appends) => {
                for append in appends {
                    append.reply.send(refused(), Vec::new(), false);
                }
            }
            WriteRequest::Heartbeats(heartbeats) => {
                for heartbeat in heartbeats {
                    let _ = heartbeat.reply.send(refused());
                }
            }
            WriteRequest::Folded(heartbeats, _, reply) => {
                for heartbeat in heartbeats {
                    let _ = heartbeat.reply.send(refused());
                }
                let _ = reply.send(refused());
            }
            WriteRequest::Channel(write) => {
                let _ = write.reply.send(refused());
            }
            WriteRequest::Settle(_, reply)
            | WriteRequest::ApiKey(_, _, reply)
            | WriteRequest::Publication(_, _, reply)
            | WriteRequest::PingKey(_, reply)
            | WriteRequest::StartRebuild(_, reply)
            | WriteRequest::FoldSnapshot(_, _, reply)
            | WriteRequest::Import(_, reply) => {
                let _ = reply.send(refused());
            }
            WriteRequest::Alive(at) => self.alive = Some(at),
            WriteRequest::Close(_) => {}
        }
    }

    /// Stops writing after a failed write: fjall refuses every later write, so the
    /// database is withdrawn from readers and reopened by [`recover`](Self::recover).
    pub(super) fn break_down(&mut self) {
        self.shared.writable.store(false, Ordering::Relaxed);
        self.shared.publish(None);
        self.handles = None;
    }

    /// One attempt to reopen the store after a failed write. Succeeds only when a
    /// durable write goes through again.
    pub(super) fn recover(&mut self) {
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
        let attempt = Handles::open(&self.shared.path)
            .map_err(StoreError::from)
            .and_then(|handles| {
                // The highest marker: a batch reported as failed may have reached the disk.
                let last_seq = handles.markers()?.max();
                let channels = handles.channel_ids()?;
                // A probe: the fault has cleared only once a durable write succeeds. It
                // writes what is already true, and the newest alive time the server sent.
                let mut probe = handles.db.batch().durability(Some(PersistMode::SyncData));
                probe.insert(&handles.meta, layout::META_LAST_SEQ, last_seq.to_be_bytes());
                if let Some(at) = self.alive {
                    probe.insert(
                        &handles.meta,
                        layout::META_LAST_ALIVE,
                        at.as_millis().to_be_bytes(),
                    );
                }
                probe.commit()?;
                Ok((handles, last_seq, channels))
            });
        match attempt {
            Ok((handles, last_seq, channels)) => {
                self.channels = channels;
                let mut quarantine = self.shared.quarantine();
                if let Some((first_failed, monitors)) = self.failed.take()
                    && last_seq >= first_failed
                {
                    // The write failed after its bytes reached the journal (an fsync
                    // error): the log holds events the actors never applied.
                    tracing::warn!(
                        monitors = monitors.len(),
                        "a batch reported as failed was found durable; its monitors are quarantined until rebuilt from the store"
                    );
                    for monitor in monitors {
                        quarantine.report(monitor, Some(first_failed));
                    }
                }
                drop(quarantine);
                // Sequence numbers only grow, even past events a failed batch burned.
                self.next_seq = self.next_seq.max(last_seq + 1);
                self.durable
                    .set(Ks::Meta, self.durable.get(Ks::Meta).max(last_seq));
                let handles = Arc::new(handles);
                self.handles = Some(Arc::clone(&handles));
                self.shared.publish(Some(handles));
                self.shared.recoveries.fetch_add(1, Ordering::AcqRel);
                metrics::counter!(prometheus::STORE_RECOVERIES_TOTAL).increment(1);
                self.shared.writable.store(true, Ordering::Relaxed);
                tracing::info!("store reopened after a failed write; accepting writes again");
            }
            Err(error) => {
                tracing::warn!(%error, "store still cannot write; retrying");
            }
        }
    }
}
