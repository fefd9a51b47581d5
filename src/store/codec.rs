//! The stored byte format: one version byte, then the bincode (serde, standard config)
//! encoding of the payload. The only code that touches bincode.
//!
//! Events, states, deliveries and channels share one envelope version
//! ([`CURRENT_VERSION`]). To change one of their types, add a new version: keep
//! decoding the old one and upcast it to the current type here, so every reader above
//! this module sees only current types. API keys (`api_keys.rs`) version their record
//! on their own, through [`encode_record`] and [`decode_record`], and so do the
//! records of the clustered mode's shard logs ([`encode_shard_record`]).

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::domain::alert::Delivery;
use crate::domain::channel::{Channel, ChannelEvent};
use crate::domain::event::Event;
use crate::domain::fence::ShardRecord;
use crate::domain::ids::Timestamp;
use crate::domain::machine::Monitor;

/// The envelope version written today.
///
/// - 1: the first format.
/// - 2: `MonitorConfig` gained `key` and `tags`, `Channel` gained `key`
///   (declarative monitors). Version 1 records are upcast by `v1` to version 2 with
///   no key and no tags.
/// - 3: jobs. `MonitorConfig` gained a schedule, run limits, thresholds, reminders,
///   maintenance windows and a slug; `PushToken` may be an imported text token; the
///   monitor's state gained runs, counters and what its channels were told; `Alert`
///   gained why it is sent, an exit status and an output excerpt; `Event` gained
///   variants (appended) and `DownReason` reasons (appended). Version 2 records are
///   upcast by `v2` with the defaults (an interval monitor, thresholds 1, no
///   reminders, no maintenance; a native token; a `down` state alerted).
/// - 4: `Channel` gained `send_on`, and `ChannelKind` kinds (appended). Version 3
///   (and 2) channel records are upcast by `v3` with `send_on` both (every alert, as
///   before); no other type changed.
/// - 5: labels. `MonitorConfig` gained `labels` and `severity`; `Alert` gained the
///   monitor's severity, labels and tags. Version 3 and 4 events, states and
///   deliveries are upcast by `v4` with no labels and severity `critical` (the
///   severity every alert had before).
/// - 6: muting. The monitor's state gained `mute`; `Event` gained variants
///   (appended). Version 5 states are upcast by `v5` as not muted; version 5 events
///   and deliveries decode as they are (their layouts did not change).
/// - 7: fleets, dependencies, restricted pushes and the guard. `Heartbeat` gained
///   `instance`; `MonitorConfig` gained `min_instances`, `instance_retention_seconds`,
///   `parents`, `dependency_grace_seconds`, `allowed_sources` and `signing_secret`;
///   the monitor's state gained `instances` and `held_alert`; `Alert` gained
///   `missing_instances`; `Event`, `Status` and `DownReason` gained variants
///   (appended). Version 5 and 6 records are upcast by `v6` as ordinary, unrestricted
///   monitors with no parents, heartbeats naming no instance.
pub const CURRENT_VERSION: u8 = 7;

/// Decoding refuses to allocate more than this for one record (records are small: the
/// largest is a run's end with its output, at most 64 KiB).
const DECODE_LIMIT_BYTES: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("empty record")]
    Empty,
    #[error("unknown format version {0}")]
    UnknownVersion(u8),
    #[error("cannot encode: {0}")]
    Encode(String),
    #[error("cannot decode: {0}")]
    Decode(String),
    #[error("{0} trailing bytes after the record")]
    Trailing(usize),
}

/// One channel event as it sits in the `channel_events` keyspace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredChannelEvent {
    pub at: Timestamp,
    pub event: ChannelEvent,
}

/// One event as it sits in the `events` keyspace; its key holds monitor and sequence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredEvent {
    pub at: Timestamp,
    pub event: Event,
}

pub fn encode_event(stored: &StoredEvent) -> Result<Vec<u8>, CodecError> {
    encode(stored)
}

pub fn decode_event(bytes: &[u8]) -> Result<StoredEvent, CodecError> {
    match version_of(bytes)? {
        1 => decode_body::<v1::StoredEvent>(bytes).map(|stored| stored.upcast().upcast()),
        2 => decode_body::<v2::StoredEvent>(bytes).map(v2::StoredEvent::upcast),
        3 | 4 => decode_body::<v4::StoredEvent>(bytes).map(v4::StoredEvent::upcast),
        5 | 6 => decode_body::<v6::StoredEvent>(bytes).map(v6::StoredEvent::upcast),
        _ => decode(bytes),
    }
}

/// The events of one decision in a shard log's decision record (`ShardRecord::
/// Decision::event`): each encoded as a stored event (with its own version), together.
pub fn encode_decided(events: &[crate::domain::event::Stamped]) -> Result<Vec<u8>, CodecError> {
    let encoded = events
        .iter()
        .map(|stamped| {
            encode_event(&StoredEvent {
                at: stamped.at,
                event: stamped.event.clone(),
            })
        })
        .collect::<Result<Vec<Vec<u8>>, _>>()?;
    encode_record(DECIDED_VERSION, &encoded)
}

pub fn decode_decided(bytes: &[u8]) -> Result<Vec<crate::domain::event::Stamped>, CodecError> {
    let encoded: Vec<Vec<u8>> = decode_record::<_, MAX_DECIDED_BYTES>(bytes, DECIDED_VERSION)?;
    encoded
        .iter()
        .map(|bytes| {
            decode_event(bytes).map(|stored| crate::domain::event::Stamped {
                at: stored.at,
                event: stored.event,
            })
        })
        .collect()
}

/// The envelope version of a decision's events in a shard record.
pub const DECIDED_VERSION: u8 = 1;
const MAX_DECIDED_BYTES: usize = 1 << 20;

pub fn encode_monitor(monitor: &Monitor) -> Result<Vec<u8>, CodecError> {
    encode(monitor)
}

pub fn decode_monitor(bytes: &[u8]) -> Result<Monitor, CodecError> {
    match version_of(bytes)? {
        1 => decode_body::<v1::Monitor>(bytes).map(|monitor| monitor.upcast().upcast()),
        2 => decode_body::<v2::Monitor>(bytes).map(v2::Monitor::upcast),
        3 | 4 => decode_body::<v4::Monitor>(bytes).map(v4::Monitor::upcast),
        5 => decode_body::<v5::Monitor>(bytes).map(v5::Monitor::upcast),
        6 => decode_body::<v6::Monitor>(bytes).map(v6::Monitor::upcast),
        _ => decode(bytes),
    }
}

pub fn encode_delivery(delivery: &Delivery) -> Result<Vec<u8>, CodecError> {
    encode(delivery)
}

pub fn decode_delivery(bytes: &[u8]) -> Result<Delivery, CodecError> {
    match version_of(bytes)? {
        1 | 2 => decode_body::<v2::Delivery>(bytes).map(v2::Delivery::upcast),
        3 | 4 => decode_body::<v4::Delivery>(bytes).map(v4::Delivery::upcast),
        5 | 6 => decode_body::<v6::Delivery>(bytes).map(v6::Delivery::upcast),
        _ => decode(bytes),
    }
}

pub fn encode_channel(channel: &Channel) -> Result<Vec<u8>, CodecError> {
    encode(channel)
}

pub fn decode_channel(bytes: &[u8]) -> Result<Channel, CodecError> {
    match version_of(bytes)? {
        1 => decode_body::<v1::Channel>(bytes).map(|channel| channel.upcast().upcast()),
        2 | 3 => decode_body::<v3::Channel>(bytes).map(v3::Channel::upcast),
        _ => decode(bytes),
    }
}

pub fn encode_channel_event(event: &StoredChannelEvent) -> Result<Vec<u8>, CodecError> {
    encode(event)
}

pub fn decode_channel_event(bytes: &[u8]) -> Result<StoredChannelEvent, CodecError> {
    match version_of(bytes)? {
        1 => decode_body::<v1::StoredChannelEvent>(bytes).map(|event| event.upcast().upcast()),
        2 | 3 => decode_body::<v3::StoredChannelEvent>(bytes).map(v3::StoredChannelEvent::upcast),
        _ => decode(bytes),
    }
}

/// The envelope version of a shard log's record (`domain::fence::ShardRecord`, the
/// clustered mode's log in `cluster/`), versioned on its own.
///
/// - 1: the first format.
pub const SHARD_RECORD_VERSION: u8 = 1;

pub fn encode_shard_record(record: &ShardRecord) -> Result<Vec<u8>, CodecError> {
    encode_record(SHARD_RECORD_VERSION, record)
}

pub fn decode_shard_record(bytes: &[u8]) -> Result<ShardRecord, CodecError> {
    decode_record::<ShardRecord, DECODE_LIMIT_BYTES>(bytes, SHARD_RECORD_VERSION)
}

/// A job's signal as it sits in a shard log's signal record (`ShardRecord::Signal::
/// event`): the signal and the time the pod that took it received it, which every
/// pod decides it at.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredSignal {
    pub at: Timestamp,
    pub signal: crate::domain::signal::Signal,
}

/// The envelope version of a signal in a shard record, versioned on its own.
///
/// - 1: the first format.
pub const SIGNAL_VERSION: u8 = 1;

pub fn encode_signal(stored: &StoredSignal) -> Result<Vec<u8>, CodecError> {
    encode_record(SIGNAL_VERSION, stored)
}

pub fn decode_signal(bytes: &[u8]) -> Result<StoredSignal, CodecError> {
    decode_record::<StoredSignal, DECODE_LIMIT_BYTES>(bytes, SIGNAL_VERSION)
}

/// A snapshot of the clustered mode's fold of one stream, stored in the local copy
/// with the stream's position in the same batch (`meta/cluster_snapshot/<stream>`,
/// `EventStore::write_fold_snapshot`): what a restarted pod would otherwise rebuild
/// by folding the stream again from its first record (docs/cluster.md, "Restarts").
/// Stored: never reorder fields; a new field means a new version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredFoldSnapshot {
    /// The stream position it is valid at: every record up to it folded.
    pub position: u64,
    /// The rule's fold of each of the stream's shards that has a record.
    pub shards: Vec<(u16, crate::domain::fence::ShardFoldSnapshot)>,
    /// The ids of effective decisions' alerts still owed in this pod's outbox:
    /// (monitor, the alert's time in milliseconds, whether a `down`) → id.
    pub alert_ids: Vec<(crate::domain::ids::MonitorId, i64, bool, String)>,
    /// The delivery outcomes folded that this pod has not recorded in its copy yet.
    pub outcomes: Vec<StoredOutcome>,
}

/// A delivery outcome folded from a stream, as a fold snapshot holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredOutcome {
    pub monitor: crate::domain::ids::MonitorId,
    pub channel: crate::domain::ids::ChannelId,
    pub alert: String,
    pub attempts: u32,
    pub error: Option<String>,
    pub at: Option<Timestamp>,
}

/// The envelope version of a fold snapshot, versioned on its own.
///
/// - 1: the first format.
pub const FOLD_SNAPSHOT_VERSION: u8 = 1;

/// A fold snapshot holds every monitor of its streams: allowed far more than a record.
const FOLD_SNAPSHOT_LIMIT_BYTES: usize = 256 << 20;

pub fn encode_fold_snapshot(snapshot: &StoredFoldSnapshot) -> Result<Vec<u8>, CodecError> {
    encode_record(FOLD_SNAPSHOT_VERSION, snapshot)
}

pub fn decode_fold_snapshot(bytes: &[u8]) -> Result<StoredFoldSnapshot, CodecError> {
    decode_record::<StoredFoldSnapshot, FOLD_SNAPSHOT_LIMIT_BYTES>(bytes, FOLD_SNAPSHOT_VERSION)
}

/// A stream's shared snapshot (clustered mode, `cluster/share.rs`): a consistent cut
/// of everything a pod's local copy got from folding one stream up to `position`,
/// with the fold's snapshot at the same position, so that a new pod starts from it
/// instead of the stream's first record (docs/cluster.md, "Shared snapshots").
/// Stored (an object in NATS): never reorder fields; a new field means a new version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredSharedSnapshot {
    /// The stream it is a cut of.
    pub stream: u16,
    /// The stream position it is valid at: every record up to it folded.
    pub position: u64,
    /// The pushmon version that made it (`CARGO_PKG_VERSION`).
    pub pushmon_version: String,
    /// The envelope version ([`CURRENT_VERSION`]) of the local records it carries:
    /// a pod whose own is older refuses it.
    pub store_format: u8,
    /// The fold's snapshot at `position` ([`encode_fold_snapshot`]'s bytes).
    pub fold_snapshot: Vec<u8>,
    /// The uploading pod's local records of the stream, per keyspace (by its name in
    /// `layout`), as stored there: (key, value), in key order. Their sequence numbers
    /// are the uploader's; an import shifts them past the importer's own.
    pub keyspaces: Vec<KeyspaceRecords>,
}

/// Records of one keyspace of the local store (by its name in `layout`): (key,
/// value), in key order.
pub type KeyspaceRecords = (String, Vec<(Vec<u8>, Vec<u8>)>);

/// The envelope version of a shared snapshot, versioned on its own.
///
/// - 1: the first format.
pub const SHARED_SNAPSHOT_VERSION: u8 = 1;

/// A shared snapshot holds every monitor's history in its stream.
const SHARED_SNAPSHOT_LIMIT_BYTES: usize = 1 << 31;

pub fn encode_shared_snapshot(snapshot: &StoredSharedSnapshot) -> Result<Vec<u8>, CodecError> {
    encode_record(SHARED_SNAPSHOT_VERSION, snapshot)
}

pub fn decode_shared_snapshot(bytes: &[u8]) -> Result<StoredSharedSnapshot, CodecError> {
    decode_record::<StoredSharedSnapshot, SHARED_SNAPSHOT_LIMIT_BYTES>(
        bytes,
        SHARED_SNAPSHOT_VERSION,
    )
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
    encode_record(CURRENT_VERSION, value)
}

/// A record of a type versioned on its own: `version`, then the bincode body.
pub fn encode_record<T: Serialize>(version: u8, value: &T) -> Result<Vec<u8>, CodecError> {
    let mut bytes = Vec::with_capacity(96);
    bytes.push(version);
    let body = bincode::serde::encode_to_vec(value, bincode::config::standard())
        .map_err(|error| CodecError::Encode(error.to_string()))?;
    bytes.extend_from_slice(&body);
    Ok(bytes)
}

/// Decodes a record written by [`encode_record`] with `version` (any other version is
/// refused), allocating at most `LIMIT` bytes for it.
pub fn decode_record<T: DeserializeOwned, const LIMIT: usize>(
    bytes: &[u8],
    version: u8,
) -> Result<T, CodecError> {
    match version_of(bytes)? {
        found if found == version => decode_body_within::<T, LIMIT>(bytes),
        other => Err(CodecError::UnknownVersion(other)),
    }
}

/// Whether `bytes` is a record of the current version (a snapshot that needs no
/// rewriting).
pub fn is_current(bytes: &[u8]) -> bool {
    bytes.first() == Some(&CURRENT_VERSION)
}

/// Whether `bytes`, a monitor's snapshot, is of a version whose upcast cannot know
/// all of the current state: before version 3, which added what the state derives
/// from the log (runs, the last success, why it is down). A version 3, 4 or 5
/// snapshot upcasts whole (version 4 changed channels only; version 5 added only
/// configuration, which their logs hold none of either; version 6 added the mute,
/// which no older log can hold).
pub fn snapshot_needs_its_log(bytes: &[u8]) -> bool {
    bytes.first().is_some_and(|version| *version < 3)
}

fn version_of(bytes: &[u8]) -> Result<u8, CodecError> {
    bytes.first().copied().ok_or(CodecError::Empty)
}

/// Decodes a record of the current version, or of an older one for the types whose
/// layout has not changed since (channels: since 4).
fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    match version_of(bytes)? {
        1..=CURRENT_VERSION => decode_body(bytes),
        other => Err(CodecError::UnknownVersion(other)),
    }
}

/// Decodes the bincode body after the version byte, refusing trailing bytes.
fn decode_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    decode_body_within::<T, DECODE_LIMIT_BYTES>(bytes)
}

/// [`decode_body`], allocating at most `LIMIT` bytes.
fn decode_body_within<T: DeserializeOwned, const LIMIT: usize>(
    bytes: &[u8],
) -> Result<T, CodecError> {
    let body = bytes.get(1..).ok_or(CodecError::Empty)?;
    let config = bincode::config::standard().with_limit::<LIMIT>();
    let (value, read) = bincode::serde::decode_from_slice(body, config)
        .map_err(|error| CodecError::Decode(error.to_string()))?;
    if read != body.len() {
        return Err(CodecError::Trailing(body.len() - read));
    }
    Ok(value)
}

/// The version 1 layouts of the types that changed in version 2, and their upcasts
/// to version 2 (which `v2` upcasts on). Frozen: never edit these.
mod v1;

/// The version 3 (and 2) layout of a channel, before `send_on`, and its upcast to
/// version 4. `ChannelKind` is the current one: its kinds are only ever appended, so
/// it decodes every older record. Frozen: never edit these.
mod v3;

/// The version 2 layouts of the types that changed in version 3, and their upcasts
/// to the current types (with the defaults of version 4's additions). Frozen: never
/// edit these layouts.
mod v2;

/// The version 3 and 4 layouts (the same: version 4 changed channels only) of the
/// types that changed in version 5, and their upcasts to the current types: no
/// labels, severity `critical`, and for an alert the tags it had no room for left
/// empty. Frozen: never edit these.
mod v4;

/// The version 5 layout of a monitor's state, before `mute`, and its upcast: not
/// muted. Frozen: never edit it.
mod v5;

/// The version 5 and 6 layouts (the same, but for the state's `mute`, which `v5`
/// covers) of the types that changed in version 7, and their upcasts: an ordinary,
/// unrestricted monitor with no parents, heartbeats naming no instance. Frozen: never
/// edit these.
mod v6;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::event::{DownReason, Heartbeat, HeartbeatText, MonitorConfig, PushStatus};
    use crate::domain::ids::{MonitorId, PushToken};
    use proptest::prelude::*;

    fn heartbeat_event() -> StoredEvent {
        StoredEvent {
            at: Timestamp::from_millis(1_764_106_200_000),
            event: Event::HeartbeatReceived(Heartbeat {
                status: PushStatus::Up,
                msg: Some(HeartbeatText::truncated("ok".to_owned())),
                value: Some(1.5),
                instance: None,
            }),
        }
    }

    /// Golden bytes: if this test fails, the stored format changed and old logs would no
    /// longer decode. Add a version and an upcaster instead of editing these bytes.
    /// A heartbeat's layout is the same in versions 2 to 6; version 7 added one byte
    /// for a heartbeat that names no instance (the push path encodes nothing more).
    #[test]
    fn heartbeat_bytes_are_stable() {
        let bytes = encode_event(&heartbeat_event()).expect("encodes");
        let golden_7: &[u8] = &[
            7, 253, 128, 199, 216, 121, 53, 3, 0, 0, 4, 0, 1, 2, 111, 107, 1, 0, 0, 0, 0, 0, 0,
            248, 63, 0,
        ];
        assert_eq!(bytes, golden_7);
        let golden: &[u8] = &[
            4, 253, 128, 199, 216, 121, 53, 3, 0, 0, 4, 0, 1, 2, 111, 107, 1, 0, 0, 0, 0, 0, 0,
            248, 63,
        ];
        assert_eq!(decode_event(golden).expect("decodes"), heartbeat_event());
        for version in [5, 6] {
            let mut older = golden.to_vec();
            older[0] = version;
            assert_eq!(decode_event(&older).expect("decodes"), heartbeat_event());
        }
        // A heartbeat from instance `web-1`.
        let mut from_instance = heartbeat_event();
        if let Event::HeartbeatReceived(heartbeat) = &mut from_instance.event {
            heartbeat.instance = crate::domain::event::InstanceName::parse("web-1");
        }
        let bytes = encode_event(&from_instance).expect("encodes");
        assert_eq!(&bytes[golden_7.len() - 1..], b"\x01\x05web-1");
        assert_eq!(decode_event(&bytes).expect("decodes"), from_instance);
        let mut version_3 = golden.to_vec();
        version_3[0] = 3;
        assert_eq!(
            decode_event(&version_3).expect("decodes"),
            heartbeat_event()
        );
        // Version 2 heartbeats (what the format-2 code wrote) still decode.
        let version_2: &[u8] = &[
            2, 253, 128, 199, 216, 121, 53, 3, 0, 0, 4, 0, 1, 2, 111, 107, 1, 0, 0, 0, 0, 0, 0,
            248, 63,
        ];
        assert_eq!(decode_event(version_2).expect("decodes"), heartbeat_event());
    }

    /// A decision record's events: each a stored event (its own version inside), in
    /// an envelope of its own version; golden bytes for one event.
    #[test]
    fn decided_events_round_trip_with_their_own_version() {
        let stored = heartbeat_event();
        let events = vec![crate::domain::event::Stamped {
            at: stored.at,
            event: stored.event.clone(),
        }];
        let bytes = encode_decided(&events).expect("encodes");
        let inner = encode_event(&stored).expect("encodes");
        let golden = [&[DECIDED_VERSION, 1, inner.len() as u8][..], &inner].concat();
        assert_eq!(bytes, golden);
        assert_eq!(decode_decided(&bytes).expect("decodes"), events);
        assert_eq!(
            decode_decided(&encode_decided(&[]).unwrap()).unwrap(),
            vec![]
        );
        assert!(matches!(
            decode_decided(&[9, 0]),
            Err(CodecError::UnknownVersion(9))
        ));
    }

    /// Golden bytes of the shard records: if this fails, the clustered log's format
    /// changed and records already in a stream would no longer decode.
    #[test]
    fn shard_record_bytes_are_stable() {
        let monitor = MonitorId::from_bytes([7; 16]);
        let cases: Vec<(ShardRecord, Vec<u8>)> = vec![
            (
                ShardRecord::Heartbeat {
                    monitor,
                    event: vec![9, 8],
                },
                [&[1u8, 0, 16][..], &[7; 16], &[2, 9, 8]].concat(),
            ),
            (
                ShardRecord::Decision {
                    monitor,
                    epoch: 3,
                    basis: 300,
                    event: vec![1],
                },
                [&[1u8, 1, 16][..], &[7; 16], &[3, 251, 44, 1, 1, 1]].concat(),
            ),
            (
                ShardRecord::Takeover {
                    pod: "p-1".to_owned(),
                    lease_millis: 10_000,
                },
                vec![1, 2, 3, b'p', b'-', b'1', 251, 16, 39],
            ),
            (
                ShardRecord::Renewal {
                    pod: "p".to_owned(),
                    epoch: 5,
                },
                vec![1, 3, 1, b'p', 5],
            ),
            (
                ShardRecord::Release {
                    pod: "p".to_owned(),
                    epoch: 5,
                },
                vec![1, 4, 1, b'p', 5],
            ),
            (
                ShardRecord::Config {
                    monitor,
                    event: vec![6],
                },
                [&[1u8, 5, 16][..], &[7; 16], &[1, 6]].concat(),
            ),
            (
                ShardRecord::Channel {
                    channel: crate::domain::ids::ChannelId::from_bytes([8; 16]),
                    event: vec![6, 5],
                },
                [&[1u8, 6, 16][..], &[8; 16], &[2, 6, 5]].concat(),
            ),
            (
                ShardRecord::Heartbeats {
                    heartbeats: vec![(monitor, vec![9, 8]), (monitor, vec![])],
                },
                [
                    &[1u8, 7, 2, 16][..],
                    &[7; 16],
                    &[2, 9, 8, 16],
                    &[7; 16],
                    &[0],
                ]
                .concat(),
            ),
            (
                ShardRecord::Delivered {
                    monitor,
                    channel: crate::domain::ids::ChannelId::from_bytes([8; 16]),
                    alert: "S:3".to_owned(),
                    attempts: 2,
                    error: Some("no".to_owned()),
                },
                [
                    &[1u8, 8, 16][..],
                    &[7; 16],
                    &[16],
                    &[8; 16],
                    &[3, b'S', b':', b'3', 2, 1, 2, b'n', b'o'],
                ]
                .concat(),
            ),
            (
                ShardRecord::DeliveredAt {
                    monitor,
                    channel: crate::domain::ids::ChannelId::from_bytes([8; 16]),
                    alert: "S:3".to_owned(),
                    attempts: 1,
                    error: None,
                    at: Timestamp::from_millis(1_000),
                },
                [
                    &[1u8, 12, 16][..],
                    &[7; 16],
                    &[16],
                    &[8; 16],
                    // 1,000 ms, zigzag-encoded (2,000) as a u16.
                    &[3, b'S', b':', b'3', 1, 0, 251, 208, 7],
                ]
                .concat(),
            ),
        ];
        for (record, golden) in cases {
            let bytes = encode_shard_record(&record).expect("encodes");
            assert_eq!(bytes, golden, "{record:?}");
            assert_eq!(decode_shard_record(&golden).expect("decodes"), record);
        }
        assert!(matches!(
            decode_shard_record(&[2, 3, 1, b'p', 5]),
            Err(CodecError::UnknownVersion(2))
        ));
        assert!(decode_shard_record(&[1, 9]).is_err());
        assert!(decode_shard_record(&[]).is_err());
    }

    /// Golden bytes of a fold snapshot: if this fails, the snapshots pods stored
    /// would no longer decode (and they would fold their streams from the start).
    #[test]
    fn fold_snapshot_bytes_are_stable() {
        use crate::domain::fence::{ShardFoldSnapshot, SnapshotOwner};
        let monitor = MonitorId::from_bytes([7; 16]);
        let snapshot = StoredFoldSnapshot {
            position: 300,
            shards: vec![(
                1,
                ShardFoldSnapshot {
                    owner: Some(SnapshotOwner {
                        pod: "a".to_owned(),
                        epoch: 2,
                        lease_millis: 5_000,
                    }),
                    last_heartbeat: vec![(monitor, 299)],
                    decided: vec![(monitor, 3)],
                    position: 299,
                },
            )],
            alert_ids: vec![(monitor, 1_000, true, "G:9".to_owned())],
            outcomes: vec![StoredOutcome {
                monitor,
                channel: crate::domain::ids::ChannelId::from_bytes([8; 16]),
                alert: "G:9".to_owned(),
                attempts: 1,
                error: None,
                at: Some(Timestamp::from_millis(2_000)),
            }],
        };
        let bytes = encode_fold_snapshot(&snapshot).expect("encodes");
        let m = [16u8, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7];
        let golden = [
            &[1u8, 251, 44, 1, 1, 1, 1, 1, b'a', 2, 251, 136, 19, 1][..],
            &m,
            &[251, 43, 1, 1],
            &m,
            &[3, 251, 43, 1, 1],
            &m,
            &[251, 208, 7, 1, 3, b'G', b':', b'9', 1],
            &m,
            &[16],
            &[8; 16],
            &[3, b'G', b':', b'9', 1, 0, 1, 251, 160, 15],
        ]
        .concat();
        assert_eq!(bytes, golden, "{bytes:?}");
        assert_eq!(decode_fold_snapshot(&golden).expect("decodes"), snapshot);
        assert!(matches!(
            decode_fold_snapshot(&[2, 0]),
            Err(CodecError::UnknownVersion(2))
        ));
        assert!(decode_fold_snapshot(&[1, 9]).is_err());
        assert!(decode_fold_snapshot(&[]).is_err());
    }

    /// Golden bytes of a shared snapshot: if this fails, the snapshots pods uploaded to
    /// NATS would no longer decode (and new pods would fold the streams from the start,
    /// or refuse to start once the streams were purged).
    #[test]
    fn shared_snapshot_bytes_are_stable() {
        let snapshot = StoredSharedSnapshot {
            stream: 2,
            position: 300,
            pushmon_version: "1.2".to_owned(),
            store_format: 7,
            fold_snapshot: vec![1, 0],
            keyspaces: vec![("monitors".to_owned(), vec![(vec![5, 6], vec![7])])],
        };
        let bytes = encode_shared_snapshot(&snapshot).expect("encodes");
        let golden: &[u8] = &[
            1, 2, 251, 44, 1, 3, b'1', b'.', b'2', 7, 2, 1, 0, 1, 8, b'm', b'o', b'n', b'i', b't',
            b'o', b'r', b's', 1, 2, 5, 6, 1, 7,
        ];
        assert_eq!(bytes, golden, "{bytes:?}");
        assert_eq!(decode_shared_snapshot(golden).expect("decodes"), snapshot);
        assert!(matches!(
            decode_shared_snapshot(&[2, 0]),
            Err(CodecError::UnknownVersion(2))
        ));
        assert!(decode_shared_snapshot(&golden[..golden.len() - 1]).is_err());
        assert!(decode_shared_snapshot(&[]).is_err());
    }

    /// Golden bytes of a signal record's body and of the record: if this fails, signal
    /// records already in a stream would no longer decode.
    #[test]
    fn signal_bytes_are_stable() {
        use crate::domain::signal::{Signal, SignalKind};
        let stored = StoredSignal {
            at: Timestamp::from_millis(1_764_106_200_000),
            signal: Signal {
                exit_status: Some(3),
                rid: crate::domain::event::RunId::parse("00000000-0000-0000-0000-000000000001"),
                ..Signal::new(SignalKind::Fail)
            },
        };
        let bytes = encode_signal(&stored).expect("encodes");
        let golden: &[u8] = &[
            1, 253, 128, 199, 216, 121, 53, 3, 0, 0, 2, 1, 3, 1, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            0, 0, 0, 0, 0, 1, 0, 0, 0, 0,
        ];
        assert_eq!(bytes, golden);
        assert_eq!(decode_signal(golden).expect("decodes"), stored);
        assert!(matches!(
            decode_signal(&[2, 0]),
            Err(CodecError::UnknownVersion(2))
        ));
        let record = ShardRecord::Signal {
            monitor: MonitorId::from_bytes([7; 16]),
            event: vec![4],
        };
        let golden_record = [&[1u8, 9, 16][..], &[7; 16], &[1, 4]].concat();
        assert_eq!(
            encode_shard_record(&record).expect("encodes"),
            golden_record
        );
        assert_eq!(
            decode_shard_record(&golden_record).expect("decodes"),
            record
        );
        // The cluster-wide records: a fixed-size id (no length), then the event.
        for (record, tag) in [
            (
                ShardRecord::ApiKey {
                    key: [5; 16],
                    event: vec![4],
                },
                10u8,
            ),
            (
                ShardRecord::Publication {
                    publication: [5; 16],
                    event: vec![4],
                },
                11,
            ),
        ] {
            let golden = [&[1u8, tag][..], &[5; 16], &[1, 4]].concat();
            assert_eq!(encode_shard_record(&record).expect("encodes"), golden);
            assert_eq!(decode_shard_record(&golden).expect("decodes"), record);
        }
    }

    #[test]
    fn down_bytes_are_stable() {
        let stored = StoredEvent {
            at: Timestamp::from_millis(1_764_106_200_000),
            event: Event::WentDown {
                reason: DownReason::Timeout,
            },
        };
        let golden: &[u8] = &[3, 253, 128, 199, 216, 121, 53, 3, 0, 0, 5, 0];
        assert_eq!(&encode_event(&stored).expect("encodes")[1..], &golden[1..]);
        assert_eq!(decode_event(golden).expect("decodes"), stored);
        let max_runtime = StoredEvent {
            event: Event::WentDown {
                reason: DownReason::MaxRuntime,
            },
            ..stored
        };
        let golden: &[u8] = &[3, 253, 128, 199, 216, 121, 53, 3, 0, 0, 5, 3];
        assert_eq!(
            &encode_event(&max_runtime).expect("encodes")[1..],
            &golden[1..]
        );
        assert_eq!(decode_event(golden).expect("decodes"), max_runtime);
        let version_3: &[u8] = &[3, 253, 128, 199, 216, 121, 53, 3, 0, 0, 5, 3];
        assert_eq!(decode_event(version_3).expect("decodes"), max_runtime);
    }

    /// A run's end, the largest record of version 3: golden bytes (the same layout in
    /// versions 4 and 5), and a round trip.
    #[test]
    fn run_ended_bytes_are_stable() {
        use crate::domain::event::{Output, RunEnd, RunId, RunOutcome, RunRef};
        let rid = RunId::from_bytes([9; 16]);
        let stored = StoredEvent {
            at: Timestamp::from_millis(1_764_106_200_000),
            event: Event::RunEnded(RunEnd {
                rid: Some(rid),
                run: Some(RunRef {
                    rid: Some(rid),
                    started_at: Timestamp::from_millis(1_764_106_100_000),
                }),
                exit_status: Some(2),
                outcome: RunOutcome::Failure(DownReason::ExitStatus),
                output: Output::from_body(b"no space", 10_000),
            }),
        };
        let bytes = encode_event(&stored).expect("encodes");
        let golden: &[u8] = &[
            4, 253, 128, 199, 216, 121, 53, 3, 0, 0, 13, 1, 16, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9,
            9, 9, 9, 9, 1, 1, 16, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 253, 64, 186,
            213, 121, 53, 3, 0, 0, 1, 2, 1, 2, 1, 8, 110, 111, 32, 115, 112, 97, 99, 101,
        ];
        assert_eq!((bytes[0], &bytes[1..]), (CURRENT_VERSION, &golden[1..]));
        assert_eq!(decode_event(golden).expect("decodes"), stored);
        let mut version_3 = golden.to_vec();
        version_3[0] = 3;
        assert_eq!(decode_event(&version_3).expect("decodes"), stored);
    }

    /// Version 3 records written by the code of stored format 3 (fixtures; version 4
    /// wrote these types alike) decode through the upcaster to what was written, with
    /// no labels and severity `critical`; re-encoded, they are current records that
    /// decode to the same.
    #[test]
    fn version_3_fixtures_decode() {
        use crate::domain::labels::{Labels, Severity};
        use crate::domain::schedule::MaintenanceWindow;
        let at = Timestamp::from_millis(1_764_106_200_000);
        let created = decode_event(include_bytes!("fixtures/v3_created.bin")).expect("decodes");
        assert_eq!(created.at, at);
        let Event::Created { config, token } = created.event.clone() else {
            panic!("a Created event");
        };
        assert_eq!(config.name, "nightly backup");
        assert_eq!((config.timeout_seconds, config.interval_seconds), (90, 60));
        assert_eq!(config.key.as_deref(), Some("nightly"));
        assert_eq!(config.tags, vec!["backup".to_owned(), "prod".to_owned()]);
        let schedule = config.schedule.clone().expect("a schedule");
        assert_eq!(
            (
                schedule.expression.as_str(),
                schedule.timezone.as_str(),
                schedule.grace_seconds
            ),
            ("0 3 * * *", "Europe/Paris", 600)
        );
        assert_eq!(
            (config.max_runtime_seconds, config.min_runtime_seconds),
            (Some(3600), None)
        );
        assert_eq!(
            (
                config.failure_threshold,
                config.recovery_threshold,
                config.realert_every_seconds
            ),
            (2, 1, Some(7200))
        );
        assert_eq!(
            config.maintenance,
            vec![MaintenanceWindow::Once {
                start: at,
                end: Timestamp::from_millis(1_764_109_800_000)
            }]
        );
        assert_eq!(config.slug.as_deref(), Some("nightly-backup"));
        assert_eq!(
            (&config.labels, config.severity),
            (&Labels::default(), Severity::Critical)
        );
        assert_eq!(token, PushToken::from_bytes([7; 16]));

        let updated = decode_event(include_bytes!("fixtures/v3_updated.bin")).expect("decodes");
        let Event::Updated { config: changed } = updated.event.clone() else {
            panic!("an Updated event");
        };
        assert_eq!(changed.name, "nightly backup v2");
        assert_eq!(changed.slug, config.slug);

        let monitor = decode_monitor(include_bytes!("fixtures/v3_monitor.bin")).expect("decodes");
        assert_eq!(monitor.id, MonitorId::from_bytes([1; 16]));
        assert_eq!(*monitor.config, *config);
        assert_eq!(monitor.status, crate::domain::machine::Status::Down);
        assert_eq!(monitor.last_down_reason, Some(DownReason::Manual));
        assert!(monitor.alerted_down);
        assert_eq!(monitor.last_seq, 42);

        let delivery =
            decode_delivery(include_bytes!("fixtures/v3_delivery.bin")).expect("decodes");
        assert_eq!(delivery.alert.alert_seq, 43);
        assert_eq!(delivery.alert.reason, "exit_status");
        assert_eq!(
            delivery.alert.notice,
            crate::domain::alert::AlertNotice::Reminder
        );
        assert_eq!(delivery.alert.exit_status, Some(2));
        assert_eq!(delivery.alert.output.as_deref(), Some("no space left"));
        assert_eq!(delivery.alert.severity, Severity::Critical);
        assert!(delivery.alert.labels.is_empty() && delivery.alert.tags.is_empty());

        // Version 4 (channels only) wrote these types as version 3 did.
        for (fixture, name) in [
            (&include_bytes!("fixtures/v3_created.bin")[..], "created"),
            (&include_bytes!("fixtures/v3_updated.bin")[..], "updated"),
        ] {
            let mut version_4 = fixture.to_vec();
            version_4[0] = 4;
            assert_eq!(
                decode_event(&version_4).expect(name),
                decode_event(fixture).expect(name)
            );
        }
        let mut version_4 = include_bytes!("fixtures/v3_monitor.bin").to_vec();
        version_4[0] = 4;
        assert_eq!(decode_monitor(&version_4).expect("decodes"), monitor);
        let mut version_4 = include_bytes!("fixtures/v3_delivery.bin").to_vec();
        version_4[0] = 4;
        assert_eq!(decode_delivery(&version_4).expect("decodes"), delivery);
        for event in [created, updated] {
            let bytes = encode_event(&event).expect("encodes");
            assert_eq!(bytes[0], CURRENT_VERSION);
            assert_eq!(decode_event(&bytes).expect("decodes"), event);
        }
        let again = decode_monitor(&encode_monitor(&monitor).expect("encodes")).expect("decodes");
        assert_eq!(again, monitor);
        let bytes = encode_delivery(&delivery).expect("encodes");
        assert_eq!(bytes[0], CURRENT_VERSION);
        assert_eq!(decode_delivery(&bytes).expect("decodes"), delivery);
    }

    /// A version 5 state (fixture, written by the code of stored format 5) decodes
    /// as not muted, and is written again as version 6 with its mute.
    #[test]
    fn version_5_monitor_fixture_is_upcast_unmuted() {
        use crate::domain::machine::{Mute, Status};
        let bytes = include_bytes!("fixtures/v5_monitor.bin");
        assert_eq!(bytes[0], 5);
        assert!(!is_current(bytes) && !snapshot_needs_its_log(bytes));
        let mut monitor = decode_monitor(bytes).expect("decodes");
        assert_eq!(monitor.config.name, "payments db");
        assert_eq!(monitor.config.labels.get("team"), Some("payments"));
        assert_eq!(monitor.status, Status::Down);
        assert!(monitor.alerted_down);
        assert_eq!(monitor.last_seq, 7);
        assert_eq!(monitor.mute, None);
        monitor.mute = Some(Mute {
            since: Timestamp::from_millis(1_764_000_400_000),
            until: None,
            until_recovery: true,
        });
        let again = encode_monitor(&monitor).expect("encodes");
        assert_eq!(again[0], CURRENT_VERSION);
        assert_eq!(decode_monitor(&again).expect("decodes"), monitor);
        // A version 5 event decodes as it is.
        let event = StoredEvent {
            at: Timestamp::from_millis(1),
            event: Event::Recovered,
        };
        let mut version_5 = encode_event(&event).expect("encodes");
        version_5[0] = 5;
        assert_eq!(decode_event(&version_5).expect("decodes"), event);
    }

    /// Version 6 records (fixtures, written by the code of stored format 6) decode as
    /// an ordinary, unrestricted monitor with no parents, heartbeats naming no
    /// instance, and alerts missing no instance; written again, they are version 7.
    #[test]
    fn version_6_fixtures_are_upcast() {
        use crate::domain::alert::AlertKind;
        use crate::domain::labels::Severity;
        use crate::domain::machine::Status;
        let bytes = include_bytes!("fixtures/v6_created.bin");
        assert_eq!(bytes[0], 6);
        let created = decode_event(bytes).expect("decodes");
        let Event::Created { config, token } = &created.event else {
            panic!("a creation: {created:?}");
        };
        assert_eq!(config.name, "payments db");
        assert_eq!(config.labels.get("team"), Some("payments"));
        assert_eq!(config.severity, Severity::Warning);
        assert_eq!(config.failure_threshold, 2);
        assert_eq!(config.tags, ["db"]);
        assert_eq!(*token, PushToken::from_bytes([7; 16]));
        assert_eq!(
            (config.min_instances, config.instance_retention_seconds),
            (None, None)
        );
        assert!(config.parents.is_empty() && config.allowed_sources.is_empty());
        assert_eq!(
            (config.dependency_grace_seconds, &config.signing_secret),
            (None, &None)
        );
        let again = encode_event(&created).expect("encodes");
        assert_eq!(again[0], CURRENT_VERSION);
        assert_eq!(decode_event(&again).expect("decodes"), created);

        let heartbeat = decode_event(include_bytes!("fixtures/v6_heartbeat.bin")).expect("decodes");
        assert_eq!(
            heartbeat.event,
            Event::HeartbeatReceived(Heartbeat::new(
                PushStatus::Down,
                Some(HeartbeatText::truncated("disk full".to_owned())),
                Some(3.0)
            ))
        );
        let muted = decode_event(include_bytes!("fixtures/v6_muted.bin")).expect("decodes");
        assert_eq!(
            muted.event,
            Event::Muted {
                until: Some(Timestamp::from_millis(1_764_000_600_000)),
                until_recovery: false
            }
        );

        let bytes = include_bytes!("fixtures/v6_monitor.bin");
        assert_eq!(bytes[0], 6);
        assert!(!is_current(bytes) && !snapshot_needs_its_log(bytes));
        let monitor = decode_monitor(bytes).expect("decodes");
        assert_eq!(monitor.id, MonitorId::from_bytes([3; 16]));
        assert_eq!(monitor.config.name, "payments db");
        assert_eq!(monitor.status, Status::Down);
        assert_eq!(monitor.last_seq, 9);
        assert_eq!(monitor.last_down_reason, Some(DownReason::Manual));
        assert!(monitor.alerted_down);
        assert!(monitor.mute.is_some_and(|mute| mute.until_recovery));
        assert!(monitor.instances.is_empty() && monitor.held_alert.is_none());
        let again = encode_monitor(&monitor).expect("encodes");
        assert_eq!(again[0], CURRENT_VERSION);
        assert_eq!(decode_monitor(&again).expect("decodes"), monitor);

        let delivery =
            decode_delivery(include_bytes!("fixtures/v6_delivery.bin")).expect("decodes");
        assert_eq!(delivery.alert.kind, AlertKind::Down);
        assert_eq!(delivery.alert.alert_seq, 9);
        assert_eq!(delivery.alert.severity, Severity::Warning);
        assert_eq!(delivery.alert.labels.get("team"), Some("payments"));
        assert_eq!(&*delivery.alert.tags, ["db"]);
        assert!(delivery.alert.missing_instances.is_empty());
        let again = encode_delivery(&delivery).expect("encodes");
        assert_eq!(decode_delivery(&again).expect("decodes"), delivery);
    }

    /// Every field version 7 added survives a round trip.
    #[test]
    fn version_7_fields_round_trip() {
        use crate::domain::event::{InstanceName, Notice};
        use crate::domain::machine::{HeldAlert, InstanceSeen, Status};
        let parent = MonitorId::from_bytes([8; 16]);
        let config = MonitorConfig {
            min_instances: Some(2),
            instance_retention_seconds: Some(3600),
            parents: vec![parent],
            dependency_grace_seconds: Some(30),
            allowed_sources: vec![
                "10.0.0.0/8".parse().expect("a range"),
                "2001:db8::1/128".parse().expect("a range"),
            ],
            signing_secret: Some("s3cret".to_owned()),
            ..MonitorConfig::new("fleet", 60)
        };
        let at = Timestamp::from_millis(1_764_106_200_000);
        let instance = InstanceName::parse("worker-3.eu:9000").expect("valid");
        for event in [
            Event::Updated {
                config: Box::new(config.clone()),
            },
            Event::VerdictHeld {
                reason: DownReason::Schedule,
                deadline: at,
            },
            Event::AlertHeld {
                notice: Notice::Down(DownReason::Instances),
                parent,
            },
            Event::InstanceForgotten {
                instance: instance.clone(),
            },
        ] {
            let stored = StoredEvent { at, event };
            let bytes = encode_event(&stored).expect("encodes");
            assert_eq!(decode_event(&bytes).expect("decodes"), stored);
        }
        let mut monitor = Monitor::created(
            MonitorId::from_bytes([2; 16]),
            at,
            config,
            PushToken::from_bytes([4; 16]),
        );
        monitor.status = Status::Unknown;
        monitor.instances = vec![InstanceSeen {
            name: instance,
            last_seen: at,
            status: PushStatus::Up,
        }];
        monitor.held_alert = Some(HeldAlert {
            notice: Notice::Up,
            parent,
            since: at,
        });
        let decoded = decode_monitor(&encode_monitor(&monitor).expect("encodes")).expect("decodes");
        assert_eq!(decoded, monitor);
    }

    /// Labels and a severity survive a round trip of every record that holds them.
    #[test]
    fn labels_and_severity_round_trip() {
        use crate::domain::labels::{Labels, Severity};
        let labels = Labels::new([
            ("team".to_owned(), "payments".to_owned()),
            ("example.com/env".to_owned(), String::new()),
        ])
        .expect("valid");
        let config = MonitorConfig {
            labels: labels.clone(),
            severity: Severity::Warning,
            ..MonitorConfig::new("labelled", 60)
        };
        let stored = StoredEvent {
            at: Timestamp::from_millis(1_764_106_200_000),
            event: Event::Updated {
                config: Box::new(config.clone()),
            },
        };
        let bytes = encode_event(&stored).expect("encodes");
        assert_eq!(decode_event(&bytes).expect("decodes"), stored);
        let monitor = Monitor::created(
            MonitorId::from_bytes([2; 16]),
            Timestamp::from_millis(5),
            config,
            PushToken::from_bytes([4; 16]),
        );
        let decoded = decode_monitor(&encode_monitor(&monitor).expect("encodes")).expect("decodes");
        assert_eq!(decoded.config.labels, labels);
        assert_eq!(decoded.config.severity, Severity::Warning);
    }

    /// Version 1 records, written by the first release's code (fixtures), decode
    /// through the upcaster: no key, no tags, everything else as it was.
    #[test]
    fn version_1_fixtures_are_upcast() {
        let created = decode_event(include_bytes!("fixtures/v1_created.bin")).expect("decodes");
        let Event::Created { config, token } = created.event else {
            panic!("a Created event");
        };
        assert_eq!(config.name, "nightly backup");
        assert_eq!((config.timeout_seconds, config.interval_seconds), (90, 60));
        assert_eq!(config.key, None);
        assert!(config.tags.is_empty());
        assert_eq!(token, PushToken::from_bytes([7; 16]));
        assert_eq!(created.at, Timestamp::from_millis(1_764_106_200_000));

        let monitor = decode_monitor(include_bytes!("fixtures/v1_monitor.bin")).expect("decodes");
        assert_eq!(monitor.id, MonitorId::from_bytes([1; 16]));
        assert_eq!(monitor.config.name, "nightly backup");
        assert_eq!(monitor.config.key, None);
        assert_eq!(
            monitor.last_msg.as_ref().map(HeartbeatText::as_str),
            Some("ok")
        );
        assert_eq!(monitor.last_value, Some(2.5));
        assert_eq!(monitor.last_seq, 42);

        // Re-encoded, it is a current-version record.
        assert_eq!(
            encode_monitor(&monitor).expect("encodes")[0],
            CURRENT_VERSION
        );
    }

    /// Version 2 records written by the code of stored format 2 (fixtures, made before
    /// version 3 existed) decode through the upcaster to what was written, with the
    /// defaults of what version 3 added.
    #[test]
    fn version_2_fixtures_decode() {
        let at = Timestamp::from_millis(1_764_106_200_000);
        let created = decode_event(include_bytes!("fixtures/v2_created.bin")).expect("decodes");
        assert_eq!(created.at, at);
        let Event::Created { config, token } = created.event else {
            panic!("a Created event");
        };
        assert_eq!(config.name, "nightly backup");
        assert_eq!((config.timeout_seconds, config.interval_seconds), (90, 60));
        assert_eq!(config.key.as_deref(), Some("nightly"));
        assert_eq!(config.tags, vec!["backup".to_owned(), "prod".to_owned()]);
        assert_eq!(
            config.channels,
            vec![crate::domain::ids::ChannelId::from_bytes([3; 16])]
        );
        assert_eq!(token, PushToken::from_bytes([7; 16]));

        let rotated =
            decode_event(include_bytes!("fixtures/v2_token_rotated.bin")).expect("decodes");
        assert_eq!(
            rotated.event,
            Event::TokenRotated {
                token: PushToken::from_bytes([8; 16])
            }
        );
        let down = decode_event(include_bytes!("fixtures/v2_went_down.bin")).expect("decodes");
        assert_eq!(
            down.event,
            Event::WentDown {
                reason: DownReason::Manual
            }
        );

        let monitor = decode_monitor(include_bytes!("fixtures/v2_monitor.bin")).expect("decodes");
        assert_eq!(monitor.id, MonitorId::from_bytes([1; 16]));
        assert_eq!(monitor.config.tags.len(), 2);
        assert_eq!(monitor.status, crate::domain::machine::Status::Up);
        assert_eq!(monitor.last_value, Some(2.5));
        assert_eq!(
            monitor.grace.map(|grace| grace.until),
            Some(Timestamp::from_millis(1_764_106_400_000))
        );
        assert_eq!(monitor.last_seq, 42);

        let delivery =
            decode_delivery(include_bytes!("fixtures/v2_delivery.bin")).expect("decodes");
        assert_eq!(delivery.alert.alert_seq, 43);
        assert_eq!(delivery.alert.reason, "manual");
        assert_eq!(
            delivery.alert.msg.as_ref().map(HeartbeatText::as_str),
            Some("disk full")
        );
        assert_eq!(delivery.alert.value, Some(97.5));

        // Upcast to version 3: what version 2 had no room for takes its default.
        assert_eq!(config.schedule, None);
        assert_eq!(
            (config.failure_threshold, config.recovery_threshold),
            (1, 1)
        );
        assert_eq!(
            (
                config.max_runtime_seconds,
                config.min_runtime_seconds,
                config.realert_every_seconds
            ),
            (None, None, None)
        );
        assert!(config.maintenance.is_empty());
        assert!(monitor.runs.is_empty() && monitor.last_run.is_none());
        assert!(
            !monitor.alerted_down,
            "an up monitor's channels were told up"
        );
        assert_eq!(
            delivery.alert.notice,
            crate::domain::alert::AlertNotice::Change
        );
        assert_eq!(
            (delivery.alert.exit_status, &delivery.alert.output),
            (None, &None)
        );
        // Re-encoded, each is a current record that decodes to the same.
        let again = decode_monitor(&encode_monitor(&monitor).expect("encodes")).expect("decodes");
        assert_eq!(again, monitor);
        let bytes = encode_delivery(&delivery).expect("encodes");
        assert_eq!(bytes[0], CURRENT_VERSION);
        assert_eq!(decode_delivery(&bytes).expect("decodes"), delivery);
    }

    /// A version 1 channel event (a channel without `key`) decodes with no key.
    #[test]
    fn version_1_channel_events_are_upcast() {
        #[derive(Serialize)]
        struct ChannelV1 {
            id: crate::domain::ids::ChannelId,
            name: String,
            kind: crate::domain::channel::ChannelKind,
            created_at: Timestamp,
        }
        #[derive(Serialize)]
        enum ChannelEventV1 {
            Created(ChannelV1),
        }
        #[derive(Serialize)]
        struct StoredV1 {
            at: Timestamp,
            event: ChannelEventV1,
        }
        let id = crate::domain::ids::ChannelId::from_bytes([5; 16]);
        let kind = crate::domain::channel::ChannelKind::Slack {
            url: "https://hooks.example/x".to_owned(),
        };
        let at = Timestamp::from_millis(1_764_106_200_000);
        let bytes = encode_record(
            1,
            &StoredV1 {
                at,
                event: ChannelEventV1::Created(ChannelV1 {
                    id,
                    name: "ops".to_owned(),
                    kind: kind.clone(),
                    created_at: at,
                }),
            },
        )
        .expect("encodes");
        let decoded = decode_channel_event(&bytes).expect("decodes");
        let expected = Channel {
            id,
            name: "ops".to_owned(),
            kind,
            created_at: at,
            key: None,
            send_on: crate::domain::channel::SendOn::Both,
        };
        assert_eq!(decoded.event, ChannelEvent::Created(expected.clone()));
        let current = StoredChannelEvent {
            at,
            event: ChannelEvent::Updated(Channel {
                key: Some("k".to_owned()),
                ..expected
            }),
        };
        let bytes = encode_channel_event(&current).expect("encodes");
        assert_eq!(decode_channel_event(&bytes).expect("decodes"), current);
    }

    /// The layout of a channel in format version 3, for the fixtures below: the
    /// version 3 code's `Channel`, field for field.
    #[derive(Serialize)]
    struct ChannelV3 {
        id: crate::domain::ids::ChannelId,
        name: String,
        kind: crate::domain::channel::ChannelKind,
        created_at: Timestamp,
        key: Option<String>,
    }

    #[derive(Serialize)]
    enum ChannelEventV3 {
        #[allow(dead_code)]
        Created(ChannelV3),
        #[allow(dead_code)]
        Deleted,
        Updated(ChannelV3),
    }

    #[derive(Serialize)]
    struct StoredChannelEventV3 {
        at: Timestamp,
        event: ChannelEventV3,
    }

    fn version_3_channel() -> ChannelV3 {
        ChannelV3 {
            id: crate::domain::ids::ChannelId::from_bytes([6; 16]),
            name: "ops hook".to_owned(),
            kind: crate::domain::channel::ChannelKind::Webhook {
                url: "https://hooks.example/ops".to_owned(),
                secret: Some("s3cret".to_owned()),
            },
            created_at: Timestamp::from_millis(1_764_106_200_000),
            key: Some("ops".to_owned()),
        }
    }

    /// Writes `fixtures/v3_channel.bin` and `fixtures/v3_channel_updated.bin`, as the
    /// code of format version 3 wrote a channel record and an `Updated` event (run
    /// once, when version 4 was made; kept to show how they were made).
    #[test]
    #[ignore = "writes the version 3 fixtures"]
    fn write_version_3_channel_fixtures() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/store/fixtures");
        let record = encode_record(3, &version_3_channel()).expect("encodes");
        std::fs::write(dir.join("v3_channel.bin"), record).expect("written");
        let event = StoredChannelEventV3 {
            at: Timestamp::from_millis(1_764_106_300_000),
            event: ChannelEventV3::Updated(version_3_channel()),
        };
        let record = encode_record(3, &event).expect("encodes");
        std::fs::write(dir.join("v3_channel_updated.bin"), record).expect("written");
    }

    /// Channels written before `send_on` (format 3) decode as sending every alert,
    /// everything else as it was; re-encoded they are version 4 records.
    #[test]
    fn version_3_channel_fixtures_are_upcast_to_send_on_both() {
        let expected = Channel {
            id: crate::domain::ids::ChannelId::from_bytes([6; 16]),
            name: "ops hook".to_owned(),
            kind: crate::domain::channel::ChannelKind::Webhook {
                url: "https://hooks.example/ops".to_owned(),
                secret: Some("s3cret".to_owned()),
            },
            created_at: Timestamp::from_millis(1_764_106_200_000),
            key: Some("ops".to_owned()),
            send_on: crate::domain::channel::SendOn::Both,
        };
        let record = include_bytes!("fixtures/v3_channel.bin");
        assert_eq!(record[0], 3);
        assert_eq!(decode_channel(record).expect("decodes"), expected);
        let event = decode_channel_event(include_bytes!("fixtures/v3_channel_updated.bin"))
            .expect("decodes");
        assert_eq!(event.at, Timestamp::from_millis(1_764_106_300_000));
        assert_eq!(event.event, ChannelEvent::Updated(expected.clone()));

        let down_only = Channel {
            send_on: crate::domain::channel::SendOn::Down,
            ..expected
        };
        let bytes = encode_channel(&down_only).expect("encodes");
        assert_eq!(bytes[0], CURRENT_VERSION);
        assert_eq!(decode_channel(&bytes).expect("decodes"), down_only);
    }

    #[test]
    fn version_1_heartbeats_still_decode() {
        let mut bytes = encode_event(&heartbeat_event()).expect("encodes");
        // Less the instance (the last byte, `None`) that version 7 added.
        assert_eq!(bytes.pop(), Some(0));
        bytes[0] = 1;
        assert_eq!(decode_event(&bytes).expect("decodes"), heartbeat_event());
    }

    #[test]
    fn bad_records_are_errors_not_panics() {
        assert!(matches!(decode_event(&[]), Err(CodecError::Empty)));
        assert!(matches!(
            decode_event(&[9, 1, 2]),
            Err(CodecError::UnknownVersion(9))
        ));
        let mut bytes = encode_event(&heartbeat_event()).expect("encodes");
        bytes.push(0);
        assert!(matches!(decode_event(&bytes), Err(CodecError::Trailing(1))));
        assert!(decode_event(&bytes[..5]).is_err());
    }

    #[test]
    fn monitor_state_round_trips() {
        let monitor = Monitor::created(
            MonitorId::generate(Timestamp::from_millis(5)),
            Timestamp::from_millis(5),
            MonitorConfig {
                interval_seconds: 60,
                key: Some("nightly".to_owned()),
                tags: vec!["backup".to_owned()],
                ..MonitorConfig::new("nightly backup", 90)
            },
            PushToken::from_bytes([4; 16]),
        );
        let bytes = encode_monitor(&monitor).expect("encodes");
        assert_eq!(decode_monitor(&bytes).expect("decodes"), monitor);
    }

    proptest! {
        /// Arbitrary bytes never panic the decoder nor make it allocate without bound.
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode_event(&bytes);
            let _ = decode_monitor(&bytes);
        }

        #[test]
        fn heartbeats_round_trip(msg in ".{0,64}", value in proptest::option::of(-1e12f64..1e12), up in any::<bool>(), at in 0i64..4_000_000_000_000) {
            let stored = StoredEvent {
                at: Timestamp::from_millis(at),
                event: Event::HeartbeatReceived(Heartbeat {
                    status: if up { PushStatus::Up } else { PushStatus::Down },
                    msg: Some(HeartbeatText::truncated(msg)),
                    value,
                    instance: None,
                }),
            };
            let bytes = encode_event(&stored).expect("encodes");
            prop_assert_eq!(decode_event(&bytes).expect("decodes"), stored);
        }
    }
}
