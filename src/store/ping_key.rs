//! The installation's ping key (`domain::ping_key`) in `meta`: its current value under
//! `ping_key`, what start-up reads, and its log, one entry per key it has had, under
//! `ping_key_log/` ++ sequence number (big-endian), what `pushmon check` replays and
//! compares the record with. Both are written in one durable batch: when the store is
//! first opened to serve (`open.rs`), and by the writer thread for a rotation.
//!
//! Record and entry carry a version byte of their own (`codec::encode_record`), then
//! the key's 16 bytes.

use fjall::PersistMode;
use tokio::sync::oneshot;

use crate::domain::ping_key::PingKey;

use super::append::WriteRequest;
use super::codec::{self, CodecError};
use super::{EventStore, Handles, StoreError, layout};

/// The record and entry version written today.
const VERSION: u8 = 1;

/// A ping key's record or log entry: `VERSION`, then its 16 bytes.
pub(super) fn encode(key: &PingKey) -> Result<Vec<u8>, StoreError> {
    codec::encode_record(VERSION, key.as_bytes()).map_err(corrupt)
}

fn decode(bytes: &[u8]) -> Result<PingKey, StoreError> {
    codec::decode_record::<[u8; 16], 64>(bytes, VERSION)
        .map(PingKey::from_bytes)
        .map_err(corrupt)
}

fn corrupt(error: CodecError) -> StoreError {
    StoreError::Corrupt(format!("ping key: {error}"))
}

/// Puts `key` in `batch` as the current ping key, logged at `seq`.
pub(super) fn stage(
    handles: &Handles,
    batch: &mut fjall::OwnedWriteBatch,
    key: &PingKey,
    seq: u64,
) -> Result<(), StoreError> {
    let value = encode(key)?;
    batch.insert(&handles.meta, layout::META_PING_KEY, value.clone());
    batch.insert(&handles.meta, layout::ping_key_log_key(seq), value);
    Ok(())
}

/// Makes the store's first ping key, durably, unless it has one. Called when the
/// store is opened to serve, before the writer starts, so nothing races it.
/// Unnumbered, like the installation id: logged at sequence number 0, before every
/// rotation, and written before every later `meta` write, so it cannot be lost
/// without them (which the mark catches).
pub(super) fn create_if_missing(handles: &Handles) -> Result<(), StoreError> {
    if handles.meta.get(layout::META_PING_KEY)?.is_some() {
        return Ok(());
    }
    let key = PingKey::from_bytes(rand::random());
    let mut batch = handles.db.batch().durability(Some(PersistMode::SyncData));
    stage(handles, &mut batch, &key, 0)?;
    batch.commit()?;
    Ok(())
}

impl EventStore {
    /// The current ping key, as its record says (`None` in a store never served by a
    /// version that has one). Blocking (one small read).
    pub fn ping_key(&self) -> Result<Option<PingKey>, StoreError> {
        self.shared
            .handles()?
            .meta
            .get(layout::META_PING_KEY)?
            .map(|value| decode(&value))
            .transpose()
    }

    /// The ping key its log ends with, and how many keys it holds. Blocking.
    pub fn replay_ping_key(&self) -> Result<(Option<PingKey>, usize), StoreError> {
        let handles = self.shared.handles()?;
        let mut current = None;
        let mut count = 0;
        for guard in handles.meta.prefix(layout::META_PING_KEY_LOG) {
            let (key, value) = guard.into_inner()?;
            if layout::parse_ping_key_log_key(&key).is_none() {
                return Err(StoreError::Corrupt("malformed ping key log key".to_owned()));
            }
            current = Some(decode(&value)?);
            count += 1;
        }
        Ok((current, count))
    }

    /// Makes `key` the ping key, durably (record and log entry in one batch); returns
    /// once it is on disk.
    pub async fn rotate_ping_key(&self, key: PingKey) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        self.send(WriteRequest::PingKey(key, reply), answer)
            .await
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_1_bytes_are_pinned() {
        let key = PingKey::from_bytes([7; 16]);
        let bytes = encode(&key).expect("encodes");
        let mut golden = vec![1u8];
        golden.extend_from_slice(&[7; 16]);
        assert_eq!(bytes, golden);
        assert_eq!(decode(&golden).expect("decodes"), key);
        assert!(decode(&[2; 17]).is_err());
        assert!(decode(&golden[..10]).is_err());
    }

    #[tokio::test]
    async fn the_first_key_is_made_once_and_a_rotation_is_logged_and_survives_a_reopen() {
        let dir = tempfile::tempdir().expect("temp dir");
        let rotated = PingKey::from_bytes([9; 16]);
        let first = {
            let opened = EventStore::open(dir.path()).expect("opens");
            let first = opened
                .store
                .ping_key()
                .expect("reads")
                .expect("made at open");
            assert_eq!(
                opened.store.replay_ping_key().expect("replays"),
                (Some(first), 1)
            );
            opened
                .store
                .rotate_ping_key(rotated)
                .await
                .expect("rotates");
            opened.store.close().await;
            drop(opened.store);
            opened.writer_thread.join().expect("writer ends");
            first
        };
        assert_ne!(first, rotated);
        let opened = EventStore::open(dir.path()).expect("reopens");
        assert_eq!(opened.store.ping_key().expect("reads"), Some(rotated));
        assert_eq!(
            opened.store.replay_ping_key().expect("replays"),
            (Some(rotated), 2)
        );
        opened.store.close().await;
    }

    /// What `pushmon check` compares: a record that is not its log's last entry shows.
    #[tokio::test]
    async fn a_record_that_differs_from_its_log_shows_in_the_replay() {
        let dir = tempfile::tempdir().expect("temp dir");
        let opened = EventStore::open(dir.path()).expect("opens");
        let (logged, _) = opened.store.replay_ping_key().expect("replays");
        let forged = PingKey::from_bytes([1; 16]);
        opened
            .store
            .shared
            .handles()
            .expect("handles")
            .meta
            .insert(layout::META_PING_KEY, encode(&forged).expect("encodes"))
            .expect("writes");
        assert_eq!(opened.store.ping_key().expect("reads"), Some(forged));
        assert_eq!(
            opened.store.replay_ping_key().expect("replays"),
            (logged, 1)
        );
        assert_ne!(logged, Some(forged));
        opened.store.close().await;
    }
}
