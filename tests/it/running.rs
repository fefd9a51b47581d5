//! Running the real binary (`docs/configuration.md`): signals, JSON logs, and the admin token that is
//! generated when none is given.

use std::os::unix::fs::PermissionsExt;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use tempfile::TempDir;

use crate::support::{ServerProcess, expect_error, expect_json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_drains_and_exits_0_and_json_logs_are_one_object_a_line() {
    let data_dir = TempDir::new().unwrap();
    let server = ServerProcess::start(data_dir.path(), &["--log-format", "json"]).await;
    let monitor = server.create_monitor("interrupted", 3600).await;
    server
        .push_ok(&monitor.push_token, &[("msg", "before ctrl-c")])
        .await;

    let (status, log) = server.sigint().await;
    assert_eq!(status.code(), Some(0), "exit after SIGINT; stderr:\n{log}");
    let lines: Vec<&str> = log.lines().filter(|line| !line.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "no log lines at all");
    for line in &lines {
        let parsed: Value = serde_json::from_str(line)
            .unwrap_or_else(|error| panic!("log line is not JSON ({error}): {line}"));
        assert!(parsed.is_object(), "log line is not a JSON object: {line}");
    }
    assert!(
        !log.contains(&monitor.push_token),
        "the push token reached the log:\n{log}"
    );

    let server = ServerProcess::start(data_dir.path(), &[]).await;
    assert_eq!(
        server.get_monitor(&monitor.id).await.last_msg.as_deref(),
        Some("before ctrl-c")
    );
    let (status, log) = server.sigterm().await;
    assert_eq!(status.code(), Some(0), "exit after SIGTERM; stderr:\n{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_token_is_generated_into_the_data_dir_when_none_is_given() {
    let data_dir = TempDir::new().unwrap();
    let token_file = data_dir.path().join("admin-token");
    let server = ServerProcess::start_with_args(data_dir.path(), &[]).await;

    let mode = std::fs::metadata(&token_file)
        .unwrap_or_else(|error| panic!("{} was not written: {error}", token_file.display()))
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "mode of {}", token_file.display());
    let generated = std::fs::read_to_string(&token_file)
        .unwrap()
        .trim()
        .to_owned();
    assert!(
        generated.len() >= 16,
        "generated token {generated:?} is short"
    );

    // The test's own token is not the admin token; the generated one is.
    let response = server
        .api(Method::GET, "/api/monitors")
        .send()
        .await
        .unwrap();
    expect_error(response, StatusCode::UNAUTHORIZED).await;
    let mut admin = (*server).clone();
    admin.admin_token.clone_from(&generated);
    admin
        .create_monitor("made with the generated token", 60)
        .await;

    let (status, log) = server.sigterm().await;
    assert_eq!(status.code(), Some(0), "stderr:\n{log}");
    assert!(
        !log.contains(&generated),
        "the admin token reached the log:\n{log}"
    );
    assert!(
        log.contains("admin-token"),
        "the token file's path is logged:\n{log}"
    );

    // It is generated once: the next start uses the same token.
    let server = ServerProcess::start_with_args(data_dir.path(), &[]).await;
    let mut admin = (*server).clone();
    admin.admin_token = generated;
    let response = admin
        .api(Method::GET, "/api/monitors")
        .send()
        .await
        .unwrap();
    let body = expect_json(response, StatusCode::OK).await;
    assert_eq!(body["monitors"].as_array().map(Vec::len), Some(1));
    let (status, log) = server.sigterm().await;
    assert_eq!(status.code(), Some(0), "stderr:\n{log}");
}

/// The niceness of each thread of process `pid`, by thread name.
fn thread_niceness(pid: u32) -> Vec<(String, i64)> {
    let mut threads = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .flatten()
    {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue; // exited meanwhile
        };
        let name = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        // After "pid (comm) ": state is field 3, nice field 19.
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let nice: i64 = rest.split(' ').nth(16).unwrap().parse().unwrap();
        threads.push((name.trim_end().to_owned(), nice));
    }
    threads
}

/// fjall's flush and compaction threads run 10 nicer than the threads that serve
/// pushes, so background compaction does not hold up acknowledgements; the serving
/// threads keep the process's priority.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fjall_background_threads_run_at_a_lower_priority_than_the_serving_threads() {
    let data_dir = TempDir::new().unwrap();
    let server = ServerProcess::start(data_dir.path(), &[]).await;
    let monitor = server.create_monitor("niceness", 3600).await;
    server.push_ok(&monitor.push_token, &[]).await;
    let threads = thread_niceness(server.pid());
    let main = threads
        .iter()
        .find(|(name, _)| name == "pushmon")
        .map(|(_, nice)| *nice)
        .expect("the main thread");
    let fjall: Vec<i64> = threads
        .iter()
        .filter(|(name, _)| name == "fjall:worker")
        .map(|(_, nice)| *nice)
        .collect();
    assert!(!fjall.is_empty(), "no fjall threads in {threads:?}");
    for nice in fjall {
        assert_eq!(nice, (main + 10).min(19), "fjall threads in {threads:?}");
    }
    for (name, nice) in &threads {
        if name.starts_with("tokio-rt-worker") || name == "pushmon-writer" {
            assert_eq!(*nice, main, "{name} in {threads:?}");
        }
    }
}

/// Issue 15 and 14: start-up did not say which admin token was in force, and an admin
/// token with a trailing newline (a Kubernetes Secret, an env file) started without a
/// word and then answered 401 to everything. The source is logged; a token file left
/// unused by a configured token is warned about; white space around a configured token
/// is removed; and the `Bearer` scheme is matched case-insensitively.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_token_in_force_is_logged_and_a_trailing_newline_is_trimmed() {
    let data_dir = TempDir::new().unwrap();
    let token_file = data_dir.path().join("admin-token");

    // First start, nothing configured: generated into the file.
    let server = ServerProcess::start_with_args(data_dir.path(), &[]).await;
    let (status, log) = server.sigterm().await;
    assert_eq!(status.code(), Some(0), "stderr:\n{log}");
    assert!(
        log.contains("admin token: generated a new one") && log.contains("admin-token"),
        "{log}"
    );
    let from_file = std::fs::read_to_string(&token_file)
        .unwrap()
        .trim()
        .to_owned();

    // The file's token, next time.
    let server = ServerProcess::start_with_args(data_dir.path(), &[]).await;
    let (_, log) = server.sigterm().await;
    assert!(
        log.contains("admin token: the one stored in the data directory"),
        "{log}"
    );

    // A variable with a trailing newline overrides the file: logged, trimmed, warned.
    let configured = format!("{}\n", crate::support::ADMIN_TOKEN);
    let server = ServerProcess::start_with_args_and_env(
        data_dir.path(),
        &[],
        &[("PUSHMON_ADMIN_TOKEN", configured.as_str())],
    )
    .await;
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let response = server
            .client
            .get(server.url("/api/monitors"))
            .header(
                "authorization",
                format!("{scheme} {}", crate::support::ADMIN_TOKEN),
            )
            .send()
            .await
            .unwrap();
        expect_json(response, StatusCode::OK).await;
    }
    let mut old = (*server).clone();
    old.admin_token = from_file.clone();
    let response = old.api(Method::GET, "/api/monitors").send().await.unwrap();
    expect_error(response, StatusCode::UNAUTHORIZED).await;
    let (status, log) = server.sigterm().await;
    assert_eq!(status.code(), Some(0), "stderr:\n{log}");
    let line = |needle: &str| {
        log.lines()
            .find(|line| line.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle:?}:\n{log}"))
            .to_owned()
    };
    assert!(line("admin token: the configured one").contains("PUSHMON_ADMIN_TOKEN"));
    assert!(line("white space around it was removed").contains("PUSHMON_ADMIN_TOKEN"));
    let warning = line("token file in the data directory is not used");
    assert!(
        warning.contains("WARN") && warning.contains("admin-token"),
        "{warning}"
    );
    assert!(!log.contains(crate::support::ADMIN_TOKEN) && !log.contains(&from_file));

    // The flag: named as the source.
    let server = ServerProcess::start(data_dir.path(), &[]).await;
    let (_, log) = server.sigterm().await;
    assert!(
        log.lines()
            .any(|line| line.contains("admin token: the configured one")
                && line.contains("--admin-token")),
        "{log}"
    );
}

/// Issue 15: `--listen localhost:8080` was refused (only an IP address was accepted).
/// A host name is resolved at start; the server listens on its address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_takes_a_host_name() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let data_dir = TempDir::new().unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_pushmon"))
        .args(["serve", "--listen", "localhost:0", "--admin-token"])
        .arg(crate::support::ADMIN_TOKEN)
        .arg("--data-dir")
        .arg(data_dir.path())
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    let address: std::net::SocketAddr = loop {
        let line = tokio::time::timeout(std::time::Duration::from_secs(30), lines.next_line())
            .await
            .expect("a log line within 30 s")
            .unwrap()
            .unwrap_or_else(|| panic!("pushmon exited:\n{}", seen.join("\n")));
        if let Some(rest) = line.split("listening on ").nth(1) {
            break rest.split_whitespace().next().unwrap().parse().unwrap();
        }
        seen.push(line);
    };
    assert!(address.ip().is_loopback(), "{address}");
    let client = reqwest::Client::new();
    let mut healthy = false;
    for _ in 0..100 {
        if let Ok(response) = client.get(format!("http://{address}/healthz")).send().await {
            healthy = response.status() == StatusCode::OK;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(healthy, "no answer on {address}");
    child.start_kill().unwrap();
    let _ = child.wait().await;
}

/// A monitor's name is the user's text, and the human log format wrote it raw: a name
/// with a line break forged a log line of its own. Names may no longer hold control
/// characters, but Unicode line separators and bidirectional overrides are not
/// control characters, and a store from before that check may still hold names with
/// line breaks: the human format escapes all of them in every logged value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_monitor_name_cannot_forge_log_lines() {
    let data_dir = TempDir::new().unwrap();
    let server = ServerProcess::start(data_dir.path(), &[]).await;
    let name = "x\u{2028}FAKE ERROR line \u{2029}FAKE too \u{202e}deretlA";
    let monitor = server.create_monitor(name, 3600).await;
    assert_eq!(monitor.name, name);
    // A manual down logs "monitor is down" with the monitor's name.
    server
        .push_ok(&monitor.push_token, &[("status", "down")])
        .await;
    let (status, log) = server.sigterm().await;
    assert_eq!(status.code(), Some(0), "stderr:\n{log}");
    let down = log
        .lines()
        .find(|line| line.contains("monitor is down"))
        .unwrap_or_else(|| panic!("no \"monitor is down\" line in:\n{log}"));
    assert!(
        down.contains(r"x\u{2028}FAKE ERROR line \u{2029}FAKE too \u{202e}deretlA"),
        "the name is logged escaped, on its line: {down}"
    );
    for line in log.split(['\n', '\u{2028}', '\u{2029}']) {
        assert!(!line.starts_with("FAKE"), "a forged log line: {line:?}");
        assert!(
            !line.contains(['\u{1b}', '\r', '\u{85}', '\u{202e}']),
            "a control character reached the log: {line:?}"
        );
    }
}
