"""Length-prefixed frames (PROTOCOL.md section 1).

A frame is a big-endian ``u32`` length, then that many payload bytes. The length
``0xFFFFFFFF`` is not a frame but the goodbye: "I closed cleanly, nothing follows".

>>> encode_frame(b"hi")
b'\\x00\\x00\\x00\\x02hi'
>>> d = FrameDecoder(max_frame=16)
>>> d.feed(b"\\x00\\x00\\x00\\x02hi\\xff\\xff\\xff\\xff")
>>> d.next_event(), d.next_event()
((<Event.FRAME: 1>, b'hi'), (<Event.GOODBYE: 2>, b''))
"""

from __future__ import annotations

import enum
import struct
from typing import Optional, Tuple

from .errors import FrameTooLarge

#: Default largest frame: 8 MiB, as in the Rust toolkit.
DEFAULT_MAX_FRAME = 8 << 20
#: The largest limit a length prefix can express (``0xFFFFFFFF`` is the goodbye).
MAX_FRAME_LIMIT = 0xFFFFFFFE
#: The length value that means goodbye.
GOODBYE = 0xFFFFFFFF
#: The goodbye as it is written on the wire.
GOODBYE_BYTES = b"\xff\xff\xff\xff"

_HEAD = struct.Struct(">I")


def encode_frame(payload: bytes, max_frame: int = DEFAULT_MAX_FRAME) -> bytes:
    """The wire form of one frame; :class:`FrameTooLarge` if over ``max_frame``.

    >>> encode_frame(b"")
    b'\\x00\\x00\\x00\\x00'
    """
    if len(payload) > max_frame:
        raise FrameTooLarge(len(payload), max_frame)
    return _HEAD.pack(len(payload)) + bytes(payload)


def frame_header(length: int) -> bytes:
    """The 4-byte length prefix alone (for writing a large payload without copying)."""
    return _HEAD.pack(length)


class Event(enum.Enum):
    """What :meth:`FrameDecoder.next_event` found."""

    FRAME = 1
    GOODBYE = 2


class FrameDecoder:
    """Incremental decoder: :meth:`feed` bytes as they arrive, take events out.

    A length over ``max_frame`` makes :meth:`next_event` raise :class:`FrameTooLarge`
    once; that many payload bytes are then skipped as they arrive, never buffered, and
    the next frame is decoded as usual. A reader must not assume one read returns one
    frame; this class does not.
    """

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self.max_frame = max_frame
        self._buf = bytearray()
        self._pos = 0  # bytes of _buf already consumed
        self._skip = 0  # payload bytes of an oversize frame still to discard

    def feed(self, data: bytes) -> None:
        """Append bytes read from the stream."""
        if self._skip:
            n = min(self._skip, len(data))
            self._skip -= n
            data = data[n:]
        if self._pos and self._pos >= len(self._buf) // 2:
            del self._buf[: self._pos]
            self._pos = 0
        self._buf += data

    def buffered(self) -> int:
        """Bytes received but not yet returned as an event."""
        return len(self._buf) - self._pos

    def next_event(self) -> Optional[Tuple[Event, bytes]]:
        """The next complete event, or ``None`` until more bytes are fed.

        Raises :class:`FrameTooLarge` (not fatal) for a frame over the limit.
        """
        if self._skip or self.buffered() < 4:
            return None
        (length,) = _HEAD.unpack_from(self._buf, self._pos)
        if length == GOODBYE:
            self._pos += 4
            return (Event.GOODBYE, b"")
        if length > self.max_frame:
            self._pos += 4
            n = min(length, self.buffered())
            self._pos += n
            self._skip = length - n
            raise FrameTooLarge(length, self.max_frame)
        if self.buffered() < 4 + length:
            return None
        start = self._pos + 4
        payload = bytes(self._buf[start : start + length])
        self._pos = start + length
        return (Event.FRAME, payload)

    def eof_error(self) -> str:
        """Why ending the stream here is a lost peer (the stream ended without goodbye)."""
        left = self.buffered()
        if self._skip:
            return f"the stream ended inside a skipped oversize frame ({self._skip} bytes missing)"
        if not left:
            return "the stream ended without a goodbye"
        if left < 4:
            return f"the stream ended inside a length prefix ({left} of 4 bytes)"
        (length,) = _HEAD.unpack_from(self._buf, self._pos)
        return f"the stream ended inside a frame ({left - 4} of {length} bytes)"
