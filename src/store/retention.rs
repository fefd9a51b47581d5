//! Retention: each monitor keeps at most `max_heartbeats` pings (heartbeats, and a
//! job's run starts, run ends and logs), none older than `max_age`; every other event
//! (state changes, alerts, configuration, deliveries) is kept for as long as the
//! monitor exists.
//!
//! A ping the monitor's state still depends on is never pruned, so a full replay of
//! the pruned log still equals the snapshot (what `pushmon check` verifies): the
//! newest heartbeat (`last_heartbeat_at`, `last_msg`), the newest `up` one (the
//! timeout clock, the last success, the failures counted since), the newest `down`
//! one (the successes counted since), the newest carrying a value (`last_value`),
//! each one that took the monitor out of `pending` (`last_status_change_at`), the
//! newest run end (`last_run`) and the start of each run still open, and for a fleet
//! the newest heartbeat of each instance it still keeps (`instances`). Nor is one that
//! an alert still owed depends on (its `msg`, `value` and run: the newest heartbeat,
//! the newest with a value and the newest run end before the alert), so the outbox
//! still replays from the log.
//!
//! A deleted monitor's history is removed whole by the first sweep after its deletion
//! is older than `max_age`, once the outbox owes none of its alerts; without an age
//! limit its heartbeats are limited by count like any monitor's. Leftovers of a
//! history (no `Created`: a removal cut short, or an outcome recorded after it) go at
//! the next sweep. Histories are removed oldest first, so a removal cut short leaves
//! a history without its `Created`, which no reader takes for a monitor.
//!
//! Pruning deletes keys in plain (not fsynced) batches beside the writer: a prune lost
//! in a crash is simply done again by the next sweep. fjall's compaction reclaims
//! the space.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::ops::Bound;
use std::time::Duration;

use fjall::Keyspace;

use super::{EventStore, Handles, StoreError, codec, layout};
use crate::domain::event::{Event, PushStatus, RunRef};
use crate::domain::ids::{MonitorId, Timestamp};

/// How much heartbeat history each monitor keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    /// Heartbeats kept per monitor; `None`: no limit by count.
    pub max_heartbeats: Option<usize>,
    /// Heartbeats older than this are dropped; `None`: no limit by age.
    pub max_age: Option<Duration>,
}

impl Default for Retention {
    /// 1,000 heartbeats (what the events API pages through), and 90 days.
    fn default() -> Self {
        Self {
            max_heartbeats: Some(1000),
            max_age: Some(Duration::from_secs(90 * 24 * 3600)),
        }
    }
}

impl Retention {
    pub fn is_unlimited(&self) -> bool {
        self.max_heartbeats.is_none() && self.max_age.is_none()
    }
}

/// What one sweep did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Swept {
    /// Live monitors swept.
    pub monitors: usize,
    /// Events removed: heartbeats, and the histories of deleted monitors.
    pub deleted: usize,
    /// Deleted monitors whose whole history was removed.
    pub removed_histories: usize,
}

/// The most deletes put in one batch.
const DELETES_PER_BATCH: usize = 4096;

impl EventStore {
    /// [`sweep`](Self::sweep) on a thread of its own at a lower CPU priority
    /// (`pushmon-sweep`), so a sweep through every monitor's history does not hold up
    /// acknowledgements.
    pub async fn sweep_in_background(
        &self,
        retention: Retention,
        now: Timestamp,
        keep_going: impl Fn() -> bool + Send + 'static,
    ) -> Result<Swept, StoreError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let store = self.clone();
        super::background::spawn_nice("pushmon-sweep", move || {
            let _ = reply.send(store.sweep(retention, now, keep_going));
        })
        .map_err(|error| StoreError::Unavailable(format!("cannot start a sweep: {error}")))?;
        answer.await.map_err(|_| {
            StoreError::Unavailable("the sweep thread ended without an answer".to_owned())
        })?
    }

    /// Applies `retention` to every monitor's history, deleted monitors' included,
    /// while `keep_going` says so. Blocking; runs beside ingestion.
    pub fn sweep(
        &self,
        retention: Retention,
        now: Timestamp,
        keep_going: impl Fn() -> bool,
    ) -> Result<Swept, StoreError> {
        let mut swept = Swept::default();
        if retention.is_unlimited() {
            return Ok(swept);
        }
        let owed = self.owed_alerts()?;
        let live: Vec<MonitorId> = {
            let handles = self.shared.handles()?;
            let mut ids = Vec::with_capacity(handles.monitors.approximate_len());
            for guard in handles.monitors.range(layout::FIRST_RECORD..) {
                if let Some(id) = layout::parse_monitor_key(&guard.key()?) {
                    ids.push(id);
                }
            }
            ids
        };
        let none = BTreeSet::new();
        for id in &live {
            if !keep_going() {
                return Ok(swept);
            }
            swept.deleted +=
                self.prune_owing(*id, retention, now, owed.get(id).unwrap_or(&none))?;
            swept.monitors += 1;
        }
        let live: HashSet<MonitorId> = live.into_iter().collect();
        for id in self.histories_beyond(&live)? {
            if !keep_going() {
                break;
            }
            // An alert still owed is replayed from the history: keep all of it.
            if owed.contains_key(&id) {
                continue;
            }
            match self.remove_deleted(id, retention, now)? {
                Removal::Whole(count) => {
                    swept.deleted += count;
                    swept.removed_histories += 1;
                }
                Removal::Heartbeats(count) => swept.deleted += count,
            }
        }
        Ok(swept)
    }

    /// Applies `retention` to one monitor's history; returns how many heartbeats went.
    /// Blocking.
    pub fn prune(
        &self,
        monitor: MonitorId,
        retention: Retention,
        now: Timestamp,
    ) -> Result<usize, StoreError> {
        let owed = self.owed_alerts()?.remove(&monitor).unwrap_or_default();
        self.prune_owing(monitor, retention, now, &owed)
    }

    fn prune_owing(
        &self,
        monitor: MonitorId,
        retention: Retention,
        now: Timestamp,
        owed: &BTreeSet<u64>,
    ) -> Result<usize, StoreError> {
        let handles = self.shared.handles()?;
        let doomed = doomed_heartbeats(&handles.events, monitor, retention, now, owed)?;
        remove_events(&handles, monitor, &doomed)?;
        Ok(doomed.len())
    }

    /// The sequence numbers of the alerts the outbox still owes, by monitor.
    fn owed_alerts(&self) -> Result<HashMap<MonitorId, BTreeSet<u64>>, StoreError> {
        let mut owed: HashMap<MonitorId, BTreeSet<u64>> = HashMap::new();
        for delivery in self.load_outbox()? {
            owed.entry(delivery.alert.monitor_id)
                .or_default()
                .insert(delivery.alert.alert_seq);
        }
        Ok(owed)
    }

    /// The monitors with events in the log but no state: deleted ones (and leftovers).
    /// One seek per monitor, past each history.
    fn histories_beyond(&self, live: &HashSet<MonitorId>) -> Result<Vec<MonitorId>, StoreError> {
        let handles = self.shared.handles()?;
        let mut found = Vec::new();
        let mut from: Bound<Vec<u8>> = Bound::Included(layout::FIRST_RECORD.to_vec());
        loop {
            let next = handles
                .events
                .range((from.clone(), Bound::Unbounded))
                .next();
            let Some(guard) = next else {
                return Ok(found);
            };
            let key = guard.key()?;
            let Some((id, _)) = layout::parse_event_key(&key) else {
                return Err(StoreError::Corrupt("malformed event key".to_owned()));
            };
            if !live.contains(&id) {
                found.push(id);
            }
            from = Bound::Excluded(layout::event_key(id, u64::MAX).to_vec());
        }
    }

    /// Removes what retention drops of the history of `monitor`, which has no state.
    fn remove_deleted(
        &self,
        monitor: MonitorId,
        retention: Retention,
        now: Timestamp,
    ) -> Result<Removal, StoreError> {
        let handles = self.shared.handles()?;
        let start = layout::event_key(monitor, 0);
        let end = layout::event_key(monitor, u64::MAX);
        let (mut seqs, mut created, mut deleted_at) = (Vec::new(), false, None);
        for guard in handles.events.range(start..=end) {
            let (key, value) = guard.into_inner()?;
            let Some((_, seq)) = layout::parse_event_key(&key) else {
                return Err(StoreError::Corrupt("malformed event key".to_owned()));
            };
            let stored = codec::decode_event(&value)?;
            match stored.event {
                Event::Created { .. } if seqs.is_empty() => created = true,
                Event::Deleted => deleted_at = Some(stored.at),
                _ => {}
            }
            seqs.push(seq);
        }
        let whole = match (created, deleted_at, cutoff(retention, now)) {
            // A leftover: nothing reads a history without its creation.
            (false, _, _) => true,
            (true, Some(deleted_at), Some(cutoff)) => deleted_at < cutoff,
            // Deleted, no age limit: its heartbeats are limited by count below.
            (true, Some(_), None) => false,
            // Created, never deleted, yet no state: a store that lost writes. Keep it
            // for the operator (`pushmon check` lists it).
            (true, None, _) => return Ok(Removal::Heartbeats(0)),
        };
        if whole {
            remove_events(&handles, monitor, &seqs)?;
            return Ok(Removal::Whole(seqs.len()));
        }
        let doomed = doomed_heartbeats(&handles.events, monitor, retention, now, &BTreeSet::new())?;
        remove_events(&handles, monitor, &doomed)?;
        Ok(Removal::Heartbeats(doomed.len()))
    }
}

/// What became of a deleted monitor's history.
enum Removal {
    Whole(usize),
    Heartbeats(usize),
}

/// Removes `monitor`'s events `seqs` (ascending), oldest first, in plain batches.
fn remove_events(handles: &Handles, monitor: MonitorId, seqs: &[u64]) -> Result<(), StoreError> {
    for chunk in seqs.chunks(DELETES_PER_BATCH) {
        let mut batch = handles.db.batch();
        for seq in chunk {
            batch.remove(&handles.events, layout::event_key(monitor, *seq));
        }
        batch.commit()?;
    }
    Ok(())
}

/// The moment before which `retention` drops heartbeats; `None` without an age limit.
fn cutoff(retention: Retention, now: Timestamp) -> Option<Timestamp> {
    retention.max_age.map(|age| {
        Timestamp::from_millis(
            now.as_millis()
                .saturating_sub(i64::try_from(age.as_millis()).unwrap_or(i64::MAX)),
        )
    })
}

struct Seen {
    seq: u64,
    at: Timestamp,
    /// The state depends on it (see the module documentation).
    pinned: bool,
}

/// The sequence numbers of `monitor`'s heartbeats that retention drops; `owed`: the
/// alerts of the monitor the outbox still owes.
fn doomed_heartbeats(
    events: &Keyspace,
    monitor: MonitorId,
    retention: Retention,
    now: Timestamp,
    owed: &BTreeSet<u64>,
) -> Result<Vec<u64>, StoreError> {
    let start = layout::event_key(monitor, 0);
    let end = layout::event_key(monitor, u64::MAX);
    let mut heartbeats: Vec<Seen> = Vec::new();
    let mut pending = false;
    let (mut newest_up, mut newest_down, mut newest_valued) = (None, None, None);
    let (mut newest_heartbeat, mut newest_end) = (None, None);
    // The runs open so far, by the run each names, with the index of their start.
    let mut open: HashMap<RunRef, usize> = HashMap::new();
    // A fleet's instances kept so far, with the index of each one's newest heartbeat.
    let mut fleet = false;
    let mut instances: HashMap<String, usize> = HashMap::new();
    for guard in events.range(start..=end) {
        let (key, value) = guard.into_inner()?;
        let Some((_, seq)) = layout::parse_event_key(&key) else {
            return Err(StoreError::Corrupt("malformed event key".to_owned()));
        };
        let stored = codec::decode_event(&value)?;
        let index = heartbeats.len();
        let mut pinned = false;
        match &stored.event {
            Event::HeartbeatReceived(heartbeat) => {
                let up = heartbeat.status == PushStatus::Up;
                if up {
                    newest_up = Some(index);
                } else {
                    newest_down = Some(index);
                }
                if heartbeat.value.is_some() {
                    newest_valued = Some(index);
                }
                newest_heartbeat = Some(index);
                if fleet {
                    let name = heartbeat
                        .instance
                        .as_ref()
                        .map_or(crate::domain::machine::DEFAULT_INSTANCE, |name| {
                            name.as_str()
                        });
                    instances.insert(name.to_owned(), index);
                }
                pinned = up && pending;
                if up {
                    pending = false;
                }
            }
            Event::RunStarted(run) => {
                if let Some(dropped) = &run.dropped {
                    open.remove(dropped);
                }
                let started = RunRef {
                    rid: run.rid,
                    started_at: stored.at,
                };
                open.insert(started, index);
            }
            Event::RunEnded(run) => {
                if let Some(closed) = &run.run {
                    open.remove(closed);
                }
                newest_end = Some(index);
            }
            Event::Created { config, .. } | Event::Updated { config } => {
                pending |= matches!(stored.event, Event::Created { .. });
                fleet = config.min_instances.is_some();
                if !fleet {
                    instances.clear();
                }
            }
            Event::InstanceForgotten { instance } => {
                instances.remove(instance.as_str());
            }
            Event::Resumed => pending = true,
            Event::WentDown { .. } | Event::Recovered | Event::Paused => pending = false,
            _ => {}
        }
        if stored.event.is_ping() {
            heartbeats.push(Seen {
                seq,
                at: stored.at,
                pinned,
            });
        }
        if owed.contains(&seq) {
            // The owed alert carries the newest heartbeat's msg, the newest value and
            // the newest run's end.
            for index in [newest_heartbeat, newest_valued, newest_end]
                .into_iter()
                .flatten()
            {
                heartbeats[index].pinned = true;
            }
        }
    }
    for index in [
        newest_up,
        newest_down,
        newest_valued,
        newest_heartbeat,
        newest_end,
    ]
    .into_iter()
    .flatten()
    .chain(open.into_values())
    .chain(instances.into_values())
    {
        heartbeats[index].pinned = true;
    }
    let beyond_count = retention
        .max_heartbeats
        .map_or(0, |max| heartbeats.len().saturating_sub(max));
    let cutoff = cutoff(retention, now);
    Ok(heartbeats
        .iter()
        .enumerate()
        .filter(|(index, seen)| {
            !seen.pinned && (*index < beyond_count || cutoff.is_some_and(|cut| seen.at < cut))
        })
        .map(|(_, seen)| seen.seq)
        .collect())
}
