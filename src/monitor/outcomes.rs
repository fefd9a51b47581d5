//! Records how alert deliveries ended: the reader of the dispatcher's reports.
//!
//! Each outcome goes through the event log (`cluster/event_log.rs`, [`OutcomeWrite`]).
//! On a single node it is recorded by its monitor's actor (a `DeliveryRecorded` event, which
//! removes the outbox entry in the same batch), or, if the monitor was deleted
//! meanwhile, by the store in the deleted monitor's log (`EventStore::settle_orphan`),
//! the entry removed in the same batch. While the store cannot write, or the
//! monitor's actor is being restarted or rebuilt, it retries every second. The dispatcher waits for each record before it sends the
//! next delivery of the same (channel, monitor).

use std::sync::Arc;
use std::time::Duration;

use tokio::task::{JoinHandle, JoinSet};

use crate::alert::dispatcher::{DeliveryReport, DeliveryReports};
use crate::clock::Clock;
use crate::cluster::event_log::{EventLog, Replication, Write};
use crate::domain::alert::{AlertKind, Delivery};
use crate::domain::event::DeliveryOutcome;
use crate::prometheus;
use crate::store::EventStore;

use super::registry::{Registry, RegistryError};

/// How often to retry recording an outcome the store could not take.
const RECORD_RETRY_DELAY: Duration = Duration::from_secs(1);

/// Records every report until the dispatcher stops, or the task is aborted; either
/// way the records still retrying are dropped with it (their outbox entries stay, and
/// are delivered again after the next start).
///
/// Start it only once every stored monitor's actor runs: before that, the registry
/// would take a monitor not yet rebuilt for a deleted one and settle its entry.
pub fn record_outcomes(
    registry: Registry,
    mut reports: DeliveryReports,
    clock: Clock,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        // One task per outcome: a monitor that is restarting holds up only its own.
        let mut recording = JoinSet::new();
        loop {
            tokio::select! {
                report = reports.recv() => {
                    let Some(report) = report else { break };
                    let registry = registry.clone();
                    recording.spawn(async move {
                        let DeliveryReport { delivery, outcome, recorded } = report;
                        let log = std::sync::Arc::clone(registry.event_log());
                        log.write(OutcomeWrite {
                            registry: &registry,
                            delivery,
                            outcome,
                            clock,
                        })
                        .await;
                        let _ = recorded.send(());
                    });
                }
                Some(_) = recording.join_next(), if !recording.is_empty() => {}
            }
        }
    })
}

/// A delivery's outcome, as each backend records it: on a single node its monitor's
/// actor records it (or the store, for a deleted monitor); clustered, the alerts
/// publish it to the monitor's shard as a `DeliveredAt` record that every pod folds
/// (`monitor::deciding::OutcomeSink`, `app/cluster/alerts.rs`).
struct OutcomeWrite<'a> {
    registry: &'a Registry,
    delivery: Delivery,
    outcome: DeliveryOutcome,
    clock: Clock,
}

impl Write for OutcomeWrite<'_> {
    type Output = ();

    async fn to_store(self, store: &EventStore) {
        record(
            self.registry,
            store,
            &self.delivery,
            self.outcome,
            self.clock,
        )
        .await;
    }

    async fn to_shards(self, _: &Arc<dyn Replication>) {
        count(&self.delivery, &self.outcome);
        match self.registry.outcome_sink() {
            Some(sink) => sink.record(self.delivery, self.outcome).await,
            None => self.not_recorded(),
        }
    }

    fn not_joined(self) {
        count(&self.delivery, &self.outcome);
        self.not_recorded();
    }
}

impl OutcomeWrite<'_> {
    /// Nothing deliverable before the pod joined (only an owner sends): logged.
    fn not_recorded(&self) {
        tracing::warn!(
            monitor = %self.delivery.alert.monitor_id,
            "no publisher for a delivery's outcome yet; it is sent again by the next owner"
        );
    }
}

/// Has the monitor's actor record the outcome (which settles the outbox entry),
/// retrying while the store cannot write.
async fn record(
    registry: &Registry,
    store: &EventStore,
    delivery: &Delivery,
    outcome: DeliveryOutcome,
    clock: Clock,
) {
    count(delivery, &outcome);
    settle(registry, store, delivery.alert.monitor_id, outcome, clock).await;
}

/// Counts the outcome in `pushmon_alerts_total`.
fn count(delivery: &Delivery, outcome: &DeliveryOutcome) {
    let event = match delivery.alert.kind {
        AlertKind::Down => "down",
        AlertKind::Up => "up",
    };
    let result = if outcome.error.is_none() {
        "success"
    } else {
        "failure"
    };
    metrics::counter!(prometheus::ALERTS_TOTAL, "event" => event, "result" => result).increment(1);
}

/// Has the monitor's actor record the outcome of the local outbox entry it names
/// (`alert_seq`), which settles the entry, or the store if the monitor was deleted,
/// retrying while the store cannot write. The clustered mode's fold records the
/// owner's outcomes on every pod with it.
pub async fn settle(
    registry: &Registry,
    store: &EventStore,
    monitor: crate::domain::ids::MonitorId,
    outcome: DeliveryOutcome,
    clock: Clock,
) {
    loop {
        let recorded = match registry.record_delivery(monitor, outcome.clone()).await {
            Err(RegistryError::NotFound) => store
                .settle_orphan(monitor, outcome.clone(), clock.now())
                .await
                .map(|_| ())
                .map_err(RegistryError::from),
            other => other,
        };
        match recorded {
            Ok(()) => return,
            Err(error) => {
                tracing::warn!(%monitor, %error, "cannot record a delivery outcome yet; retrying");
                tokio::time::sleep(RECORD_RETRY_DELAY).await;
            }
        }
    }
}
