//! Each app's restart history: the last [`KEPT`] times one of its instances was
//! restarted, with why (`describe` shows it).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use ipc_cluster::{ExitCause, ExitStatus};

use crate::proto::{RestartEvent, RestartReason};

/// How many events an app keeps.
pub(crate) const KEPT: usize = 20;

/// Why a process that exited will be (or would have been) restarted; `None` for an
/// exit somebody asked for (a stop, a restart, a reload).
pub(crate) fn exit_reason(status: ExitStatus, cause: ExitCause) -> Option<RestartReason> {
    match cause {
        ExitCause::Crashed => Some(RestartReason::Crash {
            status: status.to_string(),
        }),
        ExitCause::Announced => Some(RestartReason::Crash {
            status: format!("{status} after reporting a fatal error"),
        }),
        ExitCause::NotReady => Some(RestartReason::NotReady),
        _ => None,
    }
}

/// An app's restart history, shared by its instances' tasks.
#[derive(Debug, Clone, Default)]
pub(crate) struct History(Arc<Mutex<VecDeque<RestartEvent>>>);

impl History {
    /// Note that instance `instance` (process `pid`) was restarted for `reason`, now.
    pub(crate) fn record(&self, instance: usize, pid: Option<u32>, reason: RestartReason) {
        let mut events = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if events.len() == KEPT {
            events.pop_front();
        }
        events.push_back(RestartEvent {
            at: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            instance,
            pid,
            reason,
        });
    }

    /// The events, oldest first.
    pub(crate) fn events(&self) -> Vec<RestartEvent> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_events() {
        let history = History::default();
        for pid in 0..(KEPT as u32 + 5) {
            history.record(0, Some(pid), RestartReason::Restart);
        }
        let events = history.events();
        assert_eq!(events.len(), KEPT);
        assert_eq!(events[0].pid, Some(5));
        assert!(events[0].at.ends_with('Z'));
    }
}
