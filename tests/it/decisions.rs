//! One model for both backends (ARCHITECTURE.md, "One heartbeat"): a plain push is
//! appended and answered before its monitor's actor sees it, and the actor decides
//! what it causes afterwards, in the log's order. Against a real server and a real
//! receiver: a monitor hammered by concurrent pushers past its short timeout never
//! goes down (a verdict a heartbeat overtook is voided, never alerted), one whose
//! pushers disagree alerts exactly once per change of state, and the store agrees
//! with its log (`pushmon check`).

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;
use tokio::time::{Instant, sleep};

use crate::receiver::Receiver;
use crate::support::{Status, check_store, expect_json, fast_alert_retries, spawn_app_with};

const PUSHERS: usize = 6;
const HAMMER: Duration = Duration::from_secs(4);
const WAIT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_pushers_past_a_short_timeout_never_bring_a_down_and_each_change_alerts_once() {
    let receiver = Receiver::start().await;
    let app = spawn_app_with(|config| {
        fast_alert_retries(config);
        config.rate_limit.per_second = 1_000_000;
        config.rate_limit.burst = 1_000_000;
        config.ip_rate_limit = None;
    })
    .await;
    let create_channel = |path: &str| {
        let body = json!({"kind": "webhook", "name": path, "url": receiver.url(path)});
        let request = app.api(Method::POST, "/api/channels").json(&body);
        async move {
            let response = request.send().await.expect("create channel");
            let channel = expect_json(response, StatusCode::CREATED).await;
            channel["id"].as_str().expect("channel id").to_owned()
        }
    };
    let steady_channel = create_channel("/steady").await;
    let flapping_channel = create_channel("/flapping").await;
    // A timeout of one second: any moment its actor fell behind the log would be a
    // verdict decided without the heartbeats already written.
    let steady = app
        .create_monitor_from(
            &json!({"name": "steady", "timeout_seconds": 1, "channels": [steady_channel]}),
        )
        .await;
    let flapping = app
        .create_monitor_from(
            &json!({"name": "flapping", "timeout_seconds": 3600, "channels": [flapping_channel]}),
        )
        .await;
    app.push_ok(&steady.push_token, &[("msg", "first")]).await;
    app.push_ok(&flapping.push_token, &[("msg", "first")]).await;

    let until = Instant::now() + HAMMER;
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..PUSHERS {
        let api = (*app).clone();
        let (steady, flapping) = (steady.push_token.clone(), flapping.push_token.clone());
        tasks.spawn(async move {
            let mut acknowledged = Vec::new();
            let mut n = 0usize;
            while Instant::now() < until {
                let msg = format!("w{worker}-{n}");
                api.push_ok(&steady, &[("msg", &msg)]).await;
                acknowledged.push(msg);
                if n.is_multiple_of(4) {
                    // Pushers that disagree: half of them report it down.
                    let status = if worker.is_multiple_of(2) {
                        "down"
                    } else {
                        "up"
                    };
                    api.push_ok(&flapping, &[("status", status)]).await;
                }
                n += 1;
            }
            acknowledged
        });
    }
    let mut acknowledged = BTreeSet::new();
    while let Some(done) = tasks.join_next().await {
        acknowledged.extend(done.expect("pusher"));
    }
    assert!(acknowledged.len() > 100, "{} pushes", acknowledged.len());

    // Kept pushing: never down, and no down reached the receiver.
    let state = app.get_monitor(&steady.id).await;
    assert_eq!(state.status, Status::Up);
    let history = app.all_events(&steady.id).await;
    let kinds: BTreeSet<&str> = history.iter().map(|event| event.kind.as_str()).collect();
    assert!(!kinds.contains("down"), "{kinds:?}");
    let recorded: BTreeSet<String> = history
        .iter()
        .filter(|event| event.kind == "heartbeat")
        .filter_map(|event| event.msg.clone())
        .collect();
    assert!(
        acknowledged.is_subset(&recorded),
        "every acknowledged heartbeat is in the history"
    );
    let to_steady = |receiver: &Receiver| {
        receiver
            .received()
            .into_iter()
            .filter(|request| request.path == "/steady")
            .count()
    };
    assert_eq!(to_steady(&receiver), 0);

    // What each `down` and `up` push caused follows the log: the changes alternate
    // and each reached the receiver once.
    let changes: Vec<String> = app
        .history(&flapping.id)
        .await
        .into_iter()
        .filter(|event| event.kind == "down" || event.kind == "up")
        .map(|event| event.kind)
        .collect();
    assert_eq!(
        changes.first().map(String::as_str),
        Some("up"),
        "{changes:?}"
    );
    assert!(
        changes.windows(2).all(|pair| pair[0] != pair[1]),
        "one decision per change of state: {changes:?}"
    );
    let alerts = changes.len() - 1;
    assert!(alerts >= 1, "{changes:?}");
    let delivered = receiver.wait_for_delivered(alerts, WAIT).await;
    let flapping_alerts: Vec<String> = delivered
        .iter()
        .filter(|request| request.path == "/flapping")
        .map(|request| request.json()["event"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(
        flapping_alerts,
        changes[1..],
        "each change alerted once, in order"
    );

    // Silent now: the timeout brings one down, alerted once.
    let down = app
        .wait_for_status(&steady.id, Status::Down, Duration::from_secs(5))
        .await;
    assert_eq!(down.status, Status::Down);
    let deadline = Instant::now() + WAIT;
    while to_steady(&receiver) == 0 && Instant::now() < deadline {
        sleep(Duration::from_millis(50)).await;
    }
    sleep(Duration::from_millis(300)).await;
    assert_eq!(to_steady(&receiver), 1);

    let metrics = app.metrics().await;
    assert!(
        metrics.contains("pushmon_decisions_voided_total"),
        "{metrics}"
    );
    let stopped = app.shutdown().await;
    check_store(stopped.data_dir.path());
}
