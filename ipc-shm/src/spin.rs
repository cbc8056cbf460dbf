//! [`Spin`]: how long a side that finds its ring empty (or full) keeps looking before it
//! goes to sleep on its [`Bell`](crate::bell::Bell).
//!
//! Sleeping and being woken costs two system calls and a scheduler wake-up (several
//! microseconds); a peer that answers within a microsecond or two is cheaper to wait
//! for by looking again. So a side looks again for up to a window of time, then
//! sleeps. The window adapts to what spinning buys:
//!
//! - a wait that ended while spinning widens the window to twice that wait (so the
//!   next similar one is spun through too), up to [`MAX_WINDOW`];
//! - a wait that ended only after sleeping halves it (spinning did not pay: the peer is
//!   slow, or needs this very CPU to answer), down to a couple of microseconds;
//! - one wait in [`PROBE_EVERY`] spins the whole [`MAX_WINDOW`], so a window that
//!   shrank can grow again when the peer speeds up.
//!
//! An idle channel therefore sleeps after at most one window and then costs no CPU.
//!
//! "Looking again" never blocks the tokio runtime: the task wakes itself and returns
//! `Pending`, so the runtime runs every other ready task (and polls I/O) between two
//! looks. When this thread may run on one CPU only (pinned, so the peer may well share
//! it), each look also yields the CPU to the kernel (`sched_yield`), so that peer gets
//! to run and answer instead of waiting for our time slice to end; otherwise a wait
//! spins [`SPIN_ALONE`] before it starts yielding, since a peer on another CPU answers
//! sooner than a `sched_yield` returns.

use std::time::{Duration, Instant};

/// Longest a side spins before it sleeps.
pub(crate) const MAX_WINDOW: Duration = Duration::from_micros(50);
/// Shortest window (a few looks, so a reply already on its way is not slept through).
const MIN_WINDOW: Duration = Duration::from_micros(2);
/// How long a wait spins without giving the CPU away, when the thread may use several
/// CPUs.
pub(crate) const SPIN_ALONE: Duration = Duration::from_micros(5);
/// One wait in this many spins the whole [`MAX_WINDOW`].
pub(crate) const PROBE_EVERY: u32 = 16;

/// The spin state of one side of one ring.
#[derive(Debug)]
pub(crate) struct Spin {
    /// When the current wait began (`None` while not waiting).
    since: Option<Instant>,
    window: Duration,
    /// Waits so far (to pick the probes).
    waits: u32,
    /// The current wait is a probe.
    probing: bool,
    /// How long a wait spins before each look also yields the CPU.
    alone: Duration,
}

impl Default for Spin {
    fn default() -> Self {
        Spin {
            since: None,
            window: MAX_WINDOW,
            waits: 0,
            probing: false,
            alone: if on_one_cpu() {
                Duration::ZERO
            } else {
                SPIN_ALONE
            },
        }
    }
}

/// This thread may run on one CPU only (it was pinned, or the machine has one).
fn on_one_cpu() -> bool {
    use nix::sched::{sched_getaffinity, CpuSet};
    match sched_getaffinity(nix::unistd::Pid::from_raw(0)) {
        Ok(set) => {
            (0..CpuSet::count())
                .filter(|&cpu| set.is_set(cpu).unwrap_or(false))
                .take(2)
                .count()
                < 2
        }
        Err(_) => false,
    }
}

impl Spin {
    /// The ring had nothing for us: true while the wait is young enough to look again
    /// instead of sleeping (giving the CPU away for a moment once it is not brand new).
    pub(crate) fn keep_spinning(&mut self) -> bool {
        let now = Instant::now();
        let since = match self.since {
            Some(since) => since,
            None => {
                self.waits = self.waits.wrapping_add(1);
                self.probing = self.waits % PROBE_EVERY == 0;
                self.since = Some(now);
                now
            }
        };
        let spun = now.duration_since(since);
        let limit = if self.probing {
            MAX_WINDOW
        } else {
            self.window
        };
        if spun >= limit {
            return false;
        }
        if spun >= self.alone {
            std::thread::yield_now();
        }
        true
    }

    /// The wait (if any) is over; `slept` says whether it had to go to sleep. Adapt the
    /// window to it.
    pub(crate) fn done(&mut self, slept: bool) {
        let Some(since) = self.since.take() else {
            return;
        };
        self.window = if slept {
            (self.window / 2).max(MIN_WINDOW)
        } else {
            self.window
                .max(since.elapsed() * 2)
                .clamp(MIN_WINDOW, MAX_WINDOW)
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_halves_after_sleeps_grows_after_spins_and_stays_bounded() {
        let mut spin = Spin::default();
        assert!(spin.keep_spinning(), "a fresh wait spins");
        spin.since = Some(Instant::now() - Duration::from_millis(5));
        assert!(!spin.keep_spinning(), "an old wait sleeps");
        spin.done(true);
        assert_eq!(spin.window, MAX_WINDOW / 2);
        for _ in 0..20 {
            assert!(spin.keep_spinning());
            spin.done(true);
        }
        assert_eq!(spin.window, MIN_WINDOW);
        spin.done(true); // not waiting: nothing changes
        assert_eq!(spin.window, MIN_WINDOW);
        assert!(spin.keep_spinning());
        spin.since = Some(Instant::now() - Duration::from_micros(10));
        spin.done(false); // a 10 µs wait spun through: the window covers it next time
        assert!(
            spin.window >= Duration::from_micros(20),
            "{:?}",
            spin.window
        );
        spin.since = Some(Instant::now());
        spin.window = MAX_WINDOW;
        spin.since = Some(Instant::now() - Duration::from_secs(1));
        spin.done(false);
        assert_eq!(spin.window, MAX_WINDOW, "never above the maximum");
    }

    #[test]
    fn one_wait_in_sixteen_probes_the_whole_window() {
        let mut spin = Spin {
            window: MIN_WINDOW,
            ..Spin::default()
        };
        let mut probes = 0;
        for _ in 0..PROBE_EVERY * 2 {
            spin.keep_spinning();
            probes += usize::from(spin.probing);
            spin.since = None;
        }
        assert_eq!(probes, 2);
    }
}
