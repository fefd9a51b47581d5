//! The outbox dispatcher: one actor that queues owed deliveries per (channel, monitor)
//! so each pair is delivered in order, and runs each delivery in its own task so a
//! slow or dead receiver holds up nothing else.
//!
//! A delivery is retried with exponential backoff and jitter up to a bounded number of
//! attempts; its outcome is then reported on the dispatcher's report channel
//! ([`DeliveryReport`]), whose reader has the monitor's actor record it, which removes
//! the outbox entry in the same batch. A crash between a receiver's 2xx and that
//! record means the delivery is sent again after the restart: delivery is at least
//! once. This module knows nothing of monitors: it only reports.
//!
//! Deliveries to a channel that takes digests wait in that channel's window first
//! (`digest.rs`); when it closes they go out one by one, or as one digest whose outcome
//! is reported for each delivery it covers. A held or digested delivery keeps its
//! (channel, monitor) pair busy, so a pair's deliveries still go out in order.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::domain::alert::Delivery;
use crate::domain::event::DeliveryOutcome;
use crate::domain::ids::{ChannelId, MonitorId};
use crate::prometheus;

use super::digest::{Batcher, Digest, DigestPolicy, Held, Release};
use super::{Channels, Notifier, NotifyError};

/// Sends in flight at once, over all channels. Without a bound, a burst of 100k
/// alerts opened 100k connections at once and receivers reset them.
const MAX_CONCURRENT_SENDS: usize = 128;

/// Backoff between attempts: `initial`, doubling, capped at `max`, ±20% jitter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    pub initial: Duration,
    pub max: Duration,
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    /// 10 attempts over about 8.5 minutes.
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(300),
            max_attempts: 10,
        }
    }
}

impl RetryPolicy {
    /// The wait after failed attempt number `attempt` (1-based).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(30);
        let base = self.initial.saturating_mul(1u32 << exponent).min(self.max);
        let jitter = 0.8 + rand::random::<f64>() * 0.4;
        base.mul_f64(jitter)
    }
}

type Key = (ChannelId, MonitorId);

pub enum DeliveryMsg {
    /// A delivery is owed (just committed, or found in the outbox at start-up), with
    /// the group a digest lists it under (`digest::group_of`).
    Enqueue(Delivery, String),
    /// The delivery at the head of this key's queue is settled.
    Finished(Key),
    /// A digest is settled: every key it covered.
    DigestFinished(u64, Vec<Key>),
    /// A channel's digest window may have closed.
    WindowClosed,
    /// The clustered mode: this delivery (channel, alert seq) is no longer in the
    /// dispatcher (recorded, or left to the shard's owner), so it may be enqueued again.
    Settled(ChannelId, u64),
}

/// How one delivery ended, for whoever records outcomes.
pub struct DeliveryReport {
    pub delivery: Delivery,
    pub outcome: DeliveryOutcome,
    /// Answered once the outcome is recorded. Until then the next delivery of the same
    /// (channel, monitor) waits, so a pair's deliveries go out and are recorded in
    /// order, one at a time, and a store that cannot write holds them up.
    pub recorded: oneshot::Sender<()>,
}

/// Where the dispatcher reports outcomes. Unbounded, but it holds at most one report
/// per (channel, monitor) pair: each pair's next delivery waits for the record.
pub type DeliveryReports = mpsc::UnboundedReceiver<DeliveryReport>;

/// The handle monitor actors and the app hold.
#[derive(Clone)]
pub struct Dispatcher {
    actor: ActorRef<DeliveryMsg>,
}

impl Dispatcher {
    /// Starts the dispatcher; it sends each delivery as soon as it is enqueued, and
    /// reports how it ended on the returned channel.
    ///
    /// Whoever starts it must read the reports, and must start reading only once an
    /// outcome can be recorded (at start-up: once every monitor's actor runs). Until
    /// then reports wait in the channel, and with them each pair's next delivery. The
    /// deliveries found in the outbox at start-up are enqueued only after that.
    pub async fn start(
        notifier: Notifier,
        channels: Channels,
        policy: RetryPolicy,
        digests: DigestPolicy,
    ) -> Result<(Self, ractor::concurrency::JoinHandle<()>, DeliveryReports), ractor::SpawnErr>
    {
        let (reports, reported) = mpsc::unbounded_channel();
        let args = DeliveryArgs {
            notifier,
            channels,
            policy,
            digests,
            sends: tokio::sync::Semaphore::new(MAX_CONCURRENT_SENDS),
            reports,
        };
        let (actor, handle) = Actor::spawn(None, DeliveryActor, args).await?;
        Ok((Self { actor }, handle, reported))
    }

    /// Owes `delivery`; `group` is what a digest lists it under (`digest::group_of`
    /// of its monitor's configuration).
    pub fn enqueue(&self, delivery: Delivery, group: String) {
        if self
            .actor
            .cast(DeliveryMsg::Enqueue(delivery, group))
            .is_err()
        {
            // Only during shutdown; the outbox keeps it for the next start.
            tracing::debug!("dispatcher stopped; delivery stays in the outbox");
        }
    }

    /// Stops delivering; unfinished deliveries stay in the outbox.
    pub async fn stop(&self) {
        let _ = self.actor.stop_and_wait(None, None).await;
    }
}

pub struct DeliveryActor;

pub struct DeliveryArgs {
    notifier: Notifier,
    channels: Channels,
    policy: RetryPolicy,
    digests: DigestPolicy,
    sends: tokio::sync::Semaphore,
    reports: mpsc::UnboundedSender<DeliveryReport>,
}

/// A one-thread runtime for deliveries, shut down without blocking when dropped.
struct SendRuntime(Option<tokio::runtime::Runtime>);

impl SendRuntime {
    fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("pushmon-alerts")
            .enable_all()
            .build();
        match runtime {
            Ok(runtime) => Self(Some(runtime)),
            Err(error) => {
                tracing::warn!(%error, "no thread for alert deliveries; they share the main runtime");
                Self(None)
            }
        }
    }

    fn spawn<F>(&self, task: F) -> tokio::task::JoinHandle<()>
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        match &self.0 {
            Some(runtime) => runtime.spawn(task),
            None => tokio::spawn(task),
        }
    }
}

impl Drop for SendRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// Why a key's next delivery waits.
enum Busy {
    /// Its delivery task is in flight.
    Sending(tokio::task::AbortHandle),
    /// Its delivery waits in its channel's digest window.
    Held,
    /// Its delivery is in a digest being sent.
    InDigest,
}

pub struct DeliveryState {
    args: Arc<DeliveryArgs>,
    queues: HashMap<Key, VecDeque<(Delivery, String)>>,
    /// What holds up each key (at most one delivery per key at a time). A map, not a
    /// list: with a 100k-alert burst, pruning a list of finished tasks on every
    /// completion was quadratic and starved the other actors of a worker thread.
    busy: HashMap<Key, Busy>,
    /// The digest windows open.
    batcher: Batcher,
    /// The digest tasks in flight, by number.
    digests: HashMap<u64, tokio::task::AbortHandle>,
    next_digest: u64,
    owed: usize,
    /// The clustered mode: every delivery (channel, alert seq) in the dispatcher, so
    /// one enqueued again (the outbox handed over at a takeover while it was still
    /// here) is not sent twice.
    owed_ids: std::collections::HashSet<(ChannelId, u64)>,
    /// Where delivery tasks run (HTTP clients, retries): their own thread, so a burst
    /// of alerts does not queue in front of the monitor actors recording the `down`s.
    /// Held here, not in the tasks, so it is shut down from the dispatcher's task.
    runtime: SendRuntime,
}

impl Actor for DeliveryActor {
    type Msg = DeliveryMsg;
    type State = DeliveryState;
    type Arguments = DeliveryArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: DeliveryArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        metrics::gauge!(prometheus::OUTBOX_DEPTH).set(0.0);
        let batcher = Batcher::new(args.digests);
        Ok(DeliveryState {
            args: Arc::new(args),
            queues: HashMap::new(),
            busy: HashMap::new(),
            batcher,
            digests: HashMap::new(),
            next_digest: 0,
            owed: 0,
            owed_ids: std::collections::HashSet::new(),
            runtime: SendRuntime::start(),
        })
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        // Unfinished deliveries stay in the outbox and are sent after the restart.
        for (_, busy) in state.busy.drain() {
            if let Busy::Sending(worker) = busy {
                worker.abort();
            }
        }
        for (_, digest) in state.digests.drain() {
            digest.abort();
        }
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            DeliveryMsg::Enqueue(delivery, group) => {
                if state.args.notifier.cluster().is_some()
                    && !state
                        .owed_ids
                        .insert((delivery.channel, delivery.alert.alert_seq))
                {
                    return Ok(());
                }
                let key = (delivery.channel, delivery.alert.monitor_id);
                state
                    .queues
                    .entry(key)
                    .or_default()
                    .push_back((delivery, group));
                state.owed += 1;
                start_next(&myself, state, key);
            }
            DeliveryMsg::Finished(key) => {
                state.busy.remove(&key);
                state.owed = state.owed.saturating_sub(1);
                start_next(&myself, state, key);
            }
            DeliveryMsg::DigestFinished(number, keys) => {
                state.digests.remove(&number);
                for key in keys {
                    state.busy.remove(&key);
                    state.owed = state.owed.saturating_sub(1);
                    start_next(&myself, state, key);
                }
            }
            DeliveryMsg::WindowClosed => {
                for (channel, release) in state.batcher.close_due(Instant::now()) {
                    release_window(&myself, state, channel, release);
                }
            }
            DeliveryMsg::Settled(channel, alert_seq) => {
                state.owed_ids.remove(&(channel, alert_seq));
            }
        }
        metrics::gauge!(prometheus::OUTBOX_DEPTH).set(state.owed as f64);
        Ok(())
    }
}

/// Starts the head of `key`'s queue unless one of its deliveries is in flight or
/// held: sends it, or holds it in its channel's digest window.
fn start_next(myself: &ActorRef<DeliveryMsg>, state: &mut DeliveryState, key: Key) {
    if state.busy.contains_key(&key) {
        return;
    }
    let Some(queue) = state.queues.get_mut(&key) else {
        return;
    };
    let Some((delivery, group)) = queue.pop_front() else {
        state.queues.remove(&key);
        return;
    };
    let holds = state
        .args
        .channels
        .get(delivery.channel)
        .is_some_and(|channel| state.batcher.policy().holds(&channel.kind));
    if holds {
        state.busy.insert(key, Busy::Held);
        if let Some(closes_at) = state.batcher.hold(Held { delivery, group }, Instant::now()) {
            let myself = myself.clone();
            tokio::spawn(async move {
                tokio::time::sleep_until(closes_at).await;
                let _ = myself.cast(DeliveryMsg::WindowClosed);
            });
        }
        return;
    }
    send_one(myself, state, key, delivery);
}

/// Lets go what a closed window held: each on its own, or as digests.
fn release_window(
    myself: &ActorRef<DeliveryMsg>,
    state: &mut DeliveryState,
    channel: ChannelId,
    release: Release,
) {
    match release {
        Release::Each(held) => {
            for Held { delivery, .. } in held {
                let key = (channel, delivery.alert.monitor_id);
                send_one(myself, state, key, delivery);
            }
        }
        Release::Digests(digests) => {
            for held in digests {
                let number = state.next_digest;
                state.next_digest += 1;
                let keys: Vec<Key> = held
                    .iter()
                    .map(|held| (channel, held.delivery.alert.monitor_id))
                    .collect();
                for key in &keys {
                    state.busy.insert(*key, Busy::InDigest);
                }
                let args = Arc::clone(&state.args);
                let myself = myself.clone();
                let worker = state.runtime.spawn(async move {
                    let outcome = deliver_digest(&args, channel, &held).await;
                    let mut records = Vec::with_capacity(held.len());
                    let settled: Vec<(ChannelId, u64)> = held
                        .iter()
                        .map(|held| (channel, held.delivery.alert.alert_seq))
                        .collect();
                    for Held { delivery, .. } in held {
                        let (recorded, was_recorded) = oneshot::channel();
                        let outcome = DeliveryOutcome {
                            channel,
                            alert_seq: delivery.alert.alert_seq,
                            ..outcome.clone()
                        };
                        let report = DeliveryReport {
                            delivery,
                            outcome,
                            recorded,
                        };
                        if args.reports.send(report).is_ok() {
                            records.push(was_recorded);
                        }
                    }
                    // Every covered pair waits for its own record, as after a single
                    // delivery.
                    for was_recorded in records {
                        let _ = was_recorded.await;
                    }
                    for (channel, alert_seq) in settled {
                        let _ = myself.cast(DeliveryMsg::Settled(channel, alert_seq));
                    }
                    let _ = myself.cast(DeliveryMsg::DigestFinished(number, keys));
                });
                state.digests.insert(number, worker.abort_handle());
            }
        }
    }
}

/// Sends one delivery in a task of its own, reports it, and waits for its record.
fn send_one(
    myself: &ActorRef<DeliveryMsg>,
    state: &mut DeliveryState,
    key: Key,
    delivery: Delivery,
) {
    let args = Arc::clone(&state.args);
    let myself = myself.clone();
    let worker = state.runtime.spawn(async move {
        let settled = DeliveryMsg::Settled(delivery.channel, delivery.alert.alert_seq);
        let Some(outcome) = deliver(&args, &delivery).await else {
            // The clustered mode: this pod no longer sends the monitor's alerts. The
            // outbox keeps the delivery; the shard's owner sends it.
            let _ = myself.cast(settled);
            let _ = myself.cast(DeliveryMsg::Finished(key));
            return;
        };
        let (recorded, was_recorded) = oneshot::channel();
        let report = DeliveryReport {
            delivery,
            outcome,
            recorded,
        };
        // The next delivery of this pair waits for the record. If the reader is gone
        // (shutdown), the outbox keeps the entry for the next start.
        if args.reports.send(report).is_ok() {
            let _ = was_recorded.await;
        }
        let _ = myself.cast(settled);
        let _ = myself.cast(DeliveryMsg::Finished(key));
    });
    state.busy.insert(key, Busy::Sending(worker.abort_handle()));
}

/// Sends one delivery with retries; returns how it ended, or `None` (the clustered
/// mode) when this pod may not send the monitor's alerts before an attempt.
async fn deliver(args: &DeliveryArgs, delivery: &Delivery) -> Option<DeliveryOutcome> {
    let mut outcome = DeliveryOutcome {
        channel: delivery.channel,
        alert_seq: delivery.alert.alert_seq,
        attempts: 0,
        error: None,
    };
    let Some(channel) = args.channels.get(delivery.channel) else {
        outcome.error = Some("channel was deleted".to_owned());
        return Some(outcome);
    };
    loop {
        if let Some(cluster) = args.notifier.cluster()
            && !cluster.may_send(delivery.alert.monitor_id)
        {
            tracing::info!(monitor = %delivery.alert.monitor_id, channel = %channel.id, "not the shard's deciding owner now; leaving the delivery to it");
            return None;
        }
        outcome.attempts += 1;
        let sent = {
            // Held for the attempt only, not across the backoff below.
            let _permit = args.sends.acquire().await;
            args.notifier.send(&channel, &delivery.alert).await
        };
        let error: NotifyError = match sent {
            Ok(()) => {
                // Recorded as a `delivery` event and counted in pushmon_alerts_total;
                // a line per success would double the log volume of an alert burst.
                tracing::debug!(
                    monitor = %delivery.alert.monitor_id,
                    channel = %channel.id,
                    kind = channel.kind.name(),
                    event = delivery.alert.kind.as_str(),
                    attempts = outcome.attempts,
                    "alert delivered"
                );
                return Some(outcome);
            }
            Err(error) => error,
        };
        let last = error.permanent || outcome.attempts >= args.policy.max_attempts;
        tracing::warn!(
            monitor = %delivery.alert.monitor_id,
            channel = %channel.id,
            kind = channel.kind.name(),
            attempt = outcome.attempts,
            permanent = error.permanent,
            %error,
            "alert delivery failed{}",
            if last { "; giving up" } else { "; will retry" }
        );
        if last {
            outcome.error = Some(error.message);
            return Some(outcome);
        }
        tokio::time::sleep(args.policy.backoff(outcome.attempts)).await;
    }
}

/// Sends a digest with retries, as [`deliver`] sends one delivery; returns how it
/// ended, for every delivery it covers (`alert_seq` is the caller's to fill in).
async fn deliver_digest(
    args: &DeliveryArgs,
    channel_id: ChannelId,
    held: &[Held],
) -> DeliveryOutcome {
    let mut outcome = DeliveryOutcome {
        channel: channel_id,
        alert_seq: 0,
        attempts: 0,
        error: None,
    };
    let Some(channel) = args.channels.get(channel_id) else {
        outcome.error = Some("channel was deleted".to_owned());
        return outcome;
    };
    let digest = Digest::named(
        args.notifier.installation,
        held,
        args.notifier.cluster().map(|cluster| &**cluster),
    );
    let result = loop {
        outcome.attempts += 1;
        let sent = {
            let _permit = args.sends.acquire().await;
            args.notifier.send_digest(&channel, &digest).await
        };
        let error: NotifyError = match sent {
            Ok(()) => {
                tracing::info!(
                    digest = %digest.id,
                    channel = %channel.id,
                    kind = channel.kind.name(),
                    alerts = digest.count,
                    attempts = outcome.attempts,
                    "alert digest delivered"
                );
                break "success";
            }
            Err(error) => error,
        };
        let last = error.permanent || outcome.attempts >= args.policy.max_attempts;
        tracing::warn!(
            digest = %digest.id,
            channel = %channel.id,
            kind = channel.kind.name(),
            alerts = digest.count,
            attempt = outcome.attempts,
            permanent = error.permanent,
            %error,
            "alert digest delivery failed{}",
            if last { "; giving up" } else { "; will retry" }
        );
        if last {
            outcome.error = Some(error.message);
            break "failure";
        }
        tokio::time::sleep(args.policy.backoff(outcome.attempts)).await;
    };
    metrics::counter!(prometheus::DIGESTS_TOTAL, "result" => result).increment(1);
    metrics::counter!(prometheus::DIGEST_ALERTS_TOTAL, "result" => result)
        .increment(digest.count as u64);
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_jitter_and_is_capped() {
        let policy = RetryPolicy {
            initial: Duration::from_millis(100),
            max: Duration::from_millis(1000),
            max_attempts: 10,
        };
        for (attempt, base) in [
            (1u32, 100u64),
            (2, 200),
            (3, 400),
            (4, 800),
            (5, 1000),
            (40, 1000),
        ] {
            let wait = policy.backoff(attempt).as_millis() as u64;
            assert!(
                wait >= base * 8 / 10 && wait <= base * 12 / 10,
                "attempt {attempt}: {wait} ms not within 20% of {base} ms"
            );
        }
    }
}
