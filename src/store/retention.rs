//! Retention: each monitor keeps at most `max_heartbeats` heartbeats, none older than
//! `max_age`; every other event (state changes, alerts, configuration, deliveries) is
//! kept for as long as the monitor exists.
//!
//! A heartbeat the monitor's state still depends on is never pruned, so a full replay
//! of the pruned log still equals the snapshot (what `pushmon check` verifies): the
//! newest heartbeat (`last_heartbeat_at`, `last_msg`), the newest `up` one (the
//! timeout clock), the newest carrying a value (`last_value`), and each one that
//! took the monitor out of `pending` (`last_status_change_at`).
//!
//! Pruning deletes keys in plain (not fsynced) batches beside the writer: a prune lost
//! in a crash is simply done again by the next sweep. fjall's compaction reclaims
//! the space.

use std::time::Duration;

use fjall::Keyspace;

use super::{EventStore, StoreError, codec, layout};
use crate::domain::event::{Event, PushStatus};
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
    pub monitors: usize,
    pub deleted: usize,
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

    /// Applies `retention` to every monitor's history, while `keep_going` says so.
    /// Blocking; runs beside ingestion.
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
        let ids: Vec<MonitorId> = {
            let handles = self.shared.handles()?;
            let mut ids = Vec::with_capacity(handles.monitors.approximate_len());
            for guard in handles.monitors.range(layout::FIRST_RECORD..) {
                if let Some(id) = layout::parse_monitor_key(&guard.key()?) {
                    ids.push(id);
                }
            }
            ids
        };
        for id in ids {
            if !keep_going() {
                break;
            }
            swept.deleted += self.prune(id, retention, now)?;
            swept.monitors += 1;
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
        let handles = self.shared.handles()?;
        let doomed = doomed_heartbeats(&handles.events, monitor, retention, now)?;
        for chunk in doomed.chunks(DELETES_PER_BATCH) {
            let mut batch = handles.db.batch();
            for seq in chunk {
                batch.remove(&handles.events, layout::event_key(monitor, *seq));
            }
            batch.commit()?;
        }
        Ok(doomed.len())
    }
}

struct Seen {
    seq: u64,
    at: Timestamp,
    /// The state depends on it (see the module documentation).
    pinned: bool,
}

/// The sequence numbers of `monitor`'s heartbeats that retention drops.
fn doomed_heartbeats(
    events: &Keyspace,
    monitor: MonitorId,
    retention: Retention,
    now: Timestamp,
) -> Result<Vec<u64>, StoreError> {
    let start = layout::event_key(monitor, 0);
    let end = layout::event_key(monitor, u64::MAX);
    let mut heartbeats: Vec<Seen> = Vec::new();
    let mut pending = false;
    let (mut newest_up, mut newest_valued) = (None, None);
    for guard in events.range(start..=end) {
        let (key, value) = guard.into_inner()?;
        let Some((_, seq)) = layout::parse_event_key(&key) else {
            return Err(StoreError::Corrupt("malformed event key".to_owned()));
        };
        let stored = codec::decode_event(&value)?;
        match &stored.event {
            Event::HeartbeatReceived(heartbeat) => {
                let index = heartbeats.len();
                let up = heartbeat.status == PushStatus::Up;
                if up {
                    newest_up = Some(index);
                }
                if heartbeat.value.is_some() {
                    newest_valued = Some(index);
                }
                heartbeats.push(Seen {
                    seq,
                    at: stored.at,
                    pinned: up && pending,
                });
                if up {
                    pending = false;
                }
            }
            Event::Created { .. } | Event::Resumed => pending = true,
            Event::WentDown { .. } | Event::Recovered | Event::Paused => pending = false,
            _ => {}
        }
    }
    for index in [newest_up, newest_valued, heartbeats.len().checked_sub(1)]
        .into_iter()
        .flatten()
    {
        heartbeats[index].pinned = true;
    }
    let beyond_count = retention
        .max_heartbeats
        .map_or(0, |max| heartbeats.len().saturating_sub(max));
    let cutoff = retention.max_age.map(|age| {
        Timestamp::from_millis(
            now.as_millis()
                .saturating_sub(i64::try_from(age.as_millis()).unwrap_or(i64::MAX)),
        )
    });
    Ok(heartbeats
        .iter()
        .enumerate()
        .filter(|(index, seen)| {
            !seen.pinned && (*index < beyond_count || cutoff.is_some_and(|cut| seen.at < cut))
        })
        .map(|(_, seen)| seen.seq)
        .collect())
}
