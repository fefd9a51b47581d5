//! Shared snapshots in the clustered mode's lifecycle (docs/cluster.md, "Shared
//! snapshots and purging"):
//!
//! - [`Sharing`]: a stream's fold, on the pod deciding for the stream's first shard,
//!   cuts the stream's folded state between two records every
//!   [`ShareSettings::every_records`] records (or [`ShareSettings::interval`] with any
//!   record), with the fold's snapshot at the same position, and uploads it in the
//!   background (only if newer than the stored one); after an upload, it purges the
//!   stream below an earlier upload old enough (`cluster::share::safe_floor`).
//! - [`restore`]: at start, before anything reads the local store, a pod with no
//!   position for a stream imports the stream's shared snapshot, if there is one,
//!   with its position and fold snapshot in one batch; its fold then starts after it,
//!   as after a restart.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::task::JoinHandle;

use crate::cluster::log::JetStreamLog;
use crate::cluster::shard::{ShardId, StreamId, shard_of, stream_of};
use crate::cluster::share::{self, SharedSnapshots};
use crate::domain::fence::{CLUSTER_WIDE_SHARD, Sequence};
use crate::prometheus;
use crate::store::{EventStore, FoldPosition, codec};

/// By default, a shared snapshot after this many records of a stream (or
/// [`DEFAULT_INTERVAL`]): see docs/cluster.md for the measurements behind it.
const DEFAULT_RECORDS: u64 = 100_000;
/// By default, a shared snapshot after this long with any record.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(600);

/// Overrides [`DEFAULT_RECORDS`] (0: never share, never purge).
pub const SHARE_RECORDS_ENV: &str = "PUSHMON_CLUSTER_SHARED_SNAPSHOT_RECORDS";
/// Overrides [`DEFAULT_INTERVAL`], in seconds.
pub const SHARE_SECONDS_ENV: &str = "PUSHMON_CLUSTER_SHARED_SNAPSHOT_SECONDS";
/// Overrides `share::PURGE_AGE`, in seconds (the tests make it short).
pub const PURGE_AGE_ENV: &str = "PUSHMON_CLUSTER_PURGE_AGE_SECONDS";

/// When and how a stream's shared snapshot is made and the stream purged.
#[derive(Clone, Copy, Debug)]
pub(super) struct ShareSettings {
    pub(super) every_records: u64,
    pub(super) interval: Duration,
    pub(super) purge_age: Duration,
}

impl ShareSettings {
    pub(super) fn from_env() -> Self {
        let number = |name: &str, default: u64| match std::env::var(name) {
            Ok(value) => value.parse().unwrap_or_else(|_| {
                tracing::warn!(%value, "{name} is not a whole number; using {default}");
                default
            }),
            Err(_) => default,
        };
        Self {
            every_records: number(SHARE_RECORDS_ENV, DEFAULT_RECORDS),
            interval: Duration::from_secs(number(SHARE_SECONDS_ENV, DEFAULT_INTERVAL.as_secs())),
            purge_age: Duration::from_secs(number(PURGE_AGE_ENV, share::PURGE_AGE.as_secs())),
        }
    }
}

/// A stream's shared snapshots, as its fold sees them.
pub(super) struct Sharing {
    bucket: SharedSnapshots,
    settings: ShareSettings,
    /// The position of the last cut taken (or of the fold's start) and when.
    at: Sequence,
    taken: Instant,
    /// This pod's uploads of the stream still above what it purged, oldest first.
    uploads: Vec<(Sequence, Instant)>,
    /// The upload (and purge) under way, which hands the uploads back.
    running: Option<JoinHandle<Vec<(Sequence, Instant)>>>,
}

impl Sharing {
    pub(super) fn new(bucket: SharedSnapshots, settings: ShareSettings, from: Sequence) -> Self {
        Self {
            bucket,
            settings,
            at: from,
            taken: Instant::now(),
            uploads: Vec::new(),
            running: None,
        }
    }

    /// Whether a cut is due at `applied_to` (and the last upload is done).
    pub(super) fn due(&mut self, applied_to: Sequence) -> bool {
        if self.settings.every_records == 0 || applied_to <= self.at {
            return false;
        }
        if self
            .running
            .as_ref()
            .is_some_and(|task| !task.is_finished())
        {
            return false;
        }
        applied_to - self.at >= self.settings.every_records
            || self.taken.elapsed() >= self.settings.interval
    }

    /// Takes the point in time of `stream`'s folded state at `applied_to` (called
    /// between two records of its fold: nothing of the stream changes meanwhile),
    /// and in the background reads the cut through it, with `fold_snapshot` (the
    /// fold's snapshot at `applied_to`), uploads it, then purges what an earlier
    /// upload allows.
    pub(super) async fn share(
        &mut self,
        log: &JetStreamLog,
        store: &EventStore,
        stream: StreamId,
        applied_to: Sequence,
        fold_snapshot: Vec<u8>,
    ) {
        if let Some(task) = self.running.take() {
            self.uploads = task.await.unwrap_or_default();
        }
        self.at = applied_to;
        self.taken = Instant::now();
        // The point in time is taken here, between two records; reading the cut
        // through it, encoding and uploading it run while the fold goes on.
        let point = match store.cut_point() {
            Ok(point) => point,
            Err(error) => {
                tracing::warn!(%stream, position = applied_to, %error, "cannot cut the stream's state for its shared snapshot");
                return;
            }
        };
        let (shards, streams) = (log.settings().shards, log.settings().streams);
        let bucket = self.bucket.clone();
        let log = log.clone();
        let mut uploads = std::mem::take(&mut self.uploads);
        let purge_age = self.settings.purge_age;
        self.running = Some(tokio::spawn(async move {
            let started = Instant::now();
            let cut = tokio::task::spawn_blocking(move || {
                let of_stream =
                    move |monitor| stream_of(shard_of(&monitor, shards), streams) == stream;
                let keyspaces = point.export(&crate::store::share::Belongs {
                    monitor: &of_stream,
                    settings: stream_of(ShardId(CLUSTER_WIDE_SHARD), streams) == stream,
                })?;
                let records: usize = keyspaces.iter().map(|(_, records)| records.len()).sum();
                let bytes = codec::encode_shared_snapshot(&codec::StoredSharedSnapshot {
                    stream: stream.0,
                    position: applied_to,
                    pushmon_version: env!("CARGO_PKG_VERSION").to_owned(),
                    store_format: codec::CURRENT_VERSION,
                    fold_snapshot,
                    keyspaces,
                })?;
                Ok::<_, crate::store::StoreError>((bytes, records))
            })
            .await;
            let (bytes, records) = match cut {
                Ok(Ok(cut)) => cut,
                Ok(Err(error)) => {
                    tracing::warn!(%stream, position = applied_to, %error, "cannot cut the stream's state for its shared snapshot");
                    return uploads;
                }
                Err(error) => {
                    tracing::warn!(%stream, position = applied_to, %error, "cannot cut the stream's state for its shared snapshot");
                    return uploads;
                }
            };
            tracing::info!(
                %stream,
                position = applied_to,
                records,
                bytes = bytes.len(),
                cut_ms = started.elapsed().as_millis() as u64,
                "cut the stream's state for its shared snapshot"
            );
            upload_and_purge(
                &bucket,
                &log,
                stream,
                applied_to,
                &bytes,
                &mut uploads,
                purge_age,
            )
            .await;
            uploads
        }));
    }
}

/// Uploads a cut at `position` if it is newer than the stored one, then purges the
/// stream up to the floor its uploads allow (`share::safe_floor`), once the stored
/// snapshot is still at or past it.
async fn upload_and_purge(
    bucket: &SharedSnapshots,
    log: &JetStreamLog,
    stream: StreamId,
    position: Sequence,
    bytes: &[u8],
    uploads: &mut Vec<(Sequence, Instant)>,
    purge_age: Duration,
) {
    let started = Instant::now();
    match bucket.position(stream).await {
        Ok(Some(stored)) if stored >= position => {
            tracing::info!(%stream, position, stored, "the stored shared snapshot is as new; not uploaded");
            return;
        }
        Ok(_) => {}
        Err(error) => {
            tracing::warn!(%stream, %error, "cannot read the stored shared snapshot's position; not uploaded");
            return;
        }
    }
    if let Err(error) = bucket.upload(stream, position, bytes).await {
        tracing::warn!(%stream, position, %error, "cannot upload the shared snapshot");
        return;
    }
    metrics::counter!(prometheus::CLUSTER_SHARED_SNAPSHOTS_TOTAL).increment(1);
    uploads.push((position, Instant::now()));
    tracing::info!(
        %stream,
        position,
        bytes = bytes.len(),
        upload_ms = started.elapsed().as_millis() as u64,
        "uploaded the stream's shared snapshot"
    );
    let Some(floor) = share::safe_floor(uploads, Instant::now(), purge_age) else {
        return;
    };
    // Another uploader may have stored an older one meanwhile (a handover): then not.
    match bucket.position(stream).await {
        Ok(Some(stored)) if stored >= floor => {}
        other => {
            tracing::warn!(%stream, floor, ?other, "the stored shared snapshot is not past the purge's floor; not purged");
            return;
        }
    }
    let (shards, streams) = (log.settings().shards, log.settings().streams);
    let mut last_ownership = std::collections::BTreeMap::new();
    for shard in stream.shards(shards, streams) {
        match log.last_ownership(shard).await {
            Ok(Some(last)) => {
                last_ownership.insert(shard, last.sequence);
            }
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(%stream, %shard, %error, "cannot read the shard's last ownership record; not purged");
                return;
            }
        }
    }
    let plan = share::purge_plan(stream, shards, streams, floor, &last_ownership);
    match log.purge_below(stream, &plan).await {
        Ok(purged) => {
            metrics::counter!(prometheus::CLUSTER_PURGED_RECORDS_TOTAL).increment(purged);
            uploads.retain(|(position, _)| *position > floor);
            tracing::info!(%stream, floor, purged, "purged the stream's records covered by an earlier shared snapshot");
        }
        Err(error) => tracing::warn!(%stream, floor, %error, "cannot purge the stream"),
    }
}

/// At start, before the local store is read: for each stream this pod's store has
/// no position of, imports the stream's shared snapshot if there is one (see the
/// module documentation). NATS unreachable or no bucket: nothing is imported, and
/// the folds read the streams from their first record (refusing to start if those
/// were purged, `engine.rs`).
pub async fn restore(
    config: &crate::config::ClusterConfig,
    store: &EventStore,
) -> anyhow::Result<()> {
    let reading = store.clone();
    let positions = tokio::task::spawn_blocking(move || reading.cluster_positions())
        .await
        .context("store read task")?
        .context("reading the local fold positions")?;
    let missing: Vec<StreamId> = StreamId::all(config.streams)
        .filter(|stream| !positions.contains_key(&stream.0))
        .collect();
    metrics::counter!(prometheus::CLUSTER_SNAPSHOT_RESTORES_TOTAL).increment(0);
    if missing.is_empty() {
        return Ok(());
    }
    let mut tries = 0;
    let (log, bucket) = loop {
        tries += 1;
        let connected = async {
            let log = JetStreamLog::connect(super::settings(config, &config.pod)).await?;
            let bucket = SharedSnapshots::existing(log.context()).await?;
            Ok::<_, anyhow::Error>((log, bucket))
        };
        match connected.await {
            Ok((log, Some(bucket))) => break (log, bucket),
            Ok((_, None)) => {
                tracing::info!(
                    "no shared snapshot in NATS yet; folding every stream from its first record"
                );
                return Ok(());
            }
            Err(error) if tries < RESTORE_TRIES => {
                tracing::warn!(%error, "cannot read the shared snapshots yet; trying again");
                tokio::time::sleep(RESTORE_RETRY).await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot read the shared snapshots; folding the streams without");
                return Ok(());
            }
        }
    };
    for stream in missing {
        let started = Instant::now();
        let Some(bytes) = bucket.download(stream).await? else {
            tracing::info!(%stream, "no shared snapshot of this stream; folding it from its first record");
            continue;
        };
        let size = bytes.len();
        let snapshot = codec::decode_shared_snapshot(&bytes)
            .with_context(|| format!("stream {stream}'s shared snapshot does not decode"))?;
        check(&snapshot, stream)?;
        let position = snapshot.position;
        let records = store
            .import_cut(
                snapshot.keyspaces,
                FoldPosition {
                    stream: stream.0,
                    sequence: position,
                },
                snapshot.fold_snapshot,
            )
            .await
            .with_context(|| format!("importing stream {stream}'s shared snapshot"))?;
        metrics::counter!(prometheus::CLUSTER_SNAPSHOT_RESTORES_TOTAL).increment(1);
        tracing::info!(
            %stream,
            position,
            records,
            bytes = size,
            from_version = %snapshot.pushmon_version,
            took_ms = started.elapsed().as_millis() as u64,
            "restored the stream's state from its shared snapshot"
        );
    }
    drop(log);
    Ok(())
}

/// How many times [`restore`] tries to reach NATS before starting without, and how
/// long it waits between two tries: the pod listens only after it, so briefly.
const RESTORE_TRIES: u32 = 3;
const RESTORE_RETRY: Duration = Duration::from_secs(1);

/// Refuses a shared snapshot this pod cannot take: another stream's, records of a
/// newer stored format, or a fold snapshot that does not decode or names another
/// position.
fn check(snapshot: &codec::StoredSharedSnapshot, stream: StreamId) -> anyhow::Result<()> {
    anyhow::ensure!(
        snapshot.stream == stream.0,
        "stream {stream}'s shared snapshot is of stream {}",
        snapshot.stream
    );
    anyhow::ensure!(
        snapshot.store_format <= codec::CURRENT_VERSION,
        "stream {stream}'s shared snapshot holds records of format {} (this pushmon reads up to {}); upgrade this pod",
        snapshot.store_format,
        codec::CURRENT_VERSION
    );
    let fold = codec::decode_fold_snapshot(&snapshot.fold_snapshot)
        .with_context(|| format!("stream {stream}'s shared fold snapshot does not decode"))?;
    anyhow::ensure!(
        fold.position == snapshot.position,
        "stream {stream}'s shared snapshot is at {} but its fold snapshot at {}",
        snapshot.position,
        fold.position
    );
    Ok(())
}

/// The file a pod left behind by a purge leaves in its data directory before it
/// exits: at the next start, the clustered mode empties the directory first
/// ([`empty_if_left_behind`]) and restores from the shared snapshots, so a restart
/// (Kubernetes restarts the container) mends it without an operator.
pub const RESET_MARKER: &str = "cluster-left-behind";

/// Where [`purged_past`] leaves [`RESET_MARKER`]: the data directory (`app.rs` sets it).
static DATA_DIR: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();

/// Before the store opens, in the clustered mode: if the last process left
/// [`RESET_MARKER`] (its copy was left behind by a purge), empties `data_dir`, whose
/// store is only a copy of the shard logs, so the start restores from the shared
/// snapshots. Remembers `data_dir` for the marker. Whether it emptied it.
pub fn empty_if_left_behind(data_dir: &std::path::Path) -> anyhow::Result<bool> {
    let _ = DATA_DIR.set(data_dir.to_path_buf());
    if !data_dir.join(RESET_MARKER).exists() {
        return Ok(false);
    }
    tracing::warn!(data_dir = %data_dir.display(), "the last process was left behind by a purge of the streams: emptying the data directory to restore from the shared snapshots");
    for entry in
        std::fs::read_dir(data_dir).with_context(|| format!("listing {}", data_dir.display()))?
    {
        let path = entry?.path();
        if path.file_name() == Some(std::ffi::OsStr::new(RESET_MARKER)) {
            continue;
        }
        let removed = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        removed.with_context(|| format!("removing {}", path.display()))?;
    }
    // Last, so a crash meanwhile empties again at the next start.
    std::fs::remove_file(data_dir.join(RESET_MARKER))
        .with_context(|| format!("removing {}", RESET_MARKER))?;
    Ok(true)
}

/// A fold found its stream purged past what this pod's copy holds.
pub(super) fn purged_past(stream: StreamId, expected: Sequence, found: Sequence) -> ! {
    let local_position = expected.saturating_sub(1);
    let remedy = if local_position == 0 {
        NOT_RESTORED_REMEDY
    } else {
        if let Some(data_dir) = DATA_DIR.get()
            && let Err(error) = std::fs::write(data_dir.join(RESET_MARKER), b"")
        {
            eprintln!(
                "pushmon: cannot leave {RESET_MARKER} in {}: {error}",
                data_dir.display()
            );
        }
        PURGED_REMEDY
    };
    tracing::error!(%stream, local_position, next_record = found, "{remedy}");
    // The log's writer is not flushed by an exit: the refusal goes to stderr too.
    eprintln!(
        "pushmon: stream {stream}: local position {local_position}, next record {found}: {remedy}"
    );
    // The process ends with the distinct code documented in docs/cluster.md.
    std::process::exit(PURGED_EXIT_CODE)
}

/// What a pod that holds nothing of a purged stream says before it exits.
const NOT_RESTORED_REMEDY: &str = "this pod holds nothing of the stream, restored no shared snapshot of it at start (NATS unreachable then, or no snapshot), and the stream no longer holds its first records; start it again once NATS answers: it restores from the shared snapshot";

/// What a pod left behind by a purge says before it exits.
const PURGED_REMEDY: &str = "this pod's copy of the stream ends before records the stream no longer holds (purged below a shared snapshot while this pod was away); it cannot catch up from here: start it again (it empties its data directory first and restores from the shared snapshot), or delete its data directory (its volume) and start it";

/// The exit code of a pod whose copy the streams' purge left behind.
pub const PURGED_EXIT_CODE: i32 = 75;
