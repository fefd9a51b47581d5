//! Every monitor's current state, as the dashboard's lists and counts read it: one
//! read of the store shared by the requests that come within [`FRESH_FOR`] of it, and
//! read again after any change a monitor publishes (`monitor::changes`), so a page
//! never shows a state older than the change that made it refetch. Plain heartbeats
//! publish nothing: their `last_*` fields may be up to [`FRESH_FOR`] old here.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::broadcast::error::RecvError;

use crate::domain::machine::Monitor;
use crate::monitor::changes::Changes;
use crate::store::{EventStore, StoreError};

/// How long one read of every monitor serves later requests.
pub const FRESH_FOR: Duration = Duration::from_secs(1);

/// One read of every monitor: when, at which generation, what.
type Read = (Instant, u64, Arc<Vec<Monitor>>);

pub struct Board {
    store: EventStore,
    /// Bumped by every published change.
    generation: Arc<AtomicU64>,
    /// The last read: when, at which generation, what. Held across a read, so
    /// requests arriving meanwhile wait for it instead of reading too.
    cached: tokio::sync::Mutex<Option<Read>>,
}

impl Board {
    /// A board over `store`, kept fresh by `changes` (a task that ends with them).
    pub fn new(store: EventStore, changes: &Changes) -> Self {
        let generation = Arc::new(AtomicU64::new(0));
        let bump = Arc::clone(&generation);
        let mut heard = changes.subscribe();
        tokio::spawn(async move {
            loop {
                match heard.recv().await {
                    Ok(_) | Err(RecvError::Lagged(_)) => {
                        bump.fetch_add(1, Ordering::Release);
                    }
                    Err(RecvError::Closed) => return,
                }
            }
        });
        Self {
            store,
            generation,
            cached: tokio::sync::Mutex::new(None),
        }
    }

    /// Every monitor, in id (creation) order.
    pub async fn monitors(&self) -> Result<Arc<Vec<Monitor>>, StoreError> {
        let mut cached = self.cached.lock().await;
        let generation = self.generation.load(Ordering::Acquire);
        if let Some((read_at, read_generation, monitors)) = cached.as_ref()
            && *read_generation == generation
            && read_at.elapsed() < FRESH_FOR
        {
            return Ok(Arc::clone(monitors));
        }
        let monitors = Arc::new(self.store.monitors().await?);
        *cached = Some((Instant::now(), generation, Arc::clone(&monitors)));
        Ok(monitors)
    }

    /// How many changes were published so far: what a cache of anything derived from
    /// the monitors' states compares.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Forgets the last read: the next request reads again (after a change made
    /// here, whose broadcast may not have arrived yet).
    pub async fn invalidate(&self) {
        *self.cached.lock().await = None;
    }
}
