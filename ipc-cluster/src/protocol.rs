//! The control protocol between a primary and its workers: one JSON text per frame,
//! so it also runs over Node's channel. Two messages are the plain JSON strings other
//! tools use: `"ready"` (Node's `process.send('ready')`, pm2's `wait_ready`) and
//! `"shutdown"` (pm2's `shutdown_with_message`). Everything else is an object tagged
//! `{"ipc_cluster": "..."}`. A frame carries at most one fd, and only `listen` and
//! `conn` carry one.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::messenger::Envelope;

/// The JSON text of the ready message.
pub(crate) const READY: &str = "\"ready\"";
/// The JSON text of the shutdown message.
pub(crate) const SHUTDOWN: &str = "\"shutdown\"";

/// How the workers of a cluster get their connections.
///
/// ```
/// use ipc_cluster::Mode;
/// assert_eq!("rr".parse::<Mode>().unwrap(), Mode::RoundRobin);
/// assert_eq!(Mode::Shared.to_string(), "shared");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// The primary binds and passes the listening socket to every worker; the OS
    /// spreads the connections among the workers' `accept` calls.
    #[default]
    Shared,
    /// The primary accepts and hands each connection to the next worker that
    /// acknowledged its previous one (Node's `SCHED_RR`).
    RoundRobin,
    /// Each worker binds the address itself with `SO_REUSEPORT`; the kernel hashes
    /// connections over the workers' sockets.
    ReusePort,
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Mode::Shared => "shared",
            Mode::RoundRobin => "rr",
            Mode::ReusePort => "reuseport",
        })
    }
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "shared" => Ok(Mode::Shared),
            "rr" | "round-robin" | "roundrobin" => Ok(Mode::RoundRobin),
            "reuseport" => Ok(Mode::ReusePort),
            other => Err(format!(
                "unknown cluster mode {other:?}: use shared, rr or reuseport"
            )),
        }
    }
}

/// One control message (besides the plain `"ready"` / `"shutdown"` strings).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "ipc_cluster", rename_all = "snake_case")]
pub(crate) enum Ctl {
    /// Worker -> primary: ready (also the plain `"ready"`).
    Ready,
    /// Primary -> worker: stop gracefully (also the plain `"shutdown"`).
    Shutdown,
    /// Primary -> worker: where connections come from. `shared`: the listening
    /// socket is attached; `reuseport`: bind `addr`; `round_robin`: wait for `conn`.
    Listen { seq: u64, mode: Mode, addr: String },
    /// Primary -> worker: one accepted connection, attached.
    Conn { seq: u64 },
    /// Worker -> primary: the connection `seq` was taken (or refused).
    Ack { seq: u64, taken: bool },
    /// Worker -> primary: connections accepted so far.
    Accepted { total: u64 },
    /// Primary -> worker: stop taking connections, finish the open ones, exit.
    Drain,
    /// Worker -> primary: a fatal error; start my replacement, then tell me to go.
    Fatal { error: String },
    /// Primary -> worker: the replacement is ready (answer to `fatal`).
    Release,
    /// Primary -> everyone: the members changed.
    Members {
        workers: Vec<u32>,
        agent: Option<u32>,
    },
    /// A messenger message, either way.
    Msg(Envelope),
}

impl Ctl {
    /// Encode as one frame.
    pub(crate) fn encode(&self) -> Bytes {
        match self {
            Ctl::Ready => Bytes::from_static(READY.as_bytes()),
            Ctl::Shutdown => Bytes::from_static(SHUTDOWN.as_bytes()),
            other => match serde_json::to_vec(other) {
                Ok(json) => Bytes::from(json),
                // A derive(Serialize) enum of strings and numbers always encodes.
                Err(_) => Bytes::from_static(b"null"),
            },
        }
    }

    /// Decode one frame; `None` for anything that is not a control message (a
    /// program's own messages on the same channel).
    pub(crate) fn decode(frame: &[u8]) -> Option<Ctl> {
        let text = std::str::from_utf8(frame).ok()?.trim();
        match text {
            READY => Some(Ctl::Ready),
            SHUTDOWN => Some(Ctl::Shutdown),
            _ if text.starts_with('{') => serde_json::from_str(text).ok(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_plain_strings() {
        for ctl in [
            Ctl::Ready,
            Ctl::Shutdown,
            Ctl::Conn { seq: 7 },
            Ctl::Listen {
                seq: 0,
                mode: Mode::ReusePort,
                addr: "127.0.0.1:80".into(),
            },
            Ctl::Members {
                workers: vec![1, 2],
                agent: None,
            },
        ] {
            assert_eq!(Ctl::decode(&ctl.encode()), Some(ctl));
        }
        assert_eq!(Ctl::decode(b"\"ready\""), Some(Ctl::Ready));
        assert_eq!(Ctl::decode(b"{\"hello\":1}"), None);
        assert_eq!(
            &Ctl::Ack {
                seq: 1,
                taken: true
            }
            .encode()[..],
            br#"{"ipc_cluster":"ack","seq":1,"taken":true}"#
        );
    }
}
