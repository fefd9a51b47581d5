//! The registry's actor: it creates monitors (durable first), spawns and stops their
//! actors, restarts a failed one from its stored state and rebuilds a quarantined one.

use super::*;

impl Actor for RegistryActor {
    type Msg = RegistryMsg;
    type State = RegistryState;
    type Arguments = Arc<MonitorContext>;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        context: Arc<MonitorContext>,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(RegistryState {
            context,
            stopping: false,
            rebuilding: HashMap::new(),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            RegistryMsg::Create(config, token, reply) => {
                // Persist off the registry's own loop so concurrent creations share a
                // group commit; the actor is spawned when the creation is durable.
                let store = state.context.store.clone();
                let now = state.context.clock.now();
                tokio::spawn(async move {
                    match persist_creation(&store, *config, token, now).await {
                        Ok(monitor) => {
                            if let Err(error) =
                                myself.cast(RegistryMsg::Adopt(Box::new(monitor), Some(reply)))
                            {
                                tracing::error!(%error, "registry stopped during a creation");
                            }
                        }
                        Err(error) => {
                            let _ = reply.send(Err(error.into()));
                        }
                    }
                });
            }
            RegistryMsg::Adopt(monitor, reply) => {
                let outcome = spawn_monitor(&myself, state, *monitor, true, Vec::new()).await;
                if let Ok(created) = &outcome {
                    state.context.changes.publish(created, false);
                }
                if let Some(reply) = reply {
                    let _ = reply.send(outcome);
                }
            }
            RegistryMsg::Rebuild(monitors, reply) => {
                for (monitor, undecided) in monitors {
                    let id = monitor.id;
                    // Timers are armed by the restart judgement that follows.
                    if let Err(error) =
                        spawn_monitor(&myself, state, monitor, false, undecided).await
                    {
                        tracing::error!(monitor = %id, %error, "cannot start monitor");
                    }
                }
                let _ = reply.send(());
            }
            RegistryMsg::RebuildQuarantined(monitors) if !state.stopping => {
                for id in monitors {
                    match state.context.directory.by_id(id) {
                        // Rebuilt once it has stopped (`handle_supervisor_evt`), so
                        // that everything it sent the store is before the rebuild's
                        // barrier.
                        Some(actor) => {
                            state.rebuilding.insert(actor.get_id(), id);
                            actor.stop(None);
                        }
                        None => rebuild_from_store(&myself, state, id).await,
                    }
                }
            }
            RegistryMsg::RebuildFromStore(id) if !state.stopping => {
                rebuild_from_store(&myself, state, id).await;
            }
            RegistryMsg::RebuildQuarantined(_) | RegistryMsg::RebuildFromStore(_) => {}
            RegistryMsg::StopAll(reply) => {
                state.stopping = true;
                let children: Vec<_> = state.context.directory.actors().collect();
                // Ask all at once, then wait: stopping 1M actors one after the
                // other took 11-12 s.
                for child in &children {
                    child.stop(None);
                }
                for child in children {
                    let _ = child.wait(None).await;
                }
                let _ = reply.send(());
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match event {
            SupervisionEvent::ActorFailed(cell, error) => {
                state.rebuilding.remove(&cell.get_id());
                if state.stopping {
                    return Ok(());
                }
                let Some(id) = state.context.directory.id_of(cell.get_id()) else {
                    return Ok(());
                };
                tracing::error!(monitor = %id, %error, "monitor actor failed; restarting it from its stored state");
                metrics::counter!(prometheus::ACTOR_RESTARTS_TOTAL).increment(1);
                rebuild_from_store(&myself, state, id).await;
            }
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                let quarantined = state.rebuilding.remove(&cell.get_id());
                if state.stopping || reason.as_deref() == Some(DELETED_REASON) {
                    return Ok(());
                }
                if let Some(id) = quarantined {
                    tracing::warn!(monitor = %id, "rebuilding a quarantined monitor's actor from the store");
                    rebuild_from_store(&myself, state, id).await;
                    return Ok(());
                }
                let Some(id) = state.context.directory.id_of(cell.get_id()) else {
                    return Ok(());
                };
                let reason = reason.as_deref().unwrap_or("none given");
                tracing::error!(monitor = %id, reason, "monitor actor stopped unexpectedly; restarting it");
                metrics::counter!(prometheus::ACTOR_RESTARTS_TOTAL).increment(1);
                rebuild_from_store(&myself, state, id).await;
            }
            _ => {}
        }
        Ok(())
    }
}

async fn persist_creation(
    store: &EventStore,
    config: MonitorConfig,
    token: Option<PushToken>,
    now: Timestamp,
) -> Result<Monitor, StoreError> {
    let id = MonitorId::generate(now);
    let token = token.unwrap_or_else(new_push_token);
    let mut monitor = Monitor::created(id, now, config.clone(), token.clone());
    let created = Stamped {
        at: now,
        event: Event::Created {
            config: Box::new(config),
            token,
        },
    };
    monitor.last_seq = store
        .append(id, vec![created], Some(monitor.clone()))
        .await?;
    Ok(monitor)
}

/// 128 bits from the operating system's generator, never one whose text starts with
/// `-`: command lines (`pushmon push <token>`, shell scripts) read that as an option.
/// Skipping those costs 1 in 64 of the tokens, well under a bit of randomness.
pub fn new_push_token() -> PushToken {
    loop {
        let token = PushToken::from_bytes(rand::random());
        if !token.reveal().starts_with('-') {
            return token;
        }
    }
}

/// Spawns monitor `monitor`'s actor; it first applies and decides on `undecided`, the
/// heartbeats at the end of its log that a stopped actor may not have decided on.
async fn spawn_monitor(
    myself: &ActorRef<RegistryMsg>,
    state: &mut RegistryState,
    monitor: Monitor,
    arm_timer: bool,
    undecided: Vec<crate::store::RecordedHeartbeat>,
) -> Result<Monitor, RegistryError> {
    let (id, token) = (monitor.id, monitor.token.clone());
    // A rebuilt or restarted actor takes over its predecessor's inbox.
    let inbox = state.context.directory.inbox(id);
    inbox.put_back(undecided);
    let args = MonitorArgs {
        monitor: monitor.clone(),
        context: Arc::clone(&state.context),
        arm_timer,
        inbox: Arc::clone(&inbox),
    };
    let (actor, _) = Actor::spawn_linked(None, MonitorActor, args, myself.get_cell())
        .await
        .map_err(|error| {
            tracing::error!(monitor = %id, %error, "cannot spawn monitor actor");
            RegistryError::Unavailable
        })?;
    state.context.directory.insert(id, &token, actor, inbox);
    state
        .context
        .directory
        .set_slug(id, monitor.config.slug.as_deref());
    state
        .context
        .directory
        .set_access(id, PushAccess::of(&monitor.config));
    Ok(monitor)
}

/// Spawns monitor `id`'s actor anew from its stored state, once its old actor (if any)
/// has stopped: after a failure, or because the store quarantined it. Lifts its
/// quarantine.
async fn rebuild_from_store(
    myself: &ActorRef<RegistryMsg>,
    state: &mut RegistryState,
    id: MonitorId,
) {
    // Everything the old actor sent is written (or refused) before the state is
    // read; heartbeats written after the read wait in the inbox the new actor takes.
    let store = &state.context.store;
    let stored = match store.start_rebuild(id).await {
        Ok(()) => store.monitor_to_rebuild(id).await,
        Err(error) => Err(error),
    };
    if stored.is_ok() {
        // Its new actor starts from what the store holds: appends may resume.
        state.context.store.lift_quarantine(id);
        // An actor stopped for a rebuild that had stopped already never reports it.
        state.rebuilding.retain(|_, rebuilding| *rebuilding != id);
    }
    match stored {
        Ok(Some((monitor, undecided))) => {
            // The Directory keeps the stopped actor until the new one replaces it (the
            // token too, if it changed): meanwhile a push or a delivery outcome for
            // this monitor hears "restarting, retry" (503), never "no such monitor",
            // which would answer 404 and settle an owed delivery as an orphan.
            if let Err(error) = spawn_monitor(myself, state, monitor, true, undecided).await {
                tracing::error!(monitor = %id, %error, "cannot spawn the rebuilt actor; retrying");
                myself.send_after(REBUILD_RETRY_DELAY, move || {
                    RegistryMsg::RebuildFromStore(id)
                });
            }
        }
        Ok(None) => state.context.directory.remove(id),
        Err(error) => {
            tracing::error!(monitor = %id, %error, "cannot read the monitor to rebuild it; retrying");
            myself.send_after(REBUILD_RETRY_DELAY, move || {
                RegistryMsg::RebuildFromStore(id)
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::new_push_token;

    #[test]
    fn no_new_push_token_starts_with_a_hyphen() {
        // 1 in 64 random tokens would: 10,000 draws all but surely meet several.
        for _ in 0..10_000 {
            let token = new_push_token().reveal();
            assert!(!token.starts_with('-'), "{token}");
            assert_eq!(token.len(), 22, "{token}");
        }
    }
}
