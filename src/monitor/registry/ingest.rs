//! Bulk ingestion (`POST /api/push`): many monitors' heartbeats from one request,
//! written in one batch (one commit, one `fdatasync`) and answered once durable.
//!
//! Every item is appended as a single push is (`Registry::heartbeat`): no actor is on
//! the way, and the writer hands each durable heartbeat to its monitor's actor, which
//! decides what it causes. All of them go to the writer as one request
//! (`EventStore::append_heartbeats`), so they share one batch; each is answered on its
//! own (a monitor being rebuilt or deleted meanwhile is refused, the others are
//! written), as if each had been pushed alone; a monitor whose state an item may
//! change is answered once its actor has applied them (`Registry::applied`).

use std::sync::Arc;

use crate::cluster::event_log::{EventLog, Write};
use crate::domain::event::Heartbeat;
use crate::domain::ids::Timestamp;
use crate::store::{EventStore, StoreError};

use super::super::directory::MonitorHandle;
use super::{Registry, RegistryError, Replication};

impl Registry {
    /// Appends each monitor's heartbeats (a monitor at most once in `parts`, its
    /// heartbeats in order) in one batch and answers, in the order of `parts`,
    /// whether each monitor's are durable.
    pub async fn ingest(
        &self,
        parts: Vec<(MonitorHandle, Vec<Heartbeat>)>,
    ) -> Vec<Result<(), RegistryError>> {
        let now = self.clock.now();
        self.log
            .write(Ingest {
                registry: self,
                parts,
                now,
            })
            .await
    }

    /// The lock bulk changes cast their parts under.
    pub(super) fn cast_order(&self) -> std::sync::MutexGuard<'_, ()> {
        self.cast_order
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A bulk push: single node, every item appended in one batch by the store's
/// writer; clustered, each item a heartbeat record.
struct Ingest<'a> {
    registry: &'a Registry,
    parts: Vec<(MonitorHandle, Vec<Heartbeat>)>,
    now: Timestamp,
}

impl Write for Ingest<'_> {
    type Output = Vec<Result<(), RegistryError>>;

    async fn to_store(self, store: &EventStore) -> Self::Output {
        let Self {
            registry,
            parts,
            now,
        } = self;
        let mut counts = Vec::with_capacity(parts.len());
        let mut heartbeats = Vec::new();
        // The monitors whose state an item may change: answered once their actors
        // applied them, as a single push is.
        let mut changing = Vec::new();
        for (monitor, items) in parts {
            counts.push(items.len());
            if items
                .iter()
                .any(|heartbeat| registry.directory.may_change(monitor.id, heartbeat.status))
            {
                changing.push(monitor.clone());
            }
            heartbeats.extend(
                items
                    .into_iter()
                    .map(|heartbeat| (monitor.id, now, heartbeat)),
            );
        }
        let answers = store.append_heartbeats(heartbeats).await;
        for monitor in &changing {
            registry.applied(monitor).await;
        }
        let mut answers = answers.into_iter();
        counts
            .into_iter()
            .map(|count| {
                let mut outcome = Ok(());
                for answer in answers.by_ref().take(count) {
                    if outcome.is_ok() {
                        outcome = match answer {
                            Ok(_) => Ok(()),
                            Err(StoreError::Deleted) => Err(RegistryError::NotFound),
                            Err(error) => Err(error.into()),
                        };
                    }
                }
                outcome
            })
            .collect()
    }

    /// Each item published as a single push is, all at once (the shards' publishers
    /// batch them), each monitor answered on its own.
    async fn to_shards(self, publisher: &Arc<dyn Replication>) -> Self::Output {
        let Self { parts, now, .. } = self;
        let monitors = parts.into_iter().map(|(monitor, items)| {
            let publisher = Arc::clone(publisher);
            async move {
                let published =
                    futures_util::future::join_all(items.into_iter().map(|heartbeat| {
                        Registry::publish_heartbeat(&*publisher, monitor.id, now, heartbeat)
                    }))
                    .await;
                published
                    .into_iter()
                    .collect::<Result<Vec<()>, _>>()
                    .map(|_| ())
            }
        });
        futures_util::future::join_all(monitors).await
    }

    fn not_joined(self) -> Self::Output {
        self.parts
            .iter()
            .map(|_| Err(RegistryError::Unavailable))
            .collect()
    }
}
