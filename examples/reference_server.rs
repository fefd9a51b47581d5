//! Bare axum reference for the push hot path, to measure pushmon against.
//!
//! `cargo run --release --example reference_server -- 127.0.0.1:PORT [--mpsc]`
//!
//! Without `--mpsc`, `POST|GET /api/push/{token}` answers `200 {"ok":true}` and does
//! nothing else: the ceiling set by axum, hyper and the kernel's TCP path. With `--mpsc`,
//! the handler forwards the token to one consumer task over a bounded tokio channel and
//! awaits a oneshot reply, which is the cost of handing a request to an actor and back,
//! still without any storage. `GET /readyz` answers 200 so the bench scripts can treat
//! this server like pushmon.

use axum::{
    Json, Router,
    extract::{Path, State},
    http::StatusCode,
    routing::get,
};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

/// What the forwarding handler sends to the consumer: the token and where to reply.
type Forwarded = (String, oneshot::Sender<()>);

/// Room for every in-flight request of a 64-connection load and then some; a full
/// channel makes handlers wait, as a bounded ingress in front of an actor would.
const CHANNEL_CAPACITY: usize = 1024;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut listen = String::from("127.0.0.1:8090");
    let mut forwarding = false;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--mpsc" => forwarding = true,
            _ => listen = arg,
        }
    }

    let app = if forwarding {
        let (sender, receiver) = mpsc::channel(CHANNEL_CAPACITY);
        tokio::spawn(consume(receiver));
        Router::new()
            .route(
                "/api/push/{token}",
                get(push_forwarded).post(push_forwarded),
            )
            .with_state(sender)
    } else {
        Router::new().route("/api/push/{token}", get(push_bare).post(push_bare))
    }
    .route("/readyz", get(|| async { StatusCode::OK }));

    let listener = tokio::net::TcpListener::bind(&listen).await?;
    let mode = if forwarding { "mpsc" } else { "bare" };
    eprintln!("listening on {} ({mode})", listener.local_addr()?);
    axum::serve(listener, app).await
}

async fn push_bare(Path(_token): Path<String>) -> Json<Value> {
    Json(json!({ "ok": true }))
}

async fn push_forwarded(
    State(sender): State<mpsc::Sender<Forwarded>>,
    Path(token): Path<String>,
) -> Result<Json<Value>, StatusCode> {
    let (reply, replied) = oneshot::channel();
    sender
        .send((token, reply))
        .await
        .map_err(|_| StatusCode::SERVICE_UNAVAILABLE)?;
    replied.await.map_err(|_| StatusCode::SERVICE_UNAVAILABLE)?;
    Ok(Json(json!({ "ok": true })))
}

/// The single consumer: stands in for an actor that acknowledges each message.
async fn consume(mut receiver: mpsc::Receiver<Forwarded>) {
    while let Some((_token, reply)) = receiver.recv().await {
        // The handler may have given up (client gone); nothing to do then.
        let _ = reply.send(());
    }
}
