//! Serialization codecs: how a value becomes a frame. [`Postcard`] (compact, the default)
//! and [`Json`] (for stdio and peers in other languages).
//!
//! ```
//! use ipc_core::codec::{Codec, Json, Postcard};
//! #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
//! struct Ping { seq: u32 }
//! let frame = Json::encode(&Ping { seq: 7 }).unwrap();
//! assert_eq!(&frame[..], br#"{"seq":7}"#);
//! assert_eq!(Postcard::decode::<Ping>(&Postcard::encode(&Ping { seq: 7 }).unwrap()).unwrap(), Ping { seq: 7 });
//! ```

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, Result};

/// Turns values into frames and back.
pub trait Codec: Send + Sync + 'static {
    /// Codec name for messages (`"postcard"`, `"json"`).
    const NAME: &'static str;

    /// Serialize a value into one frame; a value that does not serialize gives
    /// [`Error::Refused`] (nothing is sent).
    fn encode<T: Serialize>(value: &T) -> Result<Bytes>;

    /// Deserialize one frame; a bad frame gives [`Error::Decode`] naming the type.
    fn decode<T: DeserializeOwned>(frame: &[u8]) -> Result<T>;
}

/// Show the start of a frame in an error message.
pub(crate) fn preview(frame: &[u8]) -> String {
    const MAX: usize = 48;
    let shown = &frame[..frame.len().min(MAX)];
    let text = String::from_utf8_lossy(shown);
    if frame.len() > MAX {
        format!("{text:?}... ({} bytes)", frame.len())
    } else {
        format!("{text:?}")
    }
}

fn decode_error<T>(codec: &str, frame: &[u8], reason: impl std::fmt::Display) -> Error {
    Error::decode(
        format!(
            "{} from a {codec} frame {}",
            std::any::type_name::<T>(),
            preview(frame)
        ),
        reason,
    )
}

/// [postcard](https://docs.rs/postcard): compact binary, Rust-to-Rust. The default.
#[derive(Debug, Clone, Copy, Default)]
pub struct Postcard;

impl Codec for Postcard {
    const NAME: &'static str = "postcard";

    fn encode<T: Serialize>(value: &T) -> Result<Bytes> {
        postcard::to_stdvec(value)
            .map(Bytes::from)
            .map_err(|e| Error::refused(format!("{} as postcard", std::any::type_name::<T>()), e))
    }

    fn decode<T: DeserializeOwned>(frame: &[u8]) -> Result<T> {
        postcard::from_bytes(frame).map_err(|e| decode_error::<T>(Self::NAME, frame, e))
    }
}

/// JSON (serde_json): one UTF-8 JSON value per frame, readable from any language.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json;

impl Codec for Json {
    const NAME: &'static str = "json";

    fn encode<T: Serialize>(value: &T) -> Result<Bytes> {
        serde_json::to_vec(value)
            .map(Bytes::from)
            .map_err(|e| Error::refused(format!("{} as json", std::any::type_name::<T>()), e))
    }

    fn decode<T: DeserializeOwned>(frame: &[u8]) -> Result<T> {
        serde_json::from_slice(frame).map_err(|e| decode_error::<T>(Self::NAME, frame, e))
    }
}

/// Why some bytes are not exactly one JSON value.
#[derive(Debug)]
pub enum NotJson {
    /// Not UTF-8.
    Utf8(std::str::Utf8Error),
    /// UTF-8, but not exactly one JSON value (`serde_json`'s reason, with position).
    Json(serde_json::Error),
}

impl std::fmt::Display for NotJson {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotJson::Utf8(e) => write!(f, "not UTF-8 ({e})"),
            NotJson::Json(e) => write!(f, "not JSON ({e})"),
        }
    }
}

impl std::error::Error for NotJson {}

/// Parse `text` as exactly one JSON value of type `T`: UTF-8, JSON whitespace around the
/// value allowed, nothing else. `T` may borrow from `text`. Used by the JSON-lines
/// transports to tell JSON frames from others.
///
/// ```
/// use ipc_core::codec::{parse_json_text, NotJson};
/// let v: serde_json::Value = parse_json_text(br#" {"a":1} "#).unwrap();
/// assert_eq!(v["a"], 1);
/// assert!(matches!(parse_json_text::<serde_json::Value>(b"{} {}"), Err(NotJson::Json(_))));
/// assert!(matches!(parse_json_text::<serde_json::Value>(b"\xff"), Err(NotJson::Utf8(_))));
/// ```
pub fn parse_json_text<'a, T: serde::Deserialize<'a>>(text: &'a [u8]) -> Result<T, NotJson> {
    let text = std::str::from_utf8(text).map_err(NotJson::Utf8)?;
    serde_json::from_str(text).map_err(NotJson::Json)
}
