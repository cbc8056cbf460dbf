"""Opening channels: ``connect`` (client side, and the inherited forms a child finds in
its environment) and ``connect_from_env`` (PROTOCOL.md section 3)."""

from __future__ import annotations

import errno
import fcntl
import os
import socket
import stat
import struct
import sys
import time
from typing import Optional, Set, Tuple, Union

from . import handshake
from .channel import Channel, FramedChannel, JsonLinesChannel
from .endpoint import Endpoint, parse_endpoint
from .errors import BadEndpoint, NotAChild, Unsupported
from .frames import DEFAULT_MAX_FRAME, encode_frame
from .streams import PipeStream, SocketStream

#: Environment variables of the contract between parent and child.
IPC_ENDPOINT = "IPC_ENDPOINT"
IPC_TOKEN = "IPC_TOKEN"
IPC_MAX_FRAME = "IPC_MAX_FRAME"

#: Inherited fds already turned into a channel: two channels on one fd would tear
#: each other's frames.
_claimed: Set[int] = set()
_stdio_taken = False


def is_child() -> bool:
    """True when an ipc parent started this process (``IPC_ENDPOINT`` is set)."""
    return IPC_ENDPOINT in os.environ


def max_frame_from_env() -> int:
    """The parent's frame limit from ``IPC_MAX_FRAME``, or the default (8 MiB)."""
    value = os.environ.get(IPC_MAX_FRAME, "")
    return int(value) if value.isdigit() else DEFAULT_MAX_FRAME


def token_from_env() -> Optional[str]:
    """The TCP token in ``IPC_TOKEN`` (its text, as it is), or ``None``."""
    return os.environ.get(IPC_TOKEN) or None


def connect_from_env() -> Channel:
    """In a child started by an ipc parent (Rust ``Transport::spawn``, ``ipc-cat
    --spawn``, or :func:`ipc_peer.spawn`): open the channel named by ``IPC_ENDPOINT``,
    with the parent's ``IPC_MAX_FRAME`` and (tcp) ``IPC_TOKEN``.

    Inherited fds are made close-on-exec once taken, so this process's own children
    do not inherit them. Over stdio, fd 0 is then ``/dev/null`` and fd 1 is stderr,
    so a stray ``print()`` lands in the logs instead of the channel; call this before
    reading ``sys.stdin``.
    """
    text = os.environ.get(IPC_ENDPOINT)
    if not text:
        raise NotAChild(
            f"{IPC_ENDPOINT} is not set: this process was not spawned by an ipc parent "
            f"(start it with ipc-cat --spawn TRANSPORT -- CMD, a Rust Transport::spawn, "
            f"or set {IPC_ENDPOINT}=ENDPOINT by hand)"
        )
    return connect(text, max_frame=max_frame_from_env(), token=token_from_env())


def connect(
    endpoint: Union[str, Endpoint],
    *,
    max_frame: int = DEFAULT_MAX_FRAME,
    token: Optional[str] = None,
    timeout: float = handshake.DEFAULT_TIMEOUT,
) -> Channel:
    """Connect to ``endpoint``: ``tcp://HOST:PORT`` (handshake with ``token``, default
    ``IPC_TOKEN``), ``unix:/path``, ``unix:@name``, ``fifo:/dir``, or the inherited
    forms ``uds:fd=N``, ``pipe:fd=R,W``, ``stdio:``. ``timeout`` bounds connecting and
    the handshake."""
    ep = parse_endpoint(endpoint) if isinstance(endpoint, str) else endpoint
    if ep.scheme == "tcp":
        return _connect_tcp(ep, max_frame, token if token is not None else token_from_env(), timeout)
    if ep.scheme == "unix":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            sock.connect(ep.socket_address())
            sock.settimeout(None)
        except BaseException:
            sock.close()
            raise
        return FramedChannel(SocketStream(sock), "uds", max_frame, peer_pid(sock))
    if ep.scheme == "uds":
        return _inherited_socket(ep, max_frame)
    if ep.scheme == "pipe":
        return _inherited_pipes(ep, max_frame)
    if ep.scheme == "fifo":
        return _connect_fifo(ep, max_frame, timeout)
    if ep.scheme == "stdio":
        return _stdio(max_frame)
    raise BadEndpoint(f"cannot connect to {ep}")


def peer_pid(sock: socket.socket) -> Optional[int]:
    """The pid of a Unix socket's peer (``SO_PEERCRED``), when the OS tells it."""
    creds = peer_credentials(sock)
    return creds[0] if creds else None


def peer_credentials(sock: socket.socket) -> Optional[Tuple[int, int, int]]:
    """``(pid, uid, gid)`` of a Unix socket's peer, or ``None``."""
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:
        return None
    try:
        pid, uid, gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, option, 12))
        return (pid, uid, gid)
    except OSError:
        return None


def _connect_tcp(ep: Endpoint, max_frame: int, token: Optional[str], timeout: float) -> Channel:
    sock = socket.create_connection((ep.host, ep.port), timeout=timeout)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        handshake.client(sock, token, str(ep))
        sock.settimeout(None)
    except BaseException:
        sock.close()
        raise
    return FramedChannel(SocketStream(sock), "tcp", max_frame)


def _claim(fd: int, ep: Endpoint) -> None:
    if fd in _claimed:
        raise Unsupported(f"{ep}: fd {fd} is already a channel in this process")
    try:
        os.fstat(fd)
    except OSError as e:
        raise BadEndpoint(
            f"{ep}: fd {fd} is not open ({e.strerror}); was this process started by an "
            f"ipc parent with this transport?"
        ) from None
    _claimed.add(fd)


def _inherited_socket(ep: Endpoint, max_frame: int) -> Channel:
    fd = ep.fds[0]
    _claim(fd, ep)
    if not stat.S_ISSOCK(os.fstat(fd).st_mode):
        raise BadEndpoint(f"{ep}: fd {fd} is not a socket")
    sock = socket.socket(fileno=fd)
    if sock.family != socket.AF_UNIX or sock.type != socket.SOCK_STREAM:
        sock.detach()
        raise BadEndpoint(f"{ep}: fd {fd} is not a Unix stream socket")
    os.set_inheritable(fd, False)  # our own children must not inherit the channel
    sock.setblocking(True)
    return FramedChannel(SocketStream(sock), "uds", max_frame, peer_pid(sock))


def _inherited_pipes(ep: Endpoint, max_frame: int) -> Channel:
    read_fd, write_fd = ep.fds
    if read_fd == write_fd:
        raise BadEndpoint(f"{ep}: the read and write fds must differ")
    for fd, mode, name in ((read_fd, os.O_RDONLY, "read"), (write_fd, os.O_WRONLY, "write")):
        _claim(fd, ep)
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            raise BadEndpoint(f"{ep}: fd {fd} is not a pipe")
        if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE != mode:
            raise BadEndpoint(f"{ep}: fd {fd} is not the {name} end of a pipe")
        os.set_inheritable(fd, False)
        os.set_blocking(fd, True)
    return FramedChannel(PipeStream(read_fd, write_fd), "pipe", max_frame, os.getppid())


def _stdio(max_frame: int) -> Channel:
    global _stdio_taken
    if _stdio_taken:
        raise Unsupported("stdio: this process's stdin/stdout are already a channel")
    _stdio_taken = True
    try:
        sys.stdout.flush()
    except (OSError, ValueError):
        pass
    read_fd = os.dup(0)  # os.dup: close-on-exec copies
    write_fd = os.dup(1)
    # Stray output and grandchildren must not reach the channel: fd 0 -> /dev/null,
    # fd 1 -> stderr.
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    try:
        os.dup2(2, 1)
    except OSError:
        sink = os.open(os.devnull, os.O_WRONLY)
        os.dup2(sink, 1)
        os.close(sink)
    os.set_blocking(read_fd, True)
    os.set_blocking(write_fd, True)
    return JsonLinesChannel(PipeStream(read_fd, write_fd), "stdio", max_frame)


# -- FIFO pairs (PROTOCOL.md section 8) ---------------------------------------------

#: Attempts while the listener has not put the next pair in place yet.
_FIFO_RETRIES = 50


def _connect_fifo(ep: Endpoint, max_frame: int, timeout: float) -> Channel:
    directory = ep.path
    # (1) a directory of ours, private.
    try:
        st = os.lstat(directory)
    except FileNotFoundError:
        raise FileNotFoundError(f"no fifo listener at {ep}: the directory does not exist") from None
    if not stat.S_ISDIR(st.st_mode):
        raise PermissionError(f"{ep}: not a directory (symbolic links are refused)")
    if st.st_uid != os.geteuid() or st.st_mode & 0o077:
        raise PermissionError(
            f"{ep}: the directory must belong to us (uid {os.geteuid()}) with no group or "
            f"other permissions (it has uid {st.st_uid}, mode {stat.S_IMODE(st.st_mode):04o})"
        )
    # (2) the lock, for the connection's lifetime: one client at a time.
    lock = open(os.path.join(directory, "lock"), "rb")  # noqa: SIM115 - lives with the channel
    try:
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Unsupported(
                f"{ep} already serves a client; a FIFO pair serves one peer at a time "
                f"(connect again once it has disconnected)"
            ) from None
        text = lock.read().decode("ascii", "replace").strip()
        listener_pid = int(text) if text.isdigit() else None
        deadline = time.monotonic() + timeout
        attempt = 0
        while True:
            attempt += 1
            try:
                c2s, s2c = _claim_pair(directory, ep)
                break
            except _RetryLater as e:
                if attempt >= _FIFO_RETRIES or time.monotonic() >= deadline:
                    raise BlockingIOError(errno.EAGAIN, f"{ep}: {e}") from None
                time.sleep(0.02)
        # (6) the hello, one write; then plain blocking reads and writes.
        hello = encode_frame(f"ipc-fifo/1 pid={os.getpid()}".encode("ascii"), 64)
        os.write(c2s, hello)
        os.set_blocking(c2s, True)
        os.set_blocking(s2c, True)
    except BaseException:
        lock.close()
        raise
    return FramedChannel(PipeStream(s2c, c2s, keep=[lock]), "fifo", max_frame, listener_pid)


class _RetryLater(Exception):
    pass


def _claim_pair(directory: str, ep: Endpoint) -> Tuple[int, int]:
    c2s_path = os.path.join(directory, "c2s")
    s2c_path = os.path.join(directory, "s2c")
    # (3) c2s for writing: ENXIO means nobody reads it (no listener).
    try:
        c2s = os.open(c2s_path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise _RetryLater("the listener has not put the next FIFO pair in place yet") from None
    except OSError as e:
        if e.errno == errno.ENXIO:
            raise ConnectionRefusedError(
                errno.ECONNREFUSED, f"no listener is reading {ep} (it exited without removing it)"
            ) from None
        raise
    try:
        # (4) s2c for reading.
        try:
            s2c = os.open(s2c_path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            raise _RetryLater("the FIFO pair was replaced meanwhile") from None
        try:
            # (5) claim both names: rename, check it is what we opened, unlink.
            for path, fd in ((c2s_path, c2s), (s2c_path, s2c)):
                claimed = path + ".claimed"
                try:
                    os.rename(path, claimed)
                except FileNotFoundError:
                    raise _RetryLater("another client claimed the pair first") from None
                opened, named = os.fstat(fd), os.lstat(claimed)
                if (opened.st_dev, opened.st_ino) != (named.st_dev, named.st_ino):
                    try:
                        os.link(claimed, path)  # not ours: give the name back
                    except FileExistsError:
                        pass
                    os.unlink(claimed)
                    raise _RetryLater("the listener replaced the pair while we opened it")
                os.unlink(claimed)
        except BaseException:
            os.close(s2c)
            raise
    except BaseException:
        os.close(c2s)
        raise
    return c2s, s2c
