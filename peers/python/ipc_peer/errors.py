"""The exceptions of ipc_peer, one per cause, mirroring the Rust toolkit's ``Error``.

Per-frame errors (:class:`FrameTooLarge`, :class:`DecodeError`, :class:`Timeout`,
:class:`RemoteError`) leave the channel usable: ``fatal`` is ``False`` and the next
``recv()`` returns the next frame.
"""

from __future__ import annotations


class IpcError(Exception):
    """Base class of every error raised by ipc_peer."""

    #: True when the channel can no longer be used after this error.
    fatal: bool = True


class PeerLost(IpcError):
    """The stream ended without the peer's goodbye: it crashed, was killed, or dropped
    the connection. Every frame it sent before is delivered first."""


class Closed(IpcError):
    """The channel was closed: by this side (``send`` after ``close``), or the peer had
    already said goodbye when a ``send`` failed."""


class FrameTooLarge(IpcError):
    """A frame exceeded the limit. On receive its bytes were skipped without being
    buffered; on send nothing was written. The channel stays usable."""

    fatal = False

    def __init__(self, length: int, max_frame: int) -> None:
        super().__init__(
            f"frame of {length} bytes exceeds the limit of {max_frame} bytes; send smaller "
            f"messages or raise the limit (max_frame=..., IPC_MAX_FRAME) on both ends"
        )
        self.length = length
        self.max_frame = max_frame


class DecodeError(IpcError):
    """A frame or line arrived but could not be decoded (a stdio line that is not JSON,
    an rpc frame shorter than its header). The channel stays usable."""

    fatal = False


class HandshakeError(IpcError):
    """The connection did not start with a valid handshake (wrong magic or version, not
    an ipc peer, a FIFO hello that is not one)."""


class AuthError(IpcError):
    """The peer is not allowed: wrong TCP token, or another user id on a Unix socket."""


class Timeout(IpcError, TimeoutError):
    """An operation took longer than its deadline. Nothing was lost: a later ``recv()``
    still returns the frame when it comes."""

    fatal = False


class Unsupported(IpcError):
    """The operation is not available for this endpoint or transport."""


class BadEndpoint(IpcError, ValueError):
    """An endpoint string could not be parsed."""


class NotAChild(IpcError):
    """``connect_from_env()`` was called in a process no ipc parent started (no
    ``IPC_ENDPOINT``)."""


class RemoteError(IpcError):
    """The rpc server handled the request and reported this failure."""

    fatal = False
