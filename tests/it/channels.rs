//! The channel API (`docs/api.md`): create, list, get, validation, test message, delete.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::receiver::Receiver;
use crate::support::{expect_error, expect_json, spawn_app};

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
    expect_error(
        app.api(Method::POST, &format!("/api/channels/{id}/test"))
            .send()
            .await
            .unwrap(),
        StatusCode::BAD_GATEWAY,
    )
    .await;

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
