//! Schemas of badges, status pages, API keys, pushes, the settings and health.

use super::*;

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

/// A push's JSON body: any of `status`, `msg`, `value`, a fleet's `instance`, and a
/// job's `kind`, `exit` and `rid` (`docs/push.md`, "Runs and exit statuses"); null counts as absent,
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
    /// The fleet instance it comes from: 1 to 64 letters, digits, `.`, `_`, `:`, `-`.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9._:-]+$")]
    pub instance: Option<String>,
}

/// One item of a bulk push (`docs/push.md`, "Bulk pushes"): a heartbeat for the
/// monitor of `token`; other fields are ignored.
#[derive(Deserialize, ToSchema)]
pub struct BulkItem {
    /// The monitor's push token.
    pub token: String,
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
    /// The fleet instance: 1 to 64 of `A-Z a-z 0-9 . _ : -`.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9._:-]+$")]
    pub instance: Option<String>,
}

/// The answer to a bulk push.
#[derive(Deserialize, ToSchema)]
pub struct BulkPushAnswer {
    /// Items recorded.
    pub accepted: u32,
    /// Items refused.
    pub refused: u32,
    /// One per item, in the request's order.
    pub results: Vec<BulkItemResult>,
}

/// What became of one item of a bulk push.
#[derive(Deserialize, ToSchema)]
pub struct BulkItemResult {
    /// The item's place in the request, from 0.
    pub index: u32,
    /// What a single push of the item would have answered (200: recorded).
    pub status: u16,
    /// The monitor's id, once its token is known (never the token).
    #[serde(default)]
    #[schema(value_type = Option<uuid::Uuid>, nullable = false)]
    pub monitor: Option<String>,
    /// Why the item was refused.
    #[serde(default)]
    #[schema(nullable = false)]
    pub error: Option<String>,
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
    /// The fleet instance it comes from: 1 to 64 letters, digits, `.`, `_`, `:`, `-`.
    #[serde(default)]
    #[schema(
        nullable = false,
        min_length = 1,
        max_length = 64,
        pattern = "^[A-Za-z0-9._:-]+$"
    )]
    pub instance: Option<String>,
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

/// What the guard is doing.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum GuardState {
    /// `--guard off`.
    Off,
    /// Less than a window since start-up: it judges nothing yet.
    Warming,
    Normal,
    /// Arrivals collapsed: missed deadlines are held as `unknown`.
    Tripped,
}

/// The Guard object (`docs/api.md`, "The guard").
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Guard {
    pub enabled: bool,
    pub state: GuardState,
    /// When it entered its state (start-up for `warming` and `off`).
    #[schema(format = DateTime)]
    pub since: String,
    /// Pushes and pings that reached a monitor, per second, over the last window.
    #[schema(minimum = 0)]
    pub observed_per_second: f64,
    /// What the running monitors predict, per second.
    #[schema(minimum = 0)]
    pub expected_per_second: f64,
    /// Monitors `unknown` now.
    #[schema(minimum = 0)]
    pub held: u64,
    /// Verdicts held since start-up.
    #[schema(minimum = 0)]
    pub held_total: u64,
    /// `--guard-window`.
    pub window_seconds: f64,
    /// `--guard-min-ratio`.
    pub min_ratio: f64,
    /// `--guard-min-expected`.
    pub min_expected: f64,
    /// `--guard-release-grace`.
    #[schema(minimum = 0)]
    pub release_grace_seconds: u32,
}

/// `/healthz` (`ok`) and `/readyz` (`ready`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Health {
    pub status: String,
}
