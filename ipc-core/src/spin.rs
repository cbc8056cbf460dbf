//! Opt-in low-latency receiving ([`LowLatency`]): a receive that finds nothing polls
//! for a bounded, adaptive time before the task parks.
//!
//! A task that parks on an empty socket or pipe is woken by the kernel when data
//! arrives; when the peer runs on another CPU that wake-up crosses CPUs, which on a
//! virtual machine costs tens of microseconds. In low-latency mode a
//! [`StreamReceiver`](crate::stream::StreamReceiver) that finds nothing to read keeps
//! its task running instead: it yields to the runtime, which polls the reactor without
//! sleeping (`epoll_wait` with a zero timeout), and to the kernel (`sched_yield`, so a
//! peer on the same CPU runs at once), then looks again, until data arrives or the
//! spin window has passed; then it parks as usual.
//!
//! **CPU cost**: up to one CPU per receiving task while it waits, for at most the spin
//! window per wait. The window adapts: a wait that outlasts it (the peer was idle)
//! halves it, down to a sixteenth of the bound; a wait that ends inside it doubles it,
//! up to the bound. An idle channel therefore costs one short spin when its receive
//! starts waiting and nothing after. Never the default.
//!
//! Turn it on per receiver ([`StreamReceiver::set_low_latency`]), for every stream
//! channel a process makes from now on ([`LowLatency::set_for_new_channels`]), or with
//! the environment variable [`LOW_LATENCY_ENV`] (`IPC_LOW_LATENCY=50` for a 50 µs
//! bound; children inherit it). The stream transports (uds, tcp, pipe, fifo, stdio)
//! have it; the signal and node channels do not.
//!
//! ```
//! use std::time::Duration;
//! use ipc_core::spin::LowLatency;
//! let mode = LowLatency::new(Duration::from_micros(50));
//! assert_eq!(mode.max_spin(), Duration::from_micros(50));
//! assert_eq!(LowLatency::parse("80"), Some(LowLatency::new(Duration::from_micros(80))));
//! assert_eq!(LowLatency::parse("0"), None);
//! ```
//!
//! [`StreamReceiver::set_low_latency`]: crate::stream::StreamReceiver::set_low_latency

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Context;
use std::time::{Duration, Instant};

/// The environment variable that turns low-latency mode on for every stream channel
/// made afterwards in this process (and in children, which inherit it): the spin bound
/// in microseconds (`IPC_LOW_LATENCY=50`). Unset, empty or `0`: off.
///
/// ```
/// assert_eq!(ipc_core::spin::LOW_LATENCY_ENV, "IPC_LOW_LATENCY");
/// ```
pub const LOW_LATENCY_ENV: &str = "IPC_LOW_LATENCY";

/// What [`LowLatency::set_for_new_channels`] chose: [`UNSET`] (follow the
/// environment), 0 (off) or a bound in nanoseconds.
static FOR_NEW_CHANNELS: AtomicU64 = AtomicU64::new(UNSET);
const UNSET: u64 = u64::MAX;

/// Low-latency receiving: poll for at most `max_spin` before parking (see the
/// [module docs](self) for the CPU cost).
///
/// ```
/// use std::time::Duration;
/// let mode = ipc_core::spin::LowLatency::new(Duration::from_micros(30));
/// # let _ = mode;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LowLatency {
    max_spin: Duration,
}

impl LowLatency {
    /// The smallest bound.
    const MIN_BOUND: Duration = Duration::from_micros(1);

    /// Spin for at most `max_spin` per wait (at least 1 µs).
    ///
    /// ```
    /// use std::time::Duration;
    /// let mode = ipc_core::spin::LowLatency::new(Duration::from_micros(50));
    /// assert_eq!(mode.max_spin(), Duration::from_micros(50));
    /// ```
    pub fn new(max_spin: Duration) -> Self {
        LowLatency {
            max_spin: max_spin.max(Self::MIN_BOUND),
        }
    }

    /// The longest one wait spins.
    ///
    /// ```
    /// use std::time::Duration;
    /// let mode = ipc_core::spin::LowLatency::new(Duration::from_micros(50));
    /// assert_eq!(mode.max_spin().as_micros(), 50);
    /// ```
    pub fn max_spin(&self) -> Duration {
        self.max_spin
    }

    /// A bound in microseconds as text (the value of [`LOW_LATENCY_ENV`]); `None` for
    /// `0`, empty or not a number.
    ///
    /// ```
    /// use ipc_core::spin::LowLatency;
    /// assert_eq!(LowLatency::parse(" 50 ").map(|m| m.max_spin().as_micros()), Some(50));
    /// assert_eq!(LowLatency::parse("fast"), None);
    /// ```
    pub fn parse(micros: &str) -> Option<Self> {
        match micros.trim().parse::<u64>() {
            Ok(0) | Err(_) => None,
            Ok(us) => Some(LowLatency::new(Duration::from_micros(us))),
        }
    }

    /// Set the mode of every stream channel this process makes from now on
    /// (`None`: off), over what [`LOW_LATENCY_ENV`] says; for channels made as
    /// `Box<dyn Channel>` by a transport chosen at run time. Channels made before keep
    /// their mode. Children are not affected: give them the environment variable.
    ///
    /// ```
    /// use std::time::Duration;
    /// use ipc_core::spin::LowLatency;
    /// LowLatency::set_for_new_channels(Some(LowLatency::new(Duration::from_micros(50))));
    /// assert_eq!(LowLatency::for_new_channels(), Some(LowLatency::new(Duration::from_micros(50))));
    /// LowLatency::set_for_new_channels(None);
    /// assert_eq!(LowLatency::for_new_channels(), None);
    /// ```
    pub fn set_for_new_channels(mode: Option<LowLatency>) {
        let nanos = mode.map_or(0, |m| {
            u64::try_from(m.max_spin.as_nanos()).unwrap_or(UNSET - 1)
        });
        FOR_NEW_CHANNELS.store(nanos, Ordering::Relaxed);
    }

    /// The mode a stream channel made now gets: the one
    /// [`set_for_new_channels`](Self::set_for_new_channels) set, else
    /// [`from_env`](Self::from_env).
    ///
    /// ```
    /// let mode = ipc_core::spin::LowLatency::for_new_channels();
    /// # let _ = mode;
    /// ```
    pub fn for_new_channels() -> Option<Self> {
        match FOR_NEW_CHANNELS.load(Ordering::Relaxed) {
            UNSET => LowLatency::from_env(),
            0 => None,
            nanos => Some(LowLatency::new(Duration::from_nanos(nanos))),
        }
    }

    /// The mode [`LOW_LATENCY_ENV`] asks for, if any.
    ///
    /// ```
    /// // Off unless the environment says otherwise.
    /// # if std::env::var_os(ipc_core::spin::LOW_LATENCY_ENV).is_none() {
    /// assert_eq!(ipc_core::spin::LowLatency::from_env(), None);
    /// # }
    /// ```
    pub fn from_env() -> Option<Self> {
        std::env::var(LOW_LATENCY_ENV)
            .ok()
            .and_then(|v| LowLatency::parse(&v))
    }
}

/// The spin state of one receiver: the current window and the wait under way.
#[derive(Debug)]
pub(crate) struct Spinner {
    max: Duration,
    window: Duration,
    /// When the current wait began, and whether it gave up spinning (parked).
    wait: Option<(Instant, bool)>,
}

impl Spinner {
    pub(crate) fn new(mode: LowLatency) -> Self {
        Spinner {
            max: mode.max_spin,
            window: mode.max_spin,
            wait: None,
        }
    }

    fn min_window(&self) -> Duration {
        self.max / 16
    }

    /// Nothing to read: arrange for the task to be polled again soon (returns true)
    /// while the window lasts, or let it park (false).
    pub(crate) fn on_pending(&mut self, cx: &mut Context<'_>) -> bool {
        let now = Instant::now();
        let (since, parked) = self.wait.get_or_insert((now, false));
        if *parked {
            return false;
        }
        if now.duration_since(*since) >= self.window {
            // The peer was slower than the window: spin less next time.
            *parked = true;
            self.window = (self.window / 2).max(self.min_window());
            return false;
        }
        // Let a peer on this CPU run, then have the runtime poll the reactor without
        // sleeping and poll this task again.
        std::thread::yield_now();
        let _ = pin!(tokio::task::yield_now()).poll(cx);
        true
    }

    /// Something arrived: a wait that ended while spinning widens the window.
    pub(crate) fn on_ready(&mut self) {
        if let Some((_, parked)) = self.wait.take() {
            if !parked {
                self.window = (self.window * 2).min(self.max);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_shrinks_after_a_miss_and_grows_after_a_hit() {
        let waker = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        let mut s = Spinner::new(LowLatency::new(Duration::from_micros(1600)));
        // A miss: spin until the window passes, then park.
        while s.on_pending(&mut cx) {}
        assert!(!s.on_pending(&mut cx), "parked waits do not spin again");
        s.on_ready();
        assert_eq!(s.window, Duration::from_micros(800));
        for _ in 0..10 {
            while s.on_pending(&mut cx) {}
            s.on_ready();
        }
        assert_eq!(
            s.window,
            Duration::from_micros(100),
            "never below a sixteenth"
        );
        // A hit: data while spinning.
        assert!(s.on_pending(&mut cx));
        s.on_ready();
        assert_eq!(s.window, Duration::from_micros(200));
    }
}
