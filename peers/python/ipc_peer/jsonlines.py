"""The stdio transport's JSON-lines mapping (PROTOCOL.md section 9).

One JSON value per ``\\n``-terminated UTF-8 line. A frame that is one JSON value on one
line travels as itself; any other frame (binary, empty, not JSON, multi-line, or a
top-level object using the reserved keys ``$bytes``/``$ipc``) travels as
``{"$bytes":"<standard padded base64>"}``; the goodbye is ``{"$ipc":"goodbye"}``.

Writing, this module sends a frame verbatim only when the Rust reader (serde_json) is
sure to accept it as one JSON value: no ``NaN``/``Infinity``, no number beyond the
range of a double, no lone surrogate, nesting well under serde_json's 128 levels.
Anything in doubt goes as ``$bytes``, which always round-trips exactly.

>>> encode_line(b'{"a":1}')
b'{"a":1}\\n'
>>> encode_line(b"\\x00\\x01\\x02")
b'{"$bytes":"AAEC"}\\n'
>>> decode_line(b'{"$bytes":"AAEC"}\\r', 100)
(<Line.FRAME: 1>, b'\\x00\\x01\\x02')
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
import math
from typing import Any, List, Optional, Tuple

from .errors import DecodeError, FrameTooLarge

#: Reserved top-level key of a raw-bytes line.
BYTES_KEY = "$bytes"
#: Reserved top-level key of a control line.
CONTROL_KEY = "$ipc"
#: The goodbye line, with its newline.
GOODBYE_LINE = b'{"$ipc":"goodbye"}\n'

#: Deepest nesting written verbatim (serde_json refuses more than 128 levels).
_MAX_DEPTH = 100
#: Characters of a bad line quoted in an error.
_PREVIEW = 80


class Line(enum.Enum):
    """What one line carried."""

    FRAME = 1
    GOODBYE = 2
    BLANK = 3


class _Pairs(dict):  # type: ignore[type-arg]
    """A JSON object that remembers how many key/value pairs it had (duplicates too)."""

    pairs: List[Tuple[str, Any]]


def _object(pairs: List[Tuple[str, Any]]) -> _Pairs:
    obj = _Pairs(pairs)
    obj.pairs = pairs
    return obj


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"{text} is out of the range of a double")
    return value


def _int_in_range(text: str) -> int:
    value = int(text)
    float(value)  # OverflowError beyond the range of a double, as serde_json refuses
    return value


def _strict_loads(text: str) -> Any:
    return json.loads(
        text,
        object_pairs_hook=_object,
        parse_constant=_reject_constant,
        parse_float=_finite_float,
        parse_int=_int_in_range,
    )


def _has_surrogate(s: str) -> bool:
    return any(0xD800 <= ord(c) <= 0xDFFF for c in s)


def _portable(value: Any) -> bool:
    """No lone surrogate anywhere and nesting under the limit (iterative walk)."""
    stack: List[Tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if _has_surrogate(item):
                return False
        elif isinstance(item, dict):
            if depth > _MAX_DEPTH:
                return False
            for key, sub in item.items():
                if _has_surrogate(key):
                    return False
                stack.append((sub, depth + 1))
        elif isinstance(item, list):
            if depth > _MAX_DEPTH:
                return False
            stack.extend((sub, depth + 1) for sub in item)
    return True


def _reserved(value: Any) -> bool:
    if not isinstance(value, _Pairs):
        return False
    return any(key in (BYTES_KEY, CONTROL_KEY) for key, _ in value.pairs)


def is_plain_json(frame: bytes) -> bool:
    """True when ``frame`` travels as itself: one JSON value on one line that any
    conforming reader accepts, not using a reserved top-level key.

    >>> is_plain_json(b'[1, "x"]'), is_plain_json(b"NaN"), is_plain_json(b'{"$bytes":"AA=="}')
    (True, False, False)
    """
    if not frame or b"\n" in frame or frame.endswith(b"\r"):
        return False
    try:
        value = _strict_loads(bytes(frame).decode("utf-8"))
    except (ValueError, OverflowError, RecursionError):
        return False
    return _portable(value) and not _reserved(value)


def encode_line(frame: bytes) -> bytes:
    """The line (with its ``\\n``) that carries ``frame``."""
    if is_plain_json(frame):
        return bytes(frame) + b"\n"
    text = base64.b64encode(bytes(frame)).decode("ascii")
    return ('{"$bytes":"' + text + '"}\n').encode("ascii")


def line_limit(max_frame: int) -> int:
    """Longest line (without ``\\n``) that can carry a frame of ``max_frame`` bytes:
    ``13 + 4 * ceil(max_frame / 3)``, its ``$bytes`` form.

    >>> line_limit(0), line_limit(3), line_limit(4)
    (13, 17, 21)
    """
    return 13 + 4 * ((max_frame + 2) // 3)


def _preview(line: bytes) -> str:
    text = line.decode("utf-8", errors="replace")
    return repr(text if len(text) <= _PREVIEW else text[:_PREVIEW] + "...")


def decode_line(line: bytes, max_frame: int) -> Tuple[Line, bytes]:
    """What one line read from the peer carries (``line`` without its ``\\n``; a
    trailing ``\\r`` is dropped). Raises :class:`DecodeError` for a line that is not JSON
    or misuses a reserved key, :class:`FrameTooLarge` for a frame over ``max_frame``;
    both leave the stream usable.
    """
    if line.endswith(b"\r"):
        line = line[:-1]
    if not line.strip(b" \t\r\n"):
        return (Line.BLANK, b"")
    try:
        value = json.loads(line.decode("utf-8"), object_pairs_hook=_object)
    except (ValueError, RecursionError) as e:
        raise DecodeError(
            f"could not decode the stdio line {_preview(line)}: not JSON ({e}); every line "
            f"must be one JSON value (a stdio child must write its logs to stderr)"
        ) from None
    if not _reserved(value):
        if len(line) > max_frame:
            raise FrameTooLarge(len(line), max_frame)
        return (Line.FRAME, line)
    pairs = value.pairs
    if len(pairs) == 1 and isinstance(pairs[0][1], str):
        key, text = pairs[0]
        if key == BYTES_KEY:
            return (Line.FRAME, _base64(text, line, max_frame))
        if text == "goodbye":
            return (Line.GOODBYE, b"")
        raise DecodeError(
            f"could not decode the stdio line {_preview(line)}: unknown control message "
            f"{text!r}: the only one is {GOODBYE_LINE.strip().decode()}"
        )
    raise DecodeError(
        f"could not decode the stdio line {_preview(line)}: a top-level object using "
        f'"{BYTES_KEY}" or "{CONTROL_KEY}" must be exactly {{"{BYTES_KEY}":"<base64>"}} or '
        f'{{"{CONTROL_KEY}":"goodbye"}}'
    )


def _base64(text: str, line: bytes, max_frame: int) -> bytes:
    if len(text) % 4:
        raise DecodeError(
            f"could not decode the stdio line {_preview(line)}: its base64 text has "
            f"{len(text)} characters, not a multiple of 4"
        )
    size = len(text) // 4 * 3 - min(len(text) - len(text.rstrip("=")), 2)
    if size > max_frame:
        raise FrameTooLarge(size, max_frame)
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as e:
        raise DecodeError(
            f"could not decode the stdio line {_preview(line)}: bad base64 ({e}); "
            f'"{BYTES_KEY}" holds standard base64 with "=" padding'
        ) from None


class LineSplitter:
    """Cuts a byte stream into lines, discarding (not buffering) lines longer than
    ``max_line``; :meth:`next_line` returns ``(line, too_long_length)``."""

    def __init__(self, max_line: int) -> None:
        self.max_line = max_line
        self._buf = bytearray()
        self._pos = 0  # bytes of _buf already consumed
        self._discarding: Optional[int] = None  # bytes of an over-long line seen so far

    def feed(self, data: bytes) -> None:
        """Append bytes read from the stream."""
        if self._pos and self._pos >= len(self._buf) // 2:
            del self._buf[: self._pos]
            self._pos = 0
        self._buf += data

    def buffered(self) -> int:
        """Bytes of an unfinished line held (or being discarded)."""
        return len(self._buf) - self._pos + (self._discarding or 0)

    def next_line(self) -> Optional[Tuple[bytes, int]]:
        """``(line, 0)`` for a complete line (without ``\\n``); ``(b"", n)`` for a
        discarded line of ``n`` bytes; ``None`` until more bytes are fed."""
        end = self._buf.find(b"\n", self._pos)
        if self._discarding is not None:
            if end < 0:
                self._discarding += len(self._buf) - self._pos
                self._buf.clear()
                self._pos = 0
                return None
            length = self._discarding + end - self._pos
            self._pos = end + 1
            self._discarding = None
            return (b"", length)
        if end < 0:
            if len(self._buf) - self._pos > self.max_line + 1:  # +1: a CR may precede the LF
                self._discarding = len(self._buf) - self._pos
                self._buf.clear()
                self._pos = 0
            return None
        line = bytes(self._buf[self._pos : end])
        self._pos = end + 1
        if len(line) > self.max_line + (1 if line.endswith(b"\r") else 0):
            return (b"", len(line))
        return (line, 0)
