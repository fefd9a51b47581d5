//! The API against its OpenAPI document (`GET /api/openapi.json`), by schemathesis
//! (pinned in `scripts/test.sh`, which installs it): valid and invalid requests to
//! every operation of the real server, each answer checked against the document (no
//! 5xx, a documented status, content type, body and headers). Afterwards the server
//! must still be ready, drain on SIGTERM, have logged no panic, and its store must
//! replay (`pushmon check`).
//!
//! The server runs in a network namespace of its own with only loopback (`unshare
//! --net`, as root, as CI is), and so do the requests (`nsenter`): generated channels
//! and alerts name arbitrary hosts, and none of that may leave the machine.
//!
//! The run is bounded by `--max-examples` (about 2,500 requests in all) and a hard
//! timeout. The replacement of the ping key runs last, on its own, so the slug ping
//! URLs are tried with the key they were given. A seed other than the fixed one explores further:
//! `SCHEMATHESIS_SEED=<n> cargo test --test it contract::`.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::time::{Instant, sleep, timeout_at};

use reqwest::{Method, StatusCode, header};

use crate::support::{ADMIN_TOKEN, ServerProcess, check_store, expect_error, expect_json};

/// The schemathesis release `scripts/test.sh` installs.
const SCHEMATHESIS_VERSION: &str = "4.32.5";

/// The checks every answer must pass.
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
                      response_schema_conformance,response_headers_conformance";

/// Test cases per operation and phase: enough to reach every answer, small enough
/// for a suite on two cores.
const MAX_EXAMPLES: &str = "25";

/// The seed unless `SCHEMATHESIS_SEED` gives another: a failure reproduces.
const DEFAULT_SEED: &str = "20261129";

/// The whole run's bound: it takes about 20 s on an idle machine, a minute or so
/// beside the rest of the suite on two cores.
const RUN_TIMEOUT: Duration = Duration::from_secs(110);

/// `unshare --net sh -c 'ip link set lo up && exec "$@"'`: the server in a network
/// namespace with nothing but loopback.
const ISOLATED: &[&str] = &[
    "unshare",
    "--net",
    "sh",
    "-c",
    "ip link set lo up && exec \"$@\"",
    "pushmon-contract",
];

/// A command run in the server's network namespace.
fn in_namespace_of(pid: u32, program: &str) -> tokio::process::Command {
    let mut command = tokio::process::Command::new("nsenter");
    command
        .arg(format!("--net=/proc/{pid}/ns/net"))
        .arg(program)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    command
}

/// One request with curl from inside the namespace: the status and the JSON body
/// (`Value::Null` when there is none).
async fn request(
    pid: u32,
    base: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    let mut command = in_namespace_of(pid, "curl");
    command
        .args(["-sS", "--max-time", "20", "-X", method])
        .args(["-H", &format!("Authorization: Bearer {ADMIN_TOKEN}")])
        .args(["-w", "\n%{http_code}"]);
    if let Some(body) = body {
        command.args([
            "-H",
            "Content-Type: application/json",
            "-d",
            &body.to_string(),
        ]);
    }
    let output = command
        .arg(format!("{base}{path}"))
        .output()
        .await
        .expect("run curl through nsenter");
    assert!(
        output.status.success(),
        "curl {method} {path} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).expect("UTF-8 answer");
    let (body, status) = text.rsplit_once('\n').expect("the status line");
    let status: u16 = status.trim().parse().expect("a status code");
    let body = if body.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(body).unwrap_or_else(|_| Value::String(body.to_owned()))
    };
    (status, body)
}

/// A push with a `text/plain` body (a job's output) from inside the namespace: the
/// status.
async fn push_text(pid: u32, base: &str, path: &str, text: &str) -> u16 {
    let output = in_namespace_of(pid, "curl")
        .args([
            "-sS",
            "--max-time",
            "20",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ])
        .args(["-H", "Content-Type: text/plain", "--data-binary", text])
        .arg(format!("{base}{path}"))
        .output()
        .await
        .expect("run curl through nsenter");
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .expect("a status code")
}

/// Creates something through the API (201) and answers it.
async fn create(pid: u32, base: &str, path: &str, body: Value) -> Value {
    let (status, answer) = request(pid, base, "POST", path, Some(&body)).await;
    assert_eq!(status, 201, "POST {path} {body}: {answer}");
    answer
}

fn text(value: &Value, field: &str) -> String {
    value[field]
        .as_str()
        .unwrap_or_else(|| panic!("no {field} in {value}"))
        .to_owned()
}

async fn wait_until_ready(pid: u32, base: &str, server: &ServerProcess) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, _) = request(pid, base, "GET", "/readyz", None).await;
        if status == 200 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "not ready within 30 s; log:\n{}",
            server.log()
        );
        sleep(Duration::from_millis(100)).await;
    }
}

/// The ids schemathesis puts in paths, so requests reach real objects: one of each
/// kind to change and read, another to delete (a deleted one would leave every later
/// request a 404).
struct Seeded {
    monitor: String,
    monitor_to_delete: String,
    push_token: String,
    ping_key: String,
    slug: String,
    channel: String,
    channel_to_delete: String,
    badge: String,
    badge_key: String,
    badge_to_delete: String,
    page: String,
    page_to_delete: String,
    key: String,
}

async fn seed(pid: u32, base: &str) -> Seeded {
    // Nothing listens there: deliveries and channel tests fail (502), inside the namespace.
    let channel = create(
        pid,
        base,
        "/api/channels",
        json!({"kind": "webhook", "name": "hook", "url": "http://127.0.0.1:9/hook", "secret": "s3cret"}),
    )
    .await;
    let channel_to_delete = create(
        pid,
        base,
        "/api/channels",
        json!({"kind": "email", "name": "mail", "smtp_url": "smtp://u:p@127.0.0.1:9",
               "from": "pushmon@example.com", "to": ["ops@example.com"]}),
    )
    .await;
    let monitor = create(
        pid,
        base,
        "/api/monitors",
        json!({"name": "backup", "timeout_seconds": 3600, "tags": ["prod"],
               "channels": [text(&channel, "id")]}),
    )
    .await;
    let monitor_to_delete = create(
        pid,
        base,
        "/api/monitors",
        json!({"name": "doomed", "timeout_seconds": 60}),
    )
    .await;
    // A history with every kind of state change: down (an alert, a failed delivery),
    // up again, a heartbeat with a message and a value, a job's runs (a start, a log,
    // an end with an exit status and output, a failure counted below the threshold),
    // and a run left open.
    let token = text(&monitor, "push_token");
    let rid = "0b6f3a52-1c4d-4e8f-9a7b-2c3d4e5f6a71";
    for (query, output) in [
        ("status=down&msg=disk%20full", None),
        ("status=up&value=42", None),
        (&*format!("kind=start&rid={rid}"), None),
        ("kind=log&msg=halfway", Some("copied 3 of 5\n")),
        (&*format!("exit=3&rid={rid}"), Some("ERROR: disk full\n")),
        ("exit=0", None),
        ("kind=start", None),
    ] {
        let path = format!("/api/push/{token}?{query}");
        let status = match output {
            Some(output) => push_text(pid, base, &path, output).await,
            None => request(pid, base, "POST", &path, None).await.0,
        };
        assert_eq!(status, 200, "push {query}");
    }
    let id = text(&monitor, "id");
    let (status, body) = request(
        pid,
        base,
        "PATCH",
        &format!("/api/monitors/{id}"),
        Some(&json!({"failure_threshold": 2, "max_runtime_seconds": 7200})),
    )
    .await;
    assert_eq!(status, 200, "PATCH: {body}");
    let (status, body) = request(
        pid,
        base,
        "POST",
        &format!("/api/push/{token}?status=down"),
        None,
    )
    .await;
    assert_eq!(status, 200, "a counted failure: {body}");
    // A cron monitor with maintenance windows, one of them on now, shown in the list.
    create(
        pid,
        base,
        "/api/monitors",
        json!({"name": "nightly", "schedule": "30 2 * * *", "timezone": "Europe/Paris",
               "grace_seconds": 1800, "min_runtime_seconds": 60, "realert_every_seconds": 3600,
               "maintenance": [{"start": "2000-01-01T00:00:00Z", "end": "2100-01-01T00:00:00Z"},
                               {"cron": "0 1 * * 0", "duration_seconds": 10800}]}),
    )
    .await;
    // Pushes and pings go to a monitor of their own: schemathesis rotates the other's
    // token. Its slug names it in slug ping URLs.
    let pushed = create(
        pid,
        base,
        "/api/monitors",
        json!({"name": "pushed", "timeout_seconds": 3600, "slug": "pushed-job"}),
    )
    .await;
    let (status, settings) = request(pid, base, "GET", "/api/settings", None).await;
    assert_eq!(status, 200, "settings: {settings}");
    let badge = create(
        pid,
        base,
        "/api/badges",
        json!({"monitor": text(&monitor, "id")}),
    )
    .await;
    let badge_to_delete = create(
        pid,
        base,
        "/api/badges",
        json!({"tag": "prod", "label": "prod"}),
    )
    .await;
    let page = create(
        pid,
        base,
        "/api/status-pages",
        json!({"slug": "main", "title": "Example", "monitors": [text(&monitor, "id")], "tags": ["prod"]}),
    )
    .await;
    let page_to_delete = create(
        pid,
        base,
        "/api/status-pages",
        json!({"slug": "old", "title": "Old"}),
    )
    .await;
    let key = create(
        pid,
        base,
        "/api/keys",
        json!({"name": "grafana", "scope": "read"}),
    )
    .await;
    Seeded {
        monitor: text(&monitor, "id"),
        monitor_to_delete: text(&monitor_to_delete, "id"),
        push_token: text(&pushed, "push_token"),
        ping_key: text(&settings, "ping_key"),
        slug: text(&pushed, "slug"),
        channel: text(&channel, "id"),
        channel_to_delete: text(&channel_to_delete, "id"),
        badge: text(&badge, "id"),
        badge_key: text(&badge, "key"),
        badge_to_delete: text(&badge_to_delete, "id"),
        page: text(&page, "id"),
        page_to_delete: text(&page_to_delete, "id"),
        key: text(&key, "id"),
    }
}

/// schemathesis.toml: the seeded ids in paths (the first entry matching an operation
/// applies), and what else the run needs.
fn config(seeded: &Seeded) -> String {
    let operation = |selector: &str, parameters: String| {
        format!("[[operations]]\n{selector}\nparameters = {{ {parameters} }}\n\n")
    };
    let id = |value: &str| format!("id = \"{value}\"");
    let mut text =
        String::from("# Written by tests/it/contract.rs.\n[generation]\ndatabase = \"none\"\n\n");
    // First, as the channels' entry below matches it too. A test message to a receiver
    // that is not there is a documented 502.
    text += &format!(
        "[[operations]]\ninclude-path = \"/api/channels/{{id}}/test\"\nparameters = {{ {} }}\n\
         checks.not_a_server_error.expected-statuses = [\"2XX\", \"4XX\", 502]\n\n",
        id(&seeded.channel)
    );
    for (path, delete, keep) in [
        (
            "/api/monitors/{id}",
            &seeded.monitor_to_delete,
            &seeded.monitor,
        ),
        (
            "/api/channels/{id}",
            &seeded.channel_to_delete,
            &seeded.channel,
        ),
        ("/api/badges/{id}", &seeded.badge_to_delete, &seeded.badge),
        (
            "/api/status-pages/{id}",
            &seeded.page_to_delete,
            &seeded.page,
        ),
    ] {
        text += &operation(
            &format!("include-path = \"{path}\"\ninclude-method = \"DELETE\""),
            id(delete),
        );
        text += &operation(
            &format!(
                "include-path-regex = \"^{}\"",
                path.replace('{', "\\\\{").replace('}', "\\\\}")
            ),
            id(keep),
        );
    }
    text += &operation("include-path = \"/api/keys/{id}\"", id(&seeded.key));
    text += &operation(
        "include-path = \"/api/push/{token}\"",
        format!("token = \"{}\"", seeded.push_token),
    );
    for path in ["/ping/{token}", "/ping/{token}/{action}"] {
        text += &operation(
            &format!("include-path = \"{path}\""),
            format!("token = \"{}\"", seeded.push_token),
        );
    }
    text += &operation(
        "include-path = \"/ping/{ping_key}/{slug}/{action}\"",
        format!(
            "ping_key = \"{}\", slug = \"{}\"",
            seeded.ping_key, seeded.slug
        ),
    );
    text += &operation(
        "include-path = \"/badge/{key}.json\"",
        format!("key = \"{}\"", seeded.badge_key),
    );
    text
}

/// Fails, saying how to install it, unless the pinned schemathesis is there.
async fn require_schemathesis() {
    let output = tokio::process::Command::new("schemathesis")
        .arg("--version")
        .output()
        .await
        .unwrap_or_else(|error| {
            panic!(
                "schemathesis is not installed ({error}): scripts/test.sh installs it \
                 (pip install schemathesis=={SCHEMATHESIS_VERSION})"
            )
        });
    let version = String::from_utf8_lossy(&output.stdout);
    assert!(
        version.contains(SCHEMATHESIS_VERSION),
        "schemathesis {SCHEMATHESIS_VERSION} is the version this test is written for, found \
         {version:?}: scripts/test.sh installs it"
    );
}

/// The operation that replaces the ping key: run on its own, after the others, so the
/// slug ping URLs are tried with the key they were seeded with.
const ROTATE_PING_KEY: &str = "/api/settings/ping-key/rotate";

/// One schemathesis run over the operations `filter` selects, finished by `deadline`.
async fn run_schemathesis(
    pid: u32,
    base: &str,
    dir: &Path,
    seed: &str,
    filter: [&str; 2],
    deadline: Instant,
) -> (bool, String) {
    let mut command = in_namespace_of(pid, "schemathesis");
    command
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .arg("--config-file")
        .arg(dir.join("schemathesis.toml"))
        .arg("run")
        .arg(format!("{base}/api/openapi.json"))
        .args(["--header", &format!("Authorization: Bearer {ADMIN_TOKEN}")])
        .args(["--checks", CHECKS])
        .args(["--max-examples", MAX_EXAMPLES])
        .args(["--seed", seed])
        .args(["--request-timeout", "20"])
        .args(["--workers", "1"])
        .args(filter)
        .arg("--no-color");
    let output = timeout_at(deadline, command.output())
        .await
        .unwrap_or_else(|_| panic!("schemathesis did not finish within {RUN_TIMEOUT:?}"))
        .expect("run schemathesis through nsenter");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), report)
}

#[tokio::test]
async fn every_answer_of_the_real_server_matches_the_openapi_document() {
    require_schemathesis().await;
    let data = TempDir::new().unwrap();
    let work = TempDir::new().unwrap();
    let server = ServerProcess::start_wrapped_unready(
        ISOLATED,
        data.path(),
        // One attempt per alert, so a delivery's outcome is in the history soon.
        &["--alert-max-attempts", "1"],
    )
    .await;
    let pid = server.pid();
    let base = server.base_url.clone();
    wait_until_ready(pid, &base, &server).await;
    let seeded = seed(pid, &base).await;
    std::fs::write(work.path().join("schemathesis.toml"), config(&seeded)).unwrap();

    let seed = std::env::var("SCHEMATHESIS_SEED").unwrap_or_else(|_| DEFAULT_SEED.to_owned());
    let started = Instant::now();
    let deadline = started + RUN_TIMEOUT;
    for filter in [
        ["--exclude-path", ROTATE_PING_KEY],
        ["--include-path", ROTATE_PING_KEY],
    ] {
        let (passed, report) =
            run_schemathesis(pid, &base, work.path(), &seed, filter, deadline).await;
        assert!(
            passed,
            "schemathesis (seed {seed}, {filter:?}) found answers the document does not \
             describe:\n{report}\nserver log:\n{}",
            server.log()
        );
        let summary = report.lines().rev().find(|line| line.contains("generated"));
        println!("{filter:?}: {}", summary.unwrap_or("(no summary line)"));
    }
    println!(
        "schemathesis (seed {seed}) passed in {:.1?}",
        started.elapsed()
    );

    let (status, body) = request(pid, &base, "GET", "/readyz", None).await;
    assert_eq!(
        (status, &body),
        (200, &json!({"status": "ready"})),
        "after the run"
    );
    let (status, body) = request(
        pid,
        &base,
        "GET",
        &format!("/api/monitors/{}", seeded.monitor),
        None,
    )
    .await;
    assert_eq!(status, 200, "the seeded monitor after the run: {body}");

    let (exit, log) = server.sigterm().await;
    assert!(exit.success(), "exit {exit:?} after SIGTERM; log:\n{log}");
    assert!(!log.contains("panicked"), "the server panicked:\n{log}");
    check_store(data.path());
}

/// The document promises a JSON error for every failure; the public badge answered a
/// storage fault with a bare 503 and no body. (A store whose directory vanished
/// refuses a write, then withdraws the database from readers.)
#[tokio::test]
async fn a_badge_whose_store_cannot_be_read_answers_a_json_error() {
    let dir = TempDir::new().unwrap();
    let server = ServerProcess::start(dir.path(), &[]).await;
    let monitor = server.create_monitor("backup", 3600).await;
    let badge = expect_json(
        server
            .api(Method::POST, "/api/badges")
            .json(&json!({"monitor": monitor.id}))
            .send()
            .await
            .unwrap(),
        StatusCode::CREATED,
    )
    .await;
    let url = server.url(&format!("/badge/{}.json", text(&badge, "key")));
    std::fs::remove_dir_all(dir.path().join("fjall")).unwrap();
    let refused = server.push(&monitor.push_token, &[]).await;
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    for query in ["", "?uptime=24h"] {
        let response = server
            .client
            .get(format!("{url}{query}"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response
                .headers()
                .get(header::CONTENT_TYPE)
                .map(|value| value.as_bytes()),
            Some(&b"application/json"[..]),
            "{query}: {:?}",
            response.headers()
        );
        let error = expect_error(response, StatusCode::SERVICE_UNAVAILABLE).await;
        assert!(error.contains("storage"), "{query}: {error}");
    }
    let (_, log) = server.sigterm().await;
    assert!(!log.contains("panicked"), "{log}");
}
