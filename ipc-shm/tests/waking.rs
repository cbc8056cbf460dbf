//! Waking: a side that went to sleep on an empty (or full) ring is always woken when
//! the other side acts, whatever the timing (no lost wake-up: the exchanges below pause
//! at random, shorter and longer than the spin, so both sides park and unpark in every
//! order), whether both processes use the asymmetric fence (`membarrier`, see
//! [`ipc_shm::MEMBARRIER_ENV`]) or only one does; and a side that waits costs no CPU once
//! its spin is over.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use ipc_core::prelude::*;
use ipc_core::testkit::{child_command, role};
use ipc_core::Options;

ipc_core::child_roles! {
    /// What a re-executed child of this test binary does.
    enum Role {
        /// Send every frame back, after a random pause, until the parent closes.
        PausingEcho,
        /// Read frames (pausing at random), check their sequence numbers, and at the
        /// parent's goodbye send back how many arrived, then close.
        PausingSink,
    }
}

/// Round trips of the ping-pong test.
const ROUND_TRIPS: u32 = 3000;
/// Frames of the streaming test.
const STREAMED: u32 = 20_000;
/// Guard against a hang (a lost wake-up would be one): generous, the machine is shared.
const GUARD: Duration = Duration::from_secs(120);

/// The children's entry point: does nothing in the parent's test run.
#[test]
fn child() {
    let Some(role) = role::<Role>() else { return };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let endpoint = ipc_shm::ShmAddress::Fd(ipc_shm::CHILD_FD).into();
        let mut ch = ipc_shm::connect(&endpoint, &Options::default())
            .await
            .expect("connect to the parent");
        let mut rng = Rng::new(u64::from(std::process::id()));
        match role {
            Role::PausingEcho => {
                while let Some(frame) = ch.recv().await.expect("recv") {
                    rng.pause();
                    ch.send(frame).await.expect("send");
                }
            }
            Role::PausingSink => {
                let mut count = 0u32;
                while let Some(frame) = ch.recv().await.expect("recv") {
                    assert_eq!(frame[..4], count.to_be_bytes(), "frames out of order");
                    count += 1;
                    if count % 16 == 0 {
                        rng.pause();
                    }
                }
                ch.send(Bytes::copy_from_slice(&count.to_be_bytes()))
                    .await
                    .expect("send the count");
            }
        }
        ch.close().await.expect("close");
    });
}

/// xorshift64*: reproducible pauses without a dependency.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Nothing, a busy pause around the spin's hold, or a sleep around and well past
    /// its window (so the other side parks): pacing, not synchronisation.
    fn pause(&mut self) {
        let r = self.next();
        match r % 8 {
            0..=2 => {}
            3 | 4 => {
                let until = std::time::Instant::now() + Duration::from_micros(r >> 8 & 15);
                while std::time::Instant::now() < until {
                    std::hint::spin_loop();
                }
            }
            5 | 6 => std::thread::sleep(Duration::from_micros(r >> 8 & 127)),
            _ => std::thread::sleep(Duration::from_micros(r >> 8 & 2047)),
        }
    }
}

fn seed() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("clock")
        .subsec_nanos();
    u64::from(nanos)
}

/// The child's command: its fences as this process's (`Both`), or, for a peer that
/// fences on both sides while we sleep with `membarrier` (`Mixed`: an older peer, or one
/// with the asymmetric fence off), with [`ipc_shm::MEMBARRIER_ENV`] off.
fn child_with(role: Role, fences: Fences) -> std::process::Command {
    let mut cmd = child_command(role);
    if fences == Fences::Mixed {
        cmd.env(ipc_shm::MEMBARRIER_ENV, "off");
    }
    cmd
}

/// Whether parent and child fence alike (see [`child_with`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fences {
    Both,
    Mixed,
}

async fn ping_pong_with_random_pauses(fences: Fences) {
    let seed = seed();
    let (mut child, mut ch) =
        ipc_shm::spawn(child_with(Role::PausingEcho, fences), &Options::default())
            .await
            .expect("spawn");
    let mut rng = Rng::new(seed);
    tokio::time::timeout(GUARD, async {
        for i in 0..ROUND_TRIPS {
            let len = 1 + (rng.next() % 200) as usize;
            let ping = Bytes::from(vec![i as u8; len]);
            ch.send(ping.clone()).await.expect("send");
            let pong = ch.recv().await.expect("recv").expect("a pong");
            assert_eq!(pong, ping, "round trip {i}");
            rng.pause();
        }
    })
    .await
    .unwrap_or_else(|_| panic!("a round trip hung (a lost wake-up?); seed {seed}, {fences:?}"));
    ch.close().await.expect("close");
    assert_eq!(ch.recv().await.expect("the goodbye"), None);
    assert!(child.wait().await.expect("wait").success());
}

async fn stream_with_a_pausing_reader(fences: Fences) {
    let seed = seed();
    // A 4 KiB ring fills at once: the sender parks on it again and again.
    let (mut child, mut ch) = ipc_shm::spawn_with_ring_size(
        child_with(Role::PausingSink, fences),
        &Options::default(),
        4096,
    )
    .await
    .expect("spawn");
    let mut rng = Rng::new(seed);
    tokio::time::timeout(GUARD, async {
        for i in 0..STREAMED {
            let mut frame = i.to_be_bytes().to_vec();
            frame.resize(4 + (rng.next() % 700) as usize, 0xA5);
            ch.send(frame.into()).await.expect("send");
            if i % 64 == 0 {
                rng.pause();
            }
        }
        ch.close().await.expect("close");
        let count = ch.recv().await.expect("recv").expect("the count");
        assert_eq!(count[..], STREAMED.to_be_bytes());
        assert_eq!(ch.recv().await.expect("the goodbye"), None);
    })
    .await
    .unwrap_or_else(|_| panic!("the stream hung (a lost wake-up?); seed {seed}, {fences:?}"));
    assert!(child.wait().await.expect("wait").success());
}

#[tokio::test(flavor = "current_thread")]
async fn a_ping_pong_with_random_pauses_never_loses_a_wake_up() {
    ping_pong_with_random_pauses(Fences::Both).await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_stream_through_a_small_ring_with_a_pausing_reader_never_loses_a_wake_up() {
    stream_with_a_pausing_reader(Fences::Both).await;
}

/// The same with a child that fences on both sides: the asymmetric fence works with
/// a peer that does not use it, in both roles.
#[tokio::test(flavor = "current_thread")]
async fn a_ping_pong_with_a_peer_that_always_fences_never_loses_a_wake_up() {
    ping_pong_with_random_pauses(Fences::Mixed).await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_stream_with_a_reader_that_always_fences_never_loses_a_wake_up() {
    stream_with_a_pausing_reader(Fences::Mixed).await;
}

/// CPU time this thread has used.
fn thread_cpu() -> Duration {
    use nix::sys::resource::{getrusage, UsageWho};
    let usage = getrusage(UsageWho::RUSAGE_THREAD).expect("getrusage");
    let (user, system) = (usage.user_time(), usage.system_time());
    let micros = |t: nix::sys::time::TimeVal| {
        Duration::from_secs(t.tv_sec() as u64) + Duration::from_micros(t.tv_usec() as u64)
    };
    micros(user) + micros(system)
}

/// How much CPU this thread (the whole one-threaded runtime) uses while `waiting`
/// waits for `idle`; `waiting` must not finish.
async fn cpu_while<T: std::fmt::Debug>(
    idle: Duration,
    waiting: impl std::future::Future<Output = T>,
) -> Duration {
    let before = thread_cpu();
    tokio::select! {
        done = waiting => panic!("the wait ended: {done:?}"),
        _ = tokio::time::sleep(idle) => {}
    }
    thread_cpu() - before
}

#[tokio::test(flavor = "current_thread")]
async fn an_idle_channel_costs_no_cpu() {
    const IDLE: Duration = Duration::from_secs(1);
    let (mut a, mut b) = ipc_shm::pair_with_ring_size(&Options::default(), 4096).expect("pair");
    // Warm up: a few exchanges, so the spin window is where a busy channel leaves it.
    for _ in 0..100 {
        a.send(Bytes::from_static(b"ping")).await.expect("send");
        b.recv().await.expect("recv").expect("a frame");
    }
    let receiving = cpu_while(IDLE, b.recv()).await;
    // A sender blocked on a full ring (nobody reads) waits the same way.
    a.send(Bytes::from(vec![1u8; 3000])).await.expect("send");
    let sending = cpu_while(IDLE, a.send(Bytes::from(vec![2u8; 3000]))).await;
    println!("CPU over {IDLE:?} idle: receiving {receiving:?}, sending on a full ring {sending:?}");
    // Expected: well under a millisecond (one spin window of at most 50 µs, then
    // asleep). The bound is generous: this only has to tell sleeping from spinning.
    for (what, used) in [("receiving", receiving), ("sending", sending)] {
        assert!(
            used < IDLE / 10,
            "{what} used {used:?} of CPU over {IDLE:?} of waiting"
        );
    }
}
