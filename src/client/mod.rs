//! The command line's client side (`docs/cli.md`): `pushmon run` wraps a job and
//! reports its runs ([`run`]), `pushmon push` sends a heartbeat ([`push`]), and
//! `monitor`, `channel`, `key`, `events` and `export` manage a server through its HTTP API
//! ([`manage`], over [`api`], printed by [`output`]). It talks to a server only over
//! HTTP, as any other client would, and imports nothing of the server's own code: only
//! the clap types of `cli`.
//!
//! Every failure is a [`Failure`] whose [`FailureKind`] is the exit code, so scripts
//! can tell "not found" from "unauthorized" from "server unreachable". `run` is the
//! exception: it exits with its command's status, whatever the server did.

use std::io::Write as _;
use std::process::ExitCode;

use crate::cli::client_args::{ClientCommand, CopyBinaryArgs, ManArgs};
use crate::cli::generate;

pub mod api;
pub mod manage;
pub mod output;
pub mod push;
pub mod retry;
pub mod run;
pub mod settings;
pub mod tail;

/// What went wrong, as the exit code says it (`docs/cli.md#exit-codes`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// 1: anything else (the server failed, a channel test was not delivered …).
    Other,
    /// 2: the command line or what it sent was invalid (clap's own errors exit 2
    /// too; so do the server's `400` and `422`).
    Usage,
    /// 3: no such monitor, channel, key or push token.
    NotFound,
    /// 4: no token, a wrong one, or one without the right (`401`, `403`).
    Denied,
    /// 5: the server could not be reached or is unavailable (cannot connect, timed
    /// out, `503`).
    Unreachable,
}

impl FailureKind {
    pub fn exit_code(self) -> u8 {
        match self {
            Self::Other => 1,
            Self::Usage => 2,
            Self::NotFound => 3,
            Self::Denied => 4,
            Self::Unreachable => 5,
        }
    }

    /// The kind of failure an HTTP answer with `status` (not a 2xx) is.
    pub fn of_status(status: u16) -> Self {
        match status {
            400 | 413 | 422 => Self::Usage,
            404 => Self::NotFound,
            401 | 403 => Self::Denied,
            503 => Self::Unreachable,
            _ => Self::Other,
        }
    }
}

/// A command that failed: why, and which exit code that is.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    pub kind: FailureKind,
    pub message: String,
}

impl Failure {
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(FailureKind::Usage, message)
    }

    pub fn other(message: impl Into<String>) -> Self {
        Self::new(FailureKind::Other, message)
    }
}

/// The process environment, as the resolution of settings reads it.
fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Runs one client command; the exit code is the command's outcome.
pub async fn execute(command: ClientCommand) -> ExitCode {
    let env = process_env;
    let outcome = match command {
        ClientCommand::Run(args) => return ExitCode::from(run::run(args, &env).await),
        ClientCommand::Push(args) => push::push(args, &env).await,
        ClientCommand::Monitor(args) => manage::monitor(args, &env).await,
        ClientCommand::Channel(args) => manage::channel(args, &env).await,
        ClientCommand::Key(args) => manage::key(args, &env).await,
        ClientCommand::Events(args) => manage::events(args, &env).await,
        ClientCommand::Export(args) => manage::export(args, &env).await,
        ClientCommand::Completions(args) => {
            let mut out = Vec::new();
            generate::completions(args.shell, &mut out);
            output::print_bytes(&out)
        }
        ClientCommand::Man(args) => man(args),
        ClientCommand::CopyBinary(args) => copy_binary(args),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("pushmon: {failure}");
            ExitCode::from(failure.kind.exit_code())
        }
    }
}

fn man(args: ManArgs) -> Result<(), Failure> {
    match args.dir {
        None => {
            let mut out = Vec::new();
            generate::man_page(&mut out)
                .map_err(|error| Failure::other(format!("cannot render the manual: {error}")))?;
            output::print_bytes(&out)
        }
        Some(dir) => generate::man_pages(&dir).map_err(|error| {
            Failure::other(format!(
                "cannot write the manual pages into {}: {error}",
                dir.display()
            ))
        }),
    }
}

/// Copies the running binary to `<dir>/pushmon`, executable: written beside its
/// final name and renamed, so a reader never finds half a binary.
fn copy_binary(args: CopyBinaryArgs) -> Result<(), Failure> {
    let failed = |what: &str, error: std::io::Error| {
        Failure::other(format!(
            "cannot copy the binary into {}: {what}: {error}",
            args.dir.display()
        ))
    };
    let source = std::env::current_exe().map_err(|error| failed("where am I", error))?;
    let target = args.dir.join("pushmon");
    let partial = args.dir.join(".pushmon.partial");
    std::fs::copy(&source, &partial).map_err(|error| failed("copy", error))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&partial, std::fs::Permissions::from_mode(0o755))
            .map_err(|error| failed("chmod", error))?;
    }
    std::fs::rename(&partial, &target).map_err(|error| failed("rename", error))?;
    let _ = writeln!(std::io::stderr(), "pushmon: copied to {}", target.display());
    Ok(())
}
