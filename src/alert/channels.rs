//! The set of notification channels: read by handlers and monitor actors from a shared
//! map, changed only through [`Channels::create`] and [`Channels::delete`], which make
//! the change durable first.

use std::sync::Arc;

use dashmap::DashMap;

use crate::clock;
use crate::domain::channel::{Channel, ChannelEvent, ChannelKind};
use crate::domain::ids::ChannelId;
use crate::store::{EventStore, StoreError};

#[derive(Clone)]
pub struct Channels {
    map: Arc<DashMap<ChannelId, Channel>>,
    store: EventStore,
    /// Serialises creations and deletions so the log and the map agree on order.
    writes: Arc<tokio::sync::Mutex<()>>,
}

impl Channels {
    /// The channels as stored.
    pub fn new(store: EventStore, stored: Vec<Channel>) -> Self {
        let map = DashMap::with_capacity(stored.len());
        for channel in stored {
            map.insert(channel.id, channel);
        }
        Self {
            map: Arc::new(map),
            store,
            writes: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    pub fn contains(&self, id: ChannelId) -> bool {
        self.map.contains_key(&id)
    }

    pub fn get(&self, id: ChannelId) -> Option<Channel> {
        self.map.get(&id).map(|entry| entry.value().clone())
    }

    /// Every channel, in creation order.
    pub fn list(&self) -> Vec<Channel> {
        let mut channels: Vec<Channel> =
            self.map.iter().map(|entry| entry.value().clone()).collect();
        channels.sort_by_key(|channel| channel.id);
        channels
    }

    pub async fn create(&self, name: String, kind: ChannelKind) -> Result<Channel, StoreError> {
        let _guard = self.writes.lock().await;
        let channel = Channel {
            id: ChannelId::generate(),
            name,
            kind,
            created_at: clock::now(),
        };
        self.store
            .write_channel(
                channel.id,
                channel.created_at,
                ChannelEvent::Created(channel.clone()),
            )
            .await?;
        self.map.insert(channel.id, channel.clone());
        Ok(channel)
    }

    /// Deletes a channel; `false` if there was none.
    pub async fn delete(&self, id: ChannelId) -> Result<bool, StoreError> {
        let _guard = self.writes.lock().await;
        if !self.map.contains_key(&id) {
            return Ok(false);
        }
        self.store
            .write_channel(id, clock::now(), ChannelEvent::Deleted)
            .await?;
        self.map.remove(&id);
        Ok(true)
    }
}
