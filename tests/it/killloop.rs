//! Crash safety under load, several times over (issue 6, reduced for CI): clients push
//! heartbeats and flip monitors down and up while the server is SIGKILLed at random
//! moments and restarted. After every kill, `pushmon check` must find each monitor's
//! snapshot equal to a full replay of the log; at the end every acknowledged heartbeat
//! is in the history, no monitor is lost, and every alert in the history reached the
//! webhook (at least once).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use reqwest::{Method, StatusCode};
use serde_json::json;
use tokio::time::{Instant, sleep};

use crate::receiver::Receiver;
use crate::support::{ServerProcess, expect_json};

const MONITORS: usize = 20;
const CLIENTS: usize = 6;
const KILLS: usize = 3;

fn check_store(data_dir: &std::path::Path) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_pushmon"))
        .arg("check")
        .arg("--data-dir")
        .arg(data_dir)
        .output()
        .expect("run pushmon check");
    assert!(
        output.status.success(),
        "snapshots differ from a replay:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_sigkills_under_load_lose_nothing_acknowledged_and_miss_no_alert() {
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let args = [
        "--restart-grace",
        "0",
        "--alert-retry-initial-ms",
        "50",
        "--alert-max-attempts",
        "1000",
        // Six clients on one address would mostly meet the per-address limit.
        "--rate-limit-ip-per-second",
        "0",
    ];
    let mut server = ServerProcess::start(&data_dir, &args).await;
    let channel = expect_json(
        server
            .api(Method::POST, "/api/channels")
            .json(&json!({"kind": "webhook", "name": "sink", "url": receiver.url("/alerts")}))
            .send()
            .await
            .unwrap(),
        StatusCode::CREATED,
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut monitors = Vec::new();
    for index in 0..MONITORS {
        monitors.push(
            server
                .create_monitor_from(&json!({"name": format!("m{index}"), "timeout_seconds": 3600, "channels": [channel]}))
                .await,
        );
    }
    let tokens: Arc<Vec<(String, String)>> = Arc::new(
        monitors
            .iter()
            .map(|monitor| (monitor.id.clone(), monitor.push_token.clone()))
            .collect(),
    );
    let acknowledged: Arc<Mutex<HashMap<String, HashSet<String>>>> = Arc::default();

    for round in 0..KILLS {
        let base_url = server.base_url.clone();
        let mut clients = Vec::new();
        for client_index in 0..CLIENTS {
            let tokens = Arc::clone(&tokens);
            let acknowledged = Arc::clone(&acknowledged);
            let base_url = base_url.clone();
            clients.push(tokio::spawn(async move {
                let http = reqwest::Client::new();
                for sequence in 0.. {
                    let (pick, status) = {
                        let mut rng = rand::rng();
                        let status = if rng.random_bool(0.1) { "down" } else { "up" };
                        (rng.random_range(0..tokens.len()), status)
                    };
                    let (id, token) = &tokens[pick];
                    let msg = format!("r{round}-c{client_index}-{sequence}");
                    let sent = http
                        .post(format!("{base_url}/api/push/{token}"))
                        .query(&[("status", status), ("msg", &msg)])
                        .send()
                        .await;
                    match sent {
                        Ok(response) if response.status() == StatusCode::OK => {
                            acknowledged
                                .lock()
                                .unwrap()
                                .entry(id.clone())
                                .or_default()
                                .insert(msg);
                        }
                        Ok(_) => {}
                        // The server is gone: this client's round is over.
                        Err(_) => return,
                    }
                }
            }));
        }
        let run_for = Duration::from_millis(rand::rng().random_range(400..1200));
        sleep(run_for).await;
        server.sigkill().await;
        for client in clients {
            let _ = client.await;
        }
        check_store(&data_dir);
        server = ServerProcess::start(&data_dir, &args).await;
    }

    // Every monitor survived, with every acknowledged heartbeat in its history.
    let listed = server.list_monitors().await;
    assert_eq!(listed.len(), MONITORS, "a monitor was lost");
    let acknowledged = acknowledged.lock().unwrap().clone();
    let total: usize = acknowledged.values().map(HashSet::len).sum();
    assert!(total > 100, "only {total} heartbeats were acknowledged");
    let mut alerts_in_history = Vec::new();
    for (id, messages) in &acknowledged {
        let history = server.all_events(id).await;
        let recorded: HashSet<&str> = history
            .iter()
            .filter(|event| event.kind == "heartbeat")
            .filter_map(|event| event.msg.as_deref())
            .collect();
        let missing: Vec<&String> = messages
            .iter()
            .filter(|msg| !recorded.contains(msg.as_str()))
            .collect();
        assert!(
            missing.is_empty(),
            "monitor {id} lost acknowledged heartbeats {missing:?}"
        );
        for event in history
            .iter()
            .filter(|event| event.kind == "down" || event.kind == "up")
        {
            alerts_in_history.push((id.clone(), event.kind.clone(), event.at.clone()));
        }
    }

    // Every alert in the history reaches the webhook, at least once.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let delivered: HashSet<(String, String, String)> = receiver
            .delivered()
            .iter()
            .map(|request| {
                let body = request.json();
                (
                    body["monitor"]["id"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    body["event"].as_str().unwrap_or_default().to_owned(),
                    body["at"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        let missed: Vec<_> = alerts_in_history
            .iter()
            .filter(|alert| !delivered.contains(*alert))
            .collect();
        if missed.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {} alerts never reached the webhook: {missed:?}",
            missed.len(),
            alerts_in_history.len()
        );
        sleep(Duration::from_millis(100)).await;
    }
    let duplicates =
        receiver.delivered().len() - alerts_in_history.len().min(receiver.delivered().len());
    assert!(
        duplicates <= alerts_in_history.len() / 4 + KILLS,
        "{duplicates} re-sent alerts for {} alerts: more than a crash window explains",
        alerts_in_history.len()
    );
    let (status, _) = server.sigterm().await;
    assert!(status.success());
    check_store(&data_dir);
}
