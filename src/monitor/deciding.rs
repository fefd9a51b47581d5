//! Which monitors this process decides deadlines for: every one on a single node; in
//! the clustered mode only those of the shards this pod owns and may decide for now
//! (`cluster::ownership::Ownership::deciding_epoch`, handed in by `app/cluster.rs`).
//! An actor that may not decide arms no deadline timer and judges nothing when one it
//! armed earlier fires; heartbeats and what they cause are applied as always.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use crate::domain::ids::MonitorId;

/// Whether this pod may decide for a monitor now.
pub type Gate = Arc<dyn Fn(MonitorId) -> bool + Send + Sync>;

#[derive(Default)]
pub struct Deciding {
    clustered: AtomicBool,
    gate: OnceLock<Gate>,
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
        if !self.clustered.load(Ordering::Acquire) {
            return true;
        }
        self.gate.get().is_some_and(|gate| gate(monitor))
    }
}
