//! Bulk ingestion, `POST /api/push` (`docs/push.md`, "Bulk pushes"): a JSON array or
//! NDJSON of items, each checked as a single push is and answered by its index; the
//! accepted ones written in one batch and answered once durable, so a SIGKILL right
//! after the answer loses none of them.

use std::collections::BTreeSet;
use std::os::unix::process::ExitStatusExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use pushmon::config::RateLimit;
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::task::JoinSet;
use tokio::time::sleep;

use crate::support::{
    Api, ServerProcess, Status, expect_error, expect_json, of_kind, spawn_app, spawn_app_with,
};

/// `POST /api/push` with a JSON array.
pub async fn push_batch(api: &Api, items: &Value) -> Response {
    api.client
        .post(api.url("/api/push"))
        .json(items)
        .send()
        .await
        .expect("send bulk push")
}

/// `POST /api/push` with NDJSON.
async fn push_lines(api: &Api, body: String) -> Response {
    api.client
        .post(api.url("/api/push"))
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .await
        .expect("send bulk push")
}

/// Each item's `status`, in order.
fn statuses(answer: &Value) -> Vec<u64> {
    answer["results"]
        .as_array()
        .expect("results")
        .iter()
        .enumerate()
        .map(|(index, result)| {
            assert_eq!(result["index"], json!(index), "{answer}");
            result["status"].as_u64().expect("status")
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_with_bad_items_records_the_good_ones_and_says_why_each_bad_one_failed() {
    let app = spawn_app().await;
    let first = app.create_monitor("relayed one", 3600).await;
    let second = app.create_monitor("relayed two", 3600).await;
    let long_msg = "é".repeat(1500);
    let items = json!([
        {"token": first.push_token, "msg": "one", "value": 1.5},
        {"token": "0000000000000000000000", "msg": "nobody's"},
        {"token": second.push_token, "status": "sideways"},
        {"token": second.push_token, "value": "inf"},
        {"token": second.push_token, "instance": "has a space"},
        {"token": second.push_token, "instance": "x".repeat(65)},
        {"msg": "no token"},
        "not an object",
        {"token": second.push_token, "kind": "start"},
        {"token": second.push_token, "msg": long_msg, "instance": "worker-1.a:b_c"},
        {"token": first.push_token, "msg": "two", "status": "down"},
        {"token": first.push_token, "msg": "three"},
    ]);
    let answer = expect_json(push_batch(&app, &items).await, StatusCode::OK).await;
    assert_eq!(
        statuses(&answer),
        [200, 404, 400, 400, 400, 400, 400, 400, 400, 200, 200, 200],
        "{answer}"
    );
    assert_eq!(answer["accepted"], 4);
    assert_eq!(answer["refused"], 8);
    let results = answer["results"].as_array().unwrap();
    // Known monitors are named by id; no answer carries a token.
    assert_eq!(results[0]["monitor"], json!(first.id));
    assert_eq!(results[9]["monitor"], json!(second.id));
    assert!(results[1].get("monitor").is_none());
    assert!(!answer.to_string().contains(&first.push_token));
    for (index, expected) in [
        (1, "unknown push token"),
        (2, "status must be"),
        (3, "value must be a finite number"),
        (4, "instance must be"),
        (5, "instance must be"),
        (6, "token is missing"),
        (7, "must be a JSON object"),
        (8, "kind, rid, exit and ping are not taken"),
    ] {
        let error = results[index]["error"].as_str().unwrap();
        assert!(error.contains(expected), "item {index}: {error}");
    }

    // In order, per monitor: one (pending to up), then two (down: a change of
    // state), then three (up again: another).
    let history = app.history(&first.id).await;
    let msgs: Vec<_> = of_kind(&history, "heartbeat")
        .iter()
        .map(|event| event.msg.clone().unwrap_or_default())
        .collect();
    assert_eq!(msgs, ["one", "two", "three"]);
    assert_eq!(of_kind(&history, "heartbeat")[0].value, Some(1.5));
    assert_eq!(of_kind(&history, "down").len(), 1);
    assert_eq!(of_kind(&history, "up").len(), 2);
    let first_now = app.get_monitor(&first.id).await;
    assert_eq!(first_now.status, Status::Up);
    assert_eq!(first_now.last_msg.as_deref(), Some("three"));
    // An oversize message is cut as a single push's is (1024 bytes, at a character).
    let second_now = app.get_monitor(&second.id).await;
    let kept = second_now.last_msg.expect("a message");
    assert_eq!(kept.len(), 1024);
    assert!(long_msg.starts_with(&kept));
    assert_eq!(
        of_kind(&app.history(&second.id).await, "heartbeat").len(),
        1
    );
    // The instance an item names is the heartbeat's.
    let events = expect_json(
        app.events_response(&second.id, None, None).await,
        StatusCode::OK,
    )
    .await;
    let heartbeat = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|event| event["kind"] == "heartbeat")
        .expect("a heartbeat")
        .clone();
    assert_eq!(heartbeat["instance"], "worker-1.a:b_c", "{heartbeat}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ndjson_items_are_one_a_line_and_a_bad_line_is_that_items_error() {
    let app = spawn_app().await;
    let monitor = app.create_monitor("ndjson", 3600).await;
    let token = &monitor.push_token;
    let body = format!(
        "{{\"token\":\"{token}\",\"msg\":\"a\"}}\n\n\
         {{\"token\":\"{token}\",\"value\":1e999}}\r\n\
         {{not json\n\
         {{\"token\":\"{token}\",\"msg\":\"b\",\"value\":7}}"
    );
    let answer = expect_json(push_lines(&app, body).await, StatusCode::OK).await;
    assert_eq!(statuses(&answer), [200, 400, 400, 200], "{answer}");
    assert!(
        answer["results"][2]["error"]
            .as_str()
            .unwrap()
            .contains("not valid JSON")
    );
    let now = app.get_monitor(&monitor.id).await;
    assert_eq!(now.last_msg.as_deref(), Some("b"));
    assert_eq!(now.last_value, Some(7.0));
    assert_eq!(
        of_kind(&app.history(&monitor.id).await, "heartbeat").len(),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_oversized_and_malformed_batches() {
    let app = spawn_app_with(|config| {
        config.rate_limit = RateLimit {
            per_second: 100_000,
            burst: 100_000,
        };
    })
    .await;
    let monitor = app.create_monitor("bounds", 3600).await;

    // Empty: nothing to do, and said so.
    let empty = expect_json(push_batch(&app, &json!([])).await, StatusCode::OK).await;
    assert_eq!(empty, json!({"accepted": 0, "refused": 0, "results": []}));
    let empty = expect_json(push_lines(&app, "\n\n".to_owned()).await, StatusCode::OK).await;
    assert_eq!(empty["results"], json!([]));

    // More than 1000 items: refused whole, nothing recorded.
    let item = json!({"token": monitor.push_token});
    let too_many = Value::Array(vec![item.clone(); 1001]);
    let error = expect_error(
        push_batch(&app, &too_many).await,
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await;
    assert!(error.contains("at most 1000 items"), "{error}");
    let lines = format!("{item}\n").repeat(1001);
    expect_error(push_lines(&app, lines).await, StatusCode::PAYLOAD_TOO_LARGE).await;
    // 1000 is fine.
    let full = Value::Array(vec![item.clone(); 1000]);
    let answer = expect_json(push_batch(&app, &full).await, StatusCode::OK).await;
    assert_eq!(answer["accepted"], 1000, "{answer}");

    // A body over 2 MiB.
    let big = json!([{"token": monitor.push_token, "msg": "x".repeat(3 * 1024 * 1024)}]);
    let error = expect_error(push_batch(&app, &big).await, StatusCode::PAYLOAD_TOO_LARGE).await;
    assert!(error.contains("larger than 2 MiB"), "{error}");

    // Not an array, not JSON, not a bulk content type.
    for (content_type, body, expected) in [
        ("application/json", "{\"token\":\"x\"}", "JSON array"),
        ("application/json", "[{", "not valid JSON"),
        ("text/plain", "[]", "application/x-ndjson"),
        (
            "application/x-www-form-urlencoded",
            "token=x",
            "application/json",
        ),
    ] {
        let response = app
            .client
            .post(app.url("/api/push"))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        let error = expect_error(response, StatusCode::BAD_REQUEST).await;
        assert!(error.contains(expected), "{content_type} {body}: {error}");
    }
    let response = app.client.get(app.url("/api/push")).send().await.unwrap();
    expect_error(response, StatusCode::METHOD_NOT_ALLOWED).await;
    assert_eq!(
        of_kind(&app.history(&monitor.id).await, "heartbeat").len(),
        1000
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_answer_to_the_token_and_address_limits_as_single_pushes_do() {
    let app = spawn_app_with(|config| {
        config.rate_limit = RateLimit {
            per_second: 1,
            burst: 3,
        };
        config.ip_rate_limit = Some(RateLimit {
            per_second: 1,
            burst: 2,
        });
    })
    .await;
    let busy = app.create_monitor("busy", 3600).await;
    let quiet = app.create_monitor("quiet", 3600).await;
    // Five items for one monitor with a burst of 3: the last two are over its limit;
    // the other monitor's item is not held back by them.
    let mut items: Vec<Value> = (0..5)
        .map(|n| json!({"token": busy.push_token, "msg": format!("busy {n}")}))
        .collect();
    items.push(json!({"token": quiet.push_token}));
    let answer = expect_json(push_batch(&app, &Value::Array(items)).await, StatusCode::OK).await;
    assert_eq!(
        statuses(&answer),
        [200, 200, 200, 429, 429, 200],
        "{answer}"
    );
    assert_eq!(of_kind(&app.history(&busy.id).await, "heartbeat").len(), 3);

    // Unknown tokens spend the address's budget (burst 2): the third is refused
    // with 429, and every item after it too, a known token's included.
    let items = json!([
        {"token": "0000000000000000000001"},
        {"token": "0000000000000000000002"},
        {"token": "0000000000000000000003"},
        {"token": quiet.push_token, "msg": "after the block"},
    ]);
    let answer = expect_json(push_batch(&app, &items).await, StatusCode::OK).await;
    assert_eq!(statuses(&answer), [404, 404, 429, 429], "{answer}");
    // A blocked address is refused whole, before its body is read.
    let response = push_batch(&app, &json!([{"token": quiet.push_token}])).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().contains_key("retry-after"));
    expect_error(response, StatusCode::TOO_MANY_REQUESTS).await;
    assert_eq!(of_kind(&app.history(&quiet.id).await, "heartbeat").len(), 1);
}

/// Concurrent batches that take monitors down and up (changes of state, which hold
/// their actors until the batch is written) in different orders over the same
/// monitors never wait on each other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_batches_over_the_same_monitors_changing_state_all_finish() {
    let app = spawn_app_with(|config| {
        config.rate_limit = RateLimit {
            per_second: 100_000,
            burst: 100_000,
        };
    })
    .await;
    let mut tokens = Vec::new();
    let mut ids = Vec::new();
    for n in 0..10 {
        let monitor = app.create_monitor(&format!("flapping {n}"), 3600).await;
        tokens.push(monitor.push_token);
        ids.push(monitor.id);
    }
    let mut batches = JoinSet::new();
    for client in 0..8usize {
        let api = (*app).clone();
        let tokens = tokens.clone();
        batches.spawn(async move {
            for round in 0..10usize {
                let mut order: Vec<usize> = (0..tokens.len()).collect();
                if (client + round) % 2 == 1 {
                    order.reverse();
                }
                let status = if (client + round) % 3 == 0 {
                    "down"
                } else {
                    "up"
                };
                let items: Vec<Value> = order
                    .iter()
                    .map(|&n| json!({"token": tokens[n], "status": status}))
                    .collect();
                let answer =
                    expect_json(push_batch(&api, &Value::Array(items)).await, StatusCode::OK).await;
                assert_eq!(answer["accepted"], 10, "{answer}");
            }
        });
    }
    tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(batch) = batches.join_next().await {
            batch.expect("a client panicked");
        }
    })
    .await
    .expect("every batch is answered");
    for id in &ids {
        assert_eq!(of_kind(&app.history(id).await, "heartbeat").len(), 80);
    }
}

const NO_RATE_LIMIT: [&str; 6] = [
    "--rate-limit-per-second",
    "1000000",
    "--rate-limit-burst",
    "1000000",
    "--rate-limit-ip-per-second",
    "0",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_loses_no_item_of_an_answered_batch() {
    const MONITORS: usize = 50;
    const CLIENTS: usize = 4;
    let data_dir = TempDir::new().unwrap();
    let server = ServerProcess::start(data_dir.path(), &NO_RATE_LIMIT).await;
    let mut ids = Vec::new();
    let mut tokens = Vec::new();
    for n in 0..MONITORS {
        let monitor = server.create_monitor(&format!("agent job {n}"), 3600).await;
        ids.push(monitor.id);
        tokens.push(monitor.push_token);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = JoinSet::new();
    for client in 0..CLIENTS {
        let (stop, tokens, base_url) = (Arc::clone(&stop), tokens.clone(), server.base_url.clone());
        clients.spawn(async move {
            let http = reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap();
            let mut acknowledged: Vec<(usize, String)> = Vec::new();
            let mut batch = 0;
            while !stop.load(Ordering::SeqCst) {
                // 100 items over the 50 monitors: two per monitor, in order.
                let items: Vec<(usize, String)> = (0..100)
                    .map(|n| {
                        (
                            n % MONITORS,
                            format!("client {client} batch {batch} item {n}"),
                        )
                    })
                    .collect();
                let body: Vec<Value> = items
                    .iter()
                    .map(|(monitor, msg)| json!({"token": tokens[*monitor], "msg": msg}))
                    .collect();
                let sent = http
                    .post(format!("{base_url}/api/push"))
                    .json(&body)
                    .send()
                    .await;
                if let Ok(response) = sent
                    && response.status() == StatusCode::OK
                    && let Ok(answer) = response.json::<Value>().await
                {
                    // Only an answer that arrived in full counts, item by item.
                    for (result, item) in answer["results"].as_array().unwrap().iter().zip(items) {
                        if result["status"] == 200 {
                            acknowledged.push(item);
                        }
                    }
                } else {
                    sleep(Duration::from_millis(10)).await;
                }
                batch += 1;
            }
            acknowledged
        });
    }
    sleep(Duration::from_millis(2000)).await;
    let status = server.sigkill().await;
    assert_eq!(status.signal(), Some(9));
    stop.store(true, Ordering::SeqCst);
    let mut acknowledged = Vec::new();
    while let Some(client) = clients.join_next().await {
        acknowledged.extend(client.expect("client panicked"));
    }
    assert!(
        acknowledged.len() >= 1000,
        "too little load: {}",
        acknowledged.len()
    );

    let server = ServerProcess::start(data_dir.path(), &NO_RATE_LIMIT).await;
    let mut missing = Vec::new();
    for (index, id) in ids.iter().enumerate() {
        let recorded: BTreeSet<String> = of_kind(&server.all_events(id).await, "heartbeat")
            .iter()
            .filter_map(|event| event.msg.clone())
            .collect();
        missing.extend(
            acknowledged
                .iter()
                .filter(|(monitor, msg)| *monitor == index && !recorded.contains(msg))
                .map(|(_, msg)| msg.clone()),
        );
    }
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged items lost, e.g. {:?}",
        missing.len(),
        acknowledged.len(),
        &missing[..missing.len().min(5)]
    );
    let (status, log) = server.sigterm().await;
    assert_eq!(status.code(), Some(0), "{log}");
}
