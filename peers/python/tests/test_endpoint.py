"""Endpoint strings of PROTOCOL.md section 4."""

from __future__ import annotations

import doctest
import unittest
from typing import Any

from ipc_peer import endpoint
from ipc_peer.endpoint import parse_endpoint
from ipc_peer.errors import BadEndpoint


def load_tests(loader: unittest.TestLoader, tests: unittest.TestSuite, pattern: Any) -> unittest.TestSuite:
    tests.addTests(doctest.DocTestSuite(endpoint))
    return tests


class ParseTest(unittest.TestCase):
    def test_round_trips(self) -> None:
        for text in [
            "tcp://127.0.0.1:7000",
            "tcp://[::1]:7000",
            "unix:/run/app.sock",
            "unix:@name",
            "uds:fd=3",
            "pipe:fd=3,4",
            "fifo:/tmp/ipc-fifo-1",
            "stdio:",
        ]:
            self.assertEqual(str(parse_endpoint(text)), text)

    def test_abstract_address(self) -> None:
        self.assertEqual(parse_endpoint("unix:@x").socket_address(), "\0x")
        self.assertEqual(parse_endpoint("tcp://[::1]:1").host, "::1")

    def test_bad_ones_say_why(self) -> None:
        for text, why in [
            ("carrier-pigeon://x", "unknown scheme"),
            ("tcp://host", "HOST:PORT"),
            ("pipe:fd=3", "pipe:fd=R,W"),
            ("uds:fd=x", "not a file descriptor"),
            ("signal:pid=1", "not implemented"),
            ("unix:", "empty"),
        ]:
            with self.assertRaises(BadEndpoint) as caught:
                parse_endpoint(text)
            self.assertIn(why, str(caught.exception))


if __name__ == "__main__":
    unittest.main()
