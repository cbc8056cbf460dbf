//! The signal data channel between real processes: this binary re-executes itself as
//! the child, playing a [`Role`].
//!
//! A plain `fn main()` (harness = false): the transport signals are blocked before any
//! thread exists. The checks that need the process to themselves run first, one at a
//! time; the rest run at once in parallel threads, each on its own current-thread
//! runtime with its own children, so one process holds many channels on many runtimes.
//!
//! `cargo test -p ipc-signal --test channel [-- NAME_FILTER...]`

use std::future::Future;
use std::io;
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ipc_core::prelude::*;
use ipc_core::testkit;
use ipc_core::ConnectError;
use ipc_core::ListenError;
use ipc_core::Options;
use ipc_core::{Endpoint, Error, RecvError, Result, SendError, Transport};
use ipc_signal::{SignalChannel, SignalChannelExt, SignalTransport};

/// Messages each way for the `bulk` child, when not [`BULK`].
const COUNT: &str = "IPC_SIGNAL_TEST_COUNT";
/// Messages each way in the bulk check.
const BULK: u64 = 10_000;
/// Frame sizes sent in order by `sizes_in_order`.
const SIZES: [usize; 7] = [0, 1, 7, 8, 9, 4096, 65536];
/// What the `oversize` child sends first.
const OVERSIZE: usize = 4096;
/// Longest a check may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(60);

fn fail(msg: impl Into<String>) -> Error {
    Error::Io(io::Error::other(msg.into()))
}

macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(fail(format!($($msg)+)));
        }
    };
}

/// Message `seq` of `size` bytes: a fill that depends on both.
fn payload(seq: u64, size: usize) -> Bytes {
    (0..size)
        .map(|i| (seq as usize).wrapping_mul(131).wrapping_add(i * 7) as u8)
        .collect::<Vec<u8>>()
        .into()
}

/// Bulk message `seq`: its number, then 0..60 more bytes.
fn bulk_payload(seq: u64) -> Bytes {
    let mut v = (seq as u32).to_be_bytes().to_vec();
    v.extend_from_slice(&payload(seq, (seq % 61) as usize));
    v.into()
}

fn child_command(role: Role) -> Result<Command> {
    Ok(testkit::child_command(role))
}

async fn spawn(role: Role, config: &Options) -> Result<(ipc_core::Child, SignalChannel)> {
    ipc_signal::spawn(child_command(role)?, config)
        .await
        .map_err(ipc_core::Error::from)
}

async fn expect(ch: &mut SignalChannel, expected: &[u8]) -> Result<()> {
    match ch.recv().await? {
        Some(frame) if frame[..] == *expected => Ok(()),
        Some(frame) => Err(fail(format!(
            "expected {} bytes {:?}.., got {} bytes {:?}..",
            expected.len(),
            &expected[..expected.len().min(12)],
            frame.len(),
            &frame[..frame.len().min(12)]
        ))),
        None => Err(fail("the child closed instead of answering")),
    }
}

/// Close, expect the child's close and a successful exit.
async fn finish(mut child: ipc_core::Child, mut ch: SignalChannel) -> Result<()> {
    ch.close().await?;
    ensure!(ch.recv().await?.is_none(), "expected the child's close");
    let status = child.wait().await?;
    ensure!(status.success(), "child exited with {status}");
    Ok(())
}

// ---------------------------------------------------------------- child roles

ipc_core::child_roles! {
    /// What a re-executed child does.
    enum Role {
        /// Not a channel: one data signal to the parent, from a pid it has no channel to.
        Stray,
        /// Connect with a 1 MiB limit, send a frame over the parent's, then `after`.
        Oversize,
        /// Echo every frame (a rejected one as `"error: ..."`).
        Echo,
        /// `IPC_SIGNAL_TEST_COUNT` messages each way at once.
        Bulk,
        /// Send `hello`, close, read to the end.
        HelloClose,
        /// Send `ready`, read to the end.
        Hang,
        /// Send `bye`, drop the channel without closing it.
        DropWithoutClose,
        /// Never read.
        Sink,
        /// Send `bye`, close, exit.
        CloseExit,
        /// Drop the sending half in the middle of a 64 KiB frame.
        DropTxMidFrame,
        /// Close (goodbye), read one more frame, drop the channel (GONE), say
        /// `dropped` on stdout, and live on until stdin ends.
        CloseThenDrop,
    }
}

fn child_main(role: Role) -> i32 {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("child {role:?}: no runtime: {e}");
            return 70;
        }
    };
    match runtime.block_on(run_child(role)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("child {role:?} failed: {e}");
            1
        }
    }
}

async fn run_child(role: Role) -> Result<()> {
    if role == Role::Stray {
        // Not a channel: one data signal to the parent, from a pid it has no channel to.
        let value = libc::sigval {
            sival_ptr: 42usize as *mut libc::c_void,
        };
        // SAFETY: plain values.
        let rc = unsafe { libc::sigqueue(libc::getppid(), ipc_signal::DATA_SIGNAL, value) };
        ensure!(rc == 0, "sigqueue: {}", io::Error::last_os_error());
        return Ok(());
    }
    let mut ch = if role == Role::Oversize {
        let Endpoint::Signal { pid } = ipc_core::env::endpoint_from_env()? else {
            return Err(fail("not a signal endpoint"));
        };
        ipc_signal::connect(pid, &ipc_core::Options::default().max_frame(1 << 20)).await?
    } else {
        ipc_signal::connect_from_env(&ipc_core::Options::from_env()).await?
    };
    match role {
        Role::Echo => loop {
            match ch.recv().await {
                Ok(Some(frame)) => ch.send(frame).await?,
                Ok(None) => return Ok(ch.close().await?),
                Err(e @ RecvError::Rejected(_)) => {
                    ch.send(Bytes::from(format!("error: {e}"))).await?
                }
                Err(e) => return Err(e.into()),
            }
        },
        Role::Bulk => {
            let count = std::env::var(COUNT)
                .ok()
                .and_then(|c| c.parse().ok())
                .unwrap_or(BULK);
            let (mut tx, mut rx) = ch.into_split();
            let sender = tokio::spawn(async move {
                for seq in 0..count {
                    tx.send(bulk_payload(seq)).await?;
                }
                tx.close().await
            });
            for seq in 0..count {
                let frame = rx
                    .recv()
                    .await?
                    .ok_or_else(|| fail("parent closed early"))?;
                ensure!(frame == bulk_payload(seq), "child: message {seq} is wrong");
            }
            ensure!(
                rx.recv().await?.is_none(),
                "child: more than {count} messages"
            );
            Ok(sender.await.map_err(|e| fail(e.to_string()))??)
        }
        Role::HelloClose => {
            ch.send(Bytes::from_static(b"hello")).await?;
            ch.close().await?;
            while ch.recv().await?.is_some() {}
            Ok(())
        }
        Role::Hang => {
            ch.send(Bytes::from_static(b"ready")).await?;
            while ch.recv().await?.is_some() {}
            Ok(())
        }
        Role::Oversize => {
            ch.send(Bytes::from(vec![0xAB; OVERSIZE])).await?;
            ch.send(Bytes::from_static(b"after")).await?;
            ch.close().await?;
            while ch.recv().await?.is_some() {}
            Ok(())
        }
        Role::DropWithoutClose => {
            ch.send(Bytes::from_static(b"bye")).await?;
            drop(ch);
            Ok(())
        }
        Role::Sink => {
            // Never reads: the parent's sends fill the window and wait.
            std::future::pending::<()>().await;
            Ok(())
        }
        Role::CloseExit => {
            ch.send(Bytes::from_static(b"bye")).await?;
            Ok(ch.close().await?)
        }
        Role::DropTxMidFrame => {
            let (mut tx, mut rx) = ch.into_split();
            // The parent's frame arrives after its hello: its window is known here.
            ensure!(rx.recv().await?.is_some(), "child: no go frame");
            {
                // The parent reads nothing yet, so one poll queues a window's worth
                // of this frame and then waits for acknowledgements.
                let mut send = std::pin::pin!(tx.send(payload(7, 64 * 1024)));
                let first =
                    std::future::poll_fn(|cx| std::task::Poll::Ready(send.as_mut().poll(cx))).await;
                ensure!(first.is_pending(), "child: the big frame went out at once");
            }
            drop(tx); // half a frame sent, receive half still held
            println!("dropped");
            use std::io::Write;
            std::io::stdout().flush()?;
            while rx.recv().await?.is_some() {}
            Ok(())
        }
        Role::CloseThenDrop => {
            ch.close().await?;
            let frame = ch.recv().await?;
            ensure!(
                frame.as_deref() == Some(&b"still reading"[..]),
                "child: got {frame:?}"
            );
            drop(ch);
            println!("dropped");
            use std::io::{Read, Write};
            std::io::stdout().flush()?;
            std::io::stdin().read_to_end(&mut Vec::new())?;
            Ok(())
        }
        Role::Stray => unreachable!("handled above"),
    }
}

// ---------------------------------------------------------------- checks

/// Run `check` on a fresh current-thread runtime, bounded by [`CHECK_TIMEOUT`].
fn on_runtime<F: Future<Output = Result<()>>>(check: F) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        tokio::time::timeout(CHECK_TIMEOUT, check)
            .await
            .map_err(|_| fail("the check hung"))?
    })
}

fn unblock_this_thread() -> Result<()> {
    // SAFETY: sigset_t is plain data; sigemptyset/sigaddset initialise it.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, ipc_signal::DATA_SIGNAL);
        libc::sigaddset(&mut set, ipc_signal::CONTROL_SIGNAL);
        set
    };
    // SAFETY: a valid set; no old set wanted.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut()) };
    ensure!(
        rc == 0,
        "pthread_sigmask: {}",
        io::Error::from_raw_os_error(rc)
    );
    Ok(())
}

fn expect_not_blocked<T>(what: &str, result: Result<T>, mention: &str) -> Result<()> {
    match result {
        Err(Error::Unsupported { what: why, .. })
            if why.contains("not blocked") && why.contains(mention) =>
        {
            Ok(())
        }
        Err(e) => Err(fail(format!("{what}: wrong error: {e}"))),
        Ok(_) => Err(fail(format!(
            "{what}: succeeded with the signals unblocked"
        ))),
    }
}

/// A thread without the mask may not open channels (sequential: while it runs, a signal
/// to this process could land on it).
fn unblocked_thread_is_refused() -> Result<()> {
    let worker = std::thread::Builder::new()
        .name("unblocked".into())
        .spawn(|| {
            unblock_this_thread()?;
            on_runtime(async {
                expect_not_blocked(
                    "connect",
                    ipc_signal::connect(1, &Default::default())
                        .await
                        .map_err(ipc_core::Error::from),
                    "calling thread",
                )?;
                expect_not_blocked(
                    "spawn",
                    spawn(Role::Echo, &Default::default()).await,
                    "calling thread",
                )?;
                expect_not_blocked(
                    "SignalTransport::connect",
                    SignalTransport
                        .connect(&Endpoint::Signal { pid: 1 }, &Default::default())
                        .await
                        .map_err(ipc_core::Error::from),
                    "calling thread",
                )
            })
        })?;
    worker.join().map_err(|_| fail("worker panicked"))?
}

/// Another thread without the mask makes connect refuse too, naming it; so does a late
/// `block_transport_signals`.
fn unblocked_other_thread_is_refused() -> Result<()> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<()>>();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let helper = std::thread::Builder::new()
        .name("careless-helper".into())
        .spawn(move || {
            let _ = ready_tx.send(unblock_this_thread());
            let _ = release_rx.recv();
        })?;
    let result = ready_rx
        .recv()
        .map_err(|_| fail("helper died"))
        .and_then(|r| r)
        .and_then(|()| {
            on_runtime(async {
                expect_not_blocked(
                    "connect",
                    ipc_signal::connect(1, &Default::default())
                        .await
                        .map_err(ipc_core::Error::from),
                    "careless-helper",
                )
            })
        })
        .and_then(|()| match ipc_signal::block_transport_signals() {
            Err(e) if e.to_string().contains("careless-helper") => Ok(()),
            other => Err(fail(format!("late block_transport_signals: {other:?}"))),
        });
    let _ = release_tx.send(());
    helper.join().map_err(|_| fail("helper panicked"))?;
    result
}

/// 100 round trips, and what `info()` says.
async fn ping_pong() -> Result<()> {
    let config = Options::default().max_frame(4096);
    let (child, mut ch) = spawn(Role::Echo, &config).await?;
    let info = ch.info();
    ensure!(info.transport == "signal", "transport {:?}", info.transport);
    ensure!(
        info.peer_pid == Some(child.pid()),
        "peer_pid {:?}",
        info.peer_pid
    );
    ensure!(info.max_frame == 4096, "max_frame {}", info.max_frame);
    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() };
    ensure!(info.peer_uid == Some(uid), "peer_uid {:?}", info.peer_uid);
    for i in 0..100 {
        let msg = format!("ping {i}");
        ch.send(Bytes::from(msg.clone())).await?;
        expect(&mut ch, msg.as_bytes()).await?;
    }
    finish(child, ch).await
}

/// Frames of 0, 1, 7, 8, 9, 4096 and 65536 bytes arrive whole and in order.
async fn sizes_in_order() -> Result<()> {
    let (mut child, ch) = spawn(Role::Echo, &Default::default()).await?;
    let (mut tx, mut rx) = ch.into_split();
    let sender = tokio::spawn(async move {
        for (seq, size) in SIZES.iter().enumerate() {
            tx.send(payload(seq as u64, *size)).await?;
        }
        tx.close().await
    });
    for (seq, size) in SIZES.iter().enumerate() {
        let frame = rx.recv().await?.ok_or_else(|| fail("closed early"))?;
        ensure!(
            frame == payload(seq as u64, *size),
            "frame {seq}: expected {size} bytes, got {} (wrong or out of order)",
            frame.len()
        );
    }
    ensure!(rx.recv().await?.is_none(), "expected the child's close");
    sender.await.map_err(|e| fail(e.to_string()))??;
    ensure!(child.wait().await?.success(), "child failed");
    Ok(())
}

/// `count` bulk messages each way at the same time with a `bulk` child, all in order.
async fn bulk_both_ways(mut child: ipc_core::Child, ch: SignalChannel, count: u64) -> Result<()> {
    let (mut tx, mut rx) = ch.into_split();
    let sender = tokio::spawn(async move {
        for seq in 0..count {
            tx.send(bulk_payload(seq)).await?;
        }
        tx.close().await
    });
    for seq in 0..count {
        let frame = rx
            .recv()
            .await?
            .ok_or_else(|| fail(format!("child closed after {seq}")))?;
        ensure!(frame == bulk_payload(seq), "message {seq} is wrong");
    }
    ensure!(rx.recv().await?.is_none(), "child sent more than {count}");
    sender.await.map_err(|e| fail(e.to_string()))??;
    let status = child.wait().await?;
    ensure!(status.success(), "the child saw a wrong message: {status}");
    Ok(())
}

/// 10 000 small messages each way at the same time, all in order.
async fn ten_thousand_both_ways() -> Result<()> {
    let (child, ch) = spawn(Role::Bulk, &Default::default()).await?;
    bulk_both_ways(child, ch, BULK).await
}

/// A child whose `RLIMIT_SIGPENDING` is tiny: its window is 1 signal, and our
/// `sigqueue` to it fails with `EAGAIN` whenever this user has more than 40 signals
/// queued anywhere. Both are waited out; nothing fails or is lost.
async fn tiny_sigpending_limit() -> Result<()> {
    use std::os::unix::process::CommandExt;
    let mut cmd = child_command(Role::Bulk)?;
    cmd.env(COUNT, "1000");
    // SAFETY: setrlimit is a plain system call, safe between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 40,
                rlim_max: 40,
            };
            if libc::setrlimit(libc::RLIMIT_SIGPENDING, &limit) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let (child, ch) = ipc_signal::spawn(cmd, &Default::default()).await?;
    bulk_both_ways(child, ch, 1000).await
}

/// Sending over the limit fails and sends nothing; the channel lives on both ways.
async fn oversize_send_refused() -> Result<()> {
    let config = Options::default().max_frame(1024);
    let (child, mut ch) = spawn(Role::Echo, &config).await?;
    match ch.send(payload(1, 1025)).await {
        Err(SendError::Rejected(Error::FrameTooLarge {
            len: 1025,
            max: 1024,
        })) => {}
        other => return Err(fail(format!("expected FrameTooLarge, got {other:?}"))),
    }
    ch.send(Bytes::from_static(b"still here")).await?;
    expect(&mut ch, b"still here").await?;
    let exact = payload(2, 1024);
    ch.send(exact.clone()).await?;
    expect(&mut ch, &exact).await?;
    finish(child, ch).await
}

/// A frame over our limit is rejected (its chunks skipped), the next one delivered.
async fn oversize_recv_rejected() -> Result<()> {
    let config = Options::default().max_frame(100);
    let (child, mut ch) = spawn(Role::Oversize, &config).await?;
    match ch.recv().await {
        Err(RecvError::Rejected(Error::FrameTooLarge { len, max: 100 }))
            if len == OVERSIZE as u64 => {}
        other => return Err(fail(format!("expected FrameTooLarge, got {other:?}"))),
    }
    expect(&mut ch, b"after").await?;
    ensure!(ch.recv().await?.is_none(), "expected the child's close");
    finish(child, ch).await
}

/// The child closes: its last frame, then `Ok(None)`, again and again.
async fn clean_close() -> Result<()> {
    let (child, mut ch) = spawn(Role::HelloClose, &Default::default()).await?;
    expect(&mut ch, b"hello").await?;
    ensure!(ch.recv().await?.is_none(), "expected None after the close");
    ensure!(ch.recv().await?.is_none(), "None again");
    finish(child, ch).await
}

/// A child that drops its channel without `close` aborts: no goodbye, `PeerLost`
/// saying so (even though it then exits 0).
async fn dropped_without_close() -> Result<()> {
    let (mut child, mut ch) = spawn(Role::DropWithoutClose, &Default::default()).await?;
    expect(&mut ch, b"bye").await?;
    let end = ch.recv().await;
    ensure!(
        matches!(&end, Err(RecvError::PeerLost(why)) if why.contains("without closing it")),
        "expected PeerLost for an abort, got {end:?}"
    );
    ensure!(child.wait().await?.success(), "child failed");
    Ok(())
}

/// SIGKILL the child mid-conversation: recv and send fail instead of hanging.
async fn killed_child_is_an_error() -> Result<()> {
    let (mut child, mut ch) = spawn(Role::Hang, &Default::default()).await?;
    expect(&mut ch, b"ready").await?;
    child.kill()?;
    let started = Instant::now();
    match tokio::time::timeout(Duration::from_secs(20), ch.recv()).await {
        Ok(Err(RecvError::PeerLost(_))) => {}
        Ok(other) => return Err(fail(format!("expected PeerLost, got {other:?}"))),
        Err(_) => return Err(fail("recv hung after the child was killed")),
    }
    // More than a window's worth: a dead peer acknowledges nothing.
    let big = payload(0, 64 * 1024);
    match tokio::time::timeout(Duration::from_secs(20), ch.send(big)).await {
        Ok(Err(_)) => {}
        Ok(Ok(())) => return Err(fail("send to a dead peer succeeded")),
        Err(_) => return Err(fail("send hung after the child was killed")),
    }
    ensure!(
        !child.wait().await?.success(),
        "killed child reported success"
    );
    ensure!(started.elapsed() < Duration::from_secs(20), "too slow");
    Ok(())
}

/// A send waiting on a full window when the peer is SIGKILLed fails with `PeerLost`.
async fn blocked_send_to_killed_peer_is_peer_lost() -> Result<()> {
    let (mut child, mut ch) = spawn(Role::Sink, &Default::default()).await?;
    {
        let mut send = std::pin::pin!(ch.send(payload(0, 64 * 1024)));
        let first = std::future::poll_fn(|cx| std::task::Poll::Ready(send.as_mut().poll(cx))).await;
        ensure!(
            first.is_pending(),
            "64 KiB went out without the sink reading"
        );
        child.kill()?;
        match tokio::time::timeout(Duration::from_secs(20), send).await {
            Ok(Err(SendError::PeerLost(_))) => {}
            Ok(other) => {
                return Err(fail(format!(
                    "blocked send: expected PeerLost, got {other:?}"
                )))
            }
            Err(_) => return Err(fail("blocked send hung after the peer was killed")),
        }
    }
    match ch.send(Bytes::from_static(b"again")).await {
        Err(SendError::PeerLost(_)) => {}
        other => return Err(fail(format!("next send: expected PeerLost, got {other:?}"))),
    }
    child.wait().await?;
    Ok(())
}

/// After our own `close`, `send` fails with `Closed` (and receiving goes on).
async fn send_after_own_close_is_closed() -> Result<()> {
    let (mut child, mut ch) = spawn(Role::Echo, &Default::default()).await?;
    ch.close().await?;
    match ch.send(Bytes::from_static(b"late")).await {
        Err(SendError::Closed) => {}
        other => return Err(fail(format!("expected Closed, got {other:?}"))),
    }
    ensure!(ch.recv().await?.is_none(), "expected the child's close");
    ensure!(child.wait().await?.success(), "child failed");
    Ok(())
}

/// The peer said goodbye and exited: `send` fails with `Closed`, whether or not our
/// receive half has read the goodbye yet.
async fn send_after_peer_goodbye_is_closed() -> Result<()> {
    // Goodbye not read yet: the child is reaped before we look.
    let (mut child, mut ch) = spawn(Role::CloseExit, &Default::default()).await?;
    ensure!(child.wait().await?.success(), "child failed");
    match ch.send(Bytes::from_static(b"late")).await {
        Err(SendError::Closed) => {}
        other => {
            return Err(fail(format!(
                "goodbye unread: expected Closed, got {other:?}"
            )))
        }
    }
    expect(&mut ch, b"bye").await?;
    ensure!(ch.recv().await?.is_none(), "expected the goodbye");
    // Goodbye read first.
    let (mut child, mut ch) = spawn(Role::CloseExit, &Default::default()).await?;
    expect(&mut ch, b"bye").await?;
    ensure!(ch.recv().await?.is_none(), "expected the goodbye");
    ensure!(child.wait().await?.success(), "child failed");
    match ch.send(Bytes::from_static(b"late")).await {
        Err(SendError::Closed) => Ok(()),
        other => Err(fail(format!(
            "goodbye read: expected Closed, got {other:?}"
        ))),
    }
}

/// The peer drops its sending half half-way through a frame but keeps receiving: our
/// `recv` ends with `PeerLost` instead of waiting for the rest of the frame.
async fn dropped_send_half_mid_frame_is_peer_lost() -> Result<()> {
    use tokio::io::AsyncBufReadExt;
    let mut cmd = child_command(Role::DropTxMidFrame)?;
    cmd.stdout(std::process::Stdio::piped());
    let (mut child, mut ch) = ipc_signal::spawn(cmd, &Default::default()).await?;
    let stdout = child
        .inner_mut()
        .stdout
        .take()
        .ok_or_else(|| fail("no stdout"))?;
    ch.send(Bytes::from_static(b"go")).await?;
    let mut line = String::new();
    tokio::io::BufReader::new(stdout)
        .read_line(&mut line)
        .await?;
    ensure!(line.trim() == "dropped", "child said {line:?}");
    match tokio::time::timeout(Duration::from_secs(20), ch.recv()).await {
        Ok(Err(RecvError::PeerLost(_))) => {}
        Ok(other) => return Err(fail(format!("expected PeerLost, got {other:?}"))),
        Err(_) => return Err(fail("recv hung on the half-sent frame")),
    }
    // The child's receive half still works: it sees our close and exits.
    ch.close().await?;
    ensure!(child.wait().await?.success(), "child failed");
    Ok(())
}

/// PROTOCOL.md §10, goodbye vs GONE: the goodbye (a DATA header) only ends the
/// peer's frames, and it still reads ours; GONE (a CONTROL word) says its channel is
/// dropped: while the process lives on, our `send` fails (`Closed`, as the goodbye
/// came first) instead of queueing signals nobody reads.
async fn goodbye_ends_frames_gone_ends_the_channel() -> Result<()> {
    use tokio::io::AsyncBufReadExt;
    let mut cmd = child_command(Role::CloseThenDrop)?;
    cmd.stdout(std::process::Stdio::piped())
        .stdin(std::process::Stdio::piped());
    let (mut child, mut ch) = ipc_signal::spawn(cmd, &Default::default()).await?;
    let stdout = child
        .inner_mut()
        .stdout
        .take()
        .ok_or_else(|| fail("no stdout"))?;
    ensure!(ch.recv().await?.is_none(), "expected the child's goodbye");
    ch.send(Bytes::from_static(b"still reading")).await?;
    let mut line = String::new();
    tokio::io::BufReader::new(stdout)
        .read_line(&mut line)
        .await?;
    ensure!(line.trim() == "dropped", "child said {line:?}");
    ensure!(
        child.inner_mut().try_wait()?.is_none(),
        "the child must still run"
    );
    // GONE travels like any signal: sends made before it is routed here still go out
    // (and are dropped by the child); the first one after fails, and none blocks.
    let refused = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match ch.send(Bytes::from_static(b"late")).await {
                Ok(()) => tokio::task::yield_now().await,
                other => return other,
            }
        }
    })
    .await;
    match refused {
        Ok(Err(SendError::Closed)) => {}
        other => return Err(fail(format!("after GONE: expected Closed, got {other:?}"))),
    }
    drop(child.inner_mut().stdin.take());
    ensure!(child.wait().await?.success(), "child failed");
    Ok(())
}

/// Two children at once, traffic to and from both interleaved: each gets its own.
async fn two_children_interleaved() -> Result<()> {
    let (mut a, cha) = spawn(Role::Echo, &Default::default()).await?;
    let (mut b, chb) = spawn(Role::Echo, &Default::default()).await?;
    let converse = |tag: u8, ch: SignalChannel| async move {
        let (mut tx, mut rx) = ch.into_split();
        let msg = move |i: u64| {
            let mut m = vec![tag];
            m.extend_from_slice(&payload(i, (i % 40) as usize));
            Bytes::from(m)
        };
        let sender = tokio::spawn(async move {
            for i in 0..2000 {
                tx.send(msg(i)).await?;
            }
            tx.close().await
        });
        for i in 0..2000 {
            let frame = rx.recv().await?.ok_or_else(|| fail("closed early"))?;
            ensure!(
                frame == msg(i),
                "child {} echo {i} wrong or misrouted",
                tag as char
            );
        }
        ensure!(rx.recv().await?.is_none(), "expected the close");
        Ok(sender.await.map_err(|e| fail(e.to_string()))??)
    };
    let (ra, rb) = tokio::join!(converse(b'a', cha), converse(b'b', chb));
    ra?;
    rb?;
    ensure!(a.wait().await?.success(), "child a failed");
    ensure!(b.wait().await?.success(), "child b failed");
    Ok(())
}

/// A signal from a pid with no channel is dropped and counted; channels carry on.
async fn stray_signal_is_dropped_and_counted() -> Result<()> {
    let before = ipc_signal::dropped_signals();
    let (child, mut ch) = spawn(Role::Echo, &Default::default()).await?;
    let status = tokio::process::Command::from(child_command(Role::Stray)?)
        .status()
        .await?;
    ensure!(status.success(), "the stray child failed: {status}");
    // The stray signal was queued before this frame's echo, so it is read first.
    ch.send(Bytes::from_static(b"after the stray")).await?;
    expect(&mut ch, b"after the stray").await?;
    let after = ipc_signal::dropped_signals();
    ensure!(after > before, "dropped_signals stayed at {after}");
    finish(child, ch).await
}

/// What the transport cannot do is refused clearly.
async fn unsupported_and_bad_uses() -> Result<()> {
    let t = SignalTransport;
    ensure!(t.name() == "signal" && t.schemes() == ["signal"], "names");
    ensure!(t.example_endpoint().is_none(), "example endpoint");
    let me = std::process::id();
    ensure!(
        matches!(
            t.listen(&Endpoint::Signal { pid: me }, &Default::default())
                .await,
            Err(ListenError::Unsupported { .. })
        ),
        "listen"
    );
    ensure!(
        matches!(
            t.connect(&Endpoint::Stdio, &Default::default()).await,
            Err(ConnectError::BadEndpoint { .. })
        ),
        "connect to a non-signal endpoint"
    );
    ensure!(
        matches!(
            t.connect(&Endpoint::Signal { pid: me }, &Default::default())
                .await,
            Err(ConnectError::Unsupported { .. })
        ),
        "connect to ourselves"
    );
    match t
        .connect(
            &Endpoint::Signal {
                pid: i32::MAX as u32,
            },
            &Default::default(),
        )
        .await
    {
        Err(ConnectError::NotListening(e)) if e.kind() == io::ErrorKind::NotFound => {}
        other => return Err(fail(format!("connect to no process: {:?}", other.err()))),
    }
    let (child, mut ch) = spawn(Role::Echo, &Default::default()).await?;
    match ipc_signal::connect(child.pid(), &Default::default()).await {
        Err(ConnectError::Io(e)) if e.kind() == io::ErrorKind::AddrInUse => {}
        other => {
            return Err(fail(format!(
                "second channel to one pid: {:?}",
                other.err()
            )))
        }
    }
    ensure!(
        matches!(
            ch.send_with_fds(Bytes::new(), &[]).await,
            Err(Error::Unsupported { .. })
        ),
        "send_with_fds"
    );
    ensure!(
        matches!(ch.recv_with_fds().await, Err(Error::Unsupported { .. })),
        "recv_with_fds"
    );
    ch.send(Bytes::from_static(b"ok")).await?;
    expect(&mut ch, b"ok").await?;
    finish(child, ch).await
}

// ---------------------------------------------------------------- runner

type Check = (&'static str, fn() -> Result<()>);

fn main() {
    // Before any thread: every thread, and every child, inherits the mask.
    if let Err(e) = ipc_signal::block_transport_signals() {
        eprintln!("{e}");
        std::process::exit(2);
    }
    if let Some(role) = testkit::role::<Role>() {
        std::process::exit(child_main(role));
    }
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let selected =
        |name: &str| filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str()));

    let alone: &[Check] = &[
        ("unblocked_thread_is_refused", unblocked_thread_is_refused),
        (
            "unblocked_other_thread_is_refused",
            unblocked_other_thread_is_refused,
        ),
    ];
    let together: &[Check] = &[
        ("ping_pong", || on_runtime(ping_pong())),
        ("sizes_in_order", || on_runtime(sizes_in_order())),
        ("ten_thousand_both_ways", || {
            on_runtime(ten_thousand_both_ways())
        }),
        ("tiny_sigpending_limit", || {
            on_runtime(tiny_sigpending_limit())
        }),
        ("oversize_send_refused", || {
            on_runtime(oversize_send_refused())
        }),
        ("oversize_recv_rejected", || {
            on_runtime(oversize_recv_rejected())
        }),
        ("clean_close", || on_runtime(clean_close())),
        ("dropped_without_close", || {
            on_runtime(dropped_without_close())
        }),
        ("killed_child_is_an_error", || {
            on_runtime(killed_child_is_an_error())
        }),
        ("blocked_send_to_killed_peer_is_peer_lost", || {
            on_runtime(blocked_send_to_killed_peer_is_peer_lost())
        }),
        ("send_after_own_close_is_closed", || {
            on_runtime(send_after_own_close_is_closed())
        }),
        ("send_after_peer_goodbye_is_closed", || {
            on_runtime(send_after_peer_goodbye_is_closed())
        }),
        ("dropped_send_half_mid_frame_is_peer_lost", || {
            on_runtime(dropped_send_half_mid_frame_is_peer_lost())
        }),
        ("goodbye_ends_frames_gone_ends_the_channel", || {
            on_runtime(goodbye_ends_frames_gone_ends_the_channel())
        }),
        ("two_children_interleaved", || {
            on_runtime(two_children_interleaved())
        }),
        ("stray_signal_is_dropped_and_counted", || {
            on_runtime(stray_signal_is_dropped_and_counted())
        }),
        ("unsupported_and_bad_uses", || {
            on_runtime(unsupported_and_bad_uses())
        }),
    ];

    let started = Instant::now();
    let mut results = Vec::new();
    for (name, check) in alone.iter().filter(|(n, _)| selected(n)) {
        let t = Instant::now();
        results.push((*name, check(), t.elapsed()));
    }
    let threads: Vec<_> = together
        .iter()
        .filter(|(n, _)| selected(n))
        .map(|(name, check)| {
            let check = *check;
            let thread = std::thread::Builder::new()
                .name(name.to_string())
                .spawn(move || {
                    let t = Instant::now();
                    (check(), t.elapsed())
                });
            (*name, thread)
        })
        .collect();
    for (name, thread) in threads {
        let (result, took) = match thread {
            Ok(handle) => handle
                .join()
                .unwrap_or_else(|_| (Err(fail("panicked")), Duration::ZERO)),
            Err(e) => (Err(Error::Io(e)), Duration::ZERO),
        };
        results.push((name, result, took));
    }
    let mut failed = 0;
    for (name, result, took) in &results {
        match result {
            Ok(()) => println!("channel::{name} ... ok ({took:.2?})"),
            Err(e) => {
                failed += 1;
                println!("channel::{name} ... FAILED ({took:.2?}): {e}");
            }
        }
    }
    println!(
        "\n{} passed, {failed} failed, in {:.2?}",
        results.len() - failed,
        started.elapsed()
    );
    if failed > 0 {
        std::process::exit(1);
    }
}
