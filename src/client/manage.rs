//! `pushmon monitor|channel|key|events|export`: each subcommand is one or two requests to the
//! management API. Monitors, channels and keys are named by id or by name (when
//! exactly one has it). With `--output json` the last answer is printed as the server
//! sent it; otherwise as a table or `field: value` lines ([`output`]).

use reqwest::Method;
use serde_json::{Map, Value, json};

use super::api::{Answer, Api};
use super::output::{self, field, fields, table};
use super::settings::{self, ConfigFile, Env};
use super::{Failure, FailureKind};
use crate::cli::client_args::{
    ApiArgs, ChannelArgs, ChannelCommand, ChannelCreateArgs, EventsArgs, ExportArgs, KeyArgs,
    KeyCommand, MonitorArgs, MonitorCommand, MonitorCreateArgs, MonitorUpdateArgs, OutputFormat,
};

/// The order `show` prints a monitor's fields in; the rest follow alphabetically.
const MONITOR_FIELDS: &[&str] = &[
    "id",
    "name",
    "status",
    "timeout_seconds",
    "interval_seconds",
    "push_url",
    "push_token",
    "channels",
    "tags",
    "labels",
    "severity",
    "created_at",
    "last_heartbeat_at",
    "last_status_change_at",
    "last_msg",
    "last_value",
];
const CHANNEL_FIELDS: &[&str] = &[
    "id",
    "kind",
    "name",
    "send_on",
    "url",
    "to",
    "chat_id",
    "room_id",
    "created_at",
];
const KEY_FIELDS: &[&str] = &["id", "name", "scope", "key", "created_at"];

/// A connected client and how to print.
struct Session {
    api: Api,
    output: OutputFormat,
}

impl Session {
    fn open(args: &ApiArgs, env: Env<'_>) -> Result<Self, Failure> {
        let file = ConfigFile::load(args.config.as_deref(), env)?;
        let server = settings::server(args.server.as_deref(), env, &file)?;
        let token = settings::api_token(args, env, &file)?;
        Ok(Self {
            api: Api::new(server, token)?,
            output: args.output,
        })
    }

    async fn get(&self, path: &str) -> Result<Answer, Failure> {
        self.api.send(Method::GET, path, &[], None).await
    }

    /// Prints `answer`: as it is for JSON, else as `human(body)` says.
    fn show(&self, answer: &Answer, human: impl FnOnce(&Value) -> String) -> Result<(), Failure> {
        match self.output {
            OutputFormat::Json => output::print_raw_json(&answer.body),
            OutputFormat::Human => output::print(&human(&answer.json()?)),
        }
    }

    /// A `204` answer: nothing for JSON, `message` for people.
    fn done(&self, message: &str) -> Result<(), Failure> {
        match self.output {
            OutputFormat::Json => Ok(()),
            OutputFormat::Human => output::print(&format!("{message}\n")),
        }
    }

    /// The id of the one object of `kind` in the listing at `path` (under `key`) whose
    /// id or name is `reference`. An id is taken as it is: the request that uses it
    /// says whether it exists.
    async fn resolve(
        &self,
        kind: &str,
        path: &str,
        key: &str,
        reference: &str,
    ) -> Result<Named, Failure> {
        if uuid::Uuid::try_parse(reference).is_ok() {
            return Ok(Named {
                id: reference.to_owned(),
                label: format!("{kind} {reference}"),
            });
        }
        let listing = self.get(path).await?.json()?;
        let matches: Vec<&Value> = listing[key]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter(|item| item["name"].as_str() == Some(reference))
                    .collect()
            })
            .unwrap_or_default();
        match matches.as_slice() {
            [] => Err(Failure::new(
                FailureKind::NotFound,
                format!("no {kind} has the id or name {reference:?}"),
            )),
            [one] => {
                let id = one["id"].as_str().ok_or_else(|| {
                    Failure::other(format!("the server listed a {kind} without an id"))
                })?;
                Ok(Named {
                    id: id.to_owned(),
                    label: format!("{kind} {reference:?} ({id})"),
                })
            }
            several => Err(Failure::usage(format!(
                "{} {kind}s are named {reference:?}; name one by its id: {}",
                several.len(),
                several
                    .iter()
                    .map(|item| field(item, "id"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    async fn monitor_id(&self, reference: &str) -> Result<Named, Failure> {
        self.resolve("monitor", "/api/monitors", "monitors", reference)
            .await
    }

    async fn channel_ids(&self, references: &[String]) -> Result<Vec<String>, Failure> {
        let mut ids = Vec::with_capacity(references.len());
        for reference in references {
            ids.push(
                self.resolve("channel", "/api/channels", "channels", reference)
                    .await?
                    .id,
            );
        }
        Ok(ids)
    }
}

/// An object found by id or name, and how messages name it.
struct Named {
    id: String,
    label: String,
}

/// A duration the API takes in whole seconds.
fn whole_seconds(flag: &str, duration: std::time::Duration) -> Result<u64, Failure> {
    if duration.subsec_nanos() != 0 || duration.as_secs() == 0 {
        return Err(Failure::usage(format!(
            "{flag} must be a whole number of seconds, at least 1"
        )));
    }
    Ok(duration.as_secs())
}

fn monitor_fields(monitor: &Value) -> String {
    fields(monitor, MONITOR_FIELDS)
}

pub async fn monitor(args: MonitorArgs, env: Env<'_>) -> Result<(), Failure> {
    let session = Session::open(&args.api, env)?;
    match args.command {
        MonitorCommand::List(filters) => {
            let mut query: Vec<(&str, String)> = Vec::new();
            if let Some(selector) = filters.selector {
                query.push(("selector", selector));
            }
            for status in filters.statuses {
                query.push(("status", status));
            }
            if let Some(search) = filters.search {
                query.push(("q", search));
            }
            for tag in filters.tags {
                query.push(("tag", tag));
            }
            let answer = session
                .api
                .send(Method::GET, "/api/monitors", &query, None)
                .await?;
            session.show(&answer, |body| {
                let rows: Vec<Vec<String>> = items(body, "monitors")
                    .iter()
                    .map(|monitor| {
                        vec![
                            field(monitor, "id"),
                            field(monitor, "name"),
                            field(monitor, "status"),
                            field(monitor, "timeout_seconds"),
                            field(monitor, "last_heartbeat_at"),
                        ]
                    })
                    .collect();
                if rows.is_empty() {
                    return "no monitors\n".to_owned();
                }
                table(
                    &["ID", "NAME", "STATUS", "TIMEOUT", "LAST HEARTBEAT"],
                    &rows,
                )
            })
        }
        MonitorCommand::Show { monitor } => {
            let named = session.monitor_id(&monitor).await?;
            let answer = session.get(&format!("/api/monitors/{}", named.id)).await?;
            session.show(&answer, monitor_fields)
        }
        MonitorCommand::Create(create) => {
            let body = create_body(&session, create).await?;
            let answer = session
                .api
                .send(Method::POST, "/api/monitors", &[], Some(&body))
                .await?;
            session.show(&answer, monitor_fields)
        }
        MonitorCommand::Update(update) => {
            let named = session.monitor_id(&update.monitor).await?;
            let body = update_body(&session, &update).await?;
            let answer = session
                .api
                .send(
                    Method::PATCH,
                    &format!("/api/monitors/{}", named.id),
                    &[],
                    Some(&body),
                )
                .await?;
            session.show(&answer, monitor_fields)
        }
        MonitorCommand::Bulk(bulk) => {
            let mut body = Map::new();
            body.insert("action".into(), json!(bulk.action.as_str()));
            if !bulk.channels.is_empty() {
                body.insert(
                    "channels".into(),
                    json!(session.channel_ids(&bulk.channels).await?),
                );
            }
            if let Some(until) = &bulk.until {
                body.insert("until".into(), json!(until));
            }
            if bulk.until_recovery {
                body.insert("until_recovery".into(), json!(true));
            }
            if bulk.dry_run {
                body.insert("dry_run".into(), json!(true));
            }
            let answer = session
                .api
                .send(
                    Method::POST,
                    "/api/monitors/bulk",
                    &[("selector", bulk.selector)],
                    Some(&Value::Object(body)),
                )
                .await?;
            session.show(&answer, bulk_summary)
        }
        MonitorCommand::Pause { monitor } => monitor_action(&session, &monitor, "pause").await,
        MonitorCommand::Resume { monitor } => monitor_action(&session, &monitor, "resume").await,
        MonitorCommand::Mute {
            monitor,
            selector,
            until,
            until_recovery,
        } => {
            let body = match until {
                Some(until) => json!({ "until": until }),
                None => json!({ "until_recovery": until_recovery }),
            };
            let Some(monitor) = monitor else {
                return selected_action(&session, selector, "mute", Some(&body)).await;
            };
            let named = session.monitor_id(&monitor).await?;
            let answer = session
                .api
                .send(
                    Method::POST,
                    &format!("/api/monitors/{}/mute", named.id),
                    &[],
                    Some(&body),
                )
                .await?;
            session.show(&answer, monitor_fields)
        }
        MonitorCommand::Unmute { monitor, selector } => match monitor {
            Some(monitor) => monitor_action(&session, &monitor, "unmute").await,
            None => selected_action(&session, selector, "unmute", None).await,
        },
        MonitorCommand::RotateToken { monitor } => {
            monitor_action(&session, &monitor, "rotate-token").await
        }
        MonitorCommand::Delete { monitor } => {
            let named = session.monitor_id(&monitor).await?;
            session
                .api
                .send(
                    Method::DELETE,
                    &format!("/api/monitors/{}", named.id),
                    &[],
                    None,
                )
                .await?;
            session.done(&format!("deleted {}", named.label))
        }
    }
}

/// A bulk answer for people: how many were found and changed, then each changed
/// monitor with the events it got.
fn bulk_summary(answer: &Value) -> String {
    let verb = if answer["dry_run"] == true {
        "would change"
    } else {
        "changed"
    };
    let mut text = format!(
        "found {}, {verb} {}\n",
        answer["matched"].as_u64().unwrap_or(0),
        answer["changed"].as_u64().unwrap_or(0)
    );
    for monitor in items(answer, "monitors") {
        let events: Vec<&str> = monitor["events"]
            .as_array()
            .map(|events| events.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if !events.is_empty() {
            text.push_str(&format!(
                "{}  {}\n",
                monitor["name"].as_str().unwrap_or(""),
                events.join(", ")
            ));
        }
    }
    text
}

/// `action` (`mute` or `unmute`) on every monitor `selector` finds, in one request;
/// people read how many, scripts get the answer (`{"muted": N, "monitors": [ids]}`).
async fn selected_action(
    session: &Session,
    selector: Option<String>,
    action: &str,
    body: Option<&Value>,
) -> Result<(), Failure> {
    let query = [("selector", selector.unwrap_or_default())];
    let answer = session
        .api
        .send(
            Method::POST,
            &format!("/api/monitors/{action}"),
            &query,
            body,
        )
        .await?;
    session.show(&answer, |answer| {
        let count = answer[format!("{action}d")].as_u64().unwrap_or(0);
        let noun = if count == 1 { "monitor" } else { "monitors" };
        format!("{action}d {count} {noun}\n")
    })
}

async fn monitor_action(session: &Session, monitor: &str, action: &str) -> Result<(), Failure> {
    let named = session.monitor_id(monitor).await?;
    let answer = session
        .api
        .send(
            Method::POST,
            &format!("/api/monitors/{}/{action}", named.id),
            &[],
            None,
        )
        .await?;
    session.show(&answer, monitor_fields)
}

async fn create_body(session: &Session, create: MonitorCreateArgs) -> Result<Value, Failure> {
    let mut body = Map::new();
    body.insert("name".into(), json!(create.name));
    body.insert(
        "timeout_seconds".into(),
        json!(whole_seconds("--timeout", create.timeout)?),
    );
    if let Some(interval) = create.interval {
        body.insert(
            "interval_seconds".into(),
            json!(whole_seconds("--interval", interval)?),
        );
    }
    if !create.channels.is_empty() {
        body.insert(
            "channels".into(),
            json!(session.channel_ids(&create.channels).await?),
        );
    }
    if !create.tags.is_empty() {
        body.insert("tags".into(), json!(create.tags));
    }
    if !create.labels.is_empty() {
        body.insert("labels".into(), labels_object(&create.labels));
    }
    if let Some(severity) = create.severity {
        body.insert("severity".into(), json!(severity.as_str()));
    }
    if !create.allowed_sources.is_empty() {
        body.insert("allowed_sources".into(), json!(create.allowed_sources));
    }
    if let Some(path) = &create.signing_secret_file {
        body.insert("signing_secret".into(), json!(secret_in(path)?));
    }
    Ok(Value::Object(body))
}

async fn update_body(session: &Session, update: &MonitorUpdateArgs) -> Result<Value, Failure> {
    let mut body = Map::new();
    if let Some(name) = &update.name {
        body.insert("name".into(), json!(name));
    }
    if let Some(timeout) = update.timeout {
        body.insert(
            "timeout_seconds".into(),
            json!(whole_seconds("--timeout", timeout)?),
        );
    }
    if let Some(interval) = update.interval {
        body.insert(
            "interval_seconds".into(),
            json!(whole_seconds("--interval", interval)?),
        );
    }
    if update.no_channels {
        body.insert("channels".into(), json!([]));
    } else if !update.channels.is_empty() {
        body.insert(
            "channels".into(),
            json!(session.channel_ids(&update.channels).await?),
        );
    }
    if update.no_tags {
        body.insert("tags".into(), json!([]));
    } else if !update.tags.is_empty() {
        body.insert("tags".into(), json!(update.tags));
    }
    if update.no_labels {
        body.insert("labels".into(), json!({}));
    } else if !update.labels.is_empty() {
        body.insert("labels".into(), labels_object(&update.labels));
    }
    if let Some(severity) = update.severity {
        body.insert("severity".into(), json!(severity.as_str()));
    }
    if update.any_source {
        body.insert("allowed_sources".into(), json!([]));
    } else if !update.allowed_sources.is_empty() {
        body.insert("allowed_sources".into(), json!(update.allowed_sources));
    }
    if update.no_signing_secret {
        body.insert("signing_secret".into(), Value::Null);
    } else if let Some(path) = &update.signing_secret_file {
        body.insert("signing_secret".into(), json!(secret_in(path)?));
    }
    if body.is_empty() {
        return Err(Failure::usage(
            "nothing to change: give --name, --timeout, --interval, --channel, --no-channels, \
             --tag, --no-tags, --label, --no-labels, --severity, --allowed-source, \
             --any-source, --signing-secret-file or --no-signing-secret",
        ));
    }
    Ok(Value::Object(body))
}

/// A signing secret from a file (so it is not on the command line, where other users
/// see it), without the white space around it.
fn secret_in(path: &std::path::Path) -> Result<String, Failure> {
    std::fs::read_to_string(path)
        .map(|secret| secret.trim().to_owned())
        .map_err(|error| {
            Failure::usage(format!(
                "--signing-secret-file: cannot read {}: {error}",
                path.display()
            ))
        })
}

/// Labels as the API takes them: an object of keys to values (a key given twice
/// keeps its last value).
fn labels_object(labels: &[(String, String)]) -> Value {
    let object: Map<String, Value> = labels
        .iter()
        .map(|(key, value)| (key.clone(), json!(value)))
        .collect();
    Value::Object(object)
}

/// The array under `key` of a listing (empty if the answer has none).
fn items<'a>(body: &'a Value, key: &str) -> &'a [Value] {
    body[key].as_array().map_or(&[], Vec::as_slice)
}

pub async fn channel(args: ChannelArgs, env: Env<'_>) -> Result<(), Failure> {
    let session = Session::open(&args.api, env)?;
    match args.command {
        ChannelCommand::List => {
            let answer = session.get("/api/channels").await?;
            session.show(&answer, |body| {
                let rows: Vec<Vec<String>> = items(body, "channels")
                    .iter()
                    .map(|channel| {
                        let destination = ["url", "to", "chat_id", "api_url"]
                            .into_iter()
                            .find_map(|name| channel.get(name).filter(|value| !value.is_null()))
                            .map_or_else(String::new, output::cell);
                        vec![
                            field(channel, "id"),
                            field(channel, "kind"),
                            field(channel, "name"),
                            destination,
                        ]
                    })
                    .collect();
                if rows.is_empty() {
                    return "no channels\n".to_owned();
                }
                table(&["ID", "KIND", "NAME", "DESTINATION"], &rows)
            })
        }
        ChannelCommand::Create(create) => {
            let body = channel_body(*create);
            let answer = session
                .api
                .send(Method::POST, "/api/channels", &[], Some(&body))
                .await?;
            session.show(&answer, |channel| fields(channel, CHANNEL_FIELDS))
        }
        ChannelCommand::Test { channel } => {
            let named = session
                .resolve("channel", "/api/channels", "channels", &channel)
                .await?;
            let answer = session
                .api
                .send(
                    Method::POST,
                    &format!("/api/channels/{}/test", named.id),
                    &[],
                    None,
                )
                // Not delivered is a 502: exit code 1, with the server's reason.
                .await?;
            session.show(&answer, |_| {
                format!("test message delivered through {}\n", named.label)
            })
        }
        ChannelCommand::Delete { channel } => {
            let named = session
                .resolve("channel", "/api/channels", "channels", &channel)
                .await?;
            session
                .api
                .send(
                    Method::DELETE,
                    &format!("/api/channels/{}", named.id),
                    &[],
                    None,
                )
                .await?;
            session.done(&format!("deleted {}", named.label))
        }
    }
}

/// The fields given; the server says which a kind takes and which it misses.
fn channel_body(create: ChannelCreateArgs) -> Value {
    let mut body = Map::new();
    body.insert("kind".into(), json!(create.kind.as_str()));
    body.insert("name".into(), json!(create.name));
    if let Some(send_on) = create.send_on {
        body.insert("send_on".into(), json!(send_on.as_str()));
    }
    for (name, value) in [
        ("url", create.url),
        ("secret", create.secret),
        ("smtp_url", create.smtp_url),
        ("from", create.from),
        ("method", create.method),
        ("body", create.body),
        ("bot_token", create.bot_token),
        ("chat_id", create.chat_id),
        ("api_url", create.api_url),
        ("routing_key", create.routing_key),
        ("api_key", create.api_key),
        ("token", create.token),
        ("app_token", create.app_token),
        ("user_key", create.user_key),
        ("access_token", create.access_token),
        ("room_id", create.room_id),
    ] {
        if let Some(value) = value {
            body.insert(name.into(), json!(value));
        }
    }
    if let Some(priority) = create.priority {
        // A number for ntfy, Gotify and Pushover; Opsgenie's are `P1` … `P5`.
        let value = priority
            .parse::<i64>()
            .map_or_else(|_| json!(priority), |number| json!(number));
        body.insert("priority".into(), value);
    }
    if !create.to.is_empty() {
        body.insert("to".into(), json!(create.to));
    }
    if !create.headers.is_empty() {
        // `Name: value`; a line without a colon is sent as a name with no value, which
        // the server refuses naming it.
        let headers: Map<String, Value> = create
            .headers
            .iter()
            .map(|header| match header.split_once(':') {
                Some((name, value)) => (name.trim().to_owned(), json!(value.trim())),
                None => (header.trim().to_owned(), json!("")),
            })
            .collect();
        body.insert("headers".into(), Value::Object(headers));
    }
    Value::Object(body)
}

pub async fn key(args: KeyArgs, env: Env<'_>) -> Result<(), Failure> {
    let session = Session::open(&args.api, env)?;
    match args.command {
        KeyCommand::List => {
            let answer = session.get("/api/keys").await?;
            session.show(&answer, |body| {
                let rows: Vec<Vec<String>> = items(body, "keys")
                    .iter()
                    .map(|key| {
                        vec![
                            field(key, "id"),
                            field(key, "name"),
                            field(key, "scope"),
                            field(key, "created_at"),
                        ]
                    })
                    .collect();
                if rows.is_empty() {
                    return "no API keys\n".to_owned();
                }
                table(&["ID", "NAME", "SCOPE", "CREATED"], &rows)
            })
        }
        KeyCommand::Create { name, scope } => {
            let body = json!({"name": name, "scope": scope.as_str()});
            let answer = session
                .api
                .send(Method::POST, "/api/keys", &[], Some(&body))
                .await?;
            session.show(&answer, |key| {
                format!(
                    "{}\nThe key is shown only this once: the server keeps only its digest.\n",
                    fields(key, KEY_FIELDS)
                )
            })
        }
        KeyCommand::Revoke { key } => {
            let named = session
                .resolve("API key", "/api/keys", "keys", &key)
                .await?;
            session
                .api
                .send(
                    Method::DELETE,
                    &format!("/api/keys/{}", named.id),
                    &[],
                    None,
                )
                .await?;
            session.done(&format!("revoked {}", named.label))
        }
    }
}

pub async fn events(args: EventsArgs, env: Env<'_>) -> Result<(), Failure> {
    let session = Session::open(&args.api, env)?;
    let named = session.monitor_id(&args.monitor).await?;
    let mut query = Vec::new();
    if let Some(limit) = args.limit {
        query.push(("limit", limit.to_string()));
    }
    if let Some(before) = args.before {
        query.push(("before", before.to_string()));
    }
    let answer = session
        .api
        .send(
            Method::GET,
            &format!("/api/monitors/{}/events", named.id),
            &query,
            None,
        )
        .await?;
    session.show(&answer, |body| {
        let rows: Vec<Vec<String>> = items(body, "events")
            .iter()
            .map(|event| {
                let details = event
                    .as_object()
                    .map(|map| {
                        map.iter()
                            .filter(|(name, value)| {
                                !matches!(name.as_str(), "seq" | "at" | "kind") && !value.is_null()
                            })
                            .map(|(name, value)| format!("{name}={}", output::cell(value)))
                            .collect::<Vec<_>>()
                            .join(" ")
                    })
                    .unwrap_or_default();
                vec![
                    field(event, "seq"),
                    field(event, "at"),
                    field(event, "kind"),
                    details,
                ]
            })
            .collect();
        if rows.is_empty() {
            return "no events\n".to_owned();
        }
        table(&["SEQ", "AT", "KIND", "DETAILS"], &rows)
    })
}

/// `pushmon export`: the server's monitors file (`GET /api/export`), printed as it
/// came (it is YAML whatever `--output` says).
pub async fn export(args: ExportArgs, env: Env<'_>) -> Result<(), Failure> {
    let session = Session::open(&args.api, env)?;
    let query = [("secrets", args.secrets.to_string())];
    let answer = session
        .api
        .send(Method::GET, "/api/export", &query, None)
        .await?;
    output::print_bytes(&answer.body)
}
