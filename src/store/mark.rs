//! The high-water mark: a small file beside fjall's directory,
//! `<data-dir>/high-water-mark`, that records how far each keyspace's writes were
//! durable, as a database keeps a checkpoint apart from its log. fjall recovers a
//! truncated, damaged or deleted journal silently (it keeps the longest valid prefix,
//! or starts empty); comparing what it recovered with the mark turns that into a
//! refusal to start that names what is missing (`open.rs`).
//!
//! Each keyspace holds a marker, the sequence number of the last batch that wrote to
//! it (`layout::MARKER`; `meta` has `last_seq`). Keyspaces are flushed from the
//! journal independently, so one can lose a suffix of its writes while another keeps
//! them: the mark records every keyspace's marker, and a keyspace whose recovered
//! marker is below its mark lost acknowledged writes.
//!
//! The mark only ever holds values that are durable in fjall. The writer hands it
//! the markers of a successful batch once a second (with the server's alive time, so
//! without an fsync more per push) and at shutdown; the [`Keeper`] thread writes it
//! atomically (temp file, fsync, rename, fsync of the directory). So a write
//! acknowledged before the alive time a mark carries is covered by it; losing what
//! was acknowledged in the last second or so before a crash is not detected.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use serde::{Deserialize, Serialize};

use crate::domain::ids::Timestamp;

use super::layout;

/// The mark's file name, in the data directory (beside `fjall/`).
pub const FILE: &str = "high-water-mark";

/// The file's format, in its `format` field.
const FORMAT: u32 = 1;

/// A keyspace, as the writer tracks its marker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Ks {
    Meta,
    Events,
    Monitors,
    Outbox,
    Channels,
    ChannelEvents,
    ApiKeys,
    ApiKeyEvents,
    Publications,
    PublicationEvents,
}

pub(super) const KEYSPACE_COUNT: usize = 10;

impl Ks {
    pub(super) const ALL: [Ks; KEYSPACE_COUNT] = [
        Ks::Meta,
        Ks::Events,
        Ks::Monitors,
        Ks::Outbox,
        Ks::Channels,
        Ks::ChannelEvents,
        Ks::ApiKeys,
        Ks::ApiKeyEvents,
        Ks::Publications,
        Ks::PublicationEvents,
    ];

    pub(super) fn name(self) -> &'static str {
        match self {
            Ks::Meta => layout::META,
            Ks::Events => layout::EVENTS,
            Ks::Monitors => layout::MONITORS,
            Ks::Outbox => layout::OUTBOX,
            Ks::Channels => layout::CHANNELS,
            Ks::ChannelEvents => layout::CHANNEL_EVENTS,
            Ks::ApiKeys => layout::API_KEYS,
            Ks::ApiKeyEvents => layout::API_KEY_EVENTS,
            Ks::Publications => layout::PUBLICATIONS,
            Ks::PublicationEvents => layout::PUBLICATION_EVENTS,
        }
    }
}

/// One sequence number per keyspace: its marker.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Seqs([u64; KEYSPACE_COUNT]);

impl Seqs {
    pub(super) fn get(&self, keyspace: Ks) -> u64 {
        self.0[keyspace as usize]
    }

    pub(super) fn set(&mut self, keyspace: Ks, seq: u64) {
        self.0[keyspace as usize] = seq;
    }

    /// The highest sequence number any keyspace holds.
    pub fn max(&self) -> u64 {
        self.0.iter().copied().max().unwrap_or(0)
    }
}

/// What the mark file says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mark {
    pub seqs: Seqs,
    /// Every write acknowledged before this moment is at or below `seqs`; `None`
    /// when the mark was written at start-up.
    pub acknowledged_before: Option<Timestamp>,
}

/// The file's layout (JSON, so an operator or a script can read it).
#[derive(Serialize, Deserialize)]
struct MarkFile {
    format: u32,
    /// The highest sequence number acknowledged.
    last_seq: u64,
    /// Each keyspace's marker.
    keyspaces: BTreeMap<String, u64>,
    /// Unix milliseconds; see [`Mark::acknowledged_before`].
    #[serde(default)]
    acknowledged_before_ms: Option<i64>,
}

/// Why the mark file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum MarkError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("not a high-water mark: {0}")]
    Format(String),
}

/// The mark in `data_dir`, or `None` if there is none.
pub fn read(data_dir: &Path) -> Result<Option<Mark>, MarkError> {
    let bytes = match std::fs::read(data_dir.join(FILE)) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error.into()),
    };
    let file: MarkFile =
        serde_json::from_slice(&bytes).map_err(|error| MarkError::Format(error.to_string()))?;
    if file.format != FORMAT {
        return Err(MarkError::Format(format!(
            "format {} (this version reads {FORMAT})",
            file.format
        )));
    }
    let mut seqs = Seqs::default();
    for keyspace in Ks::ALL {
        // A keyspace the mark does not name had not been written when it was.
        seqs.set(
            keyspace,
            file.keyspaces.get(keyspace.name()).copied().unwrap_or(0),
        );
    }
    // `last_seq` is the highest marker, kept for readers of the file; an older
    // layout might have had only it.
    let meta = seqs.get(Ks::Meta).max(file.last_seq);
    seqs.set(Ks::Meta, meta);
    Ok(Some(Mark {
        seqs,
        acknowledged_before: file.acknowledged_before_ms.map(Timestamp::from_millis),
    }))
}

/// Writes `mark` into `data_dir` atomically and durably: a temp file, fsynced, renamed
/// over the old one, then the directory fsynced.
pub fn write(data_dir: &Path, mark: &Mark) -> std::io::Result<()> {
    let file = MarkFile {
        format: FORMAT,
        last_seq: mark.seqs.max(),
        keyspaces: Ks::ALL
            .iter()
            .map(|keyspace| (keyspace.name().to_owned(), mark.seqs.get(*keyspace)))
            .collect(),
        acknowledged_before_ms: mark.acknowledged_before.map(Timestamp::as_millis),
    };
    let mut text = serde_json::to_vec_pretty(&file).map_err(std::io::Error::other)?;
    text.push(b'\n');
    let temp = data_dir.join(format!("{FILE}.tmp"));
    let mut out = std::fs::File::create(&temp)?;
    out.write_all(&text)?;
    out.sync_all()?;
    drop(out);
    std::fs::rename(&temp, data_dir.join(FILE))?;
    std::fs::File::open(data_dir)?.sync_all()
}

/// A keyspace whose recovered marker is below its mark.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Behind {
    pub keyspace: &'static str,
    /// Its marker in the store.
    pub recovered: u64,
    /// Its marker in the mark.
    pub marked: u64,
}

/// The keyspaces of `recovered` that are behind `mark`.
pub fn behind(mark: &Mark, recovered: &Seqs) -> Vec<Behind> {
    Ks::ALL
        .iter()
        .filter(|keyspace| recovered.get(**keyspace) < mark.seqs.get(**keyspace))
        .map(|keyspace| Behind {
            keyspace: keyspace.name(),
            recovered: recovered.get(*keyspace),
            marked: mark.seqs.get(*keyspace),
        })
        .collect()
}

/// The thread that writes the marks the writer hands it, so that the writer never
/// waits for the mark's fsyncs. Marks that queue up meanwhile are skipped for the
/// newest.
pub(super) struct Keeper {
    marks: mpsc::Sender<Mark>,
    thread: std::thread::JoinHandle<()>,
}

impl Keeper {
    pub(super) fn start(data_dir: PathBuf) -> std::io::Result<Self> {
        let (marks, receiver) = mpsc::channel::<Mark>();
        let thread = std::thread::Builder::new()
            .name("pushmon-mark".to_owned())
            .spawn(move || {
                let mut failing = false;
                while let Ok(mut mark) = receiver.recv() {
                    while let Ok(newer) = receiver.try_recv() {
                        mark = newer;
                    }
                    match write(&data_dir, &mark) {
                        Ok(()) if failing => {
                            failing = false;
                            tracing::info!("the high-water mark is written again");
                        }
                        Ok(()) => {}
                        Err(error) if !failing => {
                            failing = true;
                            tracing::warn!(%error, file = %data_dir.join(FILE).display(), "cannot write the high-water mark; a truncated journal may go unnoticed until it is written again");
                        }
                        Err(_) => {}
                    }
                }
            })?;
        Ok(Self { marks, thread })
    }

    /// Hands `mark` to the thread; never blocks.
    pub(super) fn keep(&self, mark: Mark) {
        let _ = self.marks.send(mark);
    }

    /// Writes what is queued, then stops the thread.
    pub(super) fn finish(self) {
        drop(self.marks);
        let _ = self.thread.join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seqs(values: [u64; KEYSPACE_COUNT]) -> Seqs {
        Seqs(values)
    }

    #[test]
    fn a_mark_round_trips_through_its_file_and_a_bad_one_is_an_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert!(read(dir.path()).expect("no mark is fine").is_none());
        let mark = Mark {
            seqs: seqs([90, 88, 88, 12, 5, 5, 0, 0, 7, 7]),
            acknowledged_before: Some(Timestamp::from_millis(1_800_000_000_000)),
        };
        write(dir.path(), &mark).expect("writes");
        assert_eq!(read(dir.path()).expect("reads"), Some(mark));
        let text = std::fs::read_to_string(dir.path().join(FILE)).expect("a file");
        assert!(text.contains("\"last_seq\": 90"), "{text}");
        assert!(!dir.path().join(format!("{FILE}.tmp")).exists());

        std::fs::write(dir.path().join(FILE), "{\"format\": 1, \"last_").expect("write");
        assert!(matches!(read(dir.path()), Err(MarkError::Format(_))));
    }

    #[test]
    fn a_keyspace_is_behind_only_when_its_marker_is_below_the_mark() {
        let mark = Mark {
            seqs: seqs([90, 88, 88, 12, 5, 5, 0, 0, 7, 7]),
            acknowledged_before: None,
        };
        assert!(behind(&mark, &mark.seqs).is_empty());
        assert!(behind(&mark, &seqs([95, 91, 88, 12, 5, 5, 3, 3, 7, 8])).is_empty());
        let lost = behind(&mark, &seqs([40, 88, 39, 12, 5, 5, 0, 0, 7, 7]));
        assert_eq!(
            lost,
            [
                Behind {
                    keyspace: "meta",
                    recovered: 40,
                    marked: 90
                },
                Behind {
                    keyspace: "monitors",
                    recovered: 39,
                    marked: 88
                }
            ]
        );
    }
}
