//! What the JSON-lines decoder remembers of a line that the line codec throws away
//! for being too long, so the error can say how large the frame in it was.

/// What is known of a line the line codec rejects for its length.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LongLine {
    /// It starts like a `{"$bytes":"...` line.
    pub(crate) bytes_line: bool,
    /// Its last bytes (for the base64 padding).
    pub(crate) tail: Tail,
}

/// The last few bytes seen of a line: enough for `=="}\r`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Tail {
    bytes: [u8; 5],
    len: usize,
}

impl Tail {
    pub(crate) fn push(&mut self, more: &[u8]) {
        let keep = self.bytes.len();
        if more.len() >= keep {
            self.bytes.copy_from_slice(&more[more.len() - keep..]);
            self.len = keep;
            return;
        }
        let total = (self.len + more.len()).min(keep);
        let old = total - more.len();
        self.bytes.copy_within(self.len - old..self.len, 0);
        self.bytes[old..total].copy_from_slice(more);
        self.len = total;
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_last_bytes() {
        let mut t = Tail::default();
        t.push(b"ab");
        assert_eq!(t.as_slice(), b"ab");
        t.push(b"cde");
        assert_eq!(t.as_slice(), b"abcde");
        t.push(b"f");
        assert_eq!(t.as_slice(), b"bcdef");
        t.push(b"0123456789");
        assert_eq!(t.as_slice(), b"56789");
        t.push(b"");
        assert_eq!(t.as_slice(), b"56789");
    }
}
