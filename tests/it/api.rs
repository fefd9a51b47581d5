//! Management API (`docs/api.md`): authentication, monitor CRUD, validation, token rotation,
//! history paging, and the exact shapes of Monitor and Event.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::support::{Status, expect_error, expect_json, of_kind, spawn_app, spawn_app_with};

/// An RFC 3339 timestamp in UTC.
fn assert_utc_timestamp(value: &Value, what: &str) {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("{what} is not a string: {value}"));
    let parsed = OffsetDateTime::parse(text, &Rfc3339)
        .unwrap_or_else(|error| panic!("{what} {text:?} is not RFC 3339: {error}"));
    assert!(parsed.offset().is_utc(), "{what} {text:?} is not UTC");
}

fn keys(value: &Value) -> BTreeSet<&str> {
    value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .map(String::as_str)
        .collect()
}

const MONITOR_KEYS: [&str; 46] = [
    "id",
    "name",
    "status",
    "timeout_seconds",
    "interval_seconds",
    "push_token",
    "push_url",
    "channels",
    "created_at",
    "last_heartbeat_at",
    "last_status_change_at",
    "last_msg",
    "last_value",
    // Jobs (`docs/api.md`): configuration, then state.
    "schedule",
    "timezone",
    "grace_seconds",
    "max_runtime_seconds",
    "min_runtime_seconds",
    "failure_threshold",
    "recovery_threshold",
    "realert_every_seconds",
    "maintenance",
    "next_due_at",
    "next_deadline_at",
    "last_success_at",
    "current_run",
    "open_runs",
    "last_run",
    "consecutive_failures",
    "consecutive_successes",
    "down_reason",
    "in_maintenance",
    "maintenance_until",
    // Muting (`docs/api.md`, "Muting").
    "muted",
    // Labels (`docs/api.md`, "Labels").
    "labels",
    "severity",
    "allowed_sources",
    "signed",
    // Fleets and dependencies (`docs/states.md`, "Fleets", "Dependencies").
    "min_instances",
    "instance_retention_seconds",
    "parents",
    "dependency_grace_seconds",
    "instances",
    "instances_reporting",
    "missing_instances",
    "held_alert",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_or_wrong_admin_token_is_401() {
    let app = spawn_app().await;
    let monitor = app.create_monitor("guarded", 60).await;
    let monitor_path = format!("/api/monitors/{}", monitor.id);
    let requests = [
        (Method::GET, "/api/monitors".to_owned()),
        (Method::POST, "/api/monitors".to_owned()),
        (Method::GET, monitor_path.clone()),
        (Method::PATCH, monitor_path.clone()),
        (Method::DELETE, monitor_path.clone()),
        (Method::POST, format!("{monitor_path}/rotate-token")),
        (Method::POST, format!("{monitor_path}/pause")),
        (Method::GET, format!("{monitor_path}/events")),
    ];
    for (method, path) in requests {
        let url = app.url(&path);
        let body = json!({"name": "sneaky", "timeout_seconds": 60});
        let missing = app
            .client
            .request(method.clone(), &url)
            .json(&body)
            .send()
            .await
            .unwrap();
        expect_error(missing, StatusCode::UNAUTHORIZED).await;
        let wrong = app
            .client
            .request(method.clone(), &url)
            .bearer_auth("not-the-admin-token-at-all")
            .json(&body)
            .send()
            .await
            .unwrap();
        expect_error(wrong, StatusCode::UNAUTHORIZED).await;
        let not_bearer = app
            .client
            .request(method.clone(), &url)
            .header("authorization", app.admin_token.clone())
            .json(&body)
            .send()
            .await
            .unwrap();
        expect_error(not_bearer, StatusCode::UNAUTHORIZED).await;
    }
    // Nothing above took effect.
    let monitors = app.list_monitors().await;
    assert_eq!(monitors, vec![app.get_monitor(&monitor.id).await]);
    assert_eq!(monitors[0].name, "guarded");
    assert_eq!(monitors[0].status, Status::Pending);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_answers_201_with_the_exact_monitor_shape() {
    let app = spawn_app().await;
    let response = app
        .post_monitor(&json!({"name": "nightly backup", "timeout_seconds": 90}))
        .await;
    let created = expect_json(response, StatusCode::CREATED).await;

    assert_eq!(keys(&created), MONITOR_KEYS.into_iter().collect());
    let id = created["id"].as_str().unwrap();
    uuid::Uuid::parse_str(id).unwrap_or_else(|_| panic!("id {id:?} is not a UUID"));
    assert_eq!(created["name"], "nightly backup");
    assert_eq!(created["status"], "pending");
    assert_eq!(created["timeout_seconds"], 90);
    assert_eq!(
        created["interval_seconds"], 90,
        "interval defaults to timeout"
    );
    assert_eq!(created["channels"], json!([]));
    assert_utc_timestamp(&created["created_at"], "created_at");
    for absent in [
        "last_heartbeat_at",
        "last_status_change_at",
        "last_msg",
        "last_value",
        "schedule",
        "timezone",
        "grace_seconds",
        "max_runtime_seconds",
        "min_runtime_seconds",
        "realert_every_seconds",
        "last_success_at",
        "current_run",
        "last_run",
        "down_reason",
        "maintenance_until",
        "muted",
    ] {
        assert_eq!(created[absent], Value::Null, "{absent} of a new monitor");
    }
    assert_eq!(
        (
            &created["failure_threshold"],
            &created["recovery_threshold"]
        ),
        (&json!(1), &json!(1))
    );
    assert_eq!(created["maintenance"], json!([]));
    assert_eq!(created["in_maintenance"], false);
    assert_eq!(
        (
            &created["open_runs"],
            &created["consecutive_failures"],
            &created["consecutive_successes"]
        ),
        (&json!(0), &json!(0), &json!(0))
    );
    // Due after its interval, down after its timeout, both counted from its creation.
    assert_utc_timestamp(&created["next_due_at"], "next_due_at");
    assert_eq!(created["next_due_at"], created["next_deadline_at"]);

    let token = created["push_token"].as_str().unwrap();
    assert!(token.len() >= 22, "push token {token:?} is under 128 bits");
    assert!(
        token
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
        "push token {token:?} is not URL-safe"
    );
    assert_eq!(
        created["push_url"],
        format!("{}/api/push/{token}", app.base_url),
        "push_url defaults to http://<listen>"
    );

    // GET answers the same Monitor, and tokens differ between monitors.
    let fetched = expect_json(
        app.api(Method::GET, &format!("/api/monitors/{id}"))
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(fetched, created);
    let other = app.create_monitor("other", 90).await;
    assert_ne!(other.push_token, token);
    assert_ne!(other.id, id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_url_uses_the_public_url() {
    let app = spawn_app_with(|config| {
        config.public_url = Some("https://pm.example.com".to_owned());
    })
    .await;
    let monitor = app.create_monitor("public", 60).await;
    assert_eq!(
        monitor.push_url,
        format!("https://pm.example.com/api/push/{}", monitor.push_token)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_fields_after_a_heartbeat_have_the_right_shape() {
    let app = spawn_app().await;
    let monitor = app.create_monitor("fed", 60).await;
    app.push_ok(&monitor.push_token, &[("msg", "hello"), ("value", "42.25")])
        .await;

    let body = expect_json(
        app.api(Method::GET, &format!("/api/monitors/{}", monitor.id))
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(keys(&body), MONITOR_KEYS.into_iter().collect());
    assert_eq!(body["status"], "up");
    assert_eq!(body["last_msg"], "hello");
    assert_eq!(body["last_value"], 42.25);
    assert_utc_timestamp(&body["last_heartbeat_at"], "last_heartbeat_at");
    assert_utc_timestamp(&body["last_status_change_at"], "last_status_change_at");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_shapes_are_exact() {
    let app = spawn_app().await;
    let monitor = app.create_monitor("shapes", 60).await;
    app.push_ok(
        &monitor.push_token,
        &[("status", "down"), ("msg", "boom"), ("value", "7")],
    )
    .await;

    let body = expect_json(
        app.events_response(&monitor.id, None, None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(keys(&body), BTreeSet::from(["events"]));
    let events = body["events"].as_array().unwrap();
    let allowed_kinds = [
        "heartbeat",
        "down",
        "up",
        "paused",
        "resumed",
        "created",
        "updated",
        "token_rotated",
    ];
    for event in events {
        assert!(event["seq"].is_u64(), "seq is not an integer: {event}");
        assert_utc_timestamp(&event["at"], "event at");
        let kind = event["kind"].as_str().unwrap();
        assert!(allowed_kinds.contains(&kind), "unknown kind in {event}");
    }
    let heartbeat = events
        .iter()
        .find(|event| event["kind"] == "heartbeat")
        .expect("a heartbeat event");
    assert_eq!(
        keys(heartbeat),
        BTreeSet::from(["seq", "at", "kind", "status", "msg", "value", "instance"])
    );
    assert_eq!(heartbeat["status"], "down");
    assert_eq!(heartbeat["msg"], "boom");
    assert_eq!(heartbeat["value"], 7.0);
    let down = events
        .iter()
        .find(|event| event["kind"] == "down")
        .expect("a down event");
    assert_eq!(keys(down), BTreeSet::from(["seq", "at", "kind", "reason"]));
    assert_eq!(down["reason"], "manual");
    assert_eq!(
        events.last().unwrap()["kind"],
        "created",
        "the oldest event is the creation"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interval_defaults_to_timeout_and_can_be_set() {
    let app = spawn_app().await;
    let defaulted = app.create_monitor("defaulted", 300).await;
    assert_eq!(defaulted.interval_seconds, 300);
    let explicit = app
        .create_monitor_from(
            &json!({"name": "explicit", "timeout_seconds": 300, "interval_seconds": 60}),
        )
        .await;
    assert_eq!(explicit.timeout_seconds, 300);
    assert_eq!(explicit.interval_seconds, 60);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_get_patch_and_delete() {
    let app = spawn_app().await;
    let first = app.create_monitor("first", 60).await;
    let second = app.create_monitor("second", 120).await;

    let mut listed = app.list_monitors().await;
    listed.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(listed, vec![first.clone(), second.clone()]);
    assert_eq!(app.get_monitor(&first.id).await, first);

    let response = app
        .patch_monitor(
            &first.id,
            &json!({"name": "first, renamed", "timeout_seconds": 600, "interval_seconds": 30}),
        )
        .await;
    let patched = expect_json(response, StatusCode::OK).await;
    assert_eq!(patched["name"], "first, renamed");
    assert_eq!(patched["timeout_seconds"], 600);
    assert_eq!(patched["interval_seconds"], 30);
    assert_eq!(patched["push_token"], first.push_token.as_str());
    assert_eq!(patched["id"], first.id.as_str());
    assert_eq!(patched["created_at"], first.created_at.as_str());
    let fetched = app.get_monitor(&first.id).await;
    assert_eq!(fetched.name, "first, renamed");
    assert_eq!(fetched.timeout_seconds, 600);
    assert_eq!(fetched.interval_seconds, 30);

    // A partial patch leaves the other fields alone.
    let response = app
        .patch_monitor(&first.id, &json!({"name": "only the name"}))
        .await;
    expect_json(response, StatusCode::OK).await;
    let fetched = app.get_monitor(&first.id).await;
    assert_eq!(fetched.name, "only the name");
    assert_eq!(fetched.timeout_seconds, 600);
    assert_eq!(fetched.interval_seconds, 30);
    assert_eq!(of_kind(&app.events(&first.id).await, "updated").len(), 2);

    let response = app.delete_monitor(&first.id).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert!(
        response.bytes().await.unwrap().is_empty(),
        "204 has no body"
    );
    let response = app
        .api(Method::GET, &format!("/api/monitors/{}", first.id))
        .send()
        .await
        .unwrap();
    expect_error(response, StatusCode::NOT_FOUND).await;
    assert_eq!(
        expect_json(
            app.push(&first.push_token, &[]).await,
            StatusCode::NOT_FOUND
        )
        .await,
        json!({"error": "unknown push token"}),
        "a deleted monitor's token stops working at once"
    );
    expect_error(app.delete_monitor(&first.id).await, StatusCode::NOT_FOUND).await;
    assert_eq!(app.list_monitors().await, vec![second.clone()]);
    app.push_ok(&second.push_token, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_id_is_404() {
    let app = spawn_app().await;
    app.create_monitor("exists", 60).await;
    // A well-formed v7 id that no monitor has.
    let unknown = "0195f2a4-6b1c-7d3e-9f40-123456789abc";
    let path = format!("/api/monitors/{unknown}");
    let requests = [
        (Method::GET, path.clone()),
        (Method::PATCH, path.clone()),
        (Method::DELETE, path.clone()),
        (Method::POST, format!("{path}/rotate-token")),
        (Method::POST, format!("{path}/pause")),
        (Method::POST, format!("{path}/resume")),
        (Method::GET, format!("{path}/events")),
        // Not an id at all, so not a known one either.
        (Method::GET, "/api/monitors/not-a-uuid".to_owned()),
        (Method::GET, "/api/monitors/not-a-uuid/events".to_owned()),
    ];
    for (method, path) in requests {
        let response = app
            .api(method.clone(), &path)
            .json(&json!({"name": "x"}))
            .send()
            .await
            .unwrap();
        let status = response.status();
        assert_eq!(
            status,
            StatusCode::NOT_FOUND,
            "{method} {path} gave {status}"
        );
        expect_error(response, StatusCode::NOT_FOUND).await;
    }
}

/// A create with `body` must be rejected with 422 naming `field`.
async fn assert_rejected(app: &crate::support::TestApp, body: Value, field: &str) {
    let response = app.post_monitor(&body).await;
    let status = response.status();
    let error = expect_error(response, StatusCode::UNPROCESSABLE_ENTITY)
        .await
        .to_lowercase();
    assert!(
        error.contains(field),
        "create {body} gave {status} {error:?}, which does not name {field}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_create_bodies_name_the_field() {
    let app = spawn_app().await;
    assert_rejected(&app, json!({"name": "", "timeout_seconds": 60}), "name").await;
    assert_rejected(
        &app,
        json!({"name": "n".repeat(201), "timeout_seconds": 60}),
        "name",
    )
    .await;
    assert_rejected(&app, json!({"timeout_seconds": 60}), "name").await;
    assert_rejected(&app, json!({"name": 7, "timeout_seconds": 60}), "name").await;
    assert_rejected(
        &app,
        json!({"name": "t", "timeout_seconds": 0}),
        "timeout_seconds",
    )
    .await;
    assert_rejected(
        &app,
        json!({"name": "t", "timeout_seconds": 31_536_001}),
        "timeout_seconds",
    )
    .await;
    assert_rejected(
        &app,
        json!({"name": "t", "timeout_seconds": -5}),
        "timeout_seconds",
    )
    .await;
    assert_rejected(
        &app,
        json!({"name": "t", "timeout_seconds": 1.5}),
        "timeout_seconds",
    )
    .await;
    assert_rejected(
        &app,
        json!({"name": "t", "timeout_seconds": "60"}),
        "timeout_seconds",
    )
    .await;
    assert_rejected(&app, json!({"name": "t"}), "timeout_seconds").await;
    assert!(
        app.list_monitors().await.is_empty(),
        "nothing invalid was created"
    );

    // The boundaries themselves are valid; name length counts chars, not bytes.
    for (name, timeout) in [
        ("n".repeat(200), 1),
        ("é".repeat(200), 31_536_000),
        ("x".to_owned(), 31_536_000),
    ] {
        let monitor = app
            .create_monitor_from(&json!({"name": name, "timeout_seconds": timeout}))
            .await;
        assert_eq!(monitor.name, name);
        assert_eq!(monitor.timeout_seconds, timeout);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_json_is_400() {
    let app = spawn_app().await;
    let response = app
        .api(Method::POST, "/api/monitors")
        .header("content-type", "application/json")
        .body(r#"{"name": "broken", "timeout_seconds": "#)
        .send()
        .await
        .unwrap();
    expect_error(response, StatusCode::BAD_REQUEST).await;
    let monitor = app.create_monitor("target", 60).await;
    let response = app
        .api(Method::PATCH, &format!("/api/monitors/{}", monitor.id))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    expect_error(response, StatusCode::BAD_REQUEST).await;
    assert_eq!(app.list_monitors().await, vec![monitor]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_patches_name_the_field_and_change_nothing() {
    let app = spawn_app().await;
    let monitor = app.create_monitor("steady", 60).await;
    for (body, field) in [
        (json!({"name": ""}), "name"),
        (json!({"name": "n".repeat(201)}), "name"),
        (json!({"timeout_seconds": 0}), "timeout_seconds"),
        (json!({"timeout_seconds": 31_536_001}), "timeout_seconds"),
        (json!({"timeout_seconds": 2.5}), "timeout_seconds"),
    ] {
        let response = app.patch_monitor(&monitor.id, &body).await;
        let error = expect_error(response, StatusCode::UNPROCESSABLE_ENTITY)
            .await
            .to_lowercase();
        assert!(
            error.contains(field),
            "patch {body} gave {error:?}, which does not name {field}"
        );
    }
    assert_eq!(app.get_monitor(&monitor.id).await, monitor);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_token_retires_the_old_token_at_once() {
    let app = spawn_app().await;
    let monitor = app.create_monitor("rotating", 3600).await;
    app.push_ok(&monitor.push_token, &[("msg", "old token")])
        .await;

    let rotated = app.rotate_token(&monitor.id).await;
    assert_ne!(rotated.push_token, monitor.push_token);
    assert_eq!(rotated.id, monitor.id);
    assert_eq!(
        rotated.push_url,
        format!("{}/api/push/{}", app.base_url, rotated.push_token)
    );
    assert_eq!(
        expect_json(
            app.push(&monitor.push_token, &[]).await,
            StatusCode::NOT_FOUND
        )
        .await,
        json!({"error": "unknown push token"})
    );
    app.push_ok(&rotated.push_token, &[("msg", "new token")])
        .await;
    assert_eq!(
        app.get_monitor(&monitor.id).await.last_msg.as_deref(),
        Some("new token")
    );
    assert_eq!(
        app.get_monitor(&monitor.id).await.push_token,
        rotated.push_token
    );
    assert_eq!(
        of_kind(&app.events(&monitor.id).await, "token_rotated").len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_page_back_with_limit_and_before() {
    let app = spawn_app().await;
    let monitor = app.create_monitor("paged", 3600).await;
    for n in 0..25 {
        app.push_ok(&monitor.push_token, &[("msg", &format!("hb-{n}"))])
            .await;
    }
    let everything = app.events(&monitor.id).await;
    assert_eq!(of_kind(&everything, "heartbeat").len(), 25);
    assert!(
        everything.windows(2).all(|pair| pair[0].seq > pair[1].seq),
        "newest first, seqs strictly decreasing: {everything:?}"
    );
    assert_eq!(everything.last().unwrap().kind, "created");

    let msgs = |events: &[crate::support::Event]| -> Vec<String> {
        events
            .iter()
            .filter_map(|event| event.msg.clone())
            .collect()
    };
    let first = app.events_page(&monitor.id, Some(10), None).await;
    assert_eq!(first.len(), 10);
    assert_eq!(first[..], everything[..10]);
    assert_eq!(msgs(&first)[0], "hb-24");

    let second = app
        .events_page(&monitor.id, Some(10), Some(first.last().unwrap().seq))
        .await;
    assert_eq!(second.len(), 10);
    assert_eq!(second[..], everything[10..20]);

    let third = app
        .events_page(&monitor.id, Some(10), Some(second.last().unwrap().seq))
        .await;
    assert_eq!(third[..], everything[20..]);
    assert_eq!(third.last().unwrap().kind, "created");

    let beyond = app
        .events_page(&monitor.id, Some(10), Some(third.last().unwrap().seq))
        .await;
    assert!(
        beyond.is_empty(),
        "nothing before the first event: {beyond:?}"
    );

    // `before` is exclusive of the seq given.
    let pivot = everything[5].seq;
    let after_pivot = app.events_page(&monitor.id, Some(3), Some(pivot)).await;
    assert_eq!(after_pivot[..], everything[6..9]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_limit_defaults_to_100_and_goes_up_to_1000() {
    let app = spawn_app_with(|config| {
        config.rate_limit.per_second = 1_000_000;
        config.rate_limit.burst = 1_000_000;
    })
    .await;
    let monitor = app.create_monitor("busy", 3600).await;
    let pushes = 1_050;

    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..16 {
        let api = (*app).clone();
        let token = monitor.push_token.clone();
        tasks.spawn(async move {
            for n in (worker..pushes).step_by(16) {
                api.push_ok(&token, &[("msg", &format!("hb-{n}"))]).await;
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }

    let default_page = app.events(&monitor.id).await;
    assert_eq!(default_page.len(), 100);
    let big_page = app.events_page(&monitor.id, Some(1000), None).await;
    assert_eq!(big_page.len(), 1000);
    assert_eq!(big_page[..100], default_page[..]);
    assert!(big_page.windows(2).all(|pair| pair[0].seq > pair[1].seq));

    let all = app.all_events(&monitor.id).await;
    assert_eq!(all[..1000], big_page[..]);
    let messages: BTreeSet<String> = of_kind(&all, "heartbeat")
        .iter()
        .map(|event| event.msg.clone().unwrap())
        .collect();
    assert_eq!(
        messages.len(),
        pushes,
        "every acknowledged heartbeat is in the history"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channels_are_created_listed_attached_and_deleted() {
    let app = spawn_app().await;
    let response = app
        .api(Method::POST, "/api/channels")
        .json(&json!({"kind": "webhook", "name": "ops", "url": "http://127.0.0.1:9/hook", "secret": "s3cret"}))
        .send()
        .await
        .unwrap();
    let channel = expect_json(response, StatusCode::CREATED).await;
    let channel_id = channel["id"].as_str().expect("channel id").to_owned();

    let listed = expect_json(
        app.api(Method::GET, "/api/channels").send().await.unwrap(),
        StatusCode::OK,
    )
    .await;
    assert!(listed.to_string().contains(&channel_id), "{listed}");

    let monitor = app
        .create_monitor_from(
            &json!({"name": "alerting", "timeout_seconds": 60, "channels": [channel_id]}),
        )
        .await;
    assert_eq!(monitor.channels, vec![channel_id.clone()]);

    let response = app
        .api(Method::DELETE, &format!("/api/channels/{channel_id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let listed = expect_json(
        app.api(Method::GET, "/api/channels").send().await.unwrap(),
        StatusCode::OK,
    )
    .await;
    assert!(!listed.to_string().contains(&channel_id), "{listed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsupported_method_is_405() {
    let app = spawn_app().await;
    for method in [Method::PUT, Method::DELETE] {
        let response = app.api(method, "/api/monitors").send().await.unwrap();
        expect_error(response, StatusCode::METHOD_NOT_ALLOWED).await;
    }
}

/// Issue 15: an `updated` event of a change of channels or tags showed only name,
/// interval and timeout, so the change itself was invisible. Created and updated events
/// show the whole configuration after the change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn created_and_updated_events_show_the_whole_configuration() {
    let app = spawn_app().await;
    let channel = app
        .api(Method::POST, "/api/channels")
        .json(&json!({"kind": "webhook", "name": "ops", "url": "http://127.0.0.1:9/hook"}))
        .send()
        .await
        .unwrap();
    let channel = expect_json(channel, StatusCode::CREATED).await["id"].clone();
    let monitor = app
        .create_monitor_from(&json!({"name": "configured", "timeout_seconds": 60, "tags": ["a"]}))
        .await;
    for patch in [json!({"channels": [channel]}), json!({"tags": ["a", "b"]})] {
        expect_json(app.patch_monitor(&monitor.id, &patch).await, StatusCode::OK).await;
    }
    let events = expect_json(
        app.events_response(&monitor.id, None, None).await,
        StatusCode::OK,
    )
    .await;
    let shown: Vec<Value> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .filter(|event| matches!(event["kind"].as_str(), Some("created" | "updated")))
        .map(|event| {
            let mut event = event.clone();
            let fields = event.as_object_mut().unwrap();
            for bookkeeping in ["seq", "at"] {
                fields.remove(bookkeeping);
            }
            event
        })
        .collect();
    let config = |kind: &str, channels: Value, tags: Value| {
        json!({
            "kind": kind, "name": "configured", "timeout_seconds": 60, "interval_seconds": 60,
            "channels": channels, "tags": tags, "key": null,
            "schedule": null, "timezone": null, "grace_seconds": null,
            "max_runtime_seconds": null, "min_runtime_seconds": null,
            "failure_threshold": 1, "recovery_threshold": 1, "realert_every_seconds": null,
            "maintenance": [], "slug": null, "labels": {}, "severity": "critical",
            "allowed_sources": [], "signed": false,
            "min_instances": null, "instance_retention_seconds": null, "parents": [],
            "dependency_grace_seconds": null,
        })
    };
    assert_eq!(
        shown,
        [
            config("created", json!([]), json!(["a"])),
            config("updated", json!([channel]), json!(["a"])),
            config("updated", json!([channel]), json!(["a", "b"])),
        ]
    );
}

/// Issue 15: mistyped fields were ignored (`"timeout": 5` beside `timeout_seconds`;
/// `PATCH {"status":"up"}` answered 200 and changed nothing). Every management body
/// refuses unknown fields with a 422 that names them, and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_fields_are_refused_naming_them() {
    let app = spawn_app().await;
    let error = expect_error(
        app.post_monitor(&json!({"name": "typo", "timeout_seconds": 60, "timeout": 5}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(error.contains("unknown field \"timeout\""), "{error}");
    assert!(app.list_monitors().await.is_empty(), "nothing was created");

    let monitor = app.create_monitor("kept", 60).await;
    for (patch, named) in [
        (json!({"status": "up"}), vec!["\"status\""]),
        (
            json!({"name": "renamed", "timeout": 5, "push_token": "x"}),
            vec!["\"timeout\"", "\"push_token\""],
        ),
    ] {
        let error = expect_error(
            app.patch_monitor(&monitor.id, &patch).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        for field in named {
            assert!(error.contains(field), "{error} should name {field}");
        }
    }
    assert_eq!(
        app.get_monitor(&monitor.id).await,
        monitor,
        "nothing changed"
    );
    assert!(of_kind(&app.events(&monitor.id).await, "updated").is_empty());

    for (path, body, field) in [
        (
            "/api/channels",
            json!({"kind": "webhook", "name": "ops", "uri": "http://127.0.0.1:9/"}),
            "\"uri\"",
        ),
        (
            "/api/channels",
            json!({"kind": "slack", "name": "ops", "url": "http://127.0.0.1:9/", "secret": "s"}),
            "\"secret\"",
        ),
        (
            "/api/keys",
            json!({"name": "ci", "scopes": "write"}),
            "\"scopes\"",
        ),
    ] {
        let response = app
            .api(Method::POST, path)
            .json(&body)
            .send()
            .await
            .unwrap();
        let error = expect_error(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert!(error.contains(field), "{path} {body}: {error}");
    }
    let channels = app.api(Method::GET, "/api/channels").send().await.unwrap();
    assert_eq!(
        expect_json(channels, StatusCode::OK).await,
        json!({"channels": []})
    );
    let keys = app.api(Method::GET, "/api/keys").send().await.unwrap();
    assert_eq!(expect_json(keys, StatusCode::OK).await, json!({"keys": []}));
}

/// Issue 14: names made only of NULs or zero-width characters were accepted, and so
/// were control characters inside a name. Monitors, channels and API keys refuse them
/// with a 422 naming `name`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invisible_and_control_character_names_are_refused_everywhere() {
    let app = spawn_app().await;
    let refused = [
        "\0",
        "\0\0\0",
        "\u{200B}",
        "\u{200B}\u{200D}\u{FEFF}\u{2060}",
        " \u{00A0}\u{3000}",
        "\u{202E}",
        "bell\u{7}",
        "line\nbreak",
        "c1\u{85}",
    ];
    for name in refused {
        for (path, body) in [
            (
                "/api/monitors",
                json!({"name": name, "timeout_seconds": 60}),
            ),
            (
                "/api/channels",
                json!({"kind": "webhook", "name": name, "url": "http://127.0.0.1:9/"}),
            ),
            ("/api/keys", json!({"name": name})),
        ] {
            let response = app
                .api(Method::POST, path)
                .json(&body)
                .send()
                .await
                .unwrap();
            let error = expect_error(response, StatusCode::UNPROCESSABLE_ENTITY).await;
            assert!(error.starts_with("name "), "{path} {name:?}: {error}");
        }
    }
    let monitor = app.create_monitor("visible", 60).await;
    let error = expect_error(
        app.patch_monitor(&monitor.id, &json!({"name": "\u{200B}\u{200C}"}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(error.starts_with("name "), "{error}");
    assert_eq!(app.list_monitors().await, vec![monitor]);
    // A visible name may still hold invisible characters beside visible ones.
    app.create_monitor("zero\u{200B}width", 60).await;
}

/// Issue 14: `interval_seconds` above `timeout_seconds` was accepted. It is refused
/// naming both fields; but lowering the timeout of a monitor whose interval is its
/// default (the timeout) still works, the interval following it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interval_above_the_timeout_is_refused_but_a_default_interval_follows_it() {
    let app = spawn_app().await;
    let error = expect_error(
        app.post_monitor(&json!({"name": "odd", "timeout_seconds": 60, "interval_seconds": 61}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(
        error.contains("interval_seconds") && error.contains("timeout_seconds"),
        "{error}"
    );
    assert!(app.list_monitors().await.is_empty());

    let defaulted = app.create_monitor("defaulted", 300).await;
    let patched = expect_json(
        app.patch_monitor(&defaulted.id, &json!({"timeout_seconds": 120}))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        (&patched["timeout_seconds"], &patched["interval_seconds"]),
        (&json!(120), &json!(120))
    );

    let own = app
        .create_monitor_from(
            &json!({"name": "own", "timeout_seconds": 300, "interval_seconds": 200}),
        )
        .await;
    for patch in [
        json!({"timeout_seconds": 100}),
        json!({"interval_seconds": 301}),
        json!({"timeout_seconds": 100, "interval_seconds": 150}),
    ] {
        let error = expect_error(
            app.patch_monitor(&own.id, &patch).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert!(
            error.contains("interval_seconds") && error.contains("timeout_seconds"),
            "{patch}: {error}"
        );
    }
    assert_eq!(app.get_monitor(&own.id).await, own, "nothing changed");
    assert!(of_kind(&app.events(&own.id).await, "updated").is_empty());
    let lowered = expect_json(
        app.patch_monitor(&own.id, &json!({"timeout_seconds": 250}))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        (&lowered["timeout_seconds"], &lowered["interval_seconds"]),
        (&json!(250), &json!(200))
    );
}
