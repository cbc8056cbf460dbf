#!/usr/bin/env python3
"""A Python server: listen on an endpoint and echo every frame, one client at a time.

    python3 examples/echo_server.py unix:/tmp/py.sock
    echo hi | ipc-cat unix:/tmp/py.sock

Prints ``listening on ENDPOINT`` first (the real port for tcp://...:0). The token for
tcp comes from IPC_TOKEN. ``--clients N`` stops after N clients.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import List

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import ipc_peer  # noqa: E402


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("endpoint")
    parser.add_argument("--clients", type=int, default=0, help="stop after N clients (0: never)")
    args = parser.parse_args(argv)
    served = 0
    with ipc_peer.listen(args.endpoint) as listener:
        print(f"listening on {listener.endpoint}", flush=True)
        while args.clients == 0 or served < args.clients:
            try:
                client = listener.accept()
            except ipc_peer.IpcError as e:
                print(f"refused a client: {e}", file=sys.stderr)
                continue
            served += 1
            try:
                frames = 0
                for frame in client:
                    client.send(frame)
                    frames += 1
                client.close()
                print(f"client {served} closed after {frames} frames", file=sys.stderr)
            except ipc_peer.PeerLost as e:
                print(f"client {served} lost: {e}", file=sys.stderr)
            finally:
                client.release()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
