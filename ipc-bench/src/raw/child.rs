//! The child side of the raw baselines: open what the parent left (inherited fds, the
//! FIFO directory, the TCP port, stdin/stdout) and serve the job with blocking I/O.

use std::fs::{File, OpenOptions};
use std::io;
use std::net::TcpStream;
use std::os::fd::{AsFd, FromRawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use anyhow::{anyhow, Context, Result};

use super::wire::{Conn, Spin};
use super::{
    boxed, set_nonblocking, RawKind, CHILD_IN_FD, CHILD_OUT_FD, FIFO_DIR_ENV, FIFO_DOWN, FIFO_UP,
    TCP_PORT_ENV,
};
use crate::roles::Job;

/// The child's end of a raw baseline, from what the parent left it.
fn child_conn(kind: RawKind) -> Result<Conn> {
    let framing = kind.framing();
    // Each `from_raw_fd` below is sound because the parent placed these fds for us with
    // `inherit_fds` before exec, nothing else in this process uses them, and each is
    // taken exactly once.
    match kind {
        RawKind::SocketpairSpin => {
            // SAFETY: see above; CHILD_IN_FD is an open socket this process owns alone.
            let sock = unsafe { UnixStream::from_raw_fd(CHILD_IN_FD) };
            sock.set_nonblocking(true).context("set_nonblocking")?;
            let read = sock.try_clone().context("dup")?;
            Ok(boxed(Spin(read), Spin(sock), framing))
        }
        RawKind::PipeSpin => {
            // SAFETY: see above; CHILD_IN_FD is the read end this process owns alone.
            let read = unsafe { File::from_raw_fd(CHILD_IN_FD) };
            // SAFETY: see above; CHILD_OUT_FD is the write end this process owns alone.
            let write = unsafe { File::from_raw_fd(CHILD_OUT_FD) };
            set_nonblocking(&read)?;
            set_nonblocking(&write)?;
            Ok(Conn::new(
                Box::new(Spin(read)),
                Box::new(Spin(write)),
                framing,
            ))
        }
        RawKind::Socketpair => {
            // SAFETY: see above; CHILD_IN_FD is an open socket this process owns alone.
            let sock = unsafe { UnixStream::from_raw_fd(CHILD_IN_FD) };
            let read = sock.try_clone().context("dup")?;
            Ok(boxed(read, sock, framing))
        }
        RawKind::Pipe => {
            // SAFETY: see above; CHILD_IN_FD is the read end this process owns alone.
            let read = unsafe { File::from_raw_fd(CHILD_IN_FD) };
            // SAFETY: see above; CHILD_OUT_FD is the write end this process owns alone.
            let write = unsafe { File::from_raw_fd(CHILD_OUT_FD) };
            Ok(Conn::new(Box::new(read), Box::new(write), framing))
        }
        RawKind::Fifo => {
            let dir =
                std::env::var_os(FIFO_DIR_ENV).context(format!("{FIFO_DIR_ENV} is not set"))?;
            let dir = Path::new(&dir);
            let up = OpenOptions::new()
                .write(true)
                .open(dir.join(FIFO_UP))
                .context("opening the up FIFO")?;
            let down = File::open(dir.join(FIFO_DOWN)).context("opening the down FIFO")?;
            Ok(Conn::new(Box::new(down), Box::new(up), framing))
        }
        RawKind::Tcp => {
            let port = std::env::var(TCP_PORT_ENV).context(format!("{TCP_PORT_ENV} is not set"))?;
            let stream = TcpStream::connect(format!("127.0.0.1:{port}")).context("connecting")?;
            stream.set_nodelay(true).context("TCP_NODELAY")?;
            let read = stream.try_clone().context("dup")?;
            Ok(boxed(read, stream, framing))
        }
        RawKind::Shm => Err(anyhow!("raw-shm has no byte stream (see raw::shm)")),
        RawKind::Stdio => {
            let stdin = io::stdin()
                .as_fd()
                .try_clone_to_owned()
                .context("dup stdin")?;
            let stdout = io::stdout()
                .as_fd()
                .try_clone_to_owned()
                .context("dup stdout")?;
            Ok(Conn::new(
                Box::new(File::from(stdin)),
                Box::new(File::from(stdout)),
                framing,
            ))
        }
    }
}

/// Serve `job` as a raw child of `kind`.
pub(crate) fn serve_child(kind: RawKind, job: &Job) -> Result<()> {
    if kind == RawKind::Shm {
        return super::shm::serve_child(job);
    }
    let mut conn = child_conn(kind)?;
    let mut buf = Vec::new();
    match job {
        Job::Echo => {
            while conn.recv(&mut buf).context("receiving")? {
                conn.send(&buf).context("echoing")?;
            }
        }
        Job::Sink(phases) | Job::SinkMany(phases) => {
            for &n in phases {
                for _ in 0..n {
                    if !conn.recv(&mut buf).context("receiving")? {
                        return Err(anyhow!("the parent closed inside a phase"));
                    }
                }
                conn.send(crate::workload::ACK).context("acknowledging")?;
            }
            while conn.recv(&mut buf).context("waiting for close")? {}
        }
    }
    Ok(())
}
