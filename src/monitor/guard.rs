//! The guard's shell (`docs/states.md`, "The guard"): counts arrivals, keeps the
//! running monitors' prediction up to date, ticks `domain::guard::Guard` and acts on
//! its transitions.
//!
//! - [`GuardShared`] is what every monitor actor holds: one relaxed atomic add per
//!   push or ping that reaches a monitor (the only cost on the push path), the
//!   prediction each monitor made at its last change of state or configuration
//!   (never on a plain heartbeat), the set of monitors holding a verdict, and the
//!   flag actors read when a deadline falls (`Command::CheckDeadline { hold }`).
//! - [`run`] ticks every tenth of a window. When the guard trips it sets the flag and
//!   alerts once about pushmon itself; when it releases it clears the flag, gives
//!   every held monitor its release grace (`Command::ReleaseHeld`) and tells the
//!   channels it is over.
//!
//! The alert about pushmon is a real one: the guard drives a monitor of its own
//! ("pushmon guard", key `pushmon-guard`, created at its first trip) with a `down`
//! heartbeat when it trips and an `up` one when it releases, so the alert goes
//! through the outbox and the dispatcher like any other: durable, retried, recorded.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::alert::Channels;
use crate::clock::Clock;
use crate::config::GuardConfig;
use crate::domain::channel::SendOn;
use crate::domain::event::{Heartbeat, HeartbeatText, MonitorConfig, PushStatus};
use crate::domain::guard::{Guard, GuardState, Transition};
use crate::domain::ids::{ChannelId, MonitorId};
use crate::domain::machine::{Command, ConfigPatch, Monitor, Status};
use crate::prometheus;

use super::directory::MonitorHandle;
use super::guard_state::GuardShared;
use super::registry::{Registry, RegistryError};

/// The key of the monitor the guard alerts through.
pub const GUARD_MONITOR_KEY: &str = "pushmon-guard";

/// Its name, as alerts show it.
pub const GUARD_MONITOR_NAME: &str = "pushmon guard";

/// Its timeout: the longest a monitor may have. The guard heartbeats it at each
/// start-up and each transition, and once a day ([`KEEPALIVE`]), so it never times
/// out.
const GUARD_MONITOR_TIMEOUT_SECONDS: u32 = 31_536_000;

/// How often the guard tells its own monitor it is alive.
const KEEPALIVE: Duration = Duration::from_secs(24 * 3600);

/// How often telling the guard's monitor is retried while the store cannot write.
const RETRY_DELAY: Duration = Duration::from_secs(1);

/// Ticks the guard until the task is aborted. `guard_monitor` is the monitor it
/// alerts through, if one was stored.
pub fn run(
    registry: Registry,
    channels: Channels,
    shared: Arc<GuardShared>,
    config: GuardConfig,
    clock: Clock,
    guard_monitor: Option<Monitor>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        if !config.enabled {
            return;
        }
        let mut own = OwnMonitor {
            registry: registry.clone(),
            channels,
            config: config.clone(),
            id: guard_monitor.as_ref().map(|monitor| monitor.id),
        };
        // Stored down: the guard tripped before the restart and never said it was
        // over. It is over once the guard has watched a whole window again.
        let mut owes_resolution = guard_monitor
            .as_ref()
            .is_some_and(|monitor| monitor.status == Status::Down);
        if guard_monitor.is_some() && !owes_resolution {
            own.tell(PushStatus::Up, "pushmon started".to_owned()).await;
        }
        let mut guard = Guard::new(config.settings, clock.now(), shared.arrivals());
        let mut ticks = tokio::time::interval(Duration::from_millis(config.settings.tick_millis()));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_keepalive = tokio::time::Instant::now();
        loop {
            ticks.tick().await;
            let now = clock.now();
            let transition = guard.tick(now, shared.arrivals(), shared.expected_micros());
            shared.show(&guard);
            let rates = guard.rates();
            metrics::gauge!(prometheus::GUARD_EXPECTED_RATE).set(rates.expected_per_second);
            metrics::gauge!(prometheus::GUARD_OBSERVED_RATE).set(rates.observed_per_second);
            metrics::gauge!(prometheus::GUARD_TRIPPED).set(match guard.state() {
                GuardState::Tripped => 1.0,
                GuardState::Warming | GuardState::Normal => 0.0,
            });
            match transition {
                Some(Transition::Tripped(rates)) => {
                    shared.set_holding(true);
                    tracing::warn!(
                        observed_per_second = rates.observed_per_second,
                        expected_per_second = rates.expected_per_second,
                        "heartbeat arrivals collapsed; holding missed deadlines as unknown"
                    );
                    let message = format!(
                        "heartbeat arrivals collapsed: {:.2}/s over the last {}, {:.2}/s expected; \
                         missed deadlines are held as unknown until arrivals come back",
                        rates.observed_per_second,
                        seconds_text(config.settings.window_millis),
                        rates.expected_per_second
                    );
                    own.tell(PushStatus::Down, message).await;
                }
                Some(Transition::Released(rates)) => {
                    shared.set_holding(false);
                    let held = shared.held_monitors();
                    tracing::info!(
                        observed_per_second = rates.observed_per_second,
                        expected_per_second = rates.expected_per_second,
                        held = held.len(),
                        "heartbeat arrivals are back; releasing held verdicts"
                    );
                    release(&registry, held.clone(), config.release_grace_seconds);
                    let message = format!(
                        "heartbeat arrivals are back: {:.2}/s, {:.2}/s expected; {} monitors \
                         that are still silent in {} s go down",
                        rates.observed_per_second,
                        rates.expected_per_second,
                        held.len(),
                        config.release_grace_seconds
                    );
                    own.tell(PushStatus::Up, message).await;
                    owes_resolution = false;
                }
                None if owes_resolution && guard.state() == GuardState::Normal => {
                    owes_resolution = false;
                    own.tell(
                        PushStatus::Up,
                        "pushmon restarted and heartbeat arrivals are as expected".to_owned(),
                    )
                    .await;
                }
                None if own.id.is_some() && last_keepalive.elapsed() >= KEEPALIVE => {
                    last_keepalive = tokio::time::Instant::now();
                    if guard.state() != GuardState::Tripped && !owes_resolution {
                        own.tell(PushStatus::Up, "pushmon is alive".to_owned())
                            .await;
                    }
                }
                None => {}
            }
        }
    })
}

fn seconds_text(millis: u64) -> String {
    if millis.is_multiple_of(1000) {
        format!("{} s", millis / 1000)
    } else {
        format!("{:.1} s", millis as f64 / 1000.0)
    }
}

/// Gives each held monitor its release grace, without waiting for them.
fn release(registry: &Registry, held: Vec<MonitorId>, grace_seconds: u32) {
    for id in held {
        let registry = registry.clone();
        tokio::spawn(async move {
            loop {
                match registry
                    .execute(id, Command::ReleaseHeld { grace_seconds })
                    .await
                {
                    Ok(_) | Err(RegistryError::NotFound) | Err(RegistryError::Rejected(_)) => {
                        return;
                    }
                    Err(error) => {
                        tracing::warn!(monitor = %id, %error, "cannot release a held verdict yet; retrying");
                        tokio::time::sleep(RETRY_DELAY).await;
                    }
                }
            }
        });
    }
}

/// The monitor the guard alerts through.
struct OwnMonitor {
    registry: Registry,
    channels: Channels,
    config: GuardConfig,
    id: Option<MonitorId>,
}

impl OwnMonitor {
    /// The channels its alerts go to: `--guard-channels` (those that exist), or
    /// every channel told about `down` alerts.
    fn channels(&self) -> Vec<ChannelId> {
        match &self.config.channels {
            Some(listed) => listed
                .iter()
                .copied()
                .filter(|id| self.channels.contains(*id))
                .collect(),
            None => self
                .channels
                .list()
                .into_iter()
                .filter(|channel| matches!(channel.send_on, SendOn::Both | SendOn::Down))
                .map(|channel| channel.id)
                .collect(),
        }
    }

    /// Heartbeats the guard's monitor with `status` and `message`, creating it first
    /// if there is none, and bringing its channels up to date. Retries while the
    /// store cannot write (a few times: the guard must go on ticking).
    async fn tell(&mut self, status: PushStatus, message: String) {
        for _ in 0..30 {
            match self.try_tell(status, &message).await {
                Ok(()) => return,
                Err(error) => {
                    tracing::warn!(%error, "cannot tell the guard's monitor yet; retrying");
                    tokio::time::sleep(RETRY_DELAY).await;
                }
            }
        }
        tracing::error!("gave up telling the guard's monitor");
    }

    async fn try_tell(&mut self, status: PushStatus, message: &str) -> Result<(), RegistryError> {
        // Without resolutions (`--guard-resolved off`), an `up` goes to no channel: it
        // is recorded in the guard's monitor's history and nothing is sent. The next
        // `down` brings the channels back first.
        let channels = if status == PushStatus::Up && !self.config.send_resolved {
            Vec::new()
        } else {
            self.channels()
        };
        let current = match self.id {
            Some(id) => match self.registry.current_state(id).await {
                Ok(monitor) => Some(monitor),
                Err(RegistryError::NotFound) => None,
                Err(error) => return Err(error),
            },
            None => None,
        };
        let monitor = match current {
            Some(monitor) if monitor.config.channels == channels => monitor,
            Some(monitor) => {
                let patch = ConfigPatch {
                    channels: Some(channels),
                    ..ConfigPatch::default()
                };
                self.registry
                    .execute(monitor.id, Command::Update(patch))
                    .await?
            }
            None => {
                let mut config =
                    MonitorConfig::new(GUARD_MONITOR_NAME, GUARD_MONITOR_TIMEOUT_SECONDS);
                config.channels = channels;
                config.key = Some(GUARD_MONITOR_KEY.to_owned());
                config.tags = vec!["pushmon".to_owned()];
                let created = self.registry.create(config).await?;
                tracing::info!(monitor = %created.id, "created the guard's monitor");
                created
            }
        };
        self.id = Some(monitor.id);
        let actor = self
            .registry
            .directory()
            .by_id(monitor.id)
            .ok_or(RegistryError::NotFound)?;
        let handle = MonitorHandle {
            id: monitor.id,
            actor,
        };
        let heartbeat = Heartbeat {
            status,
            msg: Some(HeartbeatText::truncated(message.to_owned())),
            value: None,
            instance: None,
        };
        self.registry.heartbeat(&handle, heartbeat).await
    }
}
