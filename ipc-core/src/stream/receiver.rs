//! [`StreamReceiver`]: the receiving half of a [`StreamChannel`](super::StreamChannel),
//! a `Stream` of frames decoded from one read buffer.

use std::io;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::{ready, Context, Poll};

use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use tokio::io::{AsyncRead, ReadBuf};

use super::{classify, PeerClosed};
use crate::channel::{ChannelInfo, RecvHalf};
use crate::error::{Error, RecvError};
use crate::frame::{Decoded, FrameCodec};
use crate::spin::{LowLatency, Spinner};

/// How much a [`StreamReceiver`] reads at once, at most (its buffer's first size).
const READ_BUFFER: usize = 64 * 1024;

/// Read once into the free room of `buffer` (there must be some), and add what came
/// to it: the number of bytes, 0 at the end of the stream.
#[inline]
fn poll_read_into<R: AsyncRead + Unpin>(
    reader: &mut R,
    cx: &mut Context<'_>,
    buffer: &mut BytesMut,
) -> Poll<io::Result<usize>> {
    let mut room = ReadBuf::uninit(buffer.spare_capacity_mut());
    let start = room.filled().as_ptr();
    ready!(Pin::new(reader).poll_read(cx, &mut room))?;
    let read = room.filled();
    // A reader could swap in another `ReadBuf`: then what it filled is not `buffer`.
    assert_eq!(
        start,
        read.as_ptr(),
        "the reader replaced the buffer it was given"
    );
    let n = read.len();
    // SAFETY: the reader filled the first `n` bytes of `buffer`'s free room (`ReadBuf`
    // counts only initialized bytes as filled, and the assertion above shows they are
    // `buffer`'s), so its first `len + n` bytes are initialized, within its capacity.
    unsafe { buffer.set_len(buffer.len() + n) };
    Poll::Ready(Ok(n))
}

/// What [`StreamReceiver::poll_decoded`] found: a frame, the usual case, kept small
/// (an item is as large as the largest error), or something else, left in `held`.
enum Next {
    Frame(Bytes),
    Held,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RecvState {
    Open,
    Finished,
}

/// The receiving half of a [`StreamChannel`](super::StreamChannel): a [`Stream`] of frames.
///
/// The peer's goodbye ends the stream; a rejected frame (too large: skipped without
/// being buffered; undecodable) is one `Err` item and the stream goes on; the stream
/// ending without a goodbye, or breaking, is one `Err` item
/// ([`RecvError::PeerLost`], ...), then the end.
///
/// Each frame received, like each frame sent by [`StreamSender`](super::StreamSender), uses one unit of the
/// tokio task's cooperative budget: a loop that receives frames which are always
/// already there yields to the runtime now and then, so other tasks and signal
/// handlers run.
///
/// [`recv_many`](crate::RecvManyExt::recv_many) hands out every whole frame of one
/// read at once, each a slice of the one read buffer: one pass through the layers
/// above (and one unit of the budget) per batch instead of per frame, and no read
/// while frames are left.
///
/// In low-latency mode ([`set_low_latency`](Self::set_low_latency), or
/// [`IPC_LOW_LATENCY`](crate::spin::LOW_LATENCY_ENV) in the environment when it is
/// made) a receive that finds nothing polls for a bounded, adaptive time before the
/// task parks, at a CPU cost (see [`spin`](crate::spin)).
pub struct StreamReceiver<R, C> {
    reader: R,
    codec: C,
    /// Bytes read but not yet cut into frames.
    buffer: BytesMut,
    /// The codec may find an item in `buffer`: bytes came in since it last found
    /// nothing.
    readable: bool,
    /// The reader reported the end of the stream: what is left goes to `decode_eof`.
    eof: bool,
    info: ChannelInfo,
    state: RecvState,
    peer_closed: PeerClosed,
    spin: Option<Spinner>,
    /// The next item, kept for the next call: what the codec gave after the frames of
    /// a batch (a goodbye, a rejected frame, an error), or an item that came when the
    /// task's cooperative budget was spent.
    held: Option<Option<Result<Decoded, Error>>>,
}

impl<R, C> std::fmt::Debug for StreamReceiver<R, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamReceiver")
            .field("info", &self.info)
            .field("buffered", &self.buffer.len())
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl<R: AsyncRead + Send + Unpin + 'static, C: FrameCodec> StreamReceiver<R, C> {
    /// Wrap a reader.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> ipc_core::Result<()> {
    /// use ipc_core::prelude::*;
    /// use ipc_core::{frame::LengthCodec, stream::StreamReceiver, ChannelInfo};
    /// let wire: &[u8] = b"\0\0\0\x02hi\xff\xff\xff\xff"; // "hi", then goodbye
    /// let mut rx = StreamReceiver::new(wire, LengthCodec::new(Default::default()), ChannelInfo::new("mem"));
    /// assert_eq!(rx.recv().await?.as_deref(), Some(&b"hi"[..]));
    /// assert_eq!(rx.recv().await?, None);
    /// # Ok(()) }
    /// ```
    pub fn new(reader: R, codec: C, info: ChannelInfo) -> Self {
        Self::linked(reader, codec, info, PeerClosed::default())
    }

    pub(super) fn linked(reader: R, codec: C, info: ChannelInfo, peer_closed: PeerClosed) -> Self {
        let info = info.with_max_frame(codec.max_frame());
        StreamReceiver {
            reader,
            codec,
            buffer: BytesMut::with_capacity(READ_BUFFER),
            readable: false,
            eof: false,
            info,
            state: RecvState::Open,
            peer_closed,
            spin: LowLatency::for_new_channels().map(Spinner::new),
            held: None,
        }
    }

    /// Turn low-latency mode on (`Some`) or off (`None`): see [`spin`](crate::spin)
    /// for what it does and costs.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> ipc_core::Result<()> {
    /// use std::time::Duration;
    /// use ipc_core::prelude::*;
    /// use ipc_core::{frame::LengthCodec, spin::LowLatency, stream::StreamReceiver, ChannelInfo};
    /// let wire: &[u8] = b"\0\0\0\x02hi\xff\xff\xff\xff";
    /// let mut rx = StreamReceiver::new(wire, LengthCodec::new(Default::default()), ChannelInfo::new("mem"));
    /// rx.set_low_latency(Some(LowLatency::new(Duration::from_micros(50))));
    /// assert_eq!(rx.recv().await?.as_deref(), Some(&b"hi"[..]));
    /// # Ok(()) }
    /// ```
    pub fn set_low_latency(&mut self, mode: Option<LowLatency>) {
        self.spin = mode.map(Spinner::new);
    }

    /// The underlying reader (for backends that keep state in it, e.g. received fds).
    pub fn reader_mut(&mut self) -> &mut R {
        &mut self.reader
    }

    /// Bytes read from the stream but not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }
}

impl<R: AsyncRead + Unpin, C: FrameCodec> Stream for StreamReceiver<R, C> {
    type Item = Result<Bytes, RecvError>;

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, RecvError>>> {
        let this = self.get_mut();
        if this.state == RecvState::Finished {
            return Poll::Ready(None);
        }
        // Checked before it is taken: `take` would write the (large) empty value back
        // on every receive.
        if this.held.is_some() {
            let held = this.held.take().flatten();
            return Poll::Ready(this.deliver(held));
        }
        let next = match this.poll_decoded(cx) {
            Poll::Ready(next) => next,
            Poll::Pending => {
                if let Some(spin) = &mut this.spin {
                    spin.on_pending(cx);
                }
                return Poll::Pending;
            }
        };
        if let Some(spin) = &mut this.spin {
            spin.on_ready();
        }
        // One unit of the task's cooperative budget per item: frames decoded from the
        // read buffer never touch the reactor, and a receive that is always ready must
        // still let other tasks (a signal handler, ...) run now and then. Taken once the
        // item is there, so a receive that waits costs none; with the budget spent, the
        // item is kept for the next call and the task yields.
        match tokio::task::coop::poll_proceed(cx) {
            Poll::Ready(coop) => coop.made_progress(),
            Poll::Pending => {
                if let Next::Frame(frame) = next {
                    this.held = Some(Some(Ok(Decoded::Frame(frame))));
                }
                return Poll::Pending;
            }
        }
        match next {
            Next::Frame(frame) => Poll::Ready(Some(Ok(frame))),
            Next::Held => {
                let held = this.held.take().flatten();
                Poll::Ready(this.deliver(held))
            }
        }
    }
}

impl<R: AsyncRead + Unpin, C: FrameCodec> StreamReceiver<R, C> {
    /// The codec's next item: decoded from the buffer if it holds one, else after
    /// reading more; once the reader reports the end, `decode_eof`'s (`None` when it
    /// finds nothing more). Any error or `None` ends the stream (see
    /// [`deliver`](Self::deliver)), so this is never called after one.
    #[inline]
    fn poll_decoded(&mut self, cx: &mut Context<'_>) -> Poll<Next> {
        loop {
            if self.eof {
                let item = self.codec.decode_eof(&mut self.buffer).transpose();
                return Poll::Ready(self.hold(item));
            }
            if self.readable {
                match self.codec.decode(&mut self.buffer) {
                    Ok(None) => {}
                    found => {
                        // Cut from an emptied buffer, a frame leaves nothing for the
                        // codec: the next receive reads at once instead of asking it.
                        self.readable = !self.buffer.is_empty();
                        return Poll::Ready(match found {
                            Ok(Some(Decoded::Frame(frame))) => Next::Frame(frame),
                            other => self.hold(other.transpose()),
                        });
                    }
                }
                self.readable = false;
            }
            // Room for at least one byte: a read of 0 bytes must mean the end.
            self.buffer.reserve(1);
            match ready!(poll_read_into(&mut self.reader, cx, &mut self.buffer)) {
                Ok(0) => self.eof = true,
                Ok(_) => {}
                Err(e) => return Poll::Ready(self.hold(Some(Err(Error::Io(e))))),
            }
            self.readable = true;
        }
    }

    /// Keep an item other than a frame for [`deliver`](Self::deliver).
    #[cold]
    fn hold(&mut self, item: Option<Result<Decoded, Error>>) -> Next {
        self.held = Some(item);
        Next::Held
    }

    /// What the codec's output means as the next item of the stream.
    fn deliver(
        &mut self,
        next: Option<Result<Decoded, Error>>,
    ) -> Option<Result<Bytes, RecvError>> {
        match next {
            Some(Ok(Decoded::Frame(frame))) => Some(Ok(frame)),
            Some(Ok(Decoded::Rejected(e))) => Some(Err(e.into())),
            Some(Ok(Decoded::Goodbye)) => {
                self.state = RecvState::Finished;
                self.peer_closed.store(true, Ordering::Release);
                None
            }
            Some(Err(e)) => {
                self.state = RecvState::Finished;
                Some(Err(match classify(e) {
                    Error::Closed => RecvError::PeerLost("the connection was reset".into()),
                    other => other.into(),
                }))
            }
            None => {
                self.state = RecvState::Finished;
                Some(Err(RecvError::PeerLost(
                    "the stream ended without a goodbye frame".into(),
                )))
            }
        }
    }

    /// After a frame: cut every further whole frame off the read buffer, without
    /// reading, until `out` holds `max` more or the buffer none. Anything but a frame
    /// is kept as the next item.
    fn take_buffered(&mut self, out: &mut Vec<Bytes>, max: usize) -> usize {
        let buffer = &mut self.buffer;
        let mut n = 0;
        while n < max {
            n += self.codec.decode_whole_frames(buffer, out, max - n);
            if n == max {
                break;
            }
            match self.codec.decode(buffer) {
                Ok(Some(Decoded::Frame(frame))) => {
                    out.push(frame);
                    n += 1;
                }
                Ok(None) => {
                    self.readable = false;
                    return n;
                }
                Ok(Some(other)) => {
                    self.held = Some(Some(Ok(other)));
                    break;
                }
                Err(e) => {
                    self.held = Some(Some(Err(e)));
                    break;
                }
            }
        }
        self.readable = !buffer.is_empty();
        n
    }
}

impl<R: AsyncRead + Send + Unpin + 'static, C: FrameCodec> RecvHalf for StreamReceiver<R, C> {
    fn info(&self) -> ChannelInfo {
        self.info.clone()
    }

    /// The next item as [`poll_next`](Stream::poll_next) gives it (reading if the
    /// buffer holds no whole frame), then every whole frame left in the read buffer.
    fn poll_recv_many(
        &mut self,
        cx: &mut Context<'_>,
        out: &mut Vec<Bytes>,
        max: usize,
    ) -> Poll<Result<usize, RecvError>> {
        if max == 0 {
            return Poll::Ready(Ok(0));
        }
        match ready!(Pin::new(&mut *self).poll_next(cx)) {
            None => Poll::Ready(Ok(0)),
            Some(Err(e)) => Poll::Ready(Err(e)),
            Some(Ok(frame)) => {
                out.push(frame);
                Poll::Ready(Ok(1 + self.take_buffered(out, max - 1)))
            }
        }
    }
}
