//! Supervision: a monitor actor that dies is restarted from its stored state, and
//! stays reachable (as restarting, never as unknown) while it is.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use crate::alert::{
    AddressPolicy, Channels, DigestPolicy, Dispatcher, Notifier, NotifierSettings, RetryPolicy,
};
use crate::clock::Clock;
use crate::domain::event::{DeliveryOutcome, Heartbeat, HeartbeatText, MonitorConfig, PushStatus};
use crate::domain::ids::ChannelId;
use crate::domain::machine::Status;
use crate::store::EventStore;

use super::Registry;

#[tokio::test]
async fn a_killed_monitor_actor_is_restarted_from_its_stored_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opened = EventStore::open(dir.path()).expect("opens");
    let store = opened.store.clone();
    let channels = Channels::new(
        store.clone(),
        vec![],
        Clock::system(),
        crate::cluster::event_log::Log::new(store.clone(), false),
    );
    let notifier = Notifier::new(NotifierSettings {
        public_url: "http://127.0.0.1:1".to_owned(),
        timeout: Duration::from_secs(1),
        installation: store.installation_id().expect("installation id"),
        addresses: AddressPolicy::AllowAll,
    })
    .expect("notifier");
    let (dispatcher, _, reports) = Dispatcher::start(
        notifier,
        channels.clone(),
        RetryPolicy::default(),
        DigestPolicy::default(),
    )
    .await
    .expect("dispatcher");
    let (registry, _) = Registry::start(
        store.clone(),
        crate::cluster::event_log::Log::new(store.clone(), false),
        channels,
        dispatcher.clone(),
        Clock::system(),
        crate::monitor::GuardShared::off(),
    )
    .await
    .expect("registry");
    super::record_outcomes(registry.clone(), reports, Clock::system());

    let config = MonitorConfig::new("supervised", 3600);
    let monitor = registry.create(config).await.expect("created");
    let handle = registry
        .directory()
        .by_token(&monitor.token)
        .expect("registered");
    let heartbeat = Heartbeat {
        status: PushStatus::Up,
        msg: Some(HeartbeatText::truncated("before".to_owned())),
        value: Some(1.0),
        instance: None,
    };
    registry
        .heartbeat(&handle, heartbeat)
        .await
        .expect("durable");
    let before = registry
        .current_state(monitor.id)
        .await
        .expect("current state");
    assert_eq!(before.status, Status::Up);

    handle.actor.kill();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let restarted = loop {
        if let Some(actor) = registry.directory().by_id(monitor.id)
            && actor.get_id() != handle.actor.get_id()
        {
            break actor;
        }
        assert!(tokio::time::Instant::now() < deadline, "not restarted");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_ne!(restarted.get_id(), handle.actor.get_id());
    let after = registry
        .current_state(monitor.id)
        .await
        .expect("current state");
    assert_eq!(after, before, "restarted from exactly the stored state");

    // The token still works and reaches the new actor.
    let handle = registry
        .directory()
        .by_token(&monitor.token)
        .expect("token still registered");
    let heartbeat = Heartbeat {
        status: PushStatus::Down,
        msg: None,
        value: None,
        instance: None,
    };
    registry
        .heartbeat(&handle, heartbeat)
        .await
        .expect("durable");
    assert_eq!(
        registry
            .current_state(monitor.id)
            .await
            .expect("current state")
            .status,
        Status::Down
    );

    dispatcher.stop().await;
    registry.stop().await;
    store.close().await;
}

/// While a monitor's actor is rebuilt, the monitor stays in the Directory (by id and
/// by token): a delivery outcome recorded then must hear "unavailable, retry", not
/// "no such monitor" (which would settle the outbox entry as an orphan and lose its
/// `DeliveryRecorded` event), and a push must get 503, not 404. The rebuild used to
/// remove the entry, then await the new actor's spawn, then insert it: a thread
/// watching the Directory saw the monitor missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_monitor_being_rebuilt_never_leaves_the_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opened = EventStore::open(dir.path()).expect("opens");
    let store = opened.store.clone();
    let channels = Channels::new(
        store.clone(),
        vec![],
        Clock::system(),
        crate::cluster::event_log::Log::new(store.clone(), false),
    );
    let notifier = Notifier::new(NotifierSettings {
        public_url: "http://127.0.0.1:1".to_owned(),
        timeout: Duration::from_secs(1),
        installation: store.installation_id().expect("installation id"),
        addresses: AddressPolicy::AllowAll,
    })
    .expect("notifier");
    let (dispatcher, _, reports) = Dispatcher::start(
        notifier,
        channels.clone(),
        RetryPolicy::default(),
        DigestPolicy::default(),
    )
    .await
    .expect("dispatcher");
    let (registry, _) = Registry::start(
        store.clone(),
        crate::cluster::event_log::Log::new(store.clone(), false),
        channels,
        dispatcher.clone(),
        Clock::system(),
        crate::monitor::GuardShared::off(),
    )
    .await
    .expect("registry");
    super::record_outcomes(registry.clone(), reports, Clock::system());
    let config = MonitorConfig::new("rebuilt", 3600);
    let monitor = registry.create(config).await.expect("created");

    // A thread of its own, so it looks while the registry's task is suspended.
    let watching = Arc::new(AtomicBool::new(true));
    let (looks, misses) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let watcher = std::thread::spawn({
        let (registry, watching) = (registry.clone(), Arc::clone(&watching));
        let (looks, misses) = (Arc::clone(&looks), Arc::clone(&misses));
        let (id, token) = (monitor.id, monitor.token.clone());
        move || {
            while watching.load(Ordering::Relaxed) {
                let directory = registry.directory();
                if directory.by_id(id).is_none() || directory.by_token(&token).is_none() {
                    misses.fetch_add(1, Ordering::Relaxed);
                }
                looks.fetch_add(1, Ordering::Relaxed);
            }
        }
    });

    const REBUILDS: usize = 30;
    for _ in 0..REBUILDS {
        let old = registry.directory().by_id(monitor.id).expect("registered");
        old.kill();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(actor) = registry.directory().by_id(monitor.id)
                && actor.get_id() != old.get_id()
            {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "not rebuilt");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    watching.store(false, Ordering::Relaxed);
    watcher.join().expect("watcher");
    assert!(
        looks.load(Ordering::Relaxed) > REBUILDS,
        "the watcher hardly looked"
    );
    assert_eq!(
        misses.load(Ordering::Relaxed),
        0,
        "the monitor was missing from the Directory during {REBUILDS} rebuilds"
    );

    // An entry whose actor has stopped (as during a restart; here, once everything
    // is stopped) answers "unavailable" to a recorder, which retries. A push needs no
    // actor: it is written, and waits in the inbox the successor takes over.
    let handle = registry
        .directory()
        .by_token(&monitor.token)
        .expect("registered");
    dispatcher.stop().await;
    registry.stop().await;
    let heartbeat = Heartbeat {
        status: PushStatus::Up,
        msg: None,
        value: None,
        instance: None,
    };
    registry
        .heartbeat(&handle, heartbeat)
        .await
        .expect("written without its actor");
    let waiting = registry
        .directory()
        .inbox(monitor.id)
        .pop(false)
        .expect("waits in the inbox");
    assert_eq!(waiting.recorded.monitor, monitor.id);
    let outcome = DeliveryOutcome {
        channel: ChannelId::generate(Clock::system().now()),
        alert_seq: 1,
        attempts: 1,
        error: None,
    };
    assert!(matches!(
        registry.record_delivery(monitor.id, outcome).await,
        Err(super::RegistryError::Unavailable)
    ));
    store.close().await;
}
