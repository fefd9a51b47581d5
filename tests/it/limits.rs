//! Bounds against abusive clients: a client that never finishes its headers is cut
//! off (slow-loris), connections beyond the limit are closed at once, never queued,
//! while the server keeps serving, and pushes with unknown tokens from one source
//! address beyond its limit are refused (that address learned from `X-Forwarded-For`
//! only when the peer is a trusted proxy).

use std::time::Duration;

use pushmon::config::RateLimit;
use reqwest::{Response, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};

use crate::support::{
    Api, ServerProcess, Status, expect_error, of_kind, spawn_app, spawn_app_with,
};

/// Whether the server closed `stream` within `wait` (a read returned end of file).
async fn closed_within(stream: &mut TcpStream, wait: Duration) -> bool {
    let mut buffer = [0u8; 1024];
    let deadline = Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match timeout(left, stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            // Some bytes (a 408, say): keep reading until the close.
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_cut_off() {
    let app = spawn_app_with(|config| config.header_timeout = Duration::from_secs(1)).await;
    let address = app.base_url.trim_start_matches("http://").to_owned();
    let mut slow = TcpStream::connect(&address).await.unwrap();
    slow.write_all(b"POST /api/push/AAAAAAAAAAAAAAAAAAAAAA HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    assert!(
        closed_within(&mut slow, Duration::from_secs(5)).await,
        "a connection with unfinished headers stayed open"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "closed before the timeout"
    );
    // Everyone else is served meanwhile and after.
    let monitor = app.create_monitor("still served", 60).await;
    app.push_ok(&monitor.push_token, &[]).await;
}

/// A push whose body stops arriving is answered 400 once the body's time is up (the
/// header timeout, again), and records nothing. Both ways a push is served: the direct
/// path (a plain token) and the router (the same token with its first character
/// percent-encoded).
#[tokio::test]
async fn a_push_whose_body_stalls_is_refused_after_the_body_timeout() {
    const BODY_TIMEOUT: Duration = Duration::from_secs(2);
    let app = spawn_app_with(|config| config.header_timeout = BODY_TIMEOUT).await;
    let monitor = app.create_monitor("stalled body", 3600).await;
    let token = &monitor.push_token;
    let encoded = format!("%{:02X}{}", token.as_bytes()[0], &token[1..]);
    let address = app.base_url.trim_start_matches("http://").to_owned();
    let stall = |path: String| {
        let address = address.clone();
        async move {
            let mut stream = TcpStream::connect(&address).await.unwrap();
            let head = format!(
                "POST {path}?msg=stalled HTTP/1.1\r\nHost: x\r\n\
                 Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nstatus="
            );
            stream.write_all(head.as_bytes()).await.unwrap();
            let started = Instant::now();
            let mut answer = Vec::new();
            let mut buffer = [0u8; 1024];
            // The answer, then the close; bounded well past the timeout.
            while let Ok(Ok(read @ 1..)) = timeout(
                BODY_TIMEOUT + Duration::from_secs(10),
                stream.read(&mut buffer),
            )
            .await
            {
                answer.extend_from_slice(&buffer[..read]);
            }
            (
                String::from_utf8_lossy(&answer).into_owned(),
                started.elapsed(),
            )
        }
    };
    let ((direct, direct_after), (routed, routed_after)) = tokio::join!(
        stall(format!("/api/push/{token}")),
        stall(format!("/api/push/{encoded}"))
    );
    for (answer, after) in [(direct, direct_after), (routed, routed_after)] {
        assert!(
            answer.starts_with("HTTP/1.1 400"),
            "a stalled body must get a 400, got {answer:?}"
        );
        assert!(
            after >= BODY_TIMEOUT - Duration::from_millis(500),
            "answered after {after:?}, before the body timeout"
        );
    }
    let after = app.get_monitor(&monitor.id).await;
    assert_eq!(
        after.last_heartbeat_at, None,
        "a refused push recorded a heartbeat"
    );
    // The same token still works on both paths.
    app.push_ok(token, &[("msg", "direct")]).await;
    let routed = app
        .client
        .post(app.url(&format!("/api/push/{encoded}")))
        .query(&[("msg", "routed")])
        .send()
        .await
        .unwrap();
    assert_eq!(routed.status(), StatusCode::OK);
    assert_eq!(
        app.get_monitor(&monitor.id).await.last_msg.as_deref(),
        Some("routed")
    );
}

/// Sends a push head to `path` with a chunked body, then one byte of body every
/// `every`, for at most `for_at_most`. Returns what the server answered (empty if it
/// closed the connection without a word) and when the answer or the close came.
async fn trickle(
    address: &str,
    path: &str,
    every: Duration,
    for_at_most: Duration,
) -> (String, Duration) {
    let stream = TcpStream::connect(address).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let head = format!(
        "POST {path}?msg=trickled HTTP/1.1\r\nHost: x\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    writer.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let sender = tokio::spawn(async move {
        while started.elapsed() < for_at_most {
            tokio::time::sleep(every).await;
            if writer.write_all(b"1\r\na\r\n").await.is_err() {
                return;
            }
        }
    });
    let mut answer = Vec::new();
    let mut buffer = [0u8; 1024];
    let answered_at = loop {
        let left = (for_at_most + Duration::from_secs(5)).saturating_sub(started.elapsed());
        match timeout(left, reader.read(&mut buffer)).await {
            Ok(Ok(read @ 1..)) => answer.extend_from_slice(&buffer[..read]),
            // The close, a reset, or our own patience running out.
            _ => break started.elapsed(),
        }
    };
    sender.abort();
    (String::from_utf8_lossy(&answer).into_owned(), answered_at)
}

/// A body sent a byte at a time, each byte well within the time the body has, never
/// timed out: the timer restarted on every frame, so a client could hold a connection
/// for ever. The body must now be complete within one deadline, on both paths.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_trickles_in_is_cut_off_at_one_deadline_for_the_whole_body() {
    const BODY_TIMEOUT: Duration = Duration::from_secs(2);
    let app = spawn_app_with(|config| config.header_timeout = BODY_TIMEOUT).await;
    let monitor = app.create_monitor("trickled body", 3600).await;
    let token = &monitor.push_token;
    let encoded = format!("%{:02X}{}", token.as_bytes()[0], &token[1..]);
    let address = app.base_url.trim_start_matches("http://").to_owned();
    let every = Duration::from_millis(300);
    let for_at_most = Duration::from_secs(12);
    let (direct_path, routed_path) = (format!("/api/push/{token}"), format!("/api/push/{encoded}"));
    let ((direct, direct_after), (routed, routed_after)) = tokio::join!(
        trickle(&address, &direct_path, every, for_at_most),
        trickle(&address, &routed_path, every, for_at_most)
    );
    for (path, answer, after) in [
        ("direct", direct, direct_after),
        ("router", routed, routed_after),
    ] {
        assert!(
            answer.starts_with("HTTP/1.1 400"),
            "{path}: a trickling body must get a 400, got {answer:?} after {after:?}"
        );
        assert!(
            after >= BODY_TIMEOUT - Duration::from_millis(500)
                && after < BODY_TIMEOUT + Duration::from_secs(3),
            "{path}: answered after {after:?}, not at the {BODY_TIMEOUT:?} deadline"
        );
    }
    assert_eq!(app.get_monitor(&monitor.id).await.last_heartbeat_at, None);
}

/// A client pool that opens a connection per request, so each answer says whether a
/// new connection was served.
fn fresh_connections() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// With every slot held by clients trickling their bodies in, new connections were
/// closed on accept: `/healthz` went unanswered and jobs could not push. Now a newcomer
/// takes the slot of the connection that has waited on its client the longest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tricklers_holding_every_slot_do_not_lock_out_probes_and_pushes() {
    const LIMIT: usize = 4;
    const TRICKLE_FOR: Duration = Duration::from_secs(5);
    let app = spawn_app_with(|config| {
        config.max_connections = LIMIT;
        config.header_timeout = Duration::from_secs(30);
    })
    .await;
    let monitor = app.create_monitor("pushed past the tricklers", 3600).await;
    let address = app.base_url.trim_start_matches("http://").to_owned();
    let path = format!("/api/push/{}", monitor.push_token);
    let tricklers: Vec<_> = (0..LIMIT)
        .map(|_| {
            let (address, path) = (address.clone(), path.clone());
            tokio::spawn(async move {
                trickle(&address, &path, Duration::from_millis(300), TRICKLE_FOR).await
            })
        })
        .collect();
    // Long enough for every slot to be taken and for the tricklers to count as stuck.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let client = fresh_connections();
    let healthz = client.get(app.url("/healthz")).send().await;
    assert_eq!(
        healthz.map(|response| response.status()).ok(),
        Some(StatusCode::OK),
        "/healthz with every slot held by tricklers"
    );
    let push = client
        .post(app.url(&path))
        .query(&[("msg", "past the tricklers")])
        .send()
        .await;
    assert_eq!(
        push.map(|response| response.status()).ok(),
        Some(StatusCode::OK),
        "a push with every slot held by tricklers"
    );
    // They made room: tricklers were closed without an answer. (One may have been
    // enough: the slot of the closed `/healthz` connection can serve the push.)
    let mut evicted = 0;
    for trickler in tricklers {
        let (answer, after) = trickler.await.unwrap();
        if answer.is_empty() && after < TRICKLE_FOR {
            evicted += 1;
        }
    }
    assert!(evicted >= 1, "no trickler was closed to make room");
    assert_eq!(
        app.get_monitor(&monitor.id).await.last_msg.as_deref(),
        Some("past the tricklers")
    );
}

#[tokio::test]
async fn connections_beyond_the_limit_are_closed_and_the_server_keeps_serving() {
    const LIMIT: usize = 4;
    let app = spawn_app_with(|config| {
        config.max_connections = LIMIT;
        config.header_timeout = Duration::from_secs(30);
    })
    .await;
    let address = app.base_url.trim_start_matches("http://").to_owned();
    // All at once: none of them has waited long enough to be closed for a newcomer.
    let mut streams = Vec::new();
    for _ in 0..LIMIT + 2 {
        streams.push(TcpStream::connect(&address).await.unwrap());
    }
    let mut held = Vec::new();
    let mut refused = 0;
    for mut stream in streams {
        if closed_within(&mut stream, Duration::from_millis(100)).await {
            refused += 1;
        } else {
            held.push(stream);
        }
    }
    assert!(held.len() <= LIMIT, "{} connections held open", held.len());
    assert!(refused >= 2, "only {refused} connections refused");
    // Freeing the slots lets new clients in again.
    drop(held);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let client = fresh_connections();
    let metrics = client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("pushmon_connections_refused_total"),
        "{metrics}"
    );
}

/// The value of `pushmon_heartbeats_rejected_total{reason="<reason>"}`.
async fn rejected_total(api: &Api, reason: &str) -> f64 {
    let series = format!("pushmon_heartbeats_rejected_total{{reason=\"{reason}\"}} ");
    let text = api.metrics().await;
    let line = text
        .lines()
        .find(|line| line.starts_with(&series))
        .unwrap_or_else(|| panic!("no {series} in:\n{text}"));
    line[series.len()..].trim().parse().unwrap()
}

/// A push with `X-Forwarded-For: <forwarded_for>`.
async fn push_forwarded(api: &Api, token: &str, forwarded_for: &str) -> Response {
    api.client
        .post(api.url(&format!("/api/push/{token}")))
        .header("x-forwarded-for", forwarded_for)
        .send()
        .await
        .unwrap()
}

/// Asserts a 429 for the per-source limit: JSON error and a `Retry-After` of whole
/// seconds, at least 1.
async fn expect_source_limited(response: Response) {
    let retry_after: u64 = response
        .headers()
        .get("retry-after")
        .expect("429 carries Retry-After")
        .to_str()
        .unwrap()
        .parse()
        .expect("Retry-After is whole seconds");
    assert!(
        (1..=60).contains(&retry_after),
        "Retry-After: {retry_after}"
    );
    let error = expect_error(response, StatusCode::TOO_MANY_REQUESTS).await;
    assert!(error.contains("address"), "{error}");
}

/// Counts answers by status.
fn tally(statuses: &[StatusCode]) -> std::collections::BTreeMap<u16, usize> {
    let mut counts = std::collections::BTreeMap::new();
    for status in statuses {
        *counts.entry(status.as_u16()).or_default() += 1;
    }
    counts
}

/// A token nobody has: 22 base64url characters, like a real one.
fn unknown_token(index: usize) -> String {
    format!("{index:0>22}")
}

/// The per-address limit counted every push, so every monitor behind one NAT, proxy or
/// ingress shared 1,000 pushes a second, and a load test from one address got 98%
/// 429s. It counts unknown tokens now (token guessing); valid pushes answer to their
/// monitor's limit only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valid_pushes_are_not_held_back_by_the_per_address_limit_but_unknown_tokens_are() {
    let app = spawn_app_with(|config| {
        config.ip_rate_limit = Some(RateLimit {
            per_second: 1,
            burst: 4,
        });
        config.rate_limit = RateLimit {
            per_second: 1000,
            burst: 1000,
        };
    })
    .await;
    let mut monitors = Vec::new();
    for index in 0..10 {
        monitors.push(
            app.create_monitor(&format!("behind one NAT {index}"), 3600)
                .await,
        );
    }
    let rejected_before = rejected_total(&app, "ip_rate_limited").await;

    // Fifty times the address's burst of valid pushes, over ten monitors, at once.
    let mut pushes = Vec::new();
    for round in 0..20 {
        for monitor in &monitors {
            let (api, token) = ((*app).clone(), monitor.push_token.clone());
            pushes.push(tokio::spawn(async move {
                api.push(&token, &[("msg", &format!("round {round}"))])
                    .await
                    .status()
            }));
        }
    }
    let mut statuses = Vec::new();
    for push in pushes {
        statuses.push(push.await.unwrap());
    }
    assert_eq!(
        tally(&statuses),
        [(200, 200)].into(),
        "every valid push is accepted"
    );
    for monitor in &monitors {
        assert_eq!(
            of_kind(&app.history(&monitor.id).await, "heartbeat").len(),
            20
        );
    }

    // Unknown tokens spend the address's budget: 404s up to the burst, then 429.
    let (mut not_found, mut limited) = (0, None);
    for index in 0..20 {
        let response = app.push(&unknown_token(index), &[]).await;
        match response.status() {
            StatusCode::NOT_FOUND => not_found += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                limited = Some(response);
                break;
            }
            other => panic!("unknown token {index} gave {other}"),
        }
    }
    assert!(
        (3..=5).contains(&not_found),
        "burst 4 at 1/s let {not_found} unknown tokens be looked up"
    );
    expect_source_limited(limited.expect("twenty unknown tokens with burst 4 must meet a 429"))
        .await;
    // Until the budget refills, every push from the address is refused before its
    // token is looked at, a known token's too: a guesser cannot tell a hit from a miss
    // by answering faster than the limit.
    let blocked = &monitors[0];
    expect_source_limited(app.push(&blocked.push_token, &[("status", "down")]).await).await;
    assert_eq!(app.get_monitor(&blocked.id).await.status, Status::Up);
    assert_eq!(
        of_kind(&app.history(&blocked.id).await, "heartbeat").len(),
        20,
        "a refused push records nothing"
    );
    assert!(
        rejected_total(&app, "ip_rate_limited").await - rejected_before >= 2.0,
        "refusals are counted under reason ip_rate_limited"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_for_names_the_source_only_behind_a_trusted_proxy() {
    let limit = RateLimit {
        per_second: 1,
        burst: 2,
    };
    // Behind a trusted proxy (here the test client itself, on 127.0.0.1), each
    // forwarded-for client has its own budget of unknown tokens.
    let proxied = spawn_app_with(|config| {
        config.ip_rate_limit = Some(limit);
        config.trusted_proxies = "127.0.0.0/8, 10.0.0.0/8".parse().unwrap();
    })
    .await;
    let token = unknown_token(1);
    for _ in 0..2 {
        let response = push_forwarded(&proxied, &token, "198.51.100.1").await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    }
    expect_source_limited(push_forwarded(&proxied, &token, "198.51.100.1").await).await;
    // Another client behind the same proxy is not held back; nor is one whose own
    // claim (the leftmost entry) is ignored in favour of what the proxies saw.
    let response = push_forwarded(&proxied, &token, "198.51.100.2").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = push_forwarded(&proxied, &token, "198.51.100.1, 198.51.100.3, 10.0.0.7").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    expect_source_limited(push_forwarded(&proxied, &token, "203.0.113.1, 198.51.100.1").await)
        .await;

    // Without trusted proxies the header is the client's own word: ignored, so
    // changing it does not buy a fresh budget.
    let direct = spawn_app_with(|config| config.ip_rate_limit = Some(limit)).await;
    let mut statuses = Vec::new();
    for attempt in 0..10 {
        let response = push_forwarded(&direct, &token, &format!("198.51.100.{attempt}")).await;
        statuses.push(response.status());
    }
    let counts = tally(&statuses);
    assert!(
        (2..=3).contains(&counts.get(&404).copied().unwrap_or_default())
            && counts.get(&429).is_some_and(|limited| *limited >= 7),
        "a spoofed header must not lift the limit: {counts:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_per_address_limit_is_set_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start_with_env(
        dir.path(),
        &[],
        &[
            ("PUSHMON_RATE_LIMIT_IP_PER_SECOND", "1"),
            ("PUSHMON_RATE_LIMIT_IP_BURST", "2"),
        ],
    )
    .await;
    let monitor = server.create_monitor("env", 3600).await;
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(server.push(&monitor.push_token, &[]).await.status());
    }
    assert!(
        statuses.iter().all(|status| *status == StatusCode::OK),
        "valid pushes do not count against the address: {statuses:?}"
    );
    let mut statuses = Vec::new();
    for index in 0..6 {
        statuses.push(server.push(&unknown_token(index), &[]).await.status());
    }
    assert!(
        statuses.contains(&StatusCode::TOO_MANY_REQUESTS),
        "six unknown tokens with burst 2: {statuses:?}"
    );
    let (status, log) = server.sigterm().await;
    assert!(status.success(), "{log}");
}

/// Sends `head` (a request line and headers, with the blank line) and returns the
/// status line of the answer, or "" if the connection closed without one.
async fn status_line_of(address: &str, head: &[u8]) -> String {
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream.write_all(head).await.unwrap();
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    while let Ok(Ok(read @ 1..)) = timeout(Duration::from_secs(10), stream.read(&mut buffer)).await
    {
        answer.extend_from_slice(&buffer[..read]);
        if answer.windows(2).any(|pair| pair == b"\r\n") {
            break;
        }
    }
    let answer = String::from_utf8_lossy(&answer).into_owned();
    answer.lines().next().unwrap_or_default().to_owned()
}

/// A request head of exactly `size` bytes (request line, headers, blank line) for
/// `request_line`, padded with one `X-Pad` header.
fn head_of_size(request_line: &str, size: usize) -> Vec<u8> {
    let fixed = format!("{request_line}\r\nHost: x\r\nConnection: close\r\nX-Pad: \r\n\r\n");
    assert!(size > fixed.len());
    let head = format!(
        "{request_line}\r\nHost: x\r\nConnection: close\r\nX-Pad: {}\r\n\r\n",
        "a".repeat(size - fixed.len())
    );
    assert_eq!(head.len(), size);
    head.into_bytes()
}

/// The documented limit on a request head (`docs/push.md`, "Answers") is exact: 32 KiB
/// counted on the wire, request line and blank line included. Before, hyper's read
/// buffer was the only bound, and heads up to about 48 KiB got through.
#[tokio::test]
async fn a_request_head_of_32_kib_is_served_and_one_byte_more_is_431() {
    const LIMIT: usize = 32 * 1024;
    let app = spawn_app().await;
    let monitor = app.create_monitor("big headers", 3600).await;
    let address = app.base_url.trim_start_matches("http://").to_owned();
    let push = format!("POST /api/push/{} HTTP/1.1", monitor.push_token);
    for (request_line, size, expected) in [
        ("GET /healthz HTTP/1.1", LIMIT, "200"),
        ("GET /healthz HTTP/1.1", LIMIT + 1, "431"),
        ("GET /healthz HTTP/1.1", 40 * 1024, "431"),
        (push.as_str(), LIMIT, "200"),
        (push.as_str(), LIMIT + 1, "431"),
    ] {
        let status = status_line_of(&address, &head_of_size(request_line, size)).await;
        assert!(
            status.starts_with(&format!("HTTP/1.1 {expected} ")),
            "a head of {size} bytes for {request_line:?}: {status:?}"
        );
    }
    let heartbeats = of_kind(&app.history(&monitor.id).await, "heartbeat").len();
    assert_eq!(heartbeats, 1, "only the push within the limit is recorded");
}
