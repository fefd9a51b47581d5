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

/// A monitor's name is the user's text, and the human log format wrote it raw: a name
/// with a line break forged a log line of its own. Control characters in logged
/// values are escaped now, so every line the server writes is its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_monitor_name_cannot_forge_log_lines() {
    let data_dir = TempDir::new().unwrap();
    let server = ServerProcess::start(data_dir.path(), &[]).await;
    let name = "x\nFAKE ERROR line\r\nFAKE too \u{1b}[31mred\u{85}next";
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
        down.contains(r"x\nFAKE ERROR line\r\nFAKE too \u{1b}[31mred\u{85}next"),
        "the name is logged escaped, on its line: {down}"
    );
    for line in log.lines() {
        assert!(!line.starts_with("FAKE"), "a forged log line: {line:?}");
        assert!(
            !line.contains(['\u{1b}', '\r', '\u{85}']),
            "a control character reached the log: {line:?}"
        );
    }
}
