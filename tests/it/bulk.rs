//! Bulk changes (`docs/api.md`, "Changing many monitors at once") against the real
//! server: a selector picks exactly the monitors `GET /api/monitors` would; each
//! action records one event per monitor it changes; a dry run changes nothing; a
//! delete takes the push tokens away; bad requests get JSON errors; a read key is
//! refused; the whole change survives SIGKILL right after the answer.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{Api, ServerProcess, expect_error, expect_json, spawn_app};

async fn bulk(api: &Api, query: &str, body: Value) -> reqwest::Response {
    api.api(Method::POST, &format!("/api/monitors/bulk?{query}"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn bulk_ok(api: &Api, query: &str, body: Value) -> Value {
    expect_json(bulk(api, query, body).await, StatusCode::OK).await
}

/// 20 monitors, the even ones labelled team=payments, the odd ones team=search.
async fn twenty(api: &Api) -> Vec<(String, String, bool)> {
    let mut monitors = Vec::new();
    for i in 0..20 {
        let team = if i % 2 == 0 { "payments" } else { "search" };
        let monitor = api
            .create_monitor_from(&json!({
                "name": format!("job-{i}"), "timeout_seconds": 3600,
                "labels": {"team": team},
            }))
            .await;
        monitors.push((monitor.id, monitor.push_token, i % 2 == 0));
    }
    monitors
}

async fn channel(api: &Api, name: &str) -> String {
    let channel = expect_json(
        api.api(Method::POST, "/api/channels")
            .json(&json!({"kind": "webhook", "name": name, "url": "http://127.0.0.1:9/hook"}))
            .send()
            .await
            .unwrap(),
        StatusCode::CREATED,
    )
    .await;
    channel["id"].as_str().unwrap().to_owned()
}

/// The kinds of the monitor's events, oldest first.
async fn kinds(api: &Api, id: &str) -> Vec<String> {
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
    let mut kinds: Vec<String> = body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["kind"].as_str().unwrap().to_owned())
        .collect();
    kinds.reverse();
    kinds
}

fn listed_ids(answer: &Value) -> Vec<String> {
    let mut ids: Vec<String> = answer["monitors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|monitor| monitor["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn a_bulk_pause_by_selector_pauses_exactly_the_selected_monitors_and_a_dry_run_nothing() {
    let app = spawn_app().await;
    let monitors = twenty(&app).await;
    let mut payments: Vec<String> = monitors
        .iter()
        .filter(|(_, _, even)| *even)
        .map(|(id, _, _)| id.clone())
        .collect();
    payments.sort();

    // A dry run lists what would change, and changes nothing.
    let dry = bulk_ok(
        &app,
        "selector=team%3Dpayments",
        json!({"action": "pause", "dry_run": true}),
    )
    .await;
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["matched"], 10);
    assert_eq!(dry["changed"], 10);
    assert_eq!(listed_ids(&dry), payments);
    assert!(
        dry["monitors"]
            .as_array()
            .unwrap()
            .iter()
            .all(|monitor| monitor["events"] == json!(["paused"]))
    );
    for (id, _, _) in &monitors {
        assert_eq!(app.monitor_value(id).await["status"], "pending", "{id}");
        assert_eq!(kinds(&app, id).await, ["created"]);
    }

    let paused = bulk_ok(&app, "selector=team%3Dpayments", json!({"action": "pause"})).await;
    assert_eq!(paused["dry_run"], false);
    assert_eq!(
        (paused["matched"].clone(), paused["changed"].clone()),
        (json!(10), json!(10))
    );
    assert_eq!(listed_ids(&paused), payments);
    for (id, _, even) in &monitors {
        let status = app.monitor_value(id).await["status"].clone();
        if *even {
            assert_eq!(status, "paused", "{id}");
            assert_eq!(kinds(&app, id).await, ["created", "paused"]);
        } else {
            assert_eq!(status, "pending", "{id}");
            assert_eq!(kinds(&app, id).await, ["created"]);
        }
    }

    // Pausing them again changes nothing: each is listed with no events.
    let again = bulk_ok(&app, "selector=team%3Dpayments", json!({"action": "pause"})).await;
    assert_eq!(
        (again["matched"].clone(), again["changed"].clone()),
        (json!(10), json!(0))
    );
    assert!(
        again["monitors"]
            .as_array()
            .unwrap()
            .iter()
            .all(|monitor| monitor["events"] == json!([]))
    );

    // Resume by another filter (status), then mute and unmute by selector.
    let resumed = bulk_ok(&app, "status=paused", json!({"action": "resume"})).await;
    assert_eq!(resumed["changed"], 10);
    for id in &payments {
        assert_eq!(kinds(&app, id).await, ["created", "paused", "resumed"]);
    }
    let muted = bulk_ok(
        &app,
        "selector=team%3Dsearch",
        json!({"action": "mute", "until_recovery": true}),
    )
    .await;
    assert_eq!(muted["changed"], 10);
    for (id, _, even) in &monitors {
        let shown = app.monitor_value(id).await["muted"].clone();
        assert_eq!(shown.is_null(), *even, "{id}: {shown}");
    }
    let unmuted = bulk_ok(&app, "selector=", json!({"action": "unmute"})).await;
    assert_eq!(
        (unmuted["matched"].clone(), unmuted["changed"].clone()),
        (json!(20), json!(10))
    );
}

#[tokio::test]
async fn bulk_channel_changes_and_a_bulk_delete() {
    let app = spawn_app().await;
    let monitors = twenty(&app).await;
    let (a, b) = (channel(&app, "a").await, channel(&app, "b").await);
    let channels_of = |value: &Value| {
        let mut channels: Vec<String> = value["channels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_owned())
            .collect();
        channels.sort();
        channels
    };
    let mut both = vec![a.clone(), b.clone()];
    both.sort();

    let set = bulk_ok(
        &app,
        "selector=team%3Dpayments",
        json!({"action": "set_channels", "channels": [a]}),
    )
    .await;
    assert_eq!(set["changed"], 10);
    let added = bulk_ok(
        &app,
        "selector=team",
        json!({"action": "add_channels", "channels": [b]}),
    )
    .await;
    assert_eq!(
        (added["matched"].clone(), added["changed"].clone()),
        (json!(20), json!(20))
    );
    for (id, _, even) in &monitors {
        let shown = channels_of(&app.monitor_value(id).await);
        let expected = if *even { both.clone() } else { vec![b.clone()] };
        assert_eq!(shown, expected, "{id}");
    }
    let removed = bulk_ok(
        &app,
        "selector=team%3Dsearch",
        json!({"action": "remove_channels", "channels": [b, a]}),
    )
    .await;
    assert_eq!(removed["changed"], 10);
    for (id, _, even) in &monitors {
        let shown = channels_of(&app.monitor_value(id).await);
        let expected = if *even { both.clone() } else { Vec::new() };
        assert_eq!(shown, expected, "{id}");
    }

    // An unknown channel is refused, and changes nothing.
    let gone = channel(&app, "gone").await;
    let deleted_channel = app
        .api(Method::DELETE, &format!("/api/channels/{gone}"))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted_channel.status(), StatusCode::NO_CONTENT);
    let error = expect_error(
        bulk(
            &app,
            "selector=",
            json!({"action": "set_channels", "channels": [gone]}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(error.contains("channel"), "{error}");

    // No monitor may end up with more than 64 channels: refused, nothing changed.
    let mut many = Vec::new();
    for index in 0..64 {
        many.push(channel(&app, &format!("many-{index}")).await);
    }
    let error = expect_error(
        bulk(
            &app,
            "selector=",
            json!({"action": "add_channels", "channels": many}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(error.contains("at most 64"), "{error}");
    for (id, _, even) in &monitors {
        let shown = channels_of(&app.monitor_value(id).await);
        let expected = if *even { both.clone() } else { Vec::new() };
        assert_eq!(shown, expected, "{id}");
    }

    // Delete by selector: the selected monitors go, their push tokens with them.
    let deleted = bulk_ok(&app, "selector=team%3Dsearch", json!({"action": "delete"})).await;
    assert_eq!(deleted["changed"], 10);
    for (id, token, even) in &monitors {
        let shown = app
            .api(Method::GET, &format!("/api/monitors/{id}"))
            .send()
            .await
            .unwrap();
        let push = app.push(token, &[]).await;
        if *even {
            assert_eq!(shown.status(), StatusCode::OK);
            assert_eq!(push.status(), StatusCode::OK);
        } else {
            assert_eq!(shown.status(), StatusCode::NOT_FOUND);
            assert_eq!(push.status(), StatusCode::NOT_FOUND);
        }
    }
    let listed = expect_json(
        app.api(Method::GET, "/api/monitors").send().await.unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(listed["monitors"].as_array().unwrap().len(), 10);
}

#[tokio::test]
async fn bad_bulk_requests_get_json_errors_and_a_read_key_is_refused() {
    let app = spawn_app().await;
    let monitor = app.create_monitor("one", 60).await;
    for (body, names) in [
        (json!({}), "action"),
        (json!({"action": "explode"}), "action"),
        (json!({"action": 3}), "action"),
        (json!({"action": "pause", "force": true}), "\"force\""),
        (json!({"action": "pause", "dry_run": "yes"}), "dry_run"),
        (
            json!({"action": "pause", "until_recovery": true}),
            "until_recovery",
        ),
        (json!({"action": "mute"}), "until_recovery"),
        (json!({"action": "set_channels"}), "channels"),
        (
            json!({"action": "add_channels", "channels": ["nope"]}),
            "channels",
        ),
        (json!({"action": "pause", "channels": []}), "channels"),
    ] {
        let error = expect_error(
            bulk(&app, "selector=", body.clone()).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert!(error.contains(names), "{body}: {error}");
    }
    let error = expect_error(
        app.api(Method::POST, "/api/monitors/bulk")
            .json(&json!({"action": "pause"}))
            .send()
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(error.contains("selector"), "{error}");
    expect_error(
        bulk(&app, "selector=%3D%3D", json!({"action": "pause"})).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    let not_json = app
        .api(Method::POST, "/api/monitors/bulk?selector=")
        .body("{")
        .send()
        .await
        .unwrap();
    expect_error(not_json, StatusCode::BAD_REQUEST).await;
    // Nothing above changed the monitor.
    assert_eq!(kinds(&app, &monitor.id).await, ["created"]);

    let key = expect_json(
        app.api(Method::POST, "/api/keys")
            .json(&json!({"name": "reader", "scope": "read"}))
            .send()
            .await
            .unwrap(),
        StatusCode::CREATED,
    )
    .await;
    let refused = app
        .client
        .request(Method::POST, app.url("/api/monitors/bulk?selector="))
        .bearer_auth(key["key"].as_str().unwrap())
        .json(&json!({"action": "pause"}))
        .send()
        .await
        .unwrap();
    expect_error(refused, StatusCode::FORBIDDEN).await;
    assert_eq!(app.monitor_value(&monitor.id).await["status"], "pending");
}

#[tokio::test]
async fn a_bulk_change_survives_sigkill_right_after_the_answer() {
    let data_dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(data_dir.path(), &[]).await;
    let monitors = twenty(&server).await;
    let paused = bulk_ok(
        &server,
        "selector=team%3Dpayments",
        json!({"action": "pause"}),
    )
    .await;
    assert_eq!(paused["changed"], 10);
    server.sigkill().await;
    let server = ServerProcess::start(data_dir.path(), &[]).await;
    for (id, _, even) in &monitors {
        let status = server.monitor_value(id).await["status"].clone();
        assert_eq!(status == "paused", *even, "{id}: {status}");
    }
    let (status, _) = server.sigterm().await;
    assert!(status.success());
}
