//! The dashboard over plain HTTP (`docs/dashboard.md`): sessions and sign-out, CSRF and
//! origin checks, read-only keys, live events, badges, status pages, and the API
//! routes it brought (uptime, incidents, channel changes, badges, status pages). The
//! same pages in a real browser: `browser.rs`.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::time::{sleep, timeout};

use crate::support::{ADMIN_TOKEN, Api, Status, check_store, expect_error, expect_json, spawn_app};

/// A browser as the server sees one: a cookie, no redirects followed.
struct Visitor {
    client: reqwest::Client,
    base: String,
    cookie: Option<String>,
}

impl Visitor {
    fn new(api: &Api) -> Self {
        Self {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(20))
                .build()
                .unwrap(),
            base: api.base_url.clone(),
            cookie: None,
        }
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let request = self.client.request(method, format!("{}{path}", self.base));
        match &self.cookie {
            Some(cookie) => request.header("cookie", format!("pushmon_session={cookie}")),
            None => request,
        }
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.request(Method::GET, path).send().await.unwrap()
    }

    /// A page that must answer 200; its HTML.
    async fn page(&self, path: &str) -> String {
        let response = self.get(path).await;
        assert_eq!(response.status(), StatusCode::OK, "GET {path}");
        response.text().await.unwrap()
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.request(Method::POST, path)
            .form(form)
            .send()
            .await
            .unwrap()
    }

    /// Signs in with `secret`; the session's cookie is kept.
    async fn sign_in(&mut self, secret: &str) {
        let response = self
            .post("/login", &[("token", secret), ("next", "/")])
            .await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let set_cookie = response.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .to_owned();
        for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
            assert!(set_cookie.contains(attribute), "{set_cookie}");
        }
        assert!(!set_cookie.contains("Secure"), "plain HTTP: {set_cookie}");
        let value = set_cookie
            .strip_prefix("pushmon_session=")
            .and_then(|rest| rest.split(';').next())
            .unwrap();
        assert!(value.len() >= 43, "a 256-bit id: {value}");
        self.cookie = Some(value.to_owned());
    }

    /// The CSRF token the signed-in pages carry.
    async fn csrf(&self) -> String {
        csrf_in(&self.page("/").await)
    }
}

fn csrf_in(html: &str) -> String {
    let at = html.find(r#"name="csrf" value=""#).expect("a CSRF field") + 19;
    html[at..].split('"').next().unwrap().to_owned()
}

fn location(response: &reqwest::Response) -> String {
    response.headers()["location"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn without_a_session_pages_send_to_sign_in_and_a_wrong_secret_is_refused() {
    let app = spawn_app().await;
    let visitor = Visitor::new(&app);
    let response = visitor.get("/monitors/new").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/login?next=%2Fmonitors%2Fnew");
    let sign_in = visitor.page("/login").await;
    assert!(sign_in.contains(r#"name="token""#), "{sign_in}");
    let refused = visitor.post("/login", &[("token", "not-the-token")]).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert!(refused.headers().get("set-cookie").is_none());
    assert_eq!(
        visitor.get("/live").await.status(),
        StatusCode::UNAUTHORIZED,
        "the event stream is no page"
    );
    // A sign-in from another site is refused even with the right token.
    let forged = visitor
        .request(Method::POST, "/login")
        .header("origin", "https://evil.example")
        .form(&[("token", ADMIN_TOKEN)])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert!(forged.headers().get("set-cookie").is_none());
}

#[tokio::test]
async fn a_cookie_is_not_accepted_after_sign_out() {
    let app = spawn_app().await;
    let mut visitor = Visitor::new(&app);
    visitor.sign_in(ADMIN_TOKEN).await;
    let home = visitor.page("/").await;
    assert!(home.contains("Monitors"), "{home}");
    let csrf = csrf_in(&home);
    let signed_out = visitor.post("/logout", &[("csrf", &csrf)]).await;
    assert_eq!(signed_out.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&signed_out), "/login");
    assert!(
        signed_out.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    // The same cookie, sent again (as a copy would be), opens nothing.
    let again = visitor.get("/").await;
    assert_eq!(again.status(), StatusCode::SEE_OTHER);
    assert!(location(&again).starts_with("/login"));
    let change = visitor
        .post(
            "/monitors/new",
            &[("csrf", &csrf), ("name", "after"), ("timeout", "60")],
        )
        .await;
    assert_eq!(change.status(), StatusCode::UNAUTHORIZED);
    assert!(app.list_monitors().await.is_empty(), "nothing was created");
}

#[tokio::test]
async fn a_change_without_the_sessions_csrf_token_or_from_another_origin_is_refused() {
    let app = spawn_app().await;
    let mut visitor = Visitor::new(&app);
    visitor.sign_in(ADMIN_TOKEN).await;
    let csrf = visitor.csrf().await;
    let form = |token: &'static str| vec![("csrf", token), ("name", "nightly"), ("timeout", "5m")];
    let missing = visitor.post("/monitors/new", &form("")[1..]).await;
    assert_eq!(missing.status(), StatusCode::FORBIDDEN);
    let wrong = visitor.post("/monitors/new", &form("not-the-token")).await;
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    // Another session's token is no better.
    let mut other = Visitor::new(&app);
    other.sign_in(ADMIN_TOKEN).await;
    let foreign = other.csrf().await;
    assert_ne!(foreign, csrf);
    let crossed = visitor
        .request(Method::POST, "/monitors/new")
        .form(&[("csrf", foreign.as_str()), ("name", "x"), ("timeout", "60")])
        .send()
        .await
        .unwrap();
    assert_eq!(crossed.status(), StatusCode::FORBIDDEN);
    // The right token from another site's page.
    let cross_site = visitor
        .request(Method::POST, "/monitors/new")
        .header("origin", "https://evil.example")
        .form(&[("csrf", csrf.as_str()), ("name", "x"), ("timeout", "60")])
        .send()
        .await
        .unwrap();
    assert_eq!(cross_site.status(), StatusCode::FORBIDDEN);
    let fetched_cross_site = visitor
        .request(Method::POST, "/monitors/new")
        .header("sec-fetch-site", "cross-site")
        .form(&[("csrf", csrf.as_str()), ("name", "x"), ("timeout", "60")])
        .send()
        .await
        .unwrap();
    assert_eq!(fetched_cross_site.status(), StatusCode::FORBIDDEN);
    // Signing out needs the token too.
    assert_eq!(
        visitor.post("/logout", &[]).await.status(),
        StatusCode::FORBIDDEN
    );
    assert!(app.list_monitors().await.is_empty(), "nothing was created");

    // With it, from this server's own origin (as a browser sends it), it works.
    let created = visitor
        .request(Method::POST, "/monitors/new")
        .header("origin", app.base_url.as_str())
        .header("sec-fetch-site", "same-origin")
        .form(&[
            ("csrf", csrf.as_str()),
            ("name", "nightly"),
            ("timeout", "25h"),
            ("interval", "1d"),
            ("tags", "prod, backup"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::SEE_OTHER);
    let monitors = app.list_monitors().await;
    assert_eq!(monitors.len(), 1);
    assert_eq!(monitors[0].timeout_seconds, 90_000);
    assert_eq!(monitors[0].interval_seconds, 86_400);
    assert_eq!(location(&created), format!("/monitors/{}", monitors[0].id));
    // The next page shows the push URL once more, in the message.
    let shown = visitor.page(&location(&created)).await;
    assert!(shown.contains(&monitors[0].push_url), "{shown}");
    // A form the API would refuse comes back with the API's reason.
    let refused = visitor
        .post(
            "/monitors/new",
            &[("csrf", &csrf), ("name", "x"), ("timeout", "400d")],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let text = refused.text().await.unwrap();
    assert!(
        text.contains("timeout_seconds must be a whole number of seconds from 1 to 31536000"),
        "{text}"
    );
}

#[tokio::test]
async fn a_read_key_sees_monitors_but_no_push_url_and_changes_nothing() {
    let app = spawn_app().await;
    let monitor = app.create_monitor("nightly", 3600).await;
    let key = expect_json(
        app.api(Method::POST, "/api/keys")
            .json(&json!({"name": "wall screen", "scope": "read"}))
            .send()
            .await
            .unwrap(),
        StatusCode::CREATED,
    )
    .await;
    let mut visitor = Visitor::new(&app);
    visitor.sign_in(key["key"].as_str().unwrap()).await;
    let home = visitor.page("/").await;
    assert!(home.contains("nightly"), "{home}");
    assert!(home.contains("read-only key"), "{home}");
    assert!(!home.contains("/monitors/new"), "no form to create: {home}");
    let page = visitor.page(&format!("/monitors/{}", monitor.id)).await;
    assert!(!page.contains(&monitor.push_token), "no push token: {page}");
    for action in ["/pause", "/rotate-token", "/edit", "/delete"] {
        assert!(
            !page.contains(&format!("/monitors/{}{action}", monitor.id)),
            "no {action} for a read key"
        );
    }
    let csrf = csrf_in(&page);
    for action in ["pause", "rotate-token", "delete"] {
        let refused = visitor
            .post(
                &format!("/monitors/{}/{action}", monitor.id),
                &[("csrf", &csrf)],
            )
            .await;
        assert_eq!(refused.status(), StatusCode::FORBIDDEN, "{action}");
    }
    let unchanged = app.get_monitor(&monitor.id).await;
    assert_eq!(unchanged.status, Status::Pending);
    assert_eq!(unchanged.push_token, monitor.push_token);
    let channel = visitor
        .post(
            "/channels",
            &[
                ("csrf", &csrf),
                ("kind", "webhook"),
                ("name", "x"),
                ("url", "http://127.0.0.1:9/"),
            ],
        )
        .await;
    assert_eq!(channel.status(), StatusCode::FORBIDDEN);
    // Signing out is allowed.
    assert_eq!(
        visitor.post("/logout", &[("csrf", &csrf)]).await.status(),
        StatusCode::SEE_OTHER
    );
    // A revoked key's session ends with it.
    let mut again = Visitor::new(&app);
    again.sign_in(key["key"].as_str().unwrap()).await;
    let revoked = app
        .api(
            Method::DELETE,
            &format!("/api/keys/{}", key["id"].as_str().unwrap()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
    assert_eq!(again.get("/").await.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn pages_change_monitors_and_channels_as_the_api_does() {
    let app = spawn_app().await;
    let mut visitor = Visitor::new(&app);
    visitor.sign_in(ADMIN_TOKEN).await;
    let csrf = visitor.csrf().await;
    let monitor = app.create_monitor("nightly", 3600).await;
    let path = format!("/monitors/{}", monitor.id);
    assert_eq!(
        visitor
            .post(&format!("{path}/pause"), &[("csrf", &csrf)])
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(app.get_monitor(&monitor.id).await.status, Status::Paused);
    visitor
        .post(&format!("{path}/resume"), &[("csrf", &csrf)])
        .await;
    assert_eq!(app.get_monitor(&monitor.id).await.status, Status::Pending);
    let confirm = visitor.page(&format!("{path}/rotate-token")).await;
    assert!(confirm.contains("stops working"), "{confirm}");
    let rotated = visitor
        .post(&format!("{path}/rotate-token"), &[("csrf", &csrf)])
        .await;
    assert_eq!(rotated.status(), StatusCode::SEE_OTHER);
    let after = app.get_monitor(&monitor.id).await;
    assert_ne!(after.push_token, monitor.push_token);
    let shown = visitor.page(&path).await;
    assert!(shown.contains(&after.push_url), "the new URL is shown");
    assert!(!shown.contains(&monitor.push_token), "the old one is gone");
    let edited = visitor
        .post(
            &format!("{path}/edit"),
            &[
                ("csrf", &csrf),
                ("name", "renamed"),
                ("timeout", "2h"),
                ("tags", "a"),
            ],
        )
        .await;
    assert_eq!(edited.status(), StatusCode::SEE_OTHER);
    let renamed = app.get_monitor(&monitor.id).await;
    assert_eq!(
        (renamed.name.as_str(), renamed.timeout_seconds),
        ("renamed", 7200)
    );
    // Labels and severity from the form, shown again when it is opened.
    let labelled = visitor
        .post(
            &format!("{path}/edit"),
            &[
                ("csrf", &csrf),
                ("name", "renamed"),
                ("timeout", "2h"),
                ("labels", "team=payments, env=prod"),
                ("severity", "warning"),
            ],
        )
        .await;
    assert_eq!(labelled.status(), StatusCode::SEE_OTHER);
    let view = expect_json(
        app.api(Method::GET, &format!("/api/monitors/{}", monitor.id))
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(view["labels"], json!({"env": "prod", "team": "payments"}));
    assert_eq!(view["severity"], "warning");
    let form = visitor.page(&format!("{path}/edit")).await;
    assert!(form.contains("value=\"env=prod, team=payments\""), "{form}");
    assert!(
        form.contains("<option value=\"warning\" selected>"),
        "{form}"
    );
    let refused = visitor
        .post(
            &format!("{path}/edit"),
            &[
                ("csrf", &csrf),
                ("name", "renamed"),
                ("timeout", "2h"),
                ("labels", "team"),
            ],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);

    // Channels: create, edit (the secret kept), test (delivered to a real receiver).
    let receiver = crate::receiver::Receiver::start().await;
    let created = visitor
        .post(
            "/channels",
            &[
                ("csrf", &csrf),
                ("kind", "webhook"),
                ("name", "ops"),
                ("url", &receiver.url("/hook")),
                ("secret", "s3cret"),
            ],
        )
        .await;
    assert_eq!(created.status(), StatusCode::SEE_OTHER);
    let channels = expect_json(
        app.api(Method::GET, "/api/channels").send().await.unwrap(),
        StatusCode::OK,
    )
    .await;
    let channel_id = channels["channels"][0]["id"].as_str().unwrap().to_owned();
    let saved = visitor
        .post(
            &format!("/channels/{channel_id}/edit"),
            &[
                ("csrf", &csrf),
                ("kind", "webhook"),
                ("name", "ops 2"),
                ("url", &receiver.url("/hook")),
                ("secret", ""),
            ],
        )
        .await;
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    let channel = expect_json(
        app.api(Method::GET, &format!("/api/channels/{channel_id}"))
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(channel["name"], "ops 2");
    assert_eq!(
        channel["has_secret"], true,
        "an empty secret field keeps it"
    );
    let tested = visitor
        .post(&format!("/channels/{channel_id}/test"), &[("csrf", &csrf)])
        .await;
    assert_eq!(tested.status(), StatusCode::SEE_OTHER);
    let message = visitor.page("/channels").await;
    assert!(message.contains("Test message delivered"), "{message}");
    assert_eq!(receiver.received().len(), 1);

    assert_eq!(
        visitor
            .post(&format!("{path}/delete"), &[("csrf", &csrf)])
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    assert!(app.list_monitors().await.is_empty());
}

/// Reads server-sent events from `/live` until one named `name` comes; its data.
async fn next_event(response: &mut reqwest::Response, buffer: &mut String, name: &str) -> Value {
    loop {
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let event = block
                .lines()
                .find_map(|line| line.strip_prefix("event: "))
                .unwrap_or_default();
            let data = block
                .lines()
                .find_map(|line| line.strip_prefix("data: "))
                .unwrap_or_default();
            if event == name {
                return serde_json::from_str(data).unwrap();
            }
        }
        let chunk = response.chunk().await.unwrap().expect("the stream goes on");
        buffer.push_str(&String::from_utf8_lossy(&chunk));
    }
}

#[tokio::test]
async fn live_events_tell_changes_of_state_but_not_plain_heartbeats() {
    let app = spawn_app().await;
    let mut visitor = Visitor::new(&app);
    visitor.sign_in(ADMIN_TOKEN).await;
    let mut live = visitor.get("/live").await;
    assert_eq!(live.status(), StatusCode::OK);
    assert!(
        live.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut buffer = String::new();
    let hello = next_event(&mut live, &mut buffer, "hello").await;
    assert_eq!(hello["counts"]["total"], 0);
    let monitor = app.create_monitor("live", 3600).await;
    let created = next_event(&mut live, &mut buffer, "change").await;
    assert_eq!(created["changes"][0]["id"], monitor.id.as_str());
    assert_eq!(created["changes"][0]["status"], "pending");
    app.push_ok(&monitor.push_token, &[]).await;
    let up = next_event(&mut live, &mut buffer, "change").await;
    assert_eq!(up["changes"][0]["status"], "up");
    assert_eq!(up["counts"]["up"], 1);
    // A plain heartbeat publishes nothing; the pause after it comes next.
    app.push_ok(&monitor.push_token, &[("msg", "plain")]).await;
    sleep(Duration::from_millis(600)).await;
    app.pause(&monitor.id).await;
    let paused = next_event(&mut live, &mut buffer, "change").await;
    assert_eq!(paused["changes"].as_array().unwrap().len(), 1, "{paused}");
    assert_eq!(paused["changes"][0]["status"], "paused");
    // Signing out ends the stream.
    let csrf = visitor.csrf().await;
    visitor.post("/logout", &[("csrf", &csrf)]).await;
    let ended = timeout(Duration::from_secs(10), async {
        loop {
            match live.chunk().await {
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => return,
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the stream ends with its session");
}

/// The colour and the message of a badge's SVG, which must parse as XML.
fn badge_face(svg: &str) -> (String, String) {
    let document = roxmltree::Document::parse(svg).unwrap_or_else(|error| panic!("{error}: {svg}"));
    let root = document.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    assert_eq!(
        root.tag_name().namespace(),
        Some("http://www.w3.org/2000/svg")
    );
    let colour = root
        .descendants()
        .filter(|node| node.has_tag_name("rect"))
        .nth(2) // the clip path's, the label's, then the message's
        .and_then(|rect| rect.attribute("fill"))
        .unwrap()
        .to_owned();
    let message = root
        .descendants()
        .rfind(|node| node.has_tag_name("text"))
        .and_then(|text| text.text())
        .unwrap()
        .to_owned();
    (colour, message)
}

async fn fetch_badge(app: &Api, url: &str) -> (StatusCode, String) {
    let response = app.client.get(url).send().await.unwrap();
    (response.status(), response.text().await.unwrap())
}

#[tokio::test]
async fn badges_show_each_state_in_its_colour_and_an_unknown_key_is_404() {
    let app = spawn_app().await;
    let monitor = app
        .create_monitor_from(&json!({"name": "backup", "timeout_seconds": 3600, "tags": ["prod"]}))
        .await;
    let badge = expect_json(
        app.api(Method::POST, "/api/badges")
            .json(&json!({"monitor": monitor.id}))
            .send()
            .await
            .unwrap(),
        StatusCode::CREATED,
    )
    .await;
    let key = badge["key"].as_str().unwrap();
    assert_eq!(key.len(), 22);
    assert!(!key.contains(&monitor.push_token));
    let svg_url = badge["svg_url"].as_str().unwrap().to_owned();
    let json_url = badge["json_url"].as_str().unwrap().to_owned();
    assert_eq!(svg_url, app.url(&format!("/badge/{key}.svg")));

    let expect =
        |status: &'static str, colour: &'static str| (colour.to_owned(), status.to_owned());
    let (code, svg) = fetch_badge(&app, &svg_url).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(badge_face(&svg), expect("pending", "#dfb317"));
    app.push_ok(&monitor.push_token, &[]).await;
    assert_eq!(
        badge_face(&fetch_badge(&app, &svg_url).await.1),
        expect("up", "#4c1")
    );
    app.push_ok(&monitor.push_token, &[("status", "down")])
        .await;
    assert_eq!(
        badge_face(&fetch_badge(&app, &svg_url).await.1),
        expect("down", "#e05d44")
    );
    let shields: Value = serde_json::from_str(&fetch_badge(&app, &json_url).await.1).unwrap();
    assert_eq!(
        shields,
        json!({"schemaVersion": 1, "label": "backup", "message": "down", "color": "red"})
    );
    app.pause(&monitor.id).await;
    assert_eq!(
        badge_face(&fetch_badge(&app, &svg_url).await.1),
        expect("paused", "#9f9f9f")
    );

    // The uptime, and a tag's badge with its own label.
    let (code, uptime) = fetch_badge(&app, &format!("{svg_url}?uptime=24h")).await;
    assert_eq!(code, StatusCode::OK);
    let (_, message) = badge_face(&uptime);
    assert!(message.ends_with('%'), "{message}");
    let bad_window = app
        .client
        .get(format!("{svg_url}?uptime=soon"))
        .send()
        .await
        .unwrap();
    expect_error(bad_window, StatusCode::BAD_REQUEST).await;
    let tag = expect_json(
        app.api(Method::POST, "/api/badges")
            .json(&json!({"tag": "prod", "label": "production"}))
            .send()
            .await
            .unwrap(),
        StatusCode::CREATED,
    )
    .await;
    let tag_svg = fetch_badge(&app, tag["svg_url"].as_str().unwrap()).await.1;
    assert!(tag_svg.contains(">production</text>"), "{tag_svg}");
    assert_eq!(badge_face(&tag_svg), expect("paused", "#9f9f9f"));

    // Caching: an ETag, and 304 for a client that has it.
    let response = app.client.get(&svg_url).send().await.unwrap();
    assert_eq!(response.headers()["content-type"], "image/svg+xml");
    let etag = response.headers()["etag"].to_str().unwrap().to_owned();
    let again = app
        .client
        .get(&svg_url)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);

    // Unknown keys, other suffixes, deleted badges: 404.
    for path in [
        "/badge/nope.svg",
        "/badge/nope.json",
        &format!("/badge/{key}.png"),
        &format!("/badge/{key}"),
    ] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(
            expect_error(response, StatusCode::NOT_FOUND).await,
            "badge not found",
            "{path}"
        );
    }
    let listed = expect_json(
        app.api(Method::GET, "/api/badges").send().await.unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(listed["badges"].as_array().unwrap().len(), 2);
    let deleted = app
        .api(
            Method::DELETE,
            &format!("/api/badges/{}", badge["id"].as_str().unwrap()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert_eq!(fetch_badge(&app, &svg_url).await.0, StatusCode::NOT_FOUND);

    // Badges are records with their own log: `pushmon check` replays them.
    let stopped = app.shutdown().await;
    check_store(stopped.data_dir.path());
    let app = stopped.start().await;
    let tag_path = format!("/badge/{}.svg", tag["key"].as_str().unwrap());
    assert_eq!(
        fetch_badge(&app, &app.url(&tag_path)).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_status_page_shows_names_states_and_uptimes_only_and_caches_well() {
    let app = spawn_app().await;
    let public = app
        .create_monitor_from(
            &json!({"name": "website", "timeout_seconds": 3600, "tags": ["public"]}),
        )
        .await;
    let listed = app.create_monitor("api", 3600).await;
    let hidden = app.create_monitor("internal cron", 3600).await;
    app.push_ok(&public.push_token, &[("msg", "secret message")])
        .await;
    let refused = app
        .api(Method::POST, "/api/status-pages")
        .json(&json!({"slug": "Main!", "title": "x"}))
        .send()
        .await
        .unwrap();
    expect_error(refused, StatusCode::UNPROCESSABLE_ENTITY).await;
    let page = expect_json(
        app.api(Method::POST, "/api/status-pages")
            .json(&json!({"slug": "main", "title": "Example status", "tags": ["public"], "monitors": [listed.id]}))
            .send()
            .await
            .unwrap(),
        StatusCode::CREATED,
    )
    .await;
    let taken = app
        .api(Method::POST, "/api/status-pages")
        .json(&json!({"slug": "main", "title": "again"}))
        .send()
        .await
        .unwrap();
    assert!(
        expect_error(taken, StatusCode::UNPROCESSABLE_ENTITY)
            .await
            .contains("taken")
    );

    let response = app
        .client
        .get(app.url("/status/main"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "public, max-age=30");
    let etag = response.headers()["etag"].to_str().unwrap().to_owned();
    let html = response.text().await.unwrap();
    for shown in ["Example status", "website", "api"] {
        assert!(html.contains(shown), "{shown} in {html}");
    }
    for secret in [
        public.push_token.as_str(),
        public.id.as_str(),
        listed.id.as_str(),
        "secret message",
        "internal cron",
        "public</",
    ] {
        assert!(!html.contains(secret), "{secret} must not show: {html}");
    }
    let _ = hidden;
    let again = app
        .client
        .get(app.url("/status/main"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(
        app.client
            .get(app.url("/status/nope"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    // A change of its slug moves it.
    let moved = app
        .api(
            Method::PATCH,
            &format!("/api/status-pages/{}", page["id"].as_str().unwrap()),
        )
        .json(&json!({"slug": "status"}))
        .send()
        .await
        .unwrap();
    let moved = expect_json(moved, StatusCode::OK).await;
    assert_eq!(moved["monitors"], json!([listed.id]), "the rest is kept");
    assert_eq!(moved["tags"], json!(["public"]));
    assert_eq!(
        app.client
            .get(app.url("/status/main"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.client
            .get(app.url("/status/status"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let stopped = app.shutdown().await;
    check_store(stopped.data_dir.path());
}

#[tokio::test]
async fn uptime_and_incidents_come_from_the_history() {
    let app = spawn_app().await;
    let monitor = app.create_monitor("flaky", 1).await;
    app.push_ok(&monitor.push_token, &[]).await;
    app.wait_for_status(&monitor.id, Status::Down, Duration::from_secs(10))
        .await;
    app.push_ok(&monitor.push_token, &[]).await;
    app.push_ok(
        &monitor.push_token,
        &[("status", "down"), ("msg", "broken")],
    )
    .await;
    let incidents = expect_json(
        app.api(
            Method::GET,
            &format!("/api/monitors/{}/incidents", monitor.id),
        )
        .send()
        .await
        .unwrap(),
        StatusCode::OK,
    )
    .await;
    let listed = incidents["incidents"].as_array().unwrap();
    assert_eq!(listed.len(), 2, "{incidents}");
    assert_eq!(listed[0]["reason"], "manual");
    assert_eq!(listed[0]["ended_at"], Value::Null);
    assert_eq!(listed[1]["reason"], "timeout");
    assert_eq!(listed[1]["ended_by"], "up");
    assert!(listed[1]["duration_seconds"].as_f64().unwrap() > 0.0);
    // Paging back from the newest.
    let older = expect_json(
        app.api(
            Method::GET,
            &format!(
                "/api/monitors/{}/incidents?limit=1&before={}",
                monitor.id, listed[0]["seq"]
            ),
        )
        .send()
        .await
        .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(older["incidents"][0]["seq"], listed[1]["seq"]);
    let uptime = expect_json(
        app.api(Method::GET, &format!("/api/monitors/{}/uptime", monitor.id))
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    for window in ["24h", "7d", "30d"] {
        let ratio = uptime["uptime"][window]["ratio"].as_f64().unwrap();
        assert!(ratio > 0.0 && ratio < 1.0, "{window}: {uptime}");
        assert!(uptime["uptime"][window]["down_seconds"].as_f64().unwrap() > 0.0);
    }
    let one = expect_json(
        app.api(
            Method::GET,
            &format!("/api/monitors/{}/uptime?window=90m", monitor.id),
        )
        .send()
        .await
        .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(one["uptime"]["90m"]["seconds"], 5400);
    for bad in ["?window=0s", "?window=400d", "?window=soon"] {
        let response = app
            .api(
                Method::GET,
                &format!("/api/monitors/{}/uptime{bad}", monitor.id),
            )
            .send()
            .await
            .unwrap();
        expect_error(response, StatusCode::BAD_REQUEST).await;
    }
    for bad in ["?limit=0", "?before=x"] {
        let response = app
            .api(
                Method::GET,
                &format!("/api/monitors/{}/incidents{bad}", monitor.id),
            )
            .send()
            .await
            .unwrap();
        expect_error(response, StatusCode::BAD_REQUEST).await;
    }
    let unknown = app
        .api(
            Method::GET,
            "/api/monitors/00000000-0000-0000-0000-000000000000/uptime",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        expect_error(unknown, StatusCode::NOT_FOUND).await,
        "monitor not found"
    );
}

#[tokio::test]
async fn a_channel_is_changed_with_the_checks_of_a_creation() {
    let app = spawn_app().await;
    let created = expect_json(
        app.api(Method::POST, "/api/channels")
            .json(&json!({"kind": "webhook", "name": "ops", "url": "http://127.0.0.1:9/a", "secret": "s"}))
            .send()
            .await
            .unwrap(),
        StatusCode::CREATED,
    )
    .await;
    let path = format!("/api/channels/{}", created["id"].as_str().unwrap());
    let patch = |body: Value| app.api(Method::PATCH, &path).json(&body).send();
    let renamed = expect_json(
        patch(json!({"name": "ops 2"})).await.unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(renamed["name"], "ops 2");
    assert_eq!(renamed["url"], "http://127.0.0.1:9/a");
    assert_eq!(renamed["has_secret"], true, "kept");
    for (body, error) in [
        (
            json!({"url": "ftp://x"}),
            "url must be an absolute http:// or https:// URL",
        ),
        (
            json!({"smtp_url": "smtp://x"}),
            "unknown field \"smtp_url\"",
        ),
        (json!({"name": ""}), "name must be"),
        (json!({"kind": "email"}), "smtp_url is required"),
    ] {
        let message = expect_error(
            patch(body.clone()).await.unwrap(),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert!(message.contains(error), "{body}: {message}");
    }
    let unsigned = expect_json(
        patch(json!({"secret": null})).await.unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(unsigned["has_secret"], false);
    let slack = expect_json(
        patch(json!({"kind": "slack", "url": "https://hooks.example.com/x"}))
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(slack["kind"], "slack");
    assert!(slack.get("has_secret").is_none());
    let missing = app
        .api(
            Method::PATCH,
            "/api/channels/00000000-0000-0000-0000-000000000000",
        )
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    expect_error(missing, StatusCode::NOT_FOUND).await;
    let stopped = app.shutdown().await;
    check_store(stopped.data_dir.path());
}

/// Every dashboard route, signed in or not, with malformed ids and bodies: never a
/// server error, and HTML or a redirect rather than a crash.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_route_survives_malformed_ids_and_forms() {
    let app = spawn_app().await;
    let monitor = app.create_monitor("walked", 3600).await;
    let mut signed_in = Visitor::new(&app);
    signed_in.sign_in(ADMIN_TOKEN).await;
    let csrf = signed_in.csrf().await;
    let anonymous = Visitor::new(&app);
    let ids = [
        "not-a-uuid",
        "%ZZ",
        "%C3%A9",
        "00000000-0000-0000-0000-000000000000",
        monitor.id.as_str(),
    ];
    let mut checked = 0;
    for (template, place) in crate::docs::registered_routes() {
        if !place.starts_with("src/web") {
            continue;
        }
        for id in ids {
            let path = template
                .replace("{id}", id)
                .replace("{file}", &format!("{id}.svg"))
                .replace("{slug}", id);
            if path == "/live" {
                continue;
            }
            for visitor in [&signed_in, &anonymous] {
                for (method, body) in [
                    (Method::GET, String::new()),
                    (
                        Method::POST,
                        format!("csrf={csrf}&name=%ff&timeout=x&kind=zz&tag="),
                    ),
                    (Method::POST, "\u{fffd}not a form".to_owned()),
                    (Method::DELETE, String::new()),
                ] {
                    let response = visitor
                        .request(method.clone(), &path)
                        .header("content-type", "application/x-www-form-urlencoded")
                        .body(body)
                        .send()
                        .await
                        .unwrap();
                    let status = response.status();
                    assert!(!status.is_server_error(), "{method} {path}: {status}");
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 200, "only {checked} requests");
    assert!(app.list_monitors().await.len() <= 1);
}

#[tokio::test]
async fn a_restart_signs_everyone_out() {
    let app = spawn_app().await;
    let mut visitor = Visitor::new(&app);
    visitor.sign_in(ADMIN_TOKEN).await;
    assert_eq!(visitor.get("/").await.status(), StatusCode::OK);
    let app = app.restart().await;
    let mut after = Visitor::new(&app);
    after.cookie = visitor.cookie.clone();
    assert_eq!(after.get("/").await.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn the_monitor_page_shows_runs_their_output_and_a_chart_of_their_durations() {
    let app = spawn_app().await;
    let monitor = app
        .create_monitor_from(&json!({
            "name": "nightly",
            "timeout_seconds": 3600,
            "failure_threshold": 2,
        }))
        .await;
    let mut visitor = Visitor::new(&app);
    visitor.sign_in(ADMIN_TOKEN).await;
    let path = format!("/monitors/{}", monitor.id);
    let run =
        |rid: &'static str, query: &'static [(&'static str, &'static str)], body: &'static str| {
            let request = app
                .client
                .post(app.url(&format!("/api/push/{}", monitor.push_token)))
                .query(&[("rid", rid)])
                .query(query)
                .header("content-type", "text/plain")
                .body(body);
            async move {
                let answer = request.send().await.unwrap();
                assert_eq!(answer.status(), StatusCode::OK);
            }
        };
    let first = "0f5c7e36-2b1a-4f51-9d0e-6a8f3c1b2d40";
    run(first, &[("kind", "start")], "").await;
    let page = visitor.page(&path).await;
    assert!(page.contains("id=\"current-run\""), "{page}");
    sleep(Duration::from_millis(300)).await;
    run(first, &[("exit", "3")], "copying…\n<b>disk full</b>\n").await;
    let page = visitor.page(&path).await;
    let last_run = &page[page.find("id=\"last-run\"").expect("a last run")..];
    let last_run = &last_run[..last_run.find("</dd>").unwrap()];
    assert!(last_run.contains("run-failure"), "{last_run}");
    assert!(last_run.contains("exit 3"), "{last_run}");
    assert!(last_run.contains("took "), "{last_run}");
    // The job's output is shown as text, never as markup.
    assert!(
        last_run.contains("&#60;b&#62;disk full&#60;/b&#62;"),
        "{last_run}"
    );
    assert!(!page.contains("<b>disk full</b>"));
    assert!(!page.contains("id=\"current-run\""), "the run ended");
    // One failure of the two in a row the monitor waits for.
    assert!(
        page.contains("1 of 2 failures in a row before down"),
        "{page}"
    );
    assert!(page.contains("Run durations"), "{page}");

    let second = "5d3b1c2a-7e6f-4a9b-8c0d-1e2f3a4b5c6d";
    run(second, &[("kind", "start")], "").await;
    run(second, &[("exit", "0")], "done\n").await;
    let page = visitor.page(&path).await;
    let last_run = &page[page.find("id=\"last-run\"").expect("a last run")..];
    assert!(last_run.contains("run-success"));
    assert!(
        !page.contains("failures in a row before down"),
        "a success resets it"
    );
    // Two runs with a start: two points in the chart of their durations.
    let chart = &page[page.find("Run durations").unwrap()..];
    assert!(chart.contains("the newest 2"), "{chart}");
    let stopped = app.shutdown().await;
    check_store(stopped.data_dir.path());
}

/// The list's label selector box filters with the API's matcher; a monitor's labels
/// are shown as links that select by them; a bad selector says why and lists nothing.
#[tokio::test]
async fn the_list_filters_by_a_label_selector() {
    let app = spawn_app().await;
    for (name, team) in [("pay-api", "payments"), ("ship-api", "shipping")] {
        app.create_monitor_from(&json!({
            "name": name, "timeout_seconds": 3600, "labels": {"team": team, "env": "prod"},
        }))
        .await;
    }
    app.create_monitor("unlabelled", 3600).await;
    let mut visitor = Visitor::new(&app);
    visitor.sign_in(ADMIN_TOKEN).await;
    let all = visitor.page("/").await;
    for name in ["pay-api", "ship-api", "unlabelled"] {
        assert!(all.contains(name), "{name}");
    }
    assert!(
        all.contains(r#"href="/?selector=team%3Dpayments">team=payments</a>"#),
        "{all}"
    );
    for (query, shown, hidden) in [
        (
            "team%3Dpayments",
            vec!["pay-api"],
            vec!["ship-api", "unlabelled"],
        ),
        (
            "env%2Cteam%21%3Dpayments",
            vec!["ship-api"],
            vec!["pay-api", "unlabelled"],
        ),
        ("%21team", vec!["unlabelled"], vec!["pay-api", "ship-api"]),
    ] {
        let html = visitor.page(&format!("/?selector={query}")).await;
        for name in shown {
            assert!(
                html.contains(&format!(">{name}</a>")),
                "{query}: {name} missing"
            );
        }
        for name in hidden {
            assert!(
                !html.contains(&format!(">{name}</a>")),
                "{query}: {name} shown"
            );
        }
        // The rows fragment the page refreshes itself with keeps the selector.
        let fragment = visitor
            .page(&format!("/?selector={query}&partial=rows"))
            .await;
        assert!(!fragment.contains("<html"), "a fragment");
    }
    let bad = visitor.page("/?selector=team%20in%20payments").await;
    assert!(
        bad.contains("Label selector: selector at position 8"),
        "{bad}"
    );
    assert!(bad.contains("No monitor matches this filter"));
}

/// The channel form makes channels of the kinds that speak a service's API, with
/// their fields (a templated webhook's headers one `Name: value` a line, a priority
/// as a number) and `send_on`; editing keeps the secrets left empty; a bad template
/// is refused on the form, saying why.
#[tokio::test]
async fn the_channel_form_makes_every_kind_with_its_fields_and_send_on() {
    let app = spawn_app().await;
    let mut visitor = Visitor::new(&app);
    visitor.sign_in(ADMIN_TOKEN).await;
    let csrf = visitor.csrf().await;
    let page = visitor.page("/channels").await;
    for kind in [
        "template",
        "teams",
        "telegram",
        "pagerduty",
        "opsgenie",
        "ntfy",
        "gotify",
        "pushover",
        "matrix",
    ] {
        assert!(
            page.contains(&format!(r#"<option value="{kind}""#)),
            "{kind}"
        );
    }
    let forms: [&[(&str, &str)]; 4] = [
        &[
            ("kind", "template"),
            ("name", "status board"),
            ("send_on", "down"),
            ("method", "PUT"),
            ("url", "https://status.example.com/api"),
            ("headers", "Authorization: Bearer t0ken\nX-Team: ops"),
            ("body", r#"{"text": "{{summary}}"}"#),
        ],
        &[
            ("kind", "telegram"),
            ("name", "tg"),
            ("send_on", "both"),
            ("bot_token", "123456:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"),
            ("chat_id", "-100123"),
        ],
        &[
            ("kind", "gotify"),
            ("name", "gotify"),
            ("send_on", "up"),
            ("url", "https://gotify.example.com"),
            ("app_token", "AbC.123"),
            ("priority", "6"),
        ],
        &[
            ("kind", "matrix"),
            ("name", "room"),
            ("url", "https://matrix.example.org"),
            ("access_token", "syt_x"),
            ("room_id", "!ops:example.org"),
        ],
    ];
    for form in forms {
        let mut fields = vec![("csrf", csrf.as_str())];
        fields.extend_from_slice(form);
        let created = visitor.post("/channels", &fields).await;
        assert_eq!(created.status(), StatusCode::SEE_OTHER, "{form:?}");
    }
    let listed = expect_json(
        app.api(Method::GET, "/api/channels").send().await.unwrap(),
        StatusCode::OK,
    )
    .await;
    let channels = listed["channels"].as_array().unwrap();
    assert_eq!(channels.len(), 4, "{listed}");
    assert_eq!(channels[0]["kind"], "template");
    assert_eq!(channels[0]["send_on"], "down");
    assert_eq!(channels[0]["method"], "PUT");
    assert_eq!(
        channels[0]["header_names"],
        json!(["Authorization", "X-Team"])
    );
    assert_eq!(channels[0]["body"], r#"{"text": "{{summary}}"}"#);
    assert_eq!(channels[1]["chat_id"], "-100123");
    assert_eq!(channels[1]["has_bot_token"], true);
    assert_eq!(channels[2]["priority"], 6);
    assert_eq!(channels[2]["send_on"], "up");
    assert_eq!(channels[3]["room_id"], "!ops:example.org");

    // Edited with its secrets left empty: kept.
    let telegram = channels[1]["id"].as_str().unwrap();
    let saved = visitor
        .post(
            &format!("/channels/{telegram}/edit"),
            &[
                ("csrf", &csrf),
                ("kind", "telegram"),
                ("name", "tg 2"),
                ("send_on", "down"),
                ("bot_token", ""),
                ("chat_id", "@pushmon_ops"),
            ],
        )
        .await;
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    let edit = visitor.page(&format!("/channels/{telegram}/edit")).await;
    assert!(edit.contains("@pushmon_ops"), "{edit}");
    assert!(
        !edit.contains("AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"),
        "a token shown: {edit}"
    );
    let channel = expect_json(
        app.api(Method::GET, &format!("/api/channels/{telegram}"))
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        (channel["name"].as_str(), channel["send_on"].as_str()),
        (Some("tg 2"), Some("down"))
    );
    assert_eq!(channel["has_bot_token"], true);

    // A bad template: the form again, with the error.
    let refused = visitor
        .post(
            "/channels",
            &[
                ("csrf", &csrf),
                ("kind", "template"),
                ("name", "bad"),
                ("url", "https://x.example.com"),
                ("body", "{{nope}}"),
            ],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = refused.text().await.unwrap();
    assert!(html.contains("unknown placeholder"), "{html}");
}

#[tokio::test]
async fn muted_monitors_are_marked_in_the_list_and_on_their_page() {
    let app = spawn_app().await;
    let acknowledged = app.create_monitor("acked-job", 3600).await;
    let quiet = app.create_monitor("quiet-job", 3600).await;
    let response = app
        .api(
            Method::POST,
            &format!("/api/monitors/{}/mute", acknowledged.id),
        )
        .json(&json!({"until_recovery": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut visitor = Visitor::new(&app);
    visitor.sign_in(ADMIN_TOKEN).await;
    let list = visitor.page("/").await;
    assert_eq!(list.matches("mute-mark").count(), 1, "{list}");
    assert!(
        list.contains(r#"<span class="tag mute-mark">acknowledged</span>"#),
        "{list}"
    );
    let page = visitor
        .page(&format!("/monitors/{}", acknowledged.id))
        .await;
    assert!(
        page.contains("acknowledged: changes are recorded, nothing is sent"),
        "{page}"
    );
    let page = visitor.page(&format!("/monitors/{}", quiet.id)).await;
    assert!(!page.contains("mute-mark"), "{page}");
}

#[tokio::test]
async fn a_monitor_is_muted_and_unmuted_from_its_page() {
    let app = spawn_app().await;
    let monitor = app.create_monitor("nightly", 3600).await;
    let path = format!("/monitors/{}", monitor.id);
    let muted = || async {
        let view = expect_json(
            app.api(Method::GET, &format!("/api/monitors/{}", monitor.id))
                .send()
                .await
                .unwrap(),
            StatusCode::OK,
        )
        .await;
        view["muted"].clone()
    };
    let mut visitor = Visitor::new(&app);
    visitor.sign_in(ADMIN_TOKEN).await;
    let csrf = visitor.csrf().await;
    let page = visitor.page(&path).await;
    assert!(page.contains(r#"id="mute""#) && !page.contains(r#"id="unmute""#));

    let acknowledged = visitor
        .post(
            &format!("{path}/mute"),
            &[("csrf", &csrf), ("for", "recovery")],
        )
        .await;
    assert_eq!(acknowledged.status(), StatusCode::SEE_OTHER);
    assert_eq!(muted().await["until_recovery"], true);
    let page = visitor.page(&path).await;
    assert!(page.contains(r#"id="unmute""#) && !page.contains(r#"id="mute""#));

    visitor
        .post(&format!("{path}/unmute"), &[("csrf", &csrf)])
        .await;
    assert_eq!(muted().await, Value::Null);

    let timed = visitor
        .post(&format!("{path}/mute"), &[("csrf", &csrf), ("for", "4h")])
        .await;
    assert_eq!(timed.status(), StatusCode::SEE_OTHER);
    // Four hours from when it was asked (the mute's `since` is stamped a moment later).
    let mute = muted().await;
    let time = |field: &Value| {
        chrono::DateTime::parse_from_rfc3339(field.as_str().unwrap())
            .unwrap()
            .timestamp()
    };
    let ahead = time(&mute["until"]) - time(&mute["since"]);
    assert!((4 * 3600 - 5..=4 * 3600).contains(&ahead), "{mute}");

    for bad in ["soon", "0s", "400d"] {
        let refused = visitor
            .post(&format!("{path}/mute"), &[("csrf", &csrf), ("for", bad)])
            .await;
        assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }
    // Without the session's CSRF token nothing changes.
    visitor.post(&format!("{path}/unmute"), &[]).await;
    assert_ne!(muted().await, Value::Null);
}

/// The form sets `allowed_sources` and a signing secret; the secret is write-only:
/// the edit page says a monitor is signed but never shows it, an edit without a new
/// one keeps it, and the tick box takes it away.
#[tokio::test]
async fn the_form_sets_sources_and_a_secret_that_it_never_shows() {
    const SECRET: &str = "dashboard-signing-secret-42";
    let app = spawn_app().await;
    let mut visitor = Visitor::new(&app);
    visitor.sign_in(ADMIN_TOKEN).await;
    let csrf = visitor.csrf().await;
    let monitor = app.create_monitor("agent", 3600).await;
    let path = format!("/monitors/{}", monitor.id);
    let form = |extra: &[(&'static str, &'static str)]| {
        let mut fields = vec![("name", "agent"), ("timeout", "1h")];
        fields.extend_from_slice(extra);
        fields
    };
    let mut fields = form(&[
        ("allowed_sources", "10.0.0.0/8, 127.0.0.1"),
        ("signing_secret", SECRET),
    ]);
    fields.push(("csrf", &csrf));
    let saved = visitor.post(&format!("{path}/edit"), &fields).await;
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    let view = app.monitor_value(&monitor.id).await;
    assert_eq!(view["allowed_sources"], json!(["10.0.0.0/8", "127.0.0.1"]));
    assert_eq!(view["signed"], json!(true));
    let page = visitor.page(&format!("{path}/edit")).await;
    assert!(page.contains("value=\"10.0.0.0/8, 127.0.0.1\""), "{page}");
    assert!(page.contains("pushes must be signed"), "{page}");
    assert!(!page.contains(SECRET), "the secret is shown: {page}");
    assert!(!visitor.page(&path).await.contains(SECRET));
    // An unsigned push is refused now; an edit that types no secret keeps it.
    assert_eq!(
        app.push(&monitor.push_token, &[]).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let mut fields = form(&[("allowed_sources", "")]);
    fields.push(("csrf", &csrf));
    visitor.post(&format!("{path}/edit"), &fields).await;
    let view = app.monitor_value(&monitor.id).await;
    assert_eq!(
        (view["signed"].clone(), view["allowed_sources"].clone()),
        (json!(true), json!([]))
    );
    // A refused secret is not echoed back either.
    let mut fields = form(&[("signing_secret", "short-secret")]);
    fields.push(("csrf", &csrf));
    let refused = visitor.post(&format!("{path}/edit"), &fields).await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let text = refused.text().await.unwrap();
    assert!(
        text.contains("signing_secret must be") && !text.contains("short-secret"),
        "{text}"
    );
    let mut fields = form(&[("remove_secret", "1")]);
    fields.push(("csrf", &csrf));
    visitor.post(&format!("{path}/edit"), &fields).await;
    assert_eq!(app.monitor_value(&monitor.id).await["signed"], json!(false));
    app.push_ok(&monitor.push_token, &[]).await;
}
