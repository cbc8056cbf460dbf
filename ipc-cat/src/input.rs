//! stdin to frames. A plain thread reads stdin with blocking calls and hands frames to
//! the async side through a bounded queue: when the peer is slow, the queue fills, the
//! thread waits, and stdin is not read further (backpressure). The thread is never
//! joined: when the run ends while it waits for a line that never comes (a terminal),
//! the process exits without waiting for it.

use std::io::{self, BufRead, BufReader, Read};

use bytes::{BufMut, Bytes, BytesMut};
use ipc::frame::{Decoded, FrameConfig, LengthCodec};
use ipc::stdio::JsonLinesCodec;
use tokio::sync::mpsc;
use tokio_util::codec::Decoder;

use crate::cli::Mode;

/// Frames read ahead of the channel before the reader waits.
const QUEUE: usize = 64;

/// Bytes asked of stdin per read.
const CHUNK: usize = 64 * 1024;

/// What the stdin side produces.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Input {
    /// One frame to send.
    Frame(Bytes),
    /// stdin ended (end-of-file, or a goodbye in `--raw`/`--json`): close the channel.
    End,
    /// stdin failed or ended inside a frame; the reason. Close the channel too.
    Failed(String),
}

/// The frames read from stdin, in order; shared by the clients of `--listen -k`.
pub(crate) struct InputQueue {
    rx: mpsc::Receiver<Input>,
    /// An item taken by [`wait_ready`](Self::wait_ready), returned by the next `next`.
    pending: Option<Input>,
    /// Set once the input is over: every later `next` repeats the end.
    over: bool,
}

impl InputQueue {
    /// Start reading this process's stdin in `mode` on a thread of its own.
    pub(crate) fn stdin(mode: Mode, max_frame: usize) -> InputQueue {
        InputQueue::spawn(io::stdin(), mode, max_frame)
    }

    /// Start reading `reader` in `mode` on a thread of its own.
    pub(crate) fn spawn(
        reader: impl Read + Send + 'static,
        mode: Mode,
        max_frame: usize,
    ) -> InputQueue {
        let (tx, rx) = mpsc::channel(QUEUE);
        std::thread::spawn(move || {
            read_frames(reader, mode, max_frame, |input| {
                tx.blocking_send(input).is_ok()
            })
        });
        InputQueue {
            rx,
            pending: None,
            over: false,
        }
    }

    /// The next frame, or the end of the input (repeated once reached). Cancel-safe.
    pub(crate) async fn next(&mut self) -> Input {
        if self.over {
            return Input::End;
        }
        let input = match self.pending.take() {
            Some(input) => input,
            None => self.rx.recv().await.unwrap_or(Input::End),
        };
        if !matches!(input, Input::Frame(_)) {
            self.over = true;
        }
        input
    }

    /// True once the input has ended (as seen by [`next`](Self::next)).
    pub(crate) fn is_over(&self) -> bool {
        self.over
    }

    /// Wait until an item is available without taking it (cancel-safe); returns true
    /// when that item ends the input. Returns at once while an item is already waiting.
    pub(crate) async fn wait_ready(&mut self) -> bool {
        if self.over {
            return true;
        }
        if self.pending.is_none() {
            self.pending = Some(self.rx.recv().await.unwrap_or(Input::End));
        }
        !matches!(self.pending, Some(Input::Frame(_)))
    }

    /// True when [`wait_ready`](Self::wait_ready) has an item waiting.
    pub(crate) fn has_pending(&self) -> bool {
        self.pending.is_some()
    }
}

/// Read `reader` to its end in `mode`, giving each item to `emit` (which returns false
/// when nobody listens any more). Bad lines are reported on stderr and skipped.
pub(crate) fn read_frames(
    reader: impl Read,
    mode: Mode,
    max_frame: usize,
    mut emit: impl FnMut(Input) -> bool,
) {
    let end = match mode {
        Mode::Lines => read_lines(reader, max_frame, &mut emit),
        Mode::Json => read_json(reader, max_frame, &mut emit),
        Mode::Raw => read_raw(reader, max_frame, &mut emit),
    };
    let last = match end {
        Ok(()) => Input::End,
        Err(why) => Input::Failed(why),
    };
    emit(last);
}

/// One line of stdin, without its `\n` (and `\r`).
#[derive(Debug, PartialEq, Eq)]
enum Line {
    Text(Vec<u8>),
    /// Longer than the limit: discarded as it arrived; its length.
    TooLong(u64),
}

/// Read one line of at most `max` bytes (not counting `\r\n`) without buffering more
/// than that; `None` at end of input. A last line without `\n` counts.
fn read_line(reader: &mut impl BufRead, max: usize) -> io::Result<Option<Line>> {
    let mut line = Vec::new();
    let mut len: u64 = 0;
    let mut too_long = false;
    let mut seen = false;
    loop {
        let buf = match reader.fill_buf() {
            Ok(buf) => buf,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.is_empty() {
            if !seen {
                return Ok(None);
            }
            break;
        }
        seen = true;
        let (chunk, newline) = match buf.iter().position(|b| *b == b'\n') {
            Some(i) => (&buf[..i], true),
            None => (buf, false),
        };
        let n = chunk.len();
        len += n as u64;
        // One byte of slack for a `\r` before the `\n`.
        if !too_long && line.len() + n > max.saturating_add(1) {
            too_long = true;
            line = Vec::new();
        }
        if !too_long {
            line.extend_from_slice(chunk);
        }
        reader.consume(n + usize::from(newline));
        if newline {
            break;
        }
    }
    if too_long {
        return Ok(Some(Line::TooLong(len)));
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    if line.len() > max {
        return Ok(Some(Line::TooLong(line.len() as u64)));
    }
    Ok(Some(Line::Text(line)))
}

fn stdin_error(e: io::Error) -> String {
    format!("cannot read stdin: {e}")
}

fn too_long(n: u64, len: u64, max: usize) {
    eprintln!(
        "ipc-cat: stdin line {n} is {len} bytes, over the frame limit of {max} bytes; \
         skipped (raise it with --max-frame)"
    );
}

fn read_lines(
    reader: impl Read,
    max_frame: usize,
    emit: &mut impl FnMut(Input) -> bool,
) -> Result<(), String> {
    let mut reader = BufReader::with_capacity(CHUNK, reader);
    let mut n = 0u64;
    while let Some(line) = read_line(&mut reader, max_frame).map_err(stdin_error)? {
        n += 1;
        match line {
            Line::Text(text) => {
                if !emit(Input::Frame(Bytes::from(text))) {
                    return Ok(());
                }
            }
            Line::TooLong(len) => too_long(n, len, max_frame),
        }
    }
    Ok(())
}

fn read_json(
    reader: impl Read,
    max_frame: usize,
    emit: &mut impl FnMut(Input) -> bool,
) -> Result<(), String> {
    let mut codec = JsonLinesCodec::new(FrameConfig::builder().max_frame(max_frame).build());
    let mut reader = BufReader::with_capacity(CHUNK, reader);
    let mut n = 0u64;
    while let Some(line) = read_line(&mut reader, codec.max_line()).map_err(stdin_error)? {
        n += 1;
        let text = match line {
            Line::Text(text) => text,
            Line::TooLong(len) => {
                too_long(n, len, max_frame);
                continue;
            }
        };
        match json_line(&mut codec, &text) {
            Ok(Some(Input::End)) => return Ok(()),
            Ok(Some(input)) => {
                if !emit(input) {
                    return Ok(());
                }
            }
            Ok(None) => {}
            Err(why) => eprintln!("ipc-cat: stdin line {n} skipped: {why}"),
        }
    }
    Ok(())
}

/// What one `--json` stdin line is: a frame, the goodbye (`Input::End`), nothing (a
/// blank line), or an error to report.
fn json_line(codec: &mut JsonLinesCodec, text: &[u8]) -> Result<Option<Input>, String> {
    if text.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(text) {
        return Err(format!(
            "it is not one JSON value ({e}); with --json every line must be exactly one \
             JSON value (use --lines for plain text)"
        ));
    }
    let mut line = BytesMut::with_capacity(text.len() + 1);
    line.extend_from_slice(text);
    line.put_u8(b'\n');
    match codec.decode(&mut line) {
        Ok(Some(Decoded::Frame(frame))) => Ok(Some(Input::Frame(frame))),
        Ok(Some(Decoded::Goodbye)) => Ok(Some(Input::End)),
        Ok(Some(Decoded::Rejected(e))) | Err(e) => Err(e.to_string()),
        Ok(None) => Ok(None),
    }
}

fn read_raw(
    mut reader: impl Read,
    max_frame: usize,
    emit: &mut impl FnMut(Input) -> bool,
) -> Result<(), String> {
    let mut codec = LengthCodec::new(FrameConfig::builder().max_frame(max_frame).build());
    let mut buf = BytesMut::with_capacity(CHUNK);
    let mut chunk = vec![0u8; CHUNK];
    let mut eof = false;
    loop {
        let decoded = if eof {
            codec.decode_eof(&mut buf)
        } else {
            codec.decode(&mut buf)
        };
        match decoded {
            Ok(Some(Decoded::Frame(frame))) => {
                if !emit(Input::Frame(frame)) {
                    return Ok(());
                }
            }
            Ok(Some(Decoded::Goodbye)) => return Ok(()),
            Ok(Some(Decoded::Rejected(e))) => eprintln!("ipc-cat: a stdin frame skipped: {e}"),
            Ok(None) if eof => return Ok(()),
            Ok(None) => match reader.read(&mut chunk) {
                Ok(0) => eof = true,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(stdin_error(e)),
            },
            Err(e) => {
                let why = match e {
                    ipc::Error::PeerLost(why) => why,
                    other => other.to_string(),
                };
                return Err(format!(
                    "stdin is not a whole sequence of length-prefixed frames: {why}"
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(input: &[u8], mode: Mode, max: usize) -> Vec<Input> {
        let mut out = Vec::new();
        read_frames(input, mode, max, |i| {
            out.push(i);
            true
        });
        out
    }

    fn f(s: &[u8]) -> Input {
        Input::Frame(Bytes::copy_from_slice(s))
    }

    #[test]
    fn lines_are_frames_and_crlf_is_accepted() {
        assert_eq!(
            frames(b"one\r\n\ntwo\nlast", Mode::Lines, 100),
            vec![f(b"one"), f(b""), f(b"two"), f(b"last"), Input::End]
        );
        assert_eq!(frames(b"", Mode::Lines, 100), vec![Input::End]);
    }

    #[test]
    fn long_lines_are_skipped_not_buffered() {
        let mut input = vec![b'x'; 10_000];
        input.extend_from_slice(b"\nok\n");
        assert_eq!(frames(&input, Mode::Lines, 8), vec![f(b"ok"), Input::End]);
        // Exactly the limit, with a CRLF, still fits.
        assert_eq!(
            frames(b"12345678\r\n", Mode::Lines, 8),
            vec![f(b"12345678"), Input::End]
        );
    }

    #[test]
    fn json_lines_follow_the_stdio_mapping() {
        let input = b"{\"a\":1}\n\n  \nnot json\n{\"$bytes\":\"AAEC\"}\n[1,2] \r\n{\"$bytes\":1}\n{\"$ipc\":\"goodbye\"}\n\"after\"\n";
        assert_eq!(
            frames(input, Mode::Json, 100),
            vec![
                f(b"{\"a\":1}"),
                f(b"\x00\x01\x02"),
                f(b"[1,2] "),
                Input::End
            ]
        );
    }

    #[test]
    fn json_rejections_say_why() {
        let mut codec = JsonLinesCodec::new(FrameConfig::default());
        let err = json_line(&mut codec, b"hello").expect_err("not JSON");
        assert!(err.contains("not one JSON value"), "{err}");
        let err = json_line(&mut codec, b"{} {}").expect_err("two values");
        assert!(err.contains("not one JSON value"), "{err}");
        let err = json_line(&mut codec, br#"{"$bytes":"","x":1}"#).expect_err("reserved");
        assert!(err.contains("reserved"), "{err}");
    }

    #[test]
    fn raw_frames_with_goodbye_and_oversize() {
        let mut input = Vec::new();
        input.extend_from_slice(b"\x00\x00\x00\x02hi");
        input.extend_from_slice(b"\x00\x00\x00\x00");
        input.extend_from_slice(b"\x00\x00\x00\x05large"); // over the limit of 4: skipped
        input.extend_from_slice(b"\x00\x00\x00\x01!");
        input.extend_from_slice(b"\xff\xff\xff\xff"); // goodbye: nothing after it is read
        input.extend_from_slice(b"\x00\x00\x00\x01?");
        assert_eq!(
            frames(&input, Mode::Raw, 4),
            vec![f(b"hi"), f(b""), f(b"!"), Input::End]
        );
        assert_eq!(
            frames(b"\x00\x00\x00\x01!", Mode::Raw, 4),
            vec![f(b"!"), Input::End]
        );
    }

    #[test]
    fn raw_input_cut_inside_a_frame_fails() {
        let out = frames(b"\x00\x00\x00\x04ab", Mode::Raw, 100);
        assert!(
            matches!(&out[..], [Input::Failed(why)] if why.contains("inside a frame")),
            "{out:?}"
        );
    }
}
