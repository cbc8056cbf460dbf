//! [`Options`]: the one configuration of spawn, connect and listen, for every transport.
//!
//! Build it by value with the setters, pass it by reference:
//! `ipc_uds::spawn(cmd, &opts)`, `transport.connect(&endpoint, &opts)`,
//! `UdsListener::bind(&endpoint, &opts)`. Every setter says which transports use it; a
//! transport ignores the options it has no use for, so one `Options` can serve a
//! program that picks its transport at run time.
//!
//! ```
//! use std::time::Duration;
//! use ipc_core::Options;
//! let opts = Options::default()
//!     .max_frame(1 << 20)
//!     .handshake_timeout(Duration::from_secs(30))
//!     .token("s3cret")
//!     .allow_uid(33);
//! assert_eq!(opts.get_max_frame(), 1 << 20);
//! assert_eq!(opts.get_token(), Some("s3cret"));
//! assert!(!format!("{opts:?}").contains("s3cret"), "Debug never prints the token");
//! ```

use std::fmt;
use std::time::Duration;

use crate::frame::FrameConfig;

/// The frame limit the parent chose, in bytes, in a spawned child's environment.
pub const IPC_MAX_FRAME: &str = "IPC_MAX_FRAME";

/// Default bound on a handshake (tcp) or first contact (signal): 5 seconds.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Default bound on the handshakes a tcp listener has in progress at once: 4096 (a few
/// KiB each, so some tens of MiB at most, and one file descriptor each).
pub const DEFAULT_MAX_PENDING_HANDSHAKES: usize = 4096;

/// Options of spawn, connect and listen: frame limits, handshake timeout, token, and
/// which peer uids a listener accepts. See the [module docs](self).
///
/// The getters are named like [`std::process::Command`]'s (`get_*`), since the
/// setters take the plain names. `Debug` prints `<redacted>` for the token.
///
/// ```
/// let opts = ipc_core::Options::default();
/// assert_eq!(opts.get_max_frame(), 8 << 20);
/// assert_eq!(opts.get_handshake_timeout(), std::time::Duration::from_secs(5));
/// assert_eq!(opts.get_token(), None);
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Options {
    frame: FrameConfig,
    handshake_timeout: Duration,
    token: Option<String>,
    any_uid: bool,
    uids: Vec<u32>,
    max_pending_handshakes: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            frame: FrameConfig::default(),
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            token: None,
            any_uid: false,
            uids: Vec::new(),
            max_pending_handshakes: DEFAULT_MAX_PENDING_HANDSHAKES,
        }
    }
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("max_frame", &self.frame.max_frame())
            .field("listener_budget", &self.frame.listener_budget())
            .field("handshake_timeout", &self.handshake_timeout)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("any_uid", &self.any_uid)
            .field("uids", &self.uids)
            .field("max_pending_handshakes", &self.max_pending_handshakes)
            .finish()
    }
}

impl Options {
    /// What a spawned child should use: the defaults, with the frame limit the parent
    /// named in `IPC_MAX_FRAME` (both ends should agree). The tcp transport reads its
    /// token (`IPC_TOKEN`) itself when none is set here.
    ///
    /// ```
    /// let opts = ipc_core::Options::from_env();
    /// if std::env::var_os("IPC_MAX_FRAME").is_none() {
    ///     assert_eq!(opts, ipc_core::Options::default());
    /// }
    /// ```
    pub fn from_env() -> Self {
        let options = Options::default();
        match std::env::var(IPC_MAX_FRAME)
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
        {
            Some(max) => options.max_frame(max),
            None => options,
        }
    }

    /// Largest payload in bytes a channel sends or accepts (default 8 MiB, clamped to
    /// [`MAX_FRAME_LIMIT`](crate::frame::MAX_FRAME_LIMIT)); both ends should agree.
    /// Used by: every transport.
    ///
    /// ```
    /// let opts = ipc_core::Options::default().max_frame(64 * 1024);
    /// assert_eq!(opts.get_max_frame(), 65536);
    /// ```
    pub fn max_frame(mut self, bytes: usize) -> Self {
        let mut builder = FrameConfig::builder().max_frame(bytes);
        if let Some(budget) = self.frame.explicit_listener_budget() {
            builder = builder.listener_budget(budget);
        }
        self.frame = builder.build();
        self
    }

    /// Bytes that all the channels one listener accepts may hold, together, in frames
    /// they have started but not finished receiving (see
    /// [`FrameBudget`](crate::frame::FrameBudget); default 256 MiB, or four frames of
    /// the largest size when that is more). Used by: uds, tcp, fifo and shm listeners.
    ///
    /// ```
    /// let opts = ipc_core::Options::default().listener_budget(64 << 20);
    /// assert_eq!(opts.get_listener_budget(), 64 << 20);
    /// ```
    pub fn listener_budget(mut self, bytes: usize) -> Self {
        self.frame = FrameConfig::builder()
            .max_frame(self.frame.max_frame())
            .listener_budget(bytes)
            .build();
        self
    }

    /// Bound on a handshake (default 5 s): tcp's hello and reply on each connection,
    /// and how long tcp's `spawn` waits for the child to connect; signal's first
    /// contact with its peer. Used by: tcp, signal.
    ///
    /// ```
    /// use std::time::Duration;
    /// let opts = ipc_core::Options::default().handshake_timeout(Duration::from_secs(30));
    /// assert_eq!(opts.get_handshake_timeout(), Duration::from_secs(30));
    /// ```
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// The shared secret (at most 255 bytes) a tcp client presents and a tcp listener
    /// requires; an empty string is the same as none. Without one, tcp uses
    /// `IPC_TOKEN` when it is set, else none. Used by: tcp (`spawn` always makes a
    /// fresh random token per child).
    ///
    /// ```
    /// let opts = ipc_core::Options::default().token("s3cret");
    /// assert_eq!(opts.get_token(), Some("s3cret"));
    /// assert_eq!(ipc_core::Options::default().token("").get_token(), None);
    /// ```
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into()).filter(|t| !t.is_empty());
        self
    }

    /// Also accept peers running as `uid` (a listener always accepts its own effective
    /// uid). Used by: uds and shm listeners.
    ///
    /// ```
    /// let opts = ipc_core::Options::default().allow_uid(33);
    /// assert!(opts.allows_uid(33, 1000) && opts.allows_uid(1000, 1000));
    /// assert!(!opts.allows_uid(34, 1000));
    /// ```
    pub fn allow_uid(mut self, uid: u32) -> Self {
        self.uids.push(uid);
        self
    }

    /// Accept peers of any uid. For a path socket the file mode (0600) still keeps
    /// other users out unless you change it; an abstract name has no such guard. Used
    /// by: uds and shm listeners.
    ///
    /// ```
    /// assert!(ipc_core::Options::default().allow_any_uid().allows_uid(0, 1000));
    /// ```
    pub fn allow_any_uid(mut self) -> Self {
        self.any_uid = true;
        self
    }

    /// Keep at most `max` handshakes in progress on a listener (at least 1; default
    /// 4096). When a new connection arrives and this many are in progress, the oldest
    /// is closed to make room: a newcomer never waits. Used by: tcp listeners.
    ///
    /// ```
    /// let opts = ipc_core::Options::default().max_pending_handshakes(256);
    /// assert_eq!(opts.get_max_pending_handshakes(), 256);
    /// ```
    pub fn max_pending_handshakes(mut self, max: usize) -> Self {
        self.max_pending_handshakes = max.max(1);
        self
    }

    /// The frame limit set with [`max_frame`](Self::max_frame).
    pub fn get_max_frame(&self) -> usize {
        self.frame.max_frame()
    }

    /// The listener budget (see [`listener_budget`](Self::listener_budget)).
    pub fn get_listener_budget(&self) -> usize {
        self.frame.listener_budget()
    }

    /// The handshake timeout (see [`handshake_timeout`](Self::handshake_timeout)).
    pub fn get_handshake_timeout(&self) -> Duration {
        self.handshake_timeout
    }

    /// The token set with [`token`](Self::token), if any (`IPC_TOKEN` is not looked at
    /// here).
    pub fn get_token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// The bound on pending handshakes (see
    /// [`max_pending_handshakes`](Self::max_pending_handshakes)).
    pub fn get_max_pending_handshakes(&self) -> usize {
        self.max_pending_handshakes
    }

    /// True when a listener running as `own_uid` accepts a peer running as `uid`: its
    /// own uid, one [allowed](Self::allow_uid), or [any](Self::allow_any_uid).
    pub fn allows_uid(&self, uid: u32, own_uid: u32) -> bool {
        self.any_uid || uid == own_uid || self.uids.contains(&uid)
    }

    /// The codec's configuration: the frame limit and listener budget, for codecs and
    /// backends (see [`frame`](crate::frame)).
    ///
    /// ```
    /// let cfg = ipc_core::Options::default().max_frame(4096).frame_config();
    /// assert_eq!(cfg.max_frame(), 4096);
    /// ```
    pub fn frame_config(&self) -> FrameConfig {
        self.frame
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setters_keep_each_other() {
        let opts = Options::default().listener_budget(1 << 20).max_frame(4096);
        assert_eq!(opts.get_listener_budget(), 1 << 20);
        assert_eq!(opts.get_max_frame(), 4096);
        let opts = Options::default().max_frame(1 << 28);
        assert_eq!(
            opts.get_listener_budget(),
            1 << 30,
            "four frames by default"
        );
    }
}
