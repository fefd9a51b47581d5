//! The event log's two backends answer alike (`cluster/event_log.rs`): one sequence of
//! writes through the API (monitors, pushes, a bulk push, a job's signals, commands, a
//! bulk change, channels, API keys, a badge, a status page, and the refusals of each)
//! against a single node (the fjall log) and against a pod of the clustered mode
//! (the shard logs on a real NATS server), with the same statuses, bodies (ids,
//! tokens, URLs and times left out) and histories.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::cluster::serve_args;
use crate::nats::Nats;
use crate::support::{Api, ServerProcess};

/// Fields that name this run's ids, tokens or addresses, or a time (and every
/// `…_at`): left out of a transcript.
const VOLATILE: &[&str] = &[
    "id",
    "ids",
    "push_token",
    "push_url",
    "ping_url",
    "url",
    "badge_url",
    "page_url",
    "svg_url",
    "json_url",
    "key",
    "secret",
    "token",
    "monitor",
    "monitors",
    "at",
    "seq",
    "alert_id",
    "channels",
    "duration_ms",
];

fn without_volatile(value: &Value) -> Value {
    match value {
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .filter(|(name, _)| !VOLATILE.contains(&name.as_str()) && !name.ends_with("_at"))
                .map(|(name, value)| (name.clone(), without_volatile(value)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_volatile).collect()),
        other => other.clone(),
    }
}

/// What one step answered, as a transcript line; the body's JSON if any.
struct Transcript {
    lines: Vec<String>,
}

impl Transcript {
    async fn note(&mut self, step: &str, response: reqwest::Response) -> Value {
        let status = response.status();
        let text = response.text().await.unwrap();
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        self.lines
            .push(format!("{step}: {status} {}", without_volatile(&body)));
        body
    }
}

async fn send(api: &Api, method: Method, path: &str, body: Option<Value>) -> reqwest::Response {
    let request = api.api(method, path);
    match body {
        Some(body) => request.json(&body),
        None => request,
    }
    .send()
    .await
    .unwrap()
}

/// Polls `path` until `condition` holds of its body (a push is answered once durable
/// in either log; the state it leads to is applied after).
async fn until_body(api: &Api, path: &str, condition: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let body: Value = send(api, Method::GET, path, None)
            .await
            .json()
            .await
            .unwrap();
        if condition(&body) {
            return body;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{path}: never {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn text(value: &Value, field: &str) -> String {
    value[field]
        .as_str()
        .unwrap_or_else(|| panic!("no {field} in {value}"))
        .to_owned()
}

/// The same writes, in the same order; what each answered.
async fn script(api: &Api) -> Vec<String> {
    let mut transcript = Transcript { lines: Vec::new() };
    let t = &mut transcript;

    // Monitors: created, a slug and a channel refused.
    let monitor = t
        .note(
            "create",
            send(
                api,
                Method::POST,
                "/api/monitors",
                Some(json!({"name": "alpha", "slug": "alpha", "timeout_seconds": 600})),
            )
            .await,
        )
        .await;
    let (id, token) = (text(&monitor, "id"), text(&monitor, "push_token"));
    let path = format!("/api/monitors/{id}");
    t.note(
        "same slug",
        send(
            api,
            Method::POST,
            "/api/monitors",
            Some(json!({"name": "beta", "slug": "alpha", "timeout_seconds": 600})),
        )
        .await,
    )
    .await;
    t.note(
        "unknown channel",
        send(
            api,
            Method::POST,
            "/api/monitors",
            Some(json!({"name": "beta", "timeout_seconds": 600,
                "channels": ["0190a0a0-0000-7000-8000-000000000000"]})),
        )
        .await,
    )
    .await;

    // Pushes: plain, unknown, down (its state applied after the answer), a bulk push.
    t.note("push", api.push(&token, &[("msg", "first")]).await)
        .await;
    t.note("unknown token", api.push("n0tAT0ken", &[]).await)
        .await;
    t.note(
        "push down",
        api.push(&token, &[("status", "down"), ("msg", "broken")])
            .await,
    )
    .await;
    let down = until_body(api, &path, |monitor| monitor["status"] == "down").await;
    t.lines
        .push(format!("after down: {}", without_volatile(&down)));
    t.note(
        "bulk push",
        api.client
            .post(api.url("/api/push"))
            .json(&json!([
                {"token": token, "msg": "bulk-1"},
                {"token": token, "msg": "bulk-2"},
                {"token": "n0tAT0kenEither", "msg": "lost"},
            ]))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let up = until_body(api, &path, |monitor| monitor["last_msg"] == "bulk-2").await;
    t.lines
        .push(format!("after bulk: {}", without_volatile(&up)));

    // A job's signals.
    t.note("run start", api.push(&token, &[("kind", "start")]).await)
        .await;
    t.note(
        "run success",
        api.push(&token, &[("kind", "success"), ("msg", "done")])
            .await,
    )
    .await;

    // Commands.
    t.note(
        "rename",
        send(
            api,
            Method::PATCH,
            &path,
            Some(json!({"name": "alpha-2", "slug": "alpha-2"})),
        )
        .await,
    )
    .await;
    t.note(
        "bad change",
        send(
            api,
            Method::PATCH,
            &path,
            Some(json!({"timeout_seconds": 0})),
        )
        .await,
    )
    .await;
    t.note(
        "pause",
        send(api, Method::POST, &format!("{path}/pause"), None).await,
    )
    .await;
    t.note(
        "resume",
        send(api, Method::POST, &format!("{path}/resume"), None).await,
    )
    .await;

    // A bulk change.
    let other = t
        .note(
            "create other",
            send(
                api,
                Method::POST,
                "/api/monitors",
                Some(json!({"name": "gamma", "timeout_seconds": 600, "labels": {"team": "db"}})),
            )
            .await,
        )
        .await;
    t.note(
        "bulk pause",
        send(
            api,
            Method::POST,
            "/api/monitors/bulk?selector=team%3Ddb",
            Some(json!({"action": "pause"})),
        )
        .await,
    )
    .await;
    let other_path = format!("/api/monitors/{}", text(&other, "id"));
    t.note(
        "other after",
        send(api, Method::GET, &other_path, None).await,
    )
    .await;

    // Channels.
    let channel = t
        .note(
            "channel",
            send(
                api,
                Method::POST,
                "/api/channels",
                Some(json!({"kind": "webhook", "name": "ops", "url": "http://127.0.0.1:9/hook"})),
            )
            .await,
        )
        .await;
    let channel_path = format!("/api/channels/{}", text(&channel, "id"));
    t.note(
        "channel renamed",
        send(
            api,
            Method::PATCH,
            &channel_path,
            Some(json!({"kind": "webhook", "name": "ops-2", "url": "http://127.0.0.1:9/hook"})),
        )
        .await,
    )
    .await;
    t.note(
        "monitor with channel",
        send(
            api,
            Method::PATCH,
            &path,
            Some(json!({"channels": [text(&channel, "id")]})),
        )
        .await,
    )
    .await;
    t.note(
        "channel deleted",
        send(api, Method::DELETE, &channel_path, None).await,
    )
    .await;
    t.note(
        "channel deleted again",
        send(api, Method::DELETE, &channel_path, None).await,
    )
    .await;
    t.note(
        "unknown channel renamed",
        send(
            api,
            Method::PATCH,
            &channel_path,
            Some(json!({"kind": "webhook", "name": "ops-3", "url": "http://127.0.0.1:9/hook"})),
        )
        .await,
    )
    .await;
    let swept = until_body(api, &path, |monitor| monitor["channels"] == json!([])).await;
    t.lines.push(format!(
        "after channel deleted: {}",
        without_volatile(&swept)
    ));

    // API keys.
    let key = t
        .note(
            "api key",
            send(
                api,
                Method::POST,
                "/api/keys",
                Some(json!({"name": "grafana", "scope": "read"})),
            )
            .await,
        )
        .await;
    let key_path = format!("/api/keys/{}", text(&key, "id"));
    t.note("keys", send(api, Method::GET, "/api/keys", None).await)
        .await;
    t.note(
        "api key revoked",
        send(api, Method::DELETE, &key_path, None).await,
    )
    .await;
    t.note(
        "api key revoked again",
        send(api, Method::DELETE, &key_path, None).await,
    )
    .await;

    // A badge and a status page.
    let badge = t
        .note(
            "badge",
            send(
                api,
                Method::POST,
                "/api/badges",
                Some(json!({"monitor": id})),
            )
            .await,
        )
        .await;
    let badge_path = format!("/api/badges/{}", text(&badge, "id"));
    t.note(
        "badge removed",
        send(api, Method::DELETE, &badge_path, None).await,
    )
    .await;
    t.note(
        "badge removed again",
        send(api, Method::DELETE, &badge_path, None).await,
    )
    .await;
    let page = t
        .note(
            "status page",
            send(
                api,
                Method::POST,
                "/api/status-pages",
                Some(json!({"slug": "main", "title": "Main", "monitors": [id]})),
            )
            .await,
        )
        .await;
    t.note(
        "status page same slug",
        send(
            api,
            Method::POST,
            "/api/status-pages",
            Some(json!({"slug": "main", "title": "Again"})),
        )
        .await,
    )
    .await;
    let page_path = format!("/api/status-pages/{}", text(&page, "id"));
    t.note(
        "status page changed",
        send(
            api,
            Method::PATCH,
            &page_path,
            Some(json!({"title": "Changed"})),
        )
        .await,
    )
    .await;
    t.note(
        "status page removed",
        send(api, Method::DELETE, &page_path, None).await,
    )
    .await;

    // The history, then the deletion.
    let events = until_body(api, &format!("{path}/events?limit=100"), |_| true).await;
    let kinds: Vec<&str> = events["events"]
        .as_array()
        .unwrap_or_else(|| panic!("no events in {events}"))
        .iter()
        .filter_map(|event| event["kind"].as_str())
        .collect();
    t.lines.push(format!("history: {kinds:?}"));
    t.note("deleted", send(api, Method::DELETE, &path, None).await)
        .await;
    t.note("push after deletion", api.push(&token, &[]).await)
        .await;
    t.note(
        "deleted again",
        send(api, Method::DELETE, &path, None).await,
    )
    .await;
    transcript.lines
}

#[tokio::test]
async fn the_fjall_and_the_shard_logs_answer_the_same_writes_alike() {
    let single_dir = tempfile::tempdir().unwrap();
    let single = ServerProcess::start(single_dir.path(), &[]).await;
    let on_fjall = script(&single).await;

    let nats = Nats::single().await;
    let url = nats.urls()[0].clone();
    let pod_dir = tempfile::tempdir().unwrap();
    let pod = ServerProcess::start(pod_dir.path(), &serve_args(&url, "pod-a")).await;
    let on_shards = script(&pod).await;

    // The script did what it says on either backend (these hold of both, as equal).
    let statuses: Vec<&str> = on_fjall
        .iter()
        .filter_map(|line| line.split(": ").nth(1)?.split(' ').next())
        .collect();
    assert!(
        statuses.contains(&StatusCode::UNPROCESSABLE_ENTITY.as_str())
            && statuses.contains(&StatusCode::NOT_FOUND.as_str())
            && statuses.contains(&StatusCode::CREATED.as_str()),
        "{on_fjall:#?}"
    );
    let differences: Vec<String> = on_fjall
        .iter()
        .zip(&on_shards)
        .filter(|(fjall, shards)| fjall != shards)
        .map(|(fjall, shards)| format!("fjall:  {fjall}\nshards: {shards}"))
        .collect();
    assert!(
        differences.is_empty(),
        "the backends answered differently:\n{}",
        differences.join("\n")
    );
    assert_eq!(on_fjall.len(), on_shards.len());
}
