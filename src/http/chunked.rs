//! Chunked response bodies (RFC 9112 §7.1), decoded as their bytes arrive, with every
//! line bounded. No I/O here, so every rule is unit-tested on bytes.

use bytes::{Buf, BytesMut};

use super::wire::{MAX_FIELDS, MAX_HEAD, WireError};

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    #[default]
    Size,
    Data(u64),
    DataEnd,
    Trailers,
    Done,
}

/// The longest chunk-size line (size plus extensions) accepted. Extensions carry nothing a
/// load test reads; an endless one must fail the request, not grow memory without bound.
pub const MAX_CHUNK_LINE: usize = 4 * 1024;

/// Decodes a chunked body as its bytes arrive. Incremental: bytes already searched for a
/// line end are not searched again, so a response dripping a long line costs linear time,
/// and every line (chunk size, trailer) and the trailers as a whole are bounded.
#[derive(Debug, Default)]
pub struct Chunked {
    state: ChunkState,
    /// Bytes at the start of the input already known to hold no line end.
    scanned: usize,
    /// Trailer bytes and fields read so far (bounded like a head).
    trailer_bytes: usize,
    trailer_fields: usize,
}

impl Chunked {
    /// The length of the line at the start of `input` including its `\n`, or `None` if it
    /// has not all arrived; an error once it is longer than `limit`.
    fn line(&mut self, input: &[u8], limit: usize) -> Result<Option<usize>, WireError> {
        match input[self.scanned..].iter().position(|&b| b == b'\n') {
            Some(i) => {
                let len = self.scanned + i + 1;
                self.scanned = 0;
                if len > limit {
                    return Err(WireError::ChunkLine(limit));
                }
                Ok(Some(len))
            }
            None if input.len() > limit => Err(WireError::ChunkLine(limit)),
            None => {
                self.scanned = input.len();
                Ok(None)
            }
        }
    }

    /// Moves the data of complete chunks from `input` to `out`, consuming what it used.
    /// Returns true once the last chunk and trailers have been read.
    pub fn decode(&mut self, input: &mut BytesMut, out: &mut BytesMut) -> Result<bool, WireError> {
        loop {
            match self.state {
                ChunkState::Size => {
                    let Some(len) = self.line(input, MAX_CHUNK_LINE)? else {
                        return Ok(false);
                    };
                    match httparse::parse_chunk_size(&input[..len]) {
                        Ok(httparse::Status::Complete((used, size))) => {
                            input.advance(used);
                            self.state = match size {
                                0 => ChunkState::Trailers,
                                n => ChunkState::Data(n),
                            };
                        }
                        _ => return Err(WireError::Chunk),
                    }
                }
                ChunkState::Data(left) => {
                    let take = input.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    if take == 0 {
                        return Ok(false);
                    }
                    out.extend_from_slice(&input[..take]);
                    input.advance(take);
                    self.state = match left - take as u64 {
                        0 => ChunkState::DataEnd,
                        n => ChunkState::Data(n),
                    };
                }
                ChunkState::DataEnd => {
                    if input.len() < 2 {
                        return Ok(false);
                    }
                    if &input[..2] != b"\r\n" {
                        return Err(WireError::Chunk);
                    }
                    input.advance(2);
                    self.state = ChunkState::Size;
                }
                ChunkState::Trailers => {
                    let limit = MAX_HEAD - self.trailer_bytes;
                    let Some(len) = self.line(input, limit).map_err(|_| WireError::Trailers)?
                    else {
                        return Ok(false);
                    };
                    let blank = matches!(&input[..len], b"\r\n" | b"\n");
                    input.advance(len);
                    if blank {
                        self.state = ChunkState::Done;
                    } else {
                        self.trailer_bytes += len;
                        self.trailer_fields += 1;
                        if self.trailer_fields > MAX_FIELDS {
                            return Err(WireError::Trailers);
                        }
                    }
                }
                ChunkState::Done => return Ok(true),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_bodies_decode_across_any_split() {
        let wire = b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nTrailer: x\r\n\r\nNEXT";
        for split in 0..wire.len() {
            let mut input = BytesMut::new();
            let mut out = BytesMut::new();
            let mut dec = Chunked::default();
            input.extend_from_slice(&wire[..split]);
            let early = dec.decode(&mut input, &mut out).unwrap();
            input.extend_from_slice(&wire[split..]);
            let done = early || dec.decode(&mut input, &mut out).unwrap();
            assert!(done, "split at {split}");
            assert_eq!(&out[..], b"hello, world", "split at {split}");
            assert_eq!(
                &input[..],
                b"NEXT",
                "what follows the body is left, split {split}"
            );
        }
    }

    #[test]
    fn broken_chunks_are_errors() {
        let mut out = BytesMut::new();
        let mut input = BytesMut::from(&b"zz\r\n"[..]);
        assert!(Chunked::default().decode(&mut input, &mut out).is_err());
        let mut input = BytesMut::from(&b"2\r\nabXX"[..]);
        assert!(Chunked::default().decode(&mut input, &mut out).is_err());
    }

    #[test]
    fn a_short_trailer_line_does_not_end_the_trailers() {
        let mut out = BytesMut::new();
        let mut input = BytesMut::from(&b"0\r\nX\n\r\nNEXT"[..]);
        let mut dec = Chunked::default();
        assert!(dec.decode(&mut input, &mut out).unwrap());
        assert_eq!(&input[..], b"NEXT");
    }

    /// Feeds `start`, then `drip` bytes at a time forever, until the decoder gives up;
    /// checks the input never held more than `bound` + `drip` bytes.
    fn endless(start: &[u8], drip: usize, bound: usize) -> WireError {
        let (mut dec, mut out) = (Chunked::default(), BytesMut::new());
        let mut input = BytesMut::from(start);
        loop {
            match dec.decode(&mut input, &mut out) {
                Ok(false) => input.extend_from_slice(&vec![b'a'; drip]),
                Ok(true) => panic!("an endless line ended"),
                Err(e) => return e,
            }
            assert!(input.len() <= bound + drip);
        }
    }

    #[test]
    fn chunk_lines_and_trailers_are_bounded() {
        let mut out = BytesMut::new();
        // An endless extension, an endless trailer line: errors once past the limit.
        let e = endless(b"1;ext=", 100, MAX_CHUNK_LINE);
        assert!(matches!(e, WireError::ChunkLine(_)), "{e:?}");
        let e = endless(b"0\r\nX-T: ", 1000, MAX_HEAD);
        assert!(matches!(e, WireError::Trailers), "{e:?}");
        // Endless short trailer fields.
        let mut dec = Chunked::default();
        let mut input = BytesMut::from(&b"0\r\n"[..]);
        input.extend_from_slice(&b"X: 1\r\n".repeat(MAX_FIELDS + 1));
        assert!(matches!(
            dec.decode(&mut input, &mut out),
            Err(WireError::Trailers)
        ));
    }
}
