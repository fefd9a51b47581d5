//! The templated webhook (`kind: template`): any HTTP service, reached with the
//! method, headers and body its API wants. The body is a template whose placeholders,
//! `{{event}}`, `{{monitor.name}}` and the others of [`PLACEHOLDERS`], are replaced by
//! the alert's fields (`docs/alerts.md`, "Templated webhook").
//!
//! The substitution is deliberately tiny: no loops, no conditions, no filters. Each
//! value is escaped for the body's `Content-Type`: inside a JSON string for a JSON
//! type (so a name with a quote cannot end the string and add fields), percent-encoded
//! for a form, as it is otherwise. Templates are checked when the channel is made
//! ([`check`]): an unknown placeholder or an unclosed `{{` is refused there, so a
//! send never fails on its template.

use crate::domain::channel::Channel;

use super::{Message, rule, summary};

/// The placeholders a template may use.
pub const PLACEHOLDERS: &[&str] = &[
    "event",
    "reason",
    "rule",
    "notice",
    "at",
    "monitor.id",
    "monitor.name",
    "monitor.severity",
    "msg",
    "value",
    "exit_status",
    "output",
    "missing_instances",
    "summary",
    "url",
    "alert_id",
    "channel.id",
    "channel.name",
];

/// Before a label key, a placeholder of one of the monitor's labels
/// (`{{monitor.labels.team}}`: its value, empty when the monitor has no such label).
pub const LABEL_PLACEHOLDER: &str = "monitor.labels.";

/// The longest template accepted, in bytes.
pub const MAX_TEMPLATE_BYTES: usize = 16 * 1024;

/// How values are escaped, from the body's `Content-Type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Escape {
    /// `application/json` or any `+json` type: as the inside of a JSON string.
    Json,
    /// `application/x-www-form-urlencoded`: percent-encoded.
    Form,
    /// Anything else: as it is.
    None,
}

impl Escape {
    /// The escaping for a body sent with `content_type`.
    pub fn for_content_type(content_type: &str) -> Self {
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if essence == "application/json" || essence.ends_with("+json") {
            Self::Json
        } else if essence == "application/x-www-form-urlencoded" {
            Self::Form
        } else {
            Self::None
        }
    }

    fn apply(self, value: &str, into: &mut String) {
        match self {
            Self::Json => {
                // The JSON encoding of a string, without its quotes.
                let quoted = serde_json::Value::from(value).to_string();
                into.push_str(&quoted[1..quoted.len() - 1]);
            }
            Self::Form => {
                into.extend(form_urlencoded::byte_serialize(value.as_bytes()));
            }
            Self::None => into.push_str(value),
        }
    }
}

/// One piece of a parsed template.
enum Piece<'a> {
    Text(&'a str),
    Field(&'a str),
}

fn parse(template: &str) -> Result<Vec<Piece<'_>>, String> {
    let mut pieces = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        if open > 0 {
            pieces.push(Piece::Text(&rest[..open]));
        }
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            return Err("a {{ is not closed by }}".to_owned());
        };
        let name = after[..close].trim();
        let label = name
            .strip_prefix(LABEL_PLACEHOLDER)
            .is_some_and(|key| crate::domain::labels::check_key(key).is_ok());
        if !PLACEHOLDERS.contains(&name) && !label {
            return Err(format!(
                "unknown placeholder {{{{{name}}}}}; the placeholders are {}, and \
                 monitor.labels.<key>",
                PLACEHOLDERS.join(", ")
            ));
        }
        pieces.push(Piece::Field(name));
        rest = &after[close + 2..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest));
    }
    Ok(pieces)
}

/// Checks a template: its size, and that every `{{…}}` is a known placeholder.
pub fn check(template: &str) -> Result<(), String> {
    if template.len() > MAX_TEMPLATE_BYTES {
        return Err(format!("must be at most {MAX_TEMPLATE_BYTES} bytes"));
    }
    parse(template).map(|_| ())
}

/// The values of the placeholders for one message.
pub struct Values<'a> {
    pub message: Message<'a>,
    pub channel: &'a Channel,
    pub alert_id: &'a str,
    pub public_url: &'a str,
}

impl Values<'_> {
    fn get(&self, name: &str) -> String {
        let alert = match self.message {
            Message::Alert(alert) => Some(alert),
            Message::Test(_) => None,
        };
        match name {
            "event" => alert.map_or("test", |alert| alert.kind.as_str()).to_owned(),
            "reason" => alert.map_or_else(|| "test".to_owned(), |alert| alert.reason.clone()),
            "rule" => alert.map_or_else(|| "test".to_owned(), rule),
            "notice" => alert
                .map_or("test", |alert| alert.notice.as_str())
                .to_owned(),
            "at" => match self.message {
                Message::Alert(alert) => alert.at.to_rfc3339(),
                Message::Test(test) => test.at.to_rfc3339(),
            },
            "monitor.id" => alert.map_or_else(String::new, |alert| alert.monitor_id.to_string()),
            "monitor.name" => alert.map_or_else(String::new, |alert| alert.monitor_name.clone()),
            "monitor.severity" => {
                alert.map_or_else(String::new, |alert| alert.severity.as_str().to_owned())
            }
            "msg" => alert
                .and_then(|alert| alert.msg.as_ref())
                .map_or_else(String::new, |msg| msg.as_str().to_owned()),
            "value" => alert
                .and_then(|alert| alert.value)
                .map_or_else(String::new, |value| value.to_string()),
            "exit_status" => alert
                .and_then(|alert| alert.exit_status)
                .map_or_else(String::new, |status| status.to_string()),
            "output" => alert
                .and_then(|alert| alert.output.clone())
                .unwrap_or_default(),
            "missing_instances" => {
                alert.map_or_else(String::new, |alert| alert.missing_instances.join(", "))
            }
            "summary" => summary(self.message),
            "url" => match alert {
                Some(alert) => format!("{}/api/monitors/{}", self.public_url, alert.monitor_id),
                None => self.public_url.to_owned(),
            },
            "alert_id" => self.alert_id.to_owned(),
            "channel.id" => self.channel.id.to_string(),
            "channel.name" => self.channel.name.clone(),
            label => match (label.strip_prefix(LABEL_PLACEHOLDER), alert) {
                (Some(key), Some(alert)) => alert.labels.get(key).unwrap_or("").to_owned(),
                _ => String::new(),
            },
        }
    }
}

/// `template` with each placeholder replaced by its value, escaped by `escape`. A
/// template that does not parse (never stored: see [`check`]) is sent as it is.
pub fn render(template: &str, values: &Values<'_>, escape: Escape) -> String {
    let Ok(pieces) = parse(template) else {
        return template.to_owned();
    };
    let mut rendered = String::with_capacity(template.len() + 64);
    for piece in pieces {
        match piece {
            Piece::Text(text) => rendered.push_str(text),
            Piece::Field(name) => escape.apply(&values.get(name), &mut rendered),
        }
    }
    rendered
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::alert::{Alert, AlertKind, AlertNotice};
    use crate::domain::channel::{ChannelKind, HttpMethod, SendOn};
    use crate::domain::event::HeartbeatText;
    use crate::domain::ids::{ChannelId, MonitorId, Timestamp};

    fn channel() -> Channel {
        Channel {
            id: ChannelId::from_bytes([2; 16]),
            name: "hook".to_owned(),
            kind: ChannelKind::Template {
                method: HttpMethod::Post,
                url: "http://x.example/".to_owned(),
                headers: Vec::new(),
                body: None,
            },
            created_at: Timestamp::from_millis(0),
            key: None,
            send_on: SendOn::Both,
        }
    }

    fn alert() -> Alert {
        Alert {
            alert_seq: 9,
            kind: AlertKind::Down,
            reason: "timeout".to_owned(),
            at: Timestamp::from_millis(1_795_000_000_000),
            monitor_id: MonitorId::from_bytes([1; 16]),
            monitor_name: "say \"hi\"\n& <b>".to_owned(),
            msg: Some(HeartbeatText::truncated("50%".to_owned())),
            value: Some(2.5),
            notice: AlertNotice::Change,
            exit_status: None,
            output: None,
            severity: Default::default(),
            labels: Default::default(),
            tags: Box::default(),
            missing_instances: Box::default(),
        }
    }

    #[test]
    fn values_are_escaped_for_the_body_type_and_json_stays_json() {
        let channel = channel();
        let alert = alert();
        let values = Values {
            message: Message::Alert(&alert),
            channel: &channel,
            alert_id: "i:9",
            public_url: "http://pushmon",
        };
        let json = render(
            r#"{"text": "{{ monitor.name }} is {{event}}", "v": "{{value}}", "x": "{{exit_status}}"}"#,
            &values,
            Escape::Json,
        );
        let parsed: serde_json::Value = serde_json::from_str(&json).expect("still JSON");
        assert_eq!(parsed["text"], "say \"hi\"\n& <b> is down");
        assert_eq!(parsed["v"], "2.5");
        assert_eq!(parsed["x"], "");
        assert_eq!(
            render("m={{monitor.name}}&msg={{msg}}", &values, Escape::Form),
            "m=say+%22hi%22%0A%26+%3Cb%3E&msg=50%25"
        );
        let labelled = Alert {
            labels: Box::new(
                crate::domain::labels::Labels::new([("team".to_owned(), "pay".to_owned())])
                    .expect("valid"),
            ),
            severity: crate::domain::labels::Severity::Warning,
            ..alert.clone()
        };
        let labelled_values = Values {
            message: Message::Alert(&labelled),
            ..values
        };
        assert_eq!(
            render(
                "{{monitor.labels.team}}/{{monitor.labels.env}}/{{monitor.severity}}",
                &labelled_values,
                Escape::None
            ),
            "pay//warning"
        );
        assert_eq!(
            render("{{alert_id}} {{url}}", &values, Escape::None),
            "i:9 http://pushmon/api/monitors/01010101-0101-0101-0101-010101010101"
        );
    }

    #[test]
    fn bad_templates_are_refused_naming_the_problem() {
        assert!(check("{{event}} {{ monitor.name }}").is_ok());
        assert!(check("no placeholders at all").is_ok());
        assert!(
            check("{{nope}}")
                .unwrap_err()
                .contains("unknown placeholder {{nope}}")
        );
        assert!(check("{{event").unwrap_err().contains("not closed"));
        assert!(check("{{monitor.labels.example.com/team}} {{monitor.severity}}").is_ok());
        assert!(
            check("{{monitor.labels.-x}}")
                .unwrap_err()
                .contains("unknown placeholder {{monitor.labels.-x}}")
        );
        assert!(check(&"x".repeat(MAX_TEMPLATE_BYTES + 1)).is_err());
    }

    #[test]
    fn content_types_choose_the_escaping() {
        assert_eq!(
            Escape::for_content_type("application/json; charset=utf-8"),
            Escape::Json
        );
        assert_eq!(
            Escape::for_content_type("application/vnd.api+json"),
            Escape::Json
        );
        assert_eq!(
            Escape::for_content_type("application/x-www-form-urlencoded"),
            Escape::Form
        );
        assert_eq!(Escape::for_content_type("text/plain"), Escape::None);
    }
}
