//! The actor shell around `domain::machine`: one actor per monitor, the single writer
//! of that monitor's events.
//!
//! For every command it does only: decide → append to the store (durable) → apply →
//! re-arm the deadline timer → reply. It never blocks on fjall itself: the store's
//! writer thread does the I/O and answers when the batch is durable.
//!
//! A plain push never passes through it before it is answered: the ingress appends it
//! (`Registry::heartbeat`), and once its batch is durable the writer puts it in the
//! monitor's inbox (`directory::Inbox`) and wakes the actor (`MonitorMsg::Recorded`).
//! The actor applies the inbox's heartbeats in the log's order (skipping those its
//! state already holds) and persists what each causes (`WentDown{manual}`,
//! `Recovered`, a fleet's quorum...) as any other change: those consequences follow
//! the heartbeat in the log and are never voided. A deadline verdict carries its
//! basis, the last event the actor had applied: the writer voids it if a heartbeat
//! was written after that, and the actor then applies that heartbeat instead
//! (ARCHITECTURE.md, "One heartbeat").

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use ractor::concurrency::JoinHandle;
use ractor::{Actor, ActorProcessingErr, ActorRef, MessagingErr};

use crate::alert::{Channels, Dispatcher, digest};
use crate::clock::Clock;
use crate::cluster::event_log::{EventLog, Log, Replication, Write};
use crate::domain::alert::owed_deliveries;
use crate::domain::event::{DownReason, Event, RunOutcome, Stamped};
use crate::domain::ids::Timestamp;
use crate::domain::machine::{self, Command, Monitor};
use crate::prometheus;
use crate::store::{Append, Appended, EventStore, RecordedHeartbeat, SnapshotWrite, StoreError};
use tokio::sync::oneshot;

use super::changes::Changes;
use super::directory::{Directory, Inbox, PushAccess};
use super::guard_state::GuardShared;
use super::messages::{BulkChange, BulkDecision, BulkPrepared, CommandError, MonitorMsg};

/// After this many plain heartbeats applied, the actor writes its snapshot alone
/// (`EventStore::write_snapshot`, off the acknowledgement path); readers fold the
/// events after a snapshot back in, so this bounds the work a read, a scrape or a
/// start-up does per monitor. Writing the snapshot on every heartbeat cost a second
/// memtable insert and ~200 journal bytes each, and doubled the p99 at half load
/// (BENCHMARKS.md).
const SNAPSHOT_EVERY: u32 = 8;

/// How long to wait before retrying a deadline check whose `down` could not be stored.
const STORE_RETRY_DELAY: Duration = Duration::from_secs(1);

/// What every monitor actor shares.
pub struct MonitorContext {
    pub store: EventStore,
    pub directory: Arc<Directory>,
    pub channels: Channels,
    pub dispatcher: Dispatcher,
    /// What `now` is: the wall clock, or tokio time in tests.
    pub clock: Clock,
    /// Where durable changes are told to live watchers (never a plain heartbeat).
    pub changes: Changes,
    /// The guard against false alarm storms: arrivals are counted, predictions and
    /// held verdicts noted, and a falling deadline asks whether it is held.
    pub guard: Arc<GuardShared>,
    /// Whether this pod decides the monitor's deadlines (always on a single node).
    pub deciding: Arc<super::deciding::Deciding>,
    /// The event log a verdict goes through (`cluster/event_log.rs`).
    pub log: Arc<Log>,
}

/// The behaviour; all data lives in [`MonitorActorState`].
pub struct MonitorActor;

pub struct MonitorArgs {
    pub monitor: Monitor,
    pub context: Arc<MonitorContext>,
    /// Whether to arm the deadline timer at once. At start-up it is not: a deadline
    /// that fell while the server was stopped must first be judged by
    /// `Command::JudgeAfterRestart` (which arms the timer), or the timer could fire
    /// first and deny the monitor its restart grace.
    pub arm_timer: bool,
    /// Where the writer puts the monitor's durable heartbeats.
    pub inbox: Arc<Inbox>,
}

pub struct MonitorActorState {
    monitor: Monitor,
    context: Arc<MonitorContext>,
    timer: Option<ArmedTimer>,
    /// Bumped whenever a timer is armed, so a tick from a cancelled timer is ignored.
    generation: u64,
    /// Plain heartbeats applied since the snapshot was last written.
    unsnapshotted: u32,
    inbox: Arc<Inbox>,
    /// Heartbeats folded in before an append of the actor's own that the log holds
    /// after them (`adopt`), whose consequences are still to be decided.
    late: VecDeque<RecordedHeartbeat>,
    /// Deleted or stopping for a rebuild: nothing more is decided.
    stopped: bool,
    /// False from a start-up until the restart judgement: no timer is armed before it
    /// (`MonitorArgs::arm_timer`), whatever the actor handles first.
    may_arm: bool,
    /// False while the message being handled may append something of the actor's own:
    /// the inbox is not made quiet then (`Inbox::pop`), as a heartbeat written after
    /// that append must not be merged with one before it.
    may_quiet: bool,
}

struct ArmedTimer {
    fires_at: Timestamp,
    handle: JoinHandle<Result<(), MessagingErr<MonitorMsg>>>,
}

/// How long an actor holds for a bulk change's outcome before giving up on it.
const BULK_HOLD: Duration = Duration::from_secs(30);

/// Why a monitor actor stopped on purpose; anything else is a failure to restart from.
pub const DELETED_REASON: &str = "deleted";

impl Actor for MonitorActor {
    type Msg = MonitorMsg;
    type State = MonitorActorState;
    type Arguments = MonitorArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: MonitorArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        let mut state = MonitorActorState {
            monitor: args.monitor,
            context: args.context,
            timer: None,
            generation: 0,
            unsnapshotted: 0,
            inbox: args.inbox,
            late: VecDeque::new(),
            stopped: false,
            may_arm: args.arm_timer,
            may_quiet: true,
        };
        // Heartbeats that reached the inbox while no actor ran (a restart, a
        // rebuild): those the state read from the store holds are skipped.
        let _ = myself.cast(MonitorMsg::Recorded);
        let directory = &state.context.directory;
        // Quiet once the actor has applied what waits (`MonitorMsg::Recorded` above).
        state.inbox.end_quiet();
        state
            .inbox
            .merge_quiet_heartbeats(!state.context.deciding.is_clustered());
        directory.publish_state(&state.monitor);
        directory.set_parents(state.monitor.id, &[], &state.monitor.config.parents);
        let release_owed = state.context.guard.account(&state.monitor);
        if args.arm_timer {
            rearm(&myself, &mut state);
            if release_owed {
                // Held while the guard was tripped, and restarted after it released:
                // the release must not be lost with the old actor.
                release_self(&myself, &state);
            }
        }
        Ok(state)
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        cancel_timer(state);
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        // A message that may append something of the actor's own ends the inbox's
        // quiet first (`directory::Inbox`): no heartbeat is merged across that append.
        state.may_quiet = matches!(
            message,
            MonitorMsg::Recorded
                | MonitorMsg::GetState(_)
                | MonitorMsg::Propose(..)
                | MonitorMsg::ParentChanged
        );
        if !state.may_quiet {
            state.inbox.end_quiet();
        }
        // Heartbeats the writer did not wake the actor for (`directory::Fanout`) are
        // applied before anything else: the log holds them before whatever this
        // message decides, and a deadline must be judged with them.
        if !matches!(message, MonitorMsg::Recorded) && !state.inbox.is_empty() {
            take_heartbeats(&myself, state, true).await;
        }
        match message {
            MonitorMsg::Recorded => take_heartbeats(&myself, state, true).await,
            MonitorMsg::Signal(signal, reply) => {
                state.context.guard.arrived();
                let now = state.context.clock.now();
                let parents = parents_of(state);
                let events =
                    machine::decide_with(&state.monitor, Command::Signal(signal), now, &parents);
                let outcome = persist(&myself, state, events, None).await;
                let _ = reply.send(outcome);
            }
            MonitorMsg::Execute(command, reply) => {
                if matches!(*command, Command::JudgeAfterRestart { .. }) {
                    state.may_arm = true;
                    if state.context.deciding.is_clustered() {
                        // Only the shard's owner judges, from the log: this pod's
                        // timer judges if and once it decides for the shard
                        // (`Registry::redecide`), with the monitor's last record in
                        // the shard as the basis.
                        rearm(&myself, state);
                        let _ = reply.send(Ok(state.monitor.clone()));
                        return Ok(());
                    }
                }
                if let Err(rejection) = machine::check(&state.monitor, &command) {
                    let _ = reply.send(Err(CommandError::Rejected(rejection)));
                    return Ok(());
                }
                let outcome = execute(&myself, state, *command)
                    .await
                    .map(|()| state.monitor.clone())
                    .map_err(CommandError::from);
                if outcome.is_err() {
                    // Nothing changed, but a restart judgement that could not be stored
                    // must still leave a timer armed.
                    rearm(&myself, state);
                }
                let _ = reply.send(outcome);
            }
            MonitorMsg::Bulk(change, reply) => bulk(&myself, state, *change, reply).await,
            MonitorMsg::GetState(reply) => {
                let _ = reply.send(state.monitor.clone());
            }
            MonitorMsg::Tick(generation) if generation == state.generation => {
                state.timer = None;
                if !state.context.deciding.may_decide(state.monitor.id) {
                    // The pod lost the shard (or may not decide for it now): the owner
                    // judges; regaining it rearms (`Registry::redecide`).
                    return Ok(());
                }
                if let Err(error) = judge_deadlines(&myself, state).await {
                    tracing::error!(monitor = %state.monitor.id, %error, "cannot record a timeout; retrying");
                    let now = state.context.clock.now();
                    arm(&myself, state, now, STORE_RETRY_DELAY);
                }
            }
            MonitorMsg::Tick(_) => {}
            MonitorMsg::ParentChanged => rearm(&myself, state),
            MonitorMsg::Propose(command, reply) => {
                let outcome = match machine::check(&state.monitor, &command) {
                    Err(rejection) => Err(CommandError::Rejected(rejection)),
                    Ok(()) => {
                        let parents = parents_of(state);
                        let now = state.context.clock.now();
                        let events = machine::decide_with(&state.monitor, *command, now, &parents);
                        let mut next = state.monitor.clone();
                        for stamped in &events {
                            machine::apply(&mut next, 0, stamped.at, &stamped.event);
                        }
                        Ok((events, next))
                    }
                };
                let _ = reply.send(outcome);
            }
            MonitorMsg::Decided(change, reply) => {
                let outcome = adopt_decided(&myself, state, *change).await;
                let _ = reply.send(outcome);
            }
            MonitorMsg::FoldedSignal(signal, reply) => {
                let outcome = decide_folded_signal(&myself, state, *signal).await;
                let _ = reply.send(outcome);
            }
        }
        // Heartbeats folded in before an append of its own have their consequences
        // decided at once, and those that reached the inbox meanwhile are applied: the
        // writer judged whether to wake the actor for them on the state published
        // before this message changed it (`directory::Fanout`). Then the inbox is
        // quiet if it is empty and the state is.
        state.may_quiet = true;
        if !state.late.is_empty() || !state.inbox.is_empty() {
            take_heartbeats(&myself, state, true).await;
        } else if !state.stopped {
            state.inbox.settle(inbox_may_be_quiet(state));
        }
        Ok(())
    }
}

/// Decides what the heartbeats folded in before an append of its own cause, then
/// (`inbox`) applies the heartbeats waiting in the inbox, in the log's order, and
/// records what each causes; then re-arms the timer. Boxed, as `persist` is.
fn take_heartbeats<'a>(
    myself: &'a ActorRef<MonitorMsg>,
    state: &'a mut MonitorActorState,
    inbox: bool,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>> {
    Box::pin(async move {
        let mut applied = false;
        loop {
            if state.stopped {
                return;
            }
            let (recorded, folded, count) = match state.late.pop_front() {
                Some(recorded) => (recorded, true, 1),
                None if !inbox => break,
                None => match state.inbox.pop(inbox_may_be_quiet(state)) {
                    Some(waiting) => (waiting.recorded, false, waiting.count),
                    None => break,
                },
            };
            if !folded && recorded.seq <= state.monitor.last_seq {
                // The state read from the store holds it already.
                continue;
            }
            applied = true;
            // Merged only while the inbox was quiet: the state it reaches is.
            debug_assert!(
                count == 1 || state.monitor.quiet(),
                "merged heartbeats reach a state that is not quiet"
            );
            let consequences = if folded {
                consequences_of_folded(state, recorded)
            } else {
                apply_heartbeat(state, recorded)
            };
            if consequences.is_empty() {
                if !folded {
                    // A merged entry stands for `count` heartbeats of the log.
                    state.unsnapshotted = state.unsnapshotted.saturating_add(count);
                    if state.unsnapshotted >= SNAPSHOT_EVERY {
                        state.unsnapshotted = 0;
                        state.context.store.write_snapshot(state.monitor.clone());
                    }
                }
                continue;
            }
            record_consequences(myself, state, consequences).await;
        }
        if applied {
            rearm(myself, state);
        }
    })
}

/// Whether the inbox may be quiet (`directory::Inbox`) once empty: the state is quiet
/// and the message being handled appends nothing of the actor's own.
fn inbox_may_be_quiet(state: &MonitorActorState) -> bool {
    state.may_quiet && state.monitor.quiet()
}

/// Applies a durable heartbeat (as the log folds it: its own sequence number and
/// time) and returns what it causes, decided as if it had just arrived.
fn apply_heartbeat(state: &mut MonitorActorState, recorded: RecordedHeartbeat) -> Vec<Stamped> {
    let parents = parents_of(state);
    let RecordedHeartbeat {
        seq, at, heartbeat, ..
    } = recorded;
    let mut events =
        machine::decide_with(&state.monitor, Command::Heartbeat(heartbeat), at, &parents);
    // The log holds the heartbeat before anything it causes.
    let index = events
        .iter()
        .position(|stamped| matches!(stamped.event, Event::HeartbeatReceived(_)));
    if let Some(index) = index {
        let heartbeat = events.remove(index);
        machine::apply(&mut state.monitor, seq, at, &heartbeat.event);
    }
    for stamped in &mut events {
        stamped.at = stamped.at.max(at);
    }
    events
}

/// What a heartbeat folded in before one of the actor's own appends causes, decided
/// on the state now (which holds it already).
fn consequences_of_folded(state: &MonitorActorState, recorded: RecordedHeartbeat) -> Vec<Stamped> {
    let parents = parents_of(state);
    let mut events = machine::decide_with(
        &state.monitor,
        Command::Heartbeat(recorded.heartbeat),
        recorded.at,
        &parents,
    );
    events.retain(|stamped| !matches!(stamped.event, Event::HeartbeatReceived(_)));
    events
}

/// Records what a durable heartbeat caused: never voided. If it cannot be written (the
/// store refuses writes, or the monitor is quarantined), the actor stops and is
/// rebuilt from the store, which hands the heartbeats at the end of the log back to
/// the new actor to decide on (`EventStore::monitor_to_rebuild`): the decision is
/// made again once the store writes.
async fn record_consequences(
    myself: &ActorRef<MonitorMsg>,
    state: &mut MonitorActorState,
    events: Vec<Stamped>,
) {
    match persist(myself, state, events, None).await {
        Ok(()) | Err(StoreError::Closed) => {}
        Err(error) => {
            tracing::warn!(monitor = %state.monitor.id, %error, "cannot record what a heartbeat caused; rebuilding the monitor from the store to decide it again");
            stop_for_rebuild(myself, state, "a heartbeat's consequences were not written");
        }
    }
}

/// The timer fired: judge the deadlines. The verdict carries its basis (the last
/// event applied) and is voided by the writer if a heartbeat was written after it;
/// that heartbeat, already in the inbox, is applied instead.
async fn judge_deadlines(
    myself: &ActorRef<MonitorMsg>,
    state: &mut MonitorActorState,
) -> Result<(), StoreError> {
    let hold = state.context.guard.holding();
    let parents = parents_of(state);
    let now = state.context.clock.now();
    // Clustered, a shard taken over after an outage: a deadline that fell in it gets
    // the restart grace, once, as after a single node's restart.
    let command = match state.context.deciding.outage(state.monitor.id) {
        Some(outage)
            if state
                .monitor
                .owes_outage_grace(outage.since, outage.until, now) =>
        {
            Command::JudgeAfterRestart {
                last_alive: Some(outage.since),
                restart_grace_seconds: outage.grace_seconds,
            }
        }
        _ => Command::CheckDeadline { hold },
    };
    let events = machine::decide_with(&state.monitor, command, now, &parents);
    if events.is_empty() {
        rearm(myself, state);
        return Ok(());
    }
    let log = Arc::clone(&state.context.log);
    log.write(Verdict {
        myself,
        state,
        events,
    })
    .await
}

/// A deadline verdict, as each backend records it: on a single node appended with its
/// basis, voidable (the writer voids it if a heartbeat of the monitor was written
/// after it); clustered, a decision record ([`publish_verdict`]).
struct Verdict<'a> {
    myself: &'a ActorRef<MonitorMsg>,
    state: &'a mut MonitorActorState,
    events: Vec<Stamped>,
}

impl Write for Verdict<'_> {
    type Output = Result<(), StoreError>;

    async fn to_store(self, store: &EventStore) -> Self::Output {
        let Self {
            myself,
            state,
            events,
        } = self;
        let (mut append, prepared) = prepare(state, events, None);
        append.voidable = true;
        let appended = store.append_with(append).await?;
        if !appended.voided {
            adopt(myself, state, prepared, appended);
            return Ok(());
        }
        let overtaken_by = appended.last_seq;
        take_heartbeats(myself, state, true).await;
        if !state.stopped && state.monitor.last_seq < overtaken_by {
            // The heartbeat that voided the verdict never reached this actor: only the
            // store knows it now.
            tracing::error!(monitor = %state.monitor.id, "a heartbeat in the log never reached the monitor; rebuilding it from the store");
            stop_for_rebuild(myself, state, "missed a heartbeat");
            return Ok(());
        }
        rearm(myself, state);
        Ok(())
    }

    async fn to_shards(self, shards: &Arc<dyn Replication>) -> Self::Output {
        publish_verdict(self.myself, self.state, self.events, &**shards).await;
        Ok(())
    }

    /// Nothing is decided before the pod joined (no epoch yet).
    fn not_joined(self) -> Self::Output {
        Ok(())
    }
}

/// Before a published verdict that has not been read back effective is judged again.
const VERDICT_RETRY: Duration = Duration::from_secs(1);

/// Clustered mode: a verdict is a decision record in the monitor's shard, with the
/// epoch this pod owns the shard under and its basis (the shard sequence of the last
/// heartbeat applied). Nothing changes here: every pod's fold, this one's too, has the
/// actor adopt it once it reads it back effective (`MonitorMsg::Decided`); one a
/// heartbeat overtook is void, and the timer judges again after [`VERDICT_RETRY`].
async fn publish_verdict(
    myself: &ActorRef<MonitorMsg>,
    state: &mut MonitorActorState,
    events: Vec<Stamped>,
    publisher: &dyn Replication,
) {
    let id = state.monitor.id;
    let deciding = &state.context.deciding;
    let Some(epoch) = deciding.epoch(id) else {
        return;
    };
    let basis = deciding.basis(id, state.monitor.last_seq);
    match crate::store::codec::encode_decided(&events) {
        Ok(event) => {
            let record = crate::domain::fence::ShardRecord::Decision {
                monitor: id,
                epoch,
                basis,
                event,
            };
            if let Err(error) = publisher.publish(record).await {
                tracing::warn!(monitor = %id, %error, "a verdict was not acknowledged by its shard; judging again");
            }
        }
        Err(error) => tracing::error!(monitor = %id, %error, "cannot encode a verdict"),
    }
    let now = state.context.clock.now();
    arm(myself, state, now, VERDICT_RETRY);
}

/// Clustered mode: adopts a change folded from the shard's log (a config record, a
/// decision read back effective, a delivery's outcome), its append carrying the
/// stream's position. A decision's deliveries are written to every pod's outbox and
/// sent only by the owner. Nothing is written if there is nothing to adopt (the
/// fold stores the position later: applying it again changes nothing either).
async fn adopt_decided(
    myself: &ActorRef<MonitorMsg>,
    state: &mut MonitorActorState,
    change: crate::monitor::messages::FoldedChange,
) -> Result<u64, StoreError> {
    let crate::monitor::messages::FoldedChange {
        events,
        settled,
        position,
    } = change;
    if events.is_empty() || state.stopped {
        return Ok(state.monitor.last_seq);
    }
    // Every pod writes the deliveries the decision owes to its outbox (settled when
    // the owner's outcome record is folded), so a new owner finds those still owed;
    // only the owner sends them (`adopt`).
    let (mut append, prepared) = prepare(state, events, settled);
    append.position = position;
    let appended = state.context.store.append_with(append).await?;
    let last = appended.last_seq;
    adopt(myself, state, prepared, appended);
    Ok(last)
}

/// Clustered mode: decides and records what a job's signal folded from the shard log
/// causes, at the time the pod that took it received it (`at`), on this copy of the
/// monitor: every pod holds the same state at that place in the log, so every pod
/// records the same events (and names the alerts they owe alike); only the pod
/// deciding for the monitor sends them (`adopt`).
async fn decide_folded_signal(
    myself: &ActorRef<MonitorMsg>,
    state: &mut MonitorActorState,
    folded: crate::monitor::messages::FoldedSignal,
) -> Result<u64, StoreError> {
    let crate::monitor::messages::FoldedSignal {
        signal,
        at,
        position,
    } = folded;
    if state.stopped {
        return Ok(state.monitor.last_seq);
    }
    state.context.guard.arrived();
    let parents = parents_of(state);
    let events = machine::decide_with(
        &state.monitor,
        Command::Signal(Box::new(signal)),
        at,
        &parents,
    );
    if events.is_empty() {
        rearm(myself, state);
        return Ok(state.monitor.last_seq);
    }
    let change = crate::monitor::messages::FoldedChange {
        events,
        settled: None,
        position: Some(position),
    };
    Box::pin(adopt_decided(myself, state, change)).await
}

fn stop_for_rebuild(myself: &ActorRef<MonitorMsg>, state: &mut MonitorActorState, why: &str) {
    state.stopped = true;
    cancel_timer(state);
    myself.stop(Some(why.to_owned()));
}

/// decide → persist → apply → re-arm. On a store error nothing is applied.
fn execute<'a>(
    myself: &'a ActorRef<MonitorMsg>,
    state: &'a mut MonitorActorState,
    command: Command,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), StoreError>> + Send + 'a>> {
    // Recording a delivery's outcome settles its outbox entry in the same batch.
    let settled = match &command {
        Command::RecordDelivery(outcome) => Some((outcome.alert_seq, outcome.channel)),
        _ => None,
    };
    let parents = parents_of(state);
    let events = machine::decide_with(&state.monitor, command, state.context.clock.now(), &parents);
    persist(myself, state, events, settled)
}

/// persist → apply → re-arm `events` already decided. On a store error nothing is
/// applied.
///
/// Boxed: an actor's task holds its largest pending future for its whole life, and
/// this one (with the store append inside) is hundreds of bytes. Boxed, an idle
/// actor's task holds only the pointer; the box exists while a message is handled.
fn persist<'a>(
    myself: &'a ActorRef<MonitorMsg>,
    state: &'a mut MonitorActorState,
    events: Vec<Stamped>,
    settled: Option<(u64, crate::domain::ids::ChannelId)>,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), StoreError>> + Send + 'a>> {
    Box::pin(persist_inline(myself, state, events, settled))
}

async fn persist_inline(
    myself: &ActorRef<MonitorMsg>,
    state: &mut MonitorActorState,
    events: Vec<Stamped>,
    settled: Option<(u64, crate::domain::ids::ChannelId)>,
) -> Result<(), StoreError> {
    if events.is_empty() {
        // Nothing changes, but a tick that found its deadline moved must re-arm.
        rearm(myself, state);
        return Ok(());
    }
    let (append, prepared) = prepare(state, events, settled);
    let appended = state.context.store.append_with(append).await?;
    adopt(myself, state, prepared, appended);
    Ok(())
}

/// What a decided change leaves to do once its append is durable.
struct Prepared {
    next: Monitor,
    /// The events, to apply again after heartbeats the log holds before them.
    events: Vec<Stamped>,
    deleted: bool,
    timeout_deadline: Option<Timestamp>,
    run_outcomes: Vec<RunOutcome>,
    alerts: Vec<(Timestamp, Event)>,
    /// Verdicts the guard held (`VerdictHeld`).
    held: usize,
}

/// The append that records `events` (not empty), and what to do once it is durable.
fn prepare(
    state: &MonitorActorState,
    events: Vec<Stamped>,
    settled: Option<(u64, crate::domain::ids::ChannelId)>,
) -> (Append, Prepared) {
    let mut next = state.monitor.clone();
    let mut deleted = false;
    for stamped in &events {
        machine::apply(&mut next, 0, stamped.at, &stamped.event);
        deleted |= matches!(stamped.event, Event::Deleted);
    }
    // Proposed for every channel that exists; the writer keeps those that exist and
    // want the alert (`send_on`) in the log's order, and answers with them.
    let channels = &state.context.channels;
    let owed = owed_deliveries(&state.monitor, &events, |channel, _| {
        channels.contains(channel)
    });
    // A deadline judged: how late the timer found it.
    let timeout_deadline = events.iter().find_map(|stamped| match stamped.event {
        Event::WentDown {
            reason: DownReason::Timeout | DownReason::Schedule | DownReason::MaxRuntime,
        } => Some(stamped.at),
        _ => None,
    });
    let run_outcomes: Vec<RunOutcome> = events
        .iter()
        .filter_map(|stamped| match &stamped.event {
            Event::RunEnded(end) => Some(end.outcome),
            _ => None,
        })
        .collect();
    let alerts: Vec<(Timestamp, Event)> = events
        .iter()
        .filter(|stamped| stamped.event.is_alert())
        .map(|stamped| (stamped.at, stamped.event.clone()))
        .collect();

    let held = events
        .iter()
        .filter(|stamped| matches!(stamped.event, Event::VerdictHeld { .. }))
        .count();
    // A change writes the state it leaves (the writer keeps the stored one if a
    // heartbeat overtook the basis).
    let snapshot = if deleted {
        SnapshotWrite::Remove
    } else {
        SnapshotWrite::Write(Box::new(next.clone()))
    };
    let kept = events.clone();
    let mut append = Append::new(state.monitor.id, events, snapshot);
    if !owed.is_empty() {
        // If a heartbeat overtakes it, the writer remakes the alerts from this state.
        append.before = Some(Box::new(state.monitor.clone()));
    }
    append.owed = owed;
    append.settled = settled;
    append.basis = Some(state.monitor.last_seq);
    (
        append,
        Prepared {
            next,
            events: kept,
            deleted,
            timeout_deadline,
            run_outcomes,
            alerts,
            held,
        },
    )
}

/// Applies a prepared change whose append is durable: the new state, its deliveries,
/// the Directory, the timer.
fn adopt(
    myself: &ActorRef<MonitorMsg>,
    state: &mut MonitorActorState,
    prepared: Prepared,
    appended: Appended,
) {
    let Prepared {
        mut next,
        events,
        deleted,
        timeout_deadline,
        run_outcomes,
        alerts,
        held,
    } = prepared;
    // Heartbeats the log holds before these events (written after the basis) are
    // folded in first, as a reader of the log folds them; what they cause is decided
    // next (`take_heartbeats`).
    let late: Vec<RecordedHeartbeat> = state
        .inbox
        .take_below(appended.last_seq)
        .into_iter()
        .filter(|recorded| recorded.seq > state.monitor.last_seq)
        .collect();
    if !late.is_empty() {
        next = state.monitor.clone();
        for recorded in &late {
            let event = Event::HeartbeatReceived(recorded.heartbeat.clone());
            machine::apply(&mut next, recorded.seq, recorded.at, &event);
        }
        for stamped in &events {
            machine::apply(&mut next, 0, stamped.at, &stamped.event);
        }
        state.late.extend(late);
    }
    next.last_seq = appended.last_seq;
    if let Some(deadline) = timeout_deadline {
        // From the deadline to a durable `down`: how late a timeout is detected.
        let lag = deadline.millis_until(state.context.clock.now());
        metrics::histogram!(prometheus::DETECTION_LAG_SECONDS).record(lag as f64 / 1000.0);
    }

    // The writer numbered the events and each alert's deliveries, and kept those
    // owed (`send_on`). In the clustered mode only the shard's owner sends them; the
    // others keep them in the outbox until the owner's outcome is folded.
    let sends = !state.context.deciding.is_clustered()
        || state.context.deciding.may_decide(state.monitor.id);
    for (_, delivery) in appended.owed.into_iter().filter(|_| sends) {
        state
            .context
            .dispatcher
            .enqueue(delivery, digest::group_of(&next.config));
    }

    for outcome in run_outcomes {
        prometheus::hot().run(outcome).increment(1);
    }

    state.unsnapshotted = 0;
    let previous = std::mem::replace(&mut state.monitor, next);
    state.context.changes.publish(&state.monitor, deleted);
    for (at, alert) in alerts {
        log_alert(&state.monitor, at, &alert);
    }
    let directory = &state.context.directory;
    if held > 0 {
        state.context.guard.held(held);
    }
    if deleted {
        state.stopped = true;
        state.context.guard.forget(state.monitor.id);
        directory.remove(state.monitor.id);
        directory.set_parents(state.monitor.id, &previous.config.parents, &[]);
        tell_children(directory, state.monitor.id);
        cancel_timer(state);
        myself.stop(Some(DELETED_REASON.to_owned()));
        return;
    }
    if previous.config.parents != state.monitor.config.parents {
        directory.set_parents(
            state.monitor.id,
            &previous.config.parents,
            &state.monitor.config.parents,
        );
    }
    if directory.publish_state(&state.monitor) {
        tell_children(directory, state.monitor.id);
    }
    if previous.token != state.monitor.token {
        directory.rotate_token(state.monitor.id, &previous.token, &state.monitor.token);
    }
    if previous.config.slug != state.monitor.config.slug {
        directory.set_slug(state.monitor.id, state.monitor.config.slug.as_deref());
    }
    let access = PushAccess::of(&state.monitor.config);
    if PushAccess::of(&previous.config) != access {
        directory.set_access(state.monitor.id, access);
    }
    if state.context.guard.account(&state.monitor) {
        release_self(myself, state);
    }
    rearm(myself, state);
}

/// Asks this actor to release the verdict it holds: the guard released before the
/// hold was noted (`GuardShared::account`).
fn release_self(myself: &ActorRef<MonitorMsg>, state: &MonitorActorState) {
    let (reply, _ignored) = oneshot::channel();
    let command = Command::ReleaseHeld {
        grace_seconds: state.context.guard.release_grace_seconds(),
    };
    let _ = myself.cast(MonitorMsg::Execute(Box::new(command), reply));
}

/// One monitor's part of a bulk change (`Registry::bulk`): decides `change` on the
/// current state and answers with the append it would make, then holds (takes no
/// other message) until the registry says whether the batch of every monitor's
/// appends was written. Written: the new state is adopted. Abandoned: nothing
/// changed. No word in time: the actor cannot know, so it stops and is rebuilt from
/// the store.
async fn bulk(
    myself: &ActorRef<MonitorMsg>,
    state: &mut MonitorActorState,
    change: BulkChange,
    reply: oneshot::Sender<Result<BulkPrepared, CommandError>>,
) {
    let command = change.command(&state.monitor);
    if let Command::Update(patch) = &command
        && patch
            .channels
            .as_ref()
            .is_some_and(|channels| channels.len() > machine::MAX_CHANNELS_PER_MONITOR)
    {
        let _ = reply.send(Err(CommandError::Rejected(
            machine::Rejection::TooManyChannels,
        )));
        return;
    }
    if let Err(rejection) = machine::check(&state.monitor, &command) {
        let _ = reply.send(Err(CommandError::Rejected(rejection)));
        return;
    }
    let parents = parents_of(state);
    let events = machine::decide_with(&state.monitor, command, state.context.clock.now(), &parents);
    let kinds: Vec<&'static str> = events.iter().filter_map(|e| e.event.kind()).collect();
    if events.is_empty() {
        let _ = reply.send(Ok(BulkPrepared {
            name: state.monitor.config.name.clone(),
            kinds,
            append: None,
            decision: None,
        }));
        return;
    }
    let (append, prepared) = prepare(state, events, None);
    let (decision, decided) = oneshot::channel();
    let answer = BulkPrepared {
        name: state.monitor.config.name.clone(),
        kinds,
        append: Some(append),
        decision: Some(decision),
    };
    if reply.send(Ok(answer)).is_err() {
        // The registry is gone: the append was never handed to the writer.
        return;
    }
    match tokio::time::timeout(BULK_HOLD, decided).await {
        Ok(Ok(BulkDecision::Written(appended))) => adopt(myself, state, prepared, appended),
        Ok(Ok(BulkDecision::Abandoned)) => {}
        _ => {
            tracing::error!(monitor = %state.monitor.id, "no outcome for a bulk change; rebuilding the monitor from the store");
            stop_for_rebuild(myself, state, "bulk change undecided");
        }
    }
}

/// What the Directory knows of the monitor's parents.
fn parents_of(state: &MonitorActorState) -> machine::Parents {
    if state.monitor.config.parents.is_empty() {
        return machine::Parents::default();
    }
    state
        .context
        .directory
        .parents(&state.monitor.config.parents)
}

/// Tells the monitors that name `parent` as a parent that it changed state.
fn tell_children(directory: &Directory, parent: crate::domain::ids::MonitorId) {
    for child in directory.children_of(parent) {
        if let Some(actor) = directory.by_id(child) {
            // A child that is gone or restarting reads its parents when it starts.
            let _ = actor.cast(MonitorMsg::ParentChanged);
        }
    }
}

/// Keeps one timer armed at or before the next wake-up (`Monitor::next_wakeup`: a
/// deadline, a run's max runtime, a reminder, the end of a maintenance window). A
/// timer that fires before a wake-up that has since moved later is simply re-armed
/// then: a heartbeat does not touch the timer at all.
fn rearm(myself: &ActorRef<MonitorMsg>, state: &mut MonitorActorState) {
    if !state.may_arm {
        return;
    }
    if !state.context.deciding.may_decide(state.monitor.id) {
        cancel_timer(state);
        return;
    }
    let now = state.context.clock.now();
    let parents = parents_of(state);
    let Some(deadline) = state.monitor.next_wakeup_with(now, &parents) else {
        cancel_timer(state);
        return;
    };
    if let Some(timer) = &state.timer
        && timer.fires_at <= deadline
    {
        return;
    }
    arm(
        myself,
        state,
        deadline,
        Duration::from_millis(now.millis_until(deadline)),
    );
}

fn arm(
    myself: &ActorRef<MonitorMsg>,
    state: &mut MonitorActorState,
    fires_at: Timestamp,
    delay: Duration,
) {
    if !state.may_arm || !state.context.deciding.may_decide(state.monitor.id) {
        return;
    }
    cancel_timer(state);
    state.generation += 1;
    let generation = state.generation;
    let handle = myself.send_after(delay, move || MonitorMsg::Tick(generation));
    state.timer = Some(ArmedTimer { fires_at, handle });
}

fn cancel_timer(state: &mut MonitorActorState) {
    if let Some(timer) = state.timer.take() {
        timer.handle.abort();
    }
}

/// Logs a change of state for operators; delivering it to channels goes through the
/// outbox (`owed_deliveries`, then the dispatcher).
fn log_alert(monitor: &Monitor, at: Timestamp, alert: &Event) {
    match alert {
        Event::WentDown { reason } => tracing::warn!(
            monitor = %monitor.id,
            name = %monitor.config.name,
            reason = reason.as_str(),
            at = %at.to_rfc3339(),
            "monitor is down"
        ),
        Event::Reminder { reason } => tracing::warn!(
            monitor = %monitor.id,
            name = %monitor.config.name,
            reason = reason.as_str(),
            at = %at.to_rfc3339(),
            "monitor is still down"
        ),
        Event::AlertReleased(_) => tracing::info!(
            monitor = %monitor.id,
            name = %monitor.config.name,
            status = monitor.status.as_str(),
            at = %at.to_rfc3339(),
            "maintenance over; alerting the change it held back"
        ),
        _ => tracing::info!(
            monitor = %monitor.id,
            name = %monitor.config.name,
            at = %at.to_rfc3339(),
            "monitor recovered"
        ),
    }
}
