//! A stream's part of the local copy, cut on one pod and carried to another (the
//! clustered mode's shared snapshots, `cluster/share.rs`, docs/cluster.md "Shared
//! snapshots").
//!
//! - [`EventStore::cut_point`] opens one fjall snapshot: a consistent point across
//!   keyspaces, as a crash at that instant would leave them. The caller takes it
//!   between two records of the stream's fold, so it holds exactly the records up
//!   to the fold's position; [`CutPoint::export`] then reads every record of the
//!   stream's monitors, channels and (for the cluster-wide shard's stream) API keys
//!   and publications through it, while the fold goes on.
//! - [`EventStore::import_cut`] writes a cut into this store in one batch with the
//!   stream's position and fold snapshot (so a restart of the importer never sees
//!   the records without their position, nor the position without them). The
//!   records' sequence numbers are the uploader's: each is shifted past every
//!   sequence this store assigned ([`shift`]), in keys (`events`, `outbox`, the
//!   `*_events` logs) and in the values that name one (a state's `last_seq`, an
//!   outbox entry's and a recorded outcome's `alert_seq`), so cuts of several streams
//!   made by different pods never collide, and each keeps its order.
//!
//! This module reads and writes raw records; it must not know streams or shards (the
//! caller says which monitors belong to the stream).

use fjall::Readable as _;
use tokio::sync::oneshot;

use super::append::{FoldPosition, Import, WriteRequest};
use super::codec;
use super::{EventStore, Handles, StoreError, layout};
use crate::domain::event::Event;
use crate::domain::ids::MonitorId;

pub use super::codec::KeyspaceRecords;

/// Which records belong to the stream being cut.
pub struct Belongs<'a> {
    /// Whether a monitor (or a channel, by its id's bytes) is of the stream.
    pub monitor: &'a (dyn Fn(MonitorId) -> bool + Sync),
    /// Whether API keys, badges and status pages (the cluster-wide shard's) are.
    pub settings: bool,
}

/// The keyspaces a cut carries, in the order it carries them.
const CUT_KEYSPACES: [&str; 9] = [
    layout::MONITORS,
    layout::EVENTS,
    layout::OUTBOX,
    layout::CHANNELS,
    layout::CHANNEL_EVENTS,
    layout::API_KEYS,
    layout::API_KEY_EVENTS,
    layout::PUBLICATIONS,
    layout::PUBLICATION_EVENTS,
];

impl Handles {
    pub(super) fn by_name(&self, name: &str) -> Option<&fjall::Keyspace> {
        Some(match name {
            layout::MONITORS => &self.monitors,
            layout::EVENTS => &self.events,
            layout::OUTBOX => &self.outbox,
            layout::CHANNELS => &self.channels,
            layout::CHANNEL_EVENTS => &self.channel_events,
            layout::API_KEYS => &self.api_keys,
            layout::API_KEY_EVENTS => &self.api_key_events,
            layout::PUBLICATIONS => &self.publications,
            layout::PUBLICATION_EVENTS => &self.publication_events,
            _ => return None,
        })
    }
}

/// A point in time of the local store, held open until a cut is read through it
/// ([`EventStore::cut_point`]): writes after it are not seen.
pub struct CutPoint {
    handles: std::sync::Arc<Handles>,
    snapshot: fjall::Snapshot,
}

impl EventStore {
    /// Opens a consistent point in time across every keyspace: cheap (no I/O), so
    /// the fold takes it between two records and reads the cut through it later,
    /// while it goes on ([`CutPoint::export`]).
    pub fn cut_point(&self) -> Result<CutPoint, StoreError> {
        let handles = self.shared.handles()?;
        let snapshot = handles.db.snapshot();
        Ok(CutPoint { handles, snapshot })
    }

    /// Writes a cut made by [`CutPoint::export`] (on any pod) into this store, with the
    /// stream's position and fold snapshot, in one durable batch; how many records.
    /// Meant for a store that holds nothing of the stream yet.
    pub async fn import_cut(
        &self,
        keyspaces: Vec<KeyspaceRecords>,
        position: FoldPosition,
        fold_snapshot: Vec<u8>,
    ) -> Result<usize, StoreError> {
        let records = keyspaces.iter().map(|(_, records)| records.len()).sum();
        let (reply, written) = oneshot::channel();
        self.writer
            .send(WriteRequest::Import(
                Box::new(Import {
                    keyspaces,
                    position,
                    fold_snapshot,
                }),
                reply,
            ))
            .map_err(|_| StoreError::Closed)?;
        written
            .await
            .map_err(|_| StoreError::Closed)
            .and_then(|written| written.map(|_| records))
    }
}

impl CutPoint {
    /// The records of the monitors, channels and settings that `belongs` names, as
    /// they were at the point. Blocking.
    pub fn export(&self, belongs: &Belongs<'_>) -> Result<Vec<KeyspaceRecords>, StoreError> {
        let mut cut = Vec::new();
        for name in CUT_KEYSPACES {
            let Some(keyspace) = self.handles.by_name(name) else {
                continue;
            };
            let mut records = Vec::new();
            for guard in self.snapshot.range(keyspace, layout::FIRST_RECORD..) {
                let (key, value) = guard.into_inner()?;
                let keep = match name {
                    layout::MONITORS
                    | layout::EVENTS
                    | layout::CHANNELS
                    | layout::CHANNEL_EVENTS => key
                        .get(..16)
                        .and_then(|id| <[u8; 16]>::try_from(id).ok())
                        .is_some_and(|id| (belongs.monitor)(MonitorId::from_bytes(id))),
                    layout::OUTBOX => {
                        (belongs.monitor)(codec::decode_delivery(&value)?.alert.monitor_id)
                    }
                    _ => belongs.settings,
                };
                if keep {
                    records.push((key.to_vec(), value.to_vec()));
                }
            }
            cut.push((name.to_owned(), records));
        }
        Ok(cut)
    }
}

/// A record of a cut with its sequence numbers moved up by `base` (the importer's
/// last assigned sequence), and the highest sequence it names before the shift (0:
/// none). A record that does not parse is refused: the whole cut is.
pub(super) fn shift(
    keyspace: &str,
    key: &[u8],
    value: &[u8],
    base: u64,
) -> Result<(Vec<u8>, Vec<u8>, u64), StoreError> {
    let malformed = || StoreError::Corrupt(format!("a shared snapshot's {keyspace} key"));
    match keyspace {
        layout::EVENTS => {
            let (monitor, seq) = layout::parse_event_key(key).ok_or_else(malformed)?;
            let mut stored = codec::decode_event(value)?;
            if let Event::DeliveryRecorded(outcome) = &mut stored.event {
                outcome.alert_seq += base;
            }
            Ok((
                layout::event_key(monitor, seq + base).to_vec(),
                codec::encode_event(&stored)?,
                seq,
            ))
        }
        layout::OUTBOX => {
            let seq = key
                .get(..8)
                .and_then(layout::decode_u64)
                .filter(|_| key.len() == 24)
                .ok_or_else(malformed)?;
            let mut delivery = codec::decode_delivery(value)?;
            delivery.alert.alert_seq += base;
            let mut shifted = key.to_vec();
            shifted[..8].copy_from_slice(&(seq + base).to_be_bytes());
            Ok((shifted, codec::encode_delivery(&delivery)?, seq))
        }
        layout::MONITORS => {
            let mut monitor = codec::decode_monitor(value)?;
            let seq = monitor.last_seq;
            if seq > 0 {
                monitor.last_seq += base;
            }
            Ok((key.to_vec(), codec::encode_monitor(&monitor)?, seq))
        }
        layout::CHANNEL_EVENTS | layout::API_KEY_EVENTS | layout::PUBLICATION_EVENTS => {
            let (id, seq) = layout::parse_log_key(key).ok_or_else(malformed)?;
            Ok((
                layout::api_key_event_key(id, seq + base).to_vec(),
                value.to_vec(),
                seq,
            ))
        }
        layout::CHANNELS | layout::API_KEYS | layout::PUBLICATIONS => {
            Ok((key.to_vec(), value.to_vec(), 0))
        }
        other => Err(StoreError::Corrupt(format!(
            "a shared snapshot names an unknown keyspace {other:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::event::DeliveryOutcome;
    use crate::domain::ids::{ChannelId, Timestamp};

    #[test]
    fn a_cuts_sequences_move_past_the_importers_in_keys_and_values() {
        let monitor = MonitorId::from_bytes([3; 16]);
        let channel = ChannelId::from_bytes([4; 16]);
        let recorded = codec::encode_event(&codec::StoredEvent {
            at: Timestamp::from_millis(5),
            event: Event::DeliveryRecorded(DeliveryOutcome {
                channel,
                alert_seq: 7,
                attempts: 1,
                error: None,
            }),
        })
        .expect("encodes");
        let (key, value, seq) = shift(
            layout::EVENTS,
            &layout::event_key(monitor, 9),
            &recorded,
            100,
        )
        .expect("shifts");
        assert_eq!(seq, 9);
        assert_eq!(layout::parse_event_key(&key), Some((monitor, 109)));
        match codec::decode_event(&value).expect("decodes").event {
            Event::DeliveryRecorded(outcome) => assert_eq!(outcome.alert_seq, 107),
            other => panic!("not an outcome: {other:?}"),
        }

        let (key, _, seq) = shift(
            layout::CHANNEL_EVENTS,
            &layout::channel_event_key(channel, 2),
            b"x",
            100,
        )
        .expect("shifts");
        assert_eq!(
            (layout::parse_log_key(&key), seq),
            (Some(([4; 16], 102)), 2)
        );
        // Records keyed by an id alone keep their key and value.
        assert_eq!(
            shift(layout::API_KEYS, &[1; 16], b"v", 100).expect("keeps"),
            ([1; 16].to_vec(), b"v".to_vec(), 0)
        );
        // What does not parse refuses the cut.
        assert!(shift(layout::EVENTS, &[1; 5], &recorded, 1).is_err());
        assert!(shift(layout::OUTBOX, &[1; 8], b"", 1).is_err());
        assert!(shift("elsewhere", &[1; 16], b"", 1).is_err());
    }
}
