//! pushmon: a self-hosted push (heartbeat) monitor.
//!
//! # Layout
//! - [`domain`]: the pure state machine, events and ids (no I/O).
//! - [`store`]: the fjall event log with group commit; the only code that touches
//!   fjall or bincode.
//! - [`cluster`]: the event log every write goes through (`cluster::event_log`: the
//!   fjall store on a single node, the shard logs in the clustered mode, chosen once
//!   at start), and the clustered mode's foundation on NATS JetStream: shards, the
//!   shard logs, and shard ownership fenced by the log.
//! - [`monitor`]: one ractor actor per monitor, the directory handlers find them in,
//!   the registry that spawns and supervises them, and the recorder of delivery
//!   outcomes.
//! - [`alert`]: channels, notifiers, and the outbox dispatcher.
//! - [`http`]: the accept loop (hyper, optional TLS) and the axum routes: push
//!   ingress, management API, health and metrics.
//! - [`web`]: the dashboard: server-rendered pages behind a session, live updates,
//!   badges and public status pages, beside the API on the same port.
//! - [`app`]: wiring and lifecycle: open the store, serve (not ready), rebuild the
//!   actors, ready, drain, close.
//! - [`check`]: `pushmon check`, a stopped store's snapshots against a full replay.
//! - [`declare`]: the monitors file, reconciled at start-up and on SIGHUP.
//! - [`fuzzing`]: the checks the fuzz targets of `fuzz/` run on any bytes (the push
//!   parser, the monitors file, the stored-record decoders), and their corpus replayed
//!   as tests.
//! - [`client`]: the command line's client side: `pushmon run` (wraps a job and
//!   reports its runs), `pushmon push`, and the management commands (`monitor`,
//!   `channel`, `key`, `events`), over HTTP only.
//! - [`cli`]: the command line as clap parses it (with completions and manual pages
//!   made from it), and the table of every setting;
//!   [`config`] resolves its flags, the environment and defaults into the validated
//!   configuration.
//! - [`clock`], [`telemetry`] (logs), [`prometheus`] (metric names and the
//!   recorder): cross-cutting pieces.

pub mod alert;
pub mod app;
pub mod check;
pub mod cli;
pub mod client;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod declare;
pub mod domain;
pub mod fuzzing;
pub mod http;
pub mod monitor;
pub mod prometheus;
pub mod store;
pub mod telemetry;
pub mod web;
