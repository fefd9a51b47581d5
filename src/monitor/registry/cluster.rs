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
//! - What a single node keeps unique among monitors (a slug, a push token) is also
//!   claimed cluster-wide (`cluster::claims`) before a creation or a change that gives
//!   it is published: a value another monitor holds is refused as on a single node,
//!   an unreachable claims bucket answers 503. A claim is released once a change or
//!   deletion that gives the value up is applied here, or when the publication that
//!   needed it failed.
//!
//! These are the clustered side of the registry's writes (`Write::to_shards` in
//! `registry.rs`, `registry/ingest.rs` and `registry/bulk.rs`); the event log
//! (`cluster/event_log.rs`) picks them in the clustered mode, and answers 503 before
//! the pod has joined.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;

use crate::cluster::claims::{ClaimError, ClaimKey, ClaimKind, ClaimStore, Claimed};
use crate::domain::event::{Event, Heartbeat, MonitorConfig, Stamped};
use crate::domain::fence::ShardRecord;
use crate::domain::ids::{MonitorId, PushToken, Timestamp};
use crate::domain::machine::Monitor;
use crate::domain::signal::Signal;
use crate::store::StoreError;
use crate::store::codec::{self, StoredEvent};

use super::{Registry, RegistryError, RegistryMsg, new_push_token};

/// Claims a starting pod has in flight at once for what its copy holds.
const CLAIMS_AT_START_AT_ONCE: usize = 32;

/// How long a creation waits for this pod's fold to apply the record it published.
const READ_YOUR_WRITES: Duration = Duration::from_secs(10);

pub use crate::cluster::event_log::Replication;

/// The values monitor `slug` and `token` hold, as claim keys.
fn claim_keys(slug: Option<&str>, token: &PushToken) -> Vec<ClaimKey> {
    slug.map(ClaimKey::slug)
        .into_iter()
        .chain(std::iter::once(ClaimKey::token(token)))
        .collect()
}

/// What a refused or failed claim answers: what a single node answers for a value
/// another monitor has, or 503 (nothing was recorded).
fn claim_error(error: ClaimError) -> RegistryError {
    match error {
        ClaimError::Taken(ClaimKind::Slug) => RegistryError::SlugTaken,
        ClaimError::Taken(ClaimKind::Token) => RegistryError::TokenTaken,
        ClaimError::Unavailable(detail) => {
            RegistryError::Store(StoreError::Unavailable(format!("claims: {detail}")))
        }
    }
}

impl Registry {
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

    /// What says which shards this pod took over after an outage (their deadlines
    /// that fell in it get the restart grace).
    pub fn set_outages(&self, outages: crate::monitor::deciding::Outages) {
        self.deciding.set_outages(outages);
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

    /// The publisher of the joined pod: the event log's writes (the registry's, the
    /// actors' verdicts, the channels', the API keys' and the publications') go
    /// through it from now on.
    pub fn set_replication(&self, publisher: Arc<dyn Replication>) {
        self.log.join(publisher);
    }

    /// The cluster-wide claims, set once the pod joined and claimed what its copy
    /// holds ([`Self::claim_what_is_held`]); until then a creation, or a change that
    /// gives or gives up a slug or token, answers 503.
    pub fn set_claims(&self, claims: ClaimStore) {
        let _ = self.claims.set(claims);
    }

    /// Claims, for each monitor of this pod's copy, its slug and push token where the
    /// bucket has no claim for them (start-up: a cluster made before claims existed,
    /// or a claim lost with a publication answered as failed that the log kept).
    /// A value another monitor holds is logged, not taken. Returns how many claims
    /// were made.
    pub async fn claim_what_is_held(&self, claims: &ClaimStore) -> Result<usize, RegistryError> {
        let owners = self.claim_holders().await?;
        let missing = claims
            .missing(owners.keys().cloned().collect())
            .await
            .map_err(claim_error)?;
        Self::claim_for_holders(
            claims,
            missing
                .into_iter()
                .filter_map(|key| {
                    let owner = owners.get(&key)?.clone();
                    Some((key, owner))
                })
                .collect(),
        )
        .await
    }

    /// Brings the claims bucket in line with this pod's copy (`cluster::claims::reconcile`):
    /// deletes claims older than `settle` whose monitor does not hold their value, and
    /// claims what the copy's monitors hold without a claim. Returns how many claims
    /// were deleted and made. Call it on a caught-up copy.
    pub async fn reconcile_claims(
        &self,
        claims: &ClaimStore,
        settle: std::time::Duration,
    ) -> Result<(usize, usize), RegistryError> {
        let holds = self.claim_holders().await?;
        let listed = claims
            .claims(std::time::Duration::from_secs(60))
            .await
            .map_err(claim_error)?;
        let found = crate::cluster::claims::reconcile(&holds, &listed, self.clock.now(), settle);
        let mut dropped = 0;
        for claim in &found.stale {
            if claims.drop_claim(claim).await.map_err(claim_error)? {
                tracing::warn!(
                    key = claim.key,
                    owner = claim.owner,
                    "deleted a claim left behind: its monitor does not hold the value"
                );
                dropped += 1;
            }
        }
        let made = Self::claim_for_holders(claims, found.unclaimed).await?;
        Ok((dropped, made))
    }

    /// Each claim key the copy's monitors hold, with its holder's id.
    async fn claim_holders(
        &self,
    ) -> Result<std::collections::HashMap<ClaimKey, String>, RegistryError> {
        let monitors = self.store.monitors().await?;
        let mut owners = std::collections::HashMap::new();
        for monitor in &monitors {
            for key in claim_keys(monitor.config.slug.as_deref(), &monitor.token) {
                owners.insert(key, monitor.id.to_string());
            }
        }
        Ok(owners)
    }

    /// Claims each key for its holder, a few at once; how many were made. A value
    /// another monitor holds is logged, not taken.
    async fn claim_for_holders(
        claims: &ClaimStore,
        wanted: Vec<(ClaimKey, String)>,
    ) -> Result<usize, RegistryError> {
        let mut claiming = futures_util::stream::iter(
            wanted
                .into_iter()
                .map(|(key, owner)| async move { (claims.claim(&key, &owner).await, owner) }),
        )
        .buffer_unordered(CLAIMS_AT_START_AT_ONCE);
        let mut made = 0;
        while let Some((claimed, owner)) = claiming.next().await {
            match claimed {
                Ok(Claimed::Fresh) => made += 1,
                Ok(Claimed::Held) => {}
                Err(ClaimError::Taken(kind)) => tracing::warn!(
                    monitor = %owner,
                    kind = kind.name(),
                    "another monitor holds this monitor's value cluster-wide"
                ),
                Err(error) => return Err(claim_error(error)),
            }
        }
        Ok(made)
    }

    /// The claims bucket (503 before the pod joined).
    fn claims(&self) -> Result<ClaimStore, RegistryError> {
        self.claims.get().cloned().ok_or(RegistryError::Unavailable)
    }

    /// Claims `keys` for `owner`; the ones made now, to release if what needed them
    /// does not happen. On a refusal or failure, releases what it made and answers
    /// the error.
    async fn claim_all(
        claims: &ClaimStore,
        keys: &[ClaimKey],
        owner: MonitorId,
    ) -> Result<Vec<ClaimKey>, RegistryError> {
        let owner_name = owner.to_string();
        let mut fresh = Vec::new();
        for key in keys {
            match claims.claim(key, &owner_name).await {
                Ok(Claimed::Fresh) => fresh.push(key.clone()),
                Ok(Claimed::Held) => {}
                Err(error) => {
                    Self::release_all(claims, &fresh, owner).await;
                    return Err(claim_error(error));
                }
            }
        }
        Ok(fresh)
    }

    /// Releases `owner`'s claims on `keys`; one that cannot be released is logged
    /// (it stays claimed by `owner`).
    async fn release_all(claims: &ClaimStore, keys: &[ClaimKey], owner: MonitorId) {
        let owner_name = owner.to_string();
        for key in keys {
            if let Err(error) = claims.release(key, &owner_name).await {
                tracing::warn!(
                    monitor = %owner,
                    kind = key.kind().name(),
                    %error,
                    "a claim was not released; the value stays claimed by this monitor"
                );
            }
        }
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
        let token = token.unwrap_or_else(new_push_token);
        let keys = claim_keys(config.slug.as_deref(), &token);
        let event = codec::encode_decided(&[Stamped {
            at: now,
            event: Event::Created {
                config: Box::new(config),
                token,
            },
        }])
        .map_err(|error| RegistryError::Store(StoreError::from(error)))?;
        let claims = self.claims()?;
        let fresh = Self::claim_all(&claims, &keys, id).await?;
        if let Err(error) = publisher
            .publish(ShardRecord::Config { monitor: id, event })
            .await
        {
            tracing::warn!(monitor = %id, %error, "a creation was not acknowledged by its shard");
            Self::release_all(&claims, &fresh, id).await;
            return Err(RegistryError::Unavailable);
        }
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
        // A change that may give a monitor a slug or token, or give one up.
        let deleting = matches!(command, crate::domain::machine::Command::Delete);
        let previous = match &command {
            crate::domain::machine::Command::Update(_)
            | crate::domain::machine::Command::RotateToken(_)
            | crate::domain::machine::Command::Delete => Some(self.current_state(id).await?),
            _ => None,
        };
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
        // Claimed before publishing what the change gives; released once applied,
        // what it gives up.
        let (claims, fresh, given_up) = match &previous {
            Some(previous) => {
                let held = claim_keys(previous.config.slug.as_deref(), &previous.token);
                let kept = if deleting {
                    Vec::new()
                } else {
                    claim_keys(next.config.slug.as_deref(), &next.token)
                };
                let claims = self.claims()?;
                let given: Vec<ClaimKey> = kept
                    .iter()
                    .filter(|key| !held.contains(key))
                    .cloned()
                    .collect();
                let fresh = Self::claim_all(&claims, &given, id).await?;
                let given_up = held.into_iter().filter(|key| !kept.contains(key)).collect();
                (Some(claims), fresh, given_up)
            }
            None => (None, Vec::new(), Vec::new()),
        };
        let sequence = match publisher
            .publish(ShardRecord::Config { monitor: id, event })
            .await
        {
            Ok(sequence) => sequence,
            Err(error) => {
                tracing::warn!(monitor = %id, %error, "a change was not acknowledged by its shard");
                if let Some(claims) = &claims {
                    Self::release_all(claims, &fresh, id).await;
                }
                return Err(RegistryError::Unavailable);
            }
        };
        if !publisher.applied(id, sequence).await {
            return Err(RegistryError::Unavailable);
        }
        if let Some(claims) = &claims {
            Self::release_all(claims, &given_up, id).await;
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
