//! What a monitor actor is asked. A file of its own so that the Directory, which holds
//! actors' addresses and which the actor itself uses, need not import the actor:
//! imports go registry → actor → directory → messages.

use tokio::sync::oneshot;

use crate::domain::ids::ChannelId;
use crate::domain::machine::ConfigPatch;
use crate::domain::machine::{Command, Monitor, Rejection};
use crate::domain::signal::Signal;
use crate::store::{Append, Appended, FoldPosition, StoreError};

/// A one-shot answer to whoever sent the message.
pub type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

/// Why a management command failed.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Refused by `machine::check`; nothing was recorded.
    #[error("{0}")]
    Rejected(Rejection),
}

/// What a monitor actor is asked to do.
pub enum MonitorMsg {
    /// Durable heartbeats wait in the monitor's inbox (`directory::Inbox`): apply
    /// them in the log's order and decide what they cause.
    Recorded,
    /// A job's signal arrived (boxed: it is rare, and larger than a heartbeat);
    /// answered once it is durable.
    Signal(Box<Signal>, Reply<()>),
    /// A management command; answered with the state after it. Boxed: a
    /// configuration patch is large, and every heartbeat's message would be as large.
    Execute(Box<Command>, oneshot::Sender<Result<Monitor, CommandError>>),
    /// A bulk change (`Registry::bulk`): decide it, answer with the append, hold
    /// until told whether it was written.
    Bulk(
        Box<BulkChange>,
        oneshot::Sender<Result<BulkPrepared, CommandError>>,
    ),
    /// The current state, for the API and tests.
    GetState(oneshot::Sender<Monitor>),
    /// The deadline timer of the given generation fired.
    Tick(u64),
    /// A parent changed state (or was deleted): look again at when an alert held
    /// for it is due.
    ParentChanged,
    /// Clustered mode: a change the shard log's fold applies (a config record, a
    /// decision read back effective, a delivery's outcome); adopt its events (owe
    /// their deliveries only if this pod decides for the monitor). Answers the
    /// sequence number of the last event the actor then holds.
    Decided(Box<FoldedChange>, Reply<u64>),
    /// Clustered mode: check and decide a management command without recording it;
    /// the events it causes and the state they would leave (the registry publishes
    /// them as a config record, and every pod's fold has them adopted).
    Propose(
        Box<Command>,
        oneshot::Sender<Result<(Vec<crate::domain::event::Stamped>, Monitor), CommandError>>,
    ),
    /// Clustered mode: a job's signal folded from the shard log, received at the
    /// given time by the pod that took it: decided at that time on this copy, as every
    /// pod decides it. Answers the sequence number of the last event the actor then
    /// holds.
    FoldedSignal(Box<FoldedSignal>, Reply<u64>),
}

/// Events folded from a shard log, and the stream position their append carries
/// (`store::FoldPosition`: written in the same batch).
pub struct FoldedChange {
    pub events: Vec<crate::domain::event::Stamped>,
    /// The local outbox entry these events settle (a delivery's outcome recorded).
    pub settled: Option<(u64, ChannelId)>,
    /// `None`: not a record's own change (an outcome a takeover settles).
    pub position: Option<FoldPosition>,
}

/// A job's signal folded from a shard log: received at `at` by the pod that took it;
/// what it causes is appended with the stream position `position`.
pub struct FoldedSignal {
    pub signal: Signal,
    pub at: crate::domain::ids::Timestamp,
    pub position: FoldPosition,
}

/// What a bulk change does to each monitor it selects; decided on each monitor's own
/// state (adding a channel keeps the others).
#[derive(Clone, Debug)]
pub enum BulkChange {
    Command(Box<Command>),
    SetChannels(Vec<ChannelId>),
    AddChannels(Vec<ChannelId>),
    RemoveChannels(Vec<ChannelId>),
}

impl BulkChange {
    /// The channels it names that must exist.
    pub fn named_channels(&self) -> &[ChannelId] {
        match self {
            Self::SetChannels(channels) | Self::AddChannels(channels) => channels,
            Self::Command(_) | Self::RemoveChannels(_) => &[],
        }
    }

    /// The command it is for `monitor`; a change of channels that changes nothing is
    /// no command at all (`Update` with an empty patch decides nothing).
    pub fn command(&self, monitor: &Monitor) -> Command {
        let current = &monitor.config.channels;
        let channels = match self {
            Self::Command(command) => return (**command).clone(),
            Self::SetChannels(channels) => channels.clone(),
            Self::AddChannels(added) => {
                let mut channels = current.clone();
                for channel in added {
                    if !channels.contains(channel) {
                        channels.push(*channel);
                    }
                }
                channels
            }
            Self::RemoveChannels(removed) => current
                .iter()
                .filter(|channel| !removed.contains(channel))
                .copied()
                .collect(),
        };
        let mut patch = ConfigPatch::default();
        if &channels != current {
            patch.channels = Some(channels);
        }
        Command::Update(patch)
    }
}

/// A monitor's answer to a bulk change: its name, the kinds of the events it would
/// record, and (when it records any) its append and where to say what became of it.
pub struct BulkPrepared {
    pub name: String,
    pub kinds: Vec<&'static str>,
    pub append: Option<Append>,
    pub decision: Option<oneshot::Sender<BulkDecision>>,
}

/// What became of a monitor's part of a bulk change.
pub enum BulkDecision {
    /// Durable: adopt the new state.
    Written(Appended),
    /// Not written (a dry run, another monitor refused, the write failed).
    Abandoned,
}
