//! Opening the store: the data directory, fjall's database in `<data-dir>/fjall`, the
//! comparison with the high-water mark (`mark.rs`), and the errors an operator sees
//! when any of it fails, each saying what is wrong and what to do.
//!
//! A store whose log ends before its mark lost acknowledged writes. The server then
//! refuses to start ([`OpenError::DataLoss`]) unless it is told to accept the loss
//! (`--accept-data-loss`): then it raises the sequence counter to the mark first, so
//! no sequence number is ever used twice (alert ids end in one).
//! `pushmon check` opens the store to inspect it: it reports the loss instead
//! ([`Opened::loss`]) and never writes the mark.

use std::fmt;
use std::path::{Path, PathBuf};

use fjall::PersistMode;

use crate::cli::setting;

use super::mark::{self, Behind, Ks, Mark};
use super::{Handles, StoreError, layout};

/// How the store is opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpenOptions {
    /// Start even if the store lost acknowledged writes (`--accept-data-loss`).
    pub accept_data_loss: bool,
    /// Open to inspect (`pushmon check`): report a loss instead of refusing, create
    /// no store, write no mark.
    pub inspect: bool,
}

impl OpenOptions {
    /// How `pushmon check` opens a store.
    pub fn inspect() -> Self {
        Self {
            accept_data_loss: false,
            inspect: true,
        }
    }
}

/// Why the store did not open.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(
        "{} is not a directory: point --{} ({}) at a directory (it is created if missing)",
        .0.display(), setting::DATA_DIR.flag, setting::DATA_DIR.env
    )]
    NotADirectory(PathBuf),
    #[error(
        "cannot write to the data directory {} (permission denied for user id {uid}): make it \
         writable by that user (e.g. `chown -R {uid} {}`), or point --{} at another directory",
        .path.display(), .path.display(), setting::DATA_DIR.flag
    )]
    PermissionDenied { path: PathBuf, uid: u32 },
    #[error(
        "cannot create the data directory {} (permission denied for user id {uid}): create it \
         writable by that user (e.g. `mkdir -p {} && chown {uid} {}`), or point --{} at \
         another directory",
        .path.display(), .path.display(), .path.display(), setting::DATA_DIR.flag
    )]
    CannotCreate { path: PathBuf, uid: u32 },
    #[error(
        "the data directory {} is on a read-only filesystem: pushmon writes every heartbeat \
         there; mount it read-write, or point --{} at another directory",
        .0.display(), setting::DATA_DIR.flag
    )]
    ReadOnly(PathBuf),
    #[error(
        "the store in {} is in use by another process, most likely a running pushmon server: \
         stop that server first (`pushmon check` needs a stopped server, or a copy of its \
         data directory); two servers never share a data directory",
        .0.display()
    )]
    Locked(PathBuf),
    #[error("there is no store in {}: nothing to check (is --{} right?)", .0.display(), setting::DATA_DIR.flag)]
    NoStore(PathBuf),
    #[error(
        "cannot read the high-water mark {}: {reason}; it records how far the store's writes \
         were durable, so the store cannot be checked for lost writes. Restore the data \
         directory from a backup, or start once with --{} to write a new mark from what \
         the store holds",
        .path.display(), setting::ACCEPT_DATA_LOSS.flag
    )]
    MarkUnreadable { path: PathBuf, reason: String },
    #[error("{0}")]
    DataLoss(Box<DataLoss>),
    #[error(
        "the journal of the store in {} is damaged ({reason}) and cannot be recovered: \
         restore the whole data directory from a backup (docs/operations.md, \"Backup and \
         restore\")",
        .store.display()
    )]
    JournalDamaged { store: PathBuf, reason: String },
    #[error("cannot open the store in {}: {error}", .path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Acknowledged writes missing from the store: what its mark says was durable, and
/// what the store holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataLoss {
    /// fjall's directory.
    pub store: PathBuf,
    /// The mark's file.
    pub mark_file: PathBuf,
    /// The whole store directory is gone.
    pub store_missing: bool,
    /// The keyspaces behind the mark.
    pub behind: Vec<Behind>,
    /// The journal files found: their sizes, and the bytes they take on disk (fjall
    /// makes its journal a sparse file of 64 MiB).
    pub journals: Vec<(PathBuf, u64, u64)>,
}

impl DataLoss {
    /// The sequence numbers lost: from the lowest marker behind, to the highest mark.
    pub fn missing(&self) -> (u64, u64) {
        let from = self.behind.iter().map(|b| b.recovered).min().unwrap_or(0) + 1;
        let to = self.behind.iter().map(|b| b.marked).max().unwrap_or(0);
        (from, to)
    }
}

impl fmt::Display for DataLoss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (from, to) = self.missing();
        let flag = setting::ACCEPT_DATA_LOSS.flag;
        if self.store_missing {
            return write!(
                f,
                "the store directory {} is missing, but the high-water mark {} says writes up \
                 to sequence number {to} were durable: every monitor, channel, API key and \
                 owed alert is gone. Restore the whole data directory from a backup \
                 (docs/operations.md, \"Backup and restore\"), or start with --{flag} to start \
                 an empty store (sequence numbers continue above {to})",
                self.store.display(),
                self.mark_file.display(),
            );
        }
        let keyspaces: Vec<String> = self
            .behind
            .iter()
            .map(|behind| {
                format!(
                    "{} at {} (mark: {})",
                    behind.keyspace, behind.recovered, behind.marked
                )
            })
            .collect();
        let journals = if self.journals.is_empty() {
            "none".to_owned()
        } else {
            self.journals
                .iter()
                .map(|(path, size, on_disk)| {
                    format!("{} ({size} bytes, {on_disk} on disk)", path.display())
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        write!(
            f,
            "acknowledged writes are missing from the store in {}: the high-water mark {} \
             says writes up to sequence number {to} were durable, but these keyspaces of the \
             store end earlier: {}; sequence numbers \
             {from} to {to} are lost (their events, states, channels, keys or owed alerts). \
             Journal files: {journals}: the journal was probably truncated, damaged or \
             deleted. Restore the whole data directory from a backup (docs/operations.md, \
             \"Backup and restore\"), or start once with --{flag} to run with what is left \
             (sequence numbers continue above {to})",
            self.store.display(),
            self.mark_file.display(),
            keyspaces.join(", "),
        )
    }
}

/// A store opened and checked against its mark.
pub(super) struct Checked {
    pub(super) handles: Handles,
    /// Each keyspace's marker, after any accepted loss raised the counter.
    pub(super) recovered: mark::Seqs,
    /// The loss found, when inspecting.
    pub(super) loss: Option<DataLoss>,
}

/// Opens fjall in `data_dir` and checks it against the mark; writes the mark unless
/// inspecting.
pub(super) fn open_checked(data_dir: &Path, options: OpenOptions) -> Result<Checked, OpenError> {
    prepare(data_dir, options)?;
    let store = data_dir.join("fjall");
    let mark = mark::read(data_dir).map_err(|error| OpenError::MarkUnreadable {
        path: data_dir.join(mark::FILE),
        reason: error.to_string(),
    });
    let mark = match mark {
        Ok(mark) => mark,
        // With the loss accepted, a new mark is written from what the store holds.
        Err(unreadable) if options.accept_data_loss && !options.inspect => {
            tracing::error!(
                "{unreadable}; starting anyway as --{} says",
                setting::ACCEPT_DATA_LOSS.flag
            );
            None
        }
        Err(unreadable) => return Err(unreadable),
    };
    // fjall writes its `version` file first when it creates a database.
    let exists = store.join("version").exists();
    if !exists {
        if let Some(mark) = mark.as_ref().filter(|mark| mark.seqs.max() > 0) {
            let loss = DataLoss {
                store: store.clone(),
                mark_file: data_dir.join(mark::FILE),
                store_missing: true,
                behind: mark::behind(mark, &mark::Seqs::default()),
                journals: Vec::new(),
            };
            if options.inspect || !options.accept_data_loss {
                return Err(OpenError::DataLoss(Box::new(loss)));
            }
            tracing::error!(
                "{loss}; starting an empty store as --{} says",
                setting::ACCEPT_DATA_LOSS.flag
            );
        } else if options.inspect {
            return Err(OpenError::NoStore(data_dir.to_owned()));
        }
    }
    // Before fjall opens: it creates a journal when none is left.
    let journals_found = journals(&store);
    let handles = Handles::open(&store).map_err(|error| classify(data_dir, error))?;
    let mut recovered = handles.markers()?;
    let behind = mark
        .as_ref()
        .map(|mark| mark::behind(mark, &recovered))
        .unwrap_or_default();
    let mut loss = None;
    if exists && !behind.is_empty() {
        let found = DataLoss {
            store: store.clone(),
            mark_file: data_dir.join(mark::FILE),
            store_missing: false,
            behind,
            journals: journals_found,
        };
        if options.inspect {
            loss = Some(found);
        } else if options.accept_data_loss {
            tracing::error!(
                "{found}; starting with what is left as --{} says",
                setting::ACCEPT_DATA_LOSS.flag
            );
        } else {
            return Err(OpenError::DataLoss(Box::new(found)));
        }
    }
    if loss.is_none() {
        make_replayable(&handles)?;
        recovered = handles.markers()?;
    }
    if !options.inspect {
        rewrite_outdated_snapshots(&handles)?;
    }
    if !options.inspect {
        // Before the writer starts, so nothing races it. Unnumbered, like
        // `replayable_from`: written before every later `meta` write, it cannot be lost
        // without them, and losing those is what the mark catches.
        super::installation::create_if_missing(&handles)?;
        super::ping_key::create_if_missing(&handles)?;
        // Never below the mark: a sequence number is never used twice.
        let floor = mark.as_ref().map_or(0, |mark| mark.seqs.max());
        if floor > recovered.max() {
            let mut batch = handles.db.batch().durability(Some(PersistMode::SyncData));
            batch.insert(&handles.meta, layout::META_LAST_SEQ, floor.to_be_bytes());
            batch.commit().map_err(|error| classify(data_dir, error))?;
            recovered.set(Ks::Meta, floor);
        }
        let fresh = Mark {
            seqs: recovered,
            acknowledged_before: None,
        };
        mark::write(data_dir, &fresh).map_err(|error| classify_io(data_dir, error))?;
    }
    Ok(Checked {
        handles,
        recovered,
        loss,
    })
}

/// Once per store, on the first open by a version with a newer snapshot format:
/// rewrites each snapshot of an older format in the current one, rebuilt from its
/// monitor's log when its upcast cannot be whole (`read::state_from`), so readers
/// rebuild or upcast it once, not at every read. One durable batch; a crash before it is done leaves the old
/// snapshots, which the next open rewrites.
fn rewrite_outdated_snapshots(handles: &Handles) -> Result<(), StoreError> {
    let mut batch = handles.db.batch().durability(Some(PersistMode::SyncData));
    let mut rewritten = 0usize;
    for guard in handles.monitors.range(layout::FIRST_RECORD..) {
        let (key, value) = guard.into_inner()?;
        if super::codec::is_current(&value) {
            continue;
        }
        let state = super::read::state_from(&handles.events, &value)?;
        batch.insert(
            &handles.monitors,
            key,
            super::codec::encode_monitor(&state)?,
        );
        rewritten += 1;
    }
    if rewritten > 0 {
        batch.commit()?;
        tracing::info!(
            monitors = rewritten,
            "snapshots of an older format rebuilt from their logs"
        );
    }
    Ok(())
}

/// Once per store, on the first open by a version whose logs replay everything:
/// gives each API key recorded before keys had a log a `created` event, and records
/// from which sequence number alerts replay (before it, an outcome recorded for a
/// deleted monitor left no event). One durable batch.
fn make_replayable(handles: &Handles) -> Result<(), StoreError> {
    if handles.meta.get(layout::META_REPLAYABLE_FROM)?.is_some() {
        return Ok(());
    }
    let mut next = handles.markers()?.max() + 1;
    let mut batch = handles.db.batch().durability(Some(PersistMode::SyncData));
    let mut keys_written = false;
    for guard in handles.api_keys.range(layout::FIRST_RECORD..) {
        let (id, record) = guard.into_inner()?;
        let id: [u8; 16] = id
            .as_ref()
            .try_into()
            .map_err(|_| StoreError::Corrupt("malformed API key id".to_owned()))?;
        let logged = handles
            .api_key_events
            .range(layout::api_key_event_key(id, 0)..=layout::api_key_event_key(id, u64::MAX))
            .next()
            .is_some();
        if !logged {
            let key = super::api_keys::decode(&record)?;
            let event =
                super::api_keys::encode_event(&super::api_keys::ApiKeyChange::Created(key))?;
            batch.insert(
                &handles.api_key_events,
                layout::api_key_event_key(id, next),
                event,
            );
            next += 1;
            keys_written = true;
        }
    }
    if keys_written {
        batch.insert(
            &handles.api_key_events,
            layout::MARKER,
            (next - 1).to_be_bytes(),
        );
        tracing::info!("API keys recorded before keys had a log were given their creation event");
    }
    batch.insert(
        &handles.meta,
        layout::META_LAST_SEQ,
        (next - 1).to_be_bytes(),
    );
    batch.insert(
        &handles.meta,
        layout::META_REPLAYABLE_FROM,
        next.to_be_bytes(),
    );
    batch.commit()?;
    Ok(())
}

/// Makes sure `data_dir` is a directory (creating it unless inspecting).
fn prepare(data_dir: &Path, options: OpenOptions) -> Result<(), OpenError> {
    match std::fs::metadata(data_dir) {
        Ok(metadata) if metadata.is_dir() => Ok(()),
        Ok(_) => Err(OpenError::NotADirectory(data_dir.to_owned())),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            if options.inspect {
                return Err(OpenError::NoStore(data_dir.to_owned()));
            }
            std::fs::create_dir_all(data_dir).map_err(|error| match classify_io(data_dir, error) {
                OpenError::PermissionDenied { path, uid } => OpenError::CannotCreate { path, uid },
                other => other,
            })
        }
        Err(error) => Err(classify_io(data_dir, error)),
    }
}

fn classify(data_dir: &Path, error: fjall::Error) -> OpenError {
    match error {
        fjall::Error::Locked => OpenError::Locked(data_dir.to_owned()),
        fjall::Error::JournalRecovery(reason) => OpenError::JournalDamaged {
            store: data_dir.join("fjall"),
            reason: format!("{reason:?}"),
        },
        fjall::Error::Io(error) => classify_io(data_dir, error),
        other => OpenError::Store(StoreError::from(other)),
    }
}

fn classify_io(data_dir: &Path, error: std::io::Error) -> OpenError {
    use std::io::ErrorKind;
    match error.kind() {
        ErrorKind::PermissionDenied => OpenError::PermissionDenied {
            path: data_dir.to_owned(),
            uid: rustix::process::getuid().as_raw(),
        },
        ErrorKind::ReadOnlyFilesystem => OpenError::ReadOnly(data_dir.to_owned()),
        ErrorKind::NotADirectory | ErrorKind::AlreadyExists => {
            OpenError::NotADirectory(data_dir.to_owned())
        }
        _ => OpenError::Io {
            path: data_dir.to_owned(),
            error,
        },
    }
}

/// fjall's journal files in `store`, with their sizes and the bytes they take on disk.
fn journals(store: &Path) -> Vec<(PathBuf, u64, u64)> {
    use std::os::unix::fs::MetadataExt as _;
    let mut found: Vec<(PathBuf, u64, u64)> = std::fs::read_dir(store)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| entry.path().extension().is_some_and(|ext| ext == "jnl"))
        .map(|entry| {
            let (size, on_disk) = entry
                .metadata()
                .map_or((0, 0), |metadata| (metadata.len(), metadata.blocks() * 512));
            (entry.path(), size, on_disk)
        })
        .collect();
    found.sort();
    found
}
