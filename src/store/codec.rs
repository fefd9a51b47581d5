//! The stored byte format: one version byte, then the bincode (serde, standard config)
//! encoding of the payload. The only code that touches bincode.
//!
//! To change a stored type, add a new version: keep decoding the old one and upcast it
//! to the current type here, so every reader above this module sees only current types.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::domain::channel::{Channel, ChannelEvent, Delivery};
use crate::domain::event::Event;
use crate::domain::ids::Timestamp;
use crate::domain::machine::Monitor;

/// The envelope version written today.
pub const CURRENT_VERSION: u8 = 1;

/// Decoding refuses to allocate more than this for one record (records are small: the
/// largest is a heartbeat with a 1 KiB message).
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
    decode(bytes)
}

pub fn encode_monitor(monitor: &Monitor) -> Result<Vec<u8>, CodecError> {
    encode(monitor)
}

pub fn decode_monitor(bytes: &[u8]) -> Result<Monitor, CodecError> {
    decode(bytes)
}

pub fn encode_delivery(delivery: &Delivery) -> Result<Vec<u8>, CodecError> {
    encode(delivery)
}

pub fn decode_delivery(bytes: &[u8]) -> Result<Delivery, CodecError> {
    decode(bytes)
}

pub fn encode_channel(channel: &Channel) -> Result<Vec<u8>, CodecError> {
    encode(channel)
}

pub fn decode_channel(bytes: &[u8]) -> Result<Channel, CodecError> {
    decode(bytes)
}

pub fn encode_channel_event(event: &StoredChannelEvent) -> Result<Vec<u8>, CodecError> {
    encode(event)
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
    let mut bytes = Vec::with_capacity(96);
    bytes.push(CURRENT_VERSION);
    let body = bincode::serde::encode_to_vec(value, bincode::config::standard())
        .map_err(|error| CodecError::Encode(error.to_string()))?;
    bytes.extend_from_slice(&body);
    Ok(bytes)
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let (&version, body) = bytes.split_first().ok_or(CodecError::Empty)?;
    match version {
        CURRENT_VERSION => {
            let config = bincode::config::standard().with_limit::<DECODE_LIMIT_BYTES>();
            let (value, read) = bincode::serde::decode_from_slice(body, config)
                .map_err(|error| CodecError::Decode(error.to_string()))?;
            if read != body.len() {
                return Err(CodecError::Trailing(body.len() - read));
            }
            Ok(value)
        }
        other => Err(CodecError::UnknownVersion(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::event::{DownReason, Heartbeat, MonitorConfig, Msg, PushStatus};
    use crate::domain::ids::{MonitorId, PushToken};
    use proptest::prelude::*;

    fn heartbeat_event() -> StoredEvent {
        StoredEvent {
            at: Timestamp::from_millis(1_764_106_200_000),
            event: Event::HeartbeatReceived(Heartbeat {
                status: PushStatus::Up,
                msg: Some(Msg::truncated("ok".to_owned())),
                value: Some(1.5),
            }),
        }
    }

    /// Golden bytes: if this test fails, the stored format changed and old logs would no
    /// longer decode. Add a version and an upcaster instead of editing these bytes.
    #[test]
    fn version_1_heartbeat_bytes_are_stable() {
        let bytes = encode_event(&heartbeat_event()).expect("encodes");
        let golden: &[u8] = &[
            1, 253, 128, 199, 216, 121, 53, 3, 0, 0, 4, 0, 1, 2, 111, 107, 1, 0, 0, 0, 0, 0, 0,
            248, 63,
        ];
        assert_eq!(bytes, golden);
        assert_eq!(decode_event(golden).expect("decodes"), heartbeat_event());
    }

    #[test]
    fn version_1_down_bytes_are_stable() {
        let stored = StoredEvent {
            at: Timestamp::from_millis(1_764_106_200_000),
            event: Event::WentDown {
                reason: DownReason::Timeout,
            },
        };
        let golden: &[u8] = &[1, 253, 128, 199, 216, 121, 53, 3, 0, 0, 5, 0];
        assert_eq!(encode_event(&stored).expect("encodes"), golden);
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
            MonitorId::generate(),
            Timestamp::from_millis(5),
            MonitorConfig {
                name: "nightly backup".to_owned(),
                timeout_seconds: 90,
                interval_seconds: 60,
                channels: vec![],
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
                    msg: Some(Msg::truncated(msg)),
                    value,
                }),
            };
            let bytes = encode_event(&stored).expect("encodes");
            prop_assert_eq!(decode_event(&bytes).expect("decodes"), stored);
        }
    }
}
