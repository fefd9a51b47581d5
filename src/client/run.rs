//! `pushmon run -- <command>`: wraps one run of a job (`docs/cli.md#pushmon-run`).
//!
//! 1. Picks a run id (a random UUID) and sends `POST <ping>/start?rid=<id>`, waiting
//!    for the first attempt only: a server that is down delays nothing.
//! 2. Runs the command with our standard input, its output relayed to ours and its
//!    combined output's end kept ([`Tail`]); SIGTERM and SIGINT are passed on to it,
//!    and `--timeout` stops it (SIGTERM, then SIGKILL after `--kill-after`). Unless
//!    our standard input is a terminal, the command leads a process group of its own
//!    and signals go to the whole group, so a shell's children stop with it.
//! 3. Sends `POST <ping>/<exit status>?rid=<id>` with the output's end as the body
//!    (`text/plain`), or `POST <ping>/fail?rid=<id>` with a last line naming the
//!    signal, the timeout or why it could not start.
//! 4. Exits with the command's status: 128+N for signal N, 124 after a timeout, 127
//!    or 126 if it could not be started, as shells and `timeout` do.
//!
//! A report that fails is retried for `--retry-for` and then given up with a warning
//! on standard error: the server being unreachable never changes the exit status.
//! Messages never show the ping URL, which holds the push token; only its host.

use std::io::IsTerminal as _;
use std::os::unix::process::ExitStatusExt as _;
use std::pin::Pin;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use reqwest::Url;
use rustix::process::{Pid, Signal, kill_process, kill_process_group};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::signal::unix::{SignalKind, signal as listen_for};
use tokio::sync::{oneshot, watch};
use tokio::time::{Instant, Sleep, sleep, timeout_at};
use uuid::Uuid;

use super::Failure;
use super::api::http_client;
use super::retry::{self, Request, host_of};
use super::settings::{self, ConfigFile, Env, PING_URL_VAR, PUSH_TOKEN_VAR, var};
use super::tail::{Tail, report_body};
use crate::cli::client_args::RunArgs;

/// The exit status after `--timeout`, as `timeout(1)` has it.
pub const TIMED_OUT: u8 = 124;
/// The exit status when the command cannot be found, as shells have it.
const NOT_FOUND: u8 = 127;
/// The exit status when the command cannot be run for another reason.
const CANNOT_RUN: u8 = 126;
/// How long output is still relayed after the command exits: a child it left
/// running may hold the pipes open for ever.
const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(1);
const TEXT: &str = "text/plain; charset=utf-8";

/// A monitor's ping URL, without its last part (`/start`, `/0`, `/fail`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PingUrl {
    base: Url,
}

impl PingUrl {
    /// From `--url`, else `--token` (with the server), else `PUSHMON_PING_URL`, else
    /// `PUSHMON_PUSH_TOKEN`.
    pub fn resolve(args: &RunArgs, env: Env<'_>) -> Result<Self, Failure> {
        if let Some(url) = &args.url {
            return Self::from_url(url, "--url");
        }
        let server = || {
            let file = ConfigFile::load(args.server.config.as_deref(), env)?;
            settings::server(args.server.server.as_deref(), env, &file)
        };
        if let Some(token) = &args.token {
            return Self::for_token(server()?, token);
        }
        if let Some(url) = var(env, PING_URL_VAR) {
            return Self::from_url(&url, PING_URL_VAR);
        }
        if let Some(token) = var(env, PUSH_TOKEN_VAR) {
            return Self::for_token(server()?, &token);
        }
        Err(Failure::usage(format!(
            "no monitor to report to: pass --url or --token, or set {PING_URL_VAR} or \
             {PUSH_TOKEN_VAR}"
        )))
    }

    /// A ping URL as given, except that a native push URL (`…/api/push/<token>`)
    /// becomes the same token's ping URL (`…/ping/<token>`).
    pub fn from_url(text: &str, from: &str) -> Result<Self, Failure> {
        let invalid = |why: String| Failure::usage(format!("invalid ping URL ({from}): {why}"));
        let mut url =
            Url::parse(text.trim()).map_err(|error| invalid(format!("not a URL ({error})")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(invalid(
                "it must start with http:// or https:// and a host".into(),
            ));
        }
        url.set_fragment(None);
        let mut segments: Vec<String> = url
            .path_segments()
            .map(|segments| segments.map(str::to_owned).collect())
            .unwrap_or_default();
        while segments.last().is_some_and(String::is_empty) {
            segments.pop();
        }
        if segments.is_empty() {
            return Err(invalid(
                "it has no path: copy the monitor's ping or push URL".into(),
            ));
        }
        let count = segments.len();
        if count >= 3 && segments[count - 3] == "api" && segments[count - 2] == "push" {
            let token = segments.remove(count - 1);
            segments.truncate(count - 3);
            segments.extend(["ping".to_owned(), token]);
        }
        // The segments are still percent-encoded, so they are joined, not re-encoded.
        url.set_path(&format!("/{}", segments.join("/")));
        Ok(Self { base: url })
    }

    /// `<server>/ping/<token>`.
    pub fn for_token(server: Url, token: &str) -> Result<Self, Failure> {
        let token = token.trim();
        if token.is_empty() || token.contains(['/', '?', '#']) {
            return Err(Failure::usage(
                "the push token is the last part of the monitor's push URL, without slashes",
            ));
        }
        let mut base = server;
        base.path_segments_mut()
            .map_err(|()| Failure::usage("the server URL cannot have a path"))?
            .pop_if_empty()
            .extend(["ping", token]);
        Ok(Self { base })
    }

    /// The same URL naming a fleet's instance (`instance=`) in every report.
    pub fn with_instance(mut self, instance: Option<&str>) -> Self {
        if let Some(instance) = instance {
            self.base
                .query_pairs_mut()
                .append_pair("instance", instance);
        }
        self
    }

    /// `<ping>/<last>?rid=<run id>`, keeping any query the URL had.
    pub fn with(&self, last: &str, rid: Uuid) -> Url {
        let mut url = self.base.clone();
        let path = format!("{}/{last}", url.path().trim_end_matches('/'));
        url.set_path(&path);
        url.query_pairs_mut().append_pair("rid", &rid.to_string());
        url
    }

    pub fn host(&self) -> String {
        host_of(&self.base)
    }
}

/// How the run ended, as the server is told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Report {
    ExitStatus(u8),
    Fail,
}

/// What the supervision of the command produced.
struct Supervised {
    exit_code: u8,
    report: Report,
    /// A last line for the report (and for our standard error): a signal, a timeout.
    note: Option<String>,
    tail: Tail,
}

pub async fn run(args: RunArgs, env: Env<'_>) -> u8 {
    let ping = match PingUrl::resolve(&args, env) {
        Ok(ping) => ping.with_instance(args.instance.as_deref()),
        Err(failure) => {
            eprintln!("pushmon run: {failure}");
            return failure.kind.exit_code();
        }
    };
    let http = match http_client() {
        Ok(http) => http,
        Err(failure) => {
            eprintln!("pushmon run: {failure}");
            return failure.kind.exit_code();
        }
    };
    // Listening from the start: a SIGTERM while the start is sent must not kill us
    // before the command has run and been reported.
    let mut signals = Signals::listen();
    // A version 4 UUID: random, so no clock is read.
    let rid = uuid::Builder::from_random_bytes(rand::random()).into_uuid();
    let host = ping.host();
    let retry_for = args.retry_for;
    let for_up_to = humantime::format_duration(retry_for).to_string();

    let (stop_start, stop_retrying) = watch::channel(false);
    let (first_attempt_done, first_attempt) = oneshot::channel::<()>();
    let start = tokio::spawn({
        let http = http.clone();
        let url = ping.with("start", rid);
        let host = host.clone();
        let for_up_to = for_up_to.clone();
        async move {
            let mut first_attempt_done = Some(first_attempt_done);
            let request = Request {
                http: &http,
                url,
                body: Bytes::new(),
                content_type: None,
            };
            retry::send(request, retry_for, Some(stop_retrying), |reason| {
                eprintln!(
                    "pushmon run: cannot report the start to {host}: {reason}; running the \
                     command and retrying for up to {for_up_to}"
                );
                if let Some(done) = first_attempt_done.take() {
                    let _ = done.send(());
                }
            })
            .await
        }
    });
    // Sent (or failed) on its first attempt, or given up: either way, go on.
    let _ = first_attempt.await;

    let supervised = supervise(&args, &mut signals).await;
    if let Some(note) = &supervised.note {
        eprintln!("{note}");
    }

    let _ = stop_start.send(true);
    let body_limit = match start.await {
        Ok(Ok(accepted)) => accepted.ping_body_limit,
        Ok(Err(gave_up)) => {
            eprintln!(
                "pushmon run: the start was not reported to {host}: {}",
                gave_up.reason
            );
            None
        }
        Err(error) => {
            eprintln!("pushmon run: the start was not reported to {host}: {error}");
            None
        }
    };
    let budget = args.tail_bytes.min(body_limit.unwrap_or(usize::MAX));
    let body = report_body(&supervised.tail, supervised.note.as_deref(), budget);
    let url = match supervised.report {
        Report::ExitStatus(status) => ping.with(&status.to_string(), rid),
        Report::Fail => ping.with("fail", rid),
    };
    let request = Request {
        http: &http,
        url,
        body: Bytes::from(body),
        content_type: Some(TEXT),
    };
    let report = retry::send(request, retry_for, None, |reason| {
        eprintln!(
            "pushmon run: cannot report the outcome to {host}: {reason}; retrying for up to \
             {for_up_to}"
        );
    });
    let outcome = tokio::select! {
        outcome = report => Some(outcome),
        // A second SIGTERM or SIGINT while we report: stop now, as asked.
        Some(_) = signals.recv() => None,
    };
    match outcome {
        Some(Ok(_)) => {}
        Some(Err(gave_up)) => eprintln!(
            "pushmon run: the outcome was not reported to {host}: {}; exiting with the \
             command's status anyway",
            gave_up.reason
        ),
        None => eprintln!(
            "pushmon run: interrupted while reporting the outcome to {host}; not reported"
        ),
    }
    supervised.exit_code
}

/// Runs the command to its end, relaying its output and passing signals on.
async fn supervise(args: &RunArgs, signals: &mut Signals) -> Supervised {
    let tail = Arc::new(Mutex::new(Tail::new(args.tail_bytes)));
    let not_run = |exit_code, note: String| Supervised {
        exit_code,
        report: Report::Fail,
        note: Some(note),
        tail: Tail::new(0),
    };
    let Some((program, arguments)) = args.command.split_first() else {
        return not_run(CANNOT_RUN, "pushmon run: no command given".to_owned());
    };
    // A command in a process group of its own cannot read a terminal (it would be
    // stopped), so with a terminal for input it stays in ours and signals go to it
    // alone.
    let own_group = !std::io::stdin().is_terminal();
    let mut command = tokio::process::Command::new(program);
    command
        .args(arguments)
        .stdin(Stdio::inherit())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if own_group {
        command.process_group(0);
    }
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(error) => {
            let exit_code = match error.kind() {
                std::io::ErrorKind::NotFound => NOT_FOUND,
                _ => CANNOT_RUN,
            };
            return not_run(
                exit_code,
                format!("pushmon run: cannot run {program:?}: {error}"),
            );
        }
    };
    let target = Target {
        pid: child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .and_then(Pid::from_raw),
        group: own_group,
    };
    let mut relays = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        relays.push(tokio::spawn(relay(
            stdout,
            tokio::io::stdout(),
            Arc::clone(&tail),
        )));
    }
    if let Some(stderr) = child.stderr.take() {
        relays.push(tokio::spawn(relay(
            stderr,
            tokio::io::stderr(),
            Arc::clone(&tail),
        )));
    }

    let mut deadline: Option<Pin<Box<Sleep>>> = args.timeout.map(|after| Box::pin(sleep(after)));
    let mut kill_at: Option<Pin<Box<Sleep>>> = None;
    let mut timed_out = false;
    let mut killed = false;
    let mut passed_on: Option<Signal> = None;
    let waited = loop {
        tokio::select! {
            waited = child.wait() => break waited,
            Some(signal) = signals.recv() => {
                passed_on = Some(signal);
                target.send(signal);
            }
            () = fire(&mut deadline) => {
                deadline = None;
                timed_out = true;
                target.send(Signal::TERM);
                kill_at = Some(Box::pin(sleep(args.kill_after)));
            }
            () = fire(&mut kill_at) => {
                kill_at = None;
                killed = true;
                target.send(Signal::KILL);
            }
        }
    };

    let drained_by = Instant::now() + DRAIN_AFTER_EXIT;
    for relay in relays {
        let abort = relay.abort_handle();
        if timeout_at(drained_by, relay).await.is_err() {
            abort.abort();
        }
    }
    let tail = match Arc::try_unwrap(tail) {
        Ok(tail) => tail.into_inner().unwrap_or_else(PoisonError::into_inner),
        Err(shared) => {
            // A relay still holds it (aborted, not yet dropped): copy what it has.
            let tail = shared.lock().unwrap_or_else(PoisonError::into_inner);
            let mut copy = Tail::new(args.tail_bytes);
            copy.push(&tail.last(args.tail_bytes));
            copy
        }
    };

    let status = match waited {
        Ok(status) => status,
        Err(error) => {
            return Supervised {
                exit_code: CANNOT_RUN,
                report: Report::Fail,
                note: Some(format!("pushmon run: lost track of the command: {error}")),
                tail,
            };
        }
    };
    let (exit_code, report, note) = if timed_out {
        let after = args.timeout.map(humantime::format_duration);
        let then_kill = if killed {
            format!(
                ", then SIGKILL after {}",
                humantime::format_duration(args.kill_after)
            )
        } else {
            String::new()
        };
        let note = format!(
            "pushmon run: timed out after {}: sent SIGTERM{then_kill}; the command {}",
            after.map(|after| after.to_string()).unwrap_or_default(),
            describe(status)
        );
        (TIMED_OUT, Report::Fail, Some(note))
    } else if let Some(code) = status.code() {
        let code = u8::try_from(code).unwrap_or(1);
        (code, Report::ExitStatus(code), None)
    } else {
        let number = status.signal().unwrap_or(0);
        let mut note = format!("pushmon run: the command {}", describe(status));
        if let Some(signal) = passed_on {
            note.push_str(&format!(
                " (pushmon run received {} and passed it on)",
                signal_name(signal.as_raw()).unwrap_or("a signal")
            ));
        }
        let exit_code = u8::try_from(128 + number).unwrap_or(u8::MAX);
        (exit_code, Report::Fail, Some(note))
    };
    Supervised {
        exit_code,
        report,
        note,
        tail,
    }
}

/// "exited with status 3", "was killed by signal 9 (SIGKILL)".
fn describe(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("exited with status {code}");
    }
    match status.signal() {
        Some(number) => match signal_name(number) {
            Some(name) => format!("was killed by signal {number} ({name})"),
            None => format!("was killed by signal {number}"),
        },
        None => format!("ended: {status}"),
    }
}

/// The name of signal `number` (`SIGTERM`), for the common ones.
fn signal_name(number: i32) -> Option<&'static str> {
    const NAMES: &[(Signal, &str)] = &[
        (Signal::HUP, "SIGHUP"),
        (Signal::INT, "SIGINT"),
        (Signal::QUIT, "SIGQUIT"),
        (Signal::ILL, "SIGILL"),
        (Signal::TRAP, "SIGTRAP"),
        (Signal::ABORT, "SIGABRT"),
        (Signal::BUS, "SIGBUS"),
        (Signal::FPE, "SIGFPE"),
        (Signal::KILL, "SIGKILL"),
        (Signal::USR1, "SIGUSR1"),
        (Signal::SEGV, "SIGSEGV"),
        (Signal::USR2, "SIGUSR2"),
        (Signal::PIPE, "SIGPIPE"),
        (Signal::ALARM, "SIGALRM"),
        (Signal::TERM, "SIGTERM"),
        (Signal::XCPU, "SIGXCPU"),
        (Signal::XFSZ, "SIGXFSZ"),
        (Signal::SYS, "SIGSYS"),
    ];
    let signal = Signal::from_named_raw(number)?;
    NAMES
        .iter()
        .find(|(named, _)| *named == signal)
        .map(|(_, name)| *name)
}

/// Resolves when `timer` fires; never while there is none.
async fn fire(timer: &mut Option<Pin<Box<Sleep>>>) {
    match timer {
        Some(timer) => timer.as_mut().await,
        None => std::future::pending().await,
    }
}

/// Who our signals go to: the command's process group, or the command alone.
#[derive(Clone, Copy, Debug)]
struct Target {
    pid: Option<Pid>,
    group: bool,
}

impl Target {
    /// Sends `signal`; a process already gone is no error. Called only before the
    /// command is reaped, so its pid cannot have been reused.
    fn send(self, signal: Signal) {
        let Some(pid) = self.pid else {
            return;
        };
        let _ = if self.group {
            kill_process_group(pid, signal)
        } else {
            kill_process(pid, signal)
        };
    }
}

/// Copies `from` to `to`, keeping the end in `tail`. If `to` fails (our own output
/// was closed), the output is still read and kept, so the command is never blocked.
async fn relay(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    tail: Arc<Mutex<Tail>>,
) {
    let mut buffer = vec![0_u8; 16 * 1024];
    let mut passing = true;
    loop {
        let read = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(read) => read,
        };
        tail.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(&buffer[..read]);
        if passing {
            let written = to.write_all(&buffer[..read]).await;
            passing = written.is_ok() && to.flush().await.is_ok();
        }
    }
}

/// SIGTERM and SIGINT, as they arrive.
struct Signals {
    terminate: Option<tokio::signal::unix::Signal>,
    interrupt: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn listen() -> Self {
        let listen = |kind: SignalKind, name: &str| match listen_for(kind) {
            Ok(stream) => Some(stream),
            Err(error) => {
                eprintln!(
                    "pushmon run: cannot listen for {name} ({error}); it will not be passed on"
                );
                None
            }
        };
        Self {
            terminate: listen(SignalKind::terminate(), "SIGTERM"),
            interrupt: listen(SignalKind::interrupt(), "SIGINT"),
        }
    }

    /// The next signal; `None` once neither can arrive.
    async fn recv(&mut self) -> Option<Signal> {
        async fn next(stream: &mut Option<tokio::signal::unix::Signal>) -> Option<()> {
            match stream {
                Some(stream) => stream.recv().await,
                None => None,
            }
        }
        tokio::select! {
            Some(()) = next(&mut self.terminate) => Some(Signal::TERM),
            Some(()) = next(&mut self.interrupt) => Some(Signal::INT),
            else => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rid() -> Uuid {
        Uuid::parse_str("9a3b5c1e-2f4d-4e6a-8b7c-0d1e2f3a4b5c").unwrap()
    }

    #[test]
    fn a_push_url_becomes_the_same_tokens_ping_url() {
        let ping = PingUrl::from_url(
            "https://pm.example.com/base/api/push/Xb3kq9T0vYh2LwQm7RzA1g/",
            "--url",
        )
        .unwrap();
        assert_eq!(
            ping.with("start", rid()).as_str(),
            "https://pm.example.com/base/ping/Xb3kq9T0vYh2LwQm7RzA1g/start?rid=9a3b5c1e-2f4d-4e6a-8b7c-0d1e2f3a4b5c"
        );
        assert_eq!(ping.host(), "pm.example.com");
    }

    #[test]
    fn a_ping_url_is_kept_with_its_query() {
        let ping = PingUrl::from_url(
            "http://127.0.0.1:8080/ping/key/nightly-backup?create=1",
            "--url",
        )
        .unwrap();
        assert_eq!(
            ping.with("3", rid()).as_str(),
            "http://127.0.0.1:8080/ping/key/nightly-backup/3?create=1&rid=9a3b5c1e-2f4d-4e6a-8b7c-0d1e2f3a4b5c"
        );
        assert_eq!(ping.host(), "127.0.0.1:8080");
        for bad in ["ftp://h/ping/x", "http://h", "http://h/", "not a url"] {
            assert!(PingUrl::from_url(bad, "--url").is_err(), "{bad}");
        }
    }

    #[test]
    fn a_token_goes_under_the_servers_ping_path() {
        let server = settings::parse_server("https://pm.example.com/base/").unwrap();
        let ping = PingUrl::for_token(server.clone(), "tok_en-1").unwrap();
        assert_eq!(
            ping.with("fail", rid()).as_str(),
            "https://pm.example.com/base/ping/tok_en-1/fail?rid=9a3b5c1e-2f4d-4e6a-8b7c-0d1e2f3a4b5c"
        );
        assert!(PingUrl::for_token(server.clone(), "a/b").is_err());
        assert!(PingUrl::for_token(server, " ").is_err());
    }

    #[test]
    fn common_signals_have_names() {
        assert_eq!(signal_name(Signal::KILL.as_raw()), Some("SIGKILL"));
        assert_eq!(signal_name(Signal::TERM.as_raw()), Some("SIGTERM"));
        assert_eq!(signal_name(0), None);
    }
}
