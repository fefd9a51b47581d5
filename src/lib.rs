//! pushmon: a self-hosted push (heartbeat) monitor.
//!
//! # Layout
//! - [`domain`]: the pure state machine, events and ids (no I/O).
//! - [`store`]: the fjall event log with group commit; the only code that touches
//!   fjall or bincode.
//! - [`monitor`]: one ractor actor per monitor, and the registry that supervises them.
//! - [`alert`]: channels, notifiers, and the outbox dispatcher.
//! - [`http`]: the axum routes: push ingress, management API, health.
//! - [`app`]: wiring and lifecycle: open store, rebuild actors, serve, drain.
//! - [`check`]: `pushmon check`, a stopped store's snapshots against a full replay.
//! - [`declare`]: the monitors file, reconciled at start-up and on SIGHUP.
//! - [`cli`]: the command line as clap parses it, and the table of every setting;
//!   [`config`] resolves its flags, the environment and defaults into the validated
//!   configuration.
//! - [`clock`], [`telemetry`] (logs), [`prometheus`] (metric names and the
//!   recorder): cross-cutting pieces.

pub mod alert;
pub mod app;
pub mod check;
pub mod cli;
pub mod clock;
pub mod config;
pub mod declare;
pub mod domain;
pub mod http;
pub mod monitor;
pub mod prometheus;
pub mod store;
pub mod telemetry;
