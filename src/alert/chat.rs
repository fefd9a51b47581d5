//! Slack and Discord incoming webhooks: a short human message in each one's format.
//!
//! Whatever a user wrote (a monitor's or channel's name, a heartbeat's message: anyone
//! holding a push URL writes the last) is escaped by the platform's rules, so it shows
//! as typed and never as markup: no mention that pings (`<!here>`, `@everyone`), no
//! link disguised as other text, no formatting. Slack: `&`, `<` and `>` become
//! entities, and `mrkdwn: false` turns formatting off. Discord: every ASCII punctuation
//! character is escaped with a backslash, and `allowed_mentions` allows none.

use serde_json::json;

use crate::domain::alert::AlertKind;

use super::{Message, summary_escaped};

/// Discord refuses content longer than this (we count UTF-16 units, as its clients do).
const DISCORD_MAX_CONTENT: usize = 2000;

/// Text for Slack: `&`, `<` and `>` as `&amp;`, `&lt;`, `&gt;` (Slack's escaping rules),
/// so no `<…>` control sequence (mention, link, date) can be written.
pub fn slack_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            _ => escaped.push(c),
        }
    }
    escaped
}

/// Text for Discord: a backslash before every ASCII punctuation character, which
/// Discord's markdown shows as the character itself. No markdown (`*`, `_`, `~`, `` ` ``,
/// `|`, `#`, `>`, `-`), masked link (`[text](url)`), mention (`@everyone`, `<@id>`),
/// emoji code or auto-link (`https:`) survives.
pub fn discord_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len() * 2);
    for c in text.chars() {
        if c.is_ascii_punctuation() {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

pub fn slack_body(message: Message<'_>, public_url: &str) -> Vec<u8> {
    let link = slack_escape(&link(message, public_url));
    let text = text(message, slack_escape, &link, usize::MAX);
    json!({ "text": text, "mrkdwn": false })
        .to_string()
        .into_bytes()
}

pub fn discord_body(message: Message<'_>, public_url: &str) -> Vec<u8> {
    // Our own link stays a link: the public URL is the operator's, not a user's.
    let content = text(
        message,
        discord_escape,
        &link(message, public_url),
        DISCORD_MAX_CONTENT,
    );
    json!({ "content": content, "allowed_mentions": { "parse": [] } })
        .to_string()
        .into_bytes()
}

/// The monitor for an alert; the server itself for a test.
fn link(message: Message<'_>, public_url: &str) -> String {
    match message {
        Message::Alert(alert) => format!("{public_url}/api/monitors/{}", alert.monitor_id),
        Message::Test(_) => public_url.to_owned(),
    }
}

/// The message's lines, every user-written text passed through `escape`, at most
/// `limit` UTF-16 units long: a heartbeat's message is cut to fit (and ends with "…").
fn text(message: Message<'_>, escape: impl Fn(&str) -> String, link: &str, limit: usize) -> String {
    let alert = match message {
        Message::Test(_) => return format!("🔔 {}.\n{link}", summary_escaped(message, escape)),
        Message::Alert(alert) => alert,
    };
    let icon = match alert.kind {
        AlertKind::Down => "🔴",
        AlertKind::Up => "🟢",
    };
    let mut text = format!(
        "{icon} {} at {}",
        summary_escaped(message, &escape),
        alert.at.to_rfc3339()
    );
    let mut tail = String::new();
    if let Some(value) = alert.value {
        tail.push_str(&format!("\nLast value: {value}"));
    }
    tail.push('\n');
    tail.push_str(link);
    if let Some(msg) = &alert.msg {
        const LABEL: &str = "\nLast message: ";
        let room = limit.saturating_sub(utf16_len(&text) + utf16_len(LABEL) + utf16_len(&tail));
        text.push_str(LABEL);
        text.push_str(&escape_within(msg.as_str(), &escape, room));
    }
    text.push_str(&tail);
    text
}

fn utf16_len(text: &str) -> usize {
    text.encode_utf16().count()
}

/// `text` escaped, cut to at most `room` UTF-16 units, never inside an escape; a cut
/// text ends with "…".
fn escape_within(text: &str, escape: impl Fn(&str) -> String, room: usize) -> String {
    let whole = escape(text);
    if utf16_len(&whole) <= room {
        return whole;
    }
    let budget = room.saturating_sub(1);
    let mut cut = String::new();
    let mut used = 0;
    let mut buffer = [0u8; 4];
    for c in text.chars() {
        let piece = escape(c.encode_utf8(&mut buffer));
        used += utf16_len(&piece);
        if used > budget {
            break;
        }
        cut.push_str(&piece);
    }
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slack_control_sequences_become_entities() {
        assert_eq!(
            slack_escape("<!here> a & b <https://x.example|y>"),
            "&lt;!here&gt; a &amp; b &lt;https://x.example|y&gt;"
        );
    }

    #[test]
    fn discord_punctuation_is_escaped_and_the_rest_kept() {
        assert_eq!(
            discord_escape("@everyone [Reset](https://x.example) *é* 3"),
            r"\@everyone \[Reset\]\(https\:\/\/x\.example\) \*é\* 3"
        );
    }

    #[test]
    fn a_cut_message_never_ends_inside_an_escape() {
        assert_eq!(escape_within("a*b*c", discord_escape, 5), r"a\*b…");
        assert_eq!(escape_within("a*b*c", discord_escape, 6), r"a\*b…");
        assert_eq!(escape_within("a*b", discord_escape, 4), r"a\*b");
        // 🔴 is two UTF-16 units.
        assert_eq!(escape_within("🔴🔴🔴", discord_escape, 4), "🔴…");
    }
}
