//! Operations endpoints: `/healthz`, `/readyz`, `/metrics` (`docs/metrics.md`).

use std::fmt::Write as _;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::domain::machine::{Monitor, Status};
use crate::prometheus;

use super::error::ApiError;
use super::{AppState, Phase};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

async fn readyz(State(state): State<AppState>) -> Response {
    let not_ready = match state.phase() {
        Phase::Starting => Some("starting: monitors are being rebuilt"),
        Phase::Draining => Some("draining: shutting down"),
        Phase::Ready if !state.store.is_writable() => Some("storage cannot write"),
        Phase::Ready if state.registry.cluster_catching_up() => {
            Some("a shard taken over is being folded up to its takeover")
        }
        Phase::Ready => None,
    };
    match not_ready {
        None => Json(json!({ "status": "ready" })).into_response(),
        Some(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "error": format!("not ready: {reason}") })),
        )
            .into_response(),
    }
}

/// The exporter's series, then the per-monitor families rendered straight from the
/// monitors' stored states (cheaper at 100k monitors than 100k registered gauges).
async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let process_cpu = prometheus::collect_process();
    metrics::gauge!(prometheus::MONITOR_ACTORS).set(state.registry.directory().len() as f64);
    metrics::gauge!(prometheus::ACTOR_PENDING_MESSAGES)
        .set(state.registry.pending_messages() as f64);
    // Reading and rendering 100k monitors takes a while: keep it off the async workers
    // so ingestion is not stalled behind a scrape.
    let scrape_state = state.clone();
    let text = tokio::task::spawn_blocking(move || {
        let monitors = scrape_state.store.load_monitors();
        let mut text = scrape_state.metrics.render();
        process_cpu.render(&mut text);
        match monitors {
            Ok(monitors) => {
                let per_monitor = scrape_state
                    .monitor_metrics
                    .then_some(&*scrape_state.metrics_labels);
                let now = scrape_state.clock.now();
                render_monitor_families(&mut text, &monitors, per_monitor, now);
            }
            // During a storage fault the service series are what an operator needs:
            // serve them, without the families read from the store.
            Err(error) => tracing::warn!(%error, "scrape without per-monitor series"),
        }
        text
    })
    .await
    .map_err(|error| ApiError::Internal(format!("scrape task failed: {error}")))?;
    let mut response = text.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    Ok(response)
}

/// `pushmon_monitors` and `pushmon_monitors_muted`, then, unless `per_monitor` is `None`, the per-monitor
/// families, each series with the monitor's id and name and the label keys
/// `per_monitor` names (key, Prometheus name).
fn render_monitor_families(
    text: &mut String,
    monitors: &[Monitor],
    per_monitor: Option<&[(String, String)]>,
    now: crate::domain::ids::Timestamp,
) {
    let mut counts = [0usize; Status::ALL.len()];
    for monitor in monitors {
        if let Some(index) = Status::ALL
            .iter()
            .position(|status| *status == monitor.status)
        {
            counts[index] += 1;
        }
    }
    header_lines(text, prometheus::MONITORS, "Monitors by current status");
    for (status, count) in Status::ALL.iter().zip(counts) {
        let _ = writeln!(
            text,
            "{}{{status=\"{}\"}} {count}",
            prometheus::MONITORS,
            status.as_str()
        );
    }
    let muted = monitors
        .iter()
        .filter(|monitor| monitor.mute.is_some())
        .count();
    header_lines(text, prometheus::MONITORS_MUTED, "Monitors muted now");
    let _ = writeln!(text, "{} {muted}", prometheus::MONITORS_MUTED);
    let Some(label_keys) = per_monitor else {
        return;
    };
    // Each monitor's labels, written once for all the families.
    let all_labels: Vec<String> = monitors
        .iter()
        .map(|monitor| labels(monitor, label_keys))
        .collect();
    let labels = |index: usize| all_labels[index].as_str();

    header_lines(
        text,
        "pushmon_monitor_up",
        "1 if the monitor is up, 0 if down; absent while pending or paused",
    );
    for (index, monitor) in monitors.iter().enumerate() {
        let up = match monitor.status {
            Status::Up => 1,
            Status::Down => 0,
            Status::Pending | Status::Paused | Status::Unknown => continue,
        };
        let _ = writeln!(text, "pushmon_monitor_up{} {up}", labels(index));
    }

    header_lines(
        text,
        "pushmon_monitor_status",
        "The monitor's status as a state set: 1 for its current status",
    );
    for (index, monitor) in monitors.iter().enumerate() {
        let labels = labels(index);
        let inner = &labels[1..labels.len() - 1];
        for status in Status::ALL {
            let value = u8::from(status == monitor.status);
            let _ = writeln!(
                text,
                "pushmon_monitor_status{{{inner},status=\"{}\"}} {value}",
                status.as_str()
            );
        }
    }

    header_lines(
        text,
        "pushmon_monitor_last_heartbeat_timestamp_seconds",
        "Unix time of the monitor's last heartbeat",
    );
    for (index, monitor) in monitors.iter().enumerate() {
        if let Some(at) = monitor.last_heartbeat_at {
            let seconds = at.as_millis() as f64 / 1000.0;
            let _ = writeln!(
                text,
                "pushmon_monitor_last_heartbeat_timestamp_seconds{} {seconds}",
                labels(index)
            );
        }
    }

    header_lines(
        text,
        "pushmon_monitor_value",
        "The last value a heartbeat reported",
    );
    for (index, monitor) in monitors.iter().enumerate() {
        if let Some(value) = monitor.last_value {
            let _ = writeln!(text, "pushmon_monitor_value{} {value}", labels(index));
        }
    }

    header_lines(
        text,
        "pushmon_monitor_last_run_duration_seconds",
        "How long the monitor's last run took, from its start to its end",
    );
    for (index, monitor) in monitors.iter().enumerate() {
        if let Some(millis) = monitor
            .last_run
            .as_deref()
            .and_then(|run| run.duration_ms())
        {
            let seconds = millis as f64 / 1000.0;
            let _ = writeln!(
                text,
                "pushmon_monitor_last_run_duration_seconds{} {seconds}",
                labels(index)
            );
        }
    }

    header_lines(
        text,
        "pushmon_monitor_last_success_timestamp_seconds",
        "Unix time of the monitor's last success",
    );
    for (index, monitor) in monitors.iter().enumerate() {
        if let Some(at) = monitor.last_success_at {
            let _ = writeln!(
                text,
                "pushmon_monitor_last_success_timestamp_seconds{} {}",
                labels(index),
                at.as_millis() as f64 / 1000.0
            );
        }
    }

    render_fleet_families(text, monitors, &all_labels, now);

    header_lines(
        text,
        "pushmon_monitor_next_deadline_timestamp_seconds",
        "Unix time at which the monitor fails if nothing arrives",
    );
    for (index, monitor) in monitors.iter().enumerate() {
        if let Some(at) = monitor.next_deadline() {
            let _ = writeln!(
                text,
                "pushmon_monitor_next_deadline_timestamp_seconds{} {}",
                labels(index),
                at.as_millis() as f64 / 1000.0
            );
        }
    }
}

/// The fleets' families: how many instances each has reporting, and when each
/// instance last reported, at most [`MAX_INSTANCE_SERIES`] instance series in all
/// (fleets in the store's order, instances by name), so the `instance` label stays
/// bounded whatever the fleets hold.
fn render_fleet_families(
    text: &mut String,
    monitors: &[Monitor],
    all_labels: &[String],
    now: crate::domain::ids::Timestamp,
) {
    header_lines(
        text,
        prometheus::MONITOR_INSTANCES_REPORTING,
        "A fleet monitor's instances that reported a success within its timeout",
    );
    for (index, monitor) in monitors.iter().enumerate() {
        if monitor.is_fleet() {
            let _ = writeln!(
                text,
                "{}{} {}",
                prometheus::MONITOR_INSTANCES_REPORTING,
                all_labels[index],
                monitor.instances_reporting(now)
            );
        }
    }
    header_lines(
        text,
        prometheus::INSTANCE_LAST_SEEN,
        "Unix time a fleet monitor's instance last reported",
    );
    let mut written = 0;
    for (index, monitor) in monitors.iter().enumerate() {
        if !monitor.is_fleet() {
            continue;
        }
        let labels = &all_labels[index];
        let inner = &labels[1..labels.len() - 1];
        for instance in &monitor.instances {
            if written == MAX_INSTANCE_SERIES {
                return;
            }
            written += 1;
            // Instance names need no escaping: `InstanceName` allows none of `\`, `"`
            // or a line break.
            let _ = writeln!(
                text,
                "{}{{{inner},instance=\"{}\"}} {}",
                prometheus::INSTANCE_LAST_SEEN,
                instance.name,
                instance.last_seen.as_millis() as f64 / 1000.0
            );
        }
    }
}

/// The most `pushmon_instance_last_seen_timestamp_seconds` series one scrape has.
pub const MAX_INSTANCE_SERIES: usize = 10_000;

fn header_lines(text: &mut String, name: &str, help: &str) {
    let _ = writeln!(text, "# HELP {name} {help}");
    let _ = writeln!(text, "# TYPE {name} gauge");
}

/// `{id="…",name="…",label_…="…"}` with the name escaped as the text format
/// requires, then each of `label_keys` (empty when the monitor lacks it; label values
/// need no escaping: `domain::labels` allows none of `\`, `"` or a line break). Never
/// the push token.
fn labels(monitor: &Monitor, label_keys: &[(String, String)]) -> String {
    let mut name = String::with_capacity(monitor.config.name.len());
    for character in monitor.config.name.chars() {
        match character {
            '\\' => name.push_str("\\\\"),
            '"' => name.push_str("\\\""),
            '\n' => name.push_str("\\n"),
            other => name.push(other),
        }
    }
    let mut text = format!("{{id=\"{}\",name=\"{name}\"", monitor.id);
    for (key, label) in label_keys {
        let value = monitor.config.labels.get(key).unwrap_or("");
        let _ = write!(text, ",{label}=\"{value}\"");
    }
    text.push('}');
    text
}
