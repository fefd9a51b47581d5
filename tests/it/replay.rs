//! The logs alone rebuild everything (`docs/operations.md`, "`pushmon check`"): for any
//! sequence of API calls against the real server, replaying the stored events (no
//! snapshot, no record) gives the monitors, channels and API keys the server's own
//! listings showed before it stopped, and `pushmon check` finds the snapshots,
//! records and outbox equal to that replay. A proptest: each case a random sequence
//! of calls (create, change, pause, resume, rotate, delete monitors; create, redeclare
//! and delete channels, some delivering and some failing, some told about `down`s or
//! `up`s only and changed between them, so deliveries are recorded,
//! settled for deleted monitors and still owed at the stop; create and revoke keys;
//! pushes up and down).

use std::path::Path;

use proptest::prelude::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use pushmon::store::{EventStore, OpenOptions};

use crate::receiver::Receiver;
use crate::support::{Api, TestApp, check_store, expect_json, spawn_app_with};

/// One API call; indices pick among what exists (modulo), and are skipped when
/// nothing does.
#[derive(Clone, Debug)]
enum Op {
    CreateMonitor {
        long_timeout: bool,
        channels: u8,
        labels: u8,
    },
    /// `labels` 0 leaves the labels and severity as they are.
    UpdateMonitor {
        pick: usize,
        rename: bool,
        channels: u8,
        labels: u8,
    },
    Pause(usize),
    Resume(usize),
    /// Muted until its recovery (a timed mute would end with the clock).
    Mute(usize),
    Unmute(usize),
    Rotate(usize),
    DeleteMonitor(usize),
    /// A `down` then the monitor's deletion at once: its deliveries end after it is
    /// gone, and the store records their outcomes in its log.
    DownThenDelete(usize),
    /// 0: delivers; 1: fails (recorded as failed after a few quick attempts); 2: hangs
    /// (still owed at the stop).
    CreateChannel(u8),
    DeleteChannel(usize),
    /// A channel's `send_on` changed to `down`, `up` or `both` (0, 1, 2).
    ChangeSendOn(usize, u8),
    /// Restart with a monitors file declaring a channel of this name: created the
    /// first time, updated when the name differs.
    DeclareChannel(u8),
    CreateKey {
        write: bool,
    },
    RevokeKey(usize),
    Push {
        pick: usize,
        up: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (any::<bool>(), any::<u8>(), any::<u8>())
            .prop_map(|(long_timeout, channels, labels)| Op::CreateMonitor { long_timeout, channels, labels }),
        1 => (any::<usize>(), any::<bool>(), any::<u8>(), any::<u8>())
            .prop_map(|(pick, rename, channels, labels)| Op::UpdateMonitor { pick, rename, channels, labels }),
        1 => any::<usize>().prop_map(Op::Pause),
        1 => any::<usize>().prop_map(Op::Resume),
        1 => any::<usize>().prop_map(Op::Mute),
        1 => any::<usize>().prop_map(Op::Unmute),
        1 => any::<usize>().prop_map(Op::Rotate),
        1 => any::<usize>().prop_map(Op::DeleteMonitor),
        1 => any::<usize>().prop_map(Op::DownThenDelete),
        2 => (0u8..3).prop_map(Op::CreateChannel),
        1 => any::<usize>().prop_map(Op::DeleteChannel),
        1 => (any::<usize>(), 0u8..3).prop_map(|(pick, send_on)| Op::ChangeSendOn(pick, send_on)),
        1 => (0u8..3).prop_map(Op::DeclareChannel),
        1 => any::<bool>().prop_map(|write| Op::CreateKey { write }),
        1 => any::<usize>().prop_map(Op::RevokeKey),
        5 => (any::<usize>(), any::<bool>()).prop_map(|(pick, up)| Op::Push { pick, up }),
    ]
}

/// What the sequence has made so far (ids, and each monitor's push token).
#[derive(Default)]
struct Made {
    monitors: Vec<(String, String)>,
    channels: Vec<String>,
    keys: Vec<String>,
}

fn pick<T>(items: &[T], index: usize) -> Option<&T> {
    (!items.is_empty()).then(|| &items[index % items.len()])
}

/// Labels and a severity picked by `mask`'s bits.
fn labels_of(mask: u8) -> (Value, &'static str) {
    let mut labels = serde_json::Map::new();
    if mask & 1 != 0 {
        labels.insert(
            "team".to_owned(),
            json!(if mask & 2 != 0 { "a" } else { "b" }),
        );
    }
    if mask & 4 != 0 {
        labels.insert("example.com/env".to_owned(), json!("prod"));
    }
    let severity = ["critical", "warning", "info"][usize::from(mask >> 3) % 3];
    (Value::Object(labels), severity)
}

/// The channels of `mask` among those made.
fn channels_of(made: &Made, mask: u8) -> Vec<String> {
    made.channels
        .iter()
        .enumerate()
        .filter(|(index, _)| mask & (1 << (index % 8)) != 0)
        .map(|(_, id)| id.clone())
        .collect()
}

async fn send(api: &Api, method: Method, path: &str, body: Option<Value>) -> reqwest::Response {
    let request = api.api(method, path);
    let request = match body {
        Some(body) => request.json(&body),
        None => request,
    };
    request.send().await.expect("send")
}

/// `receivers`: one that answers 200, one that never answers.
async fn apply(
    app: &mut Option<TestApp>,
    op: &Op,
    made: &mut Made,
    receivers: &(Receiver, Receiver),
) {
    let api: Api = (**app.as_ref().expect("running")).clone();
    match op {
        Op::CreateMonitor {
            long_timeout,
            channels,
            labels,
        } => {
            let (labels, severity) = labels_of(*labels);
            let body = json!({
                "name": format!("m{}", made.monitors.len()),
                "timeout_seconds": if *long_timeout { 86_400 } else { 3600 },
                "channels": channels_of(made, *channels),
                "labels": labels,
                "severity": severity,
            });
            let monitor = api.create_monitor_from(&body).await;
            made.monitors.push((monitor.id, monitor.push_token));
        }
        Op::UpdateMonitor {
            pick: index,
            rename,
            channels,
            labels,
        } => {
            let Some((id, _)) = pick(&made.monitors, *index) else {
                return;
            };
            let mut body = json!({"channels": channels_of(made, *channels)});
            if *labels != 0 {
                let (labels, severity) = labels_of(*labels);
                body["labels"] = labels;
                body["severity"] = json!(severity);
            }
            if *rename {
                body["name"] = json!(format!("renamed {index}"));
            }
            let response = api.patch_monitor(id, &body).await;
            expect_json(response, StatusCode::OK).await;
        }
        Op::Pause(index) | Op::Resume(index) | Op::Rotate(index) => {
            let Some((id, _)) = pick(&made.monitors, *index).cloned() else {
                return;
            };
            let monitor = match op {
                Op::Pause(_) => api.pause(&id).await,
                Op::Resume(_) => api.resume(&id).await,
                _ => api.rotate_token(&id).await,
            };
            if let Some(entry) = made.monitors.iter_mut().find(|(made_id, _)| *made_id == id) {
                entry.1 = monitor.push_token;
            }
        }
        Op::Mute(index) | Op::Unmute(index) => {
            let Some((id, _)) = pick(&made.monitors, *index).cloned() else {
                return;
            };
            let (path, body) = match op {
                Op::Mute(_) => (
                    format!("/api/monitors/{id}/mute"),
                    Some(json!({"until_recovery": true})),
                ),
                _ => (format!("/api/monitors/{id}/unmute"), None),
            };
            let response = send(&api, Method::POST, &path, body).await;
            expect_json(response, StatusCode::OK).await;
        }
        Op::DeleteMonitor(index) => {
            if made.monitors.is_empty() {
                return;
            }
            let (id, _) = made.monitors.remove(index % made.monitors.len());
            assert_eq!(
                api.delete_monitor(&id).await.status(),
                StatusCode::NO_CONTENT
            );
        }
        Op::DownThenDelete(index) => {
            if made.monitors.is_empty() {
                return;
            }
            let (id, token) = made.monitors.remove(index % made.monitors.len());
            api.push_ok(&token, &[("status", "down"), ("msg", "last words")])
                .await;
            assert_eq!(
                api.delete_monitor(&id).await.status(),
                StatusCode::NO_CONTENT
            );
        }
        Op::CreateChannel(kind) => {
            let url = match kind {
                0 => receivers.0.url("/alerts"),
                1 => "http://127.0.0.1:1/nobody".to_owned(),
                _ => receivers.1.url("/hangs"),
            };
            // Every third channel is told about `down`s only, every third `up`s only.
            let send_on = ["both", "down", "up"][made.channels.len() % 3];
            let body = json!({"kind": "webhook", "name": format!("c{}", made.channels.len()),
                              "url": url, "send_on": send_on});
            let response = send(&api, Method::POST, "/api/channels", Some(body)).await;
            let created = expect_json(response, StatusCode::CREATED).await;
            made.channels
                .push(created["id"].as_str().expect("id").to_owned());
        }
        Op::ChangeSendOn(index, send_on) => {
            if made.channels.is_empty() {
                return;
            }
            let id = &made.channels[index % made.channels.len()];
            let send_on = ["down", "up", "both"][usize::from(*send_on)];
            let body = json!({ "send_on": send_on });
            let response = send(
                &api,
                Method::PATCH,
                &format!("/api/channels/{id}"),
                Some(body),
            )
            .await;
            expect_json(response, StatusCode::OK).await;
        }
        Op::DeleteChannel(index) => {
            if made.channels.is_empty() {
                return;
            }
            let id = made.channels.remove(index % made.channels.len());
            let response = send(&api, Method::DELETE, &format!("/api/channels/{id}"), None).await;
            assert_eq!(response.status(), StatusCode::NO_CONTENT);
        }
        Op::DeclareChannel(variant) => {
            let running = app.take().expect("running");
            let mut stopped = running.shutdown().await;
            let file = stopped.data_dir.path().join("monitors.yaml");
            std::fs::write(
                &file,
                format!(
                    "channels:\n  - key: declared\n    kind: webhook\n    name: declared {variant}\n    url: {}\n",
                    receivers.0.url("/declared")
                ),
            )
            .expect("write the monitors file");
            stopped.config.monitors_file = Some(file);
            let restarted = stopped.start().await;
            // The declared channel may be listed on monitors from here on.
            let listed = list(&restarted, "/api/channels", "channels").await;
            for channel in listed {
                let id = channel["id"].as_str().expect("id").to_owned();
                if channel["key"] == "declared" && !made.channels.contains(&id) {
                    made.channels.push(id);
                }
            }
            *app = Some(restarted);
        }
        Op::CreateKey { write } => {
            let body = json!({"name": format!("k{}", made.keys.len()), "scope": if *write { "write" } else { "read" }});
            let response = send(&api, Method::POST, "/api/keys", Some(body)).await;
            let created = expect_json(response, StatusCode::CREATED).await;
            made.keys
                .push(created["id"].as_str().expect("id").to_owned());
        }
        Op::RevokeKey(index) => {
            if made.keys.is_empty() {
                return;
            }
            let id = made.keys.remove(index % made.keys.len());
            let response = send(&api, Method::DELETE, &format!("/api/keys/{id}"), None).await;
            assert_eq!(response.status(), StatusCode::NO_CONTENT);
        }
        Op::Push { pick: index, up } => {
            let Some((_, token)) = pick(&made.monitors, *index) else {
                return;
            };
            let status = if *up { "up" } else { "down" };
            api.push_ok(token, &[("status", status), ("msg", "proptest")])
                .await;
        }
    }
}

async fn list(api: &Api, path: &str, field: &str) -> Vec<Value> {
    let response = send(api, Method::GET, path, None).await;
    let body = expect_json(response, StatusCode::OK).await;
    let mut items = body[field].as_array().expect("a list").clone();
    items.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    items
}

/// The replay of the stopped store in `dir`, as the API lists things.
async fn replayed_listings(dir: &Path) -> (Vec<Value>, Vec<Value>, Vec<Value>) {
    let dir = dir.to_owned();
    let (opened, replayed) = tokio::task::spawn_blocking(move || {
        let opened = EventStore::open_with(&dir, OpenOptions::inspect()).expect("opens");
        let replayed = opened.store.replay().expect("replays");
        (opened, replayed)
    })
    .await
    .expect("replay task");
    let monitors = replayed
        .monitors
        .values()
        .map(|monitor| {
            json!({
                "id": monitor.id.to_string(),
                "name": monitor.config.name,
                "status": format!("{:?}", monitor.status).to_lowercase(),
                "timeout_seconds": monitor.config.timeout_seconds,
                "interval_seconds": monitor.config.interval_seconds,
                "channels": monitor.config.channels.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "push_token": monitor.token.reveal(),
                "last_msg": monitor.last_msg.as_ref().map(|msg| msg.as_str().to_owned()),
                "last_value": monitor.last_value,
                "labels": monitor.config.labels.iter().map(|(key, value)| (key.to_owned(), json!(value))).collect::<serde_json::Map<_, _>>(),
                "severity": monitor.config.severity.as_str(),
                "muted": monitor.mute.map(|mute| json!({
                    "until": mute.until.map(|until| until.to_rfc3339()),
                    "until_recovery": mute.until_recovery,
                    "since": mute.since.to_rfc3339(),
                })),
            })
        })
        .collect();
    let channels = replayed
        .channels
        .values()
        .map(|channel| json!({"id": channel.id.to_string(), "name": channel.name, "kind": channel.kind.name()}))
        .collect();
    let keys = replayed
        .api_keys
        .values()
        .map(|key| json!({"id": key.id.to_string(), "name": key.name, "scope": key.scope.as_str()}))
        .collect();
    let (store, writer) = (opened.store, opened.writer_thread);
    store.close().await;
    drop(store);
    tokio::task::spawn_blocking(move || writer.join().expect("writer ends"))
        .await
        .expect("join task");
    (monitors, channels, keys)
}

/// Only the fields a replay is compared on.
fn project(items: &[Value], fields: &[&str]) -> Vec<Value> {
    items
        .iter()
        .map(|item| {
            let mut kept = serde_json::Map::new();
            for field in fields {
                kept.insert((*field).to_owned(), item[*field].clone());
            }
            Value::Object(kept)
        })
        .collect()
}

async fn run_case(ops: Vec<Op>) {
    let receivers = (Receiver::start().await, Receiver::start().await);
    receivers.1.hang();
    let mut app = Some(
        spawn_app_with(|config| {
            config.alert_retry.initial = std::time::Duration::from_millis(20);
            config.alert_retry.max_attempts = 3;
        })
        .await,
    );
    let mut made = Made::default();
    for op in &ops {
        apply(&mut app, op, &mut made, &receivers).await;
    }
    // Let the failing deliveries end and be recorded (or settled, if their monitor
    // is gone); those to the receiver that hangs stay owed.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let app = app.take().expect("running");
    let monitors = list(&app, "/api/monitors", "monitors").await;
    let channels = list(&app, "/api/channels", "channels").await;
    let keys = list(&app, "/api/keys", "keys").await;
    let stopped = app.shutdown().await;
    // Snapshots, records and the outbox equal the replay.
    check_store(stopped.data_dir.path());
    // And the replay is what the server listed.
    let (replayed_monitors, replayed_channels, replayed_keys) =
        replayed_listings(stopped.data_dir.path()).await;
    let monitor_fields = [
        "id",
        "name",
        "status",
        "timeout_seconds",
        "interval_seconds",
        "channels",
        "push_token",
        "last_msg",
        "last_value",
        "labels",
        "severity",
        "muted",
    ];
    assert_eq!(
        project(&monitors, &monitor_fields),
        replayed_monitors,
        "monitors"
    );
    assert_eq!(
        project(&channels, &["id", "name", "kind"]),
        replayed_channels,
        "channels"
    );
    assert_eq!(
        project(&keys, &["id", "name", "scope"]),
        replayed_keys,
        "keys"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn replaying_the_logs_alone_gives_what_the_server_served(ops in proptest::collection::vec(op(), 15..25)) {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(run_case(ops));
    }
}
