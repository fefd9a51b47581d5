//! The validated configuration the server runs with, and its resolution: each setting
//! from its flag, else its `PUSHMON_*` environment variable, else its default
//! (`docs/configuration.md`). [`setting`] lists every setting once (flag, variable, default
//! and name); it lives in `cli`, beside the clap types that take each flag's name and
//! help from it, so that `config` imports `cli` and not the other way round. One
//! helper here, `Setting::resolve`, reads each setting. Resolution takes the
//! environment as a lookup function so tests can feed it a map instead of the process
//! environment.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::ValueEnum as _;
use ipnet::IpNet;

use crate::alert::{AddressPolicy, DigestPolicy, RetryPolicy};
use crate::cli::setting::{self, Setting};
use crate::cli::{CheckArgs, ClusterReleaseArgs, ServeArgs};
use crate::domain::event::{DEFAULT_OUTPUT_LIMIT, MAX_OUTPUT_LIMIT};
use crate::domain::guard::GuardSettings;
use crate::domain::ids::ChannelId;
use crate::store::retention::Retention;
use crate::telemetry::LogFormat;

mod parse;

use parse::*;

pub use parse::check_data_dir;

/// The most a restart grace may be: a year, the longest timeout a monitor can have.
const MAX_RESTART_GRACE_SECONDS: u64 = 31_536_000;

/// The per-token push rate limit.
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
    /// The default per-source-address limit on pushes with an unknown token:
    /// generous, since one NAT, egress gateway or untrusted ingress can front many
    /// jobs, some with stale tokens, and a source over it has all its pushes refused.
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

    /// A comma-separated list of addresses (`10.1.2.3`, `::1`) and CIDRs
    /// (`10.0.0.0/8`, `fd00::/8`); blanks are ignored.
    fn parse_list(text: &str) -> Result<Self, String> {
        let mut ranges = Vec::new();
        for item in text
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
        {
            let range = match item.parse::<IpNet>() {
                Ok(range) => range,
                Err(_) => item.parse::<IpAddr>().map(IpNet::from).map_err(|_| {
                    format!("{item:?} is not an IP address or a CIDR range like 10.0.0.0/8")
                })?,
            };
            ranges.push(range);
        }
        Ok(Self(ranges))
    }
}

impl FromStr for TrustedProxies {
    type Err = ConfigError;

    fn from_str(text: &str) -> Result<Self, ConfigError> {
        Self::parse_list(text).map_err(|reason| ConfigError::Invalid {
            name: setting::TRUSTED_PROXIES.name,
            reason,
        })
    }
}

/// Where a configured admin token came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenSource {
    Flag,
    Env,
}

/// A configured admin token: surrounding white space removed (a Kubernetes Secret or
/// an env file often ends in a newline, which no client sends back), none inside.
/// Its `Debug` leaves the secret out.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminToken {
    secret: String,
    pub source: TokenSource,
    /// Whether white space around it was removed.
    pub trimmed: bool,
}

impl AdminToken {
    /// The minimum length, in characters.
    pub const MIN_CHARS: usize = 16;

    /// `text` as given on the command line or in the environment; `None` when it is
    /// empty or only white space (unset), an error when it is short or has white space
    /// inside it.
    pub fn parse(text: &str, source: TokenSource) -> Result<Option<Self>, String> {
        let secret = text.trim();
        if secret.is_empty() {
            return Ok(None);
        }
        if secret.chars().any(char::is_whitespace) {
            return Err(
                "must not contain white space (white space around it is removed)".to_owned(),
            );
        }
        if secret.chars().count() < Self::MIN_CHARS {
            return Err(format!("must be at least {} characters", Self::MIN_CHARS));
        }
        Ok(Some(Self {
            secret: secret.to_owned(),
            source,
            trimmed: secret.len() != text.len(),
        }))
    }

    /// A token given as `--admin-token` (tests configure the server with this).
    pub fn from_flag(secret: &str) -> Result<Self, String> {
        Self::parse(secret, TokenSource::Flag)?.ok_or_else(|| "empty admin token".to_owned())
    }

    pub fn secret(&self) -> &str {
        &self.secret
    }
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("AdminToken")
            .field("source", &self.source)
            .field("trimmed", &self.trimmed)
            .finish_non_exhaustive()
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
    pub admin_token: Option<AdminToken>,
    pub public_url: Option<String>,
    pub restart_grace: Duration,
    pub log_format: LogFormat,
    pub rate_limit: RateLimit,
    /// The per-source-address limit on pushes with an unknown token; `None` when off.
    pub ip_rate_limit: Option<RateLimit>,
    /// Proxies whose `X-Forwarded-For` names a push's source address.
    pub trusted_proxies: TrustedProxies,
    /// Serve HTTPS (only) with these, if set.
    pub tls: Option<TlsFiles>,
    pub alert_retry: RetryPolicy,
    pub alert_timeout: Duration,
    /// Which addresses alerts may reach (`--alert-deny-private-addresses`).
    pub alert_addresses: AddressPolicy,
    /// When alerts to one channel go out as one digest (`--digest-window`,
    /// `--digest-threshold`, `--digest-webhooks`).
    pub digest: DigestPolicy,
    /// Per-monitor series in `/metrics`; off for very large installations.
    pub monitor_metrics: bool,
    /// The monitor label keys added to the per-monitor series (`--metrics-labels`).
    pub metrics_labels: Vec<String>,
    /// The declarative monitors file, if any.
    pub monitors_file: Option<PathBuf>,
    /// Time a client has to send a request's headers, and then its body.
    pub header_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
    /// Bytes of a job's output kept with its run (`Output::from_body`).
    pub ping_body_limit: usize,
    /// How far a signed push's timestamp may be from the server's time, either way;
    /// also how long its signature is remembered against replays.
    pub signature_window: Duration,
    /// Whether `?create=1` on a slug ping URL creates a monitor for an unknown slug.
    pub ping_auto_create: bool,
    /// How much heartbeat history each monitor keeps.
    pub retention: Retention,
    /// Time between two retention sweeps.
    pub history_sweep: Duration,
    /// Start even if the store lost acknowledged writes.
    pub accept_data_loss: bool,
    /// The guard against false alarm storms (`--guard*`).
    pub guard: GuardConfig,
    /// The clustered mode (`--cluster-*`, `--pod-name`); off without NATS servers.
    pub cluster: ClusterConfig,
}

/// The clustered mode's settings (`docs/cluster.md`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterConfig {
    /// NATS server URLs; empty: one node, the clustered mode off.
    pub nats: Vec<String>,
    /// This pod's name: a NATS subject token (`cluster::ownership::valid_pod_name`).
    pub pod: String,
    pub shards: u16,
    /// Streams the shards are spread over: 1 to `shards`.
    pub streams: u16,
    pub replicas: usize,
    pub lease: Duration,
}

impl ClusterConfig {
    pub fn enabled(&self) -> bool {
        !self.nats.is_empty()
    }
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            nats: Vec::new(),
            pod: default_pod_name(),
            shards: crate::cluster::shard::DEFAULT_SHARDS,
            streams: crate::cluster::shard::DEFAULT_STREAMS,
            replicas: 3,
            lease: Duration::from_secs(5),
        }
    }
}

/// The host name, made a valid pod name (other characters become `-`).
pub fn default_pod_name() -> String {
    let uname = rustix::system::uname();
    let host = uname.nodename().to_string_lossy();
    let name: String = host
        .chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if name.is_empty() {
        "pushmon".to_owned()
    } else {
        name
    }
}

/// The guard's settings (`docs/states.md`, "The guard").
#[derive(Clone, Debug, PartialEq)]
pub struct GuardConfig {
    /// `--guard off` turns it off.
    pub enabled: bool,
    pub settings: GuardSettings,
    /// Seconds a held monitor has to report once the guard releases.
    pub release_grace_seconds: u32,
    /// The channels its alert about pushmon goes to; `None`: every channel whose
    /// `send_on` takes `down` alerts.
    pub channels: Option<Vec<ChannelId>>,
    /// Whether the release sends a resolution of that alert (`--guard-resolved on`);
    /// off, an outage is one alert.
    pub send_resolved: bool,
}

impl Default for GuardConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            settings: GuardSettings::default(),
            release_grace_seconds: 60,
            channels: None,
            send_resolved: false,
        }
    }
}

impl GuardConfig {
    /// The guard off.
    pub fn off() -> Self {
        Self {
            enabled: false,
            ..Self::default()
        }
    }
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
            alert_addresses: AddressPolicy::AllowAll,
            digest: DigestPolicy::default(),
            monitor_metrics: true,
            metrics_labels: Vec::new(),
            monitors_file: None,
            header_timeout: Duration::from_secs(10),
            max_connections: 10_000,
            ping_body_limit: DEFAULT_OUTPUT_LIMIT,
            signature_window: Duration::from_secs(300),
            ping_auto_create: false,
            retention: Retention::default(),
            history_sweep: Duration::from_secs(300),
            accept_data_loss: false,
            guard: GuardConfig::default(),
            cluster: ClusterConfig::default(),
        }
    }

    /// Flags first, then the environment as `env` reports it, then defaults.
    pub fn resolve(
        args: ServeArgs,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        use setting::*;
        let env: &dyn Fn(&str) -> Option<String> = &env;
        let default = Self::with_data_dir(resolve_data_dir(args.data_dir, env)?);
        let listen = LISTEN.resolve(args.listen, env, default.listen, |text| {
            parse_listen(text, &|host, port| {
                std::net::ToSocketAddrs::to_socket_addrs(&(host, port)).map(Iterator::collect)
            })
        })?;
        let token_source = if args.admin_token.is_some() {
            TokenSource::Flag
        } else {
            TokenSource::Env
        };
        let admin_token = ADMIN_TOKEN.resolve(args.admin_token, env, None, |token| {
            AdminToken::parse(token, token_source)
        })?;
        let public_url = PUBLIC_URL.resolve(args.public_url, env, None, |url| {
            Ok(Some(url.trim_end_matches('/').to_owned()))
        })?;
        let restart_grace =
            RESTART_GRACE.resolve(args.restart_grace, env, default.restart_grace, |text| {
                number(text, 0, MAX_RESTART_GRACE_SECONDS).map(Duration::from_secs)
            })?;
        let log_format = LOG_FORMAT.resolve(
            args.log_format.map(Flag::Parsed),
            env,
            default.log_format,
            |text| {
                LogFormat::from_str(text, true)
                    .map_err(|_| format!("{text:?} is neither human nor json"))
            },
        )?;
        let rate_limit = RateLimit {
            per_second: RATE_LIMIT_PER_SECOND.resolve(
                args.rate_limit_per_second,
                env,
                default.rate_limit.per_second,
                |text| number(text, 1, u64::from(u32::MAX)).map(|rate| rate as u32),
            )?,
            burst: RATE_LIMIT_BURST.resolve(
                args.rate_limit_burst,
                env,
                default.rate_limit.burst,
                |text| number(text, 1, u64::from(u32::MAX)).map(|burst| burst as u32),
            )?,
        };
        let ip_rate_limit = RateLimit {
            per_second: RATE_LIMIT_IP_PER_SECOND.resolve(
                args.rate_limit_ip_per_second,
                env,
                RateLimit::PER_IP_DEFAULT.per_second,
                |text| number(text, 0, u64::from(u32::MAX)).map(|rate| rate as u32),
            )?,
            burst: RATE_LIMIT_IP_BURST.resolve(
                args.rate_limit_ip_burst,
                env,
                RateLimit::PER_IP_DEFAULT.burst,
                |text| number(text, 1, u64::from(u32::MAX)).map(|burst| burst as u32),
            )?,
        };
        let ip_rate_limit = (ip_rate_limit.per_second > 0).then_some(ip_rate_limit);
        let trusted_proxies = TRUSTED_PROXIES.resolve(
            args.trusted_proxies,
            env,
            default.trusted_proxies,
            TrustedProxies::parse_list,
        )?;
        // Clap refuses an empty path flag; an empty variable means "not set".
        let optional_path = |text: &str| Ok((!text.is_empty()).then(|| PathBuf::from(text)));
        let tls_cert = TLS_CERT.resolve(
            args.tls_cert.map(|path| Flag::Parsed(Some(path))),
            env,
            None,
            optional_path,
        )?;
        let tls_key = TLS_KEY.resolve(
            args.tls_key.map(|path| Flag::Parsed(Some(path))),
            env,
            None,
            optional_path,
        )?;
        let tls = match (tls_cert, tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            (None, None) => None,
            (Some(_), None) | (None, Some(_)) => {
                return Err(ConfigError::Invalid {
                    name: "TLS settings",
                    reason: format!(
                        "--{} ({}) and --{} ({}) go together: give both, or neither for plain HTTP",
                        TLS_CERT.flag, TLS_CERT.env, TLS_KEY.flag, TLS_KEY.env
                    ),
                });
            }
        };
        let alert_retry = RetryPolicy {
            max_attempts: ALERT_MAX_ATTEMPTS.resolve(
                args.alert_max_attempts,
                env,
                default.alert_retry.max_attempts,
                |text| number(text, 1, 1000).map(|attempts| attempts as u32),
            )?,
            initial: ALERT_RETRY_INITIAL_MS.resolve(
                args.alert_retry_initial_ms,
                env,
                default.alert_retry.initial,
                |text| number(text, 1, 3_600_000).map(Duration::from_millis),
            )?,
            ..default.alert_retry
        };
        let header_timeout =
            HEADER_TIMEOUT.resolve(args.header_timeout, env, default.header_timeout, |text| {
                number(text, 1, 3600).map(Duration::from_secs)
            })?;
        let max_connections = MAX_CONNECTIONS.resolve(
            args.max_connections,
            env,
            default.max_connections,
            |text| number(text, 1, 1_000_000).map(|count| count as usize),
        )?;
        let ping_body_limit = PING_BODY_LIMIT.resolve(
            args.ping_body_limit,
            env,
            default.ping_body_limit,
            |text| number(text, 0, MAX_OUTPUT_LIMIT as u64).map(|bytes| bytes as usize),
        )?;
        let signature_window = SIGNATURE_WINDOW.resolve(
            args.signature_window,
            env,
            default.signature_window,
            |text| number(text, 1, 86_400).map(Duration::from_secs),
        )?;
        let ping_auto_create = PING_AUTO_CREATE.resolve(
            args.ping_auto_create.then_some(Flag::Parsed(true)),
            env,
            default.ping_auto_create,
            boolean,
        )?;
        let monitors_file = MONITORS_FILE.resolve(
            args.monitors_file.map(|path| Flag::Parsed(Some(path))),
            env,
            None,
            |path| Ok(Some(PathBuf::from(path))),
        )?;
        let monitor_metrics = MONITOR_METRICS.resolve(
            args.no_monitor_metrics.then_some(Flag::Parsed(false)),
            env,
            default.monitor_metrics,
            boolean,
        )?;
        let metrics_labels = METRICS_LABELS.resolve(
            args.metrics_labels,
            env,
            default.metrics_labels,
            parse_metrics_labels,
        )?;
        let alert_timeout =
            ALERT_TIMEOUT.resolve(args.alert_timeout, env, default.alert_timeout, |text| {
                number(text, 1, 600).map(Duration::from_secs)
            })?;
        let alert_addresses = ALERT_DENY_PRIVATE_ADDRESSES.resolve(
            args.alert_deny_private_addresses
                .then_some(Flag::Parsed(AddressPolicy::DenyPrivate)),
            env,
            default.alert_addresses,
            |text| {
                boolean(text).map(|deny| {
                    if deny {
                        AddressPolicy::DenyPrivate
                    } else {
                        AddressPolicy::AllowAll
                    }
                })
            },
        )?;
        let digest = DigestPolicy {
            window: DIGEST_WINDOW.resolve(
                args.digest_window,
                env,
                default.digest.window,
                |text| number(text, 0, 3600).map(Duration::from_secs),
            )?,
            threshold: DIGEST_THRESHOLD.resolve(
                args.digest_threshold,
                env,
                default.digest.threshold,
                |text| number(text, 1, 100_000).map(|count| count as usize),
            )?,
            webhooks: DIGEST_WEBHOOKS.resolve(
                args.digest_webhooks.then_some(Flag::Parsed(true)),
                env,
                default.digest.webhooks,
                boolean,
            )?,
        };
        let retention = Retention {
            max_heartbeats: HISTORY_MAX_HEARTBEATS.resolve(
                args.history_max_heartbeats,
                env,
                default.retention.max_heartbeats,
                |text| {
                    let count = number(text, 0, u64::from(u32::MAX))?;
                    Ok((count > 0).then_some(count as usize))
                },
            )?,
            max_age: HISTORY_MAX_AGE_DAYS.resolve(
                args.history_max_age_days,
                env,
                default.retention.max_age,
                |text| {
                    let days = number(text, 0, 36_500)?;
                    Ok((days > 0).then(|| Duration::from_secs(days * 24 * 3600)))
                },
            )?,
        };
        let history_sweep = HISTORY_SWEEP_SECONDS.resolve(
            args.history_sweep_seconds,
            env,
            default.history_sweep,
            |text| number(text, 1, 86_400).map(Duration::from_secs),
        )?;
        let accept_data_loss = ACCEPT_DATA_LOSS.resolve(
            args.accept_data_loss.then_some(Flag::Parsed(true)),
            env,
            default.accept_data_loss,
            boolean,
        )?;
        let guard = GuardConfig {
            enabled: GUARD.resolve(args.guard, env, default.guard.enabled, on_or_off)?,
            settings: GuardSettings {
                window_millis: GUARD_WINDOW.resolve(
                    args.guard_window,
                    env,
                    default.guard.settings.window_millis,
                    |text| {
                        let seconds = text.trim().strip_suffix('s').unwrap_or(text.trim());
                        number(seconds, 1, 3600).map(|seconds| seconds * 1000)
                    },
                )?,
                min_ratio: GUARD_MIN_RATIO.resolve(
                    args.guard_min_ratio,
                    env,
                    default.guard.settings.min_ratio,
                    |text| match text.trim().parse::<f64>() {
                        Ok(ratio) if ratio > 0.0 && ratio < 1.0 => Ok(ratio),
                        _ => Err(format!(
                            "{text:?} is not a number between 0 and 1 (both excluded)"
                        )),
                    },
                )?,
                min_expected: GUARD_MIN_EXPECTED.resolve(
                    args.guard_min_expected,
                    env,
                    default.guard.settings.min_expected,
                    |text| number(text, 1, 1_000_000_000).map(|count| count as f64),
                )?,
            },
            release_grace_seconds: GUARD_RELEASE_GRACE.resolve(
                args.guard_release_grace,
                env,
                default.guard.release_grace_seconds,
                |text| number(text, 0, 86_400).map(|seconds| seconds as u32),
            )?,
            channels: GUARD_CHANNELS.resolve(args.guard_channels, env, None, |text| {
                text.split(',')
                    .map(str::trim)
                    .filter(|id| !id.is_empty())
                    .map(|id| {
                        ChannelId::parse(id).ok_or_else(|| format!("{id:?} is not a channel id"))
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map(Some)
            })?,
            send_resolved: GUARD_RESOLVED.resolve(
                args.guard_resolved,
                env,
                default.guard.send_resolved,
                on_or_off,
            )?,
        };
        let cluster = resolve_cluster(
            ClusterFlags {
                nats: args.cluster_nats,
                pod: args.pod_name,
                shards: args.cluster_shards,
                streams: args.cluster_streams,
                replicas: args.cluster_replicas,
                lease: args.cluster_lease,
            },
            env,
        )?;
        Ok(Self {
            listen,
            data_dir: default.data_dir,
            admin_token,
            public_url,
            restart_grace,
            log_format,
            rate_limit,
            ip_rate_limit,
            trusted_proxies,
            tls,
            alert_retry,
            alert_timeout,
            alert_addresses,
            digest,
            monitor_metrics,
            metrics_labels,
            monitors_file,
            header_timeout,
            max_connections,
            ping_body_limit,
            signature_window,
            ping_auto_create,
            retention,
            history_sweep,
            accept_data_loss,
            guard,
            cluster,
        })
    }

    /// Whether `push_url`s are built from an address no job can reach: listening on
    /// every interface (`0.0.0.0`, `::`) without `--public-url`.
    pub fn public_url_is_unreachable(&self, bound: SocketAddr) -> bool {
        self.public_url.is_none() && bound.ip().is_unspecified()
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

/// The clustered mode's flags as clap hands them over.
struct ClusterFlags {
    nats: Option<String>,
    pod: Option<String>,
    shards: Option<String>,
    streams: Option<String>,
    replicas: Option<String>,
    lease: Option<String>,
}

fn resolve_cluster(
    flags: ClusterFlags,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<ClusterConfig, ConfigError> {
    use setting::*;
    let default = ClusterConfig::default();
    let shards = CLUSTER_SHARDS.resolve(flags.shards, env, default.shards, |text| {
        number(text, 1, 1024).map(|count| count as u16)
    })?;
    // More streams than shards would leave streams empty: one per shard at most.
    let streams = CLUSTER_STREAMS
        .resolve(flags.streams, env, default.streams, |text| {
            number(text, 1, 1024).map(|count| count as u16)
        })?
        .min(shards);
    Ok(ClusterConfig {
        nats: CLUSTER_NATS.resolve(flags.nats, env, Vec::new(), parse_nats_servers)?,
        pod: POD_NAME.resolve(flags.pod, env, default.pod, |text| {
            if crate::cluster::ownership::valid_pod_name(text) {
                Ok(text.to_owned())
            } else {
                Err(format!("{text:?} is not 1 to 64 letters, digits, - and _"))
            }
        })?,
        shards,
        streams,
        replicas: CLUSTER_REPLICAS.resolve(flags.replicas, env, default.replicas, |text| {
            number(text, 1, 5).map(|count| count as usize)
        })?,
        lease: CLUSTER_LEASE.resolve(flags.lease, env, default.lease, |text| {
            let seconds = text.trim().strip_suffix('s').unwrap_or(text.trim());
            number(seconds, 1, 300).map(Duration::from_secs)
        })?,
    })
}

/// What `pushmon cluster release` needs: the same settings, flags and variables as
/// `pushmon serve`'s. Without NATS servers it is an error: there is nothing to release.
pub fn cluster_release(
    args: ClusterReleaseArgs,
    env: impl Fn(&str) -> Option<String>,
) -> Result<ClusterConfig, ConfigError> {
    let cluster = resolve_cluster(
        ClusterFlags {
            nats: args.cluster_nats,
            pod: args.pod_name,
            shards: args.cluster_shards,
            streams: args.cluster_streams,
            replicas: None,
            lease: args.cluster_lease,
        },
        &env,
    )?;
    if !cluster.enabled() {
        return Err(ConfigError::Invalid {
            name: setting::CLUSTER_NATS.name,
            reason: format!(
                "none given: set --{} or {} to the cluster's servers",
                setting::CLUSTER_NATS.flag,
                setting::CLUSTER_NATS.env
            ),
        });
    }
    Ok(cluster)
}

/// A resolver of host names: the addresses of `host` on `port`.
type Resolve<'a> = &'a dyn Fn(&str, u16) -> std::io::Result<Vec<SocketAddr>>;

/// A flag as clap hands it over: text for the setting to parse like its
/// environment variable, or a value clap has already parsed (a path, a choice,
/// a switch).
enum Flag<T> {
    Text(String),
    Parsed(T),
}

impl<T> From<String> for Flag<T> {
    fn from(text: String) -> Self {
        Self::Text(text)
    }
}

// The table is in `cli`; resolving a setting, and the errors it gives, are config's.
impl Setting {
    /// The setting's value: the flag if given, else the environment variable if
    /// set, else `default`. `parse` reads the text of either and says what is
    /// wrong with it; the error names this setting.
    fn resolve<T>(
        &self,
        flag: Option<impl Into<Flag<T>>>,
        env: &dyn Fn(&str) -> Option<String>,
        default: T,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        let text = match flag.map(Into::into) {
            Some(Flag::Parsed(value)) => return Ok(value),
            Some(Flag::Text(text)) => text,
            None => match env(self.env) {
                Some(text) => text,
                None => return Ok(default),
            },
        };
        parse(&text).map_err(|reason| ConfigError::Invalid {
            name: self.name,
            reason,
        })
    }
}

/// `on` or `off` (around spaces).
fn on_or_off(text: &str) -> Result<bool, String> {
    match text.trim() {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(format!("{text:?} is neither on nor off")),
    }
}

#[cfg(test)]
mod tests;
