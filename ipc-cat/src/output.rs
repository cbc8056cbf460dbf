//! Frames to stdout, in the chosen [`Mode`].

use bytes::{Bytes, BytesMut};
use ipc::frame::{FrameConfig, LengthCodec, Outbound, MAX_FRAME_LIMIT};
use ipc::stdio::JsonLinesCodec;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio_util::codec::Encoder;

use crate::cli::Mode;

/// Writes received frames (and, in `--raw`, the goodbye) to a byte sink.
pub(crate) struct Output<W> {
    writer: W,
    format: Format,
    buf: BytesMut,
}

/// The stateless part: how one frame looks.
struct Format {
    mode: Mode,
    json: JsonLinesCodec,
    raw: LengthCodec,
}

impl Format {
    fn new(mode: Mode) -> Format {
        // Frames were checked against the channel's limit on arrival; printing them
        // must not refuse any.
        let unlimited = FrameConfig::builder().max_frame(MAX_FRAME_LIMIT).build();
        Format {
            mode,
            json: JsonLinesCodec::new(unlimited),
            raw: LengthCodec::new(unlimited),
        }
    }

    fn frame(&mut self, frame: Bytes, dst: &mut BytesMut) -> ipc::Result<()> {
        match self.mode {
            Mode::Lines => {
                dst.extend_from_slice(&frame);
                dst.extend_from_slice(b"\n");
                Ok(())
            }
            Mode::Json => self.json.encode(Outbound::Data(frame), dst),
            Mode::Raw => self.raw.encode(Outbound::Data(frame), dst),
        }
    }

    fn goodbye(&mut self, dst: &mut BytesMut) -> ipc::Result<()> {
        match self.mode {
            Mode::Raw => self.raw.encode(Outbound::Goodbye, dst),
            Mode::Lines | Mode::Json => Ok(()),
        }
    }
}

impl Output<tokio::io::Stdout> {
    /// This process's stdout.
    pub(crate) fn stdout(mode: Mode) -> Self {
        Output::new(tokio::io::stdout(), mode)
    }
}

impl<W: AsyncWrite + Unpin> Output<W> {
    /// Frames in `mode` to `writer`.
    pub(crate) fn new(writer: W, mode: Mode) -> Self {
        Output {
            writer,
            format: Format::new(mode),
            buf: BytesMut::new(),
        }
    }

    /// Print one received frame (flushed at once, so a reader sees it now).
    pub(crate) async fn frame(&mut self, frame: Bytes) -> Result<(), String> {
        self.format
            .frame(frame, &mut self.buf)
            .map_err(|e| format!("cannot format a frame: {e}"))?;
        self.flush().await
    }

    /// The peer closed cleanly: in `--raw`, print the goodbye.
    pub(crate) async fn goodbye(&mut self) -> Result<(), String> {
        self.format
            .goodbye(&mut self.buf)
            .map_err(|e| format!("cannot format the goodbye: {e}"))?;
        self.flush().await
    }

    async fn flush(&mut self) -> Result<(), String> {
        let stdout = |e: std::io::Error| format!("cannot write to stdout: {e}");
        self.writer.write_all(&self.buf).await.map_err(stdout)?;
        self.buf.clear();
        self.writer.flush().await.map_err(stdout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn print(mode: Mode, frames: &[&[u8]], goodbye: bool) -> Vec<u8> {
        let mut format = Format::new(mode);
        let mut out = BytesMut::new();
        for frame in frames {
            format
                .frame(Bytes::copy_from_slice(frame), &mut out)
                .expect("format");
        }
        if goodbye {
            format.goodbye(&mut out).expect("goodbye");
        }
        out.to_vec()
    }

    #[test]
    fn lines() {
        assert_eq!(print(Mode::Lines, &[b"a", b"", b"b"], true), b"a\n\nb\n");
    }

    #[test]
    fn json_keeps_stdout_one_json_value_per_line() {
        assert_eq!(
            print(
                Mode::Json,
                &[br#"{"a":1}"#, b"\x00\x01\x02", b"", b"two\nlines"],
                true
            ),
            b"{\"a\":1}\n{\"$bytes\":\"AAEC\"}\n{\"$bytes\":\"\"}\n{\"$bytes\":\"dHdvCmxpbmVz\"}\n"
        );
    }

    #[test]
    fn raw_is_the_wire_framing_with_the_goodbye_on_a_clean_close() {
        assert_eq!(
            print(Mode::Raw, &[b"hi", b""], true),
            b"\x00\x00\x00\x02hi\x00\x00\x00\x00\xff\xff\xff\xff"
        );
        assert_eq!(print(Mode::Raw, &[b"hi"], false), b"\x00\x00\x00\x02hi");
    }
}
