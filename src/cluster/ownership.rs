//! Shard ownership: one owner pod per shard, fenced by the shard's log.
//!
//! - A **takeover** is a `Takeover` record published on the shard's ownership subject
//!   with `Nats-Expected-Last-Subject-Sequence` set to the last ownership record the
//!   pod saw, so of two pods contending only one lands; its sequence is the new
//!   **epoch**.
//! - The owner **renews** every lease/3 by the same rule (its renewer task looks every
//!   lease/12; the watcher that looks at the other shards every lease/6 runs apart, so
//!   a slow look never delays a renewal). A refused renewal means
//!   another pod took the shard: the owner drops it at once. An owner whose last
//!   acknowledged renewal was *sent* more than lease/2 ago (its own monotonic clock)
//!   stops deciding ([`Ownership::deciding_epoch`] is `None`) until a renewal lands
//!   again, well before a standby may take over.
//! - A standby takes a shard over only after it has seen no new ownership record for
//!   a whole lease (measured from when it saw the last one), first the shard's
//!   preferred pod among the live ones but the silent owner, any pod after two leases;
//!   or, if it is the preferred pod, at once after a `Release` or for a shard that
//!   never had an owner.
//! - **Rebalancing**: pods announce themselves on the presence stream (`PUSHMON_PODS`,
//!   one subject per pod, expiring after a lease), and a shard's preferred pod is the
//!   rendezvous winner among the live pods (`shard::preferred_pod`). The preferred pod
//!   takes free shards at once, others wait a lease; an owner that has held a shard
//!   for two leases releases it when its preferred pod is another live pod, and that
//!   pod takes it over at once.
//! - [`Ownership::shutdown`] leaves the presence stream and releases every owned shard,
//!   so a rolling update hands shards over without waiting for leases to run out. So
//!   does a **release request** from another process ([`request_release`], a message
//!   on `PUSHMON_RELEASE` naming the pod: `pushmon cluster release` in a preStop
//!   hook): the manager leaves, releases what it owns and takes nothing over any more.
//!
//! This module decides who owns; what an owner's decisions are worth is decided by the
//! log's fold (`domain::fence`), which voids any decision of a stale epoch.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_nats::jetstream::stream;
use futures_util::StreamExt;
use futures_util::future::join_all;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::log::{Fenced, JetStreamLog, LogError, Stored};
use super::shard::{ShardId, preferred_pod};
use crate::domain::fence::{Sequence, ShardRecord};
use crate::domain::ids::Timestamp;

/// The presence stream: one subject per live pod.
const PRESENCE_STREAM: &str = "PUSHMON_PODS";
const PRESENCE_PREFIX: &str = "pushmon.pods.";

/// Release requests (`pushmon cluster release`): one subject per pod. A pod's manager
/// clears its own when it starts, so a request outlives no process it was meant for.
const RELEASE_STREAM: &str = "PUSHMON_RELEASE";
const RELEASE_PREFIX: &str = "pushmon.release.";
/// How long an unanswered release request is kept.
const RELEASE_REQUEST_AGE: Duration = Duration::from_secs(3600);

/// Whether `name` can name a pod: it is a NATS subject token and a message id prefix.
pub fn valid_pod_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
}

/// Owned shards and the epoch each was taken under.
pub type Owned = BTreeMap<ShardId, Sequence>;

/// The ownership manager of one pod. Dropping it stops its task (as a crash would:
/// nothing is released).
pub struct Ownership {
    shared: Arc<Shared>,
    log: JetStreamLog,
    stop: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

struct Shared {
    pod: String,
    lease: Duration,
    held: Mutex<BTreeMap<ShardId, Held>>,
    /// The live pods, as the watcher last listed them (this pod always among them).
    live: Mutex<BTreeSet<String>>,
    /// Set once a release was requested for this pod: it releases what it owns and
    /// takes nothing over any more.
    releasing: AtomicBool,
    failovers: AtomicU64,
    changes: watch::Sender<Owned>,
}

/// A shard this pod owns.
#[derive(Clone, Copy, Debug)]
struct Held {
    epoch: Sequence,
    /// The last ownership record of the shard: this pod's last takeover or renewal.
    last: Sequence,
    /// When the last acknowledged takeover or renewal was sent.
    acknowledged_sent_at: Instant,
    /// When the last renewal was sent, acknowledged or not.
    last_sent_at: Instant,
    /// When the takeover was sent: a shard is handed to a preferred pod only after two
    /// leases, so a dead pod's presence, which lasts up to a lease, has run out.
    taken_at: Instant,
    /// When the servers stored the ownership record the takeover followed (`None`:
    /// the shard had none): the last moment a pod is known to have owned the shard.
    followed_at: Option<Timestamp>,
}

/// What a pod last saw on a shard it does not own.
#[derive(Clone, Debug)]
struct Seen {
    last: Option<Stored>,
    /// When the servers stored `last`.
    last_at: Option<Timestamp>,
    seen_at: Instant,
}

impl Ownership {
    /// Creates the presence stream if missing, announces the pod and starts managing
    /// every shard of `log` with leases of `lease`.
    pub async fn start(log: JetStreamLog, lease: Duration) -> Result<Self, LogError> {
        let pod = log.settings().pod.clone();
        ensure_presence(&log, lease).await?;
        ensure_release_requests(&log).await?;
        // A request left for an earlier process of this pod is not for this one.
        clear_release_request(&log, &pod).await?;
        announce(&log, &pod).await?;
        let (changes, _) = watch::channel(Owned::new());
        let shared = Arc::new(Shared {
            pod: pod.clone(),
            lease,
            held: Mutex::new(BTreeMap::new()),
            live: Mutex::new(BTreeSet::from([pod.clone()])),
            releasing: AtomicBool::new(false),
            failovers: AtomicU64::new(0),
            changes,
        });
        let (stop, stopped) = watch::channel(false);
        let tasks = vec![
            tokio::spawn(renew(log.clone(), Arc::clone(&shared), stopped.clone())),
            tokio::spawn(watch_shards(log.clone(), Arc::clone(&shared), stopped)),
        ];
        Ok(Self {
            shared,
            log,
            stop,
            tasks: Mutex::new(tasks),
        })
    }

    pub fn pod(&self) -> &str {
        &self.shared.pod
    }

    /// The shards this pod owns, with their epochs (owning is not deciding: see
    /// [`Self::deciding_epoch`]).
    pub fn owned(&self) -> Owned {
        self.shared.changes.borrow().clone()
    }

    /// Told every change of [`Self::owned`].
    pub fn watch(&self) -> watch::Receiver<Owned> {
        self.shared.changes.subscribe()
    }

    /// The epoch to decide under for `shard`, if this pod owns it and a renewal sent
    /// less than lease/2 ago was acknowledged; `None`: make no decision.
    pub fn deciding_epoch(&self, shard: ShardId) -> Option<Sequence> {
        let held = self
            .shared
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let held = held.get(&shard)?;
        (held.acknowledged_sent_at.elapsed() < self.shared.lease / 2).then_some(held.epoch)
    }

    /// For a shard this pod owns: when the servers stored the ownership record its
    /// takeover followed (the previous owner's last renewal, or its release); `None`
    /// if it had none or this pod does not own the shard.
    pub fn taken_over_after(&self, shard: ShardId) -> Option<Timestamp> {
        self.shared
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&shard)?
            .followed_at
    }

    pub fn lease(&self) -> Duration {
        self.shared.lease
    }

    /// Takeovers of a shard whose owner had stopped renewing, by this pod.
    pub fn failovers(&self) -> u64 {
        self.shared.failovers.load(Ordering::Relaxed)
    }

    /// Reads [`Self::failovers`] without the manager (for a metrics task).
    pub fn failovers_handle(&self) -> impl Fn() -> u64 + Send + 'static {
        let shared = Arc::clone(&self.shared);
        move || shared.failovers.load(Ordering::Relaxed)
    }

    /// Stops the manager as a crash or a pause would: no renewal, no release. The
    /// pod's shards stay held here, and [`Self::deciding_epoch`] turns `None` lease/2
    /// after the last acknowledged renewal.
    pub async fn halt(&self) {
        let _ = self.stop.send(true);
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(PoisonError::into_inner));
        // Each task finishes the round it is in (so what it published is recorded),
        // within a bound.
        let bound = self.log.settings().ack_timeout * 2;
        for mut task in tasks {
            if tokio::time::timeout(bound, &mut task).await.is_err() {
                task.abort();
            }
        }
    }

    /// Stops deciding, leaves the presence stream and releases every owned shard, so
    /// the next pod takes each over at once. Returns the shards whose release did not
    /// land (they are taken over when their lease runs out).
    pub async fn shutdown(&self) -> Vec<ShardId> {
        self.halt().await;
        if let Err(error) = leave(&self.log, &self.shared.pod).await {
            tracing::warn!(%error, "cannot leave the presence stream");
        }
        let failed = release_all(&self.log, &self.shared).await;
        self.shared.changes.send_replace(Owned::new());
        failed
    }
}

impl Drop for Ownership {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        for task in self
            .tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
        {
            task.abort();
        }
    }
}

/// Asks the manager of `pod` to release every shard it owns and take none over any
/// more (`pushmon cluster release`).
pub async fn request_release(log: &JetStreamLog, pod: &str) -> Result<(), LogError> {
    ensure_release_requests(log).await?;
    let ack = log
        .context()
        .publish(format!("{RELEASE_PREFIX}{pod}"), bytes::Bytes::new())
        .await
        .map_err(|error| LogError::Connect(format!("release request: {error}")))?;
    ack.await
        .map(drop)
        .map_err(|error| LogError::Connect(format!("release request: {error}")))
}

/// The shards whose last ownership record is a takeover or renewal by `pod`: those it
/// owns, or owned until it died (then until a lease has passed).
pub async fn owned_by(log: &JetStreamLog, pod: &str) -> Result<Vec<ShardId>, LogError> {
    let looks = join_all(
        ShardId::all(log.settings().shards)
            .map(|shard| async move { (shard, log.last_ownership(shard).await) }),
    )
    .await;
    let mut owned = Vec::new();
    for (shard, look) in looks {
        if let Some(Stored {
            record:
                ShardRecord::Takeover { pod: owner, .. } | ShardRecord::Renewal { pod: owner, .. },
            ..
        }) = look?
            && owner == pod
        {
            owned.push(shard);
        }
    }
    Ok(owned)
}

async fn ensure_release_requests(log: &JetStreamLog) -> Result<(), LogError> {
    log.context()
        .get_or_create_stream(stream::Config {
            name: RELEASE_STREAM.to_owned(),
            subjects: vec![format!("{RELEASE_PREFIX}*")],
            max_messages_per_subject: 1,
            max_age: RELEASE_REQUEST_AGE,
            num_replicas: log.settings().replicas,
            storage: stream::StorageType::Memory,
            ..Default::default()
        })
        .await
        .map(drop)
        .map_err(|error| LogError::Connect(format!("release requests stream: {error}")))
}

async fn clear_release_request(log: &JetStreamLog, pod: &str) -> Result<(), LogError> {
    let stream = log
        .context()
        .get_stream_no_info(RELEASE_STREAM)
        .await
        .map_err(|error| LogError::Connect(format!("release requests: {error}")))?;
    stream
        .purge()
        .filter(format!("{RELEASE_PREFIX}{pod}"))
        .await
        .map(drop)
        .map_err(|error| LogError::Connect(format!("release requests: {error}")))
}

/// Whether a release was requested for `pod`.
async fn release_requested(log: &JetStreamLog, pod: &str) -> Result<bool, LogError> {
    let stream = log
        .context()
        .get_stream_no_info(RELEASE_STREAM)
        .await
        .map_err(|error| LogError::Connect(format!("release requests: {error}")))?;
    match stream
        .get_last_raw_message_by_subject(&format!("{RELEASE_PREFIX}{pod}"))
        .await
    {
        Ok(_) => Ok(true),
        Err(error) if error.kind() == stream::LastRawMessageErrorKind::NoMessageFound => Ok(false),
        Err(error) => Err(LogError::Connect(format!("release requests: {error}"))),
    }
}

async fn ensure_presence(log: &JetStreamLog, lease: Duration) -> Result<(), LogError> {
    log.context()
        .get_or_create_stream(stream::Config {
            name: PRESENCE_STREAM.to_owned(),
            subjects: vec![format!("{PRESENCE_PREFIX}*")],
            max_messages_per_subject: 1,
            max_age: lease,
            num_replicas: log.settings().replicas,
            storage: stream::StorageType::Memory,
            ..Default::default()
        })
        .await
        .map(drop)
        .map_err(|error| LogError::Connect(format!("presence stream: {error}")))
}

async fn announce(log: &JetStreamLog, pod: &str) -> Result<(), LogError> {
    let ack = log
        .context()
        .publish(format!("{PRESENCE_PREFIX}{pod}"), bytes::Bytes::new())
        .await
        .map_err(|error| LogError::Connect(format!("presence: {error}")))?;
    ack.await
        .map(drop)
        .map_err(|error| LogError::Connect(format!("presence: {error}")))
}

async fn leave(log: &JetStreamLog, pod: &str) -> Result<(), LogError> {
    let stream = log
        .context()
        .get_stream_no_info(PRESENCE_STREAM)
        .await
        .map_err(|error| LogError::Connect(format!("presence: {error}")))?;
    stream
        .purge()
        .filter(format!("{PRESENCE_PREFIX}{pod}"))
        .await
        .map(drop)
        .map_err(|error| LogError::Connect(format!("presence: {error}")))
}

async fn live_pods(log: &JetStreamLog) -> Result<BTreeSet<String>, LogError> {
    let presence_error = |error: String| LogError::Connect(format!("presence: {error}"));
    let stream = log
        .context()
        .get_stream_no_info(PRESENCE_STREAM)
        .await
        .map_err(|error| presence_error(error.to_string()))?;
    let mut subjects = stream
        .info_with_subjects(format!("{PRESENCE_PREFIX}*"))
        .await
        .map_err(|error| presence_error(error.to_string()))?;
    let mut pods = BTreeSet::new();
    while let Some(subject) = subjects.next().await {
        let (subject, _count) = subject.map_err(|error| presence_error(error.to_string()))?;
        if let Some(pod) = subject.strip_prefix(PRESENCE_PREFIX) {
            pods.insert(pod.to_owned());
        }
    }
    Ok(pods)
}

/// The renewer: every lease/12, renews the owned shards whose last renewal was sent
/// lease/3 ago or more, and releases those another live pod prefers. It alone writes
/// the ownership records of held shards, so a renewal and a release never race.
async fn renew(log: JetStreamLog, shared: Arc<Shared>, mut stopped: watch::Receiver<bool>) {
    let mut ticks = tokio::time::interval(shared.lease / 12);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stopped.changed() => return,
        }
        if shared.releasing.load(Ordering::Relaxed) {
            release_all(&log, &shared).await;
        } else {
            renew_due(&log, &shared).await;
            release_preferred_elsewhere(&log, &shared).await;
        }
        publish_owned(&shared);
    }
}

/// The watcher: every lease/6, announces the pod (every lease/3), lists the live pods,
/// looks at the shards this pod does not own and takes over those it may. A slow look
/// never delays a renewal: the renewer runs apart.
async fn watch_shards(log: JetStreamLog, shared: Arc<Shared>, mut stopped: watch::Receiver<bool>) {
    let lease = shared.lease;
    let pod = shared.pod.clone();
    let mut ticks = tokio::time::interval(lease / 6);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let started = Instant::now();
    let mut seen: BTreeMap<ShardId, Seen> = ShardId::all(log.settings().shards)
        .map(|shard| {
            (
                shard,
                Seen {
                    last: None,
                    last_at: None,
                    seen_at: started,
                },
            )
        })
        .collect();
    let mut last_announced = started;
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stopped.changed() => return,
        }
        if !shared.releasing.load(Ordering::Relaxed) {
            match release_requested(&log, &pod).await {
                Ok(true) => {
                    tracing::info!("release requested: handing every shard over");
                    shared.releasing.store(true, Ordering::Relaxed);
                    if let Err(error) = leave(&log, &pod).await {
                        tracing::warn!(%error, "cannot leave the presence stream");
                    }
                }
                Ok(false) => {}
                Err(error) => tracing::warn!(%error, "cannot read release requests"),
            }
        }
        if shared.releasing.load(Ordering::Relaxed) {
            publish_owned(&shared);
            continue;
        }
        if last_announced.elapsed() >= lease / 3 {
            match announce(&log, &pod).await {
                Ok(()) => last_announced = Instant::now(),
                Err(error) => tracing::warn!(%error, "cannot announce the pod"),
            }
        }
        let live = match live_pods(&log).await {
            Ok(mut found) => {
                found.insert(pod.clone());
                *shared.live.lock().unwrap_or_else(PoisonError::into_inner) = found.clone();
                found
            }
            Err(error) => {
                tracing::warn!(%error, "cannot list live pods");
                shared
                    .live
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone()
            }
        };
        take_over_free(&log, &shared, &live, &mut seen).await;
        publish_owned(&shared);
    }
}

/// Tells watchers the owned shards, if they changed.
fn publish_owned(shared: &Shared) {
    let owned: Owned = shared
        .held
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .map(|(shard, held)| (*shard, held.epoch))
        .collect();
    shared.changes.send_if_modified(|current| {
        let changed = *current != owned;
        *current = owned;
        changed
    });
}

/// Stops deciding for every held shard and releases each; the shards whose release
/// did not land (taken over when their lease runs out).
async fn release_all(log: &JetStreamLog, shared: &Shared) -> Vec<ShardId> {
    let held: Vec<(ShardId, Held)> = {
        let mut held = shared.held.lock().unwrap_or_else(PoisonError::into_inner);
        std::mem::take(&mut *held).into_iter().collect()
    };
    let releases = held.iter().map(|(shard, held)| {
        let record = ShardRecord::Release {
            pod: shared.pod.clone(),
            epoch: held.epoch,
        };
        async move { (*shard, log.publish_fenced(*shard, &record, held.last).await) }
    });
    let mut failed = Vec::new();
    for (shard, outcome) in join_all(releases).await {
        if !matches!(outcome, Ok(Fenced::Landed(_))) {
            tracing::warn!(%shard, ?outcome, "release did not land");
            failed.push(shard);
        }
    }
    failed
}

fn held_now(shared: &Shared) -> Vec<(ShardId, Held)> {
    shared
        .held
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .map(|(shard, held)| (*shard, *held))
        .collect()
}

/// What became of a renewal.
enum Renewed {
    Landed(Sequence),
    /// An earlier renewal of ours is the shard's last ownership record.
    Adopted(Sequence),
    Refused,
    Failed(LogError),
}

async fn renew_due(log: &JetStreamLog, shared: &Shared) {
    let due: Vec<(ShardId, Held)> = held_now(shared)
        .into_iter()
        .filter(|(_, held)| held.last_sent_at.elapsed() >= shared.lease / 3)
        .collect();
    let renewals = due.iter().map(|(shard, held)| {
        let record = ShardRecord::Renewal {
            pod: shared.pod.clone(),
            epoch: held.epoch,
        };
        async move {
            let sent_at = Instant::now();
            let outcome = match log.publish_fenced(*shard, &record, held.last).await {
                Ok(Fenced::Landed(sequence)) => Renewed::Landed(sequence),
                // Refused: either another pod took over, or an earlier renewal of ours
                // landed and its acknowledgement was lost. Only the latter is adopted
                // (not as acknowledged: when it was sent is unknown).
                Ok(Fenced::Refused) => match log.last_ownership(*shard).await {
                    Ok(Some(last)) if last.record == record => Renewed::Adopted(last.sequence),
                    _ => Renewed::Refused,
                },
                Err(error) => Renewed::Failed(error),
            };
            (*shard, sent_at, outcome)
        }
    });
    let outcomes = join_all(renewals).await;
    let mut held = shared.held.lock().unwrap_or_else(PoisonError::into_inner);
    for (shard, sent_at, outcome) in outcomes {
        let Some(entry) = held.get_mut(&shard) else {
            continue;
        };
        entry.last_sent_at = sent_at;
        match outcome {
            Renewed::Landed(sequence) => {
                entry.last = sequence;
                entry.acknowledged_sent_at = sent_at;
            }
            Renewed::Adopted(sequence) => entry.last = sequence,
            Renewed::Refused => {
                tracing::warn!(%shard, epoch = entry.epoch, "fenced: another pod took the shard over");
                held.remove(&shard);
            }
            Renewed::Failed(error) => tracing::warn!(%shard, %error, "renewal not acknowledged"),
        }
    }
}

async fn release_preferred_elsewhere(log: &JetStreamLog, shared: &Shared) {
    let live = shared
        .live
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let to_release: Vec<(ShardId, Held)> = held_now(shared)
        .into_iter()
        .filter(|(shard, held)| {
            held.taken_at.elapsed() >= 2 * shared.lease
                && preferred_pod(*shard, live.iter().map(String::as_str))
                    != Some(shared.pod.as_str())
        })
        .collect();
    for (shard, held) in to_release {
        // Stop deciding before the release can land.
        shared
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&shard);
        let record = ShardRecord::Release {
            pod: shared.pod.clone(),
            epoch: held.epoch,
        };
        match log.publish_fenced(shard, &record, held.last).await {
            Ok(Fenced::Landed(_)) => {
                tracing::info!(%shard, epoch = held.epoch, "released to the preferred pod");
            }
            Ok(Fenced::Refused) => {
                tracing::warn!(%shard, epoch = held.epoch, "fenced: another pod took the shard over");
            }
            // Not known to have landed: keep the shard (still fenced by the log) and
            // try again at the next tick.
            Err(error) => {
                tracing::warn!(%shard, %error, "release not acknowledged");
                shared
                    .held
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(shard, held);
            }
        }
    }
}

async fn take_over_free(
    log: &JetStreamLog,
    shared: &Shared,
    live: &BTreeSet<String>,
    seen: &mut BTreeMap<ShardId, Seen>,
) {
    let owned: BTreeSet<ShardId> = held_now(shared)
        .into_iter()
        .map(|(shard, _)| shard)
        .collect();
    let watched: Vec<ShardId> = seen
        .keys()
        .filter(|shard| !owned.contains(shard))
        .copied()
        .collect();
    let looks = join_all(
        watched
            .iter()
            .map(|shard| async move { (*shard, log.last_ownership_at(*shard).await) }),
    )
    .await;
    let lease = shared.lease;
    let mut attempts = Vec::new();
    for (shard, look) in looks {
        let (last, last_at) = match look {
            Ok(Some((last, at))) => (Some(last), Some(at)),
            Ok(None) => (None, None),
            Err(error) => {
                tracing::debug!(%shard, %error, "cannot read the shard's ownership");
                continue;
            }
        };
        let Some(entry) = seen.get_mut(&shard) else {
            continue;
        };
        let last_sequence = last.as_ref().map(|stored| stored.sequence);
        if entry.last.as_ref().map(|stored| stored.sequence) != last_sequence {
            entry.last = last;
            entry.last_at = last_at;
            entry.seen_at = Instant::now();
        }
        let quiet_for = entry.seen_at.elapsed();
        let preferred_among = |excluded: Option<&str>| {
            preferred_pod(
                shard,
                live.iter()
                    .map(String::as_str)
                    .filter(|pod| Some(*pod) != excluded),
            ) == Some(shared.pod.as_str())
        };
        let (may_take, failover) = match entry.last.as_ref().map(|stored| &stored.record) {
            None | Some(ShardRecord::Release { .. }) => {
                (preferred_among(None) || quiet_for >= lease, false)
            }
            Some(ShardRecord::Takeover { pod, .. } | ShardRecord::Renewal { pod, .. }) => (
                quiet_for >= lease && (preferred_among(Some(pod)) || quiet_for >= 2 * lease),
                true,
            ),
            // Not an ownership record: cannot be on the ownership subject.
            Some(_) => (false, false),
        };
        if may_take {
            attempts.push((shard, last_sequence.unwrap_or(0), failover, entry.last_at));
        }
    }
    let record = ShardRecord::Takeover {
        pod: shared.pod.clone(),
        lease_millis: u64::try_from(lease.as_millis()).unwrap_or(u64::MAX),
    };
    let takeovers = attempts
        .iter()
        .map(|(shard, expected, failover, followed_at)| {
            let record = &record;
            async move {
                let sent_at = Instant::now();
                (
                    *shard,
                    *failover,
                    *followed_at,
                    sent_at,
                    log.publish_fenced(*shard, record, *expected).await,
                )
            }
        });
    for (shard, failover, followed_at, sent_at, outcome) in join_all(takeovers).await {
        match outcome {
            Ok(Fenced::Landed(epoch)) => {
                tracing::info!(%shard, epoch, failover, "took the shard over");
                if failover {
                    shared.failovers.fetch_add(1, Ordering::Relaxed);
                }
                shared
                    .held
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(
                        shard,
                        Held {
                            epoch,
                            last: epoch,
                            acknowledged_sent_at: sent_at,
                            last_sent_at: sent_at,
                            taken_at: sent_at,
                            followed_at,
                        },
                    );
            }
            Ok(Fenced::Refused) => tracing::debug!(%shard, "another pod took the shard first"),
            Err(error) => tracing::warn!(%shard, %error, "takeover not acknowledged"),
        }
    }
}
