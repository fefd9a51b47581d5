//! Reading the values of settings: addresses, the data directory, booleans, numbers
//! and the metrics label keys.

use super::*;

/// `--listen`: an IP address and port (`127.0.0.1:8080`, `[::]:8080`); `:PORT`, every
/// IPv4 interface (`0.0.0.0`), as `:8080` conventionally means; or `HOST:PORT`, the
/// host name resolved once, at start, to its first IPv4 address (else its first
/// address), so that `localhost:8080` listens where `127.0.0.1:8080` would.
pub(super) fn parse_listen(text: &str, resolve: Resolve<'_>) -> Result<SocketAddr, String> {
    if let Ok(address) = text.parse::<SocketAddr>() {
        return Ok(address);
    }
    let shape = || {
        format!(
            "{text:?} is not an address and port like 127.0.0.1:8080, [::]:8080, :8080 or localhost:8080"
        )
    };
    let (host, port) = text.rsplit_once(':').ok_or_else(shape)?;
    let port: u16 = port.parse().map_err(|_| shape())?;
    if host.is_empty() {
        return Ok(SocketAddr::from(([0, 0, 0, 0], port)));
    }
    if host.contains([':', '[', ']', '/']) || host.chars().any(char::is_whitespace) {
        return Err(shape());
    }
    let addresses =
        resolve(host, port).map_err(|error| format!("cannot resolve {host:?}: {error}"))?;
    addresses
        .iter()
        .find(|address| address.is_ipv4())
        .or_else(|| addresses.first())
        .copied()
        .ok_or_else(|| format!("{host:?} resolves to no address"))
}

/// The store `pushmon check` reads: the same setting as `serve`'s.
pub fn check_data_dir(
    args: CheckArgs,
    env: impl Fn(&str) -> Option<String>,
) -> Result<PathBuf, ConfigError> {
    resolve_data_dir(args.data_dir, &env)
}

pub(super) fn resolve_data_dir(
    flag: Option<PathBuf>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<PathBuf, ConfigError> {
    setting::DATA_DIR.resolve(
        flag.map(Flag::Parsed),
        env,
        PathBuf::from(setting::DATA_DIR.default),
        |path| Ok(PathBuf::from(path)),
    )
}

/// A switch's variable: true or false.
pub(super) fn boolean(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(format!("{text:?} is neither true nor false")),
    }
}

/// A whole number from `min` to `max`, or why `text` is not one.
/// The most label keys `--metrics-labels` may add to every per-monitor series.
pub const MAX_METRICS_LABELS: usize = 16;

/// `--metrics-labels`: label keys separated by commas (empty: none). Each must be a
/// label key, and no two may make the same Prometheus label name.
pub(super) fn parse_metrics_labels(text: &str) -> Result<Vec<String>, String> {
    let mut keys: Vec<String> = Vec::new();
    for key in text.split(',').map(str::trim).filter(|key| !key.is_empty()) {
        crate::domain::labels::check_key(key).map_err(|why| format!("label key {key:?} {why}"))?;
        let name = crate::domain::labels::sanitized_name(key);
        if let Some(same) = keys
            .iter()
            .find(|known| crate::domain::labels::sanitized_name(known) == name)
        {
            return Err(format!(
                "label keys {same:?} and {key:?} would both be label_{name}"
            ));
        }
        keys.push(key.to_owned());
    }
    if keys.len() > MAX_METRICS_LABELS {
        return Err(format!(
            "at most {MAX_METRICS_LABELS} label keys, not {}",
            keys.len()
        ));
    }
    Ok(keys)
}

pub(super) fn number(text: &str, min: u64, max: u64) -> Result<u64, String> {
    match text.trim().parse::<u64>() {
        Ok(value) if (min..=max).contains(&value) => Ok(value),
        _ => Err(format!(
            "{text:?} is not a whole number from {min} to {max}"
        )),
    }
}

/// `--cluster-nats`: comma-separated server URLs (`nats://host:port`, `tls://host:port`
/// or `host:port`); blanks between commas are ignored, and an empty list (an empty
/// variable) is the clustered mode off.
pub(super) fn parse_nats_servers(text: &str) -> Result<Vec<String>, String> {
    let servers: Vec<String> = text
        .split(',')
        .map(str::trim)
        .filter(|server| !server.is_empty())
        .map(str::to_owned)
        .collect();
    for server in &servers {
        let address = server
            .strip_prefix("nats://")
            .or_else(|| server.strip_prefix("tls://"))
            .unwrap_or(server);
        let well_formed = address
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok())
            && !address.contains(['/', ' ', '\t', '@']);
        if !well_formed {
            return Err(format!(
                "{server:?} is not a server like nats://nats-0:4222 or nats-0:4222"
            ));
        }
    }
    Ok(servers)
}
