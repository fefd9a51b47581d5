//! Health endpoints (`docs/metrics.md`): `/healthz` while serving, `/readyz` once
//! every monitor is rebuilt, and what the server answers before that.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{ServerProcess, expect_error, expect_json, spawn_app};

/// 22 base64url characters: a valid declared push token.
const DECLARED_TOKEN: &str = "CCCCCCCCCCCCCCCCCCCCCA";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_and_readyz_answer_their_documented_bodies_without_a_token() {
    let app = spawn_app().await;
    let healthz = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(
        expect_json(healthz, StatusCode::OK).await,
        json!({"status": "ok"})
    );
    let readyz = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(
        expect_json(readyz, StatusCode::OK).await,
        json!({"status": "ready"})
    );
}

/// Ready means rebuilt: once `/readyz` says so, every monitor's token reaches its
/// actor (the listing alone would not show it: it is read from the store).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_ready_after_a_restart_every_monitor_takes_pushes() {
    let app = spawn_app().await;
    let mut monitors = Vec::new();
    for n in 0..20 {
        monitors.push(app.create_monitor(&format!("m{n}"), 3600).await);
    }
    let app = app.restart().await;
    for monitor in &monitors {
        app.push_ok(&monitor.push_token, &[]).await;
    }
}

/// Start-up is held in the middle by a monitors file whose push token comes from a
/// named pipe nobody has written yet: meanwhile the server listens, `/healthz` says
/// it lives, `/readyz` says why it is not ready, and pushes and the management API
/// answer 503 (never a 404 for a token not rebuilt yet). Once the token is written,
/// start-up finishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn before_start_up_is_done_readyz_pushes_and_the_api_answer_503() {
    let dir = tempfile::tempdir().unwrap();
    let pipe = dir.path().join("token.pipe");
    let made = std::process::Command::new("mkfifo")
        .arg(&pipe)
        .status()
        .expect("run mkfifo");
    assert!(made.success(), "mkfifo failed");
    let monitors_file = dir.path().join("monitors.yaml");
    std::fs::write(
        &monitors_file,
        format!(
            "monitors:\n  - key: held\n    name: Held\n    timeout_seconds: 60\n    \
             push_token_file: {}\n",
            pipe.display()
        ),
    )
    .unwrap();
    let data_dir = dir.path().join("data");
    let mut server = ServerProcess::start_unready(
        &data_dir,
        &["--monitors-file", monitors_file.to_str().unwrap()],
    )
    .await;

    let readyz = server
        .client
        .get(server.url("/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        expect_error(readyz, StatusCode::SERVICE_UNAVAILABLE).await,
        "not ready: starting: monitors are being rebuilt"
    );
    let healthz = server
        .client
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        expect_json(healthz, StatusCode::OK).await,
        json!({"status": "ok"})
    );
    let starting = "server is starting; monitors are being rebuilt";
    assert_eq!(
        expect_error(
            server.push(DECLARED_TOKEN, &[]).await,
            StatusCode::SERVICE_UNAVAILABLE
        )
        .await,
        starting
    );
    let listing = server
        .api(Method::GET, "/api/monitors")
        .send()
        .await
        .unwrap();
    assert_eq!(
        expect_error(listing, StatusCode::SERVICE_UNAVAILABLE).await,
        starting
    );

    // Opening the pipe for writing waits for the server, which is reading it.
    let writer = tokio::task::spawn_blocking(move || std::fs::write(pipe, DECLARED_TOKEN));
    server.wait_until_ready().await;
    writer
        .await
        .unwrap()
        .expect("write the token into the pipe");
    server.push_ok(DECLARED_TOKEN, &[]).await;
    let (status, log) = server.sigterm().await;
    assert!(status.success(), "{status:?}\n{log}");
}
