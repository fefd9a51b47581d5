//! Alert delivery (`docs/alerts.md`, issue 3) against real receivers on loopback: the webhook
//! payload and its HMAC, retries, a hanging receiver, give-up, redirects, chat and
//! Alertmanager formats, text a push cannot turn into markup, alert ids, and
//! exactly-once across SIGKILL restarts.

use std::time::Duration;

use hmac::{Hmac, Mac};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::time::{Instant, sleep};

use crate::receiver::Receiver;
use crate::support::{Api, ServerProcess, Status, expect_json, spawn_app_with};

const WAIT: Duration = Duration::from_secs(10);

use crate::support::fast_alert_retries as fast_retries;

async fn create_channel(api: &Api, body: Value) -> String {
    let response = api
        .api(Method::POST, "/api/channels")
        .json(&body)
        .send()
        .await
        .expect("create channel");
    let channel = expect_json(response, StatusCode::CREATED).await;
    channel["id"].as_str().expect("channel id").to_owned()
}

async fn webhook(api: &Api, receiver: &Receiver, path: &str, secret: Option<&str>) -> String {
    let mut body = json!({"kind": "webhook", "name": path, "url": receiver.url(path)});
    if let Some(secret) = secret {
        body["secret"] = json!(secret);
    }
    create_channel(api, body).await
}

/// The `delivery` events of a monitor, oldest first.
async fn deliveries(api: &Api, id: &str) -> Vec<Value> {
    let response = api
        .api(
            Method::GET,
            &format!("/api/monitors/{id}/events?limit=1000"),
        )
        .send()
        .await
        .expect("events");
    let body = expect_json(response, StatusCode::OK).await;
    let mut found: Vec<Value> = body["events"]
        .as_array()
        .expect("events array")
        .iter()
        .filter(|event| event["kind"] == "delivery")
        .cloned()
        .collect();
    found.reverse();
    found
}

/// The `delivery` events of a monitor, oldest first, once there are `count`.
pub(crate) async fn wait_for_deliveries(api: &Api, id: &str, count: usize) -> Vec<Value> {
    let deadline = Instant::now() + WAIT;
    loop {
        let found = deliveries(api, id).await;
        if found.len() >= count {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "only {} of {count} delivery events recorded: {found:?}",
            found.len()
        );
        sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn webhook_gets_signed_down_then_up_exactly_once() {
    let receiver = Receiver::start().await;
    let app = spawn_app_with(fast_retries).await;
    let channel = webhook(&app, &receiver, "/hook", Some("s3cret")).await;
    let monitor = app
        .create_monitor_from(
            &json!({"name": "nightly", "timeout_seconds": 3600, "channels": [channel]}),
        )
        .await;
    assert_eq!(monitor.channels, vec![channel.clone()]);

    // A down heartbeat, not a timeout: that a timeout owes the same delivery and hands
    // it to the dispatcher is tested on the actor with paused time.
    app.push_ok(
        &monitor.push_token,
        &[("status", "down"), ("msg", "disk full")],
    )
    .await;
    assert_eq!(app.get_monitor(&monitor.id).await.status, Status::Down);
    let down = receiver.wait_for_delivered(1, WAIT).await;
    app.push_ok(
        &monitor.push_token,
        &[("msg", "back again"), ("value", "7")],
    )
    .await;
    let both = receiver.wait_for_delivered(2, WAIT).await;
    assert_eq!(down.len(), 1);

    let first = both[0].json();
    assert_eq!(first["event"], "down");
    assert_eq!(first["reason"], "manual");
    assert_eq!(first["msg"], "disk full");
    assert_eq!(first["monitor"]["id"], monitor.id.as_str());
    assert_eq!(first["monitor"]["name"], "nightly");
    assert!(first["at"].as_str().is_some_and(|at| at.ends_with('Z')));
    let second = both[1].json();
    assert_eq!(second["event"], "up");
    assert_eq!(second["reason"], "heartbeat");
    assert_eq!(second["msg"], "back again");
    assert_eq!(second["value"], 7.0);

    for request in &both {
        let signature = request
            .headers
            .get("x-pushmon-signature")
            .and_then(|value| value.to_str().ok())
            .expect("signed");
        let mut mac = Hmac::<Sha256>::new_from_slice(b"s3cret").unwrap();
        mac.update(&request.body);
        let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        assert_eq!(signature, expected, "HMAC of the raw body");
    }

    let recorded = wait_for_deliveries(&app, &monitor.id, 2).await;
    assert!(recorded.iter().all(|event| event["result"] == "success"));
    assert_eq!(recorded[0]["channel"], channel.as_str());
    // Nothing more arrives: one alert per change of state.
    sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.received().len(), 2);
}

#[tokio::test]
async fn failed_attempts_are_retried_and_the_alert_arrives_once() {
    let receiver = Receiver::start().await;
    receiver.fail_first(2);
    let app = spawn_app_with(fast_retries).await;
    let channel = webhook(&app, &receiver, "/flaky", None).await;
    let monitor = app
        .create_monitor_from(
            &json!({"name": "flaky", "timeout_seconds": 60, "channels": [channel]}),
        )
        .await;
    app.push_ok(
        &monitor.push_token,
        &[("status", "down"), ("msg", "disk full")],
    )
    .await;

    let delivered = receiver.wait_for_delivered(1, WAIT).await;
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0].json()["reason"], "manual");
    assert_eq!(delivered[0].json()["msg"], "disk full");
    assert!(delivered[0].headers.get("x-pushmon-signature").is_none());
    assert_eq!(receiver.received().len(), 3, "two failures, then success");
    // Every attempt carries the same alert id, so a receiver can deduplicate.
    let ids: std::collections::HashSet<String> = receiver
        .received()
        .iter()
        .map(|request| {
            request.headers["x-pushmon-alert-id"]
                .to_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    let recorded = wait_for_deliveries(&app, &monitor.id, 1).await;
    assert_eq!(recorded[0]["attempts"], 3);
    assert_eq!(recorded[0]["result"], "success");
}

#[tokio::test]
async fn a_receiver_that_never_succeeds_is_given_up_and_recorded() {
    let receiver = Receiver::start().await;
    receiver.fail_always();
    let app = spawn_app_with(fast_retries).await;
    let channel = webhook(&app, &receiver, "/dead", None).await;
    let monitor = app
        .create_monitor_from(
            &json!({"name": "doomed", "timeout_seconds": 60, "channels": [channel]}),
        )
        .await;
    app.push_ok(&monitor.push_token, &[("status", "down")])
        .await;
    let recorded = wait_for_deliveries(&app, &monitor.id, 1).await;
    assert_eq!(recorded[0]["result"], "failure");
    assert_eq!(recorded[0]["attempts"], 4);
    assert!(
        recorded[0]["error"]
            .as_str()
            .is_some_and(|error| error.contains("500"))
    );
    assert_eq!(receiver.received().len(), 4, "bounded attempts");
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("pushmon_alerts_total{event=\"down\",result=\"failure\"}"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_hanging_receiver_slows_neither_other_channels_nor_pushes() {
    let hanging = Receiver::start().await;
    hanging.hang();
    let healthy = Receiver::start().await;
    let app = spawn_app_with(|config| {
        fast_retries(config);
        config.alert_timeout = Duration::from_secs(5);
    })
    .await;
    let stuck = webhook(&app, &hanging, "/stuck", None).await;
    let fine = webhook(&app, &healthy, "/fine", None).await;
    let monitor = app
        .create_monitor_from(
            &json!({"name": "both", "timeout_seconds": 60, "channels": [stuck, fine]}),
        )
        .await;
    let other = app.create_monitor("bystander", 60).await;

    app.push_ok(&monitor.push_token, &[("status", "down")])
        .await;
    let started = Instant::now();
    healthy.wait_for_delivered(1, Duration::from_secs(3)).await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the healthy channel waited for the hanging one"
    );
    // Heartbeats keep flowing while a delivery hangs.
    for _ in 0..20 {
        app.push_ok(&other.push_token, &[]).await;
    }
    assert_eq!(
        hanging.received().len(),
        1,
        "the hanging attempt is still open"
    );
}

#[tokio::test]
async fn chat_and_alertmanager_receive_their_own_formats() {
    let receiver = Receiver::start().await;
    let app = spawn_app_with(fast_retries).await;
    let slack = create_channel(
        &app,
        json!({"kind": "slack", "name": "ops", "url": receiver.url("/slack")}),
    )
    .await;
    let discord = create_channel(
        &app,
        json!({"kind": "discord", "name": "ops", "url": receiver.url("/discord")}),
    )
    .await;
    let alertmanager = create_channel(
        &app,
        json!({"kind": "alertmanager", "name": "am", "url": receiver.url("/am")}),
    )
    .await;
    let monitor = app
        .create_monitor_from(&json!({"name": "etl", "timeout_seconds": 60, "channels": [slack, discord, alertmanager]}))
        .await;
    app.push_ok(
        &monitor.push_token,
        &[("status", "down"), ("msg", "exit 3")],
    )
    .await;
    receiver.wait_for_delivered(3, WAIT).await;
    app.push_ok(&monitor.push_token, &[]).await;
    let all = receiver.wait_for_delivered(6, WAIT).await;

    let by_path = |path: &str| -> Vec<Value> {
        all.iter()
            .filter(|request| request.path == path)
            .map(|request| request.json())
            .collect()
    };
    let slack = by_path("/slack");
    assert_eq!(slack.len(), 2);
    assert!(
        slack[0]["text"]
            .as_str()
            .unwrap()
            .contains("etl is DOWN (manual)")
    );
    assert!(slack[0]["text"].as_str().unwrap().contains("exit 3"));
    assert!(slack[1]["text"].as_str().unwrap().contains("etl is UP"));
    let discord = by_path("/discord");
    assert!(discord[0]["content"].as_str().unwrap().contains("DOWN"));

    let am = by_path("/am/api/v2/alerts");
    assert_eq!(am.len(), 2, "Alertmanager gets its v2 alerts endpoint");
    let firing = &am[0][0];
    let resolved = &am[1][0];
    assert_eq!(firing["labels"]["alertname"], "PushmonMonitorDown");
    assert_eq!(
        firing["labels"], resolved["labels"],
        "same labels resolve the alert"
    );
    assert_eq!(resolved["endsAt"], resolved["startsAt"]);
    assert!(firing["endsAt"].as_str().unwrap() > firing["startsAt"].as_str().unwrap());
}

/// The `X-Pushmon-Alert-Id` of a request.
fn alert_id(request: &crate::receiver::Received) -> String {
    request.headers["x-pushmon-alert-id"]
        .to_str()
        .expect("an ASCII alert id")
        .to_owned()
}

/// Regression (issue 14.1): a push's message, and a monitor's name, reached Slack as
/// live markup (`<!here>`, a link showing other text) and Discord as a real
/// `@everyone` ping. Each chat now gets them escaped by its own rules, and Discord
/// is told to allow no mention; the webhook still carries the text as it was pushed.
#[tokio::test]
async fn a_push_cannot_ping_a_chat_or_disguise_a_link() {
    let receiver = Receiver::start().await;
    let app = spawn_app_with(fast_retries).await;
    let slack = create_channel(
        &app,
        json!({"kind": "slack", "name": "ops", "url": receiver.url("/slack")}),
    )
    .await;
    let discord = create_channel(
        &app,
        json!({"kind": "discord", "name": "ops", "url": receiver.url("/discord")}),
    )
    .await;
    let hook = webhook(&app, &receiver, "/hook", None).await;
    let name = "etl <!channel> *bold* [docs](https://evil.example) 🟢 all good";
    let msg =
        "<!here> @everyone <https://phish.example|Reset password> & [Reset](https://phish.example)";
    let monitor = app
        .create_monitor_from(&json!({
            "name": name,
            "timeout_seconds": 3600,
            "channels": [slack, discord, hook],
        }))
        .await;
    app.push_ok(&monitor.push_token, &[("status", "down"), ("msg", msg)])
        .await;
    let delivered = receiver.wait_for_delivered(3, WAIT).await;
    let at = app
        .get_monitor(&monitor.id)
        .await
        .last_status_change_at
        .expect("went down");
    let link = format!("{}/api/monitors/{}", app.base_url, monitor.id);
    let body = |path: &str| {
        delivered
            .iter()
            .find(|request| request.path == path)
            .unwrap_or_else(|| panic!("nothing delivered to {path}"))
            .json()
    };

    // Slack: `&`, `<` and `>` as entities, formatting off; the name stays one line.
    assert_eq!(
        body("/slack"),
        json!({
            "text": format!(
                "🔴 etl &lt;!channel&gt; *bold* [docs](https://evil.example) 🟢 all good is DOWN (manual) at {at}\n\
                 Last message: &lt;!here&gt; @everyone &lt;https://phish.example|Reset password&gt; \
                 &amp; [Reset](https://phish.example)\n{link}"
            ),
            "mrkdwn": false,
        })
    );
    // Discord: every ASCII punctuation mark escaped, and no mention allowed.
    assert_eq!(
        body("/discord"),
        json!({
            "content": format!(
                "🔴 etl \\<\\!channel\\> \\*bold\\* \\[docs\\]\\(https\\:\\/\\/evil\\.example\\) 🟢 all good \
                 is DOWN (manual) at {at}\n\
                 Last message: \\<\\!here\\> \\@everyone \\<https\\:\\/\\/phish\\.example\\|Reset password\\> \
                 \\& \\[Reset\\]\\(https\\:\\/\\/phish\\.example\\)\n{link}"
            ),
            "allowed_mentions": {"parse": []},
        })
    );
    // The webhook is data: the receiver gets exactly what was pushed.
    let hook = body("/hook");
    assert_eq!(hook["msg"], msg);
    assert_eq!(hook["monitor"]["name"], name);
}

/// A long message is cut to Discord's 2000 characters, the link kept.
#[tokio::test]
async fn a_long_message_is_cut_to_fit_discord() {
    let receiver = Receiver::start().await;
    let app = spawn_app_with(fast_retries).await;
    let discord = create_channel(
        &app,
        json!({"kind": "discord", "name": "ops", "url": receiver.url("/discord")}),
    )
    .await;
    let monitor = app
        .create_monitor_from(
            &json!({"name": "long", "timeout_seconds": 3600, "channels": [discord]}),
        )
        .await;
    // 1024 bytes, the most a push keeps; escaped, twice that.
    let msg = "*".repeat(1024);
    app.push_ok(&monitor.push_token, &[("status", "down"), ("msg", &msg)])
        .await;
    let delivered = receiver.wait_for_delivered(1, WAIT).await;
    let content = delivered[0].json()["content"]
        .as_str()
        .expect("content")
        .to_owned();
    assert!(
        content.encode_utf16().count() <= 2000,
        "{} UTF-16 units",
        content.encode_utf16().count()
    );
    assert!(content.contains("\\*\\*…\n"), "{content}");
    assert!(
        content.ends_with(&format!("/api/monitors/{}", monitor.id)),
        "{content}"
    );
}

/// Regression (issue 14.4): `X-Pushmon-Alert-Id` was the alert's sequence number, so
/// two installations sent the same id for different alerts, and a receiver
/// deduplicating by it dropped a real one. It is now `<installation id>:<seq>`.
#[tokio::test]
async fn alert_ids_differ_between_installations() {
    let receiver = Receiver::start().await;
    let mut ids = Vec::new();
    for path in ["/first", "/second"] {
        let app = spawn_app_with(fast_retries).await;
        let channel = webhook(&app, &receiver, path, None).await;
        let monitor = app
            .create_monitor_from(
                &json!({"name": "same", "timeout_seconds": 3600, "channels": [channel]}),
            )
            .await;
        app.push_ok(&monitor.push_token, &[("status", "down")])
            .await;
        let delivered = receiver.wait_for_delivered(ids.len() + 1, WAIT).await;
        let id = alert_id(delivered.last().expect("a delivery"));
        let (installation, seq) = id
            .split_once(':')
            .unwrap_or_else(|| panic!("{id:?} is not <installation>:<seq>"));
        assert!(
            uuid::Uuid::try_parse(installation).is_ok(),
            "{installation:?} is not a UUID"
        );
        let down = app
            .history(&monitor.id)
            .await
            .into_iter()
            .find(|event| event.kind == "down")
            .expect("a down event");
        assert_eq!(seq, down.seq.to_string(), "the seq of the alert's event");
        ids.push(id);
    }
    assert_ne!(ids[0], ids[1], "two installations, one alert id");
}

/// Regression (issue 14.11): redirects were followed, so an alert (and its signature)
/// went wherever a receiver pointed. A 3xx is now a failed delivery with its status.
#[tokio::test]
async fn a_redirect_is_a_failed_delivery_and_is_not_followed() {
    let elsewhere = Receiver::start().await;
    let redirecting = Receiver::start().await;
    redirecting.redirect_to(&elsewhere.url("/elsewhere"));
    let app = spawn_app_with(fast_retries).await;
    let channel = webhook(&app, &redirecting, "/moved", Some("s3cret")).await;
    let monitor = app
        .create_monitor_from(
            &json!({"name": "moved", "timeout_seconds": 3600, "channels": [channel]}),
        )
        .await;
    app.push_ok(&monitor.push_token, &[("status", "down")])
        .await;
    let recorded = wait_for_deliveries(&app, &monitor.id, 1).await;
    assert_eq!(recorded[0]["result"], "failure", "{recorded:?}");
    assert_eq!(
        recorded[0]["attempts"], 4,
        "retried like any non-2xx answer"
    );
    assert_eq!(
        recorded[0]["error"], "receiver answered 307 Temporary Redirect",
        "{recorded:?}"
    );
    assert_eq!(redirecting.received().len(), 4);
    assert!(
        elsewhere.received().is_empty(),
        "the redirect was followed: {:?}",
        elsewhere.received()
    );
}

#[tokio::test]
async fn an_owed_delivery_survives_sigkill_and_a_delivered_one_is_not_resent() {
    let receiver = Receiver::start().await;
    receiver.fail_always();
    let data_dir = tempfile::tempdir().unwrap();
    let args = [
        "--alert-retry-initial-ms",
        "100",
        "--alert-max-attempts",
        "1000",
        "--restart-grace",
        "0",
    ];
    let server = ServerProcess::start(data_dir.path(), &args).await;
    let channel = webhook(&server, &receiver, "/owed", None).await;
    let monitor = server
        .create_monitor_from(
            &json!({"name": "owed", "timeout_seconds": 3600, "channels": [channel]}),
        )
        .await;
    server
        .push_ok(&monitor.push_token, &[("status", "down")])
        .await;
    // The delivery is owed (failing), and the server dies.
    let deadline = Instant::now() + WAIT;
    while receiver.received().is_empty() {
        assert!(Instant::now() < deadline, "no attempt was made");
        sleep(Duration::from_millis(20)).await;
    }
    server.sigkill().await;
    assert!(receiver.delivered().is_empty());
    let owed_id = alert_id(&receiver.received()[0]);

    receiver.succeed();
    let server = ServerProcess::start(data_dir.path(), &args).await;
    let delivered = receiver.wait_for_delivered(1, WAIT).await;
    assert_eq!(delivered[0].json()["event"], "down");
    // Re-sent after the restart as the same alert: a receiver can deduplicate it.
    assert_eq!(alert_id(&delivered[0]), owed_id);
    let recorded = wait_for_deliveries(&server, &monitor.id, 1).await;
    assert_eq!(recorded[0]["result"], "success");

    // Delivered and recorded: a second crash must not send it again.
    server.sigkill().await;
    let server = ServerProcess::start(data_dir.path(), &args).await;
    sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        receiver.delivered().len(),
        1,
        "a delivered alert was re-sent"
    );
    assert_eq!(deliveries(&server, &monitor.id).await.len(), 1);
    let (status, _) = server.sigterm().await;
    assert!(status.success());
}

#[tokio::test]
async fn email_reaches_a_real_smtp_server() {
    let smtp = crate::smtp::SmtpSink::start().await;
    let app = spawn_app_with(fast_retries).await;
    let channel = create_channel(
        &app,
        json!({
            "kind": "email",
            "name": "oncall",
            "smtp_url": format!("smtp://127.0.0.1:{}", smtp.port),
            "from": "pushmon@example.test",
            "to": ["oncall@example.test"],
        }),
    )
    .await;
    let monitor = app
        .create_monitor_from(
            &json!({"name": "mailer", "timeout_seconds": 60, "channels": [channel]}),
        )
        .await;
    app.push_ok(
        &monitor.push_token,
        &[("status", "down"), ("msg", "no backup")],
    )
    .await;
    let message = smtp.wait_for_message("mailer is DOWN", WAIT).await;
    assert!(
        message.contains("Subject: [pushmon] mailer is DOWN (manual)"),
        "{message}"
    );
    assert!(message.contains("oncall@example.test"), "{message}");
    assert!(message.contains("no backup"), "{message}");
    assert!(
        message.contains("Content-Type: text/plain; charset=utf-8"),
        "{message}"
    );
    // Every re-send of one alert has the same Message-ID, made from the alert's id.
    let down = app
        .history(&monitor.id)
        .await
        .into_iter()
        .find(|event| event.kind == "down")
        .expect("a down event");
    assert!(
        message.contains(&format!(".{}@pushmon>", down.seq)),
        "{message}"
    );
    let recorded = wait_for_deliveries(&app, &monitor.id, 1).await;
    assert_eq!(recorded[0]["result"], "success");
}
