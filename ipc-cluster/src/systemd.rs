//! systemd socket activation (`sd_listen_fds`): take the listening sockets a service
//! manager passed as fds 3, 4, ... with `LISTEN_FDS`, `LISTEN_PID` and
//! `LISTEN_FDNAMES`. A cluster primary uses it instead of binding; any process
//! started that way (by systemd, or by a manager such as `ipcm`) can call
//! [`listen_fds`] itself.
//!
//! ```no_run
//! for (name, fd) in ipc_cluster::systemd::listen_fds()? {
//!     let listener = std::net::TcpListener::from(fd);
//!     println!("{}: {:?}", name.as_deref().unwrap_or("unnamed"), listener.local_addr());
//! }
//! # Ok::<(), ipc_cluster::Error>(())
//! ```

#![allow(unsafe_code)]

use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use crate::error::{Error, Result};

/// The first passed fd (`SD_LISTEN_FDS_START`).
pub const LISTEN_FDS_START: RawFd = 3;
/// How many fds were passed.
pub const LISTEN_FDS: &str = "LISTEN_FDS";
/// The pid they were passed to (so a child does not take its parent's).
pub const LISTEN_PID: &str = "LISTEN_PID";
/// Their names, separated by `:`.
pub const LISTEN_FDNAMES: &str = "LISTEN_FDNAMES";

/// Take the fds passed by socket activation, with their names: empty when nothing was
/// passed to this process (`LISTEN_PID` unset or another pid). The variables are
/// removed, so our own children never see them, and the fds are made close-on-exec.
/// Call it once, early (the fds are owned by whoever calls it first).
///
/// ```no_run
/// let fds = ipc_cluster::systemd::listen_fds()?;
/// if fds.is_empty() { println!("not socket-activated: bind yourself"); }
/// # Ok::<(), ipc_cluster::Error>(())
/// ```
pub fn listen_fds() -> Result<Vec<(Option<String>, OwnedFd)>> {
    let pid = std::env::var(LISTEN_PID).ok();
    let count = std::env::var(LISTEN_FDS).ok();
    let names = std::env::var(LISTEN_FDNAMES).ok();
    let Some(pid) = pid else {
        return Ok(Vec::new());
    };
    if pid.trim().parse::<u32>().ok() != Some(std::process::id()) {
        return Ok(Vec::new());
    }
    for var in [LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES] {
        std::env::remove_var(var);
    }
    let count: RawFd = count
        .as_deref()
        .unwrap_or("0")
        .trim()
        .parse()
        .map_err(|_| Error::State(format!("{LISTEN_FDS}={count:?} is not a number")))?;
    let names: Vec<Option<String>> = match names {
        Some(names) => names.split(':').map(|n| Some(n.to_string())).collect(),
        None => Vec::new(),
    };
    let mut out = Vec::with_capacity(count.max(0) as usize);
    for i in 0..count.max(0) {
        let fd = LISTEN_FDS_START + i;
        let stat = nix::sys::stat::fstat(
            // SAFETY: only read for the duration of the call; fstat on a closed number
            // fails with EBADF, which is reported below.
            unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) },
        )
        .map_err(|e| {
            Error::State(format!(
                "{LISTEN_FDS}={count} but fd {fd} is not open ({e}); was it passed by the \
                 service manager?"
            ))
        })?;
        if stat.st_mode & libc::S_IFMT != libc::S_IFSOCK {
            return Err(Error::State(format!(
                "fd {fd} passed by socket activation is not a socket"
            )));
        }
        // SAFETY: the fd is open (checked above), it was passed to this very process
        // (LISTEN_PID), and the variables are removed above, so no later call of ours
        // makes a second owner of it.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        nix::fcntl::fcntl(
            &owned,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        )?;
        out.push((names.get(i as usize).cloned().flatten(), owned));
    }
    Ok(out)
}

/// The first fd [`listen_fds`] returns that is a listening TCP socket, as a
/// non-blocking std listener; `None` when nothing was passed.
///
/// ```no_run
/// if let Some(listener) = ipc_cluster::systemd::tcp_listener()? {
///     println!("activated on {:?}", listener.local_addr()?);
/// }
/// # Ok::<(), ipc_cluster::Error>(())
/// ```
pub fn tcp_listener() -> Result<Option<std::net::TcpListener>> {
    for (_, fd) in listen_fds()? {
        let listener = std::net::TcpListener::from(fd);
        if listener.local_addr().is_ok() {
            listener.set_nonblocking(true)?;
            return Ok(Some(listener));
        }
    }
    Ok(None)
}
