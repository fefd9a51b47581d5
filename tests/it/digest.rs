//! Digests (`docs/alerts.md`, "Digests"; issue 19, item 5) against real receivers on
//! loopback: a burst of 300 `down`s reaches each channel as one message naming them
//! all, every monitor's delivery is recorded, a burst below the threshold goes out one
//! by one, and a SIGKILL inside the window still delivers the digest once.

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::time::{Instant, sleep};

use crate::receiver::{Received, Receiver};
use crate::support::{
    Api, Monitor, ServerProcess, expect_json, fast_alert_retries, spawn_app_with,
};

const BURST: usize = 300;
const WAIT: Duration = Duration::from_secs(30);

async fn create_channel(api: &Api, body: Value) -> String {
    let response = api
        .api(Method::POST, "/api/channels")
        .json(&body)
        .send()
        .await
        .expect("create channel");
    let channel = expect_json(response, StatusCode::CREATED).await;
    channel["id"].as_str().expect("channel id").to_owned()
}

/// A webhook and a Slack channel, both on `receiver`.
async fn channels(api: &Api, receiver: &Receiver) -> Vec<String> {
    vec![
        create_channel(
            api,
            json!({"kind": "webhook", "name": "hook", "url": receiver.url("/hook")}),
        )
        .await,
        create_channel(
            api,
            json!({"kind": "slack", "name": "ops", "url": receiver.url("/slack")}),
        )
        .await,
    ]
}

/// `count` monitors alerting `channels`, a third tagged `db`, a third `web`, a third
/// without tags.
async fn monitors(api: &Api, channels: &[String], count: usize) -> Vec<Monitor> {
    let mut created = Vec::with_capacity(count);
    for n in 0..count {
        let tags = match n % 3 {
            0 => json!(["db"]),
            1 => json!(["web"]),
            _ => json!([]),
        };
        created.push(
            api.create_monitor_from(&json!({
                "name": format!("job-{n:03}"),
                "timeout_seconds": 3600,
                "channels": channels,
                "tags": tags,
            }))
            .await,
        );
    }
    created
}

/// Pushes `status=down` to every monitor at once; each answer means its `down` (and
/// the deliveries it owes) is durable.
async fn all_down(api: &Api, monitors: &[Monitor]) {
    futures::future::join_all(
        monitors
            .iter()
            .map(|monitor| api.push_ok(&monitor.push_token, &[("status", "down")])),
    )
    .await;
}

/// The value of one series in a Prometheus exposition (0 when absent).
fn sample(exposition: &str, series: &str) -> f64 {
    exposition
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0.0)
}

fn to(path: &str, received: &[Received]) -> Vec<Received> {
    received
        .iter()
        .filter(|request| request.path == path)
        .cloned()
        .collect()
}

/// Waits until the receiver has delivered at least one request to each of `paths`.
async fn wait_for_each(receiver: &Receiver, paths: &[&str]) {
    let deadline = Instant::now() + WAIT;
    loop {
        let delivered = receiver.delivered();
        if paths.iter().all(|path| !to(path, &delivered).is_empty()) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "not every channel got a message: {:?}",
            delivered.iter().map(|r| &r.path).collect::<Vec<_>>()
        );
        sleep(Duration::from_millis(50)).await;
    }
}

/// A monitor's events as the API shows them, newest first.
async fn events(api: &Api, id: &str) -> Vec<Value> {
    let response = api
        .api(
            Method::GET,
            &format!("/api/monitors/{id}/events?limit=1000"),
        )
        .send()
        .await
        .expect("events");
    let body = expect_json(response, StatusCode::OK).await;
    body["events"].as_array().expect("events array").clone()
}

/// The successful `delivery` events of a monitor.
async fn delivered_events(api: &Api, id: &str) -> usize {
    events(api, id)
        .await
        .iter()
        .filter(|event| event["kind"] == "delivery" && event["result"] == "success")
        .count()
}

/// Waits until every monitor has `per_monitor` successful deliveries recorded.
async fn wait_until_recorded(api: &Api, monitors: &[Monitor], per_monitor: usize) {
    let deadline = Instant::now() + WAIT;
    for monitor in monitors {
        loop {
            let recorded = delivered_events(api, &monitor.id).await;
            if recorded >= per_monitor {
                assert_eq!(recorded, per_monitor, "{} recorded too many", monitor.name);
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{}: {recorded} of {per_monitor} deliveries recorded",
                monitor.name
            );
            sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The one webhook digest names every monitor exactly once, each as its usual body.
fn assert_webhook_digest_names_all(digest: &Received, monitors: &[Monitor]) {
    let body = digest.json();
    assert_eq!(body["event"], "digest", "{body}");
    assert_eq!(body["count"], monitors.len());
    assert_eq!(body["down"], monitors.len());
    let alerts = body["alerts"].as_array().expect("alerts");
    let named: Vec<&str> = alerts
        .iter()
        .map(|alert| alert["monitor"]["id"].as_str().expect("monitor id"))
        .collect();
    let unique: BTreeSet<&str> = named.iter().copied().collect();
    assert_eq!(named.len(), unique.len(), "a monitor named twice");
    let expected: BTreeSet<&str> = monitors.iter().map(|monitor| monitor.id.as_str()).collect();
    assert_eq!(unique, expected);
    assert!(alerts.iter().all(|alert| alert["event"] == "down"
        && alert["reason"] == "manual"
        && alert["alert_id"].is_string()));
    assert_eq!(
        digest.headers["x-pushmon-alert-id"].to_str().expect("id"),
        body["id"].as_str().expect("digest id")
    );
}

fn assert_slack_digest(digest: &Received, count: usize) {
    let text = digest.json()["text"].as_str().expect("text").to_owned();
    assert!(
        text.starts_with(&format!(
            "🔔 pushmon digest, {count} alerts: {count} DOWN\n"
        )),
        "{text}"
    );
    assert!(
        text.contains("\nBy tags: db 100 · web 100 · without tags 100\n"),
        "{text}"
    );
    assert!(
        text.contains("\ndb (100):\n🔴 job-000 is DOWN (manual)"),
        "{text}"
    );
    assert!(text.contains(" more\n"), "a long list is cut: {text}");
}

#[tokio::test]
async fn a_burst_of_300_downs_reaches_each_channel_as_one_message_naming_all() {
    let receiver = Receiver::start().await;
    let app = spawn_app_with(|config| {
        fast_alert_retries(config);
        config.digest.window = Duration::from_secs(2);
        config.digest.webhooks = true;
    })
    .await;
    let channels = channels(&app, &receiver).await;
    let monitors = monitors(&app, &channels, BURST).await;
    let before = app.metrics().await;
    all_down(&app, &monitors).await;

    wait_for_each(&receiver, &["/hook", "/slack"]).await;
    // Every monitor's outcome on both channels is recorded from the one digest each.
    wait_until_recorded(&app, &monitors, 2).await;
    let received = receiver.received();
    let hook = to("/hook", &received);
    let slack = to("/slack", &received);
    assert_eq!(hook.len(), 1, "the webhook got {} messages", hook.len());
    assert_eq!(slack.len(), 1, "Slack got {} messages", slack.len());
    assert_webhook_digest_names_all(&hook[0], &monitors);
    assert_slack_digest(&slack[0], BURST);

    // Every monitor's `down` is in its own history as ever.
    for monitor in &monitors {
        let events = app.events(&monitor.id).await;
        assert_eq!(
            events.iter().filter(|event| event.kind == "down").count(),
            1,
            "{}",
            monitor.name
        );
    }
    // The recorder is shared by the tests of this process: counters only grow by at
    // least what this test did.
    let after = app.metrics().await;
    let grew = |series: &str| sample(&after, series) - sample(&before, series);
    assert!(grew("pushmon_alert_digests_total{result=\"success\"}") >= 2.0);
    assert!(grew("pushmon_alert_digest_alerts_total{result=\"success\"}") >= (2 * BURST) as f64);
    assert!(
        grew("pushmon_alerts_total{event=\"down\",result=\"success\"}") >= (2 * BURST) as f64,
        "each alert a digest covered counts as delivered"
    );
}

#[tokio::test]
async fn below_the_threshold_alerts_go_one_by_one_and_webhooks_get_singles_by_default() {
    let receiver = Receiver::start().await;
    let app = spawn_app_with(|config| {
        fast_alert_retries(config);
        config.digest.window = Duration::from_secs(1);
        config.digest.threshold = 3;
    })
    .await;
    let channels = channels(&app, &receiver).await;
    // Two alerts in the window: below the threshold, Slack gets each.
    let pair = monitors(&app, &channels, 2).await;
    all_down(&app, &pair).await;
    wait_until_recorded(&app, &pair, 2).await;
    let received = receiver.received();
    let slack = to("/slack", &received);
    assert_eq!(slack.len(), 2);
    for message in &slack {
        let text = message.json()["text"].as_str().expect("text").to_owned();
        assert!(
            text.starts_with("🔴 job-00") && text.contains(" is DOWN (manual)"),
            "{text}"
        );
    }

    // Five more: Slack gets one digest, the webhook (no --digest-webhooks) five
    // single alerts in the documented shape.
    let five = monitors(&app, &channels, 5).await;
    all_down(&app, &five).await;
    wait_until_recorded(&app, &five, 2).await;
    let received = receiver.received();
    let slack = to("/slack", &received);
    assert_eq!(slack.len(), 3, "two singles, then one digest");
    assert!(
        slack[2].json()["text"]
            .as_str()
            .expect("text")
            .starts_with("🔔 pushmon digest, 5 alerts: 5 DOWN\n"),
        "{:?}",
        slack[2].json()
    );
    let hook = to("/hook", &received);
    assert_eq!(hook.len(), 7);
    for single in &hook {
        let body = single.json();
        assert_eq!(body["event"], "down", "{body}");
        assert_eq!(body["reason"], "manual");
        assert!(body["monitor"]["id"].is_string() && body["monitor"]["name"].is_string());
        assert!(body.get("msg").is_some() && body.get("value").is_some());
    }
}

#[tokio::test]
async fn a_sigkill_inside_the_window_still_delivers_the_digest_once() {
    let receiver = Receiver::start().await;
    let data_dir = tempfile::tempdir().unwrap();
    let flags = |window: &'static str| {
        [
            "--digest-window",
            window,
            "--digest-webhooks",
            "--alert-retry-initial-ms",
            "100",
            "--restart-grace",
            "0",
        ]
    };
    // A window far longer than the test takes to get every `down` durable.
    let server = ServerProcess::start(data_dir.path(), &flags("600")).await;
    let channels = channels(&server, &receiver).await;
    let monitors = monitors(&server, &channels, BURST).await;
    all_down(&server, &monitors).await;
    server.sigkill().await;
    assert!(
        receiver.received().is_empty(),
        "nothing goes out inside the window"
    );

    // The restart hands the whole outbox to the dispatcher: one digest per channel.
    let server = ServerProcess::start(data_dir.path(), &flags("1")).await;
    wait_for_each(&receiver, &["/hook", "/slack"]).await;
    wait_until_recorded(&server, &monitors, 2).await;
    let received = receiver.received();
    let hook = to("/hook", &received);
    assert_eq!(hook.len(), 1, "the webhook got {} messages", hook.len());
    assert_eq!(to("/slack", &received).len(), 1);
    assert_webhook_digest_names_all(&hook[0], &monitors);
    assert_slack_digest(&to("/slack", &received)[0], BURST);
    // This process counts only its own: two digests, carrying 300 alerts each.
    let metrics = server.metrics().await;
    for (series, value) in [
        ("pushmon_alert_digests_total{result=\"success\"}", 2),
        (
            "pushmon_alert_digest_alerts_total{result=\"success\"}",
            2 * BURST,
        ),
        (
            "pushmon_alerts_total{event=\"down\",result=\"success\"}",
            2 * BURST,
        ),
        ("pushmon_alert_digests_total{result=\"failure\"}", 0),
    ] {
        assert_eq!(sample(&metrics, series), value as f64, "{series}");
    }

    // Delivered and recorded: another crash sends nothing again.
    server.sigkill().await;
    let server = ServerProcess::start(data_dir.path(), &flags("1")).await;
    sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        receiver.received().len(),
        2,
        "a delivered digest was re-sent"
    );
    assert_eq!(delivered_events(&server, &monitors[0].id).await, 2);
    let (status, _) = server.sigterm().await;
    assert!(status.success());
}

#[tokio::test]
async fn mail_lists_every_alert_and_alertmanager_gets_one_array_of_all() {
    let smtp = crate::smtp::SmtpSink::start().await;
    let receiver = Receiver::start().await;
    let app = spawn_app_with(|config| {
        fast_alert_retries(config);
        config.digest.window = Duration::from_secs(1);
    })
    .await;
    let mail = create_channel(
        &app,
        json!({
            "kind": "email",
            "name": "oncall",
            "smtp_url": format!("smtp://127.0.0.1:{}", smtp.port),
            "from": "pushmon@example.test",
            "to": ["oncall@example.test"],
        }),
    )
    .await;
    let alertmanager = create_channel(
        &app,
        json!({"kind": "alertmanager", "name": "am", "url": receiver.url("/am")}),
    )
    .await;
    let monitors = monitors(&app, &[mail, alertmanager], 40).await;
    all_down(&app, &monitors).await;
    wait_until_recorded(&app, &monitors, 2).await;

    let output = smtp
        .wait_for_message("Subject: [pushmon] 40 alerts: 40 DOWN", WAIT)
        .await;
    assert_eq!(
        output.matches("MESSAGE FOLLOWS").count(),
        1,
        "one mail: {output}"
    );
    for monitor in &monitors {
        assert!(
            output.contains(&format!("{} is DOWN (manual)", monitor.name)),
            "{} missing: {output}",
            monitor.name
        );
    }
    assert!(output.contains("Message-ID: <"), "{output}");
    assert!(output.contains(".digest-"), "{output}");

    let posts = to("/am/api/v2/alerts", &receiver.delivered());
    assert_eq!(posts.len(), 1, "one request to Alertmanager");
    let alerts = posts[0].json();
    let alerts = alerts.as_array().expect("an array of alerts");
    assert_eq!(alerts.len(), monitors.len());
    let ids: BTreeSet<&str> = alerts
        .iter()
        .map(|alert| alert["annotations"]["alert_id"].as_str().expect("alert id"))
        .collect();
    assert_eq!(ids.len(), monitors.len(), "each alert keeps its own id");
    assert!(
        alerts
            .iter()
            .all(|alert| alert["labels"]["alertname"] == "PushmonMonitorDown")
    );
}
