//! Fleet monitors (`docs/states.md`, "Fleets"; `docs/push.md`, `instance=`) against
//! the real server and a real webhook receiver: a fleet of three needing two stays up
//! when one instance stops, goes down naming the missing when two stop, recovers when
//! they return; a silent instance is forgotten after the retention; bad instance
//! names and settings are refused.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::time::sleep;

use crate::receiver::Receiver;
use crate::support::{Api, Status, expect_error, expect_json, fast_alert_retries, spawn_app_with};

const WAIT: Duration = Duration::from_secs(15);

/// A webhook channel to `receiver`.
pub async fn webhook(api: &Api, receiver: &Receiver, name: &str) -> String {
    let channel = expect_json(
        api.api(Method::POST, "/api/channels")
            .json(
                &json!({"kind": "webhook", "name": name, "url": receiver.url(&format!("/{name}"))}),
            )
            .send()
            .await
            .unwrap(),
        StatusCode::CREATED,
    )
    .await;
    channel["id"].as_str().unwrap().to_owned()
}

/// Pushes from each of `instances` every 300 ms until dropped.
struct Instances(tokio::task::JoinHandle<()>);

impl Instances {
    fn report(api: &Api, token: &str, instances: &[&str]) -> Self {
        let (api, token) = (api.clone(), token.to_owned());
        let instances: Vec<String> = instances.iter().map(|name| (*name).to_owned()).collect();
        Self(tokio::spawn(async move {
            loop {
                for instance in &instances {
                    api.push_ok(&token, &[("instance", instance)]).await;
                }
                sleep(Duration::from_millis(300)).await;
            }
        }))
    }
}

impl Drop for Instances {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn names(values: &Value) -> Vec<&str> {
    values
        .as_array()
        .unwrap()
        .iter()
        .map(|value| value.as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn a_fleet_of_three_needing_two_alerts_only_when_two_stop_and_names_them() {
    let receiver = Receiver::start().await;
    let app = spawn_app_with(fast_alert_retries).await;
    let channel = webhook(&app, &receiver, "fleet").await;
    let fleet = app
        .create_monitor_from(&json!({
            "name": "workers", "timeout_seconds": 2, "min_instances": 2,
            "channels": [channel],
        }))
        .await;
    let shown = app.monitor_value(&fleet.id).await;
    assert_eq!(shown["min_instances"], 2);
    assert_eq!(shown["instance_retention_seconds"], Value::Null);
    assert_eq!(shown["instances"], json!([]));
    // One instance is no quorum.
    app.push_ok(&fleet.push_token, &[("instance", "a")]).await;
    assert_eq!(app.get_monitor(&fleet.id).await.status, Status::Pending);
    let all = Instances::report(&app, &fleet.push_token, &["a", "b", "c"]);
    app.wait_for_status(&fleet.id, Status::Up, WAIT).await;
    drop(all);
    // c stops: two of three still report, for more than a timeout.
    let two = Instances::report(&app, &fleet.push_token, &["a", "b"]);
    sleep(Duration::from_millis(3500)).await;
    let shown = app.monitor_value(&fleet.id).await;
    assert_eq!(shown["status"], "up", "{shown}");
    assert_eq!(shown["instances_reporting"], 2);
    assert_eq!(names(&shown["missing_instances"]), ["c"]);
    let instances = shown["instances"].as_array().unwrap();
    assert_eq!(instances.len(), 3);
    assert_eq!(instances[2]["name"], "c");
    assert_eq!(instances[2]["reporting"], false);
    assert_eq!(instances[2]["status"], "up");
    assert!(instances[2]["last_seen"].is_string());
    assert!(receiver.received().is_empty(), "no alert while two report");
    drop(two);
    // b stops too: down, and the alert names b and c.
    let one = Instances::report(&app, &fleet.push_token, &["a"]);
    let down = app.wait_for_status(&fleet.id, Status::Down, WAIT).await;
    assert_eq!(down.status, Status::Down);
    let delivered = receiver.wait_for_delivered(1, WAIT).await;
    let alert = delivered[0].json();
    assert_eq!(alert["event"], "down");
    assert_eq!(alert["reason"], "instances");
    assert_eq!(names(&alert["missing_instances"]), ["b", "c"]);
    assert_eq!(
        app.monitor_value(&fleet.id).await["down_reason"],
        "instances"
    );
    drop(one);
    // They return (a, b, then c): recovered.
    let back = Instances::report(&app, &fleet.push_token, &["a", "b", "c"]);
    app.wait_for_status(&fleet.id, Status::Up, WAIT).await;
    let delivered = receiver.wait_for_delivered(2, WAIT).await;
    let alert = delivered[1].json();
    assert_eq!(alert["event"], "up");
    // It recovered with b, before c reported again.
    assert_eq!(names(&alert["missing_instances"]), ["c"]);
    drop(back);
    // The heartbeats' events say which instance sent each.
    let history = app.history(&fleet.id).await;
    let kinds: Vec<&str> = history.iter().map(|event| event.kind.as_str()).collect();
    assert!(
        kinds.contains(&"down") && kinds.contains(&"up"),
        "{kinds:?}"
    );
    let events = expect_json(
        app.api(
            Method::GET,
            &format!("/api/monitors/{}/events?limit=100", fleet.id),
        )
        .send()
        .await
        .unwrap(),
        StatusCode::OK,
    )
    .await;
    let heartbeat = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|event| event["kind"] == "heartbeat")
        .unwrap();
    assert!(
        ["a", "b", "c"].contains(&heartbeat["instance"].as_str().unwrap()),
        "{heartbeat}"
    );
}

#[tokio::test]
async fn an_instance_silent_past_the_retention_is_forgotten() {
    let app = spawn_app_with(|_| {}).await;
    let fleet = app
        .create_monitor_from(&json!({
            "name": "pods", "timeout_seconds": 1, "min_instances": 1,
            "instance_retention_seconds": 2,
        }))
        .await;
    app.push_ok(&fleet.push_token, &[("instance", "pod-1")])
        .await;
    app.push_ok(&fleet.push_token, &[("instance", "pod-2")])
        .await;
    let survivor = Instances::report(&app, &fleet.push_token, &["pod-1"]);
    let started = tokio::time::Instant::now();
    loop {
        let shown = app.monitor_value(&fleet.id).await;
        let listed: Vec<&str> = shown["instances"]
            .as_array()
            .unwrap()
            .iter()
            .map(|instance| instance["name"].as_str().unwrap())
            .collect();
        if listed == ["pod-1"] {
            break;
        }
        assert!(started.elapsed() < WAIT, "pod-2 never forgotten: {shown}");
        sleep(Duration::from_millis(100)).await;
    }
    drop(survivor);
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "not before the retention"
    );
    let events = expect_json(
        app.api(
            Method::GET,
            &format!("/api/monitors/{}/events?limit=1000", fleet.id),
        )
        .send()
        .await
        .unwrap(),
        StatusCode::OK,
    )
    .await;
    let forgotten: Vec<&Value> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| event["kind"] == "instance_forgotten")
        .collect();
    assert_eq!(forgotten.len(), 1, "{events}");
    assert_eq!(forgotten[0]["instance"], "pod-2");
}

#[tokio::test]
async fn bad_instance_names_and_fleet_settings_are_refused() {
    let app = spawn_app_with(|_| {}).await;
    let fleet = app
        .create_monitor_from(&json!({"name": "fleet", "timeout_seconds": 60, "min_instances": 2}))
        .await;
    let long = "x".repeat(65);
    for bad in ["", "a b", "é", "a/b", long.as_str()] {
        let error = expect_error(
            app.push(&fleet.push_token, &[("instance", bad)]).await,
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert!(error.contains("instance"), "{error}");
    }
    // In a JSON body, a ping URL, a form: the same rule.
    let response = app
        .client
        .post(app.url(&format!("/api/push/{}", fleet.push_token)))
        .json(&json!({"instance": 5}))
        .send()
        .await
        .unwrap();
    expect_error(response, StatusCode::BAD_REQUEST).await;
    let response = app
        .client
        .get(app.url(&format!("/ping/{}?instance=no%20spaces", fleet.push_token)))
        .send()
        .await
        .unwrap();
    expect_error(response, StatusCode::BAD_REQUEST).await;
    let response = app
        .client
        .post(app.url(&format!("/api/push/{}", fleet.push_token)))
        .form(&[("instance", "a|b")])
        .send()
        .await
        .unwrap();
    expect_error(response, StatusCode::BAD_REQUEST).await;
    // Valid names are taken everywhere; none was recorded before.
    assert_eq!(app.monitor_value(&fleet.id).await["instances"], json!([]));
    app.push_ok(&fleet.push_token, &[("instance", "web-1.eu:8080_a")])
        .await;
    let response = app
        .client
        .get(app.url(&format!("/ping/{}?instance=web-2", fleet.push_token)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let response = app
        .client
        .post(app.url(&format!("/api/push/{}", fleet.push_token)))
        .json(&json!({"instance": "web-3"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(app.get_monitor(&fleet.id).await.status, Status::Up);
    let shown = app.monitor_value(&fleet.id).await;
    assert_eq!(shown["instances_reporting"], 3);
    // The metrics: the count per fleet, and one series per instance.
    let metrics = app.metrics().await;
    let series = |prefix: &str| -> Vec<String> {
        metrics
            .lines()
            .filter(|line| line.starts_with(prefix) && line.contains(&fleet.id))
            .map(str::to_owned)
            .collect()
    };
    let reporting = series("pushmon_monitor_instances_reporting{");
    assert_eq!(reporting.len(), 1, "{metrics}");
    assert!(reporting[0].ends_with(" 3"), "{reporting:?}");
    let seen = series("pushmon_instance_last_seen_timestamp_seconds{");
    assert_eq!(seen.len(), 3, "{metrics}");
    assert!(seen[0].contains("instance=\"web-1.eu:8080_a\""), "{seen:?}");
    // Settings that make no sense for a fleet.
    for (body, field) in [
        (
            json!({"name": "x", "timeout_seconds": 60, "min_instances": 0}),
            "min_instances",
        ),
        (
            json!({"name": "x", "timeout_seconds": 60, "min_instances": 1001}),
            "min_instances",
        ),
        (
            json!({"name": "x", "schedule": "0 * * * *", "min_instances": 2}),
            "schedule",
        ),
        (
            json!({"name": "x", "timeout_seconds": 60, "min_instances": 2, "failure_threshold": 3}),
            "failure_threshold",
        ),
        (
            json!({"name": "x", "timeout_seconds": 60, "min_instances": 2, "instance_retention_seconds": 30}),
            "instance_retention_seconds",
        ),
    ] {
        let error = expect_error(
            app.post_monitor(&body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert!(error.contains(field), "{body}: {error}");
    }
    let error = expect_error(
        app.patch_monitor(&fleet.id, &json!({"recovery_threshold": 2}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(error.contains("recovery_threshold"), "{error}");
    // An ordinary monitor records the instance a heartbeat names, and keeps none.
    let plain = app.create_monitor("plain", 60).await;
    app.push_ok(&plain.push_token, &[("instance", "a")]).await;
    assert_eq!(app.monitor_value(&plain.id).await["instances"], json!([]));
    assert_eq!(
        app.monitor_value(&plain.id).await["instances_reporting"],
        Value::Null
    );
    let metrics = app.metrics().await;
    assert!(
        !metrics
            .lines()
            .any(|line| line.contains(&plain.id) && line.contains("instance")),
        "no instance series for an ordinary monitor"
    );
}
