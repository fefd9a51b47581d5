//! `pushmon check`: opens a stopped server's store, reports acknowledged writes missing
//! from it (its log ends before its high-water mark), and compares every monitor's
//! snapshot with a fold of its whole history.

use std::fmt;
use std::path::Path;

use anyhow::Context as _;

use crate::store::{DataLoss, EventStore, OpenOptions};

/// What `pushmon check` found.
pub struct CheckReport {
    pub monitors: usize,
    pub events: usize,
    /// Acknowledged writes missing from the store.
    pub loss: Option<DataLoss>,
    /// One line per monitor whose snapshot differs from its replay (or exists in only
    /// one of the two).
    pub mismatches: Vec<String>,
}

/// Compares every monitor's snapshot with a fold of its whole history. Blocking; the
/// store must not be open elsewhere (fjall locks the directory).
pub fn check_store(data_dir: &Path) -> anyhow::Result<CheckReport> {
    let opened = EventStore::open_with(data_dir, OpenOptions::inspect())?;
    let store = opened.store.clone();
    let snapshots: std::collections::BTreeMap<_, _> = store
        .load_monitors()?
        .into_iter()
        .map(|monitor| (monitor.id, monitor))
        .collect();
    let (replayed, events) = store.replay_all_counted()?;
    let mut mismatches = Vec::new();
    for (id, snapshot) in &snapshots {
        match replayed.get(id) {
            Some(replay) if replay == snapshot => {}
            Some(replay) => {
                mismatches.push(format!("{id}: snapshot {snapshot:?} != replay {replay:?}"))
            }
            None => mismatches.push(format!("{id}: a snapshot but no live history")),
        }
    }
    for id in replayed.keys() {
        if !snapshots.contains_key(id) {
            mismatches.push(format!("{id}: a live history but no snapshot"));
        }
    }
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
        monitors: snapshots.len(),
        events,
        loss: opened.loss,
        mismatches,
    })
}

impl CheckReport {
    /// Nothing is missing and every snapshot equals its replay.
    pub fn is_ok(&self) -> bool {
        self.mismatches.is_empty() && self.loss.is_none()
    }
}

impl fmt::Display for CheckReport {
    /// What `pushmon check` prints: a summary line, after one line per mismatch.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_ok() {
            return writeln!(
                f,
                "ok: {} monitors; each stored state equals a full replay of its {} events in total",
                self.monitors, self.events
            );
        }
        if let Some(loss) = &self.loss {
            writeln!(f, "data loss: {loss}")?;
        }
        for mismatch in &self.mismatches {
            writeln!(f, "mismatch: {mismatch}")?;
        }
        match &self.loss {
            Some(loss) => {
                let (from, to) = loss.missing();
                writeln!(
                    f,
                    "FAILED: acknowledged writes {from} to {to} are missing; {} of {} monitors \
                     differ from a replay of the log",
                    self.mismatches.len(),
                    self.monitors
                )
            }
            None => writeln!(
                f,
                "FAILED: {} of {} monitors differ from a replay of the log",
                self.mismatches.len(),
                self.monitors
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_says_ok_or_lists_each_mismatch() {
        let ok = CheckReport {
            monitors: 2,
            events: 7,
            loss: None,
            mismatches: Vec::new(),
        };
        assert!(ok.is_ok());
        assert_eq!(
            ok.to_string(),
            "ok: 2 monitors; each stored state equals a full replay of its 7 events in total\n"
        );
        let failed = CheckReport {
            mismatches: vec!["m1: a snapshot but no live history".to_owned()],
            ..ok
        };
        assert!(!failed.is_ok());
        assert_eq!(
            failed.to_string(),
            "mismatch: m1: a snapshot but no live history\n\
             FAILED: 1 of 2 monitors differ from a replay of the log\n"
        );
    }
}
