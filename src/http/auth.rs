//! Who is calling the management API, and what they may do.
//!
//! A bearer secret is either the admin token or an API key. Neither is kept: the
//! server holds the SHA-256 of the admin token and of each key, hashes what it is
//! shown, compares with the admin digest in constant time, then looks the digest up
//! among the keys (a hash-map lookup by the digest of a random 256-bit secret teaches a
//! timing attacker nothing) and compares the found digest in constant time too.
//!
//! | caller | monitors, events, channels | `/api/keys` |
//! |---|---|---|
//! | admin token | everything | everything |
//! | `write` key | everything | 403 |
//! | `read` key | GET (and HEAD); anything else 403 | 403 |
//! | none or unknown | 401 | 401 |

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use axum::extract::{Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::Response;
use subtle::ConstantTimeEq;

use crate::cluster::event_log::EventLog;
use crate::domain::api_key::{ApiKey, ApiKeyId, Scope};
use crate::store::{EventStore, StoreError};

use super::AppState;
use super::error::ApiError;

/// The caller behind a request's bearer secret; [`require_access`] puts it in the
/// request's extensions for the handlers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Principal {
    Admin,
    Key { id: ApiKeyId, scope: Scope },
}

impl Principal {
    fn is_read_only(self) -> bool {
        matches!(
            self,
            Self::Key {
                scope: Scope::Read,
                ..
            }
        )
    }

    /// Whether answers may show credentials: push tokens and URLs (with them anyone can
    /// push, so a read key that saw them could fake heartbeats and hide an outage) and
    /// channel URLs (a Slack or Discord webhook URL is itself a secret).
    pub fn sees_credentials(self) -> bool {
        !self.is_read_only()
    }
}

/// Blanks the credential fields of an answer for a caller who may not see them:
/// `push_token`, `push_url`, `url`, `smtp_url` become `null` (the shape stays).
pub fn redact_credentials(principal: Principal, value: &mut serde_json::Value) {
    if principal.sees_credentials() {
        return;
    }
    if let serde_json::Value::Object(fields) = value {
        for name in ["push_token", "push_url", "url", "smtp_url"] {
            if let Some(field) = fields.get_mut(name) {
                *field = serde_json::Value::Null;
            }
        }
    }
}

/// Every API key, by the digest of its secret; read by every management request. A
/// key enters the map only once its record is durable, and leaves it only once its
/// removal is.
pub struct ApiKeyRing {
    store: EventStore,
    by_digest: RwLock<HashMap<[u8; 32], ApiKey>>,
    /// Serialises creations and revocations, so each key's store write and map change
    /// happen together, in the same order for everyone.
    changes: tokio::sync::Mutex<()>,
    /// The event log every change goes through (`http/replicated.rs`).
    log: std::sync::Arc<crate::cluster::event_log::Log>,
}

impl ApiKeyRing {
    /// The ring over `keys`, as loaded from `store`; changes go through `log`.
    pub fn new(
        store: EventStore,
        keys: Vec<ApiKey>,
        log: std::sync::Arc<crate::cluster::event_log::Log>,
    ) -> Self {
        Self {
            store,
            by_digest: RwLock::new(keys.into_iter().map(|key| (key.digest, key)).collect()),
            changes: tokio::sync::Mutex::new(()),
            log,
        }
    }

    /// Applies a key's creation or revocation folded from the cluster-wide log (made
    /// on any pod): stored with the stream's position `position` in the same batch,
    /// then in memory; a creation of a key this pod has, or a revocation of one it
    /// has not, changes nothing (a record delivered again).
    pub async fn apply_replicated(
        &self,
        change: crate::store::ApiKeyChange,
        position: crate::store::FoldPosition,
    ) -> Result<(), StoreError> {
        let _changing = self.changes.lock().await;
        match change {
            crate::store::ApiKeyChange::Created(key) => {
                if self.read().values().any(|known| known.id == key.id) {
                    return Ok(());
                }
                self.store
                    .write_folded_api_key(
                        crate::store::ApiKeyChange::Created(key.clone()),
                        Some(position),
                    )
                    .await?;
                self.write().insert(key.digest, key);
            }
            crate::store::ApiKeyChange::Revoked(id) => {
                if !self.read().values().any(|key| key.id == id) {
                    return Ok(());
                }
                self.store
                    .write_folded_api_key(crate::store::ApiKeyChange::Revoked(id), Some(position))
                    .await?;
                self.write().retain(|_, key| key.id != id);
            }
        }
        Ok(())
    }

    /// The key whose secret has `digest`, if any.
    pub fn find(&self, digest: &[u8; 32]) -> Option<(ApiKeyId, Scope)> {
        let keys = self.read();
        keys.get(digest)
            .filter(|key| bool::from(key.digest.ct_eq(digest)))
            .map(|key| (key.id, key.scope))
    }

    /// Every key, oldest first.
    pub fn list(&self) -> Vec<ApiKey> {
        let mut listed: Vec<ApiKey> = self.read().values().cloned().collect();
        listed.sort_by_key(|key| key.id);
        listed
    }

    /// Stores `key` durably, then lets it authenticate.
    pub async fn add(&self, key: ApiKey) -> Result<(), StoreError> {
        let change = super::replicated::SettingChange::ApiKey(crate::store::ApiKeyChange::Created(
            key.clone(),
        ));
        self.log
            .write(super::replicated::SettingWrite {
                change,
                locally: move || async move {
                    let _changing = self.changes.lock().await;
                    self.store.put_api_key(&key).await?;
                    self.write().insert(key.digest, key);
                    Ok(())
                },
                folded: || Ok(()),
            })
            .await
    }

    /// Removes the key `id` durably, then from memory: no request with it is
    /// authorised after this returns. `false` if there is no such key.
    pub async fn revoke(&self, id: ApiKeyId) -> Result<bool, StoreError> {
        if !self.read().values().any(|key| key.id == id) {
            return Ok(false);
        }
        let change =
            super::replicated::SettingChange::ApiKey(crate::store::ApiKeyChange::Revoked(id));
        self.log
            .write(super::replicated::SettingWrite {
                change,
                locally: move || async move {
                    let _changing = self.changes.lock().await;
                    if !self.read().values().any(|key| key.id == id) {
                        return Ok(false);
                    }
                    self.store.remove_api_key(id).await?;
                    self.write().retain(|_, key| key.id != id);
                    Ok(true)
                },
                folded: || Ok(true),
            })
            .await
    }

    // A panic while holding the lock cannot leave the map half-changed (each change
    // is one insert or retain), so a poisoned lock is still good to use.
    fn read(&self) -> RwLockReadGuard<'_, HashMap<[u8; 32], ApiKey>> {
        self.by_digest
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, HashMap<[u8; 32], ApiKey>> {
        self.by_digest
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// SHA-256 of a bearer secret, as compared by authentication.
pub fn secret_digest(secret: &str) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(secret.as_bytes()).into()
}

/// The secret of an `Authorization` value `Bearer <secret>`. The scheme is matched
/// case-insensitively (RFC 7235: `bearer`, `BEARER`); white space around the secret
/// is ignored, as around the configured admin token.
fn bearer_secret(value: &str) -> Option<&str> {
    let (scheme, secret) = value.trim_start().split_once(' ')?;
    let secret = secret.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !secret.is_empty()).then_some(secret)
}

/// The caller presenting `Authorization: Bearer <secret>`, if the secret is known.
pub fn authenticate(state: &AppState, request: &Request) -> Option<Principal> {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(bearer_secret)?;
    let digest = secret_digest(presented);
    if bool::from(digest.ct_eq(&state.admin_token_hash)) {
        return Some(Principal::Admin);
    }
    state
        .api_keys
        .find(&digest)
        .map(|(id, scope)| Principal::Key { id, scope })
}

/// Monitors, events and channels: the admin token or a `write` key for anything, a
/// `read` key for reads only.
pub async fn require_access(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let principal = authenticate(&state, &request).ok_or(ApiError::Unauthorized)?;
    if principal.is_read_only() && !matches!(*request.method(), Method::GET | Method::HEAD) {
        return Err(ApiError::Forbidden("this API key is read-only"));
    }
    state.require_started()?;
    request.extensions_mut().insert(principal);
    Ok(next.run(request).await)
}

/// `/api/keys` and `/api/settings`: the admin token only.
pub async fn require_admin(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    match authenticate(&state, &request) {
        None => return Err(ApiError::Unauthorized),
        Some(Principal::Admin) => {}
        Some(Principal::Key { .. }) => {
            return Err(ApiError::Forbidden(
                "managing API keys and settings needs the admin token",
            ));
        }
    }
    state.require_started()?;
    Ok(next.run(request).await)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::Timestamp;

    fn key(secret: &str, scope: Scope) -> ApiKey {
        ApiKey {
            id: ApiKeyId::generate(Timestamp::from_millis(0)),
            name: "k".to_owned(),
            scope,
            created_at: Timestamp::from_millis(0),
            digest: secret_digest(secret),
        }
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive_and_nothing_else_is_a_bearer() {
        for (value, secret) in [
            ("Bearer abc", Some("abc")),
            ("bearer abc", Some("abc")),
            ("BEARER abc", Some("abc")),
            ("bEaReR   abc  ", Some("abc")),
            ("Bearer", None),
            ("Bearer ", None),
            ("Basic abc", None),
            ("Bearerabc", None),
            ("abc", None),
            ("Token abc", None),
        ] {
            assert_eq!(bearer_secret(value), secret, "{value:?}");
        }
    }

    #[tokio::test]
    async fn finds_keys_by_the_digest_of_their_secret_only() {
        let dir = tempfile::tempdir().expect("temp dir");
        let opened = EventStore::open(dir.path()).expect("opens");
        let read = key("pmk_read", Scope::Read);
        let write = key("pmk_write", Scope::Write);
        let ring = ApiKeyRing::new(
            opened.store.clone(),
            vec![read.clone()],
            crate::cluster::event_log::Log::new(opened.store.clone(), false),
        );
        ring.add(write.clone()).await.expect("durable");
        assert_eq!(
            ring.find(&secret_digest("pmk_read")),
            Some((read.id, Scope::Read))
        );
        assert_eq!(
            ring.find(&secret_digest("pmk_write")),
            Some((write.id, Scope::Write))
        );
        assert_eq!(ring.find(&secret_digest("pmk_other")), None);
        assert_eq!(ring.find(&read.digest.map(|byte| byte ^ 1)), None);
        assert_eq!(ring.list(), vec![read.clone(), write.clone()]);
        assert!(ring.revoke(read.id).await.expect("durable"));
        assert!(
            !ring.revoke(read.id).await.expect("durable"),
            "already gone"
        );
        assert_eq!(ring.find(&secret_digest("pmk_read")), None);
        assert_eq!(
            ring.find(&secret_digest("pmk_write")),
            Some((write.id, Scope::Write))
        );
        assert_eq!(opened.store.load_api_keys().expect("loads"), vec![write]);
        opened.store.close().await;
    }
}
