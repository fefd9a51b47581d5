//! `pushmon check`: opens a stopped server's store, reports acknowledged writes missing
//! from it (its log ends before its high-water mark), and compares what the server
//! starts from with a replay of the logs alone (`store::replay`): every monitor's
//! snapshot, every channel's, API key's, badge's and status page's record, the ping key,
//! and the outbox.

use std::collections::BTreeMap;
use std::fmt;
use std::fmt::Debug;
use std::path::Path;

use anyhow::Context as _;

use crate::store::{DataLoss, EventStore, OpenOptions};

/// What `pushmon check` found.
pub struct CheckReport {
    pub monitors: usize,
    pub channels: usize,
    pub api_keys: usize,
    /// Badges and status pages.
    pub publications: usize,
    /// Deliveries owed (in the outbox).
    pub owed: usize,
    /// Events replayed, over every log.
    pub events: usize,
    /// Acknowledged writes missing from the store.
    pub loss: Option<DataLoss>,
    /// One line per difference between what the server starts from and the replay.
    pub mismatches: Vec<String>,
}

/// Compares what the server starts from with a replay of the logs. Blocking; the
/// store must not be open elsewhere (fjall locks the directory).
pub fn check_store(data_dir: &Path) -> anyhow::Result<CheckReport> {
    let opened = EventStore::open_with(data_dir, OpenOptions::inspect())?;
    let store = opened.store.clone();
    let snapshots = store.load_monitors()?;
    let channels = store.load_channels()?;
    let api_keys = store.load_api_keys()?;
    let publications = store.load_publications()?;
    let outbox = store.load_outbox()?;
    let replayed = store.replay()?;
    let mut mismatches = Vec::new();
    let counts = (
        snapshots.len(),
        channels.len(),
        api_keys.len(),
        publications.len(),
    );
    compare(
        "monitor",
        snapshots.into_iter().map(|monitor| (monitor.id, monitor)),
        &replayed.monitors,
        &mut mismatches,
    );
    compare(
        "channel",
        channels.into_iter().map(|channel| (channel.id, channel)),
        &replayed.channels,
        &mut mismatches,
    );
    compare(
        "API key",
        api_keys.into_iter().map(|key| (key.id, key)),
        &replayed.api_keys,
        &mut mismatches,
    );
    compare(
        "badge or status page",
        publications
            .into_iter()
            .map(|publication| (publication.record_id(), publication)),
        &replayed.publications,
        &mut mismatches,
    );
    // Compared, never printed: it is a secret.
    let (replayed_ping_key, ping_keys) = store.replay_ping_key()?;
    if store.ping_key()? != replayed_ping_key {
        mismatches.push(format!(
            "ping key: the record differs from the last of its log's {ping_keys} entries"
        ));
    }
    let owed = outbox.len();
    compare(
        "owed delivery",
        outbox
            .into_iter()
            .filter(|delivery| delivery.alert.alert_seq >= replayed.outbox_from)
            .map(|delivery| ((delivery.alert.alert_seq, delivery.channel), delivery)),
        &replayed.outbox,
        &mut mismatches,
    );
    drop(store);
    let writer = opened.writer_thread;
    let closer = opened.store;
    tokio::runtime::Builder::new_current_thread()
        .build()
        .context("runtime to close the store")?
        .block_on(closer.close());
    drop(closer);
    let _ = writer.join();
    Ok(CheckReport {
        monitors: counts.0,
        channels: counts.1,
        api_keys: counts.2,
        publications: counts.3,
        owed,
        events: replayed.events,
        loss: opened.loss,
        mismatches,
    })
}

/// One line per key whose stored value differs from the replay, or that only one of
/// the two has.
fn compare<K: Ord + Debug, V: PartialEq + Debug>(
    what: &str,
    stored: impl Iterator<Item = (K, V)>,
    replayed: &BTreeMap<K, V>,
    mismatches: &mut Vec<String>,
) {
    let stored: BTreeMap<K, V> = stored.collect();
    for (key, value) in &stored {
        match replayed.get(key) {
            Some(replay) if replay == value => {}
            Some(replay) => {
                mismatches.push(format!(
                    "{what} {key:?}: stored {value:?} != replay {replay:?}"
                ));
            }
            None => mismatches.push(format!("{what} {key:?}: stored, but not in the replay")),
        }
    }
    for key in replayed.keys() {
        if !stored.contains_key(key) {
            mismatches.push(format!("{what} {key:?}: in the replay, but not stored"));
        }
    }
}

impl CheckReport {
    /// Nothing is missing and everything stored equals its replay.
    pub fn is_ok(&self) -> bool {
        self.mismatches.is_empty() && self.loss.is_none()
    }

    fn counts(&self) -> String {
        format!(
            "{} monitors, {} channels, {} API keys, {} badges and status pages, {} owed \
             deliveries",
            self.monitors, self.channels, self.api_keys, self.publications, self.owed
        )
    }
}

impl fmt::Display for CheckReport {
    /// What `pushmon check` prints: a summary line, after one line per problem.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_ok() {
            return writeln!(
                f,
                "ok: {}; each equals a replay of the log ({} events)",
                self.counts(),
                self.events
            );
        }
        if let Some(loss) = &self.loss {
            writeln!(f, "data loss: {loss}")?;
        }
        for mismatch in &self.mismatches {
            writeln!(f, "mismatch: {mismatch}")?;
        }
        if let Some(loss) = &self.loss {
            let (from, to) = loss.missing();
            write!(
                f,
                "FAILED: acknowledged writes {from} to {to} are missing; "
            )?;
        } else {
            write!(f, "FAILED: ")?;
        }
        writeln!(
            f,
            "{} differences from a replay of the log ({})",
            self.mismatches.len(),
            self.counts()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_says_ok_or_lists_each_mismatch() {
        let ok = CheckReport {
            monitors: 2,
            channels: 1,
            api_keys: 0,
            publications: 1,
            owed: 3,
            events: 7,
            loss: None,
            mismatches: Vec::new(),
        };
        assert!(ok.is_ok());
        assert_eq!(
            ok.to_string(),
            "ok: 2 monitors, 1 channels, 0 API keys, 1 badges and status pages, 3 owed \
             deliveries; each equals a replay of the log (7 events)\n"
        );
        let failed = CheckReport {
            mismatches: vec!["monitor m1: stored, but not in the replay".to_owned()],
            ..ok
        };
        assert!(!failed.is_ok());
        assert_eq!(
            failed.to_string(),
            "mismatch: monitor m1: stored, but not in the replay\n\
             FAILED: 1 differences from a replay of the log (2 monitors, 1 channels, 0 API \
             keys, 1 badges and status pages, 3 owed deliveries)\n"
        );
    }

    #[test]
    fn compare_names_each_difference_once() {
        let replayed: BTreeMap<u8, &str> = [(1, "a"), (2, "b"), (4, "d")].into();
        let mut found = Vec::new();
        compare(
            "thing",
            [(1, "a"), (2, "B"), (3, "c")].into_iter(),
            &replayed,
            &mut found,
        );
        assert_eq!(
            found,
            [
                "thing 2: stored \"B\" != replay \"b\"",
                "thing 3: stored, but not in the replay",
                "thing 4: in the replay, but not stored",
            ]
        );
    }
}
