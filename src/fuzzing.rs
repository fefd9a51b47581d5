//! The checks the fuzz targets in `fuzz/` run (`scripts/fuzz.sh`), each on any bytes:
//! the push request parser, the monitors file and the stored-record decoders. A
//! check panics when an invariant fails, which is what libFuzzer reports as a crash.
//!
//! The same checks replay every file of `fuzz/corpus/` in the ordinary test suite
//! (the tests below), so the corpus, crashes found once included, stays a regression
//! suite without a nightly compiler.

use std::fmt::Debug;
use std::path::Path;

use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use bytes::Bytes;

use crate::declare::{DeclareError, MonitorsFile};
use crate::domain::api_key::ApiKeyId;
use crate::domain::event::{HeartbeatText, MAX_MSG_BYTES, MAX_OUTPUT_LIMIT};
use crate::domain::ids::{PushToken, Timestamp};
use crate::http::ingress::{Push, parse_push};
use crate::store::{api_keys, codec};

/// The names of the fuzz targets, each a directory of `fuzz/corpus/`.
pub const TARGETS: [&str; 3] = ["push_request", "monitors_file", "stored_records"];

/// Runs the check of the fuzz target `target` on `input`.
pub fn check(target: &str, input: &[u8]) {
    match target {
        "push_request" => push_request(input),
        "monitors_file" => monitors_file(input),
        "stored_records" => stored_records(input),
        other => panic!("no fuzz target {other:?}"),
    }
}

/// A push's query, content type and body, as three parts of `input`: the query
/// string (what follows `?` in the URL) up to the first newline, the `Content-Type`
/// up to the second (an empty line: none), the body after it. A query or content type
/// that no HTTP request can carry is skipped: hyper refuses it before the parser.
///
/// Whatever arrives, the parser answers a heartbeat whose message has at most
/// [`MAX_MSG_BYTES`] bytes and whose value is finite, or a 400 that says why.
pub fn push_request(input: &[u8]) {
    let mut parts = input.splitn(3, |byte| *byte == b'\n');
    let query = parts.next().unwrap_or_default();
    let content_type = parts.next().unwrap_or_default();
    let body = parts.next().unwrap_or_default();
    let Ok(query) = std::str::from_utf8(query) else {
        return;
    };
    let target = if query.is_empty() {
        "/api/push/t".to_owned()
    } else {
        format!("/api/push/t?{query}")
    };
    let Ok(uri) = target.parse::<Uri>() else {
        return;
    };
    let mut headers = HeaderMap::new();
    if !content_type.is_empty() {
        let Ok(value) = HeaderValue::from_bytes(content_type) else {
            return;
        };
        headers.insert(CONTENT_TYPE, value);
    }
    match parse_push(uri.query(), &headers, Bytes::copy_from_slice(body)) {
        Ok(Push::Heartbeat(heartbeat)) => {
            check_text_and_value(heartbeat.msg.as_ref(), heartbeat.value);
        }
        Ok(Push::Signal(signal)) => {
            check_text_and_value(signal.msg.as_ref(), signal.value);
            if let Some(output) = &signal.output {
                assert!(
                    output.as_str().len() <= MAX_OUTPUT_LIMIT,
                    "an output of {} bytes",
                    output.as_str().len()
                );
            }
        }
        Err(error) => {
            assert_eq!(error.status(), StatusCode::BAD_REQUEST, "{error}");
            assert!(
                !error.to_string().trim().is_empty(),
                "a 400 that says nothing"
            );
        }
    }
}

/// A push's message is within [`MAX_MSG_BYTES`] and its value finite.
fn check_text_and_value(msg: Option<&HeartbeatText>, value: Option<f64>) {
    if let Some(msg) = msg {
        assert!(
            msg.as_str().len() <= MAX_MSG_BYTES,
            "a message of {} bytes",
            msg.as_str().len()
        );
    }
    if let Some(value) = value {
        assert!(value.is_finite(), "value {value}");
    }
}

/// The moment a monitors file is checked at: fixed, so a run is repeatable.
fn checked_at() -> Timestamp {
    Timestamp::from_millis(1_764_106_200_000)
}

/// The push token the fake environment and token files below hold.
fn declared_token() -> String {
    PushToken::from_bytes([7; 16]).reveal()
}

/// What every secret the environment and token files below hold starts with; no
/// error may show it (`SECURITY.md`: an invalid token is reported without its value).
const SECRET_MARK: &str = "secret-value-";

/// The environment the monitors file is checked against: the variables of
/// `docs/monitors-file.md`'s example, and one holding a malformed token.
fn environment(name: &str) -> Option<String> {
    match name {
        "OPS_WEBHOOK_SECRET" => Some(format!("{SECRET_MARK}of-the-webhook")),
        "BACKUP_PUSH_TOKEN" => Some(declared_token()),
        "BAD_PUSH_TOKEN" => Some(format!("{SECRET_MARK}not-a-token")),
        _ => None,
    }
}

/// The token files the monitors file is checked against: no real file is read.
fn token_file(path: &Path) -> std::io::Result<String> {
    match path.to_str() {
        Some("/secrets/backup") => Ok(format!("{}\n", declared_token())),
        Some("/secrets/bad") => Ok(format!("{SECRET_MARK}short\n")),
        _ => Err(std::io::ErrorKind::NotFound.into()),
    }
}

/// A monitors file, as UTF-8 text (other bytes fail to read, before the parser).
///
/// The check touches no store. It accepts the file or refuses it with an error that
/// says where: the line (the YAML parser's errors), or the item (`channels[2]`,
/// `monitors[0] (key "backup")`), or that the file holds more than one document; it
/// never shows a secret or token read from the environment or a file (the file's own
/// text it may quote, and the fuzzer soon learns to write the token in it).
pub fn monitors_file(input: &[u8]) {
    let Ok(text) = std::str::from_utf8(input) else {
        return;
    };
    let file = MonitorsFile::new("monitors.yaml");
    match file.check(text, &environment, &token_file, checked_at()) {
        Ok(()) => {}
        Err(DeclareError::Invalid { message, .. }) => {
            assert!(
                names_a_place(&message),
                "an error that says not where: {message}"
            );
            assert!(
                !shows_a_secret(&message, text),
                "an error that shows a secret: {message}"
            );
        }
        Err(error) => panic!("checking the file touched the store: {error}"),
    }
}

/// Whether an error about the monitors file `text` shows a secret or token read from
/// the environment or a file, not quoted from `text` itself.
fn shows_a_secret(message: &str, text: &str) -> bool {
    [SECRET_MARK, &declared_token()]
        .into_iter()
        .any(|secret| message.contains(secret) && !text.contains(secret))
}

/// Whether an error about a monitors file says where the mistake is.
fn names_a_place(message: &str) -> bool {
    message.contains(" line ")
        || message.starts_with("channels[")
        || message.starts_with("monitors[")
        || message.contains("more than one document")
}

/// Every stored-record decoder on the same bytes: each answers a value or an error,
/// never a panic, and allocates within its limit (libFuzzer's `-malloc_limit_mb` in
/// `scripts/fuzz.sh`). A decoded value encodes, and the encoding decodes to the same
/// value (the same bytes once more, and the same `Debug`).
pub fn stored_records(input: &[u8]) {
    round_trip(input, codec::decode_event, codec::encode_event);
    round_trip(input, codec::decode_monitor, codec::encode_monitor);
    round_trip(input, codec::decode_delivery, codec::encode_delivery);
    round_trip(input, codec::decode_channel, codec::encode_channel);
    round_trip(
        input,
        codec::decode_channel_event,
        codec::encode_channel_event,
    );
    round_trip(input, api_keys::decode, api_keys::encode);
    let id = ApiKeyId::from_bytes([3; 16]);
    round_trip(
        input,
        |bytes| api_keys::decode_event(id, bytes),
        api_keys::encode_event,
    );
}

fn round_trip<T: Debug, E: Debug, F: Debug>(
    input: &[u8],
    decode: impl Fn(&[u8]) -> Result<T, E>,
    encode: impl Fn(&T) -> Result<Vec<u8>, F>,
) {
    let Ok(value) = decode(input) else {
        return;
    };
    let encoded = match encode(&value) {
        Ok(encoded) => encoded,
        Err(error) => panic!("a decoded record does not encode: {error:?}"),
    };
    let again = match decode(&encoded) {
        Ok(again) => again,
        Err(error) => panic!("a re-encoded record does not decode: {error:?}"),
    };
    match encode(&again) {
        Ok(bytes) => assert_eq!(
            bytes, encoded,
            "the encoding changes on a second round trip"
        ),
        Err(error) => panic!("a decoded record does not encode: {error:?}"),
    }
    // `Debug` rather than `PartialEq`: a stored value may be a NaN.
    assert_eq!(format!("{again:?}"), format!("{value:?}"));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/corpus")
            .join(target);
        let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
            .unwrap_or_else(|error| panic!("{}: {error}", dir.display()))
            .map(|entry| {
                let path = entry.expect("directory entry").path();
                let name = path
                    .file_name()
                    .map(|name| name.to_string_lossy().into_owned());
                (
                    name.unwrap_or_default(),
                    std::fs::read(&path).expect("read a corpus file"),
                )
            })
            .collect();
        files.sort();
        files
    }

    /// Every corpus file, crashes found by the fuzzer included, passes its target's
    /// check; the failures are named, all of them.
    #[test]
    fn every_corpus_file_passes_its_targets_check() {
        let mut failed = Vec::new();
        for target in TARGETS {
            let files = corpus(target);
            assert!(
                files.len() >= 10,
                "fuzz/corpus/{target} has {} files",
                files.len()
            );
            for (name, bytes) in files {
                if std::panic::catch_unwind(|| check(target, &bytes)).is_err() {
                    failed.push(format!("fuzz/corpus/{target}/{name}"));
                }
            }
        }
        assert!(failed.is_empty(), "failing: {}", failed.join(", "));
    }

    /// Records of every stored type and variant, made by the real codec, as
    /// `(name, bytes)`; the version 1 fixtures of `store/fixtures/` too. Values come
    /// from the fixtures, the push parser and the domain's constructors where they can,
    /// so that a field added to a stored type needs no change here.
    fn stored_record_seeds() -> Vec<(String, Vec<u8>)> {
        use crate::domain::alert::{Alert, Delivery};
        use crate::domain::api_key::{ApiKey, Scope};
        use crate::domain::channel::{Channel, ChannelEvent, ChannelKind};
        use crate::domain::event::{
            DeliveryOutcome, DownReason, Event, HeartbeatText, MonitorConfig,
        };
        use crate::domain::ids::{ChannelId, MonitorId};
        use crate::domain::machine::{Grace, Monitor, Status};
        use crate::store::api_keys::ApiKeyChange;
        use crate::store::codec::{StoredChannelEvent, StoredEvent};

        let v1_created = include_bytes!("store/fixtures/v1_created.bin");
        let Event::Created { config, token } =
            codec::decode_event(v1_created).expect("decodes").event
        else {
            panic!("the fixture holds a Created event");
        };
        let mut config = *config;
        let at = Timestamp::from_millis(1_764_106_200_000);
        let channel_id = ChannelId::from_bytes([5; 16]);
        config.timeout_seconds = 90_000;
        config.interval_seconds = 86_400;
        config.channels = vec![channel_id, ChannelId::from_bytes([6; 16])];
        config.key = Some("nightly-backup".to_owned());
        config.tags = vec!["backup".to_owned(), "prod".to_owned()];
        let heartbeat = |query: &str| match parse_push(Some(query), &HeaderMap::new(), Bytes::new())
        {
            Ok(Push::Heartbeat(heartbeat)) => Event::HeartbeatReceived(heartbeat),
            _ => panic!("not a plain heartbeat: {query}"),
        };
        let events = [
            (
                "created",
                Event::Created {
                    config: Box::new(config.clone()),
                    token: token.clone(),
                },
            ),
            (
                "updated",
                Event::Updated {
                    config: Box::new(MonitorConfig {
                        key: None,
                        tags: vec![],
                        channels: vec![],
                        ..config.clone()
                    }),
                },
            ),
            (
                "token-rotated",
                Event::TokenRotated {
                    token: token.clone(),
                },
            ),
            ("deleted", Event::Deleted),
            ("heartbeat-up", heartbeat("msg=ok&value=1.5")),
            (
                "heartbeat-down",
                heartbeat(&format!(
                    "status=down&value=-2e300&msg={}",
                    "%C3%A9".repeat(600)
                )),
            ),
            ("heartbeat-empty", heartbeat("")),
            (
                "went-down-timeout",
                Event::WentDown {
                    reason: DownReason::Timeout,
                },
            ),
            (
                "went-down-manual",
                Event::WentDown {
                    reason: DownReason::Manual,
                },
            ),
            ("recovered", Event::Recovered),
            ("paused", Event::Paused),
            ("resumed", Event::Resumed),
            (
                "grace-granted",
                Event::GraceGranted {
                    deadline: at,
                    until: Timestamp::from_millis(1_764_106_290_000),
                },
            ),
            (
                "delivery-recorded",
                Event::DeliveryRecorded(DeliveryOutcome {
                    channel: channel_id,
                    alert_seq: 42,
                    attempts: 3,
                    error: Some("HTTP 500".to_owned()),
                }),
            ),
            ("went-up", Event::WentUp),
            (
                "muted",
                Event::Muted {
                    until: Some(Timestamp::from_millis(1_764_110_000_000)),
                    until_recovery: false,
                },
            ),
            (
                "unmuted",
                Event::Unmuted {
                    reason: crate::domain::event::UnmuteReason::Recovered,
                },
            ),
            (
                "alert-muted",
                Event::AlertMuted(crate::domain::event::Notice::Down(DownReason::Timeout)),
            ),
        ];
        let mut seeds = Vec::new();
        for (name, event) in events {
            let stored = StoredEvent { at, event };
            let bytes = codec::encode_event(&stored).expect("encodes");
            assert_eq!(codec::decode_event(&bytes).expect("decodes"), stored);
            seeds.push((format!("event-{name}"), bytes));
        }

        let mut monitor = Monitor::created(MonitorId::from_bytes([1; 16]), at, config, token);
        let bytes = codec::encode_monitor(&monitor).expect("encodes");
        seeds.push(("monitor-pending".to_owned(), bytes));
        monitor.status = Status::Down;
        monitor.last_heartbeat_at = Some(at);
        monitor.last_status_change_at = Some(at);
        monitor.last_msg = Some(HeartbeatText::truncated("disk full".to_owned()));
        monitor.last_value = Some(97.5);
        monitor.grace = Some(Grace {
            deadline: at,
            until: Timestamp::from_millis(1_764_106_290_000),
        });
        monitor.last_seq = u64::MAX;
        let bytes = codec::encode_monitor(&monitor).expect("encodes");
        assert_eq!(codec::decode_monitor(&bytes).expect("decodes"), monitor);
        seeds.push(("monitor-down".to_owned(), bytes));
        monitor.mute = Some(crate::domain::machine::Mute {
            since: at,
            until: None,
            until_recovery: true,
        });
        let bytes = codec::encode_monitor(&monitor).expect("encodes");
        assert_eq!(codec::decode_monitor(&bytes).expect("decodes"), monitor);
        seeds.push(("monitor-acknowledged".to_owned(), bytes));

        let alerts = [
            (
                "down",
                Event::WentDown {
                    reason: DownReason::Manual,
                },
            ),
            ("up", Event::Recovered),
        ];
        for (name, event) in alerts {
            let mut alert = Alert::for_event(&monitor, at, &event).expect("alerts");
            alert.alert_seq = 42;
            let delivery = Delivery {
                channel: channel_id,
                alert,
            };
            let bytes = codec::encode_delivery(&delivery).expect("encodes");
            assert_eq!(codec::decode_delivery(&bytes).expect("decodes"), delivery);
            seeds.push((format!("delivery-{name}"), bytes));
        }

        let kinds = [
            (
                "webhook",
                ChannelKind::Webhook {
                    url: "https://hooks.example.com/pushmon".to_owned(),
                    secret: Some("s3cret".to_owned()),
                },
            ),
            (
                "slack",
                ChannelKind::Slack {
                    url: "https://hooks.slack.example/x".to_owned(),
                },
            ),
            (
                "discord",
                ChannelKind::Discord {
                    url: "https://discord.example/api/webhooks/1/x".to_owned(),
                },
            ),
            (
                "email",
                ChannelKind::Email {
                    smtp_url: "smtp://relay.internal:25".to_owned(),
                    from: "pushmon@example.com".to_owned(),
                    to: vec![
                        "oncall@example.com".to_owned(),
                        "ops@example.com".to_owned(),
                    ],
                },
            ),
            (
                "alertmanager",
                ChannelKind::Alertmanager {
                    url: "http://alertmanager:9093".to_owned(),
                },
            ),
            (
                "template",
                ChannelKind::Template {
                    method: crate::domain::channel::HttpMethod::Put,
                    url: "https://api.example/alerts".to_owned(),
                    headers: vec![("Authorization".to_owned(), "Bearer x".to_owned())],
                    body: Some(r#"{"text":"{{summary}}"}"#.to_owned()),
                },
            ),
            (
                "telegram",
                ChannelKind::Telegram {
                    bot_token: "123:abc".to_owned(),
                    chat_id: "-100123".to_owned(),
                    api_url: None,
                },
            ),
            (
                "pushover",
                ChannelKind::Pushover {
                    user_key: "u".repeat(30),
                    app_token: "a".repeat(30),
                    api_url: Some("https://pushover.example".to_owned()),
                    priority: Some(-1),
                },
            ),
            (
                "matrix",
                ChannelKind::Matrix {
                    url: "https://matrix.example".to_owned(),
                    access_token: "syt_x".to_owned(),
                    room_id: "!r:matrix.example".to_owned(),
                },
            ),
        ];
        for (name, kind) in kinds {
            let channel = Channel {
                id: channel_id,
                name: format!("{name} channel"),
                kind,
                created_at: at,
                key: Some(name.to_owned()),
                send_on: if name == "matrix" {
                    crate::domain::channel::SendOn::Down
                } else {
                    crate::domain::channel::SendOn::Both
                },
            };
            let bytes = codec::encode_channel(&channel).expect("encodes");
            assert_eq!(codec::decode_channel(&bytes).expect("decodes"), channel);
            seeds.push((format!("channel-{name}"), bytes));
            for (change, event) in [
                ("created", ChannelEvent::Created(channel.clone())),
                ("updated", ChannelEvent::Updated(channel.clone())),
                ("deleted", ChannelEvent::Deleted),
            ] {
                let stored = StoredChannelEvent { at, event };
                let bytes = codec::encode_channel_event(&stored).expect("encodes");
                assert_eq!(
                    codec::decode_channel_event(&bytes).expect("decodes"),
                    stored
                );
                seeds.push((format!("channel-event-{name}-{change}"), bytes));
            }
        }

        for (name, scope) in [("read", Scope::Read), ("write", Scope::Write)] {
            let key = ApiKey {
                id: crate::domain::api_key::ApiKeyId::from_bytes([3; 16]),
                name: format!("grafana {name}"),
                scope,
                created_at: at,
                digest: [9; 32],
            };
            let bytes = api_keys::encode(&key).expect("encodes");
            assert_eq!(api_keys::decode(&bytes).expect("decodes"), key);
            seeds.push((format!("api-key-{name}"), bytes));
            let created = ApiKeyChange::Created(key.clone());
            let bytes = api_keys::encode_event(&created).expect("encodes");
            assert_eq!(
                api_keys::decode_event(key.id, &bytes).expect("decodes"),
                created
            );
            seeds.push((format!("api-key-event-created-{name}"), bytes));
            let revoked = ApiKeyChange::Revoked(key.id);
            let bytes = api_keys::encode_event(&revoked).expect("encodes");
            seeds.push(("api-key-event-revoked".to_owned(), bytes));
        }

        seeds.push((
            "v1-created".to_owned(),
            include_bytes!("store/fixtures/v1_created.bin").to_vec(),
        ));
        seeds.push((
            "v1-monitor".to_owned(),
            include_bytes!("store/fixtures/v1_monitor.bin").to_vec(),
        ));
        seeds
    }

    /// Writes [`stored_record_seeds`] to `fuzz/corpus/stored_records/seed-*`: run after a
    /// change of the stored format, so the fuzzer starts from records of every type.
    #[test]
    #[ignore = "writes files into fuzz/corpus/: run by hand after a change of the stored format"]
    fn write_stored_record_seeds() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/stored_records");
        std::fs::create_dir_all(&dir).expect("create the corpus directory");
        for (name, bytes) in stored_record_seeds() {
            stored_records(&bytes);
            std::fs::write(dir.join(format!("seed-{name}")), bytes).expect("write a seed");
        }
    }

    /// Labels and a severity in a monitors file are checked as the API checks them,
    /// each error naming the monitor and the key or value at fault.
    #[test]
    fn a_files_labels_and_severity_are_checked_naming_what_is_wrong() {
        let file = |monitor: &str| {
            format!("monitors:\n  - key: m\n    name: M\n    timeout_seconds: 60\n{monitor}")
        };
        let check = |text: &str| {
            MonitorsFile::new("monitors.yaml").check(text, &environment, &token_file, checked_at())
        };
        check(&file(
            "    labels: {team: payments, example.com/env: prod, empty: \"\"}\n    severity: info\n",
        ))
        .expect("valid labels");
        for (monitor, says) in [
            ("    labels: {\"bad key\": x}\n", "label key \"bad key\""),
            (
                "    labels: {team: \"a b\"}\n",
                "the value of label \"team\"",
            ),
            (
                "    severity: fatal\n",
                "severity \"fatal\" must be critical, warning or info",
            ),
        ] {
            let error = check(&file(monitor)).expect_err(monitor).to_string();
            assert!(error.contains(says), "{monitor}: {error}");
            assert!(
                error.contains("monitors[0]") || error.contains("line"),
                "{error}"
            );
        }
    }

    /// A file that is a list, a scalar or empty (`~`) was refused as "expected struct
    /// File": the name of a type of ours, and no word of where or what.
    #[test]
    fn a_file_that_is_not_a_mapping_names_the_fields_it_may_have() {
        for text in ["- a\n- b\n", "just a string\n", "~\n"] {
            let error = MonitorsFile::new("monitors.yaml")
                .check(text, &environment, &token_file, checked_at())
                .expect_err(text)
                .to_string();
            assert!(
                error.contains("`prune`, `channels` and `monitors`") && !error.contains("File"),
                "{error}"
            );
        }
    }

    /// A character YAML does not allow was reported by its byte offset ("control
    /// characters are not allowed at position 25"), found by the fuzzer.
    #[test]
    fn a_character_yaml_does_not_allow_is_reported_by_line_and_column() {
        let text = "monitors: []\n---\nchAnnels\u{5}: []\n";
        let error = MonitorsFile::new("monitors.yaml")
            .check(text, &environment, &token_file, checked_at())
            .expect_err("a control character")
            .to_string();
        assert!(
            error.ends_with("character U+0005 is not allowed in YAML at line 3 column 9"),
            "{error}"
        );
    }

    /// An error quoting the file's own text was taken for one showing the declared
    /// token once the fuzzer wrote the token into the file (`unknown field
    /// chBwcHBw…annels`), found by the fuzzer.
    #[test]
    fn an_error_may_quote_a_token_the_file_itself_holds() {
        let token = declared_token();
        let text = format!("ch{token}annels: []\n");
        monitors_file(text.as_bytes());
        let shows_what_the_file_holds = MonitorsFile::new("monitors.yaml")
            .check(&text, &environment, &token_file, checked_at())
            .expect_err("an unknown field")
            .to_string();
        assert!(
            shows_what_the_file_holds.contains(&token),
            "{shows_what_the_file_holds}"
        );
    }

    /// The checks can fail: a parser that answered a 404, a file error that names no
    /// place, or one that shows a token the file does not hold, would be reported.
    #[test]
    fn a_check_fails_when_its_invariant_does() {
        assert!(names_a_place(
            "monitors[0] (key \"a\"): key is declared twice"
        ));
        assert!(names_a_place(
            "invalid type: string \"x\", expected u64 at line 3 column 4"
        ));
        assert!(!names_a_place("cannot read: no such file"));
        assert!(!names_a_place(
            "invalid type: sequence, expected struct File"
        ));
        let token = declared_token();
        assert!(shows_a_secret(
            &format!("bad token {token}"),
            "token_env: X"
        ));
        assert!(!shows_a_secret(&format!("bad token {token}"), &token));
        // Decodes a record to its length, encodes a number as one byte more.
        let growing = || {
            round_trip(
                b"x",
                |bytes| Ok::<usize, ()>(bytes.len()),
                |length| Ok::<_, ()>(vec![0; length + 1]),
            )
        };
        let broken_round_trip = std::panic::catch_unwind(growing).is_err();
        assert!(
            broken_round_trip,
            "a decoder whose output changes is caught"
        );
    }
}
