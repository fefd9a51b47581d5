//! [`PublisherSlot`]: whether a part of the state (the registry, the channels, the API
//! keys and publications) changes through the shard logs, and its publisher once the
//! pod has joined the cluster. One shape for every part that publishes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

pub struct PublisherSlot<T: ?Sized> {
    clustered: AtomicBool,
    publisher: OnceLock<Arc<T>>,
}

impl<T: ?Sized> Default for PublisherSlot<T> {
    fn default() -> Self {
        Self {
            clustered: AtomicBool::new(false),
            publisher: OnceLock::new(),
        }
    }
}

impl<T: ?Sized> PublisherSlot<T> {
    /// The clustered mode: changes are published (refused until [`Self::set`]).
    pub fn set_clustered(&self) {
        self.clustered.store(true, Ordering::Release);
    }

    /// The publisher, once the pod has joined (the first one set stays).
    pub fn set(&self, publisher: Arc<T>) {
        let _ = self.publisher.set(publisher);
    }

    /// `None` single-node; clustered, the publisher, or `Some(None)` before the pod
    /// joined.
    pub fn get(&self) -> Option<Option<Arc<T>>> {
        if !self.clustered.load(Ordering::Acquire) {
            return None;
        }
        Some(self.publisher.get().cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_node_until_clustered_then_unjoined_until_set() {
        let slot = PublisherSlot::<str>::default();
        assert!(slot.get().is_none());
        slot.set_clustered();
        assert_eq!(slot.get(), Some(None));
        slot.set(Arc::from("first"));
        slot.set(Arc::from("second"));
        assert_eq!(slot.get().flatten().as_deref(), Some("first"));
    }
}
