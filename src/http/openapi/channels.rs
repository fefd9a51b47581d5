//! Schemas of channels: each kind's fields as created, shown and changed.

use super::*;

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
