//! The set of notification channels: read by handlers and monitor actors from a shared
//! map, changed only through [`Channels::create`], [`Channels::update`] and
//! [`Channels::delete`], which make the change durable first.

use std::sync::Arc;

use dashmap::DashMap;

use serde_json::{Map, Value};

use super::email;
use crate::clock::Clock;
use crate::domain::channel::{Channel, ChannelEvent, ChannelKind};
use crate::domain::ids::ChannelId;
use crate::store::{EventStore, StoreError};

#[derive(Clone)]
pub struct Channels {
    map: Arc<DashMap<ChannelId, Channel>>,
    store: EventStore,
    /// Serialises changes so the log and the map agree on their order.
    writes: Arc<tokio::sync::Mutex<()>>,
    clock: Clock,
}

impl Channels {
    /// The channels as stored; changes are stamped by `clock`.
    pub fn new(store: EventStore, stored: Vec<Channel>, clock: Clock) -> Self {
        let map = DashMap::with_capacity(stored.len());
        for channel in stored {
            map.insert(channel.id, channel);
        }
        Self {
            map: Arc::new(map),
            store,
            writes: Arc::new(tokio::sync::Mutex::new(())),
            clock,
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

    pub async fn create(
        &self,
        name: String,
        kind: ChannelKind,
        key: Option<String>,
    ) -> Result<Channel, StoreError> {
        let _guard = self.writes.lock().await;
        let now = self.clock.now();
        let channel = Channel {
            id: ChannelId::generate(now),
            name,
            kind,
            created_at: now,
            key,
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

    /// Changes a channel's name and settings; `None` if there is no such channel.
    pub async fn update(
        &self,
        id: ChannelId,
        name: String,
        kind: ChannelKind,
    ) -> Result<Option<Channel>, StoreError> {
        let _guard = self.writes.lock().await;
        let Some(mut channel) = self.get(id) else {
            return Ok(None);
        };
        channel.name = name;
        channel.kind = kind;
        self.store
            .write_channel(id, self.clock.now(), ChannelEvent::Updated(channel.clone()))
            .await?;
        self.map.insert(id, channel.clone());
        Ok(Some(channel))
    }

    /// Deletes a channel; `false` if there was none. Monitors listing it are left as
    /// they are: delete through `monitor::Registry::delete_channel`, which sweeps them.
    pub async fn delete(&self, id: ChannelId) -> Result<bool, StoreError> {
        let _guard = self.writes.lock().await;
        if !self.map.contains_key(&id) {
            return Ok(false);
        }
        self.store
            .write_channel(id, self.clock.now(), ChannelEvent::Deleted)
            .await?;
        self.map.remove(&id);
        Ok(true)
    }
}

/// Reads a channel's kind and settings from JSON-like fields (the API body or a
/// monitors-file entry); the error names the field.
pub fn kind_from_fields(fields: &Map<String, Value>) -> Result<ChannelKind, String> {
    let kind = match fields.get("kind") {
        None => return Err("kind is required".to_owned()),
        Some(Value::String(kind)) => kind.as_str(),
        Some(_) => return Err(KIND_ERROR.to_owned()),
    };
    match kind {
        "webhook" => Ok(ChannelKind::Webhook {
            url: http_url(fields)?,
            secret: optional_string(fields, "secret")?,
        }),
        "slack" => Ok(ChannelKind::Slack {
            url: http_url(fields)?,
        }),
        "discord" => Ok(ChannelKind::Discord {
            url: http_url(fields)?,
        }),
        "alertmanager" => Ok(ChannelKind::Alertmanager {
            url: http_url(fields)?,
        }),
        "email" => {
            let smtp_url = required_string(fields, "smtp_url")?;
            email::check_smtp_url(&smtp_url).map_err(|error| format!("smtp_url: {error}"))?;
            let from = required_string(fields, "from")?;
            email::parse_mailbox(&from).map_err(|error| format!("from: {error}"))?;
            let to = match fields.get("to") {
                Some(Value::String(one)) => vec![one.clone()],
                Some(Value::Array(many)) if !many.is_empty() => many
                    .iter()
                    .map(|item| item.as_str().map(str::to_owned))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| TO_ERROR.to_owned())?,
                _ => return Err(TO_ERROR.to_owned()),
            };
            for address in &to {
                email::parse_mailbox(address).map_err(|error| format!("to: {error}"))?;
            }
            Ok(ChannelKind::Email { smtp_url, from, to })
        }
        _ => Err(KIND_ERROR.to_owned()),
    }
}

const KIND_ERROR: &str = "kind must be one of webhook, slack, discord, email, alertmanager";
const TO_ERROR: &str = "to must be an email address or a non-empty array of them";

fn http_url(fields: &Map<String, Value>) -> Result<String, String> {
    let url = required_string(fields, "url")?;
    match reqwest::Url::parse(&url) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") && parsed.has_host() => Ok(url),
        _ => Err("url must be an absolute http:// or https:// URL".to_owned()),
    }
}

fn required_string(fields: &Map<String, Value>, field: &str) -> Result<String, String> {
    optional_string(fields, field)?.ok_or_else(|| format!("{field} is required"))
}

fn optional_string(fields: &Map<String, Value>, field: &str) -> Result<Option<String>, String> {
    match fields.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) if text.is_empty() => Err(format!("{field} must not be empty")),
        Some(Value::String(text)) if text.len() > 2048 => {
            Err(format!("{field} must be at most 2048 bytes"))
        }
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(_) => Err(format!("{field} must be a string")),
    }
}
