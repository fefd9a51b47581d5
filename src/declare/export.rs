//! `GET /api/export`: the whole configuration, every channel and monitor, written as
//! a monitors file (`docs/monitors-file.md`) with the same types the file is read
//! with, so that loading it with `--monitors-file` into an empty server reproduces
//! the configuration. The route is handed to `http::App` by `app`, as the dashboard's
//! are (`http` does not import `declare`).
//!
//! Items without a key get one made from their id (`monitor-<id>`, `channel-<id>`).
//! Without `?secrets=true` (the admin token only) the file holds no credential: no
//! push token (each monitor gets a new one where the file is loaded) and no channel
//! URL, SMTP URL, webhook secret, token, key or header, each named instead by an
//! environment variable (`url_env`, `smtp_url_env`, `secret_env`, `bot_token_env`,
//! `headers_env`…) that the file's first lines list, and no monitor's signing secret
//! (`signing_secret_env` instead).

use std::collections::{HashMap, HashSet};

use axum::Extension;
use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::Value;

use super::{DeclaredChannel, DeclaredMonitor, File};
use crate::alert::channels::{Shown, kind_fields};
use crate::domain::channel::{Channel, SendOn};
use crate::domain::ids::{ChannelId, MonitorId};
use crate::domain::labels::Severity;
use crate::domain::machine::Monitor;
use crate::http::AppState;
use crate::http::auth::{Principal, require_access};
use crate::http::error::ApiError;
use crate::http::monitor_fields::{allowed_sources_text, window_json};

pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/api/export", get(export_route))
        .route_layer(middleware::from_fn_with_state(state, require_access))
}

#[derive(Deserialize)]
struct ExportQuery {
    secrets: Option<String>,
}

async fn export_route(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    query: Result<Query<ExportQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) =
        query.map_err(|error| ApiError::BadRequest(format!("malformed query string: {error}")))?;
    let secrets = match query.secrets.as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => {
            return Err(ApiError::BadRequest(
                "secrets must be true or false".to_owned(),
            ));
        }
    };
    if secrets && principal != Principal::Admin {
        return Err(ApiError::Forbidden(
            "exporting secrets needs the admin token",
        ));
    }
    let monitors = state.store.monitors().await?;
    let channels = state.channels.list();
    let text = export(&monitors, &channels, secrets)
        .map_err(|error| ApiError::Internal(format!("cannot write the export: {error}")))?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/yaml"),
            ),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_static("attachment; filename=\"pushmon-monitors.yaml\""),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        text,
    )
        .into_response())
}

/// The monitors file of `monitors` and `channels` (in this order, each in creation
/// order), with their secrets or without (see the module's doc).
pub fn export(
    monitors: &[Monitor],
    channels: &[Channel],
    secrets: bool,
) -> Result<String, serde_yaml_ng::Error> {
    let channel_keys = keys(
        channels
            .iter()
            .map(|channel| (channel.key.as_deref(), format!("channel-{}", channel.id))),
    );
    let monitor_keys = keys(monitors.iter().map(|monitor| {
        (
            monitor.config.key.as_deref(),
            format!("monitor-{}", monitor.id),
        )
    }));
    let key_of: HashMap<ChannelId, &str> = channels
        .iter()
        .zip(&channel_keys)
        .map(|(channel, key)| (channel.id, key.as_str()))
        .collect();
    let monitor_key_of: HashMap<MonitorId, String> = monitors
        .iter()
        .zip(&monitor_keys)
        .map(|(monitor, key)| (monitor.id, key.clone()))
        .collect();

    let mut variables = Vec::new();
    let mut prefixes = HashSet::new();
    let declared_channels = channels
        .iter()
        .zip(&channel_keys)
        .enumerate()
        .map(|(index, (channel, key))| {
            let prefix = variable_prefix("CHANNEL", key, &mut prefixes);
            let mut credential = |field: &str, value: &str| -> (Option<String>, Option<String>) {
                if secrets {
                    (Some(value.to_owned()), None)
                } else {
                    let variable = format!("{prefix}_{}", field.to_ascii_uppercase());
                    variables.push((variable.clone(), format!("channels[{index}].{field}")));
                    (None, Some(variable))
                }
            };
            let mut declared = DeclaredChannel {
                key: key.clone(),
                name: channel.name.clone(),
                kind: channel.kind.name().to_owned(),
                send_on: (channel.send_on != SendOn::Both)
                    .then(|| channel.send_on.as_str().to_owned()),
                ..DeclaredChannel::default()
            };
            for (field, value, shown) in kind_fields(&channel.kind) {
                match (field, value) {
                    (_, Value::Null) => {}
                    ("headers", headers) => {
                        if secrets {
                            declared.headers = Some(headers);
                        } else {
                            (_, declared.headers_env) = credential("headers", &headers.to_string());
                        }
                    }
                    (field, Value::String(text)) if shown != Shown::Plain => {
                        let (value, variable) = credential(field, &text);
                        declared.set_credential(field, value, variable);
                    }
                    ("from", Value::String(from)) => declared.from = Some(from),
                    ("to", to) => declared.to = Some(to),
                    ("method", Value::String(method)) => {
                        // POST is the default: written only when it is not.
                        declared.method = (method != "POST").then_some(method);
                    }
                    ("body", Value::String(body)) => declared.body = Some(body),
                    ("chat_id", chat_id) => declared.chat_id = Some(chat_id),
                    ("api_url", Value::String(api_url)) => declared.api_url = Some(api_url),
                    ("priority", priority) => declared.priority = Some(priority),
                    ("room_id", Value::String(room_id)) => declared.room_id = Some(room_id),
                    _ => {}
                }
            }
            declared
        })
        .collect();

    let declared_monitors = monitors
        .iter()
        .zip(monitor_keys)
        .enumerate()
        .map(|(index, (monitor, key))| {
            let mut declared = declared_monitor(monitor, key, &key_of, &monitor_key_of, secrets);
            if let Some(secret) = &monitor.config.signing_secret {
                if secrets {
                    declared.signing_secret = Some(secret.clone());
                } else {
                    let prefix = variable_prefix("MONITOR", &declared.key, &mut prefixes);
                    let variable = format!("{prefix}_SIGNING_SECRET");
                    variables.push((
                        variable.clone(),
                        format!("monitors[{index}].signing_secret"),
                    ));
                    declared.signing_secret_env = Some(variable);
                }
            }
            declared
        })
        .collect();
    let file = File {
        prune: false,
        channels: declared_channels,
        monitors: declared_monitors,
    };
    let body = serde_yaml_ng::to_string(&file)?;
    Ok(format!("{}{body}", header_lines(secrets, &variables)))
}

fn declared_monitor(
    monitor: &Monitor,
    key: String,
    key_of: &HashMap<ChannelId, &str>,
    monitor_key_of: &HashMap<MonitorId, String>,
    secrets: bool,
) -> DeclaredMonitor {
    let config = &monitor.config;
    let (timeout_seconds, interval_seconds, schedule, timezone, grace_seconds) = match &config
        .schedule
    {
        // A cron monitor's timeout and interval are not part of it (the file
        // refuses them beside a schedule).
        Some(schedule) => (
            None,
            None,
            Some(schedule.expression.clone()),
            Some(schedule.timezone.clone()),
            Some(schedule.grace_seconds),
        ),
        None => (
            Some(config.timeout_seconds),
            (config.interval_seconds != config.timeout_seconds).then_some(config.interval_seconds),
            None,
            None,
            None,
        ),
    };
    DeclaredMonitor {
        key,
        name: config.name.clone(),
        timeout_seconds,
        interval_seconds,
        schedule,
        timezone,
        grace_seconds,
        max_runtime_seconds: config.max_runtime_seconds,
        min_runtime_seconds: config.min_runtime_seconds,
        failure_threshold: (config.failure_threshold != 1).then_some(config.failure_threshold),
        recovery_threshold: (config.recovery_threshold != 1).then_some(config.recovery_threshold),
        realert_every_seconds: config.realert_every_seconds,
        maintenance: (!config.maintenance.is_empty())
            .then(|| Value::Array(config.maintenance.iter().map(window_json).collect())),
        channels: config
            .channels
            .iter()
            .filter_map(|id| key_of.get(id).map(|key| (*key).to_owned()))
            .collect(),
        tags: config.tags.clone(),
        labels: config
            .labels
            .iter()
            .map(|(key, value)| (key.to_owned(), value.to_owned()))
            .collect(),
        severity: (config.severity != Severity::Critical)
            .then(|| config.severity.as_str().to_owned()),
        slug: config.slug.clone(),
        min_instances: config.min_instances,
        instance_retention_seconds: config.instance_retention_seconds,
        parents: config
            .parents
            .iter()
            .filter_map(|id| monitor_key_of.get(id).map(|key| (*key).to_owned()))
            .collect(),
        dependency_grace_seconds: config.dependency_grace_seconds,
        push_token: secrets.then(|| monitor.token.reveal()),
        push_token_env: None,
        push_token_file: None,
        allowed_sources: allowed_sources_text(&config.allowed_sources),
        // Filled in by `export`, which names its variable if not the secret.
        signing_secret: None,
        signing_secret_env: None,
        signing_secret_file: None,
    }
}

/// Each item's key: its own, or the one made from its id; a made one that some item
/// already has gets a number after it, so every key in the file is distinct.
fn keys<'a>(items: impl Iterator<Item = (Option<&'a str>, String)> + Clone) -> Vec<String> {
    let mut taken: HashSet<String> = items
        .clone()
        .filter_map(|(own, _)| own.map(str::to_owned))
        .collect();
    items
        .map(|(own, made)| match own {
            Some(own) => own.to_owned(),
            None => {
                let mut key = made.clone();
                let mut number = 2;
                while taken.contains(&key) {
                    key = format!("{made}-{number}");
                    number += 1;
                }
                taken.insert(key.clone());
                key
            }
        })
        .collect()
}

/// `PUSHMON_CHANNEL_<KEY>` (or `PUSHMON_MONITOR_<KEY>`): the key in upper case,
/// anything but letters and digits made `_`, numbered if another key made the same.
fn variable_prefix(kind: &str, key: &str, taken: &mut HashSet<String>) -> String {
    let word: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    let base = format!("PUSHMON_{kind}_{word}");
    let mut prefix = base.clone();
    let mut number = 2;
    while !taken.insert(prefix.clone()) {
        prefix = format!("{base}_{number}");
        number += 1;
    }
    prefix
}

/// The comment the file starts with: what it is, and what to set before loading it.
fn header_lines(secrets: bool, variables: &[(String, String)]) -> String {
    let mut lines = String::from(
        "# pushmon's monitors and channels as a monitors file (docs/monitors-file.md).\n\
         # Load it with `pushmon serve --monitors-file <this file>`.\n",
    );
    if !secrets {
        lines.push_str(
            "# Exported without secrets: each monitor gets a new push token where it is loaded.\n",
        );
    }
    if !variables.is_empty() {
        lines.push_str("# Set these environment variables where it is loaded:\n");
        for (variable, field) in variables {
            lines.push_str(&format!("#   {variable}: {field}\n"));
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::declare::MonitorsFile;
    use crate::domain::channel::ChannelKind;
    use crate::domain::event::MonitorConfig;
    use crate::domain::ids::{MonitorId, PushToken, Timestamp};
    use crate::domain::labels::Labels;
    use crate::domain::schedule::{CronSchedule, MaintenanceWindow};

    fn now() -> Timestamp {
        Timestamp::parse_rfc3339("2026-11-29T12:00:00Z").expect("a timestamp")
    }

    fn channel(name: &str, kind: ChannelKind, key: Option<&str>, millis: i64) -> Channel {
        Channel {
            id: ChannelId::generate(Timestamp::from_millis(millis)),
            name: name.to_owned(),
            kind,
            created_at: Timestamp::from_millis(millis),
            key: key.map(str::to_owned),
            send_on: SendOn::Both,
        }
    }

    fn monitor(config: MonitorConfig, token: PushToken, millis: i64) -> Monitor {
        let at = Timestamp::from_millis(millis);
        Monitor::created(MonitorId::generate(at), at, config, token)
    }

    fn sample() -> (Vec<Monitor>, Vec<Channel>) {
        let channels = vec![
            channel(
                "Hook",
                ChannelKind::Webhook {
                    url: "https://hooks.example.com/a?token=hook-secret-url".to_owned(),
                    secret: Some("hmac-secret".to_owned()),
                },
                None,
                1,
            ),
            channel(
                "Mail",
                ChannelKind::Email {
                    smtp_url: "smtp://user:mail-password@relay.example.com:587".to_owned(),
                    from: "pushmon@example.com".to_owned(),
                    to: vec!["a@example.com".to_owned()],
                },
                Some("mail"),
                2,
            ),
        ];
        let mut cron = MonitorConfig::new("true", 0);
        cron.schedule = Some(CronSchedule {
            expression: "0 6 * * 1".to_owned(),
            timezone: "Europe/Paris".to_owned(),
            grace_seconds: 1800,
        });
        cron.tags = vec!["123".to_owned(), "a: b".to_owned()];
        cron.channels = vec![channels[0].id, channels[1].id];
        cron.failure_threshold = 3;
        cron.maintenance = vec![
            MaintenanceWindow::Recurring {
                cron: "0 2 * * 0".to_owned(),
                timezone: "UTC".to_owned(),
                duration_seconds: 7200,
            },
            MaintenanceWindow::Once {
                start: now(),
                end: Timestamp::parse_rfc3339("2026-12-01T00:00:00Z").expect("a timestamp"),
            },
        ];
        cron.slug = Some("weekly".to_owned());
        cron.labels = Labels::new([
            ("team".to_owned(), "payments".to_owned()),
            ("example.com/tier".to_owned(), String::new()),
        ])
        .expect("valid labels");
        cron.severity = Severity::Warning;
        let mut interval = MonitorConfig::new("Backup", 600);
        interval.interval_seconds = 300;
        interval.key = Some("backup".to_owned());
        interval.realert_every_seconds = Some(3600);
        let monitors = vec![
            monitor(
                cron,
                PushToken::choose("5c1bb7e2-3f4a-4b8e-9d2c-7a6f0e1d2b3c").expect("a token"),
                3,
            ),
            monitor(interval, PushToken::from_bytes([7; 16]), 4),
        ];
        (monitors, channels)
    }

    /// The configurations the file yields, with channel keys for channel ids.
    fn reread(text: &str, env: &HashMap<String, String>) -> Vec<(MonitorConfig, Option<String>)> {
        let file = MonitorsFile::new("export.yaml");
        let (_, channels, monitors) = file
            .parse(
                text,
                &|name| env.get(name).cloned(),
                &|_| unreachable!(),
                now(),
            )
            .unwrap_or_else(|error| panic!("{error}\n{text}"));
        assert_eq!(channels.len(), 2);
        monitors
            .into_iter()
            .map(|spec| {
                let mut config = spec.config;
                config.tags = spec.declared.tags.clone();
                (config, spec.token.map(|token| token.reveal()))
            })
            .collect()
    }

    #[test]
    fn the_file_with_secrets_reads_back_as_the_same_configuration() {
        let (monitors, channels) = sample();
        let text = export(&monitors, &channels, true).expect("written");
        let read = reread(&text, &HashMap::new());
        for ((config, token), monitor) in read.iter().zip(&monitors) {
            let mut expected = MonitorConfig::clone(&monitor.config);
            expected.key = Some(
                expected
                    .key
                    .clone()
                    .unwrap_or_else(|| format!("monitor-{}", monitor.id)),
            );
            expected.channels = Vec::new();
            if expected.schedule.is_some() {
                (expected.timeout_seconds, expected.interval_seconds) = (0, 0);
            }
            assert_eq!(config, &expected, "{text}");
            assert_eq!(token.as_deref(), Some(monitor.token.reveal().as_str()));
        }
        assert!(
            text.contains("hmac-secret") && text.contains("mail-password"),
            "{text}"
        );
        assert!(
            text.contains(&format!("key: channel-{}", channels[0].id)),
            "{text}"
        );
        // Exporting what was read gives the same text.
        assert_eq!(export(&monitors, &channels, true).expect("written"), text);
    }

    #[test]
    fn the_file_without_secrets_names_variables_for_them_and_holds_none() {
        let (monitors, channels) = sample();
        let text = export(&monitors, &channels, false).expect("written");
        for secret in [
            "hook-secret-url",
            "hmac-secret",
            "mail-password",
            "5c1bb7e2-3f4a-4b8e-9d2c-7a6f0e1d2b3c",
            monitors[1].token.reveal().as_str(),
        ] {
            assert!(!text.contains(secret), "{secret} in\n{text}");
        }
        let hook = format!("PUSHMON_CHANNEL_CHANNEL_{}", channels[0].id)
            .to_ascii_uppercase()
            .replace('-', "_");
        for variable in [
            format!("{hook}_URL"),
            format!("{hook}_SECRET"),
            "PUSHMON_CHANNEL_MAIL_SMTP_URL".to_owned(),
        ] {
            assert!(
                text.contains(&format!("#   {variable}: ")),
                "{variable}\n{text}"
            );
        }
        let env: HashMap<String, String> = [
            (
                format!("{hook}_URL"),
                "https://hooks.example.com/b".to_owned(),
            ),
            (format!("{hook}_SECRET"), "s".to_owned()),
            (
                "PUSHMON_CHANNEL_MAIL_SMTP_URL".to_owned(),
                "smtp://relay:25".to_owned(),
            ),
        ]
        .into_iter()
        .collect();
        let read = reread(&text, &env);
        assert!(read.iter().all(|(_, token)| token.is_none()));
        let file = MonitorsFile::new("export.yaml");
        let missing = file
            .check(&text, &|_| None, &|_| unreachable!(), now())
            .err()
            .map(|error| error.to_string());
        assert!(
            missing
                .as_deref()
                .is_some_and(|error| error.contains("url_env: environment variable")),
            "{missing:?}"
        );
    }

    #[test]
    fn made_keys_and_variables_never_collide() {
        assert_eq!(
            keys(
                [
                    (Some("monitor-x"), "monitor-y".to_owned()),
                    (None, "monitor-x".to_owned()),
                    (None, "monitor-x".to_owned()),
                ]
                .into_iter()
            ),
            ["monitor-x", "monitor-x-2", "monitor-x-3"]
        );
        let mut taken = HashSet::new();
        assert_eq!(
            variable_prefix("CHANNEL", "a-b", &mut taken),
            "PUSHMON_CHANNEL_A_B"
        );
        assert_eq!(
            variable_prefix("CHANNEL", "a_b", &mut taken),
            "PUSHMON_CHANNEL_A_B_2"
        );
    }
}
