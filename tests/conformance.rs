//! Every conformance case of `ipc_core::testkit`, against every transport, each a named
//! test (`uds::ping_pong`, `tcp::ping_pong`, ...). Run one with
//! `cargo test --test conformance -- uds::ping_pong`.
//!
//! The children of the cases are this binary itself, re-executed: `main` first checks
//! whether it was started as a testkit child.
//!
//! Adding a transport = one line in `subjects()`.

mod conformance_suite;

fn main() {
    conformance_suite::run(&[]);
}
