//! Tracing setup: human-readable lines by default, one JSON object a line with
//! `--log-format json`. Logs go to stderr; `RUST_LOG` overrides the default
//! (`DEFAULT_FILTER`).

use tracing_subscriber::EnvFilter;

/// How log lines are written (`--log-format`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

/// `info`, but the storage engine at `warn`, and ractor at `warn`: ractor wraps every
/// actor's life in an `info` span, and an enabled span is a live record in the
/// subscriber for each of up to millions of actors (memory), entered and left on
/// every message (CPU). Our own lines name the monitor instead.
const DEFAULT_FILTER: &str = "info,fjall=warn,lsm_tree=warn,ractor=warn";

/// Installs the global subscriber. Call once, from `main`, and keep the guard until
/// the end: dropping it flushes what is still buffered.
///
/// Lines are written to stderr by a dedicated thread, so a burst of alerts (a log
/// line each) costs the async workers the formatting but not a `write` syscall per
/// line. The buffer blocks rather than drops when full: no line is lost.
pub fn init(format: LogFormat) -> tracing_appender::non_blocking::WorkerGuard {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .thread_name("pushmon-log")
        .finish(std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(writer);
    let result = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    if let Err(error) = result {
        eprintln!("pushmon: logging was already set up: {error}");
    }
    guard
}
