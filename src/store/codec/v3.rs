use serde::Deserialize;

use crate::domain::channel::{self, ChannelKind, SendOn};
use crate::domain::ids::{ChannelId, Timestamp};

#[derive(Deserialize)]
pub struct Channel {
    pub id: ChannelId,
    pub name: String,
    pub kind: ChannelKind,
    pub created_at: Timestamp,
    pub key: Option<String>,
}

impl Channel {
    pub fn upcast(self) -> channel::Channel {
        channel::Channel {
            id: self.id,
            name: self.name,
            kind: self.kind,
            created_at: self.created_at,
            key: self.key,
            send_on: SendOn::Both,
        }
    }
}

#[derive(Deserialize)]
pub enum ChannelEvent {
    Created(Channel),
    Deleted,
    Updated(Channel),
}

#[derive(Deserialize)]
pub struct StoredChannelEvent {
    pub at: Timestamp,
    pub event: ChannelEvent,
}

impl StoredChannelEvent {
    pub fn upcast(self) -> super::StoredChannelEvent {
        super::StoredChannelEvent {
            at: self.at,
            event: match self.event {
                ChannelEvent::Created(channel) => channel::ChannelEvent::Created(channel.upcast()),
                ChannelEvent::Deleted => channel::ChannelEvent::Deleted,
                ChannelEvent::Updated(channel) => channel::ChannelEvent::Updated(channel.upcast()),
            },
        }
    }
}
