//! The clustered mode's part of the lifecycle (`--cluster-nats`): join before ready
//! (connect, create the shards' streams, start the ownership manager, retrying until
//! NATS answers, so `/readyz` stays 503 meanwhile), keep the cluster metrics, and
//! release every owned shard at shutdown so the next pod takes each over at once;
//! and `pushmon cluster release` ([`release`]), which asks a running pod to do so
//! before it is stopped.
//!
//! Once joined, [`Membership::start_engine`] makes the shard logs the log of record
//! for heartbeats, signals and every change (`engine.rs`): a publisher per stream
//! (group commit: one wait on the PubAcks of everything queued meanwhile, the plain
//! heartbeats of all the stream's shards in one record) and a fold of every stream
//! into this pod's local store and registry. Only a shard's owner
//! decides its deadlines and sends its alerts, once its fold has caught up with the
//! takeover (`engine.rs`, `alerts.rs`; docs/cluster.md).

use std::time::Duration;

use tokio::task::JoinHandle;

use crate::cluster::claims::ClaimStore;
use crate::cluster::log::{JetStreamLog, JetStreamSettings, LogError};
use crate::cluster::ownership::{self, Owned, Ownership};
use crate::cluster::shard::ShardId;
use crate::cluster::share::SharedSnapshots;
use crate::config::ClusterConfig;
use crate::prometheus;

/// How long a publish waits for its PubAck.
const ACK_TIMEOUT: Duration = Duration::from_secs(5);

/// Between two attempts to join.
const RETRY: Duration = Duration::from_secs(2);

/// Seconds between two reconciliations of the claims bucket with this pod's copy, run
/// while this pod decides for shard 0 (`PUSHMON_CLUSTER_CLAIMS_EVERY`, default 300).
pub const CLAIMS_EVERY_ENV: &str = "PUSHMON_CLUSTER_CLAIMS_EVERY";
/// Seconds a claim is left alone after it was made, whoever holds its value
/// (`PUSHMON_CLUSTER_CLAIMS_SETTLE`, default 600).
pub const CLAIMS_SETTLE_ENV: &str = "PUSHMON_CLUSTER_CLAIMS_SETTLE";

fn seconds_from_env(name: &str, default: u64) -> Duration {
    let seconds = match std::env::var(name) {
        Ok(text) => text.trim().parse().unwrap_or_else(|_| {
            tracing::warn!(
                name,
                text,
                default,
                "not a number of seconds; using the default"
            );
            default
        }),
        Err(_) => default,
    };
    Duration::from_secs(seconds.max(1))
}

mod alerts;
mod engine;
mod sharing;

pub use alerts::FAULT_EXIT_AFTER_SEND;
pub use sharing::{
    PURGE_AGE_ENV, PURGED_EXIT_CODE, RESET_MARKER, SHARE_RECORDS_ENV, SHARE_SECONDS_ENV,
    empty_if_left_behind, restore,
};

/// This pod's membership: its ownership manager, the task keeping the metrics, and
/// once started the engine's tasks (publishers and folds).
pub struct Membership {
    ownership: std::sync::Arc<Ownership>,
    metrics: JoinHandle<()>,
    log: JetStreamLog,
    claims: ClaimStore,
    shared: SharedSnapshots,
    engine: engine::Engine,
    /// Reconciles the claims bucket with this pod's copy, once started.
    reconciling: Option<JoinHandle<()>>,
}

/// What the engine needs of this pod besides the registry and channels.
pub struct Local {
    pub store: crate::store::EventStore,
    pub dispatcher: crate::alert::Dispatcher,
    pub notifier: crate::alert::Notifier,
    pub clock: crate::clock::Clock,
    /// The fault hook [`FAULT_EXIT_AFTER_SEND`]: abort after this many successful
    /// deliveries (a test hook only).
    pub exit_after_sends: Option<u64>,
    /// `--restart-grace`: granted, in a shard taken over after an outage, to the
    /// deadlines that fell during it.
    pub restart_grace_seconds: u32,
    /// The API's state: its API keys and publications, which the fold of the
    /// cluster-wide shard applies (`http/replicated.rs`).
    pub state: crate::http::AppState,
}

/// Joins the cluster, trying again every [`RETRY`] until NATS answers and the streams
/// exist.
pub async fn join(config: &ClusterConfig) -> Membership {
    loop {
        match try_join(config).await {
            Ok((ownership, log, claims, shared)) => {
                tracing::info!(
                    pod = %config.pod,
                    shards = config.shards,
                    replicas = config.replicas,
                    lease_ms = config.lease.as_millis() as u64,
                    "joined the cluster"
                );
                let metrics = tokio::spawn(keep_metrics(
                    ownership.watch(),
                    config.shards,
                    ownership.failovers_handle(),
                ));
                return Membership {
                    ownership: std::sync::Arc::new(ownership),
                    metrics,
                    log,
                    claims,
                    shared,
                    engine: engine::Engine::default(),
                    reconciling: None,
                };
            }
            Err(error) => {
                tracing::warn!(%error, "cannot join the cluster yet; not ready, trying again");
                tokio::time::sleep(RETRY).await;
            }
        }
    }
}

/// How this pod (named `pod`) connects to the shard logs.
fn settings(config: &ClusterConfig, pod: &str) -> JetStreamSettings {
    JetStreamSettings {
        servers: config.nats.clone(),
        pod: pod.to_owned(),
        shards: config.shards,
        streams: config.streams,
        replicas: config.replicas,
        ack_timeout: ACK_TIMEOUT,
    }
}

async fn try_join(
    config: &ClusterConfig,
) -> Result<(Ownership, JetStreamLog, ClaimStore, SharedSnapshots), LogError> {
    let log = JetStreamLog::connect(settings(config, &config.pod)).await?;
    log.ensure_streams().await?;
    let claims = ClaimStore::open(log.context(), config.replicas)
        .await
        .map_err(|error| LogError::Connect(error.to_string()))?;
    let shared = SharedSnapshots::open(log.context(), config.replicas)
        .await
        .map_err(|error| LogError::Connect(error.to_string()))?;
    let ownership = Ownership::start(log.clone(), config.lease).await?;
    Ok((ownership, log, claims, shared))
}

impl Membership {
    /// Starts publishing this pod's pushes and creations to the shard logs and folding
    /// every shard into `registry` (and its store); returns once every shard is folded
    /// up to the last record it had when its fold started.
    pub async fn start_engine(
        &mut self,
        registry: &crate::monitor::Registry,
        channels: &crate::alert::Channels,
        local: Local,
    ) {
        self.engine = engine::start(
            &self.log,
            &self.ownership,
            registry,
            channels,
            local,
            self.shared.clone(),
        )
        .await;
        // What this pod's copy holds is claimed before creations and changes may
        // claim (a cluster made before claims existed becomes consistent).
        loop {
            match registry.claim_what_is_held(&self.claims).await {
                Ok(made) => {
                    tracing::info!(claims = made, "claimed what this pod's copy holds");
                    break;
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot claim what this pod's copy holds yet; not ready, trying again");
                    tokio::time::sleep(RETRY).await;
                }
            }
        }
        registry.set_claims(self.claims.clone());
        self.reconciling = Some(tokio::spawn(reconcile_claims(
            registry.clone(),
            self.claims.clone(),
            std::sync::Arc::clone(&self.ownership),
        )));
    }

    /// Releases every owned shard and stops.
    pub async fn leave(self) {
        if let Some(reconciling) = &self.reconciling {
            reconciling.abort();
        }
        let failed = self.ownership.shutdown().await;
        self.metrics.abort();
        // A snapshot of every stream's fold, so this pod restarts from there.
        self.engine.stop().await;
        if failed.is_empty() {
            tracing::info!("released every owned shard");
        } else {
            tracing::warn!(
                shards = ?failed,
                "some shards were not released; they are taken over when their lease runs out"
            );
        }
    }
}

/// Every [`CLAIMS_EVERY_ENV`] seconds, while this pod decides for shard 0 (one pod at
/// a time, with a caught-up copy of that shard), deletes the claims left behind and
/// makes the ones missing (`Registry::reconcile_claims`).
async fn reconcile_claims(
    registry: crate::monitor::Registry,
    claims: ClaimStore,
    ownership: std::sync::Arc<Ownership>,
) {
    let every = seconds_from_env(CLAIMS_EVERY_ENV, 300);
    let settle = seconds_from_env(CLAIMS_SETTLE_ENV, 600);
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        if ownership.deciding_epoch(ShardId(0)).is_none() || registry.cluster_catching_up() {
            continue;
        }
        match registry.reconcile_claims(&claims, settle).await {
            Ok((dropped, made)) => {
                metrics::counter!(prometheus::CLUSTER_CLAIMS_RECONCILED_TOTAL, "action" => "deleted")
                    .increment(dropped as u64);
                metrics::counter!(prometheus::CLUSTER_CLAIMS_RECONCILED_TOTAL, "action" => "claimed")
                    .increment(made as u64);
                if dropped + made > 0 {
                    tracing::info!(dropped, made, "reconciled the claims with this pod's copy");
                }
            }
            Err(error) => {
                tracing::warn!(%error, "cannot reconcile the claims now; trying at the next round")
            }
        }
    }
}

/// Sets the cluster gauges on every change of ownership, and the failover counter.
async fn keep_metrics(
    mut changes: tokio::sync::watch::Receiver<Owned>,
    shards: u16,
    failovers: impl Fn() -> u64 + Send + 'static,
) {
    let mut ticks = tokio::time::interval(Duration::from_secs(1));
    loop {
        let owned = changes.borrow_and_update().clone();
        metrics::gauge!(prometheus::CLUSTER_SHARDS_OWNED).set(owned.len() as f64);
        for shard in ShardId::all(shards) {
            let epoch = owned.get(&shard).copied().unwrap_or(0);
            metrics::gauge!(prometheus::CLUSTER_SHARD_EPOCH, "shard" => shard.to_string())
                .set(epoch as f64);
        }
        metrics::counter!(prometheus::CLUSTER_FAILOVERS_TOTAL).absolute(failovers());
        tokio::select! {
            changed = changes.changed() => if changed.is_err() { return },
            _ = ticks.tick() => {}
        }
    }
}

/// `pushmon cluster release`: asks the running server of `config.pod` to release every
/// shard it owns, then waits until no shard's last ownership record names it as owner,
/// for at most two leases and 5 s. How many shards it owned when asked.
pub async fn release(config: &ClusterConfig) -> anyhow::Result<usize> {
    use anyhow::Context as _;
    let log = JetStreamLog::connect(settings(config, &format!("{}-release", config.pod)))
        .await
        .context("connecting to NATS")?;
    let owned = ownership::owned_by(&log, &config.pod)
        .await
        .context("reading the shards' owners")?;
    ownership::request_release(&log, &config.pod)
        .await
        .context("asking for the release")?;
    let deadline = tokio::time::Instant::now() + config.lease * 2 + Duration::from_secs(5);
    loop {
        let left = ownership::owned_by(&log, &config.pod)
            .await
            .context("reading the shards' owners")?;
        if left.is_empty() {
            return Ok(owned.len());
        }
        if tokio::time::Instant::now() >= deadline {
            anyhow::bail!(
                "pod {} still owns shards {left:?} after {:?}",
                config.pod,
                config.lease * 2 + Duration::from_secs(5)
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
