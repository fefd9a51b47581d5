//! The channel API (`docs/api.md`): create, list, get, validation, test messages,
//! delete, and private destinations refused on demand.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::receiver::Receiver;
use crate::support::{Api, ServerProcess, expect_error, expect_json, spawn_app};

async fn create(api: &Api, body: Value) -> String {
    let created = expect_json(
        api.api(Method::POST, "/api/channels")
            .json(&body)
            .send()
            .await
            .unwrap(),
        StatusCode::CREATED,
    )
    .await;
    created["id"].as_str().unwrap().to_owned()
}

async fn test(api: &Api, id: &str) -> reqwest::Response {
    api.api(Method::POST, &format!("/api/channels/{id}/test"))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn channels_are_created_listed_tested_and_deleted() {
    let receiver = Receiver::start().await;
    let app = spawn_app().await;
    let unauthorized = app
        .client
        .get(app.url("/api/channels"))
        .send()
        .await
        .unwrap();
    expect_error(unauthorized, StatusCode::UNAUTHORIZED).await;

    let created = expect_json(
        app.api(Method::POST, "/api/channels")
            .json(&json!({"kind": "webhook", "name": "hook", "url": receiver.url("/t"), "secret": "x"}))
            .send()
            .await
            .unwrap(),
        StatusCode::CREATED,
    )
    .await;
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["kind"], "webhook");
    assert_eq!(created["has_secret"], true);
    assert!(created.get("secret").is_none(), "secrets are never shown");

    let listed = expect_json(
        app.api(Method::GET, "/api/channels").send().await.unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(listed["channels"].as_array().unwrap().len(), 1);

    let tested = expect_json(
        app.api(Method::POST, &format!("/api/channels/{id}/test"))
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(tested["ok"], true);
    let delivered = receiver.delivered();
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0].json()["event"], "test");

    receiver.fail_always();
    let error = expect_error(test(&app, &id).await, StatusCode::BAD_GATEWAY).await;
    // Any address may be alerted (the default), so the answer says why.
    assert_eq!(
        error,
        "test message not delivered: receiver answered 500 Internal Server Error"
    );

    // A monitor lists the channel; deleting the channel takes it off the monitor.
    let monitor = app
        .create_monitor_from(&json!({"name": "m", "timeout_seconds": 60, "channels": [id]}))
        .await;
    assert_eq!(monitor.channels, vec![id.clone()]);
    let deleted = app
        .api(Method::DELETE, &format!("/api/channels/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert!(app.get_monitor(&monitor.id).await.channels.is_empty());
    expect_error(
        app.api(Method::GET, &format!("/api/channels/{id}"))
            .send()
            .await
            .unwrap(),
        StatusCode::NOT_FOUND,
    )
    .await;
    expect_error(
        app.api(Method::DELETE, &format!("/api/channels/{id}"))
            .send()
            .await
            .unwrap(),
        StatusCode::NOT_FOUND,
    )
    .await;
}

#[tokio::test]
async fn invalid_channels_and_unknown_channel_ids_are_rejected_naming_the_field() {
    let app = spawn_app().await;
    for (body, field) in [
        (json!({"name": "x", "url": "http://127.0.0.1:1/"}), "kind"),
        (
            json!({"kind": "pager", "name": "x", "url": "http://127.0.0.1:1/"}),
            "kind",
        ),
        (
            json!({"kind": "webhook", "url": "http://127.0.0.1:1/"}),
            "name",
        ),
        (json!({"kind": "webhook", "name": "x"}), "url"),
        (
            json!({"kind": "webhook", "name": "x", "url": "ftp://host/"}),
            "url",
        ),
        (
            json!({"kind": "webhook", "name": "x", "url": "http://127.0.0.1:1/", "secret": 5}),
            "secret",
        ),
        (
            json!({"kind": "email", "name": "x", "from": "a@b.test", "to": "c@d.test"}),
            "smtp_url",
        ),
        (
            json!({"kind": "email", "name": "x", "smtp_url": "smtp://127.0.0.1:25", "from": "nope", "to": "c@d.test"}),
            "from",
        ),
        (
            json!({"kind": "email", "name": "x", "smtp_url": "smtp://127.0.0.1:25", "from": "a@b.test", "to": []}),
            "to",
        ),
    ] {
        let error = expect_error(
            app.api(Method::POST, "/api/channels")
                .json(&body)
                .send()
                .await
                .unwrap(),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert!(error.contains(field), "{body} -> {error}");
    }
    let unknown = "01a214ad-abf6-7132-9aeb-f4f472c1d659";
    let error = expect_error(
        app.post_monitor(&json!({"name": "m", "timeout_seconds": 5, "channels": [unknown]}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(error.contains("channels"), "{error}");
}

/// Regression (issues 15.3, 15.4): a test read "Test message from pushmon for channel
/// of test of channel …", linked to a monitor `00000000-…` that does not exist, and
/// through Alertmanager left a critical alert firing for a year. Now each kind gets a
/// message that reads well and names the channel, no monitor; Alertmanager gets an
/// `info` alert labelled `test` that resolves itself 5 minutes later.
#[tokio::test]
async fn test_messages_name_their_channel_and_no_monitor() {
    let receiver = Receiver::start().await;
    let smtp = crate::smtp::SmtpSink::start().await;
    let app = spawn_app().await;
    let hook = create(
        &app,
        json!({"kind": "webhook", "name": "hook", "url": receiver.url("/hook"), "secret": "s"}),
    )
    .await;
    let slack = create(
        &app,
        json!({"kind": "slack", "name": "slack-ch", "url": receiver.url("/slack")}),
    )
    .await;
    let discord = create(
        &app,
        json!({"kind": "discord", "name": "discord-ch", "url": receiver.url("/discord")}),
    )
    .await;
    let alertmanager = create(
        &app,
        json!({"kind": "alertmanager", "name": "am", "url": receiver.url("/am")}),
    )
    .await;
    let email = create(
        &app,
        json!({
            "kind": "email",
            "name": "oncall",
            "smtp_url": format!("smtp://127.0.0.1:{}", smtp.port),
            "from": "pushmon@example.test",
            "to": "oncall@example.test",
        }),
    )
    .await;
    for id in [&hook, &hook, &slack, &discord, &alertmanager, &email] {
        let tested = expect_json(test(&app, id).await, StatusCode::OK).await;
        assert_eq!(tested, json!({"ok": true}));
    }
    let delivered = receiver.delivered();
    let bodies = |path: &str| -> Vec<Value> {
        delivered
            .iter()
            .filter(|request| request.path == path)
            .map(|request| request.json())
            .collect()
    };
    let base = &app.base_url;

    let hooks: Vec<_> = delivered
        .iter()
        .filter(|request| request.path == "/hook")
        .collect();
    assert_eq!(hooks.len(), 2);
    let first = hooks[0].json();
    let at = first["at"].as_str().expect("at").to_owned();
    assert_eq!(
        first,
        json!({
            "event": "test",
            "reason": "test",
            "at": at,
            "monitor": null,
            "channel": {"id": hook, "name": "hook"},
            "msg": null,
            "value": null,
        })
    );
    assert!(hooks[0].headers.contains_key("x-pushmon-signature"));
    // Each test is a message of its own: a receiver deduplicating by id drops neither.
    let ids: Vec<&str> = hooks
        .iter()
        .map(|request| request.headers["x-pushmon-alert-id"].to_str().unwrap())
        .collect();
    assert_ne!(ids[0], ids[1]);
    for id in &ids {
        let (installation, test) = id.split_once(':').expect("<installation>:test-<hex>");
        assert!(uuid::Uuid::try_parse(installation).is_ok(), "{id}");
        let hex = test.strip_prefix("test-").unwrap_or_default();
        assert!(
            hex.len() == 32 && hex.chars().all(|c| c.is_ascii_hexdigit()),
            "{id}"
        );
    }

    assert_eq!(
        bodies("/slack"),
        vec![json!({
            "text": format!("🔔 Test from pushmon: channel “slack-ch” works.\n{base}"),
            "mrkdwn": false,
        })]
    );
    assert_eq!(
        bodies("/discord"),
        vec![json!({
            "content": format!("🔔 Test from pushmon: channel “discord\\-ch” works.\n{base}"),
            "allowed_mentions": {"parse": []},
        })]
    );

    let alerts = bodies("/am/api/v2/alerts");
    assert_eq!(alerts.len(), 1);
    let alert = &alerts[0][0];
    assert_eq!(
        alert["labels"],
        json!({
            "alertname": "PushmonTest",
            "channel": "am",
            "channel_id": alertmanager,
            "severity": "info",
            "source": "pushmon",
            "test": "true",
        })
    );
    let instant = |field: &str| {
        let text = alert[field].as_str().expect("a timestamp");
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|error| panic!("{field} {text:?}: {error}"))
    };
    assert_eq!(
        instant("endsAt") - instant("startsAt"),
        time::Duration::minutes(5),
        "resolves itself: {alert}"
    );
    assert_eq!(
        alert["annotations"]["summary"],
        "Test from pushmon: channel “am” works: this is a test, it resolves itself in 5 minutes"
    );
    assert_eq!(alert["generatorURL"], base.as_str());

    // The body is quoted-printable, and “ and ” make the subject an encoded word.
    let mail = smtp
        .wait_for_message(
            "Test from pushmon: channel =E2=80=9Concall=E2=80=9D works.",
            Duration::from_secs(10),
        )
        .await;
    assert!(
        mail.contains("Subject: [pushmon] Test: channel =?utf-8?b?4oCcb25jYWxs4oCd?= works"),
        "{mail}"
    );
    assert!(!mail.contains("/api/monitors"), "{mail}");

    for body in delivered
        .iter()
        .map(|request| String::from_utf8_lossy(&request.body))
    {
        assert!(!body.contains("00000000-0000"), "a fake monitor: {body}");
        assert!(
            !body.contains("/api/monitors"),
            "a link to no monitor: {body}"
        );
    }
}

/// Regression (issue 14.11): webhooks could target loopback and link-local
/// addresses, and a channel test told "cannot connect" from "answered 404", a port
/// scanner for whoever holds a write key. With `PUSHMON_ALERT_DENY_PRIVATE_ADDRESSES`
/// such channels are refused, names resolving to such addresses are never
/// connected to, and a failed test says only that it failed.
#[tokio::test]
async fn with_private_addresses_denied_no_alert_or_test_reaches_them() {
    let receiver = Receiver::start().await;
    let data_dir = tempfile::tempdir().unwrap();
    let fast = [
        "--alert-retry-initial-ms",
        "50",
        "--alert-max-attempts",
        "3",
    ];
    // Created while any address may be alerted: one through a name for loopback.
    let server = ServerProcess::start(data_dir.path(), &fast).await;
    let private = create(
        &server,
        json!({
            "kind": "webhook",
            "name": "internal",
            "url": format!("http://localhost:{}/internal", receiver.address.port()),
        }),
    )
    .await;
    let closed = create(
        &server,
        json!({"kind": "webhook", "name": "closed", "url": "http://127.0.0.1:1/"}),
    )
    .await;
    expect_json(test(&server, &private).await, StatusCode::OK).await;
    let error = expect_error(test(&server, &closed).await, StatusCode::BAD_GATEWAY).await;
    assert_eq!(error, "test message not delivered: cannot connect");
    let monitor = server
        .create_monitor_from(
            &json!({"name": "m", "timeout_seconds": 3600, "channels": [private, closed]}),
        )
        .await;
    let (status, _) = server.sigterm().await;
    assert!(status.success());
    assert_eq!(receiver.received().len(), 1);

    let server = ServerProcess::start_with_env(
        data_dir.path(),
        &fast,
        &[("PUSHMON_ALERT_DENY_PRIVATE_ADDRESSES", "true")],
    )
    .await;
    for (body, field) in [
        (
            json!({"kind": "webhook", "url": "http://127.0.0.1:9/x"}),
            "url",
        ),
        (json!({"kind": "webhook", "url": "http://[::1]/x"}), "url"),
        (
            json!({"kind": "slack", "url": "http://169.254.169.254/latest"}),
            "url",
        ),
        (
            json!({"kind": "discord", "url": "https://10.1.2.3/x"}),
            "url",
        ),
        (
            json!({"kind": "alertmanager", "url": "http://0x7f000001:9093"}),
            "url",
        ),
        (
            json!({"kind": "webhook", "url": "http://localhost:8080/x"}),
            "url",
        ),
        (
            json!({"kind": "webhook", "url": "http://[::ffff:192.168.0.1]/"}),
            "url",
        ),
        (
            json!({"kind": "email", "smtp_url": "smtp://192.168.1.1:25", "from": "a@b.test", "to": "c@d.test"}),
            "smtp_url",
        ),
    ] {
        let mut body = body;
        body["name"] = json!("x");
        let error = expect_error(
            server
                .api(Method::POST, "/api/channels")
                .json(&body)
                .send()
                .await
                .unwrap(),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert!(
            error.starts_with(&format!("{field}: ")) && error.contains("private"),
            "{body} -> {error}"
        );
    }
    // A public address may still be configured (nothing is sent to it here).
    create(
        &server,
        json!({"kind": "webhook", "name": "public", "url": "http://192.0.2.1/x"}),
    )
    .await;

    // A failed test says no more than that it failed, whatever the reason.
    for id in [&private, &closed] {
        let error = expect_error(test(&server, id).await, StatusCode::BAD_GATEWAY).await;
        assert_eq!(error, "test message not delivered");
    }
    // An alert is refused at once, for good, and the history says why.
    server
        .push_ok(&monitor.push_token, &[("status", "down")])
        .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let recorded = loop {
        let recorded = deliveries(&server, &monitor.id).await;
        if recorded.len() == 2 {
            break recorded;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "deliveries not recorded"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    for delivery in &recorded {
        assert_eq!(delivery["result"], "failure", "{delivery}");
        assert_eq!(delivery["attempts"], 1, "refused for good: {delivery}");
    }
    let mut errors: Vec<&str> = recorded
        .iter()
        .map(|delivery| delivery["error"].as_str().unwrap())
        .collect();
    errors.sort();
    assert_eq!(
        errors,
        [
            "127.0.0.1 is a private, loopback or link-local address; \
             alerts to private addresses are refused on this server",
            "localhost is a name for a private, loopback or link-local address; \
             alerts to private addresses are refused on this server",
        ]
    );
    assert_eq!(
        receiver.received().len(),
        1,
        "a private address was reached"
    );
    let (status, log) = server.sigterm().await;
    assert!(status.success());
    assert!(
        log.contains("test message not delivered"),
        "the log says why: {log}"
    );
}

/// The `delivery` events of a monitor (`docs/api.md`).
async fn deliveries(api: &Api, monitor: &str) -> Vec<Value> {
    let events = expect_json(
        api.api(Method::GET, &format!("/api/monitors/{monitor}/events"))
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| event["kind"] == "delivery")
        .cloned()
        .collect()
}

/// Issue 14: a monitor created (or changed) while `DELETE /api/channels/C` ran kept C
/// (5 rounds in 15), and a later PATCH with its own channels answered 422. Deletion
/// takes the channel off every monitor, including those created or changed
/// concurrently: each round races creations and patches naming C against its deletion.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deleting_a_channel_takes_it_off_monitors_created_or_changed_meanwhile() {
    const ROUNDS: usize = 20;
    const RACERS: usize = 8;
    let app = spawn_app().await;
    let api: Api = (*app).clone();
    let create_channel = |name: String| {
        let app = &app;
        async move {
            let response = app
                .api(Method::POST, "/api/channels")
                .json(&json!({"kind": "webhook", "name": name, "url": "http://127.0.0.1:9/"}))
                .send()
                .await
                .unwrap();
            expect_json(response, StatusCode::CREATED).await["id"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let kept = create_channel("kept".to_owned()).await;
    let mut deleted = Vec::new();
    for round in 0..ROUNDS {
        let doomed = create_channel(format!("doomed {round}")).await;
        let existing: Vec<String> = futures::future::join_all((0..RACERS).map(|n| {
            let api = api.clone();
            async move {
                api.create_monitor(&format!("existing {round}.{n}"), 60)
                    .await
            }
        }))
        .await
        .into_iter()
        .map(|monitor| monitor.id)
        .collect();
        let both = json!([kept, doomed]);
        let creations = (0..RACERS).map(|n| {
            let api = api.clone();
            let body = json!({
                "name": format!("racer {round}.{n}"), "timeout_seconds": 60, "channels": both,
            });
            async move { api.post_monitor(&body).await }
        });
        let patches = existing.into_iter().map(|id| {
            let api = api.clone();
            let body = json!({"channels": both});
            async move { api.patch_monitor(&id, &body).await }
        });
        let deletion = app
            .api(Method::DELETE, &format!("/api/channels/{doomed}"))
            .send();
        let (created, patched, deletion) = tokio::join!(
            futures::future::join_all(creations),
            futures::future::join_all(patches),
            deletion,
        );
        assert_eq!(deletion.unwrap().status(), StatusCode::NO_CONTENT);
        for response in created.into_iter().chain(patched) {
            // Before the deletion: accepted (and swept); after it: refused, naming C.
            let status = response.status();
            let body = expect_json(response, status).await;
            match status {
                StatusCode::OK | StatusCode::CREATED => {}
                StatusCode::UNPROCESSABLE_ENTITY => {
                    let error = body["error"].as_str().unwrap();
                    assert!(error.contains(&doomed), "{error}");
                }
                other => panic!("round {round}: {other} {body}"),
            }
        }
        deleted.push(doomed);
    }
    for monitor in app.list_monitors().await {
        let ghosts: Vec<&String> = monitor
            .channels
            .iter()
            .filter(|channel| deleted.contains(channel))
            .collect();
        assert!(
            ghosts.is_empty(),
            "{} still lists deleted channels {ghosts:?}",
            monitor.name
        );
        // Its own channels are all valid, so sending them back works.
        let response = app
            .patch_monitor(&monitor.id, &json!({"channels": monitor.channels}))
            .await;
        expect_json(response, StatusCode::OK).await;
    }
}
