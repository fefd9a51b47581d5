//! The peers' URLs (`docs/api.md`, "Ping URLs", and the README's "Moving from
//! Healthchecks, Uptime Kuma or Tianji"): their own documented client lines, run
//! unchanged but for the host as real shell processes with the real `curl`, against
//! monitors created with the peers' token shapes (a Healthchecks UUID, a Kuma
//! 32-character token). What they leave behind is read back through the API and a
//! real webhook receiver: states, run durations, exit statuses, outputs, alerts.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::receiver::Receiver;
use crate::support::{
    Status, TestApp, expect_error, expect_json, fast_alert_retries, spawn_app, spawn_app_with,
};

/// A Healthchecks check's UUID, as its ping URL carries it.
const HC_UUID: &str = "5b2c9a1e-8f3d-4c6a-9e7b-2d1f0a3c4b5e";
/// An Uptime Kuma push token: 32 letters and digits, as Kuma makes them.
const KUMA_TOKEN: &str = "Xq7LmP2vR9sT4wZk8NcB3hJ6yD1fG5aE";

/// `line` run by `sh -c` with `$HOST` set to the server's `http://127.0.0.1:port`;
/// returns its exit code, asserting nothing was printed on standard error (the
/// Healthchecks lines are silent unless something fails).
async fn shell(app: &TestApp, line: &str) -> i32 {
    let (code, _, stderr) = shell_output(app, line).await;
    assert!(stderr.is_empty(), "{line}: stderr: {stderr}");
    code
}

/// `line` run by `sh -c` as [`shell`] does: its exit code, standard output and error.
async fn shell_output(app: &TestApp, line: &str) -> (i32, String, String) {
    assert!(
        std::process::Command::new("curl")
            .arg("--version")
            .output()
            .is_ok_and(|output| output.status.success()),
        "these tests run the peers' documented curl lines: install curl"
    );
    let output = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(line)
        .env("HOST", &app.base_url)
        .kill_on_drop(true)
        .output()
        .await
        .expect("run sh");
    (
        output.status.code().expect("exited by itself"),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

async fn monitor_json(app: &TestApp, id: &str) -> Value {
    app.monitor_value(id).await
}

async fn create(app: &TestApp, body: Value) -> (String, String) {
    let monitor = app.create_monitor_from(&body).await;
    (monitor.id, monitor.push_token)
}

async fn webhook_channel(app: &TestApp, receiver: &Receiver) -> String {
    let response = app
        .api(Method::POST, "/api/channels")
        .json(&json!({"kind": "webhook", "name": "hook", "url": receiver.url("/hook")}))
        .send()
        .await
        .unwrap();
    expect_json(response, StatusCode::CREATED).await["id"]
        .as_str()
        .expect("channel id")
        .to_owned()
}

#[tokio::test]
async fn healthchecks_curl_line_keeps_a_uuid_monitor_up_by_every_method() {
    let app = spawn_app().await;
    let (id, token) = create(
        &app,
        json!({"name": "backup", "timeout_seconds": 3600, "push_token": HC_UUID}),
    )
    .await;
    assert_eq!(token, HC_UUID);
    // Healthchecks' documented line, with our host.
    let line = format!("curl -fsS -m 10 --retry 5 -o /dev/null $HOST/ping/{HC_UUID}");
    assert_eq!(shell(&app, &line).await, 0, "{line}");
    let shown = monitor_json(&app, &id).await;
    assert_eq!(shown["status"], "up", "{shown}");
    assert!(shown["last_success_at"].is_string(), "{shown}");

    for method in [Method::GET, Method::HEAD, Method::POST] {
        let response = app
            .client
            .request(method.clone(), app.url(&format!("/ping/{HC_UUID}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{method}");
        assert_eq!(response.headers()["ping-body-limit"], "10000", "{method}");
        let body = response.text().await.unwrap();
        if method == Method::HEAD {
            assert_eq!(body, "");
        } else {
            assert_eq!(body, r#"{"ok":true}"#, "{method}");
        }
    }
}

#[tokio::test]
async fn a_cron_line_with_start_and_its_exit_status_records_the_run_and_alerts() {
    let receiver = Receiver::start().await;
    let app = spawn_app_with(fast_alert_retries).await;
    let channel = webhook_channel(&app, &receiver).await;
    let (id, _) = create(
        &app,
        json!({"name": "nightly", "timeout_seconds": 86400, "push_token": HC_UUID,
               "channels": [channel]}),
    )
    .await;
    let ping = format!("curl -fsS -m 10 --retry 5 -o /dev/null $HOST/ping/{HC_UUID}");
    // Healthchecks' cron pattern: /start before the command, /$? after it.
    let failing = format!("{ping}/start && sh -c 'sleep 1; exit 3'; {ping}/$?");
    assert_eq!(shell(&app, &failing).await, 0, "{failing}");
    app.wait_for_status(&id, Status::Down, Duration::from_secs(10))
        .await;
    let shown = monitor_json(&app, &id).await;
    let last_run = &shown["last_run"];
    assert_eq!(last_run["exit_status"], 3, "{shown}");
    assert_eq!(last_run["outcome"], "failure", "{shown}");
    assert_eq!(last_run["reason"], "exit_status", "{shown}");
    assert_eq!(shown["down_reason"], "exit_status", "{shown}");
    let duration = last_run["duration_ms"].as_u64().expect("a duration");
    assert!(
        (1000..10_000).contains(&duration),
        "a run of `sleep 1` took {duration} ms: {shown}"
    );
    let alerts = receiver
        .wait_for_delivered(1, Duration::from_secs(10))
        .await;
    let down = alerts[0].json();
    assert_eq!(down["event"], "down", "{down}");
    assert_eq!(down["reason"], "exit_status", "{down}");
    assert_eq!(down["exit_status"], 3, "{down}");

    let succeeding = format!("{ping}/start && sh -c 'exit 0'; {ping}/$?");
    assert_eq!(shell(&app, &succeeding).await, 0, "{succeeding}");
    app.wait_for_status(&id, Status::Up, Duration::from_secs(10))
        .await;
    let shown = monitor_json(&app, &id).await;
    assert_eq!(shown["last_run"]["exit_status"], 0, "{shown}");
    assert_eq!(shown["last_run"]["outcome"], "success", "{shown}");
    let alerts = receiver
        .wait_for_delivered(2, Duration::from_secs(10))
        .await;
    assert_eq!(alerts.len(), 2, "one down, one up: {alerts:?}");
    assert_eq!(alerts[1].json()["event"], "up");
}

#[tokio::test]
async fn a_body_is_the_runs_output_cut_to_the_ping_body_limit() {
    let receiver = Receiver::start().await;
    let app = spawn_app_with(|config| {
        fast_alert_retries(config);
        config.ping_body_limit = 40;
    })
    .await;
    let channel = webhook_channel(&app, &receiver).await;
    let (id, _) = create(
        &app,
        json!({"name": "certbot", "timeout_seconds": 3600, "push_token": HC_UUID,
               "channels": [channel]}),
    )
    .await;
    // Healthchecks' documented way to send a command's output.
    let line = format!(
        "m=$(sh -c 'echo renewing certificates; echo certificate expired >&2; exit 1' 2>&1); \
         curl -fsS -m 10 --retry 5 --data-raw \"$m\" $HOST/ping/{HC_UUID}/fail"
    );
    assert_eq!(shell(&app, &line).await, 0, "{line}");
    app.wait_for_status(&id, Status::Down, Duration::from_secs(10))
        .await;
    let shown = monitor_json(&app, &id).await;
    let excerpt = shown["last_run"]["output_excerpt"]
        .as_str()
        .expect("output");
    assert_eq!(
        excerpt, "renewing certificates\ncertificate expire",
        "{shown}"
    );
    let alert = receiver
        .wait_for_delivered(1, Duration::from_secs(10))
        .await[0]
        .json();
    assert_eq!(alert["output"], excerpt, "{alert}");

    // A log: recorded, the state unchanged; the header tells the limit.
    let response = app
        .client
        .post(app.url(&format!("/ping/{HC_UUID}/log")))
        .header("content-type", "application/json")
        .body(r#"{"progress": "half way through the second volume"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["ping-body-limit"], "40");
    expect_json(response, StatusCode::OK).await;
    let response = app
        .api(Method::GET, &format!("/api/monitors/{id}/events?limit=50"))
        .send()
        .await
        .unwrap();
    let events = expect_json(response, StatusCode::OK).await;
    let newest = events["events"]
        .as_array()
        .expect("events")
        .iter()
        .find(|event| event["kind"] == "log")
        .unwrap_or_else(|| panic!("no log event: {events}"));
    assert_eq!(
        newest["output"], r#"{"progress": "half way through the secon"#,
        "{newest}"
    );
    assert_eq!(monitor_json(&app, &id).await["status"], "down");
}

#[tokio::test]
async fn run_ids_tell_concurrent_runs_apart() {
    let app = spawn_app().await;
    let (id, _) = create(
        &app,
        json!({"name": "worker", "timeout_seconds": 3600, "push_token": HC_UUID}),
    )
    .await;
    let first = "0b0e3c52-6f0f-4c1b-a0e5-6a3b3c7d9a11";
    let second = "7d5e2f10-3a4b-4c5d-8e6f-7a8b9c0d1e2f";
    let ping = format!("curl -fsS -m 10 --retry 5 -o /dev/null $HOST/ping/{HC_UUID}");
    let line = format!(
        "{ping}/start?rid={first} && {ping}/start?rid={second} && sleep 1 && \
         {ping}/0?rid={second}"
    );
    assert_eq!(shell(&app, &line).await, 0, "{line}");
    let shown = monitor_json(&app, &id).await;
    assert_eq!(shown["status"], "up", "{shown}");
    assert_eq!(
        shown["open_runs"], 1,
        "the first run is still open: {shown}"
    );
    assert_eq!(shown["current_run"]["rid"], first, "{shown}");
    assert!(
        shown["last_run"]["duration_ms"].as_u64().expect("duration") >= 1000,
        "{shown}"
    );
}

#[tokio::test]
async fn bad_ping_urls_are_400_unknown_tokens_404_and_every_answer_tells_the_limit() {
    let app = spawn_app().await;
    create(
        &app,
        json!({"name": "job", "timeout_seconds": 3600, "push_token": HC_UUID}),
    )
    .await;
    for (path, expected) in [
        (format!("/ping/{HC_UUID}/256"), StatusCode::BAD_REQUEST),
        (format!("/ping/{HC_UUID}/-1"), StatusCode::BAD_REQUEST),
        (format!("/ping/{HC_UUID}/1.5"), StatusCode::BAD_REQUEST),
        (format!("/ping/{HC_UUID}/stop"), StatusCode::BAD_REQUEST),
        (
            format!("/ping/{HC_UUID}/start?rid=x"),
            StatusCode::BAD_REQUEST,
        ),
        // Checked before the token is looked at.
        (
            "/ping/not-a-token-at-all/256".to_owned(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/ping/3a6e2c1d-0000-4000-8000-000000000000".to_owned(),
            StatusCode::NOT_FOUND,
        ),
        (
            "/ping/3a6e2c1d-0000-4000-8000-000000000000/0".to_owned(),
            StatusCode::NOT_FOUND,
        ),
        ("/ping/%ff".to_owned(), StatusCode::NOT_FOUND),
    ] {
        let response = app.client.get(app.url(&path)).send().await.unwrap();
        assert_eq!(response.headers()["ping-body-limit"], "10000", "{path}");
        expect_error(response, expected).await;
    }
    let response = app
        .client
        .delete(app.url(&format!("/ping/{HC_UUID}")))
        .send()
        .await
        .unwrap();
    expect_error(response, StatusCode::METHOD_NOT_ALLOWED).await;
}

/// A native token has a ping key's shape (22 URL-safe base64 characters), and
/// `/ping/{token}/256` was read as a ping key and the slug `256`: a 404 "no monitor
/// has this ping key and slug" (counted as a guess) instead of the 400 `docs/api.md`
/// gives a number after a token.
#[tokio::test]
async fn an_exit_status_above_255_after_a_native_token_is_a_400_not_a_slug() {
    let app = spawn_app().await;
    let (id, token) = create(&app, json!({"name": "job", "timeout_seconds": 3600})).await;
    assert_eq!(token.len(), 22, "a native token: {token}");
    for number in ["256", "007256", "99999999999999999999"] {
        let response = app
            .client
            .get(app.url(&format!("/ping/{token}/{number}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.headers()["ping-body-limit"], "10000", "{number}");
        let error = expect_error(response, StatusCode::BAD_REQUEST).await;
        assert!(
            error.starts_with("an exit status is a whole number from 0 to 255"),
            "{number}: {error}"
        );
    }
    let response = app
        .client
        .get(app.url(&format!("/ping/{token}/3")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let monitor = monitor_json(&app, &id).await;
    assert_eq!(
        (&monitor["status"], &monitor["down_reason"]),
        (&json!("down"), &json!("exit_status"))
    );
}

#[tokio::test]
async fn uptime_kumas_push_line_keeps_a_kuma_token_monitor_up_and_ping_is_the_value() {
    let app = spawn_app().await;
    let (id, token) = create(
        &app,
        json!({"name": "kuma", "timeout_seconds": 60, "push_token": KUMA_TOKEN}),
    )
    .await;
    assert_eq!(token, KUMA_TOKEN);
    // Kuma's push monitor shows this line, its `ping=` empty.
    let line = format!("curl \"$HOST/api/push/{KUMA_TOKEN}?status=up&msg=OK&ping=\"");
    let (code, stdout, _) = shell_output(&app, &line).await;
    assert_eq!((code, stdout.as_str()), (0, r#"{"ok":true}"#), "{line}");
    let monitor = app.get_monitor(&id).await;
    assert_eq!(monitor.status, Status::Up);
    assert_eq!(monitor.last_msg.as_deref(), Some("OK"));
    assert_eq!(monitor.last_value, None);

    let line = format!("curl -fsS \"$HOST/api/push/{KUMA_TOKEN}?status=up&msg=OK&ping=12.3\"");
    assert_eq!(shell(&app, &line).await, 0, "{line}");
    assert_eq!(app.get_monitor(&id).await.last_value, Some(12.3));
    app.push_ok(KUMA_TOKEN, &[("ping", "12.3"), ("value", "7")])
        .await;
    assert_eq!(
        app.get_monitor(&id).await.last_value,
        Some(7.0),
        "value wins"
    );

    let line = format!("curl -fsS \"$HOST/api/push/{KUMA_TOKEN}?status=down&msg=disk%20full\"");
    assert_eq!(shell(&app, &line).await, 0, "{line}");
    let monitor = app.get_monitor(&id).await;
    assert_eq!(monitor.status, Status::Down);
    assert_eq!(monitor.last_msg.as_deref(), Some("disk full"));

    // Only up and down: anything else is refused, not taken as down.
    let error = expect_error(
        app.push(KUMA_TOKEN, &[("status", "pending")]).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(error.contains("status"), "{error}");
    let error = expect_error(
        app.push(KUMA_TOKEN, &[("ping", "fast")]).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(error.starts_with("ping must be"), "{error}");
}

/// `GET /api/settings` with the admin token: the settings object.
async fn settings(app: &TestApp) -> Value {
    let response = app.api(Method::GET, "/api/settings").send().await.unwrap();
    expect_json(response, StatusCode::OK).await
}

fn ping_key(settings: &Value) -> String {
    let key = settings["ping_key"]
        .as_str()
        .expect("a ping key")
        .to_owned();
    assert_eq!(key.len(), 22, "{settings}");
    key
}

#[tokio::test]
async fn slug_urls_go_by_the_ping_key_which_survives_restarts_and_rotates() {
    let app = spawn_app().await;
    let shown = settings(&app).await;
    let key = ping_key(&shown);
    assert_eq!(
        shown["ping_url_prefix"],
        format!("{}/ping/{key}", app.base_url),
        "{shown}"
    );
    assert_eq!(shown["ping_auto_create"], false, "{shown}");
    let (id, _) = create(
        &app,
        json!({"name": "db backup", "timeout_seconds": 3600, "slug": "db-backup"}),
    )
    .await;
    assert_eq!(monitor_json(&app, &id).await["slug"], "db-backup");
    // Healthchecks' cron line, with a slug URL.
    let ping = format!("curl -fsS -m 10 --retry 5 -o /dev/null $HOST/ping/{key}/db-backup");
    let line = format!("{ping}/start && sh -c 'exit 4'; {ping}/$?");
    assert_eq!(shell(&app, &line).await, 0, "{line}");
    let shown = monitor_json(&app, &id).await;
    assert_eq!(shown["status"], "down", "{shown}");
    assert_eq!(shown["last_run"]["exit_status"], 4, "{shown}");
    assert_eq!(shell(&app, &ping).await, 0, "{ping}");
    assert_eq!(monitor_json(&app, &id).await["status"], "up");

    // Kept across a restart, and `pushmon check` finds the record equal to its log.
    let stopped = app.shutdown().await;
    crate::support::check_store(stopped.data_dir.path());
    let app = stopped.start().await;
    assert_eq!(ping_key(&settings(&app).await), key);

    // Only the admin sees or rotates it.
    let response = app
        .api(Method::POST, "/api/keys")
        .json(&json!({"name": "ci", "scope": "write"}))
        .send()
        .await
        .unwrap();
    let api_key = expect_json(response, StatusCode::CREATED).await["key"]
        .as_str()
        .expect("secret")
        .to_owned();
    for (method, path) in [
        (Method::GET, "/api/settings"),
        (Method::POST, "/api/settings/ping-key/rotate"),
    ] {
        let response = app
            .client
            .request(method.clone(), app.url(path))
            .bearer_auth(&api_key)
            .send()
            .await
            .unwrap();
        expect_error(response, StatusCode::FORBIDDEN).await;
        let response = app
            .client
            .request(method, app.url(path))
            .send()
            .await
            .unwrap();
        expect_error(response, StatusCode::UNAUTHORIZED).await;
    }

    let response = app
        .api(Method::POST, "/api/settings/ping-key/rotate")
        .send()
        .await
        .unwrap();
    let rotated = ping_key(&expect_json(response, StatusCode::OK).await);
    assert_ne!(rotated, key);
    assert_eq!(ping_key(&settings(&app).await), rotated);
    app.get_error(&format!("/ping/{key}/db-backup"), StatusCode::NOT_FOUND)
        .await;
    let line =
        format!("curl -fsS -m 10 --retry 5 -o /dev/null $HOST/ping/{rotated}/db-backup/fail");
    assert_eq!(shell(&app, &line).await, 0, "{line}");
    assert_eq!(monitor_json(&app, &id).await["status"], "down");
    let stopped = app.shutdown().await;
    crate::support::check_store(stopped.data_dir.path());
    let app = stopped.start().await;
    assert_eq!(ping_key(&settings(&app).await), rotated);
}

#[tokio::test]
async fn slugs_are_checked_and_unique_and_can_be_changed_or_taken_away() {
    let app = spawn_app().await;
    let key = ping_key(&settings(&app).await);
    let (first, _) = create(
        &app,
        json!({"name": "one", "timeout_seconds": 60, "slug": "nightly"}),
    )
    .await;
    for slug in [
        json!("Nightly"),
        json!("a_b"),
        json!(""),
        json!("a".repeat(101)),
        json!(7),
    ] {
        let error = expect_error(
            app.post_monitor(&json!({"name": "two", "timeout_seconds": 60, "slug": slug}))
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert!(error.starts_with("slug must be"), "{slug}: {error}");
    }
    let error = expect_error(
        app.post_monitor(&json!({"name": "two", "timeout_seconds": 60, "slug": "nightly"}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(error.contains("slug is already used"), "{error}");
    let (second, _) = create(
        &app,
        json!({"name": "two", "timeout_seconds": 60, "slug": "weekly"}),
    )
    .await;
    let taken = app
        .patch_monitor(&second, &json!({"slug": "nightly"}))
        .await;
    expect_error(taken, StatusCode::UNPROCESSABLE_ENTITY).await;

    // Moved: the old slug stops working, the new one works.
    let moved = app.patch_monitor(&first, &json!({"slug": "daily"})).await;
    assert_eq!(expect_json(moved, StatusCode::OK).await["slug"], "daily");
    app.get_error(&format!("/ping/{key}/nightly"), StatusCode::NOT_FOUND)
        .await;
    let ok = app
        .client
        .post(app.url(&format!("/ping/{key}/daily")))
        .send()
        .await
        .unwrap();
    expect_json(ok, StatusCode::OK).await;
    assert_eq!(app.get_monitor(&first).await.status, Status::Up);
    // Free again: another monitor may take it.
    let reused = app
        .patch_monitor(&second, &json!({"slug": "nightly"}))
        .await;
    expect_json(reused, StatusCode::OK).await;
    // Taken away: no slug URL at all.
    let cleared = app.patch_monitor(&first, &json!({"slug": null})).await;
    assert!(
        expect_json(cleared, StatusCode::OK)
            .await
            .get("slug")
            .is_none()
    );
    app.get_error(&format!("/ping/{key}/daily"), StatusCode::NOT_FOUND)
        .await;
    // A deleted monitor's slug stops working.
    expect_json(app.delete_monitor(&second).await, StatusCode::NO_CONTENT).await;
    app.get_error(&format!("/ping/{key}/nightly"), StatusCode::NOT_FOUND)
        .await;
    // Not a slug: 400, before anything is looked up.
    app.get_error(
        &format!("/ping/{key}/Not_A_Slug/start"),
        StatusCode::BAD_REQUEST,
    )
    .await;
}

#[tokio::test]
async fn create_1_makes_a_monitor_only_with_ping_auto_create() {
    let app = spawn_app().await;
    let key = ping_key(&settings(&app).await);
    let url = format!("$HOST/ping/{key}/new-job?create=1");
    let error = app
        .get_error(
            &format!("/ping/{key}/new-job?create=1"),
            StatusCode::NOT_FOUND,
        )
        .await;
    assert!(error.contains("--ping-auto-create"), "{error}");
    // curl -f fails on the 404.
    assert_eq!(
        shell_output(&app, &format!("curl -fsS -m 10 -o /dev/null \"{url}\""))
            .await
            .0,
        22
    );
    assert!(app.list_monitors().await.is_empty());

    let app = spawn_app_with(|config| config.ping_auto_create = true).await;
    let key = ping_key(&settings(&app).await);
    assert_eq!(settings(&app).await["ping_auto_create"], true);
    // Without create=1 an unknown slug is still 404.
    app.get_error(&format!("/ping/{key}/new-job"), StatusCode::NOT_FOUND)
        .await;
    let ping = format!("curl -fsS -m 10 --retry 5 -o /dev/null \"$HOST/ping/{key}/new-job");
    let line = format!("{ping}/start?create=1\" && sh -c 'exit 0'; {ping}/$??create=1\"");
    assert_eq!(shell(&app, &line).await, 0, "{line}");
    let monitors = app.list_monitors().await;
    assert_eq!(monitors.len(), 1, "created once: {monitors:?}");
    let shown = monitor_json(&app, &monitors[0].id).await;
    assert_eq!(shown["name"], "new-job", "{shown}");
    assert_eq!(shown["slug"], "new-job", "{shown}");
    assert_eq!(shown["status"], "up", "{shown}");
    assert_eq!(shown["timeout_seconds"], 90_000, "{shown}");
    assert_eq!(shown["interval_seconds"], 86_400, "{shown}");
    assert_eq!(shown["last_run"]["exit_status"], 0, "{shown}");
    // A wrong key creates nothing.
    let wrong = "AAAAAAAAAAAAAAAAAAAAAA";
    app.get_error(
        &format!("/ping/{wrong}/other-job?create=1"),
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(app.list_monitors().await.len(), 1);
}
