//! The conformance run shared by `tests/conformance.rs` (the default mode, every
//! transport) and `tests/conformance_low_latency.rs` (low-latency mode, the transports
//! where it does something).

use ipc::testkit::{self, CountingAlloc, Subject};
use libtest_mimic::{Arguments, Failed, Trial};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// The transports under test, with the scale each one runs the cases at.
fn subjects() -> Vec<(&'static str, Subject)> {
    let t = |name: &str| ipc::registry().get(name).expect("transport is built in");
    vec![
        ("uds", Subject::new(t("uds"))),
        ("tcp", Subject::new(t("tcp"))),
        ("pipe", Subject::new(t("pipe"))),
        ("fifo", Subject::new(t("fifo")).one_client_at_a_time()),
        ("stdio", Subject::new(t("stdio"))),
        // 8 payload bytes per signal: the biggest frame is 64 KiB instead of 8 MiB, and
        // the bulk cases use frames of up to 256 B; every case still runs. Only with the
        // facade's opt-in feature `signal` (`cargo test --workspace` turns it on; `cargo
        // test -p ipc-kit` alone builds without it).
        #[cfg(feature = "signal")]
        ("signal", Subject::new(t("signal")).scaled(64 * 1024, 256)),
        // Node's channel carries one JSON text per message (its capabilities say so):
        // every payload travels as a JSON string (`testkit::Frames`), so every case runs. The child is this
        // binary, a Rust child of a Rust parent over Node's wire protocol (it finds the
        // channel through NODE_CHANNEL_FD, as under a Node parent): a Node script could
        // not play the roles that check the child's own receive side (yield, cut
        // stream, postcard, rpc). Real Node processes are in tests/node.rs and
        // ipc-node/tests. Node's channel has no listener: the two listener cases check
        // that `listen` is refused.
        ("node", Subject::new(t("node"))),
        // Frames through two shared-memory rings; a lost peer is seen on the rings'
        // doorbell sockets.
        ("shm", Subject::new(t("shm"))),
    ]
}

/// Run every case against every transport, after setting `env` (inherited by the
/// cases' children).
#[allow(dead_code)] // each test binary uses one of `run` and `run_on`
pub(crate) fn run(env: &[(&str, &str)]) {
    run_on(env, None)
}

/// Run every case against the transports named in `only` (every one when `None`),
/// after setting `env` (inherited by the cases' children).
pub(crate) fn run_on(env: &[(&str, &str)], only: Option<&[&str]>) {
    // Before any thread starts, so every thread (and every child) inherits the mask.
    // Only with the facade's opt-in feature `signal` (on in `cargo test --workspace`).
    #[cfg(feature = "signal")]
    ipc::signal::block_transport_signals().expect("block the signal transport's signals");
    if let Some(code) = testkit::child_main(ipc::registry()) {
        std::process::exit(code);
    }
    for (key, value) in env {
        // Before any thread starts (the signal mask above starts none).
        std::env::set_var(key, value);
    }
    let args = Arguments::from_args();
    let mut trials = Vec::new();
    for (name, subject) in subjects() {
        if only.is_some_and(|names| !names.contains(&name)) {
            continue;
        }
        for case in testkit::cases() {
            let subject = subject.clone();
            trials.push(Trial::test(format!("{name}::{}", case.name), move || {
                testkit::run_case(case, &subject).map_err(|e| Failed::from(e.to_string()))
            }));
        }
    }
    libtest_mimic::run(&args, trials).exit();
}
