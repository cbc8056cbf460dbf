//! [`Signal`]: the POSIX signals the toolkit sends and reports, as its own type.
//!
//! The toolkit's API names signals with this enum rather than `nix`'s, so upgrading
//! `nix` never changes the toolkit's public types. Variants keep their `signal(7)`
//! names (`SIGTERM`), and `Debug` prints them the same way.

use std::fmt;

/// A POSIX signal, as accepted by [`Child::signal`](crate::Child::signal) and reported
/// by `ipc_signal`'s shutdown helpers.
///
/// `sig as i32` (or [`as_raw`](Self::as_raw)) is the Linux signal number;
/// [`TryFrom<i32>`](#impl-TryFrom<i32>-for-Signal) goes the other way.
///
/// ```
/// use ipc_core::Signal;
/// assert_eq!(Signal::SIGTERM.as_raw(), 15);
/// assert_eq!(Signal::try_from(9), Ok(Signal::SIGKILL));
/// assert_eq!(Signal::SIGINT.as_str(), "SIGINT");
/// assert_eq!(format!("{:?}", Signal::SIGHUP), "SIGHUP");
/// assert!(Signal::try_from(0).is_err());
/// ```
// The signal(7) spellings are the names people search for; they are not acronyms.
#[allow(clippy::upper_case_acronyms)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(i32)]
#[non_exhaustive]
pub enum Signal {
    /// Hangup (terminal closed; by convention "reload").
    SIGHUP = libc::SIGHUP,
    /// Interrupt (Ctrl-C).
    SIGINT = libc::SIGINT,
    /// Quit (Ctrl-\).
    SIGQUIT = libc::SIGQUIT,
    /// Abort (`abort()`).
    SIGABRT = libc::SIGABRT,
    /// Kill: cannot be caught or ignored.
    SIGKILL = libc::SIGKILL,
    /// User-defined signal 1.
    SIGUSR1 = libc::SIGUSR1,
    /// User-defined signal 2.
    SIGUSR2 = libc::SIGUSR2,
    /// Write to a pipe with no reader.
    SIGPIPE = libc::SIGPIPE,
    /// Alarm clock.
    SIGALRM = libc::SIGALRM,
    /// Termination request (the polite stop).
    SIGTERM = libc::SIGTERM,
    /// A child process stopped or exited.
    SIGCHLD = libc::SIGCHLD,
    /// Continue a stopped process.
    SIGCONT = libc::SIGCONT,
    /// Stop: cannot be caught or ignored.
    SIGSTOP = libc::SIGSTOP,
    /// Stop from the terminal (Ctrl-Z).
    SIGTSTP = libc::SIGTSTP,
    /// Terminal window size changed.
    SIGWINCH = libc::SIGWINCH,
}

const ALL: [Signal; 15] = [
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGABRT,
    Signal::SIGKILL,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGPIPE,
    Signal::SIGALRM,
    Signal::SIGTERM,
    Signal::SIGCHLD,
    Signal::SIGCONT,
    Signal::SIGSTOP,
    Signal::SIGTSTP,
    Signal::SIGWINCH,
];

impl Signal {
    /// The signal number (`15` for `SIGTERM`).
    ///
    /// ```
    /// assert_eq!(ipc_core::Signal::SIGKILL.as_raw(), 9);
    /// ```
    pub const fn as_raw(self) -> i32 {
        self as i32
    }

    /// The `signal(7)` name (`"SIGTERM"`).
    ///
    /// ```
    /// assert_eq!(ipc_core::Signal::SIGUSR1.as_str(), "SIGUSR1");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            Signal::SIGHUP => "SIGHUP",
            Signal::SIGINT => "SIGINT",
            Signal::SIGQUIT => "SIGQUIT",
            Signal::SIGABRT => "SIGABRT",
            Signal::SIGKILL => "SIGKILL",
            Signal::SIGUSR1 => "SIGUSR1",
            Signal::SIGUSR2 => "SIGUSR2",
            Signal::SIGPIPE => "SIGPIPE",
            Signal::SIGALRM => "SIGALRM",
            Signal::SIGTERM => "SIGTERM",
            Signal::SIGCHLD => "SIGCHLD",
            Signal::SIGCONT => "SIGCONT",
            Signal::SIGSTOP => "SIGSTOP",
            Signal::SIGTSTP => "SIGTSTP",
            Signal::SIGWINCH => "SIGWINCH",
        }
    }

    /// For the `kill`/`killpg` calls made inside the toolkit.
    pub(crate) fn to_nix(self) -> nix::sys::signal::Signal {
        match nix::sys::signal::Signal::try_from(self.as_raw()) {
            Ok(sig) => sig,
            // Every variant is a signal number Linux defines, which nix knows.
            Err(_) => unreachable!("{self:?} is a Linux signal"),
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A signal number that [`Signal`] does not name.
///
/// ```
/// let e = ipc_core::Signal::try_from(64).unwrap_err();
/// assert_eq!(e.0, 64);
/// assert!(e.to_string().contains("64"));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("signal number {0} is not one of the signals ipc_core::Signal names")]
pub struct UnknownSignal(pub i32);

impl TryFrom<i32> for Signal {
    type Error = UnknownSignal;

    fn try_from(raw: i32) -> Result<Self, UnknownSignal> {
        ALL.into_iter()
            .find(|sig| sig.as_raw() == raw)
            .ok_or(UnknownSignal(raw))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_signal_round_trips_and_agrees_with_nix() {
        for sig in ALL {
            assert_eq!(Signal::try_from(sig.as_raw()), Ok(sig));
            assert_eq!(sig.to_nix().as_str(), sig.as_str());
        }
    }
}
