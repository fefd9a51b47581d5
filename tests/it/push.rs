//! Push ingress (`docs/push.md`): every answer `POST | GET | HEAD /api/push/{token}` can give.

use std::time::Duration;

use pushmon::config::RateLimit;
use reqwest::StatusCode;
use serde_json::json;

use crate::support::{
    Status, expect_error, expect_json, of_kind, spawn_app, spawn_app_with, until_rate_limited,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_get_and_head_with_query_are_acknowledged_and_recorded() {
    let app = spawn_app().await;
    let monitor = app.create_monitor("backup", 3600).await;
    let push_path = format!("/api/push/{}", monitor.push_token);

    app.push_ok(
        &monitor.push_token,
        &[("status", "up"), ("msg", "posted"), ("value", "1.5")],
    )
    .await;
    let after_post = app.get_monitor(&monitor.id).await;
    assert_eq!(after_post.status, Status::Up);
    assert_eq!(after_post.last_msg.as_deref(), Some("posted"));
    assert_eq!(after_post.last_value, Some(1.5));
    assert!(after_post.last_heartbeat_at.is_some());

    let response = app
        .client
        .get(app.url(&push_path))
        .query(&[("msg", "got"), ("value", "-2")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        expect_json(response, StatusCode::OK).await,
        json!({"ok": true})
    );
    let after_get = app.get_monitor(&monitor.id).await;
    assert_eq!(after_get.last_msg.as_deref(), Some("got"));
    assert_eq!(after_get.last_value, Some(-2.0));

    let response = app
        .client
        .head(app.url(&push_path))
        .query(&[("msg", "headed")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        app.get_monitor(&monitor.id).await.last_msg.as_deref(),
        Some("headed")
    );

    // Newest first: HEAD, GET, POST; `status` defaults to up.
    let events = app.events(&monitor.id).await;
    let heartbeats = of_kind(&events, "heartbeat");
    let seen: Vec<_> = heartbeats
        .iter()
        .map(|event| (event.status.as_deref(), event.msg.as_deref(), event.value))
        .collect();
    assert_eq!(
        seen,
        vec![
            (Some("up"), Some("headed"), None),
            (Some("up"), Some("got"), Some(-2.0)),
            (Some("up"), Some("posted"), Some(1.5)),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_with_json_body_is_acknowledged_and_recorded() {
    let app = spawn_app().await;
    let monitor = app.create_monitor("disk", 3600).await;

    let response = app
        .client
        .post(app.url(&format!("/api/push/{}", monitor.push_token)))
        .json(&json!({"status": "down", "msg": "disk full", "value": 93.5}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        expect_json(response, StatusCode::OK).await,
        json!({"ok": true})
    );

    let after = app.get_monitor(&monitor.id).await;
    assert_eq!(after.status, Status::Down);
    assert_eq!(after.last_msg.as_deref(), Some("disk full"));
    assert_eq!(after.last_value, Some(93.5));
    let events = app.events(&monitor.id).await;
    let heartbeat = of_kind(&events, "heartbeat")[0];
    assert_eq!(heartbeat.status.as_deref(), Some("down"));
    assert_eq!(heartbeat.msg.as_deref(), Some("disk full"));
    assert_eq!(heartbeat.value, Some(93.5));
    assert_eq!(
        of_kind(&events, "down")[0].reason.as_deref(),
        Some("manual")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_status_is_400_and_changes_nothing() {
    let app = spawn_app().await;
    let monitor = app.create_monitor("job", 3600).await;

    for status in ["sideways", "UP", ""] {
        let response = app.push(&monitor.push_token, &[("status", status)]).await;
        expect_error(response, StatusCode::BAD_REQUEST).await;
    }
    let response = app
        .client
        .post(app.url(&format!("/api/push/{}", monitor.push_token)))
        .json(&json!({"status": "sideways"}))
        .send()
        .await
        .unwrap();
    expect_error(response, StatusCode::BAD_REQUEST).await;

    let after = app.get_monitor(&monitor.id).await;
    assert_eq!(after.status, Status::Pending);
    assert_eq!(after.last_heartbeat_at, None);
    assert!(of_kind(&app.events(&monitor.id).await, "heartbeat").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_finite_or_non_numeric_value_is_400() {
    let app = spawn_app().await;
    let monitor = app.create_monitor("job", 3600).await;

    for value in ["NaN", "nan", "inf", "-inf", "infinity", "1e999", "abc", ""] {
        let response = app.push(&monitor.push_token, &[("value", value)]).await;
        let status = response.status();
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "value={value:?} gave {status}"
        );
        expect_error(response, StatusCode::BAD_REQUEST).await;
    }
    for body in [
        json!({"value": "abc"}),
        json!({"value": "NaN"}),
        json!({"value": true}),
    ] {
        let response = app
            .client
            .post(app.url(&format!("/api/push/{}", monitor.push_token)))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        assert_eq!(status, StatusCode::BAD_REQUEST, "body {body} gave {status}");
        expect_error(response, StatusCode::BAD_REQUEST).await;
    }
    // 1e999 is valid JSON syntax but not a finite f64.
    let response = app
        .client
        .post(app.url(&format!("/api/push/{}", monitor.push_token)))
        .header("content-type", "application/json")
        .body(r#"{"value": 1e999}"#)
        .send()
        .await
        .unwrap();
    expect_error(response, StatusCode::BAD_REQUEST).await;

    assert_eq!(app.get_monitor(&monitor.id).await.status, Status::Pending);
    assert!(of_kind(&app.events(&monitor.id).await, "heartbeat").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_body_is_400() {
    let app = spawn_app().await;
    let monitor = app.create_monitor("job", 3600).await;

    for body in [r#"{"status":"#, "not json", r#"["up"]"#] {
        let response = app
            .client
            .post(app.url(&format!("/api/push/{}", monitor.push_token)))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "body {body:?} gave {status}"
        );
        expect_error(response, StatusCode::BAD_REQUEST).await;
    }
    assert_eq!(app.get_monitor(&monitor.id).await.status, Status::Pending);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_token_is_404() {
    let app = spawn_app().await;
    // Well-formed (22 base64url chars) but never issued, and plainly malformed.
    for token in ["AAAAAAAAAAAAAAAAAAAAAA", "nope"] {
        let response = app.push(token, &[]).await;
        assert_eq!(
            expect_json(response, StatusCode::NOT_FOUND).await,
            json!({"error": "unknown push token"})
        );
        let response = app
            .client
            .get(app.url(&format!("/api/push/{token}")))
            .send()
            .await
            .unwrap();
        expect_error(response, StatusCode::NOT_FOUND).await;
        let response = app
            .client
            .head(app.url(&format!("/api/push/{token}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    }
}

/// A JSON push body of exactly `bytes` bytes.
fn json_body_of(bytes: usize) -> String {
    let overhead = json!({"msg": ""}).to_string().len();
    let body = json!({"msg": "x".repeat(bytes - overhead)}).to_string();
    assert_eq!(body.len(), bytes);
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_over_64_kib_is_413() {
    let app = spawn_app().await;
    let monitor = app.create_monitor("job", 3600).await;
    let post = |body: String| {
        app.client
            .post(app.url(&format!("/api/push/{}", monitor.push_token)))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };

    expect_error(
        post(json_body_of(64 * 1024 + 1)).await.unwrap(),
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await;
    expect_error(
        post(json_body_of(1024 * 1024)).await.unwrap(),
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await;
    assert_eq!(app.get_monitor(&monitor.id).await.status, Status::Pending);
    assert!(of_kind(&app.events(&monitor.id).await, "heartbeat").is_empty());

    // 64 KiB itself is not larger than 64 KiB (and its msg is truncated).
    expect_json(post(json_body_of(64 * 1024)).await.unwrap(), StatusCode::OK).await;
    assert_eq!(
        app.get_monitor(&monitor.id).await.last_msg,
        Some("x".repeat(1024))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_body_without_a_json_content_type_is_not_silently_dropped() {
    // `curl -d '{"status":"down"}' URL` sends application/x-www-form-urlencoded. A 200
    // that then records the heartbeat as `up` would hide the very failure reported:
    // the server must either honour the body or refuse it.
    let app = spawn_app().await;
    for content_type in [Some("application/x-www-form-urlencoded"), None] {
        let monitor = app.create_monitor("curl user", 3600).await;
        let mut request = app
            .client
            .post(app.url(&format!("/api/push/{}", monitor.push_token)))
            .body(r#"{"status":"down","msg":"sent with curl -d"}"#);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let after = app.get_monitor(&monitor.id).await;
        if status == StatusCode::OK {
            assert_eq!(
                (after.status, after.last_msg.as_deref()),
                (Status::Down, Some("sent with curl -d")),
                "content-type {content_type:?}: acknowledged, but the body was ignored"
            );
        } else {
            assert!(
                status.is_client_error(),
                "content-type {content_type:?} gave {status}"
            );
            assert_eq!(after.status, Status::Pending);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsupported_method_is_405() {
    let app = spawn_app().await;
    let monitor = app.create_monitor("job", 3600).await;
    for method in [reqwest::Method::PUT, reqwest::Method::DELETE] {
        let response = app
            .client
            .request(
                method.clone(),
                app.url(&format!("/api/push/{}", monitor.push_token)),
            )
            .send()
            .await
            .unwrap();
        expect_error(response, StatusCode::METHOD_NOT_ALLOWED).await;
    }
    assert_eq!(app.get_monitor(&monitor.id).await.status, Status::Pending);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_rate_limit_is_429_with_retry_after() {
    let app = spawn_app_with(|config| {
        config.rate_limit = RateLimit {
            per_second: 1,
            burst: 2,
        };
    })
    .await;
    let limited = app.create_monitor("chatty", 3600).await;
    let other = app.create_monitor("quiet", 3600).await;

    let (app_ref, token) = (&app, &limited.push_token);
    let (accepted, rejected) = until_rate_limited(10, |attempt| async move {
        app_ref
            .push(token, &[("msg", &format!("try {attempt}"))])
            .await
    })
    .await;
    let rejected = rejected.expect("ten quick pushes with burst 2 must meet a 429");
    assert!(
        (2..=3).contains(&accepted),
        "burst 2 at 1/s let {accepted} pushes through before the 429"
    );
    let retry_after: u64 = rejected
        .headers()
        .get("retry-after")
        .expect("429 carries Retry-After")
        .to_str()
        .unwrap()
        .parse()
        .expect("Retry-After is whole seconds");
    assert!(
        (1..=60).contains(&retry_after),
        "Retry-After: {retry_after}"
    );
    expect_error(rejected, StatusCode::TOO_MANY_REQUESTS).await;

    // The limit is per token, and a rejected push changes nothing.
    app.push_ok(&other.push_token, &[]).await;
    let heartbeats = of_kind(&app.events(&limited.id).await, "heartbeat").len();
    assert_eq!(heartbeats, accepted);

    // After the advertised wait the token works again.
    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    app.push_ok(&limited.push_token, &[("msg", "after the wait")])
        .await;
    assert_eq!(
        app.get_monitor(&limited.id).await.last_msg.as_deref(),
        Some("after the wait")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_msg_is_truncated_at_a_char_boundary() {
    let app = spawn_app().await;
    let monitor = app.create_monitor("job", 3600).await;

    // "€" is 3 bytes at 1022..1025: the 1024-byte limit falls inside it.
    let straddling = format!("{}€tail", "a".repeat(1022));
    app.push_ok(&monitor.push_token, &[("msg", &straddling)])
        .await;
    let kept = app.get_monitor(&monitor.id).await.last_msg.unwrap();
    assert_eq!(kept, "a".repeat(1022), "query msg");

    let response = app
        .client
        .post(app.url(&format!("/api/push/{}", monitor.push_token)))
        .json(&json!({"msg": format!("{}é", "b".repeat(1023))}))
        .send()
        .await
        .unwrap();
    expect_json(response, StatusCode::OK).await;
    assert_eq!(
        app.get_monitor(&monitor.id).await.last_msg.unwrap(),
        "b".repeat(1023),
        "JSON msg with a 2-byte char at 1023..1025"
    );

    let exact = "c".repeat(1024);
    app.push_ok(&monitor.push_token, &[("msg", &exact)]).await;
    assert_eq!(app.get_monitor(&monitor.id).await.last_msg.unwrap(), exact);

    app.push_ok(&monitor.push_token, &[("msg", &"d".repeat(5000))])
        .await;
    assert_eq!(
        app.get_monitor(&monitor.id).await.last_msg.unwrap(),
        "d".repeat(1024)
    );

    let msgs: Vec<String> = of_kind(&app.events(&monitor.id).await, "heartbeat")
        .iter()
        .map(|event| event.msg.clone().unwrap())
        .collect();
    assert_eq!(
        msgs,
        vec!["d".repeat(1024), exact, "b".repeat(1023), "a".repeat(1022)],
        "the history keeps the truncated msgs"
    );
}

#[tokio::test]
async fn a_path_that_does_not_decode_gets_a_json_error_not_a_plain_text_one() {
    let app = spawn_app().await;
    let push = app
        .client
        .post(app.url("/api/push/%FF%FE"))
        .send()
        .await
        .unwrap();
    expect_error(push, StatusCode::NOT_FOUND).await;
    let monitor = app
        .api(reqwest::Method::GET, "/api/monitors/%FF")
        .send()
        .await
        .unwrap();
    expect_error(monitor, StatusCode::NOT_FOUND).await;
}

/// Many pushers on one token at once (one busy service, many workers): every push is
/// acknowledged and recorded once, and the monitor's state is the newest recorded
/// heartbeat. The actor does not wait for the disk between plain heartbeats, so they
/// share group commits instead of taking one fsync each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_pushes_to_one_monitor_are_all_recorded_and_the_state_is_the_newest() {
    let app = spawn_app_with(|config| {
        config.rate_limit = RateLimit {
            per_second: 100_000,
            burst: 100_000,
        };
    })
    .await;
    let monitor = app.create_monitor("busy", 3600).await;
    let pushes = (0..200).map(|n| {
        let (app, token) = (&app, &monitor.push_token);
        async move {
            let msg = format!("worker {n}");
            app.push_ok(token, &[("msg", &msg), ("value", &n.to_string())])
                .await;
            msg
        }
    });
    let mut sent: Vec<String> = futures::future::join_all(pushes).await;

    let history = app.history(&monitor.id).await;
    let heartbeats = of_kind(&history, "heartbeat");
    let mut recorded: Vec<String> = heartbeats
        .iter()
        .filter_map(|event| event.msg.clone())
        .collect();
    let newest = recorded.last().cloned();
    recorded.sort();
    sent.sort();
    assert_eq!(recorded, sent, "each push recorded exactly once");
    let state = app.get_monitor(&monitor.id).await;
    assert_eq!(state.status, Status::Up);
    assert_eq!(state.last_msg, newest);
    let newest_value = heartbeats.last().and_then(|event| event.value);
    assert_eq!(state.last_value, newest_value);

    // And the stored snapshots agree with a replay of the log.
    let stopped = app.shutdown().await;
    crate::support::check_store(stopped.data_dir.path());
}

/// `curl -F status=down` sends `multipart/form-data`, and a `text/plain` body is not
/// read for parameters: both were answered 200 and recorded `up`, hiding the failure
/// reported. Multipart fields are read like a form's now, and a body that is not read
/// but is shaped like parameters is refused instead of silently dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multipart_form_is_read_and_parameters_in_a_plain_text_body_are_refused() {
    let app = spawn_app().await;
    let push = |token: &str, content_type: &str, body: String| {
        app.client
            .post(app.url(&format!("/api/push/{token}")))
            .query(&[("msg", "from the query")])
            .header("content-type", content_type)
            .body(body)
            .send()
    };

    // What `curl -F status=down -F 'msg=disk full' -F value=3` sends.
    let multipart = app.create_monitor("curl -F", 3600).await;
    let boundary = "------------------------d74496d66958873e";
    let part = |name: &str, value: &str| {
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
        )
    };
    let body = format!(
        "{}{}{}--{boundary}--\r\n",
        part("status", "down"),
        part("msg", "disk full"),
        part("value", "3")
    );
    let response = push(
        &multipart.push_token,
        &format!("multipart/form-data; boundary={boundary}"),
        body,
    )
    .await
    .unwrap();
    expect_json(response, StatusCode::OK).await;
    let after = app.get_monitor(&multipart.id).await;
    assert_eq!(
        (after.status, after.last_msg.as_deref(), after.last_value),
        (Status::Down, Some("disk full"), Some(3.0))
    );
    // A multipart body that does not parse is a 400.
    let response = push(
        &multipart.push_token,
        &format!("multipart/form-data; boundary={boundary}"),
        "not multipart at all".to_owned(),
    )
    .await
    .unwrap();
    expect_error(response, StatusCode::BAD_REQUEST).await;

    // Parameters in a text/plain body: refused, and nothing recorded.
    let plain = app.create_monitor("fetch() with a string body", 3600).await;
    for body in ["status=down", "status=down&msg=disk%20full", "msg=hello\n"] {
        let response = push(
            &plain.push_token,
            "text/plain;charset=UTF-8",
            body.to_owned(),
        )
        .await
        .unwrap();
        let error = expect_error(response, StatusCode::BAD_REQUEST).await;
        assert!(error.contains("query"), "{error}");
    }
    assert_eq!(app.get_monitor(&plain.id).await.status, Status::Pending);
    // Any other plain text is not parameters: the push counts, with the query's.
    let response = push(
        &plain.push_token,
        "text/plain",
        "backup done: status=ok, 3 files\n".to_owned(),
    )
    .await
    .unwrap();
    expect_json(response, StatusCode::OK).await;
    let after = app.get_monitor(&plain.id).await;
    assert_eq!(
        (after.status, after.last_msg.as_deref()),
        (Status::Up, Some("from the query"))
    );
}
