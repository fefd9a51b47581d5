//! The pure core: ids, events, the monitor state machine, what a history says over
//! time (uptime, incidents), labels and their selectors, and the data of alerts,
//! channels, API keys, badges and status pages; the records of the clustered mode's
//! shard logs and which decisions in them count (`fence`).
//!
//! Nothing here does I/O: no tokio, ractor, fjall, axum or metrics. Time comes in as
//! an argument; the one exception is `generate` on ids, a UUID v7 whose first bits
//! are the current time.

pub mod alert;
pub mod api_key;
pub mod channel;
pub mod event;
pub mod fence;
pub mod guard;
pub mod ids;
pub mod labels;
pub mod machine;
pub mod name;
pub mod ping_key;
pub mod publication;
pub mod schedule;
pub mod selector;
pub mod signal;
pub mod slug;
pub mod timeline;
