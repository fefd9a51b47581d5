//! The OpenAPI document (`http/openapi.rs`) keeps up with the router: the committed
//! `docs/openapi.json` is what the code generates and what the server serves, and
//! every route the router registers under `/api/`, `/ping/`, `/badge/` and the
//! health endpoints is in the document with exactly the methods the server answers,
//! and the document has nothing the server does not serve.
//!
//! To regenerate the committed file after changing the document:
//! `UPDATE_OPENAPI=1 cargo test --test it openapi::` (`docs/api.md`, "OpenAPI").

use std::collections::{BTreeMap, BTreeSet};

use reqwest::{Method, StatusCode, header};
use serde_json::Value;

use crate::docs::registered_routes;
use crate::support::spawn_app;

const COMMITTED: &str = "docs/openapi.json";

/// The registered routes the document must describe: these prefixes, and these
/// paths exactly. (The dashboard's HTML pages, `/status/…` and `/assets/…` are not in
/// it.)
const IN_SCOPE_PREFIXES: &[&str] = &["/api/", "/ping/", "/badge/"];
const IN_SCOPE_PATHS: &[&str] = &["/healthz", "/readyz", "/metrics"];

/// A method no route has: the server answers it 405 with the `Allow` header.
const PROBE_METHOD: &[u8] = b"PROBE";

fn committed_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(COMMITTED)
}

#[tokio::test]
async fn the_committed_document_is_the_generated_one_and_is_served_without_authentication() {
    let generated = pushmon::http::openapi::document();
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(committed_path(), generated).expect("write docs/openapi.json");
    }
    let committed = std::fs::read_to_string(committed_path()).unwrap_or_default();
    assert!(
        committed == generated,
        "{COMMITTED} is not what the code generates; regenerate it with \
         `UPDATE_OPENAPI=1 cargo test --test it openapi::` and commit it"
    );

    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/api/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/json",
        "{:?}",
        response.headers()
    );
    assert_eq!(response.text().await.unwrap(), generated);
    let document: Value = serde_json::from_str(generated).unwrap();
    assert_eq!(document["openapi"], "3.1.0");
    assert_eq!(
        document["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
}

/// The methods of each path of the document, upper case.
fn documented(document: &Value) -> BTreeMap<String, BTreeSet<String>> {
    document["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .map(|(path, item)| {
            let methods = item
                .as_object()
                .expect("a path item")
                .keys()
                .filter(|key| {
                    matches!(
                        key.as_str(),
                        "get" | "put" | "post" | "delete" | "options" | "head" | "patch" | "trace"
                    )
                })
                .map(|key| key.to_ascii_uppercase())
                .collect();
            (path.clone(), methods)
        })
        .collect()
}

/// Whether the document's `path` is served by the router's `template`: segment by
/// segment equal, or the template's segment a whole parameter (`{file}` serves
/// `{key}.json`).
fn serves(template: &str, path: &str) -> bool {
    let template: Vec<&str> = template.split('/').collect();
    let path: Vec<&str> = path.split('/').collect();
    template.len() == path.len()
        && template.iter().zip(&path).all(|(template, path)| {
            template == path || (template.starts_with('{') && template.ends_with('}'))
        })
}

/// The templates among `templates` that serve `path`: the one equal to it if there
/// is one (a literal segment wins over a parameter, as in the router), or else every
/// template it fits.
fn serving<'a>(templates: &[&'a str], path: &str) -> Vec<&'a str> {
    if let Some(exact) = templates.iter().find(|template| **template == path) {
        return vec![*exact];
    }
    templates
        .iter()
        .copied()
        .filter(|template| serves(template, path))
        .collect()
}

/// A concrete path for a template: each parameter a UUID, so id routes parse it.
fn concrete(template: &str) -> String {
    template
        .split('/')
        .map(|segment| {
            if segment.starts_with('{') && segment.ends_with('}') {
                "0193a5e2-7c1b-7d40-9a51-3f0c2b8e4d17.json".to_owned()
            } else {
                segment.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test]
async fn every_api_route_is_in_the_document_with_its_methods_and_nothing_else() {
    let document: Value = serde_json::from_str(pushmon::http::openapi::document()).unwrap();
    let documented = documented(&document);
    let in_scope = |path: &str| {
        IN_SCOPE_PREFIXES
            .iter()
            .any(|prefix| path.starts_with(prefix))
            || IN_SCOPE_PATHS.contains(&path)
    };
    let templates: BTreeSet<String> = registered_routes()
        .into_iter()
        .map(|(path, _)| path)
        .filter(|path| in_scope(path))
        .collect();
    assert!(
        templates.contains("/api/push/{token}") && templates.contains("/api/monitors"),
        "the route scan found too little: {templates:?}"
    );

    let app = spawn_app().await;
    let probe = Method::from_bytes(PROBE_METHOD).unwrap();
    let mut problems = Vec::new();
    // What the server answers on each route: its `Allow` header for a method it has not.
    let mut served: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for template in &templates {
        let response = app
            .client
            .request(probe.clone(), app.url(&concrete(template)))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{template}: a {probe} request should answer 405"
        );
        let allow: BTreeSet<String> = response.headers()[header::ALLOW]
            .to_str()
            .unwrap()
            .split(',')
            .map(|method| method.trim().to_owned())
            .collect();
        // Every GET answers HEAD too, as the document's description says.
        assert_eq!(
            allow.contains("GET"),
            allow.contains("HEAD"),
            "{template}: GET and HEAD go together: {allow:?}"
        );
        served.insert(
            template,
            allow
                .into_iter()
                .filter(|method| method != "HEAD")
                .collect(),
        );
    }

    let all_served: Vec<&str> = served.keys().copied().collect();
    for (template, methods) in &served {
        let paths: Vec<&String> = documented
            .keys()
            .filter(|path| serving(&all_served, path).contains(template))
            .collect();
        if paths.is_empty() {
            problems.push(format!(
                "{template} ({methods:?}) is served but not in the OpenAPI document \
                 (src/http/openapi.rs)"
            ));
        }
        for path in paths {
            if &documented[path] != methods {
                problems.push(format!(
                    "{path}: the document has {:?}, the server answers {methods:?}",
                    documented[path]
                ));
            }
        }
    }
    for path in documented.keys() {
        let servers = serving(&all_served, path);
        if servers.len() != 1 {
            problems.push(format!(
                "{path} is in the OpenAPI document but served by {servers:?} (no route, or \
                 not one of {IN_SCOPE_PREFIXES:?} {IN_SCOPE_PATHS:?})"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
