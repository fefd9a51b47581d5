//! Micro-benchmarks of the core: state machine decide/apply, event encode/decode,
//! group-commit append throughput, replay, and the token directory lookup.
//! Run with `cargo bench --bench core`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

/// The server's allocator, so allocation costs are the server's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use pushmon::alert::{
    AddressPolicy, Channels, DigestPolicy, Dispatcher, Notifier, NotifierSettings, RetryPolicy,
};
use pushmon::clock::Clock;
use pushmon::domain::event::{Event, Heartbeat, HeartbeatText, MonitorConfig, PushStatus, Stamped};
use pushmon::domain::ids::{MonitorId, PushToken, Timestamp};
use pushmon::domain::machine::{Command, Monitor, apply, decide};
use pushmon::monitor::Registry;
use pushmon::store::EventStore;
use pushmon::store::codec::{StoredEvent, decode_event, encode_event};

fn monitor() -> Monitor {
    Monitor::created(
        MonitorId::generate(Timestamp::from_millis(1_800_000_000_000)),
        Timestamp::from_millis(1_800_000_000_000),
        MonitorConfig::new("nightly backup", 60),
        PushToken::from_bytes([5; 16]),
    )
}

fn heartbeat() -> Heartbeat {
    Heartbeat {
        status: PushStatus::Up,
        msg: Some(HeartbeatText::truncated(
            "backup finished in 42 s".to_owned(),
        )),
        value: Some(42.0),
        instance: None,
    }
}

fn machine(c: &mut Criterion) {
    let mut group = c.benchmark_group("machine");
    let state = monitor();
    group.bench_function("decide_heartbeat", |b| {
        b.iter(|| {
            decide(
                black_box(&state),
                Command::Heartbeat(heartbeat()),
                Timestamp::from_millis(1_800_000_001_000),
            )
        })
    });
    // The push path's steady state: an `up` heartbeat to an `up` monitor.
    let up = {
        let mut state = monitor();
        let first = decide(
            &state,
            Command::Heartbeat(heartbeat()),
            Timestamp::from_millis(1_800_000_000_500),
        );
        for stamped in first {
            apply(&mut state, 1, stamped.at, &stamped.event);
        }
        state
    };
    group.bench_function("decide_heartbeat_when_up", |b| {
        b.iter(|| {
            decide(
                black_box(&up),
                Command::Heartbeat(heartbeat()),
                Timestamp::from_millis(1_800_000_001_000),
            )
        })
    });
    group.bench_function("decide_and_apply_heartbeat", |b| {
        b.iter_batched_ref(
            monitor,
            |state| {
                for stamped in decide(
                    state,
                    Command::Heartbeat(heartbeat()),
                    Timestamp::from_millis(1_800_000_001_000),
                ) {
                    apply(state, 1, stamped.at, &stamped.event);
                }
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn codec(c: &mut Criterion) {
    let mut group = c.benchmark_group("codec");
    let stored = StoredEvent {
        at: Timestamp::from_millis(1_800_000_000_000),
        event: Event::HeartbeatReceived(heartbeat()),
    };
    let bytes = encode_event(&stored).unwrap();
    group.bench_function("encode_heartbeat", |b| {
        b.iter(|| encode_event(black_box(&stored)).unwrap())
    });
    group.bench_function("decode_heartbeat", |b| {
        b.iter(|| decode_event(black_box(&bytes)).unwrap())
    });
    group.finish();
}

/// A runtime with `workers` async workers and a store in a fresh temp dir (kept alive
/// by the returned guard).
fn runtime_and_store(
    workers: usize,
) -> (
    tokio::runtime::Runtime,
    tempfile::TempDir,
    pushmon::store::Opened,
) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let opened = EventStore::open(dir.path()).unwrap();
    (runtime, dir, opened)
}

/// Appends from many concurrent tasks, as actors do: measures group commit.
fn store(c: &mut Criterion) {
    let (runtime, _dir, opened) = runtime_and_store(2);
    let store = opened.store.clone();
    let monitors: Vec<Monitor> = (0..256).map(|_| monitor()).collect();

    let mut group = c.benchmark_group("store");
    group.measurement_time(Duration::from_secs(8));
    for concurrency in [1usize, 64, 256] {
        group.throughput(Throughput::Elements(concurrency as u64));
        group.bench_function(format!("append_durable_x{concurrency}"), |b| {
            b.to_async(&runtime).iter(|| {
                let store = store.clone();
                let monitors = &monitors;
                async move {
                    let appends = monitors[..concurrency].iter().map(|state| {
                        let events = vec![Stamped {
                            at: Timestamp::from_millis(1_800_000_001_000),
                            event: Event::HeartbeatReceived(heartbeat()),
                        }];
                        store.append(state.id, events, Some(state.clone()))
                    });
                    for outcome in futures::future::join_all(appends).await {
                        outcome.unwrap();
                    }
                }
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("replay");
    group.sample_size(10);
    group.bench_function("load_snapshots", |b| {
        b.iter(|| store.load_monitors().unwrap().len())
    });
    group.bench_function("replay_whole_log", |b| {
        b.iter(|| store.replay_all().unwrap().len())
    });
    group.finish();
    runtime.block_on(store.close());
    drop(store);
    drop(opened);
}

/// The push path below HTTP: finding a monitor by its token in the Directory, and a
/// heartbeat through the monitor's actor to a durable append (64 at once, as 64
/// connections would), over 10,000 monitors.
fn registry(c: &mut Criterion) {
    const MONITORS: usize = 10_000;
    let (runtime, _dir, opened) = runtime_and_store(1);
    let store = opened.store.clone();
    let (registry, tokens) = runtime.block_on(async {
        let channels = Channels::new(
            store.clone(),
            Vec::new(),
            Clock::system(),
            pushmon::cluster::event_log::Log::new(store.clone(), false),
        );
        let notifier = Notifier::new(NotifierSettings {
            public_url: "http://127.0.0.1:1".to_owned(),
            timeout: Duration::from_secs(1),
            installation: store.installation_id().unwrap(),
            addresses: AddressPolicy::AllowAll,
        })
        .unwrap();
        let (dispatcher, _, reports) = Dispatcher::start(
            notifier,
            channels.clone(),
            RetryPolicy::default(),
            DigestPolicy::default(),
        )
        .await
        .unwrap();
        let (registry, _) = Registry::start(
            store.clone(),
            pushmon::cluster::event_log::Log::new(store.clone(), false),
            channels,
            dispatcher.clone(),
            Clock::system(),
            pushmon::monitor::GuardShared::off(),
        )
        .await
        .unwrap();
        pushmon::monitor::record_outcomes(registry.clone(), reports, Clock::system());
        let creations = (0..MONITORS).map(|index| {
            let mut config = monitor().config.as_ref().clone();
            config.name = format!("monitor {index}");
            config.timeout_seconds = 3600;
            config.interval_seconds = 3600;
            registry.create(config)
        });
        let created = futures::future::join_all(creations).await;
        let tokens: Vec<String> = created
            .into_iter()
            .map(|monitor| monitor.unwrap().token.reveal())
            .collect();
        (registry, tokens)
    });

    let mut group = c.benchmark_group("registry");
    let mut next = 0usize;
    group.bench_function("parse_token_and_lookup", |b| {
        b.iter(|| {
            next = (next + 1) % tokens.len();
            let token = PushToken::parse(black_box(&tokens[next])).unwrap();
            registry
                .directory()
                .by_token(&token)
                .map(|handle| handle.id)
        })
    });
    // What the push ingress does: the URL's text straight to its key.
    group.bench_function("lookup_token_text", |b| {
        b.iter(|| {
            next = (next + 1) % tokens.len();
            registry
                .directory()
                .by_token_text(black_box(&tokens[next]))
                .map(|handle| handle.id)
        })
    });
    let handles: Vec<_> = tokens
        .iter()
        .map(|text| {
            registry
                .directory()
                .by_token(&PushToken::parse(text).unwrap())
                .unwrap()
        })
        .collect();
    group.throughput(Throughput::Elements(64));
    group.measurement_time(Duration::from_secs(8));
    let mut round = 0usize;
    group.bench_function("heartbeat_through_actor_x64", |b| {
        b.to_async(&runtime).iter(|| {
            round += 1;
            let registry = registry.clone();
            let batch: Vec<_> = (0..64)
                .map(|index| handles[(round * 64 + index) % handles.len()].clone())
                .collect();
            async move {
                let beats = batch
                    .iter()
                    .map(|handle| registry.heartbeat(handle, heartbeat()));
                for outcome in futures::future::join_all(beats).await {
                    outcome.unwrap();
                }
            }
        })
    });
    group.finish();
    runtime.block_on(async {
        registry.stop().await;
        store.close().await;
    });
    drop(store);
    drop(opened);
}

criterion_group!(benches, machine, codec, store, registry);
criterion_main!(benches);
