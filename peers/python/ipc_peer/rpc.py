"""Request/response, wire-compatible with the Rust ``ipc::rpc`` (``RpcClient`` and
``serve``): PROTOCOL.md section 6.

Each message is one frame: ``kind`` (u8), ``id`` (u64, big-endian), then the body.
kind 0 = request, 1 = response, 2 = error response (body: UTF-8 message). The caller
picks a fresh id per request; the server answers with the same id, in any order.

>>> encode_message(REQUEST, 7, b"hi").hex(" ")
'00 00 00 00 00 00 00 00 07 68 69'
>>> decode_message(bytes.fromhex("01 0000000000000007 6f6b"))
(1, 7, b'ok')
"""

from __future__ import annotations

import json
import struct
import time
from typing import Any, Callable, Optional, Tuple

from .channel import Channel
from .errors import Closed, DecodeError, IpcError, RemoteError, Timeout

REQUEST = 0
RESPONSE = 1
ERROR = 2
_HEADER = struct.Struct(">BQ")


def encode_message(kind: int, message_id: int, body: bytes) -> bytes:
    """One rpc frame."""
    return _HEADER.pack(kind, message_id) + bytes(body)


def decode_message(frame: bytes) -> Tuple[int, int, bytes]:
    """``(kind, id, body)``; :class:`DecodeError` for a frame shorter than 9 bytes."""
    if len(frame) < _HEADER.size:
        raise DecodeError(f"rpc frame of {len(frame)} bytes, shorter than the 9-byte header")
    kind, message_id = _HEADER.unpack_from(frame)
    return kind, message_id, bytes(frame[_HEADER.size :])


class RpcClient:
    """The calling side, for a peer running Rust ``ipc::rpc::serve`` or :func:`serve`.

    Calls are made one at a time (it is not thread-safe); a response that arrives
    after its call timed out is discarded, as in Rust.
    """

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self._next_id = 1

    def call(self, body: bytes, timeout: Optional[float] = None) -> bytes:
        """Send ``body`` as a request and return the response body.

        Raises :class:`RemoteError` with the server's message when its handler failed,
        :class:`Timeout` after ``timeout`` seconds, :class:`PeerLost` when the channel
        died and :class:`Closed` when the server closed it.
        """
        message_id = self._next_id
        self._next_id += 1
        self.channel.send(encode_message(REQUEST, message_id, body))
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise Timeout(f"no rpc response within {timeout} s")
            try:
                frame = self.channel.recv(left)
            except IpcError as e:
                if e.fatal:
                    raise
                continue  # one bad frame (or our wait timed out: checked above)
            if frame is None:
                raise Closed("the server closed the channel before answering")
            try:
                kind, got_id, reply = decode_message(frame)
            except DecodeError:
                continue
            # Another id is the late answer to a call that timed out: discarded.
            if kind in (RESPONSE, ERROR) and got_id == message_id:
                break
        if kind == ERROR:
            raise RemoteError(f"the peer reported an error: {reply.decode('utf-8', 'replace')}")
        return reply

    def call_json(self, value: Any, timeout: Optional[float] = None) -> Any:
        """:meth:`call` with JSON bodies (Rust ``call_typed::<Json, _, _>``)."""
        body = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        return json.loads(self.call(body, timeout).decode("utf-8"))

    def close(self) -> None:
        """Close the channel cleanly; the server's ``serve`` loop then ends."""
        self.channel.close()


def serve(channel: Channel, handler: Callable[[bytes], bytes]) -> None:
    """Answer requests on ``channel`` with ``handler`` until the client closes, then
    close our side. A handler exception becomes an error response carrying its text.
    Requests are handled one after another. Raises :class:`PeerLost` if the client
    vanished without closing."""
    try:
        while True:
            try:
                frame = channel.recv()
            except IpcError as e:
                if e.fatal:
                    raise
                continue
            if frame is None:
                return
            try:
                kind, message_id, body = decode_message(frame)
            except DecodeError:
                continue
            if kind != REQUEST:
                continue
            try:
                answer = encode_message(RESPONSE, message_id, handler(body))
            except Exception as e:  # the handler's failure goes back to the caller
                answer = encode_message(ERROR, message_id, str(e).encode("utf-8"))
            channel.send(answer)
    finally:
        channel.close()


__all__ = [
    "RpcClient",
    "serve",
    "encode_message",
    "decode_message",
    "REQUEST",
    "RESPONSE",
    "ERROR",
]
