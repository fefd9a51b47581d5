//! The installation's ping key: the secret half of a slug ping URL
//! (`/ping/{ping_key}/{slug}`, `docs/api.md`, "Ping URLs"). 16 random bytes, written as
//! 22 URL-safe characters, as Healthchecks' ping keys are. Made once with the store,
//! changed only by a rotation; `Debug` never shows it.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PingKey([u8; 16]);

impl PingKey {
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// The bytes a URL's text stands for; `None` if it is no ping key's shape.
    pub fn parse(text: &str) -> Option<Self> {
        let mut bytes = [0u8; 16];
        match URL_SAFE_NO_PAD.decode_slice(text, &mut bytes) {
            Ok(16) if text.len() == 22 => Some(Self(bytes)),
            _ => None,
        }
    }

    /// The URL form. Only the settings API, for the admin, calls this.
    pub fn reveal(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }
}

impl std::fmt::Debug for PingKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("PingKey(…)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_its_url_form_and_hides_itself() {
        let key = PingKey::from_bytes([0xfb; 16]);
        let text = key.reveal();
        assert_eq!(text.len(), 22);
        assert_eq!(PingKey::parse(&text), Some(key));
        assert_eq!(format!("{key:?}"), "PingKey(…)");
        for bad in ["", "short", &format!("{text}A"), &text.replace('-', "+")] {
            assert_eq!(PingKey::parse(bad), None, "{bad}");
        }
    }
}
