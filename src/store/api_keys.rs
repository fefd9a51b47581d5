//! The `api_keys` keyspace: API key id (16 bytes) → the key's record: name, scope,
//! creation time and the SHA-256 of its secret (never the secret).
//!
//! Keys change rarely, so each change is its own durable batch (`SyncData`) written
//! here directly, not through the event writer thread: a key exists (and works) only
//! once its record is on disk, and a revoked key is gone from disk before it stops
//! working in memory.
//!
//! Records carry a version of their own, independent of the event envelope, since
//! they evolve separately; `codec.rs` turns them into bytes (one version byte, then
//! bincode).

use std::sync::Arc;

use fjall::{Database, Keyspace, PersistMode};
use serde::{Deserialize, Serialize};

use crate::domain::api_key::{ApiKey, ApiKeyId, Scope};
use crate::domain::ids::Timestamp;

use super::codec::{self, CodecError};
use super::{EventStore, Shared, StoreError, blocking};

/// The record version written today.
const VERSION: u8 = 1;

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

pub fn encode(key: &ApiKey) -> Result<Vec<u8>, StoreError> {
    let stored = StoredApiKeyV1 {
        id: *key.id.as_bytes(),
        name: key.name.clone(),
        scope: match key.scope {
            Scope::Read => StoredScope::Read,
            Scope::Write => StoredScope::Write,
        },
        created_at_ms: key.created_at.as_millis(),
        digest: key.digest,
    };
    codec::encode_record(VERSION, &stored).map_err(corrupt)
}

pub fn decode(bytes: &[u8]) -> Result<ApiKey, StoreError> {
    let stored: StoredApiKeyV1 =
        codec::decode_record::<_, DECODE_LIMIT_BYTES>(bytes, VERSION).map_err(corrupt)?;
    Ok(ApiKey {
        id: ApiKeyId::from_bytes(stored.id),
        name: stored.name,
        scope: match stored.scope {
            StoredScope::Read => Scope::Read,
            StoredScope::Write => Scope::Write,
        },
        created_at: Timestamp::from_millis(stored.created_at_ms),
        digest: stored.digest,
    })
}

fn corrupt(error: CodecError) -> StoreError {
    StoreError::Corrupt(format!("API key record: {error}"))
}

/// The database and the `api_keys` keyspace: the one place here that knows how
/// `Shared` holds them. Unavailable while the store reopens after a failed write.
fn handles(shared: &Shared) -> Result<(Database, Keyspace), StoreError> {
    let handles = shared.handles()?;
    Ok((handles.db.clone(), handles.api_keys.clone()))
}

impl EventStore {
    /// Every API key, in id (creation) order. Blocking.
    pub fn load_api_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        let (_, api_keys) = handles(&self.shared)?;
        super::read::load_all(&api_keys, |bytes| Ok(decode(bytes)))?
            .into_iter()
            .collect()
    }

    /// Writes `key` durably; returns once it is on disk.
    pub async fn put_api_key(&self, key: &ApiKey) -> Result<(), StoreError> {
        let value = encode(key)?;
        let id = *key.id.as_bytes();
        let shared = Arc::clone(&self.shared);
        blocking(move || {
            let (db, api_keys) = handles(&shared)?;
            let mut batch = db.batch().durability(Some(PersistMode::SyncData));
            batch.insert(&api_keys, id, value);
            batch.commit()?;
            Ok(())
        })
        .await
    }

    /// Removes the key `id` durably (nothing happens if there is none); returns once
    /// the removal is on disk.
    pub async fn remove_api_key(&self, id: ApiKeyId) -> Result<(), StoreError> {
        let id = *id.as_bytes();
        let shared = Arc::clone(&self.shared);
        blocking(move || {
            let (db, api_keys) = handles(&shared)?;
            let mut batch = db.batch().durability(Some(PersistMode::SyncData));
            batch.remove(&api_keys, id);
            batch.commit()?;
            Ok(())
        })
        .await
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
        assert_eq!(keys, vec![write]);
        opened.store.close().await;
    }
}
