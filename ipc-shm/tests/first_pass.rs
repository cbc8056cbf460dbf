//! The first pass through a fresh ring takes no page faults: the segment's pages are
//! allocated and mapped when the channel is made, not one by one as the write position
//! first reaches them. (Before, each 4 KiB page of each ring cost a fault in both
//! processes during the first ring's worth of traffic, about one small round trip in
//! sixty for the first megabyte of a default channel, each one several microseconds.)
//! Counted with `getrusage(RUSAGE_THREAD)`: both ends run on this test's thread.

use bytes::Bytes;
use ipc_core::prelude::*;
use ipc_core::Options;
use nix::sys::resource::{getrusage, UsageWho};

/// Ring size of the channel under test (256 pages per ring).
const RING: usize = 1 << 20;
/// Frames of this many bytes: with their 4-byte prefix, a ring's worth and a half.
const FRAME: usize = 60;
/// More faults than this means pages were faulted in one by one: a first pass over
/// two rings mapped twice is ~1 000; what remains (the heap, the runtime) is a few
/// dozen.
const FAULTS_ALLOWED: i64 = 128;

fn minor_faults() -> i64 {
    getrusage(UsageWho::RUSAGE_THREAD)
        .expect("getrusage")
        .minor_page_faults()
}

#[tokio::test(flavor = "current_thread")]
async fn a_ring_s_first_pass_takes_no_page_fault_per_page() {
    let (mut a, mut b) = ipc_shm::pair_with_ring_size(&Options::default(), RING).expect("pair");
    let msg = Bytes::from(vec![b'x'; FRAME]);
    let round_trips = RING * 3 / 2 / (FRAME + 4);
    // Warm the heap and the runtime first, so only the rings' pages are new below.
    for _ in 0..16 {
        a.send(msg.clone()).await.expect("send");
        b.recv().await.expect("recv").expect("a frame");
    }
    let before = minor_faults();
    for _ in 0..round_trips {
        a.send(msg.clone()).await.expect("send");
        let got = b.recv().await.expect("recv").expect("a frame");
        b.send(got).await.expect("echo");
        assert_eq!(a.recv().await.expect("recv").expect("the echo"), msg);
    }
    let faults = minor_faults() - before;
    assert!(
        faults <= FAULTS_ALLOWED,
        "{faults} page faults over {round_trips} round trips through fresh {RING}-byte rings \
         (more than {FAULTS_ALLOWED}: the rings' pages were faulted in one by one)"
    );
}
