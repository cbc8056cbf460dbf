//! The child side of the raw baselines: open what the parent left (inherited fds, the
//! FIFO directory, the TCP port, stdin/stdout) and serve the job, waiting as the
//! baseline says (blocking, spinning, `epoll_wait`, or tokio for the tokio floors).

use std::fs::{File, OpenOptions};
use std::io;
use std::net::TcpStream;
use std::os::fd::{AsFd, FromRawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use anyhow::{anyhow, Context, Result};

use super::{
    tokio_floor, Ends, RawKind, Wait, CHILD_IN_FD, CHILD_OUT_FD, FIFO_DIR_ENV, FIFO_DOWN, FIFO_UP,
    TCP_PORT_ENV,
};
use crate::roles::Job;

/// The child's ends of a raw baseline (blocking), from what the parent left it.
fn child_ends(kind: RawKind) -> Result<Ends> {
    // Each `from_raw_fd` below is sound because the parent placed these fds for us with
    // `inherit_fds` before exec, nothing else in this process uses them, and each is
    // taken exactly once.
    match kind.wiring().0 {
        RawKind::Socketpair => {
            // SAFETY: see above; CHILD_IN_FD is an open socket this process owns alone.
            let sock = unsafe { UnixStream::from_raw_fd(CHILD_IN_FD) };
            Ok(Ends::Unix(sock))
        }
        RawKind::Pipe => {
            // SAFETY: see above; CHILD_IN_FD is the read end this process owns alone.
            let read = unsafe { File::from_raw_fd(CHILD_IN_FD) };
            // SAFETY: see above; CHILD_OUT_FD is the write end this process owns alone.
            let write = unsafe { File::from_raw_fd(CHILD_OUT_FD) };
            Ok(Ends::Files { read, write })
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
            Ok(Ends::Files {
                read: down,
                write: up,
            })
        }
        RawKind::Tcp => {
            let port = std::env::var(TCP_PORT_ENV).context(format!("{TCP_PORT_ENV} is not set"))?;
            let stream = TcpStream::connect(format!("127.0.0.1:{port}")).context("connecting")?;
            stream.set_nodelay(true).context("TCP_NODELAY")?;
            Ok(Ends::Tcp(stream))
        }
        RawKind::Stdio => {
            let stdin = io::stdin()
                .as_fd()
                .try_clone_to_owned()
                .context("dup stdin")?;
            let stdout = io::stdout()
                .as_fd()
                .try_clone_to_owned()
                .context("dup stdout")?;
            Ok(Ends::Files {
                read: File::from(stdin),
                write: File::from(stdout),
            })
        }
        _ => Err(anyhow!("{} has no byte stream (see raw::shm)", kind.name())),
    }
}

/// Serve `job` as a raw child of `kind`.
pub(crate) fn serve_child(kind: RawKind, job: &Job) -> Result<()> {
    if kind == RawKind::Shm {
        return super::shm::serve_child(job);
    }
    let ends = child_ends(kind)?;
    let wait = kind.wiring().1;
    match wait {
        Wait::Tokio(registration) => return tokio_floor::serve(ends, registration, false, job),
        Wait::TokioSpin(registration) => return tokio_floor::serve(ends, registration, true, job),
        _ => {}
    }
    let mut conn = ends.into_conn(wait, kind.framing())?;
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
