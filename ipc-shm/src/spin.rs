//! [`Spin`]: how long a side that finds its ring empty (or full) keeps looking before it
//! goes to sleep on its [`Bell`](crate::bell::Bell), and how it looks.
//!
//! Sleeping and being woken costs two system calls and a scheduler wake-up (several
//! microseconds); a peer that answers within a microsecond or two is cheaper to wait
//! for by looking again. So a side looks again for up to a **window** of time, then
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
//! **Looking in place.** Within one poll, a side looks at the ring's position word in a
//! tight loop (with the CPU's pause hint) for at most a **hold** time, without
//! returning to the runtime: handing the task back to tokio and being polled again
//! costs far more than a look (for a `block_on` future, an `eventfd` write and an
//! `epoll_wait` per turn), and would be most of a round trip through shared memory.
//! The hold is bounded by [`MAX_HOLD`], so the runtime's thread is never held longer
//! than that per poll; once it has passed, the task wakes itself and returns `Pending`,
//! so the runtime runs every other ready task (and polls I/O) before the next hold.
//! The hold adapts too: a wait whose bytes showed up during a hold widens it to twice
//! that wait (up to [`MAX_HOLD`]); a wait whose bytes were there only after the
//! runtime had a turn (the peer is a task on this very thread, or slow) halves it, down
//! to zero (one short batch of looks per turn); probes hold [`MAX_HOLD`].
//!
//! **Giving the CPU away.** When this thread may run on one CPU only (pinned, so the
//! peer may well share it), each look also yields the CPU to the kernel
//! (`sched_yield`), so that peer gets to run and answer instead of waiting for our
//! time slice to end. Otherwise a wait spins a while before it starts yielding, since
//! a peer on another CPU answers sooner than a `sched_yield` returns; but two unpinned
//! processes may still share a CPU (the kernel tends to wake a process on the CPU of
//! the one that woke it, and a busy machine may leave them there), and then only a
//! yield lets the peer answer. So that while adapts as well: a wait whose change was
//! seen right after a yield halves it, down to [`MIN_ALONE`] (1 µs, longer than a reply
//! from a peer on another CPU takes: at zero, every wait would yield before its first
//! look and pay a `sched_yield` even when the reply was already on its way, and only a
//! probe seen late could widen it again; measured: round trips stuck at twice their
//! usual time for whole runs); one seen while only spinning widens it to twice that
//! wait, up to [`SPIN_ALONE`]; probes spin [`SPIN_ALONE`]. Pinned to one CPU it stays
//! zero.

use std::time::{Duration, Instant};

/// Longest a side spins before it sleeps.
pub(crate) const MAX_WINDOW: Duration = Duration::from_micros(50);
/// Shortest window (a few looks, so a reply already on its way is not slept through).
const MIN_WINDOW: Duration = Duration::from_micros(2);
/// Longest one poll looks in place, holding the runtime's thread.
pub(crate) const MAX_HOLD: Duration = Duration::from_micros(5);
/// Longest a wait spins without giving the CPU away, when the thread may use several
/// CPUs.
pub(crate) const SPIN_ALONE: Duration = Duration::from_micros(5);
/// Shortest a wait spins without giving the CPU away when the thread may use several
/// CPUs (see the module docs).
const MIN_ALONE: Duration = Duration::from_micros(1);
/// One wait in this many spins the whole [`MAX_WINDOW`] (and holds [`MAX_HOLD`]).
pub(crate) const PROBE_EVERY: u32 = 16;
/// Looks between two readings of the clock while only pausing (a look is a load and a
/// compare, a pause a few dozen cycles: the clock would cost more than the looks).
const LOOKS_PER_CLOCK: u32 = 16;

/// What a side that found nothing should do next (see [`Spin::wait`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// Something changed while looking in place: look at the ring again.
    Look,
    /// The hold is over but the window is not: let the runtime run (wake the task and
    /// return `Pending`), then look again.
    Yield,
    /// The window is over: park and sleep until rung.
    Sleep,
}

/// The spin state of one side of one ring.
#[derive(Debug)]
pub(crate) struct Spin {
    /// When the current wait began (`None` while not waiting).
    since: Option<Instant>,
    /// The last reading of the clock in the current wait: when a wait ends, its length
    /// is taken from here, not from a new reading (a look at the clock per message
    /// would cost more than the rest of the bookkeeping).
    last: Instant,
    window: Duration,
    hold: Duration,
    /// Waits so far (to pick the probes).
    waits: u32,
    /// The current wait is a probe.
    probing: bool,
    /// The current wait saw its change while looking in place.
    seen_in_place: bool,
    /// ... and right after giving the CPU away.
    seen_after_yield: bool,
    /// How long a wait spins before each look also yields the CPU.
    alone: Duration,
    /// The most `alone` may be: [`SPIN_ALONE`], or zero on one CPU.
    max_alone: Duration,
}

impl Default for Spin {
    fn default() -> Self {
        let max_alone = if on_one_cpu() {
            Duration::ZERO
        } else {
            SPIN_ALONE
        };
        Spin {
            since: None,
            last: Instant::now(),
            window: MAX_WINDOW,
            hold: MAX_HOLD,
            waits: 0,
            probing: false,
            seen_in_place: false,
            seen_after_yield: false,
            alone: max_alone,
            max_alone,
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
    /// The ring had nothing for us: look in place until `changed` says something moved
    /// (then [`Next::Look`]), for at most the hold (then [`Next::Yield`]) and never past
    /// the window (then [`Next::Sleep`]). `changed` must be cheap (one atomic load) and
    /// must not wait.
    pub(crate) fn wait(&mut self, mut changed: impl FnMut() -> bool) -> Next {
        let start = Instant::now();
        self.last = start;
        let since = match self.since {
            Some(since) => since,
            None => {
                self.waits = self.waits.wrapping_add(1);
                self.probing = self.waits % PROBE_EVERY == 0;
                self.seen_in_place = false;
                self.since = Some(start);
                start
            }
        };
        let (window, hold, alone) = if self.probing {
            (MAX_WINDOW, MAX_HOLD, self.max_alone)
        } else {
            (self.window, self.hold, self.alone)
        };
        let mut now = start;
        loop {
            let spun = now.duration_since(since);
            if spun >= window {
                return Next::Sleep;
            }
            // Give the CPU away at each look once the wait is no longer young (at once
            // when the peer may need this very CPU).
            let give_away = spun >= alone;
            let looks = if give_away { 1 } else { LOOKS_PER_CLOCK };
            for _ in 0..looks {
                if give_away {
                    std::thread::yield_now();
                } else {
                    std::hint::spin_loop();
                }
                if changed() {
                    self.seen_in_place = true;
                    self.seen_after_yield = give_away;
                    return Next::Look;
                }
            }
            now = Instant::now();
            self.last = now;
            if now.duration_since(start) >= hold {
                return if now.duration_since(since) >= window {
                    Next::Sleep
                } else {
                    Next::Yield
                };
            }
        }
    }

    /// The wait (if any) is over; `slept` says whether it had to go to sleep. Adapt the
    /// window and the hold to it (the wait's length is taken as of the last look at the
    /// clock, which [`wait`](Self::wait) does at least once per poll).
    /// `true`: a wait had begun.
    #[inline]
    pub(crate) fn done(&mut self, slept: bool) -> bool {
        if self.since.is_none() {
            // No wait began: the usual case of a busy channel.
            return false;
        }
        self.adapt(slept);
        true
    }

    /// [`done`](Self::done) after a wait.
    fn adapt(&mut self, slept: bool) {
        let Some(since) = self.since.take() else {
            return;
        };
        if slept {
            self.window = (self.window / 2).max(MIN_WINDOW);
            return;
        }
        if self.seen_in_place && self.last == since {
            // Seen within the first looks, before any second look at the clock: the
            // usual case in a busy exchange, and nothing to adapt.
            return;
        }
        let took = self.last.saturating_duration_since(since) * 2;
        self.window = self.window.max(took).clamp(MIN_WINDOW, MAX_WINDOW);
        if self.seen_in_place {
            self.alone = if self.seen_after_yield {
                // Yielding is what let the peer answer: it may share our CPU.
                (self.alone / 2).max(MIN_ALONE.min(self.max_alone))
            } else {
                self.alone.max(took).min(self.max_alone)
            };
        }
        self.hold = if self.seen_in_place {
            self.hold.max(took).min(MAX_HOLD)
        } else {
            // The change was there only after the runtime had a turn: holding the
            // thread did not help (the peer may be a task on it).
            self.hold / 2
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn the_window_halves_after_sleeps_grows_after_spins_and_stays_bounded() {
        let mut spin = Spin::default();
        assert_eq!(spin.wait(|| true), Next::Look, "a change is seen at once");
        spin.since = Some(Instant::now() - Duration::from_millis(5));
        assert_eq!(spin.wait(|| false), Next::Sleep, "an old wait sleeps");
        spin.done(true);
        assert_eq!(spin.window, MAX_WINDOW / 2);
        for _ in 0..20 {
            spin.wait(|| true);
            spin.done(true);
        }
        assert_eq!(spin.window, MIN_WINDOW);
        spin.done(true); // not waiting: nothing changes
        assert_eq!(spin.window, MIN_WINDOW);
        spin.wait(|| true);
        spin.since = Some(Instant::now() - Duration::from_micros(10));
        spin.last = Instant::now();
        spin.done(false); // a 10 µs wait spun through: the window covers it next time
        assert!(
            spin.window >= Duration::from_micros(20),
            "{:?}",
            spin.window
        );
        spin.window = MAX_WINDOW;
        spin.wait(|| true);
        spin.since = Some(Instant::now() - Duration::from_secs(1));
        spin.last = Instant::now();
        spin.done(false);
        assert_eq!(spin.window, MAX_WINDOW, "never above the maximum");
        assert_eq!(spin.hold, MAX_HOLD, "nor is the hold");
    }

    #[test]
    fn a_poll_holds_the_thread_at_most_the_hold_then_yields() {
        let mut spin = Spin::default();
        let start = Instant::now();
        let next = spin.wait(|| false);
        let held = start.elapsed();
        // Bounded (generously: this thread may be preempted meanwhile).
        assert!(held < Duration::from_secs(5), "{held:?}");
        assert!(matches!(next, Next::Yield | Next::Sleep), "{next:?}");
        spin.done(false);
        assert_eq!(
            spin.hold,
            MAX_HOLD / 2,
            "seen only after a turn: the hold halves"
        );
    }

    #[test]
    fn a_change_seen_in_place_keeps_the_hold_and_one_seen_after_a_turn_shrinks_it() {
        let mut spin = Spin::default();
        let looks = Cell::new(0);
        let next = spin.wait(|| {
            looks.set(looks.get() + 1);
            looks.get() == 3
        });
        assert_eq!(next, Next::Look);
        assert_eq!(looks.get(), 3);
        spin.done(false);
        assert_eq!(spin.hold, MAX_HOLD);
        for _ in 0..10 {
            spin.since = Some(Instant::now());
            spin.seen_in_place = false;
            spin.done(false);
        }
        assert_eq!(spin.hold, MAX_HOLD / 1024);
    }

    #[test]
    fn changes_seen_after_yields_shorten_the_spin_alone_and_ones_seen_spinning_lengthen_it() {
        let mut spin = Spin {
            max_alone: SPIN_ALONE,
            alone: SPIN_ALONE,
            ..Spin::default()
        };
        let wait = |spin: &mut Spin, after_yield: bool, took: Duration| {
            let now = Instant::now();
            spin.since = Some(now - took);
            spin.last = now;
            spin.seen_in_place = true;
            spin.seen_after_yield = after_yield;
            spin.done(false);
        };
        for _ in 0..16 {
            wait(&mut spin, true, Duration::from_micros(3));
        }
        assert_eq!(
            spin.alone, MIN_ALONE,
            "the peer may share our CPU: yield soon, but never before the first looks \
             (at zero every later wait would yield before its first look, and the \
             window could only grow back from a probe seen late)"
        );
        wait(&mut spin, false, Duration::from_micros(1));
        assert_eq!(
            spin.alone,
            Duration::from_micros(2),
            "seen while spinning: spin longer"
        );
        wait(&mut spin, false, Duration::from_secs(1));
        assert_eq!(spin.alone, SPIN_ALONE, "never above the bound");
        // On one CPU the bound is zero.
        let mut pinned = Spin {
            max_alone: Duration::ZERO,
            alone: Duration::ZERO,
            ..Spin::default()
        };
        wait(&mut pinned, false, Duration::from_micros(1));
        assert_eq!(pinned.alone, Duration::ZERO);
    }

    #[test]
    fn one_wait_in_sixteen_probes_the_whole_window() {
        let mut spin = Spin {
            window: MIN_WINDOW,
            ..Spin::default()
        };
        let mut probes = 0;
        for _ in 0..PROBE_EVERY * 2 {
            spin.wait(|| true);
            probes += usize::from(spin.probing);
            spin.since = None;
        }
        assert_eq!(probes, 2);
    }
}
