//! How the cases' payloads travel: as they are, or each one as a JSON string for a
//! transport whose frames must be JSON texts (Node's channel).
//!
//! In [`Frames::JsonStrings`] mode both ends of a case wrap their channel
//! ([`Frames::wrap`]) so that every payload is sent as one JSON string holding one
//! character per byte (U+0000..U+00FF, Latin-1), and decoded back on receipt. Every
//! line on the wire is then a JSON text Node's `JSON.parse` accepts
//! (`Buffer.from(JSON.parse(line), 'latin1')` is the payload), and every case runs
//! unchanged on the payload level: binary payloads, empty payloads, postcard frames, rpc
//! frames.
//!
//! The payloads the cases generate ([`Frames::payload`]) are "plain" in JSON mode: only
//! printable ASCII that needs no escaping, so a payload of `n` bytes is a frame of
//! exactly `n + 2` bytes on the wire ([`Frames::wire_len`]), and the size-sensitive
//! cases (a frame of exactly the limit, one byte over it) still mean what they say.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::{Sink, SinkExt, Stream, StreamExt};

use crate::error::{Error, RecvError, Result, SendError};
use crate::{Channel, ChannelInfo, Joined, RecvHalf, SendHalf};

use super::{fail, Outcome};

/// How a case's payloads are carried on the transport under test.
///
/// In JSON mode both ends of a case wrap their channel ([`Frames::wrap`]): every
/// payload is sent as one JSON string of one Latin-1 character per byte, so every line
/// is a JSON text Node's `JSON.parse` accepts, and every case runs unchanged on the
/// payload level (binary, empty, postcard and rpc payloads included). The payloads the
/// cases generate ([`Frames::payload`]) are plain ASCII in that mode: `n` bytes are
/// exactly `n + 2` on the wire ([`Frames::wire_len`]), so "a frame of exactly the
/// limit" still is one.
///
/// ```
/// use ipc_core::testkit::Frames;
/// assert_eq!(Frames::Bytes.wire_len(10), 10);
/// assert_eq!(Frames::JsonStrings.wire_len(10), 12); // the two quotes
/// assert_eq!(Frames::JsonStrings.payload(3, 10).len(), 10);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Frames {
    /// Every payload is one frame, byte for byte (the default).
    #[default]
    Bytes,
    /// Every payload is one JSON string, one Latin-1 character per byte: for a
    /// transport whose frames must be JSON texts (`node`).
    JsonStrings,
}

/// The 64 characters of the plain JSON-mode payloads (none needs escaping in JSON).
const PLAIN: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

impl Frames {
    /// The value of the testkit's frames env var for this mode.
    pub(crate) fn env_value(self) -> &'static str {
        match self {
            Frames::Bytes => "bytes",
            Frames::JsonStrings => "json",
        }
    }

    /// The mode named by the testkit's frames env var (bytes when unset).
    pub(crate) fn from_env_value(value: Option<&str>) -> Outcome<Frames> {
        match value {
            None | Some("bytes") => Ok(Frames::Bytes),
            Some("json") => Ok(Frames::JsonStrings),
            Some(other) => Err(fail(format!(
                "unknown testkit frames mode {other:?} (expected \"bytes\" or \"json\")"
            ))),
        }
    }

    /// Bytes on the wire for a generated payload of `payload_len` bytes.
    pub fn wire_len(self, payload_len: usize) -> usize {
        match self {
            Frames::Bytes => payload_len,
            Frames::JsonStrings => payload_len + 2,
        }
    }

    /// The generated payload length whose frame is `wire_len` bytes on the wire.
    pub fn payload_len(self, wire_len: usize) -> usize {
        match self {
            Frames::Bytes => wire_len,
            Frames::JsonStrings => wire_len.saturating_sub(2),
        }
    }

    /// Payload `seq` of exactly `size` bytes (at least 4): its sequence number, then a
    /// fill that depends on it. Any byte value in [`Frames::Bytes`] mode; plain
    /// printable ASCII in JSON mode, so a payload of `n` bytes is `n + 2` on the wire.
    ///
    /// ```
    /// use ipc_core::testkit::Frames;
    /// let p = Frames::JsonStrings.payload(7, 100);
    /// assert!(p.iter().all(|b| b.is_ascii_alphanumeric() || b"-_".contains(b)));
    /// assert_eq!(Frames::JsonStrings.seq_of(&p), Some(7));
    /// assert_eq!(Frames::Bytes.seq_of(&Frames::Bytes.payload(7, 100)), Some(7));
    /// ```
    pub fn payload(self, seq: u64, size: usize) -> Bytes {
        let size = size.max(4);
        let mut v = Vec::with_capacity(size);
        let fill = |i: usize| (seq as usize).wrapping_mul(31).wrapping_add(i);
        match self {
            Frames::Bytes => {
                v.extend_from_slice(&(seq as u32).to_be_bytes());
                v.extend((4..size).map(|i| fill(i) as u8));
            }
            Frames::JsonStrings => {
                // 24 bits of the sequence number, 6 per character, most significant first.
                v.extend(
                    (0..4)
                        .rev()
                        .map(|d| PLAIN[((seq >> (6 * d)) & 63) as usize]),
                );
                v.extend((4..size).map(|i| PLAIN[fill(i) % 64]));
            }
        }
        Bytes::from(v)
    }

    /// The sequence number a generated payload starts with (for error messages).
    pub fn seq_of(self, payload: &[u8]) -> Option<u64> {
        let head = payload.get(..4)?;
        match self {
            Frames::Bytes => Some(u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as u64),
            Frames::JsonStrings => head.iter().try_fold(0u64, |acc, c| {
                let digit = PLAIN.iter().position(|p| p == c)?;
                Some(acc << 6 | digit as u64)
            }),
        }
    }

    /// Check that `frame` is payload `expected` (number `seq`).
    pub(crate) fn check(self, frame: &[u8], seq: u64, expected: &[u8]) -> Outcome {
        if frame != expected {
            return Err(fail(format!(
                "message {seq} is wrong: {} bytes, sequence number {:?}",
                frame.len(),
                self.seq_of(frame)
            )));
        }
        Ok(())
    }

    /// `channel` as the cases see it: unchanged in [`Frames::Bytes`] mode; in JSON mode
    /// every payload sent is one JSON string on the wire, and every frame received is
    /// decoded from one (a frame that is not a JSON string of Latin-1 characters is a
    /// per-frame [`Error::Decode`]); its info says
    /// [`binary_frames`](crate::ChannelInfo::binary_frames), since any payload goes.
    ///
    /// ```no_run
    /// # async fn demo(node_channel: Box<dyn ipc_core::Channel>) -> ipc_core::Result<()> {
    /// use ipc_core::prelude::*;
    /// let mut ch = ipc_core::testkit::Frames::JsonStrings.wrap(node_channel);
    /// ch.send(bytes::Bytes::from_static(b"\x00hi")).await?; // the line "\u0000hi"
    /// # Ok(()) }
    /// ```
    pub fn wrap(self, channel: Box<dyn Channel>) -> Box<dyn Channel> {
        match self {
            Frames::Bytes => channel,
            Frames::JsonStrings => {
                let (tx, rx) = channel.split();
                Box::new(Joined::new(
                    Box::new(JsonStringSender(tx)),
                    Box::new(JsonStringReceiver(rx)),
                ))
            }
        }
    }
}

/// One JSON string holding one character per byte of `payload`, with only printable
/// ASCII left unescaped (so a plain payload grows by its two quotes only).
pub(crate) fn encode(payload: &[u8]) -> Bytes {
    use std::io::Write;
    let mut out = Vec::with_capacity(payload.len() + 2);
    out.push(b'"');
    for &b in payload {
        match b {
            b'"' | b'\\' => out.extend_from_slice(&[b'\\', b]),
            0x20..=0x7e => out.push(b),
            _ => {
                let _ = write!(out, "\\u{b:04x}");
            }
        }
    }
    out.push(b'"');
    Bytes::from(out)
}

/// The payload carried by a JSON string frame (one byte per character, each at most
/// U+00FF).
pub(crate) fn decode(frame: &[u8]) -> Result<Bytes> {
    let context = || {
        let shown = String::from_utf8_lossy(&frame[..frame.len().min(40)]).into_owned();
        format!(
            "a testkit JSON-string frame ({} bytes: {shown:?}...)",
            frame.len()
        )
    };
    let text: String = serde_json::from_slice(frame).map_err(|e| Error::decode(context(), e))?;
    text.chars()
        .map(|c| u8::try_from(u32::from(c)))
        .collect::<std::result::Result<Vec<u8>, _>>()
        .map(Bytes::from)
        .map_err(|_| Error::decode(context(), "a character above U+00FF is no byte"))
}

/// The sending half of a JSON-mode channel.
struct JsonStringSender(Box<dyn SendHalf>);

impl Sink<Bytes> for JsonStringSender {
    type Error = SendError;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), SendError>> {
        self.0.poll_ready_unpin(cx)
    }
    fn start_send(mut self: Pin<&mut Self>, frame: Bytes) -> Result<(), SendError> {
        self.0.start_send_unpin(encode(&frame))
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), SendError>> {
        self.0.poll_flush_unpin(cx)
    }
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), SendError>> {
        self.0.poll_close_unpin(cx)
    }
}

impl SendHalf for JsonStringSender {
    fn info(&self) -> ChannelInfo {
        // Any bytes travel now (as JSON strings): rpc keeps its binary envelope.
        self.0.info().with_binary_frames(true)
    }
}

/// The receiving half of a JSON-mode channel.
struct JsonStringReceiver(Box<dyn RecvHalf>);

impl Stream for JsonStringReceiver {
    type Item = Result<Bytes, RecvError>;

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, RecvError>>> {
        self.0.poll_next_unpin(cx).map(|item| {
            item.map(|frame| frame.and_then(|frame| decode(&frame).map_err(RecvError::from)))
        })
    }
}

impl RecvHalf for JsonStringReceiver {
    fn info(&self) -> ChannelInfo {
        // Any bytes travel now (as JSON strings): rpc keeps its binary envelope.
        self.0.info().with_binary_frames(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_round_trips_and_plain_payloads_grow_by_two() {
        let all: Vec<u8> = (0..=255u8).collect();
        let wire = encode(&all);
        assert!(serde_json::from_slice::<String>(&wire).is_ok());
        assert_eq!(decode(&wire).expect("decode")[..], all[..]);
        for seq in [0, 1, 63, 64, 9_999, 20_000] {
            let p = Frames::JsonStrings.payload(seq, 300);
            assert_eq!(encode(&p).len(), Frames::JsonStrings.wire_len(p.len()));
            assert_eq!(Frames::JsonStrings.seq_of(&p), Some(seq));
        }
        // What Node's JSON.stringify writes for U+00E9 (raw UTF-8) decodes too.
        assert_eq!(decode("\"\u{e9}\"".as_bytes()).expect("decode")[..], [0xe9]);
        assert!(decode("\"\u{100}\"".as_bytes()).is_err());
        assert!(decode(b"{}").is_err());
    }
}
