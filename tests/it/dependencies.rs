//! Dependencies (`docs/states.md`, "Dependencies") against the real server and a real
//! webhook receiver: while a parent is down, a child's `down` is held (recorded,
//! shown) and not sent; it is sent once the parent has been up for the grace if the
//! child is still down, and not at all if the child recovered meanwhile; a hold
//! survives SIGKILL; unknown parents, a monitor's own id and cycles are refused.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::time::{Instant, sleep};

use crate::fleet::webhook;
use crate::receiver::{Received, Receiver};
use crate::support::{
    Api, Monitor, ServerProcess, Status, expect_error, fast_alert_retries, spawn_app_with,
};

const WAIT: Duration = Duration::from_secs(15);

/// A parent (timeout 1 s) and its child (timeout 2 s, grace 2 s), both alerting
/// `receiver`, both reported once.
async fn family(api: &Api, receiver: &Receiver) -> (Monitor, Monitor) {
    let channel = webhook(api, receiver, "family").await;
    let parent = api
        .create_monitor_from(
            &json!({"name": "router", "timeout_seconds": 1, "channels": [channel]}),
        )
        .await;
    let child = api
        .create_monitor_from(&json!({
            "name": "backup", "timeout_seconds": 2, "channels": [channel],
            "parents": [parent.id], "dependency_grace_seconds": 2,
        }))
        .await;
    api.push_ok(&parent.push_token, &[]).await;
    api.push_ok(&child.push_token, &[]).await;
    (parent, child)
}

/// Each delivery as (monitor name, event, notice).
fn alerts(delivered: &[Received]) -> Vec<(String, String, String)> {
    delivered
        .iter()
        .map(|request| {
            let alert = request.json();
            (
                alert["monitor"]["name"].as_str().unwrap().to_owned(),
                alert["event"].as_str().unwrap().to_owned(),
                alert["notice"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn triple(name: &str, event: &str, notice: &str) -> (String, String, String) {
    (name.to_owned(), event.to_owned(), notice.to_owned())
}

/// Waits until the child is down with its alert held for `parent`.
async fn held(api: &Api, child: &str, parent: &str) -> Value {
    api.wait_for_status(child, Status::Down, WAIT).await;
    let shown = api.monitor_value(child).await;
    assert_eq!(shown["held_alert"]["alert"], "down", "{shown}");
    assert_eq!(shown["held_alert"]["parent"], parent);
    assert_eq!(shown["parents"], json!([parent]));
    let kinds: Vec<String> = api
        .history(child)
        .await
        .into_iter()
        .map(|event| event.kind)
        .collect();
    assert!(kinds.contains(&"alert_held".to_owned()), "{kinds:?}");
    shown
}

#[tokio::test]
async fn a_childs_down_waits_for_its_parent_and_is_sent_after_the_grace() {
    let receiver = Receiver::start().await;
    let app = spawn_app_with(fast_alert_retries).await;
    let (parent, child) = family(&app, &receiver).await;
    // Both fall silent: the parent goes down first, then the child, held.
    app.wait_for_status(&parent.id, Status::Down, WAIT).await;
    held(&app, &child.id, &parent.id).await;
    sleep(Duration::from_millis(500)).await;
    assert_eq!(
        alerts(&receiver.delivered()),
        [triple("router", "down", "change")],
        "only the parent's alert"
    );
    // The parent recovers; the child stays silent: its down arrives after the grace.
    app.push_ok(&parent.push_token, &[]).await;
    let recovered_at = Instant::now();
    let parent_keeper = {
        let (api, token) = ((*app).clone(), parent.push_token.clone());
        tokio::spawn(async move {
            loop {
                api.push_ok(&token, &[]).await;
                sleep(Duration::from_millis(300)).await;
            }
        })
    };
    let delivered = receiver.wait_for_delivered(3, WAIT).await;
    parent_keeper.abort();
    assert!(
        recovered_at.elapsed() >= Duration::from_millis(1800),
        "not before the grace"
    );
    assert_eq!(
        alerts(&delivered),
        [
            triple("router", "down", "change"),
            triple("router", "up", "change"),
            triple("backup", "down", "after_dependency"),
        ]
    );
    let shown = app.monitor_value(&child.id).await;
    assert_eq!(shown["held_alert"], Value::Null);
    let kinds: Vec<String> = app
        .history(&child.id)
        .await
        .into_iter()
        .map(|event| event.kind)
        .collect();
    let released = kinds.iter().position(|kind| kind == "alert_released");
    let held = kinds.iter().position(|kind| kind == "alert_held");
    assert!(held < released && held.is_some(), "{kinds:?}");
}

#[tokio::test]
async fn a_child_that_recovers_while_held_sends_nothing() {
    let receiver = Receiver::start().await;
    let app = spawn_app_with(fast_alert_retries).await;
    let (parent, child) = family(&app, &receiver).await;
    app.wait_for_status(&parent.id, Status::Down, WAIT).await;
    held(&app, &child.id, &parent.id).await;
    app.push_ok(&child.push_token, &[]).await;
    let shown = app.monitor_value(&child.id).await;
    assert_eq!(shown["status"], "up");
    assert_eq!(shown["held_alert"], Value::Null, "nothing owed any more");
    let events = app.all_events(&child.id).await;
    // Newest first: the recovery, the hold of its `up`, …, the `down`, its hold.
    let kinds: Vec<&str> = events.iter().map(|event| event.kind.as_str()).collect();
    assert_eq!(kinds[..3], ["up", "alert_held", "heartbeat"], "{kinds:?}");
    // The parent recovers and stays up past the grace: still only the parent's alerts.
    let child_keeper = {
        let api = (*app).clone();
        let (parent_token, child_token) = (parent.push_token.clone(), child.push_token.clone());
        tokio::spawn(async move {
            loop {
                api.push_ok(&parent_token, &[]).await;
                api.push_ok(&child_token, &[]).await;
                sleep(Duration::from_millis(300)).await;
            }
        })
    };
    receiver.wait_for_delivered(2, WAIT).await;
    sleep(Duration::from_secs(3)).await;
    child_keeper.abort();
    assert_eq!(
        alerts(&receiver.delivered()),
        [
            triple("router", "down", "change"),
            triple("router", "up", "change")
        ]
    );
}

#[tokio::test]
async fn unknown_parents_a_monitors_own_id_and_cycles_are_refused() {
    let app = spawn_app_with(|_| {}).await;
    let a = app.create_monitor("a", 60).await;
    let b = app
        .create_monitor_from(&json!({"name": "b", "timeout_seconds": 60, "parents": [a.id]}))
        .await;
    let c = app
        .create_monitor_from(&json!({"name": "c", "timeout_seconds": 60, "parents": [b.id, b.id]}))
        .await;
    assert_eq!(
        app.monitor_value(&c.id).await["parents"],
        json!([b.id]),
        "each once"
    );
    let unknown = "0192f5e0-0000-7000-8000-000000000000";
    for (id, body, says) in [
        (&a.id, json!({"parents": [unknown]}), "unknown monitor id"),
        (&a.id, json!({"parents": [a.id]}), "itself"),
        (&a.id, json!({"parents": [b.id]}), "cycle"),
        (&a.id, json!({"parents": [c.id]}), "cycle"),
        (&a.id, json!({"parents": ["not-an-id"]}), "parents[0]"),
        (&a.id, json!({"parents": "x"}), "parents"),
        (
            &a.id,
            json!({"dependency_grace_seconds": -1}),
            "dependency_grace_seconds",
        ),
    ] {
        let error = expect_error(
            app.patch_monitor(id, &body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert!(error.contains(says), "{body}: {error}");
    }
    let error = expect_error(
        app.post_monitor(&json!({"name": "d", "timeout_seconds": 60, "parents": [unknown]}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(error.contains("unknown monitor id"), "{error}");
    // Allowed: a parent that is no descendant; and parents taken away.
    let allowed = app
        .patch_monitor(&c.id, &json!({"parents": [a.id, b.id]}))
        .await;
    assert_eq!(allowed.status(), StatusCode::OK);
    let cleared = app.patch_monitor(&b.id, &json!({"parents": null})).await;
    assert_eq!(cleared.status(), StatusCode::OK);
    // With b no longer a child of a, a may depend on b.
    let turned = app.patch_monitor(&a.id, &json!({"parents": [b.id]})).await;
    assert_eq!(turned.status(), StatusCode::OK);
    assert_eq!(
        app.monitor_value(&a.id).await["dependency_grace_seconds"],
        Value::Null
    );
}

#[tokio::test]
async fn an_alert_held_across_sigkill_is_released_after_the_restart() {
    let receiver = Receiver::start().await;
    let data_dir = tempfile::tempdir().unwrap();
    let args = ["--alert-retry-initial-ms", "100", "--restart-grace", "0"];
    let server = ServerProcess::start(data_dir.path(), &args).await;
    let (parent, child) = family(&server, &receiver).await;
    server.wait_for_status(&parent.id, Status::Down, WAIT).await;
    held(&server, &child.id, &parent.id).await;
    receiver.wait_for_delivered(1, WAIT).await;
    server.sigkill().await;
    let server = ServerProcess::start(data_dir.path(), &args).await;
    let shown = server.monitor_value(&child.id).await;
    assert_eq!(shown["held_alert"]["alert"], "down", "still held: {shown}");
    sleep(Duration::from_millis(500)).await;
    assert_eq!(
        receiver.delivered().len(),
        1,
        "nothing released while the parent is down"
    );
    server.push_ok(&parent.push_token, &[]).await;
    let keeper = {
        let (api, token) = ((*server).clone(), parent.push_token.clone());
        tokio::spawn(async move {
            loop {
                let _ = api.push(&token, &[]).await;
                sleep(Duration::from_millis(300)).await;
            }
        })
    };
    let delivered = receiver.wait_for_delivered(3, WAIT).await;
    keeper.abort();
    assert_eq!(
        alerts(&delivered),
        [
            triple("router", "down", "change"),
            triple("router", "up", "change"),
            triple("backup", "down", "after_dependency"),
        ]
    );
    let (status, _) = server.sigterm().await;
    assert!(status.success());
}
