"""The stdio JSON-lines mapping of PROTOCOL.md section 9."""

from __future__ import annotations

import doctest
import unittest
from typing import Any

from ipc_peer import jsonlines
from ipc_peer.errors import DecodeError, FrameTooLarge
from ipc_peer.jsonlines import LineSplitter, Line, decode_line, encode_line, is_plain_json, line_limit


def load_tests(loader: unittest.TestLoader, tests: unittest.TestSuite, pattern: Any) -> unittest.TestSuite:
    tests.addTests(doctest.DocTestSuite(jsonlines))
    return tests


class EncodeTest(unittest.TestCase):
    def test_one_line_json_travels_as_itself(self) -> None:
        for frame in [b'{"a":1}', b"42", b'"x"', b"null", b"[1,2]", b' {"b": [true]} ', '"你好"'.encode()]:
            self.assertEqual(encode_line(frame), frame + b"\n", frame)

    def test_everything_else_is_base64(self) -> None:
        cases = {
            b"": b'{"$bytes":""}\n',
            b"\x00\x01\x02": b'{"$bytes":"AAEC"}\n',
            b"ping": b'{"$bytes":"cGluZw=="}\n',
            b'{"a":\n1}': b'{"$bytes":"eyJhIjoKMX0="}\n',
            b"1\r": b'{"$bytes":"MQ0="}\n',
        }
        for frame, line in cases.items():
            self.assertEqual(encode_line(frame), line, frame)

    def test_reserved_keys_are_wrapped(self) -> None:
        for frame in [b'{"$bytes":"AA=="}', b'{"$ipc":"goodbye"}', b'{"a":1,"$ipc":2}', b'{"$byt\\u0065s":"x"}']:
            self.assertFalse(is_plain_json(frame), frame)
        # Only top-level keys are reserved; "$schema" is not one.
        self.assertTrue(is_plain_json(b'{"a":{"$bytes":"x"}}'))
        self.assertTrue(is_plain_json(b'{"$schema":1}'))

    def test_what_a_strict_reader_refuses_goes_as_base64(self) -> None:
        for frame in [
            b"NaN",
            b"[Infinity]",
            b"-Infinity",
            b"1e400",
            b"1" * 400,
            b'"\\ud800"',
            b'{"\\udc00":1}',
            b"[" * 150 + b"]" * 150,
            b"{} {}",
            b"\xff",
        ]:
            self.assertFalse(is_plain_json(frame), frame[:40])
            kind, back = decode_line(encode_line(frame)[:-1], 1 << 20)
            self.assertEqual((kind, back), (Line.FRAME, frame))

    def test_surrogate_pairs_are_fine(self) -> None:
        self.assertTrue(is_plain_json(b'"\\ud83d\\ude00"'))

    def test_round_trip_of_every_byte(self) -> None:
        for frame in [bytes(range(256)), b'{"a":1}', b"", b"plain text", b"[1]\n"]:
            kind, back = decode_line(encode_line(frame)[:-1], 1 << 20)
            self.assertEqual((kind, back), (Line.FRAME, frame))


class DecodeTest(unittest.TestCase):
    def test_goodbye_blank_and_crlf(self) -> None:
        self.assertEqual(decode_line(b'{"$ipc":"goodbye"}', 100), (Line.GOODBYE, b""))
        self.assertEqual(decode_line(b' { "$ipc" : "goodbye" } \r', 100), (Line.GOODBYE, b""))
        self.assertEqual(decode_line(b"   ", 100)[0], Line.BLANK)
        self.assertEqual(decode_line(b"[1]\r", 100), (Line.FRAME, b"[1]"))

    def test_bad_lines_are_one_error_each(self) -> None:
        for line, why in [
            (b"hello from a stray print", "not JSON"),
            (b'{"$ipc":"restart"}', "unknown control message"),
            (b'{"$bytes":"AA=","x":1}', "must be exactly"),
            (b'{"$bytes":1}', "must be exactly"),
            (b'{"$bytes":"AAE"}', "not a multiple of 4"),
            (b'{"$bytes":"AA!="}', "bad base64"),
        ]:
            with self.assertRaises(DecodeError) as caught:
                decode_line(line, 100)
            self.assertIn(why, str(caught.exception))
            self.assertFalse(caught.exception.fatal)

    def test_limits(self) -> None:
        self.assertEqual(line_limit(8 << 20), 13 + 4 * -(-(8 << 20) // 3))
        with self.assertRaises(FrameTooLarge):
            decode_line(b'"' + b"x" * 10 + b'"', 5)
        with self.assertRaises(FrameTooLarge):
            decode_line(b'{"$bytes":"AAAAAAAA"}', 5)
        self.assertEqual(decode_line(b'{"$bytes":"AAAAAA=="}', 4), (Line.FRAME, b"\x00" * 4))


class SplitterTest(unittest.TestCase):
    def test_lines_across_feeds_and_long_lines_discarded(self) -> None:
        splitter = LineSplitter(max_line=5)
        splitter.feed(b"ab")
        self.assertIsNone(splitter.next_line())
        splitter.feed(b"c\nxxxxxxxx")
        self.assertEqual(splitter.next_line(), (b"abc", 0))
        self.assertIsNone(splitter.next_line())
        splitter.feed(b"xxxx\r\nok\r\n")
        self.assertEqual(splitter.next_line(), (b"", 13))
        self.assertEqual(splitter.next_line(), (b"ok\r", 0))
        self.assertEqual(splitter.buffered(), 0)


if __name__ == "__main__":
    unittest.main()
