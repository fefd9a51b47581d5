//! The channel API (`docs/api.md`): create, list, get, validation, test message, delete.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::receiver::Receiver;
use crate::support::{Api, expect_error, expect_json, spawn_app};

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
