//! The offer: how a segment and its two doorbells reach the other process. The creator
//! sends one frame, [`OFFER`], over a toolkit uds channel, with three file descriptors
//! attached (`SCM_RIGHTS`): the segment's `memfd`, the opener's end of ring 0's
//! doorbell (it reads ring 0) and the opener's end of ring 1's doorbell (it writes ring
//! 1). A client of a listener first sends [`HELLO`], so the listener can tell an
//! ipc-shm client from anything else that connects.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::sync::Arc;

use bytes::Bytes;
use ipc_core::prelude::*;
use ipc_core::{Error, Options, Result, SendError};
use ipc_uds::{RecvFds, SendFds, UdsChannel};

use crate::bell::Bell;
use crate::ring::{Consumer, Producer};
use crate::segment::{Ring, Segment};

/// The frame that carries a segment and its doorbells.
pub(crate) const OFFER: &[u8] = b"ipc-shm/1 offer";
/// The frame a client sends a listener first.
pub(crate) const HELLO: &[u8] = b"ipc-shm/1 hello";

/// The frame limit of the uds channel the offer travels on: its frames are tiny, so
/// anything larger is not an ipc-shm peer.
pub(crate) const RENDEZVOUS_MAX_FRAME: usize = 64;

/// Options of the uds channel the offer travels on (see [`RENDEZVOUS_MAX_FRAME`]).
pub(crate) fn rendezvous_options() -> Options {
    Options::default().max_frame(RENDEZVOUS_MAX_FRAME)
}

/// Our side of a segment: the mapping, which ring we write and read, and our ends of
/// their doorbells.
pub(crate) struct Side {
    segment: Arc<Segment>,
    tx: Ring,
    rx: Ring,
    tx_bell: OwnedFd,
    rx_bell: OwnedFd,
}

/// What the creator hands the opener.
pub(crate) struct Offer {
    memfd: OwnedFd,
    /// The opener's end of ring 0's doorbell (it reads ring 0).
    rx_bell: OwnedFd,
    /// The opener's end of ring 1's doorbell (it writes ring 1).
    tx_bell: OwnedFd,
}

/// Create a segment with rings of `capacity` bytes: our side, and the offer for the
/// peer.
pub(crate) fn create(capacity: usize) -> Result<(Side, Offer)> {
    let (memfd, segment) = Segment::create(capacity)?;
    let (ours_0, theirs_0) = StdUnixStream::pair()?;
    let (ours_1, theirs_1) = StdUnixStream::pair()?;
    let side = Side {
        segment: Arc::new(segment),
        tx: Ring::FromCreator,
        rx: Ring::FromOpener,
        tx_bell: ours_0.into(),
        rx_bell: ours_1.into(),
    };
    let offer = Offer {
        memfd,
        rx_bell: theirs_0.into(),
        tx_bell: theirs_1.into(),
    };
    Ok((side, offer))
}

/// Open a segment the peer offered.
pub(crate) fn open(offer: Offer) -> Result<Side> {
    let segment = Segment::open(&offer.memfd)?;
    Ok(Side {
        segment: Arc::new(segment),
        tx: Ring::FromOpener,
        rx: Ring::FromCreator,
        tx_bell: offer.tx_bell,
        rx_bell: offer.rx_bell,
    })
}

/// Our ends of our two rings, with their doorbells.
pub(crate) struct Ends {
    /// The ring we write.
    pub(crate) tx: Producer,
    pub(crate) tx_bell: Bell,
    /// The ring we read.
    pub(crate) rx: Consumer,
    pub(crate) rx_bell: Bell,
}

impl Side {
    /// Our ends of the rings (in a tokio runtime: the doorbells are registered with
    /// its reactor).
    pub(crate) fn into_ends(self) -> Result<Ends> {
        Ok(Ends {
            rx: Consumer::new(self.segment.clone(), self.rx),
            rx_bell: Bell::new(self.rx_bell)?,
            tx: Producer::new(self.segment, self.tx),
            tx_bell: Bell::new(self.tx_bell)?,
        })
    }
}

/// Send the offer, then close the uds channel (the fds travel with the frame; our
/// copies of the peer's ends are closed when `offer` is dropped here).
///
/// The peer may close its end as soon as it has the offer (PROTOCOL.md 12.1), before
/// our goodbye is written: a close that finds the peer gone is no failure. Should the
/// peer have gone without taking the offer, the fds in flight are closed with its
/// socket and our side of the segment sees its doorbells end: `PeerLost`.
pub(crate) async fn send_offer(mut ch: UdsChannel, offer: Offer) -> Result<()> {
    let fds = [
        offer.memfd.as_fd(),
        offer.rx_bell.as_fd(),
        offer.tx_bell.as_fd(),
    ];
    ch.send_with_fds(Bytes::from_static(OFFER), &fds).await?;
    match ch.close().await {
        Ok(()) | Err(SendError::PeerLost(_) | SendError::Closed) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Receive the peer's offer.
pub(crate) async fn recv_offer(ch: &mut UdsChannel) -> Result<Offer> {
    let refused = |what: String| {
        Error::Handshake(format!(
            "expected a shared-memory segment from the peer, got {what}; is the peer an \
             ipc-shm parent or listener?"
        ))
    };
    let (frame, fds) = match ch.recv_with_fds().await {
        Ok(Some(got)) => got,
        Ok(None) => return Err(refused("the end of the connection".into())),
        Err(e) => return Err(refused(format!("an error ({e})"))),
    };
    if frame != OFFER {
        return Err(refused(format!(
            "the frame {:?}",
            String::from_utf8_lossy(&frame[..frame.len().min(32)])
        )));
    }
    let Ok([memfd, rx_bell, tx_bell]) = <[OwnedFd; 3]>::try_from(fds) else {
        return Err(refused(
            "an offer without its three file descriptors".to_string(),
        ));
    };
    Ok(Offer {
        memfd,
        rx_bell,
        tx_bell,
    })
}
