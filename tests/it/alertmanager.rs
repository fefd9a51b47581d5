//! pushmon against a real Alertmanager (Debian's `prometheus-alertmanager`, installed
//! by `scripts/test.sh`; without it this test fails, it does not skip): a `down`
//! fires an alert that Alertmanager notifies, the `up` resolves it, and a channel test
//! fires an `info` alert that ends by itself.

use std::process::Stdio;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::time::{Instant, sleep};

use crate::receiver::Receiver;
use crate::support::{expect_json, spawn_app};

const WAIT: Duration = Duration::from_secs(20);

struct Alertmanager {
    base_url: String,
    _dir: tempfile::TempDir,
    _child: tokio::process::Child,
}

impl Alertmanager {
    /// An Alertmanager notifying `webhook` of every alert at once (each its own
    /// group, waits of a second), resolutions included.
    async fn start(webhook: &str) -> Alertmanager {
        let config = format!(
            "route:\n  receiver: hook\n  group_by: ['...']\n  group_wait: 1s\n  \
             group_interval: 1s\n  repeat_interval: 1h\n\
             receivers:\n  - name: hook\n    webhook_configs:\n      - url: '{webhook}'\n        \
             send_resolved: true\n"
        );
        Self::start_with(&config).await
    }

    /// An Alertmanager routing `team="a"` to `team_a`, `team="b"` to `team_b`, and
    /// everything else nowhere, with the same quick waits.
    async fn routing_by_team(team_a: &str, team_b: &str) -> Alertmanager {
        let config = format!(
            "route:\n  receiver: nowhere\n  group_by: ['...']\n  group_wait: 1s\n  \
             group_interval: 1s\n  repeat_interval: 1h\n  routes:\n\
             \x20   - matchers: ['team=\"a\"']\n      receiver: team-a\n\
             \x20   - matchers: ['team=\"b\"']\n      receiver: team-b\n\
             receivers:\n  - name: nowhere\n\
             \x20 - name: team-a\n    webhook_configs:\n      - url: '{team_a}'\n        send_resolved: true\n\
             \x20 - name: team-b\n    webhook_configs:\n      - url: '{team_b}'\n        send_resolved: true\n"
        );
        Self::start_with(&config).await
    }

    async fn start_with(config: &str) -> Alertmanager {
        let dir = tempfile::tempdir().unwrap();
        let config_path = dir.path().join("alertmanager.yml");
        std::fs::write(&config_path, config).unwrap();
        // Alertmanager binds the port itself, so find a free one first.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .unwrap()
            .port();
        let child = tokio::process::Command::new("prometheus-alertmanager")
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            // No cluster: one instance, no gossip port.
            .arg("--cluster.listen-address=")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect(
                "prometheus-alertmanager must be installed (scripts/test.sh installs Debian's)",
            );
        let server = Alertmanager {
            base_url: format!("http://127.0.0.1:{port}"),
            _dir: dir,
            _child: child,
        };
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = client
                .get(format!("{}/-/ready", server.base_url))
                .send()
                .await;
            if ready.is_ok_and(|response| response.status().is_success()) {
                return server;
            }
            assert!(
                Instant::now() < deadline,
                "alertmanager did not become ready"
            );
            sleep(Duration::from_millis(100)).await;
        }
    }

    /// The alerts Alertmanager holds named `alertname`.
    async fn alerts(&self, alertname: &str) -> Vec<Value> {
        let alerts: Value = reqwest::Client::new()
            .get(format!("{}/api/v2/alerts", self.base_url))
            .query(&[("filter", format!("alertname=\"{alertname}\""))])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        alerts.as_array().cloned().unwrap_or_default()
    }
}

/// Waits until Alertmanager has notified an alert named `alertname` with `status`
/// (`firing` or `resolved`); returns that alert as notified.
async fn notified(receiver: &Receiver, alertname: &str, status: &str) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        for request in receiver.delivered() {
            for alert in request.json()["alerts"]
                .as_array()
                .cloned()
                .unwrap_or_default()
            {
                if alert["labels"]["alertname"] == alertname && alert["status"] == status {
                    return alert;
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "alertmanager never notified {alertname} {status}; notifications: {:?}",
            receiver
                .received()
                .iter()
                .map(|request| String::from_utf8_lossy(&request.body).into_owned())
                .collect::<Vec<_>>()
        );
        sleep(Duration::from_millis(100)).await;
    }
}

fn instant(alert: &Value, field: &str) -> time::OffsetDateTime {
    let text = alert[field].as_str().expect("a timestamp");
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|error| panic!("{field} {text:?}: {error}"))
}

#[tokio::test]
async fn a_real_alertmanager_fires_on_down_resolves_on_up_and_ends_a_test_by_itself() {
    let receiver = Receiver::start().await;
    let alertmanager = Alertmanager::start(&receiver.url("/notify")).await;
    let app = spawn_app().await;
    let channel = expect_json(
        app.api(Method::POST, "/api/channels")
            .json(&json!({"kind": "alertmanager", "name": "am", "url": alertmanager.base_url}))
            .send()
            .await
            .unwrap(),
        StatusCode::CREATED,
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // A test fires an `info` alert, labelled as a test, that ends 5 minutes on.
    let tested = expect_json(
        app.api(Method::POST, &format!("/api/channels/{channel}/test"))
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(tested, json!({"ok": true}));
    let held = alertmanager.alerts("PushmonTest").await;
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0]["labels"]["severity"], "info");
    assert_eq!(held[0]["labels"]["test"], "true");
    assert_eq!(
        instant(&held[0], "endsAt") - instant(&held[0], "startsAt"),
        time::Duration::minutes(5),
        "Alertmanager keeps the end pushmon gave: {held:?}"
    );
    let test = notified(&receiver, "PushmonTest", "firing").await;
    assert_eq!(test["labels"]["channel"], "am");

    // A down fires, and the up that follows resolves it.
    let monitor = app
        .create_monitor_from(
            &json!({"name": "nightly", "timeout_seconds": 3600, "channels": [channel]}),
        )
        .await;
    app.push_ok(
        &monitor.push_token,
        &[("status", "down"), ("msg", "disk full")],
    )
    .await;
    let firing = notified(&receiver, "PushmonMonitorDown", "firing").await;
    assert_eq!(firing["labels"]["monitor_id"], monitor.id.as_str());
    assert_eq!(firing["annotations"]["description"], "disk full");
    app.push_ok(&monitor.push_token, &[]).await;
    let resolved = notified(&receiver, "PushmonMonitorDown", "resolved").await;
    assert_eq!(resolved["labels"], firing["labels"]);
}

/// Labelled monitors: Alertmanager gets each monitor label (a key made a label name,
/// one that would take a fixed label's name prefixed `label_`) and the monitor's
/// severity, routes by them to two different receivers, and the `up` resolves the
/// `down` it fired because both carry the same labels.
#[tokio::test]
async fn a_real_alertmanager_routes_labelled_alerts_by_team_to_two_receivers() {
    let team_a = Receiver::start().await;
    let team_b = Receiver::start().await;
    let alertmanager =
        Alertmanager::routing_by_team(&team_a.url("/team-a"), &team_b.url("/team-b")).await;
    let app = spawn_app().await;
    let channel = expect_json(
        app.api(Method::POST, "/api/channels")
            .json(&json!({"kind": "alertmanager", "name": "am", "url": alertmanager.base_url}))
            .send()
            .await
            .unwrap(),
        StatusCode::CREATED,
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let of_a = app
        .create_monitor_from(&json!({
            "name": "billing", "timeout_seconds": 3600, "channels": [channel],
            "labels": {"team": "a", "example.com/env": "prod", "monitor": "clash"},
            "severity": "warning",
        }))
        .await;
    let of_b = app
        .create_monitor_from(&json!({
            "name": "shipping", "timeout_seconds": 3600, "channels": [channel],
            "labels": {"team": "b"},
        }))
        .await;
    app.push_ok(&of_a.push_token, &[("status", "down")]).await;
    app.push_ok(&of_b.push_token, &[("status", "down")]).await;

    let firing_a = notified(&team_a, "PushmonMonitorDown", "firing").await;
    assert_eq!(firing_a["labels"]["monitor_id"], of_a.id.as_str());
    assert_eq!(firing_a["labels"]["monitor"], "billing");
    assert_eq!(firing_a["labels"]["severity"], "warning");
    assert_eq!(firing_a["labels"]["team"], "a");
    assert_eq!(firing_a["labels"]["example_com_env"], "prod");
    assert_eq!(firing_a["labels"]["label_monitor"], "clash");
    let firing_b = notified(&team_b, "PushmonMonitorDown", "firing").await;
    assert_eq!(firing_b["labels"]["monitor_id"], of_b.id.as_str());
    assert_eq!(firing_b["labels"]["severity"], "critical");
    assert_eq!(firing_b["labels"]["team"], "b");

    app.push_ok(&of_a.push_token, &[]).await;
    let resolved = notified(&team_a, "PushmonMonitorDown", "resolved").await;
    assert_eq!(resolved["labels"], firing_a["labels"]);

    // Each receiver heard only its own team's monitor.
    for (receiver, own, other) in [(&team_a, &of_a.id, &of_b.id), (&team_b, &of_b.id, &of_a.id)] {
        for request in receiver.received() {
            for alert in request.json()["alerts"]
                .as_array()
                .cloned()
                .unwrap_or_default()
            {
                assert_eq!(alert["labels"]["monitor_id"], own.as_str(), "{alert}");
                assert_ne!(alert["labels"]["monitor_id"], other.as_str());
            }
        }
    }
    // Alertmanager holds the one still firing with its labels.
    let held = alertmanager.alerts("PushmonMonitorDown").await;
    let still = held
        .iter()
        .find(|alert| alert["labels"]["monitor_id"] == of_b.id.as_str())
        .expect("b's alert is still firing");
    assert_eq!(still["labels"]["team"], "b");
}
