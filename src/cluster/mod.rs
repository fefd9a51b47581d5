//! The event log's two backends, and the clustered backend's foundation over NATS
//! JetStream: shards, the shard logs, and shard ownership.
//!
//! - `shard`: the fixed shard count, a monitor's shard (a stable hash of its id), and
//!   each shard's preferred pod (rendezvous hashing over the live pods).
//! - `event_log`: the [`event_log::EventLog`] trait every write of an event goes
//!   through, with its two implementations (the fjall store on a single node, the
//!   shard logs in the clustered mode), chosen once at start.
//! - `log`: the shard logs over JetStream ([`log::JetStreamLog`]): one replicated
//!   file stream per group of shards (`--cluster-streams`), appends answered only
//!   once every record's PubAck arrived, reads from a sequence.
//! - `ownership`: one owner pod per shard, fenced by takeover records on the shard's
//!   log (their sequence is the epoch), leases, self-fencing, release and rebalancing.
//! - `claims`: cluster-wide claims on monitors' slugs and push tokens, a JetStream
//!   key-value bucket whose `create` lets exactly one of two pods take a value.
//! - `share`: the shared snapshots' object store bucket (one snapshot per stream,
//!   for new pods), and what a purge of a stream below them may remove.
//!
//! Which decisions in a shard's log count is the pure rule of `domain::fence`; the
//! records' bytes are `store::codec`'s. This module is a layer beside `store`: it
//! imports `domain`, `store` (the codec, and the store's handle for the fjall log) and the
//! cross-cutting leaves, and nothing above.
//! `pushmon serve` uses the shard logs only with `--cluster-nats` (`app/cluster.rs`);
//! `event_log` is used in both modes.

pub mod claims;
pub mod event_log;
pub mod log;
pub mod ownership;
pub mod shard;
pub mod share;
