//! Supervision: a monitor actor that dies is restarted from its stored state.

use std::time::Duration;

use crate::alert::{Channels, Dispatcher, Notifier, RetryPolicy};
use crate::clock::Clock;
use crate::domain::event::{Heartbeat, HeartbeatText, MonitorConfig, PushStatus};
use crate::domain::machine::Status;
use crate::store::EventStore;

use super::Registry;

#[tokio::test]
async fn a_killed_monitor_actor_is_restarted_from_its_stored_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opened = EventStore::open(dir.path()).expect("opens");
    let store = opened.store.clone();
    let channels = Channels::new(store.clone(), vec![], Clock::system());
    let notifier =
        Notifier::new("http://127.0.0.1:1".to_owned(), Duration::from_secs(1)).expect("notifier");
    let (dispatcher, _, reports) =
        Dispatcher::start(notifier, channels.clone(), RetryPolicy::default())
            .await
            .expect("dispatcher");
    let (registry, _) =
        Registry::start(store.clone(), channels, dispatcher.clone(), Clock::system())
            .await
            .expect("registry");
    super::record_outcomes(registry.clone(), store.clone(), reports);

    let config = MonitorConfig {
        name: "supervised".to_owned(),
        timeout_seconds: 3600,
        interval_seconds: 3600,
        channels: vec![],
        key: None,
        tags: vec![],
    };
    let monitor = registry.create(config).await.expect("created");
    let handle = registry
        .directory()
        .by_token(&monitor.token)
        .expect("registered");
    let heartbeat = Heartbeat {
        status: PushStatus::Up,
        msg: Some(HeartbeatText::truncated("before".to_owned())),
        value: Some(1.0),
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
