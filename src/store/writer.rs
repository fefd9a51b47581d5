//! The writer thread: the single writer of the log. It numbers events with the global
//! sequence, gathers every request waiting into one fjall write batch and commits it
//! with one `fdatasync` (group commit), then answers every caller in the batch. After
//! a failed commit it hands over to `quarantine.rs`.
//!
//! Each batch also sets the marker of every keyspace it writes to (and `last_seq`) to
//! its last sequence number; once a second, with the server's alive time, the writer
//! hands the durable markers to the high-water mark's thread (`mark.rs`).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use fjall::PersistMode;
use tokio::sync::oneshot;

use crate::domain::alert::owed_deliveries;
use crate::domain::channel::{ChannelEvent, SendOn};
use crate::domain::event::{Event, Heartbeat, PushStatus};
use crate::domain::ids::{ChannelId, MonitorId, Timestamp};
use crate::domain::machine;
use crate::domain::ping_key::PingKey;
use crate::prometheus;

use super::api_keys::{self, ApiKeyChange};
use super::append::{
    Append, ChannelWrite, FoldPosition, PendingAppend, PendingHeartbeat, RecordedHeartbeat,
    Settlement, SnapshotWrite, WriteRequest,
};
use super::codec::{self, StoredEvent};
use super::mark::{self, KEYSPACE_COUNT, Keeper, Ks, Mark, Seqs};
use super::publications::{self, PublicationChange};
use super::{Handles, Shared, StoreError, layout};

/// How often a store that failed a write tries to reopen itself.
const RECOVERY_INTERVAL: Duration = Duration::from_millis(500);

/// The most appends gathered into one batch; beyond this the rest wait for the next.
const MAX_APPENDS_PER_BATCH: usize = 4096;

/// A write waiting for the next batch.
pub(super) enum Pending {
    Append(Box<PendingAppend>),
    Heartbeat(PendingHeartbeat),
    Channel(ChannelWrite),
    Settle(Settlement, oneshot::Sender<Result<u64, StoreError>>),
    ApiKey(
        ApiKeyChange,
        Option<FoldPosition>,
        oneshot::Sender<Result<u64, StoreError>>,
    ),
    Publication(
        PublicationChange,
        Option<FoldPosition>,
        oneshot::Sender<Result<u64, StoreError>>,
    ),
    PingKey(PingKey, oneshot::Sender<Result<u64, StoreError>>),
    StartRebuild(MonitorId, oneshot::Sender<Result<u64, StoreError>>),
    /// A stream's fold position (clustered mode), written with the heartbeats folded
    /// before it.
    Position(FoldPosition, oneshot::Sender<Result<u64, StoreError>>),
    /// A stream's fold snapshot, written with the position it is valid at.
    FoldSnapshot(
        FoldPosition,
        Vec<u8>,
        oneshot::Sender<Result<u64, StoreError>>,
    ),
    /// A stream's cut from another pod, written with its position (`share.rs`).
    Import(
        Box<super::append::Import>,
        oneshot::Sender<Result<u64, StoreError>>,
    ),
}

/// The single writer: owns sequence numbering, group commit, reopening after a failed
/// write, and the quarantine of monitors.
pub(super) struct Writer {
    pub(super) shared: Arc<Shared>,
    /// The database writes go to; `None` after a failed write until reopened.
    pub(super) handles: Option<Arc<Handles>>,
    pub(super) next_seq: u64,
    /// The channels that exist, and which alerts each is told about (`send_on`), as
    /// the log orders their creations, changes and deletions: an alert owes a
    /// delivery only to a channel that exists and wants it when it is numbered, so
    /// the outbox is what a replay of the log owes.
    pub(super) channels: HashMap<ChannelId, SendOn>,
    /// Each keyspace's marker as last durably written.
    pub(super) durable: Seqs,
    /// Writes the high-water mark; `None` when the store is only inspected.
    pub(super) keeper: Option<Keeper>,
    /// Where the mark goes.
    pub(super) data_dir: std::path::PathBuf,
    /// The first sequence number and the monitors of the batch that failed, until
    /// the store is reopened.
    pub(super) failed: Option<(u64, Vec<MonitorId>)>,
    /// The newest time the server said it was alive, also while the store was broken:
    /// the probe that reopens the store records it.
    pub(super) alive: Option<Timestamp>,
    /// Each monitor's last plain heartbeat written since the store was opened (absent:
    /// none): a voidable decision whose basis is older was overtaken by it, and is
    /// not written (`Append::basis`).
    pub(super) last_heartbeat: HashMap<MonitorId, u64>,
    /// The monitors whose deletion was written since the store was opened: a
    /// heartbeat racing a deletion is refused, never written after it.
    pub(super) deleted: HashSet<MonitorId>,
}

/// What a batch changed in the writer's memory, undone if the batch fails.
enum Undo {
    Heartbeat(MonitorId, Option<u64>),
    Deleted(MonitorId, Option<u64>),
}

impl Writer {
    pub(super) fn run(mut self, requests: mpsc::Receiver<WriteRequest>) {
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
                        self.final_mark(false);
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
                    // Never split, like a group: a bulk push's items ride one batch.
                    WriteRequest::Heartbeats(heartbeats) => {
                        pending.extend(heartbeats.into_iter().map(Pending::Heartbeat));
                    }
                    // Never split either: the position rides with its heartbeats.
                    WriteRequest::Folded(heartbeats, position, reply) => {
                        pending.extend(heartbeats.into_iter().map(Pending::Heartbeat));
                        pending.push(Pending::Position(position, reply));
                    }
                    WriteRequest::FoldSnapshot(position, snapshot, reply) => {
                        pending.push(Pending::FoldSnapshot(position, snapshot, reply));
                    }
                    WriteRequest::Import(import, reply) => {
                        pending.push(Pending::Import(import, reply));
                    }
                    WriteRequest::Appends(appends) => {
                        // All in this batch, or none: refused whole if one of its
                        // monitors is being rebuilt.
                        let quarantine = self.shared.quarantine();
                        let held = appends
                            .iter()
                            .any(|append| quarantine.holds(append.append.monitor));
                        drop(quarantine);
                        for append in appends {
                            if held {
                                append.reply.send(
                                    Err(StoreError::Unavailable(
                                        "a monitor is being rebuilt from the store".to_owned(),
                                    )),
                                    Vec::new(),
                                    false,
                                );
                            } else {
                                pending.push(Pending::Append(Box::new(append)));
                            }
                        }
                    }
                    WriteRequest::Group(appends) => {
                        // Never split: the whole group rides this batch (the quarantine
                        // is checked per append when it is staged).
                        pending.extend(
                            appends
                                .into_iter()
                                .map(|append| Pending::Append(Box::new(append))),
                        );
                    }
                    WriteRequest::Channel(write) => pending.push(Pending::Channel(write)),
                    WriteRequest::Settle(settlement, reply) => {
                        pending.push(Pending::Settle(settlement, reply));
                    }
                    WriteRequest::ApiKey(change, position, reply) => {
                        pending.push(Pending::ApiKey(change, position, reply));
                    }
                    WriteRequest::Publication(change, position, reply) => {
                        pending.push(Pending::Publication(change, position, reply));
                    }
                    WriteRequest::PingKey(key, reply) => {
                        pending.push(Pending::PingKey(key, reply));
                    }
                    WriteRequest::StartRebuild(monitor, reply) => {
                        pending.push(Pending::StartRebuild(monitor, reply));
                    }
                    WriteRequest::Alive(at) => {
                        alive = Some(at);
                        self.alive = Some(at);
                    }
                    WriteRequest::Close(reply) => {
                        close = Some(reply);
                        break;
                    }
                }
                if pending.len() < MAX_APPENDS_PER_BATCH {
                    next = requests.try_recv().ok();
                }
            }
            if close.is_none()
                && alive.is_none()
                && pending.len() < MAX_APPENDS_PER_BATCH
                && pending.iter().all(Pending::rides_along)
            {
                // Only snapshots written alone: nobody waits for them, so they ride
                // with the next batch (at the latest the alive mark's, a second
                // later) instead of costing an `fdatasync` of their own.
                continue;
            }
            self.commit(&handles, &mut pending, alive);
            if self.handles.is_none() {
                next_attempt = Instant::now() + RECOVERY_INTERVAL;
            }
            if let Some(reply) = close {
                // Drain what raced in behind the close request, then sync everything.
                loop {
                    match requests.try_recv() {
                        Ok(WriteRequest::Append(append)) => pending.push(Pending::Append(append)),
                        Ok(WriteRequest::Heartbeats(heartbeats)) => {
                            pending.extend(heartbeats.into_iter().map(Pending::Heartbeat));
                        }
                        _ => break,
                    }
                }
                let mut synced = false;
                if self.handles.is_some() {
                    self.commit(&handles, &mut pending, None);
                    match handles.db.persist(PersistMode::SyncAll) {
                        Ok(()) => synced = self.handles.is_some(),
                        Err(error) => tracing::error!(%error, "final persist of the store failed"),
                    }
                }
                for request in pending.drain(..) {
                    request.reply(Err(StoreError::Closed));
                }
                self.final_mark(synced);
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
        // Only what the clustered mode folded from NATS (the log of record): written
        // to the OS without an fsync; a crash refolds what the disk lost.
        let buffered = alive.is_none() && pending.iter().all(Pending::may_be_buffered);
        let mut batch = handles.db.batch().durability(Some(if buffered {
            PersistMode::Buffer
        } else {
            PersistMode::SyncData
        }));
        let mut touched = [false; KEYSPACE_COUNT];
        let mut event_count = 0usize;
        let shared = Arc::clone(&self.shared);
        let mut quarantine = shared.quarantine();
        let mut recorded: Vec<RecordedHeartbeat> = Vec::new();
        let mut undo: Vec<Undo> = Vec::new();
        let mut voided = 0u64;
        // Per stream, the furthest fold position a record of the batch carries.
        let mut positions: std::collections::BTreeMap<u16, u64> = Default::default();
        let mut refused_folded = false;
        for request in pending.iter_mut() {
            let staged = match request {
                Pending::Append(append) if quarantine.holds(append.append.monitor) => Err(
                    StoreError::Unavailable("monitor is being rebuilt from the store".to_owned()),
                ),
                Pending::Heartbeat(heartbeat) if quarantine.holds(heartbeat.monitor) => Err(
                    StoreError::Unavailable("monitor is being rebuilt from the store".to_owned()),
                ),
                Pending::Heartbeat(heartbeat) if self.deleted.contains(&heartbeat.monitor) => {
                    Err(StoreError::Deleted)
                }
                Pending::Heartbeat(heartbeat) => {
                    touched[Ks::Events as usize] = true;
                    event_count += 1;
                    self.stage_heartbeat(handles, &mut batch, heartbeat, &mut recorded, &mut undo)
                }
                Pending::Append(append) => {
                    let last_heartbeat = self.last_heartbeat.get(&append.append.monitor).copied();
                    let overtaken = match (append.append.basis, last_heartbeat) {
                        (Some(basis), Some(heartbeat)) => heartbeat > basis,
                        _ => false,
                    };
                    if overtaken && append.append.voidable {
                        // A verdict a heartbeat overtook: that heartbeat is on its way
                        // to the actor, which keeps its state and applies it.
                        append.voided = true;
                        voided += 1;
                        Ok(last_heartbeat.unwrap_or(0))
                    } else {
                        if overtaken {
                            Self::realert(handles, &mut append.append, &recorded);
                        }
                        self.stage(
                            handles,
                            &mut batch,
                            &mut append.append,
                            overtaken,
                            &mut event_count,
                            &mut touched,
                            &mut undo,
                        )
                    }
                }
                Pending::Channel(write) => {
                    touched[Ks::Channels as usize] = true;
                    touched[Ks::ChannelEvents as usize] = true;
                    self.stage_channel(handles, &mut batch, write)
                }
                Pending::Settle(settlement, _) => {
                    touched[Ks::Outbox as usize] = true;
                    touched[Ks::Events as usize] = true;
                    event_count += 1;
                    self.stage_settlement(handles, &mut batch, settlement)
                }
                Pending::ApiKey(change, _, _) => {
                    touched[Ks::ApiKeys as usize] = true;
                    touched[Ks::ApiKeyEvents as usize] = true;
                    self.stage_api_key(handles, &mut batch, change)
                }
                Pending::Publication(change, _, _) => {
                    touched[Ks::Publications as usize] = true;
                    touched[Ks::PublicationEvents as usize] = true;
                    self.stage_publication(handles, &mut batch, change)
                }
                // `meta`, which every batch writes.
                Pending::PingKey(key, _) => {
                    let seq = self.next_seq;
                    self.next_seq += 1;
                    super::ping_key::stage(handles, &mut batch, key, seq).map(|()| seq)
                }
                Pending::StartRebuild(monitor, _) => {
                    quarantine.rebuild_started(*monitor);
                    Ok(0)
                }
                // Written below with the positions of the other folded records; not
                // if a heartbeat folded with it (just before it) was refused, which
                // the fold then applies again.
                Pending::Position(position, _) if std::mem::take(&mut refused_folded) => {
                    Err(StoreError::Unavailable(format!(
                        "a heartbeat folded up to {position:?} was refused"
                    )))
                }
                Pending::Position(position, _) => Ok(position.sequence),
                Pending::Import(import, _) => {
                    for keyspace in Ks::ALL {
                        touched[keyspace as usize] = true;
                    }
                    self.stage_import(handles, &mut batch, import)
                }
                // `meta`; its position is written below with the others.
                Pending::FoldSnapshot(position, snapshot, _) => {
                    batch.insert(
                        &handles.meta,
                        layout::cluster_snapshot_key(position.stream),
                        std::mem::take(snapshot),
                    );
                    Ok(position.sequence)
                }
            };
            if let (Pending::Heartbeat(heartbeat), Err(error)) = (&*request, &staged)
                && heartbeat.folded
                && !matches!(error, StoreError::Deleted)
            {
                refused_folded = true;
            }
            // A folded record's stream position rides in its batch: both are in
            // the store after a crash, or neither (`FoldPosition`).
            if staged.is_ok()
                && let Some(position) = request.position()
            {
                let stored = positions.entry(position.stream).or_insert(0);
                *stored = (*stored).max(position.sequence);
            }
            results.push(staged);
        }
        drop(quarantine);
        // `meta`, which every batch writes.
        for (stream, sequence) in positions {
            batch.insert(
                &handles.meta,
                layout::cluster_position_key(stream),
                sequence.to_be_bytes(),
            );
        }
        // Every batch sets the markers of what it wrote to (`mark.rs`).
        let last_seq = self.next_seq - 1;
        batch.insert(&handles.meta, layout::META_LAST_SEQ, last_seq.to_be_bytes());
        touched[Ks::Meta as usize] = true;
        for keyspace in Ks::ALL {
            if touched[keyspace as usize] && keyspace != Ks::Meta {
                batch.insert(
                    handles.keyspace(keyspace),
                    layout::MARKER,
                    last_seq.to_be_bytes(),
                );
            }
        }
        if let Some(at) = alive {
            batch.insert(
                &handles.meta,
                layout::META_LAST_ALIVE,
                at.as_millis().to_be_bytes(),
            );
        }
        // A data directory deleted under the server would take acknowledged writes
        // into unlinked files: check it is still the one opened.
        let outcome = match self.shared.check_directory() {
            Ok(()) => batch.commit(),
            Err(vanished) => Err(vanished),
        };
        let hot = prometheus::hot();
        hot.commit_duration.record(started.elapsed().as_secs_f64());
        hot.batch_events.record(event_count as f64);
        if voided > 0 {
            self.shared
                .voided
                .fetch_add(voided, std::sync::atomic::Ordering::Relaxed);
            metrics::counter!(prometheus::DECISIONS_VOIDED_TOTAL).increment(voided);
        }
        if let Err(error) = outcome {
            for change in undo.into_iter().rev() {
                match change {
                    Undo::Heartbeat(monitor, before) | Undo::Deleted(monitor, before) => {
                        self.deleted.remove(&monitor);
                        match before {
                            Some(seq) => self.last_heartbeat.insert(monitor, seq),
                            None => self.last_heartbeat.remove(&monitor),
                        };
                    }
                }
            }
            // The channels staged in the failed batch: the set is read again on reopening.
            tracing::error!(%error, "event log commit failed; nothing in the batch is acknowledged; reopening the store");
            metrics::counter!(prometheus::STORE_WRITE_FAILURES_TOTAL).increment(1);
            // Their heartbeats too: if the batch turns out durable, their actors never
            // heard of them.
            let monitors = pending
                .iter()
                .filter_map(|request| match request {
                    Pending::Append(append) => Some(append.append.monitor),
                    Pending::Heartbeat(heartbeat) => Some(heartbeat.monitor),
                    _ => None,
                })
                .collect();
            self.failed = Some((first_seq, monitors));
            self.break_down();
            let failure = StoreError::from(error);
            for result in &mut results {
                if result.is_ok() {
                    *result = Err(failure.clone());
                }
            }
        } else {
            // A buffered batch is not durable: the high-water mark must not claim it.
            for keyspace in Ks::ALL {
                if touched[keyspace as usize] && !buffered {
                    self.durable.set(keyspace, last_seq);
                }
            }
            if let (Some(at), Some(keeper)) = (alive, &self.keeper) {
                keeper.keep(Mark {
                    seqs: self.durable,
                    acknowledged_before: Some(at),
                });
            }
            // Durable: their actors hear of them before anyone in the batch is
            // answered, so an actor whose decision the batch voided, or whose append
            // a heartbeat overtook, finds that heartbeat already waiting.
            if !recorded.is_empty() {
                let sink = self
                    .shared
                    .sink
                    .read()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .clone();
                if let Some(sink) = sink {
                    sink.recorded(recorded);
                }
            }
        }
        // One reading of the clock for the whole batch: its callers are answered
        // together.
        let answered = Instant::now();
        for (request, result) in pending.drain(..).zip(results) {
            let enqueued = match &request {
                Pending::Append(append) => Some(append.enqueued),
                Pending::Heartbeat(heartbeat) => Some(heartbeat.enqueued),
                _ => None,
            };
            if let Some(enqueued) = enqueued {
                hot.append_duration
                    .record(answered.saturating_duration_since(enqueued).as_secs_f64());
            }
            request.reply(result);
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
        let key = layout::channel_key(write.channel);
        match &write.event {
            ChannelEvent::Created(channel) | ChannelEvent::Updated(channel) => {
                batch.insert(&handles.channels, key, codec::encode_channel(channel)?);
                self.channels.insert(write.channel, channel.send_on);
            }
            ChannelEvent::Deleted => {
                batch.remove(&handles.channels, key);
                self.channels.remove(&write.channel);
            }
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        batch.insert(
            &handles.channel_events,
            layout::channel_event_key(write.channel, seq),
            value,
        );
        Ok(seq)
    }

    /// Writes the last mark, once the store is synced and closed, after the marks still
    /// queued; `synced`: the final persist succeeded, so everything acknowledged is in it.
    fn final_mark(&mut self, synced: bool) {
        let Some(keeper) = self.keeper.take() else {
            return;
        };
        keeper.finish();
        if !synced {
            return;
        }
        let mark = Mark {
            seqs: self.durable,
            acknowledged_before: self.alive,
        };
        if let Err(error) = mark::write(&self.data_dir, &mark) {
            tracing::error!(%error, "cannot write the high-water mark at shutdown");
        }
    }

    /// A deleted monitor's delivery outcome: its event, and the outbox entry's removal.
    fn stage_settlement(
        &mut self,
        handles: &Handles,
        batch: &mut fjall::OwnedWriteBatch,
        settlement: &Settlement,
    ) -> Result<u64, StoreError> {
        let stored = StoredEvent {
            at: settlement.at,
            event: Event::DeliveryRecorded(settlement.outcome.clone()),
        };
        let value = codec::encode_event(&stored)?;
        let seq = self.next_seq;
        self.next_seq += 1;
        batch.insert(
            &handles.events,
            layout::event_key(settlement.monitor, seq),
            value,
        );
        let outcome = &settlement.outcome;
        batch.remove(
            &handles.outbox,
            layout::outbox_key(outcome.alert_seq, outcome.channel),
        );
        Ok(seq)
    }

    /// An API key's record and event; a revocation of a key that does not exist
    /// writes nothing.
    fn stage_api_key(
        &mut self,
        handles: &Handles,
        batch: &mut fjall::OwnedWriteBatch,
        change: &ApiKeyChange,
    ) -> Result<u64, StoreError> {
        let id = match change {
            ApiKeyChange::Created(key) => key.id,
            ApiKeyChange::Revoked(id) => *id,
        };
        let record_key = *id.as_bytes();
        let record = match change {
            ApiKeyChange::Created(key) => Some(api_keys::encode(key)?),
            ApiKeyChange::Revoked(_) if handles.api_keys.contains_key(record_key)? => None,
            ApiKeyChange::Revoked(_) => return Ok(self.next_seq - 1),
        };
        let event = api_keys::encode_event(change)?;
        let seq = self.next_seq;
        self.next_seq += 1;
        match record {
            Some(value) => batch.insert(&handles.api_keys, record_key, value),
            None => batch.remove(&handles.api_keys, record_key),
        }
        batch.insert(
            &handles.api_key_events,
            layout::api_key_event_key(record_key, seq),
            event,
        );
        Ok(seq)
    }

    /// A badge's or status page's record and event; a removal of a record that does
    /// not exist writes nothing.
    fn stage_publication(
        &mut self,
        handles: &Handles,
        batch: &mut fjall::OwnedWriteBatch,
        change: &PublicationChange,
    ) -> Result<u64, StoreError> {
        let record_key = match change {
            PublicationChange::Put(publication) => publication.record_id(),
            PublicationChange::Removed(id) => *id,
        };
        let record = match change {
            PublicationChange::Put(publication) => Some(publications::encode(publication)?),
            PublicationChange::Removed(_) if handles.publications.contains_key(record_key)? => None,
            PublicationChange::Removed(_) => return Ok(self.next_seq - 1),
        };
        let event = publications::encode_event(change)?;
        let seq = self.next_seq;
        self.next_seq += 1;
        match record {
            Some(value) => batch.insert(&handles.publications, record_key, value),
            None => batch.remove(&handles.publications, record_key),
        }
        batch.insert(
            &handles.publication_events,
            layout::publication_event_key(record_key, seq),
            event,
        );
        Ok(seq)
    }

    /// Puts one append's events, state and outbox changes into the batch, numbering
    /// the events.
    #[allow(clippy::too_many_arguments)]
    fn stage(
        &mut self,
        handles: &Handles,
        batch: &mut fjall::OwnedWriteBatch,
        append: &mut Append,
        overtaken: bool,
        event_count: &mut usize,
        touched: &mut [bool; KEYSPACE_COUNT],
        undo: &mut Vec<Undo>,
    ) -> Result<u64, StoreError> {
        let first_seq = self.next_seq;
        let mut owed = Vec::with_capacity(append.owed.len());
        // A channel deleted before this append (in the log's order) is owed nothing,
        // even if its deletion had not yet reached the actor's view of the channels;
        // nor is one whose `send_on` (as last written) leaves the alert out. The
        // actor dispatches what is left (`Appended::owed`).
        let channels = &self.channels;
        append.owed.retain(|(_, delivery)| {
            channels
                .get(&delivery.channel)
                .is_some_and(|send_on| send_on.includes(delivery.alert.kind))
        });
        for (index, delivery) in &mut append.owed {
            delivery.alert.alert_seq = first_seq + *index as u64;
            owed.push((
                layout::outbox_key(delivery.alert.alert_seq, delivery.channel),
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
            // Only the snapshot, as of its basis (`Append::snapshot`).
            SnapshotWrite::Write(state) if encoded.is_empty() => {
                Some(codec::encode_monitor(state)?)
            }
            // The actor's state misses a heartbeat written after its basis: the
            // stored snapshot stays, and readers fold the log after it.
            SnapshotWrite::Write(_) if overtaken => None,
            SnapshotWrite::Write(state) => {
                state.last_seq = last_seq;
                Some(codec::encode_monitor(state)?)
            }
            SnapshotWrite::Keep | SnapshotWrite::Remove => None,
        };
        if matches!(append.state, SnapshotWrite::Remove) {
            // Deleted: a heartbeat after this is refused.
            let before = self.last_heartbeat.remove(&append.monitor);
            self.deleted.insert(append.monitor);
            undo.push(Undo::Deleted(append.monitor, before));
        }
        for value in encoded {
            batch.insert(
                &handles.events,
                layout::event_key(append.monitor, self.next_seq),
                value,
            );
            self.next_seq += 1;
            *event_count += 1;
        }
        touched[Ks::Events as usize] = true;
        let key = layout::monitor_key(append.monitor);
        match state {
            Some(value) => {
                batch.insert(&handles.monitors, key, value);
                touched[Ks::Monitors as usize] = true;
            }
            None if matches!(append.state, SnapshotWrite::Remove) => {
                batch.remove(&handles.monitors, key);
                touched[Ks::Monitors as usize] = true;
            }
            None => {}
        }
        for (key, value) in owed {
            batch.insert(&handles.outbox, key, value);
            touched[Ks::Outbox as usize] = true;
        }
        if let Some((alert_seq, channel)) = append.settled {
            batch.remove(&handles.outbox, layout::outbox_key(alert_seq, channel));
            touched[Ks::Outbox as usize] = true;
        }
        Ok(last_seq)
    }
}

impl Writer {
    /// Remakes the alerts an append owes from the state it was decided on with the
    /// heartbeats written after its basis folded in (from the store, and from this
    /// batch), so that each carries what a replay of the log gives it. Rare: an
    /// append that owes deliveries and that a heartbeat overtook.
    fn realert(handles: &Handles, append: &mut Append, batch: &[RecordedHeartbeat]) {
        let (Some(before), Some(basis)) = (append.before.as_deref(), append.basis) else {
            return;
        };
        if append.owed.is_empty() {
            return;
        }
        let mut state = before.clone();
        let start = layout::event_key(append.monitor, basis.saturating_add(1));
        let end = layout::event_key(append.monitor, u64::MAX);
        for guard in handles.events.range(start..=end) {
            let Ok((key, value)) = guard.into_inner() else {
                return;
            };
            let (Some((_, seq)), Ok(stored)) =
                (layout::parse_event_key(&key), codec::decode_event(&value))
            else {
                return;
            };
            machine::apply(&mut state, seq, stored.at, &stored.event);
        }
        for recorded in batch
            .iter()
            .filter(|recorded| recorded.monitor == append.monitor)
        {
            let event = Event::HeartbeatReceived(recorded.heartbeat.clone());
            machine::apply(&mut state, recorded.seq, recorded.at, &event);
        }
        let proposed: HashSet<ChannelId> = append
            .owed
            .iter()
            .map(|(_, delivery)| delivery.channel)
            .collect();
        append.owed = owed_deliveries(&state, &append.events, |channel, _| {
            proposed.contains(&channel)
        });
    }

    /// Puts a plain heartbeat from the ingress into the batch, numbered, and notes it
    /// as its monitor's last.
    fn stage_heartbeat(
        &mut self,
        handles: &Handles,
        batch: &mut fjall::OwnedWriteBatch,
        pending: &mut PendingHeartbeat,
        recorded: &mut Vec<RecordedHeartbeat>,
        undo: &mut Vec<Undo>,
    ) -> Result<u64, StoreError> {
        // Moved into the event to encode it, and out again for its actor.
        let placeholder = Heartbeat::new(PushStatus::Up, None, None);
        let stored = StoredEvent {
            at: pending.at,
            event: Event::HeartbeatReceived(std::mem::replace(&mut pending.heartbeat, placeholder)),
        };
        let encoded = codec::encode_event(&stored);
        let Event::HeartbeatReceived(heartbeat) = stored.event else {
            return Err(StoreError::Corrupt(
                "a heartbeat became another event".to_owned(),
            ));
        };
        let value = match encoded {
            Ok(value) => value,
            Err(error) => {
                pending.heartbeat = heartbeat;
                return Err(error.into());
            }
        };
        let seq = self.next_seq;
        self.next_seq += 1;
        batch.insert(
            &handles.events,
            layout::event_key(pending.monitor, seq),
            value,
        );
        let before = self.last_heartbeat.insert(pending.monitor, seq);
        undo.push(Undo::Heartbeat(pending.monitor, before));
        recorded.push(RecordedHeartbeat {
            monitor: pending.monitor,
            seq,
            at: pending.at,
            heartbeat,
        });
        Ok(seq)
    }
}

impl Writer {
    /// Stages a stream's cut from another pod (`share.rs`): every record with its
    /// sequence numbers moved past this store's, the stream's fold snapshot, and this
    /// store's next sequence past the cut's. Its position is written with the others.
    fn stage_import(
        &mut self,
        handles: &Handles,
        batch: &mut fjall::OwnedWriteBatch,
        import: &mut super::append::Import,
    ) -> Result<u64, StoreError> {
        let base = self.next_seq - 1;
        let mut highest = 0;
        let mut channels = Vec::new();
        let mut staged = Vec::new();
        for (name, records) in std::mem::take(&mut import.keyspaces) {
            let keyspace = handles.by_name(&name).ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "a shared snapshot names an unknown keyspace {name:?}"
                ))
            })?;
            for (key, value) in records {
                let (key, value, seq) = super::share::shift(&name, &key, &value, base)?;
                highest = highest.max(seq);
                if name == layout::CHANNELS {
                    let id: [u8; 16] = key.as_slice().try_into().map_err(|_| {
                        StoreError::Corrupt("a shared snapshot's channel key".to_owned())
                    })?;
                    channels.push((
                        ChannelId::from_bytes(id),
                        codec::decode_channel(&value)?.send_on,
                    ));
                }
                staged.push((keyspace.clone(), key, value));
            }
        }
        // Nothing is staged before the whole cut parsed: a bad one writes nothing.
        for (keyspace, key, value) in staged {
            batch.insert(&keyspace, key, value);
        }
        batch.insert(
            &handles.meta,
            layout::cluster_snapshot_key(import.position.stream),
            std::mem::take(&mut import.fold_snapshot),
        );
        self.channels.extend(channels);
        self.next_seq = base + highest + 1;
        Ok(import.position.sequence)
    }
}

impl Drop for Writer {
    /// A writer that ends without a close (its senders all dropped) still waits for
    /// the marks it handed over, so none is written after the store is reopened.
    fn drop(&mut self) {
        if let Some(keeper) = self.keeper.take() {
            keeper.finish();
        }
    }
}

impl Pending {
    /// A snapshot written alone (`Append::snapshot`), which may wait for the next
    /// batch.
    fn rides_along(&self) -> bool {
        matches!(self, Pending::Append(append)
            if append.append.events.is_empty()
                && append.append.basis.is_some()
                && matches!(append.append.state, SnapshotWrite::Write(_)))
    }

    /// Written without an fsync when the whole batch is: a heartbeat folded from a
    /// shard log, a fold position, a snapshot (which the log it is made of rebuilds).
    fn may_be_buffered(&self) -> bool {
        matches!(self, Pending::Heartbeat(heartbeat) if heartbeat.folded)
            || matches!(self, Pending::Position(..) | Pending::FoldSnapshot(..))
            || self.rides_along()
    }

    /// The stream position of a record folded from a shard log, written with it.
    fn position(&self) -> Option<FoldPosition> {
        match self {
            Pending::Append(append) => append.append.position,
            Pending::Channel(write) => write.position,
            Pending::Settle(settlement, _) => settlement.position,
            Pending::ApiKey(_, position, _) | Pending::Publication(_, position, _) => *position,
            Pending::Position(position, _) | Pending::FoldSnapshot(position, _, _) => {
                Some(*position)
            }
            Pending::Import(import, _) => Some(import.position),
            Pending::Heartbeat(_) | Pending::PingKey(..) | Pending::StartRebuild(..) => None,
        }
    }

    fn reply(self, result: Result<u64, StoreError>) {
        let reply = match self {
            Pending::Append(append) => {
                let PendingAppend {
                    append,
                    reply,
                    voided,
                    ..
                } = *append;
                return reply.send(result, append.owed, voided);
            }
            Pending::Heartbeat(heartbeat) => heartbeat.reply,
            Pending::Channel(write) => write.reply,
            Pending::Settle(_, reply)
            | Pending::ApiKey(_, _, reply)
            | Pending::Publication(_, _, reply)
            | Pending::PingKey(_, reply)
            | Pending::StartRebuild(_, reply)
            | Pending::Position(_, reply)
            | Pending::FoldSnapshot(_, _, reply)
            | Pending::Import(_, reply) => reply,
        };
        let _ = reply.send(result);
    }
}
