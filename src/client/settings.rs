//! Where the client commands find the server and their credentials: a flag wins over
//! its `PUSHMON_*` variable, a variable over the config file, the file over the
//! default (`docs/cli.md#server-and-credentials`). An empty variable counts as unset.
//! The environment is a lookup function, so tests feed a map.

use std::path::{Path, PathBuf};

use reqwest::Url;
use serde::Deserialize;

use super::Failure;
use crate::cli::client_args::ApiArgs;

/// The environment as a lookup function.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The server's base URL.
pub const URL_VAR: &str = "PUSHMON_URL";
/// The admin token or an API key, for the management commands.
pub const TOKEN_VAR: &str = "PUSHMON_TOKEN";
/// A file holding the admin token or an API key.
pub const TOKEN_FILE_VAR: &str = "PUSHMON_TOKEN_FILE";
/// The config file.
pub const CONFIG_VAR: &str = "PUSHMON_CONFIG";
/// `pushmon run`'s ping URL.
pub const PING_URL_VAR: &str = "PUSHMON_PING_URL";
/// `pushmon run`'s push token.
pub const PUSH_TOKEN_VAR: &str = "PUSHMON_PUSH_TOKEN";

/// The server when nothing names one: where `pushmon serve` listens by default.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";

/// A variable's value; empty counts as unset.
pub fn var(env: Env<'_>, name: &str) -> Option<String> {
    env(name).filter(|value| !value.trim().is_empty())
}

/// The config file (`cli.toml`): every key optional, an unknown key an error.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    pub server: Option<String>,
    pub token: Option<String>,
    /// Relative to the config file's directory.
    pub token_file: Option<PathBuf>,
    /// Where the file was read from (nothing when there was none).
    #[serde(skip)]
    pub path: Option<PathBuf>,
}

impl ConfigFile {
    /// The file `flag` or `PUSHMON_CONFIG` names, which must exist; else
    /// `$XDG_CONFIG_HOME/pushmon/cli.toml` (`~/.config/pushmon/cli.toml`) if it
    /// exists; else an empty one.
    pub fn load(flag: Option<&Path>, env: Env<'_>) -> Result<Self, Failure> {
        let named = flag
            .map(Path::to_path_buf)
            .or_else(|| var(env, CONFIG_VAR).map(PathBuf::from));
        let path = match named {
            Some(path) => path,
            None => match default_path(env) {
                Some(path) if path.is_file() => path,
                _ => return Ok(Self::default()),
            },
        };
        let text = std::fs::read_to_string(&path).map_err(|error| {
            Failure::usage(format!(
                "cannot read the config file {}: {error}",
                path.display()
            ))
        })?;
        let mut file: Self = toml::from_str(&text).map_err(|error| {
            Failure::usage(format!(
                "invalid config file {}: {}",
                path.display(),
                error.message()
            ))
        })?;
        if let Some(token_file) = &file.token_file
            && token_file.is_relative()
            && let Some(dir) = path.parent()
        {
            file.token_file = Some(dir.join(token_file));
        }
        file.path = Some(path);
        Ok(file)
    }

    fn describe(&self) -> String {
        self.path.as_ref().map_or_else(
            || "the config file".to_owned(),
            |path| format!("the config file {}", path.display()),
        )
    }
}

/// `$XDG_CONFIG_HOME/pushmon/cli.toml`, or `$HOME/.config/pushmon/cli.toml`.
fn default_path(env: Env<'_>) -> Option<PathBuf> {
    let config_home = var(env, "XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|path| path.is_absolute())
        .or_else(|| var(env, "HOME").map(|home| Path::new(&home).join(".config")))?;
    Some(config_home.join("pushmon").join("cli.toml"))
}

/// The server's base URL: `flag`, `PUSHMON_URL`, the file's `server`, or
/// [`DEFAULT_SERVER`].
pub fn server(flag: Option<&str>, env: Env<'_>, file: &ConfigFile) -> Result<Url, Failure> {
    let (text, from) = if let Some(flag) = flag {
        (flag.to_owned(), "--server".to_owned())
    } else if let Some(value) = var(env, URL_VAR) {
        (value, URL_VAR.to_owned())
    } else if let Some(value) = &file.server {
        (value.clone(), format!("`server` in {}", file.describe()))
    } else {
        (DEFAULT_SERVER.to_owned(), "the default".to_owned())
    };
    parse_server(&text).map_err(|why| Failure::usage(format!("invalid server URL ({from}): {why}")))
}

/// An absolute `http://` or `https://` URL without query or fragment, its trailing
/// `/` removed.
pub fn parse_server(text: &str) -> Result<Url, String> {
    let trimmed = text.trim();
    let url = Url::parse(trimmed).map_err(|error| {
        format!("{trimmed:?} is not a URL such as https://pushmon.example.com ({error})")
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{trimmed:?} must start with http:// or https://"));
    }
    if url.host().is_none() {
        return Err(format!("{trimmed:?} has no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("{trimmed:?} must not have a query or fragment"));
    }
    Ok(without_trailing_slash(url))
}

/// `url` with no empty last path segment (`https://h/a/` → `https://h/a`).
pub fn without_trailing_slash(mut url: Url) -> Url {
    let path = url.path().trim_end_matches('/').to_owned();
    url.set_path(&path);
    url
}

/// The management API's secret, if any: `--token`, `--token-file`, `PUSHMON_TOKEN`,
/// `PUSHMON_TOKEN_FILE`, the file's `token`, the file's `token_file`. White space
/// around it (a file's trailing newline) is removed.
pub fn api_token(
    args: &ApiArgs,
    env: Env<'_>,
    file: &ConfigFile,
) -> Result<Option<String>, Failure> {
    let secret = if let Some(token) = &args.token {
        Some(token.clone())
    } else if let Some(path) = &args.token_file {
        Some(read_token_file(path, "--token-file")?)
    } else if let Some(token) = var(env, TOKEN_VAR) {
        Some(token)
    } else if let Some(path) = var(env, TOKEN_FILE_VAR) {
        Some(read_token_file(Path::new(&path), TOKEN_FILE_VAR)?)
    } else if let Some(token) = &file.token {
        Some(token.clone())
    } else if let Some(path) = &file.token_file {
        Some(read_token_file(path, "`token_file` in the config file")?)
    } else {
        None
    };
    match secret.map(|secret| secret.trim().to_owned()) {
        Some(secret) if secret.is_empty() => Err(Failure::usage("the token is empty")),
        secret => Ok(secret),
    }
}

fn read_token_file(path: &Path, from: &str) -> Result<String, Failure> {
    std::fs::read_to_string(path).map_err(|error| {
        Failure::usage(format!(
            "cannot read the token file {} ({from}): {error}",
            path.display()
        ))
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::client::FailureKind;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect();
        move |name: &str| map.get(name).cloned()
    }

    #[test]
    fn a_flag_beats_the_variable_which_beats_the_file_which_beats_the_default() {
        let file = ConfigFile {
            server: Some("https://from-file.example".to_owned()),
            ..ConfigFile::default()
        };
        let env = env_of(&[(URL_VAR, "https://from-env.example/prefix/")]);
        let none = env_of(&[]);
        let empty = env_of(&[(URL_VAR, " ")]);
        assert_eq!(
            server(Some("http://flag:1"), &env, &file).unwrap().as_str(),
            "http://flag:1/"
        );
        assert_eq!(
            server(None, &env, &file).unwrap().as_str(),
            "https://from-env.example/prefix"
        );
        assert_eq!(
            server(None, &none, &file).unwrap().as_str(),
            "https://from-file.example/"
        );
        assert_eq!(
            server(None, &empty, &ConfigFile::default())
                .unwrap()
                .as_str(),
            "http://127.0.0.1:8080/"
        );
    }

    #[test]
    fn a_bad_server_is_a_usage_error_naming_where_it_came_from() {
        let env = env_of(&[(URL_VAR, "pushmon.example.com:8080")]);
        let failure = server(None, &env, &ConfigFile::default()).unwrap_err();
        assert_eq!(failure.kind, FailureKind::Usage);
        assert!(failure.message.contains(URL_VAR), "{failure}");
        for bad in ["ftp://host", "http://host/?a=b", "not a url"] {
            assert!(parse_server(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_token_comes_from_flags_then_variables_then_the_file_and_is_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let token_file = dir.path().join("token");
        std::fs::write(&token_file, "from-file-flag\n").unwrap();
        let env = env_of(&[(TOKEN_VAR, "from-env")]);
        let file = ConfigFile {
            token: Some("from-config".to_owned()),
            ..ConfigFile::default()
        };
        let mut args = ApiArgs {
            token_file: Some(token_file.clone()),
            ..ApiArgs::default()
        };
        assert_eq!(
            api_token(&args, &env, &file).unwrap().as_deref(),
            Some("from-file-flag")
        );
        args.token = Some(" from-flag ".to_owned());
        assert_eq!(
            api_token(&args, &env, &file).unwrap().as_deref(),
            Some("from-flag")
        );
        let no_args = ApiArgs::default();
        assert_eq!(
            api_token(&no_args, &env, &file).unwrap().as_deref(),
            Some("from-env")
        );
        let file_var = env_of(&[(TOKEN_FILE_VAR, token_file.to_str().unwrap())]);
        assert_eq!(
            api_token(&no_args, &file_var, &file).unwrap().as_deref(),
            Some("from-file-flag")
        );
        assert_eq!(
            api_token(&no_args, &env_of(&[]), &file).unwrap().as_deref(),
            Some("from-config")
        );
        assert_eq!(
            api_token(&no_args, &env_of(&[]), &ConfigFile::default()).unwrap(),
            None
        );
        let missing = ApiArgs {
            token_file: Some(dir.path().join("absent")),
            ..ApiArgs::default()
        };
        assert_eq!(
            api_token(&missing, &env, &file).unwrap_err().kind,
            FailureKind::Usage
        );
    }

    #[test]
    fn the_config_file_is_found_read_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let config_dir = dir.path().join("pushmon");
        std::fs::create_dir(&config_dir).unwrap();
        std::fs::write(config_dir.join("secret"), "s3cret-token-from-file\n").unwrap();
        std::fs::write(
            config_dir.join("cli.toml"),
            "server = \"https://pushmon.example.com\"\ntoken_file = \"secret\"\n",
        )
        .unwrap();
        let env = env_of(&[("XDG_CONFIG_HOME", dir.path().to_str().unwrap())]);
        let file = ConfigFile::load(None, &env).unwrap();
        assert_eq!(file.server.as_deref(), Some("https://pushmon.example.com"));
        assert_eq!(
            api_token(&ApiArgs::default(), &env_of(&[]), &file)
                .unwrap()
                .as_deref(),
            Some("s3cret-token-from-file"),
            "a relative token_file is read beside the config file"
        );

        // No file at the default place: nothing configured, no error.
        let elsewhere = env_of(&[("HOME", "/nonexistent-home")]);
        assert!(ConfigFile::load(None, &elsewhere).unwrap().server.is_none());

        // A named file must exist, and may hold only known keys.
        let named = dir.path().join("other.toml");
        assert_eq!(
            ConfigFile::load(Some(&named), &elsewhere).unwrap_err().kind,
            FailureKind::Usage
        );
        std::fs::write(&named, "sever = \"typo\"\n").unwrap();
        let failure =
            ConfigFile::load(None, &env_of(&[(CONFIG_VAR, named.to_str().unwrap())])).unwrap_err();
        assert_eq!(failure.kind, FailureKind::Usage);
        assert!(failure.message.contains("sever"), "{failure}");
    }
}
