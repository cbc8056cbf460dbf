//! One channel bridged to the input queue and the output: frames flow both ways at
//! once, so a peer that talks while we send never deadlocks against us.
//!
//! Ends:
//! - input over (end-of-file, or a goodbye in `--raw`/`--json`): close our side (the
//!   goodbye), then keep printing until the peer closes or is lost;
//! - the peer closed cleanly: stop reading input, close our side, done;
//! - the peer was lost (no goodbye), or stdout failed: done at once.

use bytes::Bytes;
use ipc::prelude::*;
use ipc::{RecvHalf, SendHalf};
use tokio::io::AsyncWrite;
use tokio::sync::oneshot;

use crate::exit::Ended;
use crate::input::{Input, InputQueue};
use crate::output::Output;

/// Bridge `channel` until it ends; see the [module docs](self).
pub(crate) async fn bridge<W: AsyncWrite + Unpin>(
    channel: Box<dyn Channel>,
    input: &mut InputQueue,
    output: &mut Output<W>,
) -> Ended {
    let (mut tx, mut rx) = channel.split();
    let (peer_closed, mut stop) = oneshot::channel::<()>();
    let sending = send_input(&mut tx, input, &mut stop);
    let receiving = print_frames(&mut rx, output, peer_closed);
    tokio::pin!(sending, receiving);
    let mut input_failure: Option<String> = None;
    let mut sent_all = false;
    let ended = loop {
        tokio::select! {
            failure = &mut sending, if !sent_all => {
                sent_all = true;
                input_failure = failure;
            }
            ended = &mut receiving => break ended,
        }
    };
    if matches!(ended, Ended::Clean) && !sent_all {
        // The peer closed first: `sending` saw the stop and now closes our side.
        input_failure = sending.await;
    }
    match (ended, input_failure) {
        (Ended::Clean, Some(why)) => Ended::Io(why),
        (ended, _) => ended,
    }
}

/// Send input frames until the input ends or `stop` fires, then close cleanly.
/// Returns why stdin failed, if it did.
async fn send_input(
    tx: &mut Box<dyn SendHalf>,
    input: &mut InputQueue,
    stop: &mut oneshot::Receiver<()>,
) -> Option<String> {
    let mut failure = None;
    loop {
        let next = tokio::select! {
            biased;
            _ = &mut *stop => break,
            next = input.next() => next,
        };
        match next {
            Input::Frame(frame) => {
                if let Err(e) = send(tx, frame).await {
                    // The channel is gone; the receiving side reports how it ended.
                    eprintln!("ipc-cat: cannot send: {e}");
                    return None;
                }
            }
            Input::End => break,
            Input::Failed(why) => {
                failure = Some(why);
                break;
            }
        }
    }
    if let Err(e) = tx.close().await {
        eprintln!("ipc-cat: cannot close the channel cleanly: {e}");
    }
    failure
}

/// Send one frame; a frame the channel refuses (too large) is reported and skipped.
async fn send(tx: &mut Box<dyn SendHalf>, frame: Bytes) -> ipc::Result<()> {
    match tx.send(frame).await {
        Err(e @ ipc::SendError::Rejected(_)) => {
            eprintln!("ipc-cat: a frame was not sent: {e}");
            Ok(())
        }
        other => Ok(other?),
    }
}

/// Print frames until the peer closes (then tell the sender through `peer_closed`) or is
/// lost, or stdout fails.
async fn print_frames<W: AsyncWrite + Unpin>(
    rx: &mut Box<dyn RecvHalf>,
    output: &mut Output<W>,
    peer_closed: oneshot::Sender<()>,
) -> Ended {
    loop {
        match rx.recv().await {
            Ok(Some(frame)) => {
                if let Err(why) = output.frame(frame).await {
                    return Ended::Io(why);
                }
            }
            Ok(None) => {
                let _ = peer_closed.send(());
                return match output.goodbye().await {
                    Ok(()) => Ended::Clean,
                    Err(why) => Ended::Io(why),
                };
            }
            Err(e @ ipc::RecvError::Rejected(_)) => {
                eprintln!("ipc-cat: a received frame was skipped: {e}")
            }
            Err(e) => return Ended::Lost(e.to_string()),
        }
    }
}
