//! The JSON-lines mapping, byte for byte: what goes on the wire for each kind of frame,
//! what comes back, and what a misbehaving peer's lines turn into.

use bytes::{Bytes, BytesMut};
use ipc_core::frame::{Decoded, FrameConfig, Outbound, GOODBYE_LINE};
use ipc_core::Error;
use ipc_stdio::JsonLinesCodec;
use proptest::prelude::*;
use tokio_util::codec::{Decoder, Encoder};

fn codec(max: usize) -> JsonLinesCodec {
    JsonLinesCodec::new(FrameConfig::builder().max_frame(max).build())
}

fn wire(frame: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    codec(8 << 20)
        .encode(Outbound::Data(Bytes::copy_from_slice(frame)), &mut out)
        .expect("encode");
    out.to_vec()
}

/// Feed `wire` in `chunk`-sized pieces, like reads from a pipe, then end the stream.
fn decode_all(codec: &mut JsonLinesCodec, wire: &[u8], chunk: usize) -> Vec<Decoded> {
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for piece in wire.chunks(chunk.max(1)) {
        buf.extend_from_slice(piece);
        while let Some(d) = codec
            .decode(&mut buf)
            .expect("decode never fails mid-stream")
        {
            out.push(d);
        }
    }
    out
}

fn frames(out: &[Decoded]) -> Vec<Vec<u8>> {
    out.iter()
        .map(|d| match d {
            Decoded::Frame(f) => f.to_vec(),
            other => panic!("expected only frames, got {other:?}"),
        })
        .collect()
}

#[test]
fn json_frames_go_on_the_wire_unchanged() {
    for json in [
        &br#"{"type":"handshake","payload":"\u4f60\u597d"}"#[..],
        "{\"payload\":\"你好吖\"}".as_bytes(),
        b"[1,2,3]",
        b"42",
        b"-0.5e10",
        b"\"just a string\"",
        b"null",
        b" {\"spaced\" : true} ",
        b"{\"$schema\":\"x\",\"nested\":{\"$bytes\":\"not reserved down here\"}}",
        b"[{\"$bytes\":\"AA==\"}]",
        b"[1,\r2]",
    ] {
        let mut expected = json.to_vec();
        expected.push(b'\n');
        assert_eq!(wire(json), expected, "{}", String::from_utf8_lossy(json));
    }
}

#[test]
fn other_frames_travel_as_base64() {
    let cases: &[(&[u8], &str)] = &[
        (b"", r#"{"$bytes":""}"#),
        (b"\x00\x01\x02", r#"{"$bytes":"AAEC"}"#),
        (b"\xff", r#"{"$bytes":"/w=="}"#),
        (b"ping", r#"{"$bytes":"cGluZw=="}"#),
        (b"hello-not-json", r#"{"$bytes":"aGVsbG8tbm90LWpzb24="}"#),
        // Multi-line JSON keeps its exact bytes instead of being re-serialized.
        (b"{\n  \"a\": 1\n}", r#"{"$bytes":"ewogICJhIjogMQp9"}"#),
        // A trailing '\r' would be eaten by CRLF handling: wrapped.
        (b"1\r", r#"{"$bytes":"MQ0="}"#),
        (b" ", r#"{"$bytes":"IA=="}"#),
        // Valid UTF-8 is not enough: "\xff" inside a JSON string is not UTF-8.
        (b"\"\xff\"", r#"{"$bytes":"Iv8i"}"#),
        // Reserved shapes, even when the user meant them as data.
        (
            br#"{"$bytes":"AAEC"}"#,
            r#"{"$bytes":"eyIkYnl0ZXMiOiJBQUVDIn0="}"#,
        ),
        (GOODBYE_LINE, r#"{"$bytes":"eyIkaXBjIjoiZ29vZGJ5ZSJ9"}"#),
        (
            br#"{"$ipc":"other"}"#,
            r#"{"$bytes":"eyIkaXBjIjoib3RoZXIifQ=="}"#,
        ),
        (
            br#"{"a":1,"$ipc":2}"#,
            r#"{"$bytes":"eyJhIjoxLCIkaXBjIjoyfQ=="}"#,
        ),
    ];
    for (frame, line) in cases {
        let mut expected = line.as_bytes().to_vec();
        expected.push(b'\n');
        assert_eq!(
            String::from_utf8_lossy(&wire(frame)),
            String::from_utf8_lossy(&expected),
            "frame {frame:?}"
        );
        let mut c = codec(8 << 20);
        assert_eq!(
            frames(&decode_all(&mut c, &expected, 3)),
            vec![frame.to_vec()]
        );
    }
}

#[test]
fn goodbye_closes_and_so_does_an_equivalent_line() {
    let mut c = codec(1024);
    let mut wire = BytesMut::new();
    c.encode(Outbound::Goodbye, &mut wire).expect("encode");
    assert_eq!(&wire[..], b"{\"$ipc\":\"goodbye\"}\n");
    assert!(matches!(c.decode(&mut wire), Ok(Some(Decoded::Goodbye))));
    // A peer in another language may space or escape it differently.
    let mut wire = BytesMut::from(&b"{ \"$ipc\" : \"good\\u0062ye\" }\r\n"[..]);
    assert!(matches!(c.decode(&mut wire), Ok(Some(Decoded::Goodbye))));
}

#[test]
fn foreign_lines_are_read_leniently() {
    let wire = b"\n\r\n{\"a\":1}\r\n{ \"$bytes\" : \"\\/w==\" }\n\n7\n";
    let mut c = codec(1024);
    let out = decode_all(&mut c, wire, 1);
    assert_eq!(
        frames(&out),
        vec![b"{\"a\":1}".to_vec(), vec![0xff], b"7".to_vec()]
    );
}

#[test]
fn a_line_that_is_not_json_is_one_error_then_the_stream_goes_on() {
    let long = format!("{}\n", "log line ".repeat(30));
    let mut wire = b"hello-not-json\n{\"a\":1}\n".to_vec();
    wire.extend_from_slice(long.as_bytes());
    wire.extend_from_slice(b"{\"$bytes\":\"AAE\"}\n{\"$bytes\":5}\n{\"$ipc\":\"reboot\"}\n[2]\n");
    let mut c = codec(1024);
    let out = decode_all(&mut c, &wire, 5);
    let msg = |d: &Decoded| match d {
        Decoded::Rejected(e @ Error::Decode { .. }) => {
            assert!(!e.is_fatal());
            e.to_string()
        }
        other => panic!("expected a decode error, got {other:?}"),
    };
    assert_eq!(out.len(), 7, "{out:?}");
    let first = msg(&out[0]);
    assert!(first.contains("\"hello-not-json\""), "{first}");
    assert!(
        first.contains("stderr"),
        "the message says where logs belong: {first}"
    );
    assert!(matches!(&out[1], Decoded::Frame(f) if f == "{\"a\":1}"));
    let long_msg = msg(&out[2]);
    assert!(
        long_msg.contains("... (270 bytes)"),
        "quotes 80 chars: {long_msg}"
    );
    assert!(msg(&out[3]).contains("multiple of 4"));
    assert!(msg(&out[4]).contains("reserved"));
    assert!(msg(&out[5]).contains("unknown control message \"reboot\""));
    assert!(matches!(&out[6], Decoded::Frame(f) if f == "[2]"));
}

#[test]
fn oversize_send_is_refused_before_writing() {
    let mut c = codec(4);
    let mut dst = BytesMut::new();
    for frame in [&b"12345"[..], b"[1,2]"] {
        let err = c
            .encode(Outbound::Data(Bytes::copy_from_slice(frame)), &mut dst)
            .expect_err("too big");
        assert!(
            matches!(err, Error::FrameTooLarge { len: 5, max: 4 }),
            "{err}"
        );
        assert!(dst.is_empty());
    }
    c.encode(
        Outbound::Data(Bytes::from_static(b"\xff\xff\xff\xff")),
        &mut dst,
    )
    .expect("exactly the limit, as base64");
    assert_eq!(dst.len(), JsonLinesCodec::line_limit(4) + 1);
}

/// A peer with a larger limit sends lines we must refuse; `len` is in frame bytes.
#[test]
fn long_lines_are_rejected_with_the_frame_length_then_the_next_line_comes() {
    let max = 30;
    let limit = JsonLinesCodec::line_limit(max);
    assert_eq!(limit, 53);
    let big = |n: usize| {
        let mut c = codec(1 << 20);
        let mut out = BytesMut::new();
        c.encode(Outbound::Data(Bytes::from(vec![0xABu8; n])), &mut out)
            .expect("encode");
        out.to_vec()
    };
    // $bytes lines with 0, 1 and 2 padding characters, a long verbatim JSON line, a
    // long line of garbage, each with CRLF too; both fed whole and byte by byte (the
    // line codec's two rejection paths).
    let json_line = format!("[{}]\n", "1,".repeat(40) + "1");
    let cases: Vec<(Vec<u8>, u64)> = vec![
        (big(300), 300),
        (big(301), 301),
        (big(302), 302),
        (big(31), 31),
        (json_line.clone().into_bytes(), json_line.len() as u64 - 1),
        (vec![b'x'; 999].into_iter().chain([b'\n']).collect(), 999),
        (
            big(301)
                .strip_suffix(b"\n")
                .expect("line")
                .iter()
                .copied()
                .chain(*b"\r\n")
                .collect(),
            301,
        ),
        (b"[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]\n".to_vec(), 33),
    ];
    for (line, len) in cases {
        for chunk in [1, 7, 64, 100_000] {
            let mut c = codec(max);
            let mut wire = b"\n".to_vec();
            wire.extend_from_slice(&line);
            wire.extend_from_slice(b"{\"next\":true}\n");
            let out = decode_all(&mut c, &wire, chunk);
            assert_eq!(out.len(), 2, "{out:?}");
            match &out[0] {
                Decoded::Rejected(Error::FrameTooLarge { len: got, max: m }) => {
                    assert_eq!((*got, *m), (len, max), "chunk {chunk}, line {}", line.len());
                }
                other => panic!("expected FrameTooLarge, got {other:?}"),
            }
            assert!(matches!(&out[1], Decoded::Frame(f) if f == "{\"next\":true}"));
        }
    }
}

#[test]
fn a_stream_cut_inside_a_line_is_a_lost_peer() {
    let mut c = codec(1024);
    let mut buf = BytesMut::from(&b"{\"a\":1}\n{\"b\""[..]);
    assert!(matches!(
        c.decode_eof(&mut buf),
        Ok(Some(Decoded::Frame(_)))
    ));
    assert!(matches!(c.decode_eof(&mut buf), Err(Error::PeerLost(_))));
}

/// Pieces of JSON, reserved keys and troublemakers, for frames that are often JSON.
fn jsonish() -> impl Strategy<Value = Vec<u8>> {
    let token = prop::sample::select(vec![
        "{",
        "}",
        "[",
        "]",
        ":",
        ",",
        " ",
        "\r",
        "\n",
        "\"$bytes\"",
        "\"$ipc\"",
        "\"goodbye\"",
        "\"AAEC\"",
        "\"/w==\"",
        "\"x\"",
        "1",
        "-2.5",
        "null",
        "\"\\u0024bytes\"",
        "\"\\ud800\"",
        "\u{e9}",
        "\u{fffd}",
    ]);
    prop::collection::vec(token, 0..12).prop_map(|t| t.concat().into_bytes())
}

/// Real JSON as serde_json writes it: objects under reserved or ordinary keys, compact
/// or pretty.
fn json_object() -> impl Strategy<Value = (String, Vec<u8>, bool)> {
    let key = prop::sample::select(vec!["$bytes", "$ipc", "a", "$schema", "$bytes2"]);
    (key, any::<String>(), any::<bool>()).prop_map(|(key, value, pretty)| {
        let value = serde_json::json!({ key: value });
        let bytes = if pretty {
            serde_json::to_vec_pretty(&value)
        } else {
            serde_json::to_vec(&value)
        };
        (key.to_string(), bytes.expect("json"), pretty)
    })
}

fn any_frame() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..200),
        jsonish(),
        any::<String>().prop_map(|s| s.into_bytes()),
        any::<String>().prop_map(|s| serde_json::to_vec(&s).expect("json")),
        json_object().prop_map(|(_, bytes, _)| bytes),
        Just(GOODBYE_LINE.to_vec()),
        Just(br#"{"$bytes":"AAEC"}"#.to_vec()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn every_byte_string_round_trips(frame in any_frame()) {
        let mut c = codec(1024);
        let mut wire = BytesMut::new();
        c.encode(Outbound::Data(Bytes::from(frame.clone())), &mut wire).expect("encode");
        // One line, valid UTF-8 JSON, whatever the frame.
        prop_assert_eq!(wire.iter().filter(|b| **b == b'\n').count(), 1);
        prop_assert_eq!(wire.last(), Some(&b'\n'));
        prop_assert!(std::str::from_utf8(&wire).is_ok());
        prop_assert!(serde_json::from_slice::<serde::de::IgnoredAny>(&wire).is_ok());
        let out = decode_all(&mut c, &wire, 1000);
        prop_assert_eq!(frames(&out), vec![frame]);
    }

    #[test]
    fn compact_json_is_verbatim_unless_reserved((key, frame, pretty) in json_object()) {
        let line = wire(&frame);
        let verbatim = line[..line.len() - 1] == frame[..];
        let reserved = key == "$bytes" || key == "$ipc";
        prop_assert_eq!(verbatim, !pretty && !reserved);
    }

    #[test]
    fn sequences_round_trip_in_any_chunking(
        batch in prop::collection::vec(any_frame(), 0..16),
        chunk in 1usize..40,
    ) {
        let mut c = codec(1024);
        let mut wire = BytesMut::new();
        for f in &batch {
            c.encode(Outbound::Data(Bytes::from(f.clone())), &mut wire).expect("encode");
        }
        c.encode(Outbound::Goodbye, &mut wire).expect("encode");
        let mut out = decode_all(&mut c, &wire, chunk);
        prop_assert!(matches!(out.pop(), Some(Decoded::Goodbye)));
        prop_assert_eq!(frames(&out), batch);
    }

    #[test]
    fn arbitrary_input_never_panics_nor_overbuffers(
        data in prop::collection::vec(any::<u8>(), 0..4096),
        chunk in 1usize..64,
    ) {
        let max = 32;
        let mut c = codec(max);
        let mut buf = BytesMut::new();
        for piece in data.chunks(chunk) {
            buf.extend_from_slice(piece);
            while let Some(d) = c.decode(&mut buf).expect("decode never fails mid-stream") {
                if let Decoded::Frame(f) = d {
                    prop_assert!(f.len() <= max);
                }
            }
            prop_assert!(buf.len() <= c.max_line() + 2 + chunk);
        }
        let _ = c.decode_eof(&mut buf);
    }
}

/// What one line becomes when read: `frame TEXT`, `rejected`, `skipped` or `goodbye`.
fn read_one(line: &[u8]) -> String {
    let mut c = codec(1024);
    let mut buf = BytesMut::from(line);
    match c.decode(&mut buf) {
        Ok(Some(Decoded::Frame(f))) => format!("frame {}", String::from_utf8_lossy(&f)),
        Ok(Some(Decoded::Rejected(Error::Decode { .. }))) => "rejected".to_string(),
        Ok(Some(Decoded::Goodbye)) => "goodbye".to_string(),
        Ok(None) => "skipped".to_string(),
        other => panic!("{other:?}"),
    }
}

/// The line one frame becomes when written.
fn written(frame: &[u8]) -> String {
    String::from_utf8(wire(frame)).expect("UTF-8 line")
}

/// PROTOCOL.md §9, "the exact dialect": each edge case, read and written. A frame that
/// is not a JSON text this codec reads back as itself travels as `$bytes`, so every
/// frame still round-trips.
#[test]
fn the_json_dialect_edge_cases() {
    for (line, outcome) in [
        (&b"\"\\ud800\"\n"[..], "rejected"),
        (b"\"\\ud83d\\ude00\"\n", "frame \"\\ud83d\\ude00\""),
        (b"1e400\n", "rejected"),
        (b"-1e400\n", "rejected"),
        (
            b"123456789012345678901234567890\n",
            "frame 123456789012345678901234567890",
        ),
        (b"NaN\n", "rejected"),
        (b"Infinity\n", "rejected"),
        (b"{\"$bytes\":\"AA==\",\"x\":1}\n", "rejected"),
        (b"{\"$ipc\":\"goodbye\",\"x\":1}\n", "rejected"),
        (b"{\"$bytes\":1}\n", "rejected"),
        (b"{ \"$ipc\" : \"goodbye\" }\n", "goodbye"),
        (b"   \t \n", "rejected"),
        (b"\n", "skipped"),
        (b"\r\n", "skipped"),
        (b"{\"a\":1}\r\n", "frame {\"a\":1}"),
    ] {
        assert_eq!(
            read_one(line),
            outcome,
            "{:?}",
            String::from_utf8_lossy(line)
        );
    }
    for (frame, line) in [
        (&b"\"\\ud800\""[..], "{\"$bytes\":\"Ilx1ZDgwMCI=\"}\n"),
        (b"1e400", "{\"$bytes\":\"MWU0MDA=\"}\n"),
        (
            b"123456789012345678901234567890",
            "123456789012345678901234567890\n",
        ),
        (b"NaN", "{\"$bytes\":\"TmFO\"}\n"),
        (
            b"{\"$bytes\":\"AA==\",\"x\":1}",
            "{\"$bytes\":\"eyIkYnl0ZXMiOiJBQT09IiwieCI6MX0=\"}\n",
        ),
        (b"   ", "{\"$bytes\":\"ICAg\"}\n"),
        (b"{\"a\":1}\r", "{\"$bytes\":\"eyJhIjoxfQ0=\"}\n"),
    ] {
        assert_eq!(written(frame), line, "{:?}", String::from_utf8_lossy(frame));
        let mut c = codec(1024);
        assert_eq!(
            frames(&decode_all(&mut c, line.as_bytes(), 3)),
            vec![frame.to_vec()]
        );
    }
}
