//! Muting (`docs/states.md`, "Muting"; `docs/api.md`, "Muting") against the real
//! server and a real webhook receiver: a muted monitor still records its changes and
//! alerts none; an unmute lets the next change alert; a selector mutes only what it
//! selects; a mute survives SIGKILL; bad requests get JSON errors.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::time::{Instant, sleep};

use crate::receiver::Receiver;
use crate::support::{
    Api, ServerProcess, Status, expect_error, expect_json, fast_alert_retries, spawn_app_with,
};

const WAIT: Duration = Duration::from_secs(10);

/// A webhook channel to `receiver`, and a monitor alerting it.
async fn watched(api: &Api, receiver: &Receiver, name: &str, labels: Value) -> (String, String) {
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
    let channel = channel["id"].as_str().unwrap().to_owned();
    let monitor = api
        .create_monitor_from(&json!({
            "name": name, "timeout_seconds": 3600, "channels": [channel], "labels": labels,
        }))
        .await;
    (monitor.id, monitor.push_token)
}

async fn post(api: &Api, path: &str, body: Option<Value>) -> reqwest::Response {
    let request = api.api(Method::POST, path);
    let request = match body {
        Some(body) => request.json(&body),
        None => request,
    };
    request.send().await.unwrap()
}

/// `seconds` after the monitor's `created_at`, in RFC 3339: a time in the server's
/// own clock, read from no wall clock here.
async fn after_creation(api: &Api, id: &str, seconds: i64) -> String {
    let monitor = api.monitor_value(id).await;
    let created = OffsetDateTime::parse(monitor["created_at"].as_str().unwrap(), &Rfc3339).unwrap();
    (created + time::Duration::seconds(seconds))
        .format(&Rfc3339)
        .unwrap()
}

/// The monitor's events as the API shows them, oldest first.
async fn history(api: &Api, id: &str) -> Vec<Value> {
    let body = expect_json(
        api.api(
            Method::GET,
            &format!("/api/monitors/{id}/events?limit=1000"),
        )
        .send()
        .await
        .unwrap(),
        StatusCode::OK,
    )
    .await;
    let mut events = body["events"].as_array().unwrap().clone();
    events.reverse();
    events
}

/// Whether two RFC 3339 texts name the same moment.
fn same_time(shown: &Value, expected: &str) -> bool {
    let parse = |text: &str| OffsetDateTime::parse(text, &Rfc3339).unwrap();
    shown
        .as_str()
        .is_some_and(|text| parse(text) == parse(expected))
}

fn kinds(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|event| event["kind"].as_str().unwrap().to_owned())
        .filter(|kind| kind != "heartbeat" && kind != "delivery")
        .collect()
}

#[tokio::test]
async fn a_muted_monitor_records_its_down_alerts_nothing_and_alerts_again_once_unmuted() {
    let receiver = Receiver::start().await;
    let app = spawn_app_with(fast_alert_retries).await;
    let (id, token) = watched(&app, &receiver, "muted", json!({})).await;
    app.push_ok(&token, &[]).await;
    let until = after_creation(&app, &id, 3600).await;
    let muted = expect_json(
        post(
            &app,
            &format!("/api/monitors/{id}/mute"),
            Some(json!({"until": until})),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(muted["id"], id.as_str());
    assert!(same_time(&muted["muted"]["until"], &until), "{muted}");
    assert_eq!(muted["muted"]["until_recovery"], false);
    assert!(muted["muted"]["since"].is_string());

    app.push_ok(&token, &[("status", "down")]).await;
    let monitor = app.monitor_value(&id).await;
    assert_eq!(monitor["status"], "down", "the state is still tracked");
    assert!(same_time(&monitor["muted"]["until"], &until), "{monitor}");
    let events = history(&app, &id).await;
    assert_eq!(
        kinds(&events),
        ["created", "up", "muted", "alert_suppressed", "down"]
    );
    let hold = &events[events.len() - 2];
    assert_eq!(hold["held_by"], "mute");
    assert_eq!(hold["alert"], "down");
    assert_eq!(hold["reason"], "manual");
    // Nothing reaches the receiver (it would within milliseconds).
    sleep(Duration::from_millis(1500)).await;
    assert!(receiver.received().is_empty(), "{:?}", receiver.received());

    let unmuted = expect_json(
        post(&app, &format!("/api/monitors/{id}/unmute"), None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(unmuted["muted"], Value::Null);
    let events = history(&app, &id).await;
    assert_eq!(events.last().unwrap()["kind"], "unmuted");
    assert_eq!(events.last().unwrap()["reason"], "manual");
    // Unmuting twice changes nothing.
    expect_json(
        post(&app, &format!("/api/monitors/{id}/unmute"), None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(history(&app, &id).await.len(), events.len());
    // The held down is never sent; the next change is.
    app.push_ok(&token, &[]).await;
    let delivered = receiver.wait_for_delivered(1, WAIT).await;
    assert_eq!(delivered[0].json()["event"], "up");
    sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.received().len(), 1);
}

#[tokio::test]
async fn a_timed_mute_ends_by_itself_and_an_acknowledgement_at_the_recovery() {
    let receiver = Receiver::start().await;
    let app = spawn_app_with(fast_alert_retries).await;
    let (id, token) = watched(&app, &receiver, "timed", json!({})).await;
    app.push_ok(&token, &[]).await;
    let until = after_creation(&app, &id, 3).await;
    expect_json(
        post(
            &app,
            &format!("/api/monitors/{id}/mute"),
            Some(json!({"until": until})),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let deadline = Instant::now() + WAIT;
    loop {
        let events = history(&app, &id).await;
        if let Some(end) = events.iter().find(|event| event["kind"] == "unmuted") {
            assert_eq!(end["reason"], "expired");
            assert!(same_time(&end["at"], &until), "stamped at its until: {end}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the mute never ended: {events:?}"
        );
        sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(app.monitor_value(&id).await["muted"], Value::Null);

    // Acknowledged while down: the recovery is recorded, not alerted, and ends it.
    app.push_ok(&token, &[("status", "down")]).await;
    receiver.wait_for_delivered(1, WAIT).await;
    let acknowledged = expect_json(
        post(
            &app,
            &format!("/api/monitors/{id}/mute"),
            Some(json!({"until_recovery": true})),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(acknowledged["muted"]["until"], Value::Null);
    assert_eq!(acknowledged["muted"]["until_recovery"], true);
    app.push_ok(&token, &[]).await;
    let monitor = app.monitor_value(&id).await;
    assert_eq!(monitor["status"], "up");
    assert_eq!(monitor["muted"], Value::Null);
    let events = history(&app, &id).await;
    let tail: Vec<String> = kinds(&events).into_iter().rev().take(4).rev().collect();
    assert_eq!(tail, ["muted", "alert_suppressed", "up", "unmuted"]);
    assert_eq!(events.last().unwrap()["reason"], "recovered");
    sleep(Duration::from_millis(1000)).await;
    assert_eq!(receiver.received().len(), 1, "only the first down");
}

#[tokio::test]
async fn a_selector_mutes_only_the_monitors_it_selects() {
    let receiver = Receiver::start().await;
    let app = spawn_app_with(fast_alert_retries).await;
    let (payments, payments_token) =
        watched(&app, &receiver, "payments", json!({"team": "payments"})).await;
    let (search, search_token) =
        watched(&app, &receiver, "search", json!({"team": "search"})).await;
    let answer = expect_json(
        post(
            &app,
            "/api/monitors/mute?selector=team%3Dpayments",
            Some(json!({"until_recovery": true})),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(answer, json!({"muted": 1, "monitors": [payments]}));
    assert_eq!(
        app.monitor_value(&payments).await["muted"]["until_recovery"],
        true
    );
    assert_eq!(app.monitor_value(&search).await["muted"], Value::Null);
    assert!(
        app.metrics()
            .await
            .lines()
            .any(|line| line == "pushmon_monitors_muted 1"),
        "the gauge counts the muted monitor"
    );
    for token in [&payments_token, &search_token] {
        app.push_ok(token, &[("status", "down")]).await;
    }
    let delivered = receiver.wait_for_delivered(1, WAIT).await;
    assert_eq!(delivered[0].json()["monitor"]["name"], "search");
    sleep(Duration::from_millis(1000)).await;
    assert_eq!(receiver.received().len(), 1);
    // A selector that selects nothing mutes nothing; unmute by selector.
    let none = expect_json(
        post(
            &app,
            "/api/monitors/mute?selector=team%3Dnobody",
            Some(json!({"until_recovery": true})),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(none, json!({"muted": 0, "monitors": []}));
    let answer = expect_json(
        post(&app, "/api/monitors/unmute?selector=team", None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(answer, json!({"unmuted": 1, "monitors": [payments]}));
    assert_eq!(app.monitor_value(&payments).await["muted"], Value::Null);
}

#[tokio::test]
async fn bad_mute_requests_get_json_errors() {
    let app = spawn_app_with(|_| {}).await;
    let monitor = app.create_monitor("bad", 60).await;
    let path = format!("/api/monitors/{}/mute", monitor.id);
    let past = after_creation(&app, &monitor.id, -60).await;
    let far = after_creation(&app, &monitor.id, 400 * 24 * 3600).await;
    let soon = after_creation(&app, &monitor.id, 600).await;
    for (body, names) in [
        (json!({"until": past}), "until"),
        (json!({"until": far}), "until"),
        (json!({"until": "tomorrow"}), "until"),
        (json!({"until": 12}), "until"),
        (
            json!({"until": soon, "until_recovery": true}),
            "until_recovery",
        ),
        (json!({}), "until_recovery"),
        (json!({"until_recovery": false}), "until_recovery"),
        (json!({"until_recovery": "yes"}), "until_recovery"),
        (json!({"until_recovery": true, "for": 5}), "\"for\""),
    ] {
        let error = expect_error(
            post(&app, &path, Some(body.clone())).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert!(error.contains(names), "{body}: {error}");
    }
    let not_json = app.api(Method::POST, &path).body("{").send().await.unwrap();
    expect_error(not_json, StatusCode::BAD_REQUEST).await;
    let gone = app.create_monitor("gone", 60).await;
    app.delete_monitor(&gone.id).await;
    let unknown = format!("/api/monitors/{}/mute", gone.id);
    expect_error(
        post(&app, &unknown, Some(json!({"until_recovery": true}))).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let error = expect_error(
        post(
            &app,
            "/api/monitors/mute",
            Some(json!({"until_recovery": true})),
        )
        .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(error.contains("selector"), "{error}");
    expect_error(
        post(
            &app,
            "/api/monitors/mute?selector=%3D%3D",
            Some(json!({"until_recovery": true})),
        )
        .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(app.monitor_value(&monitor.id).await["muted"], Value::Null);

    // A read key may not mute; a write key may.
    let mut keys = Vec::new();
    for scope in ["read", "write"] {
        let key = expect_json(
            app.api(Method::POST, "/api/keys")
                .json(&json!({"name": scope, "scope": scope}))
                .send()
                .await
                .unwrap(),
            StatusCode::CREATED,
        )
        .await;
        keys.push(key["key"].as_str().unwrap().to_owned());
    }
    let with_key = |key: &str, path: &str| {
        app.client
            .request(Method::POST, app.url(path))
            .bearer_auth(key)
            .json(&json!({"until_recovery": true}))
    };
    for path in [path.as_str(), "/api/monitors/mute?selector="] {
        let refused = with_key(&keys[0], path).send().await.unwrap();
        expect_error(refused, StatusCode::FORBIDDEN).await;
    }
    let allowed = with_key(&keys[1], &path).send().await.unwrap();
    let muted = expect_json(allowed, StatusCode::OK).await;
    assert_eq!(muted["muted"]["until_recovery"], true);
}

#[tokio::test]
async fn a_mute_survives_sigkill() {
    let receiver = Receiver::start().await;
    let data_dir = tempfile::tempdir().unwrap();
    let args = ["--alert-retry-initial-ms", "100", "--restart-grace", "0"];
    let server = ServerProcess::start(data_dir.path(), &args).await;
    let (id, token) = watched(&server, &receiver, "durable", json!({})).await;
    server.push_ok(&token, &[]).await;
    expect_json(
        post(
            &server,
            &format!("/api/monitors/{id}/mute"),
            Some(json!({"until_recovery": true})),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    server.sigkill().await;
    let server = ServerProcess::start(data_dir.path(), &args).await;
    assert_eq!(
        server.monitor_value(&id).await["muted"]["until_recovery"],
        true
    );
    server.push_ok(&token, &[("status", "down")]).await;
    server.wait_for_status(&id, Status::Down, WAIT).await;
    sleep(Duration::from_millis(1000)).await;
    assert!(receiver.received().is_empty());
    let (status, _) = server.sigterm().await;
    assert!(status.success());
}
