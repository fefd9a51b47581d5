//! The actor shell around `domain::machine`: one actor per monitor, the single writer
//! of that monitor's events.
//!
//! For every command it does only: decide → append to the store (durable) → apply →
//! re-arm the deadline timer → reply. It never blocks on fjall itself: the store's
//! writer thread does the I/O and answers when the batch is durable.
//!
//! A plain heartbeat (one that changes nothing but the `last_*` fields) is pipelined
//! instead: decide → apply → hand to the writer, which answers the pusher once it is
//! durable, while the actor takes its next message. If the writer cannot write it,
//! the writer quarantines the monitor and has it rebuilt from the store.

use std::sync::Arc;
use std::time::Duration;

use ractor::concurrency::JoinHandle;
use ractor::{Actor, ActorProcessingErr, ActorRef, MessagingErr};

use crate::alert::{Channels, Dispatcher, digest};
use crate::clock::Clock;
use crate::domain::alert::owed_deliveries;
use crate::domain::event::{DownReason, Event, RunOutcome, Stamped};
use crate::domain::ids::Timestamp;
use crate::domain::machine::{self, Command, Monitor};
use crate::prometheus;
use crate::store::{Append, Appended, EventStore, SnapshotWrite, StagedAppend, StoreError};
use tokio::sync::oneshot;

use super::changes::Changes;
use super::directory::{Directory, PushAccess};
use super::guard_state::GuardShared;
use super::messages::{
    BulkChange, BulkDecision, BulkPrepared, CommandError, IngestPart, MonitorMsg, Reply,
};

/// At most this many appends in a row skip writing the monitor's snapshot (plain
/// heartbeats); readers fold them back in, so this bounds the work a read, a scrape
/// or a start-up does per monitor. Writing the snapshot on every heartbeat cost a
/// second memtable insert and ~200 journal bytes each, and doubled the p99 at half
/// load (BENCHMARKS.md).
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
}

pub struct MonitorActorState {
    monitor: Monitor,
    context: Arc<MonitorContext>,
    timer: Option<ArmedTimer>,
    /// Bumped whenever a timer is armed, so a tick from a cancelled timer is ignored.
    generation: u64,
    /// Appends since the snapshot was last written.
    unsnapshotted: u32,
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
        };
        let directory = &state.context.directory;
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
        match message {
            MonitorMsg::Heartbeat(heartbeat, reply) => {
                state.context.guard.arrived();
                let now = state.context.clock.now();
                let parents = parents_of(state);
                let events = machine::decide_with(
                    &state.monitor,
                    Command::Heartbeat(heartbeat),
                    now,
                    &parents,
                );
                if let Some((events, reply)) = pipeline(&myself, state, events, reply) {
                    // Not a plain heartbeat: it is answered once durable and applied.
                    let outcome = persist(&myself, state, events, None).await;
                    let _ = reply.send(outcome);
                }
            }
            MonitorMsg::Signal(signal, reply) => {
                state.context.guard.arrived();
                let now = state.context.clock.now();
                let parents = parents_of(state);
                let events =
                    machine::decide_with(&state.monitor, Command::Signal(signal), now, &parents);
                // A success that says no more than a heartbeat is one.
                if let Some((events, reply)) = pipeline(&myself, state, events, reply) {
                    // Not a plain heartbeat: it is answered once durable and applied.
                    let outcome = persist(&myself, state, events, None).await;
                    let _ = reply.send(outcome);
                }
            }
            MonitorMsg::Execute(command, reply) => {
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
            // Boxed, as `persist` is: an idle actor's task holds only the pointer.
            MonitorMsg::Ingest(part) => Box::pin(ingest(&myself, state, *part)).await,
            MonitorMsg::GetState(reply) => {
                let _ = reply.send(state.monitor.clone());
            }
            MonitorMsg::Tick(generation) if generation == state.generation => {
                state.timer = None;
                let hold = state.context.guard.holding();
                if let Err(error) = execute(&myself, state, Command::CheckDeadline { hold }).await {
                    tracing::error!(monitor = %state.monitor.id, %error, "cannot record a timeout; retrying");
                    let now = state.context.clock.now();
                    arm(&myself, state, now, STORE_RETRY_DELAY);
                }
            }
            MonitorMsg::Tick(_) => {}
            MonitorMsg::ParentChanged => rearm(&myself, state),
        }
        Ok(())
    }
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

/// A heartbeat [`pipeline`] hands back: its events and its reply.
type NotPlain = (Vec<Stamped>, Reply<()>);

/// A heartbeat that changes nothing but the `last_*` fields (no change of status or
/// grace, no alert) is applied at once and handed to the writer, which answers the
/// pusher when it is durable; the actor does not wait for the disk, so one monitor's
/// actor keeps up with many pushers and a push costs one hop less. The writer
/// quarantines the monitor and has it rebuilt from the store if such a heartbeat is
/// not written, so the actor's state is never left ahead of the log.
///
/// Returns the events and the reply back when the heartbeat is not plain.
fn pipeline(
    myself: &ActorRef<MonitorMsg>,
    state: &mut MonitorActorState,
    events: Vec<Stamped>,
    reply: Reply<()>,
) -> Option<NotPlain> {
    if events.is_empty()
        || !events
            .iter()
            .all(|stamped| matches!(stamped.event, Event::HeartbeatReceived(_)))
    {
        return Some((events, reply));
    }
    let before = (state.monitor.status, state.monitor.grace);
    let mut next = state.monitor.clone();
    for stamped in &events {
        machine::apply(&mut next, 0, stamped.at, &stamped.event);
    }
    if (next.status, next.grace) != before {
        return Some((events, reply));
    }
    let (append, write_state) = plain_append(state, events, &mut next);
    if !state.context.store.append_pipelined(append, reply) {
        // The writer is gone (shutting down): nothing was written, nothing applied.
        return None;
    }
    adopt_plain(myself, state, next, write_state);
    None
}

/// The append of plain heartbeats whose state after them is `next`: with the
/// snapshot every [`SNAPSHOT_EVERY`]th time (the bool says so).
fn plain_append(
    state: &MonitorActorState,
    events: Vec<Stamped>,
    next: &mut Monitor,
) -> (Append, bool) {
    let write_state = state.unsnapshotted + 1 >= SNAPSHOT_EVERY;
    let snapshot = if write_state {
        SnapshotWrite::Write(Box::new(next.clone()))
    } else {
        SnapshotWrite::Keep
    };
    next.last_seq = state.monitor.last_seq;
    (Append::new(state.monitor.id, events, snapshot), write_state)
}

/// Takes the state after plain heartbeats handed to the writer (pipelined).
fn adopt_plain(
    myself: &ActorRef<MonitorMsg>,
    state: &mut MonitorActorState,
    next: Monitor,
    write_state: bool,
) {
    state.unsnapshotted = if write_state {
        0
    } else {
        state.unsnapshotted + 1
    };
    state.monitor = next;
    rearm(myself, state);
}

/// One monitor's part of a bulk ingestion (`Registry::ingest`): its heartbeats are
/// decided in order, and the append recording them all goes to the registry, which
/// writes every monitor's part in one batch. Plain heartbeats are pipelined as a
/// single push's are (applied now; the monitor is quarantined and rebuilt if they
/// are not written); anything else holds the actor until the batch is durable, then
/// is adopted. The registry casts every part of a batch in one go, under a lock, so
/// two batches reach every mailbox in the same order and two holding actors never
/// wait on each other's batch.
async fn ingest(myself: &ActorRef<MonitorMsg>, state: &mut MonitorActorState, part: IngestPart) {
    let IngestPart {
        heartbeats,
        staged,
        reply,
    } = part;
    let now = state.context.clock.now();
    let parents = parents_of(state);
    let mut next = state.monitor.clone();
    let mut events = Vec::new();
    for heartbeat in heartbeats {
        // Each is an arrival for the guard, as a single push is.
        state.context.guard.arrived();
        let decided = machine::decide_with(&next, Command::Heartbeat(heartbeat), now, &parents);
        for stamped in &decided {
            machine::apply(&mut next, 0, stamped.at, &stamped.event);
        }
        next.last_seq = state.monitor.last_seq;
        events.extend(decided);
    }
    if events.is_empty() {
        let _ = staged.send(None);
        let _ = reply.send(Ok(()));
        rearm(myself, state);
        return;
    }
    let store = state.context.store.clone();
    // A registry that went away cannot write the group: the append is written alone.
    let hand_over = |append: StagedAppend| {
        if let Err(Some(append)) = staged.send(Some(append)) {
            store.append_group(vec![append]);
        }
    };
    let plain = events
        .iter()
        .all(|stamped| matches!(stamped.event, Event::HeartbeatReceived(_)))
        && (next.status, next.grace) == (state.monitor.status, state.monitor.grace);
    if plain {
        let (append, write_state) = plain_append(state, events, &mut next);
        hand_over(StagedAppend::pipelined(append, reply));
        adopt_plain(myself, state, next, write_state);
        return;
    }
    let (append, prepared) = prepare(state, events, None);
    let (append, answer) = StagedAppend::applied(append);
    hand_over(append);
    let outcome = match answer.await {
        Ok(Ok(appended)) => {
            adopt(myself, state, prepared, appended);
            Ok(())
        }
        Ok(Err(error)) => Err(error),
        Err(_) => Err(StoreError::Closed),
    };
    let _ = reply.send(outcome);
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
    // Plain heartbeats take `pipeline`; everything else writes the state it leaves.
    let snapshot = if deleted {
        SnapshotWrite::Remove
    } else {
        SnapshotWrite::Write(Box::new(next.clone()))
    };
    let mut append = Append::new(state.monitor.id, events, snapshot);
    append.owed = owed;
    append.settled = settled;
    (
        append,
        Prepared {
            next,
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
        deleted,
        timeout_deadline,
        run_outcomes,
        alerts,
        held,
    } = prepared;
    next.last_seq = appended.last_seq;
    if let Some(deadline) = timeout_deadline {
        // From the deadline to a durable `down`: how late a timeout is detected.
        let lag = deadline.millis_until(state.context.clock.now());
        metrics::histogram!(prometheus::DETECTION_LAG_SECONDS).record(lag as f64 / 1000.0);
    }

    // The writer numbered the events and each alert's deliveries, and kept those
    // owed (`send_on`).
    for (_, delivery) in appended.owed {
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
            cancel_timer(state);
            myself.stop(Some("bulk change undecided".to_owned()));
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
