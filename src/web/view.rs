//! How values read on a page: times ("3 min ago", with the exact time on hover),
//! durations, percentages, states; and the code snippets that push to a monitor.

use crate::domain::event::DownReason;
use crate::domain::ids::Timestamp;
use crate::domain::machine::{Monitor, Status};
use crate::domain::timeline::{Beat, Uptime};

use super::session::{Flash, Viewer};

/// A moment, as a page shows it: relative text, the exact time (UTC) on hover, and
/// the RFC 3339 form the page's script recomputes the relative text from.
#[derive(Clone, Debug)]
pub struct When {
    pub iso: String,
    pub exact: String,
    pub relative: String,
}

impl When {
    pub fn new(at: Timestamp, now: Timestamp) -> Self {
        let iso = at.to_rfc3339();
        let exact = format!("{} UTC", iso.get(..19).unwrap_or(&iso).replace('T', " "));
        Self {
            iso,
            exact,
            relative: relative(at, now),
        }
    }
}

/// "just now", "42 s ago", "3 min ago", "5 h ago", "2 d ago"; "in 3 min" ahead.
pub fn relative(at: Timestamp, now: Timestamp) -> String {
    let delta = now.as_millis() - at.as_millis();
    let span = duration(delta.unsigned_abs());
    if delta.abs() < 1000 {
        "just now".to_owned()
    } else if delta > 0 {
        format!("{span} ago")
    } else {
        format!("in {span}")
    }
}

/// A length of time, in its largest unit or two: "42 s", "3 min", "1 h 5 min", "2 d 3 h".
pub fn duration(ms: u64) -> String {
    let seconds = ms / 1000;
    let (minutes, hours, days) = (seconds / 60, seconds / 3600, seconds / 86_400);
    if seconds < 60 {
        format!("{seconds} s")
    } else if minutes < 60 {
        format!("{minutes} min")
    } else if hours < 24 {
        match minutes % 60 {
            0 => format!("{hours} h"),
            rest => format!("{hours} h {rest} min"),
        }
    } else {
        match hours % 24 {
            0 => format!("{days} d"),
            rest => format!("{days} d {rest} h"),
        }
    }
}

/// Seconds as a form shows them: "90s", "5m", "2h", "1d".
pub fn seconds_text(seconds: u32) -> String {
    for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60)] {
        if seconds >= size && seconds.is_multiple_of(size) {
            return format!("{}{unit}", seconds / size);
        }
    }
    format!("{seconds}s")
}

/// An uptime as a percentage with the precision it deserves: "100%", "99.95%", "–".
pub fn percent(uptime: &Uptime) -> String {
    match uptime.ratio() {
        None => "–".to_owned(),
        Some(ratio) if ratio >= 1.0 => "100%".to_owned(),
        Some(ratio) => {
            let value = ratio * 100.0;
            // Never round up to 100% what was not.
            let shown = (value * 100.0).floor() / 100.0;
            format!("{shown:.2}%")
        }
    }
}

/// The CSS class of an uptime: good, fair, poor or none.
pub fn uptime_class(uptime: &Uptime) -> &'static str {
    match uptime.ratio() {
        None => "none",
        Some(ratio) if ratio >= 0.999 => "good",
        Some(ratio) if ratio >= 0.99 => "fair",
        Some(_) => "poor",
    }
}

/// How pages order states: problems first.
pub fn status_rank(status: Status) -> u8 {
    match status {
        Status::Down => 0,
        Status::Pending | Status::Unknown => 1,
        Status::Up => 2,
        Status::Paused => 3,
    }
}

/// A state as people read it.
pub fn status_label(status: Status) -> &'static str {
    match status {
        Status::Down => "Down",
        Status::Pending => "Pending",
        Status::Up => "Up",
        Status::Paused => "Paused",
        Status::Unknown => "Unknown",
    }
}

/// A mark of a heartbeat strip: its class and what hovering says.
#[derive(Clone, Debug)]
pub struct BeatView {
    pub class: &'static str,
    pub title: String,
}

impl BeatView {
    pub fn new(beat: Beat, at: Timestamp) -> Self {
        let (class, what) = match beat {
            Beat::Up => ("up", "heartbeat: up"),
            Beat::Down => ("down", "heartbeat: down"),
            Beat::Missed => ("missed", "missed: no heartbeat in time"),
            Beat::Paused => ("paused", "paused"),
        };
        let when = When::new(at, at);
        Self {
            class,
            title: format!("{what} · {}", when.exact),
        }
    }

    /// A strip of `size` marks: the beats, right-aligned, after empty ones.
    pub fn strip(beats: &[(Timestamp, Beat)], size: usize) -> Vec<Self> {
        let shown = &beats[beats.len().saturating_sub(size)..];
        let mut strip: Vec<Self> = (shown.len()..size)
            .map(|_| Self {
                class: "none",
                title: "no heartbeat".to_owned(),
            })
            .collect();
        strip.extend(shown.iter().map(|(at, beat)| Self::new(*beat, *at)));
        strip
    }
}

/// Why a monitor went down, in words.
pub fn down_reason(reason: Option<DownReason>, monitor: &Monitor) -> String {
    match reason {
        Some(DownReason::Timeout) => format!(
            "no heartbeat within its timeout ({})",
            duration(u64::from(monitor.config.timeout_seconds) * 1000)
        ),
        Some(DownReason::Manual) => "a heartbeat reported status=down".to_owned(),
        Some(DownReason::Instances) => match monitor.config.min_instances {
            Some(minimum) => format!("fewer than {minimum} instances reported in time"),
            None => "too few instances reported in time".to_owned(),
        },
        Some(DownReason::ExitStatus) => {
            match monitor.last_run.as_ref().and_then(|run| run.exit_status) {
                Some(status) => format!("its job exited with status {status}"),
                None => "its job reported a non-zero exit status".to_owned(),
            }
        }
        Some(DownReason::MaxRuntime) => match monitor.config.max_runtime_seconds {
            Some(seconds) => format!(
                "a run went on longer than its maximum runtime ({})",
                duration(u64::from(seconds) * 1000)
            ),
            None => "a run went on longer than its maximum runtime".to_owned(),
        },
        Some(DownReason::TooFast) => match monitor.config.min_runtime_seconds {
            Some(seconds) => format!(
                "a run finished sooner than its minimum runtime ({})",
                duration(u64::from(seconds) * 1000)
            ),
            None => "a run finished sooner than its minimum runtime".to_owned(),
        },
        Some(DownReason::Schedule) => {
            "no success for a scheduled time within its grace period".to_owned()
        }
        None => "down".to_owned(),
    }
}

/// The per-state counts in the header, the title and the favicon.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    pub down: usize,
    pub pending: usize,
    pub up: usize,
    pub paused: usize,
    pub total: usize,
}

impl Counts {
    pub fn of<'a>(monitors: impl IntoIterator<Item = &'a Monitor>) -> Self {
        let mut counts = Self::default();
        for monitor in monitors {
            counts.total += 1;
            match monitor.status {
                Status::Down => counts.down += 1,
                // Unknown: neither up nor down yet, as pending.
                Status::Pending | Status::Unknown => counts.pending += 1,
                Status::Up => counts.up += 1,
                Status::Paused => counts.paused += 1,
            }
        }
        counts
    }
}

/// What every page of the dashboard has: its title, the section of the navigation
/// it is in, the viewer, the counts, and a message left by the last change.
#[derive(Clone, Debug)]
pub struct Page {
    pub title: String,
    pub nav: &'static str,
    pub viewer: Option<Viewer>,
    pub counts: Counts,
    pub flash: Option<Flash>,
}

impl Page {
    pub fn new(
        title: impl Into<String>,
        nav: &'static str,
        viewer: &Viewer,
        counts: Counts,
    ) -> Self {
        Self {
            title: title.into(),
            nav,
            flash: viewer.flash.clone(),
            viewer: Some(viewer.clone()),
            counts,
        }
    }

    /// A page for someone not signed in.
    pub fn public(title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            nav: "",
            viewer: None,
            counts: Counts::default(),
            flash: None,
        }
    }

    pub fn can_write(&self) -> bool {
        self.viewer.as_ref().is_some_and(Viewer::can_write)
    }

    /// What the assets' URLs carry, so a new binary's are fetched anew.
    pub fn asset_version(&self) -> &str {
        super::assets::VERSION.as_str()
    }

    pub fn csrf(&self) -> &str {
        self.viewer
            .as_ref()
            .map_or("", |viewer| viewer.csrf.as_str())
    }

    /// "(3 down) pushmon" and the like: what the tab says.
    pub fn tab_title(&self) -> String {
        if self.counts.down > 0 {
            format!("({} down) {} · pushmon", self.counts.down, self.title)
        } else {
            format!("{} · pushmon", self.title)
        }
    }
}

/// A ready-to-paste way of pushing, filled in with a monitor's push URL.
#[derive(Clone, Debug)]
pub struct Snippet {
    pub id: &'static str,
    pub name: &'static str,
    pub code: String,
}

/// The snippets for `push_url` (its `/api/push/<token>` form).
pub fn snippets(push_url: &str, server: &str, interval_seconds: u32) -> Vec<Snippet> {
    let token = push_url.rsplit('/').next().unwrap_or_default();
    let cron = cron_schedule(interval_seconds);
    vec![
        Snippet {
            id: "curl",
            name: "curl",
            code: format!(
                "curl -fsS -m 10 --retry 3 \"{push_url}\"\n\
                 # with a message and a value:\n\
                 curl -fsS -m 10 --retry 3 \"{push_url}?msg=backup%20ok&value=42\"\n\
                 # report a failure:\n\
                 curl -fsS -m 10 --retry 3 \"{push_url}?status=down&msg=disk%20full\""
            ),
        },
        Snippet {
            id: "cron",
            name: "cron",
            code: format!(
                "{cron} /usr/local/bin/job.sh && curl -fsS -m 10 --retry 3 \"{push_url}\" > /dev/null"
            ),
        },
        Snippet {
            id: "run",
            name: "pushmon run",
            code: format!(
                "pushmon run --url \"{push_url}\" -- /usr/local/bin/job.sh\n\
                 # or, with the token in the environment:\n\
                 PUSHMON_URL={server} PUSHMON_PUSH_TOKEN={token} pushmon run -- /usr/local/bin/job.sh"
            ),
        },
        Snippet {
            id: "python",
            name: "Python",
            code: format!(
                "import urllib.request\n\n\
                 urllib.request.urlopen(\"{push_url}\", timeout=10)"
            ),
        },
        Snippet {
            id: "node",
            name: "Node.js",
            code: format!(
                "await fetch(\"{push_url}\", {{ method: \"POST\", signal: AbortSignal.timeout(10000) }});"
            ),
        },
        Snippet {
            id: "powershell",
            name: "PowerShell",
            code: format!("Invoke-RestMethod -Method Post -Uri \"{push_url}\" -TimeoutSec 10"),
        },
    ]
}

/// A cron schedule close to an interval: every N minutes, hours, or daily.
fn cron_schedule(interval_seconds: u32) -> String {
    let minutes = (interval_seconds / 60).max(1);
    if minutes < 60 && 60 % minutes == 0 {
        if minutes == 1 {
            "* * * * *".to_owned()
        } else {
            format!("*/{minutes} * * * *")
        }
    } else if minutes.is_multiple_of(60) && minutes < 1440 && 24 % (minutes / 60) == 0 {
        format!("0 */{} * * *", minutes / 60)
    } else {
        "0 3 * * *".to_owned()
    }
}

/// The dashboard's mark of a muted monitor (`docs/states.md`, "Muting"): "acknowledged"
/// (until the next recovery), "muted until …" (the exact time, UTC), or "muted"; `None`
/// when not muted at `now`.
pub fn mute_mark(monitor: &Monitor, now: Timestamp) -> Option<String> {
    let mute = monitor.mute.filter(|_| monitor.muted_at(now))?;
    Some(match (mute.until_recovery, mute.until) {
        (true, _) => "acknowledged".to_owned(),
        (false, Some(until)) => format!("muted until {}", When::new(until, now).exact),
        (false, None) => "muted".to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_relative_times_read_naturally() {
        for (ms, text) in [
            (0, "0 s"),
            (42_000, "42 s"),
            (180_000, "3 min"),
            (3_900_000, "1 h 5 min"),
            (7_200_000, "2 h"),
            (183_600_000, "2 d 3 h"),
            (172_800_000, "2 d"),
        ] {
            assert_eq!(duration(ms), text);
        }
        let now = Timestamp::from_millis(1_000_000_000);
        let at = |delta: i64| Timestamp::from_millis(1_000_000_000 + delta);
        assert_eq!(relative(at(-500), now), "just now");
        assert_eq!(relative(at(-180_000), now), "3 min ago");
        assert_eq!(relative(at(120_000), now), "in 2 min");
        assert_eq!(
            When::new(Timestamp::from_millis(0), now).exact,
            "1970-01-01 00:00:00 UTC"
        );
    }

    #[test]
    fn percentages_never_round_up_to_a_perfect_score() {
        let of = |up_ms, down_ms| Uptime {
            up_ms,
            down_ms,
            ..Uptime::default()
        };
        assert_eq!(percent(&of(1, 0)), "100%");
        assert_eq!(percent(&of(999_999, 1)), "99.99%");
        assert_eq!(percent(&of(1, 1)), "50.00%");
        assert_eq!(percent(&of(0, 0)), "–");
        assert_eq!(uptime_class(&of(999, 1)), "good");
        assert_eq!(uptime_class(&of(95, 5)), "poor");
    }

    #[test]
    fn seconds_and_cron_schedules() {
        assert_eq!(seconds_text(90), "90s");
        assert_eq!(seconds_text(300), "5m");
        assert_eq!(seconds_text(7200), "2h");
        assert_eq!(seconds_text(86_400), "1d");
        assert_eq!(cron_schedule(60), "* * * * *");
        assert_eq!(cron_schedule(300), "*/5 * * * *");
        assert_eq!(cron_schedule(7200), "0 */2 * * *");
        assert_eq!(cron_schedule(86_400), "0 3 * * *");
    }

    #[test]
    fn snippets_carry_the_real_url() {
        let url = "https://mon.example.com/api/push/Xb3kq9T0vYh2LwQm7RzA1g";
        for snippet in snippets(url, "https://mon.example.com", 300) {
            assert!(
                snippet.code.contains(url) || snippet.code.contains("Xb3kq9T0vYh2LwQm7RzA1g"),
                "{}",
                snippet.name
            );
        }
    }
}
