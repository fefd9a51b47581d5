//! The read side: current states (each monitor's snapshot with the heartbeats
//! appended since folded in), history pages, the outbox, channels, and the full
//! replay that `pushmon check` compares with the snapshots. Readers share the open
//! database with the writer and get `Unavailable` while it is being reopened.

use std::collections::BTreeMap;
use std::sync::Arc;

use fjall::Keyspace;

use crate::domain::alert::Delivery;
use crate::domain::channel::Channel;
use crate::domain::event::Event;
use crate::domain::ids::{MonitorId, Timestamp};
use crate::domain::machine::{self, Monitor};

use super::codec::{self, StoredEvent};
use super::{EventStore, StoreError, layout};

/// An event as read back from the log.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordedEvent {
    pub seq: u64,
    pub at: Timestamp,
    pub event: Event,
}

impl EventStore {
    /// Every delivery still owed, oldest alert first. Blocking.
    pub fn load_outbox(&self) -> Result<Vec<Delivery>, StoreError> {
        load_all(&self.shared.handles()?.outbox, codec::decode_delivery)
    }

    /// Every channel. Blocking.
    pub fn load_channels(&self) -> Result<Vec<Channel>, StoreError> {
        load_all(&self.shared.handles()?.channels, codec::decode_channel)
    }

    /// When the server was last recorded alive, if ever. Blocking.
    pub fn last_alive(&self) -> Result<Option<Timestamp>, StoreError> {
        Ok(self
            .shared
            .handles()?
            .meta
            .get(layout::META_LAST_ALIVE)?
            .and_then(|value| layout::decode_i64(&value))
            .map(Timestamp::from_millis))
    }

    /// Every monitor's current state: its snapshot with the few heartbeats appended
    /// since folded in (see [`SnapshotWrite::Keep`](super::SnapshotWrite::Keep)): O(monitors). Blocking.
    pub fn load_monitors(&self) -> Result<Vec<Monitor>, StoreError> {
        let handles = self.shared.handles()?;
        let mut all = Vec::with_capacity(handles.monitors.approximate_len());
        for guard in handles.monitors.range(layout::FIRST_RECORD..) {
            let (_, value) = guard.into_inner()?;
            all.push(state_from(&handles.events, &value)?);
        }
        Ok(all)
    }

    /// Every monitor's state to rebuild its actor from: the state before the plain
    /// heartbeats at the end of its log that its actor may not have decided on (after
    /// its snapshot and its last other event), and those heartbeats, which the new
    /// actor applies and decides on as if they had just been written. Blocking.
    pub fn load_monitors_to_rebuild(
        &self,
    ) -> Result<Vec<(Monitor, Vec<super::RecordedHeartbeat>)>, StoreError> {
        let handles = self.shared.handles()?;
        let mut all = Vec::with_capacity(handles.monitors.approximate_len());
        for guard in handles.monitors.range(layout::FIRST_RECORD..) {
            let (_, value) = guard.into_inner()?;
            all.push(state_to_rebuild(&handles.events, &value)?);
        }
        Ok(all)
    }

    /// [`load_monitors_to_rebuild`](Self::load_monitors_to_rebuild) for one monitor.
    pub async fn monitor_to_rebuild(
        &self,
        id: MonitorId,
    ) -> Result<Option<(Monitor, Vec<super::RecordedHeartbeat>)>, StoreError> {
        let shared = Arc::clone(&self.shared);
        blocking(move || {
            let handles = shared.handles()?;
            match handles.monitors.get(layout::monitor_key(id))? {
                Some(value) => Ok(Some(state_to_rebuild(&handles.events, &value)?)),
                None => Ok(None),
            }
        })
        .await
    }

    /// One monitor's current state.
    pub async fn monitor(&self, id: MonitorId) -> Result<Option<Monitor>, StoreError> {
        let shared = Arc::clone(&self.shared);
        blocking(move || {
            let handles = shared.handles()?;
            match handles.monitors.get(layout::monitor_key(id))? {
                Some(value) => Ok(Some(state_from(&handles.events, &value)?)),
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
            let start = layout::event_key(monitor, 0);
            let end = layout::event_key(monitor, before.unwrap_or(u64::MAX));
            let mut found = Vec::with_capacity(limit.min(1024));
            for guard in shared.handles()?.events.range(start..end).rev() {
                if found.len() >= limit {
                    break;
                }
                let (key, value) = guard.into_inner()?;
                let Some((_, seq)) = layout::parse_event_key(&key) else {
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
        for guard in self.shared.handles()?.events.range(layout::FIRST_RECORD..) {
            let (key, value) = guard.into_inner()?;
            let Some((id, seq)) = layout::parse_event_key(&key) else {
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
}

/// A monitor's current state from its stored snapshot `value`: the snapshot with the
/// events after it folded in. A snapshot of a format before 3 is rebuilt from the
/// monitor's whole log instead: its upcast cannot know what the newer state derives
/// from the log (the last success, why it is down). Blocking.
pub(super) fn state_from(events: &Keyspace, value: &[u8]) -> Result<Monitor, StoreError> {
    let snapshot = codec::decode_monitor(value)?;
    if codec::snapshot_needs_its_log(value)
        && let Some(rebuilt) = replay_one(events, snapshot.id)?
    {
        return Ok(rebuilt);
    }
    fold_tail(events, snapshot)
}

/// One monitor's whole log, folded; `None` if it has no `Created` (or is deleted).
fn replay_one(events: &Keyspace, id: MonitorId) -> Result<Option<Monitor>, StoreError> {
    let mut history = Vec::new();
    for guard in events.range(layout::event_key(id, 0)..=layout::event_key(id, u64::MAX)) {
        let (key, value) = guard.into_inner()?;
        let Some((_, seq)) = layout::parse_event_key(&key) else {
            return Err(StoreError::Corrupt("malformed event key".to_owned()));
        };
        history.push((seq, codec::decode_event(&value)?));
    }
    Ok(machine::replay(
        id,
        history
            .iter()
            .map(|(seq, stored)| (*seq, stored.at, &stored.event)),
    ))
}

/// [`state_from`], leaving out the plain heartbeats at the end of the log after the
/// snapshot (`RecordedHeartbeat`s, in order): a stopped actor may not have decided
/// what they cause. Blocking.
fn state_to_rebuild(
    events: &Keyspace,
    value: &[u8],
) -> Result<(Monitor, Vec<super::RecordedHeartbeat>), StoreError> {
    let mut snapshot = codec::decode_monitor(value)?;
    if codec::snapshot_needs_its_log(value)
        && let Some(rebuilt) = replay_one(events, snapshot.id)?
    {
        return Ok((rebuilt, Vec::new()));
    }
    let start = layout::event_key(snapshot.id, snapshot.last_seq.saturating_add(1));
    let end = layout::event_key(snapshot.id, u64::MAX);
    let mut trailing: Vec<super::RecordedHeartbeat> = Vec::new();
    for guard in events.range(start..=end) {
        let (key, value) = guard.into_inner()?;
        let Some((_, seq)) = layout::parse_event_key(&key) else {
            return Err(StoreError::Corrupt("malformed event key".to_owned()));
        };
        let stored = codec::decode_event(&value)?;
        match stored.event {
            crate::domain::event::Event::HeartbeatReceived(heartbeat) => {
                trailing.push(super::RecordedHeartbeat {
                    monitor: snapshot.id,
                    seq,
                    at: stored.at,
                    heartbeat,
                });
            }
            event => {
                // Its actor had seen the heartbeats before this event of its own.
                for recorded in trailing.drain(..) {
                    let event = crate::domain::event::Event::HeartbeatReceived(recorded.heartbeat);
                    machine::apply(&mut snapshot, recorded.seq, recorded.at, &event);
                }
                machine::apply(&mut snapshot, seq, stored.at, &event);
            }
        }
    }
    Ok((snapshot, trailing))
}

/// Applies to `snapshot` the monitor's events newer than it: the heartbeats appended
/// without a snapshot. Blocking.
fn fold_tail(events: &Keyspace, mut snapshot: Monitor) -> Result<Monitor, StoreError> {
    let start = layout::event_key(snapshot.id, snapshot.last_seq.saturating_add(1));
    let end = layout::event_key(snapshot.id, u64::MAX);
    for guard in events.range(start..=end) {
        let (key, value) = guard.into_inner()?;
        let Some((_, seq)) = layout::parse_event_key(&key) else {
            return Err(StoreError::Corrupt("malformed event key".to_owned()));
        };
        let stored = codec::decode_event(&value)?;
        machine::apply(&mut snapshot, seq, stored.at, &stored.event);
    }
    Ok(snapshot)
}

/// Decodes every value of `keyspace`, in key order. Blocking.
pub(super) fn load_all<T>(
    keyspace: &Keyspace,
    decode: impl Fn(&[u8]) -> Result<T, codec::CodecError>,
) -> Result<Vec<T>, StoreError> {
    let mut all = Vec::with_capacity(keyspace.approximate_len());
    for guard in keyspace.range(layout::FIRST_RECORD..) {
        let (_, value) = guard.into_inner()?;
        all.push(decode(&value)?);
    }
    Ok(all)
}

pub(super) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| StoreError::Unavailable(format!("read task failed: {error}")))?
}
