//! `pushmon run`'s process handling, against a small real HTTP receiver that records
//! every request (method, path, query, body) and answers as told: the exit status
//! and its report, signals passed on, `--timeout`, the output's end, input and output
//! passed through, retries with backoff, and a server that is down or hangs.

use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::time::Instant;
use uuid::Uuid;

use super::{Ran, closed_port, command, finish, pushmon, pushmon_with_input};

/// One request as the receiver saw it.
#[derive(Clone, Debug)]
struct Ping {
    method: Method,
    path: String,
    query: String,
    content_type: Option<String>,
    body: Bytes,
    answered: u16,
}

impl Ping {
    fn rid(&self) -> Uuid {
        let rid = self
            .query
            .split('&')
            .find_map(|pair| pair.strip_prefix("rid="))
            .unwrap_or_else(|| panic!("no rid in {:?}", self.query));
        Uuid::parse_str(rid).expect("rid is a UUID")
    }

    fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

#[derive(Default)]
struct Inner {
    /// Requests to answer 500 before the usual answer.
    fail_first: AtomicU32,
    /// The usual answer's status (0: 200).
    status: AtomicU16,
    /// Never answer.
    hang: AtomicBool,
    /// The `Ping-Body-Limit` to answer with (0: none).
    body_limit: AtomicU32,
    received: Mutex<Vec<Ping>>,
}

#[derive(Clone)]
struct PingReceiver {
    base: String,
    inner: Arc<Inner>,
}

impl PingReceiver {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let inner = Arc::new(Inner::default());
        let app = Router::new()
            .route("/{*path}", any(receive))
            .with_state(Arc::clone(&inner));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            base: format!("http://{address}"),
            inner,
        }
    }

    /// The ping URL of token `token` on this receiver.
    fn ping_url(&self) -> String {
        format!("{}/ping/TOKEN", self.base)
    }

    fn received(&self) -> Vec<Ping> {
        self.inner.received.lock().unwrap().clone()
    }

    /// The paths requested, in order.
    fn paths(&self) -> Vec<String> {
        self.received().into_iter().map(|ping| ping.path).collect()
    }
}

async fn receive(
    State(inner): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let failing = inner
        .fail_first
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
            left.checked_sub(1)
        })
        .is_ok();
    let hang = inner.hang.load(Ordering::SeqCst);
    let status = match (failing, inner.status.load(Ordering::SeqCst)) {
        (true, _) => StatusCode::INTERNAL_SERVER_ERROR,
        (false, 0) => StatusCode::OK,
        (false, status) => StatusCode::from_u16(status).unwrap(),
    };
    inner.received.lock().unwrap().push(Ping {
        method,
        path: uri.path().to_owned(),
        query: uri.query().unwrap_or("").to_owned(),
        content_type: headers
            .get("content-type")
            .map(|value| value.to_str().unwrap().to_owned()),
        body,
        answered: if hang { 0 } else { status.as_u16() },
    });
    if hang {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    let limit = inner.body_limit.load(Ordering::SeqCst);
    let mut response = (status, "{\"ok\":true}").into_response();
    if limit > 0 {
        response
            .headers_mut()
            .insert("Ping-Body-Limit", limit.to_string().parse().unwrap());
    }
    response
}

/// `pushmon run --url <receiver> <extra…> -- <command…>`.
async fn run(receiver: &PingReceiver, extra: &[&str], command: &[&str]) -> Ran {
    let url = receiver.ping_url();
    let mut args = vec!["run", "--url", url.as_str()];
    args.extend_from_slice(extra);
    args.push("--");
    args.extend_from_slice(command);
    pushmon(&args, &[]).await
}

/// The start and the report of one run: same run id (a version 4 UUID), in order.
#[track_caller]
fn assert_one_run(receiver: &PingReceiver, report_path: &str) -> Ping {
    let received = receiver.received();
    assert_eq!(received.len(), 2, "{received:#?}");
    let (start, report) = (&received[0], &received[1]);
    assert_eq!(start.path, "/ping/TOKEN/start");
    assert_eq!(report.path, report_path);
    assert_eq!(
        (&start.method, &report.method),
        (&Method::POST, &Method::POST)
    );
    assert_eq!(start.rid(), report.rid());
    assert_eq!(start.rid().get_version_num(), 4);
    assert!(start.body.is_empty());
    assert_eq!(
        report.content_type.as_deref(),
        Some("text/plain; charset=utf-8")
    );
    report.clone()
}

#[tokio::test]
async fn the_exit_status_is_reported_and_returned_with_the_combined_output() {
    let receiver = PingReceiver::start().await;
    let ran = run(
        &receiver,
        &[],
        &["sh", "-c", "echo out; echo err >&2; exit 3"],
    )
    .await;
    assert_eq!(ran.expect(3), "out\n");
    assert!(ran.stderr.starts_with("err\n"), "{}", ran.stderr);
    let report = assert_one_run(&receiver, "/ping/TOKEN/3");
    let body = report.body_text();
    assert!(body.contains("out\n") && body.contains("err\n"), "{body}");

    // Two runs never share a run id.
    let first = report.rid();
    let ran = run(&receiver, &[], &["true"]).await;
    ran.expect(0);
    let received = receiver.received();
    assert_eq!(received[3].path, "/ping/TOKEN/0");
    assert!(received[3].body.is_empty());
    assert_ne!(received[3].rid(), first);
}

#[tokio::test]
async fn a_command_killed_by_a_signal_is_a_failure_and_exits_128_plus_the_signal() {
    let receiver = PingReceiver::start().await;
    let ran = run(&receiver, &[], &["sh", "-c", "echo before; kill -9 $$"]).await;
    ran.expect(137);
    let report = assert_one_run(&receiver, "/ping/TOKEN/fail");
    let body = report.body_text();
    assert!(body.starts_with("before\n"), "{body}");
    assert!(body.contains("killed by signal 9 (SIGKILL)"), "{body}");
    assert!(
        ran.stderr.contains("killed by signal 9 (SIGKILL)"),
        "{}",
        ran.stderr
    );
}

#[tokio::test]
async fn a_command_that_cannot_start_is_a_failure_with_the_shells_exit_codes() {
    let receiver = PingReceiver::start().await;
    let ran = run(&receiver, &[], &["/nonexistent/command"]).await;
    ran.expect(127);
    let report = assert_one_run(&receiver, "/ping/TOKEN/fail");
    assert!(
        report
            .body_text()
            .contains("cannot run \"/nonexistent/command\""),
        "{}",
        report.body_text()
    );

    let dir = tempfile::tempdir().unwrap();
    let not_executable = dir.path().join("script");
    std::fs::write(&not_executable, "#!/bin/sh\n").unwrap();
    run(&receiver, &[], &[not_executable.to_str().unwrap()])
        .await
        .expect(126);
}

#[tokio::test]
async fn timeout_stops_the_command_and_reports_a_failure() {
    let receiver = PingReceiver::start().await;
    let started = Instant::now();
    let ran = run(
        &receiver,
        &["--timeout", "1s"],
        &["sh", "-c", "echo started; sleep 60; echo never"],
    )
    .await;
    ran.expect(124);
    assert!(
        started.elapsed() < Duration::from_secs(50),
        "the command was not stopped"
    );
    assert_eq!(ran.stdout, "started\n");
    let report = assert_one_run(&receiver, "/ping/TOKEN/fail");
    let body = report.body_text();
    assert!(body.starts_with("started\n"), "{body}");
    assert!(
        body.contains(
            "timed out after 1s: sent SIGTERM; the command was killed by signal 15 (SIGTERM)"
        ),
        "{body}"
    );
}

#[tokio::test]
async fn a_command_ignoring_sigterm_gets_sigkill_after_the_grace() {
    let receiver = PingReceiver::start().await;
    let started = Instant::now();
    // The shell and its sleep both ignore SIGTERM; SIGKILL reaches the whole group.
    let ran = run(
        &receiver,
        &["--timeout", "1s", "--kill-after", "1s"],
        &["sh", "-c", "trap '' TERM; echo stubborn; sleep 60"],
    )
    .await;
    ran.expect(124);
    assert!(
        started.elapsed() < Duration::from_secs(50),
        "the command was not killed"
    );
    let body = assert_one_run(&receiver, "/ping/TOKEN/fail").body_text();
    assert!(
        body.contains("sent SIGTERM, then SIGKILL after 1s"),
        "{body}"
    );
    assert!(body.contains("killed by signal 9 (SIGKILL)"), "{body}");
}

#[tokio::test]
async fn only_the_end_of_the_output_is_sent_and_never_more_than_the_servers_limit() {
    let receiver = PingReceiver::start().await;
    let script = "i=0; while [ $i -lt 3000 ]; do echo \"line $i\"; i=$((i+1)); done; exit 1";
    let ran = run(&receiver, &["--tail-bytes", "1000"], &["sh", "-c", script]).await;
    // Everything is passed through; only the report is cut.
    assert_eq!(ran.expect(1).lines().count(), 3000);
    let body = assert_one_run(&receiver, "/ping/TOKEN/1").body_text();
    assert!(
        body.len() <= 1000 && body.len() > 900,
        "{} bytes",
        body.len()
    );
    assert!(body.ends_with("line 2998\nline 2999\n"), "{body}");

    // The server's Ping-Body-Limit wins over a larger --tail-bytes.
    let receiver = PingReceiver::start().await;
    receiver.inner.body_limit.store(300, Ordering::SeqCst);
    run(&receiver, &[], &["sh", "-c", script]).await.expect(1);
    let body = assert_one_run(&receiver, "/ping/TOKEN/1").body_text();
    assert!(
        body.len() <= 300 && body.len() > 250,
        "{} bytes",
        body.len()
    );
    assert!(body.ends_with("line 2999\n"), "{body}");

    // The note of a failure fits in the limit too, at the end.
    let receiver = PingReceiver::start().await;
    receiver.inner.body_limit.store(200, Ordering::SeqCst);
    let killed = "i=0; while [ $i -lt 100 ]; do echo \"line $i\"; i=$((i+1)); done; kill -TERM $$";
    run(&receiver, &[], &["sh", "-c", killed]).await.expect(143);
    let body = assert_one_run(&receiver, "/ping/TOKEN/fail").body_text();
    assert!(body.len() <= 200, "{} bytes", body.len());
    assert!(
        body.contains("line 99\n") && body.ends_with("killed by signal 15 (SIGTERM)\n"),
        "{body}"
    );
}

#[tokio::test]
async fn input_reaches_the_command_and_its_output_reaches_ours() {
    let receiver = PingReceiver::start().await;
    let url = receiver.ping_url();
    let ran = pushmon_with_input(
        &["run", "--url", &url, "--", "sh", "-c", "cat; echo done"],
        &[],
        b"hello\nworld\n",
    )
    .await;
    assert_eq!(ran.expect(0), "hello\nworld\ndone\n");
    assert!(
        !ran.stderr.contains("pushmon run"),
        "nothing to warn about: {}",
        ran.stderr
    );
    let report = assert_one_run(&receiver, "/ping/TOKEN/0");
    assert_eq!(report.body_text(), "hello\nworld\ndone\n");
}

#[tokio::test]
async fn sigterm_and_sigint_are_passed_on_to_the_command() {
    let receiver = PingReceiver::start().await;
    let url = receiver.ping_url();
    // The trap runs once the foreground sleep ends: SIGTERM reaches the whole group.
    let script = "trap 'echo got TERM; exit 7' TERM; echo ready; while :; do sleep 0.1; done";
    let mut child = command(&["run", "--url", &url, "--", "sh", "-c", script], &[])
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(stdout.next_line().await.unwrap().as_deref(), Some("ready"));
    signal(child.id().unwrap(), "TERM");
    assert_eq!(
        stdout.next_line().await.unwrap().as_deref(),
        Some("got TERM")
    );
    let ran = finish(child).await;
    ran.expect(7);
    assert_one_run(&receiver, "/ping/TOKEN/7");

    let receiver = PingReceiver::start().await;
    let url = receiver.ping_url();
    let mut child = command(
        &[
            "run",
            "--url",
            &url,
            "--",
            "sh",
            "-c",
            "echo ready; exec sleep 60",
        ],
        &[],
    )
    .spawn()
    .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(stdout.next_line().await.unwrap().as_deref(), Some("ready"));
    signal(child.id().unwrap(), "INT");
    let ran = finish(child).await;
    ran.expect(130);
    let body = assert_one_run(&receiver, "/ping/TOKEN/fail").body_text();
    assert!(
        body.contains("killed by signal 2 (SIGINT) (pushmon run received SIGINT and passed it on)"),
        "{body}"
    );
}

fn signal(pid: u32, name: &str) {
    let sent = std::process::Command::new("kill")
        .args([format!("-{name}"), pid.to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
}

#[tokio::test]
async fn a_failing_server_is_retried_with_backoff_while_the_command_runs() {
    let receiver = PingReceiver::start().await;
    receiver.inner.fail_first.store(2, Ordering::SeqCst);
    // Long enough for the start's two retries (about 0.5 s, then 1 s).
    let ran = run(&receiver, &[], &["sh", "-c", "sleep 4; echo finished"]).await;
    ran.expect(0);
    assert!(
        ran.stderr.contains("cannot report the start") && ran.stderr.contains("500"),
        "{}",
        ran.stderr
    );
    let received = receiver.received();
    let seen: Vec<(&str, u16)> = received
        .iter()
        .map(|ping| (ping.path.as_str(), ping.answered))
        .collect();
    assert_eq!(
        seen,
        [
            ("/ping/TOKEN/start", 500),
            ("/ping/TOKEN/start", 500),
            ("/ping/TOKEN/start", 200),
            ("/ping/TOKEN/0", 200)
        ]
    );
    assert!(received.iter().all(|ping| ping.rid() == received[0].rid()));
    assert_eq!(received[3].body_text(), "finished\n");
}

#[tokio::test]
async fn a_refused_report_is_not_retried() {
    let receiver = PingReceiver::start().await;
    receiver.inner.status.store(404, Ordering::SeqCst);
    let ran = run(&receiver, &[], &["sh", "-c", "exit 4"]).await;
    ran.expect(4);
    assert_eq!(receiver.paths(), ["/ping/TOKEN/start", "/ping/TOKEN/4"]);
    assert!(
        ran.stderr.contains("the outcome was not reported to") && ran.stderr.contains("404"),
        "{}",
        ran.stderr
    );
}

#[tokio::test]
async fn an_unreachable_server_never_changes_the_outcome() {
    let port = closed_port().await;
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let script = format!("touch {}; exit 5", marker.display());
    let url = format!("http://127.0.0.1:{port}/ping/SecretToken");
    let started = Instant::now();
    let ran = pushmon(
        &[
            "run",
            "--url",
            &url,
            "--retry-for",
            "2s",
            "--",
            "sh",
            "-c",
            &script,
        ],
        &[],
    )
    .await;
    ran.expect(5);
    assert!(marker.exists(), "the command ran");
    assert!(started.elapsed() < Duration::from_secs(60));
    assert!(
        ran.stderr.contains("retrying for up to 2s"),
        "{}",
        ran.stderr
    );
    assert!(
        ran.stderr
            .contains("exiting with the command's status anyway"),
        "{}",
        ran.stderr
    );
    assert!(
        !ran.stderr.contains("SecretToken"),
        "the token leaked: {}",
        ran.stderr
    );
}

#[tokio::test]
async fn a_hanging_server_is_given_up_on_in_time() {
    let receiver = PingReceiver::start().await;
    receiver.inner.hang.store(true, Ordering::SeqCst);
    let started = Instant::now();
    let ran = run(
        &receiver,
        &["--retry-for", "1s"],
        &["sh", "-c", "echo ran; exit 2"],
    )
    .await;
    assert_eq!(ran.expect(2), "ran\n");
    // Each report gets at most its retry time and one short attempt beyond it.
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
    assert!(ran.stderr.contains("timed out"), "{}", ran.stderr);
    assert!(receiver.paths().iter().any(|path| path == "/ping/TOKEN/2"));
}

#[tokio::test]
async fn the_ping_url_comes_from_a_push_url_a_token_or_the_environment() {
    // A native push URL becomes the same token's ping URL.
    let receiver = PingReceiver::start().await;
    let push_url = format!("{}/api/push/TOKEN", receiver.base);
    pushmon(&["run", "--url", &push_url, "--", "true"], &[])
        .await
        .expect(0);
    assert_one_run(&receiver, "/ping/TOKEN/0");

    let receiver = PingReceiver::start().await;
    pushmon(
        &[
            "run",
            "--token",
            "TOKEN",
            "--server",
            &receiver.base,
            "--",
            "true",
        ],
        &[],
    )
    .await
    .expect(0);
    assert_one_run(&receiver, "/ping/TOKEN/0");

    let receiver = PingReceiver::start().await;
    pushmon(
        &["run", "--", "false"],
        &[
            ("PUSHMON_URL", &receiver.base),
            ("PUSHMON_PUSH_TOKEN", "TOKEN"),
        ],
    )
    .await
    .expect(1);
    assert_one_run(&receiver, "/ping/TOKEN/1");

    let receiver = PingReceiver::start().await;
    let url = receiver.ping_url();
    pushmon(&["run", "true"], &[("PUSHMON_PING_URL", &url)])
        .await
        .expect(0);
    assert_one_run(&receiver, "/ping/TOKEN/0");
}

#[tokio::test]
async fn without_a_monitor_to_report_to_the_command_does_not_run() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let script = format!("touch {}", marker.display());
    let ran = pushmon(&["run", "--", "sh", "-c", &script], &[]).await;
    ran.expect(2);
    assert!(
        ran.stderr.contains("no monitor to report to"),
        "{}",
        ran.stderr
    );
    assert!(!marker.exists());
    pushmon(&["run", "--url", "not a url", "--", "true"], &[])
        .await
        .expect(2);
    pushmon(&["run", "--url", "http://h/ping/x"], &[])
        .await
        .expect(2);
}
