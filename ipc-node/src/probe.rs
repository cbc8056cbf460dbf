//! What one line (or outgoing frame) is, as far as Node's channel cares: a user
//! message, or one of Node's internal messages (a top-level object whose `"cmd"` is a
//! string starting with `NODE_`), or not JSON at all.
//!
//! One pass of `serde_json` validates the whole text without building it: values are
//! skipped ([`IgnoredAny`]), only the top-level `"cmd"` is looked at. The rule is the
//! one Node applies (`isInternal` in `lib/internal/child_process.js`): the `cmd` string
//! is longer than `NODE_` and starts with it; with duplicate keys the last one wins,
//! as in `JSON.parse`.

use std::fmt;

use ipc_core::codec::{parse_json_text, NotJson};
use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// The prefix of the `cmd` of Node's internal messages.
pub(crate) const INTERNAL_PREFIX: &str = "NODE_";

/// What a valid JSON text is.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A message for the user.
    User,
    /// One of Node's internal messages, with its `cmd` (`NODE_HANDLE`, ...).
    Internal(String),
}

/// True for a `cmd` Node treats as internal.
pub(crate) fn is_internal_cmd(cmd: &str) -> bool {
    cmd.len() > INTERNAL_PREFIX.len() && cmd.starts_with(INTERNAL_PREFIX)
}

/// Classify `text`: `Err` unless it is exactly one JSON value (JSON whitespace around
/// it allowed, nothing else).
pub(crate) fn classify(text: &[u8]) -> Result<Kind, NotJson> {
    parse_json_text::<Probe>(text).map(|p| p.0)
}

/// The result of one validating pass.
struct Probe(Kind);

impl<'de> Deserialize<'de> for Probe {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ProbeVisitor)
    }
}

struct ProbeVisitor;

impl<'de> Visitor<'de> for ProbeVisitor {
    type Value = Probe;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Probe, E> {
        Ok(Probe(Kind::User))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Probe, E> {
        Ok(Probe(Kind::User))
    }
    fn visit_u64<E>(self, _: u64) -> Result<Probe, E> {
        Ok(Probe(Kind::User))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Probe, E> {
        Ok(Probe(Kind::User))
    }
    fn visit_str<E>(self, _: &str) -> Result<Probe, E> {
        Ok(Probe(Kind::User))
    }
    fn visit_unit<E>(self) -> Result<Probe, E> {
        Ok(Probe(Kind::User))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Probe, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Probe(Kind::User))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Probe, A::Error> {
        let mut cmd = None;
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Cmd => cmd = map.next_value::<Cmd>()?.0,
                Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Probe(match cmd {
            Some(cmd) => Kind::Internal(cmd),
            None => Kind::User,
        }))
    }
}

/// A top-level key: `"cmd"` (compared after unescaping, as `JSON.parse` sees it) or not.
enum Key {
    Cmd,
    Other,
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
                Ok(if key == "cmd" { Key::Cmd } else { Key::Other })
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// The value of `"cmd"`: `Some` when it is an internal command string.
struct Cmd(Option<String>);

impl<'de> Deserialize<'de> for Cmd {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(CmdVisitor)
    }
}

struct CmdVisitor;

impl<'de> Visitor<'de> for CmdVisitor {
    type Value = Cmd;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_str<E>(self, s: &str) -> Result<Cmd, E> {
        Ok(Cmd(is_internal_cmd(s).then(|| s.to_owned())))
    }
    fn visit_bool<E>(self, _: bool) -> Result<Cmd, E> {
        Ok(Cmd(None))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Cmd, E> {
        Ok(Cmd(None))
    }
    fn visit_u64<E>(self, _: u64) -> Result<Cmd, E> {
        Ok(Cmd(None))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Cmd, E> {
        Ok(Cmd(None))
    }
    fn visit_unit<E>(self) -> Result<Cmd, E> {
        Ok(Cmd(None))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Cmd, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Cmd(None))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Cmd, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Cmd(None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(text: &str) -> Kind {
        classify(text.as_bytes()).unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    #[test]
    fn user_values() {
        for text in [
            "1",
            "-2.5",
            "true",
            "null",
            r#""ready""#,
            "[1,{\"cmd\":\"NODE_HANDLE\"}]",
            r#"{"cmd":"NODE_"}"#,
            r#"{"cmd":"node_handle"}"#,
            r#"{"cmd":7}"#,
            r#"{"a":{"cmd":"NODE_HANDLE"}}"#,
            " {\"x\":[]}\r",
            r#"{"cmd":"NODE_X","cmd":"y"}"#,
        ] {
            assert_eq!(kind(text), Kind::User, "{text}");
        }
    }

    #[test]
    fn internal_values() {
        assert_eq!(
            kind(r#"{"cmd":"NODE_HANDLE","type":"net.Native","msg":{"a":1}}"#),
            Kind::Internal("NODE_HANDLE".into())
        );
        assert_eq!(
            kind(r#"{"x":1,"cmd":"NODE_\u0043LUSTER"}"#),
            Kind::Internal("NODE_CLUSTER".into())
        );
        assert_eq!(
            kind(r#"{"cmd":"a","cmd":"NODE_HANDLE_ACK"}"#),
            Kind::Internal("NODE_HANDLE_ACK".into())
        );
    }

    #[test]
    fn corners_where_json_parse_and_serde_json_differ() {
        // Checked when they are the whole text, skipped (as JSON.parse accepts them)
        // when nested; a serde_json::Value cannot hold either.
        assert!(classify(br#""\ud800""#).is_err(), "lone surrogate");
        assert!(classify(b"1e400").is_err(), "beyond f64");
        assert!(classify(br#"["\ud800",1e400]"#).is_ok());
        assert!(
            classify(br#""\ud83d\ude00""#).is_ok(),
            "a surrogate pair is fine"
        );
        let deep = format!("{}{}", "[".repeat(1000), "]".repeat(1000));
        assert!(
            classify(deep.as_bytes()).is_ok(),
            "no depth limit while checking"
        );
    }

    #[test]
    fn not_json() {
        for text in [
            &b""[..],
            b"not json",
            b"{\"a\":1} {}",
            b"\"a\nb\"",
            b"\xff",
            b"{\"a\":1",
            b"\xef\xbb\xbf1",
            b"'x'",
            b"NaN",
        ] {
            assert!(
                classify(text).is_err(),
                "{:?}",
                String::from_utf8_lossy(text)
            );
        }
    }
}
