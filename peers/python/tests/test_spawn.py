"""A Python parent and a Python child (examples/worker.py) over every transport
``ipc_peer.spawn`` offers: the env contract, close-on-exec fds, clean close vs lost."""

from __future__ import annotations

import os
import subprocess
import sys
import unittest
from typing import Any, Dict

import ipc_peer

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples", "worker.py")


class SpawnTest(unittest.TestCase):
    def test_every_transport(self) -> None:
        for transport in ("uds", "tcp", "pipe", "stdio"):
            with self.subTest(transport):
                quiet: Dict[str, Any] = {"stderr": subprocess.DEVNULL}
                if transport != "stdio":  # over stdio, stdout is the channel
                    quiet["stdout"] = subprocess.DEVNULL
                proc, child = ipc_peer.spawn(transport, [sys.executable, WORKER, "info"], **quiet)
                self.addCleanup(child.release)
                info = child.recv_json(timeout=10)
                self.assertEqual(info["transport"], transport)
                self.assertEqual(info["pid"], proc.pid)
                self.assertEqual(info["token_set"], transport == "tcp")
                self.assertNotIn(True, info["inheritable"].values(), info)
                child.send(b"hello")
                self.assertEqual(child.recv(timeout=10), b"HELLO")
                child.close()
                self.assertIsNone(child.recv(timeout=10))
                self.assertEqual(proc.wait(timeout=10), 0)

    def test_a_child_that_exits_without_closing_is_lost(self) -> None:
        for mode in (["exit", "3"], ["kill"]):
            with self.subTest(mode[0]):
                proc, child = ipc_peer.spawn(
                    "uds", [sys.executable, WORKER, *mode], stderr=subprocess.DEVNULL
                )
                self.addCleanup(child.release)
                child.send(b"hi")
                self.assertEqual(child.recv(timeout=10), b"HI")
                with self.assertRaises(ipc_peer.PeerLost):
                    child.recv(timeout=10)
                self.assertEqual(proc.wait(timeout=10), 3 if mode[0] == "exit" else -9)

    def test_unsupported_transport_says_what_exists(self) -> None:
        with self.assertRaises(ipc_peer.Unsupported) as caught:
            ipc_peer.spawn("signal", ["true"])
        self.assertIn("uds, tcp, pipe, stdio", str(caught.exception))


if __name__ == "__main__":
    unittest.main()
