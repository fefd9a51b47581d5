//! Bounds against abusive clients: a client that never finishes its headers is cut
//! off (slow-loris), and connections beyond the limit are closed at once, never
//! queued, while the server keeps serving.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};

use crate::support::spawn_app_with;

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

#[tokio::test]
async fn connections_beyond_the_limit_are_closed_and_the_server_keeps_serving() {
    const LIMIT: usize = 4;
    let app = spawn_app_with(|config| {
        config.max_connections = LIMIT;
        config.header_timeout = Duration::from_secs(30);
    })
    .await;
    let address = app.base_url.trim_start_matches("http://").to_owned();
    let mut held = Vec::new();
    let mut refused = 0;
    for _ in 0..LIMIT + 2 {
        let mut stream = TcpStream::connect(&address).await.unwrap();
        if closed_within(&mut stream, Duration::from_millis(300)).await {
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
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
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
