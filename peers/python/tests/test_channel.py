"""Channels over real sockets and pipes in one process: clean close vs lost peer,
errors by cause, JSON helpers, listen/connect with the handshake, rpc."""

from __future__ import annotations

import json
import os
import socket
import tempfile
import threading
import unittest
from typing import Callable, Dict, List, Optional, Tuple

import ipc_peer
from ipc_peer import rpc
from ipc_peer.channel import Channel, FramedChannel, JsonLinesChannel
from ipc_peer.streams import PipeStream, SocketStream


def socket_pair() -> Tuple[Channel, Channel]:
    a, b = socket.socketpair()
    return FramedChannel(SocketStream(a), "uds"), FramedChannel(SocketStream(b), "uds")


def pipe_pair(kind: Callable[..., Channel] = FramedChannel) -> Tuple[Channel, Channel]:
    a_read, b_write = os.pipe()
    b_read, a_write = os.pipe()
    return kind(PipeStream(a_read, a_write), "pipe"), kind(PipeStream(b_read, b_write), "pipe")


class Tracked(unittest.TestCase):
    """Releases every channel a test made, whatever happened."""

    def track(self, pair: Tuple[Channel, Channel]) -> Tuple[Channel, Channel]:
        for channel in pair:
            self.addCleanup(channel.release)
        return pair


def json_lines_pair() -> Tuple[Channel, Channel]:
    return pipe_pair(JsonLinesChannel)


PAIRS: Dict[str, Callable[[], Tuple[Channel, Channel]]] = {
    "socket": socket_pair,
    "pipe": pipe_pair,
    "jsonlines": json_lines_pair,
}


class CloseTest(Tracked):
    def test_clean_close_is_none_then_none_again(self) -> None:
        for name, make in PAIRS.items():
            with self.subTest(name):
                a, b = self.track(make())
                a.send(b"one")
                a.send(b"")
                a.close()
                a.close()  # idempotent
                self.assertEqual([b.recv(), b.recv(), b.recv(), b.recv()], [b"one", b"", None, None])
                a.release()
                b.release()

    def test_end_without_goodbye_is_peer_lost(self) -> None:
        for name, make in PAIRS.items():
            with self.subTest(name):
                a, b = self.track(make())
                a.send(b"last words")
                a.abort()
                self.assertEqual(b.recv(), b"last words")
                with self.assertRaises(ipc_peer.PeerLost):
                    b.recv()
                with self.assertRaises(ipc_peer.PeerLost):  # and stays lost
                    b.recv()
                b.release()

    def test_send_errors_by_cause(self) -> None:
        a, b = self.track(socket_pair())
        a.close()
        with self.assertRaises(ipc_peer.Closed):
            a.send(b"after my own close")
        b.abort()
        c, d = self.track(socket_pair())
        d.abort()
        with self.assertRaises(ipc_peer.PeerLost):
            for _ in range(100):  # the first writes may still land in the buffer
                c.send(b"x" * 65536)
        c.release()

    def test_with_block_closes_or_aborts(self) -> None:
        a, b = self.track(socket_pair())
        with a:
            a.send(b"x")
        self.assertEqual((b.recv(), b.recv()), (b"x", None))
        c, d = self.track(socket_pair())
        with self.assertRaises(RuntimeError):
            with c:
                raise RuntimeError("boom")
        with self.assertRaises(ipc_peer.PeerLost):
            d.recv()

    def test_timeout_loses_nothing(self) -> None:
        a, b = self.track(socket_pair())
        with self.assertRaises(ipc_peer.Timeout):
            b.recv(timeout=0.01)
        a.send(b"late")
        self.assertEqual(b.recv(timeout=5), b"late")

    def test_oversize_is_refused_on_send_and_skipped_on_receive(self) -> None:
        a_sock, b_sock = socket.socketpair()
        small = FramedChannel(SocketStream(a_sock), "uds", max_frame=4)
        big = FramedChannel(SocketStream(b_sock), "uds", max_frame=100)
        self.track((small, big))
        with self.assertRaises(ipc_peer.FrameTooLarge):
            small.send(b"12345")
        big.send(b"1234567890")
        big.send(b"ok")
        with self.assertRaises(ipc_peer.FrameTooLarge):
            small.recv()
        self.assertEqual(small.recv(), b"ok")


class DataTest(Tracked):
    def test_both_directions_at_once_do_not_deadlock(self) -> None:
        for name, make in PAIRS.items():
            with self.subTest(name):
                a, b = self.track(make())
                payload = bytes(range(256)) * 1024  # 256 KiB per frame, more than a pipe holds
                got: List[bytes] = []

                def echo() -> None:
                    for frame in b:
                        b.send(frame)
                    b.close()

                thread = threading.Thread(target=echo)
                thread.start()

                def reader() -> None:
                    for frame in a:
                        got.append(frame)

                read_thread = threading.Thread(target=reader)
                read_thread.start()
                for _ in range(8):
                    a.send(payload)
                a.close()
                thread.join(20)
                read_thread.join(20)
                self.assertEqual(got, [payload] * 8)

    def test_json_helpers(self) -> None:
        a, b = self.track(pipe_pair(JsonLinesChannel))
        a.send_json({"type": "handshake", "payload": "你好吖"})
        a.send_json(None)
        a.close()
        self.assertEqual(b.recv_json(), {"type": "handshake", "payload": "你好吖"})
        self.assertIsNone(b.recv_json())  # JSON null is a message...
        with self.assertRaises(ipc_peer.Closed):  # ...the goodbye is not
            b.recv_json()

    def test_a_stray_line_is_one_error_not_the_end(self) -> None:
        read_fd, write_fd = os.pipe()
        peer_read, _unused = os.pipe()
        channel = JsonLinesChannel(PipeStream(read_fd, _unused))
        self.addCleanup(channel.release)
        os.write(write_fd, b'oops, a print\n{"a":1}\n{"$ipc":"goodbye"}\n')
        with self.assertRaises(ipc_peer.DecodeError):
            channel.recv()
        self.assertEqual(channel.recv(), b'{"a":1}')
        self.assertIsNone(channel.recv())
        for fd in (write_fd, peer_read):
            os.close(fd)


class ListenTest(unittest.TestCase):
    def serve_once(self, listener: ipc_peer.Listener) -> threading.Thread:
        def run() -> None:
            while True:
                try:
                    server = listener.accept(timeout=10)
                except ipc_peer.IpcError:
                    continue  # a refused client; keep serving
                for frame in server:
                    server.send(frame)
                server.close()
                server.release()
                return

        thread = threading.Thread(target=run)
        thread.start()
        return thread

    def round_trip(self, endpoint: str, token: Optional[str] = None) -> None:
        with ipc_peer.connect(endpoint, token=token) as client:
            client.send(b"ping")
            self.assertEqual(client.recv(timeout=10), b"ping")
            client.close()
            self.assertIsNone(client.recv(timeout=10))

    def test_unix_path_is_0600_and_removed(self) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "run", "s.sock")
            with ipc_peer.listen(f"unix:{path}") as listener:
                self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)
                self.assertEqual(os.stat(os.path.dirname(path)).st_mode & 0o777, 0o700)
                thread = self.serve_once(listener)
                self.round_trip(listener.endpoint)
                thread.join(10)
            self.assertFalse(os.path.exists(path))

    def test_a_live_socket_is_not_stolen_but_a_stale_one_is_replaced(self) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "s.sock")
            first = ipc_peer.listen(f"unix:{path}")
            with self.assertRaises(OSError):
                ipc_peer.listen(f"unix:{path}")
            first._sock.close()  # dies without removing its file
            first._owned_file = None
            with ipc_peer.listen(f"unix:{path}") as second:
                thread = self.serve_once(second)
                self.round_trip(second.endpoint)
                thread.join(10)

    def test_abstract(self) -> None:
        name = f"unix:@ipc-peer-test-{os.getpid()}"
        with ipc_peer.listen(name) as listener:
            thread = self.serve_once(listener)
            self.round_trip(name)
            thread.join(10)

    def test_tcp_token(self) -> None:
        with ipc_peer.listen("tcp://127.0.0.1:0", token="s3cret") as listener:
            self.assertNotEqual(listener.endpoint, "tcp://127.0.0.1:0")
            thread = self.serve_once(listener)
            with self.assertRaises(ipc_peer.AuthError):
                ipc_peer.connect(listener.endpoint, token="wrong")
            self.round_trip(listener.endpoint, token="s3cret")
            thread.join(10)


class RpcTest(Tracked):
    def test_calls_errors_and_clean_end(self) -> None:
        a, b = self.track(socket_pair())

        def handler(body: bytes) -> bytes:
            if body == b"fail":
                raise ValueError("no thanks")
            if body.startswith(b"["):
                return json.dumps(json.loads(body)[::-1]).encode()
            return body[::-1]

        thread = threading.Thread(target=rpc.serve, args=(b, handler))
        thread.start()
        client = ipc_peer.RpcClient(a)
        self.assertEqual(client.call(b"abc", timeout=10), b"cba")
        with self.assertRaises(ipc_peer.RemoteError) as caught:
            client.call(b"fail", timeout=10)
        self.assertIn("no thanks", str(caught.exception))
        self.assertEqual(client.call_json([1, 2], timeout=10), [2, 1])
        client.close()
        thread.join(10)
        self.assertIsNone(a.recv(timeout=10))

    def test_a_late_answer_is_discarded(self) -> None:
        a, b = self.track(socket_pair())
        client = ipc_peer.RpcClient(a)
        with self.assertRaises(ipc_peer.Timeout):
            client.call(b"slow", timeout=0.01)
        kind, first_id, body = rpc.decode_message(b.recv() or b"")
        b.send(rpc.encode_message(rpc.RESPONSE, first_id, b"too late"))

        def answer_second() -> None:
            frame = b.recv()
            assert frame is not None
            _, second_id, _ = rpc.decode_message(frame)
            b.send(rpc.encode_message(rpc.RESPONSE, second_id, b"on time"))

        thread = threading.Thread(target=answer_second)
        thread.start()
        self.assertEqual(client.call(b"fast", timeout=10), b"on time")
        thread.join(10)
        self.assertEqual((kind, first_id), (rpc.REQUEST, 1))


if __name__ == "__main__":
    unittest.main()
