//! `pushmon run` against the real server: what a run records on its monitor through
//! the `/ping` routes (`docs/cli.md#pushmon-run`), and what it does when the server is
//! not there.

use std::time::Duration;

use serde_json::Value;

use super::pushmon;
use crate::support::{Status, TestApp, spawn_app};

/// `pushmon run --token <token> --server <app> <extra…> -- <command…>`.
async fn run_against(app: &TestApp, token: &str, extra: &[&str], command: &[&str]) -> super::Ran {
    let mut args = vec!["run", "--token", token, "--server", app.base_url.as_str()];
    args.extend_from_slice(extra);
    args.push("--");
    args.extend_from_slice(command);
    pushmon(&args, &[]).await
}

/// The monitor as the API shows it, with its runs.
async fn monitor_json(app: &TestApp, id: &str) -> Value {
    app.monitor_value(id).await
}

#[tokio::test]
async fn a_failed_command_puts_its_monitor_down_with_its_exit_status_and_output() {
    let app = spawn_app().await;
    let monitor = app.create_monitor("job", 3600).await;
    let ran = run_against(
        &app,
        &monitor.push_token,
        &[],
        &["sh", "-c", "echo hi; exit 3"],
    )
    .await;
    assert_eq!(ran.expect(3), "hi\n");
    assert!(!ran.stderr.contains("not reported"), "{}", ran.stderr);
    app.wait_for_status(&monitor.id, Status::Down, Duration::from_secs(10))
        .await;
    let shown = monitor_json(&app, &monitor.id).await;
    let last_run = &shown["last_run"];
    assert_eq!(last_run["exit_status"], 3, "{shown}");
    assert_eq!(last_run["outcome"], "failure", "{shown}");
    assert!(
        last_run["output_excerpt"]
            .as_str()
            .unwrap_or("")
            .contains("hi"),
        "{shown}"
    );
}

#[tokio::test]
async fn a_successful_command_records_its_duration() {
    let app = spawn_app().await;
    let monitor = app.create_monitor("job", 3600).await;
    run_against(&app, &monitor.push_token, &[], &["sh", "-c", "sleep 1"])
        .await
        .expect(0);
    app.wait_for_status(&monitor.id, Status::Up, Duration::from_secs(10))
        .await;
    let shown = monitor_json(&app, &monitor.id).await;
    let last_run = &shown["last_run"];
    assert_eq!(last_run["exit_status"], 0, "{shown}");
    assert_eq!(last_run["outcome"], "success", "{shown}");
    let duration = last_run["duration_ms"]
        .as_u64()
        .unwrap_or_else(|| panic!("{shown}"));
    assert!(
        duration >= 1000,
        "a one-second command took {duration} ms: {shown}"
    );
}

#[tokio::test]
async fn a_command_outliving_its_timeout_is_killed_and_reported() {
    let app = spawn_app().await;
    let monitor = app.create_monitor("job", 3600).await;
    let ran = run_against(
        &app,
        &monitor.push_token,
        &["--timeout", "1s"],
        &["sh", "-c", "echo started; sleep 60"],
    )
    .await;
    ran.expect(124);
    app.wait_for_status(&monitor.id, Status::Down, Duration::from_secs(10))
        .await;
    let shown = monitor_json(&app, &monitor.id).await;
    let excerpt = shown["last_run"]["output_excerpt"].as_str().unwrap_or("");
    assert!(
        excerpt.contains("started") && excerpt.contains("timed out"),
        "{shown}"
    );
}

#[tokio::test]
async fn a_slug_url_with_create_1_reports_to_the_monitor_it_creates() {
    let app = crate::support::spawn_app_with(|config| config.ping_auto_create = true).await;
    let response = app
        .api(reqwest::Method::GET, "/api/settings")
        .send()
        .await
        .unwrap();
    let settings = crate::support::expect_json(response, reqwest::StatusCode::OK).await;
    let prefix = settings["ping_url_prefix"].as_str().expect("a prefix");
    let url = format!("{prefix}/nightly-etl?create=1");
    let ran = pushmon(
        &[
            "run",
            "--url",
            &url,
            "--",
            "sh",
            "-c",
            "echo loaded; exit 2",
        ],
        &[],
    )
    .await;
    assert_eq!(ran.expect(2), "loaded\n");
    let monitors = app.list_monitors().await;
    assert_eq!(monitors.len(), 1, "{monitors:?}");
    let shown = monitor_json(&app, &monitors[0].id).await;
    assert_eq!(shown["slug"], "nightly-etl", "{shown}");
    assert_eq!(shown["status"], "down", "{shown}");
    assert_eq!(shown["last_run"]["exit_status"], 2, "{shown}");
    assert!(
        shown["last_run"]["duration_ms"].is_u64(),
        "start and end are one run: {shown}"
    );
}

#[tokio::test]
async fn with_the_server_stopped_the_command_still_runs_and_its_status_is_returned() {
    let app = spawn_app().await;
    let monitor = app.create_monitor("job", 3600).await;
    let base_url = app.base_url.clone();
    let stopped = app.shutdown().await;
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let script = format!("touch {}; echo output; exit 9", marker.display());
    let ran = pushmon(
        &[
            "run",
            "--token",
            &monitor.push_token,
            "--server",
            &base_url,
            "--retry-for",
            "2s",
            "--",
            "sh",
            "-c",
            &script,
        ],
        &[],
    )
    .await;
    assert_eq!(ran.expect(9), "output\n");
    assert!(marker.exists(), "the command ran");
    assert!(
        ran.stderr.contains("the outcome was not reported"),
        "{}",
        ran.stderr
    );
    drop(stopped);
}
