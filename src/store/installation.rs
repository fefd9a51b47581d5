//! The installation id: 16 random bytes under `meta/installation_id`, written durably
//! when the store is opened without one (its first start) and never changed, so the
//! alert ids made from it (`domain::alert::InstallationId`) stay the same across
//! restarts and differ between stores.

use fjall::PersistMode;

use crate::domain::alert::InstallationId;

use super::{EventStore, Handles, StoreError, layout};

/// Writes a fresh installation id, durably, unless the store has one. Called when
/// the store is opened to serve (`open.rs`), before the writer starts, so nothing
/// races it; a store opened to inspect (`pushmon check`) is not written to.
pub(super) fn create_if_missing(handles: &Handles) -> Result<(), StoreError> {
    if handles.meta.get(layout::META_INSTALLATION_ID)?.is_some() {
        return Ok(());
    }
    let id = InstallationId::from_random_bytes(rand::random());
    let mut batch = handles.db.batch().durability(Some(PersistMode::SyncData));
    batch.insert(&handles.meta, layout::META_INSTALLATION_ID, *id.as_bytes());
    batch.commit()?;
    Ok(())
}

impl EventStore {
    /// This store's installation id. Blocking (one small read).
    pub fn installation_id(&self) -> Result<InstallationId, StoreError> {
        let value = self
            .shared
            .handles()?
            .meta
            .get(layout::META_INSTALLATION_ID)?
            .ok_or_else(|| StoreError::Corrupt("the installation id is missing".to_owned()))?;
        let bytes: [u8; 16] = value
            .as_ref()
            .try_into()
            .map_err(|_| StoreError::Corrupt("the installation id is not 16 bytes".to_owned()))?;
        Ok(InstallationId::from_bytes(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_installation_id_survives_reopening_and_differs_between_stores() {
        let id_of = |dir: &std::path::Path| {
            let opened = EventStore::open(dir).expect("opens");
            let id = opened.store.installation_id().expect("has an id");
            drop(opened.store);
            opened.writer_thread.join().expect("writer stops");
            id
        };
        let first = tempfile::tempdir().expect("temp dir");
        let second = tempfile::tempdir().expect("temp dir");
        let id = id_of(first.path());
        assert_eq!(id_of(first.path()), id, "kept across a reopen");
        assert_ne!(id_of(second.path()), id, "another store, another id");
    }
}
