//! Shared snapshots and the purge of the streams below them (docs/cluster.md,
//! "Shared snapshots and purging").
//!
//! - [`SharedSnapshots`]: the JetStream object store bucket `PUSHMON_SNAPSHOTS` (file
//!   storage, `--cluster-replicas` replicas), one object per stream (`stream-<j>`),
//!   each a `codec::StoredSharedSnapshot`: a consistent cut of the stream's folded
//!   state at a stream position, with the fold's snapshot at that position. The
//!   object's metadata names its position, so an uploader can tell without
//!   downloading whether its own is newer.
//! - [`safe_floor`] and [`purge_plan`]: what a purge after an upload may remove, pure.
//!   The purge itself is `JetStreamLog::purge_below`.
//!
//! What goes into a snapshot, who uploads it and when, and restoring from one, are
//! the fold's (`app/cluster/engine.rs`) and the start-up's (`app/cluster.rs`).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, object_store};
use tokio::io::AsyncReadExt as _;

use super::shard::{ShardId, StreamId};
use crate::domain::fence::Sequence;

/// The object store bucket holding one shared snapshot per stream.
pub const BUCKET: &str = "PUSHMON_SNAPSHOTS";

/// The metadata key of an object's stream position.
const POSITION: &str = "position";

#[derive(Debug, thiserror::Error)]
pub enum ShareError {
    #[error("the shared snapshots bucket is unavailable: {0}")]
    Unavailable(String),
    #[error("stream {stream}: cannot upload its shared snapshot: {reason}")]
    Upload { stream: StreamId, reason: String },
    #[error("stream {stream}: cannot download its shared snapshot: {reason}")]
    Download { stream: StreamId, reason: String },
}

/// The bucket of shared snapshots. Cheap to clone.
#[derive(Clone)]
pub struct SharedSnapshots {
    bucket: object_store::ObjectStore,
}

/// The object name of `stream`'s shared snapshot.
pub fn object_name(stream: StreamId) -> String {
    format!("stream-{}", stream.0)
}

impl SharedSnapshots {
    /// Opens the bucket, creating it if it does not exist.
    pub async fn open(context: &jetstream::Context, replicas: usize) -> Result<Self, ShareError> {
        if let Ok(bucket) = context.get_object_store(BUCKET).await {
            return Ok(Self { bucket });
        }
        let created = context
            .create_object_store(object_store::Config {
                bucket: BUCKET.to_owned(),
                description: Some(
                    "pushmon: one snapshot per stream of the shard logs, for new pods".to_owned(),
                ),
                storage: jetstream::stream::StorageType::File,
                num_replicas: replicas,
                ..Default::default()
            })
            .await;
        match created {
            Ok(bucket) => Ok(Self { bucket }),
            // Created meanwhile by another pod.
            Err(error) => context
                .get_object_store(BUCKET)
                .await
                .map(|bucket| Self { bucket })
                .map_err(|_| ShareError::Unavailable(error.to_string())),
        }
    }

    /// The bucket if it exists (`None`: no pod ever shared a snapshot).
    pub async fn existing(context: &jetstream::Context) -> Result<Option<Self>, ShareError> {
        use jetstream::context::ObjectStoreErrorKind;
        match context.get_object_store(BUCKET).await {
            Ok(bucket) => Ok(Some(Self { bucket })),
            Err(error) if error.kind() == ObjectStoreErrorKind::GetStore => {
                // Told apart from an unreachable server by the stream's absence.
                match context.get_stream(format!("OBJ_{BUCKET}")).await {
                    Ok(_) => Err(ShareError::Unavailable(error.to_string())),
                    Err(_) => Ok(None),
                }
            }
            Err(error) => Err(ShareError::Unavailable(error.to_string())),
        }
    }

    /// The position of `stream`'s shared snapshot, if there is one.
    pub async fn position(&self, stream: StreamId) -> Result<Option<Sequence>, ShareError> {
        match self.bucket.info(object_name(stream)).await {
            Ok(info) => Ok(info
                .metadata
                .get(POSITION)
                .and_then(|position| position.parse().ok())),
            Err(error) if error.kind() == object_store::InfoErrorKind::NotFound => Ok(None),
            Err(error) => Err(ShareError::Download {
                stream,
                reason: error.to_string(),
            }),
        }
    }

    /// Stores `bytes` as `stream`'s shared snapshot at `position`, replacing the one
    /// there.
    pub async fn upload(
        &self,
        stream: StreamId,
        position: Sequence,
        bytes: &[u8],
    ) -> Result<(), ShareError> {
        let meta = object_store::ObjectMetadata {
            name: object_name(stream),
            description: Some(format!("stream {stream} at position {position}")),
            metadata: HashMap::from([
                (POSITION.to_owned(), position.to_string()),
                (
                    "pushmon_version".to_owned(),
                    env!("CARGO_PKG_VERSION").to_owned(),
                ),
            ]),
            ..Default::default()
        };
        let mut reader = bytes;
        self.bucket
            .put(meta, &mut reader)
            .await
            .map(|_| ())
            .map_err(|error| ShareError::Upload {
                stream,
                reason: error.to_string(),
            })
    }

    /// The bytes of `stream`'s shared snapshot, if there is one.
    pub async fn download(&self, stream: StreamId) -> Result<Option<Vec<u8>>, ShareError> {
        let failed = |reason: String| ShareError::Download { stream, reason };
        let mut object = match self.bucket.get(object_name(stream)).await {
            Ok(object) => object,
            Err(error) if error.kind() == object_store::GetErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(failed(error.to_string())),
        };
        let mut bytes = Vec::with_capacity(object.info().size);
        object
            .read_to_end(&mut bytes)
            .await
            .map_err(|error| failed(error.to_string()))?;
        Ok(Some(bytes))
    }
}

/// How old an upload must be before a purge may remove the records it covers.
pub const PURGE_AGE: Duration = Duration::from_secs(150);

/// Where a purge after the latest of `uploads` (this pod's uploads of a stream, oldest
/// first: their positions and when each was stored) may cut: the position of the
/// newest *earlier* upload at least `age` old. Records up to it are covered by that
/// upload and by every later one; records after it stay, for pods that downloaded an
/// earlier snapshot or fold just behind. `None`: nothing may be removed yet.
pub fn safe_floor(
    uploads: &[(Sequence, Instant)],
    now: Instant,
    age: Duration,
) -> Option<Sequence> {
    let (_latest, earlier) = uploads.split_last()?;
    earlier
        .iter()
        .rev()
        .find(|(_, at)| now.saturating_duration_since(*at) >= age)
        .map(|(position, _)| *position)
}

/// What to purge of `stream` to remove its records up to `floor` (each item: a
/// subject filter and the sequence below which its records go): every subject, but
/// each shard's ownership subject only below its last ownership record
/// (`last_ownership`: shard → its sequence; a shard without one is left alone),
/// which fenced publishes name (`Nats-Expected-Last-Subject-Sequence`) and whose
/// sequence is the shard's epoch.
pub fn purge_plan(
    stream: StreamId,
    shards: u16,
    streams: u16,
    floor: Sequence,
    last_ownership: &BTreeMap<ShardId, Sequence>,
) -> Vec<(String, Sequence)> {
    let below = floor + 1;
    let mut plan = vec![(stream.heartbeats_subject(), below)];
    for shard in stream.shards(shards, streams) {
        plan.push((shard.heartbeat_subject(), below));
        plan.push((shard.decision_subject(), below));
        plan.push((shard.config_subject(), below));
        if let Some(last) = last_ownership.get(&shard) {
            plan.push((shard.ownership_subject(), below.min(*last)));
        }
    }
    plan.retain(|(_, below)| *below > 1);
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_purge_waits_for_an_earlier_upload_old_enough() {
        let now = Instant::now();
        let ago = |seconds| now - Duration::from_secs(seconds);
        let age = Duration::from_secs(120);
        // The latest upload alone covers nothing removable.
        assert_eq!(safe_floor(&[(500, ago(900))], now, age), None);
        assert_eq!(safe_floor(&[], now, age), None);
        // An earlier one too recent: nothing yet.
        assert_eq!(safe_floor(&[(100, ago(60)), (200, ago(0))], now, age), None);
        // The newest earlier upload old enough, never the latest.
        assert_eq!(
            safe_floor(
                &[
                    (100, ago(400)),
                    (200, ago(130)),
                    (300, ago(30)),
                    (400, ago(0))
                ],
                now,
                age
            ),
            Some(200)
        );
    }

    #[test]
    fn a_purge_keeps_each_shards_last_ownership_record_and_everything_after_the_floor() {
        // 4 shards in 2 streams: stream 1 carries shards 1 and 3.
        let last_ownership = BTreeMap::from([(ShardId(1), 40), (ShardId(3), 900)]);
        let plan = purge_plan(StreamId(1), 4, 2, 99, &last_ownership);
        assert_eq!(
            plan,
            vec![
                ("pushmon.g1.hb".to_owned(), 100),
                ("pushmon.s1.hb".to_owned(), 100),
                ("pushmon.s1.dec".to_owned(), 100),
                ("pushmon.s1.cfg".to_owned(), 100),
                // Its last ownership record (40) stays: only those below it go.
                ("pushmon.s1.own".to_owned(), 40),
                ("pushmon.s3.hb".to_owned(), 100),
                ("pushmon.s3.dec".to_owned(), 100),
                ("pushmon.s3.cfg".to_owned(), 100),
                ("pushmon.s3.own".to_owned(), 100),
            ]
        );
        // No shard of another stream, and nothing at all below sequence 1.
        assert!(plan.iter().all(|(subject, _)| !subject.contains("s0.")));
        let first = BTreeMap::from([(ShardId(1), 1)]);
        assert_eq!(
            purge_plan(StreamId(1), 4, 2, 99, &first)
                .iter()
                .filter(|(subject, _)| subject.ends_with(".own"))
                .count(),
            0
        );
    }
}
