"""Length-prefixed framing: the bytes of PROTOCOL.md section 1."""

from __future__ import annotations

import doctest
import unittest
from typing import Any, List, Optional, Tuple

from ipc_peer import frames
from ipc_peer.errors import FrameTooLarge
from ipc_peer.frames import GOODBYE_BYTES, Event, FrameDecoder, encode_frame


def load_tests(loader: unittest.TestLoader, tests: unittest.TestSuite, pattern: Any) -> unittest.TestSuite:
    tests.addTests(doctest.DocTestSuite(frames))
    return tests


def drain(decoder: FrameDecoder) -> List[Tuple[Event, bytes]]:
    out: List[Tuple[Event, bytes]] = []
    while True:
        event: Optional[Tuple[Event, bytes]] = decoder.next_event()
        if event is None:
            return out
        out.append(event)


class EncodeTest(unittest.TestCase):
    def test_documented_bytes(self) -> None:
        self.assertEqual(encode_frame(b"hi"), bytes.fromhex("00000002 6869"))
        self.assertEqual(encode_frame(b""), bytes.fromhex("00000000"))
        self.assertEqual(GOODBYE_BYTES, bytes.fromhex("ffffffff"))

    def test_oversize_send_writes_nothing(self) -> None:
        with self.assertRaises(FrameTooLarge) as caught:
            encode_frame(b"12345", max_frame=4)
        self.assertEqual((caught.exception.length, caught.exception.max_frame), (5, 4))
        self.assertFalse(caught.exception.fatal)


class DecodeTest(unittest.TestCase):
    def test_frames_split_across_reads_byte_by_byte(self) -> None:
        wire = encode_frame(b"hello") + encode_frame(b"") + encode_frame(b"x" * 300) + GOODBYE_BYTES
        decoder = FrameDecoder()
        events: List[Tuple[Event, bytes]] = []
        for i in range(len(wire)):
            decoder.feed(wire[i : i + 1])
            events.extend(drain(decoder))
        self.assertEqual(
            events,
            [(Event.FRAME, b"hello"), (Event.FRAME, b""), (Event.FRAME, b"x" * 300), (Event.GOODBYE, b"")],
        )

    def test_many_frames_in_one_read(self) -> None:
        decoder = FrameDecoder()
        decoder.feed(b"".join(encode_frame(str(i).encode()) for i in range(1000)))
        self.assertEqual([p for _, p in drain(decoder)], [str(i).encode() for i in range(1000)])

    def test_oversize_frame_is_skipped_and_the_next_delivered(self) -> None:
        decoder = FrameDecoder(max_frame=4)
        decoder.feed(bytes.fromhex("00000006") + b"abc")
        with self.assertRaises(FrameTooLarge) as caught:
            decoder.next_event()
        self.assertEqual(caught.exception.length, 6)
        self.assertIsNone(decoder.next_event())
        decoder.feed(b"def" + encode_frame(b"ok"))
        self.assertEqual(decoder.next_event(), (Event.FRAME, b"ok"))

    def test_huge_announced_length_costs_no_memory(self) -> None:
        decoder = FrameDecoder()
        decoder.feed(bytes.fromhex("7fffffff") + b"\x00" * 10)
        with self.assertRaises(FrameTooLarge):
            decoder.next_event()
        self.assertEqual(decoder.buffered(), 0)

    def test_eof_reasons(self) -> None:
        decoder = FrameDecoder()
        self.assertIn("without a goodbye", decoder.eof_error())
        decoder.feed(b"\x00\x00")
        self.assertIn("inside a length prefix (2 of 4 bytes)", decoder.eof_error())
        decoder.feed(b"\x00\x05ab")
        self.assertIsNone(decoder.next_event())
        self.assertIn("inside a frame (2 of 5 bytes)", decoder.eof_error())


if __name__ == "__main__":
    unittest.main()
