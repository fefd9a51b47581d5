//! `decide`: what a command causes. A command that sets off several rules is decided
//! step by step on a copy of the state ([`Decision`]), each step applied before the
//! next looks.

use super::*;

/// What a push reports: a plain heartbeat, or a signal.
enum Ping {
    Heartbeat(Heartbeat),
    Signal(Box<Signal>),
}

/// Decides step by step: each event is applied to a copy of the state before the
/// next rule looks at it, and stamped no earlier than the event before it.
struct Decision<'a> {
    state: Monitor,
    events: Vec<Stamped>,
    /// What is known of the monitor's parents.
    parents: &'a Parents,
}

impl<'a> Decision<'a> {
    fn new(monitor: &Monitor, parents: &'a Parents) -> Self {
        Self {
            state: monitor.clone(),
            events: Vec::new(),
            parents,
        }
    }

    fn push(&mut self, at: Timestamp, event: Event) {
        let at = at.max(self.state.last_event_at);
        let seq = self.state.last_seq;
        apply(&mut self.state, seq, at, &event);
        self.events.push(Stamped { at, event });
    }

    /// A change of state that alerts: held back (`AlertSuppressed` first) when `at`
    /// is inside a maintenance window; otherwise after the release of what a window
    /// held back, if the channels have not been told yet (so they hear every change,
    /// in order).
    ///
    /// While muted, it is held for good (`AlertMuted` first) and ends a mute until
    /// recovery if it is a recovery.
    ///
    /// A `down` while a parent is down is held for it (`AlertHeld` first); so is the
    /// recovery of a monitor whose `down` is held, which leaves nothing to send.
    fn alert(&mut self, at: Timestamp, event: Event) {
        let at = at.max(self.state.last_event_at);
        if self.state.muted_at(at) {
            let recovery = matches!(event, Event::Recovered);
            self.push(at, Event::AlertMuted(notice_of(&event)));
            self.push(at, event);
            if recovery && self.state.mute.is_some_and(|mute| mute.until_recovery) {
                self.push(
                    at,
                    Event::Unmuted {
                        reason: UnmuteReason::Recovered,
                    },
                );
            }
            return;
        }
        if self.state.maintenance_until(at).is_some() {
            self.push(at, Event::AlertSuppressed(notice_of(&event)));
        } else if let Some(held) = self.state.held_alert {
            // Only a recovery can follow a held `down`: the channels never heard it.
            self.push(
                at,
                Event::AlertHeld {
                    notice: notice_of(&event),
                    parent: held.parent,
                },
            );
        } else {
            if let Some(notice) = self.state.release_due() {
                self.push(at, Event::AlertReleased(notice));
            }
            if let (Event::WentDown { reason }, Some(parent)) = (&event, self.parents.down()) {
                self.push(
                    at,
                    Event::AlertHeld {
                        notice: Notice::Down(*reason),
                        parent,
                    },
                );
            }
        }
        self.push(at, event);
    }

    /// Releases an alert a maintenance window held back, if it is over at `now`
    /// (held for good instead while muted). First ends a timed mute that is over.
    fn release_if_due(&mut self, now: Timestamp) {
        if let Some(until) = self.state.mute_expired_at(now) {
            self.push(
                until,
                Event::Unmuted {
                    reason: UnmuteReason::Expired,
                },
            );
        }
        if self.state.maintenance_until(now).is_some() {
            return;
        }
        // An alert held for a parent: sent once every parent has been up for the
        // dependency grace (a window's end first, if one is on).
        let held_owed = self
            .state
            .held_release_at(self.parents)
            .filter(|at| *at <= now)
            .and_then(|_| self.state.channels_behind());
        if let Some(notice) = held_owed.or_else(|| self.state.release_due()) {
            let muted = self.state.muted_at(now);
            match (notice, self.parents.down()) {
                // A `down` a window held back, whose end finds a parent down: held on.
                (Notice::Down(_), Some(parent)) if !muted && held_owed.is_none() => {
                    self.push(now, Event::AlertHeld { notice, parent });
                }
                _ => {
                    if muted {
                        self.push(now, Event::AlertMuted(notice));
                    }
                    self.push(now, Event::AlertReleased(notice));
                }
            }
        }
    }

    /// A failure for `reason` at `at`: counted while `pending` or `up`, down at the
    /// threshold; nothing more while `down` or `paused`.
    fn failure(&mut self, at: Timestamp, reason: DownReason) {
        // A monitor whose missed deadline is held still hears what its job says.
        if !self.state.status.is_running() && self.state.status != Status::Unknown {
            return;
        }
        let count = self.state.consecutive_failures.saturating_add(1);
        if count >= self.state.config.failure_threshold {
            self.alert(at, Event::WentDown { reason });
        } else {
            self.push(at, Event::FailureCounted { reason, count });
        }
    }

    /// A success at `at` of a monitor that was `was` before it.
    fn success(&mut self, at: Timestamp, was: Status) {
        match was {
            // Held by the guard: the job reported after all, so the verdict was wrong
            // and the channels never heard of it. Up without an alert.
            Status::Pending | Status::Unknown => self.push(at, Event::WentUp),
            Status::Down => {
                let count = self.state.consecutive_successes.saturating_add(1);
                if count >= self.state.config.recovery_threshold {
                    self.alert(at, Event::Recovered);
                } else {
                    self.push(at, Event::SuccessCounted { count });
                }
            }
            Status::Up | Status::Paused => {}
        }
    }

    fn ping(&mut self, ping: Ping, now: Timestamp) {
        self.release_if_due(now);
        let signal = match ping {
            Ping::Heartbeat(heartbeat) => {
                let was = self.state.status;
                let status = heartbeat.status;
                self.forget_evicted(&heartbeat, now);
                self.push(now, Event::HeartbeatReceived(heartbeat));
                if self.state.is_fleet() {
                    self.judge_quorum(now);
                    return;
                }
                match status {
                    PushStatus::Up => self.success(now, was),
                    PushStatus::Down => self.failure(now, DownReason::Manual),
                }
                return;
            }
            Ping::Signal(signal) => *signal,
        };
        match signal.kind {
            SignalKind::Start => {
                let dropped = (self.state.runs.len() >= MAX_OPEN_RUNS)
                    .then(|| self.state.runs.first().map(OpenRun::reference))
                    .flatten();
                self.push(
                    now,
                    Event::RunStarted(RunStart {
                        rid: signal.rid,
                        msg: signal.msg,
                        output: signal.output,
                        dropped,
                    }),
                );
            }
            SignalKind::Log => self.push(
                now,
                Event::LogReceived(LogEntry {
                    rid: signal.rid,
                    msg: signal.msg,
                    output: signal.output,
                }),
            ),
            SignalKind::Success | SignalKind::Fail => self.end_run(signal, now),
        }
    }

    /// A success or a failure: the heartbeat, the run it ends (if it ends one or says
    /// more than a heartbeat), then what it does to the state.
    fn end_run(&mut self, signal: Signal, now: Timestamp) {
        let failed_by = match (signal.kind, signal.exit_status) {
            (_, Some(status)) if status != 0 => Some(DownReason::ExitStatus),
            (SignalKind::Fail, _) => Some(DownReason::Manual),
            _ => None,
        };
        // A run id ends its run; none ends the newest run started without one (the
        // duration is measured from the last start, as Healthchecks does).
        let closing = self
            .state
            .runs
            .iter()
            .rev()
            .find(|run| run.rid == signal.rid)
            .copied();
        let too_fast = match (closing, self.state.config.min_runtime_seconds) {
            (Some(run), Some(min)) => run.started_at.millis_until(now) < u64::from(min) * 1000,
            _ => false,
        };
        let outcome = match failed_by {
            Some(reason) => RunOutcome::Failure(reason),
            None if too_fast => RunOutcome::Failure(DownReason::TooFast),
            None => RunOutcome::Success,
        };
        let status = match outcome {
            RunOutcome::Success => PushStatus::Up,
            RunOutcome::Failure(_) => PushStatus::Down,
        };
        let was = self.state.status;
        let says_more = closing.is_some()
            || signal.exit_status.is_some()
            || signal.output.is_some()
            || signal.rid.is_some();
        let heartbeat = Heartbeat {
            status,
            msg: signal.msg,
            value: signal.value,
            instance: signal.instance,
        };
        self.forget_evicted(&heartbeat, now);
        self.push(now, Event::HeartbeatReceived(heartbeat));
        if says_more {
            self.push(
                now,
                Event::RunEnded(RunEnd {
                    rid: signal.rid,
                    run: closing.map(|run| run.reference()),
                    exit_status: signal.exit_status,
                    outcome,
                    output: signal.output,
                }),
            );
        }
        if self.state.is_fleet() {
            self.judge_quorum(now);
            return;
        }
        match outcome {
            RunOutcome::Success => self.success(now, was),
            RunOutcome::Failure(reason) => self.failure(now, reason),
        }
    }

    /// A heartbeat from a new instance of a full fleet: the instance silent the
    /// longest is forgotten first.
    fn forget_evicted(&mut self, heartbeat: &Heartbeat, now: Timestamp) {
        if !self.state.is_fleet() {
            return;
        }
        if let Some(instance) =
            fold::instance_of(heartbeat).and_then(|instance| self.state.evicted_by(&instance))
        {
            self.push(now, Event::InstanceForgotten { instance });
        }
    }

    /// A fleet after a heartbeat: up once `min_instances` instances report, down
    /// when a failure leaves fewer (a missed deadline is judged at its time, by
    /// `check_deadlines`). The quorum is its threshold: failure and recovery
    /// thresholds do not apply to fleets (`check_config` refuses them).
    fn judge_quorum(&mut self, now: Timestamp) {
        let quorum = self.state.instances_reporting(now) >= self.state.min_instances();
        match (self.state.status, quorum) {
            (Status::Pending | Status::Unknown, true) => self.push(now, Event::WentUp),
            (Status::Down, true) => self.alert(now, Event::Recovered),
            (Status::Up, false) => self.alert(
                now,
                Event::WentDown {
                    reason: DownReason::Instances,
                },
            ),
            _ => {}
        }
    }

    /// The timer fired: release what a maintenance window held back, judge runs past
    /// their max runtime and a missed deadline (each a failure, stamped at its
    /// deadline), send a reminder.
    fn check_deadlines(&mut self, now: Timestamp, hold: bool) {
        self.release_if_due(now);
        if self.state.status == Status::Unknown {
            self.judge_held(now, hold);
            return;
        }
        // Each step moves a deadline later or the monitor out of `up`; the bound only
        // guards against a bug looping forever.
        for _ in 0..(2 * MAX_THRESHOLD as usize + MAX_OPEN_RUNS) {
            let state = &self.state;
            let run = state
                .run_deadlines()
                .into_iter()
                .map(|(deadline, run)| (state.graced(deadline), run))
                .next();
            let due = state.due_deadline().map(|due| state.graced(due));
            match (due, run) {
                (_, Some((deadline, run)))
                    if deadline <= now && due.is_none_or(|due| deadline <= due) =>
                {
                    self.push(deadline, Event::RunOverran(run));
                    self.failure(deadline, DownReason::MaxRuntime);
                }
                (Some(deadline), _) if deadline <= now => {
                    let reason = state.missed_reason();
                    if hold {
                        // The guard is tripped: arrivals collapsed everywhere, so this
                        // silence says more about the network than about the job.
                        self.push(deadline, Event::VerdictHeld { reason, deadline });
                        break;
                    }
                    self.failure(deadline, reason);
                }
                _ => break,
            }
        }
        if let Some(due) = self.state.reminder_due_at()
            && due <= now
            && self.state.maintenance_until(now).is_none()
        {
            let reason = self.state.last_down_reason.unwrap_or(DownReason::Timeout);
            self.push(now, Event::Reminder { reason });
        }
        for (at, instance) in self.state.instances_to_forget(now) {
            self.push(at, Event::InstanceForgotten { instance });
        }
    }
}

impl Decision<'_> {
    /// A monitor holding a verdict (`unknown`), looked at: once the grace its release
    /// gave is over, the verdict stands and it goes down (alerting then), stamped at
    /// the grace's end; held again instead if the guard has tripped again meanwhile.
    fn judge_held(&mut self, now: Timestamp, hold: bool) {
        let Some(grace) = self.state.grace else {
            return;
        };
        if grace.until > now {
            return;
        }
        let reason = self.state.missed_reason();
        if hold {
            self.push(
                grace.until,
                Event::VerdictHeld {
                    reason,
                    deadline: grace.until,
                },
            );
        } else {
            self.alert(grace.until, Event::WentDown { reason });
        }
    }
}

/// The alert a change of state owes, as a hold records it.
fn notice_of(event: &Event) -> Notice {
    match event {
        Event::WentDown { reason } => Notice::Down(*reason),
        _ => Notice::Up,
    }
}

/// Decides what `command` causes, at `now`, for a monitor whose parents are not
/// known to be down. Events come out stamped and in order; an empty list means the
/// command changes nothing (pausing a paused monitor, say).
pub fn decide(monitor: &Monitor, command: Command, now: Timestamp) -> Vec<Stamped> {
    decide_with(monitor, command, now, &Parents::default())
}

/// [`decide`], knowing the parents' states (`docs/states.md`, "Dependencies").
pub fn decide_with(
    monitor: &Monitor,
    command: Command,
    now: Timestamp,
    parents: &Parents,
) -> Vec<Stamped> {
    // Events of one monitor never go back in time, even if the wall clock does.
    let now = now.max(monitor.last_event_at);
    let stamp = |event| Stamped { at: now, event };
    match command {
        // The push path: an `up` heartbeat to an `up` monitor records only itself,
        // without copying the state.
        Command::Heartbeat(heartbeat)
            if heartbeat.status == PushStatus::Up
                && monitor.status == Status::Up
                && monitor.release_due().is_none()
                && monitor.held_release_at(parents).is_none()
                && monitor.mute_expired_at(now).is_none()
                && !(monitor.is_fleet()
                    && fold::instance_of(&heartbeat)
                        .is_some_and(|instance| monitor.evicted_by(&instance).is_some())) =>
        {
            vec![stamp(Event::HeartbeatReceived(heartbeat))]
        }
        Command::Heartbeat(heartbeat) => decided(monitor, parents, |decision| {
            decision.ping(Ping::Heartbeat(heartbeat), now)
        }),
        Command::Signal(signal) => decided(monitor, parents, |decision| {
            decision.ping(Ping::Signal(signal), now)
        }),
        Command::CheckDeadline { hold } => decided(monitor, parents, |decision| {
            decision.check_deadlines(now, hold)
        }),
        Command::ReleaseHeld { grace_seconds }
            if monitor.status == Status::Unknown && monitor.grace.is_none() =>
        {
            vec![stamp(Event::GraceGranted {
                deadline: monitor.last_status_change_at.unwrap_or(now),
                until: now.plus_seconds(grace_seconds),
            })]
        }
        Command::ReleaseHeld { .. } => vec![],
        Command::Update(patch) => {
            let config = patch.applied_to(&monitor.config);
            if config == *monitor.config {
                vec![]
            } else {
                vec![stamp(Event::Updated {
                    config: Box::new(config),
                })]
            }
        }
        Command::ForgetChannel(channel) if monitor.config.channels.contains(&channel) => {
            let mut config = Box::new((*monitor.config).clone());
            config.channels.retain(|listed| *listed != channel);
            vec![stamp(Event::Updated { config })]
        }
        Command::ForgetChannel(_) => vec![],
        Command::RotateToken(token) => vec![stamp(Event::TokenRotated { token })],
        Command::Pause if monitor.status == Status::Paused => vec![],
        Command::Pause => vec![stamp(Event::Paused)],
        Command::Resume if monitor.status == Status::Paused => vec![stamp(Event::Resumed)],
        Command::Resume => vec![],
        Command::Mute {
            until,
            until_recovery,
        } => vec![stamp(Event::Muted {
            until,
            until_recovery,
        })],
        Command::Unmute if monitor.mute.is_some() => vec![stamp(Event::Unmuted {
            reason: UnmuteReason::Manual,
        })],
        Command::Unmute => vec![],
        Command::Delete => vec![stamp(Event::Deleted)],
        Command::RecordDelivery(outcome) => vec![stamp(Event::DeliveryRecorded(outcome))],
        Command::JudgeAfterRestart {
            last_alive,
            restart_grace_seconds,
        } => judge_after_restart(monitor, last_alive, restart_grace_seconds, now, parents),
    }
}

fn decided(
    monitor: &Monitor,
    parents: &Parents,
    decide: impl FnOnce(&mut Decision),
) -> Vec<Stamped> {
    let mut decision = Decision::new(monitor, parents);
    decide(&mut decision);
    decision.events
}

/// Deadlines that fell while the server was stopped get a grace from now, once:
/// `min(timeout, restart grace)` (the restart grace for a cron monitor). One that
/// fell before the stop (or whose grace was already spent) is judged at once
/// (`docs/states.md`, "After a restart of the server").
fn judge_after_restart(
    monitor: &Monitor,
    last_alive: Option<Timestamp>,
    restart_grace_seconds: u32,
    now: Timestamp,
    parents: &Parents,
) -> Vec<Stamped> {
    if monitor.status == Status::Unknown {
        // Held when the server stopped: the guard starts afresh, so the verdict is
        // released with the restart grace (once: a grace granted before the stop is
        // kept), or judged at once without one.
        if monitor.grace.is_some() || restart_grace_seconds == 0 {
            let mut decision = Decision::new(monitor, parents);
            if decision.state.grace.is_none() {
                let reason = decision.state.missed_reason();
                decision.alert(now, Event::WentDown { reason });
            } else {
                decision.check_deadlines(now, false);
            }
            return decision.events;
        }
        let grace_seconds = match monitor.config.schedule {
            Some(_) => restart_grace_seconds,
            None => restart_grace_seconds.min(monitor.config.timeout_seconds),
        };
        return vec![Stamped {
            at: now,
            event: Event::GraceGranted {
                deadline: monitor.last_status_change_at.unwrap_or(now),
                until: now.plus_seconds(grace_seconds),
            },
        }];
    }
    let fallen = monitor.fallen_deadlines(now);
    let (Some(earliest), Some(latest)) = (fallen.first(), fallen.last()) else {
        return decide_with(
            monitor,
            Command::CheckDeadline { hold: false },
            now,
            parents,
        );
    };
    let fell_while_stopped = last_alive.is_some_and(|alive| *earliest > alive);
    let already_granted = monitor.grace.is_some_and(|grace| grace.deadline >= *latest);
    if fell_while_stopped && !already_granted && restart_grace_seconds > 0 {
        let grace_seconds = match monitor.config.schedule {
            Some(_) => restart_grace_seconds,
            None => restart_grace_seconds.min(monitor.config.timeout_seconds),
        };
        return vec![Stamped {
            at: now,
            event: Event::GraceGranted {
                deadline: *latest,
                until: now.plus_seconds(grace_seconds),
            },
        }];
    }
    decide_with(
        monitor,
        Command::CheckDeadline { hold: false },
        now,
        parents,
    )
}
