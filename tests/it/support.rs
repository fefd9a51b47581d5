//! The harness every black-box test goes through: a real pushmon on `127.0.0.1:0` with
//! a temp store, either in this process ([`TestApp`], zero2prod's `spawn_app`) or as the
//! real binary ([`ServerProcess`], for SIGKILL and SIGTERM), and typed helpers over
//! HTTP ([`Api`]). Tests never reach into the server's internals.

use std::net::SocketAddr;
use std::ops::Deref;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pushmon::config::{AdminToken, Config};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, timeout};

/// The admin token every test server is started with (at least 16 chars).
pub const ADMIN_TOKEN: &str = "it-admin-token-0123456789abcdef";

/// How long a server may take to open its store and report ready.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a stopping server may take to drain and return.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// How often the helpers poll the server while waiting for something.
pub const POLL_EVERY: Duration = Duration::from_millis(50);

/// A monitor's state (`docs/states.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pending,
    Up,
    Down,
    Paused,
    Unknown,
}

/// The Monitor object (`docs/api.md`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Monitor {
    pub id: String,
    pub name: String,
    pub status: Status,
    pub timeout_seconds: u64,
    pub interval_seconds: u64,
    pub push_token: String,
    pub push_url: String,
    pub channels: Vec<String>,
    pub created_at: String,
    pub last_heartbeat_at: Option<String>,
    pub last_status_change_at: Option<String>,
    pub last_msg: Option<String>,
    pub last_value: Option<f64>,
}

/// The Event object (`docs/api.md`); the kind decides which optional fields are set.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Event {
    pub seq: u64,
    pub at: String,
    pub kind: String,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub msg: Option<String>,
    #[serde(default)]
    pub value: Option<f64>,
    #[serde(default)]
    pub reason: Option<String>,
}

/// Events of one kind, in the order given.
pub fn of_kind<'a>(events: &'a [Event], kind: &str) -> Vec<&'a Event> {
    events.iter().filter(|event| event.kind == kind).collect()
}

/// Asserts the status of `response` and returns its body as JSON (`Null` if empty).
pub async fn expect_json(response: Response, expected: StatusCode) -> Value {
    let status = response.status();
    let url = response.url().to_string();
    let text = response.text().await.expect("read response body");
    assert_eq!(
        status, expected,
        "unexpected status from {url}; body: {text}"
    );
    if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text)
            .unwrap_or_else(|error| panic!("body of {url} is not JSON ({error}): {text}"))
    }
}

/// Asserts an error response: the status, and a body `{"error": "<non-empty>"}`.
/// Returns the error text.
pub async fn expect_error(response: Response, expected: StatusCode) -> String {
    let body = expect_json(response, expected).await;
    let error = body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("error body has no string \"error\": {body}"));
    assert!(!error.is_empty(), "empty error text: {body}");
    error.to_owned()
}

/// Typed HTTP helpers against one server: the public push ingress and the
/// management API (with the admin token).
#[derive(Clone, Debug)]
pub struct Api {
    pub base_url: String,
    pub client: reqwest::Client,
    pub admin_token: String,
}

impl Api {
    fn new(address: SocketAddr, admin_token: &str) -> Self {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .expect("build reqwest client");
        Self {
            base_url: format!("http://{address}"),
            client,
            admin_token: admin_token.to_owned(),
        }
    }

    /// HTTPS to `address`, trusting only the certificate `root_pem` (a test's own).
    pub fn https(address: SocketAddr, admin_token: &str, root_pem: &[u8]) -> Self {
        Self {
            base_url: format!("https://{address}"),
            client: https_client(root_pem),
            admin_token: admin_token.to_owned(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// A management API request with the admin token.
    pub fn api(&self, method: Method, path: &str) -> RequestBuilder {
        self.client
            .request(method, self.url(path))
            .bearer_auth(&self.admin_token)
    }

    /// `POST /api/push/{token}` with the parameters in the query string.
    pub async fn push(&self, token: &str, query: &[(&str, &str)]) -> Response {
        self.client
            .post(self.url(&format!("/api/push/{token}")))
            .query(query)
            .send()
            .await
            .expect("send push")
    }

    /// A push that must be acknowledged with `200 {"ok":true}`.
    /// `GET /metrics`: asserts a 200 with the Prometheus text content type, returns it.
    pub async fn metrics(&self) -> String {
        let response = self.client.get(self.url("/metrics")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(content_type.starts_with("text/plain"), "{content_type}");
        response.text().await.unwrap()
    }

    pub async fn push_ok(&self, token: &str, query: &[(&str, &str)]) {
        let body = expect_json(self.push(token, query).await, StatusCode::OK).await;
        assert_eq!(body, json!({"ok": true}));
    }

    /// `POST /api/monitors` with any body; the raw response.
    pub async fn post_monitor(&self, body: &Value) -> Response {
        self.api(Method::POST, "/api/monitors")
            .json(body)
            .send()
            .await
            .expect("send create monitor")
    }

    pub async fn create_monitor(&self, name: &str, timeout_seconds: u64) -> Monitor {
        self.create_monitor_from(&json!({"name": name, "timeout_seconds": timeout_seconds}))
            .await
    }

    /// Creates a monitor from a full body; it must be answered `201`.
    pub async fn create_monitor_from(&self, body: &Value) -> Monitor {
        let created = expect_json(self.post_monitor(body).await, StatusCode::CREATED).await;
        serde_json::from_value(created.clone())
            .unwrap_or_else(|error| panic!("not a Monitor ({error}): {created}"))
    }

    pub async fn get_monitor(&self, id: &str) -> Monitor {
        self.monitor_call(Method::GET, id, "").await
    }

    /// `GET /api/monitors/{id}` as JSON, with every field (runs, schedules, slugs).
    pub async fn monitor_value(&self, id: &str) -> Value {
        let response = self
            .api(Method::GET, &format!("/api/monitors/{id}"))
            .send()
            .await
            .expect("send get monitor");
        expect_json(response, StatusCode::OK).await
    }

    /// `GET path` (no credentials) answered with the error `expected`; its text.
    pub async fn get_error(&self, path: &str, expected: StatusCode) -> String {
        let response = self.client.get(self.url(path)).send().await.expect("send");
        expect_error(response, expected).await
    }

    pub async fn list_monitors(&self) -> Vec<Monitor> {
        let response = self
            .api(Method::GET, "/api/monitors")
            .send()
            .await
            .expect("send list monitors");
        let body = expect_json(response, StatusCode::OK).await;
        serde_json::from_value(body["monitors"].clone())
            .unwrap_or_else(|error| panic!("not {{\"monitors\": [Monitor]}} ({error}): {body}"))
    }

    pub async fn pause(&self, id: &str) -> Monitor {
        self.monitor_call(Method::POST, id, "/pause").await
    }

    pub async fn resume(&self, id: &str) -> Monitor {
        self.monitor_call(Method::POST, id, "/resume").await
    }

    pub async fn rotate_token(&self, id: &str) -> Monitor {
        self.monitor_call(Method::POST, id, "/rotate-token").await
    }

    pub async fn patch_monitor(&self, id: &str, body: &Value) -> Response {
        self.api(Method::PATCH, &format!("/api/monitors/{id}"))
            .json(body)
            .send()
            .await
            .expect("send patch monitor")
    }

    pub async fn delete_monitor(&self, id: &str) -> Response {
        self.api(Method::DELETE, &format!("/api/monitors/{id}"))
            .send()
            .await
            .expect("send delete monitor")
    }

    /// A call on `/api/monitors/{id}{suffix}` answered `200` with a Monitor.
    async fn monitor_call(&self, method: Method, id: &str, suffix: &str) -> Monitor {
        let response = self
            .api(method, &format!("/api/monitors/{id}{suffix}"))
            .send()
            .await
            .expect("send monitor request");
        let body = expect_json(response, StatusCode::OK).await;
        serde_json::from_value(body.clone())
            .unwrap_or_else(|error| panic!("not a Monitor ({error}): {body}"))
    }

    /// `GET /api/monitors/{id}/events` with optional paging; the raw response.
    pub async fn events_response(
        &self,
        id: &str,
        limit: Option<u32>,
        before: Option<u64>,
    ) -> Response {
        let mut query = Vec::new();
        if let Some(limit) = limit {
            query.push(("limit", limit.to_string()));
        }
        if let Some(before) = before {
            query.push(("before", before.to_string()));
        }
        self.api(Method::GET, &format!("/api/monitors/{id}/events"))
            .query(&query)
            .send()
            .await
            .expect("send events")
    }

    /// One page of history, newest first.
    pub async fn events_page(
        &self,
        id: &str,
        limit: Option<u32>,
        before: Option<u64>,
    ) -> Vec<Event> {
        let body = expect_json(
            self.events_response(id, limit, before).await,
            StatusCode::OK,
        )
        .await;
        serde_json::from_value(body["events"].clone())
            .unwrap_or_else(|error| panic!("not {{\"events\": [Event]}} ({error}): {body}"))
    }

    /// The default page of history (at most 100 events), newest first.
    pub async fn events(&self, id: &str) -> Vec<Event> {
        self.events_page(id, None, None).await
    }

    /// The whole history, newest first, paged with `before`.
    pub async fn all_events(&self, id: &str) -> Vec<Event> {
        const PAGE: u32 = 1000;
        let mut all: Vec<Event> = Vec::new();
        loop {
            let before = all.last().map(|event| event.seq);
            let page = self.events_page(id, Some(PAGE), before).await;
            let full = page.len() == PAGE as usize;
            all.extend(page);
            if !full {
                return all;
            }
        }
    }

    /// The whole history, oldest first.
    pub async fn history(&self, id: &str) -> Vec<Event> {
        let mut events = self.all_events(id).await;
        events.reverse();
        events
    }

    /// Polls the monitor every [`POLL_EVERY`] until it has `status`; fails after
    /// `max_wait` with the last state seen.
    pub async fn wait_for_status(&self, id: &str, status: Status, max_wait: Duration) -> Monitor {
        let started = Instant::now();
        loop {
            let monitor = self.get_monitor(id).await;
            if monitor.status == status {
                return monitor;
            }
            if started.elapsed() > max_wait {
                panic!(
                    "monitor {id} did not become {status:?} within {max_wait:?}; last seen: \
                     {monitor:#?}\nhistory: {:#?}",
                    self.history(id).await
                );
            }
            sleep(POLL_EVERY).await;
        }
    }

    /// Polls `/readyz` until it answers 200.
    async fn wait_until_ready(&self, still_running: impl Fn() -> bool) {
        let started = Instant::now();
        loop {
            assert!(still_running(), "the server stopped before it was ready");
            if let Ok(response) = self.client.get(self.url("/readyz")).send().await
                && response.status() == StatusCode::OK
            {
                return;
            }
            assert!(
                started.elapsed() < READY_TIMEOUT,
                "/readyz was not 200 within {READY_TIMEOUT:?}"
            );
            sleep(POLL_EVERY).await;
        }
    }
}

/// A client that trusts exactly the certificate `root_pem` and opens a new connection
/// for each request (so a reloaded server certificate is seen at once).
pub fn https_client(root_pem: &[u8]) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(root_pem).expect("a PEM certificate"))
        .pool_max_idle_per_host(0)
        .build()
        .expect("build reqwest client")
}

/// A server running in this process on `127.0.0.1:0` with a temp store.
pub struct TestApp {
    api: Api,
    config: Config,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<anyhow::Result<()>>>,
    /// When `/readyz` first answered 200.
    pub ready_at: Instant,
    // Last, so the store directory outlives the server if the test panics.
    data_dir: Option<TempDir>,
}

/// A stopped [`TestApp`]: its store and configuration, ready to start again.
pub struct StoppedApp {
    pub config: Config,
    pub data_dir: TempDir,
}

impl Deref for TestApp {
    type Target = Api;

    fn deref(&self) -> &Api {
        &self.api
    }
}

/// Alert deliveries retried within a second or two, for tests that watch them.
pub fn fast_alert_retries(config: &mut Config) {
    config.alert_retry = pushmon::alert::RetryPolicy {
        initial: Duration::from_millis(50),
        max: Duration::from_millis(400),
        max_attempts: 4,
    };
    config.alert_timeout = Duration::from_secs(1);
}

/// A server with the default configuration, the test admin token and a fresh store.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Like [`spawn_app`], with `configure` applied to the configuration first.
pub async fn spawn_app_with(configure: impl FnOnce(&mut Config)) -> TestApp {
    let data_dir = TempDir::new().expect("create temp data dir");
    let mut config = Config::with_data_dir(data_dir.path());
    config.admin_token = Some(AdminToken::from_flag(ADMIN_TOKEN).expect("a valid token"));
    configure(&mut config);
    TestApp::start(config, data_dir).await
}

impl TestApp {
    async fn start(mut config: Config, data_dir: TempDir) -> TestApp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let address = listener.local_addr().expect("local address");
        config.listen = address;
        let (shutdown, stop_requested) = oneshot::channel::<()>();
        let server = tokio::spawn(pushmon::app::run(config.clone(), listener, async move {
            // A dropped sender (a panicking test) stops the server too.
            let _ = stop_requested.await;
        }));
        let api = Api::new(
            address,
            config
                .admin_token
                .as_ref()
                .map_or(ADMIN_TOKEN, AdminToken::secret),
        );
        api.wait_until_ready(|| !server.is_finished()).await;
        TestApp {
            api,
            config,
            shutdown: Some(shutdown),
            server: Some(server),
            ready_at: Instant::now(),
            data_dir: Some(data_dir),
        }
    }

    /// Stops the server (drain, then `run` must return `Ok`) and hands back its store.
    pub async fn shutdown(mut self) -> StoppedApp {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        let server = self.server.take().expect("server task");
        let result = timeout(STOP_TIMEOUT, server)
            .await
            .unwrap_or_else(|_| panic!("run did not return within {STOP_TIMEOUT:?} of shutdown"))
            .expect("server task panicked");
        if let Err(error) = result {
            panic!("run returned an error at shutdown: {error:#}");
        }
        StoppedApp {
            config: self.config.clone(),
            data_dir: self.data_dir.take().expect("the store of a running app"),
        }
    }

    /// Stops the server and starts a new one on the same store and configuration.
    pub async fn restart(self) -> TestApp {
        self.shutdown().await.start().await
    }
}

impl StoppedApp {
    /// Starts a server again on this store, with the same configuration.
    pub async fn start(self) -> TestApp {
        TestApp::start(self.config, self.data_dir).await
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// The real `pushmon serve` binary on `127.0.0.1:0`.
pub struct ServerProcess {
    api: Api,
    child: tokio::process::Child,
    log: Arc<Mutex<Vec<String>>>,
    /// Copies stderr into `log` until the process closes it.
    reader: JoinHandle<()>,
}

impl Deref for ServerProcess {
    type Target = Api;

    fn deref(&self) -> &Api {
        &self.api
    }
}

/// Drops ANSI escape sequences (`ESC [ ... letter`) from a log line.
fn strip_ansi(line: &str) -> String {
    let mut plain = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for next in chars.by_ref() {
                if next.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    plain
}

/// The address in a `listening on 127.0.0.1:PORT` log line.
fn listening_address(line: &str) -> Option<SocketAddr> {
    let plain = strip_ansi(line);
    let rest = &plain[plain.find("listening on ")? + "listening on ".len()..];
    let address: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
        .collect();
    address.parse().ok()
}

impl ServerProcess {
    /// Runs `pushmon serve` on `data_dir` with the test admin token and `extra_args`,
    /// and waits until it is ready.
    pub async fn start(data_dir: &Path, extra_args: &[&str]) -> ServerProcess {
        let mut args = vec!["--admin-token", ADMIN_TOKEN];
        args.extend_from_slice(extra_args);
        Self::start_with_args(data_dir, &args).await
    }

    /// Runs `pushmon serve --listen 127.0.0.1:0 --data-dir <data_dir>` with exactly
    /// `extra_args` besides, and waits until it is ready. Its [`Api`] uses the test
    /// admin token.
    pub async fn start_with_args(data_dir: &Path, extra_args: &[&str]) -> ServerProcess {
        Self::spawn(data_dir, extra_args, &[], None).await
    }

    /// Like [`start`](Self::start) for a server speaking HTTPS (its `extra_args` name
    /// the certificate and key); its [`Api`] trusts only `root_pem`.
    pub async fn start_https(
        data_dir: &Path,
        extra_args: &[&str],
        root_pem: &[u8],
    ) -> ServerProcess {
        let mut args = vec!["--admin-token", ADMIN_TOKEN];
        args.extend_from_slice(extra_args);
        Self::spawn(data_dir, &args, &[], Some(root_pem)).await
    }

    /// Like [`start`](Self::start), with extra environment variables for the server.
    pub async fn start_with_env(
        data_dir: &Path,
        extra_args: &[&str],
        env: &[(&str, &str)],
    ) -> ServerProcess {
        let mut args = vec!["--admin-token", ADMIN_TOKEN];
        args.extend_from_slice(extra_args);
        Self::spawn(data_dir, &args, env, None).await
    }

    /// Like [`start_with_args`](Self::start_with_args) (no admin token flag), with
    /// extra environment variables for the server.
    pub async fn start_with_args_and_env(
        data_dir: &Path,
        extra_args: &[&str],
        env: &[(&str, &str)],
    ) -> ServerProcess {
        Self::spawn(data_dir, extra_args, env, None).await
    }

    /// Like [`start`](Self::start), but runs `wrapper… pushmon serve …`: the wrapper
    /// must end by exec-ing its arguments (so the child's pid is the server's).
    pub async fn start_wrapped(wrapper: &[&str], data_dir: &Path, extra_args: &[&str]) -> Self {
        let mut args = vec!["--admin-token", ADMIN_TOKEN];
        args.extend_from_slice(extra_args);
        Self::spawn_wrapped(wrapper, data_dir, &args, &[], None).await
    }

    /// Like [`start_wrapped`](Self::start_wrapped), but returns as soon as the server
    /// listens: for a wrapper that puts the server where this process cannot reach it
    /// (another network namespace), so the caller decides how to wait.
    pub async fn start_wrapped_unready(
        wrapper: &[&str],
        data_dir: &Path,
        extra_args: &[&str],
    ) -> Self {
        let mut args = vec!["--admin-token", ADMIN_TOKEN];
        args.extend_from_slice(extra_args);
        Self::launch(wrapper, data_dir, &args, &[], None).await
    }

    /// Like [`start`](Self::start), but returns as soon as the server listens, before
    /// it is ready; [`wait_until_ready`](Self::wait_until_ready) waits for the rest.
    pub async fn start_unready(data_dir: &Path, extra_args: &[&str]) -> ServerProcess {
        let mut args = vec!["--admin-token", ADMIN_TOKEN];
        args.extend_from_slice(extra_args);
        Self::launch(&[], data_dir, &args, &[], None).await
    }

    /// Waits until `/readyz` answers 200; fails if the server exits first.
    pub async fn wait_until_ready(&mut self) {
        let api = self.api.clone();
        let exited_early = tokio::select! {
            () = api.wait_until_ready(|| true) => None,
            status = self.child.wait() => Some(status),
        };
        if let Some(status) = exited_early {
            panic!(
                "pushmon exited before ready: {status:?}; stderr:\n{}",
                self.log()
            );
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id().expect("pushmon still running")
    }

    async fn spawn(
        data_dir: &Path,
        extra_args: &[&str],
        env: &[(&str, &str)],
        https_root_pem: Option<&[u8]>,
    ) -> ServerProcess {
        Self::spawn_wrapped(&[], data_dir, extra_args, env, https_root_pem).await
    }

    async fn spawn_wrapped(
        wrapper: &[&str],
        data_dir: &Path,
        extra_args: &[&str],
        env: &[(&str, &str)],
        https_root_pem: Option<&[u8]>,
    ) -> ServerProcess {
        let mut server = Self::launch(wrapper, data_dir, extra_args, env, https_root_pem).await;
        server.wait_until_ready().await;
        server
    }

    /// Starts the binary and returns once it has logged the address it listens on.
    async fn launch(
        wrapper: &[&str],
        data_dir: &Path,
        extra_args: &[&str],
        env: &[(&str, &str)],
        https_root_pem: Option<&[u8]>,
    ) -> ServerProcess {
        let binary = env!("CARGO_BIN_EXE_pushmon");
        let mut command = match wrapper.split_first() {
            Some((program, args)) => {
                let mut command = tokio::process::Command::new(program);
                command.args(args).arg(binary);
                command
            }
            None => tokio::process::Command::new(binary),
        };
        let mut child = command
            .arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(data_dir)
            .args(extra_args)
            .env("NO_COLOR", "1")
            .envs(env.iter().copied())
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn the pushmon binary");
        let stderr = child.stderr.take().expect("piped stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (found, address) = oneshot::channel();
        let reader = tokio::spawn({
            let log = Arc::clone(&log);
            async move {
                let mut found = Some(found);
                let mut lines = BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Some(address) = listening_address(&line)
                        && let Some(found) = found.take()
                    {
                        let _ = found.send(address);
                    }
                    log.lock().unwrap().push(line);
                }
            }
        });
        let address = match timeout(READY_TIMEOUT, address).await {
            Ok(Ok(address)) => address,
            outcome => {
                let exit = child.try_wait();
                panic!(
                    "no `listening on` line from pushmon ({}); exit: {exit:?}; stderr:\n{}",
                    if outcome.is_err() {
                        "timed out"
                    } else {
                        "stderr closed"
                    },
                    log.lock().unwrap().join("\n")
                );
            }
        };
        let api = match https_root_pem {
            None => Api::new(address, ADMIN_TOKEN),
            Some(root_pem) => Api::https(address, ADMIN_TOKEN, root_pem),
        };
        ServerProcess {
            api,
            child,
            log,
            reader,
        }
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Sends `signal` (e.g. "HUP") to the server without waiting for anything.
    pub fn signal(&self, signal: &str) {
        let pid = self.child.id().expect("pushmon still running");
        let sent = std::process::Command::new("kill")
            .args([format!("-{signal}"), pid.to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -{signal} {pid} failed");
    }

    /// SIGKILL (what `Child::kill` sends on Unix), then the exit status.
    pub async fn sigkill(mut self) -> ExitStatus {
        self.child.start_kill().expect("send SIGKILL");
        timeout(STOP_TIMEOUT, self.child.wait())
            .await
            .expect("a killed process exits")
            .expect("wait for pushmon")
    }

    /// SIGTERM, then the exit status and the whole stderr once the server has drained.
    pub async fn sigterm(self) -> (ExitStatus, String) {
        self.stop_with("TERM").await
    }

    /// SIGINT (Ctrl-C), then the exit status and the whole stderr.
    pub async fn sigint(self) -> (ExitStatus, String) {
        self.stop_with("INT").await
    }

    /// Waits (at most `limit`) for the server to exit by itself: its exit status and
    /// whole stderr.
    pub async fn exited(mut self, limit: Duration) -> (ExitStatus, String) {
        let status = match timeout(limit, self.child.wait()).await {
            Ok(status) => status.expect("wait for pushmon"),
            Err(_) => panic!(
                "pushmon did not exit within {limit:?}; stderr:\n{}",
                self.log()
            ),
        };
        let _ = timeout(STOP_TIMEOUT, &mut self.reader).await;
        (status, self.log())
    }

    async fn stop_with(mut self, signal: &str) -> (ExitStatus, String) {
        self.signal(signal);
        let status = match timeout(STOP_TIMEOUT, self.child.wait()).await {
            Ok(status) => status.expect("wait for pushmon"),
            Err(_) => panic!(
                "pushmon did not exit within {STOP_TIMEOUT:?} of SIG{signal}; stderr:\n{}",
                self.log()
            ),
        };
        // The process is gone, so its stderr is closed and the reader ends.
        let _ = timeout(STOP_TIMEOUT, &mut self.reader).await;
        (status, self.log())
    }
}

#[test]
fn listening_line_is_parsed_with_or_without_colours() {
    assert_eq!(
        listening_address("2025-01-01T00:00:00Z  INFO pushmon::app: listening on 127.0.0.1:4321"),
        Some("127.0.0.1:4321".parse().unwrap())
    );
    assert_eq!(
        listening_address("\u{1b}[32m INFO\u{1b}[0m listening on 127.0.0.1:80 ready=true"),
        Some("127.0.0.1:80".parse().unwrap())
    );
    assert_eq!(listening_address("opening store"), None);
}

/// Runs `pushmon check` on a stopped server's store: every snapshot must equal a full
/// replay of its events.
pub fn check_store(data_dir: &Path) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_pushmon"))
        .arg("check")
        .arg("--data-dir")
        .arg(data_dir)
        .output()
        .expect("run pushmon check");
    assert!(
        output.status.success(),
        "snapshots differ from a replay:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Sends `send(attempt)` until an answer is 429 or `attempts` run out. Returns how many
/// were accepted (200) before it, and the 429. Any other status fails the test.
pub async fn until_rate_limited<F, Fut>(attempts: usize, mut send: F) -> (usize, Option<Response>)
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = Response>,
{
    let mut accepted = 0;
    for attempt in 0..attempts {
        let response = send(attempt).await;
        match response.status() {
            StatusCode::OK => accepted += 1,
            StatusCode::TOO_MANY_REQUESTS => return (accepted, Some(response)),
            status => panic!("push {attempt} gave {status}"),
        }
    }
    (accepted, None)
}
