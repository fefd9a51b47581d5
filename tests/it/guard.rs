//! The guard against false alarm storms (`docs/states.md`, "The guard") against the
//! real server and a real receiver: 200 monitors heartbeating, every heartbeat cut at
//! once, then resumed: the receiver hears one alert, about pushmon itself (its `down`;
//! the resolution is sent only with `--guard-resolved on`), and about no monitor; then
//! a real mass failure (heartbeats resume for half): exactly the silent half alerts.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use pushmon::config::GuardConfig;
use pushmon::domain::guard::GuardSettings;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::time::{Instant, sleep};

use crate::receiver::{Received, Receiver};
use crate::support::{Api, Monitor, Status, expect_json, fast_alert_retries, spawn_app_with};

const MONITORS: usize = 200;
const WAIT: Duration = Duration::from_secs(30);

async fn guard(api: &Api) -> Value {
    let response = api
        .api(Method::GET, "/api/guard")
        .send()
        .await
        .expect("guard");
    expect_json(response, StatusCode::OK).await
}

async fn wait_for_guard(api: &Api, state: &str) -> Value {
    wait_for_guard_where(api, state, |_| true).await
}

/// Waits until the guard is `state` and `holds` of what `GET /api/guard` says.
async fn wait_for_guard_where(api: &Api, state: &str, holds: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let guard = guard(api).await;
        if guard["state"] == state && holds(&guard) {
            return guard;
        }
        assert!(
            started.elapsed() < WAIT,
            "the guard is not {state}: {guard}"
        );
        sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until every one of `monitors` is `status`.
async fn wait_for_all(api: &Api, monitors: &[Monitor], status: Status) {
    let ids: BTreeSet<&str> = monitors.iter().map(|monitor| monitor.id.as_str()).collect();
    let started = Instant::now();
    loop {
        let listed = api.list_monitors().await;
        let other: Vec<_> = listed
            .iter()
            .filter(|monitor| ids.contains(monitor.id.as_str()) && monitor.status != status)
            .map(|monitor| monitor.status)
            .collect();
        if other.is_empty() {
            return;
        }
        assert!(
            started.elapsed() < WAIT,
            "{} monitors are not {status:?}: {other:?}",
            other.len()
        );
        sleep(Duration::from_millis(100)).await;
    }
}

/// Pushes every half second, from 8 tasks, for the first `reporting` monitors.
struct Pusher {
    reporting: Arc<AtomicUsize>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Pusher {
    fn start(api: &Api, monitors: &[Monitor]) -> Pusher {
        let reporting = Arc::new(AtomicUsize::new(monitors.len()));
        let tokens: Vec<(usize, String)> = monitors
            .iter()
            .map(|monitor| monitor.push_token.clone())
            .enumerate()
            .collect();
        let tasks = tokens
            .chunks(monitors.len().div_ceil(8))
            .map(|chunk| {
                let (api, chunk, reporting) = (api.clone(), chunk.to_vec(), Arc::clone(&reporting));
                tokio::spawn(async move {
                    loop {
                        for (index, token) in &chunk {
                            if *index < reporting.load(Ordering::Relaxed) {
                                api.push_ok(token, &[]).await;
                            }
                        }
                        sleep(Duration::from_millis(500)).await;
                    }
                })
            })
            .collect();
        Pusher { reporting, tasks }
    }

    fn report(&self, count: usize) {
        self.reporting.store(count, Ordering::Relaxed);
    }
}

impl Drop for Pusher {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// (monitor name, event) of each delivery.
fn told(delivered: &[Received]) -> Vec<(String, String)> {
    delivered
        .iter()
        .map(|request| {
            let body = request.json();
            (
                body["monitor"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                body["event"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn about_pushmon(event: &str) -> (String, String) {
    ("pushmon guard".to_owned(), event.to_owned())
}

/// Two-second windows: the guard trips about 2 s after a cut, and the monitors' 5 s
/// timeouts fall 4.5 s or more after it. 3 s of release grace.
fn guard_config() -> GuardConfig {
    GuardConfig {
        enabled: true,
        settings: GuardSettings {
            window_millis: 2_000,
            min_ratio: 0.1,
            min_expected: 20.0,
        },
        release_grace_seconds: 3,
        channels: None,
        // The default: an outage is one alert about pushmon.
        send_resolved: false,
    }
}

/// A webhook channel on `receiver`, and `count` monitors alerting it, expected every
/// second and late after 5.
async fn fleet(api: &Api, receiver: &Receiver, count: usize) -> Vec<Monitor> {
    let response = api
        .api(Method::POST, "/api/channels")
        .json(&json!({"kind": "webhook", "name": "hook", "url": receiver.url("/hook")}))
        .send()
        .await
        .expect("create channel");
    let channel = expect_json(response, StatusCode::CREATED).await["id"].clone();
    let mut monitors = Vec::with_capacity(count);
    for n in 0..count {
        monitors.push(
            api.create_monitor_from(&json!({
                "name": format!("job-{n:03}"),
                "timeout_seconds": 5,
                "interval_seconds": 1,
                "channels": [channel],
            }))
            .await,
        );
    }
    monitors
}

#[tokio::test]
async fn a_cut_of_every_heartbeat_alerts_about_pushmon_only_and_a_real_mass_failure_alerts_the_silent()
 {
    let app = spawn_app_with(|config| {
        fast_alert_retries(config);
        config.guard = guard_config();
    })
    .await;
    let receiver = Receiver::start().await;
    let monitors = fleet(&app, &receiver, MONITORS).await;
    let pusher = Pusher::start(&app, &monitors);
    wait_for_all(&app, &monitors, Status::Up).await;
    // Each monitor's prediction is noted once its `up` is applied (just after the API
    // can see it): one a second each.
    wait_for_guard_where(&app, "normal", |guard| {
        guard["expected_per_second"] == json!(200.0)
    })
    .await;

    // Every heartbeat cut at once: the guard trips and every deadline is held.
    pusher.report(0);
    wait_for_guard(&app, "tripped").await;
    wait_for_all(&app, &monitors, Status::Unknown).await;
    let delivered = receiver.wait_for_delivered(1, WAIT).await;
    assert_eq!(told(&delivered), vec![about_pushmon("down")]);
    let alert = delivered[0].json();
    assert!(
        alert["msg"]
            .as_str()
            .is_some_and(|msg| msg.contains("collapsed")),
        "{alert}"
    );

    // Resumed: up without an alert, and the guard's release is recorded, not sent
    // (`--guard-resolved off`, the default): one alert in all.
    pusher.report(MONITORS);
    wait_for_all(&app, &monitors, Status::Up).await;
    wait_for_guard(&app, "normal").await;
    let guard_monitor = app
        .list_monitors()
        .await
        .into_iter()
        .find(|monitor| monitor.name == "pushmon guard")
        .expect("the guard's monitor");
    wait_for_all(&app, std::slice::from_ref(&guard_monitor), Status::Up).await;
    // Past the release grace: nothing more.
    sleep(Duration::from_secs(4)).await;
    assert_eq!(
        told(&receiver.delivered()),
        vec![about_pushmon("down")],
        "one alert, about pushmon; no monitor alerted"
    );
    let events = app.all_events(&monitors[0].id).await;
    let kinds: Vec<&str> = events
        .iter()
        .map(|event| event.kind.as_str())
        .filter(|kind| *kind != "heartbeat")
        .collect();
    assert!(
        kinds.contains(&"unknown") && !kinds.contains(&"down"),
        "{kinds:?}"
    );

    // A real mass failure: cut again, and only half come back.
    pusher.report(0);
    wait_for_guard(&app, "tripped").await;
    wait_for_all(&app, &monitors, Status::Unknown).await;
    pusher.report(MONITORS / 2);
    let (reporting, silent) = monitors.split_at(MONITORS / 2);
    wait_for_all(&app, reporting, Status::Up).await;
    wait_for_guard(&app, "normal").await;
    wait_for_all(&app, silent, Status::Down).await;
    let delivered = receiver.wait_for_delivered(2 + silent.len(), WAIT).await;
    sleep(Duration::from_secs(1)).await;
    let delivered_now = receiver.delivered();
    assert_eq!(delivered_now.len(), delivered.len(), "nothing more");
    let told = told(&delivered_now);
    assert_eq!(
        told.iter()
            .filter(|(name, _)| name == "pushmon guard")
            .cloned()
            .collect::<Vec<_>>(),
        vec![about_pushmon("down"), about_pushmon("down")]
    );
    let alerted: BTreeSet<String> = delivered_now
        .iter()
        .map(Received::json)
        .filter(|body| body["monitor"]["name"] != "pushmon guard")
        .map(|body| {
            assert_eq!(body["event"], "down", "{body}");
            assert_eq!(body["reason"], "timeout", "{body}");
            body["monitor"]["id"].as_str().expect("id").to_owned()
        })
        .collect();
    let expected: BTreeSet<String> = silent.iter().map(|monitor| monitor.id.clone()).collect();
    assert_eq!(alerted, expected, "exactly the silent half, once each");
    assert_eq!(
        delivered_now.len(),
        2 + silent.len(),
        "one alert per silent monitor"
    );

    let guard = guard(&app).await;
    assert_eq!(guard["held_total"], json!(2 * MONITORS), "{guard}");
    assert_eq!(guard["held"], json!(0), "{guard}");
    // The recorder is the test process's, shared by every server it runs: the
    // counter holds at least this server's holds, and each family is there.
    let metrics = app.metrics().await;
    let held: u64 = metrics
        .lines()
        .find_map(|line| line.strip_prefix("pushmon_guard_held_verdicts_total "))
        .and_then(|value| value.trim().parse().ok())
        .expect("the held verdicts counter");
    assert!(held >= 2 * MONITORS as u64, "{held}");
    for family in [
        "pushmon_guard_tripped",
        "pushmon_guard_expected_arrivals_per_second",
        "pushmon_guard_observed_arrivals_per_second",
    ] {
        assert!(
            metrics.contains(&format!("\n{family} ")),
            "{family}: {metrics}"
        );
    }
    drop(pusher);
}

/// A restart while the guard holds verdicts: the monitors replay as `unknown`, the
/// held verdicts get the restart grace (those that report are up without an alert,
/// the silent ones go down and alert), and the guard, which starts afresh, tells the
/// channels the outage is over once it has watched a whole window.
#[tokio::test]
async fn held_verdicts_survive_a_restart_and_get_the_restart_grace() {
    const FLEET: usize = 40;
    let app = spawn_app_with(|config| {
        fast_alert_retries(config);
        // With resolutions (`--guard-resolved on`): the restarted guard still owes one.
        config.guard = GuardConfig {
            send_resolved: true,
            ..guard_config()
        };
        config.restart_grace = Duration::from_secs(3);
    })
    .await;
    let receiver = Receiver::start().await;
    let monitors = fleet(&app, &receiver, FLEET).await;
    let pusher = Pusher::start(&app, &monitors);
    wait_for_all(&app, &monitors, Status::Up).await;
    wait_for_guard_where(&app, "normal", |guard| {
        guard["expected_per_second"] == json!(FLEET as f64)
    })
    .await;
    pusher.report(0);
    wait_for_guard(&app, "tripped").await;
    wait_for_all(&app, &monitors, Status::Unknown).await;
    receiver.wait_for_delivered(1, WAIT).await;
    drop(pusher);

    let app = app.restart().await;
    let listed = app.list_monitors().await;
    assert!(
        monitors.iter().all(|monitor| listed
            .iter()
            .any(|shown| shown.id == monitor.id && shown.status == Status::Unknown)),
        "replayed as unknown: {listed:?}"
    );
    assert_eq!(guard(&app).await["state"], "warming");
    let pusher = Pusher::start(&app, &monitors);
    pusher.report(FLEET / 2);
    let (reporting, silent) = monitors.split_at(FLEET / 2);
    wait_for_all(&app, reporting, Status::Up).await;
    wait_for_all(&app, silent, Status::Down).await;
    let delivered = receiver
        .wait_for_delivered(1 + silent.len() + 1, WAIT)
        .await;
    sleep(Duration::from_secs(1)).await;
    assert_eq!(receiver.delivered().len(), delivered.len(), "nothing more");
    let told = told(&delivered);
    assert_eq!(
        told.iter()
            .filter(|(name, _)| name == "pushmon guard")
            .cloned()
            .collect::<Vec<_>>(),
        vec![about_pushmon("down"), about_pushmon("up")]
    );
    let alerted: BTreeSet<String> = delivered
        .iter()
        .map(Received::json)
        .filter(|body| body["monitor"]["name"] != "pushmon guard")
        .map(|body| {
            assert_eq!(body["event"], "down", "{body}");
            body["monitor"]["id"].as_str().expect("id").to_owned()
        })
        .collect();
    let expected: BTreeSet<String> = silent.iter().map(|monitor| monitor.id.clone()).collect();
    assert_eq!(alerted, expected);
    drop(pusher);
}
