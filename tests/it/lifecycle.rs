//! Monitor states and transitions (`docs/states.md`) on a live server, over HTTP. One
//! test waits for a real 1-second timeout end to end, on the wall clock; the timing
//! rules themselves (where a `down` is stamped, a heartbeat against the deadline, pause
//! and resume, the restart grace) are tested on the actors with tokio time paused, in
//! `src/monitor/timing_tests.rs`.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::time::Instant;

use crate::receiver::Receiver;
use crate::support::{Event, Status, expect_json, of_kind, spawn_app};

/// Long enough for a 1 s timeout, its 1 s detection window, and a busy test machine.
const DOWN_WITHIN: Duration = Duration::from_millis(3500);

/// Not down before the timeout, allowing for the poll and clock granularity.
const NOT_BEFORE: Duration = Duration::from_millis(900);

fn at(event: &Event) -> OffsetDateTime {
    OffsetDateTime::parse(&event.at, &Rfc3339).unwrap()
}

fn kinds(events: &[Event]) -> Vec<&str> {
    events.iter().map(|event| event.kind.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_then_up_then_down_on_timeout_then_up_again() {
    let app = spawn_app().await;
    let monitor = app.create_monitor("cron", 1).await;
    assert_eq!(monitor.status, Status::Pending);
    assert_eq!(monitor.last_status_change_at, None);

    app.push_ok(&monitor.push_token, &[("msg", "first")]).await;
    let pushed_at = Instant::now();
    let up = app.get_monitor(&monitor.id).await;
    assert_eq!(up.status, Status::Up);
    assert!(
        up.last_status_change_at.is_some(),
        "pending -> up is a change of state"
    );

    let down = app
        .wait_for_status(&monitor.id, Status::Down, DOWN_WITHIN)
        .await;
    assert!(
        pushed_at.elapsed() >= NOT_BEFORE,
        "down {:?} after the heartbeat",
        pushed_at.elapsed()
    );
    assert_ne!(down.last_status_change_at, up.last_status_change_at);
    assert_eq!(down.last_msg.as_deref(), Some("first"));

    app.push_ok(&monitor.push_token, &[("msg", "back")]).await;
    let recovered = app.get_monitor(&monitor.id).await;
    assert_eq!(recovered.status, Status::Up);
    assert_eq!(recovered.last_msg.as_deref(), Some("back"));

    let history = app.history(&monitor.id).await;
    let first_heartbeat = history
        .iter()
        .position(|event| event.kind == "heartbeat")
        .expect("a heartbeat");
    let downs: Vec<usize> = (0..history.len())
        .filter(|&i| history[i].kind == "down")
        .collect();
    assert_eq!(downs.len(), 1, "one down: {history:#?}");
    let down_at = downs[0];
    assert!(first_heartbeat < down_at, "{history:#?}");
    assert_eq!(history[down_at].reason.as_deref(), Some("timeout"));
    let after_down = kinds(&history[down_at + 1..]);
    assert_eq!(
        after_down.iter().filter(|kind| **kind == "up").count(),
        1,
        "one recovery after the down: {history:#?}"
    );
    assert_eq!(
        after_down
            .iter()
            .filter(|kind| **kind == "heartbeat")
            .count(),
        1,
        "{history:#?}"
    );
    assert_eq!(history[0].kind, "created");

    // The down is judged from the last heartbeat: not early, and within 1 s of the
    // deadline.
    let since_heartbeat = at(&history[down_at]) - at(&history[first_heartbeat]);
    assert!(
        since_heartbeat >= time::Duration::milliseconds(990)
            && since_heartbeat <= time::Duration::milliseconds(2100),
        "down {since_heartbeat} after the heartbeat"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_down_heartbeat_alerts_once() {
    let app = spawn_app().await;
    let monitor = app.create_monitor("manual", 3600).await;

    app.push_ok(&monitor.push_token, &[("status", "down"), ("msg", "broke")])
        .await;
    let down = app.get_monitor(&monitor.id).await;
    assert_eq!(down.status, Status::Down, "down at once");
    assert_eq!(down.last_msg.as_deref(), Some("broke"));

    app.push_ok(
        &monitor.push_token,
        &[("status", "down"), ("msg", "still broken")],
    )
    .await;
    assert_eq!(app.get_monitor(&monitor.id).await.status, Status::Down);

    // That no timeout adds a second down is tested on the actor with paused time.
    let events = app.events(&monitor.id).await;
    let downs = of_kind(&events, "down");
    assert_eq!(downs.len(), 1, "{events:#?}");
    assert_eq!(downs[0].reason.as_deref(), Some("manual"));
    let heartbeats = of_kind(&events, "heartbeat");
    assert_eq!(heartbeats.len(), 2, "both down heartbeats are recorded");
    assert!(
        heartbeats
            .iter()
            .all(|event| event.status.as_deref() == Some("down"))
    );

    app.push_ok(&monitor.push_token, &[("msg", "fixed")]).await;
    assert_eq!(app.get_monitor(&monitor.id).await.status, Status::Up);
    let history = app.history(&monitor.id).await;
    let down_at = history
        .iter()
        .position(|event| event.kind == "down")
        .unwrap();
    assert_eq!(
        of_kind(&history[down_at..], "up").len(),
        1,
        "one recovery: {history:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_monitor_records_heartbeats_and_resume_makes_it_pending() {
    // That a paused monitor never times out, and that resume restarts its clock, is
    // tested on the actor with paused time.
    let app = spawn_app().await;
    let monitor = app.create_monitor("maintenance", 3600).await;
    app.push_ok(&monitor.push_token, &[]).await;

    let paused = app.pause(&monitor.id).await;
    assert_eq!(paused.status, Status::Paused);
    app.push_ok(&monitor.push_token, &[("msg", "while paused")])
        .await;
    let still_paused = app.get_monitor(&monitor.id).await;
    assert_eq!(still_paused.status, Status::Paused);
    assert_eq!(still_paused.last_msg.as_deref(), Some("while paused"));

    let resumed = app.resume(&monitor.id).await;
    assert_eq!(
        resumed.status,
        Status::Pending,
        "resume starts the clock again"
    );
    assert_eq!(app.get_monitor(&monitor.id).await.status, Status::Pending);

    let history = app.history(&monitor.id).await;
    let position = |kind: &str| {
        history
            .iter()
            .position(|event| event.kind == kind)
            .unwrap_or_else(|| panic!("no {kind} event: {history:#?}"))
    };
    let paused_heartbeat = history
        .iter()
        .position(|event| event.msg.as_deref() == Some("while paused"))
        .expect("the heartbeat while paused is recorded");
    assert!(position("paused") < paused_heartbeat, "{history:#?}");
    assert!(paused_heartbeat < position("resumed"), "{history:#?}");
    assert!(of_kind(&history, "down").is_empty(), "{history:#?}");

    app.push_ok(&monitor.push_token, &[]).await;
    assert_eq!(app.get_monitor(&monitor.id).await.status, Status::Up);
}

/// Issue 15: the first change of state (`pending` → `up`) was not in the history, after
/// creation nor after a resume. It is an `up` event of its own, with a reason that tells
/// it from a recovery, and it does not alert: only the `down` and the recovery do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_of_state_is_an_event_and_only_a_recovery_alerts_up() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let channel = app
        .api(Method::POST, "/api/channels")
        .json(&json!({"kind": "webhook", "name": "hook", "url": receiver.url("/hook")}))
        .send()
        .await
        .unwrap();
    let channel = expect_json(channel, StatusCode::CREATED).await;
    let monitor = app
        .create_monitor_from(&json!({
            "name": "first hour", "timeout_seconds": 3600, "channels": [channel["id"]],
        }))
        .await;

    app.push_ok(&monitor.push_token, &[]).await;
    app.push_ok(&monitor.push_token, &[]).await;
    app.pause(&monitor.id).await;
    app.resume(&monitor.id).await;
    app.push_ok(&monitor.push_token, &[]).await;
    app.push_ok(&monitor.push_token, &[("status", "down")])
        .await;
    app.push_ok(&monitor.push_token, &[]).await;

    let history = app.history(&monitor.id).await;
    let changes: Vec<(&str, Option<&str>)> = history
        .iter()
        .filter(|event| !matches!(event.kind.as_str(), "heartbeat" | "delivery"))
        .map(|event| (event.kind.as_str(), event.reason.as_deref()))
        .collect();
    assert_eq!(
        changes,
        [
            ("created", None),
            ("up", Some("first_heartbeat")),
            ("paused", None),
            ("resumed", None),
            ("up", Some("first_heartbeat")),
            ("down", Some("manual")),
            ("up", Some("heartbeat")),
        ],
        "{history:#?}"
    );
    // The first `up` follows its heartbeat, at the same moment, as the monitor says.
    let first_up = history.iter().position(|event| event.kind == "up").unwrap();
    assert_eq!(history[first_up - 1].kind, "heartbeat");
    assert_eq!(history[first_up - 1].at, history[first_up].at);

    // Deliveries to one channel go out in order, so an alert for either first `up`
    // would come before the `down`.
    let delivered = receiver
        .wait_for_delivered(2, Duration::from_secs(10))
        .await;
    let alerted: Vec<String> = delivered
        .iter()
        .map(|request| request.json()["event"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(alerted, ["down", "up"]);
}
