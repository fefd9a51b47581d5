//! Labels and severity (`docs/api.md`, "Labels"; issue 19, items 1 and 2): set and
//! checked through the API, recorded in `created`/`updated`, carried by webhook
//! alerts and by the per-monitor series `--metrics-labels` names (`promtool` checks
//! the exposition); and finding monitors: `GET /api/monitors` by selector, status,
//! name and tag, in cursor pages with counts per status.

use std::collections::HashSet;
use std::process::Stdio;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use crate::receiver::Receiver;
use crate::support::{TestApp, expect_error, expect_json, spawn_app, spawn_app_with};

const WAIT: Duration = Duration::from_secs(10);

async fn list(app: &TestApp, query: &str) -> Value {
    let response = app
        .api(Method::GET, &format!("/api/monitors{query}"))
        .send()
        .await
        .unwrap();
    expect_json(response, StatusCode::OK).await
}

fn names(page: &Value) -> Vec<String> {
    let mut names: Vec<String> = page["monitors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|monitor| monitor["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn labels_and_severity_are_checked_shown_changed_and_recorded() {
    let app = spawn_app().await;
    let monitor = app
        .create_monitor_from(&json!({
            "name": "payments-sync",
            "timeout_seconds": 60,
            "labels": {"team": "payments", "example.com/env": "prod", "empty": ""},
            "severity": "warning",
        }))
        .await;
    let shown = app.monitor_value(&monitor.id).await;
    assert_eq!(
        shown["labels"],
        json!({"team": "payments", "example.com/env": "prod", "empty": ""})
    );
    assert_eq!(shown["severity"], "warning");
    let plain = app.create_monitor("plain", 60).await;
    let plain = app.monitor_value(&plain.id).await;
    assert_eq!(
        (&plain["labels"], &plain["severity"]),
        (&json!({}), &json!("critical"))
    );

    // A PATCH replaces the labels; one without them keeps them.
    let patched = expect_json(
        app.patch_monitor(&monitor.id, &json!({"labels": {"team": "billing"}}))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(patched["labels"], json!({"team": "billing"}));
    assert_eq!(patched["severity"], "warning");
    let renamed = expect_json(
        app.patch_monitor(
            &monitor.id,
            &json!({"name": "billing-sync", "severity": "info"}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(renamed["labels"], json!({"team": "billing"}));
    assert_eq!(renamed["severity"], "info");

    // `created` and `updated` record the whole configuration, labels included.
    let events = app
        .api(Method::GET, &format!("/api/monitors/{}/events", monitor.id))
        .send()
        .await
        .unwrap();
    let events = expect_json(events, StatusCode::OK).await;
    let events = events["events"].as_array().unwrap();
    let created = events
        .iter()
        .find(|event| event["kind"] == "created")
        .unwrap();
    assert_eq!(created["labels"]["team"], "payments");
    assert_eq!(created["severity"], "warning");
    let updated: Vec<&Value> = events
        .iter()
        .filter(|event| event["kind"] == "updated")
        .collect();
    assert_eq!(updated.len(), 2);
    assert_eq!(updated[0]["severity"], "info", "newest first");
    assert_eq!(updated[1]["labels"], json!({"team": "billing"}));

    // Bad labels and severities are 422s naming what is wrong.
    for (body, says) in [
        (json!({"labels": {"bad key": "x"}}), "label key \"bad key\""),
        (json!({"labels": {"team": "a b"}}), "label \"team\""),
        (
            json!({"labels": {"team": 1}}),
            "label \"team\" must be a string",
        ),
        (json!({"labels": ["team"]}), "labels must be an object"),
        (json!({"labels": {"k": "v".repeat(64)}}), "label \"k\""),
        (
            json!({"severity": "fatal"}),
            "severity must be critical, warning or info",
        ),
    ] {
        let error = expect_error(
            app.patch_monitor(&monitor.id, &body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert!(error.contains(says), "{body}: {error}");
    }
    let many: serde_json::Map<String, Value> = (0..33)
        .map(|index| (format!("k{index}"), json!("v")))
        .collect();
    let error = expect_error(
        app.post_monitor(&json!({"name": "many", "timeout_seconds": 60, "labels": many}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(error.contains("at most 32 labels"), "{error}");
    // Nothing was changed by the refused requests, and the labels survive a restart.
    let app = app.restart().await;
    let kept = app.monitor_value(&monitor.id).await;
    assert_eq!(kept["labels"], json!({"team": "billing"}));
    assert_eq!(kept["severity"], "info");
}

#[tokio::test]
async fn the_list_filters_by_selector_status_name_and_tag_in_stable_cursor_pages() {
    let app = spawn_app().await;
    let mut ids = std::collections::HashMap::new();
    for (name, labels, tags) in [
        (
            "pay-api",
            json!({"team": "payments", "env": "prod"}),
            json!(["web"]),
        ),
        (
            "pay-batch",
            json!({"team": "payments", "env": "dev"}),
            json!(["batch"]),
        ),
        (
            "pay-report",
            json!({"team": "payments"}),
            json!(["batch", "web"]),
        ),
        (
            "ship-api",
            json!({"team": "shipping", "env": "prod"}),
            json!(["web"]),
        ),
        (
            "Ship-Batch",
            json!({"team": "shipping", "env": "staging"}),
            json!([]),
        ),
        ("unlabelled", json!({}), json!([])),
    ] {
        let monitor = app
            .create_monitor_from(&json!({
                "name": name, "timeout_seconds": 3600, "labels": labels, "tags": tags,
            }))
            .await;
        ids.insert(name, monitor);
    }
    app.push_ok(&ids["pay-api"].push_token, &[]).await;
    app.push_ok(&ids["ship-api"].push_token, &[("status", "down")])
        .await;
    app.pause(&ids["unlabelled"].id).await;

    // No parameters: every monitor, as before, and no next page.
    let all = list(&app, "").await;
    assert_eq!(names(&all).len(), 6);
    assert_eq!(all["next_cursor"], Value::Null);
    assert_eq!(
        all["counts"],
        json!({"pending": 3, "up": 1, "down": 1, "paused": 1, "unknown": 0})
    );

    for (query, expected) in [
        (
            "?selector=team%3Dpayments,env!%3Ddev",
            vec!["pay-api", "pay-report"],
        ),
        ("?selector=team==shipping", vec!["Ship-Batch", "ship-api"]),
        (
            "?selector=env%20in%20(prod,%20staging)",
            vec!["Ship-Batch", "pay-api", "ship-api"],
        ),
        (
            "?selector=env%20notin%20(prod)",
            vec!["Ship-Batch", "pay-batch", "pay-report", "unlabelled"],
        ),
        ("?selector=!env", vec!["pay-report", "unlabelled"]),
        (
            "?selector=env&selector=team%3Dpayments",
            vec!["pay-api", "pay-batch"],
        ),
        ("?status=up,down", vec!["pay-api", "ship-api"]),
        ("?status=paused&status=up", vec!["pay-api", "unlabelled"]),
        ("?q=BATCH", vec!["Ship-Batch", "pay-batch"]),
        ("?tag=web", vec!["pay-api", "pay-report", "ship-api"]),
        ("?tag=web&tag=batch", vec!["pay-report"]),
        (
            "?tag=web&selector=team%3Dshipping&status=down&q=api",
            vec!["ship-api"],
        ),
        ("?selector=team%3Dnobody", vec![]),
    ] {
        let page = list(&app, query).await;
        assert_eq!(names(&page), expected, "{query}");
        let counted: u64 = page["counts"]
            .as_object()
            .unwrap()
            .values()
            .map(|count| count.as_u64().unwrap())
            .sum();
        assert_eq!(
            counted as usize,
            expected.len(),
            "{query}: {}",
            page["counts"]
        );
    }
    let shipping = list(&app, "?selector=team%3Dshipping").await;
    assert_eq!(
        shipping["counts"],
        json!({"pending": 1, "up": 0, "down": 1, "paused": 0, "unknown": 0})
    );

    // Pages of two, in a stable order: a monitor deleted and one created between two
    // pages neither repeat nor skip any monitor that was there all along.
    let first = list(&app, "?limit=2").await;
    assert_eq!(first["monitors"].as_array().unwrap().len(), 2);
    assert_eq!(first["counts"], all["counts"], "counts cover every page");
    let mut seen: Vec<String> = first["monitors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|monitor| monitor["id"].as_str().unwrap().to_owned())
        .collect();
    let gone = ids
        .values()
        .map(|monitor| monitor.id.clone())
        .find(|id| !seen.contains(id))
        .unwrap();
    assert_eq!(
        app.delete_monitor(&gone).await.status(),
        StatusCode::NO_CONTENT
    );
    let added = app.create_monitor("added-meanwhile", 60).await;
    let mut cursor = first["next_cursor"].as_str().unwrap().to_owned();
    loop {
        let page = list(&app, &format!("?limit=2&cursor={cursor}")).await;
        seen.extend(
            page["monitors"]
                .as_array()
                .unwrap()
                .iter()
                .map(|monitor| monitor["id"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => break,
        }
    }
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(
        unique.len(),
        seen.len(),
        "a monitor was listed twice: {seen:?}"
    );
    for monitor in ids.values().filter(|monitor| monitor.id != gone) {
        assert!(seen.contains(&monitor.id), "{} was skipped", monitor.name);
    }
    assert!(!seen.contains(&gone));
    assert!(
        seen.contains(&added.id),
        "ids grow: a new monitor sorts last"
    );

    // Bad parameters are 400s that say what and where.
    for (query, says) in [
        (
            "?selector=team%20in%20payments",
            "selector at position 8: expected '('",
        ),
        ("?selector=team%3D%3D%3D", "selector at position 6"),
        ("?selector=-team", "label key \"-team\""),
        ("?status=sleeping", "status \"sleeping\""),
        ("?limit=0", "limit must be"),
        ("?cursor=not-a-cursor", "cursor must be"),
    ] {
        let response = app
            .api(Method::GET, &format!("/api/monitors{query}"))
            .send()
            .await
            .unwrap();
        let error = expect_error(response, StatusCode::BAD_REQUEST).await;
        assert!(error.contains(says), "{query}: {error}");
    }
}

#[tokio::test]
async fn webhook_alerts_carry_the_monitors_labels_severity_and_tags() {
    let receiver = Receiver::start().await;
    let app = spawn_app().await;
    let channel = expect_json(
        app.api(Method::POST, "/api/channels")
            .json(&json!({"kind": "webhook", "name": "hook", "url": receiver.url("/hook")}))
            .send()
            .await
            .unwrap(),
        StatusCode::CREATED,
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let monitor = app
        .create_monitor_from(&json!({
            "name": "nightly", "timeout_seconds": 3600, "channels": [channel],
            "labels": {"team": "storage", "example.com/env": "prod"},
            "severity": "warning", "tags": ["backup"],
        }))
        .await;
    app.push_ok(&monitor.push_token, &[("status", "down")])
        .await;
    app.push_ok(&monitor.push_token, &[]).await;
    let delivered = receiver.wait_for_delivered(2, WAIT).await;
    for (alert, event) in delivered.iter().zip(["down", "up"]) {
        let alert = alert.json();
        assert_eq!(alert["event"], event);
        assert_eq!(
            alert["monitor"],
            json!({
                "id": monitor.id, "name": "nightly", "severity": "warning",
                "labels": {"team": "storage", "example.com/env": "prod"},
                "tags": ["backup"],
            })
        );
    }
}

async fn promtool_check(text: &str) {
    let mut promtool = tokio::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool must be installed (scripts/test.sh installs Debian's prometheus)");
    let mut stdin = promtool.stdin.take().unwrap();
    stdin.write_all(text.as_bytes()).await.unwrap();
    drop(stdin);
    let output = promtool.wait_with_output().await.unwrap();
    assert!(
        output.status.success(),
        "promtool check metrics failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn metrics_labels_put_the_chosen_labels_on_every_per_monitor_series() {
    let app = spawn_app_with(|config| {
        config.metrics_labels = vec!["team".to_owned(), "example.com/env".to_owned()];
    })
    .await;
    let labelled = app
        .create_monitor_from(&json!({
            "name": "labelled", "timeout_seconds": 3600,
            "labels": {"team": "payments", "example.com/env": "prod", "other": "x"},
        }))
        .await;
    let bare = app.create_monitor("bare", 3600).await;
    app.push_ok(&labelled.push_token, &[("value", "3")]).await;
    app.push_ok(&bare.push_token, &[]).await;
    let text = app.metrics().await;
    let with = format!(
        "{{id=\"{}\",name=\"labelled\",label_team=\"payments\",label_example_com_env=\"prod\"}}",
        labelled.id
    );
    let without = format!(
        "{{id=\"{}\",name=\"bare\",label_team=\"\",label_example_com_env=\"\"}}",
        bare.id
    );
    for line in [
        format!("pushmon_monitor_up{with} 1"),
        format!("pushmon_monitor_value{with} 3"),
        format!("pushmon_monitor_up{without} 1"),
        format!(
            "pushmon_monitor_status{{id=\"{}\",name=\"labelled\",label_team=\"payments\",label_example_com_env=\"prod\",status=\"up\"}} 1",
            labelled.id
        ),
    ] {
        assert!(
            text.lines().any(|found| found == line),
            "missing {line} in:\n{text}"
        );
    }
    assert!(!text.contains("label_other"), "only the chosen keys");
    assert!(text.contains(&format!(
        "pushmon_monitor_last_heartbeat_timestamp_seconds{with} "
    )));
    promtool_check(&text).await;

    // Without the setting, the series are as they always were.
    let plain = spawn_app().await;
    let monitor = plain
        .create_monitor_from(&json!({"name": "m", "timeout_seconds": 60, "labels": {"team": "a"}}))
        .await;
    plain.push_ok(&monitor.push_token, &[]).await;
    let text = plain.metrics().await;
    assert!(
        text.contains(&format!(
            "pushmon_monitor_up{{id=\"{}\",name=\"m\"}} 1",
            monitor.id
        )),
        "{text}"
    );
    assert!(!text.contains("label_team"));
}
