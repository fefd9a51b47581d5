//! The command line as clap parses it: `pushmon serve` and `pushmon check`. Flags stay
//! raw here (text, or a path or choice clap has already read) and clap reads no
//! environment variable: `config` resolves each flag against its `PUSHMON_*` variable
//! and default. Each flag's name and help come from its entry in `config::setting`, so
//! `--help`, resolution and error messages name the same variable and default.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::LogFormat;
use crate::config::setting;

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
}

/// Flags of `pushmon check`.
#[derive(Debug, Default, Args)]
pub struct CheckArgs {
    #[arg(long = setting::DATA_DIR.flag, help = setting::DATA_DIR.help())]
    pub data_dir: Option<PathBuf>,
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
    #[arg(long = setting::HEADER_TIMEOUT.flag, help = setting::HEADER_TIMEOUT.help())]
    pub header_timeout: Option<String>,
    #[arg(long = setting::MAX_CONNECTIONS.flag, help = setting::MAX_CONNECTIONS.help())]
    pub max_connections: Option<String>,
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
}
