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

    /// Serialize a value into one frame.
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
            .map_err(|e| Error::decode(format!("{} to postcard", std::any::type_name::<T>()), e))
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
            .map_err(|e| Error::decode(format!("{} to json", std::any::type_name::<T>()), e))
    }

    fn decode<T: DeserializeOwned>(frame: &[u8]) -> Result<T> {
        serde_json::from_slice(frame).map_err(|e| decode_error::<T>(Self::NAME, frame, e))
    }
}
