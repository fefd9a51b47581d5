//! Rebuilding everything from the logs alone, ignoring snapshots and records: what
//! `pushmon check` compares with what the server starts from. Start-up never needs it.
//!
//! - monitors: each monitor's events folded with `machine::apply` (`replay_all`);
//! - channels: each channel's events in `channel_events`;
//! - API keys: each key's events in `api_key_events`;
//! - badges and status pages: each record's events in `publication_events`;
//! - the outbox: the deliveries each alert event owed (`alert::owed_deliveries`, with
//!   the monitor's state after the event and the channels that existed and wanted
//!   its kind, `send_on`, at its sequence number), less those whose outcome a `DeliveryRecorded` event records
//!   (the monitor's actor records it; for a deleted monitor the store does, in its
//!   log). Alerts numbered before `meta`'s `replayable_from` are left out: before it,
//!   a deleted monitor's outcome was not recorded.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::domain::alert::{AlertKind, Delivery, owed_deliveries};
use crate::domain::api_key::{ApiKey, ApiKeyId};
use crate::domain::channel::{Channel, ChannelEvent, SendOn};
use crate::domain::event::{Event, Stamped};
use crate::domain::ids::{ChannelId, MonitorId};
use crate::domain::machine::{self, Monitor};
use crate::domain::publication::Publication;

use super::api_keys::{self, ApiKeyChange};
use super::codec;
use super::publications::{self, PublicationChange};
use super::{EventStore, StoreError, layout};

/// An outbox entry's key: which alert, to which channel.
pub type OutboxKey = (u64, ChannelId);

/// Everything the logs say, folded.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Replayed {
    pub monitors: BTreeMap<MonitorId, Monitor>,
    pub channels: BTreeMap<ChannelId, Channel>,
    pub api_keys: BTreeMap<ApiKeyId, ApiKey>,
    /// Badges and status pages, by record id.
    pub publications: BTreeMap<[u8; 16], Publication>,
    /// Deliveries owed by alerts numbered from `outbox_from` on.
    pub outbox: BTreeMap<OutboxKey, Delivery>,
    /// The first alert sequence number the outbox is replayed for.
    pub outbox_from: u64,
    /// Events folded, over every log.
    pub events: usize,
}

/// When each channel existed, and which alerts it wanted then: (sequence number,
/// its `send_on` after it, `None` once deleted), in order.
#[derive(Default)]
struct Lifetimes(HashMap<ChannelId, Vec<(u64, Option<SendOn>)>>);

impl Lifetimes {
    /// Whether `channel` existed just before sequence number `seq` and wanted an
    /// alert of `kind`.
    fn wanted_before(&self, channel: ChannelId, seq: u64, kind: AlertKind) -> bool {
        self.0.get(&channel).is_some_and(|changes| {
            changes
                .iter()
                .take_while(|(at, _)| *at < seq)
                .last()
                .is_some_and(|(_, send_on)| send_on.is_some_and(|send_on| send_on.includes(kind)))
        })
    }
}

impl EventStore {
    /// Folds every log. Blocking.
    pub fn replay(&self) -> Result<Replayed, StoreError> {
        let (monitors, monitor_events) = self.replay_all_counted()?;
        let (channels, lifetimes, channel_events) = self.replay_channels()?;
        let (api_keys, key_events) = self.replay_api_keys()?;
        let (publications, publication_events) = self.replay_publications()?;
        let outbox_from = self.replayable_from()?;
        let outbox = self.replay_outbox(&lifetimes, outbox_from)?;
        Ok(Replayed {
            monitors,
            channels,
            api_keys,
            publications,
            outbox,
            outbox_from,
            events: monitor_events + channel_events + key_events + publication_events,
        })
    }

    /// From which alert sequence number the outbox is replayable. Blocking.
    pub fn replayable_from(&self) -> Result<u64, StoreError> {
        Ok(self
            .shared
            .handles()?
            .meta
            .get(layout::META_REPLAYABLE_FROM)?
            .and_then(|value| layout::decode_u64(&value))
            .unwrap_or(u64::MAX))
    }

    fn replay_channels(
        &self,
    ) -> Result<(BTreeMap<ChannelId, Channel>, Lifetimes, usize), StoreError> {
        let handles = self.shared.handles()?;
        let mut channels = BTreeMap::new();
        let mut lifetimes = Lifetimes::default();
        let mut count = 0;
        for guard in handles.channel_events.range(layout::FIRST_RECORD..) {
            let (key, value) = guard.into_inner()?;
            let Some((id, seq)) = layout::parse_log_key(&key) else {
                return Err(StoreError::Corrupt(
                    "malformed channel event key".to_owned(),
                ));
            };
            let id = ChannelId::from_bytes(id);
            count += 1;
            let send_on = match codec::decode_channel_event(&value)?.event {
                ChannelEvent::Created(channel) | ChannelEvent::Updated(channel) => {
                    let send_on = channel.send_on;
                    channels.insert(id, channel);
                    Some(send_on)
                }
                ChannelEvent::Deleted => {
                    channels.remove(&id);
                    None
                }
            };
            lifetimes.0.entry(id).or_default().push((seq, send_on));
        }
        Ok((channels, lifetimes, count))
    }

    fn replay_api_keys(&self) -> Result<(BTreeMap<ApiKeyId, ApiKey>, usize), StoreError> {
        let handles = self.shared.handles()?;
        let mut keys = BTreeMap::new();
        let mut count = 0;
        for guard in handles.api_key_events.range(layout::FIRST_RECORD..) {
            let (key, value) = guard.into_inner()?;
            let Some((id, _)) = layout::parse_log_key(&key) else {
                return Err(StoreError::Corrupt(
                    "malformed API key event key".to_owned(),
                ));
            };
            let id = ApiKeyId::from_bytes(id);
            count += 1;
            match api_keys::decode_event(id, &value)? {
                ApiKeyChange::Created(key) => {
                    keys.insert(id, key);
                }
                ApiKeyChange::Revoked(_) => {
                    keys.remove(&id);
                }
            }
        }
        Ok((keys, count))
    }

    fn replay_publications(&self) -> Result<(BTreeMap<[u8; 16], Publication>, usize), StoreError> {
        let handles = self.shared.handles()?;
        let mut records = BTreeMap::new();
        let mut count = 0;
        for guard in handles.publication_events.range(layout::FIRST_RECORD..) {
            let (key, value) = guard.into_inner()?;
            let Some((id, _)) = layout::parse_log_key(&key) else {
                return Err(StoreError::Corrupt(
                    "malformed badge or status page event key".to_owned(),
                ));
            };
            count += 1;
            match publications::decode_event(id, &value)? {
                PublicationChange::Put(publication) => {
                    records.insert(id, publication);
                }
                PublicationChange::Removed(_) => {
                    records.remove(&id);
                }
            }
        }
        Ok((records, count))
    }

    fn replay_outbox(
        &self,
        lifetimes: &Lifetimes,
        from: u64,
    ) -> Result<BTreeMap<OutboxKey, Delivery>, StoreError> {
        let handles = self.shared.handles()?;
        let mut owed = BTreeMap::new();
        let mut settled = BTreeSet::new();
        // The monitor being folded, and its state (`None` before `Created`, or once
        // deleted: a deleted monitor raises no alert, but its outcomes are recorded).
        let mut current: Option<(MonitorId, Option<Monitor>)> = None;
        for guard in handles.events.range(layout::FIRST_RECORD..) {
            let (key, value) = guard.into_inner()?;
            let Some((id, seq)) = layout::parse_event_key(&key) else {
                return Err(StoreError::Corrupt("malformed event key".to_owned()));
            };
            if current.as_ref().is_none_or(|(folding, _)| *folding != id) {
                current = Some((id, None));
            }
            let Some((_, state)) = current.as_mut() else {
                continue;
            };
            let stored = codec::decode_event(&value)?;
            match (&mut *state, &stored.event) {
                (_, Event::DeliveryRecorded(outcome)) => {
                    settled.insert((outcome.alert_seq, outcome.channel));
                }
                (None, Event::Created { config, token }) => {
                    let mut created =
                        Monitor::created(id, stored.at, (**config).clone(), token.clone());
                    created.last_seq = seq;
                    *state = Some(created);
                }
                (Some(_), Event::Deleted) => *state = None,
                (Some(monitor), event) => {
                    // An alert is made from the state right after its event, and owes
                    // nothing right after an `AlertSuppressed`.
                    if seq >= from && event.is_alert() {
                        let stamped = [Stamped {
                            at: stored.at,
                            event: stored.event.clone(),
                        }];
                        let wanted = |channel, kind| lifetimes.wanted_before(channel, seq, kind);
                        for (_, mut delivery) in owed_deliveries(monitor, &stamped, wanted) {
                            delivery.alert.alert_seq = seq;
                            owed.insert((seq, delivery.channel), delivery);
                        }
                    }
                    machine::apply(monitor, seq, stored.at, event);
                }
                (None, _) => {}
            }
        }
        owed.retain(|key, _| !settled.contains(key));
        Ok(owed)
    }
}
