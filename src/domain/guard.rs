//! The guard against false alarm storms (`docs/states.md`, "The guard"), pure: how
//! many heartbeats the running monitors predict, and whether the arrivals seen over
//! a window have collapsed far below that (an outage between the jobs and pushmon
//! rather than every job failing at once).
//!
//! [`Guard::tick`] is fed, every tenth of a window, the total of arrivals counted so
//! far and the expected rate; it answers with a [`Transition`] when the guard trips
//! or releases. While it is tripped, missed deadlines are held (`Event::VerdictHeld`)
//! instead of alerted; that part is the monitors' (`machine::decide`). No clock, no
//! I/O: the shell (`monitor/guard.rs`) brings the time and the counters.

use std::collections::VecDeque;

use super::ids::Timestamp;
use super::machine::{Monitor, Status};

/// How many ticks make a window: the guard looks again every tenth of it.
pub const TICKS_PER_WINDOW: u32 = 10;

/// The guard's thresholds (`--guard-*`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GuardSettings {
    /// The window arrivals are counted over, in milliseconds (at least 1000).
    pub window_millis: u64,
    /// The guard trips when the arrivals over a window fall below this share of what
    /// the monitors predict (0 < ratio < 1).
    pub min_ratio: f64,
    /// It judges only while the monitors predict at least this many arrivals per
    /// window: a handful of monitors says nothing about the network.
    pub min_expected: f64,
}

impl Default for GuardSettings {
    fn default() -> Self {
        Self {
            window_millis: 60_000,
            min_ratio: 0.1,
            min_expected: 30.0,
        }
    }
}

impl GuardSettings {
    /// The share of the prediction arrivals must be back to for the guard to release:
    /// above the trip threshold, so a rate hovering at it does not trip and release in
    /// turn. Twice the trip ratio, and at most halfway from it to the whole prediction.
    pub fn release_ratio(&self) -> f64 {
        (2.0 * self.min_ratio).min((1.0 + self.min_ratio) / 2.0)
    }

    /// How long one tick lasts, in milliseconds.
    pub fn tick_millis(&self) -> u64 {
        (self.window_millis / u64::from(TICKS_PER_WINDOW)).max(1)
    }

    fn window_seconds(&self) -> f64 {
        self.window_millis as f64 / 1000.0
    }
}

/// What the guard is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuardState {
    /// Since start-up it has not seen a whole window yet: it judges nothing.
    Warming,
    /// Missed deadlines are judged as usual.
    Normal,
    /// Arrivals collapsed: missed deadlines are held as `unknown`.
    Tripped,
}

impl GuardState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Warming => "warming",
            Self::Normal => "normal",
            Self::Tripped => "tripped",
        }
    }
}

/// Arrivals over the last window against the monitors' prediction, per second.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rates {
    pub observed_per_second: f64,
    pub expected_per_second: f64,
}

/// A change of the guard's state.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Transition {
    /// Arrivals collapsed: hold missed deadlines from now on, and say so once.
    Tripped(Rates),
    /// Arrivals are back (or the prediction too small to judge): release what is
    /// held, and say so.
    Released(Rates),
}

/// The guard's state machine.
#[derive(Clone, Debug)]
pub struct Guard {
    settings: GuardSettings,
    state: GuardState,
    since: Timestamp,
    /// Arrivals in each of the last ticks, newest last, at most a window of them.
    ticks: VecDeque<u64>,
    /// The arrivals counter at the last tick.
    last_total: u64,
    rates: Rates,
}

impl Guard {
    /// A guard that starts warming at `now`, the arrivals counter reading `total`.
    pub fn new(settings: GuardSettings, now: Timestamp, total: u64) -> Self {
        Self {
            settings,
            state: GuardState::Warming,
            since: now,
            ticks: VecDeque::with_capacity(TICKS_PER_WINDOW as usize),
            last_total: total,
            rates: Rates {
                observed_per_second: 0.0,
                expected_per_second: 0.0,
            },
        }
    }

    pub fn state(&self) -> GuardState {
        self.state
    }

    /// Since when it is in its state.
    pub fn since(&self) -> Timestamp {
        self.since
    }

    /// The rates of the last tick (observed over the ticks seen, up to a window).
    pub fn rates(&self) -> Rates {
        self.rates
    }

    pub fn settings(&self) -> &GuardSettings {
        &self.settings
    }

    /// One tick at `now`: the arrivals counter reads `total` (it only grows), and the
    /// running monitors predict `expected_micros` millionths of an arrival per second.
    pub fn tick(&mut self, now: Timestamp, total: u64, expected_micros: u64) -> Option<Transition> {
        let arrived = total.saturating_sub(self.last_total);
        self.last_total = total;
        if self.ticks.len() == TICKS_PER_WINDOW as usize {
            self.ticks.pop_front();
        }
        self.ticks.push_back(arrived);
        let observed: u64 = self.ticks.iter().sum();
        let seconds_seen =
            self.settings.window_seconds() * self.ticks.len() as f64 / f64::from(TICKS_PER_WINDOW);
        let expected_per_second = expected_micros as f64 / 1_000_000.0;
        self.rates = Rates {
            observed_per_second: observed as f64 / seconds_seen,
            expected_per_second,
        };
        let expected = expected_per_second * self.settings.window_seconds();
        let meaningful = expected >= self.settings.min_expected;
        let observed = observed as f64;
        let collapsed = meaningful && observed < self.settings.min_ratio * expected;
        match self.state {
            GuardState::Warming if self.ticks.len() < TICKS_PER_WINDOW as usize => None,
            // A whole window seen: judged at once, so an outage that goes on across a
            // restart trips it without a moment of `normal` first.
            GuardState::Warming if !collapsed => {
                self.enter(GuardState::Normal, now);
                None
            }
            GuardState::Warming | GuardState::Normal if collapsed => {
                self.enter(GuardState::Tripped, now);
                Some(Transition::Tripped(self.rates))
            }
            GuardState::Tripped
                if !meaningful || observed >= self.settings.release_ratio() * expected =>
            {
                self.enter(GuardState::Normal, now);
                Some(Transition::Released(self.rates))
            }
            GuardState::Warming | GuardState::Normal | GuardState::Tripped => None,
        }
    }

    fn enter(&mut self, state: GuardState, now: Timestamp) {
        self.state = state;
        self.since = now;
    }
}

/// How many arrivals per second a monitor predicts, in millionths: one per
/// `interval_seconds`, or one per slot of its schedule, while it is `up` (or held
/// `unknown`, which it was just before) and reports at least once per window of
/// `window_millis`. A monitor not heard from yet, down or paused predicts nothing:
/// its silence is no news about the network. Nor does one that reports less often
/// than once a window: jobs started together (every 5 minutes, on the minute) would
/// leave whole windows empty without anything being wrong.
pub fn expected_micros(monitor: &Monitor, window_millis: u64) -> u64 {
    if !matches!(monitor.status, Status::Up | Status::Unknown) {
        return 0;
    }
    let period_millis = match &monitor.config.schedule {
        None => u64::from(monitor.config.interval_seconds) * 1000,
        Some(schedule) => {
            let Some(next) = schedule.next_after(monitor.clock_started_at) else {
                return 0;
            };
            let Some(after) = schedule.next_after(next) else {
                return 0;
            };
            next.millis_until(after)
        }
    };
    if period_millis == 0 || period_millis > window_millis {
        return 0;
    }
    1_000_000_000 / period_millis
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Timestamp = Timestamp::from_millis(1_700_000_000_000);

    fn settings() -> GuardSettings {
        GuardSettings {
            window_millis: 10_000,
            min_ratio: 0.1,
            min_expected: 30.0,
        }
    }

    /// Ticks once a second (a tenth of the 10 s window) with `per_tick` arrivals and
    /// 10 expected per second; returns the transitions seen.
    fn run(
        guard: &mut Guard,
        total: &mut u64,
        clock: &mut i64,
        per_tick: &[u64],
    ) -> Vec<Transition> {
        let mut seen = Vec::new();
        for arrivals in per_tick {
            *total += arrivals;
            *clock += 1000;
            if let Some(transition) = guard.tick(Timestamp::from_millis(*clock), *total, 10_000_000)
            {
                seen.push(transition);
            }
        }
        seen
    }

    #[test]
    fn it_warms_for_a_window_then_trips_on_a_collapse_and_releases_when_arrivals_are_back() {
        let mut guard = Guard::new(settings(), T0, 0);
        let (mut total, mut clock) = (0, T0.as_millis());
        // Silence while warming judges nothing until a whole window is seen.
        assert!(run(&mut guard, &mut total, &mut clock, &[0; 9]).is_empty());
        assert_eq!(guard.state(), GuardState::Warming);
        assert!(run(&mut guard, &mut total, &mut clock, &[100]).is_empty());
        assert_eq!(guard.state(), GuardState::Normal);
        assert!(run(&mut guard, &mut total, &mut clock, &[10; 20]).is_empty());
        // Cut: the window drains; below 10% of 100 (fewer than 10) it trips, once
        // the last full tick has left it.
        assert!(run(&mut guard, &mut total, &mut clock, &[0; 9]).is_empty());
        let seen = run(&mut guard, &mut total, &mut clock, &[0]);
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert!(matches!(seen[0], Transition::Tripped(rates) if rates.observed_per_second < 1.0));
        assert_eq!(guard.state(), GuardState::Tripped);
        // Still silent: nothing more.
        assert!(run(&mut guard, &mut total, &mut clock, &[0; 30]).is_empty());
        // A trickle at the trip ratio does not release (hysteresis: 20% needed).
        assert!(run(&mut guard, &mut total, &mut clock, &[1; 20]).is_empty());
        // Arrivals back: two seconds of full rate make 20 of 100 expected.
        let seen = run(&mut guard, &mut total, &mut clock, &[10, 10]);
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert!(matches!(seen[0], Transition::Released(_)));
        assert_eq!(guard.state(), GuardState::Normal);
        assert_eq!(guard.since(), Timestamp::from_millis(clock));
    }

    #[test]
    fn a_few_monitors_or_one_dead_among_three_never_trip_it() {
        // Three monitors every 60 s predict 0.05/s, 0.5 a window: too few to judge.
        let mut guard = Guard::new(settings(), T0, 0);
        let mut total = 0;
        for second in 1..200 {
            // One of the three died; the two others report now and then.
            if second % 30 == 0 {
                total += 1;
            }
            let now = Timestamp::from_millis(T0.as_millis() + second * 1000);
            assert_eq!(guard.tick(now, total, 50_000), None);
        }
        // Enough monitors, a third of them dead: a ratio of 2/3 is no collapse.
        let mut guard = Guard::new(settings(), T0, 0);
        let (mut total, mut clock) = (0, T0.as_millis());
        assert!(run(&mut guard, &mut total, &mut clock, &[10; 10]).is_empty());
        assert!(run(&mut guard, &mut total, &mut clock, &[7; 100]).is_empty());
        assert_eq!(guard.state(), GuardState::Normal);
    }

    #[test]
    fn an_outage_that_outlasts_a_restart_trips_it_when_warming_ends() {
        let mut guard = Guard::new(settings(), T0, 0);
        let (mut total, mut clock) = (0, T0.as_millis());
        assert!(run(&mut guard, &mut total, &mut clock, &[0; 9]).is_empty());
        let seen = run(&mut guard, &mut total, &mut clock, &[0]);
        assert!(matches!(seen[..], [Transition::Tripped(_)]), "{seen:?}");
        assert_eq!(guard.state(), GuardState::Tripped);
    }

    #[test]
    fn a_prediction_that_falls_too_low_while_tripped_releases() {
        let mut guard = Guard::new(settings(), T0, 0);
        let (mut total, mut clock) = (0, T0.as_millis());
        run(&mut guard, &mut total, &mut clock, &[10; 10]);
        run(&mut guard, &mut total, &mut clock, &[0; 10]);
        assert_eq!(guard.state(), GuardState::Tripped);
        // Every monitor paused: nothing is predicted, nothing to hold for.
        let released = guard.tick(Timestamp::from_millis(clock + 1000), total, 0);
        assert!(matches!(released, Some(Transition::Released(_))));
    }

    #[test]
    fn release_ratio_sits_between_the_trip_ratio_and_the_whole() {
        let mut settings = settings();
        assert!((settings.release_ratio() - 0.2).abs() < 1e-9);
        settings.min_ratio = 0.6;
        assert!((settings.release_ratio() - 0.8).abs() < 1e-9);
    }
}
