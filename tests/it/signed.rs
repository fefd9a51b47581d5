//! Restricted and signed pushes (`docs/push.md`, "Restricted and signed pushes"): a
//! monitor's `allowed_sources` (the source as `--trusted-proxies` resolves it) and
//! `signing_secret` (HMAC-SHA256 over timestamp, method, path and query, and body;
//! a window; each signature taken once), on the push URL, the ping URLs and bulk
//! items; refusals are JSON 401/403 and record nothing; the secret is never shown.

use hmac::{Hmac, Mac};
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::ingest::push_batch;
use crate::support::{
    Api, ServerProcess, expect_error, expect_json, of_kind, spawn_app, spawn_app_with,
};

const SECRET: &str = "a-signing-secret-0123456789";

/// The server's time in Unix seconds, as the client's clock would say.
pub fn unix_now() -> i64 {
    pushmon::clock::Clock::system().now().as_millis() / 1000
}

/// `X-Pushmon-Signature`'s value for this request.
pub fn signature(secret: &str, timestamp: i64, method: &str, target: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{timestamp}\n{method}\n{target}\n").as_bytes());
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// A request to `target` (a path and query) signed at `timestamp`.
pub async fn send_signed(
    api: &Api,
    method: Method,
    target: &str,
    body: &[u8],
    secret: &str,
    timestamp: i64,
) -> Response {
    api.client
        .request(method.clone(), api.url(target))
        .header("x-pushmon-timestamp", timestamp.to_string())
        .header(
            "x-pushmon-signature",
            signature(secret, timestamp, method.as_str(), target, body),
        )
        .body(body.to_vec())
        .send()
        .await
        .unwrap()
}

async fn heartbeats(api: &Api, id: &str) -> usize {
    of_kind(&api.history(id).await, "heartbeat").len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_outside_the_allowed_ranges_is_refused() {
    let app = spawn_app().await;
    let here = app
        .create_monitor_from(&json!({"name": "local", "timeout_seconds": 60,
                                     "allowed_sources": ["127.0.0.1", "10.0.0.0/8"]}))
        .await;
    let elsewhere = app
        .create_monitor_from(&json!({"name": "remote", "timeout_seconds": 60,
                                     "allowed_sources": ["192.0.2.0/24"]}))
        .await;
    app.push_ok(&here.push_token, &[]).await;
    let error = expect_error(
        app.push(&elsewhere.push_token, &[("status", "down")]).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(
        error,
        "pushes to this monitor are not accepted from this address"
    );
    // The ping URLs too; a client's own X-Forwarded-For is not believed.
    let response = app
        .client
        .post(app.url(&format!("/ping/{}/fail", elsewhere.push_token)))
        .header("x-forwarded-for", "192.0.2.1")
        .send()
        .await
        .unwrap();
    expect_error(response, StatusCode::FORBIDDEN).await;
    assert_eq!(heartbeats(&app, &elsewhere.id).await, 0);
    assert_eq!(
        app.get_monitor(&elsewhere.id).await.status,
        crate::support::Status::Pending
    );

    let shown = app.monitor_value(&here.id).await;
    assert_eq!(shown["allowed_sources"], json!(["127.0.0.1", "10.0.0.0/8"]));
    assert_eq!(shown["signed"], json!(false));
    // Taken away: any source again.
    let response = app
        .patch_monitor(&elsewhere.id, &json!({"allowed_sources": null}))
        .await;
    let patched = expect_json(response, StatusCode::OK).await;
    assert_eq!(patched["allowed_sources"], json!([]));
    app.push_ok(&elsewhere.push_token, &[]).await;

    for bad in [
        json!(["10.0.0.0/33"]),
        json!("10.0.0.0/8"),
        json!(["nonsense"]),
        json!([1]),
    ] {
        let response = app
            .post_monitor(&json!({"name": "bad", "timeout_seconds": 60, "allowed_sources": bad}))
            .await;
        let error = expect_error(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert!(error.starts_with("allowed_sources must be"), "{error}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_the_forwarded_address_is_the_source() {
    let app = spawn_app_with(|config| {
        config.trusted_proxies = "127.0.0.0/8".parse().unwrap();
    })
    .await;
    let monitor = app
        .create_monitor_from(&json!({"name": "behind the ingress", "timeout_seconds": 60,
                                     "allowed_sources": ["198.51.100.0/24"]}))
        .await;
    let push_from = |forwarded: &'static str| {
        let (api, token) = ((*app).clone(), monitor.push_token.clone());
        async move {
            api.client
                .post(api.url(&format!("/api/push/{token}")))
                .header("x-forwarded-for", forwarded)
                .send()
                .await
                .unwrap()
        }
    };
    expect_json(push_from("198.51.100.7").await, StatusCode::OK).await;
    // The client's own claim (leftmost) is not what the proxy saw.
    expect_json(push_from("203.0.113.9, 198.51.100.8").await, StatusCode::OK).await;
    expect_error(
        push_from("198.51.100.7, 203.0.113.9").await,
        StatusCode::FORBIDDEN,
    )
    .await;
    // No header: the proxy itself, which is not in the list.
    expect_error(
        app.push(&monitor.push_token, &[]).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    // A bulk push is checked alike, per item.
    let items = json!([{"token": monitor.push_token, "msg": "relayed"}]);
    let response = app
        .client
        .post(app.url("/api/push"))
        .header("x-forwarded-for", "198.51.100.9")
        .json(&items)
        .send()
        .await
        .unwrap();
    let answer = expect_json(response, StatusCode::OK).await;
    assert_eq!(answer["results"][0]["status"], 200, "{answer}");
    let answer = expect_json(push_batch(&app, &items).await, StatusCode::OK).await;
    assert_eq!(answer["results"][0]["status"], 403, "{answer}");
    assert_eq!(heartbeats(&app, &monitor.id).await, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_pushes_are_taken_once_within_the_window_and_others_are_refused() {
    let app = spawn_app().await;
    let monitor = app
        .create_monitor_from(
            &json!({"name": "signed", "timeout_seconds": 60, "signing_secret": SECRET}),
        )
        .await;
    let token = &monitor.push_token;
    let target = format!("/api/push/{token}?status=up&msg=signed");

    // Unsigned: refused, saying what is needed.
    let error = expect_error(app.push(token, &[]).await, StatusCode::UNAUTHORIZED).await;
    assert!(error.contains("X-Pushmon-Signature"), "{error}");
    // Signed: accepted, once.
    let now = unix_now();
    let response = send_signed(&app, Method::POST, &target, b"", SECRET, now).await;
    expect_json(response, StatusCode::OK).await;
    let replayed = send_signed(&app, Method::POST, &target, b"", SECRET, now).await;
    let error = expect_error(replayed, StatusCode::UNAUTHORIZED).await;
    assert!(error.contains("already used"), "{error}");
    // A second later the same push is a new signature.
    let response = send_signed(&app, Method::POST, &target, b"", SECRET, now + 1).await;
    expect_json(response, StatusCode::OK).await;
    // Stale, or from the future beyond the window (300 s by default).
    for timestamp in [now - 301, now + 301] {
        let response = send_signed(&app, Method::POST, &target, b"", SECRET, timestamp).await;
        let error = expect_error(response, StatusCode::UNAUTHORIZED).await;
        assert!(error.contains("signature window"), "{error}");
    }
    // Signed with another secret, or over another target, method or body.
    let response = send_signed(
        &app,
        Method::POST,
        &target,
        b"",
        "another-secret-0123456",
        now + 2,
    )
    .await;
    expect_error(response, StatusCode::UNAUTHORIZED).await;
    let mut headers_for_up = (now + 3, signature(SECRET, now + 3, "POST", &target, b""));
    let response = app
        .client
        .post(app.url(&format!("/api/push/{token}?status=down&msg=signed")))
        .header("x-pushmon-timestamp", headers_for_up.0.to_string())
        .header("x-pushmon-signature", &headers_for_up.1)
        .send()
        .await
        .unwrap();
    let error = expect_error(response, StatusCode::UNAUTHORIZED).await;
    assert_eq!(error, "X-Pushmon-Signature does not match");
    headers_for_up.1 = "sha256=zz".to_owned();
    let response = app
        .client
        .post(app.url(&target))
        .header("x-pushmon-timestamp", headers_for_up.0.to_string())
        .header("x-pushmon-signature", &headers_for_up.1)
        .send()
        .await
        .unwrap();
    expect_error(response, StatusCode::UNAUTHORIZED).await;
    // A JSON body is signed too; a GET signs GET.
    let body = br#"{"status":"down","msg":"disk full"}"#;
    let response = app
        .client
        .post(app.url(&format!("/api/push/{token}")))
        .header("content-type", "application/json")
        .header("x-pushmon-timestamp", (now + 4).to_string())
        .header(
            "x-pushmon-signature",
            signature(SECRET, now + 4, "POST", &format!("/api/push/{token}"), body),
        )
        .body(&body[..])
        .send()
        .await
        .unwrap();
    expect_json(response, StatusCode::OK).await;
    let response = send_signed(&app, Method::GET, &target, b"", SECRET, now + 5).await;
    expect_json(response, StatusCode::OK).await;
    // A ping URL is signed over its own path.
    let ping = format!("/ping/{token}/fail");
    let response = send_signed(&app, Method::POST, &ping, b"exit 3", SECRET, now + 6).await;
    expect_json(response, StatusCode::OK).await;

    let history = app.history(&monitor.id).await;
    let msgs: Vec<_> = of_kind(&history, "heartbeat")
        .iter()
        .map(|event| event.msg.clone().unwrap_or_default())
        .collect();
    // The ping's failure is a heartbeat without a message, and ends a run.
    assert_eq!(
        msgs,
        ["signed", "signed", "disk full", "signed", ""],
        "{history:?}"
    );
    assert_eq!(of_kind(&history, "run_ended").len(), 1);

    // The secret is never shown: not by the monitor, its events or the list.
    let shown = app.monitor_value(&monitor.id).await;
    assert_eq!(shown["signed"], json!(true));
    for text in [
        shown.to_string(),
        app.api(Method::GET, "/api/monitors")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        app.api(Method::GET, &format!("/api/monitors/{}/events", monitor.id))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    ] {
        assert!(!text.contains(SECRET), "{text}");
    }
    // Taken away: unsigned pushes are taken again.
    let patched = expect_json(
        app.patch_monitor(&monitor.id, &json!({"signing_secret": null}))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(patched["signed"], json!(false));
    app.push_ok(token, &[]).await;
    for bad in [json!("short"), json!("has a space in it, see"), json!(5)] {
        let response = app
            .post_monitor(&json!({"name": "bad", "timeout_seconds": 60, "signing_secret": bad}))
            .await;
        let error = expect_error(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert!(error.starts_with("signing_secret must be"), "{error}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_push_is_signed_as_a_whole_for_each_signed_monitor_it_has_items_for() {
    let app = spawn_app().await;
    let signed = app
        .create_monitor_from(
            &json!({"name": "signed agent", "timeout_seconds": 60, "signing_secret": SECRET}),
        )
        .await;
    let plain = app.create_monitor("plain agent", 60).await;
    let body = serde_json::to_vec(&json!([
        {"token": signed.push_token, "msg": "first"},
        {"token": plain.push_token, "msg": "plain"},
        {"token": signed.push_token, "msg": "second"},
    ]))
    .unwrap();
    let bulk = |timestamp: i64, secret: &'static str| {
        let (api, body) = ((*app).clone(), body.clone());
        async move {
            let response = api
                .client
                .post(api.url("/api/push"))
                .header("content-type", "application/json")
                .header("x-pushmon-timestamp", timestamp.to_string())
                .header(
                    "x-pushmon-signature",
                    signature(secret, timestamp, "POST", "/api/push", &body),
                )
                .body(body)
                .send()
                .await
                .unwrap();
            expect_json(response, StatusCode::OK).await
        }
    };
    let statuses = |answer: &Value| -> Vec<u64> {
        answer["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|result| result["status"].as_u64().unwrap())
            .collect()
    };
    // Unsigned: the signed monitor's items are refused, the other's taken.
    let unsigned = app
        .client
        .post(app.url("/api/push"))
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    let answer = expect_json(unsigned, StatusCode::OK).await;
    assert_eq!(statuses(&answer), [401, 200, 401], "{answer}");
    // Signed: both of its items, the second not taken for a replay of the first.
    let now = unix_now();
    let answer = bulk(now, SECRET).await;
    assert_eq!(statuses(&answer), [200, 200, 200], "{answer}");
    // The same request again: a replay, refused for the signed monitor.
    let answer = bulk(now, SECRET).await;
    assert_eq!(statuses(&answer), [401, 200, 401], "{answer}");
    assert!(
        answer["results"][0]["error"]
            .as_str()
            .unwrap()
            .contains("already used")
    );
    // Another secret, a stale timestamp.
    assert_eq!(
        statuses(&bulk(now + 1, "another-secret-0123456").await),
        [401, 200, 401]
    );
    assert_eq!(statuses(&bulk(now - 400, SECRET).await), [401, 200, 401]);
    let msgs: Vec<_> = of_kind(&app.history(&signed.id).await, "heartbeat")
        .iter()
        .map(|event| event.msg.clone().unwrap_or_default())
        .collect();
    assert_eq!(msgs, ["first", "second"]);
    assert_eq!(heartbeats(&app, &plain.id).await, 5);
}

/// The one-line shell example of `docs/push.md`, run as written (with this server's
/// URL, the monitor's token and secret): `openssl dgst` and `curl`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_shell_example_signs_a_push_that_is_taken() {
    let docs =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/push.md")).unwrap();
    let example = docs
        .lines()
        .find(|line| line.contains("openssl dgst") && line.contains("curl"))
        .expect("docs/push.md has a one-line signed push with openssl dgst and curl")
        .trim();
    let data_dir = tempfile::TempDir::new().unwrap();
    let server = ServerProcess::start(data_dir.path(), &[]).await;
    let monitor = server
        .create_monitor_from(
            &json!({"name": "shell", "timeout_seconds": 60, "signing_secret": SECRET}),
        )
        .await;
    let output = std::process::Command::new("sh")
        .arg("-c")
        .arg(example)
        .env("PUSHMON_URL", &server.base_url)
        .env("TOKEN", &monitor.push_token)
        .env("SECRET", SECRET)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains(r#"{"ok":true}"#),
        "{example}\nstdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        server.get_monitor(&monitor.id).await.last_msg.as_deref(),
        Some("signed from sh")
    );
    let (status, log) = server.sigterm().await;
    assert!(status.success());
    assert!(!log.contains(SECRET), "the secret reached the log");
}
