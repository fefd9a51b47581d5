//! The channel kinds that speak a service's own API (`docs/alerts.md`): a templated
//! webhook, Microsoft Teams, Telegram, PagerDuty, Opsgenie, ntfy, Gotify, Pushover and
//! Matrix, each against a real local receiver that checks the method, path, headers
//! and body its public API documents, for a `down` then an `up`; `send_on`; test
//! messages; errors a service answers; settings refused up front; secrets not shown.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::time::{Instant, sleep};

use crate::alerts::wait_for_deliveries;
use crate::receiver::{Received, Receiver};
use crate::support::{Api, TestApp, expect_error, expect_json, fast_alert_retries, spawn_app_with};

const WAIT: Duration = Duration::from_secs(10);

/// Quick retries, and every alert on its own at once: these tests check each kind's
/// single-alert request (digests of these kinds are tested at the end).
fn fast(config: &mut pushmon::config::Config) {
    fast_alert_retries(config);
    config.digest = pushmon::alert::digest::DigestPolicy::OFF;
}

const TELEGRAM_TOKEN: &str = "123456:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw";
const PAGERDUTY_KEY: &str = "R0UT1NGKEY0123456789abcdefABCDEF";
const PUSHOVER_USER: &str = "uQiRzpo4DXghDmr9QzzfQu27cmVRsG";
const PUSHOVER_APP: &str = "azGDORePK8gMaC0QOYAMyEEuzJnyUi";

async fn create_channel(api: &Api, body: Value) -> Value {
    let response = api
        .api(Method::POST, "/api/channels")
        .json(&body)
        .send()
        .await
        .expect("create channel");
    expect_json(response, StatusCode::CREATED).await
}

async fn create(api: &Api, body: Value) -> String {
    create_channel(api, body).await["id"]
        .as_str()
        .expect("channel id")
        .to_owned()
}

/// A monitor alerting `channels`, pushed `down` (with a message) and, once `receiver`
/// has `after_down` requests answered, `up` again.
async fn down_then_up(
    app: &TestApp,
    name: &str,
    channels: &[&str],
    receiver: &Receiver,
    after_down: usize,
) -> String {
    let monitor = app
        .create_monitor_from(&json!({"name": name, "timeout_seconds": 3600, "channels": channels}))
        .await;
    app.push_ok(
        &monitor.push_token,
        &[("status", "down"), ("msg", "disk <full> & @room *now*")],
    )
    .await;
    receiver.wait_for_delivered(after_down, WAIT).await;
    app.push_ok(&monitor.push_token, &[("value", "7")]).await;
    monitor.id
}

fn header<'a>(request: &'a Received, name: &str) -> &'a str {
    request
        .headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_else(|| panic!("no {name} header in {request:?}"))
}

#[tokio::test]
async fn a_templated_webhook_sends_its_method_headers_and_rendered_body() {
    let receiver = Receiver::start().await;
    let app = spawn_app_with(fast).await;
    let json_hook = create(
        &app,
        json!({
            "kind": "template", "name": "json", "method": "PUT", "url": receiver.url("/json"),
            "headers": {"Authorization": "Bearer t0ken", "X-Team": "ops"},
            "body": r#"{"text": "{{ monitor.name }} is {{event}} ({{reason}})", "msg": "{{msg}}", "value": "{{value}}", "id": "{{monitor.id}}", "at": "{{at}}"}"#,
        }),
    )
    .await;
    let form_hook = create(
        &app,
        json!({
            "kind": "template", "name": "form", "url": receiver.url("/form"),
            "headers": {"Content-Type": "application/x-www-form-urlencoded"},
            "body": "name={{monitor.name}}&event={{event}}",
        }),
    )
    .await;
    let get_hook = create(
        &app,
        json!({"kind": "template", "name": "get", "method": "get", "url": receiver.url("/get?x=1")}),
    )
    .await;
    let name = "db \"primary\" & <b>";
    let monitor = down_then_up(
        &app,
        name,
        &[&json_hook, &form_hook, &get_hook],
        &receiver,
        3,
    )
    .await;
    let all = receiver.wait_for_delivered(6, WAIT).await;
    let on = |path: &str| -> Vec<&Received> { all.iter().filter(|r| r.path == path).collect() };

    let json_requests = on("/json");
    assert_eq!(json_requests.len(), 2);
    for (request, event, reason) in [
        (json_requests[0], "down", "manual"),
        (json_requests[1], "up", "heartbeat"),
    ] {
        assert_eq!(request.method, Method::PUT);
        assert_eq!(header(request, "authorization"), "Bearer t0ken");
        assert_eq!(header(request, "x-team"), "ops");
        assert_eq!(header(request, "content-type"), "application/json");
        assert!(header(request, "x-pushmon-alert-id").contains(':'));
        let body = request.json();
        assert_eq!(body["text"], format!("{name} is {event} ({reason})"));
        assert_eq!(body["id"], monitor.as_str());
        assert!(body["at"].as_str().unwrap().ends_with('Z'));
    }
    assert_eq!(json_requests[0].json()["msg"], "disk <full> & @room *now*");
    assert_eq!(json_requests[1].json()["value"], "7");

    let form_requests = on("/form");
    assert_eq!(form_requests[0].method, Method::POST);
    let pairs: Vec<(String, String)> = form_urlencoded::parse(&form_requests[0].body)
        .into_owned()
        .collect();
    assert_eq!(
        pairs,
        vec![
            ("name".to_owned(), name.to_owned()),
            ("event".to_owned(), "down".to_owned())
        ]
    );
    let get_requests = on("/get");
    assert_eq!(get_requests[0].method, Method::GET);
    assert_eq!(get_requests[0].query.as_deref(), Some("x=1"));
    assert!(get_requests[0].body.is_empty());

    // The channel shows its headers' names, never their values.
    let shown = expect_json(
        app.api(Method::GET, &format!("/api/channels/{json_hook}"))
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(shown["header_names"], json!(["Authorization", "X-Team"]));
    assert_eq!(shown["method"], "PUT");
    assert!(!shown.to_string().contains("t0ken"), "{shown}");
}

#[tokio::test]
async fn teams_gets_an_adaptive_card_whose_text_is_never_markdown() {
    let receiver = Receiver::start().await;
    let app = spawn_app_with(fast).await;
    let channel = create(
        &app,
        json!({"kind": "teams", "name": "teams", "url": receiver.url("/workflows/abc")}),
    )
    .await;
    down_then_up(
        &app,
        "[click](https://evil.example) **db**",
        &[&channel],
        &receiver,
        1,
    )
    .await;
    let both = receiver.wait_for_delivered(2, WAIT).await;
    for (request, colour, state) in [(&both[0], "Attention", "DOWN"), (&both[1], "Good", "UP")] {
        assert_eq!(request.method, Method::POST);
        assert_eq!(request.path, "/workflows/abc");
        let body = request.json();
        assert_eq!(body["type"], "message");
        let attachment = &body["attachments"][0];
        assert_eq!(
            attachment["contentType"],
            "application/vnd.microsoft.card.adaptive"
        );
        let card = &attachment["content"];
        assert_eq!(card["type"], "AdaptiveCard");
        assert_eq!(card["version"], "1.4");
        let blocks = card["body"].as_array().unwrap();
        // Every text is a TextRun in a RichTextBlock: Teams reads no Markdown there.
        for block in blocks {
            assert_eq!(block["type"], "RichTextBlock", "{block}");
            for inline in block["inlines"].as_array().unwrap() {
                assert_eq!(inline["type"], "TextRun");
            }
        }
        let title = &blocks[0]["inlines"][0];
        assert_eq!(title["color"], colour);
        let text = title["text"].as_str().unwrap();
        assert!(
            text.starts_with("[click](https://evil.example) **db** is "),
            "{text}"
        );
        assert!(text.contains(state), "{text}");
        assert_eq!(card["actions"][0]["type"], "Action.OpenUrl");
    }
}

#[tokio::test]
async fn telegram_gets_send_message_with_html_escaped_text() {
    let receiver = Receiver::start().await;
    let app = spawn_app_with(fast).await;
    let channel = create(
        &app,
        json!({"kind": "telegram", "name": "tg", "bot_token": TELEGRAM_TOKEN,
               "chat_id": -1001234567890i64, "api_url": receiver.url("/tg")}),
    )
    .await;
    down_then_up(&app, "<b>db</b> & co", &[&channel], &receiver, 1).await;
    let both = receiver.wait_for_delivered(2, WAIT).await;
    for request in &both {
        assert_eq!(request.method, Method::POST);
        assert_eq!(request.path, format!("/tg/bot{TELEGRAM_TOKEN}/sendMessage"));
        assert_eq!(header(request, "content-type"), "application/json");
        let body = request.json();
        assert_eq!(body["chat_id"], "-1001234567890");
        assert_eq!(body["parse_mode"], "HTML");
        assert_eq!(body["link_preview_options"]["is_disabled"], true);
        let text = body["text"].as_str().unwrap();
        assert!(text.contains("&lt;b&gt;db&lt;/b&gt; &amp; co"), "{text}");
        assert!(!text.contains("<b>"), "{text}");
    }
    let down = both[0].json()["text"].as_str().unwrap().to_owned();
    assert!(down.contains("is DOWN (manual)"), "{down}");
    assert!(down.contains("disk &lt;full&gt; &amp; @room"), "{down}");
    assert!(
        both[1].json()["text"]
            .as_str()
            .unwrap()
            .contains("is UP again")
    );
    // The token is never shown.
    let listed = expect_json(
        app.api(Method::GET, "/api/channels").send().await.unwrap(),
        StatusCode::OK,
    )
    .await;
    assert!(!listed.to_string().contains(TELEGRAM_TOKEN), "{listed}");
    assert_eq!(listed["channels"][0]["has_bot_token"], true);
    assert_eq!(listed["channels"][0]["chat_id"], "-1001234567890");
}

#[tokio::test]
async fn pagerduty_triggers_then_resolves_with_the_monitors_dedup_key() {
    let receiver = Receiver::start().await;
    receiver.answer_with(202);
    let app = spawn_app_with(fast).await;
    let channel = create(
        &app,
        json!({"kind": "pagerduty", "name": "pd", "routing_key": PAGERDUTY_KEY, "api_url": receiver.url("/pd")}),
    )
    .await;
    let monitor = down_then_up(&app, "nightly", &[&channel], &receiver, 1).await;
    let both = receiver.wait_for_delivered(2, WAIT).await;
    let dedup_key = format!("pushmon-{monitor}");
    let trigger = both[0].json();
    assert_eq!(both[0].method, Method::POST);
    assert_eq!(both[0].path, "/pd/v2/enqueue");
    assert_eq!(trigger["routing_key"], PAGERDUTY_KEY);
    assert_eq!(trigger["event_action"], "trigger");
    assert_eq!(trigger["dedup_key"], dedup_key.as_str());
    assert_eq!(trigger["payload"]["severity"], "critical");
    assert_eq!(trigger["payload"]["source"], "pushmon");
    assert_eq!(trigger["payload"]["summary"], "nightly is DOWN (manual)");
    assert_eq!(
        trigger["payload"]["custom_details"]["msg"],
        "disk <full> & @room *now*"
    );
    assert!(
        trigger["payload"]["timestamp"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    let resolve = both[1].json();
    assert_eq!(resolve["event_action"], "resolve");
    assert_eq!(resolve["dedup_key"], dedup_key.as_str());
    assert_eq!(resolve["routing_key"], PAGERDUTY_KEY);
    let recorded = wait_for_deliveries(&app, &monitor, 2).await;
    assert!(
        recorded.iter().all(|event| event["result"] == "success"),
        "{recorded:?}"
    );
}

#[tokio::test]
async fn opsgenie_creates_then_closes_the_monitors_alias() {
    let receiver = Receiver::start().await;
    receiver.answer_with(202);
    let app = spawn_app_with(fast).await;
    let channel = create(
        &app,
        json!({"kind": "opsgenie", "name": "og", "api_key": "eb243592-faa2-4ba2-a551q-1afdf565c889",
               "api_url": receiver.url("/og/"), "priority": "P2"}),
    )
    .await;
    let monitor = down_then_up(&app, "nightly", &[&channel], &receiver, 1).await;
    let both = receiver.wait_for_delivered(2, WAIT).await;
    let alias = format!("pushmon-{monitor}");
    for request in &both {
        assert_eq!(request.method, Method::POST);
        assert_eq!(
            header(request, "authorization"),
            "GenieKey eb243592-faa2-4ba2-a551q-1afdf565c889"
        );
    }
    assert_eq!(both[0].path, "/og/v2/alerts");
    let created = both[0].json();
    assert_eq!(created["alias"], alias.as_str());
    assert_eq!(created["message"], "nightly is DOWN (manual)");
    assert_eq!(created["priority"], "P2");
    assert_eq!(created["source"], "pushmon");
    assert_eq!(created["entity"], "nightly");
    assert!(
        created["description"]
            .as_str()
            .unwrap()
            .contains("disk <full>")
    );
    assert_eq!(both[1].path, format!("/og/v2/alerts/{alias}/close"));
    assert_eq!(both[1].query.as_deref(), Some("identifierType=alias"));
    assert_eq!(both[1].json()["source"], "pushmon");
}

#[tokio::test]
async fn ntfy_gotify_and_pushover_get_their_documented_requests() {
    let receiver = Receiver::start().await;
    let app = spawn_app_with(fast).await;
    let ntfy = create(
        &app,
        json!({"kind": "ntfy", "name": "ntfy", "url": receiver.url("/ntfy/alerts"), "token": "tk_abc", "priority": 5}),
    )
    .await;
    let gotify = create(
        &app,
        json!({"kind": "gotify", "name": "gotify", "url": receiver.url("/gotify"), "app_token": "AbCdEf.123"}),
    )
    .await;
    let pushover = create(
        &app,
        json!({"kind": "pushover", "name": "po", "user_key": PUSHOVER_USER, "app_token": PUSHOVER_APP,
               "api_url": receiver.url("/po")}),
    )
    .await;
    down_then_up(&app, "backup", &[&ntfy, &gotify, &pushover], &receiver, 3).await;
    let all = receiver.wait_for_delivered(6, WAIT).await;
    let on = |path: &str| -> Vec<&Received> { all.iter().filter(|r| r.path == path).collect() };

    let ntfy = on("/ntfy/");
    assert_eq!(ntfy.len(), 2, "JSON publishing goes to the server's root");
    assert_eq!(header(ntfy[0], "authorization"), "Bearer tk_abc");
    let down = ntfy[0].json();
    assert_eq!(down["topic"], "alerts");
    assert_eq!(down["title"], "backup is DOWN (manual)");
    assert_eq!(down["priority"], 5);
    assert_eq!(down["tags"], json!(["rotating_light"]));
    assert!(down["message"].as_str().unwrap().contains("disk <full>"));
    assert!(down["click"].as_str().unwrap().contains("/api/monitors/"));
    let up = ntfy[1].json();
    assert_eq!(
        (up["priority"].clone(), up["tags"].clone()),
        (json!(3), json!(["white_check_mark"]))
    );

    let gotify = on("/gotify/message");
    assert_eq!(gotify.len(), 2);
    assert_eq!(header(gotify[0], "x-gotify-key"), "AbCdEf.123");
    let down = gotify[0].json();
    assert_eq!(down["title"], "backup is DOWN (manual)");
    assert_eq!(down["priority"], 8);
    assert_eq!(
        down["extras"]["client::display"]["contentType"],
        "text/plain"
    );
    assert_eq!(gotify[1].json()["priority"], 4);

    let pushover = on("/po/1/messages.json");
    assert_eq!(pushover.len(), 2);
    assert_eq!(
        header(pushover[0], "content-type"),
        "application/x-www-form-urlencoded"
    );
    let form: std::collections::HashMap<String, String> = form_urlencoded::parse(&pushover[0].body)
        .into_owned()
        .collect();
    assert_eq!(form["token"], PUSHOVER_APP);
    assert_eq!(form["user"], PUSHOVER_USER);
    assert_eq!(form["title"], "backup is DOWN (manual)");
    assert_eq!(form["priority"], "1");
    assert!(form["message"].contains("disk <full>"));
    assert!(form["timestamp"].parse::<i64>().unwrap() > 1_700_000_000);
    let form: std::collections::HashMap<String, String> = form_urlencoded::parse(&pushover[1].body)
        .into_owned()
        .collect();
    assert_eq!(form["priority"], "0");
    assert_eq!(form["title"], "backup is UP again");
}

#[tokio::test]
async fn matrix_puts_a_plain_message_whose_retry_is_the_same_transaction() {
    let receiver = Receiver::start().await;
    // The first attempt fails: the retry must be the same transaction.
    receiver.fail_first(1);
    let app = spawn_app_with(fast).await;
    let channel = create(
        &app,
        json!({"kind": "matrix", "name": "room", "url": receiver.url("/hs"),
               "access_token": "syt_abc_123", "room_id": "!ops:matrix.example"}),
    )
    .await;
    down_then_up(&app, "@room <b>db</b>", &[&channel], &receiver, 1).await;
    receiver.wait_for_delivered(2, WAIT).await;
    let all = receiver.received();
    assert_eq!(all.len(), 3, "one failed attempt, its retry, the up");
    let prefix = "/hs/_matrix/client/v3/rooms/!ops:matrix.example/send/m.room.message/";
    for request in &all {
        assert_eq!(request.method, Method::PUT);
        assert!(request.path.starts_with(prefix), "{}", request.path);
        assert_eq!(header(request, "authorization"), "Bearer syt_abc_123");
        let body = request.json();
        assert_eq!(body["msgtype"], "m.text");
        assert_eq!(body["m.mentions"], json!({}));
        assert!(body.get("formatted_body").is_none());
        assert!(body["body"].as_str().unwrap().contains("@room <b>db</b>"));
    }
    assert_eq!(all[0].path, all[1].path, "a retry is the same transaction");
    assert_ne!(
        all[1].path, all[2].path,
        "another alert is another transaction"
    );
    assert!(all[1].json()["body"].as_str().unwrap().contains("is DOWN"));
    assert!(
        all[2].json()["body"]
            .as_str()
            .unwrap()
            .contains("is UP again")
    );
}

#[tokio::test]
async fn send_on_down_or_up_tells_a_channel_only_those_alerts_and_owes_nothing_else() {
    let receiver = Receiver::start().await;
    let app = spawn_app_with(fast).await;
    let both = create(
        &app,
        json!({"kind": "webhook", "name": "both", "url": receiver.url("/both")}),
    )
    .await;
    let down = create(
        &app,
        json!({"kind": "webhook", "name": "down", "url": receiver.url("/down"), "send_on": "down"}),
    )
    .await;
    let up = create(
        &app,
        json!({"kind": "webhook", "name": "up", "url": receiver.url("/up"), "send_on": "up"}),
    )
    .await;
    let monitor = down_then_up(&app, "m", &[&both, &down, &up], &receiver, 2).await;
    receiver.wait_for_delivered(4, WAIT).await;
    let recorded = wait_for_deliveries(&app, &monitor, 4).await;
    sleep(Duration::from_millis(300)).await;
    let events = |path: &str| -> Vec<String> {
        receiver
            .received()
            .iter()
            .filter(|request| request.path == path)
            .map(|request| request.json()["event"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(events("/both"), ["down", "up"]);
    assert_eq!(events("/down"), ["down"]);
    assert_eq!(events("/up"), ["up"]);
    // Four deliveries owed and recorded, not six.
    assert_eq!(recorded.len(), 4, "{recorded:?}");
    assert_eq!(wait_for_deliveries(&app, &monitor, 4).await.len(), 4);

    // send_on is shown, and changed like any setting.
    let changed = expect_json(
        app.api(Method::PATCH, &format!("/api/channels/{up}"))
            .json(&json!({"send_on": "both"}))
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(changed["send_on"], "both");
    let shown = expect_json(
        app.api(Method::GET, &format!("/api/channels/{down}"))
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(shown["send_on"], "down");
}

/// The owed deliveries survive a restart as the log says: a `send_on: up` channel
/// owes nothing for a `down` that the server stopped before delivering.
#[tokio::test]
async fn a_channel_that_skips_an_alert_owes_nothing_after_a_restart() {
    let receiver = Receiver::start().await;
    receiver.fail_always();
    let app = spawn_app_with(|config| {
        fast(config);
        config.alert_retry.max_attempts = 1000;
        config.alert_retry.initial = Duration::from_millis(200);
    })
    .await;
    let both = create(
        &app,
        json!({"kind": "webhook", "name": "both", "url": receiver.url("/both")}),
    )
    .await;
    let up = create(
        &app,
        json!({"kind": "webhook", "name": "up", "url": receiver.url("/up"), "send_on": "up"}),
    )
    .await;
    let monitor = app
        .create_monitor_from(&json!({"name": "m", "timeout_seconds": 3600, "channels": [both, up]}))
        .await;
    app.push_ok(&monitor.push_token, &[("status", "down")])
        .await;
    let deadline = Instant::now() + WAIT;
    while receiver.received().is_empty() {
        assert!(Instant::now() < deadline, "the down was never attempted");
        sleep(Duration::from_millis(25)).await;
    }
    let stopped = app.shutdown().await;
    receiver.succeed();
    let app = stopped.start().await;
    receiver.wait_for_delivered(1, WAIT).await;
    wait_for_deliveries(&app, &monitor.id, 1).await;
    sleep(Duration::from_millis(300)).await;
    assert!(
        receiver
            .received()
            .iter()
            .all(|request| request.path == "/both"),
        "the up-only channel got the down"
    );
}

#[tokio::test]
async fn every_kind_sends_a_test_message_that_says_it_is_a_test() {
    let receiver = Receiver::start().await;
    let app = spawn_app_with(fast).await;
    let kinds = [
        json!({"kind": "template", "name": "t", "url": receiver.url("/template"), "body": "{\"e\": \"{{event}}\", \"s\": \"{{summary}}\"}"}),
        json!({"kind": "teams", "name": "t", "url": receiver.url("/teams")}),
        json!({"kind": "telegram", "name": "t", "bot_token": TELEGRAM_TOKEN, "chat_id": "@pushmon_ops", "api_url": receiver.url("/telegram")}),
        json!({"kind": "pagerduty", "name": "t", "routing_key": PAGERDUTY_KEY, "api_url": receiver.url("/pagerduty")}),
        json!({"kind": "opsgenie", "name": "t", "api_key": "k-1", "api_url": receiver.url("/opsgenie")}),
        json!({"kind": "ntfy", "name": "t", "url": receiver.url("/ntfy/topic")}),
        json!({"kind": "gotify", "name": "t", "url": receiver.url("/gotify"), "app_token": "x"}),
        json!({"kind": "pushover", "name": "t", "user_key": PUSHOVER_USER, "app_token": PUSHOVER_APP, "api_url": receiver.url("/pushover")}),
        json!({"kind": "matrix", "name": "t", "url": receiver.url("/matrix"), "access_token": "x", "room_id": "!r:m.example"}),
    ];
    for body in kinds {
        let kind = body["kind"].as_str().unwrap().to_owned();
        let id = create(&app, body).await;
        let before = receiver.received().len();
        let answer = expect_json(
            app.api(Method::POST, &format!("/api/channels/{id}/test"))
                .send()
                .await
                .unwrap(),
            StatusCode::OK,
        )
        .await;
        assert_eq!(answer["ok"], true);
        let sent = receiver.received()[before..].to_vec();
        assert!(!sent.is_empty(), "{kind}: nothing sent");
        assert!(
            sent.iter()
                .all(|request| request.path.starts_with(&format!("/{kind}")))
        );
        let text = String::from_utf8_lossy(&sent[0].body).into_owned();
        assert!(
            text.contains("Test from pushmon") || text.contains("Test+from+pushmon"),
            "{kind}: {text}"
        );
        match kind.as_str() {
            // Nothing left open: a test incident is resolved, a test alert closed.
            "pagerduty" => {
                assert_eq!(sent.len(), 2);
                assert_eq!(sent[0].json()["payload"]["severity"], "info");
                assert_eq!(sent[1].json()["event_action"], "resolve");
                assert_eq!(sent[0].json()["dedup_key"], sent[1].json()["dedup_key"]);
            }
            "opsgenie" => {
                assert_eq!(sent.len(), 2);
                assert_eq!(sent[0].json()["priority"], "P5");
                assert!(sent[1].path.ends_with("/close"));
            }
            "template" => assert_eq!(sent[0].json()["e"], "test"),
            _ => assert_eq!(sent.len(), 1),
        }
    }
}

#[tokio::test]
async fn a_4xx_is_not_retried_but_a_429_is() {
    let receiver = Receiver::start().await;
    receiver.answer_with(401);
    let app = spawn_app_with(fast).await;
    let channel = create(
        &app,
        json!({"kind": "gotify", "name": "g", "url": receiver.url("/g"), "app_token": "wrong"}),
    )
    .await;
    let monitor = app
        .create_monitor_from(&json!({"name": "m", "timeout_seconds": 3600, "channels": [channel]}))
        .await;
    app.push_ok(&monitor.push_token, &[("status", "down")])
        .await;
    let recorded = wait_for_deliveries(&app, &monitor.id, 1).await;
    assert_eq!(recorded[0]["result"], "failure");
    assert_eq!(recorded[0]["attempts"], 1, "{recorded:?}");
    assert!(recorded[0]["error"].as_str().unwrap().contains("401"));

    receiver.answer_with(429);
    app.push_ok(&monitor.push_token, &[]).await;
    let recorded = wait_for_deliveries(&app, &monitor.id, 2).await;
    assert_eq!(recorded[1]["result"], "failure");
    assert_eq!(recorded[1]["attempts"], 4, "{recorded:?}");
}

#[tokio::test]
async fn bad_settings_are_refused_naming_the_field() {
    let app = spawn_app_with(|_| {}).await;
    for (body, field) in [
        (
            json!({"kind": "template", "name": "x", "url": "http://127.0.0.1:1/", "body": "{{nope}}"}),
            "placeholder {{nope}}",
        ),
        (
            json!({"kind": "template", "name": "x", "url": "http://127.0.0.1:1/", "body": "{{event"}),
            "body",
        ),
        (
            json!({"kind": "template", "name": "x", "url": "http://127.0.0.1:1/", "method": "DELETE"}),
            "method",
        ),
        (
            json!({"kind": "template", "name": "x", "url": "http://127.0.0.1:1/", "method": "GET", "body": "x"}),
            "body",
        ),
        (
            json!({"kind": "template", "name": "x", "url": "http://127.0.0.1:1/", "headers": {"Host": "x"}}),
            "headers",
        ),
        (
            json!({"kind": "template", "name": "x", "url": "http://127.0.0.1:1/", "headers": {"X-A": 5}}),
            "headers",
        ),
        (
            json!({"kind": "template", "name": "x", "url": "http://127.0.0.1:1/", "headers": "X-A: 1"}),
            "headers",
        ),
        (json!({"kind": "teams", "name": "x"}), "url"),
        (
            json!({"kind": "telegram", "name": "x", "bot_token": "nope", "chat_id": "1"}),
            "bot_token",
        ),
        (
            json!({"kind": "telegram", "name": "x", "bot_token": TELEGRAM_TOKEN, "chat_id": "ops"}),
            "chat_id",
        ),
        (
            json!({"kind": "telegram", "name": "x", "bot_token": TELEGRAM_TOKEN}),
            "chat_id",
        ),
        (
            json!({"kind": "telegram", "name": "x", "bot_token": TELEGRAM_TOKEN, "chat_id": 1, "api_url": "ftp://x"}),
            "api_url",
        ),
        (
            json!({"kind": "pagerduty", "name": "x", "routing_key": "short"}),
            "routing_key",
        ),
        (
            json!({"kind": "opsgenie", "name": "x", "api_key": "k", "priority": "P9"}),
            "priority",
        ),
        (json!({"kind": "opsgenie", "name": "x"}), "api_key"),
        (
            json!({"kind": "ntfy", "name": "x", "url": "https://ntfy.sh/"}),
            "url",
        ),
        (
            json!({"kind": "ntfy", "name": "x", "url": "https://ntfy.sh/t", "priority": 9}),
            "priority",
        ),
        (
            json!({"kind": "gotify", "name": "x", "url": "https://g.example"}),
            "app_token",
        ),
        (
            json!({"kind": "gotify", "name": "x", "url": "https://g.example", "app_token": "a b"}),
            "app_token",
        ),
        (
            json!({"kind": "pushover", "name": "x", "user_key": "u", "app_token": PUSHOVER_APP}),
            "user_key",
        ),
        (
            json!({"kind": "pushover", "name": "x", "user_key": PUSHOVER_USER, "app_token": PUSHOVER_APP, "priority": 2}),
            "priority",
        ),
        (
            json!({"kind": "matrix", "name": "x", "url": "https://m.example", "access_token": "t", "room_id": "#ops:m.example"}),
            "room_id",
        ),
        (
            json!({"kind": "webhook", "name": "x", "url": "http://127.0.0.1:1/", "send_on": "sideways"}),
            "send_on",
        ),
        (
            json!({"kind": "webhook", "name": "x", "url": "http://127.0.0.1:1/", "bot_token": TELEGRAM_TOKEN}),
            "bot_token",
        ),
    ] {
        let error = expect_error(
            app.api(Method::POST, "/api/channels")
                .json(&body)
                .send()
                .await
                .unwrap(),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert!(error.contains(field), "{body} -> {error}");
    }
}

/// With private addresses refused, a service kind's API URL is checked like any URL.
#[tokio::test]
async fn an_api_url_to_a_private_address_is_refused_when_private_addresses_are() {
    let app = spawn_app_with(|config| {
        config.alert_addresses = pushmon::alert::AddressPolicy::DenyPrivate;
    })
    .await;
    let error = expect_error(
        app.api(Method::POST, "/api/channels")
            .json(&json!({"kind": "pagerduty", "name": "x", "routing_key": PAGERDUTY_KEY, "api_url": "http://127.0.0.1:9/"}))
            .send()
            .await
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(error.contains("api_url"), "{error}");
    // The service's own default is public.
    create(
        &app,
        json!({"kind": "pagerduty", "name": "x", "routing_key": PAGERDUTY_KEY}),
    )
    .await;
}

/// A burst of alerts within the digest window reaches each text kind as one digest
/// (its own format, user text escaped as for one alert), while PagerDuty, which keeps
/// one incident per monitor, gets each alert on its own.
#[tokio::test]
async fn a_burst_reaches_the_text_kinds_as_one_digest_and_pagerduty_one_by_one() {
    let receiver = Receiver::start().await;
    let app = spawn_app_with(|config| {
        fast_alert_retries(config);
        config.digest = pushmon::alert::digest::DigestPolicy {
            window: Duration::from_millis(700),
            threshold: 3,
            webhooks: false,
        };
    })
    .await;
    let telegram = create(
        &app,
        json!({"kind": "telegram", "name": "tg", "bot_token": TELEGRAM_TOKEN,
               "chat_id": "-100123", "api_url": receiver.url("/tg")}),
    )
    .await;
    let matrix = create(
        &app,
        json!({"kind": "matrix", "name": "room", "url": receiver.url("/hs"),
               "access_token": "syt_x", "room_id": "!ops:m.example"}),
    )
    .await;
    let ntfy = create(
        &app,
        json!({"kind": "ntfy", "name": "ntfy", "url": receiver.url("/ntfy/alerts")}),
    )
    .await;
    let teams = create(
        &app,
        json!({"kind": "teams", "name": "teams", "url": receiver.url("/teams")}),
    )
    .await;
    let pagerduty = create(
        &app,
        json!({"kind": "pagerduty", "name": "pd", "routing_key": PAGERDUTY_KEY, "api_url": receiver.url("/pd")}),
    )
    .await;
    let channels = [&telegram, &matrix, &ntfy, &teams, &pagerduty];
    let mut tokens = Vec::new();
    for index in 0..4 {
        let monitor = app
            .create_monitor_from(&json!({"name": format!("<b>job {index}</b>"), "timeout_seconds": 3600, "channels": channels}))
            .await;
        tokens.push(monitor.push_token);
    }
    for token in &tokens {
        app.push_ok(token, &[("status", "down")]).await;
    }
    // One digest to each of four kinds, four triggers to PagerDuty.
    receiver.wait_for_delivered(8, WAIT).await;
    sleep(Duration::from_millis(1000)).await;
    let all = receiver.received();
    let on = |prefix: &str| -> Vec<&Received> {
        all.iter().filter(|r| r.path.starts_with(prefix)).collect()
    };
    assert_eq!(on("/pd").len(), 4, "PagerDuty takes no digest");
    let telegram = on("/tg");
    assert_eq!(telegram.len(), 1);
    let text = telegram[0].json()["text"].as_str().unwrap().to_owned();
    assert!(text.contains("pushmon digest, 4 alerts: 4 DOWN"), "{text}");
    assert!(
        text.contains("&lt;b&gt;job 0&lt;/b&gt;") && !text.contains("<b>"),
        "{text}"
    );
    let matrix = on("/hs");
    assert_eq!(matrix.len(), 1);
    assert!(matrix[0].path.contains(".digest-"), "{}", matrix[0].path);
    assert!(
        matrix[0].json()["body"]
            .as_str()
            .unwrap()
            .contains("4 alerts: 4 DOWN")
    );
    assert_eq!(matrix[0].json()["m.mentions"], json!({}));
    let ntfy = on("/ntfy/");
    assert_eq!(ntfy.len(), 1);
    assert_eq!(ntfy[0].json()["title"], "pushmon digest, 4 alerts: 4 DOWN");
    assert!(
        ntfy[0].json()["message"]
            .as_str()
            .unwrap()
            .contains("<b>job 3</b> is DOWN")
    );
    let teams = on("/teams");
    assert_eq!(teams.len(), 1);
    let card = &teams[0].json()["attachments"][0]["content"];
    assert_eq!(
        card["body"][0]["inlines"][0]["text"],
        "pushmon digest, 4 alerts: 4 DOWN"
    );
    assert_eq!(card["body"][0]["inlines"][0]["color"], "Attention");
}
