//! The OpenAPI description of the HTTP API (`docs/api.md`, "OpenAPI"): the push, the
//! Healthchecks-compatible ping URLs, the management API with the settings, the JSON
//! badge and the health endpoints, served at
//! `GET /api/openapi.json` (no authentication: it holds no secret) and committed as
//! `docs/openapi.json`.
//!
//! The handlers build their JSON by hand (so that errors name fields), so the shapes
//! are declared here as types deriving `ToSchema`, one per object of `docs/api.md`,
//! each closed (`additionalProperties: false`), and the operations as `#[utoipa::path]`
//! items. Two tests keep this true: `tests/it/openapi.rs` checks that every route the
//! router serves under `/api/` and `/ping/`, the badge and the health routes is here
//! with the methods it answers and nothing more, and `tests/it/contract.rs` runs
//! schemathesis against the real server, which fails on any answer these schemas do
//! not describe.

use std::sync::LazyLock;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{Modify, OpenApi, ToSchema};

use super::AppState;
use super::api::{MAX_TAG_CHARS, MAX_TAGS};

pub fn router() -> Router<AppState> {
    Router::new().route("/api/openapi.json", get(serve))
}

/// The document as served and committed, built once.
static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
    let mut text = ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|error| format!("{{\"error\":\"cannot render the document: {error}\"}}"));
    text.push('\n');
    text
});

/// The OpenAPI document as JSON text: what `GET /api/openapi.json` answers and
/// `docs/openapi.json` holds.
pub fn document() -> &'static str {
    &DOCUMENT
}

async fn serve() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        document(),
    )
        .into_response()
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "pushmon",
        description = "A self-hosted push (heartbeat) monitor. The reference is docs/api.md \
            (management), docs/push.md (pushes) and docs/dashboard.md (badges). Every GET \
            route also answers HEAD, with the same status and headers and no body. Every \
            error is JSON `{\"error\": \"...\"}`. A path that is no route answers 404, and a \
            known path with a method it does not have answers 405 with an `Allow` header, \
            both before authentication."
    ),
    paths(
        paths::push_get,
        paths::push_post,
        paths::list_monitors,
        paths::create_monitor,
        paths::get_monitor,
        paths::update_monitor,
        paths::delete_monitor,
        paths::rotate_token,
        paths::pause_monitor,
        paths::resume_monitor,
        paths::monitor_events,
        paths::monitor_uptime,
        paths::monitor_incidents,
        paths::list_channels,
        paths::create_channel,
        paths::get_channel,
        paths::update_channel,
        paths::delete_channel,
        paths::test_channel,
        paths::list_badges,
        paths::create_badge,
        paths::get_badge,
        paths::delete_badge,
        paths::list_status_pages,
        paths::create_status_page,
        paths::get_status_page,
        paths::update_status_page,
        paths::delete_status_page,
        paths::list_keys,
        paths::create_key,
        paths::revoke_key,
        paths::ping_get,
        paths::ping_action_get,
        paths::ping_slug_get,
        paths::get_settings,
        paths::rotate_ping_key,
        paths::export,
        paths::openapi_document,
        paths::badge_json,
        paths::healthz,
        paths::readyz,
        paths::metrics,
    ),
    components(schemas(
        ErrorBody, Accepted, Monitor, MonitorList, StatusCounts, Severity, MonitorFields,
        MonitorPatch, Event,
        EventList, UptimeWindow, UptimeAnswer, Incident, IncidentList, Channel, ChannelList,
        ChannelFields, WebhookFields, ChatFields, EmailFields, ChannelPatch, SendOn, HttpMethod,
        OpsgeniePriority, Priority, ChatId, TemplateFields, TelegramFields, PagerDutyFields,
        OpsgenieFields, NtfyFields, GotifyFields, PushoverFields, MatrixFields, TemplateKind,
        TelegramKind, PagerDutyKind, OpsgenieKind, NtfyKind, GotifyKind, PushoverKind, MatrixKind, Badge, BadgeList, BadgeFields, StatusPage,
        StatusPageList, StatusPageFields, StatusPagePatch, ApiKey, ApiKeyList, NewApiKey,
        ApiKeyFields, PushBody, PushForm, ShieldsBadge, Health, Settings,
    )),
    modifiers(&CommonAnswers),
    tags(
        (name = "push", description = "Heartbeats and jobs' signals: docs/push.md, and the \
            Healthchecks-compatible ping URLs (docs/api.md, \"Ping URLs\")"),
        (name = "monitors", description = "Monitors, their history, uptime and incidents"),
        (name = "channels", description = "Where alerts go"),
        (name = "publications", description = "Badges and status pages"),
        (name = "keys", description = "API keys (admin token only)"),
        (name = "settings", description = "The ping key and the ping URLs' settings (admin \
            token only)"),
        (name = "export", description = "The whole configuration as a monitors file \
            (docs/monitors-file.md)"),
        (name = "operations", description = "Health, readiness, metrics and this document"),
    )
)]
pub struct ApiDoc;

/// The security scheme's name in the document (the operations below spell it out:
/// the path macro takes a literal).
const BEARER: &str = "bearer";

/// What every operation can answer besides its own answers, added to each by the
/// shape of the operation (authenticated or not, with a body or not) so they are
/// declared once: the bearer scheme and the shared error answers.
struct CommonAnswers;

/// Reusable answers, by name: (name, description).
const ANSWERS: &[(&str, &str)] = &[
    (
        "BadRequest",
        "The body is not valid JSON or not a JSON object, or a query parameter is malformed",
    ),
    (
        "Unauthorized",
        "No `Authorization: Bearer`, or an unknown or revoked secret",
    ),
    (
        "Forbidden",
        "A read key asking to change something, any key on `/api/keys` or \
         `/api/settings`, or a key asking for an export with secrets",
    ),
    (
        "NotFound",
        "No such object (also for an id that is not a UUID)",
    ),
    ("TooLarge", "The body is larger than 64 KiB"),
    (
        "Unprocessable",
        "A field is missing, unknown, has the wrong type or is out of range; the error names it",
    ),
    (
        "Internal",
        "A stored record could not be read (details in the server log)",
    ),
    (
        "Unavailable",
        "The server is starting or shutting down, the store cannot write or read, or a \
         monitor's worker is restarting",
    ),
];

impl Modify for CommonAnswers {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        event_by_kind(components);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The admin token, or an API key (`pmk_…`). The roles an operation \
                         names: `read` (any key or the admin token), `write` (a write key or \
                         the admin token), `admin` (the admin token only). A read key sees \
                         credential fields (`push_token`, `push_url`, `url`, `smtp_url`) as \
                         null.",
                    ))
                    .build(),
            ),
        );
        for (name, description) in ANSWERS {
            components.responses.insert(
                (*name).to_owned(),
                RefOr::T(
                    utoipa::openapi::ResponseBuilder::new()
                        .description(*description)
                        .content(
                            "application/json",
                            utoipa::openapi::ContentBuilder::new()
                                .schema(Some(Ref::from_schema_name("ErrorBody")))
                                .build(),
                        )
                        .build(),
                ),
            );
        }
        // A push's body is optional (the usual push has none).
        if let Some(RefOr::T(body)) = openapi
            .paths
            .paths
            .get_mut("/api/push/{token}")
            .and_then(|item| item.post.as_mut())
            .and_then(|operation| operation.request_body.as_mut())
        {
            body.required = Some(utoipa::openapi::Required::False);
        }
        for (path, item) in openapi.paths.paths.iter_mut() {
            if path.starts_with("/ping/") {
                ping_operations(item);
            }
        }
        for item in openapi.paths.paths.values_mut() {
            for operation in [
                &mut item.get,
                &mut item.post,
                &mut item.patch,
                &mut item.delete,
            ]
            .into_iter()
            .flatten()
            {
                add_common_answers(operation);
            }
        }
    }
}

/// The configuration a `created` or `updated` event carries.
const CONFIG_FIELDS: &[&str] = &[
    "name",
    "timeout_seconds",
    "interval_seconds",
    "channels",
    "tags",
    "key",
    "slug",
    "schedule",
    "timezone",
    "grace_seconds",
    "max_runtime_seconds",
    "min_runtime_seconds",
    "failure_threshold",
    "recovery_threshold",
    "realert_every_seconds",
    "maintenance",
    "labels",
    "severity",
];

/// Each event kind with the fields it always has besides `seq`, `at` and `kind`
/// (`api::event_json`), and those of them that are never null in it.
const EVENT_KINDS: &[(&str, &[&str], &[&str])] = &[
    ("created", CONFIG_FIELDS, &[]),
    ("updated", CONFIG_FIELDS, &[]),
    ("token_rotated", &[], &[]),
    ("heartbeat", &["status", "msg", "value"], &[]),
    ("down", &["reason"], &["reason"]),
    ("up", &["reason"], &["reason"]),
    ("paused", &[], &[]),
    ("resumed", &[], &[]),
    (
        "delivery",
        &["channel", "alert_seq", "result", "attempts", "error"],
        &[],
    ),
    ("run_started", &["rid", "msg", "output", "dropped_run"], &[]),
    (
        "run_ended",
        &[
            "rid",
            "started_at",
            "outcome",
            "reason",
            "exit_status",
            "output",
        ],
        &[],
    ),
    ("log", &["rid", "msg", "output"], &[]),
    ("run_overran", &["rid", "started_at"], &["started_at"]),
    ("failure_counted", &["reason", "count"], &["reason"]),
    ("success_counted", &["count"], &[]),
    ("reminder", &["reason"], &["reason"]),
    ("alert_suppressed", &["alert", "reason"], &["reason"]),
    ("alert_released", &["alert", "reason"], &["reason"]),
];

/// The Event schema as one closed object per kind (`oneOf`), each with exactly the
/// fields of its kind, all present, from the schemas of the fields as [`Event`]
/// declares them.
fn event_by_kind(components: &mut utoipa::openapi::Components) {
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
    let Some(RefOr::T(Schema::Object(flat))) = components.schemas.get("Event") else {
        return;
    };
    let mut one_of = OneOfBuilder::new().description(Some(
        "The Event object (`docs/api.md`, \"The Event object\"): `seq`, `at` and `kind`, and \
         the fields of its kind",
    ));
    for (kind, fields, never_null) in EVENT_KINDS {
        let mut object = ObjectBuilder::new()
            .schema_type(Type::Object)
            .title(Some(*kind))
            .additional_properties(Some(
                utoipa::openapi::schema::AdditionalProperties::FreeForm(false),
            ));
        for field in ["seq", "at"] {
            if let Some(schema) = flat.properties.get(field) {
                object = object.property(field, schema.clone()).required(field);
            }
        }
        object = object
            .property(
                "kind",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some([*kind])),
            )
            .required("kind");
        for field in *fields {
            let Some(schema) = flat.properties.get(*field) else {
                continue;
            };
            let schema = if never_null.contains(field) {
                without_null(schema.clone())
            } else {
                schema.clone()
            };
            object = object.property(*field, schema).required(*field);
        }
        one_of = one_of.item(object);
    }
    components
        .schemas
        .insert("Event".to_owned(), RefOr::T(Schema::OneOf(one_of.build())));
}

/// A nullable schema as utoipa writes one (`oneOf` of it and null, or a type list
/// with null) without the null.
fn without_null(
    schema: RefOr<utoipa::openapi::schema::Schema>,
) -> RefOr<utoipa::openapi::schema::Schema> {
    use utoipa::openapi::schema::{Schema, SchemaType, Type};
    match schema {
        RefOr::T(Schema::OneOf(mut one_of)) => {
            one_of.items.retain(|item| {
                !matches!(item, RefOr::T(Schema::Object(object))
                    if object.schema_type == SchemaType::Type(Type::Null))
            });
            match one_of.items.as_slice() {
                [only] => only.clone(),
                _ => RefOr::T(Schema::OneOf(one_of)),
            }
        }
        RefOr::T(Schema::Object(mut object)) => {
            if let SchemaType::Array(types) = &object.schema_type {
                let kept: Vec<Type> = types
                    .iter()
                    .filter(|kind| **kind != Type::Null)
                    .cloned()
                    .collect();
                if let [only] = kept.as_slice() {
                    object.schema_type = SchemaType::Type(only.clone());
                }
            }
            RefOr::T(Schema::Object(object))
        }
        other => other,
    }
}

/// A ping route's operations from its `get`: the `Ping-Body-Limit` header on every
/// answer, and the same operation as a `post` whose optional body is the run's output.
fn ping_operations(item: &mut utoipa::openapi::path::PathItem) {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    use utoipa::openapi::{ContentBuilder, Required, header::HeaderBuilder};
    let Some(get) = item.get.as_mut() else {
        return;
    };
    for response in get.responses.responses.values_mut() {
        if let RefOr::T(response) = response {
            response.headers.insert(
                "Ping-Body-Limit".to_owned(),
                RefOr::T(
                    HeaderBuilder::new()
                        .schema(Some(
                            ObjectBuilder::new()
                                .schema_type(Type::Integer)
                                .minimum(Some(0)),
                        ))
                        .description(Some(
                            "How many bytes of a ping's body are kept (`--ping-body-limit`)",
                        ))
                        .build(),
                ),
            );
        }
    }
    let mut post = get.clone();
    post.operation_id = post.operation_id.map(|id| id.replace("_get", "_post"));
    post.request_body = Some(RefOr::T(
        utoipa::openapi::request_body::RequestBodyBuilder::new()
            .description(Some(
                "Optional, of any type: the run's output, its first `Ping-Body-Limit` bytes \
                 kept (invalid UTF-8 replaced)",
            ))
            .content(
                "text/plain",
                ContentBuilder::new()
                    .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                    .build(),
            )
            .required(Some(Required::False))
            .build(),
    ));
    item.post = Some(post);
}

fn add_common_answers(operation: &mut Operation) {
    let authenticated = operation.security.as_ref().is_some_and(|requirements| {
        !requirements.is_empty()
            && serde_json::to_value(requirements)
                .is_ok_and(|value| value.to_string().contains(BEARER))
    });
    let has_id = operation.parameters.as_ref().is_some_and(|parameters| {
        parameters.iter().any(|parameter| {
            matches!(parameter, RefOr::T(parameter) if parameter.name == "id"
                && parameter.parameter_in == utoipa::openapi::path::ParameterIn::Path)
        })
    });
    if !authenticated {
        // The public operations declare their own answers.
        return;
    }
    let mut common = vec![
        ("401", "Unauthorized"),
        ("403", "Forbidden"),
        ("500", "Internal"),
        ("503", "Unavailable"),
    ];
    if has_id {
        common.push(("404", "NotFound"));
    }
    if operation.request_body.is_some() {
        common.extend([
            ("400", "BadRequest"),
            ("413", "TooLarge"),
            ("422", "Unprocessable"),
        ]);
    }
    for (status, name) in common {
        operation
            .responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| RefOr::Ref(Ref::from_response_name(name)));
    }
}

/// At most 32 tags of 1 to 64 characters, or null.
fn nullable_tags() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, SchemaType, Type};
    ArrayBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(MAX_TAG_CHARS)),
        )
        .max_items(Some(MAX_TAGS))
        .description(Some("Each 1 to 64 characters; repeats are dropped"))
        .build()
}

/// Every error: `{"error": "<what is wrong>"}`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"error": "monitor not found"}))]
pub struct ErrorBody {
    pub error: String,
}

/// `{"ok": true}`: an accepted push, a delivered test message.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Accepted {
    /// Always true.
    pub ok: bool,
}

/// A monitor's state.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MonitorStatus {
    Pending,
    Up,
    Down,
    Paused,
}

/// The Monitor object (`docs/api.md`, "The Monitor object").
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Monitor {
    #[schema(format = Uuid)]
    pub id: String,
    pub name: String,
    pub status: MonitorStatus,
    /// Null for a monitor timed by a schedule.
    #[schema(required = true, minimum = 1, maximum = 31_536_000)]
    pub timeout_seconds: Option<u32>,
    /// Null for a monitor timed by a schedule.
    #[schema(required = true, minimum = 1, maximum = 31_536_000)]
    pub interval_seconds: Option<u32>,
    /// The push URL's secret; null for a read key.
    #[schema(required = true)]
    pub push_token: Option<String>,
    /// `<public URL>/api/push/<push_token>`; null for a read key.
    #[schema(required = true)]
    pub push_url: Option<String>,
    /// Ids of the channels this monitor alerts.
    #[schema(value_type = Vec<uuid::Uuid>)]
    pub channels: Vec<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(required = true, format = DateTime)]
    pub last_heartbeat_at: Option<String>,
    #[schema(required = true, format = DateTime)]
    pub last_status_change_at: Option<String>,
    #[schema(required = true)]
    pub last_msg: Option<String>,
    #[schema(required = true)]
    pub last_value: Option<f64>,
    /// The cron pattern; null without a schedule.
    #[schema(required = true)]
    pub schedule: Option<String>,
    /// The schedule's IANA zone; null without a schedule.
    #[schema(required = true)]
    pub timezone: Option<String>,
    /// Null without a schedule.
    #[schema(required = true, minimum = 1, maximum = 31_536_000)]
    pub grace_seconds: Option<u32>,
    /// Null: off.
    #[schema(required = true, minimum = 1, maximum = 31_536_000)]
    pub max_runtime_seconds: Option<u32>,
    /// Null: off.
    #[schema(required = true, minimum = 1, maximum = 31_536_000)]
    pub min_runtime_seconds: Option<u32>,
    #[schema(minimum = 1, maximum = 1000)]
    pub failure_threshold: u32,
    #[schema(minimum = 1, maximum = 1000)]
    pub recovery_threshold: u32,
    /// Null: no reminders.
    #[schema(required = true, minimum = 1, maximum = 31_536_000)]
    pub realert_every_seconds: Option<u32>,
    #[schema(max_items = 16)]
    pub maintenance: Vec<MaintenanceWindow>,
    /// When the job is next expected; null while `down` or `paused`.
    #[schema(required = true, format = DateTime)]
    pub next_due_at: Option<String>,
    /// When the monitor fails (or counts a failure) if nothing comes; null while
    /// `down` or `paused`.
    #[schema(required = true, format = DateTime)]
    pub next_deadline_at: Option<String>,
    #[schema(required = true, format = DateTime)]
    pub last_success_at: Option<String>,
    /// The newest open run.
    #[schema(required = true)]
    pub current_run: Option<CurrentRun>,
    /// Runs started and not ended.
    #[schema(minimum = 0, maximum = 16)]
    pub open_runs: u32,
    /// The newest run that ended.
    #[schema(required = true)]
    pub last_run: Option<LastRun>,
    /// The count toward `failure_threshold`.
    pub consecutive_failures: u32,
    /// The count toward `recovery_threshold`.
    pub consecutive_successes: u32,
    /// While `down`: the rule that put it there.
    #[schema(required = true)]
    pub down_reason: Option<DownReason>,
    /// Whether a maintenance window is on now.
    pub in_maintenance: bool,
    /// When the current maintenance ends.
    #[schema(required = true, format = DateTime)]
    pub maintenance_until: Option<String>,
    /// Present only when the monitor has tags.
    #[serde(default)]
    #[schema(nullable = false)]
    pub tags: Option<Vec<String>>,
    /// Key/value labels (`{}` when none).
    pub labels: std::collections::BTreeMap<String, String>,
    pub severity: Severity,
    /// Present only for a monitor declared in a monitors file.
    #[serde(default)]
    #[schema(nullable = false)]
    pub key: Option<String>,
    /// Present only when the monitor has a slug.
    #[serde(default)]
    #[schema(nullable = false)]
    pub slug: Option<String>,
}

/// Why a monitor went down (`docs/states.md`).
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DownReason {
    Timeout,
    Schedule,
    Manual,
    ExitStatus,
    MaxRuntime,
    TooFast,
}

/// Why a run failed: a `fail`, a non-zero exit status, or an end sooner than
/// `min_runtime_seconds`.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FailureReason {
    Manual,
    ExitStatus,
    TooFast,
}

/// How a run ended.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    Success,
    Failure,
}

/// A maintenance window as a monitor shows it: one-off, or recurring.
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
pub enum MaintenanceWindow {
    Once(OnceWindow),
    Recurring(RecurringWindow),
}

/// A one-off maintenance window.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OnceWindow {
    #[schema(format = DateTime)]
    pub start: String,
    /// After `start`.
    #[schema(format = DateTime)]
    pub end: String,
}

/// A maintenance window starting at each time of a cron pattern.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecurringWindow {
    #[schema(min_length = 1, max_length = 200)]
    pub cron: String,
    #[schema(minimum = 1, maximum = 31_536_000)]
    pub duration_seconds: u32,
    /// An IANA zone.
    pub timezone: String,
}

/// A maintenance window in a body: `{"start", "end"}` or `{"cron",
/// "duration_seconds", "timezone"?}`.
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
pub enum MaintenanceWindowFields {
    Once(OnceWindow),
    Recurring(RecurringWindowFields),
}

/// A recurring maintenance window in a body.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecurringWindowFields {
    /// A cron pattern as for `schedule`.
    #[schema(min_length = 1, max_length = 200)]
    pub cron: String,
    #[schema(minimum = 1, maximum = 31_536_000)]
    pub duration_seconds: u32,
    /// An IANA zone; `UTC` when absent or null.
    #[serde(default)]
    pub timezone: Option<String>,
}

/// A monitor's newest open run.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CurrentRun {
    /// The run id its start gave, or null.
    #[schema(required = true, value_type = Option<uuid::Uuid>)]
    pub rid: Option<String>,
    #[schema(format = DateTime)]
    pub started_at: String,
    /// Whether it passed `max_runtime_seconds`.
    pub overran: bool,
}

/// A monitor's newest run that ended.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LastRun {
    /// Null for an end with no start.
    #[schema(required = true, format = DateTime)]
    pub started_at: Option<String>,
    #[schema(format = DateTime)]
    pub ended_at: String,
    /// Null without a start.
    #[schema(required = true, minimum = 0)]
    pub duration_ms: Option<u64>,
    #[schema(required = true, minimum = 0, maximum = 255)]
    pub exit_status: Option<u8>,
    pub outcome: RunOutcome,
    /// For a failure; null for a success.
    #[schema(required = true)]
    pub reason: Option<FailureReason>,
    /// The output's last 1,024 bytes, `…` first when cut.
    #[schema(required = true)]
    pub output_excerpt: Option<String>,
}

/// `GET /api/monitors`: one page, in id order (oldest first).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MonitorList {
    pub monitors: Vec<Monitor>,
    /// How many monitors of each state the filters let through, over every page.
    pub counts: StatusCounts,
    /// The `cursor` of the next page; null on the last.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// A count per state.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusCounts {
    pub pending: u64,
    pub up: u64,
    pub down: u64,
    pub paused: u64,
}

/// How urgent a monitor's alerts are (Alertmanager's `severity` label).
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Critical,
    Warning,
    Info,
}

/// Labels as a body gives them: at most 32; keys an optional DNS-subdomain prefix
/// and `/`, then 1 to 63 of letters, digits, `-`, `_` and `.`, starting and ending
/// with a letter or digit; values empty or the same up to 63 characters.
fn label_map() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, SchemaType, Type};
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Object, Type::Null]))
        .additional_properties(Some(AdditionalProperties::RefOr(RefOr::T(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .max_length(Some(63))
                .pattern(Some("^([A-Za-z0-9]([-_.A-Za-z0-9]*[A-Za-z0-9])?)?$"))
                .into(),
        ))))
        .max_properties(Some(32))
        .description(Some(
            "Label keys to values, checked as Kubernetes checks labels; replaces every \
             label; null: none",
        ))
        .build()
}

/// The body of `POST /api/monitors` (`docs/api.md`, "Monitor fields"). Integers are
/// JSON numbers without a fraction. A monitor is timed by `timeout_seconds` or by a
/// `schedule`, never both: `timeout_seconds` is required unless `schedule` is given,
/// `timeout_seconds` and `interval_seconds` are refused with one, `timezone` and
/// `grace_seconds` without one; `interval_seconds` must not be greater than
/// `timeout_seconds`, nor `min_runtime_seconds` at least `max_runtime_seconds`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MonitorFields {
    /// 1 to 200 characters, no control characters, not only white space or invisible
    /// characters.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]+$"
    )]
    pub name: String,
    /// Required unless `schedule` is given (null counts as absent).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 31_536_000)]
    pub timeout_seconds: Option<u32>,
    /// Defaults to `timeout_seconds` (also when null).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 31_536_000)]
    pub interval_seconds: Option<u32>,
    /// Ids of existing channels; repeats are dropped.
    #[serde(default)]
    #[schema(value_type = Option<Vec<uuid::Uuid>>, max_items = 64)]
    pub channels: Option<Vec<String>>,
    /// Each 1 to 64 characters; repeats are dropped.
    #[serde(default)]
    #[schema(schema_with = nullable_tags)]
    pub tags: Option<Vec<String>>,
    #[serde(default)]
    #[schema(schema_with = label_map)]
    pub labels: Option<std::collections::BTreeMap<String, String>>,
    /// `critical` by default.
    #[serde(default)]
    #[schema(nullable = false)]
    pub severity: Option<Severity>,
    /// A cron pattern of 5 fields, or `@yearly`, `@monthly`, `@weekly`, `@daily`,
    /// `@hourly`, firing at least once a year; null: none.
    #[serde(default)]
    #[schema(max_length = 200)]
    pub schedule: Option<String>,
    /// An IANA zone name (`Europe/Paris`), `UTC` by default; only with a schedule.
    #[serde(default)]
    pub timezone: Option<String>,
    /// 3600 by default; only with a schedule.
    #[serde(default)]
    #[schema(nullable = false, minimum = 1, maximum = 31_536_000)]
    pub grace_seconds: Option<u32>,
    /// Null: off (the default).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 31_536_000)]
    pub max_runtime_seconds: Option<u32>,
    /// Null: off (the default).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 31_536_000)]
    pub min_runtime_seconds: Option<u32>,
    /// 1 by default.
    #[serde(default)]
    #[schema(nullable = false, minimum = 1, maximum = 1000)]
    pub failure_threshold: Option<u32>,
    /// 1 by default.
    #[serde(default)]
    #[schema(nullable = false, minimum = 1, maximum = 1000)]
    pub recovery_threshold: Option<u32>,
    /// Null: no reminders (the default).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 31_536_000)]
    pub realert_every_seconds: Option<u32>,
    /// Null: none.
    #[serde(default)]
    #[schema(max_items = 16)]
    pub maintenance: Option<Vec<MaintenanceWindowFields>>,
    /// 1 to 100 of `a-z`, `0-9` and `-`, unique among monitors; null: none.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 100, pattern = "^[a-z0-9-]+$")]
    pub slug: Option<String>,
    /// A token brought from another tool: 22 base64url characters, or 16 to 128 of
    /// `A–Z a–z 0–9 - _ . ~` with at least 64 bits of estimated randomness, unique;
    /// null: a random one.
    #[serde(default)]
    #[schema(min_length = 16, max_length = 128, pattern = "^[A-Za-z0-9._~-]+$")]
    pub push_token: Option<String>,
}

/// The body of `PATCH /api/monitors/{id}`: only the fields given change (see
/// `MonitorFields` for how they go together, checked against the whole
/// configuration the change leaves).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MonitorPatch {
    #[serde(default)]
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]+$",
        nullable = false
    )]
    pub name: Option<String>,
    /// Null leaves it unchanged.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 31_536_000)]
    pub timeout_seconds: Option<u32>,
    /// Null leaves it unchanged.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 31_536_000)]
    pub interval_seconds: Option<u32>,
    /// Replaces the list; null leaves it unchanged.
    #[serde(default)]
    #[schema(value_type = Option<Vec<uuid::Uuid>>, max_items = 64)]
    pub channels: Option<Vec<String>>,
    /// Replaces the list; null leaves it unchanged.
    #[serde(default)]
    #[schema(schema_with = nullable_tags)]
    pub tags: Option<Vec<String>>,
    #[serde(default)]
    #[schema(schema_with = label_map)]
    pub labels: Option<std::collections::BTreeMap<String, String>>,
    #[serde(default)]
    #[schema(nullable = false)]
    pub severity: Option<Severity>,
    /// Null removes the schedule.
    #[serde(default)]
    #[schema(max_length = 200)]
    pub schedule: Option<String>,
    /// Null leaves it unchanged.
    #[serde(default)]
    pub timezone: Option<String>,
    #[serde(default)]
    #[schema(nullable = false, minimum = 1, maximum = 31_536_000)]
    pub grace_seconds: Option<u32>,
    /// Null turns it off.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 31_536_000)]
    pub max_runtime_seconds: Option<u32>,
    /// Null turns it off.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 31_536_000)]
    pub min_runtime_seconds: Option<u32>,
    #[serde(default)]
    #[schema(nullable = false, minimum = 1, maximum = 1000)]
    pub failure_threshold: Option<u32>,
    #[serde(default)]
    #[schema(nullable = false, minimum = 1, maximum = 1000)]
    pub recovery_threshold: Option<u32>,
    /// Null turns reminders off.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 31_536_000)]
    pub realert_every_seconds: Option<u32>,
    /// Replaces the list; null empties it.
    #[serde(default)]
    #[schema(max_items = 16)]
    pub maintenance: Option<Vec<MaintenanceWindowFields>>,
    /// Null takes the slug away.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 100, pattern = "^[a-z0-9-]+$")]
    pub slug: Option<String>,
}

/// What an event records (`docs/api.md`, "The Event object").
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Created,
    Updated,
    TokenRotated,
    Heartbeat,
    Down,
    Up,
    Paused,
    Resumed,
    Delivery,
    RunStarted,
    RunEnded,
    Log,
    RunOverran,
    FailureCounted,
    SuccessCounted,
    Reminder,
    AlertSuppressed,
    AlertReleased,
}

/// An event's `reason`: why it went down (`down`, `failure_counted`, `reminder`, a
/// run's failure), or how it came up (`heartbeat`, `first_heartbeat`).
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventReason {
    Timeout,
    Schedule,
    Manual,
    ExitStatus,
    MaxRuntime,
    TooFast,
    Heartbeat,
    FirstHeartbeat,
}

/// Which alert a maintenance window held back or released.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AlertKind {
    Down,
    Up,
}

/// The oldest open run, forgotten by a `run_started` because 16 were open.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DroppedRun {
    #[schema(required = true, value_type = Option<uuid::Uuid>)]
    pub rid: Option<String>,
    #[schema(format = DateTime)]
    pub started_at: String,
}

/// The Event object (`docs/api.md`, "The Event object"): `seq`, `at` and `kind`, and
/// the fields of its kind.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Event {
    pub seq: u64,
    #[schema(format = DateTime)]
    pub at: String,
    pub kind: EventKind,
    /// `heartbeat`: `up` or `down`.
    #[serde(default)]
    #[schema(nullable = false)]
    pub status: Option<PushStatus>,
    /// `heartbeat`, `run_started`, `log`: the message, or null.
    #[serde(default)]
    pub msg: Option<String>,
    /// `heartbeat`: its value, or null.
    #[serde(default)]
    pub value: Option<f64>,
    /// `down`, `failure_counted`, `reminder`: why it failed; `up`: `heartbeat` or
    /// `first_heartbeat`; `alert_suppressed`, `alert_released`: the alert's;
    /// `run_ended`: a failure's (`manual`, `exit_status`, `too_fast`), null for a
    /// success.
    #[serde(default)]
    pub reason: Option<EventReason>,
    /// `created`, `updated`: the configuration (as on the Monitor).
    #[serde(default)]
    #[schema(nullable = false)]
    pub name: Option<String>,
    /// `created`, `updated`: null with a schedule.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 31_536_000)]
    pub timeout_seconds: Option<u32>,
    /// `created`, `updated`: null with a schedule.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 31_536_000)]
    pub interval_seconds: Option<u32>,
    /// `created`, `updated`: channel ids.
    #[serde(default)]
    #[schema(value_type = Option<Vec<uuid::Uuid>>, nullable = false)]
    pub channels: Option<Vec<String>>,
    #[serde(default)]
    #[schema(nullable = false)]
    pub tags: Option<Vec<String>>,
    /// `created`, `updated`: every label.
    #[serde(default)]
    #[schema(nullable = false)]
    pub labels: Option<std::collections::BTreeMap<String, String>>,
    /// `created`, `updated`.
    #[serde(default)]
    #[schema(nullable = false)]
    pub severity: Option<Severity>,
    /// `created`, `updated`: the monitors file's key, or null.
    #[serde(default)]
    pub key: Option<String>,
    /// `created`, `updated`: the slug, or null.
    #[serde(default)]
    pub slug: Option<String>,
    /// `created`, `updated`: the cron pattern, or null.
    #[serde(default)]
    pub schedule: Option<String>,
    /// `created`, `updated`: the schedule's zone, or null.
    #[serde(default)]
    pub timezone: Option<String>,
    /// `created`, `updated`: null without a schedule.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 31_536_000)]
    pub grace_seconds: Option<u32>,
    #[serde(default)]
    #[schema(minimum = 1, maximum = 31_536_000)]
    pub max_runtime_seconds: Option<u32>,
    #[serde(default)]
    #[schema(minimum = 1, maximum = 31_536_000)]
    pub min_runtime_seconds: Option<u32>,
    #[serde(default)]
    #[schema(nullable = false, minimum = 1, maximum = 1000)]
    pub failure_threshold: Option<u32>,
    #[serde(default)]
    #[schema(nullable = false, minimum = 1, maximum = 1000)]
    pub recovery_threshold: Option<u32>,
    #[serde(default)]
    #[schema(minimum = 1, maximum = 31_536_000)]
    pub realert_every_seconds: Option<u32>,
    #[serde(default)]
    #[schema(nullable = false, max_items = 16)]
    pub maintenance: Option<Vec<MaintenanceWindow>>,
    /// `delivery`: the channel's id.
    #[serde(default)]
    #[schema(value_type = Option<uuid::Uuid>, nullable = false)]
    pub channel: Option<String>,
    /// `delivery`: the `seq` of the alerted event.
    #[serde(default)]
    #[schema(nullable = false)]
    pub alert_seq: Option<u64>,
    /// `delivery`: `success` or `failure`.
    #[serde(default)]
    #[schema(nullable = false)]
    pub result: Option<DeliveryResult>,
    #[serde(default)]
    #[schema(nullable = false)]
    pub attempts: Option<u32>,
    /// `delivery`: why it failed, or null.
    #[serde(default)]
    pub error: Option<String>,
    /// `run_started`, `run_ended`, `log`, `run_overran`: the run id, or null.
    #[serde(default)]
    #[schema(value_type = Option<uuid::Uuid>)]
    pub rid: Option<String>,
    /// `run_started`, `run_ended`, `log`: the output kept, or null.
    #[serde(default)]
    pub output: Option<String>,
    /// `run_started`: the run forgotten to make room, or null.
    #[serde(default)]
    pub dropped_run: Option<DroppedRun>,
    /// `run_ended`: the start of the run it ended, or null if none was open;
    /// `run_overran`: the run's start.
    #[serde(default)]
    #[schema(format = DateTime)]
    pub started_at: Option<String>,
    /// `run_ended`.
    #[serde(default)]
    #[schema(nullable = false)]
    pub outcome: Option<RunOutcome>,
    /// `run_ended`: 0 to 255, or null.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 255)]
    pub exit_status: Option<u8>,
    /// `failure_counted`, `success_counted`: the count so far.
    #[serde(default)]
    #[schema(nullable = false, minimum = 1, maximum = 1000)]
    pub count: Option<u32>,
    /// `alert_suppressed`, `alert_released`.
    #[serde(default)]
    #[schema(nullable = false)]
    pub alert: Option<AlertKind>,
}

/// A delivery's result.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryResult {
    Success,
    Failure,
}

/// `GET /api/monitors/{id}/events`, newest first.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventList {
    pub events: Vec<Event>,
}

/// The time a monitor spent in each state over one window.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UptimeWindow {
    /// The window's length.
    pub seconds: u32,
    /// `up_seconds / (up_seconds + down_seconds)`; null if never up or down in it.
    #[schema(required = true, minimum = 0, maximum = 1)]
    pub ratio: Option<f64>,
    pub up_seconds: f64,
    pub down_seconds: f64,
    pub pending_seconds: f64,
    pub paused_seconds: f64,
}

/// `GET /api/monitors/{id}/uptime`: by window name (`24h`, `7d`, `30d`, or the
/// `window` asked for).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UptimeAnswer {
    pub uptime: std::collections::BTreeMap<String, UptimeWindow>,
}

/// The Incident object: an outage, from a `down` to the next change of state.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Incident {
    /// The `seq` of the `down` event that started it.
    pub seq: u64,
    #[schema(format = DateTime)]
    pub started_at: String,
    #[schema(required = true, format = DateTime)]
    pub ended_at: Option<String>,
    /// The state it ended in (`up` or `paused`); null while it lasts.
    #[schema(required = true)]
    pub ended_by: Option<MonitorStatus>,
    pub duration_seconds: f64,
    /// What put it down.
    #[schema(required = true)]
    pub reason: Option<DownReason>,
}

/// `GET /api/monitors/{id}/incidents`, newest first.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IncidentList {
    pub incidents: Vec<Incident>,
}

/// A channel's kind.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChannelKind {
    Webhook,
    Slack,
    Discord,
    Email,
    Alertmanager,
    Template,
    Teams,
    Telegram,
    PagerDuty,
    Opsgenie,
    Ntfy,
    Gotify,
    Pushover,
    Matrix,
}

/// Which alerts a channel is told about: `down` (and its reminders), `up`, or both.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SendOn {
    Both,
    Down,
    Up,
}

/// A templated webhook's method.
#[derive(Deserialize, ToSchema)]
pub enum HttpMethod {
    #[serde(rename = "POST")]
    Post,
    #[serde(rename = "PUT")]
    Put,
    #[serde(rename = "PATCH")]
    Patch,
    #[serde(rename = "GET")]
    Get,
}

/// Opsgenie's priorities.
#[derive(Deserialize, ToSchema)]
pub enum OpsgeniePriority {
    P1,
    P2,
    P3,
    P4,
    P5,
}

/// A channel's `priority`: Opsgenie's `P1` … `P5`, or the number of ntfy, Gotify or
/// Pushover.
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
pub enum Priority {
    Opsgenie(OpsgeniePriority),
    Number(i64),
}

/// A Telegram chat: its numeric id, as a number or a string, or a channel's
/// `@username`.
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
pub enum ChatId {
    Number(i64),
    /// `-?[0-9]+` or `@[A-Za-z0-9_]{5,32}`.
    Text(String),
}

/// The Channel object. Which fields it has besides `id`, `kind`, `name` and
/// `created_at` depends on its kind; secrets are never shown.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Channel {
    #[schema(format = Uuid)]
    pub id: String,
    pub kind: ChannelKind,
    pub name: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// Present only for a channel declared in a monitors file.
    #[serde(default)]
    #[schema(nullable = false)]
    pub key: Option<String>,
    /// Which alerts the channel is told about.
    pub send_on: SendOn,
    /// Every kind with a `url` (all but `email`, `telegram`, `pagerduty`, `opsgenie`
    /// and `pushover`); null for a read key.
    #[serde(default)]
    pub url: Option<String>,
    /// `webhook`: whether bodies are signed.
    #[serde(default)]
    #[schema(nullable = false)]
    pub has_secret: Option<bool>,
    /// `email`: with any password replaced by `redacted`; null for a read key.
    #[serde(default)]
    pub smtp_url: Option<String>,
    /// `email`.
    #[serde(default)]
    #[schema(nullable = false)]
    pub from: Option<String>,
    /// `email`.
    #[serde(default)]
    #[schema(nullable = false)]
    pub to: Option<Vec<String>>,
    /// `template`.
    #[serde(default)]
    #[schema(nullable = false)]
    pub method: Option<HttpMethod>,
    /// `template`: the names of its headers (their values are never shown).
    #[serde(default)]
    #[schema(nullable = false)]
    pub header_names: Option<Vec<String>>,
    /// `template`: its body template, if it has one.
    #[serde(default)]
    #[schema(nullable = false)]
    pub body: Option<String>,
    /// `telegram`.
    #[serde(default)]
    #[schema(nullable = false)]
    pub has_bot_token: Option<bool>,
    /// `telegram`.
    #[serde(default)]
    #[schema(nullable = false)]
    pub chat_id: Option<String>,
    /// `telegram`, `pagerduty`, `opsgenie`, `pushover`: when not the service's own.
    #[serde(default)]
    #[schema(nullable = false)]
    pub api_url: Option<String>,
    /// `pagerduty`.
    #[serde(default)]
    #[schema(nullable = false)]
    pub has_routing_key: Option<bool>,
    /// `opsgenie`.
    #[serde(default)]
    #[schema(nullable = false)]
    pub has_api_key: Option<bool>,
    /// `opsgenie`, `ntfy`, `gotify`, `pushover`: when set.
    #[serde(default)]
    #[schema(nullable = false)]
    pub priority: Option<Priority>,
    /// `ntfy`: whether it sends an access token.
    #[serde(default)]
    #[schema(nullable = false)]
    pub has_token: Option<bool>,
    /// `gotify`, `pushover`.
    #[serde(default)]
    #[schema(nullable = false)]
    pub has_app_token: Option<bool>,
    /// `pushover`.
    #[serde(default)]
    #[schema(nullable = false)]
    pub has_user_key: Option<bool>,
    /// `matrix`.
    #[serde(default)]
    #[schema(nullable = false)]
    pub has_access_token: Option<bool>,
    /// `matrix`.
    #[serde(default)]
    #[schema(nullable = false)]
    pub room_id: Option<String>,
}

/// `GET /api/channels`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelList {
    pub channels: Vec<Channel>,
}

/// One address or several.
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
pub enum Recipients {
    One(String),
    /// A non-empty array.
    Many(Vec<String>),
}

/// The body of `POST /api/channels`: `kind` and `name`, and the fields of that kind.
/// A field of another kind is a 422.
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
pub enum ChannelFields {
    Webhook(WebhookFields),
    Chat(ChatFields),
    Email(EmailFields),
    Template(TemplateFields),
    Telegram(TelegramFields),
    PagerDuty(PagerDutyFields),
    Opsgenie(OpsgenieFields),
    Ntfy(NtfyFields),
    Gotify(GotifyFields),
    Pushover(PushoverFields),
    Matrix(MatrixFields),
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum WebhookKind {
    Webhook,
}

/// A `webhook` channel: a signed JSON `POST` to `url`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookFields {
    pub kind: WebhookKind,
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]+$"
    )]
    pub name: String,
    /// Which alerts the channel is told about; `both` by default.
    #[serde(default)]
    #[schema(nullable = false)]
    pub send_on: Option<SendOn>,
    /// An absolute `http://` or `https://` URL, at most 2048 bytes.
    #[schema(format = "uri", max_length = 2048)]
    pub url: String,
    /// Signs each body (`docs/alerts.md`).
    #[serde(default)]
    #[schema(min_length = 1, max_length = 2048)]
    pub secret: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChatKind {
    Slack,
    Discord,
    Alertmanager,
    Teams,
}

/// A `slack`, `discord`, `alertmanager` or `teams` channel: its webhook URL (for
/// Teams, a Workflows webhook's), or the Alertmanager's base URL.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChatFields {
    pub kind: ChatKind,
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]+$"
    )]
    pub name: String,
    /// Which alerts the channel is told about; `both` by default.
    #[serde(default)]
    #[schema(nullable = false)]
    pub send_on: Option<SendOn>,
    /// An absolute `http://` or `https://` URL, at most 2048 bytes.
    #[schema(format = "uri", max_length = 2048)]
    pub url: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum EmailKind {
    Email,
}

/// An `email` channel.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailFields {
    pub kind: EmailKind,
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]+$"
    )]
    pub name: String,
    /// Which alerts the channel is told about; `both` by default.
    #[serde(default)]
    #[schema(nullable = false)]
    pub send_on: Option<SendOn>,
    /// `smtp://host:port`, `smtp://user:pass@host:587?tls=required` or
    /// `smtps://user:pass@host`, at most 2048 bytes.
    #[schema(max_length = 2048)]
    pub smtp_url: String,
    /// An address: `pushmon@example.com` or `Pushmon <pushmon@example.com>`.
    pub from: String,
    pub to: Recipients,
}

macro_rules! kind_enum {
    ($name:ident, $variant:ident, $text:literal) => {
        #[derive(Deserialize, ToSchema)]
        pub enum $name {
            #[serde(rename = $text)]
            $variant,
        }
    };
}

kind_enum!(TemplateKind, Template, "template");
kind_enum!(TelegramKind, Telegram, "telegram");
kind_enum!(PagerDutyKind, PagerDuty, "pagerduty");
kind_enum!(OpsgenieKind, Opsgenie, "opsgenie");
kind_enum!(NtfyKind, Ntfy, "ntfy");
kind_enum!(GotifyKind, Gotify, "gotify");
kind_enum!(PushoverKind, Pushover, "pushover");
kind_enum!(MatrixKind, Matrix, "matrix");

/// A `template` channel: `method` (POST by default) to `url` with `headers` and a
/// `body` template whose placeholders are the alert's fields (`docs/alerts.md`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateFields {
    pub kind: TemplateKind,
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]+$"
    )]
    pub name: String,
    /// Which alerts the channel is told about; `both` by default.
    #[serde(default)]
    #[schema(nullable = false)]
    pub send_on: Option<SendOn>,
    #[serde(default)]
    #[schema(nullable = false)]
    pub method: Option<HttpMethod>,
    /// An absolute `http://` or `https://` URL, at most 2048 bytes.
    #[schema(format = "uri", max_length = 2048)]
    pub url: String,
    /// Header names and values (at most 32; not `Host`, `Content-Length`,
    /// `Transfer-Encoding`, `Connection` nor `X-Pushmon-Alert-Id`).
    #[serde(default)]
    #[schema(nullable = false)]
    pub headers: Option<std::collections::BTreeMap<String, String>>,
    /// The body template, at most 16 KiB; none with `GET`.
    #[serde(default)]
    #[schema(nullable = false, max_length = 16384)]
    pub body: Option<String>,
}

/// A `telegram` channel: a bot's token and the chat it writes to.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TelegramFields {
    pub kind: TelegramKind,
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]+$"
    )]
    pub name: String,
    /// Which alerts the channel is told about; `both` by default.
    #[serde(default)]
    #[schema(nullable = false)]
    pub send_on: Option<SendOn>,
    /// As BotFather gives it: `<digits>:<letters, digits, _ and ->`.
    #[schema(pattern = "^[0-9]+:[A-Za-z0-9_-]+$", max_length = 2048)]
    pub bot_token: String,
    pub chat_id: ChatId,
    /// The service's API at another address (a proxy, a self-hosted server, a
    /// region); an absolute `http://` or `https://` URL.
    #[serde(default)]
    #[schema(nullable = false, format = "uri", max_length = 2048)]
    pub api_url: Option<String>,
}

/// A `pagerduty` channel: an Events API v2 integration's routing key.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PagerDutyFields {
    pub kind: PagerDutyKind,
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]+$"
    )]
    pub name: String,
    /// Which alerts the channel is told about; `both` by default.
    #[serde(default)]
    #[schema(nullable = false)]
    pub send_on: Option<SendOn>,
    #[schema(pattern = "^[A-Za-z0-9]{32}$")]
    pub routing_key: String,
    /// The service's API at another address (a proxy, a self-hosted server, a
    /// region); an absolute `http://` or `https://` URL.
    #[serde(default)]
    #[schema(nullable = false, format = "uri", max_length = 2048)]
    pub api_url: Option<String>,
}

/// An `opsgenie` channel: an API integration's key.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpsgenieFields {
    pub kind: OpsgenieKind,
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]+$"
    )]
    pub name: String,
    /// Which alerts the channel is told about; `both` by default.
    #[serde(default)]
    #[schema(nullable = false)]
    pub send_on: Option<SendOn>,
    #[schema(pattern = "^[A-Za-z0-9-]+$", max_length = 2048)]
    pub api_key: String,
    /// The service's API at another address (a proxy, a self-hosted server, a
    /// region); an absolute `http://` or `https://` URL.
    #[serde(default)]
    #[schema(nullable = false, format = "uri", max_length = 2048)]
    pub api_url: Option<String>,
    /// The priority of the alerts it creates; Opsgenie's default (`P3`) if absent.
    #[serde(default)]
    #[schema(nullable = false)]
    pub priority: Option<OpsgeniePriority>,
}

/// An `ntfy` channel: a topic's URL, and an access token if the topic needs one.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NtfyFields {
    pub kind: NtfyKind,
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]+$"
    )]
    pub name: String,
    /// Which alerts the channel is told about; `both` by default.
    #[serde(default)]
    #[schema(nullable = false)]
    pub send_on: Option<SendOn>,
    /// An absolute `http://` or `https://` URL, at most 2048 bytes.
    #[schema(format = "uri", max_length = 2048)]
    pub url: String,
    /// Sent as `Authorization: Bearer <token>`.
    #[serde(default)]
    #[schema(nullable = false, pattern = "^[!-~]+$", max_length = 2048)]
    pub token: Option<String>,
    /// A `down`'s priority, 1 to 5; 4 if absent.
    #[serde(default)]
    #[schema(nullable = false, minimum = 1, maximum = 5)]
    pub priority: Option<i64>,
}

/// A `gotify` channel: the server's URL and an application's token.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GotifyFields {
    pub kind: GotifyKind,
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]+$"
    )]
    pub name: String,
    /// Which alerts the channel is told about; `both` by default.
    #[serde(default)]
    #[schema(nullable = false)]
    pub send_on: Option<SendOn>,
    /// An absolute `http://` or `https://` URL, at most 2048 bytes.
    #[schema(format = "uri", max_length = 2048)]
    pub url: String,
    #[schema(pattern = "^[!-~]+$", max_length = 2048)]
    pub app_token: String,
    /// A `down`'s priority, 0 to 10; 8 if absent.
    #[serde(default)]
    #[schema(nullable = false, minimum = 0, maximum = 10)]
    pub priority: Option<i64>,
}

/// A `pushover` channel: a user's (or group's) key and an application's token.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PushoverFields {
    pub kind: PushoverKind,
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]+$"
    )]
    pub name: String,
    /// Which alerts the channel is told about; `both` by default.
    #[serde(default)]
    #[schema(nullable = false)]
    pub send_on: Option<SendOn>,
    #[schema(pattern = "^[A-Za-z0-9]{30}$")]
    pub user_key: String,
    #[schema(pattern = "^[A-Za-z0-9]{30}$")]
    pub app_token: String,
    /// The service's API at another address (a proxy, a self-hosted server, a
    /// region); an absolute `http://` or `https://` URL.
    #[serde(default)]
    #[schema(nullable = false, format = "uri", max_length = 2048)]
    pub api_url: Option<String>,
    /// A `down`'s priority, -2 to 1; 1 if absent.
    #[serde(default)]
    #[schema(nullable = false, minimum = -2, maximum = 1)]
    pub priority: Option<i64>,
}

/// A `matrix` channel: the homeserver's URL, an access token, and a room's id.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MatrixFields {
    pub kind: MatrixKind,
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]+$"
    )]
    pub name: String,
    /// Which alerts the channel is told about; `both` by default.
    #[serde(default)]
    #[schema(nullable = false)]
    pub send_on: Option<SendOn>,
    /// An absolute `http://` or `https://` URL, at most 2048 bytes.
    #[schema(format = "uri", max_length = 2048)]
    pub url: String,
    #[schema(pattern = "^[!-~]+$", max_length = 2048)]
    pub access_token: String,
    /// `!<opaque>:<server>`.
    #[schema(pattern = "^!.+:.+$", max_length = 2048)]
    pub room_id: String,
}

/// The body of `PATCH /api/channels/{id}`: the fields given replace the channel's,
/// and the result is checked as a creation is; `"secret": null` removes a webhook's
/// secret.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelPatch {
    #[serde(default)]
    #[schema(nullable = false)]
    pub kind: Option<ChannelKind>,
    #[serde(default)]
    #[schema(
        nullable = false,
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]+$"
    )]
    pub name: Option<String>,
    #[serde(default)]
    #[schema(nullable = false, max_length = 2048)]
    pub url: Option<String>,
    #[serde(default)]
    #[schema(max_length = 2048)]
    pub secret: Option<String>,
    #[serde(default)]
    #[schema(nullable = false, max_length = 2048)]
    pub smtp_url: Option<String>,
    #[serde(default)]
    #[schema(nullable = false)]
    pub from: Option<String>,
    #[serde(default)]
    #[schema(nullable = false)]
    pub to: Option<Recipients>,
    #[serde(default)]
    #[schema(nullable = false)]
    pub send_on: Option<SendOn>,
    #[serde(default)]
    #[schema(nullable = false)]
    pub method: Option<HttpMethod>,
    #[serde(default)]
    pub headers: Option<std::collections::BTreeMap<String, String>>,
    #[serde(default)]
    #[schema(max_length = 16384)]
    pub body: Option<String>,
    #[serde(default)]
    #[schema(nullable = false, max_length = 2048)]
    pub bot_token: Option<String>,
    #[serde(default)]
    #[schema(nullable = false)]
    pub chat_id: Option<ChatId>,
    #[serde(default)]
    #[schema(max_length = 2048)]
    pub api_url: Option<String>,
    #[serde(default)]
    #[schema(nullable = false, max_length = 2048)]
    pub routing_key: Option<String>,
    #[serde(default)]
    #[schema(nullable = false, max_length = 2048)]
    pub api_key: Option<String>,
    #[serde(default)]
    pub priority: Option<Priority>,
    #[serde(default)]
    #[schema(max_length = 2048)]
    pub token: Option<String>,
    #[serde(default)]
    #[schema(nullable = false, max_length = 2048)]
    pub app_token: Option<String>,
    #[serde(default)]
    #[schema(nullable = false, max_length = 2048)]
    pub user_key: Option<String>,
    #[serde(default)]
    #[schema(nullable = false, max_length = 2048)]
    pub access_token: Option<String>,
    #[serde(default)]
    #[schema(nullable = false, max_length = 2048)]
    pub room_id: Option<String>,
}

/// The Badge object.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Badge {
    #[schema(format = Uuid)]
    pub id: String,
    /// The secret in its URLs.
    pub key: String,
    /// The monitor it shows, or null.
    #[schema(required = true, value_type = Option<uuid::Uuid>)]
    pub monitor: Option<String>,
    /// Or the tag whose monitors it shows.
    #[schema(required = true)]
    pub tag: Option<String>,
    /// Its own label, if set.
    #[schema(required = true)]
    pub label: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    pub svg_url: String,
    pub json_url: String,
}

/// `GET /api/badges`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BadgeList {
    pub badges: Vec<Badge>,
}

/// The body of `POST /api/badges`: `monitor` or `tag`, not both.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BadgeFields {
    /// An existing monitor's id.
    #[serde(default)]
    #[schema(value_type = Option<uuid::Uuid>)]
    pub monitor: Option<String>,
    /// A tag, 1 to 64 characters.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 64)]
    pub tag: Option<String>,
    /// The left-hand text, 1 to 100 characters.
    #[serde(default)]
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]+$"
    )]
    pub label: Option<String>,
}

/// The StatusPage object.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusPage {
    #[schema(format = Uuid)]
    pub id: String,
    pub slug: String,
    pub title: String,
    #[schema(value_type = Vec<uuid::Uuid>)]
    pub monitors: Vec<String>,
    pub tags: Vec<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// `<public URL>/status/<slug>`.
    pub url: String,
}

/// `GET /api/status-pages`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusPageList {
    pub status_pages: Vec<StatusPage>,
}

/// The body of `POST /api/status-pages`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusPageFields {
    /// 1 to 64 of `a-z`, `0-9` and `-`, not starting or ending with `-`; unique.
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = "^[a-z0-9]([a-z0-9-]*[a-z0-9])?$"
    )]
    pub slug: String,
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]+$"
    )]
    pub title: String,
    /// Existing monitors' ids, at most 1000.
    #[serde(default)]
    #[schema(value_type = Option<Vec<uuid::Uuid>>, max_items = 1000)]
    pub monitors: Option<Vec<String>>,
    #[serde(default)]
    #[schema(schema_with = nullable_tags)]
    pub tags: Option<Vec<String>>,
}

/// The body of `PATCH /api/status-pages/{id}`: only the fields given change.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusPagePatch {
    #[serde(default)]
    #[schema(
        nullable = false,
        min_length = 1,
        max_length = 64,
        pattern = "^[a-z0-9]([a-z0-9-]*[a-z0-9])?$"
    )]
    pub slug: Option<String>,
    #[serde(default)]
    #[schema(
        nullable = false,
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]+$"
    )]
    pub title: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<Vec<uuid::Uuid>>, max_items = 1000)]
    pub monitors: Option<Vec<String>>,
    #[serde(default)]
    #[schema(schema_with = nullable_tags)]
    pub tags: Option<Vec<String>>,
}

/// An API key's scope.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Read,
    Write,
}

/// The ApiKey object, without its secret.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKey {
    #[schema(format = Uuid)]
    pub id: String,
    pub name: String,
    pub scope: Scope,
    #[schema(format = DateTime)]
    pub created_at: String,
}

/// `GET /api/keys`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyList {
    pub keys: Vec<ApiKey>,
}

/// The answer to `POST /api/keys`: the ApiKey with its secret, shown this once.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApiKey {
    #[schema(format = Uuid)]
    pub id: String,
    pub name: String,
    pub scope: Scope,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// The secret: `pmk_` and 43 URL-safe base64 characters.
    #[schema(pattern = "^pmk_[A-Za-z0-9_-]{43}$")]
    pub key: String,
}

/// The body of `POST /api/keys`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyFields {
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]+$"
    )]
    pub name: String,
    /// Defaults to `read`.
    #[serde(default)]
    pub scope: Option<Scope>,
}

/// A push's JSON body: any of `status`, `msg`, `value`, and a job's `kind`, `exit`
/// and `rid` (`docs/push.md`, "Runs and exit statuses"); null counts as absent,
/// other fields are ignored. The same parameters may come in the query string, or as
/// a form ([`PushForm`]).
#[derive(Deserialize, ToSchema)]
pub struct PushBody {
    /// `up` (the default) or `down`.
    #[serde(default)]
    #[schema(value_type = Option<PushStatus>)]
    pub status: Option<String>,
    /// Cut to 1024 bytes at a character boundary.
    #[serde(default)]
    pub msg: Option<String>,
    /// A finite number, or a string holding one.
    #[serde(default)]
    #[schema(value_type = Option<f64>)]
    pub value: Option<f64>,
    /// Makes the push a job's signal.
    #[serde(default)]
    pub kind: Option<SignalKind>,
    /// A run's exit status (a number, or a string holding one): 0 a success, 1 to 255
    /// a failure.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 255)]
    pub exit: Option<u8>,
    /// The run id, any UUID.
    #[serde(default)]
    #[schema(value_type = Option<uuid::Uuid>)]
    pub rid: Option<String>,
}

/// A push's parameters as a form (`application/x-www-form-urlencoded` or
/// `multipart/form-data`); other fields are ignored.
#[derive(Deserialize, ToSchema)]
pub struct PushForm {
    /// `up` (the default) or `down`.
    #[serde(default)]
    #[schema(nullable = false)]
    pub status: Option<PushStatus>,
    /// Cut to 1024 bytes at a character boundary.
    #[serde(default)]
    #[schema(nullable = false)]
    pub msg: Option<String>,
    /// A finite number.
    #[serde(default)]
    #[schema(nullable = false)]
    pub value: Option<f64>,
    /// Uptime Kuma's round-trip time: a finite number, kept as the value when no
    /// `value` is given; empty is no value.
    #[serde(default)]
    #[schema(nullable = false)]
    pub ping: Option<String>,
    /// Makes the push a job's signal.
    #[serde(default)]
    #[schema(nullable = false)]
    pub kind: Option<SignalKind>,
    /// A run's exit status: 0 a success, 1 to 255 a failure.
    #[serde(default)]
    #[schema(nullable = false, minimum = 0, maximum = 255)]
    pub exit: Option<u8>,
    /// The run id, any UUID.
    #[serde(default)]
    #[schema(nullable = false, value_type = Option<uuid::Uuid>)]
    pub rid: Option<String>,
}

/// A job's signal on the push URL: `start` a run began, `success` and `fail` it
/// ended, `log` output to keep.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SignalKind {
    Start,
    Success,
    Fail,
    Log,
}

/// A push's status.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PushStatus {
    Up,
    Down,
}

/// A badge as shields.io endpoint JSON.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShieldsBadge {
    #[serde(rename = "schemaVersion")]
    #[schema(minimum = 1, maximum = 1)]
    pub schema_version: u8,
    pub label: String,
    pub message: String,
    pub color: String,
}

/// The Settings object (`docs/api.md`, "The ping key and the settings").
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The installation's ping key: 22 URL-safe base64 characters.
    #[schema(pattern = "^[A-Za-z0-9_-]{22}$")]
    pub ping_key: String,
    /// `<public URL>/ping/<ping_key>`: a slug URL is this, `/` and the slug.
    pub ping_url_prefix: String,
    /// `--ping-body-limit`: the bytes of a ping's body kept.
    #[schema(minimum = 0, maximum = 65_536)]
    pub ping_body_limit: u32,
    /// `--ping-auto-create`.
    pub ping_auto_create: bool,
}

/// `/healthz` (`ok`) and `/readyz` (`ready`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Health {
    pub status: String,
}

/// The operations: items for `#[openapi(paths(…))]`, one per route and method. The
/// handlers are in `api`, `channels`, `history`, `publications`, `api_keys`,
/// `ingress`, `ops` and `web::public`.
#[allow(dead_code)] // Only their `#[utoipa::path]` items are used.
mod paths {
    use super::*;

    /// Record a heartbeat (GET)
    ///
    /// The token alone authenticates the push. Parameters are checked before the
    /// token: a malformed push is 400 whatever its token.
    #[utoipa::path(
        get, path = "/api/push/{token}", tag = "push", operation_id = "push_get",
        params(
            ("token" = String, Path, description = "The monitor's push token"),
            ("status" = Option<PushStatus>, Query, description = "`up` (default) or `down`"),
            ("msg" = Option<String>, Query, description = "A message, cut to 1024 bytes"),
            ("value" = Option<f64>, Query, description = "A finite number"),
            ("ping" = Option<String>, Query, description = "Uptime Kuma's round-trip time: \
                a finite number, kept as the value when no `value` is given; empty is no value"),
            ("kind" = Option<SignalKind>, Query, description = "Makes the push a job's signal \
                (`docs/push.md`, \"Runs and exit statuses\")"),
            ("exit" = Option<u8>, Query, minimum = 0, maximum = 255,
                description = "A run's exit status: 0 a success, 1 to 255 a failure"),
            ("rid" = Option<uuid::Uuid>, Query, description = "The run id, any UUID"),
        ),
        responses(
            (status = 200, description = "Recorded and durable", body = Accepted),
            (status = 400, description = "A malformed parameter or body", body = ErrorBody),
            (status = 404, description = "Unknown push token", body = ErrorBody),
            (status = 413, description = "The body is larger than 64 KiB", body = ErrorBody),
            (status = 429, description = "Over the per-token limit, or the source address \
                has used up its budget of unknown tokens", body = ErrorBody,
                headers(("Retry-After" = u32, description = "Seconds to wait"))),
            (status = 500, description = "A stored record could not be read", body = ErrorBody),
            (status = 503, description = "Starting, shutting down, the store cannot write, or \
                the monitor's worker is restarting; nothing was recorded", body = ErrorBody),
        )
    )]
    fn push_get() {}

    /// Record a heartbeat (POST)
    ///
    /// Parameters from the query string and the body; the body's win. A body that
    /// starts with `{` is read as JSON whatever its type.
    #[utoipa::path(
        post, path = "/api/push/{token}", tag = "push", operation_id = "push_post",
        params(
            ("token" = String, Path, description = "The monitor's push token"),
            ("status" = Option<PushStatus>, Query, description = "`up` (default) or `down`"),
            ("msg" = Option<String>, Query, description = "A message, cut to 1024 bytes"),
            ("value" = Option<f64>, Query, description = "A finite number"),
            ("ping" = Option<String>, Query, description = "Uptime Kuma's round-trip time: \
                a finite number, kept as the value when no `value` is given; empty is no value"),
            ("kind" = Option<SignalKind>, Query, description = "Makes the push a job's signal \
                (`docs/push.md`, \"Runs and exit statuses\")"),
            ("exit" = Option<u8>, Query, minimum = 0, maximum = 255,
                description = "A run's exit status: 0 a success, 1 to 255 a failure"),
            ("rid" = Option<uuid::Uuid>, Query, description = "The run id, any UUID"),
        ),
        request_body(
            description = "Optional: the parameters as JSON or a form. A body of any \
                other type is no parameters: a job's signal keeps it as the run's output, \
                a heartbeat ignores it, and one that is nothing but push parameters in form \
                encoding is a 400",
            content(
                (PushBody = "application/json"),
                (PushForm = "application/x-www-form-urlencoded"),
                (PushForm = "multipart/form-data"),
                (String = "text/plain"),
            )
        ),
        responses(
            (status = 200, description = "Recorded and durable", body = Accepted),
            (status = 400, description = "A malformed parameter or body", body = ErrorBody),
            (status = 404, description = "Unknown push token", body = ErrorBody),
            (status = 413, description = "The body is larger than 64 KiB", body = ErrorBody),
            (status = 429, description = "Over the per-token limit, or the source address \
                has used up its budget of unknown tokens", body = ErrorBody,
                headers(("Retry-After" = u32, description = "Seconds to wait"))),
            (status = 500, description = "A stored record could not be read", body = ErrorBody),
            (status = 503, description = "Starting, shutting down, the store cannot write, or \
                the monitor's worker is restarting; nothing was recorded", body = ErrorBody),
        )
    )]
    fn push_post() {}

    /// Ping: a success
    ///
    /// The Healthchecks-compatible ping URL (`docs/api.md`, "Ping URLs"): the run that
    /// is open (the one named by `rid`, else the newest) ends as a success. GET, HEAD
    /// and POST alike; a POST's body, whatever its type, is the run's output (its first
    /// `Ping-Body-Limit` bytes). Checked before the token is looked up.
    #[utoipa::path(
        get, path = "/ping/{token}", tag = "push", operation_id = "ping_get",
        params(
            ("token" = String, Path, description = "The monitor's push token"),
            ("rid" = Option<uuid::Uuid>, Query, description = "The run id, any UUID"),
        ),
        responses(
            (status = 200, description = "Recorded and durable", body = Accepted),
            (status = 400, description = "A bad action, exit status, slug or `rid`", body = ErrorBody),
            (status = 404, description = "Unknown push token, or no monitor has this ping key and \
                slug (or `?create=1` without `--ping-auto-create`)", body = ErrorBody),
            (status = 413, description = "The body is larger than 64 KiB", body = ErrorBody),
            (status = 429, description = "Over the per-token limit, or the source address \
                has used up its budget of unknown tokens", body = ErrorBody,
                headers(("Retry-After" = u32, description = "Seconds to wait"))),
            (status = 500, description = "A stored record could not be read", body = ErrorBody),
            (status = 503, description = "Starting, shutting down, the store cannot write, the \
                monitor's worker is restarting, or a monitor `?create=1` makes is on its way; \
                nothing was recorded", body = ErrorBody),
        )
    )]
    fn ping_get() {}

    /// Ping: an action, or a slug URL
    ///
    /// `/ping/{token}/start`, `/fail`, `/log` or `/{0-255}` (an exit status: 0 a
    /// success, 1 to 255 a failure; any other number is a 400); or, when `{token}`
    /// has a ping key's shape and `{action}` is neither an action nor a number,
    /// `/ping/{ping_key}/{slug}`: a success of the monitor with that slug. GET, HEAD and POST alike; a POST's body is the run's
    /// output.
    #[utoipa::path(
        get, path = "/ping/{token}/{action}", tag = "push", operation_id = "ping_action_get",
        params(
            ("token" = String, Path, description = "The monitor's push token, or the ping key"),
            ("action" = String, Path, min_length = 1, description = "`start`, `fail`, `log` or \
                an exit status from 0 to 255; after a ping key, a slug that is not a number"),
            ("rid" = Option<uuid::Uuid>, Query, description = "The run id, any UUID"),
            ("create" = Option<String>, Query, description = "`1` on a slug URL: create the \
                monitor of an unknown slug (with `--ping-auto-create`)"),
        ),
        responses(
            (status = 200, description = "Recorded and durable", body = Accepted),
            (status = 400, description = "A bad action, exit status, slug or `rid`", body = ErrorBody),
            (status = 404, description = "Unknown push token, or no monitor has this ping key and \
                slug (or `?create=1` without `--ping-auto-create`)", body = ErrorBody),
            (status = 413, description = "The body is larger than 64 KiB", body = ErrorBody),
            (status = 429, description = "Over the per-token limit, or the source address \
                has used up its budget of unknown tokens", body = ErrorBody,
                headers(("Retry-After" = u32, description = "Seconds to wait"))),
            (status = 500, description = "A stored record could not be read", body = ErrorBody),
            (status = 503, description = "Starting, shutting down, the store cannot write, the \
                monitor's worker is restarting, or a monitor `?create=1` makes is on its way; \
                nothing was recorded", body = ErrorBody),
        )
    )]
    fn ping_action_get() {}

    /// Ping a monitor by slug: an action
    ///
    /// `/ping/{ping_key}/{slug}/start`, `/fail`, `/log` or `/{0-255}`, for the
    /// monitor with that slug. GET, HEAD and POST alike; a POST's body is the run's
    /// output.
    #[utoipa::path(
        get, path = "/ping/{ping_key}/{slug}/{action}", tag = "push",
        operation_id = "ping_slug_get",
        params(
            ("ping_key" = String, Path, pattern = "^[A-Za-z0-9_-]{22}$",
                description = "The installation's ping key (`GET /api/settings`)"),
            ("slug" = String, Path, min_length = 1, max_length = 100, pattern = "^[a-z0-9-]+$",
                description = "The monitor's slug"),
            ("action" = String, Path,
                pattern = "^(start|fail|log|0*([0-9]|[1-9][0-9]|1[0-9][0-9]|2[0-4][0-9]|25[0-5]))$",
                description = "`start`, `fail`, `log` or an exit status from 0 to 255"),
            ("rid" = Option<uuid::Uuid>, Query, description = "The run id, any UUID"),
            ("create" = Option<String>, Query, description = "`1`: create the monitor of an \
                unknown slug (with `--ping-auto-create`)"),
        ),
        responses(
            (status = 200, description = "Recorded and durable", body = Accepted),
            (status = 400, description = "A bad action, exit status, slug or `rid`", body = ErrorBody),
            (status = 404, description = "Unknown push token, or no monitor has this ping key and \
                slug (or `?create=1` without `--ping-auto-create`)", body = ErrorBody),
            (status = 413, description = "The body is larger than 64 KiB", body = ErrorBody),
            (status = 429, description = "Over the per-token limit, or the source address \
                has used up its budget of unknown tokens", body = ErrorBody,
                headers(("Retry-After" = u32, description = "Seconds to wait"))),
            (status = 500, description = "A stored record could not be read", body = ErrorBody),
            (status = 503, description = "Starting, shutting down, the store cannot write, the \
                monitor's worker is restarting, or a monitor `?create=1` makes is on its way; \
                nothing was recorded", body = ErrorBody),
        )
    )]
    fn ping_slug_get() {}

    /// The installation's settings
    ///
    /// Sent with `Cache-Control: no-store`: it holds the ping key.
    #[utoipa::path(
        get, path = "/api/settings", tag = "settings",
        security(("bearer" = ["admin"])),
        responses((status = 200, description = "The settings", body = Settings,
            headers(("Cache-Control" = String, description = "`no-store`"))))
    )]
    fn get_settings() {}

    /// Replace the ping key
    ///
    /// Once the new key is on disk, every slug URL with the old one answers 404.
    /// Sent with `Cache-Control: no-store`.
    #[utoipa::path(
        post, path = "/api/settings/ping-key/rotate", tag = "settings",
        security(("bearer" = ["admin"])),
        responses((status = 200, description = "The settings with the new ping key",
            body = Settings, headers(("Cache-Control" = String, description = "`no-store`"))))
    )]
    fn rotate_ping_key() {}

    /// List and find monitors, oldest first
    ///
    /// Every filter given must hold. Without `limit` and `cursor`, every monitor that
    /// passes them, in one page.
    #[utoipa::path(
        get, path = "/api/monitors", tag = "monitors",
        security(("bearer" = ["read"])),
        params(
            ("selector" = Option<String>, Query, max_length = 4096,
                description = "A label selector: `k=v`, `k==v`, `k!=v`, `k in (a,b)`, \
                `k notin (a,b)`, `k`, `!k`, joined by commas (all must hold); may repeat"),
            ("status" = Option<String>, Query,
                description = "States, separated by commas (`pending`, `up`, `down`, \
                `paused`); may repeat: any of them"),
            ("q" = Option<String>, Query,
                description = "Text the name contains, whatever its case"),
            ("tag" = Option<String>, Query,
                description = "A tag the monitor has; may repeat: all of them"),
            ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000,
                description = "The most monitors in the page (100 with a `cursor`; \
                all without either)"),
            ("cursor" = Option<String>, Query,
                description = "A `next_cursor` of an earlier page: the page after it"),
        ),
        responses(
            (status = 200, description = "A page of monitors", body = MonitorList),
            (status = 400, description = "A malformed parameter", body = ErrorBody),
        )
    )]
    fn list_monitors() {}

    /// Create a monitor
    #[utoipa::path(
        post, path = "/api/monitors", tag = "monitors",
        security(("bearer" = ["write"])),
        request_body = MonitorFields,
        responses((status = 201, description = "The new monitor, pending", body = Monitor))
    )]
    fn create_monitor() {}

    /// Get a monitor
    #[utoipa::path(
        get, path = "/api/monitors/{id}", tag = "monitors",
        security(("bearer" = ["read"])),
        params(("id" = uuid::Uuid, Path, description = "The monitor's id")),
        responses((status = 200, description = "The monitor", body = Monitor))
    )]
    fn get_monitor() {}

    /// Change a monitor
    #[utoipa::path(
        patch, path = "/api/monitors/{id}", tag = "monitors",
        security(("bearer" = ["write"])),
        params(("id" = uuid::Uuid, Path, description = "The monitor's id")),
        request_body = MonitorPatch,
        responses((status = 200, description = "The monitor after the change", body = Monitor))
    )]
    fn update_monitor() {}

    /// Delete a monitor
    #[utoipa::path(
        delete, path = "/api/monitors/{id}", tag = "monitors",
        security(("bearer" = ["write"])),
        params(("id" = uuid::Uuid, Path, description = "The monitor's id")),
        responses((status = 204, description = "Deleted"))
    )]
    fn delete_monitor() {}

    /// Give a monitor a new push token
    #[utoipa::path(
        post, path = "/api/monitors/{id}/rotate-token", tag = "monitors",
        security(("bearer" = ["write"])),
        params(("id" = uuid::Uuid, Path, description = "The monitor's id")),
        responses((status = 200, description = "The monitor with its new token", body = Monitor))
    )]
    fn rotate_token() {}

    /// Pause a monitor
    #[utoipa::path(
        post, path = "/api/monitors/{id}/pause", tag = "monitors",
        security(("bearer" = ["write"])),
        params(("id" = uuid::Uuid, Path, description = "The monitor's id")),
        responses((status = 200, description = "The monitor", body = Monitor))
    )]
    fn pause_monitor() {}

    /// Resume a monitor
    #[utoipa::path(
        post, path = "/api/monitors/{id}/resume", tag = "monitors",
        security(("bearer" = ["write"])),
        params(("id" = uuid::Uuid, Path, description = "The monitor's id")),
        responses((status = 200, description = "The monitor", body = Monitor))
    )]
    fn resume_monitor() {}

    /// A monitor's events, newest first
    #[utoipa::path(
        get, path = "/api/monitors/{id}/events", tag = "monitors",
        security(("bearer" = ["read"])),
        params(
            ("id" = uuid::Uuid, Path, description = "The monitor's id"),
            ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000,
                description = "The most events to return (default 100)"),
            ("before" = Option<u64>, Query, format = "uint64",
                description = "Only events whose seq is lower"),
        ),
        responses(
            (status = 200, description = "Events", body = EventList),
            (status = 400, description = "A malformed parameter or body", body = ErrorBody),
        )
    )]
    fn monitor_events() {}

    /// A monitor's uptime over windows
    #[utoipa::path(
        get, path = "/api/monitors/{id}/uptime", tag = "monitors",
        security(("bearer" = ["read"])),
        params(
            ("id" = uuid::Uuid, Path, description = "The monitor's id"),
            ("window" = Option<String>, Query, min_length = 1,
                description = "A duration from 1s to 366d (`12h`, `7d`, `1h 30m`); \
                    without it: 24h, 7d and 30d"),
        ),
        responses(
            (status = 200, description = "Uptime by window", body = UptimeAnswer),
            (status = 400, description = "A malformed parameter or body", body = ErrorBody),
        )
    )]
    fn monitor_uptime() {}

    /// A monitor's incidents, newest first
    #[utoipa::path(
        get, path = "/api/monitors/{id}/incidents", tag = "monitors",
        security(("bearer" = ["read"])),
        params(
            ("id" = uuid::Uuid, Path, description = "The monitor's id"),
            ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000,
                description = "The most incidents to return (default 20)"),
            ("before" = Option<u64>, Query, format = "uint64",
                description = "Only incidents whose seq is lower"),
        ),
        responses(
            (status = 200, description = "Incidents", body = IncidentList),
            (status = 400, description = "A malformed parameter or body", body = ErrorBody),
        )
    )]
    fn monitor_incidents() {}

    /// List channels, oldest first
    #[utoipa::path(
        get, path = "/api/channels", tag = "channels",
        security(("bearer" = ["read"])),
        responses((status = 200, description = "Every channel", body = ChannelList))
    )]
    fn list_channels() {}

    /// Create a channel
    #[utoipa::path(
        post, path = "/api/channels", tag = "channels",
        security(("bearer" = ["write"])),
        request_body = ChannelFields,
        responses((status = 201, description = "The new channel", body = Channel))
    )]
    fn create_channel() {}

    /// Get a channel
    #[utoipa::path(
        get, path = "/api/channels/{id}", tag = "channels",
        security(("bearer" = ["read"])),
        params(("id" = uuid::Uuid, Path, description = "The channel's id")),
        responses((status = 200, description = "The channel", body = Channel))
    )]
    fn get_channel() {}

    /// Change a channel
    #[utoipa::path(
        patch, path = "/api/channels/{id}", tag = "channels",
        security(("bearer" = ["write"])),
        params(("id" = uuid::Uuid, Path, description = "The channel's id")),
        request_body = ChannelPatch,
        responses((status = 200, description = "The channel after the change", body = Channel))
    )]
    fn update_channel() {}

    /// Delete a channel, and take it off every monitor
    #[utoipa::path(
        delete, path = "/api/channels/{id}", tag = "channels",
        security(("bearer" = ["write"])),
        params(("id" = uuid::Uuid, Path, description = "The channel's id")),
        responses((status = 204, description = "Deleted"))
    )]
    fn delete_channel() {}

    /// Send a test message through a channel
    #[utoipa::path(
        post, path = "/api/channels/{id}/test", tag = "channels",
        security(("bearer" = ["write"])),
        params(("id" = uuid::Uuid, Path, description = "The channel's id")),
        responses(
            (status = 200, description = "Delivered", body = Accepted),
            (status = 502, description = "Not delivered", body = ErrorBody),
        )
    )]
    fn test_channel() {}

    /// List badges, oldest first
    #[utoipa::path(
        get, path = "/api/badges", tag = "publications",
        security(("bearer" = ["read"])),
        responses((status = 200, description = "Every badge", body = BadgeList))
    )]
    fn list_badges() {}

    /// Create a badge
    #[utoipa::path(
        post, path = "/api/badges", tag = "publications",
        security(("bearer" = ["write"])),
        request_body = BadgeFields,
        responses((status = 201, description = "The new badge", body = Badge))
    )]
    fn create_badge() {}

    /// Get a badge
    #[utoipa::path(
        get, path = "/api/badges/{id}", tag = "publications",
        security(("bearer" = ["read"])),
        params(("id" = uuid::Uuid, Path, description = "The badge's id")),
        responses((status = 200, description = "The badge", body = Badge))
    )]
    fn get_badge() {}

    /// Delete a badge
    #[utoipa::path(
        delete, path = "/api/badges/{id}", tag = "publications",
        security(("bearer" = ["write"])),
        params(("id" = uuid::Uuid, Path, description = "The badge's id")),
        responses((status = 204, description = "Deleted"))
    )]
    fn delete_badge() {}

    /// List status pages, oldest first
    #[utoipa::path(
        get, path = "/api/status-pages", tag = "publications",
        security(("bearer" = ["read"])),
        responses((status = 200, description = "Every status page", body = StatusPageList))
    )]
    fn list_status_pages() {}

    /// Create a status page
    #[utoipa::path(
        post, path = "/api/status-pages", tag = "publications",
        security(("bearer" = ["write"])),
        request_body = StatusPageFields,
        responses((status = 201, description = "The new status page", body = StatusPage))
    )]
    fn create_status_page() {}

    /// Get a status page
    #[utoipa::path(
        get, path = "/api/status-pages/{id}", tag = "publications",
        security(("bearer" = ["read"])),
        params(("id" = uuid::Uuid, Path, description = "The status page's id")),
        responses((status = 200, description = "The status page", body = StatusPage))
    )]
    fn get_status_page() {}

    /// Change a status page
    #[utoipa::path(
        patch, path = "/api/status-pages/{id}", tag = "publications",
        security(("bearer" = ["write"])),
        params(("id" = uuid::Uuid, Path, description = "The status page's id")),
        request_body = StatusPagePatch,
        responses((status = 200, description = "The status page after the change", body = StatusPage))
    )]
    fn update_status_page() {}

    /// Delete a status page
    #[utoipa::path(
        delete, path = "/api/status-pages/{id}", tag = "publications",
        security(("bearer" = ["write"])),
        params(("id" = uuid::Uuid, Path, description = "The status page's id")),
        responses((status = 204, description = "Deleted"))
    )]
    fn delete_status_page() {}

    /// List API keys, oldest first, without secrets
    #[utoipa::path(
        get, path = "/api/keys", tag = "keys",
        security(("bearer" = ["admin"])),
        responses((status = 200, description = "Every key", body = ApiKeyList))
    )]
    fn list_keys() {}

    /// Create an API key
    ///
    /// The answer, sent with `Cache-Control: no-store`, is the only place the secret
    /// is ever shown.
    #[utoipa::path(
        post, path = "/api/keys", tag = "keys",
        security(("bearer" = ["admin"])),
        request_body = ApiKeyFields,
        responses((status = 201, description = "The new key with its secret", body = NewApiKey))
    )]
    fn create_key() {}

    /// Revoke an API key
    #[utoipa::path(
        delete, path = "/api/keys/{id}", tag = "keys",
        security(("bearer" = ["admin"])),
        params(("id" = uuid::Uuid, Path, description = "The key's id")),
        responses((status = 204, description = "Revoked"))
    )]
    fn revoke_key() {}

    /// Export every monitor and channel as a monitors file
    ///
    /// YAML in the format of `--monitors-file` (`docs/monitors-file.md`); loaded into
    /// an empty server it makes the same monitors and channels (`docs/api.md`,
    /// "Export"). Without `secrets=true` it holds no push token and no channel URL or
    /// secret: each of those is named by an environment variable the file's first lines
    /// list.
    #[utoipa::path(
        get, path = "/api/export", tag = "export",
        security(("bearer" = ["read"])),
        params(("secrets" = Option<bool>, Query,
            description = "Include push tokens and channel credentials: the admin token \
                only (`403` for a key). Default `false`")),
        responses(
            (status = 200, description = "The monitors file, as an attachment",
                content_type = "application/yaml", body = serde_json::Value,
                headers(
                    ("Content-Disposition" = String,
                        description = "`attachment; filename=\"pushmon-monitors.yaml\"`"),
                    ("Cache-Control" = String, description = "`no-store`"),
                )),
            (status = 400, description = "`secrets` is neither `true` nor `false`, or the \
                query string is malformed", body = ErrorBody),
        )
    )]
    fn export() {}

    /// This document
    ///
    /// No authentication: it holds no secret.
    #[utoipa::path(
        get, path = "/api/openapi.json", tag = "operations",
        responses((status = 200, description = "The OpenAPI document",
            content_type = "application/json", body = serde_json::Value))
    )]
    fn openapi_document() {}

    /// A badge as shields.io endpoint JSON
    ///
    /// Public: the key is the badge's own secret, not a push token.
    #[utoipa::path(
        get, path = "/badge/{key}.json", tag = "publications",
        params(
            ("key" = String, Path, description = "The badge's key"),
            ("uptime" = Option<String>, Query, min_length = 1,
                description = "Show the uptime over this window (`24h`, `7d` …) instead of \
                    the state"),
            ("If-None-Match" = Option<String>, Header, description = "An ETag answered before"),
        ),
        responses(
            (status = 200, description = "The badge", body = ShieldsBadge,
                headers(("ETag" = String))),
            (status = 304, description = "Not modified since the ETag"),
            (status = 400, description = "A malformed parameter or body", body = ErrorBody),
            (status = 404, description = "No such badge, or its monitor was deleted",
                body = ErrorBody),
            (status = 503, description = "The store cannot be read", body = ErrorBody),
        )
    )]
    fn badge_json() {}

    /// Liveness
    #[utoipa::path(
        get, path = "/healthz", tag = "operations",
        responses((status = 200, description = "The process answers", body = Health,
            example = json!({"status": "ok"})))
    )]
    fn healthz() {}

    /// Readiness
    #[utoipa::path(
        get, path = "/readyz", tag = "operations",
        responses(
            (status = 200, description = "Ready", body = Health,
                example = json!({"status": "ready"})),
            (status = 503, description = "Starting, draining, or the store cannot write",
                body = ErrorBody),
        )
    )]
    fn readyz() {}

    /// Prometheus metrics
    #[utoipa::path(
        get, path = "/metrics", tag = "operations",
        responses((status = 200, description = "The Prometheus text format (docs/metrics.md)",
            content_type = "text/plain", body = String))
    )]
    fn metrics() {}
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Event schema has one branch per kind `EventKind` names, and every field
    /// `Event` declares belongs to some kind: a kind or field added to one and not the
    /// other would leave the document describing events the server does not send, or
    /// refusing ones it does.
    #[test]
    fn every_event_kind_and_field_is_in_a_branch_of_the_event_schema() {
        let document: serde_json::Value =
            serde_json::from_str(document()).expect("the document is JSON");
        let schemas = &document["components"]["schemas"];
        let kinds: Vec<&str> = schemas["EventKind"]["enum"]
            .as_array()
            .expect("EventKind's values")
            .iter()
            .filter_map(serde_json::Value::as_str)
            .collect();
        let branches: Vec<&str> = schemas["Event"]["oneOf"]
            .as_array()
            .expect("Event's branches")
            .iter()
            .filter_map(|branch| branch["properties"]["kind"]["enum"][0].as_str())
            .collect();
        assert_eq!(branches, kinds);
        let used: std::collections::BTreeSet<String> = EVENT_KINDS
            .iter()
            .flat_map(|(_, fields, _)| fields.iter().copied())
            .chain(["seq", "at", "kind"])
            .map(str::to_owned)
            .collect();
        let flat = serde_json::to_value(<Event as utoipa::PartialSchema>::schema())
            .expect("Event's schema as JSON");
        let declared: std::collections::BTreeSet<String> = flat["properties"]
            .as_object()
            .expect("Event's properties")
            .keys()
            .cloned()
            .collect();
        assert_eq!(used, declared);
    }
}
