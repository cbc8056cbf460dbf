//! [`JsonLinesCodec`]: frames as JSON lines, on top of the shared
//! [`LineCodec`](ipc_core::frame::LineCodec).
//!
//! ```text
//! frame bytes                       line on the wire
//! {"op":"add","args":[1,2]}     ->  {"op":"add","args":[1,2]}\n     one-line JSON: as is
//! 42                            ->  42\n
//! ping (not JSON)               ->  {"$bytes":"cGluZw=="}\n          anything else: base64
//! (empty)                       ->  {"$bytes":""}\n
//! {"$bytes":"x"} (a user value) ->  {"$bytes":"eyIkYnl0ZXMiOiJ4In0="}\n   reserved shapes: base64
//! close                         ->  {"$ipc":"goodbye"}\n
//! ```

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::{BufMut, Bytes, BytesMut};
use ipc_core::frame::{Decoded, FrameCodec, FrameConfig, LineCodec, Outbound, GOODBYE_LINE};
use ipc_core::{Error, Result};
use tokio_util::codec::{Decoder, Encoder};

use crate::long_line::{LongLine, Tail};
use crate::shape::{Shape, BYTES_KEY, CONTROL_KEY};

/// `{"$bytes":"` — how a raw-bytes line starts.
const BYTES_PREFIX: &[u8] = br#"{"$bytes":""#;
/// `"}` — how a raw-bytes line ends (before the `\n`).
const BYTES_SUFFIX: &[u8] = br#""}"#;
/// Bytes a `{"$bytes":"..."}` line adds around the base64 text.
const BYTES_OVERHEAD: usize = BYTES_PREFIX.len() + BYTES_SUFFIX.len();

/// The largest frame limit whose longest line still fits the line codec's limit.
const MAX_FRAME_CEILING: usize = (ipc_core::frame::MAX_FRAME_LIMIT - BYTES_OVERHEAD) / 4 * 3;

/// Characters of a bad line quoted in a [`Error::Decode`] context.
const PREVIEW_CHARS: usize = 80;

/// Newline-delimited JSON framing: each frame is one line holding one JSON value.
///
/// # Wire mapping
///
/// - A frame that is **one JSON value on one line** (valid UTF-8 JSON that `serde_json`
///   parses as a whole, no `\n` inside, not ending in `\r`) is written verbatim:
///   `{"a":1}` becomes the line `{"a":1}\n`. That is what `serde_json::to_vec`,
///   [`ipc_core::codec::Json`] and Node's `JSON.stringify` produce.
/// - **Every other frame** — binary, empty, text that is not JSON, pretty-printed JSON
///   with newlines — is written as `{"$bytes":"<base64>"}`: standard alphabet, with
///   `=` padding (RFC 4648 §4), and decoded back to the exact bytes.
/// - Top-level objects using the **reserved keys** `"$bytes"` or `"$ipc"` are wrapped
///   as `$bytes` too, so a user value that looks like a wrapper or a control line
///   still round-trips. Other objects, including nested `"$bytes"` keys and keys such
///   as `"$schema"`, are untouched.
/// - The goodbye line `{"$ipc":"goodbye"}` ([`GOODBYE_LINE`]) closes the stream
///   cleanly. When reading, any line that parses as `{"$ipc":"goodbye"}` (whitespace
///   or escapes allowed) counts; other `$ipc` values are reported as unknown control
///   messages.
///
/// So `decode(encode(frame)) == frame` for **every** byte string (property-tested), and
/// frames are never re-serialized: pretty JSON arrives byte for byte as it was sent
/// (as `$bytes` on the wire). Send compact JSON to get readable lines.
///
/// # Reading lines from others
///
/// Blank lines are skipped and a trailing `\r` is dropped (CRLF peers work). A line
/// that is not JSON — typically a child that `println!`ed a log line — gives
/// [`Decoded::Rejected`] with [`Error::Decode`] quoting the line (up to 80
/// characters); the next line is read as usual. A `$bytes` line whose text is not
/// padded standard base64 is rejected the same way.
///
/// # Limits
///
/// `max_frame` limits the **frame**, not the line: a frame of `max_frame` bytes needs
/// a line of `13 + 4 * ceil(max_frame / 3)` bytes as `$bytes`
/// ([`line_limit`](Self::line_limit)), and lines are accepted up to that length. A
/// longer line is discarded as it arrives, never buffered whole, and reported as
/// [`Error::FrameTooLarge`] whose `len` is the frame length the line carried (the
/// decoded length of a `$bytes` line, the line length otherwise) and whose `max` is
/// `max_frame`. A verbatim JSON line longer than `max_frame` is rejected the same
/// way. Limits above about 3 GiB are lowered so the longest line stays under the line
/// codec's own ceiling ([`MAX_FRAME_LIMIT`](ipc_core::frame::MAX_FRAME_LIMIT)).
///
/// ```
/// use bytes::{Bytes, BytesMut};
/// use ipc_core::frame::{Decoded, Outbound};
/// use ipc_stdio::JsonLinesCodec;
/// use tokio_util::codec::{Decoder, Encoder};
///
/// let mut codec = JsonLinesCodec::new(Default::default());
/// let mut wire = BytesMut::new();
/// codec.encode(Outbound::Data(Bytes::from_static(br#"{"a":1}"#)), &mut wire)?;
/// codec.encode(Outbound::Data(Bytes::from_static(b"\x00\x01\x02")), &mut wire)?;
/// codec.encode(Outbound::Goodbye, &mut wire)?;
/// assert_eq!(&wire[..], &b"{\"a\":1}\n{\"$bytes\":\"AAEC\"}\n{\"$ipc\":\"goodbye\"}\n"[..]);
///
/// assert!(matches!(codec.decode(&mut wire)?, Some(Decoded::Frame(f)) if f == r#"{"a":1}"#));
/// assert!(matches!(codec.decode(&mut wire)?, Some(Decoded::Frame(f)) if f == b"\x00\x01\x02"[..]));
/// assert!(matches!(codec.decode(&mut wire)?, Some(Decoded::Goodbye)));
/// # Ok::<(), ipc_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct JsonLinesCodec {
    lines: LineCodec,
    max_frame: usize,
    max_line: usize,
    /// Set while the line codec throws away an over-long line.
    discarding: Option<LongLine>,
}

impl JsonLinesCodec {
    /// A codec for frames up to `config.max_frame()` bytes (lowered to about 3 GiB if
    /// higher; see [Limits](Self#limits)).
    pub fn new(config: FrameConfig) -> Self {
        let max_frame = config.max_frame().min(MAX_FRAME_CEILING);
        let max_line = Self::line_limit(max_frame);
        JsonLinesCodec {
            lines: LineCodec::new(FrameConfig::builder().max_frame(max_line).build()),
            max_frame,
            max_line,
            discarding: None,
        }
    }

    /// The longest line (without its `\n`) that carries a frame of `max_frame` bytes:
    /// `13 + 4 * ceil(max_frame / 3)`, the size of its `{"$bytes":"..."}` form.
    ///
    /// ```
    /// assert_eq!(ipc_stdio::JsonLinesCodec::line_limit(0), 13);
    /// assert_eq!(ipc_stdio::JsonLinesCodec::line_limit(3), 17);
    /// assert_eq!(ipc_stdio::JsonLinesCodec::line_limit(4), 21);
    /// ```
    pub fn line_limit(max_frame: usize) -> usize {
        max_frame
            .div_ceil(3)
            .saturating_mul(4)
            .saturating_add(BYTES_OVERHEAD)
    }

    /// The longest line this codec accepts (see [`line_limit`](Self::line_limit)).
    pub fn max_line(&self) -> usize {
        self.max_line
    }

    /// Turn a line from the line codec into what the channel delivers.
    fn map_line(&self, line: Bytes) -> Decoded {
        let shape = match Shape::of(&line) {
            Ok(shape) => shape,
            Err(e) => {
                return Decoded::Rejected(Error::decode(
                    format!("the stdio line {}", preview(&line)),
                    format!(
                        "{e}; every line must be one JSON value. If the peer is a child \
                         process, it printed something to stdout: a stdio child must write \
                         logs to stderr"
                    ),
                ))
            }
        };
        match shape {
            Shape::Plain if line.len() > self.max_frame => {
                Decoded::Rejected(Error::FrameTooLarge {
                    len: line.len() as u64,
                    max: self.max_frame,
                })
            }
            Shape::Plain => Decoded::Frame(line),
            Shape::Bytes(text) => self.decode_base64(text.as_bytes(), &line),
            Shape::Control(what) if what.as_bytes() == b"goodbye" => Decoded::Goodbye,
            Shape::Control(what) => Decoded::Rejected(Error::decode(
                format!("the stdio line {}", preview(&line)),
                format!(
                    "unknown control message {what:?}: the only one is {}",
                    String::from_utf8_lossy(GOODBYE_LINE)
                ),
            )),
            Shape::Reserved(key) => Decoded::Rejected(Error::decode(
                format!("the stdio line {}", preview(&line)),
                format!(
                    "the top-level key {key:?} is reserved: a line using it must be exactly \
                     {{\"{BYTES_KEY}\":\"<base64>\"}} or {{\"{CONTROL_KEY}\":\"goodbye\"}}"
                ),
            )),
        }
    }

    /// The frame inside a `{"$bytes":"..."}` line; its size is checked before decoding.
    fn decode_base64(&self, text: &[u8], line: &[u8]) -> Decoded {
        let bad = |why: String| {
            Decoded::Rejected(Error::decode(
                format!("the stdio line {}", preview(line)),
                format!("{why}; \"{BYTES_KEY}\" holds standard base64 with '=' padding"),
            ))
        };
        if text.len() % 4 != 0 {
            return bad(format!(
                "its base64 text has {} characters, not a multiple of 4",
                text.len()
            ));
        }
        let len = base64_decoded_len(text);
        if len > self.max_frame {
            return Decoded::Rejected(Error::FrameTooLarge {
                len: len as u64,
                max: self.max_frame,
            });
        }
        let mut frame = Vec::with_capacity(text.len() / 4 * 3);
        match STANDARD.decode_vec(text, &mut frame) {
            Ok(()) => Decoded::Frame(Bytes::from(frame)),
            Err(e) => bad(format!("bad base64: {e}")),
        }
    }

    /// What a rejected over-long line carried, in frame bytes.
    fn long_line_len(&self, reported: u64, line: &LongLine, cr_counted: bool) -> u64 {
        let mut tail = line.tail.as_slice();
        let mut len = reported;
        if tail.last() == Some(&b'\r') {
            tail = &tail[..tail.len() - 1];
            if cr_counted {
                len = len.saturating_sub(1);
            }
        }
        let overhead = BYTES_OVERHEAD as u64;
        if !line.bytes_line || len < overhead || !tail.ends_with(BYTES_SUFFIX) {
            return len;
        }
        let text = len - overhead;
        let padding = tail[..tail.len() - BYTES_SUFFIX.len()]
            .iter()
            .rev()
            .take_while(|b| **b == b'=')
            .count()
            .min(2) as u64;
        if text % 4 == 0 {
            text / 4 * 3 - padding.min(text / 4 * 3)
        } else {
            text * 3 / 4
        }
    }

    /// Look at `src` before the line codec does, to remember what an over-long line
    /// carried (it is thrown away unseen). Only runs when a line may be over the limit.
    fn watch_long_line(&mut self, src: &BytesMut) -> Option<LongLine> {
        if let Some(discarding) = &mut self.discarding {
            // The line codec drops everything up to the next newline.
            let end = find_newline(src).unwrap_or(src.len());
            discarding.tail.push(&src[..end]);
            return None;
        }
        if src.len() <= self.max_line + 1 {
            return None; // no line in it can be over the limit
        }
        // Blank lines are skipped first, as the line codec does.
        let mut rest = &src[..];
        loop {
            if let Some(r) = rest.strip_prefix(b"\n") {
                rest = r;
            } else if let Some(r) = rest.strip_prefix(b"\r\n") {
                rest = r;
            } else {
                break;
            }
        }
        let mut long = LongLine {
            bytes_line: rest.starts_with(BYTES_PREFIX),
            tail: Tail::default(),
        };
        match find_newline(rest) {
            Some(end) => {
                long.tail.push(&rest[..end]);
                Some(long) // rejected now if longer than the limit; unused otherwise
            }
            // The line codec's own threshold (it always accepts the goodbye line).
            None if rest.len() > self.max_line.max(GOODBYE_LINE.len()) + 1 => {
                long.tail.push(rest);
                self.discarding = Some(long);
                None
            }
            None => None,
        }
    }
}

impl FrameCodec for JsonLinesCodec {
    fn max_frame(&self) -> usize {
        self.max_frame
    }
}

impl Decoder for JsonLinesCodec {
    type Item = Decoded;
    type Error = Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Decoded>> {
        let was_discarding = self.discarding;
        let complete_long_line = self.watch_long_line(src);
        let item = self.lines.decode(src)?;
        Ok(item.map(|item| self.map_item(item, was_discarding, complete_long_line)))
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Decoded>> {
        if let Some(item) = self.decode(src)? {
            return Ok(Some(item));
        }
        let item = self.lines.decode_eof(src)?;
        Ok(item.map(|item| self.map_item(item, None, None)))
    }
}

impl JsonLinesCodec {
    fn map_item(
        &mut self,
        item: Decoded,
        was_discarding: Option<LongLine>,
        complete_long_line: Option<LongLine>,
    ) -> Decoded {
        match item {
            Decoded::Frame(line) => self.map_line(line),
            Decoded::Goodbye => Decoded::Goodbye,
            Decoded::Rejected(Error::FrameTooLarge { len, .. }) => {
                // Either the end of a discarded line, or a whole over-long line.
                let len = match (self.discarding.take(), was_discarding, complete_long_line) {
                    (Some(line), Some(_), _) => self.long_line_len(len, &line, true),
                    (_, _, Some(line)) => self.long_line_len(len, &line, false),
                    _ => len,
                };
                Decoded::Rejected(Error::FrameTooLarge {
                    len,
                    max: self.max_frame,
                })
            }
            Decoded::Rejected(e) => Decoded::Rejected(e),
        }
    }
}

impl Encoder<Outbound> for JsonLinesCodec {
    type Error = Error;

    fn encode(&mut self, item: Outbound, dst: &mut BytesMut) -> Result<()> {
        let frame = match item {
            Outbound::Goodbye => return self.lines.encode(Outbound::Goodbye, dst),
            Outbound::Data(frame) => frame,
        };
        if frame.len() > self.max_frame {
            return Err(Error::FrameTooLarge {
                len: frame.len() as u64,
                max: self.max_frame,
            });
        }
        if is_verbatim(&frame) {
            return self.lines.encode(Outbound::Data(frame), dst);
        }
        // One line by construction: the base64 alphabet has no '\n'.
        let text_len = base64::encoded_len(frame.len(), true).ok_or(Error::FrameTooLarge {
            len: frame.len() as u64,
            max: self.max_frame,
        })?;
        dst.reserve(BYTES_OVERHEAD + text_len + 1);
        dst.extend_from_slice(BYTES_PREFIX);
        let start = dst.len();
        dst.resize(start + text_len, 0);
        let written = STANDARD
            .encode_slice(&frame, &mut dst[start..])
            .map_err(|e| Error::refused("a frame as base64", e))?;
        dst.truncate(start + written);
        dst.extend_from_slice(BYTES_SUFFIX);
        dst.put_u8(b'\n');
        Ok(())
    }
}

/// True when `frame` goes on the wire as it is: one JSON value, one line, and read
/// back as the same bytes.
fn is_verbatim(frame: &[u8]) -> bool {
    !frame.is_empty()
        && frame.last() != Some(&b'\r')
        && find_newline(frame).is_none()
        && matches!(Shape::of(frame), Ok(Shape::Plain))
}

/// Length of the bytes encoded by padded base64 `text` (its length a multiple of 4).
fn base64_decoded_len(text: &[u8]) -> usize {
    let padding = text
        .iter()
        .rev()
        .take(2)
        .take_while(|b| **b == b'=')
        .count();
    (text.len() / 4 * 3).saturating_sub(padding)
}

fn find_newline(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|b| *b == b'\n')
}

/// The start of a line, for error messages: at most 80 characters, lossily decoded.
fn preview(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line);
    let mut chars = text.chars();
    let shown: String = chars.by_ref().take(PREVIEW_CHARS).collect();
    if chars.next().is_some() {
        format!("{shown:?}... ({} bytes)", line.len())
    } else {
        format!("{shown:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoded_len_counts_padding() {
        assert_eq!(base64_decoded_len(b""), 0);
        assert_eq!(base64_decoded_len(b"AA=="), 1);
        assert_eq!(base64_decoded_len(b"AAA="), 2);
        assert_eq!(base64_decoded_len(b"AAAA"), 3);
    }

    #[test]
    fn preview_truncates_long_lines() {
        let long = "x".repeat(200);
        let p = preview(long.as_bytes());
        assert!(p.starts_with(&format!("\"{}\"...", "x".repeat(80))), "{p}");
        assert!(p.ends_with("(200 bytes)"), "{p}");
        assert_eq!(preview(b"hi"), "\"hi\"");
    }
}
