//! The real binary under load: a SIGKILL must not lose an acknowledged heartbeat
//! (`docs/push.md`: a crash right after the 200 must not lose it), and SIGTERM drains
//! and exits 0 (`docs/operations.md`).

use std::collections::BTreeSet;
use std::os::unix::process::ExitStatusExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use reqwest::StatusCode;
use tempfile::TempDir;
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep};

use crate::support::{Api, ServerProcess, of_kind};

const CLIENTS: usize = 8;
const MONITORS: usize = 50;

/// The default limits (50/s, burst 200 per token; 1000/s, burst 2000 per address) could
/// turn part of the load into 429s; this test is about durability, not the limiters.
const NO_RATE_LIMIT: [&str; 6] = [
    "--rate-limit-per-second",
    "1000000",
    "--rate-limit-burst",
    "1000000",
    "--rate-limit-ip-per-second",
    "0",
];

/// Heartbeats acknowledged with a 200: (monitor index, unique msg).
type Acknowledged = Vec<(usize, String)>;

struct Load {
    stop: Arc<AtomicBool>,
    acknowledged: Arc<AtomicUsize>,
    clients: JoinSet<Acknowledged>,
}

/// Starts `CLIENTS` clients, each with its own connections, pushing a unique `msg`
/// at a time round the monitors until told to stop.
fn start_load(api: &Api, tokens: &[String]) -> Load {
    let stop = Arc::new(AtomicBool::new(false));
    let acknowledged = Arc::new(AtomicUsize::new(0));
    let tokens = Arc::new(tokens.to_vec());
    let mut clients = JoinSet::new();
    for client in 0..CLIENTS {
        let stop = Arc::clone(&stop);
        let acknowledged = Arc::clone(&acknowledged);
        let tokens = Arc::clone(&tokens);
        let base_url = api.base_url.clone();
        clients.spawn(async move {
            let http = reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap();
            let mut mine = Vec::new();
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                let monitor = (client * 7 + n) % tokens.len();
                let msg = format!("client {client} push {n}");
                let sent = http
                    .post(format!("{base_url}/api/push/{}", tokens[monitor]))
                    .query(&[("msg", msg.as_str())])
                    .send()
                    .await;
                match sent {
                    Ok(response) if response.status() == StatusCode::OK => {
                        // Only a 200 whose body arrived in full counts as acknowledged.
                        if response
                            .text()
                            .await
                            .is_ok_and(|body| body.contains("true"))
                        {
                            acknowledged.fetch_add(1, Ordering::SeqCst);
                            mine.push((monitor, msg));
                        }
                    }
                    Ok(response) => {
                        let status = response.status();
                        assert!(
                            status == StatusCode::SERVICE_UNAVAILABLE,
                            "push under load gave {status}"
                        );
                        sleep(Duration::from_millis(10)).await;
                    }
                    // The server is gone (or going): nothing acknowledged.
                    Err(_) => sleep(Duration::from_millis(10)).await,
                }
                n += 1;
            }
            mine
        });
    }
    Load {
        stop,
        acknowledged,
        clients,
    }
}

impl Load {
    /// Waits until the load has run for `at_least` and acknowledged `min_pushes`.
    async fn run_for(&self, at_least: Duration, min_pushes: usize) {
        let started = Instant::now();
        sleep(at_least).await;
        while self.acknowledged.load(Ordering::SeqCst) < min_pushes {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "only {} pushes acknowledged in 30 s",
                self.acknowledged.load(Ordering::SeqCst)
            );
            sleep(Duration::from_millis(50)).await;
        }
    }

    async fn finish(mut self) -> Acknowledged {
        self.stop.store(true, Ordering::SeqCst);
        let mut all = Vec::new();
        while let Some(client) = self.clients.join_next().await {
            all.extend(client.expect("load client panicked"));
        }
        all
    }
}

async fn start_with_monitors(data_dir: &TempDir) -> (ServerProcess, Vec<String>, Vec<String>) {
    let server = ServerProcess::start(data_dir.path(), &NO_RATE_LIMIT).await;
    let mut ids = Vec::new();
    let mut tokens = Vec::new();
    for n in 0..MONITORS {
        let monitor = server.create_monitor(&format!("job {n}"), 3600).await;
        ids.push(monitor.id);
        tokens.push(monitor.push_token);
    }
    (server, ids, tokens)
}

/// Every acknowledged msg is in its monitor's history.
async fn assert_all_recorded(api: &Api, ids: &[String], acknowledged: &Acknowledged) {
    let mut missing = Vec::new();
    for (index, id) in ids.iter().enumerate() {
        let recorded: BTreeSet<String> = of_kind(&api.all_events(id).await, "heartbeat")
            .iter()
            .filter_map(|event| event.msg.clone())
            .collect();
        missing.extend(
            acknowledged
                .iter()
                .filter(|(monitor, msg)| *monitor == index && !recorded.contains(msg))
                .map(|(_, msg)| format!("{id}: {msg}")),
        );
    }
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged heartbeats were lost, e.g. {:?}",
        missing.len(),
        acknowledged.len(),
        &missing[..missing.len().min(10)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_loses_no_acknowledged_heartbeat() {
    let data_dir = TempDir::new().unwrap();
    let (server, ids, tokens) = start_with_monitors(&data_dir).await;

    let load = start_load(&server, &tokens);
    load.run_for(Duration::from_millis(2500), 200).await;
    let status = server.sigkill().await;
    assert_eq!(status.signal(), Some(9), "killed by SIGKILL: {status:?}");
    let acknowledged = load.finish().await;
    eprintln!(
        "{} heartbeats acknowledged before SIGKILL",
        acknowledged.len()
    );
    assert!(
        acknowledged.len() >= 200,
        "too little load: {}",
        acknowledged.len()
    );

    let server = ServerProcess::start(data_dir.path(), &NO_RATE_LIMIT).await;
    assert_eq!(server.list_monitors().await.len(), MONITORS);
    assert_all_recorded(&server, &ids, &acknowledged).await;

    // And it goes on working after the crash.
    server
        .push_ok(&tokens[0], &[("msg", "after the crash")])
        .await;
    assert_eq!(
        server.get_monitor(&ids[0]).await.last_msg.as_deref(),
        Some("after the crash")
    );
    let (status, log) = server.sigterm().await;
    assert_eq!(status.code(), Some(0), "exit after SIGTERM; stderr:\n{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_drains_and_exits_0() {
    let data_dir = TempDir::new().unwrap();
    let (server, ids, tokens) = start_with_monitors(&data_dir).await;

    let load = start_load(&server, &tokens);
    load.run_for(Duration::from_millis(1500), 100).await;
    let (status, log) = server.sigterm().await;
    assert_eq!(status.code(), Some(0), "exit after SIGTERM; stderr:\n{log}");
    assert!(
        !log.contains(crate::support::ADMIN_TOKEN)
            && !tokens.iter().any(|token| log.contains(token)),
        "a token reached the log"
    );
    let acknowledged = load.finish().await;
    assert!(
        acknowledged.len() >= 100,
        "too little load: {}",
        acknowledged.len()
    );

    let server = ServerProcess::start(data_dir.path(), &NO_RATE_LIMIT).await;
    assert_all_recorded(&server, &ids, &acknowledged).await;
    let (status, log) = server.sigterm().await;
    assert_eq!(
        status.code(),
        Some(0),
        "idle exit after SIGTERM; stderr:\n{log}"
    );
}
