//! How a run ends, and the exit code that says so.

use std::process::{ExitCode, ExitStatus};

/// The peer closed cleanly (goodbye) and, with `--spawn`, the child exited 0.
pub(crate) const OK: u8 = 0;
/// The channel ended without a goodbye: the peer crashed, was killed, or dropped the
/// connection.
pub(crate) const PEER_LOST: u8 = 1;
/// Bad command line (clap's own code), or an unknown transport name.
pub(crate) const USAGE: u8 = 2;
/// Could not connect, listen or start the child, or reading stdin / writing stdout
/// failed.
pub(crate) const FAILED: u8 = 3;
/// With `--spawn`: the child exited with a non-zero code or was killed by a signal (its
/// status is printed on stderr). Takes precedence over [`PEER_LOST`], since a child
/// that dies loses the channel too.
pub(crate) const CHILD_FAILED: u8 = 4;

/// The exit codes, for `--help`.
pub(crate) const HELP: &str = "\
Exit status:
  0  the peer closed cleanly (and, with --spawn, the child exited 0)
  1  the peer was lost: the channel ended without a goodbye
  2  usage error (bad arguments, unknown transport)
  3  could not connect, listen or start the child, or stdin/stdout failed
  4  with --spawn: the child exited non-zero or was killed by a signal
     (stderr says which: 'ipc-cat: the child exited with status 3')";

/// How the channel part of a run ended.
#[derive(Debug)]
pub(crate) enum Ended {
    /// The peer said goodbye.
    Clean,
    /// The channel ended without a goodbye; the reason.
    Lost(String),
    /// ipc-cat's own stdin or stdout failed; the reason.
    Io(String),
}

impl Ended {
    /// The exit code when no child is involved, after reporting on stderr.
    pub(crate) fn code(&self) -> u8 {
        match self {
            Ended::Clean => OK,
            Ended::Lost(why) => {
                eprintln!("ipc-cat: the channel ended without a goodbye: {why}");
                PEER_LOST
            }
            Ended::Io(why) => {
                eprintln!("ipc-cat: {why}");
                FAILED
            }
        }
    }

    /// The exit code when `status` is the spawned child's, after reporting on stderr.
    pub(crate) fn code_with_child(&self, status: ExitStatus) -> u8 {
        if status.success() {
            return self.code();
        }
        match self {
            Ended::Lost(why) => eprintln!("ipc-cat: the channel ended without a goodbye: {why}"),
            Ended::Io(why) => eprintln!("ipc-cat: {why}"),
            Ended::Clean => {}
        }
        eprintln!("ipc-cat: the child {}", describe(status));
        CHILD_FAILED
    }
}

/// `exited with status 3` / `was killed by signal 9 (SIGKILL)`.
pub(crate) fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    if let Some(code) = status.code() {
        return format!("exited with status {code}");
    }
    match status.signal() {
        Some(sig) => {
            let name = ipc::Signal::try_from(sig)
                .map(|s| format!(" ({})", s.as_str()))
                .unwrap_or_default();
            format!("was killed by signal {sig}{name}")
        }
        None => format!("ended with {status}"),
    }
}

/// As a process exit code.
pub(crate) fn to_exit_code(code: u8) -> ExitCode {
    ExitCode::from(code)
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt;

    use super::*;

    #[test]
    fn child_status_wins_over_a_lost_channel() {
        let killed = ExitStatus::from_raw(9);
        assert_eq!(
            Ended::Lost("eof".into()).code_with_child(killed),
            CHILD_FAILED
        );
        assert_eq!(describe(killed), "was killed by signal 9 (SIGKILL)");
        let three = ExitStatus::from_raw(3 << 8);
        assert_eq!(Ended::Clean.code_with_child(three), CHILD_FAILED);
        assert_eq!(describe(three), "exited with status 3");
        let ok = ExitStatus::from_raw(0);
        assert_eq!(Ended::Clean.code_with_child(ok), OK);
        assert_eq!(Ended::Lost("eof".into()).code_with_child(ok), PEER_LOST);
        assert_eq!(Ended::Io("stdout".into()).code_with_child(ok), FAILED);
    }
}
