"""The TCP handshake bytes of PROTOCOL.md section 2, over real socket pairs."""

from __future__ import annotations

import doctest
import socket
import threading
import unittest
from typing import Any, List

from ipc_peer import handshake
from ipc_peer.errors import AuthError, HandshakeError


def load_tests(loader: unittest.TestLoader, tests: unittest.TestSuite, pattern: Any) -> unittest.TestSuite:
    tests.addTests(doctest.DocTestSuite(handshake))
    return tests


class BytesTest(unittest.TestCase):
    def test_documented_example(self) -> None:
        self.assertEqual(handshake.client_hello("abc"), bytes.fromhex("49 50 43 54 01 03 61 62 63"))
        self.assertEqual(handshake.server_reply(0), bytes.fromhex("49 50 43 54 01 00"))
        self.assertEqual(handshake.client_hello(None), bytes.fromhex("49 50 43 54 01 00"))

    def test_token_is_sent_as_its_text(self) -> None:
        token = "ab" * 32  # what a Rust parent puts in IPC_TOKEN: 64 hex digits
        hello = handshake.client_hello(token)
        self.assertEqual(hello[5], 64)
        self.assertEqual(hello[6:], token.encode("ascii"))

    def test_replies(self) -> None:
        handshake.check_reply(bytes.fromhex("49 50 43 54 01 00"), "x")
        with self.assertRaises(AuthError):
            handshake.check_reply(bytes.fromhex("49 50 43 54 01 01"), "x")
        with self.assertRaises(HandshakeError):
            handshake.check_reply(bytes.fromhex("49 50 43 54 01 02"), "x")
        with self.assertRaises(HandshakeError):
            handshake.check_reply(b"HTTP/1", "x")
        with self.assertRaises(HandshakeError):
            handshake.check_reply(b"", "x")


class ExchangeTest(unittest.TestCase):
    def run_server(self, token: str, client_bytes: bytes) -> "tuple[bytes, List[BaseException]]":
        server, client = socket.socketpair()
        errors: List[BaseException] = []

        def serve() -> None:
            try:
                handshake.server(server, token, "test")
            except BaseException as e:  # noqa: BLE001 - reported to the test
                errors.append(e)
            finally:
                server.close()

        thread = threading.Thread(target=serve)
        thread.start()
        client.sendall(client_bytes)
        try:
            reply = handshake.recv_exact(client, 6)
        except ConnectionResetError:  # closed with our bytes unread: no reply
            reply = b""
        thread.join(5)
        client.close()
        return reply, errors

    def test_right_token(self) -> None:
        reply, errors = self.run_server("s3cret", handshake.client_hello("s3cret"))
        self.assertEqual((reply, errors), (handshake.server_reply(0), []))

    def test_wrong_token_gets_status_1(self) -> None:
        reply, errors = self.run_server("s3cret", handshake.client_hello("nope"))
        self.assertEqual(reply, handshake.server_reply(1))
        self.assertIsInstance(errors[0], AuthError)

    def test_other_version_gets_status_2(self) -> None:
        reply, errors = self.run_server("", b"IPCT\x02\x00")
        self.assertEqual(reply, handshake.server_reply(2))
        self.assertIsInstance(errors[0], HandshakeError)

    def test_http_gets_no_reply(self) -> None:
        reply, errors = self.run_server("", b"GET / HTTP/1.1\r\n\r\n")
        self.assertEqual(reply, b"")
        self.assertIn("47 45 54 20", str(errors[0]))


if __name__ == "__main__":
    unittest.main()
