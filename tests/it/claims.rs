//! Uniqueness across pods in the clustered mode (`cluster/claims.rs`): a monitor's
//! slug and push token are claimed in a JetStream key-value bucket before the
//! creation or change is published, so of two pods taking the same value at once
//! exactly one succeeds and the other answers what a single node answers; renames,
//! token rotations and deletions give the value back, and so does a creation whose
//! record is not acknowledged; a pod claims what its copy holds at start, and the
//! pod deciding for shard 0 keeps reconciling the bucket with its copy; an
//! unreachable bucket answers 503 and records nothing. Two real
//! `pushmon serve` processes and a real NATS server (`nats.rs`).

use std::collections::BTreeMap;
use std::time::Duration;

use pushmon::cluster::claims::{BUCKET, ClaimKey};
use pushmon::domain::ids::PushToken;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::cluster::serve_args;
use crate::nats::Nats;
use crate::support::{ServerProcess, expect_error};

const SLUG_TAKEN: &str = "slug is already used by another monitor";
const TOKEN_TAKEN: &str = "push_token is already used by another monitor";

async fn two_pods(nats: &Nats) -> (ServerProcess, ServerProcess, [tempfile::TempDir; 2]) {
    let url = nats.urls()[0].clone();
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let pod_a = ServerProcess::start(dirs[0].path(), &serve_args(&url, "pod-a")).await;
    let pod_b = ServerProcess::start(dirs[1].path(), &serve_args(&url, "pod-b")).await;
    (pod_a, pod_b, dirs)
}

/// A chosen push token no one else has: 32 random hex digits.
fn chosen_token() -> String {
    format!("{:032x}", rand::random::<u128>())
}

async fn create(server: &ServerProcess, body: Value) -> (StatusCode, Value) {
    let response = server.post_monitor(&body).await;
    let status = response.status();
    (status, response.json().await.unwrap_or_default())
}

/// `GET /api/monitors` on `server`, once it lists `count` monitors (its fold may lag).
async fn listed(server: &ServerProcess, count: usize) -> Vec<crate::support::Monitor> {
    let start = Instant::now();
    loop {
        let monitors = server.list_monitors().await;
        if monitors.len() == count {
            return monitors;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{} monitors listed, not {count}, within 10 s",
            monitors.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until `server`'s copy of monitor `id` satisfies `condition` (or, with
/// `None`, until it no longer has it).
async fn until_copy(server: &ServerProcess, id: &str, condition: Option<&dyn Fn(&Value) -> bool>) {
    let start = Instant::now();
    loop {
        let response = server
            .api(reqwest::Method::GET, &format!("/api/monitors/{id}"))
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap_or_default();
        let done = match condition {
            Some(condition) => status == StatusCode::OK && condition(&body),
            None => status == StatusCode::NOT_FOUND,
        };
        if done {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "monitor {id}: this pod's copy did not catch up within 10 s ({status} {body})"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn claims_bucket(nats: &Nats) -> async_nats::jetstream::kv::Store {
    let client = async_nats::connect(nats.urls()[0].as_str()).await.unwrap();
    async_nats::jetstream::new(client)
        .get_key_value(BUCKET)
        .await
        .unwrap()
}

/// Two pods, each taking two creations with the same slug at once, many times: every
/// round gives exactly one `201`, and the others the single node's error for a slug
/// another monitor has; the same for a chosen push token. Both pods end with one
/// monitor per slug and per token, the same ones.
#[tokio::test]
async fn creations_racing_on_two_pods_for_one_slug_or_token_give_it_to_exactly_one_monitor() {
    const ROUNDS: usize = 12;
    let nats = Nats::single().await;
    let (pod_a, pod_b, _dirs) = two_pods(&nats).await;

    for round in 0..ROUNDS {
        let slug = format!("race-{round}");
        let token = chosen_token();
        let bodies = [
            json!({"name": format!("slug-{round}"), "timeout_seconds": 3600, "slug": slug}),
            json!({"name": format!("token-{round}"), "timeout_seconds": 3600, "push_token": token}),
        ];
        for (body, error) in bodies.iter().zip([SLUG_TAKEN, TOKEN_TAKEN]) {
            let answers = futures::future::join_all([
                create(&pod_a, body.clone()),
                create(&pod_b, body.clone()),
                create(&pod_a, body.clone()),
                create(&pod_b, body.clone()),
            ])
            .await;
            let created = answers
                .iter()
                .filter(|(status, _)| *status == StatusCode::CREATED)
                .count();
            assert_eq!(created, 1, "round {round}, {body}: {answers:?}");
            for (status, answer) in &answers {
                if *status != StatusCode::CREATED {
                    assert_eq!(
                        (*status, answer["error"].as_str()),
                        (StatusCode::UNPROCESSABLE_ENTITY, Some(error)),
                        "round {round}: {answers:?}"
                    );
                }
            }
        }
    }

    let on_a = listed(&pod_a, 2 * ROUNDS).await;
    let on_b = listed(&pod_b, 2 * ROUNDS).await;
    let ids = |monitors: &[crate::support::Monitor]| -> BTreeMap<String, String> {
        monitors
            .iter()
            .map(|monitor| (monitor.name.clone(), monitor.id.clone()))
            .collect()
    };
    assert_eq!(
        ids(&on_a).len(),
        2 * ROUNDS,
        "one monitor per name: {on_a:?}"
    );
    assert_eq!(ids(&on_a), ids(&on_b), "the same monitors on both pods");
    let refused = pod_a.metrics().await + &pod_b.metrics().await;
    let counted = |kind: &str| -> f64 {
        let series = format!("pushmon_cluster_claims_refused_total{{kind=\"{kind}\"}} ");
        refused
            .lines()
            .filter_map(|line| line.strip_prefix(series.as_str())?.parse::<f64>().ok())
            .sum()
    };
    // Refusals on the taking pod's own copy or claims count only when the bucket
    // refused: at least the rounds where the other pod's creation came second.
    assert!(counted("slug") + counted("token") >= 1.0, "{refused}");
    pod_a.sigkill().await;
    pod_b.sigkill().await;
}

/// A rename, a token rotation and a deletion on pod A give their slug and token
/// back: once pod B's copy has the change, pod B creates monitors with them. Before,
/// pod B is refused the values even where its copy does not show them yet (the
/// bucket holds them), and a rename on pod B to a slug pod A's monitor holds is
/// refused too.
#[tokio::test]
async fn renames_rotations_and_deletions_give_slugs_and_tokens_back_to_any_pod() {
    let nats = Nats::single().await;
    let (pod_a, pod_b, _dirs) = two_pods(&nats).await;
    let token = chosen_token();

    let first = pod_a
        .create_monitor_from(&json!({"name": "first", "timeout_seconds": 3600,
            "slug": "first", "push_token": token}))
        .await;
    // Refused by the bucket, whether or not pod B has folded the creation yet.
    let refused = pod_b
        .post_monitor(&json!({"name": "again", "timeout_seconds": 3600, "slug": "first"}))
        .await;
    assert_eq!(
        expect_error(refused, StatusCode::UNPROCESSABLE_ENTITY).await,
        SLUG_TAKEN
    );
    let refused = pod_b
        .post_monitor(&json!({"name": "again", "timeout_seconds": 3600, "push_token": token}))
        .await;
    assert_eq!(
        expect_error(refused, StatusCode::UNPROCESSABLE_ENTITY).await,
        TOKEN_TAKEN
    );

    // Renamed on pod A: "first" is free again, "second" is taken.
    let renamed = pod_a
        .patch_monitor(&first.id, &json!({"slug": "second"}))
        .await;
    crate::support::expect_json(renamed, StatusCode::OK).await;
    until_copy(
        &pod_b,
        &first.id,
        Some(&|monitor| monitor["slug"] == "second"),
    )
    .await;
    let other = pod_b
        .create_monitor_from(&json!({"name": "other", "timeout_seconds": 3600, "slug": "first"}))
        .await;
    let refused = pod_a
        .post_monitor(&json!({"name": "again", "timeout_seconds": 3600, "slug": "second"}))
        .await;
    assert_eq!(
        expect_error(refused, StatusCode::UNPROCESSABLE_ENTITY).await,
        SLUG_TAKEN
    );
    // A rename on pod B to the slug of pod A's monitor.
    let refused = pod_b
        .patch_monitor(&other.id, &json!({"slug": "second"}))
        .await;
    assert_eq!(
        expect_error(refused, StatusCode::UNPROCESSABLE_ENTITY).await,
        SLUG_TAKEN
    );
    // Renaming to the slug it has is no conflict with itself.
    let same = pod_b
        .patch_monitor(&other.id, &json!({"slug": "first"}))
        .await;
    crate::support::expect_json(same, StatusCode::OK).await;

    // A new token on pod A: the chosen one is free again.
    let rotated = pod_a.rotate_token(&first.id).await;
    assert_ne!(rotated.push_token, token);
    let rotated_token = rotated.push_token.clone();
    until_copy(
        &pod_b,
        &first.id,
        Some(&|monitor| monitor["push_token"] == rotated_token.as_str()),
    )
    .await;
    let third = pod_b
        .create_monitor_from(
            &json!({"name": "third", "timeout_seconds": 3600, "push_token": token}),
        )
        .await;
    assert_eq!(third.push_token, token);
    // The rotated token is claimed: pod B cannot create a monitor with it.
    let refused = pod_b
        .post_monitor(&json!({"name": "again", "timeout_seconds": 3600,
            "push_token": rotated.push_token}))
        .await;
    let refused = expect_error(refused, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(refused, TOKEN_TAKEN);

    // Deleted on pod A: its slug and token are free again.
    let deleted = pod_a.delete_monitor(&first.id).await;
    assert!(deleted.status().is_success(), "{:?}", deleted.text().await);
    until_copy(&pod_b, &first.id, None).await;
    let fourth = pod_b
        .create_monitor_from(&json!({"name": "fourth", "timeout_seconds": 3600,
            "slug": "second", "push_token": rotated.push_token}))
        .await;
    assert_eq!(fourth.push_token, rotated.push_token);

    let on_a = listed(&pod_a, 3).await;
    let on_b = listed(&pod_b, 3).await;
    let mut names: Vec<String> = on_a.iter().map(|monitor| monitor.name.clone()).collect();
    names.sort();
    assert_eq!(names, ["fourth", "other", "third"]);
    assert_eq!(on_a.len(), on_b.len());
    pod_a.sigkill().await;
    pod_b.sigkill().await;
}

/// A cluster whose bucket lacks claims for what the pods hold (made by a version
/// before claims): a pod starting claims every slug and token its copy holds, for
/// the monitor that holds it.
#[tokio::test]
async fn a_starting_pod_claims_the_slugs_and_tokens_its_copy_holds() {
    let nats = Nats::single().await;
    let url = nats.urls()[0].clone();
    let dir_a = tempfile::tempdir().unwrap();
    let pod_a = ServerProcess::start(dir_a.path(), &serve_args(&url, "pod-a")).await;
    let token = chosen_token();
    let monitor = pod_a
        .create_monitor_from(&json!({"name": "old", "timeout_seconds": 3600,
            "slug": "old", "push_token": token}))
        .await;
    let plain = pod_a.create_monitor("plain", 3600).await;
    let bucket = claims_bucket(&nats).await;
    let keys = [
        (ClaimKey::slug("old"), &monitor.id),
        (
            ClaimKey::token(&PushToken::parse(&token).unwrap()),
            &monitor.id,
        ),
        (
            ClaimKey::token(&PushToken::parse(&plain.push_token).unwrap()),
            &plain.id,
        ),
    ];
    for (key, owner) in &keys {
        let held = bucket.get(key.as_str()).await.unwrap();
        assert_eq!(held.as_deref(), Some(owner.as_bytes()), "{key:?}");
        bucket.purge(key.as_str()).await.unwrap();
    }

    // A second pod folds the logs, then claims what its copy holds before it is ready.
    let dir_b = tempfile::tempdir().unwrap();
    let pod_b = ServerProcess::start(dir_b.path(), &serve_args(&url, "pod-b")).await;
    for (key, owner) in &keys {
        let held = bucket.get(key.as_str()).await.unwrap();
        assert_eq!(
            held.as_deref(),
            Some(owner.as_bytes()),
            "{key:?} claimed again"
        );
    }
    pod_a.sigkill().await;
    pod_b.sigkill().await;
}

/// The pod deciding for shard 0 brings the bucket in line with its copy: a settled
/// claim whose owner does not hold the value (left behind by a race) is deleted, so
/// the value can be taken again, and a value a monitor holds without a claim is
/// claimed for it.
#[tokio::test]
async fn claims_left_behind_are_deleted_and_missing_ones_made_by_the_reconciliation() {
    let nats = Nats::single().await;
    let url = nats.urls()[0].clone();
    let dir = tempfile::tempdir().unwrap();
    let pod = ServerProcess::start_with_env(
        dir.path(),
        &serve_args(&url, "pod-a"),
        &[
            ("PUSHMON_CLUSTER_CLAIMS_EVERY", "1"),
            ("PUSHMON_CLUSTER_CLAIMS_SETTLE", "2"),
        ],
    )
    .await;
    let kept = pod
        .create_monitor_from(&json!({"name": "kept", "timeout_seconds": 3600, "slug": "kept"}))
        .await;
    let bucket = claims_bucket(&nats).await;
    // A claim left behind: it names a monitor that holds nothing.
    let nobody = "00000000-0000-7000-8000-00000000dead";
    bucket
        .put(ClaimKey::slug("orphan").as_str(), nobody.into())
        .await
        .unwrap();
    let (status, body) = create(
        &pod,
        json!({"name": "blocked", "timeout_seconds": 60, "slug": "orphan"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    // A value held without a claim.
    bucket.purge(ClaimKey::slug("kept").as_str()).await.unwrap();

    let start = Instant::now();
    let taken = loop {
        let (status, body) = create(
            &pod,
            json!({"name": "orphan", "timeout_seconds": 60, "slug": "orphan"}),
        )
        .await;
        if status == StatusCode::CREATED {
            break body;
        }
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the claim left behind still blocks the slug after 30 s; log:\n{}",
            pod.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let owner = bucket.get(ClaimKey::slug("orphan").as_str()).await.unwrap();
    assert_eq!(
        owner.as_deref(),
        Some(taken["id"].as_str().unwrap().as_bytes()),
        "the slug is claimed for the monitor that took it"
    );
    loop {
        let held = bucket.get(ClaimKey::slug("kept").as_str()).await.unwrap();
        if held.as_deref() == Some(kept.id.as_bytes()) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the missing claim was not made again within 30 s: {held:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let metrics = pod.metrics().await;
    for action in ["deleted", "claimed"] {
        let line = format!("pushmon_cluster_claims_reconciled_total{{action=\"{action}\"}} ");
        let count: f64 = metrics
            .lines()
            .find_map(|l| l.strip_prefix(line.as_str()))
            .unwrap_or_else(|| panic!("no {line} in the metrics"))
            .trim()
            .parse()
            .unwrap();
        assert!(count >= 1.0, "{line}{count}");
    }
    pod.sigkill().await;
}

/// With the claims bucket gone, a creation or rename that needs a claim answers 503
/// and records nothing; one that needs none still works.
#[tokio::test]
async fn without_the_claims_bucket_a_creation_needing_a_claim_answers_503_and_records_nothing() {
    let nats = Nats::single().await;
    let url = nats.urls()[0].clone();
    let dir_a = tempfile::tempdir().unwrap();
    let pod_a = ServerProcess::start(dir_a.path(), &serve_args(&url, "pod-a")).await;
    let kept = pod_a.create_monitor("kept", 3600).await;
    let client = async_nats::connect(url.as_str()).await.unwrap();
    async_nats::jetstream::new(client)
        .delete_key_value(BUCKET)
        .await
        .unwrap();

    let refused = pod_a
        .post_monitor(&json!({"name": "new", "timeout_seconds": 3600, "slug": "new"}))
        .await;
    expect_error(refused, StatusCode::SERVICE_UNAVAILABLE).await;
    let refused = pod_a
        .patch_monitor(&kept.id, &json!({"slug": "renamed"}))
        .await;
    expect_error(refused, StatusCode::SERVICE_UNAVAILABLE).await;
    // A change that gives or gives up no value needs no claim.
    let paused = pod_a.pause(&kept.id).await;
    assert_eq!(paused.id, kept.id);
    let monitors = pod_a.list_monitors().await;
    assert_eq!(monitors.len(), 1, "{monitors:?}");
    assert_eq!(pod_a.monitor_value(&kept.id).await["slug"], Value::Null);
    pod_a.sigkill().await;
}

/// A creation whose record is not acknowledged (its shard's stream is gone) answers
/// 503 and gives back the claims it made: the bucket holds no key for its slug or
/// token afterwards.
#[tokio::test]
async fn a_creation_whose_publication_fails_gives_its_claims_back() {
    let nats = Nats::single().await;
    let url = nats.urls()[0].clone();
    let dir_a = tempfile::tempdir().unwrap();
    let pod_a = ServerProcess::start(dir_a.path(), &serve_args(&url, "pod-a")).await;
    pod_a.create_monitor("before", 3600).await;
    let bucket = claims_bucket(&nats).await;
    let keys = || async {
        let mut keys: Vec<String> =
            futures::TryStreamExt::try_collect(bucket.keys().await.unwrap())
                .await
                .unwrap();
        keys.sort();
        keys
    };
    let before = keys().await;
    assert_eq!(before.len(), 1, "the first monitor's token: {before:?}");
    let client = async_nats::connect(url.as_str()).await.unwrap();
    let jetstream = async_nats::jetstream::new(client);
    for stream in ["PUSHMON_G0", "PUSHMON_G1"] {
        jetstream.delete_stream(stream).await.unwrap();
    }

    let token = chosen_token();
    let refused = pod_a
        .post_monitor(&json!({"name": "lost", "timeout_seconds": 3600,
            "slug": "lost", "push_token": token}))
        .await;
    expect_error(refused, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(keys().await, before, "the creation's claims are released");
    assert_eq!(
        bucket.get(ClaimKey::slug("lost").as_str()).await.unwrap(),
        None
    );
    pod_a.sigkill().await;
}

/// A measurement, not a check: creations on one pod with no slug (one claim, the
/// token's) against with a slug (two claims), median and p90 of each, and how long
/// a pod takes to start when it must claim every value of 1,000 monitors against
/// none. `cargo test --test it claims::measure -- --ignored --nocapture`.
#[tokio::test]
#[ignore = "a measurement (about a minute)"]
async fn measure_claim_costs_on_creation_and_at_start() {
    const CREATIONS: usize = 200;
    const MONITORS: usize = 1_000;
    let nats = Nats::single().await;
    let url = nats.urls()[0].clone();
    let dir_a = tempfile::tempdir().unwrap();
    let pod_a = ServerProcess::start(dir_a.path(), &serve_args(&url, "pod-a")).await;
    let quantiles = |mut took: Vec<Duration>| {
        took.sort();
        (took[took.len() / 2], took[took.len() * 9 / 10])
    };
    for round in 0..2 {
        let mut plain = Vec::new();
        let mut slugged = Vec::new();
        for index in 0..CREATIONS {
            let start = Instant::now();
            pod_a
                .create_monitor(&format!("plain-{round}-{index}"), 3600)
                .await;
            plain.push(start.elapsed());
            let start = Instant::now();
            pod_a
                .create_monitor_from(&json!({"name": "slugged", "timeout_seconds": 3600,
                    "slug": format!("slug-{round}-{index}")}))
                .await;
            slugged.push(start.elapsed());
        }
        println!(
            "round {round}: creation without a slug (1 claim) median/p90 {:?}, with a slug (2 claims) {:?}",
            quantiles(plain),
            quantiles(slugged)
        );
    }
    let created = 4 * CREATIONS;
    for index in created..MONITORS {
        pod_a.create_monitor(&format!("more-{index}"), 3600).await;
    }

    let bucket = claims_bucket(&nats).await;
    let mut timings = Vec::new();
    for (pod, purge) in [("pod-b", false), ("pod-c", true)] {
        if purge {
            let keys: Vec<String> =
                futures::TryStreamExt::try_collect(bucket.keys().await.unwrap())
                    .await
                    .unwrap();
            for key in keys {
                bucket.purge(key).await.unwrap();
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let start = Instant::now();
        let server = ServerProcess::start(dir.path(), &serve_args(&url, pod)).await;
        timings.push((purge, start.elapsed()));
        server.sigkill().await;
    }
    let held = futures::TryStreamExt::try_collect::<Vec<String>>(bucket.keys().await.unwrap())
        .await
        .unwrap()
        .len();
    println!(
        "start of a pod with {MONITORS} monitors ({} slugs): every claim present {:?}, every claim missing {:?}; keys after: {held}",
        2 * CREATIONS,
        timings[0].1,
        timings[1].1
    );
    pod_a.sigkill().await;
}
