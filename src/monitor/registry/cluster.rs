//! The registry in the clustered mode (`--cluster-nats`): the shard logs are the log of
//! record for plain heartbeats and monitor creations, and the local store is this pod's
//! materialized copy, written by the fold of every shard (`app/cluster.rs`).
//!
//! - A plain push is published as a heartbeat record to its monitor's shard and
//!   answered once its PubAck arrived ([`Replication::publish`]), never written
//!   locally on the way: every pod's fold, this one's too, writes it to its store
//!   ([`Registry::apply_replicated_heartbeats`]), whose writer hands it to the
//!   monitor's inbox as after any commit.
//! - A creation is checked here, published as a config record, and answered once this
//!   pod's own fold has applied it (read your writes); every pod's fold creates the
//!   monitor with the same id and token ([`Registry::apply_replicated_creation`]).
//!
//! - A job's signal (`kind`, `rid`, `exit`, a ping URL's start, fail, exit status or
//!   log) is published as a signal record and answered once this pod's fold applied
//!   it; every pod's fold has the monitor's actor decide it at the time the taking
//!   pod received it ([`Registry::apply_replicated_signal`]), so every pod records
//!   the same run and what it causes.
//!
//! Before the pod has joined (no [`Replication`] yet), pushes and creations answer 503.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::domain::event::{Event, Heartbeat, MonitorConfig, Stamped};
use crate::domain::fence::ShardRecord;
use crate::domain::ids::{MonitorId, PushToken, Timestamp};
use crate::domain::machine::Monitor;
use crate::domain::signal::Signal;
use crate::store::StoreError;
use crate::store::codec::{self, StoredEvent};

use super::{Registry, RegistryError, RegistryMsg, new_push_token};

/// How long a creation waits for this pod's fold to apply the record it published.
const READ_YOUR_WRITES: Duration = Duration::from_secs(10);

pub use crate::monitor::deciding::Replication;

/// Whether the registry runs clustered, and its publisher once the pod has joined.
#[derive(Default)]
pub(super) struct ReplicationSlot {
    clustered: std::sync::atomic::AtomicBool,
    publisher: OnceLock<Arc<dyn Replication>>,
}

impl Registry {
    /// Switches the registry to the clustered mode: until [`Self::set_replication`],
    /// pushes and creations answer 503. Call before serving.
    pub fn set_clustered(&self) {
        self.replication
            .clustered
            .store(true, std::sync::atomic::Ordering::Release);
        self.deciding.set_clustered();
    }

    /// Which monitors this pod decides deadlines for from now on (clustered mode);
    /// call [`Self::redecide`] whenever it may have become true for more monitors.
    pub fn set_deciding(&self, gate: crate::monitor::deciding::Gate) {
        self.deciding.set_gate(gate);
    }

    /// Has every monitor for which `now_deciding` holds re-arm its deadline timer at
    /// once: one whose deadline fell while no pod decided for it judges it at once.
    pub fn redecide(&self, now_deciding: impl Fn(MonitorId) -> bool) {
        for (id, actor) in self.directory.entries() {
            if now_deciding(id) {
                let _ = actor.cast(crate::monitor::messages::MonitorMsg::ParentChanged);
            }
        }
    }

    /// The clustered mode's recorder of delivery outcomes (`monitor::record_outcomes`
    /// hands every outcome to it).
    pub fn set_outcomes(&self, sink: Arc<dyn crate::monitor::deciding::OutcomeSink>) {
        self.deciding.set_outcomes(sink);
    }

    /// What says whether an owned shard is still being folded up to its takeover.
    pub fn set_catching_up(&self, catching_up: Arc<dyn Fn() -> bool + Send + Sync>) {
        self.deciding.set_catching_up(catching_up);
    }

    /// The clustered mode's recorder of delivery outcomes, once joined.
    pub fn outcome_sink(&self) -> Option<Arc<dyn crate::monitor::deciding::OutcomeSink>> {
        self.deciding.outcomes()
    }

    /// Whether a shard this pod owns is not yet folded up to its takeover: not ready.
    pub fn cluster_catching_up(&self) -> bool {
        self.deciding.catching_up()
    }

    /// Seeds `monitor`'s basis with its last record as the fold (re)started
    /// (`Deciding::seed_basis`).
    pub fn seed_basis(&self, monitor: MonitorId, sequence: crate::domain::fence::Sequence) {
        self.deciding.seed_basis(monitor, sequence);
    }

    /// The publisher of the joined pod.
    pub fn set_replication(&self, publisher: Arc<dyn Replication>) {
        self.deciding.set_publisher(Arc::clone(&publisher));
        let _ = self.replication.publisher.set(publisher);
    }

    /// `None` single-node; the publisher (or 503 before joining) clustered.
    pub(super) fn replication(&self) -> Option<Result<Arc<dyn Replication>, RegistryError>> {
        if !self
            .replication
            .clustered
            .load(std::sync::atomic::Ordering::Acquire)
        {
            return None;
        }
        Some(
            self.replication
                .publisher
                .get()
                .cloned()
                .ok_or(RegistryError::Unavailable),
        )
    }

    /// A plain push in the clustered mode: a heartbeat record in the monitor's shard,
    /// `Ok` once acknowledged, 503 otherwise.
    pub(super) async fn publish_heartbeat(
        publisher: &dyn Replication,
        monitor: MonitorId,
        at: Timestamp,
        heartbeat: Heartbeat,
    ) -> Result<(), RegistryError> {
        let event = codec::encode_event(&StoredEvent {
            at,
            event: Event::HeartbeatReceived(heartbeat),
        })
        .map_err(|error| RegistryError::Store(StoreError::from(error)))?;
        publisher
            .publish(ShardRecord::Heartbeat { monitor, event })
            .await
            .map(|_| ())
            .map_err(|error| {
                tracing::warn!(%monitor, %error, "a heartbeat was not acknowledged by its shard");
                RegistryError::Unavailable
            })
    }

    /// A job's signal in the clustered mode: a signal record in the monitor's shard
    /// (with the time this pod received it), answered once acknowledged and applied
    /// by this pod's fold (read your writes: what it caused is seen here when the job
    /// hears 200). Every pod's fold has the monitor's actor decide it alike
    /// ([`Self::apply_replicated_signal`]).
    pub(super) async fn publish_signal(
        &self,
        publisher: &dyn Replication,
        monitor: MonitorId,
        signal: Signal,
    ) -> Result<(), RegistryError> {
        let event = codec::encode_signal(&codec::StoredSignal {
            at: self.clock.now(),
            signal,
        })
        .map_err(|error| RegistryError::Store(StoreError::from(error)))?;
        let sequence = publisher
            .publish(ShardRecord::Signal { monitor, event })
            .await
            .map_err(|error| {
                tracing::warn!(%monitor, %error, "a signal was not acknowledged by its shard");
                RegistryError::Unavailable
            })?;
        if !publisher.applied(monitor, sequence).await {
            return Err(RegistryError::Unavailable);
        }
        Ok(())
    }

    /// Has `monitor`'s actor decide a signal folded from a shard log at `at` (the
    /// time the taking pod received it) and record what it causes, with the stream's
    /// position `position` in the same batch, and waits until it did. A monitor this
    /// pod does not know (deleted) is skipped.
    pub async fn apply_replicated_signal(
        &self,
        monitor: MonitorId,
        position: crate::store::FoldPosition,
        at: Timestamp,
        signal: Signal,
    ) -> Result<(), RegistryError> {
        let folded = crate::monitor::messages::FoldedSignal {
            signal,
            at,
            position,
        };
        self.adopt_folded(monitor, Some(position.sequence), |reply| {
            crate::monitor::messages::MonitorMsg::FoldedSignal(Box::new(folded), reply)
        })
        .await
    }

    /// A creation in the clustered mode (checked by the caller): a config record in
    /// the new monitor's shard, answered once this pod's fold has created it.
    pub(super) async fn publish_creation(
        &self,
        publisher: &dyn Replication,
        config: MonitorConfig,
        token: Option<PushToken>,
    ) -> Result<Monitor, RegistryError> {
        let now = self.clock.now();
        let id = MonitorId::generate(now);
        let event = codec::encode_decided(&[Stamped {
            at: now,
            event: Event::Created {
                config: Box::new(config),
                token: token.unwrap_or_else(new_push_token),
            },
        }])
        .map_err(|error| RegistryError::Store(StoreError::from(error)))?;
        publisher
            .publish(ShardRecord::Config { monitor: id, event })
            .await
            .map_err(|error| {
                tracing::warn!(monitor = %id, %error, "a creation was not acknowledged by its shard");
                RegistryError::Unavailable
            })?;
        let waited = tokio::time::Instant::now();
        while self.directory.by_id(id).is_none() {
            if waited.elapsed() > READ_YOUR_WRITES {
                return Err(RegistryError::Unavailable);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        self.current_state(id).await
    }

    /// A management command in the clustered mode: checked and decided by the
    /// monitor's actor on this pod, published as a config record in its shard, and
    /// answered once this pod's fold has had the actor adopt it (read your writes).
    pub(super) async fn publish_command(
        &self,
        publisher: &dyn Replication,
        id: MonitorId,
        command: crate::domain::machine::Command,
    ) -> Result<Monitor, RegistryError> {
        let actor = self.directory.by_id(id).ok_or(RegistryError::NotFound)?;
        let (reply, answer) = tokio::sync::oneshot::channel();
        actor
            .cast(crate::monitor::messages::MonitorMsg::Propose(
                Box::new(command),
                reply,
            ))
            .map_err(|_| RegistryError::Unavailable)?;
        let (events, next) = answer.await.map_err(|_| RegistryError::Unavailable)??;
        if events.is_empty() {
            return Ok(next);
        }
        let event = codec::encode_decided(&events)
            .map_err(|error| RegistryError::Store(StoreError::from(error)))?;
        let sequence = publisher
            .publish(ShardRecord::Config { monitor: id, event })
            .await
            .map_err(|error| {
                tracing::warn!(monitor = %id, %error, "a change was not acknowledged by its shard");
                RegistryError::Unavailable
            })?;
        if !publisher.applied(id, sequence).await {
            return Err(RegistryError::Unavailable);
        }
        match self.current_state(id).await {
            Err(RegistryError::NotFound) => Ok(next),
            other => other,
        }
    }

    /// Writes heartbeats folded from a stream of the shard logs to the local store
    /// (one batch, without an fsync) with the stream's position `folded_to` (every
    /// record up to it applied), whose writer hands each to its
    /// monitor's inbox. A monitor this pod does not know, or whose deletion it wrote,
    /// is skipped.
    pub async fn apply_replicated_heartbeats(
        &self,
        heartbeats: Vec<(
            crate::domain::fence::Sequence,
            MonitorId,
            Timestamp,
            Heartbeat,
        )>,
        folded_to: crate::store::FoldPosition,
    ) -> Result<(), RegistryError> {
        let (sequences, known): (Vec<_>, Vec<_>) = heartbeats
            .into_iter()
            .filter(|(_, monitor, _, _)| self.directory.by_id(*monitor).is_some())
            .map(|(sequence, monitor, at, heartbeat)| (sequence, (monitor, at, heartbeat)))
            .unzip();
        let monitors: Vec<MonitorId> = known.iter().map(|(monitor, _, _)| *monitor).collect();
        let (answers, position) = self.store.append_folded(known, folded_to).await;
        for ((answer, monitor), shard) in answers.into_iter().zip(monitors).zip(sequences) {
            match answer {
                Ok(local) => self.deciding.note_heartbeat(monitor, local, shard),
                Err(StoreError::Deleted) => {}
                Err(error) => return Err(error.into()),
            }
        }
        position.map_err(RegistryError::from)
    }

    /// How far this pod's store has folded each stream of the shard logs (stream →
    /// last sequence applied): where its folds resume. Blocking.
    pub fn cluster_positions(&self) -> Result<std::collections::BTreeMap<u16, u64>, RegistryError> {
        self.store.cluster_positions().map_err(RegistryError::from)
    }

    /// Has `monitor`'s actor adopt a decision the fold read back effective, or a
    /// config record's events (appended to the local store with the stream's
    /// position `position`; deliveries owed only on the pod deciding for it), and
    /// waits until it did. A monitor this pod does not know (deleted) is skipped.
    pub async fn apply_replicated_decision(
        &self,
        monitor: MonitorId,
        position: crate::store::FoldPosition,
        events: Vec<Stamped>,
    ) -> Result<(), RegistryError> {
        let change = crate::monitor::messages::FoldedChange {
            events,
            settled: None,
            position: Some(position),
        };
        self.adopt_folded(monitor, Some(position.sequence), |reply| {
            crate::monitor::messages::MonitorMsg::Decided(Box::new(change), reply)
        })
        .await
    }

    /// Records the outcome of a delivery the shard log holds (a `Delivered` record:
    /// the owner's delivery, recorded at `at`) in `monitor`'s local history, settling
    /// the outbox entry `outcome` names; folded, with the stream's position
    /// `position` in the same batch. In the deleted monitor's log if it was deleted.
    pub async fn apply_replicated_outcome(
        &self,
        monitor: MonitorId,
        position: Option<crate::store::FoldPosition>,
        at: Timestamp,
        outcome: crate::domain::event::DeliveryOutcome,
    ) -> Result<(), RegistryError> {
        if self.directory.by_id(monitor).is_none() {
            self.store
                .settle_folded_orphan(monitor, outcome, at, position)
                .await?;
            return Ok(());
        }
        let change = crate::monitor::messages::FoldedChange {
            settled: Some((outcome.alert_seq, outcome.channel)),
            events: vec![Stamped {
                at,
                event: Event::DeliveryRecorded(outcome),
            }],
            position,
        };
        // An outcome is no monitor's basis (`ShardFold::apply`).
        self.adopt_folded(monitor, None, |reply| {
            crate::monitor::messages::MonitorMsg::Decided(Box::new(change), reply)
        })
        .await
    }

    /// Hands `monitor`'s actor a record folded from a shard log (`message` with the
    /// reply) and waits until it appended what it causes, with the record's stream
    /// position; `basis`: the record's sequence, the monitor's basis for its next
    /// verdict (`Deciding::note_heartbeat`). A monitor this pod does not know
    /// (deleted) is skipped: nothing is written, and the fold stores the position
    /// later.
    async fn adopt_folded(
        &self,
        monitor: MonitorId,
        basis: Option<crate::domain::fence::Sequence>,
        message: impl FnOnce(
            crate::monitor::messages::Reply<u64>,
        ) -> crate::monitor::messages::MonitorMsg,
    ) -> Result<(), RegistryError> {
        let Some(actor) = self.directory.by_id(monitor) else {
            return Ok(());
        };
        let (reply, answer) = tokio::sync::oneshot::channel();
        actor
            .cast(message(reply))
            .map_err(|_| RegistryError::Unavailable)?;
        let local = answer
            .await
            .map_err(|_| RegistryError::Unavailable)?
            .map_err(RegistryError::from)?;
        if let Some(sequence) = basis {
            // The next verdict about the monitor is based on this record.
            self.deciding.note_heartbeat(monitor, local, sequence);
        }
        Ok(())
    }

    /// Creates a monitor folded from a shard log (a config record's `Created`), with
    /// its id and token, unless this pod has it already (a record delivered again).
    pub async fn apply_replicated_creation(
        &self,
        id: MonitorId,
        position: crate::store::FoldPosition,
        at: Timestamp,
        config: MonitorConfig,
        token: PushToken,
    ) -> Result<(), RegistryError> {
        if self.directory.by_id(id).is_some() {
            return Ok(());
        }
        let mut monitor = Monitor::created(id, at, config.clone(), token.clone());
        let created = Stamped {
            at,
            event: Event::Created {
                config: Box::new(config),
                token,
            },
        };
        let mut append = crate::store::Append::new(id, vec![created], Some(monitor.clone()).into());
        append.position = Some(position);
        monitor.last_seq = self.store.append_with(append).await?.last_seq;
        self.deciding
            .note_heartbeat(id, monitor.last_seq, position.sequence);
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.actor
            .cast(RegistryMsg::Adopt(Box::new(monitor), Some(reply)))
            .map_err(|_| RegistryError::Unavailable)?;
        answer
            .await
            .map_err(|_| RegistryError::Unavailable)?
            .map(|_| ())
    }
}
