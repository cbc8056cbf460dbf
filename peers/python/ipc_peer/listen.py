"""Listening: ``listen("unix:/path" | "unix:@name" | "tcp://HOST:PORT")`` and
``Listener.accept()``.

Unix socket files are created 0600 (bound inside a fresh 0700 directory, then linked
into place, so nobody can connect before the mode is set); a stale file nobody answers
on is replaced, a live server's is not. Peers of another uid are refused
(``SO_PEERCRED``). TCP clients must pass the handshake with the listener's token
(default ``IPC_TOKEN``; none: only the empty token).
"""

from __future__ import annotations

import errno
import os
import socket
import stat
import tempfile
from typing import Any, Optional, Tuple, Union

from . import handshake
from .channel import Channel, FramedChannel
from .connect import peer_credentials, token_from_env
from .endpoint import Endpoint, parse_endpoint
from .errors import AuthError, Unsupported
from .frames import DEFAULT_MAX_FRAME
from .streams import SocketStream


class Listener:
    """Accepts channels on one endpoint; :attr:`endpoint` is where clients connect
    (with the real port when listening on port 0)."""

    def __init__(
        self,
        sock: socket.socket,
        endpoint: Endpoint,
        max_frame: int,
        token: Optional[str],
        allow_any_uid: bool,
        handshake_timeout: float,
        owned_file: Optional[Tuple[str, int, int]],
    ) -> None:
        self._sock = sock
        #: The endpoint string clients connect to.
        self.endpoint = str(endpoint)
        self._ep = endpoint
        self.max_frame = max_frame
        self._token = token
        self._allow_any_uid = allow_any_uid
        self._handshake_timeout = handshake_timeout
        self._owned_file = owned_file

    def fileno(self) -> int:
        """The listening socket's fd (for ``select``)."""
        return self._sock.fileno()

    def accept(self, timeout: Optional[float] = None) -> Channel:
        """The next connected, authenticated channel.

        An :class:`AuthError` / :class:`HandshakeError` concerns one client, which was
        dropped: call ``accept`` again, the listener keeps serving. ``timeout`` (seconds)
        raises ``socket.timeout`` when nobody connects in time.
        """
        self._sock.settimeout(timeout)
        conn, address = self._sock.accept()
        try:
            if self._ep.scheme == "tcp":
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                conn.settimeout(self._handshake_timeout)
                handshake.server(conn, self._token, f"{address[0]}:{address[1]}")
                conn.settimeout(None)
                return FramedChannel(SocketStream(conn), "tcp", self.max_frame)
            conn.settimeout(None)
            creds = peer_credentials(conn)
            if creds and creds[1] != os.geteuid() and not self._allow_any_uid:
                raise AuthError(
                    f"a client of {self.endpoint} runs as uid {creds[1]}, not as our uid "
                    f"{os.geteuid()}; it was refused (pass allow_any_uid=True to allow it)"
                )
            return FramedChannel(SocketStream(conn), "uds", self.max_frame, creds[0] if creds else None)
        except BaseException:
            conn.close()
            raise

    def close(self) -> None:
        """Stop listening; a socket file we created is removed (if it is still ours)."""
        self._sock.close()
        if self._owned_file:
            path, dev, ino = self._owned_file
            self._owned_file = None
            try:
                st = os.lstat(path)
                if (st.st_dev, st.st_ino) == (dev, ino):
                    os.unlink(path)
            except FileNotFoundError:
                pass

    def __enter__(self) -> "Listener":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def listen(
    endpoint: Union[str, Endpoint],
    *,
    max_frame: int = DEFAULT_MAX_FRAME,
    token: Optional[str] = None,
    allow_any_uid: bool = False,
    handshake_timeout: float = handshake.DEFAULT_TIMEOUT,
) -> Listener:
    """Listen on ``unix:/path``, ``unix:@name`` or ``tcp://HOST:PORT`` (port 0: any free
    port; see :attr:`Listener.endpoint`)."""
    ep = parse_endpoint(endpoint) if isinstance(endpoint, str) else endpoint
    if ep.scheme == "tcp":
        family = socket.AF_INET6 if ":" in ep.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((ep.host, ep.port))
            sock.listen(128)
        except BaseException:
            sock.close()
            raise
        port = sock.getsockname()[1]
        real = Endpoint("tcp", host=ep.host, port=port)
        tok = token if token is not None else token_from_env()
        return Listener(sock, real, max_frame, tok, allow_any_uid, handshake_timeout, None)
    if ep.scheme == "unix":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            owned = None
            if ep.is_abstract:
                sock.bind(ep.socket_address())
            else:
                owned = _bind_path(sock, ep.path)
            sock.listen(128)
        except BaseException:
            sock.close()
            raise
        return Listener(sock, ep, max_frame, None, allow_any_uid, handshake_timeout, owned)
    raise Unsupported(
        f"cannot listen on {ep}: ipc_peer listens on unix:/PATH, unix:@NAME and tcp://HOST:PORT"
    )


def _bind_path(sock: socket.socket, path: str) -> Tuple[str, int, int]:
    """Bind ``sock`` at ``path`` with mode 0600, race-free; returns ``(path, dev, ino)``."""
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        os.makedirs(parent, mode=0o700)
    else:
        _refuse_shared_directory(parent)
    _remove_stale(path)
    private = tempfile.mkdtemp(prefix=".ipc-bind-", dir=parent)  # mode 0700
    try:
        temp = os.path.join(private, "s")
        sock.bind(temp)
        os.chmod(temp, 0o600)
        os.link(temp, path)  # never replaces an existing file
        os.unlink(temp)
    finally:
        try:
            os.rmdir(private)
        except OSError:
            pass
    st = os.lstat(path)
    return (path, st.st_dev, st.st_ino)


def _refuse_shared_directory(directory: str) -> None:
    """Refuse an existing directory other users could write to without the sticky bit:
    they could remove or replace the socket file (the Rust listener's rule, PROTOCOL.md
    section 2). A sticky one such as ``/tmp`` is fine."""
    mode = stat.S_IMODE(os.stat(directory).st_mode)
    if mode & 0o022 and not mode & stat.S_ISVTX:
        raise PermissionError(
            f"{directory} has mode {mode:04o}: other users could remove or replace the "
            "socket file in it; use a directory only you can write to (e.g. chmod 700 "
            "it), or a path whose directory does not exist yet (it is created 0700)"
        )


def _remove_stale(path: str) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise FileExistsError(errno.EEXIST, f"{path} exists and is not a socket; not replacing it")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except ConnectionRefusedError:
        os.unlink(path)  # nobody answers: a dead listener's file
        return
    finally:
        probe.close()
    raise OSError(errno.EADDRINUSE, f"{path}: a live server already listens there")
