//! The admin token the management API checks: the configured one (flag or variable),
//! else the one kept in `<data-dir>/admin-token`, generated (32 random bytes, base64)
//! and written there with mode 0600 on first start. Start-up logs which one is in
//! force, and warns when a configured token leaves a token file unused.

use std::io::Write as _;
use std::path::Path;

use anyhow::Context as _;
use base64::Engine as _;

use crate::cli::setting::ADMIN_TOKEN;
use crate::config::{Config, TokenSource};

/// Where the token in force came from; logged at start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Origin {
    Configured(TokenSource),
    File,
    Generated,
}

/// The configured admin token, or the one in `<data-dir>/admin-token`, generated on
/// first start (mode 0600). Logs where it came from, never the token.
pub(super) fn admin_token(config: &Config) -> anyhow::Result<(String, Origin)> {
    let path = config.data_dir.join("admin-token");
    if let Some(token) = &config.admin_token {
        let from = match token.source {
            TokenSource::Flag => format!("--{}", ADMIN_TOKEN.flag),
            TokenSource::Env => ADMIN_TOKEN.env.to_owned(),
        };
        tracing::info!(from = %from, "admin token: the configured one");
        if token.trimmed {
            tracing::info!(
                from = %from,
                "admin token: white space around it was removed (a trailing newline, say); clients send it without"
            );
        }
        if path.exists() {
            tracing::warn!(
                path = %path.display(),
                from = %from,
                "admin token: the token file in the data directory is not used, the configured token overrides it; clients using that file's token get 401"
            );
        }
        return Ok((token.secret().to_owned(), Origin::Configured(token.source)));
    }
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let token = existing.trim();
        if token.chars().any(char::is_whitespace) {
            anyhow::bail!(
                "{} holds white space inside the token; fix or delete the file",
                path.display()
            );
        }
        if !token.is_empty() {
            tracing::info!(path = %path.display(), "admin token: the one stored in the data directory");
            return Ok((token.to_owned(), Origin::File));
        }
    }
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating {}", config.data_dir.display()))?;
    let bytes: [u8; 32] = rand::random();
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    write_private(&path, &token).with_context(|| format!("writing {}", path.display()))?;
    tracing::info!(path = %path.display(), "admin token: generated a new one into the data directory");
    Ok((token, Origin::Generated))
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
    use crate::config::AdminToken;

    #[test]
    fn configured_else_stored_else_generated_once() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("admin-token");
        let mut config = Config::with_data_dir(dir.path());

        config.admin_token = Some(AdminToken::from_flag("configured-token-0123").expect("valid"));
        assert_eq!(
            admin_token(&config).expect("token"),
            (
                "configured-token-0123".to_owned(),
                Origin::Configured(TokenSource::Flag)
            )
        );
        assert!(!file.exists(), "a configured token writes no file");

        config.admin_token = None;
        std::fs::write(&file, " \n").expect("write");
        let (generated, origin) = admin_token(&config).expect("token");
        assert_eq!(origin, Origin::Generated);
        assert!(generated.len() >= 16, "{generated:?}");
        assert_eq!(
            std::fs::read_to_string(&file).expect("read"),
            format!("{generated}\n")
        );
        assert_eq!(
            admin_token(&config).expect("token"),
            (generated, Origin::File),
            "generated once"
        );

        std::fs::write(&file, "inner white space\n").expect("write");
        let refused = admin_token(&config).expect_err("refused");
        assert!(refused.to_string().contains("white space"), "{refused}");
    }
}
