//! The actor shell: one ractor actor per monitor (`actor.rs`, its messages in
//! `messages.rs`), the token/id maps handlers read (`directory.rs`), the registry
//! that spawns and supervises the actors (`registry.rs`), and the reader of the
//! dispatcher's reports that has each delivery's outcome recorded (`outcomes.rs`),
//! and the broadcast of durable changes to live watchers (`changes.rs`). Imports go
//! registry → actor → directory → messages (and `changes`), never back.

pub mod actor;
pub mod changes;
pub mod directory;
pub mod messages;
pub mod outcomes;
pub mod registry;

pub use directory::{Directory, MonitorHandle};
pub use outcomes::record_outcomes;
pub use registry::{Registry, RegistryError};

#[cfg(test)]
mod tests;
#[cfg(test)]
mod timing_tests;
