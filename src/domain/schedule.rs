//! Cron schedules, time zones and maintenance windows (`docs/states.md`, "Schedules"
//! and "Maintenance windows"): when a cron monitor is due, and whether a moment is
//! inside a maintenance window.
//!
//! Pure computation over `croner` (cron patterns) and `chrono-tz` (the IANA zone
//! database, compiled in): no clock, no I/O. Every moment comes in and goes out as a
//! [`Timestamp`]; local times are only used inside, so daylight saving time is
//! croner's: a slot in a skipped hour falls at the first instant after the gap, and
//! a slot in a repeated hour falls once, at its first instance.
//!
//! These types are stored (in `MonitorConfig`) with bincode by `store::codec`: never
//! reorder variants or fields.

use std::str::FromStr as _;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use serde::{Deserialize, Serialize};

use super::ids::Timestamp;

/// The time zone of a schedule given without one.
pub const DEFAULT_TIMEZONE: &str = "UTC";

/// How long after its slot a cron job may report before it is late, by default
/// (Healthchecks' default too).
pub const DEFAULT_GRACE_SECONDS: u32 = 3600;

/// The longest cron pattern accepted, in bytes.
pub const MAX_CRON_BYTES: usize = 200;

/// Maintenance windows one monitor may have.
pub const MAX_MAINTENANCE_WINDOWS: usize = 16;

/// A cron monitor's schedule: a 5-field pattern (or `@daily` and the like), read in
/// `timezone`; the job is due at each slot and late `grace_seconds` after it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CronSchedule {
    pub expression: String,
    /// An IANA zone name, e.g. `Europe/Paris`.
    pub timezone: String,
    pub grace_seconds: u32,
}

/// When a monitor's alerts are held back: once, or at every slot of a cron pattern
/// for `duration_seconds`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MaintenanceWindow {
    /// From `start` (included) to `end` (excluded).
    Once { start: Timestamp, end: Timestamp },
    Recurring {
        cron: String,
        timezone: String,
        duration_seconds: u32,
    },
}

/// Why a pattern or a zone is refused; reads after the field's name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScheduleError {
    Pattern(String),
    NeverFires,
    Timezone(String),
}

impl std::fmt::Display for ScheduleError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Pattern(why) => write!(
                formatter,
                "must be a cron pattern of 5 fields (minute hour day-of-month month \
                 day-of-week) or one of @yearly, @monthly, @weekly, @daily, @hourly: {why}"
            ),
            Self::NeverFires => {
                formatter.write_str("must fire at least once a year (this pattern never does)")
            }
            Self::Timezone(name) => write!(
                formatter,
                "must be an IANA time zone name such as UTC or Europe/Paris, not {name:?}"
            ),
        }
    }
}

/// Parses a 5-field pattern (no seconds, no years) or an `@daily`-style name.
pub fn parse_cron(expression: &str) -> Result<Cron, ScheduleError> {
    if expression.len() > MAX_CRON_BYTES {
        return Err(ScheduleError::Pattern(format!(
            "at most {MAX_CRON_BYTES} bytes"
        )));
    }
    CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build()
        .parse(expression)
        .map_err(|error| ScheduleError::Pattern(error.to_string()))
}

/// Parses an IANA zone name.
pub fn parse_timezone(name: &str) -> Result<Tz, ScheduleError> {
    Tz::from_str(name).map_err(|_| ScheduleError::Timezone(name.chars().take(64).collect()))
}

/// Checks a pattern and a zone as a schedule or a recurring window needs them: both
/// parse, and the pattern fires within a year of `now`.
pub fn check_cron(expression: &str, timezone: &str, now: Timestamp) -> Result<(), CronError> {
    let cron = parse_cron(expression).map_err(CronError::Expression)?;
    let zone = parse_timezone(timezone).map_err(CronError::Timezone)?;
    match next_slot(&cron, zone, now) {
        Some(next) if next.as_millis() - now.as_millis() <= 366 * 24 * 3600 * 1000 => Ok(()),
        _ => Err(CronError::Expression(ScheduleError::NeverFires)),
    }
}

/// Which half of a schedule is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CronError {
    Expression(ScheduleError),
    Timezone(ScheduleError),
}

fn to_zoned(at: Timestamp, zone: Tz) -> Option<DateTime<Tz>> {
    DateTime::<Utc>::from_timestamp_millis(at.as_millis()).map(|utc| utc.with_timezone(&zone))
}

/// The first slot strictly after `after`.
fn next_slot(cron: &Cron, zone: Tz, after: Timestamp) -> Option<Timestamp> {
    let origin = to_zoned(after, zone)?;
    let next = cron.find_next_occurrence(&origin, false).ok()?;
    Some(Timestamp::from_millis(next.timestamp_millis()))
}

/// The last slot at or before `at`.
fn previous_slot(cron: &Cron, zone: Tz, at: Timestamp) -> Option<Timestamp> {
    let origin = to_zoned(at, zone)?;
    let previous = cron.find_previous_occurrence(&origin, true).ok()?;
    Some(Timestamp::from_millis(previous.timestamp_millis()))
}

impl CronSchedule {
    /// The first slot strictly after `after`: when the job is next due. `None` only for
    /// a pattern or zone that no longer parses (both are checked when set).
    pub fn next_after(&self, after: Timestamp) -> Option<Timestamp> {
        let cron = parse_cron(&self.expression).ok()?;
        let zone = parse_timezone(&self.timezone).ok()?;
        next_slot(&cron, zone, after)
    }
}

impl MaintenanceWindow {
    /// If `at` is inside this window, when the window ends.
    pub fn end_if_covering(&self, at: Timestamp) -> Option<Timestamp> {
        match self {
            Self::Once { start, end } => (*start <= at && at < *end).then_some(*end),
            Self::Recurring {
                cron,
                timezone,
                duration_seconds,
            } => {
                let cron = parse_cron(cron).ok()?;
                let zone = parse_timezone(timezone).ok()?;
                // The latest slot at or before `at` ends last of those covering it.
                let end = previous_slot(&cron, zone, at)?.plus_seconds(*duration_seconds);
                (at < end).then_some(end)
            }
        }
    }
}

/// If `at` is inside maintenance, when it ends: the end of the window covering it,
/// or of a window covering that end, and so on (overlapping windows are one).
pub fn maintenance_until(windows: &[MaintenanceWindow], at: Timestamp) -> Option<Timestamp> {
    let mut until = windows
        .iter()
        .filter_map(|window| window.end_if_covering(at))
        .max()?;
    // Each round moves `until` later or stops; a window can extend it once per slot,
    // so a bound keeps a pathological set of windows from looping long.
    for _ in 0..64 {
        match windows
            .iter()
            .filter_map(|window| window.end_if_covering(until))
            .max()
        {
            Some(later) if later > until => until = later,
            _ => break,
        }
    }
    Some(until)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone as _;

    fn utc(text: &str) -> Timestamp {
        let moment = DateTime::parse_from_rfc3339(text).expect("an RFC 3339 time");
        Timestamp::from_millis(moment.timestamp_millis())
    }

    fn schedule(expression: &str, timezone: &str) -> CronSchedule {
        CronSchedule {
            expression: expression.to_owned(),
            timezone: timezone.to_owned(),
            grace_seconds: 60,
        }
    }

    #[test]
    fn patterns_and_names_parse_and_seconds_do_not() {
        for good in [
            "30 2 * * *",
            "*/15 * * * 1-5",
            "@daily",
            "@hourly",
            "0 0 1 JAN *",
        ] {
            assert!(parse_cron(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "* * * *",
            "0 30 2 * * *",
            "61 * * * *",
            "hello",
            "@reboot",
        ] {
            assert!(parse_cron(bad).is_err(), "{bad}");
        }
        assert!(parse_timezone("Europe/Paris").is_ok());
        assert!(parse_timezone("Mars/Olympus").is_err());
        let now = utc("2026-03-01T00:00:00Z");
        assert_eq!(
            check_cron("0 0 30 2 *", "UTC", now),
            Err(CronError::Expression(ScheduleError::NeverFires))
        );
        assert!(check_cron("0 0 29 2 *", "UTC", utc("2027-03-01T00:00:00Z")).is_ok());
    }

    #[test]
    fn the_next_slot_is_strictly_after() {
        let daily = schedule("30 2 * * *", "UTC");
        assert_eq!(
            daily.next_after(utc("2026-05-01T02:29:59.999Z")),
            Some(utc("2026-05-01T02:30:00Z"))
        );
        assert_eq!(
            daily.next_after(utc("2026-05-01T02:30:00Z")),
            Some(utc("2026-05-02T02:30:00Z"))
        );
        assert_eq!(
            daily.next_after(utc("2026-05-01T02:30:00.400Z")),
            Some(utc("2026-05-02T02:30:00Z"))
        );
        let paris = schedule("30 2 * * *", "Europe/Paris");
        assert_eq!(
            paris.next_after(utc("2026-05-01T00:40:00Z")),
            Some(utc("2026-05-02T00:30:00Z")),
            "02:30 CEST is 00:30 UTC, past on 1 May at 00:40 UTC"
        );
    }

    /// America/New_York skips 02:00–03:00 on 2026-03-08: a 02:30 job falls at 03:00
    /// EDT that day (07:00 UTC), as cron daemons run it, and at 02:30 again the next.
    #[test]
    fn a_slot_in_the_skipped_hour_falls_right_after_the_gap() {
        let job = schedule("30 2 * * *", "America/New_York");
        let before = utc("2026-03-08T05:00:00Z"); // 00:00 EST
        let due = job.next_after(before).expect("a slot");
        assert_eq!(due, utc("2026-03-08T07:00:00Z"));
        let zone = parse_timezone("America/New_York").expect("zone");
        let local = to_zoned(due, zone).expect("in range");
        assert_eq!(local.format("%H:%M %Z").to_string(), "03:00 EDT");
        assert_eq!(job.next_after(due), Some(utc("2026-03-09T06:30:00Z")));
    }

    /// America/New_York repeats 01:00–02:00 on 2026-11-01: a 01:30 job is due once,
    /// at the first 01:30 (EDT, 05:30 UTC); after it reports, it is next due the day
    /// after, not at the second 01:30 (EST) an hour later.
    #[test]
    fn a_slot_in_the_repeated_hour_is_due_once() {
        let job = schedule("30 1 * * *", "America/New_York");
        let first = job.next_after(utc("2026-11-01T04:00:00Z")).expect("a slot");
        assert_eq!(first, utc("2026-11-01T05:30:00Z"));
        let reported = utc("2026-11-01T05:31:00Z"); // 01:31 EDT
        assert_eq!(job.next_after(reported), Some(utc("2026-11-02T06:30:00Z")));
        // Reported during the second 01:00–02:00 (EST) too: still the next day.
        assert_eq!(
            job.next_after(utc("2026-11-01T06:10:00Z")),
            Some(utc("2026-11-02T06:30:00Z"))
        );
        // Every-30-minutes runs at both instances of the repeated times.
        let half_hourly = schedule("*/30 * * * *", "America/New_York");
        assert_eq!(
            half_hourly.next_after(utc("2026-11-01T05:30:00Z")),
            Some(utc("2026-11-01T06:00:00Z"))
        );
        assert_eq!(
            half_hourly.next_after(utc("2026-11-01T06:00:00Z")),
            Some(utc("2026-11-01T06:30:00Z"))
        );
        let zone = chrono_tz::America::New_York;
        let second = zone
            .with_ymd_and_hms(2026, 11, 1, 1, 30, 0)
            .latest()
            .expect("exists");
        assert_eq!(
            second.timestamp_millis(),
            utc("2026-11-01T06:30:00Z").as_millis()
        );
    }

    #[test]
    fn maintenance_windows_cover_their_span_and_chain() {
        let once = MaintenanceWindow::Once {
            start: utc("2026-05-01T10:00:00Z"),
            end: utc("2026-05-01T11:00:00Z"),
        };
        assert_eq!(once.end_if_covering(utc("2026-05-01T09:59:59Z")), None);
        assert_eq!(
            once.end_if_covering(utc("2026-05-01T10:00:00Z")),
            Some(utc("2026-05-01T11:00:00Z"))
        );
        assert_eq!(once.end_if_covering(utc("2026-05-01T11:00:00Z")), None);
        // Sundays 02:00 for two hours, Paris time (CEST: UTC+2).
        let weekly = MaintenanceWindow::Recurring {
            cron: "0 2 * * 0".to_owned(),
            timezone: "Europe/Paris".to_owned(),
            duration_seconds: 7200,
        };
        assert_eq!(
            weekly.end_if_covering(utc("2026-05-03T00:30:00Z")),
            Some(utc("2026-05-03T02:00:00Z"))
        );
        assert_eq!(weekly.end_if_covering(utc("2026-05-03T02:00:00Z")), None);
        assert_eq!(weekly.end_if_covering(utc("2026-05-02T23:59:59Z")), None);
        // A one-off window from 11:30 extends one ending at 12:00 to 13:00.
        let windows = [
            MaintenanceWindow::Once {
                start: utc("2026-05-01T11:00:00Z"),
                end: utc("2026-05-01T12:00:00Z"),
            },
            MaintenanceWindow::Once {
                start: utc("2026-05-01T11:30:00Z"),
                end: utc("2026-05-01T13:00:00Z"),
            },
        ];
        assert_eq!(
            maintenance_until(&windows, utc("2026-05-01T11:10:00Z")),
            Some(utc("2026-05-01T13:00:00Z"))
        );
        assert_eq!(
            maintenance_until(&windows, utc("2026-05-01T13:00:00Z")),
            None
        );
    }
}
