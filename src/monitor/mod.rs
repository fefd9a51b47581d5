//! The actor shell: one ractor actor per monitor (`actor.rs`, its messages in
//! `messages.rs`), the token/id maps handlers read (`directory.rs`), the registry
//! that spawns and supervises the actors (`registry.rs`), and the reader of the
//! dispatcher's reports that has each delivery's outcome recorded (`outcomes.rs`),
//! and the broadcast of durable changes to live watchers (`changes.rs`); the guard
//! against false alarm storms (`guard.rs`, its task, over `guard_state.rs`, what
//! actors share with it). Imports go guard → registry → actor → directory → messages
//! (and `changes`, `guard_state`, `deciding`: which monitors this pod decides
//! deadlines for in the clustered mode), never back.

pub mod actor;
pub mod changes;
pub mod deciding;
pub mod directory;
pub mod guard;
pub mod guard_state;
pub mod messages;
pub mod outcomes;
pub mod registry;

pub use directory::{Directory, MonitorHandle};
pub use guard_state::{GuardShared, GuardView};
pub use outcomes::record_outcomes;
pub use registry::{Registry, RegistryError};

#[cfg(test)]
mod tests;
#[cfg(test)]
mod timing_tests;
