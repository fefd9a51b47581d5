//! The command line as clap parses it: `pushmon serve` and `pushmon check` here, the
//! client commands (`run`, `push`, `monitor` …) in [`client_args`], and the completion
//! scripts and manual pages made from these definitions in [`generate`]. Flags stay
//! raw here (text, or a path or choice clap has already read) and clap reads no
//! environment variable: `config` resolves each flag against its `PUSHMON_*` variable
//! and default. Each flag's name and help come from its entry in [`setting`], the
//! table of every setting that `config` resolves, so `--help`, resolution and error
//! messages name the same variable and default.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::telemetry::LogFormat;

pub mod client_args;
pub mod generate;

#[derive(Debug, Parser)]
#[command(
    name = "pushmon",
    version,
    about = "A self-hosted push (heartbeat) monitor"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve(Box<ServeArgs>),
    /// Check a stopped server's store: every monitor's snapshot must equal a full
    /// replay of its events. Exits 1 on any difference.
    Check(CheckArgs),
    /// The clustered mode's commands (docs/cluster.md).
    #[command(subcommand)]
    Cluster(ClusterCommand),
    #[command(flatten)]
    Client(Box<client_args::ClientCommand>),
}

/// Flags of `pushmon check`.
#[derive(Debug, Default, Args)]
pub struct CheckArgs {
    #[arg(long = setting::DATA_DIR.flag, help = setting::DATA_DIR.help())]
    pub data_dir: Option<PathBuf>,
}

/// `pushmon cluster …`.
#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Ask the running server of this pod to hand every shard it owns over, and wait
    /// until it has (a Kubernetes preStop hook). Exits 1 if it has not within two
    /// leases.
    Release(ClusterReleaseArgs),
}

/// Flags of `pushmon cluster release`: the serve flags that name the cluster and the
/// pod.
#[derive(Debug, Default, Args)]
pub struct ClusterReleaseArgs {
    #[arg(long = setting::CLUSTER_NATS.flag, help = setting::CLUSTER_NATS.help())]
    pub cluster_nats: Option<String>,
    #[arg(long = setting::POD_NAME.flag, help = setting::POD_NAME.help())]
    pub pod_name: Option<String>,
    #[arg(long = setting::CLUSTER_SHARDS.flag, help = setting::CLUSTER_SHARDS.help())]
    pub cluster_shards: Option<String>,
    #[arg(long = setting::CLUSTER_STREAMS.flag, help = setting::CLUSTER_STREAMS.help())]
    pub cluster_streams: Option<String>,
    #[arg(long = setting::CLUSTER_LEASE.flag, help = setting::CLUSTER_LEASE.help())]
    pub cluster_lease: Option<String>,
}

/// Flags of `pushmon serve`, in the order `--help` lists them.
#[derive(Debug, Default, Args)]
pub struct ServeArgs {
    #[arg(long = setting::LISTEN.flag, help = setting::LISTEN.help())]
    pub listen: Option<String>,
    #[arg(long = setting::DATA_DIR.flag, help = setting::DATA_DIR.help())]
    pub data_dir: Option<PathBuf>,
    #[arg(long = setting::ADMIN_TOKEN.flag, help = setting::ADMIN_TOKEN.help())]
    pub admin_token: Option<String>,
    #[arg(long = setting::PUBLIC_URL.flag, help = setting::PUBLIC_URL.help())]
    pub public_url: Option<String>,
    #[arg(long = setting::RESTART_GRACE.flag, help = setting::RESTART_GRACE.help())]
    pub restart_grace: Option<String>,
    #[arg(long = setting::LOG_FORMAT.flag, help = setting::LOG_FORMAT.help(), value_enum)]
    pub log_format: Option<LogFormat>,
    #[arg(
        long = setting::RATE_LIMIT_PER_SECOND.flag,
        help = setting::RATE_LIMIT_PER_SECOND.help()
    )]
    pub rate_limit_per_second: Option<String>,
    #[arg(long = setting::RATE_LIMIT_BURST.flag, help = setting::RATE_LIMIT_BURST.help())]
    pub rate_limit_burst: Option<String>,
    #[arg(
        long = setting::RATE_LIMIT_IP_PER_SECOND.flag,
        help = setting::RATE_LIMIT_IP_PER_SECOND.help()
    )]
    pub rate_limit_ip_per_second: Option<String>,
    #[arg(
        long = setting::RATE_LIMIT_IP_BURST.flag,
        help = setting::RATE_LIMIT_IP_BURST.help()
    )]
    pub rate_limit_ip_burst: Option<String>,
    #[arg(long = setting::TRUSTED_PROXIES.flag, help = setting::TRUSTED_PROXIES.help())]
    pub trusted_proxies: Option<String>,
    #[arg(
        long = setting::ALERT_MAX_ATTEMPTS.flag,
        help = setting::ALERT_MAX_ATTEMPTS.help()
    )]
    pub alert_max_attempts: Option<String>,
    #[arg(
        long = setting::ALERT_RETRY_INITIAL_MS.flag,
        help = setting::ALERT_RETRY_INITIAL_MS.help()
    )]
    pub alert_retry_initial_ms: Option<String>,
    #[arg(long = setting::ALERT_TIMEOUT.flag, help = setting::ALERT_TIMEOUT.help())]
    pub alert_timeout: Option<String>,
    #[arg(
        long = setting::ALERT_DENY_PRIVATE_ADDRESSES.flag,
        help = setting::ALERT_DENY_PRIVATE_ADDRESSES.help()
    )]
    pub alert_deny_private_addresses: bool,
    #[arg(long = setting::DIGEST_WINDOW.flag, help = setting::DIGEST_WINDOW.help())]
    pub digest_window: Option<String>,
    #[arg(long = setting::DIGEST_THRESHOLD.flag, help = setting::DIGEST_THRESHOLD.help())]
    pub digest_threshold: Option<String>,
    #[arg(long = setting::DIGEST_WEBHOOKS.flag, help = setting::DIGEST_WEBHOOKS.help())]
    pub digest_webhooks: bool,
    #[arg(long = setting::HEADER_TIMEOUT.flag, help = setting::HEADER_TIMEOUT.help())]
    pub header_timeout: Option<String>,
    #[arg(long = setting::MAX_CONNECTIONS.flag, help = setting::MAX_CONNECTIONS.help())]
    pub max_connections: Option<String>,
    #[arg(long = setting::PING_BODY_LIMIT.flag, help = setting::PING_BODY_LIMIT.help())]
    pub ping_body_limit: Option<String>,
    #[arg(long = setting::PING_AUTO_CREATE.flag, help = setting::PING_AUTO_CREATE.help())]
    pub ping_auto_create: bool,
    #[arg(long = setting::SIGNATURE_WINDOW.flag, help = setting::SIGNATURE_WINDOW.help())]
    pub signature_window: Option<String>,
    #[arg(long = setting::MONITORS_FILE.flag, help = setting::MONITORS_FILE.help())]
    pub monitors_file: Option<PathBuf>,
    #[arg(
        long = setting::HISTORY_MAX_HEARTBEATS.flag,
        help = setting::HISTORY_MAX_HEARTBEATS.help()
    )]
    pub history_max_heartbeats: Option<String>,
    #[arg(
        long = setting::HISTORY_MAX_AGE_DAYS.flag,
        help = setting::HISTORY_MAX_AGE_DAYS.help()
    )]
    pub history_max_age_days: Option<String>,
    #[arg(
        long = setting::HISTORY_SWEEP_SECONDS.flag,
        help = setting::HISTORY_SWEEP_SECONDS.help()
    )]
    pub history_sweep_seconds: Option<String>,
    #[arg(long = setting::TLS_CERT.flag, help = setting::TLS_CERT.help())]
    pub tls_cert: Option<PathBuf>,
    #[arg(long = setting::TLS_KEY.flag, help = setting::TLS_KEY.help())]
    pub tls_key: Option<PathBuf>,
    #[arg(long = setting::MONITOR_METRICS.flag, help = setting::MONITOR_METRICS.help())]
    pub no_monitor_metrics: bool,
    #[arg(long = setting::METRICS_LABELS.flag, help = setting::METRICS_LABELS.help())]
    pub metrics_labels: Option<String>,
    #[arg(long = setting::ACCEPT_DATA_LOSS.flag, help = setting::ACCEPT_DATA_LOSS.help())]
    pub accept_data_loss: bool,
    #[arg(long = setting::GUARD.flag, help = setting::GUARD.help())]
    pub guard: Option<String>,
    #[arg(long = setting::GUARD_WINDOW.flag, help = setting::GUARD_WINDOW.help())]
    pub guard_window: Option<String>,
    #[arg(long = setting::GUARD_MIN_RATIO.flag, help = setting::GUARD_MIN_RATIO.help())]
    pub guard_min_ratio: Option<String>,
    #[arg(
        long = setting::GUARD_MIN_EXPECTED.flag,
        help = setting::GUARD_MIN_EXPECTED.help()
    )]
    pub guard_min_expected: Option<String>,
    #[arg(
        long = setting::GUARD_RELEASE_GRACE.flag,
        help = setting::GUARD_RELEASE_GRACE.help()
    )]
    pub guard_release_grace: Option<String>,
    #[arg(long = setting::GUARD_CHANNELS.flag, help = setting::GUARD_CHANNELS.help())]
    pub guard_channels: Option<String>,
    #[arg(long = setting::GUARD_RESOLVED.flag, help = setting::GUARD_RESOLVED.help())]
    pub guard_resolved: Option<String>,
    #[arg(long = setting::CLUSTER_NATS.flag, help = setting::CLUSTER_NATS.help())]
    pub cluster_nats: Option<String>,
    #[arg(long = setting::POD_NAME.flag, help = setting::POD_NAME.help())]
    pub pod_name: Option<String>,
    #[arg(long = setting::CLUSTER_SHARDS.flag, help = setting::CLUSTER_SHARDS.help())]
    pub cluster_shards: Option<String>,
    #[arg(long = setting::CLUSTER_STREAMS.flag, help = setting::CLUSTER_STREAMS.help())]
    pub cluster_streams: Option<String>,
    #[arg(long = setting::CLUSTER_REPLICAS.flag, help = setting::CLUSTER_REPLICAS.help())]
    pub cluster_replicas: Option<String>,
    #[arg(long = setting::CLUSTER_LEASE.flag, help = setting::CLUSTER_LEASE.help())]
    pub cluster_lease: Option<String>,
}

/// Every setting: its flag, environment variable, default as `--help` shows it, and
/// the name its errors give. The clap types above take each flag's name and help from
/// here; `config` resolves each setting with `Setting::resolve`.
pub mod setting {
    /// One setting of `pushmon serve` (`--data-dir` also of `pushmon check`).
    #[derive(Clone, Copy, Debug)]
    pub struct Setting {
        /// The long flag, without its dashes.
        pub flag: &'static str,
        /// Read when the flag is absent.
        pub env: &'static str,
        /// What applies when both are absent, as `--help` says it.
        pub default: &'static str,
        /// What the setting does, as `--help` says it.
        pub about: &'static str,
        /// Names the setting in errors.
        pub name: &'static str,
        /// For a flag that takes no value: the variable's value that means the same.
        pub switch: Option<&'static str>,
    }

    impl Setting {
        /// The flag's help: what it does, its variable and its default, each once.
        pub fn help(&self) -> String {
            let Self {
                about,
                env,
                default,
                ..
            } = self;
            match self.switch {
                Some(value) => format!("{about} [env: {env}={value}] [default: {default}]"),
                None => format!("{about} [env: {env}] [default: {default}]"),
            }
        }
    }

    const SETTING: Setting = Setting {
        flag: "",
        env: "",
        default: "",
        about: "",
        name: "",
        switch: None,
    };

    pub const LISTEN: Setting = Setting {
        flag: "listen",
        env: "PUSHMON_LISTEN",
        default: "127.0.0.1:8080",
        about: "Address to listen on",
        name: "listen address",
        ..SETTING
    };
    pub const DATA_DIR: Setting = Setting {
        flag: "data-dir",
        env: "PUSHMON_DATA_DIR",
        default: "./pushmon-data",
        about: "Directory of the event store",
        name: "data directory",
        ..SETTING
    };
    pub const ADMIN_TOKEN: Setting = Setting {
        flag: "admin-token",
        env: "PUSHMON_ADMIN_TOKEN",
        default: "generated into <data-dir>/admin-token",
        about: "Bearer token for the management API",
        name: "admin token",
        ..SETTING
    };
    pub const PUBLIC_URL: Setting = Setting {
        flag: "public-url",
        env: "PUSHMON_PUBLIC_URL",
        default: "http://<listen>",
        about: "Base URL used in `push_url`",
        name: "public URL",
        ..SETTING
    };
    pub const RESTART_GRACE: Setting = Setting {
        flag: "restart-grace",
        env: "PUSHMON_RESTART_GRACE",
        default: "60",
        about: "Seconds of grace for deadlines that fell while the server was stopped; \
                0 disables",
        name: "restart grace",
        ..SETTING
    };
    pub const LOG_FORMAT: Setting = Setting {
        flag: "log-format",
        env: "PUSHMON_LOG_FORMAT",
        default: "human",
        about: "Log format",
        name: "log format",
        ..SETTING
    };
    pub const RATE_LIMIT_PER_SECOND: Setting = Setting {
        flag: "rate-limit-per-second",
        env: "PUSHMON_RATE_LIMIT_PER_SECOND",
        default: "50",
        about: "Sustained pushes per second allowed per token",
        name: "rate limit per second",
        ..SETTING
    };
    pub const RATE_LIMIT_BURST: Setting = Setting {
        flag: "rate-limit-burst",
        env: "PUSHMON_RATE_LIMIT_BURST",
        default: "200",
        about: "Burst of pushes allowed per token",
        name: "rate limit burst",
        ..SETTING
    };
    pub const RATE_LIMIT_IP_PER_SECOND: Setting = Setting {
        flag: "rate-limit-ip-per-second",
        env: "PUSHMON_RATE_LIMIT_IP_PER_SECOND",
        default: "1000",
        about: "Sustained pushes with an unknown token per second allowed per source \
                address (IPv6: per /64); valid pushes are not counted. 0 disables",
        name: "rate limit per address",
        ..SETTING
    };
    pub const RATE_LIMIT_IP_BURST: Setting = Setting {
        flag: "rate-limit-ip-burst",
        env: "PUSHMON_RATE_LIMIT_IP_BURST",
        default: "2000",
        about: "Burst of pushes with an unknown token allowed per source address",
        name: "rate limit burst per address",
        ..SETTING
    };
    pub const TRUSTED_PROXIES: Setting = Setting {
        flag: "trusted-proxies",
        env: "PUSHMON_TRUSTED_PROXIES",
        default: "none",
        about: "Comma-separated proxy addresses or CIDRs (e.g. 10.0.0.0/8) whose \
                X-Forwarded-For is believed when finding a push's source address",
        name: "trusted proxies",
        ..SETTING
    };
    pub const ALERT_MAX_ATTEMPTS: Setting = Setting {
        flag: "alert-max-attempts",
        env: "PUSHMON_ALERT_MAX_ATTEMPTS",
        default: "10",
        about: "Attempts per alert delivery before it is recorded as failed",
        name: "alert max attempts",
        ..SETTING
    };
    pub const ALERT_RETRY_INITIAL_MS: Setting = Setting {
        flag: "alert-retry-initial-ms",
        env: "PUSHMON_ALERT_RETRY_INITIAL_MS",
        default: "1000",
        about: "Wait before the first retry of a failed delivery, in milliseconds; \
                doubles each time up to 5 minutes",
        name: "alert retry initial ms",
        ..SETTING
    };
    pub const ALERT_TIMEOUT: Setting = Setting {
        flag: "alert-timeout",
        env: "PUSHMON_ALERT_TIMEOUT",
        default: "10",
        about: "Seconds one delivery attempt may take",
        name: "alert timeout",
        ..SETTING
    };
    /// The flag switches the deny-list on; the variable takes true or false.
    pub const ALERT_DENY_PRIVATE_ADDRESSES: Setting = Setting {
        flag: "alert-deny-private-addresses",
        env: "PUSHMON_ALERT_DENY_PRIVATE_ADDRESSES",
        default: "false",
        about: "Refuse to alert loopback, private and link-local addresses (channels whose \
                URL names one, and names that resolve to one)",
        name: "alert deny private addresses",
        switch: Some("true"),
    };
    pub const DIGEST_WINDOW: Setting = Setting {
        flag: "digest-window",
        env: "PUSHMON_DIGEST_WINDOW",
        default: "5",
        about: "Seconds the first alert to a calm channel waits for others, so that a burst \
                goes out as one digest; 0 sends every alert at once, on its own",
        name: "digest window",
        ..SETTING
    };
    pub const DIGEST_THRESHOLD: Setting = Setting {
        flag: "digest-threshold",
        env: "PUSHMON_DIGEST_THRESHOLD",
        default: "3",
        about: "Alerts to one channel in one window from which they go out as one digest; \
                fewer go out one by one",
        name: "digest threshold",
        ..SETTING
    };
    /// The flag switches webhook digests on; the variable takes true or false.
    pub const DIGEST_WEBHOOKS: Setting = Setting {
        flag: "digest-webhooks",
        env: "PUSHMON_DIGEST_WEBHOOKS",
        default: "false",
        about: "Webhooks take digests too (a body with \"event\": \"digest\"); without it \
                a webhook gets every alert on its own, at once",
        name: "digest webhooks",
        switch: Some("true"),
    };
    pub const HEADER_TIMEOUT: Setting = Setting {
        flag: "header-timeout",
        env: "PUSHMON_HEADER_TIMEOUT",
        default: "10",
        about: "Seconds a client has to send a request's headers, and then its whole body \
                (slow-loris bound)",
        name: "header timeout",
        ..SETTING
    };
    pub const MAX_CONNECTIONS: Setting = Setting {
        flag: "max-connections",
        env: "PUSHMON_MAX_CONNECTIONS",
        default: "10000",
        about: "Connections served at once; beyond it a new one replaces the one stuck \
                waiting on its client the longest, or is closed",
        name: "max connections",
        ..SETTING
    };
    pub const PING_BODY_LIMIT: Setting = Setting {
        flag: "ping-body-limit",
        env: "PUSHMON_PING_BODY_LIMIT",
        default: "10000",
        about: "Bytes of a job's output (a ping's body) kept with its run, 0 to 65536",
        name: "ping body limit",
        ..SETTING
    };
    pub const SIGNATURE_WINDOW: Setting = Setting {
        flag: "signature-window",
        env: "PUSHMON_SIGNATURE_WINDOW",
        default: "300",
        about: "Seconds a signed push's X-Pushmon-Timestamp may be away from the server's \
                time (either way), 1 to 86400; a signature is refused if seen before \
                within it",
        name: "signature window",
        ..SETTING
    };
    /// The flag turns it on; the variable takes true or false.
    pub const PING_AUTO_CREATE: Setting = Setting {
        flag: "ping-auto-create",
        env: "PUSHMON_PING_AUTO_CREATE",
        default: "false",
        about: "Let a slug ping URL with ?create=1 create a monitor for an unknown slug \
                (with the default settings)",
        name: "ping auto create",
        switch: Some("true"),
    };
    pub const MONITORS_FILE: Setting = Setting {
        flag: "monitors-file",
        env: "PUSHMON_MONITORS_FILE",
        default: "none",
        about: "Monitors and channels declared as code, reconciled at start-up and on SIGHUP",
        name: "monitors file",
        ..SETTING
    };
    pub const HISTORY_MAX_HEARTBEATS: Setting = Setting {
        flag: "history-max-heartbeats",
        env: "PUSHMON_HISTORY_MAX_HEARTBEATS",
        default: "1000",
        about: "Heartbeats kept in each monitor's history; 0 keeps all. State changes, \
                alerts and configuration events are always kept",
        name: "history max heartbeats",
        ..SETTING
    };
    pub const HISTORY_MAX_AGE_DAYS: Setting = Setting {
        flag: "history-max-age-days",
        env: "PUSHMON_HISTORY_MAX_AGE_DAYS",
        default: "90",
        about: "Days a heartbeat is kept in the history; 0 keeps them forever",
        name: "history max age days",
        ..SETTING
    };
    pub const HISTORY_SWEEP_SECONDS: Setting = Setting {
        flag: "history-sweep-seconds",
        env: "PUSHMON_HISTORY_SWEEP_SECONDS",
        default: "300",
        about: "Seconds between two sweeps applying the history limits",
        name: "history sweep seconds",
        ..SETTING
    };
    pub const TLS_CERT: Setting = Setting {
        flag: "tls-cert",
        env: "PUSHMON_TLS_CERT",
        default: "plain HTTP",
        about: "PEM file with the certificate chain to serve HTTPS with; needs --tls-key",
        name: "TLS certificate",
        ..SETTING
    };
    pub const TLS_KEY: Setting = Setting {
        flag: "tls-key",
        env: "PUSHMON_TLS_KEY",
        default: "none",
        about: "PEM file with the certificate's private key; needs --tls-cert",
        name: "TLS key",
        ..SETTING
    };
    /// The flag switches the series off; the variable takes true or false.
    pub const MONITOR_METRICS: Setting = Setting {
        flag: "no-monitor-metrics",
        env: "PUSHMON_MONITOR_METRICS",
        default: "included",
        about: "Leave the per-monitor series out of /metrics, for very large installations",
        // Kept from before the settings table: the error names the variable, the only
        // way to give the setting a value that can be wrong.
        name: "PUSHMON_MONITOR_METRICS",
        switch: Some("false"),
    };
    pub const METRICS_LABELS: Setting = Setting {
        flag: "metrics-labels",
        env: "PUSHMON_METRICS_LABELS",
        default: "none",
        about: "Monitor label keys, separated by commas, added to the per-monitor series \
                as label_<key> (e.g. team,env); each adds a label to every series",
        name: "metrics labels",
        ..SETTING
    };

    /// The flag accepts the loss; the variable takes true or false.
    pub const ACCEPT_DATA_LOSS: Setting = Setting {
        flag: "accept-data-loss",
        env: "PUSHMON_ACCEPT_DATA_LOSS",
        default: "false",
        about: "Start even if the store lost acknowledged writes (its journal was truncated \
                or deleted); sequence numbers continue above the lost ones. Use once",
        name: "accept data loss",
        switch: Some("true"),
    };
    pub const GUARD: Setting = Setting {
        flag: "guard",
        env: "PUSHMON_GUARD",
        default: "on",
        about: "Hold missed deadlines as unknown while heartbeat arrivals collapse far below \
                what the monitors predict (an outage between the jobs and pushmon): on or off",
        name: "guard",
        ..SETTING
    };
    pub const GUARD_WINDOW: Setting = Setting {
        flag: "guard-window",
        env: "PUSHMON_GUARD_WINDOW",
        default: "60s",
        about: "Seconds the guard counts arrivals over (`60` or `60s`, 1 to 3600)",
        name: "guard window",
        ..SETTING
    };
    pub const GUARD_MIN_RATIO: Setting = Setting {
        flag: "guard-min-ratio",
        env: "PUSHMON_GUARD_MIN_RATIO",
        default: "0.1",
        about: "The guard trips when arrivals over its window fall below this share of what \
                the monitors predict (between 0 and 1, both excluded)",
        name: "guard minimum ratio",
        ..SETTING
    };
    pub const GUARD_MIN_EXPECTED: Setting = Setting {
        flag: "guard-min-expected",
        env: "PUSHMON_GUARD_MIN_EXPECTED",
        default: "30",
        about: "The guard judges only while the monitors predict at least this many \
                arrivals per window",
        name: "guard minimum expected arrivals",
        ..SETTING
    };
    pub const GUARD_RELEASE_GRACE: Setting = Setting {
        flag: "guard-release-grace",
        env: "PUSHMON_GUARD_RELEASE_GRACE",
        default: "60",
        about: "Seconds a monitor held unknown has to report once the guard releases, \
                before it goes down",
        name: "guard release grace",
        ..SETTING
    };
    pub const GUARD_CHANNELS: Setting = Setting {
        flag: "guard-channels",
        env: "PUSHMON_GUARD_CHANNELS",
        default: "every channel whose send_on takes down alerts",
        about: "Channel ids (comma-separated) the guard's alert about pushmon itself goes to",
        name: "guard channels",
        ..SETTING
    };
    pub const GUARD_RESOLVED: Setting = Setting {
        flag: "guard-resolved",
        env: "PUSHMON_GUARD_RESOLVED",
        default: "off",
        about: "Also send a resolution of the guard's alert about pushmon when arrivals come \
                back: on or off (off: one alert per outage; the release is recorded and shown)",
        name: "guard resolved",
        ..SETTING
    };

    pub const CLUSTER_NATS: Setting = Setting {
        flag: "cluster-nats",
        env: "PUSHMON_CLUSTER_NATS",
        default: "none: one node, the local store",
        about: "NATS servers (comma-separated, e.g. nats://nats-0:4222) of the clustered \
                mode: the pod joins the cluster's shard ownership over JetStream",
        name: "cluster NATS servers",
        ..SETTING
    };
    pub const POD_NAME: Setting = Setting {
        flag: "pod-name",
        env: "PUSHMON_POD_NAME",
        default: "the host name",
        about: "This pod's name in the cluster, unique among its pods (letters, digits, \
                - and _, at most 64)",
        name: "pod name",
        ..SETTING
    };
    pub const CLUSTER_SHARDS: Setting = Setting {
        flag: "cluster-shards",
        env: "PUSHMON_CLUSTER_SHARDS",
        default: "64",
        about: "Shards of the clustered mode (1 to 1024); every pod of a cluster must use \
                the same count",
        name: "cluster shards",
        ..SETTING
    };
    pub const CLUSTER_STREAMS: Setting = Setting {
        flag: "cluster-streams",
        env: "PUSHMON_CLUSTER_STREAMS",
        default: "4",
        about: "JetStream streams the shards are spread over (1 to 1024, at most the shard \
                count: more is taken as the shard count); every pod of a cluster must use \
                the same count",
        name: "cluster streams",
        ..SETTING
    };
    pub const CLUSTER_REPLICAS: Setting = Setting {
        flag: "cluster-replicas",
        env: "PUSHMON_CLUSTER_REPLICAS",
        default: "3",
        about: "Replicas of each shard's JetStream stream (1 to 5), set when the stream is \
                created",
        name: "cluster replicas",
        ..SETTING
    };
    pub const CLUSTER_LEASE: Setting = Setting {
        flag: "cluster-lease",
        env: "PUSHMON_CLUSTER_LEASE",
        default: "5s",
        about: "Seconds a shard owner's lease lasts (`5` or `5s`, 1 to 300): a standby \
                takes a silent owner's shards over after it",
        name: "cluster lease",
        ..SETTING
    };

    /// Every setting, in the order `pushmon serve --help` lists them.
    pub const ALL: [Setting; 45] = [
        LISTEN,
        DATA_DIR,
        ADMIN_TOKEN,
        PUBLIC_URL,
        RESTART_GRACE,
        LOG_FORMAT,
        RATE_LIMIT_PER_SECOND,
        RATE_LIMIT_BURST,
        RATE_LIMIT_IP_PER_SECOND,
        RATE_LIMIT_IP_BURST,
        TRUSTED_PROXIES,
        ALERT_MAX_ATTEMPTS,
        ALERT_RETRY_INITIAL_MS,
        ALERT_TIMEOUT,
        ALERT_DENY_PRIVATE_ADDRESSES,
        DIGEST_WINDOW,
        DIGEST_THRESHOLD,
        DIGEST_WEBHOOKS,
        HEADER_TIMEOUT,
        MAX_CONNECTIONS,
        PING_BODY_LIMIT,
        PING_AUTO_CREATE,
        SIGNATURE_WINDOW,
        MONITORS_FILE,
        HISTORY_MAX_HEARTBEATS,
        HISTORY_MAX_AGE_DAYS,
        HISTORY_SWEEP_SECONDS,
        TLS_CERT,
        TLS_KEY,
        MONITOR_METRICS,
        METRICS_LABELS,
        ACCEPT_DATA_LOSS,
        GUARD,
        GUARD_WINDOW,
        GUARD_MIN_RATIO,
        GUARD_MIN_EXPECTED,
        GUARD_RELEASE_GRACE,
        GUARD_CHANNELS,
        GUARD_RESOLVED,
        CLUSTER_NATS,
        POD_NAME,
        CLUSTER_SHARDS,
        CLUSTER_STREAMS,
        CLUSTER_REPLICAS,
        CLUSTER_LEASE,
    ];
}
