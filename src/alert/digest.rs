//! Digests: one message for many alerts (`docs/alerts.md`, "Digests").
//!
//! The dispatcher holds the deliveries owed to a channel whose kind takes digests for
//! a short window (`--digest-window`), opened by the first of them. When it closes,
//! fewer than `--digest-threshold` go out one by one as ever; more go out as one
//! message per channel, retried as a unit, whose outcome is recorded for each alert it
//! covers. Held deliveries stay in the outbox, so a crash inside the window loses
//! nothing: the restart hands them all to the dispatcher again, and they go out
//! together.
//!
//! This module owns the rules ([`Batcher`], pure but for the instants it is given)
//! and the message of each channel kind ([`Notifier::send_digest`]); a new kind adds
//! an arm there, and may use [`text`], the readable fallback.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use lettre::message::header::ContentType;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use tokio::time::Instant;

use crate::domain::alert::{Alert, AlertKind, Delivery, InstallationId};
use crate::domain::channel::{Channel, ChannelKind};
use crate::domain::event::MonitorConfig;
use crate::domain::ids::{ChannelId, Timestamp};

use super::{
    ClusterDelivery, Message, Notifier, NotifyError, Request, alertmanager, chat, email, matrix,
    one_line, push, summary_escaped, teams, telegram, webhook,
};

/// At most this many alerts in one digest: a larger burst makes several, so no message
/// grows without bound (a webhook body stays within a few hundred kilobytes).
pub const MAX_DIGEST_ALERTS: usize = 1000;

/// Slack shows about this many characters of a message before folding it away.
const SLACK_MAX_TEXT: usize = 3500;
/// Discord refuses longer content (UTF-16 units, as its clients count).
const DISCORD_MAX_CONTENT: usize = 2000;

/// The group a monitor's alerts are listed under: its tags, sorted and joined; empty
/// for a monitor without tags. The one place that says what a digest groups by.
pub fn group_of(config: &MonitorConfig) -> String {
    let mut tags: Vec<&str> = config.tags.iter().map(String::as_str).collect();
    tags.sort_unstable();
    tags.dedup();
    tags.join(", ")
}

/// When and for whom alerts are held (`--digest-window`, `--digest-threshold`,
/// `--digest-webhooks`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DigestPolicy {
    /// How long the first alert of a calm channel waits for others; zero: never.
    pub window: Duration,
    /// Alerts held when the window closes from which they go out as one digest.
    pub threshold: usize,
    /// Whether webhooks take digests too. Off by default: a webhook receiver gets the
    /// documented single-alert body unless its operator says it reads digests.
    pub webhooks: bool,
}

impl Default for DigestPolicy {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(5),
            threshold: 3,
            webhooks: false,
        }
    }
}

impl DigestPolicy {
    /// No digests: every alert goes out on its own, at once.
    pub const OFF: Self = Self {
        window: Duration::ZERO,
        threshold: 3,
        webhooks: false,
    };

    /// Whether alerts to a channel of this kind are held for a digest.
    pub fn holds(&self, kind: &ChannelKind) -> bool {
        if self.window.is_zero() {
            return false;
        }
        match kind {
            ChannelKind::Webhook { .. } => self.webhooks,
            ChannelKind::Slack { .. }
            | ChannelKind::Discord { .. }
            | ChannelKind::Email { .. }
            | ChannelKind::Alertmanager { .. }
            | ChannelKind::Teams { .. }
            | ChannelKind::Telegram { .. }
            | ChannelKind::Ntfy { .. }
            | ChannelKind::Gotify { .. }
            | ChannelKind::Pushover { .. }
            | ChannelKind::Matrix { .. } => true,
            // A templated webhook renders one alert; PagerDuty and Opsgenie keep one
            // incident per monitor (a `down` opens it, its `up` resolves it) and group
            // alerts themselves: each alert goes on its own.
            ChannelKind::Template { .. }
            | ChannelKind::PagerDuty { .. }
            | ChannelKind::Opsgenie { .. } => false,
        }
    }
}

/// A delivery waiting in a window, with the group it is listed under.
#[derive(Clone, Debug, PartialEq)]
pub struct Held {
    pub delivery: Delivery,
    pub group: String,
}

/// What a closed window lets go.
#[derive(Debug, PartialEq)]
pub enum Release {
    /// Fewer than the threshold: each on its own, as without digests.
    Each(Vec<Held>),
    /// One digest per element, each at most [`MAX_DIGEST_ALERTS`] alerts.
    Digests(Vec<Vec<Held>>),
}

struct Window {
    closes_at: Instant,
    held: Vec<Held>,
}

/// The open windows, one per channel.
pub struct Batcher {
    policy: DigestPolicy,
    open: HashMap<ChannelId, Window>,
}

impl Batcher {
    pub fn new(policy: DigestPolicy) -> Self {
        Self {
            policy,
            open: HashMap::new(),
        }
    }

    pub fn policy(&self) -> &DigestPolicy {
        &self.policy
    }

    /// Holds `held` in its channel's window; returns when that window closes if this
    /// delivery opened it (the caller arms a timer for it), `None` if it was open.
    pub fn hold(&mut self, held: Held, now: Instant) -> Option<Instant> {
        let channel = held.delivery.channel;
        match self.open.get_mut(&channel) {
            Some(window) => {
                window.held.push(held);
                None
            }
            None => {
                let closes_at = now + self.policy.window;
                self.open.insert(
                    channel,
                    Window {
                        closes_at,
                        held: vec![held],
                    },
                );
                Some(closes_at)
            }
        }
    }

    /// Closes every window due by `now` and says what each lets go.
    pub fn close_due(&mut self, now: Instant) -> Vec<(ChannelId, Release)> {
        let due: Vec<ChannelId> = self
            .open
            .iter()
            .filter(|(_, window)| window.closes_at <= now)
            .map(|(channel, _)| *channel)
            .collect();
        let mut released = Vec::with_capacity(due.len());
        for channel in due {
            let Some(window) = self.open.remove(&channel) else {
                continue;
            };
            let mut held = window.held;
            let release = if held.len() < self.policy.threshold.max(1) {
                Release::Each(held)
            } else {
                held.sort_by_key(|held| held.delivery.alert.alert_seq);
                let mut digests = Vec::with_capacity(held.len().div_ceil(MAX_DIGEST_ALERTS));
                while held.len() > MAX_DIGEST_ALERTS {
                    let rest = held.split_off(MAX_DIGEST_ALERTS);
                    digests.push(held);
                    held = rest;
                }
                digests.push(held);
                Release::Digests(digests)
            };
            released.push((channel, release));
        }
        released
    }

    /// How many deliveries are held.
    pub fn held(&self) -> usize {
        self.open.values().map(|window| window.held.len()).sum()
    }
}

/// One message for many alerts, ready to render.
pub struct Digest<'a> {
    /// `<installation>:digest-<hex>` (clustered: `PUSHMON:digest-<hex>`, from the
    /// alerts' ids in the shard logs): the same for the same alerts on every attempt
    /// and every re-send after a restart.
    pub id: String,
    /// The latest of its alerts' times: the same on every re-send.
    pub at: Timestamp,
    /// The groups (sorted, the group without tags last), each alert in its group by
    /// monitor name.
    pub groups: Vec<(&'a str, Vec<&'a Alert>)>,
    pub count: usize,
    pub down: usize,
    pub up: usize,
    installation: InstallationId,
    /// Clustered: each alert's id by its local sequence number.
    ids: HashMap<u64, String>,
}

impl<'a> Digest<'a> {
    /// A single node's digest: its alerts' ids are `<installation>:<seq>`.
    pub fn new(installation: InstallationId, held: &'a [Held]) -> Self {
        Self::named(installation, held, None)
    }

    /// In the clustered mode (`cluster`), its alerts carry the shard logs' ids
    /// ([`ClusterDelivery::alert_id`]), the same on every pod, and the digest's id is
    /// made from them (`PUSHMON:digest-<hex>`): a pod taking a shard over names a
    /// digest of the same alerts alike. A single node's ids are unchanged.
    pub fn named(
        installation: InstallationId,
        held: &'a [Held],
        cluster: Option<&dyn ClusterDelivery>,
    ) -> Self {
        let at = held
            .iter()
            .map(|held| held.delivery.alert.at)
            .max()
            .unwrap_or(Timestamp::from_millis(0));
        let mut hash = Sha256::new();
        let (id, ids) = match cluster {
            None => {
                let mut seqs: Vec<u64> = held
                    .iter()
                    .map(|held| held.delivery.alert.alert_seq)
                    .collect();
                seqs.sort_unstable();
                for seq in &seqs {
                    hash.update(seq.to_be_bytes());
                }
                let id = format!(
                    "{installation}:digest-{}",
                    hex::encode(&hash.finalize()[..12])
                );
                (id, HashMap::new())
            }
            Some(cluster) => {
                let ids: HashMap<u64, String> = held
                    .iter()
                    .map(|held| {
                        let alert = &held.delivery.alert;
                        (alert.alert_seq, cluster.alert_id(alert))
                    })
                    .collect();
                let mut sorted: Vec<&str> = ids.values().map(String::as_str).collect();
                sorted.sort_unstable();
                for id in sorted {
                    hash.update(id.as_bytes());
                    hash.update(b"\n");
                }
                let id = format!("PUSHMON:digest-{}", hex::encode(&hash.finalize()[..12]));
                (id, ids)
            }
        };
        let mut grouped: BTreeMap<(bool, &str), Vec<&Alert>> = BTreeMap::new();
        for held in held {
            grouped
                .entry((held.group.is_empty(), held.group.as_str()))
                .or_default()
                .push(&held.delivery.alert);
        }
        let groups = grouped
            .into_iter()
            .map(|((_, group), mut alerts)| {
                alerts.sort_by(|a, b| {
                    (a.monitor_name.as_str(), a.alert_seq)
                        .cmp(&(b.monitor_name.as_str(), b.alert_seq))
                });
                (group, alerts)
            })
            .collect();
        let down = held
            .iter()
            .filter(|held| held.delivery.alert.kind == AlertKind::Down)
            .count();
        Self {
            id,
            at,
            groups,
            count: held.len(),
            down,
            up: held.len() - down,
            installation,
            ids,
        }
    }

    /// `alert`'s id: the shard log's in the clustered mode, `<installation>:<seq>`
    /// on a single node.
    pub fn alert_id(&self, alert: &Alert) -> String {
        match self.ids.get(&alert.alert_seq) {
            Some(id) => id.clone(),
            None => self.installation.alert_id(alert.alert_seq),
        }
    }

    /// Every alert, group by group.
    pub fn alerts(&self) -> impl Iterator<Item = (&'a str, &'a Alert)> + '_ {
        self.groups
            .iter()
            .flat_map(|(group, alerts)| alerts.iter().map(move |alert| (*group, *alert)))
    }

    /// The first line: how many, which way.
    pub fn headline(&self) -> String {
        let noun = if self.count == 1 { "alert" } else { "alerts" };
        let mut parts = Vec::new();
        if self.down > 0 {
            parts.push(format!("{} DOWN", self.down));
        }
        if self.up > 0 {
            parts.push(format!("{} UP", self.up));
        }
        format!("{} {noun}: {}", self.count, parts.join(", "))
    }
}

/// The readable digest every text channel shows, user-written text passed through
/// `escape`: the headline, then each group and its alerts, one line each, at most
/// `limit` UTF-16 units; what does not fit ends as "… and N more".
pub fn text(
    digest: &Digest<'_>,
    escape: impl Fn(&str) -> String,
    link: &str,
    limit: usize,
) -> String {
    let mut text = format!("🔔 pushmon digest, {}\n", digest.headline());
    if digest.groups.len() > 1 {
        // Every group's count, even those the list below has no room for.
        let counts: Vec<String> = digest
            .groups
            .iter()
            .map(|(group, alerts)| format!("{} {}", group_name(group, &escape), alerts.len()))
            .collect();
        text.push_str(&format!("By tags: {}\n", counts.join(" · ")));
    }
    let tail = format!("\n{link}");
    let mut shown = 0;
    'groups: for (group, alerts) in &digest.groups {
        let heading = format!("\n{} ({}):\n", group_name(group, &escape), alerts.len());
        let mut lines = heading;
        for (listed, alert) in alerts.iter().enumerate() {
            let icon = match alert.kind {
                AlertKind::Down => "🔴",
                AlertKind::Up => "🟢",
            };
            let line = format!(
                "{icon} {} at {}\n",
                summary_escaped(Message::Alert(alert), &escape),
                alert.at.to_rfc3339()
            );
            let more = format!("… and {} more\n", digest.count - shown);
            if utf16_len(&text)
                + utf16_len(&lines)
                + utf16_len(&line)
                + utf16_len(&more)
                + utf16_len(&tail)
                > limit
            {
                if listed == 0 {
                    lines.clear();
                }
                text.push_str(&lines);
                text.push_str(&more);
                break 'groups;
            }
            lines.push_str(&line);
            shown += 1;
        }
        text.push_str(&lines);
    }
    text.push_str(&tail);
    text
}

/// A group as the text shows it.
fn group_name(group: &str, escape: impl Fn(&str) -> String) -> String {
    if group.is_empty() {
        "without tags".to_owned()
    } else {
        escape(&one_line(group))
    }
}

fn utf16_len(text: &str) -> usize {
    text.encode_utf16().count()
}

/// The webhook's digest (`docs/alerts.md`, "Digests"): each alert's usual body, with
/// its own id and group.
pub fn webhook_body(digest: &Digest<'_>) -> Vec<u8> {
    let alerts: Vec<Value> = digest
        .alerts()
        .map(|(group, alert)| {
            let mut one: Value = serde_json::from_slice(&webhook::body(Message::Alert(alert)))
                .unwrap_or(Value::Null);
            if let Some(object) = one.as_object_mut() {
                object.insert("alert_id".to_owned(), json!(digest.alert_id(alert)));
                object.insert("group".to_owned(), json!(group));
            }
            one
        })
        .collect();
    json!({
        "event": "digest",
        "id": digest.id,
        "at": digest.at.to_rfc3339(),
        "count": digest.count,
        "down": digest.down,
        "up": digest.up,
        "alerts": alerts,
    })
    .to_string()
    .into_bytes()
}

/// Alertmanager groups alerts itself: every alert's usual element, in one array.
pub fn alertmanager_body(digest: &Digest<'_>, public_url: &str) -> Vec<u8> {
    let elements: Vec<Value> = digest
        .alerts()
        .flat_map(|(_, alert)| {
            let id = digest.alert_id(alert);
            match alertmanager::body(Message::Alert(alert), &id, public_url) {
                Value::Array(elements) => elements,
                other => vec![other],
            }
        })
        .collect();
    Value::Array(elements).to_string().into_bytes()
}

impl Notifier {
    /// Sends `digest` through `channel`, once. Each kind renders its own message; a new
    /// kind adds an arm (the readable [`text`] serves any that shows text).
    pub async fn send_digest(
        &self,
        channel: &Channel,
        digest: &Digest<'_>,
    ) -> Result<(), NotifyError> {
        let link = format!("{}/", self.public_url.trim_end_matches('/'));
        match &channel.kind {
            ChannelKind::Webhook { url, secret } => {
                let body = webhook_body(digest);
                let mut headers = vec![(webhook::ALERT_ID_HEADER, digest.id.clone())];
                if let Some(secret) = secret {
                    headers.push((webhook::SIGNATURE_HEADER, webhook::signature(secret, &body)));
                }
                self.post_json(url, body, &headers).await
            }
            ChannelKind::Slack { url } => {
                let text = text(
                    digest,
                    chat::slack_escape,
                    &chat::slack_escape(&link),
                    SLACK_MAX_TEXT,
                );
                let body = json!({ "text": text, "mrkdwn": false })
                    .to_string()
                    .into_bytes();
                self.post_json(url, body, &[]).await
            }
            ChannelKind::Discord { url } => {
                let content = text(digest, chat::discord_escape, &link, DISCORD_MAX_CONTENT);
                let body = json!({ "content": content, "allowed_mentions": { "parse": [] } })
                    .to_string()
                    .into_bytes();
                self.post_json(url, body, &[]).await
            }
            ChannelKind::Email { smtp_url, from, to } => {
                let mail = mail(from, to, digest, &link)?;
                email::send(smtp_url, mail, self.timeout, self.addresses).await
            }
            ChannelKind::Alertmanager { url } => {
                let endpoint = format!("{}/api/v2/alerts", url.trim_end_matches('/'));
                let body = alertmanager_body(digest, &self.public_url);
                self.post_json(&endpoint, body, &[]).await
            }
            ChannelKind::Teams { url } => {
                let full = text(digest, str::to_owned, "", teams::MAX_TEXT);
                let lines: Vec<String> = full
                    .lines()
                    .skip(1)
                    .filter(|line| !line.is_empty())
                    .map(str::to_owned)
                    .collect();
                let color = if digest.down > 0 { "Attention" } else { "Good" };
                let title = format!("pushmon digest, {}", digest.headline());
                let at = digest.at.to_rfc3339();
                let body = teams::card(&title, color, Some(&at), &lines, &link);
                self.send_request(Request::json(reqwest::Method::POST, url, body))
                    .await
            }
            ChannelKind::Telegram {
                bot_token,
                chat_id,
                api_url,
            } => {
                let escaped_link = telegram::html_escape(&link);
                let text = text(
                    digest,
                    telegram::html_escape,
                    &escaped_link,
                    telegram::MAX_TEXT,
                );
                let endpoint = telegram::endpoint(api_url.as_deref(), bot_token);
                let body = telegram::body_with_text(chat_id, &text);
                self.send_request(Request::json(reqwest::Method::POST, &endpoint, body))
                    .await
            }
            ChannelKind::Matrix {
                url,
                access_token,
                room_id,
            } => {
                let transaction = matrix::transaction_id(&digest.id, &channel.id.to_string());
                let endpoint = matrix::endpoint(url, room_id, &transaction)
                    .ok_or_else(|| NotifyError::permanent("url cannot take a path"))?;
                let body =
                    matrix::body_with_text(&text(digest, str::to_owned, &link, matrix::MAX_TEXT));
                let mut request = Request::json(reqwest::Method::PUT, &endpoint, body);
                request.header("Authorization", &format!("Bearer {access_token}"));
                self.send_request(request).await
            }
            ChannelKind::Ntfy {
                url,
                token,
                priority,
            } => {
                let (priority, tag) = if digest.down > 0 {
                    (priority.unwrap_or(4), "rotating_light")
                } else {
                    (3, "white_check_mark")
                };
                let title = format!("pushmon digest, {}", digest.headline());
                let message = text_without_headline(digest, 4000);
                let (endpoint, body) = push::ntfy_with(url, &title, &message, priority, tag, &link);
                let mut request = Request::json(reqwest::Method::POST, &endpoint, body);
                if let Some(token) = token {
                    request.header("Authorization", &format!("Bearer {token}"));
                }
                self.send_request(request).await
            }
            ChannelKind::Gotify {
                url,
                app_token,
                priority,
            } => {
                let priority = if digest.down > 0 {
                    priority.unwrap_or(8)
                } else {
                    4
                };
                let title = format!("pushmon digest, {}", digest.headline());
                let message = text(digest, str::to_owned, &link, 8000);
                let message = message.split_once('\n').map_or("", |(_, rest)| rest);
                let (endpoint, body) = push::gotify_with(url, &title, message, priority);
                let mut request = Request::json(reqwest::Method::POST, &endpoint, body);
                request.header("X-Gotify-Key", app_token);
                self.send_request(request).await
            }
            ChannelKind::Pushover {
                user_key,
                app_token,
                api_url,
                priority,
            } => {
                let priority = if digest.down > 0 {
                    priority.unwrap_or(1)
                } else {
                    0
                };
                let keys = push::PushoverKeys {
                    user_key,
                    app_token,
                    api_url: api_url.as_deref(),
                };
                let title = format!("pushmon digest, {}", digest.headline());
                let message = text_without_headline(digest, 1024);
                let (endpoint, form) =
                    push::pushover_with(keys, &title, &message, priority, digest.at, &link);
                let mut request = Request::new(reqwest::Method::POST, endpoint);
                request.body = Some((
                    "application/x-www-form-urlencoded".to_owned(),
                    form.into_bytes(),
                ));
                self.send_request(request).await
            }
            // Never held (`DigestPolicy::holds`); should one be, each alert goes on its
            // own, in order.
            ChannelKind::Template { .. }
            | ChannelKind::PagerDuty { .. }
            | ChannelKind::Opsgenie { .. } => {
                for (_, alert) in digest.alerts() {
                    self.send(channel, alert).await?;
                }
                Ok(())
            }
        }
    }
}

/// The digest's [`text`] without its first line (a title says it) nor its link (the
/// message links to it), at most `limit` UTF-16 units.
fn text_without_headline(digest: &Digest<'_>, limit: usize) -> String {
    let full = text(digest, str::to_owned, "", limit);
    full.split_once('\n')
        .map_or("", |(_, rest)| rest)
        .trim_end()
        .to_owned()
}

/// The digest as a plain-text mail listing every alert.
fn mail(
    from: &str,
    to: &[String],
    digest: &Digest<'_>,
    link: &str,
) -> Result<lettre::Message, NotifyError> {
    let mut builder = lettre::Message::builder()
        .from(email::parse_mailbox(from)?)
        .subject(format!("[pushmon] {}", digest.headline()))
        .message_id(Some(format!("<{}@pushmon>", digest.id.replace(':', "."))))
        .header(ContentType::TEXT_PLAIN);
    for address in to {
        builder = builder.to(email::parse_mailbox(address)?);
    }
    builder
        .body(text(digest, str::to_owned, link, usize::MAX))
        .map_err(|error| NotifyError::permanent(format!("cannot build the message: {error}")))
}

#[cfg(test)]
mod tests;
