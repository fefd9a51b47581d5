//! Configuration tests: every setting's flag, variable, default, bounds and error
//! text, resolved from a map instead of the process environment.

use super::*;
use crate::cli::{Cli, Command};
use clap::Parser as _;
use std::collections::HashMap;

fn resolve(args: ServeArgs, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let env: HashMap<String, String> = env
        .iter()
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect();
    Config::resolve(args, |key| env.get(key).cloned())
}

#[test]
fn defaults_match_the_configuration_reference() {
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
fn the_admin_token_says_where_it_came_from_and_whether_it_was_trimmed() {
    let token = "0123456789abcdef";
    let from_flag = resolve(
        ServeArgs {
            admin_token: Some(token.to_owned()),
            ..ServeArgs::default()
        },
        &[("PUSHMON_ADMIN_TOKEN", "ignored-because-the-flag-wins")],
    )
    .expect("valid")
    .admin_token
    .expect("configured");
    assert_eq!(
        (from_flag.secret(), from_flag.source, from_flag.trimmed),
        (token, TokenSource::Flag, false)
    );
    let from_env = resolve(
        ServeArgs::default(),
        &[("PUSHMON_ADMIN_TOKEN", "0123456789abcdef\n")],
    )
    .expect("valid")
    .admin_token
    .expect("configured");
    assert_eq!(
        (from_env.secret(), from_env.source, from_env.trimmed),
        (token, TokenSource::Env, true)
    );
    let shown = format!("{from_env:?}");
    assert!(!shown.contains(token), "Debug shows the secret: {shown}");
}

#[test]
fn a_listen_host_name_is_resolved_preferring_ipv4() {
    let v4 = SocketAddr::from(([10, 0, 0, 7], 80));
    let v6: SocketAddr = "[fd00::7]:80".parse().expect("v6");
    let both = |_: &str, _: u16| Ok(vec![v6, v4]);
    assert_eq!(parse_listen("box:80", &both), Ok(v4));
    let only_v6 = |_: &str, _: u16| Ok(vec![v6]);
    assert_eq!(parse_listen("box:80", &only_v6), Ok(v6));
    let none = |_: &str, _: u16| Ok(vec![]);
    assert_eq!(
        parse_listen("box:80", &none),
        Err("\"box\" resolves to no address".to_owned())
    );
    let failing = |_: &str, _: u16| Err(std::io::Error::other("no such host"));
    assert_eq!(
        parse_listen("nowhere:80", &failing),
        Err("cannot resolve \"nowhere\": no such host".to_owned())
    );
    // An IP address or `:PORT` is never looked up.
    assert_eq!(parse_listen("10.0.0.7:80", &failing), Ok(v4));
    assert_eq!(
        parse_listen(":80", &failing),
        Ok(SocketAddr::from(([0, 0, 0, 0], 80)))
    );
}

#[test]
fn push_urls_from_every_interface_without_a_public_url_are_flagged() {
    let mut config = Config::with_data_dir("d");
    let any_v4 = SocketAddr::from(([0, 0, 0, 0], 8080));
    let any_v6: SocketAddr = "[::]:8080".parse().expect("v6");
    let loopback = SocketAddr::from(([127, 0, 0, 1], 8080));
    assert!(config.public_url_is_unreachable(any_v4));
    assert!(config.public_url_is_unreachable(any_v6));
    assert!(!config.public_url_is_unreachable(loopback));
    config.public_url = Some("https://pm.example.com".to_owned());
    assert!(!config.public_url_is_unreachable(any_v4));
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
    let error =
        resolve(ServeArgs::default(), &[("PUSHMON_ADMIN_TOKEN", "short")]).expect_err("too short");
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
            accepted: &[
                ("[::1]:80", "[::1]:80"),
                (":8080", "0.0.0.0:8080"),
                ("localhost:8080", "127.0.0.1:8080"),
            ],
            rejected: &[
                (
                    "127.0.0.1",
                    "invalid listen address: \"127.0.0.1\" is not an address and port like 127.0.0.1:8080, [::]:8080, :8080 or localhost:8080",
                ),
                (
                    "localhost:http",
                    "invalid listen address: \"localhost:http\" is not an address and port like 127.0.0.1:8080, [::]:8080, :8080 or localhost:8080",
                ),
                (
                    ":99999",
                    "invalid listen address: \":99999\" is not an address and port like 127.0.0.1:8080, [::]:8080, :8080 or localhost:8080",
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
            accepted: &[
                ("", "None"),
                // A Secret or env file ending in a newline: trimmed, as users expect.
                ("0123456789abcdef\n", "Some(\"0123456789abcdef\")"),
                (" \t0123456789abcdef\r\n", "Some(\"0123456789abcdef\")"),
                ("\n", "None"),
            ],
            rejected: &[
                (
                    "0123456789abcde",
                    "invalid admin token: must be at least 16 characters",
                ),
                (
                    "0123456789abcde\n",
                    "invalid admin token: must be at least 16 characters",
                ),
                (
                    "01234567 89abcdef",
                    "invalid admin token: must not contain white space (white space around it is removed)",
                ),
            ],
            observe: |config| format!("{:?}", config.admin_token.as_ref().map(AdminToken::secret)),
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
            flag: "--alert-deny-private-addresses",
            env: "PUSHMON_ALERT_DENY_PRIVATE_ADDRESSES",
            switch: true,
            value: "true",
            shows: "DenyPrivate",
            default: "AllowAll",
            accepted: &[
                ("on", "DenyPrivate"),
                ("1", "DenyPrivate"),
                (" Yes ", "DenyPrivate"),
                ("false", "AllowAll"),
                ("OFF", "AllowAll"),
                ("0", "AllowAll"),
                ("no", "AllowAll"),
            ],
            rejected: &[(
                "maybe",
                "invalid alert deny private addresses: \"maybe\" is neither true nor false",
            )],
            observe: |config| format!("{:?}", config.alert_addresses),
            ..CASE
        },
        Case {
            flag: "--digest-window",
            env: "PUSHMON_DIGEST_WINDOW",
            value: "30",
            shows: "30s",
            default: "5s",
            accepted: &[("0", "0ns"), ("3600", "3600s")],
            rejected: &[(
                "3601",
                "invalid digest window: \"3601\" is not a whole number from 0 to 3600",
            )],
            observe: |config| format!("{:?}", config.digest.window),
            ..CASE
        },
        Case {
            flag: "--digest-threshold",
            env: "PUSHMON_DIGEST_THRESHOLD",
            value: "10",
            shows: "10",
            default: "3",
            accepted: &[("1", "1"), ("100000", "100000")],
            rejected: &[
                (
                    "0",
                    "invalid digest threshold: \"0\" is not a whole number from 1 to 100000",
                ),
                (
                    "100001",
                    "invalid digest threshold: \"100001\" is not a whole number from 1 to 100000",
                ),
            ],
            observe: |config| config.digest.threshold.to_string(),
            ..CASE
        },
        Case {
            flag: "--digest-webhooks",
            env: "PUSHMON_DIGEST_WEBHOOKS",
            switch: true,
            value: "true",
            shows: "true",
            default: "false",
            accepted: &[("on", "true"), ("0", "false"), ("no", "false")],
            rejected: &[(
                "maybe",
                "invalid digest webhooks: \"maybe\" is neither true nor false",
            )],
            observe: |config| config.digest.webhooks.to_string(),
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
            flag: "--ping-body-limit",
            env: "PUSHMON_PING_BODY_LIMIT",
            value: "2048",
            shows: "2048",
            default: "10000",
            accepted: &[("0", "0"), ("65536", "65536")],
            rejected: &[
                (
                    "65537",
                    "invalid ping body limit: \"65537\" is not a whole number from 0 to 65536",
                ),
                (
                    "-1",
                    "invalid ping body limit: \"-1\" is not a whole number from 0 to 65536",
                ),
            ],
            observe: |config| config.ping_body_limit.to_string(),
            ..CASE
        },
        Case {
            flag: "--signature-window",
            env: "PUSHMON_SIGNATURE_WINDOW",
            value: "60",
            shows: "60",
            default: "300",
            accepted: &[("1", "1"), ("86400", "86400")],
            rejected: &[
                (
                    "0",
                    "invalid signature window: \"0\" is not a whole number from 1 to 86400",
                ),
                (
                    "86401",
                    "invalid signature window: \"86401\" is not a whole number from 1 to 86400",
                ),
            ],
            observe: |config| config.signature_window.as_secs().to_string(),
            ..CASE
        },
        Case {
            flag: "--ping-auto-create",
            env: "PUSHMON_PING_AUTO_CREATE",
            switch: true,
            value: "true",
            shows: "true",
            default: "false",
            accepted: &[("off", "false"), ("1", "true")],
            rejected: &[(
                "maybe",
                "invalid ping auto create: \"maybe\" is neither true nor false",
            )],
            observe: |config| config.ping_auto_create.to_string(),
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
        Case {
            flag: "--metrics-labels",
            env: "PUSHMON_METRICS_LABELS",
            value: "team,env",
            shows: "[\"team\", \"env\"]",
            default: "[]",
            accepted: &[
                ("", "[]"),
                (
                    " team , example.com/tier ",
                    "[\"team\", \"example.com/tier\"]",
                ),
            ],
            rejected: &[
                (
                    "team,-x",
                    "invalid metrics labels: label key \"-x\" must be letters, digits, '-', '_' and '.', starting and ending with a letter or digit",
                ),
                (
                    "a.b,a_b",
                    "invalid metrics labels: label keys \"a.b\" and \"a_b\" would both be label_a_b",
                ),
            ],
            observe: |config| format!("{:?}", config.metrics_labels),
            ..CASE
        },
        Case {
            flag: "--accept-data-loss",
            env: "PUSHMON_ACCEPT_DATA_LOSS",
            switch: true,
            value: "true",
            shows: "true",
            default: "false",
            accepted: &[("off", "false"), ("1", "true"), ("Yes", "true")],
            rejected: &[(
                "sure",
                "invalid accept data loss: \"sure\" is neither true nor false",
            )],
            observe: |config| config.accept_data_loss.to_string(),
            ..CASE
        },
        Case {
            flag: "--guard",
            env: "PUSHMON_GUARD",
            value: "off",
            shows: "false",
            default: "true",
            accepted: &[(" on ", "true")],
            rejected: &[("no", "invalid guard: \"no\" is neither on nor off")],
            observe: |config| config.guard.enabled.to_string(),
            ..CASE
        },
        Case {
            flag: "--guard-window",
            env: "PUSHMON_GUARD_WINDOW",
            value: "5",
            shows: "5000",
            default: "60000",
            accepted: &[("3600s", "3600000"), ("1s", "1000")],
            rejected: &[
                (
                    "0",
                    "invalid guard window: \"0\" is not a whole number from 1 to 3600",
                ),
                (
                    "1m",
                    "invalid guard window: \"1m\" is not a whole number from 1 to 3600",
                ),
            ],
            observe: |config| config.guard.settings.window_millis.to_string(),
            ..CASE
        },
        Case {
            flag: "--guard-min-ratio",
            env: "PUSHMON_GUARD_MIN_RATIO",
            value: "0.25",
            shows: "0.25",
            default: "0.1",
            accepted: &[("0.5", "0.5")],
            rejected: &[
                (
                    "1",
                    "invalid guard minimum ratio: \"1\" is not a number between 0 and 1 (both excluded)",
                ),
                (
                    "0",
                    "invalid guard minimum ratio: \"0\" is not a number between 0 and 1 (both excluded)",
                ),
                (
                    "NaN",
                    "invalid guard minimum ratio: \"NaN\" is not a number between 0 and 1 (both excluded)",
                ),
            ],
            observe: |config| config.guard.settings.min_ratio.to_string(),
            ..CASE
        },
        Case {
            flag: "--guard-min-expected",
            env: "PUSHMON_GUARD_MIN_EXPECTED",
            value: "100",
            shows: "100",
            default: "30",
            accepted: &[("1", "1")],
            rejected: &[(
                "0",
                "invalid guard minimum expected arrivals: \"0\" is not a whole number from 1 to 1000000000",
            )],
            observe: |config| config.guard.settings.min_expected.to_string(),
            ..CASE
        },
        Case {
            flag: "--guard-release-grace",
            env: "PUSHMON_GUARD_RELEASE_GRACE",
            value: "0",
            shows: "0",
            default: "60",
            accepted: &[("86400", "86400")],
            rejected: &[(
                "86401",
                "invalid guard release grace: \"86401\" is not a whole number from 0 to 86400",
            )],
            observe: |config| config.guard.release_grace_seconds.to_string(),
            ..CASE
        },
        Case {
            flag: "--guard-channels",
            env: "PUSHMON_GUARD_CHANNELS",
            value: "0192f3a4-0000-7000-8000-000000000001",
            shows: "Some([ChannelId(0192f3a4-0000-7000-8000-000000000001)])",
            default: "None",
            accepted: &[("", "Some([])")],
            rejected: &[("ops", "invalid guard channels: \"ops\" is not a channel id")],
            observe: |config| format!("{:?}", config.guard.channels),
            ..CASE
        },
        Case {
            flag: "--guard-resolved",
            env: "PUSHMON_GUARD_RESOLVED",
            value: "on",
            shows: "true",
            default: "false",
            accepted: &[(" off ", "false")],
            rejected: &[(
                "yes",
                "invalid guard resolved: \"yes\" is neither on nor off",
            )],
            observe: |config| config.guard.send_resolved.to_string(),
            ..CASE
        },
        Case {
            flag: "--cluster-nats",
            env: "PUSHMON_CLUSTER_NATS",
            value: "nats://nats-0:4222,nats-1:4222",
            shows: "nats://nats-0:4222 nats-1:4222 (on)",
            default: " (off)",
            accepted: &[
                (" tls://10.0.0.1:4222 , ", "tls://10.0.0.1:4222 (on)"),
                ("", " (off)"),
            ],
            rejected: &[
                (
                    "nats-0",
                    "invalid cluster NATS servers: \"nats-0\" is not a server like nats://nats-0:4222 or nats-0:4222",
                ),
                (
                    "nats://nats-0:4222/x",
                    "invalid cluster NATS servers: \"nats://nats-0:4222/x\" is not a server like nats://nats-0:4222 or nats-0:4222",
                ),
            ],
            observe: |config| {
                let on = if config.cluster.enabled() {
                    "on"
                } else {
                    "off"
                };
                format!("{} ({on})", config.cluster.nats.join(" "))
            },
            ..CASE
        },
        Case {
            flag: "--pod-name",
            env: "PUSHMON_POD_NAME",
            value: "pushmon-1",
            shows: "pushmon-1",
            default: "<host name>",
            accepted: &[("a_B-9", "a_B-9")],
            rejected: &[
                (
                    "pod.1",
                    "invalid pod name: \"pod.1\" is not 1 to 64 letters, digits, - and _",
                ),
                (
                    "",
                    "invalid pod name: \"\" is not 1 to 64 letters, digits, - and _",
                ),
            ],
            observe: |config| {
                if config.cluster.pod == default_pod_name() {
                    "<host name>".to_owned()
                } else {
                    config.cluster.pod.clone()
                }
            },
            ..CASE
        },
        Case {
            flag: "--cluster-shards",
            env: "PUSHMON_CLUSTER_SHARDS",
            value: "16",
            shows: "16",
            default: "64",
            accepted: &[("1024", "1024"), ("1", "1")],
            rejected: &[(
                "0",
                "invalid cluster shards: \"0\" is not a whole number from 1 to 1024",
            )],
            observe: |config| config.cluster.shards.to_string(),
            ..CASE
        },
        Case {
            flag: "--cluster-streams",
            env: "PUSHMON_CLUSTER_STREAMS",
            value: "2",
            shows: "2",
            default: "4",
            // At most one stream per shard (64 by default).
            accepted: &[("64", "64"), ("1", "1"), ("1024", "64")],
            rejected: &[(
                "0",
                "invalid cluster streams: \"0\" is not a whole number from 1 to 1024",
            )],
            observe: |config| config.cluster.streams.to_string(),
            ..CASE
        },
        Case {
            flag: "--cluster-replicas",
            env: "PUSHMON_CLUSTER_REPLICAS",
            value: "1",
            shows: "1",
            default: "3",
            accepted: &[("5", "5")],
            rejected: &[(
                "6",
                "invalid cluster replicas: \"6\" is not a whole number from 1 to 5",
            )],
            observe: |config| config.cluster.replicas.to_string(),
            ..CASE
        },
        Case {
            flag: "--cluster-lease",
            env: "PUSHMON_CLUSTER_LEASE",
            value: "2",
            shows: "2000",
            default: "5000",
            accepted: &[("300s", "300000"), ("1s", "1000")],
            rejected: &[(
                "0",
                "invalid cluster lease: \"0\" is not a whole number from 1 to 300",
            )],
            observe: |config| config.cluster.lease.as_millis().to_string(),
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

/// What `pushmon <subcommand> --help` prints.
fn help_of(subcommand: &str) -> String {
    let error = Cli::try_parse_from(["pushmon", subcommand, "--help"]).expect_err("help");
    assert_eq!(error.kind(), clap::error::ErrorKind::DisplayHelp);
    error.to_string()
}

#[test]
fn help_shows_each_variable_and_default_once() {
    // `check` used to print both its hand-written "[env: …] [default: …]" and clap's
    // own, the latter with a stray `=`.
    let check = help_of("check");
    assert_eq!(
        check.matches("[env: PUSHMON_DATA_DIR]").count(),
        1,
        "{check}"
    );
    assert_eq!(
        check.matches("[default: ./pushmon-data]").count(),
        1,
        "{check}"
    );
    assert_eq!(check.matches("[env:").count(), 1, "{check}");
    assert_eq!(check.matches("[default:").count(), 1, "{check}");

    let serve = help_of("serve");
    assert_eq!(
        serve.matches("[env:").count(),
        setting::ALL.len(),
        "{serve}"
    );
    assert_eq!(
        serve.matches("[default:").count(),
        setting::ALL.len(),
        "{serve}"
    );
    use clap::CommandFactory as _;
    let command = Cli::command();
    let serve_command = command.find_subcommand("serve").expect("serve");
    for setting in setting::ALL {
        let arg = serve_command
            .get_arguments()
            .find(|arg| arg.get_long() == Some(setting.flag))
            .unwrap_or_else(|| panic!("no --{}", setting.flag));
        let help = arg.get_help().map(ToString::to_string);
        assert_eq!(help, Some(setting.help()), "--{}", setting.flag);
        assert!(
            arg.get_env().is_none(),
            "--{}: clap must not read the environment",
            setting.flag
        );
        // `]` or `=` after the name: `PUSHMON_GUARD` is a prefix of other variables.
        assert_eq!(
            serve.matches(&format!("[env: {}]", setting.env)).count()
                + serve.matches(&format!("[env: {}=", setting.env)).count(),
            1,
            "{serve}"
        );
        assert_eq!(serve.matches(&setting.help()).count(), 1, "{serve}");
    }
    // The switch says which value of its variable it stands for.
    assert!(
        serve.contains("[env: PUSHMON_MONITOR_METRICS=false]"),
        "{serve}"
    );
    assert!(!serve.contains("=]"), "{serve}");
}

/// Settings whose `--help` default describes what happens rather than being a value.
const DESCRIBED_DEFAULTS: [&str; 11] = [
    "admin-token",
    "public-url",
    "trusted-proxies",
    "monitors-file",
    "tls-cert",
    "tls-key",
    "no-monitor-metrics",
    // "none" is also a valid label key: the words describe, they are not a value.
    "metrics-labels",
    "guard-channels",
    "cluster-nats",
    "pod-name",
];

#[test]
fn the_default_help_shows_is_the_default_resolution_uses() {
    let defaults = format!("{:?}", resolve(ServeArgs::default(), &[]).expect("valid"));
    for setting in setting::ALL {
        let given = resolve(ServeArgs::default(), &[(setting.env, setting.default)])
            .map(|config| format!("{config:?}"));
        let same = given.as_ref().is_ok_and(|given| *given == defaults);
        let described = DESCRIBED_DEFAULTS.contains(&setting.flag);
        assert_eq!(same, !described, "--{}: {given:?}", setting.flag);
    }
}

#[test]
fn check_reads_the_data_dir_like_serve() {
    let dir = |flags: &[&str], env: &[(&str, &str)]| {
        let cli = Cli::try_parse_from(["pushmon", "check"].iter().chain(flags)).expect("parses");
        let Command::Check(args) = cli.command else {
            panic!("not check")
        };
        let env: HashMap<&str, &str> = env.iter().copied().collect();
        check_data_dir(args, |name| env.get(name).map(|value| value.to_string()))
            .expect("any path is valid")
    };
    assert_eq!(dir(&[], &[]), PathBuf::from("./pushmon-data"));
    assert_eq!(
        dir(&[], &[("PUSHMON_DATA_DIR", "/srv/env")]),
        PathBuf::from("/srv/env")
    );
    assert_eq!(
        dir(
            &["--data-dir", "/srv/flag"],
            &[("PUSHMON_DATA_DIR", "/srv/env")]
        ),
        PathBuf::from("/srv/flag")
    );
}
