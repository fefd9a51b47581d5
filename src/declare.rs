//! Declarative monitors: a YAML file of channels and monitors, each with a stable
//! `key`, reconciled into the store at start-up and on SIGHUP. Every change goes
//! through the ordinary path (registry → actor → event log), so it is recorded as
//! ordinary `created` / `updated` / `token_rotated` / `deleted` events.
//!
//! The whole file is read and checked before anything changes: an invalid file is an
//! error naming the line and the field, and changes nothing.
//!
//! ```yaml
//! prune: true              # delete declared monitors/channels no longer in the file
//! channels:
//!   - key: ops
//!     kind: webhook        # webhook | slack | discord | email | alertmanager
//!     name: Ops webhook
//!     url: https://hooks.example.com/pushmon
//!     secret_env: OPS_WEBHOOK_SECRET
//! monitors:
//!   - key: nightly-backup
//!     name: Nightly backup
//!     timeout_seconds: 90000
//!     interval_seconds: 86400
//!     channels: [ops]
//!     tags: [backup, prod]
//!     push_token_env: BACKUP_PUSH_TOKEN   # or push_token_file, or push_token
//! ```

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use crate::alert::Channels;
use crate::alert::channels::kind_from_fields;
use crate::domain::channel::ChannelKind;
use crate::domain::event::MonitorConfig;
use crate::domain::ids::{ChannelId, PushToken};
use crate::domain::machine::{Command, ConfigPatch, Monitor, Rejection};
use crate::domain::name::check_name;
use crate::monitor::{Registry, RegistryError};
use crate::store::{EventStore, StoreError};

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

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping of the fields `prune`, `channels` and `monitors`"
)]
struct File {
    #[serde(default)]
    prune: bool,
    #[serde(default)]
    channels: Vec<Map<String, Value>>,
    #[serde(default)]
    monitors: Vec<DeclaredMonitor>,
}

/// No `Debug`: it can hold a push token.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeclaredMonitor {
    #[serde(deserialize_with = "key")]
    key: String,
    #[serde(deserialize_with = "name")]
    name: String,
    #[serde(deserialize_with = "timeout_seconds")]
    timeout_seconds: u32,
    #[serde(default, deserialize_with = "interval_seconds")]
    interval_seconds: Option<u32>,
    #[serde(default)]
    channels: Vec<String>,
    #[serde(default)]
    tags: Vec<String>,
    push_token: Option<String>,
    push_token_env: Option<String>,
    push_token_file: Option<PathBuf>,
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

fn timeout_seconds<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u32, D::Error> {
    seconds(deserializer, "timeout_seconds")
}

fn interval_seconds<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u32>, D::Error> {
    seconds(deserializer, "interval_seconds").map(Some)
}

/// A channel from the file, checked.
struct ChannelSpec {
    key: String,
    name: String,
    kind: ChannelKind,
}

/// A monitor from the file, checked, with its channel keys resolved later.
struct MonitorSpec {
    declared: DeclaredMonitor,
    token: Option<PushToken>,
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

impl MonitorsFile {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads and checks the file, then makes the store match it.
    pub async fn reconcile(
        &self,
        store: &EventStore,
        registry: &Registry,
        channels: &Channels,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Summary, DeclareError> {
        let (prune, channel_specs, monitor_specs) = self.load(&env)?;
        let mut summary = Summary::default();

        // Channels first: monitors refer to them.
        let mut channel_ids: HashMap<String, ChannelId> = HashMap::new();
        let existing: HashMap<String, _> = channels
            .list()
            .into_iter()
            .filter_map(|channel| channel.key.clone().map(|key| (key, channel)))
            .collect();
        for spec in &channel_specs {
            match existing.get(&spec.key) {
                Some(channel) if channel.name == spec.name && channel.kind == spec.kind => {
                    summary.unchanged += 1;
                    channel_ids.insert(spec.key.clone(), channel.id);
                }
                Some(channel) => {
                    channels
                        .update(channel.id, spec.name.clone(), spec.kind.clone())
                        .await?;
                    tracing::info!(key = %spec.key, "monitors file: channel updated");
                    summary.updated += 1;
                    channel_ids.insert(spec.key.clone(), channel.id);
                }
                None => {
                    let channel = channels
                        .create(spec.name.clone(), spec.kind.clone(), Some(spec.key.clone()))
                        .await?;
                    tracing::info!(key = %spec.key, "monitors file: channel created");
                    summary.created += 1;
                    channel_ids.insert(spec.key.clone(), channel.id);
                }
            }
        }

        let monitors = store.monitors().await?;
        let by_key: HashMap<&str, &Monitor> = monitors
            .iter()
            .filter_map(|monitor| monitor.config.key.as_deref().map(|key| (key, monitor)))
            .collect();
        for spec in &monitor_specs {
            let declared = &spec.declared;
            let config = MonitorConfig {
                name: declared.name.clone(),
                timeout_seconds: declared.timeout_seconds,
                interval_seconds: declared
                    .interval_seconds
                    .unwrap_or(declared.timeout_seconds),
                channels: declared
                    .channels
                    .iter()
                    .filter_map(|key| channel_ids.get(key).copied())
                    .collect(),
                key: Some(declared.key.clone()),
                tags: declared.tags.clone(),
            };
            let owner = spec
                .token
                .and_then(|token| registry.directory().by_token(&token))
                .map(|handle| handle.id);
            let current_id = by_key.get(declared.key.as_str()).map(|monitor| monitor.id);
            if owner.is_some() && owner != current_id {
                return Err(DeclareError::Invalid {
                    path: self.path.clone(),
                    message: format!(
                        "monitor {:?}: its push token is already used by another monitor",
                        declared.key
                    ),
                });
            }
            match by_key.get(declared.key.as_str()) {
                None => {
                    registry.create_with_token(config, spec.token).await?;
                    tracing::info!(key = %declared.key, "monitors file: monitor created");
                    summary.created += 1;
                }
                Some(current) => {
                    let mut changed = false;
                    if *current.config != config {
                        let patch = ConfigPatch {
                            name: Some(config.name),
                            timeout_seconds: Some(config.timeout_seconds),
                            interval_seconds: Some(config.interval_seconds),
                            channels: Some(config.channels),
                            tags: Some(config.tags),
                            key: Some(config.key),
                        };
                        registry.execute(current.id, Command::Update(patch)).await?;
                        changed = true;
                    }
                    if let Some(token) = spec.token
                        && token != current.token
                    {
                        registry
                            .execute(current.id, Command::RotateToken(token))
                            .await?;
                        changed = true;
                    }
                    if changed {
                        tracing::info!(key = %declared.key, "monitors file: monitor updated");
                        summary.updated += 1;
                    } else {
                        summary.unchanged += 1;
                    }
                }
            }
        }

        if prune {
            let declared: HashSet<&str> = monitor_specs
                .iter()
                .map(|spec| spec.declared.key.as_str())
                .collect();
            for (key, monitor) in &by_key {
                if !declared.contains(key) {
                    match registry.execute(monitor.id, Command::Delete).await {
                        Ok(_) | Err(RegistryError::NotFound) => {}
                        Err(error) => return Err(error.into()),
                    }
                    tracing::info!(%key, "monitors file: monitor pruned");
                    summary.deleted += 1;
                }
            }
            let declared: HashSet<&str> =
                channel_specs.iter().map(|spec| spec.key.as_str()).collect();
            for (key, channel) in &existing {
                if !declared.contains(key.as_str()) && registry.delete_channel(channel.id).await? {
                    tracing::info!(%key, "monitors file: channel pruned");
                    summary.deleted += 1;
                }
            }
        }
        Ok(summary)
    }

    /// Reads, parses and checks everything, resolving secrets; changes nothing.
    fn load(
        &self,
        env: &impl Fn(&str) -> Option<String>,
    ) -> Result<(bool, Vec<ChannelSpec>, Vec<MonitorSpec>), DeclareError> {
        let text = std::fs::read_to_string(&self.path).map_err(|error| DeclareError::Invalid {
            path: self.path.clone(),
            message: format!("cannot read: {error}"),
        })?;
        self.parse(&text, env, &|path| std::fs::read_to_string(path))
    }

    /// Parses and checks `text` as this file's content, as start-up does, with the
    /// environment and token files read through `env` and `read_file`; touches no
    /// store and changes nothing (the entry point of the fuzz target in `fuzz/`).
    pub fn check(
        &self,
        text: &str,
        env: &impl Fn(&str) -> Option<String>,
        read_file: &impl Fn(&Path) -> std::io::Result<String>,
    ) -> Result<(), DeclareError> {
        self.parse(text, env, read_file).map(|_| ())
    }

    fn parse(
        &self,
        text: &str,
        env: &impl Fn(&str) -> Option<String>,
        read_file: &impl Fn(&Path) -> std::io::Result<String>,
    ) -> Result<(bool, Vec<ChannelSpec>, Vec<MonitorSpec>), DeclareError> {
        let invalid = |message: String| DeclareError::Invalid {
            path: self.path.clone(),
            message,
        };
        if let Some(refused) = unallowed_character(text) {
            return Err(invalid(refused));
        }
        let file: File = serde_yaml_ng::from_str(text).map_err(|error| invalid(located(&error)))?;

        let mut channel_specs = Vec::with_capacity(file.channels.len());
        let mut channel_keys = HashSet::new();
        for (index, mut fields) in file.channels.into_iter().enumerate() {
            let at = |message: String| invalid(format!("channels[{index}]: {message}"));
            let key = match fields.remove("key") {
                Some(Value::String(key)) if !key.is_empty() && key.len() <= 100 => key,
                _ => {
                    return Err(at(
                        "key is required: a string of 1 to 100 characters".to_owned()
                    ));
                }
            };
            if !channel_keys.insert(key.clone()) {
                return Err(at(format!("key {key:?} is declared twice")));
            }
            let name = match fields.remove("name") {
                Some(Value::String(name)) => {
                    check_name(&name).map_err(|error| at(format!("name {error}")))?;
                    name
                }
                _ => return Err(at("name is required (a string)".to_owned())),
            };
            if let Some(variable) = fields.remove("secret_env") {
                let variable = variable.as_str().ok_or_else(|| {
                    at("secret_env must be the name of an environment variable".to_owned())
                })?;
                let secret = env(variable).ok_or_else(|| {
                    at(format!(
                        "secret_env: environment variable {variable} is not set"
                    ))
                })?;
                fields.insert("secret".to_owned(), Value::String(secret));
            }
            let allowed = ["kind", "url", "secret", "smtp_url", "from", "to"];
            if let Some(unknown) = fields
                .keys()
                .find(|field| !allowed.contains(&field.as_str()))
            {
                return Err(at(format!("unknown field `{unknown}`")));
            }
            let kind = kind_from_fields(&fields)
                .map_err(|message| at(format!("{message} (key {key:?})")))?;
            channel_specs.push(ChannelSpec { key, name, kind });
        }

        let mut monitor_specs = Vec::with_capacity(file.monitors.len());
        let mut monitor_keys = HashSet::new();
        let mut tokens = HashSet::new();
        for (index, declared) in file.monitors.into_iter().enumerate() {
            let at = |message: String| {
                invalid(format!(
                    "monitors[{index}] (key {:?}): {message}",
                    declared.key
                ))
            };
            if !monitor_keys.insert(declared.key.clone()) {
                return Err(at("key is declared twice".to_owned()));
            }
            if let Some(interval_seconds) = declared.interval_seconds
                && interval_seconds > declared.timeout_seconds
            {
                let rejection = Rejection::IntervalAboveTimeout {
                    interval_seconds,
                    timeout_seconds: declared.timeout_seconds,
                };
                return Err(at(rejection.to_string()));
            }
            for channel in &declared.channels {
                if !channel_keys.contains(channel) {
                    return Err(at(format!(
                        "channels: no channel with key {channel:?} is declared"
                    )));
                }
            }
            if declared.tags.len() > 32
                || declared
                    .tags
                    .iter()
                    .any(|tag| tag.is_empty() || tag.chars().count() > 64)
            {
                return Err(at("tags: at most 32 tags of 1 to 64 characters".to_owned()));
            }
            let sources = [
                declared.push_token.is_some(),
                declared.push_token_env.is_some(),
                declared.push_token_file.is_some(),
            ];
            if sources.iter().filter(|given| **given).count() > 1 {
                return Err(at(
                    "give at most one of push_token, push_token_env, push_token_file".to_owned(),
                ));
            }
            let raw = if let Some(token) = &declared.push_token {
                Some(token.clone())
            } else if let Some(variable) = &declared.push_token_env {
                Some(env(variable).ok_or_else(|| {
                    at(format!(
                        "push_token_env: environment variable {variable} is not set"
                    ))
                })?)
            } else if let Some(path) = &declared.push_token_file {
                Some(read_file(path).map_err(|error| {
                    at(format!(
                        "push_token_file: cannot read {}: {error}",
                        path.display()
                    ))
                })?)
            } else {
                None
            };
            let token = match raw {
                None => None,
                Some(raw) => Some(PushToken::parse(raw.trim()).ok_or_else(|| {
                    at("push token must be 22 base64url characters (128 bits), e.g. from `head -c16 /dev/urandom | base64 | tr '+/' '-_' | tr -d =`".to_owned())
                })?),
            };
            if let Some(token) = token
                && !tokens.insert(token)
            {
                return Err(at(
                    "the same push token is declared for two monitors".to_owned()
                ));
            }
            monitor_specs.push(MonitorSpec { declared, token });
        }
        Ok((file.prune, channel_specs, monitor_specs))
    }
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
