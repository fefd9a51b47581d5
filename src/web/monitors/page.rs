//! A monitor's page: its state and why, runs, charts, uptime, incidents and history.

use super::*;

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
    /// "acknowledged" or "muted until …" while muted.
    pub muted: Option<String>,
    /// (id, name) of each channel alerted.
    pub channels: Vec<(String, String)>,
    pub uptimes: Vec<UptimeView>,
    /// A fleet's instances (`None` for an ordinary monitor).
    pub fleet: Option<FleetView>,
    /// The monitors it depends on: (id, name; the id again if it is gone).
    pub parents: Vec<(String, String)>,
    /// An alert held while a parent is down: (`down` or `up`, the parent's id, since).
    pub held_alert: Option<(&'static str, String, When)>,
}

/// A fleet's instances as the state card shows them.
pub struct FleetView {
    pub min_instances: u32,
    pub reporting: usize,
    /// The first [`FLEET_SHOWN`] instances by name.
    pub instances: Vec<InstanceView>,
    /// How many more there are.
    pub more: usize,
}

pub struct InstanceView {
    pub name: String,
    pub last_seen: When,
    pub reporting: bool,
    /// What it last reported: `up` or `down`.
    pub status: &'static str,
}

/// The most instances the page lists (the API has them all).
const FLEET_SHOWN: usize = 100;

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
    let mut parent_names = Vec::with_capacity(monitor.config.parents.len());
    for parent in &monitor.config.parents {
        parent_names.push(match state.registry.current_state(*parent).await {
            Ok(found) => found.config.name.clone(),
            Err(_) => parent.to_string(),
        });
    }
    let state_view = state_view(&state, &monitor, &read, now, parent_names);
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
    parent_names: Vec<String>,
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
        Status::Unknown => match deadline {
            Some(at) => format!(
                "Unknown: its deadline passed while heartbeat arrivals had collapsed \
                 everywhere (the guard held it, nothing was alerted). Down {} unless a \
                 heartbeat arrives.",
                view::relative(at, now)
            ),
            None => "Unknown: its deadline passed while heartbeat arrivals had collapsed \
                     everywhere (the guard holds it, nothing was alerted). Its next \
                     heartbeat makes it up."
                .to_owned(),
        },
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
        muted: crate::web::view::mute_mark(monitor, now),
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
        fleet: monitor.config.min_instances.map(|min_instances| FleetView {
            min_instances,
            reporting: monitor.instances_reporting(now),
            instances: monitor
                .instances
                .iter()
                .take(FLEET_SHOWN)
                .map(|instance| InstanceView {
                    name: instance.name.to_string(),
                    last_seen: When::new(instance.last_seen, now),
                    reporting: monitor.instance_reporting(instance, now),
                    status: instance.status.as_str(),
                })
                .collect(),
            more: monitor.instances.len().saturating_sub(FLEET_SHOWN),
        }),
        parents: monitor
            .config
            .parents
            .iter()
            .map(ToString::to_string)
            .zip(parent_names)
            .collect(),
        held_alert: monitor.held_alert.map(|held| {
            let alert = match held.notice {
                crate::domain::event::Notice::Down(_) => "down",
                crate::domain::event::Notice::Up => "up",
            };
            (alert, held.parent.to_string(), When::new(held.since, now))
        }),
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
