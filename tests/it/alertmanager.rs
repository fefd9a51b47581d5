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
        let dir = tempfile::tempdir().unwrap();
        let config = format!(
            "route:\n  receiver: hook\n  group_by: ['...']\n  group_wait: 1s\n  \
             group_interval: 1s\n  repeat_interval: 1h\n\
             receivers:\n  - name: hook\n    webhook_configs:\n      - url: '{webhook}'\n        \
             send_resolved: true\n"
        );
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
