//! The `pushmon` binary: parse the command line; for `serve`, resolve the
//! configuration, set up logging, bind, run; hand `check`, `cluster release` and the
//! client commands to their modules.

use std::path::PathBuf;
use std::process::ExitCode;

/// mimalloc: the push path allocates many small short-lived objects, which glibc's
/// allocator handled with visibly more CPU (malloc_consolidate, unlink_chunk in
/// profiles).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser as _;
use pushmon::check;
use pushmon::cli::{Cli, ClusterCommand, Command};
use pushmon::config::{self, Config};

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(worker_threads())
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("pushmon: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run())
}

/// One core is left to the store's writer thread, which does every fsync and memtable
/// insert: on 2 cores one async worker served 13% more heartbeats than two (median of
/// three interleaved runs each, BENCHMARKS.md). `TOKIO_WORKER_THREADS` overrides.
fn worker_threads() -> usize {
    if let Some(threads) = std::env::var("TOKIO_WORKER_THREADS")
        .ok()
        .and_then(|value| value.parse::<usize>().ok())
        .filter(|threads| *threads > 0)
    {
        return threads;
    }
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    cores.saturating_sub(1).max(1)
}

async fn run() -> ExitCode {
    let env = |name: &str| std::env::var(name).ok();
    match Cli::parse().command {
        Command::Client(command) => pushmon::client::execute(*command).await,
        Command::Check(args) => match config::check_data_dir(args, env) {
            Ok(data_dir) => check(data_dir).await,
            Err(error) => {
                eprintln!("pushmon: {error}");
                ExitCode::from(2)
            }
        },
        Command::Cluster(ClusterCommand::Release(args)) => {
            let cluster = match config::cluster_release(args, env) {
                Ok(cluster) => cluster,
                Err(error) => {
                    eprintln!("pushmon: {error}");
                    return ExitCode::from(2);
                }
            };
            match pushmon::app::cluster::release(&cluster).await {
                Ok(count) => {
                    println!(
                        "pod {}: released ({count} shards owned when asked)",
                        cluster.pod
                    );
                    ExitCode::SUCCESS
                }
                Err(error) => {
                    eprintln!("pushmon cluster release: {error:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Serve(args) => {
            let config = match Config::resolve(*args, env) {
                Ok(config) => config,
                Err(error) => {
                    eprintln!("pushmon: {error}");
                    return ExitCode::from(2);
                }
            };
            let _flush_logs_on_exit = pushmon::telemetry::init(config.log_format);
            match serve(config).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    tracing::error!("{error:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

async fn check(data_dir: PathBuf) -> ExitCode {
    match tokio::task::spawn_blocking(move || check::check_store(&data_dir)).await {
        Ok(Ok(report)) => {
            print!("{report}");
            if report.is_ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Ok(Err(error)) => {
            eprintln!("pushmon check: {error:#}");
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("pushmon check: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|error| anyhow::anyhow!("cannot listen on {}: {error}", config.listen))?;
    let (reload, reloads) = tokio::sync::mpsc::channel(1);
    tokio::spawn(forward_sighup(reload));
    pushmon::app::run_with_reload(config, listener, shutdown_signal(), reloads).await
}

/// Turns each SIGHUP into a reload of the monitors file and the TLS certificate.
async fn forward_sighup(reload: tokio::sync::mpsc::Sender<()>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hangups) = signal(SignalKind::hangup()) else {
            tracing::error!(
                "cannot listen for SIGHUP; the monitors file and TLS certificate load only at start-up"
            );
            return;
        };
        while hangups.recv().await.is_some() {
            tracing::info!("received SIGHUP");
            // A reload already queued covers this one too.
            let _ = reload.try_send(());
        }
    }
    #[cfg(not(unix))]
    drop(reload);
}

/// Resolves on SIGTERM or SIGINT.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(error) => {
                    tracing::error!(%error, "cannot listen for SIGTERM");
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::select! {
            _ = interrupt => tracing::info!("received SIGINT"),
            () = terminate => tracing::info!("received SIGTERM"),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
