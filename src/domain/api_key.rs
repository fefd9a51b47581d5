//! API keys: named bearer secrets with a scope, for scripts and dashboards that should
//! not hold the admin token. The server keeps only the SHA-256 digest of a key's
//! secret; the secret itself is shown once, when the key is created.
//!
//! Pure data: generating the secret, checking it and storing the record live in
//! `http::auth`, `http::api_keys` and `store::api_keys`.

use std::fmt;

use super::ids::Timestamp;

super::ids::uuid_id!(
    /// An API key's id: public (it names the key in listings and `DELETE`).
    ApiKeyId
);

/// What a key may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Every read of the management API (monitors, their events, channels).
    Read,
    /// Everything the admin token can do except managing API keys.
    Write,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "read" => Some(Self::Read),
            "write" => Some(Self::Write),
            _ => None,
        }
    }
}

/// One API key as the server keeps it: never the secret, only its digest.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub name: String,
    pub scope: Scope,
    pub created_at: Timestamp,
    /// SHA-256 of the secret the holder presents as `Authorization: Bearer <secret>`.
    pub digest: [u8; 32],
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The digest is no secret, but it identifies a key: keep it out of logs too.
        f.debug_struct("ApiKey")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("scope", &self.scope)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_and_ids_parse_their_display_forms() {
        for scope in [Scope::Read, Scope::Write] {
            assert_eq!(Scope::parse(scope.as_str()), Some(scope));
        }
        assert_eq!(Scope::parse("admin"), None);
        assert_eq!(Scope::parse("Read"), None);
        let id = ApiKeyId::generate(Timestamp::from_millis(0));
        assert_eq!(ApiKeyId::parse(&id.to_string()), Some(id));
        assert_eq!(ApiKeyId::parse("pmk_nope"), None);
    }

    #[test]
    fn debug_leaves_the_digest_out() {
        let key = ApiKey {
            id: ApiKeyId::from_bytes([1; 16]),
            name: "grafana".to_owned(),
            scope: Scope::Read,
            created_at: Timestamp::from_millis(0),
            digest: [0xab; 32],
        };
        let shown = format!("{key:?}");
        assert!(shown.contains("grafana"), "{shown}");
        assert!(!shown.contains("171"), "digest bytes in {shown}");
        assert!(!shown.contains("digest"), "{shown}");
    }
}
