//! The set of notification channels: read by handlers and monitor actors from a shared
//! map, changed only through [`Channels::create`], [`Channels::update`] and
//! [`Channels::delete`], which make the change durable first.

use std::sync::Arc;

use dashmap::DashMap;

use serde_json::{Map, Value};

use super::email;
use crate::clock::Clock;
use crate::cluster::event_log::{EventLog, Log, Replication, Write};
use crate::domain::channel::{Channel, ChannelEvent, ChannelKind, HttpMethod, SendOn};
use crate::domain::fence::ShardRecord;
use crate::domain::ids::{ChannelId, Timestamp};
use crate::store::{EventStore, StoreError, codec};

mod fields;

pub use fields::*;

#[derive(Clone)]
pub struct Channels {
    map: Arc<DashMap<ChannelId, Channel>>,
    store: EventStore,
    /// Serialises changes so the log and the map agree on their order.
    writes: Arc<tokio::sync::Mutex<()>>,
    clock: Clock,
    /// The event log every change goes through (`cluster/event_log.rs`).
    log: Arc<Log>,
}

impl Channels {
    /// Writes a channel change made on another pod (or this one), folded from a shard
    /// log, with the stream's position `position` in the same batch: a creation
    /// unless the channel exists already, an update or a deletion of a channel this
    /// pod has (nothing otherwise: the fold stores the position later).
    pub async fn apply_replicated(
        &self,
        id: ChannelId,
        at: crate::domain::ids::Timestamp,
        event: ChannelEvent,
        position: crate::store::FoldPosition,
    ) -> Result<(), StoreError> {
        let _guard = self.writes.lock().await;
        let exists = self.map.contains_key(&id);
        let changed = match &event {
            ChannelEvent::Created(channel) if !exists && channel.id == id => Some(channel.clone()),
            ChannelEvent::Updated(channel) if exists && channel.id == id => Some(channel.clone()),
            ChannelEvent::Deleted if exists => None,
            _ => return Ok(()),
        };
        self.store
            .write_folded_channel(id, at, event, Some(position))
            .await?;
        match changed {
            Some(channel) => self.map.insert(id, channel),
            None => self.map.remove(&id).map(|(_, channel)| channel),
        };
        Ok(())
    }

    /// The channels as stored; changes are stamped by `clock` and go through `log`.
    pub fn new(store: EventStore, stored: Vec<Channel>, clock: Clock, log: Arc<Log>) -> Self {
        let map = DashMap::with_capacity(stored.len());
        for channel in stored {
            map.insert(channel.id, channel);
        }
        Self {
            map: Arc::new(map),
            store,
            writes: Arc::new(tokio::sync::Mutex::new(())),
            clock,
            log,
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
        send_on: SendOn,
        key: Option<String>,
    ) -> Result<Channel, StoreError> {
        let now = self.clock.now();
        let channel = Channel {
            id: ChannelId::generate(now),
            name,
            kind,
            created_at: now,
            key,
            send_on,
        };
        let writes = self.writes.lock().await;
        self.log
            .write(ChannelWrite {
                channels: self,
                writes,
                id: channel.id,
                at: now,
                event: ChannelEvent::Created(channel.clone()),
            })
            .await?;
        Ok(channel)
    }

    /// Changes a channel's name and settings; `None` if there is no such channel.
    pub async fn update(
        &self,
        id: ChannelId,
        name: String,
        kind: ChannelKind,
        send_on: SendOn,
    ) -> Result<Option<Channel>, StoreError> {
        let writes = self.writes.lock().await;
        let Some(mut channel) = self.get(id) else {
            return Ok(None);
        };
        channel.name = name;
        channel.kind = kind;
        channel.send_on = send_on;
        self.log
            .write(ChannelWrite {
                channels: self,
                writes,
                id,
                at: self.clock.now(),
                event: ChannelEvent::Updated(channel),
            })
            .await
    }

    /// Deletes a channel; `false` if there was none. Monitors listing it are left as
    /// they are: delete through `monitor::Registry::delete_channel`, which sweeps them.
    pub async fn delete(&self, id: ChannelId) -> Result<bool, StoreError> {
        let writes = self.writes.lock().await;
        if !self.map.contains_key(&id) {
            return Ok(false);
        }
        self.log
            .write(ChannelWrite {
                channels: self,
                writes,
                id,
                at: self.clock.now(),
                event: ChannelEvent::Deleted,
            })
            .await?;
        Ok(true)
    }
}

/// A channel's change: single node, written durably and applied to the map while
/// the changes are serialised (`writes`); clustered, a channel record in the shard of
/// the channel's id (so a channel's changes keep their order), answered once this
/// pod's fold applied it (`Channels::apply_replicated`, which takes `writes` itself).
/// Answers the channel as it is afterwards.
struct ChannelWrite<'a> {
    channels: &'a Channels,
    writes: tokio::sync::MutexGuard<'a, ()>,
    id: ChannelId,
    at: Timestamp,
    event: ChannelEvent,
}

impl Write for ChannelWrite<'_> {
    type Output = Result<Option<Channel>, StoreError>;

    async fn to_store(self, store: &EventStore) -> Self::Output {
        let Self {
            channels,
            writes,
            id,
            at,
            event,
        } = self;
        let changed = match &event {
            ChannelEvent::Created(channel) | ChannelEvent::Updated(channel) => {
                Some(channel.clone())
            }
            ChannelEvent::Deleted => None,
        };
        store.write_channel(id, at, event).await?;
        match &changed {
            Some(channel) => channels.map.insert(id, channel.clone()),
            None => channels.map.remove(&id).map(|(_, channel)| channel),
        };
        drop(writes);
        Ok(changed)
    }

    async fn to_shards(self, shards: &Arc<dyn Replication>) -> Self::Output {
        let Self {
            channels,
            writes,
            id,
            at,
            event,
        } = self;
        // This pod's fold applies it, under `writes`.
        drop(writes);
        let record = codec::encode_channel_event(&codec::StoredChannelEvent { at, event })
            .map(|event| ShardRecord::Channel { channel: id, event })
            .map_err(|error| StoreError::Unavailable(error.to_string()))?;
        shards
            .publish_applied(record)
            .await
            .map_err(StoreError::Unavailable)?;
        Ok(channels.get(id))
    }

    fn not_joined(self) -> Self::Output {
        Err(StoreError::Unavailable(
            "not joined the cluster yet".to_owned(),
        ))
    }
}

/// How a setting of a channel is shown and exported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shown {
    /// As it is, everywhere.
    Plain,
    /// To the admin token, and to API keys that may see credentials; in an export
    /// without secrets, named by an environment variable (a URL that is itself a
    /// secret: Slack's, Teams', an SMTP URL's password).
    Credential,
    /// Never shown (the API says `has_<field>`); in an export without secrets, named
    /// by an environment variable.
    Secret,
}

/// A channel's settings as the API's fields (`null` for an optional one not set),
/// with how each is shown: the one list the API's answers, its changes and the
/// export are made from.
pub fn kind_fields(kind: &ChannelKind) -> Vec<(&'static str, Value, Shown)> {
    use Shown::{Credential, Plain, Secret};
    let text = |value: &str| Value::String(value.to_owned());
    let optional = |value: &Option<String>| value.as_deref().map_or(Value::Null, text);
    match kind {
        ChannelKind::Webhook { url, secret } => {
            vec![
                ("url", text(url), Credential),
                ("secret", optional(secret), Secret),
            ]
        }
        ChannelKind::Slack { url }
        | ChannelKind::Discord { url }
        | ChannelKind::Alertmanager { url }
        | ChannelKind::Teams { url } => vec![("url", text(url), Credential)],
        ChannelKind::Email { smtp_url, from, to } => vec![
            ("smtp_url", text(smtp_url), Credential),
            ("from", text(from), Plain),
            ("to", Value::from(to.clone()), Plain),
        ],
        ChannelKind::Template {
            method,
            url,
            headers,
            body,
        } => {
            let headers = if headers.is_empty() {
                Value::Null
            } else {
                Value::Object(
                    headers
                        .iter()
                        .map(|(name, value)| (name.clone(), text(value)))
                        .collect(),
                )
            };
            vec![
                ("method", text(method.as_str()), Plain),
                ("url", text(url), Credential),
                ("headers", headers, Secret),
                ("body", optional(body), Plain),
            ]
        }
        ChannelKind::Telegram {
            bot_token,
            chat_id,
            api_url,
        } => vec![
            ("bot_token", text(bot_token), Secret),
            ("chat_id", text(chat_id), Plain),
            ("api_url", optional(api_url), Plain),
        ],
        ChannelKind::PagerDuty {
            routing_key,
            api_url,
        } => vec![
            ("routing_key", text(routing_key), Secret),
            ("api_url", optional(api_url), Plain),
        ],
        ChannelKind::Opsgenie {
            api_key,
            api_url,
            priority,
        } => vec![
            ("api_key", text(api_key), Secret),
            ("api_url", optional(api_url), Plain),
            ("priority", optional(priority), Plain),
        ],
        ChannelKind::Ntfy {
            url,
            token,
            priority,
        } => vec![
            ("url", text(url), Credential),
            ("token", optional(token), Secret),
            ("priority", priority.map_or(Value::Null, Value::from), Plain),
        ],
        ChannelKind::Gotify {
            url,
            app_token,
            priority,
        } => vec![
            ("url", text(url), Credential),
            ("app_token", text(app_token), Secret),
            ("priority", priority.map_or(Value::Null, Value::from), Plain),
        ],
        ChannelKind::Pushover {
            user_key,
            app_token,
            api_url,
            priority,
        } => vec![
            ("user_key", text(user_key), Secret),
            ("app_token", text(app_token), Secret),
            ("api_url", optional(api_url), Plain),
            ("priority", priority.map_or(Value::Null, Value::from), Plain),
        ],
        ChannelKind::Matrix {
            url,
            access_token,
            room_id,
        } => vec![
            ("url", text(url), Credential),
            ("access_token", text(access_token), Secret),
            ("room_id", text(room_id), Plain),
        ],
    }
}

/// The fields a channel of `kind` may have, `kind`, `name` and `send_on` included;
/// `None` for an unknown kind.
pub fn fields_of_kind(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "webhook" => &["kind", "name", "send_on", "url", "secret"],
        "slack" | "discord" | "alertmanager" | "teams" => &["kind", "name", "send_on", "url"],
        "email" => &["kind", "name", "send_on", "smtp_url", "from", "to"],
        "template" => &[
            "kind", "name", "send_on", "method", "url", "headers", "body",
        ],
        "telegram" => &["kind", "name", "send_on", "bot_token", "chat_id", "api_url"],
        "pagerduty" => &["kind", "name", "send_on", "routing_key", "api_url"],
        "opsgenie" => &["kind", "name", "send_on", "api_key", "api_url", "priority"],
        "ntfy" => &["kind", "name", "send_on", "url", "token", "priority"],
        "gotify" => &["kind", "name", "send_on", "url", "app_token", "priority"],
        "pushover" => &[
            "kind",
            "name",
            "send_on",
            "user_key",
            "app_token",
            "api_url",
            "priority",
        ],
        "matrix" => &["kind", "name", "send_on", "url", "access_token", "room_id"],
        _ => return None,
    })
}

/// Every field of every kind.
pub const ALL_FIELDS: &[&str] = &[
    "kind",
    "name",
    "send_on",
    "url",
    "secret",
    "smtp_url",
    "from",
    "to",
    "method",
    "headers",
    "body",
    "bot_token",
    "chat_id",
    "api_url",
    "routing_key",
    "api_key",
    "priority",
    "token",
    "app_token",
    "user_key",
    "access_token",
    "room_id",
];

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn every_kind() -> Vec<ChannelKind> {
        let fields = [
            json!({"kind": "webhook", "url": "https://h.example/x", "secret": "s"}),
            json!({"kind": "slack", "url": "https://h.example/s"}),
            json!({"kind": "discord", "url": "https://h.example/d"}),
            json!({"kind": "email", "smtp_url": "smtp://u:p@mail.example:587?tls=required",
                   "from": "a@b.example", "to": ["c@d.example", "e@f.example"]}),
            json!({"kind": "alertmanager", "url": "http://am:9093"}),
            json!({"kind": "template", "method": "patch", "url": "https://h.example/t",
                   "headers": {"X-B": "2", "A": "1"}, "body": "{{event}}"}),
            json!({"kind": "template", "url": "https://h.example/t"}),
            json!({"kind": "teams", "url": "https://h.example/teams"}),
            json!({"kind": "telegram", "bot_token": "1:a-b_c", "chat_id": -42,
                   "api_url": "https://tg.example"}),
            json!({"kind": "pagerduty", "routing_key": "a".repeat(32)}),
            json!({"kind": "opsgenie", "api_key": "k-1", "api_url": "https://api.eu.opsgenie.com",
                   "priority": "P2"}),
            json!({"kind": "ntfy", "url": "https://ntfy.sh/t", "token": "tk", "priority": 5}),
            json!({"kind": "gotify", "url": "https://g.example", "app_token": "x", "priority": 0}),
            json!({"kind": "pushover", "user_key": "u".repeat(30), "app_token": "a".repeat(30),
                   "priority": -2}),
            json!({"kind": "matrix", "url": "https://m.example", "access_token": "t",
                   "room_id": "!r:m.example"}),
        ];
        fields
            .iter()
            .map(|value| {
                let Value::Object(fields) = value else {
                    panic!("an object")
                };
                kind_from_fields(fields).unwrap_or_else(|error| panic!("{value}: {error}"))
            })
            .collect()
    }

    /// What the API merges a change into (`kind_fields`, secrets included) reads back
    /// as the same settings: a `PATCH` of the name alone keeps every setting, and
    /// each field is one `fields_of_kind` allows.
    #[test]
    fn every_kinds_fields_read_back_as_the_same_settings() {
        let kinds = every_kind();
        let mut names: Vec<&str> = kinds.iter().map(ChannelKind::name).collect();
        names.dedup();
        assert_eq!(names, KINDS, "a case for every kind, in order");
        for kind in kinds {
            let mut fields = Map::new();
            fields.insert("kind".to_owned(), json!(kind.name()));
            let allowed = fields_of_kind(kind.name()).expect("a known kind");
            for (field, value, _) in kind_fields(&kind) {
                assert!(allowed.contains(&field), "{field} of {}", kind.name());
                assert!(ALL_FIELDS.contains(&field), "{field}");
                if !value.is_null() {
                    fields.insert(field.to_owned(), value);
                }
            }
            assert_eq!(kind_from_fields(&fields), Ok(kind.clone()), "{fields:?}");
        }
    }

    #[test]
    fn send_on_defaults_to_both_and_refuses_anything_else() {
        let fields = |value: Value| -> Map<String, Value> {
            let mut fields = Map::new();
            fields.insert("send_on".to_owned(), value);
            fields
        };
        assert_eq!(send_on_from_fields(&Map::new()), Ok(SendOn::Both));
        assert_eq!(
            send_on_from_fields(&fields(json!("down"))),
            Ok(SendOn::Down)
        );
        assert_eq!(send_on_from_fields(&fields(json!("up"))), Ok(SendOn::Up));
        assert!(send_on_from_fields(&fields(json!("DOWN"))).is_err());
        assert!(send_on_from_fields(&fields(json!(1))).is_err());
    }
}
