//! Raw baselines: the OS floor each transport is compared with, written with `std`
//! only — blocking I/O, no runtime, no framing library — and the shared-memory floor,
//! written in C (see [`shm`]).
//!
//! | baseline | wiring | framing |
//! |---|---|---|
//! | `raw-socketpair` | `socketpair(AF_UNIX, SOCK_STREAM)`, child's end inherited as fd 3 | `u32` BE length |
//! | `raw-pipe` | two `pipe2` pipes, child reads fd 3 and writes fd 4 | `u32` BE length |
//! | `raw-fifo` | two FIFOs in a private 0700 directory | `u32` BE length |
//! | `raw-tcp` | `127.0.0.1:0` listener, child connects, `TCP_NODELAY` both ends | `u32` BE length |
//! | `raw-stdio` | the child's stdin and stdout | `\n` after each line |
//! | `raw-shm` | one shared `memfd` mapping, both sides spinning on atomic sequence words (C) | none: fixed-size slots |
//! | `raw-socketpair-spin` | as `raw-socketpair`, non-blocking, both ends spinning on `read` (with `sched_yield`) | `u32` BE length |
//! | `raw-pipe-spin` | as `raw-pipe`, non-blocking, both ends spinning on `read` (with `sched_yield`) | `u32` BE length |
//! | `raw-socketpair-epoll`, `raw-pipe-epoll`, `raw-fifo-epoll`, `raw-tcp-epoll`, `raw-stdio-epoll` | as the blocking baseline, non-blocking, each side waiting in `epoll_wait` before a read (see [`epoll`]); round trips only | as the blocking baseline |
//! | `raw-socketpair-tokio`, `raw-pipe-tokio`, `raw-tcp-tokio` | as the blocking baseline, each side a tokio `current_thread` runtime (`enable_all`) doing `write_all` + `read_exact` on tokio's types (see [`tokio_floor`]); round trips only | `u32` BE length |
//! | `raw-socketpair-uring`, `raw-pipe-uring`, `raw-tcp-uring` | as the blocking baseline, each side writing with `writev` and receiving through its own io_uring: one `io_uring_enter` submits a `Read` and waits for it (see [`uring`]); round trips only | as the blocking baseline |
//! | `raw-socketpair-tokio-fd` | as `raw-socketpair-tokio`, the socket registered for read readiness only (`AsyncFd`), writes straight to the fd (see [`tokio_floor`]); round trips only | `u32` BE length |
//!
//! Every frame of the stream baselines is written with one `writev` (see [`wire`]). The child is this binary
//! re-executed with [`ROLE_ENV`](crate::roles::ROLE_ENV) naming the baseline.

mod child;
pub(crate) mod epoll;
pub(crate) mod shm;
pub(crate) mod tokio_floor;
pub(crate) mod uring;
pub(crate) mod wire;

pub(crate) use child::serve_child;

use std::fs::{File, OpenOptions};
use std::io;
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::sys::stat::Mode;

use anyhow::{anyhow, Context, Result};

use crate::cli::Flavor;
use crate::pin::Placement;
use crate::roles::{child_command, Job, Role};
use crate::stats::{self, Measurement};
use crate::workload::{payload, Cell, Workload};
use epoll::{EpollRead, PollWrite};
use tempfile::TempDir;
use tokio_floor::Registration;
use uring::UringRead;
use wire::{Conn, Framing, Spin};

/// Names the FIFO directory for a `raw-fifo` child.
const FIFO_DIR_ENV: &str = "IPC_BENCH_FIFO_DIR";
/// Names the listening port for a `raw-tcp` child.
const TCP_PORT_ENV: &str = "IPC_BENCH_TCP_PORT";
/// The fd a child reads from (socketpair: reads and writes).
const CHILD_IN_FD: i32 = 3;
/// The fd a `raw-pipe` child writes to.
const CHILD_OUT_FD: i32 = 4;
/// FIFO the parent writes and the child reads.
const FIFO_DOWN: &str = "down";
/// FIFO the child writes and the parent reads.
const FIFO_UP: &str = "up";
/// How long the parent waits for a raw child to connect.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// One raw baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RawKind {
    /// An `AF_UNIX` stream socketpair.
    Socketpair,
    /// Two anonymous pipes.
    Pipe,
    /// Two named pipes.
    Fifo,
    /// TCP over loopback with `TCP_NODELAY`.
    Tcp,
    /// The child's stdin and stdout, one line per message.
    Stdio,
    /// Shared memory and spinning on sequence words: no system call at all.
    Shm,
    /// A socketpair whose ends spin on non-blocking reads and writes.
    SocketpairSpin,
    /// Two pipes whose ends spin on non-blocking reads and writes.
    PipeSpin,
    /// [`Socketpair`](RawKind::Socketpair), waiting in `epoll_wait` before each read.
    SocketpairEpoll,
    /// [`Pipe`](RawKind::Pipe), waiting in `epoll_wait` before each read.
    PipeEpoll,
    /// [`Fifo`](RawKind::Fifo), waiting in `epoll_wait` before each read.
    FifoEpoll,
    /// [`Tcp`](RawKind::Tcp), waiting in `epoll_wait` before each read.
    TcpEpoll,
    /// [`Stdio`](RawKind::Stdio), waiting in `epoll_wait` before each read.
    StdioEpoll,
    /// [`Socketpair`](RawKind::Socketpair) driven by a tokio runtime.
    SocketpairTokio,
    /// [`Pipe`](RawKind::Pipe) driven by a tokio runtime.
    PipeTokio,
    /// [`Tcp`](RawKind::Tcp) driven by a tokio runtime.
    TcpTokio,
    /// [`SocketpairTokio`](RawKind::SocketpairTokio) registered for read readiness only.
    SocketpairTokioFd,
    /// [`Socketpair`](RawKind::Socketpair) receiving through io_uring.
    SocketpairUring,
    /// [`Pipe`](RawKind::Pipe) receiving through io_uring.
    PipeUring,
    /// [`Tcp`](RawKind::Tcp) receiving through io_uring.
    TcpUring,
    /// [`PipeTokio`](RawKind::PipeTokio) whose reads spin (the low-latency floor).
    PipeTokioSpin,
    /// [`SocketpairTokioFd`](RawKind::SocketpairTokioFd) whose reads spin (the
    /// low-latency floor).
    SocketpairTokioFdSpin,
}

/// How the ends of a stream baseline wait for their peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wait {
    /// Blocking reads and writes.
    Block,
    /// Non-blocking, retried at once (see [`wire::Spin`]).
    Spin,
    /// Non-blocking, waiting in `epoll_wait` (see [`epoll`]).
    Epoll,
    /// Non-blocking, driven by a tokio `current_thread` runtime, registered as said
    /// (see [`tokio_floor`]).
    Tokio(Registration),
    /// As [`Tokio`](Wait::Tokio), but each read spins as the toolkit's low-latency mode
    /// does, with no bound (see [`tokio_floor`]).
    TokioSpin(Registration),
    /// Blocking writes; reads through an io_uring, one `io_uring_enter` each (see
    /// [`uring`]).
    Uring,
}

impl RawKind {
    /// Every baseline, in report order.
    pub(crate) const ALL: [RawKind; 22] = [
        RawKind::Socketpair,
        RawKind::Pipe,
        RawKind::Fifo,
        RawKind::Tcp,
        RawKind::Stdio,
        RawKind::Shm,
        RawKind::SocketpairSpin,
        RawKind::PipeSpin,
        RawKind::SocketpairEpoll,
        RawKind::PipeEpoll,
        RawKind::FifoEpoll,
        RawKind::TcpEpoll,
        RawKind::StdioEpoll,
        RawKind::SocketpairTokio,
        RawKind::PipeTokio,
        RawKind::TcpTokio,
        RawKind::SocketpairTokioFd,
        RawKind::SocketpairUring,
        RawKind::PipeUring,
        RawKind::TcpUring,
        RawKind::PipeTokioSpin,
        RawKind::SocketpairTokioFdSpin,
    ];

    /// The runner name (`raw-socketpair`, ...).
    pub(crate) fn name(self) -> &'static str {
        match self {
            RawKind::Socketpair => "raw-socketpair",
            RawKind::Pipe => "raw-pipe",
            RawKind::Fifo => "raw-fifo",
            RawKind::Tcp => "raw-tcp",
            RawKind::Stdio => "raw-stdio",
            RawKind::Shm => "raw-shm",
            RawKind::SocketpairSpin => "raw-socketpair-spin",
            RawKind::PipeSpin => "raw-pipe-spin",
            RawKind::SocketpairEpoll => "raw-socketpair-epoll",
            RawKind::PipeEpoll => "raw-pipe-epoll",
            RawKind::FifoEpoll => "raw-fifo-epoll",
            RawKind::TcpEpoll => "raw-tcp-epoll",
            RawKind::StdioEpoll => "raw-stdio-epoll",
            RawKind::SocketpairTokio => "raw-socketpair-tokio",
            RawKind::PipeTokio => "raw-pipe-tokio",
            RawKind::TcpTokio => "raw-tcp-tokio",
            RawKind::SocketpairTokioFd => "raw-socketpair-tokio-fd",
            RawKind::SocketpairUring => "raw-socketpair-uring",
            RawKind::PipeUring => "raw-pipe-uring",
            RawKind::TcpUring => "raw-tcp-uring",
            RawKind::PipeTokioSpin => "raw-pipe-tokio-spin",
            RawKind::SocketpairTokioFdSpin => "raw-socketpair-tokio-fd-spin",
        }
    }

    /// One line on what the baseline measures, for `--list`.
    pub(crate) fn about(self) -> String {
        let (wiring, wait) = self.wiring();
        let what = match wiring {
            RawKind::Socketpair => "AF_UNIX socketpair",
            RawKind::Pipe => "two pipes",
            RawKind::Fifo => "two FIFOs",
            RawKind::Tcp => "TCP loopback, TCP_NODELAY",
            RawKind::Stdio => "the child's stdin/stdout, one line per message",
            _ => "shared memory, spinning on sequence words (C); no system call",
        };
        let how = match wait {
            Wait::Block if wiring == RawKind::Shm => "",
            Wait::Block => ", blocking std I/O",
            Wait::Spin => ", non-blocking, spinning on read/write (spin floor)",
            Wait::Epoll => {
                ", non-blocking, epoll_wait before each read (epoll floor; round trips only)"
            }
            Wait::Tokio(Registration::Net) => {
                ", tokio current_thread runtime (enable_all), tokio::net types, write_all + \
                 read_exact, no framing library (tokio floor; round trips only)"
            }
            Wait::Tokio(Registration::ReadInterest) => {
                ", tokio current_thread runtime (enable_all), AsyncFd with read interest \
                 only, writes straight to the fd (tokio floor; round trips only)"
            }
            Wait::Uring => {
                ", blocking writev, each read one io_uring_enter submitting a Read SQE and \
                 waiting for it (io_uring floor; round trips only)"
            }
            Wait::TokioSpin(Registration::Net) => {
                ", tokio current_thread runtime (enable_all), tokio::net types, reads \
                 spinning as the low-latency mode does, unbounded (spinning tokio floor; \
                 round trips only)"
            }
            Wait::TokioSpin(Registration::ReadInterest) => {
                ", tokio current_thread runtime (enable_all), AsyncFd with read interest \
                 only, reads spinning as the low-latency mode does, unbounded (spinning \
                 tokio floor; round trips only)"
            }
        };
        format!("{what}{how}")
    }

    /// The wiring (a blocking baseline) and how its ends wait: `raw-pipe-epoll` is
    /// `raw-pipe` waiting in `epoll_wait`.
    pub(crate) fn wiring(self) -> (RawKind, Wait) {
        match self {
            RawKind::SocketpairSpin => (RawKind::Socketpair, Wait::Spin),
            RawKind::PipeSpin => (RawKind::Pipe, Wait::Spin),
            RawKind::SocketpairEpoll => (RawKind::Socketpair, Wait::Epoll),
            RawKind::PipeEpoll => (RawKind::Pipe, Wait::Epoll),
            RawKind::FifoEpoll => (RawKind::Fifo, Wait::Epoll),
            RawKind::TcpEpoll => (RawKind::Tcp, Wait::Epoll),
            RawKind::StdioEpoll => (RawKind::Stdio, Wait::Epoll),
            RawKind::SocketpairTokio => (RawKind::Socketpair, Wait::Tokio(Registration::Net)),
            RawKind::PipeTokio => (RawKind::Pipe, Wait::Tokio(Registration::Net)),
            RawKind::TcpTokio => (RawKind::Tcp, Wait::Tokio(Registration::Net)),
            RawKind::SocketpairTokioFd => {
                (RawKind::Socketpair, Wait::Tokio(Registration::ReadInterest))
            }
            RawKind::SocketpairUring => (RawKind::Socketpair, Wait::Uring),
            RawKind::PipeUring => (RawKind::Pipe, Wait::Uring),
            RawKind::TcpUring => (RawKind::Tcp, Wait::Uring),
            RawKind::PipeTokioSpin => (RawKind::Pipe, Wait::TokioSpin(Registration::Net)),
            RawKind::SocketpairTokioFdSpin => (
                RawKind::Socketpair,
                Wait::TokioSpin(Registration::ReadInterest),
            ),
            other => (other, Wait::Block),
        }
    }

    /// The epoll floor of a blocking baseline (`raw-pipe` -> `raw-pipe-epoll`).
    pub(crate) fn epoll_floor(self) -> Option<RawKind> {
        RawKind::ALL
            .into_iter()
            .find(|k| k.wiring() == (self, Wait::Epoll))
    }

    /// The io_uring floor of a blocking baseline (`raw-pipe` -> `raw-pipe-uring`).
    pub(crate) fn uring_floor(self) -> Option<RawKind> {
        RawKind::ALL
            .into_iter()
            .find(|k| k.wiring() == (self, Wait::Uring))
    }

    /// The tokio floors of a blocking baseline (`raw-tcp` -> `raw-tcp-tokio`), in
    /// report order.
    pub(crate) fn tokio_floors(self) -> Vec<RawKind> {
        RawKind::ALL
            .into_iter()
            .filter(|k| matches!(k.wiring(), (wiring, Wait::Tokio(_)) if wiring == self))
            .collect()
    }

    /// Whether this baseline measures round trips only (the epoll, tokio and io_uring
    /// floors: they explain the latency targets; streaming is the blocking baseline's).
    pub(crate) fn round_trips_only(self) -> bool {
        matches!(
            self.wiring().1,
            Wait::Epoll | Wait::Tokio(_) | Wait::TokioSpin(_) | Wait::Uring
        )
    }

    /// The baseline named `name`.
    pub(crate) fn from_name(name: &str) -> Option<RawKind> {
        RawKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The floor a toolkit transport is compared with, and a note when the match is
    /// not exact.
    pub(crate) fn baseline_for(transport: &str) -> (RawKind, Option<&'static str>) {
        match transport {
            "uds" => (RawKind::Socketpair, None),
            "pipe" => (RawKind::Pipe, None),
            "fifo" => (RawKind::Fifo, None),
            "tcp" => (RawKind::Tcp, None),
            "stdio" => (RawKind::Stdio, None),
            "shm" => (RawKind::Shm, None),
            "node" => (
                RawKind::Socketpair,
                Some("Node's channel is a socketpair: compared with raw-socketpair"),
            ),
            "signal" => (
                RawKind::Socketpair,
                Some("no raw signal baseline: compared with raw-socketpair"),
            ),
            _ => (
                RawKind::Socketpair,
                Some("no matching raw baseline: compared with raw-socketpair"),
            ),
        }
    }

    fn framing(self) -> Framing {
        match self.wiring().0 {
            RawKind::Stdio => Framing::Line,
            _ => Framing::Length,
        }
    }
}

/// A raw child and the parent's end of its connection.
struct RawChild {
    child: Child,
    ends: Ends,
    /// The FIFO directory, removed on drop.
    _dir: Option<TempDir>,
}

/// One side's ends of a stream baseline's wiring, blocking, before they are framed
/// ([`Ends::into_conn`]) or handed to tokio ([`tokio_floor`]).
pub(crate) enum Ends {
    /// A socketpair end: reads and writes.
    Unix(UnixStream),
    /// A TCP connection (`TCP_NODELAY` already set).
    Tcp(TcpStream),
    /// A read end and a write end (pipes, FIFOs, stdin/stdout).
    Files {
        /// Where this side reads.
        read: File,
        /// Where this side writes.
        write: File,
    },
}

impl Ends {
    /// Frame the ends, waiting as `wait` says ([`Wait::Tokio`] is not a `Conn`: see
    /// [`tokio_floor`]).
    fn into_conn(self, wait: Wait, framing: Framing) -> Result<Conn> {
        match self {
            Ends::Unix(sock) => conn(sock.try_clone().context("dup")?, sock, wait, framing),
            Ends::Tcp(stream) => conn(stream.try_clone().context("dup")?, stream, wait, framing),
            Ends::Files { read, write } => conn(read, write, wait, framing),
        }
    }
}

/// Retry `attempt` until it yields, failing if the child exits or the time runs out.
fn wait_for<T>(
    child: &mut Child,
    what: &str,
    mut attempt: impl FnMut() -> io::Result<Option<T>>,
) -> Result<T> {
    let start = Instant::now();
    loop {
        if let Some(value) = attempt().with_context(|| what.to_string())? {
            return Ok(value);
        }
        if let Some(status) = child.try_wait().with_context(|| what.to_string())? {
            return Err(anyhow!(format!(
                "{what}: the child exited first ({status})"
            )));
        }
        if start.elapsed() > CONNECT_TIMEOUT {
            return Err(anyhow!(format!("{what}: timed out")));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

pub(crate) fn set_nonblocking(fd: impl AsFd) -> Result<()> {
    let flags = fcntl(fd.as_fd(), FcntlArg::F_GETFL).context("fcntl(F_GETFL)")?;
    let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
    fcntl(fd.as_fd(), FcntlArg::F_SETFL(flags)).context("fcntl(F_SETFL)")?;
    Ok(())
}

fn set_blocking(fd: impl AsFd) -> Result<()> {
    let flags = fcntl(fd.as_fd(), FcntlArg::F_GETFL).context("fcntl(F_GETFL)")?;
    let flags = OFlag::from_bits_truncate(flags) & !OFlag::O_NONBLOCK;
    fcntl(fd.as_fd(), FcntlArg::F_SETFL(flags)).context("fcntl(F_SETFL)")?;
    Ok(())
}

/// Frame `read` and `write`, waiting as `wait` says: blocking fds are used as they
/// are; for [`Wait::Spin`] and [`Wait::Epoll`] both are made non-blocking and wrapped;
/// for [`Wait::Uring`] both stay blocking and the read end is read through an io_uring.
pub(crate) fn conn<R, W>(read: R, write: W, wait: Wait, framing: Framing) -> Result<Conn>
where
    R: io::Read + AsFd + Send + 'static,
    W: io::Write + AsFd + Send + 'static,
{
    if matches!(wait, Wait::Spin | Wait::Epoll) {
        set_nonblocking(&read)?;
        set_nonblocking(&write)?;
    }
    Ok(match wait {
        Wait::Block => Conn::new(Box::new(read), Box::new(write), framing),
        Wait::Tokio(_) | Wait::TokioSpin(_) => {
            return Err(anyhow!(
                "a tokio floor has no blocking connection (see raw::tokio_floor)"
            ))
        }
        Wait::Spin => Conn::new(Box::new(Spin(read)), Box::new(Spin(write)), framing),
        Wait::Epoll => Conn::new(
            Box::new(EpollRead::new(read).context("registering the read end with epoll")?),
            Box::new(PollWrite(write)),
            framing,
        ),
        // No context on the io_uring errors: the cell's error is shown without its
        // causes, and these already say what failed and why.
        Wait::Uring if uring::send_through_ring() => {
            let (read, write) = UringRead::with_writer(read, write)?;
            Conn::buffered(Box::new(read), Box::new(write), framing)
        }
        Wait::Uring => Conn::buffered(Box::new(UringRead::new(read)?), Box::new(write), framing),
    })
}

/// Start a raw child of `kind` doing `job`, and connect to it: the wiring of its
/// blocking baseline (the ends still blocking; [`Ends::into_conn`] makes them wait as
/// [`RawKind::wiring`] says).
fn spawn(kind: RawKind, job: &Job, pin: Option<usize>) -> Result<RawChild> {
    let mut cmd = child_command(Role::Raw(kind), job, pin, Flavor::CurrentThread)?;
    let wiring = kind.wiring().0;
    let start = |cmd: &mut Command| cmd.spawn().context("starting the raw child");
    match wiring {
        RawKind::Socketpair => {
            let (ours, theirs) = UnixStream::pair().context("socketpair")?;
            let theirs = OwnedFd::from(theirs);
            ipc::spawn::inherit_fds(&mut cmd, &[(&theirs, CHILD_IN_FD)]);
            let child = start(&mut cmd)?;
            drop(theirs);
            Ok(RawChild {
                child,
                ends: Ends::Unix(ours),
                _dir: None,
            })
        }
        RawKind::Pipe => {
            let (down_r, down_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).context("pipe2")?;
            let (up_r, up_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).context("pipe2")?;
            ipc::spawn::inherit_fds(&mut cmd, &[(&down_r, CHILD_IN_FD), (&up_w, CHILD_OUT_FD)]);
            let child = start(&mut cmd)?;
            drop((down_r, up_w));
            Ok(RawChild {
                child,
                ends: Ends::Files {
                    read: File::from(up_r),
                    write: File::from(down_w),
                },
                _dir: None,
            })
        }
        RawKind::Fifo => {
            let dir = tempfile::Builder::new()
                .prefix("ipc-bench-fifo-")
                .tempdir()
                .context("creating a private directory for the FIFO pair")?;
            for name in [FIFO_DOWN, FIFO_UP] {
                let path = dir.path().join(name);
                nix::unistd::mkfifo(&path, Mode::S_IRUSR | Mode::S_IWUSR)
                    .context(format!("mkfifo {}", path.display()))?;
            }
            // Open our read end first (non-blocking, so it does not wait): the child's
            // blocking open of its write end then succeeds at once.
            let up = OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(dir.path().join(FIFO_UP))
                .context("opening the up FIFO")?;
            cmd.env(FIFO_DIR_ENV, dir.path());
            let mut child = start(&mut cmd)?;
            // The child opens `up` for writing, then `down` for reading; once our
            // non-blocking open of `down` for writing succeeds, both are connected.
            let down_path = dir.path().join(FIFO_DOWN);
            let down = wait_for(
                &mut child,
                "opening the down FIFO",
                || match open_fifo_writer(&down_path) {
                    Ok(f) => Ok(Some(f)),
                    Err(e) if e.raw_os_error() == Some(libc::ENXIO) => Ok(None),
                    Err(e) => Err(e),
                },
            )?;
            set_blocking(&up)?;
            set_blocking(&down)?;
            Ok(RawChild {
                child,
                ends: Ends::Files {
                    read: up,
                    write: down,
                },
                _dir: Some(dir),
            })
        }
        RawKind::Tcp => {
            let listener = TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0")?;
            let port = listener.local_addr().context("local_addr")?.port();
            listener.set_nonblocking(true).context("set_nonblocking")?;
            cmd.env(TCP_PORT_ENV, port.to_string());
            let mut child = start(&mut cmd)?;
            let stream = wait_for(&mut child, "accepting the raw tcp child", || match listener
                .accept()
            {
                Ok((s, _)) => Ok(Some(s)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
                Err(e) => Err(e),
            })?;
            stream.set_nonblocking(false).context("set_nonblocking")?;
            stream.set_nodelay(true).context("TCP_NODELAY")?;
            Ok(RawChild {
                child,
                ends: Ends::Tcp(stream),
                _dir: None,
            })
        }
        RawKind::Stdio => {
            cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
            let mut child = start(&mut cmd)?;
            let stdin = child.stdin.take().context("the child has no stdin pipe")?;
            let stdout = child
                .stdout
                .take()
                .context("the child has no stdout pipe")?;
            Ok(RawChild {
                child,
                ends: Ends::Files {
                    read: File::from(OwnedFd::from(stdout)),
                    write: File::from(OwnedFd::from(stdin)),
                },
                _dir: None,
            })
        }
        _ => Err(anyhow!("{} has no byte stream (see raw::shm)", kind.name())),
    }
}

fn open_fifo_writer(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
}

/// Measure one cell of a raw baseline.
pub(crate) fn run_cell(kind: RawKind, cell: &Cell, placement: Placement) -> Result<Measurement> {
    let _guard = placement.pin_parent()?;
    if kind == RawKind::Shm {
        return shm::run_cell(cell, placement.child);
    }
    let job = crate::roles::job_for(cell);
    let RawChild {
        mut child,
        ends,
        _dir,
    } = spawn(kind, &job, placement.child)?;
    let (_, wait) = kind.wiring();
    let measured = match wait {
        Wait::Tokio(registration) => tokio_floor::round_trips(ends, registration, false, cell),
        Wait::TokioSpin(registration) => tokio_floor::round_trips(ends, registration, true, cell),
        _ => ends
            .into_conn(wait, kind.framing())
            .and_then(|conn| measure(conn, cell)),
    };
    // On an error the ends are closed by now: the child sees the end of its stream.
    let measured = measured?;
    let status = child.wait().context("waiting for the raw child")?;
    if !status.success() {
        return Err(anyhow!(format!("the raw child failed: {status}")));
    }
    Ok(measured)
}

/// Measure `cell` over a framed connection to an echoing (or sinking) raw child; the
/// connection is closed on return, which ends the child.
fn measure(mut conn: Conn, cell: &Cell) -> Result<Measurement> {
    let msg = payload(cell.size);
    let mut buf = Vec::with_capacity(cell.size);
    let measured = match cell.workload {
        Workload::RoundTrip { .. } => {
            let mut h = stats::histogram()?;
            for i in 0..cell.warmup + cell.count {
                let start = Instant::now();
                conn.send(&msg).context("sending")?;
                let got = conn.recv(&mut buf).context("receiving")?;
                let took = start.elapsed();
                if !got || buf.len() != msg.len() {
                    return Err(anyhow!("the raw child answered with other bytes"));
                }
                if i >= cell.warmup {
                    stats::record(&mut h, took)?;
                }
            }
            Measurement::Latency(h)
        }
        Workload::Stream | Workload::StreamBatched => {
            let batched = cell.workload == Workload::StreamBatched;
            let mut phase = |n: u64| -> Result<()> {
                for _ in 0..n {
                    if batched {
                        conn.feed(&msg).context("sending")?;
                    } else {
                        conn.send(&msg).context("sending")?;
                    }
                }
                conn.flush().context("sending")?;
                match conn.recv(&mut buf).context("waiting for the ack")? {
                    true => Ok(()),
                    false => Err(anyhow!("the raw child closed before its ack")),
                }
            };
            let phases = cell.stream_phases();
            phase(phases[0])?;
            let mut batches = Vec::new();
            for &n in &phases[1..] {
                let start = Instant::now();
                phase(n)?;
                batches.push(start.elapsed());
            }
            Measurement::Throughput {
                batch: phases[1],
                size: cell.size,
                batches,
            }
        }
    };
    Ok(measured)
}
