//! The admin token the management API checks: the configured one, else the one kept in
//! `<data-dir>/admin-token`, generated (32 random bytes, base64) and written there with
//! mode 0600 on first start.

use std::io::Write as _;
use std::path::Path;

use anyhow::Context as _;
use base64::Engine as _;

use crate::config::Config;

/// The configured admin token, or the one in `<data-dir>/admin-token`, generated on
/// first start (mode 0600).
pub(super) fn admin_token(config: &Config) -> anyhow::Result<String> {
    if let Some(token) = &config.admin_token {
        return Ok(token.clone());
    }
    let path = config.data_dir.join("admin-token");
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let token = existing.trim().to_owned();
        if !token.is_empty() {
            tracing::info!(path = %path.display(), "using the admin token stored in the data directory");
            return Ok(token);
        }
    }
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating {}", config.data_dir.display()))?;
    let bytes: [u8; 32] = rand::random();
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    write_private(&path, &token).with_context(|| format!("writing {}", path.display()))?;
    tracing::info!(path = %path.display(), "generated an admin token");
    Ok(token)
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_else_stored_else_generated_once() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("admin-token");
        let mut config = Config::with_data_dir(dir.path());

        config.admin_token = Some("configured-token-0123".to_owned());
        assert_eq!(
            admin_token(&config).expect("token"),
            "configured-token-0123"
        );
        assert!(!file.exists(), "a configured token writes no file");

        config.admin_token = None;
        std::fs::write(&file, " \n").expect("write");
        let generated = admin_token(&config).expect("token");
        assert!(generated.len() >= 16, "{generated:?}");
        assert_eq!(
            std::fs::read_to_string(&file).expect("read"),
            format!("{generated}\n")
        );
        assert_eq!(
            admin_token(&config).expect("token"),
            generated,
            "generated once"
        );
    }
}
