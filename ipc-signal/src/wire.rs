//! The wire format: what the 8 bytes of each signal's `sival_ptr` mean.
//!
//! Every signal is what `sigqueue(pid, signo, value)` sends (sent through the peer's
//! pidfd with `pidfd_send_signal`, see the `pidfd` module); `value.sival_ptr` is a
//! 64-bit word `w`, read back from `signalfd_siginfo.ssi_ptr`. Words are written here as
//! numbers; "bytes" means the big-endian bytes of `w`.
//!
//! ```text
//! DATA_SIGNAL (37), in order:   header, then ceil(len / 8) chunks
//!
//!  63        48 47    40 39    32 31                            0
//! +------------+--------+--------+-------------------------------+
//! | 0x5347 "SG"|  kind  |   0    |  len (u32)                    |   header
//! +------------+--------+--------+-------------------------------+
//!   kind 0x01 = frame of `len` payload bytes (len <= max_frame)
//!   kind 0x02 = goodbye (len = 0): the sender closed cleanly, nothing follows
//!
//! +---------------------------------------------------------------+
//! | payload bytes 8i .. 8i+7, as the big-endian bytes of w         |   chunk i
//! +---------------------------------------------------------------+
//!   the last chunk is zero-padded; its padding is ignored
//!
//! CONTROL_SIGNAL (38), any time:
//!
//!  63    56 55                                                   0
//! +--------+-----------------------------------------------------+
//! |  kind  |  value (56 bits)                                    |
//! +--------+-----------------------------------------------------+
//!   0x01 HELLO  value = version (bits 39..32, = 1) | window (bits 31..0):
//!               "my channel to you exists; keep at most `window` data
//!               signals unacknowledged"
//!   0x02 ACK    value = data signals consumed from you so far (mod 2^56)
//!   0x03 GONE   value = data signals sent to you in total (mod 2^56):
//!               "my channel to you is dropped; nobody reads any more"
//!   0x04 ABORT  value = data signals sent to you in total (mod 2^56):
//!               "my sending half was dropped without closing (perhaps in the
//!               middle of a frame); no more data signals follow (and no goodbye):
//!               the stream ends there, as an abort"
//! ```
//!
//! "hi" as a frame: `0x5347_0100_0000_0002`, then `0x6869_0000_0000_0000`.

/// Payload bytes per data signal.
pub(crate) const CHUNK: usize = 8;

const MAGIC: u64 = 0x5347;
const KIND_FRAME: u64 = 0x01;
const KIND_GOODBYE: u64 = 0x02;

/// The goodbye header.
pub(crate) const GOODBYE: u64 = (MAGIC << 48) | (KIND_GOODBYE << 40);

/// The protocol version in HELLO.
pub(crate) const VERSION: u8 = 1;

const CTRL_HELLO: u64 = 0x01;
const CTRL_ACK: u64 = 0x02;
const CTRL_GONE: u64 = 0x03;
const CTRL_ABORT: u64 = 0x04;

/// Counts on the control signal are taken modulo 2^56.
pub(crate) const COUNT_MASK: u64 = (1 << 56) - 1;

/// The header of a frame of `len` bytes.
pub(crate) fn frame_header(len: u32) -> u64 {
    (MAGIC << 48) | (KIND_FRAME << 40) | u64::from(len)
}

/// A decoded header word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Header {
    /// A frame of this many bytes follows.
    Frame(u32),
    /// The sender closed cleanly.
    Goodbye,
    /// Not a header: the stream is out of step.
    Invalid,
}

/// Decode a word read where a header is expected.
pub(crate) fn parse_header(word: u64) -> Header {
    if word >> 48 != MAGIC || (word >> 32) & 0xFF != 0 {
        return Header::Invalid;
    }
    match (word >> 40) & 0xFF {
        KIND_FRAME => Header::Frame(word as u32),
        KIND_GOODBYE if word as u32 == 0 => Header::Goodbye,
        _ => Header::Invalid,
    }
}

/// Number of chunk signals after the header of a `len`-byte frame.
pub(crate) fn chunk_count(len: u64) -> u64 {
    len.div_ceil(CHUNK as u64)
}

/// Chunk `i` of `frame` (bytes `8i..8i+8`, zero-padded).
pub(crate) fn chunk(frame: &[u8], i: usize) -> u64 {
    let start = i * CHUNK;
    let end = (start + CHUNK).min(frame.len());
    let mut bytes = [0u8; CHUNK];
    bytes[..end - start].copy_from_slice(&frame[start..end]);
    u64::from_be_bytes(bytes)
}

/// A decoded control word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Control {
    /// The peer's channel exists; it grants this receive window.
    Hello {
        /// Protocol version.
        version: u8,
        /// Data signals the peer lets us keep unacknowledged.
        window: u32,
    },
    /// The peer consumed this many of our data signals (mod 2^56).
    Ack(u64),
    /// The peer dropped its channel after sending this many data signals (mod 2^56).
    Gone(u64),
    /// The peer dropped its sending half without closing after this many data signals (mod 2^56).
    Abort(u64),
    /// Unknown kind.
    Unknown,
}

/// HELLO granting `window`.
pub(crate) fn hello(window: u32) -> u64 {
    (CTRL_HELLO << 56) | (u64::from(VERSION) << 32) | u64::from(window)
}

/// ACK of `consumed` data signals.
pub(crate) fn ack(consumed: u64) -> u64 {
    (CTRL_ACK << 56) | (consumed & COUNT_MASK)
}

/// GONE after `sent` data signals.
pub(crate) fn gone(sent: u64) -> u64 {
    (CTRL_GONE << 56) | (sent & COUNT_MASK)
}

/// ABORT after `sent` data signals.
pub(crate) fn abort(sent: u64) -> u64 {
    (CTRL_ABORT << 56) | (sent & COUNT_MASK)
}

/// Decode a control word.
pub(crate) fn parse_control(word: u64) -> Control {
    let value = word & COUNT_MASK;
    match word >> 56 {
        CTRL_HELLO => Control::Hello {
            version: (value >> 32) as u8,
            window: value as u32,
        },
        CTRL_ACK => Control::Ack(value),
        CTRL_GONE => Control::Gone(value),
        CTRL_ABORT => Control::Abort(value),
        _ => Control::Unknown,
    }
}

/// The full count whose low 56 bits are `low`, at or after `prev`.
pub(crate) fn widen(prev: u64, low: u64) -> u64 {
    prev + (low.wrapping_sub(prev) & COUNT_MASK)
}

/// The most data signals a receive window ever grants.
pub const MAX_WINDOW: u32 = 256;

/// The receive window this process grants each peer: at most [`MAX_WINDOW`] unacknowledged
/// data signals, and at most 1/64 of `RLIMIT_SIGPENDING`.
///
/// `RLIMIT_SIGPENDING` caps the signals queued for all processes of one *user* at once;
/// every channel of that user (both directions, all peers) shares it, so one channel takes
/// a small slice. A sender that still hits the limit (`sigqueue` fails with `EAGAIN`)
/// waits for acknowledgements or retries shortly; it never fails because of it.
///
/// ```
/// let w = ipc_signal::receive_window();
/// assert!((1..=ipc_signal::MAX_WINDOW).contains(&w));
/// ```
pub fn receive_window() -> u32 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the rlimit struct we pass.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_SIGPENDING, &mut limit) };
    if rc != 0 || limit.rlim_cur == libc::RLIM_INFINITY {
        return MAX_WINDOW;
    }
    (limit.rlim_cur / 64).clamp(1, u64::from(MAX_WINDOW)) as u32
}

/// The receiver acknowledges every this many consumed data signals.
pub(crate) fn ack_interval(window: u32) -> u64 {
    u64::from(window / 4).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip_and_garbage_is_invalid() {
        for len in [0u32, 1, 8, 65536, u32::MAX - 1] {
            assert_eq!(parse_header(frame_header(len)), Header::Frame(len));
        }
        assert_eq!(parse_header(GOODBYE), Header::Goodbye);
        assert_eq!(frame_header(2), 0x5347_0100_0000_0002);
        for garbage in [
            0u64,
            u64::MAX,
            0x6869_0000_0000_0000,
            GOODBYE | 1,
            GOODBYE | (1 << 32),
        ] {
            assert_eq!(parse_header(garbage), Header::Invalid, "{garbage:#x}");
        }
    }

    #[test]
    fn chunks_are_big_endian_and_padded() {
        let frame = b"hello, world";
        assert_eq!(chunk_count(frame.len() as u64), 2);
        assert_eq!(chunk(frame, 0).to_be_bytes(), *b"hello, w");
        assert_eq!(chunk(frame, 1).to_be_bytes(), *b"orld\0\0\0\0");
        assert_eq!(chunk(b"hi", 0), 0x6869_0000_0000_0000);
        assert_eq!(chunk_count(0), 0);
        assert_eq!(chunk_count(8), 1);
        assert_eq!(chunk_count(9), 2);
    }

    #[test]
    fn control_words_round_trip() {
        assert_eq!(
            parse_control(hello(256)),
            Control::Hello {
                version: VERSION,
                window: 256
            }
        );
        assert_eq!(parse_control(ack(12345)), Control::Ack(12345));
        assert_eq!(parse_control(gone(7)), Control::Gone(7));
        assert_eq!(parse_control(abort(9)), Control::Abort(9));
        assert_eq!(parse_control(0), Control::Unknown);
        assert_eq!(parse_control(ack(COUNT_MASK + 5)), Control::Ack(4));
    }

    #[test]
    fn counts_widen_across_the_56_bit_wrap() {
        assert_eq!(widen(0, 10), 10);
        assert_eq!(widen(10, 10), 10);
        let near = COUNT_MASK - 1;
        assert_eq!(widen(near, 3), COUNT_MASK + 4);
    }

    #[test]
    fn window_fits_the_limits() {
        let w = receive_window();
        assert!((1..=MAX_WINDOW).contains(&w));
        assert!(ack_interval(w) >= 1 && ack_interval(w) <= u64::from(w));
        assert_eq!(ack_interval(1), 1);
        assert_eq!(ack_interval(256), 64);
    }
}
