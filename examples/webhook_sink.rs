//! A webhook receiver for `scripts/bench-detection.sh`: answers `200` to every POST and
//! appends, for each alert, the milliseconds from the alert's `at` to its arrival, one
//! number a line, to the file given. Loopback only; stops after `--max-seconds`.
//!
//! `cargo run --release --example webhook_sink -- --port 9999 --out lags.txt --max-seconds 300`
//!
//! It runs on one thread and does little per request, so the receiver takes as little
//! as possible of the CPU the server under test shares it with (a Python receiver
//! needed about a core at 16k alerts a second).

use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

type Out = Arc<Mutex<std::io::LineWriter<std::fs::File>>>;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let mut port = None;
    let mut out = None;
    let mut max_seconds = 600.0_f64;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next();
        match (arg.as_str(), value) {
            ("--port", Some(value)) => port = Some(value.parse::<u16>()?),
            ("--out", Some(value)) => out = Some(value),
            ("--max-seconds", Some(value)) => max_seconds = value.parse()?,
            _ => anyhow::bail!("usage: webhook_sink --port PORT --out FILE [--max-seconds S]"),
        }
    }
    let (Some(port), Some(out)) = (port, out) else {
        anyhow::bail!("usage: webhook_sink --port PORT --out FILE [--max-seconds S]");
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&out)?;
    let state: Out = Arc::new(Mutex::new(std::io::LineWriter::new(file)));
    let app = Router::new()
        .route("/{*path}", post(receive))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let serving = axum::serve(listener, app);
    // Bounded in time, whatever happens.
    let _ = tokio::time::timeout(Duration::from_secs_f64(max_seconds), serving).await;
    Ok(())
}

// A measuring tool outside the server: the arrival is compared with the alert's
// wall-clock `at`, to the microsecond.
#[allow(clippy::disallowed_methods)]
async fn receive(State(out): State<Out>, body: Bytes) -> StatusCode {
    let arrived = OffsetDateTime::now_utc();
    let at = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|alert| {
            let at = alert.get("at")?.as_str()?.to_owned();
            OffsetDateTime::parse(&at, &Rfc3339).ok()
        });
    if let Some(at) = at {
        let lag_ms = (arrived - at).as_seconds_f64() * 1000.0;
        if let Ok(mut out) = out.lock() {
            let _ = writeln!(out, "{lag_ms:.1}");
        }
    }
    StatusCode::OK
}
