//! The clustered backend's foundation, over NATS JetStream: shards, the shard log,
//! and shard ownership.
//!
//! - `shard`: the fixed shard count, a monitor's shard (a stable hash of its id), and
//!   each shard's preferred pod (rendezvous hashing over the live pods).
//! - `log`: the [`log::ShardLog`] trait and its JetStream implementation: one
//!   replicated file stream per group of shards (`--cluster-streams`), appends
//!   answered only once every record's PubAck arrived, reads from a sequence.
//! - `ownership`: one owner pod per shard, fenced by takeover records on the shard's
//!   log (their sequence is the epoch), leases, self-fencing, release and rebalancing.
//! - `claims`: cluster-wide claims on monitors' slugs and push tokens, a JetStream
//!   key-value bucket whose `create` lets exactly one of two pods take a value.
//! - `share`: the shared snapshots' object store bucket (one snapshot per stream,
//!   for new pods), and what a purge of a stream below them may remove.
//! - `slot`: whether a part of the state publishes its changes, and its publisher.
//!
//! Which decisions in a shard's log count is the pure rule of `domain::fence`; the
//! records' bytes are `store::codec`'s. This module is a layer beside `store`: it
//! imports `domain`, `store::codec` and the cross-cutting leaves, and nothing above.
//! `pushmon serve` uses it only with `--cluster-nats`, for shard ownership
//! (`app/cluster.rs`); the monitors do not run on the shard logs yet.

pub mod claims;
pub mod log;
pub mod ownership;
pub mod shard;
pub mod share;
pub mod slot;
