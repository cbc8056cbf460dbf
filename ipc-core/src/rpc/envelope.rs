//! The two wire forms of an rpc message (`docs/PROTOCOL.md`, section 6), picked from
//! the channel: a 9-byte binary header where frames may hold any bytes, a JSON envelope
//! where each frame must be one JSON text (`node`), so a Node.js program can serve and
//! call too.
//!
//! ```text
//! binary:  kind u8 | id u64 BE | body            kind 0 request, 1 response, 2 error
//! JSON:    {"$rpc":{"id":7,"kind":"request"},"body":BODY}   kind request|response|error
//! ```

use bytes::{BufMut, Bytes, BytesMut};
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::channel::ChannelInfo;
use crate::codec::parse_json_text;
use crate::error::{Error, Result};

const HEADER: usize = 9;

/// What a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// A call; `body` is the request.
    Request,
    /// A successful answer; `body` is the reply.
    Response,
    /// A failed answer; `body` is the message (UTF-8).
    Error,
}

impl Kind {
    fn code(self) -> u8 {
        match self {
            Kind::Request => 0,
            Kind::Response => 1,
            Kind::Error => 2,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Request => "request",
            Kind::Response => "response",
            Kind::Error => "error",
        }
    }
}

/// The wire form for one channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Envelope {
    /// `kind | id | body`.
    Binary,
    /// `{"$rpc":{"id":N,"kind":"..."},"body":...}`; bodies are JSON texts.
    Json,
}

#[derive(Deserialize)]
struct JsonMessage<'a> {
    #[serde(rename = "$rpc")]
    rpc: JsonHeader<'a>,
    #[serde(borrow, default)]
    body: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct JsonHeader<'a> {
    id: u64,
    kind: &'a str,
}

impl Envelope {
    /// The form `info`'s channel can carry.
    pub(super) fn for_channel(info: &ChannelInfo) -> Envelope {
        if info.binary_frames {
            Envelope::Binary
        } else {
            Envelope::Json
        }
    }

    /// A request or response frame. On a JSON channel `body` must be one JSON text:
    /// otherwise an [`Error::Decode`] for this message only.
    pub(super) fn encode(self, kind: Kind, id: u64, body: &[u8]) -> Result<Bytes> {
        match self {
            Envelope::Binary => Ok(binary(kind, id, body)),
            Envelope::Json => {
                if let Err(why) = parse_json_text::<IgnoredAny>(body) {
                    return Err(Error::decode(
                        format!("the rpc {} body", kind.name()),
                        format!(
                            "{why}; this channel carries JSON texts only, so rpc bodies \
                             on it must be JSON (serialize them with serde_json, or use \
                             call_typed with the Json codec)"
                        ),
                    ));
                }
                Ok(json(kind, id, body))
            }
        }
    }

    /// An error answer carrying `message`; never fails.
    pub(super) fn encode_error(self, id: u64, message: &str) -> Bytes {
        match self {
            Envelope::Binary => binary(Kind::Error, id, message.as_bytes()),
            Envelope::Json => {
                let text = serde_json::Value::from(message).to_string();
                json(Kind::Error, id, text.as_bytes())
            }
        }
    }

    /// The kind, id and body of a frame; for [`Kind::Error`] the body is the message
    /// text in both forms.
    pub(super) fn decode(self, frame: Bytes) -> Result<(Kind, u64, Bytes)> {
        match self {
            Envelope::Binary => {
                if frame.len() < HEADER {
                    return Err(Error::decode(
                        "rpc frame",
                        format!("{} bytes, shorter than the 9-byte header", frame.len()),
                    ));
                }
                let kind = match frame[0] {
                    0 => Kind::Request,
                    1 => Kind::Response,
                    2 => Kind::Error,
                    other => {
                        return Err(Error::decode("rpc frame", format!("unknown kind {other}")))
                    }
                };
                let mut id = [0u8; 8];
                id.copy_from_slice(&frame[1..HEADER]);
                Ok((kind, u64::from_be_bytes(id), frame.slice(HEADER..)))
            }
            Envelope::Json => {
                let message: JsonMessage<'_> = parse_json_text(&frame).map_err(|e| {
                    Error::decode(
                        "rpc message",
                        format!(
                            "{e}; expected {{\"$rpc\":{{\"id\":N,\"kind\":\"request\"}},\"body\":...}}"
                        ),
                    )
                })?;
                let kind = match message.rpc.kind {
                    "request" => Kind::Request,
                    "response" => Kind::Response,
                    "error" => Kind::Error,
                    other => {
                        return Err(Error::decode(
                            "rpc message",
                            format!("unknown kind {other:?} (request, response or error)"),
                        ))
                    }
                };
                let raw = message.body.map_or("null", RawValue::get);
                let body = if kind == Kind::Error {
                    match serde_json::from_str::<String>(raw) {
                        Ok(text) => Bytes::from(text),
                        Err(_) => Bytes::copy_from_slice(raw.as_bytes()),
                    }
                } else {
                    Bytes::copy_from_slice(raw.as_bytes())
                };
                Ok((kind, message.rpc.id, body))
            }
        }
    }
}

fn binary(kind: Kind, id: u64, body: &[u8]) -> Bytes {
    let mut frame = BytesMut::with_capacity(HEADER + body.len());
    frame.put_u8(kind.code());
    frame.put_u64(id);
    frame.extend_from_slice(body);
    frame.freeze()
}

fn json(kind: Kind, id: u64, body: &[u8]) -> Bytes {
    let head = format!(r#"{{"$rpc":{{"id":{id},"kind":"{}"}},"body":"#, kind.name());
    let mut frame = BytesMut::with_capacity(head.len() + body.len() + 1);
    frame.extend_from_slice(head.as_bytes());
    frame.extend_from_slice(body);
    frame.put_u8(b'}');
    frame.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms_round_trip() {
        for envelope in [Envelope::Binary, Envelope::Json] {
            for kind in [Kind::Request, Kind::Response] {
                let frame = envelope.encode(kind, 7, br#"{"a":[1,2]}"#).expect("encode");
                let (k, id, body) = envelope.decode(frame).expect("decode");
                assert_eq!((k, id, &body[..]), (kind, 7, &br#"{"a":[1,2]}"#[..]));
            }
            let frame = envelope.encode_error(9, "no \"such\" op");
            let (k, id, body) = envelope.decode(frame).expect("decode");
            assert_eq!((k, id, &body[..]), (Kind::Error, 9, &b"no \"such\" op"[..]));
        }
    }

    #[test]
    fn the_json_form_is_what_a_node_program_writes() {
        let frame = Envelope::Json
            .encode(Kind::Request, 3, b"[1,2]")
            .expect("encode");
        assert_eq!(frame, r#"{"$rpc":{"id":3,"kind":"request"},"body":[1,2]}"#);
        // Node's JSON.stringify output, keys in another order, no body (undefined).
        let (kind, id, body) = Envelope::Json
            .decode(Bytes::from_static(
                br#"{"$rpc":{"kind":"response","id":3}}"#,
            ))
            .expect("decode");
        assert_eq!((kind, id, &body[..]), (Kind::Response, 3, &b"null"[..]));
        let err = Envelope::Json
            .encode(Kind::Request, 1, b"not json")
            .expect_err("not JSON");
        assert!(!err.is_fatal(), "one bad request does not kill the channel");
        assert!(err.to_string().contains("JSON texts only"), "{err}");
    }
}
