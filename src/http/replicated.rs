//! API keys, badges and status pages in the clustered mode (`--cluster-nats`): their
//! changes are cluster-wide records in one shard's log
//! (`domain::fence::CLUSTER_WIDE_SHARD`), published by the pod that took the API
//! call and applied by every pod's fold, this one's too, which answers once its own
//! fold applied the change (read your writes). Before the pod has joined, changes
//! answer 503.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::cluster::slot::PublisherSlot;

use crate::store::{ApiKeyChange, PublicationChange, StoreError};

/// A cluster-wide change.
#[derive(Clone, Debug)]
pub enum SettingChange {
    ApiKey(ApiKeyChange),
    Publication(PublicationChange),
}

/// The clustered mode's publisher of cluster-wide changes (`app/cluster/engine.rs`):
/// `Ok` once the record is acknowledged and this pod's fold has applied it.
pub trait SettingReplication: Send + Sync + 'static {
    fn publish_setting(
        &self,
        change: SettingChange,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'static>>;
}

/// Whether the API keys and publications change through the shard logs, and the
/// publisher once joined; shared by the key ring and the publications.
#[derive(Default)]
pub struct SettingSlot(PublisherSlot<dyn SettingReplication>);

impl SettingSlot {
    pub fn set_clustered(&self) {
        self.0.set_clustered();
    }

    pub fn set_replication(&self, publisher: Arc<dyn SettingReplication>) {
        self.0.set(publisher);
    }

    /// `None` single-node; clustered, publishes `change` and waits until this pod's
    /// fold applied it (503 before the pod joined or without an acknowledgement).
    pub async fn publish(&self, change: SettingChange) -> Option<Result<(), StoreError>> {
        let Some(publisher) = self.0.get()? else {
            return Some(Err(StoreError::Unavailable(
                "not joined the cluster yet".to_owned(),
            )));
        };
        Some(
            publisher
                .publish_setting(change)
                .await
                .map_err(StoreError::Unavailable),
        )
    }
}
