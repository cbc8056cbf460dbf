//! Framing: how a byte stream is cut into messages. One implementation, shared by every
//! byte-stream backend (Unix sockets, TCP, pipes, FIFOs), built on [`tokio_util::codec`].
//!
//! # Length-prefixed frames ([`LengthCodec`], the default)
//!
//! ```text
//! +------------------+----------------------------+
//! | len: u32, BE     | payload: len bytes         |   a data frame (len <= max_frame)
//! +------------------+----------------------------+
//! | 0xFF FF FF FF    |                                a goodbye: the sender closed cleanly
//! +------------------+
//!
//! "hi"  ->  00 00 00 02 68 69
//! ""    ->  00 00 00 00
//! close ->  FF FF FF FF
//! ```
//!
//! The length is checked against `max_frame` **before** any buffer is reserved: a peer
//! announcing 4 GiB gets [`Error::FrameTooLarge`] and costs no memory. The frame's bytes
//! are then skipped as they arrive (never buffered), and the next frame is delivered as
//! usual. A stream that ends without a goodbye means the peer crashed or was killed:
//! that is [`Error::PeerLost`], never a clean `None`.
//!
//! # Memory for partly received frames ([`FrameBudget`])
//!
//! A frame within `max_frame` is buffered until it is complete, so one connection can
//! hold up to `max_frame` bytes. The channels one listener accepts share a budget on
//! top of that ([`FrameConfig::listener_budget`], 256 MiB by default): a frame larger
//! than [`UNBUDGETED_FRAME`] (64 KiB) is charged to it when its length prefix arrives,
//! before room is made for it, and given back when it is complete. A connection whose
//! frame does not fit is dropped with [`Error::BudgetExceeded`]; the others go on. So
//! 100 clients that each send all but the last byte of an 8 MiB frame cost the server
//! 256 MiB, not 800 MiB.
//!
//! # Newline-delimited frames ([`LineCodec`])
//!
//! ```text
//! +------------------------------+----+
//! | payload (no 0x0A inside)     | \n |     a data frame (payload non-empty, <= max_frame)
//! +------------------------------+----+
//! | {"$ipc":"goodbye"}           | \n |     goodbye: the sender closed cleanly
//! +------------------------------+----+
//! ```
//!
//! The goodbye is itself a JSON value, so any JSON-lines reader can read the stream;
//! that exact line is reserved ([`GOODBYE_LINE`]). Blank lines are skipped. A trailing
//! `\r` is dropped, so CRLF peers work. An over-long line is discarded up to its newline
//! without being buffered and reported as [`Error::FrameTooLarge`].
//!
//! ```
//! use bytes::{Bytes, BytesMut};
//! use ipc_core::frame::{Decoded, FrameConfig, LengthCodec, Outbound};
//! use tokio_util::codec::{Decoder, Encoder};
//!
//! let mut codec = LengthCodec::new(FrameConfig::default());
//! let mut wire = BytesMut::new();
//! codec.encode(Outbound::Data(Bytes::from_static(b"hi")), &mut wire).unwrap();
//! assert_eq!(&wire[..], b"\x00\x00\x00\x02hi");
//! assert!(matches!(codec.decode(&mut wire).unwrap(), Some(Decoded::Frame(f)) if f == "hi"));
//! ```
//!
//! [`Error::FrameTooLarge`]: crate::Error::FrameTooLarge
//! [`Error::PeerLost`]: crate::Error::PeerLost
//! [`Error::BudgetExceeded`]: crate::Error::BudgetExceeded

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::error::{Error, Result};

/// Default largest frame: 8 MiB.
pub const DEFAULT_MAX_FRAME: usize = 8 << 20;

/// Largest limit a length prefix can express (`0xFFFF_FFFF` is the goodbye marker).
pub const MAX_FRAME_LIMIT: usize = (u32::MAX - 1) as usize;

/// The length-prefix value that means "goodbye, I closed cleanly".
pub const GOODBYE: u32 = u32::MAX;

/// Default [listener budget](FrameConfig::listener_budget): 256 MiB, but never less than
/// four frames of the largest size.
pub const DEFAULT_LISTENER_BUDGET: usize = 256 << 20;

/// Frames up to this size (64 KiB) are buffered without charging a listener's
/// [`FrameBudget`]: every connection may hold that much of a partly received frame.
pub const UNBUDGETED_FRAME: usize = 64 * 1024;

/// Limits that apply to one channel (and, for [`listener_budget`](Self::listener_budget),
/// to all the channels one listener accepts). Both ends should use the same
/// `max_frame`.
///
/// ```
/// use ipc_core::frame::FrameConfig;
/// let cfg = FrameConfig::builder().max_frame(64 * 1024).build();
/// assert_eq!(cfg.max_frame(), 65536);
/// assert_eq!(FrameConfig::default().max_frame(), 8 << 20);
/// assert_eq!(FrameConfig::default().listener_budget(), 256 << 20);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameConfig {
    max_frame: usize,
    listener_budget: Option<usize>,
}

impl Default for FrameConfig {
    fn default() -> Self {
        FrameConfig {
            max_frame: DEFAULT_MAX_FRAME,
            listener_budget: None,
        }
    }
}

impl FrameConfig {
    /// Start from the defaults.
    pub fn builder() -> FrameConfigBuilder {
        FrameConfigBuilder(FrameConfig::default())
    }

    /// The largest payload accepted or sent, in bytes.
    pub fn max_frame(&self) -> usize {
        self.max_frame
    }

    /// Bytes that all the channels accepted by one listener may hold, together, in
    /// frames they have started but not finished receiving (see [`FrameBudget`]).
    /// Default: [`DEFAULT_LISTENER_BUDGET`] (256 MiB), or `4 * max_frame` when that is
    /// more. Only listeners use it; a channel from `connect` or `spawn` is bounded by
    /// `max_frame` alone.
    pub fn listener_budget(&self) -> usize {
        self.listener_budget
            .unwrap_or_else(|| DEFAULT_LISTENER_BUDGET.max(self.max_frame.saturating_mul(4)))
    }

    /// The listener budget when one was set, `None` for the default.
    pub(crate) fn explicit_listener_budget(&self) -> Option<usize> {
        self.listener_budget
    }
}

/// Builder for [`FrameConfig`].
#[derive(Debug, Clone, Copy)]
pub struct FrameConfigBuilder(FrameConfig);

impl FrameConfigBuilder {
    /// Largest payload in bytes, clamped to [`MAX_FRAME_LIMIT`].
    pub fn max_frame(mut self, bytes: usize) -> Self {
        self.0.max_frame = bytes.min(MAX_FRAME_LIMIT);
        self
    }

    /// Budget in bytes for partly received frames, shared by all the channels one
    /// listener accepts (see [`FrameConfig::listener_budget`]). A budget smaller than
    /// `max_frame` refuses frames between the two sizes on accepted channels.
    pub fn listener_budget(mut self, bytes: usize) -> Self {
        self.0.listener_budget = Some(bytes);
        self
    }

    /// Finish.
    pub fn build(self) -> FrameConfig {
        self.0
    }
}

/// Memory shared by the channels of one listener for frames they have started but not
/// finished receiving, so that many clients each sending most of a large frame cannot
/// make the server hold `connections x max_frame` bytes.
///
/// A listener makes one from its [`FrameConfig::listener_budget`] and gives it to the
/// [`LengthCodec`] of every channel it accepts. When a frame larger than
/// [`UNBUDGETED_FRAME`] begins to arrive, the codec reserves the frame's whole length
/// from the budget before it makes room for it, and returns it when the frame is
/// complete or the channel is dropped. A frame that does not fit is not buffered: that
/// channel's `recv` returns [`Error::BudgetExceeded`] and the channel is finished (drop
/// it to close the connection). Other channels lose nothing.
///
/// ```
/// use ipc_core::frame::{FrameBudget, FrameConfig};
/// let cfg = FrameConfig::builder().listener_budget(32 << 20).build();
/// let budget = FrameBudget::for_listener(&cfg);
/// assert_eq!((budget.limit(), budget.in_use()), (32 << 20, 0));
/// ```
///
/// [`Error::BudgetExceeded`]: crate::Error::BudgetExceeded
#[derive(Debug, Clone)]
pub struct FrameBudget {
    inner: Arc<BudgetInner>,
}

#[derive(Debug)]
struct BudgetInner {
    limit: usize,
    in_use: AtomicUsize,
}

impl FrameBudget {
    /// A budget of `limit` bytes, nothing in use.
    ///
    /// ```
    /// let budget = ipc_core::frame::FrameBudget::new(1 << 20);
    /// assert_eq!(budget.limit(), 1 << 20);
    /// ```
    pub fn new(limit: usize) -> Self {
        FrameBudget {
            inner: Arc::new(BudgetInner {
                limit,
                in_use: AtomicUsize::new(0),
            }),
        }
    }

    /// The budget a listener with `config` shares among its channels.
    ///
    /// ```
    /// let cfg = ipc_core::FrameConfig::default();
    /// let budget = ipc_core::frame::FrameBudget::for_listener(&cfg);
    /// assert_eq!(budget.limit(), cfg.listener_budget());
    /// ```
    pub fn for_listener(config: &FrameConfig) -> Self {
        FrameBudget::new(config.listener_budget())
    }

    /// The most bytes that may be held at once.
    ///
    /// ```
    /// assert_eq!(ipc_core::frame::FrameBudget::new(10).limit(), 10);
    /// ```
    pub fn limit(&self) -> usize {
        self.inner.limit
    }

    /// Bytes held now by partly received frames.
    ///
    /// ```
    /// assert_eq!(ipc_core::frame::FrameBudget::new(10).in_use(), 0);
    /// ```
    pub fn in_use(&self) -> usize {
        self.inner.in_use.load(Ordering::Acquire)
    }

    /// Take `bytes` if they fit; on failure, how many bytes are in use.
    fn try_take(&self, bytes: usize) -> std::result::Result<(), usize> {
        let limit = self.inner.limit;
        self.inner
            .in_use
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|&total| total <= limit)
            })
            .map(drop)
    }

    /// Give back `bytes` taken before.
    fn give_back(&self, bytes: usize) {
        self.inner.in_use.fetch_sub(bytes, Ordering::AcqRel);
    }
}

/// The line that means "goodbye" in newline-delimited framing.
pub const GOODBYE_LINE: &[u8] = br#"{"$ipc":"goodbye"}"#;

/// What a frame decoder yields.
#[derive(Debug)]
pub enum Decoded {
    /// A complete data frame.
    Frame(Bytes),
    /// The peer closed cleanly; no more frames follow.
    Goodbye,
    /// One frame was rejected (too large, malformed). The stream goes on.
    Rejected(Error),
}

/// What a frame encoder accepts.
#[derive(Debug, Clone)]
pub enum Outbound {
    /// A data frame.
    Data(Bytes),
    /// The clean-close marker.
    Goodbye,
}

/// Frames at least this large are read into room reserved for them as a whole (see
/// [`LengthCodec`]'s decoder) and written from the payload without copying it (see
/// [`FrameCodec::wrapping`]).
///
/// ```
/// assert_eq!(ipc_core::frame::LARGE_FRAME, 16 * 1024);
/// ```
pub const LARGE_FRAME: usize = 16 * 1024;

/// How a data frame's payload sits on the wire: `prefix ++ payload ++ suffix`. A codec
/// that can say so (see [`FrameCodec::wrapping`]) lets the sender write a large payload
/// straight from its `Bytes` with one `writev` instead of copying it into a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wrapping {
    prefix: [u8; 4],
    prefix_len: usize,
    suffix: &'static [u8],
}

impl Wrapping {
    /// A big-endian `u32` length before the payload, nothing after.
    ///
    /// ```
    /// let w = ipc_core::frame::Wrapping::length_prefix(2);
    /// assert_eq!((w.prefix(), w.suffix()), (&[0u8, 0, 0, 2][..], &b""[..]));
    /// ```
    pub fn length_prefix(len: u32) -> Self {
        Wrapping {
            prefix: len.to_be_bytes(),
            prefix_len: 4,
            suffix: b"",
        }
    }

    /// Nothing before the payload, `suffix` after it (e.g. `b"\n"`).
    pub fn suffix_only(suffix: &'static [u8]) -> Self {
        Wrapping {
            prefix: [0; 4],
            prefix_len: 0,
            suffix,
        }
    }

    /// Bytes before the payload.
    pub fn prefix(&self) -> &[u8] {
        &self.prefix[..self.prefix_len]
    }

    /// Bytes after the payload.
    pub fn suffix(&self) -> &'static [u8] {
        self.suffix
    }
}

/// A codec usable by [`StreamChannel`](crate::stream::StreamChannel): decodes
/// [`Decoded`], encodes [`Outbound`], and knows its frame limit.
pub trait FrameCodec:
    Decoder<Item = Decoded, Error = Error>
    + Encoder<Outbound, Error = Error>
    + Clone
    + Send
    + Unpin
    + 'static
{
    /// The largest payload this codec accepts.
    fn max_frame(&self) -> usize;

    /// If a data frame is `prefix ++ payload ++ suffix` (fixed bytes around an unchanged
    /// payload), say so, after the same checks `encode` makes. A sender then writes large
    /// payloads without copying them. `None` (the default): always use `encode`.
    fn wrapping(&self, payload: &[u8]) -> Option<Result<Wrapping>> {
        let _ = payload;
        None
    }

    /// Cut the whole data frames at the front of `src` that `decode` would give one
    /// by one, at most `max`, all at once: append them to `out` and return how many.
    /// Stop before anything else (a partial frame, a goodbye, a frame to reject, one
    /// the codec treats specially); `decode` takes it from there. The receiver uses it
    /// to hand out a batch ([`RecvManyExt`](crate::RecvManyExt)) at a few
    /// instructions per frame. The default cuts nothing (0): `decode` does it all.
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use ipc_core::frame::{FrameCodec, LengthCodec};
    /// let mut codec = LengthCodec::new(Default::default());
    /// let mut wire = BytesMut::from(&b"\0\0\0\x01a\0\0\0\x02bc\0\0\0\x05de"[..]);
    /// let mut out = Vec::new();
    /// assert_eq!(codec.decode_whole_frames(&mut wire, &mut out, 10), 2);
    /// assert_eq!(out, ["a", "bc"]);
    /// assert_eq!(&wire[..], b"\0\0\0\x05de"); // the partial frame stays
    /// ```
    fn decode_whole_frames(
        &mut self,
        src: &mut BytesMut,
        out: &mut Vec<Bytes>,
        max: usize,
    ) -> usize {
        let _ = (src, out, max);
        0
    }
}

#[derive(Debug, Clone, Copy)]
enum LengthState {
    Head,
    Body(usize),
    Skip(u64),
}

/// Length-prefixed framing: `u32` big-endian length, then the payload. See the
/// [module docs](self) for the wire diagram.
///
/// With a [`FrameBudget`] ([`with_budget`](Self::with_budget)), a partly received frame
/// larger than [`UNBUDGETED_FRAME`] is charged to the budget before room is made for
/// it. A clone shares the budget but not the charge of the original.
#[derive(Debug)]
pub struct LengthCodec {
    config: FrameConfig,
    state: LengthState,
    budget: Option<FrameBudget>,
    /// Bytes taken from `budget` for the frame being received.
    charged: usize,
}

impl Clone for LengthCodec {
    fn clone(&self) -> Self {
        LengthCodec {
            config: self.config,
            state: self.state,
            budget: self.budget.clone(),
            charged: 0,
        }
    }
}

impl Drop for LengthCodec {
    fn drop(&mut self) {
        self.release();
    }
}

impl LengthCodec {
    /// A codec with the given limits.
    ///
    /// ```
    /// let codec = ipc_core::frame::LengthCodec::new(Default::default());
    /// # let _ = codec;
    /// ```
    pub fn new(config: FrameConfig) -> Self {
        LengthCodec {
            config,
            state: LengthState::Head,
            budget: None,
            charged: 0,
        }
    }

    /// Charge partly received large frames to `budget`, shared with other codecs
    /// (see [`FrameBudget`]).
    ///
    /// ```
    /// use ipc_core::frame::{FrameBudget, FrameConfig, LengthCodec};
    /// let budget = FrameBudget::new(64 << 20);
    /// let codec = LengthCodec::new(FrameConfig::default()).with_budget(budget.clone());
    /// # let _ = codec;
    /// ```
    pub fn with_budget(mut self, budget: FrameBudget) -> Self {
        self.release();
        self.budget = Some(budget);
        self
    }

    /// Before buffering a frame of `len` bytes: take it from the budget (once per
    /// frame), or fail when it does not fit.
    fn charge(&mut self, len: usize) -> Result<()> {
        let Some(budget) = &self.budget else {
            return Ok(());
        };
        if len <= UNBUDGETED_FRAME || self.charged >= len {
            return Ok(());
        }
        let more = len - self.charged;
        budget
            .try_take(more)
            .map_err(|in_use| Error::BudgetExceeded {
                len: len as u64,
                limit: budget.limit(),
                in_use,
            })?;
        self.charged = len;
        Ok(())
    }

    /// Give back what the current frame holds of the budget.
    fn release(&mut self) {
        if let Some(budget) = &self.budget {
            if self.charged > 0 {
                budget.give_back(self.charged);
            }
        }
        self.charged = 0;
    }
}

impl LengthCodec {
    /// The length prefix of `payload`, checked against the limit.
    fn wrap(&self, payload: &[u8]) -> Result<Wrapping> {
        let max = self.config.max_frame;
        if payload.len() > max {
            return Err(Error::FrameTooLarge {
                len: payload.len() as u64,
                max,
            });
        }
        Ok(Wrapping::length_prefix(payload.len() as u32))
    }
}

impl FrameCodec for LengthCodec {
    fn max_frame(&self) -> usize {
        self.config.max_frame
    }

    fn wrapping(&self, payload: &[u8]) -> Option<Result<Wrapping>> {
        Some(self.wrap(payload))
    }

    /// Small whole frames (the fast case of `decode`): the run of them is cut off the
    /// buffer in one step and handed out as slices of it.
    fn decode_whole_frames(
        &mut self,
        src: &mut BytesMut,
        out: &mut Vec<Bytes>,
        max: usize,
    ) -> usize {
        if !matches!(self.state, LengthState::Head) {
            return 0;
        }
        let limit = self.config.max_frame.min(LARGE_FRAME - 1);
        // First find where the run of whole small frames ends...
        let (mut end, mut n) = (0, 0);
        while n < max {
            let Some(head) = src.get(end..end + 4) else {
                break;
            };
            let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
            if len > limit || src.len() - end - 4 < len {
                break;
            }
            end += 4 + len;
            n += 1;
        }
        if n == 0 {
            return 0;
        }
        // ...then cut it once and hand out each payload as a slice of it.
        let run = src.split_to(end).freeze();
        out.reserve(n);
        let mut at = 0;
        while at < end {
            let len = u32::from_be_bytes([run[at], run[at + 1], run[at + 2], run[at + 3]]) as usize;
            out.push(run.slice(at + 4..at + 4 + len));
            at += 4 + len;
        }
        n
    }
}

impl Decoder for LengthCodec {
    type Item = Decoded;
    type Error = Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Decoded>> {
        loop {
            match self.state {
                LengthState::Skip(remaining) => {
                    let n = remaining.min(src.len() as u64);
                    src.advance(n as usize);
                    if n < remaining {
                        self.state = LengthState::Skip(remaining - n);
                        return Ok(None);
                    }
                    self.state = LengthState::Head;
                }
                LengthState::Head => {
                    if src.len() < 4 {
                        return Ok(None);
                    }
                    let len = u32::from_be_bytes([src[0], src[1], src[2], src[3]]);
                    // The usual case, a whole small frame in the buffer: one cut. (The
                    // goodbye and oversize lengths are above any `max_frame`.)
                    let whole = 4 + len as usize;
                    if (len as usize) < LARGE_FRAME
                        && len as usize <= self.config.max_frame
                        && src.len() >= whole
                    {
                        // (The prefix is dropped from the frozen `Bytes`: a pointer
                        // bump, where `BytesMut::advance` checks its kind first.)
                        let mut frame = src.split_to(whole).freeze();
                        frame.advance(4);
                        return Ok(Some(Decoded::Frame(frame)));
                    }
                    src.advance(4);
                    if len == GOODBYE {
                        return Ok(Some(Decoded::Goodbye));
                    }
                    let max = self.config.max_frame;
                    if len as usize > max {
                        self.state = LengthState::Skip(u64::from(len));
                        return Ok(Some(Decoded::Rejected(Error::FrameTooLarge {
                            len: u64::from(len),
                            max,
                        })));
                    }
                    self.state = LengthState::Body(len as usize);
                }
                LengthState::Body(len) => {
                    if src.len() < len {
                        // Within the frame limit and, for a large frame on a listener's
                        // channel, within the listener's budget: reserving is bounded.
                        self.charge(len)?;
                        src.reserve(len - src.len());
                        return Ok(None);
                    }
                    self.state = LengthState::Head;
                    let frame = src.split_to(len).freeze();
                    self.release();
                    // A large frame was just cut off the front of the read buffer, which
                    // now holds only what followed it (usually nothing). Make room for
                    // another frame this size now: that costs a fresh allocation at
                    // most, where leaving it to the next read would read the next frame
                    // in pieces and copy the first piece when the buffer grows. Bounded
                    // by the frame limit, like `len`. Not on a listener's channel: room
                    // kept there would be memory outside the listener's budget.
                    if self.budget.is_none()
                        && len >= LARGE_FRAME
                        && src.capacity() - src.len() < len + 4
                    {
                        src.reserve(len + 4);
                    }
                    return Ok(Some(Decoded::Frame(frame)));
                }
            }
        }
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Decoded>> {
        if let Some(item) = self.decode(src)? {
            return Ok(Some(item));
        }
        match self.state {
            LengthState::Head if src.is_empty() => Ok(None),
            LengthState::Head => Err(Error::PeerLost(format!(
                "stream ended inside a length prefix ({} of 4 bytes)",
                src.len()
            ))),
            LengthState::Body(len) => Err(Error::PeerLost(format!(
                "stream ended inside a frame ({} of {len} bytes)",
                src.len()
            ))),
            LengthState::Skip(left) => Err(Error::PeerLost(format!(
                "stream ended inside a skipped oversize frame ({left} bytes missing)"
            ))),
        }
    }
}

impl Encoder<Outbound> for LengthCodec {
    type Error = Error;

    fn encode(&mut self, item: Outbound, dst: &mut BytesMut) -> Result<()> {
        match item {
            Outbound::Goodbye => dst.put_u32(GOODBYE),
            Outbound::Data(payload) => {
                self.wrap(&payload)?;
                dst.reserve(4 + payload.len());
                // A fixed-size store, where copying the wrapping's prefix slice is a
                // `memcpy` call per frame.
                dst.put_u32(payload.len() as u32);
                dst.extend_from_slice(&payload);
            }
        }
        Ok(())
    }
}

/// Newline-delimited framing: each frame is one line. See the [module docs](self).
///
/// ```
/// use bytes::{Bytes, BytesMut};
/// use ipc_core::frame::{Decoded, FrameConfig, LineCodec, Outbound};
/// use tokio_util::codec::{Decoder, Encoder};
///
/// let mut codec = LineCodec::new(FrameConfig::default());
/// let mut wire = BytesMut::from(&b"{\"a\":1}\r\n"[..]);
/// assert!(matches!(codec.decode(&mut wire).unwrap(), Some(Decoded::Frame(f)) if f == "{\"a\":1}"));
/// // A payload with a newline inside cannot be a line.
/// assert!(codec.encode(Outbound::Data(Bytes::from_static(b"a\nb")), &mut wire).is_err());
/// ```
#[derive(Debug, Clone)]
pub struct LineCodec {
    config: FrameConfig,
    /// How far `src` has been searched for `\n` already.
    scanned: usize,
    /// Bytes of an over-long line thrown away so far (`Some` while discarding).
    discarding: Option<u64>,
}

impl LineCodec {
    /// A codec with the given limits (`max_frame` is the longest line, without `\n`).
    pub fn new(config: FrameConfig) -> Self {
        LineCodec {
            config,
            scanned: 0,
            discarding: None,
        }
    }
}

impl LineCodec {
    /// The newline after `payload`, once the payload is checked: within the limit,
    /// non-empty, no `\n` inside.
    fn wrap(&self, line: &[u8]) -> Result<Wrapping> {
        let max = self.config.max_frame;
        if line.len() > max {
            return Err(Error::FrameTooLarge {
                len: line.len() as u64,
                max,
            });
        }
        if line.is_empty() || line.contains(&b'\n') {
            return Err(Error::refused(
                "the outgoing line",
                "a line frame must be non-empty and contain no '\\n'",
            ));
        }
        Ok(Wrapping::suffix_only(b"\n"))
    }
}

impl FrameCodec for LineCodec {
    fn max_frame(&self) -> usize {
        self.config.max_frame
    }

    fn wrapping(&self, payload: &[u8]) -> Option<Result<Wrapping>> {
        Some(self.wrap(payload))
    }
}

impl Decoder for LineCodec {
    type Item = Decoded;
    type Error = Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Decoded>> {
        let max = self.config.max_frame;
        loop {
            let newline = memchr::memchr(b'\n', &src[self.scanned..]);
            if let Some(dropped) = self.discarding {
                match newline {
                    Some(i) => {
                        let at = self.scanned + i;
                        src.advance(at + 1);
                        self.scanned = 0;
                        self.discarding = None;
                        return Ok(Some(Decoded::Rejected(Error::FrameTooLarge {
                            len: dropped + at as u64,
                            max,
                        })));
                    }
                    None => {
                        self.discarding = Some(dropped + src.len() as u64);
                        src.clear();
                        self.scanned = 0;
                        return Ok(None);
                    }
                }
            }
            match newline {
                Some(i) => {
                    let at = self.scanned + i;
                    self.scanned = 0;
                    let mut line = src.split_to(at + 1);
                    line.truncate(at);
                    if line.last() == Some(&b'\r') {
                        line.truncate(at - 1);
                    }
                    if line[..] == *GOODBYE_LINE {
                        return Ok(Some(Decoded::Goodbye));
                    }
                    if line.len() > max {
                        return Ok(Some(Decoded::Rejected(Error::FrameTooLarge {
                            len: line.len() as u64,
                            max,
                        })));
                    }
                    if line.is_empty() {
                        continue; // blank line: skipped
                    }
                    return Ok(Some(Decoded::Frame(line.freeze())));
                }
                // +1 for a '\r'; the goodbye line is always accepted.
                None if src.len() > max.max(GOODBYE_LINE.len()) + 1 => {
                    // Too long already and no newline yet: drop it and keep dropping.
                    self.discarding = Some(0);
                }
                None => {
                    self.scanned = src.len();
                    return Ok(None);
                }
            }
        }
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Decoded>> {
        if let Some(item) = self.decode(src)? {
            return Ok(Some(item));
        }
        if src.is_empty() && self.discarding.is_none() {
            Ok(None)
        } else {
            Err(Error::PeerLost(format!(
                "stream ended inside a line ({} bytes without a newline)",
                src.len()
            )))
        }
    }
}

impl Encoder<Outbound> for LineCodec {
    type Error = Error;

    fn encode(&mut self, item: Outbound, dst: &mut BytesMut) -> Result<()> {
        match item {
            Outbound::Goodbye => {
                dst.extend_from_slice(GOODBYE_LINE);
                dst.put_u8(b'\n');
            }
            Outbound::Data(line) => {
                let wrap = self.wrap(&line)?;
                dst.reserve(line.len() + 1);
                dst.extend_from_slice(&line);
                dst.extend_from_slice(wrap.suffix());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode_all<C: Decoder<Item = Decoded, Error = Error>>(
        codec: &mut C,
        wire: &[u8],
        chunk: usize,
    ) -> Vec<Decoded> {
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for piece in wire.chunks(chunk.max(1)) {
            buf.extend_from_slice(piece);
            while let Some(d) = codec.decode(&mut buf).expect("decode") {
                out.push(d);
            }
        }
        out
    }

    #[test]
    fn oversize_is_rejected_before_allocation_and_skipped() {
        let mut codec = LengthCodec::new(FrameConfig::builder().max_frame(16).build());
        let mut wire = BytesMut::new();
        wire.put_u32(1_000_000);
        let mut buf = BytesMut::with_capacity(8);
        buf.extend_from_slice(&wire);
        match codec.decode(&mut buf).expect("decode") {
            Some(Decoded::Rejected(Error::FrameTooLarge { len, max })) => {
                assert_eq!((len, max), (1_000_000, 16));
            }
            other => panic!("expected rejection, got {other:?}"),
        }
        assert!(
            buf.capacity() < 1024,
            "no buffer was reserved for the frame"
        );
        // Feed the skipped bytes in chunks, then a good frame.
        let mut skipped = 0;
        while skipped < 1_000_000 {
            buf.extend_from_slice(&[0u8; 4096][..4096.min(1_000_000 - skipped)]);
            skipped += 4096.min(1_000_000 - skipped);
            assert!(codec.decode(&mut buf).expect("decode").is_none());
            assert!(buf.capacity() < 64 * 1024);
        }
        buf.extend_from_slice(b"\x00\x00\x00\x02ok");
        assert!(
            matches!(codec.decode(&mut buf).expect("decode"), Some(Decoded::Frame(f)) if f == "ok")
        );
    }

    #[test]
    fn large_partial_frames_are_charged_to_the_shared_budget() {
        let budget = FrameBudget::new(3 << 20);
        let config = FrameConfig::default();
        let mut a = LengthCodec::new(config).with_budget(budget.clone());
        let mut b = a.clone();
        let mut c = a.clone();
        let head = |len: u32| BytesMut::from(&len.to_be_bytes()[..]);

        // A small frame in progress costs nothing.
        let mut small = head(UNBUDGETED_FRAME as u32);
        assert!(c.decode(&mut small).expect("decode").is_none());
        assert_eq!(budget.in_use(), 0);
        drop(c);

        let mut buf_a = head(2 << 20);
        assert!(a.decode(&mut buf_a).expect("decode").is_none());
        assert_eq!(budget.in_use(), 2 << 20);
        // Asking again for the same frame (more bytes arrived) charges nothing more.
        buf_a.extend_from_slice(&[7u8; 1000]);
        assert!(a.decode(&mut buf_a).expect("decode").is_none());
        assert_eq!(budget.in_use(), 2 << 20);

        // The second does not fit: refused before any room is made for it.
        let mut buf_b = head(2 << 20);
        match b.decode(&mut buf_b) {
            Err(Error::BudgetExceeded { len, limit, in_use }) => {
                assert_eq!((len, limit, in_use), (2 << 20, 3 << 20, 2 << 20));
            }
            other => panic!("expected BudgetExceeded, got {other:?}"),
        }
        assert!(buf_b.capacity() < 1 << 20, "no room was made");
        assert_eq!(budget.in_use(), 2 << 20);

        // Completing the frame gives the budget back.
        buf_a.extend_from_slice(&vec![7u8; (2 << 20) - 1000]);
        assert!(matches!(a.decode(&mut buf_a), Ok(Some(Decoded::Frame(f))) if f.len() == 2 << 20));
        assert_eq!(budget.in_use(), 0);

        // So does dropping a codec in the middle of a frame.
        let mut buf_a = head(3 << 20);
        assert!(a.decode(&mut buf_a).expect("decode").is_none());
        assert_eq!(budget.in_use(), 3 << 20);
        drop(a);
        assert_eq!(budget.in_use(), 0);
    }

    #[test]
    fn send_side_refuses_oversize_without_writing() {
        let mut codec = LengthCodec::new(FrameConfig::builder().max_frame(3).build());
        let mut dst = BytesMut::new();
        let err = codec
            .encode(Outbound::Data(Bytes::from_static(b"four")), &mut dst)
            .expect_err("too big");
        assert!(matches!(err, Error::FrameTooLarge { len: 4, max: 3 }));
        assert!(dst.is_empty());
    }

    #[test]
    fn goodbye_and_eof_inside_frame() {
        let mut codec = LengthCodec::new(FrameConfig::default());
        let mut buf = BytesMut::from(&b"\xff\xff\xff\xff"[..]);
        assert!(matches!(codec.decode(&mut buf), Ok(Some(Decoded::Goodbye))));
        let mut buf = BytesMut::from(&b"\x00\x00\x00\x05ab"[..]);
        assert!(matches!(
            codec.decode_eof(&mut buf),
            Err(Error::PeerLost(_))
        ));
    }

    /// A line this side will not send is a refusal (nothing written), not a decode
    /// error: nothing arrived broken.
    #[test]
    fn line_codec_refuses_to_send_a_line_with_a_newline() {
        use tokio_util::codec::Encoder;
        let mut codec = LineCodec::new(FrameConfig::default());
        let mut wire = BytesMut::new();
        let e = codec
            .encode(Outbound::Data(Bytes::from_static(b"a\nb")), &mut wire)
            .expect_err("a line with a newline inside cannot be sent");
        assert!(e.to_string().contains("nothing was sent"), "{e}");
        assert!(!e.is_fatal(), "{e}");
        assert!(wire.is_empty());
    }

    #[test]
    fn line_codec_discards_long_lines_then_continues() {
        let mut codec = LineCodec::new(FrameConfig::builder().max_frame(8).build());
        let mut wire = vec![b'x'; 100];
        wire.extend_from_slice(b"\nshort\n\n\r\n");
        wire.extend_from_slice(GOODBYE_LINE);
        wire.push(b'\n');
        let out = decode_all(&mut codec, &wire, 7);
        assert!(matches!(
            out[0],
            Decoded::Rejected(Error::FrameTooLarge { len: 100, max: 8 })
        ));
        assert!(matches!(&out[1], Decoded::Frame(f) if f == "short"));
        assert!(matches!(out[2], Decoded::Goodbye));
        assert_eq!(out.len(), 3);
    }

    proptest! {
        #[test]
        fn length_codec_never_panics_nor_overallocates(
            data in proptest::collection::vec(any::<u8>(), 0..4096),
            chunk in 1usize..64,
        ) {
            let max = 256;
            let mut codec = LengthCodec::new(FrameConfig::builder().max_frame(max).build());
            let mut buf = BytesMut::new();
            for piece in data.chunks(chunk) {
                buf.extend_from_slice(piece);
                while let Some(d) = codec.decode(&mut buf).expect("decode never fails") {
                    if let Decoded::Frame(f) = d { prop_assert!(f.len() <= max); }
                }
                prop_assert!(buf.capacity() <= 4096 + max + 64);
            }
            let _ = codec.decode_eof(&mut buf);
        }

        #[test]
        fn line_codec_never_panics_nor_overbuffers(
            data in proptest::collection::vec(any::<u8>(), 0..4096),
            chunk in 1usize..64,
        ) {
            let max = 32;
            let mut codec = LineCodec::new(FrameConfig::builder().max_frame(max).build());
            let mut buf = BytesMut::new();
            for piece in data.chunks(chunk) {
                buf.extend_from_slice(piece);
                while let Some(d) = codec.decode(&mut buf).expect("decode never fails") {
                    if let Decoded::Frame(f) = d { prop_assert!(f.len() <= max); }
                }
                prop_assert!(buf.len() <= max + 2 + chunk);
            }
            let _ = codec.decode_eof(&mut buf);
        }

        #[test]
        fn length_codec_round_trips(frames in proptest::collection::vec(
            proptest::collection::vec(any::<u8>(), 0..300), 0..20), chunk in 1usize..50) {
            let mut codec = LengthCodec::new(FrameConfig::builder().max_frame(300).build());
            let mut wire = BytesMut::new();
            for f in &frames {
                codec.encode(Outbound::Data(Bytes::from(f.clone())), &mut wire).expect("encode");
            }
            let out = decode_all(&mut codec, &wire, chunk);
            let got: Vec<Vec<u8>> = out.into_iter().map(|d| match d {
                Decoded::Frame(f) => f.to_vec(),
                other => panic!("unexpected {other:?}"),
            }).collect();
            prop_assert_eq!(got, frames);
        }

        #[test]
        fn cutting_whole_frames_in_a_batch_gives_what_decode_gives(
            lens in proptest::collection::vec(
                prop_oneof![
                    8 => 0usize..80,
                    1 => Just(LARGE_FRAME + 3),
                    1 => Just(LARGE_FRAME * 2 + 1),
                    1 => Just(usize::MAX),
                ],
                0..30,
            ),
            chunk in 1usize..200,
            max in 1usize..8,
        ) {
            // usize::MAX stands for a goodbye; LARGE_FRAME * 2 + 1 is over the limit.
            let mut wire = Vec::new();
            for (i, &len) in lens.iter().enumerate() {
                if len == usize::MAX {
                    wire.extend_from_slice(&GOODBYE.to_be_bytes());
                    continue;
                }
                wire.extend_from_slice(&(len as u32).to_be_bytes());
                wire.extend((0..len).map(|j| (i + j) as u8));
            }
            let config = FrameConfig::builder().max_frame(LARGE_FRAME * 2).build();
            let describe = |d: Decoded| match d {
                Decoded::Frame(f) => format!("frame {f:?}"),
                Decoded::Goodbye => "goodbye".to_string(),
                Decoded::Rejected(e) => format!("rejected {e}"),
            };
            let mut one = LengthCodec::new(config);
            let expected: Vec<String> =
                decode_all(&mut one, &wire, chunk).into_iter().map(describe).collect();
            let mut batched = LengthCodec::new(config);
            let mut buf = BytesMut::new();
            let mut got = Vec::new();
            for piece in wire.chunks(chunk) {
                buf.extend_from_slice(piece);
                loop {
                    let mut frames = Vec::new();
                    let n = batched.decode_whole_frames(&mut buf, &mut frames, max);
                    prop_assert_eq!(n, frames.len());
                    prop_assert!(n <= max);
                    got.extend(frames.into_iter().map(|f| describe(Decoded::Frame(f))));
                    match batched.decode(&mut buf).expect("decode") {
                        Some(d) => got.push(describe(d)),
                        None if n > 0 => {}
                        None => break,
                    }
                }
            }
            prop_assert_eq!(got, expected);
        }
    }
}
