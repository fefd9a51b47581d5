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
use crate::support::{ServerProcess, check_store, expect_json};

/// The CI-sized run; `scripts/soak-kill.sh` sets PUSHMON_SOAK_* for the long one.
const MONITORS: usize = 20;
const CLIENTS: usize = 6;
const KILLS: usize = 3;
/// Longest a round of load runs before its SIGKILL, in milliseconds.
const ROUND_MS: u64 = 1200;

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_sigkills_under_load_lose_nothing_acknowledged_and_miss_no_alert() {
    let monitors_wanted = setting("PUSHMON_SOAK_MONITORS", MONITORS as u64) as usize;
    let clients_wanted = setting("PUSHMON_SOAK_CLIENTS", CLIENTS as u64) as usize;
    let kills = setting("PUSHMON_SOAK_KILLS", KILLS as u64) as usize;
    let round_ms = setting("PUSHMON_SOAK_ROUND_MS", ROUND_MS).max(500);
    let sent = Arc::new(std::sync::atomic::AtomicUsize::new(0));
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
        // Every acknowledged heartbeat is looked for in the history: keep them all.
        "--history-max-heartbeats",
        "0",
        "--history-max-age-days",
        "0",
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
    for index in 0..monitors_wanted {
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

    for round in 0..kills {
        let base_url = server.base_url.clone();
        let mut clients = Vec::new();
        for client_index in 0..clients_wanted {
            let sent = Arc::clone(&sent);
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
                    sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
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
        let run_for = Duration::from_millis(rand::rng().random_range(400..round_ms));
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
    assert_eq!(listed.len(), monitors_wanted, "a monitor was lost");
    let acknowledged = acknowledged.lock().unwrap().clone();
    let total: usize = acknowledged.values().map(HashSet::len).sum();
    assert!(total > 100, "only {total} heartbeats were acknowledged");
    let mut alerts_in_history = Vec::new();
    let mut found = 0;
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
        found += messages.len();
        for event in history
            .iter()
            // A first `up` (out of `pending`) is recorded but owes no alert.
            .filter(|event| event.kind == "down" || event.kind == "up")
            .filter(|event| event.reason.as_deref() != Some("first_heartbeat"))
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
    let unique_delivered = receiver
        .delivered()
        .iter()
        .map(|request| request.body.clone())
        .collect::<HashSet<_>>()
        .len();
    // A re-sent alert carries the id of the first sending: deduplicated by it, the
    // receiver saw each alert exactly once.
    let alert_ids: HashSet<String> = receiver
        .delivered()
        .iter()
        .filter_map(|request| {
            let id = request.headers.get("x-pushmon-alert-id")?;
            Some(id.to_str().ok()?.to_owned())
        })
        .collect();
    assert_eq!(
        alert_ids.len(),
        alerts_in_history.len(),
        "alert ids do not match the alerts one to one"
    );
    println!(
        "killloop: kills={kills} monitors={monitors_wanted} clients={clients_wanted} \
         sent={} acknowledged={total} found_after_restarts={found} \
         alerts_in_history={} webhook_requests={} distinct_alert_bodies={unique_delivered} \
         distinct_alert_ids={} duplicates={duplicates}",
        sent.load(std::sync::atomic::Ordering::Relaxed),
        alerts_in_history.len(),
        receiver.delivered().len(),
        alert_ids.len(),
    );
    assert!(
        duplicates <= alerts_in_history.len() / 4 + kills,
        "{duplicates} re-sent alerts for {} alerts: more than a crash window explains",
        alerts_in_history.len()
    );
    let (status, _) = server.sigterm().await;
    assert!(status.success());
    check_store(&data_dir);
}
