//! Stop and start again on the same store, in process (fjall's keyspace_recover
//! pattern): nothing is forgotten, and a deadline that fell while the server was
//! stopped gets the restart grace (`docs/states.md`). This checks the wiring once, on
//! the wall clock; the grace's rules (once per deadline, a heartbeat in the grace,
//! grace 0, every rebuilt monitor, down monitors staying down) are tested on the
//! actors with tokio time paused, in `src/monitor/timing_tests.rs`.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use tokio::time::{Instant, sleep_until};

use crate::support::{Monitor, Status, TestApp, expect_json, of_kind, spawn_app, spawn_app_with};

async fn sorted_monitors(app: &TestApp) -> Vec<Monitor> {
    let mut monitors = app.list_monitors().await;
    monitors.sort_by(|a, b| a.id.cmp(&b.id));
    monitors
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_every_monitor_token_and_event() {
    let app = spawn_app().await;
    let alpha = app.create_monitor("alpha", 3600).await;
    for n in 0..3 {
        app.push_ok(
            &alpha.push_token,
            &[("msg", &format!("alpha {n}")), ("value", &n.to_string())],
        )
        .await;
    }
    expect_json(
        app.patch_monitor(&alpha.id, &json!({"name": "alpha, renamed"}))
            .await,
        StatusCode::OK,
    )
    .await;
    let beta = app
        .create_monitor_from(
            &json!({"name": "beta", "timeout_seconds": 3600, "interval_seconds": 60}),
        )
        .await;
    app.push_ok(
        &beta.push_token,
        &[("status", "down"), ("msg", "beta broke")],
    )
    .await;
    let gamma = app.create_monitor("gamma", 3600).await;
    let gamma_rotated = app.rotate_token(&gamma.id).await;
    app.pause(&gamma.id).await;

    let monitors_before = sorted_monitors(&app).await;
    assert_eq!(monitors_before.len(), 3);
    let mut histories_before = Vec::new();
    for monitor in &monitors_before {
        histories_before.push(app.history(&monitor.id).await);
    }

    let app = app.restart().await;

    // The new server listens on a new port, so only push_url may differ.
    let mut monitors_after = sorted_monitors(&app).await;
    for monitor in &mut monitors_after {
        assert_eq!(
            monitor.push_url,
            format!("{}/api/push/{}", app.base_url, monitor.push_token)
        );
    }
    for (after, before) in monitors_after.iter_mut().zip(&monitors_before) {
        after.push_url.clone_from(&before.push_url);
    }
    assert_eq!(monitors_after, monitors_before);
    for (monitor, before) in monitors_before.iter().zip(&histories_before) {
        assert_eq!(
            &app.history(&monitor.id).await,
            before,
            "history of {}",
            monitor.name
        );
    }
    assert_eq!(app.get_monitor(&alpha.id).await.name, "alpha, renamed");
    assert_eq!(app.get_monitor(&beta.id).await.status, Status::Down);
    assert_eq!(app.get_monitor(&gamma.id).await.status, Status::Paused);

    // Tokens: the current ones work, the rotated-away one stays dead.
    assert_eq!(
        expect_json(
            app.push(&gamma.push_token, &[]).await,
            StatusCode::NOT_FOUND
        )
        .await,
        json!({"error": "unknown push token"})
    );
    app.push_ok(&gamma_rotated.push_token, &[("msg", "gamma after")])
        .await;
    assert_eq!(app.get_monitor(&gamma.id).await.status, Status::Paused);
    app.push_ok(&alpha.push_token, &[("msg", "alpha after")])
        .await;
    app.push_ok(&beta.push_token, &[("msg", "beta fixed")])
        .await;
    assert_eq!(app.get_monitor(&beta.id).await.status, Status::Up);

    // New events follow the old ones; no sequence number is reused.
    for (monitor, before) in monitors_before.iter().zip(&histories_before) {
        let after = app.history(&monitor.id).await;
        assert_eq!(
            after[..before.len()],
            before[..],
            "old events of {}",
            monitor.name
        );
        let last_old_seq = before.last().unwrap().seq;
        assert!(
            after.len() > before.len(),
            "{} got a new event",
            monitor.name
        );
        assert!(
            after[before.len()..]
                .iter()
                .all(|event| event.seq > last_old_seq),
            "seqs after restart of {}: {after:#?}",
            monitor.name
        );
    }
    let beta_after = app.history(&beta.id).await;
    assert_eq!(of_kind(&beta_after, "down").len(), 1);
    assert_eq!(of_kind(&beta_after, "up").len(), 1, "{beta_after:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_that_fell_while_stopped_gets_the_restart_grace() {
    let app = spawn_app_with(|config| config.restart_grace = Duration::from_secs(1)).await;
    let job = app.create_monitor("job", 2).await;
    app.push_ok(&job.push_token, &[]).await;
    let pushed_at = Instant::now();

    let stopped = app.shutdown().await;
    let stopped_after = pushed_at.elapsed();
    assert!(
        stopped_after < Duration::from_millis(1500),
        "too slow to stop ({stopped_after:?}): the deadline must fall while stopped"
    );
    sleep_until(pushed_at + Duration::from_millis(2500)).await;
    let app = stopped.start().await;
    let ready_after = pushed_at.elapsed();

    // The deadline is past, but the grace of min(2 s, 1 s) runs from the restart.
    let after_restart = app.get_monitor(&job.id).await;
    assert_eq!(
        after_restart.status,
        Status::Up,
        "stopped {stopped_after:?} and ready {ready_after:?} after the heartbeat; \
         {after_restart:#?}\nhistory: {:#?}",
        app.history(&job.id).await
    );

    app.wait_for_status(&job.id, Status::Down, Duration::from_millis(3500))
        .await;
    let after_ready = app.ready_at.elapsed();
    assert!(
        after_ready >= Duration::from_millis(500),
        "down {after_ready:?} after ready, inside the 1 s grace"
    );
    let downs = of_kind(&app.history(&job.id).await, "down")
        .into_iter()
        .cloned()
        .collect::<Vec<_>>();
    assert_eq!(downs.len(), 1, "{downs:#?}");
    assert_eq!(downs[0].reason.as_deref(), Some("timeout"));
}
