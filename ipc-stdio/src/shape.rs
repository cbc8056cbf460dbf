//! What a line (or an outgoing frame) is, as far as the wire mapping cares: plain JSON,
//! a `{"$bytes":"..."}` wrapper, a `{"$ipc":"..."}` control line, or something that
//! misuses a reserved key. One function decides for both directions, so the encoder
//! writes a frame verbatim exactly when the decoder would hand the same line back
//! verbatim: that is what makes `decode(encode(x)) == x` hold for every byte string.
//!
//! The check validates the JSON without building it: values are skipped
//! ([`IgnoredAny`]), only top-level keys are looked at, and the one string that matters
//! (the base64 text) is borrowed from the line when it has no escapes.

use std::borrow::Cow;
use std::fmt;

use ipc_core::codec::{parse_json_text, NotJson};
use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// The reserved key of a raw-bytes line: `{"$bytes":"<base64>"}`.
pub const BYTES_KEY: &str = "$bytes";

/// The reserved key of a control line: `{"$ipc":"goodbye"}`.
pub const CONTROL_KEY: &str = "$ipc";

/// The shape of one valid JSON text.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Shape<'a> {
    /// Ordinary JSON: travels as it is.
    Plain,
    /// `{"$bytes": STRING}` and nothing else: the string is the base64 of the frame.
    Bytes(Cow<'a, str>),
    /// `{"$ipc": STRING}` and nothing else: a control message.
    Control(Cow<'a, str>),
    /// A top-level object using a reserved key in any other way (more keys, a value
    /// that is not a string).
    Reserved(&'static str),
}

impl<'a> Shape<'a> {
    /// Classify `text`: `Err` unless it is exactly one JSON value (surrounding JSON
    /// whitespace allowed, nothing else).
    pub(crate) fn of(text: &'a [u8]) -> Result<Shape<'a>, NotJson> {
        parse_json_text::<Shape<'a>>(text)
    }
}

impl<'de> Deserialize<'de> for Shape<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ShapeVisitor)
    }
}

struct ShapeVisitor;

impl<'de> Visitor<'de> for ShapeVisitor {
    type Value = Shape<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Shape::Plain)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Shape::Plain)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Shape::Plain)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Shape::Plain)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Shape::Plain)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Shape::Plain)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Shape::Plain)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut entries = 0usize;
        let mut reserved: Option<(Key, Option<Cow<'de, str>>)> = None;
        while let Some(key) = map.next_key::<Key>()? {
            entries += 1;
            if key == Key::Other {
                map.next_value::<IgnoredAny>()?;
            } else {
                let value = map.next_value::<MaybeStr<'de>>()?.0;
                if reserved.is_none() {
                    reserved = Some((key, value));
                }
            }
        }
        Ok(match reserved {
            None => Shape::Plain,
            Some((Key::Bytes, Some(s))) if entries == 1 => Shape::Bytes(s),
            Some((Key::Control, Some(s))) if entries == 1 => Shape::Control(s),
            Some((key, _)) => Shape::Reserved(key.name()),
        })
    }
}

/// A top-level object key: reserved or not. Compared after unescaping, so
/// `"$byt\u0065s"` is the reserved key too, as any JSON reader would see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    Bytes,
    Control,
    Other,
}

impl Key {
    fn name(self) -> &'static str {
        match self {
            Key::Bytes => BYTES_KEY,
            Key::Control => CONTROL_KEY,
            Key::Other => "",
        }
    }
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_str<E>(self, key: &str) -> Result<Key, E> {
                Ok(match key {
                    BYTES_KEY => Key::Bytes,
                    CONTROL_KEY => Key::Control,
                    _ => Key::Other,
                })
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// Any JSON value; `Some` when it is a string (borrowed when it had no escapes).
struct MaybeStr<'a>(Option<Cow<'a, str>>);

impl<'de> Deserialize<'de> for MaybeStr<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(MaybeStrVisitor)
    }
}

struct MaybeStrVisitor;

impl<'de> Visitor<'de> for MaybeStrVisitor {
    type Value = MaybeStr<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
        Ok(MaybeStr(Some(Cow::Borrowed(s))))
    }
    fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
        Ok(MaybeStr(Some(Cow::Owned(s.to_owned()))))
    }
    fn visit_string<E>(self, s: String) -> Result<Self::Value, E> {
        Ok(MaybeStr(Some(Cow::Owned(s))))
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(MaybeStr(None))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(MaybeStr(None))
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(MaybeStr(None))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(MaybeStr(None))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(MaybeStr(None))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(MaybeStr(None))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(MaybeStr(None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(s: &str) -> Shape<'_> {
        match Shape::of(s.as_bytes()) {
            Ok(shape) => shape,
            Err(e) => panic!("{s:?} should be JSON: {e}"),
        }
    }

    #[test]
    fn plain_values() {
        for s in [
            "1",
            "-2.5e3",
            "\"x\"",
            "null",
            "true",
            "[1,{\"$bytes\":\"AA==\"}]",
            " {} ",
            "{\"$schema\":1}",
            "{\"a\":{\"$bytes\":\"AA==\"}}",
        ] {
            assert_eq!(shape(s), Shape::Plain, "{s}");
        }
    }

    #[test]
    fn reserved_shapes() {
        assert_eq!(shape(r#"{"$bytes":"AAEC"}"#), Shape::Bytes("AAEC".into()));
        assert!(matches!(
            shape(r#"{"$bytes":"AAEC"}"#),
            Shape::Bytes(Cow::Borrowed(_))
        ));
        assert_eq!(shape(r#"{"$byt\u0065s":"A\/"}"#), Shape::Bytes("A/".into()));
        assert_eq!(
            shape(r#" {"$ipc" : "goodbye"} "#),
            Shape::Control("goodbye".into())
        );
        assert_eq!(shape(r#"{"$bytes":1}"#), Shape::Reserved(BYTES_KEY));
        assert_eq!(shape(r#"{"$bytes":"","a":1}"#), Shape::Reserved(BYTES_KEY));
        assert_eq!(shape(r#"{"a":1,"$ipc":"x"}"#), Shape::Reserved(CONTROL_KEY));
        assert_eq!(
            shape(r#"{"$bytes":"","$bytes":""}"#),
            Shape::Reserved(BYTES_KEY)
        );
    }

    #[test]
    fn not_json() {
        for s in [
            &b""[..],
            b" ",
            b"hello",
            b"{",
            b"1 2",
            b"\"\xff\"",
            b"{}x",
            b"\x00",
        ] {
            assert!(Shape::of(s).is_err(), "{s:?}");
        }
    }
}
