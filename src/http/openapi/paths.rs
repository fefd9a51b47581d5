//! The operations: items for `#[openapi(paths(…))]`, one per route and method. The
//! handlers are in `api`, `channels`, `history`, `publications`, `api_keys`,
//! `ingress`, `ops` and `web::public`.

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
        ("instance" = Option<String>, Query, min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9._:-]+$",
            description = "The fleet instance it comes from (docs/push.md, \"Fleet instances\")"),
    ),
    responses(
        (status = 200, description = "Recorded and durable", body = Accepted),
        (status = 400, description = "A malformed parameter or body", body = ErrorBody),
        (status = 404, description = "Unknown push token", body = ErrorBody),
        (status = 401, description = "The monitor takes signed pushes only, and this \
            one is unsigned, badly signed, outside the window or a replay \
            (`docs/push.md`, \"Restricted and signed pushes\")", body = ErrorBody),
        (status = 403, description = "The source address is not in the monitor's \
            `allowed_sources`", body = ErrorBody),
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
        ("instance" = Option<String>, Query, min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9._:-]+$",
            description = "The fleet instance it comes from (docs/push.md, \"Fleet instances\")"),
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
        (status = 401, description = "The monitor takes signed pushes only, and this \
            one is unsigned, badly signed, outside the window or a replay \
            (`docs/push.md`, \"Restricted and signed pushes\")", body = ErrorBody),
        (status = 403, description = "The source address is not in the monitor's \
            `allowed_sources`", body = ErrorBody),
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

/// Record many heartbeats (bulk)
///
/// A JSON array or NDJSON of at most 1000 items (2 MiB), each checked as a single
/// push of it would be; the accepted ones are written in one batch and answered once
/// durable, with a result per item by its index (`docs/push.md`, "Bulk pushes").
#[utoipa::path(
    post, path = "/api/push", tag = "push", operation_id = "push_bulk",
    params(
        ("X-Pushmon-Timestamp" = Option<i64>, Header, description = "Unix seconds; with \
            `X-Pushmon-Signature`, signs the request for signed monitors' items"),
        ("X-Pushmon-Signature" = Option<String>, Header, description = "`sha256=` and the \
            hex HMAC-SHA256 of the request (`docs/push.md`)"),
    ),
    request_body(
        description = "The items: a JSON array, or one JSON object a line",
        content(
            (Vec<BulkItem> = "application/json"),
            (String = "application/x-ndjson"),
        )
    ),
    responses(
        (status = 200, description = "The request was read: what became of each item", body = BulkPushAnswer),
        (status = 400, description = "Not a JSON array, or not a bulk content type", body = ErrorBody),
        (status = 413, description = "More than 1000 items, or a body over 2 MiB", body = ErrorBody),
        (status = 429, description = "The source address has used up its budget of \
            unknown tokens", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait"))),
        (status = 503, description = "Starting or shutting down; nothing was recorded", body = ErrorBody),
    )
)]
fn push_bulk() {}

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
        ("instance" = Option<String>, Query, min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9._:-]+$",
            description = "The fleet instance it comes from (docs/push.md, \"Fleet instances\")"),
    ),
    responses(
        (status = 200, description = "Recorded and durable", body = Accepted),
        (status = 400, description = "A bad action, exit status, slug or `rid`", body = ErrorBody),
        (status = 404, description = "Unknown push token, or no monitor has this ping key and \
            slug (or `?create=1` without `--ping-auto-create`)", body = ErrorBody),
        (status = 401, description = "The monitor takes signed pushes only, and this \
            one is unsigned, badly signed, outside the window or a replay \
            (`docs/push.md`, \"Restricted and signed pushes\")", body = ErrorBody),
        (status = 403, description = "The source address is not in the monitor's \
            `allowed_sources`", body = ErrorBody),
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
        ("instance" = Option<String>, Query, min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9._:-]+$",
            description = "The fleet instance it comes from (docs/push.md, \"Fleet instances\")"),
        ("create" = Option<String>, Query, description = "`1` on a slug URL: create the \
            monitor of an unknown slug (with `--ping-auto-create`)"),
    ),
    responses(
        (status = 200, description = "Recorded and durable", body = Accepted),
        (status = 400, description = "A bad action, exit status, slug or `rid`", body = ErrorBody),
        (status = 404, description = "Unknown push token, or no monitor has this ping key and \
            slug (or `?create=1` without `--ping-auto-create`)", body = ErrorBody),
        (status = 401, description = "The monitor takes signed pushes only, and this \
            one is unsigned, badly signed, outside the window or a replay \
            (`docs/push.md`, \"Restricted and signed pushes\")", body = ErrorBody),
        (status = 403, description = "The source address is not in the monitor's \
            `allowed_sources`", body = ErrorBody),
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
        ("instance" = Option<String>, Query, min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9._:-]+$",
            description = "The fleet instance it comes from (docs/push.md, \"Fleet instances\")"),
        ("create" = Option<String>, Query, description = "`1`: create the monitor of an \
            unknown slug (with `--ping-auto-create`)"),
    ),
    responses(
        (status = 200, description = "Recorded and durable", body = Accepted),
        (status = 400, description = "A bad action, exit status, slug or `rid`", body = ErrorBody),
        (status = 404, description = "Unknown push token, or no monitor has this ping key and \
            slug (or `?create=1` without `--ping-auto-create`)", body = ErrorBody),
        (status = 401, description = "The monitor takes signed pushes only, and this \
            one is unsigned, badly signed, outside the window or a replay \
            (`docs/push.md`, \"Restricted and signed pushes\")", body = ErrorBody),
        (status = 403, description = "The source address is not in the monitor's \
            `allowed_sources`", body = ErrorBody),
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

/// The guard against false alarm storms
///
/// Its state, the arrival rates it compares and the verdicts it holds
/// (`docs/states.md`, "The guard").
#[utoipa::path(
    get, path = "/api/guard", tag = "operations",
    security(("bearer" = ["read"])),
    responses((status = 200, description = "The guard", body = Guard))
)]
fn get_guard() {}

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
            `paused`, `unknown`); may repeat: any of them"),
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

/// Mute a monitor
///
/// Until `until`, or (`until_recovery: true`) until its next recovery: its changes
/// of state are recorded and shown, and alert nothing, ever. Replaces a mute on.
#[utoipa::path(
    post, path = "/api/monitors/{id}/mute", tag = "monitors",
    security(("bearer" = ["write"])),
    params(("id" = uuid::Uuid, Path, description = "The monitor's id")),
    request_body = MuteFields,
    responses((status = 200, description = "The monitor", body = Monitor))
)]
fn mute_monitor() {}

/// Unmute a monitor
#[utoipa::path(
    post, path = "/api/monitors/{id}/unmute", tag = "monitors",
    security(("bearer" = ["write"])),
    params(("id" = uuid::Uuid, Path, description = "The monitor's id")),
    responses((status = 200, description = "The monitor", body = Monitor))
)]
fn unmute_monitor() {}

/// Mute every monitor a query selects
///
/// The filters of `GET /api/monitors`, one at least (`selector=` selects all). Each
/// monitor is muted on its own (one event each), not in one atomic batch.
#[utoipa::path(
    post, path = "/api/monitors/mute", tag = "monitors",
    security(("bearer" = ["write"])),
    params(
        ("selector" = Option<String>, Query, max_length = 512,
            description = "A label selector, as `GET /api/monitors` takes it; may repeat"),
        ("status" = Option<String>, Query, max_length = 64,
            description = "States, separated by commas; may repeat: any of them"),
        ("q" = Option<String>, Query, max_length = 128,
            description = "Text the name contains, whatever its case"),
        ("tag" = Option<String>, Query, max_length = 128,
            description = "A tag the monitor has; may repeat: all of them"),
    ),
    request_body = MuteFields,
    responses(
        (status = 200, description = "The monitors muted", body = MutedMonitors),
        (status = 400, description = "No filter, or a malformed one", body = ErrorBody),
    )
)]
fn mute_selected() {}

/// Change every monitor a query selects, atomically
///
/// Pause, resume, mute, unmute, set, add or remove channels, or delete every monitor
/// the filters of `GET /api/monitors` select (one at least; `selector=` selects all),
/// as one atomic write: all of the events, or none. At most 10,000 monitors (`422`
/// beyond). `dry_run: true` lists what would change and writes nothing.
#[utoipa::path(
    post, path = "/api/monitors/bulk", tag = "monitors",
    security(("bearer" = ["write"])),
    params(
        ("selector" = Option<String>, Query, max_length = 512,
            description = "A label selector, as `GET /api/monitors` takes it; may repeat"),
        ("status" = Option<String>, Query, max_length = 64,
            description = "States, separated by commas; may repeat: any of them"),
        ("q" = Option<String>, Query, max_length = 128,
            description = "Text the name contains, whatever its case"),
        ("tag" = Option<String>, Query, max_length = 128,
            description = "A tag the monitor has; may repeat: all of them"),
    ),
    request_body = BulkFields,
    responses(
        (status = 200, description = "What changed (or would)", body = BulkAnswer),
        (status = 400, description = "No filter, or a malformed one", body = ErrorBody),
    )
)]
fn bulk_change() {}

/// Unmute every muted monitor a query selects
#[utoipa::path(
    post, path = "/api/monitors/unmute", tag = "monitors",
    security(("bearer" = ["write"])),
    params(
        ("selector" = Option<String>, Query, max_length = 512,
            description = "A label selector, as `GET /api/monitors` takes it; may repeat"),
        ("status" = Option<String>, Query, max_length = 64,
            description = "States, separated by commas; may repeat: any of them"),
        ("q" = Option<String>, Query, max_length = 128,
            description = "Text the name contains, whatever its case"),
        ("tag" = Option<String>, Query, max_length = 128,
            description = "A tag the monitor has; may repeat: all of them"),
    ),
    responses(
        (status = 200, description = "The monitors unmuted", body = MutedMonitors),
        (status = 400, description = "No filter, or a malformed one", body = ErrorBody),
    )
)]
fn unmute_selected() {}

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
