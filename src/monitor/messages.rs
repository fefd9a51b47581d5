//! What a monitor actor is asked. A file of its own so that the Directory, which holds
//! actors' addresses and which the actor itself uses, need not import the actor:
//! imports go registry → actor → directory → messages.

use tokio::sync::oneshot;

use crate::domain::event::Heartbeat;
use crate::domain::machine::{Command, Monitor, Rejection};
use crate::domain::signal::Signal;
use crate::store::StoreError;

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
    /// A push arrived; answered once it is durable.
    Heartbeat(Heartbeat, Reply<()>),
    /// A job's signal arrived (boxed: it is rare, and larger than a heartbeat);
    /// answered once it is durable.
    Signal(Box<Signal>, Reply<()>),
    /// A management command; answered with the state after it. Boxed: a
    /// configuration patch is large, and every heartbeat's message would be as large.
    Execute(Box<Command>, oneshot::Sender<Result<Monitor, CommandError>>),
    /// The current state, for the API and tests.
    GetState(oneshot::Sender<Monitor>),
    /// The deadline timer of the given generation fired.
    Tick(u64),
}
