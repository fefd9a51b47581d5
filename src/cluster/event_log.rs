//! The event log: the [`EventLog`] trait every write of an event goes through, and its
//! two implementations, chosen once at start ([`Log::new`]):
//!
//! - [`FjallLog`] (a single node, the default): the write is appended durably through
//!   the store's writer (one batch, one `fdatasync` for everything waiting), which
//!   hands plain heartbeats to their monitors' inboxes once durable; what the caller
//!   keeps in memory changes once the write is durable.
//! - [`ShardLogs`] (the clustered mode, `--cluster-nats`): the write is a record
//!   published to its shard's JetStream log and answered once its PubAck arrived; a
//!   change the caller reads back (a creation, a command, a channel, an API key...)
//!   also waits until this pod's fold applied it, as every pod's fold does. Its lower
//!   layer is [`Replication`], the clustered engine's publisher
//!   (`app/cluster/engine.rs`: a publisher per stream over
//!   `cluster::log::JetStreamLog`, and the folds). Before the pod has joined, every
//!   write answers 503.
//!
//! Each kind of write is a [`Write`]: how it is made on either backend, side by side
//! (`monitor/registry*.rs` for monitors' heartbeats, signals, creations, commands and
//! bulk changes; `monitor/actor.rs` for deadline verdicts; `monitor/outcomes.rs` for
//! delivery outcomes; `alert/channels.rs` for channels; `http/replicated.rs` for API
//! keys, badges and status pages). The clustered mode's fold writes what it reads to
//! each pod's copy straight to the store: that copy is not the log of record. Callers hand their writes to [`EventLog::write`] and do
//! not know which backend runs. A new kind of write implements [`Write`].
//!
//! [`Log`] dispatches statically (an enum, not a trait object): a single push costs
//! no allocation and no lock for the choice.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};

use crate::domain::fence::{Sequence, ShardRecord};
use crate::domain::ids::MonitorId;
use crate::store::EventStore;

/// One kind of write, as each backend makes it. `to_store` and `to_shards` must
/// answer alike for the same writes (the same statuses, the same state afterwards):
/// only where the event is made durable differs.
pub trait Write: Send {
    /// What the caller hears.
    type Output: Send;

    /// A single node: appended durably through the store's writer (or by the actor
    /// that owns the monitor, which appends through it), then applied here.
    fn to_store(self, store: &EventStore) -> impl Future<Output = Self::Output> + Send;

    /// The clustered mode: published to its shard's log through `shards` (answered
    /// once acknowledged, and for what the caller reads back, once this pod's fold
    /// applied it).
    fn to_shards(self, shards: &Arc<dyn Replication>) -> impl Future<Output = Self::Output> + Send;

    /// The clustered mode before the pod joined: nothing is written (503).
    fn not_joined(self) -> Self::Output;
}

/// The log every write of an event goes through.
pub trait EventLog: Send + Sync {
    fn write<W: Write>(&self, write: W) -> impl Future<Output = W::Output> + Send;
}

/// Publishes records to their shard's log: the clustered engine's publisher
/// (`app/cluster/engine.rs`), the lower layer of [`ShardLogs`]. `Ok` (the record's
/// sequence) only once the record's PubAck arrived.
pub trait Replication: Send + Sync + 'static {
    fn publish(
        &self,
        record: ShardRecord,
    ) -> Pin<Box<dyn Future<Output = Result<Sequence, String>> + Send + 'static>>;

    /// Waits until this pod's fold of `monitor`'s shard has applied its log up to
    /// `sequence`; `false` if it did not within a few seconds.
    fn applied(
        &self,
        monitor: MonitorId,
        sequence: Sequence,
    ) -> Pin<Box<dyn Future<Output = bool> + Send + 'static>>;

    /// Publishes `record` (a channel's change, an API key's, a badge's or a status
    /// page's) and waits until this pod's fold applied it (read your writes).
    fn publish_applied(
        &self,
        record: ShardRecord,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'static>>;
}

/// The single node's log: the fjall store.
pub struct FjallLog {
    store: EventStore,
}

impl EventLog for FjallLog {
    fn write<W: Write>(&self, write: W) -> impl Future<Output = W::Output> + Send {
        write.to_store(&self.store)
    }
}

/// The clustered mode's log: the shard logs, through the engine's publisher once the
/// pod has joined (the first one set stays).
#[derive(Default)]
pub struct ShardLogs {
    publisher: OnceLock<Arc<dyn Replication>>,
}

impl ShardLogs {
    pub fn join(&self, publisher: Arc<dyn Replication>) {
        let _ = self.publisher.set(publisher);
    }
}

impl EventLog for ShardLogs {
    async fn write<W: Write>(&self, write: W) -> W::Output {
        match self.publisher.get() {
            Some(publisher) => write.to_shards(publisher).await,
            None => write.not_joined(),
        }
    }
}

/// The log this process writes to, chosen once at start; shared by the registry, the
/// channels, the API keys and the publications.
pub enum Log {
    Fjall(FjallLog),
    Shards(ShardLogs),
}

impl Log {
    /// The fjall store on a single node; the shard logs in the clustered mode (every
    /// write answers 503 until [`Self::join`]).
    pub fn new(store: EventStore, clustered: bool) -> Arc<Self> {
        Arc::new(if clustered {
            Self::Shards(ShardLogs::default())
        } else {
            Self::Fjall(FjallLog { store })
        })
    }

    pub fn is_clustered(&self) -> bool {
        matches!(self, Self::Shards(_))
    }

    /// The clustered mode: the publisher of the pod, once joined. Nothing on a single
    /// node.
    pub fn join(&self, publisher: Arc<dyn Replication>) {
        if let Self::Shards(shards) = self {
            shards.join(publisher);
        }
    }
}

impl EventLog for Log {
    async fn write<W: Write>(&self, write: W) -> W::Output {
        match self {
            Self::Fjall(log) => log.write(write).await,
            Self::Shards(log) => log.write(write).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::domain::api_key::{ApiKey, ApiKeyId, Scope};
    use crate::domain::ids::Timestamp;
    use crate::store::ApiKeyChange;

    fn key() -> ApiKey {
        ApiKey {
            id: ApiKeyId::from_bytes([7; 16]),
            name: "grafana".to_owned(),
            scope: Scope::Read,
            created_at: Timestamp::from_millis(1_800_000_000_000),
            digest: [9; 32],
        }
    }

    /// An API key's creation, written as each backend writes it.
    struct AddKey(ApiKey);

    impl Write for AddKey {
        type Output = Result<String, String>;

        async fn to_store(self, store: &EventStore) -> Self::Output {
            store
                .put_api_key(&self.0)
                .await
                .map(|()| "stored".to_owned())
                .map_err(|error| error.to_string())
        }

        async fn to_shards(self, shards: &Arc<dyn Replication>) -> Self::Output {
            let event =
                crate::store::api_keys::encode_event(&ApiKeyChange::Created(self.0.clone()))
                    .map_err(|error| error.to_string())?;
            let record = ShardRecord::ApiKey {
                key: *self.0.id.as_bytes(),
                event,
            };
            shards
                .publish_applied(record)
                .await
                .map(|()| "published".to_owned())
        }

        fn not_joined(self) -> Self::Output {
            Err("not joined".to_owned())
        }
    }

    /// A publisher that keeps what it was given.
    #[derive(Default)]
    struct Kept(Mutex<Vec<ShardRecord>>);

    impl Kept {
        fn records(&self) -> Vec<ShardRecord> {
            self.0.lock().expect("not poisoned").clone()
        }
    }

    impl Replication for Kept {
        fn publish(
            &self,
            record: ShardRecord,
        ) -> Pin<Box<dyn Future<Output = Result<Sequence, String>> + Send + 'static>> {
            let mut kept = self.0.lock().expect("not poisoned");
            kept.push(record);
            let sequence = kept.len() as Sequence;
            Box::pin(async move { Ok(sequence) })
        }

        fn applied(
            &self,
            _: MonitorId,
            _: Sequence,
        ) -> Pin<Box<dyn Future<Output = bool> + Send + 'static>> {
            Box::pin(async { true })
        }

        fn publish_applied(
            &self,
            record: ShardRecord,
        ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'static>> {
            let published = self.publish(record);
            Box::pin(async move { published.await.map(|_| ()) })
        }
    }

    /// Any log, through the trait alone.
    async fn add_key(log: &impl EventLog) -> Result<String, String> {
        log.write(AddKey(key())).await
    }

    #[tokio::test]
    async fn the_fjall_log_writes_to_its_store_and_the_shard_logs_publish_once_joined() {
        let dir = tempfile::tempdir().expect("tempdir");
        let opened = EventStore::open(dir.path()).expect("opens");
        let store = opened.store.clone();

        let on_store = FjallLog {
            store: store.clone(),
        };
        assert_eq!(add_key(&on_store).await, Ok("stored".to_owned()));
        let reader = store.clone();
        let stored = tokio::task::spawn_blocking(move || reader.load_api_keys())
            .await
            .expect("read task")
            .expect("reads");
        assert_eq!(stored, vec![key()]);

        let shards = ShardLogs::default();
        assert_eq!(add_key(&shards).await, Err("not joined".to_owned()));
        let (first, second) = (Arc::new(Kept::default()), Arc::new(Kept::default()));
        shards.join(Arc::clone(&first) as Arc<dyn Replication>);
        shards.join(Arc::clone(&second) as Arc<dyn Replication>);
        assert_eq!(add_key(&shards).await, Ok("published".to_owned()));
        assert!(matches!(
            first.records().as_slice(),
            [ShardRecord::ApiKey { key, .. }] if *key == [7; 16]
        ));
        assert!(second.records().is_empty(), "the first publisher stays");
    }

    #[tokio::test]
    async fn the_log_chosen_at_start_is_the_one_written_to() {
        let dir = tempfile::tempdir().expect("tempdir");
        let opened = EventStore::open(dir.path()).expect("opens");
        let store = opened.store.clone();

        let single = Log::new(store.clone(), false);
        assert!(!single.is_clustered());
        let ignored = Arc::new(Kept::default());
        // Joining means nothing on a single node.
        single.join(Arc::clone(&ignored) as Arc<dyn Replication>);
        assert_eq!(add_key(&*single).await, Ok("stored".to_owned()));
        assert!(ignored.records().is_empty());

        let clustered = Log::new(store.clone(), true);
        assert!(clustered.is_clustered());
        assert_eq!(add_key(&*clustered).await, Err("not joined".to_owned()));
        let publisher = Arc::new(Kept::default());
        clustered.join(Arc::clone(&publisher) as Arc<dyn Replication>);
        assert_eq!(add_key(&*clustered).await, Ok("published".to_owned()));
        assert_eq!(publisher.records().len(), 1);
    }
}
