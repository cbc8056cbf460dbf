#!/usr/bin/env python3
"""A Python worker: the child side, whatever transport its parent picked.

    ipc-cat --spawn uds -- python3 examples/worker.py            # echo, upper-cased
    ipc-cat --spawn stdio --json -- python3 examples/worker.py rpc

Modes (first argument):
  echo (default)  answer every frame with the frame upper-cased, until the goodbye
  rpc             serve ipc::rpc requests: the body upper-cased; "fail" -> an error
  exit CODE       answer the first frame, then exit with CODE without closing
  kill            answer the first frame, then SIGKILL itself
  info            send one JSON frame describing this end, then echo
"""

from __future__ import annotations

import os
import signal
import sys
from typing import List

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import ipc_peer  # noqa: E402


def upper(body: bytes) -> bytes:
    if body == b"fail":
        raise ValueError("asked to fail")
    return body.upper()


def main(argv: List[str]) -> int:
    mode = argv[1] if len(argv) > 1 else "echo"
    parent = ipc_peer.connect_from_env()
    print(f"worker {os.getpid()}: connected over {parent.transport}", file=sys.stderr)
    if mode == "rpc":
        ipc_peer.serve(parent, upper)
        return 0
    if mode == "info":
        fds = {fd: os.get_inheritable(fd) for fd in (3, 4) if _is_open(fd)}
        parent.send_json(
            {
                "transport": parent.transport,
                "pid": os.getpid(),
                "max_frame": parent.max_frame,
                "token_set": "IPC_TOKEN" in os.environ,
                "inheritable": {str(fd): flag for fd, flag in fds.items()},
            }
        )
        print("a stray print() does not reach the channel")
    for frame in parent:
        parent.send(frame.upper())
        if mode == "exit":
            sys.stdout.flush()
            os._exit(int(argv[2]))
        if mode == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
    parent.close()
    return 0


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
        return True
    except OSError:
        return False


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except ipc_peer.PeerLost as e:
        print(f"worker: {e}", file=sys.stderr)
        sys.exit(1)
