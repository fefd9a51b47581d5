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

mod channels;
mod events;
mod monitors;
mod objects;

pub use channels::*;
pub use events::*;
pub use monitors::*;
pub use objects::*;

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
        paths::push_bulk,
        paths::list_monitors,
        paths::create_monitor,
        paths::get_monitor,
        paths::update_monitor,
        paths::delete_monitor,
        paths::rotate_token,
        paths::pause_monitor,
        paths::resume_monitor,
        paths::mute_monitor,
        paths::unmute_monitor,
        paths::mute_selected,
        paths::unmute_selected,
        paths::bulk_change,
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
        paths::get_guard,
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
        MonitorPatch, Event, MuteState, MuteFields, MutedMonitors, HeldBy, InstanceState,
        HeldAlertState,
        BulkAction, BulkFields, BulkMonitor, BulkAnswer,
        EventList, UptimeWindow, UptimeAnswer, Incident, IncidentList, Channel, ChannelList,
        ChannelFields, WebhookFields, ChatFields, EmailFields, ChannelPatch, SendOn, HttpMethod,
        OpsgeniePriority, Priority, ChatId, TemplateFields, TelegramFields, PagerDutyFields,
        OpsgenieFields, NtfyFields, GotifyFields, PushoverFields, MatrixFields, TemplateKind,
        TelegramKind, PagerDutyKind, OpsgenieKind, NtfyKind, GotifyKind, PushoverKind, MatrixKind, Badge, BadgeList, BadgeFields, StatusPage,
        StatusPageList, StatusPageFields, StatusPagePatch, ApiKey, ApiKeyList, NewApiKey,
        ApiKeyFields, PushBody, PushForm, BulkItem, BulkPushAnswer, BulkItemResult, ShieldsBadge, Health, Settings, Guard, GuardState,
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
    "allowed_sources",
    "signed",
    "min_instances",
    "instance_retention_seconds",
    "parents",
    "dependency_grace_seconds",
];

/// Each event kind with the fields it always has besides `seq`, `at` and `kind`
/// (`api::event_json`), and those of them that are never null in it.
const EVENT_KINDS: &[(&str, &[&str], &[&str])] = &[
    ("created", CONFIG_FIELDS, &[]),
    ("updated", CONFIG_FIELDS, &[]),
    ("token_rotated", &[], &[]),
    ("heartbeat", &["status", "msg", "value", "instance"], &[]),
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
    (
        "alert_suppressed",
        &["alert", "reason", "held_by"],
        &["reason"],
    ),
    ("alert_released", &["alert", "reason"], &["reason"]),
    ("muted", &["until", "until_recovery"], &[]),
    ("unmuted", &["reason"], &["reason"]),
    (
        "alert_held",
        &["alert", "reason", "held_by", "parent"],
        &["reason"],
    ),
    ("instance_forgotten", &["instance"], &["instance"]),
    ("unknown", &["reason", "deadline", "held_by"], &["reason"]),
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

#[allow(dead_code)] // Only their `#[utoipa::path]` items are used.
mod paths;

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
