//! The reads behind uptime, incidents, heartbeat strips and charts: one monitor's log
//! read backwards from its newest event, as far as the question needs. What the
//! events mean is `domain::timeline`'s business; this file only decides how far back
//! to read.
//!
//! Every change of state is kept by retention, so the transitions read here are
//! complete; heartbeats are only the retained ones (`retention.rs`).

use std::ops::ControlFlow;
use std::sync::Arc;

use crate::domain::event::Event;
use crate::domain::ids::{MonitorId, Timestamp};
use crate::domain::machine::Status;
use crate::domain::timeline::{Beat, Transition, beat_of, run_seconds_of, transition_of, value_of};

use super::read::blocking;
use super::{EventStore, Shared, StoreError, codec, layout};

/// What [`EventStore::timeline`] read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Timeline {
    /// Every change of state since `since`, and the last one before it (the state the
    /// window starts in), oldest first.
    pub transitions: Vec<Transition>,
    /// The newest marks of the heartbeat strip, oldest first, with when they happened.
    pub beats: Vec<(Timestamp, Beat)>,
}

/// The most events one read of values decodes, however few carry a value.
const MAX_VALUE_SCAN: usize = 20_000;

impl EventStore {
    /// `monitor`'s transitions since `since` (and the one before), and its newest
    /// `beats` strip marks.
    pub async fn timeline(
        &self,
        monitor: MonitorId,
        since: Timestamp,
        beats: usize,
    ) -> Result<Timeline, StoreError> {
        let shared = Arc::clone(&self.shared);
        blocking(move || read_timeline(&shared, monitor, since, beats)).await
    }

    /// The timelines of several monitors, in one blocking task (a dashboard page).
    pub async fn timelines(
        &self,
        monitors: Vec<MonitorId>,
        since: Timestamp,
        beats: usize,
    ) -> Result<Vec<Timeline>, StoreError> {
        let shared = Arc::clone(&self.shared);
        blocking(move || {
            monitors
                .into_iter()
                .map(|monitor| read_timeline(&shared, monitor, since, beats))
                .collect()
        })
        .await
    }

    /// Enough of `monitor`'s transitions, oldest first, to tell its `limit` newest
    /// incidents that started before the event `before` (all, without it): back to the
    /// change of state before the oldest of them.
    pub async fn incident_transitions(
        &self,
        monitor: MonitorId,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<Transition>, StoreError> {
        let shared = Arc::clone(&self.shared);
        blocking(move || {
            let mut transitions = Vec::new();
            // Incidents whose start has been read: a down (before `before`) with an
            // older change of state that is not a down.
            let mut started = 0usize;
            let mut newer_is_a_down = false;
            scan_back(&shared, monitor, |seq, at, event| {
                let Some((to, reason)) = transition_of(event) else {
                    return ControlFlow::Continue(());
                };
                if to != Status::Down && newer_is_a_down {
                    started += 1;
                }
                transitions.push(Transition {
                    seq,
                    at,
                    to,
                    reason,
                });
                newer_is_a_down = to == Status::Down && before.is_none_or(|before| seq < before);
                if started >= limit {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            })?;
            transitions.reverse();
            Ok(transitions)
        })
        .await
    }

    /// The newest `limit` values `monitor`'s heartbeats reported, oldest first.
    pub async fn values(
        &self,
        monitor: MonitorId,
        limit: usize,
    ) -> Result<Vec<(Timestamp, f64)>, StoreError> {
        self.points(monitor, limit, |event, _| value_of(event))
            .await
    }

    /// The durations, in seconds, of `monitor`'s newest `limit` runs whose start was
    /// reported, oldest first.
    pub async fn run_durations(
        &self,
        monitor: MonitorId,
        limit: usize,
    ) -> Result<Vec<(Timestamp, f64)>, StoreError> {
        self.points(monitor, limit, run_seconds_of).await
    }

    /// The newest `limit` numbers `point` finds in `monitor`'s events, oldest first.
    async fn points(
        &self,
        monitor: MonitorId,
        limit: usize,
        point: fn(&Event, Timestamp) -> Option<f64>,
    ) -> Result<Vec<(Timestamp, f64)>, StoreError> {
        let shared = Arc::clone(&self.shared);
        blocking(move || {
            let mut values = Vec::with_capacity(limit.min(1024));
            let mut scanned = 0usize;
            scan_back(&shared, monitor, |_, at, event| {
                scanned += 1;
                if let Some(value) = point(event, at) {
                    values.push((at, value));
                }
                if values.len() >= limit || scanned >= MAX_VALUE_SCAN {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            })?;
            values.reverse();
            Ok(values)
        })
        .await
    }
}

fn read_timeline(
    shared: &Shared,
    monitor: MonitorId,
    since: Timestamp,
    beats: usize,
) -> Result<Timeline, StoreError> {
    let mut timeline = Timeline::default();
    let mut window_start_known = false;
    scan_back(shared, monitor, |seq, at, event| {
        if timeline.beats.len() < beats
            && let Some(beat) = beat_of(event)
        {
            timeline.beats.push((at, beat));
        }
        if !window_start_known && let Some((to, reason)) = transition_of(event) {
            timeline.transitions.push(Transition {
                seq,
                at,
                to,
                reason,
            });
            window_start_known = at < since;
        }
        if window_start_known && timeline.beats.len() >= beats {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })?;
    timeline.transitions.reverse();
    timeline.beats.reverse();
    Ok(timeline)
}

/// Calls `visit` with `monitor`'s events, newest first, until it breaks. Blocking.
fn scan_back(
    shared: &Shared,
    monitor: MonitorId,
    mut visit: impl FnMut(u64, Timestamp, &Event) -> ControlFlow<()>,
) -> Result<(), StoreError> {
    let handles = shared.handles()?;
    let start = layout::event_key(monitor, 0);
    let end = layout::event_key(monitor, u64::MAX);
    for guard in handles.events.range(start..=end).rev() {
        let (key, value) = guard.into_inner()?;
        let Some((_, seq)) = layout::parse_event_key(&key) else {
            return Err(StoreError::Corrupt("malformed event key".to_owned()));
        };
        let stored = codec::decode_event(&value)?;
        if visit(seq, stored.at, &stored.event).is_break() {
            break;
        }
    }
    Ok(())
}
