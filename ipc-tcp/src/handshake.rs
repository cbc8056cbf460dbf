//! The connection handshake: the bytes exchanged before the first frame.
//!
//! ```text
//! client -> server (hello), 6 + N bytes:
//! +----+----+----+----+---------+---------+---------------------------+
//! | 'I'| 'P'| 'C'| 'T'| version | tok_len | token: tok_len bytes UTF-8|
//! | 49 | 50 | 43 | 54 |  0x01   | 0..=255 |                           |
//! +----+----+----+----+---------+---------+---------------------------+
//!
//! server -> client (reply), 6 bytes:
//! +----+----+----+----+---------+---------+
//! | 'I'| 'P'| 'C'| 'T'| version | status  |   status: 0x00 OK
//! | 49 | 50 | 43 | 54 |  0x01   |         |           0x01 bad token
//! +----+----+----+----+---------+---------+           0x02 unsupported version
//!
//! hello with token "ab":  49 50 43 54 01 02 61 62
//! hello, no token:        49 50 43 54 01 00
//! reply OK:               49 50 43 54 01 00
//! ```
//!
//! - The server reads the magic first. If the first 4 bytes are not `IPCT`, the peer is
//!   not an ipc client: the server sends nothing and closes.
//! - The server then reads the version byte. If it is not `0x01`, it replies with status
//!   `0x02` at once (without reading further) and closes.
//! - Otherwise it reads the token and compares it, in constant time, with the one it
//!   expects (an empty token when it expects none). A mismatch gets status `0x01` and a
//!   close.
//! - After status `0x00` both directions carry length-prefixed frames
//!   ([`ipc_core::frame`]): `u32` big-endian length, then the payload; `FF FF FF FF` is
//!   the clean-close goodbye.
//! - The client sends its hello and waits for the reply before sending any frame; the
//!   server never sends a frame before its reply.
//! - Both sides bound the whole exchange by the handshake timeout (5 s by default).

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use ipc_core::{Error, Result};
use subtle::ConstantTimeEq;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The first four bytes of every hello and reply.
pub const MAGIC: [u8; 4] = *b"IPCT";

/// The protocol version this crate speaks.
pub const VERSION: u8 = 0x01;

/// Reply status: the token matched; frames follow.
pub const STATUS_OK: u8 = 0x00;

/// Reply status: the token did not match; the server closes.
pub const STATUS_BAD_TOKEN: u8 = 0x01;

/// Reply status: the server does not speak the client's version; the server closes.
pub const STATUS_UNSUPPORTED_VERSION: u8 = 0x02;

/// Longest token the hello can carry, in bytes.
pub const MAX_TOKEN_LEN: usize = 255;

/// A token padded to a fixed size (length byte, then the bytes, then zeros), so that
/// comparing two of them takes the same time whatever their lengths and contents.
#[derive(Clone)]
pub(crate) struct PaddedToken([u8; MAX_TOKEN_LEN + 1]);

impl PaddedToken {
    /// Pad `token`; fails if it is longer than [`MAX_TOKEN_LEN`].
    pub(crate) fn new(token: &[u8]) -> Result<Self> {
        let len = u8::try_from(token.len()).map_err(|_| too_long(token.len()))?;
        let mut padded = [0u8; MAX_TOKEN_LEN + 1];
        padded[0] = len;
        padded[1..=token.len()].copy_from_slice(token);
        Ok(PaddedToken(padded))
    }

    fn matches(&self, other: &PaddedToken) -> bool {
        bool::from(self.0[..].ct_eq(&other.0[..]))
    }
}

/// The error for a token that does not fit in the hello.
pub(crate) fn too_long(len: usize) -> Error {
    Error::Handshake(format!(
        "the token is {len} bytes long; the tcp handshake carries at most {MAX_TOKEN_LEN}"
    ))
}

/// Bytes as hex, for error messages: `47 45 54 20`.
fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Read until `buf` is full or the stream ends; returns how many bytes were read.
async fn read_up_to<S: AsyncRead + Unpin>(stream: &mut S, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match stream.read(&mut buf[filled..]).await? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// Client side: send the hello with `token` (empty for none) and check the reply.
pub(crate) async fn client<S>(stream: &mut S, token: &[u8]) -> Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let len = u8::try_from(token.len()).map_err(|_| too_long(token.len()))?;
    let mut hello = Vec::with_capacity(6 + token.len());
    hello.extend_from_slice(&MAGIC);
    hello.push(VERSION);
    hello.push(len);
    hello.extend_from_slice(token);
    stream.write_all(&hello).await.map_err(client_io)?;

    let mut reply = [0u8; 6];
    let n = read_up_to(stream, &mut reply).await.map_err(client_io)?;
    if n < reply.len() || reply[..4] != MAGIC {
        return Err(Error::Handshake(if n == 0 {
            "the server closed the connection without answering the handshake: it is not \
             an ipc-tcp listener, or it refused us before reading our hello"
                .to_string()
        } else {
            format!(
                "the server answered {} instead of an ipc-tcp reply (49 50 43 54 01 ..): \
                 it is not an ipc-tcp listener",
                hex(&reply[..n])
            )
        }));
    }
    if reply[4] != VERSION {
        return Err(Error::Handshake(format!(
            "the server replied with protocol version {}; this client speaks {VERSION}",
            reply[4]
        )));
    }
    match reply[5] {
        STATUS_OK => Ok(()),
        STATUS_BAD_TOKEN => Err(Error::Auth(
            "the server refused our token (IPC_TOKEN): present the token the listener \
             was started with (a child spawned by TcpTransport::spawn finds it in IPC_TOKEN)"
                .to_string(),
        )),
        STATUS_UNSUPPORTED_VERSION => Err(Error::Handshake(format!(
            "the server does not support protocol version {VERSION}: upgrade the older side"
        ))),
        other => Err(Error::Handshake(format!(
            "the server replied with unknown status 0x{other:02x}"
        ))),
    }
}

/// I/O errors while the client handshakes: a reset or early end means the server
/// dropped us, which is a handshake failure, not a plain I/O error.
fn client_io(e: io::Error) -> Error {
    match e.kind() {
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::UnexpectedEof => Error::Handshake(format!(
            "the server dropped the connection during the handshake ({e})"
        )),
        _ => Error::Io(e),
    }
}

/// Server side: read the hello, compare the token, send the reply.
///
/// On `Err` the caller should close the stream (after [`linger`]); a reply with a
/// non-zero status has already been sent when one is due.
pub(crate) async fn server<S>(
    stream: &mut S,
    expected: &PaddedToken,
    peer: SocketAddr,
) -> Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let server_io = |e: io::Error| match e.kind() {
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::UnexpectedEof => Error::Handshake(format!(
            "client {peer} dropped the connection during the handshake ({e})"
        )),
        _ => Error::Io(e),
    };

    let mut head = [0u8; 6];
    let n = read_up_to(stream, &mut head[..4])
        .await
        .map_err(server_io)?;
    if head[..n] != MAGIC[..n] {
        return Err(Error::Handshake(format!(
            "client {peer} sent {} ({:?}) instead of the magic \"IPCT\" (49 50 43 54): \
             it is not an ipc client (a port scanner, a browser, another protocol?); \
             connection closed",
            hex(&head[..n]),
            String::from_utf8_lossy(&head[..n]),
        )));
    }
    if n < 4 {
        return Err(Error::Handshake(format!(
            "client {peer} closed the connection after {n} bytes of the handshake"
        )));
    }
    stream
        .read_exact(&mut head[4..6])
        .await
        .map_err(server_io)?;
    let (version, len) = (head[4], usize::from(head[5]));
    if version != VERSION {
        reply(stream, STATUS_UNSUPPORTED_VERSION)
            .await
            .map_err(server_io)?;
        return Err(Error::Handshake(format!(
            "client {peer} speaks protocol version {version}; this server speaks {VERSION}"
        )));
    }
    let mut token = [0u8; MAX_TOKEN_LEN];
    stream
        .read_exact(&mut token[..len])
        .await
        .map_err(server_io)?;
    let presented = PaddedToken::new(&token[..len])?;
    if !expected.matches(&presented) {
        reply(stream, STATUS_BAD_TOKEN).await.map_err(server_io)?;
        return Err(Error::Auth(format!(
            "client {peer} presented a wrong token (IPC_TOKEN); connection refused"
        )));
    }
    reply(stream, STATUS_OK).await.map_err(server_io)
}

async fn reply<S: AsyncWrite + Unpin>(stream: &mut S, status: u8) -> io::Result<()> {
    let mut bytes = [0u8; 6];
    bytes[..4].copy_from_slice(&MAGIC);
    bytes[4] = VERSION;
    bytes[5] = status;
    stream.write_all(&bytes).await
}

/// Close a refused connection gently: shut our side down, then read and discard what
/// the client still sends (at most 64 KiB, for at most one second). Closing a socket
/// with unread bytes makes the kernel send a reset, which can destroy our reply before
/// the client reads it.
pub(crate) async fn linger<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S) {
    let _ = stream.shutdown().await;
    let drain = async {
        let mut sink = [0u8; 4096];
        let mut total = 0usize;
        while total < 64 * 1024 {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padded_tokens_compare_by_length_and_content() {
        let a = PaddedToken::new(b"secret").expect("fits");
        assert!(a.matches(&PaddedToken::new(b"secret").expect("fits")));
        assert!(!a.matches(&PaddedToken::new(b"secreT").expect("fits")));
        assert!(!a.matches(&PaddedToken::new(b"secret\0").expect("fits")));
        assert!(!a.matches(&PaddedToken::new(b"").expect("fits")));
        assert!(PaddedToken::new(&[b'x'; 255]).is_ok());
        assert!(matches!(
            PaddedToken::new(&[b'x'; 256]),
            Err(Error::Handshake(_))
        ));
    }

    #[tokio::test]
    async fn client_bytes_match_the_diagram() {
        let (mut c, mut s) = tokio::io::duplex(1024);
        let raw_server = async {
            let mut wire = [0u8; 8];
            s.read_exact(&mut wire).await.expect("hello");
            assert_eq!(wire, [0x49, 0x50, 0x43, 0x54, 0x01, 0x02, 0x61, 0x62]);
            s.write_all(&[0x49, 0x50, 0x43, 0x54, 0x01, 0x00])
                .await
                .expect("reply");
        };
        let (result, ()) = tokio::join!(client(&mut c, b"ab"), raw_server);
        result.expect("client handshake");
    }

    #[tokio::test]
    async fn server_bytes_match_the_diagram() {
        let (mut c, mut s) = tokio::io::duplex(1024);
        let peer: SocketAddr = ([127, 0, 0, 1], 1).into();
        let expected = PaddedToken::new(b"").expect("fits");
        let raw_client = async {
            c.write_all(&[0x49, 0x50, 0x43, 0x54, 0x01, 0x00])
                .await
                .expect("hello");
            let mut wire = [0u8; 6];
            c.read_exact(&mut wire).await.expect("reply");
            assert_eq!(wire, [0x49, 0x50, 0x43, 0x54, 0x01, 0x00]);
        };
        let (result, ()) = tokio::join!(server(&mut s, &expected, peer), raw_client);
        result.expect("server handshake");
    }
}
