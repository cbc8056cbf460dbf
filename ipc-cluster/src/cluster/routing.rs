//! Messenger routing in the primary (egg-cluster's): who gets a message, and the
//! membership announcements.

use super::actor::Actor;
use super::slots::State;
use super::ClusterEvent;
use crate::messenger::{Envelope, To};
use crate::protocol::Ctl;

impl Actor {
    pub(super) fn agent_pid(&self) -> Option<u32> {
        self.slots
            .values()
            .find(|s| s.agent && s.state == State::Ready)
            .map(|s| s.pid)
    }

    pub(super) fn announce_members(&self) {
        let workers: Vec<u32> = self
            .slots
            .values()
            .filter(|s| s.state == State::Ready && !s.agent)
            .map(|s| s.pid)
            .collect();
        let ctl = Ctl::Members {
            workers,
            agent: self.agent_pid(),
        };
        for id in self.slots.keys() {
            self.send_to(*id, &ctl);
        }
    }

    /// Route a messenger message from worker `from_id`.
    pub(super) fn route(&mut self, from_id: u64, mut envelope: Envelope) {
        envelope.from = self.slots.get(&from_id).map_or(0, |s| s.pid);
        self.deliver(envelope);
    }

    pub(super) fn deliver(&self, envelope: Envelope) {
        // Every live member (a fatal or leaving worker still gets its messages).
        let members: Vec<(u64, u32, bool)> = self
            .slots
            .iter()
            .filter(|(_, s)| s.state != State::Starting || s.agent)
            .map(|(id, s)| (*id, s.pid, s.agent))
            .collect();
        let ready: Vec<(u64, u32)> = self
            .slots
            .iter()
            .filter(|(_, s)| matches!(s.state, State::Ready | State::Fatal) && !s.agent)
            .map(|(id, s)| (*id, s.pid))
            .collect();
        let targets: Vec<u64> = match envelope.to {
            To::Primary | To::Pid(0) => {
                self.emit(ClusterEvent::Message(envelope));
                return;
            }
            To::Agent => members
                .iter()
                .filter(|(_, _, agent)| *agent)
                .map(|(id, _, _)| *id)
                .collect(),
            To::Workers => ready.iter().map(|(id, _)| *id).collect(),
            To::Broadcast => members
                .iter()
                .filter(|(_, pid, agent)| {
                    *pid != envelope.from && (*agent || ready.iter().any(|(_, p)| p == pid))
                })
                .map(|(id, _, _)| *id)
                .collect(),
            To::Pid(pid) => members
                .iter()
                .filter(|(_, p, _)| *p == pid)
                .map(|(id, _, _)| *id)
                .collect(),
            To::RandomWorker => {
                if ready.is_empty() {
                    Vec::new()
                } else {
                    let pick = random_index(ready.len());
                    vec![ready[pick].0]
                }
            }
        };
        if targets.is_empty() {
            tracing::debug!(to = ?envelope.to, action = %envelope.action, "message for nobody, dropped");
        }
        let ctl = Ctl::Msg(envelope);
        for id in targets {
            self.send_to(id, &ctl);
        }
    }
}

/// A random index below `n` (`n` > 0), from the OS's random source.
fn random_index(n: usize) -> usize {
    let mut bytes = [0u8; 8];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .is_err()
    {
        // No /dev/urandom: the clock's nanoseconds are random enough to spread load.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        return nanos as usize % n;
    }
    (u64::from_le_bytes(bytes) % n as u64) as usize
}
