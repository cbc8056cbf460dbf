//! Every conformance case against every transport, with every stream channel (uds,
//! tcp, pipe, fifo, stdio; parent and child) in low-latency mode: receives poll for up
//! to 50 µs before parking (`IPC_LOW_LATENCY=50`, see `ipc::spin`). Run one with
//! `cargo test --test conformance_low_latency -- uds::ping_pong`.

mod conformance_suite;

fn main() {
    conformance_suite::run(&[(ipc::spin::LOW_LATENCY_ENV, "50")]);
}
