//! Jobs (`docs/push.md`, "Runs and exit statuses"; `docs/states.md`, "Runs",
//! "Schedules", "Thresholds", "Reminders", "Maintenance windows") over real HTTP through
//! the native push URL's `kind`, `rid` and `exit`: runs with their duration and output,
//! exit statuses, run time limits, concurrent runs, logs, cron schedules, thresholds,
//! reminders and maintenance windows with alerts to a real receiver, every new field in
//! the API and the monitors file, tokens brought from other tools, the new metrics, and
//! a SIGKILL of the real binary inside a run and a maintenance window.

use std::time::Duration;

use pushmon::alert::RetryPolicy;
use pushmon::config::Config;
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::time::{Instant, sleep};

use crate::receiver::{Received, Receiver};
use crate::support::{
    ADMIN_TOKEN, Api, POLL_EVERY, ServerProcess, expect_error, expect_json, spawn_app,
    spawn_app_with,
};

const WAIT: Duration = Duration::from_secs(10);

/// Run ids a client picked (any UUID).
const RID_1: &str = "0b6f3a52-1c4d-4e8f-9a7b-2c3d4e5f6a71";
const RID_2: &str = "7d2e9f10-3b4c-4a5d-8e6f-9a0b1c2d3e42";

fn fast_retries(config: &mut Config) {
    config.alert_retry = RetryPolicy {
        initial: Duration::from_millis(50),
        max: Duration::from_millis(400),
        max_attempts: 4,
    };
    config.alert_timeout = Duration::from_secs(1);
}

/// `POST /api/monitors` answered `201`: the Monitor as JSON.
async fn create(api: &Api, body: Value) -> Value {
    expect_json(api.post_monitor(&body).await, StatusCode::CREATED).await
}

async fn monitor(api: &Api, id: &str) -> Value {
    let response = api
        .api(Method::GET, &format!("/api/monitors/{id}"))
        .send()
        .await
        .expect("get monitor");
    expect_json(response, StatusCode::OK).await
}

fn id_and_token(monitor: &Value) -> (String, String) {
    (
        monitor["id"].as_str().expect("id").to_owned(),
        monitor["push_token"]
            .as_str()
            .expect("push_token")
            .to_owned(),
    )
}

/// A push to the native URL with `query`, and `body` as `text/plain` if given.
async fn signal(api: &Api, token: &str, query: &[(&str, &str)], body: Option<&str>) -> Response {
    let mut request = api
        .client
        .post(api.url(&format!("/api/push/{token}")))
        .query(query);
    if let Some(body) = body {
        request = request
            .header("content-type", "text/plain")
            .body(body.to_owned());
    }
    request.send().await.expect("send push")
}

/// A push that must be answered `200 {"ok":true}`.
async fn signal_ok(api: &Api, token: &str, query: &[(&str, &str)], body: Option<&str>) {
    let answer = expect_json(signal(api, token, query, body).await, StatusCode::OK).await;
    assert_eq!(answer, json!({"ok": true}), "{query:?}");
}

/// The whole history as the API shows it, oldest first.
async fn history(api: &Api, id: &str) -> Vec<Value> {
    let response = api
        .api(
            Method::GET,
            &format!("/api/monitors/{id}/events?limit=1000"),
        )
        .send()
        .await
        .expect("events");
    let body = expect_json(response, StatusCode::OK).await;
    let mut events = body["events"].as_array().expect("events array").clone();
    events.reverse();
    events
}

/// `kind`, or `kind:reason` for the kinds that carry a reason or an outcome.
fn kinds(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|event| {
            let kind = event["kind"].as_str().expect("kind");
            match (&event["outcome"], &event["reason"]) {
                (Value::String(outcome), _) => format!("{kind}:{outcome}"),
                (_, Value::String(reason)) => format!("{kind}:{reason}"),
                _ => kind.to_owned(),
            }
        })
        .collect()
}

/// Polls the monitor until `check` holds; fails after [`WAIT`] with the last state.
async fn wait_until(api: &Api, id: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let current = monitor(api, id).await;
        if check(&current) {
            return current;
        }
        assert!(
            started.elapsed() < WAIT,
            "{what} did not happen within {WAIT:?}: {current:#}\nhistory: {:#?}",
            kinds(&history(api, id).await)
        );
        sleep(POLL_EVERY).await;
    }
}

async fn webhook(api: &Api, receiver: &Receiver) -> String {
    let response = api
        .api(Method::POST, "/api/channels")
        .json(&json!({"kind": "webhook", "name": "jobs", "url": receiver.url("/hook")}))
        .send()
        .await
        .expect("create channel");
    let channel = expect_json(response, StatusCode::CREATED).await;
    channel["id"].as_str().expect("channel id").to_owned()
}

fn payloads(received: &[Received]) -> Vec<Value> {
    received.iter().map(Received::json).collect()
}

/// `(event, notice, reason)` of each alert payload.
fn alerts(received: &[Received]) -> Vec<(String, String, String)> {
    payloads(received)
        .iter()
        .map(|payload| {
            (
                payload["event"].as_str().expect("event").to_owned(),
                payload["notice"].as_str().expect("notice").to_owned(),
                payload["reason"].as_str().expect("reason").to_owned(),
            )
        })
        .collect()
}

fn alert(event: &str, notice: &str, reason: &str) -> (String, String, String) {
    (event.to_owned(), notice.to_owned(), reason.to_owned())
}

fn parse_time(value: &Value) -> OffsetDateTime {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("not a timestamp: {value}"));
    OffsetDateTime::parse(text, &Rfc3339).unwrap_or_else(|error| panic!("{text}: {error}"))
}

/// `value` (a timestamp) moved by `seconds`, in RFC 3339.
fn shifted(value: &Value, seconds: f64) -> String {
    let moved = parse_time(value) + time::Duration::seconds_f64(seconds);
    moved.format(&Rfc3339).expect("format a timestamp")
}

#[tokio::test]
async fn a_run_from_start_to_success_has_its_duration_and_its_output_cut_to_the_limit() {
    let app = spawn_app_with(|config| config.ping_body_limit = 20).await;
    let (id, token) =
        id_and_token(&create(&app, json!({"name": "backup", "timeout_seconds": 3600})).await);

    signal_ok(&app, &token, &[("kind", "start"), ("rid", RID_1)], None).await;
    let running = monitor(&app, &id).await;
    assert_eq!(running["status"], "pending", "a start is no success");
    assert_eq!(running["current_run"]["rid"], RID_1);
    assert_eq!(running["open_runs"], 1);
    assert_eq!(running["last_run"], Value::Null);

    sleep(Duration::from_millis(300)).await;
    let output = "0123456789abcdefghij-and-the-rest-is-cut";
    signal_ok(&app, &token, &[("exit", "0"), ("rid", RID_1)], Some(output)).await;
    let done = monitor(&app, &id).await;
    assert_eq!(done["status"], "up");
    assert_eq!(done["current_run"], Value::Null);
    assert_eq!(done["open_runs"], 0);
    let last = &done["last_run"];
    assert_eq!(last["outcome"], "success");
    assert_eq!(last["exit_status"], 0);
    assert_eq!(last["reason"], Value::Null);
    assert_eq!(last["output_excerpt"], "0123456789abcdefghij");
    assert_eq!(last["started_at"], running["current_run"]["started_at"]);
    let duration_ms = last["duration_ms"].as_u64().expect("a duration");
    assert!(duration_ms >= 300, "slept 300 ms inside the run: {last}");
    let measured = parse_time(&last["ended_at"]) - parse_time(&last["started_at"]);
    assert_eq!(duration_ms as i128, measured.whole_milliseconds());
    assert_eq!(done["last_success_at"], last["ended_at"]);

    let events = history(&app, &id).await;
    assert_eq!(
        kinds(&events),
        [
            "created",
            "run_started",
            "heartbeat",
            "run_ended:success",
            "up:first_heartbeat"
        ]
    );
    assert_eq!(events[1]["rid"], RID_1);
    let ended = &events[3];
    assert_eq!(ended["rid"], RID_1);
    assert_eq!(ended["exit_status"], 0);
    assert_eq!(ended["output"], "0123456789abcdefghij");
    assert_eq!(ended["started_at"], last["started_at"]);

    // A body of parameters is no output, and a plain heartbeat ignores a text body.
    app.push_ok(&token, &[]).await;
    signal_ok(&app, &token, &[], Some("just text")).await;
    let last_event = history(&app, &id).await.pop().expect("an event");
    assert_eq!(last_event["kind"], "heartbeat");
    assert!(last_event.get("output").is_none(), "{last_event}");
}

#[tokio::test]
async fn a_nonzero_exit_status_goes_down_and_the_alert_names_the_rule_and_carries_the_output() {
    let receiver = Receiver::start().await;
    let app = spawn_app_with(fast_retries).await;
    let channel = webhook(&app, &receiver).await;
    let (id, token) = id_and_token(
        &create(
            &app,
            json!({"name": "etl", "timeout_seconds": 3600, "channels": [channel]}),
        )
        .await,
    );
    signal_ok(&app, &token, &[("exit", "0")], None).await;
    signal_ok(
        &app,
        &token,
        &[("exit", "3"), ("msg", "etl failed")],
        Some("loading rows\nERROR: disk full\n"),
    )
    .await;
    let down = monitor(&app, &id).await;
    assert_eq!(down["status"], "down");
    assert_eq!(down["down_reason"], "exit_status");
    assert_eq!(down["last_run"]["exit_status"], 3);
    assert_eq!(down["last_run"]["outcome"], "failure");
    assert_eq!(down["last_run"]["reason"], "exit_status");
    // The alert's `delivery` is recorded when the dispatcher is done with it, which
    // may be before this read: the job's own events are compared without it.
    let events: Vec<Value> = history(&app, &id)
        .await
        .into_iter()
        .filter(|event| event["kind"] != "delivery")
        .collect();
    assert_eq!(
        kinds(&events)[kinds(&events).len() - 3..],
        ["heartbeat", "run_ended:failure", "down:exit_status"]
    );

    let delivered = receiver.wait_for_delivered(1, WAIT).await;
    let payload = delivered[0].json();
    assert_eq!(payload["event"], "down");
    assert_eq!(payload["reason"], "exit_status");
    assert_eq!(payload["notice"], "change");
    assert_eq!(payload["exit_status"], 3);
    assert_eq!(payload["output"], "loading rows\nERROR: disk full\n");
    assert_eq!(payload["msg"], "etl failed");

    // Exit statuses are 0 to 255; other values, and contradictions, change nothing.
    for query in [
        [("exit", "256"), ("rid", RID_1)],
        [("exit", "-1"), ("rid", RID_1)],
        [("exit", "x"), ("rid", RID_1)],
        [("kind", "stop"), ("rid", RID_1)],
        [("exit", "0"), ("kind", "fail")],
        [("exit", "0"), ("rid", "not-a-uuid")],
    ] {
        let error = expect_error(
            signal(&app, &token, &query, None).await,
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert!(
            ["exit", "kind", "rid"]
                .iter()
                .any(|name| error.contains(name)),
            "{query:?}: {error}"
        );
    }
    // Nothing recorded but the delivery of the alert.
    let now: Vec<Value> = history(&app, &id)
        .await
        .into_iter()
        .filter(|event| event["kind"] != "delivery")
        .collect();
    assert_eq!(now, events);
}

#[tokio::test]
async fn a_run_past_its_max_runtime_goes_down_and_a_start_alone_never_recovers() {
    let app = spawn_app().await;
    let (id, token) = id_and_token(
        &create(
            &app,
            json!({"name": "hangs", "timeout_seconds": 3600, "max_runtime_seconds": 1}),
        )
        .await,
    );
    signal_ok(&app, &token, &[("kind", "start")], None).await;
    let down = wait_until(&app, &id, "down after the max runtime", |monitor| {
        monitor["status"] == "down"
    })
    .await;
    assert_eq!(down["down_reason"], "max_runtime");
    assert_eq!(down["current_run"]["overran"], true);
    let events = history(&app, &id).await;
    assert_eq!(
        kinds(&events),
        ["created", "run_started", "run_overran", "down:max_runtime"]
    );
    // Down one second after the start, stamped at the limit.
    let overran = parse_time(&events[3]["at"]) - parse_time(&events[1]["at"]);
    assert_eq!(overran.whole_milliseconds(), 1000);

    // A start says nothing about health: still down, and not down twice.
    signal_ok(&app, &token, &[("kind", "start"), ("rid", RID_2)], None).await;
    assert_eq!(monitor(&app, &id).await["status"], "down");
    signal_ok(&app, &token, &[("kind", "success"), ("rid", RID_2)], None).await;
    let up = monitor(&app, &id).await;
    assert_eq!(up["status"], "up");
    assert_eq!(up["last_run"]["outcome"], "success");
    assert_eq!(of_kinds(&history(&app, &id).await, "down"), 1);
}

fn of_kinds(events: &[Value], kind: &str) -> usize {
    events.iter().filter(|event| event["kind"] == kind).count()
}

#[tokio::test]
async fn a_success_sooner_than_the_min_runtime_is_a_failure_too_fast() {
    let app = spawn_app().await;
    let (id, token) = id_and_token(
        &create(
            &app,
            json!({"name": "too quick", "timeout_seconds": 3600, "min_runtime_seconds": 5}),
        )
        .await,
    );
    signal_ok(&app, &token, &[("kind", "start"), ("rid", RID_1)], None).await;
    signal_ok(&app, &token, &[("exit", "0"), ("rid", RID_1)], None).await;
    let down = monitor(&app, &id).await;
    assert_eq!(down["status"], "down");
    assert_eq!(down["down_reason"], "too_fast");
    assert_eq!(down["last_run"]["outcome"], "failure");
    assert_eq!(down["last_run"]["reason"], "too_fast");
    assert_eq!(down["last_run"]["exit_status"], 0);
    let events = history(&app, &id).await;
    assert_eq!(
        kinds(&events)[2..],
        ["heartbeat", "run_ended:failure", "down:too_fast"]
    );
    assert_eq!(events[3]["reason"], "too_fast");
}

#[tokio::test]
async fn concurrent_runs_are_told_apart_by_their_rid() {
    let app = spawn_app().await;
    let (id, token) =
        id_and_token(&create(&app, json!({"name": "parallel", "timeout_seconds": 3600})).await);
    signal_ok(&app, &token, &[("kind", "start"), ("rid", RID_1)], None).await;
    let first_started = monitor(&app, &id).await["current_run"]["started_at"].clone();
    sleep(Duration::from_millis(50)).await;
    signal_ok(&app, &token, &[("kind", "start"), ("rid", RID_2)], None).await;
    let both = monitor(&app, &id).await;
    assert_eq!(both["open_runs"], 2);
    assert_eq!(both["current_run"]["rid"], RID_2, "the newest open run");
    let second_started = both["current_run"]["started_at"].clone();
    assert_ne!(first_started, second_started);

    // The first ends well: the second is still open.
    signal_ok(
        &app,
        &token,
        &[("exit", "0"), ("rid", RID_1)],
        Some("first"),
    )
    .await;
    let one_left = monitor(&app, &id).await;
    assert_eq!(one_left["status"], "up");
    assert_eq!(one_left["open_runs"], 1);
    assert_eq!(one_left["current_run"]["rid"], RID_2);
    assert_eq!(one_left["last_run"]["started_at"], first_started);
    assert_eq!(one_left["last_run"]["output_excerpt"], "first");

    // The second fails with its own start and output.
    signal_ok(
        &app,
        &token,
        &[("exit", "2"), ("rid", RID_2)],
        Some("second"),
    )
    .await;
    let down = monitor(&app, &id).await;
    assert_eq!(down["status"], "down");
    assert_eq!(down["open_runs"], 0);
    assert_eq!(down["last_run"]["started_at"], second_started);
    assert_eq!(down["last_run"]["exit_status"], 2);
    assert_eq!(down["last_run"]["output_excerpt"], "second");
    let ended: Vec<(Value, Value)> = history(&app, &id)
        .await
        .into_iter()
        .filter(|event| event["kind"] == "run_ended")
        .map(|event| (event["rid"].clone(), event["started_at"].clone()))
        .collect();
    assert_eq!(
        ended,
        [
            (json!(RID_1), first_started),
            (json!(RID_2), second_started)
        ]
    );
}

#[tokio::test]
async fn a_log_is_recorded_and_changes_no_state() {
    let app = spawn_app().await;
    let (id, token) =
        id_and_token(&create(&app, json!({"name": "chatty", "timeout_seconds": 3600})).await);
    app.push_ok(&token, &[]).await;
    let before = monitor(&app, &id).await;
    signal_ok(
        &app,
        &token,
        &[("kind", "log"), ("msg", "halfway")],
        Some("50% done"),
    )
    .await;
    let after = monitor(&app, &id).await;
    for field in [
        "status",
        "last_heartbeat_at",
        "last_success_at",
        "next_due_at",
        "next_deadline_at",
        "last_msg",
        "last_run",
        "open_runs",
        "consecutive_failures",
    ] {
        assert_eq!(after[field], before[field], "{field} changed by a log");
    }
    let logged = history(&app, &id).await.pop().expect("an event");
    assert_eq!(logged["kind"], "log");
    assert_eq!(logged["msg"], "halfway");
    assert_eq!(logged["output"], "50% done");

    // Nor does it change a down monitor.
    app.push_ok(&token, &[("status", "down")]).await;
    signal_ok(&app, &token, &[("kind", "log")], Some("still trying")).await;
    assert_eq!(monitor(&app, &id).await["status"], "down");
    assert_eq!(
        kinds(&history(&app, &id).await)[4..],
        ["heartbeat", "down:manual", "log"]
    );
}

#[tokio::test]
async fn a_cron_monitor_shows_when_it_is_next_due_and_late() {
    let app = spawn_app().await;
    let every_five = create(
        &app,
        json!({"name": "every five", "schedule": "*/5 * * * *", "timezone": "Europe/Paris",
               "grace_seconds": 120}),
    )
    .await;
    assert_eq!(every_five["schedule"], "*/5 * * * *");
    assert_eq!(every_five["timezone"], "Europe/Paris");
    assert_eq!(every_five["grace_seconds"], 120);
    assert_eq!(every_five["timeout_seconds"], Value::Null);
    assert_eq!(every_five["interval_seconds"], Value::Null);
    let created = parse_time(&every_five["created_at"]);
    let due = parse_time(&every_five["next_due_at"]);
    assert!(
        due > created && due - created <= time::Duration::minutes(5),
        "{every_five}"
    );
    assert_eq!(
        (due.minute() % 5, due.second(), due.millisecond()),
        (0, 0, 0)
    );
    assert_eq!(
        parse_time(&every_five["next_deadline_at"]) - due,
        time::Duration::seconds(120)
    );

    // `@daily` in New York is local midnight: 05:00 UTC in winter, 04:00 in summer.
    let daily = create(
        &app,
        json!({"name": "daily", "schedule": "@daily", "timezone": "America/New_York"}),
    )
    .await;
    let due = parse_time(&daily["next_due_at"]);
    assert!(matches!(due.hour(), 4 | 5) && due.minute() == 0, "{daily}");
    assert!(due - created <= time::Duration::hours(24), "{daily}");
    assert_eq!(daily["grace_seconds"], 3600, "the default grace");
    assert_eq!(
        parse_time(&daily["next_deadline_at"]) - due,
        time::Duration::hours(1)
    );

    // A success moves it to the slot after the success; the default zone is UTC.
    let hourly = create(&app, json!({"name": "hourly", "schedule": "@hourly"})).await;
    assert_eq!(hourly["timezone"], "UTC");
    let (id, token) = id_and_token(&hourly);
    app.push_ok(&token, &[]).await;
    let up = monitor(&app, &id).await;
    assert_eq!(up["status"], "up");
    let due = parse_time(&up["next_due_at"]);
    assert!(due > parse_time(&up["last_success_at"]));
    assert_eq!((due.minute(), due.second()), (0, 0));

    // Back to a timeout: the schedule goes, `timeout_seconds` times it again.
    let response = app
        .patch_monitor(&id, &json!({"schedule": null, "timeout_seconds": 600}))
        .await;
    let interval = expect_json(response, StatusCode::OK).await;
    assert_eq!(interval["schedule"], Value::Null);
    assert_eq!(interval["timeout_seconds"], 600);
}

#[tokio::test]
async fn thresholds_count_failures_and_successes_before_the_state_changes() {
    let receiver = Receiver::start().await;
    let app = spawn_app_with(fast_retries).await;
    let channel = webhook(&app, &receiver).await;
    let (id, token) = id_and_token(
        &create(
            &app,
            json!({"name": "flaky", "timeout_seconds": 3600, "channels": [channel],
                   "failure_threshold": 2, "recovery_threshold": 2}),
        )
        .await,
    );
    app.push_ok(&token, &[]).await;
    signal_ok(&app, &token, &[("exit", "1")], None).await;
    let once = monitor(&app, &id).await;
    assert_eq!(once["status"], "up", "one failure of two");
    assert_eq!(once["consecutive_failures"], 1);
    // A success in between starts the count again.
    app.push_ok(&token, &[]).await;
    assert_eq!(monitor(&app, &id).await["consecutive_failures"], 0);
    signal_ok(&app, &token, &[("exit", "1")], None).await;
    signal_ok(&app, &token, &[("exit", "1")], None).await;
    let down = monitor(&app, &id).await;
    assert_eq!(down["status"], "down");
    assert_eq!(down["down_reason"], "exit_status");

    app.push_ok(&token, &[]).await;
    let once_up = monitor(&app, &id).await;
    assert_eq!(once_up["status"], "down", "one success of two");
    assert_eq!(once_up["consecutive_successes"], 1);
    app.push_ok(&token, &[]).await;
    assert_eq!(monitor(&app, &id).await["status"], "up");

    let events = history(&app, &id).await;
    let counted: Vec<(String, Value)> = events
        .iter()
        .filter(|event| {
            event["kind"]
                .as_str()
                .is_some_and(|kind| kind.ends_with("_counted"))
        })
        .map(|event| {
            (
                kinds(std::slice::from_ref(event)).remove(0),
                event["count"].clone(),
            )
        })
        .collect();
    assert_eq!(
        counted,
        [
            ("failure_counted:exit_status".to_owned(), json!(1)),
            ("failure_counted:exit_status".to_owned(), json!(1)),
            ("success_counted".to_owned(), json!(1)),
        ]
    );
    let delivered = receiver.wait_for_delivered(2, WAIT).await;
    assert_eq!(
        alerts(&delivered),
        [
            alert("down", "change", "exit_status"),
            alert("up", "change", "heartbeat")
        ]
    );
}

#[tokio::test]
async fn reminders_repeat_while_down_and_stop_with_the_recovery() {
    let receiver = Receiver::start().await;
    let app = spawn_app_with(fast_retries).await;
    let channel = webhook(&app, &receiver).await;
    let (id, token) = id_and_token(
        &create(
            &app,
            json!({"name": "nagging", "timeout_seconds": 3600, "channels": [channel],
                   "realert_every_seconds": 1}),
        )
        .await,
    );
    app.push_ok(&token, &[("status", "down"), ("msg", "broken")])
        .await;
    let delivered = receiver.wait_for_delivered(3, WAIT).await;
    assert_eq!(
        alerts(&delivered[..3]),
        [
            alert("down", "change", "manual"),
            alert("down", "reminder", "manual"),
            alert("down", "reminder", "manual"),
        ]
    );
    assert_eq!(delivered[1].json()["msg"], "broken");
    app.push_ok(&token, &[]).await;
    let up = wait_until(&app, &id, "the recovery", |monitor| {
        monitor["status"] == "up"
    })
    .await;
    assert_eq!(up["status"], "up");
    // Reminders may have come meanwhile: wait for the recovery's alert, the last.
    let started = Instant::now();
    let all = loop {
        let delivered = receiver.delivered();
        if alerts(&delivered).last() == Some(&alert("up", "change", "heartbeat")) {
            break delivered;
        }
        assert!(
            started.elapsed() < WAIT,
            "no recovery alert: {:?}",
            alerts(&delivered)
        );
        sleep(POLL_EVERY).await;
    };
    // Reminders are one second apart: waiting longer shows none after the recovery.
    sleep(Duration::from_millis(1500)).await;
    let after = receiver.delivered();
    assert_eq!(after.len(), all.len(), "{:?}", alerts(&after));
    assert_eq!(
        alerts(&after).last(),
        Some(&alert("up", "change", "heartbeat"))
    );
    let events = history(&app, &id).await;
    let reminders = of_kinds(&events, "reminder");
    assert_eq!(reminders, after.len() - 2, "{:?}", kinds(&events));
}

#[tokio::test]
async fn a_maintenance_window_holds_alerts_back_and_the_history_shows_them() {
    let receiver = Receiver::start().await;
    let app = spawn_app_with(fast_retries).await;
    let channel = webhook(&app, &receiver).await;
    let created = create(
        &app,
        json!({"name": "maintained", "timeout_seconds": 3600, "channels": [channel]}),
    )
    .await;
    let (id, token) = id_and_token(&created);
    let end = shifted(&created["created_at"], 2.5);
    let window = json!([{"start": shifted(&created["created_at"], -60.0), "end": end}]);
    let response = app
        .patch_monitor(&id, &json!({"maintenance": window}))
        .await;
    let maintained = expect_json(response, StatusCode::OK).await;
    assert_eq!(maintained["in_maintenance"], true);
    assert_eq!(
        parse_time(&maintained["maintenance_until"]),
        parse_time(&json!(end))
    );

    app.push_ok(&token, &[("status", "down"), ("msg", "upgrading")])
        .await;
    let down = monitor(&app, &id).await;
    assert_eq!(down["status"], "down", "recorded as ever");
    assert_eq!(
        kinds(&history(&app, &id).await)[2..],
        ["heartbeat", "alert_suppressed:manual", "down:manual"]
    );
    assert!(receiver.received().is_empty(), "nothing during the window");

    // The window ends on a state the channels were not told: told once, now.
    let delivered = receiver.wait_for_delivered(1, WAIT).await;
    assert_eq!(
        alerts(&delivered),
        [alert("down", "after_maintenance", "manual")]
    );
    let released = wait_until(&app, &id, "the window's end", |monitor| {
        monitor["in_maintenance"] == false
    })
    .await;
    assert_eq!(released["maintenance_until"], Value::Null);
    let events = history(&app, &id).await;
    assert_eq!(
        kinds(&events)[2..5],
        ["heartbeat", "alert_suppressed:manual", "down:manual"]
    );
    assert!(
        kinds(&events).contains(&"alert_released:manual".to_owned()),
        "{:?}",
        kinds(&events)
    );
    assert!(parse_time(&events[5]["at"]) >= parse_time(&json!(end)));
    assert_eq!(receiver.delivered().len(), 1);
}

#[tokio::test]
async fn the_api_takes_every_job_field_and_refuses_bad_ones_with_clear_errors() {
    let app = spawn_app().await;
    let full = json!({
        "name": "everything",
        "schedule": "30 2 * * 1-5",
        "timezone": "Europe/Berlin",
        "grace_seconds": 900,
        "max_runtime_seconds": 3600,
        "min_runtime_seconds": 10,
        "failure_threshold": 3,
        "recovery_threshold": 2,
        "realert_every_seconds": 86400,
        "maintenance": [
            {"start": "2030-01-01T00:00:00Z", "end": "2030-01-01T06:00:00Z"},
            {"cron": "0 3 * * 0", "duration_seconds": 7200, "timezone": "Europe/Berlin"},
        ],
    });
    let created = create(&app, full.clone()).await;
    for field in [
        "schedule",
        "timezone",
        "grace_seconds",
        "max_runtime_seconds",
        "min_runtime_seconds",
        "failure_threshold",
        "recovery_threshold",
        "realert_every_seconds",
    ] {
        assert_eq!(created[field], full[field], "{field}");
    }
    assert_eq!(
        created["maintenance"],
        json!([
            {"start": "2030-01-01T00:00:00.000Z", "end": "2030-01-01T06:00:00.000Z"},
            {"cron": "0 3 * * 0", "duration_seconds": 7200, "timezone": "Europe/Berlin"},
        ])
    );
    let (id, _) = id_and_token(&created);
    let response = app
        .patch_monitor(
            &id,
            &json!({"failure_threshold": 1, "realert_every_seconds": null, "maintenance": null,
                    "max_runtime_seconds": null}),
        )
        .await;
    let patched = expect_json(response, StatusCode::OK).await;
    assert_eq!(patched["failure_threshold"], 1);
    assert_eq!(patched["realert_every_seconds"], Value::Null);
    assert_eq!(patched["max_runtime_seconds"], Value::Null);
    assert_eq!(patched["maintenance"], json!([]));
    assert_eq!(patched["schedule"], full["schedule"], "untouched");
    let updated = history(&app, &id).await.pop().expect("an event");
    assert_eq!(updated["kind"], "updated");
    assert_eq!(updated["failure_threshold"], 1);
    assert_eq!(updated["schedule"], full["schedule"]);

    let interval = json!({"name": "interval", "timeout_seconds": 60});
    let cron = json!({"name": "cron", "schedule": "@daily"});
    let with = |base: &Value, extra: Value| {
        let mut body = base.clone();
        for (key, value) in extra.as_object().expect("an object") {
            body[key] = value.clone();
        }
        body
    };
    let refused = [
        (
            with(&cron, json!({"schedule": "every day"})),
            "schedule must be a cron pattern",
        ),
        (
            with(&cron, json!({"schedule": "0 0 31 2 *"})),
            "schedule must fire at least once a year",
        ),
        (
            with(&cron, json!({"schedule": "* * * * * *"})),
            "schedule must be a cron pattern",
        ),
        (
            with(&cron, json!({"schedule": 5})),
            "schedule must be a cron pattern",
        ),
        (
            with(&cron, json!({"timezone": "Mars/Olympus"})),
            "timezone must be an IANA time zone",
        ),
        (
            with(&cron, json!({"timeout_seconds": 60})),
            "timeout_seconds cannot be set on a monitor with a schedule",
        ),
        (
            with(&cron, json!({"interval_seconds": 60})),
            "interval_seconds cannot be set on a monitor with a schedule",
        ),
        (
            with(&interval, json!({"timezone": "UTC"})),
            "timezone applies only to a monitor with a schedule",
        ),
        (
            with(&interval, json!({"grace_seconds": 60})),
            "grace_seconds applies only to a monitor with a schedule",
        ),
        (json!({"name": "neither"}), "timeout_seconds"),
        (
            with(
                &interval,
                json!({"min_runtime_seconds": 60, "max_runtime_seconds": 60}),
            ),
            "min_runtime_seconds",
        ),
        (
            with(&interval, json!({"max_runtime_seconds": 0})),
            "max_runtime_seconds must be a whole number from 1",
        ),
        (
            with(&interval, json!({"failure_threshold": 0})),
            "failure_threshold must be a whole number from 1",
        ),
        (
            with(&interval, json!({"recovery_threshold": "2"})),
            "recovery_threshold must be a whole number",
        ),
        (
            with(&interval, json!({"realert_every_seconds": 0})),
            "realert_every_seconds must be a whole number from 1",
        ),
        (
            with(
                &interval,
                json!({"maintenance": {"start": "2030-01-01T00:00:00Z"}}),
            ),
            "maintenance must be an array",
        ),
        (
            with(
                &interval,
                json!({"maintenance": [{"start": "tomorrow", "end": "2030-01-01T00:00:00Z"}]}),
            ),
            "maintenance[0]: start must be an RFC 3339 timestamp",
        ),
        (
            with(
                &interval,
                json!({"maintenance": [{"start": "2030-01-02T00:00:00Z", "end": "2030-01-01T00:00:00Z"}]}),
            ),
            "maintenance[0]: end must be after start",
        ),
        (
            with(&interval, json!({"maintenance": [{"cron": "0 3 * * 0"}]})),
            "maintenance[0]: duration_seconds is required",
        ),
        (
            with(
                &interval,
                json!({"maintenance": [{"cron": "0 3 * * 0", "duration_seconds": 60, "timezone": "Nowhere"}]}),
            ),
            "maintenance[0]: timezone must be an IANA",
        ),
        (
            with(
                &interval,
                json!({"maintenance": [{"cron": "0 3 * * 0", "duration_seconds": 60, "end": "x"}]}),
            ),
            "maintenance[0]: unknown field \"end\"",
        ),
        (
            with(&interval, json!({"schedul": "@daily"})),
            "unknown field \"schedul\"",
        ),
    ];
    for (body, expected) in refused {
        let error = expect_error(
            app.post_monitor(&body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert!(
            error.contains(expected),
            "{body}: {error:?} lacks {expected:?}"
        );
    }
    assert_eq!(
        list_monitors(&app).await.len(),
        1,
        "nothing refused was made"
    );

    // A PATCH must leave a valid whole: a timeout on a cron monitor, a grace without one.
    let (cron_id, _) = id_and_token(&create(&app, cron.clone()).await);
    let (interval_id, _) = id_and_token(&create(&app, interval.clone()).await);
    for (id, body, expected) in [
        (
            &cron_id,
            json!({"timeout_seconds": 60}),
            "timeout_seconds cannot be set on a monitor with a schedule",
        ),
        (
            &interval_id,
            json!({"grace_seconds": 60}),
            "grace_seconds applies only to a monitor with a schedule",
        ),
        (
            &interval_id,
            json!({"schedule": "61 * * * *"}),
            "schedule must be a cron pattern",
        ),
        (
            &interval_id,
            json!({"min_runtime_seconds": 10, "max_runtime_seconds": 5}),
            "min_runtime_seconds",
        ),
    ] {
        let error = expect_error(
            app.patch_monitor(id, &body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert!(
            error.contains(expected),
            "{body}: {error:?} lacks {expected:?}"
        );
    }
    assert_eq!(monitor(&app, &interval_id).await["timeout_seconds"], 60);
    // An interval monitor takes a schedule (its timeout is then not used).
    let response = app
        .patch_monitor(
            &interval_id,
            &json!({"schedule": "@hourly", "grace_seconds": 60}),
        )
        .await;
    let scheduled = expect_json(response, StatusCode::OK).await;
    assert_eq!(scheduled["schedule"], "@hourly");
    assert_eq!(scheduled["timeout_seconds"], Value::Null);
}

async fn list_monitors(api: &Api) -> Vec<Value> {
    let response = api
        .api(Method::GET, "/api/monitors")
        .send()
        .await
        .expect("list monitors");
    let body = expect_json(response, StatusCode::OK).await;
    body["monitors"].as_array().expect("monitors").clone()
}

/// A UUID as Healthchecks makes its check tokens.
const HEALTHCHECKS_TOKEN: &str = "5c1bb7e2-3f4a-4b8e-9d2c-7a6f0e1d2b3c";
/// 32 letters and digits, as Uptime Kuma makes its push tokens.
const KUMA_TOKEN: &str = "q7XkP2mZr9TbW4cN8vLh3JdF6sGy1AeU";

#[tokio::test]
async fn tokens_brought_from_other_tools_keep_their_urls_and_guessable_ones_are_refused() {
    let app = spawn_app().await;
    for token in [HEALTHCHECKS_TOKEN, KUMA_TOKEN] {
        let created = create(
            &app,
            json!({"name": format!("moved {token}"), "timeout_seconds": 60, "push_token": token}),
        )
        .await;
        assert_eq!(created["push_token"], token);
        assert!(
            created["push_url"]
                .as_str()
                .is_some_and(|url| url.ends_with(&format!("/api/push/{token}"))),
            "{created}"
        );
        // The other tool's own client line, but for the host.
        let response = app
            .client
            .get(app.url(&format!("/api/push/{token}?status=up&msg=OK")))
            .send()
            .await
            .unwrap();
        expect_json(response, StatusCode::OK).await;
        let (id, _) = id_and_token(&created);
        assert_eq!(monitor(&app, &id).await["status"], "up");
    }
    let taken = expect_error(
        app.post_monitor(
            &json!({"name": "again", "timeout_seconds": 60, "push_token": KUMA_TOKEN}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(taken, "push_token is already used by another monitor");

    for (token, expected) in [
        ("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "too easy to guess"),
        ("abcabcabcabcabcabcabc123", "too easy to guess"),
        (
            "0000000000000000000000000000000000000000",
            "too easy to guess",
        ),
        ("short-token", "must be 22 base64url characters"),
        (
            "has a space in it 0123456789",
            "must be 22 base64url characters",
        ),
    ] {
        let error = expect_error(
            app.post_monitor(
                &json!({"name": "chosen", "timeout_seconds": 60, "push_token": token}),
            )
            .await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert!(
            error.starts_with("push_token ") && error.contains(expected),
            "{token}: {error}"
        );
    }
    assert_eq!(list_monitors(&app).await.len(), 2);
}

#[tokio::test]
async fn the_monitors_file_takes_every_job_field_and_refuses_bad_ones() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("monitors.yaml");
    std::fs::write(
        &file,
        format!(
            "monitors:
  - key: weekly-report
    name: Weekly report
    schedule: \"0 6 * * 1\"
    timezone: Europe/Paris
    grace_seconds: 1800
    max_runtime_seconds: 3600
    min_runtime_seconds: 5
    failure_threshold: 2
    recovery_threshold: 3
    realert_every_seconds: 86400
    push_token: {HEALTHCHECKS_TOKEN}
    maintenance:
      - cron: \"0 2 * * 0\"
        duration_seconds: 7200
      - start: \"2030-01-01T00:00:00Z\"
        end: \"2030-01-02T00:00:00Z\"
"
        ),
    )
    .unwrap();
    let app = spawn_app_with(|config| config.monitors_file = Some(file.clone())).await;
    let declared = list_monitors(&app).await;
    assert_eq!(declared.len(), 1);
    let weekly = &declared[0];
    assert_eq!(weekly["key"], "weekly-report");
    assert_eq!(weekly["schedule"], "0 6 * * 1");
    assert_eq!(weekly["timezone"], "Europe/Paris");
    assert_eq!(weekly["grace_seconds"], 1800);
    assert_eq!(weekly["max_runtime_seconds"], 3600);
    assert_eq!(weekly["min_runtime_seconds"], 5);
    assert_eq!(weekly["failure_threshold"], 2);
    assert_eq!(weekly["recovery_threshold"], 3);
    assert_eq!(weekly["realert_every_seconds"], 86400);
    assert_eq!(weekly["push_token"], HEALTHCHECKS_TOKEN);
    assert_eq!(
        weekly["maintenance"],
        json!([
            {"cron": "0 2 * * 0", "duration_seconds": 7200, "timezone": "UTC"},
            {"start": "2030-01-01T00:00:00.000Z", "end": "2030-01-02T00:00:00.000Z"},
        ])
    );
    // Monday 06:00 in Paris: 05:00 UTC in winter, 04:00 in summer.
    let due = parse_time(&weekly["next_due_at"]);
    assert_eq!(due.weekday(), time::Weekday::Monday);
    assert!(matches!(due.hour(), 4 | 5), "{weekly}");
    app.push_ok(HEALTHCHECKS_TOKEN, &[]).await;
    drop(app);

    let monitor_yaml = |fields: &str| format!("monitors:\n  - key: bad\n    name: Bad\n{fields}");
    for (fields, expected) in [
        (
            "    schedule: \"0 6 * * 1\"\n    timezone: Mars/Olympus\n",
            "timezone",
        ),
        ("    schedule: \"not a cron\"\n", "schedule"),
        (
            "    schedule: \"@daily\"\n    timeout_seconds: 60\n",
            "timeout_seconds",
        ),
        (
            "    timeout_seconds: 60\n    grace_seconds: 60\n",
            "grace_seconds",
        ),
        (
            "    timeout_seconds: 60\n    failure_threshold: 0\n",
            "failure_threshold",
        ),
        (
            "    timeout_seconds: 60\n    min_runtime_seconds: 9\n    max_runtime_seconds: 9\n",
            "min_runtime_seconds",
        ),
        (
            "    timeout_seconds: 60\n    maintenance:\n      - cron: \"0 2 * * 0\"\n",
            "duration_seconds",
        ),
        (
            "    timeout_seconds: 60\n    push_token: aaaaaaaaaaaaaaaaaaaaaaaa\n",
            "too easy to guess",
        ),
    ] {
        let bad = dir.path().join("bad.yaml");
        std::fs::write(&bad, monitor_yaml(fields)).unwrap();
        let stderr = refused_at_start(&dir.path().join("refused"), &bad).await;
        assert!(stderr.contains(expected), "{fields}: {stderr}");
    }
}

/// Runs `pushmon serve` with the monitors file `file`, which must stop start-up;
/// returns its standard error.
async fn refused_at_start(data_dir: &std::path::Path, file: &std::path::Path) -> String {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_pushmon"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin-token",
            ADMIN_TOKEN,
        ])
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--monitors-file")
        .arg(file)
        .env("NO_COLOR", "1")
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        !output.status.success(),
        "a bad monitors file started: {stderr}"
    );
    stderr
}

/// The value of the series of `family` for the monitor `id`.
fn monitor_series(metrics: &str, family: &str, id: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|line| {
            line.starts_with(&format!("{family}{{")) && line.contains(&format!("id=\"{id}\""))
        })
        .and_then(|line| line.rsplit(' ').next())
        .map(|value| value.parse().expect("a number"))
}

/// Seconds with milliseconds (as the per-monitor series give them), in milliseconds.
fn millis(seconds: f64) -> i64 {
    (seconds * 1000.0).round() as i64
}

/// A timestamp of the API as Unix milliseconds.
fn unix_millis(value: &Value) -> i64 {
    (parse_time(value).unix_timestamp_nanos() / 1_000_000) as i64
}

/// The value of the service series `series` (name and labels, as written).
fn service_series(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {series} in:\n{metrics}"))
        .parse()
        .expect("a number")
}

#[tokio::test]
async fn runs_and_deadlines_are_in_the_metrics() {
    let app = spawn_app().await;
    let (id, token) =
        id_and_token(&create(&app, json!({"name": "measured", "timeout_seconds": 600})).await);
    let before = app.metrics().await;
    assert_eq!(
        monitor_series(&before, "pushmon_monitor_last_run_duration_seconds", &id),
        None
    );
    assert_eq!(
        monitor_series(
            &before,
            "pushmon_monitor_last_success_timestamp_seconds",
            &id
        ),
        None
    );
    let success = r#"pushmon_runs_total{outcome="success"}"#;
    let failure = r#"pushmon_runs_total{outcome="failure"}"#;
    let (successes, failures) = (
        service_series(&before, success),
        service_series(&before, failure),
    );

    signal_ok(&app, &token, &[("kind", "start"), ("rid", RID_1)], None).await;
    sleep(Duration::from_millis(200)).await;
    signal_ok(&app, &token, &[("exit", "0"), ("rid", RID_1)], None).await;
    let up = monitor(&app, &id).await;
    let after_success = app.metrics().await;
    let duration = monitor_series(
        &after_success,
        "pushmon_monitor_last_run_duration_seconds",
        &id,
    )
    .expect("a last run duration");
    assert_eq!(
        Some(millis(duration)),
        up["last_run"]["duration_ms"].as_i64()
    );
    assert!(duration >= 0.2, "the run took 200 ms or more: {duration}");
    let last_success = monitor_series(
        &after_success,
        "pushmon_monitor_last_success_timestamp_seconds",
        &id,
    )
    .expect("a last success");
    assert_eq!(millis(last_success), unix_millis(&up["last_success_at"]));
    // Up: due again the timeout after the success.
    let deadline = monitor_series(
        &after_success,
        "pushmon_monitor_next_deadline_timestamp_seconds",
        &id,
    )
    .expect("a deadline while up");
    assert_eq!(millis(deadline), unix_millis(&up["next_deadline_at"]));
    assert_eq!(
        parse_time(&up["next_deadline_at"]),
        parse_time(&up["last_success_at"]) + time::Duration::seconds(600)
    );

    // A failure without a start: a run with no duration, and down (no deadline).
    signal_ok(&app, &token, &[("exit", "4")], None).await;
    let down = monitor(&app, &id).await;
    assert_eq!(down["status"], "down");
    assert_eq!(down["last_run"]["duration_ms"], Value::Null);
    let after_failure = app.metrics().await;
    for family in [
        "pushmon_monitor_last_run_duration_seconds",
        "pushmon_monitor_next_deadline_timestamp_seconds",
    ] {
        assert_eq!(
            monitor_series(&after_failure, family, &id),
            None,
            "{family}"
        );
    }
    assert_eq!(
        monitor_series(
            &after_failure,
            "pushmon_monitor_last_success_timestamp_seconds",
            &id
        ),
        Some(last_success)
    );
    // Other tests share the process's counters: these went up by at least this test's.
    assert!(service_series(&after_failure, success) >= successes + 1.0);
    assert!(service_series(&after_failure, failure) >= failures + 1.0);
}

/// A SIGKILL inside a run and inside a maintenance window: after the restart the run is
/// still open and the window still holds the alert back; its end sends it once, and a
/// second SIGKILL after the delivery does not send it again.
#[tokio::test]
async fn sigkill_inside_a_run_and_a_window_forgets_nothing_and_alerts_once() {
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let flags = ["--alert-retry-initial-ms", "50", "--alert-timeout", "1"];
    let server = ServerProcess::start(dir.path(), &flags).await;
    let channel = webhook(&server, &receiver).await;
    let created = create(
        &server,
        json!({"name": "crashy", "timeout_seconds": 3600, "max_runtime_seconds": 3600,
               "channels": [channel]}),
    )
    .await;
    let (id, token) = id_and_token(&created);
    let end = shifted(&created["created_at"], 8.0);
    let window = json!([{"start": shifted(&created["created_at"], -60.0), "end": end}]);
    expect_json(
        server
            .patch_monitor(&id, &json!({"maintenance": window}))
            .await,
        StatusCode::OK,
    )
    .await;
    signal_ok(&server, &token, &[("kind", "start"), ("rid", RID_1)], None).await;
    signal_ok(&server, &token, &[("kind", "start"), ("rid", RID_2)], None).await;
    signal_ok(
        &server,
        &token,
        &[("exit", "7"), ("rid", RID_2)],
        Some("boom"),
    )
    .await;
    let before = monitor(&server, &id).await;
    assert_eq!(before["status"], "down");
    server.sigkill().await;

    let server = ServerProcess::start(dir.path(), &flags).await;
    let after = monitor(&server, &id).await;
    for field in [
        "status",
        "down_reason",
        "current_run",
        "open_runs",
        "last_run",
        "in_maintenance",
    ] {
        assert_eq!(after[field], before[field], "{field} after the SIGKILL");
    }
    assert_eq!(
        after["current_run"]["rid"], RID_1,
        "the open run is remembered"
    );
    assert_eq!(after["in_maintenance"], true, "the window still holds");
    assert!(receiver.received().is_empty(), "nothing during the window");

    let delivered = receiver.wait_for_delivered(1, WAIT).await;
    assert_eq!(
        alerts(&delivered),
        [alert("down", "after_maintenance", "exit_status")]
    );
    assert_eq!(delivered[0].json()["exit_status"], 7);
    assert_eq!(delivered[0].json()["output"], "boom");
    // Once its outcome is recorded, a crash does not send it again.
    wait_for_history(&server, &id, "the delivery's record", |events| {
        of_kinds(events, "delivery") == 1
    })
    .await;
    server.sigkill().await;
    let server = ServerProcess::start(dir.path(), &flags).await;
    // The open run ends now, with its duration from its start before both crashes.
    signal_ok(&server, &token, &[("exit", "0"), ("rid", RID_1)], None).await;
    let up = monitor(&server, &id).await;
    assert_eq!(up["status"], "up");
    assert_eq!(
        up["last_run"]["started_at"],
        before["current_run"]["started_at"]
    );
    let recovery = receiver.wait_for_delivered(2, WAIT).await;
    assert_eq!(
        alerts(&recovery),
        [
            alert("down", "after_maintenance", "exit_status"),
            alert("up", "change", "heartbeat")
        ]
    );
    let ids: Vec<String> = recovery
        .iter()
        .map(|request| {
            request.headers["x-pushmon-alert-id"]
                .to_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_ne!(ids[0], ids[1]);
    let events = history(&server, &id).await;
    assert_eq!(of_kinds(&events, "alert_suppressed"), 1);
    assert_eq!(of_kinds(&events, "alert_released"), 1);
    assert_eq!(of_kinds(&events, "down"), 1);
    server.sigterm().await;
}

async fn wait_for_history(api: &Api, id: &str, what: &str, check: impl Fn(&[Value]) -> bool) {
    let started = Instant::now();
    loop {
        let events = history(api, id).await;
        if check(&events) {
            return;
        }
        assert!(
            started.elapsed() < WAIT,
            "{what} within {WAIT:?}: {:?}",
            kinds(&events)
        );
        sleep(POLL_EVERY).await;
    }
}
