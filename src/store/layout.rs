//! The key layout of every keyspace, in one place.
//!
//! - `events`:   monitor id (16 bytes) ++ sequence number (8 bytes, big-endian), so one
//!   monitor's history is one contiguous range in sequence order.
//! - `monitors`: monitor id (16 bytes) → the monitor's current state.
//! - `meta`:     a few fixed names → small values, and the ping key's log
//!   (`ping_key.rs`): `ping_key_log/` ++ sequence number (8 bytes, big-endian).
//! - `outbox`:   alert seq (8 bytes, big-endian) ++ channel id (16 bytes) → a delivery
//!   still owed, so deliveries are retried in the order their alerts happened.
//! - `channels`: channel id → the channel; `channel_events`: channel id ++ seq → its log.
//! - `api_keys`: API key id (16 bytes) → the key's record (`api_keys.rs`);
//!   `api_key_events`: API key id ++ seq → its log.
//! - `publications`: badge or status page id (16 bytes) → its record
//!   (`publications.rs`); `publication_events`: id ++ seq → its log.
//!
//! Every keyspace but `meta` also holds one [`MARKER`] key: the sequence number of
//! the last batch that wrote to it. It is shorter than any record's key, so it sorts
//! first, and whole-keyspace reads start at [`FIRST_RECORD`], after it. `meta` has
//! [`META_LAST_SEQ`] instead, written by every batch. Start-up compares them with the
//! high-water mark kept outside fjall (`mark.rs`).

use crate::domain::ids::{ChannelId, MonitorId};

pub const EVENTS: &str = "events";
pub const MONITORS: &str = "monitors";
pub const META: &str = "meta";
pub const OUTBOX: &str = "outbox";
pub const CHANNELS: &str = "channels";
pub const CHANNEL_EVENTS: &str = "channel_events";
pub const API_KEYS: &str = "api_keys";
pub const API_KEY_EVENTS: &str = "api_key_events";
pub const PUBLICATIONS: &str = "publications";
pub const PUBLICATION_EVENTS: &str = "publication_events";

/// The key of a keyspace's marker (see the module documentation).
pub const MARKER: &[u8] = &[0];
/// Whole-keyspace reads start here: after [`MARKER`], before every record.
pub const FIRST_RECORD: &[u8] = &[0, 0];

/// The highest sequence number ever assigned (u64, big-endian).
pub const META_LAST_SEQ: &[u8] = b"last_seq";
/// When the server was last known alive (i64 millis, big-endian).
pub const META_LAST_ALIVE: &[u8] = b"last_alive";
/// The installation id (16 bytes), made when the store is created, never changed
/// (`installation.rs`).
pub const META_INSTALLATION_ID: &[u8] = b"installation_id";
/// From this sequence number on, the outbox is replayable from the log: every orphan
/// settlement is an event (u64, big-endian). Written once, by the first start of a
/// version that records them; its presence means API keys have their log too.
pub const META_REPLAYABLE_FROM: &[u8] = b"replayable_from";

/// The current ping key (`ping_key.rs`).
pub const META_PING_KEY: &[u8] = b"ping_key";
/// The prefix of the ping key's log entries.
pub const META_PING_KEY_LOG: &[u8] = b"ping_key_log/";

/// The prefix of the clustered mode's fold positions: ++ stream (u16, big-endian) →
/// the last sequence of that stream folded into this store (u64, big-endian).
pub const META_CLUSTER_POSITION: &[u8] = b"cluster_position/";

pub fn cluster_position_key(stream: u16) -> Vec<u8> {
    let mut key = META_CLUSTER_POSITION.to_vec();
    key.extend_from_slice(&stream.to_be_bytes());
    key
}

/// The prefix of the clustered mode's fold snapshots: ++ stream (u16, big-endian) →
/// a snapshot of that stream's fold (`codec::StoredFoldSnapshot`), written in the
/// same batch as the stream's position it names.
pub const META_CLUSTER_SNAPSHOT: &[u8] = b"cluster_snapshot/";

pub fn cluster_snapshot_key(stream: u16) -> Vec<u8> {
    let mut key = META_CLUSTER_SNAPSHOT.to_vec();
    key.extend_from_slice(&stream.to_be_bytes());
    key
}

/// The stream of a fold snapshot's key; `None` if it is not one.
pub fn parse_cluster_snapshot_key(key: &[u8]) -> Option<u16> {
    let stream: [u8; 2] = key.strip_prefix(META_CLUSTER_SNAPSHOT)?.try_into().ok()?;
    Some(u16::from_be_bytes(stream))
}

/// The stream of a fold position's key; `None` if it is not one.
pub fn parse_cluster_position_key(key: &[u8]) -> Option<u16> {
    let stream: [u8; 2] = key.strip_prefix(META_CLUSTER_POSITION)?.try_into().ok()?;
    Some(u16::from_be_bytes(stream))
}

pub fn ping_key_log_key(seq: u64) -> Vec<u8> {
    let mut key = META_PING_KEY_LOG.to_vec();
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

/// The sequence number of a ping key log entry's key; `None` if it is not one.
pub fn parse_ping_key_log_key(key: &[u8]) -> Option<u64> {
    decode_u64(key.strip_prefix(META_PING_KEY_LOG)?)
}

pub const EVENT_KEY_LEN: usize = 24;

pub fn event_key(monitor: MonitorId, seq: u64) -> [u8; EVENT_KEY_LEN] {
    let mut key = [0u8; EVENT_KEY_LEN];
    key[..16].copy_from_slice(monitor.as_bytes());
    key[16..].copy_from_slice(&seq.to_be_bytes());
    key
}

/// Splits an `events` key; `None` if it is not one.
pub fn parse_event_key(key: &[u8]) -> Option<(MonitorId, u64)> {
    let id: [u8; 16] = key.get(..16)?.try_into().ok()?;
    let seq: [u8; 8] = key.get(16..EVENT_KEY_LEN)?.try_into().ok()?;
    (key.len() == EVENT_KEY_LEN).then(|| (MonitorId::from_bytes(id), u64::from_be_bytes(seq)))
}

/// An outbox entry's key: which alert, to which channel.
pub fn outbox_key(alert_seq: u64, channel: ChannelId) -> [u8; 24] {
    let mut key = [0u8; 24];
    key[..8].copy_from_slice(&alert_seq.to_be_bytes());
    key[8..].copy_from_slice(channel.as_bytes());
    key
}

pub fn channel_event_key(channel: ChannelId, seq: u64) -> [u8; 24] {
    let mut key = [0u8; 24];
    key[..16].copy_from_slice(channel.as_bytes());
    key[16..].copy_from_slice(&seq.to_be_bytes());
    key
}

pub fn api_key_event_key(key: [u8; 16], seq: u64) -> [u8; 24] {
    let mut bytes = [0u8; 24];
    bytes[..16].copy_from_slice(&key);
    bytes[16..].copy_from_slice(&seq.to_be_bytes());
    bytes
}

/// A badge's or status page's event key: its id ++ seq.
pub fn publication_event_key(id: [u8; 16], seq: u64) -> [u8; 24] {
    api_key_event_key(id, seq)
}

/// Splits a 24-byte `id ++ seq` key (`channel_events`, `api_key_events`,
/// `publication_events`).
pub fn parse_log_key(key: &[u8]) -> Option<([u8; 16], u64)> {
    let id: [u8; 16] = key.get(..16)?.try_into().ok()?;
    let seq: [u8; 8] = key.get(16..24)?.try_into().ok()?;
    (key.len() == 24).then(|| (id, u64::from_be_bytes(seq)))
}

pub fn channel_key(channel: ChannelId) -> [u8; 16] {
    *channel.as_bytes()
}

pub fn monitor_key(monitor: MonitorId) -> [u8; 16] {
    *monitor.as_bytes()
}

pub fn parse_monitor_key(key: &[u8]) -> Option<MonitorId> {
    let id: [u8; 16] = key.try_into().ok()?;
    Some(MonitorId::from_bytes(id))
}

pub fn decode_u64(value: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(value.try_into().ok()?))
}

pub fn decode_i64(value: &[u8]) -> Option<i64> {
    Some(i64::from_be_bytes(value.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_keys_sort_by_monitor_then_sequence() {
        let monitor = MonitorId::from_bytes([3; 16]);
        let early = event_key(monitor, 2);
        let late = event_key(monitor, 256);
        assert!(early < late, "big-endian sequence numbers sort numerically");
        assert_eq!(parse_event_key(&late), Some((monitor, 256)));
        assert_eq!(parse_event_key(&late[..20]), None);
    }

    /// Golden bytes: a stored fold position (clustered mode) is this key and value.
    #[test]
    fn a_fold_positions_key_and_value_are_pinned() {
        assert_eq!(
            cluster_position_key(0x0102),
            b"cluster_position/\x01\x02".to_vec()
        );
        assert_eq!(
            parse_cluster_position_key(b"cluster_position/\x00\x03"),
            Some(3)
        );
        assert_eq!(parse_cluster_position_key(b"cluster_position/\x03"), None);
        assert_eq!(parse_cluster_position_key(b"ping_key_log/\x00\x03"), None);
        // The value (the sequence, big-endian) is pinned by the store's test
        // `folded_heartbeats_and_their_streams_position_are_written_together_...`.
    }

    #[test]
    fn the_marker_sorts_before_every_record_and_reads_start_after_it() {
        let smallest = event_key(MonitorId::from_bytes([0; 16]), 0);
        assert!(MARKER < FIRST_RECORD);
        assert!(FIRST_RECORD <= &smallest[..]);
        assert!(FIRST_RECORD <= &[0u8; 16][..]);
        assert_eq!(parse_log_key(&smallest), Some(([0; 16], 0)));
        assert_eq!(parse_log_key(MARKER), None);
    }
}
