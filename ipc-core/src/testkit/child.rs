//! The child side of the conformance cases: the behaviours of [`Role`].

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::Outcome as Result;
use crate::codec::{Codec, Json, Postcard};
use crate::error::{Error, RecvError};
use crate::options::Options;
use crate::prelude::*;
use crate::{Registry, TypedChannel};

use super::reexec::role_from_env;
use super::{fail, Frames, ARG_VAR, BULK_VAR, FRAMES_VAR};

/// Number of messages each way in the bulk ordering case.
pub(crate) const BULK_COUNT: u64 = 10_000;

/// The message of the typed cases.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Note {
    pub seq: u32,
    pub text: String,
    pub tags: Vec<String>,
    pub ratio: f64,
    pub reply: Option<Box<Note>>,
}

impl Note {
    pub(crate) fn sample(seq: u32) -> Note {
        Note {
            seq,
            text: format!("note {seq}: \"quoted\", ünïcødé, \\ and\nnewline"),
            tags: vec!["a".into(), String::new(), "{}[]".into()],
            ratio: seq as f64 / 3.0,
            reply: None,
        }
    }

    /// What the child sends back for a note.
    pub(crate) fn answer(self) -> Note {
        Note {
            seq: self.seq + 1,
            text: self.text.to_uppercase(),
            tags: self.tags.clone(),
            ratio: self.ratio * 2.0,
            reply: Some(Box::new(self)),
        }
    }
}

/// Size of bulk message `seq`: a mix from 4 bytes up to `max`.
pub(crate) fn bulk_size(seq: u64, max: usize) -> usize {
    const PATTERN: [usize; 8] = [4, 5, 17, 64, 300, 1024, 4096, 1 << 20];
    PATTERN[(seq % PATTERN.len() as u64) as usize].clamp(4, max.max(4))
}

/// Bulk message `seq`: its number, then a fill that depends on it.
pub(crate) fn bulk_payload(frames: Frames, seq: u64, max: usize) -> Bytes {
    frames.payload(seq, bulk_size(seq, max))
}

/// Check bulk message `seq`.
pub(crate) fn check_bulk(frames: Frames, frame: &[u8], seq: u64, max: usize) -> Result<()> {
    frames.check(frame, seq, &bulk_payload(frames, seq, max))
}

fn arg() -> u64 {
    std::env::var(ARG_VAR)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The frames mode the parent runs the cases in.
fn frames() -> Result<Frames> {
    Frames::from_env_value(std::env::var(FRAMES_VAR).ok().as_deref())
}

fn bulk() -> usize {
    std::env::var(BULK_VAR)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(16 * 1024)
}

crate::child_roles! {
    /// What a child of a conformance case does (its name travels in
    /// [`ROLE_VAR`](super::ROLE_VAR)).
    pub enum Role {
        /// Echo every frame (a rejected one as `"error: ..."`) until the parent closes.
        Echo,
        /// 10 000 bulk messages each way at once, checking the parent's.
        Bulk,
        /// Send `hello`, close, wait for the parent's close.
        HelloClose,
        /// Send `ready`, then read until the parent closes (or kills us).
        Hang,
        /// Receive an exit code, close, wait for the parent's close, exit with it.
        ExitCode,
        /// Answer each JSON `Note`; report undecodable frames.
        TypedJson,
        /// Answer each postcard `Note`; report undecodable frames.
        TypedPostcard,
        /// Serve rpc: echo as `re:..`, `hold` until `release`, `fail` as an error.
        Rpc,
        /// Say `armed`, wait for SIGUSR1, read everything, report the count.
        SlowReader,
        /// Say `armed`, wait for SIGUSR1, read to the end, report how it ended.
        ExpectCut,
        /// Say `armed`, wait for SIGUSR1, read everything while counting how long other
        /// tasks waited.
        YieldCheck,
        /// Say `ready`, then read nothing until killed.
        Stall,
        /// Close at once, and exit.
        CloseExit,
        /// Send a frame of the argument's size (over the parent's limit), then `after`.
        SendOversize,
        /// Send `hello`, drop the whole channel without closing it, then wait to be
        /// killed (alive, so no exit status tells the parent anything).
        DropChannel,
        /// Send `hello`, drop the sending half without closing it, keep reading until
        /// the parent closes, and exit 0.
        DropSender,
    }
}

/// Run the child behaviour named by [`ROLE_VAR`](super::ROLE_VAR), if set, and return
/// its exit code; `None` when this process is not a testkit child.
///
/// Call it first thing in the conformance binary's `main`.
pub fn child_main(registry: &Registry) -> Option<i32> {
    let role = match role_from_env::<Role>()? {
        Ok(role) => role,
        Err(e) => {
            eprintln!("testkit child: {e}");
            return Some(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("testkit child: no runtime: {e}");
            return Some(70);
        }
    };
    let outcome = runtime.block_on(run_role(role, registry));
    Some(match outcome {
        Ok(code) => code,
        Err(e) => {
            eprintln!("testkit child role {role:?} failed: {e}");
            1
        }
    })
}

async fn run_role(role: Role, registry: &Registry) -> Result<i32> {
    // The oversize sender deliberately ignores the parent's (smaller) limit.
    let options = if role == Role::SendOversize {
        Options::from_env().max_frame(arg() as usize + 16)
    } else {
        Options::from_env()
    };
    let frames = frames()?;
    let mut ch = frames.wrap(registry.connect_from_env(&options).await?);
    match role {
        Role::Echo => echo(&mut *ch).await,
        Role::Bulk => bulk_both_ways(ch, frames).await,
        Role::HelloClose => {
            ch.send(Bytes::from_static(b"hello")).await?;
            ch.close().await?;
            drain(&mut *ch).await?;
            Ok(0)
        }
        Role::Hang => {
            ch.send(Bytes::from_static(b"ready")).await?;
            drain(&mut *ch).await?;
            Ok(0)
        }
        Role::ExitCode => {
            let code = ch
                .recv()
                .await?
                .and_then(|f| std::str::from_utf8(&f).ok()?.parse::<i32>().ok())
                .ok_or_else(|| fail("expected an exit code"))?;
            ch.close().await?;
            // Exit only after the parent's close: the conversation has ended cleanly
            // before the non-zero exit (on a transport without a goodbye, Node's, a
            // non-zero exit while the parent still reads is a crash).
            drain(&mut *ch).await?;
            Ok(code)
        }
        Role::TypedJson => typed_answer::<Json>(ch).await,
        Role::TypedPostcard => typed_answer::<Postcard>(ch).await,
        Role::Rpc => {
            // "hold" requests wait until a "release" request arrives, so a caller can
            // time out or give up while its call is really in flight.
            let release = std::sync::Arc::new(tokio::sync::Notify::new());
            crate::rpc::serve(ch, move |req: Bytes| {
                let release = release.clone();
                async move {
                    match &req[..] {
                        b"hold" => {
                            release.notified().await;
                            Ok(Bytes::from_static(b"released"))
                        }
                        b"release" => {
                            release.notify_waiters();
                            Ok(Bytes::from_static(b"ok"))
                        }
                        b"fail" => Err("asked to fail".to_string()),
                        _ => {
                            let mut reply = b"re:".to_vec();
                            reply.extend_from_slice(&req);
                            Ok(Bytes::from(reply))
                        }
                    }
                }
            })
            .await?;
            Ok(0)
        }
        Role::SlowReader => slow_reader(&mut *ch, frames).await,
        Role::ExpectCut => expect_cut(&mut *ch).await,
        Role::YieldCheck => yield_check(&mut *ch).await,
        Role::Stall => {
            // Say ready, then read nothing until killed.
            ch.send(Bytes::from_static(b"ready")).await?;
            std::future::pending::<()>().await;
            Ok(0)
        }
        Role::CloseExit => {
            ch.close().await?;
            Ok(0)
        }
        Role::DropChannel => {
            ch.send(Bytes::from_static(b"hello")).await?;
            drop(ch); // an abort: no goodbye
            std::future::pending::<()>().await;
            Ok(0)
        }
        Role::DropSender => {
            ch.send(Bytes::from_static(b"hello")).await?;
            let (tx, mut rx) = ch.split();
            drop(tx); // an abort of this direction: no goodbye
            while rx.recv().await?.is_some() {}
            Ok(0)
        }
        Role::SendOversize => {
            ch.send(frames.payload(0, arg() as usize)).await?;
            ch.send(Bytes::from_static(b"after")).await?;
            ch.close().await?;
            drain(&mut *ch).await?;
            Ok(0)
        }
    }
}

async fn echo(ch: &mut dyn Channel) -> Result<i32> {
    loop {
        match ch.recv().await {
            Ok(Some(frame)) => ch.send(frame).await?,
            Ok(None) => break,
            Err(e @ RecvError::Rejected(_)) => {
                ch.send(Bytes::from(format!("error: {e}"))).await?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    ch.close().await?;
    Ok(0)
}

async fn drain(ch: &mut dyn Channel) -> Result<()> {
    while ch.recv().await?.is_some() {}
    Ok(())
}

async fn bulk_both_ways(ch: Box<dyn Channel>, frames: Frames) -> Result<i32> {
    let max = bulk();
    let (mut tx, mut rx) = ch.split();
    let sender = tokio::spawn(async move {
        for seq in 0..BULK_COUNT {
            tx.send(bulk_payload(frames, seq, max)).await?;
        }
        tx.close().await
    });
    for seq in 0..BULK_COUNT {
        let frame = rx
            .recv()
            .await?
            .ok_or_else(|| fail(format!("parent closed after {seq} messages")))?;
        check_bulk(frames, &frame, seq, max)?;
    }
    if rx.recv().await?.is_some() {
        return Err(fail("parent sent more than expected"));
    }
    sender
        .await
        .map_err(|e| fail(format!("sender task: {e}")))??;
    Ok(0)
}

async fn typed_answer<K: Codec>(ch: Box<dyn Channel>) -> Result<i32> {
    let mut typed: TypedChannel<Note, Note, K> = TypedChannel::new(ch);
    loop {
        match typed.recv().await {
            Ok(Some(note)) => typed.send(note.answer()).await?,
            Ok(None) => break,
            // A frame that is not a Note: say so and keep serving.
            Err(e @ RecvError::Rejected(Error::Decode { .. })) => {
                let mut reply = Note::sample(0);
                reply.text = format!("decode error: {e}");
                typed.send(reply).await?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    typed.close().await?;
    Ok(0)
}

async fn slow_reader(ch: &mut dyn Channel, frames: Frames) -> Result<i32> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut go = signal(SignalKind::user_defined1())?;
    ch.send(Bytes::from_static(b"armed")).await?;
    go.recv().await;
    let size = bulk();
    let mut count = 0u64;
    while let Some(frame) = ch.recv().await? {
        frames.check(&frame, count, &frames.payload(count, size))?;
        count += 1;
    }
    ch.send(Bytes::from(count.to_string())).await?;
    ch.close().await?;
    Ok(0)
}

/// Wait for SIGUSR1 (the parent has dropped its sending half mid-frame), then read to
/// the end and report how the stream ended.
async fn expect_cut(ch: &mut dyn Channel) -> Result<i32> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut go = signal(SignalKind::user_defined1())?;
    ch.send(Bytes::from_static(b"armed")).await?;
    go.recv().await;
    let mut frames = 0u64;
    let report = loop {
        match ch.recv().await {
            Ok(Some(_)) => frames += 1,
            Ok(None) => break format!("clean close after {frames} frames"),
            Err(e @ RecvError::PeerLost(_)) => {
                break format!("peer lost after {frames} frames: {e}")
            }
            Err(e) => break format!("other error after {frames} frames: {e:?}"),
        }
    };
    ch.send(Bytes::from(report)).await?;
    ch.close().await?;
    Ok(0)
}

/// Wait for SIGUSR1 (the parent has filled the channel), then receive every frame,
/// counting the longest run of receives made while a spawned task waited to run;
/// report `"COUNT LONGEST"`.
async fn yield_check(ch: &mut dyn Channel) -> Result<i32> {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use tokio::signal::unix::{signal, SignalKind};
    let mut go = signal(SignalKind::user_defined1())?;
    ch.send(Bytes::from_static(b"armed")).await?;
    go.recv().await;
    let ran = Arc::new(AtomicBool::new(false));
    let spawn_task = |ran: &Arc<AtomicBool>| {
        let ran = ran.clone();
        tokio::spawn(async move { ran.store(true, Ordering::SeqCst) });
    };
    spawn_task(&ran);
    let (mut count, mut run, mut longest) = (0u64, 0u64, 0u64);
    while let Some(frame) = ch.recv().await? {
        if frame != count.to_string().as_bytes() {
            return Err(fail(format!(
                "frame {count} is {:?}",
                String::from_utf8_lossy(&frame)
            )));
        }
        count += 1;
        if ran.swap(false, Ordering::SeqCst) {
            run = 0;
            spawn_task(&ran);
        }
        run += 1;
        longest = longest.max(run);
    }
    ch.send(Bytes::from(format!("{count} {longest}"))).await?;
    ch.close().await?;
    Ok(0)
}
