//! Configuration: command-line flags, then `PUSHMON_*` environment variables, then
//! defaults (SPEC section 1). Resolution takes the environment as a lookup function so
//! tests can feed it a map instead of the process environment.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use ipnet::IpNet;

use crate::alert::RetryPolicy;
use crate::store::retention::Retention;

/// The most a restart grace may be: a year, the longest timeout a monitor can have.
const MAX_RESTART_GRACE_SECONDS: u64 = 31_536_000;

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

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Directory of the event store [env: PUSHMON_DATA_DIR] [default: ./pushmon-data]
    #[arg(long, env = "PUSHMON_DATA_DIR", default_value = "./pushmon-data")]
    pub data_dir: PathBuf,
}

/// Flags of `pushmon serve`; each falls back to its environment variable, then a default.
#[derive(Debug, Default, Args)]
pub struct ServeArgs {
    /// Address to listen on [env: PUSHMON_LISTEN] [default: 127.0.0.1:8080]
    #[arg(long)]
    pub listen: Option<String>,
    /// Directory of the event store [env: PUSHMON_DATA_DIR] [default: ./pushmon-data]
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Bearer token for the management API [env: PUSHMON_ADMIN_TOKEN]
    /// [default: generated into <data-dir>/admin-token]
    #[arg(long)]
    pub admin_token: Option<String>,
    /// Base URL used in `push_url` [env: PUSHMON_PUBLIC_URL] [default: http://<listen>]
    #[arg(long)]
    pub public_url: Option<String>,
    /// Seconds of grace for deadlines that fell while the server was stopped; 0 disables
    /// [env: PUSHMON_RESTART_GRACE] [default: 60]
    #[arg(long)]
    pub restart_grace: Option<String>,
    /// Log format [env: PUSHMON_LOG_FORMAT] [default: human]
    #[arg(long, value_enum)]
    pub log_format: Option<LogFormat>,
    /// Sustained pushes per second allowed per token [env: PUSHMON_RATE_LIMIT_PER_SECOND]
    /// [default: 50]
    #[arg(long)]
    pub rate_limit_per_second: Option<String>,
    /// Burst of pushes allowed per token [env: PUSHMON_RATE_LIMIT_BURST] [default: 200]
    #[arg(long)]
    pub rate_limit_burst: Option<String>,
    /// Sustained pushes per second allowed per source address (IPv6: per /64); 0
    /// disables [env: PUSHMON_RATE_LIMIT_IP_PER_SECOND] [default: 1000]
    #[arg(long)]
    pub rate_limit_ip_per_second: Option<String>,
    /// Burst of pushes allowed per source address [env: PUSHMON_RATE_LIMIT_IP_BURST]
    /// [default: 2000]
    #[arg(long)]
    pub rate_limit_ip_burst: Option<String>,
    /// Comma-separated proxy addresses or CIDRs (e.g. 10.0.0.0/8) whose
    /// X-Forwarded-For is believed when finding a push's source address
    /// [env: PUSHMON_TRUSTED_PROXIES] [default: none]
    #[arg(long)]
    pub trusted_proxies: Option<String>,
    /// Attempts per alert delivery before it is recorded as failed
    /// [env: PUSHMON_ALERT_MAX_ATTEMPTS] [default: 10]
    #[arg(long)]
    pub alert_max_attempts: Option<String>,
    /// Wait before the first retry of a failed delivery, in milliseconds; doubles each
    /// time up to 5 minutes [env: PUSHMON_ALERT_RETRY_INITIAL_MS] [default: 1000]
    #[arg(long)]
    pub alert_retry_initial_ms: Option<String>,
    /// Seconds one delivery attempt may take [env: PUSHMON_ALERT_TIMEOUT] [default: 10]
    #[arg(long)]
    pub alert_timeout: Option<String>,
    /// Seconds a client has to send a request's headers (slow-loris bound)
    /// [env: PUSHMON_HEADER_TIMEOUT] [default: 10]
    #[arg(long)]
    pub header_timeout: Option<String>,
    /// Connections served at once; more are closed at once
    /// [env: PUSHMON_MAX_CONNECTIONS] [default: 10000]
    #[arg(long)]
    pub max_connections: Option<String>,
    /// Monitors and channels declared as code, reconciled at start-up and on SIGHUP
    /// [env: PUSHMON_MONITORS_FILE]
    #[arg(long)]
    pub monitors_file: Option<PathBuf>,
    /// Heartbeats kept in each monitor's history; 0 keeps all. State changes, alerts
    /// and configuration events are always kept
    /// [env: PUSHMON_HISTORY_MAX_HEARTBEATS] [default: 1000]
    #[arg(long)]
    pub history_max_heartbeats: Option<String>,
    /// Days a heartbeat is kept in the history; 0 keeps them forever
    /// [env: PUSHMON_HISTORY_MAX_AGE_DAYS] [default: 90]
    #[arg(long)]
    pub history_max_age_days: Option<String>,
    /// Seconds between two sweeps applying the history limits
    /// [env: PUSHMON_HISTORY_SWEEP_SECONDS] [default: 300]
    #[arg(long)]
    pub history_sweep_seconds: Option<String>,
    /// PEM file with the certificate chain to serve HTTPS with; needs --tls-key
    /// [env: PUSHMON_TLS_CERT] [default: plain HTTP]
    #[arg(long)]
    pub tls_cert: Option<PathBuf>,
    /// PEM file with the certificate's private key; needs --tls-cert
    /// [env: PUSHMON_TLS_KEY]
    #[arg(long)]
    pub tls_key: Option<PathBuf>,
    /// Leave the per-monitor series out of /metrics, for very large installations
    /// [env: PUSHMON_MONITOR_METRICS=false]
    #[arg(long)]
    pub no_monitor_metrics: bool,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

/// The per-token push rate limit of SPEC 2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    pub per_second: u32,
    pub burst: u32,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self {
            per_second: 50,
            burst: 200,
        }
    }
}

impl RateLimit {
    /// The default per-source-address limit: generous, since one NAT or egress
    /// gateway can front many jobs.
    pub const PER_IP_DEFAULT: Self = Self {
        per_second: 1000,
        burst: 2000,
    };
}

/// Proxies whose `X-Forwarded-For` is believed: addresses and CIDR ranges.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, address: IpAddr) -> bool {
        let address = address.to_canonical();
        self.0.iter().any(|range| range.contains(&address))
    }
}

impl FromStr for TrustedProxies {
    type Err = ConfigError;

    /// A comma-separated list of addresses (`10.1.2.3`, `::1`) and CIDRs
    /// (`10.0.0.0/8`, `fd00::/8`); blanks are ignored.
    fn from_str(text: &str) -> Result<Self, ConfigError> {
        let mut ranges = Vec::new();
        for item in text
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
        {
            let range =
                match item.parse::<IpNet>() {
                    Ok(range) => range,
                    Err(_) => item.parse::<IpAddr>().map(IpNet::from).map_err(|_| {
                        ConfigError::Invalid {
                            name: "trusted proxies",
                            reason: format!(
                                "{item:?} is not an IP address or a CIDR range like 10.0.0.0/8"
                            ),
                        }
                    })?,
                };
            ranges.push(range);
        }
        Ok(Self(ranges))
    }
}

/// The certificate chain and private key (PEM files) of native TLS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The validated configuration the server runs with.
#[derive(Clone, Debug)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub admin_token: Option<String>,
    pub public_url: Option<String>,
    pub restart_grace: Duration,
    pub log_format: LogFormat,
    pub rate_limit: RateLimit,
    /// The per-source-address push limit; `None` when switched off.
    pub ip_rate_limit: Option<RateLimit>,
    /// Proxies whose `X-Forwarded-For` names a push's source address.
    pub trusted_proxies: TrustedProxies,
    /// Serve HTTPS (only) with these, if set.
    pub tls: Option<TlsFiles>,
    pub alert_retry: RetryPolicy,
    pub alert_timeout: Duration,
    /// Per-monitor series in `/metrics` (SPEC 6); off for very large installations.
    pub monitor_metrics: bool,
    /// The declarative monitors file, if any.
    pub monitors_file: Option<PathBuf>,
    /// Time a client has to send a request's headers.
    pub header_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
    /// How much heartbeat history each monitor keeps.
    pub retention: Retention,
    /// Time between two retention sweeps.
    pub history_sweep: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid {name}: {reason}")]
    Invalid { name: &'static str, reason: String },
}

impl Config {
    /// Defaults, with the store in `data_dir`.
    pub fn with_data_dir(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: data_dir.into(),
            admin_token: None,
            public_url: None,
            restart_grace: Duration::from_secs(60),
            log_format: LogFormat::Human,
            rate_limit: RateLimit::default(),
            ip_rate_limit: Some(RateLimit::PER_IP_DEFAULT),
            trusted_proxies: TrustedProxies::default(),
            tls: None,
            alert_retry: RetryPolicy::default(),
            alert_timeout: Duration::from_secs(10),
            monitor_metrics: true,
            monitors_file: None,
            header_timeout: Duration::from_secs(10),
            max_connections: 10_000,
            retention: Retention::default(),
            history_sweep: Duration::from_secs(300),
        }
    }

    /// Flags first, then the environment as `env` reports it, then defaults.
    pub fn resolve(
        args: ServeArgs,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let data_dir = args
            .data_dir
            .or_else(|| env("PUSHMON_DATA_DIR").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("./pushmon-data"));
        let mut config = Self::with_data_dir(data_dir);

        if let Some(listen) = args.listen.or_else(|| env("PUSHMON_LISTEN")) {
            config.listen = listen.parse().map_err(|_| ConfigError::Invalid {
                name: "listen address",
                reason: format!("{listen:?} is not an IP address and port like 127.0.0.1:8080"),
            })?;
        }
        config.admin_token = args
            .admin_token
            .or_else(|| env("PUSHMON_ADMIN_TOKEN"))
            .filter(|token| !token.is_empty());
        if let Some(token) = &config.admin_token
            && token.len() < 16
        {
            return Err(ConfigError::Invalid {
                name: "admin token",
                reason: "must be at least 16 characters".to_owned(),
            });
        }
        config.public_url = args
            .public_url
            .or_else(|| env("PUSHMON_PUBLIC_URL"))
            .map(|url| url.trim_end_matches('/').to_owned());
        if let Some(grace) = args.restart_grace.or_else(|| env("PUSHMON_RESTART_GRACE")) {
            let seconds = parse_number("restart grace", &grace, 0, MAX_RESTART_GRACE_SECONDS)?;
            config.restart_grace = Duration::from_secs(seconds);
        }
        if let Some(format) = args.log_format {
            config.log_format = format;
        } else if let Some(format) = env("PUSHMON_LOG_FORMAT") {
            config.log_format =
                LogFormat::from_str(&format, true).map_err(|_| ConfigError::Invalid {
                    name: "log format",
                    reason: format!("{format:?} is neither human nor json"),
                })?;
        }
        if let Some(rate) = args
            .rate_limit_per_second
            .or_else(|| env("PUSHMON_RATE_LIMIT_PER_SECOND"))
        {
            config.rate_limit.per_second =
                parse_number("rate limit per second", &rate, 1, u64::from(u32::MAX))? as u32;
        }
        if let Some(burst) = args
            .rate_limit_burst
            .or_else(|| env("PUSHMON_RATE_LIMIT_BURST"))
        {
            config.rate_limit.burst =
                parse_number("rate limit burst", &burst, 1, u64::from(u32::MAX))? as u32;
        }
        let mut ip_rate_limit = RateLimit::PER_IP_DEFAULT;
        if let Some(rate) = args
            .rate_limit_ip_per_second
            .or_else(|| env("PUSHMON_RATE_LIMIT_IP_PER_SECOND"))
        {
            ip_rate_limit.per_second =
                parse_number("rate limit per address", &rate, 0, u64::from(u32::MAX))? as u32;
        }
        if let Some(burst) = args
            .rate_limit_ip_burst
            .or_else(|| env("PUSHMON_RATE_LIMIT_IP_BURST"))
        {
            ip_rate_limit.burst = parse_number(
                "rate limit burst per address",
                &burst,
                1,
                u64::from(u32::MAX),
            )? as u32;
        }
        config.ip_rate_limit = (ip_rate_limit.per_second > 0).then_some(ip_rate_limit);
        if let Some(proxies) = args
            .trusted_proxies
            .or_else(|| env("PUSHMON_TRUSTED_PROXIES"))
        {
            config.trusted_proxies = proxies.parse()?;
        }
        let tls_cert = args
            .tls_cert
            .or_else(|| env("PUSHMON_TLS_CERT").map(PathBuf::from))
            .filter(|path| !path.as_os_str().is_empty());
        let tls_key = args
            .tls_key
            .or_else(|| env("PUSHMON_TLS_KEY").map(PathBuf::from))
            .filter(|path| !path.as_os_str().is_empty());
        config.tls = match (tls_cert, tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            (None, None) => None,
            (Some(_), None) | (None, Some(_)) => {
                return Err(ConfigError::Invalid {
                    name: "TLS settings",
                    reason: "--tls-cert (PUSHMON_TLS_CERT) and --tls-key (PUSHMON_TLS_KEY) \
                             go together: give both, or neither for plain HTTP"
                        .to_owned(),
                });
            }
        };
        if let Some(attempts) = args
            .alert_max_attempts
            .or_else(|| env("PUSHMON_ALERT_MAX_ATTEMPTS"))
        {
            config.alert_retry.max_attempts =
                parse_number("alert max attempts", &attempts, 1, 1000)? as u32;
        }
        if let Some(initial) = args
            .alert_retry_initial_ms
            .or_else(|| env("PUSHMON_ALERT_RETRY_INITIAL_MS"))
        {
            config.alert_retry.initial = Duration::from_millis(parse_number(
                "alert retry initial ms",
                &initial,
                1,
                3_600_000,
            )?);
        }
        if let Some(seconds) = args
            .header_timeout
            .or_else(|| env("PUSHMON_HEADER_TIMEOUT"))
        {
            config.header_timeout =
                Duration::from_secs(parse_number("header timeout", &seconds, 1, 3600)?);
        }
        if let Some(count) = args
            .max_connections
            .or_else(|| env("PUSHMON_MAX_CONNECTIONS"))
        {
            config.max_connections =
                parse_number("max connections", &count, 1, 1_000_000)? as usize;
        }
        config.monitors_file = args
            .monitors_file
            .or_else(|| env("PUSHMON_MONITORS_FILE").map(PathBuf::from));
        if args.no_monitor_metrics {
            config.monitor_metrics = false;
        } else if let Some(flag) = env("PUSHMON_MONITOR_METRICS") {
            config.monitor_metrics = match flag.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => true,
                "false" | "0" | "no" | "off" => false,
                _ => {
                    return Err(ConfigError::Invalid {
                        name: "PUSHMON_MONITOR_METRICS",
                        reason: format!("{flag:?} is neither true nor false"),
                    });
                }
            };
        }
        if let Some(timeout) = args.alert_timeout.or_else(|| env("PUSHMON_ALERT_TIMEOUT")) {
            config.alert_timeout =
                Duration::from_secs(parse_number("alert timeout", &timeout, 1, 600)?);
        }
        if let Some(count) = args
            .history_max_heartbeats
            .or_else(|| env("PUSHMON_HISTORY_MAX_HEARTBEATS"))
        {
            let count = parse_number("history max heartbeats", &count, 0, u64::from(u32::MAX))?;
            config.retention.max_heartbeats = (count > 0).then_some(count as usize);
        }
        if let Some(days) = args
            .history_max_age_days
            .or_else(|| env("PUSHMON_HISTORY_MAX_AGE_DAYS"))
        {
            let days = parse_number("history max age days", &days, 0, 36_500)?;
            config.retention.max_age = (days > 0).then(|| Duration::from_secs(days * 24 * 3600));
        }
        if let Some(seconds) = args
            .history_sweep_seconds
            .or_else(|| env("PUSHMON_HISTORY_SWEEP_SECONDS"))
        {
            config.history_sweep =
                Duration::from_secs(parse_number("history sweep seconds", &seconds, 1, 86_400)?);
        }
        Ok(config)
    }

    /// The base of every `push_url`: `http://<listen>`, or `https://` with TLS.
    pub fn public_base_url(&self, bound: SocketAddr) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("{scheme}://{bound}"))
    }

    pub fn restart_grace_seconds(&self) -> u32 {
        u32::try_from(self.restart_grace.as_secs()).unwrap_or(u32::MAX)
    }
}

fn parse_number(name: &'static str, text: &str, min: u64, max: u64) -> Result<u64, ConfigError> {
    match text.trim().parse::<u64>() {
        Ok(value) if (min..=max).contains(&value) => Ok(value),
        _ => Err(ConfigError::Invalid {
            name,
            reason: format!("{text:?} is not a whole number from {min} to {max}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn resolve(args: ServeArgs, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect();
        Config::resolve(args, |key| env.get(key).cloned())
    }

    #[test]
    fn defaults_match_the_spec() {
        let config = resolve(ServeArgs::default(), &[]).expect("defaults are valid");
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.data_dir, PathBuf::from("./pushmon-data"));
        assert_eq!(config.restart_grace, Duration::from_secs(60));
        assert_eq!(config.rate_limit, RateLimit::default());
        assert_eq!(
            config.ip_rate_limit,
            Some(RateLimit {
                per_second: 1000,
                burst: 2000
            })
        );
        assert!(config.trusted_proxies.is_empty());
        assert_eq!(
            config.public_base_url(config.listen),
            "http://127.0.0.1:8080"
        );
    }

    #[test]
    fn flags_win_over_env_and_env_over_defaults() {
        let args = ServeArgs {
            listen: Some("0.0.0.0:9000".to_owned()),
            ..ServeArgs::default()
        };
        let config = resolve(
            args,
            &[
                ("PUSHMON_LISTEN", "127.0.0.1:1"),
                ("PUSHMON_RESTART_GRACE", "0"),
                ("PUSHMON_PUBLIC_URL", "https://pm.example.com/"),
                ("PUSHMON_LOG_FORMAT", "json"),
            ],
        )
        .expect("valid");
        assert_eq!(config.listen.to_string(), "0.0.0.0:9000");
        assert_eq!(config.restart_grace, Duration::ZERO);
        assert_eq!(config.public_url.as_deref(), Some("https://pm.example.com"));
        assert_eq!(config.log_format, LogFormat::Json);
    }

    #[test]
    fn the_per_address_limit_is_configurable_and_zero_switches_it_off() {
        let config = resolve(
            ServeArgs {
                rate_limit_ip_burst: Some("10".to_owned()),
                ..ServeArgs::default()
            },
            &[("PUSHMON_RATE_LIMIT_IP_PER_SECOND", "5")],
        )
        .expect("valid");
        assert_eq!(
            config.ip_rate_limit,
            Some(RateLimit {
                per_second: 5,
                burst: 10
            })
        );
        let config = resolve(
            ServeArgs::default(),
            &[("PUSHMON_RATE_LIMIT_IP_PER_SECOND", "0")],
        )
        .expect("valid");
        assert_eq!(config.ip_rate_limit, None);
        let error = resolve(
            ServeArgs::default(),
            &[("PUSHMON_RATE_LIMIT_IP_BURST", "0")],
        )
        .expect_err("a burst of 0 lets nothing through");
        assert!(error.to_string().contains("per address"), "{error}");
    }

    #[test]
    fn trusted_proxies_are_addresses_and_ranges() {
        let config = resolve(
            ServeArgs {
                trusted_proxies: Some(" 10.0.0.0/8, 192.168.1.7 ,fd00::/8,".to_owned()),
                ..ServeArgs::default()
            },
            &[],
        )
        .expect("valid");
        let proxies = &config.trusted_proxies;
        for trusted in ["10.1.2.3", "192.168.1.7", "fd00::1", "::ffff:10.9.9.9"] {
            assert!(proxies.contains(trusted.parse().unwrap()), "{trusted}");
        }
        for untrusted in ["11.0.0.1", "192.168.1.8", "fe80::1"] {
            assert!(!proxies.contains(untrusted.parse().unwrap()), "{untrusted}");
        }
        let error = resolve(
            ServeArgs::default(),
            &[("PUSHMON_TRUSTED_PROXIES", "10.0.0.0/8,ingress")],
        )
        .expect_err("not an address");
        assert!(error.to_string().contains("\"ingress\""), "{error}");
    }

    #[test]
    fn tls_needs_both_files_and_makes_the_default_url_https() {
        let config = resolve(
            ServeArgs {
                tls_cert: Some(PathBuf::from("/etc/pushmon/cert.pem")),
                ..ServeArgs::default()
            },
            &[("PUSHMON_TLS_KEY", "/etc/pushmon/key.pem")],
        )
        .expect("valid");
        assert_eq!(
            config.tls,
            Some(TlsFiles {
                cert: PathBuf::from("/etc/pushmon/cert.pem"),
                key: PathBuf::from("/etc/pushmon/key.pem"),
            })
        );
        assert_eq!(
            config.public_base_url(config.listen),
            "https://127.0.0.1:8080"
        );
        for env in [
            [("PUSHMON_TLS_CERT", "/c.pem")],
            [("PUSHMON_TLS_KEY", "/k.pem")],
        ] {
            let error = resolve(ServeArgs::default(), &env).expect_err("only one of the two");
            assert!(error.to_string().contains("both"), "{error}");
        }
    }

    #[test]
    fn invalid_values_name_what_is_wrong() {
        let error = resolve(ServeArgs::default(), &[("PUSHMON_RESTART_GRACE", "soon")])
            .expect_err("not a number");
        assert!(error.to_string().contains("restart grace"), "{error}");
        let error = resolve(ServeArgs::default(), &[("PUSHMON_ADMIN_TOKEN", "short")])
            .expect_err("too short");
        assert!(error.to_string().contains("admin token"), "{error}");
    }

    /// One setting's row: its flag and environment variable, a value given through
    /// either, what the configuration shows for it and with nothing given, more values
    /// it accepts, and values it rejects with the exact error.
    struct Case {
        flag: &'static str,
        env: &'static str,
        /// `--no-monitor-metrics` takes no value: giving the flag means `value`.
        switch: bool,
        /// How clap itself rejects the `rejected` values given as the flag (an
        /// unknown `ValueEnum` variant, an empty path).
        clap_rejects: Option<clap::error::ErrorKind>,
        value: &'static str,
        shows: &'static str,
        default: &'static str,
        /// More accepted values (through the environment) and what they show.
        accepted: &'static [(&'static str, &'static str)],
        /// Rejected values and the whole error message.
        rejected: &'static [(&'static str, &'static str)],
        /// Other settings the case needs to be valid.
        with: &'static [(&'static str, &'static str)],
        observe: fn(&Config) -> String,
    }

    const CASE: Case = Case {
        flag: "",
        env: "",
        switch: false,
        clap_rejects: None,
        value: "",
        shows: "",
        default: "",
        accepted: &[],
        rejected: &[],
        with: &[],
        observe: |_| String::new(),
    };

    fn cases() -> Vec<Case> {
        vec![
            Case {
                flag: "--listen",
                env: "PUSHMON_LISTEN",
                value: "0.0.0.0:9000",
                shows: "0.0.0.0:9000",
                default: "127.0.0.1:8080",
                accepted: &[("[::1]:80", "[::1]:80")],
                rejected: &[
                    (
                        "localhost:8080",
                        "invalid listen address: \"localhost:8080\" is not an IP address and port like 127.0.0.1:8080",
                    ),
                    (
                        "127.0.0.1",
                        "invalid listen address: \"127.0.0.1\" is not an IP address and port like 127.0.0.1:8080",
                    ),
                ],
                observe: |config| config.listen.to_string(),
                ..CASE
            },
            Case {
                flag: "--data-dir",
                env: "PUSHMON_DATA_DIR",
                value: "/srv/pushmon",
                shows: "\"/srv/pushmon\"",
                default: "\"./pushmon-data\"",
                observe: |config| format!("{:?}", config.data_dir),
                ..CASE
            },
            Case {
                flag: "--admin-token",
                env: "PUSHMON_ADMIN_TOKEN",
                value: "0123456789abcdef",
                shows: "Some(\"0123456789abcdef\")",
                default: "None",
                accepted: &[("", "None")],
                rejected: &[(
                    "0123456789abcde",
                    "invalid admin token: must be at least 16 characters",
                )],
                observe: |config| format!("{:?}", config.admin_token),
                ..CASE
            },
            Case {
                flag: "--public-url",
                env: "PUSHMON_PUBLIC_URL",
                value: "https://pm.example.com/",
                shows: "Some(\"https://pm.example.com\")",
                default: "None",
                accepted: &[("http://10.0.0.1:8080", "Some(\"http://10.0.0.1:8080\")")],
                observe: |config| format!("{:?}", config.public_url),
                ..CASE
            },
            Case {
                flag: "--restart-grace",
                env: "PUSHMON_RESTART_GRACE",
                value: "0",
                shows: "0ns",
                default: "60s",
                accepted: &[("31536000", "31536000s"), (" 5 ", "5s")],
                rejected: &[
                    (
                        "31536001",
                        "invalid restart grace: \"31536001\" is not a whole number from 0 to 31536000",
                    ),
                    (
                        "soon",
                        "invalid restart grace: \"soon\" is not a whole number from 0 to 31536000",
                    ),
                    (
                        "-1",
                        "invalid restart grace: \"-1\" is not a whole number from 0 to 31536000",
                    ),
                ],
                observe: |config| format!("{:?}", config.restart_grace),
                ..CASE
            },
            Case {
                flag: "--log-format",
                env: "PUSHMON_LOG_FORMAT",
                clap_rejects: Some(clap::error::ErrorKind::InvalidValue),
                value: "json",
                shows: "Json",
                default: "Human",
                accepted: &[("JSON", "Json"), ("human", "Human")],
                rejected: &[(
                    "xml",
                    "invalid log format: \"xml\" is neither human nor json",
                )],
                observe: |config| format!("{:?}", config.log_format),
                ..CASE
            },
            Case {
                flag: "--rate-limit-per-second",
                env: "PUSHMON_RATE_LIMIT_PER_SECOND",
                value: "7",
                shows: "7",
                default: "50",
                accepted: &[("1", "1"), ("4294967295", "4294967295")],
                rejected: &[
                    (
                        "0",
                        "invalid rate limit per second: \"0\" is not a whole number from 1 to 4294967295",
                    ),
                    (
                        "4294967296",
                        "invalid rate limit per second: \"4294967296\" is not a whole number from 1 to 4294967295",
                    ),
                ],
                observe: |config| config.rate_limit.per_second.to_string(),
                ..CASE
            },
            Case {
                flag: "--rate-limit-burst",
                env: "PUSHMON_RATE_LIMIT_BURST",
                value: "7",
                shows: "7",
                default: "200",
                accepted: &[("1", "1"), ("4294967295", "4294967295")],
                rejected: &[
                    (
                        "0",
                        "invalid rate limit burst: \"0\" is not a whole number from 1 to 4294967295",
                    ),
                    (
                        "4294967296",
                        "invalid rate limit burst: \"4294967296\" is not a whole number from 1 to 4294967295",
                    ),
                ],
                observe: |config| config.rate_limit.burst.to_string(),
                ..CASE
            },
            Case {
                flag: "--rate-limit-ip-per-second",
                env: "PUSHMON_RATE_LIMIT_IP_PER_SECOND",
                value: "5",
                shows: "Some(RateLimit { per_second: 5, burst: 2000 })",
                default: "Some(RateLimit { per_second: 1000, burst: 2000 })",
                accepted: &[
                    ("0", "None"),
                    (
                        "4294967295",
                        "Some(RateLimit { per_second: 4294967295, burst: 2000 })",
                    ),
                ],
                rejected: &[(
                    "4294967296",
                    "invalid rate limit per address: \"4294967296\" is not a whole number from 0 to 4294967295",
                )],
                observe: |config| format!("{:?}", config.ip_rate_limit),
                ..CASE
            },
            Case {
                flag: "--rate-limit-ip-burst",
                env: "PUSHMON_RATE_LIMIT_IP_BURST",
                value: "10",
                shows: "Some(RateLimit { per_second: 1000, burst: 10 })",
                default: "Some(RateLimit { per_second: 1000, burst: 2000 })",
                accepted: &[("1", "Some(RateLimit { per_second: 1000, burst: 1 })")],
                rejected: &[
                    (
                        "0",
                        "invalid rate limit burst per address: \"0\" is not a whole number from 1 to 4294967295",
                    ),
                    (
                        "4294967296",
                        "invalid rate limit burst per address: \"4294967296\" is not a whole number from 1 to 4294967295",
                    ),
                ],
                observe: |config| format!("{:?}", config.ip_rate_limit),
                ..CASE
            },
            Case {
                flag: "--trusted-proxies",
                env: "PUSHMON_TRUSTED_PROXIES",
                value: "10.0.0.0/8, ::1",
                shows: "TrustedProxies([10.0.0.0/8, ::1/128])",
                default: "TrustedProxies([])",
                accepted: &[(" , ", "TrustedProxies([])")],
                rejected: &[(
                    "10.0.0.0/8,ingress",
                    "invalid trusted proxies: \"ingress\" is not an IP address or a CIDR range like 10.0.0.0/8",
                )],
                observe: |config| format!("{:?}", config.trusted_proxies),
                ..CASE
            },
            Case {
                flag: "--alert-max-attempts",
                env: "PUSHMON_ALERT_MAX_ATTEMPTS",
                value: "3",
                shows: "3",
                default: "10",
                accepted: &[("1", "1"), ("1000", "1000")],
                rejected: &[
                    (
                        "0",
                        "invalid alert max attempts: \"0\" is not a whole number from 1 to 1000",
                    ),
                    (
                        "1001",
                        "invalid alert max attempts: \"1001\" is not a whole number from 1 to 1000",
                    ),
                ],
                observe: |config| config.alert_retry.max_attempts.to_string(),
                ..CASE
            },
            Case {
                flag: "--alert-retry-initial-ms",
                env: "PUSHMON_ALERT_RETRY_INITIAL_MS",
                value: "250",
                shows: "250ms",
                default: "1s",
                accepted: &[("1", "1ms"), ("3600000", "3600s")],
                rejected: &[
                    (
                        "0",
                        "invalid alert retry initial ms: \"0\" is not a whole number from 1 to 3600000",
                    ),
                    (
                        "3600001",
                        "invalid alert retry initial ms: \"3600001\" is not a whole number from 1 to 3600000",
                    ),
                ],
                observe: |config| format!("{:?}", config.alert_retry.initial),
                ..CASE
            },
            Case {
                flag: "--alert-timeout",
                env: "PUSHMON_ALERT_TIMEOUT",
                value: "3",
                shows: "3s",
                default: "10s",
                accepted: &[("1", "1s"), ("600", "600s")],
                rejected: &[
                    (
                        "0",
                        "invalid alert timeout: \"0\" is not a whole number from 1 to 600",
                    ),
                    (
                        "601",
                        "invalid alert timeout: \"601\" is not a whole number from 1 to 600",
                    ),
                ],
                observe: |config| format!("{:?}", config.alert_timeout),
                ..CASE
            },
            Case {
                flag: "--header-timeout",
                env: "PUSHMON_HEADER_TIMEOUT",
                value: "3",
                shows: "3s",
                default: "10s",
                accepted: &[("1", "1s"), ("3600", "3600s")],
                rejected: &[
                    (
                        "0",
                        "invalid header timeout: \"0\" is not a whole number from 1 to 3600",
                    ),
                    (
                        "3601",
                        "invalid header timeout: \"3601\" is not a whole number from 1 to 3600",
                    ),
                ],
                observe: |config| format!("{:?}", config.header_timeout),
                ..CASE
            },
            Case {
                flag: "--max-connections",
                env: "PUSHMON_MAX_CONNECTIONS",
                value: "64",
                shows: "64",
                default: "10000",
                accepted: &[("1", "1"), ("1000000", "1000000")],
                rejected: &[
                    (
                        "0",
                        "invalid max connections: \"0\" is not a whole number from 1 to 1000000",
                    ),
                    (
                        "1000001",
                        "invalid max connections: \"1000001\" is not a whole number from 1 to 1000000",
                    ),
                ],
                observe: |config| config.max_connections.to_string(),
                ..CASE
            },
            Case {
                flag: "--monitors-file",
                env: "PUSHMON_MONITORS_FILE",
                value: "/etc/pushmon/monitors.yaml",
                shows: "Some(\"/etc/pushmon/monitors.yaml\")",
                default: "None",
                observe: |config| format!("{:?}", config.monitors_file),
                ..CASE
            },
            Case {
                flag: "--history-max-heartbeats",
                env: "PUSHMON_HISTORY_MAX_HEARTBEATS",
                value: "20",
                shows: "Some(20)",
                default: "Some(1000)",
                accepted: &[("0", "None"), ("4294967295", "Some(4294967295)")],
                rejected: &[(
                    "4294967296",
                    "invalid history max heartbeats: \"4294967296\" is not a whole number from 0 to 4294967295",
                )],
                observe: |config| format!("{:?}", config.retention.max_heartbeats),
                ..CASE
            },
            Case {
                flag: "--history-max-age-days",
                env: "PUSHMON_HISTORY_MAX_AGE_DAYS",
                value: "2",
                shows: "Some(172800s)",
                default: "Some(7776000s)",
                accepted: &[("0", "None"), ("36500", "Some(3153600000s)")],
                rejected: &[(
                    "36501",
                    "invalid history max age days: \"36501\" is not a whole number from 0 to 36500",
                )],
                observe: |config| format!("{:?}", config.retention.max_age),
                ..CASE
            },
            Case {
                flag: "--history-sweep-seconds",
                env: "PUSHMON_HISTORY_SWEEP_SECONDS",
                value: "30",
                shows: "30s",
                default: "300s",
                accepted: &[("1", "1s"), ("86400", "86400s")],
                rejected: &[
                    (
                        "0",
                        "invalid history sweep seconds: \"0\" is not a whole number from 1 to 86400",
                    ),
                    (
                        "86401",
                        "invalid history sweep seconds: \"86401\" is not a whole number from 1 to 86400",
                    ),
                ],
                observe: |config| format!("{:?}", config.history_sweep),
                ..CASE
            },
            Case {
                flag: "--tls-cert",
                clap_rejects: Some(clap::error::ErrorKind::InvalidValue),
                env: "PUSHMON_TLS_CERT",
                value: "/c.pem",
                shows: "Some(\"/c.pem\")",
                default: "None",
                rejected: &[("", TLS_PAIR_ERROR)],
                with: &[("PUSHMON_TLS_KEY", "/k.pem")],
                observe: |config| format!("{:?}", config.tls.as_ref().map(|tls| &tls.cert)),
                ..CASE
            },
            Case {
                flag: "--tls-key",
                clap_rejects: Some(clap::error::ErrorKind::InvalidValue),
                env: "PUSHMON_TLS_KEY",
                value: "/k.pem",
                shows: "Some(\"/k.pem\")",
                default: "None",
                rejected: &[("", TLS_PAIR_ERROR)],
                with: &[("PUSHMON_TLS_CERT", "/c.pem")],
                observe: |config| format!("{:?}", config.tls.as_ref().map(|tls| &tls.key)),
                ..CASE
            },
            Case {
                flag: "--no-monitor-metrics",
                env: "PUSHMON_MONITOR_METRICS",
                switch: true,
                value: "false",
                shows: "false",
                default: "true",
                accepted: &[
                    ("off", "false"),
                    ("0", "false"),
                    ("No", "false"),
                    ("TRUE", "true"),
                    (" yes ", "true"),
                    ("1", "true"),
                    ("on", "true"),
                ],
                rejected: &[(
                    "maybe",
                    "invalid PUSHMON_MONITOR_METRICS: \"maybe\" is neither true nor false",
                )],
                observe: |config| config.monitor_metrics.to_string(),
                ..CASE
            },
        ]
    }

    const TLS_PAIR_ERROR: &str = "invalid TLS settings: --tls-cert (PUSHMON_TLS_CERT) and \
        --tls-key (PUSHMON_TLS_KEY) go together: give both, or neither for plain HTTP";

    /// `pushmon serve` with `flags`, resolved against `env`.
    fn serve(flags: &[String], env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let cli = Cli::try_parse_from(
            ["pushmon", "serve"]
                .iter()
                .map(|arg| arg.to_string())
                .chain(flags.iter().cloned()),
        )
        .unwrap_or_else(|error| panic!("{flags:?}: {error}"));
        let Command::Serve(args) = cli.command else {
            panic!("not serve")
        };
        resolve(*args, env)
    }

    /// The flag giving `value` (as `--flag=value`, so that `-1` is a value).
    fn flags(case: &Case, value: &str) -> Vec<String> {
        if case.switch {
            vec![case.flag.to_owned()]
        } else {
            vec![format!("{}={value}", case.flag)]
        }
    }

    #[test]
    fn every_setting_has_a_flag_an_env_var_a_default_and_a_range() {
        for case in cases() {
            let label = case.flag;
            let shown = |config: Result<Config, ConfigError>| match config {
                Ok(config) => (case.observe)(&config),
                Err(error) => panic!("{label}: {error}"),
            };
            assert_eq!(shown(serve(&[], &[])), case.default, "{label}: default");

            let mut env = case.with.to_vec();
            assert_eq!(
                shown(serve(&flags(&case, case.value), &env)),
                case.shows,
                "{label}: flag"
            );
            env.push((case.env, case.value));
            assert_eq!(shown(serve(&[], &env)), case.shows, "{label}: env var");

            // The flag wins: the environment variable is not even read.
            let mut env = case.with.to_vec();
            env.push((case.env, "not a valid value"));
            assert_eq!(
                shown(serve(&flags(&case, case.value), &env)),
                case.shows,
                "{label}: flag over env var"
            );

            for (value, shows) in case.accepted {
                let mut env = case.with.to_vec();
                env.push((case.env, value));
                assert_eq!(
                    shown(serve(&[], &env)),
                    *shows,
                    "{label}: env var {value:?}"
                );
            }

            for (value, message) in case.rejected {
                let mut env = case.with.to_vec();
                env.push((case.env, value));
                let error = serve(&[], &env).expect_err(label);
                assert_eq!(error.to_string(), *message, "{label}: env var {value:?}");
                if case.switch {
                    continue;
                }
                let flags = flags(&case, value);
                if let Some(kind) = case.clap_rejects {
                    let error = Cli::try_parse_from(
                        ["pushmon".to_owned(), "serve".to_owned()]
                            .into_iter()
                            .chain(flags),
                    )
                    .expect_err(label);
                    assert_eq!(error.kind(), kind, "{label}");
                    continue;
                }
                let error = serve(&flags, case.with).expect_err(label);
                assert_eq!(error.to_string(), *message, "{label}: flag {value:?}");
            }
        }
    }

    #[test]
    fn the_cases_cover_every_flag_of_serve() {
        use clap::CommandFactory as _;
        let command = Cli::command();
        let serve = command
            .find_subcommand("serve")
            .expect("serve is a subcommand");
        let mut flags: Vec<String> = serve
            .get_arguments()
            .filter_map(|arg| arg.get_long())
            .filter(|flag| *flag != "help")
            .map(|flag| format!("--{flag}"))
            .collect();
        flags.sort();
        let mut covered: Vec<String> = cases().iter().map(|case| case.flag.to_owned()).collect();
        covered.sort();
        assert_eq!(flags, covered);
    }
}
