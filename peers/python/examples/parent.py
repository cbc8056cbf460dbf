#!/usr/bin/env python3
"""A Python parent: start any program as a child wired to a channel, ping it, close.

    python3 examples/parent.py --transport uds -- target/debug/examples/fork_ping
    python3 examples/parent.py --transport tcp --rpc -- some-rust-rpc-server

The child finds its end with ``ipc::connect_from_env()`` (Rust) or
``ipc_peer.connect_from_env()`` (Python). Exit status 0 when every answer matched, the
child closed cleanly and exited 0.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import List

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import ipc_peer  # noqa: E402


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transport", default="uds", choices=["uds", "tcp", "pipe", "stdio"])
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--rpc", action="store_true", help="call the child's rpc server")
    parser.add_argument("command", nargs="+", help="the child: program and arguments")
    args = parser.parse_args(argv)

    proc, child = ipc_peer.spawn(args.transport, args.command)
    print(f"parent {os.getpid()} spawned child {proc.pid} over {child.transport}", flush=True)
    ok = True
    if args.rpc:
        client = ipc_peer.RpcClient(child)
        for i in range(args.count):
            if client.call(f"ping {i}".encode(), timeout=10) != f"PING {i}".encode():
                ok = False
        try:
            client.call(b"fail", timeout=10)
            ok = False
        except ipc_peer.RemoteError as e:
            print(f"rpc error as expected: {e}")
        print(f"{args.count} rpc calls answered")
    else:
        start = time.monotonic()
        for i in range(args.count):
            payload = f"ping {i}".encode()
            child.send(payload)
            answer = child.recv(timeout=10)
            if answer is None or answer.lower() != payload:
                print(f"unexpected answer {answer!r} to {payload!r}", file=sys.stderr)
                ok = False
                break
        took = time.monotonic() - start
        print(f"{args.count} round trips over {child.transport} in {took * 1000:.1f} ms")
    child.close()
    try:
        leftover = child.recv(timeout=10)
        clean = leftover is None
        print("child closed cleanly" if clean else f"unexpected frame {leftover!r}")
    except ipc_peer.PeerLost as e:
        clean = False
        print(f"child lost: {e}")
    child.release()
    status = proc.wait(timeout=10)
    print(f"child exited: {status}")
    return 0 if ok and clean and status == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
