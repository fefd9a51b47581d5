//! The set of notification channels: read by handlers and monitor actors from a shared
//! map, changed only through [`Channels::create`], [`Channels::update`] and
//! [`Channels::delete`], which make the change durable first.

use std::sync::Arc;

use dashmap::DashMap;

use serde_json::{Map, Value};

use super::email;
use crate::clock::Clock;
use crate::domain::channel::{Channel, ChannelEvent, ChannelKind, HttpMethod, SendOn};
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
        send_on: SendOn,
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
            send_on,
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
        send_on: SendOn,
    ) -> Result<Option<Channel>, StoreError> {
        let _guard = self.writes.lock().await;
        let Some(mut channel) = self.get(id) else {
            return Ok(None);
        };
        channel.name = name;
        channel.kind = kind;
        channel.send_on = send_on;
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
        "template" => {
            let method = match fields.get("method") {
                None | Some(Value::Null) => HttpMethod::Post,
                Some(Value::String(text)) => HttpMethod::parse(text)
                    .ok_or_else(|| "method must be one of POST, PUT, PATCH, GET".to_owned())?,
                Some(_) => return Err("method must be one of POST, PUT, PATCH, GET".to_owned()),
            };
            let headers = headers(fields)?;
            let body = match fields.get("body") {
                None | Some(Value::Null) => None,
                Some(Value::String(text)) => {
                    super::template::check(text).map_err(|error| format!("body: {error}"))?;
                    Some(text.clone())
                }
                Some(_) => return Err("body must be a string (a template)".to_owned()),
            };
            if method == HttpMethod::Get && body.is_some() {
                return Err("body: a GET request has no body; use POST, PUT or PATCH".to_owned());
            }
            Ok(ChannelKind::Template {
                method,
                url: http_url(fields)?,
                headers,
                body,
            })
        }
        "teams" => Ok(ChannelKind::Teams {
            url: http_url(fields)?,
        }),
        "telegram" => {
            let bot_token = required_string(fields, "bot_token")?;
            let valid_token = bot_token.split_once(':').is_some_and(|(bot, secret)| {
                !bot.is_empty()
                    && bot.chars().all(|c| c.is_ascii_digit())
                    && !secret.is_empty()
                    && secret
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            });
            if !valid_token {
                return Err("bot_token must be a bot token as BotFather gives it (<digits>:<letters, digits, _ and ->)".to_owned());
            }
            let chat_id = match fields.get("chat_id") {
                Some(Value::Number(number)) if number.is_i64() => number.to_string(),
                Some(Value::String(text)) => text.clone(),
                None | Some(Value::Null) => return Err("chat_id is required".to_owned()),
                Some(_) => return Err(CHAT_ID_ERROR.to_owned()),
            };
            let digits = chat_id.strip_prefix('-').unwrap_or(&chat_id);
            let numeric = !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit());
            let username = chat_id.strip_prefix('@').is_some_and(|name| {
                (5..=32).contains(&name.len())
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            });
            if !(numeric || username) {
                return Err(CHAT_ID_ERROR.to_owned());
            }
            Ok(ChannelKind::Telegram {
                bot_token,
                chat_id,
                api_url: optional_http_url(fields, "api_url")?,
            })
        }
        "pagerduty" => {
            let routing_key = required_string(fields, "routing_key")?;
            if routing_key.len() != 32 || !routing_key.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err("routing_key must be the 32-character integration key of an Events API v2 integration".to_owned());
            }
            Ok(ChannelKind::PagerDuty {
                routing_key,
                api_url: optional_http_url(fields, "api_url")?,
            })
        }
        "opsgenie" => {
            let api_key = required_string(fields, "api_key")?;
            if !api_key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
            {
                return Err(
                    "api_key must be an Opsgenie API key (letters, digits and -)".to_owned(),
                );
            }
            let priority = match fields.get("priority") {
                None | Some(Value::Null) => None,
                Some(Value::String(text))
                    if matches!(text.as_str(), "P1" | "P2" | "P3" | "P4" | "P5") =>
                {
                    Some(text.clone())
                }
                Some(_) => return Err("priority must be one of P1, P2, P3, P4, P5".to_owned()),
            };
            Ok(ChannelKind::Opsgenie {
                api_key,
                api_url: optional_http_url(fields, "api_url")?,
                priority,
            })
        }
        "ntfy" => {
            let url = http_url(fields)?;
            if super::push::ntfy_split(&url).is_none() {
                return Err("url must be a topic's URL, https://<server>/<topic> (a topic: 1 to 64 letters, digits, - and _)".to_owned());
            }
            Ok(ChannelKind::Ntfy {
                url,
                token: optional_header_safe(fields, "token")?,
                priority: small_priority(fields, 1, 5)?.map(|priority| priority as u8),
            })
        }
        "gotify" => Ok(ChannelKind::Gotify {
            url: http_url(fields)?,
            app_token: required_header_safe(fields, "app_token")?,
            priority: small_priority(fields, 0, 10)?.map(|priority| priority as u8),
        }),
        "pushover" => {
            let key = |field: &str| -> Result<String, String> {
                let value = required_string(fields, field)?;
                if value.len() == 30 && value.chars().all(|c| c.is_ascii_alphanumeric()) {
                    Ok(value)
                } else {
                    Err(format!(
                        "{field} must be a Pushover key: 30 letters and digits"
                    ))
                }
            };
            Ok(ChannelKind::Pushover {
                user_key: key("user_key")?,
                app_token: key("app_token")?,
                api_url: optional_http_url(fields, "api_url")?,
                priority: small_priority(fields, -2, 1)?.map(|priority| priority as i8),
            })
        }
        "matrix" => {
            let room_id = required_string(fields, "room_id")?;
            if !(room_id.starts_with('!') && room_id.contains(':')) {
                return Err(
                    "room_id must be a room id, !<opaque>:<server> (Room settings, Advanced)"
                        .to_owned(),
                );
            }
            Ok(ChannelKind::Matrix {
                url: http_url(fields)?,
                access_token: required_header_safe(fields, "access_token")?,
                room_id,
            })
        }
        _ => Err(KIND_ERROR.to_owned()),
    }
}

/// Which alerts a channel is told about: the fields' `send_on`, both by default.
pub fn send_on_from_fields(fields: &Map<String, Value>) -> Result<SendOn, String> {
    match fields.get("send_on") {
        None | Some(Value::Null) => Ok(SendOn::Both),
        Some(Value::String(text)) => SendOn::parse(text).ok_or_else(|| SEND_ON_ERROR.to_owned()),
        Some(_) => Err(SEND_ON_ERROR.to_owned()),
    }
}

/// The kinds, as `kind` names them.
pub const KINDS: &[&str] = &[
    "webhook",
    "slack",
    "discord",
    "email",
    "alertmanager",
    "template",
    "teams",
    "telegram",
    "pagerduty",
    "opsgenie",
    "ntfy",
    "gotify",
    "pushover",
    "matrix",
];

const KIND_ERROR: &str = "kind must be one of webhook, slack, discord, email, alertmanager, \
     template, teams, telegram, pagerduty, opsgenie, ntfy, gotify, pushover, matrix";
const SEND_ON_ERROR: &str = "send_on must be one of down, up, both";
const CHAT_ID_ERROR: &str =
    "chat_id must be a chat's numeric id (e.g. -1001234567890) or a channel's @username";
/// At most this many headers on a templated webhook.
const MAX_HEADERS: usize = 32;

/// A templated webhook's `headers`: an object of names and string values, each a
/// valid HTTP header, none that the HTTP client must set itself.
fn headers(fields: &Map<String, Value>) -> Result<Vec<(String, String)>, String> {
    let object = match fields.get("headers") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Object(object)) => object,
        Some(_) => {
            return Err("headers must be an object of header names and string values".to_owned());
        }
    };
    if object.len() > MAX_HEADERS {
        return Err(format!("headers: at most {MAX_HEADERS} headers"));
    }
    let mut headers = Vec::with_capacity(object.len());
    for (name, value) in object {
        let Value::String(value) = value else {
            return Err(format!("headers: the value of {name:?} must be a string"));
        };
        if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(format!("headers: {name:?} is not a valid header name"));
        }
        if reqwest::header::HeaderValue::from_str(value).is_err() || value.len() > 2048 {
            return Err(format!(
                "headers: the value of {name:?} must be visible ASCII text of at most 2048 bytes"
            ));
        }
        let lower = name.to_ascii_lowercase();
        if matches!(
            lower.as_str(),
            "host" | "content-length" | "transfer-encoding" | "connection"
        ) || lower == super::webhook::ALERT_ID_HEADER.to_ascii_lowercase()
        {
            return Err(format!(
                "headers: {name:?} is set by pushmon and cannot be given"
            ));
        }
        headers.push((name.clone(), value.clone()));
    }
    Ok(headers)
}

/// An optional URL field other than `url` (`api_url`), absolute http(s).
fn optional_http_url(fields: &Map<String, Value>, field: &str) -> Result<Option<String>, String> {
    let Some(url) = optional_string(fields, field)? else {
        return Ok(None);
    };
    match reqwest::Url::parse(&url) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") && parsed.has_host() => {
            Ok(Some(url))
        }
        _ => Err(format!(
            "{field} must be an absolute http:// or https:// URL"
        )),
    }
}

/// A secret sent in a header: visible ASCII only.
fn required_header_safe(fields: &Map<String, Value>, field: &str) -> Result<String, String> {
    optional_header_safe(fields, field)?.ok_or_else(|| format!("{field} is required"))
}

fn optional_header_safe(
    fields: &Map<String, Value>,
    field: &str,
) -> Result<Option<String>, String> {
    let value = optional_string(fields, field)?;
    match &value {
        Some(text) if !text.chars().all(|c| c.is_ascii_graphic()) => {
            Err(format!("{field} must be visible ASCII text without spaces"))
        }
        _ => Ok(value),
    }
}

/// An optional integer `priority` within `low..=high`.
fn small_priority(fields: &Map<String, Value>, low: i64, high: i64) -> Result<Option<i64>, String> {
    match fields.get("priority") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(number)) => match number.as_i64() {
            Some(priority) if (low..=high).contains(&priority) => Ok(Some(priority)),
            _ => Err(format!("priority must be an integer from {low} to {high}")),
        },
        Some(_) => Err(format!("priority must be an integer from {low} to {high}")),
    }
}
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
