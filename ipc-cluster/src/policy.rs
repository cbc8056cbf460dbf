//! The restart decision after an exit: pm2's crash-loop counting and backoff, as pure
//! arithmetic (no clock, no process).

use std::time::Duration;

use crate::config::{Config, Restart};
use crate::events::{ExitCause, ExitStatus};

/// What to do after an exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Start again after this delay; `unstable` restarts so far.
    Restart { delay: Duration, unstable: u32 },
    /// Too many unstable restarts.
    Errored { unstable: u32 },
    /// Not restarted (policy, stop code, or asked to stop).
    Stop,
}

/// The counters kept across restarts of one process.
#[derive(Debug, Clone, Default)]
pub(crate) struct RestartState {
    /// Unstable restarts in a row.
    pub(crate) unstable: u32,
    /// Restarts in total.
    pub(crate) restarts: u32,
    /// The last exponential backoff delay (zero when it starts over).
    backoff: Duration,
}

impl RestartState {
    /// Decide after an exit of a process that ran for `uptime`.
    pub(crate) fn decide(
        &mut self,
        config: &Config,
        status: ExitStatus,
        cause: ExitCause,
        uptime: Duration,
    ) -> Decision {
        if matches!(cause, ExitCause::Stopped | ExitCause::Killed) {
            return Decision::Stop;
        }
        let wanted = match config.restart {
            Restart::Never => false,
            Restart::Always => true,
            Restart::OnFailure => !status.success(),
        };
        let stop_code =
            matches!(status, ExitStatus::Code(c) if config.stop_exit_codes.contains(&c));
        if !wanted || stop_code {
            return Decision::Stop;
        }
        if uptime < config.min_uptime || cause == ExitCause::NotReady {
            self.unstable += 1;
            if self.unstable > config.max_restarts {
                return Decision::Errored {
                    unstable: self.unstable - 1,
                };
            }
        } else {
            self.unstable = 0;
        }
        let delay = match config.exp_backoff {
            Some(first) => {
                if uptime >= config.backoff_reset {
                    self.backoff = Duration::ZERO;
                }
                self.backoff = if self.backoff.is_zero() {
                    first
                } else {
                    self.backoff.mul_f64(1.5)
                }
                .min(config.backoff_max);
                self.backoff
            }
            None => config.restart_delay,
        };
        self.restarts += 1;
        Decision::Restart {
            delay,
            unstable: self.unstable,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crash(state: &mut RestartState, config: &Config, uptime_ms: u64) -> Decision {
        state.decide(
            config,
            ExitStatus::Code(1),
            ExitCause::Crashed,
            Duration::from_millis(uptime_ms),
        )
    }

    #[test]
    fn errored_after_max_restarts_unstable_restarts() {
        let config = Config::builder().max_restarts(3).build();
        let mut state = RestartState::default();
        for n in 1..=3 {
            assert_eq!(
                crash(&mut state, &config, 10),
                Decision::Restart {
                    delay: Duration::ZERO,
                    unstable: n
                }
            );
        }
        assert_eq!(
            crash(&mut state, &config, 10),
            Decision::Errored { unstable: 3 }
        );
    }

    #[test]
    fn a_stable_run_resets_the_unstable_count() {
        let config = Config::builder().max_restarts(1).build();
        let mut state = RestartState::default();
        assert!(matches!(
            crash(&mut state, &config, 10),
            Decision::Restart { unstable: 1, .. }
        ));
        assert!(matches!(
            crash(&mut state, &config, 5000),
            Decision::Restart { unstable: 0, .. }
        ));
        assert!(matches!(
            crash(&mut state, &config, 10),
            Decision::Restart { unstable: 1, .. }
        ));
    }

    #[test]
    fn backoff_grows_by_half_caps_at_15s_and_resets_after_30s_up() {
        let config = Config::builder()
            .exp_backoff(Duration::from_millis(100))
            .max_restarts(100)
            .build();
        let mut state = RestartState::default();
        let mut delays = Vec::new();
        for _ in 0..16 {
            if let Decision::Restart { delay, .. } = crash(&mut state, &config, 10) {
                delays.push(delay.as_millis());
            }
        }
        assert_eq!(&delays[..5], &[100, 150, 225, 337, 506]);
        assert_eq!(*delays.last().expect("delays"), 15_000);
        assert!(matches!(
            crash(&mut state, &config, 30_000),
            Decision::Restart { delay, .. } if delay == Duration::from_millis(100)
        ));
    }

    #[test]
    fn policies_and_stop_codes() {
        let mut state = RestartState::default();
        let on_failure = Config::builder()
            .restart(Restart::OnFailure)
            .stop_exit_codes([3])
            .build();
        let ok = state.decide(
            &on_failure,
            ExitStatus::Code(0),
            ExitCause::Crashed,
            Duration::ZERO,
        );
        assert_eq!(ok, Decision::Stop);
        let three = state.decide(
            &on_failure,
            ExitStatus::Code(3),
            ExitCause::Crashed,
            Duration::ZERO,
        );
        assert_eq!(three, Decision::Stop);
        let sig = state.decide(
            &on_failure,
            ExitStatus::Signal(9),
            ExitCause::Crashed,
            Duration::ZERO,
        );
        assert!(matches!(sig, Decision::Restart { .. }));
        let never = Config::builder().restart(Restart::Never).build();
        let crashed = state.decide(
            &never,
            ExitStatus::Code(1),
            ExitCause::Crashed,
            Duration::ZERO,
        );
        assert_eq!(crashed, Decision::Stop);
        let always = Config::default();
        let stopped = state.decide(
            &always,
            ExitStatus::Code(0),
            ExitCause::Stopped,
            Duration::ZERO,
        );
        assert_eq!(stopped, Decision::Stop);
    }
}
