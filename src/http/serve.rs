//! The accept loop: hyper HTTP/1 connections with bounds an internet-facing server
//! needs. A request head may be 32 KiB (431 beyond), a client gets `header_timeout`
//! to send it (slow-loris), at most `max_connections` connections are served at once
//! (more are closed at once, not queued), and on shutdown the listener closes,
//! in-flight requests finish and idle keep-alive connections are closed.
//!
//! With TLS every connection is HTTPS. The handshake runs in the connection's own
//! task with the same `header_timeout`, holding the connection's slot, so a client
//! that stalls it delays nobody else and cannot hold a slot for long.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::either::Either;

use super::App;
use super::tls::Tls;
use crate::prometheus;

/// The bounds of one server.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Time a client has to send a request's headers, and to start the next request on
    /// a kept-alive connection.
    pub header_timeout: Duration,
    /// Connections served at once; more are closed as soon as they are accepted.
    pub max_connections: usize,
    /// How long shutdown waits for in-flight requests before closing anyway.
    pub drain_timeout: Duration,
}

/// The largest request head (request line, headers and the blank line, as sent)
/// a request may have; hyper answers 431 beyond it (`docs/push.md`, "Answers").
const MAX_HEAD_BYTES: usize = 32 * 1024;

/// hyper's read buffer: larger than [`MAX_HEAD_BYTES`], so a head within the limit
/// always fits and the limit, not the way the bytes arrive, decides. (Bounded too: a
/// head that never ends is refused once the buffer is full.)
const READ_BUFFER_BYTES: usize = 2 * MAX_HEAD_BYTES;

/// Serves `app` on `listener` (HTTPS with `tls`) until `stop` resolves, then
/// drains.
pub async fn serve(
    listener: TcpListener,
    app: App,
    limits: Limits,
    tls: Option<Tls>,
    stop: impl Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut stop = std::pin::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, say: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            metrics::counter!(prometheus::CONNECTIONS_REFUSED_TOTAL).increment(1);
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = hyper::service::service_fn(
            move |request: axum::http::Request<hyper::body::Incoming>| {
                let app = app.clone();
                async move { Ok::<_, Infallible>(app.handle(request.map(Body::new), peer).await) }
            },
        );
        // Taken here, so a drain that starts during a TLS handshake still waits for
        // (and then closes) the connection.
        let watcher = graceful.watcher();
        let acceptor = tls.as_ref().map(Tls::acceptor);
        tokio::spawn(async move {
            let _slot = slot;
            let stream = match acceptor {
                None => Either::Left(stream),
                Some(acceptor) => {
                    match tokio::time::timeout(limits.header_timeout, acceptor.accept(stream)).await
                    {
                        Ok(Ok(stream)) => Either::Right(stream),
                        Ok(Err(error)) => {
                            tracing::debug!(%error, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!("TLS handshake timed out");
                            return;
                        }
                    }
                }
            };
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .max_header_size(MAX_HEAD_BYTES)
                .max_buf_size(READ_BUFFER_BYTES)
                .serve_connection(TokioIo::new(stream), service);
            if let Err(error) = watcher.watch(connection).await {
                tracing::debug!(%error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(limits.drain_timeout) => {
            tracing::warn!(timeout_s = limits.drain_timeout.as_secs(), "drain timed out; closing the remaining connections");
        }
    }
}
