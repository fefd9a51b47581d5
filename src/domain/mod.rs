//! The pure core: ids, events and the monitor state machine.
//!
//! Nothing here does I/O or reads the clock: no tokio, ractor, fjall, axum or metrics.
//! Time comes in as an argument.

pub mod alert;
pub mod api_key;
pub mod channel;
pub mod event;
pub mod ids;
pub mod machine;
