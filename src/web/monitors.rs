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

#[derive(Deserialize, Default)]
pub struct PageQuery {
    before: Option<u64>,
    incidents_before: Option<u64>,
    partial: Option<String>,
}

/// What the state card says.
pub struct StateView {
    pub status: &'static str,
    pub status_label: &'static str,
    pub since: Option<When>,
    pub why: String,
    pub strip: Vec<BeatView>,
    pub last_heartbeat: Option<When>,
    pub last_msg: Option<String>,
    pub last_value: Option<String>,
    pub next_deadline: Option<When>,
    pub timeout: String,
    pub interval: String,
    /// A cron monitor's schedule in words (then `timeout` and `interval` mean nothing).
    pub schedule: Option<String>,
    pub next_due: Option<When>,
    /// How many runs are open, and since when the oldest.
    pub open_runs: Option<(usize, When)>,
    pub last_run: Option<LastRunView>,
    /// The threshold counters, in words, while one is counting.
    pub counting: Option<String>,
    pub maintenance_until: Option<When>,
    /// (id, name) of each channel alerted.
    pub channels: Vec<(String, String)>,
    pub uptimes: Vec<UptimeView>,
}

/// A monitor's last run, as the state card shows it.
pub struct LastRunView {
    /// `success` or `failure`, also its CSS class.
    pub outcome: &'static str,
    pub ended: When,
    /// Empty for a run whose start was not reported.
    pub duration: String,
    pub exit_status: Option<u8>,
    pub output: Option<String>,
}

pub struct UptimeView {
    pub name: String,
    pub percent: String,
    pub class: &'static str,
    pub down: String,
}

pub struct IncidentView {
    pub started: When,
    pub reason: String,
    pub lasted: String,
    pub ongoing: bool,
    pub ended_by: Option<&'static str>,
}

pub struct EventView {
    pub at: When,
    pub kind: String,
    pub detail: String,
}

#[derive(Template)]
#[template(path = "monitor.html")]
struct MonitorPage {
    page: Page,
    id: String,
    name: String,
    tags: Vec<String>,
    paused: bool,
    state: StateView,
    value_chart: Option<String>,
    value_count: usize,
    /// Further charts by title (the run durations, once runs are recorded).
    extra_charts: Vec<(String, String)>,
    push_url: Option<String>,
    snippets: Vec<view::Snippet>,
    incidents: Vec<IncidentView>,
    incidents_before: Option<u64>,
    incidents_more: Option<String>,
    events: Vec<EventView>,
    events_before: Option<u64>,
    events_more: Option<String>,
    fields: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "monitor_state.html")]
struct StateFragment {
    page: Page,
    state: StateView,
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

/// `GET /monitors/{id}`: its state and why, uptimes, values, incidents, history, push
/// URL and snippets.
pub async fn page(
    State(state): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Extension(viewer): Extension<Viewer>,
    PathParam(id): PathParam,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Response {
    let query = query.map(|Query(query)| query).unwrap_or_default();
    let monitor = match find(&state, &web, &viewer, &id).await {
        Ok(monitor) => monitor,
        Err(response) => return response,
    };
    let now = state.clock.now();
    let counts = web.counts().await;
    let read = match state
        .store
        .timeline(
            monitor.id,
            Window::last(LONGEST_WINDOW, now).from,
            PAGE_STRIP,
        )
        .await
    {
        Ok(read) => read,
        Err(error) => return failed(&web, &viewer, error.into()).await,
    };
    let state_view = state_view(&state, &monitor, &read, now);
    let page = Page::new(monitor.config.name.clone(), "monitors", &viewer, counts);
    if query.partial.as_deref() == Some("state") {
        return render(
            StatusCode::OK,
            &StateFragment {
                page,
                state: state_view,
            },
        );
    }
    let values = match state.store.values(monitor.id, CHART_VALUES).await {
        Ok(values) => values,
        Err(error) => return failed(&web, &viewer, error.into()).await,
    };
    let run_durations = match state.store.run_durations(monitor.id, CHART_VALUES).await {
        Ok(durations) => durations,
        Err(error) => return failed(&web, &viewer, error.into()).await,
    };
    let incidents = match incident_page(
        &state,
        monitor.id,
        query.incidents_before,
        INCIDENTS_PER_PAGE,
    )
    .await
    {
        Ok(incidents) => incidents,
        Err(error) => return failed(&web, &viewer, error).await,
    };
    let events = match state
        .store
        .history(monitor.id, EVENTS_PER_PAGE, query.before)
        .await
    {
        Ok(events) => events,
        Err(error) => return failed(&web, &viewer, error.into()).await,
    };
    let mut api = monitor_json(&state, &monitor);
    redact_credentials(viewer.principal, &mut api);
    let push_url = api
        .get("push_url")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let snippets = push_url
        .as_deref()
        .map(|url| view::snippets(url, &state.public_url, monitor.config.interval_seconds))
        .unwrap_or_default();
    let id_text = monitor.id.to_string();
    let incidents_more = (incidents.len() == INCIDENTS_PER_PAGE)
        .then(|| incidents.last())
        .flatten()
        .map(|oldest| format!("/monitors/{id_text}?incidents_before={}", oldest.seq));
    let events_more = (events.len() == EVENTS_PER_PAGE)
        .then(|| events.last())
        .flatten()
        .map(|oldest| format!("/monitors/{id_text}?before={}", oldest.seq));
    render(
        StatusCode::OK,
        &MonitorPage {
            page,
            id: id_text,
            name: monitor.config.name.clone(),
            tags: monitor.config.tags.clone(),
            paused: monitor.status == Status::Paused,
            state: state_view,
            value_chart: line_chart(&values, "", now),
            value_count: values.len(),
            extra_charts: line_chart(&run_durations, "s", now)
                .map(|chart| {
                    (
                        format!("Run durations · the newest {}", run_durations.len()),
                        chart,
                    )
                })
                .into_iter()
                .collect(),
            push_url,
            snippets,
            incidents: incidents
                .iter()
                .map(|incident| IncidentView {
                    started: When::new(incident.started_at, now),
                    reason: incident
                        .reason
                        .map_or("down", |reason| reason.as_str())
                        .to_owned(),
                    lasted: duration(incident.duration_ms(now)),
                    ongoing: incident.ended.is_none(),
                    ended_by: incident.ended.map(|(_, status)| status.as_str()),
                })
                .collect(),
            incidents_before: query.incidents_before,
            incidents_more,
            events: events
                .iter()
                .map(|recorded| {
                    let shown = event_json(recorded);
                    EventView {
                        at: When::new(recorded.at, now),
                        kind: shown
                            .get("kind")
                            .and_then(Value::as_str)
                            .unwrap_or("event")
                            .to_owned(),
                        detail: details(&shown),
                    }
                })
                .collect(),
            events_before: query.before,
            events_more,
            fields: flatten(&api),
        },
    )
}

/// An event's fields but `seq`, `at` and `kind`, as `name=value` text: whatever an
/// event carries shows, also kinds added later.
fn details(event: &Value) -> String {
    let Value::Object(fields) = event else {
        return String::new();
    };
    fields
        .iter()
        .filter(|(name, value)| !matches!(name.as_str(), "seq" | "at" | "kind") && !value.is_null())
        .map(|(name, value)| match value {
            Value::String(text) => format!("{name}: {text}"),
            other => format!("{name}: {other}"),
        })
        .collect::<Vec<_>>()
        .join(" · ")
}

/// A monitor's API fields as (name, text), in the API's order: every field shows,
/// also those added later.
fn flatten(api: &Value) -> Vec<(String, String)> {
    let Value::Object(fields) = api else {
        return Vec::new();
    };
    fields
        .iter()
        .map(|(name, value)| {
            let text = match value {
                Value::String(text) => text.clone(),
                Value::Null => "null".to_owned(),
                other => other.to_string(),
            };
            (name.clone(), text)
        })
        .collect()
}

fn state_view(
    state: &AppState,
    monitor: &Monitor,
    read: &crate::store::timeline::Timeline,
    now: Timestamp,
) -> StateView {
    let last = read.transitions.last();
    let since = last.map(|transition| When::new(transition.at, now));
    let deadline = monitor.next_deadline();
    let why = match monitor.status {
        Status::Down => {
            let reason = view::down_reason(last.and_then(|transition| transition.reason), monitor);
            match &monitor.last_msg {
                Some(msg)
                    if last.and_then(|transition| transition.reason)
                        == Some(crate::domain::event::DownReason::Manual) =>
                {
                    format!("Down: {reason} (message: “{}”).", msg.as_str())
                }
                _ if monitor.config.recovery_threshold > 1 => format!(
                    "Down: {reason}. {} successes in a row recover it.",
                    monitor.config.recovery_threshold
                ),
                _ => format!("Down: {reason}. The next success recovers it."),
            }
        }
        Status::Pending => match deadline {
            Some(at) => format!(
                "Waiting for the first heartbeat; down {} unless one arrives.",
                view::relative(at, now)
            ),
            None => "Waiting for the first heartbeat.".to_owned(),
        },
        Status::Up => "Heartbeats arrive in time.".to_owned(),
        Status::Paused => {
            "Paused: no timeout, no alerts; heartbeats are still recorded.".to_owned()
        }
    };
    let uptimes = DEFAULT_WINDOWS
        .iter()
        .map(|(name, seconds)| {
            let spent = timeline::uptime(&read.transitions, Window::last(*seconds, now), None);
            UptimeView {
                name: format!("uptime {name}"),
                percent: percent(&spent),
                class: uptime_class(&spent),
                down: if spent.down_ms > 0 {
                    duration(spent.down_ms)
                } else {
                    String::new()
                },
            }
        })
        .collect();
    StateView {
        status: monitor.status.as_str(),
        status_label: status_label(monitor.status),
        since,
        why,
        strip: BeatView::strip(&read.beats, PAGE_STRIP),
        last_heartbeat: monitor.last_heartbeat_at.map(|at| When::new(at, now)),
        last_msg: monitor.last_msg.as_ref().map(|msg| msg.as_str().to_owned()),
        last_value: monitor.last_value.map(|value| value.to_string()),
        next_deadline: deadline.map(|at| When::new(at, now)),
        timeout: seconds_text(monitor.config.timeout_seconds),
        interval: seconds_text(monitor.config.interval_seconds),
        schedule: monitor.config.schedule.as_ref().map(|schedule| {
            format!(
                "{} ({}), {} grace",
                schedule.expression,
                schedule.timezone,
                seconds_text(schedule.grace_seconds)
            )
        }),
        next_due: monitor.next_due_at().map(|at| When::new(at, now)),
        open_runs: monitor
            .runs
            .first()
            .map(|oldest| (monitor.runs.len(), When::new(oldest.started_at, now))),
        last_run: monitor.last_run.as_deref().map(|run| LastRunView {
            outcome: match run.outcome {
                RunOutcome::Success => "success",
                RunOutcome::Failure(_) => "failure",
            },
            ended: When::new(run.ended_at, now),
            duration: run
                .started_at
                .map(|started| match started.millis_until(run.ended_at) {
                    ms @ 0..1000 => format!("{ms} ms"),
                    ms => duration(ms),
                })
                .unwrap_or_default(),
            exit_status: run.exit_status,
            output: run.output_excerpt.clone(),
        }),
        counting: counting(monitor),
        maintenance_until: monitor.maintenance_until(now).map(|at| When::new(at, now)),
        channels: monitor
            .config
            .channels
            .iter()
            .map(|id| {
                let name = state
                    .channels
                    .get(*id)
                    .map_or_else(|| id.to_string(), |channel| channel.name);
                (id.to_string(), name)
            })
            .collect(),
        uptimes,
    }
}

/// The threshold counter that is counting, in words: failures toward down while up or
/// pending, successes toward up while down.
fn counting(monitor: &Monitor) -> Option<String> {
    let config = &monitor.config;
    match monitor.status {
        Status::Down if config.recovery_threshold > 1 && monitor.consecutive_successes > 0 => {
            Some(format!(
                "{} of {} successes in a row before up",
                monitor.consecutive_successes, config.recovery_threshold
            ))
        }
        Status::Up | Status::Pending
            if config.failure_threshold > 1 && monitor.consecutive_failures > 0 =>
        {
            Some(format!(
                "{} of {} failures in a row before down",
                monitor.consecutive_failures, config.failure_threshold
            ))
        }
        _ => None,
    }
}

/// A channel to tick in the monitor form.
pub struct ChannelChoice {
    pub id: String,
    pub name: String,
    pub kind: &'static str,
    pub checked: bool,
}

/// What the monitor form shows, as typed.
#[derive(Default)]
pub struct MonitorFormValues {
    pub name: String,
    pub timeout: String,
    pub interval: String,
    pub tags: String,
    pub channels: Vec<String>,
}

#[derive(Template)]
#[template(path = "monitor_form.html")]
struct MonitorForm {
    page: Page,
    heading: String,
    action: String,
    submit: &'static str,
    back: String,
    error: Option<String>,
    form: MonitorFormValues,
    channels: Vec<ChannelChoice>,
}

fn channel_choices(state: &AppState, ticked: &[String]) -> Vec<ChannelChoice> {
    state
        .channels
        .list()
        .into_iter()
        .map(|channel| {
            let id = channel.id.to_string();
            ChannelChoice {
                checked: ticked.contains(&id),
                id,
                name: channel.name,
                kind: channel.kind.name(),
            }
        })
        .collect()
}

/// The form's values as the API's fields: durations in seconds, tags and channels as
/// arrays. A duration that cannot be read is an error naming its field.
fn api_fields(values: &MonitorFormValues, editing: bool) -> Result<Map<String, Value>, String> {
    let mut fields = Map::new();
    fields.insert("name".to_owned(), json!(values.name));
    fields.insert(
        "timeout_seconds".to_owned(),
        json!(form_seconds("timeout", &values.timeout)?),
    );
    match values.interval.trim() {
        "" if editing => {}
        "" => {
            fields.insert("interval_seconds".to_owned(), Value::Null);
        }
        text => {
            fields.insert(
                "interval_seconds".to_owned(),
                json!(form_seconds("interval", text)?),
            );
        }
    }
    let tags: Vec<&str> = values
        .tags
        .split(',')
        .map(str::trim)
        .filter(|tag| !tag.is_empty())
        .collect();
    fields.insert("tags".to_owned(), json!(tags));
    fields.insert("channels".to_owned(), json!(values.channels));
    Ok(fields)
}

/// Whole seconds from `90`, `90s`, `5m`, `1h 30m`, `1d`.
fn form_seconds(field: &str, text: &str) -> Result<u64, String> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(seconds);
    }
    humantime::parse_duration(text)
        .map(|duration| duration.as_secs())
        .map_err(|_| format!("{field}: {text:?} is not a duration such as 90s, 5m, 2h or 1d"))
}

fn form_values(fields: &[(String, String)]) -> MonitorFormValues {
    MonitorFormValues {
        name: field(fields, "name").unwrap_or_default(),
        timeout: field(fields, "timeout").unwrap_or_default(),
        interval: field(fields, "interval").unwrap_or_default(),
        tags: field(fields, "tags").unwrap_or_default(),
        channels: fields
            .iter()
            .filter(|(name, _)| name == "channels")
            .map(|(_, value)| value.clone())
            .collect(),
    }
}

/// `GET /monitors/new`.
pub async fn new_form(
    State(state): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Extension(viewer): Extension<Viewer>,
) -> Response {
    let values = MonitorFormValues {
        timeout: "5m".to_owned(),
        ..MonitorFormValues::default()
    };
    monitor_form(&state, &web, &viewer, None, values, None, StatusCode::OK).await
}

#[allow(clippy::too_many_arguments)] // The form's parts; one private helper.
async fn monitor_form(
    state: &AppState,
    web: &Web,
    viewer: &Viewer,
    editing: Option<&Monitor>,
    form: MonitorFormValues,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let (heading, action, submit, back) = match editing {
        Some(monitor) => (
            format!("Edit {}", monitor.config.name),
            format!("/monitors/{}/edit", monitor.id),
            "Save",
            format!("/monitors/{}", monitor.id),
        ),
        None => (
            "New monitor".to_owned(),
            "/monitors/new".to_owned(),
            "Create monitor",
            "/".to_owned(),
        ),
    };
    let channels = channel_choices(state, &form.channels);
    render(
        status,
        &MonitorForm {
            page: Page::new(heading.clone(), "monitors", viewer, web.counts().await),
            heading,
            action,
            submit,
            back,
            error,
            form,
            channels,
        },
    )
}

/// `POST /monitors/new`.
pub async fn create(
    State(state): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Extension(viewer): Extension<Viewer>,
    body: Bytes,
) -> Response {
    let values = form_values(&form(&body));
    let config = api_fields(&values, false)
        .map_err(ApiError::Unprocessable)
        .and_then(|fields| config_from_fields(&fields, state.clock.now()));
    let created = match config {
        Ok((config, token)) => state
            .registry
            .create_with_token(config, token)
            .await
            .map_err(ApiError::from),
        Err(error) => Err(error),
    };
    match created {
        Ok(monitor) => {
            web.board.invalidate().await;
            let mut api = monitor_json(&state, &monitor);
            redact_credentials(viewer.principal, &mut api);
            web.sessions.flash(
                &viewer,
                Flash {
                    ok: true,
                    text: format!("Created “{}”. Its push URL:", monitor.config.name),
                    copy: api
                        .get("push_url")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                },
            );
            see_other(&format!("/monitors/{}", monitor.id))
        }
        Err(error) => {
            monitor_form(
                &state,
                &web,
                &viewer,
                None,
                values,
                Some(error.to_string()),
                error.status(),
            )
            .await
        }
    }
}

/// `GET /monitors/{id}/edit`.
pub async fn edit_form(
    State(state): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Extension(viewer): Extension<Viewer>,
    PathParam(id): PathParam,
) -> Response {
    let monitor = match find(&state, &web, &viewer, &id).await {
        Ok(monitor) => monitor,
        Err(response) => return response,
    };
    let values = MonitorFormValues {
        name: monitor.config.name.clone(),
        timeout: seconds_text(monitor.config.timeout_seconds),
        interval: seconds_text(monitor.config.interval_seconds),
        tags: monitor.config.tags.join(", "),
        channels: monitor
            .config
            .channels
            .iter()
            .map(ToString::to_string)
            .collect(),
    };
    monitor_form(
        &state,
        &web,
        &viewer,
        Some(&monitor),
        values,
        None,
        StatusCode::OK,
    )
    .await
}

/// `POST /monitors/{id}/edit`.
pub async fn edit(
    State(state): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Extension(viewer): Extension<Viewer>,
    PathParam(id): PathParam,
    body: Bytes,
) -> Response {
    let monitor = match find(&state, &web, &viewer, &id).await {
        Ok(monitor) => monitor,
        Err(response) => return response,
    };
    let values = form_values(&form(&body));
    let patch = api_fields(&values, true)
        .map_err(ApiError::Unprocessable)
        .and_then(|fields| patch_from_fields(&fields, state.clock.now()));
    let changed = match patch {
        Ok(patch) => state
            .registry
            .execute(monitor.id, Command::Update(patch))
            .await
            .map_err(ApiError::from),
        Err(error) => Err(error),
    };
    match changed {
        Ok(changed) => {
            web.board.invalidate().await;
            done(&web, &viewer, &changed, "Saved.")
        }
        Err(error) => {
            monitor_form(
                &state,
                &web,
                &viewer,
                Some(&monitor),
                values,
                Some(error.to_string()),
                error.status(),
            )
            .await
        }
    }
}

/// Back to the monitor's page with a message.
fn done(web: &Web, viewer: &Viewer, monitor: &Monitor, text: &str) -> Response {
    web.sessions.flash(
        viewer,
        Flash {
            ok: true,
            text: text.to_owned(),
            copy: None,
        },
    );
    see_other(&format!("/monitors/{}", monitor.id))
}

/// Runs `command` on the monitor `id` and goes back to its page.
async fn act(
    state: &AppState,
    web: &Web,
    viewer: &Viewer,
    id: &str,
    command: Command,
    text: &str,
) -> Response {
    let Some(id) = MonitorId::parse(id) else {
        return not_found(web, viewer).await;
    };
    match state.registry.execute(id, command).await {
        Ok(monitor) => {
            web.board.invalidate().await;
            done(web, viewer, &monitor, text)
        }
        Err(RegistryError::NotFound) => not_found(web, viewer).await,
        Err(error) => failed(web, viewer, error.into()).await,
    }
}

/// `POST /monitors/{id}/pause`.
pub async fn pause(
    State(state): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Extension(viewer): Extension<Viewer>,
    PathParam(id): PathParam,
) -> Response {
    act(
        &state,
        &web,
        &viewer,
        &id,
        Command::Pause,
        "Paused: no timeout, no alerts.",
    )
    .await
}

/// `POST /monitors/{id}/resume`.
pub async fn resume(
    State(state): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Extension(viewer): Extension<Viewer>,
    PathParam(id): PathParam,
) -> Response {
    act(
        &state,
        &web,
        &viewer,
        &id,
        Command::Resume,
        "Resumed: waiting for a heartbeat within the timeout.",
    )
    .await
}

#[derive(Template)]
#[template(path = "confirm.html")]
struct Confirm {
    page: Page,
    heading: String,
    text: String,
    action: String,
    submit: &'static str,
    back: String,
    danger: bool,
}

/// `GET /monitors/{id}/rotate-token`: what rotating means, and the button.
pub async fn rotate_confirm(
    State(state): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Extension(viewer): Extension<Viewer>,
    PathParam(id): PathParam,
) -> Response {
    let monitor = match find(&state, &web, &viewer, &id).await {
        Ok(monitor) => monitor,
        Err(response) => return response,
    };
    confirm(
        &web,
        &viewer,
        &monitor,
        "Rotate the push token?",
        "The monitor gets a new push URL, shown on the next page. The current one stops \
         working at once: every job pushing to it must be changed, or the monitor goes down \
         at its next deadline.",
        "rotate-token",
        "Rotate token",
        false,
    )
    .await
}

/// `POST /monitors/{id}/rotate-token`: a new token; the next page shows its URL.
pub async fn rotate(
    State(state): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Extension(viewer): Extension<Viewer>,
    PathParam(id): PathParam,
) -> Response {
    let Some(id) = MonitorId::parse(&id) else {
        return not_found(&web, &viewer).await;
    };
    match state
        .registry
        .execute(id, Command::RotateToken(new_push_token()))
        .await
    {
        Ok(monitor) => {
            let api = monitor_json(&state, &monitor);
            web.sessions.flash(
                &viewer,
                Flash {
                    ok: true,
                    text: "Token rotated. The old push URL no longer works; the new one:"
                        .to_owned(),
                    copy: api
                        .get("push_url")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                },
            );
            see_other(&format!("/monitors/{}", monitor.id))
        }
        Err(RegistryError::NotFound) => not_found(&web, &viewer).await,
        Err(error) => failed(&web, &viewer, error.into()).await,
    }
}

/// `GET /monitors/{id}/delete`.
pub async fn delete_confirm(
    State(state): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Extension(viewer): Extension<Viewer>,
    PathParam(id): PathParam,
) -> Response {
    let monitor = match find(&state, &web, &viewer, &id).await {
        Ok(monitor) => monitor,
        Err(response) => return response,
    };
    confirm(
        &web,
        &viewer,
        &monitor,
        &format!("Delete “{}”?", monitor.config.name),
        "Its push URL stops working at once and its history is no longer shown. Alerts it \
         still owes are delivered.",
        "delete",
        "Delete monitor",
        true,
    )
    .await
}

#[allow(clippy::too_many_arguments)] // The page's parts; one private helper.
async fn confirm(
    web: &Web,
    viewer: &Viewer,
    monitor: &Monitor,
    heading: &str,
    text: &str,
    action: &str,
    submit: &'static str,
    danger: bool,
) -> Response {
    render(
        StatusCode::OK,
        &Confirm {
            page: Page::new(heading, "monitors", viewer, web.counts().await),
            heading: heading.to_owned(),
            text: text.to_owned(),
            action: format!("/monitors/{}/{action}", monitor.id),
            submit,
            back: format!("/monitors/{}", monitor.id),
            danger,
        },
    )
}

/// `POST /monitors/{id}/delete`.
pub async fn delete(
    State(state): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Extension(viewer): Extension<Viewer>,
    PathParam(id): PathParam,
) -> Response {
    let Some(id) = MonitorId::parse(&id) else {
        return not_found(&web, &viewer).await;
    };
    match state.registry.execute(id, Command::Delete).await {
        Ok(monitor) => {
            web.board.invalidate().await;
            web.sessions.flash(
                &viewer,
                Flash {
                    ok: true,
                    text: format!("Deleted “{}”.", monitor.config.name),
                    copy: None,
                },
            );
            see_other("/")
        }
        Err(RegistryError::NotFound) => not_found(&web, &viewer).await,
        Err(error) => failed(&web, &viewer, error.into()).await,
    }
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
            channels: vec!["c1".to_owned()],
        };
        let fields = api_fields(&values, false).expect("fields");
        assert_eq!(fields["timeout_seconds"], 90_000);
        assert_eq!(fields["interval_seconds"], Value::Null);
        assert_eq!(fields["tags"], json!(["prod", "db"]));
        assert_eq!(fields["channels"], json!(["c1"]));
        let edited = api_fields(&values, true).expect("fields");
        assert!(!edited.contains_key("interval_seconds"), "kept as it is");
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
