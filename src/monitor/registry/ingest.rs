//! Bulk ingestion (`POST /api/push`): many monitors' heartbeats from one request,
//! written in one batch (one commit, one `fdatasync`) and answered once durable.
//!
//! Each monitor named gets one message with its heartbeats in order
//! (`MonitorMsg::Ingest`); its actor decides them and hands back the append that
//! records them (`actor::ingest`). Once every actor has answered, the registry hands
//! all the appends to the writer as one group (`EventStore::append_group`), then
//! awaits each monitor's outcome. Unlike a bulk change it is not all or none: each
//! monitor's append is answered on its own (one being rebuilt is refused, the others
//! are written), as if each had been pushed alone, but in one batch.

use std::sync::atomic::Ordering;

use tokio::sync::oneshot;

use crate::domain::event::Heartbeat;
use crate::domain::ids::MonitorId;

use super::super::directory::MonitorHandle;
use super::super::messages::{IngestPart, MonitorMsg};
use super::{Registry, RegistryError};

impl Registry {
    /// Delivers each monitor's heartbeats (a monitor at most once in `parts`) and
    /// answers, in the order of `parts`, whether each monitor's are durable. Runs to
    /// its end in a task of its own, so a caller that goes away cannot leave
    /// heartbeats that actors applied unwritten.
    pub async fn ingest(
        &self,
        parts: Vec<(MonitorHandle, Vec<Heartbeat>)>,
    ) -> Vec<Result<(), RegistryError>> {
        let count = parts.len();
        let registry = self.clone();
        match tokio::spawn(async move { registry.ingest_inline(parts).await }).await {
            Ok(outcomes) => outcomes,
            Err(_) => (0..count)
                .map(|_| Err(RegistryError::Unavailable))
                .collect(),
        }
    }

    async fn ingest_inline(
        &self,
        parts: Vec<(MonitorHandle, Vec<Heartbeat>)>,
    ) -> Vec<Result<(), RegistryError>> {
        let count = parts.len() as i64;
        self.pending.fetch_add(count, Ordering::Relaxed);
        let mut asked = Vec::with_capacity(parts.len());
        {
            // Cast in one go (see `Registry::cast_order`); nothing in the loop awaits.
            let _order = self.cast_order();
            for (monitor, heartbeats) in parts {
                let (staged, staged_answer) = oneshot::channel();
                let (reply, answer) = oneshot::channel();
                let part = IngestPart {
                    heartbeats,
                    staged,
                    reply,
                };
                let sent = monitor.actor.cast(MonitorMsg::Ingest(Box::new(part)));
                asked.push((monitor.id, sent.ok().map(|()| (staged_answer, answer))));
            }
        }
        let mut group = Vec::with_capacity(asked.len());
        for (_, answers) in &mut asked {
            if let Some((staged_answer, _)) = answers {
                // An actor that stopped first drops its part: its answer says so below.
                if let Ok(Some(append)) = staged_answer.await {
                    group.push(append);
                }
            }
        }
        self.store.append_group(group);
        let mut outcomes = Vec::with_capacity(asked.len());
        for (id, answers) in asked {
            outcomes.push(self.ingested(id, answers.map(|(_, answer)| answer)).await);
        }
        self.pending.fetch_sub(count, Ordering::Relaxed);
        outcomes
    }

    async fn ingested(
        &self,
        id: MonitorId,
        answer: Option<oneshot::Receiver<Result<(), crate::store::StoreError>>>,
    ) -> Result<(), RegistryError> {
        let Some(answer) = answer else {
            return Err(self.gone_or_restarting(id));
        };
        match answer.await {
            Ok(outcome) => Ok(outcome?),
            Err(_) => Err(self.gone_or_restarting(id)),
        }
    }

    /// The lock bulk changes and bulk ingestions cast their parts under.
    pub(super) fn cast_order(&self) -> std::sync::MutexGuard<'_, ()> {
        self.cast_order
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
