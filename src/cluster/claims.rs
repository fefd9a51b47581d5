//! Cluster-wide claims on what the API keeps unique among monitors (a monitor's slug
//! and its push token), fenced by JetStream itself: a replicated key-value bucket,
//! [`BUCKET`], whose `create` succeeds only while its key is absent (or deleted). Of
//! two pods claiming one value at once exactly one gets it; the other answers what a
//! single node answers for a value another monitor has.
//!
//! A claim's key names the kind and the value ([`ClaimKey`]: a slug as it is, a push
//! token only as a SHA-256 digest, so no token is stored in NATS by this bucket); its
//! value names the owner (the monitor's id). Claiming a value its owner holds already
//! succeeds ([`Claimed::Held`]): retries and the claims a pod makes at start for what
//! its copy holds ([`ClaimStore::missing`]) are idempotent. A release deletes a key
//! only while it still names the releasing owner, at the revision it was read at.
//!
//! This module does not decide when to claim or release: `monitor/registry/cluster.rs`
//! claims before it publishes a creation or a change and releases once the change is
//! effective (or its publication failed); `app/cluster.rs` claims at start what the
//! pod's copy already holds. Any error from NATS is [`ClaimError::Unavailable`]: the
//! caller answers 503 and records nothing.
//!
//! Races between pods can leave a claim whose owner does not hold its value (two
//! renames of one monitor at once, a release that failed, a publication that failed
//! after its claim), or a value a monitor holds without a claim (a creation answered
//! `503` whose record the servers stored). [`reconcile`] finds both against a pod's
//! copy, leaving alone any claim younger than a settling time (its change may still
//! be on its way to the log); `app/cluster.rs` runs it on the pod deciding for shard 0.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use async_nats::jetstream::{self, kv};
use bytes::Bytes;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};

use crate::domain::ids::{PushToken, Timestamp, TokenForm};

/// The claims' key-value bucket.
pub const BUCKET: &str = "PUSHMON_CLAIMS";

/// What a claimed value is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ClaimKind {
    /// A monitor's slug.
    Slug,
    /// A monitor's push token.
    Token,
}

impl ClaimKind {
    /// The kind's name in metrics and in keys.
    pub fn name(self) -> &'static str {
        match self {
            Self::Slug => "slug",
            Self::Token => "token",
        }
    }
}

/// A claim's key in [`BUCKET`]: `slug.<slug>` or `token.<hex SHA-256 of the token>`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClaimKey {
    kind: ClaimKind,
    key: String,
}

impl ClaimKey {
    /// A slug's key. Slugs are `a-z`, `0-9` and `-` (checked before they get here),
    /// all valid in a key; anything else is escaped, so no two slugs share a key.
    pub fn slug(slug: &str) -> Self {
        let mut key = String::with_capacity(5 + slug.len());
        key.push_str("slug.");
        for byte in slug.bytes() {
            if byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-' {
                key.push(char::from(byte));
            } else {
                key.push_str(&format!("_{byte:02x}"));
            }
        }
        Self {
            kind: ClaimKind::Slug,
            key,
        }
    }

    /// A push token's key: a digest of the token, never the token.
    pub fn token(token: &PushToken) -> Self {
        let mut digest = Sha256::new();
        match token.form() {
            TokenForm::Native(bytes) => {
                digest.update(b"native:");
                digest.update(bytes);
            }
            TokenForm::Imported(text) => {
                digest.update(b"imported:");
                digest.update(text.as_bytes());
            }
        }
        Self {
            kind: ClaimKind::Token,
            key: format!("token.{}", hex::encode(digest.finalize())),
        }
    }

    pub fn kind(&self) -> ClaimKind {
        self.kind
    }

    pub fn as_str(&self) -> &str {
        &self.key
    }
}

/// A claim made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claimed {
    /// Made now: release it if what it was made for does not happen.
    Fresh,
    /// The owner held it already.
    Held,
}

#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    /// Another owner holds the value.
    #[error("{} is claimed by another owner", .0.name())]
    Taken(ClaimKind),
    /// NATS did not answer, or answered an error: nothing is known to be claimed.
    #[error("the claims bucket is unavailable: {0}")]
    Unavailable(String),
}

/// The claims bucket of a cluster. Cheap to clone.
#[derive(Clone)]
pub struct ClaimStore {
    kv: kv::Store,
}

impl ClaimStore {
    /// Opens [`BUCKET`], creating it (file storage, `replicas` replicas, one value
    /// per key) if it does not exist; an existing bucket is used as it is.
    pub async fn open(context: &jetstream::Context, replicas: usize) -> Result<Self, ClaimError> {
        if let Ok(kv) = context.get_key_value(BUCKET).await {
            return Ok(Self { kv });
        }
        let created = context
            .create_key_value(kv::Config {
                bucket: BUCKET.to_owned(),
                description: "pushmon: slugs and push tokens claimed cluster-wide".to_owned(),
                history: 1,
                storage: jetstream::stream::StorageType::File,
                num_replicas: replicas,
                ..Default::default()
            })
            .await;
        match created {
            Ok(kv) => Ok(Self { kv }),
            // Created meanwhile by another pod.
            Err(error) => context
                .get_key_value(BUCKET)
                .await
                .map(|kv| Self { kv })
                .map_err(|_| ClaimError::Unavailable(error.to_string())),
        }
    }

    /// Claims `key` for `owner`: [`Claimed::Fresh`] if it was free (absent or
    /// released), [`Claimed::Held`] if `owner` holds it already,
    /// [`ClaimError::Taken`] if another owner does.
    pub async fn claim(&self, key: &ClaimKey, owner: &str) -> Result<Claimed, ClaimError> {
        let created = self
            .kv
            .create(key.as_str(), Bytes::copy_from_slice(owner.as_bytes()))
            .await;
        let error = match created {
            Ok(_) => return Ok(Claimed::Fresh),
            Err(error) => error,
        };
        // Taken, or a claim raced this one, or NATS failed: the key's entry says which.
        match self.holder(key).await? {
            Some((holder, _)) if holder == owner.as_bytes() => Ok(Claimed::Held),
            Some(_) => {
                metrics::counter!(
                    crate::prometheus::CLUSTER_CLAIMS_REFUSED_TOTAL,
                    "kind" => key.kind().name()
                )
                .increment(1);
                Err(ClaimError::Taken(key.kind()))
            }
            None => Err(ClaimError::Unavailable(error.to_string())),
        }
    }

    /// Releases `key` if `owner` holds it (nothing otherwise).
    pub async fn release(&self, key: &ClaimKey, owner: &str) -> Result<(), ClaimError> {
        let Some((holder, revision)) = self.holder(key).await? else {
            return Ok(());
        };
        if holder != owner.as_bytes() {
            return Ok(());
        }
        match self
            .kv
            .delete_expect_revision(key.as_str(), Some(revision))
            .await
        {
            Ok(()) => Ok(()),
            Err(error) => match self.holder(key).await? {
                // Released or claimed anew meanwhile: not this claim any more.
                Some((holder, now)) if holder == owner.as_bytes() && now == revision => {
                    Err(ClaimError::Unavailable(error.to_string()))
                }
                _ => Ok(()),
            },
        }
    }

    /// Which of `keys` the bucket has no claim for (absent or released): what a pod
    /// claims at start for what its copy holds.
    pub async fn missing(&self, keys: Vec<ClaimKey>) -> Result<Vec<ClaimKey>, ClaimError> {
        let mut held = HashSet::new();
        let mut listing = self
            .kv
            .keys()
            .await
            .map_err(|error| ClaimError::Unavailable(error.to_string()))?;
        while let Some(key) = listing.next().await {
            held.insert(key.map_err(|error| ClaimError::Unavailable(error.to_string()))?);
        }
        Ok(keys
            .into_iter()
            .filter(|key| !held.contains(key.as_str()))
            .collect())
    }

    /// Every claim the bucket holds now (released keys left out). `Unavailable` if
    /// the listing does not complete within `within`.
    pub async fn claims(&self, within: Duration) -> Result<Vec<Claim>, ClaimError> {
        let unavailable =
            |error: &dyn std::fmt::Display| ClaimError::Unavailable(error.to_string());
        // Fresh from the server (`kv::Store::status` answers what was known at open).
        let info = self
            .kv
            .stream
            .get_info()
            .await
            .map_err(|e| unavailable(&e))?;
        if info.state.messages == 0 {
            return Ok(Vec::new());
        }
        // The last entry of every key, then whatever changes after: read up to the
        // first entry with nothing after it.
        let mut watch = self
            .kv
            .watch_with_history(">")
            .await
            .map_err(|e| unavailable(&e))?;
        let listing = async {
            let mut claims = Vec::new();
            while let Some(entry) = watch.next().await {
                let entry = entry.map_err(|e| unavailable(&e))?;
                let last = entry.delta == 0;
                if entry.operation == kv::Operation::Put {
                    claims.push(Claim {
                        key: entry.key,
                        owner: String::from_utf8_lossy(&entry.value).into_owned(),
                        revision: entry.revision,
                        created: Timestamp::from_millis(
                            i64::try_from(entry.created.unix_timestamp_nanos() / 1_000_000)
                                .unwrap_or(0),
                        ),
                    });
                }
                if last {
                    return Ok(claims);
                }
            }
            Err(ClaimError::Unavailable(
                "the listing of claims ended early".to_owned(),
            ))
        };
        tokio::time::timeout(within, listing).await.map_err(|_| {
            ClaimError::Unavailable(format!("no listing of claims within {within:?}"))
        })?
    }

    /// Deletes `claim` if its key is still at the claim's revision; whether it did.
    pub async fn drop_claim(&self, claim: &Claim) -> Result<bool, ClaimError> {
        match self
            .kv
            .delete_expect_revision(&claim.key, Some(claim.revision))
            .await
        {
            Ok(()) => Ok(true),
            Err(error) => match self.entry_revision(&claim.key).await? {
                // Claimed anew (or released) meanwhile: not this claim any more.
                Some(now) if now == claim.revision => {
                    Err(ClaimError::Unavailable(error.to_string()))
                }
                _ => Ok(false),
            },
        }
    }

    async fn entry_revision(&self, key: &str) -> Result<Option<u64>, ClaimError> {
        let entry = self
            .kv
            .entry(key)
            .await
            .map_err(|error| ClaimError::Unavailable(error.to_string()))?;
        Ok(entry
            .filter(|entry| entry.operation == kv::Operation::Put)
            .map(|entry| entry.revision))
    }

    /// The owner holding `key` and the revision it was claimed at; `None` if none.
    async fn holder(&self, key: &ClaimKey) -> Result<Option<(Bytes, u64)>, ClaimError> {
        let entry = self
            .kv
            .entry(key.as_str())
            .await
            .map_err(|error| ClaimError::Unavailable(error.to_string()))?;
        Ok(entry
            .filter(|entry| entry.operation == kv::Operation::Put)
            .map(|entry| (entry.value, entry.revision)))
    }
}

/// A claim as the bucket holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    /// Its key ([`ClaimKey::as_str`]).
    pub key: String,
    /// The owner it names.
    pub owner: String,
    pub revision: u64,
    /// When it was made (the servers' clock).
    pub created: Timestamp,
}

/// What [`reconcile`] found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reconciliation {
    /// Claims older than the settling time whose owner does not hold their value in
    /// the copy: to delete (at their revision).
    pub stale: Vec<Claim>,
    /// Values the copy's monitors hold with no claim, or whose claim is stale: to
    /// claim for the owner given.
    pub unclaimed: Vec<(ClaimKey, String)>,
}

/// Compares the bucket's `claims` with what a caught-up copy `holds` (each claim
/// key to the owner holding its value) at `now`. A claim younger than `settle` is
/// left alone, whoever holds its value: the change it was made for may still be on
/// its way to the log.
pub fn reconcile(
    holds: &HashMap<ClaimKey, String>,
    claims: &[Claim],
    now: Timestamp,
    settle: Duration,
) -> Reconciliation {
    let mut claimed: HashMap<&str, &Claim> = claims
        .iter()
        .map(|claim| (claim.key.as_str(), claim))
        .collect();
    let holders: HashMap<&str, &str> = holds
        .iter()
        .map(|(key, owner)| (key.as_str(), owner.as_str()))
        .collect();
    let mut stale = Vec::new();
    claimed.retain(|key, claim| {
        let held_by_owner = holders.get(key) == Some(&claim.owner.as_str());
        let settled = u128::from(claim.created.millis_until(now)) >= settle.as_millis();
        if held_by_owner || !settled {
            return true;
        }
        stale.push((*claim).clone());
        false
    });
    let mut unclaimed: Vec<(ClaimKey, String)> = holds
        .iter()
        .filter(|(key, _)| !claimed.contains_key(key.as_str()))
        .map(|(key, owner)| (key.clone(), owner.clone()))
        .collect();
    stale.sort_by(|a, b| a.key.cmp(&b.key));
    unclaimed.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
    Reconciliation { stale, unclaimed }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slug_keys_are_the_slug_and_escape_anything_a_key_may_not_hold() {
        assert_eq!(ClaimKey::slug("db-backup-2").as_str(), "slug.db-backup-2");
        assert_eq!(ClaimKey::slug("a.b").as_str(), "slug.a_2eb");
        assert_ne!(ClaimKey::slug("a.b"), ClaimKey::slug("a_2eb"));
        assert_eq!(ClaimKey::slug("x").kind(), ClaimKind::Slug);
    }

    #[test]
    fn token_keys_are_a_digest_never_the_token() {
        let token = PushToken::from_bytes([7; 16]);
        let key = ClaimKey::token(&token);
        assert_eq!(key.kind(), ClaimKind::Token);
        assert_eq!(key.as_str().len(), "token.".len() + 64);
        assert!(!key.as_str().contains(&token.reveal()));
        assert_eq!(key, ClaimKey::token(&PushToken::from_bytes([7; 16])));
        assert_ne!(key, ClaimKey::token(&PushToken::from_bytes([8; 16])));
        let imported = PushToken::parse("an-imported-token-0123456789").expect("a token");
        assert_ne!(ClaimKey::token(&imported), key);
    }

    fn claim(key: &ClaimKey, owner: &str, revision: u64, age_seconds: i64) -> Claim {
        Claim {
            key: key.as_str().to_owned(),
            owner: owner.to_owned(),
            revision,
            created: Timestamp::from_millis(now().as_millis() - age_seconds * 1000),
        }
    }

    fn now() -> Timestamp {
        Timestamp::from_millis(1_800_000_000_000)
    }

    const SETTLE: Duration = Duration::from_secs(600);

    #[test]
    fn claims_whose_owner_holds_the_value_are_kept_and_nothing_is_claimed_again() {
        let slug = ClaimKey::slug("backup");
        let token = ClaimKey::token(&PushToken::from_bytes([1; 16]));
        let holds = HashMap::from([
            (slug.clone(), "m1".to_owned()),
            (token.clone(), "m1".to_owned()),
        ]);
        let claims = [claim(&slug, "m1", 4, 9_999), claim(&token, "m1", 5, 9_999)];
        assert_eq!(
            reconcile(&holds, &claims, now(), SETTLE),
            Reconciliation::default()
        );
    }

    #[test]
    fn a_settled_claim_whose_owner_does_not_hold_the_value_is_stale() {
        let gone = ClaimKey::slug("renamed-away");
        let other = ClaimKey::slug("held-by-another");
        let holds = HashMap::from([(other.clone(), "m2".to_owned())]);
        let claims = [claim(&gone, "m1", 3, 601), claim(&other, "m1", 7, 3_600)];
        let found = reconcile(&holds, &claims, now(), SETTLE);
        assert_eq!(found.stale, vec![claims[1].clone(), claims[0].clone()]);
        // The value another monitor holds is claimed for it once the stale claim goes.
        assert_eq!(found.unclaimed, vec![(other, "m2".to_owned())]);
    }

    #[test]
    fn a_claim_younger_than_the_settling_time_is_left_alone_whoever_holds_its_value() {
        let fresh = ClaimKey::slug("being-created");
        let contested = ClaimKey::slug("contested");
        let holds = HashMap::from([(contested.clone(), "m2".to_owned())]);
        let claims = [claim(&fresh, "m1", 9, 599), claim(&contested, "m1", 10, 0)];
        assert_eq!(
            reconcile(&holds, &claims, now(), SETTLE),
            Reconciliation::default()
        );
    }

    #[test]
    fn a_value_held_without_a_claim_is_to_be_claimed_for_its_holder() {
        let token = ClaimKey::token(&PushToken::from_bytes([2; 16]));
        let holds = HashMap::from([(token.clone(), "m3".to_owned())]);
        let found = reconcile(&holds, &[], now(), SETTLE);
        assert!(found.stale.is_empty());
        assert_eq!(found.unclaimed, vec![(token, "m3".to_owned())]);
    }
}
