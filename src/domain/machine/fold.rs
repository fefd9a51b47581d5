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
        Event::Updated { config } => monitor.config = Arc::new(MonitorConfig::clone(config)),
        Event::TokenRotated { token } => monitor.token = token.clone(),
        Event::Deleted | Event::DeliveryRecorded(_) | Event::LogReceived(_) => {}
        Event::HeartbeatReceived(heartbeat) => {
            monitor.last_heartbeat_at = Some(at);
            monitor.last_msg = heartbeat.msg.clone();
            if heartbeat.value.is_some() {
                monitor.last_value = heartbeat.value;
            }
            match heartbeat.status {
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
            if !std::mem::take(&mut monitor.suppress_next_alert) {
                monitor.alerted_down = true;
                monitor.last_alerted_at = Some(at);
            }
        }
        Event::Recovered => {
            set_status(monitor, Status::Up, at);
            if !std::mem::take(&mut monitor.suppress_next_alert) {
                monitor.alerted_down = false;
            }
        }
        Event::WentUp => set_status(monitor, Status::Up, at),
        Event::Paused => {
            monitor.grace = None;
            set_status(monitor, Status::Paused, at);
        }
        Event::Resumed => {
            monitor.clock_started_at = at;
            monitor.grace = None;
            // A resume starts afresh: the next `down` alerts again.
            monitor.alerted_down = false;
            set_status(monitor, Status::Pending, at);
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
        }
        Event::AlertReleased(Notice::Up) => monitor.alerted_down = false,
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
