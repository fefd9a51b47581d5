//! The channels page: list, create, edit, test, delete. Changes go through
//! `http::channels` (the API's checks, `check_destination` included) and the registry.

use std::sync::Arc;

use askama::Template;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Map, Value, json};

use crate::alert::channels::{Shown, kind_fields};
use crate::domain::channel::{Channel, ChannelKind, SendOn};
use crate::http::AppState;
use crate::http::PathParam;
use crate::http::channels::{channel_fields, create as create_channel, find, send_test, update};
use crate::http::error::ApiError;

use super::session::{Flash, Viewer};
use super::view::Page;
use super::{Web, field, form, render, see_other, viewer_message};

/// The kinds, as the form offers them.
const KINDS: &[&str] = crate::alert::channels::KINDS;

pub struct ChannelRow {
    pub id: String,
    pub name: String,
    pub kind: &'static str,
    pub destination: String,
    pub monitors: usize,
    pub declared: bool,
}

/// What the channel form shows.
#[derive(Default)]
pub struct ChannelForm {
    pub heading: String,
    pub action: String,
    pub submit: &'static str,
    pub editing: bool,
    pub error: Option<String>,
    pub name: String,
    pub kind: String,
    pub url: String,
    pub from: String,
    pub to: String,
    pub send_on: String,
    pub method: String,
    pub body: String,
    pub chat_id: String,
    pub api_url: String,
    pub priority: String,
    pub room_id: String,
}

#[derive(Template)]
#[template(path = "channels.html")]
struct ChannelsPage {
    page: Page,
    channels: Vec<ChannelRow>,
    form: ChannelForm,
    kinds: &'static [&'static str],
}

#[derive(Template)]
#[template(path = "channel_edit.html")]
struct EditPage {
    page: Page,
    form: ChannelForm,
    kinds: &'static [&'static str],
}

/// Where a channel sends, as a read key may see it: no URL (a chat webhook's URL is
/// its secret), no password.
fn destination(channel: &Channel, viewer: &Viewer) -> String {
    let shown = |url: &str| {
        if viewer.can_write() {
            url.to_owned()
        } else {
            reqwest::Url::parse(url)
                .ok()
                .and_then(|url| url.host_str().map(str::to_owned))
                .unwrap_or_default()
        }
    };
    let send_on = match channel.send_on {
        SendOn::Both => "",
        SendOn::Down => " · down only",
        SendOn::Up => " · up only",
    };
    let base =
        |api_url: &Option<String>, default: &str| shown(api_url.as_deref().unwrap_or(default));
    let destination = match &channel.kind {
        ChannelKind::Webhook { url, secret } => format!(
            "{}{}",
            shown(url),
            if secret.is_some() { " · signed" } else { "" }
        ),
        ChannelKind::Slack { url }
        | ChannelKind::Discord { url }
        | ChannelKind::Alertmanager { url }
        | ChannelKind::Teams { url }
        | ChannelKind::Ntfy { url, .. }
        | ChannelKind::Gotify { url, .. } => shown(url),
        ChannelKind::Template { method, url, .. } => format!("{} {}", method.as_str(), shown(url)),
        ChannelKind::Email { smtp_url, to, .. } => {
            let host = reqwest::Url::parse(smtp_url)
                .ok()
                .and_then(|url| url.host_str().map(str::to_owned))
                .unwrap_or_default();
            format!("{} via {host}", to.join(", "))
        }
        ChannelKind::Telegram {
            chat_id, api_url, ..
        } => format!(
            "chat {chat_id} via {}",
            base(api_url, crate::alert::telegram::DEFAULT_API_URL)
        ),
        ChannelKind::PagerDuty { api_url, .. } => {
            base(api_url, crate::alert::pagerduty::DEFAULT_API_URL)
        }
        ChannelKind::Opsgenie { api_url, .. } => {
            base(api_url, crate::alert::opsgenie::DEFAULT_API_URL)
        }
        ChannelKind::Pushover { api_url, .. } => {
            base(api_url, crate::alert::push::PUSHOVER_API_URL)
        }
        ChannelKind::Matrix { url, room_id, .. } => format!("{room_id} on {}", shown(url)),
    };
    format!("{destination}{send_on}")
}

fn new_form() -> ChannelForm {
    ChannelForm {
        heading: "New channel".to_owned(),
        action: "/channels".to_owned(),
        submit: "Create channel",
        kind: "webhook".to_owned(),
        send_on: "both".to_owned(),
        method: "POST".to_owned(),
        ..ChannelForm::default()
    }
}

async fn list_page(
    state: &AppState,
    web: &Web,
    viewer: &Viewer,
    form: ChannelForm,
    status: StatusCode,
) -> Response {
    let monitors = web.board.monitors().await.unwrap_or_default();
    let channels = state
        .channels
        .list()
        .iter()
        .map(|channel| ChannelRow {
            id: channel.id.to_string(),
            name: channel.name.clone(),
            kind: channel.kind.name(),
            destination: destination(channel, viewer),
            monitors: monitors
                .iter()
                .filter(|monitor| monitor.config.channels.contains(&channel.id))
                .count(),
            declared: channel.key.is_some(),
        })
        .collect();
    render(
        status,
        &ChannelsPage {
            page: Page::new(
                "Channels",
                "channels",
                viewer,
                super::view::Counts::of(monitors.iter()),
            ),
            channels,
            form,
            kinds: KINDS,
        },
    )
}

/// `GET /channels`.
pub async fn list(
    State(state): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Extension(viewer): Extension<Viewer>,
) -> Response {
    list_page(&state, &web, &viewer, new_form(), StatusCode::OK).await
}

/// The form's fields as the API's: those of its kind that were filled in (`to` as a
/// list).
fn api_fields(fields: &[(String, String)]) -> Map<String, Value> {
    let mut body = Map::new();
    let kind = field(fields, "kind").unwrap_or_default();
    body.insert("kind".to_owned(), json!(kind));
    let allowed = channel_fields(&body);
    for name in allowed {
        let Some(value) = field(fields, name) else {
            continue;
        };
        let value = value.trim();
        if value.is_empty() || *name == "kind" {
            continue;
        }
        let value = match *name {
            "to" => json!(
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|address| !address.is_empty())
                    .collect::<Vec<_>>()
            ),
            // One `Name: value` a line.
            "headers" => Value::Object(
                value
                    .lines()
                    .filter_map(|line| line.split_once(':'))
                    .map(|(name, value)| (name.trim().to_owned(), json!(value.trim())))
                    .collect(),
            ),
            "priority" => value
                .parse::<i64>()
                .map_or_else(|_| json!(value), |number| json!(number)),
            _ => json!(value),
        };
        body.insert((*name).to_owned(), value);
    }
    body
}

fn typed(fields: &[(String, String)], mut form: ChannelForm, error: &ApiError) -> ChannelForm {
    form.error = Some(error.to_string());
    form.name = field(fields, "name").unwrap_or_default();
    form.kind = field(fields, "kind").unwrap_or_default();
    form.url = field(fields, "url").unwrap_or_default();
    form.from = field(fields, "from").unwrap_or_default();
    form.to = field(fields, "to").unwrap_or_default();
    form.send_on = field(fields, "send_on").unwrap_or_default();
    form.method = field(fields, "method").unwrap_or_default();
    form.body = field(fields, "body").unwrap_or_default();
    form.chat_id = field(fields, "chat_id").unwrap_or_default();
    form.api_url = field(fields, "api_url").unwrap_or_default();
    form.priority = field(fields, "priority").unwrap_or_default();
    form.room_id = field(fields, "room_id").unwrap_or_default();
    form
}

/// `POST /channels`.
pub async fn create(
    State(state): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Extension(viewer): Extension<Viewer>,
    body: Bytes,
) -> Response {
    let fields = form(&body);
    match create_channel(&state, &api_fields(&fields)).await {
        Ok(channel) => {
            web.sessions.flash(
                &viewer,
                Flash {
                    ok: true,
                    text: format!("Created channel “{}”.", channel.name),
                    copy: None,
                },
            );
            see_other("/channels")
        }
        Err(error) => {
            let status = error.status();
            list_page(
                &state,
                &web,
                &viewer,
                typed(&fields, new_form(), &error),
                status,
            )
            .await
        }
    }
}

async fn missing(web: &Web, viewer: &Viewer) -> Response {
    viewer_message(
        web,
        viewer,
        StatusCode::NOT_FOUND,
        "No such channel",
        "It may have been deleted.",
    )
    .await
}

fn edit_values(channel: &Channel) -> ChannelForm {
    let mut form = ChannelForm::default();
    for (field, value, shown) in kind_fields(&channel.kind) {
        let text = match &value {
            Value::String(text) => text.clone(),
            Value::Number(number) => number.to_string(),
            Value::Array(items) => items
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", "),
            _ => String::new(),
        };
        match (field, shown) {
            // Secrets are never shown; an SMTP URL holds a password.
            (_, Shown::Secret) | ("smtp_url", _) => {}
            ("url", _) => form.url = text,
            ("from", _) => form.from = text,
            ("to", _) => form.to = text,
            ("method", _) => form.method = text,
            ("body", _) => form.body = text,
            ("chat_id", _) => form.chat_id = text,
            ("api_url", _) => form.api_url = text,
            ("priority", _) => form.priority = text,
            ("room_id", _) => form.room_id = text,
            _ => {}
        }
    }
    ChannelForm {
        heading: format!("Edit {}", channel.name),
        action: format!("/channels/{}/edit", channel.id),
        submit: "Save",
        editing: true,
        error: None,
        name: channel.name.clone(),
        kind: channel.kind.name().to_owned(),
        send_on: channel.send_on.as_str().to_owned(),
        ..form
    }
}

/// `GET /channels/{id}/edit`.
pub async fn edit_form(
    State(state): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Extension(viewer): Extension<Viewer>,
    PathParam(id): PathParam,
) -> Response {
    let Ok(channel) = find(&state, &id) else {
        return missing(&web, &viewer).await;
    };
    let form = edit_values(&channel);
    render(
        StatusCode::OK,
        &EditPage {
            page: Page::new(
                form.heading.clone(),
                "channels",
                &viewer,
                web.counts().await,
            ),
            form,
            kinds: KINDS,
        },
    )
}

/// `POST /channels/{id}/edit`: fields left empty keep their values (the secrets too).
pub async fn edit(
    State(state): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Extension(viewer): Extension<Viewer>,
    PathParam(id): PathParam,
    body: Bytes,
) -> Response {
    let Ok(channel) = find(&state, &id) else {
        return missing(&web, &viewer).await;
    };
    let fields = form(&body);
    let mut changes = api_fields(&fields);
    if let Some(name) = field(&fields, "name") {
        changes.insert("name".to_owned(), json!(name));
    }
    match update(&state, &channel, changes).await {
        Ok(channel) => {
            web.sessions.flash(
                &viewer,
                Flash {
                    ok: true,
                    text: format!("Saved channel “{}”.", channel.name),
                    copy: None,
                },
            );
            see_other("/channels")
        }
        Err(error) => {
            let form = typed(&fields, edit_values(&channel), &error);
            render(
                error.status(),
                &EditPage {
                    page: Page::new(
                        form.heading.clone(),
                        "channels",
                        &viewer,
                        web.counts().await,
                    ),
                    form,
                    kinds: KINDS,
                },
            )
        }
    }
}

/// `POST /channels/{id}/test`: sends a test message and says how it went.
pub async fn test(
    State(state): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Extension(viewer): Extension<Viewer>,
    PathParam(id): PathParam,
) -> Response {
    let Ok(channel) = find(&state, &id) else {
        return missing(&web, &viewer).await;
    };
    let flash = match send_test(&state, &channel).await {
        Ok(()) => Flash {
            ok: true,
            text: format!("Test message delivered to “{}”.", channel.name),
            copy: None,
        },
        Err(error) => Flash {
            ok: false,
            text: format!("“{}”: {error}.", channel.name),
            copy: None,
        },
    };
    web.sessions.flash(&viewer, flash);
    see_other(&format!("/channels#c-{}", channel.id))
}

#[derive(Template)]
#[template(path = "confirm.html")]
struct Confirm {
    page: Page,
    heading: String,
    text: String,
    action: String,
    submit: &'static str,
    back: String,
    danger: bool,
}

/// `GET /channels/{id}/delete`.
pub async fn delete_confirm(
    State(state): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Extension(viewer): Extension<Viewer>,
    PathParam(id): PathParam,
) -> Response {
    let Ok(channel) = find(&state, &id) else {
        return missing(&web, &viewer).await;
    };
    let heading = format!("Delete channel “{}”?", channel.name);
    render(
        StatusCode::OK,
        &Confirm {
            page: Page::new(heading.clone(), "channels", &viewer, web.counts().await),
            heading,
            text: "It is taken off every monitor that alerts it. A delivery it still owes is \
                   recorded as failed."
                .to_owned(),
            action: format!("/channels/{}/delete", channel.id),
            submit: "Delete channel",
            back: "/channels".to_owned(),
            danger: true,
        },
    )
}

/// `POST /channels/{id}/delete`.
pub async fn delete(
    State(state): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Extension(viewer): Extension<Viewer>,
    PathParam(id): PathParam,
) -> Response {
    let Ok(channel) = find(&state, &id) else {
        return missing(&web, &viewer).await;
    };
    match state.registry.delete_channel(channel.id).await {
        Ok(_) => {
            web.board.invalidate().await;
            web.sessions.flash(
                &viewer,
                Flash {
                    ok: true,
                    text: format!("Deleted channel “{}”.", channel.name),
                    copy: None,
                },
            );
            see_other("/channels")
        }
        Err(error) => {
            let error = ApiError::from(error);
            viewer_message(
                &web,
                &viewer,
                error.status(),
                "Not deleted",
                &error.to_string(),
            )
            .await
        }
    }
}
