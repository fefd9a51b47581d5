//! What pushmon exports to Prometheus: every metric name, described once; the one
//! recorder (`metrics-exporter-prometheus`) behind the `metrics` macros; the handles
//! the push path keeps ([`hot`]); the process series ([`collect_process`]).
//!
//! Service metrics carry bounded labels only. The per-monitor families
//! (`docs/metrics.md`, "Per-monitor series") are not registered gauges (rendering
//! 100k labelled series through the exporter is slow); `http::ops` renders them from
//! the monitors' states at scrape time.

use std::sync::OnceLock;

use metrics::{Counter, Histogram, Unit, describe_counter, describe_gauge, describe_histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

pub const HEARTBEATS_TOTAL: &str = "pushmon_heartbeats_total";
pub const HEARTBEATS_REJECTED_TOTAL: &str = "pushmon_heartbeats_rejected_total";
pub const MONITORS: &str = "pushmon_monitors";
pub const MONITORS_MUTED: &str = "pushmon_monitors_muted";
/// Per fleet monitor (a per-monitor family): its instances reporting now.
pub const MONITOR_INSTANCES_REPORTING: &str = "pushmon_monitor_instances_reporting";
/// Per fleet instance (`instance` label, at most `http::ops::MAX_INSTANCE_SERIES`
/// series): when it last reported.
pub const INSTANCE_LAST_SEEN: &str = "pushmon_instance_last_seen_timestamp_seconds";
pub const ALERTS_TOTAL: &str = "pushmon_alerts_total";
pub const DIGESTS_TOTAL: &str = "pushmon_alert_digests_total";
pub const DIGEST_ALERTS_TOTAL: &str = "pushmon_alert_digest_alerts_total";
pub const HTTP_REQUEST_DURATION_SECONDS: &str = "pushmon_http_request_duration_seconds";
pub const STORE_COMMIT_DURATION_SECONDS: &str = "pushmon_store_commit_duration_seconds";
pub const STORE_BATCH_EVENTS: &str = "pushmon_store_batch_events";
pub const STORE_APPEND_DURATION_SECONDS: &str = "pushmon_store_append_duration_seconds";
pub const STORE_WRITE_FAILURES_TOTAL: &str = "pushmon_store_write_failures_total";
pub const STORE_RECOVERIES_TOTAL: &str = "pushmon_store_recoveries_total";
pub const DECISIONS_VOIDED_TOTAL: &str = "pushmon_decisions_voided_total";
pub const HISTORY_PRUNED_TOTAL: &str = "pushmon_history_pruned_total";
pub const CONNECTIONS_REFUSED_TOTAL: &str = "pushmon_connections_refused_total";
pub const CONNECTIONS_EVICTED_TOTAL: &str = "pushmon_connections_evicted_total";
pub const DETECTION_LAG_SECONDS: &str = "pushmon_detection_lag_seconds";
pub const OUTBOX_DEPTH: &str = "pushmon_outbox_depth";
pub const ACTOR_RESTARTS_TOTAL: &str = "pushmon_actor_restarts_total";
pub const STARTUP_DURATION_SECONDS: &str = "pushmon_startup_duration_seconds";
pub const MONITOR_ACTORS: &str = "pushmon_monitor_actors";
pub const ACTOR_PENDING_MESSAGES: &str = "pushmon_actor_pending_messages";
/// Rendered by [`ProcessCpu::render`], not recorded: it is not a whole number.
pub const PROCESS_CPU_SECONDS_TOTAL: &str = "process_cpu_seconds_total";
pub const PROCESS_OPEN_FDS: &str = "process_open_fds";
pub const PROCESS_MAX_FDS: &str = "process_max_fds";
pub const PROCESS_VIRTUAL_MEMORY_BYTES: &str = "process_virtual_memory_bytes";
pub const PROCESS_VIRTUAL_MEMORY_MAX_BYTES: &str = "process_virtual_memory_max_bytes";
pub const PROCESS_RESIDENT_MEMORY_BYTES: &str = "process_resident_memory_bytes";
pub const PROCESS_START_TIME_SECONDS: &str = "process_start_time_seconds";
pub const PROCESS_THREADS: &str = "process_threads";
pub const RUNS_TOTAL: &str = "pushmon_runs_total";
pub const GUARD_TRIPPED: &str = "pushmon_guard_tripped";
pub const GUARD_EXPECTED_RATE: &str = "pushmon_guard_expected_arrivals_per_second";
pub const GUARD_OBSERVED_RATE: &str = "pushmon_guard_observed_arrivals_per_second";
pub const GUARD_HELD_VERDICTS_TOTAL: &str = "pushmon_guard_held_verdicts_total";
/// The clustered mode (`app/cluster.rs`): shards this pod owns.
pub const CLUSTER_SHARDS_OWNED: &str = "pushmon_cluster_shards_owned";
/// Per shard (`shard` label, at most `--cluster-shards` series): the epoch this pod
/// owns it under, 0 when it does not own it.
pub const CLUSTER_SHARD_EPOCH: &str = "pushmon_cluster_shard_epoch";
pub const CLUSTER_FAILOVERS_TOTAL: &str = "pushmon_cluster_failovers_total";
/// Per stream (`stream` label, at most `--cluster-streams` series): records of the
/// stream this pod has not folded yet.
pub const CLUSTER_STREAM_LAG_RECORDS: &str = "pushmon_cluster_stream_lag_records";
/// Records a fold read again at its start only to rebuild its memory (those up to
/// the local position after the stored snapshot's, or after sequence 0 without one).
pub const CLUSTER_REFOLDED_RECORDS_TOTAL: &str = "pushmon_cluster_refolded_records_total";
/// Fold snapshots written to the local copy (docs/cluster.md, "Restarts").
pub const CLUSTER_SNAPSHOTS_TOTAL: &str = "pushmon_cluster_snapshots_total";
/// Shared snapshots uploaded, streams restored from one, records purged below them
/// (docs/cluster.md, "Shared snapshots and purging").
pub const CLUSTER_SHARED_SNAPSHOTS_TOTAL: &str = "pushmon_cluster_shared_snapshots_total";
pub const CLUSTER_SNAPSHOT_RESTORES_TOTAL: &str = "pushmon_cluster_snapshot_restores_total";
pub const CLUSTER_PURGED_RECORDS_TOTAL: &str = "pushmon_cluster_purged_records_total";
/// Appends to shard logs (each one wait on its records' PubAcks), and their records.
pub const CLUSTER_APPENDS_TOTAL: &str = "pushmon_cluster_appends_total";
pub const CLUSTER_APPENDED_RECORDS_TOTAL: &str = "pushmon_cluster_appended_records_total";
/// Plain heartbeats in those records (a heartbeats record carries many).
pub const CLUSTER_APPENDED_HEARTBEATS_TOTAL: &str = "pushmon_cluster_appended_heartbeats_total";
/// How long an append waited for its PubAcks (successful appends only).
pub const CLUSTER_APPEND_DURATION_SECONDS: &str = "pushmon_cluster_append_duration_seconds";
/// Claims on a slug or push token refused because another monitor holds the value
/// cluster-wide (`kind` label: `slug`, `token`; `cluster/claims.rs`).
pub const CLUSTER_CLAIMS_REFUSED_TOTAL: &str = "pushmon_cluster_claims_refused_total";
/// Clustered mode: claims the reconciliation deleted (left behind) or made (missing)
/// (`action` label: `deleted`, `claimed`; `app/cluster.rs`).
pub const CLUSTER_CLAIMS_RECONCILED_TOTAL: &str = "pushmon_cluster_claims_reconciled_total";

/// Outcomes of a run's end, each an `outcome` label value of [`RUNS_TOTAL`].
pub const RUN_OUTCOMES: [&str; 2] = ["success", "failure"];

/// Reasons a push can be rejected, each a `reason` label value.
pub const REJECT_REASONS: [&str; 8] = [
    "unknown_token",
    "bad_request",
    "rate_limited",
    "ip_rate_limited",
    "too_large",
    "unavailable",
    "source_refused",
    "bad_signature",
];

const LATENCY_BUCKETS: &[f64] = &[
    0.000_25, 0.000_5, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];
/// Finer around the 100 ms a timeout should be detected within.
const DETECTION_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0,
];
const BATCH_BUCKETS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 1024.0, 4096.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
static HOT: OnceLock<Hot> = OnceLock::new();
static PROCESS_DESCRIBED: std::sync::Once = std::sync::Once::new();

/// Handles to the series every heartbeat touches, registered once. `counter!` and
/// `histogram!` build their key, hash it and look it up in the recorder's registry
/// on every call; on the push path that was several lookups per request.
pub struct Hot {
    heartbeats: [Counter; 2],
    rejected: [Counter; REJECT_REASONS.len()],
    runs: [Counter; RUN_OUTCOMES.len()],
    pub append_duration: Histogram,
    pub commit_duration: Histogram,
    pub batch_events: Histogram,
}

impl Hot {
    /// `pushmon_heartbeats_total{status}`.
    pub fn heartbeat(&self, status: crate::domain::event::PushStatus) -> &Counter {
        match status {
            crate::domain::event::PushStatus::Up => &self.heartbeats[0],
            crate::domain::event::PushStatus::Down => &self.heartbeats[1],
        }
    }

    /// `pushmon_runs_total{outcome}`.
    pub fn run(&self, outcome: crate::domain::event::RunOutcome) -> &Counter {
        match outcome {
            crate::domain::event::RunOutcome::Success => &self.runs[0],
            crate::domain::event::RunOutcome::Failure(_) => &self.runs[1],
        }
    }

    /// `pushmon_heartbeats_rejected_total{reason}`; `reason` is one of
    /// [`REJECT_REASONS`] (anything else counts as `bad_request`).
    pub fn rejected(&self, reason: &str) -> &Counter {
        let index = REJECT_REASONS
            .iter()
            .position(|known| *known == reason)
            .unwrap_or(1);
        &self.rejected[index]
    }
}

/// The hot-path handles, registered with the process-wide recorder (installed here
/// first if need be, so a handle can never point at a no-op recorder).
pub fn hot() -> &'static Hot {
    HOT.get_or_init(|| {
        install();
        Hot {
            heartbeats: ["up", "down"]
                .map(|status| metrics::counter!(HEARTBEATS_TOTAL, "status" => status)),
            rejected: REJECT_REASONS
                .map(|reason| metrics::counter!(HEARTBEATS_REJECTED_TOTAL, "reason" => reason)),
            runs: RUN_OUTCOMES.map(|outcome| metrics::counter!(RUNS_TOTAL, "outcome" => outcome)),
            append_duration: metrics::histogram!(STORE_APPEND_DURATION_SECONDS),
            commit_duration: metrics::histogram!(STORE_COMMIT_DURATION_SECONDS),
            batch_events: metrics::histogram!(STORE_BATCH_EVENTS),
        }
    })
}

/// Reads the process's figures (`metrics_process` reads `/proc`): sets the gauges
/// (`process_resident_memory_bytes`, open fds, …) and returns the CPU time, which
/// [`ProcessCpu::render`] writes. Called at each scrape.
///
/// `metrics_process::Collector` would record the CPU time through the `metrics`
/// crate, whose counters are whole numbers: the series moved in steps of a second.
pub fn collect_process() -> ProcessCpu {
    PROCESS_DESCRIBED.call_once(describe_process);
    let figures = metrics_process::collector::collect();
    let gauges = [
        (PROCESS_OPEN_FDS, figures.open_fds),
        (PROCESS_MAX_FDS, figures.max_fds),
        (PROCESS_VIRTUAL_MEMORY_BYTES, figures.virtual_memory_bytes),
        (
            PROCESS_VIRTUAL_MEMORY_MAX_BYTES,
            figures.virtual_memory_max_bytes,
        ),
        (PROCESS_RESIDENT_MEMORY_BYTES, figures.resident_memory_bytes),
        (PROCESS_START_TIME_SECONDS, figures.start_time_seconds),
        (PROCESS_THREADS, figures.threads),
    ];
    for (name, value) in gauges {
        if let Some(value) = value {
            metrics::gauge!(name).set(value as f64);
        }
    }
    ProcessCpu(figures.cpu_seconds_total)
}

/// The process's user and system CPU time in seconds, to the clock tick (`/proc`
/// counts in ticks, 10 ms on most Linux systems); `None` where it cannot be read.
#[derive(Clone, Copy, Debug)]
pub struct ProcessCpu(Option<f64>);

impl ProcessCpu {
    /// Appends `process_cpu_seconds_total` to an exposition (nothing if unknown).
    pub fn render(self, text: &mut String) {
        use std::fmt::Write as _;
        if let Some(seconds) = self.0 {
            let _ = write!(
                text,
                "# HELP {PROCESS_CPU_SECONDS_TOTAL} Total user and system CPU time spent in seconds.\n\
                 # TYPE {PROCESS_CPU_SECONDS_TOTAL} counter\n\
                 {PROCESS_CPU_SECONDS_TOTAL} {seconds}\n"
            );
        }
    }
}

fn describe_process() {
    describe_gauge!(PROCESS_OPEN_FDS, "Number of open file descriptors.");
    describe_gauge!(PROCESS_MAX_FDS, "Maximum number of open file descriptors.");
    describe_gauge!(
        PROCESS_VIRTUAL_MEMORY_BYTES,
        Unit::Bytes,
        "Virtual memory size in bytes."
    );
    describe_gauge!(
        PROCESS_VIRTUAL_MEMORY_MAX_BYTES,
        Unit::Bytes,
        "Maximum amount of virtual memory available in bytes."
    );
    describe_gauge!(
        PROCESS_RESIDENT_MEMORY_BYTES,
        Unit::Bytes,
        "Resident memory size in bytes."
    );
    describe_gauge!(
        PROCESS_START_TIME_SECONDS,
        Unit::Seconds,
        "Start time of the process since unix epoch in seconds."
    );
    describe_gauge!(
        PROCESS_THREADS,
        Unit::Count,
        "Number of OS threads in the process."
    );
}

/// Installs the process-wide recorder on first call and returns its handle; later
/// calls (a second server in the same test process) share it.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    metrics_exporter_prometheus::Matcher::Suffix("_duration_seconds".to_owned()),
                    LATENCY_BUCKETS,
                )
                .and_then(|builder| {
                    builder.set_buckets_for_metric(
                        metrics_exporter_prometheus::Matcher::Full(STORE_BATCH_EVENTS.to_owned()),
                        BATCH_BUCKETS,
                    )
                })
                .and_then(|builder| {
                    builder.set_buckets_for_metric(
                        metrics_exporter_prometheus::Matcher::Full(
                            DETECTION_LAG_SECONDS.to_owned(),
                        ),
                        DETECTION_BUCKETS,
                    )
                });
            let recorder = match builder {
                Ok(builder) => builder.build_recorder(),
                // Only empty bucket lists are refused, and ours are constants.
                Err(_) => PrometheusBuilder::new().build_recorder(),
            };
            let handle = recorder.handle();
            // Fails only if another recorder was installed first (an embedding program):
            // then our metrics go there and `/metrics` shows only what we render.
            let _ = metrics::set_global_recorder(recorder);
            describe();
            zero_known_series();
            handle
        })
        .clone()
}

fn describe() {
    describe_gauge!(CLUSTER_SHARDS_OWNED, "Clustered mode: shards this pod owns");
    describe_gauge!(
        CLUSTER_SHARD_EPOCH,
        "Clustered mode: the epoch (the takeover's stream sequence) this pod owns each shard under; 0 when it does not own it"
    );
    describe_counter!(
        CLUSTER_FAILOVERS_TOTAL,
        "Clustered mode: shards this pod took over from an owner that had stopped renewing its lease"
    );
    describe_gauge!(
        CLUSTER_STREAM_LAG_RECORDS,
        "Clustered mode: records of each stream of the shard logs this pod has not folded yet"
    );
    describe_counter!(
        CLUSTER_REFOLDED_RECORDS_TOTAL,
        "Clustered mode: records folded again at a fold's start to rebuild its memory (from the stored snapshot's position, or from the stream's first record without one)"
    );
    describe_counter!(
        CLUSTER_SHARED_SNAPSHOTS_TOTAL,
        "Clustered mode: shared snapshots of a stream uploaded to the PUSHMON_SNAPSHOTS bucket by this pod"
    );
    describe_counter!(
        CLUSTER_SNAPSHOT_RESTORES_TOTAL,
        "Clustered mode: streams this pod restored from their shared snapshot at start (a new pod)"
    );
    describe_counter!(
        CLUSTER_PURGED_RECORDS_TOTAL,
        "Clustered mode: stream records this pod purged below a shared snapshot"
    );
    describe_counter!(
        CLUSTER_SNAPSHOTS_TOTAL,
        "Clustered mode: snapshots of a stream's fold written to the local copy with the position they are valid at"
    );
    describe_counter!(
        CLUSTER_APPENDS_TOTAL,
        "Clustered mode: appends to shard logs, each one wait on its records' acknowledgements"
    );
    describe_counter!(
        CLUSTER_APPENDED_RECORDS_TOTAL,
        "Clustered mode: records appended to shard logs by this pod"
    );
    describe_counter!(
        CLUSTER_APPENDED_HEARTBEATS_TOTAL,
        "Clustered mode: plain heartbeats in the records this pod appended"
    );
    describe_counter!(
        CLUSTER_CLAIMS_REFUSED_TOTAL,
        "Clustered mode: claims on a slug or push token refused because another monitor holds the value cluster-wide"
    );
    describe_counter!(
        CLUSTER_CLAIMS_RECONCILED_TOTAL,
        "Clustered mode: claims the reconciliation with the pod's copy deleted (left behind) or made (missing)"
    );
    describe_histogram!(
        CLUSTER_APPEND_DURATION_SECONDS,
        Unit::Seconds,
        "Clustered mode: from an append's first publish to its last acknowledgement"
    );
    describe_counter!(
        HEARTBEATS_TOTAL,
        "Heartbeats accepted and made durable, by reported status"
    );
    describe_counter!(
        HEARTBEATS_REJECTED_TOTAL,
        "Pushes refused, by reason; a refused push never changes state"
    );
    describe_gauge!(MONITORS, "Monitors by current status");
    describe_counter!(
        RUNS_TOTAL,
        "Job runs that ended (a success, a failure or an exit status reported with more than a heartbeat), by outcome"
    );
    describe_counter!(ALERTS_TOTAL, "Alert deliveries by event and result");
    describe_counter!(
        DIGESTS_TOTAL,
        "Alert digests (one message for many alerts) that ended, by result"
    );
    describe_counter!(
        DIGEST_ALERTS_TOTAL,
        "Alert deliveries that went out in a digest, by the digest's result"
    );
    describe_histogram!(
        HTTP_REQUEST_DURATION_SECONDS,
        Unit::Seconds,
        "HTTP request latency by route and status code"
    );
    describe_histogram!(
        STORE_COMMIT_DURATION_SECONDS,
        Unit::Seconds,
        "Time to write and fdatasync one group-commit batch of the event log"
    );
    describe_histogram!(
        STORE_APPEND_DURATION_SECONDS,
        Unit::Seconds,
        "Time from asking the event log to append until the events are durable"
    );
    describe_histogram!(STORE_BATCH_EVENTS, "Events per group-commit batch");
    describe_counter!(
        STORE_WRITE_FAILURES_TOTAL,
        "Group commits the disk refused (I/O error, disk full, read-only); none was acknowledged"
    );
    describe_counter!(
        DECISIONS_VOIDED_TOTAL,
        "Deadline verdicts not written because a heartbeat was written after the last one their monitor had applied"
    );
    describe_counter!(
        HISTORY_PRUNED_TOTAL,
        "Events dropped from histories by the retention limits: heartbeats, and deleted monitors' histories"
    );
    describe_counter!(
        STORE_RECOVERIES_TOTAL,
        "Times the event log was reopened and accepted writes again after a failed write"
    );
    describe_counter!(
        CONNECTIONS_REFUSED_TOTAL,
        "Connections closed on accept: every connection was busy or had just started waiting"
    );
    describe_counter!(
        CONNECTIONS_EVICTED_TOTAL,
        "Connections stuck waiting on their clients, closed to make room for new ones at the connection limit"
    );
    describe_histogram!(
        DETECTION_LAG_SECONDS,
        Unit::Seconds,
        "From a monitor's deadline to its timeout `down` being durable"
    );
    describe_gauge!(
        OUTBOX_DEPTH,
        "Alert deliveries owed: queued or being attempted"
    );
    describe_gauge!(MONITOR_ACTORS, "Monitor actors running");
    describe_gauge!(
        ACTOR_PENDING_MESSAGES,
        "Requests handed to monitor actors and not yet answered (mailbox backlog)"
    );
    describe_counter!(
        ACTOR_RESTARTS_TOTAL,
        "Monitor actors restarted from their stored state after a failure"
    );
    describe_gauge!(
        STARTUP_DURATION_SECONDS,
        Unit::Seconds,
        "Time the last start-up took to rebuild every monitor"
    );
    describe_gauge!(
        GUARD_TRIPPED,
        "1 while the guard holds missed deadlines as unknown (heartbeat arrivals collapsed), else 0"
    );
    describe_gauge!(
        GUARD_EXPECTED_RATE,
        "Heartbeats per second the running monitors' intervals and schedules predict"
    );
    describe_gauge!(
        GUARD_OBSERVED_RATE,
        "Pushes and pings per second that reached a monitor, over the guard's last window"
    );
    describe_counter!(
        GUARD_HELD_VERDICTS_TOTAL,
        "Missed deadlines the guard held as unknown instead of alerting"
    );
}

/// Every series is there from start-up, counters at 0 for known labels
/// (`docs/metrics.md`, "Series").
fn zero_known_series() {
    for status in ["up", "down"] {
        metrics::counter!(HEARTBEATS_TOTAL, "status" => status).absolute(0);
    }
    for reason in REJECT_REASONS {
        metrics::counter!(HEARTBEATS_REJECTED_TOTAL, "reason" => reason).absolute(0);
    }
    for outcome in RUN_OUTCOMES {
        metrics::counter!(RUNS_TOTAL, "outcome" => outcome).absolute(0);
    }
    for event in ["down", "up"] {
        for result in ["success", "failure"] {
            metrics::counter!(ALERTS_TOTAL, "event" => event, "result" => result).absolute(0);
        }
    }
    for result in ["success", "failure"] {
        metrics::counter!(DIGESTS_TOTAL, "result" => result).absolute(0);
        metrics::counter!(DIGEST_ALERTS_TOTAL, "result" => result).absolute(0);
    }
    metrics::counter!(ACTOR_RESTARTS_TOTAL).absolute(0);
    metrics::counter!(CONNECTIONS_REFUSED_TOTAL).absolute(0);
    metrics::counter!(CONNECTIONS_EVICTED_TOTAL).absolute(0);
    metrics::counter!(STORE_WRITE_FAILURES_TOTAL).absolute(0);
    metrics::counter!(STORE_RECOVERIES_TOTAL).absolute(0);
    metrics::counter!(DECISIONS_VOIDED_TOTAL).absolute(0);
    metrics::counter!(HISTORY_PRUNED_TOTAL).absolute(0);
    metrics::gauge!(OUTBOX_DEPTH).set(0.0);
    metrics::counter!(GUARD_HELD_VERDICTS_TOTAL).absolute(0);
    metrics::gauge!(GUARD_TRIPPED).set(0.0);
    metrics::gauge!(GUARD_EXPECTED_RATE).set(0.0);
    metrics::gauge!(GUARD_OBSERVED_RATE).set(0.0);
}
