//! Black-box tests of pushmon against a real server on `127.0.0.1:0` with a temp store
//! (STYLE 9c): one test binary, one module per area of SPEC.md, one harness in
//! `support`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod alerts;
mod api;
mod channels;
mod crash;
mod declare;
mod health;
mod hostile;
mod import_graph;
mod keys;
mod killloop;
mod lifecycle;
mod limits;
mod prometheus;
mod push;
mod receiver;
mod restart;
mod running;
mod smtp;
mod storage;
mod support;
mod tls;
