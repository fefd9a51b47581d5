//! `apply` and `replay`: folding events into a monitor's state, the one path that
//! live traffic and start-up replay share.

use super::*;

/// Folds one event into the state. `Created` is handled by [`Monitor::created`];
/// `Deleted` leaves the state as it was (the caller drops the monitor).
pub fn apply(monitor: &mut Monitor, seq: u64, at: Timestamp, event: &Event) {
    monitor.last_seq = seq;
    monitor.last_event_at = monitor.last_event_at.max(at);
    match event {
        Event::Created { config, token } => {
            // Only reachable if a log repeats a creation: adopt it as the new config.
            monitor.config = Arc::new(MonitorConfig::clone(config));
            monitor.token = token.clone();
        }
        Event::Updated { config } => {
            monitor.config = Arc::new(MonitorConfig::clone(config));
            if !monitor.is_fleet() {
                monitor.instances.clear();
            }
        }
        Event::TokenRotated { token } => monitor.token = token.clone(),
        Event::Deleted | Event::DeliveryRecorded(_) | Event::LogReceived(_) => {}
        Event::HeartbeatReceived(heartbeat) => {
            monitor.last_heartbeat_at = Some(at);
            monitor.last_msg = heartbeat.msg.clone();
            if heartbeat.value.is_some() {
                monitor.last_value = heartbeat.value;
            }
            let fleet = monitor.is_fleet();
            if fleet {
                record_instance(monitor, heartbeat, at);
            }
            match heartbeat.status {
                // A fleet's clock is its instances' (`Monitor::quorum_until`), and it
                // goes up only by `WentUp`.
                PushStatus::Up if fleet => {
                    monitor.last_success_at = Some(at);
                    monitor.consecutive_failures = 0;
                }
                PushStatus::Up => {
                    monitor.clock_started_at = at;
                    monitor.grace = None;
                    monitor.last_success_at = Some(at);
                    monitor.consecutive_failures = 0;
                    // A log written before `WentUp` existed has only this heartbeat to
                    // take the monitor out of `pending`; in a newer one, the `WentUp`
                    // that follows finds it `up` already.
                    if monitor.status == Status::Pending {
                        set_status(monitor, Status::Up, at);
                    }
                }
                PushStatus::Down => monitor.consecutive_successes = 0,
            }
        }
        Event::WentDown { reason } => {
            monitor.grace = None;
            monitor.last_down_reason = Some(*reason);
            set_status(monitor, Status::Down, at);
            // Held back by a window (`AlertSuppressed`) or for a parent (`AlertHeld`).
            let suppressed = std::mem::take(&mut monitor.suppress_next_alert);
            if !suppressed && monitor.held_alert.is_none() {
                monitor.alerted_down = true;
                monitor.last_alerted_at = Some(at);
            }
            settle_hold(monitor);
        }
        Event::Recovered => {
            set_status(monitor, Status::Up, at);
            let suppressed = std::mem::take(&mut monitor.suppress_next_alert);
            if !suppressed && monitor.held_alert.is_none() {
                monitor.alerted_down = false;
            }
            settle_hold(monitor);
        }
        Event::WentUp => {
            set_status(monitor, Status::Up, at);
            settle_hold(monitor);
        }
        Event::Paused => {
            monitor.grace = None;
            set_status(monitor, Status::Paused, at);
            settle_hold(monitor);
        }
        Event::Resumed => {
            monitor.clock_started_at = at;
            monitor.grace = None;
            // A resume starts afresh: the next `down` alerts again.
            monitor.alerted_down = false;
            set_status(monitor, Status::Pending, at);
            settle_hold(monitor);
        }
        Event::GraceGranted { deadline, until } => {
            monitor.grace = Some(Grace {
                deadline: *deadline,
                until: *until,
            });
        }
        Event::RunStarted(start) => {
            if let Some(dropped) = &start.dropped {
                monitor.runs.retain(|run| !run.is(dropped));
            }
            if monitor.runs.len() >= MAX_OPEN_RUNS {
                monitor.runs.remove(0);
            }
            monitor.runs.push(OpenRun {
                rid: start.rid,
                started_at: at,
                overran: false,
            });
        }
        Event::RunEnded(end) => {
            if let Some(closed) = &end.run {
                monitor.runs.retain(|run| !run.is(closed));
            }
            monitor.last_run = Some(Box::new(LastRun {
                started_at: end.run.map(|run| run.started_at),
                ended_at: at,
                exit_status: end.exit_status,
                outcome: end.outcome,
                output_excerpt: end.output.as_ref().map(|output| output.excerpt()),
            }));
        }
        Event::RunOverran(overran) => {
            for run in monitor.runs.iter_mut().filter(|run| run.is(overran)) {
                run.overran = true;
            }
        }
        Event::FailureCounted { reason, count } => {
            monitor.consecutive_failures = *count;
            monitor.consecutive_successes = 0;
            if matches!(reason, DownReason::Timeout | DownReason::Schedule) {
                // A missed deadline below the threshold: the next one is counted from
                // this one.
                monitor.clock_started_at = at;
                monitor.grace = None;
            }
        }
        Event::SuccessCounted { count } => monitor.consecutive_successes = *count,
        Event::Reminder { .. } => monitor.last_alerted_at = Some(at),
        Event::AlertSuppressed(_) => monitor.suppress_next_alert = true,
        Event::AlertReleased(Notice::Down(_)) => {
            monitor.alerted_down = true;
            monitor.last_alerted_at = Some(at);
            monitor.held_alert = None;
        }
        Event::AlertReleased(Notice::Up) => {
            monitor.alerted_down = false;
            monitor.held_alert = None;
        }
        Event::Muted {
            until,
            until_recovery,
        } => {
            monitor.mute = Some(Mute {
                since: at,
                until: *until,
                until_recovery: *until_recovery,
            });
        }
        Event::Unmuted { .. } => {
            monitor.mute = None;
            // Reminders of a `down` the channels count as told start again from now,
            // not at once for the time the mute held them.
            if monitor.status == Status::Down && monitor.alerted_down {
                monitor.last_alerted_at = Some(at);
            }
        }
        // Nothing to fold: while muted, a change of state counts as told (the
        // delivery is what the mute holds, `alert::owed_deliveries`).
        Event::AlertMuted(_) => {}
        // The guard held a missed deadline: `unknown` until the job reports (up, no
        // alert) or the release's grace is over (down, alerted then).
        Event::VerdictHeld { .. } => {
            monitor.grace = None;
            set_status(monitor, Status::Unknown, at);
        }
        Event::AlertHeld { notice, parent } => {
            monitor.held_alert = Some(HeldAlert {
                notice: *notice,
                parent: *parent,
                since: at,
            });
        }
        Event::InstanceForgotten { instance } => {
            monitor.instances.retain(|seen| seen.name != *instance);
        }
    }
}

/// A fleet's record of the instance a heartbeat comes from (`instance=`, or
/// [`DEFAULT_INSTANCE`]), kept sorted by name; a new one beyond [`MAX_INSTANCES`]
/// takes the place of the one silent the longest (which `decide` forgets first).
fn record_instance(monitor: &mut Monitor, heartbeat: &Heartbeat, at: Timestamp) {
    let Some(name) = instance_of(heartbeat) else {
        return;
    };
    match monitor.instance_index(&name) {
        Ok(index) => {
            let seen = &mut monitor.instances[index];
            seen.last_seen = at;
            seen.status = heartbeat.status;
        }
        Err(index) => {
            monitor.instances.insert(
                index,
                InstanceSeen {
                    name,
                    last_seen: at,
                    status: heartbeat.status,
                },
            );
            if monitor.instances.len() > MAX_INSTANCES
                && let Some(oldest) = monitor
                    .instances
                    .iter()
                    .enumerate()
                    .min_by(|(_, a), (_, b)| (a.last_seen, &a.name).cmp(&(b.last_seen, &b.name)))
                    .map(|(index, _)| index)
            {
                monitor.instances.remove(oldest);
            }
        }
    }
}

/// The instance a fleet counts `heartbeat` as: its `instance=`, or
/// [`DEFAULT_INSTANCE`] (always `Some`: the default is a valid name).
pub(super) fn instance_of(heartbeat: &Heartbeat) -> Option<InstanceName> {
    heartbeat
        .instance
        .clone()
        .or_else(|| InstanceName::parse(DEFAULT_INSTANCE))
}

/// Ends an alert hold for a parent that nothing is owed for any more: the state is
/// back to what the channels were last told (a child that recovered while its `down`
/// was held), or the monitor was paused or resumed.
fn settle_hold(monitor: &mut Monitor) {
    if monitor.held_alert.is_some() && monitor.channels_behind().is_none() {
        monitor.held_alert = None;
    }
}

/// A change of state: counting starts again toward the next one.
fn set_status(monitor: &mut Monitor, status: Status, at: Timestamp) {
    if monitor.status != status {
        monitor.status = status;
        monitor.last_status_change_at = Some(at);
        monitor.consecutive_failures = 0;
        monitor.consecutive_successes = 0;
    }
}

/// Rebuilds a monitor from its whole history, as start-up replay does.
/// `None` if the history does not start with `Created` or ends with `Deleted`.
pub fn replay<'a>(
    id: MonitorId,
    history: impl IntoIterator<Item = (u64, Timestamp, &'a Event)>,
) -> Option<Monitor> {
    let mut monitor: Option<Monitor> = None;
    for (seq, at, event) in history {
        match (&mut monitor, event) {
            (None, Event::Created { config, token }) => {
                let mut created =
                    Monitor::created(id, at, MonitorConfig::clone(config), token.clone());
                created.last_seq = seq;
                monitor = Some(created);
            }
            (None, _) => return None,
            (Some(_), Event::Deleted) => return None,
            (Some(state), event) => apply(state, seq, at, event),
        }
    }
    monitor
}
