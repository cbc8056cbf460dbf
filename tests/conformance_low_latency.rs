//! Every conformance case against the transports where low-latency mode does
//! something, with their channels (parent and child) in that mode: receives poll for
//! up to 50 µs before parking (`IPC_LOW_LATENCY=50`, see `ipc::spin`). Those are the
//! byte-stream transports, whose receiving half is the shared stream receiver (uds,
//! tcp, pipe, fifo, stdio). The signal, node and shm transports have receivers of their
//! own that ignore the mode (shm always spins a bounded while before it parks): their
//! runs would repeat `tests/conformance.rs`, so they are left out. Run one with
//! `cargo test --test conformance_low_latency -- uds::ping_pong`.

mod conformance_suite;

/// The transports whose receivers spin in low-latency mode.
const LOW_LATENCY_TRANSPORTS: &[&str] = &["uds", "tcp", "pipe", "fifo", "stdio"];

fn main() {
    conformance_suite::run_on(
        &[(ipc::spin::LOW_LATENCY_ENV, "50")],
        Some(LOW_LATENCY_TRANSPORTS),
    );
}
