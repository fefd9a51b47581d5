//! The actor shell: one ractor actor per monitor (`actor.rs`, its messages in
//! `messages.rs`), the token/id maps handlers read (`directory.rs`), and the registry
//! that spawns and supervises the actors (`registry.rs`).

pub mod actor;
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
