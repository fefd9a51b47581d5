//! The actor shell: one ractor actor per monitor, and the registry that owns the
//! token/id maps and supervises the actors.

pub mod actor;
pub mod registry;

pub use registry::{Directory, MonitorHandle, Registry, RegistryError};

#[cfg(test)]
mod tests;
