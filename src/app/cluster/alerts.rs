//! Alerts in the clustered mode: ids from the shard logs, outcomes recorded in them,
//! and who sends (docs/cluster.md, "Alerts").
//!
//! - **Ids.** An alert an effective decision owes is named by the decision record's
//!   stream and sequence (`<stream>:<sequence>`, the fold notes it before the actor
//!   adopts the decision); one a heartbeat caused (a recovery, a manual `down`), which
//!   every pod decides alike from the same log, by its stream, monitor and time
//!   (`<stream>:<monitor>-<millis>`). Every pod names an alert alike, under any owner.
//! - **Owed on every pod, sent by the owner.** Every pod's actor writes the deliveries
//!   an alert owes to its local outbox; only the pod deciding for the shard (it owns
//!   it under the current epoch and has folded the shard up to its takeover) hands
//!   them to its dispatcher, which checks that again before every attempt.
//! - **Outcomes in the shard.** The owner publishes how each delivery ended, and
//!   when, as a `DeliveredAt` record ([`ClusterAlerts::record`]) instead of recording
//!   it locally; every pod's fold (the owner's too) records it in its copy of the
//!   monitor's history at that time and settles its outbox entry
//!   ([`ClusterAlerts::fold_delivered`]).
//! - **Takeover.** A pod that starts deciding for a shard first folds it up to the
//!   shard's last record as of then (`/readyz` is 503 meanwhile), then hands the
//!   deliveries of the shard's monitors still in its outbox to its dispatcher, except
//!   those whose outcome it folded: what its predecessor owed and had not recorded is
//!   sent again, with the same id; nothing recorded is.
//!
//! The fault hook `PUSHMON_FAULT_EXIT_AFTER_SEND=<n>` (a test hook only: the fault
//! suite's "crash between sending an alert and recording it") aborts the process
//! right after its `n`th successful delivery, before the outcome is published.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use dashmap::DashMap;

use crate::alert::{ClusterDelivery, Dispatcher};
use crate::clock::Clock;
use crate::cluster::event_log::Replication;
use crate::cluster::shard::{ShardId, shard_of, stream_of};
use crate::domain::alert::{Alert, AlertKind, Delivery};
use crate::domain::event::{DeliveryOutcome, Event, Notice, Stamped};
use crate::domain::fence::{Sequence, ShardRecord};
use crate::domain::ids::{ChannelId, MonitorId, Timestamp};
use crate::monitor::Registry;
use crate::monitor::deciding::OutcomeSink;
use crate::store::{EventStore, FoldPosition};

/// The environment variable of the fault hook (module docs). Never set it in
/// production.
pub const FAULT_EXIT_AFTER_SEND: &str = "PUSHMON_FAULT_EXIT_AFTER_SEND";

/// Before a failed outcome record is published again.
const PUBLISH_RETRY: Duration = Duration::from_secs(1);

/// What names an alert before its id is known: its monitor, time and kind (`true`:
/// a `down`).
pub(super) type AlertKey = (MonitorId, i64, bool);

/// An alert's id as a fold snapshot holds it: its [`AlertKey`]'s parts and the id.
pub(super) type SnapshotId = (MonitorId, i64, bool, String);

/// A delivery's outcome folded from a shard log (a `Delivered` or `DeliveredAt`
/// record): `at`, when the sending pod recorded it (`None` in a `Delivered` record,
/// which an older pod published).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct FoldedOutcome {
    pub(super) monitor: MonitorId,
    pub(super) channel: ChannelId,
    pub(super) alert: String,
    pub(super) attempts: u32,
    pub(super) error: Option<String>,
    pub(super) at: Option<Timestamp>,
}

impl FoldedOutcome {
    /// The outcome a record holds, if it is an outcome record.
    pub(super) fn of(record: ShardRecord) -> Option<Self> {
        match record {
            ShardRecord::Delivered {
                monitor,
                channel,
                alert,
                attempts,
                error,
            } => Some(Self {
                monitor,
                channel,
                alert,
                attempts,
                error,
                at: None,
            }),
            ShardRecord::DeliveredAt {
                monitor,
                channel,
                alert,
                attempts,
                error,
                at,
            } => Some(Self {
                monitor,
                channel,
                alert,
                attempts,
                error,
                at: Some(at),
            }),
            _ => None,
        }
    }
}

/// The kind of alert an event owes, if it owes one.
fn alert_kind(event: &Event) -> Option<AlertKind> {
    match event {
        Event::WentDown { .. } | Event::Reminder { .. } | Event::AlertReleased(Notice::Down(_)) => {
            Some(AlertKind::Down)
        }
        Event::Recovered | Event::AlertReleased(Notice::Up) => Some(AlertKind::Up),
        _ => None,
    }
}

/// Alert ids from the shard logs (module docs).
struct AlertIds {
    shards: u16,
    /// The streams the shards are spread over (`PUSHMON_G<g>`, `shard::stream_of`).
    streams: u16,
    /// The ids of the alerts effective decisions owe.
    decided: DashMap<AlertKey, String>,
}

impl AlertIds {
    fn new(shards: u16, streams: u16) -> Self {
        Self {
            shards,
            streams,
            decided: DashMap::new(),
        }
    }

    /// An effective decision at `sequence` of `shard`'s stream: the alerts its events
    /// owe are named after it.
    fn note_decision(
        &self,
        shard: ShardId,
        sequence: Sequence,
        monitor: MonitorId,
        events: &[Stamped],
    ) {
        let stream = stream_of(shard, self.streams).name();
        let alerts = events
            .iter()
            .filter_map(|stamped| Some((stamped.at, alert_kind(&stamped.event)?)));
        for (index, (at, kind)) in alerts.enumerate() {
            let id = if index == 0 {
                format!("{stream}:{sequence}")
            } else {
                format!("{stream}:{sequence}.{index}")
            };
            self.decided
                .insert((monitor, at.as_millis(), kind == AlertKind::Down), id);
        }
    }

    fn alert_id(&self, alert: &Alert) -> String {
        if let Some(id) = self.decided.get(&(
            alert.monitor_id,
            alert.at.as_millis(),
            alert.kind == AlertKind::Down,
        )) {
            return id.value().clone();
        }
        let stream = stream_of(shard_of(&alert.monitor_id, self.shards), self.streams).name();
        format!("{stream}:{}-{}", alert.monitor_id, alert.at.as_millis())
    }
}

/// The epoch this pod owns a shard under and may decide for it now, if it does
/// (`cluster::ownership::Ownership::deciding_epoch`).
pub(super) type OwnedEpoch = Box<dyn Fn(ShardId) -> Option<Sequence> + Send + Sync>;

pub(super) struct ClusterAlerts {
    shards: u16,
    owned_epoch: OwnedEpoch,
    /// Per shard, the epoch whose takeover this pod's fold has caught up with (0: none).
    folded_for: Vec<AtomicU64>,
    ids: AlertIds,
    /// Every outcome folded and not yet recorded in this pod's copy: (alert id,
    /// channel) → the outcome.
    delivered: DashMap<(String, ChannelId), FoldedOutcome>,
    /// What stamps an outcome this pod publishes.
    clock: Clock,
    publisher: OnceLock<Arc<dyn Replication>>,
    /// The fault hook: successful deliveries left before the process aborts.
    exit_after_sends: Option<AtomicU64>,
}

impl ClusterAlerts {
    pub(super) fn new(
        shards: u16,
        streams: u16,
        owned_epoch: OwnedEpoch,
        exit_after_sends: Option<u64>,
        clock: Clock,
    ) -> Self {
        if let Some(sends) = exit_after_sends {
            tracing::warn!(
                sends,
                "fault hook {FAULT_EXIT_AFTER_SEND} set: this process aborts after that many successful deliveries (a test hook only)"
            );
        }
        Self {
            shards,
            owned_epoch,
            folded_for: ShardId::all(shards).map(|_| AtomicU64::new(0)).collect(),
            ids: AlertIds::new(shards, streams),
            delivered: DashMap::new(),
            clock,
            publisher: OnceLock::new(),
            exit_after_sends: exit_after_sends.map(AtomicU64::new),
        }
    }

    pub(super) fn set_publisher(&self, publisher: Arc<dyn Replication>) {
        let _ = self.publisher.set(publisher);
    }

    /// The epoch this pod decides `shard` under: it owns it and has folded it up to
    /// its takeover (`None`: make no decision, send nothing).
    pub(super) fn deciding_epoch(&self, shard: ShardId) -> Option<Sequence> {
        let epoch = (self.owned_epoch)(shard)?;
        (self.folded_for[usize::from(shard.0)].load(Ordering::Acquire) == epoch).then_some(epoch)
    }

    /// Whether a shard this pod owns is not yet folded up to its takeover.
    pub(super) fn catching_up(&self) -> bool {
        ShardId::all(self.shards).any(|shard| {
            (self.owned_epoch)(shard).is_some_and(|epoch| {
                self.folded_for[usize::from(shard.0)].load(Ordering::Acquire) != epoch
            })
        })
    }

    /// `shard` is folded up to the takeover of `epoch` (0: it is not, or no longer).
    pub(super) fn set_folded_for(&self, shard: ShardId, epoch: Sequence) {
        self.folded_for[usize::from(shard.0)].store(epoch, Ordering::Release);
    }

    pub(super) fn folded_for(&self, shard: ShardId) -> Sequence {
        self.folded_for[usize::from(shard.0)].load(Ordering::Acquire)
    }

    /// An effective decision at `sequence` of `shard`'s stream: the alerts its events
    /// owe are named after it. Called before the pod's actor adopts it.
    pub(super) fn note_decision(
        &self,
        shard: ShardId,
        sequence: Sequence,
        monitor: MonitorId,
        events: &[Stamped],
    ) {
        self.ids.note_decision(shard, sequence, monitor, events);
    }

    /// An outcome record folded (the owner's, of any epoch): no pod sends that
    /// delivery again.
    pub(super) fn note_delivered(&self, outcome: &FoldedOutcome) {
        self.delivered
            .insert((outcome.alert.clone(), outcome.channel), outcome.clone());
    }

    /// Folds an outcome record into this pod: notes it, and records it in the local
    /// history of the monitor at the time the sender recorded it (`delivery` event),
    /// settling its outbox entry, with the stream's position `folded_to` in the same
    /// batch, if this pod owes it (a pod whose actor writes the entry later leaves it
    /// to the takeover, which settles it then from the note).
    pub(super) async fn fold_delivered(
        &self,
        registry: &Registry,
        store: &EventStore,
        clock: Clock,
        folded_to: FoldPosition,
        outcome: FoldedOutcome,
    ) -> Result<(), String> {
        self.note_delivered(&outcome);
        let FoldedOutcome {
            monitor,
            channel,
            alert,
            attempts,
            error,
            at,
        } = outcome;
        let at = at.unwrap_or_else(|| clock.now());
        let mut recorded = false;
        for local in self
            .owed_locally(store, move |delivery| {
                delivery.alert.monitor_id == monitor && delivery.channel == channel
            })
            .await?
            .into_iter()
            .filter(|delivery| self.alert_id(&delivery.alert) == alert)
        {
            let outcome = DeliveryOutcome {
                channel,
                alert_seq: local.alert.alert_seq,
                attempts,
                error: error.clone(),
            };
            record_outcome(registry, monitor, Some(folded_to), at, outcome).await;
            // Recorded here: no takeover needs it any more (nor a snapshot).
            recorded = true;
        }
        if recorded {
            self.delivered.remove(&(alert, channel));
        }
        Ok(())
    }

    /// The alerts of `stream`'s monitors still owed in this pod's outbox.
    pub(super) async fn owed_in_stream(
        &self,
        store: &EventStore,
        stream: u16,
    ) -> Result<std::collections::HashSet<AlertKey>, String> {
        let (shards, streams) = (self.shards, self.ids.streams);
        Ok(self
            .owed_locally(store, move |delivery| {
                stream_of(shard_of(&delivery.alert.monitor_id, shards), streams).0 == stream
            })
            .await?
            .into_iter()
            .map(|delivery| {
                (
                    delivery.alert.monitor_id,
                    delivery.alert.at.as_millis(),
                    delivery.alert.kind == AlertKind::Down,
                )
            })
            .collect())
    }

    /// This pod's outbox entries for which `wanted` holds.
    async fn owed_locally(
        &self,
        store: &EventStore,
        wanted: impl Fn(&Delivery) -> bool + Send + 'static,
    ) -> Result<Vec<Delivery>, String> {
        let reader = store.clone();
        tokio::task::spawn_blocking(move || {
            reader.load_outbox().map(|owed| {
                owed.into_iter()
                    .filter(|delivery| wanted(delivery))
                    .collect()
            })
        })
        .await
        .map_err(|error| error.to_string())?
        .map_err(|error| error.to_string())
    }

    /// This pod decides `shards` now (folded up to their takeover): hands the
    /// deliveries of their monitors still in its outbox to the dispatcher, and records
    /// those whose outcome it folded instead.
    pub(super) async fn hand_over(
        &self,
        shards: &BTreeSet<ShardId>,
        registry: &Registry,
        store: &EventStore,
        dispatcher: &Dispatcher,
        clock: Clock,
    ) -> Result<(), String> {
        let count = self.shards;
        let mine: BTreeSet<ShardId> = shards.clone();
        let owed = self
            .owed_locally(store, move |delivery| {
                mine.contains(&shard_of(&delivery.alert.monitor_id, count))
            })
            .await?;
        let mut sent = 0;
        for delivery in owed {
            let monitor = delivery.alert.monitor_id;
            let known = self
                .delivered
                .get(&(self.alert_id(&delivery.alert), delivery.channel))
                .map(|entry| entry.value().clone());
            if let Some(known) = known {
                let outcome = DeliveryOutcome {
                    channel: delivery.channel,
                    alert_seq: delivery.alert.alert_seq,
                    attempts: known.attempts,
                    error: known.error,
                };
                let at = known.at.unwrap_or_else(|| clock.now());
                record_outcome(registry, monitor, None, at, outcome).await;
                self.delivered
                    .remove(&(self.alert_id(&delivery.alert), delivery.channel));
                continue;
            }
            let group = match registry.current_state(monitor).await {
                Ok(state) => crate::alert::digest::group_of(&state.config),
                Err(_) => String::new(),
            };
            dispatcher.enqueue(delivery, group);
            sent += 1;
        }
        if sent > 0 {
            tracing::info!(shards = ?shards, deliveries = sent, "sending the alerts still owed in the shards taken over");
        }
        Ok(())
    }

    /// What a fold snapshot of `stream` holds of the alerts' memory: the ids of the
    /// effective decisions' alerts of its monitors still owed in this pod's outbox
    /// (`owed`: the outbox's alerts, by [`AlertKey`]; an alert no longer owed is
    /// never named again, as an entry is written with its decision), and the
    /// outcomes of its monitors folded and not yet recorded here (a takeover
    /// records them instead of sending, `hand_over`). The running pod forgets the
    /// other ids of the stream's monitors as it takes the snapshot: a pod restarted
    /// from it does not have them either, so the memory of ids stays bounded by the
    /// alerts owed and those decided since the stream's last snapshot.
    pub(super) fn snapshot(
        &self,
        stream: u16,
        owed: &std::collections::HashSet<AlertKey>,
    ) -> (Vec<SnapshotId>, Vec<crate::store::codec::StoredOutcome>) {
        let in_stream = |monitor: &MonitorId| {
            stream_of(shard_of(monitor, self.shards), self.ids.streams).0 == stream
        };
        let mut ids: Vec<_> = self
            .ids
            .decided
            .iter()
            .filter(|entry| owed.contains(entry.key()) && in_stream(&entry.key().0))
            .map(|entry| {
                let (monitor, at, down) = *entry.key();
                (monitor, at, down, entry.value().clone())
            })
            .collect();
        ids.sort_unstable();
        self.ids
            .decided
            .retain(|key, _| owed.contains(key) || !in_stream(&key.0));
        let mut outcomes: Vec<_> = self
            .delivered
            .iter()
            .filter(|entry| in_stream(&entry.value().monitor))
            .map(|entry| {
                let outcome = entry.value().clone();
                crate::store::codec::StoredOutcome {
                    monitor: outcome.monitor,
                    channel: outcome.channel,
                    alert: outcome.alert,
                    attempts: outcome.attempts,
                    error: outcome.error,
                    at: outcome.at,
                }
            })
            .collect();
        outcomes.sort_unstable_by(|a, b| (&a.alert, a.channel).cmp(&(&b.alert, b.channel)));
        (ids, outcomes)
    }

    /// A restarted pod's memory, from a fold snapshot ([`ClusterAlerts::snapshot`]).
    pub(super) fn seed(
        &self,
        ids: Vec<SnapshotId>,
        outcomes: Vec<crate::store::codec::StoredOutcome>,
    ) {
        for (monitor, at, down, id) in ids {
            self.ids.decided.insert((monitor, at, down), id);
        }
        for outcome in outcomes {
            self.note_delivered(&FoldedOutcome {
                monitor: outcome.monitor,
                channel: outcome.channel,
                alert: outcome.alert,
                attempts: outcome.attempts,
                error: outcome.error,
                at: outcome.at,
            });
        }
    }

    /// The fault hook: true once this successful delivery is the last one allowed.
    fn exits_now(&self) -> bool {
        self.exit_after_sends
            .as_ref()
            .is_some_and(|left| left.fetch_sub(1, Ordering::AcqRel) <= 1)
    }
}

/// Records `outcome` in `monitor`'s local history at `at`, settling its outbox entry
/// (`Registry::apply_replicated_outcome`; folded: with the stream's position
/// `folded_to` in the same batch), retrying while the store cannot write.
async fn record_outcome(
    registry: &Registry,
    monitor: MonitorId,
    folded_to: Option<FoldPosition>,
    at: Timestamp,
    outcome: DeliveryOutcome,
) {
    loop {
        match registry
            .apply_replicated_outcome(monitor, folded_to, at, outcome.clone())
            .await
        {
            Ok(()) => return,
            Err(error) => {
                tracing::warn!(%monitor, %error, "cannot record a delivery outcome yet; retrying");
                tokio::time::sleep(PUBLISH_RETRY).await;
            }
        }
    }
}

impl ClusterDelivery for ClusterAlerts {
    fn alert_id(&self, alert: &Alert) -> String {
        self.ids.alert_id(alert)
    }

    fn may_send(&self, monitor: MonitorId) -> bool {
        self.deciding_epoch(shard_of(&monitor, self.shards))
            .is_some()
    }
}

impl OutcomeSink for ClusterAlerts {
    fn record(
        &self,
        delivery: Delivery,
        outcome: DeliveryOutcome,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        if outcome.error.is_none() && self.exits_now() {
            // Straight to stderr: the log's writer thread would not get to it before
            // the abort. The fault suite reads this line (the alert that set it off).
            eprintln!(
                "pushmon: fault hook {FAULT_EXIT_AFTER_SEND}: aborting after delivering alert {} of monitor {} to channel {}, before its outcome is recorded",
                self.alert_id(&delivery.alert),
                delivery.alert.monitor_id,
                outcome.channel
            );
            std::process::abort();
        }
        let monitor = delivery.alert.monitor_id;
        // Every pod's `delivery` event is stamped with this time.
        let record = ShardRecord::DeliveredAt {
            monitor,
            channel: outcome.channel,
            alert: self.alert_id(&delivery.alert),
            attempts: outcome.attempts,
            error: outcome.error,
            at: self.clock.now(),
        };
        let publisher = self.publisher.get().cloned();
        Box::pin(async move {
            let Some(publisher) = publisher else {
                tracing::warn!(%monitor, "no publisher for a delivery's outcome yet; it is sent again by the next owner");
                return;
            };
            loop {
                match publisher.publish(record.clone()).await {
                    Ok(sequence) => {
                        // Recorded here once this pod's fold applied it.
                        let _ = publisher.applied(monitor, sequence).await;
                        return;
                    }
                    Err(error) => {
                        tracing::warn!(%monitor, %error, "a delivery's outcome was not acknowledged by its shard; retrying");
                        tokio::time::sleep(PUBLISH_RETRY).await;
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::alert::AlertNotice;
    use crate::domain::event::DownReason;

    fn alert(monitor: MonitorId, at: i64, kind: AlertKind) -> Alert {
        Alert {
            alert_seq: 77,
            kind,
            reason: "timeout".to_owned(),
            at: Timestamp::from_millis(at),
            monitor_id: monitor,
            monitor_name: "m".to_owned(),
            msg: None,
            value: None,
            notice: AlertNotice::Change,
            exit_status: None,
            output: None,
            severity: Default::default(),
            labels: Box::default(),
            tags: Box::default(),
            missing_instances: Box::default(),
        }
    }

    fn at(millis: i64, event: Event) -> Stamped {
        Stamped {
            at: Timestamp::from_millis(millis),
            event,
        }
    }

    #[test]
    fn an_owned_shard_is_decided_and_sent_for_only_once_folded_up_to_its_takeover() {
        let owned = Arc::new(std::sync::Mutex::new(None::<Sequence>));
        let owning = Arc::clone(&owned);
        let alerts = ClusterAlerts::new(
            1,
            1,
            Box::new(move |_| *owning.lock().expect("not poisoned")),
            None,
            Clock::system(),
        );
        let shard = ShardId(0);
        let monitor = MonitorId::from_bytes([1; 16]);
        assert!(!alerts.catching_up());
        assert_eq!(alerts.deciding_epoch(shard), None);
        // Taken over under epoch 7: not before the fold caught up with it.
        *owned.lock().expect("not poisoned") = Some(7);
        assert!(alerts.catching_up(), "not ready while catching up");
        assert_eq!(alerts.deciding_epoch(shard), None);
        assert!(!alerts.may_send(monitor));
        alerts.set_folded_for(shard, 7);
        assert!(!alerts.catching_up());
        assert_eq!(alerts.deciding_epoch(shard), Some(7));
        assert!(alerts.may_send(monitor));
        // Taken over again (another epoch): caught up with the old one is not enough.
        *owned.lock().expect("not poisoned") = Some(9);
        assert!(alerts.catching_up());
        assert!(!alerts.may_send(monitor));
        // Lost: nothing to catch up with, nothing decided or sent.
        *owned.lock().expect("not poisoned") = None;
        assert!(!alerts.catching_up());
        assert!(!alerts.may_send(monitor));
    }

    /// A fold snapshot keeps the ids of the alerts still owed and the outcomes not
    /// recorded yet, of its stream's monitors only, and the running pod forgets the
    /// rest of that stream's ids; a pod seeded from it names those alerts as the pod
    /// that wrote it did.
    #[test]
    fn a_snapshot_keeps_the_ids_still_owed_and_the_outcomes_not_recorded_of_its_stream() {
        let alerts = ClusterAlerts::new(4, 2, Box::new(|_| None), None, Clock::system());
        let monitor = MonitorId::from_bytes([3; 16]);
        let shard = shard_of(&monitor, 4);
        let stream = stream_of(shard, 2).0;
        let other = (0u8..=255)
            .map(|n| MonitorId::from_bytes([n; 16]))
            .find(|candidate| stream_of(shard_of(candidate, 4), 2).0 != stream)
            .expect("a monitor of the other stream");
        let down = || Event::WentDown {
            reason: DownReason::Timeout,
        };
        alerts.note_decision(shard, 10, monitor, &[at(1_000, down())]);
        alerts.note_decision(shard, 20, monitor, &[at(2_000, down())]);
        alerts.note_decision(shard_of(&other, 4), 30, other, &[at(3_000, down())]);
        let outcome = |monitor, alert: &str| FoldedOutcome {
            monitor,
            channel: ChannelId::from_bytes([9; 16]),
            alert: alert.to_owned(),
            attempts: 1,
            error: None,
            at: Some(Timestamp::from_millis(5_000)),
        };
        alerts.note_delivered(&outcome(monitor, "G:10"));
        alerts.note_delivered(&outcome(other, "G:30"));
        // Only the second alert is still owed here (and the other stream's).
        let owed = [(monitor, 2_000, true), (other, 3_000, true)].into();
        let (ids, outcomes) = alerts.snapshot(stream, &owed);
        let stream_name = stream_of(shard, 2).name();
        assert_eq!(
            ids,
            vec![(monitor, 2_000, true, format!("{stream_name}:20"))]
        );
        assert_eq!(outcomes.len(), 1);
        assert_eq!(outcomes[0].alert, "G:10");
        // The running pod forgot the settled id of the snapshot's stream, and kept
        // the owed one and the other stream's.
        assert_eq!(alerts.ids.decided.len(), 2);
        assert!(!alerts.ids.decided.contains_key(&(monitor, 1_000, true)));
        assert!(alerts.ids.decided.contains_key(&(other, 3_000, true)));

        let restarted = ClusterAlerts::new(4, 2, Box::new(|_| None), None, Clock::system());
        restarted.seed(ids, outcomes);
        assert_eq!(
            restarted.alert_id(&alert(monitor, 2_000, AlertKind::Down)),
            format!("{stream_name}:20")
        );
        assert!(
            restarted
                .delivered
                .contains_key(&("G:10".to_owned(), ChannelId::from_bytes([9; 16])))
        );
        assert!(
            !restarted
                .delivered
                .contains_key(&("G:30".to_owned(), ChannelId::from_bytes([9; 16])))
        );
    }

    #[test]
    fn a_decisions_alerts_are_named_by_its_stream_and_sequence_and_others_by_their_heartbeat() {
        // 4 shards in 2 streams: the id names the stream (`PUSHMON_G<g>`), whose
        // sequences the shards share.
        let ids = AlertIds::new(4, 2);
        let monitor = MonitorId::from_bytes([3; 16]);
        let shard = shard_of(&monitor, 4);
        let stream = format!("PUSHMON_G{}", shard.0 % 2);
        let down = Event::WentDown {
            reason: DownReason::Timeout,
        };
        let released = Event::AlertReleased(Notice::Up);
        ids.note_decision(shard, 42, monitor, &[at(1_000, down), at(1_000, released)]);
        assert_eq!(
            ids.alert_id(&alert(monitor, 1_000, AlertKind::Down)),
            format!("{stream}:42")
        );
        assert_eq!(
            ids.alert_id(&alert(monitor, 1_000, AlertKind::Up)),
            format!("{stream}:42.1")
        );
        // Not a decision's: a recovery a heartbeat caused, the same on every pod.
        assert_eq!(
            ids.alert_id(&alert(monitor, 2_000, AlertKind::Up)),
            format!("{stream}:{monitor}-2000")
        );
        // The pod's local sequence number plays no part.
        let mut elsewhere = alert(monitor, 1_000, AlertKind::Down);
        elsewhere.alert_seq = 5;
        assert_eq!(ids.alert_id(&elsewhere), format!("{stream}:42"));
        assert!(ids.alert_id(&elsewhere).len() <= 100);
    }
}
