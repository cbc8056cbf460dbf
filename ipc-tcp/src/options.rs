//! [`TcpOptions`]: the token, handshake timeout and frame limits of one listener or
//! connection.

use std::fmt;
use std::time::Duration;

use ipc_core::FrameConfig;

/// Default bound on the whole handshake, on both sides: 5 seconds.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Default bound on the handshakes a listener has in progress at once: 4096 (a few KiB
/// each, so some tens of MiB at most, and one file descriptor each).
pub const DEFAULT_MAX_PENDING_HANDSHAKES: usize = 4096;

/// Settings for [`bind`](crate::bind), [`connect`](crate::connect) and
/// [`spawn_with_options`](crate::spawn_with_options).
///
/// Fields are public to read; build with the chainable setters of the same names.
/// `Debug` never prints the token.
///
/// ```
/// use std::time::Duration;
/// use ipc_tcp::TcpOptions;
/// let opts = TcpOptions::default()
///     .token("s3cret")
///     .handshake_timeout(Duration::from_secs(1))
///     .frame(ipc_core::FrameConfig::builder().max_frame(64 * 1024).build());
/// assert_eq!(opts.token.as_deref(), Some("s3cret"));
/// assert!(!format!("{opts:?}").contains("s3cret"));
/// assert_eq!(TcpOptions::default().handshake_timeout, Duration::from_secs(5));
/// ```
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TcpOptions {
    /// The shared secret, at most 255 bytes. A listener accepts only clients presenting
    /// exactly this token; with `None` it accepts only clients presenting none (an empty
    /// token). A client presents it, or an empty token when `None`. An empty string is
    /// the same as `None`.
    pub token: Option<String>,
    /// Bound on the handshake of each connection (connect + hello + reply on the client
    /// side; hello + reply on the server side). Default 5 s.
    pub handshake_timeout: Duration,
    /// Frame limits of the channels (both ends should agree).
    pub frame: FrameConfig,
    /// Listener only: most handshakes in progress at once (default
    /// [`DEFAULT_MAX_PENDING_HANDSHAKES`]). When a new connection arrives and this many
    /// are in progress, the oldest is closed to make room: a newcomer never waits.
    pub max_pending_handshakes: usize,
}

impl Default for TcpOptions {
    fn default() -> Self {
        TcpOptions {
            token: None,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            frame: FrameConfig::default(),
            max_pending_handshakes: DEFAULT_MAX_PENDING_HANDSHAKES,
        }
    }
}

impl fmt::Debug for TcpOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpOptions")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("handshake_timeout", &self.handshake_timeout)
            .field("frame", &self.frame)
            .field("max_pending_handshakes", &self.max_pending_handshakes)
            .finish()
    }
}

impl TcpOptions {
    /// Use `token` as the shared secret.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into()).filter(|t| !t.is_empty());
        self
    }

    /// Use the token from `IPC_TOKEN` when it is set, else none (what
    /// [`TcpTransport`](crate::TcpTransport) does).
    pub fn token_from_env(mut self) -> Self {
        self.token = ipc_core::env::token_from_env();
        self
    }

    /// Bound each handshake by `timeout`.
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Use these frame limits.
    pub fn frame(mut self, config: FrameConfig) -> Self {
        self.frame = config;
        self
    }

    /// Keep at most `max` handshakes in progress on a listener (at least 1); see
    /// [`max_pending_handshakes`](Self#structfield.max_pending_handshakes).
    ///
    /// ```
    /// let opts = ipc_tcp::TcpOptions::default().max_pending_handshakes(256);
    /// assert_eq!(opts.max_pending_handshakes, 256);
    /// ```
    pub fn max_pending_handshakes(mut self, max: usize) -> Self {
        self.max_pending_handshakes = max.max(1);
        self
    }

    /// The token bytes to present or expect (empty for none).
    pub(crate) fn token_bytes(&self) -> &[u8] {
        self.token.as_deref().unwrap_or("").as_bytes()
    }
}
