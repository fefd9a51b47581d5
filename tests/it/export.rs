//! `GET /api/export` (issue 19, item 6): the whole configuration as a monitors file.
//! Loaded with `--monitors-file` into a second real server on an empty data
//! directory, it makes the same monitors and channels (exported again, the same
//! text); without `secrets=true` it holds no push token and no channel credential,
//! and still loads once the variables it names are set; secrets need the admin token.

use std::collections::BTreeMap;

use reqwest::{Method, StatusCode, header};
use serde_json::{Map, Value, json};

use crate::support::{Api, ServerProcess, expect_error, expect_json, spawn_app};

/// A Healthchecks UUID brought along as a push token.
const IMPORTED_TOKEN: &str = "5c1bb7e2-3f4a-4b8e-9d2c-7a6f0e1d2b3c";

/// The signing secret of the plain monitor: written only with secrets.
const MONITOR_SECRET: &str = "export-signing-secret-0123456789";

/// Every credential the channels below are made with: none may be in an export
/// without secrets.
const CHANNEL_SECRETS: &[&str] = &[
    "url-secret-ops",
    "webhook-hmac-secret",
    "T0001/B0001/slack-url-secret",
    "discord-url-secret",
    "smtp-password-secret",
    "alertmanager.internal.example.com",
    "template-bearer-secret",
    "999:telegram-bot-token-secret",
    "matrix-access-token-secret",
];

async fn post(api: &Api, path: &str, body: Value) -> Value {
    expect_json(
        api.api(Method::POST, path)
            .json(&body)
            .send()
            .await
            .unwrap(),
        StatusCode::CREATED,
    )
    .await
}

async fn export(api: &Api, query: &str) -> String {
    let response = api
        .api(Method::GET, &format!("/api/export{query}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    assert_eq!(headers[header::CONTENT_TYPE], "application/yaml");
    assert_eq!(
        headers[header::CONTENT_DISPOSITION],
        "attachment; filename=\"pushmon-monitors.yaml\""
    );
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    response.text().await.unwrap()
}

async fn listing(api: &Api, path: &str, field: &str) -> Vec<Value> {
    let body = expect_json(
        api.api(Method::GET, path).send().await.unwrap(),
        StatusCode::OK,
    )
    .await;
    body[field].as_array().unwrap().clone()
}

/// A monitor's or channel's API view without what a new server gives anew (ids,
/// times, state), its channels by name, and without its key: compared separately.
fn configuration(view: &Value, channel_names: &BTreeMap<String, String>) -> Map<String, Value> {
    const STATE: &[&str] = &[
        "id",
        "key",
        "created_at",
        "push_url",
        "status",
        "last_heartbeat_at",
        "last_status_change_at",
        "last_msg",
        "last_value",
        "next_due_at",
        "next_deadline_at",
        "last_success_at",
        "current_run",
        "open_runs",
        "last_run",
        "consecutive_failures",
        "consecutive_successes",
        "down_reason",
        "in_maintenance",
        "maintenance_until",
    ];
    let mut fields = view.as_object().unwrap().clone();
    fields.retain(|name, _| !STATE.contains(&name.as_str()));
    if let Some(Value::Array(channels)) = fields.get_mut("channels") {
        for channel in channels {
            *channel = json!(channel_names[channel.as_str().unwrap()]);
        }
    }
    fields
}

/// Channel id → name, for comparing monitors' channels across servers.
fn names(channels: &[Value]) -> BTreeMap<String, String> {
    channels
        .iter()
        .map(|channel| {
            (
                channel["id"].as_str().unwrap().to_owned(),
                channel["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn an_export_loaded_into_an_empty_server_reproduces_the_configuration() {
    let first = spawn_app().await;

    // Channels of every kind, two without secrets in their settings.
    let ops = post(
        &first,
        "/api/channels",
        json!({"name": "Ops hook", "kind": "webhook",
               "url": "https://hooks.example.com/ops?sig=url-secret-ops",
               "secret": "webhook-hmac-secret"}),
    )
    .await;
    let slack = post(
        &first,
        "/api/channels",
        json!({"name": "Slack #ops", "kind": "slack",
               "url": "https://hooks.slack.com/services/T0001/B0001/slack-url-secret"}),
    )
    .await;
    post(
        &first,
        "/api/channels",
        json!({"name": "Discord", "kind": "discord",
               "url": "https://discord.com/api/webhooks/1/discord-url-secret"}),
    )
    .await;
    let mail = post(
        &first,
        "/api/channels",
        json!({"name": "On-call mail", "kind": "email",
               "smtp_url": "smtp://pushmon:smtp-password-secret@relay.example.com:587?tls=required",
               "from": "pushmon@example.com",
               "to": ["oncall@example.com", "ops@example.com"]}),
    )
    .await;
    let alertmanager = post(
        &first,
        "/api/channels",
        json!({"name": "Alertmanager", "kind": "alertmanager",
               "url": "http://alertmanager.internal.example.com:9093"}),
    )
    .await;

    // Kinds that speak a service's API, and channels told about one kind of alert.
    let template = post(
        &first,
        "/api/channels",
        json!({"name": "Any service", "kind": "template", "method": "PATCH",
               "url": "https://api.example.com/incidents",
               "headers": {"Authorization": "Bearer template-bearer-secret", "X-Source": "pushmon"},
               "body": "{\"title\": \"{{summary}}\", \"id\": \"{{monitor.id}}\"}",
               "send_on": "down"}),
    )
    .await;
    post(
        &first,
        "/api/channels",
        json!({"name": "Telegram", "kind": "telegram",
               "bot_token": "999:telegram-bot-token-secret", "chat_id": -100123,
               "send_on": "up"}),
    )
    .await;
    post(
        &first,
        "/api/channels",
        json!({"name": "Matrix", "kind": "matrix", "url": "https://matrix.example.org",
               "access_token": "matrix-access-token-secret", "room_id": "!ops:example.org"}),
    )
    .await;

    // An interval monitor with every job field, a cron monitor with maintenance
    // windows and an imported token, and a plain one.
    post(
        &first,
        "/api/monitors",
        json!({"name": "Nightly backup", "timeout_seconds": 90000, "interval_seconds": 86400,
               "channels": [ops["id"], mail["id"], template["id"]], "tags": ["backup", "prod", "123"],
               "slug": "nightly-backup", "max_runtime_seconds": 3600,
               "min_runtime_seconds": 10, "failure_threshold": 2, "recovery_threshold": 3,
               "realert_every_seconds": 7200,
               "labels": {"team": "storage", "example.com/env": "prod", "empty": ""},
               "severity": "warning", "allowed_sources": ["10.0.0.0/8", "127.0.0.1"]}),
    )
    .await;
    post(
        &first,
        "/api/monitors",
        json!({"name": "Weekly report: \"all\" #1", "schedule": "0 6 * * 1",
               "timezone": "Europe/Paris", "grace_seconds": 1800,
               "channels": [slack["id"], alertmanager["id"]],
               "maintenance": [
                   {"cron": "0 2 * * 0", "duration_seconds": 7200, "timezone": "Europe/Berlin"},
                   {"start": "2030-12-24T18:00:00Z", "end": "2030-12-26T08:00:00Z"}],
               "labels": {"team": "reports"}, "severity": "info",
               "push_token": IMPORTED_TOKEN}),
    )
    .await;
    post(
        &first,
        "/api/monitors",
        json!({"name": "Plain", "timeout_seconds": 60, "signing_secret": MONITOR_SECRET}),
    )
    .await;
    let monitors = listing(&first, "/api/monitors", "monitors").await;
    let channels = listing(&first, "/api/channels", "channels").await;
    let tokens: Vec<String> = monitors
        .iter()
        .map(|monitor| monitor["push_token"].as_str().unwrap().to_owned())
        .collect();
    assert!(tokens.contains(&IMPORTED_TOKEN.to_owned()));
    let severities: Vec<&Value> = monitors
        .iter()
        .map(|monitor| &monitor["severity"])
        .collect();
    assert_eq!(
        severities,
        [&json!("warning"), &json!("info"), &json!("critical")]
    );
    assert_eq!(monitors[0]["labels"]["example.com/env"], "prod");

    // Without secrets: no token and no channel credential, whoever asks.
    let without = export(&first, "").await;
    for secret in tokens
        .iter()
        .map(String::as_str)
        .chain(CHANNEL_SECRETS.iter().copied())
        .chain([MONITOR_SECRET])
    {
        assert!(!without.contains(secret), "{secret:?} is in\n{without}");
    }
    assert_eq!(export(&first, "?secrets=false").await, without);
    let reader = post(
        &first,
        "/api/keys",
        json!({"name": "reader", "scope": "read"}),
    )
    .await;
    let writer = post(
        &first,
        "/api/keys",
        json!({"name": "writer", "scope": "write"}),
    )
    .await;
    for key in [&reader, &writer] {
        let secret = key["key"].as_str().unwrap();
        let response = first
            .client
            .get(first.url("/api/export"))
            .bearer_auth(secret)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.text().await.unwrap(), without);
        let refused = first
            .client
            .get(first.url("/api/export?secrets=true"))
            .bearer_auth(secret)
            .send()
            .await
            .unwrap();
        assert_eq!(
            expect_error(refused, StatusCode::FORBIDDEN).await,
            "exporting secrets needs the admin token"
        );
    }
    let malformed = first
        .api(Method::GET, "/api/export?secrets=yes")
        .send()
        .await
        .unwrap();
    expect_error(malformed, StatusCode::BAD_REQUEST).await;

    // With secrets, loaded into an empty server, exported again: the same file.
    let with = export(&first, "?secrets=true").await;
    for written in [
        "severity: warning",
        "team: storage",
        "example.com/env: prod",
    ] {
        assert!(with.contains(written), "{written} missing in:\n{with}");
    }
    assert!(with.contains("- 10.0.0.0/8"), "{with}");
    for secret in tokens
        .iter()
        .map(String::as_str)
        .chain(CHANNEL_SECRETS.iter().copied())
        .chain([MONITOR_SECRET])
    {
        assert!(with.contains(secret), "{secret:?} is not in\n{with}");
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pushmon-monitors.yaml");
    std::fs::write(&file, &with).unwrap();
    let second = ServerProcess::start(
        &dir.path().join("data"),
        &["--monitors-file", file.to_str().unwrap()],
    )
    .await;
    assert_eq!(export(&second, "?secrets=true").await, with);

    // Field by field, the API shows the same monitors and channels.
    let imported_monitors = listing(&second, "/api/monitors", "monitors").await;
    let imported_channels = listing(&second, "/api/channels", "channels").await;
    assert_eq!(imported_channels.len(), channels.len());
    for (original, imported) in channels.iter().zip(&imported_channels) {
        assert_eq!(
            imported["key"],
            format!("channel-{}", original["id"].as_str().unwrap())
        );
        let (mut original, mut imported) = (original.clone(), imported.clone());
        for view in [&mut original, &mut imported] {
            let fields = view.as_object_mut().unwrap();
            for name in ["id", "key", "created_at"] {
                fields.remove(name);
            }
        }
        assert_eq!(imported, original);
    }
    assert_eq!(imported_monitors.len(), monitors.len());
    let (original_names, imported_names) = (names(&channels), names(&imported_channels));
    for (original, imported) in monitors.iter().zip(&imported_monitors) {
        assert_eq!(
            imported["key"],
            format!("monitor-{}", original["id"].as_str().unwrap())
        );
        assert_eq!(
            configuration(imported, &imported_names),
            configuration(original, &original_names)
        );
    }
    // The jobs' URLs still work on the new server.
    // The plain monitor's pushes must still be signed, with the same secret.
    for token in &tokens[..2] {
        second.push_ok(token, &[]).await;
    }
    assert_eq!(
        second.push(&tokens[2], &[]).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let signed = crate::signed::send_signed(
        &second,
        Method::POST,
        &format!("/api/push/{}", tokens[2]),
        b"",
        MONITOR_SECRET,
        crate::signed::unix_now(),
    )
    .await;
    assert_eq!(signed.status(), StatusCode::OK);
    let (status, _) = second.sigterm().await;
    assert!(status.success());

    // Without secrets, the file loads once the variables it lists are set, and the
    // monitors get new tokens.
    let variables: Vec<(String, String)> = without
        .lines()
        .filter_map(|line| line.strip_prefix("#   "))
        .map(|line| {
            let (variable, field) = line.split_once(": ").unwrap();
            let value = if field.ends_with(".smtp_url") {
                "smtp://relay.example.org:25"
            } else if field.ends_with(".secret") || field.ends_with(".access_token") {
                "another-secret"
            } else if field.ends_with(".bot_token") {
                "1:another-token"
            } else if field.ends_with(".signing_secret") {
                "another-signing-secret-0123"
            } else if field.ends_with(".headers") {
                r#"{"Authorization": "Bearer another"}"#
            } else {
                "https://hooks.example.org/elsewhere"
            };
            (variable.to_owned(), value.to_owned())
        })
        .collect();
    // A URL for each channel but Telegram's, the webhook's secret, the templated
    // webhook's headers, the bot token, the access token and the monitor's signing
    // secret.
    assert_eq!(variables.len(), channels.len() + 4, "{without}");
    assert!(
        without.contains("signing_secret_env: PUSHMON_MONITOR_MONITOR_"),
        "{without}"
    );
    assert!(without.contains("send_on: down") && without.contains("send_on: up"));
    let file = dir.path().join("without-secrets.yaml");
    std::fs::write(&file, &without).unwrap();
    let env: Vec<(&str, &str)> = variables
        .iter()
        .map(|(variable, value)| (variable.as_str(), value.as_str()))
        .collect();
    let third = ServerProcess::start_with_env(
        &dir.path().join("data-without-secrets"),
        &["--monitors-file", file.to_str().unwrap()],
        &env,
    )
    .await;
    let loaded = listing(&third, "/api/monitors", "monitors").await;
    assert_eq!(loaded.len(), monitors.len());
    for (original, loaded) in monitors.iter().zip(&loaded) {
        assert_eq!(loaded["name"], original["name"]);
        assert_eq!(loaded["signed"], original["signed"]);
        assert_eq!(loaded["allowed_sources"], original["allowed_sources"]);
        assert_ne!(loaded["push_token"], original["push_token"]);
    }
    assert_eq!(
        listing(&third, "/api/channels", "channels").await.len(),
        channels.len()
    );
    let (status, _) = third.sigterm().await;
    assert!(status.success());
}
