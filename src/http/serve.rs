//! The accept loop: hyper HTTP/1 connections with bounds an internet-facing server
//! needs, and the one place that knows what each connection is waiting for.
//!
//! - A request head may be 32 KiB (431 beyond), and must arrive within
//!   `header_timeout` (slow-loris); so must the next one on a kept-alive connection.
//! - A body must be complete within `header_timeout` of its head, one deadline for
//!   the whole body ([`DeadlineBody`]): a timer restarted on each frame let a client
//!   sending a byte every few seconds hold its connection for ever. This is the body
//!   deadline of every request, pushes taken straight to `ingress` and routed ones.
//! - At most `max_connections` connections are served at once. When they are all
//!   taken, a newcomer takes the slot of the connection that has waited on its client
//!   the longest (for a head, a body, to read its answer, or for its next request), if
//!   that one has waited at least [`EVICTABLE_AFTER`]; it is closed
//!   (`pushmon_connections_evicted_total`).
//!   A connection whose request the server is working on (a push waiting for its
//!   fsync) is never closed for a newcomer. If none can be closed, the newcomer is
//!   (`pushmon_connections_refused_total`). So clients that connect and then stall,
//!   idle or trickle cannot keep real pushers and probes out: to hold every slot they
//!   would have to open them faster than newcomers arrive, or keep every connection
//!   busy with real requests. No per-address cap: behind an ingress every connection
//!   comes from one address.
//! - On shutdown the listener closes, in-flight requests finish and idle keep-alive
//!   connections are closed.
//!
//! With TLS every connection is HTTPS. The handshake runs in the connection's own
//! task with the same `header_timeout`, holding the connection's slot (and waiting
//! on its client, so it can be closed for a newcomer), so a client that stalls it
//! delays nobody else and cannot hold a slot for long.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes, HttpBody};
use hyper::body::Frame;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::either::Either;

use super::App;
use super::tls::Tls;
use crate::prometheus;

/// The bounds of one server.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Time a client has to send a request's head, to start the next request on a
    /// kept-alive connection, to finish a TLS handshake, and to send a request's body
    /// once its head is in.
    pub header_timeout: Duration,
    /// Connections served at once; beyond it a newcomer takes the slot of a
    /// connection stuck waiting on its client, or is closed at once.
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

/// How long a connection must have waited on its client before it may be closed to
/// make room: a client that has just connected, or has just been answered (its
/// answer may still be on its way out), keeps its slot.
pub const EVICTABLE_AFTER: Duration = Duration::from_secs(1);

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
    let connections = Arc::new(Connections::new(limits.max_connections));
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
        let Some(slot) = connections.admit() else {
            metrics::counter!(prometheus::CONNECTIONS_REFUSED_TOTAL).increment(1);
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let connection = Arc::clone(&slot.connection);
        let body_timeout = limits.header_timeout;
        let service = hyper::service::service_fn(
            move |request: axum::http::Request<hyper::body::Incoming>| {
                let app = app.clone();
                let connection = Arc::clone(&connection);
                async move {
                    let (parts, body) = request.into_parts();
                    let body = if body.is_end_stream() {
                        connection.busy();
                        Body::new(body)
                    } else {
                        connection.waiting();
                        Body::new(DeadlineBody::new(
                            body,
                            body_timeout,
                            Arc::clone(&connection),
                        ))
                    };
                    let request = axum::http::Request::from_parts(parts, body);
                    let response = app.handle(request, peer).await;
                    connection.waiting();
                    Ok::<_, Infallible>(response)
                }
            },
        );
        // Taken here, so a drain that starts during a TLS handshake still waits for
        // (and then closes) the connection.
        let watcher = graceful.watcher();
        let acceptor = tls.as_ref().map(Tls::acceptor);
        tokio::spawn(async move {
            let evicted = slot.connection.evicted.notified();
            let serve = async {
                let stream = match acceptor {
                    None => Either::Left(stream),
                    Some(acceptor) => {
                        match tokio::time::timeout(limits.header_timeout, acceptor.accept(stream))
                            .await
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
            };
            // Dropping the connection closes its socket; its slot is already the
            // newcomer's.
            tokio::select! {
                () = serve => {}
                () = evicted => tracing::debug!("connection closed to make room for a new one"),
            }
            drop(slot);
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

/// The connections being served, each with what it is waiting for, so a newcomer
/// can take the slot of the one stuck the longest.
struct Connections {
    limit: usize,
    /// The zero of [`Connection::waiting_since`].
    epoch: Instant,
    live: Mutex<Live>,
}

#[derive(Default)]
struct Live {
    next_id: u64,
    by_id: HashMap<u64, Arc<Connection>>,
    /// Before this (milliseconds from the epoch) no connection can be closed for a
    /// newcomer: none has waited long enough.
    no_room_until: u64,
}

impl Connections {
    fn new(limit: usize) -> Self {
        Self {
            limit,
            epoch: Instant::now(),
            live: Mutex::new(Live::default()),
        }
    }

    /// A slot for a new connection: a free one, or the slot of the connection that
    /// has waited on its client the longest (at least [`EVICTABLE_AFTER`]), which is
    /// told to close. `None` if every slot is taken by one that may not be closed.
    ///
    /// Finding that one looks at every connection (10,000 atomic loads: tens of
    /// microseconds), only when all the slots are taken. A look that finds none also
    /// finds when the first one could be closed, and newcomers before then are refused
    /// without looking: a flood of connections at the limit costs no scan each.
    fn admit(self: &Arc<Self>) -> Option<Slot> {
        let now = millis_since(self.epoch);
        let connection = Arc::new(Connection {
            epoch: self.epoch,
            waiting_since: AtomicU64::new(now),
            evicted: Notify::new(),
        });
        let mut live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        if live.by_id.len() >= self.limit {
            if now < live.no_room_until {
                return None;
            }
            let evictable_after = EVICTABLE_AFTER.as_millis() as u64;
            let mut oldest: Option<(u64, u64)> = None;
            // A busy connection, once it waits, waits from now or later.
            let mut earliest_waiting = now;
            for (id, connection) in &live.by_id {
                let since = connection.waiting_since.load(Ordering::Relaxed);
                if since == BUSY {
                    continue;
                }
                earliest_waiting = earliest_waiting.min(since);
                if now.saturating_sub(since) >= evictable_after
                    && oldest.is_none_or(|(oldest_since, _)| since < oldest_since)
                {
                    oldest = Some((since, *id));
                }
            }
            let Some((_, oldest)) = oldest else {
                live.no_room_until = earliest_waiting + evictable_after;
                return None;
            };
            if let Some(evicted) = live.by_id.remove(&oldest) {
                evicted.evicted.notify_one();
                metrics::counter!(prometheus::CONNECTIONS_EVICTED_TOTAL).increment(1);
            }
        }
        let id = live.next_id;
        live.next_id += 1;
        live.by_id.insert(id, Arc::clone(&connection));
        Some(Slot {
            connections: Arc::clone(self),
            id,
            connection,
        })
    }
}

/// A connection's hold on its slot, given back when its task ends.
struct Slot {
    connections: Arc<Connections>,
    id: u64,
    connection: Arc<Connection>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        // Gone already if it was closed for a newcomer.
        self.connections
            .live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .by_id
            .remove(&self.id);
    }
}

/// [`Connection::waiting_since`] while the server works on the connection's request.
const BUSY: u64 = u64::MAX;

/// What one connection is waiting for.
struct Connection {
    epoch: Instant,
    /// Milliseconds from the epoch to when the connection began waiting on its
    /// client (for a TLS handshake, a head, a body, to read its answer, or for its
    /// next request), or [`BUSY`].
    waiting_since: AtomicU64,
    /// Told when its slot has been given to a newcomer.
    evicted: Notify,
}

impl Connection {
    /// Waiting on the client from now on.
    fn waiting(&self) {
        self.waiting_since
            .store(millis_since(self.epoch), Ordering::Relaxed);
    }

    /// The server is working on the connection's request.
    fn busy(&self) {
        self.waiting_since.store(BUSY, Ordering::Relaxed);
    }
}

fn millis_since(epoch: Instant) -> u64 {
    epoch.elapsed().as_millis() as u64
}

/// A request body that must be complete within a deadline set when its head arrived;
/// the connection counts as busy once the body is complete. The timer is armed only
/// if the body is not all there when first read (a push's body usually arrives with
/// its head).
struct DeadlineBody {
    inner: hyper::body::Incoming,
    timeout: Duration,
    deadline: Instant,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    connection: Arc<Connection>,
}

impl DeadlineBody {
    fn new(inner: hyper::body::Incoming, timeout: Duration, connection: Arc<Connection>) -> Self {
        Self {
            inner,
            timeout,
            deadline: Instant::now() + timeout,
            sleep: None,
            connection,
        }
    }
}

/// The body did not arrive in time.
#[derive(Debug, thiserror::Error)]
#[error("the body did not arrive within {} seconds", .0.as_secs())]
struct BodyTimedOut(Duration);

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                if frame.as_ref().is_none_or(Result::is_err) || this.inner.is_end_stream() {
                    this.connection.busy();
                }
                Poll::Ready(frame.map(|frame| frame.map_err(Into::into)))
            }
            Poll::Pending => {
                let deadline = this.deadline;
                let sleep = this
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline.into())));
                match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTimedOut(this.timeout))))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Connections whose clock reads ten seconds, so waits can be set in the past.
    fn connections(limit: usize) -> Arc<Connections> {
        let mut connections = Connections::new(limit);
        connections.epoch = Instant::now()
            .checked_sub(Duration::from_secs(10))
            .expect("the clock is past ten seconds");
        Arc::new(connections)
    }

    fn waited_since(slot: &Slot, millis: u64) {
        slot.connection
            .waiting_since
            .store(millis, Ordering::Relaxed);
    }

    #[tokio::test]
    async fn a_newcomer_takes_the_slot_of_the_longest_waiting_and_never_a_busy_one() {
        let connections = connections(3);
        let (busy, old, older) = (
            connections.admit().expect("a free slot"),
            connections.admit().expect("a free slot"),
            connections.admit().expect("a free slot"),
        );
        // All three just arrived: nobody has waited long enough to make room.
        assert!(connections.admit().is_none());

        busy.connection.busy();
        waited_since(&old, 5_000);
        waited_since(&older, 1_000);
        // The failed look above put off the next until a second from now.
        connections
            .live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .no_room_until = 0;
        let newcomer = connections.admit().expect("the older one makes room");
        assert!(
            tokio::time::timeout(Duration::from_secs(1), older.connection.evicted.notified())
                .await
                .is_ok(),
            "the longest waiting is told to close"
        );
        let next = connections.admit().expect("then the old one");
        // Left: the busy one and two newcomers that have only just arrived.
        assert!(connections.admit().is_none());
        let live = connections
            .live
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut ids: Vec<u64> = live.by_id.keys().copied().collect();
        ids.sort_unstable();
        assert_eq!(ids, vec![busy.id, newcomer.id, next.id]);
        assert!(
            live.no_room_until > 0,
            "the failed look says when to look again"
        );
        drop(live);
    }
}
