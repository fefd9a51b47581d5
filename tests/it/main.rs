//! Black-box tests of pushmon against a real server on `127.0.0.1:0` with a temp store:
//! one test binary, one module per area of the user reference (`docs/`), one harness
//! in `support`, and `docs` checking that the reference keeps up with the code.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod alertmanager;
mod alerts;
mod api;
mod browser;
mod bulk;
mod channels;
mod cli;
mod contract;
mod crash;
mod dashboard;
mod datadir;
mod declare;
mod dependencies;
mod digest;
mod docs;
mod durability;
mod export;
mod fleet;
mod guard;
mod health;
mod hostile;
mod import_graph;
mod jobs;
mod keys;
mod killloop;
mod labels;
mod lifecycle;
mod limits;
mod mute;
mod openapi;
mod ping;
mod prometheus;
mod push;
mod receiver;
mod replay;
mod restart;
mod running;
mod services;
mod smtp;
mod storage;
mod support;
mod tls;
