//! [`Spin`]: how long a side that finds its ring empty (or full) keeps looking before it
//! goes to sleep on its [`Bell`](crate::bell::Bell).
//!
//! Sleeping and being woken costs two system calls and a scheduler wake-up (several
//! microseconds); a peer that answers within a microsecond or two is cheaper to wait
//! for by looking again. So a side looks again for up to a window of time, then
//! sleeps. The window adapts: after a wait that ended quickly it is twice that wait
//! (so the next similar wait is spun through), after a long wait it halves, down to
//! nothing much; it never exceeds [`MAX_WINDOW`]. An idle channel therefore sleeps
//! after at most one window and then costs no CPU.
//!
//! "Looking again" never blocks the tokio runtime: the task wakes itself and returns
//! `Pending`, so the runtime runs every other ready task (and polls I/O) between two
//! looks.

use std::time::{Duration, Instant};

/// Longest a side spins before it sleeps.
pub(crate) const MAX_WINDOW: Duration = Duration::from_micros(50);
/// Shortest window (a few looks, so a reply already on its way is not slept through).
const MIN_WINDOW: Duration = Duration::from_micros(2);

/// The spin state of one side of one ring.
#[derive(Debug)]
pub(crate) struct Spin {
    /// When the current wait began (`None` while not waiting).
    since: Option<Instant>,
    window: Duration,
}

impl Default for Spin {
    fn default() -> Self {
        Spin {
            since: None,
            window: MAX_WINDOW,
        }
    }
}

impl Spin {
    /// The ring had nothing for us: true while the wait is young enough to look again
    /// instead of sleeping.
    pub(crate) fn keep_spinning(&mut self) -> bool {
        let now = Instant::now();
        let since = *self.since.get_or_insert(now);
        now.duration_since(since) < self.window
    }

    /// The wait (if any) is over: adapt the window to how long it took.
    pub(crate) fn done(&mut self) {
        let Some(since) = self.since.take() else {
            return;
        };
        let waited = since.elapsed();
        self.window = if waited <= MAX_WINDOW {
            (waited * 2).clamp(MIN_WINDOW, MAX_WINDOW)
        } else {
            (self.window / 2).max(MIN_WINDOW)
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_shrinks_after_long_waits_and_stays_bounded() {
        let mut spin = Spin::default();
        assert!(spin.keep_spinning(), "a fresh wait spins");
        spin.since = Some(Instant::now() - Duration::from_millis(5));
        assert!(!spin.keep_spinning(), "an old wait sleeps");
        spin.done();
        assert_eq!(spin.window, MAX_WINDOW / 2);
        for _ in 0..20 {
            spin.since = Some(Instant::now() - Duration::from_millis(5));
            spin.done();
        }
        assert_eq!(spin.window, MIN_WINDOW);
        spin.done(); // not waiting: nothing changes
        assert_eq!(spin.window, MIN_WINDOW);
        assert!(spin.keep_spinning());
        spin.done(); // a quick wait: the window follows it, within bounds
        assert!(spin.window >= MIN_WINDOW && spin.window <= MAX_WINDOW);
    }
}
