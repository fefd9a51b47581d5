//! API keys: the admin token creates, lists and revokes them; a `read` key may do every
//! GET of the management API (without seeing credentials) and nothing else; a `write` key everything but managing
//! keys; keys survive restarts, a revoked key stops working at once, and a key's
//! secret is shown once and never logged.

use std::collections::BTreeSet;

use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};

use crate::support::{Api, ServerProcess, expect_error, expect_json, spawn_app};

/// A request to the management API with `key` as the bearer secret.
fn with_key(api: &Api, key: &str, method: Method, path: &str) -> RequestBuilder {
    api.client.request(method, api.url(path)).bearer_auth(key)
}

/// Creates a key with the admin token; returns the whole 201 answer.
async fn create_key(api: &Api, name: &str, scope: &str) -> Value {
    let response = api
        .api(Method::POST, "/api/keys")
        .json(&json!({"name": name, "scope": scope}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response
            .headers()
            .get("cache-control")
            .map(|value| value.to_str().unwrap()),
        Some("no-store"),
        "the answer holding the secret must not be cached"
    );
    expect_json(response, StatusCode::CREATED).await
}

async fn list_keys(api: &Api) -> Vec<Value> {
    let response = api.api(Method::GET, "/api/keys").send().await.unwrap();
    let body = expect_json(response, StatusCode::OK).await;
    body["keys"]
        .as_array()
        .unwrap_or_else(|| panic!("not {{\"keys\": [...]}}: {body}"))
        .clone()
}

/// `value` with every credential field of its objects (at any depth) set to null.
fn without_credentials(mut value: Value) -> Value {
    match &mut value {
        Value::Object(fields) => {
            for (name, field) in fields.iter_mut() {
                if ["push_token", "push_url", "url", "smtp_url"].contains(&name.as_str()) {
                    *field = Value::Null;
                } else {
                    *field = without_credentials(field.take());
                }
            }
        }
        Value::Array(items) => {
            for item in items.iter_mut() {
                *item = without_credentials(item.take());
            }
        }
        _ => {}
    }
    value
}

fn field_names(value: &Value) -> BTreeSet<&str> {
    value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_creates_lists_and_revokes_keys_and_a_revoked_key_stops_at_once() {
    let app = spawn_app().await;
    assert!(list_keys(&app).await.is_empty());

    let created = create_key(&app, "grafana", "read").await;
    assert_eq!(
        field_names(&created),
        BTreeSet::from(["id", "name", "scope", "created_at", "key"])
    );
    assert_eq!(created["name"], "grafana");
    assert_eq!(created["scope"], "read");
    let secret = created["key"].as_str().unwrap().to_owned();
    let random = secret.strip_prefix("pmk_").expect("recognisable prefix");
    assert!(random.len() >= 22, "{secret:?} is under 128 bits");
    assert!(
        random
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
        "{secret:?} is not URL-safe"
    );
    let id = created["id"].as_str().unwrap().to_owned();
    uuid::Uuid::parse_str(&id).unwrap();
    // Scope defaults to read, the least privilege.
    let defaulted = app
        .api(Method::POST, "/api/keys")
        .json(&json!({"name": "ci"}))
        .send()
        .await
        .unwrap();
    let defaulted = expect_json(defaulted, StatusCode::CREATED).await;
    assert_eq!(defaulted["scope"], "read");
    assert_ne!(defaulted["key"], created["key"]);

    // Listings never show a secret.
    let listed = list_keys(&app).await;
    assert_eq!(listed.len(), 2);
    assert_eq!(
        field_names(&listed[0]),
        BTreeSet::from(["id", "name", "scope", "created_at"])
    );
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["created_at"], created["created_at"]);
    let text = app
        .api(Method::GET, "/api/keys")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!text.contains(&secret), "a listing shows a secret: {text}");
    assert!(!text.contains(random), "a listing shows a secret: {text}");

    // The key works, then is revoked, and the very next request with it is a 401.
    let works = with_key(&app, &secret, Method::GET, "/api/monitors")
        .send()
        .await
        .unwrap();
    expect_json(works, StatusCode::OK).await;
    let revoked = app
        .api(Method::DELETE, &format!("/api/keys/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
    let after = with_key(&app, &secret, Method::GET, "/api/monitors")
        .send()
        .await
        .unwrap();
    expect_error(after, StatusCode::UNAUTHORIZED).await;
    let listed = list_keys(&app).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], defaulted["id"]);

    // Revoking again, or something that is no key id, is a JSON 404.
    for path in [
        format!("/api/keys/{id}"),
        "/api/keys/not-a-key".to_owned(),
        "/api/keys/%FF".to_owned(),
    ] {
        let response = app.api(Method::DELETE, &path).send().await.unwrap();
        expect_error(response, StatusCode::NOT_FOUND).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_key_may_read_everything_and_change_nothing() {
    let app = spawn_app().await;
    let channel = expect_json(
        app.api(Method::POST, "/api/channels")
            .json(&json!({"kind": "webhook", "name": "ops", "url": "http://127.0.0.1:9/hook"}))
            .send()
            .await
            .unwrap(),
        StatusCode::CREATED,
    )
    .await;
    let channel_id = channel["id"].as_str().unwrap().to_owned();
    let monitor = app
        .create_monitor_from(
            &json!({"name": "watched", "timeout_seconds": 60, "channels": [channel_id]}),
        )
        .await;
    app.push_ok(&monitor.push_token, &[("msg", "hello")]).await;
    let read_key = create_key(&app, "dashboard", "read").await["key"]
        .as_str()
        .unwrap()
        .to_owned();

    let monitor_path = format!("/api/monitors/{}", monitor.id);
    let channel_path = format!("/api/channels/{channel_id}");
    // Every read answers what the admin token gets, less the credentials: push tokens
    // and URLs (a read key must not be able to push) and channel URLs.
    for path in [
        "/api/monitors".to_owned(),
        monitor_path.clone(),
        format!("{monitor_path}/events"),
        format!("{monitor_path}/events?limit=1"),
        "/api/channels".to_owned(),
        channel_path.clone(),
    ] {
        let as_admin = expect_json(
            app.api(Method::GET, &path).send().await.unwrap(),
            StatusCode::OK,
        )
        .await;
        let as_reader = expect_json(
            with_key(&app, &read_key, Method::GET, &path)
                .send()
                .await
                .unwrap(),
            StatusCode::OK,
        )
        .await;
        assert_eq!(as_reader, without_credentials(as_admin), "GET {path}");
        let text = as_reader.to_string();
        assert!(!text.contains(&monitor.push_token), "GET {path}: {text}");
        assert!(!text.contains("127.0.0.1:9/hook"), "GET {path}: {text}");
    }
    // HEAD is a read too.
    let head = with_key(&app, &read_key, Method::HEAD, &monitor_path)
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), StatusCode::OK);

    let before = app.list_monitors().await;
    let history_before = app.history(&monitor.id).await;
    let writes = [
        (
            Method::POST,
            "/api/monitors".to_owned(),
            json!({"name": "sneaky", "timeout_seconds": 60}),
        ),
        (
            Method::PATCH,
            monitor_path.clone(),
            json!({"name": "renamed"}),
        ),
        (Method::DELETE, monitor_path.clone(), Value::Null),
        (
            Method::POST,
            format!("{monitor_path}/rotate-token"),
            Value::Null,
        ),
        (Method::POST, format!("{monitor_path}/pause"), Value::Null),
        (Method::POST, format!("{monitor_path}/resume"), Value::Null),
        (
            Method::POST,
            "/api/channels".to_owned(),
            json!({"kind": "webhook", "name": "evil", "url": "http://127.0.0.1:9/x"}),
        ),
        (Method::DELETE, channel_path.clone(), Value::Null),
        (Method::POST, format!("{channel_path}/test"), Value::Null),
        // Managing keys needs the admin token, whatever the key's scope.
        (Method::GET, "/api/keys".to_owned(), Value::Null),
        (
            Method::POST,
            "/api/keys".to_owned(),
            json!({"name": "escalate", "scope": "write"}),
        ),
        (
            Method::DELETE,
            format!("/api/keys/{}", uuid::Uuid::nil()),
            Value::Null,
        ),
    ];
    for (method, path, body) in writes {
        let mut request = with_key(&app, &read_key, method.clone(), &path);
        if !body.is_null() {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let error = expect_error(response, StatusCode::FORBIDDEN).await;
        assert!(!error.contains(&read_key), "{error}");
    }
    // Nothing above took effect.
    assert_eq!(app.list_monitors().await, before);
    assert_eq!(app.history(&monitor.id).await, history_before);
    let channels = expect_json(
        app.api(Method::GET, "/api/channels").send().await.unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(channels["channels"].as_array().unwrap().len(), 1);
    assert_eq!(list_keys(&app).await.len(), 1);
    app.push_ok(&monitor.push_token, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_key_may_do_all_but_manage_keys() {
    let app = spawn_app().await;
    let write_key = create_key(&app, "terraform", "write").await["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let created = expect_json(
        with_key(&app, &write_key, Method::POST, "/api/monitors")
            .json(&json!({"name": "from terraform", "timeout_seconds": 60}))
            .send()
            .await
            .unwrap(),
        StatusCode::CREATED,
    )
    .await;
    let id = created["id"].as_str().unwrap();
    let paused = expect_json(
        with_key(
            &app,
            &write_key,
            Method::POST,
            &format!("/api/monitors/{id}/pause"),
        )
        .send()
        .await
        .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(paused["status"], "paused");
    for (method, path) in [(Method::GET, "/api/keys"), (Method::POST, "/api/keys")] {
        let response = with_key(&app, &write_key, method, path)
            .json(&json!({"name": "escalate", "scope": "write"}))
            .send()
            .await
            .unwrap();
        expect_error(response, StatusCode::FORBIDDEN).await;
    }
    assert_eq!(list_keys(&app).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_key_requests_and_unknown_keys_answer_json_errors() {
    let app = spawn_app().await;
    for (body, status) in [
        (json!({"scope": "read"}), StatusCode::UNPROCESSABLE_ENTITY),
        (
            json!({"name": "", "scope": "read"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"name": "x", "scope": "admin"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"name": "x", "scope": 1}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (json!(["name", "x"]), StatusCode::BAD_REQUEST),
    ] {
        let response = app
            .api(Method::POST, "/api/keys")
            .json(&body)
            .send()
            .await
            .unwrap();
        expect_error(response, status).await;
    }
    let not_json = app
        .api(Method::POST, "/api/keys")
        .body("{name")
        .send()
        .await
        .unwrap();
    expect_error(not_json, StatusCode::BAD_REQUEST).await;
    assert!(list_keys(&app).await.is_empty());

    // Without the admin token, or with a made-up key, everything is a 401.
    for secret in [
        None,
        Some("pmk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
    ] {
        for (method, path) in [
            (Method::GET, "/api/keys"),
            (Method::POST, "/api/keys"),
            (Method::GET, "/api/monitors"),
        ] {
            let mut request = app.client.request(method, app.url(path));
            if let Some(secret) = secret {
                request = request.bearer_auth(secret);
            }
            let response = request.json(&json!({"name": "x"})).send().await.unwrap();
            expect_error(response, StatusCode::UNAUTHORIZED).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_survive_restarts_and_their_secrets_never_reach_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(dir.path(), &[]).await;
    let kept = create_key(&server, "kept", "read").await;
    let dropped = create_key(&server, "dropped", "write").await;
    let kept_secret = kept["key"].as_str().unwrap().to_owned();
    let dropped_secret = dropped["key"].as_str().unwrap().to_owned();
    for secret in [&kept_secret, &dropped_secret] {
        let response = with_key(&server, secret, Method::GET, "/api/monitors")
            .send()
            .await
            .unwrap();
        expect_json(response, StatusCode::OK).await;
    }
    let revoked = server
        .api(
            Method::DELETE,
            &format!("/api/keys/{}", dropped["id"].as_str().unwrap()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
    let (status, first_log) = server.sigterm().await;
    assert!(status.success(), "{first_log}");

    let server = ServerProcess::start(dir.path(), &[]).await;
    let works = with_key(&server, &kept_secret, Method::GET, "/api/monitors")
        .send()
        .await
        .unwrap();
    expect_json(works, StatusCode::OK).await;
    let refused = with_key(&server, &kept_secret, Method::POST, "/api/monitors")
        .json(&json!({"name": "x", "timeout_seconds": 60}))
        .send()
        .await
        .unwrap();
    expect_error(refused, StatusCode::FORBIDDEN).await;
    let gone = with_key(&server, &dropped_secret, Method::GET, "/api/monitors")
        .send()
        .await
        .unwrap();
    expect_error(gone, StatusCode::UNAUTHORIZED).await;
    let listed = list_keys(&server).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], kept["id"]);
    assert_eq!(listed[0]["scope"], "read");
    let (status, second_log) = server.sigterm().await;
    assert!(status.success(), "{second_log}");

    assert!(
        first_log.contains("API key created") && first_log.contains("API key revoked"),
        "key changes are logged: {first_log}"
    );
    for log in [&first_log, &second_log] {
        for secret in [&kept_secret, &dropped_secret] {
            let random = secret.strip_prefix("pmk_").unwrap();
            assert!(
                !log.contains(random),
                "a key's secret reached the log:\n{log}"
            );
        }
    }
    // Nor is the secret anywhere on disk.
    for entry in walk(dir.path()) {
        let bytes = std::fs::read(&entry).unwrap();
        for secret in [&kept_secret, &dropped_secret] {
            let random = secret.strip_prefix("pmk_").unwrap().as_bytes();
            assert!(
                !bytes.windows(random.len()).any(|window| window == random),
                "a key's secret is stored in {}",
                entry.display()
            );
        }
    }
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}
