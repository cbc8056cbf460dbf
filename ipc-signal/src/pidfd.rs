//! The peer as a pidfd: opened at first contact, every signal sent through it.
//!
//! A pid is only a number, and once its process has exited and been reaped the kernel
//! hands the number to the next new process. A pidfd (Linux 5.3+) refers to the process
//! itself: `pidfd_send_signal` on it fails with `ESRCH` once that process is gone,
//! whoever holds its old number now. So a channel opens the pidfd before it sends its
//! first signal, and never signals by number.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use ipc_core::{Error, Result};

use crate::link::NAME;

/// Why a signal could not be queued.
pub(crate) enum QueueError {
    /// `EAGAIN`: the queued-signal limit of the receiving user is reached; retry later.
    Full,
    /// `ESRCH`: the process the pidfd refers to has exited and been reaped.
    NoProcess,
    /// Anything else.
    Other(io::Error),
}

/// `pidfd_open(pid, 0)`: a descriptor for process `pid` (readable once it has exited).
pub(crate) fn open(pid: u32) -> Result<OwnedFd> {
    let found = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw);
    let Some(raw) = found else {
        return Err(Error::Io(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{pid} is not a process id"),
        )));
    };
    rustix::process::pidfd_open(raw, rustix::process::PidfdFlags::empty()).map_err(|e| match e {
        rustix::io::Errno::SRCH => Error::Io(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no process with pid {pid}: it exited, or the endpoint is wrong"),
        )),
        rustix::io::Errno::NOSYS => Error::unsupported(
            NAME,
            "addressing the peer process on this kernel (pidfd_open needs Linux 5.3 or \
             later; without it a reused pid could be signalled, so the channel is refused)",
        ),
        other => Error::Io(other.into()),
    })
}

/// The `siginfo_t` that `sigqueue(3)` builds: `SI_QUEUE`, our pid and uid, one word.
/// The layout of the kernel's `siginfo_t` with its `_rt` member on 64-bit Linux.
#[repr(C)]
struct QueueInfo {
    signo: libc::c_int,
    #[cfg(any(target_arch = "mips64", target_arch = "mips64r6"))]
    code: libc::c_int,
    errno: libc::c_int,
    #[cfg(not(any(target_arch = "mips64", target_arch = "mips64r6")))]
    code: libc::c_int,
    _align: libc::c_int,
    pid: libc::pid_t,
    uid: libc::uid_t,
    value: libc::sigval,
    _rest: [u8; 128 - 32],
}

const _: () = assert!(std::mem::size_of::<QueueInfo>() == std::mem::size_of::<libc::siginfo_t>());

impl QueueInfo {
    fn new(signo: libc::c_int, word: u64) -> Self {
        QueueInfo {
            signo,
            errno: 0,
            code: libc::SI_QUEUE,
            _align: 0,
            // SAFETY: getpid and getuid cannot fail.
            pid: unsafe { libc::getpid() },
            // SAFETY: as above.
            uid: unsafe { libc::getuid() },
            value: libc::sigval {
                sival_ptr: word as usize as *mut libc::c_void,
            },
            _rest: [0; 128 - 32],
        }
    }
}

/// `pidfd_send_signal(pidfd, signo, info, 0)`, retried on `EINTR`.
fn send_raw(pidfd: BorrowedFd<'_>, signo: libc::c_int, info: Option<&QueueInfo>) -> io::Result<()> {
    let info = info.map_or(std::ptr::null(), std::ptr::from_ref);
    loop {
        // SAFETY: `pidfd` is an open descriptor; `info` is null or points to a
        // siginfo_t-sized, initialised QueueInfo that outlives the call; flags are 0.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                pidfd.as_raw_fd(),
                signo,
                info,
                0u32,
            )
        };
        if rc == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Queue real-time signal `signo` carrying `word` to the process behind `pidfd`, as
/// `sigqueue(3)` would (the receiver reads `SI_QUEUE`, our pid and `word`).
pub(crate) fn queue(
    pidfd: BorrowedFd<'_>,
    signo: libc::c_int,
    word: u64,
) -> Result<(), QueueError> {
    match send_raw(pidfd, signo, Some(&QueueInfo::new(signo, word))) {
        Ok(()) => Ok(()),
        Err(e) => Err(match e.raw_os_error() {
            Some(libc::EAGAIN) => QueueError::Full,
            Some(libc::ESRCH) => QueueError::NoProcess,
            _ => QueueError::Other(e),
        }),
    }
}

/// Whether the process behind `pidfd` still exists and may be signalled (signal 0:
/// nothing is sent). Also proves that this kernel lets us signal through a pidfd.
pub(crate) fn probe(pidfd: BorrowedFd<'_>, pid: u32) -> Result<()> {
    send_raw(pidfd, 0, None).map_err(|e| match e.raw_os_error() {
        Some(libc::ESRCH) => Error::Io(io::Error::new(
            io::ErrorKind::NotFound,
            format!("process {pid} exited before the signal channel to it was opened"),
        )),
        Some(libc::EPERM) => Error::Io(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("not allowed to signal process {pid} (another user's process?)"),
        )),
        Some(libc::ENOSYS) => Error::unsupported(
            NAME,
            "signalling through a pidfd on this system (pidfd_send_signal needs Linux 5.1 \
             or later and may be blocked by a seccomp filter)",
        ),
        _ => Error::Io(e),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_info_reads_back_as_a_siginfo() {
        let info = QueueInfo::new(37, 0x5347_0100_0000_0002);
        // SAFETY: same size (asserted at compile time); siginfo_t is plain data.
        let si: libc::siginfo_t = unsafe { std::mem::transmute(info) };
        assert_eq!(si.si_signo, 37);
        assert_eq!(si.si_errno, 0);
        assert_eq!(si.si_code, libc::SI_QUEUE);
        // SAFETY: the union is read as the member that was written (_rt).
        unsafe {
            assert_eq!(si.si_pid(), libc::getpid());
            assert_eq!(si.si_uid(), libc::getuid());
            assert_eq!(si.si_value().sival_ptr as usize, 0x5347_0100_0000_0002);
        }
    }
}
