//! Hostile input against the real server (issue 6): random JSON documents and random
//! bytes sent as the bodies of every endpoint that takes one. Every answer must be a
//! success or a 4xx with a JSON `{"error": ...}`; never a 5xx, never a crash, and the
//! server must still serve afterwards. (The push parameters and the event codec are
//! also fuzzed by proptest in the unit tests.)

use rand::Rng;
use rand::rngs::StdRng;
use rand::{SeedableRng, seq::IndexedRandom};
use reqwest::Method;
use serde_json::{Map, Value, json};

use crate::support::spawn_app;

const FIELDS: &[&str] = &[
    "name",
    "timeout_seconds",
    "interval_seconds",
    "channels",
    "tags",
    "kind",
    "url",
    "secret",
    "scope",
    "status",
    "msg",
    "value",
    "smtp_url",
    "from",
    "to",
];

fn random_string(rng: &mut StdRng) -> String {
    let length = *[0usize, 1, 5, 30, 201, 300].choose(rng).unwrap();
    (0..length)
        .map(|_| match rng.random_range(0..4) {
            0 => rng.random_range('a'..='z'),
            1 => *['\0', '\u{202e}', '"', '\\', 'é', '😀', '\n']
                .choose(rng)
                .unwrap(),
            2 => rng.random_range('0'..='9'),
            _ => char::from_u32(rng.random_range(0x20..0x2FFF)).unwrap_or('x'),
        })
        .collect()
}

fn random_value(rng: &mut StdRng, depth: u32) -> Value {
    match rng.random_range(0..if depth > 2 { 6 } else { 8 }) {
        0 => Value::Null,
        1 => Value::Bool(rng.random()),
        2 => json!(
            *[
                0i64,
                -1,
                1,
                59,
                60,
                31_536_000,
                31_536_001,
                i64::MAX,
                i64::MIN
            ]
            .choose(rng)
            .unwrap()
        ),
        3 => json!(
            *[0.5f64, -0.0, 1e308, 3600.0, f64::MIN_POSITIVE]
                .choose(rng)
                .unwrap()
        ),
        4 => Value::String(random_string(rng)),
        5 => Value::String(
            (*[
                "webhook",
                "slack",
                "discord",
                "email",
                "alertmanager",
                "read",
                "write",
                "http://127.0.0.1:1/x",
                "ftp://x",
                "",
            ]
            .choose(rng)
            .unwrap())
            .to_owned(),
        ),
        6 => Value::Array(
            (0..rng.random_range(0..5))
                .map(|_| random_value(rng, depth + 1))
                .collect(),
        ),
        _ => random_object(rng, depth + 1),
    }
}

fn random_object(rng: &mut StdRng, depth: u32) -> Value {
    let mut object = Map::new();
    for _ in 0..rng.random_range(0..6) {
        let key = if rng.random_bool(0.8) {
            (*FIELDS.choose(rng).unwrap()).to_owned()
        } else {
            random_string(rng)
        };
        object.insert(key, random_value(rng, depth));
    }
    Value::Object(object)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_bodies_get_json_answers_and_never_a_server_error() {
    let app = spawn_app().await;
    let monitor = app.create_monitor("target", 60).await;
    let mut rng = StdRng::seed_from_u64(0x5eed);
    let endpoints = [
        (Method::POST, "/api/monitors".to_owned()),
        (Method::PATCH, format!("/api/monitors/{}", monitor.id)),
        (Method::POST, "/api/channels".to_owned()),
        (Method::POST, "/api/keys".to_owned()),
        (Method::POST, format!("/api/push/{}", monitor.push_token)),
    ];
    let (mut answered, mut accepted, mut refused) = (0, 0, 0);
    for round in 0..150 {
        for (method, path) in &endpoints {
            let body: Vec<u8> = match round % 3 {
                0 => (0..rng.random_range(0..200))
                    .map(|_| rng.random())
                    .collect(),
                1 => random_value(&mut rng, 0).to_string().into_bytes(),
                _ => random_object(&mut rng, 0).to_string().into_bytes(),
            };
            let response = app
                .api(method.clone(), path)
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await
                .unwrap();
            let status = response.status();
            let text = response.text().await.unwrap();
            let shown = String::from_utf8_lossy(&body);
            assert!(
                !status.is_server_error(),
                "{method} {path} answered {status} to {shown:?}: {text}"
            );
            if status.is_success() {
                accepted += 1;
            }
            if status.is_client_error() {
                refused += 1;
                let error: Value = serde_json::from_str(&text)
                    .unwrap_or_else(|_| panic!("{method} {path}: non-JSON {status}: {text}"));
                assert!(
                    error["error"].as_str().is_some_and(|e| !e.is_empty()),
                    "{method} {path}: {text}"
                );
            }
            answered += 1;
        }
    }
    assert_eq!(answered, 150 * endpoints.len());
    // The generator reaches past the JSON parser: some documents are valid.
    assert!(
        accepted > 10 && refused > 100,
        "{accepted} accepted, {refused} refused"
    );
    // Still serving, and the target monitor still answers pushes.
    app.push_ok(&monitor.push_token, &[("msg", "still here")])
        .await;
}

/// Issue 15: a malformed id or query was said to answer a 400 with an empty body.
/// Walks every registered API route (read from the source, as `docs.rs` does) with every
/// method, malformed ids, malformed queries and malformed bodies, with and without
/// the admin token: every error is `{"error": "<text>"}` with a JSON content type.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_malformed_ids_queries_and_bodies_with_a_json_error() {
    let app = spawn_app().await;
    let monitor = app.create_monitor("walked", 3600).await;
    let ids: Vec<String> = [
        "not-a-uuid",
        "%ZZ",
        "%ff%fe",
        "%00",
        "a%2Fb",
        "%7Bid%7D",
        "%C3%A9",
        "0",
        "00000000-0000-0000-0000-000000000000",
        monitor.id.as_str(),
    ]
    .iter()
    .map(|id| (*id).to_owned())
    .chain(["x".repeat(5000)])
    .collect();
    let queries = [
        "",
        "?limit=%ZZ",
        "?limit=-1&before=x",
        "?limit=1&limit=2",
        "?%ff=%fe",
        "?limit",
        "?before=99999999999999999999999",
    ];
    let bodies: [&[u8]; 5] = [b"", b"{not json", b"[]", b"\xff\xfe", b"{\"name\": 5}"];
    let methods = [
        Method::GET,
        Method::POST,
        Method::PATCH,
        Method::DELETE,
        Method::PUT,
    ];
    // Every (route, id, method, caller) once; the queries and bodies take turns, and
    // every query meets every route with a GET.
    let mut turn = 0usize;
    let mut checked = 0;
    // The dashboard's pages answer people in HTML (`dashboard.rs` walks them).
    for (template, _) in crate::docs::registered_routes()
        .into_iter()
        .filter(|(_, place)| place.starts_with("src/http"))
    {
        for id in &ids {
            let path = template.replace("{id}", id).replace("{token}", id);
            let mut requests: Vec<(Method, &str, &[u8])> = queries
                .iter()
                .map(|query| (Method::GET, *query, &b""[..]))
                .collect();
            for method in &methods {
                turn += 1;
                requests.push((
                    method.clone(),
                    queries[turn % queries.len()],
                    bodies[turn % bodies.len()],
                ));
            }
            for (method, query, body) in requests {
                for authorised in [true, false] {
                    let mut request = app
                        .client
                        .request(method.clone(), app.url(&format!("{path}{query}")))
                        .body(body.to_vec());
                    if authorised {
                        request = request.bearer_auth(&app.admin_token);
                    }
                    let response = request.send().await.unwrap();
                    let status = response.status();
                    if status.is_success() {
                        continue;
                    }
                    let content_type = response
                        .headers()
                        .get("content-type")
                        .and_then(|value| value.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    let text = response.text().await.unwrap();
                    let what = format!(
                        "{method} {}{query} ({} body bytes, authorised: {authorised})",
                        &path[..path.len().min(80)],
                        body.len()
                    );
                    assert!(
                        content_type.starts_with("application/json"),
                        "{what}: {status} with content type {content_type:?}: {text:?}"
                    );
                    let parsed: Value = serde_json::from_str(&text).unwrap_or_else(|error| {
                        panic!("{what}: {status} {text:?} is not JSON: {error}")
                    });
                    let error = parsed["error"].as_str().unwrap_or_default();
                    assert!(!error.is_empty(), "{what}: {status} {parsed}");
                    assert!(!status.is_server_error(), "{what}: {status} {parsed}");
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 1000, "only {checked} error answers were checked");
}
