//! Finding monitors: the filters and pages of `GET /api/monitors` (`docs/api.md`,
//! "Finding monitors"): a label selector (`domain::selector`), states, a name
//! search and tags, all of which must hold; a page of at most `limit` monitors in
//! id order after an opaque `cursor`; and the count of each state over everything
//! the filters let through. The dashboard's list filters with the same `Filters`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::domain::ids::MonitorId;
use crate::domain::machine::{Monitor, Status};
use crate::domain::selector::Selector;

use super::error::ApiError;

/// The most monitors one page may hold.
pub const MAX_LIMIT: usize = 1000;

/// A page's size when a `cursor` comes without a `limit`.
pub const DEFAULT_LIMIT: usize = 100;

/// What a monitor must be to be listed. Empty fields let everything through.
#[derive(Clone, Debug, Default)]
pub struct Filters {
    pub selector: Selector,
    pub statuses: Vec<Status>,
    /// Lower-cased: a monitor's lower-cased name must contain it.
    pub search: String,
    /// Every one must be among the monitor's tags.
    pub tags: Vec<String>,
}

impl Filters {
    pub fn admits(&self, monitor: &Monitor) -> bool {
        (self.statuses.is_empty() || self.statuses.contains(&monitor.status))
            && self
                .tags
                .iter()
                .all(|tag| monitor.config.tags.contains(tag))
            && self.selector.matches(&monitor.config.labels)
            && (self.search.is_empty() || monitor.config.name.to_lowercase().contains(&self.search))
    }

    /// A selector as the API's and the dashboard's `selector` parameter gives it.
    pub fn parse_selector(text: &str) -> Result<Selector, ApiError> {
        Selector::parse(text).map_err(|error| ApiError::BadRequest(format!("selector {error}")))
    }

    /// `status`: states separated by commas (the parameter may also repeat).
    pub fn add_statuses(&mut self, text: &str) -> Result<(), ApiError> {
        for name in text
            .split(',')
            .map(str::trim)
            .filter(|name| !name.is_empty())
        {
            let status = Status::ALL
                .into_iter()
                .find(|status| status.as_str() == name)
                .ok_or_else(|| {
                    ApiError::BadRequest(format!(
                        "status {name:?} is not one of pending, up, down, paused"
                    ))
                })?;
            if !self.statuses.contains(&status) {
                self.statuses.push(status);
            }
        }
        Ok(())
    }
}

/// A query of `GET /api/monitors`.
#[derive(Clone, Debug, Default)]
pub struct MonitorQuery {
    pub filters: Filters,
    /// `None`: every monitor the filters let through (no `limit`, no `cursor`).
    pub limit: Option<usize>,
    /// List only monitors whose id sorts after this one.
    pub after: Option<MonitorId>,
}

impl MonitorQuery {
    /// From the raw query string. Parameters it does not know are ignored, as they
    /// always were on this route.
    pub fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
        let mut query = Self::default();
        let mut selectors = Vec::new();
        for (name, value) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
            match name.as_ref() {
                "selector" => selectors.push(value.into_owned()),
                "status" => query.filters.add_statuses(&value)?,
                "q" => query.filters.search = value.trim().to_lowercase(),
                "tag" if !query.filters.tags.iter().any(|tag| *tag == value) => {
                    query.filters.tags.push(value.into_owned());
                }
                "limit" => {
                    query.limit = Some(match value.parse::<usize>() {
                        Ok(limit) if (1..=MAX_LIMIT).contains(&limit) => limit,
                        _ => {
                            return Err(ApiError::BadRequest(format!(
                                "limit must be a whole number from 1 to {MAX_LIMIT}"
                            )));
                        }
                    });
                }
                "cursor" => query.after = Some(parse_cursor(&value)?),
                _ => {}
            }
        }
        // Repeated selectors are one selector: each must hold.
        query.filters.selector = Filters::parse_selector(&selectors.join(","))?;
        if query.after.is_some() && query.limit.is_none() {
            query.limit = Some(DEFAULT_LIMIT);
        }
        Ok(query)
    }

    /// The page of `monitors` this query asks for.
    pub fn page(&self, mut monitors: Vec<Monitor>) -> Page {
        monitors.retain(|monitor| self.filters.admits(monitor));
        monitors.sort_by_key(|monitor| monitor.id);
        let mut counts = [0usize; Status::ALL.len()];
        for monitor in &monitors {
            if let Some(index) = Status::ALL
                .iter()
                .position(|status| *status == monitor.status)
            {
                counts[index] += 1;
            }
        }
        let start = match self.after {
            Some(after) => monitors.partition_point(|monitor| monitor.id <= after),
            None => 0,
        };
        let end = match self.limit {
            Some(limit) => start.saturating_add(limit).min(monitors.len()),
            None => monitors.len(),
        };
        let next_cursor = (end < monitors.len())
            .then(|| end.checked_sub(1).map(|last| cursor_of(monitors[last].id)))
            .flatten();
        monitors.truncate(end);
        monitors.drain(..start);
        Page {
            monitors,
            counts: Status::ALL.into_iter().zip(counts).collect(),
            next_cursor,
        }
    }
}

/// One page of monitors, in id order.
pub struct Page {
    pub monitors: Vec<Monitor>,
    /// Every state, with how many monitors in it the filters let through (all pages).
    pub counts: Vec<(Status, usize)>,
    /// `None` on the last page.
    pub next_cursor: Option<String>,
}

/// The cursor after `id`: opaque to clients (its form may change).
fn cursor_of(id: MonitorId) -> String {
    URL_SAFE_NO_PAD.encode(id.as_bytes())
}

fn parse_cursor(text: &str) -> Result<MonitorId, ApiError> {
    URL_SAFE_NO_PAD
        .decode(text)
        .ok()
        .and_then(|bytes| <[u8; 16]>::try_from(bytes).ok())
        .map(MonitorId::from_bytes)
        .ok_or_else(|| {
            ApiError::BadRequest("cursor must be a next_cursor this API returned".to_owned())
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::event::MonitorConfig;
    use crate::domain::ids::{PushToken, Timestamp};
    use crate::domain::labels::Labels;

    fn monitor(index: u8, team: &str, status: Status) -> Monitor {
        let mut monitor = Monitor::created(
            MonitorId::from_bytes([index; 16]),
            Timestamp::from_millis(1),
            MonitorConfig {
                labels: Labels::new([("team".to_owned(), team.to_owned())]).expect("valid"),
                tags: vec![format!("t{}", index % 2)],
                ..MonitorConfig::new(format!("Job {index}"), 60)
            },
            PushToken::from_bytes([index; 16]),
        );
        monitor.status = status;
        monitor
    }

    fn monitors() -> Vec<Monitor> {
        (1..=9)
            .rev()
            .map(|index| {
                let team = if index % 3 == 0 { "b" } else { "a" };
                let status = if index % 2 == 0 {
                    Status::Down
                } else {
                    Status::Up
                };
                monitor(index, team, status)
            })
            .collect()
    }

    fn ids(page: &Page) -> Vec<u8> {
        page.monitors
            .iter()
            .map(|monitor| monitor.id.as_bytes()[0])
            .collect()
    }

    #[test]
    fn filters_combine_and_counts_cover_every_page() {
        let query =
            MonitorQuery::parse(Some("selector=team%3Da&status=down&limit=2")).expect("parses");
        let page = query.page(monitors());
        assert_eq!(ids(&page), [2, 4]);
        assert_eq!(
            page.counts,
            [
                (Status::Pending, 0),
                (Status::Up, 0),
                (Status::Down, 3),
                (Status::Paused, 0),
                (Status::Unknown, 0)
            ]
        );
        let cursor = page.next_cursor.expect("a next page");
        let next = MonitorQuery::parse(Some(&format!(
            "selector=team%3Da&status=down&limit=2&cursor={cursor}"
        )))
        .expect("parses")
        .page(monitors());
        assert_eq!(ids(&next), [8]);
        assert_eq!(next.next_cursor, None);

        let all = MonitorQuery::parse(None).expect("parses").page(monitors());
        assert_eq!(ids(&all), [1, 2, 3, 4, 5, 6, 7, 8, 9]);
        assert_eq!(all.next_cursor, None);
        let tagged = MonitorQuery::parse(Some("tag=t1&q=JOB%205&status=up,down"))
            .expect("parses")
            .page(monitors());
        assert_eq!(ids(&tagged), [5]);
    }

    /// A cursor names a place in id order, not a monitor: it still works once the
    /// monitor it was made from is deleted, and monitors added before it do not
    /// shift the pages after it.
    #[test]
    fn a_cursor_is_stable_under_inserts_and_deletes() {
        let first = MonitorQuery::parse(Some("limit=3"))
            .expect("parses")
            .page(monitors());
        assert_eq!(ids(&first), [1, 2, 3]);
        let cursor = first.next_cursor.expect("a next page");
        let mut changed: Vec<Monitor> = monitors()
            .into_iter()
            .filter(|monitor| monitor.id.as_bytes()[0] != 3)
            .collect();
        changed.push(monitor(0, "a", Status::Up));
        let next = MonitorQuery::parse(Some(&format!("limit=3&cursor={cursor}")))
            .expect("parses")
            .page(changed);
        assert_eq!(ids(&next), [4, 5, 6]);
    }

    #[test]
    fn bad_parameters_are_400s_that_say_what_is_wrong() {
        for (query, says) in [
            ("selector=team%20in%20a", "selector at position 8"),
            ("status=sleeping", "status \"sleeping\""),
            ("limit=0", "limit must be"),
            ("limit=1001", "limit must be"),
            ("cursor=%21%21", "cursor must be"),
        ] {
            let error = MonitorQuery::parse(Some(query)).expect_err(query);
            assert!(
                matches!(&error, ApiError::BadRequest(message) if message.contains(says)),
                "{query}: {error}"
            );
        }
    }
}
