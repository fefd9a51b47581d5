//! Reading a push's parameters from its query and body (JSON, a form, multipart, or
//! text as a run's output) and checking them: `docs/push.md`.

use super::*;
use crate::domain::event::{InstanceName, MAX_INSTANCE_BYTES};

/// What a push asks: a plain heartbeat (the hot path), or a job's signal (`kind`,
/// `exit` or `rid` given).
pub(crate) enum Push {
    Heartbeat(Heartbeat),
    Signal(Signal),
}

/// Raw parameters before validation; the JSON body's fields win over the query's.
#[derive(Default)]
struct RawParams {
    status: Option<String>,
    msg: Option<String>,
    value: Option<RawValue>,
    /// Uptime Kuma's round-trip time: kept as the value when no `value` is given.
    ping: Option<String>,
    rid: Option<String>,
    kind: Option<String>,
    exit: Option<String>,
    /// A fleet's instance (`instance=`).
    instance: Option<String>,
}

enum RawValue {
    Text(String),
    Number(f64),
}

impl RawParams {
    /// Takes every field `body` has; the others keep their values (the query's).
    fn override_with(&mut self, body: RawParams) {
        self.status = body.status.or(self.status.take());
        self.msg = body.msg.or(self.msg.take());
        self.value = body.value.or(self.value.take());
        self.ping = body.ping.or(self.ping.take());
        self.rid = body.rid.or(self.rid.take());
        self.kind = body.kind.or(self.kind.take());
        self.exit = body.exit.or(self.exit.take());
        self.instance = body.instance.or(self.instance.take());
    }

    /// Takes `status`, `msg` and `value` from a form-encoded string (a query or a form
    /// body); a later occurrence of a name wins, other names are ignored.
    fn merge_form(&mut self, form: &[u8]) {
        for (key, value) in form_urlencoded::parse(form) {
            match &*key {
                "status" => self.status = Some(value.into_owned()),
                "msg" => self.msg = Some(value.into_owned()),
                "value" => self.value = Some(RawValue::Text(value.into_owned())),
                "ping" => self.ping = Some(value.into_owned()),
                "rid" => self.rid = Some(value.into_owned()),
                "kind" => self.kind = Some(value.into_owned()),
                "exit" => self.exit = Some(value.into_owned()),
                "instance" => self.instance = Some(value.into_owned()),
                _ => {}
            }
        }
    }
}

/// A push's parameters from its query, headers and body (also `fuzzing.rs`'s entry).
pub(crate) fn parse_push(
    query: Option<&str>,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Push, ApiError> {
    let mut params = RawParams::default();
    if let Some(query) = query {
        params.merge_form(query.as_bytes());
    }
    let trimmed = body.trim_ascii();
    if trimmed.is_empty() {
        return validate(params);
    }
    let mut text_body = false;
    if is_json(headers) || trimmed.starts_with(b"{") {
        // `curl -d '{"status":"down"}'` sends JSON labelled as a form: honour it, or a
        // job's failure report would be recorded as a success.
        merge_json_body(&mut params, trimmed)?;
    } else if is_form(headers) {
        std::str::from_utf8(trimmed)
            .map_err(|_| ApiError::BadRequest("form body is not UTF-8".to_owned()))?;
        let mut form = RawParams::default();
        form.merge_form(trimmed);
        params.override_with(form);
    } else if let Some(boundary) = multipart_boundary(headers) {
        params.override_with(multipart_fields(body.clone(), boundary?)?);
    } else if looks_like_parameters(trimmed) {
        // A body of another type (text/plain: what `fetch` sends with a string) is
        // output, not parameters; one that is nothing but push parameters would
        // otherwise be a failure report recorded as a success.
        return Err(ApiError::BadRequest(
            "parameters in a body of this content type are not read: send status, msg \
             and value in the query string, as a form (application/x-www-form-urlencoded \
             or multipart/form-data) or as JSON"
                .to_owned(),
        ));
    } else if !trimmed.is_empty() {
        text_body = true;
    }
    match validate(params)? {
        // A body of parameters is no output; any other (`text/plain`, …) is the run's,
        // cut to the ping body limit in `accept`. A heartbeat ignores it.
        Push::Signal(mut signal) if text_body => {
            signal.output = Output::from_body(&body, MAX_OUTPUT_LIMIT);
            Ok(Push::Signal(signal))
        }
        push => Ok(push),
    }
}

/// The boundary of a `multipart/form-data` body (`curl -F`): `None` for another type,
/// an error for a multipart type without a boundary.
fn multipart_boundary(headers: &HeaderMap) -> Option<Result<String, ApiError>> {
    let content_type = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    Some(multer::parse_boundary(content_type).map_err(|_| {
        ApiError::BadRequest("multipart/form-data body without a boundary".to_owned())
    }))
}

/// The push parameters from a `multipart/form-data` body, each part's content
/// as UTF-8 text (a file part too); a later part of the same name wins, other names
/// are ignored.
fn multipart_fields(body: Bytes, boundary: String) -> Result<RawParams, ApiError> {
    let bad = |error: multer::Error| {
        ApiError::BadRequest(format!("multipart/form-data body does not parse: {error}"))
    };
    let parse = async move {
        let mut multipart = multer::Multipart::new(Body::from(body).into_data_stream(), boundary);
        let mut params = RawParams::default();
        while let Some(field) = multipart.next_field().await.map_err(bad)? {
            let name = field.name().map(str::to_owned);
            let content = field.bytes().await.map_err(bad)?;
            let text = || {
                String::from_utf8(content.to_vec()).map_err(|_| {
                    ApiError::BadRequest("multipart/form-data field is not UTF-8".to_owned())
                })
            };
            match name.as_deref() {
                Some("status") => params.status = Some(text()?),
                Some("msg") => params.msg = Some(text()?),
                Some("value") => params.value = Some(RawValue::Text(text()?)),
                Some("ping") => params.ping = Some(text()?),
                Some("rid") => params.rid = Some(text()?),
                Some("kind") => params.kind = Some(text()?),
                Some("exit") => params.exit = Some(text()?),
                Some("instance") => params.instance = Some(text()?),
                _ => {}
            }
        }
        Ok(params)
    };
    // multer reads a stream, but this one is in memory and always ready: one poll
    // finishes. Were it to wait anyway, that could only be for bytes a malformed body
    // lacks, so that is a 400 rather than a wait for bytes that will never come.
    let mut parse = std::pin::pin!(parse);
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    match parse.as_mut().poll(&mut context) {
        std::task::Poll::Ready(result) => result,
        std::task::Poll::Pending => Err(ApiError::BadRequest(
            "multipart/form-data body is incomplete".to_owned(),
        )),
    }
}

/// Whether a body is nothing but push parameters, form-encoded (`status=down`,
/// `msg=…&value=…`): every `&`-separated pair has an `=` and one of their names.
fn looks_like_parameters(body: &[u8]) -> bool {
    body.contains(&b'=')
        && form_urlencoded::parse(body).all(|(key, _)| {
            matches!(
                &*key,
                "status" | "msg" | "value" | "ping" | "rid" | "kind" | "exit" | "instance"
            )
        })
        && body
            .split(|byte| *byte == b'&')
            .all(|pair| pair.is_empty() || pair.contains(&b'='))
}

/// A form body (`curl -d status=down`), or a body with no content type at all.
fn is_form(headers: &HeaderMap) -> bool {
    match headers.get(header::CONTENT_TYPE) {
        None => true,
        Some(value) => value.to_str().is_ok_and(|value| {
            value
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        }),
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            let essence = value.split(';').next().unwrap_or("").trim();
            essence.eq_ignore_ascii_case("application/json")
                || essence.to_ascii_lowercase().ends_with("+json")
        })
}

fn merge_json_body(params: &mut RawParams, body: &[u8]) -> Result<(), ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|error| ApiError::BadRequest(format!("body is not valid JSON: {error}")))?;
    let Value::Object(fields) = value else {
        return Err(ApiError::BadRequest(
            "body must be a JSON object".to_owned(),
        ));
    };
    merge_json_fields(params, fields)
}

/// One item of a bulk push (`POST /api/push`, `ingest.rs`): a JSON object with a
/// single push's JSON fields (`status`, `msg`, `value`, validated alike) and its
/// `token` and `instance`. Everything but the token is checked here, before the
/// token is looked up. A job's fields (`kind`, `rid`, `exit`) are refused: a bulk
/// item is a heartbeat.
pub(crate) fn bulk_item(item: Value) -> Result<(String, Heartbeat), ApiError> {
    let Value::Object(mut fields) = item else {
        return Err(ApiError::BadRequest(
            "an item must be a JSON object".to_owned(),
        ));
    };
    let token = match fields.remove("token") {
        Some(Value::String(token)) => token,
        None | Some(Value::Null) => {
            return Err(ApiError::BadRequest("token is missing".to_owned()));
        }
        Some(_) => return Err(ApiError::BadRequest("token must be a string".to_owned())),
    };
    if ["kind", "rid", "exit", "ping"]
        .iter()
        .any(|field| fields.get(*field).is_some_and(|value| !value.is_null()))
    {
        return Err(ApiError::BadRequest(
            "a bulk item is a heartbeat: kind, rid, exit and ping are not taken (send a \
             job's signals to its push URL)"
                .to_owned(),
        ));
    }
    let instance = match fields.remove("instance") {
        None | Some(Value::Null) => None,
        Some(Value::String(instance)) => Some(instance),
        Some(_) => {
            return Err(ApiError::BadRequest("instance must be a string".to_owned()));
        }
    };
    let mut params = RawParams::default();
    merge_json_fields(&mut params, fields)?;
    let heartbeat = match validate(params)? {
        Push::Heartbeat(heartbeat) => heartbeat,
        Push::Signal(_) => {
            return Err(ApiError::BadRequest(
                "a bulk item is a heartbeat".to_owned(),
            ));
        }
    };
    let heartbeat = with_instance(heartbeat, instance)?;
    Ok((token, heartbeat))
}

/// `heartbeat` with the instance it names, validated.
fn with_instance(
    mut heartbeat: Heartbeat,
    instance: Option<String>,
) -> Result<Heartbeat, ApiError> {
    let Some(instance) = instance else {
        return Ok(heartbeat);
    };
    let name = InstanceName::parse(&instance).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "instance must be 1 to {MAX_INSTANCE_BYTES} characters of A-Z, a-z, 0-9, '.', \
             '_', ':' and '-', not {:?}",
            truncate_for_error(&instance)
        ))
    })?;
    heartbeat.instance = Some(name);
    Ok(heartbeat)
}

fn merge_json_fields(
    params: &mut RawParams,
    mut fields: serde_json::Map<String, Value>,
) -> Result<(), ApiError> {
    match fields.remove("status") {
        None | Some(Value::Null) => {}
        Some(Value::String(status)) => params.status = Some(status),
        Some(_) => {
            return Err(ApiError::BadRequest(
                "status must be \"up\" or \"down\"".to_owned(),
            ));
        }
    }
    match fields.remove("msg") {
        None | Some(Value::Null) => {}
        Some(Value::String(msg)) => params.msg = Some(msg),
        Some(_) => return Err(ApiError::BadRequest("msg must be a string".to_owned())),
    }
    for (field, param) in [
        ("rid", &mut params.rid),
        ("kind", &mut params.kind),
        ("exit", &mut params.exit),
        ("instance", &mut params.instance),
    ] {
        match fields.remove(field) {
            None | Some(Value::Null) => {}
            Some(Value::String(text)) => *param = Some(text),
            Some(Value::Number(number)) if field == "exit" => *param = Some(number.to_string()),
            Some(_) => return Err(ApiError::BadRequest(format!("{field} must be a string"))),
        }
    }
    match fields.remove("value") {
        None | Some(Value::Null) => {}
        Some(Value::Number(number)) => {
            let number = number
                .as_f64()
                .ok_or_else(|| ApiError::BadRequest("value must be a finite number".to_owned()))?;
            params.value = Some(RawValue::Number(number));
        }
        Some(Value::String(text)) => params.value = Some(RawValue::Text(text)),
        Some(_) => {
            return Err(ApiError::BadRequest(
                "value must be a finite number".to_owned(),
            ));
        }
    }
    Ok(())
}

fn validate(params: RawParams) -> Result<Push, ApiError> {
    let status = match params.status.as_deref() {
        None => PushStatus::Up,
        Some(text) => PushStatus::parse(text).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "status must be \"up\" or \"down\", not {:?}",
                truncate_for_error(text)
            ))
        })?,
    };
    // Kuma sends `ping=` empty when it has no round-trip time: that is no value. A
    // `value` wins over a `ping`, which is then not looked at.
    let ping = params.ping.filter(|ping| !ping.trim().is_empty());
    let (field, raw) = match (params.value, ping) {
        (Some(value), _) => ("value", Some(value)),
        (None, ping) => ("ping", ping.map(RawValue::Text)),
    };
    let value = match raw {
        None => None,
        Some(RawValue::Number(number)) => Some(number),
        Some(RawValue::Text(text)) => Some(text.trim().parse::<f64>().map_err(|_| {
            ApiError::BadRequest(format!(
                "{field} must be a finite number, not {:?}",
                truncate_for_error(&text)
            ))
        })?),
    };
    if value.is_some_and(|number| !number.is_finite()) {
        return Err(ApiError::BadRequest(format!(
            "{field} must be a finite number"
        )));
    }
    let instance = match params.instance.as_deref() {
        None => None,
        Some(text) => Some(InstanceName::parse(text).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "instance must be 1 to {MAX_INSTANCE_BYTES} letters, digits, '.', '_', ':' \
                 or '-', not {:?}",
                truncate_for_error(text)
            ))
        })?),
    };
    let heartbeat = Heartbeat {
        instance,
        ..Heartbeat::new(status, params.msg.map(HeartbeatText::truncated), value)
    };
    let given = params.status.as_deref();
    match signal_params::signal(heartbeat, given, params.rid, params.kind, params.exit)? {
        Ok(signal) => Ok(Push::Signal(signal)),
        Err(heartbeat) => Ok(Push::Heartbeat(heartbeat)),
    }
}

/// Echoes at most a few characters of bad input back.
fn truncate_for_error(text: &str) -> String {
    text.chars().take(32).collect()
}
