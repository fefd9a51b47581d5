use std::time::Duration;

use serde_json::Value;
use tokio::time::{Instant, advance};

use super::*;
use crate::domain::alert::AlertNotice;
use crate::domain::ids::MonitorId;

const WINDOW: Duration = Duration::from_secs(5);

fn policy(threshold: usize) -> DigestPolicy {
    DigestPolicy {
        window: WINDOW,
        threshold,
        webhooks: false,
    }
}

fn channel(n: u8) -> ChannelId {
    ChannelId::from_bytes([n; 16])
}

fn held(channel_no: u8, seq: u64, name: &str, group: &str, kind: AlertKind) -> Held {
    let mut monitor = [0u8; 16];
    monitor[..8].copy_from_slice(&seq.to_be_bytes());
    Held {
        delivery: Delivery {
            channel: channel(channel_no),
            alert: Alert {
                alert_seq: seq,
                kind,
                reason: if kind == AlertKind::Down {
                    "timeout"
                } else {
                    "heartbeat"
                }
                .to_owned(),
                at: Timestamp::from_millis(1_795_000_000_000 + seq as i64),
                monitor_id: MonitorId::from_bytes(monitor),
                monitor_name: name.to_owned(),
                msg: None,
                value: None,
                notice: AlertNotice::Change,
                exit_status: None,
                output: None,
                severity: Default::default(),
                labels: Default::default(),
                tags: Box::default(),
                missing_instances: Box::default(),
            },
        },
        group: group.to_owned(),
    }
}

fn down(channel_no: u8, seq: u64) -> Held {
    held(channel_no, seq, &format!("job-{seq}"), "", AlertKind::Down)
}

fn seqs(held: &[Held]) -> Vec<u64> {
    held.iter()
        .map(|held| held.delivery.alert.alert_seq)
        .collect()
}

/// The first alert to a calm channel opens its window; the window closes once, at its
/// end, whatever arrives meanwhile; below the threshold each goes on its own.
#[tokio::test(start_paused = true)]
async fn the_first_alert_opens_the_window_and_fewer_than_the_threshold_go_one_by_one() {
    let mut batcher = Batcher::new(policy(3));
    let opened = Instant::now();
    assert_eq!(
        batcher.hold(down(1, 10), Instant::now()),
        Some(opened + WINDOW)
    );
    advance(Duration::from_secs(4)).await;
    assert_eq!(
        batcher.hold(down(1, 11), Instant::now()),
        None,
        "the window was open"
    );
    assert!(batcher.close_due(Instant::now()).is_empty(), "closed early");
    assert_eq!(batcher.held(), 2);

    advance(Duration::from_secs(1)).await;
    let released = batcher.close_due(Instant::now());
    assert_eq!(released.len(), 1);
    match &released[0] {
        (closed, Release::Each(held)) => {
            assert_eq!(*closed, channel(1));
            assert_eq!(seqs(held), vec![10, 11]);
        }
        other => panic!("expected one by one, got {other:?}"),
    }
    assert_eq!(batcher.held(), 0);

    // The next alert opens a new window from its own arrival.
    advance(Duration::from_secs(30)).await;
    let now = Instant::now();
    assert_eq!(batcher.hold(down(1, 12), now), Some(now + WINDOW));
}

#[tokio::test(start_paused = true)]
async fn from_the_threshold_on_they_go_as_one_digest_per_channel() {
    let mut batcher = Batcher::new(policy(3));
    for seq in [5, 3, 4] {
        batcher.hold(down(1, seq), Instant::now());
    }
    batcher.hold(down(2, 6), Instant::now());
    batcher.hold(down(2, 7), Instant::now());
    advance(WINDOW).await;
    let mut released = batcher.close_due(Instant::now());
    released.sort_by_key(|(channel, _)| *channel);
    assert_eq!(released.len(), 2);
    match &released[0].1 {
        Release::Digests(digests) => {
            assert_eq!(digests.len(), 1);
            assert_eq!(
                seqs(&digests[0]),
                vec![3, 4, 5],
                "in the order they were owed"
            );
        }
        other => panic!("expected a digest, got {other:?}"),
    }
    assert!(
        matches!(&released[1].1, Release::Each(held) if held.len() == 2),
        "each channel counts its own: {:?}",
        released[1].1
    );
}

#[tokio::test(start_paused = true)]
async fn a_huge_burst_is_cut_into_digests_of_bounded_size() {
    let mut batcher = Batcher::new(policy(3));
    for seq in 0..2500 {
        batcher.hold(down(1, seq), Instant::now());
    }
    advance(WINDOW).await;
    let released = batcher.close_due(Instant::now());
    let [(_, Release::Digests(digests))] = released.as_slice() else {
        panic!("expected digests: {released:?}");
    };
    let sizes: Vec<usize> = digests.iter().map(Vec::len).collect();
    assert_eq!(sizes, vec![MAX_DIGEST_ALERTS, MAX_DIGEST_ALERTS, 500]);
    let all: Vec<u64> = digests.iter().flat_map(|digest| seqs(digest)).collect();
    assert_eq!(all, (0..2500).collect::<Vec<_>>(), "none lost, none twice");
}

#[test]
fn only_kinds_that_take_digests_are_held_and_a_zero_window_holds_nothing() {
    let webhook = ChannelKind::Webhook {
        url: "http://127.0.0.1/".to_owned(),
        secret: None,
    };
    let slack = ChannelKind::Slack {
        url: "http://127.0.0.1/".to_owned(),
    };
    assert!(
        !policy(3).holds(&webhook),
        "webhooks get single alerts by default"
    );
    assert!(policy(3).holds(&slack));
    let with_webhooks = DigestPolicy {
        webhooks: true,
        ..policy(3)
    };
    assert!(with_webhooks.holds(&webhook));
    let off = DigestPolicy {
        window: Duration::ZERO,
        ..with_webhooks
    };
    assert!(!off.holds(&webhook) && !off.holds(&slack));
}

fn installation() -> InstallationId {
    InstallationId::from_bytes([7; 16])
}

#[test]
fn a_digest_id_names_its_set_of_alerts_whatever_their_order() {
    let ab = [down(1, 1), down(1, 2)];
    let ba = [down(1, 2), down(1, 1)];
    let ac = [down(1, 1), down(1, 3)];
    let id = Digest::new(installation(), &ab).id;
    assert!(
        id.starts_with(&format!("{}:digest-", installation())),
        "{id}"
    );
    assert_eq!(id, Digest::new(installation(), &ba).id);
    assert_ne!(id, Digest::new(installation(), &ac).id);
    assert_ne!(id, installation().alert_id(1));
}

/// The clustered mode's names: from the monitor and time, as the shard logs' ids are
/// the same on every pod whatever each pod's local sequence numbers.
struct LogIds;

impl ClusterDelivery for LogIds {
    fn alert_id(&self, alert: &Alert) -> String {
        format!("PUSHMON_G0:{}-{}", alert.monitor_name, alert.at.as_millis())
    }

    fn may_send(&self, _monitor: MonitorId) -> bool {
        true
    }
}

#[test]
fn clustered_a_digest_and_its_alerts_carry_the_logs_ids_whatever_the_local_sequence_numbers() {
    let on_one_pod = mixed();
    // Another pod numbered the same alerts otherwise.
    let mut on_another: Vec<Held> = mixed();
    for (held, seq) in on_another.iter_mut().zip([40, 30, 20, 10]) {
        held.delivery.alert.alert_seq = seq;
    }
    let one = Digest::named(installation(), &on_one_pod, Some(&LogIds));
    let another = Digest::named(
        InstallationId::from_bytes([9; 16]),
        &on_another,
        Some(&LogIds),
    );
    assert!(one.id.starts_with("PUSHMON:digest-"), "{}", one.id);
    assert_eq!(one.id, another.id);
    assert_ne!(one.id, Digest::new(installation(), &on_one_pod).id);
    let ids = |digest: &Digest<'_>| -> Vec<String> {
        let body: Value = serde_json::from_slice(&webhook_body(digest)).expect("json");
        let mut ids: Vec<String> = body["alerts"]
            .as_array()
            .expect("alerts")
            .iter()
            .map(|alert| alert["alert_id"].as_str().expect("an id").to_owned())
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(ids(&one), ids(&another));
    assert!(
        ids(&one).iter().all(|id| id.starts_with("PUSHMON_G0:")),
        "{:?}",
        ids(&one)
    );
    // A single node's alert ids stay `<installation>:<seq>`.
    let single = Digest::new(installation(), &on_one_pod);
    assert!(ids(&single).contains(&installation().alert_id(1)));
}

fn mixed() -> Vec<Held> {
    vec![
        held(1, 1, "web-b", "prod, web", AlertKind::Down),
        held(1, 2, "lonely", "", AlertKind::Down),
        held(1, 3, "db-a", "db", AlertKind::Up),
        held(1, 4, "web-a", "prod, web", AlertKind::Down),
    ]
}

#[test]
fn the_text_counts_and_groups_by_tags_with_untagged_monitors_last() {
    let alerts = mixed();
    let digest = Digest::new(installation(), &alerts);
    assert_eq!((digest.count, digest.down, digest.up), (4, 3, 1));
    let text = text(&digest, str::to_owned, "http://pushmon/", usize::MAX);
    assert!(
        text.starts_with("🔔 pushmon digest, 4 alerts: 3 DOWN, 1 UP\n"),
        "{text}"
    );
    let order: Vec<usize> = [
        "db (1):",
        "db-a is UP",
        "prod, web (2):",
        "web-a is DOWN",
        "web-b is DOWN",
        "without tags (1):",
        "lonely is DOWN",
    ]
    .iter()
    .map(|needle| {
        text.find(needle)
            .unwrap_or_else(|| panic!("{needle} missing: {text}"))
    })
    .collect();
    assert!(order.windows(2).all(|pair| pair[0] < pair[1]), "{text}");
    assert!(text.ends_with("\nhttp://pushmon/"), "{text}");
    assert!(!text.contains("more"), "{text}");
}

#[test]
fn a_long_digest_is_cut_to_the_limit_and_says_how_many_more() {
    let alerts: Vec<Held> = (0..300).map(|seq| down(1, seq)).collect();
    let digest = Digest::new(installation(), &alerts);
    let text = text(&digest, chat::discord_escape, "http://pushmon/", 2000);
    assert!(utf16_len(&text) <= 2000, "{}", utf16_len(&text));
    let shown = text.matches(" is DOWN").count();
    assert!(shown > 5, "{text}");
    assert!(
        text.contains(&format!("… and {} more\n", 300 - shown)),
        "{text}"
    );
    let whole = super::text(&digest, str::to_owned, "", usize::MAX);
    assert_eq!(whole.matches(" is DOWN").count(), 300, "email lists all");
}

#[test]
fn the_webhook_digest_carries_each_alerts_usual_body_and_alertmanager_gets_one_array() {
    let alerts = mixed();
    let digest = Digest::new(installation(), &alerts);
    let body: Value = serde_json::from_slice(&webhook_body(&digest)).expect("json");
    assert_eq!(body["event"], "digest");
    assert_eq!(body["id"], digest.id.as_str());
    assert_eq!(body["count"], 4);
    assert_eq!(
        (body["down"].clone(), body["up"].clone()),
        (3.into(), 1.into())
    );
    let listed = body["alerts"].as_array().expect("alerts");
    assert_eq!(listed.len(), 4);
    let single: Value =
        serde_json::from_slice(&webhook::body(Message::Alert(&alerts[1].delivery.alert)))
            .expect("json");
    let lonely = listed
        .iter()
        .find(|alert| alert["monitor"]["name"] == "lonely")
        .expect("lonely listed");
    for (field, value) in single.as_object().expect("object") {
        assert_eq!(&lonely[field], value, "{field}");
    }
    assert_eq!(lonely["alert_id"], installation().alert_id(2));
    assert_eq!(lonely["group"], "");

    let array: Value =
        serde_json::from_slice(&alertmanager_body(&digest, "http://pushmon")).expect("json");
    let array = array.as_array().expect("an array");
    assert_eq!(array.len(), 4);
    assert!(
        array
            .iter()
            .any(|alert| alert["annotations"]["alert_id"] == installation().alert_id(3))
    );
}
