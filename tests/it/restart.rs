//! Stop and start again on the same store, in process (fjall's keyspace_recover
//! pattern): nothing is forgotten, and deadlines that fell while the server was
//! stopped get the restart grace (`docs/states.md`), once.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use tokio::time::{Instant, sleep, sleep_until};

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
    let app = spawn_app_with(|config| config.restart_grace = Duration::from_secs(2)).await;
    let job = app.create_monitor("job", 3).await;
    app.push_ok(&job.push_token, &[]).await;
    let pushed_at = Instant::now();

    let stopped = app.shutdown().await;
    let stopped_after = pushed_at.elapsed();
    sleep_until(pushed_at + Duration::from_millis(3500)).await;
    let app = stopped.start().await;
    let ready_after = pushed_at.elapsed();

    // The deadline is past, but the grace of min(3 s, 2 s) runs from ready.
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
        after_ready >= Duration::from_millis(1500),
        "down {after_ready:?} after ready, inside the 2 s grace"
    );
    let downs = of_kind(&app.history(&job.id).await, "down")
        .into_iter()
        .cloned()
        .collect::<Vec<_>>();
    assert_eq!(downs.len(), 1, "{downs:#?}");
    assert_eq!(downs[0].reason.as_deref(), Some("timeout"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_monitor_gets_the_restart_grace_however_many_are_rebuilt() {
    // Regression: a rebuilt actor armed its timer for the missed deadline before the
    // restart judgement reached it, so whichever came first decided, and monitors
    // rebuilt early (or on a busy machine) went down at once with no grace.
    const MONITORS: usize = 150;
    let app = spawn_app_with(|config| config.restart_grace = Duration::from_secs(2)).await;
    let mut monitors = Vec::new();
    for n in 0..MONITORS {
        monitors.push(app.create_monitor(&format!("job {n}"), 3).await);
    }
    let first_push = Instant::now();
    for monitor in &monitors {
        app.push_ok(&monitor.push_token, &[]).await;
    }
    let last_push = Instant::now();

    let stopped = app.shutdown().await;
    assert!(
        first_push.elapsed() < Duration::from_millis(2500),
        "too slow to set up: the first deadline must fall while stopped"
    );
    sleep_until(last_push + Duration::from_millis(3500)).await;
    let app = stopped.start().await;

    let down: Vec<String> = app
        .list_monitors()
        .await
        .into_iter()
        .filter(|monitor| monitor.status == Status::Down)
        .map(|monitor| monitor.name)
        .collect();
    assert!(
        down.is_empty(),
        "{} of {MONITORS} monitors went down at once after the restart, without the \
         grace: {down:?}",
        down.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heartbeat_during_the_restart_grace_keeps_a_monitor_up() {
    let app = spawn_app_with(|config| config.restart_grace = Duration::from_secs(1)).await;
    let rescued = app.create_monitor("rescued", 4).await;
    let abandoned = app.create_monitor("abandoned", 4).await;
    app.push_ok(&rescued.push_token, &[]).await;
    app.push_ok(&abandoned.push_token, &[]).await;
    let pushed_at = Instant::now();

    let stopped = app.shutdown().await;
    sleep_until(pushed_at + Duration::from_millis(4500)).await;
    let app = stopped.start().await;
    app.push_ok(&rescued.push_token, &[("msg", "made it")])
        .await;

    // The 1 s grace is over and judged (within 1 s); the new deadline is 4 s away.
    sleep_until(app.ready_at + Duration::from_millis(2500)).await;
    assert_eq!(app.get_monitor(&abandoned.id).await.status, Status::Down);
    assert_eq!(app.get_monitor(&rescued.id).await.status, Status::Up);
    assert!(of_kind(&app.events(&rescued.id).await, "down").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_restart_grace_is_granted_once_per_deadline() {
    let app = spawn_app_with(|config| config.restart_grace = Duration::from_secs(3)).await;
    let job = app.create_monitor("flapping server", 4).await;
    app.push_ok(&job.push_token, &[]).await;
    let pushed_at = Instant::now();

    let stopped = app.shutdown().await;
    sleep_until(pushed_at + Duration::from_millis(4500)).await;
    let app = stopped.start().await;
    let first_ready = app.ready_at;
    assert_eq!(
        app.get_monitor(&job.id).await.status,
        Status::Up,
        "in the grace"
    );

    // Stop again inside the grace, and stay stopped until it has run out.
    let stopped = app.shutdown().await;
    sleep_until(first_ready + Duration::from_millis(3500)).await;
    let app = stopped.start().await;

    // No second grace (which would keep it up for 3 s more): down at once.
    app.wait_for_status(&job.id, Status::Down, Duration::from_millis(1500))
        .await;
    let history = app.history(&job.id).await;
    let downs = of_kind(&history, "down");
    assert_eq!(downs.len(), 1, "{history:#?}");
    assert_eq!(downs[0].reason.as_deref(), Some("timeout"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_grace_zero_judges_a_missed_deadline_at_once() {
    let app = spawn_app_with(|config| config.restart_grace = Duration::ZERO).await;
    let job = app.create_monitor("no grace", 3).await;
    app.push_ok(&job.push_token, &[]).await;
    let pushed_at = Instant::now();

    let stopped = app.shutdown().await;
    sleep_until(pushed_at + Duration::from_millis(3500)).await;
    let app = stopped.start().await;

    app.wait_for_status(&job.id, Status::Down, Duration::from_millis(1500))
        .await;
    let downs = of_kind(&app.events(&job.id).await, "down")
        .into_iter()
        .map(|event| event.reason.clone())
        .collect::<Vec<_>>();
    assert_eq!(downs, vec![Some("timeout".to_owned())]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_down_monitor_stays_down_with_one_down_event_across_restarts() {
    let mut app = spawn_app_with(|config| config.restart_grace = Duration::from_secs(1)).await;
    let timed_out = app.create_monitor("timed out", 1).await;
    let manual = app.create_monitor("manual", 3600).await;
    app.push_ok(&manual.push_token, &[("status", "down")]).await;
    app.wait_for_status(&timed_out.id, Status::Down, Duration::from_millis(3500))
        .await;

    for restart in 1..=2 {
        app = app.restart().await;
        for monitor in [&timed_out, &manual] {
            assert_eq!(
                app.get_monitor(&monitor.id).await.status,
                Status::Down,
                "{} right after restart {restart}",
                monitor.name
            );
        }
        // Past the grace and the 1 s timeout: room for a wrong second alert.
        sleep(Duration::from_millis(2200)).await;
        for (monitor, reason) in [(&timed_out, "timeout"), (&manual, "manual")] {
            let history = app.history(&monitor.id).await;
            assert_eq!(
                app.get_monitor(&monitor.id).await.status,
                Status::Down,
                "{} after restart {restart}",
                monitor.name
            );
            let downs = of_kind(&history, "down");
            assert_eq!(downs.len(), 1, "restart {restart}: {history:#?}");
            assert_eq!(downs[0].reason.as_deref(), Some(reason));
            assert!(of_kind(&history, "up").is_empty(), "{history:#?}");
        }
    }

    app.push_ok(&timed_out.push_token, &[]).await;
    assert_eq!(app.get_monitor(&timed_out.id).await.status, Status::Up);
}
