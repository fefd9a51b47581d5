//! A store that lost acknowledged writes is refused, never served short
//! (`docs/operations.md`, "The data directory" and "Lost writes"): a truncated,
//! damaged or deleted journal, or a deleted store directory, stops start-up with an
//! error naming what is lost, and `pushmon check` reports it, until the operator
//! accepts the loss (`--accept-data-loss`); sequence numbers then continue above the
//! high-water mark. And no false alarm: a restart after SIGTERM or SIGKILL under load
//! is never refused. All against the real binary.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng as _;
use reqwest::StatusCode;
use serde_json::Value;
use tempfile::TempDir;
use tokio::time::sleep;

use crate::support::{ADMIN_TOKEN, Api, ServerProcess, check_store};

/// Load tests are about durability, not the rate limits.
const NO_RATE_LIMIT: [&str; 6] = [
    "--rate-limit-per-second",
    "1000000",
    "--rate-limit-burst",
    "1000000",
    "--rate-limit-ip-per-second",
    "0",
];

/// How long a server that refuses to start may take to exit.
const EXIT_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs `pushmon serve` on `data_dir` and waits for it to exit: the exit code and its
/// stderr. Fails if it is still running after `EXIT_TIMEOUT` (it started).
pub async fn serve_until_exit(data_dir: &Path, extra_args: &[&str]) -> (Option<i32>, String) {
    serve_wrapped_until_exit(&[], data_dir, extra_args).await
}

/// [`serve_until_exit`] run as `wrapper… pushmon serve …`.
pub async fn serve_wrapped_until_exit(
    wrapper: &[&str],
    data_dir: &Path,
    extra_args: &[&str],
) -> (Option<i32>, String) {
    let binary = env!("CARGO_BIN_EXE_pushmon");
    let mut command = match wrapper.split_first() {
        Some((program, args)) => {
            let mut command = tokio::process::Command::new(program);
            command.args(args).arg(binary);
            command
        }
        None => tokio::process::Command::new(binary),
    };
    let mut child = command
        .arg("serve")
        .args(["--listen", "127.0.0.1:0", "--admin-token", ADMIN_TOKEN])
        .arg("--data-dir")
        .arg(data_dir)
        .args(extra_args)
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn pushmon");
    let output = tokio::time::timeout(EXIT_TIMEOUT, async {
        let mut stderr = String::new();
        use tokio::io::AsyncReadExt as _;
        let mut pipe = child.stderr.take().expect("piped stderr");
        let _ = pipe.read_to_string(&mut stderr).await;
        let status = child.wait().await.expect("wait for pushmon");
        (status.code(), stderr)
    })
    .await;
    output.unwrap_or_else(|_| panic!("pushmon serve on {} did not exit", data_dir.display()))
}

/// `pushmon check`: its exit code, stdout and stderr.
pub fn check(data_dir: &Path) -> (Option<i32>, String, String) {
    check_wrapped(&[], data_dir)
}

/// [`check`] run as `wrapper… pushmon check …`.
pub fn check_wrapped(wrapper: &[&str], data_dir: &Path) -> (Option<i32>, String, String) {
    let binary = env!("CARGO_BIN_EXE_pushmon");
    let mut command = match wrapper.split_first() {
        Some((program, args)) => {
            let mut command = std::process::Command::new(program);
            command.args(args).arg(binary);
            command
        }
        None => std::process::Command::new(binary),
    };
    let output = command
        .arg("check")
        .arg("--data-dir")
        .arg(data_dir)
        .output()
        .expect("run pushmon check");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The high-water mark of a stopped server's data directory.
pub fn mark(data_dir: &Path) -> Value {
    let text = std::fs::read_to_string(data_dir.join("high-water-mark")).expect("a mark");
    serde_json::from_str(&text).expect("the mark is JSON")
}

/// The newest journal file of the store in `data_dir`, and where its data ends (the
/// file is sparse, zeros after the data).
pub fn newest_journal(data_dir: &Path) -> (PathBuf, u64) {
    let mut journals: Vec<(u64, PathBuf)> = std::fs::read_dir(data_dir.join("fjall"))
        .expect("the store's directory")
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().to_string();
            Some((name.strip_suffix(".jnl")?.parse().ok()?, entry.path()))
        })
        .collect();
    journals.sort();
    let (_, path) = journals.pop().expect("a journal file");
    let bytes = std::fs::read(&path).expect("read the journal");
    let end = bytes
        .iter()
        .rposition(|byte| *byte != 0)
        .map_or(0, |at| at + 1);
    (path, end as u64)
}

/// `truncate -s <size>` on `path`.
pub fn truncate(path: &Path, size: u64) {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|file| file.set_len(size))
        .expect("truncate the journal");
}

/// `cp -a from to`.
pub fn copy_dir(from: &Path, to: &Path) {
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .expect("run cp");
    assert!(
        status.success(),
        "cp -a {} {}",
        from.display(),
        to.display()
    );
}

/// The refusal names what is lost and what to do.
fn assert_refused_clearly(code: Option<i32>, stderr: &str, journal: Option<&Path>) {
    assert_eq!(code, Some(1), "exit code; stderr:\n{stderr}");
    let mut expected = vec![
        "sequence number",
        "high-water-mark",
        "--accept-data-loss",
        "Restore",
    ];
    let journal = journal.map(|path| path.display().to_string());
    expected.extend(journal.as_deref());
    for text in expected {
        assert!(stderr.contains(text), "{text:?} missing from:\n{stderr}");
    }
    assert!(!stderr.contains("listening on"), "it served:\n{stderr}");
}

/// A stopped server's data directory with `monitors` monitors and a few heartbeats.
async fn stopped_store(dir: &Path, monitors: usize) -> Vec<String> {
    let server = ServerProcess::start(dir, &NO_RATE_LIMIT).await;
    let mut ids = Vec::new();
    for n in 0..monitors {
        let monitor = server.create_monitor(&format!("job {n}"), 3600).await;
        server
            .push_ok(&monitor.push_token, &[("msg", "hello")])
            .await;
        ids.push(monitor.id);
    }
    let (status, log) = server.sigterm().await;
    assert_eq!(status.code(), Some(0), "{log}");
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_copy_of_a_real_data_dir_refuses_to_start_until_the_loss_is_accepted() {
    let temp = TempDir::new().unwrap();
    let original = temp.path().join("original");
    let ids = stopped_store(&original, 60).await;
    let marked = mark(&original)["last_seq"].as_u64().expect("last_seq");
    assert!(marked >= 120, "60 creations and 60 heartbeats: {marked}");

    let copy = temp.path().join("copy");
    copy_dir(&original, &copy);
    let (journal, end) = newest_journal(&copy);
    truncate(&journal, end / 2);

    let (code, stderr) = serve_until_exit(&copy, &[]).await;
    assert_refused_clearly(code, &stderr, Some(&journal));
    assert!(
        stderr.contains(&format!("to {marked} are lost")),
        "{stderr}"
    );
    let (code, stdout, _) = check(&copy);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        stdout.contains("data loss: acknowledged writes are missing"),
        "{stdout}"
    );
    assert!(stdout.contains("FAILED"), "{stdout}");
    // Refusing (and checking) writes no new mark: still refused.
    let (code, stderr) = serve_until_exit(&copy, &[]).await;
    assert_refused_clearly(code, &stderr, Some(&journal));

    // Accepted: it serves what is left, and numbers new events above the mark.
    let server = ServerProcess::start(&copy, &["--accept-data-loss"]).await;
    let left = server.list_monitors().await.len();
    assert!(left < ids.len(), "{left} of {} monitors left", ids.len());
    assert!(server.log().contains("acknowledged writes are missing"));
    let monitor = server.create_monitor("after the loss", 3600).await;
    let history = server.history(&monitor.id).await;
    assert!(
        history[0].seq > marked,
        "sequence {} reused at or below the mark {marked}",
        history[0].seq
    );
    let (status, log) = server.sigterm().await;
    assert_eq!(status.code(), Some(0), "{log}");
    check_store(&copy);
    // The original, untouched, is whole.
    check_store(&original);
    let server = ServerProcess::start(&original, &[]).await;
    assert_eq!(server.list_monitors().await.len(), ids.len());
    server.sigterm().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_journal_or_store_directory_refuses_to_start() {
    let temp = TempDir::new().unwrap();
    let original = temp.path().join("original");
    stopped_store(&original, 10).await;

    let no_journal = temp.path().join("no-journal");
    copy_dir(&original, &no_journal);
    let (journal, _) = newest_journal(&no_journal);
    std::fs::remove_file(&journal).unwrap();
    let (code, stderr) = serve_until_exit(&no_journal, &[]).await;
    assert_refused_clearly(code, &stderr, None);
    assert!(stderr.contains("sequence numbers 1 to"), "{stderr}");

    let no_store = temp.path().join("no-store");
    copy_dir(&original, &no_store);
    std::fs::remove_dir_all(no_store.join("fjall")).unwrap();
    let (code, stderr) = serve_until_exit(&no_store, &[]).await;
    assert_refused_clearly(code, &stderr, None);
    assert!(stderr.contains("fjall is missing"), "{stderr}");
    assert!(
        !no_store.join("fjall").exists(),
        "an empty store was created"
    );
    let (code, _, stderr) = check(&no_store);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("fjall is missing"), "{stderr}");
}

/// Heartbeats acknowledged with a 200, by unique msg, from clients pushing until the
/// server goes away.
struct Load {
    stop: Arc<AtomicBool>,
    acknowledged: Arc<Mutex<Vec<(String, String)>>>,
    clients: Vec<tokio::task::JoinHandle<()>>,
}

fn start_load(api: &Api, monitors: &[(String, String)], round: usize) -> Load {
    let stop = Arc::new(AtomicBool::new(false));
    let acknowledged: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let monitors = Arc::new(monitors.to_vec());
    let clients = (0..4)
        .map(|client| {
            let (stop, acknowledged, monitors) = (
                Arc::clone(&stop),
                Arc::clone(&acknowledged),
                Arc::clone(&monitors),
            );
            let base_url = api.base_url.clone();
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                for n in 0.. {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let (id, token) = &monitors[(client + n) % monitors.len()];
                    let msg = format!("r{round} c{client} n{n}");
                    let sent = http
                        .post(format!("{base_url}/api/push/{token}"))
                        .query(&[("msg", msg.as_str())])
                        .send()
                        .await;
                    match sent {
                        Ok(response) if response.status() == StatusCode::OK => {
                            if response
                                .text()
                                .await
                                .is_ok_and(|body| body.contains("true"))
                            {
                                acknowledged.lock().unwrap().push((id.clone(), msg));
                            }
                        }
                        Ok(_) => {}
                        Err(_) => return,
                    }
                }
            })
        })
        .collect();
    Load {
        stop,
        acknowledged,
        clients,
    }
}

impl Load {
    async fn finish(self) -> Vec<(String, String)> {
        self.stop.store(true, Ordering::SeqCst);
        for client in self.clients {
            let _ = client.await;
        }
        std::mem::take(&mut *self.acknowledged.lock().unwrap())
    }
}

async fn assert_all_recorded(api: &Api, acknowledged: &[(String, String)]) {
    let mut by_monitor: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for (id, msg) in acknowledged {
        by_monitor.entry(id).or_default().push(msg);
    }
    for (id, messages) in by_monitor {
        let recorded: std::collections::HashSet<String> = api
            .all_events(id)
            .await
            .into_iter()
            .filter_map(|event| event.msg)
            .collect();
        let lost: Vec<&&str> = messages
            .iter()
            .filter(|msg| !recorded.contains(**msg))
            .collect();
        assert!(
            lost.is_empty(),
            "{id} lost acknowledged heartbeats {lost:?}"
        );
    }
}

/// No false alarm: SIGKILL (and SIGTERM) under load, again and again, and every start
/// opens the store, which `pushmon check` finds whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarts_after_sigkill_or_sigterm_under_load_are_never_refused() {
    let temp = TempDir::new().unwrap();
    let dir = temp.path().join("data");
    let args: Vec<&str> = NO_RATE_LIMIT
        .iter()
        .copied()
        .chain(["--history-max-heartbeats", "0"])
        .collect();
    let mut server = ServerProcess::start(&dir, &args).await;
    let mut monitors = Vec::new();
    for n in 0..10 {
        let monitor = server.create_monitor(&format!("job {n}"), 3600).await;
        monitors.push((monitor.id, monitor.push_token));
    }
    let mut acknowledged = Vec::new();
    for round in 0..6 {
        let load = start_load(&server, &monitors, round);
        let run_for = rand::rng().random_range(300..1500);
        sleep(Duration::from_millis(run_for)).await;
        if round % 3 == 2 {
            let (status, log) = server.sigterm().await;
            assert_eq!(status.code(), Some(0), "{log}");
        } else {
            server.sigkill().await;
        }
        acknowledged.extend(load.finish().await);
        check_store(&dir);
        // Panics if the server exits before it is ready (a refusal).
        server = ServerProcess::start(&dir, &args).await;
    }
    assert!(
        acknowledged.len() > 100,
        "only {} acknowledged",
        acknowledged.len()
    );
    assert_all_recorded(&server, &acknowledged).await;
    server.sigterm().await;
}

/// The reduced form of `scripts/soak-truncate.sh`: SIGKILL under load, then the
/// journal cut in half, or deleted: each copy is refused, naming the loss.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_then_a_truncated_or_deleted_journal_is_refused() {
    let temp = TempDir::new().unwrap();
    let dir = temp.path().join("data");
    let server = ServerProcess::start(&dir, &NO_RATE_LIMIT).await;
    let mut monitors = Vec::new();
    for n in 0..10 {
        let monitor = server.create_monitor(&format!("job {n}"), 3600).await;
        monitors.push((monitor.id, monitor.push_token));
    }
    let load = start_load(&server, &monitors, 0);
    // Seconds of load: the mark (written every second) covers all but the last one,
    // well past the middle of the journal.
    sleep(Duration::from_millis(3500)).await;
    server.sigkill().await;
    let acknowledged = load.finish().await;
    assert!(
        acknowledged.len() > 100,
        "only {} acknowledged",
        acknowledged.len()
    );
    let marked = mark(&dir)["last_seq"].as_u64().unwrap();

    let cut = temp.path().join("cut");
    copy_dir(&dir, &cut);
    let (journal, end) = newest_journal(&cut);
    truncate(&journal, end / 2);
    let (code, stderr) = serve_until_exit(&cut, &[]).await;
    assert_refused_clearly(code, &stderr, Some(&journal));
    assert!(
        stderr.contains(&format!("to {marked} are lost")),
        "{stderr}"
    );

    let deleted = temp.path().join("deleted");
    copy_dir(&dir, &deleted);
    let (journal, _) = newest_journal(&deleted);
    std::fs::remove_file(&journal).unwrap();
    let (code, stderr) = serve_until_exit(&deleted, &[]).await;
    assert_refused_clearly(code, &stderr, None);

    // The undamaged store opens, with every acknowledged heartbeat.
    let server = ServerProcess::start(&dir, &NO_RATE_LIMIT).await;
    assert_all_recorded(&server, &acknowledged).await;
    server.sigterm().await;
}
