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

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::{mpsc, oneshot};

use crate::domain::alert::Delivery;
use crate::domain::event::DeliveryOutcome;
use crate::domain::ids::{ChannelId, MonitorId};
use crate::prometheus;

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
    /// A delivery is owed (just committed, or found in the outbox at start-up).
    Enqueue(Delivery),
    /// The delivery at the head of this key's queue is settled.
    Finished(Key),
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
    ) -> Result<(Self, ractor::concurrency::JoinHandle<()>, DeliveryReports), ractor::SpawnErr>
    {
        let (reports, reported) = mpsc::unbounded_channel();
        let args = DeliveryArgs {
            notifier,
            channels,
            policy,
            sends: tokio::sync::Semaphore::new(MAX_CONCURRENT_SENDS),
            reports,
        };
        let (actor, handle) = Actor::spawn(None, DeliveryActor, args).await?;
        Ok((Self { actor }, handle, reported))
    }

    pub fn enqueue(&self, delivery: Delivery) {
        if self.actor.cast(DeliveryMsg::Enqueue(delivery)).is_err() {
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

pub struct DeliveryState {
    args: Arc<DeliveryArgs>,
    queues: HashMap<Key, VecDeque<Delivery>>,
    /// The delivery task in flight for each key (at most one per key). A map, not a
    /// list: with a 100k-alert burst, pruning a list of finished tasks on every
    /// completion was quadratic and starved the other actors of a worker thread.
    busy: HashMap<Key, tokio::task::AbortHandle>,
    owed: usize,
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
        Ok(DeliveryState {
            args: Arc::new(args),
            queues: HashMap::new(),
            busy: HashMap::new(),
            owed: 0,
            runtime: SendRuntime::start(),
        })
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        // Unfinished deliveries stay in the outbox and are sent after the restart.
        for (_, worker) in state.busy.drain() {
            worker.abort();
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
            DeliveryMsg::Enqueue(delivery) => {
                let key = (delivery.channel, delivery.alert.monitor_id);
                state.queues.entry(key).or_default().push_back(delivery);
                state.owed += 1;
                start_next(&myself, state, key);
            }
            DeliveryMsg::Finished(key) => {
                state.busy.remove(&key);
                state.owed = state.owed.saturating_sub(1);
                start_next(&myself, state, key);
            }
        }
        metrics::gauge!(prometheus::OUTBOX_DEPTH).set(state.owed as f64);
        Ok(())
    }
}

/// Starts the head of `key`'s queue unless one of its deliveries is in flight.
fn start_next(myself: &ActorRef<DeliveryMsg>, state: &mut DeliveryState, key: Key) {
    if state.busy.contains_key(&key) {
        return;
    }
    let Some(queue) = state.queues.get_mut(&key) else {
        return;
    };
    let Some(delivery) = queue.pop_front() else {
        state.queues.remove(&key);
        return;
    };
    let args = Arc::clone(&state.args);
    let myself = myself.clone();
    let worker = state.runtime.spawn(async move {
        let outcome = deliver(&args, &delivery).await;
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
        let _ = myself.cast(DeliveryMsg::Finished(key));
    });
    state.busy.insert(key, worker.abort_handle());
}

/// Sends one delivery with retries; returns how it ended.
async fn deliver(args: &DeliveryArgs, delivery: &Delivery) -> DeliveryOutcome {
    let mut outcome = DeliveryOutcome {
        channel: delivery.channel,
        alert_seq: delivery.alert.alert_seq,
        attempts: 0,
        error: None,
    };
    let Some(channel) = args.channels.get(delivery.channel) else {
        outcome.error = Some("channel was deleted".to_owned());
        return outcome;
    };
    loop {
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
                return outcome;
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
            return outcome;
        }
        tokio::time::sleep(args.policy.backoff(outcome.attempts)).await;
    }
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
