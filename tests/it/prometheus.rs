//! Prometheus-native observability (`docs/metrics.md`, issue 4): the exposition passes
//! `promtool check metrics`, per-monitor series follow their monitors, and a real
//! Prometheus server scraping pushmon sees a monitor go from up to down.
//!
//! Needs `prometheus` and `promtool` (Debian's `prometheus` package, installed by
//! `scripts/test.sh`); without them these tests fail, they do not skip.

use std::process::Stdio;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::time::{Instant, sleep};

use crate::support::{Status, spawn_app, spawn_app_with};

fn series_line<'a>(text: &'a str, name: &str, id: &str) -> Option<&'a str> {
    text.lines().find(|line| {
        line.starts_with(&format!("{name}{{")) && line.contains(&format!("id=\"{id}\""))
    })
}

#[tokio::test]
async fn the_exposition_passes_promtool_and_has_every_spec_series_from_start() {
    let app = spawn_app().await;
    let text = app.metrics().await;
    for series in [
        // Other tests in this process share the recorder, so counters may not be 0.
        "pushmon_heartbeats_total{status=\"up\"} ",
        "pushmon_heartbeats_total{status=\"down\"} ",
        "pushmon_heartbeats_rejected_total{reason=\"unknown_token\"} ",
        "pushmon_heartbeats_rejected_total{reason=\"rate_limited\"} ",
        "pushmon_heartbeats_rejected_total{reason=\"ip_rate_limited\"} ",
        "pushmon_monitors{status=\"pending\"} 0",
        "pushmon_monitors{status=\"paused\"} 0",
        "pushmon_alerts_total{event=\"down\",result=\"success\"} ",
        "pushmon_alerts_total{event=\"up\",result=\"failure\"} ",
        "pushmon_outbox_depth ",
        "pushmon_alert_digests_total{result=\"success\"} ",
        "pushmon_alert_digest_alerts_total{result=\"failure\"} ",
        "process_resident_memory_bytes ",
        "pushmon_monitor_actors ",
    ] {
        assert!(text.contains(series), "missing {series} in:\n{text}");
    }
    let monitor = app.create_monitor("name with \"quotes\" and \\", 60).await;
    app.push_ok(&monitor.push_token, &[("value", "2.5")]).await;
    let text = app.metrics().await;
    for histogram in [
        "pushmon_http_request_duration_seconds_bucket{",
        "pushmon_store_commit_duration_seconds_bucket{",
        "pushmon_store_append_duration_seconds_bucket{",
        "pushmon_store_batch_events_bucket{",
    ] {
        assert!(text.contains(histogram), "missing {histogram}");
    }
    assert!(
        !text.contains(&monitor.push_token),
        "a push token leaked into metrics"
    );

    let mut promtool = tokio::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool must be installed (scripts/test.sh installs Debian's prometheus)");
    let mut stdin = promtool.stdin.take().unwrap();
    stdin.write_all(text.as_bytes()).await.unwrap();
    drop(stdin);
    let output = promtool.wait_with_output().await.unwrap();
    assert!(
        output.status.success(),
        "promtool check metrics failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn per_monitor_series_appear_change_and_disappear_with_their_monitors() {
    let app = spawn_app().await;
    let monitor = app.create_monitor("series", 1).await;
    let text = app.metrics().await;
    assert!(
        series_line(&text, "pushmon_monitor_up", &monitor.id).is_none(),
        "pending has no up/down"
    );
    assert!(series_line(&text, "pushmon_monitor_status", &monitor.id).is_some());

    app.push_ok(&monitor.push_token, &[("value", "42")]).await;
    let text = app.metrics().await;
    assert!(
        series_line(&text, "pushmon_monitor_up", &monitor.id)
            .is_some_and(|line| line.ends_with(" 1"))
    );
    assert!(
        series_line(&text, "pushmon_monitor_value", &monitor.id)
            .is_some_and(|line| line.ends_with(" 42"))
    );
    assert!(
        series_line(
            &text,
            "pushmon_monitor_last_heartbeat_timestamp_seconds",
            &monitor.id
        )
        .is_some()
    );
    assert!(text.contains(&format!(
        "pushmon_monitor_status{{id=\"{}\",name=\"series\",status=\"up\"}} 1",
        monitor.id
    )));

    app.wait_for_status(&monitor.id, Status::Down, Duration::from_secs(5))
        .await;
    let text = app.metrics().await;
    assert!(
        text.contains("pushmon_detection_lag_seconds_bucket{le=\"0.5\"}"),
        "a timeout records its detection lag as a histogram"
    );
    assert!(
        series_line(&text, "pushmon_monitor_up", &monitor.id)
            .is_some_and(|line| line.ends_with(" 0"))
    );
    assert!(
        text.contains("pushmon_monitors{status=\"down\"} 1"),
        "{text}"
    );

    let deleted = app.delete_monitor(&monitor.id).await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let text = app.metrics().await;
    assert!(
        !text.contains(&monitor.id),
        "series of a deleted monitor remain:\n{text}"
    );
}

#[tokio::test]
async fn per_monitor_series_can_be_switched_off() {
    let app = spawn_app_with(|config| config.monitor_metrics = false).await;
    let monitor = app.create_monitor("quiet", 60).await;
    app.push_ok(&monitor.push_token, &[]).await;
    let text = app.metrics().await;
    assert!(!text.contains(&monitor.id), "{text}");
    assert!(text.contains("pushmon_monitors{status=\"up\"} 1"), "{text}");
}

/// Prometheus under test: its own temp config and storage, on a free loopback port.
struct PrometheusServer {
    base_url: String,
    _dir: tempfile::TempDir,
    _child: tokio::process::Child,
}

impl PrometheusServer {
    async fn start(target: &str) -> PrometheusServer {
        let dir = tempfile::tempdir().unwrap();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: pushmon\n    static_configs:\n      - targets: ['{target}']\n"
        );
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config).unwrap();
        // Prometheus binds the port itself, so find a free one first.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .unwrap()
            .port();
        let child = tokio::process::Command::new("prometheus")
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("prometheus must be installed (scripts/test.sh installs Debian's prometheus)");
        let server = PrometheusServer {
            base_url: format!("http://127.0.0.1:{port}"),
            _dir: dir,
            _child: child,
        };
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = client
                .get(format!("{}/-/ready", server.base_url))
                .send()
                .await;
            if ready.is_ok_and(|response| response.status().is_success()) {
                return server;
            }
            assert!(Instant::now() < deadline, "prometheus did not become ready");
            sleep(Duration::from_millis(100)).await;
        }
    }

    /// The value of an instant query's single result, if any.
    async fn query_value(&self, query: &str) -> Option<String> {
        let body: Value = reqwest::Client::new()
            .get(format!("{}/api/v1/query", self.base_url))
            .query(&[("query", query)])
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        body["data"]["result"][0]["value"][1]
            .as_str()
            .map(str::to_owned)
    }

    async fn wait_for_value(&self, query: &str, expected: &str, max_wait: Duration) {
        let deadline = Instant::now() + max_wait;
        loop {
            let value = self.query_value(query).await;
            if value.as_deref() == Some(expected) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{query} never became {expected} within {max_wait:?} (last: {value:?})"
            );
            sleep(Duration::from_millis(250)).await;
        }
    }
}

#[tokio::test]
async fn a_real_prometheus_sees_a_monitor_go_from_up_to_down() {
    let app = spawn_app().await;
    let target = app.base_url.trim_start_matches("http://").to_owned();
    let prometheus = PrometheusServer::start(&target).await;
    prometheus
        .wait_for_value("up{job=\"pushmon\"}", "1", Duration::from_secs(20))
        .await;
    let monitor = app.create_monitor("scraped", 3600).await;
    let query = format!("pushmon_monitor_up{{id=\"{}\"}}", monitor.id);
    // Keep the job up until Prometheus has seen it so, then have it report down: a
    // timeout would only add seconds, and the series is the same whatever the reason.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        app.push_ok(&monitor.push_token, &[]).await;
        if prometheus.query_value(&query).await.as_deref() == Some("1") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "prometheus never saw the monitor up"
        );
        sleep(Duration::from_millis(500)).await;
    }
    app.push_ok(&monitor.push_token, &[("status", "down")])
        .await;
    assert_eq!(app.get_monitor(&monitor.id).await.status, Status::Down);
    prometheus
        .wait_for_value(&query, "0", Duration::from_secs(20))
        .await;
}

/// This process's user and system CPU time as `/proc/self/stat` has it, in seconds.
fn own_cpu_seconds(ticks_per_second: f64) -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // The command name (field 2) may hold spaces; the fields after it do not.
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after_name.split(' ').collect();
    // utime and stime are fields 14 and 15 of the whole line.
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    ticks as f64 / ticks_per_second
}

/// `process_cpu_seconds_total` was a whole number of seconds (the `metrics` crate's
/// counters are integers), so a pod burning a tenth of a core showed a flat line for
/// ten seconds at a time. It is now the kernel's own count, to the clock tick.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_cpu_seconds_total_counts_fractions_of_a_second() {
    let clock_ticks = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .unwrap();
    let ticks_per_second: f64 = String::from_utf8_lossy(&clock_ticks.stdout)
        .trim()
        .parse()
        .unwrap();
    // The server runs in this process, so its CPU time is this process's.
    let app = spawn_app().await;
    let text = app.metrics().await;
    assert!(
        text.contains("# TYPE process_cpu_seconds_total counter\n"),
        "{text}"
    );
    let scraped = |text: &str| -> f64 {
        let line = text
            .lines()
            .find(|line| line.starts_with("process_cpu_seconds_total "))
            .unwrap_or_else(|| panic!("no process_cpu_seconds_total in:\n{text}"));
        line["process_cpu_seconds_total ".len()..].parse().unwrap()
    };
    let mut samples = Vec::new();
    for _ in 0..3 {
        // About a tenth of a second of CPU, then a scrape between two readings of
        // our own.
        let started = Instant::now();
        let mut spin = 0u64;
        while started.elapsed() < Duration::from_millis(100) {
            spin = std::hint::black_box(spin.wrapping_add(1));
        }
        let before = own_cpu_seconds(ticks_per_second);
        let value = scraped(&app.metrics().await);
        let after = own_cpu_seconds(ticks_per_second);
        assert!(
            before <= value && value <= after,
            "process_cpu_seconds_total {value} is not between {before} and {after} \
             read from /proc/self/stat around the scrape"
        );
        samples.push(value);
    }
    assert!(
        samples.windows(2).all(|pair| pair[0] < pair[1]),
        "CPU time must grow: {samples:?}"
    );
    assert!(
        samples.iter().any(|value| value.fract() != 0.0),
        "whole seconds only: {samples:?}"
    );
}
