//! A TCP proxy on loopback that a test can cut and heal: a network partition between
//! one process and one server without root (no network namespace, no iptables).
//!
//! Cut, it forwards nothing in either direction: bytes already read wait in the proxy,
//! and new connections are accepted and held silent, as a network that drops every
//! packet does (no reset, so the peers notice only by their own timeouts). Healed, it
//! forwards what waited and everything after, so a message sent into the partition
//! arrives late: the way a paused or cut-off owner's stale write reaches the log.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub struct Proxy {
    pub address: SocketAddr,
    cut: watch::Sender<bool>,
    listener: JoinHandle<()>,
}

impl Proxy {
    /// Listens on `127.0.0.1:0` and forwards each connection to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (cut, watching) = watch::channel(false);
        let listener = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let watching = watching.clone();
                tokio::spawn(async move {
                    // A connection made during a cut waits for the heal, silent.
                    let mut open = watching.clone();
                    if open.wait_for(|cut| !cut).await.is_err() {
                        return;
                    }
                    let Ok(server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let _ = client.set_nodelay(true);
                    let _ = server.set_nodelay(true);
                    let (client_read, client_write) = client.into_split();
                    let (server_read, server_write) = server.into_split();
                    let mut up = tokio::spawn(forward(client_read, server_write, watching.clone()));
                    let mut down = tokio::spawn(forward(server_read, client_write, watching));
                    // Either side closing ends the connection both ways.
                    tokio::select! {
                        _ = &mut up => {}
                        _ = &mut down => {}
                    }
                    up.abort();
                    down.abort();
                });
            }
        });
        Proxy {
            address,
            cut,
            listener,
        }
    }

    pub fn url(&self) -> String {
        format!("nats://{}", self.address)
    }

    /// From now on nothing passes, until [`Self::heal`].
    pub fn cut(&self) {
        self.cut.send_replace(true);
    }

    pub fn heal(&self) {
        self.cut.send_replace(false);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

/// Copies `from` to `to`, holding each chunk while the proxy is cut.
async fn forward(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut cut: watch::Receiver<bool>,
) {
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let read = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(read) => read,
        };
        if cut.wait_for(|cut| !cut).await.is_err() {
            return;
        }
        if to.write_all(&buffer[..read]).await.is_err() {
            return;
        }
    }
}
