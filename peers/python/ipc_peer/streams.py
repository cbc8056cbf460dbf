"""Byte streams under a channel: a socket, or a pair of pipe fds."""

from __future__ import annotations

import os
import select
import socket
from typing import Any, List, Optional

#: Bytes asked of the OS per read.
CHUNK = 64 * 1024


class ByteStream:
    """A full-duplex byte stream: what a channel reads from and writes to."""

    def read(self, n: int) -> bytes:
        """Up to ``n`` bytes; ``b""`` at end of stream. May raise ``ConnectionError``."""
        raise NotImplementedError

    def write_all(self, data: bytes) -> None:
        """Write every byte (``BrokenPipeError``/``ConnectionError`` if the peer is gone)."""
        raise NotImplementedError

    def shutdown_write(self) -> None:
        """End the writing direction: the peer reads end-of-stream after our bytes."""
        raise NotImplementedError

    def close(self) -> None:
        """Release everything (both directions)."""
        raise NotImplementedError

    def read_fileno(self) -> int:
        """The fd that becomes readable when data arrives."""
        raise NotImplementedError

    def wait_readable(self, timeout: Optional[float]) -> bool:
        """Wait up to ``timeout`` seconds (``None``: forever) for data or end of stream."""
        if timeout is None:
            return True
        ready, _, _ = select.select([self.read_fileno()], [], [], max(timeout, 0.0))
        return bool(ready)


class SocketStream(ByteStream):
    """A connected stream socket (Unix or TCP). ``keep`` holds objects that must live
    (and be closed) with it, such as a lock file."""

    def __init__(self, sock: socket.socket, keep: Optional[List[Any]] = None) -> None:
        self.sock = sock
        self._keep = keep or []

    def read(self, n: int) -> bytes:
        return self.sock.recv(n)

    def write_all(self, data: bytes) -> None:
        self.sock.sendall(data)

    def shutdown_write(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # already disconnected: the peer sees the end anyway

    def close(self) -> None:
        self.sock.close()
        for item in self._keep:
            item.close()
        self._keep = []

    def read_fileno(self) -> int:
        return self.sock.fileno()


class PipeStream(ByteStream):
    """Two pipe fds (or FIFOs, or stdin/stdout copies): one read, one written.
    ``keep`` holds objects that must live (and be closed) with it."""

    def __init__(self, read_fd: int, write_fd: int, keep: Optional[List[Any]] = None) -> None:
        self.read_fd: Optional[int] = read_fd
        self.write_fd: Optional[int] = write_fd
        self._keep = keep or []

    def read(self, n: int) -> bytes:
        if self.read_fd is None:
            return b""
        return os.read(self.read_fd, n)

    def write_all(self, data: bytes) -> None:
        if self.write_fd is None:
            raise BrokenPipeError("the writing end is closed")
        view = memoryview(data)
        while view:
            written = os.write(self.write_fd, view)
            view = view[written:]

    def shutdown_write(self) -> None:
        if self.write_fd is not None:
            os.close(self.write_fd)
            self.write_fd = None

    def close(self) -> None:
        self.shutdown_write()
        if self.read_fd is not None:
            os.close(self.read_fd)
            self.read_fd = None
        for item in self._keep:
            item.close()
        self._keep = []

    def read_fileno(self) -> int:
        if self.read_fd is None:
            raise ValueError("the reading end is closed")
        return self.read_fd
