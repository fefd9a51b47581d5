//! Declarative monitors (issue 7): `--monitors-file` reconciled at start-up and on
//! SIGHUP — create, update, prune — with push tokens from the environment so client
//! URLs survive a redeploy, and invalid files refused with the line and field.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::time::{Instant, sleep};

use crate::support::{ADMIN_TOKEN, Api, ServerProcess, expect_json};

/// 22 base64url characters: a valid declared push token.
const BACKUP_TOKEN: &str = "AAAAAAAAAAAAAAAAAAAAAA";
const ROTATED_TOKEN: &str = "BBBBBBBBBBBBBBBBBBBBBA";

async fn monitors_by_key(api: &Api) -> Vec<Value> {
    let body = expect_json(
        api.api(Method::GET, "/api/monitors").send().await.unwrap(),
        StatusCode::OK,
    )
    .await;
    let mut declared: Vec<Value> = body["monitors"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|monitor| monitor["key"].is_string())
        .cloned()
        .collect();
    declared.sort_by_key(|monitor| monitor["key"].as_str().unwrap().to_owned());
    declared
}

async fn wait_for(api: &Api, what: &str, check: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let monitors = monitors_by_key(api).await;
        if check(&monitors) {
            return monitors;
        }
        assert!(Instant::now() < deadline, "{what}: {monitors:#?}");
        sleep(Duration::from_millis(50)).await;
    }
}

/// Runs `pushmon serve` with `file`, expects it to refuse to start, returns stderr.
async fn refused_at_start(data_dir: &std::path::Path, file: &std::path::Path) -> String {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_pushmon"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin-token",
            ADMIN_TOKEN,
        ])
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--monitors-file")
        .arg(file)
        .env("NO_COLOR", "1")
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        !output.status.success(),
        "an invalid monitors file must stop start-up: {stderr}"
    );
    stderr
}

async fn start(data_dir: &std::path::Path, file: &std::path::Path) -> ServerProcess {
    let file = file.to_str().unwrap().to_owned();
    ServerProcess::start(data_dir, &["--monitors-file", &file]).await
}

#[tokio::test]
async fn the_file_is_reconciled_at_start_and_on_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let file = dir.path().join("monitors.yaml");
    std::fs::write(
        &file,
        format!(
            r#"
channels:
  - key: ops
    kind: webhook
    name: Ops
    url: http://127.0.0.1:9/hook
monitors:
  - key: backup
    name: Nightly backup
    timeout_seconds: 3600
    channels: [ops]
    tags: [backup, prod]
    push_token: {BACKUP_TOKEN}
  - key: etl
    name: ETL
    timeout_seconds: 600
    interval_seconds: 300
"#
        ),
    )
    .unwrap();
    let server = start(&data_dir, &file).await;
    let monitors = monitors_by_key(&server).await;
    assert_eq!(monitors.len(), 2, "{monitors:#?}");
    assert_eq!(monitors[0]["key"], "backup");
    assert_eq!(monitors[0]["push_token"], BACKUP_TOKEN);
    assert_eq!(monitors[0]["tags"], serde_json::json!(["backup", "prod"]));
    assert_eq!(monitors[0]["channels"].as_array().unwrap().len(), 1);
    assert_eq!(monitors[1]["interval_seconds"], 300);
    // The declared token works for pushes.
    server.push_ok(BACKUP_TOKEN, &[]).await;

    // A monitor made through the API is never touched by the file.
    let manual = server.create_monitor("made by hand", 60).await;

    // Change one monitor, drop the other, rotate the declared token, prune.
    std::fs::write(
        &file,
        format!(
            r#"
prune: true
channels:
  - key: ops
    kind: webhook
    name: Ops (renamed)
    url: http://127.0.0.1:9/hook
monitors:
  - key: backup
    name: Nightly backup
    timeout_seconds: 7200
    channels: [ops]
    tags: [backup]
    push_token: {ROTATED_TOKEN}
"#
        ),
    )
    .unwrap();
    server.signal("HUP");
    let monitors = wait_for(&server, "reconciled after SIGHUP", |monitors| {
        monitors.len() == 1 && monitors[0]["timeout_seconds"] == 7200
    })
    .await;
    assert_eq!(monitors[0]["push_token"], ROTATED_TOKEN);
    assert_eq!(monitors[0]["tags"], serde_json::json!(["backup"]));
    assert_eq!(
        server.push(BACKUP_TOKEN, &[]).await.status(),
        StatusCode::NOT_FOUND,
        "the old declared token stops working"
    );
    server.push_ok(ROTATED_TOKEN, &[]).await;
    assert_eq!(server.get_monitor(&manual.id).await.name, "made by hand");
    let channels = expect_json(
        server
            .api(Method::GET, "/api/channels")
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(channels["channels"][0]["name"], "Ops (renamed)");

    // The changes are ordinary events in the history.
    let id = monitors[0]["id"].as_str().unwrap();
    let kinds: Vec<String> = server
        .events(id)
        .await
        .iter()
        .map(|event| event.kind.clone())
        .collect();
    assert!(kinds.contains(&"updated".to_owned()), "{kinds:?}");
    assert!(kinds.contains(&"token_rotated".to_owned()), "{kinds:?}");

    // An invalid file on SIGHUP changes nothing and the server keeps running.
    std::fs::write(
        &file,
        "monitors:\n  - key: backup\n    name: x\n    timeout_seconds: 0\n",
    )
    .unwrap();
    server.signal("HUP");
    sleep(Duration::from_millis(500)).await;
    let monitors = monitors_by_key(&server).await;
    assert_eq!(monitors.len(), 1);
    assert_eq!(monitors[0]["timeout_seconds"], 7200);
    let (status, log) = server.sigterm().await;
    assert!(status.success());
    assert!(log.contains("monitors file not applied"), "{log}");
    assert!(
        log.contains("timeout_seconds must be from 1") && log.contains("line 2"),
        "the error names the field and the line of the item: {log}"
    );
    // Issue 15: the summary was logged as a Rust debug structure
    // (`summary=Summary { created: 2, … }`); its fields are plain key=value.
    let reconciled: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("monitors file reconciled"))
        .collect();
    assert_eq!(
        reconciled.len(),
        2,
        "at start and on the first SIGHUP: {log}"
    );
    for line in reconciled {
        assert!(!line.contains('{') && !line.contains("Summary"), "{line}");
        for field in ["created=", "updated=", "deleted=", "unchanged="] {
            assert!(line.contains(field), "{line} has no {field}");
        }
    }
}

#[tokio::test]
async fn an_invalid_file_at_start_names_line_and_field_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let file = dir.path().join("monitors.yaml");
    std::fs::write(
        &file,
        "monitors:\n  - key: good\n    name: Good\n    timeout_seconds: 60\n  - key: bad\n    name: Bad\n    timeout_seconds: soon\n",
    )
    .unwrap();
    let stderr = refused_at_start(&data_dir, &file).await;
    assert!(
        stderr.contains("monitors[1].timeout_seconds"),
        "names the field: {stderr}"
    );
    assert!(stderr.contains("line 7"), "names the line: {stderr}");
    // Issue 15: the error was printed twice (by start-up, then on exit).
    assert_eq!(
        stderr.matches("monitors[1].timeout_seconds").count(),
        1,
        "the error is printed once: {stderr}"
    );

    // Nothing was created: a start without the file finds no monitor.
    let server = ServerProcess::start(&data_dir, &[]).await;
    assert!(server.list_monitors().await.is_empty());
    let (status, _) = server.sigterm().await;
    assert!(status.success());
}

#[tokio::test]
async fn tokens_come_from_the_environment_and_bad_tokens_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("monitors.yaml");
    std::fs::write(
        &file,
        "monitors:\n  - key: a\n    name: A\n    timeout_seconds: 60\n    push_token: too-short\n",
    )
    .unwrap();
    let stderr = refused_at_start(&dir.path().join("data"), &file).await;
    assert!(
        stderr.contains("push token must be 22 base64url characters"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("too-short"),
        "a token value must not be logged: {stderr}"
    );

    std::fs::write(
        &file,
        "monitors:\n  - key: a\n    name: A\n    timeout_seconds: 60\n    push_token_env: PUSHMON_IT_TOKEN_A\n",
    )
    .unwrap();
    let server = ServerProcess::start_with_env(
        &dir.path().join("data"),
        &[],
        &[
            ("PUSHMON_MONITORS_FILE", file.to_str().unwrap()),
            ("PUSHMON_IT_TOKEN_A", BACKUP_TOKEN),
        ],
    )
    .await;
    let monitors = monitors_by_key(&server).await;
    assert_eq!(monitors.len(), 1);
    assert_eq!(monitors[0]["push_token"], BACKUP_TOKEN);
    server.push_ok(BACKUP_TOKEN, &[]).await;
    let (status, _) = server.sigterm().await;
    assert!(status.success());
}

#[tokio::test]
async fn sources_and_signing_secrets_are_declared_and_bad_ones_refused_without_their_value() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("monitors.yaml");
    let secret_file = dir.path().join("secret");
    std::fs::write(&secret_file, "declared-signing-secret-0123\n").unwrap();
    for (monitor, expected) in [
        (
            "    allowed_sources: [10.0.0.0/33]\n",
            "allowed_sources: \"10.0.0.0/33\" is neither",
        ),
        (
            "    signing_secret: too-short-secret\n    signing_secret_env: X\n",
            "give at most one of signing_secret, signing_secret_env, signing_secret_file",
        ),
        (
            "    signing_secret: shorty\n",
            "signing_secret must be 16 to 256",
        ),
    ] {
        std::fs::write(
            &file,
            format!("monitors:\n  - key: a\n    name: A\n    timeout_seconds: 60\n{monitor}"),
        )
        .unwrap();
        let stderr = refused_at_start(&dir.path().join("refused"), &file).await;
        assert!(stderr.contains(expected), "{stderr}");
        assert!(
            !stderr.contains("shorty"),
            "a secret must not be logged: {stderr}"
        );
    }

    std::fs::write(
        &file,
        format!(
            "monitors:\n  - key: a\n    name: A\n    timeout_seconds: 60\n    \
             allowed_sources: [127.0.0.0/8]\n    signing_secret_file: {}\n",
            secret_file.display()
        ),
    )
    .unwrap();
    let server = start(&dir.path().join("data"), &file).await;
    let monitors = monitors_by_key(&server).await;
    assert_eq!(
        monitors[0]["allowed_sources"],
        serde_json::json!(["127.0.0.0/8"])
    );
    assert_eq!(monitors[0]["signed"], serde_json::json!(true));
    let token = monitors[0]["push_token"].as_str().unwrap().to_owned();
    let response = crate::signed::send_signed(
        &server,
        reqwest::Method::POST,
        &format!("/api/push/{token}"),
        b"",
        "declared-signing-secret-0123",
        crate::signed::unix_now(),
    )
    .await;
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    let (status, log) = server.sigterm().await;
    assert!(status.success());
    assert!(!log.contains("declared-signing-secret"), "{log}");
}

#[tokio::test]
async fn fleets_and_parents_by_key_are_declared_and_a_cycle_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let file = dir.path().join("monitors.yaml");
    // The child comes before its parent: parents are given once both exist.
    std::fs::write(
        &file,
        "monitors:\n  - key: workers\n    name: Workers\n    timeout_seconds: 120\n    \
         min_instances: 3\n    instance_retention_seconds: 3600\n    parents: [router]\n    \
         dependency_grace_seconds: 30\n  - key: router\n    name: Router\n    timeout_seconds: 60\n",
    )
    .unwrap();
    let server = start(&data_dir, &file).await;
    let monitors = wait_for(&server, "both declared", |monitors| monitors.len() == 2).await;
    let (router, workers) = (&monitors[0], &monitors[1]);
    assert_eq!(workers["min_instances"], 3);
    assert_eq!(workers["instance_retention_seconds"], 3600);
    assert_eq!(workers["dependency_grace_seconds"], 30);
    assert_eq!(workers["parents"], serde_json::json!([router["id"]]));
    // The export names the parent by key, and reads back the same.
    let export = server
        .api(Method::GET, "/api/export")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(export.contains("parents:\n  - router"), "{export}");
    assert!(export.contains("min_instances: 3"), "{export}");
    let (status, _) = server.sigterm().await;
    assert!(status.success());
    // A cycle is refused before anything changes.
    std::fs::write(
        &file,
        "monitors:\n  - key: a\n    name: A\n    timeout_seconds: 60\n    parents: [b]\n  \
         - key: b\n    name: B\n    timeout_seconds: 60\n    parents: [a]\n",
    )
    .unwrap();
    let refused = refused_at_start(&data_dir, &file).await;
    assert!(refused.contains("cannot depend on itself"), "{refused}");
    std::fs::write(
        &file,
        "monitors:\n  - key: a\n    name: A\n    timeout_seconds: 60\n    parents: [nobody]\n",
    )
    .unwrap();
    let refused = refused_at_start(&data_dir, &file).await;
    assert!(
        refused.contains("no monitor with key \"nobody\""),
        "{refused}"
    );
}

/// The guard's own monitor (key `pushmon-guard`, `docs/alerts.md`, "The guard's
/// alert") is the guard's: a file with `prune: true` that does not declare it leaves
/// it alone, and prunes the rest as usual.
#[tokio::test]
async fn pruning_leaves_the_guards_own_monitor_alone() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let file = dir.path().join("monitors.yaml");
    std::fs::write(
        &file,
        r#"
monitors:
  - key: pushmon-guard
    name: pushmon guard
    timeout_seconds: 31536000
  - key: etl
    name: ETL
    timeout_seconds: 600
"#,
    )
    .unwrap();
    let server = start(&data_dir, &file).await;
    assert_eq!(monitors_by_key(&server).await.len(), 2);
    std::fs::write(
        &file,
        r#"
prune: true
monitors:
  - key: backup
    name: Nightly backup
    timeout_seconds: 3600
"#,
    )
    .unwrap();
    server.signal("HUP");
    let monitors = wait_for(&server, "pruned after SIGHUP", |monitors| {
        monitors.iter().all(|monitor| monitor["key"] != "etl")
            && monitors.iter().any(|monitor| monitor["key"] == "backup")
    })
    .await;
    let keys: Vec<&str> = monitors
        .iter()
        .filter_map(|monitor| monitor["key"].as_str())
        .collect();
    assert_eq!(keys, vec!["backup", "pushmon-guard"]);
    let (status, _) = server.sigterm().await;
    assert!(status.success());
}
