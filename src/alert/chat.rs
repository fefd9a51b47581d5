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
pub(super) fn link(message: Message<'_>, public_url: &str) -> String {
    match message {
        Message::Alert(alert) => format!("{public_url}/api/monitors/{}", alert.monitor_id),
        Message::Test(_) => public_url.to_owned(),
    }
}

/// The message's lines, every user-written text passed through `escape`, at most
/// `limit` UTF-16 units long: a heartbeat's message is cut to fit (and ends with "…").
pub(super) fn text(
    message: Message<'_>,
    escape: impl Fn(&str) -> String,
    link: &str,
    limit: usize,
) -> String {
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
    if let Some(status) = alert.exit_status {
        tail.push_str(&format!("\nExit status: {status}"));
    }
    for (name, line) in super::context_lines(alert) {
        tail.push_str(&format!("\n{name}: {}", escape(&line)));
    }
    tail.push('\n');
    tail.push_str(link);
    // What users wrote, each cut to fit what is left: the message keeps its start
    // (and at most half when there is output too), the output its end, where a
    // failing job says why.
    let written = [
        (
            "\nLast message: ",
            alert.msg.as_ref().map(|msg| msg.as_str()),
            false,
        ),
        ("\nOutput: ", alert.output.as_deref(), true),
    ];
    let both = written.iter().all(|(_, content, _)| content.is_some());
    for (index, (label, content, keep_end)) in written.into_iter().enumerate() {
        let Some(content) = content else {
            continue;
        };
        let left = limit.saturating_sub(utf16_len(&text) + utf16_len(label) + utf16_len(&tail));
        let room = if both && index == 0 { left / 2 } else { left };
        text.push_str(label);
        if keep_end {
            text.push_str(&escape_within_end(content, &escape, room));
        } else {
            text.push_str(&escape_within(content, &escape, room));
        }
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

/// [`escape_within`], keeping the end of `text` (starting with "…" when cut).
fn escape_within_end(text: &str, escape: impl Fn(&str) -> String, room: usize) -> String {
    let whole = escape(text);
    if utf16_len(&whole) <= room {
        return whole;
    }
    let budget = room.saturating_sub(1);
    let mut pieces = Vec::new();
    let mut used = 0;
    let mut buffer = [0u8; 4];
    for c in text.chars().rev() {
        let piece = escape(c.encode_utf8(&mut buffer));
        used += utf16_len(&piece);
        if used > budget {
            break;
        }
        pieces.push(piece);
    }
    let mut cut = String::from("…");
    cut.extend(pieces.into_iter().rev());
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

    fn failed_run(output: String) -> crate::domain::alert::Alert {
        use crate::domain::alert::{Alert, AlertNotice};
        use crate::domain::event::HeartbeatText;
        use crate::domain::ids::{MonitorId, Timestamp};
        Alert {
            alert_seq: 7,
            kind: AlertKind::Down,
            reason: "exit_status".to_owned(),
            at: Timestamp::from_millis(1_795_000_000_000),
            monitor_id: MonitorId::from_bytes([1; 16]),
            monitor_name: "backup <!here>".to_owned(),
            msg: Some(HeartbeatText::truncated("@everyone look".repeat(100))),
            value: None,
            notice: AlertNotice::Change,
            exit_status: Some(3),
            output: Some(output),
            severity: Default::default(),
            labels: Default::default(),
            tags: Box::default(),
            missing_instances: Box::default(),
        }
    }

    /// A monitor's severity and labels are in the text, escaped; a critical monitor
    /// without labels gets neither line.
    #[test]
    fn severity_and_labels_are_shown_unless_critical_without_labels() {
        use crate::domain::labels::{Labels, Severity};
        let mut alert = failed_run("done".to_owned());
        let plain = text(Message::Alert(&alert), slack_escape, "<link>", 3000);
        assert!(
            !plain.contains("Severity") && !plain.contains("Labels"),
            "{plain}"
        );
        alert.severity = Severity::Warning;
        *alert.labels = Labels::new([
            ("team".to_owned(), "payments".to_owned()),
            ("env".to_owned(), "prod".to_owned()),
        ])
        .unwrap();
        let shown = text(Message::Alert(&alert), slack_escape, "<link>", 3000);
        assert!(shown.contains("\nSeverity: warning\n"), "{shown}");
        assert!(
            shown.contains("\nLabels: env=prod, team=payments\n"),
            "{shown}"
        );
        assert!(shown.ends_with("<link>"), "{shown}");
    }

    /// A fleet's alert names its missing instances, at most 20 of them, then how many
    /// more; a critical monitor's alert gets that line alone.
    #[test]
    fn a_fleets_missing_instances_are_named() {
        let mut alert = failed_run("done".to_owned());
        alert.missing_instances = ["web-2", "web-3"].map(str::to_owned).into();
        let shown = text(Message::Alert(&alert), discord_escape, "<link>", 3000);
        assert!(
            shown.contains("\nMissing instances: web\\-2\\, web\\-3\n"),
            "{shown}"
        );
        assert!(!shown.contains("Severity"), "{shown}");
        alert.missing_instances = (0..25).map(|n| format!("i{n}")).collect();
        let shown = text(Message::Alert(&alert), slack_escape, "<link>", 3000);
        assert!(shown.contains("i19 and 5 more\n"), "{shown}");
        assert!(!shown.contains("i20"), "{shown}");
    }

    /// A run's output is what the job printed: escaped like any user-written text,
    /// and cut with the message so a Discord message stays within its limit.
    #[test]
    fn output_is_escaped_and_fits_with_the_message() {
        let output = format!(
            "{}<!channel> [x](https://evil.example) @here\nlast line",
            "x".repeat(3000)
        );
        let alert = failed_run(output);
        let slack: serde_json::Value =
            serde_json::from_slice(&slack_body(Message::Alert(&alert), "http://pushmon"))
                .expect("json");
        let text = slack["text"].as_str().expect("text");
        assert!(text.contains("is DOWN (exit status 3)"), "{text}");
        assert!(text.contains("Exit status: 3"), "{text}");
        assert!(
            text.contains("&lt;!channel&gt;") && !text.contains("<!channel>"),
            "{text}"
        );
        assert!(!text.contains("<!here>"), "{text}");
        assert!(text.contains("last line"), "{text}");

        let discord: serde_json::Value =
            serde_json::from_slice(&discord_body(Message::Alert(&alert), "http://pushmon"))
                .expect("json");
        let content = discord["content"].as_str().expect("content");
        assert!(
            utf16_len(content) <= DISCORD_MAX_CONTENT,
            "{}",
            utf16_len(content)
        );
        assert!(content.contains("\\[x\\]\\(https\\:"), "{content}");
        assert!(
            !content.contains(" @here") && !content.contains(" @everyone"),
            "{content}"
        );
        assert!(
            content.contains("Output: "),
            "the output has room: {content}"
        );
        assert!(content.contains("Last message: "), "{content}");
        assert!(
            content.ends_with("http://pushmon/api/monitors/01010101-0101-0101-0101-010101010101"),
            "{content}"
        );
    }

    #[test]
    fn a_cut_message_never_ends_inside_an_escape() {
        assert_eq!(escape_within("a*b*c", discord_escape, 5), r"a\*b…");
        assert_eq!(escape_within("a*b*c", discord_escape, 6), r"a\*b…");
        assert_eq!(escape_within("a*b", discord_escape, 4), r"a\*b");
        // 🔴 is two UTF-16 units.
        assert_eq!(escape_within("🔴🔴🔴", discord_escape, 4), "🔴…");
        assert_eq!(escape_within_end("a*b*c", discord_escape, 5), r"…b\*c");
        assert_eq!(escape_within_end("a*b", discord_escape, 4), r"a\*b");
    }
}
