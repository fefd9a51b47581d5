//! Which monitors this process decides deadlines for: every one on a single node; in
//! the clustered mode only those of the shards this pod owns and may decide for now,
//! and has folded up to the takeover (the gate `app/cluster/alerts.rs` hands in).
//! An actor that may not decide arms no deadline timer, judges nothing when one it
//! armed earlier fires, and sends no alert; heartbeats and what they cause are
//! applied as always. In the clustered mode it also holds where delivery outcomes go
//! ([`OutcomeSink`]) and whether an owned shard is still catching up (`/readyz`).

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use dashmap::DashMap;

use crate::domain::fence::Sequence;
use crate::domain::ids::{MonitorId, Timestamp};

/// The epoch this pod may decide for a monitor under now (`None`: it may not).
pub type Gate = Arc<dyn Fn(MonitorId) -> Option<Sequence> + Send + Sync>;

/// The clustered mode's recorder of delivery outcomes (`app/cluster/alerts.rs`): it
/// publishes the outcome to the monitor's shard and returns once this pod's fold has
/// applied it, instead of recording it locally.
pub trait OutcomeSink: Send + Sync + 'static {
    fn record(
        &self,
        delivery: crate::domain::alert::Delivery,
        outcome: crate::domain::event::DeliveryOutcome,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>>;
}

/// A shard taken over after an outage (no ownership record for several leases: no
/// pod could decide, and none could acknowledge pushes): a deadline that fell in it
/// gets the restart grace, as after a single node's restart (`app/cluster/engine.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outage {
    /// When the servers stored the shard's last ownership record before it.
    pub since: Timestamp,
    /// When this pod began deciding for the shard again.
    pub until: Timestamp,
    /// `--restart-grace`.
    pub grace_seconds: u32,
}

/// The outage a monitor's shard was taken over after, if any.
pub type Outages = Arc<dyn Fn(MonitorId) -> Option<Outage> + Send + Sync>;

/// How many (local, shard) sequence pairs of its latest heartbeats are kept per
/// monitor: enough for the heartbeats an actor can be behind by between two verdicts.
const BASES_KEPT: usize = 64;

#[derive(Default)]
pub struct Deciding {
    clustered: AtomicBool,
    gate: OnceLock<Gate>,
    /// Per monitor, its latest heartbeats' local sequence numbers and their
    /// sequences in the shard's log (written by the fold): a verdict's basis in the
    /// shard log is the shard sequence of the last heartbeat its actor had applied.
    bases: DashMap<MonitorId, VecDeque<(u64, Sequence)>>,
    outcomes: OnceLock<Arc<dyn OutcomeSink>>,
    /// Whether a shard this pod owns is still being folded up to its takeover.
    catching_up: OnceLock<Arc<dyn Fn() -> bool + Send + Sync>>,
    outages: OnceLock<Outages>,
}

impl Deciding {
    /// The clustered mode: nothing is decided until [`Self::set_gate`].
    pub fn set_clustered(&self) {
        self.clustered.store(true, Ordering::Release);
    }

    pub fn set_gate(&self, gate: Gate) {
        let _ = self.gate.set(gate);
    }

    pub fn may_decide(&self, monitor: MonitorId) -> bool {
        if !self.is_clustered() {
            return true;
        }
        self.epoch(monitor).is_some()
    }

    pub fn is_clustered(&self) -> bool {
        self.clustered.load(Ordering::Acquire)
    }

    /// The epoch to decide under (clustered mode).
    pub fn epoch(&self, monitor: MonitorId) -> Option<Sequence> {
        self.gate.get().and_then(|gate| gate(monitor))
    }

    pub fn set_outcomes(&self, sink: Arc<dyn OutcomeSink>) {
        let _ = self.outcomes.set(sink);
    }

    pub fn outcomes(&self) -> Option<Arc<dyn OutcomeSink>> {
        self.outcomes.get().cloned()
    }

    pub fn set_catching_up(&self, catching_up: Arc<dyn Fn() -> bool + Send + Sync>) {
        let _ = self.catching_up.set(catching_up);
    }

    pub fn set_outages(&self, outages: Outages) {
        let _ = self.outages.set(outages);
    }

    /// The outage `monitor`'s shard was taken over after by this pod, if any.
    pub fn outage(&self, monitor: MonitorId) -> Option<Outage> {
        self.outages.get().and_then(|outages| outages(monitor))
    }

    /// Whether a shard this pod owns is not yet folded up to its takeover (`/readyz`).
    pub fn catching_up(&self) -> bool {
        self.catching_up
            .get()
            .is_some_and(|catching_up| catching_up())
    }

    /// `monitor`'s last record in the shard as folded when this pod's fold (re)started
    /// (`shard`), taken as the basis until the fold writes a later one: a monitor
    /// silent since the pod restarted is judged on it, not on nothing.
    pub fn seed_basis(&self, monitor: MonitorId, shard: Sequence) {
        let mut kept = self.bases.entry(monitor).or_default();
        if kept.is_empty() {
            kept.push_back((0, shard));
        }
    }

    /// The fold wrote `monitor`'s record at shard sequence `shard` (a heartbeat, a
    /// config record, an effective decision) as local sequence number `local`.
    pub fn note_heartbeat(&self, monitor: MonitorId, local: u64, shard: Sequence) {
        let mut kept = self.bases.entry(monitor).or_default();
        kept.push_back((local, shard));
        while kept.len() > BASES_KEPT {
            kept.pop_front();
        }
    }

    /// The shard sequence of `monitor`'s last record at or before local sequence
    /// `applied` (0: none known, which the fold's rule voids if the shard has one).
    pub fn basis(&self, monitor: MonitorId, applied: u64) -> Sequence {
        self.bases
            .get(&monitor)
            .and_then(|kept| {
                kept.iter()
                    .rev()
                    .find(|(local, _)| *local <= applied)
                    .map(|(_, shard)| *shard)
            })
            .unwrap_or(0)
    }
}
