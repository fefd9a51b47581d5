//! The command line's client side (`docs/cli.md`), through the real binary: the
//! management commands and `pushmon push` against a real server in both output
//! formats, with their exit codes; completions and manual pages. `pushmon run` is in
//! [`run`] (process handling, against a receiver that records requests) and
//! [`run_server`] (against a real server).

mod run;
mod run_server;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt as _;

use crate::receiver::Receiver;
use crate::support::{ADMIN_TOKEN, Status, TestApp, expect_json, spawn_app};

/// Every variable the client reads, removed from the binary's environment so the
/// machine's own settings never leak into a test.
const CLIENT_VARIABLES: &[&str] = &[
    "PUSHMON_URL",
    "PUSHMON_TOKEN",
    "PUSHMON_TOKEN_FILE",
    "PUSHMON_CONFIG",
    "PUSHMON_PING_URL",
    "PUSHMON_PUSH_TOKEN",
];

/// What one run of the binary did.
#[derive(Debug)]
pub struct Ran {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    /// Asserts the exit code; returns standard output.
    #[track_caller]
    pub fn expect(&self, code: i32) -> &str {
        assert_eq!(
            self.code,
            Some(code),
            "expected exit code {code}; stdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        &self.stdout
    }

    /// Asserts success and parses standard output as JSON.
    #[track_caller]
    pub fn json(&self) -> Value {
        let stdout = self.expect(0);
        serde_json::from_str(stdout)
            .unwrap_or_else(|error| panic!("stdout is not JSON ({error}):\n{stdout}"))
    }
}

/// The binary with `args` and `env`, in an environment without the client's
/// variables and without a default config file.
pub fn command(args: &[&str], env: &[(&str, &str)]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_pushmon"));
    command.args(args);
    for variable in CLIENT_VARIABLES {
        command.env_remove(variable);
    }
    command
        .env("XDG_CONFIG_HOME", "/nonexistent-pushmon-test-config")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// Runs the binary to its end, with `stdin` as its input.
pub async fn pushmon_with_input(args: &[&str], env: &[(&str, &str)], stdin: &[u8]) -> Ran {
    let mut command = command(args, env);
    command.stdin(Stdio::piped());
    let mut child = command.spawn().expect("spawn pushmon");
    let mut input = child.stdin.take().expect("piped stdin");
    input.write_all(stdin).await.expect("write stdin");
    drop(input);
    finish(child).await
}

pub async fn pushmon(args: &[&str], env: &[(&str, &str)]) -> Ran {
    finish(command(args, env).spawn().expect("spawn pushmon")).await
}

pub async fn finish(child: tokio::process::Child) -> Ran {
    let output = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
        .await
        .expect("pushmon finished within 2 minutes")
        .expect("wait for pushmon");
    Ran {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// The management command `args` against `app` with the admin token from the
/// environment.
async fn admin(app: &TestApp, args: &[&str]) -> Ran {
    pushmon(
        args,
        &[
            ("PUSHMON_URL", &app.base_url),
            ("PUSHMON_TOKEN", ADMIN_TOKEN),
        ],
    )
    .await
}

/// `args` with `-o json` added.
async fn admin_json(app: &TestApp, args: &[&str]) -> Value {
    let mut with_json = args.to_vec();
    with_json.extend(["--output", "json"]);
    admin(app, &with_json).await.json()
}

/// A port nothing listens on.
pub async fn closed_port() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

/// The `field: value` line of `field` in human output.
fn human_field<'a>(text: &'a str, field: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{field}:")))
        .map(str::trim)
}

#[tokio::test]
async fn monitors_are_created_listed_shown_changed_and_deleted_in_both_formats() {
    let app = spawn_app().await;

    // Human create: `field: value` lines with the push URL.
    let created = admin(
        &app,
        &[
            "monitor",
            "create",
            "nightly backup",
            "--timeout",
            "25h",
            "--interval",
            "1d",
            "--tag",
            "prod",
            "--tag",
            "db",
        ],
    )
    .await;
    let text = created.expect(0);
    let id = human_field(text, "id").expect("an id line").to_owned();
    assert_eq!(human_field(text, "name"), Some("nightly backup"));
    assert_eq!(human_field(text, "status"), Some("pending"));
    assert_eq!(human_field(text, "timeout_seconds"), Some("90000"));
    assert_eq!(human_field(text, "interval_seconds"), Some("86400"));
    assert_eq!(human_field(text, "tags"), Some("prod, db"));
    let monitor = app.get_monitor(&id).await;
    assert_eq!(
        human_field(text, "push_url"),
        Some(monitor.push_url.as_str())
    );

    // JSON create: the server's Monitor as it is.
    let json_created =
        admin_json(&app, &["monitor", "create", "hourly", "--timeout", "3600"]).await;
    assert_eq!(json_created["name"], "hourly");
    assert_eq!(json_created["timeout_seconds"], 3600);
    let hourly_id = json_created["id"].as_str().unwrap().to_owned();
    assert_eq!(app.get_monitor(&hourly_id).await.name, "hourly");

    // List: a table with a header and a row per monitor; JSON as the API answers.
    let listed = admin(&app, &["monitor", "list"]).await;
    let lines: Vec<&str> = listed.expect(0).lines().collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    for header in ["ID", "NAME", "STATUS", "TIMEOUT", "LAST HEARTBEAT"] {
        assert!(lines[0].contains(header), "{}", lines[0]);
    }
    assert!(
        lines[1].starts_with(&id)
            && lines[1].contains("nightly backup")
            && lines[1].contains("pending")
    );
    assert!(lines[2].starts_with(&hourly_id) && lines[2].contains("3600"));
    let raw = app
        .api(reqwest::Method::GET, "/api/monitors")
        .send()
        .await
        .unwrap();
    let api_list = expect_json(raw, StatusCode::OK).await;
    assert_eq!(admin_json(&app, &["monitor", "list"]).await, api_list);

    // Show by id and by name, both formats.
    let by_name = admin(&app, &["monitor", "show", "nightly backup"]).await;
    assert_eq!(human_field(by_name.expect(0), "id"), Some(id.as_str()));
    let shown = admin_json(&app, &["monitor", "show", &id]).await;
    assert_eq!(shown["push_token"], monitor.push_token.as_str());

    // Update: only what is given changes.
    let updated = admin(
        &app,
        &[
            "monitor",
            "update",
            "nightly backup",
            "--name",
            "nightly",
            "--timeout",
            "26h",
            "--no-tags",
        ],
    )
    .await;
    let text = updated.expect(0);
    assert_eq!(human_field(text, "name"), Some("nightly"));
    assert_eq!(human_field(text, "timeout_seconds"), Some("93600"));
    assert_eq!(human_field(text, "interval_seconds"), Some("86400"));
    let json_updated = admin_json(&app, &["monitor", "update", &id, "--tag", "x"]).await;
    assert_eq!(json_updated["tags"], json!(["x"]));
    assert_eq!(json_updated["name"], "nightly");

    // Delete: a line for people, nothing for JSON.
    let deleted = admin(&app, &["monitor", "delete", "nightly"]).await;
    assert!(
        deleted
            .expect(0)
            .contains(&format!("deleted monitor \"nightly\" ({id})"))
    );
    let deleted_json = admin(&app, &["monitor", "delete", &hourly_id, "-o", "json"]).await;
    assert_eq!(deleted_json.expect(0), "");
    assert!(app.list_monitors().await.is_empty());
    assert_eq!(
        admin(&app, &["monitor", "list"]).await.expect(0),
        "no monitors\n"
    );
    assert_eq!(
        admin_json(&app, &["monitor", "list"]).await,
        json!({"monitors": [], "counts": {"pending": 0, "up": 0, "down": 0, "paused": 0, "unknown": 0},
               "next_cursor": null})
    );
}

#[tokio::test]
async fn pause_resume_and_rotate_token_in_both_formats() {
    let app = spawn_app().await;
    let monitor = app.create_monitor("job", 60).await;

    let paused = admin(&app, &["monitor", "pause", "job"]).await;
    assert_eq!(human_field(paused.expect(0), "status"), Some("paused"));
    assert_eq!(app.get_monitor(&monitor.id).await.status, Status::Paused);
    let resumed = admin_json(&app, &["monitor", "resume", "job"]).await;
    assert_eq!(resumed["status"], "pending");
    assert_eq!(app.get_monitor(&monitor.id).await.status, Status::Pending);
    let paused = admin_json(&app, &["monitor", "pause", &monitor.id]).await;
    assert_eq!(paused["status"], "paused");
    let resumed = admin(&app, &["monitor", "resume", &monitor.id]).await;
    assert_eq!(human_field(resumed.expect(0), "status"), Some("pending"));
    assert_eq!(app.get_monitor(&monitor.id).await.status, Status::Pending);

    let rotated = admin(&app, &["monitor", "rotate-token", &monitor.id]).await;
    let new_token = human_field(rotated.expect(0), "push_token")
        .unwrap()
        .to_owned();
    assert_ne!(new_token, monitor.push_token);
    assert_eq!(app.get_monitor(&monitor.id).await.push_token, new_token);
    let rotated_json = admin_json(&app, &["monitor", "rotate-token", "job"]).await;
    assert_ne!(rotated_json["push_token"], new_token.as_str());
    assert_eq!(
        app.get_monitor(&monitor.id).await.push_token,
        rotated_json["push_token"].as_str().unwrap()
    );
}

#[tokio::test]
async fn mute_and_unmute_by_name_until_a_time_or_the_recovery() {
    let app = spawn_app().await;
    let monitor = app.create_monitor("muted-job", 60).await;
    let acknowledged =
        admin_json(&app, &["monitor", "mute", "muted-job", "--until-recovery"]).await;
    assert_eq!(acknowledged["muted"]["until_recovery"], true);
    let created = time::OffsetDateTime::parse(
        app.monitor_value(&monitor.id).await["created_at"]
            .as_str()
            .unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let until = (created + time::Duration::hours(2))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let timed = admin_json(&app, &["monitor", "mute", &monitor.id, "--until", &until]).await;
    assert_eq!(timed["muted"]["until_recovery"], false);
    assert!(timed["muted"]["until"].is_string());
    let unmuted = admin(&app, &["monitor", "unmute", "muted-job"]).await;
    unmuted.expect(0);
    assert_eq!(app.monitor_value(&monitor.id).await["muted"], Value::Null);
    // Exactly one of the two: clap refuses both or neither (exit 2), the API a past time.
    admin(&app, &["monitor", "mute", "muted-job"])
        .await
        .expect(2);
    admin(
        &app,
        &[
            "monitor",
            "mute",
            "muted-job",
            "--until",
            &until,
            "--until-recovery",
        ],
    )
    .await
    .expect(2);
    let past = admin(
        &app,
        &[
            "monitor",
            "mute",
            "muted-job",
            "--until",
            "2000-01-01T00:00:00Z",
        ],
    )
    .await;
    assert_ne!(past.code, Some(0));
    assert!(
        past.stderr.contains("until must be in the future"),
        "{}",
        past.stderr
    );
}

#[tokio::test]
async fn events_are_listed_newest_first_and_paged_in_both_formats() {
    let app = spawn_app().await;
    let monitor = app.create_monitor("events", 60).await;
    app.push_ok(
        &monitor.push_token,
        &[("msg", "two\nlines"), ("value", "42")],
    )
    .await;
    app.push_ok(&monitor.push_token, &[("status", "down")])
        .await;

    let all = app.events(&monitor.id).await;
    let listed = admin(&app, &["events", "events"]).await;
    let lines: Vec<&str> = listed.expect(0).lines().collect();
    assert_eq!(lines.len(), all.len() + 1, "{lines:?}");
    assert!(
        lines[0].starts_with("SEQ") && lines[0].contains("KIND") && lines[0].contains("DETAILS")
    );
    for (line, event) in lines[1..].iter().zip(&all) {
        assert!(
            line.starts_with(&event.seq.to_string()),
            "{line} vs {event:?}"
        );
        assert!(line.contains(&event.kind), "{line} vs {event:?}");
    }
    // A message's line break stays on its line, escaped.
    assert!(
        listed.stdout.contains("msg=two\\nlines"),
        "{}",
        listed.stdout
    );
    assert!(listed.stdout.contains("reason=manual"), "{}", listed.stdout);

    let page = admin_json(
        &app,
        &[
            "events",
            &monitor.id,
            "--limit",
            "2",
            "--before",
            &all[0].seq.to_string(),
        ],
    )
    .await;
    let seqs: Vec<u64> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [all[1].seq, all[2].seq]);

    let bad_limit = admin(&app, &["events", "events", "--limit", "0"]).await;
    bad_limit.expect(2);
    assert!(bad_limit.stderr.contains("limit"), "{}", bad_limit.stderr);
}

#[tokio::test]
async fn channels_are_created_listed_tested_and_deleted_in_both_formats() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let hook = receiver.url("/hook");

    let created = admin(
        &app,
        &[
            "channel", "create", "ops", "--kind", "webhook", "--url", &hook, "--secret", "s3cret",
        ],
    )
    .await;
    let text = created.expect(0);
    let id = human_field(text, "id").unwrap().to_owned();
    assert_eq!(human_field(text, "kind"), Some("webhook"));
    assert_eq!(human_field(text, "has_secret"), Some("true"));
    assert!(
        !text.contains("s3cret"),
        "the secret is never shown: {text}"
    );
    let mail = admin_json(
        &app,
        &[
            "channel",
            "create",
            "mail",
            "--kind",
            "email",
            "--smtp-url",
            "smtp://127.0.0.1:2525",
            "--from",
            "pushmon@example.com",
            "--to",
            "a@example.com",
            "--to",
            "b@example.com",
        ],
    )
    .await;
    assert_eq!(mail["to"], json!(["a@example.com", "b@example.com"]));

    let listed = admin(&app, &["channel", "list"]).await;
    let lines: Vec<&str> = listed.expect(0).lines().collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(lines[1].starts_with(&id) && lines[1].contains("webhook") && lines[1].contains(&hook));
    assert!(lines[2].contains("email") && lines[2].contains("a@example.com, b@example.com"));
    let listed_json = admin_json(&app, &["channel", "list"]).await;
    assert_eq!(listed_json["channels"].as_array().unwrap().len(), 2);

    // A monitor can name channels by name.
    let monitor = admin_json(
        &app,
        &[
            "monitor",
            "create",
            "alerted",
            "--timeout",
            "60",
            "--channel",
            "ops",
            "--channel",
            "mail",
        ],
    )
    .await;
    assert_eq!(monitor["channels"], json!([id, mail["id"]]));

    // Test: delivered, then not delivered (exit 1 with the server's reason).
    let tested = admin(&app, &["channel", "test", "ops"]).await;
    assert!(
        tested.expect(0).contains("test message delivered"),
        "{}",
        tested.stdout
    );
    receiver
        .wait_for_delivered(1, Duration::from_secs(10))
        .await;
    assert_eq!(
        admin_json(&app, &["channel", "test", &id]).await,
        json!({"ok": true})
    );
    receiver.fail_always();
    let failed = admin(&app, &["channel", "test", "ops"]).await;
    failed.expect(1);
    assert!(
        failed.stderr.contains("502") && failed.stderr.contains("not delivered"),
        "{}",
        failed.stderr
    );

    let deleted = admin(&app, &["channel", "delete", "ops"]).await;
    assert!(deleted.expect(0).contains("deleted channel \"ops\""));
    admin(&app, &["channel", "delete", "mail", "-o", "json"])
        .await
        .expect(0);
    assert_eq!(
        admin(&app, &["channel", "list"]).await.expect(0),
        "no channels\n"
    );
    assert_eq!(
        admin_json(&app, &["channel", "list"]).await,
        json!({"channels": []})
    );
}

#[tokio::test]
async fn keys_are_created_listed_and_revoked_and_scopes_are_enforced() {
    let app = spawn_app().await;
    app.create_monitor("watched", 60).await;

    let created = admin(&app, &["key", "create", "grafana"]).await;
    let text = created.expect(0);
    let read_key = human_field(text, "key").unwrap().to_owned();
    assert!(read_key.starts_with("pmk_"), "{text}");
    assert_eq!(human_field(text, "scope"), Some("read"));
    let write = admin_json(&app, &["key", "create", "deployer", "--scope", "write"]).await;
    let write_key = write["key"].as_str().unwrap().to_owned();
    assert_eq!(write["scope"], "write");

    let listed = admin(&app, &["key", "list"]).await;
    let lines: Vec<&str> = listed.expect(0).lines().collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(lines[1].contains("grafana") && lines[1].contains("read"));
    assert!(!listed.stdout.contains("pmk_"), "secrets are never listed");
    let listed_json = admin_json(&app, &["key", "list"]).await;
    assert_eq!(listed_json["keys"].as_array().unwrap().len(), 2);

    // A read key reads, but may not change anything (exit 4); a write key may.
    with_key(&app, &read_key, &["monitor", "list"])
        .await
        .expect(0);
    let refused = with_key(&app, &read_key, &["monitor", "pause", "watched"]).await;
    refused.expect(4);
    assert!(refused.stderr.contains("403"), "{}", refused.stderr);
    with_key(&app, &write_key, &["monitor", "pause", "watched"])
        .await
        .expect(0);
    with_key(&app, &write_key, &["key", "list"]).await.expect(4);

    let revoked = admin(&app, &["key", "revoke", "grafana"]).await;
    assert!(revoked.expect(0).contains("revoked API key \"grafana\""));
    let gone = with_key(&app, &read_key, &["monitor", "list"]).await;
    gone.expect(4);
    assert!(gone.stderr.contains("401"), "{}", gone.stderr);
    let write_id = write["id"].as_str().unwrap();
    assert_eq!(
        admin(&app, &["key", "revoke", write_id, "-o", "json"])
            .await
            .expect(0),
        ""
    );
    assert_eq!(
        admin(&app, &["key", "list"]).await.expect(0),
        "no API keys\n"
    );
}

/// The management command `args` against `app` with the secret `key`.
async fn with_key(app: &TestApp, key: &str, args: &[&str]) -> Ran {
    pushmon(
        args,
        &[("PUSHMON_URL", &app.base_url), ("PUSHMON_TOKEN", key)],
    )
    .await
}

#[tokio::test]
async fn names_must_match_exactly_one_object() {
    let app = spawn_app().await;
    let first = app.create_monitor("twin", 60).await;
    let second = app.create_monitor("twin", 60).await;

    let ambiguous = admin(&app, &["monitor", "show", "twin"]).await;
    ambiguous.expect(2);
    assert!(
        ambiguous.stderr.contains("2 monitors are named \"twin\"")
            && ambiguous.stderr.contains(&first.id)
            && ambiguous.stderr.contains(&second.id),
        "{}",
        ambiguous.stderr
    );
    // An id is always unambiguous.
    assert_eq!(
        admin_json(&app, &["monitor", "show", &second.id]).await["id"],
        second.id.as_str()
    );

    let missing = admin(&app, &["monitor", "show", "no such"]).await;
    missing.expect(3);
    assert!(
        missing
            .stderr
            .contains("no monitor has the id or name \"no such\""),
        "{}",
        missing.stderr
    );
    // An id that names nothing: the server's 404.
    let unknown_id = admin(
        &app,
        &["monitor", "pause", "01234567-89ab-7def-8123-456789abcdef"],
    )
    .await;
    unknown_id.expect(3);
    assert!(
        unknown_id.stderr.contains("monitor not found"),
        "{}",
        unknown_id.stderr
    );
    admin(&app, &["channel", "test", "nothing"]).await.expect(3);
    admin(&app, &["key", "revoke", "nothing"]).await.expect(3);
}

#[tokio::test]
async fn exit_codes_say_what_went_wrong() {
    let app = spawn_app().await;
    app.create_monitor("exists", 60).await;
    let url = app.base_url.clone();

    // 2: the command line, or what the server refused as invalid.
    let usage = pushmon(&["monitor", "frobnicate"], &[]).await;
    usage.expect(2);
    let invalid = admin(&app, &["monitor", "create", "x", "--timeout", "400d"]).await;
    invalid.expect(2);
    assert!(
        invalid.stderr.contains("422") && invalid.stderr.contains("timeout_seconds"),
        "{}",
        invalid.stderr
    );
    admin(&app, &["monitor", "create", "x", "--timeout", "1.5s"])
        .await
        .expect(2);
    admin(&app, &["monitor", "update", "exists"])
        .await
        .expect(2);
    let bad_server = pushmon(&["monitor", "list", "--server", "localhost:8080"], &[]).await;
    bad_server.expect(2);
    assert!(
        bad_server.stderr.contains("--server"),
        "{}",
        bad_server.stderr
    );

    // 3: not found.
    admin(&app, &["monitor", "show", "absent"]).await.expect(3);

    // 4: no token, a wrong one.
    let no_token = pushmon(&["monitor", "list", "--server", &url], &[]).await;
    no_token.expect(4);
    assert!(
        no_token.stderr.contains("no token was given"),
        "{}",
        no_token.stderr
    );
    pushmon(
        &[
            "monitor",
            "list",
            "--server",
            &url,
            "--token",
            "wrong-wrong-wrong",
        ],
        &[],
    )
    .await
    .expect(4);

    // 5: nobody listening.
    let port = closed_port().await;
    let unreachable = pushmon(
        &[
            "monitor",
            "list",
            "--server",
            &format!("http://127.0.0.1:{port}"),
            "--token",
            "x",
        ],
        &[],
    )
    .await;
    unreachable.expect(5);
    assert!(
        unreachable.stderr.contains("cannot reach the server"),
        "{}",
        unreachable.stderr
    );
}

#[tokio::test]
async fn credentials_come_from_flags_variables_files_and_the_config_file() {
    let app = spawn_app().await;
    app.create_monitor("credentials", 60).await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{ADMIN_TOKEN}\n")).unwrap();
    let token_path = token_file.to_str().unwrap();
    let listed = |ran: Ran| assert!(ran.expect(0).contains("credentials"), "{}", ran.stdout);

    listed(
        pushmon(
            &[
                "monitor",
                "list",
                "--server",
                &app.base_url,
                "--token",
                ADMIN_TOKEN,
            ],
            &[],
        )
        .await,
    );
    listed(
        pushmon(
            &[
                "monitor",
                "list",
                "--server",
                &app.base_url,
                "--token-file",
                token_path,
            ],
            &[],
        )
        .await,
    );
    listed(
        pushmon(
            &["monitor", "list"],
            &[
                ("PUSHMON_URL", &app.base_url),
                ("PUSHMON_TOKEN_FILE", token_path),
            ],
        )
        .await,
    );
    // A flag beats its variable.
    listed(
        pushmon(
            &["monitor", "list", "--token", ADMIN_TOKEN],
            &[
                ("PUSHMON_URL", &app.base_url),
                ("PUSHMON_TOKEN", "wrong-wrong-wrong"),
            ],
        )
        .await,
    );

    // The config file, named by PUSHMON_CONFIG or found under XDG_CONFIG_HOME.
    let config = dir.path().join("cli.toml");
    std::fs::write(
        &config,
        format!("server = \"{}\"\ntoken_file = \"token\"\n", app.base_url),
    )
    .unwrap();
    listed(
        pushmon(
            &["monitor", "list"],
            &[("PUSHMON_CONFIG", config.to_str().unwrap())],
        )
        .await,
    );
    listed(
        pushmon(
            &["monitor", "list", "--config", config.to_str().unwrap()],
            &[],
        )
        .await,
    );
    let home = dir.path().join("xdg");
    std::fs::create_dir_all(home.join("pushmon")).unwrap();
    std::fs::write(
        home.join("pushmon/cli.toml"),
        format!("server = \"{}\"\ntoken = \"{ADMIN_TOKEN}\"\n", app.base_url),
    )
    .unwrap();
    listed(
        pushmon(
            &["monitor", "list"],
            &[("XDG_CONFIG_HOME", home.to_str().unwrap())],
        )
        .await,
    );

    // A variable beats the file.
    let port = closed_port().await;
    let overridden = pushmon(
        &["monitor", "list"],
        &[
            ("PUSHMON_CONFIG", config.to_str().unwrap()),
            ("PUSHMON_URL", &format!("http://127.0.0.1:{port}")),
        ],
    )
    .await;
    overridden.expect(5);

    // A broken config file is a usage error naming it.
    std::fs::write(&config, "servr = \"typo\"\n").unwrap();
    let broken = pushmon(
        &["monitor", "list"],
        &[("PUSHMON_CONFIG", config.to_str().unwrap())],
    )
    .await;
    broken.expect(2);
    assert!(
        broken.stderr.contains("cli.toml") && broken.stderr.contains("servr"),
        "{}",
        broken.stderr
    );
}

#[tokio::test]
async fn push_records_heartbeats_by_token_or_url() {
    let app = spawn_app().await;
    let monitor = app.create_monitor("pushed", 60).await;

    let by_token = pushmon(
        &[
            "push",
            &monitor.push_token,
            "--server",
            &app.base_url,
            "--msg",
            "backup ok",
            "--value",
            "42.5",
        ],
        &[],
    )
    .await;
    assert_eq!(by_token.expect(0), "", "quiet on success");
    let seen = app.get_monitor(&monitor.id).await;
    assert_eq!(seen.status, Status::Up);
    assert_eq!(seen.last_msg.as_deref(), Some("backup ok"));
    assert_eq!(seen.last_value, Some(42.5));

    pushmon(
        &[
            "push",
            &monitor.push_url,
            "--status",
            "down",
            "--msg",
            "disk full",
        ],
        &[],
    )
    .await
    .expect(0);
    let seen = app.get_monitor(&monitor.id).await;
    assert_eq!(seen.status, Status::Down);
    assert_eq!(seen.last_msg.as_deref(), Some("disk full"));

    // The server from PUSHMON_URL; a negative value.
    pushmon(
        &["push", &monitor.push_token, "--value", "-3"],
        &[("PUSHMON_URL", &app.base_url)],
    )
    .await
    .expect(0);
    let seen = app.get_monitor(&monitor.id).await;
    assert_eq!(seen.status, Status::Up);
    assert_eq!(seen.last_value, Some(-3.0));
    let heartbeats = crate::support::of_kind(&app.events(&monitor.id).await, "heartbeat").len();
    assert_eq!(heartbeats, 3);
}

#[tokio::test]
async fn push_failures_have_exit_codes_and_retries_end() {
    let app = spawn_app().await;

    let unknown = pushmon(
        &["push", "AAAAAAAAAAAAAAAAAAAAAA", "--server", &app.base_url],
        &[],
    )
    .await;
    unknown.expect(3);
    assert!(
        unknown.stderr.contains("unknown push token"),
        "{}",
        unknown.stderr
    );

    pushmon(
        &["push", "tok", "--value", "NaN", "--server", &app.base_url],
        &[],
    )
    .await
    .expect(2);
    pushmon(&["push", "tok", "--status", "sideways"], &[])
        .await
        .expect(2);

    // Unreachable: retried for --retry-for, then exit 5, without the token in any message.
    let port = closed_port().await;
    let token = "SecretTokenNotToBeShown";
    let unreachable = pushmon(
        &[
            "push",
            token,
            "--server",
            &format!("http://127.0.0.1:{port}"),
            "--retry-for",
            "2s",
        ],
        &[],
    )
    .await;
    unreachable.expect(5);
    assert!(
        unreachable.stderr.contains("retrying for up to 2s"),
        "{}",
        unreachable.stderr
    );
    assert!(
        unreachable.stderr.contains("attempts"),
        "{}",
        unreachable.stderr
    );
    assert!(
        !unreachable.stderr.contains(token),
        "{}",
        unreachable.stderr
    );

    // A server answering 500 at first: retried until it takes the heartbeat.
    let receiver = Receiver::start().await;
    receiver.fail_first(2);
    pushmon(
        &["push", &receiver.url("/api/push/tok"), "--msg", "retried"],
        &[],
    )
    .await
    .expect(0);
    let received = receiver.received();
    assert_eq!(
        received
            .iter()
            .map(|request| request.answered)
            .collect::<Vec<_>>(),
        [500, 500, 200]
    );
}

#[tokio::test]
async fn completions_name_every_command() {
    for shell in ["bash", "zsh", "fish"] {
        let ran = pushmon(&["completions", shell], &[]).await;
        let script = ran.expect(0);
        for word in [
            "monitor",
            "rotate-token",
            "channel",
            "events",
            "run",
            "push",
            "tail-bytes",
            "serve",
        ] {
            assert!(script.contains(word), "{shell} completions lack {word}");
        }
    }
    pushmon(&["completions", "tcsh"], &[]).await.expect(2);
}

#[tokio::test]
async fn manual_pages_are_generated_to_stdout_or_a_directory() {
    let page = pushmon(&["man"], &[]).await;
    let text = page.expect(0);
    assert!(
        text.starts_with(".ie") || text.contains(".TH pushmon"),
        "{}",
        &text[..200.min(text.len())]
    );
    for command in [
        "monitor",
        "channel",
        "key",
        "events",
        "run",
        "push",
        "completions",
    ] {
        assert!(text.contains(command), "the page lacks {command}");
    }

    let dir = tempfile::tempdir().unwrap();
    pushmon(&["man", "--dir", dir.path().to_str().unwrap()], &[])
        .await
        .expect(0);
    for file in [
        "pushmon.1",
        "pushmon-run.1",
        "pushmon-monitor-rotate-token.1",
        "pushmon-key-revoke.1",
    ] {
        let text = std::fs::read_to_string(dir.path().join(file))
            .unwrap_or_else(|error| panic!("{file}: {error}"));
        assert!(text.contains(".TH"), "{file} is not a man page");
    }
    let run_page = std::fs::read_to_string(dir.path().join("pushmon-run.1")).unwrap();
    assert!(
        run_page.contains("kill\\-after"),
        "pushmon-run.1 lacks --kill-after"
    );

    let missing = dir.path().join("absent");
    pushmon(&["man", "--dir", missing.to_str().unwrap()], &[])
        .await
        .expect(1);
}

#[tokio::test]
async fn copy_binary_puts_a_working_pushmon_into_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    pushmon(&["copy-binary", dir.path().to_str().unwrap()], &[])
        .await
        .expect(0);
    let copied = dir.path().join("pushmon");
    assert_copy_runs(&copied).await;
}

async fn assert_copy_runs(copied: &Path) {
    let output = tokio::process::Command::new(copied)
        .arg("--version")
        .output()
        .await
        .expect("run the copy");
    assert!(output.status.success(), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("pushmon "));
}

#[tokio::test]
async fn export_prints_the_servers_monitors_file_with_secrets_only_for_the_admin() {
    let app = spawn_app().await;
    let monitor = app.create_monitor("exported", 60).await;
    let token = app.monitor_value(&monitor.id).await["push_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let expected = app
        .api(Method::GET, "/api/export")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();

    let plain = admin(&app, &["export"]).await;
    assert_eq!(plain.expect(0), expected);
    assert!(plain.stdout.contains("name: exported") && !plain.stdout.contains(&token));
    let with = admin(&app, &["export", "--secrets"]).await;
    assert!(
        with.expect(0).contains(&format!("push_token: {token}")),
        "{}",
        with.stdout
    );

    let read = admin_json(&app, &["key", "create", "reader"]).await;
    let read_key = read["key"].as_str().unwrap();
    assert_eq!(
        with_key(&app, read_key, &["export"]).await.expect(0),
        expected
    );
    let refused = with_key(&app, read_key, &["export", "--secrets"]).await;
    refused.expect(4);
    assert!(
        refused
            .stderr
            .contains("403: exporting secrets needs the admin token"),
        "{}",
        refused.stderr
    );
}

/// `pushmon monitor list` finds monitors as the API does: by selector, state, name
/// text and tag; a bad selector is the server's 400, said on stderr.
#[tokio::test]
async fn monitor_list_filters_by_selector_status_search_and_tag() {
    let app = spawn_app().await;
    for (name, team, tags) in [
        ("pay-api", "payments", json!(["web"])),
        ("pay-batch", "payments", json!([])),
        ("ship-api", "shipping", json!(["web"])),
    ] {
        app.create_monitor_from(&json!({
            "name": name, "timeout_seconds": 3600, "labels": {"team": team}, "tags": tags,
        }))
        .await;
    }
    let down = app.list_monitors().await;
    let ship = down
        .iter()
        .find(|monitor| monitor.name == "ship-api")
        .unwrap();
    app.push_ok(&ship.push_token, &[("status", "down")]).await;
    let names = |listed: Value| -> Vec<String> {
        let mut names: Vec<String> = listed["monitors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|monitor| monitor["name"].as_str().unwrap().to_owned())
            .collect();
        names.sort();
        names
    };
    for (args, expected) in [
        (
            vec!["--selector", "team=payments"],
            vec!["pay-api", "pay-batch"],
        ),
        (vec!["-l", "team!=payments"], vec!["ship-api"]),
        (vec!["--status", "down"], vec!["ship-api"]),
        (
            vec!["--status", "pending,down", "--search", "API"],
            vec!["pay-api", "ship-api"],
        ),
        (
            vec!["--tag", "web", "--selector", "team in (payments)"],
            vec!["pay-api"],
        ),
    ] {
        let mut command = vec!["monitor", "list"];
        command.extend(args.iter().copied());
        assert_eq!(
            names(admin_json(&app, &command).await),
            expected,
            "{args:?}"
        );
    }
    let table = admin(&app, &["monitor", "list", "--selector", "team=shipping"]).await;
    let lines: Vec<&str> = table.expect(0).lines().collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[1].contains("ship-api") && lines[1].contains("down"));
    let refused = admin(&app, &["monitor", "list", "--selector", "team in payments"]).await;
    assert_eq!(refused.code, Some(2), "{}", refused.stderr);
    assert!(
        refused.stderr.contains("selector at position 8"),
        "{}",
        refused.stderr
    );
}

/// `pushmon channel create` makes the kinds that speak a service's API, with their
/// flags and `--send-on`; `channel test` reaches the receiver; no token is printed.
#[tokio::test]
async fn channels_of_the_service_kinds_are_created_with_their_flags() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let token = "123456:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw";
    let created = admin_json(
        &app,
        &[
            "channel",
            "create",
            "tg",
            "--kind",
            "telegram",
            "--bot-token",
            token,
            "--chat-id",
            "-100123",
            "--api-url",
            &receiver.url("/tg"),
            "--send-on",
            "down",
        ],
    )
    .await;
    assert_eq!(created["kind"], "telegram");
    assert_eq!(created["send_on"], "down");
    assert_eq!(created["chat_id"], "-100123");
    assert!(!created.to_string().contains(token), "{created}");
    let template = admin_json(
        &app,
        &[
            "channel",
            "create",
            "board",
            "--kind",
            "template",
            "--url",
            &receiver.url("/board"),
            "--method",
            "PUT",
            "--header",
            "Authorization: Bearer t0ken",
            "--body",
            r#"{"text": "{{summary}}"}"#,
        ],
    )
    .await;
    assert_eq!(template["header_names"], json!(["Authorization"]));
    let priority = admin_json(
        &app,
        &[
            "channel",
            "create",
            "po",
            "--kind",
            "pushover",
            "--user-key",
            "uQiRzpo4DXghDmr9QzzfQu27cmVRsG",
            "--app-token",
            "azGDORePK8gMaC0QOYAMyEEuzJnyUi",
            "--priority",
            "-1",
        ],
    )
    .await;
    assert_eq!(priority["priority"], -1);

    admin(&app, &["channel", "test", "board"]).await.expect(0);
    let sent = receiver.received();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].method, reqwest::Method::PUT);
    assert_eq!(sent[0].headers["authorization"], "Bearer t0ken");
    assert!(
        sent[0].json()["text"]
            .as_str()
            .unwrap()
            .contains("Test from pushmon")
    );

    let listed = admin(&app, &["channel", "list"]).await;
    let text = listed.expect(0);
    assert!(
        text.contains("telegram") && text.contains("-100123"),
        "{text}"
    );
    assert!(!text.contains(token), "{text}");

    let refused = admin(
        &app,
        &[
            "channel",
            "create",
            "x",
            "--kind",
            "matrix",
            "--url",
            "https://m.example",
            "--access-token",
            "t",
            "--room-id",
            "#ops",
        ],
    )
    .await;
    refused.expect(2);
}

#[tokio::test]
async fn monitor_labels_and_severity_are_set_replaced_and_removed() {
    let app = spawn_app().await;
    let created = admin_json(
        &app,
        &[
            "monitor",
            "create",
            "billing",
            "--timeout",
            "1h",
            "--label",
            "team=payments",
            "--label",
            "app.kubernetes.io/name=billing",
            "--severity",
            "warning",
        ],
    )
    .await;
    assert_eq!(
        created["labels"],
        json!({"team": "payments", "app.kubernetes.io/name": "billing"})
    );
    assert_eq!(created["severity"], "warning");
    let id = created["id"].as_str().unwrap().to_owned();

    // The human view shows them too.
    let shown = admin(&app, &["monitor", "show", &id]).await;
    let text = shown.expect(0);
    assert!(
        human_field(text, "severity").is_some_and(|value| value.contains("warning")),
        "{text}"
    );
    assert!(text.contains("payments"), "{text}");

    // `--label` on update replaces the labels; `--severity` alone leaves them.
    let replaced = admin_json(
        &app,
        &["monitor", "update", &id, "--label", "team=shipping"],
    )
    .await;
    assert_eq!(replaced["labels"], json!({"team": "shipping"}));
    assert_eq!(replaced["severity"], "warning");
    let graver = admin_json(&app, &["monitor", "update", &id, "--severity", "critical"]).await;
    assert_eq!(graver["labels"], json!({"team": "shipping"}));
    assert_eq!(graver["severity"], "critical");
    let listed = admin_json(&app, &["monitor", "list", "--selector", "team=shipping"]).await;
    assert_eq!(listed["monitors"].as_array().map(Vec::len), Some(1));
    let bare = admin_json(&app, &["monitor", "update", &id, "--no-labels"]).await;
    assert_eq!(bare["labels"], json!({}));

    // Not KEY=VALUE: refused by the command line; a key the server refuses: its 422.
    let malformed = admin(&app, &["monitor", "update", &id, "--label", "team"]).await;
    malformed.expect(2);
    assert!(
        malformed.stderr.contains("KEY=VALUE"),
        "{}",
        malformed.stderr
    );
    let refused = admin(&app, &["monitor", "update", &id, "--label", "bad key=x"]).await;
    refused.expect(2);
    assert!(
        refused.stderr.contains("422") && refused.stderr.contains("bad key"),
        "{}",
        refused.stderr
    );
    let both = admin(
        &app,
        &["monitor", "update", &id, "--label", "a=b", "--no-labels"],
    )
    .await;
    both.expect(2);
}

#[tokio::test]
async fn a_selector_mutes_and_unmutes_every_monitor_it_finds() {
    let app = spawn_app().await;
    for (name, team) in [
        ("pay-a", "payments"),
        ("pay-b", "payments"),
        ("ship", "shipping"),
    ] {
        app.create_monitor_from(&json!({
            "name": name, "timeout_seconds": 3600, "labels": {"team": team},
        }))
        .await;
    }
    let muted_names = |listed: Value| -> Vec<String> {
        let mut names: Vec<String> = listed["monitors"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|monitor| !monitor["muted"].is_null())
            .map(|monitor| monitor["name"].as_str().unwrap().to_owned())
            .collect();
        names.sort();
        names
    };
    let said = admin(
        &app,
        &[
            "monitor",
            "mute",
            "--selector",
            "team=payments",
            "--until-recovery",
        ],
    )
    .await;
    assert_eq!(said.expect(0), "muted 2 monitors\n");
    assert_eq!(
        muted_names(admin_json(&app, &["monitor", "list"]).await),
        ["pay-a", "pay-b"]
    );
    let answer = admin_json(&app, &["monitor", "unmute", "-l", "team in (payments)"]).await;
    assert_eq!(answer["unmuted"], 2);
    assert!(muted_names(admin_json(&app, &["monitor", "list"]).await).is_empty());
    // A monitor and a selector at once, or neither: the command line refuses.
    admin(&app, &["monitor", "unmute", "ship", "--selector", "team=x"])
        .await
        .expect(2);
    admin(&app, &["monitor", "unmute"]).await.expect(2);
    // A bad selector: the server's 400, exit 2.
    let refused = admin(&app, &["monitor", "unmute", "--selector", "team in x"]).await;
    refused.expect(2);
}

#[tokio::test]
async fn bulk_changes_every_selected_monitor_and_a_dry_run_none() {
    let app = spawn_app().await;
    for (name, team) in [
        ("pay-a", "payments"),
        ("pay-b", "payments"),
        ("ship", "shipping"),
    ] {
        app.create_monitor_from(&json!({
            "name": name, "timeout_seconds": 3600, "labels": {"team": team},
        }))
        .await;
    }
    let paused = |listed: Value| -> Vec<String> {
        let mut names: Vec<String> = listed["monitors"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|monitor| monitor["status"] == "paused")
            .map(|monitor| monitor["name"].as_str().unwrap().to_owned())
            .collect();
        names.sort();
        names
    };
    let dry = admin(
        &app,
        &[
            "monitor",
            "bulk",
            "pause",
            "-l",
            "team=payments",
            "--dry-run",
        ],
    )
    .await;
    let text = dry.expect(0);
    assert!(text.starts_with("found 2, would change 2\n"), "{text}");
    assert!(paused(admin_json(&app, &["monitor", "list"]).await).is_empty());
    let done = admin_json(&app, &["monitor", "bulk", "pause", "-l", "team=payments"]).await;
    assert_eq!(
        (done["matched"].as_u64(), done["changed"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(
        paused(admin_json(&app, &["monitor", "list"]).await),
        ["pay-a", "pay-b"]
    );
    let deleted = admin(
        &app,
        &["monitor", "bulk", "delete", "--selector", "team=shipping"],
    )
    .await;
    assert!(deleted.expect(0).starts_with("found 1, changed 1\n"));
    let left = admin_json(&app, &["monitor", "list"]).await;
    assert_eq!(left["monitors"].as_array().map(Vec::len), Some(2));
    // A channel action without channels: the server's 422, exit 2.
    admin(
        &app,
        &["monitor", "bulk", "add-channels", "-l", "team=payments"],
    )
    .await
    .expect(2);
}

#[tokio::test]
async fn monitor_sources_and_signing_secret_are_set_from_flags_and_a_file() {
    let app = spawn_app().await;
    let dir = tempfile::TempDir::new().unwrap();
    let secret_file = dir.path().join("secret");
    std::fs::write(&secret_file, "cli-signing-secret-0123456789\n").unwrap();
    let secret_path = secret_file.to_str().unwrap();
    let created = admin_json(
        &app,
        &[
            "monitor",
            "create",
            "agent",
            "--timeout",
            "1h",
            "--allowed-source",
            "10.0.0.0/8",
            "--allowed-source",
            "127.0.0.1",
            "--signing-secret-file",
            secret_path,
        ],
    )
    .await;
    assert_eq!(
        created["allowed_sources"],
        json!(["10.0.0.0/8", "127.0.0.1"])
    );
    assert_eq!(created["signed"], json!(true));
    assert!(!created.to_string().contains("cli-signing-secret"));
    let id = created["id"].as_str().unwrap().to_owned();
    let token = created["push_token"].as_str().unwrap().to_owned();
    // Signed with the file's secret (its newline trimmed): taken.
    let now = crate::signed::unix_now();
    let target = format!("/api/push/{token}");
    let response = crate::signed::send_signed(
        &app,
        reqwest::Method::POST,
        &target,
        b"",
        "cli-signing-secret-0123456789",
        now,
    )
    .await;
    assert_eq!(response.status(), reqwest::StatusCode::OK);

    let opened = admin_json(
        &app,
        &[
            "monitor",
            "update",
            &id,
            "--any-source",
            "--no-signing-secret",
        ],
    )
    .await;
    assert_eq!(opened["allowed_sources"], json!([]));
    assert_eq!(opened["signed"], json!(false));
    let missing = admin(
        &app,
        &[
            "monitor",
            "update",
            &id,
            "--signing-secret-file",
            "/nonexistent/secret",
        ],
    )
    .await;
    missing.expect(2);
    assert!(
        missing.stderr.contains("--signing-secret-file"),
        "{}",
        missing.stderr
    );
    let both = admin(
        &app,
        &[
            "monitor",
            "update",
            &id,
            "--allowed-source",
            "10.0.0.1",
            "--any-source",
        ],
    )
    .await;
    both.expect(2);
}
