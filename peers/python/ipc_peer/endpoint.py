"""Endpoint strings (PROTOCOL.md section 4).

>>> parse_endpoint("tcp://127.0.0.1:7000")
Endpoint(scheme='tcp', host='127.0.0.1', port=7000, path='', fds=())
>>> str(parse_endpoint("unix:@my-app"))
'unix:@my-app'
>>> parse_endpoint("pipe:fd=3,4").fds
(3, 4)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

from .errors import BadEndpoint

KNOWN_FORMS = (
    "tcp://HOST:PORT, unix:/PATH, unix:@NAME, uds:fd=N, fifo:/DIR, pipe:fd=R,W, stdio:"
)


@dataclass(frozen=True)
class Endpoint:
    """A parsed endpoint: ``scheme`` is ``tcp``, ``unix``, ``uds``, ``pipe``, ``fifo``
    or ``stdio``; ``path`` holds a Unix socket path (``@name`` for an abstract name) or
    a FIFO directory; ``fds`` the inherited fds (``uds``: one, ``pipe``: read, write)."""

    scheme: str
    host: str = ""
    port: int = 0
    path: str = ""
    fds: Tuple[int, ...] = ()

    def __str__(self) -> str:
        if self.scheme == "tcp":
            host = f"[{self.host}]" if ":" in self.host else self.host
            return f"tcp://{host}:{self.port}"
        if self.scheme in ("unix", "fifo"):
            return f"{self.scheme}:{self.path}"
        if self.scheme == "uds":
            return f"uds:fd={self.fds[0]}"
        if self.scheme == "pipe":
            return f"pipe:fd={self.fds[0]},{self.fds[1]}"
        return "stdio:"

    @property
    def is_abstract(self) -> bool:
        """A Linux abstract socket name (``unix:@name``)."""
        return self.scheme == "unix" and self.path.startswith("@")

    def socket_address(self) -> str:
        """The address for ``socket.connect``/``bind`` of a ``unix:`` endpoint."""
        return "\0" + self.path[1:] if self.is_abstract else self.path


def _bad(text: str, why: str) -> BadEndpoint:
    return BadEndpoint(f"bad endpoint {text!r}: {why}. Known forms: {KNOWN_FORMS}")


def _fd(text: str, value: str) -> int:
    if not value.isdigit():
        raise _bad(text, f"{value!r} is not a file descriptor number")
    return int(value)


def parse_endpoint(text: str) -> Endpoint:
    """Parse an endpoint string; :class:`BadEndpoint` says what is wrong."""
    if text.startswith("tcp://"):
        rest = text[len("tcp://") :]
        host, sep, port = rest.rpartition(":")
        if not sep or not port.isdigit() or int(port) > 65535:
            raise _bad(text, "expected tcp://HOST:PORT")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        if not host:
            raise _bad(text, "the host is empty")
        return Endpoint("tcp", host=host, port=int(port))
    scheme, sep, rest = text.partition(":")
    if not sep:
        raise _bad(text, "no scheme")
    if scheme == "unix":
        if not rest or rest == "@":
            raise _bad(text, "the path is empty")
        return Endpoint("unix", path=rest)
    if scheme == "fifo":
        if not rest:
            raise _bad(text, "the directory is empty")
        return Endpoint("fifo", path=rest)
    if scheme == "stdio":
        if rest:
            raise _bad(text, "stdio: takes nothing after the colon")
        return Endpoint("stdio")
    if scheme in ("uds", "pipe"):
        if not rest.startswith("fd="):
            raise _bad(text, f"expected {scheme}:fd=...")
        fds = tuple(_fd(text, v) for v in rest[3:].split(","))
        if scheme == "uds" and len(fds) != 1:
            raise _bad(text, "expected uds:fd=N")
        if scheme == "pipe" and len(fds) != 2:
            raise _bad(text, "expected pipe:fd=R,W")
        return Endpoint(scheme, fds=fds)
    if scheme in ("signal", "node"):
        raise _bad(text, f"the {scheme} transport is not implemented by ipc_peer")
    raise _bad(text, f"unknown scheme {scheme!r}")
