"""The TCP handshake (PROTOCOL.md section 2), before any frame.

client -> server: ``"IPCT"``, version ``0x01``, token length (u8), token bytes.
server -> client: ``"IPCT"``, version ``0x01``, status (``0`` accepted, ``1`` wrong
token, ``2`` unsupported version). The token is the ASCII/UTF-8 *text* of
``IPC_TOKEN`` (for a spawned child, 64 hex digits), sent as it is, not hex-decoded.

>>> client_hello("abc").hex(" ")
'49 50 43 54 01 03 61 62 63'
>>> server_reply(STATUS_OK).hex(" ")
'49 50 43 54 01 00'
"""

from __future__ import annotations

import hmac
import socket
from typing import Optional

from .errors import AuthError, HandshakeError, Timeout

MAGIC = b"IPCT"
VERSION = 0x01
STATUS_OK = 0x00
STATUS_BAD_TOKEN = 0x01
STATUS_UNSUPPORTED_VERSION = 0x02
MAX_TOKEN_LEN = 255
#: Seconds both sides allow for the whole exchange.
DEFAULT_TIMEOUT = 5.0


def _token_bytes(token: Optional[str]) -> bytes:
    data = (token or "").encode("utf-8")
    if len(data) > MAX_TOKEN_LEN:
        raise HandshakeError(
            f"the token is {len(data)} bytes long; the tcp handshake carries at most "
            f"{MAX_TOKEN_LEN}"
        )
    return data


def client_hello(token: Optional[str]) -> bytes:
    """The client's hello for ``token`` (``None`` or ``""``: no token)."""
    data = _token_bytes(token)
    return MAGIC + bytes([VERSION, len(data)]) + data


def server_reply(status: int) -> bytes:
    """The server's reply with ``status``."""
    return MAGIC + bytes([VERSION, status])


def check_reply(reply: bytes, address: str) -> None:
    """Raise unless ``reply`` (6 bytes, fewer if the server hung up) accepts us."""
    if len(reply) < 6:
        raise HandshakeError(
            f"{address} closed the connection during the handshake after {len(reply)} "
            f"bytes ({reply.hex(' ') or 'nothing'}): is it an ipc tcp listener?"
        )
    if reply[:4] != MAGIC or reply[4] != VERSION:
        raise HandshakeError(
            f"{address} answered {reply.hex(' ')}, not an ipc handshake reply "
            f"(49 50 43 54 01 ..)"
        )
    status = reply[5]
    if status == STATUS_BAD_TOKEN:
        raise AuthError(
            f"{address} refused our token: set IPC_TOKEN to the listener's token "
            f"(the same text on both ends)"
        )
    if status == STATUS_UNSUPPORTED_VERSION:
        raise HandshakeError(f"{address} does not speak handshake version {VERSION}")
    if status != STATUS_OK:
        raise HandshakeError(f"{address} answered with unknown status {status}")


def recv_exact(sock: socket.socket, n: int) -> bytes:
    """Up to ``n`` bytes: fewer only when the peer closed first."""
    data = bytearray()
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return bytes(data)


def client(sock: socket.socket, token: Optional[str], address: str) -> None:
    """Run the client side on a connected socket (its timeout bounds the exchange)."""
    try:
        sock.sendall(client_hello(token))
        reply = recv_exact(sock, 6)
    except socket.timeout:
        raise Timeout(f"{address} did not answer the handshake in time") from None
    except ConnectionError as e:
        raise HandshakeError(f"{address} dropped the connection during the handshake: {e}") from None
    check_reply(reply, address)


def server(sock: socket.socket, token: Optional[str], address: str) -> None:
    """Run the server side on an accepted socket; raise (after replying when the
    protocol says so) for a client that may not in. The caller closes the socket then."""
    expected = _token_bytes(token)
    try:
        magic = recv_exact(sock, 4)
        if magic != MAGIC:
            raise HandshakeError(
                f"the client at {address} is not an ipc client: it sent "
                f"{magic.hex(' ') or 'nothing'} where the handshake starts with 49 50 43 54"
            )
        version = recv_exact(sock, 1)
        if version != bytes([VERSION]):
            if version:
                sock.sendall(server_reply(STATUS_UNSUPPORTED_VERSION))
            raise HandshakeError(
                f"the client at {address} speaks handshake version "
                f"{version[0] if version else 'none'}, not {VERSION}"
            )
        length = recv_exact(sock, 1)
        if not length:
            raise HandshakeError(f"the client at {address} hung up during the handshake")
        presented = recv_exact(sock, length[0])
        if len(presented) < length[0]:
            raise HandshakeError(f"the client at {address} hung up during the handshake")
    except socket.timeout:
        raise Timeout(
            f"the client at {address} did not finish the handshake in time"
        ) from None
    if not hmac.compare_digest(presented, expected):
        sock.sendall(server_reply(STATUS_BAD_TOKEN))
        raise AuthError(f"the client at {address} presented a wrong token")
    sock.sendall(server_reply(STATUS_OK))
