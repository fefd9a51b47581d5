//! What the monitors' actors, the API and the guard's task (`guard.rs`) share: the
//! arrivals counter (one relaxed atomic add per push or ping that reaches a monitor,
//! the only cost on the push path), the prediction each monitor made at its last
//! change of state or configuration (never on a plain heartbeat), the monitors that
//! hold a verdict, and the flag a falling deadline reads
//! (`Command::CheckDeadline { hold }`).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::config::GuardConfig;
use crate::domain::guard::{GuardState, Rates, expected_micros};
use crate::domain::ids::{MonitorId, Timestamp};
use crate::domain::machine::{Monitor, Status};
use crate::prometheus;

/// What the monitors' actors and the API share with the guard.
pub struct GuardShared {
    /// `--guard on`: arrivals are counted.
    enabled: bool,
    release_grace_seconds: u32,
    window_millis: u64,
    holding: AtomicBool,
    arrivals: AtomicU64,
    held_total: AtomicU64,
    ledger: Mutex<Ledger>,
    view: Mutex<GuardView>,
}

/// Each monitor's prediction and which monitors hold a verdict.
#[derive(Default)]
struct Ledger {
    expected: HashMap<MonitorId, u64>,
    expected_sum: u64,
    held: HashSet<MonitorId>,
}

/// The guard as `GET /api/guard` shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct GuardView {
    /// `None` while the guard is off.
    pub state: Option<GuardState>,
    pub since: Timestamp,
    pub rates: Rates,
    /// Monitors `unknown` now.
    pub held: usize,
    /// Verdicts held since start-up.
    pub held_total: u64,
    pub window_seconds: f64,
    pub min_ratio: f64,
    pub min_expected: f64,
    pub release_grace_seconds: u32,
}

impl GuardShared {
    pub fn new(config: &GuardConfig, now: Timestamp) -> Arc<Self> {
        Arc::new(Self {
            enabled: config.enabled,
            release_grace_seconds: config.release_grace_seconds,
            window_millis: config.settings.window_millis,
            holding: AtomicBool::new(false),
            arrivals: AtomicU64::new(0),
            held_total: AtomicU64::new(0),
            ledger: Mutex::default(),
            view: Mutex::new(GuardView {
                state: config.enabled.then_some(GuardState::Warming),
                since: now,
                rates: Rates {
                    observed_per_second: 0.0,
                    expected_per_second: 0.0,
                },
                held: 0,
                held_total: 0,
                window_seconds: config.settings.window_millis as f64 / 1000.0,
                min_ratio: config.settings.min_ratio,
                min_expected: config.settings.min_expected,
                release_grace_seconds: config.release_grace_seconds,
            }),
        })
    }

    /// A guard that is off (tests of other things).
    pub fn off() -> Arc<Self> {
        Self::new(&GuardConfig::off(), Timestamp::from_millis(0))
    }

    /// A push or ping reached a monitor (counted only while the guard is on, so
    /// `--guard off` costs the push path nothing).
    #[inline]
    pub fn arrived(&self) {
        if self.enabled {
            self.arrivals.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The arrivals counted since start-up.
    pub fn arrivals(&self) -> u64 {
        self.arrivals.load(Ordering::Relaxed)
    }

    /// Seconds a held monitor has to report once released.
    pub fn release_grace_seconds(&self) -> u32 {
        self.release_grace_seconds
    }

    pub(super) fn set_holding(&self, holding: bool) {
        self.holding.store(holding, Ordering::SeqCst);
    }

    /// Whether missed deadlines are held now.
    pub fn holding(&self) -> bool {
        self.holding.load(Ordering::SeqCst)
    }

    /// Takes note of `monitor`'s state after a change (or at its actor's start):
    /// its prediction, and whether it holds a verdict. Returns true if it holds one
    /// while the guard no longer does: a release it must give itself, because the
    /// guard released before it was held (its deadline was judged on the flag read
    /// just before).
    pub fn account(&self, monitor: &Monitor) -> bool {
        let expected = expected_micros(monitor, self.window_millis);
        let unknown = monitor.status == Status::Unknown;
        {
            let mut ledger = self.ledger.lock().unwrap_or_else(PoisonError::into_inner);
            let before = ledger.expected.insert(monitor.id, expected).unwrap_or(0);
            ledger.expected_sum = ledger.expected_sum - before + expected;
            if unknown {
                ledger.held.insert(monitor.id);
            } else {
                ledger.held.remove(&monitor.id);
            }
        }
        unknown && monitor.grace.is_none() && !self.holding()
    }

    /// `count` verdicts were just held.
    pub fn held(&self, count: usize) {
        self.held_total.fetch_add(count as u64, Ordering::Relaxed);
        metrics::counter!(prometheus::GUARD_HELD_VERDICTS_TOTAL).increment(count as u64);
    }

    /// Monitor `id` is deleted.
    pub fn forget(&self, id: MonitorId) {
        let mut ledger = self.ledger.lock().unwrap_or_else(PoisonError::into_inner);
        let before = ledger.expected.remove(&id).unwrap_or(0);
        ledger.expected_sum -= before;
        ledger.held.remove(&id);
    }

    /// What the running monitors predict, in millionths of an arrival per second.
    pub fn expected_micros(&self) -> u64 {
        self.ledger
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .expected_sum
    }

    pub(super) fn held_monitors(&self) -> Vec<MonitorId> {
        self.ledger
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .held
            .iter()
            .copied()
            .collect()
    }

    pub fn view(&self) -> GuardView {
        let mut view = self
            .view
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        view.held = self
            .ledger
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .held
            .len();
        view.held_total = self.held_total.load(Ordering::Relaxed);
        view
    }

    pub(super) fn show(&self, guard: &crate::domain::guard::Guard) {
        let mut view = self.view.lock().unwrap_or_else(PoisonError::into_inner);
        view.state = Some(guard.state());
        view.since = guard.since();
        view.rates = guard.rates();
    }
}
