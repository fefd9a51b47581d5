//! Creating, editing, pausing, resuming, rotating and deleting a monitor from the pages.

use super::*;

/// A channel to tick in the monitor form.
pub struct ChannelChoice {
    pub id: String,
    pub name: String,
    pub kind: &'static str,
    pub checked: bool,
}

/// What the monitor form shows, as typed.
#[derive(Default)]
pub struct MonitorFormValues {
    pub name: String,
    pub timeout: String,
    pub interval: String,
    pub tags: String,
    /// `key=value` pairs, comma-separated.
    pub labels: String,
    pub severity: String,
    pub channels: Vec<String>,
    /// Addresses and CIDR ranges, comma-separated.
    pub allowed_sources: String,
    /// A new signing secret as typed; never filled in from the monitor (the secret is
    /// write-only), and never shown back.
    pub signing_secret: String,
    /// Ticked: stop requiring signed pushes.
    pub remove_secret: bool,
    /// Whether the monitor being edited requires signed pushes (shown, not sent).
    pub signed: bool,
}

#[derive(Template)]
#[template(path = "monitor_form.html")]
struct MonitorForm {
    page: Page,
    heading: String,
    action: String,
    submit: &'static str,
    back: String,
    error: Option<String>,
    form: MonitorFormValues,
    channels: Vec<ChannelChoice>,
}

pub(super) fn channel_choices(state: &AppState, ticked: &[String]) -> Vec<ChannelChoice> {
    state
        .channels
        .list()
        .into_iter()
        .map(|channel| {
            let id = channel.id.to_string();
            ChannelChoice {
                checked: ticked.contains(&id),
                id,
                name: channel.name,
                kind: channel.kind.name(),
            }
        })
        .collect()
}

/// The form's values as the API's fields: durations in seconds, tags and channels as
/// arrays. A duration that cannot be read is an error naming its field.
pub(super) fn api_fields(
    values: &MonitorFormValues,
    editing: bool,
) -> Result<Map<String, Value>, String> {
    let mut fields = Map::new();
    fields.insert("name".to_owned(), json!(values.name));
    fields.insert(
        "timeout_seconds".to_owned(),
        json!(form_seconds("timeout", &values.timeout)?),
    );
    match values.interval.trim() {
        "" if editing => {}
        "" => {
            fields.insert("interval_seconds".to_owned(), Value::Null);
        }
        text => {
            fields.insert(
                "interval_seconds".to_owned(),
                json!(form_seconds("interval", text)?),
            );
        }
    }
    let tags: Vec<&str> = values
        .tags
        .split(',')
        .map(str::trim)
        .filter(|tag| !tag.is_empty())
        .collect();
    fields.insert("tags".to_owned(), json!(tags));
    let mut labels = Map::new();
    for pair in values.labels.split(',').map(str::trim) {
        if pair.is_empty() {
            continue;
        }
        let Some((key, value)) = pair.split_once('=') else {
            return Err(format!("labels: {pair:?} is not key=value"));
        };
        labels.insert(key.trim().to_owned(), json!(value.trim()));
    }
    fields.insert("labels".to_owned(), Value::Object(labels));
    if !values.severity.trim().is_empty() {
        fields.insert("severity".to_owned(), json!(values.severity.trim()));
    }
    fields.insert("channels".to_owned(), json!(values.channels));
    let sources: Vec<&str> = values
        .allowed_sources
        .split(',')
        .map(str::trim)
        .filter(|source| !source.is_empty())
        .collect();
    fields.insert("allowed_sources".to_owned(), json!(sources));
    if !values.signing_secret.trim().is_empty() {
        fields.insert(
            "signing_secret".to_owned(),
            json!(values.signing_secret.trim()),
        );
    } else if values.remove_secret {
        fields.insert("signing_secret".to_owned(), Value::Null);
    }
    Ok(fields)
}

/// Whole seconds from `90`, `90s`, `5m`, `1h 30m`, `1d`.
pub(super) fn form_seconds(field: &str, text: &str) -> Result<u64, String> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(seconds);
    }
    humantime::parse_duration(text)
        .map(|duration| duration.as_secs())
        .map_err(|_| format!("{field}: {text:?} is not a duration such as 90s, 5m, 2h or 1d"))
}

pub(super) fn form_values(fields: &[(String, String)]) -> MonitorFormValues {
    MonitorFormValues {
        name: field(fields, "name").unwrap_or_default(),
        timeout: field(fields, "timeout").unwrap_or_default(),
        interval: field(fields, "interval").unwrap_or_default(),
        tags: field(fields, "tags").unwrap_or_default(),
        labels: field(fields, "labels").unwrap_or_default(),
        severity: field(fields, "severity").unwrap_or_default(),
        allowed_sources: field(fields, "allowed_sources").unwrap_or_default(),
        signing_secret: field(fields, "signing_secret").unwrap_or_default(),
        remove_secret: field(fields, "remove_secret").is_some(),
        signed: false,
        channels: fields
            .iter()
            .filter(|(name, _)| name == "channels")
            .map(|(_, value)| value.clone())
            .collect(),
    }
}

/// `GET /monitors/new`.
pub async fn new_form(
    State(state): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Extension(viewer): Extension<Viewer>,
) -> Response {
    let values = MonitorFormValues {
        timeout: "5m".to_owned(),
        severity: "critical".to_owned(),
        ..MonitorFormValues::default()
    };
    monitor_form(&state, &web, &viewer, None, values, None, StatusCode::OK).await
}

#[allow(clippy::too_many_arguments)] // The form's parts; one private helper.
pub(super) async fn monitor_form(
    state: &AppState,
    web: &Web,
    viewer: &Viewer,
    editing: Option<&Monitor>,
    form: MonitorFormValues,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let (heading, action, submit, back) = match editing {
        Some(monitor) => (
            format!("Edit {}", monitor.config.name),
            format!("/monitors/{}/edit", monitor.id),
            "Save",
            format!("/monitors/{}", monitor.id),
        ),
        None => (
            "New monitor".to_owned(),
            "/monitors/new".to_owned(),
            "Create monitor",
            "/".to_owned(),
        ),
    };
    let channels = channel_choices(state, &form.channels);
    let mut form = form;
    // The secret typed is not sent back in the page; whether the monitor has one is.
    form.signing_secret = String::new();
    form.signed = editing.is_some_and(|monitor| monitor.config.signing_secret.is_some());
    render(
        status,
        &MonitorForm {
            page: Page::new(heading.clone(), "monitors", viewer, web.counts().await),
            heading,
            action,
            submit,
            back,
            error,
            form,
            channels,
        },
    )
}

/// `POST /monitors/new`.
pub async fn create(
    State(state): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Extension(viewer): Extension<Viewer>,
    body: Bytes,
) -> Response {
    let values = form_values(&form(&body));
    let config = api_fields(&values, false)
        .map_err(ApiError::Unprocessable)
        .and_then(|fields| config_from_fields(&fields, state.clock.now()));
    let created = match config {
        Ok((config, token)) => state
            .registry
            .create_with_token(config, token)
            .await
            .map_err(ApiError::from),
        Err(error) => Err(error),
    };
    match created {
        Ok(monitor) => {
            web.board.invalidate().await;
            let mut api = monitor_json(&state, &monitor);
            redact_credentials(viewer.principal, &mut api);
            web.sessions.flash(
                &viewer,
                Flash {
                    ok: true,
                    text: format!("Created “{}”. Its push URL:", monitor.config.name),
                    copy: api
                        .get("push_url")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                },
            );
            see_other(&format!("/monitors/{}", monitor.id))
        }
        Err(error) => {
            monitor_form(
                &state,
                &web,
                &viewer,
                None,
                values,
                Some(error.to_string()),
                error.status(),
            )
            .await
        }
    }
}

/// `GET /monitors/{id}/edit`.
pub async fn edit_form(
    State(state): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Extension(viewer): Extension<Viewer>,
    PathParam(id): PathParam,
) -> Response {
    let monitor = match find(&state, &web, &viewer, &id).await {
        Ok(monitor) => monitor,
        Err(response) => return response,
    };
    let values = MonitorFormValues {
        name: monitor.config.name.clone(),
        timeout: seconds_text(monitor.config.timeout_seconds),
        interval: seconds_text(monitor.config.interval_seconds),
        tags: monitor.config.tags.join(", "),
        labels: monitor
            .config
            .labels
            .iter()
            .map(|(key, value)| format!("{key}={value}"))
            .collect::<Vec<_>>()
            .join(", "),
        severity: monitor.config.severity.as_str().to_owned(),
        allowed_sources: crate::http::monitor_fields::allowed_sources_text(
            &monitor.config.allowed_sources,
        )
        .join(", "),
        signing_secret: String::new(),
        remove_secret: false,
        signed: monitor.config.signing_secret.is_some(),
        channels: monitor
            .config
            .channels
            .iter()
            .map(ToString::to_string)
            .collect(),
    };
    monitor_form(
        &state,
        &web,
        &viewer,
        Some(&monitor),
        values,
        None,
        StatusCode::OK,
    )
    .await
}

/// `POST /monitors/{id}/edit`.
pub async fn edit(
    State(state): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Extension(viewer): Extension<Viewer>,
    PathParam(id): PathParam,
    body: Bytes,
) -> Response {
    let monitor = match find(&state, &web, &viewer, &id).await {
        Ok(monitor) => monitor,
        Err(response) => return response,
    };
    let values = form_values(&form(&body));
    let patch = api_fields(&values, true)
        .map_err(ApiError::Unprocessable)
        .and_then(|fields| patch_from_fields(&fields, state.clock.now()));
    let changed = match patch {
        Ok(patch) => state
            .registry
            .execute(monitor.id, Command::Update(patch))
            .await
            .map_err(ApiError::from),
        Err(error) => Err(error),
    };
    match changed {
        Ok(changed) => {
            web.board.invalidate().await;
            done(&web, &viewer, &changed, "Saved.")
        }
        Err(error) => {
            monitor_form(
                &state,
                &web,
                &viewer,
                Some(&monitor),
                values,
                Some(error.to_string()),
                error.status(),
            )
            .await
        }
    }
}

/// Back to the monitor's page with a message.
pub(super) fn done(web: &Web, viewer: &Viewer, monitor: &Monitor, text: &str) -> Response {
    web.sessions.flash(
        viewer,
        Flash {
            ok: true,
            text: text.to_owned(),
            copy: None,
        },
    );
    see_other(&format!("/monitors/{}", monitor.id))
}

/// Runs `command` on the monitor `id` and goes back to its page.
pub(super) async fn act(
    state: &AppState,
    web: &Web,
    viewer: &Viewer,
    id: &str,
    command: Command,
    text: &str,
) -> Response {
    let Some(id) = MonitorId::parse(id) else {
        return not_found(web, viewer).await;
    };
    match state.registry.execute(id, command).await {
        Ok(monitor) => {
            web.board.invalidate().await;
            done(web, viewer, &monitor, text)
        }
        Err(RegistryError::NotFound) => not_found(web, viewer).await,
        Err(error) => failed(web, viewer, error.into()).await,
    }
}

/// `POST /monitors/{id}/pause`.
pub async fn pause(
    State(state): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Extension(viewer): Extension<Viewer>,
    PathParam(id): PathParam,
) -> Response {
    act(
        &state,
        &web,
        &viewer,
        &id,
        Command::Pause,
        "Paused: no timeout, no alerts.",
    )
    .await
}

/// `POST /monitors/{id}/resume`.
pub async fn resume(
    State(state): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Extension(viewer): Extension<Viewer>,
    PathParam(id): PathParam,
) -> Response {
    act(
        &state,
        &web,
        &viewer,
        &id,
        Command::Resume,
        "Resumed: waiting for a heartbeat within the timeout.",
    )
    .await
}

/// The longest mute the page offers or takes, as the API's: a year.
const MAX_MUTE_SECONDS: u64 = 31_536_000;

/// `POST /monitors/{id}/mute`: `for` is `recovery` (acknowledged: until the next
/// recovery) or a duration (`1h`, `1d`…) from now.
pub async fn mute(
    State(state): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Extension(viewer): Extension<Viewer>,
    PathParam(id): PathParam,
    body: Bytes,
) -> Response {
    let choice = field(&form(&body), "for").unwrap_or_default();
    let (command, text) = if choice == "recovery" {
        (
            Command::Mute {
                until: None,
                until_recovery: true,
            },
            "Acknowledged: changes are recorded, and nothing is sent until it recovers.".to_owned(),
        )
    } else {
        let seconds = form_seconds("for", &choice)
            .ok()
            .filter(|seconds| (1..=MAX_MUTE_SECONDS).contains(seconds));
        let Some(seconds) = seconds else {
            let error =
                format!("for: {choice:?} is not \"recovery\" or a duration of at most a year");
            return failed(&web, &viewer, ApiError::Unprocessable(error)).await;
        };
        let until = state.clock.now().plus_seconds(seconds as u32);
        (
            Command::Mute {
                until: Some(until),
                until_recovery: false,
            },
            format!(
                "Muted until {}: changes are recorded, and nothing is sent.",
                until.to_rfc3339()
            ),
        )
    };
    act(&state, &web, &viewer, &id, command, &text).await
}

/// `POST /monitors/{id}/unmute`.
pub async fn unmute(
    State(state): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Extension(viewer): Extension<Viewer>,
    PathParam(id): PathParam,
) -> Response {
    act(
        &state,
        &web,
        &viewer,
        &id,
        Command::Unmute,
        "Unmuted: changes of state alert again.",
    )
    .await
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

/// `GET /monitors/{id}/rotate-token`: what rotating means, and the button.
pub async fn rotate_confirm(
    State(state): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Extension(viewer): Extension<Viewer>,
    PathParam(id): PathParam,
) -> Response {
    let monitor = match find(&state, &web, &viewer, &id).await {
        Ok(monitor) => monitor,
        Err(response) => return response,
    };
    confirm(
        &web,
        &viewer,
        &monitor,
        "Rotate the push token?",
        "The monitor gets a new push URL, shown on the next page. The current one stops \
         working at once: every job pushing to it must be changed, or the monitor goes down \
         at its next deadline.",
        "rotate-token",
        "Rotate token",
        false,
    )
    .await
}

/// `POST /monitors/{id}/rotate-token`: a new token; the next page shows its URL.
pub async fn rotate(
    State(state): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Extension(viewer): Extension<Viewer>,
    PathParam(id): PathParam,
) -> Response {
    let Some(id) = MonitorId::parse(&id) else {
        return not_found(&web, &viewer).await;
    };
    match state
        .registry
        .execute(id, Command::RotateToken(new_push_token()))
        .await
    {
        Ok(monitor) => {
            let api = monitor_json(&state, &monitor);
            web.sessions.flash(
                &viewer,
                Flash {
                    ok: true,
                    text: "Token rotated. The old push URL no longer works; the new one:"
                        .to_owned(),
                    copy: api
                        .get("push_url")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                },
            );
            see_other(&format!("/monitors/{}", monitor.id))
        }
        Err(RegistryError::NotFound) => not_found(&web, &viewer).await,
        Err(error) => failed(&web, &viewer, error.into()).await,
    }
}

/// `GET /monitors/{id}/delete`.
pub async fn delete_confirm(
    State(state): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Extension(viewer): Extension<Viewer>,
    PathParam(id): PathParam,
) -> Response {
    let monitor = match find(&state, &web, &viewer, &id).await {
        Ok(monitor) => monitor,
        Err(response) => return response,
    };
    confirm(
        &web,
        &viewer,
        &monitor,
        &format!("Delete “{}”?", monitor.config.name),
        "Its push URL stops working at once and its history is no longer shown. Alerts it \
         still owes are delivered.",
        "delete",
        "Delete monitor",
        true,
    )
    .await
}

#[allow(clippy::too_many_arguments)] // The page's parts; one private helper.
pub(super) async fn confirm(
    web: &Web,
    viewer: &Viewer,
    monitor: &Monitor,
    heading: &str,
    text: &str,
    action: &str,
    submit: &'static str,
    danger: bool,
) -> Response {
    render(
        StatusCode::OK,
        &Confirm {
            page: Page::new(heading, "monitors", viewer, web.counts().await),
            heading: heading.to_owned(),
            text: text.to_owned(),
            action: format!("/monitors/{}/{action}", monitor.id),
            submit,
            back: format!("/monitors/{}", monitor.id),
            danger,
        },
    )
}

/// `POST /monitors/{id}/delete`.
pub async fn delete(
    State(state): State<AppState>,
    Extension(web): Extension<Arc<Web>>,
    Extension(viewer): Extension<Viewer>,
    PathParam(id): PathParam,
) -> Response {
    let Some(id) = MonitorId::parse(&id) else {
        return not_found(&web, &viewer).await;
    };
    match state.registry.execute(id, Command::Delete).await {
        Ok(monitor) => {
            web.board.invalidate().await;
            web.sessions.flash(
                &viewer,
                Flash {
                    ok: true,
                    text: format!("Deleted “{}”.", monitor.config.name),
                    copy: None,
                },
            );
            see_other("/")
        }
        Err(RegistryError::NotFound) => not_found(&web, &viewer).await,
        Err(error) => failed(&web, &viewer, error.into()).await,
    }
}
