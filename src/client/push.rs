//! `pushmon push`: one heartbeat to a push URL (`docs/push.md`), its parameters in the
//! query string, retried while the server is unreachable ([`retry`](super::retry)).
//! Quiet on success; a refusal or giving up is an error with its exit code.

use bytes::Bytes;
use reqwest::Url;

use super::api::http_client;
use super::retry::{self, Request, host_of};
use super::settings::{self, ConfigFile, Env};
use super::{Failure, FailureKind};
use crate::cli::client_args::PushArgs;

/// The push URL `target` means: itself if it is a URL, else `<server>/api/push/<token>`.
pub fn push_url(
    target: &str,
    server: impl FnOnce() -> Result<Url, Failure>,
) -> Result<Url, Failure> {
    let target = target.trim();
    if target.contains("://") {
        let url = Url::parse(target)
            .map_err(|error| Failure::usage(format!("the push URL is not a URL ({error})")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Failure::usage(
                "the push URL must start with http:// or https://",
            ));
        }
        return Ok(url);
    }
    if target.is_empty() || target.contains('/') {
        return Err(Failure::usage(
            "give the monitor's push URL or its push token (the last part of the URL)",
        ));
    }
    let mut url = server()?;
    url.path_segments_mut()
        .map_err(|()| Failure::usage("the server URL cannot have a path"))?
        .pop_if_empty()
        .extend(["api", "push", target]);
    Ok(url)
}

pub async fn push(args: PushArgs, env: Env<'_>) -> Result<(), Failure> {
    if args.value.is_some_and(|value| !value.is_finite()) {
        return Err(Failure::usage("--value must be a finite number"));
    }
    let mut url = push_url(&args.target, || {
        let file = ConfigFile::load(args.server.config.as_deref(), env)?;
        settings::server(args.server.server.as_deref(), env, &file)
    })?;
    {
        let mut query = url.query_pairs_mut();
        if let Some(status) = args.status {
            query.append_pair("status", status.as_str());
        }
        if let Some(msg) = &args.msg {
            query.append_pair("msg", msg);
        }
        if let Some(value) = args.value {
            query.append_pair("value", &value.to_string());
        }
        if let Some(instance) = &args.instance {
            query.append_pair("instance", instance);
        }
    }
    if url.query() == Some("") {
        url.set_query(None);
    }
    let host = host_of(&url);
    let http = http_client()?;
    let request = Request {
        http: &http,
        url,
        body: Bytes::new(),
        content_type: None,
    };
    let retry_for = args.retry_for;
    retry::send(request, retry_for, None, |reason| {
        eprintln!(
            "pushmon push: {host}: {reason}; retrying for up to {}",
            humantime::format_duration(retry_for)
        );
    })
    .await
    .map(|_| ())
    .map_err(|gave_up| {
        let attempts = match gave_up.attempts {
            1 => String::new(),
            attempts => format!(" (after {attempts} attempts)"),
        };
        let kind = gave_up.kind;
        let mut message = format!("push to {host} failed{attempts}: {}", gave_up.reason);
        if kind == FailureKind::NotFound {
            message.push_str(" (is the token right?)");
        }
        Failure::new(kind, message)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server() -> Result<Url, Failure> {
        Ok(settings::parse_server("https://pushmon.example.com/prefix/").unwrap())
    }

    #[test]
    fn a_token_goes_under_the_servers_push_path_and_a_url_is_kept() {
        assert_eq!(
            push_url("Xb3kq9T0vYh2LwQm7RzA1g", server).unwrap().as_str(),
            "https://pushmon.example.com/prefix/api/push/Xb3kq9T0vYh2LwQm7RzA1g"
        );
        assert_eq!(
            push_url("http://h:1/api/push/abc?msg=x", server)
                .unwrap()
                .as_str(),
            "http://h:1/api/push/abc?msg=x"
        );
        assert!(push_url("ftp://h/x", server).is_err());
        assert!(push_url("a/b", server).is_err());
        assert!(push_url("", server).is_err());
    }
}
