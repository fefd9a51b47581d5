//! Reading a channel's kind and settings from the API's JSON fields, each checked
//! with an error that names the field.

use super::*;

/// Reads a channel's kind and settings from JSON-like fields (the API body or a
/// monitors-file entry); the error names the field.
pub fn kind_from_fields(fields: &Map<String, Value>) -> Result<ChannelKind, String> {
    let kind = match fields.get("kind") {
        None => return Err("kind is required".to_owned()),
        Some(Value::String(kind)) => kind.as_str(),
        Some(_) => return Err(KIND_ERROR.to_owned()),
    };
    match kind {
        "webhook" => Ok(ChannelKind::Webhook {
            url: http_url(fields)?,
            secret: optional_string(fields, "secret")?,
        }),
        "slack" => Ok(ChannelKind::Slack {
            url: http_url(fields)?,
        }),
        "discord" => Ok(ChannelKind::Discord {
            url: http_url(fields)?,
        }),
        "alertmanager" => Ok(ChannelKind::Alertmanager {
            url: http_url(fields)?,
        }),
        "email" => {
            let smtp_url = required_string(fields, "smtp_url")?;
            email::check_smtp_url(&smtp_url).map_err(|error| format!("smtp_url: {error}"))?;
            let from = required_string(fields, "from")?;
            email::parse_mailbox(&from).map_err(|error| format!("from: {error}"))?;
            let to = match fields.get("to") {
                Some(Value::String(one)) => vec![one.clone()],
                Some(Value::Array(many)) if !many.is_empty() => many
                    .iter()
                    .map(|item| item.as_str().map(str::to_owned))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| TO_ERROR.to_owned())?,
                _ => return Err(TO_ERROR.to_owned()),
            };
            for address in &to {
                email::parse_mailbox(address).map_err(|error| format!("to: {error}"))?;
            }
            Ok(ChannelKind::Email { smtp_url, from, to })
        }
        "template" => {
            let method = match fields.get("method") {
                None | Some(Value::Null) => HttpMethod::Post,
                Some(Value::String(text)) => HttpMethod::parse(text)
                    .ok_or_else(|| "method must be one of POST, PUT, PATCH, GET".to_owned())?,
                Some(_) => return Err("method must be one of POST, PUT, PATCH, GET".to_owned()),
            };
            let headers = headers(fields)?;
            let body = match fields.get("body") {
                None | Some(Value::Null) => None,
                Some(Value::String(text)) => {
                    super::super::template::check(text)
                        .map_err(|error| format!("body: {error}"))?;
                    Some(text.clone())
                }
                Some(_) => return Err("body must be a string (a template)".to_owned()),
            };
            if method == HttpMethod::Get && body.is_some() {
                return Err("body: a GET request has no body; use POST, PUT or PATCH".to_owned());
            }
            Ok(ChannelKind::Template {
                method,
                url: http_url(fields)?,
                headers,
                body,
            })
        }
        "teams" => Ok(ChannelKind::Teams {
            url: http_url(fields)?,
        }),
        "telegram" => {
            let bot_token = required_string(fields, "bot_token")?;
            let valid_token = bot_token.split_once(':').is_some_and(|(bot, secret)| {
                !bot.is_empty()
                    && bot.chars().all(|c| c.is_ascii_digit())
                    && !secret.is_empty()
                    && secret
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            });
            if !valid_token {
                return Err("bot_token must be a bot token as BotFather gives it (<digits>:<letters, digits, _ and ->)".to_owned());
            }
            let chat_id = match fields.get("chat_id") {
                Some(Value::Number(number)) if number.is_i64() => number.to_string(),
                Some(Value::String(text)) => text.clone(),
                None | Some(Value::Null) => return Err("chat_id is required".to_owned()),
                Some(_) => return Err(CHAT_ID_ERROR.to_owned()),
            };
            let digits = chat_id.strip_prefix('-').unwrap_or(&chat_id);
            let numeric = !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit());
            let username = chat_id.strip_prefix('@').is_some_and(|name| {
                (5..=32).contains(&name.len())
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            });
            if !(numeric || username) {
                return Err(CHAT_ID_ERROR.to_owned());
            }
            Ok(ChannelKind::Telegram {
                bot_token,
                chat_id,
                api_url: optional_http_url(fields, "api_url")?,
            })
        }
        "pagerduty" => {
            let routing_key = required_string(fields, "routing_key")?;
            if routing_key.len() != 32 || !routing_key.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err("routing_key must be the 32-character integration key of an Events API v2 integration".to_owned());
            }
            Ok(ChannelKind::PagerDuty {
                routing_key,
                api_url: optional_http_url(fields, "api_url")?,
            })
        }
        "opsgenie" => {
            let api_key = required_string(fields, "api_key")?;
            if !api_key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
            {
                return Err(
                    "api_key must be an Opsgenie API key (letters, digits and -)".to_owned(),
                );
            }
            let priority = match fields.get("priority") {
                None | Some(Value::Null) => None,
                Some(Value::String(text))
                    if matches!(text.as_str(), "P1" | "P2" | "P3" | "P4" | "P5") =>
                {
                    Some(text.clone())
                }
                Some(_) => return Err("priority must be one of P1, P2, P3, P4, P5".to_owned()),
            };
            Ok(ChannelKind::Opsgenie {
                api_key,
                api_url: optional_http_url(fields, "api_url")?,
                priority,
            })
        }
        "ntfy" => {
            let url = http_url(fields)?;
            if super::super::push::ntfy_split(&url).is_none() {
                return Err("url must be a topic's URL, https://<server>/<topic> (a topic: 1 to 64 letters, digits, - and _)".to_owned());
            }
            Ok(ChannelKind::Ntfy {
                url,
                token: optional_header_safe(fields, "token")?,
                priority: small_priority(fields, 1, 5)?.map(|priority| priority as u8),
            })
        }
        "gotify" => Ok(ChannelKind::Gotify {
            url: http_url(fields)?,
            app_token: required_header_safe(fields, "app_token")?,
            priority: small_priority(fields, 0, 10)?.map(|priority| priority as u8),
        }),
        "pushover" => {
            let key = |field: &str| -> Result<String, String> {
                let value = required_string(fields, field)?;
                if value.len() == 30 && value.chars().all(|c| c.is_ascii_alphanumeric()) {
                    Ok(value)
                } else {
                    Err(format!(
                        "{field} must be a Pushover key: 30 letters and digits"
                    ))
                }
            };
            Ok(ChannelKind::Pushover {
                user_key: key("user_key")?,
                app_token: key("app_token")?,
                api_url: optional_http_url(fields, "api_url")?,
                priority: small_priority(fields, -2, 1)?.map(|priority| priority as i8),
            })
        }
        "matrix" => {
            let room_id = required_string(fields, "room_id")?;
            if !(room_id.starts_with('!') && room_id.contains(':')) {
                return Err(
                    "room_id must be a room id, !<opaque>:<server> (Room settings, Advanced)"
                        .to_owned(),
                );
            }
            Ok(ChannelKind::Matrix {
                url: http_url(fields)?,
                access_token: required_header_safe(fields, "access_token")?,
                room_id,
            })
        }
        _ => Err(KIND_ERROR.to_owned()),
    }
}

/// Which alerts a channel is told about: the fields' `send_on`, both by default.
pub fn send_on_from_fields(fields: &Map<String, Value>) -> Result<SendOn, String> {
    match fields.get("send_on") {
        None | Some(Value::Null) => Ok(SendOn::Both),
        Some(Value::String(text)) => SendOn::parse(text).ok_or_else(|| SEND_ON_ERROR.to_owned()),
        Some(_) => Err(SEND_ON_ERROR.to_owned()),
    }
}

/// The kinds, as `kind` names them.
pub const KINDS: &[&str] = &[
    "webhook",
    "slack",
    "discord",
    "email",
    "alertmanager",
    "template",
    "teams",
    "telegram",
    "pagerduty",
    "opsgenie",
    "ntfy",
    "gotify",
    "pushover",
    "matrix",
];

const KIND_ERROR: &str = "kind must be one of webhook, slack, discord, email, alertmanager, \
     template, teams, telegram, pagerduty, opsgenie, ntfy, gotify, pushover, matrix";
const SEND_ON_ERROR: &str = "send_on must be one of down, up, both";
const CHAT_ID_ERROR: &str =
    "chat_id must be a chat's numeric id (e.g. -1001234567890) or a channel's @username";
/// At most this many headers on a templated webhook.
const MAX_HEADERS: usize = 32;

/// A templated webhook's `headers`: an object of names and string values, each a
/// valid HTTP header, none that the HTTP client must set itself.
pub(super) fn headers(fields: &Map<String, Value>) -> Result<Vec<(String, String)>, String> {
    let object = match fields.get("headers") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Object(object)) => object,
        Some(_) => {
            return Err("headers must be an object of header names and string values".to_owned());
        }
    };
    if object.len() > MAX_HEADERS {
        return Err(format!("headers: at most {MAX_HEADERS} headers"));
    }
    let mut headers = Vec::with_capacity(object.len());
    for (name, value) in object {
        let Value::String(value) = value else {
            return Err(format!("headers: the value of {name:?} must be a string"));
        };
        if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(format!("headers: {name:?} is not a valid header name"));
        }
        if reqwest::header::HeaderValue::from_str(value).is_err() || value.len() > 2048 {
            return Err(format!(
                "headers: the value of {name:?} must be visible ASCII text of at most 2048 bytes"
            ));
        }
        let lower = name.to_ascii_lowercase();
        if matches!(
            lower.as_str(),
            "host" | "content-length" | "transfer-encoding" | "connection"
        ) || lower == super::super::webhook::ALERT_ID_HEADER.to_ascii_lowercase()
        {
            return Err(format!(
                "headers: {name:?} is set by pushmon and cannot be given"
            ));
        }
        headers.push((name.clone(), value.clone()));
    }
    Ok(headers)
}

/// An optional URL field other than `url` (`api_url`), absolute http(s).
pub(super) fn optional_http_url(
    fields: &Map<String, Value>,
    field: &str,
) -> Result<Option<String>, String> {
    let Some(url) = optional_string(fields, field)? else {
        return Ok(None);
    };
    match reqwest::Url::parse(&url) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") && parsed.has_host() => {
            Ok(Some(url))
        }
        _ => Err(format!(
            "{field} must be an absolute http:// or https:// URL"
        )),
    }
}

/// A secret sent in a header: visible ASCII only.
pub(super) fn required_header_safe(
    fields: &Map<String, Value>,
    field: &str,
) -> Result<String, String> {
    optional_header_safe(fields, field)?.ok_or_else(|| format!("{field} is required"))
}

pub(super) fn optional_header_safe(
    fields: &Map<String, Value>,
    field: &str,
) -> Result<Option<String>, String> {
    let value = optional_string(fields, field)?;
    match &value {
        Some(text) if !text.chars().all(|c| c.is_ascii_graphic()) => {
            Err(format!("{field} must be visible ASCII text without spaces"))
        }
        _ => Ok(value),
    }
}

/// An optional integer `priority` within `low..=high`.
pub(super) fn small_priority(
    fields: &Map<String, Value>,
    low: i64,
    high: i64,
) -> Result<Option<i64>, String> {
    match fields.get("priority") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(number)) => match number.as_i64() {
            Some(priority) if (low..=high).contains(&priority) => Ok(Some(priority)),
            _ => Err(format!("priority must be an integer from {low} to {high}")),
        },
        Some(_) => Err(format!("priority must be an integer from {low} to {high}")),
    }
}
const TO_ERROR: &str = "to must be an email address or a non-empty array of them";

pub(super) fn http_url(fields: &Map<String, Value>) -> Result<String, String> {
    let url = required_string(fields, "url")?;
    match reqwest::Url::parse(&url) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") && parsed.has_host() => Ok(url),
        _ => Err("url must be an absolute http:// or https:// URL".to_owned()),
    }
}

pub(super) fn required_string(fields: &Map<String, Value>, field: &str) -> Result<String, String> {
    optional_string(fields, field)?.ok_or_else(|| format!("{field} is required"))
}

pub(super) fn optional_string(
    fields: &Map<String, Value>,
    field: &str,
) -> Result<Option<String>, String> {
    match fields.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) if text.is_empty() => Err(format!("{field} must not be empty")),
        Some(Value::String(text)) if text.len() > 2048 => {
            Err(format!("{field} must be at most 2048 bytes"))
        }
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(_) => Err(format!("{field} must be a string")),
    }
}
