"""A Python parent: start any program as a child wired to a channel, with the same
environment contract a Rust parent uses (PROTOCOL.md section 3), so the child may be
a Rust program calling ``ipc::connect_from_env()``.

Transports: ``uds`` (socketpair, child's end is fd 3), ``tcp`` (we listen on
127.0.0.1:0 with a fresh token; the child connects), ``pipe`` (fds 3 and 4), ``stdio``
(the child's stdin/stdout, JSON lines). Placing fds at 3 and 4 uses ``preexec_fn``, so
do not spawn while other threads of this process fork or hold locks.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import socket
import subprocess
import time
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from .channel import Channel, FramedChannel, JsonLinesChannel
from .connect import IPC_ENDPOINT, IPC_MAX_FRAME, IPC_TOKEN
from .errors import IpcError, Timeout, Unsupported
from .frames import DEFAULT_MAX_FRAME
from .listen import listen
from .streams import PipeStream, SocketStream

#: Transports :func:`spawn` offers.
TRANSPORTS = ("uds", "tcp", "pipe", "stdio")

#: ``fcntl.F_DUPFD_CLOEXEC`` (its Linux value where the module lacks the name).
_F_DUPFD_CLOEXEC = getattr(fcntl, "F_DUPFD_CLOEXEC", 1030)

#: Seconds a tcp child has to connect.
CONNECT_TIMEOUT = 5.0


def _child_env(
    base: Optional[Mapping[str, str]], endpoint: str, max_frame: int, token: Optional[str]
) -> Dict[str, str]:
    env = dict(os.environ if base is None else base)
    env[IPC_ENDPOINT] = endpoint
    env[IPC_MAX_FRAME] = str(max_frame)
    env.pop("NODE_CHANNEL_FD", None)
    if token is None:
        env.pop(IPC_TOKEN, None)  # never leak our own token to a child
    else:
        env[IPC_TOKEN] = token
    return env


def _place_fds(pairs: List[Tuple[int, int]]) -> Any:
    """A ``preexec_fn`` putting each source fd at its target number, inheritable, even
    when a source number equals another pair's target (copies go above 100 first)."""

    def place() -> None:
        copies = [fcntl.fcntl(src, _F_DUPFD_CLOEXEC, 100) for src, _ in pairs]
        for copy, (_, target) in zip(copies, pairs):
            os.dup2(copy, target)  # inheritable by default
        for copy in copies:
            os.close(copy)

    return place


def spawn(
    transport: str,
    args: Sequence[str],
    *,
    max_frame: int = DEFAULT_MAX_FRAME,
    env: Optional[Mapping[str, str]] = None,
    **popen_kwargs: Any,
) -> Tuple["subprocess.Popen[bytes]", Channel]:
    """Start ``args`` as a child wired to the returned channel over ``transport``.

    The child gets ``IPC_ENDPOINT``, ``IPC_MAX_FRAME`` and, for tcp only, ``IPC_TOKEN``
    (removed otherwise). Extra keyword arguments go to ``subprocess.Popen`` (``cwd``,
    ``stderr``, ...). Wait for the child with ``proc.wait()`` after closing.
    """
    if transport == "uds":
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            proc = subprocess.Popen(
                list(args),
                env=_child_env(env, "uds:fd=3", max_frame, None),
                pass_fds=(3,),
                preexec_fn=_place_fds([(theirs.fileno(), 3)]),
                **popen_kwargs,
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        return proc, FramedChannel(SocketStream(ours), "uds", max_frame, proc.pid)
    if transport == "pipe":
        child_read, parent_write = os.pipe()
        parent_read, child_write = os.pipe()
        try:
            proc = subprocess.Popen(
                list(args),
                env=_child_env(env, "pipe:fd=3,4", max_frame, None),
                pass_fds=(3, 4),
                preexec_fn=_place_fds([(child_read, 3), (child_write, 4)]),
                **popen_kwargs,
            )
        except BaseException:
            os.close(parent_read)
            os.close(parent_write)
            raise
        finally:
            os.close(child_read)
            os.close(child_write)
        return proc, FramedChannel(PipeStream(parent_read, parent_write), "pipe", max_frame, proc.pid)
    if transport == "stdio":
        proc = subprocess.Popen(
            list(args),
            env=_child_env(env, "stdio:", max_frame, None),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            bufsize=0,
            **popen_kwargs,
        )
        assert proc.stdin is not None and proc.stdout is not None
        read_fd, write_fd = os.dup(proc.stdout.fileno()), os.dup(proc.stdin.fileno())
        proc.stdout.close()
        proc.stdin.close()
        proc.stdout = proc.stdin = None
        return proc, JsonLinesChannel(PipeStream(read_fd, write_fd), "stdio", max_frame, proc.pid)
    if transport == "tcp":
        return _spawn_tcp(args, max_frame, env, popen_kwargs)
    raise Unsupported(
        f"ipc_peer cannot spawn over {transport!r}; it offers {', '.join(TRANSPORTS)} "
        f"(use ipc-cat --spawn for fifo and signal)"
    )


def _spawn_tcp(
    args: Sequence[str], max_frame: int, env: Optional[Mapping[str, str]], popen_kwargs: Dict[str, Any]
) -> Tuple["subprocess.Popen[bytes]", Channel]:
    token = secrets.token_hex(32)
    with listen("tcp://127.0.0.1:0", max_frame=max_frame, token=token) as listener:
        proc = subprocess.Popen(
            list(args), env=_child_env(env, listener.endpoint, max_frame, token), **popen_kwargs
        )
        deadline = time.monotonic() + CONNECT_TIMEOUT
        while True:
            if time.monotonic() >= deadline:
                proc.kill()
                proc.wait()
                raise Timeout(f"the child did not connect within {CONNECT_TIMEOUT} s")
            try:
                channel = listener.accept(timeout=0.05)
            except socket.timeout:
                status = proc.poll()
                if status is not None:
                    raise IpcError(f"the child exited ({status}) before it connected") from None
                continue
            except IpcError:
                continue  # a stranger with a wrong token: keep waiting for the child
            channel.peer_pid = proc.pid
            return proc, channel


__all__ = ["spawn", "TRANSPORTS"]
