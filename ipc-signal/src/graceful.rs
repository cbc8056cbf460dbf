//! Graceful shutdown: run the work, and on SIGINT, SIGTERM or SIGQUIT stop taking new
//! work, let the work in flight finish within a grace period, clean up, and report the
//! conventional exit status.
//!
//! The exit status is documented on [`Outcome`].

use std::future::Future;
use std::process::{ExitCode, Termination};
use std::time::Duration;

use ipc_core::{Result, Signal};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::control::ShutdownSignals;

/// Grace period for in-flight work by default: 1 s, inside pm2's default
/// `kill_timeout` of 1.6 s after which a supervisor sends SIGKILL.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(1);

/// What the work holds to learn about shutdown and to start tracked tasks.
/// Cheap to clone.
///
/// ```no_run
/// # async fn demo(handle: ipc_signal::ShutdownHandle) {
/// loop {
///     tokio::select! {
///         () = handle.wait() => break,              // stop accepting
///         request = next_request() => {
///             // Finished before exit, within the grace period:
///             handle.spawn(async move { serve(request).await });
///         }
///     }
/// }
/// # }
/// # async fn next_request() -> u32 { 0 }
/// # async fn serve(_: u32) {}
/// ```
#[derive(Debug, Clone, Default)]
pub struct ShutdownHandle {
    token: CancellationToken,
    tracker: TaskTracker,
}

impl ShutdownHandle {
    /// True once shutdown has begun.
    pub fn is_shutting_down(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Resolves when shutdown begins (at once if it has).
    pub async fn wait(&self) {
        self.token.cancelled().await;
    }

    /// Begin shutdown from inside the program, as a signal would.
    pub fn shutdown(&self) {
        self.token.cancel();
    }

    /// Spawn in-flight work that shutdown waits for (within the grace period).
    /// `None` once shutdown has begun: new work is refused.
    pub fn spawn<F>(&self, task: F) -> Option<JoinHandle<F::Output>>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        if self.is_shutting_down() {
            return None;
        }
        Some(self.tracker.spawn(task))
    }

    /// Tracked tasks still running.
    pub fn in_flight(&self) -> usize {
        self.tracker.len()
    }
}

/// Why the work stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StopReason {
    /// The work future returned by itself.
    Finished,
    /// A shutdown signal arrived.
    Signal(Signal),
    /// [`ShutdownHandle::shutdown`] was called.
    Requested,
}

/// How a [`GracefulShutdown::run`] ended. Return it from `main` (it implements
/// [`Termination`]) or turn it into an [`ExitCode`].
///
/// # Exit status
///
/// | what happened | [`Outcome::code`] |
/// |---|---|
/// | the work finished by itself, `Ok` | 0 |
/// | a shutdown signal (or [`ShutdownHandle::shutdown`]); everything in flight finished within the grace period; cleanup ran | 0 |
/// | the work returned an error (and nothing was forced) | 1 |
/// | signal N, and the grace period ran out (in-flight work abandoned) | 128 + N (130 SIGINT, 131 SIGQUIT, 143 SIGTERM) |
/// | a second shutdown signal N during the grace period (forced) | 128 + N of the second signal |
/// | [`ShutdownHandle::shutdown`] or the work finishing, and the grace period ran out | 1 |
///
/// 128 + N is what a shell reports for a process killed by signal N, so a supervisor sees
/// "stopped by the signal, not cleanly" exactly when the stop was not clean. After a
/// graceful stop the status is 0: pm2 and most supervisors read that as a clean exit
/// (systemd accepts 0 and, for SIGTERM, 143 by default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Why the work stopped.
    pub reason: StopReason,
    /// Everything in flight finished within the grace period.
    pub graceful: bool,
    /// The work's error, if it returned one.
    pub error: Option<String>,
    /// The signal that forced the exit (a second signal), if any.
    pub forced_by: Option<Signal>,
}

impl Outcome {
    /// The exit status, following the [table above](Outcome#exit-status).
    ///
    /// ```
    /// use ipc_signal::{Outcome, Signal, StopReason};
    /// let stopped = |graceful| Outcome {
    ///     reason: StopReason::Signal(Signal::SIGTERM),
    ///     graceful,
    ///     error: None,
    ///     forced_by: None,
    /// };
    /// assert_eq!(stopped(true).code(), 0);
    /// assert_eq!(stopped(false).code(), 143);
    /// ```
    pub fn code(&self) -> u8 {
        if self.graceful {
            return u8::from(self.error.is_some());
        }
        let signal = match (self.forced_by, self.reason) {
            (Some(sig), _) | (None, StopReason::Signal(sig)) => sig,
            _ => return 1,
        };
        u8::try_from(128 + signal as i32).unwrap_or(1)
    }

    /// [`code`](Self::code) as an [`ExitCode`].
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.code())
    }
}

impl Termination for Outcome {
    fn report(self) -> ExitCode {
        self.exit_code()
    }
}

impl From<Outcome> for ExitCode {
    fn from(outcome: Outcome) -> ExitCode {
        outcome.exit_code()
    }
}

/// Runs work until it finishes or a shutdown signal arrives, then shuts down gracefully.
/// See [`Outcome`] for the exit status.
///
/// ```no_run
/// use std::time::Duration;
/// use ipc_signal::GracefulShutdown;
///
/// #[tokio::main]
/// async fn main() -> ipc_signal::Outcome {
///     GracefulShutdown::new()
///         .grace_period(Duration::from_millis(500))
///         .run(
///             |handle| async move {
///                 while !handle.is_shutting_down() {
///                     // accept work, hand it to handle.spawn(..)
///                     handle.wait().await;
///                 }
///                 Ok(())
///             },
///             |reason| async move { eprintln!("cleaning up after {reason:?}") },
///         )
///         .await
/// }
/// ```
#[derive(Debug, Clone)]
pub struct GracefulShutdown {
    grace: Duration,
    handle: ShutdownHandle,
}

impl Default for GracefulShutdown {
    fn default() -> Self {
        GracefulShutdown::new()
    }
}

enum Drain {
    Done,
    TimedOut,
    Forced(Signal),
}

impl GracefulShutdown {
    /// With the [`DEFAULT_GRACE`] period.
    pub fn new() -> Self {
        GracefulShutdown {
            grace: DEFAULT_GRACE,
            handle: ShutdownHandle::default(),
        }
    }

    /// How long in-flight work may take after shutdown begins.
    pub fn grace_period(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// A handle to the shutdown state (the work gets one too).
    pub fn handle(&self) -> ShutdownHandle {
        self.handle.clone()
    }

    /// Listen for SIGINT, SIGTERM and SIGQUIT, then run `work(handle)`.
    ///
    /// When the work returns, a signal arrives, or [`ShutdownHandle::shutdown`] is called:
    /// shutdown begins (the handle refuses new tasks and [`ShutdownHandle::wait`]
    /// resolves), and the work future (if still running) and every task it spawned
    /// through the handle get the grace period to finish. A second signal ends the wait
    /// at once. Then `cleanup(reason)` runs, and the [`Outcome`] says what happened.
    ///
    /// Cleanup always runs, after the work in flight finished or was abandoned. Abandoned
    /// tasks are not cancelled here: they stop when the runtime shuts down (when `main`
    /// returns).
    ///
    /// Must run inside a tokio runtime with I/O and time enabled. If the signal handlers
    /// cannot be installed, the work is not started and the outcome carries the error.
    pub async fn run<W, WF, C, CF>(self, work: W, cleanup: C) -> Outcome
    where
        W: FnOnce(ShutdownHandle) -> WF,
        WF: Future<Output = Result<()>>,
        C: FnOnce(StopReason) -> CF,
        CF: Future<Output = ()>,
    {
        let handle = self.handle.clone();
        let mut signals = match ShutdownSignals::new() {
            Ok(signals) => signals,
            Err(e) => {
                cleanup(StopReason::Finished).await;
                return Outcome {
                    reason: StopReason::Finished,
                    graceful: true,
                    error: Some(format!("cannot listen for shutdown signals: {e}")),
                    forced_by: None,
                };
            }
        };
        let work = work(handle.clone());
        tokio::pin!(work);
        let mut result: Option<Result<()>> = None;
        let reason = tokio::select! {
            biased;
            Ok(sig) = signals.recv() => StopReason::Signal(sig),
            () = handle.wait() => StopReason::Requested,
            r = &mut work => {
                result = Some(r);
                // The work may have asked for shutdown and returned in the same poll.
                if handle.is_shutting_down() {
                    StopReason::Requested
                } else {
                    StopReason::Finished
                }
            }
        };
        tracing::info!(?reason, grace = ?self.grace, "shutting down");
        handle.token.cancel();
        handle.tracker.close();
        let drained = {
            let drain = async {
                if result.is_none() {
                    result = Some(work.as_mut().await);
                }
                handle.tracker.wait().await;
            };
            tokio::pin!(drain);
            tokio::select! {
                () = &mut drain => Drain::Done,
                () = tokio::time::sleep(self.grace) => Drain::TimedOut,
                Ok(sig) = signals.recv() => Drain::Forced(sig),
            }
        };
        let (graceful, forced_by) = match drained {
            Drain::Done => (true, None),
            Drain::TimedOut => {
                tracing::warn!(
                    in_flight = handle.in_flight(),
                    "the grace period of {:?} ran out; abandoning the work in flight",
                    self.grace
                );
                (false, None)
            }
            Drain::Forced(sig) => {
                tracing::warn!(?sig, "a second signal: abandoning the work in flight");
                (false, Some(sig))
            }
        };
        let error = match result {
            Some(Err(e)) => Some(e.to_string()),
            _ => None,
        };
        cleanup(reason).await;
        Outcome {
            reason,
            graceful,
            error,
            forced_by,
        }
    }
}

/// [`GracefulShutdown::new`]`.run(work, cleanup)`: the default grace period.
///
/// ```no_run
/// #[tokio::main]
/// async fn main() -> std::process::ExitCode {
///     ipc_signal::run_until_shutdown(
///         |handle| async move {
///             handle.wait().await; // serve until told to stop
///             Ok(())
///         },
///         |_reason| async {},
///     )
///     .await
///     .exit_code()
/// }
/// ```
pub async fn run_until_shutdown<W, WF, C, CF>(work: W, cleanup: C) -> Outcome
where
    W: FnOnce(ShutdownHandle) -> WF,
    WF: Future<Output = Result<()>>,
    C: FnOnce(StopReason) -> CF,
    CF: Future<Output = ()>,
{
    GracefulShutdown::new().run(work, cleanup).await
}
