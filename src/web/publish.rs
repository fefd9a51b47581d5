//! The page that manages what the public sees: badges and status pages. Changes go
//! through `http::publications`, as the API's.

use std::collections::BTreeSet;
use std::sync::Arc;

use askama::Template;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Map, Value, json};

use crate::domain::ids::MonitorId;
use crate::domain::machine::Monitor;
use crate::domain::publication::{Badge, BadgeId, StatusPage, StatusPageId, Target};
use crate::http::error::ApiError;
use crate::http::publications::{
    badge_from_fields, create_page as create_status_page, new_badge_key, update_page,
};
use crate::http::{AppState, PathParam};

use super::session::{Flash, Viewer};
use super::view::{Counts, Page};
use super::{Web, field, form, render, see_other, viewer_message};

pub struct BadgeRow {
    pub id: String,
    pub target: String,
    pub svg_path: String,
    pub json_url: String,
    pub markdown: String,
}

pub struct PageRow {
    pub id: String,
    pub title: String,
    pub path: String,
    pub shows: String,
}

#[derive(Default)]
pub struct StatusPageForm {
    pub heading: String,
    pub action: String,
    pub submit: &'static str,
    pub editing: bool,
    pub error: Option<String>,
    pub title: String,
    pub slug: String,
    pub tags: String,
    pub monitors: String,
}

#[derive(Template)]
#[template(path = "public.html")]
struct PublicPage {
    page: Page,
    badges: Vec<BadgeRow>,
    pages: Vec<PageRow>,
    tags: Vec<String>,
    form: StatusPageForm,
}

#[derive(Template)]
#[template(path = "status_page_edit.html")]
struct EditPage {
    page: Page,
    form: StatusPageForm,
}

fn name_of(monitors: &[Monitor], id: MonitorId) -> String {
    monitors
        .iter()
        .find(|monitor| monitor.id == id)
        .map_or_else(
            || format!("deleted monitor {id}"),
            |monitor| monitor.config.name.clone(),
        )
}

fn target_text(monitors: &[Monitor], target: &Target) -> String {
    match target {
        Target::Monitor(id) => format!("monitor “{}”", name_of(monitors, *id)),
        Target::Tag(tag) => format!("tag “{tag}”"),
    }
}

fn new_page_form() -> StatusPageForm {
    StatusPageForm {
        heading: "New status page".to_owned(),
        action: "/public/status-pages".to_owned(),
        submit: "Create status page",
        ..StatusPageForm::default()
    }
}

async fn public_page(
    state: &AppState,
    web: &Web,
    viewer: &Viewer,
    form: StatusPageForm,
    status: StatusCode,
) -> Response {
    let monitors = web.board.monitors().await.unwrap_or_default();
    let badges = state
        .publications
        .badges()
        .iter()
        .map(|badge| {
            let target = target_text(&monitors, &badge.target);
            let url = format!("{}/badge/{}", state.public_url, badge.key);
            BadgeRow {
                id: badge.id.to_string(),
                markdown: format!("![{}]({url}.svg)", badge_label(&monitors, badge)),
                target,
                svg_path: format!("/badge/{}.svg", badge.key),
                json_url: format!("{url}.json"),
            }
        })
        .collect();
    let pages = state
        .publications
        .pages()
        .iter()
        .map(|status_page| PageRow {
            id: status_page.id.to_string(),
            title: status_page.title.clone(),
            path: format!("/status/{}", status_page.slug),
            shows: if status_page.targets.is_empty() {
                "nothing yet".to_owned()
            } else {
                status_page
                    .targets
                    .iter()
                    .map(|target| target_text(&monitors, target))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        })
        .collect();
    let tags: BTreeSet<&String> = monitors
        .iter()
        .flat_map(|monitor| monitor.config.tags.iter())
        .collect();
    render(
        status,
        &PublicPage {
            page: Page::new(
                "Badges & status pages",
                "public",
                viewer,
                Counts::of(monitors.iter()),
            ),
            badges,
            pages,
            tags: tags.into_iter().cloned().collect(),
            form,
        },
    )
}

/// The label a badge shows: its own, the monitor's name, or the tag.
pub fn badge_label(monitors: &[Monitor], badge: &Badge) -> String {
    match (&badge.label, &badge.target) {
        (Some(label), _) => label.clone(),
        (None, Target::Monitor(id)) => name_of(monitors, *id),
        (None, Target::Tag(tag)) => tag.clone(),
    }
}

/// `GET /public`.
pub async fn page(
    State(state): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Extension(viewer): Extension<Viewer>,
) -> Response {
    public_page(&state, &web, &viewer, new_page_form(), StatusCode::OK).await
}

async fn add_badge(
    state: &AppState,
    web: &Web,
    viewer: &Viewer,
    fields: Map<String, Value>,
) -> Response {
    let made = async {
        let (target, label) = badge_from_fields(state, &fields)?;
        let now = state.clock.now();
        let badge = Badge {
            id: BadgeId::generate(now),
            key: new_badge_key()?,
            target,
            label,
            created_at: now,
        };
        state.publications.add_badge(badge.clone()).await?;
        Ok::<_, ApiError>(badge)
    }
    .await;
    match made {
        Ok(badge) => {
            let monitors = web.board.monitors().await.unwrap_or_default();
            web.sessions.flash(
                viewer,
                Flash {
                    ok: true,
                    text: "Badge made. Markdown for a README:".to_owned(),
                    copy: Some(format!(
                        "![{}]({}/badge/{}.svg)",
                        badge_label(&monitors, &badge),
                        state.public_url,
                        badge.key
                    )),
                },
            );
            see_other("/public")
        }
        Err(error) => {
            viewer_message(
                web,
                viewer,
                error.status(),
                "No badge made",
                &error.to_string(),
            )
            .await
        }
    }
}

/// `POST /monitors/{id}/badge`: a badge of one monitor.
pub async fn monitor_badge(
    State(state): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Extension(viewer): Extension<Viewer>,
    PathParam(id): PathParam,
) -> Response {
    let mut fields = Map::new();
    fields.insert("monitor".to_owned(), json!(id));
    add_badge(&state, &web, &viewer, fields).await
}

/// `POST /public/badges`: a badge of a tag.
pub async fn tag_badge(
    State(state): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Extension(viewer): Extension<Viewer>,
    body: Bytes,
) -> Response {
    let typed = form(&body);
    let mut fields = Map::new();
    fields.insert(
        "tag".to_owned(),
        json!(field(&typed, "tag").unwrap_or_default().trim()),
    );
    if let Some(label) = field(&typed, "label").filter(|label| !label.trim().is_empty()) {
        fields.insert("label".to_owned(), json!(label));
    }
    add_badge(&state, &web, &viewer, fields).await
}

/// `POST /public/badges/{id}/delete`.
pub async fn delete_badge(
    State(state): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Extension(viewer): Extension<Viewer>,
    PathParam(id): PathParam,
) -> Response {
    let removed = match BadgeId::parse(&id) {
        Some(id) => state
            .publications
            .remove_badge(id)
            .await
            .map_err(ApiError::from),
        None => Ok(false),
    };
    match removed {
        Ok(found) => {
            web.sessions.flash(
                &viewer,
                Flash {
                    ok: found,
                    text: if found {
                        "Badge deleted: its URL answers 404 from now on.".to_owned()
                    } else {
                        "No such badge.".to_owned()
                    },
                    copy: None,
                },
            );
            see_other("/public")
        }
        Err(error) => {
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

/// The status page form's fields as the API's: tags as a list, monitors by id (a line
/// may name a monitor by its name, if only one has it).
fn page_fields(
    monitors: &[Monitor],
    typed: &[(String, String)],
) -> Result<Map<String, Value>, ApiError> {
    let mut fields = Map::new();
    fields.insert(
        "title".to_owned(),
        json!(field(typed, "title").unwrap_or_default()),
    );
    fields.insert(
        "slug".to_owned(),
        json!(field(typed, "slug").unwrap_or_default().trim()),
    );
    let tags: Vec<String> = field(typed, "tags")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|tag| !tag.is_empty())
        .map(str::to_owned)
        .collect();
    fields.insert("tags".to_owned(), json!(tags));
    let mut ids = Vec::new();
    for line in field(typed, "monitors").unwrap_or_default().lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(id) = MonitorId::parse(line) {
            ids.push(id.to_string());
            continue;
        }
        let named: Vec<&Monitor> = monitors
            .iter()
            .filter(|monitor| monitor.config.name == line)
            .collect();
        match named.as_slice() {
            [one] => ids.push(one.id.to_string()),
            [] => {
                return Err(ApiError::Unprocessable(format!(
                    "monitors: no monitor is named “{line}”"
                )));
            }
            _ => {
                return Err(ApiError::Unprocessable(format!(
                    "monitors: more than one monitor is named “{line}”; give its id"
                )));
            }
        }
    }
    fields.insert("monitors".to_owned(), json!(ids));
    Ok(fields)
}

fn typed_form(
    typed: &[(String, String)],
    mut form: StatusPageForm,
    error: &ApiError,
) -> StatusPageForm {
    form.error = Some(error.to_string());
    form.title = field(typed, "title").unwrap_or_default();
    form.slug = field(typed, "slug").unwrap_or_default();
    form.tags = field(typed, "tags").unwrap_or_default();
    form.monitors = field(typed, "monitors").unwrap_or_default();
    form
}

fn done(web: &Web, viewer: &Viewer, status_page: &StatusPage, text: &str) -> Response {
    web.sessions.flash(
        viewer,
        Flash {
            ok: true,
            text: text.to_owned(),
            copy: Some(format!("/status/{}", status_page.slug)),
        },
    );
    see_other("/public")
}

/// `POST /public/status-pages`.
pub async fn create_page(
    State(state): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Extension(viewer): Extension<Viewer>,
    body: Bytes,
) -> Response {
    let typed = form(&body);
    let monitors = web.board.monitors().await.unwrap_or_default();
    let created = match page_fields(&monitors, &typed) {
        Ok(fields) => create_status_page(&state, &fields).await,
        Err(error) => Err(error),
    };
    match created {
        Ok(status_page) => done(&web, &viewer, &status_page, "Status page created, at:"),
        Err(error) => {
            let status = error.status();
            let form = typed_form(&typed, new_page_form(), &error);
            public_page(&state, &web, &viewer, form, status).await
        }
    }
}

fn edit_values(monitors: &[Monitor], status_page: &StatusPage) -> StatusPageForm {
    let mut tags = Vec::new();
    let mut listed = Vec::new();
    for target in &status_page.targets {
        match target {
            Target::Tag(tag) => tags.push(tag.clone()),
            Target::Monitor(id) => listed.push(
                monitors
                    .iter()
                    .find(|monitor| monitor.id == *id)
                    .filter(|monitor| {
                        monitors
                            .iter()
                            .filter(|other| other.config.name == monitor.config.name)
                            .count()
                            == 1
                    })
                    .map_or_else(|| id.to_string(), |monitor| monitor.config.name.clone()),
            ),
        }
    }
    StatusPageForm {
        heading: format!("Edit {}", status_page.title),
        action: format!("/public/status-pages/{}/edit", status_page.id),
        submit: "Save",
        editing: true,
        error: None,
        title: status_page.title.clone(),
        slug: status_page.slug.clone(),
        tags: tags.join(", "),
        monitors: listed.join("\n"),
    }
}

async fn no_page(web: &Web, viewer: &Viewer) -> Response {
    viewer_message(
        web,
        viewer,
        StatusCode::NOT_FOUND,
        "No such status page",
        "It may have been deleted.",
    )
    .await
}

/// `GET /public/status-pages/{id}/edit`.
pub async fn edit_page_form(
    State(state): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Extension(viewer): Extension<Viewer>,
    PathParam(id): PathParam,
) -> Response {
    let Some(status_page) = StatusPageId::parse(&id).and_then(|id| state.publications.page(id))
    else {
        return no_page(&web, &viewer).await;
    };
    let monitors = web.board.monitors().await.unwrap_or_default();
    let form = edit_values(&monitors, &status_page);
    render(
        StatusCode::OK,
        &EditPage {
            page: Page::new(
                form.heading.clone(),
                "public",
                &viewer,
                Counts::of(monitors.iter()),
            ),
            form,
        },
    )
}

/// `POST /public/status-pages/{id}/edit`: title, address, tags and monitors replaced.
pub async fn edit_page(
    State(state): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Extension(viewer): Extension<Viewer>,
    PathParam(id): PathParam,
    body: Bytes,
) -> Response {
    let Some(status_page) = StatusPageId::parse(&id).and_then(|id| state.publications.page(id))
    else {
        return no_page(&web, &viewer).await;
    };
    let typed = form(&body);
    let monitors = web.board.monitors().await.unwrap_or_default();
    let changed = match page_fields(&monitors, &typed) {
        Ok(fields) => update_page(&state, status_page.id, &fields).await,
        Err(error) => Err(error),
    };
    match changed {
        Ok(changed) => done(&web, &viewer, &changed, "Status page saved, at:"),
        Err(error) => {
            let form = typed_form(&typed, edit_values(&monitors, &status_page), &error);
            render(
                error.status(),
                &EditPage {
                    page: Page::new(
                        form.heading.clone(),
                        "public",
                        &viewer,
                        Counts::of(monitors.iter()),
                    ),
                    form,
                },
            )
        }
    }
}

/// `POST /public/status-pages/{id}/delete`.
pub async fn delete_page(
    State(state): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Extension(viewer): Extension<Viewer>,
    PathParam(id): PathParam,
) -> Response {
    let removed = match StatusPageId::parse(&id) {
        Some(id) => state
            .publications
            .remove_page(id)
            .await
            .map_err(ApiError::from),
        None => Ok(false),
    };
    match removed {
        Ok(found) => {
            web.sessions.flash(
                &viewer,
                Flash {
                    ok: found,
                    text: if found {
                        "Status page deleted.".to_owned()
                    } else {
                        "No such status page.".to_owned()
                    },
                    copy: None,
                },
            );
            see_other("/public")
        }
        Err(error) => {
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
