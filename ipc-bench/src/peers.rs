//! Peer crates a user might pick instead of this toolkit, measured in the same run:
//!
//! | runner | what |
//! |---|---|
//! | `interprocess` | `interprocess` local socket (a Unix socket here), blocking, `u32` BE length framing through the raw baselines' `Conn` |
//! | `interprocess-tokio` | `interprocess`'s tokio local socket with tokio-util's `LengthDelimitedCodec` (`Framed`, `send` + `next`), tokio `current_thread` in both processes |
//! | `ipc-channel` | servo's `ipc-channel`: an `IpcBytesSender`/`IpcBytesReceiver` pair each way, set up through an `IpcOneShotServer` |
//!
//! Each is compared with `raw-socketpair`. The child is this binary re-executed with
//! [`ROLE_ENV`](crate::roles::ROLE_ENV) naming the peer and [`PEER_NAME_ENV`] telling it
//! where to connect.

use std::io;
use std::process::Child;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use interprocess::local_socket::traits::tokio::{Listener as _, Stream as _};
use interprocess::local_socket::{prelude::*, GenericFilePath, ListenerNonblockingMode};
use interprocess::local_socket::{ListenerOptions, Stream as LocalStream};
use ipc_channel::ipc::{self as servo, IpcBytesReceiver, IpcBytesSender, IpcError};
use ipc_channel::ipc::{IpcOneShotServer, IpcSender};
use tokio::runtime::Runtime;
use tokio_util::codec::{Framed, LengthDelimitedCodec};

use crate::cli::Flavor;
use crate::pin::Placement;
use crate::raw::wire::{Conn, Framing};
use crate::roles::{child_command, job_for, Job, Role};
use crate::stats::{self, Measurement};
use crate::workload::{payload, Cell, Workload, ACK};

/// Where the child connects: a socket path (`interprocess`) or a one-shot server's
/// name (`ipc-channel`).
const PEER_NAME_ENV: &str = "IPC_BENCH_PEER_NAME";
/// How long the parent waits for a peer child to connect.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// One peer crate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Peer {
    /// `interprocess` local socket, blocking.
    Interprocess,
    /// `interprocess` local socket on tokio, `LengthDelimitedCodec`.
    InterprocessTokio,
    /// servo's `ipc-channel`.
    IpcChannel,
}

impl Peer {
    /// Every peer, in report order.
    pub(crate) const ALL: [Peer; 3] = [
        Peer::Interprocess,
        Peer::InterprocessTokio,
        Peer::IpcChannel,
    ];

    /// The runner name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Peer::Interprocess => "interprocess",
            Peer::InterprocessTokio => "interprocess-tokio",
            Peer::IpcChannel => "ipc-channel",
        }
    }

    /// The peer named `name`.
    pub(crate) fn from_name(name: &str) -> Option<Peer> {
        Peer::ALL.into_iter().find(|p| p.name() == name)
    }
}

/// A blocking, framed, bidirectional link to the other process.
trait Link {
    fn send(&mut self, msg: &[u8]) -> io::Result<()>;
    /// `Ok(false)` at the end of the stream.
    fn recv(&mut self, buf: &mut Vec<u8>) -> io::Result<bool>;
}

impl Link for Conn {
    fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        Conn::send(self, msg)
    }
    fn recv(&mut self, buf: &mut Vec<u8>) -> io::Result<bool> {
        Conn::recv(self, buf)
    }
}

/// `ipc-channel`'s two byte channels.
struct Servo {
    tx: IpcBytesSender,
    rx: IpcBytesReceiver,
}

impl Link for Servo {
    fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        self.tx.send(msg)
    }
    fn recv(&mut self, buf: &mut Vec<u8>) -> io::Result<bool> {
        match self.rx.recv() {
            Ok(msg) => {
                *buf = msg;
                Ok(true)
            }
            Err(IpcError::Disconnected) => Ok(false),
            Err(e) => Err(io::Error::other(format!("ipc-channel: {e:?}"))),
        }
    }
}

/// Measure one cell of `peer`.
pub(crate) fn run_cell(
    peer: Peer,
    cell: &Cell,
    placement: Placement,
    runtime: &Runtime,
) -> Result<Measurement> {
    let _guard = placement.pin_parent()?;
    let mut cmd = child_command(
        Role::Peer(peer),
        &job_for(cell),
        placement.child,
        Flavor::CurrentThread,
    )?;
    match peer {
        Peer::Interprocess | Peer::InterprocessTokio => {
            let dir = tempfile::Builder::new()
                .prefix("ipc-bench-peer-")
                .tempdir()
                .context("creating a private directory for the socket")?;
            let path = dir.path().join("sock");
            let name = path
                .clone()
                .to_fs_name::<GenericFilePath>()
                .context("naming the socket")?;
            cmd.env(PEER_NAME_ENV, &path);
            if peer == Peer::InterprocessTokio {
                return runtime.block_on(async {
                    let listener = ListenerOptions::new()
                        .name(name)
                        .create_tokio()
                        .context("listening")?;
                    let mut child = cmd.spawn().context("starting the peer child")?;
                    let stream = tokio::time::timeout(CONNECT_TIMEOUT, listener.accept())
                        .await
                        .map_err(|_| anyhow!("the interprocess child did not connect"))?
                        .context("accepting")?;
                    let framed = Framed::new(stream, LengthDelimitedCodec::new());
                    let measured = measure_tokio(framed, cell).await?;
                    finish(&mut child)?;
                    Ok(measured)
                });
            }
            let listener = ListenerOptions::new()
                .name(name)
                .nonblocking(ListenerNonblockingMode::Accept)
                .create_sync()
                .context("listening")?;
            let mut child = cmd.spawn().context("starting the peer child")?;
            let stream = wait_for(
                &mut child,
                "accepting the interprocess child",
                || match listener.accept() {
                    Ok(s) => Ok(Some(s)),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
                    Err(e) => Err(e),
                },
            )?;
            let mut conn = shared_conn(stream);
            let measured = measure_blocking(&mut conn, cell)?;
            drop(conn);
            finish(&mut child)?;
            Ok(measured)
        }
        Peer::IpcChannel => {
            let (server, name) = IpcOneShotServer::<(IpcBytesSender, IpcBytesReceiver)>::new()
                .context("ipc-channel server")?;
            cmd.env(PEER_NAME_ENV, name);
            let mut child = cmd.spawn().context("starting the peer child")?;
            // `accept` blocks with no timeout: run it aside, so a child that fails to
            // connect is an error, not a hang.
            let (done, accepted) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let _ = done.send(
                    server
                        .accept()
                        .map(|(_, pair)| pair)
                        .map_err(|e| e.to_string()),
                );
            });
            let (tx, rx) = loop {
                match accepted.recv_timeout(Duration::from_millis(10)) {
                    Ok(pair) => break pair.map_err(|e| anyhow!("ipc-channel accept: {e}"))?,
                    Err(_) => {
                        if let Some(status) = child.try_wait()? {
                            return Err(anyhow!("the ipc-channel child exited first ({status})"));
                        }
                    }
                }
            };
            let mut link = Servo { tx, rx };
            let measured = measure_blocking(&mut link, cell)?;
            drop(link);
            finish(&mut child)?;
            Ok(measured)
        }
    }
}

/// Serve `job` as the child of `peer`.
pub(crate) fn serve_child(peer: Peer, job: &Job) -> Result<()> {
    let name = std::env::var(PEER_NAME_ENV).context(format!("{PEER_NAME_ENV} is not set"))?;
    match peer {
        Peer::Interprocess => {
            let name = name
                .to_fs_name::<GenericFilePath>()
                .context("naming the socket")?;
            let stream = LocalStream::connect(name).context("connecting")?;
            serve_blocking(&mut shared_conn(stream), job)
        }
        Peer::InterprocessTokio => {
            let runtime = Flavor::CurrentThread
                .build()
                .context("building the tokio runtime")?;
            runtime.block_on(async {
                let name = name
                    .to_fs_name::<GenericFilePath>()
                    .context("naming the socket")?;
                let stream = interprocess::local_socket::tokio::Stream::connect(name)
                    .await
                    .context("connecting")?;
                serve_tokio(Framed::new(stream, LengthDelimitedCodec::new()), job).await
            })
        }
        Peer::IpcChannel => {
            let boot = IpcSender::<(IpcBytesSender, IpcBytesReceiver)>::connect(name)
                .context("connecting to the ipc-channel server")?;
            let (down_tx, down_rx) = servo::bytes_channel().context("bytes_channel")?;
            let (up_tx, up_rx) = servo::bytes_channel().context("bytes_channel")?;
            boot.send((down_tx, up_rx))
                .map_err(|e| anyhow!("sending the channels: {e}"))?;
            serve_blocking(
                &mut Servo {
                    tx: up_tx,
                    rx: down_rx,
                },
                job,
            )
        }
    }
}

/// One local socket read and written through `&Stream` (what `interprocess` suggests
/// instead of splitting): closed when both ends of the `Conn` are dropped.
struct Shared(Arc<LocalStream>);

impl io::Read for Shared {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self.0).read(buf)
    }
}

impl io::Write for Shared {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self.0).write(buf)
    }
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        (&*self.0).write_vectored(bufs)
    }
    fn flush(&mut self) -> io::Result<()> {
        (&*self.0).flush()
    }
}

fn shared_conn(stream: LocalStream) -> Conn {
    let stream = Arc::new(stream);
    Conn::new(
        Box::new(Shared(stream.clone())),
        Box::new(Shared(stream)),
        Framing::Length,
    )
}

fn finish(child: &mut Child) -> Result<()> {
    let status = child.wait().context("waiting for the peer child")?;
    if !status.success() {
        return Err(anyhow!(format!("the peer child failed: {status}")));
    }
    Ok(())
}

fn wait_for<T>(
    child: &mut Child,
    what: &str,
    mut attempt: impl FnMut() -> io::Result<Option<T>>,
) -> Result<T> {
    let start = Instant::now();
    loop {
        if let Some(value) = attempt().context(what.to_string())? {
            return Ok(value);
        }
        if let Some(status) = child.try_wait().context(what.to_string())? {
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

fn measure_blocking(link: &mut dyn Link, cell: &Cell) -> Result<Measurement> {
    let msg = payload(cell.size);
    let mut buf = Vec::with_capacity(cell.size);
    Ok(match cell.workload {
        Workload::RoundTrip { .. } => {
            let mut h = stats::histogram()?;
            for i in 0..cell.warmup + cell.count {
                let start = Instant::now();
                link.send(&msg).context("sending")?;
                let got = link.recv(&mut buf).context("receiving")?;
                let took = start.elapsed();
                if !got || buf.len() != msg.len() {
                    return Err(anyhow!("the peer child answered with other bytes"));
                }
                if i >= cell.warmup {
                    stats::record(&mut h, took)?;
                }
            }
            Measurement::Latency(h)
        }
        Workload::Stream | Workload::StreamBatched => {
            let mut phase = |n: u64| -> Result<()> {
                for _ in 0..n {
                    link.send(&msg).context("sending")?;
                }
                match link.recv(&mut buf).context("waiting for the ack")? {
                    true => Ok(()),
                    false => Err(anyhow!("the peer child closed before its ack")),
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
    })
}

fn serve_blocking(link: &mut dyn Link, job: &Job) -> Result<()> {
    let mut buf = Vec::new();
    match job {
        Job::Echo => {
            while link.recv(&mut buf).context("receiving")? {
                link.send(&buf).context("echoing")?;
            }
        }
        Job::Sink(phases) | Job::SinkMany(phases) => {
            for &n in phases {
                for _ in 0..n {
                    if !link.recv(&mut buf).context("receiving")? {
                        return Err(anyhow!("the parent closed inside a phase"));
                    }
                }
                link.send(ACK).context("acknowledging")?;
            }
            while link.recv(&mut buf).context("waiting for close")? {}
        }
    }
    Ok(())
}

type Tokio = Framed<interprocess::local_socket::tokio::Stream, LengthDelimitedCodec>;

async fn measure_tokio(mut framed: Tokio, cell: &Cell) -> Result<Measurement> {
    let msg = Bytes::from(payload(cell.size));
    let measured = match cell.workload {
        Workload::RoundTrip { .. } => {
            let mut h = stats::histogram()?;
            for i in 0..cell.warmup + cell.count {
                let start = Instant::now();
                framed.send(msg.clone()).await.context("sending")?;
                let got = framed.next().await.context("the child closed early")??;
                let took = start.elapsed();
                if got.len() != msg.len() {
                    return Err(anyhow!("the peer child answered with other bytes"));
                }
                if i >= cell.warmup {
                    stats::record(&mut h, took)?;
                }
            }
            Measurement::Latency(h)
        }
        Workload::Stream | Workload::StreamBatched => {
            let phases = cell.stream_phases();
            let mut batches = Vec::new();
            for (i, &n) in phases.iter().enumerate() {
                let start = Instant::now();
                for _ in 0..n {
                    framed.send(msg.clone()).await.context("sending")?;
                }
                framed
                    .next()
                    .await
                    .context("the child closed before its ack")??;
                if i > 0 {
                    batches.push(start.elapsed());
                }
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

async fn serve_tokio(mut framed: Tokio, job: &Job) -> Result<()> {
    match job {
        Job::Echo => {
            while let Some(msg) = framed.next().await {
                framed.send(msg?.freeze()).await.context("echoing")?;
            }
        }
        Job::Sink(phases) | Job::SinkMany(phases) => {
            for &n in phases {
                for _ in 0..n {
                    framed
                        .next()
                        .await
                        .context("the parent closed inside a phase")??;
                }
                framed
                    .send(Bytes::from_static(ACK))
                    .await
                    .context("acknowledging")?;
            }
            while framed.next().await.transpose()?.is_some() {}
        }
    }
    Ok(())
}
