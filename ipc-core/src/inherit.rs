//! Taking ownership of the fds a parent left open for us (`uds:fd=3`, `pipe:fd=3,4`,
//! `node:fd=3`).
//!
//! One register for the whole process, shared by every transport, so an inherited
//! socket or pipe is turned into an owner at most once (a second owner would close it
//! twice, or tear frames). The register keys on the open object (`st_dev`, `st_ino`,
//! and which end of a pipe), not the fd number: a number the OS reuses for a new pipe after a channel closed is
//! fine, while the same socket under another number (a `dup`) is still refused. Each fd is checked before it is taken: open, the right kind (a Unix stream
//! socket, or the right end of a pipe), and left alone if not. Taken fds are made
//! close-on-exec, so our own children do not inherit them.
//!
//! ```no_run
//! use ipc_core::inherit::{claim, FdKind};
//! let endpoint: ipc_core::Endpoint = "uds:fd=3".parse()?;
//! let fds = claim(&endpoint, &[(3, FdKind::UnixStream)], "started by UdsTransport::spawn?")?;
//! # Ok::<(), ipc_core::Error>(())
//! ```

use std::collections::BTreeSet;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::sync::Mutex;

use crate::endpoint::Endpoint;
use crate::error::{Error, Result};

/// What this process has taken, by any transport: (device, inode, kind). The kind tells
/// a pipe's two ends apart, which share one inode.
static TAKEN: Mutex<BTreeSet<(u64, u64, u8)>> = Mutex::new(BTreeSet::new());

/// What an inherited fd must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FdKind {
    /// A connected `AF_UNIX` `SOCK_STREAM` socket.
    UnixStream,
    /// A pipe or FIFO open for reading.
    PipeReadEnd,
    /// A pipe or FIFO open for writing.
    PipeWriteEnd,
}

fn describe(mode: libc::mode_t) -> &'static str {
    match mode & libc::S_IFMT {
        libc::S_IFREG => "a regular file",
        libc::S_IFDIR => "a directory",
        libc::S_IFCHR => "a character device (a terminal or /dev/null?)",
        libc::S_IFBLK => "a block device",
        libc::S_IFSOCK => "a socket",
        libc::S_IFIFO => "a pipe",
        _ => "something else",
    }
}

fn file_stat(fd: RawFd) -> io::Result<libc::stat> {
    let mut stat = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: fstat only writes the stat buffer; an fd that is not open gives EBADF.
    if unsafe { libc::fstat(fd, stat.as_mut_ptr()) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fstat succeeded, so it filled the buffer.
    Ok(unsafe { stat.assume_init() })
}

/// An integer `SOL_SOCKET` option of an fd we do not own yet.
fn socket_option(fd: RawFd, option: libc::c_int) -> Option<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `value`.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            option,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    (rc == 0).then_some(value)
}

/// The object's identity when `fd` is usable as `kind`, else why not.
fn check(fd: RawFd, kind: FdKind) -> std::result::Result<(u64, u64, u8), String> {
    let stat = file_stat(fd).map_err(|e| format!("fd {fd} is not open ({e})"))?;
    let mode = stat.st_mode;
    let is = |t| mode & libc::S_IFMT == t;
    match kind {
        FdKind::UnixStream => {
            if !is(libc::S_IFSOCK) {
                return Err(format!(
                    "fd {fd} is not a socket (it is {})",
                    describe(mode)
                ));
            }
            #[cfg(any(target_os = "linux", target_os = "android"))]
            if socket_option(fd, libc::SO_DOMAIN).is_some_and(|d| d != libc::AF_UNIX) {
                return Err(format!(
                    "fd {fd} is a network socket, not a Unix stream socket"
                ));
            }
            if socket_option(fd, libc::SO_TYPE).is_some_and(|t| t != libc::SOCK_STREAM) {
                return Err(format!(
                    "fd {fd} is a datagram or sequenced-packet socket, not a Unix stream socket"
                ));
            }
        }
        FdKind::PipeReadEnd | FdKind::PipeWriteEnd => {
            if !is(libc::S_IFIFO) {
                return Err(format!("fd {fd} is not a pipe (it is {})", describe(mode)));
            }
            // SAFETY: F_GETFL on an open fd; no memory is involved.
            let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
            let access = flags & libc::O_ACCMODE;
            let (ok, verb) = if kind == FdKind::PipeWriteEnd {
                (access == libc::O_WRONLY || access == libc::O_RDWR, "write")
            } else {
                (access == libc::O_RDONLY || access == libc::O_RDWR, "read")
            };
            if flags < 0 || !ok {
                return Err(format!(
                    "fd {fd} is the wrong end of its pipe: it cannot be used to {verb} \
                     (is the endpoint pipe:fd=READ,WRITE in the right order?)"
                ));
            }
        }
    }
    Ok((stat.st_dev as u64, stat.st_ino as u64, kind as u8))
}

/// Check every fd, then take them all (or none): each must be open, of its kind, and not
/// taken before in this process. Returns the owned fds in order, close-on-exec.
///
/// Errors: [`Error::NotAChild`] naming `endpoint`, the fd and what it is instead, with
/// `hint` (how this process should have been started); [`Error::Io`] of kind
/// `AlreadyExists` for an fd taken before.
pub fn claim(endpoint: &Endpoint, fds: &[(RawFd, FdKind)], hint: &str) -> Result<Vec<OwnedFd>> {
    let mut taken = TAKEN.lock().unwrap_or_else(|e| e.into_inner());
    let mut objects = Vec::with_capacity(fds.len());
    for (fd, kind) in fds {
        let object = check(*fd, *kind)
            .map_err(|why| Error::NotAChild(format!("{endpoint}: {why}: {hint}")))?;
        if taken.contains(&object) || objects.contains(&object) {
            return Err(Error::Io(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!(
                    "{endpoint}: fd {fd} was already taken by an earlier connect in this \
                     process; an inherited channel can be opened only once (keep the first \
                     channel, or split it to use it from two tasks)"
                ),
            )));
        }
        objects.push(object);
    }
    taken.extend(objects);
    let owned: Vec<OwnedFd> = fds
        .iter()
        .map(|(fd, _)| {
            // SAFETY: the fd is open and of the expected kind (checked above, under the
            // lock), the parent handed it to this process to own (the env contract), and
            // the register guarantees no other owner was ever made of this object.
            unsafe { OwnedFd::from_raw_fd(*fd) }
        })
        .collect();
    drop(taken);
    for fd in &owned {
        nix::fcntl::fcntl(
            fd,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        )
        .map_err(std::io::Error::from)?;
    }
    Ok(owned)
}

/// [`claim`] one inherited Unix stream socket, made non-blocking, ready for
/// `tokio::net::UnixStream::from_std`.
pub fn claim_unix_stream(
    endpoint: &Endpoint,
    fd: RawFd,
    hint: &str,
) -> Result<std::os::unix::net::UnixStream> {
    let owned = claim(endpoint, &[(fd, FdKind::UnixStream)], hint)?
        .pop()
        .ok_or_else(|| Error::Io(io::Error::other("claim returned no fd")))?;
    let stream = std::os::unix::net::UnixStream::from(owned);
    stream.set_nonblocking(true)?;
    Ok(stream)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn kinds_are_checked_and_an_fd_is_taken_once_across_transports() {
        let file = tempfile_like();
        let fd = file.as_raw_fd();
        let ep = Endpoint::new("uds", format!("fd={fd}"));
        let err = claim(&ep, &[(fd, FdKind::UnixStream)], "hint").expect_err("file");
        assert!(
            err.to_string()
                .contains("is not a socket (it is a regular file)"),
            "{err}"
        );
        let err = claim(&ep, &[(fd, FdKind::PipeReadEnd)], "hint").expect_err("file");
        assert!(err.to_string().contains("not a pipe"), "{err}");
        assert!(file_stat(fd).is_ok(), "a refused fd stays open");

        let (r, w) = nix::unistd::pipe().expect("pipe");
        let (r, w) = (r.as_raw_fd(), w.as_raw_fd());
        let ep = Endpoint::new("pipe", format!("fd={r},{w}"));
        let err = claim(&ep, &[(w, FdKind::PipeReadEnd)], "h").expect_err("write end");
        assert!(err.to_string().contains("wrong end"), "{err}");
        let owned = claim(
            &ep,
            &[(r, FdKind::PipeReadEnd), (w, FdKind::PipeWriteEnd)],
            "h",
        )
        .expect("claim");
        assert_eq!(owned.len(), 2);
        // The same pipe again, even under another number, is refused: no second owner.
        // SAFETY: `r` is open (owned by `owned`) for the whole borrow, which ends at `dup`.
        let again =
            nix::unistd::dup(unsafe { std::os::fd::BorrowedFd::borrow_raw(r) }).expect("dup");
        let err = claim(&ep, &[(again.as_raw_fd(), FdKind::PipeReadEnd)], "h").expect_err("taken");
        assert!(err.to_string().contains("already taken"), "{err}");
        // nix's OwnedFds own r and w too: forget ours to avoid closing them twice.
        owned.into_iter().for_each(std::mem::forget);
    }

    fn tempfile_like() -> std::fs::File {
        std::fs::File::open("/proc/self/exe").expect("open a regular file")
    }
}
