#!/usr/bin/env python3
"""A Python client: connect to an ipc listener, send each argument, print the replies.

    cargo run --example echo -- --listen unix:/tmp/e.sock
    python3 examples/client.py unix:/tmp/e.sock hello world

For tcp, the token comes from IPC_TOKEN (as for every ipc client).
"""

from __future__ import annotations

import os
import sys
from typing import List

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import ipc_peer  # noqa: E402


def main(argv: List[str]) -> int:
    if len(argv) < 1:
        print("usage: client.py ENDPOINT [MESSAGE...]", file=sys.stderr)
        return 2
    with ipc_peer.connect(argv[0]) as server:
        for message in argv[1:]:
            server.send(message.encode())
            reply = server.recv(timeout=10)
            if reply is None:
                print("the server closed the channel", file=sys.stderr)
                return 1
            print(reply.decode("utf-8", "replace"))
        server.close()
        tail = server.recv(timeout=10)
        print("closed cleanly" if tail is None else f"unexpected {tail!r}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except ipc_peer.IpcError as e:
        print(f"client: {e}", file=sys.stderr)
        sys.exit(1)
