"""ipc_peer: a peer of the Rust ipc toolkit in pure Python (standard library only).

Frames and the clean-close goodbye, the child side of every spawn transport (uds, tcp,
pipe, fifo, stdio), connect/listen on Unix sockets and TCP (with the token handshake),
a Python parent spawning any child (a Rust one too), and request/response compatible
with ``ipc::rpc``. The wire format is ``docs/PROTOCOL.md`` of the toolkit.

A child started by a Rust parent, ``ipc-cat --spawn``, or :func:`spawn`::

    import ipc_peer
    with ipc_peer.connect_from_env() as parent:   # closes cleanly at the end
        for frame in parent:                      # until the parent's goodbye
            parent.send(frame.upper())

``recv()`` returns ``None`` when the peer closed cleanly and raises :class:`PeerLost`
when it vanished without closing.
"""

from __future__ import annotations

from .channel import Channel, FramedChannel, JsonLinesChannel
from .connect import (
    IPC_ENDPOINT,
    IPC_MAX_FRAME,
    IPC_TOKEN,
    connect,
    connect_from_env,
    is_child,
    max_frame_from_env,
)
from .endpoint import Endpoint, parse_endpoint
from .errors import (
    AuthError,
    BadEndpoint,
    Closed,
    DecodeError,
    FrameTooLarge,
    HandshakeError,
    IpcError,
    NotAChild,
    PeerLost,
    RemoteError,
    Timeout,
    Unsupported,
)
from .frames import DEFAULT_MAX_FRAME
from .listen import Listener, listen
from .rpc import RpcClient, serve
from .spawn import spawn

__version__ = "0.1.0"

__all__ = [
    "AuthError",
    "BadEndpoint",
    "Channel",
    "Closed",
    "DEFAULT_MAX_FRAME",
    "DecodeError",
    "Endpoint",
    "FrameTooLarge",
    "FramedChannel",
    "HandshakeError",
    "IPC_ENDPOINT",
    "IPC_MAX_FRAME",
    "IPC_TOKEN",
    "IpcError",
    "JsonLinesChannel",
    "Listener",
    "NotAChild",
    "PeerLost",
    "RemoteError",
    "RpcClient",
    "Timeout",
    "Unsupported",
    "connect",
    "connect_from_env",
    "is_child",
    "listen",
    "max_frame_from_env",
    "parse_endpoint",
    "serve",
    "spawn",
]
