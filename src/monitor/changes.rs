//! Changes of monitors, told to whoever watches live (the dashboard's server-sent
//! events) once they are durable.
//!
//! A monitor's actor publishes after every change it persisted (a change of state, of
//! configuration, a pause, a deletion); the registry publishes a creation. A plain
//! heartbeat, which changes nothing but the `last_*` fields, publishes nothing: the
//! push path pays not even the send. Publishing never waits: a tokio broadcast keeps
//! the newest [`CAPACITY`] changes, and a watcher that falls behind is told it lagged
//! (it then reads the current state afresh) instead of slowing anyone down.

use tokio::sync::broadcast;

use crate::domain::ids::{MonitorId, Timestamp};
use crate::domain::machine::{Monitor, Status};

/// Changes kept for watchers that have not read them yet.
pub const CAPACITY: usize = 1024;

/// One change of one monitor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MonitorChange {
    pub id: MonitorId,
    /// Its state after the change; `None`: deleted.
    pub status: Option<Status>,
    /// The sequence number of the change's last event.
    pub seq: u64,
    /// When it happened.
    pub at: Timestamp,
}

/// Where changes are published; clones share the channel.
#[derive(Clone)]
pub struct Changes(broadcast::Sender<MonitorChange>);

impl Default for Changes {
    fn default() -> Self {
        Self(broadcast::channel(CAPACITY).0)
    }
}

impl Changes {
    /// Tells every watcher that `monitor` is now as given (`deleted`: gone).
    pub fn publish(&self, monitor: &Monitor, deleted: bool) {
        // Without watchers the send fails at once, which is fine: nobody is looking.
        let _ = self.0.send(MonitorChange {
            id: monitor.id,
            status: (!deleted).then_some(monitor.status),
            seq: monitor.last_seq,
            at: monitor.last_event_at,
        });
    }

    /// A new watcher: it hears every change published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<MonitorChange> {
        self.0.subscribe()
    }
}
