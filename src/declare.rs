//! Declarative monitors: a YAML file of channels and monitors, each with a stable
//! `key`, reconciled into the store at start-up and on SIGHUP. Every change goes
//! through the ordinary path (registry → actor → event log), so it is recorded as
//! ordinary `created` / `updated` / `token_rotated` / `deleted` events.
//!
//! The whole file is read and checked before anything changes: an invalid file is an
//! error naming the line and the field, and changes nothing. `export` writes a
//! server's configuration as such a file (`GET /api/export`), with the same types.
//!
//! ```yaml
//! prune: true              # delete declared monitors/channels no longer in the file
//! channels:
//!   - key: ops
//!     kind: webhook        # webhook | slack | discord | email | alertmanager
//!     name: Ops webhook
//!     url: https://hooks.example.com/pushmon
//!     secret_env: OPS_WEBHOOK_SECRET   # url_env and smtp_url_env likewise
//! monitors:
//!   - key: nightly-backup
//!     name: Nightly backup
//!     timeout_seconds: 90000
//!     interval_seconds: 86400
//!     channels: [ops]
//!     tags: [backup, prod]
//!     labels: {team: storage, env: prod}
//!     severity: warning    # critical (the default) | warning | info
//!     push_token_env: BACKUP_PUSH_TOKEN   # or push_token_file, or push_token
//!     allowed_sources: [10.0.0.0/8]       # pushes only from these
//!     signing_secret_env: BACKUP_SECRET   # signed pushes only (or _file, or itself)
//!   - key: weekly-report
//!     name: Weekly report
//!     schedule: "0 6 * * 1"  # instead of timeout_seconds
//!     timezone: Europe/Paris
//!     grace_seconds: 1800
//!     max_runtime_seconds: 3600
//!     failure_threshold: 2
//!     realert_every_seconds: 86400
//!     maintenance:
//!       - cron: "0 2 * * 0"
//!         duration_seconds: 7200
//!   - key: workers
//!     name: Workers
//!     timeout_seconds: 120
//!     min_instances: 3     # a fleet: up while 3 instances report
//!     instance_retention_seconds: 86400
//!     parents: [nightly-backup]   # keys of declared monitors
//!     dependency_grace_seconds: 60
//! ```

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::alert::Channels;
use crate::alert::channels::{fields_of_kind, kind_from_fields, send_on_from_fields};
use crate::domain::channel::{ChannelKind, SendOn};
use crate::domain::event::MonitorConfig;
use crate::domain::ids::{ChannelId, MonitorId, PushToken, Timestamp};
use crate::domain::labels::{Labels, Severity};
use crate::domain::machine::{self, Command, ConfigPatch, MAX_THRESHOLD, Monitor};
use crate::domain::name::check_name;
use crate::domain::schedule::{self as schedule_rules, CronError, DEFAULT_TIMEZONE};
use crate::http::monitor_fields::parse_maintenance;
use crate::monitor::{Registry, RegistryError};
use crate::store::{EventStore, StoreError};

mod reconcile;

pub mod export;

const MAX_SECONDS: u64 = 31_536_000;

#[derive(Debug, thiserror::Error)]
pub enum DeclareError {
    #[error("monitors file {path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("monitors file: {0}")]
    Store(#[from] StoreError),
    #[error("monitors file: {0}")]
    Registry(#[from] RegistryError),
}

/// The file: read by [`MonitorsFile`], written by [`export`] (one definition of the
/// format for both).
#[derive(Deserialize, Serialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping of the fields `prune`, `channels` and `monitors`"
)]
struct File {
    #[serde(default, skip_serializing_if = "is_false")]
    prune: bool,
    #[serde(default)]
    channels: Vec<DeclaredChannel>,
    #[serde(default)]
    monitors: Vec<DeclaredMonitor>,
}

fn is_false(value: &bool) -> bool {
    !*value
}

/// A channel as the file declares it. Its settings are checked by
/// `alert::channels::kind_from_fields`, as the API's are. No `Debug`: it can hold
/// secrets.
#[derive(Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
struct DeclaredChannel {
    #[serde(deserialize_with = "channel_key")]
    key: String,
    #[serde(deserialize_with = "name")]
    name: String,
    kind: String,
    /// `down`, `up` or `both` (the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    send_on: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    url_env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    secret_env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    smtp_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    smtp_url_env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    from: Option<String>,
    /// One address or a list of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    to: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    method: Option<String>,
    /// A mapping of header names to values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    headers: Option<Value>,
    /// The headers as a JSON object, from an environment variable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    headers_env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    body: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bot_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bot_token_env: Option<String>,
    /// A number or a string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    chat_id: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    api_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    routing_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    routing_key_env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    api_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    api_key_env: Option<String>,
    /// A number, or Opsgenie's `P1` … `P5`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    priority: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    token_env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    app_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    app_token_env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    user_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    user_key_env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    access_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    access_token_env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    room_id: Option<String>,
}

impl DeclaredChannel {
    /// The fields a value may come from the environment for, with the field naming
    /// the variable, and their values and variables as declared.
    fn environment_fields(
        &self,
    ) -> [(&'static str, &'static str, &Option<String>, &Option<String>); 10] {
        [
            ("url", "url_env", &self.url, &self.url_env),
            ("secret", "secret_env", &self.secret, &self.secret_env),
            (
                "smtp_url",
                "smtp_url_env",
                &self.smtp_url,
                &self.smtp_url_env,
            ),
            (
                "bot_token",
                "bot_token_env",
                &self.bot_token,
                &self.bot_token_env,
            ),
            (
                "routing_key",
                "routing_key_env",
                &self.routing_key,
                &self.routing_key_env,
            ),
            ("api_key", "api_key_env", &self.api_key, &self.api_key_env),
            ("token", "token_env", &self.token, &self.token_env),
            (
                "app_token",
                "app_token_env",
                &self.app_token,
                &self.app_token_env,
            ),
            (
                "user_key",
                "user_key_env",
                &self.user_key,
                &self.user_key_env,
            ),
            (
                "access_token",
                "access_token_env",
                &self.access_token,
                &self.access_token_env,
            ),
        ]
    }

    /// Sets the field `field` (of [`environment_fields`](Self::environment_fields), or
    /// `headers`) to `value`, or its `…_env` to `variable`.
    fn set_credential(&mut self, field: &str, value: Option<String>, variable: Option<String>) {
        let (slot, env_slot) = match field {
            "url" => (&mut self.url, &mut self.url_env),
            "secret" => (&mut self.secret, &mut self.secret_env),
            "smtp_url" => (&mut self.smtp_url, &mut self.smtp_url_env),
            "bot_token" => (&mut self.bot_token, &mut self.bot_token_env),
            "routing_key" => (&mut self.routing_key, &mut self.routing_key_env),
            "api_key" => (&mut self.api_key, &mut self.api_key_env),
            "token" => (&mut self.token, &mut self.token_env),
            "app_token" => (&mut self.app_token, &mut self.app_token_env),
            "user_key" => (&mut self.user_key, &mut self.user_key_env),
            "access_token" => (&mut self.access_token, &mut self.access_token_env),
            _ => return,
        };
        *slot = value;
        *env_slot = variable;
    }

    /// Its settings as the API's fields, with each `…_env` read through `env`.
    fn fields(&self, env: &impl Fn(&str) -> Option<String>) -> Result<Map<String, Value>, String> {
        let mut fields = Map::new();
        fields.insert("kind".to_owned(), Value::String(self.kind.clone()));
        for (field, env_field, value, variable) in self.environment_fields() {
            let value = match (value, variable) {
                (Some(_), Some(_)) => {
                    return Err(format!("give either {field} or {env_field}, not both"));
                }
                (Some(value), None) => value.clone(),
                (None, Some(variable)) => env(variable).ok_or_else(|| {
                    format!("{env_field}: environment variable {variable} is not set")
                })?,
                (None, None) => continue,
            };
            fields.insert(field.to_owned(), Value::String(value));
        }
        match (&self.headers, &self.headers_env) {
            (Some(_), Some(_)) => {
                return Err("give either headers or headers_env, not both".to_owned());
            }
            (Some(headers), None) => {
                fields.insert("headers".to_owned(), headers.clone());
            }
            (None, Some(variable)) => {
                let text = env(variable).ok_or_else(|| {
                    format!("headers_env: environment variable {variable} is not set")
                })?;
                let headers: Value = serde_json::from_str(&text).map_err(|_| {
                    format!("headers_env: {variable} must hold a JSON object of headers")
                })?;
                fields.insert("headers".to_owned(), headers);
            }
            (None, None) => {}
        }
        let plain = [
            ("send_on", self.send_on.clone().map(Value::String)),
            ("from", self.from.clone().map(Value::String)),
            ("to", self.to.clone()),
            ("method", self.method.clone().map(Value::String)),
            ("body", self.body.clone().map(Value::String)),
            ("chat_id", self.chat_id.clone()),
            ("api_url", self.api_url.clone().map(Value::String)),
            ("priority", self.priority.clone()),
            ("room_id", self.room_id.clone().map(Value::String)),
        ];
        for (field, value) in plain {
            if let Some(value) = value {
                fields.insert(field.to_owned(), value);
            }
        }
        // A field of another kind is an error, but for the first kinds' fields, which
        // files written before there were more kinds may carry on any kind (ignored).
        const IGNORED: [&str; 5] = ["url", "secret", "smtp_url", "from", "to"];
        if let Some(allowed) = fields_of_kind(&self.kind) {
            let given: Vec<String> = fields
                .keys()
                .filter(|field| !allowed.contains(&field.as_str()))
                .filter(|field| !IGNORED.contains(&field.as_str()))
                .cloned()
                .collect();
            if let Some(field) = given.first() {
                return Err(format!(
                    "{field} is not a setting of a {} channel; its settings are {}",
                    self.kind,
                    allowed[2..].join(", ")
                ));
            }
        }
        Ok(fields)
    }
}

/// A monitor as the file declares it. No `Debug`: it can hold a push token.
#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct DeclaredMonitor {
    #[serde(deserialize_with = "key")]
    key: String,
    #[serde(deserialize_with = "name")]
    name: String,
    #[serde(
        default,
        deserialize_with = "timeout_seconds",
        skip_serializing_if = "Option::is_none"
    )]
    timeout_seconds: Option<u32>,
    #[serde(
        default,
        deserialize_with = "interval_seconds",
        skip_serializing_if = "Option::is_none"
    )]
    interval_seconds: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    schedule: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    timezone: Option<String>,
    #[serde(
        default,
        deserialize_with = "grace_seconds",
        skip_serializing_if = "Option::is_none"
    )]
    grace_seconds: Option<u32>,
    #[serde(
        default,
        deserialize_with = "max_runtime_seconds",
        skip_serializing_if = "Option::is_none"
    )]
    max_runtime_seconds: Option<u32>,
    #[serde(
        default,
        deserialize_with = "min_runtime_seconds",
        skip_serializing_if = "Option::is_none"
    )]
    min_runtime_seconds: Option<u32>,
    #[serde(
        default,
        deserialize_with = "failure_threshold",
        skip_serializing_if = "Option::is_none"
    )]
    failure_threshold: Option<u32>,
    #[serde(
        default,
        deserialize_with = "recovery_threshold",
        skip_serializing_if = "Option::is_none"
    )]
    recovery_threshold: Option<u32>,
    #[serde(
        default,
        deserialize_with = "realert_every_seconds",
        skip_serializing_if = "Option::is_none"
    )]
    realert_every_seconds: Option<u32>,
    /// Parsed by `http::monitor_fields::parse_maintenance`, as the API's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    maintenance: Option<Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    channels: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    tags: Vec<String>,
    /// Checked by `domain::labels`, as the API's.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    labels: BTreeMap<String, String>,
    #[serde(
        default,
        deserialize_with = "severity",
        skip_serializing_if = "Option::is_none"
    )]
    severity: Option<String>,
    #[serde(
        default,
        deserialize_with = "slug",
        skip_serializing_if = "Option::is_none"
    )]
    slug: Option<String>,
    /// A fleet: checked as the API checks it.
    #[serde(
        default,
        deserialize_with = "min_instances",
        skip_serializing_if = "Option::is_none"
    )]
    min_instances: Option<u32>,
    #[serde(
        default,
        deserialize_with = "instance_retention_seconds",
        skip_serializing_if = "Option::is_none"
    )]
    instance_retention_seconds: Option<u32>,
    /// The keys of the declared monitors it depends on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    parents: Vec<String>,
    #[serde(
        default,
        deserialize_with = "dependency_grace_seconds",
        skip_serializing_if = "Option::is_none"
    )]
    dependency_grace_seconds: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    push_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    push_token_env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    push_token_file: Option<PathBuf>,
    /// Addresses and CIDR ranges pushes are taken from (`http::monitor_fields::
    /// parse_source_range`, as the API's); none: any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    allowed_sources: Vec<String>,
    /// The key pushes must be signed with, given as itself, an environment variable
    /// or a file, as the push token may be.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    signing_secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    signing_secret_env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    signing_secret_file: Option<PathBuf>,
}

/// A channel's key: 1 to 100 characters.
fn channel_key<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let key = String::deserialize(deserializer)?;
    if key.is_empty() || key.chars().count() > 100 {
        return Err(serde::de::Error::custom(
            "key must be a string of 1 to 100 characters",
        ));
    }
    Ok(key)
}

fn slug<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    let slug = String::deserialize(deserializer)?;
    if crate::domain::slug::is_slug(&slug) {
        Ok(Some(slug))
    } else {
        Err(serde::de::Error::custom(format!(
            "slug {slug:?} must be {}",
            crate::domain::slug::SLUG_RULE
        )))
    }
}

fn severity<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    let severity = String::deserialize(deserializer)?;
    match Severity::parse(&severity) {
        Some(_) => Ok(Some(severity)),
        None => Err(serde::de::Error::custom(format!(
            "severity {severity:?} must be critical, warning or info"
        ))),
    }
}

fn key<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let key = String::deserialize(deserializer)?;
    let valid = !key.is_empty()
        && key.len() <= 100
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
    if valid {
        Ok(key)
    } else {
        Err(serde::de::Error::custom(format!(
            "key {key:?} must be 1 to 100 of A-Z a-z 0-9 - _ . /"
        )))
    }
}

fn name<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let name = String::deserialize(deserializer)?;
    check_name(&name).map_err(|error| serde::de::Error::custom(format!("name {error}")))?;
    Ok(name)
}

fn seconds<'de, D: Deserializer<'de>>(deserializer: D, field: &str) -> Result<u32, D::Error> {
    let seconds = u64::deserialize(deserializer)?;
    if (1..=MAX_SECONDS).contains(&seconds) {
        Ok(seconds as u32)
    } else {
        Err(serde::de::Error::custom(format!(
            "{field} must be from 1 to {MAX_SECONDS}, not {seconds}"
        )))
    }
}

fn timeout_seconds<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u32>, D::Error> {
    seconds(deserializer, "timeout_seconds").map(Some)
}

fn interval_seconds<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u32>, D::Error> {
    seconds(deserializer, "interval_seconds").map(Some)
}

fn grace_seconds<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u32>, D::Error> {
    seconds(deserializer, "grace_seconds").map(Some)
}

fn max_runtime_seconds<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<u32>, D::Error> {
    seconds(deserializer, "max_runtime_seconds").map(Some)
}

fn min_runtime_seconds<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<u32>, D::Error> {
    seconds(deserializer, "min_runtime_seconds").map(Some)
}

fn realert_every_seconds<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<u32>, D::Error> {
    seconds(deserializer, "realert_every_seconds").map(Some)
}

fn min_instances<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u32>, D::Error> {
    let count = u64::deserialize(deserializer)?;
    if (1..=machine::MAX_INSTANCES as u64).contains(&count) {
        Ok(Some(count as u32))
    } else {
        Err(serde::de::Error::custom(format!(
            "min_instances must be from 1 to {}, not {count}",
            machine::MAX_INSTANCES
        )))
    }
}

fn instance_retention_seconds<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<u32>, D::Error> {
    seconds(deserializer, "instance_retention_seconds").map(Some)
}

fn dependency_grace_seconds<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<u32>, D::Error> {
    let seconds = u64::deserialize(deserializer)?;
    u32::try_from(seconds)
        .ok()
        .filter(|seconds| u64::from(*seconds) <= crate::http::monitor_fields::MAX_SECONDS)
        .map(Some)
        .ok_or_else(|| {
            serde::de::Error::custom(format!(
                "dependency_grace_seconds must be from 0 to {}, not {seconds}",
                crate::http::monitor_fields::MAX_SECONDS
            ))
        })
}

fn threshold<'de, D: Deserializer<'de>>(deserializer: D, field: &str) -> Result<u32, D::Error> {
    let count = u64::deserialize(deserializer)?;
    if (1..=u64::from(MAX_THRESHOLD)).contains(&count) {
        Ok(count as u32)
    } else {
        Err(serde::de::Error::custom(format!(
            "{field} must be from 1 to {MAX_THRESHOLD}, not {count}"
        )))
    }
}

fn failure_threshold<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u32>, D::Error> {
    threshold(deserializer, "failure_threshold").map(Some)
}

fn recovery_threshold<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u32>, D::Error> {
    threshold(deserializer, "recovery_threshold").map(Some)
}

/// A channel from the file, checked.
struct ChannelSpec {
    key: String,
    name: String,
    kind: ChannelKind,
    send_on: SendOn,
}

/// A monitor from the file, checked, with its channel keys resolved later.
struct MonitorSpec {
    declared: DeclaredMonitor,
    token: Option<PushToken>,
    /// Its configuration but for `channels`, which name channels by key in the file.
    config: MonitorConfig,
}

/// What a reconciliation did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub created: usize,
    pub updated: usize,
    pub deleted: usize,
    pub unchanged: usize,
}

/// The reconciler: the file, and how to read secrets (tests pass a map).
pub struct MonitorsFile {
    path: PathBuf,
}

/// Where the first character YAML does not allow in a file is (a control character
/// other than tab and line breaks, U+FFFE or U+FFFF), as line and column: the YAML
/// parser says only its byte offset.
fn unallowed_character(text: &str) -> Option<String> {
    let allowed = |c: char| {
        matches!(c, '\t' | '\n' | '\r' | ' '..='~' | '\u{85}' | '\u{A0}'..='\u{D7FF}')
            || matches!(c, '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
    };
    text.lines().enumerate().find_map(|(line, content)| {
        let (column, c) = content.chars().enumerate().find(|(_, c)| !allowed(*c))?;
        Some(format!(
            "character U+{:04X} is not allowed in YAML at line {} column {}",
            u32::from(c),
            line + 1,
            column + 1
        ))
    })
}

/// The YAML parser's error with its line: the parser leaves out line 1, column 1.
fn located(error: &serde_yaml_ng::Error) -> String {
    let message = error.to_string();
    match error.location() {
        Some(location) if !message.contains(" line ") => format!(
            "{message} at line {} column {}",
            location.line(),
            location.column()
        ),
        _ => message,
    }
}
