//! The `api_keys` keyspace: API key id (16 bytes) → the key's record: name, scope,
//! creation time and the SHA-256 of its secret (never the secret). Beside it, each
//! key's log in `api_key_events` (key id ++ seq): created (with the record), revoked.
//! The records are what start-up reads; the log is what `pushmon check` replays and
//! compares them with.
//!
//! A change goes through the writer thread like every write, record and event in one
//! durable batch: a key exists (and works) only once its record is on disk, and a
//! revoked key is gone from disk before it stops working in memory.
//!
//! Records and events carry versions of their own, independent of the event
//! envelope, since they evolve separately; `codec.rs` turns them into bytes (one
//! version byte, then bincode).

use fjall::Keyspace;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::domain::api_key::{ApiKey, ApiKeyId, Scope};
use crate::domain::ids::Timestamp;

pub use super::append::ApiKeyChange;
use super::append::WriteRequest;
use super::codec::{self, CodecError};
use super::{EventStore, Shared, StoreError};

/// The record version written today.
const VERSION: u8 = 1;

/// The event version written today.
const EVENT_VERSION: u8 = 1;

/// Version 1 of a key's event. Frozen, append only (bincode stores the index).
#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum StoredApiKeyEventV1 {
    Created(StoredApiKeyV1),
    Revoked,
}

/// Records are tiny; decoding refuses to allocate more than this for one.
const DECODE_LIMIT_BYTES: usize = 64 * 1024;

/// Version 1 of a stored key. Frozen: a change of layout is a new version, with the
/// old one still decoded here.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct StoredApiKeyV1 {
    id: [u8; 16],
    name: String,
    scope: StoredScope,
    created_at_ms: i64,
    digest: [u8; 32],
}

/// Append only: bincode stores the variant's index.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum StoredScope {
    Read,
    Write,
}

fn stored(key: &ApiKey) -> StoredApiKeyV1 {
    StoredApiKeyV1 {
        id: *key.id.as_bytes(),
        name: key.name.clone(),
        scope: match key.scope {
            Scope::Read => StoredScope::Read,
            Scope::Write => StoredScope::Write,
        },
        created_at_ms: key.created_at.as_millis(),
        digest: key.digest,
    }
}

fn from_stored(stored: StoredApiKeyV1) -> ApiKey {
    ApiKey {
        id: ApiKeyId::from_bytes(stored.id),
        name: stored.name,
        scope: match stored.scope {
            StoredScope::Read => Scope::Read,
            StoredScope::Write => Scope::Write,
        },
        created_at: Timestamp::from_millis(stored.created_at_ms),
        digest: stored.digest,
    }
}

pub fn encode(key: &ApiKey) -> Result<Vec<u8>, StoreError> {
    codec::encode_record(VERSION, &stored(key)).map_err(corrupt)
}

pub fn decode(bytes: &[u8]) -> Result<ApiKey, StoreError> {
    let stored: StoredApiKeyV1 =
        codec::decode_record::<_, DECODE_LIMIT_BYTES>(bytes, VERSION).map_err(corrupt)?;
    Ok(from_stored(stored))
}

/// A key's event: its record when created, nothing more when revoked.
pub fn encode_event(change: &ApiKeyChange) -> Result<Vec<u8>, StoreError> {
    let stored = match change {
        ApiKeyChange::Created(key) => StoredApiKeyEventV1::Created(stored(key)),
        ApiKeyChange::Revoked(_) => StoredApiKeyEventV1::Revoked,
    };
    codec::encode_record(EVENT_VERSION, &stored).map_err(corrupt)
}

/// A key's event, read back from the log of the key `id`.
pub fn decode_event(id: ApiKeyId, bytes: &[u8]) -> Result<ApiKeyChange, StoreError> {
    let stored: StoredApiKeyEventV1 =
        codec::decode_record::<_, DECODE_LIMIT_BYTES>(bytes, EVENT_VERSION).map_err(corrupt)?;
    Ok(match stored {
        StoredApiKeyEventV1::Created(record) => ApiKeyChange::Created(from_stored(record)),
        StoredApiKeyEventV1::Revoked => ApiKeyChange::Revoked(id),
    })
}

fn corrupt(error: CodecError) -> StoreError {
    StoreError::Corrupt(format!("API key record: {error}"))
}

/// The `api_keys` keyspace: the one place here that knows how `Shared` holds it.
/// Unavailable while the store reopens after a failed write.
fn records(shared: &Shared) -> Result<Keyspace, StoreError> {
    Ok(shared.handles()?.api_keys.clone())
}

impl EventStore {
    /// Every API key, in id (creation) order. Blocking.
    pub fn load_api_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        let api_keys = records(&self.shared)?;
        super::read::load_all(&api_keys, |bytes| Ok(decode(bytes)))?
            .into_iter()
            .collect()
    }

    /// Writes `key` (its record and its `created` event) durably; returns once it is
    /// on disk.
    pub async fn put_api_key(&self, key: &ApiKey) -> Result<(), StoreError> {
        self.change_api_key(ApiKeyChange::Created(key.clone()))
            .await
    }

    /// Removes the key `id` durably, recording its revocation (nothing happens if
    /// there is none); returns once the removal is on disk.
    pub async fn remove_api_key(&self, id: ApiKeyId) -> Result<(), StoreError> {
        self.change_api_key(ApiKeyChange::Revoked(id)).await
    }

    async fn change_api_key(&self, change: ApiKeyChange) -> Result<(), StoreError> {
        self.write_folded_api_key(change, None).await
    }

    /// A change folded from the cluster-wide shard log, with its stream's position
    /// in the same batch (`None`: not folded).
    pub async fn write_folded_api_key(
        &self,
        change: ApiKeyChange,
        position: Option<super::FoldPosition>,
    ) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        self.send(WriteRequest::ApiKey(change, position, reply), answer)
            .await
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(scope: Scope) -> ApiKey {
        ApiKey {
            id: ApiKeyId::from_bytes([7; 16]),
            name: "grafana".to_owned(),
            scope,
            created_at: Timestamp::from_millis(1_800_000_000_000),
            digest: [9; 32],
        }
    }

    #[test]
    fn version_1_bytes_are_pinned() {
        let bytes = encode(&key(Scope::Write)).expect("encodes");
        let mut golden = vec![1u8];
        golden.extend_from_slice(&[7; 16]);
        golden.extend_from_slice(&[7, b'g', b'r', b'a', b'f', b'a', b'n', b'a']);
        golden.push(1); // Write
        // 1_800_000_000_000 zigzagged, as bincode's varint: 0xfd then 8 bytes LE.
        golden.push(0xfd);
        golden.extend_from_slice(&3_600_000_000_000u64.to_le_bytes());
        golden.extend_from_slice(&[9; 32]);
        assert_eq!(bytes, golden);
        assert_eq!(decode(&golden).expect("decodes"), key(Scope::Write));
    }

    #[test]
    fn round_trips_and_refuses_bad_records() {
        let bytes = encode(&key(Scope::Read)).expect("encodes");
        assert_eq!(decode(&bytes).expect("decodes"), key(Scope::Read));
        assert!(decode(&[]).is_err());
        let mut unknown = bytes.clone();
        unknown[0] = 2;
        assert!(decode(&unknown).is_err());
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(decode(&trailing).is_err());
        assert!(decode(&bytes[..bytes.len() - 1]).is_err());
        let mut bad_scope = bytes;
        bad_scope[1 + 16 + 8] = 9;
        assert!(decode(&bad_scope).is_err());
    }

    #[tokio::test]
    async fn keys_survive_a_reopen_and_removal_is_durable() {
        let dir = tempfile::tempdir().expect("temp dir");
        let read = key(Scope::Read);
        let write = ApiKey {
            id: ApiKeyId::from_bytes([8; 16]),
            scope: Scope::Write,
            ..key(Scope::Write)
        };
        {
            let opened = EventStore::open(dir.path()).expect("opens");
            opened.store.put_api_key(&read).await.expect("put");
            opened.store.put_api_key(&write).await.expect("put");
            opened.store.remove_api_key(read.id).await.expect("remove");
            opened.store.close().await;
            drop(opened.store);
            opened.writer_thread.join().expect("writer ends");
        }
        let opened = EventStore::open(dir.path()).expect("reopens");
        let keys = opened.store.load_api_keys().expect("loads");
        assert_eq!(keys, vec![write.clone()]);
        // The log replays to the same keys.
        let replayed = opened.store.replay().expect("replays");
        assert_eq!(
            replayed.api_keys.into_values().collect::<Vec<_>>(),
            vec![write]
        );
        opened.store.close().await;
    }

    #[test]
    fn events_round_trip_and_the_created_one_holds_the_record() {
        let created = ApiKeyChange::Created(key(Scope::Write));
        let bytes = encode_event(&created).expect("encodes");
        assert_eq!(bytes[0], EVENT_VERSION);
        assert_eq!(bytes[1], 0, "Created is variant 0");
        assert_eq!(
            &bytes[2..],
            &encode(&key(Scope::Write)).expect("encodes")[1..]
        );
        let id = key(Scope::Write).id;
        assert_eq!(decode_event(id, &bytes).expect("decodes"), created);
        let revoked = encode_event(&ApiKeyChange::Revoked(id)).expect("encodes");
        assert_eq!(revoked, [EVENT_VERSION, 1]);
        assert_eq!(
            decode_event(id, &revoked).expect("decodes"),
            ApiKeyChange::Revoked(id)
        );
        assert!(decode_event(id, &[EVENT_VERSION, 7]).is_err());
    }
}
