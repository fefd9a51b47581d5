//! Wiring and lifecycle: open the store → serve (not ready) → rebuild every monitor
//! actor → judge deadlines missed while stopped → reconcile the monitors file → ready
//! → … → drain → stop delivery and the actors → close the store.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

use crate::alert::dispatcher::DeliveryReports;
use crate::alert::{Channels, Dispatcher, Notifier, NotifierSettings};
use crate::clock::Clock;
use crate::config::Config;
use crate::declare::MonitorsFile;
use crate::domain::ids::MonitorId;
use crate::http::tls::{Tls, reload_tls};
use crate::http::{self, AppState, Phase};
use crate::monitor::{self, Registry};
use crate::prometheus;
use crate::store::retention::Retention;
use crate::store::{EventStore, OpenOptions, QuarantineReports};

mod admin_token;
pub mod cluster;
use admin_token::admin_token;

/// How often the store records that the server is alive (`docs/states.md`, "After a
/// restart of the server": about every second).
const ALIVE_INTERVAL: Duration = Duration::from_secs(1);

/// How long shutdown waits for in-flight requests (Kubernetes' default grace is 30 s).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(20);

/// Every this many alive ticks (seconds), idle per-monitor and per-source rate-limit
/// state is dropped.
const RATE_LIMIT_SWEEP_TICKS: u64 = 60;

/// The most quarantine reports handled in one go.
const QUARANTINE_REPORTS_PER_REBUILD: usize = 1024;

/// How often buffered histogram samples are folded into their buckets.
const METRICS_UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Runs the server on `listener` until `shutdown` resolves, then drains: stops
/// accepting, finishes in-flight requests, makes everything durable, returns.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (_never, reloads) = mpsc::channel(1);
    run_with_reload(config, listener, shutdown, reloads).await
}

/// [`run`], also reconciling the monitors file each time `reloads` yields (SIGHUP).
pub async fn run_with_reload(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    mut reloads: mpsc::Receiver<()>,
) -> anyhow::Result<()> {
    let started = Instant::now();
    // The server's time is the wall clock; tests of the actors use a paused one.
    let clock = Clock::system();
    let metrics = prometheus::install();
    // Histograms buffer every sample until drained; without a scrape they would grow
    // without bound, so drain them on a timer too.
    let upkeep = {
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(METRICS_UPKEEP_INTERVAL);
            loop {
                interval.tick().await;
                metrics.run_upkeep();
            }
        })
    };
    let bound = listener.local_addr().context("reading the bound address")?;
    // The clustered mode: a copy left behind by a purge is emptied before the store
    // opens, and restored below.
    if config.cluster.enabled() {
        cluster::empty_if_left_behind(&config.data_dir)
            .context("emptying a data directory left behind by a purge")?;
    }
    // The store first: it says clearly what is wrong with the data directory.
    let data_dir = config.data_dir.clone();
    let options = OpenOptions {
        accept_data_loss: config.accept_data_loss,
        ..OpenOptions::default()
    };
    let opened = tokio::task::spawn_blocking(move || EventStore::open_with(&data_dir, options))
        .await
        .context("store open task")?
        .context("opening the store")?;
    let store = opened.store.clone();
    tracing::info!(data_dir = %config.data_dir.display(), "store opened");
    // The clustered mode: a new pod starts from the streams' shared snapshots, before
    // anything reads the store.
    if config.cluster.enabled() {
        cluster::restore(&config.cluster, &store)
            .await
            .context("restoring from the shared snapshots")?;
    }
    let (admin_token, _) = admin_token(&config)?;
    let tls = match config.tls.clone() {
        None => None,
        Some(files) => Some(
            tokio::task::spawn_blocking(move || Tls::load(&files))
                .await
                .context("TLS load task")??,
        ),
    };

    let reader = store.clone();
    let stored_channels = tokio::task::spawn_blocking(move || reader.load_channels())
        .await
        .context("store read task")?
        .context("reading channels")?;
    // The event log, chosen once: the fjall store, or the shard logs (every write
    // answers 503 until the pod has joined).
    let log = crate::cluster::event_log::Log::new(store.clone(), config.cluster.enabled());
    let channels = Channels::new(store.clone(), stored_channels, clock, Arc::clone(&log));
    let reader = store.clone();
    let api_keys = tokio::task::spawn_blocking(move || reader.load_api_keys())
        .await
        .context("store read task")?
        .context("reading API keys")?;
    let reader = store.clone();
    let publications = tokio::task::spawn_blocking(move || reader.load_publications())
        .await
        .context("store read task")?
        .context("reading badges and status pages")?;
    let reader = store.clone();
    let ping_key = tokio::task::spawn_blocking(move || reader.ping_key())
        .await
        .context("store read task")?
        .context("reading the ping key")?
        .context("the store has no ping key (it is made when the store is opened)")?;
    let public_url = config.public_base_url(bound);
    if config.public_url_is_unreachable(bound) {
        tracing::warn!(
            push_url_base = %public_url,
            "listening on every interface without --public-url: push URLs name {bound}, which jobs cannot reach; set --public-url (PUSHMON_PUBLIC_URL) to the address jobs use"
        );
    }
    let reader = store.clone();
    let installation = tokio::task::spawn_blocking(move || reader.installation_id())
        .await
        .context("store read task")?
        .context("reading the installation id")?;
    let notifier = Notifier::new(NotifierSettings {
        public_url: public_url.clone(),
        timeout: config.alert_timeout,
        installation,
        addresses: config.alert_addresses,
    })
    .map_err(|error| anyhow::anyhow!("{error}"))?;
    let (dispatcher, dispatcher_task, delivery_reports) = Dispatcher::start(
        notifier.clone(),
        channels.clone(),
        config.alert_retry,
        config.digest,
    )
    .await
    .context("starting the alert dispatcher")?;
    let guard = monitor::GuardShared::new(&config.guard, clock.now());
    let (registry, registry_task) = Registry::start(
        store.clone(),
        log,
        channels.clone(),
        dispatcher.clone(),
        clock,
        Arc::clone(&guard),
    )
    .await
    .context("starting the registry")?;
    let state = AppState::new(
        registry.clone(),
        store.clone(),
        channels.clone(),
        notifier.clone(),
        admin_token,
        api_keys,
        publications,
        public_url,
        config.rate_limit,
        config.ip_rate_limit,
        config.trusted_proxies.clone(),
        metrics,
        config.monitor_metrics,
        &config.metrics_labels,
        clock,
        config.ping_body_limit,
        ping_key,
        config.ping_auto_create,
        config.signature_window,
    );

    let (stop_serving, serving_stopped) = oneshot::channel::<()>();
    let app = http::App::with_routes(
        state.clone(),
        crate::web::router(state.clone()).merge(crate::declare::export::router(state.clone())),
    );
    let limits = crate::http::serve::Limits {
        header_timeout: config.header_timeout,
        max_connections: config.max_connections,
        drain_timeout: DRAIN_TIMEOUT,
    };
    let server = tokio::spawn(crate::http::serve::serve(
        listener,
        app,
        limits,
        tls.clone(),
        async {
            let _ = serving_stopped.await;
        },
    ));
    tracing::info!(
        scheme = if tls.is_some() { "https" } else { "http" },
        "listening on {bound}"
    );

    let mut shutdown = std::pin::pin!(shutdown);
    let declared = config.monitors_file.as_ref().map(MonitorsFile::new);
    let env = |name: &str| std::env::var(name).ok();
    // Records delivery outcomes once every monitor's actor runs (set by `rebuild`).
    let mut recorder = None;
    let started_up = tokio::select! {
        outcome = async {
            let (count, guard_monitor) = rebuild(
                &store,
                &registry,
                &dispatcher,
                delivery_reports,
                &mut recorder,
                &config,
                clock,
            )
            .await?;
            if let Some(declared) = &declared {
                let summary = declared.reconcile(&store, &registry, &channels, env).await?;
                log_reconciled(declared, &summary);
            }
            // The clustered mode: not ready before the pod has joined.
            let membership = if config.cluster.enabled() {
                let mut membership = cluster::join(&config.cluster).await;
                let local = cluster::Local {
                    store: store.clone(),
                    dispatcher: dispatcher.clone(),
                    notifier: notifier.clone(),
                    clock,
                    // A test hook only (`app/cluster/alerts.rs`).
                    exit_after_sends: std::env::var(cluster::FAULT_EXIT_AFTER_SEND)
                        .ok()
                        .and_then(|sends| sends.parse().ok()),
                    restart_grace_seconds: config.restart_grace_seconds(),
                    state: state.clone(),
                };
                membership.start_engine(&registry, &channels, local).await;
                Some(membership)
            } else {
                None
            };
            Ok::<_, anyhow::Error>((count, guard_monitor, membership))
        } => Some(outcome),
        () = &mut shutdown => None,
    };
    let mut failure = None;
    let sweeping = Arc::new(AtomicBool::new(true));
    let mut sweeper = None;
    let mut membership = None;
    let background = match started_up {
        Some(Ok((count, guard_monitor, joined))) => {
            membership = joined;
            state.set_phase(Phase::Ready);
            sweeper = Some(tokio::spawn(sweep_history(
                store.clone(),
                config.retention,
                config.history_sweep,
                Arc::clone(&sweeping),
                clock,
            )));
            let elapsed = started.elapsed();
            metrics::gauge!(prometheus::STARTUP_DURATION_SECONDS).set(elapsed.as_secs_f64());
            tracing::info!(
                rebuilt_monitors = count,
                elapsed_ms = elapsed.as_millis() as u64,
                "ready"
            );
            let rebuilder = tokio::spawn(rebuild_quarantined(
                opened.quarantined,
                store.clone(),
                registry.clone(),
                dispatcher.clone(),
            ));
            let guarding = monitor::guard::run(
                registry.clone(),
                channels.clone(),
                Arc::clone(&guard),
                config.guard.clone(),
                clock,
                guard_monitor,
            );
            let alive_store = store.clone();
            let limits = state.clone();
            let ticker = tokio::spawn(async move {
                let mut interval = tokio::time::interval(ALIVE_INTERVAL);
                let mut ticks = 0u64;
                loop {
                    interval.tick().await;
                    alive_store.mark_alive(clock.now());
                    ticks += 1;
                    if ticks.is_multiple_of(RATE_LIMIT_SWEEP_TICKS) {
                        // Forget rate-limit state of monitors and source addresses that
                        // have been quiet (or deleted), so it does not grow with every
                        // monitor or address ever seen.
                        limits.limiter.retain_recent();
                        limits.limiter.shrink_to_fit();
                        if let Some(by_source) = &limits.unknown_token_limit {
                            by_source.forget_idle();
                        }
                        limits.replay.forget_expired(clock.now());
                    }
                }
            });
            loop {
                tokio::select! {
                    () = &mut shutdown => break,
                    Some(()) = reloads.recv() => {
                        if let Some(tls) = &tls {
                            reload_tls(tls).await;
                        }
                        let Some(declared) = &declared else {
                            if tls.is_none() {
                                tracing::info!("reload requested, but no monitors file or TLS is configured");
                            }
                            continue;
                        };
                        tracing::info!(file = %declared.path().display(), "reloading the monitors file");
                        match declared.reconcile(&store, &registry, &channels, env).await {
                            Ok(summary) => log_reconciled(declared, &summary),
                            Err(error) => tracing::error!(%error, "monitors file not applied; nothing changed"),
                        }
                    }
                }
            }
            Some([ticker, rebuilder, guarding])
        }
        Some(Err(error)) => {
            // Logged once, by whoever runs the server (`main` prints what `run` returns).
            tracing::info!("start-up failed; stopping");
            failure = Some(error.context("start-up failed"));
            None
        }
        None => None,
    };

    tracing::info!("draining: no longer ready, finishing in-flight requests");
    state.set_phase(Phase::Draining);
    // Hand the owned shards over first, so the next pod need not wait for a lease.
    if let Some(membership) = membership {
        membership.leave().await;
    }
    let _ = stop_serving.send(());
    if let Err(error) = server.await {
        tracing::error!(%error, "server task failed");
    }
    for task in background.into_iter().flatten() {
        task.abort();
    }
    sweeping.store(false, Ordering::Relaxed);
    if let Some(sweeper) = sweeper {
        let _ = sweeper.await;
    }
    tracing::info!("stopping alert delivery and monitor actors");
    dispatcher.stop().await;
    let _ = dispatcher_task.await;
    if let Some(recorder) = recorder {
        // Records still retrying stop with the deliveries, as before: their outbox
        // entries stay, and are delivered again after the next start.
        recorder.abort();
        let _ = recorder.await;
    }
    registry.stop().await;
    let _ = registry_task.await;
    store.mark_alive(clock.now());
    store.close().await;
    let writer = opened.writer_thread;
    let _ = tokio::task::spawn_blocking(move || writer.join()).await;
    upkeep.abort();
    tracing::info!("stopped: every acknowledged event is durable");
    match failure {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

/// One log line of what a reconciliation of the monitors file did.
fn log_reconciled(declared: &MonitorsFile, summary: &crate::declare::Summary) {
    tracing::info!(
        file = %declared.path().display(),
        created = summary.created,
        updated = summary.updated,
        deleted = summary.deleted,
        unchanged = summary.unchanged,
        "monitors file reconciled"
    );
}

/// Applies the history limits every `interval` until `sweeping` turns false.
async fn sweep_history(
    store: EventStore,
    retention: Retention,
    interval: Duration,
    sweeping: Arc<AtomicBool>,
    clock: Clock,
) {
    if retention.is_unlimited() {
        return;
    }
    // The first sweep waits a whole interval: right after start-up is the busiest
    // moment (the restart judgement, owed deliveries, reconnecting jobs).
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while sweeping.load(Ordering::Relaxed) {
        tokio::select! {
            _ = ticks.tick() => {}
            () = tokio::time::sleep(Duration::from_millis(200)) => continue,
        }
        let flag = Arc::clone(&sweeping);
        let started = Instant::now();
        let outcome = store
            .sweep_in_background(retention, clock.now(), move || flag.load(Ordering::Relaxed))
            .await;
        match outcome {
            Ok(swept) => {
                metrics::counter!(prometheus::HISTORY_PRUNED_TOTAL).increment(swept.deleted as u64);
                tracing::debug!(
                    monitors = swept.monitors,
                    deleted = swept.deleted,
                    removed_histories = swept.removed_histories,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "history swept"
                );
            }
            Err(error) => tracing::warn!(%error, "history sweep failed; retrying at the next"),
        }
    }
}

/// Has the registry rebuild from the store each monitor the store reports
/// quarantined, first handing the dispatcher the deliveries it owes that its actor
/// never enqueued (they belong to a batch reported as failed that turned out durable).
/// Runs until aborted at shutdown.
async fn rebuild_quarantined(
    mut reports: QuarantineReports,
    store: EventStore,
    registry: Registry,
    dispatcher: Dispatcher,
) {
    let mut batch = Vec::new();
    while reports
        .recv_many(&mut batch, QUARANTINE_REPORTS_PER_REBUILD)
        .await
        > 0
    {
        let mut monitors = Vec::with_capacity(batch.len());
        let mut undispatched: HashMap<MonitorId, u64> = HashMap::new();
        for report in batch.drain(..) {
            monitors.push(report.monitor);
            if let Some(from) = report.undispatched_from {
                undispatched
                    .entry(report.monitor)
                    .and_modify(|earliest| *earliest = (*earliest).min(from))
                    .or_insert(from);
            }
        }
        monitors.sort_unstable();
        monitors.dedup();
        if !undispatched.is_empty() {
            let reader = store.clone();
            match tokio::task::spawn_blocking(move || reader.load_outbox()).await {
                Ok(Ok(owed)) => {
                    for delivery in owed {
                        let from = undispatched.get(&delivery.alert.monitor_id);
                        if from.is_some_and(|from| delivery.alert.alert_seq >= *from) {
                            // Its monitor's state is being rebuilt, not at hand: a digest
                            // lists it without a group (a rare case: a batch reported
                            // failed that turned out durable).
                            dispatcher.enqueue(delivery, String::new());
                        }
                    }
                }
                Ok(Err(error)) => {
                    tracing::error!(%error, "cannot read the outbox of quarantined monitors");
                }
                Err(error) => tracing::error!(%error, "outbox read task failed"),
            }
        }
        registry.rebuild_quarantined(monitors);
    }
}

/// Spawns an actor for every stored monitor, starts recording delivery outcomes (the
/// task goes in `recorder`), resumes the deliveries left in the outbox, then has each
/// monitor judge a deadline that fell while the server was stopped. Returns how many
/// monitors there are, and the guard's own monitor if one is stored.
async fn rebuild(
    store: &EventStore,
    registry: &Registry,
    dispatcher: &Dispatcher,
    reports: DeliveryReports,
    recorder: &mut Option<tokio::task::JoinHandle<()>>,
    config: &Config,
    clock: Clock,
) -> anyhow::Result<(usize, Option<crate::domain::machine::Monitor>)> {
    let reader = store.clone();
    let (monitors, last_alive, owed) = tokio::task::spawn_blocking(move || {
        Ok::<_, crate::store::StoreError>((
            reader.load_monitors_to_rebuild()?,
            reader.last_alive()?,
            reader.load_outbox()?,
        ))
    })
    .await
    .context("store read task")?
    .context("reading monitors from the store")?;
    let count = monitors.len();
    let groups: HashMap<MonitorId, String> = monitors
        .iter()
        .map(|(monitor, _)| (monitor.id, crate::alert::digest::group_of(&monitor.config)))
        .collect();
    let guard_monitor = monitors
        .iter()
        .map(|(monitor, _)| monitor)
        .find(|monitor| monitor.config.key.as_deref() == Some(monitor::guard::GUARD_MONITOR_KEY))
        .cloned();
    tracing::info!(monitors = count, "rebuilding monitor actors");
    registry
        .rebuild(monitors)
        .await
        .context("rebuilding monitor actors")?;
    if !owed.is_empty() {
        tracing::info!(
            deliveries = owed.len(),
            "resuming alert deliveries owed before the stop"
        );
    }
    // The dispatcher sends a delivery as soon as it has it, and waits with the next of
    // the same pair until the outcome is recorded. Outcomes can be recorded only now
    // that every actor runs, so the recorder starts here and the outbox is handed over
    // after it: none of its deliveries is sent before its outcome can be recorded.
    // Nothing else owes a delivery before this point (pushes and the API wait for
    // ready; timers are armed by the judgement below); should an actor restarted by
    // supervision owe one, it goes out and its report waits in the channel until now.
    *recorder = Some(monitor::record_outcomes(registry.clone(), reports, clock));
    // The clustered mode: only the owner of a monitor's shard sends its alerts, once
    // it has folded the shard up to its takeover (`app/cluster/alerts.rs`).
    let owed = if config.cluster.enabled() {
        Vec::new()
    } else {
        owed
    };
    for delivery in owed {
        let group = groups
            .get(&delivery.alert.monitor_id)
            .cloned()
            .unwrap_or_default();
        dispatcher.enqueue(delivery, group);
    }
    registry.judge_after_restart(last_alive, config.restart_grace_seconds());
    store.mark_alive(clock.now());
    Ok((count, guard_monitor))
}
