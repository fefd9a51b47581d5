//! Badges and status pages: what the public may see, managed through the API
//! (`/api/badges`, `/api/status-pages`, behind the same bearer authentication as
//! monitors) and kept in memory by [`Publications`], each change durable before the
//! map changes. They are served (`/badge/…`, `/status/…`) by `web`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::middleware;
use axum::routing::{get, post};
use base64::Engine as _;
use rand::TryRngCore as _;
use serde_json::{Map, Value, json};

use crate::cluster::event_log::EventLog;
use crate::domain::ids::MonitorId;
use crate::domain::name::check_name;
use crate::domain::publication::{
    Badge, BadgeId, Publication, SLUG_RULE, StatusPage, StatusPageId, Target, check_slug,
};
use crate::store::{EventStore, PublicationChange, StoreError};

use super::api::{MAX_TAG_CHARS, MAX_TAGS, json_object, parse_name, refuse_unknown_fields};
use super::auth::require_access;
use super::error::ApiError;
use super::replicated::{SettingChange, SettingWrite};
use super::{AppState, PathParam};

/// The most monitors one status page lists by id.
pub const MAX_PAGE_MONITORS: usize = 1000;

/// Why a change was refused.
#[derive(Debug, thiserror::Error)]
pub enum PublicationError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("slug {0:?} is taken by another status page")]
    SlugTaken(String),
}

impl From<PublicationError> for ApiError {
    fn from(error: PublicationError) -> Self {
        match error {
            PublicationError::Store(error) => error.into(),
            PublicationError::SlugTaken(_) => Self::Unprocessable(error.to_string()),
        }
    }
}

#[derive(Default)]
struct Records {
    badges: BTreeMap<BadgeId, Badge>,
    badge_by_key: HashMap<String, BadgeId>,
    pages: BTreeMap<StatusPageId, StatusPage>,
    page_by_slug: HashMap<String, StatusPageId>,
}

impl Records {
    fn insert(&mut self, publication: Publication) {
        match publication {
            Publication::Badge(badge) => {
                self.badge_by_key.insert(badge.key.clone(), badge.id);
                self.badges.insert(badge.id, badge);
            }
            Publication::StatusPage(page) => {
                if let Some(old) = self.pages.get(&page.id) {
                    self.page_by_slug.remove(&old.slug);
                }
                self.page_by_slug.insert(page.slug.clone(), page.id);
                self.pages.insert(page.id, page);
            }
        }
    }
}

/// Every badge and status page; read by every badge and status page request.
pub struct Publications {
    store: EventStore,
    records: RwLock<Records>,
    /// Serialises changes, so each one's store write and map change happen together,
    /// in the same order for everyone (and a slug is checked and taken at once).
    changes: tokio::sync::Mutex<()>,
    /// The event log every change goes through (`http/replicated.rs`).
    log: std::sync::Arc<crate::cluster::event_log::Log>,
}

impl Publications {
    /// The records as loaded from `store`; changes go through `log`.
    pub fn new(
        store: EventStore,
        stored: Vec<Publication>,
        log: std::sync::Arc<crate::cluster::event_log::Log>,
    ) -> Self {
        let mut records = Records::default();
        for publication in stored {
            records.insert(publication);
        }
        Self {
            store,
            records: RwLock::new(records),
            changes: tokio::sync::Mutex::new(()),
            log,
        }
    }

    /// Applies a change folded from the cluster-wide log (made on any pod), in the
    /// log's order: stored (with the stream's position `position` in the same batch),
    /// then served. A status page whose slug another page took
    /// earlier in the log is not applied on any pod (the later of two takes loses,
    /// alike everywhere); a removal of a record this pod has not changes nothing.
    pub async fn apply_replicated(
        &self,
        change: PublicationChange,
        position: crate::store::FoldPosition,
    ) -> Result<(), StoreError> {
        let _changing = self.changes.lock().await;
        match change {
            PublicationChange::Put(publication) => {
                if let Publication::StatusPage(page) = &publication
                    && self
                        .read()
                        .page_by_slug
                        .get(&page.slug)
                        .is_some_and(|owner| *owner != page.id)
                {
                    tracing::warn!(slug = %page.slug, "a status page folded with a slug another page took first; not applied");
                    return Ok(());
                }
                self.store
                    .write_folded_publication(
                        PublicationChange::Put(publication.clone()),
                        Some(position),
                    )
                    .await?;
                self.write().insert(publication);
            }
            PublicationChange::Removed(id) => {
                let badge = BadgeId::from_bytes(id);
                let page = StatusPageId::from_bytes(id);
                let (had_badge, had_page) = {
                    let records = self.read();
                    (
                        records.badges.get(&badge).map(|badge| badge.key.clone()),
                        records.pages.get(&page).map(|page| page.slug.clone()),
                    )
                };
                if had_badge.is_none() && had_page.is_none() {
                    return Ok(());
                }
                self.store
                    .write_folded_publication(PublicationChange::Removed(id), Some(position))
                    .await?;
                let mut records = self.write();
                if let Some(key) = had_badge {
                    records.badges.remove(&badge);
                    records.badge_by_key.remove(&key);
                }
                if let Some(slug) = had_page {
                    records.pages.remove(&page);
                    records.page_by_slug.remove(&slug);
                }
            }
        }
        Ok(())
    }

    pub fn badge_by_key(&self, key: &str) -> Option<Badge> {
        let records = self.read();
        let id = records.badge_by_key.get(key)?;
        records.badges.get(id).cloned()
    }

    /// Every badge, oldest first.
    pub fn badges(&self) -> Vec<Badge> {
        self.read().badges.values().cloned().collect()
    }

    pub fn page_by_slug(&self, slug: &str) -> Option<StatusPage> {
        let records = self.read();
        let id = records.page_by_slug.get(slug)?;
        records.pages.get(id).cloned()
    }

    pub fn page(&self, id: StatusPageId) -> Option<StatusPage> {
        self.read().pages.get(&id).cloned()
    }

    /// Every status page, oldest first.
    pub fn pages(&self) -> Vec<StatusPage> {
        self.read().pages.values().cloned().collect()
    }

    /// Stores a new badge durably, then serves it.
    pub async fn add_badge(&self, badge: Badge) -> Result<(), PublicationError> {
        let publication = Publication::Badge(badge);
        self.log
            .write(SettingWrite {
                change: SettingChange::Publication(PublicationChange::Put(publication.clone())),
                locally: move || async move {
                    let _changing = self.changes.lock().await;
                    self.store.put_publication(&publication).await?;
                    self.write().insert(publication);
                    Ok(())
                },
                folded: || Ok(()),
            })
            .await
    }

    /// Removes a badge durably, then from memory; `false` if there is none.
    pub async fn remove_badge(&self, id: BadgeId) -> Result<bool, PublicationError> {
        if !self.read().badges.contains_key(&id) {
            return Ok(false);
        }
        self.log
            .write(SettingWrite {
                change: SettingChange::Publication(PublicationChange::Removed(*id.as_bytes())),
                locally: move || async move {
                    let _changing = self.changes.lock().await;
                    let Some(badge) = self.read().badges.get(&id).cloned() else {
                        return Ok(false);
                    };
                    self.store.remove_publication(*id.as_bytes()).await?;
                    let mut records = self.write();
                    records.badges.remove(&id);
                    records.badge_by_key.remove(&badge.key);
                    Ok(true)
                },
                folded: || Ok(true),
            })
            .await
    }

    /// Stores a status page (new or changed) durably, then serves it; refused if
    /// another page has its slug.
    pub async fn put_page(&self, page: StatusPage) -> Result<(), PublicationError> {
        let slug_taken = |page: &StatusPage| {
            self.read()
                .page_by_slug
                .get(&page.slug)
                .is_some_and(|owner| *owner != page.id)
        };
        if slug_taken(&page) {
            return Err(PublicationError::SlugTaken(page.slug));
        }
        let (id, slug) = (page.id, page.slug.clone());
        let publication = Publication::StatusPage(page);
        self.log
            .write(SettingWrite {
                change: SettingChange::Publication(PublicationChange::Put(publication.clone())),
                locally: move || async move {
                    let _changing = self.changes.lock().await;
                    if let Publication::StatusPage(page) = &publication
                        && slug_taken(page)
                    {
                        return Err(PublicationError::SlugTaken(page.slug.clone()));
                    }
                    self.store.put_publication(&publication).await?;
                    self.write().insert(publication);
                    Ok(())
                },
                // The fold does not apply a page whose slug another took first in the log.
                folded: move || match self.page(id) {
                    Some(applied) if applied.slug == slug => Ok(()),
                    _ => Err(PublicationError::SlugTaken(slug)),
                },
            })
            .await
    }

    /// Removes a status page durably, then from memory; `false` if there is none.
    pub async fn remove_page(&self, id: StatusPageId) -> Result<bool, PublicationError> {
        if self.page(id).is_none() {
            return Ok(false);
        }
        self.log
            .write(SettingWrite {
                change: SettingChange::Publication(PublicationChange::Removed(*id.as_bytes())),
                locally: move || async move {
                    let _changing = self.changes.lock().await;
                    let Some(page) = self.page(id) else {
                        return Ok(false);
                    };
                    self.store.remove_publication(*id.as_bytes()).await?;
                    let mut records = self.write();
                    records.pages.remove(&id);
                    records.page_by_slug.remove(&page.slug);
                    Ok(true)
                },
                folded: || Ok(true),
            })
            .await
    }

    // A panic while holding the lock cannot leave the maps half-changed in a way that
    // matters (a stale index entry finds nothing), so a poisoned lock is still good.
    fn read(&self) -> RwLockReadGuard<'_, Records> {
        self.records.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Records> {
        self.records.write().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A fresh badge key: 128 bits from the OS generator, URL-safe base64.
pub fn new_badge_key() -> Result<String, ApiError> {
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|error| ApiError::Internal(format!("OS random generator failed: {error}")))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/api/badges", post(create_badge).get(list_badges))
        .route("/api/badges/{id}", get(get_badge).delete(delete_badge))
        .route(
            "/api/status-pages",
            post(create_status_page).get(list_status_pages),
        )
        .route(
            "/api/status-pages/{id}",
            get(get_status_page)
                .patch(update_status_page)
                .delete(delete_status_page),
        )
        .route_layer(middleware::from_fn_with_state(state, require_access))
}

/// The badge a request asks for, checked: a monitor that exists or a tag, and an
/// optional label.
pub fn badge_from_fields(
    state: &AppState,
    fields: &Map<String, Value>,
) -> Result<(Target, Option<String>), ApiError> {
    refuse_unknown_fields(fields, &["monitor", "tag", "label"])?;
    let monitor = match fields.get("monitor") {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) => Some(existing_monitor(state, id, "monitor")?),
        Some(_) => {
            return Err(ApiError::Unprocessable(
                "monitor must be a monitor id".to_owned(),
            ));
        }
    };
    let tag = match fields.get("tag") {
        None | Some(Value::Null) => None,
        Some(value) => Some(parse_tag(value, "tag")?),
    };
    let target = match (monitor, tag) {
        (Some(monitor), None) => Target::Monitor(monitor),
        (None, Some(tag)) => Target::Tag(tag),
        _ => {
            return Err(ApiError::Unprocessable(
                "a badge shows either a monitor or a tag: give one of monitor and tag".to_owned(),
            ));
        }
    };
    let label = match fields.get("label") {
        None | Some(Value::Null) => None,
        Some(Value::String(label)) => match check_name(label) {
            Ok(()) if label.chars().count() <= MAX_LABEL_CHARS => Some(label.clone()),
            Ok(()) => {
                return Err(ApiError::Unprocessable(format!(
                    "label must be 1 to {MAX_LABEL_CHARS} characters"
                )));
            }
            Err(error) => return Err(ApiError::Unprocessable(format!("label {error}"))),
        },
        Some(_) => return Err(ApiError::Unprocessable("label must be a string".to_owned())),
    };
    Ok((target, label))
}

/// The most characters of a badge's label.
pub const MAX_LABEL_CHARS: usize = 100;

fn existing_monitor(state: &AppState, text: &str, field: &str) -> Result<MonitorId, ApiError> {
    MonitorId::parse(text)
        .filter(|id| state.registry.directory().by_id(*id).is_some())
        .ok_or_else(|| ApiError::Unprocessable(format!("{field}: unknown monitor id {text}")))
}

fn parse_tag(value: &Value, field: &str) -> Result<String, ApiError> {
    match value {
        Value::String(tag) if (1..=MAX_TAG_CHARS).contains(&tag.chars().count()) => Ok(tag.clone()),
        _ => Err(ApiError::Unprocessable(format!(
            "{field} must be a string of 1 to {MAX_TAG_CHARS} characters"
        ))),
    }
}

async fn create_badge(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let fields = json_object(body)?;
    let (target, label) = badge_from_fields(&state, &fields)?;
    let now = state.clock.now();
    let badge = Badge {
        id: BadgeId::generate(now),
        key: new_badge_key()?,
        target,
        label,
        created_at: now,
    };
    state.publications.add_badge(badge.clone()).await?;
    Ok((StatusCode::CREATED, Json(badge_json(&state, &badge))))
}

async fn list_badges(State(state): State<AppState>) -> Json<Value> {
    let listed: Vec<Value> = state
        .publications
        .badges()
        .iter()
        .map(|badge| badge_json(&state, badge))
        .collect();
    Json(json!({ "badges": listed }))
}

fn badge_id(text: &str) -> Result<BadgeId, ApiError> {
    BadgeId::parse(text).ok_or(ApiError::NotFound("badge not found"))
}

async fn get_badge(
    State(state): State<AppState>,
    PathParam(id): PathParam,
) -> Result<Json<Value>, ApiError> {
    let id = badge_id(&id)?;
    state
        .publications
        .badges()
        .iter()
        .find(|badge| badge.id == id)
        .map(|badge| Json(badge_json(&state, badge)))
        .ok_or(ApiError::NotFound("badge not found"))
}

async fn delete_badge(
    State(state): State<AppState>,
    PathParam(id): PathParam,
) -> Result<StatusCode, ApiError> {
    if state.publications.remove_badge(badge_id(&id)?).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound("badge not found"))
    }
}

/// The Badge object (`docs/api.md`, "Badges").
pub fn badge_json(state: &AppState, badge: &Badge) -> Value {
    let (monitor, tag) = match &badge.target {
        Target::Monitor(id) => (Some(id.to_string()), None),
        Target::Tag(tag) => (None, Some(tag.clone())),
    };
    let base = format!("{}/badge/{}", state.public_url, badge.key);
    json!({
        "id": badge.id.to_string(),
        "key": badge.key,
        "monitor": monitor,
        "tag": tag,
        "label": badge.label,
        "created_at": badge.created_at.to_rfc3339(),
        "svg_url": format!("{base}.svg"),
        "json_url": format!("{base}.json"),
    })
}

const STATUS_PAGE_FIELDS: &[&str] = &["slug", "title", "monitors", "tags"];

/// The fields of a status page's body that are present, checked.
struct PageFields {
    slug: Option<String>,
    title: Option<String>,
    targets: Option<Vec<Target>>,
}

fn page_fields(state: &AppState, fields: &Map<String, Value>) -> Result<PageFields, ApiError> {
    refuse_unknown_fields(fields, STATUS_PAGE_FIELDS)?;
    let slug = match fields.get("slug") {
        None => None,
        Some(Value::String(slug)) => {
            check_slug(slug).map_err(|error| ApiError::Unprocessable(error.to_owned()))?;
            Some(slug.clone())
        }
        Some(_) => {
            return Err(ApiError::Unprocessable(SLUG_RULE.to_owned()));
        }
    };
    let title = parse_name(fields.get("title")).map_err(|error| retitle(error, "name", "title"))?;
    let monitors = match fields.get("monitors") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) if items.len() <= MAX_PAGE_MONITORS => {
            let mut ids = Vec::with_capacity(items.len());
            for item in items {
                let text = item.as_str().ok_or_else(monitors_error)?;
                let id = existing_monitor(state, text, "monitors")?;
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
            Some(ids)
        }
        Some(_) => return Err(monitors_error()),
    };
    let tags = match fields.get("tags") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) if items.len() <= MAX_TAGS => {
            let mut tags: Vec<String> = Vec::with_capacity(items.len());
            for item in items {
                let tag = parse_tag(item, "tags")?;
                if !tags.contains(&tag) {
                    tags.push(tag);
                }
            }
            Some(tags)
        }
        Some(_) => {
            return Err(ApiError::Unprocessable(format!(
                "tags must be an array of at most {MAX_TAGS} strings"
            )));
        }
    };
    let targets = match (monitors, tags) {
        (None, None) => None,
        (monitors, tags) => Some(
            monitors
                .unwrap_or_default()
                .into_iter()
                .map(Target::Monitor)
                .chain(tags.unwrap_or_default().into_iter().map(Target::Tag))
                .collect(),
        ),
    };
    Ok(PageFields {
        slug,
        title,
        targets,
    })
}

/// The same error, naming `to` instead of `from` (a title is checked as names are).
fn retitle(error: ApiError, from: &str, to: &str) -> ApiError {
    match error {
        ApiError::Unprocessable(message) => ApiError::Unprocessable(message.replacen(from, to, 1)),
        other => other,
    }
}

fn monitors_error() -> ApiError {
    ApiError::Unprocessable(format!(
        "monitors must be an array of at most {MAX_PAGE_MONITORS} monitor ids"
    ))
}

/// Creates a status page from the API's fields.
pub async fn create_page(
    state: &AppState,
    fields: &Map<String, Value>,
) -> Result<StatusPage, ApiError> {
    let fields = page_fields(state, fields)?;
    let slug = fields
        .slug
        .ok_or_else(|| ApiError::Unprocessable("slug is required".to_owned()))?;
    let title = fields
        .title
        .ok_or_else(|| ApiError::Unprocessable("title is required".to_owned()))?;
    let now = state.clock.now();
    let page = StatusPage {
        id: StatusPageId::generate(now),
        slug,
        title,
        targets: fields.targets.unwrap_or_default(),
        created_at: now,
    };
    state.publications.put_page(page.clone()).await?;
    Ok(page)
}

/// Changes the fields of status page `id` that `fields` has.
pub async fn update_page(
    state: &AppState,
    id: StatusPageId,
    fields: &Map<String, Value>,
) -> Result<StatusPage, ApiError> {
    let changes = page_fields(state, fields)?;
    let mut page = state
        .publications
        .page(id)
        .ok_or(ApiError::NotFound("status page not found"))?;
    if let Some(slug) = changes.slug {
        page.slug = slug;
    }
    if let Some(title) = changes.title {
        page.title = title;
    }
    if let Some(targets) = changes.targets {
        // Only the kinds given are replaced: `{"tags": […]}` keeps the monitors.
        let keep_monitors = !fields.contains_key("monitors") || fields["monitors"].is_null();
        let keep_tags = !fields.contains_key("tags") || fields["tags"].is_null();
        let kept = page.targets.iter().filter(|target| match target {
            Target::Monitor(_) => keep_monitors,
            Target::Tag(_) => keep_tags,
        });
        let mut merged: Vec<Target> = kept.cloned().collect();
        merged.extend(targets);
        merged.sort_by_key(|target| matches!(target, Target::Tag(_)));
        page.targets = merged;
    }
    state.publications.put_page(page.clone()).await?;
    Ok(page)
}

async fn create_status_page(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let fields = json_object(body)?;
    let page = create_page(&state, &fields).await?;
    Ok((StatusCode::CREATED, Json(page_json(&state, &page))))
}

async fn list_status_pages(State(state): State<AppState>) -> Json<Value> {
    let listed: Vec<Value> = state
        .publications
        .pages()
        .iter()
        .map(|page| page_json(&state, page))
        .collect();
    Json(json!({ "status_pages": listed }))
}

fn page_id(text: &str) -> Result<StatusPageId, ApiError> {
    StatusPageId::parse(text).ok_or(ApiError::NotFound("status page not found"))
}

async fn get_status_page(
    State(state): State<AppState>,
    PathParam(id): PathParam,
) -> Result<Json<Value>, ApiError> {
    state
        .publications
        .page(page_id(&id)?)
        .map(|page| Json(page_json(&state, &page)))
        .ok_or(ApiError::NotFound("status page not found"))
}

async fn update_status_page(
    State(state): State<AppState>,
    PathParam(id): PathParam,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let id = page_id(&id)?;
    let fields = json_object(body)?;
    let page = update_page(&state, id, &fields).await?;
    Ok(Json(page_json(&state, &page)))
}

async fn delete_status_page(
    State(state): State<AppState>,
    PathParam(id): PathParam,
) -> Result<StatusCode, ApiError> {
    if state.publications.remove_page(page_id(&id)?).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound("status page not found"))
    }
}

/// The StatusPage object (`docs/api.md`, "Status pages").
pub fn page_json(state: &AppState, page: &StatusPage) -> Value {
    let monitors: Vec<String> = page
        .targets
        .iter()
        .filter_map(|target| match target {
            Target::Monitor(id) => Some(id.to_string()),
            Target::Tag(_) => None,
        })
        .collect();
    let tags: Vec<&str> = page
        .targets
        .iter()
        .filter_map(|target| match target {
            Target::Tag(tag) => Some(tag.as_str()),
            Target::Monitor(_) => None,
        })
        .collect();
    json!({
        "id": page.id.to_string(),
        "slug": page.slug,
        "title": page.title,
        "monitors": monitors,
        "tags": tags,
        "created_at": page.created_at.to_rfc3339(),
        "url": format!("{}/status/{}", state.public_url, page.slug),
    })
}
