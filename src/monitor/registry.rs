//! The registry: spawns and stops monitor actors, keeps the [`Directory`] of them
//! (push token → actor, id → actor), and supervises them. An actor that fails is restarted from its stored
//! state, never silently lost; the actor of a monitor the store quarantined is
//! replaced by one rebuilt from the store ([`Registry::rebuild_quarantined`]).
//!
//! The maps ([`Directory`]) are read by HTTP handlers without a message round trip;
//! only actors and the registry change them.
//!
//! The registry also keeps monitors' `channels` true: a creation or change naming
//! channels checks they exist and becomes durable while holding the channel gate for
//! reading, and [`Registry::delete_channel`] deletes a channel while holding it for
//! writing, then takes the channel off every monitor. So a monitor is either durable
//! before the deletion (and swept) or checked after it (and refused): none keeps a
//! deleted channel.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, SupervisionEvent};
use tokio::sync::oneshot;

use crate::alert::{Channels, Dispatcher};
use crate::clock::Clock;
use crate::cluster::event_log::{EventLog, Log, Write};
use crate::domain::event::{DeliveryOutcome, Event, Heartbeat, MonitorConfig, Stamped};
use crate::domain::ids::{ChannelId, MonitorId, PushToken, Timestamp};
use crate::domain::machine::{self, Command, ConfigPatch, Monitor, Rejection};
use crate::domain::signal::Signal;
use crate::prometheus;
use crate::store::{EventStore, RecordedHeartbeat, StoreError};

use super::actor::{DELETED_REASON, MonitorActor, MonitorArgs, MonitorContext};
use super::changes::Changes;
use super::directory::{Directory, MonitorHandle, PushAccess, TokenKey};
use super::guard_state::GuardShared;
use super::messages::{CommandError, MonitorMsg};

mod bulk;
mod cluster;
mod ingest;
mod spawn;

pub use cluster::Replication;

pub use bulk::{BulkOutcome, MAX_BULK_MONITORS};

pub use spawn::new_push_token;

/// How long to wait before retrying a rebuild whose stored state could not be read.
const REBUILD_RETRY_DELAY: std::time::Duration = std::time::Duration::from_secs(1);

/// How often, and how long at most, a channel deletion retries taking the channel off
/// a monitor whose actor is being rebuilt.
const SWEEP_RETRY_DELAY: std::time::Duration = std::time::Duration::from_millis(100);
const SWEEP_RETRIES: u32 = 100;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no such monitor")]
    NotFound,
    #[error("the monitor is restarting; try again")]
    Unavailable,
    #[error("channels: unknown channel id {0}")]
    UnknownChannel(ChannelId),
    /// The change would leave the monitor invalid; nothing was recorded.
    #[error("{0}")]
    Rejected(Rejection),
    /// A chosen push token is already another monitor's (or being given to one).
    #[error("push_token is already used by another monitor")]
    TokenTaken,
    /// A slug is already another monitor's (or being given to one).
    #[error("slug is already used by another monitor")]
    SlugTaken,
    /// `parents` names no monitor, the monitor itself, or one that depends on it.
    #[error("parents: {0}")]
    BadParents(String),
}

impl From<CommandError> for RegistryError {
    fn from(error: CommandError) -> Self {
        match error {
            CommandError::Store(error) => Self::Store(error),
            CommandError::Rejected(rejection) => Self::Rejected(rejection),
        }
    }
}

/// What the rest of the program holds: the registry actor and the shared maps.
#[derive(Clone)]
pub struct Registry {
    actor: ActorRef<RegistryMsg>,
    directory: Arc<Directory>,
    /// Messages cast to monitor actors and not yet answered: the mailbox backlog.
    pending: Arc<AtomicI64>,
    store: EventStore,
    channels: Channels,
    changes: Changes,
    /// Read: a configuration naming channels is being checked and made durable.
    /// Write: a channel is being deleted (see the module documentation).
    channel_gate: Arc<tokio::sync::RwLock<()>>,
    /// Chosen tokens of monitors being created: a second creation with one of them
    /// is refused until the first is in the Directory (or failed).
    claimed_tokens: Claims<TokenKey>,
    /// Slugs being given to monitors (created or changed) and not yet in the Directory.
    claimed_slugs: Claims<String>,
    /// Held while the parts of a bulk change or a bulk ingestion are cast, so that
    /// any two of them reach every actor's mailbox in the same order: an actor that
    /// holds for its batch's write then never waits on a batch that waits on it.
    cast_order: Arc<std::sync::Mutex<()>>,
    /// Held while a change of a monitor's parents is checked and made durable, so two
    /// changes cannot close a cycle between them.
    dependency_gate: Arc<tokio::sync::Mutex<()>>,
    clock: Clock,
    guard: Arc<GuardShared>,
    /// The event log every write goes through: the fjall store, or the shard logs
    /// (`cluster/event_log.rs`; the clustered side's writes in `registry/cluster.rs`).
    log: Arc<Log>,
    /// The cluster-wide claims on slugs and push tokens, once joined (clustered mode).
    claims: Arc<std::sync::OnceLock<crate::cluster::claims::ClaimStore>>,
    /// Which monitors this pod decides deadlines for (`monitor/deciding.rs`).
    deciding: Arc<super::deciding::Deciding>,
}

/// Tokens or slugs claimed by changes on their way.
type Claims<K> = Arc<std::sync::Mutex<std::collections::HashSet<K>>>;

/// Holds a chosen token's or slug's claim until dropped.
struct Claim<K: std::hash::Hash + Eq> {
    claimed: Claims<K>,
    key: K,
}

impl<K: std::hash::Hash + Eq> Claim<K> {
    /// Claims `key` unless it is `taken` or claimed already (then `None`).
    fn take(claims: &Claims<K>, key: K, taken: bool) -> Result<Option<Self>, RegistryError>
    where
        K: Clone,
    {
        let mut claimed = claims.lock().map_err(|_| RegistryError::Unavailable)?;
        if taken || !claimed.insert(key.clone()) {
            return Ok(None);
        }
        Ok(Some(Self {
            claimed: Arc::clone(claims),
            key,
        }))
    }
}

impl<K: std::hash::Hash + Eq> Drop for Claim<K> {
    fn drop(&mut self) {
        if let Ok(mut claimed) = self.claimed.lock() {
            claimed.remove(&self.key);
        }
    }
}

/// Counts one message as pending until dropped.
struct PendingGuard<'a>(&'a AtomicI64);

impl<'a> PendingGuard<'a> {
    fn new(pending: &'a AtomicI64) -> Self {
        pending.fetch_add(1, Ordering::Relaxed);
        Self(pending)
    }
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

pub enum RegistryMsg {
    /// Persist a new monitor, then spawn it.
    Create(
        Box<MonitorConfig>,
        Option<PushToken>,
        oneshot::Sender<Result<Monitor, RegistryError>>,
    ),
    /// Spawn an actor for a monitor whose state is already stored.
    Adopt(
        Box<Monitor>,
        Option<oneshot::Sender<Result<Monitor, RegistryError>>>,
    ),
    /// Spawn actors for every stored monitor (start-up), each with the heartbeats at
    /// the end of its log to decide on; answers when all run.
    Rebuild(Vec<(Monitor, Vec<RecordedHeartbeat>)>, oneshot::Sender<()>),
    /// Replace the actor of each monitor the store quarantined by one rebuilt from
    /// the store, which lifts the quarantine.
    RebuildQuarantined(Vec<MonitorId>),
    /// Rebuild a monitor's actor from its stored state (a retry after the store could
    /// not be read).
    RebuildFromStore(MonitorId),
    /// Stop every monitor actor (shutdown); answers when all have stopped.
    StopAll(oneshot::Sender<()>),
}

pub struct RegistryActor;

pub struct RegistryState {
    context: Arc<MonitorContext>,
    stopping: bool,
    /// Actors stopped so that their quarantined monitors are rebuilt from the store
    /// once they have stopped.
    rebuilding: HashMap<ActorId, MonitorId>,
}

impl Registry {
    /// Starts the registry actor over `store`; its writes go through `log`, monitors
    /// alert through `dispatcher` and read the time from `clock`.
    pub async fn start(
        store: EventStore,
        log: Arc<Log>,
        channels: Channels,
        dispatcher: Dispatcher,
        clock: Clock,
        guard: Arc<GuardShared>,
    ) -> Result<(Self, ractor::concurrency::JoinHandle<()>), ractor::SpawnErr> {
        let directory = Arc::new(Directory::default());
        let context = Arc::new(MonitorContext {
            store: store.clone(),
            directory: Arc::clone(&directory),
            channels: channels.clone(),
            dispatcher,
            clock,
            changes: Changes::default(),
            guard: Arc::clone(&guard),
            deciding: Arc::default(),
            log: Arc::clone(&log),
        });
        let deciding = Arc::clone(&context.deciding);
        if log.is_clustered() {
            // Only the owner of a monitor's shard decides its deadlines.
            deciding.set_clustered();
        }
        let changes = context.changes.clone();
        // The writer hands each durable batch's heartbeats to their actors' inboxes.
        store.set_heartbeat_sink(Arc::new(super::directory::Fanout {
            directory: Arc::clone(&directory),
            guard: Arc::clone(&guard),
        }));
        let (actor, handle) = Actor::spawn(None, RegistryActor, context).await?;
        let pending = Arc::new(AtomicI64::new(0));
        Ok((
            Self {
                actor,
                directory,
                pending,
                store,
                channels,
                changes,
                channel_gate: Arc::new(tokio::sync::RwLock::new(())),
                dependency_gate: Arc::new(tokio::sync::Mutex::new(())),
                claimed_tokens: Arc::default(),
                claimed_slugs: Arc::default(),
                cast_order: Arc::default(),
                clock,
                guard,
                log,
                claims: Arc::default(),
                deciding,
            },
            handle,
        ))
    }

    pub fn directory(&self) -> &Directory {
        &self.directory
    }

    /// Where monitors tell their durable changes (`changes.rs`).
    pub fn changes(&self) -> &Changes {
        &self.changes
    }

    /// The guard against false alarm storms, as the monitors see it.
    pub fn guard(&self) -> &Arc<GuardShared> {
        &self.guard
    }

    /// What time the monitors live in.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Messages cast to monitor actors and not yet answered.
    pub fn pending_messages(&self) -> i64 {
        self.pending.load(Ordering::Relaxed)
    }

    /// Spawns an actor for each stored monitor and waits until all are running; each
    /// first applies and decides on the heartbeats given with it
    /// (`EventStore::load_monitors_to_rebuild`).
    pub async fn rebuild(
        &self,
        monitors: Vec<(Monitor, Vec<RecordedHeartbeat>)>,
    ) -> Result<(), RegistryError> {
        let (reply, done) = oneshot::channel();
        self.actor
            .cast(RegistryMsg::Rebuild(monitors, reply))
            .map_err(|_| RegistryError::Unavailable)?;
        done.await.map_err(|_| RegistryError::Unavailable)
    }

    pub async fn create(&self, config: MonitorConfig) -> Result<Monitor, RegistryError> {
        self.create_with_token(config, None).await
    }

    /// Creates a monitor with the given push token (a declared or imported one; refused
    /// if another monitor has it), or a fresh one.
    pub async fn create_with_token(
        &self,
        config: MonitorConfig,
        token: Option<PushToken>,
    ) -> Result<Monitor, RegistryError> {
        machine::check_config(&config).map_err(RegistryError::Rejected)?;
        self.check_parents(None, &config.parents)?;
        let _claim = match &token {
            Some(token) => Some(self.claim(token)?),
            None => None,
        };
        let _slug = self.claim_slug(None, config.slug.as_deref())?;
        let _gate = self.channels_checked(&config.channels).await?;
        self.log
            .write(Creation {
                registry: self,
                config,
                token,
            })
            .await
    }

    /// The event log every write goes through (shared with the channels, the API keys
    /// and the publications).
    pub fn event_log(&self) -> &Arc<Log> {
        &self.log
    }

    /// Claims a chosen token for a creation: refused if a monitor has it or another
    /// creation claimed it.
    fn claim(&self, token: &PushToken) -> Result<Claim<TokenKey>, RegistryError> {
        let key = TokenKey::of(token);
        let taken = self.directory.by_key(key).is_some();
        Claim::take(&self.claimed_tokens, key, taken)?.ok_or(RegistryError::TokenTaken)
    }

    /// Claims `slug` for monitor `id` (`None`: one being created): refused if another
    /// monitor has it or another change claimed it. Nothing to claim without a slug.
    fn claim_slug(
        &self,
        id: Option<MonitorId>,
        slug: Option<&str>,
    ) -> Result<Option<Claim<String>>, RegistryError> {
        let Some(slug) = slug else {
            return Ok(None);
        };
        let taken = self
            .directory
            .by_slug(slug)
            .is_some_and(|owner| Some(owner.id) != id);
        Claim::take(&self.claimed_slugs, slug.to_owned(), taken)?
            .map(Some)
            .ok_or(RegistryError::SlugTaken)
    }

    /// Delivers a job's signal to `monitor` (`docs/push.md`, "Runs"); answers once it
    /// is durable. What the ping routes and the native URL's `kind`, `exit` and `rid`
    /// call.
    pub async fn signal(
        &self,
        monitor: &MonitorHandle,
        signal: Signal,
    ) -> Result<(), RegistryError> {
        self.log
            .write(SignalWrite {
                registry: self,
                monitor,
                signal,
            })
            .await
    }

    /// Appends a plain heartbeat of `monitor`, received now; answers once it is
    /// durable. No actor is on the way: the writer hands it to the monitor's actor
    /// after the batch is durable (`Directory`'s `HeartbeatSink`), which decides then
    /// what it causes. A push that may change the monitor's state (`down` to a
    /// monitor that is not, `up` to one that is) is answered once its actor has
    /// applied it too, so what it caused is durable and seen by every reader when the
    /// pusher hears 200. A monitor whose deletion the log holds is `NotFound`.
    pub async fn heartbeat(
        &self,
        monitor: &MonitorHandle,
        heartbeat: Heartbeat,
    ) -> Result<(), RegistryError> {
        self.log
            .write(PlainHeartbeat {
                registry: self,
                monitor,
                heartbeat,
            })
            .await
    }

    /// Waits until `monitor`'s actor has applied the heartbeats durable so far (and
    /// recorded what they cause): its mailbox takes them before this question. An
    /// actor that is gone or restarting leaves them to its successor: they are durable.
    pub(super) async fn applied(&self, monitor: &MonitorHandle) {
        let (reply, answer) = oneshot::channel();
        if monitor.actor.cast(MonitorMsg::GetState(reply)).is_ok() {
            let _ = answer.await;
        }
    }

    /// Whether monitor `id` (`None`: one being created) may have `parents`: at most
    /// `MAX_PARENTS`, each an existing monitor, not itself, none depending on it.
    fn check_parents(
        &self,
        id: Option<MonitorId>,
        parents: &[MonitorId],
    ) -> Result<(), RegistryError> {
        if parents.len() > machine::MAX_PARENTS {
            return Err(RegistryError::BadParents(format!(
                "at most {} per monitor",
                machine::MAX_PARENTS
            )));
        }
        for parent in parents {
            if Some(*parent) == id {
                return Err(RegistryError::BadParents(
                    "a monitor cannot depend on itself".to_owned(),
                ));
            }
            if self.directory.by_id(*parent).is_none() {
                return Err(RegistryError::BadParents(format!(
                    "unknown monitor id {parent}"
                )));
            }
            if let Some(id) = id
                && self.directory.depends_on(*parent, id)
            {
                return Err(RegistryError::BadParents(format!(
                    "{parent} depends on this monitor already: that would be a cycle"
                )));
            }
        }
        Ok(())
    }

    /// Why a monitor's actor could not be reached: deleted meanwhile, or restarting.
    fn gone_or_restarting(&self, id: MonitorId) -> RegistryError {
        if self.directory.by_id(id).is_none() {
            RegistryError::NotFound
        } else {
            RegistryError::Unavailable
        }
    }

    /// Holds the channel gate for reading once every one of `channels` exists; the
    /// caller keeps the guard until the configuration naming them is durable.
    async fn channels_checked(
        &self,
        channels: &[ChannelId],
    ) -> Result<Option<tokio::sync::RwLockReadGuard<'_, ()>>, RegistryError> {
        if channels.is_empty() {
            return Ok(None);
        }
        let gate = self.channel_gate.read().await;
        if let Some(unknown) = channels.iter().find(|id| !self.channels.contains(**id)) {
            return Err(RegistryError::UnknownChannel(*unknown));
        }
        Ok(Some(gate))
    }

    /// Deletes channel `id` and takes it off every monitor; `false` if there was no
    /// such channel. Once the deletion is durable no configuration naming the channel
    /// is accepted, and every monitor that was accepted with it before is in the store
    /// (the gate waited for it), where the sweep finds it.
    pub async fn delete_channel(&self, id: ChannelId) -> Result<bool, RegistryError> {
        {
            let _gate = self.channel_gate.write().await;
            if !self.channels.delete(id).await? {
                return Ok(false);
            }
        }
        let listing: Vec<MonitorId> = self
            .store
            .monitors()
            .await?
            .into_iter()
            .filter(|monitor| monitor.config.channels.contains(&id))
            .map(|monitor| monitor.id)
            .collect();
        for monitor in listing {
            let mut retries = 0;
            loop {
                match self.execute(monitor, Command::ForgetChannel(id)).await {
                    Ok(_) | Err(RegistryError::NotFound) => break,
                    Err(RegistryError::Unavailable) if retries < SWEEP_RETRIES => {
                        retries += 1;
                        tokio::time::sleep(SWEEP_RETRY_DELAY).await;
                    }
                    Err(error) => return Err(error),
                }
            }
        }
        Ok(true)
    }

    /// Runs a management command on monitor `id` and returns its state afterwards.
    pub async fn execute(&self, id: MonitorId, command: Command) -> Result<Monitor, RegistryError> {
        let (named, slug) = match &command {
            Command::Update(patch) => (
                patch.channels.as_deref().unwrap_or_default(),
                patch.slug.as_ref().and_then(Option::as_deref),
            ),
            _ => (&[][..], None),
        };
        let _slug = self.claim_slug(Some(id), slug)?;
        let _gate = self.channels_checked(named).await?;
        let _dependencies = match &command {
            Command::Update(ConfigPatch {
                parents: Some(parents),
                ..
            }) => {
                let gate = self.dependency_gate.lock().await;
                self.check_parents(Some(id), parents)?;
                Some(gate)
            }
            _ => None,
        };
        if matches!(
            command,
            Command::Update(_)
                | Command::RotateToken(_)
                | Command::Pause
                | Command::Resume
                | Command::Mute { .. }
                | Command::Unmute
                | Command::Delete
                | Command::ForgetChannel(_)
        ) {
            return self
                .log
                .write(CommandWrite {
                    registry: self,
                    id,
                    command,
                })
                .await;
        }
        self.execute_on_actor(id, command).await
    }

    /// Has monitor `id`'s actor decide `command` and record what it causes.
    async fn execute_on_actor(
        &self,
        id: MonitorId,
        command: Command,
    ) -> Result<Monitor, RegistryError> {
        let actor = self.directory.by_id(id).ok_or(RegistryError::NotFound)?;
        let _pending = PendingGuard::new(&self.pending);
        let (reply, answer) = oneshot::channel();
        actor
            .cast(MonitorMsg::Execute(Box::new(command), reply))
            .map_err(|_| RegistryError::Unavailable)?;
        Ok(answer.await.map_err(|_| RegistryError::Unavailable)??)
    }

    /// Records how a delivery of one of monitor `id`'s alerts ended.
    pub async fn record_delivery(
        &self,
        id: MonitorId,
        outcome: DeliveryOutcome,
    ) -> Result<(), RegistryError> {
        self.execute(id, Command::RecordDelivery(outcome))
            .await
            .map(|_| ())
    }

    /// The live state of monitor `id`.
    pub async fn current_state(&self, id: MonitorId) -> Result<Monitor, RegistryError> {
        let actor = self.directory.by_id(id).ok_or(RegistryError::NotFound)?;
        let (reply, answer) = oneshot::channel();
        actor
            .cast(MonitorMsg::GetState(reply))
            .map_err(|_| RegistryError::Unavailable)?;
        answer.await.map_err(|_| RegistryError::Unavailable)
    }

    /// Asks every monitor to judge deadlines that fell while the server was stopped,
    /// which also arms its timer. Call once, right after [`rebuild`](Self::rebuild).
    pub fn judge_after_restart(&self, last_alive: Option<Timestamp>, restart_grace_seconds: u32) {
        for actor in self.directory.actors() {
            let (reply, _ignored) = oneshot::channel();
            let command = Command::JudgeAfterRestart {
                last_alive,
                restart_grace_seconds,
            };
            // An actor that is gone is restarted by supervision, which judges it anew.
            let _ = actor.cast(MonitorMsg::Execute(Box::new(command), reply));
        }
    }

    /// Replaces the actor of each of `monitors`, which the store quarantined, by one
    /// rebuilt from the store; that lifts the quarantine.
    pub fn rebuild_quarantined(&self, monitors: Vec<MonitorId>) {
        let _ = self.actor.cast(RegistryMsg::RebuildQuarantined(monitors));
    }

    /// Stops every monitor actor, then the registry itself.
    pub async fn stop(&self) {
        let (reply, done) = oneshot::channel();
        if self.actor.cast(RegistryMsg::StopAll(reply)).is_ok() {
            let _ = done.await;
        }
        self.actor.stop(None);
    }
}

/// A creation: single node, the registry actor appends `created` and spawns the
/// actor; clustered, a config record (`Registry::publish_creation`).
struct Creation<'a> {
    registry: &'a Registry,
    config: MonitorConfig,
    token: Option<PushToken>,
}

impl Write for Creation<'_> {
    type Output = Result<Monitor, RegistryError>;

    async fn to_store(self, _: &EventStore) -> Self::Output {
        let (reply, answer) = oneshot::channel();
        self.registry
            .actor
            .cast(RegistryMsg::Create(
                Box::new(self.config),
                self.token,
                reply,
            ))
            .map_err(|_| RegistryError::Unavailable)?;
        answer.await.map_err(|_| RegistryError::Unavailable)?
    }

    async fn to_shards(self, shards: &Arc<dyn Replication>) -> Self::Output {
        self.registry
            .publish_creation(&**shards, self.config, self.token)
            .await
    }

    fn not_joined(self) -> Self::Output {
        Err(RegistryError::Unavailable)
    }
}

/// A job's signal: single node, its actor decides it and appends what it causes;
/// clustered, a signal record (`Registry::publish_signal`).
struct SignalWrite<'a> {
    registry: &'a Registry,
    monitor: &'a MonitorHandle,
    signal: Signal,
}

impl Write for SignalWrite<'_> {
    type Output = Result<(), RegistryError>;

    async fn to_store(self, _: &EventStore) -> Self::Output {
        let Self {
            registry,
            monitor,
            signal,
        } = self;
        let _pending = PendingGuard::new(&registry.pending);
        let (reply, answer) = oneshot::channel();
        monitor
            .actor
            .cast(MonitorMsg::Signal(Box::new(signal), reply))
            .map_err(|_| registry.gone_or_restarting(monitor.id))?;
        Ok(answer
            .await
            .map_err(|_| registry.gone_or_restarting(monitor.id))??)
    }

    async fn to_shards(self, shards: &Arc<dyn Replication>) -> Self::Output {
        self.registry
            .publish_signal(&**shards, self.monitor.id, self.signal)
            .await
    }

    fn not_joined(self) -> Self::Output {
        Err(RegistryError::Unavailable)
    }
}

/// A plain push: single node, appended by the store's writer, which hands it to the
/// monitor's actor once durable; clustered, a heartbeat record
/// (`Registry::publish_heartbeat`).
struct PlainHeartbeat<'a> {
    registry: &'a Registry,
    monitor: &'a MonitorHandle,
    heartbeat: Heartbeat,
}

impl Write for PlainHeartbeat<'_> {
    type Output = Result<(), RegistryError>;

    async fn to_store(self, store: &EventStore) -> Self::Output {
        let Self {
            registry,
            monitor,
            heartbeat,
        } = self;
        let changes = registry.directory.may_change(monitor.id, heartbeat.status);
        match store
            .append_heartbeat(monitor.id, registry.clock.now(), heartbeat)
            .await
        {
            Ok(_) if changes => {
                registry.applied(monitor).await;
                Ok(())
            }
            Ok(_) => Ok(()),
            Err(StoreError::Deleted) => Err(RegistryError::NotFound),
            Err(error) => Err(error.into()),
        }
    }

    async fn to_shards(self, shards: &Arc<dyn Replication>) -> Self::Output {
        Registry::publish_heartbeat(
            &**shards,
            self.monitor.id,
            self.registry.clock.now(),
            self.heartbeat,
        )
        .await
    }

    fn not_joined(self) -> Self::Output {
        Err(RegistryError::Unavailable)
    }
}

/// A management command that changes a monitor's configuration or state: single
/// node, its actor decides and appends it; clustered, a config record
/// (`Registry::publish_command`).
struct CommandWrite<'a> {
    registry: &'a Registry,
    id: MonitorId,
    command: Command,
}

impl Write for CommandWrite<'_> {
    type Output = Result<Monitor, RegistryError>;

    async fn to_store(self, _: &EventStore) -> Self::Output {
        self.registry.execute_on_actor(self.id, self.command).await
    }

    async fn to_shards(self, shards: &Arc<dyn Replication>) -> Self::Output {
        self.registry
            .publish_command(&**shards, self.id, self.command)
            .await
    }

    fn not_joined(self) -> Self::Output {
        Err(RegistryError::Unavailable)
    }
}
