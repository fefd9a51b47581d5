//! The writes of API keys, badges and status pages through the event log
//! (`cluster/event_log.rs`). On a single node each is written durably to the store,
//! then kept in memory (the key ring's or the publications' own code, under their
//! lock). In the clustered mode (`--cluster-nats`) each is a cluster-wide record in
//! one shard's log (`domain::fence::CLUSTER_WIDE_SHARD`), published by the pod that
//! took the API call and applied by every pod's fold, this one's too, which answers
//! once its own fold applied the change (read your writes). Before the pod has
//! joined, changes answer 503.

use std::future::Future;
use std::sync::Arc;

use crate::cluster::event_log::{Replication, Write};
use crate::domain::fence::ShardRecord;
use crate::store::{ApiKeyChange, EventStore, PublicationChange, StoreError};

/// A cluster-wide change.
#[derive(Clone, Debug)]
pub enum SettingChange {
    ApiKey(ApiKeyChange),
    Publication(PublicationChange),
}

/// A change of an API key, a badge or a status page: `locally` makes it on a single
/// node (stores it durably, then changes the memory); clustered, `change` is
/// published and, once this pod's fold applied it, `folded` says what the caller
/// hears.
pub struct SettingWrite<Local, Folded> {
    pub change: SettingChange,
    pub locally: Local,
    pub folded: Folded,
}

impl<Local, Made, Folded, T, E> Write for SettingWrite<Local, Folded>
where
    Local: FnOnce() -> Made + Send,
    Made: Future<Output = Result<T, E>> + Send,
    Folded: FnOnce() -> Result<T, E> + Send,
    T: Send,
    E: From<StoreError> + Send,
{
    type Output = Result<T, E>;

    async fn to_store(self, _: &EventStore) -> Self::Output {
        (self.locally)().await
    }

    async fn to_shards(self, shards: &Arc<dyn Replication>) -> Self::Output {
        let record = setting_record(&self.change).map_err(StoreError::Unavailable)?;
        shards
            .publish_applied(record)
            .await
            .map_err(StoreError::Unavailable)?;
        (self.folded)()
    }

    fn not_joined(self) -> Self::Output {
        Err(StoreError::Unavailable("not joined the cluster yet".to_owned()).into())
    }
}

/// The cluster-wide record of `change`.
fn setting_record(change: &SettingChange) -> Result<ShardRecord, String> {
    Ok(match change {
        SettingChange::ApiKey(key) => ShardRecord::ApiKey {
            key: match key {
                ApiKeyChange::Created(key) => *key.id.as_bytes(),
                ApiKeyChange::Revoked(id) => *id.as_bytes(),
            },
            event: crate::store::api_keys::encode_event(key).map_err(|error| error.to_string())?,
        },
        SettingChange::Publication(publication) => ShardRecord::Publication {
            publication: match publication {
                PublicationChange::Put(crate::domain::publication::Publication::Badge(badge)) => {
                    *badge.id.as_bytes()
                }
                PublicationChange::Put(crate::domain::publication::Publication::StatusPage(
                    page,
                )) => *page.id.as_bytes(),
                PublicationChange::Removed(id) => *id,
            },
            event: crate::store::publications::encode_event(publication)
                .map_err(|error| error.to_string())?,
        },
    })
}
