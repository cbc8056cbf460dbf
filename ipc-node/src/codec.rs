//! [`NodeCodec`]: Node's `json` serialization mode as a [`FrameCodec`], on top of the
//! shared [`LineCodec`].
//!
//! ```text
//! +--------------------------------------+----+
//! | JSON.stringify(message)  (UTF-8)     | \n |   one message: one JSON text, one line
//! +--------------------------------------+----+
//! {"id":1,"op":"add","a":1,"b":2}\n             process.send({id: 1, op: 'add', a: 1, b: 2})
//! "ready"\n                                     process.send('ready')
//! {"cmd":"NODE_HANDLE","type":"net.Native","msg":{..}}\n   internal (Node's own)
//! ```
//!
//! There is no goodbye line and no length prefix: Node ends a channel by closing the
//! socket.

use bytes::{Bytes, BytesMut};
use ipc_core::frame::{Decoded, FrameCodec, FrameConfig, LineCodec, Outbound, GOODBYE_LINE};
use ipc_core::{Error, Result};
use tokio_util::codec::{Decoder, Encoder};

use crate::probe::{classify, Kind};

/// Characters of a line quoted in an error message.
const PREVIEW_CHARS: usize = 80;

/// The start of a frame or line, quoted for an error message.
pub(crate) fn preview(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut shown: String = text.chars().take(PREVIEW_CHARS).collect();
    if shown.len() < text.len() {
        shown.push_str("...");
        format!("{shown:?} ({} bytes)", bytes.len())
    } else {
        format!("{shown:?}")
    }
}

/// What the channel reads from the wire.
#[derive(Debug)]
pub(crate) enum Inbound {
    /// A user message: one JSON text.
    Message(Bytes),
    /// One of Node's internal messages (its `cmd`).
    Internal(String),
    /// One bad line (not JSON, too long); the stream goes on.
    Rejected(Error),
}

/// Framing of Node's `child_process` channel in `json` serialization mode: every
/// message is one JSON text on one line (`JSON.stringify(msg) + "\n"`).
///
/// # Sending
///
/// A frame must be **one JSON text in UTF-8** (what `serde_json::to_vec`,
/// [`ipc_core::codec::Json`] or `JSON.stringify` produce). Anything else would make
/// `JSON.parse` throw inside Node's channel code and crash the Node process, so it is
/// refused with [`Error::Refused`] and nothing is written. Pretty-printed JSON is
/// accepted: a newline can only be whitespace between tokens in valid JSON, so each
/// one is written as a space (the value is unchanged). A top-level object whose `"cmd"`
/// starts with `NODE_` is refused too: Node would take it for one of its internal
/// messages and act on it. A [goodbye](Outbound::Goodbye) writes nothing: Node has no
/// goodbye marker, the channel ends when the socket is shut down.
///
/// # Receiving
///
/// Each line is checked to be one JSON text in UTF-8; a line that is not gives
/// [`Decoded::Rejected`] with [`Error::Decode`] quoting its start, and the next line is
/// read as usual. Blank lines are skipped and a trailing `\r` is dropped (the shared
/// [`LineCodec`] rules; Node never writes either). Lines longer than `max_frame` are
/// discarded as they arrive, never buffered whole, and reported as
/// [`Error::FrameTooLarge`]. Node's internal messages are never frames: used through
/// the [`Decoder`] trait this codec skips them; [`NodeChannel`](crate::NodeChannel)
/// also answers the ones that need an answer.
///
/// Unlike [`LineCodec`], the line `{"$ipc":"goodbye"}` is an ordinary message here.
/// Since Node has no goodbye, a generic
/// [`StreamChannel`](ipc_core::stream::StreamChannel) with this codec reports every
/// end-of-stream as [`Error::PeerLost`]; [`NodeChannel`](crate::NodeChannel) gives
/// Node's meaning to it.
///
/// ```
/// use bytes::{Bytes, BytesMut};
/// use ipc_core::frame::{Decoded, Outbound};
/// use ipc_node::NodeCodec;
/// use tokio_util::codec::{Decoder, Encoder};
///
/// let mut codec = NodeCodec::new(Default::default());
/// let mut wire = BytesMut::new();
/// codec.encode(Outbound::Data(Bytes::from_static(b"{\n  \"a\": 1\n}")), &mut wire)?;
/// assert_eq!(&wire[..], b"{   \"a\": 1 }\n");
/// assert!(codec.encode(Outbound::Data(Bytes::from_static(b"not json")), &mut wire).is_err());
///
/// let mut wire = BytesMut::from(&b"{\"cmd\":\"NODE_HANDLE_ACK\"}\nnot json\n\"ready\"\n"[..]);
/// // The internal message is skipped, the bad line rejected, then the message.
/// assert!(matches!(codec.decode(&mut wire)?, Some(Decoded::Rejected(_))));
/// assert!(matches!(codec.decode(&mut wire)?, Some(Decoded::Frame(f)) if f == "\"ready\""));
/// # Ok::<(), ipc_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct NodeCodec {
    lines: LineCodec,
    max_frame: usize,
}

impl NodeCodec {
    /// A codec for lines up to `config.max_frame()` bytes (without the `\n`).
    pub fn new(config: FrameConfig) -> Self {
        NodeCodec {
            lines: LineCodec::new(config),
            max_frame: config.max_frame(),
        }
    }

    /// Check that Node can receive `frame` as one message: one JSON text in UTF-8, not
    /// an object Node would take for an internal message. See [Sending](Self#sending).
    ///
    /// ```
    /// use ipc_node::NodeCodec;
    /// assert!(NodeCodec::check_outgoing(br#"{"id":1,"result":3}"#).is_ok());
    /// assert!(NodeCodec::check_outgoing(b"").is_err());
    /// assert!(NodeCodec::check_outgoing(br#"{"cmd":"NODE_HANDLE_ACK"}"#).is_err());
    /// ```
    pub fn check_outgoing(frame: &[u8]) -> Result<()> {
        match classify(frame) {
            Ok(Kind::User) => Ok(()),
            Ok(Kind::Internal(cmd)) => Err(Error::refused(
                format!("the outgoing frame {}", preview(frame)),
                format!(
                    "a top-level \"cmd\" of {cmd:?} marks one of Node's internal messages \
                     (handle passing, cluster): Node would act on it instead of emitting \
                     'message'; rename the field or nest the object"
                ),
            )),
            Err(e) => Err(Error::refused(
                format!("the outgoing frame {}", preview(frame)),
                format!(
                    "{e}; Node's channel carries one JSON text per message and JSON.parse \
                     would throw inside the Node process: send serde_json output (e.g. \
                     SinkJsonExt::send_json from ipc_core::prelude)"
                ),
            )),
        }
    }

    /// Read the next message, internal message or rejected line.
    pub(crate) fn decode_inbound(&mut self, src: &mut BytesMut) -> Result<Option<Inbound>> {
        Ok(self.lines.decode(src)?.map(map_line))
    }

    /// Like [`decode_inbound`](Self::decode_inbound) at the end of the stream.
    pub(crate) fn decode_inbound_eof(&mut self, src: &mut BytesMut) -> Result<Option<Inbound>> {
        Ok(self.lines.decode_eof(src)?.map(map_line))
    }
}

/// Turn what the line codec found into what the channel delivers.
fn map_line(decoded: Decoded) -> Inbound {
    let line = match decoded {
        Decoded::Frame(line) => line,
        // The shared line codec reserves this line; for Node it is a user message.
        Decoded::Goodbye => Bytes::from_static(GOODBYE_LINE),
        Decoded::Rejected(e) => return Inbound::Rejected(e),
    };
    match classify(&line) {
        Ok(Kind::User) => Inbound::Message(line),
        Ok(Kind::Internal(cmd)) => Inbound::Internal(cmd),
        Err(e) => Inbound::Rejected(Error::decode(
            format!("the line {} from the Node peer", preview(&line)),
            format!("{e}; every line of Node's channel must be one JSON text"),
        )),
    }
}

impl FrameCodec for NodeCodec {
    fn max_frame(&self) -> usize {
        self.max_frame
    }
}

impl Decoder for NodeCodec {
    type Item = Decoded;
    type Error = Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Decoded>> {
        loop {
            match self.decode_inbound(src)? {
                Some(Inbound::Message(frame)) => return Ok(Some(Decoded::Frame(frame))),
                Some(Inbound::Rejected(e)) => return Ok(Some(Decoded::Rejected(e))),
                Some(Inbound::Internal(cmd)) => {
                    tracing::debug!(cmd, "skipping Node's internal message");
                }
                None => return Ok(None),
            }
        }
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Decoded>> {
        loop {
            match self.decode_inbound_eof(src)? {
                Some(Inbound::Message(frame)) => return Ok(Some(Decoded::Frame(frame))),
                Some(Inbound::Rejected(e)) => return Ok(Some(Decoded::Rejected(e))),
                Some(Inbound::Internal(cmd)) => {
                    tracing::debug!(cmd, "skipping Node's internal message");
                }
                None => return Ok(None),
            }
        }
    }
}

impl Encoder<Outbound> for NodeCodec {
    type Error = Error;

    fn encode(&mut self, item: Outbound, dst: &mut BytesMut) -> Result<()> {
        let frame = match item {
            Outbound::Goodbye => return Ok(()),
            Outbound::Data(frame) => frame,
        };
        if frame.len() > self.max_frame {
            return Err(Error::FrameTooLarge {
                len: frame.len() as u64,
                max: self.max_frame,
            });
        }
        Self::check_outgoing(&frame)?;
        dst.reserve(frame.len() + 1);
        let start = dst.len();
        dst.extend_from_slice(&frame);
        // Valid JSON has raw newlines only as whitespace between tokens.
        for byte in &mut dst[start..] {
            if *byte == b'\n' {
                *byte = b' ';
            }
        }
        dst.extend_from_slice(b"\n");
        Ok(())
    }
}

/// [`NodeCodec`] yielding [`Inbound`], for the channel's reader.
#[derive(Debug)]
pub(crate) struct InboundCodec(pub(crate) NodeCodec);

impl Decoder for InboundCodec {
    type Item = Inbound;
    type Error = Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Inbound>> {
        self.0.decode_inbound(src)
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Inbound>> {
        self.0.decode_inbound_eof(src)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn codec(max: usize) -> NodeCodec {
        NodeCodec::new(FrameConfig::builder().max_frame(max).build())
    }

    fn decode_all(codec: &mut NodeCodec, wire: &[u8], chunk: usize) -> Vec<Inbound> {
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for piece in wire.chunks(chunk.max(1)) {
            buf.extend_from_slice(piece);
            while let Some(item) = codec.decode_inbound(&mut buf).expect("decode") {
                out.push(item);
            }
        }
        while let Some(item) = codec.decode_inbound_eof(&mut buf).expect("eof") {
            out.push(item);
        }
        out
    }

    /// What one line becomes, read: `frame TEXT`, `rejected`, `internal` or `skipped`.
    fn read_one(line: &[u8]) -> String {
        let mut codec = codec(1024);
        match decode_all(&mut codec, line, line.len()).as_slice() {
            [] => "skipped".to_string(),
            [Inbound::Message(f)] => format!("frame {}", String::from_utf8_lossy(f)),
            [Inbound::Rejected(Error::Decode { .. })] => "rejected".to_string(),
            [Inbound::Internal(cmd)] => format!("internal {cmd}"),
            other => panic!("{other:?}"),
        }
    }

    /// What sending one frame does: `wire TEXT` or `refused`.
    fn sent(frame: &[u8]) -> String {
        let mut wire = BytesMut::new();
        match codec(1024).encode(Outbound::Data(Bytes::copy_from_slice(frame)), &mut wire) {
            Ok(()) => format!("wire {}", String::from_utf8_lossy(&wire)),
            Err(Error::Refused { .. }) => "refused".to_string(),
            Err(e) => panic!("{e}"),
        }
    }

    /// PROTOCOL.md §11, the exact JSON dialect of `node:fd=N`, edge case by edge case.
    #[test]
    fn the_json_dialect_edge_cases() {
        for (line, outcome) in [
            (&b"\"\\ud800\"\n"[..], "rejected"),
            (b"\"\\ud83d\\ude00\"\n", "frame \"\\ud83d\\ude00\""),
            (b"1e400\n", "rejected"),
            (
                b"123456789012345678901234567890\n",
                "frame 123456789012345678901234567890",
            ),
            (b"NaN\n", "rejected"),
            (
                b"{\"$bytes\":\"AA==\",\"x\":1}\n",
                "frame {\"$bytes\":\"AA==\",\"x\":1}",
            ),
            (b"{\"$ipc\":\"goodbye\"}\n", "frame {\"$ipc\":\"goodbye\"}"),
            (b"{\"cmd\":\"NODE_X\",\"a\":1}\n", "internal NODE_X"),
            (b"   \t \n", "rejected"),
            (b"\n", "skipped"),
            (b"\r\n", "skipped"),
            (b"{\"a\":1}\r\n", "frame {\"a\":1}"),
            (b" {\"a\":1} \n", "frame  {\"a\":1} "),
        ] {
            assert_eq!(
                read_one(line),
                outcome,
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
        for (frame, outcome) in [
            (&b"\"\\ud800\""[..], "refused"),
            (b"1e400", "refused"),
            (b"NaN", "refused"),
            (b"   ", "refused"),
            (b"", "refused"),
            (
                b"{\"$bytes\":\"AA==\",\"x\":1}",
                "wire {\"$bytes\":\"AA==\",\"x\":1}\n",
            ),
            (b"{\"a\":1}\r", "wire {\"a\":1}\r\n"),
            (b"{\"cmd\":\"NODE_X\"}", "refused"),
        ] {
            assert_eq!(sent(frame), outcome, "{:?}", String::from_utf8_lossy(frame));
        }
    }

    #[test]
    fn goodbye_line_is_a_message_and_internal_is_reported() {
        let mut codec = codec(1024);
        let wire = b"{\"$ipc\":\"goodbye\"}\n{\"cmd\":\"NODE_HANDLE\",\"msg\":1}\nnope\n7\n";
        let out = decode_all(&mut codec, wire, 3);
        assert!(matches!(&out[0], Inbound::Message(f) if f == GOODBYE_LINE));
        assert!(matches!(&out[1], Inbound::Internal(c) if c == "NODE_HANDLE"));
        match &out[2] {
            Inbound::Rejected(Error::Decode { context, .. }) => {
                assert!(context.contains("nope"), "{context}")
            }
            other => panic!("expected a decode error, got {other:?}"),
        }
        assert!(matches!(&out[3], Inbound::Message(f) if f == "7"));
        assert_eq!(out.len(), 4);
    }

    #[test]
    fn long_lines_are_rejected_and_skipped() {
        let mut codec = codec(8);
        let mut wire = vec![b'1'; 100];
        wire.extend_from_slice(b"\n[1]\n");
        let out = decode_all(&mut codec, &wire, 7);
        assert!(matches!(
            out[0],
            Inbound::Rejected(Error::FrameTooLarge { len: 100, max: 8 })
        ));
        assert!(matches!(&out[1], Inbound::Message(f) if f == "[1]"));
    }

    #[test]
    fn refused_frames_write_nothing() {
        let mut codec = codec(16);
        let mut dst = BytesMut::new();
        for bad in [
            &b""[..],
            b"a\nb",
            b"\"a\nb\"",
            b"\xff",
            br#"{"cmd":"NODE_X"}"#,
            b"[1,2,3,4,5,6,7,8,9]",
        ] {
            assert!(codec
                .encode(Outbound::Data(Bytes::copy_from_slice(bad)), &mut dst)
                .is_err());
        }
        codec.encode(Outbound::Goodbye, &mut dst).expect("goodbye");
        assert!(dst.is_empty());
    }

    #[test]
    fn preview_truncates() {
        let long = "x".repeat(200);
        let p = preview(long.as_bytes());
        assert!(p.contains("...") && p.contains("200 bytes"), "{p}");
        assert_eq!(preview(b"ab"), "\"ab\"");
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(
            data in proptest::collection::vec(any::<u8>(), 0..2048),
            chunk in 1usize..64,
        ) {
            let max = 64;
            let mut codec = codec(max);
            let mut buf = BytesMut::new();
            for piece in data.chunks(chunk) {
                buf.extend_from_slice(piece);
                while let Some(item) = codec.decode_inbound(&mut buf).expect("decode never fails") {
                    if let Inbound::Message(f) = item {
                        prop_assert!(f.len() <= max);
                        prop_assert!(classify(&f).is_ok());
                    }
                }
                prop_assert!(buf.len() <= max + 2 + chunk);
            }
            let _ = codec.decode_inbound_eof(&mut buf);
        }

        #[test]
        fn json_values_round_trip(values in proptest::collection::vec(json_value(), 0..20), chunk in 1usize..50) {
            let mut codec = codec(1 << 20);
            let mut wire = BytesMut::new();
            let mut sent = Vec::new();
            for v in &values {
                let pretty = serde_json::to_vec_pretty(v).expect("serialize");
                codec.encode(Outbound::Data(Bytes::from(pretty)), &mut wire).expect("encode");
                sent.push(v.clone());
            }
            let lines = wire.iter().filter(|b| **b == b'\n').count();
            prop_assert_eq!(lines, values.len());
            let got: Vec<serde_json::Value> = decode_all(&mut codec, &wire, chunk)
                .into_iter()
                .map(|item| match item {
                    Inbound::Message(f) => serde_json::from_slice(&f).expect("json"),
                    other => panic!("unexpected {other:?}"),
                })
                .collect();
            prop_assert_eq!(got, sent);
        }
    }

    fn json_value() -> impl Strategy<Value = serde_json::Value> {
        use serde_json::Value;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            ".*".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 32, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::btree_map("[a-z\n]{0,5}", inner, 0..6).prop_map(|m| {
                    Value::Object(m.into_iter().filter(|(k, _)| k != "cmd").collect())
                }),
            ]
        })
    }
}
