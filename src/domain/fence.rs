//! The records of a shard's log in the clustered mode, and which decisions in it
//! count: the pure validity rule the cluster's readers fold by (`cluster/`).
//!
//! A shard's log holds, in one order, the heartbeats of its monitors, the decisions
//! its owner made about them, and the ownership records (takeover, renewal, release).
//! A takeover's position in the log (its stream sequence) is the shard's new
//! **epoch**. A decision names the epoch it was made under and its **basis**: the
//! sequence of the last record of its monitor the owner had applied (a heartbeat, a
//! config record or an effective decision; 0 for none).
//!
//! Folding the log in order, a decision is effective iff, at its place in the log:
//! its epoch is the shard's current epoch (the last takeover, not released since);
//! its basis is the sequence of its monitor's last heartbeat, config record or
//! effective decision (nothing overtook it); and no effective decision was already
//! made on that basis. An effective decision is itself the basis of the next one, so
//! a repeated verdict (a reminder) has a key of its own, and a new owner repeating a
//! verdict its predecessor made on the same basis counts once. Every other decision
//! is void. Nothing here does I/O: the log's order is given.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::domain::ids::{ChannelId, MonitorId, Timestamp};

/// A position in a shard's log (a JetStream stream sequence; the first is 1).
pub type Sequence = u64;

/// One record of a shard's log, as stored (`store::codec::encode_shard_record`).
/// Stored: never reorder variants or fields; append variants at the end.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ShardRecord {
    /// A heartbeat for `monitor`; `event` is the monitor's stored event, encoded by
    /// the store's codec with its own version (so this envelope does not change when
    /// events do).
    Heartbeat { monitor: MonitorId, event: Vec<u8> },
    /// A decision about `monitor` made by the owner under `epoch`, having applied the
    /// heartbeats up to `basis`; `event` as in `Heartbeat`.
    Decision {
        monitor: MonitorId,
        epoch: Sequence,
        basis: Sequence,
        event: Vec<u8>,
    },
    /// `pod` takes the shard over for leases of `lease_millis`; this record's sequence
    /// is the new epoch.
    Takeover { pod: String, lease_millis: u64 },
    /// The owner of `epoch` is alive.
    Renewal { pod: String, epoch: Sequence },
    /// The owner of `epoch` hands the shard over: the next pod may take it at once.
    Release { pod: String, epoch: Sequence },
    /// A change of `monitor`'s configuration (its creation, ...), published by the
    /// pod that took the API call and applied by every pod's fold; `event` as in
    /// `Heartbeat`.
    Config { monitor: MonitorId, event: Vec<u8> },
    /// A channel's creation (its stored channel event, `store::codec::
    /// encode_channel_event`), in the shard of the monitor id with the channel id's
    /// bytes; applied by every pod's fold.
    Channel { channel: ChannelId, event: Vec<u8> },
    /// Heartbeats of several monitors in one record, in the order they were taken
    /// (each `(monitor, event)` as in `Heartbeat`): a pod's publisher puts every plain
    /// push queued for a shard in one, so one message, one fsync on each server and
    /// one acknowledgement cover them all. For the rule below, each is a heartbeat at
    /// this record's sequence.
    Heartbeats {
        heartbeats: Vec<(MonitorId, Vec<u8>)>,
    },
    /// How the owner's delivery of an alert to a channel ended (`attempts` tried;
    /// `error` `None` on success): every pod folds it into its copy of the monitor's
    /// history and settles its outbox entry, and a new owner does not send the alert
    /// to that channel again. `alert` is the alert's id (`docs/alerts.md`, "Alert
    /// ids"), the same on every pod.
    Delivered {
        monitor: MonitorId,
        channel: ChannelId,
        alert: String,
        attempts: u32,
        error: Option<String>,
    },
    /// A job's signal to `monitor` (a run's start or end, an exit status, a log line,
    /// a push with `kind`, `rid` or `exit`, a ping URL's; `docs/push.md`, "Runs"),
    /// `event` its stored form (`store::codec::encode_signal`, with its time). Every
    /// pod's actor decides what it causes on its copy of the monitor, at that time, in
    /// the log's order: the same events on every pod. For the rule below, it is a
    /// heartbeat.
    Signal { monitor: MonitorId, event: Vec<u8> },
    /// A change of API key `key` (its creation or revocation: its stored event,
    /// `store::api_keys::encode_event`), cluster-wide: in shard 0's log
    /// ([`CLUSTER_WIDE_SHARD`]), applied by every pod's fold.
    ApiKey { key: [u8; 16], event: Vec<u8> },
    /// A change of badge or status page `publication` (put or removed: its stored
    /// event, `store::publications::encode_event`), cluster-wide as `ApiKey`.
    Publication {
        publication: [u8; 16],
        event: Vec<u8>,
    },
    /// `Delivered` with the time the owner recorded the outcome (`at`): every pod
    /// stamps the `delivery` event of its copy of the monitor's history with it, so
    /// the histories are alike. What a sender publishes now; a `Delivered` record (a
    /// pod of an older version) is stamped with the folding pod's time.
    DeliveredAt {
        monitor: MonitorId,
        channel: ChannelId,
        alert: String,
        attempts: u32,
        error: Option<String>,
        at: Timestamp,
    },
}

/// The shard whose log holds the cluster-wide records (API keys, badges, status
/// pages), which belong to no monitor: one log, so every pod applies them in one
/// order.
pub const CLUSTER_WIDE_SHARD: u16 = 0;

impl ShardRecord {
    /// Whether the record belongs on the shard's ownership subject.
    pub fn is_ownership(&self) -> bool {
        matches!(
            self,
            Self::Takeover { .. } | Self::Renewal { .. } | Self::Release { .. }
        )
    }
}

/// Why a decision is void.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Void {
    /// Made under an epoch that is not the shard's current one (a zombie owner's, or
    /// one after its owner released the shard).
    StaleEpoch,
    /// A heartbeat of its monitor reached the log after the one it was based on.
    Overtaken,
    /// An effective decision was already made on the same heartbeat.
    AlreadyDecided,
}

/// What folding one record did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Folded {
    /// A heartbeat or an ownership record: taken into the fold.
    Applied,
    /// A decision that counts.
    Effective,
    /// A decision that does not count, and why.
    Void(Void),
}

/// Owner of the shard, as the log says at the fold's position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    pub pod: String,
    pub epoch: Sequence,
    pub lease_millis: u64,
}

/// A shard's log folded up to a position.
#[derive(Clone, Debug, Default)]
pub struct ShardFold {
    owner: Option<Owner>,
    last_heartbeat: HashMap<MonitorId, Sequence>,
    decided: HashSet<(MonitorId, Sequence)>,
    position: Sequence,
}

impl ShardFold {
    /// Folds the record at `sequence` (sequences must increase; gaps are allowed).
    pub fn apply(&mut self, sequence: Sequence, record: &ShardRecord) -> Folded {
        self.position = sequence;
        match record {
            ShardRecord::Heartbeat { monitor, .. } | ShardRecord::Signal { monitor, .. } => {
                self.last_heartbeat.insert(*monitor, sequence);
                Folded::Applied
            }
            ShardRecord::Heartbeats { heartbeats } => {
                for (monitor, _) in heartbeats {
                    self.last_heartbeat.insert(*monitor, sequence);
                }
                Folded::Applied
            }
            ShardRecord::Takeover { pod, lease_millis } => {
                self.owner = Some(Owner {
                    pod: pod.clone(),
                    epoch: sequence,
                    lease_millis: *lease_millis,
                });
                Folded::Applied
            }
            ShardRecord::Config { monitor, .. } => {
                // A change of the monitor overtakes a verdict decided before it.
                self.last_heartbeat.insert(*monitor, sequence);
                Folded::Applied
            }
            // An outcome is no monitor's basis: a verdict is not overtaken by it.
            ShardRecord::Renewal { .. }
            | ShardRecord::Channel { .. }
            | ShardRecord::Delivered { .. }
            | ShardRecord::DeliveredAt { .. }
            | ShardRecord::ApiKey { .. }
            | ShardRecord::Publication { .. } => Folded::Applied,
            ShardRecord::Release { epoch, .. } => {
                if self.epoch() == Some(*epoch) {
                    self.owner = None;
                }
                Folded::Applied
            }
            ShardRecord::Decision {
                monitor,
                epoch,
                basis,
                ..
            } => {
                if self.epoch() != Some(*epoch) {
                    return Folded::Void(Void::StaleEpoch);
                }
                if self.last_heartbeat(monitor) != *basis {
                    return Folded::Void(Void::Overtaken);
                }
                if !self.decided.insert((*monitor, *basis)) {
                    return Folded::Void(Void::AlreadyDecided);
                }
                // The next decision about the monitor is based on this one: a
                // repeated verdict (a reminder) has a key of its own, and a repeat
                // of this one on the old basis is void.
                self.last_heartbeat.insert(*monitor, sequence);
                Folded::Effective
            }
        }
    }

    /// The current epoch: the last takeover's sequence, unless it was released.
    pub fn epoch(&self) -> Option<Sequence> {
        self.owner.as_ref().map(|owner| owner.epoch)
    }

    pub fn owner(&self) -> Option<&Owner> {
        self.owner.as_ref()
    }

    /// The sequence of `monitor`'s last heartbeat, config record or effective decision
    /// (0 for none): the basis its next decision must carry.
    pub fn last_heartbeat(&self, monitor: &MonitorId) -> Sequence {
        self.last_heartbeat.get(monitor).copied().unwrap_or(0)
    }

    /// Every monitor with a record in the log so far, with its last heartbeat, config
    /// record or effective decision (the basis its next decision must carry).
    pub fn bases(&self) -> impl Iterator<Item = (MonitorId, Sequence)> + '_ {
        self.last_heartbeat
            .iter()
            .map(|(monitor, sequence)| (*monitor, *sequence))
    }

    /// Whether an effective decision was made on `basis` for `monitor`.
    pub fn has_decided(&self, monitor: &MonitorId, basis: Sequence) -> bool {
        self.decided.contains(&(*monitor, basis))
    }

    /// The sequence of the last record folded (0 before any).
    pub fn position(&self) -> Sequence {
        self.position
    }

    /// What a restarted pod needs of this fold to go on folding after its position
    /// (`store::codec::StoredFoldSnapshot`): the owner, every monitor's basis, and the
    /// decided pairs that can still matter. A pair `(monitor, basis)` is consulted
    /// only for a decision whose basis is the monitor's last heartbeat; bases only
    /// grow (each is a later sequence), so a pair whose basis is below the monitor's
    /// last heartbeat can never be consulted again and is left out. (An effective
    /// decision moves its monitor's basis to its own sequence at once, so in practice
    /// no pair is kept.)
    pub fn snapshot(&self) -> ShardFoldSnapshot {
        let mut last_heartbeat: Vec<(MonitorId, Sequence)> = self.bases().collect();
        last_heartbeat.sort_unstable();
        let mut decided: Vec<(MonitorId, Sequence)> = self
            .decided
            .iter()
            .filter(|(monitor, basis)| *basis >= self.last_heartbeat(monitor))
            .copied()
            .collect();
        decided.sort_unstable();
        ShardFoldSnapshot {
            owner: self.owner.clone().map(|owner| SnapshotOwner {
                pod: owner.pod,
                epoch: owner.epoch,
                lease_millis: owner.lease_millis,
            }),
            last_heartbeat,
            decided,
            position: self.position,
        }
    }

    /// The fold a [`ShardFold::snapshot`] was taken of, as far as any later record
    /// can tell.
    pub fn from_snapshot(snapshot: ShardFoldSnapshot) -> Self {
        Self {
            owner: snapshot.owner.map(|owner| Owner {
                pod: owner.pod,
                epoch: owner.epoch,
                lease_millis: owner.lease_millis,
            }),
            last_heartbeat: snapshot.last_heartbeat.into_iter().collect(),
            decided: snapshot.decided.into_iter().collect(),
            position: snapshot.position,
        }
    }
}

/// A shard's fold as stored in a fold snapshot ([`ShardFold::snapshot`]).
/// Stored: never reorder fields; a new field means a new snapshot version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardFoldSnapshot {
    pub owner: Option<SnapshotOwner>,
    /// Every monitor with a record in the log, with its basis, by monitor id.
    pub last_heartbeat: Vec<(MonitorId, Sequence)>,
    /// The effective decisions' `(monitor, basis)` that can still void a repeat.
    pub decided: Vec<(MonitorId, Sequence)>,
    pub position: Sequence,
}

/// [`Owner`] as stored in a [`ShardFoldSnapshot`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotOwner {
    pub pod: String,
    pub epoch: Sequence,
    pub lease_millis: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn monitor(n: u8) -> MonitorId {
        MonitorId::from_bytes([n; 16])
    }

    fn heartbeat(n: u8) -> ShardRecord {
        ShardRecord::Heartbeat {
            monitor: monitor(n),
            event: vec![],
        }
    }

    fn takeover(pod: &str) -> ShardRecord {
        ShardRecord::Takeover {
            pod: pod.to_owned(),
            lease_millis: 2_000,
        }
    }

    fn decision(n: u8, epoch: Sequence, basis: Sequence) -> ShardRecord {
        ShardRecord::Decision {
            monitor: monitor(n),
            epoch,
            basis,
            event: vec![],
        }
    }

    fn fold(records: &[ShardRecord]) -> Vec<Folded> {
        let mut fold = ShardFold::default();
        records
            .iter()
            .zip(1..)
            .map(|(record, sequence)| fold.apply(sequence, record))
            .collect()
    }

    #[test]
    fn a_delivery_outcome_overtakes_no_verdict() {
        let outcome = ShardRecord::Delivered {
            monitor: monitor(1),
            channel: ChannelId::from_bytes([2; 16]),
            alert: "PUSHMON_S0:3".to_owned(),
            attempts: 1,
            error: None,
        };
        let folded = fold(&[
            takeover("a"),     // 1
            heartbeat(1),      // 2
            decision(1, 1, 2), // 3: effective
            outcome,           // 4: its delivery's outcome
            decision(1, 1, 3), // 5: a reminder on the decision, not on the outcome
        ]);
        assert_eq!(folded[3], Folded::Applied);
        assert_eq!(folded[4], Folded::Effective);
    }

    #[test]
    fn a_signal_is_a_heartbeat_its_monitors_verdict_is_based_on() {
        let signal = ShardRecord::Signal {
            monitor: monitor(1),
            event: vec![],
        };
        let folded = fold(&[
            takeover("a"),     // 1
            heartbeat(1),      // 2
            signal,            // 3: a run's start
            decision(1, 1, 2), // 4: judged before the start was applied: overtaken
            decision(1, 1, 3), // 5: judged on the start
        ]);
        assert_eq!(folded[2], Folded::Applied);
        assert_eq!(folded[3], Folded::Void(Void::Overtaken));
        assert_eq!(folded[4], Folded::Effective);
    }

    #[test]
    fn a_decision_by_the_current_owner_on_the_last_heartbeat_is_effective_once() {
        let folded = fold(&[
            takeover("a"),     // 1: epoch 1
            heartbeat(1),      // 2
            decision(1, 1, 2), // 3: effective
            decision(1, 1, 2), // 4: the same verdict again
            decision(1, 1, 0), // 5: based on nothing, but monitor 1 had a heartbeat
            decision(1, 1, 3), // 6: based on the effective one (a reminder)
            ShardRecord::Config {
                monitor: monitor(1),
                event: vec![],
            }, // 7: a change
            decision(1, 1, 6), // 8: decided before the change
            decision(1, 1, 7), // 9: after it
        ]);
        assert_eq!(folded[2], Folded::Effective);
        assert_eq!(folded[3], Folded::Void(Void::Overtaken));
        assert_eq!(folded[4], Folded::Void(Void::Overtaken));
        assert_eq!(folded[5], Folded::Effective);
        assert_eq!(folded[7], Folded::Void(Void::Overtaken));
        assert_eq!(folded[8], Folded::Effective);
    }

    #[test]
    fn a_heartbeat_in_the_log_before_the_decision_voids_it() {
        let folded = fold(&[
            takeover("a"),     // 1
            heartbeat(1),      // 2
            heartbeat(1),      // 3: reached the log before the owner's verdict on 2
            decision(1, 1, 2), // 4
            decision(1, 1, 3), // 5
        ]);
        assert_eq!(folded[3], Folded::Void(Void::Overtaken));
        assert_eq!(folded[4], Folded::Effective);
    }

    #[test]
    fn each_heartbeat_of_a_heartbeats_record_is_a_heartbeat_at_its_sequence() {
        let batch = |monitors: &[u8]| ShardRecord::Heartbeats {
            heartbeats: monitors.iter().map(|n| (monitor(*n), vec![])).collect(),
        };
        let folded = fold(&[
            takeover("a"),     // 1
            batch(&[1, 2, 1]), // 2: monitor 1 twice, monitor 2 once
            decision(1, 1, 2), // 3: on the record holding monitor 1's last heartbeat
            batch(&[3]),       // 4: another monitor's
            decision(2, 1, 2), // 5: monitor 2's last heartbeat is still at 2
            batch(&[2]),       // 6
            decision(2, 1, 4), // 7: based before 6, which holds monitor 2's
        ]);
        assert_eq!(folded[1], Folded::Applied);
        assert_eq!(folded[2], Folded::Effective);
        assert_eq!(folded[4], Folded::Effective);
        assert_eq!(folded[6], Folded::Void(Void::Overtaken));
    }

    #[test]
    fn a_zombies_decisions_after_a_takeover_and_any_after_a_release_are_void() {
        let folded = fold(&[
            takeover("a"),     // 1
            heartbeat(1),      // 2
            takeover("b"),     // 3: a is a zombie
            decision(1, 1, 2), // 4: a's
            decision(1, 3, 2), // 5: b's
            ShardRecord::Release {
                pod: "b".to_owned(),
                epoch: 3,
            }, // 6
            heartbeat(2),      // 7
            decision(2, 3, 7), // 8: b's, released
            ShardRecord::Release {
                pod: "a".to_owned(),
                epoch: 1,
            }, // 9: stale, ignored
        ]);
        assert_eq!(folded[3], Folded::Void(Void::StaleEpoch));
        assert_eq!(folded[4], Folded::Effective);
        assert_eq!(folded[7], Folded::Void(Void::StaleEpoch));
        let mut whole = ShardFold::default();
        for (record, sequence) in [takeover("a"), takeover("b")].iter().zip(1..) {
            whole.apply(sequence, record);
        }
        whole.apply(
            3,
            &ShardRecord::Release {
                pod: "a".to_owned(),
                epoch: 1,
            },
        );
        assert_eq!(whole.epoch(), Some(2), "a stale release leaves the owner");
    }

    /// What a pod does in a generated history.
    #[derive(Clone, Debug)]
    enum Step {
        /// A heartbeat for monitor `m` reaches the log.
        Heartbeat(u8),
        /// Pod `p` takes the shard over (the log's fencing lets it land only when the
        /// pod saw the whole ownership history; here it lands regardless: the fold
        /// must not depend on that).
        Takeover(u8),
        /// Pod `p` catches up with the log: its view becomes the whole log so far.
        CatchUp(u8),
        /// Pod `p` decides about monitor `m` from its view, if its view says it owns
        /// the shard (a zombie's view may be old).
        Decide(u8, u8),
        /// The owner in pod `p`'s view releases the shard.
        Release(u8),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            4 => (0u8..3).prop_map(Step::Heartbeat),
            1 => (0u8..3).prop_map(Step::Takeover),
            3 => (0u8..3).prop_map(Step::CatchUp),
            4 => ((0u8..3), (0u8..3)).prop_map(|(pod, monitor)| Step::Decide(pod, monitor)),
            1 => (0u8..3).prop_map(Step::Release),
        ]
    }

    /// Any record a generated history may hold, decisions with any epoch and basis.
    fn any_record() -> impl Strategy<Value = ShardRecord> {
        prop_oneof![
            4 => (0u8..3).prop_map(heartbeat),
            1 => (0u8..3).prop_map(|pod| takeover(&pod.to_string())),
            5 => ((0u8..3), (0u64..40), (0u64..40)).prop_map(|(m, epoch, basis)| decision(m, epoch, basis)),
            1 => ((0u8..3), (0u64..40)).prop_map(|(pod, epoch)| ShardRecord::Release { pod: pod.to_string(), epoch }),
            1 => (0u8..3).prop_map(|m| ShardRecord::Config { monitor: monitor(m), event: vec![] }),
            1 => (0u8..3).prop_map(|pod| ShardRecord::Renewal { pod: pod.to_string(), epoch: 1 }),
        ]
    }

    proptest! {
        /// Folding N records, and folding the first K, taking a snapshot (pruned)
        /// and folding K+1..N into the fold made from it,
        /// give the same answer for every later record, the same owner and bases.
        #[test]
        fn a_fold_from_a_snapshot_answers_every_later_record_as_the_whole_fold(
            records in proptest::collection::vec(any_record(), 1..120),
            cut in 0usize..120,
        ) {
            // Half the decisions as an up-to-date owner makes them (effective unless
            // repeated), the others with any epoch and basis.
            let mut running = ShardFold::default();
            let records: Vec<ShardRecord> = records
                .into_iter()
                .zip(1..)
                .map(|(record, sequence)| {
                    let record = match record {
                        ShardRecord::Decision { monitor, basis, event, .. } if basis % 2 == 0 => {
                            ShardRecord::Decision {
                                monitor,
                                epoch: running.epoch().unwrap_or(0),
                                basis: running.last_heartbeat(&monitor),
                                event,
                            }
                        }
                        other => other,
                    };
                    running.apply(sequence, &record);
                    record
                })
                .collect();
            let cut = cut.min(records.len());
            let whole = fold(&records);
            let mut first = ShardFold::default();
            for (record, sequence) in records[..cut].iter().zip(1..) {
                first.apply(sequence, record);
            }
            // (Its stored bytes: `store::codec::fold_snapshot_bytes_are_stable`.)
            let snapshot = first.snapshot();
            let mut resumed = ShardFold::from_snapshot(snapshot);
            let mut unpruned = first.clone();
            for (index, record) in records.iter().enumerate().skip(cut) {
                let sequence = index as u64 + 1;
                prop_assert_eq!(resumed.apply(sequence, record), whole[index], "record {} after a cut at {}", index, cut);
                unpruned.apply(sequence, record);
                prop_assert_eq!(resumed.owner(), unpruned.owner());
                prop_assert_eq!(resumed.position(), unpruned.position());
            }
            let mut bases: Vec<_> = resumed.bases().collect();
            let mut expected: Vec<_> = unpruned.bases().collect();
            bases.sort_unstable();
            expected.sort_unstable();
            prop_assert_eq!(bases, expected);
        }
    }

    #[test]
    fn a_snapshot_keeps_every_basis_and_the_owner_and_drops_decided_pairs_that_cannot_matter() {
        let mut whole = ShardFold::default();
        for (record, sequence) in [
            takeover("a"),     // 1
            heartbeat(1),      // 2
            decision(1, 1, 2), // 3: effective; monitor 1's basis is now 3
            heartbeat(2),      // 4
        ]
        .iter()
        .zip(1..)
        {
            whole.apply(sequence, record);
        }
        assert!(whole.has_decided(&monitor(1), 2));
        let snapshot = whole.snapshot();
        assert_eq!(
            snapshot.owner,
            Some(SnapshotOwner {
                pod: "a".to_owned(),
                epoch: 1,
                lease_millis: 2_000
            })
        );
        let mut expected = vec![(monitor(1), 3), (monitor(2), 4)];
        expected.sort_unstable();
        assert_eq!(snapshot.last_heartbeat, expected);
        assert!(snapshot.decided.is_empty(), "{snapshot:?}");
        assert_eq!(snapshot.position, 4);
        // The pruned pair still voids a repeat: as overtaken, as the whole fold says.
        let mut resumed = ShardFold::from_snapshot(snapshot);
        assert_eq!(
            resumed.apply(5, &decision(1, 1, 2)),
            whole.clone().apply(5, &decision(1, 1, 2))
        );
        assert_eq!(resumed.apply(6, &decision(2, 1, 4)), Folded::Effective);
    }

    proptest! {
        #[test]
        fn decisions_count_once_per_basis_and_never_for_a_zombie(steps in proptest::collection::vec(step(), 1..80)) {
            let mut log: Vec<ShardRecord> = Vec::new();
            let mut views: [usize; 3] = [0; 3];
            // For each decision: its index in the log and whether a takeover or release
            // reached the log between the decider's view and the decision.
            let mut zombie_decisions = Vec::new();
            let mut up_to_date_decisions = Vec::new();
            for step in steps {
                match step {
                    Step::Heartbeat(m) => log.push(heartbeat(m)),
                    Step::Takeover(pod) => {
                        log.push(takeover(&pod.to_string()));
                        views[usize::from(pod)] = log.len();
                    }
                    Step::CatchUp(pod) => views[usize::from(pod)] = log.len(),
                    Step::Release(pod) => {
                        let mut view = ShardFold::default();
                        for (record, sequence) in log[..views[usize::from(pod)]].iter().zip(1..) {
                            view.apply(sequence, record);
                        }
                        if let Some(owner) = view.owner().filter(|owner| owner.pod == pod.to_string()) {
                            log.push(ShardRecord::Release { pod: owner.pod.clone(), epoch: owner.epoch });
                        }
                    }
                    Step::Decide(pod, m) => {
                        let seen = views[usize::from(pod)];
                        let mut view = ShardFold::default();
                        for (record, sequence) in log[..seen].iter().zip(1..) {
                            view.apply(sequence, record);
                        }
                        let Some(owner) = view.owner().filter(|owner| owner.pod == pod.to_string()) else {
                            continue;
                        };
                        let basis = view.last_heartbeat(&monitor(m));
                        if view.has_decided(&monitor(m), basis) {
                            continue;
                        }
                        // A takeover since its view, or a release of its own epoch,
                        // makes the decider a zombie.
                        let overtaken_ownership = log[seen..].iter().any(|record| match record {
                            ShardRecord::Takeover { .. } => true,
                            ShardRecord::Release { epoch, .. } => *epoch == owner.epoch,
                            _ => false,
                        });
                        let overtaken_heartbeat = log[seen..].iter().any(|record| {
                            matches!(record, ShardRecord::Heartbeat { monitor: other, .. } if *other == monitor(m))
                        });
                        let own_decision_since = log[seen..].iter().any(|record| {
                            matches!(record, ShardRecord::Decision { monitor: other, basis: b, .. } if *other == monitor(m) && *b == basis)
                        });
                        log.push(decision(m, owner.epoch, basis));
                        if overtaken_ownership {
                            zombie_decisions.push(log.len() - 1);
                        } else if !overtaken_heartbeat && !own_decision_since {
                            up_to_date_decisions.push(log.len() - 1);
                        }
                    }
                }
            }
            let folded = fold(&log);
            let mut effective = HashSet::new();
            for (index, (record, result)) in log.iter().zip(&folded).enumerate() {
                if let (ShardRecord::Decision { monitor, basis, .. }, Folded::Effective) = (record, result) {
                    prop_assert!(effective.insert((*monitor, *basis)), "two effective decisions on one basis at {index}");
                }
            }
            for index in zombie_decisions {
                prop_assert_eq!(folded[index], Folded::Void(Void::StaleEpoch), "a zombie's decision at {} counted", index);
            }
            // The rule does not void everything: an owner that saw the whole log decides
            // effectively.
            for index in up_to_date_decisions {
                prop_assert_eq!(folded[index], Folded::Effective, "an up-to-date owner's decision at {} was void", index);
            }
        }
    }
}
