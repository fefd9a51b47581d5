//! Reconciling the server with a monitors file: reading it, checking it, then
//! creating, updating and pruning what it declares.

use super::*;
use crate::http::monitor_fields::{
    MAX_ALLOWED_SOURCES, MAX_SECRET_CHARS, MIN_SECRET_CHARS, is_signing_secret, parse_source_range,
};

impl MonitorsFile {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads and checks the file, then makes the store match it.
    pub async fn reconcile(
        &self,
        store: &EventStore,
        registry: &Registry,
        channels: &Channels,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Summary, DeclareError> {
        let (prune, channel_specs, monitor_specs) = self.load(&env, registry.now())?;
        let mut summary = Summary::default();

        // Channels first: monitors refer to them.
        let mut channel_ids: HashMap<String, ChannelId> = HashMap::new();
        let existing: HashMap<String, _> = channels
            .list()
            .into_iter()
            .filter_map(|channel| channel.key.clone().map(|key| (key, channel)))
            .collect();
        for spec in &channel_specs {
            match existing.get(&spec.key) {
                Some(channel)
                    if channel.name == spec.name
                        && channel.kind == spec.kind
                        && channel.send_on == spec.send_on =>
                {
                    summary.unchanged += 1;
                    channel_ids.insert(spec.key.clone(), channel.id);
                }
                Some(channel) => {
                    channels
                        .update(
                            channel.id,
                            spec.name.clone(),
                            spec.kind.clone(),
                            spec.send_on,
                        )
                        .await?;
                    tracing::info!(key = %spec.key, "monitors file: channel updated");
                    summary.updated += 1;
                    channel_ids.insert(spec.key.clone(), channel.id);
                }
                None => {
                    let channel = channels
                        .create(
                            spec.name.clone(),
                            spec.kind.clone(),
                            spec.send_on,
                            Some(spec.key.clone()),
                        )
                        .await?;
                    tracing::info!(key = %spec.key, "monitors file: channel created");
                    summary.created += 1;
                    channel_ids.insert(spec.key.clone(), channel.id);
                }
            }
        }

        let monitors = store.monitors().await?;
        let by_key: HashMap<&str, &Monitor> = monitors
            .iter()
            .filter_map(|monitor| monitor.config.key.as_deref().map(|key| (key, monitor)))
            .collect();
        // Parents are named by key: those not created yet (later in the file) are
        // given in a second pass.
        let mut monitor_ids: HashMap<String, MonitorId> = by_key
            .iter()
            .map(|(key, monitor)| ((*key).to_owned(), monitor.id))
            .collect();
        let mut parents_later: Vec<(MonitorId, &MonitorSpec, Vec<MonitorId>)> = Vec::new();
        for spec in &monitor_specs {
            let declared = &spec.declared;
            let parents: Vec<MonitorId> = declared
                .parents
                .iter()
                .filter_map(|key| monitor_ids.get(key).copied())
                .collect();
            let config = MonitorConfig {
                channels: declared
                    .channels
                    .iter()
                    .filter_map(|key| channel_ids.get(key).copied())
                    .collect(),
                parents: parents.clone(),
                ..spec.config.clone()
            };
            let owner = spec
                .token
                .as_ref()
                .and_then(|token| registry.directory().by_token(token))
                .map(|handle| handle.id);
            let current_id = by_key.get(declared.key.as_str()).map(|monitor| monitor.id);
            if owner.is_some() && owner != current_id {
                return Err(DeclareError::Invalid {
                    path: self.path.clone(),
                    message: format!(
                        "monitor {:?}: its push token is already used by another monitor",
                        declared.key
                    ),
                });
            }
            match by_key.get(declared.key.as_str()) {
                None => {
                    let created = registry
                        .create_with_token(config, spec.token.clone())
                        .await?;
                    tracing::info!(key = %declared.key, "monitors file: monitor created");
                    summary.created += 1;
                    monitor_ids.insert(declared.key.clone(), created.id);
                    if parents.len() < declared.parents.len() {
                        parents_later.push((created.id, spec, parents));
                    }
                }
                Some(current) => {
                    if parents.len() < declared.parents.len() {
                        parents_later.push((current.id, spec, parents));
                    }
                    let mut changed = false;
                    if *current.config != config {
                        let patch = ConfigPatch::replacing_with(config);
                        registry.execute(current.id, Command::Update(patch)).await?;
                        changed = true;
                    }
                    if let Some(token) = &spec.token
                        && *token != current.token
                    {
                        registry
                            .execute(current.id, Command::RotateToken(token.clone()))
                            .await?;
                        changed = true;
                    }
                    if changed {
                        tracing::info!(key = %declared.key, "monitors file: monitor updated");
                        summary.updated += 1;
                    } else {
                        summary.unchanged += 1;
                    }
                }
            }
        }

        for (id, spec, given) in parents_later {
            let parents: Vec<MonitorId> = spec
                .declared
                .parents
                .iter()
                .filter_map(|key| monitor_ids.get(key).copied())
                .collect();
            if parents != given {
                let patch = ConfigPatch {
                    parents: Some(parents),
                    ..ConfigPatch::default()
                };
                registry.execute(id, Command::Update(patch)).await?;
            }
        }

        if prune {
            let declared: HashSet<&str> = monitor_specs
                .iter()
                .map(|spec| spec.declared.key.as_str())
                .collect();
            for (key, monitor) in &by_key {
                // The guard's own monitor is the guard's, not the file's.
                if !declared.contains(key) && *key != crate::monitor::guard::GUARD_MONITOR_KEY {
                    match registry.execute(monitor.id, Command::Delete).await {
                        Ok(_) | Err(RegistryError::NotFound) => {}
                        Err(error) => return Err(error.into()),
                    }
                    tracing::info!(%key, "monitors file: monitor pruned");
                    summary.deleted += 1;
                }
            }
            let declared: HashSet<&str> =
                channel_specs.iter().map(|spec| spec.key.as_str()).collect();
            for (key, channel) in &existing {
                if !declared.contains(key.as_str()) && registry.delete_channel(channel.id).await? {
                    tracing::info!(%key, "monitors file: channel pruned");
                    summary.deleted += 1;
                }
            }
        }
        Ok(summary)
    }

    /// Reads, parses and checks everything, resolving secrets; changes nothing.
    /// `now` checks that schedules fire.
    pub(super) fn load(
        &self,
        env: &impl Fn(&str) -> Option<String>,
        now: Timestamp,
    ) -> Result<(bool, Vec<ChannelSpec>, Vec<MonitorSpec>), DeclareError> {
        let text = std::fs::read_to_string(&self.path).map_err(|error| DeclareError::Invalid {
            path: self.path.clone(),
            message: format!("cannot read: {error}"),
        })?;
        self.parse(&text, env, &|path| std::fs::read_to_string(path), now)
    }

    /// Parses and checks `text` as this file's content, as start-up does, with the
    /// environment and token files read through `env` and `read_file`; touches no
    /// store and changes nothing (the entry point of the fuzz target in `fuzz/`).
    /// `now` checks that schedules fire.
    pub fn check(
        &self,
        text: &str,
        env: &impl Fn(&str) -> Option<String>,
        read_file: &impl Fn(&Path) -> std::io::Result<String>,
        now: Timestamp,
    ) -> Result<(), DeclareError> {
        self.parse(text, env, read_file, now).map(|_| ())
    }

    pub(super) fn parse(
        &self,
        text: &str,
        env: &impl Fn(&str) -> Option<String>,
        read_file: &impl Fn(&Path) -> std::io::Result<String>,
        now: Timestamp,
    ) -> Result<(bool, Vec<ChannelSpec>, Vec<MonitorSpec>), DeclareError> {
        let invalid = |message: String| DeclareError::Invalid {
            path: self.path.clone(),
            message,
        };
        if let Some(refused) = unallowed_character(text) {
            return Err(invalid(refused));
        }
        let file: File = serde_yaml_ng::from_str(text).map_err(|error| invalid(located(&error)))?;

        let mut channel_specs = Vec::with_capacity(file.channels.len());
        let mut channel_keys = HashSet::new();
        for (index, declared) in file.channels.into_iter().enumerate() {
            let at = |message: String| invalid(format!("channels[{index}]: {message}"));
            let key = declared.key.clone();
            if !channel_keys.insert(key.clone()) {
                return Err(at(format!("key {key:?} is declared twice")));
            }
            let fields = declared.fields(env).map_err(at)?;
            let kind = kind_from_fields(&fields)
                .map_err(|message| at(format!("{message} (key {key:?})")))?;
            let send_on = send_on_from_fields(&fields)
                .map_err(|message| at(format!("{message} (key {key:?})")))?;
            let name = declared.name;
            channel_specs.push(ChannelSpec {
                key,
                name,
                kind,
                send_on,
            });
        }

        let mut monitor_specs = Vec::with_capacity(file.monitors.len());
        let mut monitor_keys = HashSet::new();
        let mut slugs = HashSet::new();
        let mut tokens = HashSet::new();
        for (index, declared) in file.monitors.into_iter().enumerate() {
            let at = |message: String| {
                invalid(format!(
                    "monitors[{index}] (key {:?}): {message}",
                    declared.key
                ))
            };
            if !monitor_keys.insert(declared.key.clone()) {
                return Err(at("key is declared twice".to_owned()));
            }
            if let Some(slug) = &declared.slug
                && !slugs.insert(slug.clone())
            {
                return Err(at(format!("slug {slug:?} is declared twice")));
            }
            let mut config = monitor_config(&declared, now).map_err(at)?;
            for channel in &declared.channels {
                if !channel_keys.contains(channel) {
                    return Err(at(format!(
                        "channels: no channel with key {channel:?} is declared"
                    )));
                }
            }
            if declared.tags.len() > 32
                || declared
                    .tags
                    .iter()
                    .any(|tag| tag.is_empty() || tag.chars().count() > 64)
            {
                return Err(at("tags: at most 32 tags of 1 to 64 characters".to_owned()));
            }
            let sources = [
                declared.push_token.is_some(),
                declared.push_token_env.is_some(),
                declared.push_token_file.is_some(),
            ];
            if sources.iter().filter(|given| **given).count() > 1 {
                return Err(at(
                    "give at most one of push_token, push_token_env, push_token_file".to_owned(),
                ));
            }
            let raw = if let Some(token) = &declared.push_token {
                Some(token.clone())
            } else if let Some(variable) = &declared.push_token_env {
                Some(env(variable).ok_or_else(|| {
                    at(format!(
                        "push_token_env: environment variable {variable} is not set"
                    ))
                })?)
            } else if let Some(path) = &declared.push_token_file {
                Some(read_file(path).map_err(|error| {
                    at(format!(
                        "push_token_file: cannot read {}: {error}",
                        path.display()
                    ))
                })?)
            } else {
                None
            };
            let token = match raw {
                None => None,
                Some(raw) => Some(PushToken::declared(raw.trim()).map_err(|why| {
                    at(format!("push token {why}; a new one: `head -c16 /dev/urandom | base64 | tr '+/' '-_' | tr -d =`"))
                })?),
            };
            let secret = credential(
                "signing_secret",
                &declared.signing_secret,
                &declared.signing_secret_env,
                &declared.signing_secret_file,
                env,
                read_file,
            )
            .map_err(at)?;
            config.signing_secret = match secret {
                None => None,
                Some(secret) => {
                    let secret = secret.trim().to_owned();
                    if !is_signing_secret(&secret) {
                        return Err(at(format!(
                            "signing_secret must be {MIN_SECRET_CHARS} to {MAX_SECRET_CHARS} \
                             visible ASCII characters; a new one: `openssl rand -hex 32`"
                        )));
                    }
                    Some(secret)
                }
            };
            if let Some(token) = &token
                && !tokens.insert(token.clone())
            {
                return Err(at(
                    "the same push token is declared for two monitors".to_owned()
                ));
            }
            monitor_specs.push(MonitorSpec {
                declared,
                token,
                config,
            });
        }
        check_parents(&monitor_specs).map_err(invalid)?;
        Ok((file.prune, channel_specs, monitor_specs))
    }
}

/// A credential given as itself, an environment variable (`<field>_env`) or a file
/// (`<field>_file`): at most one of them.
fn credential(
    field: &str,
    value: &Option<String>,
    variable: &Option<String>,
    path: &Option<PathBuf>,
    env: &impl Fn(&str) -> Option<String>,
    read_file: &impl Fn(&Path) -> std::io::Result<String>,
) -> Result<Option<String>, String> {
    if [value.is_some(), variable.is_some(), path.is_some()]
        .iter()
        .filter(|given| **given)
        .count()
        > 1
    {
        return Err(format!(
            "give at most one of {field}, {field}_env, {field}_file"
        ));
    }
    if let Some(value) = value {
        return Ok(Some(value.clone()));
    }
    if let Some(variable) = variable {
        return env(variable)
            .map(Some)
            .ok_or_else(|| format!("{field}_env: environment variable {variable} is not set"));
    }
    if let Some(path) = path {
        return read_file(path)
            .map(Some)
            .map_err(|error| format!("{field}_file: cannot read {}: {error}", path.display()));
    }
    Ok(None)
}

/// Whether the monitors' `parents` name declared monitors (not themselves) and make
/// no cycle, as the API would refuse (checked before anything changes).
fn check_parents(specs: &[MonitorSpec]) -> Result<(), String> {
    let parents_of: HashMap<&str, &[String]> = specs
        .iter()
        .map(|spec| (spec.declared.key.as_str(), spec.declared.parents.as_slice()))
        .collect();
    for (index, spec) in specs.iter().enumerate() {
        let key = spec.declared.key.as_str();
        let at = |message: String| format!("monitors[{index}] (key {key:?}): parents: {message}");
        if spec.declared.parents.len() > machine::MAX_PARENTS {
            return Err(at(format!("at most {}", machine::MAX_PARENTS)));
        }
        for parent in &spec.declared.parents {
            if !parents_of.contains_key(parent.as_str()) {
                return Err(at(format!("no monitor with key {parent:?} is declared")));
            }
        }
        // A path of parents from this monitor back to itself is a cycle.
        let mut seen = HashSet::new();
        let mut next: Vec<&str> = spec.declared.parents.iter().map(String::as_str).collect();
        while let Some(parent) = next.pop() {
            if parent == key {
                return Err(at(
                    "a monitor cannot depend on itself, even through others".to_owned()
                ));
            }
            if seen.insert(parent) {
                next.extend(parents_of[parent].iter().map(String::as_str));
            }
        }
    }
    Ok(())
}

/// A declared monitor's configuration (`channels` left empty: the file names them by
/// key), each field checked as the API checks it.
fn monitor_config(declared: &DeclaredMonitor, now: Timestamp) -> Result<MonitorConfig, String> {
    let schedule = match &declared.schedule {
        Some(expression) => {
            if declared.timeout_seconds.is_some() || declared.interval_seconds.is_some() {
                return Err(
                    "give either schedule or timeout_seconds (and interval_seconds), not both"
                        .to_owned(),
                );
            }
            let timezone = declared.timezone.as_deref().unwrap_or(DEFAULT_TIMEZONE);
            schedule_rules::check_cron(expression, timezone, now).map_err(|error| match error {
                CronError::Expression(why) => format!("schedule {why}"),
                CronError::Timezone(why) => format!("timezone {why}"),
            })?;
            Some(crate::domain::schedule::CronSchedule {
                expression: expression.clone(),
                timezone: timezone.to_owned(),
                grace_seconds: declared
                    .grace_seconds
                    .unwrap_or(crate::domain::schedule::DEFAULT_GRACE_SECONDS),
            })
        }
        None => {
            if declared.timezone.is_some() || declared.grace_seconds.is_some() {
                return Err("timezone and grace_seconds need a schedule".to_owned());
            }
            if declared.timeout_seconds.is_none() {
                return Err("timeout_seconds (or schedule) is required".to_owned());
            }
            None
        }
    };
    let timeout_seconds = declared.timeout_seconds.unwrap_or(0);
    let maintenance = match &declared.maintenance {
        None => Vec::new(),
        Some(value) => parse_maintenance(value, now).map_err(|error| error.to_string())?,
    };
    let labels = Labels::new(
        declared
            .labels
            .iter()
            .map(|(key, value)| (key.clone(), value.clone())),
    )
    .map_err(|error| format!("labels: {error}"))?;
    let config = MonitorConfig {
        labels,
        severity: declared
            .severity
            .as_deref()
            .and_then(Severity::parse)
            .unwrap_or_default(),
        interval_seconds: declared.interval_seconds.unwrap_or(timeout_seconds),
        key: Some(declared.key.clone()),
        tags: declared.tags.clone(),
        schedule,
        max_runtime_seconds: declared.max_runtime_seconds,
        min_runtime_seconds: declared.min_runtime_seconds,
        failure_threshold: declared.failure_threshold.unwrap_or(1),
        recovery_threshold: declared.recovery_threshold.unwrap_or(1),
        realert_every_seconds: declared.realert_every_seconds,
        maintenance,
        slug: declared.slug.clone(),
        allowed_sources: allowed_sources(&declared.allowed_sources)?,
        min_instances: declared.min_instances,
        instance_retention_seconds: declared.instance_retention_seconds,
        dependency_grace_seconds: declared.dependency_grace_seconds,
        ..MonitorConfig::new(declared.name.clone(), timeout_seconds)
    };
    machine::check_config(&config).map_err(|rejection| rejection.to_string())?;
    Ok(config)
}

/// `allowed_sources` of a declared monitor, each checked as the API checks it.
fn allowed_sources(declared: &[String]) -> Result<Vec<ipnet::IpNet>, String> {
    if declared.len() > MAX_ALLOWED_SOURCES {
        return Err(format!(
            "allowed_sources: at most {MAX_ALLOWED_SOURCES} addresses or CIDR ranges"
        ));
    }
    let mut ranges = Vec::with_capacity(declared.len());
    for text in declared {
        let range = parse_source_range(text).ok_or_else(|| {
            format!("allowed_sources: {text:?} is neither an address nor a CIDR range")
        })?;
        if !ranges.contains(&range) {
            ranges.push(range);
        }
    }
    Ok(ranges)
}
