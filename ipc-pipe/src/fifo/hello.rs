//! The hello frame a FIFO client writes first: `ipc-fifo/1 pid=<decimal pid>`, as an
//! ordinary length-prefixed frame.

use bytes::{Bytes, BytesMut};
use ipc_core::frame::{FrameConfig, LengthCodec, Outbound};
use ipc_core::{Error, Result};
use tokio_util::codec::Encoder;

/// Text before the pid in the hello payload.
pub(crate) const PREFIX: &str = "ipc-fifo/1 pid=";

/// Largest hello payload a listener accepts.
pub(crate) const MAX: usize = 64;

/// Bytes of the length prefix.
pub(crate) const HEAD: usize = 4;

/// The whole hello frame (length prefix and payload) for process `pid`.
pub(crate) fn encode(pid: u32) -> Result<BytesMut> {
    let mut codec = LengthCodec::new(FrameConfig::builder().max_frame(MAX).build());
    let mut wire = BytesMut::new();
    codec.encode(
        Outbound::Data(Bytes::from(format!("{PREFIX}{pid}"))),
        &mut wire,
    )?;
    Ok(wire)
}

/// The payload length announced by a hello's 4-byte prefix, refused when it cannot be
/// a hello (a client speaking another protocol: `GET ` reads as 1 195 725 856 bytes).
pub(crate) fn payload_len(head: [u8; HEAD], endpoint: &str) -> Result<usize> {
    let len = u32::from_be_bytes(head);
    if len as usize > MAX || len == 0 {
        return Err(Error::Handshake(format!(
            "a client of {endpoint} is not an ipc fifo client: its first frame announces \
             {len} bytes (prefix {:?}) where a hello of 1 to {MAX} bytes (\"{PREFIX}N\") \
             belongs; it was dropped",
            String::from_utf8_lossy(&head)
        )));
    }
    Ok(len as usize)
}

/// The client pid in a hello payload.
pub(crate) fn parse(payload: &[u8], endpoint: &str) -> Result<u32> {
    std::str::from_utf8(payload)
        .ok()
        .and_then(|text| text.strip_prefix(PREFIX))
        .and_then(|pid| pid.parse::<u32>().ok())
        .filter(|pid| *pid > 0)
        .ok_or_else(|| {
            Error::Handshake(format!(
                "a client of {endpoint} sent the hello {:?}, expected \"{PREFIX}N\" \
                 (another protocol version, or not an ipc client); it was dropped",
                String::from_utf8_lossy(payload)
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_round_trip() {
        let wire = encode(4242).expect("encode");
        let head = [wire[0], wire[1], wire[2], wire[3]];
        let len = payload_len(head, "fifo:/x").expect("len");
        assert_eq!(len, wire.len() - HEAD);
        assert_eq!(parse(&wire[HEAD..], "fifo:/x").expect("pid"), 4242);
    }

    #[test]
    fn http_is_refused_by_its_length() {
        let err = payload_len(*b"GET ", "fifo:/x").expect_err("garbage");
        let msg = err.to_string();
        assert!(
            msg.contains("handshake") && msg.contains("1195725856"),
            "{msg}"
        );
        assert!(payload_len([0, 0, 0, 0], "fifo:/x").is_err());
        assert!(payload_len([0xff; 4], "fifo:/x").is_err());
    }

    #[test]
    fn bad_payloads_are_refused() {
        for bad in [
            &b"ipc-fifo/2 pid=1"[..],
            b"ipc-fifo/1 pid=",
            b"ipc-fifo/1 pid=0",
            b"\xff",
        ] {
            assert!(parse(bad, "fifo:/x").is_err(), "{bad:?}");
        }
    }
}
