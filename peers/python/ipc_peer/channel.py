"""Channels: ordered, whole frames both ways with a clean close (the goodbye) that a
crash cannot fake.

- ``recv()`` returns the next frame, ``None`` once the peer said goodbye, and raises
  :class:`PeerLost` when the stream ends without one.
- ``close()`` sends the goodbye and ends our writing side; ``recv()`` still works.
- ``abort()`` drops the connection without a goodbye: the peer sees ``PeerLost``.
- One thread may ``send`` while another ``recv``s (each direction has its own lock).
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any, Iterator, Optional, Tuple

from .errors import Closed, DecodeError, FrameTooLarge, PeerLost, Timeout
from .frames import DEFAULT_MAX_FRAME, GOODBYE_BYTES, Event, FrameDecoder, frame_header
from .jsonlines import GOODBYE_LINE, Line, LineSplitter, decode_line, encode_line, line_limit
from .streams import CHUNK, ByteStream

#: Frames at least this large are written without copying them behind their header.
_LARGE = 64 * 1024


class Channel:
    """A bidirectional message channel to one peer (see the module docs)."""

    def __init__(
        self,
        stream: ByteStream,
        transport: str,
        max_frame: int = DEFAULT_MAX_FRAME,
        peer_pid: Optional[int] = None,
    ) -> None:
        #: Transport name: ``uds``, ``tcp``, ``pipe``, ``fifo``, ``stdio``.
        self.transport = transport
        #: Largest payload sent or accepted, in bytes.
        self.max_frame = max_frame
        #: The peer's pid when known (``SO_PEERCRED``, or the child we spawned).
        self.peer_pid = peer_pid
        self._stream = stream
        self._send_lock = threading.Lock()
        self._recv_lock = threading.Lock()
        self._closed = False  # we sent the goodbye (or aborted)
        self._peer_closed = False  # we received the goodbye
        self._lost: Optional[str] = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.transport} peer_pid={self.peer_pid}>"

    # -- sending -----------------------------------------------------------------

    def send(self, frame: bytes) -> None:
        """Send one frame (``bytes``-like, up to ``max_frame`` bytes; ``str`` is sent as
        UTF-8). Blocks while the peer is slow to read.

        Raises :class:`FrameTooLarge` (nothing written), :class:`Closed` after our own
        ``close()`` or when the peer had said goodbye, :class:`PeerLost` when the peer
        is gone without one.
        """
        data = frame.encode("utf-8") if isinstance(frame, str) else bytes(frame)
        with self._send_lock:
            if self._closed:
                raise Closed("send after close(): this side closed the channel")
            try:
                self._write_frame(data)
            except (BrokenPipeError, ConnectionError) as e:
                if self._peer_closed:
                    raise Closed(f"the peer closed the channel ({e})") from None
                raise PeerLost(f"cannot send: {e}") from None

    def send_json(self, value: Any) -> None:
        """Send ``value`` as one compact JSON frame (UTF-8, no newline inside)."""
        self.send(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))

    def close(self) -> None:
        """Send the goodbye and end our writing side; the peer's ``recv`` returns
        ``None`` after our last frame. Idempotent; ``recv`` keeps working. A peer that is
        already gone is not an error here."""
        with self._send_lock:
            if self._closed:
                return
            self._closed = True
            try:
                self._write_goodbye()
            except (BrokenPipeError, ConnectionError):
                pass
            self._stream.shutdown_write()

    def abort(self) -> None:
        """End the connection at once without a goodbye (the peer sees ``PeerLost``)
        and release it."""
        self._closed = True
        self._stream.close()

    def release(self) -> None:
        """Release the connection's fds (after ``close()`` and reading to the end)."""
        self._stream.close()

    def __enter__(self) -> "Channel":
        return self

    def __exit__(self, kind: Any, value: Any, tb: Any) -> None:
        """A ``with`` block closes cleanly when it ends normally, and aborts (no
        goodbye) when it ends with an exception."""
        if kind is None:
            self.close()
            self.release()
        else:
            self.abort()

    # -- receiving ---------------------------------------------------------------

    def recv(self, timeout: Optional[float] = None) -> Optional[bytes]:
        """The next frame; ``None`` once the peer closed cleanly (and on every later
        call). Raises :class:`PeerLost` when the stream ended without the goodbye,
        :class:`Timeout` when ``timeout`` seconds passed with no frame (nothing lost),
        and the per-frame :class:`FrameTooLarge` / :class:`DecodeError` (the next call
        returns the next frame)."""
        with self._recv_lock:
            deadline = None if timeout is None else time.monotonic() + timeout
            while True:
                if self._peer_closed:
                    return None
                if self._lost is not None:
                    raise PeerLost(self._lost)
                event = self._next_event()
                if event is not None:
                    kind, payload = event
                    if kind == Event.GOODBYE:
                        self._peer_closed = True
                        return None
                    return payload
                if deadline is not None:
                    left = deadline - time.monotonic()
                    if left <= 0 or not self._stream.wait_readable(left):
                        raise Timeout(f"no frame arrived within {timeout} s")
                try:
                    data = self._stream.read(CHUNK)
                except ConnectionError as e:
                    self._lost = f"the connection was reset ({e}), without a goodbye"
                    continue
                if not data:
                    self._lost = self._eof_reason()
                    continue
                self._feed(data)

    def recv_json(self, timeout: Optional[float] = None) -> Any:
        """The next frame decoded as JSON. Raises :class:`Closed` at the peer's goodbye
        (a JSON ``null`` is a frame, so ``None`` cannot mean the end here) and
        :class:`DecodeError` (not fatal) for a frame that is not JSON."""
        frame = self.recv(timeout)
        if frame is None:
            raise Closed("the peer closed the channel")
        try:
            return json.loads(frame.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            raise DecodeError(f"a frame is not JSON ({e}): {frame[:80]!r}") from None

    def __iter__(self) -> Iterator[bytes]:
        """Frames until the peer's goodbye (``PeerLost`` if it never comes)."""
        while True:
            frame = self.recv()
            if frame is None:
                return
            yield frame

    def json_messages(self) -> Iterator[Any]:
        """Decoded JSON frames until the peer's goodbye."""
        for frame in self:
            yield json.loads(frame.decode("utf-8"))

    # -- framing, per subclass ---------------------------------------------------

    def _write_frame(self, data: bytes) -> None:
        raise NotImplementedError

    def _write_goodbye(self) -> None:
        raise NotImplementedError

    def _next_event(self) -> Optional[Tuple[Event, bytes]]:
        raise NotImplementedError

    def _feed(self, data: bytes) -> None:
        raise NotImplementedError

    def _eof_reason(self) -> str:
        raise NotImplementedError


class FramedChannel(Channel):
    """Length-prefixed frames (uds, tcp, pipe, fifo: PROTOCOL.md section 1)."""

    def __init__(
        self,
        stream: ByteStream,
        transport: str,
        max_frame: int = DEFAULT_MAX_FRAME,
        peer_pid: Optional[int] = None,
    ) -> None:
        super().__init__(stream, transport, max_frame, peer_pid)
        self._decoder = FrameDecoder(max_frame)

    def _write_frame(self, data: bytes) -> None:
        if len(data) > self.max_frame:
            raise FrameTooLarge(len(data), self.max_frame)
        if len(data) >= _LARGE:
            self._stream.write_all(frame_header(len(data)))
            self._stream.write_all(data)
        else:
            self._stream.write_all(frame_header(len(data)) + data)

    def _write_goodbye(self) -> None:
        self._stream.write_all(GOODBYE_BYTES)

    def _next_event(self) -> Optional[Tuple[Event, bytes]]:
        return self._decoder.next_event()

    def _feed(self, data: bytes) -> None:
        self._decoder.feed(data)

    def _eof_reason(self) -> str:
        return self._decoder.eof_error()


class JsonLinesChannel(Channel):
    """JSON lines (stdio: PROTOCOL.md section 9)."""

    def __init__(
        self,
        stream: ByteStream,
        transport: str = "stdio",
        max_frame: int = DEFAULT_MAX_FRAME,
        peer_pid: Optional[int] = None,
    ) -> None:
        super().__init__(stream, transport, max_frame, peer_pid)
        self._lines = LineSplitter(line_limit(max_frame))

    def _write_frame(self, data: bytes) -> None:
        if len(data) > self.max_frame:
            raise FrameTooLarge(len(data), self.max_frame)
        self._stream.write_all(encode_line(data))

    def _write_goodbye(self) -> None:
        self._stream.write_all(GOODBYE_LINE)

    def _next_event(self) -> Optional[Tuple[Event, bytes]]:
        while True:
            item = self._lines.next_line()
            if item is None:
                return None
            line, too_long = item
            if too_long:
                raise FrameTooLarge(max(too_long - 13, 0) * 3 // 4, self.max_frame)
            kind, payload = decode_line(line, self.max_frame)
            if kind == Line.GOODBYE:
                return (Event.GOODBYE, b"")
            if kind == Line.FRAME:
                return (Event.FRAME, payload)
            # A blank line: skipped.

    def _feed(self, data: bytes) -> None:
        self._lines.feed(data)

    def _eof_reason(self) -> str:
        if self._lines.buffered():
            return "the stream ended inside a line, without a goodbye"
        return "the stream ended without a goodbye line"
