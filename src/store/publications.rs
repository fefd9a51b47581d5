//! The `publications` keyspace: record id (16 bytes) → a badge's or a status page's
//! record. Beside it, each record's log in `publication_events` (id ++ seq): put
//! (created or changed, with the whole record), removed. The records are what
//! start-up reads; the log is what `pushmon check` replays and compares them with.
//!
//! Like API keys (`api_keys.rs`): a change goes through the writer thread, record and
//! event in one durable batch, and records and events carry versions of their own;
//! `codec.rs` turns them into bytes (one version byte, then bincode).

use fjall::Keyspace;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::domain::ids::{MonitorId, Timestamp};
use crate::domain::publication::{Badge, BadgeId, Publication, StatusPage, StatusPageId, Target};

pub use super::append::PublicationChange;
use super::append::WriteRequest;
use super::codec::{self, CodecError};
use super::{EventStore, Shared, StoreError};

/// The record version written today.
const VERSION: u8 = 1;

/// The event version written today.
const EVENT_VERSION: u8 = 1;

/// Records are small; decoding refuses to allocate more than this for one.
const DECODE_LIMIT_BYTES: usize = 256 * 1024;

/// Version 1 of a record. Frozen, append only (bincode stores the variant's index): a
/// change of layout is a new version, with the old one still decoded here.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum StoredPublicationV1 {
    Badge {
        id: [u8; 16],
        key: String,
        target: StoredTargetV1,
        label: Option<String>,
        created_at_ms: i64,
    },
    StatusPage {
        id: [u8; 16],
        slug: String,
        title: String,
        targets: Vec<StoredTargetV1>,
        created_at_ms: i64,
    },
}

/// Append only.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum StoredTargetV1 {
    Monitor([u8; 16]),
    Tag(String),
}

/// Version 1 of a record's event. Append only.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum StoredPublicationEventV1 {
    Put(StoredPublicationV1),
    Removed,
}

fn stored_target(target: &Target) -> StoredTargetV1 {
    match target {
        Target::Monitor(id) => StoredTargetV1::Monitor(*id.as_bytes()),
        Target::Tag(tag) => StoredTargetV1::Tag(tag.clone()),
    }
}

fn from_stored_target(target: StoredTargetV1) -> Target {
    match target {
        StoredTargetV1::Monitor(id) => Target::Monitor(MonitorId::from_bytes(id)),
        StoredTargetV1::Tag(tag) => Target::Tag(tag),
    }
}

fn stored(publication: &Publication) -> StoredPublicationV1 {
    match publication {
        Publication::Badge(badge) => StoredPublicationV1::Badge {
            id: *badge.id.as_bytes(),
            key: badge.key.clone(),
            target: stored_target(&badge.target),
            label: badge.label.clone(),
            created_at_ms: badge.created_at.as_millis(),
        },
        Publication::StatusPage(page) => StoredPublicationV1::StatusPage {
            id: *page.id.as_bytes(),
            slug: page.slug.clone(),
            title: page.title.clone(),
            targets: page.targets.iter().map(stored_target).collect(),
            created_at_ms: page.created_at.as_millis(),
        },
    }
}

fn from_stored(stored: StoredPublicationV1) -> Publication {
    match stored {
        StoredPublicationV1::Badge {
            id,
            key,
            target,
            label,
            created_at_ms,
        } => Publication::Badge(Badge {
            id: BadgeId::from_bytes(id),
            key,
            target: from_stored_target(target),
            label,
            created_at: Timestamp::from_millis(created_at_ms),
        }),
        StoredPublicationV1::StatusPage {
            id,
            slug,
            title,
            targets,
            created_at_ms,
        } => Publication::StatusPage(StatusPage {
            id: StatusPageId::from_bytes(id),
            slug,
            title,
            targets: targets.into_iter().map(from_stored_target).collect(),
            created_at: Timestamp::from_millis(created_at_ms),
        }),
    }
}

pub fn encode(publication: &Publication) -> Result<Vec<u8>, StoreError> {
    codec::encode_record(VERSION, &stored(publication)).map_err(corrupt)
}

pub fn decode(bytes: &[u8]) -> Result<Publication, StoreError> {
    let stored: StoredPublicationV1 =
        codec::decode_record::<_, DECODE_LIMIT_BYTES>(bytes, VERSION).map_err(corrupt)?;
    Ok(from_stored(stored))
}

/// A record's event: the whole record when put, nothing more when removed.
pub fn encode_event(change: &PublicationChange) -> Result<Vec<u8>, StoreError> {
    let stored = match change {
        PublicationChange::Put(publication) => StoredPublicationEventV1::Put(stored(publication)),
        PublicationChange::Removed(_) => StoredPublicationEventV1::Removed,
    };
    codec::encode_record(EVENT_VERSION, &stored).map_err(corrupt)
}

/// A record's event, read back from the log of the record `id`.
pub fn decode_event(id: [u8; 16], bytes: &[u8]) -> Result<PublicationChange, StoreError> {
    let stored: StoredPublicationEventV1 =
        codec::decode_record::<_, DECODE_LIMIT_BYTES>(bytes, EVENT_VERSION).map_err(corrupt)?;
    Ok(match stored {
        StoredPublicationEventV1::Put(record) => PublicationChange::Put(from_stored(record)),
        StoredPublicationEventV1::Removed => PublicationChange::Removed(id),
    })
}

fn corrupt(error: CodecError) -> StoreError {
    StoreError::Corrupt(format!("badge or status page record: {error}"))
}

/// The `publications` keyspace. Unavailable while the store reopens after a failed
/// write.
fn records(shared: &Shared) -> Result<Keyspace, StoreError> {
    Ok(shared.handles()?.publications.clone())
}

impl EventStore {
    /// Every badge and status page, in id (creation) order. Blocking.
    pub fn load_publications(&self) -> Result<Vec<Publication>, StoreError> {
        let publications = records(&self.shared)?;
        super::read::load_all(&publications, |bytes| Ok(decode(bytes)))?
            .into_iter()
            .collect()
    }

    /// Writes `publication` (its record and a `put` event) durably, creating or
    /// replacing it; returns once it is on disk.
    pub async fn put_publication(&self, publication: &Publication) -> Result<(), StoreError> {
        self.change_publication(PublicationChange::Put(publication.clone()))
            .await
    }

    /// Removes the record `id` durably, recording its removal (nothing happens if there
    /// is none); returns once the removal is on disk.
    pub async fn remove_publication(&self, id: [u8; 16]) -> Result<(), StoreError> {
        self.change_publication(PublicationChange::Removed(id))
            .await
    }

    async fn change_publication(&self, change: PublicationChange) -> Result<(), StoreError> {
        self.write_folded_publication(change, None).await
    }

    /// A change folded from the cluster-wide shard log, with its stream's position
    /// in the same batch (`None`: not folded).
    pub async fn write_folded_publication(
        &self,
        change: PublicationChange,
        position: Option<super::FoldPosition>,
    ) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        self.send(WriteRequest::Publication(change, position, reply), answer)
            .await
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn badge() -> Publication {
        Publication::Badge(Badge {
            id: BadgeId::from_bytes([7; 16]),
            key: "k".to_owned(),
            target: Target::Tag("db".to_owned()),
            label: None,
            created_at: Timestamp::from_millis(1),
        })
    }

    fn page() -> Publication {
        Publication::StatusPage(StatusPage {
            id: StatusPageId::from_bytes([8; 16]),
            slug: "s".to_owned(),
            title: "T".to_owned(),
            targets: vec![
                Target::Monitor(MonitorId::from_bytes([9; 16])),
                Target::Tag("x".to_owned()),
            ],
            created_at: Timestamp::from_millis(2),
        })
    }

    #[test]
    fn version_1_bytes_are_pinned() {
        let bytes = encode(&badge()).expect("encodes");
        let mut golden = vec![1u8, 0]; // version, Badge
        golden.extend_from_slice(&[7; 16]);
        golden.extend_from_slice(&[1, b'k']); // key
        golden.extend_from_slice(&[1, 2, b'd', b'b']); // Tag("db")
        golden.push(0); // no label
        golden.push(2); // 1 zigzagged
        assert_eq!(bytes, golden);
        assert_eq!(decode(&golden).expect("decodes"), badge());
        let page_bytes = encode(&page()).expect("encodes");
        assert_eq!(&page_bytes[..2], &[1, 1], "version, StatusPage");
        assert_eq!(decode(&page_bytes).expect("decodes"), page());
    }

    #[test]
    fn events_round_trip_and_bad_bytes_are_refused() {
        for publication in [badge(), page()] {
            let change = PublicationChange::Put(publication.clone());
            let bytes = encode_event(&change).expect("encodes");
            assert_eq!(
                decode_event(publication.record_id(), &bytes).expect("decodes"),
                change
            );
        }
        let removed = encode_event(&PublicationChange::Removed([3; 16])).expect("encodes");
        assert_eq!(removed, [EVENT_VERSION, 1]);
        assert_eq!(
            decode_event([3; 16], &removed).expect("decodes"),
            PublicationChange::Removed([3; 16])
        );
        assert!(decode(&[]).is_err());
        assert!(decode(&[2, 0]).is_err());
        let mut trailing = encode(&badge()).expect("encodes");
        trailing.push(0);
        assert!(decode(&trailing).is_err());
    }

    #[tokio::test]
    async fn records_survive_a_reopen_and_replay_from_their_log() {
        let dir = tempfile::tempdir().expect("temp dir");
        {
            let opened = EventStore::open(dir.path()).expect("opens");
            opened.store.put_publication(&badge()).await.expect("put");
            opened.store.put_publication(&page()).await.expect("put");
            let Publication::StatusPage(mut changed) = page() else {
                unreachable!()
            };
            changed.title = "New".to_owned();
            opened
                .store
                .put_publication(&Publication::StatusPage(changed))
                .await
                .expect("put");
            opened
                .store
                .remove_publication(badge().record_id())
                .await
                .expect("remove");
            opened
                .store
                .remove_publication([1; 16])
                .await
                .expect("removing nothing is fine");
            opened.store.close().await;
            drop(opened.store);
            opened.writer_thread.join().expect("writer ends");
        }
        let opened = EventStore::open(dir.path()).expect("reopens");
        let loaded = opened.store.load_publications().expect("loads");
        assert_eq!(loaded.len(), 1);
        let Publication::StatusPage(loaded_page) = &loaded[0] else {
            panic!("{loaded:?}")
        };
        assert_eq!(loaded_page.title, "New");
        let replayed = opened.store.replay().expect("replays");
        assert_eq!(
            replayed.publications.into_values().collect::<Vec<_>>(),
            loaded
        );
        opened.store.close().await;
    }
}
