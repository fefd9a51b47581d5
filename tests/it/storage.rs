//! Storage faults (`docs/operations.md`: 503 and nothing acknowledged, `/readyz` 503),
//! done for real: the real binary runs in its own mount namespace with
//! its data directory on a small tmpfs, which the test fills up (ENOSPC) from
//! outside. (A read-only remount is refused by the kernel while the journal is open
//! for writing, so "disk full" stands for every write error: the writer handles
//! them all alike.) While the disk refuses writes, pushes answer 503
//! and are not recorded, `/readyz` is 503 and nothing panics; once the fault clears,
//! the store reopens itself and service resumes without a restart.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use tempfile::TempDir;
use tokio::time::{Instant, sleep};

use crate::support::{Monitor, ServerProcess, Status, expect_error, expect_json, of_kind};

/// How long the store may take to notice a cleared fault and reopen.
const RECOVERY_WAIT: Duration = Duration::from_secs(20);

/// `unshare … sh -c 'mount a tmpfs on $0, then exec the server'`.
fn on_small_tmpfs(dir: &Path) -> Vec<String> {
    [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        "mount -t tmpfs -o size=48m pushmon-test \"$0\" && exec \"$@\"",
    ]
    .iter()
    .map(|part| (*part).to_owned())
    .chain([dir.display().to_string()])
    .collect()
}

/// The real binary with its data directory `dir` on a 48 MiB tmpfs of its own.
async fn start_on_small_tmpfs(dir: &Path, args: &[&str]) -> ServerProcess {
    let wrapper = on_small_tmpfs(dir);
    let wrapper: Vec<&str> = wrapper.iter().map(String::as_str).collect();
    ServerProcess::start_wrapped(&wrapper, dir, args).await
}

/// Fills the server's tmpfs (`dir` as it sees it) with the file `name`; returns it.
async fn fill_disk_of(server: &ServerProcess, dir: &Path, name: &'static str) -> PathBuf {
    let data = seen_by(server, dir);
    tokio::task::spawn_blocking(move || fill_disk(&data, name))
        .await
        .unwrap()
}

/// The data directory as the server (in its own mount namespace) sees it.
fn seen_by(server: &ServerProcess, dir: &Path) -> PathBuf {
    PathBuf::from(format!("/proc/{}/root{}", server.pid(), dir.display()))
}

/// Writes a file until the filesystem is full; returns its path.
fn fill_disk(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    let mut file = std::fs::File::create(&path).expect("create the filler");
    let chunk = vec![0xA5u8; 256 * 1024];
    loop {
        match file.write_all(&chunk) {
            Ok(()) => {}
            Err(error) if error.raw_os_error() == Some(28) => break, // ENOSPC
            Err(error) => panic!("filling the disk failed otherwise: {error}"),
        }
    }
    // Whatever is still buffered by the kernel has no room either.
    let _ = file.sync_all();
    path
}

async fn readyz(server: &ServerProcess) -> StatusCode {
    server
        .client
        .get(server.url("/readyz"))
        .send()
        .await
        .unwrap()
        .status()
}

/// Pushes (1 KiB messages) until the store stays refused: a push answers 503 and
/// `/readyz` still says 503 after the store's next attempt to reopen. A store that is
/// full can still take a few small writes into the space left in its last page, so
/// it may flap between refused and healed before that. Returns the messages
/// acknowledged meanwhile.
async fn push_until_refused(server: &ServerProcess, token: &str, tag: &str) -> Vec<String> {
    let padding = "x".repeat(1000);
    let mut acknowledged = Vec::new();
    for n in 0..300 {
        let msg = format!("{tag} {n} {padding}");
        let response = server.push(token, &[("msg", &msg)]).await;
        match response.status() {
            StatusCode::OK => acknowledged.push(msg),
            StatusCode::SERVICE_UNAVAILABLE => {
                let error = expect_error(response, StatusCode::SERVICE_UNAVAILABLE).await;
                assert!(error.contains("storage"), "{error}");
                sleep(Duration::from_millis(1200)).await;
                if readyz(server).await == StatusCode::SERVICE_UNAVAILABLE {
                    return acknowledged;
                }
            }
            other => panic!("unexpected {other} while the disk is failing"),
        }
    }
    panic!("the store never stayed refused on a failing disk");
}

/// Waits until a push is acknowledged again; returns its message.
async fn push_until_accepted(server: &ServerProcess, token: &str, tag: &str) -> String {
    let deadline = Instant::now() + RECOVERY_WAIT;
    for n in 0.. {
        let msg = format!("{tag} {n}");
        let response = server.push(token, &[("msg", &msg)]).await;
        match response.status() {
            StatusCode::OK => return msg,
            StatusCode::SERVICE_UNAVAILABLE => {}
            other => panic!("unexpected {other} while recovering"),
        }
        assert!(
            Instant::now() < deadline,
            "no recovery within {RECOVERY_WAIT:?}; log:\n{}",
            server.log()
        );
        sleep(Duration::from_millis(100)).await;
    }
    unreachable!()
}

/// While refused: a few more pushes, each 503; returns how many were tried.
async fn all_refused(server: &ServerProcess, token: &str, tag: &str) -> usize {
    for n in 0..20 {
        let response = server.push(token, &[("msg", &format!("{tag} {n}"))]).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
    20
}

fn counter(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} missing from /metrics"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_pushes_and_heals_without_a_restart() {
    let dir = TempDir::new().unwrap();
    let server = start_on_small_tmpfs(dir.path(), &["--restart-grace", "0"]).await;
    let steady = server.create_monitor("steady", 3600).await;
    // Nobody pushes this one: its timeout falls while the disk is full.
    let silent = server.create_monitor("silent", 2).await;
    let mut acknowledged = Vec::new();
    server
        .push_ok(&steady.push_token, &[("msg", "before")])
        .await;
    acknowledged.push("before".to_owned());

    // Disk full.
    let filler = fill_disk_of(&server, dir.path(), "filler").await;
    acknowledged.extend(push_until_refused(&server, &steady.push_token, "full").await);
    // Reopening the store can free a little room (fjall drops a torn journal tail),
    // and a store that can write again rightly accepts pushes. Take that room too,
    // so what follows checks a disk that stays full.
    let top_up = fill_disk_of(&server, dir.path(), "top-up").await;
    sleep(Duration::from_millis(1200)).await;
    assert_eq!(readyz(&server).await, StatusCode::SERVICE_UNAVAILABLE);
    all_refused(&server, &steady.push_token, "full refused").await;
    // The metrics still answer during the fault, and count it.
    let metrics = server.metrics().await;
    assert!(counter(&metrics, "pushmon_store_write_failures_total") >= 1.0);
    // The silent monitor's deadline passes while nothing can be written.
    sleep(Duration::from_secs(3)).await;
    assert_eq!(readyz(&server).await, StatusCode::SERVICE_UNAVAILABLE);

    // Room again: the store reopens itself.
    std::fs::remove_file(&filler).unwrap();
    std::fs::remove_file(&top_up).unwrap();
    acknowledged.push(push_until_accepted(&server, &steady.push_token, "after full").await);
    assert_eq!(readyz(&server).await, StatusCode::OK);
    // The timeout that fell during the fault is recorded once the store heals.
    let down = server
        .wait_for_status(&silent.id, Status::Down, RECOVERY_WAIT)
        .await;
    assert_eq!(down.status, Status::Down);
    let silent_history = server.history(&silent.id).await;
    assert_eq!(of_kind(&silent_history, "down").len(), 1);

    let metrics = server.metrics().await;
    assert!(counter(&metrics, "pushmon_store_recoveries_total") >= 1.0);
    // Every acknowledged heartbeat is in the history, in order. A refused one may be
    // there too: a write the disk refused can still reach the journal when fjall
    // flushes its buffer on close; the server then rebuilds that monitor from the
    // store. Nothing else is.
    let recorded: Vec<String> = of_kind(&server.history(&steady.id).await, "heartbeat")
        .into_iter()
        .filter_map(|event| event.msg.clone())
        .collect();
    let mut unacknowledged = recorded.iter().filter(|msg| !acknowledged.contains(msg));
    assert!(
        unacknowledged.all(|msg| msg.starts_with("full")),
        "{recorded:?}"
    );
    let acknowledged_in_history: Vec<&String> = recorded
        .iter()
        .filter(|msg| acknowledged.contains(msg))
        .collect();
    assert_eq!(
        acknowledged_in_history,
        acknowledged.iter().collect::<Vec<_>>()
    );
    assert!(!server.log().contains("panicked"), "{}", server.log());

    // And the process still shuts down cleanly.
    let (status, log) = server.sigterm().await;
    assert!(status.success(), "{log}");
}

/// Retention (issue 6): with a limit of 5 heartbeats, a sweep drops the older ones but
/// keeps every state change and the heartbeats the state depends on, and the pruned
/// log still replays to each monitor's state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_keeps_the_newest_heartbeats_and_every_state_change() {
    let dir = TempDir::new().unwrap();
    let server = ServerProcess::start(
        dir.path(),
        &[
            "--history-max-heartbeats",
            "5",
            "--history-sweep-seconds",
            "1",
        ],
    )
    .await;
    let monitor = server.create_monitor("pruned", 3600).await;
    for n in 0..12 {
        let status = if n == 6 { "down" } else { "up" };
        server
            .push_ok(
                &monitor.push_token,
                &[("status", status), ("msg", &format!("beat {n}"))],
            )
            .await;
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let history = loop {
        let history = server.history(&monitor.id).await;
        if of_kind(&history, "heartbeat").len() <= 7 {
            break history;
        }
        assert!(Instant::now() < deadline, "never pruned: {history:?}");
        sleep(Duration::from_millis(200)).await;
    };
    let kept: Vec<&str> = of_kind(&history, "heartbeat")
        .iter()
        .filter_map(|event| event.msg.as_deref())
        .collect();
    // The first took it out of `pending` (the state remembers when), the newest
    // `down` one (the successes counted toward a recovery start after it); then the
    // newest 5.
    assert_eq!(
        kept,
        [
            "beat 0", "beat 6", "beat 7", "beat 8", "beat 9", "beat 10", "beat 11"
        ]
    );
    let kinds: Vec<&str> = history
        .iter()
        .filter(|event| event.kind != "heartbeat")
        .map(|event| event.kind.as_str())
        .collect();
    assert_eq!(kinds, ["created", "up", "down", "up"]);
    let metrics = server.metrics().await;
    assert!(counter(&metrics, "pushmon_history_pruned_total") >= 5.0);
    let (status, log) = server.sigterm().await;
    assert!(status.success(), "{log}");
    crate::support::check_store(dir.path());
}

/// A data directory deleted under the running server: it must not go on acknowledging
/// writes into unlinked files, nor create a new, empty store in its place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vanished_data_directory_refuses_writes_instead_of_losing_them() {
    let dir = TempDir::new().unwrap();
    let server = ServerProcess::start(dir.path(), &[]).await;
    let monitor = server.create_monitor("orphaned", 3600).await;
    server
        .push_ok(&monitor.push_token, &[("msg", "before")])
        .await;
    std::fs::remove_dir_all(dir.path().join("fjall")).unwrap();
    for n in 0..10 {
        let response = server
            .push(&monitor.push_token, &[("msg", &format!("after {n}"))])
            .await;
        let error = expect_error(response, StatusCode::SERVICE_UNAVAILABLE).await;
        assert!(error.contains("storage"), "{error}");
    }
    assert_eq!(readyz(&server).await, StatusCode::SERVICE_UNAVAILABLE);
    // It keeps refusing rather than starting over in an empty store.
    sleep(Duration::from_secs(2)).await;
    let response = server.push(&monitor.push_token, &[("msg", "later")]).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        !dir.path().join("fjall").exists(),
        "a new store was created"
    );
    let (_, log) = server.sigterm().await;
    assert!(log.contains("deleted or replaced"), "{log}");
    assert!(!log.contains("panicked"), "{log}");
}

/// Plain heartbeats are pipelined: a monitor's actor applies one and goes on while the
/// writer makes it durable. Here many pushers share one monitor while the disk fills
/// up, so some applied heartbeats are never written. The monitor must not keep that
/// state: once the store heals, its state is the newest heartbeat the log holds, and
/// every acknowledged heartbeat is in the log, in each pusher's order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_in_flight_when_the_disk_fills_do_not_leave_the_state_ahead_of_the_log() {
    let dir = TempDir::new().unwrap();
    let server = start_on_small_tmpfs(
        dir.path(),
        &[
            "--rate-limit-per-second",
            "100000",
            "--rate-limit-burst",
            "100000",
            "--rate-limit-ip-per-second",
            "0",
        ],
    )
    .await;
    let busy = server.create_monitor("busy", 3600).await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let pushers: Vec<_> = (0..16)
        .map(|worker| {
            let client = server.client.clone();
            let url = server.url(&format!("/api/push/{}", busy.push_token));
            let stop = std::sync::Arc::clone(&stop);
            tokio::spawn(async move {
                let padding = "x".repeat(500);
                let mut acknowledged = Vec::new();
                for n in 0u32.. {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        break;
                    }
                    let msg = format!("w{worker:02} {n:06} {padding}");
                    let response = client.post(&url).query(&[("msg", &msg)]).send().await;
                    match response.map(|response| response.status()) {
                        Ok(StatusCode::OK) => acknowledged.push(msg),
                        Ok(StatusCode::SERVICE_UNAVAILABLE) => {
                            sleep(Duration::from_millis(20)).await;
                        }
                        other => panic!("unexpected answer to a push: {other:?}"),
                    }
                }
                acknowledged
            })
        })
        .collect();
    sleep(Duration::from_millis(300)).await;

    // Disk full under load, long enough for pushes to be refused.
    let filler = fill_disk_of(&server, dir.path(), "filler").await;
    let deadline = Instant::now() + RECOVERY_WAIT;
    while readyz(&server).await != StatusCode::SERVICE_UNAVAILABLE {
        assert!(Instant::now() < deadline, "the full disk was never noticed");
        sleep(Duration::from_millis(50)).await;
    }
    sleep(Duration::from_millis(1500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut acknowledged = Vec::new();
    for pusher in pushers {
        acknowledged.push(pusher.await.unwrap());
    }
    assert!(
        acknowledged.iter().map(Vec::len).sum::<usize>() > 0,
        "nothing was acknowledged before the disk filled"
    );

    // Room again: the store reopens itself, and the monitor is rebuilt from it.
    std::fs::remove_file(&filler).unwrap();
    let deadline = Instant::now() + RECOVERY_WAIT;
    while readyz(&server).await != StatusCode::OK {
        assert!(
            Instant::now() < deadline,
            "no recovery; log:\n{}",
            server.log()
        );
        sleep(Duration::from_millis(100)).await;
    }
    let recorded: Vec<String> = loop {
        let recorded: Vec<String> = of_kind(&server.history(&busy.id).await, "heartbeat")
            .into_iter()
            .filter_map(|event| event.msg.clone())
            .collect();
        // `/readyz` says the store writes again; the monitor's actor may still be
        // being rebuilt from it, and answers 503 (`last_msg` None) until it is.
        let response = server
            .api(Method::GET, &format!("/api/monitors/{}", busy.id))
            .send()
            .await
            .expect("send get monitor");
        let last_msg = match response.status() {
            StatusCode::SERVICE_UNAVAILABLE => None,
            _ => {
                let body = expect_json(response, StatusCode::OK).await;
                let state: Monitor = serde_json::from_value(body).expect("a monitor");
                Some(state.last_msg)
            }
        };
        if last_msg
            .as_ref()
            .is_some_and(|msg| msg.as_ref() == recorded.last())
        {
            break recorded;
        }
        assert!(
            Instant::now() < deadline,
            "the monitor's state stayed ahead of its log (or was never rebuilt): last_msg {:?}, newest recorded {:?}",
            last_msg.map(|msg| msg.map(|msg| msg[..10].to_owned())),
            recorded.last().map(|msg| msg[..10].to_owned())
        );
        sleep(Duration::from_millis(200)).await;
    };
    // Every acknowledged heartbeat is recorded, in the order its pusher sent it.
    for (worker, sent) in acknowledged.iter().enumerate() {
        let prefix = format!("w{worker:02} ");
        let in_log: Vec<&String> = recorded
            .iter()
            .filter(|msg| msg.starts_with(&prefix) && sent.contains(msg))
            .collect();
        assert_eq!(in_log, sent.iter().collect::<Vec<_>>(), "pusher {worker}");
    }
    server.push_ok(&busy.push_token, &[("msg", "after")]).await;
    assert_eq!(
        server.get_monitor(&busy.id).await.last_msg.as_deref(),
        Some("after")
    );
    assert!(!server.log().contains("panicked"), "{}", server.log());
    let (status, log) = server.sigterm().await;
    assert!(status.success(), "{log}");
}
