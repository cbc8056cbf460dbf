//! The asymmetric fence of the wake-up protocol: the side about to sleep pays for the
//! memory ordering with `membarrier(2)`, so the side that publishes bytes or room, on
//! every send and receive, needs no fence of its own.
//!
//! The parking protocol (see [`crate::ring`]) is Dekker's: the announcer stores its
//! position then loads the sleeper's parked flag; the sleeper stores its flag then
//! loads the position. Each pair (store, then load of another word) must not be
//! reordered, or both sides miss each other's store and the sleeper is never woken.
//! With a full fence on both sides that costs a sender a store-buffer drain per
//! publish: on x86 the fence waits until the frame's freshly written cache lines are
//! owned, which is about a fifth of a small send.
//!
//! `membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED)` makes every running thread of every
//! process registered with `MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED` execute a full
//! memory barrier before the call returns (threads not running get one from the
//! context switch). So if the sleeper calls it between raising its flag and looking
//! again, and the announcer's process is registered, a compiler fence is all the
//! announcer needs: the classic asymmetric fence (the Linux man page's example).
//!
//! - **Who is heavy**: a side that can make the call (the kernel supports both
//!   commands and registration succeeded) says so in the segment, in a word beside its
//!   parked flag (`reader_heavy`, `writer_heavy`, see `docs/PROTOCOL.md` 12.3), before
//!   it ever sleeps, and from then on calls `membarrier` each time it gets ready to
//!   sleep.
//! - **Who is light**: an announcer skips its fence only if its own process is
//!   registered and the other side's heavy word is 1. A peer that never sets the word
//!   (an older one, or one with the mode off) keeps every fence on both sides.
//! - **Registering** happens once per process, when it makes its first ring end: 50 µs
//!   in a single-threaded process here, about 12 ms in a multi-threaded one (the kernel
//!   then waits for an RCU grace period), on the thread that makes the channel.
//! - **Cost**: a sleeper pays one system call (about 0.6 µs here) plus an
//!   inter-processor interrupt to each CPU then running a registered process. Sleeping
//!   comes after the spin, off the busy path; but a host with many registered processes
//!   that sleep and wake often interrupts its CPUs that often. `IPC_SHM_MEMBARRIER=off`
//!   turns the mode off for a process (both roles; read once).
//!
//! ```text
//! announcer (light)                   sleeper (heavy)
//! store(position)                     store(parked = 1)
//! compiler fence                      membarrier(GLOBAL_EXPEDITED)
//! load(parked) -> wake if 1           load(position) -> sleep if unchanged
//! ```

use std::sync::atomic::{compiler_fence, fence, AtomicU32, Ordering};
use std::sync::OnceLock;

use rustix::thread::{membarrier, membarrier_query, MembarrierCommand, MembarrierQuery};

/// The environment variable that turns the asymmetric fence off for this process
/// (`off`, `0` or `no`), for hosts where its interrupts are unwelcome or to compare.
/// Read once, when the process makes its first shared-memory channel; a peer with the
/// fence off and one with it on work together (both fence when either is off).
///
/// ```
/// // A child that should fence on both sides:
/// let mut cmd = std::process::Command::new("true");
/// cmd.env(ipc_shm::MEMBARRIER_ENV, "off");
/// assert_eq!(ipc_shm::MEMBARRIER_ENV, "IPC_SHM_MEMBARRIER");
/// ```
pub const MEMBARRIER_ENV: &str = "IPC_SHM_MEMBARRIER";

/// Whether this process uses the asymmetric fence: decided once, the first time a ring
/// asks. Registering is done then, once for the process.
fn enabled() -> bool {
    static ENABLED: OnceLock<bool> = OnceLock::new();
    *ENABLED.get_or_init(|| {
        let off = std::env::var(MEMBARRIER_ENV)
            .is_ok_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "off" | "0" | "no"));
        if off {
            return false;
        }
        let needed = MembarrierQuery::GLOBAL_EXPEDITED | MembarrierQuery::REGISTER_GLOBAL_EXPEDITED;
        if !membarrier_query().contains(needed) {
            tracing::debug!(
                "membarrier(GLOBAL_EXPEDITED) is not available: ipc-shm fences on both sides"
            );
            return false;
        }
        match membarrier(MembarrierCommand::RegisterGlobalExpedited) {
            Ok(()) => true,
            Err(e) => {
                tracing::debug!(
                    "membarrier registration failed ({e}): ipc-shm fences on both sides"
                );
                false
            }
        }
    })
}

/// This side's half of the protocol for one ring end: whether it sleeps heavily (and
/// says so in the segment), and whether it may announce lightly to a heavy peer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Barrier {
    on: bool,
}

impl Barrier {
    /// The mode this process runs in (see the module docs).
    pub(crate) fn for_this_process() -> Barrier {
        Barrier { on: enabled() }
    }

    /// The value of our heavy word in the segment: 1 if we sleep heavily.
    pub(crate) fn heavy_word(self) -> u32 {
        u32::from(self.on)
    }

    /// After storing our position, before loading the other side's parked flag:
    /// nothing but a compiler fence if the other side sleeps heavily (`peer_heavy`)
    /// and our process is registered; a full fence otherwise.
    #[inline]
    pub(crate) fn announce(self, peer_heavy: bool) {
        if self.on && peer_heavy {
            compiler_fence(Ordering::SeqCst);
        } else {
            fence(Ordering::SeqCst);
        }
    }

    /// After raising our parked flag, before looking at the other side's position
    /// again: `membarrier` if we sleep heavily, a full fence otherwise.
    ///
    /// `false`: the heavy barrier failed (it cannot once registration worked, short of
    /// a seccomp filter installed since). Then we stop sleeping heavily: `our_heavy`
    /// (our word in the segment) goes back to 0, so announcers fence again, and the
    /// caller must not sleep on this look (an announcer may have skipped its fence just
    /// before); it looks again after its next spin, when such a store has long reached
    /// memory.
    #[must_use]
    pub(crate) fn before_sleep(&mut self, our_heavy: &AtomicU32) -> bool {
        if !self.on {
            fence(Ordering::SeqCst);
            return true;
        }
        match membarrier(MembarrierCommand::GlobalExpedited) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(
                    "membarrier(GLOBAL_EXPEDITED) failed ({e}): this ring end fences from \
                     now on"
                );
                self.on = false;
                our_heavy.store(0, Ordering::SeqCst);
                false
            }
        }
    }
}
