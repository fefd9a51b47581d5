//! The protocol after a failed write. fjall refuses every write after one failed, so
//! the writer withdraws the database, answers writes with `Unavailable` meanwhile,
//! and reopens it once a durable probe succeeds. Monitors whose actors' state may
//! disagree with the log are quarantined (their appends refused) until they are
//! rebuilt from the store. ARCHITECTURE.md, "Storage faults", tells the whole story.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use fjall::PersistMode;

use crate::domain::ids::MonitorId;
use crate::metrics as names;

use super::append::{AppendReply, PendingAppend, WriteRequest};
use super::writer::Writer;
use super::{EventStore, Handles, Shared, StoreError, layout};

/// How often a store that failed a write tries to reopen itself.
pub(super) const RECOVERY_INTERVAL: Duration = Duration::from_millis(500);

/// How long recovery waits for readers to let go of the failed database.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Default)]
pub(super) struct Diverged {
    /// Not yet handed to the application, each with the first sequence number of
    /// the batch that was reported failed.
    pub(super) new: std::collections::HashMap<MonitorId, u64>,
    /// Refused until released.
    pub(super) quarantined: std::collections::HashSet<MonitorId>,
}

impl Diverged {
    /// Quarantines `monitor` and schedules its rebuild; `first_seq` is where its
    /// undelivered outbox entries may start (`u64::MAX`: none can).
    pub(super) fn add(&mut self, monitor: MonitorId, first_seq: u64) {
        self.quarantined.insert(monitor);
        self.new
            .entry(monitor)
            .and_modify(|seq| *seq = (*seq).min(first_seq))
            .or_insert(first_seq);
    }
}

impl Shared {
    pub(super) fn diverged(&self) -> std::sync::MutexGuard<'_, Diverged> {
        self.diverged
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl EventStore {
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
}

impl Writer {
    /// A pipelined heartbeat of `append`'s monitor will not be written: its actor is
    /// ahead of the log. Quarantined now; rebuilt once the store is reopened.
    pub(super) fn resync_later(&mut self, append: &PendingAppend) {
        if matches!(append.reply, AppendReply::Pipelined(_)) {
            let monitor = append.append.monitor;
            self.resync.insert(monitor);
            self.shared.diverged().quarantined.insert(monitor);
        }
    }

    /// Answers a write that arrives while the store is broken: nothing is written.
    pub(super) fn refuse(&mut self, request: WriteRequest) {
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
        let attempt = Handles::open(&self.shared.path).and_then(|handles| {
            let last_seq = handles.last_seq()?;
            // A probe: the fault has cleared only once a durable write succeeds.
            let mut probe = handles.db.batch().durability(Some(PersistMode::SyncData));
            probe.insert(
                &handles.meta,
                layout::META_LAST_ALIVE,
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
}
