//! Handing fds to a worker: at most one per frame, nothing else written until the
//! worker acknowledged it, the fd back when the worker refuses it or its channel
//! dies; and round-robin dispatch of accepted connections to free workers.
//!
//! A worker that refuses a connection stays in the rotation (as in Node's
//! `RoundRobinHandle`): it is offered the next ones again. The refused connection
//! goes to another worker, never back to one that refused it; once every ready
//! worker has refused it, it is closed (the client sees the connection end) rather
//! than kept waiting for a worker that would take it.

use std::os::fd::{AsFd, OwnedFd};

use bytes::Bytes;
use tokio::sync::mpsc;

use super::actor::{Actor, Input};
use super::slots::State;
use crate::launch::ControlSender;
use crate::protocol::Ctl;

/// How handing one fd to a worker ended.
pub(super) enum Handoff {
    Taken,
    /// The worker said no (it is stopping): the fd comes back.
    Refused(OwnedFd),
    /// The channel died before the acknowledgement: the fd comes back.
    Failed(OwnedFd),
}

/// One frame for a worker's writer; with an fd, the writer waits for its
/// acknowledgement before writing anything else.
pub(super) struct Outgoing {
    pub(super) frame: Bytes,
    /// The frame's sequence number, which its acknowledgement carries (with an fd).
    pub(super) seq: u64,
    pub(super) fd: Option<OwnedFd>,
    /// Report the hand-off to the cluster's task (connections), or not (the listener).
    pub(super) report: bool,
}

/// Write `queue` to the worker; after a frame with an fd, wait for its
/// acknowledgement (from `acks`) before writing anything else.
pub(super) async fn write_loop(
    id: u64,
    mut tx: ControlSender,
    mut queue: mpsc::UnboundedReceiver<Outgoing>,
    mut acks: mpsc::UnboundedReceiver<(u64, bool)>,
    inputs: mpsc::UnboundedSender<Input>,
) {
    let mut broken = false;
    while let Some(Outgoing {
        frame,
        seq,
        fd,
        report,
    }) = queue.recv().await
    {
        let outcome = match fd {
            None => {
                if !broken && tx.send(frame, None).await.is_err() {
                    broken = true;
                }
                continue;
            }
            Some(fd) if broken => Handoff::Failed(fd),
            Some(fd) => match tx.send(frame, Some(fd.as_fd())).await {
                Err(e) => {
                    tracing::debug!(id, "handing an fd: {e}");
                    broken = true;
                    Handoff::Failed(fd)
                }
                Ok(()) => match ack_of(seq, &mut acks).await {
                    Some(true) => Handoff::Taken,
                    Some(false) => Handoff::Refused(fd),
                    None => {
                        broken = true;
                        Handoff::Failed(fd)
                    }
                },
            },
        };
        if report {
            let _ = inputs.send(Input::Handoff(id, seq, outcome));
        }
        // Otherwise the fd (ours, a duplicate) is closed here.
    }
    let _ = tx.close().await;
}

/// The worker's answer to the frame `seq`: taken or not; `None` once its channel is
/// gone. A worker acknowledges every `listen` and `conn`, also those that came
/// without an fd (the `listen` of the rr and reuseport modes), whose acknowledgements
/// nobody waits for: they are passed over, so that an answer is never taken for
/// another frame's.
async fn ack_of(seq: u64, acks: &mut mpsc::UnboundedReceiver<(u64, bool)>) -> Option<bool> {
    loop {
        let (acked, taken) = acks.recv().await?;
        if acked == seq {
            return Some(taken);
        }
        tracing::trace!(
            acked,
            waiting_for = seq,
            "an acknowledgement nobody waits for"
        );
    }
}

/// Round-robin: an accepted connection waiting for a worker, with the workers that
/// refused it so far.
pub(super) struct Waiting {
    pub(super) stream: std::net::TcpStream,
    pub(super) refused_by: Vec<u64>,
}

impl Waiting {
    /// A connection just accepted.
    pub(super) fn new(stream: std::net::TcpStream) -> Waiting {
        Waiting {
            stream,
            refused_by: Vec::new(),
        }
    }
}

impl Actor {
    pub(super) fn on_handoff(&mut self, id: u64, seq: u64, outcome: Handoff) {
        let refused_by = self.offered.remove(&seq).unwrap_or_default();
        match outcome {
            Handoff::Taken => {
                if let Some(slot) = self.slots.get_mut(&id) {
                    slot.connections += 1;
                    if slot.state == State::Ready {
                        self.free.push_back(id);
                    }
                }
            }
            Handoff::Refused(fd) => {
                if let Some(slot) = self.slots.get_mut(&id) {
                    slot.refused += 1;
                    // It stays in the rotation: later connections are offered to it.
                    if slot.state == State::Ready {
                        self.free.push_back(id);
                    }
                }
                tracing::debug!(id, "connection refused: handing it to another worker");
                let mut waiting = Waiting {
                    stream: std::net::TcpStream::from(fd),
                    refused_by,
                };
                if !waiting.refused_by.contains(&id) {
                    waiting.refused_by.push(id);
                }
                self.queued.push_front(waiting);
            }
            Handoff::Failed(fd) => {
                tracing::debug!(id, "connection not taken: handing it to another worker");
                self.queued.push_front(Waiting {
                    stream: std::net::TcpStream::from(fd),
                    refused_by,
                });
            }
        }
        self.dispatch();
    }

    /// Whether every ready worker refused this connection (and there is one).
    fn refused_by_every_ready_worker(&self, waiting: &Waiting) -> bool {
        if waiting.refused_by.is_empty() {
            return false;
        }
        let mut ready = self
            .slots
            .iter()
            .filter(|(_, s)| s.state == State::Ready && !s.agent)
            .map(|(id, _)| id)
            .peekable();
        ready.peek().is_some() && ready.all(|id| waiting.refused_by.contains(id))
    }

    /// Round-robin: hand queued connections to free workers, in turn; a connection
    /// goes only to a worker that has not refused it, and is closed once every ready
    /// worker has.
    pub(super) fn dispatch(&mut self) {
        self.free
            .retain(|id| self.slots.get(id).is_some_and(|s| s.state == State::Ready));
        while let Some(head) = self.queued.front() {
            if self.refused_by_every_ready_worker(head) {
                let refused = head.refused_by.len();
                tracing::warn!(
                    refused,
                    "every ready worker refused a connection: closing it (the workers \
                     dropped their listeners or are stopping)"
                );
                self.queued.pop_front();
                continue;
            }
            let Some(turn) = self
                .free
                .iter()
                .position(|id| !head.refused_by.contains(id))
            else {
                // The free workers refused it: it waits for another one.
                return;
            };
            let Some(id) = self.free.remove(turn) else {
                return;
            };
            let Some(Waiting { stream, refused_by }) = self.queued.pop_front() else {
                return;
            };
            let Some(slot) = self.slots.get(&id) else {
                continue;
            };
            let seq = {
                self.next_seq += 1;
                self.next_seq
            };
            let sent = slot.out.send(Outgoing {
                frame: Ctl::Conn { seq }.encode(),
                seq,
                fd: Some(OwnedFd::from(stream)),
                report: true,
            });
            match sent {
                Ok(()) => {
                    if !refused_by.is_empty() {
                        self.offered.insert(seq, refused_by);
                    }
                }
                Err(mpsc::error::SendError(lost)) => {
                    if let Some(fd) = lost.fd {
                        self.queued.push_front(Waiting {
                            stream: std::net::TcpStream::from(fd),
                            refused_by,
                        });
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipc_core::prelude::*;
    use ipc_uds::RecvFds;
    use std::time::Duration;

    /// A write loop for worker `id` over a fresh uds pair, and what a test drives it
    /// with: the worker's end, the outgoing queue, the acknowledgement route and the
    /// actor's inbox.
    struct Rig {
        theirs: ipc_uds::UdsChannel,
        out: mpsc::UnboundedSender<Outgoing>,
        ack_tx: mpsc::UnboundedSender<(u64, bool)>,
        inbox: mpsc::UnboundedReceiver<Input>,
    }

    fn rig(id: u64) -> Rig {
        let (ours, theirs) = ipc_uds::pair(&ipc_core::Options::default()).expect("pair");
        let (tx, _rx) = ours.into_split();
        let (out, queue) = mpsc::unbounded_channel();
        let (ack_tx, acks) = mpsc::unbounded_channel();
        let (inputs, inbox) = mpsc::unbounded_channel();
        tokio::spawn(write_loop(
            id,
            ControlSender::Uds(Box::new(tx)),
            queue,
            acks,
            inputs,
        ));
        Rig {
            theirs,
            out,
            ack_tx,
            inbox,
        }
    }

    #[tokio::test]
    pub(super) async fn a_channel_dying_mid_transfer_gives_the_fd_back() {
        let Rig {
            mut theirs,
            out,
            ack_tx: _ack_tx,
            mut inbox,
        } = rig(7);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let client = std::net::TcpStream::connect(addr).expect("connect");
        let local = client.local_addr().expect("local");
        out.send(Outgoing {
            frame: Ctl::Conn { seq: 1 }.encode(),
            seq: 1,
            fd: Some(OwnedFd::from(client)),
            report: true,
        })
        .expect("queue");
        // A second frame must wait for the acknowledgement of the first.
        out.send(Outgoing {
            frame: Bytes::from_static(b"later"),
            seq: 0,
            fd: None,
            report: false,
        })
        .expect("queue");
        let (frame, fds) = theirs.recv_with_fds().await.expect("recv").expect("frame");
        assert_eq!(Ctl::decode(&frame), Some(Ctl::Conn { seq: 1 }));
        assert_eq!(fds.len(), 1);
        // The worker dies before acknowledging: its end and the ack route go away.
        drop((theirs, fds, _ack_tx));
        match inbox.recv().await {
            Some(Input::Handoff(7, 1, Handoff::Failed(fd))) => {
                let back = std::net::TcpStream::from(fd);
                assert_eq!(
                    back.local_addr().expect("addr"),
                    local,
                    "the same connection"
                );
            }
            _ => panic!("expected a failed hand-off with the fd back"),
        }
    }

    #[tokio::test]
    pub(super) async fn the_next_frame_waits_for_the_acknowledgement() {
        let Rig {
            mut theirs,
            out,
            ack_tx,
            mut inbox,
        } = rig(1);
        let file = std::fs::File::open("/dev/null").expect("open");
        for frame in [&b"with fd"[..], b"after"] {
            out.send(Outgoing {
                frame: Bytes::copy_from_slice(frame),
                seq: 1,
                fd: (frame == b"with fd").then(|| OwnedFd::from(file.try_clone().expect("dup"))),
                report: true,
            })
            .expect("queue");
        }
        let (first, fds) = theirs.recv_with_fds().await.expect("recv").expect("frame");
        assert_eq!((&first[..], fds.len()), (&b"with fd"[..], 1));
        let early = tokio::time::timeout(Duration::from_millis(50), theirs.recv()).await;
        assert!(
            early.is_err(),
            "nothing is written before the acknowledgement"
        );
        // An acknowledgement of another frame (a `listen` without an fd) is not it.
        ack_tx.send((0, false)).expect("stale ack");
        let early = tokio::time::timeout(Duration::from_millis(50), theirs.recv()).await;
        assert!(
            early.is_err(),
            "another frame's acknowledgement is not this one's"
        );
        ack_tx.send((1, true)).expect("ack");
        assert_eq!(
            theirs.recv().await.expect("recv").as_deref(),
            Some(&b"after"[..])
        );
        assert!(matches!(
            inbox.recv().await,
            Some(Input::Handoff(1, 1, Handoff::Taken))
        ));
    }
}
