//! Health endpoints (`docs/metrics.md`): `/healthz` while serving, `/readyz` once rebuilt.

use reqwest::StatusCode;

use crate::support::spawn_app;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_and_readyz_answer_200_once_started_without_a_token() {
    let app = spawn_app().await;
    for path in ["/healthz", "/readyz"] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_answers_200_after_a_restart_with_monitors_to_rebuild() {
    let app = spawn_app().await;
    for n in 0..20 {
        app.create_monitor(&format!("m{n}"), 3600).await;
    }
    let app = app.restart().await;
    let response = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // Ready means rebuilt: every monitor answers at once.
    assert_eq!(app.list_monitors().await.len(), 20);
}
