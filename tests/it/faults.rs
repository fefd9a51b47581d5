//! The fault-injection suite of the clustered mode (issue 21's "How it is checked"), on
//! one machine: three NATS servers (R3, `sync_interval: always`, `nats.rs`), three
//! `pushmon serve` pods, each reaching every server through its own TCP proxy
//! (`proxy.rs`, so one pod can be cut off from NATS without root), a load generator
//! pushing to random pods and logging every acknowledged heartbeat, and a webhook
//! receiver (`receiver.rs`) logging every delivery with its `X-Pushmon-Alert-Id`.
//!
//! Monitors come in two groups: "pushing", kept alive by the load throughout, and
//! "silenced", made afresh each round, pushed for a moment, then left silent just
//! before the fault with a short timeout, so that they go down during it.
//!
//! Each scenario injects one fault per round, then checks, as assertions: no
//! acknowledged heartbeat lost (each is in its monitor's history on every pod); the
//! shard logs' epochs strictly increase and no stale renewal or release landed; where
//! a zombie owner was made, at least one of its decisions is void in the log; exactly
//! one effective down per silenced monitor and none for the pushing ones (log, every
//! pod's history, the receiver); every duplicate delivery accounted for by a crash
//! (`attribute_duplicates`: at-least-once delivery, an alert delivered again only when
//! a pod sent it and crashed before recording its outcome, never once its outcome is
//! in the log); failover under 10 s; all pods' state identical at the end.
//!
//! Each test runs its scenario once. A scenario that fails is ignored with the bug
//! as its reason until it is fixed; run those with `--include-ignored`. `scripts/fault-cluster.sh` runs them for many rounds with `PUSHMON_FAULT_ROUNDS` (rounds per scenario),
//! `PUSHMON_FAULT_SECONDS` (a time budget per scenario: no round starts after it) and
//! `PUSHMON_FAULT_REPORT` (a file each round appends its summary row to).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pushmon::cluster::log::{JetStreamLog, JetStreamSettings};
use pushmon::cluster::shard::{ShardId, shard_of};
use pushmon::domain::fence::{Folded, ShardFold, ShardRecord, Void};
use pushmon::domain::ids::MonitorId;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep};

use crate::nats::Nats;
use crate::proxy::Proxy;
use crate::receiver::Receiver;
use crate::support::{Event, ServerProcess, Status};

const SHARDS: u16 = 4;
/// Streams the shards share (shard s is in stream s mod STREAMS), as in production's
/// fewer streams than shards.
const STREAMS: u16 = 2;
const LEASE: Duration = Duration::from_secs(2);
const PUSHING_MONITORS: usize = 8;
/// Long enough that the load keeps a pushing monitor up through any fault and the
/// checks between rounds (when the load pauses).
const PUSHING_TIMEOUT_SECONDS: u64 = 90;
const SILENCED_MONITORS: usize = 6;
/// Of which at least this many in the victim pod's shards.
const SILENCED_IN_VICTIM: usize = 3;
const SILENCED_TIMEOUT_SECONDS: u64 = 3;
/// The partition: silenced monitors in one of the victim's shards whose last pushes,
/// so deadlines, are a quarter lease apart, so that one falls due inside what is left
/// of the owner's lease after the cut (`Cluster::cut_off`).
const ZOMBIE_DEADLINES: usize = 4;
const ZOMBIE_SPACING: Duration = Duration::from_millis(LEASE.as_secs() * 1000 / 4);
/// The bound on failover.
const FAILOVER_LIMIT: Duration = Duration::from_secs(10);
/// Overrides the test hook that makes a pod abort after an alert's delivery and
/// before recording its outcome: `NAME=VALUE` handed to every pod (by default
/// `PUSHMON_FAULT_EXIT_AFTER_SEND=1`, docs/cluster.md).
const CRASH_HOOK: &str = "PUSHMON_FAULT_CRASH_HOOK";

static ONE_CLUSTER_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    /// SIGKILL of the pod owning the most shards, restarted once its shards moved.
    KillOwner,
    /// SIGSTOP of that pod for twice its lease, then SIGCONT: a zombie owner.
    PauseOwner,
    /// That pod cut off from every NATS server (its proxies hold every byte) for
    /// twice its lease, then healed: what it sent meanwhile arrives late.
    PartitionOwner,
    /// SIGKILL of the NATS server leading the most shard streams, restarted after.
    KillNatsLeader,
    /// SIGTERM of every pod in turn, each started again and ready before the next.
    RollingRestart,
    /// A pod aborts between sending an alert and recording it (the test hook).
    CrashAfterSend,
}

impl Fault {
    fn name(self) -> &'static str {
        match self {
            Fault::KillOwner => "sigkill-owner",
            Fault::PauseOwner => "sigstop-owner",
            Fault::PartitionOwner => "partition-owner",
            Fault::KillNatsLeader => "sigkill-nats-leader",
            Fault::RollingRestart => "rolling-restart",
            Fault::CrashAfterSend => "crash-after-send",
        }
    }

    fn has_victim_pod(self) -> bool {
        matches!(
            self,
            Fault::KillOwner | Fault::PauseOwner | Fault::PartitionOwner
        )
    }
}

// ---------------------------------------------------------------------------------
// The pods

struct Pod {
    name: String,
    dir: TempDir,
    /// One per NATS server, in the servers' order.
    proxies: Vec<Proxy>,
    process: Option<ServerProcess>,
}

impl Pod {
    fn args(&self) -> Vec<String> {
        let servers: Vec<String> = self.proxies.iter().map(Proxy::url).collect();
        [
            "--cluster-nats",
            &servers.join(","),
            "--pod-name",
            &self.name,
            "--cluster-shards",
            &SHARDS.to_string(),
            "--cluster-streams",
            &STREAMS.to_string(),
            "--cluster-replicas",
            "3",
            "--cluster-lease",
            &LEASE.as_secs().to_string(),
            "--history-max-heartbeats",
            "0",
        ]
        .iter()
        .map(|arg| (*arg).to_owned())
        .collect()
    }

    async fn start(&mut self, env: &[(String, String)]) {
        let args = self.args();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = env
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        self.process = Some(ServerProcess::start_with_env(self.dir.path(), &args, &env).await);
    }

    fn process(&self) -> &ServerProcess {
        self.process.as_ref().expect("the pod runs")
    }
}

/// A metric's value in `/metrics` text (`None` when absent).
fn metric(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// The epochs a pod reports holding, by shard (`pushmon_cluster_shard_epoch` > 0);
/// empty when it does not answer.
async fn epochs_held(process: &ServerProcess) -> BTreeMap<ShardId, u64> {
    let Ok(Ok(response)) = tokio::time::timeout(
        Duration::from_secs(1),
        process.client.get(process.url("/metrics")).send(),
    )
    .await
    else {
        return BTreeMap::new();
    };
    let Ok(text) = response.text().await else {
        return BTreeMap::new();
    };
    ShardId::all(SHARDS)
        .filter_map(|shard| {
            let series = format!("pushmon_cluster_shard_epoch{{shard=\"{shard}\"}}");
            let epoch = metric(&text, &series)?;
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            (epoch > 0.0).then_some((shard, epoch as u64))
        })
        .collect()
}

/// Whether a pod's `/readyz` answers 200 (within a second).
async fn ready(process: &ServerProcess) -> bool {
    tokio::time::timeout(
        Duration::from_secs(1),
        process.client.get(process.url("/readyz")).send(),
    )
    .await
    .is_ok_and(|answer| answer.is_ok_and(|answer| answer.status() == StatusCode::OK))
}

// ---------------------------------------------------------------------------------
// The load generator

#[derive(Clone, Debug)]
struct Target {
    id: String,
    token: String,
}

#[derive(Clone, Debug)]
struct Acked {
    monitor: String,
    msg: String,
    at: Instant,
    /// The pod that acknowledged it.
    pod: usize,
}

#[derive(Default)]
struct LoadShared {
    /// Each pod's base URL while it runs.
    urls: Mutex<Vec<Option<String>>>,
    targets: Mutex<Vec<Target>>,
    acked: Mutex<Vec<Acked>>,
    refused: AtomicU64,
    /// The next target to push, counting round the list.
    next: AtomicUsize,
    running: AtomicBool,
    in_flight: AtomicUsize,
}

struct Load {
    shared: Arc<LoadShared>,
    workers: Vec<JoinHandle<()>>,
}

impl Load {
    fn start(workers: usize) -> Load {
        let shared = Arc::new(LoadShared::default());
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(3))
            .build()
            .unwrap();
        // Between two pushes of a worker: 40 ms in the normal suite, which shares the
        // two cores with the other tests; the script sets 15.
        let pace = Duration::from_millis(
            std::env::var("PUSHMON_FAULT_PACE_MS")
                .ok()
                .and_then(|pace| pace.parse().ok())
                .unwrap_or(40),
        );
        let workers = (0..workers)
            .map(|worker| {
                let shared = Arc::clone(&shared);
                let client = client.clone();
                tokio::spawn(async move {
                    let mut count = 0u64;
                    loop {
                        if !shared.running.load(Ordering::SeqCst) {
                            sleep(Duration::from_millis(20)).await;
                            continue;
                        }
                        shared.in_flight.fetch_add(1, Ordering::SeqCst);
                        let chosen = {
                            let targets = shared.targets.lock().unwrap();
                            let urls = shared.urls.lock().unwrap();
                            let live: Vec<(usize, String)> = urls
                                .iter()
                                .enumerate()
                                .filter_map(|(pod, url)| Some((pod, url.clone()?)))
                                .collect();
                            if targets.is_empty() || live.is_empty() {
                                None
                            } else {
                                // Targets in turn, so that each is pushed once per
                                // turn of the list (a random pick left one of 34 a
                                // 3 s gap now and then: down before its silence).
                                let next = shared.next.fetch_add(1, Ordering::SeqCst);
                                Some((
                                    targets[next % targets.len()].clone(),
                                    live[rand::random_range(0..live.len())].clone(),
                                ))
                            }
                        };
                        if let Some((target, (pod, url))) = chosen {
                            count += 1;
                            let msg = format!("w{worker}-{count}");
                            let answer = client
                                .post(format!("{url}/api/push/{}", target.token))
                                .query(&[("msg", msg.as_str())])
                                .send()
                                .await;
                            match answer {
                                Ok(answer) if answer.status() == StatusCode::OK => {
                                    shared.acked.lock().unwrap().push(Acked {
                                        monitor: target.id,
                                        msg,
                                        at: Instant::now(),
                                        pod,
                                    });
                                }
                                _ => {
                                    shared.refused.fetch_add(1, Ordering::SeqCst);
                                }
                            }
                        }
                        shared.in_flight.fetch_sub(1, Ordering::SeqCst);
                        sleep(pace).await;
                    }
                })
            })
            .collect();
        Load { shared, workers }
    }

    fn set_url(&self, pod: usize, url: Option<String>) {
        let mut urls = self.shared.urls.lock().unwrap();
        if urls.len() <= pod {
            urls.resize(pod + 1, None);
        }
        urls[pod] = url;
    }

    fn resume(&self) {
        self.shared.running.store(true, Ordering::SeqCst);
    }

    /// Until no push is in flight.
    async fn drain(&self) {
        let start = Instant::now();
        while self.shared.in_flight.load(Ordering::SeqCst) > 0 {
            assert!(start.elapsed() < Duration::from_secs(10), "pushes hang");
            sleep(Duration::from_millis(10)).await;
        }
    }

    async fn pause(&self) {
        self.shared.running.store(false, Ordering::SeqCst);
        self.drain().await;
    }

    fn add(&self, targets: &[Target]) {
        self.shared
            .targets
            .lock()
            .unwrap()
            .extend_from_slice(targets);
    }

    /// Stops pushing `targets`; returns once no push to them is in flight.
    async fn silence(&self, targets: &[Target]) {
        let ids: BTreeSet<&str> = targets.iter().map(|target| target.id.as_str()).collect();
        self.shared
            .targets
            .lock()
            .unwrap()
            .retain(|target| !ids.contains(target.id.as_str()));
        self.drain().await;
    }

    /// Pushes each of `targets` once, at once, through live pods (logged as acked
    /// when answered 200): their deadlines then fall together.
    async fn push_each_once(&self, targets: &[Target]) {
        let urls: Vec<(usize, String)> = self
            .shared
            .urls
            .lock()
            .unwrap()
            .iter()
            .enumerate()
            .filter_map(|(pod, url)| Some((pod, url.clone()?)))
            .collect();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(3))
            .build()
            .unwrap();
        let pushes = targets.iter().enumerate().map(|(index, target)| {
            let (pod, url) = urls[index % urls.len()].clone();
            let client = client.clone();
            let shared = Arc::clone(&self.shared);
            async move {
                let msg = format!("last-{index}");
                let answer = client
                    .post(format!("{url}/api/push/{}", target.token))
                    .query(&[("msg", msg.as_str())])
                    .send()
                    .await;
                if answer.is_ok_and(|answer| answer.status() == StatusCode::OK) {
                    shared.acked.lock().unwrap().push(Acked {
                        monitor: target.id.clone(),
                        msg,
                        at: Instant::now(),
                        pod,
                    });
                }
            }
        });
        futures::future::join_all(pushes).await;
    }

    fn acked(&self) -> Vec<Acked> {
        self.shared.acked.lock().unwrap().clone()
    }

    fn refused(&self) -> u64 {
        self.shared.refused.load(Ordering::SeqCst)
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        for worker in &self.workers {
            worker.abort();
        }
    }
}

// ---------------------------------------------------------------------------------
// The cluster under test

/// A pod that crashed in a round: `pod` (its name, as in its takeover records), dead
/// by `by_millis` (Unix milliseconds: the SIGKILL, or when it was found dead), and the
/// alert whose delivery set off the crash hook (the hook's line in its stderr).
#[derive(Clone, Debug)]
struct Crash {
    pod: String,
    by_millis: i64,
    hook_alert: Option<String>,
}

/// One down alert the receiver got: its id (`X-Pushmon-Alert-Id`) and arrival.
#[derive(Clone, Debug)]
struct Copy {
    id: String,
    at_millis: i64,
}

/// The wall clock in Unix milliseconds, as the pods stamp their records.
fn now_millis() -> i64 {
    pushmon::clock::Clock::system().now().as_millis()
}

struct Cluster {
    nats: Nats,
    pods: Vec<Pod>,
    /// Reads the shard logs back, straight from the servers.
    reader: JetStreamLog,
    receiver: Receiver,
    channel: String,
    load: Load,
    pushing: Vec<Target>,
    /// Handed to every pod (the crash hook).
    env: Vec<(String, String)>,
}

/// What one round found: a row of the summary table, and the failed checks.
#[derive(Default, Debug)]
struct Round {
    acked: usize,
    refused: u64,
    lost: usize,
    /// Fault to the new owner deciding (`Cluster::until_taken_over`; for a NATS
    /// server, to appends resuming in every shard), per event.
    failover: Vec<Duration>,
    takeovers: usize,
    voided_stale: usize,
    voided_other: usize,
    silenced: usize,
    effective_downs: usize,
    deliveries: usize,
    duplicates: usize,
    /// Down deliveries the receiver got whose outcome never reached the log: those in
    /// flight when their sender crashed.
    in_flight: usize,
    crashes: usize,
    /// The pods that crashed this round (SIGKILL or the crash hook).
    crashed: Vec<Crash>,
    identical: bool,
    /// Monitors whose history is stored in a different order on some pod.
    reordered: usize,
    /// Which pod the fault hit, for the failures' context.
    note: String,
    failures: Vec<String>,
}

impl Cluster {
    async fn start(env: Vec<(String, String)>) -> Cluster {
        let nats = Nats::cluster().await;
        let upstreams: Vec<SocketAddr> = nats
            .urls()
            .iter()
            .map(|url| url.trim_start_matches("nats://").parse().unwrap())
            .collect();
        let reader = JetStreamLog::connect(JetStreamSettings {
            servers: nats.urls(),
            pod: "fault-reader".to_owned(),
            shards: SHARDS,
            streams: STREAMS,
            replicas: 3,
            ack_timeout: Duration::from_secs(5),
        })
        .await
        .unwrap();
        let load = Load::start(2);
        let mut pods = Vec::new();
        for index in 0..3 {
            let mut proxies = Vec::new();
            for upstream in &upstreams {
                proxies.push(Proxy::start(*upstream).await);
            }
            let mut pod = Pod {
                name: format!("pod-{index}"),
                dir: tempfile::tempdir().unwrap(),
                proxies,
                process: None,
            };
            pod.start(&env).await;
            load.set_url(index, Some(pod.process().base_url.clone()));
            pods.push(pod);
        }
        let receiver = Receiver::start().await;
        let channel = pods[0]
            .process()
            .api(Method::POST, "/api/channels")
            .json(&json!({"kind": "webhook", "name": "faults", "url": receiver.url("/hook")}))
            .send()
            .await
            .unwrap();
        let channel = crate::support::expect_json(channel, StatusCode::CREATED).await;
        let channel = channel["id"].as_str().unwrap().to_owned();
        let mut cluster = Cluster {
            nats,
            pods,
            reader,
            receiver,
            channel,
            load,
            pushing: Vec::new(),
            env,
        };
        cluster.until_every_shard_owned().await;
        // Pushing monitors in every shard, at least PUSHING_MONITORS of them.
        let mut covered = BTreeSet::new();
        while cluster.pushing.len() < PUSHING_MONITORS || covered.len() < usize::from(SHARDS) {
            let target = cluster.create("pushing", PUSHING_TIMEOUT_SECONDS).await;
            covered.insert(shard(&target.id));
            cluster.pushing.push(target);
        }
        cluster.until_on_every_pod(&cluster.pushing.clone()).await;
        cluster.load.add(&cluster.pushing);
        cluster
    }

    fn live(&self) -> impl Iterator<Item = (usize, &ServerProcess)> {
        self.pods
            .iter()
            .enumerate()
            .filter_map(|(index, pod)| Some((index, pod.process.as_ref()?)))
    }

    async fn create(&self, group: &str, timeout_seconds: u64) -> Target {
        let (_, process) = self.live().next().expect("a pod runs");
        let monitor = process
            .create_monitor_from(&json!({
                "name": group,
                "timeout_seconds": timeout_seconds,
                "channels": [self.channel],
            }))
            .await;
        Target {
            id: monitor.id,
            token: monitor.push_token,
        }
    }

    async fn until_on_every_pod(&self, targets: &[Target]) {
        let start = Instant::now();
        for (_, process) in self.live() {
            for target in targets {
                while process
                    .api(Method::GET, &format!("/api/monitors/{}", target.id))
                    .send()
                    .await
                    .unwrap()
                    .status()
                    != StatusCode::OK
                {
                    assert!(
                        start.elapsed() < Duration::from_secs(15),
                        "monitor {} not on every pod",
                        target.id
                    );
                    sleep(Duration::from_millis(20)).await;
                }
            }
        }
    }

    /// Every live pod's held epochs.
    async fn holdings(&self) -> Vec<(usize, BTreeMap<ShardId, u64>)> {
        self.holdings_except(None).await
    }

    /// Every live pod's held epochs but `except`'s (a stopped pod would hold up the
    /// poll), asked at once.
    async fn holdings_except(&self, except: Option<usize>) -> Vec<(usize, BTreeMap<ShardId, u64>)> {
        let asked = self
            .live()
            .filter(|(index, _)| Some(*index) != except)
            .map(|(index, process)| async move { (index, epochs_held(process).await) });
        futures::future::join_all(asked).await
    }

    async fn until_every_shard_owned(&self) {
        let start = Instant::now();
        loop {
            let owned: BTreeSet<ShardId> = self
                .holdings()
                .await
                .into_iter()
                .flat_map(|(_, held)| held.into_keys())
                .collect();
            if owned.len() == usize::from(SHARDS) {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "shards not all owned: {owned:?}"
            );
            sleep(Duration::from_millis(100)).await;
        }
    }

    /// The pod holding the most shards, with its epochs.
    async fn busiest_owner(&self) -> (usize, BTreeMap<ShardId, u64>) {
        self.holdings()
            .await
            .into_iter()
            .max_by_key(|(_, held)| held.len())
            .expect("a pod runs")
    }

    /// Until every shard in `epochs` is held by a pod other than `victim` under a
    /// later epoch, and each such pod decides for it: its `/readyz` answers 200, which
    /// it does only once it has folded every shard it owns up to its takeover
    /// (before, it judges and sends nothing for the shard). How long that took from
    /// `since`, or `None` after `limit`.
    async fn until_taken_over(
        &self,
        victim: usize,
        epochs: &BTreeMap<ShardId, u64>,
        since: Instant,
        limit: Duration,
    ) -> Option<Duration> {
        loop {
            let holdings = self.holdings_except(Some(victim)).await;
            let holders: Option<BTreeSet<usize>> = epochs
                .iter()
                .map(|(shard, old)| {
                    holdings.iter().find_map(|(index, held)| {
                        (*index != victim && held.get(shard).is_some_and(|epoch| epoch > old))
                            .then_some(*index)
                    })
                })
                .collect();
            let deciding = match holders {
                Some(holders) => {
                    let asked = holders
                        .iter()
                        .map(|index| ready(self.pods[*index].process()));
                    futures::future::join_all(asked)
                        .await
                        .into_iter()
                        .all(|ready| ready)
                }
                None => false,
            };
            if deciding {
                return Some(since.elapsed());
            }
            if since.elapsed() > limit {
                return None;
            }
            sleep(Duration::from_millis(50)).await;
        }
    }

    async fn restart_pod(&mut self, index: usize) {
        let env = self.env.clone();
        self.pods[index].start(&env).await;
        let url = self.pods[index].process().base_url.clone();
        self.load.set_url(index, Some(url));
    }

    /// Each shard's last sequence now.
    async fn log_positions(&self) -> BTreeMap<ShardId, u64> {
        let mut positions = BTreeMap::new();
        for shard in ShardId::all(SHARDS) {
            let records = self.read_shard(shard).await;
            positions.insert(shard, records.last().map_or(0, |stored| stored.sequence));
        }
        positions
    }

    async fn read_shard(&self, shard: ShardId) -> Vec<pushmon::cluster::log::Stored> {
        let start = Instant::now();
        loop {
            match self.reader.read(shard, 1, usize::MAX).await {
                Ok(records) => return records,
                Err(error) => {
                    assert!(
                        start.elapsed() < Duration::from_secs(20),
                        "shard {shard} unreadable: {error}"
                    );
                    sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }

    /// The partition's cut, placed so that the cut-off owner makes a decision: waits
    /// for a renewal of `shard` to land, gives its acknowledgement a moment to reach
    /// the owner, then cuts the owner off from every NATS server if one of
    /// `deadlines` (each `(earliest, latest)`) falls due after the cut and before the
    /// owner stops deciding; else waits for the next renewal. An owner decides while
    /// its last acknowledged renewal was sent less than half a lease ago, and renews
    /// every third of a lease (`cluster/ownership.rs`): after a renewal, what is left
    /// of that half lease is the owner's window as a zombie. The spread deadlines
    /// (`ZOMBIE_SPACING` apart) are closer than that window is wide, so one of the
    /// renewals seen has a deadline inside it. Returns the pod cut off, its epochs,
    /// the time of the cut and a note; `Err` when no renewal fitted.
    async fn cut_off(
        &self,
        shard: ShardId,
        deadlines: &[(Instant, Instant)],
    ) -> Result<(usize, BTreeMap<ShardId, u64>, Instant, String), String> {
        let deciding_for = LEASE / 2;
        // For the renewal's acknowledgement to reach the owner before the cut.
        let ack_wait = LEASE / 20;
        // At each end of the window: the deadline falls after the cut (its decision
        // is held by the cut), and the owner's timer fires before its window closes
        // (this also covers the renewal's way to the log and the poll).
        let margin = LEASE / 10;
        let Some(last_early) = deadlines.iter().map(|(early, _)| *early).max() else {
            return Err("no spread deadline to place the cut before".to_owned());
        };
        let first_early = deadlines[0].0;
        let offset = |at: Instant| -> i128 {
            if at >= first_early {
                i128::try_from((at - first_early).as_millis()).unwrap_or(i128::MAX)
            } else {
                -i128::try_from((first_early - at).as_millis()).unwrap_or(i128::MAX)
            }
        };
        let holdings = self.holdings().await;
        let mut seen = self
            .reader
            .last_ownership(shard)
            .await
            .ok()
            .flatten()
            .map(|stored| stored.sequence);
        // Each renewal or other ownership record seen, in ms from the first deadline.
        let mut looked = Vec::new();
        loop {
            if Instant::now() + ack_wait + margin > last_early {
                return Err(format!(
                    "no renewal of shard {shard} let the cut fall before a spread deadline inside the owner's lease: ownership records seen at {looked:?} ms from the first deadline, deadlines (earliest, latest) at {:?} ms",
                    deadlines
                        .iter()
                        .map(|(early, late)| (offset(*early), offset(*late)))
                        .collect::<Vec<_>>()
                ));
            }
            sleep(Duration::from_millis(10)).await;
            let Ok(Some(last)) = self.reader.last_ownership(shard).await else {
                continue;
            };
            if Some(last.sequence) == seen {
                continue;
            }
            let observed = Instant::now();
            seen = Some(last.sequence);
            let ShardRecord::Renewal { pod, epoch } = &last.record else {
                looked.push(format!("{} (not a renewal)", offset(observed)));
                continue;
            };
            let Some(index) = self
                .pods
                .iter()
                .position(|candidate| candidate.name == *pod)
            else {
                continue;
            };
            let cut = observed + ack_wait;
            let closes = observed + deciding_for - margin;
            let Some(inside) = deadlines
                .iter()
                .position(|(early, late)| *early >= cut + margin && *late <= closes)
            else {
                looked.push(offset(observed).to_string());
                continue;
            };
            tokio::time::sleep_until(cut).await;
            if Instant::now() + margin > deadlines[inside].0 {
                // Cut too late (a loaded machine): the deadline may be decided first.
                looked.push(format!("{} (late)", offset(observed)));
                continue;
            }
            for proxy in &self.pods[index].proxies {
                proxy.cut();
            }
            let cut = Instant::now();
            let mut epochs = holdings
                .iter()
                .find(|(held_by, _)| *held_by == index)
                .map(|(_, held)| held.clone())
                .unwrap_or_default();
            epochs.insert(shard, *epoch);
            let (early, late) = deadlines[inside];
            let note = format!(
                "cut {} ms after the renewal of shard {shard} (epoch {epoch}) was seen, {} to {} ms before spread deadline {inside} (the owner decides until about {} ms after the cut); earlier ownership records at {looked:?} ms from the first deadline",
                (cut - observed).as_millis(),
                (early - cut).as_millis(),
                (late - cut).as_millis(),
                (observed + deciding_for)
                    .saturating_duration_since(cut)
                    .as_millis(),
            );
            return Ok((index, epochs, cut, note));
        }
    }

    /// One round of `fault`.
    #[allow(clippy::too_many_lines)]
    async fn round(&mut self, fault: Fault) -> Round {
        let mut round = Round::default();
        let positions = self.log_positions().await;
        let acked_before = self.load.acked().len();
        let refused_before = self.load.refused();
        let delivered_before = self.receiver.delivered().len();
        self.load.resume();

        // The victim and the silenced monitors, some in its shards; for the partition,
        // ZOMBIE_DEADLINES of them in one of its shards (the cut shard).
        let (mut victim, mut victim_epochs) = self.busiest_owner().await;
        round.note = format!("victim pod-{victim} holding {victim_epochs:?}");
        let cut_shard = victim_epochs.keys().next().copied();
        let mut silenced = Vec::new();
        let mut spread = Vec::new();
        let mut in_victim = 0;
        while silenced.len() < SILENCED_MONITORS
            || (fault.has_victim_pod() && in_victim < SILENCED_IN_VICTIM)
            || (fault == Fault::PartitionOwner && spread.len() < ZOMBIE_DEADLINES)
        {
            let target = self.create("silenced", SILENCED_TIMEOUT_SECONDS).await;
            if victim_epochs.contains_key(&shard(&target.id)) {
                in_victim += 1;
            }
            if fault == Fault::PartitionOwner
                && Some(shard(&target.id)) == cut_shard
                && spread.len() < ZOMBIE_DEADLINES
            {
                spread.push(target.clone());
            }
            silenced.push(target);
        }
        round.silenced = silenced.len();
        self.until_on_every_pod(&silenced).await;
        self.load.add(&silenced);
        // Until each has acknowledged pushes (so it is up), then a moment more.
        let start = Instant::now();
        loop {
            let acked = self.load.acked();
            let pushed: BTreeSet<&str> = acked[acked_before..]
                .iter()
                .map(|acked| acked.monitor.as_str())
                .collect();
            if silenced
                .iter()
                .all(|target| pushed.contains(target.id.as_str()))
            {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "silenced monitors never acknowledged"
            );
            sleep(Duration::from_millis(50)).await;
        }
        sleep(Duration::from_millis(500)).await;
        self.load.silence(&silenced).await;
        let timeout = Duration::from_secs(SILENCED_TIMEOUT_SECONDS);
        // Each spread monitor's deadline, as (earliest, latest): its last push's
        // timeout after the push was sent, and after it was answered.
        let mut deadlines = Vec::new();
        let first_push = Instant::now();
        let together: Vec<Target> = silenced
            .iter()
            .filter(|target| !spread.iter().skip(1).any(|other| other.id == target.id))
            .cloned()
            .collect();
        self.load.push_each_once(&together).await;
        let silenced_at = Instant::now();
        if !spread.is_empty() {
            deadlines.push((first_push + timeout, silenced_at + timeout));
        }
        // The partition's spread monitors: their last pushes (so deadlines) a quarter
        // lease apart.
        for (index, target) in spread.iter().enumerate().skip(1) {
            let at = first_push + ZOMBIE_SPACING * u32::try_from(index).unwrap();
            tokio::time::sleep_until(at).await;
            let sent = Instant::now();
            self.load.push_each_once(std::slice::from_ref(target)).await;
            deadlines.push((sent + timeout, Instant::now() + timeout));
        }
        // The fault lands before the silenced monitors' deadlines, so they fall due
        // during it: a second after the silence; for a pause, just before the first
        // deadlines, so that the owner may decide some while stopped; for the
        // partition, right after a renewal of the cut shard, and with one of the
        // spread deadlines inside what is left of the owner's lease (`cut_off`).
        match fault {
            Fault::PartitionOwner => {}
            Fault::PauseOwner => {
                tokio::time::sleep_until(silenced_at + timeout - Duration::from_millis(150)).await;
            }
            _ => tokio::time::sleep_until(silenced_at + Duration::from_secs(1)).await,
        }

        match fault {
            Fault::KillOwner => {
                // A SIGKILL is a crash: it may land between an alert's delivery and
                // the record of its outcome (`attribute_duplicates`).
                self.load.set_url(victim, None);
                let process = self.pods[victim].process.take().unwrap();
                let killed = Instant::now();
                round.crashed.push(Crash {
                    pod: self.pods[victim].name.clone(),
                    by_millis: now_millis(),
                    hook_alert: None,
                });
                process.sigkill().await;
                match self
                    .until_taken_over(victim, &victim_epochs, killed, FAILOVER_LIMIT * 2)
                    .await
                {
                    Some(took) => round.failover.push(took),
                    None => round.failures.push(format!(
                        "shards {victim_epochs:?} of the killed pod-{victim} not taken over"
                    )),
                }
                // Back once the silenced monitors are due.
                let due = silenced_at + Duration::from_secs(SILENCED_TIMEOUT_SECONDS + 2);
                tokio::time::sleep_until(due).await;
                self.restart_pod(victim).await;
            }
            Fault::PauseOwner => {
                let process = self.pods[victim].process();
                process.signal("STOP");
                let stopped = Instant::now();
                let took = self
                    .until_taken_over(victim, &victim_epochs, stopped, LEASE * 2)
                    .await;
                tokio::time::sleep_until(stopped + LEASE * 2).await;
                self.pods[victim].process().signal("CONT");
                match took {
                    Some(took) => round.failover.push(took),
                    None => round.failures.push(format!(
                        "shards {victim_epochs:?} of the stopped pod-{victim} not taken over within twice the lease"
                    )),
                }
            }
            Fault::PartitionOwner => {
                let cut = match self
                    .cut_off(cut_shard.expect("the victim owns a shard"), &deadlines)
                    .await
                {
                    Ok((cut_off, epochs, cut, note)) => {
                        victim = cut_off;
                        victim_epochs = epochs;
                        round.note =
                            format!("victim pod-{victim} holding {victim_epochs:?}; {note}");
                        cut
                    }
                    Err(failure) => {
                        // The round goes on, cut at once, to check the rest.
                        round.failures.push(failure);
                        for proxy in &self.pods[victim].proxies {
                            proxy.cut();
                        }
                        Instant::now()
                    }
                };
                let took = self
                    .until_taken_over(victim, &victim_epochs, cut, FAILOVER_LIMIT)
                    .await;
                tokio::time::sleep_until(cut + LEASE * 2).await;
                for proxy in &self.pods[victim].proxies {
                    proxy.heal();
                }
                match took {
                    Some(took) => round.failover.push(took),
                    None => round.failures.push(format!(
                        "shards {victim_epochs:?} of the cut-off pod-{victim} not taken over"
                    )),
                }
            }
            Fault::KillNatsLeader => {
                let mut led: BTreeMap<String, usize> = BTreeMap::new();
                for shard in ShardId::all(SHARDS) {
                    if let Ok(Some(leader)) = self.reader.stream_leader(shard).await {
                        *led.entry(leader).or_default() += 1;
                    }
                }
                let (server, _) = led
                    .iter()
                    .max_by_key(|(_, count)| **count)
                    .expect("streams have leaders");
                let server = server.clone();
                let acked_at_kill = self.load.acked().len();
                self.nats.kill(&server).await;
                let killed = Instant::now();
                // Appends resume: a push acknowledged in every shard after the kill.
                let resumed = loop {
                    let acked = self.load.acked();
                    let shards: BTreeSet<ShardId> = acked[acked_at_kill..]
                        .iter()
                        .map(|acked| shard(&acked.monitor))
                        .collect();
                    if shards.len() == usize::from(SHARDS) {
                        break Some(killed.elapsed());
                    }
                    if killed.elapsed() > FAILOVER_LIMIT * 2 {
                        break None;
                    }
                    sleep(Duration::from_millis(50)).await;
                };
                match resumed {
                    Some(took) => round.failover.push(took),
                    None => round.failures.push(format!(
                        "appends did not resume in every shard after NATS server {server} was killed"
                    )),
                }
                let due = silenced_at + Duration::from_secs(SILENCED_TIMEOUT_SECONDS + 2);
                tokio::time::sleep_until(due).await;
                self.nats.restart(&server).await;
            }
            Fault::RollingRestart => {
                for index in 0..self.pods.len() {
                    let held = epochs_held(self.pods[index].process()).await;
                    self.load.set_url(index, None);
                    let process = self.pods[index].process.take().unwrap();
                    let stopped = Instant::now();
                    let (status, log) = process.sigterm().await;
                    if status.code() != Some(0) {
                        round
                            .failures
                            .push(format!("pod-{index} exited {status:?} on SIGTERM:\n{log}"));
                    }
                    if !held.is_empty() {
                        match self
                            .until_taken_over(index, &held, stopped, FAILOVER_LIMIT)
                            .await
                        {
                            Some(took) => round.failover.push(took),
                            None => round.failures.push(format!(
                                "shards {held:?} released by pod-{index} not taken over"
                            )),
                        }
                    }
                    self.restart_pod(index).await;
                }
            }
            Fault::CrashAfterSend => {
                // The hook aborts a pod after a delivery; every pod that died is
                // counted as an injected crash and started again.
                let due = silenced_at + Duration::from_secs(SILENCED_TIMEOUT_SECONDS + 3);
                tokio::time::sleep_until(due).await;
                // Started again without the hook: one crash per pod and round.
                let hook = std::mem::take(&mut self.env);
                for index in 0..self.pods.len() {
                    let alive = match &self.pods[index].process {
                        Some(process) => tokio::time::timeout(
                            Duration::from_secs(2),
                            process.client.get(process.url("/healthz")).send(),
                        )
                        .await
                        .is_ok_and(|answer| answer.is_ok()),
                        None => false,
                    };
                    if !alive {
                        let by_millis = now_millis();
                        self.load.set_url(index, None);
                        let mut hook_alert = None;
                        if let Some(process) = self.pods[index].process.take() {
                            hook_alert = process
                                .log()
                                .lines()
                                .find_map(|line| {
                                    line.split("aborting after delivering alert ").nth(1)
                                })
                                .and_then(|rest| rest.split_whitespace().next())
                                .map(str::to_owned);
                            process.sigkill().await;
                        }
                        let crash = Crash {
                            pod: self.pods[index].name.clone(),
                            by_millis,
                            hook_alert,
                        };
                        round.note.push_str(&format!(
                            "; {} dead by {by_millis} ms, the hook set off by alert {}",
                            crash.pod,
                            crash.hook_alert.as_deref().unwrap_or("(no hook line)")
                        ));
                        round.crashed.push(crash);
                        self.restart_pod(index).await;
                    }
                }
                self.env = hook;
            }
        }

        // Every silenced monitor goes down on every pod, and its alert arrives.
        let start = Instant::now();
        'down: for (_, process) in self.live() {
            for target in &silenced {
                while process.get_monitor(&target.id).await.status != Status::Down {
                    if start.elapsed() > Duration::from_secs(30) {
                        round.failures.push(format!(
                            "silenced monitor {} not down on {} within 30 s",
                            target.id, process.base_url
                        ));
                        break 'down;
                    }
                    sleep(Duration::from_millis(50)).await;
                }
            }
        }
        let downs_delivered = |receiver: &Receiver| -> BTreeMap<String, Vec<Copy>> {
            let mut downs: BTreeMap<String, Vec<Copy>> = BTreeMap::new();
            for received in &receiver.delivered()[delivered_before..] {
                let alert = received.json();
                if alert["event"] == "down" {
                    let id = received
                        .headers
                        .get("x-pushmon-alert-id")
                        .and_then(|id| id.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    downs
                        .entry(
                            alert["monitor"]["id"]
                                .as_str()
                                .unwrap_or_default()
                                .to_owned(),
                        )
                        .or_default()
                        .push(Copy {
                            id,
                            at_millis: received.at_millis,
                        });
                }
            }
            downs
        };
        let start = Instant::now();
        while !silenced
            .iter()
            .all(|target| downs_delivered(&self.receiver).contains_key(&target.id))
            && start.elapsed() < Duration::from_secs(15)
        {
            sleep(Duration::from_millis(50)).await;
        }
        // Until every down alert delivered has its outcome in the log: a copy sent by
        // a pod that crashed before recording it is sent again by the next owner once
        // it decides for the shard, which may be after the first copy arrived.
        let start = Instant::now();
        loop {
            let mut recorded = BTreeSet::new();
            for shard in ShardId::all(SHARDS) {
                for stored in self.read_shard(shard).await {
                    if let ShardRecord::Delivered { alert, .. }
                    | ShardRecord::DeliveredAt { alert, .. } = stored.record
                    {
                        recorded.insert(alert);
                    }
                }
            }
            let downs = downs_delivered(&self.receiver);
            let unrecorded: Vec<&str> = silenced
                .iter()
                .filter_map(|target| downs.get(&target.id))
                .flatten()
                .map(|copy| copy.id.as_str())
                .filter(|alert| !recorded.contains(*alert))
                .collect();
            if unrecorded.is_empty() {
                break;
            }
            if start.elapsed() > Duration::from_secs(20) {
                round.failures.push(format!(
                    "down alerts delivered whose outcome is not in the log after 20 s (sent, the sender crashed, and no owner sent them again): {unrecorded:?}"
                ));
                break;
            }
            sleep(Duration::from_millis(250)).await;
        }
        // A moment for a late duplicate to show.
        sleep(Duration::from_secs(1)).await;
        self.load.pause().await;

        self.check(
            fault,
            &mut round,
            &silenced,
            &positions,
            &downs_delivered(&self.receiver),
        )
        .await;
        round.acked = self.load.acked().len() - acked_before;
        round.refused = self.load.refused() - refused_before;
        round
    }

    /// The checks after a round (the load paused).
    #[allow(clippy::too_many_lines)]
    async fn check(
        &self,
        fault: Fault,
        round: &mut Round,
        silenced: &[Target],
        positions: &BTreeMap<ShardId, u64>,
        downs: &BTreeMap<String, Vec<Copy>>,
    ) {
        // All pods' state identical: the monitors, then every monitor's history.
        let start = Instant::now();
        let mut states;
        loop {
            states = Vec::new();
            for (index, process) in self.live() {
                states.push((index, monitors_without_urls(process).await));
            }
            if states.windows(2).all(|pair| pair[0].1 == pair[1].1) {
                break;
            }
            if start.elapsed() > Duration::from_secs(20) {
                round.failures.push(format!(
                    "pods' monitors differ after 20 s: {}",
                    describe_difference(&states)
                ));
                break;
            }
            sleep(Duration::from_millis(200)).await;
        }
        let ids: Vec<String> = states[0]
            .1
            .iter()
            .filter_map(|monitor| Some(monitor["id"].as_str()?.to_owned()))
            .collect();
        let mut histories: BTreeMap<String, Vec<Vec<Event>>> = BTreeMap::new();
        let start = Instant::now();
        for id in &ids {
            loop {
                let mut of_pods = Vec::new();
                let mut as_stored = Vec::new();
                for (_, process) in self.live() {
                    let history = comparable(process.history(id).await);
                    as_stored.push(history.clone());
                    of_pods.push(by_time(history));
                }
                if of_pods.windows(2).all(|pair| pair[0] == pair[1])
                    || start.elapsed() > Duration::from_secs(10)
                {
                    if !as_stored.windows(2).all(|pair| pair[0] == pair[1]) {
                        round.reordered += 1;
                    }
                    histories.insert(id.clone(), of_pods);
                    break;
                }
                sleep(Duration::from_millis(200)).await;
            }
        }
        let differing: Vec<String> = histories
            .iter()
            .filter(|(_, of_pods)| !of_pods.windows(2).all(|pair| pair[0] == pair[1]))
            .map(|(id, of_pods)| {
                format!(
                    "{id}: {}",
                    of_pods
                        .iter()
                        .map(|history| format!("{} events", history.len()))
                        .collect::<Vec<_>>()
                        .join(" / ")
                )
            })
            .collect();
        round.identical =
            differing.is_empty() && states.windows(2).all(|pair| pair[0].1 == pair[1].1);
        if !differing.is_empty() {
            let duplicates: Vec<String> = histories
                .iter()
                .flat_map(|(id, of_pods)| {
                    of_pods
                        .iter()
                        .enumerate()
                        .filter_map(move |(pod, history)| {
                            let mut seen = BTreeSet::new();
                            let repeated = history
                                .iter()
                                .filter(|event| event.kind == "heartbeat")
                                .filter(|event| !seen.insert(event.msg.clone()))
                                .count();
                            (repeated > 0)
                                .then(|| format!("{id} on pod {pod}: {repeated} repeated"))
                        })
                })
                .collect();
            let example = histories
                .iter()
                .find(|(_, of_pods)| !of_pods.windows(2).all(|pair| pair[0] == pair[1]))
                .map(|(id, of_pods)| {
                    let describe = |event: &Event| {
                        format!(
                            "{}@{}{}",
                            event.kind,
                            event.at,
                            event
                                .msg
                                .as_deref()
                                .map(|msg| format!("({msg})"))
                                .unwrap_or_default()
                        )
                    };
                    let lines: Vec<String> = of_pods
                        .iter()
                        .enumerate()
                        .skip(1)
                        .map(|(pod, history)| {
                            let only_first: Vec<String> = of_pods[0]
                                .iter()
                                .filter(|event| !history.contains(event))
                                .map(describe)
                                .collect();
                            let only_here: Vec<String> = history
                                .iter()
                                .filter(|event| !of_pods[0].contains(event))
                                .map(describe)
                                .collect();
                            let first_apart = of_pods[0]
                                .iter()
                                .zip(history)
                                .position(|(a, b)| a != b)
                                .unwrap_or(history.len().min(of_pods[0].len()));
                            let around = |events: &[Event]| -> Vec<String> {
                                events
                                    .iter()
                                    .skip(first_apart.saturating_sub(1))
                                    .take(4)
                                    .map(describe)
                                    .collect()
                            };
                            format!(
                                "the first pod only: {only_first:?}; pod {pod} only: {only_here:?}; by time, apart from event {first_apart}: the first pod {:?}, pod {pod} {:?}",
                                around(&of_pods[0]),
                                around(history)
                            )
                        })
                        .collect();
                    format!("{id}:\n    {}", lines.join("\n    "))
                })
                .unwrap_or_default();
            round.failures.push(format!(
                "histories differ between pods: {differing:?}; heartbeats applied twice: {duplicates:?}; the first:\n  {example}"
            ));
        }

        // No acknowledged heartbeat lost: each in its monitor's history on every pod.
        let mut lost = Vec::new();
        for acked in &self.load.acked() {
            let lacking: Vec<usize> = histories.get(&acked.monitor).map_or_else(
                || vec![usize::MAX],
                |of_pods| {
                    of_pods
                        .iter()
                        .zip(self.live().map(|(index, _)| index))
                        .filter(|(history, _)| {
                            !history.iter().any(|event| {
                                event.kind == "heartbeat"
                                    && event.msg.as_deref() == Some(&acked.msg)
                            })
                        })
                        .map(|(_, index)| index)
                        .collect()
                },
            );
            if !lacking.is_empty() {
                lost.push(format!(
                    "{} {} (shard {}) acked by pod-{} {:?} before the checks, missing on pods {lacking:?}",
                    acked.monitor,
                    acked.msg,
                    shard(&acked.monitor),
                    acked.pod,
                    acked.at.elapsed()
                ));
            }
        }
        round.lost = lost.len();
        if !lost.is_empty() {
            lost.truncate(10);
            round.failures.push(format!(
                "{} acknowledged heartbeats missing from a pod's history, first: {lost:?}",
                round.lost
            ));
        }

        // The shard logs read back.
        let silenced_ids: BTreeSet<MonitorId> = silenced
            .iter()
            .map(|target| MonitorId::parse(&target.id).unwrap())
            .collect();
        let pushing_ids: BTreeSet<MonitorId> = self
            .pushing
            .iter()
            .map(|target| MonitorId::parse(&target.id).unwrap())
            .collect();
        let mut effective: BTreeMap<MonitorId, usize> = BTreeMap::new();
        // (sequence, epoch, basis) of each effective decision, for the failures.
        let mut effective_at: BTreeMap<MonitorId, Vec<(u64, u64, u64, bool)>> = BTreeMap::new();
        let mut facts = LogFacts::default();
        for shard in ShardId::all(SHARDS) {
            let records = self.read_shard(shard).await;
            facts.note(shard, &records);
            let mut fold = ShardFold::default();
            let mut last_epoch = 0;
            let after = positions[&shard];
            for stored in &records {
                let this_round = stored.sequence > after;
                match &stored.record {
                    ShardRecord::Renewal { epoch, pod } | ShardRecord::Release { epoch, pod } => {
                        let current = fold.owner().map(|owner| owner.pod.as_str());
                        if fold.epoch() != Some(*epoch) || current != Some(pod.as_str()) {
                            round.failures.push(format!(
                                "shard {shard}: a stale renewal or release landed at {}: {:?} (epoch {:?}, owner {current:?})",
                                stored.sequence, stored.record, fold.epoch()
                            ));
                        }
                    }
                    ShardRecord::Takeover { .. } => {
                        if stored.sequence <= last_epoch {
                            round.failures.push(format!(
                                "shard {shard}: epoch {} after {last_epoch}",
                                stored.sequence
                            ));
                        }
                        last_epoch = stored.sequence;
                        if this_round {
                            round.takeovers += 1;
                        }
                    }
                    _ => {}
                }
                let folded = fold.apply(stored.sequence, &stored.record);
                if let ShardRecord::Decision {
                    monitor,
                    epoch,
                    basis,
                    event,
                } = &stored.record
                {
                    match folded {
                        Folded::Effective => {
                            // Only a decision that takes the monitor down counts: a
                            // shard taken over after an outage (a NATS leader's
                            // election can outlast three leases) also decides restart
                            // graces, which alert nobody.
                            let decided = pushmon::store::codec::decode_decided(event)
                                .expect("a decision's events decode");
                            let down = decided.iter().any(|stamped| {
                                matches!(
                                    stamped.event,
                                    pushmon::domain::event::Event::WentDown { .. }
                                )
                            });
                            if down {
                                *effective.entry(*monitor).or_default() += 1;
                            }
                            effective_at.entry(*monitor).or_default().push((
                                stored.sequence,
                                *epoch,
                                *basis,
                                down,
                            ));
                        }
                        Folded::Void(Void::StaleEpoch) if this_round => round.voided_stale += 1,
                        Folded::Void(_) if this_round => round.voided_other += 1,
                        _ => {}
                    }
                }
            }
        }
        for monitor in &silenced_ids {
            let count = effective.get(monitor).copied().unwrap_or(0);
            round.effective_downs += count;
            if count != 1 {
                round.failures.push(format!(
                    "silenced monitor {monitor}: {count} effective downs in the log, not 1 (sequence, epoch, basis, down) of its effective decisions: {:?}",
                    effective_at.get(monitor)
                ));
            }
        }
        for monitor in &pushing_ids {
            if let Some(count) = effective.get(monitor) {
                round.failures.push(format!(
                    "pushing monitor {monitor}: {count} effective downs in the log"
                ));
            }
        }
        // Every pod's history: one down per silenced monitor, none for the pushing.
        for (id, of_pods) in &histories {
            let silenced_one = silenced.iter().any(|target| &target.id == id);
            let pushing_one = self.pushing.iter().any(|target| &target.id == id);
            for (pod, history) in of_pods.iter().enumerate() {
                let down_events = history.iter().filter(|event| event.kind == "down").count();
                if (silenced_one && down_events != 1) || (pushing_one && down_events != 0) {
                    round.failures.push(format!(
                        "monitor {id} ({}) has {down_events} downs on pod {pod}",
                        if silenced_one { "silenced" } else { "pushing" }
                    ));
                }
            }
        }
        // The receiver: at least one down alert per silenced monitor, none for the
        // pushing, and every duplicate attributed to a crash.
        for target in &self.pushing {
            if let Some(copies) = downs.get(&target.id) {
                round.failures.push(format!(
                    "pushing monitor {}: down alerts delivered {copies:?}",
                    target.id
                ));
            }
        }
        attribute_duplicates(round, silenced, downs, &facts);
        // A zombie owner's decisions are void: a decision the cut-off owner made in
        // its last half lease reaches the log after the takeover.
        if fault == Fault::PartitionOwner && round.voided_stale == 0 {
            round
                .failures
                .push("no decision of the cut-off owner voided for its stale epoch".to_owned());
        }
        // Failover within the bound.
        for took in &round.failover {
            if *took >= FAILOVER_LIMIT {
                round
                    .failures
                    .push(format!("failover took {took:?}, over {FAILOVER_LIMIT:?}"));
            }
        }
        // Each shard held by exactly one pod, under the log's epoch (read again each
        // time: a restarted pod takes its preferred shards back meanwhile).
        let start = Instant::now();
        loop {
            let mut epochs_now = BTreeMap::new();
            for shard in ShardId::all(SHARDS) {
                let last = self.reader.last_ownership(shard).await.ok().flatten();
                let epoch = last.and_then(|stored| match stored.record {
                    ShardRecord::Takeover { .. } => Some(stored.sequence),
                    ShardRecord::Renewal { epoch, .. } => Some(epoch),
                    _ => None,
                });
                epochs_now.insert(shard, epoch);
            }
            let holdings = self.holdings().await;
            let mismatched: Vec<String> = ShardId::all(SHARDS)
                .filter_map(|shard| {
                    let holders: Vec<(usize, u64)> = holdings
                        .iter()
                        .filter_map(|(index, held)| Some((*index, *held.get(&shard)?)))
                        .collect();
                    let agrees = holders.len() == 1 && Some(holders[0].1) == epochs_now[&shard];
                    (!agrees).then(|| {
                        format!(
                            "shard {shard}: held {holders:?}, log epoch {:?}",
                            epochs_now[&shard]
                        )
                    })
                })
                .collect();
            if mismatched.is_empty() {
                break;
            }
            if start.elapsed() > Duration::from_secs(10) {
                round
                    .failures
                    .push(format!("ownership disagrees with the log: {mismatched:?}"));
                break;
            }
            sleep(Duration::from_millis(100)).await;
        }
    }
}

/// What the duplicate rule needs from the shard logs.
#[derive(Default)]
struct LogFacts {
    /// Each shard's takeovers in order: (sequence, that is the epoch; pod).
    takeovers: BTreeMap<ShardId, Vec<(u64, String)>>,
    /// Each decision's epoch, by (shard, sequence).
    decisions: BTreeMap<(ShardId, u64), u64>,
    /// Each alert's outcome records (`Delivered`, `DeliveredAt`): (sequence, the time
    /// the sender stamped, `None` in a `Delivered`).
    outcomes: BTreeMap<String, Vec<(u64, Option<i64>)>>,
}

impl LogFacts {
    fn note(&mut self, shard: ShardId, records: &[pushmon::cluster::log::Stored]) {
        for stored in records {
            match &stored.record {
                ShardRecord::Takeover { pod, .. } => self
                    .takeovers
                    .entry(shard)
                    .or_default()
                    .push((stored.sequence, pod.clone())),
                ShardRecord::Decision { epoch, .. } => {
                    self.decisions.insert((shard, stored.sequence), *epoch);
                }
                ShardRecord::Delivered { alert, .. } => self
                    .outcomes
                    .entry(alert.clone())
                    .or_default()
                    .push((stored.sequence, None)),
                ShardRecord::DeliveredAt { alert, at, .. } => self
                    .outcomes
                    .entry(alert.clone())
                    .or_default()
                    .push((stored.sequence, Some(at.as_millis()))),
                _ => {}
            }
        }
    }
}

/// The rule for duplicate deliveries, for every scenario (at-least-once delivery with
/// an idempotency key): a down alert is delivered again only when a pod sent it and
/// crashed before recording its outcome. For each silenced monitor's down alert
/// (`downs`: the receiver's copies), checks that
/// - it was delivered at least once;
/// - no copy arrived after an outcome of the alert was recorded: every outcome record
///   of a duplicated alert is stamped no earlier than its last copy's arrival (the
///   sender stamps it after the receiver answered; a new owner resends only what was
///   not recorded as of its takeover);
/// - each copy but the last is matched by a distinct crash, after that copy arrived,
///   of a pod that owned the monitor's shard under the deciding epoch or a later one.
///
/// Counts the round's deliveries, duplicates (copies beyond the first), deliveries in
/// flight at a crash (copies without an outcome record) and crashes, and notes each
/// duplicated alert's evidence.
fn attribute_duplicates(
    round: &mut Round,
    silenced: &[Target],
    downs: &BTreeMap<String, Vec<Copy>>,
    facts: &LogFacts,
) {
    round.crashes = round.crashed.len();
    // Copies attributed to each crashed pod: deliveries it had sent and not recorded.
    let mut per_crash: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for target in silenced {
        let copies = downs.get(&target.id).cloned().unwrap_or_default();
        round.deliveries += copies.len();
        if copies.is_empty() {
            round.failures.push(format!(
                "silenced monitor {}: no down alert delivered",
                target.id
            ));
            continue;
        }
        let mut by_alert: BTreeMap<String, Vec<i64>> = BTreeMap::new();
        for copy in &copies {
            by_alert
                .entry(copy.id.clone())
                .or_default()
                .push(copy.at_millis);
        }
        if by_alert.len() > 1 {
            round.failures.push(format!(
                "silenced monitor {}: {} distinct down alerts delivered: {copies:?}",
                target.id,
                by_alert.len()
            ));
        }
        let shard = shard(&target.id);
        for (alert, mut arrivals) in by_alert {
            arrivals.sort_unstable();
            let outcomes = facts.outcomes.get(&alert).cloned().unwrap_or_default();
            round.in_flight += arrivals.len().saturating_sub(outcomes.len());
            if arrivals.len() < 2 {
                continue;
            }
            round.duplicates += arrivals.len() - 1;
            let last = arrivals[arrivals.len() - 1];
            let recorded_before: Vec<&(u64, Option<i64>)> = outcomes
                .iter()
                .filter(|(_, at)| at.is_none_or(|at| at < last))
                .collect();
            if !recorded_before.is_empty() {
                round.failures.push(format!(
                    "alert {alert} ({}): delivered again at {last} ms after its outcome was recorded (sequence, stamped ms): {recorded_before:?}; arrivals {arrivals:?}",
                    target.id
                ));
            }
            // The owners that may have sent it: the deciding epoch's and later ones.
            let epoch = alert
                .rsplit(':')
                .next()
                .and_then(|sequence| sequence.parse::<u64>().ok())
                .and_then(|sequence| facts.decisions.get(&(shard, sequence)).copied());
            let owners: Vec<(u64, String)> = facts
                .takeovers
                .get(&shard)
                .map(|takeovers| {
                    takeovers
                        .iter()
                        .filter(|(sequence, _)| epoch.is_some_and(|epoch| *sequence >= epoch))
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            // Each copy but the last (in arrival order) to the first owner, in epoch
            // order, that crashed after it arrived and has no copy yet.
            let mut unmatched = Vec::new();
            let mut used: Vec<usize> = Vec::new();
            for arrival in &arrivals[..arrivals.len() - 1] {
                let crash = owners.iter().find_map(|(_, pod)| {
                    round.crashed.iter().enumerate().position(|(index, crash)| {
                        !used.contains(&index) && crash.by_millis >= *arrival && crash.pod == *pod
                    })
                });
                match crash {
                    Some(index) => used.push(index),
                    None => unmatched.push(*arrival),
                }
            }
            let crashed: Vec<&Crash> = used.iter().map(|index| &round.crashed[*index]).collect();
            for crash in &crashed {
                per_crash
                    .entry(crash.pod.clone())
                    .or_default()
                    .push(alert.clone());
            }
            let evidence = format!(
                "alert {alert} ({}, shard {shard}): arrivals {arrivals:?} ms, decided under epoch {epoch:?}, owners since (epoch, pod) {owners:?}, outcome records (sequence, stamped ms) {outcomes:?}, crashes matched {crashed:?}",
                target.id
            );
            if unmatched.is_empty() {
                round.note.push_str(&format!("\n  duplicate: {evidence}"));
            } else {
                round.failures.push(format!(
                    "a duplicate no crash accounts for (copies arrived at {unmatched:?}; crashes {:?}): {evidence}",
                    round.crashed
                ));
            }
        }
    }
    if !per_crash.is_empty() {
        round.note.push_str(&format!(
            "\n  copies accounted for by each crashed pod (pod: alerts; a hook crash is dated when found dead, so when two crashed owners fit, the earlier owner is named): {per_crash:?}"
        ));
    }
}

fn shard(id: &str) -> ShardId {
    shard_of(&MonitorId::parse(id).unwrap(), SHARDS)
}

/// `GET /api/monitors` as JSON, sorted by id, without what names the pod (its URLs).
async fn monitors_without_urls(process: &ServerProcess) -> Vec<Value> {
    let response = process
        .api(Method::GET, "/api/monitors")
        .send()
        .await
        .unwrap();
    let body: Value = crate::support::expect_json(response, StatusCode::OK).await;
    let list = body
        .get("monitors")
        .cloned()
        .unwrap_or(body)
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut monitors: Vec<Value> = list
        .into_iter()
        .map(|mut monitor| {
            if let Some(object) = monitor.as_object_mut() {
                object.retain(|key, _| !key.ends_with("_url"));
            }
            monitor
        })
        .collect();
    monitors.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    monitors
}

fn describe_difference(states: &[(usize, Vec<Value>)]) -> String {
    let Some((_, first)) = states.first() else {
        return String::new();
    };
    let mut lines = Vec::new();
    for (index, state) in &states[1..] {
        if state.len() != first.len() {
            lines.push(format!(
                "pod {index}: {} monitors, first {}",
                state.len(),
                first.len()
            ));
            continue;
        }
        for (a, b) in first.iter().zip(state) {
            if a != b {
                lines.push(format!("pod {index}: {b} vs {a}"));
            }
        }
    }
    lines.join("; ")
}

/// Whether `delivery` events (an alert's outcome) must be the same on every pod. They
/// are, now that outcomes go through the shard logs (a `Delivered` record each pod's
/// fold settles its own outbox entry with), but each pod stamps the event with its own
/// clock when its fold applies the record, not the time of the delivery: a pod that
/// folds it later (one started again after a SIGKILL, seconds after the others) holds
/// it at another time. So a delivery event is compared without its time (and, in the
/// by-time order, before the monitor's other events, in the order the pod stored it).
const DELIVERIES_REPLICATED: bool = true;

/// A history without the pod's own sequence numbers, and `delivery` events without
/// their times (or, with `DELIVERIES_REPLICATED` off, without `delivery` events).
fn comparable(history: Vec<Event>) -> Vec<Event> {
    history
        .into_iter()
        .filter(|event| DELIVERIES_REPLICATED || event.kind != "delivery")
        .map(|mut event| {
            event.seq = 0;
            if event.kind == "delivery" {
                event.at = String::new();
            }
            event
        })
        .collect()
}

/// A history in the order of its events' times (stable: events of the same time
/// keep their order). A pod's history is in the order its own store recorded the
/// events, and what its actor derives from a heartbeat (an `up`, stamped at the
/// heartbeat's time) can land after a heartbeat the fold wrote meanwhile on one pod
/// and before it on another: the same events, interleaved differently. The checks
/// compare the events; the summary counts monitors whose stored order differs.
fn by_time(mut history: Vec<Event>) -> Vec<Event> {
    // Times are in milliseconds: events of the same millisecond (two pods taking
    // pushes of one monitor in the same millisecond, and the `up` derived from the
    // first) are put in an order of their own fields, not the order stored.
    history.sort_by(|a, b| {
        (&a.at, &a.kind, &a.msg, &a.status, &a.reason)
            .cmp(&(&b.at, &b.kind, &b.msg, &b.status, &b.reason))
    });
    history
}

fn rounds() -> usize {
    std::env::var("PUSHMON_FAULT_ROUNDS")
        .ok()
        .and_then(|rounds| rounds.parse().ok())
        .unwrap_or(1)
}

fn budget() -> Duration {
    Duration::from_secs(
        std::env::var("PUSHMON_FAULT_SECONDS")
            .ok()
            .and_then(|seconds| seconds.parse().ok())
            .unwrap_or(600),
    )
}

fn format_failover(failover: &[Duration]) -> String {
    if failover.is_empty() {
        return "-".to_owned();
    }
    failover
        .iter()
        .map(|took| format!("{:.2}", took.as_secs_f64()))
        .collect::<Vec<_>>()
        .join("/")
}

/// Runs `fault` for the configured rounds on one cluster; prints (and appends to
/// `PUSHMON_FAULT_REPORT`) a row per round; fails on any round's failed check.
async fn scenario(fault: Fault, env: Vec<(String, String)>) {
    // One cluster of six processes at a time: the machine has two cores.
    let _one_at_a_time = ONE_CLUSTER_AT_A_TIME.lock().await;
    let started = Instant::now();
    let mut cluster = Cluster::start(env).await;
    let mut failures = Vec::new();
    for number in 1..=rounds() {
        if number > 1 && started.elapsed() > budget() {
            break;
        }
        let mut round = cluster.round(fault).await;
        let row = format!(
            "{}\t{number}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            fault.name(),
            round.acked,
            round.refused,
            round.lost,
            format_failover(&round.failover),
            round.takeovers,
            round.voided_stale,
            round.voided_other,
            round.silenced,
            round.effective_downs,
            round.deliveries,
            round.duplicates,
            round.in_flight,
            round.crashes,
            if round.identical { "yes" } else { "no" },
            round.reordered,
            if round.failures.is_empty() {
                "ok"
            } else {
                "FAILED"
            },
        );
        eprintln!("fault round: {row}");
        eprintln!("  ({})", round.note);
        if !round.failures.is_empty() {
            round.failures.insert(0, round.note.clone());
        }
        for failure in &round.failures {
            eprintln!("  {failure}");
        }
        if let Ok(path) = std::env::var("PUSHMON_FAULT_REPORT") {
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .unwrap();
            writeln!(file, "{row}").unwrap();
            for failure in &round.failures {
                let failure = failure.replace('\n', " | ");
                writeln!(file, "#\t{}\t{number}\t{failure}", fault.name()).unwrap();
            }
        }
        failures.extend(
            round
                .failures
                .into_iter()
                .map(|failure| format!("round {number}: {failure}")),
        );
    }
    for pod in &mut cluster.pods {
        if let Some(process) = pod.process.take() {
            process.sigkill().await;
        }
    }
    assert!(
        failures.is_empty(),
        "{}: {} failed checks:\n{}",
        fault.name(),
        failures.len(),
        failures.join("\n")
    );
}

/// Passes (35 rounds of 35 on 2026-11-30, failover 1.93 to 2.78 s over 20 kills): the
/// SIGKILLed pod, started again, resumes from its stored positions without applying
/// anything twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_of_an_owner() {
    scenario(Fault::KillOwner, Vec::new()).await;
}

/// Passes (15 rounds of 15 on 2026-11-30). The stopped owner makes no
/// decision after `SIGCONT` (its own lease check stops it first).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigstop_of_an_owner_for_twice_its_lease() {
    scenario(Fault::PauseOwner, Vec::new()).await;
}

/// The cut falls right after a renewal of one of the owner's shards, with one of
/// that shard's silenced monitors due inside what is left of the owner's lease
/// (`Cluster::cut_off`), so the cut-off owner decides as a zombie in every round.
/// In 50 rounds on 2026-11-30, every round voided 1 to 11 of its decisions for their
/// stale epoch; the last 25 (after the load's and the comparison's fixes) passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_cut_off_from_nats() {
    scenario(Fault::PartitionOwner, Vec::new()).await;
}

/// Passes (15 rounds of 15 on 2026-11-30); appends resume in every shard 4.4 to
/// 8.8 s after the kill in 14 of them (new stream leaders first), 0.1 s in one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_of_the_nats_server_leading_the_most_streams() {
    scenario(Fault::KillNatsLeader, Vec::new()).await;
}

/// Passes (15 rounds of 15 on 2026-11-30): each pod, SIGTERMed and started
/// again, resumes from its stored positions; silent monitors go down once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_of_every_pod() {
    scenario(Fault::RollingRestart, Vec::new()).await;
}

/// The pods run with `PUSHMON_FAULT_EXIT_AFTER_SEND=1` (each aborts right after its
/// first delivery, before publishing its outcome; started again without it), or the
/// hook `PUSHMON_FAULT_CRASH_HOOK=NAME=VALUE` names. Only a run's first round has
/// crashes. The silenced monitors' deadlines line up, so an owner sends their alerts
/// at once and its abort loses the outcome of every delivery in flight, not only the
/// one that set the hook off: each of those is sent again by the next owner (one
/// first round: 9 duplicates for 3 crashes, pod-0 aborting with 4 alerts sent and not
/// recorded, the pod taking over its shard resending them and aborting in turn). The
/// rule checks that each duplicate is accounted for by such a crash and that none
/// follows a recorded outcome (`attribute_duplicates`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_between_sending_an_alert_and_recording_it() {
    let hook =
        std::env::var(CRASH_HOOK).unwrap_or_else(|_| "PUSHMON_FAULT_EXIT_AFTER_SEND=1".to_owned());
    let (name, value) = hook.split_once('=').expect("NAME=VALUE");
    scenario(
        Fault::CrashAfterSend,
        vec![(name.to_owned(), value.to_owned())],
    )
    .await;
}

/// The partition the suite relies on: cut, the proxy passes nothing either way and
/// holds what it read; healed, it delivers what it held, in order.
#[tokio::test]
async fn the_proxy_holds_every_byte_while_cut_and_delivers_them_once_healed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // An echo server upstream.
    let upstream = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream_address = upstream.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut connection, _)) = upstream.accept().await {
            tokio::spawn(async move {
                let mut buffer = [0u8; 1024];
                while let Ok(read) = connection.read(&mut buffer).await {
                    if read == 0 || connection.write_all(&buffer[..read]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    let proxy = Proxy::start(upstream_address).await;
    let mut client = tokio::net::TcpStream::connect(proxy.address).await.unwrap();
    let mut echoed = [0u8; 5];
    client.write_all(b"hello").await.unwrap();
    client.read_exact(&mut echoed).await.unwrap();
    assert_eq!(&echoed, b"hello");

    proxy.cut();
    client.write_all(b"later").await.unwrap();
    let held = tokio::time::timeout(Duration::from_millis(500), client.read(&mut echoed)).await;
    assert!(held.is_err(), "nothing passes while cut: {held:?}");
    // A connection made during the cut is accepted and silent.
    let mut during = tokio::net::TcpStream::connect(proxy.address).await.unwrap();
    during.write_all(b"queue").await.unwrap();
    let silent = tokio::time::timeout(Duration::from_millis(300), during.read(&mut echoed)).await;
    assert!(
        silent.is_err(),
        "a new connection is silent while cut: {silent:?}"
    );

    proxy.heal();
    tokio::time::timeout(Duration::from_secs(5), client.read_exact(&mut echoed))
        .await
        .expect("what was held arrives once healed")
        .unwrap();
    assert_eq!(&echoed, b"later");
    tokio::time::timeout(Duration::from_secs(5), during.read_exact(&mut echoed))
        .await
        .expect("the held connection goes through once healed")
        .unwrap();
    assert_eq!(&echoed, b"queue");
}
