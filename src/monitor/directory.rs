//! The Directory: push token → monitor actor, id → monitor actor, and slug → monitor
//! (`docs/api.md`, "Ping URLs").
//!
//! HTTP handlers read it without a message round trip; only monitor actors (a deleted
//! monitor, a rotated token) and the registry (spawns, restarts) change it.
//!
//! It also carries what dependencies need (`docs/states.md`, "Dependencies"): each
//! monitor's state as its children see it (down or not, since when), published by
//! its actor once a change is durable, and which monitors name each one as a
//! parent, so a parent's actor can tell its children that it changed.
//!
//! Tokens are keyed by 16 bytes ([`TokenKey`]): a native token's own bytes, or the
//! first 16 bytes of the SHA-256 of an imported token's text, so a lookup hashes a
//! fixed-size key and a native token's entry is no larger than before imported
//! tokens existed.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use dashmap::DashMap;
use ractor::{ActorId, ActorRef};
use sha2::{Digest as _, Sha256};

use crate::domain::event::PushStatus;
use crate::domain::ids::{MonitorId, PushToken, TokenForm};
use crate::domain::machine::{Monitor, ParentState, Parents};
use crate::store::{HeartbeatSink, RecordedHeartbeat};

use super::guard_state::GuardShared;
use super::messages::MonitorMsg;

/// What the Directory keys a push token by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TokenKey([u8; 16]);

impl TokenKey {
    pub fn of(token: &PushToken) -> Self {
        Self::of_form(token.form())
    }

    /// The key of a URL's token text; `None` if it is no token's shape.
    pub fn of_text(text: &str) -> Option<Self> {
        PushToken::form_of(text).map(Self::of_form)
    }

    fn of_form(form: TokenForm<'_>) -> Self {
        match form {
            TokenForm::Native(bytes) => Self(bytes),
            TokenForm::Imported(text) => {
                let digest = Sha256::digest(text.as_bytes());
                let mut key = [0u8; 16];
                key.copy_from_slice(&digest[..16]);
                Self(key)
            }
        }
    }
}

/// A monitor's rules on who may push (`docs/push.md`, "Restricted and signed
/// pushes"), copied from its configuration for the ingress to check without a
/// message round trip. `Debug` leaves the secret out.
#[derive(Clone, PartialEq, Eq)]
pub struct PushAccess {
    /// The source addresses pushes are taken from; empty: any.
    pub allowed_sources: Box<[ipnet::IpNet]>,
    /// The key pushes must be signed with (HMAC-SHA256), if any.
    pub signing_secret: Option<Box<[u8]>>,
}

impl std::fmt::Debug for PushAccess {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("PushAccess")
            .field("allowed_sources", &self.allowed_sources)
            .field("signed", &self.signing_secret.is_some())
            .finish()
    }
}

impl PushAccess {
    /// The rules a configuration sets; `None` if it sets none.
    pub fn of(config: &crate::domain::event::MonitorConfig) -> Option<Self> {
        if config.allowed_sources.is_empty() && config.signing_secret.is_none() {
            return None;
        }
        Some(Self {
            allowed_sources: config.allowed_sources.clone().into_boxed_slice(),
            signing_secret: config
                .signing_secret
                .as_ref()
                .map(|secret| secret.as_bytes().into()),
        })
    }
}

/// How a monitor is reached.
#[derive(Clone)]
pub struct MonitorHandle {
    pub id: MonitorId,
    pub actor: ActorRef<MonitorMsg>,
}

/// How many heartbeats that cannot change their monitor's state may wait in its inbox
/// before the writer wakes the actor for them anyway: it bounds the log tail a reader
/// folds (the actor writes its snapshot as it applies them). Such heartbeats are
/// otherwise applied when the actor next handles any message (its timer, a read, a
/// change), before that message. They wait merged into one entry (`Inbox`), so an
/// inbox's memory does not grow with them.
pub const QUIET_BACKLOG: usize = 8;

/// The durable heartbeats a monitor's actor has yet to apply, in the log's order. The
/// store's writer fills it after each durable batch, before it answers anyone
/// (`HeartbeatSink`), so an actor whose own append is answered finds there every
/// heartbeat written before it. Kept with the Directory entry: a restarted or rebuilt
/// actor takes over the same inbox (and skips what its stored state already holds).
///
/// The actor applies what waits here before and after every message it handles; the
/// writer wakes it (`MonitorMsg::Recorded`) only for a heartbeat that may change its
/// state (any but an `up` one while the inbox is quiet), or once [`QUIET_BACKLOG`]
/// wait, and at most once until the actor has emptied the inbox.
///
/// The inbox is quiet from when the actor has applied everything in it and its state
/// is quiet (`Monitor::quiet`, said in [`Inbox::pop`] and [`Inbox::settle`]), to when
/// the actor may append something of its own ([`Inbox::end_quiet`], before the
/// append) or a heartbeat other than `up` arrives. So while it is quiet, every
/// heartbeat in it is an `up` one that reaches a quiet state in the log, where it
/// records only itself and leaves the state quiet: an `up` heartbeat arriving then is
/// merged into the one waiting (`merge_quiet`), and applying the merged one folds to
/// the same state as applying both. A quiet inbox holds at most one entry (in the
/// single-node mode: [`Inbox::merge_quiet_heartbeats`]).
#[derive(Default)]
pub struct Inbox {
    queue: Mutex<Queue>,
}

/// A heartbeat waiting in an inbox, and how many heartbeats of the log it stands for
/// (more than one once quiet ones are merged into it).
pub struct Waiting {
    pub recorded: RecordedHeartbeat,
    pub count: u32,
}

#[derive(Default)]
struct Queue {
    heartbeats: VecDeque<Waiting>,
    /// How many heartbeats of the log the entries stand for.
    count: u32,
    /// A wake was sent and the actor has not emptied the inbox since.
    woken: bool,
    /// Whether the inbox is quiet (`Inbox`).
    quiet: bool,
    /// Whether `up` heartbeats to a quiet inbox are merged (not in the clustered mode,
    /// where other pods' records reach the log without this monitor's actor: they
    /// only wait there, as many as [`QUIET_BACKLOG`]).
    merges: bool,
}

/// Merges `later`, an `up` heartbeat to a quiet state, into `earlier`, the one before it
/// in the log: applying the result folds to the same state as applying both
/// (`machine::apply`: the last time, message and sequence number win, and a value is
/// kept until one replaces it). Gives `later` back if their times are out of order.
fn merge_quiet(
    earlier: &mut RecordedHeartbeat,
    later: RecordedHeartbeat,
) -> Result<(), RecordedHeartbeat> {
    if later.at < earlier.at || earlier.heartbeat.status != PushStatus::Up {
        return Err(later);
    }
    let value = later.heartbeat.value.or(earlier.heartbeat.value);
    *earlier = later;
    earlier.heartbeat.value = value;
    Ok(())
}

impl Inbox {
    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds a heartbeat; `true` if the actor must be woken for it: it may change the
    /// state or the backlog is full, and no wake was sent since the actor last
    /// emptied the inbox.
    fn push(&self, heartbeat: RecordedHeartbeat) -> bool {
        let mut queue = self.queue();
        queue.count = queue.count.saturating_add(1);
        let quiet_up = queue.quiet && heartbeat.heartbeat.status == PushStatus::Up;
        if !quiet_up {
            queue.quiet = false;
            queue.heartbeats.push_back(Waiting {
                recorded: heartbeat,
                count: 1,
            });
        } else if !queue.merges {
            queue.heartbeats.push_back(Waiting {
                recorded: heartbeat,
                count: 1,
            });
        } else {
            let rest = match queue.heartbeats.back_mut() {
                Some(last) => match merge_quiet(&mut last.recorded, heartbeat) {
                    Ok(()) => {
                        last.count = last.count.saturating_add(1);
                        None
                    }
                    Err(rest) => Some(rest),
                },
                None => Some(heartbeat),
            };
            if let Some(recorded) = rest {
                queue.heartbeats.push_back(Waiting { recorded, count: 1 });
            }
        }
        let wake = !quiet_up || queue.count as usize >= QUIET_BACKLOG;
        wake && !std::mem::replace(&mut queue.woken, true)
    }

    /// Whether `up` heartbeats to a quiet inbox are merged (its actor says so as it
    /// starts: not in the clustered mode).
    pub fn merge_quiet_heartbeats(&self, merges: bool) {
        self.queue().merges = merges;
    }

    /// Ends the inbox's quiet: the actor may append something of its own, or does not
    /// know its state yet. Only [`Inbox::pop`] and [`Inbox::settle`] make it quiet.
    pub fn end_quiet(&self) {
        self.queue().quiet = false;
    }

    /// The actor has applied everything and its state is `quiet` or not: the inbox
    /// becomes quiet if nothing waits in it (what waits was judged on an older state).
    pub fn settle(&self, quiet: bool) {
        let mut queue = self.queue();
        if queue.heartbeats.is_empty() {
            queue.quiet = quiet;
        }
    }

    /// Whether no heartbeat waits.
    pub fn is_empty(&self) -> bool {
        self.queue().heartbeats.is_empty()
    }

    /// How many entries wait (merged ones count once).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.queue().heartbeats.len()
    }

    /// Puts back heartbeats its actor may not have decided on (a rebuild from the
    /// store): in the log's order among those waiting, each once. The inbox is no
    /// longer quiet: none of these is merged with a later one.
    pub(super) fn put_back(&self, heartbeats: Vec<RecordedHeartbeat>) {
        let mut queue = self.queue();
        queue.quiet = false;
        if heartbeats.is_empty() {
            return;
        }
        let mut merged: Vec<Waiting> = queue
            .heartbeats
            .drain(..)
            .chain(
                heartbeats
                    .into_iter()
                    .map(|recorded| Waiting { recorded, count: 1 }),
            )
            .collect();
        merged.sort_by_key(|waiting| waiting.recorded.seq);
        merged.dedup_by_key(|waiting| waiting.recorded.seq);
        queue.count = merged
            .iter()
            .fold(0, |sum, waiting| sum.saturating_add(waiting.count));
        queue.heartbeats.extend(merged);
    }

    /// The oldest heartbeat waiting; `None` once the inbox is empty, which lets the
    /// writer wake the actor again, and makes the inbox quiet if the actor's state
    /// (`quiet`, with everything before applied) is.
    pub fn pop(&self, quiet: bool) -> Option<Waiting> {
        let mut queue = self.queue();
        let next = queue.heartbeats.pop_front();
        match &next {
            Some(waiting) => queue.count = queue.count.saturating_sub(waiting.count),
            None => {
                queue.woken = false;
                queue.quiet = quiet;
            }
        }
        next
    }

    /// The heartbeats waiting whose sequence number is below `seq`, in order.
    pub fn take_below(&self, seq: u64) -> Vec<RecordedHeartbeat> {
        let mut queue = self.queue();
        let count = queue
            .heartbeats
            .iter()
            .take_while(|waiting| waiting.recorded.seq < seq)
            .count();
        let taken: Vec<Waiting> = queue.heartbeats.drain(..count).collect();
        for waiting in &taken {
            queue.count = queue.count.saturating_sub(waiting.count);
        }
        taken.into_iter().map(|waiting| waiting.recorded).collect()
    }
}

/// token → actor and id → (token, actor, inbox); slug → id and id → slug for the monitors
/// that have a slug (the others pay nothing for it).
#[derive(Default)]
pub struct Directory {
    by_token: DashMap<TokenKey, MonitorHandle>,
    by_id: DashMap<MonitorId, (TokenKey, ActorRef<MonitorMsg>, Arc<Inbox>)>,
    by_slug: DashMap<Box<str>, MonitorId>,
    slug_of: DashMap<MonitorId, Box<str>>,
    /// The rules of the monitors that restrict or sign their pushes.
    access: DashMap<MonitorId, Arc<PushAccess>>,
    /// Whether `access` ever held anything: a push to a monitor without rules checks
    /// this flag, not the map, while no monitor has any (the usual case).
    any_access: AtomicBool,
    /// Each monitor's state as its children see it, and whether it is quiet
    /// (`Monitor::quiet`: an `up` push records only itself), which a push's answer
    /// looks at (`Registry::heartbeat`).
    states: DashMap<MonitorId, (ParentState, bool)>,
    /// parent → the monitors that name it in `parents` (only parents pay for it).
    children: DashMap<MonitorId, Vec<MonitorId>>,
}

impl Directory {
    pub fn by_token(&self, token: &PushToken) -> Option<MonitorHandle> {
        self.by_key(TokenKey::of(token))
    }

    /// The monitor a URL's token text names, without copying the text.
    pub fn by_token_text(&self, text: &str) -> Option<MonitorHandle> {
        self.by_key(TokenKey::of_text(text)?)
    }

    pub fn by_key(&self, key: TokenKey) -> Option<MonitorHandle> {
        self.by_token.get(&key).map(|entry| entry.value().clone())
    }

    /// Every monitor's id and actor (a copy).
    pub fn entries(&self) -> Vec<(MonitorId, ActorRef<MonitorMsg>)> {
        self.by_id
            .iter()
            .map(|entry| (*entry.key(), entry.value().1.clone()))
            .collect()
    }

    pub fn by_id(&self, id: MonitorId) -> Option<ActorRef<MonitorMsg>> {
        self.by_id.get(&id).map(|entry| entry.value().1.clone())
    }

    /// The monitor whose slug is `slug`.
    pub fn by_slug(&self, slug: &str) -> Option<MonitorHandle> {
        let id = *self.by_slug.get(slug)?.value();
        let actor = self.by_id(id)?;
        Some(MonitorHandle { id, actor })
    }

    /// Gives monitor `id` its slug (`None`: none); its former slug stops working.
    pub(super) fn set_slug(&self, id: MonitorId, slug: Option<&str>) {
        let slug: Option<Box<str>> = slug.map(Into::into);
        let former = match &slug {
            Some(slug) => self.slug_of.insert(id, slug.clone()),
            None => self.slug_of.remove(&id).map(|(_, former)| former),
        };
        if let Some(former) = former
            && Some(&former) != slug.as_ref()
        {
            self.by_slug.remove_if(&former, |_, owner| *owner == id);
        }
        if let Some(slug) = slug {
            self.by_slug.insert(slug, id);
        }
    }

    /// Monitor `id`'s rules on who may push, if it has any.
    pub fn access_of(&self, id: MonitorId) -> Option<Arc<PushAccess>> {
        if !self.any_access.load(Ordering::Relaxed) {
            return None;
        }
        self.access.get(&id).map(|entry| Arc::clone(entry.value()))
    }

    /// Gives monitor `id` its rules on who may push (`None`: none).
    pub(super) fn set_access(&self, id: MonitorId, access: Option<PushAccess>) {
        match access {
            Some(access) => {
                self.any_access.store(true, Ordering::Relaxed);
                self.access.insert(id, Arc::new(access));
            }
            None => {
                self.access.remove(&id);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Monitor `id`'s inbox: the one its Directory entry has, or a new one for an
    /// actor about to be registered (`insert`).
    pub(super) fn inbox(&self, id: MonitorId) -> Arc<Inbox> {
        self.by_id
            .get(&id)
            .map(|entry| Arc::clone(&entry.value().2))
            .unwrap_or_default()
    }

    /// Registers `actor` as monitor `id`'s, with its `inbox`, replacing in one step
    /// the actor it had (a rebuilt monitor is never missing meanwhile). If the
    /// monitor's token changed since, the old one stops working.
    pub(super) fn insert(
        &self,
        id: MonitorId,
        token: &PushToken,
        actor: ActorRef<MonitorMsg>,
        inbox: Arc<Inbox>,
    ) {
        let token = TokenKey::of(token);
        self.by_token.insert(
            token,
            MonitorHandle {
                id,
                actor: actor.clone(),
            },
        );
        if let Some((old_token, _, _)) = self.by_id.insert(id, (token, actor, inbox))
            && old_token != token
        {
            self.by_token
                .remove_if(&old_token, |_, handle| handle.id == id);
        }
    }

    /// Forgets a deleted monitor: its token stops working at once, and it holds no
    /// child's alert any more.
    pub(super) fn remove(&self, id: MonitorId) {
        if let Some((_, (token, _, _))) = self.by_id.remove(&id) {
            self.by_token.remove(&token);
        }
        self.set_slug(id, None);
        self.set_access(id, None);
        self.states.remove(&id);
    }

    /// Publishes `monitor`'s state to its children; `true` if it changed.
    pub(super) fn publish_state(&self, monitor: &Monitor) -> bool {
        let state = ParentState::of(monitor);
        self.states
            .insert(monitor.id, (state, monitor.quiet()))
            .map(|(before, _)| before)
            != Some(state)
    }

    /// Whether a push of `status` may change monitor `id`'s state, as its actor last
    /// published it: `down` to a monitor not down, `up` to one not quiet (pending,
    /// down, holding a verdict, paused, muted, owing its channels an alert, a fleet).
    /// Unknown monitors: yes.
    pub fn may_change(&self, id: MonitorId, status: PushStatus) -> bool {
        let Some(state) = self.states.get(&id) else {
            return true;
        };
        let (parent, quiet) = *state.value();
        match status {
            PushStatus::Up => !quiet,
            PushStatus::Down => !parent.down,
        }
    }

    /// What is known of `parents` (those deleted are left out).
    pub fn parents(&self, parents: &[MonitorId]) -> Parents {
        Parents(
            parents
                .iter()
                .filter_map(|parent| self.states.get(parent).map(|state| state.0))
                .collect(),
        )
    }

    /// Records that `child` names `new` as parents instead of `old`.
    pub(super) fn set_parents(&self, child: MonitorId, old: &[MonitorId], new: &[MonitorId]) {
        for parent in old.iter().filter(|parent| !new.contains(parent)) {
            if let dashmap::Entry::Occupied(mut entry) = self.children.entry(*parent) {
                entry.get_mut().retain(|listed| *listed != child);
                if entry.get().is_empty() {
                    entry.remove();
                }
            }
        }
        for parent in new {
            let mut children = self.children.entry(*parent).or_default();
            if !children.contains(&child) {
                children.push(child);
            }
        }
    }

    /// The monitors that name `parent` as a parent.
    pub(super) fn children_of(&self, parent: MonitorId) -> Vec<MonitorId> {
        self.children
            .get(&parent)
            .map(|children| children.clone())
            .unwrap_or_default()
    }

    /// Whether `descendant` depends on `ancestor`, through any number of parents
    /// (or is it).
    pub fn depends_on(&self, descendant: MonitorId, ancestor: MonitorId) -> bool {
        let mut seen = std::collections::HashSet::new();
        let mut next = vec![ancestor];
        while let Some(monitor) = next.pop() {
            if monitor == descendant {
                return true;
            }
            if seen.insert(monitor) {
                next.extend(self.children_of(monitor));
            }
        }
        false
    }

    /// Which monitor `actor` runs. A scan: only a failed or unexpectedly stopped actor
    /// asks, and a map kept for it cost ~86 bytes per monitor at 1M monitors.
    pub(super) fn id_of(&self, actor: ActorId) -> Option<MonitorId> {
        self.by_id
            .iter()
            .find(|entry| entry.value().1.get_id() == actor)
            .map(|entry| *entry.key())
    }

    /// Every monitor's actor, read from the live map (not a copy of it).
    pub(super) fn actors(&self) -> impl Iterator<Item = ActorRef<MonitorMsg>> + '_ {
        self.by_id.iter().map(|entry| entry.value().1.clone())
    }

    /// Moves a monitor to its new token; the old one stops working at once.
    pub(super) fn rotate_token(&self, id: MonitorId, old: &PushToken, new: &PushToken) {
        let (old, new) = (TokenKey::of(old), TokenKey::of(new));
        if let Some(mut entry) = self.by_id.get_mut(&id) {
            let actor = entry.1.clone();
            entry.0 = new;
            drop(entry);
            self.by_token.remove(&old);
            self.by_token.insert(new, MonitorHandle { id, actor });
        }
    }
}

/// Where the store's writer hands each durable batch's heartbeats (`HeartbeatSink`):
/// the monitors' inboxes, and the guard's count of arrivals.
pub struct Fanout {
    pub directory: Arc<Directory>,
    pub guard: Arc<GuardShared>,
}

impl HeartbeatSink for Fanout {
    /// Counts each durable heartbeat as an arrival (`GuardShared::arrived`), queues it
    /// in its monitor's inbox, and wakes the actor unless the heartbeat is an `up` one
    /// to a quiet monitor (which records only itself) and fewer than [`QUIET_BACKLOG`]
    /// wait, or a wake is already on its way. A monitor
    /// no longer here was deleted (its actor has stopped): nothing to tell.
    fn recorded(&self, heartbeats: Vec<RecordedHeartbeat>) {
        for heartbeat in heartbeats {
            let Some(entry) = self.directory.by_id.get(&heartbeat.monitor) else {
                continue;
            };
            self.guard.arrived();
            let (_, actor, inbox) = entry.value();
            if inbox.push(heartbeat) {
                // An actor that is gone or restarting: its successor drains the
                // inbox when it starts.
                let _ = actor.cast(MonitorMsg::Recorded);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::event::{Event, Heartbeat, HeartbeatText, MonitorConfig};
    use crate::domain::ids::Timestamp;
    use crate::domain::machine::{self, Status};

    fn id() -> MonitorId {
        MonitorId::from_bytes([7; 16])
    }

    fn recorded(seq: u64, status: PushStatus, msg: &str, value: Option<f64>) -> RecordedHeartbeat {
        RecordedHeartbeat {
            monitor: id(),
            seq,
            at: Timestamp::from_millis(1_000 * i64::try_from(seq).expect("small")),
            heartbeat: Heartbeat::new(
                status,
                Some(HeartbeatText::truncated(msg.to_owned())),
                value,
            ),
        }
    }

    /// An inbox its actor has emptied with its state quiet.
    fn quiet_inbox() -> Inbox {
        let inbox = Inbox::default();
        inbox.merge_quiet_heartbeats(true);
        assert!(inbox.pop(true).is_none());
        inbox
    }

    fn up_monitor() -> Monitor {
        let mut monitor = Monitor::created(
            id(),
            Timestamp::from_millis(0),
            MonitorConfig::new("job", 60),
            PushToken::from_bytes([1; 16]),
        );
        let first = recorded(1, PushStatus::Up, "first", Some(0.5));
        machine::apply(
            &mut monitor,
            first.seq,
            first.at,
            &Event::HeartbeatReceived(first.heartbeat),
        );
        assert_eq!(monitor.status, Status::Up);
        assert!(monitor.quiet());
        monitor
    }

    fn fold(monitor: &mut Monitor, heartbeats: impl IntoIterator<Item = RecordedHeartbeat>) {
        for recorded in heartbeats {
            let event = Event::HeartbeatReceived(recorded.heartbeat);
            machine::apply(monitor, recorded.seq, recorded.at, &event);
        }
    }

    #[test]
    fn up_heartbeats_to_a_quiet_inbox_wait_as_one_that_folds_to_the_same_state_as_all_of_them() {
        let inbox = quiet_inbox();
        let heartbeats = vec![
            recorded(2, PushStatus::Up, "a", None),
            recorded(3, PushStatus::Up, "b", Some(2.5)),
            recorded(4, PushStatus::Up, "c", None),
            recorded(5, PushStatus::Up, "d", None),
        ];
        for heartbeat in heartbeats.clone() {
            assert!(!inbox.push(heartbeat), "woken for a quiet up push");
        }
        assert_eq!(inbox.len(), 1);
        let waiting = inbox.pop(true).expect("one waits");
        assert_eq!(waiting.count, 4);
        assert_eq!(waiting.recorded.seq, 5);
        assert_eq!(waiting.recorded.heartbeat.value, Some(2.5));
        assert!(inbox.pop(true).is_none());

        let mut each = up_monitor();
        fold(&mut each, heartbeats);
        let mut merged = up_monitor();
        fold(&mut merged, [waiting.recorded]);
        assert_eq!(merged, each);
        assert_eq!(merged.last_value, Some(2.5));
        assert_eq!(merged.last_seq, 5);
    }

    #[test]
    fn a_quiet_inbox_wakes_its_actor_once_its_merged_heartbeats_fill_the_backlog() {
        let inbox = quiet_inbox();
        let backlog = u64::try_from(QUIET_BACKLOG).expect("small");
        for seq in 1..backlog {
            assert!(!inbox.push(recorded(seq, PushStatus::Up, "up", None)));
        }
        assert!(inbox.push(recorded(backlog, PushStatus::Up, "up", None)));
        assert!(!inbox.push(recorded(backlog + 1, PushStatus::Up, "up", None)));
        assert_eq!(inbox.len(), 1);
        assert_eq!(
            inbox.pop(true).expect("waits").count as usize,
            QUIET_BACKLOG + 1
        );
        // Emptied: the backlog counts afresh.
        assert!(inbox.pop(true).is_none());
        assert!(!inbox.push(recorded(backlog + 2, PushStatus::Up, "up", None)));
    }

    #[test]
    fn nothing_is_merged_across_a_down_heartbeat_or_while_the_actor_has_not_said_the_inbox_is_quiet()
     {
        let inbox = quiet_inbox();
        assert!(!inbox.push(recorded(1, PushStatus::Up, "up", None)));
        assert!(inbox.push(recorded(2, PushStatus::Down, "down", None)));
        assert!(!inbox.push(recorded(3, PushStatus::Up, "up", None)));
        assert!(!inbox.push(recorded(4, PushStatus::Up, "up", None)));
        assert_eq!(inbox.len(), 4);
        let seqs: Vec<u64> = std::iter::from_fn(|| inbox.pop(false))
            .map(|waiting| {
                assert_eq!(waiting.count, 1);
                waiting.recorded.seq
            })
            .collect();
        assert_eq!(seqs, vec![1, 2, 3, 4]);

        // Emptied with a state that is not quiet, then told by an actor about to
        // append: nothing merges.
        let inbox = Inbox::default();
        inbox.merge_quiet_heartbeats(true);
        assert!(inbox.pop(false).is_none());
        assert!(inbox.push(recorded(5, PushStatus::Up, "up", None)));
        assert!(!inbox.push(recorded(6, PushStatus::Up, "up", None)));
        assert_eq!(inbox.len(), 2);
        let inbox = quiet_inbox();
        inbox.end_quiet();
        inbox.push(recorded(7, PushStatus::Up, "up", None));
        inbox.push(recorded(8, PushStatus::Up, "up", None));
        assert_eq!(inbox.len(), 2);
        // A settle with heartbeats waiting leaves it as it was.
        inbox.settle(true);
        inbox.push(recorded(9, PushStatus::Up, "up", None));
        assert_eq!(inbox.len(), 3);
    }

    #[test]
    fn heartbeats_put_back_by_a_rebuild_end_the_quiet_and_keep_the_log_order() {
        let inbox = quiet_inbox();
        inbox.push(recorded(5, PushStatus::Up, "up", None));
        inbox.push(recorded(6, PushStatus::Up, "up", None));
        inbox.put_back(vec![
            recorded(3, PushStatus::Up, "up", None),
            recorded(4, PushStatus::Down, "down", None),
        ]);
        inbox.push(recorded(7, PushStatus::Up, "up", None));
        let seqs: Vec<(u64, u32)> = std::iter::from_fn(|| inbox.pop(false))
            .map(|waiting| (waiting.recorded.seq, waiting.count))
            .collect();
        assert_eq!(seqs, vec![(3, 1), (4, 1), (6, 2), (7, 1)]);
    }

    #[test]
    fn heartbeats_taken_below_a_sequence_number_leave_the_backlog_count_right() {
        let inbox = quiet_inbox();
        for seq in 1..=3 {
            inbox.push(recorded(seq, PushStatus::Up, "up", None));
        }
        inbox.end_quiet();
        inbox.push(recorded(4, PushStatus::Up, "up", None));
        let taken = inbox.take_below(4);
        assert_eq!(taken.len(), 1);
        assert_eq!(taken[0].seq, 3);
        assert_eq!(inbox.pop(false).expect("waits").recorded.seq, 4);
        assert!(inbox.pop(true).is_none());
        for seq in 5..(5 + u64::try_from(QUIET_BACKLOG).expect("small") - 1) {
            assert!(!inbox.push(recorded(seq, PushStatus::Up, "up", None)));
        }
    }
}
