//! Shards: a fixed number of them; a monitor's shard is a stable hash of its id, and
//! a shard's preferred pod is chosen by rendezvous hashing over the live pods.
//!
//! Streams: fewer than shards. Shard `s` lives in stream `s mod streams`
//! ([`stream_of`]), whose JetStream stream holds that shard's subjects (ownership,
//! decisions, configuration) and the stream's own heartbeats subject, where one
//! record carries plain heartbeats of all its shards, so one append, one fsync per
//! server and one PubAck cover many shards' heartbeats.
//!
//! Both hashes are written out here (FNV-1a, then a SplitMix64 finish) rather than
//! taken from `std`, whose hasher may change between Rust versions: every pod of every
//! version must agree on where a monitor lives, and tests pin the values.

use std::fmt;

use crate::domain::ids::MonitorId;

/// The shard count unless configured (`--cluster-shards`).
pub const DEFAULT_SHARDS: u16 = 64;

/// The stream count unless configured (`--cluster-streams`); never more than the
/// shards.
pub const DEFAULT_STREAMS: u16 = 4;

/// One shard, `0..count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShardId(pub u16);

impl fmt::Display for ShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl ShardId {
    /// Every shard of a cluster of `count` shards.
    pub fn all(count: u16) -> impl Iterator<Item = ShardId> {
        (0..count).map(ShardId)
    }

    /// Every subject of the shard (all in its stream, [`stream_of`]).
    pub fn subjects(self) -> String {
        format!("pushmon.s{}.>", self.0)
    }

    /// The shard a subject of [`Self::subjects`] belongs to.
    pub fn of_subject(subject: &str) -> Option<ShardId> {
        let rest = subject.strip_prefix("pushmon.s")?;
        let (number, _) = rest.split_once('.')?;
        number.parse().ok().map(ShardId)
    }

    /// Heartbeats of the shard's monitors.
    pub fn heartbeat_subject(self) -> String {
        format!("pushmon.s{}.hb", self.0)
    }

    /// The owners' decisions.
    pub fn decision_subject(self) -> String {
        format!("pushmon.s{}.dec", self.0)
    }

    /// Changes of the shard's monitors' configurations.
    pub fn config_subject(self) -> String {
        format!("pushmon.s{}.cfg", self.0)
    }

    /// Takeovers, renewals and releases: the subject whose last sequence fences them.
    pub fn ownership_subject(self) -> String {
        format!("pushmon.s{}.own", self.0)
    }
}

/// One stream, `0..count`: a JetStream stream carrying the logs of several shards.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId(pub u16);

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl StreamId {
    /// Every stream of a cluster of `count` streams.
    pub fn all(count: u16) -> impl Iterator<Item = StreamId> {
        (0..count).map(StreamId)
    }

    /// The JetStream stream's name.
    pub fn name(self) -> String {
        format!("PUSHMON_G{}", self.0)
    }

    /// Heartbeats records of the stream: their items are of any of its shards.
    pub fn heartbeats_subject(self) -> String {
        format!("pushmon.g{}.hb", self.0)
    }

    /// The shards this stream carries, among `shards` in `streams` streams.
    pub fn shards(self, shards: u16, streams: u16) -> impl Iterator<Item = ShardId> {
        ShardId::all(shards).filter(move |shard| stream_of(*shard, streams) == self)
    }

    /// Every subject of the JetStream stream: its heartbeats subject and each of its
    /// shards' subjects.
    pub fn subjects(self, shards: u16, streams: u16) -> Vec<String> {
        std::iter::once(self.heartbeats_subject())
            .chain(self.shards(shards, streams).map(ShardId::subjects))
            .collect()
    }
}

/// The stream carrying `shard` among `streams` streams (`streams` ≥ 1): the shard
/// number modulo the stream count, so a stream's shards are spread over the hash.
pub fn stream_of(shard: ShardId, streams: u16) -> StreamId {
    StreamId(shard.0 % streams.max(1))
}

/// The shard of `monitor` among `count` shards (`count` ≥ 1).
pub fn shard_of(monitor: &MonitorId, count: u16) -> ShardId {
    let hash = finish(fnv1a(FNV_OFFSET, monitor.as_bytes()));
    let count = u64::from(count.max(1));
    ShardId(u16::try_from(hash % count).unwrap_or(0))
}

/// The pod `shard` prefers among `pods`: the one with the highest rendezvous score
/// (ties, which need equal names, go to the first). Adding or removing a pod moves
/// only the shards it wins or held.
pub fn preferred_pod<'a>(
    shard: ShardId,
    pods: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let mut best: Option<(u64, &str)> = None;
    for pod in pods {
        let score = finish(fnv1a(
            fnv1a(FNV_OFFSET, pod.as_bytes()),
            &shard.0.to_le_bytes(),
        ));
        if best.is_none_or(|(top, _)| score > top) {
            best = Some((score, pod));
        }
    }
    best.map(|(_, pod)| pod)
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

fn fnv1a(mut hash: u64, bytes: &[u8]) -> u64 {
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    hash
}

/// SplitMix64's finaliser: spreads FNV's weak low bits before the modulo.
fn finish(mut hash: u64) -> u64 {
    hash = (hash ^ (hash >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    hash = (hash ^ (hash >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    hash ^ (hash >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pinned: a change here moves monitors between shards in a running cluster.
    #[test]
    fn shards_are_stable_for_fixed_ids() {
        let ids = [
            "0192f3a4-5b6c-7d8e-9f00-112233445566",
            "01930000-0000-7000-8000-000000000000",
            "019a1b2c-3d4e-7f60-8172-839405162738",
            "00000000-0000-0000-0000-000000000000",
        ];
        let shards: Vec<u16> = ids
            .iter()
            .map(|id| shard_of(&MonitorId::parse(id).expect("an id"), DEFAULT_SHARDS).0)
            .collect();
        assert_eq!(shards, PINNED_SHARDS);
        let at_7: Vec<u16> = ids
            .iter()
            .map(|id| shard_of(&MonitorId::parse(id).expect("an id"), 7).0)
            .collect();
        assert_eq!(at_7, PINNED_SHARDS_OF_7);
    }

    const PINNED_SHARDS: [u16; 4] = [34, 3, 39, 63];
    const PINNED_SHARDS_OF_7: [u16; 4] = [3, 0, 1, 1];

    #[test]
    fn shards_spread_monitors_evenly() {
        let mut counts = [0u32; DEFAULT_SHARDS as usize];
        for n in 0u32..64_000 {
            let mut bytes = [0u8; 16];
            bytes[..4].copy_from_slice(&n.to_be_bytes());
            bytes[6] = 0x70;
            let shard = shard_of(&MonitorId::from_bytes(bytes), DEFAULT_SHARDS);
            counts[usize::from(shard.0)] += 1;
        }
        // 1,000 expected per shard; a fair hash stays well within ±20%.
        assert!(
            counts.iter().all(|count| (800..1200).contains(count)),
            "{counts:?}"
        );
    }

    #[test]
    fn rendezvous_moves_only_what_a_new_pod_wins_and_is_stable() {
        let before = ["pod-a", "pod-b", "pod-c"];
        let after = ["pod-a", "pod-b", "pod-c", "pod-d"];
        let mut moved = 0;
        let mut per_pod = std::collections::BTreeMap::new();
        for shard in ShardId::all(DEFAULT_SHARDS) {
            let old = preferred_pod(shard, before).expect("a pod");
            let new = preferred_pod(shard, after).expect("a pod");
            *per_pod.entry(old).or_insert(0) += 1;
            if old != new {
                assert_eq!(new, "pod-d", "shard {shard} moved between old pods");
                moved += 1;
            }
            // The order pods are listed in does not matter.
            assert_eq!(
                preferred_pod(shard, before.iter().rev().copied()),
                Some(old)
            );
        }
        assert!(
            (8..28).contains(&moved),
            "{moved} of 64 shards moved to the 4th pod"
        );
        assert!(per_pod.values().all(|count| *count >= 10), "{per_pod:?}");
        assert_eq!(preferred_pod(ShardId(0), []), None);
        assert_eq!(
            [ShardId(0), ShardId(1), ShardId(2), ShardId(3)]
                .map(|shard| preferred_pod(shard, before)),
            PINNED_PREFERRED.map(Some)
        );
    }

    const PINNED_PREFERRED: [&str; 4] = ["pod-a", "pod-a", "pod-a", "pod-a"];

    /// Pinned: a change here moves shards between streams in a running cluster.
    #[test]
    fn shards_map_to_streams_by_a_fixed_rule() {
        let of = |shard: u16, streams: u16| stream_of(ShardId(shard), streams).0;
        assert_eq!(
            (0..8)
                .map(|shard| of(shard, DEFAULT_STREAMS))
                .collect::<Vec<_>>(),
            [0, 1, 2, 3, 0, 1, 2, 3]
        );
        assert_eq!(of(63, 4), 3);
        assert_eq!(of(63, 1), 0);
        assert_eq!(of(5, 64), 5);
        // Every shard is in exactly one stream, and streams share them out evenly.
        for streams in [1, 2, 3, 4, 64] {
            let mut seen = 0;
            for stream in StreamId::all(streams) {
                let carried = stream.shards(64, streams).count();
                assert!(
                    carried == 64 / usize::from(streams)
                        || carried == 64 / usize::from(streams) + 1
                );
                seen += carried;
            }
            assert_eq!(seen, 64);
        }
        assert_eq!(StreamId(2).name(), "PUSHMON_G2");
        assert_eq!(
            StreamId(1).subjects(8, 4),
            ["pushmon.g1.hb", "pushmon.s1.>", "pushmon.s5.>"]
        );
        assert_eq!(ShardId::of_subject("pushmon.s17.own"), Some(ShardId(17)));
        assert_eq!(ShardId::of_subject("pushmon.g1.hb"), None);
        // A pinned monitor's path: its shard, then that shard's stream.
        let monitor = MonitorId::parse("0192f3a4-5b6c-7d8e-9f00-112233445566").expect("an id");
        assert_eq!(
            stream_of(shard_of(&monitor, DEFAULT_SHARDS), DEFAULT_STREAMS),
            StreamId(2)
        );
    }
}
