//! The one source of time: a [`Clock`] value, handed to whatever stamps events, judges
//! deadlines or makes ids (the monitor actors and registry, the channel set, the API
//! handlers, the lifecycle in `app`). [`Clock::System`] is the only reader of the wall
//! clock; clippy forbids `SystemTime::now` and `Uuid::now_v7` everywhere else.
//!
//! Deadline timers run on tokio's monotonic clock. [`Clock::Tokio`] moves with that
//! same clock, so a test that pauses tokio time (`tokio::time::pause`, `advance`) moves
//! the monitors' `now` and their timers together, from any start date.
//!
//! Production reads the wall clock afresh on every call, so every timestamp is real
//! time, as an operator's other systems see it. A wall-clock jump therefore shows at
//! once in new timestamps, while armed timers keep their monotonic delays: a timer
//! that fires re-checks its deadline against the wall clock, so after a jump back the
//! deadline is simply not due yet and the timer is re-armed, and after a jump forward
//! a deadline that fell in the skipped span is judged when its timer fires, still
//! stamped at the deadline. A production clock anchored once and advanced by the
//! monotonic clock would not see jumps at all, but it would drift from real time
//! (NTP slewing, a suspended machine), and stamped times must be real.
//!
//! Measuring how long something took (request latency, commit time) uses
//! `std::time::Instant`, which never becomes a timestamp and should keep measuring real
//! durations even in a test that pauses tokio time.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::domain::ids::Timestamp;

/// Where `now` comes from.
#[derive(Clone, Copy, Debug)]
pub enum Clock {
    /// The wall clock, read on every call: the server's clock.
    System,
    /// `start` plus the tokio time elapsed since `anchor`: a clock for tests, which
    /// stands still while tokio time is paused and moves exactly as far as `advance`.
    Tokio {
        start: Timestamp,
        anchor: tokio::time::Instant,
    },
}

impl Clock {
    /// The wall clock.
    pub fn system() -> Self {
        Self::System
    }

    /// A clock that reads `start` now and moves with tokio time from here on. Call it
    /// inside the runtime whose time it follows (under `start_paused`, its paused
    /// clock).
    pub fn tokio_from(start: Timestamp) -> Self {
        Self::Tokio {
            start,
            anchor: tokio::time::Instant::now(),
        }
    }

    /// Now, as the domain counts time.
    pub fn now(&self) -> Timestamp {
        match self {
            Self::System => wall_clock(),
            Self::Tokio { start, anchor } => {
                let elapsed = anchor.elapsed().as_millis();
                Timestamp::from_millis(
                    start
                        .as_millis()
                        .saturating_add(i64::try_from(elapsed).unwrap_or(i64::MAX)),
                )
            }
        }
    }
}

/// The wall clock in milliseconds since the epoch. A clock before 1970 reads as the
/// epoch.
#[allow(clippy::disallowed_methods)] // This is the one sanctioned reader of the clock.
fn wall_clock() -> Timestamp {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|since| i64::try_from(since.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    Timestamp::from_millis(millis)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_tokio_clock_moves_only_with_tokio_time() {
        let start = Timestamp::from_millis(1_795_000_000_000);
        let clock = Clock::tokio_from(start);
        assert_eq!(clock.now(), start);
        tokio::time::advance(Duration::from_millis(1500)).await;
        assert_eq!(clock.now(), Timestamp::from_millis(1_795_000_001_500));
    }

    #[test]
    fn the_system_clock_reads_the_wall_clock() {
        // After 2020-01-01: not the epoch fallback, and not a fixed value.
        assert!(Clock::system().now() > Timestamp::from_millis(1_577_836_800_000));
    }
}
