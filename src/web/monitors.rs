//! The monitor list and a monitor's page, with the forms and actions that change a
//! monitor. Changes go through `http::api`'s parsing and the registry, as the API's.

use std::collections::BTreeSet;
use std::sync::Arc;

use askama::Template;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::domain::event::RunOutcome;
use crate::domain::ids::{MonitorId, Timestamp};
use crate::domain::machine::{Command, Monitor, Status};
use crate::domain::selector::Selector;
use crate::domain::timeline::{self, Window};
use crate::http::api::{config_from_fields, event_json, monitor_json, patch_from_fields};
use crate::http::auth::redact_credentials;
use crate::http::error::ApiError;
use crate::http::history::{DEFAULT_WINDOWS, incident_page};
use crate::http::monitor_query::Filters;
use crate::http::{AppState, PathParam};
use crate::monitor::RegistryError;
use crate::monitor::registry::new_push_token;

use super::chart::line_chart;
use super::session::{Flash, Viewer};
use super::view::{
    self, BeatView, Counts, Page, When, duration, percent, seconds_text, status_label, status_rank,
    uptime_class,
};
use super::{Web, field, form, render, see_other, viewer_message};

mod form;
mod page;

pub use form::*;
pub use page::*;

/// Monitors on one page of the list.
pub const PAGE_SIZE: usize = 50;

/// Marks in a row's heartbeat strip, and on a monitor's page.
const LIST_STRIP: usize = 30;
const PAGE_STRIP: usize = 60;

/// Values charted on a monitor's page.
const CHART_VALUES: usize = 200;

/// Events and incidents on one page of a monitor's history.
const EVENTS_PER_PAGE: usize = 25;
const INCIDENTS_PER_PAGE: usize = 10;

/// The longest uptime window shown (30 days): how far back rows read.
const LONGEST_WINDOW: u32 = DEFAULT_WINDOWS[2].1;

#[derive(Deserialize, Default)]
pub struct ListQuery {
    q: Option<String>,
    status: Option<String>,
    tag: Option<String>,
    selector: Option<String>,
    page: Option<String>,
    partial: Option<String>,
}

/// The list's filter, as its form and links carry it.
pub struct Filter {
    pub q: String,
    pub status: String,
    pub tag: String,
    /// A label selector as typed; matched by `domain::selector`, as the API's.
    pub selector: String,
    /// The selector parsed, or why it cannot be (shown above the list, which is then
    /// empty).
    parsed: Result<Selector, String>,
}

impl Filter {
    /// The filter as a query string (without the page).
    pub fn query(&self) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (name, value) in [
            ("q", &self.q),
            ("status", &self.status),
            ("tag", &self.tag),
            ("selector", &self.selector),
        ] {
            if !value.is_empty() {
                query.append_pair(name, value);
            }
        }
        query.finish()
    }

    /// Why the selector was refused, if it was.
    pub fn selector_error(&self) -> Option<&str> {
        self.parsed.as_ref().err().map(String::as_str)
    }

    fn admits(&self, monitor: &Monitor, needle: &str) -> bool {
        self.parsed
            .as_ref()
            .is_ok_and(|selector| selector.matches(&monitor.config.labels))
            && (self.status.is_empty() || monitor.status.as_str() == self.status)
            && (self.tag.is_empty() || monitor.config.tags.contains(&self.tag))
            && (needle.is_empty()
                || monitor.config.name.to_lowercase().contains(needle)
                || monitor
                    .config
                    .tags
                    .iter()
                    .any(|tag| tag.to_lowercase().contains(needle)))
    }
}

/// One row of the list.
pub struct Row {
    pub id: String,
    pub name: String,
    pub status: &'static str,
    pub status_label: &'static str,
    pub tags: Vec<String>,
    /// `key=value` of each label, and the selector of that one label (as a query value).
    pub labels: Vec<(String, String)>,
    pub msg: Option<String>,
    pub last_heartbeat: Option<When>,
    pub next_deadline: Option<When>,
    pub overdue: bool,
    pub strip: Vec<BeatView>,
    pub uptime: String,
    pub uptime_class: &'static str,
    pub uptime_title: String,
    /// "acknowledged" or "muted until …" while muted.
    pub muted: Option<String>,
}

pub struct Pager {
    pub summary: String,
    pub previous: Option<String>,
    pub next: Option<String>,
}

#[derive(Template)]
#[template(path = "list.html")]
struct ListPage {
    page: Page,
    filter: Filter,
    status_options: Vec<(&'static str, &'static str)>,
    tags: Vec<String>,
    rows: Vec<Row>,
    pager: Pager,
}

#[derive(Template)]
#[template(path = "rows.html")]
struct RowsFragment {
    page: Page,
    rows: Vec<Row>,
    pager: Pager,
}

/// `GET /`: the monitors, problems first, filtered and paged on the server.
pub async fn list(
    State(state): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Extension(viewer): Extension<Viewer>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Response {
    let query = query.map(|Query(query)| query).unwrap_or_default();
    let monitors = match web.board.monitors().await {
        Ok(monitors) => monitors,
        Err(error) => return failed(&web, &viewer, error.into()).await,
    };
    let counts = Counts::of(monitors.iter());
    let filter = Filter {
        q: query.q.unwrap_or_default().trim().to_owned(),
        status: query
            .status
            .filter(|status| Status::ALL.iter().any(|known| known.as_str() == status))
            .unwrap_or_default(),
        tag: query.tag.unwrap_or_default(),
        parsed: Filters::parse_selector(query.selector.as_deref().unwrap_or(""))
            .map_err(|error| error.to_string()),
        selector: query.selector.unwrap_or_default().trim().to_owned(),
    };
    let needle = filter.q.to_lowercase();
    let mut shown: Vec<&Monitor> = monitors
        .iter()
        .filter(|monitor| filter.admits(monitor, &needle))
        .collect();
    shown.sort_by(|a, b| {
        (status_rank(a.status), a.config.name.to_lowercase(), a.id).cmp(&(
            status_rank(b.status),
            b.config.name.to_lowercase(),
            b.id,
        ))
    });
    let pages = shown.len().div_ceil(PAGE_SIZE).max(1);
    let number = query
        .page
        .and_then(|page| page.parse::<usize>().ok())
        .unwrap_or(1)
        .clamp(1, pages);
    let first = (number - 1) * PAGE_SIZE;
    let on_page: Vec<&Monitor> = shown.iter().skip(first).take(PAGE_SIZE).copied().collect();
    let now = state.clock.now();
    let since = Window::last(LONGEST_WINDOW, now).from;
    let timelines = match state
        .store
        .timelines(
            on_page.iter().map(|monitor| monitor.id).collect(),
            since,
            LIST_STRIP,
        )
        .await
    {
        Ok(timelines) => timelines,
        Err(error) => return failed(&web, &viewer, error.into()).await,
    };
    let rows: Vec<Row> = on_page
        .iter()
        .zip(&timelines)
        .map(|(monitor, read)| row(monitor, read, now))
        .collect();
    let link = |page: usize| {
        let query = filter.query();
        if query.is_empty() {
            format!("/?page={page}")
        } else {
            format!("/?{query}&page={page}")
        }
    };
    let pager = Pager {
        summary: if shown.is_empty() {
            String::new()
        } else {
            format!(
                "{}–{} of {} · page {number} of {pages}",
                first + 1,
                first + rows.len(),
                shown.len()
            )
        },
        previous: (number > 1).then(|| link(number - 1)),
        next: (number < pages).then(|| link(number + 1)),
    };
    let page = Page::new("Monitors", "monitors", &viewer, counts);
    if query.partial.as_deref() == Some("rows") {
        return render(StatusCode::OK, &RowsFragment { page, rows, pager });
    }
    let tags: BTreeSet<&String> = monitors
        .iter()
        .flat_map(|monitor| monitor.config.tags.iter())
        .collect();
    render(
        StatusCode::OK,
        &ListPage {
            page,
            filter,
            status_options: Status::ALL
                .iter()
                .map(|status| (status.as_str(), status_label(*status)))
                .collect(),
            tags: tags.into_iter().cloned().collect(),
            rows,
            pager,
        },
    )
}

fn row(monitor: &Monitor, read: &crate::store::timeline::Timeline, now: Timestamp) -> Row {
    let uptimes: Vec<(&str, timeline::Uptime)> = DEFAULT_WINDOWS
        .iter()
        .map(|(name, seconds)| {
            (
                *name,
                timeline::uptime(&read.transitions, Window::last(*seconds, now), None),
            )
        })
        .collect();
    let day = &uptimes[0].1;
    let deadline = monitor.next_deadline();
    Row {
        muted: super::view::mute_mark(monitor, now),
        id: monitor.id.to_string(),
        name: monitor.config.name.clone(),
        status: monitor.status.as_str(),
        status_label: status_label(monitor.status),
        tags: monitor.config.tags.clone(),
        labels: monitor
            .config
            .labels
            .iter()
            .map(|(key, value)| {
                let pair = format!("{key}={value}");
                let query: String = form_urlencoded::byte_serialize(pair.as_bytes()).collect();
                (pair, query)
            })
            .collect(),
        msg: monitor.last_msg.as_ref().map(|msg| msg.as_str().to_owned()),
        last_heartbeat: monitor.last_heartbeat_at.map(|at| When::new(at, now)),
        next_deadline: deadline.map(|at| When::new(at, now)),
        overdue: deadline.is_some_and(|at| at <= now),
        strip: BeatView::strip(&read.beats, LIST_STRIP),
        uptime: percent(day),
        uptime_class: uptime_class(day),
        uptime_title: uptimes
            .iter()
            .map(|(name, spent)| format!("{name}: {}", percent(spent)))
            .collect::<Vec<_>>()
            .join(" · "),
    }
}

/// An error page for a failed read or change.
async fn failed(web: &Web, viewer: &Viewer, error: ApiError) -> Response {
    let status = error.status();
    let message = match &error {
        ApiError::Internal(detail) => {
            tracing::error!(%detail, "dashboard page failed");
            "internal error (see the server's log)".to_owned()
        }
        other => other.to_string(),
    };
    viewer_message(web, viewer, status, "Something went wrong", &message).await
}

/// The monitor `id` names, or the page to answer instead.
async fn find(state: &AppState, web: &Web, viewer: &Viewer, id: &str) -> Result<Monitor, Response> {
    let Some(id) = MonitorId::parse(id) else {
        return Err(not_found(web, viewer).await);
    };
    match state.registry.current_state(id).await {
        Ok(monitor) => Ok(monitor),
        Err(RegistryError::NotFound) => Err(not_found(web, viewer).await),
        Err(error) => Err(failed(web, viewer, error.into()).await),
    }
}

async fn not_found(web: &Web, viewer: &Viewer) -> Response {
    viewer_message(
        web,
        viewer,
        StatusCode::NOT_FOUND,
        "No such monitor",
        "It may have been deleted.",
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_durations_and_fields_become_the_apis() {
        assert_eq!(form_seconds("timeout", "90"), Ok(90));
        assert_eq!(form_seconds("timeout", "5m"), Ok(300));
        assert_eq!(form_seconds("timeout", " 1h 30m "), Ok(5400));
        assert!(form_seconds("timeout", "soon").is_err());
        let values = MonitorFormValues {
            name: "backup".to_owned(),
            timeout: "25h".to_owned(),
            interval: String::new(),
            tags: " prod, ,db ".to_owned(),
            labels: " team = payments, ,env=prod ".to_owned(),
            severity: "warning".to_owned(),
            channels: vec!["c1".to_owned()],
            allowed_sources: " 10.0.0.0/8, ,127.0.0.1".to_owned(),
            signing_secret: " typed-secret-0123456789 ".to_owned(),
            remove_secret: false,
            signed: false,
        };
        let fields = api_fields(&values, false).expect("fields");
        assert_eq!(
            fields["allowed_sources"],
            json!(["10.0.0.0/8", "127.0.0.1"])
        );
        assert_eq!(fields["signing_secret"], "typed-secret-0123456789");
        assert_eq!(fields["timeout_seconds"], 90_000);
        assert_eq!(fields["interval_seconds"], Value::Null);
        assert_eq!(fields["tags"], json!(["prod", "db"]));
        assert_eq!(fields["labels"], json!({"team": "payments", "env": "prod"}));
        assert_eq!(fields["severity"], "warning");
        assert_eq!(fields["channels"], json!(["c1"]));
        let edited = api_fields(&values, true).expect("fields");
        assert!(!edited.contains_key("interval_seconds"), "kept as it is");
        let unlabelled = MonitorFormValues {
            labels: "team".to_owned(),
            ..values
        };
        assert_eq!(
            api_fields(&unlabelled, true),
            Err("labels: \"team\" is not key=value".to_owned())
        );
    }

    #[test]
    fn filters_match_status_tag_and_text() {
        let filter = |q: &str, status: &str, tag: &str, selector: &str| Filter {
            q: q.to_owned(),
            status: status.to_owned(),
            tag: tag.to_owned(),
            selector: selector.to_owned(),
            parsed: Selector::parse(selector).map_err(|error| error.to_string()),
        };
        assert_eq!(filter("", "", "", "").query(), "");
        assert_eq!(
            filter("a b", "down", "x&y", "team in (a,b)").query(),
            "q=a+b&status=down&tag=x%26y&selector=team+in+%28a%2Cb%29"
        );
        assert!(filter("", "", "", "team in").selector_error().is_some());
    }
}
