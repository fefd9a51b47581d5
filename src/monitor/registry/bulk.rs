//! Bulk changes (`POST /api/monitors/bulk`): one change to many monitors, recorded as
//! one write batch (one commit, one `fdatasync`), all of it or none.
//!
//! Each selected monitor's actor decides the change on its own state and answers with
//! the append it would make, then holds; the registry hands every append to the writer
//! as one request, which the writer commits in one batch; then it tells each actor
//! whether to adopt its new state. Nothing is seen before it is durable: an actor
//! applies its change only once told the batch is written.

use std::sync::Arc;

use tokio::sync::oneshot;

use crate::cluster::event_log::{EventLog, Write};
use crate::domain::ids::MonitorId;
use crate::store::{Append, EventStore, StoreError};

use super::super::messages::{BulkChange, BulkDecision, BulkPrepared, MonitorMsg};
use super::{Registry, RegistryError, Replication};

/// The most monitors one bulk change may select.
pub const MAX_BULK_MONITORS: usize = 10_000;

/// One selected monitor in a bulk change's answer.
#[derive(Debug)]
pub struct BulkOutcome {
    pub id: MonitorId,
    pub name: String,
    /// The kinds of the events recorded (or, in a dry run, that would be).
    pub kinds: Vec<&'static str>,
}

impl Registry {
    /// Applies `change` to each of `ids` (those deleted meanwhile are left out) as one
    /// atomic write; a dry run decides only, and writes nothing. Runs to its end in a
    /// task of its own, so a caller that goes away cannot leave actors undecided.
    pub async fn bulk(
        &self,
        ids: Vec<MonitorId>,
        change: BulkChange,
        dry_run: bool,
    ) -> Result<Vec<BulkOutcome>, RegistryError> {
        let registry = self.clone();
        tokio::spawn(async move { registry.bulk_inline(ids, change, dry_run).await })
            .await
            .map_err(|_| RegistryError::Unavailable)?
    }

    async fn bulk_inline(
        &self,
        ids: Vec<MonitorId>,
        change: BulkChange,
        dry_run: bool,
    ) -> Result<Vec<BulkOutcome>, RegistryError> {
        let _gate = self.channels_checked(change.named_channels()).await?;
        let mut asked = Vec::with_capacity(ids.len());
        let mut failure = None;
        // Cast in one go (see `Registry::cast_order`); nothing in the loop awaits.
        let order = self.cast_order();
        for id in ids {
            let Some(actor) = self.directory.by_id(id) else {
                continue;
            };
            let (reply, answer) = oneshot::channel();
            if actor
                .cast(MonitorMsg::Bulk(Box::new(change.clone()), reply))
                .is_err()
            {
                // The actors asked so far are still answered (abandoned) below.
                failure = Some(self.gone_or_restarting(id));
                break;
            }
            asked.push((id, answer));
        }
        drop(order);
        let mut prepared: Vec<(MonitorId, BulkPrepared)> = Vec::with_capacity(asked.len());
        for (id, answer) in asked {
            // Every answer is awaited, so that each holding actor hears an outcome.
            match answer.await {
                Ok(Ok(answer)) => prepared.push((id, answer)),
                Ok(Err(error)) => {
                    failure.get_or_insert(RegistryError::from(error));
                }
                Err(_) => match self.gone_or_restarting(id) {
                    RegistryError::NotFound => {}
                    error => {
                        failure.get_or_insert(error);
                    }
                },
            }
        }
        if let Some(error) = failure {
            abandon(&mut prepared);
            return Err(error);
        }
        if dry_run {
            abandon(&mut prepared);
            return Ok(outcomes(prepared));
        }
        self.log.write(BulkWrite { prepared }).await
    }
}

/// A bulk change's write, once every selected actor decided its part and holds:
/// single node, every part appended as one request (one batch, one `fdatasync`, all
/// or none), then each actor told to adopt its part or keep its state; clustered,
/// each part a config record.
struct BulkWrite {
    prepared: Vec<(MonitorId, BulkPrepared)>,
}

impl Write for BulkWrite {
    type Output = Result<Vec<BulkOutcome>, RegistryError>;

    async fn to_store(self, store: &EventStore) -> Self::Output {
        let mut prepared = self.prepared;
        let appends: Vec<Append> = prepared
            .iter_mut()
            .filter_map(|(_, answer)| answer.append.take())
            .collect();
        if appends.is_empty() {
            return Ok(outcomes(prepared));
        }
        let written = match store.append_all(appends).await {
            Ok(written) => written,
            Err(error) => {
                // Never queued: nothing was written.
                abandon(&mut prepared);
                return Err(error.into());
            }
        };
        let mut written = written.into_iter();
        let mut failed: Option<StoreError> = None;
        for (_, answer) in &mut prepared {
            let Some(decision) = answer.decision.take() else {
                continue;
            };
            let decided = match written.next() {
                Some(Ok(appended)) => BulkDecision::Written(appended),
                Some(Err(error)) => {
                    failed.get_or_insert(error);
                    BulkDecision::Abandoned
                }
                None => BulkDecision::Abandoned,
            };
            let _ = decision.send(decided);
        }
        match failed {
            Some(error) => Err(error.into()),
            None => Ok(outcomes(prepared)),
        }
    }

    /// Each monitor's part, decided by its actor on this pod, published as a config
    /// record in its monitor's shard (all at once; the shards' publishers batch them),
    /// as a single change is; nothing is written here on the way. Answered once this
    /// pod's fold applied every part; every pod's fold has each actor adopt its part.
    /// The parts are in several shards' logs, so the change is atomic per monitor, not
    /// as a whole: if a part is not acknowledged the answer is 503, and the parts that
    /// were stay (docs/cluster.md).
    async fn to_shards(self, publisher: &Arc<dyn Replication>) -> Self::Output {
        let mut prepared = self.prepared;
        let parts: Vec<(MonitorId, Vec<crate::domain::event::Stamped>)> = prepared
            .iter_mut()
            .filter_map(|(id, answer)| answer.append.take().map(|append| (*id, append.events)))
            .collect();
        // The actors adopt their parts from the fold, not from here.
        abandon(&mut prepared);
        let published = parts.into_iter().map(|(id, events)| {
            let publisher = Arc::clone(publisher);
            async move {
                let event = crate::store::codec::encode_decided(&events)
                    .map_err(|error| RegistryError::Store(StoreError::from(error)))?;
                let sequence = publisher
                    .publish(crate::domain::fence::ShardRecord::Config { monitor: id, event })
                    .await
                    .map_err(|error| {
                        tracing::warn!(monitor = %id, %error, "a bulk change's part was not acknowledged by its shard");
                        RegistryError::Unavailable
                    })?;
                if publisher.applied(id, sequence).await {
                    Ok(())
                } else {
                    Err(RegistryError::Unavailable)
                }
            }
        });
        futures_util::future::join_all(published)
            .await
            .into_iter()
            .collect::<Result<Vec<()>, _>>()?;
        Ok(outcomes(prepared))
    }

    fn not_joined(self) -> Self::Output {
        let mut prepared = self.prepared;
        abandon(&mut prepared);
        Err(RegistryError::Unavailable)
    }
}

/// Tells every holding actor that nothing was written.
fn abandon(prepared: &mut [(MonitorId, BulkPrepared)]) {
    for (_, answer) in prepared {
        answer.append = None;
        if let Some(decision) = answer.decision.take() {
            let _ = decision.send(BulkDecision::Abandoned);
        }
    }
}

fn outcomes(prepared: Vec<(MonitorId, BulkPrepared)>) -> Vec<BulkOutcome> {
    prepared
        .into_iter()
        .map(|(id, answer)| BulkOutcome {
            id,
            name: answer.name,
            kinds: answer.kinds,
        })
        .collect()
}
