//! Native TLS: the real binary with `--tls-cert`/`--tls-key` (a self-signed
//! certificate made here with rcgen) speaks only HTTPS on its port: pushes, the API and
//! `/healthz` work over HTTPS, plain HTTP gets no HTTP answer, a stalled handshake is
//! cut off without holding anyone else up, SIGHUP loads a new certificate, and a
//! half-given or unreadable TLS setting stops start-up with a clear error.

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, sleep, timeout};

use crate::support::{ServerProcess, Status, expect_json, https_client};

/// A self-signed certificate for `localhost` and `127.0.0.1`, written as PEM files
/// `<name>.crt` and `<name>.key` in `dir`. Returns their paths and the certificate.
fn self_signed(dir: &Path, name: &str) -> (PathBuf, PathBuf, Vec<u8>) {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
    let cert_pem = certified.cert.pem();
    let cert = dir.join(format!("{name}.crt"));
    let key = dir.join(format!("{name}.key"));
    std::fs::write(&cert, &cert_pem).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    (cert, key, cert_pem.into_bytes())
}

fn tls_args<'a>(cert: &'a Path, key: &'a Path) -> [&'a str; 4] {
    [
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]
}

fn host_port(server: &ServerProcess) -> String {
    server
        .base_url
        .strip_prefix("https://")
        .expect("an https base URL")
        .to_owned()
}

/// Whether the server closed `stream` within `wait` (a read returned end of file or
/// failed); bytes it sends meanwhile are collected into `received`.
async fn closed_within(stream: &mut TcpStream, wait: Duration, received: &mut Vec<u8>) -> bool {
    let mut buffer = [0u8; 1024];
    let deadline = Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match timeout(left, stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(read)) => received.extend_from_slice(&buffer[..read]),
            Err(_) => return false,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_serves_pushes_health_and_the_api_and_plain_http_gets_no_answer() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, root) = self_signed(dir.path(), "server");
    let data_dir = dir.path().join("data");
    let server = ServerProcess::start_https(&data_dir, &tls_args(&cert, &key), &root).await;
    let address = host_port(&server);

    let health = server
        .client
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        expect_json(health, StatusCode::OK).await,
        json!({"status": "ok"})
    );

    // The default public URL is https://<listen>, and a push to it is acknowledged.
    let monitor = server.create_monitor("over tls", 60).await;
    assert_eq!(
        monitor.push_url,
        format!("https://{address}/api/push/{}", monitor.push_token)
    );
    let pushed = server
        .client
        .post(format!("{}?msg=encrypted", monitor.push_url))
        .send()
        .await
        .unwrap();
    assert_eq!(
        expect_json(pushed, StatusCode::OK).await,
        json!({"ok": true})
    );
    let seen = server.get_monitor(&monitor.id).await;
    assert_eq!(seen.status, Status::Up);
    assert_eq!(seen.last_msg.as_deref(), Some("encrypted"));

    // Plain HTTP to the TLS port gets no HTTP answer, from reqwest or by hand.
    let plain = reqwest::Client::new()
        .get(format!("http://{address}/healthz"))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    assert!(plain.is_err(), "plain HTTP was answered: {plain:?}");
    let mut raw = TcpStream::connect(&address).await.unwrap();
    raw.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut received = Vec::new();
    assert!(
        closed_within(&mut raw, Duration::from_secs(5), &mut received).await,
        "a plain HTTP request kept the connection open"
    );
    assert!(
        !received.starts_with(b"HTTP/"),
        "plain HTTP got an HTTP answer: {:?}",
        String::from_utf8_lossy(&received)
    );
    // A client that does not trust this certificate refuses the server.
    let untrusting = reqwest::Client::new()
        .get(server.url("/healthz"))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    assert!(untrusting.is_err(), "an untrusted certificate was accepted");

    let (status, log) = server.sigterm().await;
    assert!(status.success(), "{log}");
    assert!(
        log.contains("scheme=\"https\"") || log.contains("https"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_handshake_is_cut_off_and_holds_no_one_up() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, root) = self_signed(dir.path(), "server");
    let mut args = tls_args(&cert, &key).to_vec();
    args.extend(["--header-timeout", "3"]);
    let server = ServerProcess::start_https(&dir.path().join("data"), &args, &root).await;
    let address = host_port(&server);

    // One client sends nothing, another the first bytes of a ClientHello and stops.
    let mut silent = TcpStream::connect(&address).await.unwrap();
    let mut partial = TcpStream::connect(&address).await.unwrap();
    partial.write_all(&[0x16, 0x03, 0x01, 0x02]).await.unwrap();
    let started = Instant::now();

    // Meanwhile everyone else is served: before the stalled handshakes time out, so
    // nobody waited for them.
    let monitor = server.create_monitor("not held up", 60).await;
    server.push_ok(&monitor.push_token, &[]).await;
    for stalled in [&mut silent, &mut partial] {
        let mut received = Vec::new();
        assert!(
            !closed_within(stalled, Duration::from_millis(10), &mut received).await,
            "others were served only after a stalled handshake was given up"
        );
    }

    for stalled in [&mut silent, &mut partial] {
        let mut received = Vec::new();
        assert!(
            closed_within(stalled, Duration::from_secs(10), &mut received).await,
            "a stalled handshake stayed open"
        );
    }
    assert!(
        started.elapsed() >= Duration::from_millis(2500),
        "closed before the timeout"
    );
    let (status, log) = server.sigterm().await;
    assert!(status.success(), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_loads_a_new_certificate_and_a_broken_one_is_not_taken() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, old_root) = self_signed(dir.path(), "live");
    let server =
        ServerProcess::start_https(&dir.path().join("data"), &tls_args(&cert, &key), &old_root)
            .await;
    let trusts_old = https_client(&old_root);

    // A broken file is refused on SIGHUP, and the old certificate keeps serving.
    std::fs::write(&cert, "not a certificate").unwrap();
    server.signal("HUP");
    let started = Instant::now();
    while !server.log().contains("TLS certificate not reloaded") {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{}",
            server.log()
        );
        sleep(Duration::from_millis(50)).await;
    }
    let still = trusts_old.get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(still.status(), StatusCode::OK);

    // A new pair in place, SIGHUP: new connections get the new certificate.
    let (new_cert, new_key, new_root) = self_signed(dir.path(), "next");
    std::fs::rename(&new_cert, &cert).unwrap();
    std::fs::rename(&new_key, &key).unwrap();
    server.signal("HUP");
    let trusts_new = https_client(&new_root);
    let started = Instant::now();
    loop {
        if let Ok(response) = trusts_new.get(server.url("/healthz")).send().await {
            assert_eq!(response.status(), StatusCode::OK);
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the new certificate was not served; log:\n{}",
            server.log()
        );
        sleep(Duration::from_millis(50)).await;
    }
    assert!(
        trusts_old.get(server.url("/healthz")).send().await.is_err(),
        "the old certificate is still served"
    );
    assert!(server.log().contains("TLS certificate reloaded"));
    let (status, log) = server.sigterm().await;
    assert!(status.success(), "{log}");
}

#[tokio::test]
async fn half_a_tls_setting_or_an_unreadable_certificate_stops_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, _) = self_signed(dir.path(), "server");
    let run = |args: Vec<String>| {
        std::process::Command::new(env!("CARGO_BIN_EXE_pushmon"))
            .arg("serve")
            .args([
                "--listen",
                "127.0.0.1:0",
                "--admin-token",
                "it-admin-token-0123456789abcdef",
            ])
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(args)
            .env("NO_COLOR", "1")
            .env_remove("PUSHMON_TLS_CERT")
            .env_remove("PUSHMON_TLS_KEY")
            .output()
            .unwrap()
    };
    let cert = cert.to_str().unwrap().to_owned();
    let key = key.to_str().unwrap().to_owned();

    for args in [
        vec!["--tls-cert".to_owned(), cert.clone()],
        vec!["--tls-key".to_owned(), key.clone()],
    ] {
        let output = run(args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains("--tls-cert") && stderr.contains("--tls-key"),
            "{stderr}"
        );
    }

    let missing = dir.path().join("missing.crt");
    let output = run(vec![
        "--tls-cert".to_owned(),
        missing.to_str().unwrap().to_owned(),
        "--tls-key".to_owned(),
        key.clone(),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("missing.crt"), "{stderr}");
    // The key file's contents never appear in an error.
    let output = run(vec![
        "--tls-cert".to_owned(),
        key.clone(),
        "--tls-key".to_owned(),
        cert.clone(),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(!stderr.contains("PRIVATE KEY"), "{stderr}");
}
